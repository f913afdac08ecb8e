//! Embedding hookhost in a tokio service: an ingest worker's view of the host.
//!
//! - [`Hookhost`] — one engine shared by every batch, an optional [registry](Registry), and a
//!   bound on concurrent sandboxes (a semaphore: a busy host makes batches wait, it does not
//!   fail them). Cheap to clone; share one per process.
//! - [`Hookhost::snapshot`] resolves a *set* of hooks (`name` → its live release, or
//!   `name@3`) in one registry read. A [`Snapshot`] is fixed: moving a live pointer later
//!   does not change a batch begun on it. [`Snapshot::new`] builds one from components
//!   loaded by hand, without a registry.
//! - [`Hookhost::begin`] starts a batch — records from an iterator, a stream or a JSONL file,
//!   read chunk by chunk so memory does not grow with the batch — and returns a
//!   [`RunHandle`] at once. Every hook of the snapshot runs over every record; each hook's
//!   pass is a *run* with its own `run_id` and provenance record.
//! - [`RunHandle::observe`] gives the [`RunState`] and counts; [`RunHandle::cancel`] stops
//!   guest code within one epoch tick (outcomes already settled are kept and counted);
//!   [`RunHandle::wait`] (or `.await` on the handle) gives the [`BatchResult`]: per hook, the
//!   outcomes with `run_id` on every row and the provenance record, and the ids of the
//!   records that passed every hook.
//! - An idempotency key ([`BatchOptions::idempotency_key`]): the same key on the same
//!   snapshot returns the earlier batch — joined while it runs, or read back from the
//!   registry after it succeeded — with no second execution and no second run record.
//!
//! Guest code runs on tokio's blocking threads (`spawn_blocking`), one call per permit of
//! the sandbox semaphore, never on a runtime worker; registry reads and writes go there too.
//!
//! # A minimal worker
//!
//! ```no_run
//! use hookhost::embed::{Batch, BatchOptions, EmbedConfig, Hookhost, Record};
//! use serde_json::json;
//!
//! # async fn worker() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let hookhost = Hookhost::open(".hookhost", EmbedConfig::default()).await?;
//! // Once per batch: the live releases of the hook set, fixed for the whole batch.
//! let snapshot = hookhost.snapshot(&["text_stats", "require_fields"]).await?;
//! let records = (0..1000).map(|i| {
//!     Record::new(format!("doc-{i}"), json!({"title": "Dune", "text": "A desert planet."}))
//! });
//! let options = BatchOptions::default().with_idempotency_key("batch-2026-11-22-0001");
//! let handle = hookhost.begin(&snapshot, Batch::from_records(records), options).await?;
//! let result = handle.await?;
//! for hook in &result.hooks {
//!     // Kept in memory for a batch run here; `None` for one this key ran before a restart.
//!     let Some(outcomes) = &hook.outcomes else { continue };
//!     for row in &outcomes.features {
//!         // Store the row with the run that computed it.
//!         println!("{} {} {:?}", row.run_id, row.id, row.features);
//!     }
//! }
//! println!("{} records passed every hook ({})", result.records.passed, result.state);
//! # Ok(())
//! # }
//! ```
//!
//! Errors that keep a batch from starting (an unknown hook, an invalid config, an output
//! directory in the way) come from [`Hookhost::begin`] and [`Hookhost::snapshot`]; a batch
//! that started always ends in a [`BatchResult`] whose [`state`](BatchResult::state) says
//! how it ended, unless its outputs could not be written or recorded.

use std::collections::{HashMap, VecDeque};
use std::future::{Future, IntoFuture};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures_core::Stream;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::sync::{Semaphore, watch};

use crate::component::{HookComponent, Host, HostConfig};
use crate::config::canonical_config;
use crate::digest::{hex, sha256_digest};
use crate::error::Error;
pub use crate::input::Record;
use crate::input::{FilesRoot, InputReader, RecordChecker};
use crate::lane::{BatchKnobs, Chunk, Ended, Kept, Lane, LanePlan, Sink, Verdict};
use crate::limits::Limits;
pub use crate::outcome::{ErrorRow, FeatureRow, Outcomes, Rejection};
use crate::output::OutputDir;
use crate::provenance::{Counts, InputRecord, RunRecord, RunStatus, now_rfc3339};
use crate::registry::{
    BatchRecorded, NewBatch, Registry, Release, RunEntry, StoredBatch, check_hook_name,
};
use crate::run::{Input, open_input, read_chunk};
use crate::runner::{DEFAULT_CHUNK_SIZE, DEFAULT_MAX_LOG_BYTES};

/// The ids that passed every hook of a batch, one `{"id": …}` per line, in input order.
pub const PASSED_FILE: &str = "passed.jsonl";
/// The batch's own record, written last into a batch's output directory.
pub const BATCH_FILE: &str = "batch.json";
/// How many finished batches a [`Hookhost`] remembers in memory for their idempotency keys
/// (the registry remembers succeeded ones for good).
pub const DEFAULT_KEEP_FINISHED: usize = 256;

/// How [`Hookhost::open`] sets up.
#[derive(Debug, Clone)]
pub struct EmbedConfig {
    /// The engine's settings and the host-wide ceilings.
    pub host: HostConfig,
    /// The most sandboxes running guest code at once, across every batch of the host. By
    /// default the number of cores.
    pub max_sandboxes: usize,
}

impl Default for EmbedConfig {
    fn default() -> Self {
        EmbedConfig {
            host: HostConfig::default(),
            max_sandboxes: default_parallelism(),
        }
    }
}

fn default_parallelism() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The host as an ingest worker holds it. Cheap to clone: clones share the engine, the
/// registry, the sandbox bound and the batches in flight.
#[derive(Clone)]
pub struct Hookhost {
    inner: Arc<Inner>,
}

struct Inner {
    host: Host,
    registry: Option<Arc<Registry>>,
    sandboxes: Arc<Semaphore>,
    max_sandboxes: usize,
    batches: Mutex<Remembered>,
}

impl std::fmt::Debug for Hookhost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hookhost")
            .field("host", &self.inner.host)
            .field("registry", &self.inner.registry.as_ref().map(|r| r.root()))
            .field("max_sandboxes", &self.inner.max_sandboxes)
            .finish_non_exhaustive()
    }
}

