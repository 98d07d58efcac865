//! What the plan does with `pgbackrest.version` (facts.md §6, pgBackRest's release
//! notes): a release that cannot back up the major is an error, an unknown one too; IP
//! subject-alternative names from 2.53; apply.sh compares the installed release.

use crate::support::*;
use std::path::Path;
use std::process::Command;

fn policy(major: u32, pgbackrest: &str) -> String {
    format!(
        "version: 1\nclusters:\n  - name: main\n    postgres: {{major: {major}}}\n    pgbackrest: {{{pgbackrest}}}\n"
    )
}

/// validate, generate and check: exit codes and stderr of each.
fn all_three(text: &str) -> Vec<(i32, String)> {
    let dir = tempdir();
    let path = write_policy(dir.path(), text);
    let out = dir.path().join("out");
    let p = path.to_str().unwrap();
    let mut results = Vec::new();
    let (code, _, err) = run(&["validate", p]);
    results.push((code, err));
    let (code, _, err) = run(&["generate", p, "--out", out.to_str().unwrap()]);
    if code != 0 {
        assert!(!out.exists(), "generate wrote {} although it failed", out.display());
    }
    results.push((code, err));
    std::fs::create_dir_all(&out).unwrap();
    let (code, _, err) = run(&["check", p, "--against", out.to_str().unwrap()]);
    results.push((code, err));
    results
}

