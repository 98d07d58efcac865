//! One function per subcommand, each a short pipeline: load → plan → render → sink.

use crate::artifact::{self, Tree};
use crate::cli::{Command, Format};
use crate::drift::{self, Status};
use crate::plan::{self, Plan};
use crate::policy;
use crate::render::Renderer;
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
        Command::Diff {
            policy,
            against,
            format,
        } => diff(&policy, &against, format, false),
        Command::Check {
            policy,
            against,
            format,
        } => diff(&policy, &against, format, true),
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

fn render(path: &Path) -> Result<Tree> {
    let (plan, _) = load_plan(path)?;
    artifact::render_all(&plan)
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
    }
    Ok(Outcome::Success)
}

fn generate(policy: &Path, out: &Path, force: bool, dry_run: bool) -> Result<Outcome> {
    let tree = render(policy)?;
    if dry_run {
        let changes = if out.is_dir() {
            drift::compare(&tree, out)?
        } else {
            Vec::new()
        };
        if !out.is_dir() {
            for path in tree.keys() {
                println!("would write {}", out.join(path).display());
            }
        }
        for change in changes.iter().filter(|c| c.status != Status::Removed) {
            println!(
                "would write {} ({})",
                out.join(&change.path).display(),
                change.status.word()
            );
        }
        return Ok(Outcome::Success);
    }
    let report = crate::sink::write_tree(&tree, out, force)?;
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

fn diff(policy: &Path, against: &Path, format: Format, quiet: bool) -> Result<Outcome> {
    let tree = render(policy)?;
    if !against.exists() {
        bail!("`{}` does not exist", against.display());
    }
    let changes = drift::compare(&tree, against)?;
    match format {
        Format::Json => {
            let doc = serde_json::json!({
                "schema": "pgbr-policy/drift/v1",
                "against": against.display().to_string(),
                "in_sync": changes.is_empty(),
                "files": changes,
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Format::Text => {
            let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            for change in &changes {
                let note = if change.edited_by_hand {
                    " (edited by hand since it was generated)"
                } else {
                    ""
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
            if !quiet && changes.is_empty() {
                eprintln!("{}: in sync with {}", against.display(), policy.display());
            }
        }
    }
    Ok(if changes.is_empty() {
        Outcome::Success
    } else {
        Outcome::Drift
    })
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
