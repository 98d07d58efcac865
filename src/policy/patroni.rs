//! The `patroni:` section of a cluster: defaults, the pg_hba/pg_ident lines that follow
//! the role's own, and the warnings that depend on the Patroni version (facts.md §5).
//! Called by `validate` once the cluster's other fields are known.

use super::fields::{Fields, at};
use super::model::Patroni;
use super::names::{AbsPath, UnitName, printable};
use super::raw::{self, S};
use crate::catalog::{PgMajor, Version};

/// Patroni 3.1 gives the files it creates in PGDATA the data directory's group mode;
/// before it, patroni.dynamic.json is always 0600 and postgresql.conf follows its umask.
const GROUP_AWARE: Version = Version(3, 1, 0);

/// What the rest of the cluster decided that the defaults here derive from.
pub struct Context<'a> {
    pub cluster: &'a str,
    pub major: Option<PgMajor>,
    pub data_directory: Option<&'a AbsPath>,
    pub owner_log: Option<&'a AbsPath>,
    pub role_database: Option<&'a str>,
}

pub fn resolve(f: &mut Fields<'_, '_>, spec: Option<&raw::PatroniSpec>, cx: &Context<'_>) -> Option<Patroni> {
    let spec = spec?;
    let enabled = spec.enabled.as_ref().is_some_and(|v| v.value);
    if !enabled {
        if spec.enabled.is_none() {
            let path = f.path("patroni.enabled");
            f.out.warning(
                f.cluster_at,
                &path,
                "patroni settings are given but `enabled` is not set: this cluster is generated without Patroni (say `enabled: true` or `enabled: false`)",
            );
        }
        return None;
    }
    let config_file = f.parse(
        spec.config_file.as_ref(),
        "patroni.config_file",
        || Some("/etc/patroni/config.yml".into()),
        AbsPath::parse,
    );
    let version = spec.version.as_ref().and_then(|v| {
        f.parse(
            Some(v),
            "patroni.version",
            || None,
            |text| {
                Version::parse(text).map_err(|_| format!("`{}` is not a Patroni version like `3.0.2`", printable(text)))
            },
        )
    });
    let scripts_directory = f.parse(
        spec.scripts_directory.as_ref(),
        "patroni.scripts_directory",
        || Some(format!("/usr/local/lib/pgbr-policy/{}", cx.cluster)),
        AbsPath::parse,
    );
    let owner_log = cx.owner_log.map(|p| p.to_string()).unwrap_or_default();
    let hook_log = f.parse(
        spec.hook_log.as_ref(),
        "patroni.hook_log",
        || Some(format!("{owner_log}/patroni-hook-{}.log", cx.cluster)),
        AbsPath::parse,
    );
    let service = f.parse(
        spec.service.as_ref(),
        "patroni.service",
        || Some("patroni.service".into()),
        UnitName::parse,
    );
    let data_checksums = spec.data_checksums.as_ref().is_none_or(|v| v.value);
    let pg_hba_after = hba_lines(f, spec.pg_hba_after.as_ref(), cx.major);
    let pg_ident_after = ident_lines(f, spec.pg_ident_after.as_ref());

    if let Some(pgdata) = cx.data_directory {
        for (path, field) in [
            (&scripts_directory, "patroni.scripts_directory"),
            (&hook_log, "patroni.hook_log"),
        ] {
            if let Some(path) = path {
                if path.is_within(pgdata) || pgdata.is_within(path) {
                    let p = f.path(field);
                    f.out.error(
                        f.cluster_at,
                        &p,
                        format!("`{path}` overlaps the data directory `{pgdata}`: it would be backed up, and Patroni may remove the data directory on a failed bootstrap"),
                    );
                }
            }
        }
    }
    let version_at = spec.version.as_ref().and_then(at);
    if let Some(v) = version {
        if v < GROUP_AWARE {
            let p = f.path("patroni.version");
            f.out.warning(version_at, &p, format!(
                "Patroni {v} creates its files in the data directory without group read (patroni.dynamic.json always 0600, postgresql.conf by its umask; fixed in {GROUP_AWARE}): the generated hook must stay on on_start, on_restart, on_role_change and on_reload, or backups by the group fail with [041] unable to open file"
            ));
        }
    }
    if let Some(db) = cx.role_database {
        if db != "postgres" {
            let p = f.path("role.database");
            f.out.warning(f.cluster_at, &p, format!(
                "post_bootstrap runs before database `{}` exists on a new cluster: it then creates nothing, and shell/apply.sh creates the role and grants once the database exists",
                printable(db)
            ));
        }
    }
    Some(Patroni {
        config_file: config_file?,
        version,
        scripts_directory: scripts_directory?,
        hook_log: hook_log?,
        service: service?,
        data_checksums,
        pg_hba_after: pg_hba_after?,
        pg_ident_after: pg_ident_after?,
    })
}

