//! The Ansible target: every example's generated tree, and a two-cluster policy full of
//! names that need care, pass `ansible-lint --profile production` on Debian's 6.13 and
//! on the current release from PyPI (scripts/ansible-lint-current), and
//! `ansible-playbook --syntax-check` with the collection built by `ansible-galaxy
//! collection build` and installed from its tarball; a planted violation makes both
//! ansible-lint versions fail (so a pass means something); the role is a thin
//! orchestrator (it copies the cluster's tree and runs its apply.sh, verify.sh or
//! rollback.sh; no plan value and no host algorithm of its own); `--check` and verify.yml
//! leave nothing on the host; the inventory group comes from the policy. Real tools, no
//! mocks: missing ones fail the test.

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

/// The current ansible-lint from PyPI, in its virtualenv (scripts/ansible-lint-current,
/// run by .ci/run, which exports its path).
fn current_lint() -> PathBuf {
    let path = std::env::var_os("PGBR_ANSIBLE_LINT_CURRENT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/pgbr-lab/ansible-lint-26.10.1/bin/ansible-lint"));
    assert!(
        path.is_file(),
        "{} is missing: run scripts/ansible-lint-current (.ci/run does)",
        path.display()
    );
    path
}

/// `ansible-galaxy collection build` of the tree's collection, then `ansible-galaxy
/// collection install` of the tarball (no Galaxy server) into `<tree>/../collections`;
/// returns that collections path.
fn install_collection(dir: &Path) -> PathBuf {
    let galaxy = require_tool("ansible-galaxy", "ansible");
    let dist = dir.parent().unwrap().join("dist");
    let (ok, text) = tool(
        dir,
        &galaxy,
        &[
            "collection",
            "build",
            "collections/ansible_collections/pgbr/policy",
            "--output-path",
            dist.to_str().unwrap(),
            "--force",
        ],
    );
    assert!(ok, "ansible-galaxy collection build:\n{text}");
    let tarball = std::fs::read_dir(&dist)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .unwrap_or_else(|| panic!("no tarball in {}:\n{text}", dist.display()));
    assert!(
        tarball
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("pgbr-policy-"),
        "{}",
        tarball.display()
    );
    let collections = dir.parent().unwrap().join("collections");
    let (ok, text) = tool(
        dir,
        &galaxy,
        &[
            "collection",
            "install",
            tarball.to_str().unwrap(),
            "-p",
            collections.to_str().unwrap(),
            "--force",
        ],
    );
    assert!(ok, "ansible-galaxy collection install:\n{text}");
    assert!(
        collections
            .join("ansible_collections/pgbr/policy/roles/pgbr_policy/tasks/main.yml")
            .is_file()
    );
    collections
}

/// ansible-playbook in the tree's ansible/ directory, the collection built and installed
/// from its tarball first (the playbooks name the role pgbr.policy.pgbr_policy).
fn playbook_run(dir: &Path, args: &[&str]) -> (bool, String) {
    let collections = install_collection(dir);
    let playbook = require_tool("ansible-playbook", "ansible");
    outcome(
        Command::new(playbook)
            .args(args)
            .current_dir(dir)
            .env("ANSIBLE_COLLECTIONS_PATH", collections)
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_RETRY_FILES_ENABLED", "0"),
    )
}

/// ansible-lint (the given one) in the tree's ansible/ directory, the collection installed.
fn ansible_lint_with(lint: &Path, dir: &Path, collections: &Path) -> (bool, String) {
    // No path argument: given `.`, ansible-lint 6.13 lints one file and says it passed.
    let mut path = lint.parent().unwrap().as_os_str().to_owned();
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    outcome(
        Command::new(lint)
            .args(["--offline", "--profile", "production", "--nocolor"])
            .current_dir(dir)
            .env("PATH", path)
            .env("ANSIBLE_COLLECTIONS_PATH", collections)
            .env("ANSIBLE_NOCOLOR", "1")
            .env("NO_COLOR", "1"),
    )
}

fn lints() -> Vec<PathBuf> {
    vec![require_tool("ansible-lint", "ansible-lint"), current_lint()]
}

/// How many files ansible-lint says it linted: 6.13 "Passed with production profile: 0
/// failure(s), 0 warning(s) on 20 files.", 26.x "Passed: ... in 17 files processed of 21
/// encountered. Profile 'production' was required, and it passed."
fn linted_files(text: &str) -> usize {
    let line = text
        .lines()
        .rfind(|l| l.contains("Passed"))
        .unwrap_or_else(|| panic!("ansible-lint did not pass:\n{text}"));
    let head = line.split(" files").next().unwrap();
    head.rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("ansible-lint did not say how many files it linted:\n{text}"))
}

