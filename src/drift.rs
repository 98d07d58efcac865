//! Comparing what `generate` would write with a directory, said from the tree's side:
//! missing, not generated, modified and mode-changed files, as a unified diff or one
//! line per file. The rendered side always comes from `artifact::for_each`, the same
//! code path as `generate`. Files a committed tree holds for its own sake (`.git`,
//! `.gitkeep`, README*, what `.pgbr-ignore` lists) are not drift.

use crate::artifact::{self, Artifact, MANIFEST, parse_manifest, parse_manifest_modes, sha256_hex};
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
    /// generate would create it: the tree lacks it
    Missing,
    /// in the tree, but generate does not produce it
    NotGenerated,
    Modified,
    ModeChanged,
}

/// Why a file differs, when the directory has a MANIFEST.sha256 to tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// The file no longer matches the checksum (or mode) generate recorded for it.
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

    /// The words for a change of `status`: a mode is changed, not edited.
    pub fn describe_for(self, status: Status) -> &'static str {
        match (self, status) {
            (Cause::EditedByHand, Status::ModeChanged) => "changed by hand since it was generated",
            _ => self.describe(),
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
    /// What is there instead of a regular file, when it is not one (a symbolic link, a
    /// FIFO, a device, a directory, a file too large to read): never followed or opened.
    pub found_type: Option<String>,
    #[serde(skip)]
    pub diff: String,
}

/// Files larger than this are reported, not read: generated files are a few hundred KB.
pub const READ_LIMIT: u64 = 64 << 20;

/// What is at a path of the tree, read without following a symbolic link anywhere on
/// the way and without opening anything but a regular file.
pub enum Found {
    Missing,
    File {
        bytes: Vec<u8>,
        mode: u32,
    },
    /// Not a regular file: what it is, in words.
    Other(String),
}

/// Inspects `root/rel`: every component below `root` is checked with lstat (a symbolic
/// link or a non-directory on the way is reported, not followed); the file itself is
/// opened with O_NOFOLLOW and O_NONBLOCK (a FIFO swapped in does not block), checked to
/// be the regular file lstat saw, and read up to [`READ_LIMIT`].
pub fn inspect(root: &Path, rel: &str) -> Result<Found> {
    let mut path = root.to_path_buf();
    let parts: Vec<&str> = rel.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        path.push(part);
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Missing),
            Err(e) => return Err(e).with_context(|| format!("cannot inspect `{}`", path.display())),
        };
        let last = i + 1 == parts.len();
        let what = describe(&path, &meta);
        let shown = parts[..=i].join("/");
        if !last {
            if !meta.is_dir() {
                return Ok(Found::Other(format!("`{shown}` on the way is {what}")));
            }
            continue;
        }
        return judged_read(&path, &meta, what);
    }
    Ok(Found::Missing)
}

/// Reads one file whose last component must be a regular file (a symlink there is
/// reported, not followed; a FIFO or device is not opened), bounded by [`READ_LIMIT`].
/// The directories on the way are the host's and are followed.
pub fn read_file(path: &Path) -> Result<Found> {
    match fs::symlink_metadata(path) {
        Ok(meta) => {
            let what = describe(path, &meta);
            judged_read(path, &meta, what)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Found::Missing),
        Err(e) => Err(e).with_context(|| format!("cannot inspect `{}`", path.display())),
    }
}

fn judged_read(path: &Path, meta: &fs::Metadata, what: String) -> Result<Found> {
    if !meta.is_file() {
        return Ok(Found::Other(what));
    }
    if meta.len() > READ_LIMIT {
        return Ok(Found::Other(too_large(meta.len())));
    }
    read_no_follow(path, meta)
}

fn too_large(len: u64) -> String {
    format!("a file of {len} bytes, larger than the {READ_LIMIT} bytes read (not read)")
}

