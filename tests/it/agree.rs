//! One rule, two evaluators: the shell library's host procedures (what apply.sh,
//! verify.sh, rollback.sh, the Patroni hook and, through apply.sh, the Ansible role run)
//! and the Rust drift checks must agree on the same inputs — the data-directory rule on a
//! tree with a tablespace and a linked pg_wal, and the managed hba block's grammar on
//! files where cluster `c` and cluster `c-2` share one pg_hba.conf. Unprivileged: the
//! shell runs as the current user, which owns the tree.

use crate::support::*;
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A directory outside /tmp (validation refuses managed paths in world-writable ones).
fn workdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("agree-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}

fn mode(path: &Path, bits: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(bits)).unwrap();
}

fn write(path: &Path, bits: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, b"x").unwrap();
    mode(path, bits);
}

fn mkdir(path: &Path, bits: u32) {
    std::fs::create_dir_all(path).unwrap();
    mode(path, bits);
}

/// Generates the policy for cluster(s) on `data`; returns the output directory.
fn generate(dir: &Path, clusters: &[&str], data: &Path) -> (PathBuf, pgbr_policy::plan::Plan) {
    let mut text = String::from("version: 1\nclusters:\n");
    for name in clusters {
        text.push_str(&format!(
            "  - name: {name}\n    postgres: {{major: 15, data_directory: {}}}\n    pgbackrest: {{stanza: {name}}}\n",
            data.display()
        ));
    }
    let policy = write_policy(dir, &text);
    let out = dir.join("out");
    let (code, _, err) = run(&["generate", policy.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let loaded = pgbr_policy::policy::load(&policy).unwrap();
    (out, pgbr_policy::plan::build(&loaded.policy))
}

/// Runs a snippet after sourcing a cluster's lib.sh, with the cluster owner set to the
/// current user (the tree is ours); returns stdout lines.
fn shell(lib: &Path, script: &str) -> Vec<String> {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(". \"$1\"; PG_OWNER=$(id -un); {script}"))
        .arg("bash")
        .arg(lib)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_data_directory_rule_is_the_same_in_shell_and_in_rust() {
    let dir = workdir();
    let base = dir.path().canonicalize().unwrap();
    let data = base.join("data");
    // Good entries, and one of each kind of bad one, in PGDATA, a tablespace and a
    // linked pg_wal (no entry is bad in two ways: the Rust report counts each kind).
    mkdir(&data, 0o750);
    write(&data.join("PG_VERSION"), 0o640);
    write(&data.join("base/1/1259"), 0o600); // lacks group read
    mode(&data.join("base"), 0o750);
    mode(&data.join("base/1"), 0o750);
    write(&data.join("postgresql.conf"), 0o644); // open to others
    mkdir(&data.join("pg_tblspc"), 0o750);
    let ts = base.join("ts1");
    mkdir(&ts, 0o750);
    write(&ts.join("PG_15_202209061/5/16390"), 0o660); // group-writable
    mode(&ts.join("PG_15_202209061"), 0o750);
    mkdir(&ts.join("PG_15_202209061/5"), 0o700); // lacks group search
    std::os::unix::fs::symlink(&ts, data.join("pg_tblspc/16384")).unwrap();
    let wal = base.join("wal");
    mkdir(&wal, 0o750);
    write(&wal.join("000000010000000000000001"), 0o600); // lacks group read
    std::os::unix::fs::symlink(&wal, data.join("pg_wal")).unwrap();

    let (out, plan) = generate(&base, &["c"], &data);
    let lib = out.join("c/shell/lib.sh");
    let shell_says: BTreeSet<String> = shell(
        &lib,
        "datadir_load_roots || { echo \"refused: $DATADIR_PROBLEM\"; exit 1; }; datadir_breaking",
    )
    .into_iter()
    .collect();
    let expected: BTreeSet<String> = [
        data.join("base/1/1259"),
        data.join("postgresql.conf"),
        ts.join("PG_15_202209061/5/16390"),
        ts.join("PG_15_202209061/5"),
        wal.join("000000010000000000000001"),
    ]
    .iter()
    .map(|p| p.display().to_string())
    .collect();
    assert_eq!(shell_says, expected, "the shell rule (lib/datadir.sh)");

    let findings = pgbr_policy::deployed::compare(&plan, Path::new("/"), None).unwrap();
    let data_findings: Vec<_> = findings
        .iter()
        .filter(|f| f.item == data.display().to_string() && f.problem.starts_with("entries of the data directory"))
        .collect();
    let mut rust_says = BTreeSet::new();
    let mut counted = 0;
    for f in &data_findings {
        let (count, examples) = f.found.split_once(", e.g. ").expect(&f.found);
        counted += count.parse::<usize>().unwrap();
        rust_says.extend(examples.split(", ").map(str::to_owned));
    }
    assert_eq!(counted, expected.len(), "the Rust rule's counts: {data_findings:?}");
    assert_eq!(rust_says, expected, "the Rust rule (check --deployed)");

    // And the shell fix leaves nothing for either to report.
    shell(&lib, "datadir_fix || { echo \"$DATADIR_ERRORS\"; exit 1; }");
    assert!(shell(&lib, "datadir_load_roots; datadir_breaking").is_empty());
    let findings = pgbr_policy::deployed::compare(&plan, Path::new("/"), None).unwrap();
    assert!(
        !findings
            .iter()
            .any(|f| f.problem.starts_with("entries of the data directory")),
        "{findings:?}"
    );
}

#[test]
fn a_tablespace_link_to_a_tree_of_another_user_is_refused_by_the_shell_rule() {
    // The rule runs as the cluster owner and refuses to follow a link out of its files.
    let dir = workdir();
    let base = dir.path().canonicalize().unwrap();
    let data = base.join("data");
    mkdir(&data.join("pg_tblspc"), 0o750);
    // A directory of another user: /etc when we are not root; as root, one given to nobody.
    let foreign = if is_root() {
        let d = base.join("foreign");
        mkdir(&d, 0o755);
        let status = Command::new("chown").arg("65534").arg(&d).status().unwrap();
        assert!(status.success());
        d
    } else {
        PathBuf::from("/etc")
    };
    std::os::unix::fs::symlink(&foreign, data.join("pg_tblspc/16384")).unwrap();
    let (out, _) = generate(&base, &["c"], &data);
    let said = shell(
        &out.join("c/shell/lib.sh"),
        "if datadir_load_roots; then echo loaded; else echo \"$DATADIR_PROBLEM\"; fi",
    );
    assert_eq!(said.len(), 1);
    let want = format!("points at {}", foreign.display());
    assert!(said[0].contains(&want) && said[0].contains("refused"), "{said:?}");
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
fn the_hba_block_grammar_is_the_same_in_shell_and_in_rust() {
    let dir = workdir();
    let base = dir.path().canonicalize().unwrap();
    let (out, _) = generate(&base, &["c", "c-2"], &base.join("data"));
    let cases: &[(&str, &str)] = &[
        (
            "c and c-2 in one file",
            "# BEGIN pgbr-policy c-2 (managed block)\nlocal db r2 peer\n# END pgbr-policy c-2\n# BEGIN pgbr-policy c (managed block)\nlocal db r peer\n# END pgbr-policy c\nlocal all all peer\n",
        ),
        (
            "CRLF",
            "# BEGIN pgbr-policy c\r\nlocal db r peer\r\n# END pgbr-policy c\r\nlocal all all peer\r\n",
        ),
        (
            "no block",
            "local all all peer\nhost all all 127.0.0.1/32 scram-sha-256\n",
        ),
        (
            "BEGIN without END",
            "# BEGIN pgbr-policy c\nlocal db r peer\nlocal all all peer\n",
        ),
        (
            "a marker that only starts like ours",
            "# BEGIN pgbr-policy cx\nlocal db r peer\n# END pgbr-policy cx\n",
        ),
    ];
    for (what, content) in cases {
        let file = base.join("pg_hba.conf");
        std::fs::write(&file, content).unwrap();
        // Shell: lib/hba_block.sh's awk, as the directory's user (here: ourselves).
        let shell_out = Command::new("bash")
            .arg("-c")
            .arg(". \"$1\"; hba_block root strip \"$2\"")
            .arg("bash")
            .arg(out.join("c/shell/lib.sh"))
            .arg(&file)
            .output()
            .unwrap();
        let shell_result = match shell_out.status.code() {
            Some(0) => Ok(String::from_utf8_lossy(&shell_out.stdout).into_owned()),
            code => Err(code),
        };
        // Rust: src/plan/block.rs, which check --deployed uses.
        let lines: Vec<&str> = content.split_inclusive('\n').collect();
        let trimmed: Vec<&str> = lines.iter().map(|l| l.trim_end_matches('\n')).collect();
        let rust_result = pgbr_policy::plan::block::without(&trimmed, "pgbr-policy c")
            .map(|kept| kept.iter().map(|l| format!("{l}\n")).collect::<String>());
        match (&shell_result, &rust_result) {
            (Ok(s), Ok(r)) => assert_eq!(s, r, "{what}: the two strip differently"),
            (Err(code), Err(_)) => assert_eq!(*code, Some(3), "{what}: the shell failed otherwise"),
            _ => panic!("{what}: shell {shell_result:?}, Rust {rust_result:?}"),
        }
    }
}
