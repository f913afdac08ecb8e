//! Feature tables: one PostgreSQL table per hook in the registry's own database, each row's
//! `run_id` a foreign key to the run that computed it ([`PgFeatureTables`], the registry's
//! [`FeatureTables`]).
//!
//! # A table
//!
//! `"<schema>"."<hook>"` has `run_id uuid NOT NULL` (referencing `runs.run_uuid`, the run id
//! as a uuid; `DEFERRABLE INITIALLY DEFERRED`, since a batch's rows go in before its runs are
//! recorded), `record_id text NOT NULL`, `ordinal integer NOT NULL` (the row's index within
//! its record, from 0) and one column per contract column, typed by [`sql_type`], `NOT NULL`
//! unless nullable, its description as the column's `COMMENT`. The primary key is
//! `(run_id, record_id, ordinal)`.
//!
//! Each table's contract is kept in the registry's `feature_tables`: a hook's contract is
//! classified against it by the one classifier ([`classify`]) before anything runs. Identical:
//! nothing to do. Additive (new nullable columns): `ALTER TABLE … ADD COLUMN`, nullable, and
//! the table's contract grows. Destructive: refused ([`Error::TableContractChanged`]), naming
//! every change. A contract that lacks some of the table's nullable columns (an older
//! release) fits: its rows leave them null.
//!
//! # One transaction
//!
//! The DDL for each table commits in its own short transaction, under an advisory lock on the
//! table's name, before the batch begins (two workers creating one table wait for each other).
//! The batch's rows then go into one long transaction on one pooled connection, and the run
//! records are written in it by the registry's own rules — the same code
//! [`Registry::record_batch`](super::Registry::record_batch) runs, over this transaction:
//! rows and runs commit together or not at all. A key already recorded rolls everything back;
//! a process killed mid-batch drops its connection, and the server rolls back.
//!
//! # COPY
//!
//! Rows go in with `COPY … FROM STDIN (FORMAT binary)`, buffered per hook and flushed every
//! [`COPY_FLUSH_ROWS`] rows or [`COPY_FLUSH_BYTES`] bytes, so memory stays bounded for any
//! batch length. The hooks of a batch share the one connection, one COPY at a time.

use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use sha2::{Digest, Sha256};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use super::postgres::{PgError, PgPool, PgTx, pg_error};
use super::rows::contract_json;
use super::store::WriteTx;
use super::{log_batch_recorded, record_batch_in, record_run_in};
use crate::contract::{CheckedRows, Column, ColumnType, Contract};
use crate::digest::hex;
use crate::error::Error;
use crate::evolution::{Evolution, classify};
use crate::provenance::{BatchRecorded, NewBatch, RunEntry};
use crate::sink::{
    FeatureSink, FeatureTables, TableBatch, TableHook, TableOutput, Written, content_line,
};

/// The schema feature tables go in when the operator names none.
pub const DEFAULT_FEATURE_SCHEMA: &str = "hookhost_features";

/// The most rows a hook's sink buffers before it sends them with one `COPY`. With
/// [`COPY_FLUSH_BYTES`], what bounds a table sink's memory whatever the batch's length.
pub const COPY_FLUSH_ROWS: usize = 10_000;

/// The most bytes of rows (as their `features.jsonl` lines measure them) a hook's sink buffers
/// before it sends them with one `COPY`.
pub const COPY_FLUSH_BYTES: usize = 8 << 20;

/// PostgreSQL's longest identifier, in bytes: a longer schema or column name would be cut.
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// The column holding the run that computed the row.
pub const RUN_ID_COLUMN: &str = "run_id";
/// The column holding the row's record id.
pub const RECORD_ID_COLUMN: &str = "record_id";
/// The column holding the row's index within its record, from 0.
pub const ORDINAL_COLUMN: &str = "ordinal";

/// The SQL type a contract column type becomes.
pub fn sql_type(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Text => "text",
        ColumnType::Integer => "bigint",
        ColumnType::Number => "double precision",
        ColumnType::Boolean => "boolean",
        ColumnType::Timestamp => "timestamptz",
        ColumnType::Date => "date",
        ColumnType::Uuid => "uuid",
        ColumnType::Json => "jsonb",
        ColumnType::FloatVector => "double precision[]",
    }
}

