//! Cross-artifact consistency of a rendered tree, read back from the artifacts
//! themselves: on a Patroni cluster the role named by the post-bootstrap SQL, by the
//! pg_hba/pg_ident lines of the Patroni fragment and by pgBackRest's `pg1-user` is one
//! and the same, the fragment names the installed scripts, and the dynamic-configuration
//! patch carries the plan's archive_command. Everything comes from one plan, so a failure
//! here is a template bug; parsing the output (YAML, hba tokens, SQL identifiers, ini)
//! checks what was written rather than what was meant.

use crate::artifact::Tree;
use crate::plan::{ClusterPlan, PatroniPlan, Plan};
use anyhow::{Result, bail};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The heredoc delimiter around sql/apply.sql in the post-bootstrap script.
const SQL_DELIMITER: &str = "PGBR_APPLY_SQL";

/// One cluster, checked against its own rendered files (the streaming render calls this
/// per cluster).
pub fn check_cluster(c: &ClusterPlan, tree: &Tree) -> Result<()> {
    let Some(p) = &c.patroni else { return Ok(()) };
    let problems: Vec<String> = check_patroni(c, p, tree)
        .into_iter()
        .map(|m| format!("cluster `{}`: {m}", c.name))
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        bail!(
            "the generated artifacts disagree (a template bug):\n  {}",
            problems.join("\n  ")
        )
    }
}

/// Every Patroni cluster of the plan, checked against its rendered artifacts.
pub fn check(plan: &Plan, tree: &Tree) -> Result<()> {
    plan.clusters.iter().try_for_each(|c| check_cluster(c, tree))
}

#[derive(Deserialize)]
struct Fragment {
    bootstrap: Bootstrap,
    postgresql: PostgresqlSection,
}

#[derive(Deserialize)]
struct Bootstrap {
    initdb: Vec<String>,
    post_bootstrap: String,
    pg_hba: Vec<String>,
}

#[derive(Deserialize)]
struct PostgresqlSection {
    pg_hba: Vec<String>,
    pg_ident: Vec<String>,
    callbacks: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct DynamicConfig {
    postgresql: DynamicPostgresql,
}

#[derive(Deserialize)]
struct DynamicPostgresql {
    parameters: BTreeMap<String, String>,
}

fn text<'t>(tree: &'t Tree, c: &ClusterPlan, file: &str, problems: &mut Vec<String>) -> Option<&'t str> {
    let found = tree
        .get(&format!("{}/{file}", c.name))
        .and_then(|a| std::str::from_utf8(&a.bytes).ok());
    if found.is_none() {
        problems.push(format!("{file} is missing"));
    }
    found
}

