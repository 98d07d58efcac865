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
        (
            &["--to", "/var/lib/postgresql/15/main/x"][..],
            "inside the data directory",
        ),
        (&["--to", "/var/lib/pgbackrest/x"][..], "inside the repository"),
        (&["--in-place", "--time", "2026-01-31 14:05:00"][..], "no zone"),
        (&["--in-place", "--time", "yesterday+00"][..], "not a time"),
        (&["--in-place", "--lsn", "0/3000060; rm"][..], "not an LSN"),
        (&["--in-place", "--set", "latest"][..], "not a backup label"),
        (
            &["--in-place", "--time", "2026-01-31 14:05:00+00", "--lsn", "0/1"][..],
            "one target",
        ),
        (&["--in-place", "--exclusive"][..], "needs a target"),
        (
            &["--in-place", "--target-action", "reboot"][..],
            "promote, pause or shutdown",
        ),
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
        &[
            "--to",
            "/srv/restore",
            "--time",
            "2026-01-31 14:05:00.123+02:00",
            "--exclusive",
        ][..],
        &[
            "--to",
            "/srv/restore",
            "--lsn",
            "0/3000060",
            "--set",
            "20260131-020000F_20260201-020000I",
        ][..],
        &[
            "--in-place",
            "--name",
            "before upgrade",
            "--target-action",
            "pause",
            "--dry-run",
        ][..],
    ] {
        let (code, err) = restore(&cluster, args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(
            err.contains("] ERROR: ") && !err.contains("restore.sh: "),
            "{args:?}: {err}"
        );
        if !is_root() {
            assert!(err.contains("run me as root"), "{args:?}: {err}");
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false)
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
        assert_eq!(
            run(&["generate", policy.to_str().unwrap(), "--out", out.to_str().unwrap()]).0,
            0
        );
        (dir, out)
    };
    let md = std::fs::read_to_string(pat.join("pg15-patroni/RESTORE.md")).unwrap();
    assert!(
        md.contains("Rebuild one member") && md.contains("Rebuild the whole cluster"),
        "{md}"
    );
}

// ---- pgbackrest.options: the validated pass-through -------------------------------

const OPTIONS_POLICY: &str = "version: 1
clusters:
  - name: main
    postgres: {major: 15}
    pgbackrest:
      version: \"2.59.1\"
      options:
OPTIONS";

fn with_options(options: &str) -> String {
    OPTIONS_POLICY.replace("OPTIONS", options)
}

