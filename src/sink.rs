//! Writing the rendered files to disk, carefully, in one rendering pass. Into a new
//! output directory each file is written as it is rendered (nothing there can be
//! refused). Into an existing one, every file that has to change is first staged in a
//! private directory inside it, and only when nothing was refused are they renamed into
//! place, the manifest last — so a reader never sees half a file, and a refusal leaves
//! the tree exactly as it was. Symlinks are never followed, and files edited by hand
//! since the last `generate` (their bytes no longer match the manifest) are refused
//! unless `--force`. Rendering streams (see `artifact::for_each`), so memory does not
//! grow with the fleet.

use crate::artifact::{self, Artifact, MANIFEST, parse_manifest, sha256_hex};
use crate::drift::{self, Found};
use crate::plan::Plan;
use anyhow::{Context as _, Result, bail};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug, Default)]
pub struct Report {
    pub written: Vec<String>,
    pub unchanged: Vec<String>,
    /// In the previous manifest but no longer generated: left in place, listed.
    pub stale: Vec<String>,
}

/// What the rendering pass decided for a file.
enum Action {
    /// Staged under this name in the staging directory; renamed into place on commit.
    Write(String),
    /// Already in place (a fresh output directory is written as it is rendered).
    Written,
    FixMode(u32),
}

/// Writes what the plan renders into `out`. The plan is rendered once: each file is
/// compared with what is on disk and, if it must change, staged. Nothing in `out`
/// changes until every file has been decided; when anything is refused the staging
/// directory is removed and the error returned.
///
/// With `dry_run` every check and decision is the same (a refusal is the same error),
/// but nothing is staged or written: the report lists what would be written.
pub fn write_tree(plan: &Plan, out: &Path, force: bool, dry_run: bool) -> Result<Report> {
    if out.is_symlink() {
        bail!("`{}` is a symbolic link; give the real directory", out.display());
    }
    if out.exists() && !out.is_dir() {
        bail!("`{}` exists and is not a directory", out.display());
    }
    let fresh = !out.exists();
    check_owner(out, fresh)?;
    let on_disk = OnDisk {
        out,
        previous: match drift::inspect(out, MANIFEST)? {
            Found::File { bytes, .. } => parse_manifest(&String::from_utf8_lossy(&bytes)),
            _ => Default::default(),
        },
        fresh,
        plain_dirs: Mutex::new(HashSet::new()),
    };
    let staging = if dry_run {
        None
    } else {
        Some(Staging::create(out, fresh)?)
    };
    let act = |rel: &str, decision: &Decision, artifact: &Artifact| match &staging {
        Some(staging) => staging.action_for(rel, decision, artifact),
        None => Ok(match decision {
            Decision::Unchanged => None,
            Decision::FixMode => Some(Action::FixMode(artifact.mode)),
            Decision::Write { .. } => Some(Action::Written),
        }),
    };
    let decided = Mutex::new(Decisions::default());
    artifact::for_each(plan, &|rel, artifact| {
        let decision = on_disk.decide(&rel, &artifact)?;
        let action = act(&rel, &decision, &artifact)?;
        decided.lock().expect("decisions lock").record(
            rel,
            (sha256_hex(&artifact.bytes), artifact.mode),
            decision,
            action,
        );
        Ok(())
    })?;
    let mut decided = decided.into_inner().expect("decisions lock");
    let manifest_artifact = Artifact {
        bytes: artifact::manifest(&decided.hashes).into_bytes(),
        mode: 0o644,
    };
    let decision = on_disk.decide(MANIFEST, &manifest_artifact)?;
    let action = act(MANIFEST, &decision, &manifest_artifact)?;
    decided.record(MANIFEST.to_owned(), (String::new(), 0), decision, action);
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
    let Some(staging) = staging else {
        // A dry run: what would be written, nothing staged.
        let stale = on_disk
            .previous
            .keys()
            .filter(|p| !decided.hashes.contains_key(*p) && *p != MANIFEST)
            .cloned()
            .collect();
        return Ok(Report {
            stale,
            written: decided.actions.into_keys().collect(),
            unchanged: decided.unchanged,
        });
    };
    // Commit: the manifest last, so an interrupted commit leaves files whose bytes match
    // the new rendering but not the old manifest — the next run reports them as written
    // by the tool (its own bytes), never as hand edits lost.
    let manifest_action = decided.actions.remove(MANIFEST);
    for (rel, action) in &decided.actions {
        staging.commit(rel, action)?;
    }
    if let Some(action) = &manifest_action {
        staging.commit(MANIFEST, action)?;
    }
    staging.finish()?;
    let mut report = Report {
        stale: on_disk
            .previous
            .keys()
            .filter(|p| !decided.hashes.contains_key(*p) && *p != MANIFEST)
            .cloned()
            .collect(),
        written: decided.actions.into_keys().collect(),
        unchanged: decided.unchanged,
    };
    if manifest_action.is_some() {
        report.written.push(MANIFEST.to_owned());
    }
    Ok(report)
}

