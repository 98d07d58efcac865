//! Comparing what `generate` would write with a directory: added, removed (stale),
//! modified and mode-changed files, as a unified diff or one line per file. The rendered
//! side always comes from `artifact::render_all`, the same code path as `generate`.

use crate::artifact::{MANIFEST, Tree, parse_manifest, sha256_hex};
use anyhow::{Context as _, Result};
use serde::Serialize;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// generate would create it
    Added,
    /// on disk but generate would not produce it
    Removed,
    Modified,
    ModeChanged,
}

/// Why a file differs, when the directory has a MANIFEST.sha256 to tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// The file no longer matches the checksum generate recorded for it.
    EditedByHand,
    /// The file is as generated, so the policy or pgbr-policy itself changed.
    PolicyOrToolChanged,
}

impl Cause {
    pub fn describe(self) -> &'static str {
        match self {
            Cause::EditedByHand => "edited by hand since it was generated",
            Cause::PolicyOrToolChanged => "as generated: the policy or pgbr-policy changed",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub path: String,
    pub status: Status,
    /// The file on disk differs from what the manifest on disk recorded: edited by hand.
    pub edited_by_hand: bool,
    pub cause: Option<Cause>,
    pub expected_sha256: Option<String>,
    pub found_sha256: Option<String>,
    pub expected_mode: Option<String>,
    pub found_mode: Option<String>,
    #[serde(skip)]
    pub diff: String,
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .with_context(|| format!("cannot read `{}`", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(root, &path, out)?;
        } else {
            out.push(
                path.strip_prefix(root)
                    .expect("below root")
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    Ok(())
}

pub fn compare(tree: &Tree, against: &Path) -> Result<Vec<Change>> {
    if !against.is_dir() {
        anyhow::bail!("`{}` is not a directory", against.display());
    }
    let recorded = fs::read_to_string(against.join(MANIFEST))
        .map(|t| parse_manifest(&t))
        .unwrap_or_default();
    let mut on_disk = Vec::new();
    walk(against, against, &mut on_disk)?;
    let mut changes = Vec::new();
    for (rel, artifact) in tree {
        let path = against.join(rel);
        let expected_sha = sha256_hex(&artifact.bytes);
        match fs::read(&path) {
            Err(_) => changes.push(Change {
                path: rel.clone(),
                status: Status::Added,
                edited_by_hand: false,
                cause: None,
                expected_sha256: Some(expected_sha),
                found_sha256: None,
                expected_mode: Some(format!("{:04o}", artifact.mode)),
                found_mode: None,
                diff: unified(rel, "", &String::from_utf8_lossy(&artifact.bytes)),
            }),
            Ok(found) => {
                let found_sha = sha256_hex(&found);
                let mode = fs::metadata(&path)?.permissions().mode() & 0o7777;
                let edited_by_hand = rel != MANIFEST && recorded.get(rel).is_some_and(|h| *h != found_sha);
                let cause = match recorded.get(rel) {
                    _ if rel == MANIFEST => None,
                    Some(h) if *h != found_sha => Some(Cause::EditedByHand),
                    Some(_) => Some(Cause::PolicyOrToolChanged),
                    None => None,
                };
                let status = if found != artifact.bytes {
                    Status::Modified
                } else if mode != artifact.mode {
                    Status::ModeChanged
                } else {
                    continue;
                };
                changes.push(Change {
                    path: rel.clone(),
                    status,
                    edited_by_hand,
                    cause,
                    diff: if status == Status::Modified {
                        unified(
                            rel,
                            &String::from_utf8_lossy(&found),
                            &String::from_utf8_lossy(&artifact.bytes),
                        )
                    } else {
                        String::new()
                    },
                    expected_sha256: Some(expected_sha),
                    found_sha256: Some(found_sha),
                    expected_mode: Some(format!("{:04o}", artifact.mode)),
                    found_mode: Some(format!("{mode:04o}")),
                });
            }
        }
    }
    for rel in on_disk {
        if !tree.contains_key(&rel) {
            let found = fs::read(against.join(&rel)).unwrap_or_default();
            changes.push(Change {
                path: rel.clone(),
                status: Status::Removed,
                edited_by_hand: false,
                cause: None,
                expected_sha256: None,
                found_sha256: Some(sha256_hex(&found)),
                expected_mode: None,
                found_mode: None,
                diff: unified(&rel, &String::from_utf8_lossy(&found), ""),
            });
        }
    }
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(changes)
}

fn unified(path: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string()
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Added => "added",
            Status::Removed => "removed",
            Status::Modified => "modified",
            Status::ModeChanged => "mode changed",
        }
    }
}
