//! `features.parquet`: one run's feature rows as a Parquet file, typed from the contract.
//!
//! The file has one column per contract column, after three of its own:
//!
//! | column | Arrow type | Parquet type |
//! |---|---|---|
//! | `record_id` | `Utf8`, required | `BYTE_ARRAY` (`STRING`) |
//! | `run_id` | `Utf8`, required | `BYTE_ARRAY` (`STRING`): `run.json`'s `run_id`, as text, so it joins without a cast |
//! | `ordinal` | `Int32`, required | `INT32`: the row's 0-based position among its record's rows |
//!
//! (the names of the PostgreSQL feature tables' own columns), then the contract's columns in
//! contract order, each nullable exactly when the contract says so ([`schema`]):
//!
//! | contract | Arrow type | Parquet type |
//! |---|---|---|
//! | `text` | `Utf8` | `BYTE_ARRAY` (`STRING`) |
//! | `integer` | `Int64` | `INT64` |
//! | `number` | `Float64` | `DOUBLE` |
//! | `boolean` | `Boolean` | `BOOLEAN` |
//! | `timestamp` | `Timestamp(µs, "UTC")` | `INT64` (`TIMESTAMP(MICROS, UTC)`): the offset normalised away, below a µs truncated toward the past |
//! | `date` | `Date32` | `INT32` (`DATE`) |
//! | `uuid` | `FixedSizeBinary(16)`, extension `arrow.uuid` | `FIXED_LEN_BYTE_ARRAY(16)` (`UUID`) |
//! | `json` | `Utf8`, extension `arrow.json` | `BYTE_ARRAY` (`JSON`): the document as compact JSON text |
//! | `float_vector` | `List<Float64>` (items required) | a `LIST` of `DOUBLE` |
//!
//! Rows are gathered into Arrow arrays a bounded batch at a time
//! ([`DEFAULT_BATCH_ROWS`], [`DEFAULT_BATCH_BYTES`]) and handed to the arrow-rs writer, which
//! cuts row groups of at most [`DEFAULT_ROW_GROUP_ROWS`] rows and about
//! [`DEFAULT_ROW_GROUP_BYTES`] encoded bytes, compressed with zstd
//! ([`DEFAULT_ZSTD_LEVEL`]). Memory is bounded by one batch and one row group, whatever the
//! run's length.
//!
//! The file is hashed as it is written (its `sha256` and `bytes` in `run.json` are those of
//! the bytes on disk); its `content_sha256` is that of the rows rendered as
//! [`content_line`]s, the same as a `features.jsonl` of the same rows.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, FixedSizeBinaryBuilder, Float64Builder, Int32Builder,
    Int64Builder, ListBuilder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::extension::{Json, Uuid};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use cap_std::fs::File;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::{FeatureSink, Written, content_line};
use crate::contract::{CheckedRows, ColumnType, Contract};
use crate::digest::hex;
use crate::error::Error;
use crate::output::PARQUET_FILE;
use crate::provenance::OutputFile;

/// The most rows in one row group. Readers skip and parallelise by row group; a smaller one
/// costs more metadata, a larger one more of the writer's memory.
pub const DEFAULT_ROW_GROUP_ROWS: usize = 128 * 1024;
/// About the most encoded bytes in one row group: the writer starts a new one when the one
/// in progress is estimated at this size, so wide rows (long float vectors) make shorter
/// row groups instead of more memory.
pub const DEFAULT_ROW_GROUP_BYTES: usize = 64 * 1024 * 1024;
/// The most rows gathered into Arrow arrays before they go to the writer.
pub const DEFAULT_BATCH_ROWS: usize = 8 * 1024;
/// About the most bytes of values gathered into Arrow arrays before they go to the writer.
pub const DEFAULT_BATCH_BYTES: usize = 8 * 1024 * 1024;
/// The zstd level every column is compressed with (1 is fastest, 22 smallest).
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

/// The columns `features.parquet` has before the contract's, in order.
pub const OWN_COLUMNS: [&str; 3] = ["record_id", "run_id", "ordinal"];

/// How `features.parquet` is cut and compressed. By default the `DEFAULT_*` constants of
/// this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParquetOptions {
    /// The most rows in one row group. By default [`DEFAULT_ROW_GROUP_ROWS`].
    pub row_group_rows: usize,
    /// About the most encoded bytes in one row group (the row-count bound applies too,
    /// whichever is reached first). By default [`DEFAULT_ROW_GROUP_BYTES`].
    pub row_group_bytes: usize,
    /// The zstd level, 1 to 22. By default [`DEFAULT_ZSTD_LEVEL`].
    pub zstd_level: i32,
}

