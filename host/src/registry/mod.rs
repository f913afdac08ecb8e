//! The registry: hooks with a name and a history, on one root directory.
//!
//! A root holds `blobs/sha256/<hex>` (component bytes, see [`Blobs`]) and `registry.db`
//! (SQLite, see [`SqliteStore`]: hooks, immutable numbered releases, live pointers and their
//! history, and the append-only record of runs). [`Registry`] is the whole of it behind one
//! handle, and the one place its rules live:
//!
//! - [`Registry::publish`] validates a component (it loads, implements the hook world, has a
//!   well-formed contract, fits the size cap), classifies its contract against the hook's with
//!   [`evolution::classify`](crate::evolution::classify), stores its bytes, and records release
//!   `v(N+1)` with the live pointer on it — or returns the existing release of the same digest.
//! - [`Registry::release`] resolves `name` or `name@version`; [`Registry::load`] reads the blob
//!   (re-hashed: altered bytes are refused) and loads it; [`Registry::set_live`] moves the
//!   pointer (a rollback is a move back; history never changes), on condition that it is where
//!   the caller saw it if asked ([`LiveRequest::expected_live`]), and says what it did
//!   ([`LiveMoved`]); [`Registry::live_history`] and [`Registry::release_history`] read it all
//!   back.
//! - **Who did it.** Every release records who published it, every live move who moved it and
//!   why, every run who recorded it: an [`Actor`] — the operating-system user and machine over
//!   the storage itself ([`Actor::local`]), the verified token's issuer, subject and id behind
//!   the HTTP service ([`Actor::token`]) — never what a request body says about itself.
//! - As a [`Recorder`], it appends the provenance record of every run handed to it, whatever
//!   its status; [`Registry::runs_page`] (newest first, keyset pages, filtered by hook, status
//!   or worker), [`Registry::runs`] and [`Registry::run_record`] read them back;
//!   [`Registry::import_run`] keeps a `run.json` of one of its releases that ran elsewhere.
//! - For uploads: [`Registry::put_blob`] (or [`Registry::begin_upload`]) stores bytes that
//!   arrive in parts under the digest they claim — hashed while written, capped, refused when
//!   they do not match — and [`Registry::publish_digest`] releases them as
//!   [`Registry::publish`] would.
//! - For embedders running a set of hooks per batch: [`Registry::resolve_all`] resolves the set
//!   in one snapshot; [`Registry::record_batch`] records a batch's runs at once and, under an
//!   idempotency key, the batch itself, which [`Registry::batch_by_key`] finds again.
//!
//! # Rules over a store
//!
//! The records live behind [`Store`], a trait of small transactional operations (see
//! [`store`] for what a backend must guarantee, and how an async one plugs in), and the bytes
//! behind [`BlobStore`], raw puts and gets. Neither decides anything: names, idempotent
//! publishing, contract evolution, gap-free versions, live moves, batch keys and run-id
//! prefixes are decided by [`Registry`], from what the store reads inside the transaction that
//! writes the outcome; the re-hash of every blob read is done once, above every blob backend,
//! by [`Blobs`]. Several processes may use one root at once: a write transaction excludes other
//! writers of what it read (SQLite: `BEGIN IMMEDIATE`), so versions stay gap-free and each
//! digest gets one release. [`Registry::with_store`] takes any other backend.
//!
//! # From async code
//!
//! [`Registry`]'s methods block (on SQLite's locks, on a PostgreSQL server, on guest code when
//! publishing). [`AsyncRegistry`] runs each on tokio's blocking threads ([`blocking`]); a
//! PostgreSQL registry called on an async worker directly answers
//! [`StoreFailure::InsideAsyncRuntime`] rather than stall (or panic inside) the runtime. A
//! store that cannot be reached is [`StoreFailure::Unavailable`] — try again later — and every
//! error has a stable [`Error::code`].
//!
//! # Inside
//!
//! `types` holds what the registry answers with; `rows` the columns and row conversions of
//! both SQL backends, once; `sql` every statement they run, once; `sqlite` and [`postgres`]
//! what differs (connections, locks, migrations); [`store`] the trait between rules and rows;
//! `blobs` the bytes; `actor` who did it; `async_registry` the async face.
//!
//! # A fleet
//!
//! [`Registry::connect`] (or [`Registry::open_at`] with a [`RegistryLocation`]) opens a
//! PostgreSQL registry shared by many machines ([`PostgresStore`], see [`postgres`] for what
//! each promise rests on there): records and component bytes in the database, each machine's
//! blob cache under its root ([`CachedBlobStore`]), and batch claims with leases
//! ([`Registry::claim_batch`]) so that each keyed batch runs once across the fleet.
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

mod actor;
mod async_registry;
mod blobs;
pub mod postgres;
mod rows;
mod sql;
mod sqlite;
pub mod store;
pub mod tables;
mod types;

use std::io::Read;
use std::path::{Path, PathBuf};

pub use self::actor::{Actor, MAX_REASON_BYTES};
pub use self::async_registry::{AsyncRegistry, blocking};
pub use self::blobs::{BLOBS_DIR, BlobStore, BlobUpload, Blobs, DirBlobStore, UPLOADS_DIR};
pub use self::postgres::{CachedBlobStore, PgBlobStore, PostgresStore};
pub use self::sqlite::{BUSY_TIMEOUT, DEFAULT_SQLITE_READERS, SCHEMA_VERSION, SqliteStore};
pub use self::store::{BatchClaim, Claimed};
use self::store::{ReadTx, Store, StoredHook, WriteTx};
pub use self::tables::{DEFAULT_FEATURE_SCHEMA, PgFeatureTables};
pub use self::types::{
    BlobPut, HookSummary, ImportedRun, LiveCause, LiveHistory, LiveMove, LiveMoved, LiveRequest,
    PublishRequest, Published, Release, ReleaseHistory, ReleaseLimits, ReleaseView, RunFilter,
    RunPage, StoredRun,
};
use crate::component::{HookComponent, Host};
use crate::config::canonical_config;
use crate::contract::Contract;
use crate::digest::{hex, sha256_digest};
use crate::error::{Error, StoreFailure};
use crate::evolution::{Evolution, classify};
use crate::provenance::RunRecord;
pub use crate::provenance::{BatchRecorded, NewBatch, Recorder, RunEntry, StoredBatch};

