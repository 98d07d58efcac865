//! The Ansible target: every example's generated tree, and a two-cluster policy full of
//! names that need care, pass `ansible-lint --profile production` and
//! `ansible-playbook --syntax-check`; a planted violation makes ansible-lint fail (so a
//! pass means something); and names holding `{{ }}` reach Ansible's variables intact,
//! never evaluated as templates. Real tools, no mocks: missing ones fail the test.

use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Generates `policy` into `out` and returns the `ansible/` directory of the tree.
fn generate(policy: &Path, out: &Path) -> PathBuf {
    let (code, _, err) = run(&["generate", policy.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let dir = out.join("ansible");
    assert!(
        dir.join("playbook.yml").is_file(),
        "no ansible/playbook.yml in {}",
        out.display()
    );
    dir
}

/// Runs a tool in `dir` with Ansible's output plain; returns (success, stdout + stderr).
fn tool(dir: &Path, program: &Path, args: &[&str]) -> (bool, String) {
    outcome(
        Command::new(program)
            .args(args)
            .current_dir(dir)
            .env("ANSIBLE_NOCOLOR", "1")
            .env("NO_COLOR", "1")
            .env("ANSIBLE_RETRY_FILES_ENABLED", "0"),
    )
}

fn ansible_lint(dir: &Path) -> (bool, String) {
    let lint = require_tool("ansible-lint", "ansible-lint");
    // No path argument: given `.`, ansible-lint 6.13 lints one file and says it passed.
    tool(dir, &lint, &["--offline", "--profile", "production", "--nocolor"])
}

fn assert_tree_clean(dir: &Path) {
    let (ok, text) = ansible_lint(dir);
    assert!(ok, "ansible-lint --profile production {}:\n{text}", dir.display());
    // A pass that linted nothing would prove nothing: every YAML file must be counted.
    let yaml_files = files_below(dir).iter().filter(|f| f.ends_with(".yml")).count();
    let linted: usize = text
        .lines()
        .rfind(|l| l.contains("Passed"))
        .and_then(|l| l.split(" files").next())
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("ansible-lint did not say how many files it linted:\n{text}"));
    assert!(
        text.contains("Passed") && linted >= yaml_files,
        "ansible-lint linted {linted} files of {yaml_files}:\n{text}"
    );
    let playbook = require_tool("ansible-playbook", "ansible");
    let (ok, text) = tool(dir, &playbook, &["--syntax-check", "-i", "localhost,", "playbook.yml"]);
    assert!(ok, "ansible-playbook --syntax-check {}:\n{text}", dir.display());
}

#[test]
#[ignore = "tier ansible: needs ansible-playbook and ansible-lint (bash .ci/run runs every tier)"]
fn every_example_passes_ansible_lint_and_syntax_check() {
    let dir = tempdir();
    for example in examples() {
        let out = dir.path().join(example.file_name().unwrap());
        assert_tree_clean(&generate(&example.join("policy.yaml"), &out));
    }
}

/// Two clusters (one playbook play each), scram-sha-256 from an environment variable,
/// names with quotes, spaces, `$()` and Jinja's own delimiters.
const HOSTILE: &str = r#"version: 1
clusters:
  - name: a-1
    postgres: {major: 15}
    role:
      name: "it's {{ 7 * 6 }} $(id) `x`"
      database: "my db; {% raw %}"
    pgbackrest: {stanza: a1}
  - name: b_2
    postgres: {major: 14, port: 5433}
    backup_user: {name: bkp2}
    role:
      name: "b {{ lookup('env', 'HOME') }}"
      auth: scram-sha-256
      password_env: PGBR_TEST_PASSWORD
    pgbackrest: {stanza: b2, tls: {port: 8433}}
"#;

#[test]
#[ignore = "tier ansible: needs ansible-playbook and ansible-lint (bash .ci/run runs every tier)"]
fn hostile_names_keep_the_tree_clean() {
    let dir = tempdir();
    let policy = write_policy(dir.path(), HOSTILE);
    let tree = generate(&policy, &dir.path().join("out"));
    assert_tree_clean(&tree);
    let playbook = std::fs::read_to_string(tree.join("playbook.yml")).unwrap();
    assert!(playbook.contains("hosts: \"pgbr_a_1\"") && playbook.contains("hosts: \"pgbr_b_2\""));
}

/// What Ansible itself reads from a cluster's variables file: `ansible -m debug` (an
/// action on the controller, nothing runs on a host) prints the variable as JSON.
fn ansible_var(vars_file: &Path, name: &str) -> serde_json::Value {
    let ansible = require_tool("ansible", "ansible");
    let out = Command::new(ansible)
        .args([
            "localhost",
            "-i",
            "localhost,",
            "-c",
            "local",
            "-m",
            "ansible.builtin.debug",
        ])
        .arg("-a")
        .arg(format!("var={name}"))
        .arg("-e")
        .arg(format!("@{}", vars_file.display()))
        .env("ANSIBLE_LOAD_CALLBACK_PLUGINS", "1")
        .env("ANSIBLE_STDOUT_CALLBACK", "json")
        .env("ANSIBLE_NOCOLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ansible debug {name}:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}:\n{stdout}"));
    json["plays"][0]["tasks"][0]["hosts"]["localhost"][name].clone()
}

