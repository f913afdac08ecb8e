//! Hostile hooks (pins issue 6): for every misbehaviour a hook can attempt, the host survives,
//! the offending record gets the right error kind, and every other record's outcome is
//! present and byte-identical to a run of the same batch without the offender.
//!
//! Each test runs the clean records alone, then again with the hostile records mixed in
//! (sharing a call with clean ones, so the host has to isolate them), and compares
//! `features.jsonl` and `rejections.jsonl` with their `run_id` members stripped — what replay
//! compares. Fixtures: `chaos` (panic, abort, loop, recursion, allocation, output, WASI probes),
//! `hostile` (sleep, clock busy-waits, sockets, handle floods, huge messages, fuel burning),
//! `contract-breaker` and `raw-outcomes` (answers of the wrong shape).

mod common;

use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{Ran, guest, jsonl, load, run_with};
use hookhost::limits::{Ceilings, MIB};
use hookhost::provenance::RunStatus;
use hookhost::run::RunRequest;
use hookhost::runner::MAX_MESSAGE_BYTES;
use hookhost::sandbox::MAX_GUEST_HANDLES;
use hookhost::{HookComponent, Host, HostConfig};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Support
// ---------------------------------------------------------------------------------------------

/// What a hostile record must end as.
#[derive(Debug, Clone)]
enum Expect {
    /// Errored with this kind.
    Error(&'static str),
    /// Passed with exactly these features.
    Row(Value),
    /// Passed, and its features satisfy the check.
    Passes(fn(&Value) -> bool),
    /// Rejected, and the reason satisfies the check.
    Rejected(fn(&str) -> bool),
}

/// A file's content with every `,"run_id":"<run>"` member removed: equal for two runs that
/// produced the same outcomes.
fn stripped(ran: &Ran, file: &str) -> String {
    std::fs::read_to_string(ran.dir.join(file))
        .unwrap()
        .replace(&format!(",\"run_id\":\"{}\"", ran.record.run_id), "")
}

/// Rows of `file` (stripped) that do not belong to any of `ids`.
fn lines_without(ran: &Ran, file: &str, ids: &[&str]) -> String {
    stripped(ran, file)
        .lines()
        .filter(|line| {
            let value: Value = serde_json::from_str(line).unwrap();
            !ids.iter().any(|id| value["id"] == *id)
        })
        .map(|line| format!("{line}\n"))
        .collect()
}

/// Clean records for the `chaos` and `hostile` fixtures: eight rows and one rejection.
fn clean_records() -> Vec<(String, Value)> {
    let mut records: Vec<(String, Value)> = (0..8)
        .map(|i| (format!("clean-{i}"), json!({"n": i * 7})))
        .collect();
    records.insert(3, ("clean-reject".into(), json!({"action": "reject"})));
    records
}

/// Runs `clean` alone, then with `hostile` spread among them (every third position), and
/// asserts that the host isolated every hostile record: the run succeeded, each hostile record
/// ended as expected (errors naming their input line), and the clean records' rows and
/// rejections are byte-identical to the clean run's. Returns the mixed run.
#[track_caller]
fn assert_isolated(
    hook: &HookComponent,
    clean: &[(String, Value)],
    hostile: &[(&str, Value, Expect)],
    adjust: impl Fn(&mut RunRequest),
) -> Ran {
    let as_refs = |records: &[(String, Value)]| -> String {
        let pairs: Vec<(&str, Value)> = records
            .iter()
            .map(|(id, m)| (id.as_str(), m.clone()))
            .collect();
        jsonl(&pairs)
    };
    let baseline = run_with(hook.clone(), &as_refs(clean), &adjust);
    assert_eq!(baseline.record.status, RunStatus::Succeeded);
    assert!(baseline.errors.is_empty(), "{:?}", baseline.errors);

    let mut mixed: Vec<(String, Value)> = clean.to_vec();
    for (n, (id, metadata, _)) in hostile.iter().enumerate() {
        let at = (1 + n * 3).min(mixed.len());
        mixed.insert(at, ((*id).to_owned(), metadata.clone()));
    }
    let ran = run_with(hook.clone(), &as_refs(&mixed), &adjust);
    assert_eq!(
        ran.record.status,
        RunStatus::Succeeded,
        "{:?}",
        ran.record.error
    );
    let hostile_ids: Vec<&str> = hostile.iter().map(|(id, _, _)| *id).collect();
    for file in ["features.jsonl", "rejections.jsonl"] {
        assert_eq!(
            lines_without(&ran, file, &hostile_ids),
            stripped(&baseline, file),
            "{file}: the clean records' outcomes changed"
        );
    }
    let mut errored = 0;
    for (id, _, expect) in hostile {
        let line = mixed.iter().position(|(i, _)| i == id).unwrap() as u64 + 1;
        match expect {
            Expect::Error(kind) => {
                errored += 1;
                let error = ran.error_of(id);
                assert_eq!(error["kind"], *kind, "{id}: {error}");
                assert_eq!(error["line"], line, "{id}");
                assert!(!error["error"].as_str().unwrap().is_empty(), "{id}");
            }
            Expect::Row(row) => assert_eq!(ran.rows_of(id), [row], "{id}"),
            Expect::Passes(check) => {
                let rows = ran.rows_of(id);
                assert_eq!(rows.len(), 1, "{id}: {rows:?}");
                assert!(check(rows[0]), "{id}: {}", rows[0]);
            }
            Expect::Rejected(check) => {
                let reason = ran
                    .rejections
                    .iter()
                    .find(|r| r["id"] == *id)
                    .unwrap_or_else(|| panic!("{id} was not rejected"));
                assert!(check(reason["reason"].as_str().unwrap()), "{id}");
            }
        }
    }
    assert_eq!(ran.errors.len(), errored, "{:#?}", ran.errors);
    let (c, b) = (ran.record.records, baseline.record.records);
    assert_eq!(c.total, b.total + hostile.len() as u64);
    assert_eq!(c.passed + c.rejected + c.errored, c.total);
    ran
}

fn host_with_memory_ceiling(bytes: u64) -> Host {
    Host::new(HostConfig {
        ceilings: Ceilings {
            memory_bytes: bytes,
            ..Ceilings::default()
        },
        ..HostConfig::default()
    })
    .unwrap()
}

fn value_is_zero(features: &Value) -> bool {
    features["value"] == 0
}

// ---------------------------------------------------------------------------------------------
// Loops, time, memory, traps
// ---------------------------------------------------------------------------------------------

#[test]
fn an_infinite_loop_runs_out_of_fuel_alone() {
    let ran = assert_isolated(
        &load("chaos"),
        &clean_records(),
        &[
            (
                "loop-1",
                json!({"action": "loop"}),
                Expect::Error("fuel_exhausted"),
            ),
            (
                "loop-2",
                json!({"action": "loop"}),
                Expect::Error("fuel_exhausted"),
            ),
        ],
        |r| r.limits.fuel_per_record = 20_000_000,
    );
    assert_eq!(ran.error_of("loop-1")["retryable"], false);
}

#[test]
fn a_loop_that_burns_time_but_little_fuel_is_stopped_by_the_timeout() {
    // Busy-waits on clocks that never move: each step is a host call, cheap in fuel.
    let started = Instant::now();
    let ran = assert_isolated(
        &load("hostile"),
        &clean_records(),
        &[
            (
                "spin-monotonic",
                json!({"action": "spin_clock"}),
                Expect::Error("timeout"),
            ),
            (
                "spin-wall",
                json!({"action": "spin_wall_clock"}),
                Expect::Error("timeout"),
            ),
        ],
        |r| r.limits.timeout = Duration::from_millis(200),
    );
    assert_eq!(ran.error_of("spin-wall")["retryable"], true);
    assert!(ran.record.fuel_consumed < ran.record.limits.fuel_per_record * 4);
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn a_guest_sleep_cannot_outlast_its_timeout_or_a_cancel() {
    // wasmtime-wasi sleeps on the host's thread, where the epoch deadline cannot reach: a
    // guest asking for an hour got an hour, whatever its timeout, and ignored a cancel.
    // With the sandbox's clocks a sleep takes no time, like everything else in there.
    let started = Instant::now();
    assert_isolated(
        &load("hostile"),
        &clean_records(),
        &[
            (
                "sleeper",
                json!({"action": "sleep", "secs": 30, "n": 5}),
                Expect::Row(json!({"value": 5, "note": null})),
            ),
            (
                "sleeps-forever",
                json!({"action": "sleep", "secs": 45, "n": 6}),
                Expect::Row(json!({"value": 6, "note": null})),
            ),
        ],
        |r| r.limits.timeout = Duration::from_millis(200),
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );

    // A sleep in `configure` (once per sandbox) neither.
    let started = Instant::now();
    let ran = run_with(
        load("raw_outcomes"),
        &jsonl(&[("a", json!({"n": 1}))]),
        |r| {
            r.config = Some(r#"{"configure": "sleep"}"#.into());
            r.limits.timeout = Duration::from_millis(200);
        },
    );
    assert_eq!(ran.record.status, RunStatus::Succeeded);
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn a_memory_bomb_past_the_ceiling_errors_alone() {
    let hook = host_with_memory_ceiling(128 * MIB)
        .load_file(&guest("chaos"))
        .unwrap();
    let mut clean = clean_records();
    clean.push(("clean-alloc".into(), json!({"action": "alloc", "mb": 40})));
    let ran = assert_isolated(
        &hook,
        &clean,
        &[(
            "bomb",
            json!({"action": "alloc", "mb": 1024}),
            Expect::Error("memory_exhausted"),
        )],
        |r| r.limits.memory_bytes = 32 * MIB,
    );
    assert_eq!(ran.record.memory_bytes_final, 128 * MIB);
    assert!(
        ran.error_of("bomb")["error"]
            .as_str()
            .unwrap()
            .contains(&(128 * MIB).to_string())
    );
}

#[test]
fn stack_overflow_panic_and_abort_are_traps_and_cost_nobody_else() {
    let ran = assert_isolated(
        &load("chaos"),
        &clean_records(),
        &[
            (
                "recurses",
                json!({"action": "recurse"}),
                Expect::Error("trap"),
            ),
            ("panics", json!({"action": "panic"}), Expect::Error("trap")),
            ("aborts", json!({"action": "abort"}), Expect::Error("trap")),
        ],
        |_| {},
    );
    assert!(
        ran.error_of("panics")["error"]
            .as_str()
            .unwrap()
            .contains("chaos panic in record panics")
    );
    for id in ["recurses", "panics", "aborts"] {
        assert_eq!(ran.error_of(id)["retryable"], false, "{id}");
    }
}

#[test]
fn a_flood_of_output_is_capped_and_costs_no_outcome() {
    let ran = assert_isolated(
        &load("chaos"),
        &clean_records(),
        &[(
            "flood",
            json!({"action": "print", "lines": 20_000}),
            Expect::Row(json!({"value": 20_000, "note": null})),
        )],
        |r| r.max_log_bytes = 4096,
    );
    assert!(ran.record.log_bytes_dropped > 500_000);
    assert!(ran.logs.len() < 8192, "{} bytes kept", ran.logs.len());
}

#[test]
fn a_guest_cannot_use_up_the_hosts_file_descriptors() {
    // Before the cap, one call could hold ~20 000 host descriptors (the process's limit on
    // this machine), and nothing else in the process could open a file meanwhile.
    let files = tempfile::tempdir().unwrap();
    let clean = clean_records();
    for (id, _) in &clean {
        std::fs::create_dir(files.path().join(id)).unwrap();
    }
    std::fs::create_dir(files.path().join("flood")).unwrap();
    std::fs::write(files.path().join("flood/a.txt"), "a").unwrap();
    assert_isolated(
        &load("hostile"),
        &clean,
        &[(
            "flood",
            json!({"action": "open_flood", "path": "/files/flood/a.txt", "n": 100_000}),
            Expect::Error("trap"),
        )],
        |r| r.files = Some(files.path().into()),
    );

    // Within the cap, handles are fine.
    let within = run_with(
        load("hostile"),
        &jsonl(&[(
            "flood",
            json!({"action": "open_flood", "path": "/files/flood/a.txt", "n": MAX_GUEST_HANDLES / 2}),
        )]),
        |r| r.files = Some(files.path().into()),
    );
    assert_eq!(
        within.rows_of("flood"),
        [&json!({"value": MAX_GUEST_HANDLES / 2, "note": null})]
    );
}

#[test]
fn a_trap_raised_by_the_host_names_its_cause() {
    let files = tempfile::tempdir().unwrap();
    std::fs::create_dir(files.path().join("flood")).unwrap();
    std::fs::write(files.path().join("flood/a.txt"), "a").unwrap();
    let ran = run_with(
        load("hostile"),
        &jsonl(&[(
            "flood",
            json!({"action": "open_flood", "path": "/files/flood/a.txt", "n": 100_000}),
        )]),
        |r| r.files = Some(files.path().into()),
    );
    let error = ran.error_of("flood");
    assert_eq!(error["kind"], "trap");
    let message = error["error"].as_str().unwrap();
    assert!(
        message.contains("resource table has no free keys"),
        "{message}"
    );
}

#[test]
fn huge_rejection_reasons_and_error_messages_are_cut_to_the_cap() {
    let ran = assert_isolated(
        &load("hostile"),
        &clean_records(),
        &[
            (
                "huge-reject",
                json!({"action": "huge_reject", "bytes": 8 << 20}),
                Expect::Rejected(|reason| {
                    reason.len() <= MAX_MESSAGE_BYTES + '…'.len_utf8() && reason.ends_with('…')
                }),
            ),
            (
                "huge-error",
                json!({"action": "huge_error", "bytes": 8 << 20}),
                Expect::Error("guest_error"),
            ),
        ],
        |_| {},
    );
    let message = ran.error_of("huge-error")["error"].as_str().unwrap();
    assert!(message.len() <= MAX_MESSAGE_BYTES + '…'.len_utf8());
}

// ---------------------------------------------------------------------------------------------
// Rows and outcomes of the wrong shape or size
// ---------------------------------------------------------------------------------------------

#[test]
fn a_huge_single_record_in_and_a_huge_row_out() {
    // 15 MiB of metadata, under the 16 MiB line cap, reaches the hook whole.
    let text = "x".repeat(15 << 20);
    let metadata = json!({"action": "echo_size", "text": text});
    let size = metadata.to_string().len() as i64;
    assert_isolated(
        &load("hostile"),
        &clean_records(),
        &[(
            "huge-in",
            metadata,
            Expect::Row(json!({"value": size, "note": null})),
        )],
        |_| {},
    );
    // A 20 MB row out is over the per-record output cap.
    let clean: Vec<(String, Value)> = (0..6)
        .map(|i| (format!("good-{i}"), json!({"emit": "good"})))
        .collect();
    assert_isolated(
        &load("contract_breaker"),
        &clean,
        &[(
            "huge-out",
            json!({"emit": "huge", "bytes": 20_000_000}),
            Expect::Error("output_too_large"),
        )],
        |_| {},
    );
}

#[test]
fn a_million_rows_for_cardinality_one_is_a_contract_violation() {
    let clean: Vec<(String, Value)> = (0..6)
        .map(|i| (format!("good-{i}"), json!({"n": i})))
        .collect();
    let ran = assert_isolated(
        &load("raw_outcomes"),
        &clean,
        &[(
            "million",
            json!({"emit": "rows", "count": 1_000_000}),
            Expect::Error("contract_violation"),
        )],
        |_| {},
    );
    assert_eq!(
        ran.error_of("million")["error"],
        "cardinality `one` needs exactly 1 row per passed record, got 1000000"
    );
}

#[test]
fn wrong_types_arity_and_nulls_cost_no_other_record_its_outcome() {
    let clean: Vec<(String, Value)> = (0..6)
        .map(|i| (format!("good-{i}"), json!({"emit": "good"})))
        .collect();
    let hostile: Vec<(&str, Value, Expect)> = [
        "wrong_type",
        "wrong_arity",
        "null_required",
        "two_rows",
        "zero_rows",
        "nan",
    ]
    .into_iter()
    .map(|emit| {
        (
            emit,
            json!({"emit": emit}),
            Expect::Error("contract_violation"),
        )
    })
    .collect();
    assert_isolated(&load("contract_breaker"), &clean, &hostile, |_| {});
}

#[test]
fn fewer_or_more_outcomes_than_records_cost_no_other_record_its_outcome() {
    let clean: Vec<(String, Value)> = (0..6)
        .map(|i| (format!("good-{i}"), json!({"n": i})))
        .collect();
    for (id, emit, count) in [("drops", "drop", 0), ("adds", "extra", 2)] {
        let ran = assert_isolated(
            &load("raw_outcomes"),
            &clean,
            &[(
                id,
                json!({"emit": emit}),
                Expect::Error("contract_violation"),
            )],
            |_| {},
        );
        let message = ran.error_of(id)["error"].as_str().unwrap().to_owned();
        assert!(
            message.contains(&format!("returned {count} outcomes for 1 record")),
            "{message}"
        );
        // Every row is the one the hook meant for its record.
        for row in &ran.features {
            assert_eq!(row["features"]["echo"], row["id"], "{row}");
        }
    }
}

/// Issue 6, fixed by issue 13 (outcomes name their record by index since 0.2.0).
#[test]
fn outcomes_in_the_wrong_order_are_never_credited_to_the_wrong_record() {
    // `swap` names the next record's index instead of its own: the count is right, but one
    // index appears twice. `reverse` reverses the call's whole answer, every outcome still
    // naming its own record (allowed). `drop` and `extra` in the same call keep the count
    // right, with one index twice and one missing.
    let clean: Vec<(String, Value)> = (0..6)
        .map(|i| (format!("good-{i}"), json!({"n": i})))
        .collect();
    for emits in [&["swap"][..], &["reverse"], &["drop", "extra"]] {
        let emit = emits.join("+");
        let mut records: Vec<(&str, Value)> = clean
            .iter()
            .map(|(id, m)| (id.as_str(), m.clone()))
            .collect();
        for (n, emit) in emits.iter().enumerate() {
            records.insert(2 + 2 * n, (emit, json!({"emit": emit})));
        }
        let ran = run_with(load("raw_outcomes"), &jsonl(&records), |_| {});
        for row in &ran.features {
            assert_eq!(
                row["features"]["echo"], row["id"],
                "{emit}: a row credited to the wrong record: {row}"
            );
        }
        for (id, _) in &clean {
            assert_eq!(ran.rows_of(id).len(), 1, "{emit}: {id} lost its outcome");
        }
    }
}

/// Issue 13: a swapped or dropped outcome makes its call a contract violation, isolated like
/// any failed call: only the guilty record errors, its batch-mates' outputs are byte-identical
/// to a clean run's; a reversed answer whose outcomes name their records is accepted.
#[test]
fn swapped_or_dropped_outcomes_are_a_contract_violation_of_the_call() {
    let clean: Vec<(String, Value)> = (0..6)
        .map(|i| (format!("good-{i}"), json!({"n": i})))
        .collect();
    let ran = assert_isolated(
        &load("raw_outcomes"),
        &clean,
        &[
            (
                "swaps",
                json!({"emit": "swap"}),
                Expect::Error("contract_violation"),
            ),
            (
                "drops",
                json!({"emit": "drop"}),
                Expect::Error("contract_violation"),
            ),
            (
                "reverses",
                json!({"emit": "reverse", "n": 9}),
                Expect::Row(json!({"echo": "reverses", "n": 9})),
            ),
        ],
        |_| {},
    );
    // Alone, `swap` names index 1 in a call of one record.
    assert_eq!(
        ran.error_of("swaps")["error"],
        "an outcome names record index 1, but the call has 1 record(s)"
    );
    assert_eq!(
        ran.error_of("drops")["error"],
        "the hook returned 0 outcomes for 1 record(s)"
    );
    for row in &ran.features {
        assert_eq!(row["features"]["echo"], row["id"], "{row}");
    }
}

/// Issue 13: announcing a record out of range or twice traps the call as a contract violation;
/// not announcing one is allowed (its work is charged to the record announced before it).
#[test]
fn a_misused_begin_record_is_a_contract_violation_of_the_call() {
    let clean: Vec<(String, Value)> = (0..4)
        .map(|i| (format!("good-{i}"), json!({"n": i})))
        .collect();
    let ran = assert_isolated(
        &load("raw_outcomes"),
        &clean,
        &[
            (
                "twice",
                json!({"begin": "twice"}),
                Expect::Error("contract_violation"),
            ),
            (
                "beyond",
                json!({"begin": "beyond"}),
                Expect::Error("contract_violation"),
            ),
            (
                "silent",
                json!({"begin": "skip", "n": 3}),
                Expect::Row(json!({"echo": "silent", "n": 3})),
            ),
        ],
        |_| {},
    );
    assert_eq!(
        ran.error_of("twice")["error"],
        "begin-record(0) announced twice"
    );
    assert_eq!(
        ran.error_of("beyond")["error"],
        "begin-record(1) in a call of 1 record(s)"
    );
}

// ---------------------------------------------------------------------------------------------
// Budgets
// ---------------------------------------------------------------------------------------------

/// Issue 13: the budget is per record for a hook that announces its records (the SDK does):
/// `greedy` needs about three records' worth of fuel and runs out whether its call holds one
/// record or sixteen. A hook that announces nothing (raw-outcomes with `announce: false`)
/// still shares its call's pool of N records, as 0.1.0 did, and never gets more: the same
/// record borrows its batch-mates' fuel in a call of sixteen, not in a call of two. Both are
/// deterministic for a given chunk size, which `run.json` records (and replay reuses).
/// (Before issue 13 this test pinned the pooled budget for every hook.)
#[test]
fn the_budget_is_per_record_and_pooled_only_for_a_hook_that_does_not_announce() {
    let mut records: Vec<(String, Value)> = (0..15)
        .map(|i| (format!("cheap-{i}"), json!({"n": i})))
        .collect();
    records.push((
        "greedy".into(),
        json!({"action": "burn", "emit": "burn", "n": 15_000_000}),
    ));
    let pairs: Vec<(&str, Value)> = records
        .iter()
        .map(|(id, m)| (id.as_str(), m.clone()))
        .collect();
    let input = jsonl(&pairs);
    let fuel = 25_000_000;
    for chunk_size in [1, 16] {
        let ran = run_with(load("hostile"), &input, |r| {
            r.limits.fuel_per_record = fuel;
            r.chunk_size = Some(chunk_size);
        });
        assert_eq!(ran.error_of("greedy")["kind"], "fuel_exhausted");
        assert_eq!(ran.errors.len(), 1, "{:?}", ran.errors);
        assert_eq!(ran.record.chunk_size, chunk_size);
    }
    let silent = |chunk_size| {
        run_with(load("raw_outcomes"), &input, |r| {
            r.limits.fuel_per_record = fuel;
            r.chunk_size = Some(chunk_size);
            r.config = Some(r#"{"announce": false}"#.into());
        })
    };
    for _ in 0..2 {
        let pooled = silent(16);
        assert!(pooled.errors.is_empty(), "{:?}", pooled.errors);
        assert_eq!(pooled.rows_of("greedy").len(), 1);
        assert_eq!(pooled.record.fuel_records_metered, 0);
    }
    assert_eq!(silent(2).error_of("greedy")["kind"], "fuel_exhausted");
}

/// Issue 15: a call's guest state dies with its sandbox, however the pool resets the memory
/// slot for the next one (since issue 15 by `memset` of the pages a call dirtied, up to
/// `POOLED_MEMORY_KEEP_RESIDENT`, and `madvise` beyond it, with no copy-on-write image).
/// `remember` counts in a static of the data segment (initialised non-zero) and a heap string:
/// within a call the records see each other, and every call — on either worker, after a
/// record that dirtied 40 MiB, past what is kept resident — starts from the image again.
#[test]
fn guest_state_does_not_outlive_its_call() {
    let mut records: Vec<(String, Value)> =
        vec![("big".into(), json!({"action": "alloc", "mb": 40}))];
    for call in 0..6 {
        for at in 0..3 {
            records.push((format!("r{call}-{at}"), json!({"action": "remember"})));
        }
    }
    let pairs: Vec<(&str, Value)> = records
        .iter()
        .map(|(id, m)| (id.as_str(), m.clone()))
        .collect();
    let input = jsonl(&pairs);
    for jobs in [1, 2] {
        let ran = run_with(load("chaos"), &input, |r| {
            r.chunk_size = Some(3);
            r.jobs = jobs;
        });
        assert!(ran.errors.is_empty(), "jobs {jobs}: {:?}", ran.errors);
        // The first call holds `big` and two `remember`s; every later call three.
        for (index, (id, _)) in records.iter().enumerate().skip(1) {
            let first = if index < 3 { 1 } else { index - (index % 3) };
            let before: Vec<&str> = records[first..index]
                .iter()
                .map(|(i, _)| i.as_str())
                .collect();
            let note: String = before.iter().map(|i| format!("{i};")).collect();
            assert_eq!(
                ran.rows_of(id),
                [&json!({"value": before.len(), "note": note})],
                "jobs {jobs}, record {id}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What the sandbox grants: files, sockets, environment, clocks, randomness
// ---------------------------------------------------------------------------------------------

/// A files root: a directory per clean record (one file each), record `doc` with `own.txt`,
/// a symlink to a file outside and a symlinked directory leading outside; and that outside
/// directory, holding `secret.txt`.
fn files_with_escapes(clean: &[(String, Value)]) -> (tempfile::TempDir, tempfile::TempDir) {
    let files = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    for (id, _) in clean {
        std::fs::create_dir(files.path().join(id)).unwrap();
        std::fs::write(files.path().join(id).join("f.txt"), id).unwrap();
    }
    let doc = files.path().join("doc");
    std::fs::create_dir(&doc).unwrap();
    std::fs::write(doc.join("own.txt"), "mine").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), doc.join("link.txt")).unwrap();
    std::os::unix::fs::symlink(outside.path(), doc.join("outside")).unwrap();
    (files, outside)
}

fn tree(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            names.push(path.strip_prefix(dir).unwrap().display().to_string());
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            }
        }
    }
    names.sort();
    names
}

#[test]
fn reading_outside_the_files_directory_finds_nothing() {
    let clean = clean_records();
    let (files, outside) = files_with_escapes(&clean);
    let host_path = |p: &Path| p.to_str().unwrap().to_owned();
    let read = |path: String| json!({"action": "read", "path": path});
    let hostile: Vec<(&str, Value, Expect)> = vec![
        (
            "doc",
            read("/files/doc/own.txt".into()),
            Expect::Row(json!({"value": 1, "note": "mine"})),
        ),
        (
            "dotdot",
            read("/files/doc/../../etc/passwd".into()),
            Expect::Passes(value_is_zero),
        ),
        (
            "dotdot-sibling",
            read("/files/doc/../clean-0/f.txt".into()),
            Expect::Passes(value_is_zero),
        ),
        (
            "relative",
            read("../etc/passwd".into()),
            Expect::Passes(value_is_zero),
        ),
        (
            "absolute",
            read("/etc/passwd".into()),
            Expect::Passes(value_is_zero),
        ),
        (
            "proc",
            read("/proc/self/environ".into()),
            Expect::Passes(value_is_zero),
        ),
        (
            "host-path",
            read(host_path(&files.path().join("doc/own.txt"))),
            Expect::Passes(value_is_zero),
        ),
        (
            "outside-path",
            read(host_path(&outside.path().join("secret.txt"))),
            Expect::Passes(value_is_zero),
        ),
        (
            "via-link",
            read("/files/doc/link.txt".into()),
            Expect::Passes(value_is_zero),
        ),
        (
            "via-dir-link",
            read("/files/doc/outside/secret.txt".into()),
            Expect::Passes(value_is_zero),
        ),
    ];
    // `doc`'s own reads through its links: chunk size 1, so each record sees only its own
    // directory (with a larger chunk, call-mates' directories are visible too, read-only).
    let doc_reads = hostile
        .iter()
        .filter(|(id, _, _)| id.starts_with("via"))
        .map(|(id, m, _)| (*id, m.clone()))
        .collect::<Vec<_>>();
    assert_isolated(&load("chaos"), &clean, &hostile, |r| {
        r.files = Some(files.path().into());
    });
    // The owner of the links cannot follow them either.
    for (_, metadata) in doc_reads {
        let ran = run_with(load("chaos"), &jsonl(&[("doc", metadata)]), |r| {
            r.files = Some(files.path().into());
        });
        assert_eq!(
            ran.rows_of("doc")[0]["value"],
            0,
            "{:?}",
            ran.rows_of("doc")
        );
    }
}

#[test]
fn writing_files_changes_nothing_on_the_host() {
    let clean = clean_records();
    let (files, outside) = files_with_escapes(&clean);
    let before = (tree(files.path()), tree(outside.path()));
    let write = |path: &str| json!({"action": "write", "path": path});
    let outside_target = outside.path().join("new.txt");
    let hostile: Vec<(&str, Value, Expect)> = vec![
        (
            "doc",
            write("/files/doc/new.txt"),
            Expect::Passes(value_is_zero),
        ),
        (
            "overwrite",
            write("/files/doc/own.txt"),
            Expect::Passes(value_is_zero),
        ),
        ("root", write("/new.txt"), Expect::Passes(value_is_zero)),
        ("tmp", write("/tmp/new.txt"), Expect::Passes(value_is_zero)),
        (
            "via-dir-link",
            write("/files/doc/outside/new.txt"),
            Expect::Passes(value_is_zero),
        ),
        (
            "host-path",
            write(outside_target.to_str().unwrap()),
            Expect::Passes(value_is_zero),
        ),
    ];
    assert_isolated(&load("hostile"), &clean, &hostile, |r| {
        r.files = Some(files.path().into());
    });
    assert_eq!((tree(files.path()), tree(outside.path())), before);
    assert_eq!(
        std::fs::read_to_string(files.path().join("doc/own.txt")).unwrap(),
        "mine"
    );
    assert!(!Path::new("/new.txt").exists() && !Path::new("/tmp/new.txt").exists());
}

#[test]
fn sockets_are_denied_and_nothing_reaches_the_network() {
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    tcp.set_nonblocking(true).unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_nonblocking(true).unwrap();
    let tcp_addr = tcp.local_addr().unwrap().to_string();
    let udp_addr = udp.local_addr().unwrap().to_string();
    let denied = |features: &Value| {
        features["value"] == 0
            && features["note"]
                .as_str()
                .is_some_and(|n| n.starts_with("PermissionDenied"))
    };
    assert_isolated(
        &load("hostile"),
        &clean_records(),
        &[
            (
                "tcp",
                json!({"action": "tcp", "addr": tcp_addr}),
                Expect::Passes(denied),
            ),
            (
                "listen",
                json!({"action": "tcp_listen"}),
                Expect::Passes(denied),
            ),
            (
                "udp",
                json!({"action": "udp", "addr": udp_addr}),
                Expect::Passes(denied),
            ),
            (
                "dns",
                json!({"action": "dns", "host": "localhost"}),
                Expect::Passes(value_is_zero),
            ),
        ],
        |_| {},
    );
    assert!(tcp.accept().is_err(), "a guest connected to the host");
    let mut buffer = [0u8; 16];
    assert!(
        udp.recv_from(&mut buffer).is_err(),
        "a guest sent a datagram"
    );
}

#[test]
fn environment_clocks_and_randomness_are_fixed() {
    let first = assert_isolated(
        &load("chaos"),
        &clean_records(),
        &[
            (
                "env",
                json!({"action": "env"}),
                Expect::Row(json!({"value": 0, "note": ""})),
            ),
            (
                "clock",
                json!({"action": "clock"}),
                Expect::Row(json!({"value": 946_684_800, "note": "0"})),
            ),
            (
                "random",
                json!({"action": "random"}),
                Expect::Passes(|_| true),
            ),
        ],
        |_| {},
    );
    let second = run_with(
        load("chaos"),
        &jsonl(&[("random", json!({"action": "random"}))]),
        |_| {},
    );
    assert_eq!(first.rows_of("random"), second.rows_of("random"));
}

#[test]
fn a_fifo_among_a_records_files_cannot_hang_the_host() {
    let files = tempfile::tempdir().unwrap();
    let clean = clean_records();
    for (id, _) in &clean {
        std::fs::create_dir(files.path().join(id)).unwrap();
    }
    let doc = files.path().join("doc");
    std::fs::create_dir(&doc).unwrap();
    let fifo = doc.join("pipe");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    // If the host hangs on the FIFO, a writer releases it after 20 s so the test fails
    // instead of hanging forever.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let release = {
        let (done, fifo) = (done.clone(), fifo.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if done.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if let Ok(mut writer) = std::fs::OpenOptions::new().write(true).open(&fifo) {
                let _ = writer.write_all(b"released by the test");
            }
        })
    };
    let started = Instant::now();
    let input = jsonl(&[
        ("clean-0", json!({"n": 0})),
        ("doc", json!({"action": "read", "path": "/files/doc/pipe"})),
        ("clean-1", json!({"n": 7})),
    ]);
    let ran = run_with(load("chaos"), &input, |r| {
        r.files = Some(files.path().into());
        r.limits.timeout = Duration::from_millis(500);
    });
    done.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    release.join().unwrap();
    assert!(
        elapsed < Duration::from_secs(15),
        "the run hung for {elapsed:?}"
    );
    assert_eq!(ran.passed_ids(), ["clean-0", "clean-1"]);
    assert_eq!(ran.error_of("doc")["kind"], "invalid_input");
}

// ---------------------------------------------------------------------------------------------
// configure
// ---------------------------------------------------------------------------------------------

#[test]
fn a_configure_that_loops_or_panics_fails_the_run_with_the_reason() {
    for (config, expect) in [
        (r#"{"configure": "loop"}"#, "ran out of fuel"),
        (r#"{"configure": "panic"}"#, "unreachable"),
        (
            r#"{"configure": "refuse"}"#,
            "raw-outcomes: configure refuses",
        ),
    ] {
        let ran = run_with(
            load("raw_outcomes"),
            &jsonl(&[("a", json!({"n": 1})), ("b", json!({"n": 2}))]),
            |r| {
                r.config = Some(config.into());
                r.limits.fuel_per_record = 20_000_000;
            },
        );
        assert_eq!(ran.record.status, RunStatus::Failed, "{config}");
        let error = ran.record.error.as_deref().unwrap_or_default();
        assert!(error.contains(expect), "{config}: {error}");
        assert!(ran.features.is_empty() && ran.errors.is_empty());
    }
}
