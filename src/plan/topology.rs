//! A dedicated repository host shared by every member of a cluster (issue 14): pgBackRest's
//! own dedicated-host design with TLS both ways and least privilege on each host.
//!
//! - The repository host: its backup user owns the repository and runs `pgbackrest server`
//!   (archive-push, archive-get, restore from the database hosts; `tls-server-auth` names
//!   every member's client certificate); backup, expire and check run there, and its
//!   configuration lists every member (`pg1-host`, `pg2-host`, … with `pgN-host-type=tls`)
//!   so a backup finds the primary by itself.
//! - Each database host: the backup user (in the cluster owner's group, PGDATA read-only)
//!   runs `pgbackrest server` so that the repository host's backup reads PGDATA and
//!   connects with the least-privilege role over the local socket; the cluster owner keeps
//!   only a client certificate for archive-push, archive-get and restore (`repo1-host`).
//! - Certificates: every key is made on its host; each host sends certificate requests
//!   to the site CA (`ca/sign.sh`), which names and signs from the plan, never from the
//!   request.
//!
//! Every host gets a view: a [`ClusterPlan`] whose host-varying fields (paths, installed
//! files, configurations, TLS, systemd) are that host's, rendered by the same templates
//! into `DIR/<cluster>/hosts/<host>/`.

use super::files;
use super::host;
use super::pgbackrest::{ConfigFile, ConfigOption, ConfigSection, opt, pg_options};
use super::sandbox;
use super::{ClusterPlan, PathKind};
use crate::catalog::Command;
use crate::policy::names::AbsPath;
use crate::policy::{Cluster, Member, Topology};
use serde::Serialize;

/// Which host a view is for.
#[derive(Debug, Clone, Serialize)]
pub struct HostView {
    pub name: String,
    /// `repository` or `database`.
    pub role: &'static str,
    pub address: String,
    pub tls_port: u16,
    /// The member's `pgN` index on the repository host (1-based); 0 for the repository host.
    pub index: usize,
    /// Where this host's artifacts are, relative to the output directory's cluster
    /// directory (`hosts/<name>`).
    pub directory: String,
}

