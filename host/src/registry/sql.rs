//! Every statement the registry's records need, written once for every SQL backend (SQLite
//! and PostgreSQL accept the same text), over [`Sql`]: what a backend's transaction gives —
//! run a statement with [`Value`]s bound, read each row's [`Columns`]. Placeholders are
//! written `?1`, `?2`…; a backend renders them in its own syntax ([`numbered_dollars`] for
//! PostgreSQL).
//!
//! The [`ReadTx`](super::store::ReadTx) and [`WriteTx`](super::store::WriteTx) methods of both
//! backends are these functions; what differs between them (how a transaction begins and
//! locks, the schema's migrations, claims) stays in each backend.

use std::fmt::Display;

use super::actor::Actor;
use super::rows::{
    self, BATCH_COLUMNS, Columns, HookRow, LiveMoveRow, Reader, ReleaseRow, RowError, RunRow,
    STORED_RUN_COLUMNS, Value,
};
use super::store::{ReadTx, StoredHook, WriteTx};
use super::types::{HookSummary, LiveMove, Release, RunFilter, StoredRun};
use crate::contract::Contract;
use crate::error::Error;
use crate::provenance::{RunEntry, StoredBatch};
use time::OffsetDateTime;

/// A statement runner: one open transaction of a backend.
pub(crate) trait Sql {
    /// Runs `sql` with `params` bound, handing each row to `row`. A backend failure is
    /// [`Error::Store`] naming `operation`; a row `row` refuses is one too.
    fn query(
        &mut self,
        operation: &dyn Display,
        sql: &str,
        params: &[Value],
        row: &mut dyn FnMut(&dyn Columns) -> Result<(), RowError>,
    ) -> Result<(), Error>;

    /// Runs `sql` with `params` bound; how many rows it changed.
    fn execute(
        &mut self,
        operation: &dyn Display,
        sql: &str,
        params: &[Value],
    ) -> Result<u64, Error>;
}

/// A backend's transaction: [`Sql`], and what differs between backends around it. Every
/// such transaction is a [`ReadTx`] and a [`WriteTx`] whose operations are this module's
/// statements.
pub(crate) trait SqlTx: Sql {
    /// The store's description, for messages.
    fn describe(&self) -> &str;

    /// Holds, until the transaction ends, a lock on `key` that keeps other writers of it out
    /// (a no-op where writers already exclude each other); `operation` names it on failure.
    fn lock(&mut self, key: &str, operation: &dyn Display) -> Result<(), Error>;

    /// Makes the transaction's writes durable and visible ([`WriteTx::commit`]).
    fn finish(self: Box<Self>) -> Result<(), Error>;
}

impl<T: SqlTx> ReadTx for T {
    fn hook(&mut self, name: &str) -> Result<Option<StoredHook>, Error> {
        hook(self, name)
    }

    fn hooks(&mut self, name: Option<&str>) -> Result<Vec<HookSummary>, Error> {
        hooks(self, name)
    }

    fn release(&mut self, hook: &str, version: u32) -> Result<Option<Release>, Error> {
        release(self, hook, version)
    }

    fn release_by_digest(&mut self, hook: &str, digest: &str) -> Result<Option<Release>, Error> {
        release_by_digest(self, hook, digest)
    }

    fn releases(&mut self, hook: &str) -> Result<Vec<Release>, Error> {
        releases(self, hook)
    }

    fn live_moves(&mut self, hook: &str) -> Result<Vec<LiveMove>, Error> {
        live_moves(self, hook)
    }

    fn runs_page(
        &mut self,
        filter: &RunFilter,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<(i64, StoredRun)>, Error> {
        runs_page(self, filter, before, limit)
    }

    fn run(&mut self, run_id: &str) -> Result<Option<StoredRun>, Error> {
        run(self, run_id)
    }

    fn runs_by_prefix(&mut self, prefix: &str, limit: usize) -> Result<Vec<StoredRun>, Error> {
        runs_by_prefix(self, prefix, limit)
    }

    fn count_runs_by_prefix(&mut self, prefix: &str) -> Result<u64, Error> {
        count_runs_by_prefix(self, prefix)
    }

    fn batch_by_key(
        &mut self,
        key: &str,
        snapshot_digest: &str,
    ) -> Result<Option<StoredBatch>, Error> {
        batch_by_key(self, key, snapshot_digest)
    }
}

impl<T: SqlTx> WriteTx for T {
    fn lock_hook(&mut self, name: &str) -> Result<(), Error> {
        self.lock(
            &format!("hook {name}"),
            &format_args!("locking hook `{name}`"),
        )
    }

