//! Entry point: parse arguments, run the command, map the outcome to the documented exit
//! codes (0 success / in sync, 1 drift, 2 error). Nothing else lives here.

use clap::Parser as _;
use pgbr_policy::{cli, commands, output, policy};
use std::io::IsTerminal as _;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            // A usage error with `--format json` asked for is a JSON error document
            // too (help and version requests stay text).
            if e.use_stderr() && json_asked(std::env::args_os().skip(1)) {
                let doc = commands::error_document(&anyhow::anyhow!("{}", usage_message(&e.to_string())));
                let _ = output::line(&serde_json::to_string_pretty(&doc).unwrap_or_default());
            } else {
                let _ = e.print();
            }
            return ExitCode::from(code);
        }
    };
    let colour = cli
        .color
        .resolve(std::io::stdout().is_terminal(), std::env::var_os("NO_COLOR").as_deref());
    output::configure(cli.quiet, colour);
    match commands::run(&cli) {
        Ok(commands::Outcome::Success) => ExitCode::SUCCESS,
        Ok(commands::Outcome::Drift) => ExitCode::from(1),
        Err(e) => {
            if cli.format() == cli::Format::Json {
                let doc = commands::error_document(&e);
                let _ = output::line(&serde_json::to_string_pretty(&doc).unwrap_or_default());
            } else if let Some(policy_errors) = e.downcast_ref::<policy::PolicyErrors>() {
                output::error(&policy_errors.to_string());
            } else {
                output::error(&format!("error: {e}"));
                for cause in e.chain().skip(1) {
                    output::error(&format!("  caused by: {cause}"));
                }
            }
            ExitCode::from(2)
        }
    }
}

/// Whether the command line asks for `--format json` (read before clap could parse it).
fn json_asked(args: impl Iterator<Item = std::ffi::OsString>) -> bool {
    let args: Vec<String> = args.map(|a| a.to_string_lossy().into_owned()).collect();
    args.iter().any(|a| a == "--format=json") || args.windows(2).any(|w| w[0] == "--format" && w[1] == "json")
}

/// clap's message without its "error: " prefix, the usage and the help hint: the lines
/// before the first blank one, on one line.
fn usage_message(message: &str) -> String {
    let text: Vec<&str> = message
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let text = text.join(" ");
    text.strip_prefix("error: ").unwrap_or(&text).to_owned()
}