/// The registry root used when none is given: `.hookhost` in the working directory.
pub const DEFAULT_ROOT: &str = ".hookhost";
/// The database file under the root.
pub const DB_FILE: &str = "registry.db";
/// The longest hook name, in bytes.
pub const MAX_HOOK_NAME_BYTES: usize = 40;

/// The shortest run-id prefix [`Registry::run_record`] accepts.
pub const MIN_RUN_ID_PREFIX: usize = 4;

/// The most runs one page of [`Registry::runs_page`] holds; a larger limit is lowered to it.
pub const MAX_RUNS_PAGE: usize = 500;

/// The runs a page holds when the caller names no limit (the HTTP API's default).
pub const DEFAULT_RUNS_PAGE: usize = 50;

/// A registry: its rules over a [`Store`] of records and checked [`Blobs`].
/// `Send + Sync`; share it behind an `Arc`.
#[derive(Debug)]
pub struct Registry {
    root: PathBuf,
    store: Box<dyn Store>,
    blobs: Blobs,
}

/// A release about to be recorded: everything but its version and time.
#[derive(Debug, Clone)]
pub(crate) struct NewRelease {
    pub hook: String,
    pub origin: String,
    pub digest: String,
    pub size: u64,
    pub contract: Contract,
    pub config: String,
    pub limits: ReleaseLimits,
    pub source_ref: Option<String>,
    pub built_by: Option<String>,
    pub make_live: bool,
    pub published_by: Actor,
}

/// Where a registry's records and component bytes are kept; the root directory holds the
/// machine's own files either way (compiled code, and with PostgreSQL the blob cache).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RegistryLocation {
    /// `registry.db` and `blobs/` under the root: one machine. The default.
    #[default]
    Local,
    /// A PostgreSQL database shared by a fleet, by its libpq-style URL
    /// (`postgres://user@host:5432/db`, or `postgres://user@/db?host=/run/postgresql` for a
    /// unix socket).
    Postgres(String),
}

impl RegistryLocation {
    /// What `--registry` or `HOOKHOST_REGISTRY` said: `None` or empty is [`Local`], a
    /// `postgres://` or `postgresql://` URL is [`Postgres`]; anything else is refused, naming
    /// what was given without its password.
    ///
    /// [`Local`]: RegistryLocation::Local
    /// [`Postgres`]: RegistryLocation::Postgres
    ///
    /// ```
    /// use hookhost::registry::RegistryLocation;
    /// assert_eq!(RegistryLocation::parse(None)?, RegistryLocation::Local);
    /// assert!(matches!(RegistryLocation::parse(Some("postgres://w@db/hooks"))?,
    ///     RegistryLocation::Postgres(_)));
    /// assert!(RegistryLocation::parse(Some("mysql://db")).is_err());
    /// # Ok::<(), hookhost::Error>(())
    /// ```
    pub fn parse(url: Option<&str>) -> Result<RegistryLocation, Error> {
        match url.map(str::trim) {
            None | Some("") => Ok(RegistryLocation::Local),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(RegistryLocation::Postgres(url.to_owned()))
            }
            Some(other) => Err(Error::Store {
                registry: other.split('@').next_back().unwrap_or("").to_owned(),
                operation: "choosing the registry".into(),
                kind: StoreFailure::Failed,
                source: "a registry URL starts with postgres:// (or leave it out for the local \
                         root)"
                    .into(),
            }),
        }
    }

    /// Whether the records live under the root.
    pub fn is_local(&self) -> bool {
        matches!(self, RegistryLocation::Local)
    }

    /// Where a command keeps compiled code for a registry here with root `root`: the root's
    /// [`CODE_CACHE_DIR`](crate::cache::CODE_CACHE_DIR) when a local registry is there (a
    /// command never creates a root just to cache code), and always with a shared registry,
    /// whose machines each keep their own. `None`: compile without a cache.
    pub fn code_cache(&self, root: &Path) -> Option<PathBuf> {
        let cache = root.join(crate::cache::CODE_CACHE_DIR);
        match self {
            RegistryLocation::Local => Registry::exists(root).then_some(cache),
            RegistryLocation::Postgres(_) => Some(cache),
        }
    }
}

/// Where a PostgreSQL registry's machine-local blob cache lives under the root. Apart from
/// [`BLOBS_DIR`], so a root that served a local registry never passes its blobs off as the
/// fleet's.
pub const BLOB_CACHE_DIR: &str = "cache/blobs/sha256";

impl Registry {
    /// Opens the registry at `location`, keeping this machine's files under `root`: for
    /// [`RegistryLocation::Local`], [`Registry::open`]; for PostgreSQL,
    /// [`Registry::connect`].
    pub fn open_at(location: &RegistryLocation, root: impl AsRef<Path>) -> Result<Registry, Error> {
        match location {
            RegistryLocation::Local => Registry::open(root),
            RegistryLocation::Postgres(url) => Registry::connect(url, root),
        }
    }

    /// [`Registry::open_at`] for commands that only read or move what is there: a local root
    /// must exist ([`Registry::open_existing`]); a PostgreSQL database is the registry, and is
    /// connected to (its schema brought up to date) like any other.
    pub fn open_existing_at(
        location: &RegistryLocation,
        root: impl AsRef<Path>,
    ) -> Result<Registry, Error> {
        match location {
            RegistryLocation::Local => Registry::open_existing(root),
            RegistryLocation::Postgres(url) => Registry::connect(url, root),
        }
    }

