//! What the benchmark targets share: component paths, records, runners.
#![allow(dead_code)] // each bench target uses part of it

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use hookhost::input::{GuestRecord, PendingRecord};
use hookhost::limits::Limits;
use hookhost::runner::{
    BatchRunner, DEFAULT_MAX_LOG_BYTES, DEFAULT_MAX_OUTPUT_BYTES_PER_RECORD, RunnerSettings,
};
use hookhost::{HookComponent, Host};

#[path = "texts.rs"]
pub mod texts;

/// The example hooks, by component file name.
pub const EXAMPLE_HOOKS: [&str; 4] = [
    "text_stats",
    "file_profile",
    "require_fields",
    "memory_hungry",
];

/// The bytes of guest component `name`, built by `make -C benches guests`.
pub fn component(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../example-hooks/target/wasm32-wasip2/release")
        .join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: run `make -C benches guests` first",
            path.display()
        )
    })
}

/// A record for the runner with `metadata`.
pub fn pending(i: usize, metadata: String) -> PendingRecord {
    PendingRecord {
        record: GuestRecord {
            id: format!("r{i}"),
            metadata,
            size_hint_mb: None,
            files_dir: None,
        },
        files_host_dir: None,
    }
}

/// `n` records of about 1 KB of text each.
pub fn text_records(n: usize) -> Vec<PendingRecord> {
    (0..n).map(|i| pending(i, texts::metadata(i))).collect()
}

/// Writes a JSONL batch of the ~1 KB texts, one line per `i` of `range`, ids `prefix<i>`.
pub fn write_text_batch(path: &std::path::Path, prefix: &str, range: std::ops::Range<usize>) {
    use std::io::Write as _;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in range {
        writeln!(
            out,
            "{{\"id\":\"{prefix}{i}\",\"metadata\":{}}}",
            texts::metadata(i)
        )
        .unwrap();
    }
    out.flush().unwrap();
}

/// Benchmarks `host_run/jobs_{1,2}` in `group`: `run_to_dir` (what `host run` does once the
/// component is loaded) of `hook` over `input` into a fresh directory under `dir`, with 1 or 2
/// workers, checking that all `records` passed and removing the directory after each run.
pub fn bench_host_run(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    hook: &HookComponent,
    input: &std::path::Path,
    dir: &std::path::Path,
    records: usize,
) {
    use hookhost::run::{Input, RunRequest, run_to_dir};
    let mut runs = 0u64;
    for jobs in [1usize, 2] {
        group.bench_function(format!("host_run/jobs_{jobs}"), |b| {
            b.iter(|| {
                runs += 1;
                let out = dir.join(format!("run-{jobs}-{runs}"));
                let mut request = RunRequest::new(hook.clone(), Input::File(input.into()), &out);
                request.jobs = jobs;
                let record = run_to_dir(request, &mut |_| {}).unwrap();
                assert_eq!(record.records.passed, records as u64);
                std::fs::remove_dir_all(out).unwrap();
            })
        });
    }
}

/// A runner with the default limits and an empty config.
pub fn runner(hook: HookComponent, host: &Host) -> BatchRunner {
    runner_with_config(hook, host, "{}")
}

/// A runner like [`runner`]'s, configured with `config_json`.
pub fn runner_with_config(hook: HookComponent, host: &Host, config_json: &str) -> BatchRunner {
    BatchRunner::new(
        hook,
        RunnerSettings {
            keep_values: true,
            limits: Limits::default(),
            memory_ceiling: host.ceilings().memory_bytes,
            config_json: config_json.into(),
            max_output_bytes_per_record: DEFAULT_MAX_OUTPUT_BYTES_PER_RECORD,
            max_log_bytes: DEFAULT_MAX_LOG_BYTES,
            cancel: Arc::new(AtomicBool::new(false)),
        },
    )
}
