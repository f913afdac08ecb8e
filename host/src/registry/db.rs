//! `registry.db`: the SQLite schema, its migrations, and every statement the registry runs.
//!
//! Writers take SQLite's write lock up front (`BEGIN IMMEDIATE`), so two processes publishing
//! to one root serialize: each reads the latest version and inserts the next one inside the
//! same transaction, which keeps versions gap-free and `(hook, digest)` unique. Releases,
//! runs and batches are append-only, enforced by triggers, not just by convention. Reads that
//! must agree with each other (a batch's snapshot of live releases) share one read
//! transaction: in WAL mode it sees one committed state from its first read to its end.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::{
    BatchRecorded, HookSummary, LiveMove, NewBatch, Release, ReleaseLimits, StoredBatch, StoredRun,
};
use crate::contract::Contract;
use crate::error::Error;
use crate::evolution::{Evolution, classify};
use crate::provenance::{RunRecord, now_rfc3339};

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
}

/// What recording a release did.
#[derive(Debug)]
pub(crate) struct Recorded {
    pub release: Release,
    pub created: bool,
    pub evolution: Evolution,
    pub previous_live: Option<u32>,
}

/// The open database.
#[derive(Debug)]
pub(crate) struct Db {
    path: PathBuf,
    conn: Connection,
}

