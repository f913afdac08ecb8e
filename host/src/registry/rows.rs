//! The registry's rows, once for every SQL backend: the column lists, a flat row struct per
//! table converted to and from the registry's types by checked [`TryFrom`]s (an integer that
//! does not fit, a JSON column that does not parse, a cause the schema does not know is an
//! error naming the column, never a wrapped number), and the two things a backend supplies:
//! [`Value`]s to bind (rendered as its own parameter types) and [`Columns`] to read.
//!
//! The statements built on these rows are in [`sql`](super::sql); a backend renders their
//! placeholders (`?1` in SQLite, `$1` in PostgreSQL) and runs them.

use std::fmt;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::actor::Actor;
use super::store::StoredHook;
use super::types::{HookSummary, LiveCause, LiveMove, Release, ReleaseLimits, StoredRun};
use crate::contract::Contract;
use crate::provenance::{RunEntry, RunRecord, StoredBatch};

/// A value to bind to a statement's parameter, typed so that a null is a null of the
/// column's type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// A `TEXT` column's value.
    Text(Option<String>),
    /// An integer column's value (`INTEGER` in SQLite, `BIGINT` in PostgreSQL).
    Int(Option<i64>),
    /// A time: RFC 3339 text in SQLite ([`time_text`]), `timestamptz` in PostgreSQL.
    Time(OffsetDateTime),
}

impl From<&str> for Value {
    fn from(text: &str) -> Value {
        Value::Text(Some(text.to_owned()))
    }
}

impl From<String> for Value {
    fn from(text: String) -> Value {
        Value::Text(Some(text))
    }
}

impl From<Option<String>> for Value {
    fn from(text: Option<String>) -> Value {
        Value::Text(text)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Int(Some(n))
    }
}

impl From<u32> for Value {
    fn from(n: u32) -> Value {
        Value::Int(Some(i64::from(n)))
    }
}

impl From<OffsetDateTime> for Value {
    fn from(time: OffsetDateTime) -> Value {
        Value::Time(time)
    }
}

/// A row that does not convert: which column, and why.
#[derive(Debug)]
pub(crate) struct RowError(pub String);

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RowError {}

/// One row of a result, as a backend reads its columns (by index, from 0).
pub(crate) trait Columns {
    /// A text column; `None` for null.
    fn text(&self, index: usize) -> Result<Option<String>, RowError>;
    /// An integer column; `None` for null.
    fn int(&self, index: usize) -> Result<Option<i64>, RowError>;
    /// A time column (not null).
    fn time(&self, index: usize) -> Result<OffsetDateTime, RowError>;
}

/// Reads a row's columns in order, naming each in its errors.
pub(crate) struct Reader<'a> {
    columns: &'a dyn Columns,
    at: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(columns: &'a dyn Columns) -> Reader<'a> {
        Reader { columns, at: 0 }
    }

    fn next(&mut self) -> usize {
        self.at += 1;
        self.at - 1
    }

    pub(crate) fn opt_text(&mut self, name: &str) -> Result<Option<String>, RowError> {
        let at = self.next();
        self.columns
            .text(at)
            .map_err(|e| RowError(format!("column {name}: {e}")))
    }

    pub(crate) fn text(&mut self, name: &str) -> Result<String, RowError> {
        self.opt_text(name)?
            .ok_or_else(|| RowError(format!("column {name} is null")))
    }

    pub(crate) fn opt_int(&mut self, name: &str) -> Result<Option<i64>, RowError> {
        let at = self.next();
        self.columns
            .int(at)
            .map_err(|e| RowError(format!("column {name}: {e}")))
    }

    pub(crate) fn int(&mut self, name: &str) -> Result<i64, RowError> {
        self.opt_int(name)?
            .ok_or_else(|| RowError(format!("column {name} is null")))
    }

    pub(crate) fn time(&mut self, name: &str) -> Result<OffsetDateTime, RowError> {
        let at = self.next();
        self.columns
            .time(at)
            .map_err(|e| RowError(format!("column {name}: {e}")))
    }
}

/// `value` as `T`, or an error naming the column.
fn fits<T: TryFrom<i64>>(column: &str, value: i64) -> Result<T, RowError> {
    T::try_from(value).map_err(|_| RowError(format!("column {column}: {value} is out of range")))
}

