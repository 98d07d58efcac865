//! Entry point: parse arguments, run the command, map the outcome to the documented exit
//! codes (0 success / in sync, 1 drift, 2 error). Nothing else lives here.

use clap::Parser as _;
use pgbr_policy::{cli, commands, policy};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match commands::run(cli.command) {
        Ok(commands::Outcome::Success) => ExitCode::SUCCESS,
        Ok(commands::Outcome::Drift) => ExitCode::from(1),
        Err(e) => {
            if let Some(policy_errors) = e.downcast_ref::<policy::PolicyErrors>() {
                eprintln!("{policy_errors}");
            } else {
                eprintln!("error: {e}");
                for cause in e.chain().skip(1) {
                    eprintln!("  caused by: {cause}");
                }
            }
            ExitCode::from(2)
        }
    }
}
