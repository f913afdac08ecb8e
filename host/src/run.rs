//! One run of one hook over one JSONL batch, written to an output directory: what `host run`
//! does, as a library call.
//!
//! [`RunRequest`] says what to run; [`run_to_dir`] streams the input through a
//! [`BatchRunner`] chunk by chunk, writes each outcome as its chunk settles (in input order),
//! and finishes with the provenance record. Memory stays bounded by the chunk size and the
//! line cap, whatever the input's length (plus 24 bytes per record id, to refuse duplicates).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::component::{HOST_VERSION, HookComponent, WASMTIME_VERSION};
use crate::contract::sha256_digest;
use crate::error::{Error, RecordError};
use crate::input::{FilesRoot, InputItem, InputReader};
use crate::limits::Limits;
use crate::output::OutputDir;
use crate::provenance::{
    Counts, HookRef, HostInfo, LimitsRecord, RunRecord, RunStatus, now_rfc3339,
};
use crate::runner::{
    BatchRunner, DEFAULT_CHUNK_SIZE, DEFAULT_MAX_LOG_BYTES, DEFAULT_MAX_OUTPUT_BYTES_PER_RECORD,
    PendingRecord, RecordOutcome, RunnerSettings,
};

/// Where the batch comes from.
#[derive(Debug)]
pub enum Input {
    /// A JSONL file.
    File(PathBuf),
    /// Standard input.
    Stdin,
}

/// What to run, where to write it.
#[derive(Debug)]
pub struct RunRequest {
    /// The component to run.
    pub hook: HookComponent,
    /// The registered name and version of the component, when it has them.
    pub release: Option<(String, u32)>,
    /// The JSONL batch.
    pub input: Input,
    /// The output directory; must not exist, or be empty.
    pub out: PathBuf,
    /// The files directory: record `<id>`'s files are under `<files>/<id>/`.
    pub files: Option<PathBuf>,
    /// The config as JSON text; `{}` when `None`.
    pub config: Option<String>,
    /// The limits asked for; clamped to the host's ceilings.
    pub limits: Limits,
    /// Records per call. By default [`DEFAULT_CHUNK_SIZE`].
    pub chunk_size: usize,
    /// The most guest output kept in `logs.txt`; the rest is dropped and counted in
    /// `log_bytes_dropped`. By default [`DEFAULT_MAX_LOG_BYTES`].
    pub max_log_bytes: u64,
    /// Set to stop the run; it ends `cancelled`, keeping what was settled.
    pub cancel: Arc<AtomicBool>,
    /// The run this one replays, noted in `run.json`.
    pub replay_of: Option<String>,
    /// The most memory the cap may double to in this run, never above the host's ceiling.
    /// By default (`None`) the host's ceiling.
    pub memory_ceiling: Option<u64>,
}

impl RunRequest {
    /// A request with default limits, no files, no config.
    pub fn new(hook: HookComponent, input: Input, out: impl Into<PathBuf>) -> Self {
        RunRequest {
            hook,
            release: None,
            input,
            out: out.into(),
            files: None,
            config: None,
            limits: Limits::default(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            max_log_bytes: DEFAULT_MAX_LOG_BYTES,
            cancel: Arc::new(AtomicBool::new(false)),
            replay_of: None,
            memory_ceiling: None,
        }
    }
}

/// Where a run is, reported after every chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Records with an outcome so far.
    pub counts: Counts,
    /// Input bytes read so far.
    pub bytes_read: u64,
    /// Time since the run started.
    pub elapsed: Duration,
}

