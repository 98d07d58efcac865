//! `pgbackrest.options:`: pgBackRest options passed through to the configuration files,
//! for those that do not change the privilege model (compression, parallelism,
//! asynchronous archiving, encryption, retention, bundling, timeouts). Every other
//! option is refused by name with the reason: paths, users, hosts, TLS and the
//! repository's storage are planned by pgbr-policy, and a secret never enters the tree.

use crate::catalog::Version;
use crate::policy::fields::{Fields, at};
use crate::policy::model::{OptionSide, PassOption};
use crate::policy::raw::{OptionValue, S};
use std::collections::BTreeMap;

/// What a value must be.
#[derive(Clone, Copy)]
enum Kind {
    Bool,
    Int(i64, i64),
    Enum(&'static [&'static str]),
    /// A size like `4MiB` (pgBackRest's units: B KB KiB MB MiB GB GiB TB TiB PB PiB).
    Size,
    /// Seconds, with up to three decimals, in a range.
    Seconds(f64, f64),
    /// compress-level: its range depends on compress-type (pgBackRest 2.59's table).
    CompressLevel,
}

struct Allowed {
    name: &'static str,
    kind: Kind,
    side: OptionSide,
    /// The first pgBackRest release that knows the option.
    since: Version,
}

const LOG_LEVELS: &[&str] = &["off", "error", "warn", "info", "detail", "debug", "trace"];

const fn a(name: &'static str, kind: Kind, side: OptionSide) -> Allowed {
    Allowed {
        name,
        kind,
        side,
        since: Version(2, 0, 0),
    }
}

use Kind::*;
use OptionSide::{Both, Database, Repository};

static ALLOWED: &[Allowed] = &[
    a("archive-async", Bool, Database),
    a("archive-check", Bool, Repository),
    a("archive-copy", Bool, Repository),
    a("archive-get-queue-max", Size, Database),
    a("archive-push-queue-max", Size, Database),
    a("archive-timeout", Seconds(0.1, 86400.0), Both),
    a("buffer-size", Size, Both),
    a("checksum-page", Bool, Repository),
    a("compress-level", CompressLevel, Both),
    a("compress-level-network", Int(-1, 9), Both),
    a("compress-type", Enum(&["none", "bz2", "gz", "lz4", "zst"]), Both),
    a("db-timeout", Seconds(0.1, 604800.0), Repository),
    a("delta", Bool, Both),
    a("expire-auto", Bool, Repository),
    a("io-timeout", Seconds(0.1, 3600.0), Both),
    a("log-level-console", Enum(LOG_LEVELS), Both),
    a("log-level-file", Enum(LOG_LEVELS), Both),
    a("log-level-stderr", Enum(LOG_LEVELS), Both),
    a("manifest-save-threshold", Size, Repository),
    a("process-max", Int(1, 999), Both),
    a("protocol-timeout", Seconds(0.1, 604800.0), Both),
    Allowed {
        name: "repo1-block",
        kind: Bool,
        side: Repository,
        since: Version(2, 46, 0),
    },
    a("repo1-bundle", Bool, Repository),
    a("repo1-bundle-limit", Size, Repository),
    a("repo1-bundle-size", Size, Repository),
    a("repo1-cipher-type", Enum(&["none", "aes-256-cbc"]), Repository),
    a("repo1-retention-archive", Int(1, 9_999_999), Repository),
    a(
        "repo1-retention-archive-type",
        Enum(&["full", "diff", "incr"]),
        Repository,
    ),
    a("repo1-retention-diff", Int(1, 9_999_999), Repository),
    a("resume", Bool, Repository),
];

