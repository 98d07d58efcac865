//! The validated policy: every value typed, every default filled in, every combination
//! checked. This is what planning reads; it never sees raw YAML.

use super::names::{AbsPath, AnsibleGroup, ClusterName, EnvName, HostName, OsName, SqlName, Stanza, UnitName};
use crate::catalog::{Command, PgMajor, Version};

#[derive(Debug, Clone)]
pub struct Policy {
    /// The policy's file name (not its full path: artifacts must not depend on where
    /// the checkout lives).
    pub source_name: String,
    /// sha256 of the policy file's bytes, for the change ticket.
    pub source_sha256: String,
    pub clusters: Vec<Cluster>,
}

#[derive(Debug, Clone)]
pub struct Cluster {
    pub name: ClusterName,
    pub postgres: Postgres,
    pub backup_user: BackupUser,
    pub role: Role,
    pub pgbackrest: Pgbackrest,
    pub archive_managed: bool,
    /// `Some` when Patroni manages the cluster (`patroni.enabled: true`).
    pub patroni: Option<Patroni>,
    /// The inventory group of the cluster's hosts (`ansible.host_group`).
    pub ansible_group: AnsibleGroup,
    /// `Some` when `pgbackrest.repository` names a declared repository of type `s3`:
    /// no TLS server, no repository directory on the host, two scoped keys.
    pub s3: Option<S3Repository>,
    /// The scheduled jobs, in the order full, diff, incr, verify (kinds set to `none`
    /// are left out).
    pub schedule: Vec<ScheduledJob>,
    /// `Some` when the repository lives on a dedicated repository host
    /// (`pgbackrest.repository` names a declared repository with a `host`) and the
    /// cluster lists its database hosts (`members`). `None`: today's single host.
    pub topology: Option<Topology>,
}

/// Object storage reached with two scoped keys (README, "Object storage").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Repository {
    /// The repository's name in `repositories:`.
    pub name: String,
    pub bucket: String,
    /// `repo1-path`: `/` followed by the key prefix (no trailing `/`), e.g. `/pgbackrest`.
    pub prefix: String,
    pub region: String,
    /// `host[:port]`, or `http://host[:port]` (plain HTTP, pgBackRest 2.58+).
    pub endpoint: String,
    pub uri_style: UriStyle,
    pub ca_file: Option<AbsPath>,
    pub admin_principal: String,
    pub partition: String,
    pub database_key_file: AbsPath,
    pub backup_key_file: AbsPath,
    pub versioning: bool,
    pub object_lock: Option<ObjectLock>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriStyle {
    Host,
    Path,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectLock {
    pub compliance: bool,
    pub days: u32,
}

/// What a scheduled job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    Full,
    Diff,
    Incr,
    Verify,
}

impl JobKind {
    pub fn name(self) -> &'static str {
        match self {
            JobKind::Full => "full",
            JobKind::Diff => "diff",
            JobKind::Incr => "incr",
            JobKind::Verify => "verify",
        }
    }
}

/// One job: its kind and its systemd calendar expression (checked to a safe grammar).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledJob {
    pub kind: JobKind,
    pub calendar: String,
}

/// A dedicated repository host shared by every member of a cluster (TLS both ways).
#[derive(Debug, Clone)]
pub struct Topology {
    pub repository: RepositoryHost,
    /// The database hosts, in the policy's order (pg1, pg2, … on the repository host).
    pub members: Vec<Member>,
}

/// A `type: posix` repository on its own host (`repositories[]` with `host`).
#[derive(Debug, Clone)]
pub struct RepositoryHost {
    /// The repository's name in the policy.
    pub name: ClusterName,
    /// The host's name: its directory in the output tree and part of certificate names.
    pub host: ClusterName,
    /// What the database hosts connect to, where its TLS server listens, and what its
    /// server certificate names.
    pub address: HostName,
    pub tls_port: u16,
    /// `repo1-path` on the repository host.
    pub path: AbsPath,
    pub backup_user: BackupUser,
    pub lock: AbsPath,
    pub log: AbsPath,
    /// The site CA's directory on the host that signs the certificates.
    pub ca_directory: AbsPath,
}

