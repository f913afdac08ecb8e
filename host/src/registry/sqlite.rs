//! [`SqliteStore`]: the registry's records in `registry.db`, the first [`Store`] — the schema,
//! its migrations (`PRAGMA user_version`), its connections, and how it runs the statements of
//! [`sql`](super::sql).
//!
//! One writer connection and a few reader connections ([`DEFAULT_SQLITE_READERS`]). Write
//! transactions begin `IMMEDIATE` on the writer: they take SQLite's write lock up front, so
//! writers in every process using the file serialize, and what a writer read stays true until
//! it commits (which is why [`WriteTx::lock_hook`] has nothing to do here). Read transactions
//! begin deferred on a reader: in WAL mode a read snapshot starts at its first `SELECT` and
//! sees one committed state until it ends, without waiting for or blocking a writer — so a
//! writer waiting for another process's write lock keeps no reader of this process waiting.
//! Releases, live moves, runs and batches are append-only, enforced by triggers, not just by
//! convention. Times are RFC 3339 text in UTC with three fractional digits, so that text order
//! is time order.

use std::path::Path;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, TransactionBehavior};
use time::OffsetDateTime;

use super::rows::{self, Columns, RowError, Value};
use super::sql::{Sql, SqlTx};
use super::store::{ReadTx, Store, WriteTx};
use crate::error::{Error, StoreFailure};

/// How long a writer waits for another process's write lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// The most reader connections one store opens: read snapshots running at once in this
/// process; more wait for a free one. Readers never wait for the writer (WAL).
pub const DEFAULT_SQLITE_READERS: usize = 4;

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
    r#"
-- Who did it (issue 26): the actor of each release, live move and recorded run, as JSON
-- ({"kind": "local", …} or {"kind": "token", …}), and a live move's reason. Rows written
-- before have none (null: not known).
ALTER TABLE releases ADD COLUMN published_by TEXT
    CHECK (published_by IS NULL OR json_valid(published_by));
ALTER TABLE live_moves ADD COLUMN moved_by TEXT CHECK (moved_by IS NULL OR json_valid(moved_by));
ALTER TABLE live_moves ADD COLUMN reason TEXT;
ALTER TABLE runs ADD COLUMN recorded_by TEXT
    CHECK (recorded_by IS NULL OR json_valid(recorded_by));

-- Where a run ran (run.json's `worker`), a column as in PostgreSQL's `runs`, filled in for the
-- runs recorded before from their record: the only write to history a migration makes, with
-- the append-only trigger lifted for it inside this migration's transaction.
ALTER TABLE runs ADD COLUMN worker TEXT;
DROP TRIGGER runs_are_append_only;
UPDATE runs SET worker = json_extract(record, '$.worker');
CREATE TRIGGER runs_are_append_only BEFORE UPDATE ON runs
BEGIN SELECT RAISE(ABORT, 'runs are append-only'); END;

-- Pages of runs, newest first, by status or by worker (by hook: runs_by_hook).
CREATE INDEX runs_by_status ON runs (status, seq);
CREATE INDEX runs_by_worker ON runs (worker, seq);
"#,
];

/// The newest schema version this host knows.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// `registry.db`: one writer connection, used by one write transaction at a time, and up to
/// [`DEFAULT_SQLITE_READERS`] reader connections, one per read snapshot.
#[derive(Debug)]
pub struct SqliteStore {
    describe: String,
    path: std::path::PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Readers>,
    reader_free: Condvar,
}

/// The reader connections: the idle ones, and how many are open in all.
#[derive(Debug, Default)]
struct Readers {
    idle: Vec<Connection>,
    open: usize,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date;
    /// [`Error::RegistryTooNew`] if a newer hookhost wrote it.
    pub fn open(path: &Path) -> Result<SqliteStore, Error> {
        let store = SqliteStore::unmigrated(path)?;
        store.migrate_to(SCHEMA_VERSION)?;
        Ok(store)
    }

