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
