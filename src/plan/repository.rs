//! Object storage with two scoped keys (README, "Object storage"): what each key may do,
//! compiled into IAM policy documents, the bucket policy, the versioning and object-lock
//! settings, and a Terraform snippet — typed here, serialized by serde_json
//! (render/structured.rs), never templated. facts.md §9 has what was measured.
//!
//! S3 object keys are the repository path without its leading `/`: with
//! `repo1-path=/pgbackrest`, pgBackRest writes `pgbackrest/archive/<stanza>/…` and
//! `pgbackrest/backup/<stanza>/…`.

use crate::policy::{Cluster, ObjectLock, S3Repository, UriStyle};
use serde::Serialize;
use std::collections::BTreeMap;

/// Everything the plan decides for a cluster whose repository is a bucket.
#[derive(Debug, Clone, Serialize)]
pub struct S3Plan {
    /// The repository's name in `repositories:`.
    pub repository: String,
    pub bucket: String,
    /// `repo1-path` (starts with `/`).
    pub path: String,
    /// The object-key prefix of this stanza's two trees, without the leading `/`:
    /// `pgbackrest/archive/main` and `pgbackrest/backup/main`.
    pub archive_prefix: String,
    pub backup_prefix: String,
    pub region: String,
    pub endpoint: String,
    pub uri_style: &'static str,
    pub ca_file: String,
    pub admin_principal: String,
    pub versioning: bool,
    /// `COMPLIANCE` / `GOVERNANCE`, or empty without object lock.
    pub lock_mode: &'static str,
    pub lock_days: u32,
    /// The root-only files apply.sh reads the keys from.
    pub database_key_source: String,
    pub backup_key_source: String,
    /// Where apply.sh writes each key as a pgBackRest include file (0600, owned by the
    /// user that uses it, in a root-owned directory passed as --config-include-path).
    pub database_key_dir: String,
    pub database_key_file: String,
    pub backup_key_dir: String,
    pub backup_key_file: String,
    /// The three policy documents, statement by statement with what each protects from.
    pub database_policy: Vec<Explained>,
    pub backup_policy: Vec<Explained>,
    pub bucket_policy: Vec<Explained>,
    /// Whether the configured pgBackRest can restore through the bucket's versions
    /// (`--repo-target-time`, 2.54.0+); unknown versions count as able.
    pub restore_from_versions: bool,
    /// Where verify.sh puts the probe object the database-side key must not delete
    /// (relative to the repository path).
    pub probe: String,
}

/// One IAM statement with the reason it is there (CHANGE.md prints the reason).
#[derive(Debug, Clone, Serialize)]
pub struct Explained {
    pub statement: Statement,
    pub why: String,
}

/// An IAM policy statement, in AWS's own field names.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Statement {
    #[serde(rename = "Sid")]
    pub sid: String,
    #[serde(rename = "Effect")]
    pub effect: Effect,
    /// Only in the bucket policy (a resource policy): `*`, everyone.
    #[serde(rename = "Principal", skip_serializing_if = "Option::is_none")]
    pub principal: Option<&'static str>,
    #[serde(rename = "Action")]
    pub action: Vec<&'static str>,
    #[serde(rename = "Resource")]
    pub resource: Vec<String>,
    /// operator -> condition key -> values
    #[serde(rename = "Condition", skip_serializing_if = "BTreeMap::is_empty")]
    pub condition: BTreeMap<&'static str, BTreeMap<&'static str, Vec<String>>>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// A whole IAM policy document.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyDocument {
    #[serde(rename = "Version")]
    pub version: &'static str,
    #[serde(rename = "Statement")]
    pub statement: Vec<Statement>,
}

impl PolicyDocument {
    pub fn of(statements: &[Explained]) -> Self {
        PolicyDocument {
            version: "2012-10-17",
            statement: statements.iter().map(|e| e.statement.clone()).collect(),
        }
    }
}

