//! What each PostgreSQL major and each pgBackRest command need: the one typed table of
//! version knowledge (facts.md §1, §2, §4, §6). Templates never decide anything about
//! versions; they render what this module says, through the plan.

use serde::Serialize;
use std::fmt;

/// The PostgreSQL majors this tool generates for.
pub const SUPPORTED_MAJORS: std::ops::RangeInclusive<u32> = 10..=18;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct PgMajor(u32);

impl PgMajor {
    pub fn new(major: u32) -> Result<Self, String> {
        if SUPPORTED_MAJORS.contains(&major) {
            Ok(Self(major))
        } else if major < 10 {
            Err(format!(
                "PostgreSQL {major} is not supported: before 10 every pgBackRest command that connects needs a superuser, so least privilege is impossible"
            ))
        } else {
            Err(format!(
                "PostgreSQL {major} is not supported: this version of pgbr-policy knows majors 10 to 18"
            ))
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }

    /// `initdb --allow-group-access` and `data_directory_mode` exist from PostgreSQL 11.
    pub fn has_group_access(self) -> bool {
        self.0 >= 11
    }

    /// Until PostgreSQL 14, PUBLIC may CREATE in schema `public` of every database.
    pub fn public_may_create_in_public_schema(self) -> bool {
        self.0 <= 14
    }

    /// `pg_checkpoint` (needed by backup-standby, which runs CHECKPOINT on the standby)
    /// exists from PostgreSQL 15; before it only a superuser may CHECKPOINT.
    pub fn has_pg_checkpoint_role(self) -> bool {
        self.0 >= 15
    }

    /// `pg_ident_file_mappings` (to validate pg_ident.conf before reload) exists from 15
    /// (measured on 15.18; the lab's safety scenario fails an invalid pg_ident.conf line
    /// through it).
    pub fn has_ident_mappings_view(self) -> bool {
        self.0 >= 15
    }

    /// The first pgBackRest release that can back up this major (facts.md §6).
    pub fn min_pgbackrest(self) -> Version {
        match self.0 {
            // Release notes of pgBackRest: 2.34 "PostgreSQL 14 support", 2.39 (15),
            // 2.46 (16), 2.53.1 (17: 2.52 claimed it but fails on the final 17.0 with
            // "unexpected control version"), 2.55.0 (18).
            ..=14 => Version(2, 34, 0),
            15 => Version(2, 39, 0),
            16 => Version(2, 46, 0),
            17 => Version(2, 53, 1),
            _ => Version(2, 55, 0),
        }
    }
}

impl fmt::Display for PgMajor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A pgBackRest version, major.minor.patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<Option<u32>> = text.split('.').map(|p| p.parse().ok()).collect();
        match parts.as_slice() {
            [Some(major), Some(minor)] => Ok(Version(*major, *minor, 0)),
            [Some(major), Some(minor), Some(patch)] => Ok(Version(*major, *minor, *patch)),
            _ => Err(format!(
                "`{}` is not a pgBackRest version like `2.45`",
                crate::policy::names::printable(text)
            )),
        }
    }

    /// `pgbackrest server`, the TLS server this layout relies on, appeared in 2.37.
    pub const TLS_SERVER: Version = Version(2, 37, 0);
    /// The first release that matches an IP address against a certificate's
    /// subjectAltName (facts.md §3): before it a TLS host must be a DNS name.
    pub const TLS_IP_NAMES: Version = Version(2, 53, 0);
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.2 == 0 {
            write!(f, "{}.{}", self.0, self.1)
        } else {
            write!(f, "{}.{}.{}", self.0, self.1, self.2)
        }
    }
}

/// The pgBackRest commands a policy can allow the backup user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Command {
    Check,
    Backup,
    BackupStandby,
}

impl Command {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "check" => Ok(Command::Check),
            "backup" => Ok(Command::Backup),
            "backup-standby" => Ok(Command::BackupStandby),
            other => Err(format!(
                "`{}` is not a pgBackRest command this policy can allow: use `backup`, `check` or `backup-standby` (archive-push/get, restore, expire, info and verify need no database privilege)",
                crate::policy::names::printable(other)
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Command::Check => "check",
            Command::Backup => "backup",
            Command::BackupStandby => "backup-standby",
        }
    }
}

