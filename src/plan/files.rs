//! The filesystem side of the plan: every path the setup creates or changes, with its
//! owner, group, mode and the reason, and the systemd/tmpfiles entries (facts.md §3, §4).

use super::datadir::Mode;
use super::{SandboxPlan, SystemdPlan};
use crate::policy::Cluster;
use crate::policy::names::AbsPath;
use serde::Serialize;

/// What a planned path is, and so which step makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PathKind {
    /// A directory created or corrected (apply.sh step paths).
    Dir,
    /// Installed from the artifact tree (the plan's installed files).
    File,
    /// The data directory: a tree fixed in place by the data-directory rule.
    Pgdata,
    /// Made on the host by openssl (apply.sh step tls).
    Key,
    Cert,
    /// Written by apply.sh from a root-only file at apply time (the repository's passphrase).
    Secret,
}

#[derive(Debug, Clone, Serialize)]
pub struct PathEntry {
    pub path: String,
    pub kind: PathKind,
    pub owner: String,
    pub group: String,
    /// Rendered with four octal digits.
    pub mode: Mode,
    /// What the backup user may do here, for the change ticket.
    pub backup_user_access: &'static str,
    /// The pgBackRest option that names this path, if any.
    pub setting: &'static str,
    pub reason: String,
}

/// `owner` is (user, group).
fn entry(
    path: &AbsPath,
    kind: PathKind,
    owner: (&str, &str),
    mode: u32,
    access: &'static str,
    setting: &'static str,
    reason: impl Into<String>,
) -> PathEntry {
    PathEntry {
        path: path.to_string(),
        kind,
        owner: owner.0.to_owned(),
        group: owner.1.to_owned(),
        mode: Mode(mode),
        backup_user_access: access,
        setting,
        reason: reason.into(),
    }
}

fn parent(path: &AbsPath) -> Option<AbsPath> {
    path.ancestors().into_iter().next()
}

