//! Input: the records of a batch, from any source, checked once and cut into chunks.
//!
//! - [`jsonl`] — [`InputReader`] streams a JSONL file (or stdin), hashing every byte and naming
//!   every bad line.
//! - [`values`] — [`Record`]s given as values (an embedding worker's iterator or stream),
//!   checked like lines and digested as the JSONL they serialize to.
//! - [`files`] — [`FilesRoot`]: where each record's files are, walked through a capability
//!   handle.
//! - `check` — the one record check both apply: id rules, size hint, duplicates, files.
//!
//! Whatever the source, the execution layer sees a [`Source`] of [`Chunk`]s: the items one call
//! settles, invalid lines riding along in input order.

mod check;
pub mod files;
pub mod jsonl;
pub mod values;

use std::io::BufReader;
use std::path::PathBuf;

pub use self::check::check_id;
pub use self::files::{FilesRoot, MAX_FILES_PER_RECORD};
pub use self::jsonl::{DEFAULT_MAX_LINE_BYTES, InputReader};
pub use self::values::{Record, RecordChecker, ValuesSource};
use crate::bindings;
use crate::error::Error;
use crate::provenance::InputRecord;

/// One non-blank input line (or one record given as a value).
#[derive(Debug, Clone)]
pub enum InputItem {
    /// A valid record.
    Record {
        /// 1-based line number (or position).
        line: u64,
        /// The record, with its files directory resolved.
        record: PendingRecord,
    },
    /// A line that is not a valid record.
    Invalid {
        /// 1-based line number (or position).
        line: u64,
        /// The record's id, when the line had a usable one.
        id: Option<String>,
        /// Why the line was refused.
        reason: String,
    },
}

/// One record ready to run, with the files directory it may read, if any.
#[derive(Debug, Clone)]
pub struct PendingRecord {
    /// The record as the guest receives it.
    pub record: GuestRecord,
    /// The host directory holding the record's files, shown to the guest at
    /// `record.files_dir`.
    pub files_host_dir: Option<PathBuf>,
}

/// A record as the guest receives it (the WIT `record`), owned: each call lends it to the
/// guest as a [`bindings::Record`] without copying it.
#[derive(Debug, Clone, PartialEq)]
pub struct GuestRecord {
    /// The record's id.
    pub id: String,
    /// Its metadata, as JSON text.
    pub metadata: String,
    /// Its size hint in MB, when the input gave one.
    pub size_hint_mb: Option<f64>,
    /// Where the guest sees its files, when it has any.
    pub files_dir: Option<String>,
}

impl GuestRecord {
    /// The record as a call lowers it, borrowing `self`.
    pub fn as_wit(&self) -> bindings::Record<'_> {
        bindings::Record {
            id: &self.id,
            metadata: &self.metadata,
            size_hint_mb: self.size_hint_mb,
            files_dir: self.files_dir.as_deref(),
        }
    }
}

/// A non-blank input item waiting for its chunk to settle, kept in input order.
#[derive(Debug, Clone)]
pub enum Slot {
    /// A valid record: the next of the chunk's `records`.
    Record {
        /// 1-based line number (or position).
        line: u64,
    },
    /// An invalid line, settled as an `invalid_input` error.
    Invalid {
        /// 1-based line number (or position).
        line: u64,
        /// Its id, when it had a usable one.
        id: Option<String>,
        /// Why it was refused.
        reason: String,
    },
}

/// The items one call settles: every slot in input order, and the valid records among them.
#[derive(Debug, Default)]
pub struct Chunk {
    /// Every item, in input order.
    pub slots: Vec<Slot>,
    /// The valid records among them, in order.
    pub records: Vec<PendingRecord>,
}

impl Chunk {
    /// Adds the next item.
    pub fn push(&mut self, item: InputItem) {
        match item {
            InputItem::Record { line, record } => {
                self.slots.push(Slot::Record { line });
                self.records.push(record);
            }
            InputItem::Invalid { line, id, reason } => {
                self.slots.push(Slot::Invalid { line, id, reason });
            }
        }
    }

