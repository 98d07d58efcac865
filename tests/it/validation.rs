//! Bad policies: exit 2, one message per problem naming file:line:col and the field,
//! and nothing written.

use crate::support::*;

/// Runs `generate` on `policy` and returns stderr, asserting exit 2 and no output dir.
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

#[test]
fn unknown_key_names_line_and_key() {
    let err = rejected("version: 1\nclusters:\n  - name: main\n    postgres:\n      major: 15\n      prot: 5433\n");
    assert_has(&err, &["policy.yaml:6:7", "unknown key `prot`; did you mean `port`?"]);
}

#[test]
fn relative_path_is_refused_with_field_and_line() {
    let err = rejected(
        "version: 1\nclusters:\n  - name: main\n    postgres:\n      major: 15\n      data_directory: var/lib/pg\n",
    );
    assert_has(
        &err,
        &[
            "policy.yaml:6:23",
            "clusters[0].postgres.data_directory",
            "not an absolute path",
        ],
    );
}

#[test]
fn shell_metacharacters_in_paths_are_refused() {
    let err = rejected(
        "version: 1\nclusters:\n  - name: main\n    postgres:\n      major: 15\n    pgbackrest:\n      repository: \"/var/lib/$(reboot)\"\n",
    );
    assert_has(&err, &[":7:19", "clusters[0].pgbackrest.repository", "`$`"]);
}

#[test]
fn pg10_with_a_separate_user_is_impossible() {
    let err = rejected("version: 1\nclusters:\n  - name: old\n    postgres:\n      major: 10\n");
    assert_has(&err, &["clusters[0].postgres.major", "no group access", "11"]);
}

#[test]
fn pg9_is_refused() {
    let err = rejected("version: 1\nclusters:\n  - name: old\n    postgres:\n      major: 9\n");
    assert_has(&err, &[":5:14", "superuser"]);
}

#[test]
fn backup_standby_needs_pg15() {
    let err = rejected(
        "version: 1\nclusters:\n  - name: main\n    postgres:\n      major: 14\n    pgbackrest:\n      commands: [backup, backup-standby]\n",
    );
    assert_has(&err, &["clusters[0].pgbackrest.commands[1]", ":7:26", "pg_checkpoint"]);
}

#[test]
fn backup_user_equal_to_owner_is_refused() {
    let err = rejected(
        "version: 1\nclusters:\n  - name: main\n    postgres:\n      major: 15\n    backup_user:\n      name: postgres\n",
    );
    assert_has(&err, &["clusters[0].backup_user.name", ":7:13", "must differ"]);
}

#[test]
fn every_error_is_reported_at_once() {
    let err = rejected(
        "version: 1\nclusters:\n  - name: Main\n    postgres:\n      major: 15\n      port: 70000\n    role:\n      name: \"bad\\nname\"\n",
    );
    assert_has(
        &err,
        &[
            "clusters[0].name",
            "clusters[0].postgres.port",
            "clusters[0].role.name",
            "3 errors",
        ],
    );
}

#[test]
fn missing_required_fields() {
    let err = rejected("version: 1\nclusters:\n  - postgres: {}\n");
    assert_has(
        &err,
        &[
            "clusters[0].name: is required",
            "clusters[0].postgres.major: is required",
        ],
    );
}

#[test]
fn scram_without_a_password_source() {
    let err =
        rejected("version: 1\nclusters:\n  - name: main\n    postgres: {major: 15}\n    role: {auth: scram-sha-256}\n");
    assert_has(
        &err,
        &["clusters[0].role.auth", "password_file", "never goes in the policy"],
    );
}

#[test]
fn shared_lock_path_is_refused() {
    let err = rejected(
        "version: 1\nclusters:\n  - name: main\n    postgres: {major: 15}\n    pgbackrest:\n      backup_user_paths: {lock: /run/pgbackrest-postgres}\n",
    );
    assert_has(&err, &["backup_user_paths.lock", "[050]"]);
}

#[test]
fn repository_inside_pgdata_is_refused() {
    let err = rejected(
        "version: 1\nclusters:\n  - name: main\n    postgres: {major: 15, data_directory: /srv/pg}\n    pgbackrest: {repository: /srv/pg/repo}\n",
    );
    assert_has(&err, &["pgbackrest.repository", "overlaps the data directory"]);
}

#[test]
fn syntax_errors_and_non_utf8() {
    let err = rejected("version: 1\nclusters: [\n");
    assert_has(&err, &["policy.yaml:"]);
    let dir = tempdir();
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, b"version: 1\xff\n").unwrap();
    let (code, _, err) = run(&["validate", path.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("not UTF-8"), "{err}");
}

