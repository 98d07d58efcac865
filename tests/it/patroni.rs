//! The Patroni fragment and dynamic configuration, read by Patroni's own YAML reader
//! (PyYAML's safe_load, the python3-yaml Patroni depends on): the site's pg_hba and
//! pg_ident lines, however hostile, come back exactly, and PyYAML reads every file as
//! serde-saphyr does. render/structured.rs writes a string plain only when no YAML 1.1
//! reader could take it for something else; this is the test that it holds for the
//! reader that matters.

use crate::support::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::Value;
use std::process::Command;

/// Characters that mean something to YAML (indicators, quotes, escapes, comment and
/// mapping markers, flow punctuation), digits and letters of YAML 1.1 words, unicode.
const YAML_CHARS: &str = "[#: '\"\\\\{}\\[\\]&*!|>%@`,?=<~.+_/0-9onyfatruelsxü\t-]";

fn text(range: &str) -> impl Strategy<Value = String> + use<> {
    proptest::string::string_regex(&format!("{YAML_CHARS}{{{range}}}")).unwrap()
}

/// One word: no white space.
fn token() -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("{}{{1,8}}", YAML_CHARS.replace([' ', '\t'], ""))).unwrap()
}

fn site_line() -> impl Strategy<Value = String> {
    prop_oneof![
        text("0,24").prop_map(|t| format!("#{t}")),
        (token(), text("0,12")).prop_map(|(t, rest)| format!("host all {t} 10.0.0.0/8 md5{rest}")),
        token().prop_map(|t| format!("local\t{t}\tall\tpeer")),
    ]
}

fn ident_line() -> impl Strategy<Value = String> {
    (token(), token(), token()).prop_map(|(a, b, c)| format!("{a} {b} {c}"))
}

/// PyYAML's reading of each file, as JSON.
fn pyyaml(files: &[std::path::PathBuf]) -> Vec<Value> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml\nfor f in sys.argv[1:]:\n    print(json.dumps(yaml.safe_load(open(f, encoding='utf-8'))))",
        ])
        .args(files)
        .output()
        .expect("python3 (with python3-yaml, which Patroni needs)");
    assert!(
        out.status.success(),
        "python3 -c 'import yaml' failed (install python3-yaml, as .ci/run does with patroni):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn check(role: &str, hba: &[String], ident: &[String]) -> Result<(), TestCaseError> {
    let policy = format!(
        "version: 1\nclusters:\n  - name: pat\n    postgres: {{major: 15}}\n    role: {{name: {}}}\n    patroni:\n      enabled: true\n      version: \"3.1.0\"\n      pg_hba_after: {}\n      pg_ident_after: {}\n",
        serde_json::to_string(role).unwrap(),
        serde_json::to_string(hba).unwrap(),
        serde_json::to_string(ident).unwrap(),
    );
    let dir = tempdir();
    let path = write_policy(dir.path(), &policy);
    let out = dir.path().join("out");
    let (code, _, err) = run(&["generate", path.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    prop_assert_eq!(code, 0, "{}\n{}", policy, err);
    let cluster = out.join("pat");
    let files = [
        cluster.join("patroni/patroni.yml"),
        cluster.join("patroni/dynamic-config.yml"),
    ];
    let read = pyyaml(&files);
    for (file, py) in files.iter().zip(&read) {
        let ours: Value = serde_saphyr::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        prop_assert_eq!(py, &ours, "PyYAML and serde-saphyr read {} differently", file.display());
    }
    let fragment = &read[0];
    let lines = |file: &str| -> Vec<Value> {
        std::fs::read_to_string(cluster.join(file))
            .unwrap()
            .lines()
            .map(|l| Value::from(l.to_owned()))
            .collect()
    };
    let mut want_hba = lines("hba/pg_hba.conf.snippet");
    want_hba.extend(hba.iter().map(|l| Value::from(l.clone())));
    let mut want_ident = lines("hba/pg_ident.conf.snippet");
    want_ident.extend(ident.iter().map(|l| Value::from(l.clone())));
    prop_assert_eq!(fragment["postgresql"]["pg_hba"].as_array().unwrap(), &want_hba);
    prop_assert_eq!(fragment["bootstrap"]["pg_hba"].as_array().unwrap(), &want_hba);
    prop_assert_eq!(fragment["postgresql"]["pg_ident"].as_array().unwrap(), &want_ident);
    let hook = "/usr/local/lib/pgbr-policy/pat/patroni-hook.sh";
    let callbacks = fragment["postgresql"]["callbacks"].as_object().unwrap();
    prop_assert_eq!(callbacks.len(), 4);
    prop_assert!(callbacks.values().all(|v| v == hook), "{:?}", callbacks);
    prop_assert_eq!(
        &fragment["bootstrap"]["post_bootstrap"],
        "/usr/local/lib/pgbr-policy/pat/post-bootstrap.sh"
    );
    prop_assert_eq!(
        &fragment["bootstrap"]["dcs"]["postgresql"]["parameters"]["archive_mode"],
        "on"
    );
    prop_assert_eq!(&read[1]["postgresql"]["parameters"]["archive_mode"], "on");
    let command = read[1]["postgresql"]["parameters"]["archive_command"].as_str().unwrap();
    prop_assert!(command.ends_with(" --stanza=pat archive-push %p"), "{}", command);
    Ok(())
}

#[test]
#[ignore = "tier tools: needs shellcheck or PyYAML (bash .ci/run runs every tier)"]
fn patroni_yaml_reads_back_in_pyyaml() {
    // Fixed cases first: YAML 1.1 words and indicators where a plain scalar would break.
    let fixed: Vec<String> = [
        "# on",
        "#=",
        "# <<",
        "# 0750",
        "# 1:20",
        "# 2001-12-14",
        "# ~",
        "host all all ::1/128 trust # on",
        "host all all 10.0.0.0/8 ldap ldapserver=x ldapprefix=\"cn=\\$(reboot)\"",
        "host all \"we'ird user\" 127.0.0.1/32 scram-sha-256",
        "host all all 10.0.0.0/8 radius radiusservers=\"a,b\" radiussecrets='x'",
        "local\tall\tpostgres\tpeer",
        "host all all samehost trust #: x",
        "host all x: 10.0.0.1/32 md5",
        "# a comment: with [yaml] {flow} & *alias !tag % ünï",
    ]
    .map(String::from)
    .to_vec();
    let idents: Vec<String> = ["m on off", "m yes no", "m 0750 1:20", "m - ~", "# x: y"]
        .map(String::from)
        .to_vec();
    check("it's a role: yes", &fixed, &idents).unwrap();

    let cases = std::env::var("PGBR_HOSTILE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24u32);
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let strategy = (
        proptest::collection::vec(site_line(), 1..24),
        proptest::collection::vec(ident_line(), 0..6),
    );
    runner
        .run(&strategy, |(mut hba, ident)| {
            // Patroni needs one TCP line; validation warns without it.
            hba.push("host all all 127.0.0.1/32 scram-sha-256".into());
            check("r", &hba, &ident)
        })
        .unwrap();
}
