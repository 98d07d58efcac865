//! The data-directory rule (lib/datadir.sh: apply.sh's step, the Patroni hook, and the
//! Ansible role, which runs apply.sh and has no copy of its own) on real trees: both
//! paths (one `chmod -R` for 1,000+ entries, batched chmod for a few) give group read,
//! and an entry chmod cannot change (an immutable file) fails the step loudly, naming it
//! — never a "gave group read" over a tree that still lacks it.

use crate::support::*;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// An immutable file for the life of the guard (chattr +i; cleared on drop, so a failed
/// test leaves a removable tree).
struct Immutable(PathBuf);

impl Immutable {
    fn set(path: &Path) -> Self {
        let chattr = require_tool("chattr", "e2fsprogs");
        let status = Command::new(&chattr).arg("+i").arg(path).status().unwrap();
        assert!(
            status.success(),
            "chattr +i {} failed: this test needs root and a file system with the immutable flag (ext4, xfs, btrfs, tmpfs)",
            path.display()
        );
        Self(path.to_path_buf())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

/// `files` files 0600 in directories of 100, 0700, like base/<db>/<relfilenode>.
fn data_tree(root: &Path, files: usize) -> PathBuf {
    let data = root.join("data");
    for i in 0..files {
        let dir = data.join("base").join((i / 100).to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(i.to_string());
        std::fs::write(&file, b"").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    for dir in [data.join("base"), data.clone()] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    for entry in std::fs::read_dir(data.join("base")).unwrap() {
        std::fs::set_permissions(entry.unwrap().path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    data
}

/// Generates a one-cluster policy on `data`; returns the generated tree.
fn generated_for(root: &Path, data: &Path) -> PathBuf {
    let policy = root.join("policy.yaml");
    std::fs::write(
        &policy,
        format!(
            "version: 1\nclusters:\n  - name: t\n    postgres: {{major: 15, data_directory: {}}}\n",
            data.display()
        ),
    )
    .unwrap();
    let out = root.join("out");
    let (code, _, err) = run(&["generate", policy.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    out
}

/// Runs the data-directory rule of the shell library (lib/datadir.sh, which apply.sh's
/// step and the Patroni hook run) alone, as root: it acts as the cluster owner.
fn shell_step(out: &Path) -> (bool, String) {
    outcome(
        Command::new("bash")
            .args([
                "-c",
                ". \"$1\"; STEP=data; if datadir_fix; then [ \"$DATADIR_FIXED\" = 0 ] || echo \"[data] gave group read to $DATADIR_FIXED entries\"; else echo \"[data] ERROR: $DATADIR_ERRORS\"; exit 1; fi",
                "bash",
            ])
            .arg(out.join("t/shell/lib.sh")),
    )
}

/// The tree belongs to the cluster owner (the rule runs as that user), and the
/// temporary directory above it must let that user through.
fn give_to_owner(root: &Path, data: &Path) {
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let status = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(data)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "chown -R postgres: this test needs root and the postgres user (apt-get install postgresql-15)"
    );
}

fn lacking_group_read(data: &Path) -> Vec<String> {
    let output = Command::new("find")
        .arg(data)
        .args([
            "(", "-type", "d", "!", "-perm", "-g+rx", ")", "-o", "(", "-type", "f", "!", "-perm", "-g+r", ")",
        ])
        .args(["-print"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
#[ignore = "tier root: needs root (users, owners, namespaces) (bash .ci/run runs every tier)"]
fn both_paths_give_group_read_and_an_unchangeable_entry_fails_the_step() {
    // 1,200 entries to change: the chmod -R path; 5: the batched path.
    for files in [1200, 5] {
        let dir = tempdir();
        let data = data_tree(dir.path(), files);
        give_to_owner(dir.path(), &data);
        let out = generated_for(dir.path(), &data);
        let stuck = data.join("base/0/0");
        {
            let _guard = Immutable::set(&stuck);
            let (ok, text) = shell_step(&out);
            assert!(!ok, "{files} files: an immutable file did not fail the step:\n{text}");
            assert!(
                text.contains("Operation not permitted") && text.contains(stuck.to_str().unwrap()),
                "{files} files: the error does not name the entry:\n{text}"
            );
            assert!(!text.contains("] gave group read"), "claims success:\n{text}");
        }
        let (ok, text) = shell_step(&out);
        assert!(ok, "{files} files:\n{text}");
        assert_eq!(
            lacking_group_read(&data),
            Vec::<String>::new(),
            "{files} files:\n{text}"
        );
        assert!(
            text.contains("] gave group read"),
            "{files} files: no change reported:\n{text}"
        );
        // Nothing left to do: the next run changes nothing.
        let (ok, text) = shell_step(&out);
        assert!(ok, "{text}");
        assert!(
            !text.contains("] gave group read"),
            "a second run changed something:\n{text}"
        );
    }
}
