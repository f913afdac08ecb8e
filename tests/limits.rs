//! Fuel, memory (with OOM doubling), timeouts, traps and cancellation: each failing record
//! errors alone with the right kind, and its batch-mates keep their outcomes.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{guest, jsonl, load, run_with};
use hookhost::limits::{Ceilings, MIB};
use hookhost::provenance::RunStatus;
use hookhost::{Host, HostConfig};
use serde_json::json;

fn host_with_ceiling(bytes: u64) -> Host {
    Host::new(HostConfig {
        ceilings: Ceilings {
            memory_bytes: bytes,
            ..Ceilings::default()
        },
        ..HostConfig::default()
    })
    .unwrap()
}

#[test]
fn a_record_needing_100_mib_passes_at_32_mib_after_two_doublings() {
    let input = jsonl(&[
        ("small", json!({"alloc_mb": 1})),
        ("large", json!({"alloc_mb": 100})),
        ("after", json!({"alloc_mb": 2})),
    ]);
    let ran = run_with(load("memory_hungry"), &input, |r| {
        r.limits.memory_bytes = 32 * MIB;
    });
    assert_eq!(ran.record.status, RunStatus::Succeeded);
    assert_eq!(ran.passed_ids(), ["small", "large", "after"]);
    assert_eq!(ran.rows_of("large"), [&json!({"allocated_mb": 100})]);
    assert_eq!(ran.record.oom_retries, 2);
    assert_eq!(ran.record.limits.memory_bytes, 32 * MIB);
    assert_eq!(ran.record.memory_bytes_final, 128 * MIB);
    assert!(ran.record.peak_memory_bytes >= 100 * MIB);
}

#[test]
fn a_record_needing_more_than_the_ceiling_errors_alone() {
    let hook = host_with_ceiling(256 * MIB)
        .load_file(&guest("memory_hungry"))
        .unwrap();
    let input = jsonl(&[
        ("a", json!({"alloc_mb": 1})),
        ("huge", json!({"alloc_mb": 300})),
        ("b", json!({"alloc_mb": 100})),
        ("c", json!({"alloc_mb": 2})),
    ]);
    let ran = run_with(hook, &input, |r| r.limits.memory_bytes = 32 * MIB);
    assert_eq!(ran.record.status, RunStatus::Succeeded);
    assert_eq!(ran.passed_ids(), ["a", "b", "c"]);
    let error = ran.error_of("huge");
    assert_eq!(error["kind"], "memory_exhausted");
    assert_eq!(error["line"], 2);
    assert_eq!(error["retryable"], false);
    assert_eq!(ran.record.oom_retries, 3);
    assert_eq!(ran.record.memory_bytes_final, 256 * MIB);
    assert_eq!(ran.record.limits.memory_ceiling_bytes, 256 * MIB);
}

#[test]
fn doubling_stops_at_max_oom_retries() {
    let ran = run_with(
        load("memory_hungry"),
        &jsonl(&[("big", json!({"alloc_mb": 100}))]),
        |r| {
            r.limits.memory_bytes = 32 * MIB;
            r.limits.max_oom_retries = 1;
        },
    );
    assert_eq!(ran.error_of("big")["kind"], "memory_exhausted");
    assert_eq!(ran.record.oom_retries, 1);
    assert_eq!(ran.record.memory_bytes_final, 64 * MIB);
}

#[test]
fn the_raised_cap_stays_for_the_rest_of_the_run() {
    let input = jsonl(&[
        ("first", json!({"alloc_mb": 100})),
        ("second", json!({"alloc_mb": 100})),
        ("third", json!({"alloc_mb": 100})),
    ]);
    // One chunk at a time, so the calls can be counted: with parallel chunks, two may meet
    // the old cap at once (outcomes and doublings are the same, `calls` is not).
    let ran = run_with(load("memory_hungry"), &input, |r| {
        r.limits.memory_bytes = 32 * MIB;
        r.chunk_size = Some(1);
        r.jobs = 1;
    });
    assert_eq!(ran.passed_ids(), ["first", "second", "third"]);
    assert_eq!(
        ran.record.oom_retries, 2,
        "later records start at the raised cap"
    );
    assert_eq!(
        ran.record.calls, 5,
        "3 calls for the first record, 1 each after"
    );
}