/// Actions that destroy history or change the rules that keep it: granted to neither key,
/// denied to both, and denied by the bucket policy to everyone but the administrator.
pub const HISTORY_ACTIONS: &[&str] = &[
    "s3:DeleteObjectVersion",
    "s3:DeleteObjectVersionTagging",
    "s3:BypassGovernanceRetention",
    "s3:PutObjectRetention",
    "s3:PutObjectLegalHold",
    "s3:PutBucketVersioning",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:DeleteBucket",
];

pub fn plan(c: &Cluster, s3: &S3Repository, database_config_dir: &str) -> S3Plan {
    let stanza = c.pgbackrest.stanza.as_str();
    let key_root = s3.prefix.trim_start_matches('/');
    let under = |tree: &str| {
        if key_root.is_empty() {
            format!("{tree}/{stanza}")
        } else {
            format!("{key_root}/{tree}/{stanza}")
        }
    };
    let archive = under("archive");
    let backup = under("backup");
    let bucket_arn = format!("arn:{}:s3:::{}", s3.partition, s3.bucket);
    let object = |key: &str| format!("{bucket_arn}/{key}");
    let stanza_prefixes = || {
        BTreeMap::from([(
            "StringLike",
            BTreeMap::from([(
                "s3:prefix",
                vec![
                    archive.clone(),
                    format!("{archive}/*"),
                    backup.clone(),
                    format!("{backup}/*"),
                ],
            )]),
        )])
    };
    let statement = |sid: &str, effect, action: &[&'static str], resource: Vec<String>| Statement {
        sid: sid.to_owned(),
        effect,
        principal: None,
        action: action.to_vec(),
        resource,
        condition: BTreeMap::new(),
    };
    let both_trees = || vec![object(&format!("{archive}/*")), object(&format!("{backup}/*"))];

    let list = Explained {
        statement: Statement {
            condition: stanza_prefixes(),
            ..statement(
                "ListStanza",
                Effect::Allow,
                &["s3:ListBucket", "s3:ListBucketVersions"],
                vec![bucket_arn.clone()],
            )
        },
        why: format!(
            "list this stanza's two trees (and their versions, for a restore through them), nothing else in the bucket: the `s3:prefix` condition limits listings to `{archive}` and `{backup}`"
        ),
    };
    let database_policy = vec![
        list.clone(),
        Explained {
            statement: statement(
                "ReadStanza",
                Effect::Allow,
                &["s3:GetObject", "s3:GetObjectVersion"],
                both_trees(),
            ),
            why: "archive-get and restore read WAL, backups and their manifests, also older versions (restore of an expired backup)".into(),
        },
        Explained {
            statement: statement(
                "AddWalOnly",
                Effect::Allow,
                &["s3:PutObject"],
                vec![object(&format!("{archive}/*-*/*"))],
            ),
            why: format!(
                "archive-push writes WAL and history files into the archive-id directories (`{archive}/<version>-<n>/…`) only: not `archive.info`, nothing under backup/, so this key cannot rewrite backup.info, a manifest or the archive's own info file"
            ),
        },
        Explained {
            statement: statement(
                "NeverDestroy",
                Effect::Deny,
                &[&["s3:DeleteObject"], HISTORY_ACTIONS].concat(),
                vec![bucket_arn.clone(), object("*")],
            ),
            why: "an explicit Deny no other policy can override: the database host can delete nothing, not an object, not a version, and cannot touch versioning, lifecycle, retention or the bucket policy (the ransomware case: a compromised database host cannot take the backups with it)".into(),
        },
    ];
    let backup_policy = vec![
        list,
        Explained {
            statement: statement(
                "ManageStanza",
                Effect::Allow,
                &["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject"],
                both_trees(),
            ),
            why: "stanza-create, check, backup and expire read, write and delete this stanza's objects; with versioning a delete only adds a delete marker, the data stays in the older version".into(),
        },
        Explained {
            statement: statement(
                "NeverDestroyHistory",
                Effect::Deny,
                HISTORY_ACTIONS,
                vec![bucket_arn.clone(), object("*")],
            ),
            why: "even the backup side cannot delete a version, bypass or shorten retention, or change versioning, lifecycle, object lock or the bucket policy: a stolen backup-side key can hide backups (delete markers) but not destroy them".into(),
        },
    ];
    let bucket_policy = vec![Explained {
        statement: Statement {
            principal: Some("*"),
            condition: BTreeMap::from([(
                "ArnNotEquals",
                BTreeMap::from([("aws:PrincipalArn", vec![s3.admin_principal.clone()])]),
            )]),
            ..statement(
                "OnlyTheAdministratorChangesHistory",
                Effect::Deny,
                HISTORY_ACTIONS,
                vec![bucket_arn.clone(), object("*")],
            )
        },
        why: format!(
            "a resource policy, so it holds whatever identity policies say: nobody but `{}` may delete versions or change versioning, object lock, lifecycle or this policy (a key with broader IAM rights, or a new key made later, is still denied)",
            s3.admin_principal
        ),
    }];
    let key_dir = |side: &str| format!("{database_config_dir}/{side}-side.d");
    let (lock_mode, lock_days) = match s3.object_lock {
        Some(ObjectLock { compliance: true, days }) => ("COMPLIANCE", days),
        Some(ObjectLock {
            compliance: false,
            days,
        }) => ("GOVERNANCE", days),
        None => ("", 0),
    };
    S3Plan {
        repository: s3.name.clone(),
        bucket: s3.bucket.clone(),
        path: s3.prefix.clone(),
        archive_prefix: archive,
        backup_prefix: backup.clone(),
        region: s3.region.clone(),
        endpoint: s3.endpoint.clone(),
        uri_style: match s3.uri_style {
            UriStyle::Host => "host",
            UriStyle::Path => "path",
        },
        ca_file: s3.ca_file.as_ref().map(|p| p.to_string()).unwrap_or_default(),
        admin_principal: s3.admin_principal.clone(),
        versioning: s3.versioning,
        lock_mode,
        lock_days,
        database_key_source: s3.database_key_file.to_string(),
        backup_key_source: s3.backup_key_file.to_string(),
        database_key_dir: key_dir("database"),
        database_key_file: format!("{}/s3-key.conf", key_dir("database")),
        backup_key_dir: key_dir("backup"),
        backup_key_file: format!("{}/s3-key.conf", key_dir("backup")),
        database_policy,
        backup_policy,
        bucket_policy,
        probe: format!("backup/{stanza}/pgbr-policy-delete-probe"),
        restore_from_versions: c
            .pgbackrest
            .version
            .is_none_or(|v| v >= crate::catalog::Version(2, 54, 0)),
    }
}

