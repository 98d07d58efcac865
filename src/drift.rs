//! Comparing what `generate` would write with a directory: added, removed (stale),
//! modified and mode-changed files, as a unified diff or one line per file. The rendered
//! side always comes from `artifact::for_each`, the same code path as `generate`.

use crate::artifact::{self, Artifact, MANIFEST, parse_manifest, sha256_hex};
use crate::plan::Plan;
use anyhow::{Context as _, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::Mutex;

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

/// Compares what `generate` would write with `against`, streaming: each rendered file is
/// compared as soon as it exists and then dropped.
pub fn compare(plan: &Plan, against: &Path) -> Result<Vec<Change>> {
    if !against.is_dir() {
        anyhow::bail!("`{}` is not a directory", against.display());
    }
    let recorded = fs::read_to_string(against.join(MANIFEST))
        .map(|t| parse_manifest(&t))
        .unwrap_or_default();
    let mut on_disk = Vec::new();
    walk(against, against, &mut on_disk)?;
    let changes = Mutex::new(Vec::new());
    let hashes = Mutex::new(BTreeMap::new());
    artifact::for_each(plan, &|path, artifact| {
        let hash = sha256_hex(&artifact.bytes);
        if let Some(change) = compare_one(against, &recorded, &path, &artifact, &hash)? {
            changes.lock().expect("changes lock").push(change);
        }
        hashes.lock().expect("hashes lock").insert(path, hash);
        Ok(())
    })?;
    let mut changes = changes.into_inner().expect("changes lock");
    let hashes = hashes.into_inner().expect("hashes lock");
    let manifest = Artifact {
        bytes: artifact::manifest(&hashes).into_bytes(),
        mode: 0o644,
    };
    let manifest_hash = sha256_hex(&manifest.bytes);
    changes.extend(compare_one(against, &recorded, MANIFEST, &manifest, &manifest_hash)?);
    for rel in on_disk {
        if !hashes.contains_key(&rel) && rel != MANIFEST {
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

/// One rendered file against the same path under `against`: `None` when identical.
fn compare_one(
    against: &Path,
    recorded: &BTreeMap<String, String>,
    rel: &str,
    artifact: &Artifact,
    expected_sha: &str,
) -> Result<Option<Change>> {
    let path = against.join(rel);
    let Ok(found) = fs::read(&path) else {
        return Ok(Some(Change {
            path: rel.to_owned(),
            status: Status::Added,
            edited_by_hand: false,
            cause: None,
            expected_sha256: Some(expected_sha.to_owned()),
            found_sha256: None,
            expected_mode: Some(format!("{:04o}", artifact.mode)),
            found_mode: None,
            diff: unified(rel, "", &String::from_utf8_lossy(&artifact.bytes)),
        }));
    };
    let mode = fs::metadata(&path)?.permissions().mode() & 0o7777;
    let status = if found != artifact.bytes {
        Status::Modified
    } else if mode != artifact.mode {
        Status::ModeChanged
    } else {
        return Ok(None);
    };
    let found_sha = sha256_hex(&found);
    let cause = match recorded.get(rel) {
        _ if rel == MANIFEST => None,
        Some(h) if *h != found_sha => Some(Cause::EditedByHand),
        Some(_) => Some(Cause::PolicyOrToolChanged),
        None => None,
    };
    Ok(Some(Change {
        path: rel.to_owned(),
        status,
        edited_by_hand: cause == Some(Cause::EditedByHand),
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
        expected_sha256: Some(expected_sha.to_owned()),
        found_sha256: Some(found_sha),
        expected_mode: Some(format!("{:04o}", artifact.mode)),
        found_mode: Some(format!("{mode:04o}")),
    }))
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