fn pg_type(ty: ColumnType) -> Type {
    match ty {
        ColumnType::Text => Type::TEXT,
        ColumnType::Integer => Type::INT8,
        ColumnType::Number => Type::FLOAT8,
        ColumnType::Boolean => Type::BOOL,
        ColumnType::Timestamp => Type::TIMESTAMPTZ,
        ColumnType::Date => Type::DATE,
        ColumnType::Uuid => Type::UUID,
        ColumnType::Json => Type::JSONB,
        ColumnType::FloatVector => Type::FLOAT8_ARRAY,
    }
}

/// `"name"`: names are checked to `[a-z_][a-z0-9_]*` first; quoting keeps them as they are.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Checks that `name` is a lowercase identifier PostgreSQL keeps whole.
fn check_identifier(what: &str, name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let well_formed = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= MAX_IDENTIFIER_BYTES;
    if well_formed {
        Ok(())
    } else {
        Err(format!(
            "{what} `{name}` must match [a-z_][a-z0-9_]* and be at most \
             {MAX_IDENTIFIER_BYTES} bytes (PostgreSQL's longest identifier)"
        ))
    }
}

/// One value as it goes into a feature table's column.
#[derive(Debug, Clone, PartialEq)]
pub enum PgValue {
    /// SQL null.
    Null,
    /// `text` (also the `record_id` column).
    Text(String),
    /// `bigint`.
    Integer(i64),
    /// `integer`: the `ordinal` column.
    Ordinal(i32),
    /// `double precision`.
    Number(f64),
    /// `boolean`.
    Boolean(bool),
    /// `timestamptz`, kept as an instant (its offset is not stored: PostgreSQL keeps UTC).
    Timestamp(time::OffsetDateTime),
    /// `date`.
    Date(time::Date),
    /// `uuid` (also the `run_id` column).
    Uuid(uuid::Uuid),
    /// `jsonb`.
    Json(serde_json::Value),
    /// `double precision[]`.
    FloatVector(Vec<f64>),
}

impl PgValue {
    /// The value for a column of type `ty` from its checked JSON form (as
    /// [`Contract::check_rows`] renders it). Fails, saying why, for what the contract allows
    /// but PostgreSQL cannot hold: NUL characters in text or JSON, instants outside
    /// `timestamptz`'s range.
    pub fn from_json(ty: ColumnType, value: &serde_json::Value) -> Result<PgValue, String> {
        use serde_json::Value as J;
        let mismatch = || format!("{value} does not fit a column of type {}", ty.name());
        Ok(match (ty, value) {
            (_, J::Null) => PgValue::Null,
            (ColumnType::Text, J::String(s)) => PgValue::Text(no_nul(s)?.to_owned()),
            (ColumnType::Integer, J::Number(n)) => {
                PgValue::Integer(n.as_i64().ok_or_else(mismatch)?)
            }
            (ColumnType::Number, J::Number(n)) => PgValue::Number(n.as_f64().ok_or_else(mismatch)?),
            (ColumnType::Boolean, J::Bool(b)) => PgValue::Boolean(*b),
            (ColumnType::Timestamp, J::String(s)) => {
                let at =
                    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                        .map_err(|e| format!("`{s}` is not an RFC 3339 timestamp ({e})"))?;
                // timestamptz holds 4713 BC to 294276 AD; RFC 3339 years are 0000-9999.
                PgValue::Timestamp(at)
            }
            (ColumnType::Date, J::String(s)) => PgValue::Date(
                time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
                    .map_err(|e| format!("`{s}` is not a YYYY-MM-DD date ({e})"))?,
            ),
            (ColumnType::Uuid, J::String(s)) => {
                PgValue::Uuid(uuid::Uuid::try_parse(s).map_err(|_| mismatch())?)
            }
            (ColumnType::Json, json) => {
                check_json(json)?;
                PgValue::Json(json.clone())
            }
            (ColumnType::FloatVector, J::Array(items)) => PgValue::FloatVector(
                items
                    .iter()
                    .map(|item| item.as_f64().ok_or_else(mismatch))
                    .collect::<Result<_, _>>()?,
            ),
            _ => return Err(mismatch()),
        })
    }
}

/// `text` cannot hold NUL.
fn no_nul(s: &str) -> Result<&str, String> {
    match s.contains('\0') {
        false => Ok(s),
        true => Err("PostgreSQL text cannot hold a NUL character (\\u0000)".into()),
    }
}

/// `jsonb` cannot hold NUL in a string or a key.
fn check_json(value: &serde_json::Value) -> Result<(), String> {
    match value {
        serde_json::Value::String(s) => no_nul(s).map(drop),
        serde_json::Value::Array(items) => items.iter().try_for_each(check_json),
        serde_json::Value::Object(members) => members.iter().try_for_each(|(key, value)| {
            no_nul(key)?;
            check_json(value)
        }),
        _ => Ok(()),
    }
}