impl Hookhost {
    /// Opens the registry at `root` (created if missing) and starts an engine.
    pub async fn open(root: impl AsRef<Path>, config: EmbedConfig) -> Result<Hookhost, Error> {
        let root = root.as_ref().to_owned();
        let (host, registry) = blocking(move || {
            let registry = Registry::open(&root)?;
            let host = Host::new(config.host)?;
            Ok((host, registry))
        })
        .await?;
        Ok(Hookhost::new(host, Some(registry), config.max_sandboxes))
    }

    /// A host over an engine already built, with or without a registry. Without one, hooks
    /// come from [`Snapshot::new`], runs are not recorded, and idempotency keys are
    /// remembered only in this process. `max_sandboxes` is at least 1, and at most the
    /// sandboxes the host's instance pool holds (a bound past the pool would turn waiting into
    /// failed instantiations).
    pub fn new(host: Host, registry: Option<Registry>, max_sandboxes: usize) -> Hookhost {
        let pool = match host.instance_allocation() {
            crate::component::InstanceAllocation::Pooling { sandboxes } => sandboxes as usize,
            crate::component::InstanceAllocation::OnDemand => usize::MAX,
        };
        let max_sandboxes = max_sandboxes.clamp(1, pool.max(1));
        Hookhost {
            inner: Arc::new(Inner {
                host,
                registry: registry.map(Arc::new),
                sandboxes: Arc::new(Semaphore::new(max_sandboxes)),
                max_sandboxes,
                batches: Mutex::new(Remembered::default()),
            }),
        }
    }

    /// The engine.
    pub fn host(&self) -> &Host {
        &self.inner.host
    }

    /// The registry, if the host has one.
    pub fn registry(&self) -> Option<&Registry> {
        self.inner.registry.as_deref()
    }

    /// The default bound on sandboxes running at once: the number of cores.
    pub fn default_max_sandboxes() -> usize {
        default_parallelism()
    }

    /// The bound on sandboxes running at once.
    pub fn max_sandboxes(&self) -> usize {
        self.inner.max_sandboxes
    }

    /// Resolves `references` (`name` for the live release, `name@3` for a version) in one
    /// registry read, and loads each release's component (re-hashed against its digest).
    pub async fn snapshot(&self, references: &[&str]) -> Result<Snapshot, Error> {
        let registry = self.inner.registry.clone().ok_or(Error::NoRegistry)?;
        let host = self.inner.host.clone();
        let references: Vec<String> = references.iter().map(|r| (*r).to_owned()).collect();
        blocking(move || {
            let references: Vec<&str> = references.iter().map(String::as_str).collect();
            let releases = registry.resolve_all(&references)?;
            let hooks = releases
                .into_iter()
                .map(|release| {
                    let component = registry.load(&host, &release)?;
                    Ok(SnapshotHook::from_release(component, release))
                })
                .collect::<Result<Vec<_>, Error>>()?;
            Snapshot::new(hooks)
        })
        .await
    }

    /// Starts running every hook of `snapshot` over `batch`, and returns at once.
    ///
    /// With an idempotency key that an earlier batch on the same snapshot used, nothing runs:
    /// the handle is that batch's (still running, or finished). A failed or cancelled batch
    /// does not hold its key; beginning again runs again.
    ///
    /// Errors are for batches that cannot start: a config that is not JSON, an output
    /// directory in the way, an unreadable input file or files directory.
    pub async fn begin(
        &self,
        snapshot: &Snapshot,
        batch: Batch,
        options: BatchOptions,
    ) -> Result<RunHandle, Error> {
        let key = options
            .idempotency_key
            .clone()
            .map(|key| (key, snapshot.digest.clone()));
        if let Some(key) = &key
            && let Some(handle) = self.join(key).await?
        {
            return Ok(handle);
        }
        let shared = match &key {
            Some(key) => self.lock().claimed(key).expect("claimed by join"),
            None => Shared::new(uuid::Uuid::now_v7().to_string()),
        };
        let prepared = match self.prepare(snapshot, batch, &options, &shared).await {
            Ok(prepared) => prepared,
            Err(error) => {
                self.forget(key.as_ref());
                return Err(error);
            }
        };
        let handle = RunHandle::new(shared.clone(), false);
        let driver = Driver {
            hookhost: self.clone(),
            shared,
            snapshot: snapshot.clone(),
            key: options.idempotency_key,
            prepared,
        };
        tokio::spawn(driver.run());
        Ok(handle)
    }

    /// For a key: the handle of the batch that holds it, if any; otherwise claims it (a
    /// pending entry that concurrent `begin`s join) and returns `None`.
    async fn join(&self, key: &(String, String)) -> Result<Option<RunHandle>, Error> {
        {
            let mut remembered = self.lock();
            if let Some(shared) = remembered.holder(key) {
                return Ok(Some(RunHandle::new(shared, true)));
            }
            remembered.claim(key.clone());
        }
        let Some(registry) = self.inner.registry.clone() else {
            return Ok(None);
        };
        let (k, snapshot) = key.clone();
        let stored = blocking(move || registry.batch_by_key(&k, &snapshot)).await;
        let stored = match stored {
            Ok(stored) => stored,
            Err(error) => {
                self.forget(Some(key));
                return Err(error);
            }
        };
        let Some(stored) = stored else {
            return Ok(None);
        };
        let result = match self.read_back(stored).await {
            Ok(result) => result,
            Err(error) => {
                self.forget(Some(key));
                return Err(error);
            }
        };
        let shared = self.lock().claimed(key).expect("claimed above");
        shared.finish(Ok(Arc::new(result)));
        Ok(Some(RunHandle::new(shared, true)))
    }

