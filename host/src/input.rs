//! Reading a JSONL batch: one record per line, streamed, every line hashed.
//!
//! [`InputReader`] yields [`InputItem`]s: a record ready to run, or an invalid line with the
//! reason (which becomes an `invalid_input` error in `errors.jsonl`, naming the line). Blank
//! lines are skipped. To refuse duplicate ids the reader keeps 20 bytes per record (a 128-bit
//! hash of the id and its line number) in a hash table; nothing else it holds grows with the
//! input.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, BufRead};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest as _, Sha256};

use crate::bindings;
use crate::digest::hex;
use crate::error::Error;
use crate::provenance::InputRecord;
use crate::sandbox::FILES_GUEST_ROOT;

/// The longest input line accepted, in bytes.
pub const DEFAULT_MAX_LINE_BYTES: usize = 16 << 20;

/// One non-blank input line.
#[derive(Debug, Clone)]
pub enum InputItem {
    /// A valid record.
    Record {
        /// 1-based line number.
        line: u64,
        /// The record, with its files directory resolved.
        record: PendingRecord,
    },
    /// A line that is not a valid record.
    Invalid {
        /// 1-based line number.
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
    pub record: bindings::Record,
    /// The host directory holding the record's files, shown to the guest at
    /// `record.files_dir`.
    pub files_host_dir: Option<std::path::PathBuf>,
}

/// Where records' files live: the regular files of record `<id>` are under `<root>/<id>/`.
#[derive(Debug)]
pub struct FilesRoot {
    path: PathBuf,
    dir: cap_std::fs::Dir,
}

impl FilesRoot {
    /// Opens the files directory.
    pub fn open(path: &Path) -> Result<FilesRoot, Error> {
        let dir = cap_std::fs::Dir::open_ambient_dir(path, cap_std::ambient_authority())
            .map_err(|e| Error::io(path, e))?;
        Ok(FilesRoot {
            path: path.to_owned(),
            dir,
        })
    }

    /// The host directory of record `id`'s files, if it has a real directory (not a symlink)
    /// under the root. Looked up through the root's capability handle, so no id can reach
    /// outside it. A directory holding anything but regular files, directories and symlinks
    /// (a FIFO, a socket, a device: opening one could block the host outside any deadline),
    /// or more than [`MAX_FILES_PER_RECORD`] entries, is refused with the reason.
    pub(crate) fn record_dir(&self, id: &str) -> Result<Option<PathBuf>, String> {
        let Ok(meta) = self.dir.symlink_metadata(id) else {
            return Ok(None);
        };
        if !meta.is_dir() {
            return Ok(None);
        }
        let unreadable = |e: io::Error| format!("the files of record `{id}` cannot be read: {e}");
        let dir = self.dir.open_dir(id).map_err(unreadable)?;
        let mut entries = 0;
        check_files(&dir, id, &mut entries).map_err(|e| match e {
            FilesProblem::Io(e) => unreadable(e),
            FilesProblem::Refused(reason) => reason,
        })?;
        Ok(Some(self.path.join(id)))
    }
}

/// The most entries (files and directories, at any depth) one record's files directory may
/// hold.
pub const MAX_FILES_PER_RECORD: usize = 100_000;

enum FilesProblem {
    Io(io::Error),
    Refused(String),
}

impl From<io::Error> for FilesProblem {
    fn from(e: io::Error) -> Self {
        FilesProblem::Io(e)
    }
}

/// Walks a record's files directory (symlinks are not followed), refusing what the guest
/// must not be able to open.
fn check_files(
    dir: &cap_std::fs::Dir,
    path: &str,
    entries: &mut usize,
) -> Result<(), FilesProblem> {
    for entry in dir.entries()? {
        let entry = entry?;
        *entries += 1;
        if *entries > MAX_FILES_PER_RECORD {
            return Err(FilesProblem::Refused(format!(
                "the files directory `{path}` holds more than {MAX_FILES_PER_RECORD} entries"
            )));
        }
        let name = entry.file_name();
        let inner = format!("{path}/{}", name.to_string_lossy());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            check_files(&entry.open_dir()?, &inner, entries)?;
        } else if !(kind.is_file() || kind.is_symlink()) {
            return Err(FilesProblem::Refused(format!(
                "`{inner}` among the record's files is not a regular file or directory \
                 (a FIFO, socket or device could block the host)"
            )));
        }
    }
    Ok(())
}