impl ToSql for PgValue {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            PgValue::Null => Ok(IsNull::Yes),
            PgValue::Text(v) => v.to_sql_checked(ty, out),
            PgValue::Integer(v) => v.to_sql_checked(ty, out),
            PgValue::Ordinal(v) => v.to_sql_checked(ty, out),
            PgValue::Number(v) => v.to_sql_checked(ty, out),
            PgValue::Boolean(v) => v.to_sql_checked(ty, out),
            PgValue::Timestamp(v) => v.to_sql_checked(ty, out),
            PgValue::Date(v) => v.to_sql_checked(ty, out),
            PgValue::Uuid(v) => v.to_sql_checked(ty, out),
            PgValue::Json(v) => v.to_sql_checked(ty, out),
            PgValue::FloatVector(v) => v.to_sql_checked(ty, out),
        }
    }

    /// Every value is checked against its column's type by the delegate's own `to_sql_checked`.
    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// Feature tables in schema `schema` of a PostgreSQL registry's database.
#[derive(Debug)]
pub struct PgFeatureTables {
    pool: Arc<PgPool>,
    schema: String,
}

/// A table ready for one hook's rows: where they go, and how.
#[derive(Debug)]
struct Table {
    schema: String,
    name: String,
    /// `COPY "schema"."name" (run_id, record_id, ordinal, <the hook's columns>) FROM STDIN …`.
    copy: String,
    /// The types of those columns, in that order.
    types: Vec<Type>,
    /// The hook's column types, in contract order.
    columns: Vec<ColumnType>,
    /// The hook's column names, for messages.
    names: Vec<String>,
}

impl PgFeatureTables {
    /// Feature tables in `schema` of the database `pool` is connected to (its registry schema
    /// migrated). A schema name PostgreSQL would not keep whole is refused.
    pub(super) fn new(pool: Arc<PgPool>, schema: &str) -> Result<PgFeatureTables, Error> {
        check_identifier("schema", schema).map_err(|reason| Error::FeatureTables {
            tables: format!("{}, schema {schema}", pool.describe()),
            reason,
        })?;
        Ok(PgFeatureTables {
            pool,
            schema: schema.to_owned(),
        })
    }

    fn refuse(&self, reason: String) -> Error {
        Error::FeatureTables {
            tables: self.describe(),
            reason,
        }
    }

