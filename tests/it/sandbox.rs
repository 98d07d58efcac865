//! The TLS server's confinement (issue 12 item 9): every generated unit scores at most
//! 2.0 in `systemd-analyze security --offline=true` and passes `systemd-analyze verify`;
//! the only writable paths are the repository and the backup user's lock and log
//! directories, in the unit and in the list `apply.sh --start-tls-server` gives
//! bubblewrap alike. (The lab scenario `tlsconfine` proves the confinement on a real
//! server, attacked with the cluster owner's certificate.)

use crate::support::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every path moved away from the defaults; one cluster with its repository, log and
/// lock directory inside the backup user's home under /home (ProtectHome=tmpfs, the home
/// an empty directory with only those mounted again) and the lock under /var/tmp (a
/// private /var/tmp with it mounted again), listening on a name, not loopback.
const MOVED: &str = r#"version: 1
clusters:
  - name: moved
    postgres:
      major: 16
      data_directory: /srv/pg/16/data
      owner: pgowner
      socket_directory: /srv/pg/sock
      port: 6543
      bin_directory: /opt/pg16/bin
    backup_user:
      name: bkpuser
      group: bkpgroup
      home: /srv/bkp/home
    role:
      name: bkp_role
    pgbackrest:
      stanza: moved
      version: "2.55"
      repository: /srv/backups/repo
      tls: {address: 127.0.0.1, port: 9443, directory: /etc/pgbr/moved/tls}
      config: {repository_side: /etc/pgbr/moved/repo-side.conf, database_side: /etc/pgbr/moved/db-side.conf}
      backup_user_paths: {lock: /run/pgbr-bkp-lock, log: /srv/log/bkp}
      owner_paths: {lock: /run/pgbr-owner-lock, log: /srv/log/owner, spool: /srv/spool/owner}
  - name: inhome
    postgres:
      major: 15
      data_directory: /var/lib/postgresql/15/inhome
    backup_user:
      name: bkphome
      home: /home/bkphome
    role:
      name: bkp_home
    pgbackrest:
      stanza: inhome
      version: "2.45"
      repository: /home/bkphome/repo
      tls: {address: db1.example.com, port: 9444}
      backup_user_paths: {lock: /run/pgbr-bkphome-lock, log: /home/bkphome/log}
"#;

