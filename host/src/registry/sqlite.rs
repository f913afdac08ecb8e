//! [`SqliteStore`]: the registry's records in `registry.db`, the first [`Store`] — the schema,
//! its migrations (`PRAGMA user_version`), and every SQL statement the registry runs.
//!
//! Write transactions begin `IMMEDIATE`: they take SQLite's write lock up front, so writers in
//! every process using the file serialize, and what a writer read stays true until it commits
//! (which is why [`WriteTx::lock_hook`] has nothing to do here). Read transactions begin
//! deferred: in WAL mode a read snapshot starts at its first `SELECT` and sees one committed
//! state until it ends, without waiting for or blocking a writer. Releases, live moves, runs and
//! batches are append-only, enforced by triggers, not just by convention.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::store::{ReadTx, Store, StoredHook, WriteTx};
use super::{HookSummary, LiveMove, Release, ReleaseLimits, StoredRun};
use crate::contract::Contract;
use crate::error::Error;
use crate::provenance::{RunEntry, RunRecord, StoredBatch};

/// How long a writer waits for another process's write lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// The schema, one migration per version; `PRAGMA user_version` says how many have been
/// applied. Append new migrations; never edit an applied one.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE hooks (
    name            TEXT PRIMARY KEY,
    -- The hook's contract: its first release's, grown by every additive release.
    contract        TEXT NOT NULL,
    contract_digest TEXT NOT NULL,
    live_version    INTEGER NOT NULL,
    created_at      TEXT NOT NULL
) STRICT;

CREATE TABLE releases (
    hook            TEXT NOT NULL REFERENCES hooks(name),
    version         INTEGER NOT NULL CHECK (version >= 1),
    digest          TEXT NOT NULL,
    size            INTEGER NOT NULL,
    contract        TEXT NOT NULL,
    contract_digest TEXT NOT NULL,
    config          TEXT NOT NULL,
    config_digest   TEXT NOT NULL,
    fuel_per_record INTEGER NOT NULL,
    memory_bytes    INTEGER NOT NULL,
    timeout_ms      INTEGER NOT NULL,
    source_ref      TEXT,
    built_by        TEXT,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (hook, version),
    UNIQUE (hook, digest)
) STRICT;

CREATE TRIGGER releases_are_immutable BEFORE UPDATE ON releases
BEGIN SELECT RAISE(ABORT, 'releases are immutable'); END;
CREATE TRIGGER releases_are_kept BEFORE DELETE ON releases
BEGIN SELECT RAISE(ABORT, 'releases are never deleted'); END;

-- Every move of a live pointer, publishes included: the pointer's history.
CREATE TABLE live_moves (
    seq          INTEGER PRIMARY KEY,
    hook         TEXT NOT NULL REFERENCES hooks(name),
    from_version INTEGER,
    to_version   INTEGER NOT NULL,
    cause        TEXT NOT NULL CHECK (cause IN ('publish', 'live')),
    moved_at     TEXT NOT NULL
) STRICT;

CREATE TRIGGER live_moves_are_append_only BEFORE UPDATE ON live_moves
BEGIN SELECT RAISE(ABORT, 'the live pointer history is append-only'); END;
CREATE TRIGGER live_moves_are_kept BEFORE DELETE ON live_moves
BEGIN SELECT RAISE(ABORT, 'the live pointer history is append-only'); END;

CREATE TABLE runs (
    seq         INTEGER PRIMARY KEY,
    run_id      TEXT NOT NULL UNIQUE,
    -- The release it ran; null for a component run from a file.
    hook        TEXT,
    version     INTEGER,
    digest      TEXT NOT NULL,
    status      TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    total       INTEGER NOT NULL,
    passed      INTEGER NOT NULL,
    rejected    INTEGER NOT NULL,
    errored     INTEGER NOT NULL,
    -- The config's canonical JSON, so the run can be replayed.
    config      TEXT NOT NULL,
    out_dir     TEXT,
    replay_of   TEXT,
    recorded_at TEXT NOT NULL,
    -- run.json, exactly as written.
    record      TEXT NOT NULL
) STRICT;
CREATE INDEX runs_by_hook ON runs (hook, seq);

