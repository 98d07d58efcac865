//! Turns the raw, merged policy into the typed [`Policy`]: fills in defaults (Debian or
//! RHEL conventions, pgBackRest's own), checks every value and every combination, and
//! reports each problem with its line and field path. Nothing downstream re-checks.

use super::diagnostic::Collector;
use super::fields::{Fields, at, string};
use super::model::*;
use super::names::{AbsPath, ClusterName};
use super::places;
use super::raw::{self, S};
use super::resolve::{backup_user, pgbackrest, postgres, repository, role};
use crate::catalog::Version;

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
    let repositories = repository::resolve_all(file.repositories.as_ref(), out);
    let clusters_at = at(&file.clusters);
    let mut clusters = Vec::new();
    for (index, spec) in file.clusters.value.into_iter().enumerate() {
        let merged = spec.merged_over(&defaults);
        if let Some(cluster) = resolve_cluster(index, merged, clusters_at, &repositories, out) {
            clusters.push(cluster);
        }
    }
    check_unique(&clusters, out);
    check_one_cluster_per_repository_host(&clusters, &repositories, out);
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

/// v1: one cluster per repository host (each cluster's TLS server there has its own
/// port, configuration and unit; a shared server listing several stanzas is not planned
/// yet).
fn check_one_cluster_per_repository_host(
    clusters: &[Cluster],
    repositories: &std::collections::BTreeMap<String, repository::Declared>,
    out: &mut Collector<'_>,
) {
    let mut seen: std::collections::BTreeMap<&str, &str> = std::collections::BTreeMap::new();
    for c in clusters {
        let Some(t) = &c.topology else { continue };
        if let Some(first) = seen.insert(t.repository.name.as_str(), c.name.as_str()) {
            let where_ = repositories.get(t.repository.name.as_str()).and_then(|d| d.at);
            out.error(
                where_,
                &format!("clusters[{}].pgbackrest.repository", c.name),
                format!(
                    "the repository `{}` on host `{}` is named by clusters `{first}` and `{}`: this pgbr-policy plans one cluster per repository host (declare a repository per cluster)",
                    t.repository.name, t.repository.host, c.name
                ),
            );
        }
    }
}

fn resolve_cluster(
    index: usize,
    spec: raw::ClusterSpec,
    clusters_at: Option<(usize, usize)>,
    repositories: &std::collections::BTreeMap<String, repository::Declared>,
    out: &mut Collector<'_>,
) -> Option<Cluster> {
    let cluster_at = spec.name.as_ref().and_then(at).or(clusters_at);
    let mut f = Fields {
        out,
        prefix: format!("clusters[{index}]"),
        cluster_at,
    };
    let name = f.parse(string(&spec.name), "name", || None, ClusterName::parse);

    let locations = places::Locations::of(&spec);
    let pg_spec = spec.postgres.unwrap_or_default();
    let pg = postgres::resolve(&mut f, &pg_spec);
    let owner_name = pg.owner_name();
    let bu_spec = spec.backup_user.unwrap_or_default();
    let bu = backup_user::resolve(&mut f, &bu_spec);
    let role_spec = spec.role.unwrap_or_default();
    let role = role::resolve(&mut f, &role_spec, pg.owner.as_ref(), pg.major);
    let mut pb_spec = spec.pgbackrest.unwrap_or_default();
    // `pgbackrest.repository`: an absolute path (the repository on this host), or the
    // name of a declared repository.
    let named_repository = match &pb_spec.repository {
        Some(r) if !r.value.starts_with('/') => Some(r.clone()),
        _ => None,
    };
    if named_repository.is_some() {
        pb_spec.repository = None;
    }
    let cluster_str = name.as_ref().map(|n| n.to_string()).unwrap_or_default();
    let pb = pgbackrest::resolve(
        &mut f,
        &pb_spec,
        &pgbackrest::Context {
            cluster: &cluster_str,
            backup_user: &bu.name_str(),
            owner: &owner_name,
            major: pg.major,
        },
    );
    let archive_managed = spec.archive.and_then(|a| a.managed).map(|v| v.value).unwrap_or(true);
    let patroni = super::patroni::resolve(
        &mut f,
        spec.patroni.as_ref(),
        &super::patroni::Context {
            cluster: &cluster_str,
            major: pg.major,
            data_directory: pg.data_directory.as_ref(),
            owner_log: pb.owner_log.as_ref(),
            role_database: role.database.as_ref().map(|d| d.as_str()),
        },
    );

    let topology = resolve_topology(
        &mut f,
        named_repository.as_ref(),
        spec.members.as_ref(),
        repositories,
        &pb_spec,
        patroni.is_some(),
        pb.tls_port(),
    );
    let mut cluster = Cluster {
        name: name?,
        postgres: pg.finish()?,
        backup_user: bu.finish()?,
        role: role.finish()?,
        pgbackrest: pb.finish()?,
        archive_managed,
        patroni,
        topology: None,
    };
    if let Some(topology) = topology.ok()? {
        let version = cluster.pgbackrest.version;
        if version != Version(0, 0, 0) && version < Version::TLS_IP_NAMES {
            let repository_ip = topology.repository.address.as_str().parse::<std::net::IpAddr>().is_ok();
            let member_ip = topology
                .members
                .iter()
                .find(|m| m.address.as_str().parse::<std::net::IpAddr>().is_ok());
            if repository_ip || member_ip.is_some() {
                let path = f.path("members");
                let which = member_ip
                    .map(|m| format!("member `{}`'s address `{}`", m.name, m.address))
                    .unwrap_or_else(|| format!("the repository host's address `{}`", topology.repository.address));
                f.out.error(
                    spec.members.as_ref().and_then(at),
                    &path,
                    format!("{which} is an IP address, and pgBackRest {version} cannot match one against a certificate (from {}): give the hosts DNS names", Version::TLS_IP_NAMES),
                );
                return None;
            }
        }
        let path = f.path("members");
        f.out.warning(
            spec.members.as_ref().and_then(at),
            &path,
            "the Ansible target does not plan several hosts yet: no play is generated for this cluster; run each host's hosts/<host>/shell/apply.sh in the order of its CHANGE.md",
        );
        cluster.pgbackrest.repository = topology.repository.path.clone();
        cluster.topology = Some(topology);
    }
    check_combinations(&mut f, &cluster, &bu_spec, &pb_spec);
    places::check(&mut f, &cluster, &locations);
    Some(cluster)
}

