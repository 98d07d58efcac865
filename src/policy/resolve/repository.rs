//! The top-level `repositories:` list and a cluster's `members:`: repositories that
//! clusters name in `pgbackrest.repository`. `type: posix` with a `host` lives on a
//! dedicated repository host (the clusters that name it list their database hosts as
//! `members`, and the plan gives each host its own artifacts); `type: s3` is object
//! storage reached with two scoped keys. The `type` field is the discriminator, and the
//! fields of the other type are refused by name.

use crate::policy::diagnostic::Collector;
use crate::policy::fields::{Fields, at, string};
use crate::policy::model::{Member, ObjectLock, RepositoryHost, S3Repository, UriStyle};
use crate::policy::names::{AbsPath, ClusterName, HostName, printable};
use crate::policy::raw::{self, S};
use crate::policy::resolve::backup_user;
use std::collections::BTreeMap;

/// A declared repository, as clusters find it by name. Both kinds `None` when the entry
/// had errors (already reported): a cluster naming it is not reported again.
pub struct Declared {
    pub host: Option<RepositoryHost>,
    pub s3: Option<S3Repository>,
    /// Where `name` was written, for "used by two clusters".
    pub at: Option<(usize, usize)>,
}

/// Every declared repository by name. Errors are reported with `repositories[i].field`.
pub fn resolve_all(list: Option<&S<Vec<raw::RepositorySpec>>>, out: &mut Collector<'_>) -> BTreeMap<String, Declared> {
    let mut map = BTreeMap::new();
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
        let (host, s3) = match kind {
            "posix" => {
                refuse_other_type(
                    &mut f,
                    "posix",
                    &[
                        ("s3", spec.s3.is_some()),
                        ("credentials", spec.credentials.is_some()),
                        ("object_lock", spec.object_lock.is_some()),
                        ("versioning", spec.versioning.is_some()),
                    ],
                );
                (resolve_posix(&mut f, spec, name.as_ref()), None)
            }
            "s3" => {
                refuse_other_type(
                    &mut f,
                    "s3",
                    &[
                        ("host", spec.host.is_some()),
                        ("path", spec.path.is_some()),
                        ("backup_user", spec.backup_user.is_some()),
                        ("lock", spec.lock.is_some()),
                        ("log", spec.log.is_some()),
                        ("ca_directory", spec.ca_directory.is_some()),
                    ],
                );
                let repo_name = name.as_ref().map(|n| n.to_string()).unwrap_or_default();
                (None, resolve_s3(&mut f, spec, &repo_name))
            }
            other => {
                let path = f.path("type");
                f.out.error(
                    spec.kind.as_ref().and_then(at),
                    &path,
                    format!("`{}` is not a repository type (posix or s3)", printable(other)),
                );
                (None, None)
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
            map.insert(name.to_string(), Declared { host, s3, at: entry_at });
        }
    }
    map
}