    /// A batch the registry remembers, with its runs' records (its outcomes stay where the
    /// batch wrote them: its output directory, or nowhere if they were kept in memory).
    async fn read_back(&self, stored: StoredBatch) -> Result<BatchResult, Error> {
        let registry = self.inner.registry.clone().ok_or(Error::NoRegistry)?;
        blocking(move || {
            let summary: BatchSummary =
                serde_json::from_value(stored.summary.clone()).map_err(|e| {
                    Error::Internal(format!(
                        "batch {} in registry {} has an unreadable summary: {e}",
                        stored.batch_id,
                        registry.root().display()
                    ))
                })?;
            let hooks = summary
                .hooks
                .iter()
                .map(|hook| {
                    let stored_run = registry.run_record(&hook.run_id)?;
                    Ok(HookResult {
                        name: hook.name.clone(),
                        run: stored_run.record,
                        outcomes: None,
                        logs: Vec::new(),
                        dir: summary.out_dir.as_ref().map(|d| d.join(&hook.name)),
                    })
                })
                .collect::<Result<Vec<_>, Error>>()?;
            Ok(BatchResult {
                batch_id: summary.batch_id,
                idempotency_key: summary.idempotency_key,
                snapshot_digest: summary.snapshot_digest,
                state: summary.state,
                records: summary.records,
                hooks,
                passed: None,
                out_dir: summary.out_dir,
                reused: true,
            })
        })
        .await
    }

    fn forget(&self, key: Option<&(String, String)>) {
        if let Some(key) = key {
            self.lock().release(key);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Remembered> {
        self.inner
            .batches
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Everything a batch needs before it can start, checked: lanes planned, input opened,
    /// output directories created.
    async fn prepare(
        &self,
        snapshot: &Snapshot,
        batch: Batch,
        options: &BatchOptions,
        shared: &Shared,
    ) -> Result<Prepared, Error> {
        // The handle's cancel flag is the one the lanes' runners watch.
        // One chunk at a time per hook: a batch's parallelism is its hooks, and the host's
        // is its batches, all under the sandbox bound.
        let knobs = BatchKnobs {
            chunk_size: options.chunk_size.max(1),
            jobs: 1,
            max_log_bytes: options.max_log_bytes,
            memory_ceiling: None,
            replay_of: None,
            cancel: shared.cancel.clone(),
        };
        let plans = snapshot
            .hooks
            .iter()
            .map(|hook| {
                LanePlan::new(
                    hook.component.clone(),
                    hook.release.as_ref().map(|r| (r.hook.clone(), r.version)),
                    hook.config.as_deref(),
                    &hook.limits,
                    &knobs,
                )
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let names: Vec<String> = snapshot.hooks.iter().map(|h| h.name.clone()).collect();
        let out = options.out.clone();
        let files = options.files.clone();
        let batch_id = shared.batch_id.clone();
        blocking(move || {
            let files = files.as_deref().map(FilesRoot::open).transpose()?;
            let feeder = Feeder::new(batch.source, files)?;
            let run_ids: Vec<String> = names
                .iter()
                .map(|_| uuid::Uuid::now_v7().to_string())
                .collect();
            let (dir, sinks) = match &out {
                Some(out) => {
                    let dir = BatchDir::create(out, &batch_id)?;
                    let sinks = names
                        .iter()
                        .zip(&run_ids)
                        .map(|(name, run_id)| {
                            Ok(Sink::Dir(Box::new(OutputDir::create(
                                &dir.staged(name),
                                run_id,
                            )?)))
                        })
                        .collect::<Result<Vec<_>, Error>>()?;
                    (Some(dir), sinks)
                }
                None => {
                    let sinks = names
                        .iter()
                        .map(|_| Sink::Memory(Outcomes::default(), Vec::new()))
                        .collect();
                    (None, sinks)
                }
            };
            let lanes = plans
                .into_iter()
                .zip(run_ids)
                .zip(sinks)
                .map(|((plan, run_id), sink)| Lane::start(plan, run_id, sink))
                .collect();
            Ok(Prepared {
                ends: vec![None; names.len()],
                names,
                lanes,
                feeder,
                dir,
                passed: Vec::new(),
                knobs,
            })
        })
        .await
    }
}

/// The hooks a batch runs, fixed when resolved. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Snapshot {
    hooks: Arc<[SnapshotHook]>,
    digest: String,
}

impl Snapshot {
    /// A snapshot of `hooks`: at least one, names valid (`^[a-z][a-z0-9_]{0,39}$`) and
    /// distinct, configs JSON.
    ///
    /// ```no_run
    /// use hookhost::{Host, HostConfig};
    /// use hookhost::embed::{Snapshot, SnapshotHook};
    ///
    /// let host = Host::new(HostConfig::default())?;
    /// let hook = host.load_file("require_fields.wasm".as_ref())?;
    /// let snapshot = Snapshot::new(vec![
    ///     SnapshotHook::new("require_fields", hook).with_config(r#"{"required": ["title"]}"#),
    /// ])?;
    /// println!("{}", snapshot.digest());
    /// # Ok::<(), hookhost::Error>(())
    /// ```
    pub fn new(hooks: Vec<SnapshotHook>) -> Result<Snapshot, Error> {
        if hooks.is_empty() {
            return Err(Error::InvalidHookName {
                name: String::new(),
                reason: "a snapshot needs at least one hook",
            });
        }
        let mut digest = Sha256::new();
        for (index, hook) in hooks.iter().enumerate() {
            check_hook_name(&hook.name)?;
            if hooks[..index].iter().any(|h| h.name == hook.name) {
                return Err(Error::DuplicateHook {
                    name: hook.name.clone(),
                });
            }
            let config = canonical_config(hook.config.as_deref())?;
            let line = serde_json::json!([
                hook.name,
                hook.release.as_ref().map(|r| r.version),
                hook.component.digest(),
                sha256_digest(config.as_bytes()),
                hook.limits.fuel_per_record,
                hook.limits.memory_bytes,
                hook.limits.max_oom_retries,
                hook.limits.timeout.as_millis() as u64,
            ]);
            digest.update(line.to_string().as_bytes());
            digest.update(b"\n");
        }
        Ok(Snapshot {
            hooks: hooks.into(),
            digest: format!("sha256:{}", hex(&digest.finalize())),
        })
    }

    /// The hooks, in the order given.
    pub fn hooks(&self) -> &[SnapshotHook] {
        &self.hooks
    }

    /// `sha256:` over every hook's name, version, component digest, config digest and
    /// limits: two snapshots with the same digest run the same code the same way.
    pub fn digest(&self) -> &str {
        &self.digest
    }
}

/// One hook of a [`Snapshot`].
#[derive(Debug, Clone)]
pub struct SnapshotHook {
    /// The name its outputs go under (`DIR/<name>/`).
    pub name: String,
    /// The release it came from, if it came from the registry.
    pub release: Option<Release>,
    /// The loaded component.
    pub component: HookComponent,
    /// The config as JSON text; `{}` when `None`.
    pub config: Option<String>,
    /// The limits, clamped to the host's ceilings when the batch begins.
    pub limits: Limits,
}

impl SnapshotHook {
    /// `component` under `name`, with no config and default limits.
    pub fn new(name: impl Into<String>, component: HookComponent) -> Self {
        SnapshotHook {
            name: name.into(),
            release: None,
            component,
            config: None,
            limits: Limits::default(),
        }
    }

    /// A release's component with the release's config and limits.
    pub fn from_release(component: HookComponent, release: Release) -> Self {
        SnapshotHook {
            name: release.hook.clone(),
            config: Some(release.config.clone()),
            limits: release.limits.to_limits(),
            release: Some(release),
            component,
        }
    }

    /// Sets the config (JSON text).
    pub fn with_config(mut self, config: impl Into<String>) -> Self {
        self.config = Some(config.into());
        self
    }

    /// Sets the limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}

/// The records of a batch: an iterator, a stream, or a JSONL file. Each is read a chunk at a
/// time, as the hooks are ready for it.
pub struct Batch {
    source: Source,
}

enum Source {
    Records(Box<dyn Iterator<Item = Record> + Send>),
    Stream(Pin<Box<dyn Stream<Item = Record> + Send>>),
    Jsonl(Input),
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.source {
            Source::Records(_) => "records",
            Source::Stream(_) => "stream",
            Source::Jsonl(input) => return f.debug_tuple("Batch").field(input).finish(),
        };
        f.debug_tuple("Batch").field(&kind).finish()
    }
}

impl Batch {
    /// Records from an iterator. It is advanced on a blocking thread, so it may read files.
    pub fn from_records<I>(records: I) -> Batch
    where
        I: IntoIterator<Item = Record>,
        I::IntoIter: Send + 'static,
    {
        Batch {
            source: Source::Records(Box::new(records.into_iter())),
        }
    }

    /// Records from an async stream (a channel receiver, a queue consumer), pulled as the
    /// hooks are ready for them.
    pub fn from_stream<S>(records: S) -> Batch
    where
        S: Stream<Item = Record> + Send + 'static,
    {
        Batch {
            source: Source::Stream(Box::pin(records)),
        }
    }

    /// The records of a JSONL file, with the checks and error lines of `host run`.
    pub fn jsonl(path: impl Into<PathBuf>) -> Batch {
        Batch {
            source: Source::Jsonl(Input::File(path.into())),
        }
    }

    /// The records of JSONL on standard input.
    pub fn stdin() -> Batch {
        Batch {
            source: Source::Jsonl(Input::Stdin),
        }
    }
}

/// How a batch runs.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// A key naming the batch: the same key on the same snapshot returns the earlier batch
    /// instead of running again. By default none.
    pub idempotency_key: Option<String>,
    /// Write outcomes to this directory (`<out>/<hook>/…`, `<out>/passed.jsonl`,
    /// `<out>/batch.json`; visible only when complete) instead of keeping them in memory.
    /// Memory then stays bounded whatever the batch's length. A batch that failed or was
    /// cancelled still makes its directory visible (each `run.json` says how it ended) but
    /// does not hold its key: to run it again, give a new directory or move the old one
    /// aside. By default `None`: outcomes come back in the [`BatchResult`].
    pub out: Option<PathBuf>,
    /// The files directory: record `<id>`'s files are under `<files>/<id>/`. By default none.
    pub files: Option<PathBuf>,
    /// Records per call. By default [`DEFAULT_CHUNK_SIZE`].
    pub chunk_size: usize,
    /// The most guest output kept per hook. By default [`DEFAULT_MAX_LOG_BYTES`].
    pub max_log_bytes: u64,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            idempotency_key: None,
            out: None,
            files: None,
            chunk_size: DEFAULT_CHUNK_SIZE,
            max_log_bytes: DEFAULT_MAX_LOG_BYTES,
        }
    }
}

impl BatchOptions {
    /// Sets the idempotency key.
    pub fn with_idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Writes outcomes to `dir` instead of memory.
    pub fn with_out(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out = Some(dir.into());
        self
    }

