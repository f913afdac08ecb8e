//! The registry: hooks with a name and a history, on one root directory.
//!
//! A root holds `blobs/sha256/<hex>` (component bytes, see [`BlobStore`]) and `registry.db`
//! (SQLite: hooks, immutable numbered releases, live pointers and their history, and the
//! append-only record of runs). [`Registry`] is the whole of it behind one handle:
//!
//! - [`Registry::publish`] validates a component (it loads, implements the hook world, has a
//!   well-formed contract, fits the size cap), classifies its contract against the hook's with
//!   [`evolution::classify`](crate::evolution::classify), stores its bytes, and records release
//!   `v(N+1)` with the live pointer on it — or returns the existing release of the same digest.
//! - [`Registry::release`] resolves `name` or `name@version`; [`Registry::load`] reads the blob
//!   (re-hashed: altered bytes are refused) and loads it; [`Registry::set_live`] moves the
//!   pointer (a rollback is a move back; history never changes).
//! - As a [`Recorder`], it appends the provenance record of every run handed to it, whatever
//!   its status; [`Registry::runs`] and [`Registry::run_record`] read them back.
//! - For embedders running a set of hooks per batch: [`Registry::resolve_all`] resolves the set
//!   in one snapshot; [`Registry::record_batch`] records a batch's runs at once and, under an
//!   idempotency key, the batch itself, which [`Registry::batch_by_key`] finds again.
//!
//! Several processes may use one root at once: writes are SQLite transactions that take the
//! write lock up front, so versions stay gap-free and each digest gets one release.
//!
//! ```no_run
//! use hookhost::{Host, HostConfig};
//! use hookhost::registry::{PublishRequest, Registry};
//! use hookhost::run::{Input, RunRequest, run_to_dir};
//!
//! let host = Host::new(HostConfig::default())?;
//! let registry = Registry::open(".hookhost")?;
//! let bytes = std::fs::read("text_stats.wasm").expect("readable");
//! let published = registry.publish(&host, &bytes, "text_stats.wasm",
//!     PublishRequest::new("text_stats"))?;
//! println!("text_stats v{} {}", published.release.version, published.release.digest);
//!
//! let release = registry.release("text_stats", None)?; // the live release
//! let hook = registry.load(&host, &release)?;
//! let registry = std::sync::Arc::new(registry);
//! let mut request = RunRequest::for_release(hook, &release, Input::File("batch.jsonl".into()), "out");
//! request.recorder = Some(registry.clone()); // the run is recorded when it ends
//! let record = run_to_dir(request, &mut |_| {})?;
//! assert_eq!(record.hook.version, Some(release.version));
//! # Ok::<(), hookhost::Error>(())
//! ```

mod blobs;
mod db;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

pub use self::blobs::{BLOBS_DIR, BlobStore};
pub use self::db::{BUSY_TIMEOUT, SCHEMA_VERSION};
use self::db::{Db, Lookup, Missing, NewRelease};
use crate::component::{HookComponent, Host};
use crate::config::canonical_config;
use crate::contract::Contract;
use crate::error::Error;
use crate::evolution::Evolution;
use crate::limits::{DEFAULT_FUEL_PER_RECORD, DEFAULT_MEMORY_BYTES, DEFAULT_TIMEOUT, Limits};
use crate::provenance::RunRecord;
pub use crate::provenance::{BatchRecorded, NewBatch, Recorder, RunEntry, StoredBatch};

/// The registry root used when none is given: `.hookhost` in the working directory.
pub const DEFAULT_ROOT: &str = ".hookhost";
/// The database file under the root.
pub const DB_FILE: &str = "registry.db";
/// The longest hook name, in bytes.
pub const MAX_HOOK_NAME_BYTES: usize = 40;

/// A registry root: blobs and database. `Send + Sync`; share it behind an `Arc`.
#[derive(Debug)]
pub struct Registry {
    root: PathBuf,
    blobs: BlobStore,
    db: Mutex<Db>,
}

/// The limits a release carries, used by its runs unless overridden (within the host's
/// ceilings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseLimits {
    /// Fuel per record.
    pub fuel_per_record: u64,
    /// The starting memory cap, in bytes.
    pub memory_bytes: u64,
    /// Wall-clock time per record, in milliseconds.
    pub timeout_ms: u64,
}

