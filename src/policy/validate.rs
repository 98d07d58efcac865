//! Turns the raw, merged policy into the typed [`Policy`]: fills in defaults (Debian or
//! RHEL conventions, pgBackRest's own), checks every value and every combination, and
//! reports each problem with its line and field path. Nothing downstream re-checks.

use super::diagnostic::Collector;
use super::model::*;
use super::names::{AbsPath, ClusterName, EnvName, HostName, OsName, SqlName, Stanza, UnitName};
use super::raw::{self, S};
use crate::catalog::{Command, PgMajor, Version};

/// Which distribution's conventions set the default paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Debian,
    Rhel,
}

pub(super) fn at<T>(value: &S<T>) -> Option<(usize, usize)> {
    Some((value.referenced.line() as usize, value.referenced.column() as usize))
}

/// Reads one cluster's fields, recording errors instead of stopping at the first.
pub(super) struct Fields<'c, 'f> {
    pub(super) out: &'c mut Collector<'f>,
    prefix: String,
    /// Where the cluster itself starts, for errors about missing keys.
    pub(super) cluster_at: Option<(usize, usize)>,
}

impl Fields<'_, '_> {
    pub(super) fn path(&self, field: &str) -> String {
        format!("{}.{field}", self.prefix)
    }

    /// A string field parsed into a typed value, or the default when absent.
    pub(super) fn parse<T>(
        &mut self,
        value: Option<&S<String>>,
        field: &str,
        default: impl FnOnce() -> Option<String>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        match value {
            Some(v) => match parse(&v.value) {
                Ok(t) => Some(t),
                Err(message) => {
                    let path = self.path(field);
                    self.out.error(at(v), &path, message);
                    None
                }
            },
            None => match default() {
                Some(d) => match parse(&d) {
                    Ok(t) => Some(t),
                    // A default derived from another field fails only when that field
                    // is itself invalid, and that error is already reported.
                    Err(message) => {
                        if !self.out.has_errors() {
                            let path = self.path(field);
                            self.out.error(
                                self.cluster_at,
                                &path,
                                format!("the default derived from other fields is invalid: {message}"),
                            );
                        }
                        None
                    }
                },
                None => {
                    let path = self.path(field);
                    self.out.error(self.cluster_at, &path, "is required");
                    None
                }
            },
        }
    }

    fn port(&mut self, value: Option<&S<u32>>, field: &str, default: u16) -> Option<u16> {
        match value {
            None => Some(default),
            Some(v) => match u16::try_from(v.value) {
                Ok(port) if port > 0 => Some(port),
                _ => {
                    let path = self.path(field);
                    self.out
                        .error(at(v), &path, format!("{} is not a TCP port (1 to 65535)", v.value));
                    None
                }
            },
        }
    }
}

fn string<T>(v: &Option<S<T>>) -> Option<&S<T>> {
    v.as_ref()
}

/// Output grows with the clusters (~170 KB each): this bounds what any policy file,
/// however crafted, makes the tool hold in memory (~170 MB).
pub const MAX_CLUSTERS: usize = 1000;

pub fn resolve(file: raw::PolicyFile, source_name: &str, out: &mut Collector<'_>) -> Option<Policy> {
    if file.version.value != 1 {
        out.error(
            at(&file.version),
            "version",
            format!(
                "policy version {} is not known: this pgbr-policy reads version 1",
                file.version.value
            ),
        );
        return None;
    }
    if file.clusters.value.is_empty() {
        out.error(at(&file.clusters), "clusters", "lists no cluster: add at least one");
        return None;
    }
    if file.clusters.value.len() > MAX_CLUSTERS {
        out.error(
            at(&file.clusters),
            "clusters",
            format!(
                "lists {} clusters; a policy may hold at most {MAX_CLUSTERS} (each renders ~170 KB of artifacts): split the fleet into several policies",
                file.clusters.value.len()
            ),
        );
        return None;
    }
    let defaults = file.defaults.unwrap_or_default();
    if let Some(name) = &defaults.name {
        out.error(
            at(name),
            "defaults.name",
            "a name cannot be shared: give each cluster its own `name`",
        );
    }
    let clusters_at = at(&file.clusters);
    let mut clusters = Vec::new();
    for (index, spec) in file.clusters.value.into_iter().enumerate() {
        let merged = spec.merged_over(&defaults);
        if let Some(cluster) = resolve_cluster(index, merged, clusters_at, out) {
            clusters.push(cluster);
        }
    }
    check_unique(&clusters, out);
    if out.has_errors() {
        return None;
    }
    Some(Policy {
        source_name: source_name.to_owned(),
        clusters,
    })
}

/// One pass with a set: a policy may list up to MAX_CLUSTERS clusters.
fn check_unique(clusters: &[Cluster], out: &mut Collector<'_>) {
    let mut seen = std::collections::BTreeSet::new();
    for (i, a) in clusters.iter().enumerate() {
        if !seen.insert(&a.name) {
            out.error(
                None,
                &format!("clusters[{i}].name"),
                format!(
                    "`{}` is used by two clusters; names must be unique (each gets its own output directory)",
                    a.name
                ),
            );
        }
    }
}

