//! [`PostgresStore`]: the registry's records in one PostgreSQL database shared by a fleet, the
//! second [`Store`]; and [`PgBlobStore`], component bytes in the same database, which
//! [`CachedBlobStore`] reads through a local directory on each machine.
//!
//! # How it plugs in
//!
//! The store owns a small tokio runtime (one worker thread, which drives the connections) and
//! a deadpool-postgres pool, and implements the synchronous [`Store`] methods by `block_on`
//! on that runtime (see [`store`](super::store)): every registry call is made off async worker
//! threads. A transaction holds one pooled connection for its whole life; dropped uncommitted,
//! it sends `ROLLBACK`, and a connection whose rollback failed is taken out of the pool rather
//! than reused half-done.
//!
//! # What each promise rests on
//!
//! - **Gap-free versions, one release per digest**, with any number of publishers on any
//!   number of machines: [`WriteTx::lock_hook`] takes `pg_advisory_xact_lock` on a hash of the
//!   hook's name before the registry reads the hook. A row lock (`SELECT … FOR UPDATE`) cannot
//!   lock a hook that has no row yet, and two first publishers would then both insert v1; the
//!   advisory lock exists whether or not the row does, and PostgreSQL holds it until the
//!   transaction ends, so the next publisher reads what the previous one committed. A hash
//!   collision between two names only serializes them. `PRIMARY KEY (hook, version)` and
//!   `UNIQUE (hook, digest)` remain the last word.
//! - **Batch keys**: the same advisory lock, on a hash of key and snapshot.
//! - **Append-only history**: `BEFORE UPDATE OR DELETE` row triggers and `BEFORE TRUNCATE`
//!   statement triggers raise on releases, live moves, runs and batches.
//! - **Snapshots**: read transactions are `REPEATABLE READ READ ONLY`: every statement sees the
//!   state of the first one.
//! - **Migrations once**: [`PostgresStore::open`] takes the session-level `pg_advisory_lock`
//!   [`MIGRATION_LOCK`] before reading the schema's version, so of processes opening a new
//!   database together one migrates and the others then find it done; a database whose version
//!   is newer than [`PG_SCHEMA_VERSION`] is [`Error::RegistryTooNew`].
//! - **Errors that name the server**: [`Error::Store`] with [`Store::describe`] as
//!   `postgres://user@host:port/db` — never the password, which is not part of it. A server
//!   that cannot be reached, drops the connection or is shutting down is
//!   [`StoreFailure::Unavailable`]; a pooled connection found dead when a transaction begins
//!   is replaced once, so the first call after a server comes back succeeds.
//! - **Never a panic inside a runtime**: the store blocks its calling thread on its own
//!   runtime, which tokio forbids on a thread that drives async tasks; there, every call is
//!   [`StoreFailure::InsideAsyncRuntime`] instead (call through
//!   [`AsyncRegistry`](super::AsyncRegistry) or [`blocking`](super::blocking)).

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use time::OffsetDateTime;
use tokio_postgres::config::Host;
use tokio_postgres::types::{IsNull, ToSql, Type};
use tokio_postgres::{NoTls, Row};

use super::async_registry::may_block;
use super::blobs::{BlobStore, DirBlobStore};
use super::rows::{Columns, RowError, Value};
use super::sql::{self, Sql, SqlTx};
use super::store::{BatchClaim, ClaimStore, Claimed, ReadTx, Store, WriteTx};
use crate::digest::{hex_of, sha256_digest};
use crate::error::{Error, StoreFailure};

/// The most connections one store keeps open. Each transaction holds one for its life, so this
/// bounds the transactions one process runs at once; more wait for a free connection.
pub const DEFAULT_POOL_SIZE: usize = 8;

/// How long connecting to the server may take before it is an error. By default 10 s; a URL's
/// own `connect_timeout` wins.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a transaction waits for a free pooled connection before it is an error.
pub const POOL_WAIT: Duration = Duration::from_secs(60);

/// The key of the session-level advisory lock held while the schema is checked and migrated.
pub const MIGRATION_LOCK: i64 = 0x686f_6f6b_686f_7374; // "hookhost"

/// The schema, one migration per version; `hookhost_schema.version` says how many have been
/// applied. Append new migrations; never edit an applied one.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE FUNCTION hookhost_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION '%', TG_ARGV[0]; END $$;

CREATE TABLE hooks (
    name            TEXT PRIMARY KEY,
    contract        TEXT NOT NULL,
    contract_digest TEXT NOT NULL,
    live_version    BIGINT NOT NULL,
    created_at      TEXT NOT NULL
);

CREATE TABLE releases (
    hook            TEXT NOT NULL REFERENCES hooks(name),
    version         BIGINT NOT NULL CHECK (version >= 1),
    digest          TEXT NOT NULL,
    size            BIGINT NOT NULL,
    contract        TEXT NOT NULL,
    contract_digest TEXT NOT NULL,
    config          TEXT NOT NULL,
    config_digest   TEXT NOT NULL,
    fuel_per_record BIGINT NOT NULL,
    memory_bytes    BIGINT NOT NULL,
    timeout_ms      BIGINT NOT NULL,
    source_ref      TEXT,
    built_by        TEXT,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (hook, version),
    UNIQUE (hook, digest)
);
CREATE TRIGGER releases_are_immutable BEFORE UPDATE OR DELETE ON releases
    FOR EACH ROW EXECUTE FUNCTION hookhost_refuse('releases are immutable and never deleted');
CREATE TRIGGER releases_are_not_truncated BEFORE TRUNCATE ON releases
    FOR EACH STATEMENT EXECUTE FUNCTION hookhost_refuse('releases are never deleted');

