//! One function per subcommand, each a short pipeline: load → plan → render → sink.
//! Everything printed goes through `output` (a closed pipe is not a panic; --quiet).

use crate::artifact;
use crate::cli::{Cli, Command, DriftTarget, Format};
use crate::drift::{self, Status};
use crate::output::{self, line, note, out};
use crate::plan::{self, Plan};
use crate::policy;
use crate::render::Renderer;
use crate::{deployed, livedb};
use anyhow::{Context as _, Result, bail};
use std::io::Read as _;
use std::path::Path;

pub enum Outcome {
    Success,
    Drift,
}

/// The starter policy `init` writes: the article's setup, commented.
const STARTER: &str = include_str!("starter-policy.yaml");

/// The schema ids of the JSON documents, one per shape: a consumer checks it first.
pub const VALIDATE_SCHEMA: &str = "pgbr-policy/validate/v1";
pub const EXPLAIN_SCHEMA: &str = "pgbr-policy/explain/v1";
pub const DRIFT_SCHEMA: &str = "pgbr-policy/drift/v2";
pub const ERROR_SCHEMA: &str = "pgbr-policy/error/v1";

pub fn run(cli: &Cli) -> Result<Outcome> {
    match &cli.command {
        Command::Init { path } => init(path.as_deref().filter(|p| *p != Path::new("-"))),
        Command::Validate { policy, format } => validate(policy, *format),
        Command::Explain { policy, format } => explain(policy, *format),
        Command::Generate {
            policy,
            out,
            force,
            dry_run,
        } => generate(policy, out, *force, *dry_run),
        Command::Diff { policy, target, format } => diff(policy, target, *format, false),
        Command::Check { policy, target, format } => diff(policy, target, *format, true),
        Command::ScramVerifier => scram_verifier(),
        Command::Schema => {
            line(&serde_json::to_string_pretty(&crate::schema::policy_schema())?)?;
            Ok(Outcome::Success)
        }
        Command::Completions { shell } => {
            let mut buffer = Vec::new();
            clap_complete::generate(*shell, &mut command(), "pgbr-policy", &mut buffer);
            out(&String::from_utf8_lossy(&buffer))?;
            Ok(Outcome::Success)
        }
        Command::Man => {
            let mut buffer = Vec::new();
            clap_mangen::Man::new(command()).render(&mut buffer)?;
            out(&String::from_utf8_lossy(&buffer))?;
            Ok(Outcome::Success)
        }
    }
}

fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// The error document `--format json` prints on standard output (exit 2): every policy
/// diagnostic with its place, field, value found and what was expected; any other
/// error as one message.
pub fn error_document(error: &anyhow::Error) -> serde_json::Value {
    let errors = match error.downcast_ref::<policy::PolicyErrors>() {
        Some(policy_errors) => serde_json::to_value(&policy_errors.diagnostics).unwrap_or_default(),
        None => {
            let message = error.chain().map(ToString::to_string).collect::<Vec<_>>().join(": ");
            serde_json::json!([{ "severity": "error", "message": message }])
        }
    };
    serde_json::json!({ "schema": ERROR_SCHEMA, "errors": errors })
}

/// Load, validate and plan; warnings are printed on stderr (unless --quiet) in text
/// mode and returned for JSON.
fn load_plan(path: &Path, format: Format) -> Result<(Plan, Vec<policy::Diagnostic>)> {
    let loaded = policy::load(path)?;
    if format == Format::Text {
        for warning in &loaded.warnings {
            note(&warning.to_string());
        }
    }
    Ok((plan::build(&loaded.policy), loaded.warnings))
}

fn validate(path: &Path, format: Format) -> Result<Outcome> {
    let (plan, warnings) = load_plan(path, format)?;
    // Render everything (an unrepresentable value fails here, as in generate);
    // streamed and dropped, so memory stays flat however large the fleet.
    artifact::for_each(&plan, &|_, _| Ok(()))?;
    match format {
        Format::Json => {
            let doc = serde_json::json!({
                "schema": VALIDATE_SCHEMA,
                "valid": true,
                "clusters": plan.clusters.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
                "warnings": warnings,
            });
            line(&serde_json::to_string_pretty(&doc)?)?;
        }
        Format::Text if !output::quiet() => {
            let clusters = plan.clusters.len();
            line(&format!(
                "{}: valid ({clusters} cluster{})",
                path.display(),
                if clusters == 1 { "" } else { "s" }
            ))?;
        }
        Format::Text => {}
    }
    Ok(Outcome::Success)
}

fn init(path: Option<&Path>) -> Result<Outcome> {
    let text = format!("{}{STARTER}", crate::schema::modeline());
    match path {
        None => out(&text)?,
        Some(path) => {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .with_context(|| format!("cannot create `{}` (init never overwrites a file)", path.display()))?;
            std::io::Write::write_all(&mut file, text.as_bytes())?;
            note(&format!(
                "wrote {}; edit it, then: pgbr-policy validate {}\n(editors: pgbr-policy schema > {} beside it)",
                path.display(),
                path.display(),
                crate::schema::SCHEMA_FILE,
            ));
        }
    }
    Ok(Outcome::Success)
}