fn resolve_cluster(
    index: usize,
    spec: raw::ClusterSpec,
    clusters_at: Option<(usize, usize)>,
    out: &mut Collector<'_>,
) -> Option<Cluster> {
    let cluster_at = spec.name.as_ref().and_then(at).or(clusters_at);
    let mut f = Fields {
        out,
        prefix: format!("clusters[{index}]"),
        cluster_at,
    };
    let name = f.parse(string(&spec.name), "name", || None, ClusterName::parse);

    let locations = PathLocations::of(&spec);
    let pg = spec.postgres.unwrap_or_default();
    let major = match &pg.major {
        Some(m) => match PgMajor::new(m.value) {
            Ok(major) => Some(major),
            Err(message) => {
                let path = f.path("postgres.major");
                f.out.error(at(m), &path, message);
                None
            }
        },
        None => {
            let path = f.path("postgres.major");
            f.out.error(
                cluster_at,
                &path,
                "is required (the PostgreSQL major version, 10 to 18)",
            );
            None
        }
    };
    let layout = f.parse(
        string(&pg.layout),
        "postgres.layout",
        || Some("debian".into()),
        |v| match v {
            "debian" => Ok(Layout::Debian),
            "rhel" => Ok(Layout::Rhel),
            other => Err(format!(
                "`{}` is not a known layout: use `debian` or `rhel` (it sets the default paths)",
                super::names::printable(other)
            )),
        },
    );
    let m = major.map(|m| m.get()).unwrap_or(0);
    let lay = layout.unwrap_or(Layout::Debian);
    let data_directory = f.parse(
        string(&pg.data_directory),
        "postgres.data_directory",
        || {
            Some(match lay {
                Layout::Debian => format!("/var/lib/postgresql/{m}/main"),
                Layout::Rhel => format!("/var/lib/pgsql/{m}/data"),
            })
        },
        AbsPath::parse,
    );
    let owner = f.parse(
        string(&pg.owner),
        "postgres.owner",
        || Some("postgres".into()),
        OsName::parse,
    );
    let owner_name = owner.as_ref().map(|o| o.to_string()).unwrap_or_default();
    let group = f.parse(
        string(&pg.group),
        "postgres.group",
        || Some(owner_name.clone()),
        OsName::parse,
    );
    let socket_directory = f.parse(
        string(&pg.socket_directory),
        "postgres.socket_directory",
        || {
            Some(match lay {
                Layout::Debian => "/var/run/postgresql".into(),
                Layout::Rhel => "/run/postgresql".into(),
            })
        },
        AbsPath::parse,
    );
    let port = f.port(pg.port.as_ref(), "postgres.port", 5432);
    let bin_directory = f.parse(
        string(&pg.bin_directory),
        "postgres.bin_directory",
        || {
            Some(match lay {
                Layout::Debian => format!("/usr/lib/postgresql/{m}/bin"),
                Layout::Rhel => format!("/usr/pgsql-{m}/bin"),
            })
        },
        AbsPath::parse,
    );
    let hba_file = pg
        .hba_file
        .as_ref()
        .and_then(|v| f.parse(Some(v), "postgres.hba_file", || None, AbsPath::parse));
    let ident_file = pg
        .ident_file
        .as_ref()
        .and_then(|v| f.parse(Some(v), "postgres.ident_file", || None, AbsPath::parse));
    // Debian runs cluster <major>/<name> as postgresql@<major>-<name>; PGDG RPMs as postgresql-<major>.
    let debian_cluster = data_directory
        .as_ref()
        .and_then(|d| d.as_str().rsplit('/').next().map(str::to_owned))
        .unwrap_or_else(|| "main".into());
    let service = f.parse(
        string(&pg.service),
        "postgres.service",
        || {
            Some(match lay {
                Layout::Debian => format!("postgresql@{m}-{debian_cluster}.service"),
                Layout::Rhel => format!("postgresql-{m}.service"),
            })
        },
        UnitName::parse,
    );

    let bu = spec.backup_user.unwrap_or_default();
    let bu_name = f.parse(
        string(&bu.name),
        "backup_user.name",
        || Some("pgbackrest".into()),
        OsName::parse,
    );
    let bu_str = bu_name.as_ref().map(|n| n.to_string()).unwrap_or_default();
    let bu_group = f.parse(
        string(&bu.group),
        "backup_user.group",
        || Some(bu_str.clone()),
        OsName::parse,
    );
    let home = f.parse(
        string(&bu.home),
        "backup_user.home",
        || Some(format!("/home/{bu_str}")),
        AbsPath::parse,
    );
    let shell = f.parse(
        string(&bu.shell),
        "backup_user.shell",
        || Some("/bin/bash".into()),
        AbsPath::parse,
    );
    let ssh_key = bu.ssh_key.as_ref().map(|v| v.value).unwrap_or(false);

    let role = spec.role.unwrap_or_default();
    let role_name = f.parse(
        string(&role.name),
        "role.name",
        || Some("pgbackrest".into()),
        SqlName::parse,
    );
    if let (Some(name), Some(v)) = (&role_name, &role.name) {
        let path = f.path("role.name");
        if name.as_str().starts_with("pg_") {
            f.out.error(
                at(v),
                &path,
                "role names starting with `pg_` are reserved by PostgreSQL",
            );
        } else if matches!(name.as_str(), "public" | "none") {
            f.out.error(
                at(v),
                &path,
                format!("`{name}` is reserved by PostgreSQL (CREATE ROLE refuses it)"),
            );
        } else if owner.as_ref().is_some_and(|o| o.as_str() == name.as_str()) {
            // By convention the cluster owner's database role is the superuser that
            // apply.sh connects as: converging it would take SUPERUSER away, and the
            // reject lines of pg_hba.conf would lock it out.
            f.out.error(
                at(v),
                &path,
                format!("`{name}` is the cluster owner's own role (the superuser apply.sh connects as): the backup role must be a role of its own"),
            );
        }
    }
    let database = f.parse(
        string(&role.database),
        "role.database",
        || Some("postgres".into()),
        SqlName::parse,
    );
    let auth = resolve_auth(&mut f, &role);
    let revoke_public_create = role.revoke_public_create.as_ref().map(|v| v.value).unwrap_or(true);
    if let (Some(major), Some(v)) = (major, &role.revoke_public_create) {
        if !v.value && major.public_may_create_in_public_schema() {
            let path = f.path("role.revoke_public_create");
            f.out.warning(at(v), &path, format!("on PostgreSQL {major} every role, the backup role included, may CREATE in schema public unless this is true"));
        }
    }

    let pb = spec.pgbackrest.unwrap_or_default();
    let cluster_str = name.as_ref().map(|n| n.to_string()).unwrap_or_default();
    let stanza = f.parse(
        string(&pb.stanza),
        "pgbackrest.stanza",
        || Some(cluster_str.clone()),
        Stanza::parse,
    );
    let version = pb
        .version
        .as_ref()
        .and_then(|v| f.parse(Some(v), "pgbackrest.version", || None, Version::parse));
    let binary = f.parse(
        string(&pb.binary),
        "pgbackrest.binary",
        || Some("/usr/bin/pgbackrest".into()),
        AbsPath::parse,
    );
    let commands = resolve_commands(&mut f, pb.commands.as_ref(), major);
    let repository = f.parse(
        string(&pb.repository),
        "pgbackrest.repository",
        || Some("/var/lib/pgbackrest".into()),
        AbsPath::parse,
    );
    let retention_full = match &pb.retention_full {
        Some(v) if v.value == 0 || v.value > 9_999_999 => {
            let path = f.path("pgbackrest.retention_full");
            f.out
                .error(at(v), &path, "must be between 1 and 9999999 (full backups kept)");
            None
        }
        Some(v) => Some(v.value),
        None => Some(2),
    };
    let start_fast = pb.start_fast.as_ref().map(|v| v.value).unwrap_or(true);
    let tls = pb.tls.clone().unwrap_or_default();
    let tls_address = f.parse(
        string(&tls.address),
        "pgbackrest.tls.address",
        || Some("127.0.0.1".into()),
        HostName::parse,
    );
    let tls_port = f.port(tls.port.as_ref(), "pgbackrest.tls.port", 8432);
    let tls_directory = f.parse(
        string(&tls.directory),
        "pgbackrest.tls.directory",
        || Some(format!("/etc/pgbackrest/{cluster_str}/tls")),
        AbsPath::parse,
    );
    let cfg = pb.config.clone().unwrap_or_default();
    let repository_config = f.parse(
        string(&cfg.repository_side),
        "pgbackrest.config.repository_side",
        || Some(format!("/etc/pgbackrest/{cluster_str}/repository.conf")),
        AbsPath::parse,
    );
    let database_config = f.parse(
        string(&cfg.database_side),
        "pgbackrest.config.database_side",
        || Some(format!("/etc/pgbackrest/{cluster_str}/database.conf")),
        AbsPath::parse,
    );
    let bup = pb.backup_user_paths.clone().unwrap_or_default();
    if let Some(v) = &bup.spool {
        let path = f.path("pgbackrest.backup_user_paths.spool");
        f.out.error(at(v), &path, "the spool path belongs to the cluster owner (asynchronous archiving); the backup user needs none: set it under owner_paths");
    }
    let backup_user_lock = f.parse(
        string(&bup.lock),
        "pgbackrest.backup_user_paths.lock",
        || Some(format!("/run/pgbackrest-{bu_str}")),
        AbsPath::parse,
    );
    let backup_user_log = f.parse(
        string(&bup.log),
        "pgbackrest.backup_user_paths.log",
        || Some(format!("/var/log/pgbackrest-{bu_str}")),
        AbsPath::parse,
    );
    let op = pb.owner_paths.clone().unwrap_or_default();
    let owner_lock = f.parse(
        string(&op.lock),
        "pgbackrest.owner_paths.lock",
        || Some(format!("/run/pgbackrest-{owner_name}")),
        AbsPath::parse,
    );
    let owner_log = f.parse(
        string(&op.log),
        "pgbackrest.owner_paths.log",
        || Some("/var/log/pgbackrest".into()),
        AbsPath::parse,
    );
    let owner_spool = f.parse(
        string(&op.spool),
        "pgbackrest.owner_paths.spool",
        || Some("/var/spool/pgbackrest".into()),
        AbsPath::parse,
    );
    let archive_managed = spec.archive.and_then(|a| a.managed).map(|v| v.value).unwrap_or(true);
    let patroni = super::patroni::resolve(
        &mut f,
        spec.patroni.as_ref(),
        &super::patroni::Context {
            cluster: &cluster_str,
            major,
            data_directory: data_directory.as_ref(),
            owner_log: owner_log.as_ref(),
            role_database: database.as_ref().map(|d| d.as_str()),
        },
    );

    let cluster = Cluster {
        name: name?,
        postgres: Postgres {
            major: major?,
            data_directory: data_directory?,
            owner: owner?,
            group: group?,
            socket_directory: socket_directory?,
            port: port?,
            bin_directory: bin_directory?,
            hba_file,
            ident_file,
            service: service?,
        },
        backup_user: BackupUser {
            name: bu_name?,
            group: bu_group?,
            home: home?,
            shell: shell?,
            ssh_key,
        },
        role: Role {
            name: role_name?,
            database: database?,
            auth: auth?,
            revoke_public_create,
        },
        pgbackrest: Pgbackrest {
            stanza: stanza?,
            version: version.unwrap_or(Version(0, 0, 0)),
            binary: binary?,
            commands: commands?,
            repository: repository?,
            retention_full: retention_full?,
            start_fast,
            tls_address: tls_address?,
            tls_port: tls_port?,
            tls_directory: tls_directory?,
            repository_config: repository_config?,
            database_config: database_config?,
            backup_user_lock: backup_user_lock?,
            backup_user_log: backup_user_log?,
            owner_lock: owner_lock?,
            owner_log: owner_log?,
            owner_spool: owner_spool?,
        },
        archive_managed,
        patroni,
    };
    check_combinations(&mut f, &cluster, &bu, &pb);
    check_places(&mut f, &cluster, &locations);
    Some(cluster)
}

