//! Shared test helpers: running the built binary, temporary directories, examples.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary under test; PGBR_TEST_BIN runs the tests against another build (to see a
/// new test fail on the code before its fix).
pub fn bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| std::env::var("PGBR_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_pgbr-policy").to_owned()))
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the tool; returns (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out: Output = Command::new(bin()).args(args).output().expect("run pgbr-policy");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every example directory that has a policy.yaml, sorted.
pub fn examples() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .expect("examples/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("policy.yaml").is_file())
        .collect();
    out.sort();
    assert!(out.len() >= 2, "expected at least two examples");
    out
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("pgbr-test-")
        .tempdir()
        .expect("temp dir")
}

/// Writes a policy file into `dir` and returns its path.
pub fn write_policy(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("policy.yaml");
    std::fs::write(&path, text).expect("write policy");
    path
}

/// All regular files below `dir`, relative, sorted.
pub fn files_below(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Every entry below `dir` — directories, dot files and symlinks too — with its type,
/// mode and content: two equal snapshots mean nothing was written, created or removed.
pub fn snapshot(dir: &Path) -> Vec<String> {
    use sha2::Digest as _;
    use std::os::unix::fs::PermissionsExt as _;
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("lstat");
            let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let mode = meta.permissions().mode() & 0o7777;
            if meta.file_type().is_symlink() {
                out.push(format!("{rel} -> {}", std::fs::read_link(&path).unwrap().display()));
            } else if meta.is_dir() {
                out.push(format!("{rel}/ {mode:o}"));
                walk(root, &path, out);
            } else {
                let hash = sha2::Sha256::digest(std::fs::read(&path).expect("read"));
                out.push(format!("{rel} {mode:o} {hash:x}"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Runs a prepared command; returns (success, stdout followed by stderr).
pub fn outcome(command: &mut std::process::Command) -> (bool, String) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("running {:?}: {e}", command.get_program()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// A tool the tests need: fail loudly, naming the package, rather than skip.
pub fn require_tool(name: &str, package: &str) -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let candidate = Path::new(dir).join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("`{name}` is not installed: install it (Debian: apt-get install -y {package}); .ci/run does");
}

pub const MINIMAL: &str = "version: 1\nclusters:\n  - name: main\n    postgres:\n      major: 15\n";
