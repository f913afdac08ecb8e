//! Where the registry keeps its records: [`Store`], a handful of small transactional
//! operations ([`ReadTx`], [`WriteTx`]) over hooks ([`StoredHook`]), releases, live moves, runs
//! and batches.
//!
//! A store holds data and keeps it safe; it decides nothing. Every rule — which version comes
//! next, whether a digest is already released, whether a contract change is allowed, whether a
//! live move is recorded, which run an id prefix names, whether an idempotency key is taken —
//! lives in [`Registry`](super::Registry), which reads what it needs *inside* a transaction and
//! writes the outcome in the same one. A second backend therefore implements these operations
//! and nothing else, and the registry's promises hold for it unchanged. SQLite
//! ([`SqliteStore`](super::SqliteStore)) is the first.
//!
//! # What a backend must guarantee
//!
//! - **A read snapshot.** Every read on one [`ReadTx`] sees one committed state, whatever
//!   writers do meanwhile ([`Registry::resolve_all`](super::Registry::resolve_all) relies on
//!   it). SQLite: a deferred transaction in WAL mode. PostgreSQL: `REPEATABLE READ`,
//!   `READ ONLY`.
//! - **Safe read-then-write.** Between [`Store::write`] and [`WriteTx::commit`], what the
//!   registry read cannot be changed by another writer, in this process or any other, before it
//!   commits. A backend may serialize every writer (SQLite: `BEGIN IMMEDIATE` takes the
//!   database's write lock up front, so [`WriteTx::lock_hook`] and
//!   [`WriteTx::lock_batch_key`] are no-ops), or lock only what is named: then the registry
//!   calls `lock_hook` before reading a hook it may change and `lock_batch_key` before checking
//!   a key, and the backend must hold those locks until the transaction ends (PostgreSQL:
//!   `pg_advisory_xact_lock` on a hash of the name, which works for a hook with no row yet).
//! - **All or nothing.** A [`WriteTx`] dropped without [`WriteTx::commit`] leaves no trace.
//! - **History the database itself keeps.** Releases, live moves, runs and batches are
//!   append-only, refused by the database (SQLite and PostgreSQL: triggers raising on `UPDATE`
//!   and `DELETE`), not only by this code. Run ids and batch ids are unique, and so are a hook's
//!   `(name, version)` and `(name, digest)`: the registry's own checks come first, but a
//!   constraint is the last word.
//! - **Errors that say where and what.** A backend's own failures are
//!   [`Error::Store`], naming [`Store::describe`] and the operation with
//!   the key it concerned (`inserting run 0193…`), and saying whether the store could not be
//!   reached ([`StoreFailure::Unavailable`](crate::error::StoreFailure::Unavailable): nothing
//!   was changed, the same call may succeed later) or failed otherwise.
//! - **Times kept exactly.** A time written (to the millisecond) reads back equal.
//!
//! # An async backend
//!
//! These methods are synchronous on purpose: every [`Registry`](super::Registry) call is made
//! off async worker threads — the CLI has no runtime at all, and async code calls the
//! registry through [`AsyncRegistry`](super::AsyncRegistry), which runs each call on
//! `spawn_blocking` — so a call may block. A backend that blocks on a runtime of its own
//! refuses a call made on a thread that drives async tasks
//! ([`StoreFailure::InsideAsyncRuntime`](crate::error::StoreFailure::InsideAsyncRuntime))
//! rather than stall it or let tokio panic. A PostgreSQL store (tokio-postgres
//! with a deadpool-postgres pool) owns its own tokio runtime and its pool, and implements each
//! method by `block_on` on that runtime: [`Store::read`] and [`Store::write`] take one pooled
//! connection and send `BEGIN`, each operation is one statement awaited to completion, and
//! [`WriteTx::commit`] sends `COMMIT`. A transaction holds its connection for its whole life;
//! dropping it uncommitted returns the connection only after a `ROLLBACK` (or discards it), so
//! no half-done transaction is ever reused. The store is `Send + Sync`; a transaction is used by
//! one thread at a time and need not be `Send`.

use std::sync::Arc;

use time::OffsetDateTime;

