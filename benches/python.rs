//! Python hooks against native CPython (issue 13), in one criterion run:
//!
//! - `python_text_stats/component/{16,256}` — the Python `text_stats` example hook as a
//!   component (CPython in WebAssembly, built by componentize-py), one runner call per chunk of
//!   16 or 256 of the ~1 KB texts, per record;
//! - `python_text_stats/native_cpython` — the same hook function on the native CPython of the
//!   Makefile's venv (`target/python-venv`), over the same records with their JSON metadata
//!   parsed, timed by a peer process (`benches/python_native.py`) on request;
//! - `python_text_stats/host_run/jobs_{1,2}` — `run_to_dir` of the component over 4096 of the
//!   texts with 1 or 2 workers (issue 15: what a second core buys a Python hook).
//!
//! The component is `target/python-hooks/text_stats.wasm` and the venv `target/python-venv`:
//! `make -C benches bench` makes both (`make python` at the top).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hookhost::{Host, HostConfig};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The native CPython peer: asked for N records, answers how long they took.
struct NativePeer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl NativePeer {
    fn start(records: &std::path::Path) -> NativePeer {
        let python = root().join("target/python-venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: `make python` (or make -C benches bench) makes it",
            python.display()
        );
        let mut child = Command::new(python)
            .arg(root().join("benches/python_native.py"))
            .arg(records)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting the native CPython peer");
        let stdin = child.stdin.take().expect("piped");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("the peer starts");
        assert_eq!(line.trim(), "ready", "the peer did not start");
        NativePeer {
            child,
            stdin,
            stdout,
        }
    }

    fn time(&mut self, records: u64) -> Duration {
        writeln!(self.stdin, "{records}").expect("asking the peer");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("the peer answers");
        Duration::from_nanos(line.trim().parse().expect("nanoseconds"))
    }
}

impl Drop for NativePeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python_text_stats(c: &mut Criterion) {
    let wasm = root().join("target/python-hooks/text_stats.wasm");
    let host = Host::new(HostConfig {
        code_cache: Some(root().join("target/hookhost-bench-code-cache")),
        ..HostConfig::default()
    })
    .unwrap();
    let hook = host.load_file(&wasm).unwrap_or_else(|e| {
        panic!("{e}: `make python` (or make -C benches bench) builds the Python components")
    });
    let mut group = c.benchmark_group("python_text_stats");
    group.sample_size(10);
    for chunk in [16usize, 256] {
        let records = common::text_records(chunk);
        let mut runner = common::runner(hook.clone(), &host);
        group.throughput(Throughput::Elements(chunk as u64));
        group.bench_with_input(BenchmarkId::new("component", chunk), &records, |b, r| {
            b.iter(|| runner.run_chunk(r).unwrap())
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("records.jsonl");
    let lines: String = (0..256)
        .map(|i| {
            let line =
                serde_json::json!({"id": format!("r{i}"), "metadata": common::texts::metadata(i)});
            format!("{line}\n")
        })
        .collect();
    std::fs::write(&file, lines).unwrap();
    let mut peer = NativePeer::start(&file);
    group.throughput(Throughput::Elements(1));
    group.bench_function("native_cpython", |b| b.iter_custom(|n| peer.time(n)));

    // What a second core buys the Python hook end to end: `run_to_dir` (what `host run` does
    // once the component is loaded) over RUN_RECORDS texts, chunks of 256 (its default), with
    // 1 or 2 workers; beside `calibration/cpu_{1,2}` of end_to_end.rs in the same run.
    const RUN_RECORDS: usize = 4096;
    let input = dir.path().join("batch.jsonl");
    common::write_text_batch(&input, "r", 0..RUN_RECORDS);
    group.throughput(Throughput::Elements(RUN_RECORDS as u64));
    group.measurement_time(Duration::from_secs(20));
    common::bench_host_run(&mut group, &hook, &input, dir.path(), RUN_RECORDS);
    group.finish();
}

criterion_group!(python, python_text_stats);
criterion_main!(python);
