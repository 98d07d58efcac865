//! The Patroni side of the plan (facts.md §5): where the hook and the post-bootstrap
//! script are installed, which callbacks run the hook, the initdb options, the pg_hba and
//! pg_ident lines that follow the role's own, and the umask drop-in for Patroni's unit.
//! The role's own lines are the hba snippet itself, so the two can never disagree.
//!
//! [`Fragment`] and [`DynamicConfig`] are the two YAML files, as typed values that
//! `render::structured` serializes: every name and path in them is a field of this plan,
//! so they cannot disagree with the scripts, the SQL or the pgBackRest files (which read
//! the same fields) however they are spelled.

use super::ClusterPlan;
use super::datadir::Mode;
use super::files::{PathEntry, PathKind};
use crate::catalog::Version;
use crate::policy::{Cluster, Patroni};
use serde::ser::{Serialize, SerializeMap as _, Serializer};

/// Patroni 3.1 creates its files in PGDATA with the data directory's group mode.
const GROUP_AWARE: Version = Version(3, 1, 0);

#[derive(Debug, Clone, serde::Serialize)]
pub struct PatroniPlan {
    /// What `patronictl -c` reads.
    pub config_file: String,
    /// Empty when the policy does not say.
    pub version: String,
    /// True when the version is known to set group read on its own files (3.1+); the
    /// hook is installed either way.
    pub group_aware: bool,
    pub scripts_directory: String,
    /// Installed paths of the two scripts.
    pub hook: String,
    pub post_bootstrap: String,
    pub hook_log: String,
    /// Callbacks that run the hook: Patroni fires on_start after bootstrap and a replica's
    /// first start, only on_restart for `patronictl restart`, on_role_change on
    /// switchover, and on_reload on every dynamic configuration change (which rewrites
    /// patroni.dynamic.json 0600 before 3.1).
    pub callbacks: Vec<&'static str>,
    /// `bootstrap.initdb` options, all fixed keywords.
    pub initdb: Vec<&'static str>,
    pub pg_hba_after: Vec<String>,
    pub pg_ident_after: Vec<String>,
    pub service: String,
    /// A systemd drop-in giving Patroni (and the postgresql.conf it writes) umask 0027.
    pub umask_dropin: String,
    /// Output-tree locations, relative to the cluster directory.
    pub files: PatroniFiles,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PatroniFiles {
    pub fragment: String,
    pub dynamic_config: String,
    pub hook: String,
    pub post_bootstrap: String,
    pub umask_dropin: String,
}

pub fn plan(p: &Patroni) -> PatroniPlan {
    let mut initdb = vec!["allow-group-access"];
    if p.data_checksums {
        initdb.push("data-checksums");
    }
    PatroniPlan {
        config_file: p.config_file.to_string(),
        version: p.version.map(|v| v.to_string()).unwrap_or_default(),
        group_aware: p.version.is_some_and(|v| v >= GROUP_AWARE),
        scripts_directory: p.scripts_directory.to_string(),
        hook: p.scripts_directory.join("patroni-hook.sh").to_string(),
        post_bootstrap: p.scripts_directory.join("post-bootstrap.sh").to_string(),
        hook_log: p.hook_log.to_string(),
        callbacks: vec!["on_start", "on_restart", "on_role_change", "on_reload"],
        initdb,
        pg_hba_after: p.pg_hba_after.clone(),
        pg_ident_after: p.pg_ident_after.clone(),
        service: p.service.to_string(),
        umask_dropin: format!("/etc/systemd/system/{}.d/pgbr-umask.conf", p.service),
        files: PatroniFiles {
            fragment: "patroni/patroni.yml".into(),
            dynamic_config: "patroni/dynamic-config.yml".into(),
            hook: "patroni/patroni-hook.sh".into(),
            post_bootstrap: "patroni/post-bootstrap.sh".into(),
            umask_dropin: "patroni/umask.conf".into(),
        },
    }
}

/// patroni/patroni.yml: pgbr-policy's part of Patroni's configuration, merged key by key
/// into the site's (the header comment in templates/patroni/patroni.yml says why each key).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Fragment {
    pub bootstrap: Bootstrap,
    pub postgresql: FragmentPostgresql,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Bootstrap {
    /// `bootstrap.initdb`: [`PatroniPlan::initdb`].
    pub initdb: Vec<&'static str>,
    /// [`PatroniPlan::post_bootstrap`], the installed script.
    pub post_bootstrap: String,
    /// archive_mode on from the first start, when the policy manages archiving.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dcs: Option<Dcs>,
    /// Ignored when `postgresql.pg_hba` is set, but `patroni --validate-config` (3.0)
    /// wants it: the same list.
    pub pg_hba: Vec<String>,
}

/// `dcs` of the bootstrap section, and the dynamic configuration patch itself: both hold
/// `postgresql.parameters`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Dcs {
    pub postgresql: DcsPostgresql,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DcsPostgresql {
    pub parameters: ArchiveParameters,
    /// restore_command for every member (a repository-host cluster: replicas fetch WAL
    /// from the one repository). Patroni keeps recovery settings out of `parameters`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_conf: Option<RecoveryConf>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecoveryConf {
    pub restore_command: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ArchiveParameters {
    /// Always `on` (archive_mode changes only at start).
    pub archive_mode: &'static str,
    /// [`super::ArchivePlan::command`]; absent at bootstrap, where it stays empty (WAL
    /// kept in pg_wal) until the stanza exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive_command: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FragmentPostgresql {
    /// The managed block (hba/pg_hba.conf.snippet, line by line), then
    /// [`PatroniPlan::pg_hba_after`]: Patroni writes pg_hba.conf from it verbatim.
    pub pg_hba: Vec<String>,
    /// The managed block of hba/pg_ident.conf.snippet, then [`PatroniPlan::pg_ident_after`].
    pub pg_ident: Vec<String>,
    pub callbacks: Callbacks,
}

/// `callback name: script`, in the plan's order (a YAML mapping).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callbacks(pub Vec<(&'static str, String)>);

impl Serialize for Callbacks {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, script) in &self.0 {
            map.serialize_entry(name, script)?;
        }
        map.end()
    }
}

