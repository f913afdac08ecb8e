//! The feature contract: what a hook outputs, and the checks every returned row must pass.
//!
//! [`Contract`] mirrors the WIT `contract` record with serde support (for `host inspect --json`,
//! digests and storage). [`Contract::validate`] checks that a contract is well formed;
//! [`Contract::check_rows`] checks a passed record's rows against it and renders them as JSON
//! values in column order.

use std::collections::HashSet;

use crate::digest::sha256_digest;
use serde::{Deserialize, Serialize};

use crate::bindings;

/// The longest feature name, in bytes (the same rule as hook names).
pub const MAX_FEATURE_NAME_BYTES: usize = 40;
/// The longest column name, in bytes.
pub const MAX_COLUMN_NAME_BYTES: usize = 64;
/// The longest column description, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 4096;
/// The most columns a contract may have.
pub const MAX_COLUMNS: usize = 1024;

/// How many feature rows a passed record has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cardinality {
    /// Exactly one row per passed record.
    One,
    /// Zero or more rows per passed record.
    Many,
}

/// The type of a feature column; see `wit/hook.wit` for each type's exact form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    /// UTF-8 text.
    Text,
    /// Signed 64-bit integer.
    Integer,
    /// Finite 64-bit float.
    Number,
    /// Boolean.
    Boolean,
    /// RFC 3339 timestamp.
    Timestamp,
    /// `YYYY-MM-DD` date.
    Date,
    /// Hyphenated UUID.
    Uuid,
    /// A JSON document.
    Json,
    /// A list of finite 64-bit floats.
    FloatVector,
}

impl ColumnType {
    /// The type's name as it appears in contracts and messages (`float_vector`, …).
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Text => "text",
            ColumnType::Integer => "integer",
            ColumnType::Number => "number",
            ColumnType::Boolean => "boolean",
            ColumnType::Timestamp => "timestamp",
            ColumnType::Date => "date",
            ColumnType::Uuid => "uuid",
            ColumnType::Json => "json",
            ColumnType::FloatVector => "float_vector",
        }
    }
}

/// One typed column.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Column {
    /// Column name, unique in its contract.
    pub name: String,
    /// Column type.
    #[serde(rename = "type")]
    pub ty: ColumnType,
    /// Whether null is allowed; a column that is not nullable is required.
    pub nullable: bool,
    /// What the column means.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// What a hook outputs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Contract {
    /// The feature's name.
    pub feature: String,
    /// Rows per passed record.
    pub cardinality: Cardinality,
    /// The columns, in row order.
    pub columns: Vec<Column>,
}

/// A contract that is not well formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid contract: {0}")]
pub struct InvalidContract(pub String);

/// A returned row that does not match the contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct Violation {
    /// The column at fault, when one is.
    pub column: Option<String>,
    /// The 0-based row at fault, when one is.
    pub row: Option<usize>,
    /// What is wrong.
    pub reason: String,
}

impl Violation {
    fn describe(&self) -> String {
        match (&self.row, &self.column) {
            (Some(row), Some(column)) => format!("row {row}, column `{column}`: {}", self.reason),
            (Some(row), None) => format!("row {row}: {}", self.reason),
            (None, Some(column)) => format!("column `{column}`: {}", self.reason),
            (None, None) => self.reason.clone(),
        }
    }
}

/// A passed record's rows, checked: one JSON value per column, in column order, and each row
/// rendered as its line of `features.jsonl` renders it (rendered where the call ran, so a sink
/// only writes and hashes).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedRows {
    /// One entry per row, each holding one JSON value per column; empty when the runner was
    /// told not to keep them ([`RunnerSettings::keep_values`](crate::runner::RunnerSettings)).
    pub rows: Vec<Vec<serde_json::Value>>,
    /// The size of the rows' values rendered as JSON, in bytes.
    pub json_bytes: u64,
    /// Every row's [`line_rest`](CheckedRows::line_rest), back to back.
    rendered: Vec<u8>,
    /// Where each row's part of `rendered` ends.
    ends: Vec<usize>,
}

/// Room for a row's rendered line, to size the buffer once (`text_stats`'s are 98 bytes; a
/// longer row grows it).
const RENDERED_BYTES_PER_ROW: usize = 256;