CREATE TABLE live_moves (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hook         TEXT NOT NULL REFERENCES hooks(name),
    from_version BIGINT,
    to_version   BIGINT NOT NULL,
    cause        TEXT NOT NULL CHECK (cause IN ('publish', 'live')),
    moved_at     TEXT NOT NULL
);
CREATE TRIGGER live_moves_are_append_only BEFORE UPDATE OR DELETE ON live_moves
    FOR EACH ROW EXECUTE FUNCTION hookhost_refuse('the live pointer history is append-only');
CREATE TRIGGER live_moves_are_not_truncated BEFORE TRUNCATE ON live_moves
    FOR EACH STATEMENT EXECUTE FUNCTION hookhost_refuse('the live pointer history is append-only');

CREATE TABLE runs (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id      TEXT NOT NULL UNIQUE,
    hook        TEXT,
    version     BIGINT,
    digest      TEXT NOT NULL,
    status      TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    total       BIGINT NOT NULL,
    passed      BIGINT NOT NULL,
    rejected    BIGINT NOT NULL,
    errored     BIGINT NOT NULL,
    config      TEXT NOT NULL,
    out_dir     TEXT,
    replay_of   TEXT,
    recorded_at TEXT NOT NULL,
    -- Where it ran: the worker's identity, when run.json names one.
    worker      TEXT,
    record      TEXT NOT NULL
);
CREATE INDEX runs_by_hook ON runs (hook, seq);
CREATE TRIGGER runs_are_append_only BEFORE UPDATE OR DELETE ON runs
    FOR EACH ROW EXECUTE FUNCTION hookhost_refuse('runs are append-only');
CREATE TRIGGER runs_are_not_truncated BEFORE TRUNCATE ON runs
    FOR EACH STATEMENT EXECUTE FUNCTION hookhost_refuse('runs are append-only');

CREATE TABLE batches (
    batch_id        TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL,
    snapshot_digest TEXT NOT NULL,
    run_ids         TEXT NOT NULL CHECK (json_typeof(run_ids::json) = 'array'),
    summary         TEXT NOT NULL CHECK (summary::json IS NOT NULL),
    recorded_at     TEXT NOT NULL,
    UNIQUE (idempotency_key, snapshot_digest)
);
CREATE TRIGGER batches_are_append_only BEFORE UPDATE OR DELETE ON batches
    FOR EACH ROW EXECUTE FUNCTION hookhost_refuse('batches are append-only');
CREATE TRIGGER batches_are_not_truncated BEFORE TRUNCATE ON batches
    FOR EACH STATEMENT EXECUTE FUNCTION hookhost_refuse('batches are append-only');

-- Component bytes, by digest. Not append-only: a row whose bytes no longer hash to its digest
-- is repaired by publishing the right bytes again.
CREATE TABLE blobs (
    digest TEXT PRIMARY KEY CHECK (digest ~ '^sha256:[0-9a-f]{64}$'),
    size   BIGINT NOT NULL,
    bytes  BYTEA NOT NULL
);
"#,
    r#"
-- Batch claims: the worker running a key's batch, under a lease it renews. Not history: a
-- claim is deleted when its batch ends (a succeeded batch then holds its key by its row in
-- `batches`), and an expired one is taken over by the next worker.
CREATE TABLE claims (
    idempotency_key TEXT NOT NULL,
    snapshot_digest TEXT NOT NULL,
    token           TEXT NOT NULL,
    worker          TEXT NOT NULL,
    claimed_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (idempotency_key, snapshot_digest)
);
"#,
    r#"
-- Feature tables (issue 14). Their rows' `run_id uuid` references a run: `run_uuid` is the
-- run id as a uuid (every run id hookhost makes is a UUIDv7; another id has none), unique so
-- that a foreign key can point at it.
ALTER TABLE runs ADD COLUMN run_uuid UUID GENERATED ALWAYS AS (
    CASE WHEN run_id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
         THEN run_id::uuid END
) STORED;
ALTER TABLE runs ADD CONSTRAINT runs_run_uuid_unique UNIQUE (run_uuid);

-- Each feature table's contract: what its columns were made from, grown by additive
-- releases, and what a hook's contract is classified against before its rows may go in.
CREATE TABLE feature_tables (
    schema_name TEXT NOT NULL,
    table_name  TEXT NOT NULL,
    contract    TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (schema_name, table_name)
);

-- This registry's identity: a client handed a database URL asks it, to know whether that
-- database is this registry's own (URLs that differ can name one database).
ALTER TABLE hookhost_schema ADD COLUMN registry_id UUID NOT NULL DEFAULT gen_random_uuid();
"#,
    r#"
-- Who did it (issue 26): the actor of each release, live move and recorded run, as JSON
-- ({"kind": "local", …} or {"kind": "token", …}), and a live move's reason. Rows written
-- before have none (null: not known). Adding a column writes no row: the append-only
-- triggers stay as they are.
ALTER TABLE releases ADD COLUMN published_by TEXT
    CHECK (published_by IS NULL OR published_by::json IS NOT NULL);
ALTER TABLE live_moves ADD COLUMN moved_by TEXT
    CHECK (moved_by IS NULL OR moved_by::json IS NOT NULL),
    ADD COLUMN reason TEXT;
ALTER TABLE runs ADD COLUMN recorded_by TEXT
    CHECK (recorded_by IS NULL OR recorded_by::json IS NOT NULL);

-- Times as times: the RFC 3339 text every time column held, as timestamptz.
ALTER TABLE hooks ALTER COLUMN created_at TYPE timestamptz USING created_at::timestamptz;
ALTER TABLE releases ALTER COLUMN created_at TYPE timestamptz USING created_at::timestamptz;
ALTER TABLE live_moves ALTER COLUMN moved_at TYPE timestamptz USING moved_at::timestamptz;
ALTER TABLE runs ALTER COLUMN started_at TYPE timestamptz USING started_at::timestamptz,
    ALTER COLUMN finished_at TYPE timestamptz USING finished_at::timestamptz,
    ALTER COLUMN recorded_at TYPE timestamptz USING recorded_at::timestamptz;
