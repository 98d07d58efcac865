//! The policy: loading the YAML file (`raw`), checking and typing it (`validate`) into
//! the [`Policy`] that planning reads. `load` is the only entry point.

pub mod diagnostic;
mod fields;
pub mod model;
pub mod names;
mod patroni;
mod places;
pub mod raw;
mod resolve;
mod validate;

pub use diagnostic::{Diagnostic, PolicyErrors};
pub use model::*;

use diagnostic::Collector;
use std::path::Path;

/// Policies are small; anything larger is a mistake or an attack on the parser.
const MAX_POLICY_BYTES: usize = 4 * 1024 * 1024;

/// How a policy read from standard input (`-`) is named in messages.
pub const STDIN_NAME: &str = "<stdin>";

/// A validated policy plus the warnings found on the way.
pub struct Loaded {
    pub policy: Policy,
    pub warnings: Vec<Diagnostic>,
}

/// Reads, parses and validates `path`. On failure every diagnostic is returned.
pub fn load(path: &Path) -> anyhow::Result<Loaded> {
    if path == Path::new("-") {
        use std::io::Read as _;
        let mut bytes = Vec::new();
        std::io::stdin()
            .take(MAX_POLICY_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| anyhow::anyhow!("cannot read the policy from standard input: {e}"))?;
        return parse(&bytes, Path::new(STDIN_NAME), STDIN_NAME).map_err(anyhow::Error::new);
    }
    let bytes = read_bounded(path).map_err(|e| anyhow::anyhow!("cannot read policy `{}`: {e}", path.display()))?;
    let source_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "policy.yaml".into());
    parse(&bytes, path, &source_name).map_err(anyhow::Error::new)
}

/// Reads at most one byte more than a policy may hold, so that a huge file (or an
/// endless one: a FIFO, /dev/zero) is refused without being held in memory. A regular
/// file too large is refused by its size, before any read, naming it.
fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if meta.is_file() && meta.len() > MAX_POLICY_BYTES as u64 {
        return Err(std::io::Error::other(format!(
            "the file is {} bytes; a policy may be at most {MAX_POLICY_BYTES}",
            meta.len()
        )));
    }
    let mut bytes = Vec::new();
    file.take(MAX_POLICY_BYTES as u64 + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Parses policy text; `path` is used only in messages.
pub fn parse(bytes: &[u8], path: &Path, source_name: &str) -> Result<Loaded, PolicyErrors> {
    let mut out = Collector::new(path);
    // The file name is printed in every message about the policy (terminals, CI logs).
    if let Some(c) = source_name
        .chars()
        .find(|c| c.is_control() || names::is_invisible_format_char(*c))
    {
        out.error(
            None,
            "",
            format!(
                "the file name `{}` contains the character U+{:04X}; it is printed in every message about the policy: rename the file",
                names::printable(source_name),
                c as u32
            ),
        );
        return Err(PolicyErrors {
            diagnostics: out.diagnostics,
        });
    }
    if bytes.len() > MAX_POLICY_BYTES {
        let size = match bytes.len() {
            // read_bounded stops one byte past the limit: the real size is unknown.
            n if n == MAX_POLICY_BYTES + 1 => format!("more than {MAX_POLICY_BYTES} bytes"),
            n => format!("{n} bytes"),
        };
        out.error(
            None,
            "",
            format!("the file is {size}; a policy may be at most {MAX_POLICY_BYTES}"),
        );
        return Err(PolicyErrors {
            diagnostics: out.diagnostics,
        });
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            out.error(
                None,
                "",
                format!("the file is not UTF-8 (invalid byte at offset {})", e.valid_up_to()),
            );
            return Err(PolicyErrors {
                diagnostics: out.diagnostics,
            });
        }
    };
    let raw: raw::PolicyFile = match serde_saphyr::from_str_with_options(text, parser_options()) {
        Ok(raw) => raw,
        Err(e) => {
            let at = e
                .location()
                .map(|l| (l.line() as usize, l.column() as usize))
                .filter(|(line, _)| *line > 0);
            out.diagnostics.push(diagnostic::from_parse_error(
                path,
                text,
                at,
                &first_line(&e.to_string()),
            ));
            return Err(PolicyErrors {
                diagnostics: out.diagnostics,
            });
        }
    };
    match validate::resolve(raw, source_name, &mut out) {
        Some(mut policy) if !out.has_errors() => {
            policy.source_sha256 = crate::artifact::sha256_hex(bytes);
            let warnings = out.diagnostics;
            Ok(Loaded { policy, warnings })
        }
        _ => Err(PolicyErrors {
            diagnostics: out.diagnostics,
        }),
    }
}

/// Tight budgets: a policy has a few hundred keys per cluster, so anchors that expand
/// into millions of nodes (the "billion laughs") are refused instead of exhausting memory.
fn parser_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: 32,
            max_aliases: 1_000,
            max_events: 2_000_000,
        },
    }
}

/// serde-saphyr's message starts "error: line L column C: what" and then draws a
/// snippet; we print our own location, so keep only "what".
fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or(message);
    let line = line.strip_prefix("error: ").unwrap_or(line);
    match line.split_once(": ") {
        Some((loc, rest)) if loc.starts_with("line ") => rest.to_owned(),
        _ => line.to_owned(),
    }
}