impl CheckedRows {
    /// Rows whose values are already checked against `contract` (one per column, in column
    /// order), rendered: for sinks fed by tools and benchmarks.
    pub fn from_values(contract: &Contract, rows: Vec<Vec<serde_json::Value>>) -> CheckedRows {
        let mut checked = CheckedRows::with_capacity(rows.len(), false);
        for row in &rows {
            checked.render(contract, row);
        }
        checked.rows = rows;
        checked
    }

    /// Room for `rows` rendered rows, and for their values if `values`.
    fn with_capacity(rows: usize, values: bool) -> CheckedRows {
        CheckedRows {
            rows: Vec::with_capacity(if values { rows } else { 0 }),
            json_bytes: 0,
            rendered: Vec::with_capacity(RENDERED_BYTES_PER_ROW * rows),
            ends: Vec::with_capacity(rows),
        }
    }

    fn render(&mut self, contract: &Contract, row: &[serde_json::Value]) {
        self.json_bytes += render_features(contract, row, &mut self.rendered);
        self.ends.push(self.rendered.len());
    }

    /// How many rows there are.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Row `index`'s line of `features.jsonl` after its `id` and `run_id` members:
    /// `,"features":{column: value, …}}\n`, columns in contract order.
    pub fn line_rest(&self, index: usize) -> &[u8] {
        let start = index.checked_sub(1).map_or(0, |before| self.ends[before]);
        &self.rendered[start..self.ends[index]]
    }
}

impl Contract {
    /// Checks that the contract is well formed: names follow the rules of `wit/hook.wit`,
    /// column names are unique, there is at least one column.
    pub fn validate(&self) -> Result<(), InvalidContract> {
        check_name("feature name", &self.feature, MAX_FEATURE_NAME_BYTES)?;
        if self.columns.is_empty() {
            return Err(InvalidContract(
                "a contract needs at least one column".into(),
            ));
        }
        if self.columns.len() > MAX_COLUMNS {
            return Err(InvalidContract(format!(
                "{} columns; at most {MAX_COLUMNS} are allowed",
                self.columns.len()
            )));
        }
        let mut seen = HashSet::new();
        for column in &self.columns {
            check_name("column name", &column.name, MAX_COLUMN_NAME_BYTES)?;
            if !seen.insert(column.name.as_str()) {
                return Err(InvalidContract(format!(
                    "column `{}` appears twice",
                    column.name
                )));
            }
            if column
                .description
                .as_ref()
                .is_some_and(|d| d.len() > MAX_DESCRIPTION_BYTES)
            {
                return Err(InvalidContract(format!(
                    "column `{}`: description is over {MAX_DESCRIPTION_BYTES} bytes",
                    column.name
                )));
            }
        }
        Ok(())
    }

    /// `sha256:<hex>` of the contract's canonical JSON form: equal contracts have equal digests.
    pub fn digest(&self) -> String {
        let json = serde_json::to_vec(self).expect("a contract always serializes");
        sha256_digest(&json)
    }

    /// Checks the rows of a passed record and renders them as JSON values.
    ///
    /// Fails on the first problem: a row count that cardinality `one` forbids, a row with the
    /// wrong number of values, a value of the wrong type, null in a required column, a
    /// non-finite number, or text that is not a valid timestamp, date, UUID or JSON.
    pub fn check_rows(&self, rows: Vec<Vec<bindings::Value>>) -> Result<CheckedRows, Violation> {
        self.check_rows_keeping(rows, true)
    }

    /// [`check_rows`](Contract::check_rows), keeping the JSON values only if `keep_values`:
    /// the same checks and the same rendered lines, without an allocation per row for values
    /// that a sink writing only the lines would drop at once (issue 15).
    pub fn check_rows_keeping(
        &self,
        rows: Vec<Vec<bindings::Value>>,
        keep_values: bool,
    ) -> Result<CheckedRows, Violation> {
        if self.cardinality == Cardinality::One && rows.len() != 1 {
            return Err(Violation {
                column: None,
                row: None,
                reason: format!(
                    "cardinality `one` needs exactly 1 row per passed record, got {}",
                    rows.len()
                ),
            });
        }
        let mut checked = CheckedRows::with_capacity(rows.len(), keep_values);
        let mut values = Vec::new();
        for (index, row) in rows.into_iter().enumerate() {
            if row.len() != self.columns.len() {
                return Err(Violation {
                    column: None,
                    row: Some(index),
                    reason: format!(
                        "expected {} values (one per column), got {}",
                        self.columns.len(),
                        row.len()
                    ),
                });
            }
            values.reserve(row.len());
            for (column, value) in self.columns.iter().zip(row) {
                let json = check_value(column, value).map_err(|reason| Violation {
                    column: Some(column.name.clone()),
                    row: Some(index),
                    reason,
                })?;
                values.push(json);
            }
            checked.render(self, &values);
            if keep_values {
                checked.rows.push(std::mem::take(&mut values));
            } else {
                values.clear();
            }
        }
        Ok(checked)
    }
}