pub fn paths(c: &Cluster, s3: Option<&super::repository::S3Plan>) -> Vec<PathEntry> {
    let owner = c.postgres.owner.as_str();
    let group = c.postgres.group.as_str();
    let bu = c.backup_user.name.as_str();
    let bg = c.backup_user.group.as_str();
    let pb = &c.pgbackrest;
    let tls = &pb.tls_directory;
    let mut out = vec![
        entry(
            &c.postgres.data_directory,
            PathKind::Pgdata,
            (owner, group),
            0o750,
            "read only",
            "pg1-path",
            "group read (files 0640, directories 0750) lets the backup user copy the cluster; no group write, nothing for others. PostgreSQL keeps this mode for new files only when it starts with the directory at 0750",
        ),
        entry(
            &c.backup_user.home,
            PathKind::Dir,
            (bu, bg),
            0o750,
            "read and write",
            "",
            "the backup user's home (its shell history and, for scram-sha-256, its .pgpass)",
        ),
        entry(
            &pb.repository,
            PathKind::Dir,
            (bu, bg),
            0o750,
            "read and write",
            "repo1-path",
            "the backup user owns the whole repository: archive-push (as the cluster owner) reaches it only through the TLS server, because two OS users cannot share one repository ([041] archive.info … Permission denied)",
        ),
        entry(
            &pb.backup_user_lock,
            PathKind::Dir,
            (bu, bg),
            0o750,
            "read and write",
            "lock-path",
            "the backup user's own lock directory; a shared one blocks whichever user came second ([050] unable to acquire lock)",
        ),
        entry(
            &pb.backup_user_log,
            PathKind::Dir,
            (bu, bg),
            0o750,
            "read and write",
            "log-path",
            "the backup user's own log directory",
        ),
        entry(
            &pb.owner_lock,
            PathKind::Dir,
            (owner, group),
            0o750,
            "none",
            "lock-path",
            "the cluster owner's lock directory (archive-push, stanza-create)",
        ),
        entry(
            &pb.owner_log,
            PathKind::Dir,
            (owner, group),
            0o750,
            "none",
            "log-path",
            "the cluster owner's log directory",
        ),
        entry(
            &pb.owner_spool,
            PathKind::Dir,
            (owner, group),
            0o750,
            "none",
            "spool-path",
            "asynchronous archiving spool; belongs to the cluster owner, the backup user needs nothing here",
        ),
    ];
    let mut config_dirs: Vec<AbsPath> = [&pb.repository_config, &pb.database_config]
        .into_iter()
        .filter_map(parent)
        .collect();
    config_dirs.dedup();
    if let Some(s3) = s3 {
        // A bucket: no repository directory and no TLS material on this host. Each key
        // lives in an include file only its user can read, in a directory root alone
        // writes (apply.sh step s3-keys, from the root-only source files).
        out.retain(|p| p.path != pb.repository.as_str());
        for dir in &config_dirs {
            out.push(entry(
                dir,
                PathKind::Dir,
                ("root", "root"),
                0o755,
                "read only",
                "",
                "configuration directory, writable by root only",
            ));
        }
        out.push(entry(
            &pb.repository_config,
            PathKind::File,
            ("root", bg),
            0o640,
            "read only",
            "--config",
            "backup-side configuration (repo1-type=s3, no key): read by the backup user, written by root only",
        ));
        out.push(entry(&pb.database_config, PathKind::File, ("root", group), 0o640, "none", "--config", "database-side configuration (repo1-type=s3, no key): read by the cluster owner (archive_command, archive-get, restore)"));
        let abs = |p: &str| AbsPath::parse(p).expect("planned from validated paths");
        for (dir, file, user, ugroup, access, who) in [
            (
                &s3.database_key_dir,
                &s3.database_key_file,
                owner,
                group,
                "none",
                "the database-side key (list, read, add WAL; delete nothing), read only by the cluster owner",
            ),
            (
                &s3.backup_key_dir,
                &s3.backup_key_file,
                bu,
                bg,
                "read only",
                "the backup-side key (read, write, delete under the stanza; never a version), read only by the backup user",
            ),
        ] {
            out.push(entry(
                &abs(dir),
                PathKind::Dir,
                ("root", "root"),
                0o755,
                "read only",
                "--config-include-path",
                "include directory of one side's key: root's alone, so nobody can plant or swap a file in it",
            ));
            out.push(entry(
                &abs(file),
                PathKind::Key,
                (user, ugroup),
                0o600,
                access,
                "repo1-s3-key, repo1-s3-key-secret",
                who,
            ));
        }
        return out;
    }
    for dir in &config_dirs {
        out.push(entry(
            dir,
            PathKind::Dir,
            ("root", "root"),
            0o755,
            "read only",
            "",
            "configuration directory, writable by root only",
        ));
    }
    out.push(entry(
        &pb.repository_config,
        PathKind::File,
        ("root", bg),
        0o640,
        "read only",
        "--config",
        "repository-side configuration: read by the backup user and its TLS server, written by root only",
    ));
    out.push(entry(
        &pb.database_config,
        PathKind::File,
        ("root", group),
        0o640,
        "none",
        "--config",
        "database-side configuration: read by the cluster owner (archive_command, stanza-create, restore)",
    ));
    if let Some(cipher) = super::pgbackrest::cipher_plan(c) {
        let dir = AbsPath::parse(&cipher.include_path).expect("a planned path");
        out.push(entry(
            &dir,
            PathKind::Dir,
            ("root", bg),
            0o750,
            "read only",
            "--config-include-path, repo1-host-config-include-path",
            "holds the repository's passphrase for pgBackRest; the backup user reads it, nobody else",
        ));
        out.push(entry(
            &dir.join("cipher.conf"),
            PathKind::Secret,
            ("root", bg),
            0o640,
            "read only",
            "repo1-cipher-pass",
            format!(
                "the repository's passphrase, written by apply.sh from {} (root's); never in the artifact tree",
                cipher.passphrase_file
            ),
        ));
    }
    out.push(entry(
        tls,
        PathKind::Dir,
        ("root", "root"),
        0o755,
        "read only",
        "",
        "TLS material made on this host at apply time; never in the artifact tree",
    ));
    out.push(entry(
        &tls.join("ca.key"),
        PathKind::Key,
        ("root", "root"),
        0o600,
        "none",
        "",
        "the CA key signs the two certificates; only root reads it",
    ));
    out.push(entry(
        &tls.join("ca.crt"),
        PathKind::Cert,
        ("root", "root"),
        0o644,
        "read only",
        "tls-server-ca-file, repo1-host-ca-file",
        "the CA both sides trust",
    ));
    out.push(entry(
        &tls.join("server.key"),
        PathKind::Key,
        (bu, bg),
        0o600,
        "read only",
        "tls-server-key-file",
        "the TLS server's key, read only by the backup user (pgBackRest refuses keys with group or other bits)",
    ));
    out.push(entry(
        &tls.join("server.crt"),
        PathKind::Cert,
        (bu, bg),
        0o644,
        "read only",
        "tls-server-cert-file",
        "the TLS server's certificate",
    ));
    out.push(entry(
        &tls.join("client.key"),
        PathKind::Key,
        (owner, group),
        0o600,
        "none",
        "repo1-host-key-file",
        "the cluster owner's client key, read only by the cluster owner",
    ));
    out.push(entry(
        &tls.join("client.crt"),
        PathKind::Cert,
        (owner, group),
        0o644,
        "none",
        "repo1-host-cert-file",
        "the cluster owner's client certificate; its CN is what tls-server-auth allows",
    ));
    out
}

/// The TLS server's unit, and one tmpfiles.d `d` line for every planned directory under
/// `/run` (a tmpfs emptied at boot: the lock directories by default), so that each is
/// recreated at boot with its owner and mode before anyone else can claim the name.
pub fn systemd_plan(c: &Cluster, paths: &[PathEntry], sandbox: SandboxPlan) -> SystemdPlan {
    let unit_name = format!("pgbr-tls-{}.service", c.name);
    let tmpfiles = paths
        .iter()
        .filter(|p| p.kind == PathKind::Dir)
        .filter(|p| AbsPath::parse(&p.path).is_ok_and(|p| p.is_volatile()))
        .map(|p| PathEntry {
            backup_user_access: "",
            reason: "recreated at boot with the right owner before anyone else can claim the name".into(),
            ..p.clone()
        })
        .collect();
    SystemdPlan {
        unit_path: format!("/etc/systemd/system/{unit_name}"),
        unit_name,
        tmpfiles_path: format!("/etc/tmpfiles.d/pgbr-{}.conf", c.name),
        tmpfiles,
        sandbox,
    }
}