/// `value` as a column's `i64`, or an error naming the column.
fn to_column(column: &str, value: u64) -> Result<i64, RowError> {
    i64::try_from(value).map_err(|_| {
        RowError(format!(
            "{column} {value} is larger than the store keeps ({})",
            i64::MAX
        ))
    })
}

/// A JSON column parsed, or an error naming it.
fn from_json<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> Result<T, RowError> {
    serde_json::from_str(text).map_err(|e| RowError(format!("column {column}: {e}")))
}

/// `value` as JSON text (what JSON columns hold).
pub(crate) fn json_text(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("registry values serialize")
}

/// A contract as its JSON column holds it (the hook's, a release's, a feature table's).
pub(crate) fn contract_json(contract: &Contract) -> String {
    json_text(contract)
}

/// An actor column parsed (null: not recorded).
fn actor(column: &str, text: Option<String>) -> Result<Option<Actor>, RowError> {
    text.map(|text| from_json(column, &text)).transpose()
}

/// A time as SQLite keeps it: RFC 3339 in UTC with exactly three fractional digits
/// (`2026-11-22T09:30:00.120Z`), so that text order is time order.
pub(crate) fn time_text(time: OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time.to_offset(time::UtcOffset::UTC)
        .format(&FORMAT)
        .expect("a UTC time in the years 0..=9999 formats")
}

/// An RFC 3339 time read from text (any fractional digits, any offset).
pub(crate) fn parse_time(text: &str) -> Result<OffsetDateTime, RowError> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|e| RowError(format!("`{text}` is not an RFC 3339 time: {e}")))
}

/// Now, to the millisecond: what the registry records as the time of a write. Milliseconds
/// survive every backend's column exactly, so what a write returns equals what is read back.
pub(crate) fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(u32::from(now.millisecond()) * 1_000_000)
        .unwrap_or(now)
}

/// The column list of `columns`, for a statement.
pub(crate) fn list(columns: &[&str]) -> String {
    columns.join(", ")
}

/// `INSERT INTO table (columns) VALUES (?1, ?2, …)`.
pub(crate) fn insert(table: &str, columns: &[&str]) -> String {
    let placeholders: Vec<String> = (1..=columns.len()).map(|n| format!("?{n}")).collect();
    format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        list(columns),
        placeholders.join(", ")
    )
}

/// A hook's row as written.
pub(crate) struct HookRow {
    pub name: String,
    pub contract: String,
    pub contract_digest: String,
    pub live_version: i64,
    pub created_at: OffsetDateTime,
}

impl HookRow {
    pub const COLUMNS: &'static [&'static str] = &[
        "name",
        "contract",
        "contract_digest",
        "live_version",
        "created_at",
    ];

    pub fn new(
        name: &str,
        contract: &Contract,
        live_version: u32,
        created_at: OffsetDateTime,
    ) -> HookRow {
        HookRow {
            name: name.to_owned(),
            contract: contract_json(contract),
            contract_digest: contract.digest(),
            live_version: i64::from(live_version),
            created_at,
        }
    }

    pub fn values(self) -> Vec<Value> {
        vec![
            self.name.into(),
            self.contract.into(),
            self.contract_digest.into(),
            self.live_version.into(),
            self.created_at.into(),
        ]
    }
}

/// What [`sql::HOOK`](super::sql) selects: the hook's row with its newest version.
pub(crate) fn stored_hook(r: &mut Reader<'_>) -> Result<StoredHook, RowError> {
    Ok(StoredHook {
        name: r.text("name")?,
        contract: from_json("contract", &r.text("contract")?)?,
        live_version: fits("live_version", r.int("live_version")?)?,
        latest_version: fits("latest_version", r.int("latest_version")?)?,
        created_at: r.time("created_at")?,
    })
}

/// What [`sql::HOOKS`](super::sql) selects: the hook's row, its newest version and its newest
/// release's time.
pub(crate) fn hook_summary(r: &mut Reader<'_>) -> Result<HookSummary, RowError> {
    Ok(HookSummary {
        name: r.text("name")?,
        contract: from_json("contract", &r.text("contract")?)?,
        contract_digest: r.text("contract_digest")?,
        live_version: fits("live_version", r.int("live_version")?)?,
        created_at: r.time("created_at")?,
        latest_version: fits("latest_version", r.int("latest_version")?)?,
        updated_at: r.time("updated_at")?,
    })
}

