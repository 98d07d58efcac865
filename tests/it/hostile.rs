//! Hostile input: property tests over every string field, and the template scan.
//!
//! The artifacts run as root and as the database superuser, so a policy string that
//! escapes its quoting is a root shell or a superuser SQL statement. Every string field
//! of a policy (in the cluster or in `defaults:`) takes values built from quotes,
//! backslashes, `$()`, backticks, `;`, `&&`, newlines, CR, NUL, tabs, spaces, leading
//! dashes, glob characters, `%`, very long strings and unicode tricks (RTL marks,
//! confusables, combining characters), plus words that mean something to a target
//! (`all`, `public`, `host=`, `map=`, `/regex`). Each case is either
//!
//! - refused by `pgbr-policy validate`: exit 2, every line a one-line message, one of
//!   them naming the field (`clusters[0].role.name`) and the line it was written on;
//! - or rendered inert, which is proved by running the artifacts, not by reading them:
//!   all three scripts pass `bash -n`; the plan block (the only place policy values
//!   enter the scripts, which `templates_interpolate_only_through_escaping_filters`
//!   enforces) passes shellcheck and, executed in a throw-away root, yields exactly the
//!   planned values; each script runs `--help` there; the pgBackRest ini, tmpfiles and
//!   Markdown tables keep their shape. A throw-away root is a mount namespace in which
//!   every filesystem is read-only except one empty temporary directory (the working
//!   directory, HOME and TMPDIR): nothing can be created or changed outside it, a write
//!   attempt shows as EROFS, and an injected `touch pwned` would show inside it.
//!
//! A smaller fixed number of accepted cases go to one real PostgreSQL 15: apply.sql
//! (twice) inside a transaction that is rolled back creates exactly the role, its
//! attributes, memberships and EXECUTE grants and nothing else; the hba and ident
//! snippets read back through `pg_hba_file_rules` / `pg_ident_file_mappings` as the
//! intended rules; pgBackRest reads the intended values back from both configuration
//! files; and for a few, `apply.sh --dry-run`, `verify.sh` and `rollback.sh --dry-run`
//! run against that server in a throw-away root under strace, which must record no
//! write attempt outside it.
//!
//! Also here: fixed regression cases (values that once found a bug) run before the
//! generated ones; `known_hostile_values_are_refused` (valid-looking values that turn
//! the artifacts against the host: `/`-leading hba names, reserved and owner roles,
//! system directories); `templates_interpolate_only_through_escaping_filters` (the
//! template scan; its rule for numbers is at NUMERIC_FIELDS); `resource_limits_hold`
//! (alias bombs, deep nesting, huge files, many clusters: bounded time and memory);
//! `hostile_policy_file_names` (the file name reaches every header).
//!
//! Counts are printed (to stderr, uncaptured) and written to
//! `target/hostile-summary.txt`. Knobs: PGBR_HOSTILE_CASES (default 256),
//! PGBR_HOSTILE_PG_CASES (40), PGBR_HOSTILE_DRY_RUNS (3), PGBR_HOSTILE_SEED (a number,
//! or `random`; default fixed so CI runs the same cases every time).
//!
//! Runs as root (the throw-away root needs a mount namespace; the server runs as
//! `postgres`), as .ci/run does.

use crate::postgres::Server;
use crate::support::*;
use pgbr_policy::policy::diagnostic::Severity;
use pgbr_policy::policy::{self, Auth, Cluster, PasswordSource};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

// ---------------------------------------------------------------- fields and values

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A cluster name (directory, unit name).
    Cluster,
    /// An OS user or group.
    Os,
    /// A role or database name.
    Sql,
    Path,
    Stanza,
    Host,
    Env,
    Unit,
    /// A word from a fixed set (layout, auth, version, command).
    Word(&'static [&'static str]),
}

#[derive(Debug)]
struct Field {
    /// The key path inside a cluster (and inside `defaults:`).
    path: &'static str,
    kind: Kind,
}

const FIELDS: &[Field] = &[
    Field {
        path: "name",
        kind: Kind::Cluster,
    },
    Field {
        path: "postgres.layout",
        kind: Kind::Word(&["debian", "rhel"]),
    },
    Field {
        path: "postgres.data_directory",
        kind: Kind::Path,
    },
    Field {
        path: "postgres.owner",
        kind: Kind::Os,
    },
    Field {
        path: "postgres.group",
        kind: Kind::Os,
    },
    Field {
        path: "postgres.socket_directory",
        kind: Kind::Path,
    },
    Field {
        path: "postgres.bin_directory",
        kind: Kind::Path,
    },
    Field {
        path: "postgres.hba_file",
        kind: Kind::Path,
    },
    Field {
        path: "postgres.ident_file",
        kind: Kind::Path,
    },
    Field {
        path: "postgres.service",
        kind: Kind::Unit,
    },
    Field {
        path: "backup_user.name",
        kind: Kind::Os,
    },
    Field {
        path: "backup_user.group",
        kind: Kind::Os,
    },
    Field {
        path: "backup_user.home",
        kind: Kind::Path,
    },
    Field {
        path: "backup_user.shell",
        kind: Kind::Path,
    },
    Field {
        path: "role.name",
        kind: Kind::Sql,
    },
    Field {
        path: "role.database",
        kind: Kind::Sql,
    },
    Field {
        path: "role.auth",
        kind: Kind::Word(&["peer", "scram-sha-256"]),
    },
    Field {
        path: "role.password_file",
        kind: Kind::Path,
    },
    Field {
        path: "role.password_env",
        kind: Kind::Env,
    },
    Field {
        path: "pgbackrest.stanza",
        kind: Kind::Stanza,
    },
    Field {
        path: "pgbackrest.version",
        kind: Kind::Word(&["2.45", "2.55.1", "2.37"]),
    },
    Field {
        path: "pgbackrest.binary",
        kind: Kind::Path,
    },
    Field {
        path: "pgbackrest.commands[0]",
        kind: Kind::Word(&["check", "backup", "backup-standby"]),
    },
    Field {
        path: "pgbackrest.repository",
        kind: Kind::Path,
    },
    Field {
        path: "pgbackrest.tls.address",
        kind: Kind::Host,
    },
    Field {
        path: "pgbackrest.tls.directory",
        kind: Kind::Path,
    },
    Field {
        path: "pgbackrest.config.repository_side",
        kind: Kind::Path,
    },
    Field {
        path: "pgbackrest.config.database_side",
        kind: Kind::Path,
    },
    Field {
        path: "pgbackrest.backup_user_paths.lock",
        kind: Kind::Path,
    },
    Field {
        path: "pgbackrest.backup_user_paths.log",
        kind: Kind::Path,
    },
    Field {
        path: "pgbackrest.owner_paths.lock",
        kind: Kind::Path,
    },
    Field {
        path: "pgbackrest.owner_paths.log",
        kind: Kind::Path,
    },
    Field {
        path: "pgbackrest.owner_paths.spool",
        kind: Kind::Path,
    },
];

fn field(path: &str) -> &'static Field {
    FIELDS.iter().find(|f| f.path == path).expect("known field")
}

/// Fragments that mean something to one of the targets: bash, SQL/psql, libpq
/// connection strings, pg_hba/pg_ident, pgBackRest ini, systemd, tmpfiles, Markdown,
/// YAML, terminals. Relative `touch pwned` so that an injection shows in the
/// throw-away root's working directory.
const NASTY: &[&str] = &[
    "'",
    "\"",
    "\\",
    "\\\\",
    "$(touch pwned)",
    "`touch pwned`",
    "${IFS}",
    "$HOME",
    "$0",
    "$'\\x41'",
    ";touch pwned;",
    " && touch pwned",
    " || touch pwned",
    "|touch pwned",
    "\n",
    "\r",
    "\r\n",
    "\0",
    "\t",
    " ",
    "  ",
    "-",
    "--",
    "-rf",
    "--help",
    "-c",
    "*",
    "?",
    "[a-z]",
    "{a,b}",
    "~",
    "~root",
    "%",
    "%p",
    "%n",
    "%%",
    "%i",
    "#",
    "# x",
    "=",
    ":",
    ",",
    "@",
    "+",
    "/",
    "//",
    "..",
    ".",
    "<",
    ">",
    ">>",
    "!",
    "&",
    "^",
    "\u{1b}[31m",
    "\u{1b}]0;x\u{7}",
    "\u{7f}",
    "\u{85}",
    "\u{2028}",
    "\u{2029}",
    "\u{202e}",
    "\u{200f}",
    "\u{200b}",
    "\u{2066}",
    "\u{feff}",
    "\u{ad}",
    "e\u{301}",
    "\u{301}",
    "\u{435}",
    "\u{430}",
    "\u{3bf}",
    "\u{ff04}",
    "\u{ff1b}",
    "\u{37e}",
    "\u{1f980}",
    "\u{10ffff}",
    "\u{fffd}",
    "all",
    "replication",
    "sameuser",
    "samerole",
    "public",
    "none",
    "postgres",
    "root",
    "current_user",
    "session_user",
    "template0",
    "pg_",
    "\\1",
    "'; DROP ROLE postgres; --",
    "\"; DROP ROLE postgres; --",
    "E'\\'",
    "$$",
    "$q$",
    ":'role'",
    ":\"role\"",
    ":role",
    "\\gexec",
    "\\! touch pwned",
    "\\set x",
    "/*",
    "*/",
    "--x",
    "[global]",
    "key=value",
    "\nlocal all all trust",
    "host all all 0.0.0.0/0 trust",
    "map=x",
    "/.*",
    "/^",
    "include /etc/passwd",
    "@/etc/passwd",
    "dbname=postgres",
    " host=/tmp/pgbr-evil",
    "host=127.0.0.1",
    "postgresql://evil/x",
    "sslmode=disable",
    "[Service]",
    "ExecStart=/bin/sh",
    "| --- |",
    "`",
    "``",
    "***",
    "_x_",
    "<script>",
    "null",
    "~",
    "yes",
    "0x1",
    ".inf",
    "&anchor",
    "*alias",
    "!!str",
    "? ",
    "- ",
    ": ",
];

/// Whole values that are valid for their type but name something that is not ours.
const SPECIAL_PATHS: &[&str] = &[
    "/",
    "/etc",
    "/tmp",
    "/usr",
    "/var/lib",
    "/home",
    "/root",
    "/etc/ssl",
    "/var/lib/postgresql",
    "/proc/self",
    "/dev/null",
    "/bin/sh",
    "/etc/passwd",
    "/var/run/postgresql",
    "/a+b/@c,d",
    "/.hidden/..dots/-",
    "/x/.-",
    "/a/b.",
    "/a@b/+c",
];
const SPECIAL_NAMES: &[&str] = &[
    "postgres",
    "root",
    "pgbackrest",
    "all",
    "public",
    "none",
    "current_user",
    "session_user",
    "replication",
    "template0",
    "template1",
    "_",
    "-",
    "a-",
    "pg_monitor",
    "PUBLIC",
    "ALL",
    "x",
    "nobody",
    "daemon",
];