/// `aws s3api put-bucket-versioning --versioning-configuration file://versioning.json`
#[derive(Debug, Clone, Serialize)]
pub struct Versioning {
    #[serde(rename = "Status")]
    pub status: &'static str,
}

/// `aws s3api put-object-lock-configuration --object-lock-configuration file://object-lock.json`
#[derive(Debug, Clone, Serialize)]
pub struct ObjectLockConfiguration {
    #[serde(rename = "ObjectLockEnabled")]
    pub enabled: &'static str,
    #[serde(rename = "Rule")]
    pub rule: LockRule,
}

#[derive(Debug, Clone, Serialize)]
pub struct LockRule {
    #[serde(rename = "DefaultRetention")]
    pub default_retention: DefaultRetention,
}

#[derive(Debug, Clone, Serialize)]
pub struct DefaultRetention {
    #[serde(rename = "Mode")]
    pub mode: &'static str,
    #[serde(rename = "Days")]
    pub days: u32,
}

/// The bucket's settings as the S3 API takes them.
#[derive(Debug, Clone, Serialize)]
pub struct BucketSettings {
    #[serde(rename = "Bucket")]
    pub bucket: String,
    #[serde(rename = "VersioningConfiguration")]
    pub versioning: Versioning,
    #[serde(rename = "ObjectLockConfiguration", skip_serializing_if = "Option::is_none")]
    pub object_lock: Option<ObjectLockConfiguration>,
}