/// Why an option is refused, or `None` when it is not one of those.
fn refusal(name: &str) -> Option<&'static str> {
    const PLANNED_PATHS: &str = "names a path: every path is planned with its owner and mode (the privilege model); use the policy's path fields";
    const HOSTS: &str = "names a host or TLS material: the TLS server between the two OS users is planned by pgbr-policy (pgbackrest.tls)";
    let repo_index = name
        .strip_prefix("repo")
        .and_then(|rest| rest.split('-').next())
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    let pg_index = name
        .strip_prefix("pg")
        .and_then(|rest| rest.split('-').next())
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    Some(match name {
        n if n.contains("cipher-pass") => {
            "is a secret, and no secret enters the generated tree: give pgbackrest.cipher_passphrase_file (a root-only file read at apply time)"
        }
        _ if repo_index.is_some_and(|i| i != "1") => {
            "configures another repository: pgbr-policy plans one repository (repo1) per cluster"
        }
        _ if pg_index.is_some() => {
            "configures the PostgreSQL connection (pg1-path, -socket-path, -port, -user, -database, -host): planned from the postgres and role sections"
        }
        "repo1-path" | "lock-path" | "log-path" | "spool-path" | "link-map" | "tablespace-map"
        | "tablespace-map-all" | "link-all" | "db-path" | "archive-get-path" => PLANNED_PATHS,
        "repo1-retention-full" => "is pgbackrest.retention_full",
        "start-fast" => "is pgbackrest.start_fast",
        "backup-standby" => "follows pgbackrest.commands (list backup-standby there)",
        "stanza" => "is pgbackrest.stanza",
        "neutral-umask" => {
            "would let pgBackRest's files follow the caller's umask: the privilege model relies on its fixed modes (0750 directories, 0640 files)"
        }
        "cmd" | "cmd-ssh" | "recovery-option" | "archive-mode" => {
            "sets a command or recovery setting that PostgreSQL or pgBackRest runs: restore.sh and archive_command are planned"
        }
        "allow-root" => "pgbr-policy runs pgBackRest as the cluster owner and the backup user, never as root",
        "repo1-type" => {
            "the repository's type is declared under repositories (a cluster's pgbackrest.repository names it)"
        }
        n if n.starts_with("config") => "configuration files are planned (pgbackrest.config)",
        n if n.starts_with("tls-") || n.contains("-host") || n.ends_with("-ca-file") || n.ends_with("-ca-path") => {
            HOSTS
        }
        n if n.starts_with("repo1-s3-")
            || n.starts_with("repo1-gcs-")
            || n.starts_with("repo1-azure-")
            || n.starts_with("repo1-sftp-")
            || n.starts_with("repo1-storage-") =>
        {
            "configures the repository's storage and its credentials: declared under repositories"
        }
        n if n.ends_with("-path") || (n.ends_with("-file") && !n.starts_with("log-level-")) => PLANNED_PATHS,
        n if n.ends_with("-user") || n.ends_with("-group") => {
            "names a user: which OS user and role run what is the privilege model (backup_user, role, postgres.owner)"
        }
        _ => return None,
    })
}

fn value_text(v: &OptionValue) -> String {
    match v {
        OptionValue::Bool(b) => b.to_string(),
        OptionValue::Int(i) => i.to_string(),
        OptionValue::Float(x) => x.to_string(),
        OptionValue::Text(s) => s.clone(),
    }
}

fn check_value(kind: Kind, v: &OptionValue, compress_type: Option<&str>) -> Result<String, String> {
    match (kind, v) {
        (Bool, OptionValue::Bool(b)) => Ok(if *b { "y" } else { "n" }.to_owned()),
        (Bool, _) => Err("must be true or false".into()),
        (Int(lo, hi), OptionValue::Int(i)) if (lo..=hi).contains(i) => Ok(i.to_string()),
        (Int(lo, hi), _) => Err(format!("must be a whole number from {lo} to {hi}")),
        (CompressLevel, OptionValue::Int(i)) => {
            let (lo, hi) = match compress_type.unwrap_or("gz") {
                "bz2" => (1, 9),
                "lz4" => (-5, 12),
                "zst" => (-7, 22),
                "none" => return Err("has no effect with compress-type none".into()),
                _ => (-1, 9),
            };
            if (lo..=hi).contains(i) {
                Ok(i.to_string())
            } else {
                Err(format!(
                    "must be from {lo} to {hi} for compress-type {}",
                    compress_type.unwrap_or("gz (the default)")
                ))
            }
        }
        (CompressLevel, _) => Err("must be a whole number".into()),
        (Enum(values), OptionValue::Text(s)) if values.contains(&s.as_str()) => Ok(s.clone()),
        (Enum(values), _) => Err(format!("must be one of {}", values.join(", "))),
        (Size, OptionValue::Int(i)) if *i > 0 => Ok(i.to_string()),
        (Size, OptionValue::Text(s)) if is_size(s) => Ok(s.clone()),
        (Size, _) => Err("must be a size like 4MiB (B, KB, KiB, MB, MiB, GB, GiB, TB, TiB, PB, PiB)".into()),
        (Seconds(lo, hi), OptionValue::Int(i)) if (lo..=hi).contains(&(*i as f64)) => Ok(i.to_string()),
        (Seconds(lo, hi), OptionValue::Float(x)) if (lo..=hi).contains(x) && (x * 1000.0).fract() == 0.0 => {
            Ok(x.to_string())
        }
        (Seconds(lo, hi), _) => Err(format!("must be seconds from {lo} to {hi} (at most three decimals)")),
    }
}