fn read_no_follow(path: &Path, seen: &fs::Metadata) -> Result<Found> {
    use rustix::fs::{Mode, OFlags};
    use std::io::Read as _;
    use std::os::unix::fs::MetadataExt as _;
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let fd = match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => fd,
        // Swapped for a symbolic link since lstat: not followed.
        Err(rustix::io::Errno::LOOP) => return Ok(Found::Other("a symbolic link (not followed)".into())),
        Err(e) => return Err(std::io::Error::from(e)).with_context(|| format!("cannot read `{}`", path.display())),
    };
    let file = fs::File::from(fd);
    let meta = file.metadata()?;
    if !meta.is_file() || meta.ino() != seen.ino() || meta.dev() != seen.dev() {
        return Ok(Found::Other("an entry replaced while it was read (not read)".into()));
    }
    let mut bytes = Vec::new();
    file.take(READ_LIMIT + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > READ_LIMIT {
        return Ok(Found::Other(too_large(bytes.len() as u64)));
    }
    Ok(Found::File {
        bytes,
        mode: meta.permissions().mode() & 0o7777,
    })
}

/// An entry in words, from its lstat: what a reader of the report needs to act on it.
fn describe(path: &Path, meta: &fs::Metadata) -> String {
    use std::os::unix::fs::FileTypeExt as _;
    let t = meta.file_type();
    if t.is_symlink() {
        match fs::read_link(path) {
            Ok(target) => format!("a symbolic link to `{}` (not followed)", target.display()),
            Err(_) => "a symbolic link (not followed)".into(),
        }
    } else if t.is_dir() {
        "a directory".into()
    } else if t.is_fifo() {
        "a FIFO (not opened)".into()
    } else if t.is_char_device() || t.is_block_device() {
        "a device (not opened)".into()
    } else if t.is_socket() {
        "a socket (not opened)".into()
    } else {
        "a regular file".into()
    }
}

/// What a committed tree may hold besides the generated files: `.git`, `.gitkeep`,
/// `.gitignore`, `.gitattributes` and README* anywhere, the ignore file itself, and the
/// patterns of `DIR/.pgbr-ignore` (one per line, `#` comments; `*` and `?` match within
/// a name; a pattern with no `/` matches a name at any depth; one with a `/` matches the
/// path from the tree's root; a trailing `/` matches a directory and all below it). It
/// never hides a generated file: those are always compared.
pub struct Ignore {
    patterns: Vec<(String, bool)>,
}

pub const IGNORE_FILE: &str = ".pgbr-ignore";

impl Ignore {
    pub fn load(root: &Path) -> Result<Ignore> {
        let text = match inspect(root, IGNORE_FILE)? {
            Found::File { bytes, .. } => String::from_utf8_lossy(&bytes).into_owned(),
            _ => String::new(),
        };
        Ok(Ignore::parse(&text))
    }

    pub fn parse(text: &str) -> Ignore {
        let patterns = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let dir = l.ends_with('/');
                (l.trim_matches('/').to_owned(), dir)
            })
            .filter(|(p, _)| !p.is_empty())
            .collect();
        Ignore { patterns }
    }

    /// Whether `rel` (a path below the tree, `/`-separated) is the tree's own business.
    pub fn ignores(&self, rel: &str, is_dir: bool) -> bool {
        let name = rel.rsplit('/').next().unwrap_or(rel);
        if matches!(
            name,
            ".git" | ".gitkeep" | ".gitignore" | ".gitattributes" | IGNORE_FILE
        ) || name.starts_with("README")
        {
            return true;
        }
        self.patterns.iter().any(|(pattern, dir_only)| {
            if *dir_only && !is_dir {
                return false;
            }
            if pattern.contains('/') {
                glob(pattern, rel)
            } else {
                glob(pattern, name)
            }
        })
    }
}

