//! Execution: the one engine that runs a hook, or a set of hooks, over one input.
//!
//! Every way of running goes through [`execute`]: `host run` with one hook or several, the
//! embedding API ([`crate::embed`]), replays and [`crate::run::run_to_dir`]. A
//! [`BatchRequest`] names the hooks (each a [`Plan`]), where the outcomes go ([`Layout`]) and
//! how many chunks run at once (`jobs`); [`execute`] reads the input a chunk at a time from a
//! [`Source`](crate::input::Source), runs every hook over every chunk on a fixed set of
//! long-lived [workers](Gate), settles the outcomes in input order — so the outputs are the
//! same for any number of jobs — and, when the batch ends, records its runs with the
//! request's [`Recorder`].
//!
//! Words: a **run** is one hook over one input (one `run.json`); a **batch** is a hook set over
//! one input (one `batch.json`); a **call** is one trip into a sandbox; a **chunk** is the
//! records of one call.
//!
//! - [`plan`](Plan) — one hook's resolved settings.
//! - `lane` — one hook's run, settled chunk by chunk in input order.
//! - `workers` — the threads that run chunks, and the [`Gate`] bounding sandboxes.
//! - `drive` — [`execute`]: read (on a reader thread), dispatch, settle, finish, record.

mod drive;
mod lane;
mod plan;
mod workers;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use self::drive::{Execution, execute};
pub use self::plan::Plan;
pub use self::workers::Gate;
use crate::outcome::Outcomes;
use crate::provenance::{BatchRecorded, Counts, Recorder, RunRecord, RunStatus};
use crate::runner::DEFAULT_MAX_LOG_BYTES;
use crate::sink::Features;

/// Where a batch's outcomes go.
#[derive(Debug, Clone)]
pub enum Layout {
    /// One hook's run directory at this path: `features.jsonl`, …, `run.json` (`host run`
    /// with one hook). The request must have exactly one plan.
    Run(PathBuf),
    /// A batch directory at this path: `<hook>/` (a run directory each), `passed.jsonl`,
    /// `batch.json`.
    Batch(PathBuf),
    /// Memory: the outcomes come back in the [`BatchResult`].
    Memory,
}

/// What to execute.
#[derive(Debug)]
pub struct BatchRequest {
    /// The batch's id (a UUIDv7).
    pub batch_id: String,
    /// The hooks, in the order their results are given. At least one.
    pub plans: Vec<Plan>,
    /// Where the outcomes go.
    pub layout: Layout,
    /// Where the feature rows go: by default `features.jsonl` in each run directory (or
    /// memory), else `features.parquet` or the registry's feature tables (see
    /// [`sink`](crate::sink)).
    pub features: Features,
    /// Records per call. By default (`None`) the largest of the hooks' own defaults
    /// ([`HookComponent::default_chunk_size`](crate::HookComponent::default_chunk_size)):
    /// [`DEFAULT_CHUNK_SIZE`](crate::limits::DEFAULT_CHUNK_SIZE), or [`HEAVY_CHUNK_SIZE`](crate::limits::HEAVY_CHUNK_SIZE) for a
    /// heavy component such as an interpreter.
    pub chunk_size: Option<usize>,
    /// Chunks run at once: the number of worker threads. The outputs are the same for any
    /// value. By default [`default_jobs`], the number of cores.
    pub jobs: usize,
    /// The most guest output kept per run; the rest is dropped and counted. By default
    /// [`DEFAULT_MAX_LOG_BYTES`].
    pub max_log_bytes: u64,
    /// The run these runs replay, noted in each `run.json`.
    pub replay_of: Option<String>,
    /// Set to stop the batch: guest code stops within one epoch tick, and what was settled is
    /// kept.
    pub cancel: Arc<AtomicBool>,
    /// Bounds the sandboxes running at once across the batches sharing it. By default none:
    /// `jobs` alone bounds them.
    pub gate: Option<Arc<Gate>>,
    /// Where the runs are recorded when the batch ends, whatever its status. By default none.
    pub recorder: Option<Arc<dyn Recorder>>,
    /// Whether the recorded runs name their output directories. By default `true`.
    pub record_out_dir: bool,
    /// The key the batch was begun with: recorded with the batch when it succeeds.
    pub idempotency_key: Option<String>,
    /// The digest of the releases the batch resolved (see `embed::Snapshot::digest`).
    pub snapshot_digest: String,
}

