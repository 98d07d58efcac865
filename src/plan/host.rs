//! The host procedures' data, decided once and typed: which generated files are installed
//! where (with owner, group, mode and the apply.sh step that installs them) and the
//! state directory's file names (apply.sh writes them, rollback.sh reads them, the role and the drift checks
//! know them from here). The shell library (`templates/shell/lib/*.sh`) renders these
//! values; `src/deployed.rs` evaluates the same ones.

use super::datadir::Mode;
use super::patroni::PatroniPlan;
use super::{ArtifactNames, SystemdPlan};
use serde::Serialize;

/// Which apply.sh step installs a file (and so which Ansible task runs it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstallStep {
    Configs,
    TlsServer,
    PatroniScripts,
    Schedule,
}

/// A generated file installed on the host, byte for byte.
#[derive(Debug, Clone, Serialize)]
pub struct InstalledFile {
    /// Relative to the cluster's directory in the output tree.
    pub source: String,
    /// Absolute path on the host. Its directory is root's alone (validation refuses
    /// anything else; apply.sh checks the real host before writing).
    pub target: String,
    pub owner: String,
    pub group: String,
    pub mode: Mode,
    pub step: InstallStep,
}

/// Every file apply.sh installs from the artifact tree, in the order it installs them.
pub fn installed_files(
    names: &ArtifactNames,
    repository_config: &str,
    database_config: &str,
    backup_group: &str,
    owner_group: &str,
    systemd: &SystemdPlan,
    patroni: Option<&PatroniPlan>,
) -> Vec<InstalledFile> {
    let file = |source: &str, target: &str, group: &str, mode: u32, step| InstalledFile {
        source: source.to_owned(),
        target: target.to_owned(),
        owner: "root".into(),
        group: group.to_owned(),
        mode: Mode(mode),
        step,
    };
    let mut out = Vec::new();
    if let Some(p) = patroni {
        out.push(file(&p.files.hook, &p.hook, "root", 0o755, InstallStep::PatroniScripts));
        out.push(file(
            &p.files.post_bootstrap,
            &p.post_bootstrap,
            "root",
            0o755,
            InstallStep::PatroniScripts,
        ));
        out.push(file(
            &p.files.umask_dropin,
            &p.umask_dropin,
            "root",
            0o644,
            InstallStep::PatroniScripts,
        ));
    }
    out.push(file(
        &names.repository_config,
        repository_config,
        backup_group,
        0o640,
        InstallStep::Configs,
    ));
    out.push(file(
        &names.database_config,
        database_config,
        owner_group,
        0o640,
        InstallStep::Configs,
    ));
    out.push(file(
        &names.unit,
        &systemd.unit_path,
        "root",
        0o644,
        InstallStep::TlsServer,
    ));
    if !systemd.tmpfiles.is_empty() {
        out.push(file(
            &names.tmpfiles,
            &systemd.tmpfiles_path,
            "root",
            0o644,
            InstallStep::TlsServer,
        ));
    }
    out
}

/// The scheduled jobs' units (apply.sh step schedule), after the other installed files.
pub fn schedule_files(schedule: &super::schedule::SchedulePlan) -> Vec<InstalledFile> {
    let mut out = Vec::new();
    for job in &schedule.jobs {
        for (source, name) in [
            (&job.service_file, &job.service_name),
            (&job.timer_file, &job.timer_name),
        ] {
            out.push(InstalledFile {
                source: source.clone(),
                target: format!("/etc/systemd/system/{name}"),
                owner: "root".into(),
                group: "root".into(),
                mode: Mode(0o644),
                step: InstallStep::Schedule,
            });
        }
    }
    out
}

/// The state directory: what apply.sh must remember for rollback.sh, root's alone.
#[derive(Debug, Clone, Serialize)]
pub struct StatePlan {
    pub directory: String,
    /// The data directory's mode before apply.sh changed it.
    pub pgdata_mode_before: String,
    /// Directories apply.sh gave group search (x).
    pub search_added: String,
    /// Present when apply.sh created the backup user.
    pub created_user: String,
    /// pg_hba.conf / pg_ident.conf as they were before the first change (kept once).
    pub hba_orig: String,
    pub ident_orig: String,
    /// ... and before the latest change (restored if validation fails).
    pub hba_before: String,
    pub ident_before: String,
    /// What ALTER SYSTEM held for archive_mode and archive_command.
    pub archive_before: String,
    /// What Patroni's dynamic configuration held for them.
    pub patroni_archive_before: String,
    /// The TLS server started by `apply.sh --start-tls-server`: its pid, what bwrap
    /// reports while it starts it, and its standard error.
    pub tls_server_pid: String,
    pub tls_server_info: String,
    pub tls_server_log: String,
    /// pg_ctl's output when apply.sh restarts PostgreSQL (not in PGDATA: it would be backed up).
    pub restart_log: String,
}

pub fn state_plan(cluster: &str) -> StatePlan {
    let directory = format!("/var/lib/pgbr-policy/{cluster}");
    let at = |name: &str| format!("{directory}/{name}");
    StatePlan {
        pgdata_mode_before: at("pgdata-mode.before"),
        search_added: at("search-added"),
        created_user: at("created-user"),
        hba_orig: at("pg_hba.conf.orig"),
        ident_orig: at("pg_ident.conf.orig"),
        hba_before: at("pg_hba.conf.before"),
        ident_before: at("pg_ident.conf.before"),
        archive_before: at("archive.before"),
        patroni_archive_before: at("patroni-archive.before.json"),
        tls_server_pid: at("tls-server.pid"),
        tls_server_info: at("tls-server.info"),
        tls_server_log: at("tls-server.log"),
        restart_log: at("postgres-restart.log"),
        directory,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_render_as_four_octal_digits() {
        assert_eq!(serde_json::to_string(&Mode(0o750)).unwrap(), "\"0750\"");
        assert_eq!(serde_json::to_string(&Mode(0o27)).unwrap(), "\"0027\"");
    }

    #[test]
    fn state_files_live_in_the_cluster_state_directory() {
        let s = state_plan("c");
        for f in [&s.pgdata_mode_before, &s.hba_before, &s.tls_server_pid, &s.restart_log] {
            assert!(f.starts_with("/var/lib/pgbr-policy/c/"), "{f}");
        }
    }
}
