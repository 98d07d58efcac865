//! Drift against a deployed host: what the plan installs vs what is there, under a root
//! directory (`/` in production, a fake root in tests). Files the plan installs from the
//! artifact tree (configuration, unit, tmpfiles entry) by content; the managed block of
//! the live pg_hba.conf / pg_ident.conf (only the block); owner, group and mode of every
//! planned path; and the data directory tree, walked by two threads with memory that
//! does not grow with the number of files.

use crate::artifact::{Rendering, Tree};
use crate::drift::{self, Found};
use crate::plan::block::{self, Span};
use crate::plan::{ClusterPlan, DataDirRule, Mode, PathKind, Plan, Verdict};
use serde::Serialize;
use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

/// One way the host differs from the plan.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Finding {
    pub cluster: String,
    /// The path (as on the host) or the object the finding is about.
    pub item: String,
    pub problem: String,
    pub expected: String,
    pub found: String,
}

/// Examples of data-directory entries kept per kind of problem: enough to act on, and
/// bounded so that a tree of millions of bad entries does not fill memory.
const EXAMPLES: usize = 5;

/// User and group names to numeric ids. On the host itself (`--root /`) through NSS
/// (getpwnam/getgrnam: LDAP, SSSD, systemd users as the host sees them); under another
/// root from that root's etc/passwd and etc/group (the host's own when the root has
/// none). Owners are compared by id, as the host does.
enum Ids {
    Nss,
    Files {
        users: HashMap<String, u32>,
        groups: HashMap<String, u32>,
    },
}

impl Ids {
    fn load(root: &Path) -> Ids {
        if root == Path::new("/") {
            return Ids::Nss;
        }
        let read = |name: &str| {
            fs::read_to_string(root.join("etc").join(name))
                .or_else(|_| fs::read_to_string(Path::new("/etc").join(name)))
                .unwrap_or_default()
        };
        let parse = |text: String| {
            text.lines()
                .filter_map(|line| {
                    let mut fields = line.split(':');
                    let name = fields.next()?;
                    let id = fields.nth(1)?.parse().ok()?;
                    Some((name.to_owned(), id))
                })
                .collect()
        };
        Ids::Files {
            users: parse(read("passwd")),
            groups: parse(read("group")),
        }
    }

    fn user(&self, name: &str) -> Option<u32> {
        match self {
            Ids::Nss => nix::unistd::User::from_name(name)
                .ok()
                .flatten()
                .map(|u| u.uid.as_raw()),
            Ids::Files { users, .. } => users.get(name).copied(),
        }
    }

    fn group(&self, name: &str) -> Option<u32> {
        match self {
            Ids::Nss => nix::unistd::Group::from_name(name)
                .ok()
                .flatten()
                .map(|g| g.gid.as_raw()),
            Ids::Files { groups, .. } => groups.get(name).copied(),
        }
    }
}

fn on_root(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// The plans to check on this host: every single-host cluster's, or with `host`, the view
/// of that host in every cluster that has it (a cluster with a repository host has one
/// plan per host, and a host has only its own files).
fn views<'a>(plan: &'a Plan, host: Option<&str>) -> anyhow::Result<Vec<(&'a ClusterPlan, &'a ClusterPlan)>> {
    let mut out = Vec::new();
    for cluster in &plan.clusters {
        match (host, cluster.hosts.is_empty()) {
            (None, true) => out.push((cluster, cluster)),
            (None, false) => anyhow::bail!(
                "cluster `{}` has a repository host: say which host this is with --host ({})",
                cluster.name,
                host_names(cluster)
            ),
            (Some(_), true) => {}
            (Some(name), false) => {
                if let Some(view) = cluster.host_view(name) {
                    out.push((cluster, view));
                }
            }
        }
    }
    if let Some(name) = host
        && out.is_empty()
    {
        let known: Vec<String> = plan
            .clusters
            .iter()
            .filter(|c| !c.hosts.is_empty())
            .map(|c| format!("{}: {}", c.name, host_names(c)))
            .collect();
        anyhow::bail!(
            "no cluster of the policy has a host `{name}`{}",
            if known.is_empty() {
                " (--host is for clusters with a repository host)".to_owned()
            } else {
                format!(" (hosts: {})", known.join("; "))
            }
        );
    }
    Ok(out)
}