ALTER TABLE batches ALTER COLUMN recorded_at TYPE timestamptz USING recorded_at::timestamptz;
ALTER TABLE feature_tables ALTER COLUMN created_at TYPE timestamptz USING created_at::timestamptz,
    ALTER COLUMN updated_at TYPE timestamptz USING updated_at::timestamptz;

-- Pages of runs, newest first, by status or by worker (by hook: runs_by_hook).
CREATE INDEX runs_by_status ON runs (status, seq);
CREATE INDEX runs_by_worker ON runs (worker, seq);
"#,
];

/// The channel a released claim is announced on (`NOTIFY`), waking the workers waiting for
/// a key.
pub const CLAIMS_CHANNEL: &str = "hookhost_claims";

/// The newest schema version this host knows for PostgreSQL.
pub const PG_SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// A backend failure as the source of [`Error::Store`]: the server's own message (severity,
/// text, detail) when it sent one, else what the client saw; and whether the server was out
/// of reach ([`StoreFailure::Unavailable`]).
#[derive(Debug)]
pub(super) struct PgError {
    text: String,
    unavailable: bool,
}

impl PgError {
    /// A failure with only a message (not a lost server).
    pub(super) fn new(text: impl Into<String>) -> PgError {
        PgError {
            text: text.into(),
            unavailable: false,
        }
    }
}

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for PgError {}

/// Whether `code` says the server is out of reach for now: a connection exception (class
/// 08), a server shutting down or starting (57P01-57P03), or out of connections (53300).
fn unavailable_state(code: &tokio_postgres::error::SqlState) -> bool {
    let code = code.code();
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
}

impl From<&tokio_postgres::Error> for PgError {
    fn from(error: &tokio_postgres::Error) -> PgError {
        match error.as_db_error() {
            Some(db) => PgError {
                text: match db.detail() {
                    Some(detail) => format!("{}: {} ({detail})", db.severity(), db.message()),
                    None => format!("{}: {}", db.severity(), db.message()),
                },
                unavailable: unavailable_state(db.code()),
            },
            None => {
                // The client's Display leaves out the cause (refused, reset, timed out).
                let mut text = error.to_string();
                let mut unavailable = error.is_closed();
                let mut source = std::error::Error::source(error);
                while let Some(cause) = source {
                    // Connecting or talking to the server failed underneath.
                    unavailable |= cause.is::<std::io::Error>();
                    let cause_text = cause.to_string();
                    if !text.contains(&cause_text) {
                        text = format!("{text}: {cause_text}");
                    }
                    source = cause.source();
                }
                PgError { text, unavailable }
            }
        }
    }
}

pub(super) fn pg_error(
    describe: &str,
    operation: impl std::fmt::Display,
    source: impl Into<PgError>,
) -> Error {
    let source = source.into();
    Error::Store {
        registry: describe.to_owned(),
        operation: operation.to_string(),
        kind: match source.unavailable {
            true => StoreFailure::Unavailable,
            false => StoreFailure::Failed,
        },
        source: Box::new(source),
    }
}

impl From<deadpool_postgres::PoolError> for PgError {
    fn from(error: deadpool_postgres::PoolError) -> PgError {
        use deadpool_postgres::PoolError;
        match &error {
            PoolError::Backend(e) => PgError::from(e),
            // Waiting for a connection, or for a new one to connect, ran out of time.
            PoolError::Timeout(_) | PoolError::Closed => PgError {
                text: error.to_string(),
                unavailable: true,
            },
            other => PgError::new(other.to_string()),
        }
    }
}

impl From<tokio_postgres::Error> for PgError {
    fn from(error: tokio_postgres::Error) -> PgError {
        PgError::from(&error)
    }
}

/// `postgres://user@host:port/db` for a parsed URL: what messages name, never the password.
pub fn describe_config(config: &tokio_postgres::Config) -> String {
    let user = config.get_user().unwrap_or("");
    let db = config.get_dbname().unwrap_or(user);
    let ports = config.get_ports();
    let mut hosts = Vec::new();
    let mut socket_dirs = Vec::new();
    for (index, host) in config.get_hosts().iter().enumerate() {
        let port = ports.get(index).or(ports.first()).copied().unwrap_or(5432);
        match host {
            Host::Tcp(name) => hosts.push(format!("{name}:{port}")),
            Host::Unix(dir) => socket_dirs.push(dir.display().to_string()),
        }
    }
    let mut text = format!("postgres://{user}@{}/{db}", hosts.join(","));
    if !socket_dirs.is_empty() {
        text.push_str(&format!("?host={}", socket_dirs.join(",")));
    }
    text
}

/// A parsed URL and its description; an unparseable URL is [`Error::Store`] naming it with its
/// password (if any) left out.
fn parse_url(url: &str) -> Result<(tokio_postgres::Config, String), Error> {
    match tokio_postgres::Config::from_str(url) {
        Ok(mut config) => {
            if config.get_connect_timeout().is_none() {
                config.connect_timeout(CONNECT_TIMEOUT);
            }
            let describe = describe_config(&config);
            Ok((config, describe))
        }
        Err(error) => Err(pg_error(
            &redact(url),
            "parsing the registry URL",
            PgError::new(error.to_string()),
        )),
    }
}

/// `url` with whatever sits between `user:` and `@` replaced, for a URL that did not parse.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(a registry URL)".into();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{host}")
        }
        None => url.to_owned(),
    }
    .split('?')
    .next()
    .unwrap_or("")
    .to_owned()
}