#[test]
fn fuel_exhaustion_errors_only_the_looping_record() {
    let input = jsonl(&[
        ("before", json!({"n": 1})),
        ("spin", json!({"action": "loop"})),
        ("after", json!({"n": 2})),
    ]);
    let ran = run_with(load("chaos"), &input, |r| {
        r.limits.fuel_per_record = 50_000_000
    });
    assert_eq!(ran.passed_ids(), ["before", "after"]);
    assert_eq!(ran.rows_of("after"), [&json!({"value": 2, "note": null})]);
    let error = ran.error_of("spin");
    assert_eq!(error["kind"], "fuel_exhausted");
    assert_eq!(error["retryable"], false);
    assert!(error["error"].as_str().unwrap().contains("50000000"));
}

#[test]
fn a_timeout_errors_only_the_slow_record() {
    let input = jsonl(&[("spin", json!({"action": "loop"})), ("ok", json!({"n": 7}))]);
    let started = Instant::now();
    let ran = run_with(load("chaos"), &input, |r| {
        r.limits.fuel_per_record = u64::MAX / 4;
        r.limits.timeout = Duration::from_millis(200);
    });
    assert_eq!(ran.passed_ids(), ["ok"]);
    let error = ran.error_of("spin");
    assert_eq!(error["kind"], "timeout");
    assert_eq!(error["retryable"], true);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn traps_error_alone_and_keep_the_guests_own_words() {
    let input = jsonl(&[
        ("ok-1", json!({"n": 1})),
        ("panics", json!({"action": "panic"})),
        ("aborts", json!({"action": "abort"})),
        ("recurses", json!({"action": "recurse"})),
        ("errs", json!({"action": "error", "retryable": true})),
        ("rejects", json!({"action": "reject"})),
        ("ok-2", json!({"n": 2})),
    ]);
    let ran = run_with(load("chaos"), &input, |r| {
        r.limits.fuel_per_record = 1_000_000_000
    });
    assert_eq!(ran.passed_ids(), ["ok-1", "ok-2"]);
    let panic = ran.error_of("panics");
    assert_eq!(panic["kind"], "trap");
    assert!(
        panic["error"]
            .as_str()
            .unwrap()
            .contains("chaos panic in record panics"),
        "{panic}"
    );
    assert_eq!(ran.error_of("aborts")["kind"], "trap");
    assert_eq!(ran.error_of("recurses")["kind"], "trap");
    let guest = ran.error_of("errs");
    assert_eq!(
        (guest["kind"].as_str(), guest["retryable"].as_bool()),
        (Some("guest_error"), Some(true))
    );
    assert_eq!(guest["error"], "asked to error");
    assert_eq!(ran.rejections[0]["reason"], "asked to reject");
    let counts = ran.record.records;
    assert_eq!(
        (counts.total, counts.passed, counts.rejected, counts.errored),
        (7, 2, 1, 4)
    );
    assert!(
        ran.logs.contains("chaos panic in record panics"),
        "the panic is in logs.txt"
    );
}

#[test]
fn guest_output_is_captured_into_the_logs() {
    let ran = run_with(
        load("chaos"),
        &jsonl(&[("talker", json!({"action": "print", "lines": 2}))]),
        |_| {},
    );
    assert!(
        ran.logs.contains("--- call 1: record talker ---"),
        "{}",
        ran.logs
    );
    for line in ["stdout line 1 of talker", "stderr line 2 of talker"] {
        assert!(ran.logs.contains(line), "{line} missing from {}", ran.logs);
    }
    assert_eq!(ran.record.log_bytes_dropped, 0);
}

#[test]
fn cancelling_stops_guest_code_promptly() {
    let input = jsonl(&[("spin", json!({"action": "loop"}))]);
    let started = Instant::now();
    let ran = run_with(load("chaos"), &input, |r| {
        r.limits.fuel_per_record = u64::MAX / 4;
        r.limits.timeout = Duration::from_secs(600);
        let cancel = r.cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            cancel.store(true, Ordering::Relaxed);
        });
    });
    assert_eq!(ran.record.status, RunStatus::Cancelled);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(ran.record.records.total, 0);
}