/// Reads records from a JSONL stream.
pub struct InputReader<R> {
    reader: R,
    files: Option<FilesRoot>,
    max_line_bytes: usize,
    line: u64,
    buffer: Vec<u8>,
    hasher: Sha256,
    bytes: u64,
    records: u64,
    ids: IdSet,
}

impl<R: BufRead> InputReader<R> {
    /// A reader over `reader`; `files` gives records their files directories.
    pub fn new(reader: R, files: Option<FilesRoot>) -> Self {
        InputReader {
            reader,
            files,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            line: 0,
            buffer: Vec::new(),
            hasher: Sha256::new(),
            bytes: 0,
            records: 0,
            ids: IdSet::default(),
        }
    }

    /// Sets the longest line accepted. By default [`DEFAULT_MAX_LINE_BYTES`].
    pub fn with_max_line_bytes(mut self, max: usize) -> Self {
        self.max_line_bytes = max;
        self
    }

    /// Bytes read so far (cheap, for progress).
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// What was read so far, for provenance (finalizes a copy of the running hash).
    pub fn summary(&self) -> InputRecord {
        InputRecord {
            sha256: hex(&self.hasher.clone().finalize()),
            bytes: self.bytes,
            records: self.records,
        }
    }

    /// The next non-blank line, or `None` at the end of input.
    pub fn next_item(&mut self) -> io::Result<Option<InputItem>> {
        loop {
            let Some(too_long) = self.read_line()? else {
                return Ok(None);
            };
            self.line += 1;
            let line = self.line;
            if let Some(length) = too_long {
                self.records += 1;
                return Ok(Some(InputItem::Invalid {
                    line,
                    id: None,
                    reason: format!(
                        "line is {length} bytes, over the cap of {} bytes",
                        self.max_line_bytes
                    ),
                }));
            }
            if self.buffer.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            self.records += 1;
            return Ok(Some(match self.parse(line) {
                Ok(record) => InputItem::Record { line, record },
                Err((id, reason)) => InputItem::Invalid { line, id, reason },
            }));
        }
    }