    /// Sets the files directory.
    pub fn with_files(mut self, dir: impl Into<PathBuf>) -> Self {
        self.files = Some(dir.into());
        self
    }

    /// Sets the records per call.
    pub fn with_chunk_size(mut self, records: usize) -> Self {
        self.chunk_size = records;
        self
    }
}

/// Where a batch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Begun, waiting for a sandbox.
    Pending,
    /// Guest code has started.
    Active,
    /// Every record got an outcome from every hook.
    Succeeded,
    /// The batch could not complete (a hook failed, the input could not be read).
    Failed,
    /// Stopped by [`RunHandle::cancel`].
    Cancelled,
}

impl RunState {
    /// The state as written in `batch.json`: `pending`, `active`, `succeeded`, `failed`,
    /// `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Pending => "pending",
            RunState::Active => "active",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
        }
    }

    /// Whether the batch has ended.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            RunState::Succeeded | RunState::Failed | RunState::Cancelled
        )
    }
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A batch's state and counts at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// Where the batch is.
    pub state: RunState,
    /// Records settled by every hook: `passed` every hook, `rejected` by at least one (and
    /// errored by none), `errored` in at least one. `total` is their sum.
    pub records: Counts,
    /// Each hook's own counts, in snapshot order.
    pub hooks: Vec<HookProgress>,
    /// Input read so far, in bytes (of JSONL, or of the records as JSONL lines).
    pub input_bytes: u64,
}

/// One hook's counts in an [`Observation`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookProgress {
    /// The hook's name in the snapshot.
    pub name: String,
    /// Its run.
    pub run_id: String,
    /// Its outcomes so far.
    pub records: Counts,
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
    pub state: RunState,
    /// Records settled by every hook (see [`Observation::records`]).
    pub records: Counts,
    /// Each hook's run, in snapshot order.
    pub hooks: Vec<HookResult>,
    /// The ids that passed every hook, in input order, when outcomes were kept in memory
    /// (with an output directory they are in its `passed.jsonl`).
    pub passed: Option<Vec<String>>,
    /// The output directory, if the batch wrote one.
    pub out_dir: Option<PathBuf>,
    /// Whether this is an earlier batch returned for its idempotency key.
    pub reused: bool,
}