/// A release's row, flat.
pub(crate) struct ReleaseRow {
    pub hook: String,
    pub version: i64,
    pub digest: String,
    pub size: i64,
    pub contract: String,
    pub contract_digest: String,
    pub config: String,
    pub config_digest: String,
    pub fuel_per_record: i64,
    pub memory_bytes: i64,
    pub timeout_ms: i64,
    pub source_ref: Option<String>,
    pub built_by: Option<String>,
    pub created_at: OffsetDateTime,
    pub published_by: Option<String>,
}

impl ReleaseRow {
    pub const COLUMNS: &'static [&'static str] = &[
        "hook",
        "version",
        "digest",
        "size",
        "contract",
        "contract_digest",
        "config",
        "config_digest",
        "fuel_per_record",
        "memory_bytes",
        "timeout_ms",
        "source_ref",
        "built_by",
        "created_at",
        "published_by",
    ];

    pub fn read(r: &mut Reader<'_>) -> Result<ReleaseRow, RowError> {
        Ok(ReleaseRow {
            hook: r.text("hook")?,
            version: r.int("version")?,
            digest: r.text("digest")?,
            size: r.int("size")?,
            contract: r.text("contract")?,
            contract_digest: r.text("contract_digest")?,
            config: r.text("config")?,
            config_digest: r.text("config_digest")?,
            fuel_per_record: r.int("fuel_per_record")?,
            memory_bytes: r.int("memory_bytes")?,
            timeout_ms: r.int("timeout_ms")?,
            source_ref: r.opt_text("source_ref")?,
            built_by: r.opt_text("built_by")?,
            created_at: r.time("created_at")?,
            published_by: r.opt_text("published_by")?,
        })
    }

    pub fn values(self) -> Vec<Value> {
        vec![
            self.hook.into(),
            self.version.into(),
            self.digest.into(),
            self.size.into(),
            self.contract.into(),
            self.contract_digest.into(),
            self.config.into(),
            self.config_digest.into(),
            self.fuel_per_record.into(),
            self.memory_bytes.into(),
            self.timeout_ms.into(),
            self.source_ref.into(),
            self.built_by.into(),
            self.created_at.into(),
            self.published_by.into(),
        ]
    }
}

impl TryFrom<&Release> for ReleaseRow {
    type Error = RowError;

    fn try_from(release: &Release) -> Result<ReleaseRow, RowError> {
        Ok(ReleaseRow {
            hook: release.hook.clone(),
            version: i64::from(release.version),
            digest: release.digest.clone(),
            size: to_column("size", release.size)?,
            contract: contract_json(&release.contract),
            contract_digest: release.contract_digest.clone(),
            config: release.config.clone(),
            config_digest: release.config_digest.clone(),
            fuel_per_record: to_column("fuel_per_record", release.limits.fuel_per_record)?,
            memory_bytes: to_column("memory_bytes", release.limits.memory_bytes)?,
            timeout_ms: to_column("timeout_ms", release.limits.timeout_ms)?,
            source_ref: release.source_ref.clone(),
            built_by: release.built_by.clone(),
            created_at: release.created_at,
            published_by: release.published_by.as_ref().map(json_text),
        })
    }
}

impl TryFrom<ReleaseRow> for Release {
    type Error = RowError;

    fn try_from(row: ReleaseRow) -> Result<Release, RowError> {
        Ok(Release {
            hook: row.hook,
            version: fits("version", row.version)?,
            digest: row.digest,
            size: fits("size", row.size)?,
            contract: from_json("contract", &row.contract)?,
            contract_digest: row.contract_digest,
            config: row.config,
            config_digest: row.config_digest,
            limits: ReleaseLimits {
                fuel_per_record: fits("fuel_per_record", row.fuel_per_record)?,
                memory_bytes: fits("memory_bytes", row.memory_bytes)?,
                timeout_ms: fits("timeout_ms", row.timeout_ms)?,
            },
            source_ref: row.source_ref,
            built_by: row.built_by,
            created_at: row.created_at,
            published_by: actor("published_by", row.published_by)?,
        })
    }
}

/// A release read from [`ReleaseRow::COLUMNS`].
pub(crate) fn release(r: &mut Reader<'_>) -> Result<Release, RowError> {
    ReleaseRow::read(r)?.try_into()
}

/// A live move's row, flat (its hook included).
pub(crate) struct LiveMoveRow {
    pub hook: String,
    pub from_version: Option<i64>,
    pub to_version: i64,
    pub cause: String,
    pub moved_at: OffsetDateTime,
    pub moved_by: Option<String>,
    pub reason: Option<String>,
}