impl Default for ReleaseLimits {
    /// The host's defaults.
    fn default() -> Self {
        ReleaseLimits {
            fuel_per_record: DEFAULT_FUEL_PER_RECORD,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            timeout_ms: DEFAULT_TIMEOUT.as_millis() as u64,
        }
    }
}

impl ReleaseLimits {
    /// These limits as run [`Limits`] (the OOM retries at their default).
    pub fn to_limits(self) -> Limits {
        Limits::default()
            .with_fuel_per_record(self.fuel_per_record)
            .with_memory_bytes(self.memory_bytes)
            .with_timeout(std::time::Duration::from_millis(self.timeout_ms))
    }
}

/// An immutable, numbered release of a hook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Release {
    /// The hook's name.
    pub hook: String,
    /// 1, 2, 3… without gaps.
    pub version: u32,
    /// `sha256:` digest of the component's bytes.
    pub digest: String,
    /// The component's size in bytes.
    pub size: u64,
    /// The component's own contract (a subset of the hook's when later releases added
    /// columns).
    pub contract: Contract,
    /// `sha256:` digest of `contract`.
    pub contract_digest: String,
    /// The config, as canonical JSON text.
    pub config: String,
    /// `sha256:` digest of `config`.
    pub config_digest: String,
    /// The limits its runs use by default.
    pub limits: ReleaseLimits,
    /// Where it was built from (a commit, a tag), as the publisher said.
    pub source_ref: Option<String>,
    /// Who or what built it, as the publisher said.
    pub built_by: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// Whether the live pointer is on it (when it was read).
    pub live: bool,
}

/// A hook: its contract and where its live pointer is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookSummary {
    /// The hook's name.
    pub name: String,
    /// The hook's contract: its releases' contracts, grown by additive changes.
    pub contract: Contract,
    /// `sha256:` digest of `contract`.
    pub contract_digest: String,
    /// The release that runs by default.
    pub live_version: u32,
    /// The newest release.
    pub latest_version: u32,
    /// How many releases it has (always `latest_version`).
    pub releases: u32,
    /// When its first release was published (RFC 3339).
    pub created_at: String,
    /// When its newest release was published (RFC 3339).
    pub updated_at: String,
}

/// One move of a live pointer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveMove {
    /// Where it pointed before (none for the first release).
    pub from_version: Option<u32>,
    /// Where it points after.
    pub to_version: u32,
    /// `publish` (a new release) or `live` (moved by hand).
    pub cause: String,
    /// RFC 3339.
    pub moved_at: String,
}

/// A run as the registry keeps it: `run.json` plus what a replay needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRun {
    /// The provenance record, exactly as written to `run.json`.
    pub record: RunRecord,
    /// The config it ran with, as canonical JSON.
    pub config: String,
    /// The output directory it wrote, when there was one to keep.
    pub out_dir: Option<String>,
    /// When the registry recorded it (RFC 3339).
    pub recorded_at: String,
}

/// What to publish a component as.
#[derive(Debug, Clone, Default)]
pub struct PublishRequest {
    /// The hook's name: `^[a-z][a-z0-9_]{0,39}$`.
    pub name: String,
    /// The config as JSON text; `{}` when `None`.
    pub config: Option<String>,
    /// The limits the release's runs use. By default the host's defaults.
    pub limits: ReleaseLimits,
    /// Where it was built from.
    pub source_ref: Option<String>,
    /// Who or what built it.
    pub built_by: Option<String>,
}

impl PublishRequest {
    /// A request with no config, default limits and no build information.
    pub fn new(name: impl Into<String>) -> Self {
        PublishRequest {
            name: name.into(),
            ..PublishRequest::default()
        }
    }
}

/// What [`Registry::publish`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Published {
    /// The release: new, or the existing one with the same digest.
    pub release: Release,
    /// Whether a release was created (false: the digest was already released).
    pub created: bool,
    /// How the contract changed; [`Evolution::Identical`] for a hook's first release.
    #[serde(flatten)]
    pub evolution: Evolution,
    /// Where the live pointer was before, when this created a release of an existing hook.
    pub previous_live: Option<u32>,
}