fn generated(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempdir();
    let path = write_policy(dir.path(), text);
    let out = dir.path().join("out");
    let (code, _, err) = run(&["generate", path.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let tree = out.join("main");
    (dir, tree)
}

#[test]
fn a_pgbackrest_too_old_for_the_major_is_an_error_in_validate_generate_and_check() {
    for (major, old, first) in [
        (15, "2.38", "2.39"),
        (16, "2.45", "2.46"),
        (17, "2.53", "2.53.1"),
        (18, "2.54.2", "2.55"),
    ] {
        let text = policy(major, &format!("version: \"{old}\""));
        for (code, err) in all_three(&text) {
            assert_eq!(code, 2, "PostgreSQL {major} with pgBackRest {old}: {err}");
            assert!(
                err.contains("policy.yaml:5:27")
                    && err.contains("clusters[0].pgbackrest.version")
                    && err.contains(&format!("cannot back up PostgreSQL {major}"))
                    && err.contains(&format!("needs pgBackRest {first} or later")),
                "{err}"
            );
        }
        let (code, _, err) = {
            let dir = tempdir();
            let path = write_policy(dir.path(), &policy(major, &format!("version: \"{first}\"")));
            run(&["validate", path.to_str().unwrap()])
        };
        assert!(
            code == 0 && !err.contains("warning"),
            "PostgreSQL {major} with {first}: {err}"
        );
    }
}

#[test]
fn an_unknown_or_unparsable_pgbackrest_version_is_an_error_naming_the_field() {
    for bad in ["0.0", "0.0.0", "1.27", "banana", "2", "2.59.1-dev", ""] {
        let dir = tempdir();
        let path = write_policy(dir.path(), &policy(15, &format!("version: \"{bad}\"")));
        let (code, _, err) = run(&["validate", path.to_str().unwrap()]);
        assert_eq!(code, 2, "{bad:?} was accepted: {err}");
        assert!(
            err.contains("policy.yaml:5:27") && err.contains("clusters[0].pgbackrest.version"),
            "{bad:?}: {err}"
        );
    }
}

#[test]
fn no_pgbackrest_version_on_pg16_and_later_is_a_warning_naming_the_release_needed() {
    for (major, first) in [(16, "2.46"), (17, "2.53.1"), (18, "2.55")] {
        let dir = tempdir();
        let path = write_policy(dir.path(), &policy(major, "stanza: main"));
        let (code, _, err) = run(&["validate", path.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
        assert!(
            err.contains("warning:") && err.contains(&format!("needs pgBackRest {first} or later")),
            "{err}"
        );
    }
}

#[test]
fn a_non_loopback_ip_tls_address_needs_pgbackrest_2_53() {
    let tls = "tls: {address: 10.1.2.3}";
    for (code, err) in all_three(&policy(15, &format!("version: \"2.52.1\", {tls}"))) {
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("clusters[0].pgbackrest.tls.address")
                && err.contains("policy.yaml:5:52")
                && err.contains("2.53 or later"),
            "{err}"
        );
    }
    // Not given: a warning (apply.sh cannot tell which certificate check the host does).
    let dir = tempdir();
    let path = write_policy(dir.path(), &policy(15, tls));
    let (code, _, err) = run(&["validate", path.to_str().unwrap()]);
    assert!(code == 0 && err.contains("2.53 or later"), "{err}");
    // 2.53: the database side connects to the address, which the certificate names.
    let (_dir, tree) = generated(&policy(15, &format!("version: \"2.53\", {tls}")));
    let conf = std::fs::read_to_string(tree.join("pgbackrest/database.conf")).unwrap();
    assert!(conf.lines().any(|l| l == "repo1-host=10.1.2.3"), "{conf}");
    let lib = std::fs::read_to_string(tree.join("shell/lib.sh")).unwrap();
    assert!(lib.lines().any(|l| l == "TLS_SERVER_SAN=IP:10.1.2.3"), "{lib}");
    // A DNS name is fine for every release.
    let (_dir, tree) = generated(&policy(15, "version: \"2.45\", tls: {address: backup.example.org}"));
    let conf = std::fs::read_to_string(tree.join("pgbackrest/database.conf")).unwrap();
    assert!(conf.lines().any(|l| l == "repo1-host=backup.example.org"), "{conf}");
}

#[test]
fn loopback_is_reached_by_name_before_2_53_and_by_address_from_it() {
    for (version, host, san) in [
        ("2.45", "localhost", "'DNS:localhost,IP:127.0.0.1'"),
        ("2.52.1", "localhost", "'DNS:localhost,IP:127.0.0.1'"),
        ("2.53", "127.0.0.1", "IP:127.0.0.1"),
        ("2.59.1", "127.0.0.1", "IP:127.0.0.1"),
    ] {
        let (_dir, tree) = generated(&policy(15, &format!("version: \"{version}\"")));
        let conf = std::fs::read_to_string(tree.join("pgbackrest/database.conf")).unwrap();
        assert!(
            conf.lines().any(|l| l == format!("repo1-host={host}")),
            "{version}: {conf}"
        );
        let lib = std::fs::read_to_string(tree.join("shell/lib.sh")).unwrap();
        assert!(
            lib.lines().any(|l| l == format!("TLS_SERVER_SAN={san}")),
            "{version}: {lib}"
        );
    }
}

#[test]
fn no_artifact_relies_on_root_running_pgbackrest() {
    let (_dir, tree) = generated(&policy(
        18,
        "version: \"2.59.1\", binary: /opt/pgbackrest-2.59.1/bin/pgbackrest",
    ));
    for file in files_below(&tree) {
        let text = std::fs::read_to_string(tree.join(&file)).unwrap_or_default();
        assert!(!text.contains("allow-root"), "{file} sets allow-root");
    }
    // Every pgBackRest command in the scripts runs as a named user (runuser, setpriv,
    // as_user, User= in the unit), except `version`, which every release allows root.
    let lib = std::fs::read_to_string(tree.join("shell/lib.sh")).unwrap();
    let apply = std::fs::read_to_string(tree.join("shell/apply.sh")).unwrap();
    for (name, text) in [("lib.sh", &lib), ("apply.sh", &apply)] {
        let text = text.replace("\\\n", " ");
        for line in text
            .lines()
            .filter(|l| l.contains("\"$PGBACKREST\"") && !l.trim_start().starts_with('#'))
        {
            let as_user = [
                "runuser -u",
                "setpriv",
                "as_user",
                "[ -x \"$PGBACKREST\" ]",
                "\"$PGBACKREST\" version",
            ];
            assert!(
                as_user.iter().any(|m| line.contains(m)),
                "{name}: pgBackRest run as root? {line}"
            );
        }
    }
    let unit = std::fs::read_to_string(tree.join("systemd/pgbr-tls-main.service")).unwrap();
    assert!(
        unit.lines().any(|l| l.starts_with("User=") && l != "User=root"),
        "{unit}"
    );
}

/// Sources lib.sh and runs `script`; (success, stdout+stderr).
fn in_lib(lib: &Path, script: &str) -> (bool, String) {
    outcome(
        Command::new("bash")
            .arg("-c")
            .arg(format!(". \"$1\"; {script}"))
            .arg("bash")
            .arg(lib),
    )
}

#[test]
fn apply_sh_compares_release_numbers_numerically() {
    let (_dir, tree) = generated(&policy(15, "version: \"2.45\""));
    let lib = tree.join("shell/lib.sh");
    for (a, b, expected) in [
        ("2.45", "2.45", true),
        ("2.45", "2.9", true),
        ("2.9", "2.45", false),
        ("2.53.1", "2.53", true),
        ("2.53", "2.53.1", false),
        ("2.59.1", "2.55", true),
        ("2.54.2", "2.55", false),
        ("3.0", "2.59.1", true),
        ("2.08", "2.8", true),
    ] {
        let (ok, out) = in_lib(&lib, &format!("version_at_least {a} {b}"));
        assert_eq!(ok, expected, "version_at_least {a} {b}: {out}");
    }
}

/// The preflight against the real binaries: Debian's 2.45 and the vendored 2.59.1.
#[test]
#[ignore = "tier pgbackrest: needs /usr/bin/pgbackrest (2.45) and /opt/pgbackrest-2.59.1 (scripts/pgbackrest-vendor)"]
fn apply_sh_stops_on_an_installed_pgbackrest_older_than_the_plan() {
    let old = "/usr/bin/pgbackrest";
    let new = "/opt/pgbackrest-2.59.1/bin/pgbackrest";
    for b in [old, new] {
        assert!(Path::new(b).exists(), "{b} is missing: run scripts/pgbackrest-vendor");
    }
    // (major, policy version, binary, refused with)
    let cases: &[(u32, &str, &str, Option<&str>)] = &[
        (15, "version: \"2.45\"", old, None),
        (15, "version: \"2.45\"", new, None),
        (
            15,
            "version: \"2.59.1\"",
            old,
            Some("is pgBackRest 2.45, older than the policy's pgbackrest.version 2.59.1"),
        ),
        (
            16,
            "stanza: main",
            old,
            Some("is pgBackRest 2.45, but PostgreSQL 16 with this layout needs pgBackRest 2.46 or later"),
        ),
        (18, "stanza: main", new, None),
        (18, "version: \"2.55\"", new, None),
    ];
    for (major, pb, binary, refused) in cases {
        let (_dir, tree) = generated(&policy(*major, &format!("{pb}, binary: {binary}")));
        let (ok, out) = in_lib(
            &tree.join("shell/lib.sh"),
            "die() { echo \"DIE: $*\"; exit 3; }; pgbackrest_version_check; echo \"installed $PGBACKREST_INSTALLED\"",
        );
        match refused {
            None => assert!(ok && out.contains("installed 2."), "{major} {pb} {binary}: {out}"),
            Some(text) => assert!(!ok && out.contains(text), "{major} {pb} {binary}: {out}"),
        }
    }
}