impl LiveMoveRow {
    pub const COLUMNS: &'static [&'static str] = &[
        "hook",
        "from_version",
        "to_version",
        "cause",
        "moved_at",
        "moved_by",
        "reason",
    ];

    pub fn new(hook: &str, moved: &LiveMove) -> LiveMoveRow {
        LiveMoveRow {
            hook: hook.to_owned(),
            from_version: moved.from_version.map(i64::from),
            to_version: i64::from(moved.to_version),
            cause: moved.cause.as_str().to_owned(),
            moved_at: moved.moved_at,
            moved_by: moved.moved_by.as_ref().map(json_text),
            reason: moved.reason.clone(),
        }
    }

    pub fn read(r: &mut Reader<'_>) -> Result<LiveMoveRow, RowError> {
        Ok(LiveMoveRow {
            hook: r.text("hook")?,
            from_version: r.opt_int("from_version")?,
            to_version: r.int("to_version")?,
            cause: r.text("cause")?,
            moved_at: r.time("moved_at")?,
            moved_by: r.opt_text("moved_by")?,
            reason: r.opt_text("reason")?,
        })
    }

    pub fn values(self) -> Vec<Value> {
        vec![
            self.hook.into(),
            Value::Int(self.from_version),
            self.to_version.into(),
            self.cause.into(),
            self.moved_at.into(),
            self.moved_by.into(),
            self.reason.into(),
        ]
    }
}

impl TryFrom<LiveMoveRow> for LiveMove {
    type Error = RowError;

    fn try_from(row: LiveMoveRow) -> Result<LiveMove, RowError> {
        Ok(LiveMove {
            from_version: row
                .from_version
                .map(|v| fits("from_version", v))
                .transpose()?,
            to_version: fits("to_version", row.to_version)?,
            cause: LiveCause::parse(&row.cause)
                .ok_or_else(|| RowError(format!("column cause: unknown cause `{}`", row.cause)))?,
            moved_at: row.moved_at,
            moved_by: actor("moved_by", row.moved_by)?,
            reason: row.reason,
        })
    }
}

/// A live move read from [`LiveMoveRow::COLUMNS`].
pub(crate) fn live_move(r: &mut Reader<'_>) -> Result<LiveMove, RowError> {
    LiveMoveRow::read(r)?.try_into()
}

/// A run's row as written: `run.json` itself (`record`) and the columns queries filter and
/// sort on, taken from it.
pub(crate) struct RunRow {
    pub run_id: String,
    pub hook: Option<String>,
    pub version: Option<i64>,
    pub digest: String,
    pub status: String,
    pub started_at: OffsetDateTime,
    pub finished_at: OffsetDateTime,
    pub total: i64,
    pub passed: i64,
    pub rejected: i64,
    pub errored: i64,
    pub config: String,
    pub out_dir: Option<String>,
    pub replay_of: Option<String>,
    pub recorded_at: OffsetDateTime,
    pub worker: Option<String>,
    pub recorded_by: Option<String>,
    pub record: String,
}

impl RunRow {
    pub const COLUMNS: &'static [&'static str] = &[
        "run_id",
        "hook",
        "version",
        "digest",
        "status",
        "started_at",
        "finished_at",
        "total",
        "passed",
        "rejected",
        "errored",
        "config",
        "out_dir",
        "replay_of",
        "recorded_at",
        "worker",
        "recorded_by",
        "record",
    ];

    /// The row of `run`, recorded at `recorded_at` by `recorded_by`.
    pub fn new(
        run: &RunEntry<'_>,
        recorded_at: OffsetDateTime,
        recorded_by: Option<&Actor>,
    ) -> Result<RunRow, RowError> {
        let record = run.record;
        let c = record.records;
        let time = |column: &str, text: &str| {
            parse_time(text).map_err(|e| RowError(format!("{column}: {e}")))
        };
        Ok(RunRow {
            run_id: record.run_id.clone(),
            hook: record.hook.name.clone(),
            version: record.hook.version.map(i64::from),
            digest: record.hook.digest.clone(),
            status: record.status.as_str().to_owned(),
            started_at: time("started_at", &record.started_at)?,
            finished_at: time("finished_at", &record.finished_at)?,
            total: to_column("total", c.total)?,
            passed: to_column("passed", c.passed)?,
            rejected: to_column("rejected", c.rejected)?,
            errored: to_column("errored", c.errored)?,
            config: run.config.to_owned(),
            out_dir: run.out_dir.map(str::to_owned),
            replay_of: record.replay_of.clone(),
            recorded_at,
            worker: record.worker.clone(),
            recorded_by: recorded_by.map(json_text),
            record: json_text(record),
        })
    }

    pub fn values(self) -> Vec<Value> {
        vec![
            self.run_id.into(),
            self.hook.into(),
            Value::Int(self.version),
            self.digest.into(),
            self.status.into(),
            self.started_at.into(),
            self.finished_at.into(),
            self.total.into(),
            self.passed.into(),
            self.rejected.into(),
            self.errored.into(),
            self.config.into(),
            self.out_dir.into(),
            self.replay_of.into(),
            self.recorded_at.into(),
            self.worker.into(),
            self.recorded_by.into(),
            self.record.into(),
        ]
    }
}