/// The whole topology, for the change ticket, the CA script and every view.
#[derive(Debug, Clone, Serialize)]
pub struct TopologyPlan {
    pub repository: RepositoryHostPlan,
    pub members: Vec<MemberPlan>,
    /// Every certificate the CA signs, with the name and uses the plan gives it.
    pub certificates: Vec<CertificatePlan>,
    pub ca_directory: String,
    pub ca_cert: String,
    pub ca_key: String,
    /// The TLS directory (the same path on every host).
    pub tls_directory: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RepositoryHostPlan {
    pub name: String,
    pub host: String,
    pub address: String,
    pub tls_port: u16,
    pub path: String,
    pub backup_user: String,
    pub backup_group: String,
    pub config: String,
    pub server_cn: String,
    pub client_cn: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemberPlan {
    pub name: String,
    pub address: String,
    pub tls_port: u16,
    pub index: usize,
    pub server_cn: String,
    pub client_cn: String,
}

/// One certificate the site CA signs.
#[derive(Debug, Clone, Serialize)]
pub struct CertificatePlan {
    pub host: String,
    /// `server` (its host's TLS server) or `client` (the TLS client of its host).
    pub kind: &'static str,
    pub cn: String,
    /// subjectAltName, decided here (the CA never copies it from the request).
    pub san: String,
    /// extendedKeyUsage.
    pub usage: &'static str,
    /// The request and the certificate in the host's TLS directory.
    pub csr: String,
    pub cert: String,
    /// Who owns the key and the certificate on that host.
    pub owner: String,
    pub group: String,
    pub key: String,
}

fn server_conf_path(c: &Cluster) -> AbsPath {
    c.pgbackrest.database_config.directory().join("server.conf")
}

fn san(address: &str) -> String {
    if address.parse::<std::net::IpAddr>().is_ok() {
        format!("IP:{address}")
    } else {
        format!("DNS:{address}")
    }
}

fn repository_client_cn(c: &Cluster, t: &Topology) -> String {
    format!(
        "pgbr-{}-{}-{}",
        c.name, t.repository.host, t.repository.backup_user.name
    )
}

fn member_client_cn(c: &Cluster, m: &Member) -> String {
    format!("pgbr-{}-{}-{}", c.name, m.name, c.postgres.owner)
}

fn topology_plan(c: &Cluster, t: &Topology) -> TopologyPlan {
    let tls = &c.pgbackrest.tls_directory;
    let ca = &t.repository.ca_directory;
    let r = &t.repository;
    let cert = |host: &str, kind: &'static str, cn: String, san: String, owner: &str, group: &str| {
        let usage = if kind == "server" { "serverAuth" } else { "clientAuth" };
        CertificatePlan {
            host: host.to_owned(),
            kind,
            cn,
            san,
            usage,
            csr: tls.join(&format!("{kind}.csr")).to_string(),
            cert: tls.join(&format!("{kind}.crt")).to_string(),
            key: tls.join(&format!("{kind}.key")).to_string(),
            owner: owner.to_owned(),
            group: group.to_owned(),
        }
    };
    let rbu = (r.backup_user.name.as_str(), r.backup_user.group.as_str());
    let mut certificates = vec![
        cert(
            r.host.as_str(),
            "server",
            r.address.to_string(),
            san(r.address.as_str()),
            rbu.0,
            rbu.1,
        ),
        cert(
            r.host.as_str(),
            "client",
            repository_client_cn(c, t),
            format!("DNS:{}", repository_client_cn(c, t)),
            rbu.0,
            rbu.1,
        ),
    ];
    for m in &t.members {
        certificates.push(cert(
            m.name.as_str(),
            "server",
            m.address.to_string(),
            san(m.address.as_str()),
            c.backup_user.name.as_str(),
            c.backup_user.group.as_str(),
        ));
        certificates.push(cert(
            m.name.as_str(),
            "client",
            member_client_cn(c, m),
            format!("DNS:{}", member_client_cn(c, m)),
            c.postgres.owner.as_str(),
            c.postgres.group.as_str(),
        ));
    }
    TopologyPlan {
        repository: RepositoryHostPlan {
            name: r.name.to_string(),
            host: r.host.to_string(),
            address: r.address.to_string(),
            tls_port: r.tls_port,
            path: r.path.to_string(),
            backup_user: r.backup_user.name.to_string(),
            backup_group: r.backup_user.group.to_string(),
            config: c.pgbackrest.repository_config.to_string(),
            server_cn: r.address.to_string(),
            client_cn: repository_client_cn(c, t),
        },
        members: t
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| MemberPlan {
                name: m.name.to_string(),
                address: m.address.to_string(),
                tls_port: m.tls_port,
                index: i + 1,
                server_cn: m.address.to_string(),
                client_cn: member_client_cn(c, m),
            })
            .collect(),
        certificates,
        ca_directory: ca.to_string(),
        ca_cert: ca.join("ca.crt").to_string(),
        ca_key: ca.join("ca.key").to_string(),
        tls_directory: tls.to_string(),
    }
}

/// The cluster-level plan (the first member's view, with every host's view in `hosts`).
pub fn plan(c: &Cluster, t: &Topology) -> ClusterPlan {
    let tp = topology_plan(c, t);
    let mut hosts = vec![repository_view(c, t, &tp)];
    for (i, m) in t.members.iter().enumerate() {
        hosts.push(member_view(c, t, &tp, i, m));
    }
    // Scheduled backups would run on the repository host: not planned for this
    // topology yet (validation warns), so no host gets units or timers to check.
    for view in &mut hosts {
        without_schedule(view);
    }
    let mut top = hosts[1].clone();
    top.host = None;
    top.host_role = "cluster";
    top.hosts = hosts;
    top
}

fn without_schedule(view: &mut ClusterPlan) {
    view.schedule.jobs.clear();
    view.schedule.retired_units.clear();
    view.job_full = None;
    view.job_diff = None;
    view.job_incr = None;
    view.job_verify = None;
}

