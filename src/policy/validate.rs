//! Turns the raw, merged policy into the typed [`Policy`]: fills in defaults (Debian or
//! RHEL conventions, pgBackRest's own), checks every value and every combination, and
//! reports each problem with its line and field path. Nothing downstream re-checks.

use super::diagnostic::Collector;
use super::fields::{Fields, at, string};
use super::model::*;
use super::names::{AbsPath, AnsibleGroup, ClusterName};
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
    // Beside each resolved cluster: its index in the file and where its name is written.
    let mut places = Vec::new();
    for (index, spec) in file.clusters.0.value.into_iter().enumerate() {
        let merged = spec.merged_over(&defaults);
        let name_at = merged.name.as_ref().and_then(at);
        if let Some(cluster) = resolve_cluster(index, merged, clusters_at, &repositories, out) {
            clusters.push(cluster);
            places.push((index, name_at));
        }
    }
    check_unique(&clusters, &places, out);
    check_one_cluster_per_repository_host(&clusters, &repositories, out);
    if out.has_errors() {
        return None;
    }
    Some(Policy {
        source_name: source_name.to_owned(),
        source_sha256: String::new(),
        clusters,
    })
}

/// One pass with a set: a policy may list up to MAX_CLUSTERS clusters.
/// `places`: each cluster's index in the file and the place of its name.
fn check_unique(clusters: &[Cluster], places: &[(usize, Option<(usize, usize)>)], out: &mut Collector<'_>) {
    let mut seen = std::collections::BTreeMap::new();
    for (a, &(i, name_at)) in clusters.iter().zip(places) {
        if let Some(&(first, first_at)) = seen.get(&a.name) {
            let first_line = match first_at {
                Some((line, _)) => format!(" (line {line})"),
                None => String::new(),
            };
            out.error(
                name_at,
                &format!("clusters[{i}].name"),
                format!(
                    "`{}` is used by two clusters, this one and clusters[{first}]{first_line}; names must be unique (each gets its own output directory)",
                    a.name
                ),
            );
        } else {
            seen.insert(&a.name, (i, name_at));
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
    // `pgbackrest.repository` is an absolute path (a repository on this host) or the name
    // of a declared repository.
    let mut s3 = None;
    let mut s3_ok = true;
    if let Some(r) = pb_spec.repository.clone()
        && !r.value.starts_with('/')
    {
        match repositories.get(&r.value) {
            Some(declared) => {
                // An entry with errors (both None) was reported where it is declared.
                s3_ok = declared.s3.is_some() || declared.host.is_some();
                s3 = declared.s3.clone();
            }
            None => {
                let path = f.path("pgbackrest.repository");
                let known: Vec<&str> = repositories.keys().map(String::as_str).collect();
                f.out.error(
                    at(&r),
                    &path,
                    if known.is_empty() {
                        format!("`{}` is neither an absolute path nor the name of a declared repository (no repository is declared under `repositories`)", super::names::printable(&r.value))
                    } else {
                        format!("`{}` is neither an absolute path nor the name of a declared repository (declared: {})", super::names::printable(&r.value), known.join(", "))
                    },
                );
                s3_ok = false;
            }
        }
    }
    // A declared posix repository (on a repository host) goes to the topology.
    let named_repository = match &pb_spec.repository {
        Some(r) if !r.value.starts_with('/') => Some(r.clone()).filter(|r| {
            repositories
                .get(r.value.as_str())
                .is_some_and(|d| d.s3.is_none() && d.host.is_some())
        }),
        _ => None,
    };
    if pb_spec.repository.as_ref().is_some_and(|r| !r.value.starts_with('/')) {
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

    let group_default = AnsibleGroup::default_for(&cluster_str);
    let ansible_group = f.parse(
        spec.ansible.as_ref().and_then(|a| a.host_group.as_ref()),
        "ansible.host_group",
        || Some(group_default),
        AnsibleGroup::parse,
    );
    let schedule = super::resolve::schedule::resolve(&mut f, spec.schedule.as_ref());

    let topology = resolve_topology(
        &mut f,
        named_repository.as_ref(),
        // An unknown repository name is reported above: no second error for `members`.
        spec.members.as_ref().filter(|_| s3_ok),
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
        s3,
        ansible_group: ansible_group?,
        schedule: schedule?,
        topology: None,
    };
    if !s3_ok {
        return None;
    }
    if let Some(topology) = topology.ok()? {
        if let Some(version) = cluster.pgbackrest.version
            && version < Version::IP_SAN
        {
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
                    format!("{which} is an IP address, and pgBackRest {version} cannot match one against a certificate (from {}): give the hosts DNS names", Version::IP_SAN),
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
        // What the repository-host plan does not carry yet: refused (or, for the
        // schedule, said), never dropped silently.
        if !cluster.pgbackrest.options.is_empty() || cluster.pgbackrest.cipher_passphrase_file.is_some() {
            let path = f.path("pgbackrest.options");
            let where_ = pb_spec.options.as_ref().and_then(at).or(f.cluster_at);
            f.out.error(where_, &path, "pass-through options and repository encryption are not supported with a repository host yet: remove them (the repository host's configuration would not carry them)");
            return None;
        }
        if !cluster.schedule.is_empty() {
            let path = f.path("schedule");
            f.out.warning(
                spec.schedule.as_ref().and(f.cluster_at),
                &path,
                "scheduled backups are not generated for a repository-host cluster yet: schedule `pgbackrest backup` on the repository host as its backup user, with its repository.conf",
            );
        }
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
    if c.s3.is_some() && c.pgbackrest.cipher_passphrase_file.is_some() {
        // Each side's S3 key already takes pgBackRest's one include path, and the
        // passphrase would have to reach both users: not built yet.
        let path = f.path("pgbackrest.cipher_passphrase_file");
        let where_ = pb.cipher_passphrase_file.as_ref().and_then(at).or(f.cluster_at);
        f.out.error(where_, &path, "repository encryption with an s3 repository is not supported yet: rely on the bucket's server-side encryption, or use a posix repository");
    }
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
    // An s3 repository has no TLS server: only the major's own minimum applies.
    let needed = if c.s3.is_some() {
        c.postgres.major.min_pgbackrest()
    } else {
        c.postgres.major.min_pgbackrest().max(Version::TLS_SERVER)
    };
    let version_field = f.path("pgbackrest.version");
    match c.pgbackrest.version {
        None if c.postgres.major.get() >= 16 => {
            f.out.warning(f.cluster_at, &version_field, format!("PostgreSQL {} needs pgBackRest {needed} or later; set `pgbackrest.version` to the version on your hosts to have it checked", c.postgres.major));
        }
        None => {}
        Some(v) if v < Version::TLS_SERVER && c.s3.is_none() => {
            f.out.error(
                version_at,
                &version_field,
                format!(
                    "pgBackRest {v} has no TLS server (`pgbackrest server`, added in 2.37), which this layout needs"
                ),
            );
        }
        Some(v) if v < needed => {
            f.out.error(version_at, &version_field, format!("pgBackRest {v} cannot back up PostgreSQL {} (it fails with `unexpected control version`): it needs pgBackRest {needed} or later; install it (pgbackrest.binary) and set pgbackrest.version", c.postgres.major));
        }
        Some(_) => {}
    }
    if let Some(s3) = &c.s3 {
        let v = c.pgbackrest.version;
        let before_2_58 = v.is_some_and(|v| v < Version(2, 58, 0));
        if s3.endpoint.starts_with("https://") && before_2_58 {
            f.out.error(version_at, &version_field, format!("pgBackRest {} reads an S3 endpoint as `host` or `host:port`, not a URL (from 2.58.0): write `{}` without `https://`, or set pgbackrest.version to 2.58.0 or later", version_text(v), s3.endpoint.trim_start_matches("https://")));
        } else if s3.endpoint.starts_with("http://") && before_2_58 {
            f.out.error(version_at, &version_field, format!("pgBackRest {} speaks only HTTPS to S3 (a plain `http://` endpoint works from 2.58.0): upgrade and set pgbackrest.version, or put a TLS terminator in front of `{}`", version_text(v), s3.endpoint));
        } else if v.is_some_and(|v| v < Version(2, 54, 0)) {
            f.out.warning(version_at, &version_field, format!("pgBackRest {} cannot restore a backup that expire already removed from the bucket's versions (`--repo-target-time` arrived in 2.54.0): the generated restore-from-versions command needs 2.54 or later", version_text(v)));
        }
    } else if let Some(ip) = c.pgbackrest.tls_address.ip().filter(|ip| !ip.is_loopback()) {
        let p = f.path("pgbackrest.tls.address");
        let where_ = pb.tls.as_ref().and_then(|t| t.address.as_ref()).and_then(at);
        let why = format!(
            "the database side connects to the TLS server at `{ip}`, but pgBackRest before {} verifies the server certificate against a DNS name only",
            Version::IP_SAN
        );
        match c.pgbackrest.version {
            Some(v) if v < Version::IP_SAN => f.out.error(
                where_,
                &p,
                format!(
                    "{why} (this is {v}): give a DNS name that resolves to the address, or use pgBackRest {} or later",
                    Version::IP_SAN
                ),
            ),
            None => f.out.warning(
                where_,
                &p,
                format!(
                    "{why}: set pgbackrest.version ({} or later) or give a DNS name",
                    Version::IP_SAN
                ),
            ),
            Some(_) => {}
        }
    }
    if !c.pgbackrest.tls_address.is_loopback() && c.s3.is_none() {
        let p = f.path("pgbackrest.tls.address");
        let where_ = pb.tls.as_ref().and_then(|t| t.address.as_ref()).and_then(at);
        f.out.warning(where_, &p, format!("the TLS server will listen on `{}`, not loopback: it authenticates clients by certificate, but keep the port firewalled", c.pgbackrest.tls_address));
    }
}

/// A policy's pgBackRest version in a message: the release, or that none was given.
fn version_text(v: Option<Version>) -> String {
    v.map_or_else(|| "(no pgbackrest.version given)".to_string(), |v| v.to_string())
}