use super::actor::Actor;
use super::types::{HookSummary, LiveMove, Release, RunFilter, StoredRun};
use crate::contract::Contract;
use crate::error::Error;
use crate::provenance::{RunEntry, StoredBatch};
use crate::sink::FeatureTables;

/// Where the registry's records are kept. Object-safe, so a [`Registry`](super::Registry)
/// holds any backend as a `Box<dyn Store>`.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Where it is, for messages: `/x/registry.db`, later `postgres://host:5432/db`.
    fn describe(&self) -> &str;

    /// Begins a read snapshot: every read on it sees one committed state.
    fn read(&self) -> Result<Box<dyn ReadTx + '_>, Error>;

    /// Begins a write transaction holding whatever lock makes read-then-write safe against
    /// other writers in any process (see the module docs). Dropped without
    /// [`WriteTx::commit`], it is rolled back.
    fn write(&self) -> Result<Box<dyn WriteTx + '_>, Error>;

    /// Checks that the store answers (a health check): by default, a read snapshot begun
    /// and one hook looked up.
    fn check(&self) -> Result<(), Error> {
        self.read()?.hook("").map(drop)
    }

    /// Fleet-wide batch claims, for a store shared by several machines. By default `None`:
    /// one machine's processes rely on [`Registry::record_batch`](super::Registry::record_batch)
    /// recording one batch per key.
    fn claims(&self) -> Option<&dyn ClaimStore> {
        None
    }

    /// Feature tables in schema `schema` of this store's own database
    /// ([`Registry::feature_tables`](super::Registry::feature_tables)); when `url` is given,
    /// only if it names that same database. By default refused: the tables' rows reference
    /// the registry's runs, so they need a store that is a PostgreSQL database.
    fn feature_tables(
        &self,
        schema: &str,
        url: Option<&str>,
    ) -> Result<Arc<dyn FeatureTables>, Error> {
        let _ = url;
        Err(Error::FeatureTables {
            tables: format!("in schema {schema}"),
            reason: format!(
                "the registry {} is not a PostgreSQL database; feature tables live in the \
                 registry's own PostgreSQL database, since each row's run_id is a foreign key \
                 to the registry's runs",
                self.describe()
            ),
        })
    }
}

/// A claim on an idempotency key, held under a lease: while it is held no other worker runs
/// the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchClaim {
    /// The key.
    pub idempotency_key: String,
    /// The snapshot it is claimed for.
    pub snapshot_digest: String,
    /// This claim's own token: renewing and releasing name it, so a worker whose lease ran out
    /// (and was claimed by another) cannot renew or release the other's claim.
    pub token: String,
}

/// What claiming a key gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Claimed {
    /// This worker holds the key: it runs the batch, renewing the lease, then releases it.
    Claimed(BatchClaim),
    /// A batch with the key succeeded (now or earlier, here or elsewhere): nothing to run.
    Done(StoredBatch),
}

/// Batch claims with leases, in a store a fleet shares.
pub trait ClaimStore {
    /// Claims `key` for `snapshot_digest` as `worker`, for `lease`; or returns the batch that
    /// already succeeded with it. While another worker's unexpired claim holds the key, waits —
    /// woken when a claim is released, or when the holder's lease runs out — then tries again.
    fn claim(
        &self,
        key: &str,
        snapshot_digest: &str,
        worker: &str,
        lease: std::time::Duration,
    ) -> Result<Claimed, Error>;

    /// Extends `claim`'s lease to `lease` from now; `false` if it is no longer held (it
    /// expired and another worker claimed the key).
    fn renew(&self, claim: &BatchClaim, lease: std::time::Duration) -> Result<bool, Error>;

    /// Gives `claim` up, waking the workers waiting for the key.
    fn release(&self, claim: &BatchClaim) -> Result<(), Error>;
}

/// A hook's row: its contract and its pointers.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredHook {
    /// The hook's name.
    pub name: String,
    /// The hook's contract: its first release's, grown by every additive release.
    pub contract: Contract,
    /// The version its live pointer is on.
    pub live_version: u32,
    /// Its newest release's version (the highest it has).
    pub latest_version: u32,
    /// When the hook was first published.
    pub created_at: OffsetDateTime,
}