/// Keeps the paths whose path is not in `drop`.
fn without(paths: &mut Vec<super::PathEntry>, drop: &[String]) {
    paths.retain(|p| !drop.contains(&p.path));
}

/// Systemd plan, installed files and names again, after the view changed its paths.
fn refresh(view: &mut ClusterPlan, c: &Cluster, on_database_host: bool, repository_config: &str) {
    let sandbox = sandbox::plan(c, &view.tls, on_database_host);
    view.systemd = files::systemd_plan(c, &view.paths, sandbox);
    view.files.repository_config = repository_config.to_owned();
    let mut installed = host::installed_files(
        &view.files,
        &view.repository_config.path,
        &view.database_config.path,
        &view.repository_config.group,
        c.postgres.group.as_str(),
        &view.systemd,
        view.patroni.as_ref(),
    );
    if !on_database_host {
        let db = view.files.database_config.clone();
        installed.retain(|f| f.source != db);
    }
    view.installed_files = installed;
}

fn repository_view(c: &Cluster, t: &Topology, tp: &TopologyPlan) -> ClusterPlan {
    let r = &t.repository;
    let mut rc = c.clone();
    rc.backup_user = r.backup_user.clone();
    rc.pgbackrest.repository = r.path.clone();
    rc.pgbackrest.backup_user_lock = r.lock.clone();
    rc.pgbackrest.backup_user_log = r.log.clone();
    rc.pgbackrest.tls_address = r.address.clone();
    rc.pgbackrest.tls_port = r.tls_port;
    rc.patroni = None;
    let mut v = super::plan_cluster(&rc);
    let pb = &rc.pgbackrest;
    let tls = &pb.tls_directory;
    // No PostgreSQL here: no data directory, no cluster-owner paths, no database side,
    // no CA key (the CA lives in its own directory: ca/sign.sh).
    let mut drop = vec![
        c.postgres.data_directory.to_string(),
        pb.owner_lock.to_string(),
        pb.owner_log.to_string(),
        pb.owner_spool.to_string(),
        pb.database_config.to_string(),
        tls.join("ca.key").to_string(),
    ];
    let repo_dir = pb
        .repository_config
        .ancestors()
        .into_iter()
        .next()
        .map(|d| d.to_string());
    if let Some(db_dir) = pb.database_config.ancestors().into_iter().next()
        && Some(db_dir.to_string()) != repo_dir
    {
        drop.push(db_dir.to_string());
    }
    without(&mut v.paths, &drop);
    for p in &mut v.paths {
        if p.kind == PathKind::Key || p.kind == PathKind::Cert {
            if p.path == tls.join("client.key").to_string() || p.path == tls.join("client.crt").to_string() {
                p.owner = r.backup_user.name.to_string();
                p.group = r.backup_user.group.to_string();
                p.backup_user_access = "read only";
                p.setting = if p.kind == PathKind::Key {
                    "pgN-host-key-file"
                } else {
                    "pgN-host-cert-file"
                };
                p.reason = "the repository host's client certificate for the database hosts' TLS servers (backup, check, stanza-create); key made here, certificate signed by the site CA".into();
            } else if p.path == tls.join("ca.crt").to_string() {
                p.setting = "tls-server-ca-file, pgN-host-ca-file";
                p.reason = "the site CA's certificate (copied here from the CA host; its key never is)".into();
            }
        }
        if p.path == pb.repository.to_string() {
            p.reason = "the repository: owned by the repository host's backup user alone; the database hosts reach it only through its TLS server".into();
        }
    }
    v.search_paths = Vec::new();
    v.restart_reasons = Vec::new();
    v.repository_config = repository_host_config(c, t, tp);
    v.database_config = ConfigFile {
        path: String::new(),
        owner: "root".into(),
        group: "root".into(),
        mode: "0640",
        reader: String::new(),
        sections: Vec::new(),
    };
    v.tls.client_cn = tp.repository.client_cn.clone();
    v.tls.server_cn = r.address.to_string();
    v.tls.connect_host = r.address.to_string();
    v.archive.restore_command = String::new();
    refresh(&mut v, &rc, false, "pgbackrest/repository.conf");
    v.host = Some(HostView {
        name: r.host.to_string(),
        role: "repository",
        address: r.address.to_string(),
        tls_port: r.tls_port,
        index: 0,
        directory: format!("hosts/{}", r.host),
    });
    v.host_role = "repository";
    v.topology = Some(tp.clone());
    v
}