impl Db {
    /// Opens (creating if needed) the database and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Db, Error> {
        let fail = failing(path);
        let conn = Connection::open(path).map_err(fail)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
        // WAL lets readers work while a writer commits; FULL makes every commit durable,
        // which an append-only record of runs needs more than it needs speed.
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
            .map_err(fail)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(fail)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(fail)?;
        let mut db = Db {
            path: path.to_owned(),
            conn,
        };
        db.migrate_to(SCHEMA_VERSION)?;
        Ok(db)
    }

    /// Creates a new database with only the first `version` migrations applied: a registry as
    /// an older host left it.
    #[cfg(test)]
    pub fn create_at_version(path: &Path, version: u32) -> Result<Db, Error> {
        let conn = Connection::open(path).map_err(failing(path))?;
        let mut db = Db {
            path: path.to_owned(),
            conn,
        };
        db.migrate_to(version)?;
        Ok(db)
    }

    fn fail(&self, source: rusqlite::Error) -> Error {
        failing(&self.path)(source)
    }

    /// Runs a (cached) query and maps every row.
    fn query_all<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, Error> {
        let mut statement = self.conn.prepare_cached(sql).map_err(|e| self.fail(e))?;
        let rows = statement.query_map(params, map).map_err(|e| self.fail(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.fail(e))
    }

    /// Applies the migrations after the database's version, up to `target`.
    fn migrate_to(&mut self, target: u32) -> Result<(), Error> {
        let fail = failing(&self.path);
        // The common case, an up-to-date schema, needs no write lock.
        let current: u32 = self
            .conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(fail)?;
        if current == target {
            return Ok(());
        }
        // Re-read under the write lock: another process may have migrated meanwhile.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        let found: u32 = tx
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(fail)?;
        if found > SCHEMA_VERSION {
            return Err(Error::RegistryTooNew {
                path: self.path.clone(),
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

    /// The hook's contract, if the hook exists.
    pub fn hook_contract(&self, hook: &str) -> Result<Option<Contract>, Error> {
        self.conn
            .query_row(
                "SELECT contract FROM hooks WHERE name = ?1",
                [hook],
                |row| json_column(row, 0),
            )
            .optional()
            .map_err(|e| self.fail(e))
    }

    /// Records a release, or returns the existing one for the same digest.
    ///
    /// Inside one write transaction: an existing release of the digest is returned unchanged
    /// (and must have the same config and limits); otherwise the contract is classified against
    /// the hook's, a destructive change is refused, and the release gets the next version and
    /// the live pointer.
    pub fn record_release(&mut self, new: NewRelease) -> Result<Recorded, Error> {
        let fail = failing(&self.path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        let existing = tx
            .query_row(
                &format!("{RELEASE_SELECT} WHERE r.hook = ?1 AND r.digest = ?2"),
                params![new.hook, new.digest],
                release_from_row,
            )
            .optional()
            .map_err(fail)?;
        if let Some(release) = existing {
            let what = match (release.config != new.config, release.limits != new.limits) {
                (false, false) => None,
                (true, false) => Some("config"),
                (false, true) => Some("limits"),
                (true, true) => Some("config and limits"),
            };
            if let Some(what) = what {
                return Err(Error::ReleaseConflict {
                    hook: release.hook,
                    version: release.version,
                    digest: release.digest,
                    what,
                });
            }
            return Ok(Recorded {
                release,
                created: false,
                evolution: Evolution::Identical,
                previous_live: None,
            });
        }
        let hook: Option<(Contract, u32)> = tx
            .query_row(
                "SELECT contract, live_version FROM hooks WHERE name = ?1",
                [&new.hook],
                |row| Ok((json_column(row, 0)?, row.get(1)?)),
            )
            .optional()
            .map_err(fail)?;
        let now = now_rfc3339();
        let contract_json = serde_json::to_string(&new.contract).expect("contracts serialize");
        let (evolution, previous_live) = match &hook {
            Some((current, live)) => {
                let evolution = classify(current, &new.contract);
                if let Evolution::Destructive { changes } = evolution {
                    return Err(Error::ContractChanged {
                        hook: new.hook,
                        origin: new.origin,
                        changes,
                    });
                }
                (evolution, Some(*live))
            }
            None => {
                tx.execute(
                    "INSERT INTO hooks (name, contract, contract_digest, live_version, created_at)
                     VALUES (?1, ?2, ?3, 0, ?4)",
                    params![new.hook, contract_json, new.contract.digest(), now],
                )
                .map_err(fail)?;
                (Evolution::Identical, None)
            }
        };
        let version: u32 = tx
            .query_row(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM releases WHERE hook = ?1",
                [&new.hook],
                |row| row.get(0),
            )
            .map_err(fail)?;
        tx.execute(
            "INSERT INTO releases (hook, version, digest, size, contract, contract_digest, config,
                 config_digest, fuel_per_record, memory_bytes, timeout_ms, source_ref, built_by,
                 created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                new.hook,
                version,
                new.digest,
                new.size as i64,
                contract_json,
                new.contract.digest(),
                new.config,
                crate::digest::sha256_digest(new.config.as_bytes()),
                new.limits.fuel_per_record as i64,
                new.limits.memory_bytes as i64,
                new.limits.timeout_ms as i64,
                new.source_ref,
                new.built_by,
                now,
            ],
        )
        .map_err(fail)?;
        // Identical and additive contracts both become the hook's: an additive one is a
        // superset, and an identical one may carry newer descriptions or column order.
        tx.execute(
            "UPDATE hooks SET contract = ?2, contract_digest = ?3, live_version = ?4
             WHERE name = ?1",
            params![new.hook, contract_json, new.contract.digest(), version],
        )
        .map_err(fail)?;
        tx.execute(
            "INSERT INTO live_moves (hook, from_version, to_version, cause, moved_at)
             VALUES (?1, ?2, ?3, 'publish', ?4)",
            params![new.hook, previous_live, version, now],
        )
        .map_err(fail)?;
        let release = tx
            .query_row(
                &format!("{RELEASE_SELECT} WHERE r.hook = ?1 AND r.version = ?2"),
                params![new.hook, version],
                release_from_row,
            )
            .map_err(fail)?;
        tx.commit().map_err(fail)?;
        Ok(Recorded {
            release,
            created: true,
            evolution,
            previous_live,
        })
    }

    /// Every hook, by name.
    pub fn hooks(&self) -> Result<Vec<HookSummary>, Error> {
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
    }

    /// The hook's live and latest versions, if it exists.
    #[cfg(test)]
    pub fn versions(&self, hook: &str) -> Result<Option<(u32, u32)>, Error> {
        self.conn
            .query_row(VERSIONS_SELECT, [hook], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()
            .map_err(|e| self.fail(e))
    }

    /// Release `version` of each hook, or its live release when `version` is `None`, in
    /// order, all inside one read transaction: the answers (pointers and `live` flags
    /// included) agree with one committed state, whatever writers do meanwhile.
    pub fn lookup_all(&mut self, wanted: &[(&str, Option<u32>)]) -> Result<Vec<Lookup>, Error> {
        let fail = failing(&self.path);
        // Deferred: the read snapshot starts at the first SELECT and holds until the end, and
        // no write lock is taken, so a snapshot neither waits for nor blocks a publisher.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(fail)?;
        let found = wanted
            .iter()
            .map(|&(hook, version)| lookup(&tx, hook, version))
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(fail)?;
        tx.commit().map_err(fail)?;
        Ok(found)
    }

    /// Every release of a hook, oldest first.
    pub fn releases(&self, hook: &str) -> Result<Vec<Release>, Error> {
        self.query_all(
            &format!("{RELEASE_SELECT} WHERE r.hook = ?1 ORDER BY r.version"),
            [hook],
            release_from_row,
        )
    }

    /// Every move of a hook's live pointer, oldest first.
    pub fn live_moves(&self, hook: &str) -> Result<Vec<LiveMove>, Error> {
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
    }

    /// Points the hook's live pointer at `version`, which must exist; returns the version it
    /// pointed at before. Moving it to where it already is changes nothing and records nothing.
    pub fn set_live(&mut self, hook: &str, version: u32) -> Result<Option<u32>, Error> {
        let fail = failing(&self.path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        let moved = move_live(&tx, &self.path, hook, version)?;
        tx.commit().map_err(fail)?;
        Ok(moved)
    }

    /// [`Db::set_live`] for several hooks in one write transaction: readers see all of the
    /// moves or none.
    #[cfg(test)]
    pub fn set_live_together(&mut self, moves: &[(&str, u32)]) -> Result<(), Error> {
        let fail = failing(&self.path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        for &(hook, version) in moves {
            move_live(&tx, &self.path, hook, version)?;
        }
        tx.commit().map_err(fail)
    }

    /// Appends a run.
    pub fn record_run(
        &mut self,
        record: &RunRecord,
        config: &str,
        out_dir: Option<&str>,
    ) -> Result<(), Error> {
        insert_run(&self.conn, record, config, out_dir, &now_rfc3339()).map_err(|e| self.fail(e))
    }

    /// Records a batch's runs and, when it has an idempotency key, the batch, in one write
    /// transaction: all of it or none.
    ///
    /// If the key was already recorded for the same snapshot, nothing is written and that
    /// batch is returned. The check and the inserts share the write lock, so of two batches
    /// racing with one key and snapshot, exactly one is recorded.
    pub fn record_batch(&mut self, batch: &NewBatch<'_>) -> Result<BatchRecorded, Error> {
        let fail = failing(&self.path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        if let Some(key) = batch.idempotency_key
            && let Some(existing) = batch_by_key(&tx, key, batch.snapshot_digest).map_err(fail)?
        {
            return Ok(BatchRecorded::Existing(existing));
        }
        // One time for the whole batch: its runs and its row are recorded by one commit.
        let now = now_rfc3339();
        for run in batch.runs {
            insert_run(&tx, run.record, run.config, run.out_dir, &now).map_err(fail)?;
        }
        if let Some(key) = batch.idempotency_key {
            let run_ids: Vec<&str> = batch
                .runs
                .iter()
                .map(|run| run.record.run_id.as_str())
                .collect();
            tx.execute(
                "INSERT INTO batches (batch_id, idempotency_key, snapshot_digest, run_ids, summary,
                     recorded_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    batch.batch_id,
                    key,
                    batch.snapshot_digest,
                    serde_json::to_string(&run_ids).expect("strings serialize"),
                    serde_json::to_string(batch.summary).expect("JSON values serialize"),
                    now,
                ],
            )
            .map_err(fail)?;
        }
        tx.commit().map_err(fail)?;
        Ok(BatchRecorded::Recorded)
    }

    /// The batch recorded with this idempotency key and snapshot, if any.
    pub fn batch_by_key(
        &self,
        key: &str,
        snapshot_digest: &str,
    ) -> Result<Option<StoredBatch>, Error> {
        batch_by_key(&self.conn, key, snapshot_digest).map_err(|e| self.fail(e))
    }

    /// The newest runs first, of one hook or of all.
    pub fn runs(&self, hook: Option<&str>, limit: usize) -> Result<Vec<StoredRun>, Error> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.query_all(
            &format!("{RUN_SELECT} WHERE ?1 IS NULL OR hook = ?1 ORDER BY seq DESC LIMIT ?2"),
            params![hook, limit],
            run_from_row,
        )
    }

    /// The run with this id, or the one run whose id starts with it.
    pub fn run(&self, id: &str) -> Result<StoredRun, Error> {
        let mut found = self.query_all(
            &format!(
                "{RUN_SELECT} WHERE run_id = ?1
                 OR (length(?1) >= 4 AND substr(run_id, 1, length(?1)) = ?1)
                 ORDER BY run_id = ?1 DESC LIMIT 2"
            ),
            [id],
            run_from_row,
        )?;
        let exact = found.first().is_some_and(|run| run.record.run_id == id);
        match found.len() {
            1 => Ok(found.remove(0)),
            _ if exact => Ok(found.remove(0)),
            0 => Err(Error::RunNotFound {
                run_id: id.to_owned(),
                matches: 0,
            }),
            _ => {
                let matches: i64 = self
                    .conn
                    .query_row(
                        "SELECT COUNT(*) FROM runs WHERE substr(run_id, 1, length(?1)) = ?1",
                        [id],
                        |row| row.get(0),
                    )
                    .map_err(|e| self.fail(e))?;
                Err(Error::RunNotFound {
                    run_id: id.to_owned(),
                    matches: matches as usize,
                })
            }
        }
    }
}

/// Turns a SQLite error into [`Error::Registry`] naming the database file.
fn failing(path: &Path) -> impl Fn(rusqlite::Error) -> Error + Copy + '_ {
    move |source| Error::Registry {
        path: path.to_owned(),
        source,
    }
}

/// What looking up a release found: the release, or what is missing.
pub(crate) type Lookup = Result<Release, Missing>;

/// Why a lookup found no release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Missing {
    /// There is no hook of that name.
    Hook,
    /// The hook has no release `version`; its newest is `latest`.
    Release { version: u32, latest: u32 },
}

/// Release `version` of `hook`, or its live release; on a connection or inside a transaction.
fn lookup(conn: &Connection, hook: &str, version: Option<u32>) -> rusqlite::Result<Lookup> {
    let Some((live, latest)) = conn
        .query_row(VERSIONS_SELECT, [hook], |row| {
            Ok((row.get::<_, u32>(0)?, row.get::<_, u32>(1)?))
        })
        .optional()?
    else {
        return Ok(Err(Missing::Hook));
    };
    let version = version.unwrap_or(live);
    let release = conn
        .query_row(
            &format!("{RELEASE_SELECT} WHERE r.hook = ?1 AND r.version = ?2"),
            params![hook, version],
            release_from_row,
        )
        .optional()?;
    Ok(release.ok_or(Missing::Release { version, latest }))
}

/// Moves `hook`'s live pointer inside the write transaction `tx` and records the move; returns
/// where it was, or `None` if it was already on `version`.
fn move_live(
    tx: &rusqlite::Transaction<'_>,
    db_path: &Path,
    hook: &str,
    version: u32,
) -> Result<Option<u32>, Error> {
    let fail = failing(db_path);
    let (live, latest): (u32, u32) = tx
        .query_row(VERSIONS_SELECT, [hook], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()
        .map_err(fail)?
        .ok_or_else(|| Error::HookNotFound {
            name: hook.to_owned(),
            root: db_path.parent().map(Path::to_owned).unwrap_or_default(),
        })?;
    if version == 0 || version > latest {
        return Err(Error::ReleaseNotFound {
            name: hook.to_owned(),
            version,
            latest,
        });
    }
    if live == version {
        return Ok(None);
    }
    tx.execute(
        "UPDATE hooks SET live_version = ?2 WHERE name = ?1",
        params![hook, version],
    )
    .map_err(fail)?;
    tx.execute(
        "INSERT INTO live_moves (hook, from_version, to_version, cause, moved_at)
         VALUES (?1, ?2, ?3, 'live', ?4)",
        params![hook, live, version, now_rfc3339()],
    )
    .map_err(fail)?;
    Ok(Some(live))
}

/// Inserts one run; on a connection (a write on its own) or inside a batch's transaction.
fn insert_run(
    conn: &Connection,
    record: &RunRecord,
    config: &str,
    out_dir: Option<&str>,
    recorded_at: &str,
) -> rusqlite::Result<()> {
    let json = serde_json::to_string(record).expect("run records serialize");
    let status = serde_json::to_value(record.status).expect("statuses serialize");
    let c = record.records;
    conn.prepare_cached(
        "INSERT INTO runs (run_id, hook, version, digest, status, started_at, finished_at,
             total, passed, rejected, errored, config, out_dir, replay_of, recorded_at, record)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?
    .execute(params![
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
        config,
        out_dir,
        record.replay_of,
        recorded_at,
        json,
    ])?;
    Ok(())
}

fn batch_by_key(
    conn: &Connection,
    key: &str,
    snapshot_digest: &str,
) -> rusqlite::Result<Option<StoredBatch>> {
    conn.query_row(
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
    .optional()
}

/// A hook's live and latest versions.
const VERSIONS_SELECT: &str = "SELECT h.live_version, MAX(r.version) FROM hooks h
    JOIN releases r ON r.hook = h.name WHERE h.name = ?1 GROUP BY h.name";

const RELEASE_SELECT: &str = "SELECT r.hook, r.version, r.digest, r.size, r.contract,
    r.contract_digest, r.config, r.config_digest, r.fuel_per_record, r.memory_bytes,
    r.timeout_ms, r.source_ref, r.built_by, r.created_at, h.live_version = r.version
    FROM releases r JOIN hooks h ON h.name = r.hook";

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
        live: row.get(14)?,
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