    /// Connects to the PostgreSQL registry at `url` (see [`RegistryLocation::Postgres`]): its
    /// records and component bytes are in the database ([`PostgresStore`], [`PgBlobStore`]),
    /// and the bytes are cached under `root`'s [`BLOB_CACHE_DIR`] ([`CachedBlobStore`]). A
    /// server that cannot be reached, or refuses the login, is [`Error::Store`] naming it.
    ///
    /// ```no_run
    /// use hookhost::registry::Registry;
    /// let registry = Registry::connect("postgres://worker@db.internal/hookhost", ".hookhost")?;
    /// println!("{} hooks", registry.hooks()?.len());
    /// # Ok::<(), hookhost::Error>(())
    /// ```
    pub fn connect(url: &str, root: impl AsRef<Path>) -> Result<Registry, Error> {
        let root = root.as_ref().to_owned();
        let pool =
            std::sync::Arc::new(postgres::PgPool::connect(url, postgres::DEFAULT_POOL_SIZE)?);
        let store = PostgresStore::over(pool.clone())?;
        // `DirBlobStore` keeps `blobs/sha256` under the directory it is given.
        let cache = DirBlobStore::open(&root.join("cache"))?;
        let blobs = Blobs::new(Box::new(CachedBlobStore::new(
            Box::new(PgBlobStore::new(pool)),
            cache,
        )));
        tracing::debug!(registry = %store.describe(), root = %root.display(), "registry open");
        Ok(Registry::with_store(root, Box::new(store), blobs))
    }

    /// Whether this registry claims batch keys fleet-wide ([`Registry::claim_batch`]): a
    /// PostgreSQL registry does; a local one relies on [`Registry::record_batch`] alone.
    pub fn claims_batches(&self) -> bool {
        self.store.claims().is_some()
    }

    /// Claims idempotency key `key` for `snapshot_digest` as `worker` under `lease`, before
    /// any guest code of the batch runs; or returns the batch that already succeeded with it.
    /// While another live worker holds the key this waits (on the database, without polling)
    /// until it releases the key or its lease runs out. `None` when the registry has no
    /// fleet-wide claims ([`Registry::claims_batches`]).
    pub fn claim_batch(
        &self,
        key: &str,
        snapshot_digest: &str,
        worker: &str,
        lease: std::time::Duration,
    ) -> Result<Option<Claimed>, Error> {
        match self.store.claims() {
            Some(claims) => claims.claim(key, snapshot_digest, worker, lease).map(Some),
            None => Ok(None),
        }
    }

    /// Extends `claim`'s lease; `false` when the claim was lost (it expired and another
    /// worker took the key).
    pub fn renew_claim(
        &self,
        claim: &BatchClaim,
        lease: std::time::Duration,
    ) -> Result<bool, Error> {
        match self.store.claims() {
            Some(claims) => claims.renew(claim, lease),
            None => Ok(false),
        }
    }

    /// Gives `claim` up: a succeeded batch holds its key by its record, a failed one lets
    /// the next worker run it.
    pub fn release_claim(&self, claim: &BatchClaim) -> Result<(), Error> {
        match self.store.claims() {
            Some(claims) => claims.release(claim),
            None => Ok(()),
        }
    }

    /// Feature tables in schema `schema` (by default [`DEFAULT_FEATURE_SCHEMA`]) of this
    /// registry's own database, for [`Features::Tables`](crate::sink::Features::Tables): one
    /// table per hook, each row's `run_id` a foreign key to its run, rows and runs committed
    /// together (see [`tables`]). Refused ([`Error::FeatureTables`]) for a registry that is
    /// not PostgreSQL, and for a schema name PostgreSQL would not keep whole.
    ///
    /// ```no_run
    /// use hookhost::registry::{DEFAULT_FEATURE_SCHEMA, Registry};
    /// use hookhost::sink::Features;
    ///
    /// let registry = Registry::connect("postgres://worker@db.internal/hookhost", ".hookhost")?;
    /// let features = Features::Tables(registry.feature_tables(DEFAULT_FEATURE_SCHEMA)?);
    /// # Ok::<(), hookhost::Error>(())
    /// ```
    pub fn feature_tables(
        &self,
        schema: &str,
    ) -> Result<std::sync::Arc<dyn crate::sink::FeatureTables>, Error> {
        self.store.feature_tables(schema, None)
    }

    /// [`Registry::feature_tables`] in the database `url` names, which must be this registry's
    /// own: it is connected to and asked who it is (its database name and the registry id its
    /// migration drew), and anything else is refused naming both.
    pub fn feature_tables_at(
        &self,
        url: &str,
        schema: &str,
    ) -> Result<std::sync::Arc<dyn crate::sink::FeatureTables>, Error> {
        self.store.feature_tables(schema, Some(url))
    }

    /// The store's description: the database file, or `postgres://user@host/db`.
    pub fn describe(&self) -> &str {
        self.store.describe()
    }

    /// Opens the registry at `root`, creating the directory, the blob store and the database
    /// as needed, and bringing the schema up to date.
    pub fn open(root: impl AsRef<Path>) -> Result<Registry, Error> {
        let root = root.as_ref().to_owned();
        std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
        let blobs = Blobs::open_dir(&root)?;
        let store = SqliteStore::open(&root.join(DB_FILE))?;
        tracing::debug!(root = %root.display(), "registry open");
        Ok(Registry::with_store(root, Box::new(store), blobs))
    }

    /// Opens the registry at `root`, which must already exist ([`Registry::exists`]); for
    /// commands that only read or move what is there. A missing root is
    /// [`Error::RegistryNotFound`], and nothing is created for it.
    pub fn open_existing(root: impl AsRef<Path>) -> Result<Registry, Error> {
        let root = root.as_ref();
        if !Registry::exists(root) {
            return Err(Error::RegistryNotFound {
                root: root.to_owned(),
            });
        }
        Registry::open(root)
    }

    /// Whether a registry has been created at `root` (its database is there).
    pub fn exists(root: impl AsRef<Path>) -> bool {
        root.as_ref().join(DB_FILE).is_file()
    }