fn host_names(cluster: &ClusterPlan) -> String {
    cluster
        .hosts
        .iter()
        .filter_map(|h| h.host.as_ref().map(|v| v.name.clone()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where a plan's files are in the output tree: `<cluster>` or `<cluster>/hosts/<host>`.
fn artifact_dir(view: &ClusterPlan) -> String {
    match &view.host {
        Some(h) => format!("{}/{}", view.name, h.directory),
        None => view.name.clone(),
    }
}

pub fn compare(plan: &Plan, root: &Path, host: Option<&str>) -> anyhow::Result<Vec<Finding>> {
    let ids = Ids::load(root);
    let rendering = Rendering::new()?;
    let mut out = Vec::new();
    for (whole, cluster) in views(plan, host)? {
        let tree: Tree = rendering.cluster(plan, whole)?.into_iter().collect();
        let tree = &tree;
        let mut finding = |item: &str, problem: &str, expected: String, found: String| {
            out.push(Finding {
                cluster: cluster.name.clone(),
                item: item.to_owned(),
                problem: problem.to_owned(),
                expected,
                found,
            });
        };
        installed_files(cluster, tree, root, &mut finding);
        for entry in &cluster.paths {
            if entry.kind == PathKind::File {
                continue; // compared by content and mode above
            }
            owner_and_mode(
                root,
                &entry.path,
                &entry.owner,
                &entry.group,
                entry.mode,
                &ids,
                &mut finding,
            );
        }
        if cluster.host_role == "repository" {
            // No PostgreSQL on the repository host.
            continue;
        }
        managed_blocks(cluster, tree, root, &mut finding);
        let rule = &cluster.datadir;
        let pgdata = on_root(root, &rule.data_directory);
        if pgdata.is_dir() {
            let report = walk_pgdata(&data_roots(rule, root), rule);
            for (problem, examples, count) in [
                (
                    "entries of the data directory lack group read",
                    &report.unreadable,
                    report.unreadable_count,
                ),
                (
                    "entries of the data directory are group-writable or open to others",
                    &report.too_open,
                    report.too_open_count,
                ),
            ] {
                if count > 0 {
                    finding(
                        &cluster.postgres.data_directory,
                        problem,
                        "none".into(),
                        format!("{count}, e.g. {}", examples.join(", ")),
                    );
                }
            }
        }
    }
    Ok(out)
}

/// Files apply.sh installs from the artifact tree: same bytes, planned owner and mode.
fn installed_files(
    cluster: &ClusterPlan,
    tree: &Tree,
    root: &Path,
    finding: &mut impl FnMut(&str, &str, String, String),
) {
    let name = artifact_dir(cluster);
    // The plan's one list (src/plan/host.rs), the one apply.sh installs and verify.sh checks.
    let files = cluster
        .installed_files
        .iter()
        .map(|f| (f.target.clone(), format!("{name}/{}", f.source), f.mode.0));
    for (host_path, artifact, mode) in files {
        let Some(expected) = tree.get(&artifact) else { continue };
        match drift::read_file(&on_root(root, &host_path)) {
            Err(_) | Ok(Found::Missing) => finding(
                &host_path,
                "missing",
                format!("the content of {artifact}"),
                "no file".into(),
            ),
            Ok(Found::Other(what)) => finding(
                &host_path,
                "not a regular file",
                format!("the content of {artifact}"),
                what,
            ),
            Ok(Found::File { bytes: found, .. }) if found != expected.bytes => {
                let first = first_changed_line(&expected.bytes, &found);
                finding(
                    &host_path,
                    "content differs from the plan",
                    format!("the content of {artifact}"),
                    first,
                );
            }
            Ok(Found::File { mode: found_mode, .. }) => {
                if found_mode != mode {
                    finding(&host_path, "mode", format!("{mode:04o}"), format!("{found_mode:04o}"));
                }
            }
        }
    }
}

fn first_changed_line(expected: &[u8], found: &[u8]) -> String {
    let expected = String::from_utf8_lossy(expected);
    let found = String::from_utf8_lossy(found);
    for (i, (e, f)) in expected.lines().zip(found.lines()).enumerate() {
        if e != f {
            return format!("line {}: {f:?} (expected {e:?})", i + 1);
        }
    }
    format!(
        "{} lines (expected {})",
        found.lines().count(),
        expected.lines().count()
    )
}

fn owner_and_mode(
    root: &Path,
    path: &str,
    owner: &str,
    group: &str,
    mode: Mode,
    ids: &Ids,
    finding: &mut impl FnMut(&str, &str, String, String),
) {
    let Ok(meta) = fs::symlink_metadata(on_root(root, path)) else {
        finding(
            path,
            "missing",
            format!("{owner}:{group} {mode}"),
            "nothing there".into(),
        );
        return;
    };
    let found_mode = meta.permissions().mode() & 0o7777;
    if found_mode != mode.0 {
        finding(path, "mode", mode.to_string(), format!("{found_mode:04o}"));
    }
    match ids.user(owner) {
        Some(uid) if uid == meta.uid() => {}
        Some(_) => finding(path, "owner", owner.to_owned(), format!("uid {}", meta.uid())),
        None => finding(path, "owner", owner.to_owned(), "no such user on the host".into()),
    }
    match ids.group(group) {
        Some(gid) if gid == meta.gid() => {}
        Some(_) => finding(path, "group", group.to_owned(), format!("gid {}", meta.gid())),
        None => finding(path, "group", group.to_owned(), "no such group on the host".into()),
    }
}

/// The block between this cluster's markers at the top of the live files, compared with
/// the generated snippet; the rest of the files is the site's business.
fn managed_blocks(
    cluster: &ClusterPlan,
    tree: &Tree,
    root: &Path,
    finding: &mut impl FnMut(&str, &str, String, String),
) {
    for (configured, setting, snippet) in [
        (&cluster.postgres.hba_file, "hba_file", "hba/pg_hba.conf.snippet"),
        (&cluster.postgres.ident_file, "ident_file", "hba/pg_ident.conf.snippet"),
    ] {
        // Without a path in the policy, where the server reads it (apply.sh asks the
        // server; this check reads the server's configuration, so it works on a fake
        // root too): the setting in postgresql.conf, else the layout's default place.
        let live = if configured.is_empty() {
            server_file(cluster, root, setting)
        } else {
            configured.clone()
        };
        let Some(expected) = tree.get(&format!("{}/{snippet}", artifact_dir(cluster))) else {
            continue;
        };
        // The live files lie in a directory the cluster owner can write (PGDATA, or
        // /etc/postgresql/<v>/<c> on Debian): a symlink there is not followed (it could
        // point at a secret this report would quote), a FIFO not opened.
        let text = match drift::read_file(&on_root(root, &live)) {
            Ok(Found::File { bytes, .. }) => String::from_utf8_lossy(&bytes).into_owned(),
            Ok(Found::Other(what)) => {
                finding(&live, "not a regular file", "the managed block at the top".into(), what);
                continue;
            }
            Err(_) | Ok(Found::Missing) => {
                finding(
                    &live,
                    "missing",
                    "the managed block at the top".into(),
                    "no file".into(),
                );
                continue;
            }
        };
        let expected = String::from_utf8_lossy(&expected.bytes);
        let lines: Vec<&str> = text.lines().collect();
        match block::find(&lines, &cluster.hba_marker) {
            Ok(Some(Span { begin: a, end: b })) => {
                let block = lines[a..=b].join("\n") + "\n";
                if block != expected {
                    let first = first_changed_line(expected.as_bytes(), block.as_bytes());
                    finding(
                        &live,
                        "managed block differs from the plan",
                        format!("the lines of {snippet}"),
                        first,
                    );
                } else if lines[..a].iter().any(|l| is_rule(l)) {
                    finding(
                        &live,
                        "managed block is not first",
                        "before every other rule".into(),
                        format!("after line {}", a),
                    );
                }
            }
            Ok(None) => finding(
                &live,
                "managed block missing",
                format!("lines between `# BEGIN {0}` and `# END {0}`", cluster.hba_marker),
                "no block".into(),
            ),
            Err(e) => finding(
                &live,
                "managed block malformed",
                "one block between its BEGIN and END markers".into(),
                e.to_string(),
            ),
        }
    }
}

/// Where the server reads `setting` (`hba_file`, `ident_file`) from: the last value in
/// postgresql.conf (in the configuration directory) or postgresql.auto.conf (in the data
/// directory, which wins), else `<configuration directory>/pg_hba.conf`. The
/// configuration directory is the data directory when it holds a postgresql.conf, else
/// the layout's (Debian: /etc/postgresql/<major>/<cluster>).
fn server_file(cluster: &ClusterPlan, root: &Path, setting: &str) -> String {
    let pg = &cluster.postgres;
    // The server's configuration directory is the one it was started with (-D): a
    // data directory holding its own postgresql.conf is it, whatever the layout (a
    // cluster made by initdb on a Debian host); else the layout's directory.
    let own_conf = format!("{}/postgresql.conf", pg.data_directory);
    let config_directory = match drift::read_file(&on_root(root, &own_conf)) {
        Ok(Found::File { .. }) => pg.data_directory.as_str(),
        _ => pg.config_directory.as_str(),
    };
    let mut value = None;
    for conf in [
        format!("{config_directory}/postgresql.conf"),
        format!("{}/postgresql.auto.conf", pg.data_directory),
    ] {
        if let Ok(Found::File { bytes, .. }) = drift::read_file(&on_root(root, &conf)) {
            value = conf_setting(&String::from_utf8_lossy(&bytes), setting).or(value);
        }
    }
    let file = if setting == "hba_file" {
        "pg_hba.conf"
    } else {
        "pg_ident.conf"
    };
    match value {
        // A relative path is relative to the data directory, as for the server.
        Some(v) if v.starts_with('/') => v,
        Some(v) => format!("{}/{v}", pg.data_directory),
        None => format!("{config_directory}/{file}"),
    }
}

/// The last value of `name` in postgresql.conf text (`name = 'value'`, `name value`,
/// comments after `#`); include directives are not followed.
fn conf_setting(text: &str, name: &str) -> Option<String> {
    let mut found = None;
    for line in text.lines() {
        let line = line.trim_start();
        let Some(rest) = line.strip_prefix(name) else { continue };
        if !rest.starts_with([' ', '\t', '=']) {
            continue;
        }
        let rest = rest.trim_start().trim_start_matches('=').trim_start();
        let value = if let Some(quoted) = rest.strip_prefix('\'') {
            let mut value = String::new();
            let mut chars = quoted.chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '\'' if chars.peek() == Some(&'\'') => {
                        chars.next();
                        value.push('\'');
                    }
                    '\'' => break,
                    _ => value.push(c),
                }
            }
            value
        } else {
            rest.split(['#', ' ', '\t']).next().unwrap_or_default().to_owned()
        };
        if !value.is_empty() {
            found = Some(value);
        }
    }
    found
}

fn is_rule(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && !t.starts_with('#')
}

#[derive(Default)]
struct WalkReport {
    unreadable: Vec<String>,
    unreadable_count: u64,
    too_open: Vec<String>,
    too_open_count: u64,
    entries: u64,
}

/// Directories waiting to be read, and how many workers are busy: when the queue is
/// empty and nobody is busy, the walk is over.
struct Queue {
    dirs: Vec<PathBuf>,
    busy: usize,
}

/// The trees the rule covers on the host under `root`, as apply.sh's `pgdata_roots`:
/// the data directory, then the target of every symlink in each of the rule's link
/// directories (tablespaces) and of each of its links (a linked `pg_wal`). A target
/// is a host path: under a fake root it is read below that root. Targets inside a
/// root already listed are not listed again (they would be counted twice).
fn data_roots(rule: &DataDirRule, root: &Path) -> Vec<PathBuf> {
    let pgdata = on_root(root, &rule.data_directory);
    let mut links: Vec<PathBuf> = Vec::new();
    for dir in &rule.link_directories {
        if let Ok(entries) = fs::read_dir(pgdata.join(dir)) {
            let mut found: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            found.sort();
            links.extend(found);
        }
    }
    links.extend(rule.links.iter().map(|l| pgdata.join(l)));
    let mut roots = vec![pgdata];
    for link in links {
        let Ok(target) = fs::read_link(&link) else { continue }; // not a symlink
        let resolved = if root == Path::new("/") {
            // On the host itself, exactly `readlink -f`.
            match fs::canonicalize(&link) {
                Ok(p) => p,
                Err(_) => continue,
            }
        } else if target.is_absolute() {
            on_root(root, &target.to_string_lossy())
        } else {
            link.parent().map(|p| p.join(&target)).unwrap_or(target)
        };
        if resolved.is_dir() && !roots.iter().any(|r| resolved.starts_with(r)) {
            roots.push(resolved);
        }
    }
    roots
}

/// Walks directory trees with two threads (one stat per entry, no name lookups),
/// following no symlinks; memory holds only directories not yet read.
fn walk_pgdata(roots: &[PathBuf], rule: &DataDirRule) -> WalkReport {
    let queue = Mutex::new(Queue {
        dirs: roots.to_vec(),
        busy: 0,
    });
    let wake = Condvar::new();
    let report = Mutex::new(WalkReport::default());
    for root in roots {
        check_entry(root, &fs::symlink_metadata(root).ok(), rule, &report);
    }
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 4);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let dir = {
                        let mut q = queue.lock().expect("queue lock");
                        loop {
                            if let Some(dir) = q.dirs.pop() {
                                q.busy += 1;
                                break Some(dir);
                            }
                            if q.busy == 0 {
                                break None;
                            }
                            q = wake.wait(q).expect("queue wait");
                        }
                    };
                    let Some(dir) = dir else {
                        wake.notify_all();
                        return;
                    };
                    let mut found_dirs = Vec::new();
                    if let Ok(entries) = fs::read_dir(&dir) {
                        for entry in entries.flatten() {
                            let meta = entry.metadata().ok();
                            if meta.as_ref().is_some_and(|m| m.is_dir()) {
                                found_dirs.push(entry.path());
                            }
                            check_entry(&entry.path(), &meta, rule, &report);
                        }
                    }
                    let mut q = queue.lock().expect("queue lock");
                    q.dirs.extend(found_dirs);
                    q.busy -= 1;
                    wake.notify_all();
                }
            });
        }
    });
    report.into_inner().expect("report lock")
}