/// Fields written for the other repository type: an error each, naming the type they
/// belong to (never silently ignored).
fn refuse_other_type(f: &mut Fields<'_, '_>, kind: &str, present: &[(&str, bool)]) {
    for (field, written) in present {
        if *written {
            let path = f.path(field);
            let other = if kind == "s3" { "posix" } else { "s3" };
            f.out.error(
                f.cluster_at,
                &path,
                format!("belongs to `type: {other}` repositories, and this one is `type: {kind}`: remove it"),
            );
        }
    }
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

fn resolve_s3(f: &mut Fields<'_, '_>, spec: &raw::RepositorySpec, name: &str) -> Option<S3Repository> {
    let Some(s3) = spec.s3.clone() else {
        let path = f.path("s3");
        f.out.error(
            f.cluster_at,
            &path,
            "is required for `type: s3` (bucket, prefix, region, endpoint)",
        );
        return None;
    };
    let bucket = f.parse(string(&s3.bucket), "s3.bucket", || None, parse_bucket);
    let prefix = f.parse(
        string(&s3.prefix),
        "s3.prefix",
        || Some("/pgbackrest".into()),
        parse_prefix,
    );
    let region = f.parse(string(&s3.region), "s3.region", || None, parse_region);
    let endpoint = f.parse(string(&s3.endpoint), "s3.endpoint", || None, parse_endpoint);
    let uri_style = f.parse(
        string(&s3.uri_style),
        "s3.uri_style",
        || Some("host".into()),
        |v| match v {
            "host" => Ok(UriStyle::Host),
            "path" => Ok(UriStyle::Path),
            other => Err(format!("`{}` is not a URI style (host or path)", printable(other))),
        },
    );
    let ca_file = match &s3.ca_file {
        Some(v) => f.parse(Some(v), "s3.ca_file", || None, AbsPath::parse).map(Some),
        None => Some(None),
    };
    let admin_principal = f.parse(string(&s3.admin_principal), "s3.admin_principal", || None, parse_arn);
    let partition = f.parse(
        string(&s3.partition),
        "s3.partition",
        || Some("aws".into()),
        |v| match v {
            "aws" | "aws-us-gov" | "aws-cn" => Ok(v.to_owned()),
            other => Err(format!(
                "`{}` is not an AWS partition (aws, aws-us-gov, aws-cn)",
                printable(other)
            )),
        },
    );
    if let (Some(e), Some(c)) = (&endpoint, &s3.ca_file)
        && e.starts_with("http://")
    {
        let path = f.path("s3.ca_file");
        f.out.error(
            at(c),
            &path,
            format!("`{e}` is plain HTTP: a CA file has nothing to verify"),
        );
    }

    let credentials = spec.credentials.clone().unwrap_or_default();
    if let Some(source) = &credentials.source
        && source.value != "files"
    {
        let path = f.path("credentials.source");
        let why = match source.value.as_str() {
            "instance" | "web-identity" => format!(
                "`{}` credentials belong to the host (or pod), so the cluster owner and the backup user would act with ONE identity and the database host could delete backups again; the two sides need two keys: give `database_side` and `backup_side` files (or run the backup side on another host)",
                source.value
            ),
            other => format!("`{}` is not a credentials source (files)", printable(other)),
        };
        f.out.error(at(source), &path, why);
    }
    let credentials_at = credentials.database_side.as_ref().and_then(at).or(f.cluster_at);
    let database_key_file = f.parse(
        string(&credentials.database_side),
        "credentials.database_side",
        || None,
        AbsPath::parse,
    );
    let backup_key_file = f.parse(
        string(&credentials.backup_side),
        "credentials.backup_side",
        || None,
        AbsPath::parse,
    );
    if let (Some(a), Some(b)) = (&database_key_file, &backup_key_file)
        && a == b
    {
        let path = f.path("credentials.backup_side");
        f.out.error(
            credentials.backup_side.as_ref().and_then(at).or(credentials_at),
            &path,
            format!("`{a}` is also the database side's file: the two sides need two keys"),
        );
    }
    for (file, field) in [
        (&database_key_file, "credentials.database_side"),
        (&backup_key_file, "credentials.backup_side"),
    ] {
        if let Some(file) = file
            && let Some(area) = file.world_writable_area()
        {
            let path = f.path(field);
            f.out.error(credentials_at, &path, format!("`{file}` lies in {area}, which any local user can write: keep the key file in a root-only directory"));
        }
    }

    let versioning = spec.versioning.as_ref().map(|v| v.value).unwrap_or(true);
    let object_lock = match &spec.object_lock {
        None => Some(None),
        Some(lock) => {
            let mode = f.parse(
                string(&lock.mode),
                "object_lock.mode",
                || Some("compliance".into()),
                |v| match v {
                    "compliance" => Ok(true),
                    "governance" => Ok(false),
                    other => Err(format!(
                        "`{}` is not an object-lock mode (compliance or governance)",
                        printable(other)
                    )),
                },
            );
            let days = match &lock.days {
                None => {
                    let path = f.path("object_lock.days");
                    f.out.error(f.cluster_at, &path, "is required: how many days every version stays undeletable (at least the age of the oldest backup you must be able to restore)");
                    None
                }
                Some(d) if d.value == 0 || d.value > 36_500 => {
                    let path = f.path("object_lock.days");
                    f.out.error(at(d), &path, "must be between 1 and 36500");
                    None
                }
                Some(d) => Some(d.value),
            };
            if !versioning {
                let path = f.path("versioning");
                f.out.error(
                    spec.versioning.as_ref().and_then(at),
                    &path,
                    "object lock needs versioning: S3 locks versions, and without versioning an overwrite or a delete destroys the only copy",
                );
            }
            if let Some(false) = mode {
                let path = f.path("object_lock.mode");
                f.out.warning(lock.mode.as_ref().and_then(at), &path, "governance retention can be bypassed by any principal granted s3:BypassGovernanceRetention (neither generated key is); compliance cannot be shortened by anyone, the account root included");
            }
            match (mode, days) {
                (Some(compliance), Some(days)) => Some(Some(ObjectLock { compliance, days })),
                _ => None,
            }
        }
    };
    if !versioning {
        let path = f.path("versioning");
        f.out.warning(
            spec.versioning.as_ref().and_then(at),
            &path,
            "without versioning the backup side's key can destroy backups for good (expire deletes them), and an expired backup cannot be restored",
        );
    }
    Some(S3Repository {
        name: name.to_owned(),
        bucket: bucket?,
        prefix: prefix?,
        region: region?,
        endpoint: endpoint?,
        uri_style: uri_style?,
        ca_file: ca_file?,
        admin_principal: admin_principal?,
        partition: partition?,
        database_key_file: database_key_file?,
        backup_key_file: backup_key_file?,
        versioning,
        object_lock: object_lock?,
    })
}

/// S3 bucket naming rules (the subset every region accepts): 3-63 of a-z, 0-9, `-` and
/// `.`, starting and ending with a letter or digit.
fn parse_bucket(value: &str) -> Result<String, String> {
    let ok = (3..=63).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !value.contains("..");
    if ok {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "`{}` is not an S3 bucket name (3 to 63 of a-z, 0-9, `-` and `.`, starting and ending with a letter or digit)",
            printable(value)
        ))
    }
}