CREATE TRIGGER runs_are_append_only BEFORE UPDATE ON runs
BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
CREATE TRIGGER runs_are_kept BEFORE DELETE ON runs
BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;
"#,
    r#"
-- Batches begun with an idempotency key: one per (key, snapshot of the hook set), so the same
-- key for the same snapshot finds the earlier batch instead of running it again.
CREATE TABLE batches (
    batch_id        TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL,
    -- `sha256:` digest of the resolved releases the batch ran.
    snapshot_digest TEXT NOT NULL,
    -- The batch's run ids, a JSON array, in the order the batch gave them.
    run_ids         TEXT NOT NULL CHECK (json_type(run_ids) = 'array'),
    -- What the embedder keeps about the batch, a JSON value the registry does not read.
    summary         TEXT NOT NULL CHECK (json_valid(summary)),
    recorded_at     TEXT NOT NULL,
    UNIQUE (idempotency_key, snapshot_digest)
) STRICT;

CREATE TRIGGER batches_are_append_only BEFORE UPDATE ON batches
BEGIN SELECT RAISE(ABORT, 'batches are append-only'); END;
CREATE TRIGGER batches_are_kept BEFORE DELETE ON batches
BEGIN SELECT RAISE(ABORT, 'batches are append-only'); END;
"#,
];

/// The newest schema version this host knows.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// `registry.db`: one SQLite connection, used by one transaction at a time.
#[derive(Debug)]
pub struct SqliteStore {
    describe: String,
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date;
    /// [`Error::RegistryTooNew`] if a newer hookhost wrote it.
    pub fn open(path: &Path) -> Result<SqliteStore, Error> {
        let describe = path.display().to_string();
        let fail = |operation: &'static str| {
            let describe = describe.clone();
            move |source| store_error(&describe, operation, source)
        };
        let conn = Connection::open(path).map_err(fail("opening the database"))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(fail("setting the busy timeout"))?;
        // WAL lets readers work while a writer commits; FULL makes every commit durable,
        // which an append-only record of runs needs more than it needs speed.
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
            .map_err(fail("turning on WAL"))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(fail("setting synchronous = FULL"))?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(fail("turning on foreign keys"))?;
        let mut store = SqliteStore {
            describe,
            conn: Mutex::new(conn),
        };
        store.migrate_to(SCHEMA_VERSION)?;
        Ok(store)
    }

    /// Creates a new database with only the first `version` migrations applied: a registry as
    /// an older host left it.
    #[cfg(test)]
    pub(crate) fn create_at_version(path: &Path, version: u32) -> Result<SqliteStore, Error> {
        let describe = path.display().to_string();
        let conn = Connection::open(path)
            .map_err(|e| store_error(&describe, "opening the database", e))?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(|e| store_error(&describe, "turning on foreign keys", e))?;
        let mut store = SqliteStore {
            describe,
            conn: Mutex::new(conn),
        };
        store.migrate_to(version)?;
        Ok(store)
    }

    /// Applies the migrations after the database's version, up to `target`.
    fn migrate_to(&mut self, target: u32) -> Result<(), Error> {
        let describe = &self.describe;
        let fail = |source| store_error(describe, "migrating the schema", source);
        let conn = self
            .conn
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // The common case, an up-to-date schema, needs no write lock.
        let current: u32 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(fail)?;
        if current == target {
            return Ok(());
        }
        // Re-read under the write lock: another process may have migrated meanwhile.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        let found: u32 = tx
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(fail)?;
        if found > SCHEMA_VERSION {
            return Err(Error::RegistryTooNew {
                registry: describe.clone(),
                found,
                known: SCHEMA_VERSION,
            });
        }
        let pending = MIGRATIONS[..target as usize].iter().enumerate();
        for (index, migration) in pending.skip(found as usize) {
            tx.execute_batch(migration).map_err(fail)?;
            tracing::info!(version = index + 1, "registry schema migrated");
        }
        tx.pragma_update(None, "user_version", target)
            .map_err(fail)?;
        tx.commit().map_err(fail)
    }

    /// Begins a transaction (`BEGIN DEFERRED` or `BEGIN IMMEDIATE`) on the connection.
    fn begin(&self, begin: &'static str) -> Result<SqliteTx<'_>, Error> {
        // A panic while a transaction was open cannot leave it half-written: the transaction's
        // drop rolled it back during unwinding. So a poisoned lock is still safe to use.
        let conn = self
            .conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        conn.execute_batch(begin)
            .map_err(|e| self.error(format_args!("beginning a transaction ({begin})"), e))?;
        Ok(SqliteTx {
            store: self,
            conn,
            finished: false,
        })
    }

    fn error(&self, operation: impl std::fmt::Display, source: rusqlite::Error) -> Error {
        store_error(&self.describe, operation, source)
    }
}