fn resolve_auth(f: &mut Fields<'_, '_>, role: &raw::RoleSpec) -> Option<Auth> {
    let method = role.auth.as_ref().map(|v| v.value.as_str()).unwrap_or("peer");
    match method {
        "peer" => {
            for (value, field) in [
                (&role.password_file, "role.password_file"),
                (&role.password_env, "role.password_env"),
            ] {
                if let Some(v) = value {
                    let path = f.path(field);
                    f.out.error(
                        at(v),
                        &path,
                        "is only used with `auth: scram-sha-256`; peer authentication needs no password",
                    );
                }
            }
            Some(Auth::Peer)
        }
        "scram-sha-256" => match (&role.password_file, &role.password_env) {
            (Some(file), None) => f
                .parse(Some(file), "role.password_file", || None, AbsPath::parse)
                .map(|p| Auth::Scram(PasswordSource::File(p))),
            (None, Some(env)) => f
                .parse(Some(env), "role.password_env", || None, EnvName::parse)
                .map(|e| Auth::Scram(PasswordSource::Env(e))),
            (Some(_), Some(env)) => {
                let path = f.path("role.password_env");
                f.out
                    .error(at(env), &path, "give either password_file or password_env, not both");
                None
            }
            (None, None) => {
                let path = f.path("role.auth");
                let where_ = role.auth.as_ref().and_then(at);
                f.out.error(where_, &path, "scram-sha-256 needs the password's source: `password_file` (a path read at apply time) or `password_env` (a variable name); the password itself never goes in the policy");
                None
            }
        },
        other => {
            let path = f.path("role.auth");
            let where_ = role.auth.as_ref().and_then(at);
            f.out.error(
                where_,
                &path,
                format!(
                    "`{}` is not supported: use `peer` (default, no secret) or `scram-sha-256`",
                    super::names::printable(other)
                ),
            );
            None
        }
    }
}

