//! The top-level `repositories:` list and a cluster's `members:`. A repository of `type:
//! posix` with a `host` lives on a dedicated repository host: the clusters that name it
//! (`pgbackrest.repository: NAME`) list their database hosts as `members`, and the plan
//! gives each host its own artifacts. (`type: s3` is issue 15's; the `type` field is the
//! discriminator both read.)

use crate::policy::diagnostic::Collector;
use crate::policy::fields::{Fields, at, string};
use crate::policy::model::{Member, RepositoryHost};
use crate::policy::names::{AbsPath, ClusterName, HostName};
use crate::policy::raw::{self, S};
use crate::policy::resolve::backup_user;

/// A declared repository, as clusters find it by name.
pub struct Declared {
    /// `None` when the entry had errors (already reported): a cluster naming it is not
    /// reported again.
    pub host: Option<RepositoryHost>,
    /// Where `name` was written, for "used by two clusters".
    pub at: Option<(usize, usize)>,
}

/// Every declared repository by name. Errors are reported with `repositories[i].field`.
pub fn resolve_all(
    list: Option<&S<Vec<raw::RepositorySpec>>>,
    out: &mut Collector<'_>,
) -> std::collections::BTreeMap<String, Declared> {
    let mut map = std::collections::BTreeMap::new();
    let Some(list) = list else { return map };
    for (index, spec) in list.value.iter().enumerate() {
        let entry_at = spec.name.as_ref().and_then(at).or(at(list));
        let mut f = Fields {
            out,
            prefix: format!("repositories[{index}]"),
            cluster_at: entry_at,
        };
        let name = f.parse(string(&spec.name), "name", || None, ClusterName::parse);
        let kind = spec.kind.as_ref().map(|k| k.value.as_str()).unwrap_or("posix");
        let host = match kind {
            "posix" => resolve_posix(&mut f, spec, name.as_ref()),
            other => {
                let path = f.path("type");
                let where_ = spec.kind.as_ref().and_then(at);
                f.out.error(
                    where_,
                    &path,
                    format!(
                        "`{}` is not a repository type this pgbr-policy knows: use `posix`",
                        crate::policy::names::printable(other)
                    ),
                );
                None
            }
        };
        if let Some(name) = name {
            if map.contains_key(name.as_str()) {
                let path = f.path("name");
                f.out.error(
                    entry_at,
                    &path,
                    format!("`{name}` is declared twice: repository names must be unique"),
                );
                continue;
            }
            map.insert(name.to_string(), Declared { host, at: entry_at });
        }
    }
    map
}