#[test]
fn guest_output_past_the_log_cap_is_dropped_and_counted() {
    let input = jsonl(&[
        ("flood", json!({"action": "print", "lines": 1000})),
        ("ok", json!({"n": 1})),
        ("flood-again", json!({"action": "print", "lines": 1000})),
    ]);
    let ran = run_with(load("chaos"), &input, |r| {
        r.max_log_bytes = 200;
        r.chunk_size = Some(1);
    });
    assert_eq!(
        ran.passed_ids(),
        ["flood", "ok", "flood-again"],
        "a flood costs no outcome"
    );
    // 1000 lines to each stream per flood, about 24 bytes each.
    assert!(
        ran.record.log_bytes_dropped > 80_000,
        "{}",
        ran.record.log_bytes_dropped
    );
    assert_eq!(
        ran.logs.matches("log cap of 200 bytes was reached").count(),
        1,
        "{}",
        ran.logs
    );
    let kept_output = ran.logs.lines().filter(|l| l.contains(" line ")).count();
    assert!(
        kept_output < 20,
        "the cap bounds what is kept: {kept_output} lines"
    );
    assert!(
        ran.logs.len() < 600,
        "headers stop once the cap is reached: {} bytes",
        ran.logs.len()
    );
    assert_eq!(ran.record.outputs["logs.txt"].bytes, ran.logs.len() as u64);
}

#[test]
fn cancelling_keeps_the_outcomes_already_settled() {
    let input = jsonl(&[
        ("first", json!({"n": 1})),
        ("second", json!({"n": 2})),
        ("spin", json!({"action": "loop"})),
        ("never", json!({"n": 3})),
    ]);
    let ran = run_with(load("chaos"), &input, |r| {
        r.chunk_size = Some(1);
        r.limits.fuel_per_record = u64::MAX / 4;
        r.limits.timeout = Duration::from_secs(600);
        let cancel = r.cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            cancel.store(true, Ordering::Relaxed);
        });
    });
    assert_eq!(ran.record.status, RunStatus::Cancelled);
    assert_eq!(ran.passed_ids(), ["first", "second"]);
    let c = ran.record.records;
    assert_eq!((c.total, c.passed, c.errored), (2, 2, 0));
    assert_eq!(ran.record.outputs["features.jsonl"].rows, 2);
}

#[test]
fn without_fuel_metering_runs_count_no_fuel_and_the_timeout_still_stops_a_loop() {
    let host = Host::new(HostConfig {
        fuel_metering: false,
        ..HostConfig::default()
    })
    .unwrap();
    let hook = host.load_file(&common::guest("chaos")).unwrap();
    let input = jsonl(&[
        ("a", json!({"n": 1})),
        ("spin", json!({"action": "loop"})),
        ("b", json!({"n": 2})),
    ]);
    let ran = run_with(hook, &input, |r| {
        r.limits.timeout = Duration::from_millis(300);
    });
    assert_eq!(ran.record.status, RunStatus::Succeeded);
    assert_eq!(ran.passed_ids(), ["a", "b"]);
    assert_eq!(ran.error_of("spin")["kind"], "timeout");
    assert_eq!(ran.record.fuel_consumed, 0);
}

/// The fuel `hostile`'s `burn n` uses alone, as `run.json` reports it.
fn fuel_to_burn(n: u64) -> u64 {
    let ran = run_with(
        load("hostile"),
        &jsonl(&[("probe", json!({"action": "burn", "n": n}))]),
        |_| {},
    );
    assert_eq!(ran.record.fuel_records_metered, 1);
    ran.record.fuel_per_record_max
}