/// One fragment of a hostile value.
fn atom() -> BoxedStrategy<String> {
    prop_oneof![
        6 => prop::sample::select(NASTY).prop_map(str::to_owned),
        4 => "[a-z0-9_]{1,8}",
        2 => "[A-Za-z0-9 ._@+,=-]{1,6}",
        1 => any::<char>().prop_map(|c| c.to_string()),
        1 => (60usize..4500).prop_map(|n| "a".repeat(n)),
        1 => (1usize..40).prop_map(|n| "\u{301}".repeat(n)),
    ]
    .boxed()
}

fn hostile_body(max: usize) -> BoxedStrategy<String> {
    prop::collection::vec(atom(), 1..max).prop_map(|v| v.concat()).boxed()
}

/// A value for a field of `kind`: mostly hostile, sometimes shaped so that it passes
/// validation (so both outcomes are exercised for every field).
fn value_for(kind: Kind) -> BoxedStrategy<String> {
    let body = hostile_body(6);
    match kind {
        Kind::Path => prop_oneof![
            3 => body.clone().prop_map(|b| format!("/{b}")),
            1 => body,
            2 => "(/[a-zA-Z0-9+@,._][a-zA-Z0-9+@,._-]{0,12}){1,5}",
            1 => prop::sample::select(SPECIAL_PATHS).prop_map(str::to_owned),
            1 => (1usize..1100).prop_map(|n| format!("/{}", "p".repeat(n))),
        ]
        .boxed(),
        Kind::Sql => prop_oneof![
            3 => body.clone(),
            4 => mostly_acceptable_sql_name(),
            1 => prop::sample::select(SPECIAL_NAMES).prop_map(str::to_owned),
        ]
        .boxed(),
        Kind::Os | Kind::Cluster => prop_oneof![
            3 => body,
            2 => "[a-z_][a-z0-9_-]{0,31}",
            1 => prop::sample::select(SPECIAL_NAMES).prop_map(str::to_owned),
        ]
        .boxed(),
        Kind::Stanza => prop_oneof![3 => body, 2 => "[A-Za-z0-9][A-Za-z0-9._-]{0,63}"].boxed(),
        Kind::Host => prop_oneof![
            3 => body,
            1 => prop::sample::select(&["127.0.0.1", "::1", "localhost", "0.0.0.0", "10.1.2.3", "db-1.example.com"][..])
                .prop_map(str::to_owned),
            1 => "[a-z0-9][a-z0-9.-]{0,20}",
        ]
        .boxed(),
        Kind::Env => prop_oneof![3 => body, 2 => "[A-Z_][A-Z0-9_]{0,20}"].boxed(),
        Kind::Unit => prop_oneof![
            3 => body.prop_map(|b| format!("{b}.service")),
            2 => "[a-z0-9][a-z0-9@._:-]{0,20}\\.service",
        ]
        .boxed(),
        Kind::Word(words) => prop_oneof![
            2 => body.clone(),
            1 => (prop::sample::select(words), body).prop_map(|(w, b)| format!("{w}{b}")),
            1 => prop::sample::select(words).prop_map(str::to_owned),
        ]
        .boxed(),
    }
}

/// Hostile, yet mostly what validation accepts for a role or database name: no control
/// character, no `"`, no edge white space, short enough.
fn mostly_acceptable_sql_name() -> BoxedStrategy<String> {
    prop::collection::vec(atom(), 1..5)
        .prop_map(|v| {
            let s: String = v.concat().chars().filter(|c| !c.is_control() && *c != '"').collect();
            let s: String = s.trim().chars().take(20).collect();
            let s = s.trim().to_owned();
            if s.is_empty() { "x".to_owned() } else { s }
        })
        .boxed()
}

#[derive(Clone, Debug)]
struct Mutation {
    field: &'static str,
    value: String,
    /// Written under `defaults:` rather than in the cluster (not for `name`).
    in_defaults: bool,
}

fn mutation(fields: &'static [&'static str]) -> BoxedStrategy<Mutation> {
    prop::sample::select(fields)
        .prop_flat_map(|path| {
            let f = field(path);
            (value_for(f.kind), any::<bool>()).prop_map(move |(value, defaults)| Mutation {
                field: f.path,
                value,
                in_defaults: defaults && f.path != "name",
            })
        })
        .boxed()
}

fn mutations(fields: &'static [&'static str], max: usize) -> BoxedStrategy<Vec<Mutation>> {
    prop::collection::vec(mutation(fields), 1..=max)
        .prop_map(|mut v| {
            // One value per field, and at most one password source.
            let mut seen = BTreeSet::new();
            v.retain(|m| seen.insert(m.field));
            if v.iter().any(|m| m.field == "role.password_file") {
                v.retain(|m| m.field != "role.password_env");
            }
            v
        })
        .boxed()
}

/// Every field, with the role and database names (which accept almost anything, so
/// reach the artifacts with their metacharacters) drawn four times as often.
fn all_field_paths() -> &'static [&'static str] {
    static PATHS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    PATHS.get_or_init(|| {
        let mut paths: Vec<&'static str> = FIELDS.iter().map(|f| f.path).collect();
        for _ in 0..3 {
            paths.extend(["role.name", "role.database"]);
        }
        paths
    })
}

// ---------------------------------------------------------------- the policy as YAML

/// A tiny YAML tree, emitted in block style so every value has its own line.
#[derive(Clone, Debug)]
enum Y {
    Map(Vec<(String, Y)>),
    List(Vec<Y>),
    Str(String),
    Int(u32),
}

impl Y {
    fn map() -> Y {
        Y::Map(Vec::new())
    }

    fn entry(&mut self, key: &str) -> &mut Y {
        let Y::Map(pairs) = self else { panic!("not a map") };
        if let Some(i) = pairs.iter().position(|(k, _)| k == key) {
            return &mut pairs[i].1;
        }
        pairs.push((key.to_owned(), Y::map()));
        &mut pairs.last_mut().unwrap().1
    }

    /// Sets `a.b.c` (or `a.list[0]`) to a value, creating maps on the way.
    fn set(&mut self, path: &str, value: Y) {
        let mut node = self;
        let parts: Vec<&str> = path.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            let last = i == parts.len() - 1;
            if let Some(name) = part.strip_suffix("[0]") {
                let list = node.entry(name);
                *list = Y::List(vec![value]);
                assert!(last);
                return;
            }
            if last {
                *node.entry(part) = value;
                return;
            }
            node = node.entry(part);
        }
    }
}

/// YAML double-quoted scalar: `\` and `"` escaped, and everything outside YAML's
/// printable set (plus the line separators YAML 1.1 knows) as an escape sequence.
fn yaml_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        let n = c as u32;
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            _ if matches!(n, 0x20..=0x7E | 0xA0..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
                && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') =>
            {
                out.push(c)
            }
            _ if n <= 0xFF => out.push_str(&format!("\\x{n:02x}")),
            _ if n <= 0xFFFF => out.push_str(&format!("\\u{n:04x}")),
            _ => out.push_str(&format!("\\U{n:08x}")),
        }
    }
    out.push('"');
    out
}

/// Emits block YAML; records the line of every scalar by its dotted path.
fn emit(y: &Y, indent: usize, path: &str, out: &mut String, lines: &mut Vec<(String, usize)>) {
    let pad = " ".repeat(indent);
    let line = |out: &String| out.matches('\n').count() + 1;
    match y {
        Y::Map(pairs) => {
            for (k, v) in pairs {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match v {
                    Y::Str(_) | Y::Int(_) => {
                        lines.push((p.clone(), line(out)));
                        out.push_str(&format!("{pad}{k}: {}\n", scalar(v)));
                    }
                    Y::Map(_) => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        emit(v, indent + 2, &p, out, lines);
                    }
                    Y::List(items) => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        for (i, item) in items.iter().enumerate() {
                            let ip = format!("{p}[{i}]");
                            match item {
                                Y::Map(_) => {
                                    // `- ` then the map one level deeper.
                                    out.push_str(&format!("{pad}  -\n"));
                                    emit(item, indent + 4, &ip, out, lines);
                                }
                                _ => {
                                    lines.push((ip, line(out)));
                                    out.push_str(&format!("{pad}  - {}\n", scalar(item)));
                                }
                            }
                        }
                    }
                }
            }
        }
        _ => unreachable!("emit starts at a map"),
    }
}

fn scalar(y: &Y) -> String {
    match y {
        Y::Str(s) => yaml_quote(s),
        Y::Int(n) => n.to_string(),
        _ => unreachable!(),
    }
}

/// The policy text and, for each mutation, the line its value is on.
struct Rendered {
    text: String,
    lines: Vec<(String, usize)>,
}

/// `base` holds the cluster's own settings (dotted paths); mutations go over it.
fn policy_yaml(base: &[(&str, Y)], muts: &[Mutation]) -> Rendered {
    let mut cluster = Y::map();
    let mut defaults = Y::map();
    for (path, value) in base {
        cluster.set(path, value.clone());
    }
    let scram_needed = muts
        .iter()
        .any(|m| m.field == "role.password_file" || m.field == "role.password_env");
    let auth_mutated = muts.iter().any(|m| m.field == "role.auth");
    if scram_needed && !auth_mutated {
        cluster.set("role.auth", Y::Str("scram-sha-256".into()));
    }
    for m in muts {
        let target = if m.in_defaults { &mut defaults } else { &mut cluster };
        target.set(m.field, Y::Str(m.value.clone()));
        if m.in_defaults {
            // The cluster's own value would win over the default: drop it.
            remove(&mut cluster, m.field);
        }
    }
    let mut root = Y::map();
    root.set("version", Y::Int(1));
    if let Y::Map(pairs) = &defaults {
        if !pairs.is_empty() {
            *root.entry("defaults") = defaults;
        }
    }
    *root.entry("clusters") = Y::List(vec![cluster]);
    let mut text = String::new();
    let mut lines = Vec::new();
    emit(&root, 0, "", &mut text, &mut lines);
    Rendered { text, lines }
}

fn remove(node: &mut Y, path: &str) {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let head = head.strip_suffix("[0]").unwrap_or(head);
    if let Y::Map(pairs) = node {
        match rest {
            None => pairs.retain(|(k, _)| k != head),
            Some(rest) => {
                if let Some((_, child)) = pairs.iter_mut().find(|(k, _)| k == head) {
                    remove(child, rest);
                }
            }
        }
    }
}

impl Rendered {
    fn line_of(&self, m: &Mutation) -> usize {
        let want = if m.in_defaults {
            format!("defaults.{}", m.field)
        } else {
            format!("clusters[0].{}", m.field)
        };
        self.lines
            .iter()
            .find(|(p, _)| *p == want)
            .map(|(_, l)| *l)
            .unwrap_or_else(|| panic!("no line for {want} in {:?}", self.lines))
    }
}