fn resolve_posix(
    f: &mut Fields<'_, '_>,
    spec: &raw::RepositorySpec,
    name: Option<&ClusterName>,
) -> Option<RepositoryHost> {
    let Some(host) = &spec.host else {
        let path = f.path("host");
        f.out.error(
            f.cluster_at,
            &path,
            "is required for a `posix` repository declared here (a repository on the database host itself is written as an absolute path in `pgbackrest.repository`)",
        );
        return None;
    };
    let host_name = f.parse(
        string(&host.name),
        "host.name",
        || None,
        |v| ClusterName::parse(v).map_err(|e| e.replace("cluster name", "host name")),
    );
    let address = f.parse(string(&host.address), "host.address", || None, HostName::parse);
    let tls_port = f.port(host.tls_port.as_ref(), "host.tls_port", 8432);
    let path = f.parse(
        string(&spec.path),
        "path",
        || Some("/var/lib/pgbackrest".into()),
        AbsPath::parse,
    );
    // The repository host's backup user: the same rules and defaults as a cluster's
    // (`backup_user.*` fields, reported under this entry).
    let bu = backup_user::resolve(f, &spec.backup_user.clone().unwrap_or_default());
    let bu_str = bu.name_str();
    let lock = f.parse(
        string(&spec.lock),
        "lock",
        || Some(format!("/run/pgbackrest-{bu_str}")),
        AbsPath::parse,
    );
    let log = f.parse(
        string(&spec.log),
        "log",
        || Some(format!("/var/log/pgbackrest-{bu_str}")),
        AbsPath::parse,
    );
    let repo_str = name.map(|n| n.to_string()).unwrap_or_default();
    let ca_directory = f.parse(
        string(&spec.ca_directory),
        "ca_directory",
        || Some(format!("/etc/pgbackrest/ca/{repo_str}")),
        AbsPath::parse,
    );
    type Managed<'a> = (&'a Option<AbsPath>, &'a str, Option<&'a S<String>>);
    let managed: [Managed<'_>; 4] = [
        (&path, "path", spec.path.as_ref()),
        (&lock, "lock", spec.lock.as_ref()),
        (&log, "log", spec.log.as_ref()),
        (&ca_directory, "ca_directory", spec.ca_directory.as_ref()),
    ];
    for (value, field, raw) in managed {
        let Some(value) = value else { continue };
        if let Some(area) = value.world_writable_area() {
            let p = f.path(field);
            f.out.error(
                raw.and_then(at).or(f.cluster_at),
                &p,
                format!("`{value}` lies in `{area}`, where any local user can claim a name first: choose a directory of its own"),
            );
        } else if value.is_system_directory() {
            let p = f.path(field);
            f.out.error(
                raw.and_then(at).or(f.cluster_at),
                &p,
                format!("`{value}` is a system directory: apply.sh would take it over; give it a directory of its own, like the default"),
            );
        }
    }
    if let (Some(lock), Some(path)) = (&lock, &path)
        && (lock.is_within(path) || path.is_within(lock))
    {
        let p = f.path("lock");
        f.out
            .error(f.cluster_at, &p, "the lock directory must not overlap the repository");
    }
    Some(RepositoryHost {
        name: name?.clone(),
        host: host_name?,
        address: address?,
        tls_port: tls_port?,
        path: path?,
        backup_user: bu.finish()?,
        lock: lock?,
        log: log?,
        ca_directory: ca_directory?,
    })
}

/// A cluster's `members:`: each with a name (unique, not the repository host's), an
/// address, and a TLS port (default: the cluster's `pgbackrest.tls.port`).
pub fn members(
    f: &mut Fields<'_, '_>,
    list: &S<Vec<raw::MemberSpec>>,
    default_port: u16,
    repository_host: Option<&ClusterName>,
) -> Option<Vec<Member>> {
    if list.value.is_empty() {
        let path = f.path("members");
        f.out.error(
            at(list),
            &path,
            "lists no member: list the database hosts, or remove `members`",
        );
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for (i, m) in list.value.iter().enumerate() {
        let field = |name: &str| format!("members[{i}].{name}");
        let member_at = m.name.as_ref().or(m.address.as_ref()).and_then(at).or(at(list));
        let saved = f.cluster_at;
        f.cluster_at = member_at;
        let name = f.parse(
            string(&m.name),
            &field("name"),
            || None,
            |v| ClusterName::parse(v).map_err(|e| e.replace("cluster name", "member name")),
        );
        let address = f.parse(string(&m.address), &field("address"), || None, HostName::parse);
        let port = f.port(m.tls_port.as_ref(), &field("tls_port"), default_port);
        f.cluster_at = saved;
        if let Some(name) = &name {
            let where_ = m.name.as_ref().and_then(at);
            if out.iter().any(|o: &Member| o.name == *name) {
                let path = f.path(&field("name"));
                f.out.error(
                    where_,
                    &path,
                    format!(
                        "`{name}` is listed twice: member names must be unique (each gets its own output directory)"
                    ),
                );
                ok = false;
            } else if repository_host == Some(name) {
                let path = f.path(&field("name"));
                f.out.error(
                    where_,
                    &path,
                    format!("`{name}` is the repository host's name: a database host and the repository host must be different hosts"),
                );
                ok = false;
            }
        }
        match (name, address, port) {
            (Some(name), Some(address), Some(tls_port)) => {
                if let Some(dup) = out
                    .iter()
                    .find(|o: &&Member| o.address == address && o.tls_port == tls_port)
                {
                    let path = f.path(&field("address"));
                    let where_ = m.address.as_ref().and_then(at);
                    f.out.error(
                        where_,
                        &path,
                        format!("`{address}:{tls_port}` is also member `{}`'s: each database host needs an address of its own", dup.name),
                    );
                    ok = false;
                }
                out.push(Member {
                    name,
                    address,
                    tls_port,
                })
            }
            _ => ok = false,
        }
    }
    ok.then_some(out)
}