/// A runtime and a pool to one database: what [`PostgresStore`] and [`PgBlobStore`] share.
#[derive(Debug)]
pub struct PgPool {
    describe: String,
    config: tokio_postgres::Config,
    // Bumped by every `NOTIFY` on [`CLAIMS_CHANNEL`], by one listening connection started on
    // first need; `None` until then, or after that connection was lost.
    // The listening client is kept beside it: dropping it would close its connection.
    #[allow(clippy::type_complexity)]
    released: std::sync::Mutex<Option<(tokio_postgres::Client, tokio::sync::watch::Receiver<u64>)>>,
    // `Option` so that `Drop` can hand it to `shutdown_background`, which (unlike dropping a
    // runtime) is allowed inside an async context, where an embedder may drop its registry.
    runtime: Option<tokio::runtime::Runtime>,
    pool: Pool,
}

impl Drop for PgPool {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl PgPool {
    /// Connects to `url` (libpq style: `postgres://user:password@host:port/db`, or a unix
    /// socket directory as `?host=/dir`) with at most `pool_size` connections. One connection
    /// is made now, so a server that cannot be reached or refuses the login is an error here.
    pub fn connect(url: &str, pool_size: usize) -> Result<PgPool, Error> {
        let (config, describe) = parse_url(url)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("hookhost-postgres")
            .enable_all()
            .build()
            .map_err(|e| {
                pg_error(
                    &describe,
                    "starting its runtime",
                    PgError::new(e.to_string()),
                )
            })?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = {
            // The pool's timers run on the store's own runtime.
            let _entered = runtime.enter();
            Pool::builder(manager)
                .max_size(pool_size.max(1))
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .wait_timeout(Some(POOL_WAIT))
                .create_timeout(Some(CONNECT_TIMEOUT))
                .build()
                .map_err(|e| {
                    pg_error(&describe, "building the pool", PgError::new(e.to_string()))
                })?
        };
        let pool = PgPool {
            describe,
            config,
            released: std::sync::Mutex::new(None),
            runtime: Some(runtime),
            pool,
        };
        drop(pool.get("connecting")?);
        Ok(pool)
    }

    /// The server and database, as messages name them.
    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// Runs `future` to completion on the store's runtime, blocking this thread. Only after
    /// [`PgPool::get`] (or [`PgPool::may_block`]) said this thread may block.
    pub(super) fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as the pool")
            .block_on(future)
    }

    /// Whether this thread may block on the store's runtime; if not,
    /// [`StoreFailure::InsideAsyncRuntime`] for `operation`. Blocking a thread that drives
    /// async tasks would stall them, and tokio panics rather than allow it.
    fn may_block(&self, operation: &str) -> Result<(), Error> {
        if may_block() {
            return Ok(());
        }
        Err(Error::Store {
            registry: self.describe.clone(),
            operation: operation.to_owned(),
            kind: StoreFailure::InsideAsyncRuntime,
            source: "the registry's PostgreSQL store blocks its calling thread, and this thread \
                     drives async tasks; call the registry through \
                     hookhost::registry::AsyncRegistry (or hookhost::registry::blocking)"
                .into(),
        })
    }

    /// A pooled connection (refused on a thread that may not block).
    fn get(&self, operation: &str) -> Result<Object, Error> {
        self.may_block(operation)?;
        self.block_on(self.pool.get())
            .map_err(|e| pg_error(&self.describe, operation, e))
    }