fn is_size(s: &str) -> bool {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let unit = &s[digits..];
    digits > 0
        && digits <= 15
        && s.as_bytes()[0] != b'0'
        && matches!(
            unit.to_ascii_lowercase().as_str(),
            "" | "b" | "kb" | "kib" | "mb" | "mib" | "gb" | "gib" | "tb" | "tib" | "pb" | "pib"
        )
}

/// The options, validated, in name order; errors name `pgbackrest.options.<name>` and
/// the line. `version` is the policy's pgBackRest version (0.0.0 when not given).
pub fn resolve(
    f: &mut Fields<'_, '_>,
    options: Option<&S<BTreeMap<String, S<OptionValue>>>>,
    version: Version,
) -> Option<Vec<PassOption>> {
    let Some(options) = options else {
        return Some(Vec::new());
    };
    let compress_type = options.value.get("compress-type").and_then(|v| match &v.value {
        OptionValue::Text(s) => Some(s.as_str()),
        _ => None,
    });
    let mut out = Vec::new();
    let mut ok = true;
    for (name, value) in &options.value {
        let path = f.path(&format!("pgbackrest.options.{}", crate::policy::names::printable(name)));
        if let Some(why) = refusal(name) {
            f.out.error(at(value), &path, format!("refused: `{name}` {why}"));
            ok = false;
            continue;
        }
        let Some(allowed) = ALLOWED.iter().find(|a| a.name == name) else {
            let names: Vec<&str> = ALLOWED.iter().map(|a| a.name).collect();
            f.out.error(
                at(value),
                &path,
                format!(
                    "is not an option pgbr-policy passes through (it passes: {})",
                    names.join(", ")
                ),
            );
            ok = false;
            continue;
        };
        if version != Version(0, 0, 0) && version < allowed.since {
            let Version(a, b, _) = allowed.since;
            f.out.error(
                at(value),
                &path,
                format!("needs pgBackRest {a}.{b} or later (pgbackrest.version is older)"),
            );
            ok = false;
            continue;
        }
        match check_value(allowed.kind, &value.value, compress_type) {
            Ok(text) => out.push(PassOption {
                key: allowed.name,
                value: text,
                side: allowed.side,
            }),
            Err(message) => {
                f.out.error(
                    at(value),
                    &path,
                    format!(
                        "`{}` {message}",
                        crate::policy::names::printable(&value_text(&value.value))
                    ),
                );
                ok = false;
            }
        }
    }
    let flag = |key: &str| out.iter().any(|o| o.key == key && o.value == "y");
    if flag("repo1-block") && !flag("repo1-bundle") {
        let path = f.path("pgbackrest.options.repo1-block");
        f.out.error(
            at(options),
            &path,
            "needs repo1-bundle: true (block incremental works on bundles)",
        );
        ok = false;
    }
    ok.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_allowed_option_is_not_also_refused() {
        for a in ALLOWED {
            assert!(refusal(a.name).is_none(), "{} is both allowed and refused", a.name);
        }
    }

    #[test]
    fn the_privilege_model_options_are_refused_by_name() {
        for name in [
            "repo1-path",
            "repo2-path",
            "repo1-host",
            "repo1-host-user",
            "repo1-cipher-pass",
            "pg1-path",
            "pg2-host",
            "pg1-user",
            "lock-path",
            "log-path",
            "spool-path",
            "tls-server-address",
            "tls-server-auth",
            "repo1-s3-key",
            "repo1-type",
            "config-include-path",
            "neutral-umask",
            "cmd-ssh",
            "recovery-option",
            "repo1-retention-full",
            "start-fast",
            "backup-standby",
            "allow-root",
            "link-map",
            "tablespace-map",
        ] {
            assert!(refusal(name).is_some(), "{name} is not refused");
        }
    }

    #[test]
    fn values_are_checked_by_kind() {
        let t = |s: &str| OptionValue::Text(s.into());
        assert_eq!(check_value(Bool, &OptionValue::Bool(true), None).unwrap(), "y");
        assert!(check_value(Bool, &t("yes"), None).is_err());
        assert!(check_value(Int(1, 999), &OptionValue::Int(0), None).is_err());
        assert_eq!(
            check_value(CompressLevel, &OptionValue::Int(19), Some("zst")).unwrap(),
            "19"
        );
        assert!(check_value(CompressLevel, &OptionValue::Int(19), None).is_err());
        assert!(check_value(Size, &t("4MiB"), None).is_ok());
        assert!(check_value(Size, &t("4 MiB"), None).is_err());
        assert!(check_value(Size, &t("04MiB"), None).is_err());
        assert!(check_value(Seconds(0.1, 10.0), &OptionValue::Float(0.05), None).is_err());
        assert_eq!(
            check_value(Seconds(0.1, 10.0), &OptionValue::Float(2.5), None).unwrap(),
            "2.5"
        );
    }
}