    /// The store at `path` with its writer connection set up, its schema as it is.
    fn unmigrated(path: &Path) -> Result<SqliteStore, Error> {
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
        Ok(SqliteStore {
            describe,
            path: path.to_owned(),
            writer: Mutex::new(conn),
            readers: Mutex::new(Readers::default()),
            reader_free: Condvar::new(),
        })
    }

    /// Creates a new database with only the first `version` migrations applied: a registry as
    /// an older host left it.
    #[cfg(test)]
    pub(crate) fn create_at_version(path: &Path, version: u32) -> Result<SqliteStore, Error> {
        let store = SqliteStore::unmigrated(path)?;
        store.migrate_to(version)?;
        Ok(store)
    }

    /// Applies the migrations after the database's version, up to `target`.
    fn migrate_to(&self, target: u32) -> Result<(), Error> {
        let describe = &self.describe;
        let fail = |source| store_error(describe, "migrating the schema", source);
        let mut conn = self.writer();
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

    /// The writer connection, waited for. A panic while a transaction was open cannot leave
    /// it half-written: the transaction's drop rolled it back during unwinding. So a poisoned
    /// lock is still safe to use.
    fn writer(&self) -> MutexGuard<'_, Connection> {
        self.writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A reader connection: an idle one, a new one while fewer than
    /// [`DEFAULT_SQLITE_READERS`] are open, else the next one given back.
    fn reader(&self) -> Result<Conn<'_>, Error> {
        let mut readers = self
            .readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        loop {
            if let Some(conn) = readers.idle.pop() {
                return Ok(Conn::Reader(self, Some(conn)));
            }
            if readers.open < DEFAULT_SQLITE_READERS {
                readers.open += 1;
                drop(readers);
                return match self.open_reader() {
                    Ok(conn) => Ok(Conn::Reader(self, Some(conn))),
                    Err(error) => {
                        self.give_back(None);
                        Err(error)
                    }
                };
            }
            readers = self
                .reader_free
                .wait(readers)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    fn open_reader(&self) -> Result<Connection, Error> {
        let fail =
            |operation: &'static str| move |source| store_error(&self.describe, operation, source);
        let conn = Connection::open(&self.path).map_err(fail("opening a reader"))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(fail("setting the busy timeout"))?;
        // A reader never writes: refused by SQLite itself, not only by this code.
        conn.pragma_update(None, "query_only", "ON")
            .map_err(fail("making a reader read-only"))?;
        Ok(conn)
    }

    /// Returns a reader connection to the idle ones (`None`: one that is gone).
    fn give_back(&self, conn: Option<Connection>) {
        let mut readers = self
            .readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match conn {
            Some(conn) => readers.idle.push(conn),
            None => readers.open -= 1,
        }
        drop(readers);
        self.reader_free.notify_one();
    }

    /// Begins a transaction (`BEGIN DEFERRED` on a reader, `BEGIN IMMEDIATE` on the writer).
    fn begin<'a>(&'a self, conn: Conn<'a>, begin: &'static str) -> Result<SqliteTx<'a>, Error> {
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
        Ok(Box::new(self.begin(self.reader()?, "BEGIN DEFERRED")?))
    }

    fn write(&self) -> Result<Box<dyn WriteTx + '_>, Error> {
        Ok(Box::new(
            self.begin(Conn::Writer(self.writer()), "BEGIN IMMEDIATE")?,
        ))
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

/// [`Error::Store`] for a SQLite failure: [`StoreFailure::Unavailable`] when the database
/// stayed busy (or locked) past the timeout, since the same call may succeed later.
fn store_error(
    describe: &str,
    operation: impl std::fmt::Display,
    source: rusqlite::Error,
) -> Error {
    let busy = matches!(
        source.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    );
    Error::Store {
        registry: describe.to_owned(),
        operation: operation.to_string(),
        kind: match busy {
            true => StoreFailure::Unavailable,
            false => StoreFailure::Failed,
        },
        source: Box::new(source),
    }
}

/// The connection a transaction holds for its whole life.
enum Conn<'a> {
    /// The writer, locked.
    Writer(MutexGuard<'a, Connection>),
    /// A reader, given back to its store when dropped.
    Reader(&'a SqliteStore, Option<Connection>),
}

impl std::ops::Deref for Conn<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        match self {
            Conn::Writer(conn) => conn,
            Conn::Reader(_, conn) => conn.as_ref().expect("held until dropped"),
        }
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        if let Conn::Reader(store, conn) = self {
            store.give_back(conn.take());
        }
    }
}