    /// A registry over any store of records and blobs. `root` is the directory the host keeps
    /// its local files under (the compiled-code cache); the records and bytes are wherever
    /// `store` and `blobs` keep them. The rules are the same whatever the backends.
    ///
    /// ```no_run
    /// use hookhost::registry::{Blobs, DB_FILE, Registry, SqliteStore};
    ///
    /// // What `Registry::open(root)` does.
    /// let root = std::path::Path::new(".hookhost");
    /// let store = SqliteStore::open(&root.join(DB_FILE))?;
    /// let registry = Registry::with_store(root, Box::new(store), Blobs::open_dir(root)?);
    /// # Ok::<(), hookhost::Error>(())
    /// ```
    pub fn with_store(root: impl Into<PathBuf>, store: Box<dyn Store>, blobs: Blobs) -> Registry {
        Registry {
            root: root.into(),
            store,
            blobs,
        }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The blob store, checked.
    pub fn blobs(&self) -> &Blobs {
        &self.blobs
    }

    /// Publishes component `bytes` (named `origin` in messages) as a release of
    /// `request.name`, by `request.actor`.
    ///
    /// The component is validated before anything is stored: it loads (under the host's
    /// size cap), implements the hook world, and its `contract` export — guest code, run under
    /// the host's sandbox limits — gives a well-formed contract. Publishing a digest the hook
    /// already has returns that release (`created: false`) without moving the live pointer;
    /// it is refused if the config or limits differ, since a release never changes. A new
    /// digest becomes the next version, and takes the live pointer unless
    /// `request.make_live` is false (a hook's first release is always live), if its contract
    /// is identical or additive to the hook's; a destructive change is refused with
    /// [`Error::ContractChanged`], naming every change.
    pub fn publish(
        &self,
        host: &Host,
        bytes: &[u8],
        origin: &str,
        request: PublishRequest,
    ) -> Result<Published, Error> {
        self.publish_bytes(host, bytes, origin, request, true)
    }

    /// Publishes the component already in the blob store under `digest` (uploaded with
    /// [`Registry::put_blob`]), exactly as [`Registry::publish`] would publish its bytes: they
    /// are read back and hashed again, then validated, classified and released. A digest the
    /// store does not have is [`Error::BlobNotFound`]; one that is not a sha256 digest,
    /// [`Error::InvalidDigest`].
    pub fn publish_digest(
        &self,
        host: &Host,
        digest: &str,
        request: PublishRequest,
    ) -> Result<Published, Error> {
        check_hook_name(&request.name)?;
        let bytes = self.blobs.get(digest)?;
        self.publish_bytes(host, &bytes, digest, request, false)
    }

    fn publish_bytes(
        &self,
        host: &Host,
        bytes: &[u8],
        origin: &str,
        request: PublishRequest,
        store_bytes: bool,
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
            make_live: request.make_live,
            published_by: request.actor,
        };
        // Refuse a destructive contract before storing bytes that no release would use. The
        // check is repeated inside the write transaction, which is what decides.
        if let Some(hook) = self.store.read()?.hook(&new.hook)? {
            check_evolution(&hook, &new)?;
        }
        if store_bytes {
            self.blobs.put(bytes)?;
        }
        let published = self.record_release(new)?;
        let release = &published.release;
        tracing::info!(hook = %release.hook, version = release.version,
            digest = %release.digest, created = published.created, live = release.live,
            by = %release.published_by.as_ref().map(Actor::audit).unwrap_or_default(),
            "published");
        Ok(published)
    }

    /// Records `new` as the next release of its hook, or returns the existing release of its
    /// digest: every rule of [`Registry::publish`] but validating and storing the bytes.
    ///
    /// All of it is decided from what the write transaction reads, so writers racing in other
    /// processes cannot both take one version or both release one digest.
    pub(crate) fn record_release(&self, new: NewRelease) -> Result<Published, Error> {
        let mut tx = self.store.write()?;
        tx.lock_hook(&new.hook)?;
        let hook = tx.hook(&new.hook)?;
        if let Some(existing) = tx.release_by_digest(&new.hook, &new.digest)? {
            // Nothing is written: the transaction is dropped, so rolled back.
            let live = hook.as_ref().map_or(0, |h| h.live_version);
            return Ok(Published {
                release: ReleaseView::new(existing_release(existing, &new)?, live),
                created: false,
                evolution: Evolution::Identical,
                previous_live: None,
            });
        }
        let (evolution, previous_live, version) = match &hook {
            Some(hook) => (
                check_evolution(hook, &new)?,
                Some(hook.live_version),
                // Gap-free: versions are 1..=latest, so the next is latest + 1.
                hook.latest_version + 1,
            ),
            None => (Evolution::Identical, None, 1),
        };
        // A hook has a live release from its first one on.
        let takes_live = new.make_live || previous_live.is_none();
        let live_version = match (takes_live, previous_live) {
            (false, Some(live)) => live,
            _ => version,
        };
        let now = rows::now();
        let release = Release {
            hook: new.hook,
            version,
            digest: new.digest,
            size: new.size,
            contract_digest: new.contract.digest(),
            contract: new.contract,
            config_digest: sha256_digest(new.config.as_bytes()),
            config: new.config,
            limits: new.limits,
            source_ref: new.source_ref,
            built_by: new.built_by,
            created_at: now,
            published_by: Some(new.published_by),
        };
        // Identical and additive contracts both become the hook's: an additive one is a
        // superset, and an identical one may carry newer descriptions or column order. The
        // hook row comes first: a release refers to its hook.
        match hook {
            None => tx.insert_hook(&release.hook, &release.contract, live_version, now)?,
            Some(_) => tx.update_hook(&release.hook, &release.contract, live_version)?,
        }
        tx.insert_release(&release)?;
        if takes_live {
            tx.insert_live_move(
                &release.hook,
                &LiveMove {
                    from_version: previous_live,
                    to_version: version,
                    cause: LiveCause::Publish,
                    moved_at: now,
                    moved_by: release.published_by.clone(),
                    reason: None,
                },
            )?;
        }
        tx.commit()?;
        Ok(Published {
            release: ReleaseView::new(release, live_version),
            created: true,
            evolution,
            previous_live,
        })
    }

