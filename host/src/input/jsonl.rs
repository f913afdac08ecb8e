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
            // Most lines lie whole in the reader's buffer: they are checked where they lie,
            // not copied out first (issue 15: the driver's per-record work).
            if let Some(whole) = self.next_whole_line()? {
                match whole {
                    Some(item) => return Ok(Some(item)),
                    None => continue,
                }
            }
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
            let buffer = std::mem::take(&mut self.buffer);
            let item = item_of(&mut self.checker, &mut self.records, &buffer, line);
            self.buffer = buffer;
            if let Some(item) = item {
                return Ok(Some(item));
            }
        }
    }

    /// The next line when the reader's buffer holds all of it (its newline included) and it is
    /// within the cap: `Some(Some(item))`, or `Some(None)` for a blank line. `None` when the
    /// line must be read piece by piece ([`read_line`](Self::read_line)).
    fn next_whole_line(&mut self) -> io::Result<Option<Option<InputItem>>> {
        let available = loop {
            match self.reader.fill_buf() {
                Ok(bytes) => break bytes,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        let Some(at) = memchr::memchr(b'\n', available) else {
            return Ok(None);
        };
        let mut content = &available[..at];
        if let [rest @ .., b'\r'] = content {
            content = rest;
        }
        if content.len() > self.max_line_bytes {
            return Ok(None);
        }
        self.hasher.update(&available[..=at]);
        self.bytes += at as u64 + 1;
        self.line += 1;
        let item = item_of(&mut self.checker, &mut self.records, content, self.line);
        self.reader.consume(at + 1);
        Ok(Some(item))
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
            let (chunk, done) = match memchr::memchr(b'\n', available) {
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
}

/// The item of one line's content (no newline), or `None` for a blank line, which is neither
/// counted nor numbered as a record.
fn item_of(
    checker: &mut Checker,
    records: &mut u64,
    content: &[u8],
    line: u64,
) -> Option<InputItem> {
    if content.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    *records += 1;
    Some(match parse(checker, content, line) {
        Ok(record) => InputItem::Record { line, record },
        Err((id, reason)) => InputItem::Invalid { line, id, reason },
    })
}

/// Parses and admits one line. A line that parses as a record object was valid UTF-8 (serde_json
/// checks every string and raw value it borrows from bytes, and nothing else may hold a
/// non-ASCII byte), so the UTF-8 check runs only to word a refusal.
fn parse(
    checker: &mut Checker,
    content: &[u8],
    line: u64,
) -> Result<PendingRecord, (Option<String>, String)> {
    if content.trim_ascii_start().first() == Some(&b'{')
        && let Ok(raw) = serde_json::from_slice::<RawLine<'_>>(content)
    {
        return admit(checker, raw, line);
    }
    parse_checked(checker, content, line)
}

/// [`parse`] one check at a time, so a refusal names the first check the line fails.
fn parse_checked(
    checker: &mut Checker,
    content: &[u8],
    line: u64,
) -> Result<PendingRecord, (Option<String>, String)> {
    if content.starts_with(b"\xEF\xBB\xBF") {
        return Err((
            None,
            "line starts with a UTF-8 byte-order mark; save the file without one".into(),
        ));
    }
    let text = std::str::from_utf8(content).map_err(|e| {
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
    match serde_json::from_str::<RawLine<'_>>(text) {
        Ok(raw) => admit(checker, raw, line),
        Err(error) => {
            // Still name the record if its id can be read.
            let id = serde_json::from_str::<IdOnly>(text).ok().and_then(|r| r.id);
            let what = if error.is_syntax() || error.is_eof() {
                format!("not valid JSON: {error}")
            } else {
                format!("not a valid record: {error}")
            };
            Err((id, what))
        }
    }
}

/// Admits a line that parsed as a record object: its id and size hint must have the right
/// types before the record check.
fn admit(
    checker: &mut Checker,
    raw: RawLine<'_>,
    line: u64,
) -> Result<PendingRecord, (Option<String>, String)> {
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
    checker.admit(id, metadata, size_hint_mb, Position::Line(line))
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

    /// Issue 15: a line that lies whole in the reader's buffer is checked where it lies; one
    /// that straddles the buffer's end is assembled. Both must give the same items, line
    /// numbers, counts and digest, whatever the buffer's size.
    #[test]
    fn lines_split_across_the_buffer_read_as_whole_ones() {
        let input: &[u8] = b"{\"id\":\"a\",\"metadata\":{\"t\":\"x y\"}}\r\n\n   \n{\"id\":\"a\"}\nnot json\n\
            {\"id\":\"long\",\"metadata\":\"0123456789012345678901234567890123456789012345678901234567890123456789\"}\n\
            {\"id\":\"b\",\"size_hint_mb\":1}\r\n{\"id\":\"last\"}";
        let read = |capacity: usize| {
            let buffered = std::io::BufReader::with_capacity(capacity, input);
            let mut reader = InputReader::new(buffered, None).with_max_line_bytes(64);
            let items: Vec<String> = std::iter::from_fn(|| reader.next_item().unwrap())
                .map(|item| format!("{item:?}"))
                .collect();
            (items, reader.summary())
        };
        let (whole, summary) = read(1 << 16);
        assert_eq!(whole.len(), 6, "{whole:#?}");
        assert_eq!(summary.sha256, hex(&Sha256::digest(input)));
        assert_eq!((summary.bytes, summary.records), (input.len() as u64, 6));
        for capacity in [1, 2, 3, 7, 16, 41, 64, 65, 100] {
            let (items, split) = read(capacity);
            assert_eq!(items, whole, "buffer of {capacity} bytes");
            assert_eq!(split, summary, "buffer of {capacity} bytes");
        }
    }

    /// Issue 15: a line is parsed once from its bytes, and checked step by step only when that
    /// fails; either way it must come out as the step-by-step parse says.
    #[test]
    fn the_one_pass_parse_agrees_with_the_checked_one() {
        let lines: &[&[u8]] = &[
            b"{\"id\":\"a\",\"metadata\":{\"t\":\"caf\xc3\xa9 \\ud83d\\ude00\"},\"size_hint_mb\":1.5}",
            b"  \t{\"id\":\"a\"}  ",
            b"{\"id\":\"caf\xe9\"}",
            b"{\"id\":\"a\",\"metadata\":\"\xff\"}",
            b"{\"id\":\"a\"} \xc2\xa0",
            b"\xc2\xa0{\"id\":\"a\"}",
            b"\xEF\xBB\xBF{\"id\":\"a\"}",
            b"[\"a\", null, null]",
            b"{\"id\":[\"a\"]}",
            b"{\"id\":\"a\",\"size_hint_mb\":\"1\"}",
            b"{\"id\":\"a\",\"size_hint_mb\":1e999}",
            b"{\"id\":\"a\",\"extra\":1}",
            b"{\"id\":\"\\ud800\"}",
            b"{\"id\":\"a/b\"}",
            b"{\"id\":\"a\",\"metadata\":{\"x\":1}",
            b"{\"id\":\"a\",\"id\":\"b\"}",
            b"null",
        ];
        for line in lines {
            let one_pass = parse(&mut Checker::new(None), line, 1);
            let checked = parse_checked(&mut Checker::new(None), line, 1);
            assert_eq!(
                format!("{one_pass:?}"),
                format!("{checked:?}"),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
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
