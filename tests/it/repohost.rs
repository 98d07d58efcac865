//! A cluster whose repository lives on a dedicated repository host (issue 14): the policy's
//! `repositories:` and `members:`, the per-host artifacts, and the refusals. Fast tier: no
//! server, no root (the lab scenario `repo-host` runs the artifacts on real hosts).

use crate::support::*;
use std::fs;

const REPOSITORY: &str = "version: 1
repositories:
  - name: central
    host: {name: repo, address: repo.example, tls_port: 8443}
    backup_user: {name: pgbr_repo}
";

fn rejected(policy: &str) -> String {
    let dir = tempdir();
    let path = write_policy(dir.path(), policy);
    let out = dir.path().join("out");
    let (code, stdout, stderr) = run(&["generate", path.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(
        code, 2,
        "expected exit 2 for:\n{policy}\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert!(!out.exists(), "nothing may be written on error");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn assert_has(stderr: &str, needles: &[&str]) {
    for needle in needles {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }
}

/// A cluster of REPOSITORY with `rest` under it (members, patroni, …).
fn cluster(pgbackrest: &str, rest: &str) -> String {
    format!("{REPOSITORY}clusters:\n  - name: ha\n    postgres: {{major: 15}}\n    pgbackrest: {pgbackrest}\n{rest}")
}

const PATRONI: &str =
    "    patroni: {enabled: true, config_file: /etc/patroni/config.yml, pg_hba_after: [\"local all postgres peer\"]}\n";

#[test]
fn an_unknown_repository_name_is_refused_with_field_and_line() {
    let err = rejected(&cluster(
        "{repository: centrale}",
        "    members: [{name: db1, address: db1.example}]\n",
    ));
    assert_has(
        &err,
        &[
            "policy.yaml:9:30",
            "clusters[0].pgbackrest.repository",
            "`centrale` is neither an absolute path nor the name of a declared repository (declared: central)",
        ],
    );
}

#[test]
fn duplicate_members_are_refused() {
    let err = rejected(&cluster(
        "{repository: central}",
        &format!(
            "    members:\n      - {{name: db1, address: db1.example}}\n      - {{name: db1, address: db2.example}}\n{PATRONI}"
        ),
    ));
    assert_has(
        &err,
        &[
            "policy.yaml:12:16",
            "clusters[0].members[1].name",
            "`db1` is listed twice",
        ],
    );
}

#[test]
fn a_member_without_address_is_refused() {
    let err = rejected(&cluster("{repository: central}", "    members:\n      - {name: db1}\n"));
    assert_has(
        &err,
        &["policy.yaml:11:16", "clusters[0].members[0].address", "is required"],
    );
}

#[test]
fn a_member_named_like_the_repository_host_is_refused() {
    let err = rejected(&cluster(
        "{repository: central}",
        "    members: [{name: repo, address: db1.example}]\n",
    ));
    assert_has(&err, &["clusters[0].members[0].name", "the repository host's name"]);
}

#[test]
fn members_and_repository_host_need_each_other() {
    let err = rejected(&cluster("{repository: central}", ""));
    assert_has(
        &err,
        &["policy.yaml:9:30", "clusters[0].members", "lives on host `repo`"],
    );
    let err = rejected(&cluster(
        "{stanza: ha}",
        "    members: [{name: db1, address: db1.example}]\n",
    ));
    assert_has(
        &err,
        &[
            "policy.yaml:10:14",
            "clusters[0].members",
            "need a repository on a repository host",
        ],
    );
}

#[test]
fn several_members_need_patroni() {
    let err = rejected(&cluster(
        "{repository: central}",
        "    members: [{name: db1, address: db1.example}, {name: db2, address: db2.example}]\n",
    ));
    assert_has(&err, &["clusters[0].members", "several members need Patroni"]);
}

#[test]
fn backup_standby_needs_a_second_member() {
    let err = rejected(&cluster(
        "{repository: central, commands: [backup, backup-standby]}",
        "    members: [{name: db1, address: db1.example}]\n",
    ));
    assert_has(
        &err,
        &[
            "policy.yaml:9:58",
            "clusters[0].pgbackrest.commands",
            "lists one member",
        ],
    );
}

#[test]
fn ip_addresses_need_pgbackrest_2_53() {
    let err = rejected(&cluster(
        "{repository: central, version: \"2.45\"}",
        "    members: [{name: db1, address: 10.0.0.1}]\n",
    ));
    assert_has(
        &err,
        &[
            "clusters[0].members",
            "member `db1`'s address `10.0.0.1` is an IP address",
            "(from 2.53)",
        ],
    );
}

#[test]
fn bad_repository_entries_are_refused_with_their_field() {
    let err = rejected(
        "version: 1\nrepositories:\n  - name: central\n    type: nfs\n  - name: other\n    host: {name: r, address: \"a b\"}\n    path: /tmp/repo\nclusters:\n  - name: ha\n    postgres: {major: 15}\n",
    );
    assert_has(
        &err,
        &[
            "policy.yaml:4:11",
            "repositories[0].type",
            "`nfs` is not a repository type",
            "policy.yaml:6:30",
            "repositories[1].host.address",
            "policy.yaml:7:11",
            "repositories[1].path",
            "`/tmp`",
        ],
    );
}

#[test]
fn two_clusters_cannot_share_one_repository_host_yet() {
    let policy = format!(
        "{REPOSITORY}clusters:\n  - name: a\n    postgres: {{major: 15}}\n    pgbackrest: {{repository: central}}\n    members: [{{name: db1, address: db1.example}}]\n  - name: b\n    postgres: {{major: 15}}\n    pgbackrest: {{repository: central}}\n    members: [{{name: db2, address: db2.example}}]\n"
    );
    let err = rejected(&policy);
    assert_has(
        &err,
        &["the repository `central` on host `repo` is named by clusters `a` and `b`"],
    );
}

fn example_tree() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempdir();
    let out = dir.path().join("out");
    let policy = root().join("examples/repo-host-pg15/policy.yaml");
    let (code, _, err) = run(&["generate", policy.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("the Ansible target does not plan several hosts yet"),
        "{err}"
    );
    (dir, out)
}

#[test]
fn each_host_gets_its_own_directory_and_no_ansible_play() {
    let (_dir, out) = example_tree();
    let files = files_below(&out);
    for needed in [
        "pg15-ha/CHANGE.md",
        "pg15-ha/ca/sign.sh",
        "pg15-ha/hosts/repo/shell/apply.sh",
        "pg15-ha/hosts/repo/pgbackrest/repository.conf",
        "pg15-ha/hosts/db1/pgbackrest/database.conf",
        "pg15-ha/hosts/db1/pgbackrest/server.conf",
        "pg15-ha/hosts/db2/sql/apply.sql",
        "pg15-ha/hosts/db2/patroni/dynamic-config.yml",
    ] {
        assert!(files.iter().any(|f| f == needed), "no {needed} in {files:?}");
    }
    // The repository host has no PostgreSQL: no SQL, hba, Patroni or database-side file.
    assert!(
        !files.iter().any(|f| f.starts_with("pg15-ha/hosts/repo/")
            && (f.contains("/sql/") || f.contains("/hba/") || f.contains("/patroni/") || f.ends_with("database.conf"))),
        "{files:?}"
    );
    assert!(!files.iter().any(|f| f.starts_with("ansible/")), "{files:?}");
}

#[test]
fn the_repository_host_lists_every_member_and_admits_each_client() {
    let (_dir, out) = example_tree();
    let conf = fs::read_to_string(out.join("pg15-ha/hosts/repo/pgbackrest/repository.conf")).unwrap();
    for line in [
        "repo1-path=/srv/pgbackrest/central",
        "backup-standby=y",
        "tls-server-address=repo.pgbr.test",
        "tls-server-port=8443",
        "tls-server-auth=pgbr-pg15-ha-db1-postgres=ha",
        "tls-server-auth=pgbr-pg15-ha-db2-postgres=ha",
        "pg1-host=db1.pgbr.test",
        "pg1-host-type=tls",
        "pg1-host-port=8433",
        "pg1-host-config=/etc/pgbackrest/pg15-ha/server.conf",
        "pg1-user=pgbr_backup",
        "pg2-host=db2.pgbr.test",
        "pg2-host-type=tls",
        "pg2-host-port=8434",
        "pg2-path=/var/lib/postgresql/15/ha",
        "pg2-port=5433",
    ] {
        assert!(conf.lines().any(|l| l == line), "no {line:?} in:\n{conf}");
    }
    let db = fs::read_to_string(out.join("pg15-ha/hosts/db2/pgbackrest/database.conf")).unwrap();
    for line in [
        "repo1-host=repo.pgbr.test",
        "repo1-host-type=tls",
        "repo1-host-port=8443",
        "repo1-host-cert-file=/etc/pgbackrest/pg15-ha/tls/client.crt",
    ] {
        assert!(db.lines().any(|l| l == line), "no {line:?} in:\n{db}");
    }
    assert!(
        !db.contains("repo1-path"),
        "the database side names no repository path:\n{db}"
    );
    let server = fs::read_to_string(out.join("pg15-ha/hosts/db2/pgbackrest/server.conf")).unwrap();
    for line in [
        "tls-server-address=db2.pgbr.test",
        "tls-server-port=8434",
        "tls-server-auth=pgbr-pg15-ha-repo-pgbr_repo=ha",
        "pg1-user=pgbr_backup",
    ] {
        assert!(server.lines().any(|l| l == line), "no {line:?} in:\n{server}");
    }
    let dynamic = fs::read_to_string(out.join("pg15-ha/hosts/db1/patroni/dynamic-config.yml")).unwrap();
    assert!(
        dynamic.contains("restore_command: /opt/pgbackrest-2.59.1/bin/pgbackrest --config=/etc/pgbackrest/pg15-ha/database.conf --stanza=ha archive-get %f \"%p\""),
        "{dynamic}"
    );
    // The database host's TLS server must read PGDATA: its sandbox does not hide it.
    let unit = fs::read_to_string(out.join("pg15-ha/hosts/db1/systemd/pgbr-tls-pg15-ha.service")).unwrap();
    assert!(!unit.contains("/var/lib/postgresql/15/ha"), "{unit}");
    assert!(
        unit.contains("InaccessiblePaths=-/etc/pgbackrest/pg15-ha/tls/client.key"),
        "{unit}"
    );
}

#[test]
fn no_private_key_and_the_ca_signs_only_the_plans_names() {
    let (_dir, out) = example_tree();
    for file in files_below(&out) {
        let text = fs::read_to_string(out.join(&file)).unwrap();
        assert!(!text.contains("PRIVATE KEY-----"), "{file} holds a private key");
    }
    let sign = out.join("pg15-ha/ca/sign.sh");
    let (ok, listed) = outcome(std::process::Command::new("bash").arg(&sign).arg("list"));
    assert!(ok, "{listed}");
    for line in [
        "repo server CN=repo.pgbr.test DNS:repo.pgbr.test serverAuth",
        "repo client CN=pgbr-pg15-ha-repo-pgbr_repo DNS:pgbr-pg15-ha-repo-pgbr_repo clientAuth",
        "db2 client CN=pgbr-pg15-ha-db2-postgres DNS:pgbr-pg15-ha-db2-postgres clientAuth",
    ] {
        assert!(listed.lines().any(|l| l == line), "no {line:?} in:\n{listed}");
    }
}

#[test]
fn deployed_checks_need_the_host() {
    let (dir, _out) = example_tree();
    let policy = root().join("examples/repo-host-pg15/policy.yaml");
    let fake = dir.path().join("root");
    fs::create_dir_all(&fake).unwrap();
    let (code, _, err) = run(&[
        "check",
        policy.to_str().unwrap(),
        "--deployed",
        "--root",
        fake.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("say which host this is with --host (repo, db1, db2)"),
        "{err}"
    );
    let (code, stdout, _) = run(&[
        "check",
        policy.to_str().unwrap(),
        "--deployed",
        "--root",
        fake.to_str().unwrap(),
        "--host",
        "repo",
    ]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("/etc/pgbackrest/pg15-ha/repository.conf: missing"),
        "{stdout}"
    );
    // The finding names the host checked, not only its cluster.
    assert!(stdout.starts_with("host repo (cluster pg15-ha): "), "{stdout}");
    assert!(
        !stdout.contains("database.conf"),
        "the repository host has no database side:\n{stdout}"
    );
    let (code, stdout, _) = run(&[
        "check",
        policy.to_str().unwrap(),
        "--deployed",
        "--root",
        fake.to_str().unwrap(),
        "--host",
        "db1",
    ]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("/etc/pgbackrest/pg15-ha/server.conf: missing"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("/srv/pgbackrest/central"),
        "no repository on a database host:\n{stdout}"
    );
}

/// The whole flow on one machine, each host in its own mount namespace (its own
/// /var/lib/pgbr-t14, state directory, unit and tmpfiles directories), the network shared
/// (loopback): one database host with PostgreSQL 15 (no Patroni), one repository host,
/// the generated scripts in the order of CHANGE.md, the CA's script, TLS servers under
/// bubblewrap. The lab scenario `repo-host` does it with Patroni on three hosts.
const E2E: &str = r#"
set -u
T=/var/lib/pgbr-t14 OUT=$1 POLICY=$2 TOOL=$3 PGB=/usr/lib/postgresql/15/bin
X=$T-xfer
STATE=$(mktemp -d /run/pgbr-t14.XXXXXX)
fail() { echo "E2E FAIL: $*"; exit 1; }
cleanup() {
  for n in db1 repo; do
    [ -f "$STATE/$n.pid" ] || continue
    nsenter -t "$(cat "$STATE/$n.pid")" -m -- sh -c "
      for p in /var/lib/pgbr-policy/t14/tls-server.pid; do [ -f \$p ] && kill \$(cat \$p) 2>/dev/null; done
      [ -d $T/pg ] && runuser -u postgres -- $PGB/pg_ctl -D $T/pg -m immediate stop >/dev/null 2>&1" || true
    kill "$(cat "$STATE/$n.pid")" 2>/dev/null
  done
  sleep 1
  for u in pgbrt14repo pgbrt14db; do userdel "$u" 2>/dev/null; groupdel "$u" 2>/dev/null; done
  rm -rf "$STATE" "$X"; rmdir "$T" 2>/dev/null
  true
}
trap cleanup EXIT
mkdir -p "$T"; mkdir -m 0755 "$X"
for n in repo db1; do
  unshare -m --propagation private sh -c "
    for d in $T /var/lib/pgbr-policy /etc/systemd/system /etc/tmpfiles.d; do mkdir -p \$d; mount -t tmpfs -o mode=0755 tmpfs \$d; done
    echo \$\$ > $STATE/$n.pid; exec sleep 600" &
done
sleep 1
on() { local n=$1; shift; nsenter -t "$(cat "$STATE/$n.pid")" -m -- "$@"; }
R=$OUT/t14/hosts/repo/shell D=$OUT/t14/hosts/db1/shell
echo "== 1. every host: os-user paths configs tls"
on repo $R/apply.sh --step os-user --step paths --step configs --step tls >/dev/null; [ $? = 3 ] || fail "repo step 1: expected exit 3 (PENDING)"
on db1 $D/apply.sh --step os-user --step paths --step configs --step tls >/dev/null; [ $? = 3 ] || fail "db1 step 1: expected exit 3 (PENDING)"
on repo sh -c "! grep -q 'PRIVATE' $T/tls/server.csr" || fail "a request holds a key"
# PostgreSQL starts only now: step 1 needs none (a new Patroni member has no PGDATA yet).
on db1 sh -c "mkdir -m 750 $T/pg && mkdir -m 755 $T/sock && chown postgres:postgres $T/pg $T/sock
  runuser -u postgres -- $PGB/initdb -D $T/pg -A peer >/dev/null
  printf '%s\n' port=57410 \"unix_socket_directories='$T/sock'\" \"listen_addresses=''\" >> $T/pg/postgresql.conf
  runuser -u postgres -- $PGB/pg_ctl -D $T/pg -l $T/pg/log.txt -w start >/dev/null" || fail "PostgreSQL did not start"
echo "== 2. the CA signs"
on db1 sh -c "cp $T/tls/server.csr $X/db1-server.csr; cp $T/tls/client.csr $X/db1-client.csr"
on repo sh -c "set -e; S=$OUT/t14/ca/sign.sh
  bash \$S init >/dev/null
  ! bash \$S sign repo client $T/tls/server.csr $X/wrong.crt 2>/dev/null
  bash \$S sign repo server $T/tls/server.csr $T/tls/server.crt >/dev/null
  bash \$S sign repo client $T/tls/client.csr $T/tls/client.crt >/dev/null
  bash \$S sign db1 server $X/db1-server.csr $X/db1-server.crt >/dev/null
  bash \$S sign db1 client $X/db1-client.csr $X/db1-client.crt >/dev/null
  cp $T/site/ca/ca.crt $T/tls/ca.crt; cp $T/site/ca/ca.crt $X/ca.crt" || fail "ca/sign.sh"
on db1 sh -c "cp $X/ca.crt $T/tls/ca.crt; cp $X/db1-server.crt $T/tls/server.crt; cp $X/db1-client.crt $T/tls/client.crt"
echo "== 3. the database host"
on db1 $D/apply.sh --start-tls-server --restart; [ $? = 3 ] || fail "db1 apply: expected exit 3 (archive waits for the stanza)"
echo "== 4. the repository host"
on repo $R/apply.sh --start-tls-server || fail "repo apply"
echo "== 5. archive on the database host"
on db1 $D/apply.sh --step archive --step restart --restart || fail "db1 archive"
echo "== idempotence"
on db1 $D/apply.sh | tail -n 1 | grep -q 'no change' || fail "db1: second run changed something"
on repo $R/apply.sh | tail -n 1 | grep -q 'no change' || fail "repo: second run changed something"
echo "== 6. verify, backup, drift"
on repo $R/verify.sh || fail "repo verify"
on db1 $D/verify.sh || fail "db1 verify"
on repo runuser -u pgbrt14repo -- "$PGBACKREST" --config=$T/etc/repository.conf --stanza=t14 --log-level-console=warn --type=full backup || fail "backup from the repository host"
on repo "$TOOL" check "$POLICY" --deployed --host repo || fail "drift on repo"
on db1 "$TOOL" check "$POLICY" --deployed --host db1 || fail "drift on db1"
echo "== must-nots"
# pgBackRest's info reports the refusal in its output and exits 0: read what it says.
on db1 runuser -u postgres -- "$PGBACKREST" --config=$T/etc/database.conf --stanza=t14 --repo1-host-port=57402 --log-level-console=error info 2>&1 | grep -q 'access denied' || fail "db1's owner was not refused by db1's TLS server"
on repo runuser -u pgbrt14repo -- "$PGBACKREST" --config=$T/etc/repository.conf --stanza=t14 --repo1-host=localhost --repo1-host-type=tls --repo1-host-port=57401 --repo1-host-ca-file=$T/tls/ca.crt --repo1-host-cert-file=$T/tls/client.crt --repo1-host-key-file=$T/tls/client.key --log-level-console=error info 2>&1 | grep -q 'access denied' || fail "the repository host's own client certificate was not refused by its TLS server (only the members' are allowed)"
on repo sh -c "! runuser -u pgbrt14db -- touch $T/repo/x 2>/dev/null" || fail "another user wrote the repository"
on db1 sh -c "! runuser -u pgbrt14db -- touch $T/pg/x 2>/dev/null" || fail "the backup user wrote PGDATA"
echo "== rollback"
on db1 $D/rollback.sh --remove-user >/dev/null || fail "db1 rollback"
on repo $R/rollback.sh --remove-user >/dev/null || fail "repo rollback"
echo "E2E OK"
"#;

#[test]
#[ignore = "tier postgres: needs root, PostgreSQL 15, pgBackRest (2.59.1 from scripts/pgbackrest-vendor, else Debian's), bubblewrap, unshare and nsenter (bash .ci/run runs every tier)"]
fn a_repository_host_and_a_database_host_back_up_end_to_end() {
    require_tool("bwrap", "bubblewrap");
    require_tool("nsenter", "util-linux");
    // PGBR_PGBACKREST=/usr/bin/pgbackrest runs it with Debian's 2.45.
    let pgbackrest = std::env::var("PGBR_PGBACKREST").unwrap_or_else(|_| {
        ["/opt/pgbackrest-2.59.1/bin/pgbackrest", "/usr/bin/pgbackrest"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("pgBackRest: run scripts/pgbackrest-vendor or apt-get install pgbackrest")
            .to_owned()
    });
    let dir = tempdir();
    let policy = write_policy(
        dir.path(),
        &format!(
            "version: 1
repositories:
  - name: t14r
    host: {{name: repo, address: localhost, tls_port: 57401}}
    path: /var/lib/pgbr-t14/repo
    backup_user: {{name: pgbrt14repo, home: /var/lib/pgbr-t14/home-repo}}
    lock: /var/lib/pgbr-t14/lock-repo
    log: /var/lib/pgbr-t14/log-repo
    ca_directory: /var/lib/pgbr-t14/site/ca
clusters:
  - name: t14
    postgres: {{major: 15, data_directory: /var/lib/pgbr-t14/pg, socket_directory: /var/lib/pgbr-t14/sock, port: 57410, bin_directory: /usr/lib/postgresql/15/bin}}
    backup_user: {{name: pgbrt14db, home: /var/lib/pgbr-t14/home-db}}
    role: {{name: t14_backup}}
    pgbackrest:
      binary: {pgbackrest}
      version: \"2.45\"
      tls: {{directory: /var/lib/pgbr-t14/tls}}
      config: {{repository_side: /var/lib/pgbr-t14/etc/repository.conf, database_side: /var/lib/pgbr-t14/etc/database.conf}}
      backup_user_paths: {{lock: /var/lib/pgbr-t14/lock-db, log: /var/lib/pgbr-t14/log-db}}
      owner_paths: {{lock: /var/lib/pgbr-t14/lock-pg, log: /var/lib/pgbr-t14/log-pg, spool: /var/lib/pgbr-t14/spool}}
      repository: t14r
    members: [{{name: db1, address: localhost, tls_port: 57402}}]
"
        ),
    );
    let out = dir.path().join("out");
    let (code, _, err) = run(&["generate", policy.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    // The tree must be readable by every user the scripts run as (they read siblings as root).
    let (ok, text) = outcome(
        std::process::Command::new("bash")
            .args(["-c", E2E, "e2e"])
            .arg(&out)
            .arg(&policy)
            .arg(bin())
            .env("PGBACKREST", &pgbackrest),
    );
    assert!(ok && text.contains("E2E OK"), "{text}");
}

#[test]
fn hostile_host_names_and_addresses_are_refused() {
    for (member, needle) in [
        ("{name: \"db 1\", address: db1.example}", "members[0].name"),
        ("{name: \"../x\", address: db1.example}", "members[0].name"),
        ("{name: db1, address: \"$(reboot)\"}", "members[0].address"),
        ("{name: db1, address: \"db1.example\\nx\"}", "members[0].address"),
        (
            "{name: db1, address: db1.example, tls_port: 70000}",
            "members[0].tls_port",
        ),
    ] {
        let err = rejected(&cluster("{repository: central}", &format!("    members: [{member}]\n")));
        assert_has(&err, &[needle]);
    }
    let err = rejected(
        "version: 1\nrepositories:\n  - name: c\n    host: {name: \"r;x\", address: \"-x\"}\nclusters:\n  - name: ha\n    postgres: {major: 15}\n",
    );
    assert_has(
        &err,
        &[
            "repositories[0].host.name",
            "not a valid host name",
            "repositories[0].host.address",
        ],
    );
}

#[test]
#[ignore = "tier tools: needs shellcheck or PyYAML (bash .ci/run runs every tier)"]
fn patroni_reads_the_archive_and_restore_commands_of_the_dynamic_configuration() {
    let (_dir, out) = example_tree();
    let file = out.join("pg15-ha/hosts/db2/patroni/dynamic-config.yml");
    let (ok, text) = outcome(
        std::process::Command::new("python3")
            .args([
                "-c",
                "import json, sys, yaml\nc = yaml.safe_load(open(sys.argv[1]))['postgresql']\nprint(json.dumps([c['parameters']['archive_mode'], c['parameters']['archive_command'], c['recovery_conf']['restore_command']]))",
            ])
            .arg(&file),
    );
    assert!(ok, "{text}");
    let got: Vec<String> = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(
        got,
        [
            "on",
            "/opt/pgbackrest-2.59.1/bin/pgbackrest --config=/etc/pgbackrest/pg15-ha/database.conf --stanza=ha archive-push %p",
            "/opt/pgbackrest-2.59.1/bin/pgbackrest --config=/etc/pgbackrest/pg15-ha/database.conf --stanza=ha archive-get %f \"%p\"",
        ]
    );
}