    /// Every hook, by name.
    pub fn hooks(&self) -> Result<Vec<HookSummary>, Error> {
        self.store.read()?.hooks(None)
    }

    /// The hook named `name`: its contract, live and latest versions and times; or
    /// [`Error::HookNotFound`].
    pub fn hook(&self, name: &str) -> Result<HookSummary, Error> {
        check_hook_name(name)?;
        let mut found = self.store.read()?.hooks(Some(name))?;
        found.pop().ok_or_else(|| self.hook_not_found(name))
    }

    /// Every release of `hook`, oldest first, each with whether it is live (one snapshot).
    pub fn releases(&self, hook: &str) -> Result<Vec<ReleaseView>, Error> {
        Ok(self.release_history(hook)?.releases)
    }

    /// Every release of `hook` and every move of its live pointer, oldest first, read in one
    /// snapshot: what `host releases` shows.
    pub fn release_history(&self, hook: &str) -> Result<ReleaseHistory, Error> {
        check_hook_name(hook)?;
        let mut tx = self.store.read()?;
        let stored = self.existing_hook(&mut *tx, hook)?;
        let releases = tx.releases(hook)?;
        Ok(ReleaseHistory {
            releases: releases
                .into_iter()
                .map(|release| ReleaseView::new(release, stored.live_version))
                .collect(),
            live_history: tx.live_moves(hook)?,
        })
    }

    /// Where `hook`'s live pointer is and every move it made (publishes included), oldest
    /// first, with who moved it, why and when; read in one snapshot.
    pub fn live_history(&self, hook: &str) -> Result<LiveHistory, Error> {
        check_hook_name(hook)?;
        let mut tx = self.store.read()?;
        let stored = self.existing_hook(&mut *tx, hook)?;
        Ok(LiveHistory {
            hook: hook.to_owned(),
            live_version: stored.live_version,
            moves: tx.live_moves(hook)?,
        })
    }

    /// Release `version` of `hook`, or its live release when `version` is `None`.
    pub fn release(&self, hook: &str, version: Option<u32>) -> Result<ReleaseView, Error> {
        check_hook_name(hook)?;
        self.lookup(&mut *self.store.read()?, hook, version)
    }

    /// Resolves `name` or `name@version`.
    pub fn resolve(&self, reference: &str) -> Result<ReleaseView, Error> {
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
    pub fn resolve_all(&self, references: &[&str]) -> Result<Vec<ReleaseView>, Error> {
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
        let mut tx = self.store.read()?;
        wanted
            .iter()
            .map(|&(hook, version)| self.lookup(&mut *tx, hook, version))
            .collect()
    }

    /// Moves `hook`'s live pointer to `version`, by `request.actor`, with its reason; returns
    /// where it was and the release it is on, read in the transaction that moved it.
    /// Releases and runs are untouched; the move is appended to the pointer's history. A
    /// pointer already on `version` does not move, and nothing is recorded (`moved: false`).
    ///
    /// With [`LiveRequest::expected_live`], the move is a compare-and-set: a pointer that is
    /// not on that version (someone moved it meanwhile) is [`Error::LiveConflict`], and
    /// nothing moves. A version the hook does not have is [`Error::ReleaseNotFound`]; a reason
    /// over [`MAX_REASON_BYTES`], [`Error::ReasonTooLong`].
    ///
    /// ```no_run
    /// use hookhost::registry::{LiveRequest, Registry};
    /// let registry = Registry::open(".hookhost")?;
    /// // Roll back from v3 to v2, unless someone already moved it.
    /// let moved = registry.set_live("text_stats", 2,
    ///     LiveRequest::local().expecting(3).because("v3 rejects every record"))?;
    /// assert_eq!((moved.from, moved.to, moved.moved), (3, 2, true));
    /// # Ok::<(), hookhost::Error>(())
    /// ```
    pub fn set_live(
        &self,
        hook: &str,
        version: u32,
        request: LiveRequest,
    ) -> Result<LiveMoved, Error> {
        check_hook_name(hook)?;
        let reason = actor::check_reason(request.reason.as_deref())?;
        let by = request.actor.audit();
        let mut tx = self.store.write()?;
        let moved = self.move_live(
            &mut *tx,
            hook,
            version,
            request.expected_live,
            Move {
                actor: request.actor,
                reason,
                at: rows::now(),
            },
        )?;
        if moved.moved {
            tx.commit()?;
            tracing::info!(%hook, from = moved.from, to = moved.to, %by, "live pointer moved");
        }
        Ok(moved)
    }

    /// [`Registry::set_live`] for several hooks in one write transaction: readers see all of
    /// the moves or none.
    #[cfg(test)]
    pub(crate) fn set_live_together(&self, moves: &[(&str, u32)]) -> Result<(), Error> {
        let mut tx = self.store.write()?;
        let at = rows::now();
        for &(hook, version) in moves {
            let by = Move {
                actor: Actor::local(),
                reason: None,
                at,
            };
            self.move_live(&mut *tx, hook, version, None, by)?;
        }
        tx.commit()
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

    /// Stores the bytes `reader` gives under `digest`, as they arrive: written to a temporary
    /// file under the root's [`UPLOADS_DIR`], hashed while written, at most `max_bytes` of
    /// them, then (when they hash to `digest`) handed to the blob store. More bytes than
    /// `max_bytes` is [`Error::TooLarge`]; bytes that hash to another digest,
    /// [`Error::DigestMismatch`]; a read that fails, [`Error::UploadFailed`]. On every error
    /// the temporary file is removed and nothing is stored. Bytes the store already has are
    /// not stored again (`created: false`), unless its copy no longer matches its name.
    ///
    /// ```no_run
    /// use hookhost::registry::Registry;
    /// let registry = Registry::open(".hookhost")?;
    /// let file = std::fs::File::open("text_stats.wasm").expect("readable");
    /// let digest = "sha256:39d6…";
    /// let put = registry.put_blob(digest, file, 64 << 20)?;
    /// println!("{} {}", put.digest, if put.created { "stored" } else { "already there" });
    /// # Ok::<(), hookhost::Error>(())
    /// ```
    pub fn put_blob(
        &self,
        digest: &str,
        mut reader: impl Read,
        max_bytes: u64,
    ) -> Result<BlobPut, Error> {
        let mut upload = self.begin_upload(digest, max_bytes)?;
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let read = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(upload.failed(e.to_string())),
            };
            upload.write(&buffer[..read])?;
        }
        upload.finish()
    }

