//! Artifacts: rendering the plan into files (path → bytes + mode) and the manifest.
//! `generate`, `diff` and `check` all render through [`for_each`], so they can never
//! disagree about what the tool would write. It streams: each file is handed to a sink
//! as soon as it is rendered, from two threads, so a fleet of a thousand clusters is
//! compared or written without holding the whole tree in memory.

use crate::generators::{self, Generator, Hosts, Scope};
use crate::plan::{ClusterPlan, Plan};
use crate::render::Renderer;
use crate::render::structured::{self, Body};
use anyhow::{Context as _, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Mutex;

pub const MANIFEST: &str = "MANIFEST.sha256";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub bytes: Vec<u8>,
    pub mode: u32,
}

/// The whole tree, sorted by path (deterministic output).
pub type Tree = BTreeMap<String, Artifact>;

/// What per-cluster templates know of the whole plan: `plan.tool` and `plan.policy_file`.
/// (Inserting the whole plan would serialise every cluster once per file of every
/// cluster: quadratic in the fleet.)
#[derive(serde::Serialize)]
struct PlanHeader<'a> {
    tool: &'a crate::plan::ToolInfo,
    policy_file: &'a str,
    policy_sha256: &'a str,
}

/// What tree-scoped templates know: the header and, per cluster, its name
/// (`plan.clusters[].name`).
#[derive(serde::Serialize)]
struct TreeHeader<'a> {
    tool: &'a crate::plan::ToolInfo,
    policy_file: &'a str,
    clusters: Vec<TreeCluster<'a>>,
    previous_manifest: &'a [crate::plan::ManifestLine],
}

#[derive(serde::Serialize)]
struct TreeCluster<'a> {
    name: &'a str,
    /// The inventory group of its hosts (the Ansible playbooks' `hosts:`).
    ansible_group: &'a str,
}

/// The template engine and the generator files, loaded once and shared by the threads.
pub struct Rendering {
    renderer: Renderer,
    generators: Vec<Generator>,
}

impl Rendering {
    pub fn new() -> Result<Self> {
        Ok(Self {
            renderer: Renderer::new()?,
            generators: generators::all()?,
        })
    }

    /// Every file of one cluster: once for a single host; for a cluster with a repository
    /// host, the cluster-level outputs once and the others per host view (`hosts:` in the
    /// generator files), and no Ansible output (that target does not plan several hosts
    /// yet: validation warns).
    pub fn cluster(&self, plan: &Plan, cluster: &ClusterPlan) -> Result<Vec<(String, Artifact)>> {
        let header = PlanHeader {
            tool: &plan.tool,
            policy_file: &plan.policy_file,
            policy_sha256: &plan.policy_sha256,
        };
        let mut out = Vec::new();
        if cluster.hosts.is_empty() {
            self.render_view(&header, cluster, |o| o.applies_to(cluster), &mut out)?;
            return Ok(out);
        }
        self.render_view(
            &header,
            cluster,
            |o| Ok(o.hosts == Hosts::Cluster && o.applies_to(cluster)?),
            &mut out,
        )?;
        for view in &cluster.hosts {
            self.render_view(
                &header,
                view,
                |o| {
                    Ok(o.hosts != Hosts::Cluster
                        && !o.template.starts_with(crate::render::ANSIBLE_PREFIX)
                        && o.for_host(view)
                        && o.applies_to(view)?)
                },
                &mut out,
            )?;
        }
        Ok(out)
    }

    /// The outputs `wanted` of one plan (a cluster, or one host's view of it).
    fn render_view(
        &self,
        header: &PlanHeader<'_>,
        cluster: &ClusterPlan,
        wanted: impl Fn(&crate::generators::Output) -> Result<bool>,
        out: &mut Vec<(String, Artifact)>,
    ) -> Result<()> {
        // One context per view, serialised once, shared by all its files.
        let cluster_value = serde_json::to_value(cluster)?;
        let mut context = tera::Context::new();
        context.insert("plan", header);
        context.insert("c", &cluster_value);
        for generator in &self.generators {
            for output in generator.outputs.iter().filter(|o| o.scope == Scope::Cluster) {
                if !wanted(output)? {
                    continue;
                }
                if let Some(field) = &output.context {
                    let value = cluster_value
                        .get(field)
                        .with_context(|| format!("generator `{}`: the plan has no field `{field}`", generator.file))?;
                    context.insert("cfg", value);
                }
                if let Some(body) = output.body {
                    let text = self.body(body, cluster, &context)?;
                    context.insert("body", &text);
                } else {
                    context.remove("body");
                }
                let text = self.renderer.render(&output.template, &context)?;
                out.push((
                    output.path_for(cluster),
                    Artifact {
                        bytes: normalise(text),
                        mode: output.mode_bits()?,
                    },
                ));
            }
        }
        Ok(())
    }

