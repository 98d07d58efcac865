//! The `pgbackrest:` section: the stanza, the commands allowed, the repository, the TLS
//! server that joins the two OS users, and each user's own lock, log and spool paths.

use crate::catalog::{Command, PgMajor, Version};
use crate::policy::fields::{Fields, at, string};
use crate::policy::model::Pgbackrest;
use crate::policy::names::{AbsPath, HostName, Stanza};
use crate::policy::raw::{self, S};

/// What the other sections decided that the defaults here derive from.
pub struct Context<'a> {
    pub cluster: &'a str,
    pub backup_user: &'a str,
    pub owner: &'a str,
    pub major: Option<PgMajor>,
}

/// The section's values, each `None` when invalid (the error is already reported).
pub struct PgbackrestPart {
    stanza: Option<Stanza>,
    /// `None` when not given or invalid (then the error is reported and nothing is built).
    version: Option<Version>,
    binary: Option<AbsPath>,
    commands: Option<Vec<Command>>,
    repository: Option<AbsPath>,
    retention_full: Option<u32>,
    start_fast: bool,
    tls_address: Option<HostName>,
    tls_port: Option<u16>,
    tls_directory: Option<AbsPath>,
    repository_config: Option<AbsPath>,
    database_config: Option<AbsPath>,
    backup_user_lock: Option<AbsPath>,
    backup_user_log: Option<AbsPath>,
    owner_lock: Option<AbsPath>,
    pub owner_log: Option<AbsPath>,
    owner_spool: Option<AbsPath>,
    options: Option<Vec<crate::policy::model::PassOption>>,
    cipher_passphrase_file: Option<Option<AbsPath>>,
}

impl PgbackrestPart {
    /// The TLS port, when valid: the default of every member's.
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    pub fn finish(self) -> Option<Pgbackrest> {
        Some(Pgbackrest {
            stanza: self.stanza?,
            version: self.version,
            binary: self.binary?,
            commands: self.commands?,
            repository: self.repository?,
            retention_full: self.retention_full?,
            start_fast: self.start_fast,
            tls_address: self.tls_address?,
            tls_port: self.tls_port?,
            tls_directory: self.tls_directory?,
            repository_config: self.repository_config?,
            database_config: self.database_config?,
            backup_user_lock: self.backup_user_lock?,
            backup_user_log: self.backup_user_log?,
            owner_lock: self.owner_lock?,
            owner_log: self.owner_log?,
            owner_spool: self.owner_spool?,
            options: self.options?,
            cipher_passphrase_file: self.cipher_passphrase_file?,
        })
    }
}