    /// An upload of the bytes of `digest` in parts ([`BlobUpload::write`], then
    /// [`BlobUpload::finish`]), as [`Registry::put_blob`] makes: for bytes that arrive in
    /// pieces from elsewhere (an HTTP body). Dropped unfinished, it leaves nothing.
    pub fn begin_upload(&self, digest: &str, max_bytes: u64) -> Result<BlobUpload<'_>, Error> {
        BlobUpload::begin(&self.blobs, &self.root.join(UPLOADS_DIR), digest, max_bytes)
    }

    /// One page of recorded runs, newest first: those `filter` keeps, at most `limit` (lowered
    /// to [`MAX_RUNS_PAGE`], raised to 1), after `cursor` (the `next_cursor` of the page
    /// before; `None` for the first page). Pages are keyed on the order runs were recorded
    /// in, so paging while runs are being recorded neither skips nor repeats a run: runs
    /// recorded after the first page was read come before it, and show on a new first page.
    /// A cursor this did not give is [`Error::InvalidCursor`].
    ///
    /// ```no_run
    /// use hookhost::registry::{Registry, RunFilter};
    /// use hookhost::provenance::RunStatus;
    /// let registry = Registry::open(".hookhost")?;
    /// let filter = RunFilter { hook: Some("text_stats".into()), status: Some(RunStatus::Failed),
    ///     ..RunFilter::default() };
    /// let mut cursor = None;
    /// loop {
    ///     let page = registry.runs_page(&filter, 100, cursor.as_deref())?;
    ///     for run in &page.runs {
    ///         println!("{} {}", run.record.run_id, run.recorded_at);
    ///     }
    ///     let Some(next) = page.next_cursor else { break };
    ///     cursor = Some(next);
    /// }
    /// # Ok::<(), hookhost::Error>(())
    /// ```
    pub fn runs_page(
        &self,
        filter: &RunFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<RunPage, Error> {
        if let Some(hook) = &filter.hook {
            check_hook_name(hook)?;
        }
        let before = cursor.map(decode_cursor).transpose()?;
        let limit = limit.clamp(1, MAX_RUNS_PAGE);
        // One more than asked: whether there is a next page.
        let mut found = self.store.read()?.runs_page(filter, before, limit + 1)?;
        let next_cursor = match found.len() > limit {
            true => {
                found.truncate(limit);
                found.last().map(|(seq, _)| encode_cursor(*seq))
            }
            false => None,
        };
        Ok(RunPage {
            runs: found.into_iter().map(|(_, run)| run).collect(),
            next_cursor,
        })
    }

    /// The newest runs first, of one hook (by name) or of all, at most `limit`: pages of
    /// [`Registry::runs_page`], read in one snapshot.
    pub fn runs(&self, hook: Option<&str>, limit: usize) -> Result<Vec<StoredRun>, Error> {
        if let Some(hook) = hook {
            check_hook_name(hook)?;
        }
        let filter = RunFilter {
            hook: hook.map(str::to_owned),
            ..RunFilter::default()
        };
        let mut tx = self.store.read()?;
        let mut runs = Vec::new();
        let mut before = None;
        while runs.len() < limit {
            let page = tx.runs_page(&filter, before, (limit - runs.len()).min(MAX_RUNS_PAGE))?;
            let Some((last, _)) = page.last() else { break };
            before = Some(*last);
            let full = page.len() == MAX_RUNS_PAGE;
            runs.extend(page.into_iter().map(|(_, run)| run));
            if !full {
                break;
            }
        }
        Ok(runs)
    }

    /// The run with id `run_id`, or the one run whose id starts with it (at least
    /// [`MIN_RUN_ID_PREFIX`] characters). An exact id wins over longer ids it is a prefix of;
    /// a prefix that matches no run, or several, is [`Error::RunNotFound`] with how many it
    /// matched.
    pub fn run_record(&self, run_id: &str) -> Result<StoredRun, Error> {
        let not_found = |matches| Error::RunNotFound {
            run_id: run_id.to_owned(),
            matches,
        };
        // One snapshot: a run recorded meanwhile cannot make the answer disagree with itself.
        let mut tx = self.store.read()?;
        if let Some(run) = tx.run(run_id)? {
            return Ok(run);
        }
        if run_id.chars().count() < MIN_RUN_ID_PREFIX {
            return Err(not_found(0));
        }
        let mut found = tx.runs_by_prefix(run_id, 2)?;
        match found.len() {
            0 => Err(not_found(0)),
            1 => Ok(found.remove(0)),
            _ => {
                let matches = tx.count_runs_by_prefix(run_id)?;
                Err(not_found(usize::try_from(matches).unwrap_or(usize::MAX)))
            }
        }
    }

    /// Records a run that ran elsewhere (a `run.json` sent to the registry), by `actor`.
    ///
    /// It must be a run of a release of this registry: `hook.name`, `hook.version` and
    /// `hook.digest` name a release, and its `contract_digest` is that release's; its config
    /// (canonical JSON, `{}` when `None`) hashes to its `config_digest`; its counts add up
    /// (`passed + rejected + errored == total`); its id is a UUID and its times are RFC 3339.
    /// Anything else is [`Error::InvalidRun`], saying what. A run already recorded with the
    /// same record and config is returned as it is (`created: false`); with other content it
    /// is [`Error::RunConflict`], since a recorded run never changes.
    pub fn import_run(
        &self,
        record: &RunRecord,
        config: Option<&str>,
        actor: &Actor,
    ) -> Result<ImportedRun, Error> {
        let invalid = |reason: String| Error::InvalidRun {
            run_id: record.run_id.clone(),
            reason,
        };
        let (name, version) = check_importable(record).map_err(invalid)?;
        let config = canonical_config(config)
            .map_err(|e| invalid(format!("its config is not JSON: {e}")))?;
        let config_digest = sha256_digest(config.as_bytes());
        if config_digest != record.config_digest {
            return Err(invalid(format!(
                "its config hashes to {config_digest}, not to the record's config_digest {}",
                record.config_digest
            )));
        }
        let mut tx = self.store.write()?;
        // Imports of one hook's runs take turns: one of two racing with one id records it.
        tx.lock_hook(name)?;
        let release = tx.release(name, version)?.ok_or_else(|| {
            invalid(format!(
                "hook `{name}` has no release v{version} in the registry at {}",
                self.describe()
            ))
        })?;
        if release.digest != record.hook.digest {
            return Err(invalid(format!(
                "it ran {}, but `{name}` v{version} is {}",
                record.hook.digest, release.digest
            )));
        }
        if release.contract_digest != record.contract_digest {
            return Err(invalid(format!(
                "its contract_digest {} is not `{name}` v{version}'s {}",
                record.contract_digest, release.contract_digest
            )));
        }
        if let Some(existing) = tx.run(&record.run_id)? {
            if existing.record == *record && existing.config == config {
                return Ok(ImportedRun {
                    run: existing,
                    created: false,
                });
            }
            return Err(Error::RunConflict {
                run_id: record.run_id.clone(),
            });
        }
        let run = StoredRun {
            record: record.clone(),
            config,
            out_dir: None,
            recorded_at: rows::now(),
            recorded_by: Some(actor.clone()),
        };
        let entry = RunEntry {
            record: &run.record,
            config: &run.config,
            out_dir: None,
        };
        tx.insert_run(&entry, run.recorded_at, run.recorded_by.as_ref())?;
        tx.commit()?;
        tracing::info!(run_id = %record.run_id, hook = %name, version, by = %actor.audit(),
            "run imported");
        Ok(ImportedRun { run, created: true })
    }

    /// Checks that the store answers: what a service's health check asks. A store that
    /// cannot be reached is [`Error::Store`] with [`StoreFailure::Unavailable`].
    pub fn check_store(&self) -> Result<(), Error> {
        self.store.check()
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
        let mut tx = self.store.write()?;
        let recorded = record_batch_in(&mut *tx, &batch)?;
        // An existing batch: nothing was written, and the transaction is dropped (rolled back).
        if recorded == BatchRecorded::Recorded {
            tx.commit()?;
            log_batch_recorded(&batch);
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
        self.store.read()?.batch_by_key(key, snapshot_digest)
    }

    /// Release `version` of `hook`, or its live release, as `tx` sees them; or the error
    /// [`Registry::release`] gives.
    fn lookup(
        &self,
        tx: &mut dyn ReadTx,
        hook: &str,
        version: Option<u32>,
    ) -> Result<ReleaseView, Error> {
        let stored = self.existing_hook(tx, hook)?;
        let version = version.unwrap_or(stored.live_version);
        match tx.release(hook, version)? {
            Some(release) => Ok(ReleaseView::new(release, stored.live_version)),
            None => Err(Error::ReleaseNotFound {
                name: hook.to_owned(),
                version,
                latest: stored.latest_version,
            }),
        }
    }

    /// Moves `hook`'s live pointer inside `tx` and records the move; says where it was and
    /// the release it is on now. A pointer already on `version` is left, and nothing written.
    fn move_live(
        &self,
        tx: &mut dyn WriteTx,
        hook: &str,
        version: u32,
        expected_live: Option<u32>,
        by: Move,
    ) -> Result<LiveMoved, Error> {
        tx.lock_hook(hook)?;
        let stored = self.existing_hook(tx, hook)?;
        let not_found = || Error::ReleaseNotFound {
            name: hook.to_owned(),
            version,
            latest: stored.latest_version,
        };
        // Versions are gap-free, so 1..=latest are exactly the releases there are.
        if version == 0 || version > stored.latest_version {
            return Err(not_found());
        }
        if let Some(expected) = expected_live
            && expected != stored.live_version
        {
            return Err(Error::LiveConflict {
                hook: hook.to_owned(),
                expected,
                actual: stored.live_version,
            });
        }
        let release = tx.release(hook, version)?.ok_or_else(not_found)?;
        let from = stored.live_version;
        if from != version {
            tx.update_hook(hook, &stored.contract, version)?;
            tx.insert_live_move(
                hook,
                &LiveMove {
                    from_version: Some(from),
                    to_version: version,
                    cause: LiveCause::Live,
                    moved_at: by.at,
                    moved_by: Some(by.actor),
                    reason: by.reason,
                },
            )?;
        }
        Ok(LiveMoved {
            hook: hook.to_owned(),
            from,
            to: version,
            moved: from != version,
            release: ReleaseView::new(release, version),
        })
    }

    /// The hook named `hook` as `tx` sees it, or [`Error::HookNotFound`].
    fn existing_hook(&self, tx: &mut dyn ReadTx, hook: &str) -> Result<StoredHook, Error> {
        tx.hook(hook)?.ok_or_else(|| self.hook_not_found(hook))
    }

    fn hook_not_found(&self, hook: &str) -> Error {
        Error::HookNotFound {
            name: hook.to_owned(),
            registry: self.store.describe().to_owned(),
        }
    }
}

/// Who moves a live pointer, why and when.
struct Move {
    actor: Actor,
    reason: Option<String>,
    at: time::OffsetDateTime,
}

/// A page cursor: the recording number of the page's last run, as 16 hex digits.
fn encode_cursor(seq: i64) -> String {
    hex(&seq.to_be_bytes())
}

/// The recording number a cursor holds, or [`Error::InvalidCursor`].
fn decode_cursor(cursor: &str) -> Result<i64, Error> {
    let invalid = || Error::InvalidCursor {
        cursor: cursor.to_owned(),
    };
    if cursor.len() != 16
        || !cursor
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(invalid());
    }
    i64::from_str_radix(cursor, 16)
        .ok()
        .filter(|seq| *seq > 0)
        .ok_or_else(invalid)
}