    /// Reads one line into `self.buffer` (without its newline), hashing it. Returns `None` at
    /// the end, `Some(Some(len))` for a line over the cap (its bytes are skipped, not kept).
    fn read_line(&mut self) -> io::Result<Option<Option<u64>>> {
        self.buffer.clear();
        let mut length = 0u64;
        let mut any = false;
        loop {
            let available = match self.reader.fill_buf() {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                break;
            }
            any = true;
            let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
                Some(at) => (&available[..=at], true),
                None => (available, false),
            };
            self.hasher.update(chunk);
            self.bytes += chunk.len() as u64;
            let content = if done {
                &chunk[..chunk.len() - 1]
            } else {
                chunk
            };
            length += content.len() as u64;
            if length <= self.max_line_bytes as u64 {
                self.buffer.extend_from_slice(content);
            }
            let consumed = chunk.len();
            self.reader.consume(consumed);
            if done {
                break;
            }
        }
        if !any {
            return Ok(None);
        }
        if self.buffer.last() == Some(&b'\r') {
            self.buffer.pop();
            length -= 1;
        }
        Ok(Some(
            (length > self.max_line_bytes as u64).then_some(length),
        ))
    }

    fn parse(&mut self, line: u64) -> Result<PendingRecord, (Option<String>, String)> {
        if self.buffer.starts_with(b"\xEF\xBB\xBF") {
            return Err((
                None,
                "line starts with a UTF-8 byte-order mark; save the file without one".into(),
            ));
        }
        let text = std::str::from_utf8(&self.buffer).map_err(|e| {
            (
                None,
                format!(
                    "line is not valid UTF-8 (bad byte at offset {})",
                    e.valid_up_to()
                ),
            )
        })?;
        let trimmed = text.trim_start();
        if !trimmed.starts_with('{') {
            let what = match serde_json::from_str::<serde_json::Value>(text) {
                Ok(value) => format!("a record must be a JSON object, got {}", json_type(&value)),
                Err(e) => format!("not valid JSON: {e}"),
            };
            return Err((None, what));
        }
        let raw: RawLine<'_> = match serde_json::from_str(text) {
            Ok(raw) => raw,
            Err(e) => {
                // Still name the record if its id can be read.
                let id = serde_json::from_str::<IdOnly>(text).ok().and_then(|r| r.id);
                let what = if e.is_syntax() || e.is_eof() {
                    format!("not valid JSON: {e}")
                } else {
                    format!("not a valid record: {e}")
                };
                return Err((id, what));
            }
        };
        let id = match raw.id {
            Some(serde_json::Value::String(id)) => id,
            Some(other) => {
                return Err((
                    None,
                    format!("`id` must be a string, got {}", json_type(&other)),
                ));
            }
            None => return Err((None, "missing `id`".into())),
        };
        if let Err(reason) = check_id(&id) {
            return Err((Some(id), reason));
        }
        let size_hint_mb = match raw.size_hint_mb {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::Number(n)) => match n.as_f64() {
                Some(mb) if mb.is_finite() && mb >= 0.0 => Some(mb),
                _ => return Err((Some(id), "`size_hint_mb` must be a number ≥ 0".into())),
            },
            Some(other) => {
                return Err((
                    Some(id),
                    format!("`size_hint_mb` must be a number, got {}", json_type(&other)),
                ));
            }
        };
        if let Err(first) = self.ids.insert(&id, line) {
            return Err((Some(id), format!("duplicate id (first on line {first})")));
        }
        let metadata = raw
            .metadata
            .map_or_else(|| "null".to_owned(), |m| m.get().to_owned());
        pending_record(id, metadata, size_hint_mb, self.files.as_ref())
    }
}

/// A record's guest form, with its files directory resolved under `files`; a refused files
/// directory gives the record's id back with the reason.
fn pending_record(
    id: String,
    metadata: String,
    size_hint_mb: Option<f64>,
    files: Option<&FilesRoot>,
) -> Result<PendingRecord, (Option<String>, String)> {
    let files_host_dir = match files.map(|f| f.record_dir(&id)).transpose() {
        Ok(dir) => dir.flatten(),
        Err(reason) => return Err((Some(id), reason)),
    };
    let files_dir = files_host_dir
        .as_ref()
        .map(|_| format!("{FILES_GUEST_ROOT}/{id}"));
    Ok(PendingRecord {
        record: bindings::Record {
            id,
            metadata,
            size_hint_mb,
            files_dir,
        },
        files_host_dir,
    })
}

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

/// Checks records given as values with the rules [`InputReader`] applies to lines, and
/// digests each as the JSONL line it would be (`serde_json` of [`Record`] plus `\n`), so
/// `input.sha256` in provenance is the digest of the batch written as a JSONL file.
pub(crate) struct RecordChecker {
    files: Option<FilesRoot>,
    ids: IdSet,
    hasher: Sha256,
    bytes: u64,
    records: u64,
    line: Vec<u8>,
}

impl RecordChecker {
    pub(crate) fn new(files: Option<FilesRoot>) -> Self {
        RecordChecker {
            files,
            ids: IdSet::default(),
            hasher: Sha256::new(),
            bytes: 0,
            records: 0,
            line: Vec::new(),
        }
    }

