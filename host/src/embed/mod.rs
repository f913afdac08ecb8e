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
//!   [`BatchHandle`] at once. Every hook of the snapshot runs over every record; each hook's
//!   pass is a *run* with its own `run_id` and provenance record.
//! - [`BatchHandle::observe`] gives the [`BatchState`] and counts; [`BatchHandle::cancel`] stops
//!   guest code within one epoch tick (outcomes already settled are kept and counted);
//!   [`BatchHandle::wait`] (or `.await` on the handle) gives the [`BatchResult`]: per hook, the
//!   outcomes with `run_id` on every row and the provenance record, and the ids of the
//!   records that passed every hook.
//! - An idempotency key ([`BatchOptions::idempotency_key`]): the same key on the same
//!   snapshot returns the earlier batch — joined while it runs, or read back from the
//!   registry after it succeeded — with no second execution and no second run record.
//!
//! A batch executes on the one engine every run goes through ([`crate::exec`]): on a blocking
//! thread (`spawn_blocking`) with its own fixed set of worker threads, each call holding a
//! permit of the host's sandbox [`Gate`] — never on a runtime worker. Registry reads and
//! writes go to blocking threads too, through [`registry::blocking`](crate::registry::blocking)
//! (what [`AsyncRegistry`](crate::registry::AsyncRegistry) runs every call on).
//!
//! # Layout
//!
//! - this module — [`Hookhost`], [`EmbedConfig`], [`BatchOptions`], and the driver that runs
//!   a begun batch on [`crate::exec`];
//! - `snapshot` — [`Snapshot`], [`SnapshotHook`];
//! - `source` — [`Batch`]: iterators, streams and JSONL files as execution sources;
//! - `handle` — [`BatchHandle`], [`Observation`];
//! - `keys` — the in-process idempotency memory.
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

mod handle;
mod keys;
mod snapshot;
mod source;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use self::handle::{BatchHandle, Observation};
use self::handle::{Finished, Shared};
pub use self::keys::DEFAULT_KEEP_FINISHED;
use self::keys::Remembered;
pub use self::snapshot::{Snapshot, SnapshotHook};
pub use self::source::Batch;
use crate::component::{Host, HostConfig, InstanceAllocation};
use crate::error::Error;
use crate::exec::{BatchRequest, BatchSummary, Execution, Layout, Plan, default_jobs};
pub use crate::exec::{BatchResult, BatchState, Gate, HookProgress, HookResult};
pub use crate::input::Record;
pub use crate::outcome::{ErrorRow, FeatureRow, Outcomes, Rejection};
pub use crate::output::{BATCH_FILE, PASSED_FILE};
use crate::provenance::{BatchRecorded, StoredBatch};
use crate::registry::{BatchClaim, Claimed, Registry, RegistryLocation, blocking};
use crate::runner::DEFAULT_MAX_LOG_BYTES;
use crate::sink::Features;

/// How [`Hookhost::open`] sets up.
#[derive(Debug, Clone)]
pub struct EmbedConfig {
    /// The engine's settings and the host-wide ceilings.
    pub host: HostConfig,
    /// The most sandboxes running guest code at once, across every batch of the host. By
    /// default the number of cores.
    pub max_sandboxes: usize,
    /// Where the registry is: under the root, or a PostgreSQL database shared by a fleet (then
    /// the root holds only this machine's caches). By default [`RegistryLocation::Local`].
    pub registry: RegistryLocation,
    /// How long a claim on a batch's idempotency key lasts without renewal, with a shared
    /// registry: a worker that dies loses its claims this long after its last renewal, and
    /// the batch can then run elsewhere. Longer leases survive longer stalls (a paused VM, a
    /// slow database); shorter ones finish a dead worker's batch sooner. By default
    /// [`DEFAULT_CLAIM_LEASE`].
    pub claim_lease: Duration,
    /// How often a running batch renews its claim; well under [`EmbedConfig::claim_lease`]
    /// (at most a third of it is used), so that a renewal or two may fail without losing the
    /// claim. By default [`DEFAULT_CLAIM_RENEWAL`].
    pub claim_renewal: Duration,
}

/// How long a batch claim lasts without renewal ([`EmbedConfig::claim_lease`]).
pub const DEFAULT_CLAIM_LEASE: Duration = Duration::from_secs(30);

