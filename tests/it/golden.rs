//! Golden trees: every example renders byte for byte (and mode for mode) to its
//! committed `expected/` directory, and the tool's own `check` agrees.
//! After an intended change: `PGBR_UPDATE_GOLDEN=1 cargo test golden`, then review the
//! diff of examples/*/expected like any other change.

use crate::support::*;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;

#[test]
fn examples_render_to_their_committed_trees() {
    let dir = tempdir();
    let update = std::env::var_os("PGBR_UPDATE_GOLDEN").is_some();
    for example in examples() {
        let name = example.file_name().unwrap().to_string_lossy().into_owned();
        let expected = example.join("expected");
        let out = dir.path().join(&name);
        let (code, _, err) = run(&[
            "generate",
            example.join("policy.yaml").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{name}: {err}");
        if update {
            let _ = fs::remove_dir_all(&expected);
            let (code, _, err) = run(&[
                "generate",
                example.join("policy.yaml").to_str().unwrap(),
                "--out",
                expected.to_str().unwrap(),
            ]);
            assert_eq!(code, 0, "{err}");
            continue;
        }
        assert!(
            expected.is_dir(),
            "{name}: no expected/ tree; run PGBR_UPDATE_GOLDEN=1 cargo test golden"
        );
        let files = files_below(&out);
        assert_eq!(files, files_below(&expected), "{name}: the set of files differs");
        for f in &files {
            let got = fs::read(out.join(f)).unwrap();
            let want = fs::read(expected.join(f)).unwrap();
            assert!(
                got == want,
                "{name}/{f} differs from the committed golden file:\n{}",
                first_difference(&want, &got)
            );
            let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o111;
            assert_eq!(
                mode(&out.join(f)),
                mode(&expected.join(f)),
                "{name}/{f}: executable bit differs"
            );
        }
        let (code, stdout, err) = run(&[
            "check",
            example.join("policy.yaml").to_str().unwrap(),
            "--against",
            expected.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{name}: check reports drift:\n{stdout}{err}");
    }
}

fn first_difference(want: &[u8], got: &[u8]) -> String {
    let want = String::from_utf8_lossy(want);
    let got = String::from_utf8_lossy(got);
    for (i, (w, g)) in want.lines().zip(got.lines()).enumerate() {
        if w != g {
            return format!("line {}:\n  expected: {w}\n  got:      {g}", i + 1);
        }
    }
    format!(
        "lengths differ: expected {} lines, got {}",
        want.lines().count(),
        got.lines().count()
    )
}

#[test]
fn the_article_example_corrects_the_article() {
    let tree = root().join("examples/article-pg14/expected/foobar");
    let apply = fs::read_to_string(tree.join("sql/apply.sql")).unwrap();
    // PG 14: the non-exclusive signatures, the two functions the article forgot for
    // backup, and no exclusive-mode pg_stop_backup().
    assert!(
        apply.contains("GRANT EXECUTE ON FUNCTION pg_catalog.pg_start_backup(text, boolean, boolean) TO \"backrest\";")
    );
    assert!(apply.contains("GRANT EXECUTE ON FUNCTION pg_catalog.pg_stop_backup(boolean, boolean) TO \"backrest\";"));
    assert!(apply.contains("pg_catalog.pg_switch_wal()"));
    assert!(!apply.contains("pg_stop_backup() TO"));
    assert!(apply.contains("REVOKE CREATE ON SCHEMA public FROM PUBLIC"));
    let hba = fs::read_to_string(tree.join("hba/pg_hba.conf.snippet")).unwrap();
    let rules: Vec<&str> = hba.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        rules,
        [
            "local\tpostgres\tbackrest\tpeer\tmap=pgbr_foobar",
            "local\tall\tbackrest\treject",
            "host\tall\tbackrest\tall\treject",
            "local\treplication\tbackrest\treject",
            "host\treplication\tbackrest\tall\treject",
        ]
    );
    let repo = fs::read_to_string(tree.join("pgbackrest/repository.conf")).unwrap();
    assert!(repo.contains("tls-server-auth=pgbr-foobar-postgres=foobar"));
    let db = fs::read_to_string(tree.join("pgbackrest/database.conf")).unwrap();
    assert!(db.contains("repo1-host-config=/etc/pgbackrest/foobar/repository.conf"));
    assert!(!db.contains("pg1-user"), "the database side connects as the owner");
}