/// The key prefix, written as pgBackRest's `repo1-path`: `/` then components of
/// A-Z a-z 0-9 `- _ .` (no `*` or `?`, which IAM resources would read as wildcards).
fn parse_prefix(value: &str) -> Result<String, String> {
    let ok = value.starts_with('/')
        && value.len() <= 512
        && (value == "/"
            || value[1..].split('/').all(|part| {
                !part.is_empty()
                    && part != "."
                    && part != ".."
                    && part
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            }));
    if ok {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "`{}` is not a key prefix: `/`, then components of A-Z, a-z, 0-9, `-`, `_` and `.` separated by `/`, no trailing `/` (IAM would read `*` or `?` as wildcards)",
            printable(value)
        ))
    }
}

fn parse_region(value: &str) -> Result<String, String> {
    let ok = !value.is_empty()
        && value.len() <= 32
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "`{}` is not a region name (a-z, 0-9 and `-`)",
            printable(value)
        ))
    }
}

/// `host`, `host:port`, or the same after `http://` (pgBackRest 2.58+ speaks plain HTTP to
/// such an endpoint: for a local emulator) or `https://`.
fn parse_endpoint(value: &str) -> Result<String, String> {
    let rest = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"))
        .unwrap_or(value);
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !host.starts_with(['-', '.']);
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    if host_ok && port_ok {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "`{}` is not an endpoint: `host`, `host:port`, optionally after `https://` or `http://`",
            printable(value)
        ))
    }
}

/// An IAM principal ARN: `arn:PARTITION:iam::ACCOUNT:role/…` or `…:user/…`, or an
/// account root (`arn:aws:iam::ACCOUNT:root`).
fn parse_arn(value: &str) -> Result<String, String> {
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && !parts[1].is_empty()
        && parts[2] == "iam"
        && parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && (parts[5] == "root" || parts[5].starts_with("role/") || parts[5].starts_with("user/"))
        && parts[5]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '+' | '=' | ',' | '.' | '@' | '_' | '-'));
    if ok {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "`{}` is not an IAM principal ARN (arn:aws:iam::123456789012:role/NAME, …:user/NAME or …:root)",
            printable(value)
        ))
    }
}