    /// Whether the chunk holds no item (the end of input).
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// Where a batch's items come from, a chunk at a time.
pub trait Source: Send {
    /// The next chunk: items until `records` valid records (invalid lines ride along) or the
    /// end of input; an empty chunk at the end.
    fn next_chunk(&mut self, records: usize) -> Result<Chunk, Error>;
    /// Input read so far, in bytes (cheap, for progress).
    fn bytes_read(&self) -> u64;
    /// What was read so far, for provenance.
    fn summary(&self) -> InputRecord;
    /// Whether `next_chunk` may wait on a producer (a stream, a pipe, standard input): the
    /// batch then reads no further ahead than its workers need (a chunk each and one more),
    /// so what was read is settled, and reported, while the producer is slow. By default
    /// not: the batch reads flights of chunks ahead.
    fn may_wait(&self) -> bool {
        false
    }
}

/// Where a JSONL batch comes from.
#[derive(Debug, Clone)]
pub enum Input {
    /// A JSONL file.
    File(PathBuf),
    /// Standard input.
    Stdin,
}

impl Input {
    /// Opens the batch as a [`Source`], then the files directory `files` (record `<id>`'s files
    /// are under `<files>/<id>/`), if any.
    pub fn open(&self, files: Option<&std::path::Path>) -> Result<JsonlSource, Error> {
        type Reader = Box<dyn std::io::BufRead + Send>;
        let (reader, name, may_wait): (Reader, PathBuf, bool) = match self {
            Input::File(path) => {
                let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
                let metadata = file.metadata();
                if metadata.as_ref().is_ok_and(|m| m.is_dir()) {
                    let e = std::io::Error::other("is a directory, not a JSONL file");
                    return Err(Error::io(path, e));
                }
                (
                    Box::new(BufReader::with_capacity(256 * 1024, file)),
                    path.clone(),
                    // A named pipe or a device, not a regular file.
                    !metadata.is_ok_and(|m| m.is_file()),
                )
            }
            Input::Stdin => (
                Box::new(BufReader::new(std::io::stdin())),
                PathBuf::from("<stdin>"),
                true,
            ),
        };
        let files = files.map(FilesRoot::open).transpose()?;
        Ok(JsonlSource {
            reader: InputReader::new(reader, files),
            name,
            may_wait,
        })
    }
}

/// A JSONL batch as a [`Source`]: its reader and the name read errors give it.
pub struct JsonlSource {
    reader: InputReader<Box<dyn std::io::BufRead + Send>>,
    name: PathBuf,
    may_wait: bool,
}

impl std::fmt::Debug for JsonlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonlSource")
            .field("name", &self.name)
            .field("reader", &self.reader)
            .finish()
    }
}

impl Source for JsonlSource {
    fn next_chunk(&mut self, records: usize) -> Result<Chunk, Error> {
        let mut chunk = Chunk::default();
        while chunk.records.len() < records {
            match self
                .reader
                .next_item()
                .map_err(|e| Error::io(&self.name, e))?
            {
                Some(item) => chunk.push(item),
                None => break,
            }
        }
        Ok(chunk)
    }

    fn bytes_read(&self) -> u64 {
        self.reader.bytes_read()
    }

    fn summary(&self) -> InputRecord {
        self.reader.summary()
    }

    fn may_wait(&self) -> bool {
        self.may_wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_regular_file_is_read_ahead_in_flights() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("batch.jsonl");
        std::fs::write(&file, "{\"id\":\"a\"}\n").unwrap();
        assert!(!Input::File(file).open(None).unwrap().may_wait());
        // A device, like a pipe, may keep the batch waiting.
        let device = Input::File(PathBuf::from("/dev/null"));
        assert!(device.open(None).unwrap().may_wait());
        assert!(Input::Stdin.open(None).unwrap().may_wait());
    }
}