fn generate(policy: &Path, out: &Path) {
    let (code, _, err) = run(&["generate", policy.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
}

/// The unit of every cluster of every example and of MOVED, generated into `dir`.
fn units(dir: &Path) -> Vec<PathBuf> {
    let mut policies: Vec<PathBuf> = examples().into_iter().map(|e| e.join("policy.yaml")).collect();
    policies.push(write_policy(dir, MOVED));
    let mut units = Vec::new();
    for (i, policy) in policies.iter().enumerate() {
        let out = dir.join(format!("out{i}"));
        generate(policy, &out);
        units.extend(
            files_below(&out)
                .into_iter()
                .filter(|f| f.contains("/systemd/") && f.ends_with(".service"))
                .map(|f| out.join(f)),
        );
    }
    assert!(units.len() >= 5, "expected a unit per cluster: {units:?}");
    units
}

/// The number in "→ Overall exposure level for X.service: 1.1 OK 🙂".
fn exposure(report: &str) -> Option<f64> {
    let line = report.lines().find(|l| l.contains("Overall exposure level"))?;
    let (_, tail) = line.rsplit_once(": ")?;
    tail.split_whitespace().next()?.parse().ok()
}

#[test]
fn the_exposure_line_is_parsed() {
    let report = "  NAME  DESCRIPTION  EXPOSURE\n→ Overall exposure level for pgbr-tls-x.service: 8.3 EXPOSED 🙁\n";
    assert_eq!(exposure(report), Some(8.3));
    assert_eq!(exposure("no such line"), None);
}

#[test]
#[ignore = "tier tools: needs systemd-analyze (bash .ci/run runs every tier)"]
fn every_unit_scores_at_most_2_and_verifies() {
    let analyze = require_tool("systemd-analyze", "systemd");
    // `verify` checks that ExecStart= is executable.
    require_tool("pgbackrest", "pgbackrest");
    let dir = tempdir();
    for unit in units(dir.path()) {
        let (ok, report) = outcome(Command::new(&analyze).args(["security", "--offline=true"]).arg(&unit));
        let score = exposure(&report).unwrap_or_else(|| panic!("no exposure level for {}:\n{report}", unit.display()));
        eprintln!("{}: exposure {score}", unit.file_name().unwrap().to_string_lossy());
        assert!(ok, "systemd-analyze security {} failed:\n{report}", unit.display());
        assert!(
            score <= 2.0,
            "{} scores {score} (at most 2.0):\n{report}",
            unit.display()
        );
        // verify exits 0 on unknown keys and bad values, only saying so: any output fails.
        let out = Command::new(&analyze).arg("verify").arg(&unit).output().unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && said.trim().is_empty(),
            "systemd-analyze verify {}:\n{said}",
            unit.display()
        );
    }
}

/// `Key=value` lines of the unit, the `-` prefix kept.
fn directive(unit: &str, key: &str) -> Vec<String> {
    let prefix = format!("{key}=");
    unit.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(str::to_owned)
        .collect()
}

/// TLS_SANDBOX of a lib.sh (the plan block apply.sh sources), as (kind, path, required) rows, read by bash itself.
fn sandbox_rows(apply: &Path) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(apply).unwrap();
    let block: String = text
        .lines()
        .skip_while(|l| !l.starts_with("TLS_SANDBOX=("))
        .take_while(|l| *l != ")")
        .chain([")"])
        .collect::<Vec<_>>()
        .join("\n");
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("{block}\nprintf '%s\\n' \"${{TLS_SANDBOX[@]}}\""))
        .output()
        .unwrap();
    let words: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(
        !words.is_empty() && words.len() % 3 == 0,
        "TLS_SANDBOX in {}",
        apply.display()
    );
    words
        .chunks(3)
        .map(|w| (w[0].clone(), w[1].clone(), w[2].clone()))
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn only_the_repository_lock_and_log_are_writable() {
    let dir = tempdir();
    let out = dir.path().join("out");
    generate(&write_policy(dir.path(), MOVED), &out);
    let cases = [
        (
            "moved",
            "/srv/backups/repo",
            "/run/pgbr-bkp-lock",
            "/srv/log/bkp",
            "/srv/bkp/home",
            "/srv/pg/16/data",
        ),
        (
            "inhome",
            "/home/bkphome/repo",
            "/run/pgbr-bkphome-lock",
            "/home/bkphome/log",
            "/home/bkphome",
            "/var/lib/postgresql/15/inhome",
        ),
    ];
    for (cluster, repo, lock, log, home, pgdata) in cases {
        let unit_path = out.join(format!("{cluster}/systemd/pgbr-tls-{cluster}.service"));
        let unit = std::fs::read_to_string(&unit_path).unwrap();
        let writable: BTreeSet<String> = directive(&unit, "ReadWritePaths")
            .into_iter()
            .chain(directive(&unit, "BindPaths"))
            .map(|p| p.trim_start_matches('-').to_owned())
            .collect();
        assert_eq!(
            writable,
            set(&[repo, lock, log]),
            "{cluster}: writable paths of the unit"
        );
        assert_eq!(directive(&unit, "ProtectSystem"), ["strict"], "{cluster}");
        assert_eq!(directive(&unit, "PrivateTmp"), ["yes"], "{cluster}");
        assert_eq!(directive(&unit, "NoNewPrivileges"), ["yes"], "{cluster}");
        assert_eq!(directive(&unit, "CapabilityBoundingSet"), [""], "{cluster}");
        // Hidden: the home (or, when something inside it is served, an empty directory
        // with only that mounted again), the data directory, the state directory.
        let hidden: BTreeSet<String> = directive(&unit, "InaccessiblePaths")
            .into_iter()
            .chain(directive(&unit, "TemporaryFileSystem"))
            .map(|p| p.trim_start_matches('-').trim_end_matches(":ro").to_owned())
            .collect();
        for path in [home, pgdata, "/var/lib/pgbr-policy"] {
            assert!(hidden.contains(path), "{cluster}: {path} is not hidden: {hidden:?}");
        }
        // The same view for bubblewrap: the same writable paths, the same hidden ones.
        let rows = sandbox_rows(&out.join(format!("{cluster}/shell/lib.sh")));
        let rw: BTreeSet<String> = rows
            .iter()
            .filter(|r| r.0 == "read-write")
            .map(|r| r.1.clone())
            .collect();
        assert_eq!(
            rw,
            set(&[repo, lock, log]),
            "{cluster}: read-write entries of TLS_SANDBOX"
        );
        for path in [home, pgdata, "/var/lib/pgbr-policy", "/tmp", "/var/tmp"] {
            let covered = rows.iter().any(|(kind, p, _)| {
                matches!(kind.as_str(), "hidden" | "empty" | "private")
                    && (p == path || path.starts_with(&format!("{p}/")))
            });
            assert!(covered, "{cluster}: {path} is not out of view for bubblewrap: {rows:?}");
        }
        // Parents first: bubblewrap applies its mounts in order.
        for (i, (_, later, _)) in rows.iter().enumerate() {
            for (_, earlier, _) in &rows[..i] {
                assert!(
                    !earlier.starts_with(&format!("{later}/")),
                    "{cluster}: {earlier} is mounted before its parent {later}"
                );
            }
        }
    }
    let inhome = std::fs::read_to_string(out.join("inhome/systemd/pgbr-tls-inhome.service")).unwrap();
    assert_eq!(directive(&inhome, "ProtectHome"), ["tmpfs"]);
    assert!(
        directive(&inhome, "IPAddressDeny").is_empty(),
        "remote clients: no IP filter"
    );
    let moved = std::fs::read_to_string(out.join("moved/systemd/pgbr-tls-moved.service")).unwrap();
    assert_eq!(directive(&moved, "ProtectHome"), ["yes"]);
    assert_eq!(directive(&moved, "IPAddressDeny"), ["any"]);
    // The TLS directory shows only what the server loads.
    assert_eq!(directive(&moved, "TemporaryFileSystem"), ["/etc/pgbr/moved/tls:ro"]);
    assert_eq!(
        directive(&moved, "BindReadOnlyPaths"),
        [
            "/etc/pgbr/moved/tls/ca.crt",
            "/etc/pgbr/moved/tls/server.crt",
            "/etc/pgbr/moved/tls/server.key"
        ]
    );
}