    /// A receiver of claim releases, subscribed now: a release after this call is seen by it.
    /// Starts the listening connection if there is none.
    fn releases(&self) -> Result<tokio::sync::watch::Receiver<u64>, Error> {
        let mut held = self
            .released
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, receiver)) = held.as_ref()
            && receiver.has_changed().is_ok()
        {
            let mut receiver = receiver.clone();
            receiver.mark_unchanged();
            return Ok(receiver);
        }
        let fail =
            |e: tokio_postgres::Error| pg_error(&self.describe, "listening for released claims", e);
        self.may_block("listening for released claims")?;
        let (client, receiver) = self.block_on(async {
            let (client, mut connection) = self.config.connect(NoTls).await.map_err(fail)?;
            let (sender, receiver) = tokio::sync::watch::channel(0u64);
            tokio::spawn(async move {
                // Drives the connection; ends (dropping the sender) when it is lost.
                while let Some(message) =
                    std::future::poll_fn(|cx| connection.poll_message(cx)).await
                {
                    match message {
                        Ok(tokio_postgres::AsyncMessage::Notification(_)) => {
                            sender.send_modify(|n| *n += 1)
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
            });
            client
                .batch_execute(&format!("LISTEN {CLAIMS_CHANNEL}"))
                .await
                .map_err(fail)?;
            Ok::<_, Error>((client, receiver))
        })?;
        *held = Some((client, receiver.clone()));
        Ok(receiver)
    }

    /// Brings the schema up to [`PG_SCHEMA_VERSION`] under [`MIGRATION_LOCK`].
    fn migrate(&self) -> Result<(), Error> {
        self.migrate_to(PG_SCHEMA_VERSION)
    }

    /// Brings the schema up to `target` under [`MIGRATION_LOCK`].
    fn migrate_to(&self, target: u32) -> Result<(), Error> {
        let fail = |e: tokio_postgres::Error| pg_error(&self.describe, "migrating the schema", e);
        let client = self.get("migrating the schema")?;
        self.block_on(async {
            client
                .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
                .await
                .map_err(fail)?;
            let outcome = async {
                client
                    .batch_execute(
                        "CREATE TABLE IF NOT EXISTS hookhost_schema (version BIGINT NOT NULL);
                         INSERT INTO hookhost_schema SELECT 0
                             WHERE NOT EXISTS (SELECT 1 FROM hookhost_schema)",
                    )
                    .await
                    .map_err(fail)?;
                let found: i64 = client
                    .query_one("SELECT version FROM hookhost_schema", &[])
                    .await
                    .map_err(fail)?
                    .get(0);
                let found = u32::try_from(found).unwrap_or(u32::MAX);
                if found > PG_SCHEMA_VERSION {
                    return Err(Error::RegistryTooNew {
                        registry: self.describe.clone(),
                        found,
                        known: PG_SCHEMA_VERSION,
                    });
                }
                let pending = MIGRATIONS[..target as usize].iter().enumerate();
                for (index, migration) in pending.skip(found as usize) {
                    // Each migration and its version bump commit together.
                    let version = index as i64 + 1;
                    client
                        .batch_execute(&format!(
                            "BEGIN; {migration}; UPDATE hookhost_schema SET version = {version}; COMMIT;"
                        ))
                        .await
                        .map_err(fail)?;
                    tracing::info!(version, registry = %self.describe, "registry schema migrated");
                }
                Ok(())
            }
            .await;
            // A failed migration leaves its transaction aborted: end it before unlocking.
            let _ = client.batch_execute("ROLLBACK").await;
            client
                .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
                .await
                .map_err(fail)?;
            outcome
        })
    }
}

/// The registry's records in a PostgreSQL database.
#[derive(Debug)]
pub struct PostgresStore {
    pool: std::sync::Arc<PgPool>,
}

impl PostgresStore {
    /// Connects to `url` (see [`PgPool::connect`]) and brings the schema up to date;
    /// [`Error::RegistryTooNew`] if a newer hookhost migrated it.
    pub fn open(url: &str) -> Result<PostgresStore, Error> {
        PostgresStore::over(std::sync::Arc::new(PgPool::connect(
            url,
            DEFAULT_POOL_SIZE,
        )?))
    }

    /// Creates the schema of a new database with only the first `version` migrations
    /// applied: a registry as an older host left it.
    #[cfg(test)]
    pub(crate) fn create_at_version(url: &str, version: u32) -> Result<(), Error> {
        PgPool::connect(url, 1)?.migrate_to(version)
    }

    /// A store over a pool already connected (shared with a [`PgBlobStore`]); migrates.
    pub fn over(pool: std::sync::Arc<PgPool>) -> Result<PostgresStore, Error> {
        pool.migrate()?;
        Ok(PostgresStore { pool })
    }

    /// The pool, to share with a [`PgBlobStore`].
    pub fn pool(&self) -> &std::sync::Arc<PgPool> {
        &self.pool
    }

    fn begin(&self, begin: &'static str) -> Result<PgTx, Error> {
        PgTx::begin(&self.pool, begin)
    }

    /// Runs `statement` on a connection of its own, outside any registry transaction: for
    /// tests that reach under the registry as someone with direct access could.
    #[cfg(test)]
    pub(crate) fn execute_raw(&self, statement: &str) -> Result<u64, String> {
        let client = self.pool.get("raw").map_err(|e| e.to_string())?;
        self.pool
            .block_on(client.execute(statement, &[]))
            .map_err(|e| PgError::from(e).to_string())
    }
}

/// A transaction on one pooled connection; rolled back when dropped uncommitted. It owns its
/// connection and a handle on the pool, so a feature-table batch can hold one for the whole
/// batch ([`tables`](super::tables)).
pub(super) struct PgTx {
    pool: std::sync::Arc<PgPool>,
    client: Option<Object>,
}

impl std::fmt::Debug for PgTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTx")
            .field("registry", &self.pool.describe)
            .field("open", &self.client.is_some())
            .finish()
    }
}

impl Drop for PgTx {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        if !may_block() {
            // Closing the connection rolls the transaction back on the server.
            drop(Object::take(client));
            return;
        }
        if let Err(error) = self.pool.block_on(client.batch_execute("ROLLBACK")) {
            tracing::warn!(%error, registry = %self.pool.describe,
                "rollback failed; the connection is discarded");
            // Out of the pool, so no later transaction inherits this one's state.
            drop(Object::take(client));
        }
    }
}

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

impl PgTx {
    /// Takes a pooled connection and sends `begin` on it. A pooled connection found closed
    /// (the server went away since it was last used) is dropped and a new one tried, once:
    /// nothing had been sent in it yet.
    pub(super) fn begin(pool: &std::sync::Arc<PgPool>, begin: &str) -> Result<PgTx, Error> {
        let mut retried = false;
        loop {
            let client = pool.get("beginning a transaction")?;
            match pool.block_on(client.batch_execute(begin)) {
                Ok(()) => {
                    return Ok(PgTx {
                        pool: pool.clone(),
                        client: Some(client),
                    });
                }
                Err(e) if e.is_closed() && !retried => {
                    tracing::debug!(registry = %pool.describe, "a pooled connection was closed; \
                        connecting again");
                    drop(Object::take(client));
                    retried = true;
                }
                Err(e) => {
                    return Err(pg_error(
                        &pool.describe,
                        format_args!("beginning a transaction ({begin})"),
                        e,
                    ));
                }
            }
        }
    }

    /// The pool this transaction's connection came from.
    pub(super) fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(super) fn client(&self) -> &Object {
        self.client
            .as_ref()
            .expect("a live transaction has its connection")
    }

    pub(super) fn error(
        &self,
        operation: impl std::fmt::Display,
        source: tokio_postgres::Error,
    ) -> Error {
        pg_error(&self.pool.describe, operation, source)
    }

    fn query(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, tokio_postgres::Error> {
        let client = self.client();
        self.pool.block_on(async {
            let statement = client.prepare_cached(sql).await?;
            client.query(&statement, params).await
        })
    }

    pub(super) fn query_opt(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Option<Row>, tokio_postgres::Error> {
        let client = self.client();
        self.pool.block_on(async {
            let statement = client.prepare_cached(sql).await?;
            client.query_opt(&statement, params).await
        })
    }

    pub(super) fn execute(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<(), tokio_postgres::Error> {
        let client = self.client();
        self.pool.block_on(async {
            let statement = client.prepare_cached(sql).await?;
            client.execute(&statement, params).await.map(drop)
        })
    }

    pub(super) fn advisory_lock(&self, what: &str) -> Result<(), tokio_postgres::Error> {
        self.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[&what],
        )
    }
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Text(text) => text.to_sql(ty, out),
            Value::Int(n) => n.to_sql(ty, out),
            Value::Time(time) => time.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        // Checked per value, by the type inside (`to_sql_checked`).
        true
    }

    fn to_sql_checked(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Text(text) => text.to_sql_checked(ty, out),
            Value::Int(n) => n.to_sql_checked(ty, out),
            Value::Time(time) => time.to_sql_checked(ty, out),
        }
    }
}