fn resolve_commands(
    f: &mut Fields<'_, '_>,
    value: Option<&S<Vec<S<String>>>>,
    major: Option<PgMajor>,
) -> Option<Vec<Command>> {
    let Some(list) = value else {
        return Some(vec![Command::Check, Command::Backup]);
    };
    if list.value.is_empty() {
        let path = f.path("pgbackrest.commands");
        f.out.error(at(list), &path, "lists no command: allow at least `check`");
        return None;
    }
    let mut commands = Vec::new();
    let mut ok = true;
    for (i, item) in list.value.iter().enumerate() {
        let path = f.path(&format!("pgbackrest.commands[{i}]"));
        match Command::parse(&item.value) {
            Ok(Command::BackupStandby) if major.is_some_and(|m| !m.has_pg_checkpoint_role()) => {
                f.out.error(at(item), &path, format!(
                    "backup-standby needs a superuser on PostgreSQL {} (it runs CHECKPOINT on the standby; the pg_checkpoint role exists from PostgreSQL 15)",
                    major.map(|m| m.get()).unwrap_or(0)
                ));
                ok = false;
            }
            Ok(c) => commands.push(c),
            Err(message) => {
                f.out.error(at(item), &path, message);
                ok = false;
            }
        }
    }
    commands.sort();
    commands.dedup();
    ok.then_some(commands)
}