/// `*` (any run of characters but `/`) and `?` (one character but `/`).
fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len())
                .take_while(|&i| i == 0 || t[i - 1] != '/')
                .any(|i| go(rest, &t[i..])),
            Some(('?', rest)) => t.first().is_some_and(|c| *c != '/') && go(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

/// Every entry below `dir` that is not a directory, relative to `root`; a directory the
/// ignore rule covers is not entered (a `.git` of thousands of objects costs nothing).
fn walk(root: &Path, dir: &Path, ignore: &Ignore, out: &mut Vec<String>) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .with_context(|| format!("cannot read `{}`", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let kind = entry.file_type()?;
        let rel = path
            .strip_prefix(root)
            .expect("below root")
            .to_string_lossy()
            .into_owned();
        if kind.is_dir() {
            if !ignore.ignores(&rel, true) {
                walk(root, &path, ignore, out)?;
            }
        } else {
            out.push(rel);
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
    let recorded = match inspect(against, MANIFEST)? {
        Found::File { bytes, .. } => {
            let text = String::from_utf8_lossy(&bytes);
            Recorded {
                hashes: parse_manifest(&text),
                modes: parse_manifest_modes(&text),
            }
        }
        _ => Recorded::default(),
    };
    let ignore = Ignore::load(against)?;
    let mut on_disk = Vec::new();
    walk(against, against, &ignore, &mut on_disk)?;
    let changes = Mutex::new(Vec::new());
    let hashes = Mutex::new(BTreeMap::new());
    artifact::for_each(plan, &|path, artifact| {
        let hash = sha256_hex(&artifact.bytes);
        if let Some(change) = compare_one(against, &recorded, &path, &artifact, &hash)? {
            changes.lock().expect("changes lock").push(change);
        }
        hashes.lock().expect("hashes lock").insert(path, (hash, artifact.mode));
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
        if !hashes.contains_key(&rel) && rel != MANIFEST && !ignore.ignores(&rel, false) {
            let (found_sha256, found_type, diff) = match inspect(against, &rel)? {
                Found::File { bytes, .. } => (
                    Some(sha256_hex(&bytes)),
                    None,
                    unified(&rel, &String::from_utf8_lossy(&bytes), ""),
                ),
                Found::Other(what) => (None, Some(what), String::new()),
                Found::Missing => continue,
            };
            changes.push(Change {
                path: rel.clone(),
                status: Status::NotGenerated,
                edited_by_hand: false,
                cause: None,
                expected_sha256: None,
                found_sha256,
                expected_mode: None,
                found_mode: None,
                found_type,
                diff,
            });
        }
    }
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(changes)
}

/// One rendered file against the same path under `against`: `None` when identical.
/// What the tree's MANIFEST.sha256 recorded when it was generated.
#[derive(Default)]
struct Recorded {
    hashes: BTreeMap<String, String>,
    modes: BTreeMap<String, u32>,
}

fn compare_one(
    against: &Path,
    recorded: &Recorded,
    rel: &str,
    artifact: &Artifact,
    expected_sha: &str,
) -> Result<Option<Change>> {
    let (found, mode) = match inspect(against, rel)? {
        Found::File { bytes, mode } => (bytes, mode),
        Found::Missing => {
            return Ok(Some(Change {
                path: rel.to_owned(),
                status: Status::Missing,
                edited_by_hand: false,
                cause: None,
                expected_sha256: Some(expected_sha.to_owned()),
                found_sha256: None,
                expected_mode: Some(format!("{:04o}", artifact.mode)),
                found_mode: None,
                found_type: None,
                diff: unified(rel, "", &String::from_utf8_lossy(&artifact.bytes)),
            }));
        }
        Found::Other(what) => {
            return Ok(Some(Change {
                path: rel.to_owned(),
                status: Status::Modified,
                edited_by_hand: false,
                cause: None,
                expected_sha256: Some(expected_sha.to_owned()),
                found_sha256: None,
                expected_mode: Some(format!("{:04o}", artifact.mode)),
                found_mode: None,
                diff: String::new(),
                found_type: Some(what),
            }));
        }
    };
    let status = if found != artifact.bytes {
        Status::Modified
    } else if mode != artifact.mode {
        Status::ModeChanged
    } else {
        return Ok(None);
    };
    let found_sha = sha256_hex(&found);
    let cause = match recorded.hashes.get(rel) {
        _ if rel == MANIFEST => None,
        Some(h) if *h != found_sha => Some(Cause::EditedByHand),
        // Same bytes as generated, another mode: the manifest's mode tells who changed it.
        Some(_) if status == Status::ModeChanged => match recorded.modes.get(rel) {
            Some(m) if *m != mode => Some(Cause::EditedByHand),
            Some(_) => Some(Cause::PolicyOrToolChanged),
            None => None,
        },
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
        found_type: None,
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
            Status::Missing => "missing",
            Status::NotGenerated => "not generated",
            Status::Modified => "modified",
            Status::ModeChanged => "mode changed",
        }
    }
}
