//! One function per subcommand, each a short pipeline: load → plan → render → sink.

use crate::artifact;
use crate::cli::{Command, DriftTarget, Format};
use crate::drift::{self, Status};
use crate::plan::{self, Plan};
use crate::policy;
use crate::render::Renderer;
use crate::{deployed, livedb};
use anyhow::{Context as _, Result, bail};
use std::io::{IsTerminal as _, Read as _};
use std::path::Path;

pub enum Outcome {
    Success,
    Drift,
}

/// The starter policy `init` writes: the article's setup, commented.
const STARTER: &str = include_str!("starter-policy.yaml");

pub fn run(command: Command) -> Result<Outcome> {
    match command {
        Command::Init { path } => init(path.as_deref()),
        Command::Validate { policy } => {
            let (plan, _) = load_plan(&policy)?;
            // Render everything (an unrepresentable value fails here, as in generate);
            // streamed and dropped, so memory stays flat however large the fleet.
            artifact::for_each(&plan, &|_, _| Ok(()))?;
            let clusters = plan.clusters.len();
            println!(
                "{}: valid ({clusters} cluster{})",
                policy.display(),
                if clusters == 1 { "" } else { "s" }
            );
            Ok(Outcome::Success)
        }
        Command::Explain { policy } => explain(&policy),
        Command::Generate {
            policy,
            out,
            force,
            dry_run,
        } => generate(&policy, &out, force, dry_run),
        Command::Diff { policy, target, format } => diff(&policy, &target, format, false),
        Command::Check { policy, target, format } => diff(&policy, &target, format, true),
        Command::ScramVerifier => scram_verifier(),
    }
}

/// Load, validate (printing warnings to stderr) and plan.
fn load_plan(path: &Path) -> Result<(Plan, usize)> {
    let loaded = policy::load(path)?;
    for warning in &loaded.warnings {
        eprintln!("{warning}");
    }
    Ok((plan::build(&loaded.policy), loaded.warnings.len()))
}

fn init(path: Option<&Path>) -> Result<Outcome> {
    match path {
        None => print!("{STARTER}"),
        Some(path) => {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .with_context(|| format!("cannot create `{}` (init never overwrites a file)", path.display()))?;
            std::io::Write::write_all(&mut file, STARTER.as_bytes())?;
            eprintln!(
                "wrote {}; edit it, then: pgbr-policy validate {}",
                path.display(),
                path.display()
            );
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
    println!("{}", postgres_protocol::password::scram_sha_256(password.as_bytes()));
    Ok(Outcome::Success)
}

fn explain(path: &Path) -> Result<Outcome> {
    let (plan, _) = load_plan(path)?;
    let renderer = Renderer::new()?;
    // Once, shared (Arc) by every context: inserting the plan per cluster is quadratic.
    let plan_value = tera::Value::from_serializable(&plan);
    for (i, cluster) in plan.clusters.iter().enumerate() {
        let mut context = tera::Context::new();
        context.insert_value("plan", plan_value.clone());
        context.insert("c", cluster);
        if i > 0 {
            println!();
        }
        print!("{}", renderer.render("change/_tables.md", &context)?);
        if !cluster.hosts.is_empty() {
            // A repository-host cluster: the repository host's files too.
            println!();
            print!("{}", renderer.render("change/_repository_host.md", &context)?);
        }
    }
    Ok(Outcome::Success)
}

fn generate(policy: &Path, out: &Path, force: bool, dry_run: bool) -> Result<Outcome> {
    let (plan, _) = load_plan(policy)?;
    if dry_run {
        if out.is_dir() {
            for change in drift::compare(&plan, out)?
                .iter()
                .filter(|c| c.status != Status::Removed)
            {
                println!(
                    "would write {} ({})",
                    out.join(&change.path).display(),
                    change.status.word()
                );
            }
        } else {
            let paths = std::sync::Mutex::new(vec![artifact::MANIFEST.to_owned()]);
            artifact::for_each(&plan, &|path, _| {
                paths.lock().expect("paths lock").push(path);
                Ok(())
            })?;
            let mut paths = paths.into_inner().expect("paths lock");
            paths.sort();
            for path in paths {
                println!("would write {}", out.join(path).display());
            }
        }
        return Ok(Outcome::Success);
    }
    let report = crate::sink::write_tree(&plan, out, force)?;
    eprintln!(
        "{}: {} written, {} unchanged",
        out.display(),
        report.written.len(),
        report.unchanged.len()
    );
    if !report.stale.is_empty() {
        eprintln!("no longer generated (left in place; delete them if nothing else uses them):");
        for path in &report.stale {
            eprintln!("  {}", out.join(path).display());
        }
    }
    Ok(Outcome::Success)
}

fn diff(policy: &Path, target: &DriftTarget, format: Format, quiet: bool) -> Result<Outcome> {
    if target.against.is_none() && !target.deployed && !target.db {
        bail!("say what to compare with: --against DIR, --deployed (with --root) and/or --db");
    }
    let (plan, _) = load_plan(policy)?;
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
                "schema": "pgbr-policy/drift/v1",
                "in_sync": in_sync,
                "against": target.against.as_ref().map(|d| d.display().to_string()),
                "files": files,
                "host": host,
                "database": database,
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Format::Text => {
            let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            print_file_changes(&files, quiet, colour);
            for (place, findings) in [("host", &host), ("database", &database)] {
                for f in findings {
                    println!(
                        "{place} {}: {}: {}: expected {}, found {}",
                        f.cluster, f.item, f.problem, f.expected, f.found
                    );
                }
            }
            if !quiet && in_sync {
                eprintln!("in sync with {}", policy.display());
            }
        }
    }
    Ok(if in_sync { Outcome::Success } else { Outcome::Drift })
}

fn print_file_changes(changes: &[drift::Change], quiet: bool, colour: bool) {
    for change in changes {
        let note = match (change.cause, &change.found_type) {
            (_, Some(what)) => format!(" (found {what})"),
            (Some(cause), None) => format!(" ({})", cause.describe()),
            (None, None) => String::new(),
        };
        if quiet || change.diff.is_empty() {
            println!("{}: {}{note}", change.path, change.status.word());
            if change.status == Status::ModeChanged && !quiet {
                println!(
                    "  mode {} -> {}",
                    change.found_mode.as_deref().unwrap_or("?"),
                    change.expected_mode.as_deref().unwrap_or("?")
                );
            }
        } else {
            if !note.is_empty() {
                println!("# {}{note}", change.path);
            }
            print_diff(&change.diff, colour);
        }
    }
}

fn print_diff(diff: &str, colour: bool) {
    for line in diff.lines() {
        if !colour {
            println!("{line}");
        } else if line.starts_with('+') && !line.starts_with("+++") {
            println!("\x1b[32m{line}\x1b[0m");
        } else if line.starts_with('-') && !line.starts_with("---") {
            println!("\x1b[31m{line}\x1b[0m");
        } else if line.starts_with("@@") {
            println!("\x1b[36m{line}\x1b[0m");
        } else {
            println!("{line}");
        }
    }
}
