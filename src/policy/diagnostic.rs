//! Errors and warnings about a policy, each tied to a file, line, column and field path,
//! printed the way compilers do so editors can jump to them.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    /// 1-based; 0 when the place is unknown (a missing required key).
    pub line: usize,
    pub column: usize,
    /// `clusters[0].role.name`
    pub field: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}: {}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if self.field.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.field, self.message)
        }
    }
}

/// All the errors found in one policy (validation reports every problem at once, so a
/// reviewer fixes them in one pass).
#[derive(Debug)]
pub struct PolicyErrors {
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors = self
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        for d in &self.diagnostics {
            writeln!(f, "{d}")?;
        }
        write!(f, "the policy has {errors} error{}", if errors == 1 { "" } else { "s" })
    }
}

impl std::error::Error for PolicyErrors {}

/// Collects diagnostics while walking a policy.
pub struct Collector<'a> {
    pub file: &'a Path,
    pub diagnostics: Vec<Diagnostic>,
}

impl<'a> Collector<'a> {
    pub fn new(file: &'a Path) -> Self {
        Self {
            file,
            diagnostics: Vec::new(),
        }
    }

    pub fn push(&mut self, severity: Severity, at: Option<(usize, usize)>, field: &str, message: impl Into<String>) {
        let (line, column) = at.unwrap_or((0, 0));
        self.diagnostics.push(Diagnostic {
            severity,
            file: self.file.to_path_buf(),
            line,
            column,
            field: field.to_owned(),
            message: message.into(),
        });
    }

    pub fn error(&mut self, at: Option<(usize, usize)>, field: &str, message: impl Into<String>) {
        self.push(Severity::Error, at, field, message);
    }

    pub fn warning(&mut self, at: Option<(usize, usize)>, field: &str, message: impl Into<String>) {
        self.push(Severity::Warning, at, field, message);
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.severity == Severity::Error)
    }
}
