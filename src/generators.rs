//! Generator files (`generators/*.yaml`, embedded): the declarative list of which
//! template renders to which output path, with which mode, under which condition. Adding
//! a target means adding a generator file and its templates; the pipeline is unchanged.

use crate::plan::ClusterPlan;
use crate::render::structured::Body;
use anyhow::{Context as _, Result};
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
    /// The condition under which the output exists (default: always). A typed name: an
    /// unknown one fails to parse the generator file (a test parses them all).
    #[serde(default)]
    pub when: When,
    /// The typed value serialized in Rust (render/structured.rs) that the template
    /// interpolates as `{{ body | serialized }}` under its header comment.
    #[serde(default)]
    pub body: Option<Body>,
    /// `cluster` (default): rendered once per cluster with `c` and `plan`; `tree`:
    /// rendered once for the whole policy with `plan` only (e.g. an Ansible playbook).
    #[serde(default)]
    pub scope: Scope,
    /// For a cluster with a repository host (issue 14), which hosts get this output in
    /// `{cluster}/hosts/<host>/`: `all` (default), `database` (the members),
    /// `repository` (the repository host), or `cluster` (once, in `{cluster}/`). A
    /// single-host cluster renders every output that `when` allows, once.
    #[serde(default)]
    pub hosts: Hosts,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hosts {
    #[default]
    All,
    Database,
    Repository,
    Cluster,
}

/// When an output exists for a cluster.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    #[default]
    Always,
    /// The plan needs a tmpfiles.d entry (lock directories recreated at boot).
    HasTmpfiles,
    ArchiveManaged,
    /// ALTER SYSTEM for archive settings only without Patroni, which owns them.
    ArchiveByAlterSystem,
    Patroni,
    PatroniArchive,
    /// pgBackRest's TLS server joins the two OS users (not with an s3 repository).
    TlsServer,
    /// The repository is a bucket reached with two scoped keys.
    S3,
    /// The policy schedules this kind of job (`schedule:`).
    JobFull,
    JobDiff,
    JobIncr,
    JobVerify,
    /// The policy schedules at least one job.
    HasSchedule,
    /// The cluster's repository lives on a repository host.
    RepositoryHost,
    /// The repository is on the database host (today's layout).
    SingleHost,
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
        Ok(match self.when {
            When::Always => true,
            When::HasTmpfiles => !cluster.systemd.tmpfiles.is_empty(),
            When::ArchiveManaged => cluster.archive.managed,
            When::ArchiveByAlterSystem => cluster.archive.managed && cluster.patroni.is_none(),
            When::Patroni => cluster.patroni.is_some(),
            When::PatroniArchive => cluster.archive.managed && cluster.patroni.is_some(),
            When::TlsServer => cluster.s3.is_none(),
            When::S3 => cluster.s3.is_some(),
            When::JobFull => cluster.job_full.is_some(),
            When::JobDiff => cluster.job_diff.is_some(),
            When::JobIncr => cluster.job_incr.is_some(),
            When::JobVerify => cluster.job_verify.is_some(),
            When::HasSchedule => !cluster.schedule.jobs.is_empty(),
            When::RepositoryHost => cluster.topology.is_some(),
            When::SingleHost => cluster.topology.is_none(),
        })
    }

    /// Whether a host view gets this output (`hosts:`).
    pub fn for_host(&self, view: &ClusterPlan) -> bool {
        let role = view.host.as_ref().map(|h| h.role).unwrap_or("");
        match self.hosts {
            Hosts::All => true,
            Hosts::Database => role == "database",
            Hosts::Repository => role == "repository",
            Hosts::Cluster => false,
        }
    }

    /// The output's path; a host view's files go to `{cluster}/hosts/<host>/`.
    pub fn path_for(&self, cluster: &ClusterPlan) -> String {
        let base = match &cluster.host {
            Some(h) => format!("{}/{}", cluster.name, h.directory),
            None => cluster.name.clone(),
        };
        self.path
            .replace("{cluster}", &base)
            .replace("{files.repository_config}", &cluster.files.repository_config)
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
            // A partial (the plan block, the shell library's procedures) is included by
            // another template instead.
            let include = format!("{{% include \"{name}\" %}}");
            let included = crate::render::TEMPLATES.iter().any(|(_, text)| text.contains(&include));
            assert!(
                used.iter().any(|u| u == name) || included,
                "template {name} is neither used by a generator nor included by a template"
            );
        }
    }
}