/// One database host (a Patroni member).
#[derive(Debug, Clone)]
pub struct Member {
    pub name: ClusterName,
    /// Where the repository host's TLS client reaches this host's `pgbackrest server`
    /// (also its listening address and its server certificate's name).
    pub address: HostName,
    pub tls_port: u16,
}

#[derive(Debug, Clone)]
pub struct Postgres {
    pub major: PgMajor,
    pub data_directory: AbsPath,
    pub owner: OsName,
    pub group: OsName,
    pub socket_directory: AbsPath,
    pub port: u16,
    pub bin_directory: AbsPath,
    /// `None`: read from the running server (`SHOW hba_file`) at apply time.
    pub hba_file: Option<AbsPath>,
    pub ident_file: Option<AbsPath>,
    /// The systemd service that runs the cluster, used for restarts when it is active.
    pub service: UnitName,
    /// Where the layout keeps postgresql.conf, pg_hba.conf and pg_ident.conf by default
    /// (Debian: /etc/postgresql/<major>/<cluster>; otherwise the data directory).
    pub config_directory: String,
}

#[derive(Debug, Clone)]
pub struct BackupUser {
    pub name: OsName,
    pub group: OsName,
    pub home: AbsPath,
    pub shell: AbsPath,
    pub ssh_key: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// Unix-socket peer authentication through a pg_ident map: no secret anywhere.
    Peer,
    /// Password read at apply time from a file or an environment variable.
    Scram(PasswordSource),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    File(AbsPath),
    Env(EnvName),
}

#[derive(Debug, Clone)]
pub struct Role {
    pub name: SqlName,
    pub database: SqlName,
    pub auth: Auth,
    pub revoke_public_create: bool,
}

#[derive(Debug, Clone)]
pub struct Pgbackrest {
    pub stanza: Stanza,
    /// `pgbackrest.version`; `None` when not given (the rules that depend on it then
    /// assume the oldest release this layout supports, and apply.sh checks the host).
    pub version: Option<Version>,
    pub binary: AbsPath,
    pub commands: Vec<Command>,
    pub repository: AbsPath,
    pub retention_full: u32,
    pub start_fast: bool,
    pub tls_address: HostName,
    pub tls_port: u16,
    pub tls_directory: AbsPath,
    pub repository_config: AbsPath,
    pub database_config: AbsPath,
    pub backup_user_lock: AbsPath,
    pub backup_user_log: AbsPath,
    pub owner_lock: AbsPath,
    pub owner_log: AbsPath,
    pub owner_spool: AbsPath,
    /// pgBackRest options passed through, validated (resolve/options.rs), in name order.
    pub options: Vec<PassOption>,
    /// Set when the repository is encrypted (repo1-cipher-type aes-256-cbc).
    pub cipher_passphrase_file: Option<AbsPath>,
}

/// Which configuration file a pass-through option goes into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OptionSide {
    /// The backup user's (backup, expire, verify; the TLS server's remote).
    Repository,
    /// The cluster owner's (archive-push, archive-get, restore).
    Database,
    Both,
}

/// One pass-through option: a pgBackRest option name and its value as written in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassOption {
    pub key: &'static str,
    pub value: String,
    pub side: OptionSide,
}

/// A Patroni-managed cluster: Patroni owns pg_hba.conf, pg_ident.conf, the archive
/// settings and restarts, so the artifacts go through its configuration instead.
#[derive(Debug, Clone)]
pub struct Patroni {
    /// The patroni.yml that `patronictl -c` reads (a file or, since 3.0, a directory).
    pub config_file: AbsPath,
    /// `None`: not given; version-dependent warnings are then not checked.
    pub version: Option<Version>,
    pub scripts_directory: AbsPath,
    pub hook_log: AbsPath,
    /// The systemd unit that runs Patroni (for its umask drop-in).
    pub service: UnitName,
    pub data_checksums: bool,
    /// pg_hba.conf lines after the role's: Patroni's own users (over TCP) and the site's.
    pub pg_hba_after: Vec<String>,
    pub pg_ident_after: Vec<String>,
}
