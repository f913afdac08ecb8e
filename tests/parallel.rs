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
            r.chunk_size = Some(4);
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
            r.chunk_size = Some(2);
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

/// Issue 11: a hook set runs on the same workers as one hook, `jobs` chunks at a time, and
/// every output of every hook — and the batch's `passed.jsonl` — is the same for any `jobs`.
#[test]
fn a_hook_set_runs_parallel_chunks_with_outputs_the_same_for_any_jobs() {
    use hookhost::exec::{BatchRequest, BatchState, Layout, Plan, execute};
    use hookhost::input::{FilesRoot, Record, Source, ValuesSource};

    let records: Vec<Record> = (0..48)
        .map(|i| {
            let metadata = match i % 8 {
                3 => json!({"action": "reject"}),
                5 => json!({"action": "panic"}),
                6 => json!({"title": "x", "action": "print", "lines": 1}),
                _ => json!({"title": format!("t{i}"), "n": i}),
            };
            Record::new(format!("r{i:02}"), metadata)
        })
        .collect();
    let run = |jobs: usize| {
        let temp = tempfile::tempdir().unwrap();
        let out = temp.path().join("batch");
        let plans = vec![
            Plan::new(
                "chaos",
                load("chaos"),
                None,
                None,
                &Default::default(),
                None,
            )
            .unwrap(),
            Plan::new(
                "require_fields",
                load("require_fields"),
                None,
                Some(r#"{"required": ["title"]}"#),
                &Default::default(),
                None,
            )
            .unwrap(),
        ];
        let mut request = BatchRequest::new(plans, Layout::Batch(out.clone()));
        request.jobs = jobs;
        request.chunk_size = Some(3);
        let mut source = ValuesSource::new(records.clone().into_iter(), None::<FilesRoot>);
        let executed = execute(request, &mut source as &mut dyn Source, &mut |_| {}).unwrap();
        assert_eq!(executed.result.state, BatchState::Succeeded);
        let digests: Vec<String> = executed
            .result
            .hooks
            .iter()
            .flat_map(|h| h.run.outputs.values().map(|o| o.content_sha256.clone()))
            .collect();
        let passed = std::fs::read_to_string(out.join("passed.jsonl")).unwrap();
        (executed.result.records, digests, passed, temp)
    };
    let (counts, digests, passed, _one) = run(1);
    assert_eq!(counts.total, 48);
    assert!(
        counts.passed > 0 && counts.rejected > 0 && counts.errored > 0,
        "{counts:?}"
    );
    for jobs in [2, 5] {
        let (many_counts, many_digests, many_passed, _dir) = run(jobs);
        assert_eq!(many_counts, counts, "{jobs} jobs");
        assert_eq!(many_digests, digests, "{jobs} jobs");
        assert_eq!(many_passed, passed, "{jobs} jobs");
    }
}

/// A file's chunks, counted as the batch asks for them; the chunk after `fail_at` chunks
/// cannot be read (a disk gone, say).
struct CountedFile {
    inner: hookhost::input::JsonlSource,
    asked: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    fail_at: Option<usize>,
}

impl hookhost::input::Source for CountedFile {
    fn next_chunk(&mut self, records: usize) -> Result<hookhost::input::Chunk, hookhost::Error> {
        let asked = self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if Some(asked) == self.fail_at {
            return Err(hookhost::Error::Io {
                path: "batch.jsonl".into(),
                source: std::io::Error::other("the disk went away"),
            });
        }
        self.inner.next_chunk(records)
    }
    fn bytes_read(&self) -> u64 {
        self.inner.bytes_read()
    }
    fn summary(&self) -> hookhost::provenance::InputRecord {
        self.inner.summary()
    }
}

/// Runs chaos over `records` plain records from a counted file, in memory, chunks of 128 (a
/// flight a chunk); `cancel_after` settled chunks, the batch is cancelled.
fn run_counted(
    records: usize,
    jobs: usize,
    fail_at: Option<usize>,
    cancel_after: Option<u64>,
) -> (hookhost::exec::BatchResult, usize) {
    use hookhost::exec::{BatchRequest, Layout, Plan, execute};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let temp = tempfile::tempdir().unwrap();
    let path = temp.path().join("batch.jsonl");
    let lines: Vec<(String, serde_json::Value)> = (0..records)
        .map(|i| (format!("r{i:05}"), json!({"n": i})))
        .collect();
    let lines: Vec<(&str, serde_json::Value)> = lines
        .iter()
        .map(|(id, m)| (id.as_str(), m.clone()))
        .collect();
    std::fs::write(&path, jsonl(&lines)).unwrap();
    let asked = std::sync::Arc::new(AtomicUsize::new(0));
    let mut source = CountedFile {
        inner: hookhost::run::Input::File(path).open(None).unwrap(),
        asked: asked.clone(),
        fail_at,
    };
    let limits = hookhost::limits::Limits::default();
    let plan = Plan::new("chaos", load("chaos"), None, None, &limits, None).unwrap();
    let mut batch = BatchRequest::new(vec![plan], Layout::Memory);
    batch.chunk_size = Some(128);
    batch.jobs = jobs;
    let cancel = batch.cancel.clone();
    let mut progress = |p: &hookhost::exec::Progress| {
        if cancel_after.is_some_and(|after| p.counts.total >= after * 128) {
            cancel.store(true, Ordering::SeqCst);
        }
    };
    let executed = execute(batch, &mut source, &mut progress).expect("the batch starts");
    (executed.result, asked.load(Ordering::SeqCst))
}

#[test]
fn an_input_that_cannot_be_read_mid_way_fails_the_batch_after_a_prefix() {
    for jobs in [1, 2] {
        let (result, asked) = run_counted(128 * 40, jobs, Some(12), None);
        assert_eq!(
            result.state,
            hookhost::exec::BatchState::Failed,
            "{jobs} jobs"
        );
        let run = &result.hooks[0].run;
        let error = run.error.as_deref().unwrap_or_default();
        assert!(error.contains("the disk went away"), "{jobs} jobs: {error}");
        assert_eq!(asked, 13, "{jobs} jobs: nothing is read after the error");
        // What settled is whole chunks from the start, in input order, before the error.
        let settled = result.records.total;
        assert!(
            settled % 128 == 0 && settled <= 12 * 128,
            "{jobs} jobs: {settled}"
        );
        let features = &result.hooks[0].outcomes.as_ref().unwrap().features;
        let ids: Vec<&str> = features.iter().map(|row| row.id.as_str()).collect();
        let expected: Vec<String> = (0..settled).map(|i| format!("r{i:05}")).collect();
        assert_eq!(ids, expected, "{jobs} jobs");
    }
}

#[test]
fn a_cancelled_batch_stops_reading_its_input() {
    for jobs in [1, 2] {
        let chunks = 200;
        let (result, asked) = run_counted(128 * chunks, jobs, None, Some(2));
        assert_eq!(
            result.state,
            hookhost::exec::BatchState::Cancelled,
            "{jobs} jobs"
        );
        // The reader is at most its window of flights (2 × jobs + 1) ahead of the settled
        // chunks when the cancel comes, and reads nothing after it.
        let settled = (result.records.total / 128) as usize;
        assert!(
            asked <= settled + 2 * jobs + 3 && asked < chunks,
            "{jobs} jobs: {asked} chunks read, {settled} settled"
        );
    }
}