/// What a named repository and `members` make of the cluster: `Ok(None)` for today's
/// single host, `Err(())` after an error (reported).
fn resolve_topology(
    f: &mut Fields<'_, '_>,
    named: Option<&S<String>>,
    members: Option<&S<Vec<raw::MemberSpec>>>,
    repositories: &std::collections::BTreeMap<String, repository::Declared>,
    pb: &raw::PgbackrestSpec,
    patroni: bool,
    tls_port: Option<u16>,
) -> Result<Option<Topology>, ()> {
    let host = match named {
        None => None,
        Some(r) => match repositories.get(r.value.as_str()) {
            None => {
                let path = f.path("pgbackrest.repository");
                let declared: Vec<&str> = repositories.keys().map(String::as_str).collect();
                let known = if declared.is_empty() {
                    "no repository is declared under `repositories`".to_owned()
                } else {
                    format!("declared: {}", declared.join(", "))
                };
                f.out.error(
                    at(r),
                    &path,
                    format!(
                        "`{}` is neither an absolute path nor the name of a declared repository ({known})",
                        crate::policy::names::printable(&r.value)
                    ),
                );
                return Err(());
            }
            // Its own errors are already reported.
            Some(d) => Some(d.host.clone().ok_or(())?),
        },
    };
    match (host, members) {
        (None, None) => Ok(None),
        (Some(repo), None) => {
            let path = f.path("members");
            let where_ = named.and_then(at);
            f.out.error(
                where_,
                &path,
                format!(
                    "is required: the repository `{}` lives on host `{}`; list the database hosts (name, address) under `members`",
                    repo.name, repo.host
                ),
            );
            Err(())
        }
        (None, Some(m)) => {
            let path = f.path("members");
            f.out.error(at(m), &path, "members need a repository on a repository host: declare one under `repositories` (type posix, with `host`) and name it in `pgbackrest.repository`");
            Err(())
        }
        (Some(repo), Some(list)) => {
            let mut ok = true;
            if list.value.len() > 1 && !patroni {
                let path = f.path("members");
                f.out.error(at(list), &path, "several members need Patroni (`patroni.enabled: true`): it decides which one is the primary and carries the archive settings to all of them");
                ok = false;
            }
            if let Some(addr) = pb.tls.as_ref().and_then(|t| t.address.as_ref()) {
                let path = f.path("pgbackrest.tls.address");
                f.out.error(at(addr), &path, "with `members`, each database host's TLS server listens on that member's `address`: remove `pgbackrest.tls.address`");
                ok = false;
            }
            let members = repository::members(f, list, tls_port.unwrap_or(8432), Some(&repo.host));
            let standby = pb
                .commands
                .as_ref()
                .and_then(|c| c.value.iter().find(|v| v.value == "backup-standby"));
            if let (Some(cmd), 1) = (standby, list.value.len()) {
                let path = f.path("pgbackrest.commands");
                f.out.error(at(cmd), &path, "backup-standby copies the files from a standby, and this cluster lists one member: every backup would fail (list the standby under `members`, or drop backup-standby)");
                ok = false;
            }
            match (members, ok) {
                (Some(members), true) => Ok(Some(Topology {
                    repository: repo,
                    members,
                })),
                _ => Err(()),
            }
        }
    }
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
