//! Drift against a deployed host (a fake root laid out as apply.sh would) and against a
//! live PostgreSQL: in sync gives exit 0, each kind of change exit 1 and a line naming it.

use crate::postgres::{Server, generate, policy, sql};
use crate::support::*;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

/// Reads a bash array or variable from the plan block of a generated script.
fn plan_values(apply: &Path, expr: &str) -> Vec<String> {
    let script = format!(
        "eval \"$(awk '/^CLUSTER=/ {{ on = 1 }} on {{ print }} on && /^MANAGED_PATHS=/ {{ m = 1 }} m && /^\\)$/ {{ exit }}' '{}')\"; printf '%s\\n' {expr}",
        apply.display()
    );
    let out = Command::new("bash").arg("-c").arg(script).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn chown(path: &Path, owner: &str, group: &str) {
    let status = Command::new("chown")
        .arg("-h")
        .arg(format!("{owner}:{group}"))
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Lays out under `root` what apply.sh would leave on a host, from the plan block.
fn deploy(root: &Path, tree: &Path) {
    let apply = tree.join("shell/lib.sh");
    let managed = plan_values(&apply, "\"${MANAGED_PATHS[@]}\"");
    let on_root = |p: &str| root.join(p.trim_start_matches('/'));
    for entry in managed.chunks(5) {
        let [kind, path, owner, group, mode] = entry else {
            panic!("{entry:?}")
        };
        let target = on_root(path);
        match kind.as_str() {
            "dir" | "pgdata" => fs::create_dir_all(&target).unwrap(),
            "key" | "cert" => fs::write(&target, "made on the host\n").unwrap(),
            "file" => {} // installed below from the artifact tree
            other => panic!("unknown kind {other}"),
        }
        if kind != "file" {
            chown(&target, owner, group);
            fs::set_permissions(
                &target,
                fs::Permissions::from_mode(u32::from_str_radix(mode, 8).unwrap()),
            )
            .unwrap();
        }
    }
    let var = |name: &str| plan_values(&apply, &format!("\"${name}\"")).remove(0);
    for (artifact, host, mode) in [
        ("pgbackrest/repository.conf", var("REPO_CONF"), 0o640),
        ("pgbackrest/database.conf", var("DB_CONF"), 0o640),
        (&format!("systemd/{}", var("UNIT_NAME"))[..], var("UNIT_PATH"), 0o644),
    ] {
        let target = on_root(&host);
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::copy(tree.join(artifact), &target).unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(mode)).unwrap();
    }
    let tmpfiles = on_root(&var("TMPFILES_PATH"));
    fs::create_dir_all(tmpfiles.parent().unwrap()).unwrap();
    let unit_dir = tree.join("systemd");
    let conf = fs::read_dir(&unit_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "conf"))
        .unwrap();
    fs::copy(conf, &tmpfiles).unwrap();
    fs::set_permissions(&tmpfiles, fs::Permissions::from_mode(0o644)).unwrap();
    // The data directory: group-readable files, and the live hba/ident files with the
    // block on top of the site's own lines.
    let pgdata = on_root(&var("PGDATA"));
    fs::create_dir_all(pgdata.join("base/5")).unwrap();
    for (rel, mode) in [("PG_VERSION", 0o640), ("base/5/1259", 0o640), ("base/5/2619", 0o640)] {
        fs::write(pgdata.join(rel), "x").unwrap();
        fs::set_permissions(pgdata.join(rel), fs::Permissions::from_mode(mode)).unwrap();
    }
    for d in ["base", "base/5"] {
        fs::set_permissions(pgdata.join(d), fs::Permissions::from_mode(0o750)).unwrap();
    }
    for (snippet, live) in [
        ("hba/pg_hba.conf.snippet", "pg_hba.conf"),
        ("hba/pg_ident.conf.snippet", "pg_ident.conf"),
    ] {
        let text = fs::read_to_string(tree.join(snippet)).unwrap() + "local all all peer\n";
        fs::write(pgdata.join(live), text).unwrap();
        fs::set_permissions(pgdata.join(live), fs::Permissions::from_mode(0o640)).unwrap();
    }
}

const HOST_POLICY: &str = "version: 1\nclusters:\n  - name: main\n    postgres: {major: 15, data_directory: /srv/pg/15/data}\n    backup_user: {name: nobody, group: nogroup, home: /srv/nobody}\n    pgbackrest: {version: \"2.45\"}\n";

