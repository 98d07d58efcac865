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

/// What an entry lacks or has too much of, by the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Verdict {
    pub lacks_group_read: bool,
    pub too_open: bool,
}

impl DataDirRule {
    pub fn new(data_directory: &str) -> Self {
        let (dir_needs, file_needs, forbids) = (0o050, 0o040, 0o027);
        let search_only_on_dirs = dir_needs & !file_needs;
        DataDirRule {
            data_directory: data_directory.to_owned(),
            link_directories: vec!["pg_tblspc"],
            links: vec!["pg_wal"],
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chmod_spellings_follow_the_bits() {
        let r = DataDirRule::new("/d");
        assert_eq!(r.dir_fix, "g+rx,g-w,o-rwx");
        assert_eq!(r.file_fix, "g+r,g-w,o-rwx");
        assert_eq!(r.tree_fix, "g+rX,g-w,o-rwx");
        assert_eq!(r.revoke, "g-rwx");
    }

    #[test]
    fn the_rule_forbids_what_it_needs_nowhere() {
        let r = DataDirRule::new("/d");
        assert_eq!(r.dir_needs.0 & r.forbids.0, 0);
        assert_eq!(r.file_needs.0 & r.forbids.0, 0);
    }

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