impl From<bindings::Contract> for Contract {
    fn from(contract: bindings::Contract) -> Self {
        Contract {
            feature: contract.feature,
            cardinality: match contract.cardinality {
                bindings::Cardinality::One => Cardinality::One,
                bindings::Cardinality::Many => Cardinality::Many,
            },
            columns: contract
                .columns
                .into_iter()
                .map(|column| Column {
                    name: column.name,
                    ty: match column.ty {
                        bindings::ColumnType::Text => ColumnType::Text,
                        bindings::ColumnType::Integer => ColumnType::Integer,
                        bindings::ColumnType::Number => ColumnType::Number,
                        bindings::ColumnType::Boolean => ColumnType::Boolean,
                        bindings::ColumnType::Timestamp => ColumnType::Timestamp,
                        bindings::ColumnType::Date => ColumnType::Date,
                        bindings::ColumnType::Uuid => ColumnType::Uuid,
                        bindings::ColumnType::Json => ColumnType::Json,
                        bindings::ColumnType::FloatVector => ColumnType::FloatVector,
                    },
                    nullable: column.nullable,
                    description: column.description,
                })
                .collect(),
        }
    }
}

fn check_name(what: &str, name: &str, max: usize) -> Result<(), InvalidContract> {
    let mut chars = name.chars();
    let well_formed = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= max;
    if well_formed {
        Ok(())
    } else {
        Err(InvalidContract(format!(
            "{what} `{name}` must match [a-z][a-z0-9_]* and be at most {max} bytes"
        )))
    }
}

fn check_value(column: &Column, value: bindings::Value) -> Result<serde_json::Value, String> {
    use bindings::Value as V;
    use serde_json::Value as J;
    let json = match (column.ty, value) {
        (_, V::Null) if column.nullable => J::Null,
        (_, V::Null) => return Err("null in a required column".into()),
        (ColumnType::Text, V::Text(s)) => J::String(s),
        (ColumnType::Integer, V::Integer(i)) => J::from(i),
        (ColumnType::Number, V::Number(f)) => J::from(finite(f)?),
        (ColumnType::Boolean, V::Boolean(b)) => J::Bool(b),
        (ColumnType::Timestamp, V::Timestamp(s)) => {
            time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339)
                .map_err(|e| format!("`{s}` is not an RFC 3339 timestamp ({e})"))?;
            J::String(s)
        }
        (ColumnType::Date, V::Date(s)) => {
            time::Date::parse(
                &s,
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .map_err(|e| format!("`{s}` is not a YYYY-MM-DD date ({e})"))?;
            J::String(s)
        }
        (ColumnType::Uuid, V::Uuid(s)) => {
            let parsed = (s.len() == 36)
                .then(|| uuid::Uuid::try_parse(&s).ok())
                .flatten()
                .ok_or_else(|| format!("`{s}` is not a hyphenated UUID"))?;
            J::String(parsed.hyphenated().to_string())
        }
        (ColumnType::Json, V::Json(s)) => {
            serde_json::from_str(&s).map_err(|e| format!("not valid JSON text ({e})"))?
        }
        (ColumnType::FloatVector, V::FloatVector(v)) => J::Array(
            v.into_iter()
                .map(|f| finite(f).map(J::from))
                .collect::<Result<_, _>>()?,
        ),
        (expected, got) => {
            return Err(format!(
                "expected {}, got {}",
                expected.name(),
                value_type_name(&got)
            ));
        }
    };
    Ok(json)
}

fn finite(f: f64) -> Result<f64, String> {
    if f.is_finite() {
        Ok(f)
    } else {
        Err(format!("{f} is not a finite number"))
    }
}

