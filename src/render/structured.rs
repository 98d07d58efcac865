//! Structured artifacts written from typed values instead of templated text: the Patroni
//! fragment and dynamic-configuration patch as YAML (serde-saphyr's serializer), the
//! pgBackRest configuration files as ini (the small writer below). Their templates keep
//! only the header comment and interpolate the body as `{{ body | serialized }}`; the
//! `serialized` filter passes this module's output unchanged, and the template scan
//! allows it on `body` and nothing else.
//!
//! Nothing reads these files back: what they say is the plan's fields, serialized once.

use super::escape::{self, Unrepresentable};
use crate::plan::pgbackrest::ConfigFile;
use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

/// Which typed value a generator output's `body` is (`body:` in generators/*.yaml).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Body {
    /// [`crate::plan::patroni::Fragment`]
    PatroniFragment,
    /// [`crate::plan::patroni::DynamicConfig`]
    PatroniDynamicConfig,
    /// [`crate::plan::ClusterPlan::repository_config`]
    RepositoryConfig,
    /// [`crate::plan::ClusterPlan::database_config`]
    DatabaseConfig,
    /// The IAM policy documents of [`crate::plan::repository::S3Plan`], as JSON.
    DatabaseIamPolicy,
    BackupIamPolicy,
    BucketPolicy,
    /// [`crate::plan::repository::BucketSettings`]
    BucketSettings,
    /// [`crate::plan::repository::terraform`] (Terraform's JSON syntax)
    Terraform,
    /// [`AnsibleClusterVars`]
    AnsibleClusterVars,
}

/// A JSON document (serde_json, two-space indentation, keys in struct order), one
/// trailing newline. JSON has no comments, so these files carry no header.
pub fn json<T: Serialize>(value: &T) -> Result<String> {
    let mut text = serde_json::to_string_pretty(value).context("serializing JSON")?;
    text.push('\n');
    Ok(text)
}

/// What the Ansible role needs to know of one cluster (`ansible/clusters/<cluster>.yml`):
/// its name, whether Patroni manages it, and where a scram-sha-256 password comes from.
/// Every value is from an allowlist (cluster names, environment variable names), so no
/// `{{` can reach Ansible's templating; nothing secret.
#[derive(Debug, Serialize)]
pub struct AnsibleClusterVars<'a> {
    pub pgbr_policy_cluster: &'a str,
    pub pgbr_policy_patroni: bool,
    /// scram-sha-256 with `password_env`: the variable's name; empty otherwise.
    pub pgbr_policy_password_env: &'a str,
}

impl<'a> AnsibleClusterVars<'a> {
    pub fn of(cluster: &'a crate::plan::ClusterPlan) -> Self {
        Self {
            pgbr_policy_cluster: &cluster.name,
            pgbr_policy_patroni: cluster.patroni.is_some(),
            pgbr_policy_password_env: &cluster.role.password_env,
        }
    }
}

/// A YAML document: block style, two-space indentation with sequences indented under
/// their key, no block scalars (one line per string). Strings are plain only where no
/// YAML 1.1 reader (Patroni's PyYAML) could take them for anything else: `on`, `y`,
/// `0750`, `=`, `# …`, `a: b` and anything with a tab or a control character are quoted.
pub fn yaml<T: Serialize>(value: &T) -> Result<String> {
    let options = serde_saphyr::ser_options! {
        indent_step: 2,
        compact_list_indent: false,
        prefer_block_scalars: false,
    };
    serde_saphyr::to_string_with_options(value, options).context("serializing YAML")
}