fn member_view(c: &Cluster, t: &Topology, tp: &TopologyPlan, i: usize, m: &Member) -> ClusterPlan {
    let mut mc = c.clone();
    mc.pgbackrest.tls_address = m.address.clone();
    mc.pgbackrest.tls_port = m.tls_port;
    mc.pgbackrest.repository_config = server_conf_path(c);
    mc.topology = None;
    let mut v = super::plan_cluster(&mc);
    let pb = &mc.pgbackrest;
    let tls = &pb.tls_directory;
    without(
        &mut v.paths,
        &[pb.repository.to_string(), tls.join("ca.key").to_string()],
    );
    for p in &mut v.paths {
        if p.path == pb.repository_config.to_string() {
            p.reason = "the backup user's configuration on this database host: its TLS server (which the repository host's backup reaches) and what that backup loads here (pg1-host-config)".into();
        } else if p.path == tls.join("ca.crt").to_string() {
            p.setting = "tls-server-ca-file, repo1-host-ca-file";
            p.reason = "the site CA's certificate (copied here from the CA host; its key never is)".into();
        } else if p.path == tls.join("server.key").to_string() {
            p.reason = "this host's TLS server key (the backup user's), made here; the repository host's client reaches PGDATA through that server".into();
        } else if p.path == tls.join("client.key").to_string() {
            p.reason = "the cluster owner's client key for the repository host's TLS server (archive-push, archive-get, restore), made here".into();
        }
    }
    v.repository = String::new();
    v.archive.restore_command = super::pgbackrest::restore_command(c);
    v.repository_config = member_server_config(c, t, &mc, tp);
    v.database_config = member_database_config(c, t, &mc);
    v.tls.client_cn = tp.members[i].client_cn.clone();
    v.tls.server_cn = m.address.to_string();
    v.tls.connect_host = m.address.to_string();
    refresh(&mut v, &mc, true, "pgbackrest/server.conf");
    v.host = Some(HostView {
        name: m.name.to_string(),
        role: "database",
        address: m.address.to_string(),
        tls_port: m.tls_port,
        index: i + 1,
        directory: format!("hosts/{}", m.name),
    });
    v.host_role = "database";
    v.topology = Some(tp.clone());
    v
}

fn tls_server_options(tls_dir: &AbsPath, address: &str, port: u16) -> Vec<ConfigOption> {
    vec![
        opt("tls-server-address", address),
        opt("tls-server-port", port),
        opt("tls-server-ca-file", tls_dir.join("ca.crt")),
        opt("tls-server-cert-file", tls_dir.join("server.crt")),
        opt("tls-server-key-file", tls_dir.join("server.key")),
    ]
}

