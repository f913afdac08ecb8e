//! Reading a JSONL batch: one record per line, streamed, every line hashed.
//!
//! [`InputReader`] yields [`InputItem`]s: a record ready to run, or an invalid line with the
//! reason (which becomes an `invalid_input` error in `errors.jsonl`, naming the line). Blank
//! lines are skipped. To refuse duplicate ids the reader keeps 20 bytes per record (a 128-bit
//! hash of the id and its line number) in a hash table; nothing else it holds grows with the
//! input.

use std::io::{self, BufRead};

use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest as _, Sha256};

#[cfg(test)]
use super::check::check_id;
use super::check::{Checker, Position, json_type};
use super::files::FilesRoot;
use super::{InputItem, PendingRecord};
use crate::digest::hex;
use crate::provenance::InputRecord;

/// The longest input line accepted, in bytes.
pub const DEFAULT_MAX_LINE_BYTES: usize = 16 << 20;

/// Reads records from a JSONL stream.
pub struct InputReader<R> {
    reader: R,
    checker: Checker,
    max_line_bytes: usize,
    line: u64,
    buffer: Vec<u8>,
    hasher: Sha256,
    bytes: u64,
    records: u64,
}

impl<R: BufRead> InputReader<R> {
    /// A reader over `reader`; `files` gives records their files directories.
    pub fn new(reader: R, files: Option<FilesRoot>) -> Self {
        InputReader {
            reader,
            checker: Checker::new(files),
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            line: 0,
            buffer: Vec::new(),
            hasher: Sha256::new(),
            bytes: 0,
            records: 0,
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
        let size_hint_mb = match raw.size_hint_mb {
            None | Some(serde_json::Value::Null) => Ok(None),
            // A number that is not an f64 (out of range) is refused as not ≥ 0 and finite.
            Some(serde_json::Value::Number(n)) => Ok(Some(n.as_f64().unwrap_or(f64::NAN))),
            Some(other) => Err(format!(
                "`size_hint_mb` must be a number, got {}",
                json_type(&other)
            )),
        };
        let metadata = raw
            .metadata
            .map_or_else(|| "null".to_owned(), |m| m.get().to_owned());
        self.checker
            .admit(id, metadata, size_hint_mb, Position::Line(line))
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
