//! Drift against the live database: the role's attributes, memberships and EXECUTE
//! grants, the hba rules as the server reads them, the archive settings and
//! data_directory_mode, compared with the plan. Privileges beyond the plan are drift as
//! much as missing ones. The server is reached through psql over the cluster's Unix
//! socket as the cluster owner (via runuser when we are root), with the query on stdin.

use crate::deployed::Finding;
use crate::plan::ClusterPlan;
use anyhow::{Context as _, Result, bail};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::io::Write as _;
use std::process::{Command, Stdio};

/// One JSON document with everything we compare; `:'role'` is bound by psql.
const STATE_QUERY: &str = r#"
SELECT pg_catalog.json_build_object(
  'role', (SELECT pg_catalog.row_to_json(r) FROM pg_catalog.pg_roles r WHERE rolname = :'role'),
  'memberships', (SELECT coalesce(pg_catalog.json_agg(g.rolname ORDER BY g.rolname), '[]')
    FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
    JOIN pg_catalog.pg_roles r ON r.oid = m.member WHERE r.rolname = :'role'),
  'functions', (SELECT coalesce(pg_catalog.json_agg(p.oid::pg_catalog.regprocedure::text ORDER BY 1), '[]')
    FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) a JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
    WHERE r.rolname = :'role' AND a.privilege_type = 'EXECUTE'),
  'hba', (SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object(
      'type', type, 'database', database, 'user', user_name, 'method', auth_method,
      'options', coalesce(options, '{}'), 'error', error) ORDER BY line_number), '[]')
    FROM pg_catalog.pg_hba_file_rules),
  'archive_mode', pg_catalog.current_setting('archive_mode'),
  'archive_command', pg_catalog.current_setting('archive_command'),
  'data_directory_mode', pg_catalog.current_setting('data_directory_mode', true),
  'public_create', (SELECT pg_catalog.has_schema_privilege(:'role', 'public', 'CREATE')
    WHERE EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = :'role')
      AND EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = 'public'))
);
"#;