fn check_combinations(f: &mut Fields<'_, '_>, c: &Cluster, bu: &raw::BackupUserSpec, pb: &raw::PgbackrestSpec) {
    let bu_at = bu.name.as_ref().and_then(at).or(f.cluster_at);
    if c.backup_user.name == c.postgres.owner {
        let path = f.path("backup_user.name");
        f.out.error(bu_at, &path, format!("the backup OS user must differ from the cluster owner `{}`: a separate, read-only account is the point of this policy", c.postgres.owner));
    } else if !c.postgres.major.has_group_access() {
        let path = f.path("postgres.major");
        f.out.error(f.cluster_at, &path, format!(
            "PostgreSQL {} has no group access to the data directory (it arrived in 11), so a separate backup OS user cannot read it: least privilege for the OS user is impossible; upgrade to 11 or later",
            c.postgres.major
        ));
    }
    if c.backup_user.group == c.postgres.group {
        let path = f.path("backup_user.group");
        let where_ = bu.group.as_ref().and_then(at).or(bu_at);
        f.out.error(where_, &path, format!("the backup user's own group must differ from the cluster's group `{}`: the repository is group-owned by it, and the cluster owner must not reach the repository except through the TLS server", c.postgres.group));
    }
    if c.backup_user.name == c.backup_user.group && c.backup_user.name.as_str() == c.postgres.group.as_str() {
        // covered above; kept explicit so the message order stays stable
    }
    let pgdata = &c.postgres.data_directory;
    // Every directory the scripts create, chown and chmod (and rollback.sh may remove).
    // The configuration files' directory is only made root:root 0755, which
    // /etc/pgbackrest already is.
    let config_parent = |p: &AbsPath| p.ancestors().into_iter().next().unwrap_or_else(|| p.clone());
    let (bup, op) = (pb.backup_user_paths.as_ref(), pb.owner_paths.as_ref());
    let (tls, cfg) = (pb.tls.as_ref(), pb.config.as_ref());
    let managed: [(AbsPath, &str, Option<&S<String>>); 10] = [
        (c.backup_user.home.clone(), "backup_user.home", bu.home.as_ref()),
        (
            c.pgbackrest.repository.clone(),
            "pgbackrest.repository",
            pb.repository.as_ref(),
        ),
        (
            c.pgbackrest.tls_directory.clone(),
            "pgbackrest.tls.directory",
            tls.and_then(|t| t.directory.as_ref()),
        ),
        (
            c.pgbackrest.backup_user_lock.clone(),
            "pgbackrest.backup_user_paths.lock",
            bup.and_then(|p| p.lock.as_ref()),
        ),
        (
            c.pgbackrest.backup_user_log.clone(),
            "pgbackrest.backup_user_paths.log",
            bup.and_then(|p| p.log.as_ref()),
        ),
        (
            c.pgbackrest.owner_lock.clone(),
            "pgbackrest.owner_paths.lock",
            op.and_then(|p| p.lock.as_ref()),
        ),
        (
            c.pgbackrest.owner_log.clone(),
            "pgbackrest.owner_paths.log",
            op.and_then(|p| p.log.as_ref()),
        ),
        (
            c.pgbackrest.owner_spool.clone(),
            "pgbackrest.owner_paths.spool",
            op.and_then(|p| p.spool.as_ref()),
        ),
        (
            config_parent(&c.pgbackrest.repository_config),
            "pgbackrest.config.repository_side",
            cfg.and_then(|c| c.repository_side.as_ref()),
        ),
        (
            config_parent(&c.pgbackrest.database_config),
            "pgbackrest.config.database_side",
            cfg.and_then(|c| c.database_side.as_ref()),
        ),
    ];
    for (dir, field, raw) in &managed {
        let config_dir_ok = field.starts_with("pgbackrest.config.") && dir.as_str() == "/etc/pgbackrest";
        if dir.is_system_directory() && !config_dir_ok {
            let p = f.path(field);
            let what = if field.starts_with("pgbackrest.config.") {
                ", the directory of this file,"
            } else {
                ""
            };
            f.out.error(raw.and_then(at).or(f.cluster_at), &p, format!("`{dir}`{what} is a system directory: apply.sh would take it over (owner, group and mode) and rollback.sh would remove what it made there; give it a directory of its own, like the default"));
        }
    }
    let pairs: [(&AbsPath, &str); 7] = [
        (&c.backup_user.home, "backup_user.home"),
        (&c.pgbackrest.repository, "pgbackrest.repository"),
        (&c.pgbackrest.tls_directory, "pgbackrest.tls.directory"),
        (&c.pgbackrest.backup_user_lock, "pgbackrest.backup_user_paths.lock"),
        (&c.pgbackrest.backup_user_log, "pgbackrest.backup_user_paths.log"),
        (&c.pgbackrest.repository_config, "pgbackrest.config.repository_side"),
        (&c.pgbackrest.database_config, "pgbackrest.config.database_side"),
    ];
    for (path, field) in pairs {
        if path.is_within(pgdata) || pgdata.is_within(path) {
            let p = f.path(field);
            f.out.error(f.cluster_at, &p, format!("`{path}` overlaps the data directory `{pgdata}`: keep pgBackRest's files out of PGDATA (they would be backed up, and the modes conflict)"));
        }
    }
    let distinct: [(&AbsPath, &AbsPath, &str, &str); 3] = [
        (
            &c.pgbackrest.backup_user_lock,
            &c.pgbackrest.owner_lock,
            "pgbackrest.backup_user_paths.lock",
            "a lock directory is created 0750 by whichever user comes first and then blocks the other ([050] unable to acquire lock)",
        ),
        (
            &c.pgbackrest.backup_user_log,
            &c.pgbackrest.owner_log,
            "pgbackrest.backup_user_paths.log",
            "each OS user needs a log directory it can write",
        ),
        (
            &c.pgbackrest.repository_config,
            &c.pgbackrest.database_config,
            "pgbackrest.config.repository_side",
            "the repository side and the database side need different files (the TLS client and server options differ)",
        ),
    ];
    for (a, b, field, why) in distinct {
        if a == b {
            let p = f.path(field);
            f.out
                .error(f.cluster_at, &p, format!("`{a}` is used by both OS users: {why}"));
        }
    }
    if c.pgbackrest.repository.is_within(&c.pgbackrest.owner_spool)
        || c.pgbackrest.owner_spool.is_within(&c.pgbackrest.repository)
    {
        let p = f.path("pgbackrest.owner_paths.spool");
        f.out.error(
            f.cluster_at,
            &p,
            "the spool path must not overlap the repository: two OS users cannot share one directory tree",
        );
    }
    let version_at = pb.version.as_ref().and_then(at);
    let needed = c.postgres.major.min_pgbackrest().max(Version::TLS_SERVER);
    if c.pgbackrest.version == Version(0, 0, 0) {
        if c.postgres.major.get() >= 16 {
            let p = f.path("pgbackrest.version");
            f.out.warning(f.cluster_at, &p, format!("PostgreSQL {} needs pgBackRest {needed} or later; set `pgbackrest.version` to the version on your hosts to have it checked", c.postgres.major));
        }
    } else if c.pgbackrest.version < Version::TLS_SERVER {
        let p = f.path("pgbackrest.version");
        f.out.error(
            version_at,
            &p,
            format!(
                "pgBackRest {} has no TLS server (`pgbackrest server`, added in 2.37), which this layout needs",
                c.pgbackrest.version
            ),
        );
    } else if c.pgbackrest.version < needed {
        let p = f.path("pgbackrest.version");
        f.out.warning(version_at, &p, format!("pgBackRest {} cannot back up PostgreSQL {} (`unexpected control version`); it needs pgBackRest {needed} or later", c.pgbackrest.version, c.postgres.major));
    }
    if !c.pgbackrest.tls_address.is_loopback() {
        let p = f.path("pgbackrest.tls.address");
        let where_ = pb.tls.as_ref().and_then(|t| t.address.as_ref()).and_then(at);
        f.out.warning(where_, &p, format!("the TLS server will listen on `{}`, not loopback: it authenticates clients by certificate, but keep the port firewalled", c.pgbackrest.tls_address));
    }
}