fn scram_verifier() -> Result<Outcome> {
    let mut input = String::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut input)
        .context("reading the password from standard input")?;
    // One line: a trailing newline (from echo or a file) is not part of the password.
    let password = input.strip_suffix('\n').unwrap_or(&input);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        bail!("no password on standard input");
    }
    if password.contains('\n') {
        bail!("the password spans several lines; give one line");
    }
    line(&postgres_protocol::password::scram_sha_256(password.as_bytes()))?;
    Ok(Outcome::Success)
}

fn explain(path: &Path, format: Format) -> Result<Outcome> {
    let (plan, _) = load_plan(path, format)?;
    if format == Format::Json {
        let doc = serde_json::json!({
            "schema": EXPLAIN_SCHEMA,
            "clusters": plan.clusters.iter().map(explain_cluster).collect::<Vec<_>>(),
        });
        line(&serde_json::to_string_pretty(&doc)?)?;
        return Ok(Outcome::Success);
    }
    let renderer = Renderer::new()?;
    // Once, shared (Arc) by every context: inserting the plan per cluster is quadratic.
    let plan_value = tera::Value::from_serializable(&plan);
    for (i, cluster) in plan.clusters.iter().enumerate() {
        let mut context = tera::Context::new();
        context.insert_value("plan", plan_value.clone());
        context.insert("c", cluster);
        if i > 0 {
            line("")?;
        }
        let markdown = renderer.render("change/_tables.md", &context)?;
        if output::colour() {
            out(&for_terminal(&markdown))?;
        } else {
            out(&markdown)?;
        }
        if !cluster.hosts.is_empty() {
            // A repository-host cluster: the repository host's files too.
            line("")?;
            let markdown = renderer.render("change/_repository_host.md", &context)?;
            if output::colour() {
                out(&for_terminal(&markdown))?;
            } else {
                out(&markdown)?;
            }
        }
    }
    Ok(Outcome::Success)
}

/// Markdown made for reading on a terminal: no backslash escapes, `**bold**` in bold,
/// headings in bold.
fn for_terminal(markdown: &str) -> String {
    const BOLD: &str = "\x1b[1m";
    const RESET: &str = "\x1b[0m";
    let mut text = String::with_capacity(markdown.len());
    for l in markdown.lines() {
        let mut unescaped = String::with_capacity(l.len());
        let mut chars = l.chars().peekable();
        let mut bold = false;
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek().is_some_and(char::is_ascii_punctuation) => {
                    unescaped.push(chars.next().expect("peeked"));
                }
                '*' if chars.peek() == Some(&'*') => {
                    chars.next();
                    unescaped.push_str(if bold { RESET } else { BOLD });
                    bold = !bold;
                }
                _ => unescaped.push(c),
            }
        }
        if unescaped.starts_with('#') {
            text.push_str(&format!(
                "{BOLD}{}{RESET}\n",
                unescaped.trim_start_matches('#').trim_start()
            ));
        } else {
            text.push_str(&unescaped);
            text.push('\n');
        }
    }
    text
}

/// One cluster's permission tables as data: the same rows explain prints.
fn explain_cluster(c: &plan::ClusterPlan) -> serde_json::Value {
    use serde_json::json;
    let mut database = vec![json!({
        "item": c.role.name,
        "type": "role attributes",
        "attributes": c.role.attributes.iter().map(|a| a.keyword.as_str()).collect::<Vec<_>>(),
        "needed_for": ["every command"],
    })];
    for m in &c.memberships {
        database.push(json!({
            "item": m.role, "type": "role membership", "needed_for": c.commands, "reason": m.reason,
        }));
    }
    for f in &c.functions {
        database.push(json!({
            "item": f.signature, "type": "EXECUTE on function", "needed_for": f.needed_for, "reason": f.reason,
        }));
    }
    if c.revoke_public_create {
        database.push(json!({
            "item": format!("CREATE on schema public of {}", c.role.database),
            "type": "revoked from PUBLIC",
            "needed_for": ["least privilege"],
        }));
    }
    for l in &c.hba_lines {
        database.push(json!({
            "item": format!("{} {} {}", l.kind, l.database, l.user),
            "type": "pg_hba.conf line",
            "method": l.method,
            "reason": l.reason,
        }));
    }
    json!({
        "name": c.name,
        "major": c.major,
        "stanza": c.stanza,
        "data_directory": c.postgres.data_directory,
        "cluster_owner": c.postgres.owner,
        "cluster_group": c.postgres.group,
        "backup_user": c.backup_user.name,
        "role": c.role.name,
        "auth": c.role.auth,
        "files": c.paths.iter().map(|p| json!({
            "path": p.path,
            "owner": p.owner,
            "group": p.group,
            "mode": p.mode.to_string(),
            "backup_user": p.backup_user_access,
            "setting": p.setting,
            "reason": p.reason,
        })).collect::<Vec<_>>(),
        "search_paths": c.search_paths,
        "database": database,
        "denied": { "roles": c.forbidden_roles, "functions": c.forbidden_functions },
    })
}

