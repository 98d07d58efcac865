//! The managed block of pg_hba.conf and pg_ident.conf: one grammar, used by every Rust
//! reader (the deployed-host check, the consistency check of the rendered tree); the
//! shell partial implements the same rules.
//!
//! - A marker line is exactly `# BEGIN <marker>` or `# END <marker>`, or that followed
//!   by a space and anything (the generated BEGIN line carries a note). So cluster `c`
//!   does not match `# BEGIN pgbr-policy c-2`.
//! - A trailing `\r` is ignored when matching (a file saved with CRLF line ends).
//! - A BEGIN without its END is an error, never "the block runs to the end of the
//!   file": splicing would then delete every rule after it. So are an END without a
//!   BEGIN, a BEGIN inside the block, and the block twice.

use std::fmt;

/// Where the block lies: the line indexes (from 0) of its BEGIN and END lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub begin: usize,
    pub end: usize,
}

/// Why a file's block cannot be read (line numbers from 1, as an editor shows them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockError {
    Unterminated { begin: usize },
    EndWithoutBegin { end: usize },
    BeginInside { begin: usize, again: usize },
    Twice { first: usize, second: usize },
}

impl fmt::Display for BlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockError::Unterminated { begin } => write!(
                f,
                "the BEGIN marker on line {begin} has no END marker (replacing the block would remove every line after it)"
            ),
            BlockError::EndWithoutBegin { end } => {
                write!(f, "the END marker on line {end} has no BEGIN marker before it")
            }
            BlockError::BeginInside { begin, again } => write!(
                f,
                "a second BEGIN marker on line {again} inside the block that begins on line {begin}"
            ),
            BlockError::Twice { first, second } => {
                write!(f, "the block appears twice (lines {first} and {second})")
            }
        }
    }
}

impl std::error::Error for BlockError {}

/// True when `line` is the `keyword` (`BEGIN` or `END`) marker line of `marker`.
pub fn is_marker(line: &str, keyword: &str, marker: &str) -> bool {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let Some(rest) = line
        .strip_prefix("# ")
        .and_then(|l| l.strip_prefix(keyword))
        .and_then(|l| l.strip_prefix(' '))
        .and_then(|l| l.strip_prefix(marker))
    else {
        return false;
    };
    rest.is_empty() || rest.starts_with(' ')
}

/// The block of `marker` in `lines`: `None` when the file has none.
pub fn find<S: AsRef<str>>(lines: &[S], marker: &str) -> Result<Option<Span>, BlockError> {
    let mut open: Option<usize> = None;
    let mut found: Option<Span> = None;
    for (i, line) in lines.iter().enumerate() {
        let line = line.as_ref();
        if is_marker(line, "BEGIN", marker) {
            if let Some(begin) = open {
                return Err(BlockError::BeginInside {
                    begin: begin + 1,
                    again: i + 1,
                });
            }
            if let Some(first) = found {
                return Err(BlockError::Twice {
                    first: first.begin + 1,
                    second: i + 1,
                });
            }
            open = Some(i);
        } else if is_marker(line, "END", marker) {
            match open.take() {
                Some(begin) => found = Some(Span { begin, end: i }),
                None => return Err(BlockError::EndWithoutBegin { end: i + 1 }),
            }
        }
    }
    match open {
        Some(begin) => Err(BlockError::Unterminated { begin: begin + 1 }),
        None => Ok(found),
    }
}

/// The lines without the block of `marker` (all of them when it has none).
pub fn without<'l, S: AsRef<str>>(lines: &'l [S], marker: &str) -> Result<Vec<&'l str>, BlockError> {
    let span = find(lines, marker)?;
    Ok(lines
        .iter()
        .enumerate()
        .filter(|(i, _)| span.is_none_or(|s| *i < s.begin || *i > s.end))
        .map(|(_, l)| l.as_ref())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<&str> {
        text.split('\n').collect()
    }

    const TWO: &str = "# BEGIN pgbr-policy c-2 (managed block)\nlocal all b2 reject\n# END pgbr-policy c-2\n# BEGIN pgbr-policy c (managed block)\nlocal all b reject\n# END pgbr-policy c\nlocal all all peer";

    #[test]
    fn c_does_not_match_c_2_in_one_file() {
        let l = lines(TWO);
        assert_eq!(find(&l, "pgbr-policy c"), Ok(Some(Span { begin: 3, end: 5 })));
        assert_eq!(find(&l, "pgbr-policy c-2"), Ok(Some(Span { begin: 0, end: 2 })));
        assert_eq!(
            without(&l, "pgbr-policy c").unwrap(),
            [
                "# BEGIN pgbr-policy c-2 (managed block)",
                "local all b2 reject",
                "# END pgbr-policy c-2",
                "local all all peer"
            ]
        );
        assert!(!is_marker("# BEGIN pgbr-policy c-2", "BEGIN", "pgbr-policy c"));
        assert!(!is_marker("# BEGIN pgbr-policy cc", "BEGIN", "pgbr-policy c"));
        assert!(!is_marker("#  BEGIN pgbr-policy c", "BEGIN", "pgbr-policy c"));
        assert!(is_marker("# END pgbr-policy c", "END", "pgbr-policy c"));
        assert!(!is_marker("# END pgbr-policy c", "BEGIN", "pgbr-policy c"));
    }

    #[test]
    fn crlf_line_ends_are_ignored_for_markers() {
        let text = TWO.replace('\n', "\r\n");
        let l = lines(&text);
        assert_eq!(find(&l, "pgbr-policy c"), Ok(Some(Span { begin: 3, end: 5 })));
        assert_eq!(without(&l, "pgbr-policy c").unwrap().len(), 4);
    }

    #[test]
    fn a_begin_without_end_is_an_error_not_the_rest_of_the_file() {
        let l = lines(
            "# BEGIN pgbr-policy c\nlocal all b reject\nlocal all all peer\nhost all all 10.0.0.0/8 scram-sha-256",
        );
        assert_eq!(find(&l, "pgbr-policy c"), Err(BlockError::Unterminated { begin: 1 }));
        assert!(without(&l, "pgbr-policy c").is_err());
        assert!(
            BlockError::Unterminated { begin: 1 }
                .to_string()
                .contains("would remove every line after it")
        );
        // The END of another cluster does not close it.
        let l = lines("# BEGIN pgbr-policy c\nx\n# END pgbr-policy c-2\ny");
        assert_eq!(find(&l, "pgbr-policy c"), Err(BlockError::Unterminated { begin: 1 }));
    }

    #[test]
    fn two_blocks_of_one_marker_and_stray_ends_are_errors() {
        let l = lines("# BEGIN pgbr-policy c\n# END pgbr-policy c\nx\n# BEGIN pgbr-policy c\n# END pgbr-policy c");
        assert_eq!(
            find(&l, "pgbr-policy c"),
            Err(BlockError::Twice { first: 1, second: 4 })
        );
        let l = lines("x\n# END pgbr-policy c");
        assert_eq!(find(&l, "pgbr-policy c"), Err(BlockError::EndWithoutBegin { end: 2 }));
        let l = lines("# BEGIN pgbr-policy c\n# BEGIN pgbr-policy c\n# END pgbr-policy c");
        assert_eq!(
            find(&l, "pgbr-policy c"),
            Err(BlockError::BeginInside { begin: 1, again: 2 })
        );
        assert_eq!(find(&lines("local all all peer"), "pgbr-policy c"), Ok(None));
    }
}