const HBA_TYPES: [&str; 6] = ["local", "host", "hostssl", "hostnossl", "hostgssenc", "hostnogssenc"];
const HBA_INCLUDES: [&str; 3] = ["include", "include_if_exists", "include_dir"];

/// Why a line cannot be one line of a configuration file, if it cannot.
fn one_line(line: &str) -> Option<String> {
    if let Some(c) = line.chars().find(|c| c.is_control() && *c != '\t') {
        return Some(format!(
            "`{}` contains the control character U+{:04X}: each entry is one line of the file",
            printable(line),
            c as u32
        ));
    }
    if line.trim().is_empty() {
        return Some("is empty: give a pg_hba line or a `#` comment".into());
    }
    None
}

fn hba_lines(f: &mut Fields<'_, '_>, value: Option<&S<Vec<S<String>>>>, major: Option<PgMajor>) -> Option<Vec<String>> {
    let example = "e.g. `host all all 127.0.0.1/32 scram-sha-256` for its superuser and `host replication replicator 127.0.0.1/32 scram-sha-256`";
    let Some(list) = value.filter(|l| !l.value.is_empty()) else {
        let path = f.path("patroni.pg_hba_after");
        let where_ = value.and_then(at).or(f.cluster_at);
        f.out.error(where_, &path, format!(
            "is required: Patroni rewrites the whole pg_hba.conf from postgresql.pg_hba, and its own connections go over TCP ({example})"
        ));
        return None;
    };
    let mut ok = true;
    let mut has_host = false;
    for (i, item) in list.value.iter().enumerate() {
        let path = f.path(&format!("patroni.pg_hba_after[{i}]"));
        let line = item.value.as_str();
        let problem = one_line(line).or_else(|| {
            let tokens: Vec<&str> = line.split_whitespace().collect();
            let kind = tokens.first().copied().unwrap_or("");
            if kind.starts_with('#') {
                None
            } else if HBA_INCLUDES.contains(&kind) {
                (major.is_some_and(|m| m.get() < 16))
                    .then(|| format!("`{kind}` in pg_hba.conf needs PostgreSQL 16 or later"))
            } else if !HBA_TYPES.contains(&kind) {
                Some(format!(
                    "`{}` does not start with a connection type ({}) or `#`",
                    printable(line),
                    HBA_TYPES.join(", ")
                ))
            } else if tokens.len() < if kind == "local" { 4 } else { 5 } {
                Some(format!(
                    "`{}` is too short: `{kind}` needs a database, a user{} and a method",
                    printable(line),
                    if kind == "local" { "" } else { ", an address" }
                ))
            } else {
                has_host |= kind != "local";
                None
            }
        });
        if let Some(message) = problem {
            f.out.error(at(item), &path, message);
            ok = false;
        }
    }
    if ok && !has_host {
        let path = f.path("patroni.pg_hba_after");
        f.out.warning(
            at(list),
            &path,
            format!(
                "no `host` line: Patroni connects to PostgreSQL over TCP, and replicas replicate over TCP ({example})"
            ),
        );
    }
    ok.then(|| list.value.iter().map(|l| l.value.clone()).collect())
}

fn ident_lines(f: &mut Fields<'_, '_>, value: Option<&S<Vec<S<String>>>>) -> Option<Vec<String>> {
    let Some(list) = value else {
        return Some(Vec::new());
    };
    let mut ok = true;
    for (i, item) in list.value.iter().enumerate() {
        let line = item.value.as_str();
        let problem = one_line(line).or_else(|| {
            let tokens = line.split_whitespace().count();
            (!line.trim_start().starts_with('#') && tokens != 3).then(|| {
                format!(
                    "`{}` is not a pg_ident line: MAPNAME SYSTEM-USERNAME PG-USERNAME",
                    printable(line)
                )
            })
        });
        if let Some(message) = problem {
            let path = f.path(&format!("patroni.pg_ident_after[{i}]"));
            f.out.error(at(item), &path, message);
            ok = false;
        }
    }
    ok.then(|| list.value.iter().map(|l| l.value.clone()).collect())
}

#[cfg(test)]
mod tests {
    use crate::policy::{Loaded, PolicyErrors, parse};
    use std::path::Path;

    const BASE: &str = "version: 1\nclusters:\n  - name: pat\n    postgres: {major: 15}\n    patroni:\n";

    fn load(patroni: &str) -> Result<Loaded, PolicyErrors> {
        parse(format!("{BASE}{patroni}").as_bytes(), Path::new("p.yaml"), "p.yaml")
    }

    fn errors(patroni: &str) -> String {
        load(patroni).err().expect("rejected").to_string()
    }