    /// Makes `hook`'s table fit its contract, in a transaction of its own: created, or grown
    /// by the columns an additive contract adds; a contract that does not fit is refused.
    fn prepare(&self, hook: &TableHook<'_>) -> Result<Table, Error> {
        let (schema, name) = (self.schema.as_str(), hook.name);
        let table = format!("{schema}.{name}");
        check_identifier("hook name", name).map_err(|reason| self.refuse(reason))?;
        for column in &hook.contract.columns {
            if [RUN_ID_COLUMN, RECORD_ID_COLUMN, ORDINAL_COLUMN].contains(&column.name.as_str()) {
                return Err(self.refuse(format!(
                    "hook `{name}` has a column named `{}`, which table {table} keeps for \
                     itself (its columns {RUN_ID_COLUMN}, {RECORD_ID_COLUMN}, {ORDINAL_COLUMN})",
                    column.name
                )));
            }
            check_identifier(&format!("hook `{name}`'s column"), &column.name)
                .map_err(|reason| self.refuse(reason))?;
        }
        let tx = PgTx::begin(&self.pool, "BEGIN ISOLATION LEVEL READ COMMITTED")?;
        let fail = |what: &str, e| tx.error(format_args!("{what} feature table {table}"), e);
        // The schema first (two `CREATE SCHEMA IF NOT EXISTS` at once can collide), then the
        // table: held until this transaction ends.
        tx.advisory_lock(&format!("hookhost feature schema {schema}"))
            .map_err(|e| fail("locking the schema of", e))?;
        tx.advisory_lock(&format!("hookhost feature table {table}"))
            .map_err(|e| fail("locking", e))?;
        let stored = tx
            .query_opt(
                "SELECT contract FROM feature_tables WHERE schema_name = $1 AND table_name = $2",
                &[&schema, &name],
            )
            .map_err(|e| fail("reading the contract of", e))?
            .map(|row| serde_json::from_str::<Contract>(&row.get::<_, String>(0)))
            .transpose()
            .map_err(|e| {
                pg_error(
                    self.pool.describe(),
                    format_args!("reading the contract of feature table {table}"),
                    PgError::new(e.to_string()),
                )
            })?;
        let ddl = |sql: &str| {
            tx.pool()
                .block_on(tx.client().batch_execute(sql))
                .map_err(|e| tx.error(format_args!("changing feature table {table}: {sql}"), e))
        };
        let now = super::rows::now();
        match stored {
            None => {
                let exists = tx
                    .query_opt(
                        "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                         WHERE n.nspname = $1 AND c.relname = $2",
                        &[&schema, &name],
                    )
                    .map_err(|e| fail("looking for", e))?;
                if exists.is_some() {
                    return Err(self.refuse(format!(
                        "{table} already exists and is not a hookhost feature table (it is not \
                         in the registry's feature_tables); rename it, or choose another \
                         schema with --sink-schema"
                    )));
                }
                ddl(&format!("CREATE SCHEMA IF NOT EXISTS {}", ident(schema)))?;
                ddl(&create_table(schema, hook.contract, name))?;
                for column in &hook.contract.columns {
                    self.comment(&tx, schema, name, column)?;
                }
                tx.execute(
                    "INSERT INTO feature_tables (schema_name, table_name, contract, created_at,
                         updated_at) VALUES ($1, $2, $3, $4, $4)",
                    &[&schema, &name, &contract_json(hook.contract), &now],
                )
                .map_err(|e| fail("recording", e))?;
                tracing::info!(%table, "feature table created");
            }
            Some(current) => {
                let seen = as_table_sees(&current, hook.contract);
                match classify(&current, &seen) {
                    Evolution::Identical => {}
                    Evolution::Destructive { changes } => {
                        return Err(Error::TableContractChanged {
                            table: format!("{} {table}", self.pool.describe()),
                            hook: name.to_owned(),
                            changes,
                        });
                    }
                    Evolution::Additive { added } => {
                        let mut grown = current.clone();
                        for column in seen.columns.iter().filter(|c| added.contains(&c.name)) {
                            ddl(&format!(
                                "ALTER TABLE {}.{} ADD COLUMN {} {}",
                                ident(schema),
                                ident(name),
                                ident(&column.name),
                                sql_type(column.ty)
                            ))?;
                            self.comment(&tx, schema, name, column)?;
                            grown.columns.push(column.clone());
                        }
                        tx.execute(
                            "UPDATE feature_tables SET contract = $3, updated_at = $4
                             WHERE schema_name = $1 AND table_name = $2",
                            &[&schema, &name, &contract_json(&grown), &now],
                        )
                        .map_err(|e| fail("recording the grown contract of", e))?;
                        tracing::info!(%table, ?added, "feature table grown");
                    }
                }
            }
        }
        Box::new(tx).commit()?;
        Ok(Table::new(schema, name, hook.contract))
    }

    /// Sets `column`'s description as its comment (quoted by the server's own `format`).
    fn comment(&self, tx: &PgTx, schema: &str, table: &str, column: &Column) -> Result<(), Error> {
        let Some(description) = &column.description else {
            return Ok(());
        };
        let name = column.name.as_str();
        let fail = |e| {
            tx.error(
                format_args!("commenting column `{name}` of feature table {schema}.{table}"),
                e,
            )
        };
        let statement: String = tx
            .query_opt(
                "SELECT format('COMMENT ON COLUMN %I.%I.%I IS %L', $1::text, $2::text, $3::text,
                     $4::text)",
                &[&schema, &table, &name, description],
            )
            .map_err(fail)?
            .expect("SELECT gives one row")
            .get(0);
        tx.pool()
            .block_on(tx.client().batch_execute(&statement))
            .map_err(fail)
    }
}

/// `CREATE TABLE` for `contract`'s rows.
fn create_table(schema: &str, contract: &Contract, name: &str) -> String {
    let mut sql = format!(
        "CREATE TABLE {}.{} (\n    {RUN_ID_COLUMN} uuid NOT NULL REFERENCES runs (run_uuid) \
         DEFERRABLE INITIALLY DEFERRED,\n    {RECORD_ID_COLUMN} text NOT NULL,\n    \
         {ORDINAL_COLUMN} integer NOT NULL CHECK ({ORDINAL_COLUMN} >= 0)",
        ident(schema),
        ident(name)
    );
    for column in &contract.columns {
        sql.push_str(&format!(
            ",\n    {} {}{}",
            ident(&column.name),
            sql_type(column.ty),
            if column.nullable { "" } else { " NOT NULL" }
        ));
    }
    sql.push_str(&format!(
        ",\n    PRIMARY KEY ({RUN_ID_COLUMN}, {RECORD_ID_COLUMN}, {ORDINAL_COLUMN})\n)"
    ));
    sql
}