/// Issue 13: fuel is per record, not pooled over the call. In one call, a record that burns
/// 0.9 × the budget passes and one that burns 1.1 × errors `fuel_exhausted` (with a pooled
/// budget both passed); the host knows which record ran out, so the call is run once more
/// without it (2 calls), not once per record.
#[test]
fn fuel_is_per_record_in_one_call() {
    let n = 20_000_000;
    let budget = fuel_to_burn(n) * 10 / 9;
    let input = jsonl(&[
        ("cheap-0", json!({"n": 1})),
        ("at-0.9", json!({"action": "burn", "n": n})),
        ("cheap-1", json!({"n": 2})),
        ("at-1.1", json!({"action": "burn", "n": n * 11 / 9})),
        ("cheap-2", json!({"n": 3})),
    ]);
    let ran = run_with(load("hostile"), &input, |r| {
        r.limits.fuel_per_record = budget;
        r.chunk_size = Some(16);
        r.jobs = 1;
    });
    assert_eq!(ran.record.status, RunStatus::Succeeded);
    assert_eq!(
        ran.passed_ids(),
        ["cheap-0", "at-0.9", "cheap-1", "cheap-2"]
    );
    let error = ran.error_of("at-1.1");
    assert_eq!(error["kind"], "fuel_exhausted");
    assert_eq!(error["line"], 4);
    assert_eq!(ran.record.calls, 2, "one call, then one without the record");
    // run.json: the most any settled record used is the 0.9 one, over the four that passed.
    assert_eq!(ran.record.fuel_records_metered, 4);
    let max = ran.record.fuel_per_record_max;
    assert!(max > budget * 8 / 10 && max <= budget, "{max} of {budget}");
}

/// Issue 13: the timeout is per record too. A record that loops times out after its own
/// timeout, not its call's sixteen; the others, one of which takes a real share of its own
/// timeout, pass; and the call is run once more without the looping record, not record by
/// record.
#[test]
fn the_timeout_is_per_record_in_one_call() {
    let mut records: Vec<(String, serde_json::Value)> = (0..14)
        .map(|i| (format!("quick-{i}"), json!({"n": i})))
        .collect();
    records.insert(3, ("spin".into(), json!({"action": "spin_clock"})));
    records.insert(
        8,
        ("busy".into(), json!({"action": "burn", "n": 50_000_000})),
    );
    let pairs: Vec<(&str, serde_json::Value)> = records
        .iter()
        .map(|(id, m)| (id.as_str(), m.clone()))
        .collect();
    let timeout = Duration::from_millis(1500);
    let started = Instant::now();
    let ran = run_with(load("hostile"), &jsonl(&pairs), |r| {
        r.limits.fuel_per_record = u64::MAX / 4;
        r.limits.timeout = timeout;
        r.chunk_size = Some(16);
        r.jobs = 1;
    });
    let elapsed = started.elapsed();
    assert_eq!(ran.record.status, RunStatus::Succeeded);
    assert_eq!(ran.error_of("spin")["kind"], "timeout");
    assert_eq!(ran.errors.len(), 1, "{:?}", ran.errors);
    assert_eq!(
        ran.rows_of("busy"),
        [&json!({"value": 50_000_000, "note": null})]
    );
    assert_eq!(ran.record.calls, 2);
    // A pooled deadline would have let `spin` run for 16 × 1.5 s.
    assert!(elapsed < timeout * 8, "took {elapsed:?}");
}

/// Issue 13: `configure` has a budget of its own, so a tiny per-record fuel errors every
/// record `fuel_exhausted` and the run succeeds (it used to fail: "the hook failed while being
/// configured: ran out of fuel", 0 records).
#[test]
fn a_tiny_fuel_budget_errors_every_record_not_the_run() {
    let input = jsonl(&[
        ("a", json!({"text": "one two"})),
        ("b", json!({"text": "three"})),
        ("c", json!({"text": "four five six"})),
    ]);
    let ran = run_with(load("text_stats"), &input, |r| {
        r.limits.fuel_per_record = 1000;
    });
    assert_eq!(
        ran.record.status,
        RunStatus::Succeeded,
        "{:?}",
        ran.record.error
    );
    let c = ran.record.records;
    assert_eq!((c.total, c.passed, c.errored), (3, 0, 3));
    for id in ["a", "b", "c"] {
        assert_eq!(ran.error_of(id)["kind"], "fuel_exhausted", "{id}");
    }
}
