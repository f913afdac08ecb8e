//! Compile, fresh-sandbox call and per-record cost of the `text-stats` hook, against the same
//! Rust code compiled natively and called in-process (the baseline, measured in the same run).
//!
//! Needs the guest components built first (`make guests`). Run: `cargo bench -p hookhost-benches`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hookhost::bindings::Record;
use hookhost::limits::Limits;
use hookhost::runner::{BatchRunner, PendingRecord, RunnerSettings};
use hookhost::{Host, HostConfig};
use hookhost_sdk::Hook as _;

fn component_path(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../example-hooks/target/wasm32-wasip2/release")
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run `make guests` first",
        path.display()
    );
    path
}

/// A record whose text is about 1 KB of words.
fn record(i: usize) -> PendingRecord {
    let words = [
        "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
    ];
    let text: Vec<&str> = (0..160).map(|w| words[(w * 7 + i) % words.len()]).collect();
    let metadata = serde_json::json!({"text": text.join(" ")}).to_string();
    PendingRecord {
        record: Record {
            id: format!("r{i}"),
            metadata,
            size_hint_mb: None,
            files_dir: None,
        },
        files_host_dir: None,
    }
}

fn runner(host: &Host, bytes: &[u8]) -> BatchRunner {
    let hook = host.load_bytes(bytes, "text_stats.wasm").unwrap();
    BatchRunner::new(
        hook,
        RunnerSettings {
            limits: Limits::default(),
            memory_ceiling: host.ceilings().memory_bytes,
            config_json: "{}".into(),
            max_output_bytes_per_record: hookhost::runner::DEFAULT_MAX_OUTPUT_BYTES_PER_RECORD,
            max_log_bytes: hookhost::runner::DEFAULT_MAX_LOG_BYTES,
            cancel: Arc::new(AtomicBool::new(false)),
        },
    )
}

fn benches(c: &mut Criterion) {
    let host = Host::new(HostConfig::default()).unwrap();
    let bytes = std::fs::read(component_path("text_stats")).unwrap();

    let mut compile = c.benchmark_group("compile");
    compile.sample_size(10);
    compile.bench_function("text_stats", |b| {
        b.iter(|| host.load_bytes(&bytes, "text_stats.wasm").unwrap())
    });
    compile.finish();

    let mut runner = runner(&host, &bytes);
    let mut group = c.benchmark_group("text_stats");
    for batch in [1usize, 100] {
        let records: Vec<PendingRecord> = (0..batch).map(record).collect();
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(
            BenchmarkId::new("component", batch),
            &records,
            |b, records| b.iter(|| runner.run_chunk(records).unwrap()),
        );
        let native: Vec<hookhost_sdk::Record> = records
            .iter()
            .map(|r| hookhost_sdk::Record::new(r.record.id.clone(), r.record.metadata.clone()))
            .collect();
        let hook = text_stats::TextStatsHook;
        group.bench_with_input(BenchmarkId::new("native", batch), &native, |b, native| {
            b.iter_batched(
                || (),
                |()| {
                    native
                        .iter()
                        .map(|r| hook.process(r).unwrap())
                        .collect::<Vec<_>>()
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(sandbox, benches);
criterion_main!(sandbox);
