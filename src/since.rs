//! "Changes since the last generated tree" (CHANGE.md): when `generate` writes over a tree
//! it generated before, what changes on the hosts, told from the tree's manifest and the
//! plan's installed files. The manifest the change is measured from is kept in the tree
//! (`MANIFEST.previous.sha256`), so `check` and `diff` render the same CHANGE.md as the
//! `generate` that wrote it: a run with the same policy keeps the section as it was.

use crate::artifact::{self, MANIFEST};
use crate::drift::{self, Found};
use crate::plan::{ClusterPlan, ManifestLine, Plan};
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::Path;

pub const PREVIOUS: &str = "MANIFEST.previous.sha256";

fn read_manifest(out: &Path, rel: &str) -> Result<Option<BTreeMap<String, String>>> {
    Ok(match drift::inspect(out, rel)? {
        Found::File { bytes, .. } => Some(artifact::parse_manifest(&String::from_utf8_lossy(&bytes))),
        _ => None,
    })
}

/// Files whose content does not tell what changes: the ticket itself and the manifests.
fn compared(path: &str) -> bool {
    path != MANIFEST && path != PREVIOUS && !path.ends_with("/CHANGE.md")
}

/// Sets `plan.previous_manifest` and every cluster's `since_last` from the tree in `out`
/// (nothing when `out` holds no generated tree).
pub fn attach(plan: &mut Plan, out: &Path) -> Result<()> {
    if !out.is_dir() {
        return Ok(());
    }
    let Some(current) = read_manifest(out, MANIFEST)? else {
        return Ok(());
    };
    let rendered = artifact::render_all(plan)?;
    let new: BTreeMap<String, String> = rendered
        .iter()
        .filter(|(p, _)| compared(p))
        .map(|(p, a)| (p.clone(), artifact::sha256_hex(&a.bytes)))
        .collect();
    let current_compared: BTreeMap<String, String> = current
        .iter()
        .filter(|(p, _)| compared(p))
        .map(|(p, h)| (p.clone(), h.clone()))
        .collect();
    let baseline = if current_compared != new {
        Some(current)
    } else {
        read_manifest(out, PREVIOUS)?.filter(|m| !m.is_empty())
    };
    let Some(baseline) = baseline else {
        return Ok(());
    };
    plan.previous_manifest = baseline
        .iter()
        .map(|(path, hash)| ManifestLine {
            hash: hash.clone(),
            path: path.clone(),
        })
        .collect();
    for cluster in &mut plan.clusters {
        cluster.since_last = Some(changes(cluster, &baseline, &new));
    }
    Ok(())
}

/// One sentence per changed file of the cluster, saying what it means on the host.
fn changes(c: &ClusterPlan, before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<String> {
    let prefix = format!("{}/", c.name);
    let mut paths: Vec<&String> = before
        .keys()
        .chain(after.keys())
        .filter(|p| p.starts_with(&prefix))
        .collect();
    paths.sort();
    paths.dedup();
    let mut out = Vec::new();
    for path in paths {
        if !compared(path) {
            continue;
        }
        let status = match (before.get(path), after.get(path)) {
            (None, Some(_)) => "new",
            (Some(_), None) => "no longer generated",
            (Some(a), Some(b)) if a != b => "changed",
            _ => continue,
        };
        let rel = &path[prefix.len()..];
        let installed = c.installed_files.iter().find(|f| f.source == rel);
        let meaning = if let Some(f) = installed {
            let step = serde_json::to_value(f.step)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            if status == "no longer generated" {
                format!(
                    "{} is no longer installed (remove it from the host: rollback.sh of the previous tree does)",
                    f.target
                )
            } else {
                format!("{} is installed anew by shell/apply.sh step {step}", f.target)
            }
        } else {
            match rel {
                "sql/apply.sql" => "the role's memberships and grants change (shell/apply.sh step sql)".to_owned(),
                "sql/archive.sql" | "patroni/dynamic-config.yml" => {
                    "the archive settings change (shell/apply.sh step archive)".to_owned()
                }
                r if r.starts_with("hba/") => {
                    "the pg_hba.conf/pg_ident.conf block changes (shell/apply.sh step pg_hba splices it, validates and reloads)".to_owned()
                }
                "shell/lib.sh" => {
                    "the plan's values or the host procedures change: shell/apply.sh --dry-run on the host lists what it will do".to_owned()
                }
                r if r.starts_with("shell/") => "a script changes; nothing on the host until it runs".to_owned(),
                r if r.ends_with(".md") || r.starts_with("cron/") => "documentation or a file installed by hand".to_owned(),
                _ => "see its diff".to_owned(),
            }
        };
        out.push(format!("{rel} ({status}): {meaning}."));
    }
    out
}
