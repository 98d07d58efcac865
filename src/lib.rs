//! pgbr-policy as a library: the pipeline policy → plan → artifacts, for the binary,
//! the tests, the fuzz target and the benchmarks. `main.rs` only maps outcomes to exit
//! codes.

pub mod artifact;
pub mod catalog;
pub mod cli;
pub mod commands;
pub mod deployed;
pub mod drift;
pub mod generators;
pub mod livedb;
pub mod output;
pub mod plan;
pub mod policy;
pub mod render;
pub mod schema;
pub mod since;
pub mod sink;

/// Compiles policy text to the artifact tree, in memory: what `generate` would write.
/// `file_name` is used in messages only (artifacts never name the policy file).
pub fn compile(policy_text: &[u8], file_name: &str) -> anyhow::Result<artifact::Tree> {
    let loaded = policy::parse(policy_text, std::path::Path::new(file_name), file_name)?;
    artifact::render_all(&plan::build(&loaded.policy))
}