/// patroni/dynamic-config.yml: the patch `patronictl edit-config` applies once the stanza
/// exists (only when the policy manages archiving).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DynamicConfig {
    pub postgresql: DcsPostgresql,
}

/// The fragment of a Patroni cluster. `hba_block` and `ident_block` are the rendered
/// snippets (hba/pg_hba.conf.snippet, hba/pg_ident.conf.snippet): the managed block is
/// those very lines, so the fragment and the snippets cannot differ.
pub fn fragment(c: &ClusterPlan, p: &PatroniPlan, hba_block: &str, ident_block: &str) -> Fragment {
    let lines = |block: &str, after: &[String]| -> Vec<String> {
        block.lines().map(str::to_owned).chain(after.iter().cloned()).collect()
    };
    let pg_hba = lines(hba_block, &p.pg_hba_after);
    Fragment {
        bootstrap: Bootstrap {
            initdb: p.initdb.clone(),
            post_bootstrap: p.post_bootstrap.clone(),
            dcs: c.archive.managed.then_some(Dcs {
                postgresql: DcsPostgresql {
                    parameters: ArchiveParameters {
                        archive_mode: "on",
                        archive_command: None,
                    },
                    recovery_conf: None,
                },
            }),
            pg_hba: pg_hba.clone(),
        },
        postgresql: FragmentPostgresql {
            pg_hba,
            pg_ident: lines(ident_block, &p.pg_ident_after),
            callbacks: Callbacks(p.callbacks.iter().map(|cb| (*cb, p.hook.clone())).collect()),
        },
    }
}

/// The dynamic configuration patch, when the policy manages archiving.
pub fn dynamic_config(c: &ClusterPlan) -> Option<DynamicConfig> {
    c.archive.managed.then(|| DynamicConfig {
        postgresql: DcsPostgresql {
            parameters: ArchiveParameters {
                archive_mode: "on",
                archive_command: Some(c.archive.command.clone()),
            },
            recovery_conf: (!c.archive.restore_command.is_empty()).then(|| RecoveryConf {
                restore_command: c.archive.restore_command.clone(),
            }),
        },
    })
}

fn entry(path: String, kind: PathKind, mode: u32, reason: &str) -> PathEntry {
    PathEntry {
        path,
        kind,
        owner: "root".into(),
        group: "root".into(),
        mode: Mode(mode),
        backup_user_access: "none",
        setting: "",
        reason: reason.to_owned(),
    }
}

/// The paths a Patroni cluster adds to the plan's table.
pub fn paths(c: &Cluster, p: &PatroniPlan) -> Vec<PathEntry> {
    let dropin_dir = p
        .umask_dropin
        .rsplit_once('/')
        .map(|(d, _)| d.to_owned())
        .unwrap_or_default();
    vec![
        entry(
            p.scripts_directory.clone(),
            PathKind::Dir,
            0o755,
            "the Patroni hook and post-bootstrap script; writable by root only, since Patroni runs them as the cluster owner",
        ),
        entry(
            p.hook.clone(),
            PathKind::File,
            0o755,
            &format!(
                "Patroni callback (on_start, on_restart, on_role_change, on_reload): gives group read back to what Patroni or PostgreSQL left 0600 in the data directory, so {} can read every file",
                c.backup_user.name
            ),
        ),
        entry(
            p.post_bootstrap.clone(),
            PathKind::File,
            0o755,
            "Patroni bootstrap.post_bootstrap: creates the backup role and its grants (sql/apply.sql) on a new cluster",
        ),
        entry(
            dropin_dir,
            PathKind::Dir,
            0o755,
            "systemd drop-in directory of Patroni's unit",
        ),
        entry(
            p.umask_dropin.clone(),
            PathKind::File,
            0o644,
            "UMask=0027 for Patroni: postgresql.conf and the files Patroni writes get no access for others, and group read",
        ),
    ]
}