    fn lock_batch_key(&mut self, key: &str, snapshot_digest: &str) -> Result<(), Error> {
        self.lock(
            &format!("batch {snapshot_digest} {key}"),
            &format_args!("locking batch key `{key}`"),
        )
    }

    fn insert_hook(
        &mut self,
        name: &str,
        contract: &Contract,
        live_version: u32,
        created_at: OffsetDateTime,
    ) -> Result<(), Error> {
        insert_hook(self, name, contract, live_version, created_at)
    }

    fn update_hook(
        &mut self,
        name: &str,
        contract: &Contract,
        live_version: u32,
    ) -> Result<(), Error> {
        update_hook(self, name, contract, live_version)
    }

    fn insert_release(&mut self, release: &Release) -> Result<(), Error> {
        insert_release(self, release)
    }

    fn insert_live_move(&mut self, hook: &str, moved: &LiveMove) -> Result<(), Error> {
        insert_live_move(self, hook, moved)
    }

    fn insert_run(
        &mut self,
        run: &RunEntry<'_>,
        recorded_at: OffsetDateTime,
        recorded_by: Option<&Actor>,
    ) -> Result<(), Error> {
        insert_run(self, run, recorded_at, recorded_by)
    }

    fn insert_batch(&mut self, batch: &StoredBatch) -> Result<(), Error> {
        insert_batch(self, batch)
    }

