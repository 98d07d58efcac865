//! The `role:` section: the database role pgBackRest connects as, and how it
//! authenticates.

use crate::catalog::PgMajor;
use crate::policy::fields::{Fields, at, string};
use crate::policy::model::{Auth, PasswordSource, Role};
use crate::policy::names::{AbsPath, EnvName, OsName, SqlName, printable};
use crate::policy::raw;

/// The section's values, each `None` when invalid (the error is already reported).
pub struct RolePart {
    name: Option<SqlName>,
    pub database: Option<SqlName>,
    auth: Option<Auth>,
    revoke_public_create: bool,
}

impl RolePart {
    pub fn finish(self) -> Option<Role> {
        Some(Role {
            name: self.name?,
            database: self.database?,
            auth: self.auth?,
            revoke_public_create: self.revoke_public_create,
        })
    }
}

/// `owner` and `major` come from the postgres section: the role may not be the
/// owner's own, and the warning on `revoke_public_create` depends on the major.
pub fn resolve(
    f: &mut Fields<'_, '_>,
    role: &raw::RoleSpec,
    owner: Option<&OsName>,
    major: Option<PgMajor>,
) -> RolePart {
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
        } else if owner.is_some_and(|o| o.as_str() == name.as_str()) {
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
    let auth = resolve_auth(f, role);
    let revoke_public_create = role.revoke_public_create.as_ref().map(|v| v.value).unwrap_or(true);
    if let (Some(major), Some(v)) = (major, &role.revoke_public_create) {
        if !v.value && major.public_may_create_in_public_schema() {
            let path = f.path("role.revoke_public_create");
            f.out.warning(at(v), &path, format!("on PostgreSQL {major} every role, the backup role included, may CREATE in schema public unless this is true"));
        }
    }

    RolePart {
        name: role_name,
        database,
        auth,
        revoke_public_create,
    }
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
                    printable(other)
                ),
            );
            None
        }
    }
}