/// Runs `request` and writes its output directory.
///
/// Returns the provenance record, also written as `run.json`. A run that started but could
/// not complete still writes its directory, with status `failed` (and `error`) or
/// `cancelled`; the caller checks [`RunRecord::status`]. Errors are for runs that could not
/// start: unreadable input or files directory, invalid config, an output directory in the
/// way.
///
/// ```no_run
/// use hookhost::{Host, HostConfig};
/// use hookhost::run::{run_to_dir, Input, RunRequest};
///
/// let host = Host::new(HostConfig::default())?;
/// let hook = host.load_file("text_stats.wasm".as_ref())?;
/// let request = RunRequest::new(hook, Input::File("batch.jsonl".into()), "out");
/// let record = run_to_dir(request, &mut |p| eprintln!("{} records", p.counts.total))?;
/// println!("{} passed", record.records.passed);
/// # Ok::<(), hookhost::Error>(())
/// ```
pub fn run_to_dir(
    request: RunRequest,
    progress: &mut dyn FnMut(&Progress),
) -> Result<RunRecord, Error> {
    let started = Instant::now();
    let started_at = now_rfc3339();
    let run_id = uuid::Uuid::now_v7().to_string();
    let host = request.hook.host().clone();
    let mut ceilings = *host.ceilings();
    if let Some(ceiling) = request.memory_ceiling {
        ceilings.memory_bytes = ceilings.memory_bytes.min(ceiling.max(1));
    }
    let limits = request.limits.clamped(&ceilings);
    for change in clamp_changes(&request.limits, &limits) {
        tracing::warn!("{change}, the host's limit");
    }
    let config_json = canonical_config(request.config.as_deref())?;
    let reader: Box<dyn BufRead> = match &request.input {
        Input::File(path) => {
            let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
            if file.metadata().is_ok_and(|m| m.is_dir()) {
                let e = std::io::Error::other("is a directory, not a JSONL file");
                return Err(Error::io(path, e));
            }
            Box::new(BufReader::with_capacity(256 * 1024, file))
        }
        Input::Stdin => Box::new(std::io::stdin().lock()),
    };
    let files = request.files.as_deref().map(FilesRoot::open).transpose()?;
    let mut input = InputReader::new(reader, files);
    let mut out = OutputDir::create(&request.out, &run_id)?;
    let _span = tracing::info_span!("run", %run_id, hook = %request.hook.digest()).entered();

    let mut runner = BatchRunner::new(
        request.hook.clone(),
        RunnerSettings {
            limits,
            memory_ceiling: ceilings.memory_bytes,
            config_json: config_json.clone(),
            max_output_bytes_per_record: DEFAULT_MAX_OUTPUT_BYTES_PER_RECORD,
            max_log_bytes: request.max_log_bytes,
            cancel: request.cancel.clone(),
        },
    );
    let input_name = match &request.input {
        Input::File(path) => path.clone(),
        Input::Stdin => PathBuf::from("<stdin>"),
    };
    let mut batch = Batch {
        input_name: &input_name,
        run_id: &run_id,
        hook: &request.hook,
        out: &mut out,
        counts: Counts::default(),
    };
    let chunk_size = request.chunk_size.max(1);
    let ended = batch.drive(&mut input, &mut runner, chunk_size, &mut |counts, bytes| {
        progress(&Progress {
            counts,
            bytes_read: bytes,
            elapsed: started.elapsed(),
        })
    });
    let counts = batch.counts;
    let (status, error) = match ended {
        Ok(()) => (RunStatus::Succeeded, None),
        Err(Error::Cancelled) => (RunStatus::Cancelled, None),
        Err(error) => (RunStatus::Failed, Some(error.to_string())),
    };
    let stats = runner.stats();
    let mut record = RunRecord {
        run_id,
        status,
        hook: HookRef {
            name: request.release.as_ref().map(|(name, _)| name.clone()),
            version: request.release.as_ref().map(|(_, version)| *version),
            digest: request.hook.digest().to_owned(),
        },
        contract_digest: request.hook.contract().digest(),
        config_digest: sha256_digest(config_json.as_bytes()),
        limits: LimitsRecord {
            fuel_per_record: limits.fuel_per_record,
            memory_bytes: limits.memory_bytes,
            memory_ceiling_bytes: ceilings.memory_bytes,
            max_oom_retries: limits.max_oom_retries,
            timeout_ms: limits.timeout.as_millis() as u64,
            max_log_bytes: request.max_log_bytes,
        },
        memory_bytes_final: stats.memory_bytes,
        oom_retries: stats.oom_retries,
        records: counts,
        fuel_consumed: stats.fuel_consumed,
        peak_memory_bytes: stats.peak_memory_bytes,
        input: input.summary(),
        outputs: Default::default(),
        started_at,
        finished_at: now_rfc3339(),
        duration_ms: started.elapsed().as_millis() as u64,
        host: HostInfo {
            version: HOST_VERSION.to_owned(),
            wasmtime: WASMTIME_VERSION.to_owned(),
            engine: host.engine_fingerprint().to_owned(),
        },
        chunk_size,
        calls: stats.calls,
        log_bytes_dropped: stats.log_bytes_dropped,
        replay_of: request.replay_of.clone(),
        error,
    };
    out.write_logs(&runner.take_logs())?;
    out.finish(&mut record)?;
    tracing::info!(status = ?record.status, passed = counts.passed, rejected = counts.rejected,
        errored = counts.errored, "run finished");
    Ok(record)
}