/// A transaction on one of the store's connections, which it holds for its whole life. It is
/// rolled back when dropped uncommitted; a read transaction is always ended that way.
struct SqliteTx<'a> {
    store: &'a SqliteStore,
    conn: Conn<'a>,
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

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Text(Some(text)) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            Value::Int(Some(n)) => ToSqlOutput::Borrowed(ValueRef::Integer(*n)),
            Value::Text(None) | Value::Int(None) => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Time(time) => ToSqlOutput::from(rows::time_text(*time)),
        })
    }
}

impl Columns for rusqlite::Row<'_> {
    fn text(&self, index: usize) -> Result<Option<String>, RowError> {
        self.get(index).map_err(|e| RowError(e.to_string()))
    }

    fn int(&self, index: usize) -> Result<Option<i64>, RowError> {
        self.get(index).map_err(|e| RowError(e.to_string()))
    }

    fn time(&self, index: usize) -> Result<OffsetDateTime, RowError> {
        let text: String = self.get(index).map_err(|e| RowError(e.to_string()))?;
        rows::parse_time(&text)
    }
}

/// Why a statement failed: SQLite's error, or a row that did not convert.
enum Failed {
    Sqlite(rusqlite::Error),
    Row(RowError),
}

impl From<rusqlite::Error> for Failed {
    fn from(error: rusqlite::Error) -> Failed {
        Failed::Sqlite(error)
    }
}

impl SqliteTx<'_> {
    fn failed(&self, operation: &dyn std::fmt::Display, failed: Failed) -> Error {
        match failed {
            Failed::Sqlite(error) => self.store.error(operation, error),
            Failed::Row(error) => Error::Store {
                registry: self.store.describe.clone(),
                operation: operation.to_string(),
                kind: StoreFailure::Failed,
                source: Box::new(error),
            },
        }
    }
}

impl Sql for SqliteTx<'_> {
    fn query(
        &mut self,
        operation: &dyn std::fmt::Display,
        sql: &str,
        params: &[Value],
        row: &mut dyn FnMut(&dyn Columns) -> Result<(), RowError>,
    ) -> Result<(), Error> {
        let mut run = || -> Result<(), Failed> {
            let mut statement = self.conn.prepare_cached(sql)?;
            let mut rows = statement.query(rusqlite::params_from_iter(params))?;
            while let Some(found) = rows.next()? {
                row(found).map_err(Failed::Row)?;
            }
            Ok(())
        };
        run().map_err(|failed| self.failed(operation, failed))
    }

    fn execute(
        &mut self,
        operation: &dyn std::fmt::Display,
        sql: &str,
        params: &[Value],
    ) -> Result<u64, Error> {
        let run = || -> Result<u64, Failed> {
            let mut statement = self.conn.prepare_cached(sql)?;
            let changed = statement.execute(rusqlite::params_from_iter(params))?;
            Ok(u64::try_from(changed).unwrap_or(u64::MAX))
        };
        run().map_err(|failed| self.failed(operation, failed))
    }
}

impl SqlTx for SqliteTx<'_> {
    fn describe(&self) -> &str {
        &self.store.describe
    }

    fn lock(&mut self, _key: &str, _operation: &dyn std::fmt::Display) -> Result<(), Error> {
        // `BEGIN IMMEDIATE` already holds the database's write lock.
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), Error> {
        self.conn
            .execute_batch("COMMIT")
            .map_err(|e| self.store.error("committing", e))?;
        self.finished = true;
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests;