/// The columns a stored run is read from: its `seq` (its place in recording order) first.
pub(crate) const STORED_RUN_COLUMNS: &[&str] = &[
    "seq",
    "record",
    "config",
    "out_dir",
    "recorded_at",
    "recorded_by",
];

/// A stored run read from [`STORED_RUN_COLUMNS`], with its `seq`.
pub(crate) fn stored_run(r: &mut Reader<'_>) -> Result<(i64, StoredRun), RowError> {
    let seq = r.int("seq")?;
    Ok((
        seq,
        StoredRun {
            record: from_json::<RunRecord>("record", &r.text("record")?)?,
            config: r.text("config")?,
            out_dir: r.opt_text("out_dir")?,
            recorded_at: r.time("recorded_at")?,
            recorded_by: actor("recorded_by", r.opt_text("recorded_by")?)?,
        },
    ))
}

/// A batch's row.
pub(crate) const BATCH_COLUMNS: &[&str] = &[
    "batch_id",
    "idempotency_key",
    "snapshot_digest",
    "run_ids",
    "summary",
    "recorded_at",
];

/// `batch`'s values, in [`BATCH_COLUMNS`]' order.
pub(crate) fn batch_values(batch: &StoredBatch) -> Vec<Value> {
    vec![
        batch.batch_id.as_str().into(),
        batch.idempotency_key.as_str().into(),
        batch.snapshot_digest.as_str().into(),
        json_text(&batch.run_ids).into(),
        json_text(&batch.summary).into(),
        batch.recorded_at.into(),
    ]
}

/// A batch read from [`BATCH_COLUMNS`].
pub(crate) fn batch(r: &mut Reader<'_>) -> Result<StoredBatch, RowError> {
    Ok(StoredBatch {
        batch_id: r.text("batch_id")?,
        idempotency_key: r.text("idempotency_key")?,
        snapshot_digest: r.text("snapshot_digest")?,
        run_ids: from_json("run_ids", &r.text("run_ids")?)?,
        summary: from_json("summary", &r.text("summary")?)?,
        recorded_at: r.time("recorded_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_times_sort_as_text_and_read_back_exactly() {
        let early = parse_time("2026-11-22T09:30:00.1Z").unwrap();
        let late = parse_time("2026-11-22T09:30:00.12Z").unwrap();
        assert!(time_text(early) < time_text(late));
        assert_eq!(time_text(early), "2026-11-22T09:30:00.100Z");
        let offset = parse_time("2026-11-22T11:30:00.120+02:00").unwrap();
        assert_eq!(time_text(offset), "2026-11-22T09:30:00.120Z");
        let now = now();
        assert_eq!(parse_time(&time_text(now)).unwrap(), now);
    }

    #[test]
    fn numbers_that_do_not_fit_are_errors_naming_the_column() {
        let error = to_column("fuel_per_record", u64::MAX).unwrap_err();
        assert!(error.0.contains("fuel_per_record"), "{error}");
        let error = fits::<u32>("version", -1).unwrap_err();
        assert!(error.0.contains("version"), "{error}");
        assert_eq!(fits::<u32>("version", 7).unwrap(), 7);
    }

    #[test]
    fn insert_statements_number_their_placeholders() {
        assert_eq!(
            insert("t", &["a", "b", "c"]),
            "INSERT INTO t (a, b, c) VALUES (?1, ?2, ?3)"
        );
    }
}