impl Registry {
    /// Opens the registry at `root`, creating the directory, the blob store and the database
    /// as needed, and bringing the schema up to date.
    pub fn open(root: impl AsRef<Path>) -> Result<Registry, Error> {
        let root = root.as_ref().to_owned();
        std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
        let blobs = BlobStore::open(&root)?;
        let db = Db::open(&root.join(DB_FILE))?;
        tracing::debug!(root = %root.display(), "registry open");
        Ok(Registry {
            root,
            blobs,
            db: Mutex::new(db),
        })
    }

    /// Opens the registry at `root`, which must exist already: nothing is created.
    pub fn open_existing(root: impl AsRef<Path>) -> Result<Registry, Error> {
        let root = root.as_ref();
        if !Registry::exists(root) {
            return Err(Error::RegistryNotFound {
                root: root.to_owned(),
            });
        }
        Registry::open(root)
    }

    /// Whether `root` holds a registry.
    pub fn exists(root: impl AsRef<Path>) -> bool {
        root.as_ref().join(DB_FILE).exists()
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The blob store.
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    fn db(&self) -> MutexGuard<'_, Db> {
        // A panic while holding the lock cannot leave SQLite half-written (transactions roll
        // back on drop), so a poisoned lock is still safe to use.
        self.db
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Publishes component `bytes` (named `origin` in messages) as a release of
    /// `request.name`.
    ///
    /// The component is validated before anything is stored. Publishing a digest the hook
    /// already has returns that release (`created: false`) without moving the live pointer;
    /// it is refused if the config or limits differ, since a release never changes. A new
    /// digest becomes the next version and takes the live pointer, if its contract is
    /// identical or additive to the hook's; a destructive change is refused with
    /// [`Error::ContractChanged`], naming every change.
    pub fn publish(
        &self,
        host: &Host,
        bytes: &[u8],
        origin: &str,
        request: PublishRequest,
    ) -> Result<Published, Error> {
        check_hook_name(&request.name)?;
        let component = host.load_bytes(bytes, origin)?;
        let config = canonical_config(request.config.as_deref())?;
        let new = NewRelease {
            hook: request.name,
            origin: origin.to_owned(),
            digest: component.digest().to_owned(),
            size: component.size(),
            contract: component.contract().clone(),
            config,
            limits: request.limits,
            source_ref: request.source_ref,
            built_by: request.built_by,
        };
        // Refuse a destructive contract before storing bytes that no release would use. The
        // check is repeated inside the write transaction, which is what decides.
        if let Some(current) = self.db().hook_contract(&new.hook)?
            && let Evolution::Destructive { changes } =
                crate::evolution::classify(&current, &new.contract)
        {
            return Err(Error::ContractChanged {
                hook: new.hook,
                origin: new.origin,
                changes,
            });
        }
        self.blobs.put(bytes)?;
        let recorded = self.db().record_release(new)?;
        let release = &recorded.release;
        tracing::info!(hook = %release.hook, version = release.version,
            digest = %release.digest, created = recorded.created, "published");
        Ok(Published {
            release: recorded.release,
            created: recorded.created,
            evolution: recorded.evolution,
            previous_live: recorded.previous_live,
        })
    }

    /// Every hook, by name.
    pub fn hooks(&self) -> Result<Vec<HookSummary>, Error> {
        self.db().hooks()
    }

    /// Every release of `hook`, oldest first.
    pub fn releases(&self, hook: &str) -> Result<Vec<Release>, Error> {
        let db = self.db();
        let releases = db.releases(hook)?;
        if releases.is_empty() {
            return Err(self.hook_not_found(hook));
        }
        Ok(releases)
    }

    /// Every move of `hook`'s live pointer, oldest first.
    pub fn live_history(&self, hook: &str) -> Result<Vec<LiveMove>, Error> {
        let moves = self.db().live_moves(hook)?;
        if moves.is_empty() {
            return Err(self.hook_not_found(hook));
        }
        Ok(moves)
    }

    /// Release `version` of `hook`, or its live release when `version` is `None`.
    pub fn release(&self, hook: &str, version: Option<u32>) -> Result<Release, Error> {
        check_hook_name(hook)?;
        let found = self.db().lookup_all(&[(hook, version)])?;
        let found = found
            .into_iter()
            .next()
            .expect("one answer per hook asked for");
        self.found(hook, found)
    }

    /// Resolves `name` or `name@version`.
    pub fn resolve(&self, reference: &str) -> Result<Release, Error> {
        let (name, version) = parse_reference(reference)?;
        self.release(name, version)
    }

    /// Resolves every reference (`name` or `name@version`, as [`Registry::resolve`] does), in
    /// order, as one snapshot: all are read in one read transaction, so a live pointer moved
    /// meanwhile, by this process or another, is seen before or after the move for the whole
    /// set, never half of each.
    ///
    /// Fails on the first reference, in order, that [`Registry::resolve`] would refuse, with
    /// the same error; and with [`Error::DuplicateHook`] when a hook is named twice (`a` and
    /// `a@2` included), checked before anything is read.
    ///
    /// ```no_run
    /// # use hookhost::registry::Registry;
    /// let registry = Registry::open(".hookhost")?;
    /// let set = registry.resolve_all(&["text_stats", "require_fields@2"])?;
    /// assert_eq!(set[1].version, 2);
    /// # Ok::<(), hookhost::Error>(())
    /// ```
    pub fn resolve_all(&self, references: &[&str]) -> Result<Vec<Release>, Error> {
        let mut wanted: Vec<(&str, Option<u32>)> = Vec::with_capacity(references.len());
        for reference in references {
            let (name, version) = parse_reference(reference)?;
            if wanted.iter().any(|(seen, _)| *seen == name) {
                return Err(Error::DuplicateHook {
                    name: name.to_owned(),
                });
            }
            wanted.push((name, version));
        }
        let found = self.db().lookup_all(&wanted)?;
        wanted
            .iter()
            .zip(found)
            .map(|(&(hook, _), found)| self.found(hook, found))
            .collect()
    }

    /// Moves `hook`'s live pointer to `version`; returns where it was, or `None` if it was
    /// already there. Releases and runs are untouched; the move is added to the pointer's
    /// history.
    pub fn set_live(&self, hook: &str, version: u32) -> Result<Option<u32>, Error> {
        check_hook_name(hook)?;
        let moved = self.db().set_live(hook, version)?;
        if let Some(from) = moved {
            tracing::info!(%hook, from, to = version, "live pointer moved");
        }
        Ok(moved)
    }

    /// Reads `release`'s component from the blob store (checking its bytes against its
    /// digest) and loads it.
    pub fn load(&self, host: &Host, release: &Release) -> Result<HookComponent, Error> {
        let origin = format!("{} v{} ({})", release.hook, release.version, release.digest);
        let component = self.load_digest(host, &release.digest, &origin)?;
        if component.contract().digest() != release.contract_digest {
            return Err(Error::InvalidComponent {
                origin,
                reason: "its contract is not the one recorded when it was published".into(),
            });
        }
        Ok(component)
    }

    /// Reads the component with `digest` from the blob store (checking its bytes) and loads
    /// it.
    pub fn load_digest(
        &self,
        host: &Host,
        digest: &str,
        origin: &str,
    ) -> Result<HookComponent, Error> {
        let bytes = self.blobs.get(digest)?;
        host.load_bytes(&bytes, origin)
    }

    /// Loads the component at `path` and keeps its bytes in the blob store, so a run of it
    /// can be traced to, and replayed from, the exact bytes.
    pub fn load_file(&self, host: &Host, path: &Path) -> Result<HookComponent, Error> {
        let bytes = host.read_component(path)?;
        let component = host.load_bytes(&bytes, &path.display().to_string())?;
        self.blobs.put(&bytes)?;
        Ok(component)
    }

    /// The newest runs first, of one hook (by name) or of all, at most `limit`.
    pub fn runs(&self, hook: Option<&str>, limit: usize) -> Result<Vec<StoredRun>, Error> {
        self.db().runs(hook, limit)
    }

    /// The run with id `run_id`, or the one run whose id starts with it (at least 4
    /// characters).
    pub fn run_record(&self, run_id: &str) -> Result<StoredRun, Error> {
        self.db().run(run_id)
    }

    /// Records a batch's runs, and the batch itself when it has an idempotency key, in one
    /// write transaction: afterwards either all of them are recorded or none is.
    ///
    /// When the key was already recorded for the same snapshot, nothing of this batch is
    /// recorded and the earlier batch is returned as [`BatchRecorded::Existing`]. The check
    /// and the writes hold the write lock together, so of batches racing with one key and
    /// snapshot (in any process) exactly one is recorded. An embedder asks
    /// [`Registry::batch_by_key`] before running, to skip the work; this is what decides.
    /// A run id already recorded fails the whole batch.
    pub fn record_batch(&self, batch: NewBatch<'_>) -> Result<BatchRecorded, Error> {
        let recorded = self.db().record_batch(&batch)?;
        match &recorded {
            BatchRecorded::Recorded => tracing::info!(
                batch_id = batch.batch_id,
                runs = batch.runs.len(),
                keyed = batch.idempotency_key.is_some(),
                "batch recorded"
            ),
            BatchRecorded::Existing(existing) => tracing::info!(batch_id = batch.batch_id,
                existing = %existing.batch_id, "batch key already recorded; nothing recorded"),
        }
        Ok(recorded)
    }

    /// The batch recorded with idempotency key `key` for the snapshot `snapshot_digest`, if
    /// any.
    pub fn batch_by_key(
        &self,
        key: &str,
        snapshot_digest: &str,
    ) -> Result<Option<StoredBatch>, Error> {
        self.db().batch_by_key(key, snapshot_digest)
    }

    /// The release a lookup of `hook` found, or the error [`Registry::release`] gives.
    fn found(&self, hook: &str, found: Lookup) -> Result<Release, Error> {
        found.map_err(|missing| match missing {
            Missing::Hook => self.hook_not_found(hook),
            Missing::Release { version, latest } => Error::ReleaseNotFound {
                name: hook.to_owned(),
                version,
                latest,
            },
        })
    }

    fn hook_not_found(&self, hook: &str) -> Error {
        Error::HookNotFound {
            name: hook.to_owned(),
            root: self.root.clone(),
        }
    }
}

impl Recorder for Registry {
    fn record_run(&self, run: RunEntry<'_>) -> Result<(), Error> {
        self.db().record_run(run.record, run.config, run.out_dir)
    }