/// The typed value validation produced for a field, to prove the YAML round trip.
fn typed_value(c: &Cluster, field: &str) -> Option<String> {
    let pb = &c.pgbackrest;
    Some(match field {
        "name" => c.name.to_string(),
        "postgres.data_directory" => c.postgres.data_directory.to_string(),
        "postgres.owner" => c.postgres.owner.to_string(),
        "postgres.group" => c.postgres.group.to_string(),
        "postgres.socket_directory" => c.postgres.socket_directory.to_string(),
        "postgres.bin_directory" => c.postgres.bin_directory.to_string(),
        "postgres.hba_file" => c.postgres.hba_file.as_ref()?.to_string(),
        "postgres.ident_file" => c.postgres.ident_file.as_ref()?.to_string(),
        "postgres.service" => c.postgres.service.to_string(),
        "backup_user.name" => c.backup_user.name.to_string(),
        "backup_user.group" => c.backup_user.group.to_string(),
        "backup_user.home" => c.backup_user.home.to_string(),
        "backup_user.shell" => c.backup_user.shell.to_string(),
        "role.name" => c.role.name.to_string(),
        "role.database" => c.role.database.to_string(),
        "role.password_file" => match &c.role.auth {
            Auth::Scram(PasswordSource::File(p)) => p.to_string(),
            _ => return None,
        },
        "role.password_env" => match &c.role.auth {
            Auth::Scram(PasswordSource::Env(e)) => e.to_string(),
            _ => return None,
        },
        "pgbackrest.stanza" => pb.stanza.to_string(),
        "pgbackrest.binary" => pb.binary.to_string(),
        "pgbackrest.repository" => pb.repository.to_string(),
        "pgbackrest.tls.address" => pb.tls_address.to_string(),
        "pgbackrest.tls.directory" => pb.tls_directory.to_string(),
        "pgbackrest.config.repository_side" => pb.repository_config.to_string(),
        "pgbackrest.config.database_side" => pb.database_config.to_string(),
        "pgbackrest.backup_user_paths.lock" => pb.backup_user_lock.to_string(),
        "pgbackrest.backup_user_paths.log" => pb.backup_user_log.to_string(),
        "pgbackrest.owner_paths.lock" => pb.owner_lock.to_string(),
        "pgbackrest.owner_paths.log" => pb.owner_log.to_string(),
        "pgbackrest.owner_paths.spool" => pb.owner_spool.to_string(),
        _ => return None, // words (layout, auth, version, commands) are enums
    })
}

// ---------------------------------------------------------------- the throw-away root