#[test]
fn alias_bombs_are_refused_quickly() {
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let started = std::time::Instant::now();
    rejected(&bomb);
    assert!(started.elapsed().as_secs() < 10, "took {:?}", started.elapsed());
}

#[test]
fn pg16_without_a_pgbackrest_version_warns() {
    let dir = tempdir();
    let path = write_policy(dir.path(), &MINIMAL.replace("major: 15", "major: 17"));
    let (code, _, err) = run(&["validate", path.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(err.contains("warning:") && err.contains("2.53.1"), "{err}");
    let path = write_policy(
        dir.path(),
        "version: 1\nclusters:\n  - name: main\n    postgres: {major: 16}\n    pgbackrest: {version: \"2.45\"}\n",
    );
    let (code, _, err) = run(&["validate", path.to_str().unwrap()]);
    assert_eq!(code, 2, "a pgBackRest too old for the major is an error: {err}");
    assert!(err.contains(":5:27") && err.contains("needs pgBackRest 2.46"), "{err}");
}

#[test]
fn lock_directories_default_to_run_with_a_tmpfiles_entry() {
    let dir = tempdir();
    let path = write_policy(dir.path(), MINIMAL);
    let out = dir.path().join("out");
    let (code, _, err) = run(&["generate", path.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let conf = std::fs::read_to_string(out.join("main/pgbackrest/repository.conf")).unwrap();
    assert!(conf.contains("lock-path=/run/pgbackrest-pgbackrest"), "{conf}");
    let conf = std::fs::read_to_string(out.join("main/pgbackrest/database.conf")).unwrap();
    assert!(conf.contains("lock-path=/run/pgbackrest-postgres"), "{conf}");
    let tmpfiles = std::fs::read_to_string(out.join("main/systemd/pgbr-main.conf")).unwrap();
    for line in [
        "d /run/pgbackrest-pgbackrest 0750 pgbackrest pgbackrest -",
        "d /run/pgbackrest-postgres 0750 postgres postgres -",
    ] {
        assert!(tmpfiles.lines().any(|l| l == line), "missing {line:?} in:\n{tmpfiles}");
    }
    assert!(
        !std::fs::read_to_string(out.join("main/CHANGE.md"))
            .unwrap()
            .contains("/tmp/")
    );
}

#[test]
fn managed_paths_in_world_writable_directories_are_refused() {
    for (field, yaml, value) in [
        (
            "pgbackrest.backup_user_paths.lock",
            "backup_user_paths: {lock: /tmp/pgbackrest}",
            "/tmp/pgbackrest",
        ),
        (
            "pgbackrest.owner_paths.lock",
            "owner_paths: {lock: /var/tmp/pgbr}",
            "/var/tmp/pgbr",
        ),
        (
            "pgbackrest.owner_paths.log",
            "owner_paths: {log: /dev/shm/log}",
            "/dev/shm/log",
        ),
        ("pgbackrest.repository", "repository: /tmp/repo", "/tmp/repo"),
        ("pgbackrest.tls.directory", "tls: {directory: /tmp/tls}", "/tmp/tls"),
        (
            "pgbackrest.config.database_side",
            "config: {database_side: /tmp/c/db.conf}",
            "/tmp/c",
        ),
        (
            "pgbackrest.backup_user_paths.lock",
            "backup_user_paths: {lock: /run/lock/pgbr}",
            "/run/lock/pgbr",
        ),
    ] {
        let err = rejected(&format!(
            "version: 1\nclusters:\n  - name: main\n    postgres: {{major: 15}}\n    pgbackrest:\n      {yaml}\n"
        ));
        assert_has(
            &err,
            &[
                "policy.yaml:6:",
                &format!("clusters[0].{field}: `{value}`"),
                "every local user can write",
            ],
        );
    }
}

#[test]
fn root_paths_inside_a_users_directory_are_refused() {
    for (yaml, field, needles) in [
        (
            "backup_user: {home: /srv/bkp}\n    pgbackrest: {tls: {directory: /srv/bkp/tls}}",
            "pgbackrest.tls.directory",
            &[
                "`/srv/bkp/tls`, the TLS directory (owned by root), lies inside `/srv/bkp`, the backup user's home (clusters[0].backup_user.home), which belongs to `pgbackrest`",
                "root would create and write files inside a directory that user can write",
            ][..],
        ),
        (
            "pgbackrest: {repository: /srv/repo, config: {repository_side: /srv/repo/conf/r.conf}}",
            "pgbackrest.config.repository_side",
            &["lies inside `/srv/repo`, the repository"][..],
        ),
        (
            "pgbackrest: {owner_paths: {log: /srv/pglog}, config: {database_side: /srv/pglog/db.conf}}",
            "pgbackrest.config.database_side",
            &["which belongs to `postgres`"][..],
        ),
        (
            "pgbackrest: {owner_paths: {log: /var/log/pg}, backup_user_paths: {log: /var/log/pg/bkp}}",
            "pgbackrest.backup_user_paths.log",
            &[
                "(owned by `pgbackrest`), lies inside `/var/log/pg`, the cluster owner's log directory",
                "belongs to `postgres`",
            ][..],
        ),
        (
            "pgbackrest: {repository: /srv/repo, owner_paths: {log: /srv/repo/log}}",
            "pgbackrest.owner_paths.log",
            &["belongs to `pgbackrest`"][..],
        ),
        (
            "postgres: {major: 15, socket_directory: /srv/sock}\n    pgbackrest: {backup_user_paths: {lock: /srv/sock/lock}}",
            "pgbackrest.backup_user_paths.lock",
            &["the socket directory"][..],
        ),
    ] {
        let yaml = if yaml.starts_with("postgres:") {
            yaml.to_owned()
        } else {
            format!("postgres: {{major: 15}}\n    {yaml}")
        };
        let err = rejected(&format!("version: 1\nclusters:\n  - name: main\n    {yaml}\n"));
        assert_has(&err, &[&format!("clusters[0].{field}: ")]);
        assert_has(&err, needles);
    }
    // Inside the data directory: the message of its own, once.
    let err = rejected(
        "version: 1\nclusters:\n  - name: main\n    postgres: {major: 15, data_directory: /srv/pg}\n    pgbackrest: {backup_user_paths: {log: /srv/pg/log}}\n",
    );
    assert_has(&err, &["overlaps the data directory", "1 error"]);
}

#[test]
fn the_policy_size_is_checked_before_reading() {
    // A sparse 1 GiB file: read whole, it would need 1 GiB of memory; the limit is 4 MiB.
    let dir = tempdir();
    let path = dir.path().join("policy.yaml");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(1 << 30).unwrap();
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("ulimit -v 400000; exec {} validate {}", bin(), path.display()))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("the file is 1073741824 bytes; a policy may be at most 4194304"),
        "{err}"
    );
    // An endless file is read only up to the limit.
    let (code, _, err) = run(&["validate", "/dev/zero"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("the file is more than 4194304 bytes"), "{err}");
}

const S3_POLICY: &str = "version: 1
repositories:
  - name: offsite
    type: s3
    s3: {bucket: acme-pg-backups, region: eu-west-1, endpoint: s3.eu-west-1.amazonaws.com, admin_principal: \"arn:aws:iam::123456789012:role/admin\"}
    credentials: {database_side: /etc/keys/db.key, backup_side: /etc/keys/backup.key}
    object_lock: {mode: compliance, days: 30}
clusters:
  - name: main
    postgres: {major: 15}
    pgbackrest: {repository: offsite}
";

#[test]
fn s3_repository_errors_name_field_and_line() {
    let err = rejected(&S3_POLICY.replace("acme-pg-backups", "Bad_Bucket"));
    assert_has(
        &err,
        &["policy.yaml:5:", "repositories[0].s3.bucket", "not an S3 bucket name"],
    );
    let err = rejected(&S3_POLICY.replace("backup_side: /etc/keys/backup.key", "backup_side: /etc/keys/db.key"));
    assert_has(&err, &["repositories[0].credentials.backup_side", "two keys"]);
    let err = rejected(&S3_POLICY.replace("repository: offsite", "repository: elsewhere"));
    assert_has(
        &err,
        &["policy.yaml:11:", "clusters[0].pgbackrest.repository", "offsite"],
    );
    let err = rejected(&S3_POLICY.replace("credentials: {", "credentials: {source: instance, "));
    assert_has(&err, &["repositories[0].credentials.source", "ONE identity"]);
    let err = rejected(&S3_POLICY.replace(
        "object_lock: {mode: compliance, days: 30}",
        "object_lock: {mode: compliance}\n    versioning: false",
    ));
    assert_has(
        &err,
        &[
            "repositories[0].object_lock.days",
            "is required",
            "repositories[0].versioning",
            "object lock needs versioning",
        ],
    );
    let err = rejected(
        &S3_POLICY
            .replace(
                "endpoint: s3.eu-west-1.amazonaws.com",
                "endpoint: http://127.0.0.1:9000",
            )
            .replace(
                "postgres: {major: 15}",
                "postgres: {major: 15}\n    pgbackrest: {version: \"2.45\"}",
            )
            .replace("    pgbackrest: {repository: offsite}\n", "")
            .replace("{version: \"2.45\"}", "{version: \"2.45\", repository: offsite}"),
    );
    assert_has(&err, &["clusters[0].pgbackrest.version", "2.58.0"]);
}

#[test]
fn s3_tree_has_no_secret_and_no_tls_server() {
    let dir = tempdir();
    let path = write_policy(dir.path(), S3_POLICY);
    let out = dir.path().join("out");
    let (code, _, stderr) = run(&["generate", path.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let mut texts = String::new();
    for entry in walk(&out) {
        texts.push_str(&std::fs::read_to_string(&entry).unwrap_or_default());
    }
    // The key files are named (apply.sh reads them), their content never is: no key
    // option is written with a value anywhere in the tree.
    assert!(texts.contains("/etc/keys/db.key"));
    assert!(
        !texts
            .lines()
            .any(|l| l.trim_start().starts_with("repo1-s3-key") || l.contains("aws_secret_access_key =")),
        "a key option with a value in the tree"
    );
    assert!(!out.join("main/systemd/pgbr-tls-main.service").exists());
    let conf = std::fs::read_to_string(out.join("main/pgbackrest/database.conf")).unwrap();
    assert!(conf.contains("repo1-type=s3") && !conf.contains("repo1-host"), "{conf}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Values that would be wildcards in IAM, options in argv, or break the ini, the JSON
/// or the shell plan block are refused by name and line (the allowlists in
/// policy/resolve/repository.rs).
#[test]
fn s3_hostile_values_are_refused_by_field() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "bucket: acme-pg-backups",
            "bucket: \"a$(id)b\"",
            "repositories[0].s3.bucket",
        ),
        (
            "bucket: acme-pg-backups",
            "bucket: \"a..b\"",
            "repositories[0].s3.bucket",
        ),
        (
            "region: eu-west-1",
            "region: \"eu-west-1;x\"",
            "repositories[0].s3.region",
        ),
        (
            "endpoint: s3.eu-west-1.amazonaws.com",
            "endpoint: \"-x\"",
            "repositories[0].s3.endpoint",
        ),
        (
            "endpoint: s3.eu-west-1.amazonaws.com",
            "endpoint: \"h\\nrepo1-s3-key=x\"",
            "repositories[0].s3.endpoint",
        ),
        (
            "endpoint: s3.eu-west-1.amazonaws.com",
            "endpoint: \"h:0\"",
            "repositories[0].s3.endpoint",
        ),
        (
            "region: eu-west-1",
            "region: eu-west-1, prefix: \"/pg*\"",
            "repositories[0].s3.prefix",
        ),
        (
            "region: eu-west-1",
            "region: eu-west-1, prefix: \"/a/../b\"",
            "repositories[0].s3.prefix",
        ),
        (
            "region: eu-west-1",
            "region: eu-west-1, prefix: \"/a/\"",
            "repositories[0].s3.prefix",
        ),
        (
            "region: eu-west-1",
            "region: eu-west-1, ca_file: rel.crt",
            "repositories[0].s3.ca_file",
        ),
        ("role/admin", "role/ad\\\"min", "repositories[0].s3.admin_principal"),
        (
            "database_side: /etc/keys/db.key",
            "database_side: keys/db.key",
            "repositories[0].credentials.database_side",
        ),
        (
            "database_side: /etc/keys/db.key",
            "database_side: /tmp/db.key",
            "repositories[0].credentials.database_side",
        ),
        ("name: offsite", "name: \"off site\"", "repositories[0].name"),
        ("type: s3", "type: gcs", "repositories[0].type"),
        (
            "mode: compliance",
            "mode: legal-hold",
            "repositories[0].object_lock.mode",
        ),
        ("days: 30", "days: 0", "repositories[0].object_lock.days"),
    ];
    for (from, to, field) in cases {
        let policy = S3_POLICY.replace(from, to);
        assert_ne!(policy, S3_POLICY, "{from} not found");
        let err = rejected(&policy);
        assert_has(&err, &[field, "policy.yaml:"]);
    }
}
