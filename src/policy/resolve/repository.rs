//! The top-level `repositories:` list: repositories that clusters name in
//! `pgbackrest.repository`. This build resolves `type: s3` (object storage with two scoped
//! keys); `type: posix` with a `host:` (a dedicated repository host) is refused with a
//! clear message until that topology is merged.

use crate::policy::diagnostic::Collector;
use crate::policy::fields::{Fields, at, string};
use crate::policy::model::{ObjectLock, S3Repository, UriStyle};
use crate::policy::names::{AbsPath, printable};
use crate::policy::raw::{self, S};
use std::collections::BTreeMap;

/// A declared repository, by name: `None` when it was invalid (already reported).
pub struct Declared {
    pub s3: Option<S3Repository>,
}

pub fn resolve(list: Option<&S<Vec<raw::RepositorySpec>>>, out: &mut Collector<'_>) -> BTreeMap<String, Declared> {
    let mut declared = BTreeMap::new();
    let Some(list) = list else {
        return declared;
    };
    for (i, spec) in list.value.iter().enumerate() {
        let repo_at = spec.name.as_ref().and_then(at).or(at(list));
        let mut f = Fields {
            out,
            prefix: format!("repositories[{i}]"),
            cluster_at: repo_at,
        };
        let name = f.parse(string(&spec.name), "name", || None, parse_name);
        let kind = spec.kind.as_ref().map(|k| k.value.as_str()).unwrap_or("posix");
        let s3 = match kind {
            "s3" => resolve_s3(&mut f, spec, name.as_deref().unwrap_or("")),
            "posix" => {
                let path = f.path("type");
                f.out.error(
                    spec.kind.as_ref().and_then(at).or(repo_at),
                    &path,
                    "a `posix` repository on a repository host is not supported by this build: use `type: s3`, or an absolute path in the cluster's `pgbackrest.repository`",
                );
                None
            }
            other => {
                let path = f.path("type");
                f.out.error(
                    spec.kind.as_ref().and_then(at),
                    &path,
                    format!("`{}` is not a repository type (posix or s3)", printable(other)),
                );
                None
            }
        };
        if let Some(name) = name {
            if declared.contains_key(&name) {
                let path = f.path("name");
                f.out.error(repo_at, &path, format!("`{name}` is declared twice"));
            }
            declared.insert(name, Declared { s3 });
        }
    }
    declared
}

fn parse_name(value: &str) -> Result<String, String> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && !value.starts_with(['-', '_']);
    if ok {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "`{}` is not a repository name: 1 to 63 of a-z, 0-9, `-` and `_`, not starting with `-` or `_`",
            printable(value)
        ))
    }
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