    /// Checks the next record; its position (from 1) stands in for a line number.
    pub(crate) fn check(&mut self, record: Record) -> InputItem {
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
        let invalid = |id: Option<String>, reason: String| InputItem::Invalid { line, id, reason };
        if let Err(reason) = check_id(&record.id) {
            let id = (!record.id.is_empty()).then_some(record.id);
            return invalid(id, reason);
        }
        if let Some(mb) = record.size_hint_mb
            && !(mb.is_finite() && mb >= 0.0)
        {
            return invalid(
                Some(record.id),
                "`size_hint_mb` must be a number ≥ 0".into(),
            );
        }
        if let Err(first) = self.ids.insert(&record.id, line) {
            let reason = format!("duplicate id (first at position {first})");
            return invalid(Some(record.id), reason);
        }
        let files = self.files.as_ref();
        match pending_record(record.id, metadata, record.size_hint_mb, files) {
            Ok(record) => InputItem::Record { line, record },
            Err((id, reason)) => invalid(id, reason),
        }
    }

    pub(crate) fn summary(&self) -> InputRecord {
        InputRecord {
            sha256: hex(&self.hasher.clone().finalize()),
            bytes: self.bytes,
            records: self.records,
        }
    }

    pub(crate) fn bytes_read(&self) -> u64 {
        self.bytes
    }
}

/// The ids of a batch seen so far, to refuse duplicates: a fixed 20 bytes per id (plus the
/// table's slack), however long the ids are.
#[derive(Default)]
struct IdSet {
    seen: HashMap<IdKey, u32, BuildHasherDefault<IdKeyHasher>>,
}

impl IdSet {
    /// Notes `id` first seen at `line`; for an id seen before, the line it was first seen on.
    fn insert(&mut self, id: &str, line: u64) -> Result<(), u32> {
        let key = id_key(id);
        if let Some(first) = self.seen.get(&key) {
            return Err(*first);
        }
        self.seen
            .insert(key, u32::try_from(line).unwrap_or(u32::MAX));
        Ok(())
    }
}

impl<R> std::fmt::Debug for InputReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputReader")
            .field("line", &self.line)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLine<'a> {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default, borrow)]
    metadata: Option<&'a RawValue>,
    #[serde(default)]
    size_hint_mb: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct IdOnly {
    id: Option<String>,
}

/// Checks the id rules of DESIGN.md: non-empty, no `/`, `\`, NUL or `..` (and not `.`), so
/// an id can always name a directory under the files root.
pub fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("`id` is empty".into());
    }
    if id == "." {
        return Err("`id` may not be `.`".into());
    }
    for bad in ["/", "\\", "\0", ".."] {
        if id.contains(bad) {
            let shown = if bad == "\0" { "NUL" } else { bad };
            return Err(format!("`id` may not contain `{shown}`"));
        }
    }
    Ok(())
}

/// 128 bits of an id's sha256: enough that two different ids never share a key in practice,
/// at a fixed 16 bytes per record however long the ids are. Stored as `u32`s so a table entry
/// with its line number packs into 20 bytes.
type IdKey = [u32; 4];

fn id_key(id: &str) -> IdKey {
    let digest = Sha256::digest(id.as_bytes());
    std::array::from_fn(|i| {
        u32::from_le_bytes(digest[i * 4..i * 4 + 4].try_into().expect("4 bytes"))
    })
}

/// The keys are already uniform hashes, so the table uses their first 64 bits as is.
#[derive(Default)]
struct IdKeyHasher(u64);

