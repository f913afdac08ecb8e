//! One run of one hook over one JSONL batch, written to an output directory: what `host run`
//! does, as a library call.
//!
//! [`RunRequest`] says what to run; [`run_to_dir`] streams the input through
//! [`BatchRunner`](crate::runner::BatchRunner)s, `jobs` chunks at a time on as many threads,
//! writes each outcome as its chunk settles (in input order, so the output is the same for any
//! `jobs`), and finishes with the provenance record. Memory stays bounded by `jobs ×
//! chunk_size` records and the line cap, whatever the input's length (plus about 24 bytes per
//! record id, to refuse duplicates).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::component::HookComponent;
use crate::error::Error;
use crate::input::{FilesRoot, InputReader};
use crate::lane::{BatchKnobs, Chunk, Lane, LanePlan, Sink};
use crate::limits::Limits;
use crate::output::OutputDir;
use crate::provenance::{Counts, Recorder, RunEntry, RunRecord};
use crate::registry::Release;
use crate::runner::{DEFAULT_CHUNK_SIZE, DEFAULT_MAX_LOG_BYTES};

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
    /// Chunks run at once, each on its own thread; the outputs are the same for any value.
    /// By default [`default_jobs`], the number of cores.
    pub jobs: usize,
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
    /// Where the run is recorded when it ends, whatever its status (a registry). By default
    /// none: the run leaves only its directory.
    pub recorder: Option<Arc<dyn Recorder>>,
    /// Whether the recorded run names its output directory (a replay's temporary directory is
    /// not kept, so it is not named). By default `true`.
    pub record_out_dir: bool,
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
            jobs: default_jobs(),
            max_log_bytes: DEFAULT_MAX_LOG_BYTES,
            cancel: Arc::new(AtomicBool::new(false)),
            replay_of: None,
            memory_ceiling: None,
            recorder: None,
            record_out_dir: true,
        }
    }

    /// A request to run `release` (loaded as `hook`) with its config and limits.
    pub fn for_release(
        hook: HookComponent,
        release: &Release,
        input: Input,
        out: impl Into<PathBuf>,
    ) -> RunRequest {
        let mut request = RunRequest::new(hook, input, out);
        request.release = Some((release.hook.clone(), release.version));
        request.config = Some(release.config.clone());
        request.limits = release.limits.to_limits();
        request
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
/// It blocks while guest code runs: from async code, call it through
/// `tokio::task::spawn_blocking`, or use [`crate::embed`], which does.
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
    let run_id = uuid::Uuid::now_v7().to_string();
    let knobs = BatchKnobs {
        chunk_size: request.chunk_size.max(1),
        jobs: request.jobs.max(1),
        max_log_bytes: request.max_log_bytes,
        memory_ceiling: request.memory_ceiling,
        replay_of: request.replay_of.clone(),
        cancel: request.cancel.clone(),
    };
    let plan = LanePlan::new(
        request.hook.clone(),
        request.release.clone(),
        request.config.as_deref(),
        &request.limits,
        &knobs,
    )?;
    let config = plan.config_json().to_owned();
    let recorder = request.recorder.clone();
    let out_dir = request
        .record_out_dir
        .then(|| crate::fsutil::absolute(&request.out).display().to_string());
    let (reader, input_name) = open_input(&request.input)?;
    let files = request.files.as_deref().map(FilesRoot::open).transpose()?;
    let mut input = InputReader::new(reader, files);
    let out = OutputDir::create(&request.out, &run_id)?;
    let _span = tracing::info_span!("run", %run_id, hook = %request.hook.digest()).entered();
    let mut lane = Lane::start(plan, run_id, Sink::Dir(Box::new(out)));
    let ended = drive(
        &mut input,
        &mut lane,
        &knobs,
        &input_name,
        &mut |lane, input| {
            progress(&Progress {
                counts: lane.counts(),
                bytes_read: input.bytes_read(),
                elapsed: started.elapsed(),
            })
        },
    );
    let (record, _) = lane.finish(ended.into(), input.summary())?;
    if let Some(recorder) = &recorder {
        record_run(recorder.as_ref(), &record, &config, out_dir.as_deref())?;
    }
    Ok(record)
}

/// Hands a finished run to its recorder; a failure says the output is complete but unrecorded.
fn record_run(
    recorder: &dyn Recorder,
    record: &RunRecord,
    config: &str,
    out_dir: Option<&str>,
) -> Result<(), Error> {
    let entry = RunEntry {
        record,
        config,
        out_dir,
    };
    recorder
        .record_run(entry)
        .map_err(|error| Error::NotRecorded {
            run_id: record.run_id.clone(),
            out_dir: out_dir.map(str::to_owned),
            source: Box::new(error),
        })
}

/// Opens the batch for reading; also returns the name errors give it.
pub(crate) fn open_input(input: &Input) -> Result<(Box<dyn BufRead + Send>, PathBuf), Error> {
    Ok(match input {
        Input::File(path) => {
            let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
            if file.metadata().is_ok_and(|m| m.is_dir()) {
                let e = std::io::Error::other("is a directory, not a JSONL file");
                return Err(Error::io(path, e));
            }
            let reader = BufReader::with_capacity(256 * 1024, file);
            (Box::new(reader), path.clone())
        }
        Input::Stdin => (
            Box::new(BufReader::new(std::io::stdin())),
            PathBuf::from("<stdin>"),
        ),
    })
}

/// Feeds `lane` up to `knobs.jobs` chunks at a time until the input ends or the lane cannot
/// go on. Memory stays bounded by `jobs × chunk_size` records.
fn drive<R: BufRead>(
    input: &mut InputReader<R>,
    lane: &mut Lane,
    knobs: &BatchKnobs,
    input_name: &std::path::Path,
    progress: &mut dyn FnMut(&Lane, &InputReader<R>),
) -> Result<(), Error> {
    loop {
        let mut chunks = Vec::with_capacity(knobs.jobs);
        while chunks.len() < knobs.jobs {
            let chunk =
                read_chunk(input, knobs.chunk_size).map_err(|e| Error::io(input_name, e))?;
            if chunk.is_empty() {
                break;
            }
            chunks.push(chunk);
        }
        if chunks.is_empty() {
            return Ok(());
        }
        lane.run_chunks(&chunks, &mut |lane| progress(lane, input))?;
    }
}

/// Chunks run at once by default: the number of cores.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Reads items until `chunk_size` records (invalid lines ride along) or the end of input.
pub(crate) fn read_chunk<R: BufRead>(
    input: &mut InputReader<R>,
    chunk_size: usize,
) -> std::io::Result<Chunk> {
    let mut chunk = Chunk::default();
    while chunk.records.len() < chunk_size {
        match input.next_item()? {
            Some(item) => chunk.push(item),
            None => break,
        }
    }
    Ok(chunk)
}
