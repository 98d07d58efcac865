//! Writing the rendered files to disk, carefully: each through a temporary file and a
//! rename (never half-written), modes set before the rename, symlinks never followed,
//! and files edited by hand since the last `generate` (their bytes no longer match the
//! manifest) left alone unless `--force`. Nothing is written when anything is refused.
//! Rendering streams (see `artifact::for_each`), so memory does not grow with the fleet.

use crate::artifact::{self, Artifact, MANIFEST, parse_manifest, sha256_hex};
use crate::plan::Plan;
use anyhow::{Context as _, Result, bail};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct Report {
    pub written: Vec<String>,
    pub unchanged: Vec<String>,
    /// In the previous manifest but no longer generated: left in place, listed.
    pub stale: Vec<String>,
}

/// What pass one decided for a file.
enum Action {
    Write,
    FixMode,
}

/// Writes what the plan renders into `out`, in two passes over the same rendering: the
/// first decides (and refuses hand-edited files unless `force`) holding only paths and
/// checksums, the second writes. Nothing is written when anything is refused.
pub fn write_tree(plan: &Plan, out: &Path, force: bool) -> Result<Report> {
    if out.is_symlink() {
        bail!("`{}` is a symbolic link; give the real directory", out.display());
    }
    if out.exists() && !out.is_dir() {
        bail!("`{}` exists and is not a directory", out.display());
    }
    let previous = match fs::read_to_string(out.join(MANIFEST)) {
        Ok(text) => parse_manifest(&text),
        Err(_) => Default::default(),
    };
    let decided = Mutex::new(Decisions::default());
    artifact::for_each(plan, &|rel, artifact| {
        let decision = decide(out, &previous, &rel, &artifact)?;
        decided
            .lock()
            .expect("decisions lock")
            .record(rel, sha256_hex(&artifact.bytes), decision);
        Ok(())
    })?;
    let mut decided = decided.into_inner().expect("decisions lock");
    let manifest = artifact::manifest(&decided.hashes);
    let manifest_artifact = Artifact {
        bytes: manifest.into_bytes(),
        mode: 0o644,
    };
    let decision = decide(out, &previous, MANIFEST, &manifest_artifact)?;
    decided.record(MANIFEST.to_owned(), String::new(), decision);
    if !decided.hand_edited.is_empty() && !force {
        decided.hand_edited.sort();
        bail!(
            "{} file{} changed since they were generated (their content no longer matches {MANIFEST}):\n  {}\nnothing was written; review them, then re-run with --force to overwrite",
            decided.hand_edited.len(),
            if decided.hand_edited.len() == 1 {
                " was"
            } else {
                "s were"
            },
            decided.hand_edited.join("\n  ")
        );
    }
    let act = |rel: &str, artifact: &Artifact| -> Result<()> {
        match decided.actions.get(rel) {
            Some(Action::Write) => write_file(&out.join(rel), &artifact.bytes, artifact.mode),
            Some(Action::FixMode) => fs::set_permissions(out.join(rel), fs::Permissions::from_mode(artifact.mode))
                .with_context(|| format!("cannot set the mode of `{}`", out.join(rel).display())),
            None => Ok(()),
        }
    };
    if decided.actions.keys().any(|p| p != MANIFEST) {
        artifact::for_each(plan, &|rel, artifact| act(&rel, &artifact))?;
    }
    act(MANIFEST, &manifest_artifact)?;
    let mut report = Report {
        stale: previous
            .keys()
            .filter(|p| !decided.hashes.contains_key(*p) && *p != MANIFEST)
            .cloned()
            .collect(),
        ..Report::default()
    };
    for (rel, action) in &decided.actions {
        if matches!(action, Action::Write | Action::FixMode) {
            report.written.push(rel.clone());
        }
    }
    report.unchanged = decided.unchanged;
    Ok(report)
}

#[derive(Default)]
struct Decisions {
    hashes: BTreeMap<String, String>,
    actions: BTreeMap<String, Action>,
    hand_edited: Vec<String>,
    unchanged: Vec<String>,
}

impl Decisions {
    fn record(&mut self, rel: String, hash: String, decision: Decision) {
        match decision {
            Decision::Unchanged => self.unchanged.push(rel.clone()),
            Decision::FixMode => {
                self.actions.insert(rel.clone(), Action::FixMode);
            }
            Decision::Write { hand_edited } => {
                if hand_edited {
                    self.hand_edited.push(rel.clone());
                }
                self.actions.insert(rel.clone(), Action::Write);
            }
        }
        if rel != MANIFEST {
            self.hashes.insert(rel, hash);
        }
    }
}

enum Decision {
    Unchanged,
    FixMode,
    Write { hand_edited: bool },
}

fn decide(out: &Path, previous: &BTreeMap<String, String>, rel: &str, artifact: &Artifact) -> Result<Decision> {
    let path = out.join(rel);
    if let Some(found) = first_symlink(out, rel) {
        bail!("refusing to write through the symbolic link `{found}`");
    }
    match fs::read(&path) {
        Ok(current) if current == artifact.bytes => {
            let mode = fs::metadata(&path)?.permissions().mode() & 0o7777;
            Ok(if mode == artifact.mode {
                Decision::Unchanged
            } else {
                Decision::FixMode
            })
        }
        Ok(current) => {
            let generated_before = previous.get(rel).is_some_and(|hash| *hash == sha256_hex(&current));
            Ok(Decision::Write {
                hand_edited: !generated_before && rel != MANIFEST,
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Decision::Write { hand_edited: false }),
        Err(e) => Err(e).with_context(|| format!("cannot read `{}`", path.display())),
    }
}

/// The first existing symlink on the way from `root` to `root/rel`, if any.
fn first_symlink(root: &Path, rel: &str) -> Option<String> {
    let mut path = root.to_path_buf();
    for part in rel.split('/') {
        path.push(part);
        if path.is_symlink() {
            return Some(path.display().to_string());
        }
    }
    None
}

/// Temporary file + rename: a reader never sees half a file. No fsync per file: the
/// artifacts can always be generated again, and a thousand fsyncs cost seconds.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().context("output path has no parent")?;
    fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let name = path
        .file_name()
        .context("output path has no file name")?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.pgbr-tmp-{}", std::process::id()));
    let result = (|| -> Result<()> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        fs::rename(&tmp, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write `{}`", path.display()))
}
