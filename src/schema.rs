//! The policy's JSON Schema, generated from the serde types the loader reads
//! (`policy::raw`), so the two cannot disagree on the shape: `pgbr-policy schema`.

use crate::policy::raw::PolicyFile;

/// The schema's `$id`.
pub const SCHEMA_ID: &str = "urn:pgbr-policy:policy:v1";

/// The file name `init`'s first line points editors at (yaml-language-server), relative
/// to the policy: `pgbr-policy schema > pgbr-policy.schema.json` beside it.
pub const SCHEMA_FILE: &str = "pgbr-policy.schema.json";

/// The line `init` writes first.
pub fn modeline() -> String {
    format!("# yaml-language-server: $schema={SCHEMA_FILE}\n")
}

pub fn policy_schema() -> serde_json::Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(PolicyFile)).expect("a schema serializes");
    if let Some(object) = schema.as_object_mut() {
        object.insert("$id".into(), SCHEMA_ID.into());
        object.insert("title".into(), "pgbr-policy policy, version 1".into());
    }
    schema
}