pub fn resolve(f: &mut Fields<'_, '_>, pb: &raw::PgbackrestSpec, cx: &Context<'_>) -> PgbackrestPart {
    let (cluster_str, bu_str, owner_name, major) = (cx.cluster, cx.backup_user, cx.owner, cx.major);
    let stanza = f.parse(
        string(&pb.stanza),
        "pgbackrest.stanza",
        || Some(cluster_str.to_owned()),
        Stanza::parse,
    );
    let version = pb
        .version
        .as_ref()
        .and_then(|v| f.parse(Some(v), "pgbackrest.version", || None, parse_version));
    let binary = f.parse(
        string(&pb.binary),
        "pgbackrest.binary",
        || Some("/usr/bin/pgbackrest".into()),
        AbsPath::parse,
    );
    let commands = resolve_commands(f, pb.commands.as_ref(), major);
    let repository = f.parse(
        string(&pb.repository),
        "pgbackrest.repository",
        || Some("/var/lib/pgbackrest".into()),
        AbsPath::parse,
    );
    let retention_full = match &pb.retention_full {
        Some(v) if v.value == 0 || v.value > 9_999_999 => {
            let path = f.path("pgbackrest.retention_full");
            f.out
                .error(at(v), &path, "must be between 1 and 9999999 (full backups kept)");
            None
        }
        Some(v) => Some(v.value),
        None => Some(2),
    };
    let start_fast = pb.start_fast.as_ref().map(|v| v.value).unwrap_or(true);
    let tls = pb.tls.clone().unwrap_or_default();
    let tls_address = f.parse(
        string(&tls.address),
        "pgbackrest.tls.address",
        || Some("127.0.0.1".into()),
        HostName::parse,
    );
    let tls_port = f.port(tls.port.as_ref(), "pgbackrest.tls.port", 8432);
    let tls_directory = f.parse(
        string(&tls.directory),
        "pgbackrest.tls.directory",
        || Some(format!("/etc/pgbackrest/{cluster_str}/tls")),
        AbsPath::parse,
    );
    let cfg = pb.config.clone().unwrap_or_default();
    let repository_config = f.parse(
        string(&cfg.repository_side),
        "pgbackrest.config.repository_side",
        || Some(format!("/etc/pgbackrest/{cluster_str}/repository.conf")),
        AbsPath::parse,
    );
    let database_config = f.parse(
        string(&cfg.database_side),
        "pgbackrest.config.database_side",
        || Some(format!("/etc/pgbackrest/{cluster_str}/database.conf")),
        AbsPath::parse,
    );
    let bup = pb.backup_user_paths.clone().unwrap_or_default();
    if let Some(v) = &bup.spool {
        let path = f.path("pgbackrest.backup_user_paths.spool");
        f.out.error(at(v), &path, "the spool path belongs to the cluster owner (asynchronous archiving); the backup user needs none: set it under owner_paths");
    }
    let backup_user_lock = f.parse(
        string(&bup.lock),
        "pgbackrest.backup_user_paths.lock",
        || Some(format!("/run/pgbackrest-{bu_str}")),
        AbsPath::parse,
    );
    let backup_user_log = f.parse(
        string(&bup.log),
        "pgbackrest.backup_user_paths.log",
        || Some(format!("/var/log/pgbackrest-{bu_str}")),
        AbsPath::parse,
    );
    let op = pb.owner_paths.clone().unwrap_or_default();
    let owner_lock = f.parse(
        string(&op.lock),
        "pgbackrest.owner_paths.lock",
        || Some(format!("/run/pgbackrest-{owner_name}")),
        AbsPath::parse,
    );
    let owner_log = f.parse(
        string(&op.log),
        "pgbackrest.owner_paths.log",
        || Some("/var/log/pgbackrest".into()),
        AbsPath::parse,
    );
    let owner_spool = f.parse(
        string(&op.spool),
        "pgbackrest.owner_paths.spool",
        || Some("/var/spool/pgbackrest".into()),
        AbsPath::parse,
    );
    let options = super::options::resolve(f, pb.options.as_ref(), version.unwrap_or(Version(0, 0, 0)));
    let encrypted = options
        .as_ref()
        .is_some_and(|o| o.iter().any(|o| o.key == "repo1-cipher-type" && o.value != "none"));
    let cipher_passphrase_file = match (&pb.cipher_passphrase_file, encrypted) {
        (Some(v), true) => f
            .parse(Some(v), "pgbackrest.cipher_passphrase_file", || None, AbsPath::parse)
            .map(Some),
        (Some(v), false) => {
            let path = f.path("pgbackrest.cipher_passphrase_file");
            f.out.error(
                at(v),
                &path,
                "is given but the repository is not encrypted: set pgbackrest.options.repo1-cipher-type: aes-256-cbc, or remove it",
            );
            None
        }
        (None, true) => {
            let path = f.path("pgbackrest.cipher_passphrase_file");
            let where_ = pb.options.as_ref().and_then(at);
            f.out.error(
                where_,
                &path,
                "is required with repo1-cipher-type aes-256-cbc: a root-only file (mode 0600) holding the passphrase, read at apply time; the passphrase never enters the generated tree",
            );
            None
        }
        (None, false) => Some(None),
    };
    PgbackrestPart {
        options,
        cipher_passphrase_file,
        stanza,
        version,
        binary,
        commands,
        repository,
        retention_full,
        start_fast,
        tls_address,
        tls_port,
        tls_directory,
        repository_config,
        database_config,
        backup_user_lock,
        backup_user_log,
        owner_lock,
        owner_log,
        owner_spool,
    }
}

fn resolve_commands(
    f: &mut Fields<'_, '_>,
    value: Option<&S<Vec<S<String>>>>,
    major: Option<PgMajor>,
) -> Option<Vec<Command>> {
    let Some(list) = value else {
        return Some(vec![Command::Check, Command::Backup]);
    };
    if list.value.is_empty() {
        let path = f.path("pgbackrest.commands");
        f.out.error(at(list), &path, "lists no command: allow at least `check`");
        return None;
    }
    let mut commands = Vec::new();
    let mut ok = true;
    for (i, item) in list.value.iter().enumerate() {
        let path = f.path(&format!("pgbackrest.commands[{i}]"));
        match Command::parse(&item.value) {
            Ok(Command::BackupStandby) if major.is_some_and(|m| !m.has_pg_checkpoint_role()) => {
                f.out.error(at(item), &path, format!(
                    "backup-standby needs a superuser on PostgreSQL {} (it runs CHECKPOINT on the standby; the pg_checkpoint role exists from PostgreSQL 15)",
                    major.map(|m| m.get()).unwrap_or(0)
                ));
                ok = false;
            }
            Ok(c) => commands.push(c),
            Err(message) => {
                f.out.error(at(item), &path, message);
                ok = false;
            }
        }
    }
    commands.sort();
    commands.dedup();
    ok.then_some(commands)
}

/// A pgBackRest release number: `2.45`, `2.59.1`. Anything before 2.0 (or `0.0.0`) is
/// no release this tool knows, and is refused rather than taken as "not given".
fn parse_version(text: &str) -> Result<Version, String> {
    let v = Version::parse(text)?;
    if v < Version(2, 0, 0) {
        return Err(format!(
            "`{}` is not a pgBackRest release this tool knows (2.x; the TLS server it needs came in {})",
            crate::policy::names::printable(text),
            Version::TLS_SERVER
        ));
    }
    Ok(v)
}
