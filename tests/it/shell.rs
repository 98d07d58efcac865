//! External validators on the generated scripts: shellcheck and bash -n, for every
//! example and for a policy full of names that need quoting.

use crate::support::*;
use std::process::Command;

fn generated_scripts(policy: &std::path::Path, out: &std::path::Path) -> Vec<std::path::PathBuf> {
    let (code, _, err) = run(&["generate", policy.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let scripts: Vec<_> = files_below(out)
        .into_iter()
        .filter(|f| f.ends_with(".sh"))
        .map(|f| out.join(f))
        .collect();
    assert!(!scripts.is_empty());
    scripts
}

fn assert_scripts_clean(scripts: &[std::path::PathBuf]) {
    let shellcheck = require_tool("shellcheck", "shellcheck");
    for script in scripts {
        let out = Command::new("bash").arg("-n").arg(script).output().unwrap();
        assert!(
            out.status.success(),
            "bash -n {}: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        // -x from the script's directory: apply/rollback/verify source lib.sh beside them.
        let out = Command::new(&shellcheck)
            .args(["--severity=style", "-x"])
            .arg(script.file_name().unwrap())
            .current_dir(script.parent().unwrap())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "shellcheck {}:\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
#[ignore = "tier tools: needs shellcheck or PyYAML (bash .ci/run runs every tier)"]
fn every_example_script_passes_shellcheck() {
    let dir = tempdir();
    for example in examples() {
        let out = dir.path().join(example.file_name().unwrap());
        assert_scripts_clean(&generated_scripts(&example.join("policy.yaml"), &out));
    }
}

#[test]
#[ignore = "tier tools: needs shellcheck or PyYAML (bash .ci/run runs every tier)"]
fn quoted_names_keep_scripts_clean() {
    let dir = tempdir();
    let policy = write_policy(
        dir.path(),
        "version: 1\nclusters:\n  - name: q\n    postgres: {major: 16}\n    role:\n      name: \"it's a $(role) `x`\"\n      database: \"my db; drop\"\n    pgbackrest: {version: \"2.55\"}\n",
    );
    let out = dir.path().join("out");
    let scripts = generated_scripts(&policy, &out);
    assert_scripts_clean(&scripts);
    // The values reach the script only inside single quotes.
    let apply = std::fs::read_to_string(out.join("q/shell/lib.sh")).unwrap();
    assert!(
        apply.contains(r#"ROLE_NAME='it'\''s a $(role) `x`'"#),
        "role name not single-quoted"
    );
    // And executing the plan block (in lib.sh, which the scripts source) yields exactly the values.
    let lib = std::fs::read_to_string(out.join("q/shell/lib.sh")).unwrap();
    let plan_block: String = lib
        .lines()
        .skip_while(|l| !l.starts_with("CLUSTER="))
        .take_while(|l| !l.starts_with("STATE_DIR="))
        .collect::<Vec<_>>()
        .join("\n");
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("{plan_block}\nprintf '%s|%s' \"$ROLE_NAME\" \"$ROLE_DB\""))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "it's a $(role) `x`|my db; drop");
}