/// The repository host's configuration: the repository, its TLS server (every member's
/// client certificate allowed for the stanza) and every member as `pgN-host`.
fn repository_host_config(c: &Cluster, t: &Topology, tp: &TopologyPlan) -> ConfigFile {
    let pb = &c.pgbackrest;
    let r = &t.repository;
    let tls_dir = &pb.tls_directory;
    let mut global = vec![
        opt("repo1-path", &r.path),
        opt("repo1-retention-full", pb.retention_full),
        opt("lock-path", &r.lock),
        opt("log-path", &r.log),
        opt("log-level-file", "info"),
        opt("start-fast", if pb.start_fast { "y" } else { "n" }),
    ];
    if pb.commands.contains(&Command::BackupStandby) {
        global.push(opt("backup-standby", "y"));
    }
    global.extend(tls_server_options(tls_dir, r.address.as_str(), r.tls_port));
    for m in &tp.members {
        global.push(opt("tls-server-auth", format!("{}={}", m.client_cn, pb.stanza)));
    }
    let mut stanza = Vec::new();
    let server_conf = server_conf_path(c);
    for (i, m) in t.members.iter().enumerate() {
        let n = i + 1;
        let k = |name: &str| format!("pg{n}-{name}");
        stanza.extend([
            opt(k("host"), &m.address),
            opt(k("host-type"), "tls"),
            opt(k("host-port"), m.tls_port),
            opt(k("host-ca-file"), tls_dir.join("ca.crt")),
            opt(k("host-cert-file"), tls_dir.join("client.crt")),
            opt(k("host-key-file"), tls_dir.join("client.key")),
            opt(k("host-config"), &server_conf),
            opt(k("path"), &c.postgres.data_directory),
            opt(k("socket-path"), &c.postgres.socket_directory),
            opt(k("port"), c.postgres.port),
            opt(k("user"), &c.role.name),
            opt(k("database"), &c.role.database),
        ]);
    }
    ConfigFile {
        path: pb.repository_config.to_string(),
        owner: "root".into(),
        group: r.backup_user.group.to_string(),
        mode: "0640",
        reader: format!(
            "the repository host's backup user `{}` (backup, expire, check, stanza-create) and its TLS server",
            r.backup_user.name
        ),
        sections: vec![
            ConfigSection {
                name: "global".into(),
                options: global,
            },
            ConfigSection {
                name: pb.stanza.to_string(),
                options: stanza,
            },
        ],
    }
}

/// A database host's backup-user configuration: its TLS server (the repository host's
/// client certificate allowed for the stanza) and the stanza's pg1 options, which the
/// repository host's backup loads here through `pgN-host-config`.
fn member_server_config(c: &Cluster, _t: &Topology, mc: &Cluster, tp: &TopologyPlan) -> ConfigFile {
    let pb = &mc.pgbackrest;
    let mut global = vec![
        opt("lock-path", &pb.backup_user_lock),
        opt("log-path", &pb.backup_user_log),
        opt("log-level-file", "info"),
    ];
    global.extend(tls_server_options(
        &pb.tls_directory,
        pb.tls_address.as_str(),
        pb.tls_port,
    ));
    global.push(opt(
        "tls-server-auth",
        format!("{}={}", tp.repository.client_cn, pb.stanza),
    ));
    ConfigFile {
        path: pb.repository_config.to_string(),
        owner: "root".into(),
        group: c.backup_user.group.to_string(),
        mode: "0640",
        reader: format!(
            "the backup user `{}` and its TLS server on this database host",
            c.backup_user.name
        ),
        sections: vec![
            ConfigSection {
                name: "global".into(),
                options: global,
            },
            ConfigSection {
                name: pb.stanza.to_string(),
                options: pg_options(mc, true),
            },
        ],
    }
}

/// A database host's cluster-owner configuration: the repository on the repository host,
/// reached through its TLS server with this host's client certificate.
fn member_database_config(c: &Cluster, t: &Topology, mc: &Cluster) -> ConfigFile {
    let pb = &mc.pgbackrest;
    let r = &t.repository;
    let tls_dir = &pb.tls_directory;
    let global = vec![
        opt("repo1-host", &r.address),
        opt("repo1-host-type", "tls"),
        opt("repo1-host-port", r.tls_port),
        opt("repo1-host-ca-file", tls_dir.join("ca.crt")),
        opt("repo1-host-cert-file", tls_dir.join("client.crt")),
        opt("repo1-host-key-file", tls_dir.join("client.key")),
        opt("repo1-host-config", &c.pgbackrest.repository_config),
        opt("lock-path", &pb.owner_lock),
        opt("log-path", &pb.owner_log),
        opt("spool-path", &pb.owner_spool),
        opt("log-level-file", "info"),
    ];
    ConfigFile {
        path: pb.database_config.to_string(),
        owner: "root".into(),
        group: c.postgres.group.to_string(),
        mode: "0640",
        reader: format!(
            "the cluster owner `{}` (archive_command, restore_command, restore)",
            c.postgres.owner
        ),
        sections: vec![
            ConfigSection {
                name: "global".into(),
                options: global,
            },
            ConfigSection {
                name: pb.stanza.to_string(),
                options: pg_options(mc, false),
            },
        ],
    }
}
