//! Issue 19: a drift check that never cries wolf. Labels from the tree's side, an ignore
//! rule for committed trees, modes in the manifest, dry runs that refuse where the real
//! run refuses, the policy's file name out of the artifacts, and the deployed check
//! finding Debian's pg_hba.conf.

use crate::support::*;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;

fn generated() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempdir();
    let policy = write_policy(dir.path(), MINIMAL);
    let out = dir.path().join("out");
    let (code, _, err) = run(&["generate", policy.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    (dir, policy, out)
}

#[test]
fn labels_speak_from_the_trees_side() {
    let (_dir, policy, out) = generated();
    let (p, o) = (policy.to_str().unwrap(), out.to_str().unwrap());
    fs::remove_file(out.join("main/sql/verify.sql")).unwrap();
    fs::write(out.join("main/notes.txt"), "mine\n").unwrap();
    let (code, stdout, _) = run(&["check", p, "--against", o]);
    assert_eq!(code, 1);
    assert!(stdout.contains("main/sql/verify.sql: missing"), "{stdout}");
    assert!(stdout.contains("main/notes.txt: not generated"), "{stdout}");
    let (_, stdout, _) = run(&["check", p, "--against", o, "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["schema"], "pgbr-policy/drift/v2");
    let status = |path: &str| {
        doc["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == path)
            .map(|f| f["status"].clone())
    };
    assert_eq!(status("main/sql/verify.sql").unwrap(), "missing");
    assert_eq!(status("main/notes.txt").unwrap(), "not-generated");
}

#[test]
fn a_committed_tree_may_hold_git_files_readmes_and_what_the_ignore_file_lists() {
    let (_dir, policy, out) = generated();
    let (p, o) = (policy.to_str().unwrap(), out.to_str().unwrap());
    fs::create_dir_all(out.join(".git/objects")).unwrap();
    fs::write(out.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    fs::write(out.join(".gitignore"), "*.orig\n").unwrap();
    fs::write(out.join("main/.gitkeep"), "").unwrap();
    fs::write(out.join("README.md"), "# our artifacts\n").unwrap();
    fs::write(out.join("main/README"), "notes\n").unwrap();
    let (code, stdout, err) = run(&["check", p, "--against", o]);
    assert_eq!(code, 0, "{stdout}{err}");
    // Anything else is drift, until the ignore file lists it.
    fs::create_dir_all(out.join("docs")).unwrap();
    fs::write(out.join("docs/runbook.txt"), "x\n").unwrap();
    fs::write(out.join("main/local.orig"), "x\n").unwrap();
    let (code, stdout, _) = run(&["check", p, "--against", o]);
    assert_eq!(code, 1, "{stdout}");
    fs::write(out.join(".pgbr-ignore"), "# ours\ndocs/\n*.orig\n").unwrap();
    let (code, stdout, err) = run(&["check", p, "--against", o]);
    assert_eq!(code, 0, "{stdout}{err}");
    // A generated file is never ignored: listing it does not hide its drift.
    fs::write(out.join(".pgbr-ignore"), "main/sql/\n").unwrap();
    fs::write(out.join("main/sql/apply.sql"), "x\n").unwrap();
    let (code, stdout, _) = run(&["check", p, "--against", o]);
    assert_eq!(code, 1, "{stdout}");
    // generate leaves them alone too.
    let (code, _, err) = run(&["generate", p, "--out", o, "--force"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.join(".git/HEAD").exists() && out.join("README.md").exists());
}

#[test]
fn a_mode_changed_by_hand_is_reported_as_such() {
    let (_dir, policy, out) = generated();
    let (p, o) = (policy.to_str().unwrap(), out.to_str().unwrap());
    let manifest = fs::read_to_string(out.join("MANIFEST.sha256")).unwrap();
    assert!(manifest.contains("0755 main/shell/apply.sh"), "{manifest}");
    let script = out.join("main/shell/apply.sh");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o700)).unwrap();
    let (code, stdout, _) = run(&["check", p, "--against", o]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("main/shell/apply.sh: mode changed (changed by hand since it was generated)"),
        "{stdout}"
    );
    let (_, stdout, _) = run(&["check", p, "--against", o, "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["files"][0]["cause"], "edited-by-hand", "{stdout}");
    // The manifest still verifies with sha256sum -c.
    let status = std::process::Command::new(require_tool("sha256sum", "coreutils"))
        .args(["-c", "--strict", "--quiet", "MANIFEST.sha256"])
        .current_dir(&out)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn dry_run_refuses_exactly_where_the_real_run_refuses() {
    let (_dir, policy, out) = generated();
    let (p, o) = (policy.to_str().unwrap(), out.to_str().unwrap());
    fs::write(out.join("main/sql/apply.sql"), "-- mine\n").unwrap();
    let before = snapshot(&out);
    let (real, _, real_err) = run(&["generate", p, "--out", o]);
    let (dry, stdout, dry_err) = run(&["generate", p, "--out", o, "--dry-run"]);
    assert_eq!((real, dry), (2, 2), "{stdout}{dry_err}");
    assert!(dry_err.contains("main/sql/apply.sql"), "{dry_err}");
    assert!(real_err.contains("main/sql/apply.sql"));
    assert!(!stdout.contains("would write"), "{stdout}");
    assert_eq!(snapshot(&out), before);
    let (code, stdout, err) = run(&["generate", p, "--out", o, "--dry-run", "--force"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        stdout.contains("would write") && stdout.contains("main/sql/apply.sql"),
        "{stdout}"
    );
    assert_eq!(snapshot(&out), before);
    // A symlink where a file goes: both refuse.
    fs::remove_file(out.join("main/sql/verify.sql")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", out.join("main/sql/verify.sql")).unwrap();
    assert_eq!(run(&["generate", p, "--out", o, "--force"]).0, 2);
    assert_eq!(run(&["generate", p, "--out", o, "--force", "--dry-run"]).0, 2);
}

#[test]
fn renaming_the_policy_file_rewrites_nothing() {
    let (dir, policy, out) = generated();
    let renamed = dir.path().join("fleet-prod.yaml");
    fs::rename(&policy, &renamed).unwrap();
    let (r, o) = (renamed.to_str().unwrap(), out.to_str().unwrap());
    let (code, stdout, err) = run(&["check", r, "--against", o]);
    assert_eq!(code, 0, "{stdout}{err}");
    let (code, _, err) = run(&["generate", r, "--out", o]);
    assert_eq!(code, 0);
    assert!(err.contains(" 0 written"), "{err}");
}

#[test]
fn deployed_check_finds_debians_hba_file_in_etc_postgresql() {
    let dir = tempdir();
    // The starter policy's shape: layout debian, no hba_file.
    let policy = write_policy(
        dir.path(),
        "version: 1\nclusters:\n  - name: main\n    postgres: {layout: debian, major: 15}\n",
    );
    let root = dir.path().join("root");
    let conf = root.join("etc/postgresql/15/main");
    fs::create_dir_all(&conf).unwrap();
    fs::create_dir_all(root.join("var/lib/postgresql/15/main")).unwrap();
    fs::write(conf.join("pg_hba.conf"), "local all postgres peer\n").unwrap();
    fs::write(conf.join("pg_ident.conf"), "").unwrap();
    let (code, stdout, err) = run(&[
        "check",
        policy.to_str().unwrap(),
        "--deployed",
        "--root",
        root.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        stdout.contains("/etc/postgresql/15/main/pg_hba.conf: managed block missing"),
        "{stdout}"
    );
    assert!(!stdout.contains("/var/lib/postgresql/15/main/pg_hba.conf"), "{stdout}");
    // postgresql.conf's own hba_file wins, as it does for the server.
    fs::write(conf.join("postgresql.conf"), "hba_file = '/srv/hba.conf'   # moved\n").unwrap();
    let (_, stdout, _) = run(&[
        "check",
        policy.to_str().unwrap(),
        "--deployed",
        "--root",
        root.to_str().unwrap(),
    ]);
    assert!(stdout.contains("/srv/hba.conf: missing"), "{stdout}");
}

#[test]
fn deployed_check_on_debian_follows_a_data_directory_with_its_own_postgresql_conf() {
    // A cluster made by initdb (not pg_createcluster) on a Debian host: the server is
    // started with -D PGDATA, so its pg_hba.conf is there, not in /etc/postgresql.
    let dir = tempdir();
    let policy = write_policy(
        dir.path(),
        "version: 1\nclusters:\n  - name: main\n    postgres: {layout: debian, major: 15, data_directory: /srv/pg/data}\n",
    );
    let root = dir.path().join("root");
    let data = root.join("srv/pg/data");
    fs::create_dir_all(&data).unwrap();
    fs::write(data.join("postgresql.conf"), "port = 5432\n").unwrap();
    fs::write(data.join("pg_hba.conf"), "local all postgres peer\n").unwrap();
    fs::write(data.join("pg_ident.conf"), "").unwrap();
    let (code, stdout, err) = run(&[
        "check",
        policy.to_str().unwrap(),
        "--deployed",
        "--root",
        root.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        stdout.contains("/srv/pg/data/pg_hba.conf: managed block missing"),
        "{stdout}"
    );
    assert!(!stdout.contains("/etc/postgresql/"), "{stdout}");
}

#[test]
fn rollback_restart_gives_a_second_permission_pass_after_its_own_restart() {
    let (_dir, _policy, out) = generated();
    let text = fs::read_to_string(out.join("main/shell/rollback.sh")).unwrap();
    let finish = text.find("STEP=finish").expect("finish");
    let after = &text[finish..];
    let restart = after.find("pg_ctl_restart").expect("restart in finish");
    assert!(
        after[restart..].contains("datadir_revoke"),
        "no permission pass after rollback's restart:\n{after}"
    );
}

/// A user and group that only NSS knows (a systemd userdb drop-in, as LDAP or SSSD would
/// be: not in /etc/passwd), removed when the test ends.
struct NssOnlyUser;

const NSS_USER: &str = "h19nss";

impl NssOnlyUser {
    fn create() -> NssOnlyUser {
        let dir = std::path::Path::new("/etc/userdb");
        fs::create_dir_all(dir).unwrap();
        fs::write(
            dir.join(format!("{NSS_USER}.user")),
            format!(r#"{{"userName":"{NSS_USER}","uid":60919,"gid":60919,"homeDirectory":"/nonexistent","shell":"/usr/sbin/nologin","disposition":"regular"}}"#),
        )
        .unwrap();
        fs::write(
            dir.join(format!("{NSS_USER}.group")),
            format!(r#"{{"groupName":"{NSS_USER}","gid":60919}}"#),
        )
        .unwrap();
        NssOnlyUser
    }
}

impl Drop for NssOnlyUser {
    fn drop(&mut self) {
        let dir = std::path::Path::new("/etc/userdb");
        let _ = fs::remove_file(dir.join(format!("{NSS_USER}.user")));
        let _ = fs::remove_file(dir.join(format!("{NSS_USER}.group")));
        let _ = fs::remove_dir(dir); // only when empty: someone else's records stay
    }
}

#[test]
#[ignore = "tier root: needs root (users, owners, namespaces) (bash .ci/run runs every tier)"]
fn deployed_check_on_the_host_resolves_owners_through_nss() {
    let _user = NssOnlyUser::create();
    let (ok, text) = outcome(std::process::Command::new("getent").args(["passwd", NSS_USER]));
    assert!(
        ok,
        "nss-systemd does not resolve the userdb drop-in (nsswitch.conf: passwd: files systemd): {text}"
    );
    assert!(!fs::read_to_string("/etc/passwd").unwrap().contains(NSS_USER));
    // Not under /tmp: validation refuses a home there.
    let dir = tempfile::Builder::new()
        .prefix("pgbr-nss-")
        .tempdir_in(root().join("target"))
        .unwrap();
    let home = dir.path().join("home");
    fs::create_dir(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(60919), Some(60919)).unwrap();
    fs::set_permissions(&home, fs::Permissions::from_mode(0o750)).unwrap();
    let policy = write_policy(
        dir.path(),
        &format!(
            "version: 1\nclusters:\n  - name: main\n    postgres: {{major: 15}}\n    backup_user: {{name: {NSS_USER}, group: {NSS_USER}, home: {}}}\n",
            home.display()
        ),
    );
    let (code, stdout, err) = run(&["check", policy.to_str().unwrap(), "--deployed", "--root", "/"]);
    assert!(code == 0 || code == 1, "{err}");
    let about_home: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains(&format!("{}:", home.display())))
        .collect();
    assert!(
        about_home.is_empty(),
        "the home is as planned, its owner known to NSS: {about_home:?}"
    );
    assert!(!stdout.contains("no such user on the host"), "{stdout}");
}