fn generate(policy: &Path, out_dir: &Path, force: bool, dry_run: bool) -> Result<Outcome> {
    let (mut plan, _) = load_plan(policy, Format::Text)?;
    crate::since::attach(&mut plan, out_dir)?;
    // The same checks and decisions as the real run: a refusal is the same error.
    let report = crate::sink::write_tree(&plan, out_dir, force, dry_run)?;
    if dry_run {
        for path in &report.written {
            line(&format!("would write {}", out_dir.join(path).display()))?;
        }
    } else {
        note(&format!(
            "{}: {} written, {} unchanged",
            out_dir.display(),
            report.written.len(),
            report.unchanged.len()
        ));
    }
    if !report.stale.is_empty() {
        note("no longer generated (left in place; delete them if nothing else uses them):");
        for path in &report.stale {
            note(&format!("  {}", out_dir.join(path).display()));
        }
    }
    Ok(Outcome::Success)
}

fn diff(policy: &Path, target: &DriftTarget, format: Format, quiet: bool) -> Result<Outcome> {
    if target.against.is_none() && !target.deployed && !target.db {
        bail!("say what to compare with: --against DIR, --deployed (with --root) and/or --db");
    }
    let (mut plan, _) = load_plan(policy, format)?;
    if let Some(dir) = &target.against {
        crate::since::attach(&mut plan, dir)?;
    }
    let files = match &target.against {
        Some(dir) if !dir.exists() => bail!("`{}` does not exist", dir.display()),
        Some(dir) => drift::compare(&plan, dir)?,
        None => Vec::new(),
    };
    let host = if target.deployed {
        deployed::compare(&plan, &target.root, target.host.as_deref())?
    } else {
        Vec::new()
    };
    let database = if target.db {
        livedb::compare(&plan.clusters)?
    } else {
        Vec::new()
    };
    let in_sync = files.is_empty() && host.is_empty() && database.is_empty();
    match format {
        Format::Json => {
            let doc = serde_json::json!({
                "schema": DRIFT_SCHEMA,
                "in_sync": in_sync,
                "against": target.against.as_ref().map(|d| d.display().to_string()),
                "files": files,
                "host": host,
                "database": database,
            });
            line(&serde_json::to_string_pretty(&doc)?)?;
        }
        // --quiet: the exit status says it all.
        Format::Text if output::quiet() => {}
        Format::Text => {
            print_file_changes(&files, quiet, output::colour())?;
            for (place, findings) in [("host", &host), ("database", &database)] {
                for f in findings {
                    // With --host, name the host checked, not only its cluster.
                    let whose = match (place, &target.host) {
                        ("host", Some(name)) => format!("{name} (cluster {})", f.cluster),
                        _ => f.cluster.to_string(),
                    };
                    line(&format!(
                        "{place} {whose}: {}: {}: expected {}, found {}",
                        f.item, f.problem, f.expected, f.found
                    ))?;
                }
            }
            if !quiet && in_sync {
                note(&format!("in sync with {}", policy.display()));
            }
        }
    }
    Ok(if in_sync { Outcome::Success } else { Outcome::Drift })
}

fn print_file_changes(changes: &[drift::Change], quiet: bool, colour: bool) -> std::io::Result<()> {
    for change in changes {
        let note = match (change.cause, &change.found_type) {
            (_, Some(what)) => format!(" (found {what})"),
            (Some(cause), None) => format!(" ({})", cause.describe_for(change.status)),
            (None, None) => String::new(),
        };
        if quiet || change.diff.is_empty() {
            line(&format!("{}: {}{note}", change.path, change.status.word()))?;
            if change.status == Status::ModeChanged && !quiet {
                line(&format!(
                    "  mode {} -> {}",
                    change.found_mode.as_deref().unwrap_or("?"),
                    change.expected_mode.as_deref().unwrap_or("?")
                ))?;
            }
        } else {
            if !note.is_empty() {
                line(&format!("# {}{note}", change.path))?;
            }
            print_diff(&change.diff, colour)?;
        }
    }
    Ok(())
}

fn print_diff(diff: &str, colour: bool) -> std::io::Result<()> {
    let mut text = String::with_capacity(diff.len() + 64);
    for l in diff.lines() {
        let paint = if !colour {
            None
        } else if l.starts_with('+') && !l.starts_with("+++") {
            Some("32")
        } else if l.starts_with('-') && !l.starts_with("---") {
            Some("31")
        } else if l.starts_with("@@") {
            Some("36")
        } else {
            None
        };
        match paint {
            Some(code) => text.push_str(&format!("\x1b[{code}m{l}\x1b[0m\n")),
            None => {
                text.push_str(l);
                text.push('\n');
            }
        }
    }
    out(&text)
}