    fn commit(self: Box<Self>) -> Result<(), Error> {
        SqlTx::finish(self)
    }
}

/// `sql` with `?N` placeholders written `$N`, as PostgreSQL takes them.
pub(crate) fn numbered_dollars(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

fn all<T>(
    sql: &mut dyn Sql,
    operation: &dyn Display,
    statement: &str,
    params: &[Value],
    map: impl Fn(&mut Reader<'_>) -> Result<T, RowError>,
) -> Result<Vec<T>, Error> {
    let mut found = Vec::new();
    sql.query(operation, statement, params, &mut |columns| {
        found.push(map(&mut Reader::new(columns))?);
        Ok(())
    })?;
    Ok(found)
}

fn one<T>(
    sql: &mut dyn Sql,
    operation: &dyn Display,
    statement: &str,
    params: &[Value],
    map: impl Fn(&mut Reader<'_>) -> Result<T, RowError>,
) -> Result<Option<T>, Error> {
    Ok(all(sql, operation, statement, params, map)?
        .into_iter()
        .next())
}

fn releases_select() -> String {
    format!("SELECT {} FROM releases", rows::list(ReleaseRow::COLUMNS))
}

fn runs_select() -> String {
    format!("SELECT {} FROM runs", rows::list(STORED_RUN_COLUMNS))
}

fn hook(sql: &mut dyn Sql, name: &str) -> Result<Option<StoredHook>, Error> {
    one(
        sql,
        &format_args!("reading hook `{name}`"),
        "SELECT h.name, h.contract, h.live_version, COALESCE(MAX(r.version), 0), h.created_at
         FROM hooks h LEFT JOIN releases r ON r.hook = h.name
         WHERE h.name = ?1 GROUP BY h.name",
        &[name.into()],
        rows::stored_hook,
    )
}

/// Every hook, or the one named `name`, by name (in byte order, whatever the database's
/// collation).
fn hooks(sql: &mut dyn Sql, name: Option<&str>) -> Result<Vec<HookSummary>, Error> {
    let select = "SELECT h.name, h.contract, h.contract_digest, h.live_version, h.created_at,
                MAX(r.version), MAX(r.created_at)
         FROM hooks h JOIN releases r ON r.hook = h.name";
    let mut found = match name {
        Some(name) => all(
            sql,
            &format_args!("reading hook `{name}`"),
            &format!("{select} WHERE h.name = ?1 GROUP BY h.name"),
            &[name.into()],
            rows::hook_summary,
        )?,
        None => all(
            sql,
            &"listing hooks",
            &format!("{select} GROUP BY h.name"),
            &[],
            rows::hook_summary,
        )?,
    };
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

fn release(sql: &mut dyn Sql, hook: &str, version: u32) -> Result<Option<Release>, Error> {
    one(
        sql,
        &format_args!("reading release `{hook}` v{version}"),
        &format!("{} WHERE hook = ?1 AND version = ?2", releases_select()),
        &[hook.into(), version.into()],
        rows::release,
    )
}

fn release_by_digest(
    sql: &mut dyn Sql,
    hook: &str,
    digest: &str,
) -> Result<Option<Release>, Error> {
    one(
        sql,
        &format_args!("reading the release of `{hook}` {digest}"),
        &format!("{} WHERE hook = ?1 AND digest = ?2", releases_select()),
        &[hook.into(), digest.into()],
        rows::release,
    )
}

fn releases(sql: &mut dyn Sql, hook: &str) -> Result<Vec<Release>, Error> {
    all(
        sql,
        &format_args!("listing the releases of `{hook}`"),
        &format!("{} WHERE hook = ?1 ORDER BY version", releases_select()),
        &[hook.into()],
        rows::release,
    )
}

fn live_moves(sql: &mut dyn Sql, hook: &str) -> Result<Vec<LiveMove>, Error> {
    all(
        sql,
        &format_args!("listing the live moves of `{hook}`"),
        &format!(
            "SELECT {} FROM live_moves WHERE hook = ?1 ORDER BY seq",
            rows::list(LiveMoveRow::COLUMNS)
        ),
        &[hook.into()],
        rows::live_move,
    )
}

/// The statement and parameters of one page of runs: those `filter` keeps, recorded before
/// the run at `before` (by `seq`), newest first, at most `limit`. Each filter is a condition
/// of its own, so that the database can serve it with its index (`runs_by_hook`,
/// `runs_by_status`, `runs_by_worker`, each ending in `seq`).
pub(crate) fn runs_page_statement(
    filter: &RunFilter,
    before: Option<i64>,
    limit: usize,
) -> (String, Vec<Value>) {
    let mut conditions = Vec::new();
    let mut params = Vec::new();
    let mut condition = |column: &str, value: Value| {
        params.push(value);
        conditions.push(format!("{column} ?{}", params.len()));
    };
    if let Some(hook) = &filter.hook {
        condition("hook =", hook.as_str().into());
    }
    if let Some(status) = filter.status {
        condition("status =", status.as_str().into());
    }
    if let Some(worker) = &filter.worker {
        condition("worker =", worker.as_str().into());
    }
    if let Some(before) = before {
        condition("seq <", before.into());
    }
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    params.push(limit.into());
    let filter = match conditions.is_empty() {
        true => String::new(),
        false => format!(" WHERE {}", conditions.join(" AND ")),
    };
    (
        format!(
            "{}{filter} ORDER BY seq DESC LIMIT ?{}",
            runs_select(),
            params.len()
        ),
        params,
    )
}

fn runs_page(
    sql: &mut dyn Sql,
    filter: &RunFilter,
    before: Option<i64>,
    limit: usize,
) -> Result<Vec<(i64, StoredRun)>, Error> {
    let (statement, params) = runs_page_statement(filter, before, limit);
    all(sql, &"listing runs", &statement, &params, rows::stored_run)
}

fn run(sql: &mut dyn Sql, run_id: &str) -> Result<Option<StoredRun>, Error> {
    one(
        sql,
        &format_args!("reading run {run_id}"),
        &format!("{} WHERE run_id = ?1", runs_select()),
        &[run_id.into()],
        |r| rows::stored_run(r).map(|(_, run)| run),
    )
}

fn runs_by_prefix(sql: &mut dyn Sql, prefix: &str, limit: usize) -> Result<Vec<StoredRun>, Error> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // `substr`, not `LIKE`: a prefix is compared as text, with no wildcards in it.
    all(
        sql,
        &format_args!("reading runs starting with `{prefix}`"),
        &format!(
            "{} WHERE substr(run_id, 1, length(?1)) = ?1 LIMIT ?2",
            runs_select()
        ),
        &[prefix.into(), limit.into()],
        |r| rows::stored_run(r).map(|(_, run)| run),
    )
}

fn count_runs_by_prefix(sql: &mut dyn Sql, prefix: &str) -> Result<u64, Error> {
    let count = one(
        sql,
        &format_args!("counting runs starting with `{prefix}`"),
        "SELECT COUNT(*) FROM runs WHERE substr(run_id, 1, length(?1)) = ?1",
        &[prefix.into()],
        |r| r.int("count"),
    )?;
    Ok(count.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
}

fn batch_by_key(
    sql: &mut dyn Sql,
    key: &str,
    snapshot_digest: &str,
) -> Result<Option<StoredBatch>, Error> {
    one(
        sql,
        &format_args!("reading the batch of key `{key}` for {snapshot_digest}"),
        &format!(
            "SELECT {} FROM batches WHERE idempotency_key = ?1 AND snapshot_digest = ?2",
            rows::list(BATCH_COLUMNS)
        ),
        &[key.into(), snapshot_digest.into()],
        rows::batch,
    )
}

fn insert_hook(
    sql: &mut dyn Sql,
    name: &str,
    contract: &Contract,
    live_version: u32,
    created_at: OffsetDateTime,
) -> Result<(), Error> {
    let row = HookRow::new(name, contract, live_version, created_at);
    sql.execute(
        &format_args!("inserting hook `{name}`"),
        &rows::insert("hooks", HookRow::COLUMNS),
        &row.values(),
    )
    .map(drop)
}

fn update_hook(
    sql: &mut dyn Sql,
    name: &str,
    contract: &Contract,
    live_version: u32,
) -> Result<(), Error> {
    sql.execute(
        &format_args!("updating hook `{name}`"),
        "UPDATE hooks SET contract = ?2, contract_digest = ?3, live_version = ?4
         WHERE name = ?1",
        &[
            name.into(),
            rows::contract_json(contract).into(),
            contract.digest().into(),
            live_version.into(),
        ],
    )
    .map(drop)
}

/// A row that does not convert, as the store error of `operation`.
fn unfit(describe: &str, operation: impl Display, error: RowError) -> Error {
    Error::Store {
        registry: describe.to_owned(),
        operation: operation.to_string(),
        kind: crate::error::StoreFailure::Failed,
        source: Box::new(error),
    }
}

fn insert_release(sql: &mut impl SqlTx, release: &Release) -> Result<(), Error> {
    let operation = format!("inserting release `{}` v{}", release.hook, release.version);
    let row = ReleaseRow::try_from(release).map_err(|e| unfit(sql.describe(), &operation, e))?;
    sql.execute(
        &operation,
        &rows::insert("releases", ReleaseRow::COLUMNS),
        &row.values(),
    )
    .map(drop)
}

fn insert_live_move(sql: &mut dyn Sql, hook: &str, moved: &LiveMove) -> Result<(), Error> {
    sql.execute(
        &format_args!("recording a live move of `{hook}`"),
        &rows::insert("live_moves", LiveMoveRow::COLUMNS),
        &LiveMoveRow::new(hook, moved).values(),
    )
    .map(drop)
}

fn insert_run(
    sql: &mut impl SqlTx,
    run: &RunEntry<'_>,
    recorded_at: OffsetDateTime,
    recorded_by: Option<&Actor>,
) -> Result<(), Error> {
    let operation = format!("recording run {}", run.record.run_id);
    let row = RunRow::new(run, recorded_at, recorded_by)
        .map_err(|e| unfit(sql.describe(), &operation, e))?;
    sql.execute(
        &operation,
        &rows::insert("runs", RunRow::COLUMNS),
        &row.values(),
    )
    .map(drop)
}

fn insert_batch(sql: &mut dyn Sql, batch: &StoredBatch) -> Result<(), Error> {
    sql.execute(
        &format_args!("recording batch {}", batch.batch_id),
        &rows::insert("batches", BATCH_COLUMNS),
        &rows::batch_values(batch),
    )
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_renumbered_for_postgres() {
        assert_eq!(
            numbered_dollars("a = ?1 AND b = ?12 AND c = '?'"),
            "a = $1 AND b = $12 AND c = '?'"
        );
    }

    #[test]
    fn a_page_names_each_filter_once() {
        let filter = RunFilter {
            hook: Some("stats".into()),
            status: Some(crate::provenance::RunStatus::Failed),
            worker: None,
        };
        let (statement, params) = runs_page_statement(&filter, Some(9), 50);
        assert!(
            statement.ends_with(
                "WHERE hook = ?1 AND status = ?2 AND seq < ?3 ORDER BY seq DESC LIMIT ?4"
            ),
            "{statement}"
        );
        assert_eq!(
            params,
            [
                Value::from("stats"),
                Value::from("failed"),
                Value::from(9i64),
                Value::from(50i64)
            ]
        );
        let (statement, _) = runs_page_statement(&RunFilter::default(), None, 5);
        assert!(
            statement.ends_with("FROM runs ORDER BY seq DESC LIMIT ?1"),
            "{statement}"
        );
    }
}