#[derive(Debug, Deserialize)]
struct State {
    /// The role's pg_roles row, by column (the plan names the columns it fixes).
    role: Option<serde_json::Map<String, serde_json::Value>>,
    memberships: Vec<String>,
    functions: Vec<String>,
    hba: Vec<HbaRule>,
    archive_mode: String,
    archive_command: String,
    data_directory_mode: Option<String>,
    public_create: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct HbaRule {
    #[serde(rename = "type")]
    kind: Option<String>,
    database: Option<Vec<String>>,
    user: Option<Vec<String>>,
    method: Option<String>,
    options: Vec<String>,
    error: Option<String>,
}

fn query(cluster: &ClusterPlan) -> Result<State> {
    let am_root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    let psql = ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"];
    let mut command = if am_root {
        let mut c = Command::new("runuser");
        c.args(["-u", &cluster.postgres.owner, "--"]).args(psql);
        c
    } else {
        let mut c = Command::new(psql[0]);
        c.args(&psql[1..]);
        c
    };
    command
        .args([
            "-h",
            &cluster.postgres.socket_directory,
            "-p",
            &cluster.postgres.port.to_string(),
        ])
        .args(["-U", &cluster.postgres.owner, "-d", &cluster.role.database])
        .arg("-v")
        .arg(format!("role={}", cluster.role.name))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().context("cannot run psql (install postgresql-client)")?;
    child
        .stdin
        .take()
        .context("psql stdin")?
        .write_all(STATE_QUERY.as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "cannot read the state of cluster `{}` as `{}` through `{}`: {}",
            cluster.name,
            cluster.postgres.owner,
            cluster.postgres.socket_directory,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    serde_json::from_slice(&output.stdout).context("psql returned something other than the expected JSON")
}

pub fn compare(clusters: &[ClusterPlan]) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    for cluster in clusters {
        let state = query(cluster)?;
        out.extend(findings(cluster, &state));
    }
    Ok(out)
}

fn findings(c: &ClusterPlan, state: &State) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut finding = |item: &str, problem: &str, expected: &str, found: &str| {
        out.push(Finding {
            cluster: c.name.clone(),
            item: item.to_owned(),
            problem: problem.to_owned(),
            expected: expected.to_owned(),
            found: found.to_owned(),
        });
    };
    let role = format!("role {}", c.role.name);
    match &state.role {
        None => finding(&role, "missing", "a login role", "no such role"),
        Some(r) => {
            for a in &c.role.attributes {
                let have = r.get(a.column).and_then(serde_json::Value::as_bool);
                if have != Some(a.granted) {
                    let word = |b: bool| if b { a.name.to_owned() } else { format!("NO{}", a.name) };
                    let found = have.map_or_else(|| format!("no {} column", a.column), word);
                    finding(&role, "attribute", &a.keyword, &found);
                }
            }
        }
    }
    let planned: BTreeSet<&str> = c.memberships.iter().map(|m| m.role.as_str()).collect();
    let live: BTreeSet<&str> = state.memberships.iter().map(String::as_str).collect();
    for missing in planned.difference(&live) {
        finding(&role, "membership missing", missing, "not a member");
    }
    for extra in live.difference(&planned) {
        finding(&role, "membership beyond the plan", "not a member", extra);
    }
    let planned: BTreeSet<&str> = c.functions.iter().map(|f| f.regprocedure.as_str()).collect();
    let live: BTreeSet<&str> = state.functions.iter().map(String::as_str).collect();
    for missing in planned.difference(&live) {
        finding(&role, "EXECUTE missing", missing, "not granted");
    }
    for extra in live.difference(&planned) {
        finding(&role, "EXECUTE beyond the plan", "not granted", extra);
    }
    if c.revoke_public_create && state.public_create == Some(true) {
        finding(&role, "CREATE on schema public", "revoked", "allowed");
    }
    for rule in state.hba.iter().filter(|r| r.error.is_some()) {
        finding(
            "pg_hba.conf",
            "invalid line",
            "no error",
            rule.error.as_deref().unwrap_or(""),
        );
    }
    let valid: Vec<&HbaRule> = state.hba.iter().filter(|r| r.error.is_none()).collect();
    for (i, line) in c.hba_lines.iter().enumerate() {
        let want = format!("{} {} {} {}", line.kind, line.database, line.user, line.method);
        let have = valid.get(i).map(|r| {
            format!(
                "{} {} {} {}",
                r.kind.as_deref().unwrap_or(""),
                r.database.as_ref().map(|d| d.join(",")).unwrap_or_default(),
                r.user.as_ref().map(|u| u.join(",")).unwrap_or_default(),
                r.method.as_deref().unwrap_or("")
            )
        });
        let options_ok = valid
            .get(i)
            .is_some_and(|r| line.options.is_empty() || r.options.contains(&line.options));
        if have.as_deref() != Some(want.as_str()) || !options_ok {
            finding(
                &format!("pg_hba.conf rule {}", i + 1),
                "rule differs (first match wins)",
                &want,
                have.as_deref().unwrap_or("no rule"),
            );
        }
    }
    if c.archive.managed {
        if !matches!(state.archive_mode.as_str(), "on" | "always") {
            finding("archive_mode", "setting", "on", &state.archive_mode);
        }
        if state.archive_command != c.archive.command {
            finding("archive_command", "setting", &c.archive.command, &state.archive_command);
        }
    }
    let mode = c.datadir.mode.to_string();
    if state.data_directory_mode.as_deref() != Some(mode.as_str()) {
        finding(
            "data_directory_mode",
            &format!("setting (group read needs {mode} at server start)"),
            &mode,
            state.data_directory_mode.as_deref().unwrap_or("unknown"),
        );
    }
    out
}