#[test]
fn deployed_host_in_sync_then_each_change_is_reported() {
    let dir = tempdir();
    let policy = write_policy(dir.path(), HOST_POLICY);
    let out = dir.path().join("out");
    assert_eq!(
        run(&["generate", policy.to_str().unwrap(), "--out", out.to_str().unwrap()]).0,
        0
    );
    let root = dir.path().join("root");
    deploy(&root, &out.join("main"));
    let check = || {
        run(&[
            "check",
            policy.to_str().unwrap(),
            "--deployed",
            "--root",
            root.to_str().unwrap(),
        ])
    };
    let (code, stdout, stderr) = check();
    assert_eq!(code, 0, "a fresh deployment must be in sync:\n{stdout}{stderr}");

    // A change outside the managed block is the site's business.
    let hba = root.join("srv/pg/15/data/pg_hba.conf");
    fs::write(
        &hba,
        fs::read_to_string(&hba).unwrap() + "host all all 10.0.0.0/8 scram-sha-256\n",
    )
    .unwrap();
    assert_eq!(check().0, 0);

    // One thing at a time, each reported.
    fs::set_permissions(root.join("var/lib/pgbackrest"), fs::Permissions::from_mode(0o770)).unwrap();
    let (code, stdout, _) = check();
    assert_eq!(code, 1);
    assert!(
        stdout.contains("/var/lib/pgbackrest: mode: expected 0750, found 0770"),
        "{stdout}"
    );
    fs::set_permissions(root.join("var/lib/pgbackrest"), fs::Permissions::from_mode(0o750)).unwrap();

    let text = fs::read_to_string(&hba)
        .unwrap()
        .replace("local\tall\tpgbackrest\treject", "local\tall\tpgbackrest\ttrust");
    fs::write(&hba, text).unwrap();
    let (code, stdout, _) = check();
    assert_eq!(code, 1);
    assert!(
        stdout.contains("pg_hba.conf: managed block differs from the plan"),
        "{stdout}"
    );

    let stray = root.join("srv/pg/15/data/base/5/16384");
    fs::write(&stray, "x").unwrap();
    fs::set_permissions(&stray, fs::Permissions::from_mode(0o600)).unwrap();
    let (code, stdout, _) = check();
    assert_eq!(code, 1);
    assert!(
        stdout.contains("entries of the data directory lack group read: expected none, found 1, e.g."),
        "{stdout}"
    );

    let conf = root.join("etc/pgbackrest/main/repository.conf");
    fs::write(
        &conf,
        fs::read_to_string(&conf)
            .unwrap()
            .replace("repo1-retention-full=2", "repo1-retention-full=9"),
    )
    .unwrap();
    let (code, stdout, _) = check();
    assert_eq!(code, 1);
    assert!(
        stdout.contains("repository.conf: content differs from the plan"),
        "{stdout}"
    );

    let (code, stdout, _) = run(&[
        "check",
        policy.to_str().unwrap(),
        "--deployed",
        "--root",
        root.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(code, 1);
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["in_sync"], false);
    assert_eq!(doc["host"].as_array().unwrap().len(), 3, "{stdout}");
}

#[test]
fn live_database_extra_and_missing_grants_are_both_reported() {
    let server = Server::start("livedb");
    let (_keep, out) = generate(&policy(&server, "pgbackrest"));
    let tree = out.join("t");
    let policy_path = out.parent().unwrap().join("policy.yaml");
    server.psql_ok("postgres", &["--single-transaction"], &sql(&tree, "apply.sql"));
    server.splice_hba(&tree);
    server.psql_ok("postgres", &[], &sql(&tree, "archive.sql"));
    server.restart();
    let check = || run(&["check", policy_path.to_str().unwrap(), "--db"]);
    let (code, stdout, stderr) = check();
    assert_eq!(code, 0, "{stdout}{stderr}");
    server.psql_ok(
        "postgres",
        &[],
        "GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_file(text) TO pgbackrest; REVOKE EXECUTE ON FUNCTION pg_catalog.pg_switch_wal() FROM pgbackrest; GRANT pg_monitor TO pgbackrest; ALTER ROLE pgbackrest CREATEDB;",
    );
    let (code, stdout, _) = check();
    assert_eq!(code, 1);
    for needle in [
        "role pgbackrest: EXECUTE beyond the plan: expected not granted, found pg_read_file(text)",
        "role pgbackrest: EXECUTE missing: expected pg_switch_wal(), found not granted",
        "role pgbackrest: membership beyond the plan: expected not a member, found pg_monitor",
        "role pgbackrest: attribute: expected NOCREATEDB, found CREATEDB",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
}