/// The release a run to import names and the checks that need no store: the id, the times,
/// the counts; what is wrong otherwise.
fn check_importable(record: &RunRecord) -> Result<(&str, u32), String> {
    match uuid::Uuid::try_parse(&record.run_id) {
        Ok(id) if id.hyphenated().to_string() == record.run_id => {}
        _ => return Err("its run_id is not a UUID in lowercase hyphenated form".into()),
    }
    for (field, text) in [
        ("started_at", &record.started_at),
        ("finished_at", &record.finished_at),
    ] {
        rows::parse_time(text).map_err(|e| format!("its {field}: {e}"))?;
    }
    let c = record.records;
    let sum = c
        .passed
        .checked_add(c.rejected)
        .and_then(|n| n.checked_add(c.errored));
    if sum != Some(c.total) {
        return Err(format!(
            "its counts do not add up: passed {} + rejected {} + errored {} is not total {}",
            c.passed, c.rejected, c.errored, c.total
        ));
    }
    let (Some(name), Some(version)) = (record.hook.name.as_deref(), record.hook.version) else {
        return Err(
            "it names no release (hook.name and hook.version): only runs of this \
                    registry's releases are recorded"
                .into(),
        );
    };
    check_hook_name(name).map_err(|e| e.to_string())?;
    Ok((name, version))
}