impl Columns for Row {
    fn text(&self, index: usize) -> Result<Option<String>, RowError> {
        self.try_get(index).map_err(|e| RowError(e.to_string()))
    }

    fn int(&self, index: usize) -> Result<Option<i64>, RowError> {
        self.try_get(index).map_err(|e| RowError(e.to_string()))
    }

    fn time(&self, index: usize) -> Result<OffsetDateTime, RowError> {
        self.try_get(index).map_err(|e| RowError(e.to_string()))
    }
}

impl PgTx {
    /// Runs a query and maps each row, naming `operation` on failure.
    fn rows<T>(
        &self,
        operation: impl std::fmt::Display,
        sql: &str,
        params: Params<'_>,
        map: impl Fn(&Row) -> Result<T, PgError>,
    ) -> Result<Vec<T>, Error> {
        let rows = self
            .query(sql, params)
            .map_err(|e| self.error(&operation, e))?;
        rows.iter()
            .map(|row| map(row).map_err(|e| pg_error(&self.pool.describe, &operation, e)))
            .collect()
    }

    fn row<T>(
        &self,
        operation: impl std::fmt::Display,
        sql: &str,
        params: Params<'_>,
        map: impl Fn(&Row) -> Result<T, PgError>,
    ) -> Result<Option<T>, Error> {
        Ok(self.rows(operation, sql, params, map)?.into_iter().next())
    }

    /// `params` as PostgreSQL parameters.
    fn bind(params: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
        params.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
    }
}

impl Sql for PgTx {
    fn query(
        &mut self,
        operation: &dyn std::fmt::Display,
        sql: &str,
        params: &[Value],
        row: &mut dyn FnMut(&dyn Columns) -> Result<(), RowError>,
    ) -> Result<(), Error> {
        let rows = PgTx::query(self, &sql::numbered_dollars(sql), &PgTx::bind(params))
            .map_err(|e| self.error(operation, e))?;
        for found in &rows {
            row(found).map_err(|e| pg_error(&self.pool.describe, operation, PgError::new(e.0)))?;
        }
        Ok(())
    }

    fn execute(
        &mut self,
        operation: &dyn std::fmt::Display,
        sql: &str,
        params: &[Value],
    ) -> Result<u64, Error> {
        let sql = sql::numbered_dollars(sql);
        let bound = PgTx::bind(params);
        let client = self.client();
        self.pool
            .block_on(async {
                let statement = client.prepare_cached(&sql).await?;
                client.execute(&statement, &bound).await
            })
            .map_err(|e| self.error(operation, e))
    }
}

impl SqlTx for PgTx {
    fn describe(&self) -> &str {
        &self.pool.describe
    }

    fn lock(&mut self, key: &str, operation: &dyn std::fmt::Display) -> Result<(), Error> {
        self.advisory_lock(key)
            .map_err(|e| self.error(operation, e))
    }

    fn finish(mut self: Box<Self>) -> Result<(), Error> {
        let client = self
            .client
            .take()
            .expect("a live transaction has its connection");
        match self.pool.block_on(client.batch_execute("COMMIT")) {
            Ok(()) => Ok(()),
            Err(e) => {
                // Whether the server committed is unknown: the connection is not reused.
                let error = self.error("committing", e);
                drop(Object::take(client));
                Err(error)
            }
        }
    }
}

impl Store for PostgresStore {
    fn describe(&self) -> &str {
        &self.pool.describe
    }

    fn read(&self) -> Result<Box<dyn ReadTx + '_>, Error> {
        Ok(Box::new(self.begin(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        )?))
    }

    fn write(&self) -> Result<Box<dyn WriteTx + '_>, Error> {
        // READ COMMITTED: every read the registry makes that a decision rests on comes after
        // the advisory lock naming what it reads, so it sees the last holder's commit.
        Ok(Box::new(
            self.begin("BEGIN ISOLATION LEVEL READ COMMITTED")?,
        ))
    }

    fn claims(&self) -> Option<&dyn ClaimStore> {
        Some(self)
    }

    fn feature_tables(
        &self,
        schema: &str,
        url: Option<&str>,
    ) -> Result<std::sync::Arc<dyn crate::sink::FeatureTables>, Error> {
        if let Some(url) = url {
            self.check_same_database(url)?;
        }
        Ok(std::sync::Arc::new(super::tables::PgFeatureTables::new(
            self.pool.clone(),
            schema,
        )?))
    }
}

/// What tells one registry database from another: its name on its server and the registry id
/// its migration drew (`None`: no hookhost registry there).
#[derive(Debug, PartialEq, Eq)]
struct DatabaseIdentity {
    database: String,
    registry_id: Option<String>,
}

async fn database_identity(
    client: &tokio_postgres::Client,
) -> Result<DatabaseIdentity, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT current_database()::text, to_regclass('hookhost_schema') IS NOT NULL",
            &[],
        )
        .await?;
    let database: String = row.get(0);
    let registry_id = match row.get::<_, bool>(1) {
        // A registry too old to have an id is not this one (this one is migrated).
        true => client
            .query_opt("SELECT registry_id::text FROM hookhost_schema", &[])
            .await
            .ok()
            .flatten()
            .map(|row| row.get(0)),
        false => None,
    };
    Ok(DatabaseIdentity {
        database,
        registry_id,
    })
}

