//! The plan: everything decided, nothing left to templates but spelling. One
//! [`ClusterPlan`] per cluster, built from the validated policy and the catalog. It is
//! the template contract: every field a template reads is documented here, and every
//! target renders the same plan, so SQL, hba, shell and configuration cannot disagree
//! about a name or a path.

pub mod block;
pub mod change;
mod datadir;
mod files;
mod hba;
mod host;
pub mod patroni;
pub mod pgbackrest;
pub mod repository;
mod sandbox;
pub mod schedule;
pub mod topology;

use crate::catalog::{self, Command};
use crate::policy::{Auth, Cluster, PasswordSource, Policy};
use serde::Serialize;

pub use datadir::{DataDirRule, Mode, Verdict};
pub use files::{PathEntry, PathKind};
pub use hba::{HbaLine, IdentLine};
pub use host::{InstallStep, InstalledFile, StatePlan};
pub use patroni::PatroniPlan;
pub use pgbackrest::{CipherPlan, ConfigFile};
pub use sandbox::{SandboxMount, SandboxPath, SandboxPlan};

/// The whole plan: what `generate` renders and `explain` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub tool: ToolInfo,
    pub policy_file: String,
    /// sha256 of the policy file, for the change ticket.
    pub policy_sha256: String,
    /// The manifest CHANGE.md's "Changes since the last generated tree" is measured from
    /// (since.rs; written as MANIFEST.previous.sha256); empty on a first generation.
    pub previous_manifest: Vec<ManifestLine>,
    pub clusters: Vec<ClusterPlan>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ManifestLine {
    pub hash: String,
    pub path: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ToolInfo {
    pub name: &'static str,
    pub version: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterPlan {
    pub name: String,
    pub major: u32,
    pub stanza: String,
    pub pgbackrest_binary: String,
    /// `pgbackrest.version` as written in the policy, empty when not given: apply.sh
    /// stops when the installed pgBackRest is older.
    pub pgbackrest_version: String,
    /// The oldest pgBackRest that can serve this cluster: its major's first supporting
    /// release, and the TLS server (2.37). apply.sh stops on an older one.
    pub pgbackrest_min: String,
    pub postgres: PostgresPlan,
    pub backup_user: BackupUserPlan,
    pub role: RolePlan,
    /// `pg_read_all_settings` (+ `pg_checkpoint` for backup-standby), with reasons.
    pub memberships: Vec<Grant>,
    /// EXECUTE grants with exact signatures for this major.
    pub functions: Vec<FunctionGrant>,
    /// What verify.sql proves the role can NOT execute or inherit.
    pub forbidden_functions: Vec<String>,
    pub forbidden_roles: Vec<String>,
    pub commands: Vec<String>,
    /// `REVOKE CREATE ON SCHEMA public FROM PUBLIC` in the role's database.
    pub revoke_public_create: bool,
    pub public_create_is_default: bool,
    pub hba_marker: String,
    pub hba_lines: Vec<HbaLine>,
    pub ident_lines: Vec<IdentLine>,
    /// Every path the plan manages, with owner, group, mode and why.
    pub paths: Vec<PathEntry>,
    /// The repository (`repo1-path`), owned by the backup user alone.
    pub repository: String,
    /// Generated files installed on the host, with owner, group, mode and step.
    pub installed_files: Vec<InstalledFile>,
    /// The data-directory rule every target applies or checks: its roots (tablespaces,
    /// a linked pg_wal), the bits every entry needs and the bits none may have.
    pub datadir: DataDirRule,
    /// What apply.sh remembers for rollback.sh.
    pub state: StatePlan,
    /// Directories the backup user must be able to search (x): the data directory's
    /// parents, the socket directory and its parents.
    pub search_paths: Vec<String>,
    pub repository_config: ConfigFile,
    pub database_config: ConfigFile,
    /// Set when the repository is encrypted.
    pub cipher: Option<CipherPlan>,
    pub tls: TlsPlan,
    pub systemd: SystemdPlan,
    pub archive: ArchivePlan,
    /// Why PostgreSQL needs a restart after apply, if it does.
    pub restart_reasons: Vec<String>,
    pub warnings: Vec<String>,
    /// Output-tree locations of this cluster's artifacts, relative to the cluster dir.
    pub files: ArtifactNames,
    /// Set when Patroni manages the cluster: templates branch on it (no pg_hba.conf
    /// edit, no ALTER SYSTEM, restarts through patronictl).
    pub patroni: Option<PatroniPlan>,
    /// Set when the repository is a bucket: templates branch on it (no TLS server, no
    /// repository directory, a key per side, stanza-create by the backup side).
    pub s3: Option<repository::S3Plan>,
    /// The options each side's pgBackRest commands need: `--config=…` (and, with a bucket,
    /// `--config-include-path=…` where the side's key is).
    pub backup_config_args: String,
    pub database_config_args: String,
    /// The inventory group the cluster's Ansible play targets (`ansible.host_group`).
    pub ansible_group: String,
    /// Scheduled backups and verify: systemd units, the cron fallback.
    pub schedule: schedule::SchedulePlan,
    /// Each job again by kind, for the generator outputs that render one unit per job
    /// (`context: job_full` …); `None` when the policy turns the kind off.
    pub job_full: Option<schedule::JobPlan>,
    pub job_diff: Option<schedule::JobPlan>,
    pub job_incr: Option<schedule::JobPlan>,
    pub job_verify: Option<schedule::JobPlan>,
    /// CHANGE.md's header and the risks this change creates.
    pub change: change::ChangePlan,
    /// What changes on the host since the tree this one was generated over (since.rs);
    /// `None` when there was none.
    pub since_last: Option<Vec<String>>,
    /// Set when the repository lives on a dedicated repository host: the hosts, their
    /// certificates and the order of steps across them (cluster level and every view).
    pub topology: Option<topology::TopologyPlan>,
    /// Set on a per-host view of such a cluster: which host this plan is for. The
    /// host-varying fields (paths, installed files, configurations, TLS, systemd) are
    /// that host's.
    pub host: Option<topology::HostView>,
    /// `single` (today's layout), `repository` or `database` (a host view), `cluster`
    /// (the cluster-level plan of a repository-host cluster): what templates branch on.
    pub host_role: &'static str,
    /// On the cluster-level plan of such a cluster: one view per host, the repository
    /// host first, then the members in the policy's order. Empty for a single host.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<ClusterPlan>,
}

impl ClusterPlan {
    /// The view of one host of a repository-host cluster.
    pub fn host_view(&self, name: &str) -> Option<&ClusterPlan> {
        self.hosts
            .iter()
            .find(|h| h.host.as_ref().is_some_and(|v| v.name == name))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PostgresPlan {
    pub data_directory: String,
    pub owner: String,
    pub group: String,
    pub socket_directory: String,
    pub port: u16,
    pub bin_directory: String,
    /// Empty: read `SHOW hba_file` from the server at apply time.
    pub hba_file: String,
    pub ident_file: String,
    /// Where the layout keeps the server's configuration files by default (`check
    /// --deployed` looks there when hba_file/ident_file are not given).
    pub config_directory: String,
    pub service: String,
    pub has_ident_mappings_view: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackupUserPlan {
    pub name: String,
    pub group: String,
    pub home: String,
    pub shell: String,
    pub ssh_key: bool,
    /// The cluster's group, which the backup user joins to read PGDATA.
    pub extra_group: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RolePlan {
    pub name: String,
    pub database: String,
    /// `peer` or `scram-sha-256`.
    pub auth: String,
    pub password_file: String,
    pub password_env: String,
    /// Role attributes: ALTER ROLE sets them (apply.sql), verify.sql, `check --db` and
    /// apply.sh's change detection read them back, all from this one list.
    pub attributes: Vec<RoleAttribute>,
}

/// One role attribute the plan fixes.
#[derive(Debug, Clone, Serialize)]
pub struct RoleAttribute {
    /// The attribute's name (`SUPERUSER`).
    pub name: &'static str,
    /// Whether the role has it.
    pub granted: bool,
    /// The ALTER ROLE keyword: the name, or NO and the name (`NOSUPERUSER`).
    pub keyword: String,
    /// Its column in pg_roles.
    pub column: &'static str,
    /// What verify.sql prints for it.
    pub check: &'static str,
}

/// The backup role's attributes: it logs in, inherits (a NOINHERIT member does not get
/// the privileges of pg_read_all_settings on 15+), and has no other power.
pub fn role_attributes() -> Vec<RoleAttribute> {
    let a = |name: &'static str, granted, column, check| RoleAttribute {
        name,
        granted,
        keyword: if granted { name.to_owned() } else { format!("NO{name}") },
        column,
        check,
    };
    vec![
        a("LOGIN", true, "rolcanlogin", "role can log in"),
        a("SUPERUSER", false, "rolsuper", "role is not a superuser"),
        a("INHERIT", true, "rolinherit", "role inherits (INHERIT)"),
        a("CREATEDB", false, "rolcreatedb", "role cannot create databases"),
        a("CREATEROLE", false, "rolcreaterole", "role cannot create roles"),
        a("REPLICATION", false, "rolreplication", "role has no REPLICATION"),
        a(
            "BYPASSRLS",
            false,
            "rolbypassrls",
            "role does not bypass row-level security",
        ),
    ]
}

#[derive(Debug, Clone, Serialize)]
pub struct Grant {
    pub role: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FunctionGrant {
    /// `pg_catalog.pg_backup_start(text, boolean)`
    pub signature: String,
    /// `pg_backup_start(text,boolean)`, as regprocedure prints it.
    pub regprocedure: String,
    pub name: String,
    pub reason: String,
    pub needed_for: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TlsPlan {
    pub address: String,
    /// What the database side connects to; the server certificate is issued for it.
    pub connect_host: String,
    pub port: u16,
    pub directory: String,
    pub ca_cert: String,
    pub ca_key: String,
    pub server_cert: String,
    pub server_key: String,
    pub client_cert: String,
    pub client_key: String,
    pub client_cn: String,
    pub server_cn: String,
    /// The server certificate's subjectAltName (openssl syntax): what the database side
    /// connects to, and the listening IP address.
    pub server_san: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SystemdPlan {
    pub unit_name: String,
    pub unit_path: String,
    pub tmpfiles_path: String,
    /// tmpfiles.d `d` lines for the planned directories under /run (a tmpfs emptied at
    /// boot): the lock directories by default.
    pub tmpfiles: Vec<PathEntry>,
    /// What the TLS server may see: the unit's sandboxing directives and the mounts
    /// `apply.sh --start-tls-server` gives bubblewrap.
    pub sandbox: SandboxPlan,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArchivePlan {
    pub managed: bool,
    pub command: String,
    /// restore_command for replicas (a repository-host cluster's members: WAL from the
    /// one repository); empty for a single host.
    pub restore_command: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArtifactNames {
    pub repository_config: String,
    pub database_config: String,
    pub unit: String,
    pub tmpfiles: String,
}

pub fn build(policy: &Policy) -> Plan {
    Plan {
        tool: ToolInfo {
            name: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
        },
        policy_file: policy.source_name.clone(),
        policy_sha256: policy.source_sha256.clone(),
        previous_manifest: Vec::new(),
        clusters: policy.clusters.iter().map(plan_any).collect(),
    }
}

fn plan_any(c: &Cluster) -> ClusterPlan {
    match &c.topology {
        None => plan_cluster(c),
        Some(t) => topology::plan(c, t),
    }
}

pub(crate) fn plan_cluster(c: &Cluster) -> ClusterPlan {
    let major = c.postgres.major;
    let privileges = catalog::privileges(major, &c.pgbackrest.commands);
    let functions = privileges
        .functions
        .iter()
        .map(|f| FunctionGrant {
            signature: f.sql_signature(),
            regprocedure: f.regprocedure(),
            name: f.name.to_owned(),
            reason: f.reason.to_owned(),
            needed_for: needed_for(f.name, &c.pgbackrest.commands),
        })
        .collect();
    let memberships = privileges
        .memberships
        .iter()
        .map(|m| Grant {
            role: m.role.to_owned(),
            reason: m.reason.to_owned(),
        })
        .collect();
    let (password_file, password_env) = match &c.role.auth {
        Auth::Scram(PasswordSource::File(p)) => (p.to_string(), String::new()),
        Auth::Scram(PasswordSource::Env(e)) => (String::new(), e.to_string()),
        Auth::Peer => (String::new(), String::new()),
    };
    let tls = pgbackrest::tls_plan(c);
    let patroni = c.patroni.as_ref().map(patroni::plan);
    let s3 =
        c.s3.as_ref()
            .map(|s3| repository::plan(c, s3, c.pgbackrest.database_config.directory().as_str()));
    let mut paths = files::paths(c, s3.as_ref());
    if let Some(p) = &patroni {
        paths.extend(patroni::paths(c, p));
    }
    let systemd = files::systemd_plan(c, &paths, sandbox::plan(c, &tls, false));
    let mut warnings = Vec::new();
    if c.postgres.major.get() >= 16
        && c.pgbackrest
            .version
            .is_none_or(|v| v < c.postgres.major.min_pgbackrest())
    {
        warnings.push(format!(
            "PostgreSQL {} needs pgBackRest {} or later on this host",
            c.postgres.major,
            c.postgres.major.min_pgbackrest()
        ));
    }
    let files = ArtifactNames {
        repository_config: "pgbackrest/repository.conf".into(),
        database_config: "pgbackrest/database.conf".into(),
        unit: format!("systemd/{}", systemd.unit_name),
        tmpfiles: format!("systemd/{}", file_name(&systemd.tmpfiles_path)),
    };
    let cipher = pgbackrest::cipher_plan(c);
    // The backup side's include path: its S3 key, or the cipher passphrase (never both).
    let include_path = match (&s3, &cipher) {
        (Some(s3), _) => Some(s3.backup_key_dir.as_str()),
        (None, Some(cipher)) => Some(cipher.include_path.as_str()),
        (None, None) => None,
    };
    let schedule = schedule::plan(c, include_path);
    let job = |kind: crate::policy::model::JobKind| schedule.jobs.iter().find(|j| j.kind == kind).cloned();
    let (job_full, job_diff, job_incr, job_verify) = {
        use crate::policy::model::JobKind::*;
        (job(Full), job(Diff), job(Incr), job(Verify))
    };
    let installed_files = host::installed_files(
        &files,
        c.pgbackrest.repository_config.as_str(),
        c.pgbackrest.database_config.as_str(),
        c.backup_user.group.as_str(),
        c.postgres.group.as_str(),
        &systemd,
        patroni.as_ref(),
    );
    // No TLS server in front of a bucket: no unit to install.
    let mut installed_files = installed_files;
    if s3.is_some() {
        installed_files.retain(|f| f.target != systemd.unit_path);
    }
    installed_files.extend(host::schedule_files(&schedule));
    ClusterPlan {
        ansible_group: c.ansible_group.to_string(),
        name: c.name.to_string(),
        major: major.get(),
        stanza: c.pgbackrest.stanza.to_string(),
        pgbackrest_binary: c.pgbackrest.binary.to_string(),
        pgbackrest_version: c.pgbackrest.version.map(|v| v.to_string()).unwrap_or_default(),
        pgbackrest_min: c
            .postgres
            .major
            .min_pgbackrest()
            .max(crate::catalog::Version::TLS_SERVER)
            .to_string(),
        postgres: PostgresPlan {
            data_directory: c.postgres.data_directory.to_string(),
            owner: c.postgres.owner.to_string(),
            group: c.postgres.group.to_string(),
            socket_directory: c.postgres.socket_directory.to_string(),
            port: c.postgres.port,
            bin_directory: c.postgres.bin_directory.to_string(),
            hba_file: c.postgres.hba_file.as_ref().map(|p| p.to_string()).unwrap_or_default(),
            ident_file: c
                .postgres
                .ident_file
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            service: c.postgres.service.to_string(),
            config_directory: c.postgres.config_directory.clone(),
            has_ident_mappings_view: major.has_ident_mappings_view(),
        },
        backup_user: BackupUserPlan {
            name: c.backup_user.name.to_string(),
            group: c.backup_user.group.to_string(),
            home: c.backup_user.home.to_string(),
            shell: c.backup_user.shell.to_string(),
            ssh_key: c.backup_user.ssh_key,
            extra_group: c.postgres.group.to_string(),
        },
        role: RolePlan {
            name: c.role.name.to_string(),
            database: c.role.database.to_string(),
            auth: match c.role.auth {
                Auth::Peer => "peer".into(),
                Auth::Scram(_) => "scram-sha-256".into(),
            },
            password_file,
            password_env,
            attributes: role_attributes(),
        },
        memberships,
        functions,
        forbidden_functions: catalog::forbidden_functions(major),
        forbidden_roles: catalog::forbidden_roles(major).into_iter().map(str::to_owned).collect(),
        commands: c.pgbackrest.commands.iter().map(|c| c.name().to_owned()).collect(),
        revoke_public_create: c.role.revoke_public_create,
        public_create_is_default: major.public_may_create_in_public_schema(),
        hba_marker: format!("pgbr-policy {}", c.name),
        hba_lines: hba::hba_lines(c),
        ident_lines: hba::ident_lines(c),
        paths,
        repository: match &c.s3 {
            Some(s3) => format!("s3://{}{}", s3.bucket, s3.prefix),
            None => c.pgbackrest.repository.to_string(),
        },
        installed_files,
        datadir: DataDirRule::new(c.postgres.data_directory.as_str()),
        state: host::state_plan(c.name.as_str()),
        search_paths: search_paths(c),
        repository_config: pgbackrest::repository_config(c, &tls, s3.as_ref()),
        cipher,
        database_config: pgbackrest::database_config(c, &tls, s3.as_ref()),
        tls,
        archive: ArchivePlan {
            managed: c.archive_managed,
            command: pgbackrest::archive_command(c, s3.as_ref()),
            restore_command: String::new(),
        },
        backup_config_args: pgbackrest::config_args(
            c.pgbackrest.repository_config.as_str(),
            s3.as_ref().map(|s| s.backup_key_dir.as_str()),
        ),
        database_config_args: pgbackrest::config_args(
            c.pgbackrest.database_config.as_str(),
            s3.as_ref().map(|s| s.database_key_dir.as_str()),
        ),
        restart_reasons: restart_reasons(c),
        warnings,
        files,
        systemd,
        patroni,
        s3,
        schedule,
        job_full,
        job_diff,
        job_incr,
        job_verify,
        change: change::plan(c),
        since_last: None,
        topology: None,
        host: None,
        host_role: "single",
        hosts: Vec::new(),
    }
}

fn search_paths(c: &Cluster) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let socket = &c.postgres.socket_directory;
    let candidates = c
        .postgres
        .data_directory
        .ancestors()
        .into_iter()
        .chain(std::iter::once(socket.clone()))
        .chain(socket.ancestors());
    for path in candidates {
        let path = path.to_string();
        if !out.contains(&path) {
            out.push(path);
        }
    }
    out
}

fn file_name(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_owned()
}

/// Which allowed commands need a function (facts.md §1: check needs the WAL switch and
/// restore point; backup needs all four).
fn needed_for(function: &str, commands: &[Command]) -> Vec<String> {
    commands
        .iter()
        .filter(|c| match c {
            Command::Check => matches!(function, "pg_switch_wal" | "pg_create_restore_point"),
            Command::Backup | Command::BackupStandby => true,
        })
        .map(|c| c.name().to_owned())
        .collect()
}

/// Restart reasons are known at plan time only as conditions; apply.sh checks them on
/// the host and reports the ones that hold.
fn restart_reasons(c: &Cluster) -> Vec<String> {
    let mut out = vec![format!(
        "PostgreSQL reads the data directory's mode only when it starts: until a restart, the files it creates stay 0600 and the backup user cannot read them. This applies when SHOW data_directory_mode does not give 0750."
    )];
    if c.archive_managed {
        out.push("archive_mode changes only when PostgreSQL starts: until a restart, no WAL is archived and backups cannot complete. This applies when archive_mode was off.".to_owned());
    }
    out
}