impl Default for ParquetOptions {
    fn default() -> Self {
        ParquetOptions {
            row_group_rows: DEFAULT_ROW_GROUP_ROWS,
            row_group_bytes: DEFAULT_ROW_GROUP_BYTES,
            zstd_level: DEFAULT_ZSTD_LEVEL,
        }
    }
}

impl ParquetOptions {
    /// Sets the most rows in one row group (at least 1). It bounds the writer's memory
    /// together with [`with_row_group_bytes`](Self::with_row_group_bytes).
    pub fn with_row_group_rows(mut self, rows: usize) -> Self {
        self.row_group_rows = rows.max(1);
        self
    }

    /// Sets about the most encoded bytes in one row group (at least 1).
    pub fn with_row_group_bytes(mut self, bytes: usize) -> Self {
        self.row_group_bytes = bytes.max(1);
        self
    }

    /// Sets the zstd level (clamped to 1..=22).
    pub fn with_zstd_level(mut self, level: i32) -> Self {
        self.zstd_level = level.clamp(1, 22);
        self
    }

    fn properties(&self) -> Result<WriterProperties, String> {
        let level = ZstdLevel::try_new(self.zstd_level).map_err(|e| e.to_string())?;
        Ok(WriterProperties::builder()
            .set_compression(Compression::ZSTD(level))
            .set_max_row_group_row_count(Some(self.row_group_rows.max(1)))
            .set_max_row_group_bytes(Some(self.row_group_bytes.max(1)))
            .set_created_by(format!("hookhost {}", env!("CARGO_PKG_VERSION")))
            .build())
    }
}

/// The Arrow schema of `features.parquet` for `contract`: [`OWN_COLUMNS`], then one field per
/// contract column (see the module's table). Refused when a contract column has the name of
/// one of the file's own columns.
pub fn schema(contract: &Contract) -> Result<Schema, String> {
    let mut fields = vec![
        Field::new(OWN_COLUMNS[0], DataType::Utf8, false),
        Field::new(OWN_COLUMNS[1], DataType::Utf8, false),
        Field::new(OWN_COLUMNS[2], DataType::Int32, false),
    ];
    for column in &contract.columns {
        if OWN_COLUMNS.contains(&column.name.as_str()) {
            return Err(format!(
                "contract column `{}` has the name of a column features.parquet adds itself \
                 ({}); use --format jsonl for this hook",
                column.name,
                OWN_COLUMNS.join(", ")
            ));
        }
        let field = Field::new(&column.name, arrow_type(column.ty), column.nullable);
        let field = match column.ty {
            ColumnType::Uuid => field.with_extension_type(Uuid),
            ColumnType::Json => field.with_extension_type(Json::default()),
            _ => field,
        };
        fields.push(field);
    }
    Ok(Schema::new(fields))
}

/// The Arrow type a contract column type is stored as.
pub fn arrow_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Text | ColumnType::Json => DataType::Utf8,
        ColumnType::Integer => DataType::Int64,
        ColumnType::Number => DataType::Float64,
        ColumnType::Boolean => DataType::Boolean,
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
        ColumnType::Date => DataType::Date32,
        ColumnType::Uuid => DataType::FixedSizeBinary(16),
        ColumnType::FloatVector => DataType::List(Arc::new(vector_item())),
    }
}

const UTC: &str = "UTC";

/// A float vector's item: a required double (vectors hold finite numbers, never null).
fn vector_item() -> Field {
    Field::new("item", DataType::Float64, false)
}

/// Microseconds since 1970-01-01T00:00:00Z of an RFC 3339 timestamp, its offset normalised
/// away; a fraction below the microsecond is truncated toward the past.
pub fn timestamp_micros(text: &str) -> Result<i64, String> {
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("`{text}` is not an RFC 3339 timestamp ({e})"))?;
    i64::try_from(at.unix_timestamp_nanos().div_euclid(1000))
        .map_err(|_| format!("`{text}` is out of range for microseconds since 1970"))
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
pub fn date_days(text: &str) -> Result<i32, String> {
    const UNIX_EPOCH_JULIAN_DAY: i32 = 2_440_588;
    let date = time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|e| format!("`{text}` is not a YYYY-MM-DD date ({e})"))?;
    Ok(date.to_julian_day() - UNIX_EPOCH_JULIAN_DAY)
}

