//! End to end, and what a second core buys (issue 15), each against a baseline in the same run:
//!
//! - `end_to_end/host_run/jobs_{1,2}` — `run_to_dir` (what `host run` does once the component
//!   is loaded from the cache) of the `text_stats` example hook over 40 000 ~1 KB records from a
//!   JSONL file into a run directory, with 1 or 2 worker threads;
//! - `end_to_end/native` — a native Rust program doing the same work on one thread: read the
//!   file, parse each line, run the same `text-stats` crate compiled natively, render each row
//!   as the JSONL line the host writes, write it, and sha256 the input and the output;
//! - `end_to_end/embed/{sequential,concurrent_2}` — the embedding API over 4 batches of
//!   10 000 of those records into directories, one batch at a time or two at once, and
//!   `end_to_end/embed/one_batch` over all 40 000 as one batch (the embedding path's cost per
//!   record, without the per-batch cost of three more batches);
//! - `calibration/cpu_{1,2}` — a fixed CPU-bound loop (sha256 chains) on 1 thread or split over
//!   2: what this machine gives two CPU-bound threads, beside the 2-job figure.
//!
//! Run with `make -C benches bench` (see `benches/README.md`).

mod common;

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hookhost::embed::{Batch, BatchOptions, BatchState, Hookhost, Snapshot, SnapshotHook};
use hookhost::{HookComponent, Host, HostConfig};
use hookhost_sdk::{Features as _, Hook as _, Value};
use sha2::{Digest as _, Sha256};

const RECORDS: usize = 40_000;
const BATCHES: usize = 4;

fn text_stats(host: &Host) -> HookComponent {
    host.load_bytes(&common::component("text_stats"), "text_stats.wasm")
        .unwrap()
}

/// The native program: the same read, parse, compute, render, write and hashing as `host run`,
/// on one thread. Returns the rows written.
fn native(input: &Path, output: &Path) -> u64 {
    let mut input_hash = Sha256::new();
    let mut output_hash = Sha256::new();
    let mut out = BufWriter::with_capacity(256 * 1024, std::fs::File::create(output).unwrap());
    let reader = BufReader::with_capacity(256 * 1024, std::fs::File::open(input).unwrap());
    let columns = text_stats::TextStats::contract().columns;
    let hook = text_stats::TextStatsHook;
    let mut rows = 0;
    let mut line = Vec::new();
    let mut reader = reader;
    while reader.read_until(b'\n', &mut line).unwrap() > 0 {
        input_hash.update(&line);
        let parsed: serde_json::Value = serde_json::from_slice(&line).unwrap();
        let id = parsed["id"].as_str().unwrap();
        let record = hookhost_sdk::Record::new(id.to_owned(), parsed["metadata"].to_string());
        for row in hook.process(&record).unwrap() {
            let mut rendered = Vec::with_capacity(192);
            rendered.extend_from_slice(b"{\"id\":");
            serde_json::to_writer(&mut rendered, id).unwrap();
            rendered.extend_from_slice(b",\"run_id\":\"00000000-0000-7000-8000-000000000000\"");
            rendered.extend_from_slice(b",\"features\":{");
            for (index, (column, value)) in columns.iter().zip(row.into_row()).enumerate() {
                if index > 0 {
                    rendered.push(b',');
                }
                serde_json::to_writer(&mut rendered, &column.name).unwrap();
                rendered.push(b':');
                match value {
                    Value::Null => rendered.extend_from_slice(b"null"),
                    Value::Text(text) => serde_json::to_writer(&mut rendered, &text).unwrap(),
                    Value::Integer(n) => serde_json::to_writer(&mut rendered, &n).unwrap(),
                    Value::Number(x) => serde_json::to_writer(&mut rendered, &x).unwrap(),
                    other => panic!("text_stats gives no {other:?}"),
                }
            }
            rendered.extend_from_slice(b"}}\n");
            output_hash.update(&rendered);
            out.write_all(&rendered).unwrap();
            rows += 1;
        }
        line.clear();
    }
    let file = out.into_inner().unwrap();
    file.sync_all().unwrap();
    std::hint::black_box((input_hash.finalize(), output_hash.finalize()));
    rows
}

/// A fixed amount of CPU-bound work (a sha256 chain) split over `threads` threads.
fn cpu_bound(threads: usize) {
    const ROUNDS: usize = 200_000;
    std::thread::scope(|scope| {
        for t in 0..threads {
            scope.spawn(move || {
                let mut digest = [t as u8; 32];
                for _ in 0..ROUNDS / threads {
                    digest = Sha256::digest(digest).into();
                }
                std::hint::black_box(digest);
            });
        }
    });
}

fn end_to_end(c: &mut Criterion) {
    let temp = tempfile::tempdir().unwrap();
    let input = temp.path().join("batch.jsonl");
    common::write_text_batch(&input, "r", 0..RECORDS);
    let host = Host::new(HostConfig::default()).unwrap();
    let hook = text_stats(&host);
    let mut group = c.benchmark_group("end_to_end");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(RECORDS as u64));
    common::bench_host_run(&mut group, &hook, &input, temp.path(), RECORDS);
    let mut runs = 0u64;
    let output = temp.path().join("native.jsonl");
    group.bench_function("native", |b| {
        b.iter(|| assert_eq!(native(&input, &output), RECORDS as u64))
    });

    let batches: Vec<PathBuf> = (0..BATCHES)
        .map(|b| {
            let path = temp.path().join(format!("batch-{b}.jsonl"));
            let per = RECORDS / BATCHES;
            common::write_text_batch(&path, &format!("b{b}-"), b * per..(b + 1) * per);
            path
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let snapshot = Snapshot::new(vec![SnapshotHook::new("text_stats", hook.clone())]).unwrap();
    let whole = std::slice::from_ref(&input);
    for (name, batches, at_once) in [
        ("sequential", &batches[..], 1usize),
        ("concurrent_2", &batches[..], 2),
        ("one_batch", whole, 1),
    ] {
        // One sandbox per batch at a time, as the example worker's `--concurrency` gives.
        let hookhost = Hookhost::new(host.clone(), None, at_once);
        group.bench_function(format!("embed/{name}"), |b| {
            b.iter(|| {
                runs += 1;
                let outs: Vec<PathBuf> = (0..batches.len())
                    .map(|b| temp.path().join(format!("embed-{runs}-{b}")))
                    .collect();
                runtime.block_on(async {
                    for group in batches
                        .iter()
                        .zip(&outs)
                        .collect::<Vec<_>>()
                        .chunks(at_once)
                    {
                        let mut handles = Vec::new();
                        for (batch, out) in group {
                            let options = BatchOptions::default().with_out(*out).with_jobs(1);
                            let handle = hookhost
                                .begin(&snapshot, Batch::jsonl(*batch), options)
                                .await
                                .unwrap();
                            handles.push(handle);
                        }
                        for handle in handles {
                            assert_eq!(handle.await.unwrap().state, BatchState::Succeeded);
                        }
                    }
                });
                for out in outs {
                    std::fs::remove_dir_all(out).unwrap();
                }
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("calibration");
    group.sample_size(10);
    for threads in [1usize, 2] {
        group.bench_function(format!("cpu_{threads}"), |b| b.iter(|| cpu_bound(threads)));
    }
    group.finish();
}

criterion_group!(benches, end_to_end);
criterion_main!(benches);