/// Where each path field was written in the file (`None`: defaulted), for the errors
/// of [`check_places`].
struct PathLocations(Vec<(&'static str, Option<(usize, usize)>)>);

impl PathLocations {
    fn of(spec: &raw::ClusterSpec) -> Self {
        let loc = |v: Option<&S<String>>| v.and_then(at);
        let pg = spec.postgres.as_ref();
        let bu = spec.backup_user.as_ref();
        let pb = spec.pgbackrest.as_ref();
        let bup = pb.and_then(|p| p.backup_user_paths.as_ref());
        let op = pb.and_then(|p| p.owner_paths.as_ref());
        let cfg = pb.and_then(|p| p.config.as_ref());
        let pat = spec.patroni.as_ref();
        PathLocations(vec![
            (
                "postgres.data_directory",
                loc(pg.and_then(|p| p.data_directory.as_ref())),
            ),
            (
                "postgres.socket_directory",
                loc(pg.and_then(|p| p.socket_directory.as_ref())),
            ),
            ("backup_user.home", loc(bu.and_then(|b| b.home.as_ref()))),
            ("pgbackrest.repository", loc(pb.and_then(|p| p.repository.as_ref()))),
            (
                "pgbackrest.tls.directory",
                loc(pb.and_then(|p| p.tls.as_ref()).and_then(|t| t.directory.as_ref())),
            ),
            (
                "pgbackrest.config.repository_side",
                loc(cfg.and_then(|c| c.repository_side.as_ref())),
            ),
            (
                "pgbackrest.config.database_side",
                loc(cfg.and_then(|c| c.database_side.as_ref())),
            ),
            (
                "pgbackrest.backup_user_paths.lock",
                loc(bup.and_then(|p| p.lock.as_ref())),
            ),
            (
                "pgbackrest.backup_user_paths.log",
                loc(bup.and_then(|p| p.log.as_ref())),
            ),
            ("pgbackrest.owner_paths.lock", loc(op.and_then(|p| p.lock.as_ref()))),
            ("pgbackrest.owner_paths.log", loc(op.and_then(|p| p.log.as_ref()))),
            ("pgbackrest.owner_paths.spool", loc(op.and_then(|p| p.spool.as_ref()))),
            (
                "patroni.scripts_directory",
                loc(pat.and_then(|p| p.scripts_directory.as_ref())),
            ),
            ("patroni.hook_log", loc(pat.and_then(|p| p.hook_log.as_ref()))),
        ])
    }

    fn get(&self, field: &str) -> Option<(usize, usize)> {
        self.0.iter().find(|(f, _)| *f == field).and_then(|(_, l)| *l)
    }
}

/// Who owns a place on the host, as the plan makes it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Holder<'c> {
    Root,
    User(&'c OsName),
}

/// A path of the plan: where it is, which field names it, who owns it.
struct Place<'c> {
    path: AbsPath,
    field: &'static str,
    /// What it is, for messages: "the TLS directory".
    what: &'static str,
    holder: Holder<'c>,
}

/// The privilege model, checked on the policy (design.md: root never creates, opens,
/// chowns or chmods a path inside a directory another user can write):
/// - no path the scripts create or take over lies in a world-writable directory (any
///   local user could claim the name first: a directory, or a symlink to `/etc`);
/// - no root-owned path (TLS material, configuration, units, Patroni's scripts) lies
///   inside a directory a user owns;
/// - no path owned by one user lies inside a directory owned by another.
fn check_places(f: &mut Fields<'_, '_>, c: &Cluster, locations: &PathLocations) {
    let bu = Holder::User(&c.backup_user.name);
    let owner = Holder::User(&c.postgres.owner);
    let pb = &c.pgbackrest;
    let parent = |p: &AbsPath| p.ancestors().into_iter().next().unwrap_or_else(|| p.clone());
    let place = |path: &AbsPath, field, what, holder| Place {
        path: path.canonical(),
        field,
        what,
        holder,
    };
    // Directories a user owns: root must not act inside them.
    let mut containers = vec![
        place(&c.backup_user.home, "backup_user.home", "the backup user's home", bu),
        place(&pb.repository, "pgbackrest.repository", "the repository", bu),
        place(
            &pb.backup_user_lock,
            "pgbackrest.backup_user_paths.lock",
            "the backup user's lock directory",
            bu,
        ),
        place(
            &pb.backup_user_log,
            "pgbackrest.backup_user_paths.log",
            "the backup user's log directory",
            bu,
        ),
        place(
            &c.postgres.data_directory,
            "postgres.data_directory",
            "the data directory",
            owner,
        ),
        place(
            &pb.owner_lock,
            "pgbackrest.owner_paths.lock",
            "the cluster owner's lock directory",
            owner,
        ),
        place(
            &pb.owner_log,
            "pgbackrest.owner_paths.log",
            "the cluster owner's log directory",
            owner,
        ),
        place(
            &pb.owner_spool,
            "pgbackrest.owner_paths.spool",
            "the cluster owner's spool directory",
            owner,
        ),
    ];
    // The socket directory belongs to the cluster owner (Debian: postgres 2775), unless
    // it is a shared world-writable one like /tmp (refused below for managed paths).
    if c.postgres.socket_directory.world_writable_area().is_none() {
        containers.push(place(
            &c.postgres.socket_directory,
            "postgres.socket_directory",
            "the socket directory",
            owner,
        ));
    }
    // Paths the scripts create, write, chown or chmod, with the user who ends up owning
    // them (root: root-owned).
    let mut managed: Vec<Place<'_>> = vec![
        place(
            &pb.tls_directory,
            "pgbackrest.tls.directory",
            "the TLS directory",
            Holder::Root,
        ),
        place(
            &parent(&pb.repository_config),
            "pgbackrest.config.repository_side",
            "the directory of the repository-side configuration",
            Holder::Root,
        ),
        place(
            &parent(&pb.database_config),
            "pgbackrest.config.database_side",
            "the directory of the database-side configuration",
            Holder::Root,
        ),
    ];
    if let Some(p) = &c.patroni {
        managed.push(place(
            &p.scripts_directory,
            "patroni.scripts_directory",
            "Patroni's scripts directory",
            Holder::Root,
        ));
        managed.push(place(&p.hook_log, "patroni.hook_log", "the hook's log", owner));
    }
    // Each user-owned container is also managed (created, chowned) by the scripts.
    for c in &containers {
        if c.field != "postgres.socket_directory" {
            managed.push(Place {
                path: c.path.clone(),
                field: c.field,
                what: c.what,
                holder: c.holder,
            });
        }
    }
    let holder_name = |h: Holder<'_>| match h {
        Holder::Root => "root".to_owned(),
        Holder::User(u) => format!("`{u}`"),
    };
    for m in &managed {
        let where_ = locations.get(m.field).or(f.cluster_at);
        if m.field != "postgres.data_directory" {
            if let Some(area) = m.path.world_writable_area() {
                let path = f.path(m.field);
                f.out.error(where_, &path, format!(
                    "`{}`, {}, is under `{area}`, which every local user can write: any of them can claim the name first (a directory of their own, or a symlink to /etc) and have root take it over; use a directory only root can create names in, like /run/pgbackrest-<user> for a lock directory (the generated tmpfiles.d entry recreates it at boot) or /var/log, /var/lib",
                    m.path, m.what
                ));
                continue;
            }
        }
        for k in &containers {
            if k.field == m.field || !m.path.is_within(&k.path) || !covered_here(m, k) {
                continue;
            }
            let Holder::User(user) = k.holder else { continue };
            if m.holder == k.holder {
                continue; // one user's own tree
            }
            let path = f.path(m.field);
            let message = match m.holder {
                Holder::Root => format!(
                    "`{}`, {} (owned by root), lies inside `{}`, {} ({}), which belongs to `{user}`: root would create and write files inside a directory that user can write (a symlink or a swapped directory there redirects root anywhere); move it out",
                    m.path,
                    m.what,
                    k.path,
                    k.what,
                    f.path(k.field)
                ),
                Holder::User(_) => format!(
                    "`{}`, {} (owned by {}), lies inside `{}`, {} ({}), which belongs to `{user}`: root would create and hand it over inside a directory that user can write (a symlink or a swapped directory there redirects root anywhere), and that user could reach the other's files; move it out",
                    m.path,
                    m.what,
                    holder_name(m.holder),
                    k.path,
                    k.what,
                    f.path(k.field)
                ),
            };
            f.out.error(where_, &path, message);
        }
    }
    // Fixed root-owned places (units, tmpfiles.d): refused when a user's directory holds
    // them (such a directory is also a system one, refused elsewhere; say why here too).
    let mut fixed = vec![
        ("/etc/systemd/system", "the systemd unit directory"),
        ("/etc/tmpfiles.d", "the tmpfiles.d directory"),
    ];
    if let Some(p) = &c.patroni {
        fixed.push((p.service.as_str(), "Patroni's unit drop-in directory"));
    }
    for (dir, what) in fixed {
        let dir = if dir.starts_with('/') {
            dir.to_owned()
        } else {
            format!("/etc/systemd/system/{dir}.d")
        };
        let Ok(dir) = AbsPath::parse(&dir) else { continue };
        for k in &containers {
            if let (true, Holder::User(user)) = (dir.is_within(&k.path), k.holder) {
                let path = f.path(k.field);
                f.out.error(locations.get(k.field).or(f.cluster_at), &path, format!(
                    "`{}`, {}, holds `{dir}`, {what} (owned by root), and belongs to `{user}`: root would write inside a directory that user can write; move it out",
                    k.path, k.what
                ));
            }
        }
    }
}

/// Pairs other checks already report with a message of their own (overlap with the
/// data directory, the spool inside the repository, one lock or log directory for
/// both users): not reported twice.
fn covered_here(m: &Place<'_>, k: &Place<'_>) -> bool {
    let data_overlap = [
        "backup_user.home",
        "pgbackrest.repository",
        "pgbackrest.tls.directory",
        "pgbackrest.backup_user_paths.lock",
        "pgbackrest.backup_user_paths.log",
        "pgbackrest.config.repository_side",
        "pgbackrest.config.database_side",
        "patroni.scripts_directory",
        "patroni.hook_log",
    ];
    let shared = |a: &str, b: &str| (m.field == a && k.field == b || m.field == b && k.field == a) && m.path == k.path;
    !(k.field == "postgres.data_directory" && data_overlap.contains(&m.field)
        || m.field == "pgbackrest.owner_paths.spool" && k.field == "pgbackrest.repository"
        || m.field == "pgbackrest.repository" && k.field == "pgbackrest.owner_paths.spool"
        || shared("pgbackrest.backup_user_paths.lock", "pgbackrest.owner_paths.lock")
        || shared("pgbackrest.backup_user_paths.log", "pgbackrest.owner_paths.log"))
}
