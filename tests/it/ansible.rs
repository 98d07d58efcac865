//! The Ansible target: every example's generated tree, and a two-cluster policy full of
//! names that need care, pass `ansible-lint --profile production` and
//! `ansible-playbook --syntax-check`; a planted violation makes ansible-lint fail (so a
//! pass means something); the role is a thin orchestrator (it copies the cluster's tree
//! and runs its apply.sh step by step; no plan value and no host algorithm of its own);
//! `--check` leaves nothing on the host. Real tools, no mocks: missing ones fail the test.

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
fn the_variables_reach_ansible_intact_and_the_plan_stays_in_the_tree() {
    let dir = tempdir();
    let policy = write_policy(dir.path(), HOSTILE);
    let tree = generate(&policy, &dir.path().join("out"));
    let a = tree.join("clusters/a-1.yml");
    assert_eq!(ansible_var(&a, "pgbr_policy_cluster"), "a-1");
    assert_eq!(ansible_var(&a, "pgbr_policy_patroni"), false);
    assert_eq!(ansible_var(&a, "pgbr_policy_password_env"), "");
    let b = tree.join("clusters/b_2.yml");
    assert_eq!(ansible_var(&b, "pgbr_policy_cluster"), "b_2");
    assert_eq!(ansible_var(&b, "pgbr_policy_password_env"), "PGBR_TEST_PASSWORD");
    // The role carries no copy of the plan: the names with `{{ }}` are only in the
    // cluster trees it copies (shell-quoted in shell/lib.sh), never where Ansible reads them.
    for file in files_below(&tree) {
        let text = std::fs::read_to_string(tree.join(&file)).unwrap();
        for name in ["7 * 6", "lookup('env', 'HOME')", "my db"] {
            assert!(!text.contains(name), "{} holds a value of the plan ({name})", file);
        }
    }
    let plan = std::fs::read_to_string(dir.path().join("out/a-1/shell/lib.sh")).unwrap();
    assert!(
        plan.contains("7 * 6"),
        "the role name is not in the tree the role copies"
    );
}

/// The modules the role may use: preflight checks, the copy of the tree, apply.sh.
const ROLE_MODULES: &[&str] = &[
    "ansible.builtin.fail",
    "ansible.builtin.assert",
    "ansible.builtin.stat",
    "ansible.builtin.file",
    "ansible.builtin.copy",
    "ansible.builtin.tempfile",
    "ansible.builtin.command",
    "ansible.builtin.debug",
];

/// The role has no host algorithm of its own: it uses only the modules above, every
/// command it runs is one step of the copied apply.sh (each step once, in apply.sh's
/// order), and each step reports a change exactly when apply.sh's last line does.
#[test]
fn the_role_only_copies_the_tree_and_runs_apply_sh_step_by_step() {
    let dir = tempdir();
    let example = &examples()[0];
    let tree = generate(&example.join("policy.yaml"), dir.path());
    let role = tree.join("roles/pgbr_policy");
    let task_files: Vec<_> = files_below(&role.join("tasks"));
    assert_eq!(task_files.len(), 1, "{task_files:?}");
    assert!(
        !role.join("handlers").exists(),
        "the role has handlers (apply.sh restarts)"
    );
    let text = std::fs::read_to_string(role.join("tasks").join(&task_files[0])).unwrap();
    let mut modules = Vec::new();
    for line in text.lines() {
        let key = line.trim_start().trim_start_matches("- ").trim_end();
        if let Some(module) = key.strip_suffix(':') {
            if module.matches('.').count() == 2 && !module.contains(' ') {
                modules.push(module.to_owned());
            }
        }
    }
    assert!(modules.len() > 10, "no modules found in tasks/main.yml: {modules:?}");
    for m in &modules {
        assert!(
            ROLE_MODULES.contains(&m.as_str()),
            "the role uses {m}: a host algorithm of its own?"
        );
    }
    let steps: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split("'/shell/apply.sh', '--step', '").nth(1))
        .map(|rest| rest.split('\'').next().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "os-user",
            "ssh-key",
            "paths",
            "data-directory",
            "configs",
            "tls",
            "sql",
            "password",
            "pg_hba",
            "tls-server",
            "stanza",
            "archive",
            "schedule",
            "restart"
        ]
    );
    assert_eq!(
        modules.iter().filter(|m| *m == "ansible.builtin.command").count(),
        steps.len(),
        "a command that is not a step of apply.sh"
    );
    assert_eq!(
        text.matches("changed_when: \"'[finish] no change' not in pgbr_policy_step_")
            .count(),
        steps.len()
    );
}