/// The 16 bytes of a hyphenated UUID, in RFC 4122 (big-endian) order as Parquet's UUID type
/// stores them.
pub fn uuid_bytes(text: &str) -> Result<[u8; 16], String> {
    uuid::Uuid::try_parse(text)
        .map(|u| *u.as_bytes())
        .map_err(|e| format!("`{text}` is not a UUID ({e})"))
}

/// One value checked and converted for its column.
#[derive(Debug)]
enum Cell<'a> {
    Null,
    Text(&'a str),
    Integer(i64),
    Number(f64),
    Boolean(bool),
    Micros(i64),
    Days(i32),
    Uuid([u8; 16]),
    Json(String),
    Vector(&'a [Value]),
}

/// One contract column's values gathered for the next batch.
#[derive(Debug)]
enum ColumnBuilder {
    Text(StringBuilder),
    Integer(Int64Builder),
    Number(Float64Builder),
    Boolean(BooleanBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    Date(Date32Builder),
    Uuid(FixedSizeBinaryBuilder),
    Json(StringBuilder),
    FloatVector(ListBuilder<Float64Builder>),
}

impl ColumnBuilder {
    fn new(ty: ColumnType) -> ColumnBuilder {
        match ty {
            ColumnType::Text => ColumnBuilder::Text(StringBuilder::new()),
            ColumnType::Integer => ColumnBuilder::Integer(Int64Builder::new()),
            ColumnType::Number => ColumnBuilder::Number(Float64Builder::new()),
            ColumnType::Boolean => ColumnBuilder::Boolean(BooleanBuilder::new()),
            ColumnType::Timestamp => {
                ColumnBuilder::Timestamp(TimestampMicrosecondBuilder::new().with_timezone(UTC))
            }
            ColumnType::Date => ColumnBuilder::Date(Date32Builder::new()),
            ColumnType::Uuid => ColumnBuilder::Uuid(FixedSizeBinaryBuilder::new(16)),
            ColumnType::Json => ColumnBuilder::Json(StringBuilder::new()),
            ColumnType::FloatVector => ColumnBuilder::FloatVector(
                ListBuilder::new(Float64Builder::new()).with_field(Arc::new(vector_item())),
            ),
        }
    }

    /// Checks and converts one value for this column, without appending it (so a row is
    /// appended whole or not at all).
    fn convert<'a>(&self, value: &'a Value) -> Result<Cell<'a>, String> {
        if value.is_null() {
            return Ok(Cell::Null);
        }
        let wrong = || format!("expected {}, got `{value}`", self.type_name());
        Ok(match self {
            ColumnBuilder::Text(_) => Cell::Text(value.as_str().ok_or_else(wrong)?),
            ColumnBuilder::Integer(_) => Cell::Integer(value.as_i64().ok_or_else(wrong)?),
            ColumnBuilder::Number(_) => Cell::Number(value.as_f64().ok_or_else(wrong)?),
            ColumnBuilder::Boolean(_) => Cell::Boolean(value.as_bool().ok_or_else(wrong)?),
            ColumnBuilder::Timestamp(_) => {
                Cell::Micros(timestamp_micros(value.as_str().ok_or_else(wrong)?)?)
            }
            ColumnBuilder::Date(_) => Cell::Days(date_days(value.as_str().ok_or_else(wrong)?)?),
            ColumnBuilder::Uuid(_) => Cell::Uuid(uuid_bytes(value.as_str().ok_or_else(wrong)?)?),
            ColumnBuilder::Json(_) => {
                Cell::Json(serde_json::to_string(value).expect("JSON values serialize"))
            }
            ColumnBuilder::FloatVector(_) => {
                let items = value.as_array().ok_or_else(wrong)?;
                if let Some(item) = items.iter().find(|item| item.as_f64().is_none()) {
                    return Err(format!("expected a number in the vector, got `{item}`"));
                }
                Cell::Vector(items)
            }
        })
    }

    /// Appends a value [`convert`](Self::convert) gave for this column; returns about how
    /// many bytes it adds.
    fn append(&mut self, cell: Cell<'_>) -> usize {
        match (self, cell) {
            (builder, Cell::Null) => {
                builder.append_null();
                1
            }
            (ColumnBuilder::Text(b), Cell::Text(text)) => {
                b.append_value(text);
                text.len() + 4
            }
            (ColumnBuilder::Json(b), Cell::Json(text)) => {
                b.append_value(&text);
                text.len() + 4
            }
            (ColumnBuilder::Integer(b), Cell::Integer(i)) => {
                b.append_value(i);
                8
            }
            (ColumnBuilder::Number(b), Cell::Number(f)) => {
                b.append_value(f);
                8
            }
            (ColumnBuilder::Boolean(b), Cell::Boolean(v)) => {
                b.append_value(v);
                1
            }
            (ColumnBuilder::Timestamp(b), Cell::Micros(micros)) => {
                b.append_value(micros);
                8
            }
            (ColumnBuilder::Date(b), Cell::Days(days)) => {
                b.append_value(days);
                4
            }
            (ColumnBuilder::Uuid(b), Cell::Uuid(bytes)) => {
                b.append_value(bytes)
                    .expect("16 bytes for a 16-byte column");
                16
            }
            (ColumnBuilder::FloatVector(b), Cell::Vector(items)) => {
                for item in items {
                    b.values()
                        .append_value(item.as_f64().expect("checked by convert"));
                }
                b.append(true);
                8 * items.len() + 4
            }
            (builder, cell) => {
                unreachable!("{cell:?} converted for another column than {builder:?}")
            }
        }
    }

    fn append_null(&mut self) {
        match self {
            ColumnBuilder::Text(b) | ColumnBuilder::Json(b) => b.append_null(),
            ColumnBuilder::Integer(b) => b.append_null(),
            ColumnBuilder::Number(b) => b.append_null(),
            ColumnBuilder::Boolean(b) => b.append_null(),
            ColumnBuilder::Timestamp(b) => b.append_null(),
            ColumnBuilder::Date(b) => b.append_null(),
            ColumnBuilder::Uuid(b) => b.append_null(),
            ColumnBuilder::FloatVector(b) => b.append_null(),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            ColumnBuilder::Text(_) => "text",
            ColumnBuilder::Integer(_) => "an integer",
            ColumnBuilder::Number(_) => "a number",
            ColumnBuilder::Boolean(_) => "a boolean",
            ColumnBuilder::Timestamp(_) => "a timestamp",
            ColumnBuilder::Date(_) => "a date",
            ColumnBuilder::Uuid(_) => "a uuid",
            ColumnBuilder::Json(_) => "JSON",
            ColumnBuilder::FloatVector(_) => "a float vector",
        }
    }

    /// The values gathered so far as an array; the builder starts empty again.
    fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Text(b) | ColumnBuilder::Json(b) => Arc::new(b.finish()),
            ColumnBuilder::Integer(b) => Arc::new(b.finish()),
            ColumnBuilder::Number(b) => Arc::new(b.finish()),
            ColumnBuilder::Boolean(b) => Arc::new(b.finish()),
            ColumnBuilder::Timestamp(b) => Arc::new(b.finish()),
            ColumnBuilder::Date(b) => Arc::new(b.finish()),
            ColumnBuilder::Uuid(b) => Arc::new(b.finish()),
            ColumnBuilder::FloatVector(b) => Arc::new(b.finish()),
        }
    }
}

