//! SQL artifacts against a real PostgreSQL 15 (Debian's binaries), started on a Unix
//! socket in a temporary directory: apply.sql twice, verify.sql passes; an extra or a
//! missing grant makes verify.sql fail; apply.sql converges back. Runs as root (it
//! starts the server as `postgres`), as .ci/run does.

use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

pub(crate) struct Server {
    dir: tempfile::TempDir,
    port: u16,
}

impl Server {
    pub(crate) fn start(name: &str) -> Server {
        assert!(
            Path::new(PG_BIN).join("initdb").is_file(),
            "PostgreSQL 15 server binaries are missing: apt-get install -y postgresql-15 (.ci/run does)"
        );
        assert_eq!(
            unsafe_uid(),
            0,
            "the PostgreSQL tests start the server as `postgres` and must run as root"
        );
        let dir = tempdir();
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let data = dir.path().join("data");
        let sock = dir.path().join("sock");
        for path in [&data, &sock] {
            let status = Command::new("install")
                .args(["-d", "-o", "postgres", "-g", "postgres", "-m", "0750"])
                .arg(path)
                .status()
                .unwrap();
            assert!(status.success());
        }
        let port = 56000 + (std::process::id() % 500) as u16 + name.len() as u16 * 7;
        as_postgres(&[
            &format!("{PG_BIN}/initdb"),
            "-D",
            data.to_str().unwrap(),
            "--allow-group-access",
            "-A",
            "peer",
            "-U",
            "postgres",
            "--no-sync",
        ]);
        as_postgres(&[
            &format!("{PG_BIN}/pg_ctl"),
            "-D",
            data.to_str().unwrap(),
            "-l",
            data.join("server.log").to_str().unwrap(),
            "-w",
            "-o",
            &format!(
                "-c listen_addresses='' -c unix_socket_directories='{}' -p {port} -c fsync=off -c full_page_writes=off",
                sock.display()
            ),
            "start",
        ]);
        Server { dir, port }
    }

