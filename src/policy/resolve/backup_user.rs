//! The `backup_user:` section: the OS user that runs the backups.

use crate::policy::fields::{Fields, string};
use crate::policy::model::BackupUser;
use crate::policy::names::{AbsPath, OsName};
use crate::policy::raw;

/// The section's values, each `None` when invalid (the error is already reported).
pub struct BackupUserPart {
    pub name: Option<OsName>,
    group: Option<OsName>,
    home: Option<AbsPath>,
    shell: Option<AbsPath>,
    ssh_key: bool,
}

impl BackupUserPart {
    /// The user's name, empty when invalid: defaults of other sections derive from it.
    pub fn name_str(&self) -> String {
        self.name.as_ref().map(|n| n.to_string()).unwrap_or_default()
    }

    pub fn finish(self) -> Option<BackupUser> {
        Some(BackupUser {
            name: self.name?,
            group: self.group?,
            home: self.home?,
            shell: self.shell?,
            ssh_key: self.ssh_key,
        })
    }
}

pub fn resolve(f: &mut Fields<'_, '_>, bu: &raw::BackupUserSpec) -> BackupUserPart {
    let bu_name = f.parse(
        string(&bu.name),
        "backup_user.name",
        || Some("pgbackrest".into()),
        OsName::parse,
    );
    let bu_str = bu_name.as_ref().map(|n| n.to_string()).unwrap_or_default();
    let bu_group = f.parse(
        string(&bu.group),
        "backup_user.group",
        || Some(bu_str.clone()),
        OsName::parse,
    );
    let home = f.parse(
        string(&bu.home),
        "backup_user.home",
        || Some(format!("/home/{bu_str}")),
        AbsPath::parse,
    );
    let shell = f.parse(
        string(&bu.shell),
        "backup_user.shell",
        || Some("/bin/bash".into()),
        AbsPath::parse,
    );
    let ssh_key = bu.ssh_key.as_ref().map(|v| v.value).unwrap_or(false);

    BackupUserPart {
        name: bu_name,
        group: bu_group,
        home,
        shell,
        ssh_key,
    }
}