/// The file under the Parquet writer: every byte written is hashed and counted, so `run.json`
/// lists the bytes as they went to disk.
struct HashingFile {
    file: File,
    hasher: Sha256,
    bytes: u64,
}

impl Write for HashingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// The Parquet feature file of one run directory.
pub struct ParquetFile {
    writer: ArrowWriter<HashingFile>,
    schema: SchemaRef,
    record_ids: StringBuilder,
    run_ids: StringBuilder,
    ordinals: Int32Builder,
    columns: Vec<ColumnBuilder>,
    names: Vec<String>,
    batch_rows: usize,
    batch_bytes: usize,
    content: Sha256,
    rows: u64,
    path: PathBuf,
}

impl std::fmt::Debug for ParquetFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetFile")
            .field("path", &self.path)
            .field("rows", &self.rows)
            .field("batch_rows", &self.batch_rows)
            .finish_non_exhaustive()
    }
}

impl ParquetFile {
    /// Writes `contract`'s rows into `file`, created at `path` (named in errors), cut and
    /// compressed as `options` say. Fails when the contract cannot be a Parquet schema (a
    /// column named like one of [`OWN_COLUMNS`]).
    pub(crate) fn new(
        file: File,
        path: PathBuf,
        contract: &Contract,
        options: &ParquetOptions,
    ) -> Result<ParquetFile, Error> {
        let fail = |reason: String| Error::FeatureFile {
            path: path.clone(),
            reason,
        };
        let schema = Arc::new(schema(contract).map_err(fail)?);
        let properties = options.properties().map_err(fail)?;
        let out = HashingFile {
            file,
            hasher: Sha256::new(),
            bytes: 0,
        };
        let writer = ArrowWriter::try_new(out, schema.clone(), Some(properties))
            .map_err(|e| fail(e.to_string()))?;
        Ok(ParquetFile {
            writer,
            schema,
            record_ids: StringBuilder::new(),
            run_ids: StringBuilder::new(),
            ordinals: Int32Builder::new(),
            columns: contract
                .columns
                .iter()
                .map(|c| ColumnBuilder::new(c.ty))
                .collect(),
            names: contract.columns.iter().map(|c| c.name.clone()).collect(),
            batch_rows: 0,
            batch_bytes: 0,
            content: Sha256::new(),
            rows: 0,
            path,
        })
    }

