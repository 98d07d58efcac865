//! The command-line contract: exit codes, init, dry runs, refusing hand-edited files.

use crate::support::*;
use std::fs;
use std::path::PathBuf;

/// A temporary directory holding the minimal policy, generated into `out/`.
fn generated_minimal() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempdir();
    let policy = write_policy(dir.path(), MINIMAL);
    let out = dir.path().join("out");
    let (code, _, err) = run(&["generate", policy.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    (dir, policy, out)
}

#[test]
fn help_documents_exit_codes() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    for needle in ["0  success", "1  drift", "2  error", "generate", "check"] {
        assert!(out.contains(needle), "--help lacks {needle:?}:\n{out}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let (code, _, err) = run(&["generate"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = run(&["no-such-command"]);
    assert_eq!(code, 2);
}

#[test]
fn init_writes_a_valid_policy_and_never_overwrites() {
    let dir = tempdir();
    let path = dir.path().join("p.yaml");
    let p = path.to_str().unwrap();
    assert_eq!(run(&["init", p]).0, 0);
    let (code, out, err) = run(&["validate", p]);
    assert_eq!(code, 0, "{out}{err}");
    let before = fs::read(&path).unwrap();
    let (code, _, err) = run(&["init", p]);
    assert_eq!(code, 2);
    assert!(err.contains("never overwrites"), "{err}");
    assert_eq!(fs::read(&path).unwrap(), before);
}

#[test]
fn generate_then_check_is_in_sync_and_twice_gives_the_same_bytes() {
    let dir = tempdir();
    let policy = write_policy(dir.path(), MINIMAL);
    let out1 = dir.path().join("a");
    let out2 = dir.path().join("b");
    for out in [&out1, &out2] {
        let (code, _, err) = run(&["generate", policy.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
    }
    let files = files_below(&out1);
    assert_eq!(files, files_below(&out2));
    for f in &files {
        assert_eq!(
            fs::read(out1.join(f)).unwrap(),
            fs::read(out2.join(f)).unwrap(),
            "{f} differs between runs"
        );
    }
    let (code, out, err) = run(&["check", policy.to_str().unwrap(), "--against", out1.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    // A second generate into the same directory changes nothing.
    let (code, _, err) = run(&["generate", policy.to_str().unwrap(), "--out", out1.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(err.contains("0 written"), "{err}");
}

#[test]
fn scripts_are_executable_and_the_manifest_verifies() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempdir();
    let policy = write_policy(dir.path(), MINIMAL);
    let out = dir.path().join("out");
    assert_eq!(
        run(&["generate", policy.to_str().unwrap(), "--out", out.to_str().unwrap()]).0,
        0
    );
    for script in ["apply.sh", "rollback.sh", "verify.sh"] {
        let mode = fs::metadata(out.join("main/shell").join(script))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o755, "{script}");
    }
    let mode = fs::metadata(out.join("main/sql/apply.sql"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o644);
    let status = std::process::Command::new("sha256sum")
        .args(["-c", "--quiet", "MANIFEST.sha256"])
        .current_dir(&out)
        .status()
        .unwrap();
    assert!(status.success(), "sha256sum -c MANIFEST.sha256 failed");
}

#[test]
fn generate_refuses_hand_edited_files_unless_forced() {
    let (dir, policy, out) = generated_minimal();
    let (p, o) = (policy.to_str().unwrap(), out.to_str().unwrap());
    let edited = out.join("main/sql/apply.sql");
    fs::write(&edited, "-- my local change\n").unwrap();
    // Change the policy so that generate has something to write elsewhere too.
    write_policy(dir.path(), &MINIMAL.replace("major: 15", "major: 16"));
    let before = snapshot(&out);
    let (code, _, err) = run(&["generate", p, "--out", o]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("main/sql/apply.sql"), "{err}");
    assert_eq!(
        snapshot(&out),
        before,
        "a refused generate must leave the tree as it was"
    );
    assert_eq!(
        fs::read_to_string(&edited).unwrap(),
        "-- my local change\n",
        "nothing may be written"
    );
    assert!(
        fs::read_to_string(out.join("main/CHANGE.md"))
            .unwrap()
            .contains("PostgreSQL 15"),
        "nothing may be written"
    );
    let (code, _, err) = run(&["generate", p, "--out", o, "--force"]);
    assert_eq!(code, 0, "{err}");
    assert!(fs::read_to_string(&edited).unwrap().contains("PostgreSQL 16"));
}

#[test]
fn check_reports_drift_with_exit_1_and_json() {
    let (_dir, policy, out) = generated_minimal();
    let (p, o) = (policy.to_str().unwrap(), out.to_str().unwrap());
    fs::write(out.join("main/hba/pg_hba.conf.snippet"), "local all all trust\n").unwrap();
    fs::write(out.join("main/stale.txt"), "old\n").unwrap();
    let (code, stdout, _) = run(&["check", p, "--against", o]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("main/hba/pg_hba.conf.snippet: modified (edited by hand"),
        "{stdout}"
    );
    assert!(stdout.contains("main/stale.txt: not generated"), "{stdout}");
    let (code, stdout, _) = run(&["diff", p, "--against", o]);
    assert_eq!(code, 1);
    assert!(stdout.contains("-local all all trust"), "{stdout}");
    let (code, stdout, _) = run(&["check", p, "--against", o, "--format", "json"]);
    assert_eq!(code, 1);
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["in_sync"], false);
    let files = doc["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{stdout}");
    assert_eq!(files[0]["status"], "modified");
    assert_eq!(files[0]["edited_by_hand"], true);
    assert_eq!(files[0]["cause"], "edited-by-hand");
    assert_eq!(files[1]["status"], "not-generated");
    assert_eq!(doc["schema"], "pgbr-policy/drift/v2");
    assert!(doc["host"].as_array().unwrap().is_empty() && doc["database"].as_array().unwrap().is_empty());
}

#[test]
fn a_policy_change_is_told_apart_from_a_hand_edit() {
    let (dir, policy, out) = generated_minimal();
    let (p, o) = (policy.to_str().unwrap(), out.to_str().unwrap());
    write_policy(dir.path(), &MINIMAL.replace("major: 15", "major: 16"));
    let (code, stdout, _) = run(&["check", p, "--against", o]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("main/sql/apply.sql: modified (as generated: the policy or pgbr-policy changed)"),
        "{stdout}"
    );
    let (_, stdout, _) = run(&["check", p, "--against", o, "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let apply = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "main/sql/apply.sql")
        .unwrap();
    assert_eq!(apply["cause"], "policy-or-tool-changed");
    assert_eq!(apply["edited_by_hand"], false);
}

#[test]
fn dry_run_writes_nothing() {
    let dir = tempdir();
    let policy = write_policy(dir.path(), MINIMAL);
    let out = dir.path().join("out");
    let (code, stdout, _) = run(&[
        "generate",
        policy.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--dry-run",
    ]);
    assert_eq!(code, 0);
    assert!(stdout.contains("would write"), "{stdout}");
    assert!(!out.exists());
}

#[test]
fn explain_prints_both_tables_with_reasons() {
    let (code, out, err) = run(&[
        "explain",
        root().join("examples/article-pg14/policy.yaml").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("### File permissions") && out.contains("### Database permissions"),
        "{out}"
    );
    assert!(
        out.contains("`pg_catalog.pg_start_backup(text, boolean, boolean)`"),
        "{out}"
    );
    assert!(out.contains("revoked from PUBLIC"), "{out}");
}

#[test]
fn generate_writes_through_no_symlink_and_leaves_no_temporary_file() {
    let (dir, policy, out) = generated_minimal();
    let (p, o) = (policy.to_str().unwrap(), out.to_str().unwrap());
    // A policy change rewrites files through the staging directory: none may remain.
    write_policy(dir.path(), &MINIMAL.replace("major: 15", "major: 16"));
    let (code, _, err) = run(&["generate", p, "--out", o]);
    assert_eq!(code, 0, "{err}");
    let leftovers: Vec<_> = snapshot(&out).into_iter().filter(|e| e.contains(".pgbr-")).collect();
    assert!(leftovers.is_empty(), "temporary entries left: {leftovers:?}");
    // A directory of the tree replaced by a symlink elsewhere: refused, nothing changes
    // here or there.
    let elsewhere = dir.path().join("elsewhere");
    fs::rename(out.join("main/sql"), &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, out.join("main/sql")).unwrap();
    write_policy(dir.path(), MINIMAL);
    let (before, before_elsewhere) = (snapshot(&out), snapshot(&elsewhere));
    let (code, _, err) = run(&["generate", p, "--out", o]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("symbolic link") && err.contains("main/sql"), "{err}");
    assert_eq!(snapshot(&out), before);
    assert_eq!(snapshot(&elsewhere), before_elsewhere);
}

#[test]
fn a_killed_generate_leaves_staging_that_the_next_run_removes() {
    let (_dir, policy, out) = generated_minimal();
    let (p, o) = (policy.to_str().unwrap(), out.to_str().unwrap());
    // What a run killed during its commit leaves: its staging directory (no such pid).
    let abandoned = out.join(".pgbr-staging-4294967295");
    fs::create_dir_all(abandoned.join("0")).unwrap();
    fs::write(abandoned.join("0/7"), "a staged copy\n").unwrap();
    // Not a staging directory of ours: left alone.
    fs::write(out.join(".pgbr-staging-notes"), "mine\n").unwrap();
    let (code, _, err) = run(&["generate", p, "--out", o]);
    assert_eq!(code, 0, "{err}");
    assert!(!abandoned.exists(), "the abandoned staging directory is still there");
    assert!(out.join(".pgbr-staging-notes").exists());
}

/// Root writing into a directory another user owns could be redirected by that user
/// (entries swapped for symlinks while it writes): generate refuses, naming the owner.
#[test]
#[ignore = "tier root: needs root (users, owners, namespaces) (bash .ci/run runs every tier)"]
fn generate_refuses_a_directory_owned_by_another_user() {
    use std::os::unix::fs::MetadataExt as _;
    let dir = tempdir();
    assert_eq!(
        std::fs::metadata(dir.path()).unwrap().uid(),
        0,
        "this test chowns a directory to `nobody` and must run as root"
    );
    let policy = write_policy(dir.path(), MINIMAL);
    let theirs = dir.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    let status = std::process::Command::new("chown")
        .args(["nobody", theirs.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    // The directory itself.
    let (code, _, err) = run(&["generate", policy.to_str().unwrap(), "--out", theirs.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("belongs to `nobody`") && err.contains(theirs.to_str().unwrap()),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&theirs).unwrap().count(), 0, "nothing may be written");
    // A new directory inside it (and deeper).
    for out in [theirs.join("out"), theirs.join("a/b/out")] {
        let (code, _, err) = run(&["generate", policy.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("the directory it would be created in") && err.contains("belongs to `nobody`"),
            "{err}"
        );
        assert_eq!(std::fs::read_dir(&theirs).unwrap().count(), 0, "nothing may be created");
    }
    // Root's own directory, new or existing, is fine.
    let mine = dir.path().join("mine/out");
    for _ in 0..2 {
        let (code, _, err) = run(&["generate", policy.to_str().unwrap(), "--out", mine.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
    }
}
