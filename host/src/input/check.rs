//! The one record check that every source applies, whether a record came as a JSONL line or
//! as a value: the id rules, a finite non-negative size hint, no duplicate id, and a files
//! directory that may be shown to the guest.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};

use super::files::FilesRoot;
use super::{GuestRecord, PendingRecord};
use crate::sandbox::FILES_GUEST_ROOT;

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

/// Where an item sits in its batch, as its errors name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Position {
    /// A JSONL line, 1-based: errors say "line N" and give back the id as the line wrote it.
    Line(u64),
    /// A record given as a value, 1-based: errors say "position N"; an empty id is no id.
    Index(u64),
}

impl Position {
    fn number(self) -> u64 {
        match self {
            Position::Line(n) | Position::Index(n) => n,
        }
    }
}

/// The checks every record goes through, whatever its source, with the state they need: the
/// ids seen so far and the files root.
pub(crate) struct Checker {
    files: Option<FilesRoot>,
    ids: IdSet,
}

impl std::fmt::Debug for Checker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checker")
            .field("ids", &self.ids.seen.len())
            .field("files", &self.files)
            .finish()
    }
}

impl Checker {
    pub(crate) fn new(files: Option<FilesRoot>) -> Self {
        Checker {
            files,
            ids: IdSet::default(),
        }
    }

    /// Admits record `id` at `at`, or says why not (with the id to name it by, if usable):
    /// the id rules, then the size hint (`Err` when the source could not read one as a
    /// number), then duplicates, then its files directory.
    pub(crate) fn admit(
        &mut self,
        id: String,
        metadata: String,
        size_hint_mb: Result<Option<f64>, String>,
        at: Position,
    ) -> Result<PendingRecord, (Option<String>, String)> {
        if let Err(reason) = check_id(&id) {
            let id = match at {
                Position::Line(_) => Some(id),
                Position::Index(_) => (!id.is_empty()).then_some(id),
            };
            return Err((id, reason));
        }
        let size_hint_mb = match size_hint_mb {
            Ok(Some(mb)) if !(mb.is_finite() && mb >= 0.0) => {
                return Err((Some(id), "`size_hint_mb` must be a number ≥ 0".into()));
            }
            Ok(hint) => hint,
            Err(reason) => return Err((Some(id), reason)),
        };
        if let Err(first) = self.ids.insert(&id, at.number()) {
            let reason = match at {
                Position::Line(_) => format!("duplicate id (first on line {first})"),
                Position::Index(_) => format!("duplicate id (first at position {first})"),
            };
            return Err((Some(id), reason));
        }
        pending_record(id, metadata, size_hint_mb, self.files.as_ref())
    }
}

/// The ids of a batch seen so far, to refuse duplicates: a fixed 20 bytes per id (plus the
/// table's slack), however long the ids are.
#[derive(Default)]
struct IdSet {
    seen: HashMap<IdKey, u32, BuildHasherDefault<IdKeyHasher>>,
    /// The batch's own random hash key (see [`IdKey`]).
    keyed: RandomState,
}

impl IdSet {
    /// Notes `id` first seen at `line`; for an id seen before, the line it was first seen on.
    fn insert(&mut self, id: &str, line: u64) -> Result<(), u32> {
        let key = self.key(id);
        if let Some(first) = self.seen.get(&key) {
            return Err(*first);
        }
        self.seen
            .insert(key, u32::try_from(line).unwrap_or(u32::MAX));
        Ok(())
    }

    /// `id`'s [`IdKey`]: two 64-bit SipHashes under the batch's random key, one per domain
    /// byte.
    fn key(&self, id: &str) -> IdKey {
        let half = |domain: u8| {
            let mut hasher = self.keyed.build_hasher();
            hasher.write_u8(domain);
            hasher.write(id.as_bytes());
            hasher.finish()
        };
        let (a, b) = (half(0), half(1));
        [a as u32, (a >> 32) as u32, b as u32, (b >> 32) as u32]
    }
}

/// 128 bits of a keyed hash of an id: enough that two different ids never share a key in
/// practice, and one that input cannot be made to collide on, since the key is drawn at random
/// for each batch (no output depends on it: only whether two ids are the same does). At a fixed
/// 16 bytes per record however long the ids are; stored as `u32`s so a table entry with its
/// line number packs into 20 bytes. (Until issue 15 it was the id's sha256, which cost the
/// reader a SHA-256 per record.)
type IdKey = [u32; 4];

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
        record: GuestRecord {
            id,
            metadata,
            size_hint_mb,
            files_dir,
        },
        files_host_dir,
    })
}

pub(crate) fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