pub fn bucket_settings(p: &S3Plan) -> BucketSettings {
    BucketSettings {
        bucket: p.bucket.clone(),
        versioning: Versioning {
            status: if p.versioning { "Enabled" } else { "Suspended" },
        },
        object_lock: (!p.lock_mode.is_empty()).then_some(ObjectLockConfiguration {
            enabled: "Enabled",
            rule: LockRule {
                default_retention: DefaultRetention {
                    mode: p.lock_mode,
                    days: p.lock_days,
                },
            },
        }),
    }
}

/// Terraform's JSON syntax (`main.tf.json`): the two IAM policies, the bucket policy, and
/// versioning + object lock for an existing bucket (object lock must have been enabled
/// when the bucket was created). Policy documents are JSON strings, as Terraform wants.
pub fn terraform(p: &S3Plan, cluster: &str) -> serde_json::Value {
    let doc = |statements: &[Explained]| {
        serde_json::to_string_pretty(&PolicyDocument::of(statements)).expect("a policy document serializes")
    };
    let id = cluster.replace(['-', '.'], "_");
    let mut resource = serde_json::Map::new();
    resource.insert(
        "aws_iam_policy".into(),
        serde_json::json!({
            format!("{id}_database_side"): {
                "name": format!("pgbr-{cluster}-database-side"),
                "description": format!("pgBackRest database side of {cluster}: list and read the stanza, add WAL, delete nothing"),
                "policy": doc(&p.database_policy),
            },
            format!("{id}_backup_side"): {
                "name": format!("pgbr-{cluster}-backup-side"),
                "description": format!("pgBackRest backup side of {cluster}: manage the stanza, never destroy a version"),
                "policy": doc(&p.backup_policy),
            },
        }),
    );
    resource.insert(
        "aws_s3_bucket_policy".into(),
        serde_json::json!({ format!("{id}_bucket"): { "bucket": p.bucket, "policy": doc(&p.bucket_policy) } }),
    );
    resource.insert(
        "aws_s3_bucket_versioning".into(),
        serde_json::json!({ format!("{id}_bucket"): {
            "bucket": p.bucket,
            "versioning_configuration": [{ "status": if p.versioning { "Enabled" } else { "Suspended" } }],
        } }),
    );
    if !p.lock_mode.is_empty() {
        resource.insert(
            "aws_s3_bucket_object_lock_configuration".into(),
            serde_json::json!({ format!("{id}_bucket"): {
                "bucket": p.bucket,
                "rule": [{ "default_retention": [{ "mode": p.lock_mode, "days": p.lock_days }] }],
            } }),
        );
    }
    serde_json::json!({ "resource": resource })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_for(policy: &str) -> S3Plan {
        let loaded = crate::policy::parse(policy.as_bytes(), std::path::Path::new("p.yaml"), "p.yaml")
            .unwrap_or_else(|e| panic!("{e}"));
        let plan = crate::plan::build(&loaded.policy);
        plan.clusters[0].s3.clone().expect("an s3 cluster")
    }

    const POLICY: &str = r#"version: 1
repositories:
  - name: bucket
    type: s3
    s3: {bucket: pg-backups, prefix: /pgbackrest, region: eu-west-1, endpoint: s3.eu-west-1.amazonaws.com, admin_principal: "arn:aws:iam::123456789012:role/backup-admin"}
    credentials: {database_side: /etc/pgbr-keys/db.key, backup_side: /etc/pgbr-keys/backup.key}
    object_lock: {mode: compliance, days: 30}
clusters:
  - name: c
    postgres: {major: 15}
    pgbackrest: {stanza: main, repository: bucket}
"#;

    fn find<'a>(s: &'a [Explained], sid: &str) -> &'a Statement {
        &s.iter().find(|e| e.statement.sid == sid).unwrap().statement
    }

    #[test]
    fn the_database_side_adds_wal_only_and_deletes_nothing() {
        let p = plan_for(POLICY);
        let allowed: Vec<&str> = p
            .database_policy
            .iter()
            .filter(|e| e.statement.effect == Effect::Allow)
            .flat_map(|e| e.statement.action.iter().copied())
            .collect();
        assert!(!allowed.iter().any(|a| a.contains("Delete")), "{allowed:?}");
        let put = find(&p.database_policy, "AddWalOnly");
        assert_eq!(put.action, ["s3:PutObject"]);
        assert_eq!(put.resource, ["arn:aws:s3:::pg-backups/pgbackrest/archive/main/*-*/*"]);
        // Put nowhere else: no other Allow names PutObject.
        let puts = p
            .database_policy
            .iter()
            .filter(|e| e.statement.effect == Effect::Allow && e.statement.action.contains(&"s3:PutObject"))
            .count();
        assert_eq!(puts, 1);
        let deny = find(&p.database_policy, "NeverDestroy");
        for a in [
            "s3:DeleteObject",
            "s3:DeleteObjectVersion",
            "s3:PutBucketVersioning",
            "s3:BypassGovernanceRetention",
        ] {
            assert!(deny.action.contains(&a), "{a}");
        }
    }

    #[test]
    fn listing_is_limited_by_prefix_conditions() {
        // moto does not evaluate Condition keys: this static check is their only test here.
        let p = plan_for(POLICY);
        for side in [&p.database_policy, &p.backup_policy] {
            let list = find(side, "ListStanza");
            assert_eq!(list.resource, ["arn:aws:s3:::pg-backups"]);
            assert_eq!(
                list.condition["StringLike"]["s3:prefix"],
                [
                    "pgbackrest/archive/main",
                    "pgbackrest/archive/main/*",
                    "pgbackrest/backup/main",
                    "pgbackrest/backup/main/*"
                ]
            );
        }
        let bucket = find(&p.bucket_policy, "OnlyTheAdministratorChangesHistory");
        assert_eq!(bucket.principal, Some("*"));
        assert_eq!(bucket.effect, Effect::Deny);
        assert_eq!(
            bucket.condition["ArnNotEquals"]["aws:PrincipalArn"],
            ["arn:aws:iam::123456789012:role/backup-admin"]
        );
    }

    #[test]
    fn the_backup_side_never_destroys_a_version() {
        let p = plan_for(POLICY);
        let allowed: Vec<&str> = p
            .backup_policy
            .iter()
            .filter(|e| e.statement.effect == Effect::Allow)
            .flat_map(|e| e.statement.action.iter().copied())
            .collect();
        for a in HISTORY_ACTIONS {
            assert!(!allowed.contains(a), "{a} granted");
        }
        assert!(allowed.contains(&"s3:DeleteObject"));
        let deny = find(&p.backup_policy, "NeverDestroyHistory");
        assert_eq!(deny.action, HISTORY_ACTIONS);
        let settings = serde_json::to_value(bucket_settings(&p)).unwrap();
        assert_eq!(
            settings["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]["Mode"],
            "COMPLIANCE"
        );
        assert_eq!(
            settings["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]["Days"],
            30
        );
    }

    fn config(policy: &str, side: &str) -> String {
        let loaded = crate::policy::parse(policy.as_bytes(), std::path::Path::new("p.yaml"), "p.yaml")
            .unwrap_or_else(|e| panic!("{e}"));
        let plan = crate::plan::build(&loaded.policy);
        let c = &plan.clusters[0];
        let file = if side == "backup" {
            &c.repository_config
        } else {
            &c.database_config
        };
        crate::render::structured::ini(file).unwrap()
    }

    #[test]
    fn both_sides_share_the_s3_options_and_hold_no_key() {
        let policy = POLICY.replace(
            "endpoint: s3.eu-west-1.amazonaws.com",
            "endpoint: \"minio.local:9000\", ca_file: /etc/ssl/minio.crt",
        );
        let (db, backup) = (config(&policy, "database"), config(&policy, "backup"));
        for text in [&db, &backup] {
            for line in [
                "repo1-type=s3\n",
                "repo1-path=/pgbackrest\n",
                "repo1-s3-bucket=pg-backups\n",
                "repo1-s3-endpoint=minio.local\n",
                "repo1-storage-port=9000\n",
                "repo1-storage-ca-file=/etc/ssl/minio.crt\n",
            ] {
                assert!(text.contains(line), "{line} missing in\n{text}");
            }
            assert!(!text.contains("repo1-s3-key") && !text.contains("repo1-host") && !text.contains("tls-server"));
        }
        assert!(backup.contains("pg1-user=") && !db.contains("pg1-user="));
        let plan_for_c = |p: &str| {
            let loaded = crate::policy::parse(p.as_bytes(), std::path::Path::new("p.yaml"), "p.yaml").unwrap();
            crate::plan::build(&loaded.policy).clusters[0].clone()
        };
        let c = plan_for_c(POLICY);
        assert_eq!(
            c.archive.command,
            "/usr/bin/pgbackrest --config=/etc/pgbackrest/c/database.conf --config-include-path=/etc/pgbackrest/c/database-side.d --stanza=main archive-push %p"
        );
        // No TLS server unit (the scheduled backups' units stay).
        assert!(c.installed_files.iter().all(|f| !f.target.contains("pgbr-tls-")));
        let job = &c.job_full.as_ref().expect("a full backup is scheduled by default").argv;
        assert!(
            job.contains(&"--config-include-path=/etc/pgbackrest/c/backup-side.d".to_string()),
            "{job:?}"
        );
        assert!(
            c.paths.iter().all(|p| p.path != "/var/lib/pgbackrest"),
            "no repository directory on the host"
        );
        let key = c
            .paths
            .iter()
            .find(|p| p.path == "/etc/pgbackrest/c/database-side.d/s3-key.conf")
            .unwrap();
        assert_eq!((key.owner.as_str(), key.mode.0), ("postgres", 0o600));
        // A URL endpoint is written whole (pgBackRest 2.58+ reads it).
        let url = POLICY.replace(
            "endpoint: s3.eu-west-1.amazonaws.com",
            "endpoint: \"http://127.0.0.1:9000\"",
        );
        assert!(config(&url, "database").contains("repo1-s3-endpoint=http://127.0.0.1:9000\n"));
    }

    #[test]
    fn terraform_embeds_the_same_documents() {
        let p = plan_for(POLICY);
        let tf = terraform(&p, "c");
        let policy: serde_json::Value = serde_json::from_str(
            tf["resource"]["aws_iam_policy"]["c_database_side"]["policy"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            policy,
            serde_json::to_value(PolicyDocument::of(&p.database_policy)).unwrap()
        );
        let lock =
            &tf["resource"]["aws_s3_bucket_object_lock_configuration"]["c_bucket"]["rule"][0]["default_retention"][0];
        assert_eq!(
            (lock["mode"].as_str(), lock["days"].as_u64()),
            (Some("COMPLIANCE"), Some(30))
        );
        let without = plan_for(&POLICY.replace("    object_lock: {mode: compliance, days: 30}\n", ""));
        assert!(terraform(&without, "c")["resource"]["aws_s3_bucket_object_lock_configuration"].is_null());
        assert!(serde_json::to_value(bucket_settings(&without)).unwrap()["ObjectLockConfiguration"].is_null());
    }

    #[test]
    fn a_root_prefix_gives_keys_without_a_leading_component() {
        let p = plan_for(&POLICY.replace("prefix: /pgbackrest", "prefix: /"));
        assert_eq!(p.archive_prefix, "archive/main");
        assert_eq!(
            find(&p.database_policy, "AddWalOnly").resource,
            ["arn:aws:s3:::pg-backups/archive/main/*-*/*"]
        );
    }
}