    /// Creates `path` (which must not exist yet) and writes `contract`'s rows there as
    /// Parquet, outside any run directory: for tools and benchmarks. A run's own file is
    /// created in its staging directory by the run.
    ///
    /// ```
    /// use hookhost::contract::{Cardinality, CheckedRows, Column, ColumnType, Contract};
    /// use hookhost::sink::{FeatureSink, ParquetOptions, Written};
    /// use hookhost::sink::parquet::ParquetFile;
    ///
    /// let contract = Contract {
    ///     feature: "lengths".into(),
    ///     cardinality: Cardinality::One,
    ///     columns: vec![Column {
    ///         name: "length".into(),
    ///         ty: ColumnType::Integer,
    ///         nullable: false,
    ///         description: None,
    ///     }],
    /// };
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("features.parquet");
    /// let mut sink = Box::new(ParquetFile::create(&path, &contract, &ParquetOptions::default())?);
    /// let rows = CheckedRows::from_values(&contract, vec![vec![serde_json::json!(42)]]);
    /// sink.write("doc-1", "0193a1b2-0000-7000-8000-000000000000", &rows)?;
    /// let Written::File { file, .. } = sink.finish()? else { unreachable!() };
    /// assert_eq!((file.rows, file.bytes), (1, std::fs::metadata(&path).unwrap().len()));
    /// # Ok::<(), hookhost::Error>(())
    /// ```
    pub fn create(
        path: &Path,
        contract: &Contract,
        options: &ParquetOptions,
    ) -> Result<ParquetFile, Error> {
        let file = std::fs::File::create_new(path).map_err(|e| Error::io(path, e))?;
        ParquetFile::new(File::from_std(file), path.to_owned(), contract, options)
    }