impl PostgresStore {
    /// Connects to `url` and checks that it is this registry's own database: the same
    /// database name and the same registry id, asked of the server (two URLs that differ can
    /// name one database, and two that look alike can name two).
    fn check_same_database(&self, url: &str) -> Result<(), Error> {
        let (config, theirs_describe) = parse_url(url)?;
        let ours_describe = self.pool.describe.clone();
        let ours = {
            let client = self.pool.get("reading the registry's identity")?;
            self.pool
                .block_on(database_identity(&client))
                .map_err(|e| pg_error(&ours_describe, "reading the registry's identity", e))?
        };
        let theirs = self
            .pool
            .block_on(async {
                let (client, connection) = config.connect(NoTls).await?;
                let driving = tokio::spawn(connection);
                let identity = database_identity(&client).await;
                drop(client);
                let _ = driving.await;
                identity
            })
            .map_err(|e| pg_error(&theirs_describe, "connecting for feature tables", e))?;
        if theirs == ours {
            return Ok(());
        }
        let what = match &theirs.registry_id {
            None => format!("database `{}` holds no hookhost registry", theirs.database),
            Some(_) => format!(
                "database `{}` holds another hookhost registry",
                theirs.database
            ),
        };
        Err(Error::FeatureTables {
            tables: theirs_describe,
            reason: format!(
                "it is not the registry's own database ({ours_describe}, database `{}`): {what}; \
                 feature tables live in the registry's database, since each row's run_id is a \
                 foreign key to the registry's runs",
                ours.database
            ),
        })
    }
}

/// One attempt at a claim: decided, or held by another worker for this much longer.
enum Attempt {
    Decided(Claimed),
    Held { worker: String, for_secs: f64 },
}

impl PostgresStore {
    /// One attempt, in one transaction under the key's advisory lock — the lock
    /// [`Registry::record_batch`](super::Registry::record_batch) takes too, so a batch is
    /// never recorded between this reading `batches` and writing its claim.
    fn try_claim(
        &self,
        key: &str,
        snapshot_digest: &str,
        worker: &str,
        lease: Duration,
    ) -> Result<Attempt, Error> {
        let mut tx = self.begin("BEGIN ISOLATION LEVEL READ COMMITTED")?;
        tx.lock_batch_key(key, snapshot_digest)?;
        if let Some(done) = tx.batch_by_key(key, snapshot_digest)? {
            return Ok(Attempt::Decided(Claimed::Done(done)));
        }
        let operation = format!("claiming batch key `{key}`");
        let held = tx.row(
            &operation,
            "SELECT worker, EXTRACT(EPOCH FROM expires_at - clock_timestamp())::float8
             FROM claims WHERE idempotency_key = $1 AND snapshot_digest = $2",
            &[&key, &snapshot_digest],
            |row| Ok((row.get::<_, String>(0), row.get::<_, f64>(1))),
        )?;
        if let Some((holder, for_secs)) = &held
            && *for_secs > 0.0
        {
            return Ok(Attempt::Held {
                worker: holder.clone(),
                for_secs: *for_secs,
            });
        }
        let token = uuid::Uuid::now_v7().to_string();
        tx.execute(
            "INSERT INTO claims (idempotency_key, snapshot_digest, token, worker, expires_at)
             VALUES ($1, $2, $3, $4, clock_timestamp() + $5 * interval '1 second')
             ON CONFLICT (idempotency_key, snapshot_digest) DO UPDATE SET
                 token = EXCLUDED.token, worker = EXCLUDED.worker, claimed_at = now(),
                 expires_at = EXCLUDED.expires_at",
            &[
                &key,
                &snapshot_digest,
                &token,
                &worker,
                &lease.as_secs_f64(),
            ],
        )
        .map_err(|e| tx.error(&operation, e))?;
        Box::new(tx).commit()?;
        if let Some((holder, _)) = held {
            tracing::warn!(%key, expired = %holder, %worker,
                "took over a batch key whose worker's lease ran out");
        }
        Ok(Attempt::Decided(Claimed::Claimed(BatchClaim {
            idempotency_key: key.to_owned(),
            snapshot_digest: snapshot_digest.to_owned(),
            token,
        })))
    }
}

impl ClaimStore for PostgresStore {
    fn claim(
        &self,
        key: &str,
        snapshot_digest: &str,
        worker: &str,
        lease: Duration,
    ) -> Result<Claimed, Error> {
        loop {
            // Subscribed before the attempt: a release after it cannot be missed.
            let mut released = self.pool.releases()?;
            let (holder, for_secs) = match self.try_claim(key, snapshot_digest, worker, lease)? {
                Attempt::Decided(claimed) => return Ok(claimed),
                Attempt::Held { worker, for_secs } => (worker, for_secs),
            };
            tracing::info!(%key, %holder, for_secs, "batch key held; waiting");
            // Woken by a release, or when the holder's lease ends (a dead worker never
            // releases): a little past the end, so that the lease has surely run out.
            let wait = Duration::from_secs_f64(for_secs) + Duration::from_millis(50);
            let listener_lost = self.pool.block_on(async {
                matches!(
                    tokio::time::timeout(wait, released.changed()).await,
                    Ok(Err(_))
                )
            });
            if listener_lost {
                // Start another listener on the next attempt, after a pause, so that a
                // server that is down is not hammered.
                *self
                    .pool
                    .released
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
                std::thread::sleep(wait.min(Duration::from_secs(1)));
            }
        }
    }

