//! Generator files (`generators/*.yaml`, embedded): the declarative list of which
//! template renders to which output path, with which mode, under which condition. Adding
//! a target means adding a generator file and its templates; the pipeline is unchanged.

use crate::plan::ClusterPlan;
use anyhow::{Context as _, Result, bail};
use serde::Deserialize;

static GENERATOR_FILES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/generators.rs"));

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Generator {
    /// For readers of the generator file; shown by no command.
    #[allow(dead_code)]
    pub description: String,
    pub outputs: Vec<Output>,
    #[serde(skip)]
    pub file: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    pub template: String,
    /// Relative to the output directory; `{cluster}`, `{unit}` and `{tmpfiles}` expand.
    pub path: String,
    /// Octal file mode, e.g. "0755".
    pub mode: String,
    /// Extra context: the plan field to expose as `cfg` (e.g. `repository_config`).
    #[serde(default)]
    pub context: Option<String>,
    #[serde(default)]
    pub when: Option<String>,
    /// `cluster` (default): rendered once per cluster with `c` and `plan`; `tree`:
    /// rendered once for the whole policy with `plan` only (e.g. an Ansible playbook).
    #[serde(default)]
    pub scope: Scope,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    #[default]
    Cluster,
    Tree,
}

impl Output {
    pub fn mode_bits(&self) -> Result<u32> {
        u32::from_str_radix(&self.mode, 8)
            .with_context(|| format!("mode `{}` of `{}` is not octal", self.mode, self.path))
    }

    /// Whether this output exists for `cluster`.
    pub fn applies_to(&self, cluster: &ClusterPlan) -> Result<bool> {
        Ok(match self.when.as_deref() {
            None | Some("always") => true,
            Some("has_tmpfiles") => !cluster.systemd.tmpfiles.is_empty(),
            Some("archive_managed") => cluster.archive.managed,
            // ALTER SYSTEM for archive settings only without Patroni, which owns them.
            Some("archive_by_alter_system") => cluster.archive.managed && cluster.patroni.is_none(),
            Some("patroni") => cluster.patroni.is_some(),
            Some("patroni_archive") => cluster.archive.managed && cluster.patroni.is_some(),
            Some(other) => bail!("unknown condition `when: {other}` for `{}`", self.path),
        })
    }

    pub fn path_for(&self, cluster: &ClusterPlan) -> String {
        self.path
            .replace("{cluster}", &cluster.name)
            .replace("{unit}", &cluster.systemd.unit_name)
            .replace("{tmpfiles}", cluster.files.tmpfiles.trim_start_matches("systemd/"))
    }
}

/// Every embedded generator, in file-name order.
pub fn all() -> Result<Vec<Generator>> {
    GENERATOR_FILES
        .iter()
        .map(|(name, body)| {
            let mut generator: Generator =
                serde_saphyr::from_str(body).with_context(|| format!("generator `{name}` does not parse"))?;
            generator.file = (*name).to_owned();
            Ok(generator)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_generator_parses_and_names_existing_templates() {
        let templates: Vec<&str> = crate::render::TEMPLATES.iter().map(|(n, _)| *n).collect();
        let generators = all().unwrap();
        assert!(generators.len() >= 5);
        for g in &generators {
            for o in &g.outputs {
                assert!(
                    templates.contains(&o.template.as_str()),
                    "{}: no template {}",
                    g.file,
                    o.template
                );
                o.mode_bits().unwrap();
            }
        }
    }

    #[test]
    fn every_template_is_used_by_a_generator() {
        let used: Vec<String> = all()
            .unwrap()
            .into_iter()
            .flat_map(|g| g.outputs.into_iter().map(|o| o.template))
            .collect();
        for (name, _) in crate::render::TEMPLATES {
            if name.contains("/_") || name.contains("/lib/") {
                continue; // partials (`_x`, or in a `lib/` folder), included by other templates
            }
            assert!(
                used.iter().any(|u| u == name),
                "template {name} is not used by any generator"
            );
        }
    }
}