/// How often a running batch renews its claim ([`EmbedConfig::claim_renewal`]).
pub const DEFAULT_CLAIM_RENEWAL: Duration = Duration::from_secs(10);

impl Default for EmbedConfig {
    fn default() -> Self {
        EmbedConfig {
            registry: RegistryLocation::Local,
            claim_lease: DEFAULT_CLAIM_LEASE,
            claim_renewal: DEFAULT_CLAIM_RENEWAL,
            host: HostConfig::default(),
            max_sandboxes: default_jobs(),
        }
    }
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
    gate: Arc<Gate>,
    batches: Mutex<Remembered>,
    claim_lease: Duration,
    claim_renewal: Duration,
}

impl std::fmt::Debug for Hookhost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hookhost")
            .field("host", &self.inner.host)
            .field("registry", &self.inner.registry.as_ref().map(|r| r.root()))
            .field("max_sandboxes", &self.inner.gate.size())
            .finish_non_exhaustive()
    }
}

impl Hookhost {
    /// Opens the registry ([`EmbedConfig::registry`]: at `root`, created if missing, or a
    /// PostgreSQL database, with this machine's caches under `root`) and starts an engine.
    pub async fn open(root: impl AsRef<Path>, config: EmbedConfig) -> Result<Hookhost, Error> {
        let root = root.as_ref().to_owned();
        let (host, registry) = blocking(move || {
            let registry = Registry::open_at(&config.registry, &root)?;
            let host = Host::new(config.host)?;
            Ok((host, registry))
        })
        .await?;
        let hookhost = Hookhost::new(host, Some(registry), config.max_sandboxes);
        let mut inner = Arc::into_inner(hookhost.inner).expect("not shared yet");
        inner.claim_lease = config.claim_lease.max(Duration::from_millis(100));
        inner.claim_renewal = config.claim_renewal.min(inner.claim_lease / 3);
        Ok(Hookhost {
            inner: Arc::new(inner),
        })
    }

