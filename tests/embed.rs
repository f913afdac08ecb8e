//! The embedding API (issue 4): concurrent batches on one host, cancel, idempotency keys,
//! snapshot stability, typed errors, and `host run A B …`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{guest, host, load};
use hookhost::embed::{
    Batch, BatchOptions, BatchResult, BatchState, FeatureRow, Hookhost, Record, Snapshot,
    SnapshotHook,
};
use hookhost::limits::Limits;
use hookhost::provenance::{Counts, RunStatus};
use hookhost::registry::{LiveRequest, PublishRequest, Registry};
use hookhost::run::{Input, RunRequest, run_to_dir};
use hookhost::{Error, Host, HostConfig};
use serde_json::{Value, json};

fn counts(total: u64, passed: u64, rejected: u64, errored: u64) -> Counts {
    Counts {
        total,
        passed,
        rejected,
        errored,
    }
}

/// Batch `batch`'s `n` records: texts for `text_stats`, actions for `chaos` (some rejected,
/// some trapping, some without text so `text_stats` rejects them).
fn records(batch: usize, n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| {
            let action = match i % 13 {
                3 => "reject",
                7 => "panic",
                _ => "ok",
            };
            let mut metadata = json!({"action": action, "n": i});
            if i % 5 != 4 {
                metadata["text"] = json!(format!("batch {batch} record {i} says hello world"));
            }
            Record::new(format!("b{batch}-r{i}"), metadata)
        })
        .collect()
}

fn text_and_chaos() -> Snapshot {
    Snapshot::new(vec![
        SnapshotHook::new("text_stats", load("text_stats")),
        SnapshotHook::new("chaos", load("chaos")),
    ])
    .unwrap()
}

/// A batch's outcomes without the run ids (which differ between runs by design), after
/// checking every row names its hook's run.
fn comparable(result: &BatchResult) -> Value {
    let mut hooks = BTreeMap::new();
    for hook in &result.hooks {
        let outcomes = hook.outcomes.as_ref().expect("kept in memory");
        let run_id = &hook.run.run_id;
        assert!(outcomes.features.iter().all(|r| &r.run_id == run_id));
        assert!(outcomes.rejections.iter().all(|r| &r.run_id == run_id));
        assert!(outcomes.errors.iter().all(|r| &r.run_id == run_id));
        let mut value = serde_json::to_value(outcomes).unwrap();
        strip_run_ids(&mut value);
        hooks.insert(hook.name.clone(), (value, hook.run.records));
    }
    json!({"hooks": hooks, "passed": result.passed, "records": result.records})
}

fn strip_run_ids(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("run_id");
            map.values_mut().for_each(strip_run_ids);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_run_ids),
        _ => {}
    }
}