    /// The text of a structured artifact, serialized from the plan's typed values
    /// (render/structured.rs). The fragment's managed hba/ident block is the rendered
    /// snippet itself, so Patroni's lines and hba/*.snippet are one text.
    fn body(&self, body: Body, cluster: &ClusterPlan, context: &tera::Context) -> Result<String> {
        use crate::plan::patroni;
        let missing = || anyhow::anyhow!("cluster `{}`: {body:?} needs Patroni", cluster.name);
        Ok(match body {
            Body::PatroniFragment => {
                let p = cluster.patroni.as_ref().ok_or_else(missing)?;
                let hba = self.renderer.render("hba/pg_hba.conf.snippet", context)?;
                let ident = self.renderer.render("hba/pg_ident.conf.snippet", context)?;
                structured::yaml(&patroni::fragment(cluster, p, &hba, &ident))?
            }
            Body::PatroniDynamicConfig => {
                let dynamic = patroni::dynamic_config(cluster).ok_or_else(missing)?;
                structured::yaml(&dynamic)?
            }
            Body::AnsibleClusterVars => structured::yaml(&structured::AnsibleClusterVars::of(cluster))?,
            Body::RepositoryConfig | Body::DatabaseConfig => {
                let file = if body == Body::RepositoryConfig {
                    &cluster.repository_config
                } else {
                    &cluster.database_config
                };
                structured::ini(file).map_err(|e| anyhow::anyhow!("cluster `{}`: {}", cluster.name, e.0))?
            }
            Body::DatabaseIamPolicy
            | Body::BackupIamPolicy
            | Body::BucketPolicy
            | Body::BucketSettings
            | Body::Terraform => {
                use crate::plan::repository::{PolicyDocument, bucket_settings, terraform};
                let s3 = cluster
                    .s3
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("cluster `{}`: {body:?} needs an s3 repository", cluster.name))?;
                match body {
                    Body::DatabaseIamPolicy => structured::json(&PolicyDocument::of(&s3.database_policy))?,
                    Body::BackupIamPolicy => structured::json(&PolicyDocument::of(&s3.backup_policy))?,
                    Body::BucketPolicy => structured::json(&PolicyDocument::of(&s3.bucket_policy))?,
                    Body::BucketSettings => structured::json(&bucket_settings(s3))?,
                    _ => structured::json(&terraform(s3, &cluster.name))?,
                }
            }
        })
    }

    /// The files rendered once for the whole policy (`scope: tree`). They see the plan's
    /// header and the clusters' names (`plan.clusters[].name`); what they need of a cluster comes
    /// from that cluster's own files, so memory stays flat however large the fleet.
    fn tree_scope(&self, plan: &Plan) -> Result<Vec<(String, Artifact)>> {
        let mut out = Vec::new();
        if !self
            .generators
            .iter()
            .any(|g| g.outputs.iter().any(|o| o.scope == Scope::Tree))
        {
            return Ok(out);
        }
        let header = TreeHeader {
            tool: &plan.tool,
            policy_file: &plan.policy_file,
            // A cluster with a repository host has no play (the Ansible target plans one
            // host per cluster): validation warns.
            clusters: plan
                .clusters
                .iter()
                .filter(|c| c.hosts.is_empty())
                .map(|c| TreeCluster {
                    name: &c.name,
                    ansible_group: &c.ansible_group,
                })
                .collect(),
            previous_manifest: &plan.previous_manifest,
        };
        let ansible = !header.clusters.is_empty();
        let mut context = tera::Context::new();
        context.insert("plan", &header);
        for generator in &self.generators {
            for output in generator.outputs.iter().filter(|o| o.scope == Scope::Tree) {
                if !ansible && output.template.starts_with(crate::render::ANSIBLE_PREFIX) {
                    continue;
                }
                let text = self.renderer.render(&output.template, &context)?;
                out.push((
                    output.path.clone(),
                    Artifact {
                        bytes: normalise(text),
                        mode: output.mode_bits()?,
                    },
                ));
            }
        }
        Ok(out)
    }
}