    fn renew(&self, claim: &BatchClaim, lease: Duration) -> Result<bool, Error> {
        let client = self.pool.get("renewing a batch claim")?;
        let renewed = self
            .pool
            .block_on(client.execute(
                "UPDATE claims SET expires_at = clock_timestamp() + $2 * interval '1 second'
                 WHERE token = $1 AND expires_at > clock_timestamp()",
                &[&claim.token, &lease.as_secs_f64()],
            ))
            .map_err(|e| {
                pg_error(
                    &self.pool.describe,
                    format_args!(
                        "renewing the claim on batch key `{}`",
                        claim.idempotency_key
                    ),
                    e,
                )
            })?;
        Ok(renewed == 1)
    }

    fn release(&self, claim: &BatchClaim) -> Result<(), Error> {
        let client = self.pool.get("releasing a batch claim")?;
        // One statement, so that the delete and its notification commit together.
        self.pool
            .block_on(client.execute(
                "WITH gone AS (DELETE FROM claims WHERE token = $1 RETURNING idempotency_key)
                 SELECT pg_notify($2, idempotency_key) FROM gone",
                &[&claim.token, &CLAIMS_CHANNEL],
            ))
            .map_err(|e| {
                pg_error(
                    &self.pool.describe,
                    format_args!(
                        "releasing the claim on batch key `{}`",
                        claim.idempotency_key
                    ),
                    e,
                )
            })?;
        Ok(())
    }
}

/// Component bytes in the `blobs` table of the registry's database.
#[derive(Debug)]
pub struct PgBlobStore {
    pool: std::sync::Arc<PgPool>,
}

impl PgBlobStore {
    /// The blobs of the database `pool` is connected to (its schema migrated by
    /// [`PostgresStore::over`]).
    pub fn new(pool: std::sync::Arc<PgPool>) -> PgBlobStore {
        PgBlobStore { pool }
    }

    fn check(digest: &str) -> Result<(), Error> {
        match hex_of(digest) {
            Some(_) => Ok(()),
            None => Err(Error::InvalidDigest {
                digest: digest.to_owned(),
            }),
        }
    }
}

impl BlobStore for PgBlobStore {
    fn location(&self, digest: &str) -> String {
        format!("{} blob {digest}", self.pool.describe)
    }

    fn contains(&self, digest: &str) -> Result<bool, Error> {
        PgBlobStore::check(digest)?;
        let client = self.pool.get("looking for a blob")?;
        let row = self
            .pool
            .block_on(client.query_opt("SELECT 1 FROM blobs WHERE digest = $1", &[&digest]))
            .map_err(|e| {
                pg_error(
                    &self.pool.describe,
                    format_args!("looking for blob {digest}"),
                    e,
                )
            })?;
        Ok(row.is_some())
    }

    fn get(&self, digest: &str) -> Result<Option<Vec<u8>>, Error> {
        PgBlobStore::check(digest)?;
        let client = self.pool.get("reading a blob")?;
        let row = self
            .pool
            .block_on(client.query_opt("SELECT bytes FROM blobs WHERE digest = $1", &[&digest]))
            .map_err(|e| {
                pg_error(
                    &self.pool.describe,
                    format_args!("reading blob {digest}"),
                    e,
                )
            })?;
        Ok(row.map(|row| row.get(0)))
    }

    fn put(&self, digest: &str, bytes: &[u8]) -> Result<(), Error> {
        PgBlobStore::check(digest)?;
        let client = self.pool.get("storing a blob")?;
        // Content-addressed: the same bytes stored twice leave one row untouched; a row whose
        // bytes differ (only ever a damaged one: the caller hashed these) is repaired.
        self.pool
            .block_on(client.execute(
                "INSERT INTO blobs (digest, size, bytes) VALUES ($1, $2, $3)
                 ON CONFLICT (digest) DO UPDATE SET bytes = EXCLUDED.bytes, size = EXCLUDED.size
                 WHERE blobs.bytes <> EXCLUDED.bytes",
                &[
                    &digest,
                    &i64::try_from(bytes.len()).unwrap_or(i64::MAX),
                    &bytes,
                ],
            ))
            .map_err(|e| {
                pg_error(
                    &self.pool.describe,
                    format_args!("storing blob {digest}"),
                    e,
                )
            })?;
        Ok(())
    }
}

/// A shared blob store read through a local directory: a component crosses the network once
/// per machine. A cached copy is hashed before it is used; one that no longer matches its
/// digest is fetched again and replaced. Writes go to the shared store first, so a blob is in
/// the cache only once the fleet has it.
#[derive(Debug)]
pub struct CachedBlobStore {
    shared: Box<dyn BlobStore>,
    local: DirBlobStore,
}

impl CachedBlobStore {
    /// `shared`, cached in `local`.
    pub fn new(shared: Box<dyn BlobStore>, local: DirBlobStore) -> CachedBlobStore {
        CachedBlobStore { shared, local }
    }
}

impl BlobStore for CachedBlobStore {
    fn location(&self, digest: &str) -> String {
        self.shared.location(digest)
    }

    fn contains(&self, digest: &str) -> Result<bool, Error> {
        // The cache holds only what the shared store has.
        Ok(self.local.contains(digest)? || self.shared.contains(digest)?)
    }

    fn get(&self, digest: &str) -> Result<Option<Vec<u8>>, Error> {
        if let Some(bytes) = self.local.get(digest)? {
            if sha256_digest(&bytes) == digest {
                return Ok(Some(bytes));
            }
            tracing::warn!(%digest, path = %self.local.location(digest),
                "a cached blob no longer matched its digest; fetching it again");
        }
        let Some(bytes) = self.shared.get(digest)? else {
            return Ok(None);
        };
        // Only bytes that hash to their name are cached; others go up to be refused.
        if sha256_digest(&bytes) == digest {
            self.local.put(digest, &bytes)?;
        }
        Ok(Some(bytes))
    }

    fn put(&self, digest: &str, bytes: &[u8]) -> Result<(), Error> {
        self.shared.put(digest, bytes)?;
        self.local.put(digest, bytes)
    }
}

#[cfg(test)]
pub(super) mod tests;
