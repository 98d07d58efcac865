//! Issue 19, the command line as a new user meets it: broken pipes, `-` for standard
//! input and output, JSON for every reporting command (errors included), --quiet,
//! --color, help text for every option, the JSON Schema, completions and the man page,
//! and errors that name the field, the value found and what was expected.

use crate::support::*;
use std::fs;
use std::io::Write as _;
use std::process::{Command, Stdio};

/// Runs the tool with `stdin` as standard input.
fn run_stdin(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the tool with `env` set, `env_remove` removed.
fn run_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(bin());
    command.args(args).env_remove("NO_COLOR");
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Standard output closed before the tool writes (as `| head -0` does): the exit code
/// is the command's own (0 in sync / success, 1 drift), nothing is printed on stderr.
fn closed_stdout(args: &[&str]) -> (i32, String) {
    let mut child = Command::new(bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn fleet_policy(dir: &std::path::Path) -> std::path::PathBuf {
    let mut text = String::from("version: 1\nclusters:\n");
    for i in 0..20 {
        text.push_str(&format!(
            "  - name: c{i}\n    postgres: {{major: 15, port: {}}}\n",
            5432 + i
        ));
    }
    write_policy(dir, &text)
}

#[test]
fn a_closed_pipe_is_a_quiet_exit_with_the_commands_own_code() {
    let dir = tempdir();
    let policy = fleet_policy(dir.path());
    let p = policy.to_str().unwrap();
    let (code, err) = closed_stdout(&["explain", p]);
    assert_eq!((code, err.as_str()), (0, ""), "explain | head");
    let out = dir.path().join("out");
    let other = tempdir();
    let other_policy = write_policy(other.path(), MINIMAL);
    assert_eq!(
        run(&[
            "generate",
            other_policy.to_str().unwrap(),
            "--out",
            out.to_str().unwrap()
        ])
        .0,
        0
    );
    // Drift everywhere: the whole fleet is missing from the tree.
    let (code, err) = closed_stdout(&["diff", p, "--against", out.to_str().unwrap()]);
    assert_eq!((code, err.as_str()), (1, ""), "diff | head");
    let (code, err) = closed_stdout(&["check", p, "--against", out.to_str().unwrap()]);
    assert_eq!((code, err.as_str()), (1, ""), "check | head");
}

#[test]
fn dash_is_standard_output_for_init_and_standard_input_for_a_policy() {
    let dir = tempdir();
    let (code, stdout, err) = Command::new(bin())
        .args(["init", "-"])
        .current_dir(dir.path())
        .output()
        .map(|o| {
            (
                o.status.code().unwrap(),
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })
        .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("clusters:"), "{stdout}");
    assert!(!dir.path().join("-").exists(), "init - wrote a file named `-`");

    let (code, stdout, err) = run_stdin(&["validate", "-"], MINIMAL);
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(stdout.contains("valid (1 cluster)"), "{stdout}");
    let (code, _, err) = run_stdin(&["validate", "-"], "version: 1\nclusters: 3\n");
    assert_eq!(code, 2);
    assert!(err.contains("<stdin>:2:"), "{err}");
    let (code, stdout, err) = run_stdin(&["explain", "-"], MINIMAL);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("File permissions"), "{stdout}");
    let out = dir.path().join("out");
    let (code, _, err) = run_stdin(&["generate", "-", "--out", out.to_str().unwrap()], MINIMAL);
    assert_eq!(code, 0, "{err}");
    let (code, stdout, err) = run_stdin(&["check", "-", "--against", out.to_str().unwrap()], MINIMAL);
    assert_eq!(code, 0, "{stdout}{err}");
}

#[test]
fn a_usage_error_with_format_json_is_a_json_error_document() {
    // A missing required argument: clap reports it before any command runs.
    let (code, stdout, _) = run(&["check", "--format", "json"]);
    assert_eq!(code, 2);
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    assert_eq!(doc["schema"], "pgbr-policy/error/v1");
    let message = doc["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("required"), "{message}");
    // Without --format json it stays clap's text on stderr.
    let (code, stdout, stderr) = run(&["check"]);
    assert_eq!(code, 2);
    assert!(stdout.is_empty() && stderr.contains("required"), "{stderr}");
}

#[test]
fn json_for_validate_explain_diff_check_and_for_errors() {
    let dir = tempdir();
    let policy = write_policy(dir.path(), MINIMAL);
    let p = policy.to_str().unwrap();
    let (code, stdout, _) = run(&["validate", p, "--format", "json"]);
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    assert_eq!(doc["schema"], "pgbr-policy/validate/v1");
    assert_eq!(doc["valid"], true);
    assert_eq!(doc["clusters"], serde_json::json!(["main"]));
    assert_eq!(doc["warnings"], serde_json::json!([]));

    let (code, stdout, _) = run(&["explain", p, "--format", "json"]);
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    assert_eq!(doc["schema"], "pgbr-policy/explain/v1");
    let cluster = &doc["clusters"][0];
    assert_eq!(cluster["name"], "main");
    let data = cluster["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/var/lib/postgresql/15/main")
        .expect("the data directory row");
    assert_eq!(data["mode"], "0750");
    assert!(!cluster["database"].as_array().unwrap().is_empty(), "{stdout}");

    // Errors: one JSON document on standard output, exit 2.
    let bad = dir.path().join("bad.yaml");
    fs::write(
        &bad,
        "version: 1\nclusters:\n  - name: main\n    postgres: {major: fifteen}\n",
    )
    .unwrap();
    for command in ["validate", "explain", "check", "diff"] {
        let mut args = vec![command, bad.to_str().unwrap(), "--format", "json"];
        if command == "check" || command == "diff" {
            args.extend(["--against", "/nonexistent"]);
        }
        let (code, stdout, _) = run(&args);
        assert_eq!(code, 2, "{command}");
        let doc: serde_json::Value =
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{command}: {e}: {stdout:?}"));
        assert_eq!(doc["schema"], "pgbr-policy/error/v1", "{command}");
        let e = &doc["errors"][0];
        assert_eq!(e["field"], "clusters[0].postgres.major", "{stdout}");
        assert_eq!(e["line"], 4, "{stdout}");
        assert_eq!(e["found"], "fifteen", "{stdout}");
    }
    // An error that is not about the policy's content is an error document too.
    let (code, stdout, _) = run(&["check", p, "--against", "/nonexistent", "--format", "json"]);
    assert_eq!(code, 2);
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    assert_eq!(doc["schema"], "pgbr-policy/error/v1");
    assert!(
        doc["errors"][0]["message"].as_str().unwrap().contains("/nonexistent"),
        "{stdout}"
    );
}

#[test]
fn quiet_prints_nothing_but_errors() {
    let dir = tempdir();
    let policy = write_policy(dir.path(), MINIMAL);
    let p = policy.to_str().unwrap();
    let out = dir.path().join("out");
    let (code, stdout, err) = run(&["--quiet", "generate", p, "--out", out.to_str().unwrap()]);
    assert_eq!((code, stdout.as_str(), err.as_str()), (0, "", ""));
    let (code, stdout, err) = run(&["validate", "-q", p]);
    assert_eq!((code, stdout.as_str(), err.as_str()), (0, "", ""));
    let (code, stdout, err) = run(&["check", "-q", p, "--against", out.to_str().unwrap()]);
    assert_eq!((code, stdout.as_str(), err.as_str()), (0, "", ""));
    // Drift is still told by the exit code; errors are still printed.
    fs::write(out.join("main/sql/apply.sql"), "x\n").unwrap();
    let (code, stdout, _) = run(&["check", "-q", p, "--against", out.to_str().unwrap()]);
    assert_eq!((code, stdout.as_str()), (1, ""));
    let (code, _, err) = run(&["validate", "-q", "/nonexistent.yaml"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent.yaml"), "{err}");
}

#[test]
fn color_always_never_and_no_color_only_when_non_empty() {
    let dir = tempdir();
    let policy = write_policy(dir.path(), MINIMAL);
    let p = policy.to_str().unwrap();
    let out = dir.path().join("out");
    assert_eq!(run(&["generate", p, "--out", out.to_str().unwrap()]).0, 0);
    fs::write(out.join("main/sql/apply.sql"), "x\n").unwrap();
    let o = out.to_str().unwrap();
    let (code, stdout, _) = run_env(&["diff", p, "--against", o, "--color", "always"], &[]);
    assert_eq!(code, 1);
    assert!(stdout.contains("\x1b[32m"), "--color always: {stdout}");
    let (_, stdout, _) = run_env(&["diff", p, "--against", o, "--color", "never"], &[]);
    assert!(!stdout.contains('\x1b'), "--color never");
    // On a terminal (script(1) gives one): NO_COLOR= (empty) does not disable colour,
    // NO_COLOR=1 does.
    let line = format!("{} diff {p} --against {o}", bin());
    let tty = |no_color: &str| {
        let out = Command::new(require_tool("script", "bsdutils"))
            .args(["-qec", &line, "/dev/null"])
            .env("NO_COLOR", no_color)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(tty("").contains("\x1b[32m"), "NO_COLOR empty must not disable colour");
    assert!(!tty("1").contains("\x1b["), "NO_COLOR=1 disables colour");
}

#[test]
fn explain_on_a_terminal_prints_no_markdown_escapes() {
    let policy = root().join("examples/debian-pg15/policy.yaml");
    let (code, stdout, _) = run_env(&["explain", policy.to_str().unwrap(), "--color", "always"], &[]);
    assert_eq!(code, 0);
    assert!(stdout.contains("[041] archive.info"), "{stdout}");
    assert!(!stdout.contains("\\["), "{stdout}");
    assert!(!stdout.contains("archive\\_command"), "{stdout}");
    // Piped (for a ticket): Markdown, escaped.
    let (_, stdout, _) = run_env(&["explain", policy.to_str().unwrap()], &[]);
    assert!(stdout.contains("\\[041\\]"), "{stdout}");
}

#[test]
fn every_argument_and_option_has_help_text() {
    use clap::CommandFactory as _;
    let command = pgbr_policy::cli::Cli::command();
    let mut missing = Vec::new();
    fn visit(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                missing.push(format!("{path} {id}"));
            }
        }
        for sub in cmd.get_subcommands() {
            if sub.get_about().is_none() {
                missing.push(format!("{path} {} (the command)", sub.get_name()));
            }
            visit(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }
    visit(&command, "pgbr-policy", &mut missing);
    assert!(missing.is_empty(), "no help text: {missing:#?}");
}

#[test]
fn completions_and_man_page_come_from_the_clap_definitions() {
    for shell in ["bash", "zsh", "fish"] {
        let (code, stdout, err) = run(&["completions", shell]);
        assert_eq!(code, 0, "{err}");
        assert!(
            stdout.contains("pgbr-policy") && stdout.contains("against"),
            "{shell}: {stdout}"
        );
    }
    let (code, stdout, _) = run(&["man"]);
    assert_eq!(code, 0);
    assert!(
        stdout.starts_with(".ie") || stdout.contains(".TH pgbr-policy"),
        "{stdout}"
    );
    assert!(
        stdout.contains("check") && stdout.contains("EXIT") || stdout.contains("Exit status"),
        "{stdout}"
    );
}

#[test]
fn the_schema_validates_every_example_and_init_points_editors_at_it() {
    let (code, stdout, err) = run(&["schema"]);
    assert_eq!(code, 0, "{err}");
    let schema: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(schema["$id"], pgbr_policy::schema::SCHEMA_ID);
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler.add_resource("policy.json", schema).unwrap();
    let index = compiler.compile("policy.json", &mut schemas).unwrap();
    let mut policies: Vec<std::path::PathBuf> = examples().iter().map(|e| e.join("policy.yaml")).collect();
    policies.push(root().join("src/starter-policy.yaml"));
    for path in &policies {
        let value: serde_json::Value = serde_saphyr::from_str(&fs::read_to_string(path).unwrap()).unwrap();
        if let Err(e) = schemas.validate(&value, index) {
            panic!("{} does not validate against the schema: {e:#}", path.display());
        }
    }
    // And it can fail: a typo'd key and a wrong type are caught.
    for bad in [
        "version: 1\nclusters:\n  - name: main\n    postgres: {majr: 15}\n",
        "version: 1\nclusters:\n  - name: main\n    postgres: {major: fifteen}\n",
        "version: 1\nclusters: {name: main}\n",
    ] {
        let value: serde_json::Value = serde_saphyr::from_str(bad).unwrap();
        assert!(schemas.validate(&value, index).is_err(), "{bad}");
    }
    let (code, stdout, _) = run(&["init"]);
    assert_eq!(code, 0);
    assert!(
        stdout.starts_with("# yaml-language-server: $schema=pgbr-policy.schema.json\n"),
        "{stdout}"
    );
}

#[test]
fn type_errors_name_the_field_the_value_found_and_what_was_expected() {
    let dir = tempdir();
    let check = |text: &str, needles: &[&str]| {
        let policy = write_policy(dir.path(), text);
        let (code, _, err) = run(&["validate", policy.to_str().unwrap()]);
        assert_eq!(code, 2, "{err}");
        for needle in needles {
            assert!(err.contains(needle), "{needle:?} not in:\n{err}");
        }
        for serde_speak in ["invalid u32", "sequence start", "DuplicateKeyPolicy"] {
            assert!(!err.contains(serde_speak), "{serde_speak:?} in:\n{err}");
        }
    };
    check(
        "version: 1\nclusters:\n  - name: main\n    postgres:\n      major: fifteen\n",
        &[
            "policy.yaml:5:14: clusters[0].postgres.major:",
            "found `fifteen`",
            "expected a whole number",
        ],
    );
    check(
        "version: 1\nclusters:\n  - name: main\n    postgres: {major: 15, port: -1}\n",
        &["clusters[0].postgres.port:", "found `-1`"],
    );
    check(
        "version: 1\nclusters:\n  name: main\n",
        &["policy.yaml:3:3: clusters:", "expected a list"],
    );
    check(
        "version: 1\nclusters:\n  - name: main\n    postgres:\n      majr: 15\n",
        &[
            "policy.yaml:5:7: clusters[0].postgres:",
            "unknown key `majr`",
            "did you mean `major`?",
        ],
    );
    check(
        "version: 1\nclusters:\n  - name: main\n    postgres:\n      major: 15\n      major: 16\n",
        &["policy.yaml:6:7: clusters[0].postgres:", "`major` is given twice"],
    );
    check(
        "version: 1\nclusters:\n  - name: main\n    pgbackrest:\n      commands: backup\n    postgres: {major: 15}\n",
        &["clusters[0].pgbackrest.commands:", "found `backup`", "expected a list"],
    );
    check(
        "version: 1\nclusters:\n  - name: main\n    postgres: {major: 15}\n  - name: main\n    postgres: {major: 15}\n",
        &[
            "policy.yaml:5:11: clusters[1].name:",
            "`main` is used by two clusters, this one and clusters[0] (line 3)",
        ],
    );
}
