//! The command line: argument types (clap) and the help text users learn from. Parsing
//! only; each command's work lives in `commands`.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const AFTER_HELP: &str = "\
Exit status:
  0  success; for diff and check: the directory matches the policy
  1  drift: diff or check found a difference
  2  error: invalid policy, unreadable file, refused write, bad usage

Typical use:
  pgbr-policy init policy.yaml                 # a commented starter policy
  pgbr-policy validate policy.yaml             # errors name file:line:col and the field
  pgbr-policy explain policy.yaml              # who may do what, and why
  pgbr-policy generate policy.yaml --out out/  # SQL, pg_hba, shell, pgBackRest, systemd, CHANGE.md
  pgbr-policy check policy.yaml --against out/ # in CI: exit 1 when committed artifacts drifted

Then, on the database host, as root: out/<cluster>/shell/apply.sh --dry-run, apply.sh,
and out/<cluster>/shell/verify.sh. See out/<cluster>/CHANGE.md for the review summary.";

/// Compile one least-privilege pgBackRest policy into every artifact that makes it so.
///
/// The policy (YAML) says which OS user and database role may back up which PostgreSQL
/// clusters. pgbr-policy turns it into SQL grants exact for the PostgreSQL major
/// (10-18), pg_hba/pg_ident lines, apply/rollback/verify scripts, the two pgBackRest
/// configuration files and the TLS server that connects them, systemd units and a
/// change-ticket summary, and tells whether committed artifacts have drifted.
#[derive(Debug, Parser)]
#[command(name = "pgbr-policy", version, after_help = AFTER_HELP, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented starter policy (to PATH, or to standard output)
    Init {
        /// Where to write it; refuses to overwrite an existing file
        path: Option<PathBuf>,
    },
    /// Check a policy: every error with file:line:col and the field path
    Validate { policy: PathBuf },
    /// Print the file and database permission tables the policy produces, with reasons
    Explain { policy: PathBuf },
    /// Write every artifact, and MANIFEST.sha256, under --out
    ///
    /// Files are written atomically with their modes (scripts 0755). A file whose content
    /// no longer matches the manifest (edited by hand) is not overwritten without --force;
    /// files the policy no longer produces are listed, not deleted.
    Generate {
        policy: PathBuf,
        /// Output directory (created if missing)
        #[arg(long, short)]
        out: PathBuf,
        /// Overwrite files that were edited by hand since they were generated
        #[arg(long)]
        force: bool,
        /// Show what would be written, write nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Show what differs from the policy: a committed tree (unified diff), a deployed
    /// host, the live database
    ///
    /// --against DIR compares with a generated or committed tree (added, removed, modified,
    /// mode changed; with MANIFEST.sha256 it tells a hand edit from a policy or tool
    /// change). --deployed compares the host under --root: installed files, the managed
    /// pg_hba/pg_ident block, owners and modes, and every entry of the data directory.
    /// --db asks the running server (as the cluster owner, over its socket): role
    /// attributes, memberships, EXECUTE grants, hba rules, archive settings,
    /// data_directory_mode. Any combination; at least one.
    Diff {
        policy: PathBuf,
        #[command(flatten)]
        target: DriftTarget,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Read a password on standard input, print its SCRAM-SHA-256 verifier
    ///
    /// Used by apply.sh at apply time for `auth: scram-sha-256`: the verifier (random
    /// salt) is what reaches the server, never the password. The password is never an
    /// argument, so it never appears in a process list.
    ScramVerifier,
    /// Like diff, but quiet: one line per difference; for CI
    Check {
        policy: PathBuf,
        #[command(flatten)]
        target: DriftTarget,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

/// What diff and check compare with.
#[derive(Debug, clap::Args)]
pub struct DriftTarget {
    /// A committed or previously generated directory
    #[arg(long)]
    pub against: Option<PathBuf>,
    /// The deployed host (files, modes, the pg_hba block, the data directory)
    #[arg(long)]
    pub deployed: bool,
    /// The root the deployed host is found under
    #[arg(long, default_value = "/", requires = "deployed")]
    pub root: PathBuf,
    /// With --deployed, for a cluster with a repository host: which of its hosts this is
    /// (the repository host or a member, by name); that host's files are checked
    #[arg(long, requires = "deployed")]
    pub host: Option<String>,
    /// The live database (through the cluster's Unix socket, as its owner)
    #[arg(long)]
    pub db: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}