/// `hook` as its table would see its rows: its own columns, then the table's columns it lacks,
/// nullable (its rows leave them null). Classified against the table's contract, a required
/// table column that `hook` lacks is then "made nullable": destructive, as it must be.
fn as_table_sees(table: &Contract, hook: &Contract) -> Contract {
    let mut seen = hook.clone();
    for column in &table.columns {
        if !hook.columns.iter().any(|c| c.name == column.name) {
            seen.columns.push(Column {
                nullable: true,
                ..column.clone()
            });
        }
    }
    seen
}

impl Table {
    fn new(schema: &str, name: &str, contract: &Contract) -> Table {
        let mut columns = vec![
            RUN_ID_COLUMN.to_owned(),
            RECORD_ID_COLUMN.to_owned(),
            ORDINAL_COLUMN.to_owned(),
        ];
        columns.extend(contract.columns.iter().map(|c| ident(&c.name)));
        let mut types = vec![Type::UUID, Type::TEXT, Type::INT4];
        types.extend(contract.columns.iter().map(|c| pg_type(c.ty)));
        Table {
            schema: schema.to_owned(),
            name: name.to_owned(),
            copy: format!(
                "COPY {}.{} ({}) FROM STDIN (FORMAT binary)",
                ident(schema),
                ident(name),
                columns.join(", ")
            ),
            types,
            columns: contract.columns.iter().map(|c| c.ty).collect(),
            names: contract.columns.iter().map(|c| c.name.clone()).collect(),
        }
    }