fn assert_tree_clean(dir: &Path) {
    let collections = install_collection(dir);
    // A pass that linted nothing would prove nothing: every task and playbook file must
    // be counted (6.13 also counts the metadata files, 26.x not all of them).
    let yaml_files = files_below(dir)
        .iter()
        .filter(|f| f.ends_with(".yml") && (f.contains("/tasks/") || !f.contains('/')))
        .count();
    for lint in lints() {
        let (ok, text) = ansible_lint_with(&lint, dir, &collections);
        assert!(
            ok && text.contains("production"),
            "{} --profile production {}:\n{text}",
            lint.display(),
            dir.display()
        );
        let linted = linted_files(&text);
        assert!(
            linted >= yaml_files,
            "{} linted {linted} files, fewer than the {yaml_files} task and playbook files:\n{text}",
            lint.display()
        );
    }
    let playbook = require_tool("ansible-playbook", "ansible");
    for book in ["playbook.yml", "verify.yml", "rollback.yml"] {
        let (ok, text) = outcome(
            Command::new(&playbook)
                .args(["--syntax-check", "-i", "localhost,", book])
                .current_dir(dir)
                .env("ANSIBLE_COLLECTIONS_PATH", &collections)
                .env("ANSIBLE_NOCOLOR", "1"),
        );
        assert!(ok, "ansible-playbook --syntax-check {book} {}:\n{text}", dir.display());
    }
}

