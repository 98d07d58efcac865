//! The data-directory permission rule (facts.md §4), as one typed value: which trees
//! it covers (the data directory, every tablespace linked from `pg_tblspc/`, and
//! `pg_wal` when it is a link), what every directory and file needs and what none may
//! have. `check --deployed` evaluates it in Rust; the shell and Ansible partials render
//! their `find`/`chmod` from the same fields, so the targets cannot disagree.

use serde::{Serialize, Serializer};
use std::fmt;

/// A file mode (permission bits only); written as four octal digits (`0750`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode(pub u32);

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

impl Serialize for Mode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DataDirRule {
    /// The data directory: the first root.
    pub data_directory: String,
    /// Directories of the data directory every symlink in which leads to one more root
    /// (tablespaces: `pg_tblspc`).
    pub link_directories: Vec<&'static str>,
    /// Entries of the data directory that lead to one more root when they are a
    /// symlink (`pg_wal`, moved with `initdb -X`).
    pub links: Vec<&'static str>,
    /// The data directory's own mode: PostgreSQL gives new files group read only when
    /// it starts with the directory at this mode.
    pub mode: Mode,
    /// Bits every directory of every root must have (group read and search).
    pub dir_needs: Mode,
    /// Bits every regular file of every root must have (group read).
    pub file_needs: Mode,
    /// Bits no directory or file may have (group write, anything for others).
    pub forbids: Mode,
    /// The same rule as one `chmod` argument: what a fix applies to a whole tree.
    pub chmod_fix: &'static str,
}

/// What an entry lacks or has too much of, by the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Verdict {
    pub lacks_group_read: bool,
    pub too_open: bool,
}

impl DataDirRule {
    pub fn new(data_directory: &str) -> Self {
        DataDirRule {
            data_directory: data_directory.to_owned(),
            link_directories: vec!["pg_tblspc"],
            links: vec!["pg_wal"],
            mode: Mode(0o750),
            dir_needs: Mode(0o050),
            file_needs: Mode(0o040),
            forbids: Mode(0o027),
            chmod_fix: "g+rX,g-w,o-rwx",
        }
    }

    /// The verdict on one entry from its lstat: symlinks, sockets and the like are not
    /// copied as such by a backup and are not judged.
    pub fn judge(&self, meta: &std::fs::Metadata) -> Verdict {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode();
        let needs = if meta.is_dir() {
            self.dir_needs.0
        } else if meta.is_file() {
            self.file_needs.0
        } else {
            return Verdict::default();
        };
        Verdict {
            lacks_group_read: mode & needs != needs,
            too_open: mode & self.forbids.0 != 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_print_as_octal_and_the_fix_matches_the_bits() {
        let rule = DataDirRule::new("/d");
        assert_eq!(serde_json::to_string(&rule.mode).unwrap(), "\"0750\"");
        assert_eq!(rule.dir_needs.to_string(), "0050");
        // The data directory's own mode satisfies the rule it sets for directories.
        assert_eq!(rule.mode.0 & rule.dir_needs.0, rule.dir_needs.0);
        assert_eq!(rule.mode.0 & rule.forbids.0, 0);
    }
}