async fn run_batch(hookhost: &Hookhost, snapshot: &Snapshot, batch: Batch) -> Arc<BatchResult> {
    let handle = hookhost
        .begin(snapshot, batch, BatchOptions::default().with_chunk_size(4))
        .await
        .unwrap();
    handle.await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_batches_on_one_host_match_sequential_runs() {
    let snapshot = text_and_chaos();
    let hookhost = Hookhost::new(host().clone(), None, 2);
    let mut sequential = Vec::new();
    for b in 0..4 {
        let result = run_batch(&hookhost, &snapshot, Batch::from_records(records(b, 40))).await;
        sequential.push(comparable(&result));
    }
    // The counts a user relies on, for batch 0 of 40 records: chaos rejects 3, 16 and 29 and
    // traps on 7, 20 and 33; text_stats rejects the 8 records without text (4, 9, …, 39).
    // A record errored by any hook is errored; else rejected by any, rejected (29 is both).
    let first = &sequential[0];
    assert_eq!(first["records"], json!(counts(40, 27, 10, 3)));
    assert_eq!(first["hooks"]["chaos"][1], json!(counts(40, 34, 3, 3)));
    assert_eq!(first["hooks"]["text_stats"][1], json!(counts(40, 32, 8, 0)));
    assert_eq!(
        first["hooks"]["chaos"][0]["errors"][0]["kind"], "trap",
        "{first:#}"
    );

    // Four batches at once, on one engine; then again with a single sandbox permit, where
    // the batches wait for each other instead of failing.
    for permits in [2, 1] {
        let hookhost = Hookhost::new(host().clone(), None, permits);
        let mut handles = Vec::new();
        for b in 0..4 {
            let batch = Batch::from_records(records(b, 40));
            let options = BatchOptions::default().with_chunk_size(4);
            handles.push(hookhost.begin(&snapshot, batch, options).await.unwrap());
        }
        for (b, handle) in handles.into_iter().enumerate() {
            let result = handle.await.unwrap();
            assert_eq!(result.state, BatchState::Succeeded);
            assert_eq!(
                comparable(&result),
                sequential[b],
                "batch {b}, {permits} permits"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_looping_hook_within_moments_and_keeps_what_was_settled() {
    // 12 records that pass, then 4 that loop for about half an hour of fuel, then 4 more.
    let mut batch: Vec<Record> = (0..12)
        .map(|i| Record::new(format!("ok-{i}"), json!({"n": i})))
        .collect();
    batch.extend((0..4).map(|i| Record::new(format!("loop-{i}"), json!({"action": "loop"}))));
    batch.extend((12..16).map(|i| Record::new(format!("ok-{i}"), json!({"n": i}))));
    let limits = Limits::default()
        .with_fuel_per_record(hookhost::limits::MAX_FUEL_PER_RECORD)
        .with_timeout(Duration::from_secs(3600));
    let snapshot = Snapshot::new(vec![
        SnapshotHook::new("chaos", load("chaos")).with_limits(limits),
    ])
    .unwrap();
    let hookhost = Hookhost::new(host().clone(), None, 2);
    let options = BatchOptions::default().with_chunk_size(4);
    let mut handle = hookhost
        .begin(&snapshot, Batch::from_records(batch), options)
        .await
        .unwrap();
    loop {
        let seen = handle.changed().await;
        assert!(!seen.state.is_finished(), "finished early: {seen:?}");
        if seen.records.total == 12 {
            assert_eq!(seen.state, BatchState::Active);
            break;
        }
    }
    // Let the looping call get going, then stop it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cancelled_at = Instant::now();
    handle.cancel();
    let observer = handle.observe();
    let result = handle.await.unwrap();
    let took = cancelled_at.elapsed();
    assert!(took < Duration::from_secs(10), "cancel took {took:?}");
    assert_eq!(observer.records.total, 12);
    assert_eq!(result.state, BatchState::Cancelled);
    assert_eq!(result.records, counts(12, 12, 0, 0));
    let run = &result.hooks[0];
    assert_eq!(run.run.status, RunStatus::Cancelled);
    assert_eq!(run.run.records, counts(12, 12, 0, 0));
    let outcomes = run.outcomes.as_ref().unwrap();
    let ids: Vec<&str> = outcomes.features.iter().map(|r| r.id.as_str()).collect();
    let expected: Vec<String> = (0..12).map(|i| format!("ok-{i}")).collect();
    assert_eq!(ids, expected);
    assert_eq!(result.passed.as_ref().unwrap(), &expected);
}

struct Root {
    _temp: tempfile::TempDir,
    path: PathBuf,
}

fn root_with(hooks: &[(&str, &Path)]) -> (Root, Registry) {
    let temp = tempfile::tempdir().unwrap();
    let path = temp.path().join("root");
    let registry = Registry::open(&path).unwrap();
    for (name, file) in hooks {
        let bytes = std::fs::read(file).unwrap();
        registry
            .publish(
                host(),
                &bytes,
                &file.display().to_string(),
                PublishRequest::new(*name),
            )
            .unwrap();
    }
    (Root { _temp: temp, path }, registry)
}

/// A copy of component `base` with a custom section appended: the same code, another digest.
fn variant(base: &Path, dir: &Path) -> PathBuf {
    let mut bytes = std::fs::read(base).unwrap();
    let name = b"hookhost-embed-variant";
    let mut content = vec![name.len() as u8];
    content.extend_from_slice(name);
    content.extend_from_slice(b"v2");
    bytes.push(0x00);
    bytes.push(content.len() as u8);
    bytes.extend_from_slice(&content);
    let path = dir.join("variant.wasm");
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A stream that yields its records, then waits forever (a queue gone quiet).
struct Stalled(std::vec::IntoIter<Record>);

impl futures_core::Stream for Stalled {
    type Item = Record;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Record>> {
        match self.0.next() {
            Some(record) => std::task::Poll::Ready(Some(record)),
            None => std::task::Poll::Pending,
        }
    }
}

fn runs_recorded(registry: &Registry) -> usize {
    registry.runs(None, 1000).unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_idempotency_key_returns_the_earlier_batch() {
    let (root, registry) = root_with(&[("text_stats", &guest("text_stats"))]);
    let hookhost = Hookhost::new(host().clone(), Some(registry), 2);
    let snapshot = hookhost.snapshot(&["text_stats"]).await.unwrap();
    let keyed = |key: &str| BatchOptions::default().with_idempotency_key(key);
    let batch = || Batch::from_records(records(0, 10));

    let first = hookhost
        .begin(&snapshot, batch(), keyed("k1"))
        .await
        .unwrap();
    assert!(!first.is_reused());
    let first = first.await.unwrap();
    assert_eq!(first.state, BatchState::Succeeded);
    let registry = hookhost.registry().unwrap();
    assert_eq!(runs_recorded(registry), 1);

    let again = hookhost
        .begin(&snapshot, batch(), keyed("k1"))
        .await
        .unwrap();
    assert!(again.is_reused());
    assert_eq!(again.batch_id(), first.batch_id);
    let again = again.await.unwrap();
    assert_eq!(again.hooks[0].run.run_id, first.hooks[0].run.run_id);
    assert_eq!(runs_recorded(registry), 1, "no second run record");

    // Two begins racing on a new key share one batch.
    let a = hookhost
        .begin(&snapshot, batch(), keyed("k2"))
        .await
        .unwrap();
    let b = hookhost
        .begin(&snapshot, batch(), keyed("k2"))
        .await
        .unwrap();
    assert_eq!(a.batch_id(), b.batch_id());
    assert!(b.is_reused());
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(runs_recorded(registry), 2);

    // Another process (a new host on the same root) finds the key in the registry.
    let restarted = Hookhost::new(host().clone(), Some(Registry::open(&root.path).unwrap()), 2);
    let handle = restarted
        .begin(&snapshot, batch(), keyed("k1"))
        .await
        .unwrap();
    assert!(handle.is_reused());
    let read_back = handle.await.unwrap();
    assert!(read_back.reused);
    assert_eq!(read_back.batch_id, first.batch_id);
    assert_eq!(read_back.records, first.records);
    assert_eq!(read_back.hooks[0].run, first.hooks[0].run);
    assert!(
        read_back.hooks[0].outcomes.is_none(),
        "memory outcomes are not stored"
    );
    assert_eq!(runs_recorded(registry), 2);

    // The same key on another snapshot (a new live release) is another batch.
    let temp = tempfile::tempdir().unwrap();
    let v2 = std::fs::read(variant(&guest("text_stats"), temp.path())).unwrap();
    registry
        .publish(host(), &v2, "variant", PublishRequest::new("text_stats"))
        .unwrap();
    let newer = hookhost.snapshot(&["text_stats"]).await.unwrap();
    assert_ne!(newer.digest(), snapshot.digest());
    let other = hookhost.begin(&newer, batch(), keyed("k1")).await.unwrap();
    assert!(!other.is_reused());
    let other = other.await.unwrap();
    assert_eq!(other.hooks[0].run.hook.version, Some(2));
    assert_eq!(runs_recorded(registry), 3);

    // A batch waiting on a stream that has stalled is still cancelled, and a cancelled batch
    // does not hold its key: beginning again runs.
    let stalled = Batch::from_stream(Stalled(records(0, 3).into_iter()));
    let handle = hookhost
        .begin(&snapshot, stalled, keyed("k3"))
        .await
        .unwrap();
    handle.cancel();
    let cancelled = handle.await.unwrap();
    assert_eq!(cancelled.state, BatchState::Cancelled);
    assert_eq!(cancelled.records.total, 0, "nothing was settled");
    let retried = hookhost
        .begin(&snapshot, batch(), keyed("k3"))
        .await
        .unwrap();
    assert!(!retried.is_reused());
    assert_ne!(retried.batch_id(), cancelled.batch_id);
    assert_eq!(retried.await.unwrap().state, BatchState::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_keeps_its_releases_while_the_live_pointer_moves() {
    let temp = tempfile::tempdir().unwrap();
    let v2 = variant(&guest("text_stats"), temp.path());
    let (root, registry) = root_with(&[("text_stats", &guest("text_stats")), ("text_stats", &v2)]);
    let v2_digest = registry
        .release("text_stats", Some(2))
        .unwrap()
        .release
        .digest;
    let hookhost = Hookhost::new(host().clone(), Some(registry), 2);
    let snapshot = hookhost.snapshot(&["text_stats"]).await.unwrap();
    assert_eq!(snapshot.hooks()[0].release.as_ref().unwrap().version, 2);

    // Another process flips the pointer back and forth while the batch runs.
    let flipper = {
        let root = root.path.clone();
        std::thread::spawn(move || {
            let registry = Registry::open(&root).unwrap();
            for i in 0..40 {
                registry
                    .set_live("text_stats", 1 + (i % 2), LiveRequest::local())
                    .unwrap();
            }
            registry
                .set_live("text_stats", 1, LiveRequest::local())
                .unwrap();
        })
    };
    let result = run_batch(&hookhost, &snapshot, Batch::from_records(records(0, 200))).await;
    flipper.join().unwrap();
    assert_eq!(result.state, BatchState::Succeeded);
    assert_eq!(result.hooks[0].run.hook.version, Some(2));
    assert_eq!(result.hooks[0].run.hook.digest, v2_digest);
    assert_eq!(result.snapshot_digest, snapshot.digest());

    // The old snapshot still runs v2; a new one sees the rollback to v1.
    let again = run_batch(&hookhost, &snapshot, Batch::from_records(records(1, 5))).await;
    assert_eq!(again.hooks[0].run.hook.version, Some(2));
    let fresh = hookhost.snapshot(&["text_stats"]).await.unwrap();
    assert_eq!(fresh.hooks()[0].release.as_ref().unwrap().version, 1);
    let stored = hookhost.registry().unwrap().runs(None, 10).unwrap();
    assert!(stored.iter().all(|r| r.record.hook.version == Some(2)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_typed_values() {
    let hookhost = Hookhost::new(host().clone(), None, 2);
    assert!(matches!(
        hookhost.snapshot(&["text_stats"]).await,
        Err(Error::NoRegistry)
    ));
    let (_root, registry) = root_with(&[("text_stats", &guest("text_stats"))]);
    let with_registry = Hookhost::new(host().clone(), Some(registry), 2);
    assert!(matches!(
        with_registry.snapshot(&["nope"]).await,
        Err(Error::HookNotFound { name, .. }) if name == "nope"
    ));
    assert!(matches!(
        with_registry.snapshot(&["text_stats", "text_stats@1"]).await,
        Err(Error::DuplicateHook { name }) if name == "text_stats"
    ));
    assert!(matches!(
        with_registry.snapshot(&["Bad"]).await,
        Err(Error::InvalidHookName { .. })
    ));

    let chaos = || SnapshotHook::new("chaos", load("chaos"));
    assert!(matches!(
        Snapshot::new(vec![chaos(), chaos()]),
        Err(Error::DuplicateHook { .. })
    ));
    assert!(Snapshot::new(vec![]).is_err());
    assert!(matches!(
        Snapshot::new(vec![chaos().with_config("{not json")]),
        Err(Error::InvalidConfig(_))
    ));

    let snapshot = Snapshot::new(vec![chaos()]).unwrap();
    let temp = tempfile::tempdir().unwrap();
    std::fs::write(temp.path().join("in-the-way"), "x").unwrap();
    let begun = hookhost
        .begin(
            &snapshot,
            Batch::from_records(records(0, 1)),
            BatchOptions::default().with_out(temp.path()),
        )
        .await;
    assert!(matches!(begun, Err(Error::OutputExists { .. })));
    let missing = temp.path().join("missing.jsonl");
    let begun = hookhost
        .begin(&snapshot, Batch::jsonl(&missing), BatchOptions::default())
        .await;
    assert!(matches!(begun, Err(Error::Io { path, .. }) if path == missing));

    // Bad records become `invalid_input` errors naming their position; the rest run.
    let mut bad = vec![
        Record::new("", json!({})),
        Record::new("a/b", json!({})),
        Record::new("x", json!({"n": 1})),
        Record::new("x", json!({"n": 2})),
        Record::new("panics", json!({"action": "panic"})),
    ];
    bad.push(Record {
        size_hint_mb: Some(-1.0),
        ..Record::new("negative", json!({}))
    });
    let result = run_batch(&hookhost, &snapshot, Batch::from_records(bad)).await;
    assert_eq!(result.state, BatchState::Succeeded);
    let errors = &result.hooks[0].outcomes.as_ref().unwrap().errors;
    let seen: Vec<(Option<&str>, u64, &str)> = errors
        .iter()
        .map(|e| (e.id.as_deref(), e.line, e.kind.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (None, 1, "invalid_input"),
            (Some("a/b"), 2, "invalid_input"),
            (Some("x"), 4, "invalid_input"),
            (Some("panics"), 5, "trap"),
            (Some("negative"), 6, "invalid_input"),
        ]
    );
    assert!(
        errors[2]
            .error
            .contains("duplicate id (first at position 3)")
    );
    assert_eq!(result.passed.as_deref().unwrap(), ["x"]);

    // A hook that refuses its config fails the batch; the other hook's run stops too.
    let refusing = SnapshotHook::new("require_fields", load("require_fields"))
        .with_config(r#"{"required": 5}"#);
    let snapshot = Snapshot::new(vec![chaos(), refusing]).unwrap();
    let result = run_batch(&hookhost, &snapshot, Batch::from_records(records(0, 3))).await;
    assert_eq!(result.state, BatchState::Failed);
    let [chaos_run, require_run] = [&result.hooks[0].run, &result.hooks[1].run];
    assert_eq!(require_run.status, RunStatus::Failed);
    assert!(
        require_run
            .error
            .as_deref()
            .unwrap()
            .contains("refused its config")
    );
    assert_eq!(chaos_run.status, RunStatus::Failed);
    assert!(
        chaos_run
            .error
            .as_deref()
            .unwrap()
            .contains("stopped: hook `require_fields` failed")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_batch_writes_what_memory_keeps_and_what_host_run_writes() {
    let temp = tempfile::tempdir().unwrap();
    let batch = records(3, 30);
    // The batch as a JSONL file, written the way the library digests records.
    let jsonl: String = batch
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect();
    let input = temp.path().join("batch.jsonl");
    std::fs::write(&input, &jsonl).unwrap();

    let snapshot = text_and_chaos();
    let hookhost = Hookhost::new(host().clone(), None, 2);
    let in_memory = run_batch(&hookhost, &snapshot, Batch::from_records(batch)).await;
    let out = temp.path().join("out");
    let handle = hookhost
        .begin(
            &snapshot,
            Batch::jsonl(&input),
            BatchOptions::default().with_out(&out).with_chunk_size(4),
        )
        .await
        .unwrap();
    let in_dir = handle.await.unwrap();
    assert_eq!(
        in_dir.out_dir.as_deref(),
        Some(std::path::absolute(&out).unwrap().as_path())
    );
    assert_eq!(in_dir.records, in_memory.records);

    for (memory, dir) in in_memory.hooks.iter().zip(&in_dir.hooks) {
        let hook_dir = dir.dir.clone().unwrap();
        assert_eq!(hook_dir, std::path::absolute(out.join(&dir.name)).unwrap());
        // The input digest is the same whether the records came as values or as the file.
        assert_eq!(memory.run.input, dir.run.input);
        assert_eq!(
            memory.run.input.sha256,
            hookhost::digest::hex(&<sha2::Sha256 as sha2::Digest>::digest(&jsonl))
        );
        let rows: Vec<FeatureRow> = std::fs::read_to_string(hook_dir.join("features.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let kept = memory.outcomes.as_ref().unwrap();
        assert_eq!(rows.len(), kept.features.len());
        for (row, kept) in rows.iter().zip(&kept.features) {
            assert_eq!((&row.id, &row.features), (&kept.id, &kept.features));
            assert_eq!(row.run_id, dir.run.run_id);
        }
        let run_json: Value =
            serde_json::from_str(&std::fs::read_to_string(hook_dir.join("run.json")).unwrap())
                .unwrap();
        assert_eq!(run_json["run_id"], dir.run.run_id.as_str());

        // `host run` of the same hook over the same file writes the same content.
        let single = temp.path().join(format!("single-{}", dir.name));
        let mut request = RunRequest::new(
            dir_component(&dir.name),
            Input::File(input.clone()),
            &single,
        );
        request.chunk_size = Some(4);
        // `run_to_dir` is synchronous guest code: off the runtime's threads.
        let record = tokio::task::spawn_blocking(move || run_to_dir(request, &mut |_| {}).unwrap())
            .await
            .unwrap();
        for name in ["features.jsonl", "rejections.jsonl", "errors.jsonl"] {
            assert_eq!(
                record.outputs[name].content_sha256, dir.run.outputs[name].content_sha256,
                "{} {name}",
                dir.name
            );
        }
    }
    let passed: Vec<String> = std::fs::read_to_string(out.join("passed.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(&passed, in_memory.passed.as_ref().unwrap());
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("batch.json")).unwrap()).unwrap();
    assert_eq!(summary["batch_id"], in_dir.batch_id.as_str());
    assert_eq!(summary["state"], "succeeded");
    assert_eq!(summary["hooks"][1]["name"], "chaos");
    // Nothing is left beside the output but the output.
    let names: Vec<String> = std::fs::read_dir(temp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

fn dir_component(name: &str) -> hookhost::HookComponent {
    load(name)
}

fn host_cmd(root: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_host"));
    command.arg("--root").arg(root);
    command
}

#[test]
fn host_run_with_several_hooks_writes_a_directory_per_hook_and_the_passed_ids() {
    let (root, _registry) = root_with(&[("text_stats", &guest("text_stats"))]);
    let temp = tempfile::tempdir().unwrap();
    let input = temp.path().join("batch.jsonl");
    let jsonl: String = records(0, 20)
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect();
    std::fs::write(&input, jsonl).unwrap();
    let out = temp.path().join("out");
    let chaos = guest("chaos");
    let output = host_cmd(&root.path)
        .args(["run", "text_stats"])
        .arg(&chaos)
        .arg("--input")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("text_stats v1: run "), "{stdout}");
    assert!(
        stdout.contains("20 records: 13 passed every hook, 6 rejected, 1 errored"),
        "{stdout}"
    );
    for hook in ["text_stats", "chaos"] {
        let run: Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(hook).join("run.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(run["status"], "succeeded");
        assert_eq!(run["records"]["total"], 20);
    }
    let passed = std::fs::read_to_string(out.join("passed.jsonl")).unwrap();
    assert_eq!(passed.lines().count(), 13);
    assert!(passed.starts_with("{\"id\":\"b0-r0\"}\n"));
    let runs = host_cmd(&root.path)
        .args(["runs", "--json"])
        .output()
        .unwrap();
    let runs: Value = serde_json::from_slice(&runs.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 2);

    // Mistakes are named.
    let refused = host_cmd(&root.path)
        .args(["run", "text_stats"])
        .arg(&chaos)
        .args(["--config", "nope={}", "--input"])
        .arg(&input)
        .arg("--out")
        .arg(temp.path().join("other"))
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("`nope`"));
    let twice = host_cmd(&root.path)
        .args(["run", "text_stats", "text_stats@1", "--input"])
        .arg(&input)
        .arg("--out")
        .arg(temp.path().join("twice"))
        .output()
        .unwrap();
    assert_eq!(twice.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&twice.stderr).contains("more than once"));
}

#[test]
fn a_host_can_be_opened_on_a_root() {
    let temp = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let opened = runtime.block_on(hookhost::embed::Hookhost::open(
        temp.path().join("root"),
        hookhost::embed::EmbedConfig {
            host: HostConfig::default(),
            max_sandboxes: 3,
            ..hookhost::embed::EmbedConfig::default()
        },
    ));
    let opened = opened.unwrap();
    assert_eq!(opened.max_sandboxes(), 3);
    assert!(temp.path().join("root/registry.db").exists());
    let _: &Host = opened.host();
}