#[test]
#[ignore = "tier ansible: needs ansible-playbook and ansible-lint (bash .ci/run runs every tier)"]
fn every_example_passes_ansible_lint_and_syntax_check() {
    let dir = tempdir();
    for example in examples() {
        // A repository-host cluster gets no play yet (validation warns): its example has
        // no ansible/ tree. Any other example without one is a failure.
        if !example.join("expected/ansible").exists() {
            let policy = std::fs::read_to_string(example.join("policy.yaml")).unwrap();
            assert!(
                policy.contains("\n    members:"),
                "{} has no ansible/ tree",
                example.display()
            );
            continue;
        }
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
    ansible: {host_group: db_b2}
"#;

#[test]
#[ignore = "tier ansible: needs ansible-playbook and ansible-lint (bash .ci/run runs every tier)"]
fn hostile_names_keep_the_tree_clean() {
    let dir = tempdir();
    let policy = write_policy(dir.path(), HOSTILE);
    let tree = generate(&policy, &dir.path().join("out"));
    assert_tree_clean(&tree);
    // The default group for a-1, the policy's for b_2, in every playbook.
    for book in ["playbook.yml", "verify.yml", "rollback.yml"] {
        let text = std::fs::read_to_string(tree.join(book)).unwrap();
        assert!(
            text.contains("hosts: \"pgbr_a_1\"") && text.contains("hosts: \"db_b2\"") && !text.contains("pgbr_b_2"),
            "{book}:\n{text}"
        );
    }
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

/// The modules the role may use: preflight checks, the copy of the tree, its scripts.
const ROLE_MODULES: &[&str] = &[
    "ansible.builtin.import_tasks",
    "ansible.builtin.fail",
    "ansible.builtin.assert",
    "ansible.builtin.stat",
    "ansible.builtin.file",
    "ansible.builtin.copy",
    "ansible.builtin.tempfile",
    "ansible.builtin.set_fact",
    "ansible.builtin.slurp",
    "ansible.builtin.command",
    "ansible.builtin.debug",
];

/// The modules a task file uses (keys with two dots and a colon).
fn modules_of(text: &str) -> Vec<String> {
    let mut modules = Vec::new();
    for line in text.lines() {
        let key = line.trim_start().trim_start_matches("- ").trim_end();
        if let Some(module) = key.strip_suffix(':') {
            if module.matches('.').count() == 2 && !module.contains(' ') {
                modules.push(module.to_owned());
            }
        }
    }
    modules
}

/// The scripts a task file runs: the second element of each command's argv
/// (`pgbr_policy_tree ~ '/shell/apply.sh'`), with its first option.
fn commands_of(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split(" ~ '/shell/").nth(1))
        .map(|rest| {
            rest.split(" }}")
                .next()
                .unwrap()
                .split(']')
                .next()
                .unwrap()
                .replace('\'', "")
        })
        .collect()
}

/// The role has no host algorithm of its own: it uses only the modules above; main.yml
/// runs each step of the copied apply.sh once, in apply.sh's order (patroni-scripts first,
/// for Patroni clusters only), each step changed exactly when apply.sh's last line says
/// so; verify.yml runs verify.sh and changes nothing; rollback.yml runs rollback.sh.
#[test]
fn the_role_only_copies_the_tree_and_runs_its_scripts() {
    let dir = tempdir();
    let example = &examples()[0];
    let tree = generate(&example.join("policy.yaml"), dir.path());
    let role = tree.join("collections/ansible_collections/pgbr/policy/roles/pgbr_policy");
    let mut task_files: Vec<_> = files_below(&role.join("tasks"));
    task_files.sort();
    assert_eq!(
        task_files,
        [
            "host_tree.yml",
            "main.yml",
            "preflight.yml",
            "rollback.yml",
            "tree_state.yml",
            "verify.yml"
        ]
    );
    assert!(
        !role.join("handlers").exists(),
        "the role has handlers (apply.sh restarts)"
    );
    let read = |f: &str| std::fs::read_to_string(role.join("tasks").join(f)).unwrap();
    for file in &task_files {
        let modules = modules_of(&read(file));
        assert!(!modules.is_empty(), "no modules found in tasks/{file}");
        for m in &modules {
            assert!(
                ROLE_MODULES.contains(&m.as_str()),
                "tasks/{file} uses {m}: a host algorithm of its own?"
            );
        }
    }
    let main = read("main.yml");
    let steps: Vec<&str> = main
        .lines()
        .filter_map(|l| l.split("'/shell/apply.sh', '--step', '").nth(1))
        .map(|rest| rest.split('\'').next().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "patroni-scripts",
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
    let commands = commands_of(&main);
    assert_eq!(commands.len(), steps.len() + 1, "{commands:?}");
    assert!(
        commands.iter().all(|c| c.starts_with("apply.sh,")),
        "main.yml runs something else than apply.sh: {commands:?}"
    );
    assert_eq!(
        modules_of(&main)
            .iter()
            .filter(|m| *m == "ansible.builtin.command")
            .count(),
        commands.len(),
        "a command that is not apply.sh"
    );
    // Every step but password reports what apply.sh's last line says; the password step
    // too, and its failure is re-raised with apply.sh's lines by the task after it
    // (the step itself runs with no_log when the password is in its arguments).
    assert_eq!(
        main.matches("changed_when: \"'[finish] no change' not in pgbr_policy_step_")
            .count(),
        steps.len()
    );
    assert!(main.contains("when: pgbr_policy_step_password.rc != 0"));
    let verify = read("verify.yml");
    assert_eq!(commands_of(&verify), ["verify.sh"]);
    assert!(verify.contains("changed_when: false") && !verify.contains("host_tree.yml"));
    // The host's copy is compared by a digest of the controller's tree, never trusted blindly.
    let state = read("tree_state.yml");
    assert!(state.contains("query('ansible.builtin.filetree', pgbr_policy_artifacts)"));
    let rollback = read("rollback.yml");
    assert_eq!(commands_of(&rollback), ["rollback.sh"]);
}

/// The inventory group of a cluster's plays comes from `ansible.host_group`; a name a
/// playbook's `hosts:` would read as a pattern is refused with its field and line.
#[test]
fn the_host_group_comes_from_the_policy_and_is_checked() {
    let dir = tempdir();
    let policy = write_policy(
        dir.path(),
        "version: 1\nclusters:\n  - name: main\n    postgres: {major: 15}\n    ansible:\n      host_group: \"db:main\"\n",
    );
    let (code, _, err) = run(&[
        "generate",
        policy.to_str().unwrap(),
        "--out",
        dir.path().join("bad").to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("clusters[0].ansible.host_group") && err.contains(":6:") && err.contains("db:main"),
        "{err}"
    );
    assert!(!dir.path().join("bad").exists());
    let policy = write_policy(
        dir.path(),
        "version: 1\ndefaults:\n  ansible: {host_group: databases}\nclusters:\n  - name: main\n    postgres: {major: 15}\n",
    );
    let tree = generate(&policy, &dir.path().join("out"));
    let text = std::fs::read_to_string(tree.join("playbook.yml")).unwrap();
    assert!(text.contains("hosts: \"databases\""), "{text}");
}

#[test]
#[ignore = "tier ansible: needs ansible-playbook and ansible-lint (bash .ci/run runs every tier)"]
fn a_planted_violation_fails_ansible_lint() {
    let dir = tempdir();
    let example = &examples()[0];
    let tree = generate(&example.join("policy.yaml"), dir.path());
    let tasks = tree.join("collections/ansible_collections/pgbr/policy/roles/pgbr_policy/tasks/main.yml");
    let text = std::fs::read_to_string(&tasks).unwrap();
    assert!(text.contains("ansible.builtin.tempfile:"));
    // A short module name: the fqcn rule of the production profile must catch it.
    std::fs::write(&tasks, text.replacen("ansible.builtin.tempfile:", "tempfile:", 1)).unwrap();
    let collections = install_collection(&tree);
    for lint in lints() {
        let (ok, text) = ansible_lint_with(&lint, &tree, &collections);
        assert!(
            !ok,
            "{} passed a tree with a short module name:\n{text}",
            lint.display()
        );
        assert!(
            text.contains("fqcn"),
            "{} failed for another reason:\n{text}",
            lint.display()
        );
    }
}

/// A Patroni cluster is not refused: before Patroni's first start the role installs its
/// scripts (apply.sh --patroni-scripts, no server needed); in check mode that is a dry
/// run that reports the change and leaves nothing (no scripts directory, no tree copy
/// beyond check mode's, no scratch directory).
#[test]
#[ignore = "tier ansible: needs root and ansible-playbook (bash .ci/run runs every tier)"]
fn a_patroni_cluster_gets_its_scripts_in_check_mode_without_a_change() {
    let dir = tempdir();
    // Validation refuses managed paths under /tmp (where the test's directory is).
    let scripts = Path::new("/var/lib/pgbr-it-ansible-patroni/scripts");
    assert!(
        !scripts.parent().unwrap().exists(),
        "{} exists before the test",
        scripts.display()
    );
    let example = examples()
        .into_iter()
        .find(|e| e.ends_with("patroni-pg15"))
        .expect("examples/patroni-pg15");
    let text = std::fs::read_to_string(example.join("policy.yaml")).unwrap();
    let text = text.replace(
        "      config_file: /etc/patroni/config.yml",
        &format!(
            "      config_file: /etc/patroni/config.yml\n      scripts_directory: {}",
            scripts.display()
        ),
    );
    assert!(text.contains("scripts_directory"));
    let policy = write_policy(dir.path(), &text);
    let ansible = generate(&policy, &dir.path().join("out"));
    let inventory = dir.path().join("inventory.ini");
    std::fs::write(&inventory, "[pgbr_pg15_patroni]\nlocalhost ansible_connection=local\n").unwrap();
    let (ok, text) = playbook_run(
        &ansible,
        &[
            "-i",
            inventory.to_str().unwrap(),
            "playbook.yml",
            "--check",
            "-e",
            "pgbr_policy_patroni_scripts_only=true",
        ],
    );
    assert!(ok, "{text}");
    assert!(
        text.contains("apply.sh --patroni-scripts") && text.contains("failed=0"),
        "{text}"
    );
    assert!(!text.contains("managed by Patroni"), "{text}");
    assert!(
        !scripts.parent().unwrap().exists(),
        "check mode made {}",
        scripts.display()
    );
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
    let trees = Path::new("/var/lib/pgbr-policy-ansible");
    let trees_existed = trees.exists();
    let (ok, text) = playbook_run(
        &ansible,
        &["-i", inventory.to_str().unwrap(), "playbook.yml", "--check"],
    );
    assert!(!ok, "the check run passed without a data directory:\n{text}");
    assert!(
        text.contains("Step os-user") && text.contains("no-such-data") && text.contains("failed=1"),
        "the first step did not fail with apply.sh's message:\n{text}"
    );
    assert!(text.contains("Scratch | remove the scratch directory"), "{text}");
    // The scratch directory this run used (other tests may make their own meanwhile).
    let used = text
        .split("/run/pgbr-policy-check.")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no scratch directory named in the output:\n{text}"));
    let used = Path::new("/run").join(format!("pgbr-policy-check.{used}"));
    assert!(!used.exists(), "{} was left:\n{text}", used.display());
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
    for place in [&link, &foreign] {
        let (ok, text) = playbook_run(
            &ansible,
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