impl BatchRequest {
    /// A request with the defaults: a new batch id, no recorder, no gate.
    pub fn new(plans: Vec<Plan>, layout: Layout) -> BatchRequest {
        BatchRequest {
            batch_id: uuid::Uuid::now_v7().to_string(),
            plans,
            layout,
            features: Features::default(),
            chunk_size: None,
            jobs: default_jobs(),
            max_log_bytes: DEFAULT_MAX_LOG_BYTES,
            replay_of: None,
            cancel: Arc::new(AtomicBool::new(false)),
            gate: None,
            recorder: None,
            record_out_dir: true,
            idempotency_key: None,
            snapshot_digest: String::new(),
        }
    }
}

/// Chunks run at once by default: the number of cores.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Where a batch is, reported after every settled chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Records settled by every hook: `passed` every hook, `rejected` by at least one (and
    /// errored by none), `errored` in at least one.
    pub counts: Counts,
    /// Each hook's own counts, in plan order.
    pub hooks: Vec<HookProgress>,
    /// Input read so far, in bytes.
    pub bytes_read: u64,
    /// Time since the batch started.
    pub elapsed: Duration,
}

/// One hook's counts in a [`Progress`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookProgress {
    /// The hook's name.
    pub name: String,
    /// Its run.
    pub run_id: String,
    /// Its outcomes so far.
    pub records: Counts,
}

/// Where a batch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchState {
    /// Begun, waiting for a sandbox.
    Pending,
    /// Guest code has started.
    Active,
    /// Every record got an outcome from every hook.
    Succeeded,
    /// The batch could not complete (a hook failed, the input could not be read).
    Failed,
    /// Stopped on request.
    Cancelled,
}

impl BatchState {
    /// The state as written in `batch.json`: `pending`, `active`, `succeeded`, `failed`,
    /// `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            BatchState::Pending => "pending",
            BatchState::Active => "active",
            BatchState::Succeeded => "succeeded",
            BatchState::Failed => "failed",
            BatchState::Cancelled => "cancelled",
        }
    }

    /// Whether the batch has ended.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            BatchState::Succeeded | BatchState::Failed | BatchState::Cancelled
        )
    }
}

impl std::fmt::Display for BatchState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a batch ended.
#[derive(Debug, Clone)]
pub struct BatchResult {
    /// The batch's id (a UUIDv7).
    pub batch_id: String,
    /// Its idempotency key.
    pub idempotency_key: Option<String>,
    /// The digest of the snapshot it ran.
    pub snapshot_digest: String,
    /// `Succeeded`, `Failed` or `Cancelled`.
    pub state: BatchState,
    /// Records settled by every hook (see [`Progress::counts`]).
    pub records: Counts,
    /// Each hook's run, in plan order.
    pub hooks: Vec<HookResult>,
    /// The ids that passed every hook, in input order, when outcomes were kept in memory
    /// (with a batch directory they are in its `passed.jsonl`).
    pub passed: Option<Vec<String>>,
    /// The output directory, if the batch wrote one.
    pub out_dir: Option<PathBuf>,
    /// Whether this is an earlier batch returned for its idempotency key.
    pub reused: bool,
}

/// One hook's run in a [`BatchResult`].
#[derive(Debug, Clone)]
pub struct HookResult {
    /// The hook's name.
    pub name: String,
    /// The run's provenance record (what `run.json` holds).
    pub run: RunRecord,
    /// The outcomes, when kept in memory: `None` when they went to a directory, or for an
    /// earlier batch read back from the registry.
    pub outcomes: Option<Outcomes>,
    /// The captured guest output, when kept in memory.
    pub logs: Vec<u8>,
    /// The run's output directory, if it has one.
    pub dir: Option<PathBuf>,
}

/// What [`execute`] gives back: the result, and what recording it did.
#[derive(Debug)]
pub struct Executed {
    /// How the batch ended.
    pub result: BatchResult,
    /// `None` without a recorder (or for a run directory, recorded on its own); otherwise what
    /// [`Recorder::record_batch`] answered: recorded, or an earlier batch already holding the
    /// idempotency key (this one's runs then were not recorded).
    pub recorded: Option<BatchRecorded>,
}

/// What `batch.json` holds, and what the registry keeps for an idempotency key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct BatchSummary {
    pub batch_id: String,
    pub idempotency_key: Option<String>,
    pub snapshot_digest: String,
    pub state: BatchState,
    pub records: Counts,
    pub hooks: Vec<BatchHookSummary>,
    pub out_dir: Option<PathBuf>,
    pub started_at: String,
    pub finished_at: String,
}

/// One hook's line in a [`BatchSummary`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct BatchHookSummary {
    pub name: String,
    pub version: Option<u32>,
    pub digest: String,
    pub run_id: String,
    pub status: RunStatus,
    pub records: Counts,
}
