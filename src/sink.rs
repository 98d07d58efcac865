//! Writing a rendered tree to disk, carefully: each file through a temporary file and a
//! rename (never half-written), modes set before the rename, symlinks never followed,
//! and files edited by hand since the last `generate` (their bytes no longer match the
//! manifest) left alone unless `--force`. Nothing is written when anything is refused.

use crate::artifact::{MANIFEST, Tree, parse_manifest, sha256_hex};
use anyhow::{Context as _, Result, bail};
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

#[derive(Debug, Default)]
pub struct Report {
    pub written: Vec<String>,
    pub unchanged: Vec<String>,
    /// In the previous manifest but no longer generated: left in place, listed.
    pub stale: Vec<String>,
}

pub fn write_tree(tree: &Tree, out: &Path, force: bool) -> Result<Report> {
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
    let mut report = Report::default();
    let mut hand_edited = Vec::new();
    let mut to_write = Vec::new();
    for (rel, artifact) in tree {
        let path = out.join(rel);
        if let Some(found) = first_symlink(out, rel) {
            bail!("refusing to write through the symbolic link `{}`", found);
        }
        match fs::read(&path) {
            Ok(current) if current == artifact.bytes => {
                let mode = fs::metadata(&path)?.permissions().mode() & 0o7777;
                if mode == artifact.mode {
                    report.unchanged.push(rel.clone());
                } else {
                    to_write.push(rel);
                }
            }
            Ok(current) => {
                let generated_before = previous.get(rel).is_some_and(|hash| *hash == sha256_hex(&current));
                if !generated_before && rel != MANIFEST {
                    hand_edited.push(rel.clone());
                }
                to_write.push(rel);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => to_write.push(rel),
            Err(e) => return Err(e).with_context(|| format!("cannot read `{}`", path.display())),
        }
    }
    if !hand_edited.is_empty() && !force {
        bail!(
            "{} file{} changed since they were generated (their content no longer matches {MANIFEST}):\n  {}\nnothing was written; review them, then re-run with --force to overwrite",
            hand_edited.len(),
            if hand_edited.len() == 1 { " was" } else { "s were" },
            hand_edited.join("\n  ")
        );
    }
    for rel in to_write {
        let artifact = &tree[rel];
        write_atomic(&out.join(rel), &artifact.bytes, artifact.mode)?;
        report.written.push(rel.clone());
    }
    report.stale = previous.keys().filter(|p| !tree.contains_key(*p)).cloned().collect();
    Ok(report)
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

fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
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
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write `{}`", path.display()))
}
