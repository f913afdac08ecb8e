//! One run of one hook over one JSONL batch, written to a run directory: what `host run` does
//! with one hook, as a library call. A thin shape over [`crate::exec`], the one engine.
//!
//! [`RunRequest`] says what to run; [`run_to_dir`] plans it, opens the input and hands it to
//! [`exec::execute`](crate::exec::execute) with a run-directory layout: `jobs` chunks at a time
//! on as many long-lived workers, each outcome written as its chunk settles (in input order,
//! so the output is the same for any `jobs`), the provenance record last, and the run handed
//! to its recorder, if it has one.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::component::HookComponent;
use crate::error::Error;
use crate::exec::{BatchRequest, Layout, Plan, execute};
pub use crate::exec::{Progress, default_jobs};
pub use crate::input::Input;
use crate::limits::Limits;
use crate::provenance::{Recorder, RunRecord};
use crate::registry::Release;
use crate::runner::DEFAULT_MAX_LOG_BYTES;
use crate::sink::Features;

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
    /// Records per call. By default (`None`) the hook's own
    /// ([`HookComponent::default_chunk_size`](crate::HookComponent::default_chunk_size)):
    /// [`DEFAULT_CHUNK_SIZE`](crate::limits::DEFAULT_CHUNK_SIZE), or [`HEAVY_CHUNK_SIZE`](crate::limits::HEAVY_CHUNK_SIZE) for a
    /// heavy component such as an interpreter.
    pub chunk_size: Option<usize>,
    /// Chunks run at once, each on its own worker thread; the outputs are the same for any
    /// value. By default [`default_jobs`], the number of cores.
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
    /// Where the feature rows go: `features.jsonl` ([`Features::Jsonl`]) or
    /// `features.parquet` ([`Features::Parquet`]) in the output directory. By default JSONL.
    pub features: Features,
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
            chunk_size: None,
            jobs: default_jobs(),
            max_log_bytes: DEFAULT_MAX_LOG_BYTES,
            cancel: Arc::new(AtomicBool::new(false)),
            replay_of: None,
            memory_ceiling: None,
            recorder: None,
            record_out_dir: true,
            features: Features::default(),
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

/// Runs `request` and writes its output directory.
///
/// Returns the provenance record, also written as `run.json`. A run that started but could
/// not complete still writes its directory, with status `failed` (and `error`) or
/// `cancelled`; the caller checks [`RunRecord::status`]. Errors are for runs that could not
/// start: unreadable input or files directory, invalid config, an output directory in the
/// way; and for a run whose output is complete but could not be recorded
/// ([`Error::NotRecorded`]).
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
    let name = request
        .release
        .as_ref()
        .map_or("hook", |(name, _)| name.as_str())
        .to_owned();
    let plan = Plan::new(
        name,
        request.hook,
        request.release,
        request.config.as_deref(),
        &request.limits,
        request.memory_ceiling,
    )?;
    let mut source = request.input.open(request.files.as_deref())?;
    let mut batch = BatchRequest::new(vec![plan], Layout::Run(request.out));
    batch.chunk_size = request.chunk_size;
    batch.jobs = request.jobs;
    batch.max_log_bytes = request.max_log_bytes;
    batch.replay_of = request.replay_of;
    batch.cancel = request.cancel;
    batch.recorder = request.recorder;
    batch.record_out_dir = request.record_out_dir;
    batch.features = request.features;
    let executed = execute(batch, &mut source, progress)?;
    let hook = executed.result.hooks.into_iter().next();
    Ok(hook.expect("a run has its hook's result").run)
}