/// One function the role must be able to EXECUTE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Function {
    pub name: &'static str,
    pub args: &'static [&'static str],
    pub reason: &'static str,
}

impl Function {
    /// `pg_catalog.pg_backup_start(text, boolean)`: the form used in GRANT/REVOKE.
    pub fn sql_signature(&self) -> String {
        format!("pg_catalog.{}({})", self.name, self.args.join(", "))
    }

    /// `pg_backup_start(text,boolean)`: how `regprocedure` prints it, and what
    /// `has_function_privilege` accepts after `pg_catalog.`.
    pub fn regprocedure(&self) -> String {
        format!("{}({})", self.name, self.args.join(","))
    }
}

/// One predefined role the backup role must be a member of (with INHERIT).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Membership {
    pub role: &'static str,
    pub reason: &'static str,
}

/// Everything the database side needs for the allowed commands on one major.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Privileges {
    pub memberships: Vec<Membership>,
    pub functions: Vec<Function>,
}

const READ_ALL_SETTINGS: Membership = Membership {
    role: "pg_read_all_settings",
    reason: "pgBackRest reads data_directory and other settings that only superusers and this role may read; it also exposes every other setting, and no narrower role exists",
};

const CHECKPOINT: Membership = Membership {
    role: "pg_checkpoint",
    reason: "backup-standby runs CHECKPOINT on the standby",
};

const SWITCH_WAL: Function = Function {
    name: "pg_switch_wal",
    args: &[],
    reason: "check and backup force a WAL switch so the segment is archived; without it check fails and a backup of an idle cluster may never finish",
};

const CREATE_RESTORE_POINT: Function = Function {
    name: "pg_create_restore_point",
    args: &["text"],
    reason: "check (and backup on an idle cluster) writes a restore point to produce WAL to archive",
};

const START_BACKUP_OLD: Function = Function {
    name: "pg_start_backup",
    args: &["text", "boolean", "boolean"],
    reason: "starts a non-exclusive backup (PostgreSQL 10-14 name)",
};

const STOP_BACKUP_OLD: Function = Function {
    name: "pg_stop_backup",
    args: &["boolean", "boolean"],
    reason: "stops the non-exclusive backup and returns the backup label (PostgreSQL 10-14 name; the exclusive-mode overload pg_stop_backup() is not granted)",
};

const START_BACKUP: Function = Function {
    name: "pg_backup_start",
    args: &["text", "boolean"],
    reason: "starts the backup (PostgreSQL 15+ name)",
};

const STOP_BACKUP: Function = Function {
    name: "pg_backup_stop",
    args: &["boolean"],
    reason: "stops the backup and returns the backup label (PostgreSQL 15+ name); without it a backup fails only after every file was copied",
};

/// The exact privileges for `commands` on `major`. Validation has already refused
/// combinations the major cannot do (backup-standby before 15).
pub fn privileges(major: PgMajor, commands: &[Command]) -> Privileges {
    let backup = commands
        .iter()
        .any(|c| matches!(c, Command::Backup | Command::BackupStandby));
    let standby = commands.contains(&Command::BackupStandby);
    let mut memberships = vec![READ_ALL_SETTINGS];
    if standby && major.has_pg_checkpoint_role() {
        memberships.push(CHECKPOINT);
    }
    // check needs these two; backup needs them too (facts.md §1: without them a backup
    // of an idle cluster fails in 3 runs of 4).
    let mut functions = Vec::new();
    if backup {
        if major.get() >= 15 {
            functions.extend([START_BACKUP, STOP_BACKUP]);
        } else {
            functions.extend([START_BACKUP_OLD, STOP_BACKUP_OLD]);
        }
    }
    functions.extend([CREATE_RESTORE_POINT, SWITCH_WAL]);
    Privileges { memberships, functions }
}

