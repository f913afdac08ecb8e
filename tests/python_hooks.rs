//! Python hooks on the host (issue 13): the Python examples and hostile fixtures, built from
//! source with componentize-py (`make test` builds them into `target/python-hooks/` with the
//! host's own `wit/`), run through the host like any component. The Python `text_stats` and
//! `file_profile` give the same feature rows as their Rust twins; every misbehaviour is
//! contained with the right error kind and a one-line message, batch-mates unharmed.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use common::{guest, jsonl, run_with};
use hookhost::limits::MIB;
use hookhost::{HookComponent, Host, HostConfig};
use serde_json::{Value, json};

/// A host whose compiled code is cached under `target/`: an 18 MB CPython component takes
/// seconds to compile, and the cache keeps that to the first run.
fn python_host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| {
        Host::new(HostConfig {
            code_cache: Some(common::root().join("target/hookhost-test-code-cache")),
            ..HostConfig::default()
        })
        .expect("a host")
    })
}

fn component(name: &str) -> PathBuf {
    let path = common::root().join(format!("target/python-hooks/{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: `make -C sdk/python hooks WIT=$PWD/wit` builds the Python components \
         (make test does)",
        path.display()
    );
    path
}

fn load(name: &str) -> HookComponent {
    python_host()
        .load_file(&component(name))
        .unwrap_or_else(|e| panic!("loading {name}: {e}"))
}

fn content(ran: &common::Ran, file: &str) -> String {
    ran.record.outputs[file].content_sha256.clone()
}

#[test]
fn python_text_stats_gives_the_rust_text_stats_rows() {
    let input =
        std::fs::read_to_string(common::root().join("example-hooks/samples/text.jsonl")).unwrap();
    let rust = run_with(common::load("text_stats"), &input, |_| {});
    let python = run_with(load("text_stats"), &input, |_| {});
    assert_eq!(python.record.records, rust.record.records);
    assert_eq!(
        python.record.contract_digest, rust.record.contract_digest,
        "one contract in both languages"
    );
    assert_eq!(
        content(&python, "features.jsonl"),
        content(&rust, "features.jsonl")
    );
    let ids = |ran: &common::Ran| -> Vec<Value> {
        ran.rejections.iter().map(|r| r["id"].clone()).collect()
    };
    assert_eq!(ids(&python), ids(&rust));
}

/// Issue 13: an interpreter's sandbox costs about a millisecond to start, so a heavy component
/// (an initial memory of 8 MiB or more) runs in chunks of 256 by default; a Rust hook keeps 16,
/// and a chunk size asked for wins.
#[test]
fn a_python_component_is_heavy_and_runs_in_larger_chunks_by_default() {
    use hookhost::limits::{DEFAULT_CHUNK_SIZE, HEAVY_CHUNK_SIZE, HEAVY_MEMORY_IMAGE_BYTES};
    let python = load("text_stats");
    let rust = common::load("text_stats");
    assert!(
        python.initial_memory_bytes() >= HEAVY_MEMORY_IMAGE_BYTES,
        "CPython starts with {} bytes",
        python.initial_memory_bytes()
    );
    assert!(rust.initial_memory_bytes() > 0);
    assert!(rust.initial_memory_bytes() < HEAVY_MEMORY_IMAGE_BYTES);
    assert_eq!(python.default_chunk_size(), HEAVY_CHUNK_SIZE);
    assert_eq!(rust.default_chunk_size(), DEFAULT_CHUNK_SIZE);
    let records: Vec<(String, Value)> = (0..300)
        .map(|i| (format!("r{i}"), json!({"text": format!("word {i}")})))
        .collect();
    let borrowed: Vec<(&str, Value)> = records
        .iter()
        .map(|(id, v)| (id.as_str(), v.clone()))
        .collect();
    let input = jsonl(&borrowed);
    let by_default = run_with(python.clone(), &input, |_| {});
    assert_eq!(by_default.record.chunk_size, HEAVY_CHUNK_SIZE);
    assert_eq!(by_default.record.calls, 2, "300 records in chunks of 256");
    assert_eq!(
        run_with(rust, &input, |_| {}).record.chunk_size,
        DEFAULT_CHUNK_SIZE
    );
    let asked = run_with(python, &input, |r| r.chunk_size = Some(100));
    assert_eq!((asked.record.chunk_size, asked.record.calls), (100, 3));
    assert_eq!(
        content(&asked, "features.jsonl"),
        content(&by_default, "features.jsonl"),
        "the same rows in any chunks"
    );
}

#[test]
fn python_file_profile_reads_record_files_like_the_rust_one() {
    let samples = common::root().join("example-hooks/samples");
    let input = std::fs::read_to_string(samples.join("files.jsonl")).unwrap();
    let files = samples.join("files");
    let rust_hook = python_host().load_file(&guest("file_profile")).unwrap();
    let rust = run_with(rust_hook, &input, |r| r.files = Some(files.clone()));
    let python = run_with(load("file_profile"), &input, |r| {
        r.files = Some(files.clone())
    });
    assert_eq!(python.record.records, rust.record.records);
    assert!(python.record.records.passed > 0);
    assert_eq!(
        content(&python, "features.jsonl"),
        content(&rust, "features.jsonl")
    );
}

/// Runs `name` over clean records with `bad` mixed into the same call; checks the clean ones
/// keep exactly the rows they have without it, and returns the bad record's error line.
fn contained(name: &str, bad: Value, adjust: impl Fn(&mut hookhost::run::RunRequest)) -> Value {
    let clean = [("a", json!({})), ("b", json!({})), ("c", json!({}))];
    let alone = run_with(load(name), &jsonl(&clean), &adjust);
    let mixed_records = [
        clean[0].clone(),
        ("bad", bad),
        clean[1].clone(),
        clean[2].clone(),
    ];
    let mixed = run_with(load(name), &jsonl(&mixed_records), &adjust);
    assert_eq!(mixed.record.records.passed, 3, "{name}: {:?}", mixed.errors);
    assert_eq!(
        content(&mixed, "features.jsonl"),
        content(&alone, "features.jsonl"),
        "{name}: batch-mates keep their rows"
    );
    let error = mixed.error_of("bad").clone();
    let message = error["error"].as_str().unwrap();
    assert!(
        !message.contains('\n'),
        "{name}: a one-line message: {message}"
    );
    error
}

#[test]
fn a_python_record_that_loops_runs_out_of_its_own_fuel() {
    let error = contained("loop_forever", json!({"loop": true}), |r| {
        r.limits = r.limits.with_fuel_per_record(200_000_000);
    });
    assert_eq!(error["kind"], "fuel_exhausted", "{error}");
}

#[test]
fn a_python_record_that_allocates_without_end_runs_out_of_memory() {
    let error = contained("alloc_forever", json!({"alloc": true}), |r| {
        r.limits = r.limits.with_memory_bytes(32 * MIB).with_max_oom_retries(1);
    });
    assert_eq!(error["kind"], "memory_exhausted", "{error}");
}

#[test]
fn a_python_exception_errors_its_record_in_one_line() {
    let error = contained("raise_error", json!({"raise": true}), |_| {});
    assert_eq!(error["kind"], "guest_error", "{error}");
    assert!(
        error["error"].as_str().unwrap().contains("Error"),
        "{error}"
    );
}

#[test]
fn python_recursion_without_end_is_stopped() {
    let error = contained("deep_recursion", json!({"depth": -1}), |r| {
        r.limits = r.limits.with_fuel_per_record(500_000_000);
    });
    let kind = error["kind"].as_str().unwrap();
    assert!(
        ["fuel_exhausted", "trap", "memory_exhausted"].contains(&kind),
        "{error}"
    );
}

#[test]
fn swapped_python_outcomes_never_credit_rows_to_the_wrong_record() {
    let records = [("a", json!({})), ("b", json!({})), ("c", json!({}))];
    let ran = run_with(load("swap_indices"), &jsonl(&records), |_| {});
    // The call's first two outcomes come back in swapped order; each names its record by
    // index, so every row lands under its own record, in one call (nothing to refuse).
    assert_eq!(ran.record.records.passed, 3);
    assert_eq!(
        ran.passed_ids(),
        ["a", "b", "c"],
        "rows written in input order"
    );
    for row in &ran.features {
        assert_eq!(
            row["features"]["id"], row["id"],
            "a row under its own record"
        );
    }
    assert_eq!(
        ran.record.calls, 1,
        "a reordered answer is accepted as it is"
    );
}

#[test]
fn a_dropped_python_outcome_is_a_contract_violation() {
    let records = [("a", json!({})), ("b", json!({}))];
    let ran = run_with(load("drop_outcome"), &jsonl(&records), |_| {});
    assert_eq!(ran.record.records.errored, 2);
    for id in ["a", "b"] {
        assert_eq!(ran.error_of(id)["kind"], "contract_violation");
    }
    assert!(ran.features.is_empty());
}

#[test]
fn a_python_contract_that_loops_is_refused_at_load_in_one_line() {
    let error = python_host()
        .load_file(&component("contract_loop"))
        .expect_err("a contract() that never returns is refused");
    let message = error.to_string();
    assert!(
        matches!(error, hookhost::Error::InvalidComponent { .. }),
        "{message}"
    );
    assert!(!message.contains('\n'), "one line, no backtrace: {message}");
    assert!(message.contains("contract()"), "{message}");
}