    pub(crate) fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub(crate) fn sock(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// psql as postgres; `sql` on stdin.
    pub(crate) fn psql(&self, db: &str, extra: &[&str], sql: &str) -> Output {
        use std::io::Write as _;
        let port = self.port.to_string();
        let mut child = Command::new("runuser")
            .args([
                "-u",
                "postgres",
                "--",
                "psql",
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                self.sock().to_str().unwrap(),
                "-p",
                &port,
                "-d",
                db,
            ])
            .args(extra)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(sql.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    pub(crate) fn psql_ok(&self, db: &str, extra: &[&str], sql: &str) -> String {
        let out = self.psql(db, extra, sql);
        assert!(
            out.status.success(),
            "psql failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub(crate) fn restart(&self) {
        // -l: without it the new postmaster keeps our pipes open and output() never ends.
        let log = self.data().join("server.log");
        as_postgres(&[
            &format!("{PG_BIN}/pg_ctl"),
            "-D",
            self.data().to_str().unwrap(),
            "-l",
            log.to_str().unwrap(),
            "-w",
            "-m",
            "fast",
            "restart",
        ]);
    }

    /// Puts the generated snippets at the top of the live files, as apply.sh does.
    pub(crate) fn splice_hba(&self, tree: &Path) {
        for (snippet, live) in [
            ("hba/pg_hba.conf.snippet", "pg_hba.conf"),
            ("hba/pg_ident.conf.snippet", "pg_ident.conf"),
        ] {
            let path = self.data().join(live);
            let text = std::fs::read_to_string(tree.join(snippet)).unwrap() + &std::fs::read_to_string(&path).unwrap();
            std::fs::write(&path, text).unwrap();
        }
        let errors = self.psql_ok(
            "postgres",
            &["-At"],
            "SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL;",
        );
        assert_eq!(errors.trim(), "0", "the generated hba lines do not parse");
        self.psql_ok("postgres", &[], "SELECT pg_reload_conf();");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args([
                "-u",
                "postgres",
                "--",
                &format!("{PG_BIN}/pg_ctl"),
                "-D",
                self.data().to_str().unwrap(),
                "-m",
                "immediate",
                "stop",
            ])
            .output();
    }
}

fn unsafe_uid() -> u32 {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn as_postgres(args: &[&str]) {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub(crate) fn generate(policy: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempdir();
    let path = write_policy(dir.path(), policy);
    let out = dir.path().join("out");
    let (code, _, err) = run(&["generate", path.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    (dir, out)
}

pub(crate) fn sql(tree: &Path, name: &str) -> String {
    std::fs::read_to_string(tree.join("sql").join(name)).unwrap()
}

pub(crate) fn policy(server: &Server, role: &str) -> String {
    format!(
        "version: 1\nclusters:\n  - name: t\n    postgres:\n      major: 15\n      data_directory: {}\n      socket_directory: {}\n      port: {}\n    role:\n      name: {}\n    pgbackrest: {{version: \"2.45\"}}\n",
        server.data().display(),
        server.sock().display(),
        server.port,
        serde_json::to_string(role).unwrap()
    )
}

pub(crate) fn verify(server: &Server, tree: &Path) -> Output {
    server.psql("postgres", &["-At"], &sql(tree, "verify.sql"))
}

#[test]
#[ignore = "tier postgres: needs root and PostgreSQL 15 (bash .ci/run runs every tier)"]
fn apply_twice_then_verify_then_drift_is_caught_and_repaired() {
    let server = Server::start("apply");
    let (_keep, out) = generate(&policy(&server, "pgbackrest"));
    let tree = out.join("t");
    // Before anything: verify fails (no role).
    assert!(!verify(&server, &tree).status.success());
    for _ in 0..2 {
        server.psql_ok("postgres", &["--single-transaction"], &sql(&tree, "apply.sql"));
    }
    server.splice_hba(&tree);
    server.psql_ok("postgres", &[], &sql(&tree, "archive.sql"));
    server.restart();
    let out = verify(&server, &tree);
    assert!(
        out.status.success(),
        "verify.sql failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("FAIL"), "{text}");
    assert!(
        text.contains("ok  |role may execute pg_backup_start(text,boolean)"),
        "{text}"
    );

    assert!(
        text.contains("ok  |pg_hba.conf rule 5 is: host replication pgbackrest reject"),
        "{text}"
    );
    // `all` does not cover replication: the role's replication connections are refused
    // by its own lines, before any broader `replication` line (initdb's `local
    // replication all peer` here) can match.
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--", "psql", "-X", "-At", "-c", "IDENTIFY_SYSTEM"])
        .arg(format!(
            "host={} port={} user=pgbackrest dbname=postgres replication=true",
            server.sock().display(),
            server.port()
        ))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("pg_hba.conf rejects replication connection"),
        "{err}"
    );

    // An extra privilege is drift as much as a missing one.
    server.psql_ok(
        "postgres",
        &[],
        "GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_file(text) TO pgbackrest;",
    );
    let out = verify(&server, &tree);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("role holds no other EXECUTE grant")
            && err.contains("role may not execute pg_catalog.pg_read_file(text)"),
        "{err}"
    );
    server.psql_ok("postgres", &[], "GRANT pg_monitor TO pgbackrest; REVOKE EXECUTE ON FUNCTION pg_catalog.pg_switch_wal() FROM pgbackrest; ALTER ROLE pgbackrest NOINHERIT;");
    let err = String::from_utf8_lossy(&verify(&server, &tree).stderr).into_owned();
    for needle in [
        "role may execute pg_switch_wal()",
        "role is a member of no other role",
        "role inherits (INHERIT)",
    ] {
        assert!(err.contains(needle), "{needle}: {err}");
    }
    // apply.sql converges back to exactly the plan.
    server.psql_ok("postgres", &["--single-transaction"], &sql(&tree, "apply.sql"));
    assert!(verify(&server, &tree).status.success());

    // rollback.sql removes the role and is safe to run twice.
    for _ in 0..2 {
        server.psql_ok("postgres", &["--single-transaction"], &sql(&tree, "rollback.sql"));
    }
    let count = server.psql_ok(
        "postgres",
        &["-At"],
        "SELECT count(*) FROM pg_roles WHERE rolname = 'pgbackrest';",
    );
    assert_eq!(count.trim(), "0");
}

#[test]
#[ignore = "tier postgres: needs root and PostgreSQL 15 (bash .ci/run runs every tier)"]
fn hostile_role_names_are_inert_in_sql_and_hba() {
    let server = Server::start("hostile");
    let role = "it's \"q\" $(x); DROP ROLE postgres; --";
    // `"` cannot be written in pg_hba.conf: validation refuses it.
    let dir = tempdir();
    let path = write_policy(dir.path(), &policy(&server, role));
    let (code, _, err) = run(&["validate", path.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("clusters[0].role.name") && err.contains("cannot quote"),
        "{err}"
    );
    // Without the double quotes, the rest is rendered inert and the role is created
    // with exactly that name.
    let role = "it's $(x); DROP ROLE postgres; -- \\ all";
    let (_keep, out) = generate(&policy(&server, role));
    let tree = out.join("t");
    server.psql_ok("postgres", &["--single-transaction"], &sql(&tree, "apply.sql"));
    server.psql_ok("postgres", &["--single-transaction"], &sql(&tree, "apply.sql"));
    server.splice_hba(&tree);
    let names = server.psql_ok(
        "postgres",
        &["-At"],
        "SELECT rolname FROM pg_roles WHERE rolname NOT LIKE 'pg\\_%' ORDER BY 1;",
    );
    assert_eq!(
        names.lines().collect::<Vec<_>>(),
        ["it's $(x); DROP ROLE postgres; -- \\ all", "postgres"]
    );
    let rules = server.psql_ok(
        "postgres",
        &["-At"],
        "SELECT user_name[1] FROM pg_hba_file_rules ORDER BY line_number LIMIT 3;",
    );
    assert_eq!(rules.lines().collect::<Vec<_>>(), [role, role, role]);
    let out = server.psql("postgres", &["-At"], &sql(&tree, "verify.sql"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ok  |role may execute pg_backup_stop(boolean)"), "{text}");
    assert!(text.contains("ok  |pg_hba.conf rule 3 is: host all"), "{text}");
}