fn check_patroni(c: &ClusterPlan, p: &PatroniPlan, tree: &Tree) -> Vec<String> {
    let mut problems = Vec::new();
    let role = c.role.name.as_str();
    let mut expect = |what: String, found: Option<String>| match found {
        Some(found) if found == role => {}
        Some(found) => problems.push(format!("{what} names role `{found}`, the plan `{role}`")),
        None => problems.push(format!("{what} names no role")),
    };

    let mut others = Vec::new();
    if let Some(ini) = text(tree, c, &c.files.repository_config, &mut others) {
        expect(
            format!("pg1-user in {}", c.files.repository_config),
            ini_value(ini, &c.stanza, "pg1-user"),
        );
    }
    if let Some(sql) = text(tree, c, "sql/apply.sql", &mut others) {
        expect("ALTER ROLE in sql/apply.sql".into(), altered_role(sql));
        if let Some(script) = text(tree, c, &p.files.post_bootstrap, &mut others) {
            match heredoc(script, SQL_DELIMITER) {
                Some(body) if body.trim_end() == sql.trim_end() => {}
                Some(body) => {
                    expect(format!("the SQL in {}", p.files.post_bootstrap), altered_role(&body));
                    others.push(format!(
                        "the SQL in {} differs from sql/apply.sql",
                        p.files.post_bootstrap
                    ));
                }
                None => others.push(format!("{} holds no <<'{SQL_DELIMITER}' block", p.files.post_bootstrap)),
            }
        }
    }
    if let Some(yaml) = text(tree, c, &p.files.fragment, &mut others) {
        match serde_saphyr::from_str::<Fragment>(yaml) {
            Err(e) => others.push(format!("{} does not parse: {e}", p.files.fragment)),
            Ok(fragment) => {
                for (key, lines) in [
                    ("bootstrap.pg_hba", &fragment.bootstrap.pg_hba),
                    ("postgresql.pg_hba", &fragment.postgresql.pg_hba),
                ] {
                    let rules = rules(&managed_block(lines, &c.hba_marker));
                    if rules.len() != c.hba_lines.len() {
                        others.push(format!(
                            "{}: {key} holds {} rules of the role, the plan {}",
                            p.files.fragment,
                            rules.len(),
                            c.hba_lines.len()
                        ));
                    }
                    for (i, rule) in rules.iter().enumerate() {
                        let user = rule.get(2).cloned();
                        expect(format!("{}: {key} rule {} of the block", p.files.fragment, i + 1), user);
                    }
                    if let Some(first) = rules.first() {
                        if first.get(1).map(String::as_str) != Some(c.role.database.as_str()) {
                            others.push(format!(
                                "{}: the role's first rule in {key} is not for database `{}`",
                                p.files.fragment, c.role.database
                            ));
                        }
                    }
                }
                for ident in &c.ident_lines {
                    let idents = rules(&managed_block(&fragment.postgresql.pg_ident, &c.hba_marker));
                    let line = idents.iter().find(|r| r.first() == Some(&ident.map));
                    expect(
                        format!("{}: postgresql.pg_ident map `{}`", p.files.fragment, ident.map),
                        line.and_then(|r| r.get(2).cloned()),
                    );
                    if line.and_then(|r| r.get(1)) != Some(&ident.system_user) {
                        others.push(format!(
                            "{}: pg_ident map `{}` is not for OS user `{}`",
                            p.files.fragment, ident.map, ident.system_user
                        ));
                    }
                }
                if fragment.bootstrap.pg_hba != fragment.postgresql.pg_hba {
                    others.push(format!(
                        "{}: bootstrap.pg_hba differs from postgresql.pg_hba",
                        p.files.fragment
                    ));
                }
                if fragment.bootstrap.post_bootstrap != p.post_bootstrap {
                    others.push(format!(
                        "{}: bootstrap.post_bootstrap is not {}",
                        p.files.fragment, p.post_bootstrap
                    ));
                }
                if !fragment.bootstrap.initdb.iter().any(|o| o == "allow-group-access") {
                    others.push(format!(
                        "{}: bootstrap.initdb lacks allow-group-access",
                        p.files.fragment
                    ));
                }
                let callbacks: Vec<&str> = fragment.postgresql.callbacks.keys().map(String::as_str).collect();
                let mut wanted = p.callbacks.clone();
                wanted.sort_unstable();
                if callbacks != wanted || fragment.postgresql.callbacks.values().any(|h| *h != p.hook) {
                    others.push(format!(
                        "{}: postgresql.callbacks must run {} on {}",
                        p.files.fragment,
                        p.hook,
                        p.callbacks.join(", ")
                    ));
                }
            }
        }
    }
    if c.archive.managed {
        if let Some(yaml) = text(tree, c, &p.files.dynamic_config, &mut others) {
            match serde_saphyr::from_str::<DynamicConfig>(yaml) {
                Err(e) => others.push(format!("{} does not parse: {e}", p.files.dynamic_config)),
                Ok(d) => {
                    if d.postgresql.parameters.get("archive_command") != Some(&c.archive.command) {
                        others.push(format!("{}: archive_command is not the plan's", p.files.dynamic_config));
                    }
                    if d.postgresql.parameters.get("archive_mode").map(String::as_str) != Some("on") {
                        others.push(format!("{}: archive_mode is not on", p.files.dynamic_config));
                    }
                }
            }
        }
    }
    problems.extend(others);
    problems
}