#[test]
#[ignore = "tier ansible: needs ansible-playbook and ansible-lint (bash .ci/run runs every tier)"]
fn names_reach_ansible_intact_and_unevaluated() {
    let dir = tempdir();
    let policy = write_policy(dir.path(), HOSTILE);
    let tree = generate(&policy, &dir.path().join("out"));
    let a = tree.join("clusters/a-1.yml");
    assert_eq!(ansible_var(&a, "pgbr_policy_role_name"), "it's {{ 7 * 6 }} $(id) `x`");
    assert_eq!(ansible_var(&a, "pgbr_policy_role_database"), "my db; {% raw %}");
    assert_eq!(
        ansible_var(&a, "pgbr_policy_function_objs"),
        "pg_backup_start(text:boolean),pg_backup_stop(boolean),pg_create_restore_point(text),pg_switch_wal()"
    );
    let b = tree.join("clusters/b_2.yml");
    assert_eq!(
        ansible_var(&b, "pgbr_policy_role_name"),
        "b {{ lookup('env', 'HOME') }}"
    );
    assert_eq!(ansible_var(&b, "pgbr_policy_role_password_env"), "PGBR_TEST_PASSWORD");
    assert_eq!(ansible_var(&b, "pgbr_policy_pg_port"), 5433);
    assert_eq!(
        ansible_var(&b, "pgbr_policy_function_signatures")[0],
        "pg_catalog.pg_start_backup(text, boolean, boolean)"
    );
}

#[test]
#[ignore = "tier ansible: needs ansible-playbook and ansible-lint (bash .ci/run runs every tier)"]
fn a_planted_violation_fails_ansible_lint() {
    let dir = tempdir();
    let example = &examples()[0];
    let tree = generate(&example.join("policy.yaml"), dir.path());
    let tasks = tree.join("roles/pgbr_policy/tasks/configs.yml");
    let text = std::fs::read_to_string(&tasks).unwrap();
    assert!(text.contains("ansible.builtin.copy:"));
    // A short module name: the fqcn rule of the production profile must catch it.
    std::fs::write(&tasks, text.replacen("ansible.builtin.copy:", "copy:", 1)).unwrap();
    let (ok, text) = ansible_lint(&tree);
    assert!(!ok, "ansible-lint passed a tree with a short module name:\n{text}");
    assert!(text.contains("fqcn"), "ansible-lint failed for another reason:\n{text}");
}

#[test]
#[ignore = "tier ansible: needs ansible-playbook and ansible-lint (bash .ci/run runs every tier)"]
fn the_role_refuses_a_patroni_cluster_before_it_does_anything() {
    let dir = tempdir();
    let example = examples()
        .into_iter()
        .find(|e| e.ends_with("patroni-pg15"))
        .expect("examples/patroni-pg15");
    let ansible = generate(&example.join("policy.yaml"), &dir.path().join("out"));
    // The play of cluster pg15-patroni targets the inventory group pgbr_pg15_patroni.
    let inventory = dir.path().join("inventory.ini");
    std::fs::write(&inventory, "[pgbr_pg15_patroni]\nlocalhost ansible_connection=local\n").unwrap();
    let playbook = require_tool("ansible-playbook", "ansible");
    let (ok, text) = tool(
        &ansible,
        &playbook,
        &["-i", inventory.to_str().unwrap(), "playbook.yml", "--check"],
    );
    assert!(!ok, "the role ran on a Patroni cluster:\n{text}");
    assert!(text.contains("managed by Patroni"), "{text}");
    // It stopped at its first task (after Ansible's check of the role's arguments):
    // nothing changed, nothing else ran.
    assert!(text.contains("changed=0") && text.contains("failed=1"), "{text}");
    assert!(!text.contains("Preflight | root on the database host"), "{text}");
}