    fn warnings(patroni: &str) -> String {
        let loaded = load(patroni).unwrap_or_else(|e| panic!("{e}"));
        loaded
            .warnings
            .iter()
            .map(|w| w.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    const HBA: &str = "      pg_hba_after: [\"host all all 127.0.0.1/32 scram-sha-256\"]\n";

    #[test]
    fn a_complete_section_gives_defaults() {
        let loaded = load(&format!("      enabled: true\n      version: \"3.1.0\"\n{HBA}")).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let p = loaded.policy.clusters[0].patroni.clone().unwrap();
        assert_eq!(p.config_file.as_str(), "/etc/patroni/config.yml");
        assert_eq!(p.scripts_directory.as_str(), "/usr/local/lib/pgbr-policy/pat");
        assert_eq!(p.hook_log.as_str(), "/var/log/pgbackrest/patroni-hook-pat.log");
        assert!(p.data_checksums);
    }

    #[test]
    fn the_lines_after_the_role_are_required() {
        let err = errors("      enabled: true\n");
        assert!(err.contains("clusters[0].patroni.pg_hba_after: is required"), "{err}");
        assert!(err.contains("over TCP"), "{err}");
        let err = errors("      enabled: true\n      pg_hba_after: []\n");
        assert!(err.contains("p.yaml:7:21"), "{err}");
    }

    #[test]
    fn each_line_must_be_one_pg_hba_line() {
        let err = errors(
            "      enabled: true\n      pg_hba_after:\n        - \"host all all 127.0.0.1/32 trust\\nlocal all all trust\"\n        - \"hots all all 127.0.0.1/32 trust\"\n        - \"host all all md5\"\n        - \"include_dir conf.d\"\n        - \"# a comment\"\n",
        );
        assert!(
            err.contains("p.yaml:8:11: clusters[0].patroni.pg_hba_after[0]"),
            "{err}"
        );
        assert!(err.contains("U+000A"), "{err}");
        assert!(
            err.contains("pg_hba_after[1]") && err.contains("does not start with a connection type"),
            "{err}"
        );
        assert!(err.contains("pg_hba_after[2]") && err.contains("too short"), "{err}");
        assert!(
            err.contains("pg_hba_after[3]") && err.contains("PostgreSQL 16"),
            "{err}"
        );
        assert!(!err.contains("pg_hba_after[4]"), "{err}");
    }

    #[test]
    fn ident_lines_have_three_fields() {
        let err = errors(&format!(
            "      enabled: true\n{HBA}      pg_ident_after: [\"map postgres\"]\n"
        ));
        assert!(err.contains("pg_ident_after[0]") && err.contains("MAPNAME"), "{err}");
    }

    #[test]
    fn old_patroni_needs_the_hook() {
        let w = warnings(&format!("      enabled: true\n      version: \"3.0.2\"\n{HBA}"));
        assert!(
            w.contains("p.yaml:7:16: clusters[0].patroni.version: Patroni 3.0.2"),
            "{w}"
        );
        assert!(w.contains("fixed in 3.1"), "{w}");
        assert!(warnings(&format!("      enabled: true\n      version: \"4.0.4\"\n{HBA}")).is_empty());
        let err = errors(&format!("      enabled: true\n      version: three\n{HBA}"));
        assert!(err.contains("not a Patroni version"), "{err}");
    }

    #[test]
    fn without_a_host_line_patroni_cannot_connect() {
        let w = warnings("      enabled: true\n      pg_hba_after: [\"local all all peer\"]\n");
        assert!(w.contains("no `host` line"), "{w}");
    }

    #[test]
    fn enabled_must_be_said() {
        let loaded = load(HBA).unwrap();
        assert!(loaded.policy.clusters[0].patroni.is_none());
        let w = loaded.warnings.iter().map(|w| w.to_string()).collect::<String>();
        assert!(w.contains("patroni.enabled"), "{w}");
        let loaded = load(&format!("      enabled: false\n{HBA}")).unwrap();
        assert!(loaded.warnings.is_empty() && loaded.policy.clusters[0].patroni.is_none());
    }

    #[test]
    fn scripts_stay_out_of_the_data_directory() {
        let err = errors(&format!(
            "      enabled: true\n      scripts_directory: /var/lib/postgresql/15/main/hooks\n{HBA}"
        ));
        assert!(
            err.contains("patroni.scripts_directory") && err.contains("overlaps the data directory"),
            "{err}"
        );
    }

    #[test]
    fn another_database_is_left_to_apply() {
        let text = format!("{BASE}      enabled: true\n{HBA}    role: {{database: app}}\n");
        let loaded = parse(text.as_bytes(), Path::new("p.yaml"), "p.yaml").unwrap();
        let w = loaded.warnings.iter().map(|w| w.to_string()).collect::<String>();
        assert!(w.contains("post_bootstrap runs before database `app` exists"), "{w}");
    }
}
