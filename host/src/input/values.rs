//! Records given as values rather than JSONL lines: what an embedding worker hands to
//! [`crate::embed`], checked like lines and digested as the JSONL they serialize to.

use sha2::{Digest as _, Sha256};

use super::check::{Checker, Position};
use super::files::FilesRoot;
use super::{Chunk, InputItem, Source};
use crate::digest::hex;
use crate::error::Error;
use crate::provenance::InputRecord;

/// One record given as a value rather than a JSONL line: what an embedding worker hands to
/// [`crate::embed`]. Its fields are a JSONL line's.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// A unique, non-empty id without `/`, `\`, NUL or `..`.
    pub id: String,
    /// Anything the hook reads; `null` when absent.
    #[serde(default)]
    pub metadata: serde_json::Value,
    /// How large the record's data is, in MB, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_hint_mb: Option<f64>,
}

impl Record {
    /// A record with `id` and `metadata`.
    pub fn new(id: impl Into<String>, metadata: serde_json::Value) -> Self {
        Record {
            id: id.into(),
            metadata,
            size_hint_mb: None,
        }
    }
}

/// Checks records given as values with the rules [`InputReader`](super::InputReader) applies to lines, and
/// digests each as the JSONL line it would be (`serde_json` of [`Record`] plus `\n`), so
/// `input.sha256` in provenance is the digest of the batch written as a JSONL file.
#[derive(Debug)]
pub struct RecordChecker {
    checker: Checker,
    hasher: Sha256,
    bytes: u64,
    records: u64,
    line: Vec<u8>,
}

impl RecordChecker {
    /// A checker for one batch; `files` gives records their files directories.
    pub fn new(files: Option<FilesRoot>) -> Self {
        RecordChecker {
            checker: Checker::new(files),
            hasher: Sha256::new(),
            bytes: 0,
            records: 0,
            line: Vec::new(),
        }
    }

    /// Checks the next record; its position (from 1) stands in for a line number.
    pub fn check(&mut self, record: Record) -> InputItem {
        self.records += 1;
        let line = self.records;
        // The metadata is rendered once: for the guest, and inside the line that is digested
        // (the line is what `serde_json` writes for `Record`: members in field order, no
        // `size_hint_mb` when there is none).
        let metadata = record.metadata.to_string();
        self.line.clear();
        self.line.extend_from_slice(b"{\"id\":");
        serde_json::to_writer(&mut self.line, &record.id).expect("strings serialize");
        self.line.extend_from_slice(b",\"metadata\":");
        self.line.extend_from_slice(metadata.as_bytes());
        if let Some(mb) = record.size_hint_mb {
            self.line.extend_from_slice(b",\"size_hint_mb\":");
            serde_json::to_writer(&mut self.line, &mb).expect("numbers serialize");
        }
        self.line.extend_from_slice(b"}\n");
        self.hasher.update(&self.line);
        self.bytes += self.line.len() as u64;
        match self.checker.admit(
            record.id,
            metadata,
            Ok(record.size_hint_mb),
            Position::Index(line),
        ) {
            Ok(record) => InputItem::Record { line, record },
            Err((id, reason)) => InputItem::Invalid { line, id, reason },
        }
    }

    /// What was checked so far, for provenance (the digest of the batch as JSONL).
    pub fn summary(&self) -> InputRecord {
        InputRecord {
            sha256: hex(&self.hasher.clone().finalize()),
            bytes: self.bytes,
            records: self.records,
        }
    }

    /// Bytes of JSONL the records checked so far amount to.
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }
}

/// Records from an iterator as a [`Source`]. The iterator is advanced on the thread that
/// reads the batch (a blocking one), so it may read files or wait.
pub struct ValuesSource<I> {
    records: I,
    checker: RecordChecker,
}

impl<I: Iterator<Item = Record> + Send> ValuesSource<I> {
    /// Checks `records` as they are read, with `files` giving them their files directories.
    pub fn new(records: I, files: Option<FilesRoot>) -> Self {
        ValuesSource {
            records,
            checker: RecordChecker::new(files),
        }
    }
}

impl<I> std::fmt::Debug for ValuesSource<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValuesSource")
            .field("checker", &self.checker)
            .finish_non_exhaustive()
    }
}

impl<I: Iterator<Item = Record> + Send> Source for ValuesSource<I> {
    fn next_chunk(&mut self, records: usize) -> Result<Chunk, Error> {
        let mut chunk = Chunk::default();
        while chunk.records.len() < records {
            match self.records.next() {
                Some(record) => chunk.push(self.checker.check(record)),
                None => break,
            }
        }
        Ok(chunk)
    }

    fn bytes_read(&self) -> u64 {
        self.checker.bytes_read()
    }

    fn summary(&self) -> InputRecord {
        self.checker.summary()
    }
}
