//! The policy file exactly as written: serde structs that mirror the YAML, with every
//! value wrapped in `Spanned` so that validation can name the line it came from.
//!
//! Nothing here is interpreted. Unknown keys are rejected by serde
//! (`deny_unknown_fields`) so a typo never silently becomes a default. Every cluster
//! field is optional because `defaults:` and each cluster use the same shape and are
//! merged field by field before validation (see [`ClusterSpec::merged_over`]).

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

/// A value with the place it was written. Read exactly as serde-saphyr's `Spanned<T>`
/// (fields `value`, `referenced`, `defined` through `Deref`); in the JSON Schema
/// (`pgbr-policy schema`) it is the plain `T`. A new struct here gets its schema with
/// `#[derive(JsonSchema)]` beside `Deserialize`, nothing else.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct S<T>(pub Spanned<T>);

impl<T> std::ops::Deref for S<T> {
    type Target = Spanned<T>;
    fn deref(&self) -> &Spanned<T> {
        &self.0
    }
}

impl<T: JsonSchema> JsonSchema for S<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    pub version: S<u32>,
    #[serde(default)]
    pub defaults: Option<ClusterSpec>,
    /// Repositories declared once and named by clusters (`pgbackrest.repository: NAME`).
    #[serde(default)]
    pub repositories: Option<S<Vec<RepositorySpec>>>,
    pub clusters: S<Vec<ClusterSpec>>,
}

/// A declared repository. `type: s3` (issue 15) is object storage reached with two
/// scoped keys; `type: posix` (the default) with a `host:` is a dedicated repository host
/// (issue 14). Fields of the other type are refused by validation.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RepositorySpec {
    pub name: Option<S<String>>,
    #[serde(rename = "type")]
    pub kind: Option<S<String>>,
    pub s3: Option<S3Spec>,
    pub credentials: Option<CredentialsSpec>,
    pub object_lock: Option<ObjectLockSpec>,
    pub versioning: Option<S<bool>>,
    /// posix: the repository host (its name in the output tree, the address the database
    /// hosts reach, its TLS port).
    pub host: Option<RepositoryHostSpec>,
    /// posix: `repo1-path` on the repository host.
    pub path: Option<S<String>>,
    /// posix: the OS user that owns the repository and runs its TLS server.
    pub backup_user: Option<BackupUserSpec>,
    pub lock: Option<S<String>>,
    pub log: Option<S<String>>,
    /// Where the site CA (ca.key, ca.crt) lives on the host that signs certificates.
    pub ca_directory: Option<S<String>>,
}

/// Where the bucket is and how pgBackRest reaches it (`repo1-s3-*`).
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct S3Spec {
    pub bucket: Option<S<String>>,
    pub prefix: Option<S<String>>,
    pub region: Option<S<String>>,
    pub endpoint: Option<S<String>>,
    pub uri_style: Option<S<String>>,
    pub ca_file: Option<S<String>>,
    /// The IAM principal (ARN) the bucket policy exempts from its Deny statements: the
    /// administrator who may still change versioning, lifecycle, retention and the policy.
    pub admin_principal: Option<S<String>>,
    /// The ARN partition of the bucket's resources: `aws` (default), `aws-us-gov`, `aws-cn`.
    pub partition: Option<S<String>>,
}

/// The two keys, each read at apply time from a root-only file on the database host.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialsSpec {
    pub database_side: Option<S<String>>,
    pub backup_side: Option<S<String>>,
    /// `files` (default). `instance` / `web-identity` are explained and refused.
    pub source: Option<S<String>>,
}

#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectLockSpec {
    pub mode: Option<S<String>>,
    pub days: Option<S<u32>>,
}

#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RepositoryHostSpec {
    pub name: Option<S<String>>,
    pub address: Option<S<String>>,
    pub tls_port: Option<S<u32>>,
}

/// A database host of a cluster (a Patroni member): where the repository host's TLS
/// client reaches that host's `pgbackrest server`.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberSpec {
    pub name: Option<S<String>>,
    pub address: Option<S<String>>,
    pub tls_port: Option<S<u32>>,
}

#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    pub name: Option<S<String>>,
    pub postgres: Option<PostgresSpec>,
    pub backup_user: Option<BackupUserSpec>,
    pub role: Option<RoleSpec>,
    pub pgbackrest: Option<PgbackrestSpec>,
    pub archive: Option<ArchiveSpec>,
    pub patroni: Option<PatroniSpec>,
    pub ansible: Option<AnsibleSpec>,
    pub schedule: Option<ScheduleSpec>,
    /// The database hosts, with a repository on a repository host.
    pub members: Option<S<Vec<MemberSpec>>>,
}

/// When backups and `pgbackrest verify` run: systemd calendar expressions (`OnCalendar=`),
/// `none` to run no job of that kind.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    pub full: Option<S<String>>,
    pub diff: Option<S<String>>,
    pub incr: Option<S<String>>,
    pub verify: Option<S<String>>,
}

#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresSpec {
    pub major: Option<S<u32>>,
    pub layout: Option<S<String>>,
    pub data_directory: Option<S<String>>,
    pub owner: Option<S<String>>,
    pub group: Option<S<String>>,
    pub socket_directory: Option<S<String>>,
    pub port: Option<S<u32>>,
    pub bin_directory: Option<S<String>>,
    pub hba_file: Option<S<String>>,
    pub ident_file: Option<S<String>>,
    pub service: Option<S<String>>,
}

#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupUserSpec {
    pub name: Option<S<String>>,
    pub group: Option<S<String>>,
    pub home: Option<S<String>>,
    pub shell: Option<S<String>>,
    pub ssh_key: Option<S<bool>>,
}