impl Hasher for IdKeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes.iter().take(8) {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0 << 32) | u64::from(n);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(input: &[u8]) -> Vec<InputItem> {
        let mut reader = InputReader::new(input, None).with_max_line_bytes(64);
        std::iter::from_fn(|| reader.next_item().unwrap()).collect()
    }

    fn reason(item: &InputItem) -> (u64, Option<&str>, &str) {
        match item {
            InputItem::Invalid { line, id, reason } => (*line, id.as_deref(), reason),
            InputItem::Record { line, .. } => panic!("line {line} should be invalid"),
        }
    }

    #[test]
    fn valid_records_keep_metadata_verbatim() {
        let got = items(
            b"{\"id\":\"a\",\"metadata\":{\"x\": 1.50},\"size_hint_mb\":2}\n\n  \n{\"id\":\"b\"}",
        );
        assert_eq!(got.len(), 2);
        let InputItem::Record { line, record } = &got[0] else {
            panic!()
        };
        assert_eq!(*line, 1);
        assert_eq!(record.record.metadata, "{\"x\": 1.50}");
        assert_eq!(record.record.size_hint_mb, Some(2.0));
        let InputItem::Record { line, record } = &got[1] else {
            panic!()
        };
        assert_eq!((*line, record.record.metadata.as_str()), (4, "null"));
    }

    #[test]
    fn invalid_lines_say_why_and_where() {
        let input = concat!(
            "not json\n",
            "[1,2]\n",
            "{\"metadata\":{}}\n",
            "{\"id\":7}\n",
            "{\"id\":\"\"}\n",
            "{\"id\":\"a/b\"}\n",
            "{\"id\":\"x\",\"metdata\":{}}\n",
            "{\"id\":\"ok\"}\n",
            "{\"id\":\"ok\"}\n",
            "{\"id\":\"big\",\"metadata\":\"0123456789012345678901234567890123456789012345678901234567890123456789\"}\n",
            "{\"id\":\"neg\",\"size_hint_mb\":-1}\n",
        );
        let got = items(input.as_bytes());
        assert_eq!(got.len(), 11);
        assert!(reason(&got[0]).2.starts_with("not valid JSON"));
        assert_eq!(
            reason(&got[1]).2,
            "a record must be a JSON object, got an array"
        );
        assert_eq!(reason(&got[2]).2, "missing `id`");
        assert_eq!(reason(&got[3]).2, "`id` must be a string, got a number");
        assert_eq!(reason(&got[4]).2, "`id` is empty");
        assert_eq!(
            reason(&got[5]),
            (6, Some("a/b"), "`id` may not contain `/`")
        );
        let (line, id, why) = reason(&got[6]);
        assert_eq!((line, id), (7, Some("x")));
        assert!(why.contains("unknown field `metdata`"), "{why}");
        assert!(matches!(got[7], InputItem::Record { line: 8, .. }));
        assert_eq!(
            reason(&got[8]),
            (9, Some("ok"), "duplicate id (first on line 8)")
        );
        assert!(reason(&got[9]).2.contains("over the cap of 64 bytes"));
        assert_eq!(reason(&got[10]).1, Some("neg"));
    }

    #[test]
    fn encoding_problems_are_named() {
        let got = items(b"\xEF\xBB\xBF{\"id\":\"a\"}\n{\"id\":\"\xff\"}\r\n");
        assert!(reason(&got[0]).2.contains("byte-order mark"));
        assert!(reason(&got[1]).2.contains("not valid UTF-8"));
    }

    #[test]
    fn summary_hashes_every_byte() {
        let input = b"{\"id\":\"a\"}\n\nnot json\n";
        let mut reader = InputReader::new(&input[..], None);
        while reader.next_item().unwrap().is_some() {}
        let summary = reader.summary();
        assert_eq!(summary.bytes, input.len() as u64);
        assert_eq!(summary.records, 2);
        assert_eq!(summary.sha256, hex(&Sha256::digest(input)));
    }

    #[test]
    fn ids_that_could_escape_are_refused() {
        for bad in ["..", "a/../b", "a\\b", "x\0y", ".", ""] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
        for good in ["a", "doc-1", "a.b", "ünïcode id"] {
            assert!(check_id(good).is_ok(), "{good:?}");
        }
    }
}
