//! The two pgBackRest configuration files, the TLS server between them, and
//! archive_command (facts.md §3): the repository side is read by the backup user and
//! its TLS server; the database side by the cluster owner, who reaches the repository
//! only through that server.

use super::TlsPlan;
use super::repository::S3Plan;
use crate::catalog::{Command, Version};
use crate::policy::Cluster;
use crate::policy::model::OptionSide;
use serde::Serialize;

/// One pgBackRest configuration file: where it is installed, for whom, and its sections
/// with their options in order, written by `render::structured::ini`.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigFile {
    pub path: String,
    pub owner: String,
    pub group: String,
    pub mode: &'static str,
    /// Who reads it, for the header comment.
    pub reader: String,
    pub sections: Vec<ConfigSection>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConfigSection {
    pub name: String,
    pub options: Vec<ConfigOption>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConfigOption {
    /// An option name of pgBackRest's: a constant of this module, or `pgN-…` built for
    /// the N-th member of a repository-host cluster.
    pub key: std::borrow::Cow<'static, str>,
    pub value: String,
}

/// The repository's encryption: the passphrase file the policy names (root's, read by
/// apply.sh), and the root-only directory where apply.sh writes it for pgBackRest as an
/// ini file that the repository side loads with `--config-include-path` (the database
/// side's remote gets it through `repo1-host-config-include-path`, and its client asks
/// the remote for it: the cluster owner never reads the file).
#[derive(Debug, Clone, Serialize)]
pub struct CipherPlan {
    pub passphrase_file: String,
    pub include_path: String,
    pub secret_file: String,
}

pub fn cipher_plan(c: &Cluster) -> Option<CipherPlan> {
    let file = c.pgbackrest.cipher_passphrase_file.as_ref()?;
    let dir = c.pgbackrest.repository_config.directory().join("cipher.d");
    Some(CipherPlan {
        passphrase_file: file.to_string(),
        secret_file: dir.join("cipher.conf").to_string(),
        include_path: dir.to_string(),
    })
}

/// The pass-through options for one side, after the planned ones; a pass-through option
/// replaces a planned default of the same name (log-level-file).
fn with_options(mut planned: Vec<ConfigOption>, c: &Cluster, side: OptionSide) -> Vec<ConfigOption> {
    let chosen: Vec<ConfigOption> = c
        .pgbackrest
        .options
        .iter()
        .filter(|o| o.side == side || o.side == OptionSide::Both)
        .map(|o| opt(o.key, &o.value))
        .collect();
    planned.retain(|p| !chosen.iter().any(|o| o.key == p.key));
    planned.extend(chosen);
    planned
}

pub(crate) fn opt(key: impl Into<std::borrow::Cow<'static, str>>, value: impl ToString) -> ConfigOption {
    ConfigOption {
        key: key.into(),
        value: value.to_string(),
    }
}

pub fn tls_plan(c: &Cluster) -> TlsPlan {
    let dir = &c.pgbackrest.tls_directory;
    // pgBackRest before 2.53 verifies the server certificate against a DNS name only:
    // a loopback listener is then reached by the name `localhost`, for which the server
    // certificate is issued (validation refuses another IP address for those releases).
    // From 2.53 (IP subject-alternative names) an IP address is reached as it is, which
    // does not depend on what `localhost` resolves to. A version not given counts as old.
    let address = &c.pgbackrest.tls_address;
    let ip_san = c.pgbackrest.version.is_some_and(|v| v >= Version::IP_SAN);
    let connect_host = match address.ip() {
        Some(_) if ip_san => address.to_string(),
        _ if address.is_loopback() => "localhost".to_owned(),
        _ => address.to_string(),
    };
    // The certificate names what the client connects to, and the listening address too
    // when it is an IP (harmless to releases that ignore it).
    let mut server_san = match address.ip() {
        Some(_) if ip_san => Vec::new(),
        _ => vec![format!("DNS:{connect_host}")],
    };
    if let Some(ip) = address.ip() {
        server_san.push(format!("IP:{ip}"));
    }
    TlsPlan {
        address: c.pgbackrest.tls_address.to_string(),
        server_cn: connect_host.clone(),
        server_san: server_san.join(","),
        connect_host,
        port: c.pgbackrest.tls_port,
        directory: dir.to_string(),
        ca_cert: dir.join("ca.crt").to_string(),
        ca_key: dir.join("ca.key").to_string(),
        server_cert: dir.join("server.crt").to_string(),
        server_key: dir.join("server.key").to_string(),
        client_cert: dir.join("client.crt").to_string(),
        client_key: dir.join("client.key").to_string(),
        client_cn: format!("pgbr-{}-{}", c.name, c.postgres.owner),
    }
}

pub(crate) fn pg_options(c: &Cluster, with_user: bool) -> Vec<ConfigOption> {
    let mut options = vec![
        opt("pg1-path", &c.postgres.data_directory),
        opt("pg1-socket-path", &c.postgres.socket_directory),
        opt("pg1-port", c.postgres.port),
    ];
    if with_user {
        options.push(opt("pg1-user", &c.role.name));
        options.push(opt("pg1-database", &c.role.database));
    }
    options
}

/// `repo1-type=s3` and the rest, the same on both sides (facts.md §9): they differ only
/// in the key, which apply.sh writes into each side's include directory.
fn s3_options(s3: &S3Plan) -> Vec<ConfigOption> {
    // `host:port` without a scheme: the port goes to repo1-storage-port, which every
    // version reads (a URL with a scheme is read whole, from pgBackRest 2.58).
    let (endpoint, port) = match s3.endpoint.rsplit_once(':') {
        Some((host, port)) if !s3.endpoint.contains("://") => (host, Some(port)),
        _ => (s3.endpoint.as_str(), None),
    };
    let mut options = vec![
        opt("repo1-type", "s3"),
        opt("repo1-path", &s3.path),
        opt("repo1-s3-bucket", &s3.bucket),
        opt("repo1-s3-endpoint", endpoint),
        opt("repo1-s3-region", &s3.region),
        opt("repo1-s3-uri-style", s3.uri_style),
    ];
    if let Some(port) = port {
        options.push(opt("repo1-storage-port", port));
    }
    if !s3.ca_file.is_empty() {
        options.push(opt("repo1-storage-ca-file", &s3.ca_file));
    }
    options
}

pub fn repository_config(c: &Cluster, tls: &TlsPlan, s3: Option<&S3Plan>) -> ConfigFile {
    let pb = &c.pgbackrest;
    let mut global = match s3 {
        Some(s3) => s3_options(s3),
        None => vec![opt("repo1-path", &pb.repository)],
    };
    global.extend([
        opt("repo1-retention-full", pb.retention_full),
        opt("lock-path", &pb.backup_user_lock),
        opt("log-path", &pb.backup_user_log),
        opt("log-level-file", "info"),
        opt("start-fast", if pb.start_fast { "y" } else { "n" }),
    ]);
    if pb.commands.contains(&Command::BackupStandby) {
        global.push(opt("backup-standby", "y"));
    }
    let reader = match s3 {
        Some(s3) => format!(
            "the backup user `{}` (stanza-create, check, backup, expire), with the backup-side key from {}",
            c.backup_user.name, s3.backup_key_dir
        ),
        None => format!("the backup user `{}` and its TLS server", c.backup_user.name),
    };
    if s3.is_none() {
        global.extend([
            opt("tls-server-address", &tls.address),
            opt("tls-server-port", tls.port),
            opt("tls-server-ca-file", &tls.ca_cert),
            opt("tls-server-cert-file", &tls.server_cert),
            opt("tls-server-key-file", &tls.server_key),
            opt("tls-server-auth", format!("{}={}", tls.client_cn, pb.stanza)),
        ]);
    }
    let global = with_options(global, c, OptionSide::Repository);
    ConfigFile {
        path: pb.repository_config.to_string(),
        owner: "root".into(),
        group: c.backup_user.group.to_string(),
        mode: "0640",
        reader,
        sections: vec![
            ConfigSection {
                name: "global".into(),
                options: global,
            },
            ConfigSection {
                name: pb.stanza.to_string(),
                options: pg_options(c, true),
            },
        ],
    }
}

pub fn database_config(c: &Cluster, tls: &TlsPlan, s3: Option<&S3Plan>) -> ConfigFile {
    let pb = &c.pgbackrest;
    let mut global = match s3 {
        Some(s3) => s3_options(s3),
        None => vec![
            opt("repo1-host", &tls.connect_host),
            opt("repo1-host-type", "tls"),
            opt("repo1-host-port", tls.port),
            opt("repo1-host-ca-file", &tls.ca_cert),
            opt("repo1-host-cert-file", &tls.client_cert),
            opt("repo1-host-key-file", &tls.client_key),
            opt("repo1-host-config", &pb.repository_config),
        ],
    };
    global.extend([
        opt("lock-path", &pb.owner_lock),
        opt("log-path", &pb.owner_log),
        opt("spool-path", &pb.owner_spool),
        opt("log-level-file", "info"),
    ]);
    // The passphrase reaches the owner's pgBackRest through the TLS server's remote
    // (validation refuses a cipher with an s3 repository).
    if let (Some(cipher), None) = (cipher_plan(c), s3) {
        global.insert(7, opt("repo1-host-config-include-path", cipher.include_path));
    }
    let global = with_options(global, c, OptionSide::Database);
    // No pg1-user here: the cluster owner connects as itself, by peer.
    ConfigFile {
        path: pb.database_config.to_string(),
        owner: "root".into(),
        group: c.postgres.group.to_string(),
        mode: "0640",
        reader: match s3 {
            Some(s3) => format!(
                "the cluster owner `{}` (archive_command, archive-get, restore), with the database-side key from {}",
                c.postgres.owner, s3.database_key_dir
            ),
            None => format!(
                "the cluster owner `{}` (archive_command, stanza-create, restore)",
                c.postgres.owner
            ),
        },
        sections: vec![
            ConfigSection {
                name: "global".into(),
                options: global,
            },
            ConfigSection {
                name: pb.stanza.to_string(),
                options: pg_options(c, false),
            },
        ],
    }
}

/// archive_command runs through /bin/sh with `%p` expanded by PostgreSQL. Paths and the
/// stanza are validated to an allowlist without `%`, spaces or quotes, so this needs no
/// quoting of its own; it is then written as an SQL literal.
pub fn archive_command(c: &Cluster, s3: Option<&S3Plan>) -> String {
    format!(
        "{} {} --stanza={} archive-push %p",
        c.pgbackrest.binary,
        config_args(
            c.pgbackrest.database_config.as_str(),
            s3.map(|s| s.database_key_dir.as_str())
        ),
        c.pgbackrest.stanza
    )
}

/// `--config=FILE`, plus `--config-include-path=DIR` where the side's key is (an explicit
/// --config alone makes pgBackRest skip every include directory).
pub fn config_args(config: &str, key_dir: Option<&str>) -> String {
    match key_dir {
        Some(dir) => format!("--config={config} --config-include-path={dir}"),
        None => format!("--config={config}"),
    }
}

/// restore_command for a member of a repository-host cluster: archive-get from the one
/// repository through its TLS server (`%p` quoted as PostgreSQL's documentation does).
pub fn restore_command(c: &Cluster) -> String {
    format!(
        "{} --config={} --stanza={} archive-get %f \"%p\"",
        c.pgbackrest.binary, c.pgbackrest.database_config, c.pgbackrest.stanza
    )
}