/// A pgBackRest configuration file's sections: `[section]`, then `key=value` lines, a
/// blank line between sections. pgBackRest trims keys and values and reads a line at a
/// time, so a value that is empty, has surrounding white space or holds a line break or a
/// control character could not be read back as written: validation refuses such values
/// in the policy, and this writer refuses them again (reaching it would be a bug).
pub fn ini(file: &ConfigFile) -> Result<String, Unrepresentable> {
    let mut out = String::new();
    for (i, section) in file.sections.iter().enumerate() {
        let name = &section.name;
        let plain_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/'));
        if !plain_name {
            return Err(Unrepresentable(format!(
                "{}: the section name `{}` cannot be written as `[name]`",
                file.path,
                crate::policy::names::printable(name)
            )));
        }
        if i > 0 {
            out.push('\n');
        }
        out.push('[');
        out.push_str(name);
        out.push_str("]\n");
        for option in &section.options {
            let key = &*option.key;
            if key.is_empty()
                || !key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                return Err(Unrepresentable(format!(
                    "{}: `{key}` is not a pgBackRest option name",
                    file.path
                )));
            }
            if option.value.is_empty() {
                return Err(Unrepresentable(format!(
                    "{}: [{name}] {key} has an empty value",
                    file.path
                )));
            }
            let value = escape::ini(&option.value)
                .map_err(|e| Unrepresentable(format!("{}: [{name}] {key}: {}", file.path, e.0)))?;
            out.push_str(key);
            out.push('=');
            out.push_str(&value);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::pgbackrest::{ConfigOption, ConfigSection};

    fn file(value: &str) -> ConfigFile {
        ConfigFile {
            path: "/etc/pgbackrest/x.conf".into(),
            owner: "root".into(),
            group: "root".into(),
            mode: "0640",
            reader: "r".into(),
            sections: vec![
                ConfigSection {
                    name: "global".into(),
                    options: vec![ConfigOption {
                        key: "repo1-path".into(),
                        value: "/var/lib/pgbackrest".into(),
                    }],
                },
                ConfigSection {
                    name: "main".into(),
                    options: vec![
                        ConfigOption {
                            key: "pg1-user".into(),
                            value: value.into(),
                        },
                        ConfigOption {
                            key: "pg1-port".into(),
                            value: "5432".into(),
                        },
                    ],
                },
            ],
        }
    }

    #[test]
    fn ini_sections_and_options_in_order() {
        assert_eq!(
            ini(&file("it's a role")).unwrap(),
            "[global]\nrepo1-path=/var/lib/pgbackrest\n\n[main]\npg1-user=it's a role\npg1-port=5432\n"
        );
    }

    #[test]
    fn ini_refuses_what_pgbackrest_would_read_differently() {
        for (value, why) in [
            (" r", "white space"),
            ("r ", "white space"),
            ("a\nb", "control"),
            ("a\0b", "control"),
            ("a\rb", "control"),
            ("", "empty"),
        ] {
            let err = ini(&file(value)).unwrap_err().0;
            assert!(err.contains("[main] pg1-user") && err.contains(why), "{value:?}: {err}");
        }
        let mut f = file("r");
        f.sections[1].name = "a]b".into();
        assert!(ini(&f).unwrap_err().0.contains("section name"));
        f.sections[1].name = String::new();
        assert!(ini(&f).is_err());
    }

    #[test]
    fn yaml_quotes_what_pyyaml_would_misread() {
        let text = yaml(&vec![
            "on",
            "y",
            "0750",
            "=",
            "# c",
            "a: b",
            "local\tall",
            "/p",
            "allow-group-access",
        ])
        .unwrap();
        assert_eq!(
            text,
            "- \"on\"\n- \"y\"\n- \"0750\"\n- \"=\"\n- \"# c\"\n- \"a: b\"\n- \"local\\tall\"\n- /p\n- allow-group-access\n"
        );
    }

    // ---- one plan, every artifact --------------------------------------------------
    //
    // These replace consistency.rs, which parsed the rendered artifacts back to check that
    // they named the same role and paths. They now cannot disagree by construction: the
    // fragment is `patroni::fragment` of the PatroniPlan (post_bootstrap, hook, callbacks,
    // initdb) with the rendered hba/ident snippets as its managed block; pg1-user is
    // `c.role.name` in the ConfigFile the plan builds; the hba lines, the post-bootstrap
    // script and sql/apply.sql read `c.role.name` too. The tests pin that down, and that
    // each serialized text reads back as the values it was written from.

    use crate::artifact::Tree;
    use crate::plan::{Plan, patroni};
    use std::collections::BTreeMap;

    const POLICY: &str = r#"version: 1
clusters:
  - name: pat
    postgres: {major: 15}
    role: {name: "it's a \"x\" role"}
    patroni:
      enabled: true
      version: "3.0.2"
      pg_hba_after: ["host all all 127.0.0.1/32 scram-sha-256"]
"#;

    #[derive(Deserialize)]
    struct Fragment {
        bootstrap: Bootstrap,
        postgresql: Postgresql,
    }

    #[derive(Deserialize)]
    struct Bootstrap {
        initdb: Vec<String>,
        post_bootstrap: String,
        dcs: Option<Dynamic>,
        pg_hba: Vec<String>,
    }

    #[derive(Deserialize)]
    struct Postgresql {
        pg_hba: Vec<String>,
        pg_ident: Vec<String>,
        callbacks: BTreeMap<String, String>,
    }

    #[derive(Deserialize)]
    struct Dynamic {
        postgresql: Parameters,
    }

    #[derive(Deserialize)]
    struct Parameters {
        parameters: BTreeMap<String, String>,
    }

    fn rendered(policy: &str) -> (Plan, Tree) {
        let loaded = crate::policy::parse(policy.as_bytes(), std::path::Path::new("p.yaml"), "p.yaml")
            .map_err(|e| e.to_string())
            .unwrap();
        let plan = crate::plan::build(&loaded.policy);
        let tree = crate::artifact::render_all(&plan).unwrap();
        (plan, tree)
    }

    fn text<'t>(tree: &'t Tree, path: &str) -> &'t str {
        std::str::from_utf8(&tree.get(path).unwrap_or_else(|| panic!("no {path}")).bytes).unwrap()
    }

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    /// Checks one rendered Patroni cluster against its plan; returns the fragment.
    fn one_plan(plan: &Plan, tree: &Tree) -> Fragment {
        let c = &plan.clusters[0];
        let p = c.patroni.as_ref().unwrap();
        let role = c.role.name.as_str();
        let yaml = text(tree, &format!("pat/{}", p.files.fragment));
        let fragment: Fragment = serde_saphyr::from_str(yaml).unwrap();

        // The fragment: the PatroniPlan's own fields.
        assert_eq!(fragment.bootstrap.initdb, p.initdb);
        assert!(p.initdb.contains(&"allow-group-access"));
        assert_eq!(fragment.bootstrap.post_bootstrap, p.post_bootstrap);
        let wanted: BTreeMap<String, String> = p.callbacks.iter().map(|cb| (cb.to_string(), p.hook.clone())).collect();
        assert_eq!(fragment.postgresql.callbacks, wanted);
        // In the plan's order.
        let at: Vec<usize> = p
            .callbacks
            .iter()
            .map(|cb| yaml.find(&format!("\n    {cb}: ")).unwrap())
            .collect();
        assert!(at.is_sorted(), "{yaml}");

        // Its pg_hba/pg_ident lists: the snippets, line for line, then the site's lines.
        let hba = lines(text(tree, "pat/hba/pg_hba.conf.snippet"));
        let ident = lines(text(tree, "pat/hba/pg_ident.conf.snippet"));
        let mut want_hba = hba.clone();
        want_hba.extend(p.pg_hba_after.iter().cloned());
        assert_eq!(fragment.postgresql.pg_hba, want_hba);
        assert_eq!(fragment.bootstrap.pg_hba, want_hba);
        let mut want_ident = ident.clone();
        want_ident.extend(p.pg_ident_after.iter().cloned());
        assert_eq!(fragment.postgresql.pg_ident, want_ident);

        // The hba lines: every rule is for the plan's role, the first for its database.
        // local <db>, then reject: local all, host all, local replication, host replication.
        assert_eq!(c.hba_lines.len(), 5);
        assert!(c.hba_lines.iter().all(|l| l.user == role));
        assert_eq!(c.hba_lines[0].database, c.role.database);
        let user = escape::hba(role).unwrap();
        let rules: Vec<&String> = hba.iter().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(rules.len(), c.hba_lines.len());
        assert!(
            rules.iter().all(|r| r.split('\t').nth(2) == Some(user.as_str())),
            "{rules:?}"
        );
        for l in &c.ident_lines {
            assert_eq!(l.database_user, role);
            assert_eq!(l.system_user, c.backup_user.name);
            let line = format!(
                "{}\t{}\t{user}",
                escape::hba(&l.map).unwrap(),
                escape::hba(&l.system_user).unwrap()
            );
            assert!(ident.contains(&line), "{ident:?}");
        }

        // pgBackRest's pg1-user: the role, in the stanza's section, and nowhere on the
        // database side (the owner connects as itself).
        let section = &c.repository_config.sections[1];
        assert_eq!(section.name, c.stanza);
        let pg1_user: Vec<&str> = section
            .options
            .iter()
            .filter(|o| o.key == "pg1-user")
            .map(|o| o.value.as_str())
            .collect();
        assert_eq!(pg1_user, [role]);
        let ini = text(tree, "pat/pgbackrest/repository.conf");
        let stanza_part = ini.split(&format!("\n[{}]\n", c.stanza)).nth(1).unwrap();
        assert!(stanza_part.lines().any(|l| l == format!("pg1-user={role}")), "{ini}");
        assert!(!text(tree, "pat/pgbackrest/database.conf").contains("pg1-user"));

        // The post-bootstrap script: sql/apply.sql embedded unchanged, for the role.
        let script = text(tree, &format!("pat/{}", p.files.post_bootstrap));
        let sql = text(tree, "pat/sql/apply.sql");
        let heredoc = script.split("<<'PGBR_APPLY_SQL'\n").nth(1).unwrap();
        let heredoc = &heredoc[..heredoc.find("\nPGBR_APPLY_SQL\n").unwrap()];
        assert_eq!(heredoc.trim_end(), sql.trim_end());
        assert!(script.contains(&format!("\nROLE_NAME={}\n", escape::sh(role).unwrap())));
        assert!(sql.contains(&format!("ALTER ROLE {} ", escape::sql_ident(role).unwrap())));

        // The dynamic configuration: the plan's archive_command.
        if c.archive.managed {
            let dynamic: Dynamic =
                serde_saphyr::from_str(text(tree, &format!("pat/{}", p.files.dynamic_config))).unwrap();
            assert_eq!(dynamic.postgresql.parameters["archive_command"], c.archive.command);
            assert_eq!(dynamic.postgresql.parameters["archive_mode"], "on");
            let dcs = fragment.bootstrap.dcs.as_ref().unwrap();
            assert_eq!(dcs.postgresql.parameters.len(), 1);
            assert_eq!(dcs.postgresql.parameters["archive_mode"], "on");
            assert_eq!(
                patroni::dynamic_config(c)
                    .unwrap()
                    .postgresql
                    .parameters
                    .archive_command
                    .as_deref(),
                Some(c.archive.command.as_str())
            );
        } else {
            assert!(fragment.bootstrap.dcs.is_none());
            assert!(!tree.contains_key(&format!("pat/{}", p.files.dynamic_config)));
        }
        fragment
    }

    #[test]
    fn one_role_everywhere() {
        // The name needs quoting in every target (hba, SQL, YAML, shell); `"` is refused
        // by validation, so one with a quote and spaces.
        let (plan, tree) = rendered(&POLICY.replace(r#"it's a \"x\" role"#, "it's a role"));
        one_plan(&plan, &tree);
        let ini = text(&tree, "pat/pgbackrest/repository.conf");
        assert!(
            ini.contains("\n[pat]\n") && ini.contains("\npg1-user=it's a role\n"),
            "{ini}"
        );
    }

    #[test]
    fn a_quote_in_the_role_is_refused_before_rendering() {
        let err = crate::policy::parse(POLICY.as_bytes(), std::path::Path::new("p.yaml"), "p.yaml")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("role.name"), "{err}");
    }

    #[test]
    fn scram_has_no_ident_map_and_still_agrees() {
        let policy = POLICY.replace(
            r#"role: {name: "it's a \"x\" role"}"#,
            "role: {name: r, auth: scram-sha-256, password_env: PGBR_PW}",
        );
        let (plan, tree) = rendered(&policy);
        assert!(plan.clusters[0].ident_lines.is_empty());
        one_plan(&plan, &tree);
    }

    #[test]
    fn archiving_left_alone_has_no_dynamic_config() {
        let policy = POLICY
            .replace(r#"it's a \"x\" role"#, "r")
            .replace("    patroni:\n", "    archive: {managed: false}\n    patroni:\n");
        let (plan, tree) = rendered(&policy);
        assert!(!plan.clusters[0].archive.managed);
        one_plan(&plan, &tree);
    }

    #[test]
    fn the_site_lines_reach_patroni_unchanged() {
        // Quotes, backslashes, shell and YAML syntax, YAML 1.1 booleans, unicode: each
        // line reads back exactly from the fragment.
        let lines = [
            r#"host all "we'ird user" 127.0.0.1/32 scram-sha-256"#,
            r#"host all all 10.0.0.0/8 ldap ldapserver=x ldapprefix="cn=\$(reboot)""#,
            "# a comment: with [yaml] {flow} & *alias !tag % ünï",
            "local\tall\tpostgres\tpeer",
            "host all all ::1/128 trust # on",
        ];
        let yaml_list: Vec<String> = lines.iter().map(|l| serde_json::to_string(l).unwrap()).collect();
        let policy = POLICY.replace(r#"it's a \"x\" role"#, "r").replace(
            r#"["host all all 127.0.0.1/32 scram-sha-256"]"#,
            &format!("[{}]", yaml_list.join(", ")),
        );
        let (plan, tree) = rendered(&policy);
        let fragment = one_plan(&plan, &tree);
        let tail = &fragment.postgresql.pg_hba[fragment.postgresql.pg_hba.len() - lines.len()..];
        assert_eq!(tail, lines);
    }
}