fn value_type_name(value: &bindings::Value) -> &'static str {
    use bindings::Value as V;
    match value {
        V::Null => "null",
        V::Text(_) => "text",
        V::Integer(_) => "integer",
        V::Number(_) => "number",
        V::Boolean(_) => "boolean",
        V::Timestamp(_) => "timestamp",
        V::Date(_) => "date",
        V::Uuid(_) => "uuid",
        V::Json(_) => "json",
        V::FloatVector(_) => "float_vector",
    }
}

/// Appends a row's line after its `id` and `run_id` members, `,"features":{column: value,
/// …}}\n`, columns in contract order; returns the bytes its values took.
fn render_features(contract: &Contract, row: &[serde_json::Value], out: &mut Vec<u8>) -> u64 {
    out.extend_from_slice(b",\"features\":{");
    let mut value_bytes = 0;
    for (index, (column, value)) in contract.columns.iter().zip(row).enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_key(&column.name, out);
        let before = out.len();
        serde_json::to_writer(&mut *out, value).expect("JSON values serialize");
        value_bytes += (out.len() - before) as u64;
    }
    out.extend_from_slice(b"}}\n");
    value_bytes
}

/// `"name":`. A valid contract's names (`[a-z][a-z0-9_]*`) need no escaping; others are
/// escaped.
fn write_key(name: &str, out: &mut Vec<u8>) {
    if name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
    } else {
        serde_json::to_writer(&mut *out, name).expect("strings serialize");
        out.push(b':');
    }
}