#[derive(Default)]
struct Decisions {
    /// Path → (sha256, mode): what the new manifest records.
    hashes: BTreeMap<String, (String, u32)>,
    actions: BTreeMap<String, Action>,
    hand_edited: Vec<String>,
    unchanged: Vec<String>,
}

impl Decisions {
    fn record(&mut self, rel: String, hash: (String, u32), decision: Decision, action: Option<Action>) {
        if let Decision::Write { hand_edited: true } = decision {
            self.hand_edited.push(rel.clone());
        }
        match action {
            Some(action) => {
                self.actions.insert(rel.clone(), action);
            }
            None => self.unchanged.push(rel.clone()),
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

/// What is on disk before the run: the output directory, the previous manifest, and the
/// directories already checked for symlinks (each is checked once, not once per file).
struct OnDisk<'a> {
    out: &'a Path,
    previous: BTreeMap<String, String>,
    /// The output directory did not exist: nothing can be there to compare or refuse.
    fresh: bool,
    plain_dirs: Mutex<HashSet<PathBuf>>,
}

impl OnDisk<'_> {
    fn decide(&self, rel: &str, artifact: &Artifact) -> Result<Decision> {
        if self.fresh {
            return Ok(Decision::Write { hand_edited: false });
        }
        let path = self.out.join(rel);
        if let Some(found) = self.first_symlink(rel) {
            bail!("refusing to write through the symbolic link `{found}`");
        }
        // No symlink is followed and nothing but a regular file is opened (a FIFO would
        // block, a device never end); the read is bounded.
        match drift::inspect(self.out, rel)? {
            Found::File { bytes, mode } if bytes == artifact.bytes => Ok(if mode == artifact.mode {
                Decision::Unchanged
            } else {
                Decision::FixMode
            }),
            Found::File { bytes, .. } => {
                let generated_before = self.previous.get(rel).is_some_and(|hash| *hash == sha256_hex(&bytes));
                Ok(Decision::Write {
                    hand_edited: !generated_before && rel != MANIFEST,
                })
            }
            Found::Missing => Ok(Decision::Write { hand_edited: false }),
            Found::Other(what) => bail!("refusing to replace `{}`: it is {what}", path.display()),
        }
    }

    /// The first existing symlink on the way from `out` to `out/rel`, if any.
    fn first_symlink(&self, rel: &str) -> Option<String> {
        let mut path = self.out.to_path_buf();
        let mut parts = rel.split('/').peekable();
        while let Some(part) = parts.next() {
            path.push(part);
            let is_dir = parts.peek().is_some();
            if is_dir && self.plain_dirs.lock().expect("plain dirs lock").contains(&path) {
                continue;
            }
            if path.is_symlink() {
                return Some(path.display().to_string());
            }
            if is_dir && path.is_dir() {
                self.plain_dirs.lock().expect("plain dirs lock").insert(path.clone());
            }
        }
        None
    }
}

/// Where the files go before they are in place. Dropped without `finish` (a refusal, an
/// error) it takes back what it did: the staging directory is removed, and so is `out`
/// when this run created it. No fsync: the artifacts can always be generated again, and
/// fifteen thousand fsyncs cost tens of seconds.
struct Staging {
    out: PathBuf,
    /// `out/.pgbr-staging-<pid>` when `out` existed: files that must change are written
    /// there and renamed into place only once nothing was refused. `None` when `out` did
    /// not exist: nothing there can be refused, so files are written in place as they are
    /// rendered (each through a temporary file and a rename in its own directory), with
    /// no commit pass.
    dir: Option<PathBuf>,
    next: AtomicUsize,
    /// Directories known to exist (each is created once, not once per file).
    made: Mutex<HashSet<PathBuf>>,
    /// The staging subdirectory (a number) of each first part of a staged path.
    groups: Mutex<HashMap<String, usize>>,
    finished: bool,
}

impl Staging {
    fn create(out: &Path, fresh: bool) -> Result<Self> {
        if fresh {
            // The parents as needed, then `out` itself, which must not exist: a
            // directory someone made in between (in a shared parent) is not adopted.
            if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::create_dir_all(parent).with_context(|| format!("cannot create `{}`", parent.display()))?;
            }
            fs::create_dir(out).with_context(|| format!("cannot create `{}`", out.display()))?;
        }
        let mut staging = Self {
            out: out.to_path_buf(),
            dir: None,
            next: AtomicUsize::new(0),
            made: Mutex::new(HashSet::new()),
            groups: Mutex::new(HashMap::new()),
            finished: false,
        };
        if !fresh {
            remove_abandoned_staging(out);
            let dir = out.join(format!("{STAGING_PREFIX}{}", std::process::id()));
            fs::create_dir(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
            staging.dir = Some(dir);
        }
        Ok(staging)
    }

