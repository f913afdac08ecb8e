//! Outcomes as values: the lines of `features.jsonl`, `rejections.jsonl` and `errors.jsonl`
//! as Rust types, and [`Outcomes`], a run's outcomes kept in memory instead of a directory.
//!
//! Each type serializes to the JSON object of its file's lines (same members, same values),
//! and reads them back,
//! so a worker can keep outcomes in memory, write them wherever its rows go, or parse the
//! files `host run` wrote — every row names the run that produced it.

use serde::{Deserialize, Serialize};

use crate::contract::Contract;
use crate::error::RecordError;

/// One feature row: a line of `features.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureRow {
    /// The record's id.
    pub id: String,
    /// The run that computed the row.
    pub run_id: String,
    /// Column name → value. (A map: its keys come out sorted, not in contract order; the
    /// values are the same as in the file.)
    pub features: serde_json::Map<String, serde_json::Value>,
}

/// A record the hook refused: a line of `rejections.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// The record's id.
    pub id: String,
    /// The run that refused it.
    pub run_id: String,
    /// The hook's reason.
    pub reason: String,
}

/// A record without features because of an error: a line of `errors.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorRow {
    /// The record's id, or `None` when its input had no usable one.
    pub id: Option<String>,
    /// The record's 1-based position in the batch (its line, for a JSONL file).
    pub line: u64,
    /// The run that settled it.
    pub run_id: String,
    /// The error kind: `invalid_input`, `fuel_exhausted`, `timeout`, `memory_exhausted`,
    /// `trap`, `guest_error`, `contract_violation`, `output_too_large`.
    pub kind: String,
    /// What happened, in words.
    pub error: String,
    /// Whether running the same record again might succeed.
    pub retryable: bool,
}

impl ErrorRow {
    /// The row for `error`.
    pub fn new(id: Option<&str>, line: u64, run_id: &str, error: &RecordError) -> Self {
        ErrorRow {
            id: id.map(str::to_owned),
            line,
            run_id: run_id.to_owned(),
            kind: error.kind().to_owned(),
            error: error.to_string(),
            retryable: error.retryable(),
        }
    }
}

/// One run's outcomes, kept in memory, in input order within each list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcomes {
    /// Every feature row of every passed record.
    pub features: Vec<FeatureRow>,
    /// Every rejected record.
    pub rejections: Vec<Rejection>,
    /// Every errored record.
    pub errors: Vec<ErrorRow>,
}

impl Outcomes {
    pub(crate) fn push_features(
        &mut self,
        id: &str,
        run_id: &str,
        contract: &Contract,
        rows: &[Vec<serde_json::Value>],
    ) {
        self.features.extend(rows.iter().map(|row| {
            FeatureRow {
                id: id.to_owned(),
                run_id: run_id.to_owned(),
                features: contract
                    .columns
                    .iter()
                    .map(|c| c.name.clone())
                    .zip(row.iter().cloned())
                    .collect(),
            }
        }));
    }

    pub(crate) fn push_rejection(&mut self, id: &str, run_id: &str, reason: &str) {
        self.rejections.push(Rejection {
            id: id.to_owned(),
            run_id: run_id.to_owned(),
            reason: reason.to_owned(),
        });
    }
}
