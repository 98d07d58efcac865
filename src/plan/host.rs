//! The host procedures' data, decided once and typed: which generated files are installed
//! where (with owner, group, mode and the apply.sh step that installs them), the
//! data-directory rule (its roots and permission bits), and the state directory's file
//! names (apply.sh writes them, rollback.sh reads them, the role and the drift checks
//! know them from here). The shell library (`templates/shell/lib/*.sh`) renders these
//! values; `src/deployed.rs` evaluates the same ones.

use super::patroni::PatroniPlan;
use super::{ArtifactNames, SystemdPlan};
use serde::Serialize;

/// An octal file mode, rendered with four digits ("0640").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode(pub u32);

impl Serialize for Mode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:04o}", self.0))
    }
}

/// Which apply.sh step installs a file (and so which Ansible task runs it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstallStep {
    Configs,
    TlsServer,
    PatroniScripts,
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

/// The data-directory rule (facts.md §4): the backup user reads every entry through the
/// cluster's group and changes none. Applied by the cluster owner (it owns every entry,
/// so a link planted in a tablespace or pg_wal can only point chmod at the owner's own
/// files), checked by verify.sh, the Patroni hook and `check --deployed`.
#[derive(Debug, Clone, Serialize)]
pub struct DataDirRule {
    /// The data directory itself; PostgreSQL takes its group mode at start.
    pub mode: Mode,
    /// Bits every directory needs (group read and search) ...
    pub dir_needs: Mode,
    /// ... and every file (group read).
    pub file_needs: Mode,
    /// Bits no entry may have: group write, anything for others.
    pub forbids: Mode,
    /// More entries than this to fix: one `chmod -R` beats a targeted walk (a first
    /// conversion); fewer: only the entries that need it are touched.
    pub bulk_threshold: u32,
    /// The same bits as chmod arguments, derived here so no target spells them again:
    /// for a directory, a file, a whole tree (`X`: search on directories only), and the
    /// inverse rollback.sh applies (every group bit taken back).
    pub dir_fix: String,
    pub file_fix: String,
    pub tree_fix: String,
    pub revoke: String,
}

pub fn datadir_rule() -> DataDirRule {
    let (dir_needs, file_needs, forbids) = (0o050, 0o040, 0o027);
    let search_only_on_dirs = dir_needs & !file_needs;
    DataDirRule {
        mode: Mode(0o750),
        dir_needs: Mode(dir_needs),
        file_needs: Mode(file_needs),
        forbids: Mode(forbids),
        bulk_threshold: 1000,
        dir_fix: symbolic(dir_needs, forbids, 0),
        file_fix: symbolic(file_needs, forbids, 0),
        tree_fix: symbolic(file_needs, forbids, search_only_on_dirs),
        revoke: symbolic(0, 0o070, 0),
    }
}

/// chmod's symbolic spelling of "add these bits, remove those" ("g+rx,g-w,o-rwx");
/// `capital_x` bits are added as `X` (search on directories only).
fn symbolic(add: u32, remove: u32, capital_x: u32) -> String {
    let mut clauses = Vec::new();
    for (who, shift) in [('u', 6), ('g', 3), ('o', 0)] {
        for (op, bits) in [('+', add | capital_x), ('-', remove)] {
            let mut letters = String::new();
            for (letter, bit) in [('r', 4), ('w', 2), ('x', 1)] {
                if (bits >> shift) & bit != 0 {
                    let big = letter == 'x' && (capital_x >> shift) & bit != 0;
                    letters.push(if big { 'X' } else { letter });
                }
            }
            if !letters.is_empty() {
                clauses.push(format!("{who}{op}{letters}"));
            }
        }
    }
    clauses.join(",")
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
    /// The TLS server started by `apply.sh --start-tls-server`.
    pub tls_server_pid: String,
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
    fn chmod_spellings_follow_the_bits() {
        let r = datadir_rule();
        assert_eq!(r.dir_fix, "g+rx,g-w,o-rwx");
        assert_eq!(r.file_fix, "g+r,g-w,o-rwx");
        assert_eq!(r.tree_fix, "g+rX,g-w,o-rwx");
        assert_eq!(r.revoke, "g-rwx");
    }

    #[test]
    fn the_rule_forbids_what_it_needs_nowhere() {
        let r = datadir_rule();
        assert_eq!(r.dir_needs.0 & r.forbids.0, 0);
        assert_eq!(r.file_needs.0 & r.forbids.0, 0);
        // The data directory's own mode satisfies the rule it sets for directories.
        assert_eq!(r.mode.0 & r.dir_needs.0, r.dir_needs.0);
        assert_eq!(r.mode.0 & r.forbids.0, 0);
    }
}