/// Runs `argv` in a mount namespace where every filesystem is read-only except `root`
/// (an empty directory: the working directory, HOME and TMPDIR), with a clean
/// environment. Refuses to run (exit 99) if `/` or `/tmp` stayed writable.
fn in_throwaway_root(root: &Path, argv: &[&str], extra_env: &[(&str, &str)]) -> Output {
    const SETUP: &str = r#"set -e
root=$1; shift
mount --bind "$root" "$root"
while read -r _ _ _ _ mp _; do
  case "$mp" in /proc|/proc/*|/sys|/sys/*|/dev|/dev/pts|"$root") continue ;; esac
  mount -o remount,ro,bind "$mp" 2>/dev/null || true
done < /proc/self/mountinfo
for probe in /.pgbr-sandbox-probe /tmp/.pgbr-sandbox-probe; do
  if ( : > "$probe" ) 2>/dev/null; then rm -f "$probe"; echo "sandbox: $probe is writable" >&2; exit 99; fi
done
cd "$root"
exec "$@""#;
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--mount",
        "--propagation",
        "private",
        "--",
        "bash",
        "-c",
        SETUP,
        "sandbox",
    ])
    .arg(root)
    .args(["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"])
    .arg(format!("HOME={}", root.display()))
    .arg(format!("TMPDIR={}", root.display()));
    for (k, v) in extra_env {
        cmd.arg(format!("{k}={v}"));
    }
    let out = cmd.args(argv).stdin(Stdio::null()).output().expect("unshare");
    assert_ne!(
        out.status.code(),
        Some(99),
        "the throw-away root could not be made read-only: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// What a throw-away root holds after a run (besides `allowed` names).
fn leftovers(root: &Path, allowed: &[&str]) -> Vec<String> {
    std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !allowed.contains(&n.as_str()))
        .collect()
}

// ---------------------------------------------------------------- artifact helpers

fn write_tree(tree: &pgbr_policy::artifact::Tree, dir: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    for (path, artifact) in tree {
        let target = dir.join(path);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(&target, &artifact.bytes).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(artifact.mode)).unwrap();
    }
}

/// The plan block of a script: from `CLUSTER=` to the `)` closing MANAGED_PATHS.
fn plan_block(script: &str) -> String {
    let lines: Vec<&str> = script.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("CLUSTER="))
        .expect("plan block start");
    let managed = start
        + lines[start..]
            .iter()
            .position(|l| l.starts_with("MANAGED_PATHS=("))
            .expect("MANAGED_PATHS");
    let end = managed
        + lines[managed..]
            .iter()
            .position(|l| *l == ")")
            .expect("MANAGED_PATHS end");
    lines[start..=end].join("\n") + "\n"
}

/// The plan block's scalar variables and where the plan keeps each value.
const PLAN_VARS: &[(&str, &str)] = &[
    ("CLUSTER", "/name"),
    ("PG_MAJOR", "/major"),
    ("PGDATA", "/postgres/data_directory"),
    ("PG_OWNER", "/postgres/owner"),
    ("PG_GROUP", "/postgres/group"),
    ("PG_SOCKET", "/postgres/socket_directory"),
    ("PG_PORT", "/postgres/port"),
    ("PG_BIN", "/postgres/bin_directory"),
    ("PG_SERVICE", "/postgres/service"),
    ("HBA_FILE", "/postgres/hba_file"),
    ("IDENT_FILE", "/postgres/ident_file"),
    ("BACKUP_USER", "/backup_user/name"),
    ("BACKUP_GROUP", "/backup_user/group"),
    ("BACKUP_HOME", "/backup_user/home"),
    ("BACKUP_SHELL", "/backup_user/shell"),
    ("ROLE_NAME", "/role/name"),
    ("ROLE_DB", "/role/database"),
    ("ROLE_AUTH", "/role/auth"),
    ("PASSWORD_FILE", "/role/password_file"),
    ("PASSWORD_ENV", "/role/password_env"),
    ("PGBACKREST", "/pgbackrest_binary"),
    ("STANZA", "/stanza"),
    ("REPO_CONF", "/repository_config/path"),
    ("DB_CONF", "/database_config/path"),
    ("TLS_DIR", "/tls/directory"),
    ("TLS_ADDRESS", "/tls/address"),
    ("TLS_HOST", "/tls/connect_host"),
    ("TLS_PORT", "/tls/port"),
    ("TLS_CA_CERT", "/tls/ca_cert"),
    ("TLS_CA_KEY", "/tls/ca_key"),
    ("TLS_SERVER_CERT", "/tls/server_cert"),
    ("TLS_SERVER_KEY", "/tls/server_key"),
    ("TLS_CLIENT_CERT", "/tls/client_cert"),
    ("TLS_CLIENT_KEY", "/tls/client_key"),
    ("TLS_SERVER_CN", "/tls/server_cn"),
    ("TLS_CLIENT_CN", "/tls/client_cn"),
    ("UNIT_NAME", "/systemd/unit_name"),
    ("UNIT_PATH", "/systemd/unit_path"),
    ("TMPFILES_PATH", "/systemd/tmpfiles_path"),
    ("STATE_DIR", "/state/directory"),
    ("STATE_HBA_BEFORE", "/state/hba_before"),
    ("STATE_TLS_SERVER_PID", "/state/tls_server_pid"),
    ("HBA_MARKER", "/hba_marker"),
    ("ARCHIVE_COMMAND", "/archive/command"),
];

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// What the plan block must print: every scalar, then SEARCH_PATHS and MANAGED_PATHS.
fn expected_plan_values(cluster: &Value) -> Vec<String> {
    let mut out: Vec<String> = PLAN_VARS
        .iter()
        .map(|(_, pointer)| {
            text_of(
                cluster
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("plan has no {pointer}")),
            )
        })
        .collect();
    let paths = cluster["paths"].as_array().unwrap();
    out.push(
        paths
            .iter()
            .find(|p| p["setting"] == "repo1-path")
            .map(|p| text_of(&p["path"]))
            .unwrap_or_default(),
    );
    let search = cluster["search_paths"].as_array().unwrap();
    out.push(search.len().to_string());
    out.extend(search.iter().map(text_of));
    out.push((paths.len() * 5).to_string());
    for p in paths {
        for k in ["kind", "path", "owner", "group", "mode"] {
            out.push(text_of(&p[k]));
        }
    }
    let installed = cluster["installed_files"].as_array().unwrap();
    out.push((installed.len() * 6).to_string());
    for f in installed {
        for k in ["step", "source", "target", "owner", "group", "mode"] {
            out.push(text_of(&f[k]));
        }
    }
    out
}

fn plan_printer(block: &str) -> String {
    let names: Vec<&str> = PLAN_VARS.iter().map(|(n, _)| *n).collect();
    format!(
        "{block}for __v in {}; do printf '%s\\0' \"${{!__v}}\"; done\nprintf '%s\\0' \"$REPOSITORY\" \"${{#SEARCH_PATHS[@]}}\" \"${{SEARCH_PATHS[@]}}\" \"${{#MANAGED_PATHS[@]}}\" \"${{MANAGED_PATHS[@]}}\" \"${{#INSTALLED_FILES[@]}}\" \"${{INSTALLED_FILES[@]}}\"\n",
        names.join(" ")
    )
}

/// Table rows of the change summary keep their column count: every `|` a value adds
/// is escaped.
fn markdown_tables_keep_shape(text: &str) -> Result<(), String> {
    let mut expected: Option<usize> = None;
    for line in text.lines() {
        if !line.starts_with('|') {
            expected = None;
            continue;
        }
        let mut count = 0;
        let mut prev = ' ';
        for c in line.chars() {
            if c == '|' && prev != '\\' {
                count += 1;
            }
            prev = if prev == '\\' && c == '\\' { ' ' } else { c };
        }
        match expected {
            None => expected = Some(count),
            Some(n) if n != count => return Err(format!("table row has {count} cells separators, header {n}: {line}")),
            _ => {}
        }
    }
    Ok(())
}

fn shape_checks(tree: &pgbr_policy::artifact::Tree, cluster: &Value) -> Result<(), String> {
    let name = text_of(&cluster["name"]);
    for (path, artifact) in tree {
        let text = std::str::from_utf8(&artifact.bytes).map_err(|e| format!("{path}: not UTF-8: {e}"))?;
        if let Some(c) = text.chars().find(|c| c.is_control() && *c != '\n' && *c != '\t') {
            return Err(format!("{path}: contains the control character U+{:04X}", c as u32));
        }
        if path.ends_with(".conf") && path.contains("/pgbackrest/") {
            // pgBackRest ini: comments, blank lines, [section] and key=value only.
            for line in text.lines() {
                let ok = line.is_empty()
                    || line.starts_with('#')
                    || (line.starts_with('[') && line.ends_with(']'))
                    || line.split_once('=').is_some_and(|(k, _)| {
                        !k.is_empty()
                            && k.chars()
                                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    });
                if !ok {
                    return Err(format!("{path}: line is not ini: {line:?}"));
                }
            }
        }
        if path.ends_with("CHANGE.md") {
            markdown_tables_keep_shape(text).map_err(|e| format!("{path}: {e}"))?;
        }
        if path.contains("/systemd/") && path.ends_with(".conf") {
            for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
                if line.split_whitespace().count() != 6 {
                    return Err(format!("{path}: tmpfiles line has not 6 fields: {line:?}"));
                }
            }
        }
        if path.ends_with(".service") {
            let exec = text
                .lines()
                .find(|l| l.starts_with("ExecStart="))
                .ok_or("no ExecStart")?;
            let words: Vec<&str> = exec.split_whitespace().collect();
            if path.contains("/systemd/pgbr-tls-") {
                if words.len() != 3 {
                    return Err(format!("{path}: ExecStart has not 3 words: {exec:?}"));
                }
            } else {
                // A scheduled job: binary, --config[, --config-include-path], --stanza,
                // --log-level-console[, --type], backup or verify.
                let last = words.last().copied().unwrap_or_default();
                if !(5..=7).contains(&words.len())
                    || !matches!(last, "backup" | "verify")
                    || !words[1..words.len() - 1].iter().all(|w| w.starts_with("--"))
                {
                    return Err(format!("{path}: ExecStart is not a scheduled pgBackRest job: {exec:?}"));
                }
            }
        }
    }
    // No accepted policy makes the scripts take over `/` or a top-level directory.
    for p in cluster["paths"].as_array().unwrap() {
        let path = text_of(&p["path"]);
        if p["kind"] == "dir" && path.matches('/').count() <= 1 {
            return Err(format!("the plan manages the system directory {path}"));
        }
    }
    if !tree.contains_key(&format!("{name}/shell/apply.sh")) {
        return Err(format!("no {name}/shell/apply.sh in the tree"));
    }
    Ok(())
}

// ---------------------------------------------------------------- running one case

#[derive(Default, Debug)]
struct Counts {
    tried: usize,
    rejected: usize,
    /// Refused by a combination rule that names a related field (overlap, equality).
    rejected_combination: usize,
    inert: usize,
    /// Accepted values that still contain a character outside [A-Za-z0-9/._-].
    inert_with_metacharacters: usize,
    plan_blocks_shellchecked: usize,
}

fn env_number(name: &str, default: u32) -> u32 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn runner(cases: u32) -> (TestRunner, String) {
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 256,
        max_shrink_time: 30_000,
        ..Config::default()
    };
    let seed = std::env::var("PGBR_HOSTILE_SEED").unwrap_or_default();
    let seed: u64 = if seed == "random" {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    } else {
        seed.parse().unwrap_or(0x7067_6272_686f_7374) // "pgbrhost"
    };
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(i as u32 * 16)).to_le_bytes());
    }
    (
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)),
        format!("seed {seed}"),
    )
}

/// Uncaptured output (the harness captures print!, not writes to the handle), plus a
/// summary file.
fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
    let path = root().join("target").join("hostile-summary.txt");
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(f, "{line}");
    }
}

/// The combination rules: an error that names a field related to the mutated one.
fn is_combination_error(message: &str) -> bool {
    [
        "overlaps",
        "used by both",
        "must differ",
        "derived from other fields",
        "must not overlap",
        "no group access",
        "is the cluster owner's own role",
    ]
    .iter()
    .any(|m| message.contains(m))
}

enum Outcome {
    Rejected {
        combination: bool,
    },
    Accepted {
        tree: pgbr_policy::artifact::Tree,
        cluster: Value,
    },
}

/// Validate through the binary (exit status, messages) and in process (the typed
/// values); on acceptance, compile the tree.
fn classify(dir: &Path, rendered: &Rendered, muts: &[Mutation]) -> Result<Outcome, TestCaseError> {
    let path = write_policy(dir, &rendered.text);
    let (code, _stdout, stderr) = run(&["validate", path.to_str().unwrap()]);
    prop_assert!(!stderr.contains("panicked"), "panic:\n{stderr}");
    for line in stderr.lines() {
        prop_assert!(
            line.len() <= 2000,
            "a message line is {} bytes long: {}…",
            line.len(),
            &line[..200.min(line.len())]
        );
        prop_assert!(
            line.starts_with("error: ") || line.starts_with("warning: ") || line.starts_with("the policy has"),
            "a message spans lines or has no level (an injected line?): {line:?}\n{stderr}"
        );
    }
    prop_assert!(
        !stderr.chars().any(|c| c.is_control() && c != '\n'),
        "control character in messages: {stderr:?}"
    );
    let parsed = policy::parse(rendered.text.as_bytes(), &path, "policy.yaml");
    match parsed {
        Err(errors) => {
            prop_assert_eq!(
                code,
                2,
                "in-process parse failed but validate exited {}:\n{}",
                code,
                stderr
            );
            let errors: Vec<_> = errors
                .diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .collect();
            prop_assert!(!errors.is_empty());
            let named = muts.iter().any(|m| {
                let want = format!("clusters[0].{}", m.field);
                let line = rendered.line_of(m);
                errors.iter().any(|d| d.field == want && d.line == line)
            });
            let combination = !named && errors.iter().all(|d| is_combination_error(&d.message));
            prop_assert!(
                named || combination,
                "refused, but no error names a mutated field at its line ({:?}):\n{}\npolicy:\n{}",
                muts.iter().map(|m| (m.field, rendered.line_of(m))).collect::<Vec<_>>(),
                stderr,
                rendered.text.escape_debug()
            );
            for d in &errors {
                prop_assert!(
                    stderr.contains(&d.to_string()),
                    "validate's output lacks {}:\n{}",
                    d,
                    stderr
                );
            }
            Ok(Outcome::Rejected { combination })
        }
        Ok(loaded) => {
            prop_assert_eq!(code, 0, "parsed in process but validate exited {}:\n{}", code, stderr);
            let cluster = loaded.policy.clusters[0].clone();
            for m in muts {
                if let Some(v) = typed_value(&cluster, m.field) {
                    prop_assert_eq!(
                        &v,
                        &m.value,
                        "{} does not round-trip through YAML and validation",
                        m.field
                    );
                }
            }
            let tree = match pgbr_policy::compile(rendered.text.as_bytes(), "policy.yaml") {
                Ok(tree) => tree,
                Err(e) => {
                    return Err(TestCaseError::fail(format!(
                        "validate accepted the policy but rendering failed: {e:#}\npolicy:\n{}",
                        rendered.text.escape_debug()
                    )));
                }
            };
            let plan = pgbr_policy::plan::build(&loaded.policy);
            let value = serde_json::to_value(&plan.clusters[0]).unwrap();
            Ok(Outcome::Accepted { tree, cluster: value })
        }
    }
}

/// bash -n on each script, the plan block executed in a throw-away root (exact values
/// back), every script's --help executed there. Returns the plan block.
fn scripts_are_inert(
    tree_dir: &Path,
    sandbox: &Path,
    tree: &pgbr_policy::artifact::Tree,
    cluster: &Value,
) -> Result<String, TestCaseError> {
    let name = text_of(&cluster["name"]);
    let mut block = None;
    for script in ["apply", "verify", "rollback", "lib"] {
        let rel = format!("{name}/shell/{script}.sh");
        let text = std::str::from_utf8(&tree[&rel].bytes).unwrap();
        let out = Command::new("bash")
            .arg("-n")
            .arg(tree_dir.join(&rel))
            .output()
            .unwrap();
        prop_assert!(
            out.status.success(),
            "bash -n {rel}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The plan block lives in lib.sh alone; the scripts source it.
        if script == "lib" {
            block = Some(plan_block(text));
        } else {
            prop_assert!(!text.contains("\nCLUSTER="), "{} holds a plan block of its own", rel);
        }
    }
    let block = block.unwrap();
    let printer = tree_dir.join("plan-printer.sh");
    std::fs::write(&printer, plan_printer(&block)).unwrap();
    let out = in_throwaway_root(
        sandbox,
        &["bash", "--noprofile", "--norc", printer.to_str().unwrap()],
        &[],
    );
    prop_assert!(
        out.status.success() && out.stderr.is_empty(),
        "the plan block failed or complained: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<String> = out
        .stdout
        .split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    let mut want = expected_plan_values(cluster);
    want.push(String::new()); // after the last NUL
    prop_assert_eq!(got, want, "the plan block does not hold exactly the planned values");
    let left = leftovers(sandbox, &[]);
    prop_assert!(left.is_empty(), "the plan block created {:?}", left);

    // Each script, executed whole: defines everything, reads its plan, prints usage.
    let mut argv = vec![
        "bash",
        "-c",
        "for s; do \"$s\" --help >/dev/null || exit $?; done",
        "help",
    ];
    let paths: Vec<String> = ["apply", "verify", "rollback"]
        .iter()
        .map(|s| tree_dir.join(format!("{name}/shell/{s}.sh")).display().to_string())
        .collect();
    argv.extend(paths.iter().map(String::as_str));
    let out = in_throwaway_root(sandbox, &argv, &[]);
    prop_assert!(
        out.status.success() && out.stderr.is_empty(),
        "--help failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left = leftovers(sandbox, &[]);
    prop_assert!(left.is_empty(), "--help created {:?}", left);
    Ok(block)
}

fn has_metacharacters(muts: &[Mutation]) -> bool {
    muts.iter().any(|m| {
        m.value
            .chars()
            .any(|c| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-')))
    })
}

/// shellcheck on many plan blocks at once (its start-up dominates); returns failures.
fn shellcheck_blocks(blocks: &[(String, PathBuf)]) -> Vec<String> {
    let shellcheck = require_tool("shellcheck", "shellcheck");
    let mut failures = Vec::new();
    for chunk in blocks.chunks(64) {
        let out = Command::new(&shellcheck)
            .args(["--severity=style", "--format=gcc"])
            .args(chunk.iter().map(|(_, p)| p))
            .output()
            .unwrap();
        if !out.status.success() {
            failures.push(String::from_utf8_lossy(&out.stdout).into_owned());
        }
    }
    failures
}

// ---------------------------------------------------------------- test 1: validation and rendering

/// Fixed cases that once found a bug, run before the generated ones (and so always).
const RENDER_REGRESSIONS: &[&[(&str, &str)]] = &[
    // shellcheck SC1003 on 'x\' (a backslash before the closing quote).
    &[("role.name", "ends with a backslash\\")],
    &[("role.database", "a\\'b")],
    // shellcheck SC2054 on a comma in an array element.
    &[("pgbackrest.repository", "/srv/a,b")],
    // The system-directory and `/` rules leave these accepted: deep enough, not shared.
    &[("pgbackrest.tls.directory", "/etc/pgbackrest/x+y@z")],
];

/// Every string field, hostile values: refused with the field named, or inert.
#[test]
#[ignore = "tier root: needs root (users, owners, namespaces) (bash .ci/run runs every tier)"]
fn hostile_policies_are_refused_or_inert() {
    let cases = env_number("PGBR_HOSTILE_CASES", 256);
    let (mut runner, seed) = runner(cases);
    let counts = Mutex::new(Counts::default());
    let blocks = Mutex::new(Vec::<(String, PathBuf)>::new());
    let keep = tempdir();
    let base: Vec<(&str, Y)> = vec![
        ("name", Y::Str("hostile".into())),
        ("postgres.major", Y::Int(15)),
        ("pgbackrest.version", Y::Str("2.45".into())),
    ];
    let start = std::time::Instant::now();
    let case = |muts: Vec<Mutation>| -> Result<(), TestCaseError> {
        let rendered = policy_yaml(&base, &muts);
        let dir = tempdir();
        counts.lock().unwrap().tried += 1;
        match classify(dir.path(), &rendered, &muts)? {
            Outcome::Rejected { combination } => {
                let mut c = counts.lock().unwrap();
                c.rejected += 1;
                c.rejected_combination += combination as usize;
            }
            Outcome::Accepted { tree, cluster, .. } => {
                shape_checks(&tree, &cluster).map_err(TestCaseError::fail)?;
                let tree_dir = dir.path().join("out");
                write_tree(&tree, &tree_dir);
                let sandbox = dir.path().join("root");
                std::fs::create_dir(&sandbox).unwrap();
                let block = scripts_are_inert(&tree_dir, &sandbox, &tree, &cluster)?;
                // Kept for one batched shellcheck run at the end.
                let mut b = blocks.lock().unwrap();
                let file = keep.path().join(format!("plan-{}.sh", b.len()));
                std::fs::write(
                    &file,
                    format!("#!/usr/bin/env bash\n# shellcheck disable=SC2016,SC2034,SC2317\n{block}"),
                )
                .unwrap();
                b.push((rendered.text.clone(), file));
                let mut c = counts.lock().unwrap();
                c.inert += 1;
                c.inert_with_metacharacters += has_metacharacters(&muts) as usize;
            }
        }
        Ok(())
    };
    for fixed in RENDER_REGRESSIONS {
        let muts = fixed
            .iter()
            .map(|(field, value)| Mutation {
                field: self::field(field).path,
                value: (*value).to_owned(),
                in_defaults: false,
            })
            .collect();
        if let Err(e) = case(muts) {
            panic!("regression case {fixed:?}: {e}");
        }
    }
    let result = runner.run(&mutations(all_field_paths(), 3), case);
    if let Err(e) = result {
        panic!("{e}");
    }
    let blocks = blocks.into_inner().unwrap();
    let mut failures = shellcheck_blocks(&blocks);
    for (policy, file) in &blocks {
        if failures.iter().any(|f| f.contains(&*file.to_string_lossy())) {
            failures.push(format!("{}: from the policy\n{policy}", file.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "shellcheck on plan blocks:\n{}",
        failures.join("\n")
    );
    let mut c = counts.into_inner().unwrap();
    c.plan_blocks_shellchecked = blocks.len();
    report(&format!(
        "hostile: {} cases tried ({seed}): {} refused by validate (exit 2, field and line named; {} of them by a combination rule), {} rendered inert ({} with shell/SQL metacharacters; bash -n, plan block executed in a throw-away root with exact values, --help run, {} plan blocks shellchecked); {:.1}s",
        c.tried,
        c.rejected,
        c.rejected_combination,
        c.inert,
        c.inert_with_metacharacters,
        c.plan_blocks_shellchecked,
        start.elapsed().as_secs_f64()
    ));
    assert_eq!(c.tried, c.rejected + c.inert);
    assert!(c.rejected > 0 && c.inert > 0, "both outcomes must be exercised: {c:?}");
}

// ---------------------------------------------------------------- test 2: a real PostgreSQL 15

/// psql as postgres in database `postgres` on the shared test server, unaligned; `vars`
/// as psql variables, `sql` on stdin.
fn psql_vars(server: &Server, vars: &[(&str, &str)], sql: &str) -> Output {
    let mut extra = vec!["-At".to_owned()];
    for (k, v) in vars {
        extra.push("-v".to_owned());
        extra.push(format!("{k}={v}"));
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    server.psql("postgres", &extra, sql)
}

fn psql_vars_ok(server: &Server, vars: &[(&str, &str)], sql: &str) -> String {
    let out = psql_vars(server, vars, sql);
    assert!(
        out.status.success(),
        "psql failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What the catalog holds, hex-encoded where names may hold anything.
const SNAPSHOT: &str = r#"
SELECT 'roles:' || coalesce(string_agg(encode(convert_to(rolname, 'UTF8'), 'hex'), ',' ORDER BY rolname), '') FROM pg_catalog.pg_roles;
SELECT 'databases:' || coalesce(string_agg(encode(convert_to(datname, 'UTF8'), 'hex'), ',' ORDER BY datname), '') FROM pg_catalog.pg_database;
SELECT 'objects:' || (SELECT count(*) FROM pg_catalog.pg_class) || ',' || (SELECT count(*) FROM pg_catalog.pg_proc) || ',' || (SELECT count(*) FROM pg_catalog.pg_namespace);
SELECT 'other-grants:' || md5(coalesce(string_agg(p.oid || ':' || a.grantee || ':' || a.privilege_type, ',' ORDER BY p.oid, a.grantee, a.privilege_type), ''))
  FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) a
 WHERE a.grantee NOT IN (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = :'role');
"#;

/// What the role got, inside the transaction.
const ROLE_STATE: &str = r#"
SELECT 'attributes:' || row(rolcanlogin, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls)::text
  FROM pg_catalog.pg_roles WHERE rolname = :'role';
SELECT 'memberships:' || coalesce(string_agg(g.rolname, ',' ORDER BY g.rolname), '')
  FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles g ON g.oid = m.roleid JOIN pg_catalog.pg_roles r ON r.oid = m.member
 WHERE r.rolname = :'role';
SELECT 'functions:' || coalesce(string_agg(p.oid::pg_catalog.regprocedure::text, ',' ORDER BY p.oid::pg_catalog.regprocedure::text), '')
  FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) a JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
 WHERE r.rolname = :'role' AND a.privilege_type = 'EXECUTE';
"#;

fn lines_with(prefix: &str, text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix(prefix).map(str::to_owned))
        .collect()
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// apply.sql twice in a transaction that is rolled back: exactly the role, with
/// exactly the planned attributes, memberships and grants; nothing else changes.
fn sql_creates_exactly_the_role(server: &Server, tree_dir: &Path, cluster: &Value) -> Result<(), TestCaseError> {
    let name = text_of(&cluster["name"]);
    let role = text_of(&cluster["role"]["name"]);
    let apply = std::fs::read_to_string(tree_dir.join(format!("{name}/sql/apply.sql"))).unwrap();
    let vars = [("role", role.as_str())];
    let before = psql_vars_ok(server, &vars, SNAPSHOT);
    let exists_before = psql_vars_ok(
        server,
        &vars,
        "SELECT count(*) FROM pg_catalog.pg_roles WHERE rolname = :'role';",
    );
    prop_assert_eq!(exists_before.trim(), "0", "role {:?} exists before apply", role);
    let session =
        format!("BEGIN;\n{apply}\n{apply}\nRESET client_min_messages;\n{SNAPSHOT}\n{ROLE_STATE}\nROLLBACK;\n");
    let out = psql_vars(server, &vars, &session);
    prop_assert!(
        out.status.success(),
        "apply.sql failed for role {:?}: {}",
        role,
        String::from_utf8_lossy(&out.stderr)
    );
    let inside = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut roles_before: BTreeSet<String> = lines_with("roles:", &before)[0].split(',').map(str::to_owned).collect();
    roles_before.insert(hex(&role));
    let roles_inside: BTreeSet<String> = lines_with("roles:", &inside)[0].split(',').map(str::to_owned).collect();
    prop_assert_eq!(
        roles_inside,
        roles_before,
        "apply.sql created other roles than {:?}",
        role
    );
    for what in ["databases:", "objects:", "other-grants:"] {
        prop_assert_eq!(
            lines_with(what, &inside),
            lines_with(what, &before),
            "apply.sql changed {} (role {:?})",
            what,
            role
        );
    }
    prop_assert_eq!(lines_with("attributes:", &inside), vec!["(t,f,t,f,f,f,f)".to_owned()]);
    let mut memberships: Vec<String> = cluster["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| text_of(&m["role"]))
        .collect();
    memberships.sort();
    prop_assert_eq!(lines_with("memberships:", &inside), vec![memberships.join(",")]);
    let mut functions: Vec<String> = cluster["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| text_of(&f["regprocedure"]))
        .collect();
    functions.sort();
    prop_assert_eq!(lines_with("functions:", &inside), vec![functions.join(",")]);
    let after = psql_vars_ok(server, &vars, SNAPSHOT);
    prop_assert_eq!(after, before, "the rollback left something behind");
    Ok(())
}

/// The snippets spliced at the top of the server's files read back through
/// pg_hba_file_rules and pg_ident_file_mappings as the intended rules; the files are
/// put back byte for byte.
fn hba_reads_back(server: &Server, tree_dir: &Path, cluster: &Value) -> Result<(), TestCaseError> {
    let name = text_of(&cluster["name"]);
    let role = text_of(&cluster["role"]["name"]);
    let database = text_of(&cluster["role"]["database"]);
    let files = [
        ("hba/pg_hba.conf.snippet", server.data().join("pg_hba.conf")),
        ("hba/pg_ident.conf.snippet", server.data().join("pg_ident.conf")),
    ];
    let originals: Vec<Vec<u8>> = files.iter().map(|(_, live)| std::fs::read(live).unwrap()).collect();
    for ((snippet, live), original) in files.iter().zip(&originals) {
        let mut text = std::fs::read(tree_dir.join(format!("{name}/{snippet}"))).unwrap();
        text.extend_from_slice(original);
        std::fs::write(live, text).unwrap();
    }
    let rules = psql_vars(
        server,
        &[],
        // Hex: psql's output drops some characters (U+10FFFF) that the rules hold.
        "SELECT 'hba:' || encode(convert_to(json_build_array(type, database, user_name, address, auth_method, options, error)::text, 'UTF8'), 'hex') FROM pg_catalog.pg_hba_file_rules ORDER BY line_number;
         SELECT 'ident:' || encode(convert_to(json_build_array(map_name, sys_name, pg_username, error)::text, 'UTF8'), 'hex') FROM pg_catalog.pg_ident_file_mappings ORDER BY line_number;",
    );
    for ((_, live), original) in files.iter().zip(&originals) {
        std::fs::write(live, original).unwrap();
    }
    for ((_, live), original) in files.iter().zip(&originals) {
        prop_assert_eq!(&std::fs::read(live).unwrap(), original, "not restored");
    }
    prop_assert!(rules.status.success(), "{}", String::from_utf8_lossy(&rules.stderr));
    let text = String::from_utf8_lossy(&rules.stdout).into_owned();
    let unhex = |h: &str| -> Value {
        let bytes: Vec<u8> = (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
            .collect();
        serde_json::from_slice(&bytes).unwrap()
    };
    let hba: Vec<Value> = lines_with("hba:", &text).iter().map(|l| unhex(l)).collect();
    let lines = cluster["hba_lines"].as_array().unwrap();
    for (i, line) in lines.iter().enumerate() {
        let database_field = if line["database_is_keyword"] == true {
            text_of(&line["database"])
        } else {
            database.clone()
        };
        let address = if text_of(&line["address"]).is_empty() {
            Value::Null
        } else {
            line["address"].clone()
        };
        let options = if text_of(&line["options"]).is_empty() {
            Value::Null
        } else {
            serde_json::json!([line["options"]])
        };
        let want = serde_json::json!([
            line["kind"],
            [database_field],
            [role],
            address,
            line["method"],
            options,
            null
        ]);
        prop_assert_eq!(&hba[i], &want, "pg_hba.conf rule {} reads back as another rule", i + 1);
    }
    prop_assert!(
        hba.iter().all(|r| r[6].is_null()),
        "pg_hba_file_rules reports an error: {:?}",
        hba
    );
    let ident: Vec<Value> = lines_with("ident:", &text).iter().map(|l| unhex(l)).collect();
    for (i, line) in cluster["ident_lines"].as_array().unwrap().iter().enumerate() {
        let want = serde_json::json!([line["map"], line["system_user"], line["database_user"], null]);
        prop_assert_eq!(
            &ident[i],
            &want,
            "pg_ident.conf line {} reads back as another mapping",
            i + 1
        );
    }
    Ok(())
}

/// pgBackRest's own parser reads the intended values back from both files.
fn pgbackrest_reads_back(tree_dir: &Path, cluster: &Value) -> Result<(), TestCaseError> {
    let name = text_of(&cluster["name"]);
    let stanza = text_of(&cluster["stanza"]);
    for (file, config) in [
        ("repository.conf", "repository_config"),
        ("database.conf", "database_config"),
    ] {
        let path = tree_dir.join(format!("{name}/pgbackrest/{file}"));
        for section in cluster[config]["sections"].as_array().unwrap() {
            for option in section["options"].as_array().unwrap() {
                let key = text_of(&option["key"]);
                if !["pg1-user", "pg1-database", "pg1-path", "repo1-path", "lock-path"].contains(&key.as_str()) {
                    continue;
                }
                let out = Command::new("pgbackrest")
                    .arg(format!("--config={}", path.display()))
                    .arg(format!("--stanza={stanza}"))
                    .args(["help", "backup", &key])
                    .output()
                    .unwrap();
                let text = String::from_utf8_lossy(&out.stdout);
                let current = text.lines().find_map(|l| l.strip_prefix("current: "));
                let want = text_of(&option["value"]);
                prop_assert_eq!(
                    current,
                    Some(want.as_str()),
                    "pgBackRest reads {} in {} as another value:\n{}{}",
                    key,
                    file,
                    text,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
    Ok(())
}

/// apply.sh --dry-run, verify.sh and rollback.sh --dry-run against the server, in a
/// throw-away root, under strace: the dry runs succeed, nothing is written anywhere
/// (strace sees no EROFS), the role is not created and the hba files are unchanged.
fn scripts_touch_nothing(server: &Server, tree_dir: &Path, cluster: &Value) -> Result<(), TestCaseError> {
    let name = text_of(&cluster["name"]);
    let role = text_of(&cluster["role"]["name"]);
    let database = text_of(&cluster["role"]["database"]);
    let created_db = database != "postgres";
    if created_db {
        psql_vars_ok(server, &[("db", &database)], "CREATE DATABASE :\"db\";");
    }
    let hba_before = std::fs::read(server.data().join("pg_hba.conf")).unwrap();
    let sandbox = tempdir();
    let mut failure = None;
    for (script, args, want_ok) in [
        ("apply", "--dry-run", true),
        ("verify", "--no-pgbackrest-check", false),
        ("rollback", "--dry-run", true),
    ] {
        let log = sandbox.path().join("strace.log");
        let path = tree_dir.join(format!("{name}/shell/{script}.sh"));
        let out = in_throwaway_root(
            sandbox.path(),
            &[
                "strace",
                "-f",
                "-qq",
                "--seccomp-bpf",
                "-e",
                "signal=none",
                "-e",
                "trace=open,openat,openat2,creat,mkdir,mkdirat,rename,renameat,renameat2,unlink,unlinkat,rmdir,chmod,fchmod,fchmodat,chown,fchown,lchown,fchownat,link,linkat,symlink,symlinkat,truncate,ftruncate,utimensat,mknod,mknodat",
                "-e",
                "status=failed",
                "-o",
                log.to_str().unwrap(),
                path.to_str().unwrap(),
                args,
            ],
            &[],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let trace = std::fs::read_to_string(&log).unwrap_or_default();
        // verify.sh's probes try forbidden writes on purpose (and remove what succeeds):
        // only those may meet the read-only filesystem.
        let erofs: Vec<&str> = trace
            .lines()
            .filter(|l| l.contains("EROFS") && !(script == "verify" && l.contains("/.pgbr-verify-probe.")))
            .collect();
        let left = leftovers(sandbox.path(), &["strace.log"]);
        let _ = std::fs::remove_file(&log);
        let ok = out.status.success();
        let problem = if !erofs.is_empty() {
            Some(format!(
                "{script}.sh tried to write outside its throw-away root:\n{}",
                erofs.join("\n")
            ))
        } else if !left.is_empty() {
            Some(format!("{script}.sh left {left:?} in its working directory"))
        } else if want_ok && !ok {
            Some(format!("{script}.sh {args} failed:\n{stdout}{stderr}"))
        } else if !want_ok && out.status.code() != Some(1) {
            Some(format!(
                "{script}.sh should report failed checks (exit 1), got {:?}:\n{stdout}{stderr}",
                out.status.code()
            ))
        } else if script == "rollback" && stdout.contains("rm -rf") {
            Some(format!("rollback.sh would remove a directory recursively:\n{stdout}"))
        } else if stderr.contains("unbound variable")
            || stderr.contains("syntax error")
            || stderr.contains("command not found")
        {
            Some(format!("{script}.sh: {stderr}"))
        } else {
            None
        };
        if problem.is_some() {
            failure = problem;
            break;
        }
    }
    let role_count = psql_vars_ok(
        server,
        &[("role", &role)],
        "SELECT count(*) FROM pg_catalog.pg_roles WHERE rolname = :'role';",
    );
    let hba_after = std::fs::read(server.data().join("pg_hba.conf")).unwrap();
    if created_db {
        psql_vars_ok(server, &[("db", &database)], "DROP DATABASE :\"db\";");
    }
    if let Some(f) = failure {
        return Err(TestCaseError::fail(f));
    }
    prop_assert_eq!(role_count.trim(), "0", "a dry run created the role");
    prop_assert!(hba_after == hba_before, "a dry run changed pg_hba.conf");
    Ok(())
}

/// Fixed cases that once found a bug, run before the generated ones.
const PG_REGRESSIONS: &[&[(&str, &str)]] = &[&[
    ("role.name", "it's $(touch pwned) `touch pwned`; \\ all"),
    ("role.database", "dbname=postgres host=/tmp/pgbr-evil"),
]];

/// Cases for the server: the role name always (hostile but mostly acceptable), and up
/// to two more fields that still make sense against one local server (its paths, port
/// and owner stay fixed).
fn pg_mutations() -> BoxedStrategy<Vec<Mutation>> {
    let role = prop_oneof![4 => mostly_acceptable_sql_name(), 1 => value_for(Kind::Sql)];
    (role, any::<bool>(), prop::collection::vec(mutation(PG_FIELDS), 0..=2))
        .prop_map(|(value, in_defaults, mut rest)| {
            rest.retain(|m| m.field != "role.name");
            let mut seen = BTreeSet::new();
            rest.retain(|m| seen.insert(m.field));
            rest.insert(
                0,
                Mutation {
                    field: "role.name",
                    value,
                    in_defaults,
                },
            );
            rest
        })
        .boxed()
}

const PG_FIELDS: &[&str] = &[
    "role.database",
    "role.database",
    "role.database",
    "backup_user.name",
    "backup_user.group",
    "backup_user.home",
    "pgbackrest.stanza",
    "pgbackrest.repository",
    "pgbackrest.tls.directory",
    "pgbackrest.tls.address",
    "pgbackrest.config.repository_side",
    "pgbackrest.owner_paths.lock",
];

#[test]
#[ignore = "tier postgres: needs root and PostgreSQL 15 (bash .ci/run runs every tier)"]
fn hostile_policies_on_a_real_postgres() {
    assert_eq!(
        Command::new("id").arg("-u").output().unwrap().stdout,
        b"0\n",
        "the PostgreSQL tests start the server as `postgres` and must run as root"
    );
    let cases = env_number("PGBR_HOSTILE_PG_CASES", 40);
    let dry_runs = env_number("PGBR_HOSTILE_DRY_RUNS", 3) as usize;
    let server = Server::start("hostile-input");
    let (mut runner, seed) = runner(cases);
    let counts = Mutex::new((0usize, 0usize, 0usize, 0usize)); // tried, rejected, inert, dry runs
    let shellchecks = Mutex::new(Vec::<std::process::Child>::new());
    let keep = tempdir();
    let base: Vec<(&str, Y)> = vec![
        ("name", Y::Str("pg".into())),
        ("postgres.major", Y::Int(15)),
        ("postgres.data_directory", Y::Str(server.data().display().to_string())),
        ("postgres.socket_directory", Y::Str(server.sock().display().to_string())),
        ("postgres.port", Y::Int(u32::from(server.port()))),
        ("pgbackrest.version", Y::Str("2.45".into())),
    ];
    let start = std::time::Instant::now();
    let case = |muts: Vec<Mutation>, force_dry_run: bool| -> Result<(), TestCaseError> {
        let rendered = policy_yaml(&base, &muts);
        let dir = tempdir();
        counts.lock().unwrap().0 += 1;
        let Outcome::Accepted { tree, cluster, .. } = classify(dir.path(), &rendered, &muts)? else {
            prop_assert!(!force_dry_run, "a regression case was refused: {:?}", muts);
            counts.lock().unwrap().1 += 1;
            return Ok(());
        };
        let tree_dir = dir.path().join("out");
        write_tree(&tree, &tree_dir);
        sql_creates_exactly_the_role(&server, &tree_dir, &cluster)?;
        hba_reads_back(&server, &tree_dir, &cluster)?;
        pgbackrest_reads_back(&tree_dir, &cluster)?;
        let dry_run = force_dry_run || counts.lock().unwrap().3 < dry_runs;
        if dry_run {
            scripts_touch_nothing(&server, &tree_dir, &cluster)?;
            // Whole scripts through shellcheck for these few (~2 s of CPU a tree),
            // started now so that it overlaps the waits on the server.
            let name = text_of(&cluster["name"]);
            let mut children = shellchecks.lock().unwrap();
            // A copy of the shell directory (the tree goes away): the scripts source lib.sh.
            let copy = keep.path().join(children.len().to_string());
            std::fs::create_dir(&copy).unwrap();
            for script in ["apply", "verify", "rollback", "lib"] {
                std::fs::copy(
                    tree_dir.join(format!("{name}/shell/{script}.sh")),
                    copy.join(format!("{script}.sh")),
                )
                .unwrap();
            }
            let child = Command::new(require_tool("shellcheck", "shellcheck"))
                .args([
                    "--severity=style",
                    "--format=gcc",
                    "-x",
                    "apply.sh",
                    "verify.sh",
                    "rollback.sh",
                    "lib.sh",
                ])
                .current_dir(&copy)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            children.push(child);
            counts.lock().unwrap().3 += 1;
        }
        counts.lock().unwrap().2 += 1;
        Ok(())
    };
    // Regressions first, always with the dry runs: a database name that is a libpq
    // connection string once sent apply.sh's psql (and a scram password) elsewhere.
    for fixed in PG_REGRESSIONS {
        let muts = fixed
            .iter()
            .map(|(field, value)| Mutation {
                field: self::field(field).path,
                value: (*value).to_owned(),
                in_defaults: false,
            })
            .collect();
        if let Err(e) = case(muts, true) {
            panic!("regression case {fixed:?}: {e}");
        }
    }
    let result = runner.run(&pg_mutations(), |muts| case(muts, false));
    if let Err(e) = result {
        panic!("{e}");
    }
    for child in shellchecks.into_inner().unwrap() {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "shellcheck on whole scripts:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let (tried, rejected, inert, dry) = counts.into_inner().unwrap();
    report(&format!(
        "hostile on PostgreSQL 15: {tried} cases tried ({seed}): {rejected} refused by validate, {inert} rendered inert (apply.sql twice in a rolled-back transaction created exactly the role and its grants; hba/ident rules read back through pg_hba_file_rules/pg_ident_file_mappings; pgBackRest read back its options; {dry} ran apply.sh --dry-run, verify.sh and rollback.sh --dry-run against the server in a throw-away root under strace, and went through shellcheck whole); {:.1}s",
        start.elapsed().as_secs_f64()
    ));
    assert!(inert > 0, "no case reached the server");
}

// ---------------------------------------------------------------- test 3: regressions

/// Values valid for their type but turning the artifacts against the host; each once
/// passed validation. Refused now, with the field and its line named.
#[test]
#[ignore = "tier root: needs root (users, owners, namespaces) (bash .ci/run runs every tier)"]
fn known_hostile_values_are_refused() {
    let base: Vec<(&str, Y)> = vec![
        ("name", Y::Str("known".into())),
        ("postgres.major", Y::Int(16)),
        ("pgbackrest.version", Y::Str("2.55.1".into())),
    ];
    let cases: &[(&str, &str, &str)] = &[
        // PostgreSQL 16+ reads a pg_hba/pg_ident name starting with `/` as a regular
        // expression even when quoted: `local all "/.*" reject` rejects everyone.
        ("role.name", "/.*", "regular expression"),
        ("role.database", "/^", "regular expression"),
        // CREATE ROLE refuses them: apply.sql failed on the host.
        ("role.name", "public", "reserved"),
        ("role.name", "none", "reserved"),
        // The superuser apply.sh connects as: converged to NOSUPERUSER, then locked out.
        ("role.name", "postgres", "cluster owner's own role"),
        // Taken over (chown/chmod) by apply.sh, removed by rollback.sh.
        ("pgbackrest.repository", "/", "system directory"),
        ("pgbackrest.repository", "/var/lib", "system directory"),
        ("pgbackrest.tls.directory", "/etc", "system directory"),
        ("pgbackrest.tls.directory", "/etc/ssl", "system directory"),
        ("backup_user.home", "/home", "system directory"),
        ("backup_user.home", "/var/lib/postgresql", "system directory"),
        ("pgbackrest.backup_user_paths.lock", "/tmp", "system directory"),
        ("pgbackrest.owner_paths.spool", "/var/spool", "system directory"),
        (
            "pgbackrest.config.repository_side",
            "/tmp/repository.conf",
            "system directory",
        ),
        (
            "pgbackrest.config.database_side",
            "/etc/database.conf",
            "system directory",
        ),
    ];
    for (field, value, reason) in cases {
        let muts = [Mutation {
            field: self::field(field).path,
            value: (*value).to_owned(),
            in_defaults: false,
        }];
        let rendered = policy_yaml(&base, &muts);
        let dir = tempdir();
        let path = write_policy(dir.path(), &rendered.text);
        let (code, _, stderr) = run(&["validate", path.to_str().unwrap()]);
        assert_eq!(code, 2, "{field}: {value:?} accepted:\n{stderr}");
        let want = format!(":{}:", rendered.line_of(&muts[0]));
        assert!(
            stderr
                .lines()
                .any(|l| l.contains(&want) && l.contains(&format!("clusters[0].{field}:")) && l.contains(reason)),
            "{field}: {value:?}: no error naming the field at line {want} with {reason:?}:\n{stderr}"
        );
    }
    // A configuration file directly in /etc/pgbackrest is fine (root:root 0755 already).
    let muts = [Mutation {
        field: "pgbackrest.config.repository_side",
        value: "/etc/pgbackrest/repository.conf".into(),
        in_defaults: false,
    }];
    let dir = tempdir();
    let path = write_policy(dir.path(), &policy_yaml(&base, &muts).text);
    let (code, _, stderr) = run(&["validate", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
}

// ---------------------------------------------------------------- test 4: the template scan

/// Plan fields a template may print without a filter: numbers. `port` (u16), `major`
/// (u32) and `mode` (four octal digits, a `&'static str` made by the plan) — checked
/// against real plans below — and tera's `loop.index`. Any other unfiltered value fails
/// the scan, and the render-time rule (digits only) backs this up.
const NUMERIC_FIELDS: &[&str] = &["port", "major", "mode", "bulk_threshold"];

/// Filters that yield a number whatever their input.
const NUMERIC_FILTERS: &[&str] = &["length"];

/// The escaping filters, read from their registration in src/render/mod.rs.
fn registered_filters() -> BTreeSet<String> {
    let source = std::fs::read_to_string(root().join("src/render/mod.rs")).unwrap();
    let filters: BTreeSet<String> = source
        .match_indices("filter!(\"")
        .map(|(i, m)| {
            let rest = &source[i + m.len()..];
            rest[..rest.find('"').unwrap()].to_owned()
        })
        .collect();
    assert!(filters.contains("sh") && filters.contains("sql_lit"), "{filters:?}");
    filters
}

/// Splits an expression on `|` outside parentheses, brackets and string literals.
fn split_filters(expr: &str) -> Vec<String> {
    let (mut parts, mut current, mut depth, mut quote) = (Vec::new(), String::new(), 0i32, None::<char>);
    for c in expr.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'' | '`') => quote = Some(c),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')' | ']' | '}') => depth -= 1,
            (None, '|') if depth == 0 => {
                parts.push(current.trim().to_owned());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current.trim().to_owned());
    parts
}

/// The filter name of `name(args)`.
fn filter_name(segment: &str) -> &str {
    segment.split('(').next().unwrap().trim()
}

/// Every violation in one template: `line: message`.
fn scan_template(name: &str, text: &str, escaping: &BTreeSet<String>) -> Vec<String> {
    let ansible = name.starts_with("ansible/");
    let (open, close, tag_open, tag_close) = if ansible {
        ("[[", "]]", "[%", "%]")
    } else {
        ("{{", "}}", "{%", "%}")
    };
    let line_at = |offset: usize| text[..offset].matches('\n').count() + 1;
    let line_text = |offset: usize| {
        let start = text[..offset].rfind('\n').map(|i| i + 1).unwrap_or(0);
        let end = text[offset..].find('\n').map(|i| offset + i).unwrap_or(text.len());
        &text[start..end]
    };
    let trim_expr = |e: &str| e.trim().trim_start_matches('-').trim_end_matches('-').trim().to_owned();
    // `{% set x = expr %}` bindings whose value went through an escaping filter.
    let mut escaped_bindings = BTreeSet::new();
    let mut pos = 0;
    while let Some(i) = text[pos..].find(tag_open) {
        let start = pos + i + tag_open.len();
        let Some(len) = text[start..].find(tag_close) else {
            break;
        };
        let tag = trim_expr(&text[start..start + len]);
        if let Some(binding) = tag.strip_prefix("set ") {
            if let Some((var, expr)) = binding.split_once('=') {
                let parts = split_filters(expr);
                if parts.len() > 1 && escaping.contains(filter_name(parts.last().unwrap())) {
                    escaped_bindings.insert(var.trim().to_owned());
                }
            }
        }
        pos = start + len;
    }
    let is_comment_line = |l: &str| {
        let t = l.trim_start();
        t.starts_with('#') || t.starts_with("--")
    };
    let plan_block = name.starts_with("shell/_plan");
    let shell_body = name.starts_with("shell/") && !plan_block;
    let mut problems = Vec::new();
    let mut pos = 0;
    while let Some(i) = text[pos..].find(open) {
        let at = pos + i;
        let start = at + open.len();
        let Some(len) = text[start..].find(close) else {
            problems.push(format!("{}: unclosed `{open}`", line_at(at)));
            break;
        };
        let expr = trim_expr(&text[start..start + len]);
        pos = start + len + close.len();
        let line = line_at(at);
        let here = line_text(at);
        let parts = split_filters(&expr);
        let show = format!("`{open} {expr} {close}`");
        let last = filter_name(parts.last().unwrap()).to_owned();
        let numeric = if parts.len() == 1 {
            let path = expr.as_str();
            let last_field = path.rsplit('.').next().unwrap();
            (NUMERIC_FIELDS.contains(&last_field) && path.contains('.')) || matches!(path, "loop.index" | "loop.index0")
        } else {
            NUMERIC_FILTERS.contains(&last.as_str())
        };
        let escaped = parts.len() > 1 && escaping.contains(&last);
        let bound = parts.len() == 1 && escaped_bindings.contains(&expr);
        if !(numeric || escaped || bound) {
            problems.push(format!(
                "{line}: {show} does not end with an escaping filter ({}) and is not a number field ({})",
                escaping.iter().cloned().collect::<Vec<_>>().join(", "),
                NUMERIC_FIELDS.join(", ")
            ));
            continue;
        }
        // `serialized` passes text unchanged: only the body render/structured.rs wrote.
        if last == "serialized" && parts != ["body", "serialized"] {
            problems.push(format!(
                "{line}: {show} uses `serialized`, which is only for `body | serialized` (the text render/structured.rs wrote)"
            ));
        }
        if last == "comment" && parts.len() > 1 && !is_comment_line(here) {
            problems.push(format!(
                "{line}: {show} uses `comment` outside a comment line (it escapes nothing but line breaks)"
            ));
        }
        if shell_body && !is_comment_line(here) {
            problems.push(format!(
                "{line}: {show} puts a value in a script outside its plan block (shell/_plan.sh is the one place, through `sh`)"
            ));
        }
        if plan_block && !(numeric || last == "sh") {
            problems.push(format!("{line}: {show} in the plan block must end with `sh`"));
        }
    }
    problems
}

/// Every template, as embedded in the binary: each interpolation ends with an escaping
/// filter (those registered in src/render/mod.rs), or is a number field, or names a
/// `{% set %}` binding that was escaped; `comment` only on comment lines; `serialized`
/// only as `body | serialized`; in scripts, values only in the plan block (through `sh`).
/// Fails naming file and line.
#[test]
fn templates_interpolate_only_through_escaping_filters() {
    let escaping = registered_filters();
    let mut problems = Vec::new();
    let mut interpolations = 0;
    for (name, text) in pgbr_policy::render::TEMPLATES {
        interpolations += text
            .matches(if name.starts_with("ansible/") { "[[" } else { "{{" })
            .count();
        for p in scan_template(name, text, &escaping) {
            problems.push(format!("templates/{name}:{p}"));
        }
    }
    assert!(
        problems.is_empty(),
        "unescaped interpolations:\n{}",
        problems.join("\n")
    );
    assert!(
        interpolations > 100,
        "only {interpolations} interpolations found: is the scan looking?"
    );

    // The scanner finds what it must.
    for (template, needle) in [
        ("x={{ c.role.name }}", "does not end with an escaping filter"),
        ("x={{ c.role.name | upper }}", "does not end with an escaping filter"),
        (
            "x={{ c.role.name | sh | upper }}",
            "does not end with an escaping filter",
        ),
        ("x={{ c.name ~ \"|\" }}", "does not end with an escaping filter"),
        ("x=\"{{ c.name | comment }}\"", "outside a comment line"),
        ("x={{ c.role.name | serialized }}", "only for `body | serialized`"),
        ("x={{ body | sh | serialized }}", "only for `body | serialized`"),
        (
            "# ok {{ c.name | comment }}\nrun {{ c.postgres.port }}",
            "outside its plan block",
        ),
        (
            "{% set r = c.role.name %}{{ r }}",
            "does not end with an escaping filter",
        ),
    ] {
        let found = scan_template("shell/t.sh", template, &escaping).join("\n");
        assert!(found.contains(needle), "{template:?}: {found:?}");
    }
    assert!(
        scan_template(
            "sql/t.sql",
            "{% set r = c.role.name | sql_lit %}{{ r }} {{ c.postgres.port }} {{ x | length }}",
            &escaping
        )
        .is_empty()
    );
    assert!(!scan_template("shell/_plan.sh", "X={{ c.name | comment }}", &escaping).is_empty());

    // The number fields are numbers in every example's plan.
    fn walk(v: &Value, path: &str, out: &mut Vec<String>, seen: &mut usize) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    if NUMERIC_FIELDS.contains(&k.as_str()) {
                        *seen += 1;
                        let ok = v.is_u64()
                            || v.as_str()
                                .is_some_and(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()));
                        if !ok {
                            out.push(format!("{path}.{k} = {v}"));
                        }
                    }
                    walk(v, &format!("{path}.{k}"), out, seen);
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, &format!("{path}[{i}]"), out, seen);
                }
            }
            _ => {}
        }
    }
    let (mut bad, mut seen) = (Vec::new(), 0);
    for example in examples() {
        let loaded = policy::load(&example.join("policy.yaml")).unwrap();
        let plan = serde_json::to_value(pgbr_policy::plan::build(&loaded.policy)).unwrap();
        walk(&plan, "plan", &mut bad, &mut seen);
    }
    assert!(bad.is_empty(), "number fields that are not numbers: {bad:?}");
    assert!(seen > 10, "only {seen} number fields seen");
}

// ---------------------------------------------------------------- test 5: resource limits

/// Runs `pgbr-policy validate` on `text` with 1 GiB of address space and 60 s.
fn validate_bounded(dir: &Path, name: &str, text: &str) -> (i32, String, std::time::Duration) {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let started = std::time::Instant::now();
    let out = Command::new("bash")
        .args(["-c", "ulimit -v 1048576; exec timeout 60 \"$0\" validate \"$1\""])
        .arg(bin())
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        started.elapsed(),
    )
}

/// No panic, no hang, bounded memory, bounded messages on inputs built to exhaust the
/// parser or the renderer: the 4 MiB cap, huge flat lists, deep nesting, alias bombs
/// and merge keys, huge keys and values, the cluster cap; and many valid clusters
/// render in linear time (the renderer once took 33 s for 200 clusters).
#[test]
fn resource_limits_hold() {
    let dir = tempdir();
    let cap = 4 * 1024 * 1024;
    let laughs = "version: 1\ndefaults: &d0\n  pgbackrest: {commands: [check]}\n".to_owned()
        + &(1..10)
            .map(|i| format!("x{i}: &d{i} [{}]\n", vec![format!("*d{}", i - 1); 10].join(", ")))
            .collect::<String>()
        + "clusters: [*d9]\n";
    let many_clusters = |n: usize| {
        let mut s =
            String::from("version: 1\ndefaults: {postgres: {major: 15}, pgbackrest: {version: \"2.45\"}}\nclusters:\n");
        for i in 0..n {
            s.push_str(&format!(
                "  - {{name: c{i}, pgbackrest: {{tls: {{port: {}}}}}}}\n",
                1000 + i
            ));
        }
        s
    };
    let cases: Vec<(&str, String)> = vec![
        ("over-the-cap", "#".repeat(cap + 1)),
        (
            "huge-flow-list",
            format!(
                "version: 1\nclusters:\n  - name: big\n    postgres: {{major: 15}}\n    pgbackrest:\n      commands: [{}]\n",
                vec!["check"; 260_000].join(", ")
            )
            .chars()
            .take(cap - 16)
            .collect(),
        ),
        ("deep-flow", format!("version: 1\nclusters: {}{}\n", "[".repeat(100_000), "]".repeat(100_000))),
        (
            "deep-block",
            "version: 1\ndefaults:\n".to_owned() + &(1..1500).map(|i| format!("{}k:\n", " ".repeat(i))).collect::<String>(),
        ),
        ("laughs", laughs),
        (
            "many-aliases",
            "version: 1\nclusters:\n  - &c {name: a, postgres: {major: 15}}\n".to_owned() + &"  - *c\n".repeat(200_000),
        ),
        (
            "merge-keys",
            "version: 1\nclusters:\n  - &c {name: a, postgres: {major: 15}}\n".to_owned()
                + &(0..50_000).map(|i| format!("  - {{<<: *c, name: n{i}}}\n")).collect::<String>(),
        ),
        ("long-quoted-key", format!("version: 1\n\"{}\": 1\nclusters: []\n", "k".repeat(cap - 100))),
        ("long-plain-key", format!("version: 1\n{}: 1\nclusters: []\n", "k".repeat(1000))),
        ("long-value", format!("version: 1\nclusters:\n  - name: \"{}\"\n", "a".repeat(cap - 100))),
        ("too-many-clusters", many_clusters(1001)),
    ];
    let mut worst = std::time::Duration::ZERO;
    for (name, text) in &cases {
        assert!(text.len() <= cap + 1, "{name} is {} bytes", text.len());
        let (code, stderr, took) = validate_bounded(dir.path(), name, text);
        worst = worst.max(took);
        assert_eq!(
            code, 2,
            "{name}: exit {code} after {took:?} (124: timeout; 134/137: out of memory)\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        assert!(stderr.len() < 4096, "{name}: {} bytes of messages", stderr.len());
        assert!(
            !stderr.chars().any(|c| c.is_control() && c != '\n'),
            "{name}: {stderr:?}"
        );
    }
    // The largest valid policy: 4 MiB, nearly all comment.
    let valid = format!("{MINIMAL}{}", "# padding\n".repeat((cap - MINIMAL.len()) / 10));
    let (code, stderr, _) = validate_bounded(dir.path(), "valid-4mib", &valid);
    assert_eq!(code, 0, "{stderr}");
    // Aliases in value positions are fine in moderation.
    let aliases = "version: 1\nclusters:\n  - name: a\n    postgres: {major: 15}\n    pgbackrest: {version: \"2.45\", commands: &c0 [check, backup]}\n    role: {name: &r0 x}\n  - {name: b, postgres: {major: 15}, pgbackrest: {version: \"2.45\", commands: *c0}, role: {name: *r0}}\n";
    let (code, stderr, _) = validate_bounded(dir.path(), "aliases-in-values", aliases);
    assert_eq!(code, 0, "{stderr}");
    let started = std::time::Instant::now();
    pgbr_policy::compile(valid.as_bytes(), "policy.yaml").unwrap();
    // Many valid clusters: linear, so 150 take a few seconds even in a debug build.
    let tree = pgbr_policy::compile(many_clusters(150).as_bytes(), "policy.yaml").unwrap();
    assert!(tree.len() > 150 * 10);
    let took = started.elapsed();
    assert!(
        took.as_secs() < 40,
        "rendering 150 clusters took {took:?}: quadratic again?"
    );
    report(&format!(
        "hostile resource limits: {} crafted inputs refused within 1 GiB and {:.1}s each at worst; a 4 MiB policy and 150 clusters rendered in {:.1}s",
        cases.len(),
        worst.as_secs_f64(),
        took.as_secs_f64()
    ));
}

// ---------------------------------------------------------------- test 6: the policy's file name

/// The policy's file name is printed in messages (it no longer reaches the artifacts'
/// headers): hostile names either are refused (exit 2, nothing written) or leave scripts
/// that parse and run `--help` in a throw-away root without side effects.
#[test]
#[ignore = "tier root: needs root (users, owners, namespaces) (bash .ci/run runs every tier)"]
fn hostile_policy_file_names() {
    let names = [
        "$(touch pwned).yaml",
        "`touch pwned`.yaml",
        "it's \"quoted\"; rm -rf x.yaml",
        "-rf.yaml",
        "*.yaml",
        "%p %n.yaml",
        "trailing-backslash\\",
        "new\nline.yaml",
        "carriage\rreturn.yaml",
        "esc\u{1b}[2J.yaml",
        "rtl\u{202e}lmay.yaml",
        "e\u{301}\u{435}.yaml",
    ];
    let (mut rendered, mut refused) = (0, 0);
    for name in names {
        let dir = tempdir();
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            MINIMAL.replace("major: 15", "major: 15\n    pgbackrest: {version: \"2.45\"}"),
        )
        .unwrap();
        let out_dir = dir.path().join("out");
        let (code, _, stderr) = run(&["generate", path.to_str().unwrap(), "--out", out_dir.to_str().unwrap()]);
        assert!(!stderr.contains("panicked"), "{name:?}: {stderr}");
        if code != 0 {
            assert_eq!(code, 2, "{name:?}: {stderr}");
            assert!(stderr.contains("rename the file"), "{name:?}: {stderr}");
            assert!(!out_dir.exists(), "{name:?}: something was written");
            refused += 1;
            continue;
        }
        rendered += 1;
        let sandbox = dir.path().join("root");
        std::fs::create_dir(&sandbox).unwrap();
        for script in ["apply", "verify", "rollback"] {
            let script = out_dir.join(format!("main/shell/{script}.sh"));
            let check = Command::new("bash").arg("-n").arg(&script).output().unwrap();
            assert!(
                check.status.success(),
                "{name:?}: bash -n: {}",
                String::from_utf8_lossy(&check.stderr)
            );
            let out = in_throwaway_root(&sandbox, &[script.to_str().unwrap(), "--help"], &[]);
            assert!(
                out.status.success() && out.stderr.is_empty(),
                "{name:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(leftovers(&sandbox, &[]).is_empty(), "{name:?}: --help left files");
        let manifest = std::fs::read_to_string(out_dir.join("MANIFEST.sha256")).unwrap();
        assert!(
            manifest
                .lines()
                .all(|l| (l.starts_with("# mode ") || l.len() > 66) && !l.contains(name)),
            "{name:?}: {manifest}"
        );
    }
    report(&format!(
        "hostile policy file names: {} tried, {refused} refused (exit 2, nothing written), {rendered} rendered inert",
        names.len()
    ));
    assert!(rendered > 0 && refused > 0);
}
