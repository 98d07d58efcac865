//! The two pgBackRest configuration files, the TLS server between them, and
//! archive_command (facts.md §3): the repository side is read by the backup user and
//! its TLS server; the database side by the cluster owner, who reaches the repository
//! only through that server.

use super::TlsPlan;
use crate::catalog::Command;
use crate::policy::Cluster;
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

pub(crate) fn opt(key: impl Into<std::borrow::Cow<'static, str>>, value: impl ToString) -> ConfigOption {
    ConfigOption {
        key: key.into(),
        value: value.to_string(),
    }
}

pub fn tls_plan(c: &Cluster) -> TlsPlan {
    let dir = &c.pgbackrest.tls_directory;
    // pgBackRest before 2.53 cannot match an IP address against a certificate, so a
    // loopback listener is reached by the name `localhost`, for which the server
    // certificate is issued.
    let connect_host = if c.pgbackrest.tls_address.is_loopback() {
        "localhost".to_owned()
    } else {
        c.pgbackrest.tls_address.to_string()
    };
    TlsPlan {
        address: c.pgbackrest.tls_address.to_string(),
        server_cn: connect_host.clone(),
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

pub fn repository_config(c: &Cluster, tls: &TlsPlan) -> ConfigFile {
    let pb = &c.pgbackrest;
    let mut global = vec![
        opt("repo1-path", &pb.repository),
        opt("repo1-retention-full", pb.retention_full),
        opt("lock-path", &pb.backup_user_lock),
        opt("log-path", &pb.backup_user_log),
        opt("log-level-file", "info"),
        opt("start-fast", if pb.start_fast { "y" } else { "n" }),
    ];
    if pb.commands.contains(&Command::BackupStandby) {
        global.push(opt("backup-standby", "y"));
    }
    global.extend([
        opt("tls-server-address", &tls.address),
        opt("tls-server-port", tls.port),
        opt("tls-server-ca-file", &tls.ca_cert),
        opt("tls-server-cert-file", &tls.server_cert),
        opt("tls-server-key-file", &tls.server_key),
        opt("tls-server-auth", format!("{}={}", tls.client_cn, pb.stanza)),
    ]);
    ConfigFile {
        path: pb.repository_config.to_string(),
        owner: "root".into(),
        group: c.backup_user.group.to_string(),
        mode: "0640",
        reader: format!("the backup user `{}` and its TLS server", c.backup_user.name),
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

pub fn database_config(c: &Cluster, tls: &TlsPlan) -> ConfigFile {
    let pb = &c.pgbackrest;
    let global = vec![
        opt("repo1-host", &tls.connect_host),
        opt("repo1-host-type", "tls"),
        opt("repo1-host-port", tls.port),
        opt("repo1-host-ca-file", &tls.ca_cert),
        opt("repo1-host-cert-file", &tls.client_cert),
        opt("repo1-host-key-file", &tls.client_key),
        opt("repo1-host-config", &pb.repository_config),
        opt("lock-path", &pb.owner_lock),
        opt("log-path", &pb.owner_log),
        opt("spool-path", &pb.owner_spool),
        opt("log-level-file", "info"),
    ];
    // No pg1-user here: the cluster owner connects as itself, by peer.
    ConfigFile {
        path: pb.database_config.to_string(),
        owner: "root".into(),
        group: c.postgres.group.to_string(),
        mode: "0640",
        reader: format!(
            "the cluster owner `{}` (archive_command, stanza-create, restore)",
            c.postgres.owner
        ),
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
pub fn archive_command(c: &Cluster) -> String {
    format!(
        "{} --config={} --stanza={} archive-push %p",
        c.pgbackrest.binary, c.pgbackrest.database_config, c.pgbackrest.stanza
    )
}

/// restore_command for a member of a repository-host cluster: archive-get from the one
/// repository through its TLS server (`%p` quoted as PostgreSQL's documentation does).
pub fn restore_command(c: &Cluster) -> String {
    format!(
        "{} --config={} --stanza={} archive-get %f \"%p\"",
        c.pgbackrest.binary, c.pgbackrest.database_config, c.pgbackrest.stanza
    )
}