/// `key=value` in `[section]` of a pgBackRest ini file.
fn ini_value(ini: &str, section: &str, key: &str) -> Option<String> {
    let header = format!("[{section}]");
    let mut inside = false;
    for line in ini.lines() {
        if line.starts_with('[') {
            inside = line == header;
        } else if inside {
            if let Some(value) = line.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')) {
                return Some(value.to_owned());
            }
        }
    }
    None
}

/// The role of the first `ALTER ROLE "…"` statement: a double-quoted SQL identifier.
fn altered_role(sql: &str) -> Option<String> {
    let line = sql.lines().find(|l| l.starts_with("ALTER ROLE \""))?;
    let rest = &line["ALTER ROLE \"".len()..];
    let mut name = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch == '"' {
            if chars.peek() == Some(&'"') {
                chars.next();
                name.push('"');
            } else {
                return Some(name);
            }
        } else {
            name.push(ch);
        }
    }
    None
}

/// The lines between `<<'DELIM'` and the line `DELIM`, each with its newline.
fn heredoc(script: &str, delimiter: &str) -> Option<String> {
    let opener = format!("<<'{delimiter}'");
    let mut lines = script.lines().skip_while(|l| !l.ends_with(&opener));
    lines.next()?;
    let mut body = String::new();
    for line in lines {
        if line == delimiter {
            return Some(body);
        }
        body.push_str(line);
        body.push('\n');
    }
    None
}

/// The lines from `# BEGIN <marker>` to `# END <marker>` (the one grammar of
/// `plan::block`); none when the block is missing or malformed (then the rule count
/// differs from the plan's, which is reported).
fn managed_block(lines: &[String], marker: &str) -> Vec<String> {
    match crate::plan::block::find(lines, marker) {
        Ok(Some(span)) => lines[span.begin..=span.end].to_vec(),
        _ => Vec::new(),
    }
}

/// The rules of pg_hba/pg_ident lines as tokens, double quotes removed (names cannot
/// contain `"`: validation refuses them).
fn rules(lines: &[String]) -> Vec<Vec<String>> {
    lines
        .iter()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .map(|l| hba_tokens(l))
        .collect()
}