/// A column without a description, for tests.
#[cfg(test)]
pub(crate) fn test_column(name: &str, ty: ColumnType, nullable: bool) -> Column {
    Column {
        name: name.into(),
        ty,
        nullable,
        description: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bindings::Value as V;

    #[test]
    fn keys_are_escaped_only_when_they_need_it() {
        let contract = Contract {
            feature: "f".into(),
            cardinality: Cardinality::One,
            columns: vec![
                test_column("plain_1", ColumnType::Integer, false),
                test_column("odd \"key\"", ColumnType::Text, true),
            ],
        };
        let mut out = Vec::new();
        let values = render_features(
            &contract,
            &[serde_json::json!(12), serde_json::json!("a\nb")],
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            ",\"features\":{\"plain_1\":12,\"odd \\\"key\\\"\":\"a\\nb\"}}\n"
        );
        assert_eq!(values, 2 + 6, "the bytes of `12` and `\"a\\nb\"`");
    }

    #[test]
    fn each_row_keeps_its_own_line() {
        let contract = Contract {
            feature: "f".into(),
            cardinality: Cardinality::Many,
            columns: vec![test_column("n", ColumnType::Integer, false)],
        };
        let rows = contract
            .check_rows(vec![vec![V::Integer(7)], vec![V::Integer(-12)]])
            .unwrap();
        assert_eq!((rows.len(), rows.json_bytes), (2, 1 + 3));
        assert_eq!(rows.line_rest(0), b",\"features\":{\"n\":7}}\n");
        assert_eq!(rows.line_rest(1), b",\"features\":{\"n\":-12}}\n");
        assert!(contract.check_rows(vec![]).unwrap().is_empty());
    }

    /// Issue 15: checking without keeping the values renders the same lines and finds the
    /// same violations.
    #[test]
    fn checking_without_values_renders_the_same_lines() {
        let c = contract(Cardinality::Many);
        let rows = || vec![good_row(), good_row()];
        let kept = c.check_rows(rows()).unwrap();
        let lines = c.check_rows_keeping(rows(), false).unwrap();
        assert_eq!(kept.rows.len(), 2);
        assert!(lines.rows.is_empty());
        assert_eq!(
            (lines.len(), lines.json_bytes),
            (kept.len(), kept.json_bytes)
        );
        for index in 0..2 {
            assert_eq!(lines.line_rest(index), kept.line_rest(index));
        }
        let mut bad = rows();
        bad[1][0] = V::Null;
        assert_eq!(
            c.check_rows_keeping(bad.clone(), false).unwrap_err().reason,
            c.check_rows(bad).unwrap_err().reason
        );
    }

    fn contract(cardinality: Cardinality) -> Contract {
        let column = |name: &str, ty, nullable| Column {
            name: name.into(),
            ty,
            nullable,
            description: None,
        };
        Contract {
            feature: "sample".into(),
            cardinality,
            columns: vec![
                column("count", ColumnType::Integer, false),
                column("label", ColumnType::Text, true),
                column("at", ColumnType::Timestamp, true),
                column("day", ColumnType::Date, true),
                column("key", ColumnType::Uuid, true),
                column("extra", ColumnType::Json, true),
                column("embedding", ColumnType::FloatVector, true),
            ],
        }
    }

    fn good_row() -> Vec<V> {
        vec![
            V::Integer(3),
            V::Text("x".into()),
            V::Timestamp("2024-05-01T12:00:00+02:00".into()),
            V::Date("2024-05-01".into()),
            V::Uuid("67E55044-10B1-426F-9247-BB680E5FE0C8".into()),
            V::Json(r#"{"a":[1,2]}"#.into()),
            V::FloatVector(vec![0.5, -1.0]),
        ]
    }

    #[test]
    fn good_rows_render_in_column_order() {
        let checked = contract(Cardinality::One)
            .check_rows(vec![good_row()])
            .unwrap();
        let row = &checked.rows[0];
        assert_eq!(row[0], serde_json::json!(3));
        assert_eq!(
            row[4],
            serde_json::json!("67e55044-10b1-426f-9247-bb680e5fe0c8")
        );
        assert_eq!(row[5], serde_json::json!({"a": [1, 2]}));
        assert_eq!(row[6], serde_json::json!([0.5, -1.0]));
        let rendered: u64 = row.iter().map(|v| v.to_string().len() as u64).sum();
        assert_eq!(checked.json_bytes, rendered);
    }

    #[test]
    fn violations_name_row_and_column() {
        let c = contract(Cardinality::Many);
        let mut wrong_type = good_row();
        wrong_type[0] = V::Text("3".into());
        let err = c.check_rows(vec![good_row(), wrong_type]).unwrap_err();
        assert_eq!(err.row, Some(1));
        assert_eq!(err.column.as_deref(), Some("count"));
        assert_eq!(
            err.to_string(),
            "row 1, column `count`: expected integer, got text"
        );

        let mut null = good_row();
        null[0] = V::Null;
        let err = c.check_rows(vec![null]).unwrap_err();
        assert_eq!(err.reason, "null in a required column");

        let err = c.check_rows(vec![vec![V::Integer(1)]]).unwrap_err();
        assert_eq!(err.reason, "expected 7 values (one per column), got 1");

        let mut nan = good_row();
        nan[6] = V::FloatVector(vec![f64::NAN]);
        assert!(
            c.check_rows(vec![nan])
                .unwrap_err()
                .reason
                .contains("finite")
        );

        for (index, bad) in [
            (2, V::Timestamp("yesterday".into())),
            (3, V::Date("2024-13-01".into())),
            (4, V::Uuid("not-a-uuid".into())),
            (5, V::Json("{oops".into())),
        ] {
            let mut row = good_row();
            row[index] = bad;
            let err = c.check_rows(vec![row]).unwrap_err();
            assert_eq!(err.column.as_deref(), Some(c.columns[index].name.as_str()));
        }
    }

    #[test]
    fn cardinality_one_needs_exactly_one_row() {
        let c = contract(Cardinality::One);
        assert!(c.check_rows(vec![]).unwrap_err().reason.contains("got 0"));
        assert!(
            c.check_rows(vec![good_row(), good_row()])
                .unwrap_err()
                .reason
                .contains("got 2")
        );
        assert_eq!(
            contract(Cardinality::Many)
                .check_rows(vec![])
                .unwrap()
                .rows
                .len(),
            0
        );
    }

    #[test]
    fn malformed_contracts_are_refused() {
        let mut c = contract(Cardinality::One);
        assert!(c.validate().is_ok());
        c.columns[1].name = "count".into();
        assert!(c.validate().unwrap_err().0.contains("appears twice"));
        c.columns.clear();
        assert!(c.validate().is_err());
        let mut c = contract(Cardinality::One);
        c.feature = "Bad-Name".into();
        assert!(c.validate().unwrap_err().0.contains("feature name"));
    }

    #[test]
    fn digest_is_stable_and_sensitive() {
        let a = contract(Cardinality::One);
        assert_eq!(a.digest(), contract(Cardinality::One).digest());
        assert_ne!(a.digest(), contract(Cardinality::Many).digest());
        assert!(a.digest().starts_with("sha256:"));
        assert_eq!(a.digest().len(), "sha256:".len() + 64);
    }
}