#[test]
#[ignore = "tier ansible: needs ansible-playbook and ansible-lint (bash .ci/run runs every tier)"]
fn a_planted_violation_fails_ansible_lint() {
    let dir = tempdir();
    let example = &examples()[0];
    let tree = generate(&example.join("policy.yaml"), dir.path());
    let tasks = tree.join("roles/pgbr_policy/tasks/main.yml");
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
    // nothing changed, nothing else ran (no tree copied, no step of apply.sh).
    assert!(text.contains("changed=0") && text.contains("failed=1"), "{text}");
    assert!(!text.contains("Tree |") && !text.contains("Step "), "{text}");
}

/// `--check` runs apply.sh --dry-run from a scratch copy of the tree and removes it
/// whatever happens: here the first step fails (apply.sh's preflight: no data
/// directory), and the host keeps no copy of the tree, no scratch directory, no state.
#[test]
#[ignore = "tier ansible: needs root and ansible-playbook (bash .ci/run runs every tier)"]
fn check_mode_leaves_nothing_on_the_host_even_when_a_step_fails() {
    let dir = tempdir();
    let cluster = "it-ansible-check";
    let data = dir.path().join("no-such-data");
    let policy = write_policy(
        dir.path(),
        &format!(
            "version: 1\nclusters:\n  - name: {cluster}\n    postgres: {{major: 15, data_directory: {}}}\n",
            data.display()
        ),
    );
    let ansible = generate(&policy, &dir.path().join("out"));
    let inventory = dir.path().join("inventory.ini");
    std::fs::write(
        &inventory,
        "[pgbr_it_ansible_check]\nlocalhost ansible_connection=local\n",
    )
    .unwrap();
    let scratch = || -> Vec<String> {
        std::fs::read_dir("/run")
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("pgbr-policy-check."))
            .collect()
    };
    let trees = Path::new("/var/lib/pgbr-policy-ansible");
    let trees_existed = trees.exists();
    let before = scratch();
    let playbook = require_tool("ansible-playbook", "ansible");
    let (ok, text) = tool(
        &ansible,
        &playbook,
        &["-i", inventory.to_str().unwrap(), "playbook.yml", "--check"],
    );
    assert!(!ok, "the check run passed without a data directory:\n{text}");
    assert!(
        text.contains("Step os-user") && text.contains("no-such-data") && text.contains("failed=1"),
        "the first step did not fail with apply.sh's message:\n{text}"
    );
    assert!(text.contains("Check mode | remove the scratch directory"), "{text}");
    assert_eq!(scratch(), before, "a scratch directory was left in /run:\n{text}");
    assert!(!trees.join(cluster).exists(), "check mode copied the tree to the host");
    assert_eq!(trees.exists(), trees_existed, "check mode created {}", trees.display());
    assert!(!Path::new("/var/lib/pgbr-policy").join(cluster).exists());
}

/// The directory for the host's copies of the trees is root's: a link or a directory of
/// another user at its place is refused, never adopted (the place is moved here with an
/// extra variable, which outranks the role's own).
#[test]
#[ignore = "tier ansible: needs root and ansible-playbook (bash .ci/run runs every tier)"]
fn the_role_refuses_a_tree_directory_it_would_adopt() {
    let dir = tempdir();
    let cluster = "it-ansible-trees";
    // A data directory that does not exist: should the guard be missing, apply.sh's
    // preflight stops before it touches this host.
    let data = dir.path().join("no-such-data");
    let policy = write_policy(
        dir.path(),
        &format!(
            "version: 1\nclusters:\n  - name: {cluster}\n    postgres: {{major: 15, data_directory: {}}}\n",
            data.display()
        ),
    );
    let ansible = generate(&policy, &dir.path().join("out"));
    let inventory = dir.path().join("inventory.ini");
    std::fs::write(
        &inventory,
        "[pgbr_it_ansible_trees]\nlocalhost ansible_connection=local\n",
    )
    .unwrap();
    let target = dir.path().join("elsewhere");
    std::fs::create_dir(&target).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let foreign = dir.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).expect("chown: this test needs root");
    let playbook = require_tool("ansible-playbook", "ansible");
    for place in [&link, &foreign] {
        let (ok, text) = tool(
            &ansible,
            &playbook,
            &[
                "-i",
                inventory.to_str().unwrap(),
                "playbook.yml",
                "-e",
                &format!("pgbr_policy_host_trees={}", place.display()),
            ],
        );
        assert!(!ok, "the role adopted {}:\n{text}", place.display());
        assert!(
            text.contains("is not a directory owned by root") && text.contains("changed=0"),
            "{}: not refused before any change:\n{text}",
            place.display()
        );
        assert!(!text.contains("Step "), "{text}");
    }
    assert_eq!(
        std::fs::read_dir(&target).unwrap().count(),
        0,
        "something was copied through the link"
    );
    assert_eq!(std::fs::read_dir(&foreign).unwrap().count(), 0);
}