/// How `new`'s contract changes `hook`'s, by the one classifier; a destructive change is
/// [`Error::ContractChanged`], naming every change.
fn check_evolution(hook: &StoredHook, new: &NewRelease) -> Result<Evolution, Error> {
    match classify(&hook.contract, &new.contract) {
        Evolution::Destructive { changes } => Err(Error::ContractChanged {
            hook: new.hook.clone(),
            origin: new.origin.clone(),
            changes,
        }),
        evolution => Ok(evolution),
    }
}

/// The existing release of `new`'s digest, if it has `new`'s settings: a release never
/// changes, so the same digest with another config or other limits is
/// [`Error::ReleaseConflict`].
fn existing_release(existing: Release, new: &NewRelease) -> Result<Release, Error> {
    let what = match (existing.config != new.config, existing.limits != new.limits) {
        (false, false) => return Ok(existing),
        (true, false) => "config",
        (false, true) => "limits",
        (true, true) => "config and limits",
    };
    Err(Error::ReleaseConflict {
        hook: existing.hook,
        version: existing.version,
        digest: existing.digest,
        what,
    })
}

/// The registry's rule for one run, inside `tx` (which the caller commits): appended, whatever
/// its status, recorded by this process's user; a run id already recorded is refused.
/// [`Recorder::record_run`] runs it in a transaction of its own, a feature-table batch in the
/// one its rows went into.
pub(crate) fn record_run_in(tx: &mut dyn WriteTx, run: &RunEntry<'_>) -> Result<(), Error> {
    tx.insert_run(run, rows::now(), Some(actor::this_process()))
}

/// The registry's rules for a batch ([`Registry::record_batch`]), inside `tx`, which the
/// caller commits when this returns [`BatchRecorded::Recorded`] and drops (rolling back)
/// otherwise. [`Registry::record_batch`] runs it in a transaction of its own, a feature-table
/// batch in the one its rows went into, so a key already recorded leaves none of its rows.
pub(crate) fn record_batch_in(
    tx: &mut dyn WriteTx,
    batch: &NewBatch<'_>,
) -> Result<BatchRecorded, Error> {
    if let Some(key) = batch.idempotency_key {
        tx.lock_batch_key(key, batch.snapshot_digest)?;
        if let Some(existing) = tx.batch_by_key(key, batch.snapshot_digest)? {
            tracing::info!(batch_id = batch.batch_id, existing = %existing.batch_id,
                "batch key already recorded; nothing recorded");
            return Ok(BatchRecorded::Existing(existing));
        }
    }
    // One time for the whole batch: its runs and its row are recorded by one commit.
    let now = rows::now();
    for run in batch.runs {
        tx.insert_run(run, now, Some(actor::this_process()))?;
    }
    if let Some(key) = batch.idempotency_key {
        tx.insert_batch(&StoredBatch {
            batch_id: batch.batch_id.to_owned(),
            idempotency_key: key.to_owned(),
            snapshot_digest: batch.snapshot_digest.to_owned(),
            run_ids: batch
                .runs
                .iter()
                .map(|run| run.record.run_id.clone())
                .collect(),
            summary: batch.summary.clone(),
            recorded_at: now,
        })?;
    }
    Ok(BatchRecorded::Recorded)
}

/// Says that `batch` was recorded (after its commit).
pub(crate) fn log_batch_recorded(batch: &NewBatch<'_>) {
    tracing::info!(
        batch_id = batch.batch_id,
        runs = batch.runs.len(),
        keyed = batch.idempotency_key.is_some(),
        "batch recorded"
    );
}

impl Recorder for Registry {
    fn record_run(&self, run: RunEntry<'_>) -> Result<(), Error> {
        let mut tx = self.store.write()?;
        record_run_in(&mut *tx, &run)?;
        tx.commit()
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
