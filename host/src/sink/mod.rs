//! Feature sinks: where a run's feature rows go.
//!
//! One seam, [`FeatureSink`], with one implementation per place rows are kept:
//!
//! - [`jsonl`] — `features.jsonl` in the run directory (the default);
//! - [`parquet`] — `features.parquet` in the run directory, typed from the contract;
//! - feature tables — one PostgreSQL table per hook in the registry's own database, each row's
//!   `run_id` a foreign key to its run ([`FeatureTables`], implemented by the registry:
//!   [`registry::tables`](crate::registry::tables)).
//!
//! A [`Lane`](crate::exec) holds one sink per run and hands it each passed record's rows in
//! input order; rejections, errors and logs keep going to the run directory (or memory)
//! whatever the sink. When the run ends the sink is finished and says what it wrote
//! ([`Written`]): a file listed in `run.json`'s `outputs`, or a table named in its
//! `features_table`.
//!
//! Every sink computes the same **content digest**: the sha256 of the rows rendered as
//! `features.jsonl` renders them, without their `run_id` members ([`content_line`]). Two runs
//! that produced the same rows have the same content digest in whatever sink they wrote, and
//! that is what `host replay` compares.
//!
//! Feature tables also change how a run is recorded: the rows and the run records commit in
//! one transaction ([`TableBatch::record_batch`]), so no row exists without its run and no
//! succeeded run without all its rows.

pub mod jsonl;
pub mod parquet;

use std::sync::Arc;

pub use self::parquet::ParquetOptions;
use crate::contract::{CheckedRows, Contract};
use crate::error::Error;
pub use crate::provenance::TableOutput;
use crate::provenance::{BatchRecorded, NewBatch, OutputFile, RunEntry};

/// Where a batch's feature rows go. By default [`Features::Jsonl`].
#[derive(Debug, Clone, Default)]
pub enum Features {
    /// `features.jsonl` in each run directory; with outcomes kept in memory, memory.
    #[default]
    Jsonl,
    /// `features.parquet` in each run directory, cut and compressed as the options say
    /// (by default [`ParquetOptions::default`]). Needs a run or batch directory: with outcomes
    /// kept in memory there is no file to write.
    Parquet(ParquetOptions),
    /// One table per hook in the registry's PostgreSQL database; the rows commit with the run
    /// records. Needs the registry as the batch's recorder.
    Tables(Arc<dyn FeatureTables>),
}

/// One run's feature rows being written.
pub trait FeatureSink: Send + std::fmt::Debug {
    /// Writes one passed record's rows, each already checked against the run's contract.
    fn write(&mut self, record_id: &str, run_id: &str, rows: &CheckedRows) -> Result<(), Error>;

    /// Whether it reads the rows' JSON values ([`CheckedRows::rows`]), not only their rendered
    /// lines. By default it does.
    fn needs_values(&self) -> bool {
        true
    }

    /// Ends the rows (flushing, syncing, closing) and says what was written.
    fn finish(self: Box<Self>) -> Result<Written, Error>;
}

/// What a finished [`FeatureSink`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// A file in the run directory, listed in `run.json`'s `outputs` under `name`.
    File {
        /// The file's name in the run directory.
        name: &'static str,
        /// Its size, digests and row count.
        file: OutputFile,
    },
    /// Rows in a table, named in `run.json`'s `features_table`.
    Table(TableOutput),
}

/// Feature tables in a database: what a registry that keeps them gives
/// ([`Registry::feature_tables`](crate::registry::Registry)).
pub trait FeatureTables: Send + Sync + std::fmt::Debug {
    /// Where they are, for messages: `postgres://host/db, schema hookhost_features`.
    fn describe(&self) -> String;

    /// Makes each hook's table exist with its contract's columns (an additive release adds
    /// columns) and begins the one transaction the batch's rows and its run records will
    /// commit in. Fails, before anything runs, when a table cannot take a contract.
    fn begin(&self, hooks: &[TableHook<'_>]) -> Result<Box<dyn TableBatch>, Error>;
}

/// One hook of a batch writing to a feature table.
#[derive(Debug, Clone, Copy)]
pub struct TableHook<'a> {
    /// The hook's name: its table's name.
    pub name: &'a str,
    /// The contract its rows follow.
    pub contract: &'a Contract,
}

/// A batch's rows in one open transaction. Dropped without recording, it is rolled back:
/// nothing of the batch stays in any table.
pub trait TableBatch: Send + std::fmt::Debug {
    /// The sink for hook `hook` (its index in [`FeatureTables::begin`]'s `hooks`) and run
    /// `run_id`. Called once per hook; the sinks write into this batch's transaction and are
    /// finished before the batch is recorded.
    fn sink(&mut self, hook: usize, run_id: &str) -> Box<dyn FeatureSink>;

    /// Records one run with its rows, in one commit.
    fn record_run(self: Box<Self>, run: RunEntry<'_>) -> Result<(), Error>;

    /// Records a batch's runs with their rows, in one commit, under the registry's rules for
    /// batches ([`Recorder::record_batch`](crate::provenance::Recorder::record_batch)): when
    /// the key is already recorded, nothing is written — no run and no row — and the earlier
    /// batch is returned.
    fn record_batch(self: Box<Self>, batch: NewBatch<'_>) -> Result<BatchRecorded, Error>;
}

/// The line `features.jsonl` holds for row `row` of `rows`, without its `run_id` member:
/// `{"id":…,"features":{column: value, …}}\n`, columns in contract order. The content digest
/// of every sink is the sha256 of these lines.
pub fn content_line(record_id: &str, rows: &CheckedRows, row: usize) -> Vec<u8> {
    let mut line = crate::output::id_member(record_id);
    line.extend_from_slice(rows.line_rest(row));
    line
}