    fn describe(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

impl FeatureTables for PgFeatureTables {
    fn describe(&self) -> String {
        format!("{}, schema {}", self.pool.describe(), self.schema)
    }

    fn begin(&self, hooks: &[TableHook<'_>]) -> Result<Box<dyn TableBatch>, Error> {
        let tables = hooks
            .iter()
            .map(|hook| self.prepare(hook).map(Arc::new))
            .collect::<Result<Vec<_>, Error>>()?;
        let tx = PgTx::begin(&self.pool, "BEGIN ISOLATION LEVEL READ COMMITTED")?;
        Ok(Box::new(PgTableBatch {
            conn: Arc::new(Mutex::new(Conn {
                tx: Some(tx),
                broken: None,
            })),
            tables,
        }))
    }
}

/// The batch's one transaction, shared by its hooks' sinks (one COPY at a time).
#[derive(Debug)]
struct Conn {
    /// `None` once the batch was recorded.
    tx: Option<PgTx>,
    /// Why the transaction can no longer commit, once a statement in it failed.
    broken: Option<String>,
}

impl Conn {
    fn tx(&self) -> Result<&PgTx, String> {
        match (&self.broken, &self.tx) {
            (Some(why), _) => Err(format!("an earlier write in the batch failed: {why}")),
            (None, Some(tx)) => Ok(tx),
            (None, None) => Err("the batch was already recorded".into()),
        }
    }
}

fn lock(conn: &Mutex<Conn>) -> std::sync::MutexGuard<'_, Conn> {
    conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A batch's rows in its one open transaction.
#[derive(Debug)]
struct PgTableBatch {
    conn: Arc<Mutex<Conn>>,
    tables: Vec<Arc<Table>>,
}

impl PgTableBatch {
    /// The transaction, for recording: the sinks are finished by now.
    fn into_tx(self) -> Result<PgTx, Error> {
        let mut conn = lock(&self.conn);
        let describe = conn
            .tx
            .as_ref()
            .map(|tx| tx.pool().describe().to_owned())
            .unwrap_or_default();
        if let Some(why) = conn.broken.take() {
            return Err(pg_error(
                &describe,
                "recording runs with their feature rows",
                PgError::new(format!(
                    "a write of the batch's rows failed, so none is kept: {why}"
                )),
            ));
        }
        Ok(conn.tx.take().expect("a batch is recorded once"))
    }
}

impl TableBatch for PgTableBatch {
    fn sink(&mut self, hook: usize, run_id: &str) -> Box<dyn FeatureSink> {
        Box::new(TableSink {
            conn: self.conn.clone(),
            table: self.tables[hook].clone(),
            run_id: run_id.to_owned(),
            run_uuid: uuid::Uuid::try_parse(run_id).ok(),
            buffer: Vec::new(),
            buffered_bytes: 0,
            rows: 0,
            content: Sha256::new(),
        })
    }

    fn record_run(self: Box<Self>, run: RunEntry<'_>) -> Result<(), Error> {
        let mut tx = self.into_tx()?;
        record_run_in(&mut tx, &run)?;
        Box::new(tx).commit()
    }

    fn record_batch(self: Box<Self>, batch: NewBatch<'_>) -> Result<BatchRecorded, Error> {
        let mut tx = self.into_tx()?;
        let recorded = record_batch_in(&mut tx, &batch)?;
        if recorded == BatchRecorded::Recorded {
            Box::new(tx).commit()?;
            log_batch_recorded(&batch);
        }
        // Otherwise `tx` is dropped: rolled back, rows and all.
        Ok(recorded)
    }
}

/// One run's rows into its hook's table, through the batch's transaction.
#[derive(Debug)]
struct TableSink {
    conn: Arc<Mutex<Conn>>,
    table: Arc<Table>,
    run_id: String,
    run_uuid: Option<uuid::Uuid>,
    buffer: Vec<Vec<PgValue>>,
    buffered_bytes: usize,
    rows: u64,
    content: Sha256,
}

impl TableSink {
    fn error(&self, operation: String, reason: String) -> Error {
        let conn = lock(&self.conn);
        let describe = conn.tx.as_ref().map_or("", |tx| tx.pool().describe());
        pg_error(describe, operation, PgError::new(reason))
    }

    /// Sends the buffered rows with one `COPY`.
    fn flush(&mut self) -> Result<(), Error> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.buffer);
        self.buffered_bytes = 0;
        let table = self.table.clone();
        let mut conn = lock(&self.conn);
        let operation = || {
            format!(
                "copying {} rows into feature table {}",
                rows.len(),
                table.describe()
            )
        };
        let tx = match conn.tx() {
            Ok(tx) => tx,
            Err(why) => {
                let describe = conn.tx.as_ref().map_or("", |tx| tx.pool().describe());
                return Err(pg_error(describe, operation(), PgError::new(why)));
            }
        };
        let copied = tx.pool().block_on(async {
            let sink = tx
                .client()
                .copy_in::<_, bytes::Bytes>(table.copy.as_str())
                .await?;
            let writer = BinaryCopyInWriter::new(sink, &table.types);
            let mut writer = std::pin::pin!(writer);
            for row in &rows {
                let values: Vec<&(dyn ToSql + Sync)> =
                    row.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
                writer.as_mut().write(&values).await?;
            }
            writer.finish().await
        });
        let failed = copied.err().map(|e| tx.error(operation(), e));
        match failed {
            None => Ok(()),
            Some(error) => {
                // The server aborted the transaction: nothing of the batch can commit now.
                conn.broken = Some(error.to_string());
                Err(error)
            }
        }
    }
}

impl FeatureSink for TableSink {
    fn write(&mut self, record_id: &str, _run_id: &str, rows: &CheckedRows) -> Result<(), Error> {
        let Some(run_uuid) = self.run_uuid else {
            return Err(self.error(
                format!("writing to feature table {}", self.table.describe()),
                format!("run id `{}` is not a uuid", self.run_id),
            ));
        };
        for (ordinal, row) in rows.rows.iter().enumerate() {
            let line = content_line(record_id, rows, ordinal);
            self.content.update(&line);
            self.buffered_bytes += line.len();
            let mut values = Vec::with_capacity(3 + row.len());
            values.push(PgValue::Uuid(run_uuid));
            values.push(PgValue::Text(
                no_nul(record_id)
                    .map_err(|reason| {
                        self.error(
                            format!(
                                "writing record `{record_id}` to feature table {}",
                                self.table.describe()
                            ),
                            reason,
                        )
                    })?
                    .to_owned(),
            ));
            values.push(PgValue::Ordinal(i32::try_from(ordinal).unwrap_or(i32::MAX)));
            for ((ty, name), value) in self.table.columns.iter().zip(&self.table.names).zip(row) {
                let value = PgValue::from_json(*ty, value).map_err(|reason| {
                    self.error(
                        format!(
                            "writing record `{record_id}` row {ordinal} to feature table \
                             {}, column `{name}`",
                            self.table.describe()
                        ),
                        reason,
                    )
                })?;
                values.push(value);
            }
            self.buffer.push(values);
            self.rows += 1;
        }
        if self.buffer.len() >= COPY_FLUSH_ROWS || self.buffered_bytes >= COPY_FLUSH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<Written, Error> {
        self.flush()?;
        Ok(Written::Table(TableOutput {
            schema: self.table.schema.clone(),
            table: self.table.name.clone(),
            rows: self.rows,
            content_sha256: hex(&self.content.clone().finalize()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The bytes `value` puts on the wire for a column of type `ty`.
    fn wire(value: &PgValue, ty: &Type) -> Option<Vec<u8>> {
        let mut out = BytesMut::new();
        match value.to_sql_checked(ty, &mut out).unwrap() {
            IsNull::Yes => None,
            IsNull::No => Some(out.to_vec()),
        }
    }

    #[test]
    fn every_column_type_has_its_sql_type() {
        let all = [
            (ColumnType::Text, "text"),
            (ColumnType::Integer, "bigint"),
            (ColumnType::Number, "double precision"),
            (ColumnType::Boolean, "boolean"),
            (ColumnType::Timestamp, "timestamptz"),
            (ColumnType::Date, "date"),
            (ColumnType::Uuid, "uuid"),
            (ColumnType::Json, "jsonb"),
            (ColumnType::FloatVector, "double precision[]"),
        ];
        for (ty, sql) in all {
            assert_eq!(sql_type(ty), sql);
            assert_eq!(pg_type(ty).name(), sql_name_of(sql), "{ty:?}");
        }
    }

    fn sql_name_of(sql: &str) -> &str {
        match sql {
            "bigint" => "int8",
            "double precision" => "float8",
            "boolean" => "bool",
            "double precision[]" => "_float8",
            other => other,
        }
    }

    #[test]
    fn timestamps_are_encoded_as_utc_microseconds_since_2000() {
        // 2000-01-01T02:00:01+02:00 is 2000-01-01T00:00:01Z: one second after PostgreSQL's
        // epoch, whatever the offset it was written with.
        let value =
            PgValue::from_json(ColumnType::Timestamp, &json!("2000-01-01T02:00:01+02:00")).unwrap();
        assert_eq!(
            wire(&value, &Type::TIMESTAMPTZ).unwrap(),
            1_000_000i64.to_be_bytes()
        );
    }

    #[test]
    fn dates_are_days_since_2000() {
        let value = PgValue::from_json(ColumnType::Date, &json!("2000-01-11")).unwrap();
        assert_eq!(wire(&value, &Type::DATE).unwrap(), 10i32.to_be_bytes());
    }

    #[test]
    fn scalars_are_big_endian() {
        let integer = PgValue::from_json(ColumnType::Integer, &json!(-2)).unwrap();
        assert_eq!(wire(&integer, &Type::INT8).unwrap(), (-2i64).to_be_bytes());
        let number = PgValue::from_json(ColumnType::Number, &json!(0.5)).unwrap();
        assert_eq!(wire(&number, &Type::FLOAT8).unwrap(), 0.5f64.to_be_bytes());
        let boolean = PgValue::from_json(ColumnType::Boolean, &json!(true)).unwrap();
        assert_eq!(wire(&boolean, &Type::BOOL).unwrap(), [1]);
        let text = PgValue::from_json(ColumnType::Text, &json!("hé")).unwrap();
        assert_eq!(wire(&text, &Type::TEXT).unwrap(), "hé".as_bytes());
    }

    #[test]
    fn uuids_are_their_sixteen_bytes() {
        let id = "67e55044-10b1-426f-9247-bb680e5fe0c8";
        let value = PgValue::from_json(ColumnType::Uuid, &json!(id)).unwrap();
        assert_eq!(
            wire(&value, &Type::UUID).unwrap(),
            uuid::Uuid::parse_str(id).unwrap().as_bytes()
        );
    }

    #[test]
    fn json_goes_in_as_jsonb_version_1() {
        let value = PgValue::from_json(ColumnType::Json, &json!({"a": [1, 2]})).unwrap();
        let bytes = wire(&value, &Type::JSONB).unwrap();
        assert_eq!(bytes[0], 1, "jsonb's binary format version");
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&bytes[1..]).unwrap(),
            json!({"a": [1, 2]})
        );
    }

    #[test]
    fn float_vectors_are_one_dimensional_float8_arrays() {
        let value = PgValue::from_json(ColumnType::FloatVector, &json!([0.5, -1.0])).unwrap();
        let bytes = wire(&value, &Type::FLOAT8_ARRAY).unwrap();
        let int = |at: usize| i32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
        assert_eq!(int(0), 1, "dimensions");
        assert_eq!(int(4), 0, "no nulls");
        assert_eq!(int(8) as u32, Type::FLOAT8.oid(), "element type");
        assert_eq!((int(12), int(16)), (2, 1), "length and lower bound");
        assert_eq!(int(20), 8, "first element's length");
        assert_eq!(bytes[24..32], 0.5f64.to_be_bytes());
        assert_eq!(bytes[36..44], (-1.0f64).to_be_bytes());
    }

    #[test]
    fn null_is_null_in_any_column() {
        for ty in [ColumnType::Text, ColumnType::Json, ColumnType::FloatVector] {
            let value = PgValue::from_json(ty, &serde_json::Value::Null).unwrap();
            assert_eq!(value, PgValue::Null);
            assert_eq!(wire(&value, &pg_type(ty)), None);
        }
    }

    #[test]
    fn what_postgresql_cannot_hold_is_refused_with_why() {
        let nul = PgValue::from_json(ColumnType::Text, &json!("a\u{0}b")).unwrap_err();
        assert!(nul.contains("NUL"), "{nul}");
        let nested = PgValue::from_json(ColumnType::Json, &json!({"k": ["x\u{0}"]})).unwrap_err();
        assert!(nested.contains("NUL"), "{nested}");
        let wrong = PgValue::from_json(ColumnType::Integer, &json!("3")).unwrap_err();
        assert_eq!(wrong, r#""3" does not fit a column of type integer"#);
    }

    #[test]
    fn a_value_of_another_type_is_refused_on_the_wire() {
        let text = PgValue::Text("x".into());
        let mut out = BytesMut::new();
        assert!(text.to_sql_checked(&Type::INT8, &mut out).is_err());
    }

    #[test]
    fn names_postgresql_would_cut_or_fold_are_refused() {
        assert!(check_identifier("schema", "hookhost_features").is_ok());
        assert!(check_identifier("schema", &"a".repeat(63)).is_ok());
        let long = check_identifier("schema", &"a".repeat(64)).unwrap_err();
        assert!(long.contains("63 bytes"), "{long}");
        assert!(check_identifier("schema", "Features").is_err());
        assert!(check_identifier("schema", "a-b").is_err());
        assert!(check_identifier("schema", "").is_err());
    }

    #[test]
    fn an_older_contract_fits_a_grown_table_but_a_missing_required_column_does_not() {
        use crate::contract::{Cardinality, test_column};
        let v1 = Contract {
            feature: "f".into(),
            cardinality: Cardinality::One,
            columns: vec![test_column("a", ColumnType::Integer, false)],
        };
        let mut v2 = v1.clone();
        v2.columns.push(test_column("b", ColumnType::Text, true));
        // The table grew to v2; v1's rows leave `b` null.
        assert_eq!(
            classify(&v2, &as_table_sees(&v2, &v1)),
            Evolution::Identical
        );
        assert_eq!(
            classify(&v1, &as_table_sees(&v1, &v2)),
            Evolution::Additive {
                added: vec!["b".into()]
            }
        );
        let without_a = Contract {
            columns: vec![test_column("b", ColumnType::Text, true)],
            ..v1.clone()
        };
        assert!(matches!(
            classify(&v2, &as_table_sees(&v2, &without_a)),
            Evolution::Destructive { .. }
        ));
    }

    #[test]
    fn the_table_is_made_from_the_contract() {
        use crate::contract::{Cardinality, test_column};
        let contract = Contract {
            feature: "f".into(),
            cardinality: Cardinality::Many,
            columns: vec![
                test_column("n", ColumnType::Integer, false),
                test_column("v", ColumnType::FloatVector, true),
            ],
        };
        let sql = create_table("s", &contract, "h");
        assert!(sql.starts_with("CREATE TABLE \"s\".\"h\""), "{sql}");
        assert!(
            sql.contains(
                "run_id uuid NOT NULL REFERENCES runs (run_uuid) DEFERRABLE INITIALLY DEFERRED"
            ),
            "{sql}"
        );
        assert!(sql.contains("\"n\" bigint NOT NULL,"), "{sql}");
        assert!(sql.contains("\"v\" double precision[],"), "{sql}");
        let table = Table::new("s", "h", &contract);
        assert_eq!(
            table.copy,
            "COPY \"s\".\"h\" (run_id, record_id, ordinal, \"n\", \"v\") FROM STDIN (FORMAT binary)"
        );
        assert_eq!(
            table.types,
            [
                Type::UUID,
                Type::TEXT,
                Type::INT4,
                Type::INT8,
                Type::FLOAT8_ARRAY
            ]
        );
    }
}