/// One hook's run in a [`BatchResult`].
#[derive(Debug, Clone)]
pub struct HookResult {
    /// The hook's name in the snapshot.
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

/// What `batch.json` holds, and what the registry keeps for an idempotency key.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct BatchSummary {
    batch_id: String,
    idempotency_key: Option<String>,
    snapshot_digest: String,
    state: RunState,
    records: Counts,
    hooks: Vec<HookSummary>,
    out_dir: Option<PathBuf>,
    started_at: String,
    finished_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct HookSummary {
    name: String,
    version: Option<u32>,
    digest: String,
    run_id: String,
    status: RunStatus,
    records: Counts,
}

/// A begun batch. Several handles may share one batch (an idempotency key joined); each
/// observes, cancels and awaits the same batch.
#[derive(Debug)]
pub struct RunHandle {
    shared: Arc<Shared>,
    observation: watch::Receiver<Observation>,
    result: watch::Receiver<Option<Finished>>,
    reused: bool,
}

type Finished = Result<Arc<BatchResult>, Arc<Error>>;

#[derive(Debug)]
struct Shared {
    batch_id: String,
    cancel: Arc<AtomicBool>,
    /// Wakes a batch waiting on its input stream when it is cancelled.
    cancelled: tokio::sync::Notify,
    observation: watch::Sender<Observation>,
    result: watch::Sender<Option<Finished>>,
}

impl Shared {
    fn new(batch_id: String) -> Arc<Shared> {
        let observation = Observation {
            state: RunState::Pending,
            records: Counts::default(),
            hooks: Vec::new(),
            input_bytes: 0,
        };
        Arc::new(Shared {
            batch_id,
            cancel: Arc::new(AtomicBool::new(false)),
            cancelled: tokio::sync::Notify::new(),
            observation: watch::Sender::new(observation),
            result: watch::Sender::new(None),
        })
    }

    fn finish(&self, finished: Finished) {
        let state = match &finished {
            Ok(result) => result.state,
            Err(_) => RunState::Failed,
        };
        let records = finished.as_ref().map(|r| r.records).ok();
        self.observation.send_modify(|o| {
            o.state = state;
            if let Some(records) = records {
                o.records = records;
            }
        });
        self.result.send_replace(Some(finished));
    }

    fn state(&self) -> RunState {
        self.observation.borrow().state
    }
}

impl RunHandle {
    fn new(shared: Arc<Shared>, reused: bool) -> RunHandle {
        RunHandle {
            observation: shared.observation.subscribe(),
            result: shared.result.subscribe(),
            shared,
            reused,
        }
    }

    /// The batch's id.
    pub fn batch_id(&self) -> &str {
        &self.shared.batch_id
    }

    /// Whether `begin` returned an earlier batch for its idempotency key.
    pub fn is_reused(&self) -> bool {
        self.reused
    }

    /// The batch's state and counts now.
    pub fn observe(&self) -> Observation {
        self.observation.borrow().clone()
    }

    /// Waits until the state or counts change (after each chunk), then returns them. Returns
    /// at once when the batch has finished.
    pub async fn changed(&mut self) -> Observation {
        if !self.observation.borrow().state.is_finished() {
            // The sender lives as long as the handle, so this only returns on a change.
            let _ = self.observation.changed().await;
        }
        self.observation.borrow_and_update().clone()
    }

    /// Stops the batch: guest code stops within one epoch tick, the batch ends `Cancelled`,
    /// and the outcomes already settled are kept and counted. Does nothing to a finished
    /// batch.
    pub fn cancel(&self) {
        self.shared.cancel.store(true, Ordering::SeqCst);
        // A batch waiting on a stream that has nothing to give is woken too.
        self.shared.cancelled.notify_one();
    }

    /// The batch's cancel flag, to cancel from elsewhere (a signal handler, another task):
    /// setting it is [`RunHandle::cancel`], except that a batch waiting on an input stream
    /// sees it only when the stream yields.
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.shared.cancel.clone()
    }

    /// Waits for the batch to end. The error is for a batch whose outputs could not be
    /// written or recorded (shared, since several handles may wait on one batch).
    pub async fn wait(mut self) -> Result<Arc<BatchResult>, Arc<Error>> {
        let finished = self
            .result
            .wait_for(Option::is_some)
            .await
            .expect("the batch's sender lives in the handle");
        finished.clone().expect("waited for Some")
    }
}

impl IntoFuture for RunHandle {
    type Output = Result<Arc<BatchResult>, Arc<Error>>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.wait())
    }
}

/// The batches a host remembers by idempotency key: in flight, and the last finished ones.
/// A key is claimed by the first `begin` that uses it, before it checks the registry; later
/// `begin`s with the key join that batch.
#[derive(Debug, Default)]
struct Remembered {
    by_key: HashMap<(String, String), Arc<Shared>>,
    /// Keys in the order they were claimed, to forget the oldest finished ones.
    order: VecDeque<(String, String)>,
}

impl Remembered {
    /// The batch holding `key`: in flight, or finished and succeeded.
    fn holder(&mut self, key: &(String, String)) -> Option<Arc<Shared>> {
        let shared = self.by_key.get(key)?;
        match shared.state() {
            RunState::Failed | RunState::Cancelled => {
                self.by_key.remove(key);
                None
            }
            _ => Some(shared.clone()),
        }
    }

    fn claim(&mut self, key: (String, String)) {
        let shared = Shared::new(uuid::Uuid::now_v7().to_string());
        self.by_key.insert(key.clone(), shared);
        self.order.push_back(key);
        // Forget the oldest finished batches beyond the bound; the registry still has them.
        while self.order.len() > DEFAULT_KEEP_FINISHED {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            match self.by_key.get(&oldest) {
                Some(shared) if !shared.state().is_finished() => {
                    self.order.push_back(oldest);
                    break;
                }
                _ => {
                    self.by_key.remove(&oldest);
                }
            }
        }
    }

    fn claimed(&self, key: &(String, String)) -> Option<Arc<Shared>> {
        self.by_key.get(key).cloned()
    }

    fn release(&mut self, key: &(String, String)) {
        if let Some(shared) = self.by_key.remove(key) {
            shared.finish(Err(Arc::new(Error::Cancelled)));
        }
    }
}