    fn error(&self, reason: impl Into<String>) -> Error {
        Error::FeatureFile {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    /// Hands the rows gathered so far to the writer as one record batch.
    fn flush_batch(&mut self) -> Result<(), Error> {
        if self.batch_rows == 0 {
            return Ok(());
        }
        let mut arrays: Vec<ArrayRef> = vec![
            Arc::new(self.record_ids.finish()),
            Arc::new(self.run_ids.finish()),
            Arc::new(self.ordinals.finish()),
        ];
        arrays.extend(self.columns.iter_mut().map(ColumnBuilder::finish));
        self.batch_rows = 0;
        self.batch_bytes = 0;
        let batch = RecordBatch::try_new(self.schema.clone(), arrays)
            .map_err(|e| self.error(format!("building a record batch: {e}")))?;
        self.writer
            .write(&batch)
            .map_err(|e| self.error(format!("writing rows: {e}")))
    }
}

impl FeatureSink for ParquetFile {
    fn write(&mut self, record_id: &str, run_id: &str, rows: &CheckedRows) -> Result<(), Error> {
        for (ordinal, row) in rows.rows.iter().enumerate() {
            if row.len() != self.columns.len() {
                return Err(self.error(format!(
                    "record `{record_id}`, row {ordinal}: {} values for {} columns",
                    row.len(),
                    self.columns.len()
                )));
            }
            let ordinal_value = i32::try_from(ordinal).map_err(|_| {
                self.error(format!("record `{record_id}` has over {} rows", i32::MAX))
            })?;
            let mut cells = Vec::with_capacity(row.len());
            for (index, (builder, value)) in self.columns.iter().zip(row).enumerate() {
                match builder.convert(value) {
                    Ok(cell) => cells.push(cell),
                    Err(reason) => {
                        let column = &self.names[index];
                        return Err(self.error(format!(
                            "record `{record_id}`, row {ordinal}, column `{column}`: {reason}"
                        )));
                    }
                }
            }
            for (builder, cell) in self.columns.iter_mut().zip(cells) {
                self.batch_bytes += builder.append(cell);
            }
            self.record_ids.append_value(record_id);
            self.run_ids.append_value(run_id);
            self.ordinals.append_value(ordinal_value);
            self.batch_bytes += record_id.len() + run_id.len() + 12;
            self.batch_rows += 1;
            self.rows += 1;
            self.content.update(content_line(record_id, rows, ordinal));
            if self.batch_rows >= DEFAULT_BATCH_ROWS || self.batch_bytes >= DEFAULT_BATCH_BYTES {
                self.flush_batch()?;
            }
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<Written, Error> {
        self.flush_batch()?;
        let ParquetFile {
            writer,
            content,
            rows,
            path,
            ..
        } = *self;
        let out = writer.into_inner().map_err(|e| Error::FeatureFile {
            path: path.clone(),
            reason: format!("closing the file: {e}"),
        })?;
        out.file.sync_all().map_err(|e| Error::io(&path, e))?;
        Ok(Written::File {
            name: PARQUET_FILE,
            file: OutputFile {
                sha256: hex(&out.hasher.finalize()),
                content_sha256: hex(&content.finalize()),
                bytes: out.bytes,
                rows,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{Cardinality, test_column};
    use arrow_array::cast::AsArray;
    use arrow_array::types::{
        Date32Type, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType,
    };
    use arrow_array::{Array, FixedSizeBinaryArray};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::basic::LogicalType;
    use serde_json::json;

    fn every_type() -> Contract {
        Contract {
            feature: "every".into(),
            cardinality: Cardinality::Many,
            columns: vec![
                test_column("name", ColumnType::Text, false),
                test_column("count", ColumnType::Integer, true),
                test_column("score", ColumnType::Number, true),
                test_column("flag", ColumnType::Boolean, true),
                test_column("at", ColumnType::Timestamp, true),
                test_column("day", ColumnType::Date, true),
                test_column("key", ColumnType::Uuid, true),
                test_column("extra", ColumnType::Json, true),
                test_column("embedding", ColumnType::FloatVector, true),
            ],
        }
    }

    #[test]
    fn schema_types_and_nullability_come_from_the_contract() {
        let schema = schema(&every_type()).unwrap();
        let described: Vec<(&str, DataType, bool)> = schema
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type().clone(), f.is_nullable()))
            .collect();
        let utc = Some(Arc::from("UTC"));
        assert_eq!(
            described,
            vec![
                ("record_id", DataType::Utf8, false),
                ("run_id", DataType::Utf8, false),
                ("ordinal", DataType::Int32, false),
                ("name", DataType::Utf8, false),
                ("count", DataType::Int64, true),
                ("score", DataType::Float64, true),
                ("flag", DataType::Boolean, true),
                ("at", DataType::Timestamp(TimeUnit::Microsecond, utc), true),
                ("day", DataType::Date32, true),
                ("key", DataType::FixedSizeBinary(16), true),
                ("extra", DataType::Utf8, true),
                (
                    "embedding",
                    DataType::List(Arc::new(Field::new("item", DataType::Float64, false))),
                    true
                ),
            ]
        );
        assert_eq!(
            schema.field_with_name("key").unwrap().extension_type_name(),
            Some("arrow.uuid")
        );
        assert_eq!(
            schema
                .field_with_name("extra")
                .unwrap()
                .extension_type_name(),
            Some("arrow.json")
        );
        assert_eq!(
            schema
                .field_with_name("name")
                .unwrap()
                .extension_type_name(),
            None
        );
    }

    #[test]
    fn a_column_named_like_an_own_column_is_refused_by_name() {
        for own in OWN_COLUMNS {
            let mut contract = every_type();
            contract.columns[1].name = own.into();
            let reason = schema(&contract).unwrap_err();
            assert!(reason.contains(&format!("`{own}`")), "{reason}");
        }
    }

    #[test]
    fn timestamps_are_microseconds_in_utc_whatever_their_offset() {
        let utc = timestamp_micros("2024-05-01T10:00:00Z").unwrap();
        assert_eq!(utc, 1_714_557_600_000_000);
        assert_eq!(timestamp_micros("2024-05-01T12:00:00+02:00").unwrap(), utc);
        assert_eq!(timestamp_micros("2024-05-01T05:30:00-04:30").unwrap(), utc);
        assert_eq!(
            timestamp_micros("2024-05-01T10:00:00.123456789Z").unwrap(),
            utc + 123_456,
            "below a microsecond is truncated"
        );
        assert_eq!(
            timestamp_micros("1969-12-31T23:59:59.9999995Z").unwrap(),
            -1,
            "toward the past, before 1970 too"
        );
        assert!(
            timestamp_micros("yesterday")
                .unwrap_err()
                .contains("yesterday")
        );
    }

    #[test]
    fn dates_are_days_since_1970_and_uuids_their_sixteen_bytes() {
        assert_eq!(date_days("1970-01-01").unwrap(), 0);
        assert_eq!(date_days("2024-05-01").unwrap(), 19_844);
        assert_eq!(date_days("1969-12-31").unwrap(), -1);
        assert!(date_days("2024-13-01").is_err());
        assert_eq!(
            uuid_bytes("67e55044-10b1-426f-9247-bb680e5fe0c8").unwrap(),
            [
                0x67, 0xe5, 0x50, 0x44, 0x10, 0xb1, 0x42, 0x6f, 0x92, 0x47, 0xbb, 0x68, 0x0e, 0x5f,
                0xe0, 0xc8
            ]
        );
        assert!(uuid_bytes("not-a-uuid").is_err());
    }

    fn full_row(i: i64) -> Vec<Value> {
        vec![
            json!(format!("row {i}")),
            json!(i),
            json!(i as f64 / 4.0),
            json!(i % 2 == 0),
            json!("2024-05-01T12:00:00.5+02:00"),
            json!("2024-05-01"),
            json!("67e55044-10b1-426f-9247-bb680e5fe0c8"),
            json!({"i": i, "tags": ["a", "b"]}),
            json!([0.5, -1.0, i as f64]),
        ]
    }

    fn null_row() -> Vec<Value> {
        let mut row = vec![json!("nulls")];
        row.extend(std::iter::repeat_n(Value::Null, 8));
        row
    }

    /// Writes `records` (id, rows) into a Parquet file and, beside it, a JSONL file of the
    /// same rows; returns the two sinks' outputs and the Parquet file's path.
    fn write_both(
        records: &[(String, Vec<Vec<Value>>)],
        options: &ParquetOptions,
    ) -> (OutputFile, OutputFile, tempfile::TempDir) {
        let contract = every_type();
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join(PARQUET_FILE);
        let file = File::from_std(std::fs::File::create(&path).unwrap());
        let mut parquet: Box<dyn FeatureSink> =
            Box::new(ParquetFile::new(file, path, &contract, options).unwrap());
        let dir = crate::output::OutputDir::create(&temp.path().join("jsonl"), "run-1").unwrap();
        let (file, path) = dir.create_file(crate::output::FEATURES_FILE).unwrap();
        let mut jsonl: Box<dyn FeatureSink> =
            Box::new(super::super::jsonl::JsonlFile::new(file, path));
        for (id, rows) in records {
            let rows = CheckedRows::from_values(&contract, rows.clone());
            parquet.write(id, "run-1", &rows).unwrap();
            jsonl.write(id, "run-1", &rows).unwrap();
        }
        let file_of = |written: Written| match written {
            Written::File { file, .. } => file,
            other => panic!("{other:?}"),
        };
        (
            file_of(parquet.finish().unwrap()),
            file_of(jsonl.finish().unwrap()),
            temp,
        )
    }

    #[test]
    fn rows_read_back_with_their_types_and_nulls() {
        let records = vec![
            ("a".to_owned(), vec![full_row(1), full_row(2)]),
            ("b".to_owned(), vec![]),
            ("c".to_owned(), vec![null_row()]),
        ];
        let (parquet, jsonl, temp) = write_both(&records, &ParquetOptions::default());
        let path = temp.path().join(PARQUET_FILE);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(parquet.bytes, bytes.len() as u64);
        assert_eq!(parquet.sha256, hex(&Sha256::digest(&bytes)));
        assert_eq!(parquet.rows, 3);
        assert_eq!(parquet.content_sha256, jsonl.content_sha256);
        assert_eq!(parquet.rows, jsonl.rows);

        let reader =
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap()).unwrap();
        let leaves = reader.parquet_schema();
        let logical = |name: &str| {
            leaves
                .columns()
                .iter()
                .find(|c| c.path().parts()[0] == name)
                .and_then(|c| c.logical_type_ref().cloned())
        };
        assert_eq!(logical("key"), Some(LogicalType::Uuid));
        assert_eq!(logical("extra"), Some(LogicalType::Json));
        assert!(matches!(
            logical("at"),
            Some(LogicalType::Timestamp(t)) if t.is_adjusted_to_u_t_c
                && t.unit == parquet::basic::TimeUnit::MICROS
        ));
        assert_eq!(logical("day"), Some(LogicalType::Date));
        let batches: Vec<RecordBatch> = reader.build().unwrap().map(|b| b.unwrap()).collect();
        assert_eq!(batches.len(), 1);
        let batch = &batches[0];
        let column = |name: &str| batch.column_by_name(name).unwrap().clone();
        let ids = column("record_id");
        let ids = ids.as_string::<i32>();
        assert_eq!(ids.iter().flatten().collect::<Vec<_>>(), ["a", "a", "c"]);
        let ordinals = column("ordinal");
        assert_eq!(ordinals.as_primitive::<Int32Type>().values(), &[0, 1, 0]);
        let counts = column("count");
        let counts = counts.as_primitive::<Int64Type>();
        assert_eq!((counts.value(1), counts.is_null(2)), (2, true));
        let scores = column("score");
        assert_eq!(scores.as_primitive::<Float64Type>().value(1), 0.5);
        let at = column("at");
        assert_eq!(
            at.as_primitive::<TimestampMicrosecondType>().value(0),
            timestamp_micros("2024-05-01T10:00:00.5Z").unwrap()
        );
        assert!(at.is_null(2));
        let day = column("day");
        assert_eq!(day.as_primitive::<Date32Type>().value(0), 19_844);
        let key = column("key");
        let key = key.as_any().downcast_ref::<FixedSizeBinaryArray>().unwrap();
        assert_eq!(
            key.value(0),
            uuid_bytes("67e55044-10b1-426f-9247-bb680e5fe0c8").unwrap()
        );
        assert!(key.is_null(2));
        let extra = column("extra");
        let extra = extra.as_string::<i32>();
        assert_eq!(
            serde_json::from_str::<Value>(extra.value(1)).unwrap(),
            json!({"i": 2, "tags": ["a", "b"]})
        );
        let embedding = column("embedding");
        let embedding = embedding.as_list::<i32>();
        let first = embedding.value(1);
        assert_eq!(
            first.as_primitive::<Float64Type>().values(),
            &[0.5, -1.0, 2.0]
        );
        assert!(embedding.is_null(2));
    }

    #[test]
    fn row_groups_hold_at_most_the_rows_asked_for() {
        let records: Vec<(String, Vec<Vec<Value>>)> = (0..25)
            .map(|i| (format!("r{i}"), vec![full_row(i)]))
            .collect();
        let options = ParquetOptions::default().with_row_group_rows(10);
        let (written, _, temp) = write_both(&records, &options);
        assert_eq!(written.rows, 25);
        let file = std::fs::File::open(temp.path().join(PARQUET_FILE)).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let groups: Vec<i64> = reader
            .metadata()
            .row_groups()
            .iter()
            .map(|g| g.num_rows())
            .collect();
        assert_eq!(groups, [10, 10, 5]);
        let compression = reader.metadata().row_group(0).column(0).compression();
        assert!(
            matches!(compression, Compression::ZSTD(_)),
            "{compression:?}"
        );
    }

    #[test]
    fn a_value_that_does_not_fit_its_column_names_the_record_and_column() {
        let contract = every_type();
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join(PARQUET_FILE);
        let file = File::from_std(std::fs::File::create(&path).unwrap());
        let mut sink = ParquetFile::new(file, path, &contract, &ParquetOptions::default()).unwrap();
        let mut row = full_row(1);
        row[1] = json!("three");
        let error = sink
            .write(
                "doc-7",
                "run-1",
                &CheckedRows::from_values(&contract, vec![row]),
            )
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(PARQUET_FILE)
                && error.contains("record `doc-7`")
                && error.contains("column `count`"),
            "{error}"
        );
    }
}