/// Functions the role must NOT be able to execute: verify.sql proves each is denied.
/// The exclusive-mode `pg_stop_backup()` exists until 14 and must never be granted.
pub fn forbidden_functions(major: PgMajor) -> Vec<String> {
    let mut out = vec![
        "pg_catalog.pg_read_file(text)".to_owned(),
        "pg_catalog.pg_read_binary_file(text)".to_owned(),
        "pg_catalog.pg_ls_dir(text)".to_owned(),
        "pg_catalog.pg_reload_conf()".to_owned(),
        "pg_catalog.lo_import(text)".to_owned(),
        "pg_catalog.pg_rotate_logfile()".to_owned(),
    ];
    if major.get() <= 14 {
        out.push("pg_catalog.pg_stop_backup()".to_owned());
    }
    out
}

/// Predefined roles that would give the backup role data or server access.
pub fn forbidden_roles(major: PgMajor) -> Vec<&'static str> {
    let mut out = vec![
        "pg_read_server_files",
        "pg_write_server_files",
        "pg_execute_server_program",
        "pg_monitor",
        "pg_signal_backend",
    ];
    if major.get() >= 14 {
        out.extend(["pg_read_all_data", "pg_write_all_data"]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sigs(major: u32, commands: &[Command]) -> Vec<String> {
        privileges(PgMajor::new(major).unwrap(), commands)
            .functions
            .iter()
            .map(Function::sql_signature)
            .collect()
    }

    /// One assertion per supported major: the exact GRANT signatures for backup+check.
    #[test]
    fn backup_signatures_for_every_major() {
        let old = [
            "pg_catalog.pg_start_backup(text, boolean, boolean)",
            "pg_catalog.pg_stop_backup(boolean, boolean)",
            "pg_catalog.pg_create_restore_point(text)",
            "pg_catalog.pg_switch_wal()",
        ];
        let new = [
            "pg_catalog.pg_backup_start(text, boolean)",
            "pg_catalog.pg_backup_stop(boolean)",
            "pg_catalog.pg_create_restore_point(text)",
            "pg_catalog.pg_switch_wal()",
        ];
        let both = [Command::Backup, Command::Check];
        for major in [10, 11, 12, 13, 14] {
            assert_eq!(sigs(major, &both), old, "PostgreSQL {major}");
        }
        for major in [15, 16, 17, 18] {
            assert_eq!(sigs(major, &both), new, "PostgreSQL {major}");
        }
    }

    #[test]
    fn check_alone_needs_no_backup_functions() {
        assert_eq!(
            sigs(16, &[Command::Check]),
            ["pg_catalog.pg_create_restore_point(text)", "pg_catalog.pg_switch_wal()"]
        );
    }

    #[test]
    fn memberships_per_major() {
        for major in SUPPORTED_MAJORS {
            let m = PgMajor::new(major).unwrap();
            let roles: Vec<_> = privileges(m, &[Command::Backup, Command::BackupStandby])
                .memberships
                .iter()
                .map(|m| m.role)
                .collect();
            if major >= 15 {
                assert_eq!(roles, ["pg_read_all_settings", "pg_checkpoint"]);
            } else {
                assert_eq!(roles, ["pg_read_all_settings"]);
            }
            assert_eq!(m.has_group_access(), major >= 11);
            assert_eq!(m.public_may_create_in_public_schema(), major <= 14);
            assert_eq!(
                forbidden_functions(m).contains(&"pg_catalog.pg_stop_backup()".to_owned()),
                major <= 14
            );
        }
    }

    #[test]
    fn majors_outside_the_range_are_refused() {
        assert!(PgMajor::new(9).unwrap_err().contains("superuser"));
        assert!(PgMajor::new(19).is_err());
    }

    #[test]
    fn regprocedure_form_has_no_spaces() {
        assert_eq!(START_BACKUP.regprocedure(), "pg_backup_start(text,boolean)");
        assert_eq!(SWITCH_WAL.regprocedure(), "pg_switch_wal()");
    }
}