    /// What the commit will do for a decision: stage the bytes, fix the mode, or nothing.
    fn action_for(&self, rel: &str, decision: &Decision, artifact: &Artifact) -> Result<Option<Action>> {
        Ok(match decision {
            Decision::Unchanged => None,
            Decision::FixMode => Some(Action::FixMode(artifact.mode)),
            Decision::Write { .. } => match &self.dir {
                None => {
                    let target = self.out.join(rel);
                    let tmp = self.tmp_beside(&target)?;
                    write_new(&tmp, artifact)?;
                    rename(&tmp, &target)?;
                    Some(Action::Written)
                }
                Some(dir) => Some(Action::Write(self.stage(dir, rel, artifact)?)),
            },
        })
    }

    /// Stages under `<n>/<number>`, one numbered subdirectory per first part of `rel`
    /// (per cluster): one cluster is rendered by one thread, so threads never create
    /// files in the same directory (on ext4, two threads creating in one directory
    /// spend most of their time waiting on its lock). Only numbers: no part of a
    /// generated path is ever interpreted inside the staging directory.
    fn stage(&self, dir: &Path, rel: &str, artifact: &Artifact) -> Result<String> {
        let group = rel.split_once('/').map_or("", |(first, _)| first);
        let sub = {
            let mut groups = self.groups.lock().expect("staging groups lock");
            let next = groups.len();
            match groups.entry(group.to_owned()) {
                std::collections::hash_map::Entry::Occupied(e) => *e.get(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let sub = dir.join(next.to_string());
                    fs::create_dir(&sub).with_context(|| format!("cannot create `{}`", sub.display()))?;
                    *e.insert(next)
                }
            }
        };
        let name = format!("{sub}/{}", self.next.fetch_add(1, Ordering::Relaxed));
        write_new(&dir.join(&name), artifact)?;
        Ok(name)
    }

    /// `.<name>.pgbr-tmp-<pid>` beside `target`, its directory created if needed.
    fn tmp_beside(&self, target: &Path) -> Result<PathBuf> {
        let parent = target.parent().context("output path has no parent")?;
        self.make_dir(parent)?;
        let name = target.file_name().context("output path has no file name")?;
        Ok(parent.join(format!(".{}.pgbr-tmp-{}", name.to_string_lossy(), std::process::id())))
    }