impl Store for SqliteStore {
    fn describe(&self) -> &str {
        &self.describe
    }

    fn read(&self) -> Result<Box<dyn ReadTx + '_>, Error> {
        Ok(Box::new(self.begin("BEGIN DEFERRED")?))
    }

    fn write(&self) -> Result<Box<dyn WriteTx + '_>, Error> {
        Ok(Box::new(self.begin("BEGIN IMMEDIATE")?))
    }

    fn feature_tables(
        &self,
        schema: &str,
        _url: Option<&str>,
    ) -> Result<std::sync::Arc<dyn crate::sink::FeatureTables>, Error> {
        Err(Error::FeatureTables {
            tables: format!("in schema {schema}"),
            reason: format!(
                "the registry is SQLite ({}); feature tables live in the registry's own \
                 PostgreSQL database, since each row's run_id is a foreign key to the \
                 registry's runs: open a PostgreSQL registry (--registry postgres://… or \
                 HOOKHOST_REGISTRY) and give --sink its URL",
                self.describe
            ),
        })
    }
}

/// [`Error::Store`] for a SQLite failure.
fn store_error(
    describe: &str,
    operation: impl std::fmt::Display,
    source: rusqlite::Error,
) -> Error {
    Error::Store {
        registry: describe.to_owned(),
        operation: operation.to_string(),
        source: Box::new(source),
    }
}

/// A transaction on the store's connection, which it holds (locked) for its whole life. It is
/// rolled back when dropped uncommitted; a read transaction is always ended that way.
struct SqliteTx<'a> {
    store: &'a SqliteStore,
    conn: MutexGuard<'a, Connection>,
    finished: bool,
}

impl Drop for SqliteTx<'_> {
    fn drop(&mut self) {
        // SQLite may already have rolled back on its own (after some I/O errors); then there is
        // no transaction left to end.
        if !self.finished
            && !self.conn.is_autocommit()
            && let Err(error) = self.conn.execute_batch("ROLLBACK")
        {
            tracing::warn!(%error, registry = %self.store.describe, "rollback failed");
        }
    }
}

impl SqliteTx<'_> {
    fn error(&self, operation: impl std::fmt::Display, source: rusqlite::Error) -> Error {
        self.store.error(operation, source)
    }

    /// Runs a (cached) query that returns at most one row.
    fn query_one<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<Option<T>> {
        self.conn
            .prepare_cached(sql)?
            .query_row(params, map)
            .optional()
    }

    /// Runs a (cached) query and maps every row.
    fn query_all<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<Vec<T>> {
        let mut statement = self.conn.prepare_cached(sql)?;
        let rows = statement.query_map(params, map)?;
        rows.collect()
    }

    /// Runs a (cached) statement.
    fn execute(&self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<()> {
        self.conn.prepare_cached(sql)?.execute(params)?;
        Ok(())
    }
}