    /// A host over an engine already built, with or without a registry. Without one, hooks
    /// come from [`Snapshot::new`], runs are not recorded, and idempotency keys are
    /// remembered only in this process. `max_sandboxes` is at least 1, and at most the
    /// sandboxes the host's instance pool holds (a bound past the pool would turn waiting into
    /// failed instantiations).
    pub fn new(host: Host, registry: Option<Registry>, max_sandboxes: usize) -> Hookhost {
        let pool = match host.instance_allocation() {
            InstanceAllocation::Pooling { sandboxes } => sandboxes as usize,
            InstanceAllocation::OnDemand => usize::MAX,
        };
        let max_sandboxes = max_sandboxes.clamp(1, pool.max(1));
        Hookhost {
            inner: Arc::new(Inner {
                host,
                registry: registry.map(Arc::new),
                gate: Arc::new(Gate::new(max_sandboxes)),
                batches: Mutex::new(Remembered::default()),
                claim_lease: DEFAULT_CLAIM_LEASE,
                claim_renewal: DEFAULT_CLAIM_RENEWAL,
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
        default_jobs()
    }

    /// The bound on sandboxes running at once.
    pub fn max_sandboxes(&self) -> usize {
        self.inner.gate.size()
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
                    Ok(SnapshotHook::from_release(component, release.release))
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
    /// directory in the way, an unreadable input file or files directory, Parquet features
    /// without an output directory ([`Error::ParquetNeedsDirectory`]), feature tables and
    /// Parquet at once, or feature tables without a PostgreSQL registry
    /// ([`Error::FeatureTables`]).
    pub async fn begin(
        &self,
        snapshot: &Snapshot,
        batch: Batch,
        options: BatchOptions,
    ) -> Result<BatchHandle, Error> {
        if let (Some(schema), Features::Parquet(_)) = (&options.feature_tables, &options.features) {
            return Err(Error::FeatureTables {
                tables: format!("schema {schema}"),
                reason: "feature rows go to tables or to features.parquet, not both: ask for \
                         one"
                .into(),
            });
        }
        if matches!(options.features, Features::Parquet(_)) && options.out.is_none() {
            return Err(Error::ParquetNeedsDirectory);
        }
        let key = options
            .idempotency_key
            .clone()
            .map(|key| (key, snapshot.digest().to_owned()));
        let mut claim = None;
        if let Some(key) = &key {
            match self.join(key).await? {
                Joined::Handle(handle) => return Ok(handle),
                Joined::Run(claimed) => claim = claimed,
            }
        }
        let shared = match &key {
            Some(key) => self.lock().claimed(key).expect("claimed by join"),
            None => Shared::new(uuid::Uuid::now_v7().to_string(), self.inner.gate.clone()),
        };
        let prepared = match self.prepare(snapshot, batch, options, &shared).await {
            Ok(prepared) => prepared,
            Err(error) => {
                self.forget(key.as_ref());
                if let Some(claim) = claim {
                    self.release_claim(claim).await;
                }
                return Err(error);
            }
        };
        let handle = BatchHandle::new(shared.clone(), false);
        tokio::spawn(self.clone().drive(shared, prepared, claim));
        Ok(handle)
    }

    /// Gives a claim up (a failure is only logged: the lease runs out anyway).
    async fn release_claim(&self, claim: BatchClaim) {
        let Some(registry) = self.inner.registry.clone() else {
            return;
        };
        if let Err(error) = blocking(move || registry.release_claim(&claim)).await {
            tracing::warn!(%error, "a batch claim could not be released; its lease will run out");
        }
    }

    /// Renews `claim` every [`EmbedConfig::claim_renewal`] until the task is aborted; a claim
    /// found lost cancels the batch, whose record another worker may now be making.
    fn keep_claim(&self, claim: BatchClaim, shared: Arc<Shared>) -> tokio::task::JoinHandle<()> {
        let registry = self.inner.registry.clone();
        let (lease, every) = (self.inner.claim_lease, self.inner.claim_renewal);
        let self_gate = self.inner.gate.clone();
        tokio::spawn(async move {
            let Some(registry) = registry else { return };
            let mut ticks = tokio::time::interval(every);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let (registry, claim) = (registry.clone(), claim.clone());
                match blocking(move || registry.renew_claim(&claim, lease)).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(batch_id = %shared.batch_id,
                            "the batch's claim ran out and was taken; cancelling the batch");
                        shared
                            .cancel
                            .store(true, std::sync::atomic::Ordering::SeqCst);
                        shared.cancelled.notify_one();
                        self_gate.wake();
                        return;
                    }
                    // Not fatal yet: the lease outlasts a few failed renewals.
                    Err(error) => tracing::warn!(%error, "renewing a batch claim failed"),
                }
            }
        })
    }

    /// For a key: the handle of the batch that holds it, if any; otherwise claims it — a
    /// pending entry that concurrent `begin`s of this process join, and with a shared
    /// registry a claim in the database, waiting while another worker holds it — and returns
    /// [`Joined::Run`].
    async fn join(&self, key: &(String, String)) -> Result<Joined, Error> {
        {
            let mut remembered = self.lock();
            if let Some(shared) = remembered.holder(key) {
                return Ok(Joined::Handle(BatchHandle::new(shared, true)));
            }
            remembered.claim(key.clone(), self.inner.gate.clone());
        }
        let Some(registry) = self.inner.registry.clone() else {
            return Ok(Joined::Run(None));
        };
        let (k, snapshot) = key.clone();
        let worker = self.inner.host.worker().to_owned();
        let lease = self.inner.claim_lease;
        let stored = blocking(move || {
            if !registry.claims_batches() {
                return Ok((registry.batch_by_key(&k, &snapshot)?, None));
            }
            match registry.claim_batch(&k, &snapshot, &worker, lease)? {
                Some(Claimed::Done(stored)) => Ok((Some(stored), None)),
                Some(Claimed::Claimed(claim)) => Ok((None, Some(claim))),
                None => Ok((registry.batch_by_key(&k, &snapshot)?, None)),
            }
        })
        .await;
        let stored = match stored {
            Ok((None, claim)) => return Ok(Joined::Run(claim)),
            Ok((Some(stored), _)) => Ok(Some(stored)),
            Err(error) => Err(error),
        };
        let stored = match stored {
            Ok(stored) => stored,
            Err(error) => {
                self.forget(Some(key));
                return Err(error);
            }
        };
        let Some(stored) = stored else {
            return Ok(Joined::Run(None));
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
        Ok(Joined::Handle(BatchHandle::new(shared, true)))
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
                        registry.describe()
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

    /// Everything a batch needs before it can start, checked: the hooks planned (configs
    /// JSON, limits clamped), the input opened, the output directories created.
    async fn prepare(
        &self,
        snapshot: &Snapshot,
        batch: Batch,
        options: BatchOptions,
        shared: &Arc<Shared>,
    ) -> Result<Prepared, Error> {
        let plans = snapshot
            .hooks()
            .iter()
            .map(|hook| {
                Plan::new(
                    hook.name.clone(),
                    hook.component.clone(),
                    hook.release.as_ref().map(|r| (r.hook.clone(), r.version)),
                    hook.config.as_deref(),
                    &hook.limits,
                    None,
                )
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let mut request = BatchRequest::new(
            plans,
            match &options.out {
                Some(dir) => Layout::Batch(dir.clone()),
                None => Layout::Memory,
            },
        );
        request.batch_id = shared.batch_id.clone();
        request.chunk_size = options.chunk_size.map(|n| n.max(1));
        request.jobs = options
            .jobs
            .unwrap_or_else(|| self.inner.gate.size())
            .max(1);
        request.max_log_bytes = options.max_log_bytes;
        request.cancel = shared.cancel.clone();
        request.gate = Some(self.inner.gate.clone());
        request.recorder = self
            .inner
            .registry
            .clone()
            .map(|r| r as Arc<dyn crate::provenance::Recorder>);
        request.idempotency_key = options.idempotency_key.clone();
        request.snapshot_digest = snapshot.digest().to_owned();
        request.features = options.features.clone();
        let files = options.files.clone();
        let runtime = tokio::runtime::Handle::current();
        let cancelled = shared.cancelled.clone();
        let tables = match &options.feature_tables {
            Some(schema) => Some((
                self.inner.registry.clone().ok_or(Error::NoRegistry)?,
                schema.clone(),
            )),
            None => None,
        };
        blocking(move || {
            if let Some((registry, schema)) = tables {
                request.features = Features::Tables(registry.feature_tables(&schema)?);
            }
            let source = batch.open(files.as_deref(), runtime, cancelled)?;
            let execution = Execution::prepare(request)?;
            Ok(Prepared { execution, source })
        })
        .await
    }

    /// Runs a begun batch to its end and answers its handles, whatever happens (a panic in
    /// the engine answers them with [`Error::Internal`]).
    async fn drive(self, shared: Arc<Shared>, prepared: Prepared, claim: Option<BatchClaim>) {
        let mut guard = FinishOnDrop(Some(shared.clone()));
        let renewing = claim
            .clone()
            .map(|claim| self.keep_claim(claim, shared.clone()));
        let finished = self.execute(&shared, prepared).await;
        if let Some(renewing) = renewing {
            renewing.abort();
        }
        // After the record: a succeeded batch now holds its key by its row in `batches`, so
        // the workers woken by the release find it done; a failed one may run again.
        if let Some(claim) = claim {
            self.release_claim(claim).await;
        }
        if let Some(shared) = guard.0.take() {
            shared.finish(finished);
        }
    }

    async fn execute(&self, shared: &Arc<Shared>, prepared: Prepared) -> Finished {
        let Prepared {
            execution,
            mut source,
        } = prepared;
        tracing::info!(batch_id = %shared.batch_id, "batch begun");
        let observer = shared.clone();
        let executed = blocking(move || {
            execution.run(source.as_mut(), &mut |progress| {
                observer.observation.send_modify(|o| {
                    o.state = BatchState::Active;
                    o.records = progress.counts;
                    o.hooks = progress.hooks.clone();
                    o.input_bytes = progress.bytes_read;
                });
            })
        })
        .await
        .map_err(Arc::new)?;
        match executed.recorded {
            Some(BatchRecorded::Existing(stored)) => {
                // Another process finished a batch with the same key first: that one is the
                // batch, and this execution's runs were not recorded.
                tracing::warn!(batch_id = %stored.batch_id,
                    "another process recorded this idempotency key first; returning its batch");
                self.read_back(stored).await.map(Arc::new).map_err(Arc::new)
            }
            _ => Ok(Arc::new(executed.result)),
        }
    }
}

/// What [`Hookhost::join`] found for a key.
enum Joined {
    /// The batch holding the key, here or (finished) in the registry.
    Handle(BatchHandle),
    /// This `begin` runs the batch, holding the key's claim when the registry has claims.
    Run(Option<BatchClaim>),
}

/// A batch ready to start: its outputs created, its input opened.
struct Prepared {
    execution: Execution,
    source: Box<dyn crate::input::Source>,
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
    /// Records per call. By default (`None`) the largest of the hooks' own defaults
    /// ([`HookComponent::default_chunk_size`](crate::HookComponent::default_chunk_size)):
    /// [`DEFAULT_CHUNK_SIZE`](crate::limits::DEFAULT_CHUNK_SIZE), or [`HEAVY_CHUNK_SIZE`](crate::limits::HEAVY_CHUNK_SIZE) for a
    /// heavy component such as an interpreter.
    pub chunk_size: Option<usize>,
    /// The most guest output kept per hook. By default [`DEFAULT_MAX_LOG_BYTES`].
    pub max_log_bytes: u64,
    /// Chunks run at once (worker threads); the outputs are the same for any value. By
    /// default `None`: the host's [`max_sandboxes`](Hookhost::max_sandboxes).
    pub jobs: Option<usize>,
    /// Feature rows into PostgreSQL tables in this schema of the registry's own database (one
    /// table per hook, each row's `run_id` a foreign key to its run), committed with the run
    /// records, instead of `features.jsonl` or memory: see
    /// [`Registry::feature_tables`]. Rejections, errors and logs still go to `out` or memory.
    /// Needs a PostgreSQL registry; refused before anything runs otherwise. By default `None`.
    pub feature_tables: Option<String>,
    /// Where each hook's feature rows go: `features.jsonl` ([`Features::Jsonl`]) or
    /// `features.parquet` ([`Features::Parquet`]) in its run directory under
    /// [`out`](Self::out). Parquet needs `out`: a batch kept in memory with Parquet asked for
    /// is refused at `begin` ([`Error::ParquetNeedsDirectory`]), before anything runs.
    /// Rejections, errors and logs go where they go for JSONL. By default JSONL.
    pub features: Features,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            idempotency_key: None,
            out: None,
            files: None,
            chunk_size: None,
            max_log_bytes: DEFAULT_MAX_LOG_BYTES,
            jobs: None,
            feature_tables: None,
            features: Features::default(),
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
        self.chunk_size = Some(records);
        self
    }

    /// Sets the chunks run at once.
    pub fn with_jobs(mut self, jobs: usize) -> Self {
        self.jobs = Some(jobs);
        self
    }

    /// Writes feature rows into the registry's feature tables in `schema` (e.g.
    /// [`DEFAULT_FEATURE_SCHEMA`](crate::registry::DEFAULT_FEATURE_SCHEMA)) instead of a
    /// features file; rejections, errors and logs still go to `out` or memory. Needs a
    /// PostgreSQL registry, and the default [`features`](Self::features) (JSONL): a Parquet
    /// file and tables at once are refused at `begin`.
    ///
    /// ```
    /// use hookhost::embed::BatchOptions;
    /// use hookhost::registry::DEFAULT_FEATURE_SCHEMA;
    /// let options = BatchOptions::default().with_feature_tables(DEFAULT_FEATURE_SCHEMA);
    /// assert_eq!(options.feature_tables.as_deref(), Some("hookhost_features"));
    /// ```
    pub fn with_feature_tables(mut self, schema: impl Into<String>) -> Self {
        self.feature_tables = Some(schema.into());
        self
    }

    /// Sets where the feature rows go, e.g. `Features::Parquet(ParquetOptions::default())`
    /// (which needs [`with_out`](Self::with_out)).
    ///
    /// ```
    /// use hookhost::embed::BatchOptions;
    /// use hookhost::sink::{Features, ParquetOptions};
    ///
    /// let options = BatchOptions::default()
    ///     .with_out("outbox/2026-11-22-0001")
    ///     .with_features(Features::Parquet(ParquetOptions::default()));
    /// assert!(matches!(options.features, Features::Parquet(_)));
    /// ```
    pub fn with_features(mut self, features: Features) -> Self {
        self.features = features;
        self
    }
}