/// Reads, each one small query. On a [`WriteTx`] they see the transaction's own writes.
pub trait ReadTx {
    /// The hook named `name`, if it has been published.
    fn hook(&mut self, name: &str) -> Result<Option<StoredHook>, Error>;

    /// Every hook (or the one named `name`, if it exists) with its newest version and its
    /// times, by name.
    fn hooks(&mut self, name: Option<&str>) -> Result<Vec<HookSummary>, Error>;

    /// Release `version` of `hook`, if there is one.
    fn release(&mut self, hook: &str, version: u32) -> Result<Option<Release>, Error>;

    /// The release of `hook` whose component has `digest`, if there is one.
    fn release_by_digest(&mut self, hook: &str, digest: &str) -> Result<Option<Release>, Error>;

    /// Every release of `hook`, oldest first.
    fn releases(&mut self, hook: &str) -> Result<Vec<Release>, Error>;

    /// Every move of `hook`'s live pointer, oldest first.
    fn live_moves(&mut self, hook: &str) -> Result<Vec<LiveMove>, Error>;

    /// The runs `filter` keeps that were recorded before the run numbered `before` (every
    /// run, when `None`), the most recently recorded first, at most `limit`, each with its
    /// number in recording order (what `before` takes).
    fn runs_page(
        &mut self,
        filter: &RunFilter,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<(i64, StoredRun)>, Error>;

    /// The run whose id is exactly `run_id`, if there is one.
    fn run(&mut self, run_id: &str) -> Result<Option<StoredRun>, Error>;

    /// At most `limit` runs whose id starts with `prefix`, in any order.
    fn runs_by_prefix(&mut self, prefix: &str, limit: usize) -> Result<Vec<StoredRun>, Error>;

    /// How many runs have an id starting with `prefix`.
    fn count_runs_by_prefix(&mut self, prefix: &str) -> Result<u64, Error>;

    /// The batch recorded with idempotency key `key` for `snapshot_digest`, if there is one.
    fn batch_by_key(
        &mut self,
        key: &str,
        snapshot_digest: &str,
    ) -> Result<Option<StoredBatch>, Error>;
}

/// Writes, each one small statement, inside one transaction; and the reads of [`ReadTx`].
pub trait WriteTx: ReadTx {
    /// Holds, until the transaction ends, a lock that keeps every other writer from changing
    /// hook `name` (its row, releases and live moves), including from creating it. A no-op on
    /// a backend whose write transactions already exclude each other.
    fn lock_hook(&mut self, name: &str) -> Result<(), Error>;

    /// Holds, until the transaction ends, a lock that keeps every other writer from recording
    /// a batch under `key` for `snapshot_digest`. A no-op where writers already exclude each
    /// other.
    fn lock_batch_key(&mut self, key: &str, snapshot_digest: &str) -> Result<(), Error>;

    /// Adds hook `name` with its contract and live pointer. It must not exist yet.
    fn insert_hook(
        &mut self,
        name: &str,
        contract: &Contract,
        live_version: u32,
        created_at: OffsetDateTime,
    ) -> Result<(), Error>;

    /// Sets the hook's two mutable fields: its contract and its live pointer.
    fn update_hook(
        &mut self,
        name: &str,
        contract: &Contract,
        live_version: u32,
    ) -> Result<(), Error>;

    /// Adds `release`. Its hook must exist; its `(hook, version)` and `(hook, digest)` must be
    /// new.
    fn insert_release(&mut self, release: &Release) -> Result<(), Error>;

    /// Appends a move to `hook`'s live pointer history.
    fn insert_live_move(&mut self, hook: &str, moved: &LiveMove) -> Result<(), Error>;

    /// Appends a run, recorded at `recorded_at` by `recorded_by`. A run id already recorded
    /// is refused.
    fn insert_run(
        &mut self,
        run: &RunEntry<'_>,
        recorded_at: OffsetDateTime,
        recorded_by: Option<&Actor>,
    ) -> Result<(), Error>;

    /// Adds a batch. Its id, and its key with its snapshot, must be new.
    fn insert_batch(&mut self, batch: &StoredBatch) -> Result<(), Error>;

    /// Makes every write of the transaction durable and visible, at once.
    fn commit(self: Box<Self>) -> Result<(), Error>;
}