impl ReadTx for SqliteTx<'_> {
    fn hook(&mut self, name: &str) -> Result<Option<StoredHook>, Error> {
        self.query_one(
            "SELECT h.name, h.contract, h.live_version, COALESCE(MAX(r.version), 0),
                    h.created_at
             FROM hooks h LEFT JOIN releases r ON r.hook = h.name
             WHERE h.name = ?1 GROUP BY h.name",
            [name],
            |row| {
                Ok(StoredHook {
                    name: row.get(0)?,
                    contract: json_column(row, 1)?,
                    live_version: row.get(2)?,
                    latest_version: row.get(3)?,
                    created_at: row.get(4)?,
                })
            },
        )
        .map_err(|e| self.error(format_args!("reading hook `{name}`"), e))
    }

    fn hooks(&mut self) -> Result<Vec<HookSummary>, Error> {
        self.query_all(
            "SELECT h.name, h.contract, h.contract_digest, h.live_version, h.created_at,
                    MAX(r.version), COUNT(r.version), MAX(r.created_at)
             FROM hooks h JOIN releases r ON r.hook = h.name
             GROUP BY h.name ORDER BY h.name",
            [],
            |row| {
                Ok(HookSummary {
                    name: row.get(0)?,
                    contract: json_column(row, 1)?,
                    contract_digest: row.get(2)?,
                    live_version: row.get(3)?,
                    created_at: row.get(4)?,
                    latest_version: row.get(5)?,
                    releases: row.get(6)?,
                    updated_at: row.get(7)?,
                })
            },
        )
        .map_err(|e| self.error("listing hooks", e))
    }

    fn release(&mut self, hook: &str, version: u32) -> Result<Option<Release>, Error> {
        self.query_one(
            &format!("{RELEASE_SELECT} WHERE hook = ?1 AND version = ?2"),
            params![hook, version],
            release_from_row,
        )
        .map_err(|e| self.error(format_args!("reading release `{hook}` v{version}"), e))
    }

    fn release_by_digest(&mut self, hook: &str, digest: &str) -> Result<Option<Release>, Error> {
        self.query_one(
            &format!("{RELEASE_SELECT} WHERE hook = ?1 AND digest = ?2"),
            params![hook, digest],
            release_from_row,
        )
        .map_err(|e| self.error(format_args!("reading the release of `{hook}` {digest}"), e))
    }

    fn releases(&mut self, hook: &str) -> Result<Vec<Release>, Error> {
        self.query_all(
            &format!("{RELEASE_SELECT} WHERE hook = ?1 ORDER BY version"),
            [hook],
            release_from_row,
        )
        .map_err(|e| self.error(format_args!("listing the releases of `{hook}`"), e))
    }

    fn live_moves(&mut self, hook: &str) -> Result<Vec<LiveMove>, Error> {
        self.query_all(
            "SELECT from_version, to_version, cause, moved_at FROM live_moves
             WHERE hook = ?1 ORDER BY seq",
            [hook],
            |row| {
                Ok(LiveMove {
                    from_version: row.get(0)?,
                    to_version: row.get(1)?,
                    cause: row.get(2)?,
                    moved_at: row.get(3)?,
                })
            },
        )
        .map_err(|e| self.error(format_args!("listing the live moves of `{hook}`"), e))
    }

    fn runs(&mut self, hook: Option<&str>, limit: usize) -> Result<Vec<StoredRun>, Error> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.query_all(
            &format!("{RUN_SELECT} WHERE ?1 IS NULL OR hook = ?1 ORDER BY seq DESC LIMIT ?2"),
            params![hook, limit],
            run_from_row,
        )
        .map_err(|e| self.error("listing runs", e))
    }

    fn run(&mut self, run_id: &str) -> Result<Option<StoredRun>, Error> {
        self.query_one(
            &format!("{RUN_SELECT} WHERE run_id = ?1"),
            [run_id],
            run_from_row,
        )
        .map_err(|e| self.error(format_args!("reading run {run_id}"), e))
    }

    fn runs_by_prefix(&mut self, prefix: &str, limit: usize) -> Result<Vec<StoredRun>, Error> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // `substr`, not `LIKE`: a prefix is compared as text, with no wildcards in it.
        self.query_all(
            &format!("{RUN_SELECT} WHERE substr(run_id, 1, length(?1)) = ?1 LIMIT ?2"),
            params![prefix, limit],
            run_from_row,
        )
        .map_err(|e| self.error(format_args!("reading runs starting with `{prefix}`"), e))
    }

    fn count_runs_by_prefix(&mut self, prefix: &str) -> Result<u64, Error> {
        self.query_one(
            "SELECT COUNT(*) FROM runs WHERE substr(run_id, 1, length(?1)) = ?1",
            [prefix],
            |row| row.get::<_, i64>(0),
        )
        .map(|count| count.unwrap_or(0) as u64)
        .map_err(|e| self.error(format_args!("counting runs starting with `{prefix}`"), e))
    }

    fn batch_by_key(
        &mut self,
        key: &str,
        snapshot_digest: &str,
    ) -> Result<Option<StoredBatch>, Error> {
        self.query_one(
            "SELECT batch_id, idempotency_key, snapshot_digest, run_ids, summary, recorded_at
             FROM batches WHERE idempotency_key = ?1 AND snapshot_digest = ?2",
            [key, snapshot_digest],
            |row| {
                Ok(StoredBatch {
                    batch_id: row.get(0)?,
                    idempotency_key: row.get(1)?,
                    snapshot_digest: row.get(2)?,
                    run_ids: json_column(row, 3)?,
                    summary: json_column(row, 4)?,
                    recorded_at: row.get(5)?,
                })
            },
        )
        .map_err(|e| {
            self.error(
                format_args!("reading the batch of key `{key}` for {snapshot_digest}"),
                e,
            )
        })
    }
}

