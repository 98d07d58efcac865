//! Artifacts: the rendered output tree in memory (path → bytes + mode), and the
//! manifest. `generate`, `diff` and `check` all start from [`render_all`], so they
//! can never disagree about what the tool would write.

use crate::generators::{self, Scope};
use crate::plan::Plan;
use crate::render::Renderer;
use anyhow::{Context as _, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub const MANIFEST: &str = "MANIFEST.sha256";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub bytes: Vec<u8>,
    pub mode: u32,
}

/// The whole tree, sorted by path (deterministic output).
pub type Tree = BTreeMap<String, Artifact>;

pub fn render_all(plan: &Plan) -> Result<Tree> {
    let renderer = Renderer::new()?;
    let generators = generators::all()?;
    let mut tree = Tree::new();
    // Converted once: tera's values share their contents (Arc), so each context gets the
    // whole plan for the price of a pointer. Inserting `plan` per output re-serialised
    // every cluster for every artifact of every cluster: quadratic (200 clusters took
    // 33 s; found by hostile::resource_limits_hold).
    let plan_value = tera::Value::from_serializable(plan);
    for cluster in &plan.clusters {
        let cluster_value = tera::Value::from_serializable(cluster);
        let cluster_json = serde_json::to_value(cluster)?;
        for generator in &generators {
            for output in generator.outputs.iter().filter(|o| o.scope == Scope::Cluster) {
                if !output.applies_to(cluster)? {
                    continue;
                }
                let mut context = tera::Context::new();
                context.insert_value("plan", plan_value.clone());
                context.insert_value("c", cluster_value.clone());
                if let Some(field) = &output.context {
                    let value = cluster_json
                        .get(field)
                        .cloned()
                        .with_context(|| format!("generator `{}`: the plan has no field `{field}`", generator.file))?;
                    context.insert("cfg", &value);
                }
                let text = renderer.render(&output.template, &context)?;
                let path = output.path_for(cluster);
                tree.insert(
                    path,
                    Artifact {
                        bytes: normalise(&text).into_bytes(),
                        mode: output.mode_bits()?,
                    },
                );
            }
        }
    }
    for generator in &generators {
        for output in generator.outputs.iter().filter(|o| o.scope == Scope::Tree) {
            let mut context = tera::Context::new();
            context.insert_value("plan", plan_value.clone());
            let text = renderer.render(&output.template, &context)?;
            tree.insert(
                output.path.clone(),
                Artifact {
                    bytes: normalise(&text).into_bytes(),
                    mode: output.mode_bits()?,
                },
            );
        }
    }
    let manifest = manifest(&tree);
    tree.insert(
        MANIFEST.to_owned(),
        Artifact {
            bytes: manifest.into_bytes(),
            mode: 0o644,
        },
    );
    Ok(tree)
}

/// LF only, no trailing blanks at the end, exactly one final newline.
fn normalise(text: &str) -> String {
    let mut out = text.replace("\r\n", "\n");
    let trimmed = out.trim_end_matches(['\n', ' ']).len();
    out.truncate(trimmed);
    out.push('\n');
    out
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// `sha256sum -c` compatible: `<hex>  <path>` per line, sorted by path.
pub fn manifest(tree: &Tree) -> String {
    let mut out = String::new();
    for (path, artifact) in tree {
        if path == MANIFEST {
            continue;
        }
        out.push_str(&sha256_hex(&artifact.bytes));
        out.push_str("  ");
        out.push_str(path);
        out.push('\n');
    }
    out
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