    fn make_dir(&self, dir: &Path) -> Result<()> {
        if self.made.lock().expect("made lock").contains(dir) {
            return Ok(());
        }
        fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
        self.made.lock().expect("made lock").insert(dir.to_path_buf());
        Ok(())
    }

    fn commit(&self, rel: &str, action: &Action) -> Result<()> {
        let target = self.out.join(rel);
        match action {
            Action::Written => Ok(()),
            Action::Write(staged) => {
                let dir = self.dir.as_ref().context("no staging directory")?;
                self.make_dir(target.parent().context("output path has no parent")?)?;
                rename(&dir.join(staged), &target)
            }
            Action::FixMode(mode) => fs::set_permissions(&target, fs::Permissions::from_mode(*mode))
                .with_context(|| format!("cannot set the mode of `{}`", target.display())),
        }
    }

    fn finish(mut self) -> Result<()> {
        self.finished = true;
        let Some(dir) = &self.dir else { return Ok(()) };
        for sub in self.groups.lock().expect("staging groups lock").values() {
            let sub = dir.join(sub.to_string());
            fs::remove_dir(&sub).with_context(|| format!("cannot remove `{}`", sub.display()))?;
        }
        fs::remove_dir(dir).with_context(|| format!("cannot remove `{}`", dir.display()))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        match &self.dir {
            Some(dir) => {
                let _ = fs::remove_dir_all(dir);
            }
            // Everything under `out` is this run's: it did not exist when the run began.
            None => {
                let _ = fs::remove_dir_all(&self.out);
            }
        }
    }
}

const STAGING_PREFIX: &str = ".pgbr-staging-";

/// Refuses an output directory (or, when it is to be made, the nearest existing
/// directory above it) that belongs to a user other than the one running generate or
/// root: that user could swap the directory's entries while the files are written
/// (as root, through a symlink, anywhere).
fn check_owner(out: &Path, fresh: bool) -> Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    let me = rustix::process::geteuid().as_raw();
    let (dir, what) = if fresh {
        let mut dir = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        while fs::symlink_metadata(dir).is_err() {
            match dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                Some(up) => dir = up,
                None => {
                    dir = Path::new(".");
                    break;
                }
            }
        }
        (dir, "the directory it would be created in, ")
    } else {
        (out, "")
    };
    let meta = fs::metadata(dir).with_context(|| format!("cannot inspect `{}`", dir.display()))?;
    let owner = meta.uid();
    if owner != me && owner != 0 {
        bail!(
            "refusing to write into `{}`: {what}`{}`, belongs to {} (uid {owner}), not to the user running generate or root; that user could swap its entries while the files are written. Use a directory of your own",
            out.display(),
            dir.display(),
            user_name(owner).map_or_else(|| "another user".to_owned(), |n| format!("`{n}`")),
        );
    }
    Ok(())
}

/// The name of a user id, from /etc/passwd.
fn user_name(uid: u32) -> Option<String> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        (id == uid).then(|| name.to_owned())
    })
}

/// Removes the staging directories of runs that were killed (their process is gone, or
/// the pid is ours now): they hold only copies of generated files.
fn remove_abandoned_staging(out: &Path) {
    let Ok(entries) = fs::read_dir(out) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(STAGING_PREFIX)) else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else { continue };
        let alive = pid != std::process::id() && Path::new(&format!("/proc/{pid}")).exists();
        let is_plain_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if !alive && is_plain_dir {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Creates `path` (it must not exist), writes the bytes, then sets the mode: a file is
/// never readable by others before its mode says so.
fn write_new(path: &Path, artifact: &Artifact) -> Result<()> {
    let result = (|| -> std::io::Result<()> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(&artifact.bytes)?;
        file.set_permissions(fs::Permissions::from_mode(artifact.mode))
    })();
    if result.is_err() {
        let _ = fs::remove_file(path);
    }
    result.with_context(|| format!("cannot write `{}`", path.display()))
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).with_context(|| format!("cannot write `{}`", to.display()))
}