impl WriteTx for SqliteTx<'_> {
    fn lock_hook(&mut self, _name: &str) -> Result<(), Error> {
        // `BEGIN IMMEDIATE` already holds the database's write lock.
        Ok(())
    }

    fn lock_batch_key(&mut self, _key: &str, _snapshot_digest: &str) -> Result<(), Error> {
        // `BEGIN IMMEDIATE` already holds the database's write lock.
        Ok(())
    }

    fn insert_hook(
        &mut self,
        name: &str,
        contract: &Contract,
        live_version: u32,
        created_at: &str,
    ) -> Result<(), Error> {
        self.execute(
            "INSERT INTO hooks (name, contract, contract_digest, live_version, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                name,
                contract_json(contract),
                contract.digest(),
                live_version,
                created_at
            ],
        )
        .map_err(|e| self.error(format_args!("inserting hook `{name}`"), e))
    }

    fn update_hook(
        &mut self,
        name: &str,
        contract: &Contract,
        live_version: u32,
    ) -> Result<(), Error> {
        self.execute(
            "UPDATE hooks SET contract = ?2, contract_digest = ?3, live_version = ?4
             WHERE name = ?1",
            params![
                name,
                contract_json(contract),
                contract.digest(),
                live_version
            ],
        )
        .map_err(|e| self.error(format_args!("updating hook `{name}`"), e))
    }

    fn insert_release(&mut self, release: &Release) -> Result<(), Error> {
        self.execute(
            "INSERT INTO releases (hook, version, digest, size, contract, contract_digest, config,
                 config_digest, fuel_per_record, memory_bytes, timeout_ms, source_ref, built_by,
                 created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                release.hook,
                release.version,
                release.digest,
                release.size as i64,
                contract_json(&release.contract),
                release.contract_digest,
                release.config,
                release.config_digest,
                release.limits.fuel_per_record as i64,
                release.limits.memory_bytes as i64,
                release.limits.timeout_ms as i64,
                release.source_ref,
                release.built_by,
                release.created_at,
            ],
        )
        .map_err(|e| {
            self.error(
                format_args!("inserting release `{}` v{}", release.hook, release.version),
                e,
            )
        })
    }

    fn insert_live_move(&mut self, hook: &str, moved: &LiveMove) -> Result<(), Error> {
        self.execute(
            "INSERT INTO live_moves (hook, from_version, to_version, cause, moved_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                hook,
                moved.from_version,
                moved.to_version,
                moved.cause,
                moved.moved_at
            ],
        )
        .map_err(|e| self.error(format_args!("recording a live move of `{hook}`"), e))
    }

    fn insert_run(&mut self, run: &RunEntry<'_>, recorded_at: &str) -> Result<(), Error> {
        let record = run.record;
        let json = serde_json::to_string(record).expect("run records serialize");
        let status = serde_json::to_value(record.status).expect("statuses serialize");
        let c = record.records;
        self.execute(
            "INSERT INTO runs (run_id, hook, version, digest, status, started_at, finished_at,
                 total, passed, rejected, errored, config, out_dir, replay_of, recorded_at, record)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            params![
                record.run_id,
                record.hook.name,
                record.hook.version,
                record.hook.digest,
                status.as_str(),
                record.started_at,
                record.finished_at,
                c.total as i64,
                c.passed as i64,
                c.rejected as i64,
                c.errored as i64,
                run.config,
                run.out_dir,
                record.replay_of,
                recorded_at,
                json,
            ],
        )
        .map_err(|e| self.error(format_args!("recording run {}", record.run_id), e))
    }

    fn insert_batch(&mut self, batch: &StoredBatch) -> Result<(), Error> {
        self.execute(
            "INSERT INTO batches (batch_id, idempotency_key, snapshot_digest, run_ids, summary,
                 recorded_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                batch.batch_id,
                batch.idempotency_key,
                batch.snapshot_digest,
                serde_json::to_string(&batch.run_ids).expect("strings serialize"),
                serde_json::to_string(&batch.summary).expect("JSON values serialize"),
                batch.recorded_at,
            ],
        )
        .map_err(|e| self.error(format_args!("recording batch {}", batch.batch_id), e))
    }

    fn commit(mut self: Box<Self>) -> Result<(), Error> {
        self.conn
            .execute_batch("COMMIT")
            .map_err(|e| self.error("committing", e))?;
        self.finished = true;
        Ok(())
    }
}