#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    pub name: Option<S<String>>,
    pub database: Option<S<String>>,
    pub auth: Option<S<String>>,
    pub password_file: Option<S<String>>,
    pub password_env: Option<S<String>>,
    pub revoke_public_create: Option<S<bool>>,
}

#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PgbackrestSpec {
    pub stanza: Option<S<String>>,
    pub version: Option<S<String>>,
    pub binary: Option<S<String>>,
    pub commands: Option<S<Vec<S<String>>>>,
    pub repository: Option<S<String>>,
    pub retention_full: Option<S<u32>>,
    pub start_fast: Option<S<bool>>,
    pub tls: Option<TlsSpec>,
    pub config: Option<ConfigPathsSpec>,
    pub backup_user_paths: Option<UserPathsSpec>,
    pub owner_paths: Option<UserPathsSpec>,
    /// pgBackRest options passed through (resolve/options.rs says which, and why not others).
    pub options: Option<S<std::collections::BTreeMap<String, S<OptionValue>>>>,
    /// A root-only file holding the repository's encryption passphrase, read at apply time.
    pub cipher_passphrase_file: Option<S<String>>,
}

/// A pass-through option's value as written: a boolean, a number or a word.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OptionValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    pub address: Option<S<String>>,
    pub port: Option<S<u32>>,
    pub directory: Option<S<String>>,
}

#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigPathsSpec {
    pub repository_side: Option<S<String>>,
    pub database_side: Option<S<String>>,
}

#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPathsSpec {
    pub lock: Option<S<String>>,
    pub log: Option<S<String>>,
    pub spool: Option<S<String>>,
}

#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArchiveSpec {
    pub managed: Option<S<bool>>,
}

/// A cluster managed by Patroni: where its configuration lives, which version runs, where
/// the generated hook and post-bootstrap script are installed, and the pg_hba/pg_ident
/// lines that follow the role's own (Patroni rewrites both files whole).
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatroniSpec {
    pub enabled: Option<S<bool>>,
    pub config_file: Option<S<String>>,
    pub version: Option<S<String>>,
    pub scripts_directory: Option<S<String>>,
    pub hook_log: Option<S<String>>,
    pub service: Option<S<String>>,
    pub data_checksums: Option<S<bool>>,
    pub pg_hba_after: Option<S<Vec<S<String>>>>,
    pub pg_ident_after: Option<S<Vec<S<String>>>>,
}

/// How the generated Ansible output reaches this cluster's hosts.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnsibleSpec {
    /// The inventory group the cluster's play targets (default `pgbr_<cluster>`).
    pub host_group: Option<S<String>>,
}

/// Field-by-field merge: the cluster's own value wins, then the shared default.
trait Merge {
    fn merged_over(self, base: &Self) -> Self;
}

impl<T: Clone> Merge for Option<S<T>> {
    fn merged_over(self, base: &Self) -> Self {
        self.or_else(|| base.clone())
    }
}

/// Sections merge recursively, so `defaults: {postgres: {major: 15}}` and a cluster's
/// `postgres: {port: 5433}` give both values.
macro_rules! merge_section {
    ($ty:ty { $($field:ident),* $(,)? }) => {
        impl Merge for Option<$ty> {
            fn merged_over(self, base: &Self) -> Self {
                match (self, base) {
                    (None, base) => base.clone(),
                    (Some(own), None) => Some(own),
                    (Some(own), Some(base)) => Some(<$ty>::default_merge(own, base)),
                }
            }
        }
        impl $ty {
            fn default_merge(own: Self, base: &Self) -> Self {
                Self { $($field: own.$field.merged_over(&base.$field)),* }
            }
        }
    };
}

merge_section!(PostgresSpec {
    major,
    layout,
    data_directory,
    owner,
    group,
    socket_directory,
    port,
    bin_directory,
    hba_file,
    ident_file,
    service
});
merge_section!(BackupUserSpec {
    name,
    group,
    home,
    shell,
    ssh_key
});
merge_section!(RoleSpec {
    name,
    database,
    auth,
    password_file,
    password_env,
    revoke_public_create
});
merge_section!(PgbackrestSpec {
    stanza,
    version,
    binary,
    commands,
    repository,
    retention_full,
    start_fast,
    tls,
    config,
    backup_user_paths,
    owner_paths,
    options,
    cipher_passphrase_file
});
merge_section!(TlsSpec {
    address,
    port,
    directory
});
merge_section!(ConfigPathsSpec {
    repository_side,
    database_side
});
merge_section!(UserPathsSpec { lock, log, spool });
merge_section!(ArchiveSpec { managed });
merge_section!(AnsibleSpec { host_group });
merge_section!(ScheduleSpec {
    full,
    diff,
    incr,
    verify
});
merge_section!(PatroniSpec {
    enabled,
    config_file,
    version,
    scripts_directory,
    hook_log,
    service,
    data_checksums,
    pg_hba_after,
    pg_ident_after
});

impl ClusterSpec {
    /// This cluster's values over the shared `defaults:` section.
    pub fn merged_over(self, defaults: &ClusterSpec) -> ClusterSpec {
        ClusterSpec {
            name: self.name,
            postgres: self.postgres.merged_over(&defaults.postgres),
            backup_user: self.backup_user.merged_over(&defaults.backup_user),
            role: self.role.merged_over(&defaults.role),
            pgbackrest: self.pgbackrest.merged_over(&defaults.pgbackrest),
            archive: self.archive.merged_over(&defaults.archive),
            patroni: self.patroni.merged_over(&defaults.patroni),
            ansible: self.ansible.merged_over(&defaults.ansible),
            schedule: self.schedule.merged_over(&defaults.schedule),
            members: self.members.merged_over(&defaults.members),
        }
    }
}
