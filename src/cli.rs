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

Standard input and output: `-` as POLICY reads the policy from standard input, and
`init -` writes the starter policy to standard output.

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
    /// Print nothing but errors (and the JSON asked for with --format json); the exit
    /// status still tells success (0), drift (1) or error (2)
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Colour diffs and explain's emphasis: auto (a terminal, unless NO_COLOR is set to a
    /// non-empty value), always, never
    #[arg(long, value_enum, global = true, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
}

impl Cli {
    /// The output format asked for, for commands that have one: errors are printed in it.
    pub fn format(&self) -> Format {
        match &self.command {
            Command::Validate { format, .. }
            | Command::Explain { format, .. }
            | Command::Diff { format, .. }
            | Command::Check { format, .. } => *format,
            _ => Format::Text,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented starter policy (to PATH, or to standard output)
    ///
    /// Its first line points editors that use yaml-language-server at the JSON Schema:
    /// save it with `pgbr-policy schema > pgbr-policy.schema.json` beside the policy.
    Init {
        /// Where to write it (`-` or nothing: standard output); an existing file is never
        /// overwritten
        path: Option<PathBuf>,
    },
    /// Check a policy: every error with file:line:col and the field path
    Validate {
        /// The policy file (YAML), or `-` for standard input
        policy: PathBuf,
        /// text, or json (schema id pgbr-policy/validate/v1; errors: pgbr-policy/error/v1)
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Print the file and database permission tables the policy produces, with reasons
    ///
    /// Markdown when piped (paste it into a ticket); on a terminal (or with --color
    /// always) the same tables without Markdown escapes.
    Explain {
        /// The policy file (YAML), or `-` for standard input
        policy: PathBuf,
        /// text, or json (schema id pgbr-policy/explain/v1; errors: pgbr-policy/error/v1)
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Write every artifact, and MANIFEST.sha256, under --out
    ///
    /// Files are written atomically with their modes (scripts 0755). A file whose content
    /// or mode no longer matches the manifest (changed by hand) is not overwritten without
    /// --force; files the policy no longer produces are listed, not deleted.
    Generate {
        /// The policy file (YAML), or `-` for standard input
        policy: PathBuf,
        /// Output directory (created if missing)
        #[arg(long, short)]
        out: PathBuf,
        /// Overwrite files that were edited by hand since they were generated
        #[arg(long)]
        force: bool,
        /// Show what would be written, write nothing; refuses (exit 2) exactly where the
        /// real run would
        #[arg(long)]
        dry_run: bool,
    },
    /// Show what differs from the policy: a committed tree (unified diff), a deployed
    /// host, the live database
    ///
    /// --against DIR compares with a generated or committed tree (missing, not generated,
    /// modified, mode changed; with MANIFEST.sha256 it tells a hand change from a policy
    /// or tool change). --deployed compares the host under --root: installed files, the
    /// managed pg_hba/pg_ident block, owners and modes, and every entry of the data
    /// directory, its tablespaces and a linked pg_wal. --db asks the running server (as
    /// the cluster owner, over its socket): role attributes, memberships, EXECUTE grants,
    /// hba rules, archive settings, data_directory_mode. Any combination; at least one.
    Diff {
        /// The policy file (YAML), or `-` for standard input
        policy: PathBuf,
        #[command(flatten)]
        target: DriftTarget,
        /// text (a unified diff), or json (schema id pgbr-policy/drift/v2; errors:
        /// pgbr-policy/error/v1)
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
        /// The policy file (YAML), or `-` for standard input
        policy: PathBuf,
        #[command(flatten)]
        target: DriftTarget,
        /// text (one line per difference), or json (schema id pgbr-policy/drift/v2;
        /// errors: pgbr-policy/error/v1)
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Print the policy's JSON Schema (for editors and CI linters)
    ///
    /// Generated from the same types the loader reads, so it cannot disagree with
    /// validate on the shape (validate checks more: names, paths, versions).
    Schema,
    /// Print a shell completion script
    ///
    /// bash: `pgbr-policy completions bash > /etc/bash_completion.d/pgbr-policy`;
    /// zsh: into a directory of $fpath as `_pgbr-policy`; fish:
    /// `~/.config/fish/completions/pgbr-policy.fish`.
    Completions {
        /// The shell to complete for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `pgbr-policy man > /usr/local/share/man/man1/pgbr-policy.1`
    Man,
}

/// What diff and check compare with.
#[derive(Debug, clap::Args)]
pub struct DriftTarget {
    /// A committed or previously generated directory (.git, .gitkeep, README* and what
    /// DIR/.pgbr-ignore lists are not drift)
    #[arg(long, value_name = "DIR")]
    pub against: Option<PathBuf>,
    /// The deployed host (files, modes, the pg_hba block, the data directory)
    #[arg(long)]
    pub deployed: bool,
    /// The root the deployed host is found under (owners are resolved through NSS when
    /// it is /, from ROOT/etc/passwd and ROOT/etc/group otherwise)
    #[arg(long, default_value = "/", requires = "deployed", value_name = "ROOT")]
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
    /// For people
    Text,
    /// For programs: one JSON document with a `schema` id
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set to a non-empty value
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Whether to colour, given whether standard output is a terminal and the value of
    /// NO_COLOR (no-color.org: only a non-empty value disables colour).
    pub fn resolve(self, terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => terminal && no_color.is_none_or(|v| v.is_empty()),
        }
    }
}
