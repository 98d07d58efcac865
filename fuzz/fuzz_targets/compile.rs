//! Policy loading and full rendering, on any bytes: `pgbr_policy::compile` must return
//! (Ok or a policy error), never panic, hang or grow without bound (deep nesting, huge
//! files, aliases that expand exponentially). scripts/fuzz runs it with a time, an RSS
//! and a per-input time limit.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(tree) = pgbr_policy::compile(data, "policy.yaml") {
        // A tree always has its manifest, and every artifact is text ending in one newline.
        assert!(tree.contains_key(pgbr_policy::artifact::MANIFEST));
        for (path, artifact) in &tree {
            let text = std::str::from_utf8(&artifact.bytes).unwrap_or_else(|_| panic!("{path} is not UTF-8"));
            assert!(
                text.ends_with('\n') && !text.ends_with("\n\n"),
                "{path} does not end with exactly one newline"
            );
        }
    }
});