    fn record_batch(&self, batch: NewBatch<'_>) -> Result<BatchRecorded, Error> {
        Registry::record_batch(self, batch)
    }
}

/// Checks a hook name against `^[a-z][a-z0-9_]{0,39}$`.
pub fn check_hook_name(name: &str) -> Result<(), Error> {
    let invalid = |reason| Error::InvalidHookName {
        name: name.to_owned(),
        reason,
    };
    let mut bytes = name.bytes();
    match bytes.next() {
        None => return Err(invalid("it is empty")),
        Some(b'a'..=b'z') => {}
        Some(_) => return Err(invalid("it must start with a lowercase letter")),
    }
    if name.len() > MAX_HOOK_NAME_BYTES {
        return Err(invalid("it is longer than 40 characters"));
    }
    if !bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_')) {
        return Err(invalid(
            "only lowercase letters, digits and `_` are allowed",
        ));
    }
    Ok(())
}

/// Splits `name@version` (or `name`) and checks both parts.
pub fn parse_reference(reference: &str) -> Result<(&str, Option<u32>), Error> {
    let (name, version) = match reference.split_once('@') {
        Some((name, version)) => {
            let digits = version.strip_prefix('v').unwrap_or(version);
            let parsed = digits
                .parse::<u32>()
                .ok()
                .filter(|v| *v >= 1 && digits.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| Error::InvalidHookName {
                    name: reference.to_owned(),
                    reason: "the version after `@` must be a number from 1 (name@3)",
                })?;
            (name, Some(parsed))
        }
        None => (reference, None),
    };
    check_hook_name(name)?;
    Ok((name, version))
}

#[cfg(test)]
mod tests;