/// What clamping changed, in words: `memory 8GiB lowered to 4GiB`.
fn clamp_changes(asked: &Limits, granted: &Limits) -> Vec<String> {
    use crate::limits::format_size;
    let mut changes = Vec::new();
    let mut note = |what: &str, asked: String, granted: String| {
        if asked != granted {
            changes.push(format!("{what} {asked} changed to {granted}"));
        }
    };
    note(
        "fuel",
        asked.fuel_per_record.to_string(),
        granted.fuel_per_record.to_string(),
    );
    note(
        "memory",
        format_size(asked.memory_bytes),
        format_size(granted.memory_bytes),
    );
    note(
        "max OOM retries",
        asked.max_oom_retries.to_string(),
        granted.max_oom_retries.to_string(),
    );
    note(
        "timeout",
        format!("{:?}", asked.timeout),
        format!("{:?}", granted.timeout),
    );
    changes
}

/// Checks that the config is JSON and renders it canonically (sorted keys, no spaces), so the
/// same config always has the same digest.
pub fn canonical_config(config: Option<&str>) -> Result<String, Error> {
    let text = config.unwrap_or("{}");
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| Error::InvalidConfig(e.to_string()))?;
    Ok(value.to_string())
}

/// The state of a run's main loop.
struct Batch<'a> {
    input_name: &'a std::path::Path,
    run_id: &'a str,
    hook: &'a HookComponent,
    out: &'a mut OutputDir,
    counts: Counts,
}

/// A non-blank line waiting for its chunk to settle, kept in input order.
enum Slot {
    Record {
        line: u64,
    },
    Invalid {
        line: u64,
        id: Option<String>,
        reason: String,
    },
}

impl Batch<'_> {
    fn drive<R: BufRead>(
        &mut self,
        input: &mut InputReader<R>,
        runner: &mut BatchRunner,
        chunk_size: usize,
        progress: &mut dyn FnMut(Counts, u64),
    ) -> Result<(), Error> {
        let mut slots = Vec::with_capacity(chunk_size);
        let mut records = Vec::with_capacity(chunk_size);
        loop {
            let item = input
                .next_item()
                .map_err(|e| Error::io(self.input_name, e))?;
            let end = item.is_none();
            match item {
                Some(InputItem::Record { line, record }) => {
                    slots.push(Slot::Record { line });
                    records.push(record);
                }
                Some(InputItem::Invalid { line, id, reason }) => {
                    slots.push(Slot::Invalid { line, id, reason });
                }
                None => {}
            }
            if records.len() >= chunk_size || (end && !slots.is_empty()) {
                let settled = runner.run_chunk(&records);
                self.out.write_logs(&runner.take_logs())?;
                self.write(&mut slots, &records, settled?)?;
                records.clear();
                progress(self.counts, input.bytes_read());
            }
            if end {
                return Ok(());
            }
        }
    }

    fn write(
        &mut self,
        slots: &mut Vec<Slot>,
        records: &[PendingRecord],
        outcomes: Vec<RecordOutcome>,
    ) -> Result<(), Error> {
        let mut settled = records.iter().zip(outcomes);
        for slot in slots.drain(..) {
            self.counts.total += 1;
            match slot {
                Slot::Invalid { line, id, reason } => {
                    self.counts.errored += 1;
                    let error = RecordError::InvalidInput(reason);
                    self.out
                        .write_error(id.as_deref(), line, self.run_id, &error)?;
                }
                Slot::Record { line } => {
                    let (record, outcome) = settled.next().expect("one outcome per record");
                    let id = record.record.id.as_str();
                    match outcome {
                        RecordOutcome::Passed(rows) => {
                            self.counts.passed += 1;
                            self.out.write_features(
                                id,
                                self.run_id,
                                self.hook.contract(),
                                &rows.rows,
                            )?;
                        }
                        RecordOutcome::Rejected(reason) => {
                            self.counts.rejected += 1;
                            self.out.write_rejection(id, self.run_id, &reason)?;
                        }
                        RecordOutcome::Errored(error) => {
                            self.counts.errored += 1;
                            self.out.write_error(Some(id), line, self.run_id, &error)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