fn contract_json(contract: &Contract) -> String {
    serde_json::to_string(contract).expect("contracts serialize")
}

/// Every column of a release but its `live` flag, which is the hook's to say.
const RELEASE_SELECT: &str = "SELECT hook, version, digest, size, contract, contract_digest,
    config, config_digest, fuel_per_record, memory_bytes, timeout_ms, source_ref, built_by,
    created_at FROM releases";

fn release_from_row(row: &Row<'_>) -> rusqlite::Result<Release> {
    Ok(Release {
        hook: row.get(0)?,
        version: row.get(1)?,
        digest: row.get(2)?,
        size: row.get::<_, i64>(3)? as u64,
        contract: json_column(row, 4)?,
        contract_digest: row.get(5)?,
        config: row.get(6)?,
        config_digest: row.get(7)?,
        limits: ReleaseLimits {
            fuel_per_record: row.get::<_, i64>(8)? as u64,
            memory_bytes: row.get::<_, i64>(9)? as u64,
            timeout_ms: row.get::<_, i64>(10)? as u64,
        },
        source_ref: row.get(11)?,
        built_by: row.get(12)?,
        created_at: row.get(13)?,
        live: false,
    })
}

const RUN_SELECT: &str = "SELECT record, config, out_dir, recorded_at FROM runs";

fn run_from_row(row: &Row<'_>) -> rusqlite::Result<StoredRun> {
    Ok(StoredRun {
        record: json_column::<RunRecord>(row, 0)?,
        config: row.get(1)?,
        out_dir: row.get(2)?,
        recorded_at: row.get(3)?,
    })
}

/// Reads a JSON text column into `T`; a column that does not parse is reported as a
/// conversion failure of that column, not a panic.
fn json_column<T: serde::de::DeserializeOwned>(row: &Row<'_>, index: usize) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
    })
}

#[cfg(test)]
pub(super) mod tests;