/// A batch ready to start.
struct Prepared {
    names: Vec<String>,
    lanes: Vec<Lane>,
    feeder: Feeder,
    dir: Option<BatchDir>,
    passed: Vec<String>,
    knobs: BatchKnobs,
    /// How each lane ended, once it has (an error from its chunk).
    ends: Vec<Option<Ended>>,
}

/// Reads a batch's records chunk by chunk.
enum Feeder {
    /// Read on a blocking thread: a JSONL reader or a user's iterator.
    Blocking(Box<dyn BlockingSource>),
    /// Polled on the batch's task.
    Stream {
        stream: Pin<Box<dyn Stream<Item = Record> + Send>>,
        checker: Box<RecordChecker>,
    },
}

trait BlockingSource: Send {
    fn read_chunk(&mut self, chunk_size: usize) -> Result<Chunk, Error>;
    fn bytes_read(&self) -> u64;
    fn summary(&self) -> InputRecord;
}

struct JsonlSource {
    reader: InputReader<Box<dyn std::io::BufRead + Send>>,
    name: PathBuf,
}

impl BlockingSource for JsonlSource {
    fn read_chunk(&mut self, chunk_size: usize) -> Result<Chunk, Error> {
        read_chunk(&mut self.reader, chunk_size).map_err(|e| Error::io(&self.name, e))
    }
    fn bytes_read(&self) -> u64 {
        self.reader.bytes_read()
    }
    fn summary(&self) -> InputRecord {
        self.reader.summary()
    }
}

struct IterSource {
    records: Box<dyn Iterator<Item = Record> + Send>,
    checker: RecordChecker,
}

impl BlockingSource for IterSource {
    fn read_chunk(&mut self, chunk_size: usize) -> Result<Chunk, Error> {
        let mut chunk = Chunk::default();
        while chunk.records.len() < chunk_size {
            match self.records.next() {
                Some(record) => chunk.push(self.checker.check(record)),
                None => break,
            }
        }
        Ok(chunk)
    }
    fn bytes_read(&self) -> u64 {
        self.checker.bytes_read()
    }
    fn summary(&self) -> InputRecord {
        self.checker.summary()
    }
}

impl Feeder {
    fn new(source: Source, files: Option<FilesRoot>) -> Result<Feeder, Error> {
        Ok(match source {
            Source::Jsonl(input) => {
                let (reader, name) = open_input(&input)?;
                Feeder::Blocking(Box::new(JsonlSource {
                    reader: InputReader::new(reader, files),
                    name,
                }))
            }
            Source::Records(records) => Feeder::Blocking(Box::new(IterSource {
                records,
                checker: RecordChecker::new(files),
            })),
            Source::Stream(stream) => Feeder::Stream {
                stream,
                checker: Box::new(RecordChecker::new(files)),
            },
        })
    }

    /// The next chunk; `Err(Cancelled)` when `cancelled` is notified while a stream keeps the
    /// batch waiting.
    async fn next_chunk(
        &mut self,
        chunk_size: usize,
        cancelled: &tokio::sync::Notify,
    ) -> Result<Chunk, Error> {
        match self {
            Feeder::Blocking(source) => {
                let mut taken = std::mem::replace(source, Box::new(Drained));
                let (taken, chunk) = blocking(move || {
                    let chunk = taken.read_chunk(chunk_size);
                    Ok((taken, chunk))
                })
                .await?;
                *source = taken;
                chunk
            }
            Feeder::Stream { stream, checker } => {
                let mut chunk = Chunk::default();
                while chunk.records.len() < chunk_size {
                    let next = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx));
                    let next = tokio::select! {
                        next = next => next,
                        // The records read into this chunk are not settled: a cancelled batch
                        // keeps only what its hooks finished.
                        () = cancelled.notified() => return Err(Error::Cancelled),
                    };
                    match next {
                        Some(record) => chunk.push(checker.check(record)),
                        None => break,
                    }
                }
                Ok(chunk)
            }
        }
    }

    fn summary(&self) -> InputRecord {
        match self {
            Feeder::Blocking(source) => source.summary(),
            Feeder::Stream { checker, .. } => checker.summary(),
        }
    }

    fn bytes_read(&self) -> u64 {
        match self {
            Feeder::Blocking(source) => source.bytes_read(),
            Feeder::Stream { checker, .. } => checker.bytes_read(),
        }
    }
}

/// Stands in for a blocking source while it is away on a blocking thread.
struct Drained;

impl BlockingSource for Drained {
    fn read_chunk(&mut self, _: usize) -> Result<Chunk, Error> {
        Ok(Chunk::default())
    }
    fn bytes_read(&self) -> u64 {
        0
    }
    fn summary(&self) -> InputRecord {
        InputRecord {
            sha256: String::new(),
            bytes: 0,
            records: 0,
        }
    }
}

/// A batch's output directory: staged beside its target as `.<name>.partial-<batch_id>`
/// (each hook's directory inside it is staged in turn), and renamed into place with
/// `batch.json` in it, so it is visible only when complete.
struct BatchDir {
    staging: crate::output::Staging,
    passed: std::io::BufWriter<cap_std::fs::File>,
}

impl BatchDir {
    fn create(target: &Path, batch_id: &str) -> Result<BatchDir, Error> {
        let staging = crate::output::Staging::create(target, batch_id)?;
        let passed = staging
            .dir
            .create(PASSED_FILE)
            .map_err(|e| Error::io(staging.path.join(PASSED_FILE), e))?;
        Ok(BatchDir {
            staging,
            passed: std::io::BufWriter::with_capacity(64 * 1024, passed),
        })
    }

    /// Where hook `name`'s output directory goes while the batch is staged.
    fn staged(&self, name: &str) -> PathBuf {
        self.staging.path.join(name)
    }

    fn write_passed(&mut self, ids: &[String]) -> Result<(), Error> {
        for id in ids {
            let mut line = b"{\"id\":".to_vec();
            serde_json::to_writer(&mut line, id).expect("strings serialize");
            line.extend_from_slice(b"}\n");
            self.passed
                .write_all(&line)
                .map_err(|e| Error::io(self.staging.path.join(PASSED_FILE), e))?;
        }
        Ok(())
    }

