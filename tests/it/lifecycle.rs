//! The backup lifecycle's generated pieces that need no server: restore.sh's argument
//! checks (exit 2 before anything is touched, before even the root check), and the
//! runbook beside CHANGE.md.

use crate::support::*;
use std::process::Command;

fn generated() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempdir();
    let out = dir.path().join("out");
    let policy = root().join("examples/debian-pg15/policy.yaml");
    let (code, _, err) = run(&["generate", policy.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let cluster = out.join("pg15-main");
    (dir, cluster)
}

fn restore(cluster: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::new("bash")
        .arg(cluster.join("shell/restore.sh"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn restore_refuses_bad_arguments_with_exit_2() {
    let (_dir, cluster) = generated();
    for (args, says) in [
        (&[][..], "--to DIR"),
        (&["--in-place", "--to", "/srv/r"][..], "not both"),
        (&["--to", "relative"][..], "absolute"),
        (&["--to", "/srv/../etc"][..], ".."),
        (&["--to", "/var/lib/postgresql/15/main"][..], "use --in-place"),
        (&["--to", "/var/lib/postgresql/15/main/x"][..], "inside the data directory"),
        (&["--to", "/var/lib/pgbackrest/x"][..], "inside the repository"),
        (&["--in-place", "--time", "2026-01-31 14:05:00"][..], "no zone"),
        (&["--in-place", "--time", "yesterday+00"][..], "not a time"),
        (&["--in-place", "--lsn", "0/3000060; rm"][..], "not an LSN"),
        (&["--in-place", "--set", "latest"][..], "not a backup label"),
        (&["--in-place", "--time", "2026-01-31 14:05:00+00", "--lsn", "0/1"][..], "one target"),
        (&["--in-place", "--exclusive"][..], "needs a target"),
        (&["--in-place", "--target-action", "reboot"][..], "promote, pause or shutdown"),
        (&["--in-place", "--bogus"][..], "Usage"),
    ] {
        let (code, err) = restore(&cluster, args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn restore_with_good_arguments_goes_on_to_the_root_check() {
    // Good arguments pass the argument checks: the script goes on to the host checks
    // (root, pgBackRest, the database-side configuration), which fail here with exit 1
    // and an ERROR line, not with exit 2 and a usage message.
    let (_dir, cluster) = generated();
    for args in [
        &["--in-place"][..],
        &["--to", "/srv/restore", "--time", "2026-01-31 14:05:00.123+02:00", "--exclusive"][..],
        &["--to", "/srv/restore", "--lsn", "0/3000060", "--set", "20260131-020000F_20260201-020000I"][..],
        &["--in-place", "--name", "before upgrade", "--target-action", "pause", "--dry-run"][..],
    ] {
        let (code, err) = restore(&cluster, args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains("] ERROR: ") && !err.contains("restore.sh: "), "{args:?}: {err}");
        if !is_root() {
            assert!(err.contains("run me as root"), "{args:?}: {err}");
        }
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout == b"0\n").unwrap_or(false)
}

#[test]
fn the_runbook_names_the_commands_of_this_cluster() {
    let (_dir, cluster) = generated();
    let md = std::fs::read_to_string(cluster.join("RESTORE.md")).unwrap();
    for needle in [
        "shell/restore.sh --in-place",
        "--config=/etc/pgbackrest/pg15-main/repository.conf --stanza=main info",
        "systemctl stop postgresql@15-main.service",
        "--type=full backup",
    ] {
        assert!(md.contains(needle), "RESTORE.md lacks {needle}:\n{md}");
    }
    let (_dir2, pat) = {
        let dir = tempdir();
        let out = dir.path().join("out");
        let policy = root().join("examples/patroni-pg15/policy.yaml");
        assert_eq!(run(&["generate", policy.to_str().unwrap(), "--out", out.to_str().unwrap()]).0, 0);
        (dir, out)
    };
    let md = std::fs::read_to_string(pat.join("pg15-patroni/RESTORE.md")).unwrap();
    assert!(md.contains("Rebuild one member") && md.contains("Rebuild the whole cluster"), "{md}");
}