fn hba_tokens(line: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut in_token = false;
    for ch in line.chars() {
        match ch {
            '"' => {
                quoted = !quoted;
                in_token = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_token {
                    tokens.push(std::mem::take(&mut current));
                    in_token = false;
                }
            }
            c => {
                current.push(c);
                in_token = true;
            }
        }
    }
    if in_token {
        tokens.push(current);
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact;

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

    fn rendered(policy: &str) -> (Plan, Tree) {
        let loaded = crate::policy::parse(policy.as_bytes(), std::path::Path::new("p.yaml"), "p.yaml")
            .map_err(|e| e.to_string())
            .unwrap();
        let plan = crate::plan::build(&loaded.policy);
        let tree = artifact::render_all(&plan).unwrap();
        (plan, tree)
    }

    fn edit(tree: &mut Tree, path: &str, from: &str, to: &str) {
        let artifact = tree.get_mut(path).unwrap();
        let text = String::from_utf8(artifact.bytes.clone()).unwrap();
        assert!(text.contains(from), "{path} does not contain {from}");
        // The first occurrence only: the fragment repeats its pg_hba list.
        artifact.bytes = text.replacen(from, to, 1).into_bytes();
    }

    #[test]
    fn one_role_everywhere() {
        // The name needs quoting in every target (hba, SQL, YAML); it was refused for `"`
        // by validation, so use one with a quote and spaces.
        let (plan, tree) = rendered(&POLICY.replace(r#"it's a \"x\" role"#, "it's a role"));
        check(&plan, &tree).unwrap();
        let c = &plan.clusters[0];
        let ini = std::str::from_utf8(&tree["pat/pgbackrest/repository.conf"].bytes).unwrap();
        assert_eq!(ini_value(ini, &c.stanza, "pg1-user").as_deref(), Some("it's a role"));
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
    fn another_role_in_pg_hba_is_found() {
        let (plan, mut tree) = rendered(&POLICY.replace(r#"it's a \"x\" role"#, "pgbr_backup"));
        edit(
            &mut tree,
            "pat/patroni/patroni.yml",
            "local\\tall\\tpgbr_backup",
            "local\\tall\\tsomeone",
        );
        let err = check(&plan, &tree).unwrap_err().to_string();
        assert!(
            err.contains("bootstrap.pg_hba rule 2 of the block names role `someone`"),
            "{err}"
        );
        assert!(err.contains("bootstrap.pg_hba differs"), "{err}");
    }

    #[test]
    fn another_pg1_user_or_sql_role_is_found() {
        let (plan, mut tree) = rendered(&POLICY.replace(r#"it's a \"x\" role"#, "pgbr_backup"));
        edit(
            &mut tree,
            "pat/pgbackrest/repository.conf",
            "pg1-user=pgbr_backup",
            "pg1-user=postgres",
        );
        edit(
            &mut tree,
            "pat/patroni/post-bootstrap.sh",
            "ALTER ROLE \"pgbr_backup\"",
            "ALTER ROLE \"other\"",
        );
        let err = check(&plan, &tree).unwrap_err().to_string();
        assert!(
            err.contains("pg1-user in pgbackrest/repository.conf names role `postgres`"),
            "{err}"
        );
        assert!(
            err.contains("the SQL in patroni/post-bootstrap.sh names role `other`"),
            "{err}"
        );
    }

    #[test]
    fn scram_has_no_ident_map_and_still_agrees() {
        let policy = POLICY.replace(
            r#"role: {name: "it's a \"x\" role"}"#,
            "role: {name: r, auth: scram-sha-256, password_env: PGBR_PW}",
        );
        let (plan, tree) = rendered(&policy);
        check(&plan, &tree).unwrap();
    }

    #[test]
    fn the_site_lines_reach_patroni_unchanged() {
        // Quotes, backslashes, shell and YAML syntax, unicode: each line is one JSON
        // string in the fragment, read back exactly.
        let lines = [
            r#"host all "we'ird user" 127.0.0.1/32 scram-sha-256"#,
            r#"host all all 10.0.0.0/8 ldap ldapserver=x ldapprefix="cn=\$(reboot)""#,
            "# a comment: with [yaml] {flow} & *alias !tag % ünï",
            "local\tall\tpostgres\tpeer",
        ];
        let yaml_list: Vec<String> = lines.iter().map(|l| serde_json::to_string(l).unwrap()).collect();
        let policy = POLICY.replace(r#"it's a \"x\" role"#, "r").replace(
            r#"["host all all 127.0.0.1/32 scram-sha-256"]"#,
            &format!("[{}]", yaml_list.join(", ")),
        );
        let (plan, tree) = rendered(&policy);
        let fragment: Fragment =
            serde_saphyr::from_str(std::str::from_utf8(&tree["pat/patroni/patroni.yml"].bytes).unwrap()).unwrap();
        let tail: Vec<&str> = fragment
            .postgresql
            .pg_hba
            .iter()
            .rev()
            .take(lines.len())
            .rev()
            .map(String::as_str)
            .collect();
        assert_eq!(tail, lines);
        check(&plan, &tree).unwrap();
    }

    #[test]
    fn tokens_unquote() {
        assert_eq!(
            hba_tokens("local\t\"my db\"\tr\tpeer map=x"),
            ["local", "my db", "r", "peer", "map=x"]
        );
    }
}