fn check_entry(path: &Path, meta: &Option<fs::Metadata>, rule: &DataDirRule, report: &Mutex<WalkReport>) {
    let Some(meta) = meta else { return };
    let Verdict {
        lacks_group_read: unreadable,
        too_open,
    } = rule.judge(meta);
    let mut r = report.lock().expect("report lock");
    r.entries += 1;
    if unreadable {
        r.unreadable_count += 1;
        if r.unreadable.len() < EXAMPLES {
            r.unreadable.push(path.display().to_string());
        }
    }
    if too_open {
        r.too_open_count += 1;
        if r.too_open.len() < EXAMPLES {
            r.too_open.push(path.display().to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn roots_are_the_data_directory_its_tablespaces_and_a_linked_pg_wal() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let data = base.join("data");
        for d in ["data/pg_tblspc", "ts1", "ts2", "wal", "data/base"] {
            fs::create_dir_all(base.join(d)).unwrap();
        }
        std::os::unix::fs::symlink(base.join("ts1"), data.join("pg_tblspc/16400")).unwrap();
        std::os::unix::fs::symlink("../../ts2", data.join("pg_tblspc/16401")).unwrap();
        std::os::unix::fs::symlink(base.join("wal"), data.join("pg_wal")).unwrap();
        // A link into the data directory itself is not a second root.
        std::os::unix::fs::symlink(data.join("base"), data.join("pg_tblspc/16402")).unwrap();
        let rule = DataDirRule::new(data.to_str().unwrap());
        // On the host (root `/`): as `readlink -f`.
        assert_eq!(
            data_roots(&rule, Path::new("/")),
            [data.clone(), base.join("ts1"), base.join("ts2"), base.join("wal")]
        );
        // Under a fake root, absolute targets are host paths below it.
        let fake = base.join("root");
        let pgdata = fake.join("srv/pg");
        fs::create_dir_all(pgdata.join("pg_tblspc")).unwrap();
        fs::create_dir_all(fake.join("srv/ts")).unwrap();
        std::os::unix::fs::symlink("/srv/ts", pgdata.join("pg_tblspc/1")).unwrap();
        let rule = DataDirRule::new("/srv/pg");
        assert_eq!(data_roots(&rule, &fake), [pgdata, fake.join("srv/ts")]);
    }

    #[test]
    fn walk_counts_unreadable_and_open_entries() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        fs::create_dir_all(root.join("base/1")).unwrap();
        for (i, mode) in [0o640, 0o600, 0o660, 0o640].iter().enumerate() {
            let f = root.join("base/1").join(format!("{i}"));
            fs::write(&f, "x").unwrap();
            fs::set_permissions(&f, fs::Permissions::from_mode(*mode)).unwrap();
        }
        for d in [&root, &root.join("base"), &root.join("base/1")] {
            fs::set_permissions(d, fs::Permissions::from_mode(0o750)).unwrap();
        }
        let report = walk_pgdata(std::slice::from_ref(&root), &DataDirRule::new("/data"));
        assert_eq!(report.entries, 7);
        assert_eq!(report.unreadable_count, 1);
        assert_eq!(report.too_open_count, 1);
        assert!(report.unreadable[0].ends_with("base/1/1"));
    }
}
