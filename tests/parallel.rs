//! Chunks run in parallel (`jobs`, issue 5): the outputs are byte-identical to a run on one
//! thread — order, content, logs — and OOM doubling and isolation still work per chunk.

mod common;

use common::{jsonl, load, run_with};
use hookhost::limits::MIB;
use serde_json::json;

/// A file's content without the run: every `,"run_id":"…"` member removed.
fn without_run_id(text: &str, run_id: &str) -> String {
    text.replace(&format!(",\"run_id\":\"{run_id}\""), "")
}

#[test]
fn parallel_chunks_write_what_one_thread_writes() {
    let mut records = Vec::new();
    for i in 0..60 {
        let metadata = match i % 10 {
            2 => json!({"action": "reject"}),
            5 => json!({"action": "panic"}),
            7 => json!({"action": "print", "lines": 2}),
            8 => json!({"action": "loop"}),
            _ => json!({"n": i}),
        };
        records.push((format!("r{i:02}"), metadata));
    }
    let records: Vec<(&str, serde_json::Value)> = records
        .iter()
        .map(|(id, m)| (id.as_str(), m.clone()))
        .collect();
    let input = jsonl(&records);
    let run = |jobs: usize| {
        run_with(load("chaos"), &input, |r| {
            r.jobs = jobs;
            r.chunk_size = 4;
            r.limits.fuel_per_record = 50_000_000;
        })
    };
    let one = run(1);
    for jobs in [2, 4] {
        let many = run(jobs);
        assert_eq!(many.record.records, one.record.records, "{jobs} jobs");
        for name in [
            "features.jsonl",
            "rejections.jsonl",
            "errors.jsonl",
            "logs.txt",
        ] {
            let read = |dir: &std::path::Path, run_id: &str| {
                without_run_id(&std::fs::read_to_string(dir.join(name)).unwrap(), run_id)
            };
            assert_eq!(
                read(&many.dir, &many.record.run_id),
                read(&one.dir, &one.record.run_id),
                "{name} with {jobs} jobs"
            );
            assert_eq!(
                many.record.outputs[name].content_sha256, one.record.outputs[name].content_sha256,
                "{name}"
            );
        }
    }
    assert_eq!(one.record.records.errored, 12, "6 panics and 6 loops");
    assert_eq!(one.error_of("r08")["kind"], "fuel_exhausted");
    assert_eq!(one.error_of("r05")["kind"], "trap");
}

#[test]
fn parallel_chunks_share_one_memory_cap_and_count_each_doubling_once() {
    // Two chunks at once each hold a record needing 100 MiB: the cap doubles 32 → 64 → 128
    // once for the run, whichever chunk asks first, exactly as on one thread.
    let input = jsonl(&[
        ("a", json!({"alloc_mb": 1})),
        ("big-1", json!({"alloc_mb": 100})),
        ("b", json!({"alloc_mb": 2})),
        ("big-2", json!({"alloc_mb": 100})),
    ]);
    let run = |jobs: usize| {
        run_with(load("memory_hungry"), &input, |r| {
            r.jobs = jobs;
            r.chunk_size = 2;
            r.limits.memory_bytes = 32 * MIB;
        })
    };
    let one = run(1);
    let two = run(2);
    for ran in [&one, &two] {
        assert_eq!(ran.passed_ids(), ["a", "big-1", "b", "big-2"]);
        assert_eq!(ran.record.oom_retries, 2);
        assert_eq!(ran.record.memory_bytes_final, 128 * MIB);
    }
}