    /// Writes `batch.json` and makes the directory visible at its target.
    fn finish(self, summary: &BatchSummary) -> Result<PathBuf, Error> {
        self.passed
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|file| file.sync_all())
            .map_err(|e| Error::io(self.staging.path.join(PASSED_FILE), e))?;
        let mut json = serde_json::to_vec_pretty(summary).expect("a batch summary serializes");
        json.push(b'\n');
        self.staging.publish(BATCH_FILE, &json)
    }
}

/// Runs one batch on the host's task pool.
struct Driver {
    hookhost: Hookhost,
    shared: Arc<Shared>,
    snapshot: Snapshot,
    key: Option<String>,
    prepared: Prepared,
}

impl Driver {
    async fn run(self) {
        // Whatever happens in the driver, the handles get an answer.
        let mut guard = FinishOnDrop(Some(self.shared.clone()));
        let finished = self.drive().await.map(Arc::new).map_err(Arc::new);
        if let Some(shared) = guard.0.take() {
            shared.finish(finished);
        }
    }

    async fn drive(self) -> Result<BatchResult, Error> {
        let Driver {
            hookhost,
            shared,
            snapshot,
            key,
            mut prepared,
        } = self;
        let started_at = now_rfc3339();
        tracing::info!(batch_id = %shared.batch_id, snapshot = %snapshot.digest,
            hooks = prepared.names.len(), "batch begun");
        let mut records = Counts::default();
        publish(&shared, RunState::Pending, records, &prepared);
        let ended = loop {
            if shared.cancel.load(Ordering::SeqCst) {
                break Ended::Cancelled;
            }
            let chunk_size = prepared.knobs.chunk_size;
            let chunk = match prepared
                .feeder
                .next_chunk(chunk_size, &shared.cancelled)
                .await
            {
                Ok(chunk) if chunk.is_empty() => break Ended::Completed,
                Ok(chunk) => Arc::new(chunk),
                Err(error) => break Ended::from(Err(error)),
            };
            let verdicts = match run_lanes(&hookhost, &shared, &mut prepared, &chunk).await {
                Ok(verdicts) => verdicts,
                Err(ended) => break ended,
            };
            let passed = tally(&chunk, &verdicts, &mut records);
            if let Err(error) = keep_passed(&mut prepared, passed).await {
                break Ended::Failed(error.to_string());
            }
            publish(&shared, RunState::Active, records, &prepared);
        };
        tracing::info!(batch_id = %shared.batch_id, ?ended, passed = records.passed,
            rejected = records.rejected, errored = records.errored, "batch ended");
        finish(
            hookhost, shared, snapshot, key, prepared, ended, records, started_at,
        )
        .await
    }
}

/// Answers a batch's handles with an error if its driver never did (it panicked).
struct FinishOnDrop(Option<Arc<Shared>>);

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        if let Some(shared) = self.0.take() {
            let message = "the batch's driver stopped unexpectedly".to_owned();
            shared.finish(Err(Arc::new(Error::Internal(message))));
        }
    }
}

/// Runs every lane over `chunk`, each on a blocking thread under a sandbox permit. On
/// success, each lane's verdicts (lane order); otherwise how the batch ends (each failed
/// lane's own ending is noted in `prepared.ends`).
async fn run_lanes(
    hookhost: &Hookhost,
    shared: &Arc<Shared>,
    prepared: &mut Prepared,
    chunk: &Arc<Chunk>,
) -> Result<Vec<Vec<Verdict>>, Ended> {
    let mut tasks = Vec::with_capacity(prepared.lanes.len());
    for mut lane in prepared.lanes.drain(..) {
        let sandboxes = hookhost.inner.sandboxes.clone();
        let chunk = chunk.clone();
        let shared = shared.clone();
        tasks.push(tokio::spawn(async move {
            let permit = sandboxes
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let ran = tokio::task::spawn_blocking(move || {
                shared.observation.send_if_modified(|o| {
                    let first = o.state == RunState::Pending;
                    if first {
                        o.state = RunState::Active;
                    }
                    first
                });
                let verdicts = lane.run_chunk(&chunk);
                (lane, verdicts)
            })
            .await;
            drop(permit);
            ran
        }));
    }
    let mut all = Vec::with_capacity(tasks.len());
    let mut ended: Option<Ended> = None;
    for (index, task) in tasks.into_iter().enumerate() {
        let (lane, verdicts) = match task.await {
            Ok(Ok(ran)) => ran,
            // A lane that panicked is gone with its outputs: nothing can be finished.
            Ok(Err(join)) => std::panic::resume_unwind(join.into_panic()),
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        };
        prepared.lanes.push(lane);
        match verdicts {
            Ok(verdicts) => all.push(verdicts),
            Err(error) => {
                let own = Ended::from(Err(error));
                let batch = match &own {
                    Ended::Failed(reason) => {
                        Ended::Failed(format!("hook `{}` failed: {reason}", prepared.names[index]))
                    }
                    other => other.clone(),
                };
                prepared.ends[index] = Some(own);
                // A failure outranks a cancellation.
                if !matches!(ended, Some(Ended::Failed(_))) {
                    ended = Some(batch);
                }
            }
        }
    }
    match ended {
        None => Ok(all),
        Some(ended) => Err(ended),
    }
}

/// Settles a chunk at the batch level: a record errored if any hook errored it, else was
/// rejected if any hook rejected it, else passed every hook. Returns the passed ids.
fn tally(chunk: &Chunk, verdicts: &[Vec<Verdict>], records: &mut Counts) -> Vec<String> {
    let mut passed = Vec::new();
    let mut record_index = 0;
    for (slot_index, slot) in chunk.slots.iter().enumerate() {
        let is_record = matches!(slot, crate::lane::Slot::Record { .. });
        let of_slot = || verdicts.iter().map(move |lane| lane[slot_index]);
        records.total += 1;
        if of_slot().any(|v| v == Verdict::Errored) {
            records.errored += 1;
        } else if of_slot().any(|v| v == Verdict::Rejected) {
            records.rejected += 1;
        } else {
            records.passed += 1;
            passed.push(chunk.records[record_index].record.id.clone());
        }
        record_index += usize::from(is_record);
    }
    passed
}

/// Keeps a chunk's passed ids: in memory, or appended to `passed.jsonl`.
async fn keep_passed(prepared: &mut Prepared, passed: Vec<String>) -> Result<(), Error> {
    match prepared.dir.take() {
        None => {
            prepared.passed.extend(passed);
            Ok(())
        }
        Some(mut dir) => {
            let (dir, written) = blocking(move || {
                let written = dir.write_passed(&passed);
                Ok((dir, written))
            })
            .await?;
            prepared.dir = Some(dir);
            written
        }
    }
}