/// Renders every file except the manifest and hands each to `sink`, from up to four
/// threads (clusters are independent); the order of calls is not defined. The first
/// error stops the work and is returned.
pub fn for_each(plan: &Plan, sink: &(dyn Fn(String, Artifact) -> Result<()> + Sync)) -> Result<()> {
    let rendering = Rendering::new()?;
    for (path, artifact) in rendering.tree_scope(plan)? {
        sink(path, artifact)?;
    }
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 4);
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for worker in 0..threads {
            let (rendering, failure) = (&rendering, &failure);
            scope.spawn(move || {
                for cluster in plan.clusters.iter().skip(worker).step_by(threads) {
                    if failure.lock().expect("failure lock").is_some() {
                        return;
                    }
                    let result = rendering
                        .cluster(plan, cluster)
                        .and_then(|files| files.into_iter().try_for_each(|(path, artifact)| sink(path, artifact)));
                    if let Err(e) = result {
                        failure.lock().expect("failure lock").get_or_insert(e);
                        return;
                    }
                }
            });
        }
    });
    match failure.into_inner().expect("failure lock") {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The whole tree in memory, manifest included (tests, fuzzing, small policies).
pub fn render_all(plan: &Plan) -> Result<Tree> {
    let tree = Mutex::new(Tree::new());
    for_each(plan, &|path, artifact| {
        tree.lock().expect("tree lock").insert(path, artifact);
        Ok(())
    })?;
    let mut tree = tree.into_inner().expect("tree lock");
    let hashes = tree
        .iter()
        .map(|(p, a)| (p.clone(), (sha256_hex(&a.bytes), a.mode)))
        .collect();
    tree.insert(
        MANIFEST.to_owned(),
        Artifact {
            bytes: manifest(&hashes).into_bytes(),
            mode: 0o644,
        },
    );
    Ok(tree)
}

/// LF only, no trailing blanks at the end, exactly one final newline.
fn normalise(text: String) -> Vec<u8> {
    let mut out = if text.contains('\r') {
        text.replace("\r\n", "\n")
    } else {
        text
    };
    let trimmed = out.trim_end_matches(['\n', ' ']).len();
    out.truncate(trimmed);
    out.push('\n');
    out.into_bytes()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    hex
}

/// `sha256sum -c` compatible: `<hex>  <path>` per line, sorted by path, then one comment
/// line per file with the mode it was written with (`# mode 0755 <path>`: sha256sum skips
/// lines starting with `#`), so that a mode changed by hand is told from a planned one.
pub fn manifest(entries: &BTreeMap<String, (String, u32)>) -> String {
    let mut out = String::new();
    for (path, (hash, _)) in entries {
        if path == MANIFEST {
            continue;
        }
        out.push_str(hash);
        out.push_str("  ");
        out.push_str(path);
        out.push('\n');
    }
    for (path, (_, mode)) in entries {
        if path != MANIFEST {
            out.push_str(&format!("{MODE_PREFIX}{mode:04o} {path}\n"));
        }
    }
    out
}

const MODE_PREFIX: &str = "# mode ";

/// The modes a manifest recorded: path → mode. Manifests written before modes were
/// recorded have none (a mode change is then not attributed).
pub fn parse_manifest_modes(text: &str) -> BTreeMap<String, u32> {
    text.lines()
        .filter_map(|line| {
            let (mode, path) = line.strip_prefix(MODE_PREFIX)?.split_once(' ')?;
            Some((path.to_owned(), u32::from_str_radix(mode, 8).ok()?))
        })
        .collect()
}

/// Reads a manifest back: path → sha256. Malformed lines are ignored (a hand-edited
/// manifest only weakens the hand-edit check, it never causes a write).
pub fn parse_manifest(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let (hash, path) = line.split_once("  ")?;
            (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| (path.to_owned(), hash.to_owned()))
        })
        .collect()
}
