//! The privilege model checked on the policy's paths: nothing the scripts manage in a
//! world-writable directory, nothing root owns inside a user's directory, nothing one
//! user owns inside another user's (design.md, "Privilege model").

use super::fields::{Fields, at};
use super::model::Cluster;
use super::names::{AbsPath, OsName};
use super::raw::{self, S};

/// Where each path field was written in the file (`None`: defaulted), for the errors
/// of [`check`].
pub struct Locations(Vec<(&'static str, Option<(usize, usize)>)>);

impl Locations {
    pub fn of(spec: &raw::ClusterSpec) -> Self {
        let loc = |v: Option<&S<String>>| v.and_then(at);
        let pg = spec.postgres.as_ref();
        let bu = spec.backup_user.as_ref();
        let pb = spec.pgbackrest.as_ref();
        let bup = pb.and_then(|p| p.backup_user_paths.as_ref());
        let op = pb.and_then(|p| p.owner_paths.as_ref());
        let cfg = pb.and_then(|p| p.config.as_ref());
        let pat = spec.patroni.as_ref();
        Locations(vec![
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
pub fn check(f: &mut Fields<'_, '_>, c: &Cluster, locations: &Locations) {
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