/// Publishes the batch's state and counts to its handles.
fn publish(shared: &Shared, state: RunState, records: Counts, prepared: &Prepared) {
    let hooks = prepared
        .names
        .iter()
        .zip(&prepared.lanes)
        .map(|(name, lane)| HookProgress {
            name: name.clone(),
            run_id: lane.run_id().to_owned(),
            records: lane.counts(),
        })
        .collect();
    let input_bytes = prepared.feeder.bytes_read();
    shared.observation.send_modify(|o| {
        if !(state == RunState::Pending && o.state == RunState::Active) {
            o.state = state;
        }
        o.records = records;
        o.hooks = hooks;
        o.input_bytes = input_bytes;
    });
}

/// How each lane's run ends, given how the batch's loop ended.
fn lane_ending(own: Option<&Ended>, batch: &Ended) -> Ended {
    match (own, batch) {
        (Some(own), _) => own.clone(),
        (None, Ended::Failed(reason)) => Ended::Failed(format!("stopped: {reason}")),
        (None, batch) => batch.clone(),
    }
}

/// Ends every lane, writes the batch's directory and records the batch.
#[allow(clippy::too_many_arguments)]
async fn finish(
    hookhost: Hookhost,
    shared: Arc<Shared>,
    snapshot: Snapshot,
    key: Option<String>,
    prepared: Prepared,
    ended: Ended,
    records: Counts,
    started_at: String,
) -> Result<BatchResult, Error> {
    let Prepared {
        names,
        lanes,
        feeder,
        dir,
        passed,
        ends,
        ..
    } = prepared;
    let input = feeder.summary();
    let state = match &ended {
        Ended::Completed => RunState::Succeeded,
        Ended::Cancelled => RunState::Cancelled,
        Ended::Failed(_) => RunState::Failed,
    };
    let batch_id = shared.batch_id.clone();
    let snapshot_digest = snapshot.digest.clone();
    let (hooks, configs, summary, out_dir) = blocking(move || {
        let mut hooks = Vec::with_capacity(lanes.len());
        let mut configs = Vec::with_capacity(lanes.len());
        for ((lane, name), own) in lanes.into_iter().zip(names).zip(&ends) {
            configs.push(lane.plan().config_json().to_owned());
            let (run, kept) = lane.finish(lane_ending(own.as_ref(), &ended), input.clone())?;
            let (outcomes, logs, dir) = match kept {
                Kept::Dir => (None, Vec::new(), None),
                Kept::Memory(outcomes, logs) => (Some(outcomes), logs, None),
            };
            hooks.push(HookResult {
                name,
                run,
                outcomes,
                logs,
                dir,
            });
        }
        let out_dir = dir
            .as_ref()
            .map(|d| crate::fsutil::absolute(d.staging.target()));
        for hook in &mut hooks {
            hook.dir = out_dir.as_ref().map(|d| d.join(&hook.name));
        }
        let summary = BatchSummary {
            batch_id,
            idempotency_key: key,
            snapshot_digest,
            state,
            records,
            hooks: hooks
                .iter()
                .map(|h| HookSummary {
                    name: h.name.clone(),
                    version: h.run.hook.version,
                    digest: h.run.hook.digest.clone(),
                    run_id: h.run.run_id.clone(),
                    status: h.run.status,
                    records: h.run.records,
                })
                .collect(),
            out_dir: out_dir.clone(),
            started_at,
            finished_at: now_rfc3339(),
        };
        if let Some(dir) = dir {
            dir.finish(&summary)?;
        }
        Ok((hooks, configs, summary, out_dir))
    })
    .await?;
    let result = BatchResult {
        batch_id: summary.batch_id.clone(),
        idempotency_key: summary.idempotency_key.clone(),
        snapshot_digest: summary.snapshot_digest.clone(),
        state,
        records,
        passed: out_dir.is_none().then_some(passed),
        out_dir,
        hooks,
        reused: false,
    };
    let Some(registry) = hookhost.inner.registry.clone() else {
        return Ok(result);
    };
    // Only a batch that succeeded holds its key for good.
    let remembered_key = (state == RunState::Succeeded)
        .then(|| summary.idempotency_key.clone())
        .flatten();
    let result = blocking(move || {
        let summary_json = serde_json::to_value(&summary).expect("a batch summary serializes");
        let out_dirs: Vec<Option<String>> = result
            .hooks
            .iter()
            .map(|h| h.dir.as_ref().map(|d| d.display().to_string()))
            .collect();
        let runs: Vec<RunEntry<'_>> = result
            .hooks
            .iter()
            .zip(&configs)
            .zip(&out_dirs)
            .map(|((hook, config), out_dir)| RunEntry {
                record: &hook.run,
                config,
                out_dir: out_dir.as_deref(),
            })
            .collect();
        let recorded = registry.record_batch(NewBatch {
            batch_id: &result.batch_id,
            idempotency_key: remembered_key.as_deref(),
            snapshot_digest: &result.snapshot_digest,
            runs: &runs,
            summary: &summary_json,
        });
        match recorded {
            Ok(BatchRecorded::Recorded) => Ok(Ok(result)),
            Ok(BatchRecorded::Existing(stored)) => Ok(Err(stored)),
            Err(error) => Err(Error::NotRecorded {
                run_id: result.batch_id.clone(),
                out_dir: result.out_dir.as_ref().map(|d| d.display().to_string()),
                source: Box::new(error),
            }),
        }
    })
    .await?;
    match result {
        Ok(result) => Ok(result),
        Err(stored) => {
            // Another process finished a batch with the same key first: that one is the
            // batch, and this execution's runs were not recorded.
            tracing::warn!(batch_id = %stored.batch_id,
                "another process recorded this idempotency key first; returning its batch");
            hookhost.read_back(stored).await
        }
    }
}

/// Runs blocking work (guest code, files, the registry) off the runtime's worker threads.
async fn blocking<T, F>(work: F) -> Result<T, Error>
where
    F: FnOnce() -> Result<T, Error> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(join) => Err(Error::Internal(format!("a blocking task failed: {join}"))),
    }
}