#[test]
fn options_that_break_the_model_are_refused_by_name_with_the_reason() {
    let dir = tempdir();
    let policy = write_policy(
        dir.path(),
        &with_options(
            "        compress-type: zst
        repo1-path: /srv/elsewhere
        pg1-host: db2
        tls-server-cert-file: /x.crt
        repo1-cipher-pass: never-echo-this-secret
        repo2-path: /srv/two
        neutral-umask: false
        frobnicate: 1
        process-max: 0
        compress-level: 30
",
        ),
    );
    let out = dir.path().join("out");
    let (code, _, err) = run(&["generate", policy.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(!out.exists(), "nothing may be written");
    for (line, field, says) in [
        (9, "repo1-path", "names a path"),
        (10, "pg1-host", "PostgreSQL connection"),
        (11, "tls-server-cert-file", "TLS"),
        (12, "repo1-cipher-pass", "cipher_passphrase_file"),
        (13, "repo2-path", "one repository"),
        (14, "neutral-umask", "fixed modes"),
        (15, "frobnicate", "not an option pgbr-policy passes through"),
        (16, "process-max", "from 1 to 999"),
        (17, "compress-level", "from -7 to 22 for compress-type zst"),
    ] {
        let needle = format!(":{line}:");
        let hit = err
            .lines()
            .find(|l| l.contains(&format!("pgbackrest.options.{field}:")))
            .unwrap_or_else(|| panic!("no error for {field}:\n{err}"));
        assert!(hit.contains(&needle) && hit.contains(says), "{field}: {hit}");
    }
    assert!(!err.contains("never-echo-this-secret"), "the secret was echoed:\n{err}");
}

#[test]
fn options_land_in_the_configuration_of_the_side_that_runs_them() {
    let dir = tempdir();
    let policy = write_policy(
        dir.path(),
        &with_options(
            "        compress-type: lz4
        process-max: 4
        archive-async: true
        archive-push-queue-max: 4GiB
        repo1-retention-diff: 3
        repo1-bundle: true
        repo1-block: true
        log-level-file: detail
        start-fast: true
",
        )
        .replace("        start-fast: true\n", ""),
    );
    let out = dir.path().join("out");
    let (code, _, err) = run(&["generate", policy.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let repo = std::fs::read_to_string(out.join("main/pgbackrest/repository.conf")).unwrap();
    let db = std::fs::read_to_string(out.join("main/pgbackrest/database.conf")).unwrap();
    let global = |text: &str| -> Vec<String> {
        text.split("\n[global]\n")
            .nth(1)
            .unwrap()
            .split("\n[")
            .next()
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains('='))
            .map(str::to_owned)
            .collect()
    };
    let (repo, db) = (global(&repo), global(&db));
    for line in [
        "compress-type=lz4",
        "process-max=4",
        "repo1-retention-diff=3",
        "repo1-bundle=y",
        "repo1-block=y",
        "log-level-file=detail",
    ] {
        assert!(
            repo.contains(&line.to_owned()),
            "repository side lacks {line}: {repo:?}"
        );
    }
    for line in [
        "compress-type=lz4",
        "process-max=4",
        "archive-async=y",
        "archive-push-queue-max=4GiB",
        "log-level-file=detail",
    ] {
        assert!(db.contains(&line.to_owned()), "database side lacks {line}: {db:?}");
    }
    assert!(!repo.iter().any(|l| l.starts_with("archive-async")), "{repo:?}");
    assert!(!db.iter().any(|l| l.starts_with("repo1-retention-diff")), "{db:?}");
    // The planned default is replaced, not repeated (pgBackRest refuses a repeated option).
    assert_eq!(repo.iter().filter(|l| l.starts_with("log-level-file=")).count(), 1);
    assert_eq!(db.iter().filter(|l| l.starts_with("log-level-file=")).count(), 1);
}

#[test]
fn an_encrypted_repository_needs_a_passphrase_file_that_never_enters_the_tree() {
    let dir = tempdir();
    let secret = "correct-horse-battery-staple-17";
    let pass_file = dir.path().join("cipher-pass");
    std::fs::write(&pass_file, format!("{secret}\n")).unwrap();
    // Without the file: refused, at the options' line.
    let policy = write_policy(dir.path(), &with_options("        repo1-cipher-type: aes-256-cbc\n"));
    let (code, _, err) = run(&["validate", policy.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("pgbackrest.cipher_passphrase_file: is required"), "{err}");
    // The file without encryption: refused too.
    let policy = write_policy(
        dir.path(),
        &with_options("        compress-type: gz\n").replace(
            "      options:",
            &format!("      cipher_passphrase_file: {}\n      options:", pass_file.display()),
        ),
    );
    let (code, _, err) = run(&["validate", policy.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("is given but the repository is not encrypted"), "{err}");
    // Both: the repository side is encrypted, the database side's remote loads the
    // passphrase from the include path, and the passphrase is nowhere in the tree.
    let policy = write_policy(
        dir.path(),
        &with_options("        repo1-cipher-type: aes-256-cbc\n").replace(
            "      options:",
            &format!("      cipher_passphrase_file: {}\n      options:", pass_file.display()),
        ),
    );
    let out = dir.path().join("out");
    let (code, _, err) = run(&["generate", policy.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let repo = std::fs::read_to_string(out.join("main/pgbackrest/repository.conf")).unwrap();
    let db = std::fs::read_to_string(out.join("main/pgbackrest/database.conf")).unwrap();
    assert!(repo.contains("\nrepo1-cipher-type=aes-256-cbc\n"), "{repo}");
    assert!(!db.contains("cipher-type"), "{db}");
    assert!(
        db.contains("\nrepo1-host-config-include-path=/etc/pgbackrest/main/cipher.d\n"),
        "{db}"
    );
    let lib = std::fs::read_to_string(out.join("main/shell/lib.sh")).unwrap();
    assert!(
        lib.contains("CIPHER_SECRET=/etc/pgbackrest/main/cipher.d/cipher.conf"),
        "{lib}"
    );
    for f in files_below(&out) {
        let bytes = std::fs::read(out.join(&f)).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(secret),
            "{f} holds the passphrase"
        );
    }
}

// ---- schedule: timers, services, the cron fallback ---------------------------------

const SCHEDULE_POLICY: &str = "version: 1
clusters:
  - name: main
    postgres: {major: 15}
    backup_user: {name: bkp}
    pgbackrest: {version: \"2.45\", stanza: st}
SCHEDULE";

fn generate_text(policy: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempdir();
    let p = write_policy(dir.path(), policy);
    let out = dir.path().join("out");
    let (code, _, err) = run(&["generate", p.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    (dir, out)
}

#[test]
fn default_schedule_is_weekly_full_daily_diff_and_weekly_verify() {
    let (_dir, out) = generate_text(&SCHEDULE_POLICY.replace("SCHEDULE", ""));
    let files = files_below(&out.join("main"));
    let units: Vec<&String> = files
        .iter()
        .filter(|f| f.starts_with("systemd/pgbr-backup") || f.starts_with("systemd/pgbr-verify"))
        .collect();
    assert_eq!(
        units,
        [
            "systemd/pgbr-backup-diff-main.service",
            "systemd/pgbr-backup-diff-main.timer",
            "systemd/pgbr-backup-full-main.service",
            "systemd/pgbr-backup-full-main.timer",
            "systemd/pgbr-verify-main.service",
            "systemd/pgbr-verify-main.timer",
        ]
    );
    let read = |f: &str| std::fs::read_to_string(out.join("main").join(f)).unwrap();
    assert!(read("systemd/pgbr-backup-full-main.timer").contains("\nOnCalendar=Sun *-*-* 01:00:00\n"));
    assert!(read("systemd/pgbr-backup-diff-main.timer").contains("\nOnCalendar=Mon..Sat *-*-* 01:00:00\n"));
    assert!(read("systemd/pgbr-verify-main.timer").contains("\nOnCalendar=Sat *-*-* 04:00:00\n"));
    let service = read("systemd/pgbr-backup-full-main.service");
    assert!(service.contains("\nUser=bkp\n"), "{service}");
    assert!(
        service.contains("\nExecStart=/usr/bin/pgbackrest --config=/etc/pgbackrest/main/repository.conf --stanza=st --log-level-console=warn --type=full backup\n"),
        "{service}"
    );
    // Writable: the repository, the backup user's lock and log; the TLS keys out of view.
    let rw: Vec<&str> = service
        .lines()
        .filter_map(|l| l.strip_prefix("ReadWritePaths="))
        .collect();
    assert_eq!(
        rw,
        [
            "-/var/lib/pgbackrest",
            "-/run/pgbackrest-bkp",
            "-/var/log/pgbackrest-bkp"
        ]
    );
    assert!(
        service.contains("\nInaccessiblePaths=-/etc/pgbackrest/main/tls\n"),
        "{service}"
    );
    assert!(service.contains("\nRestrictAddressFamilies=AF_UNIX\n"), "{service}");
    let cron = read("cron/pgbr-main");
    for line in [
        "0 1 * * 0 bkp /usr/bin/pgbackrest '--config=/etc/pgbackrest/main/repository.conf' '--stanza=st' '--log-level-console=warn' '--type=full' backup",
        "0 1 * * 1-6 bkp /usr/bin/pgbackrest '--config=/etc/pgbackrest/main/repository.conf' '--stanza=st' '--log-level-console=warn' '--type=diff' backup",
        "0 4 * * 6 bkp /usr/bin/pgbackrest '--config=/etc/pgbackrest/main/repository.conf' '--stanza=st' '--log-level-console=warn' verify",
    ] {
        assert!(cron.lines().any(|l| l == line), "cron lacks {line}:\n{cron}");
    }
    // apply.sh installs the units in its step schedule (and so verify, rollback and
    // check --deployed know them).
    let lib = read("shell/lib.sh");
    for unit in [
        "pgbr-backup-full-main.service",
        "pgbr-backup-full-main.timer",
        "pgbr-verify-main.timer",
    ] {
        assert!(
            lib.contains(&format!(
                "  schedule systemd/{unit} /etc/systemd/system/{unit} root root 0644\n"
            )),
            "INSTALLED_FILES lacks {unit}"
        );
    }
    assert!(lib.contains(
        "SCHEDULE_TIMERS=( pgbr-backup-full-main.timer pgbr-backup-diff-main.timer pgbr-verify-main.timer )"
    ));
}

#[test]
fn a_schedule_turns_kinds_on_and_off_and_names_what_has_no_cron_form() {
    let (_dir, out) = generate_text(&SCHEDULE_POLICY.replace(
        "SCHEDULE",
        "    schedule:\n      incr: \"*-*-* *:00/30:00\"\n      diff: none\n      verify: \"*-*-01 05:00:00\"\n",
    ));
    let files = files_below(&out.join("main"));
    assert!(files.contains(&"systemd/pgbr-backup-incr-main.timer".to_owned()));
    assert!(!files.iter().any(|f| f.contains("backup-diff")), "{files:?}");
    let cron = std::fs::read_to_string(out.join("main/cron/pgbr-main")).unwrap();
    assert!(cron.contains("\n0-59/30 * * * * bkp "), "{cron}");
    assert!(
        cron.contains("# no cron equivalent for this calendar expression"),
        "{cron}"
    );
}

#[test]
fn bad_schedules_are_refused_with_field_and_line() {
    let dir = tempdir();
    for (schedule, field, says) in [
        (
            "    schedule:\n      full: \"daily; rm -rf /\"\n",
            "schedule.full",
            "holds `;`",
        ),
        ("    schedule:\n      incr: \"%H\"\n", "schedule.incr", "holds `%`"),
        (
            "    schedule:\n      full: none\n",
            "schedule.full",
            "schedule full backups too",
        ),
        ("    schedule:\n      weekly: daily\n", "weekly", "unknown key"),
    ] {
        let p = write_policy(dir.path(), &SCHEDULE_POLICY.replace("SCHEDULE", schedule));
        let (code, _, err) = run(&["validate", p.to_str().unwrap()]);
        assert_eq!(code, 2, "{schedule}: {err}");
        assert!(
            err.contains(field) && err.contains(says) && err.contains("policy.yaml:"),
            "{schedule}: {err}"
        );
    }
}

#[test]
#[ignore = "tier tools: needs systemd-analyze (bash .ci/run runs every tier)"]
fn timers_verify_and_their_calendars_parse() {
    let analyze = require_tool("systemd-analyze", "systemd");
    let (_dir, out) =
        generate_text(&SCHEDULE_POLICY.replace("SCHEDULE", "    schedule:\n      incr: \"*-*-* *:00/30:00\"\n"));
    let systemd = out.join("main/systemd");
    let timers: Vec<_> = files_below(&systemd)
        .into_iter()
        .filter(|f| f.ends_with(".timer"))
        .collect();
    assert_eq!(timers.len(), 4, "{timers:?}");
    for t in timers {
        let o = Command::new(&analyze)
            .arg("verify")
            .arg(systemd.join(&t))
            .current_dir(&systemd)
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.status.success() && said.trim().is_empty(), "verify {t}: {said}");
        let text = std::fs::read_to_string(systemd.join(&t)).unwrap();
        let calendar = text.lines().find_map(|l| l.strip_prefix("OnCalendar=")).unwrap();
        let o = Command::new(&analyze).args(["calendar", calendar]).output().unwrap();
        assert!(
            o.status.success(),
            "calendar {calendar}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

// ---- CHANGE.md for a change board ---------------------------------------------------

#[test]
fn change_ticket_has_a_header_and_the_risks_this_change_creates() {
    use sha2::Digest as _;
    let (_dir, out) = generate_text(&SCHEDULE_POLICY.replace("SCHEDULE", ""));
    let md = std::fs::read_to_string(out.join("main/CHANGE.md")).unwrap();
    let policy = std::fs::read(out.parent().unwrap().join("policy.yaml")).unwrap();
    let sha: String = sha2::Sha256::digest(&policy)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    for row in [
        "| Summary | Back up cluster main (PostgreSQL 15) with pgBackRest as the OS user bkp",
        "| Risk | **high**: ",
        "| Expected downtime | None, unless shell/apply.sh ends with RESTART REQUIRED",
        "| Clusters and hosts affected | The database host of cluster main",
        &format!("| Policy | sha256 `{sha}`"),
        &format!("| Generated by | pgbr-policy {} |", env!("CARGO_PKG_VERSION")),
    ] {
        assert!(
            md.lines().any(|l| l.starts_with(row)),
            "CHANGE.md lacks the row {row}:\n{md}"
        );
    }
    let risks = md.split("## Risks this change creates\n").nth(1).unwrap();
    let risks = &risks[..risks.find("\n## ").unwrap()];
    assert!(
        risks.contains("starts a new WAL chain") && risks.contains("--type=full backup"),
        "{risks}"
    );
    assert!(risks.contains("shares that host's failure domain"), "{risks}");
    assert!(
        !risks.contains("scram-sha-256"),
        "peer needs no pgbr-policy on the host: {risks}"
    );
    // Restart reasons are sentences, not code spans.
    let restart = md.split("## Restart\n").nth(1).unwrap();
    assert!(
        restart.contains("- PostgreSQL reads the data directory's mode only when it starts"),
        "{restart}"
    );
    assert!(!restart.contains("- `"), "{restart}");

    // scram-sha-256, no archiving managed, encryption: the risks follow the policy.
    let (_dir, out) = generate_text(&SCHEDULE_POLICY.replace(
        "SCHEDULE",
        "    role: {auth: scram-sha-256, password_env: PW}\n    archive: {managed: false}\n",
    ));
    let md = std::fs::read_to_string(out.join("main/CHANGE.md")).unwrap();
    assert!(md.contains("| Risk | **medium**: "), "{md}");
    assert!(
        md.contains("scram-sha-256 needs the pgbr-policy binary on the database host at apply time"),
        "{md}"
    );
    assert!(!md.contains("new WAL chain"), "{md}");
    let apply = std::fs::read_to_string(out.join("main/shell/apply.sh")).unwrap();
    assert!(apply.contains("pgbr-policy is needed on this host to compute the SCRAM verifier (scram-sha-256): put it on PATH or set PGBR_POLICY; nothing was changed"));
}

#[test]
fn change_ticket_says_what_changed_since_the_last_generated_tree_and_check_agrees() {
    let dir = tempdir();
    let out = dir.path().join("out");
    let policy = SCHEDULE_POLICY.replace("SCHEDULE", "");
    let p = write_policy(dir.path(), &policy);
    let generate = |p: &std::path::Path| run(&["generate", p.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(generate(&p).0, 0);
    let ticket = || std::fs::read_to_string(out.join("main/CHANGE.md")).unwrap();
    assert!(
        !ticket().contains("## Changes since the last generated tree"),
        "a first generation has no delta"
    );
    // A changed policy: the ticket says what changes on the host, file by file.
    let p = write_policy(
        dir.path(),
        &(policy.replace("stanza: st}", "stanza: st, retention_full: 5}") + "    schedule: {incr: hourly}\n"),
    );
    let (code, _, err) = generate(&p);
    assert_eq!(code, 0, "{err}");
    let md = ticket();
    let section = md
        .split("## Changes since the last generated tree\n")
        .nth(1)
        .expect("no delta section");
    let section = &section[..section.find("\n## ").unwrap()];
    for line in [
        "- pgbackrest/repository.conf (changed): /etc/pgbackrest/main/repository.conf is installed anew by shell/apply.sh step configs.",
        "- systemd/pgbr-backup-incr-main.timer (new): /etc/systemd/system/pgbr-backup-incr-main.timer is installed anew by shell/apply.sh step schedule.",
    ] {
        assert!(section.lines().any(|l| l == line), "{line} missing:\n{section}");
    }
    assert!(!section.contains("database.conf"), "{section}");
    // check renders the same ticket (the baseline is kept in the tree), and a second
    // generate with the same policy keeps it.
    let (code, stdout, err) = run(&["check", p.to_str().unwrap(), "--against", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{err}");
    let (code, _, err) = generate(&p);
    assert_eq!(code, 0);
    assert!(err.contains(" 0 written,"), "{err}");
    assert_eq!(ticket(), md);
}

#[test]
#[ignore = "tier tools: needs shellcheck or PyYAML (bash .ci/run runs every tier)"]
fn every_lifecycle_feature_on_keeps_the_scripts_shellcheck_clean() {
    let shellcheck = require_tool("shellcheck", "shellcheck");
    let (_dir, out) = generate_text(
        &SCHEDULE_POLICY
            .replace(
                "SCHEDULE",
                "    role: {auth: scram-sha-256, password_file: /etc/pgbr/pw}
    schedule: {incr: hourly}
    patroni: {enabled: true, version: \"3.1.0\", pg_hba_after: [\"host all all 127.0.0.1/32 scram-sha-256\"]}
",
            )
            .replace(
                "pgbackrest: {version: \"2.45\", stanza: st}",
                "pgbackrest:
      version: \"2.45\"
      stanza: st
      cipher_passphrase_file: /etc/pgbr/cipher
      options: {repo1-cipher-type: aes-256-cbc, archive-async: true, compress-type: lz4}",
            ),
    );
    let shell = out.join("main/shell");
    for script in ["apply.sh", "rollback.sh", "verify.sh", "restore.sh"] {
        let o = Command::new(&shellcheck)
            .args(["--severity=style", "-x", script])
            .current_dir(&shell)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "shellcheck {script}:\n{}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
}
