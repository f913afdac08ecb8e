//! [`Record`]: one input record, with its metadata and files.

use std::fs;
use std::path::Path;

use serde::de::DeserializeOwned;

use crate::bindings::hookhost::hook::types::Record as WitRecord;
use crate::{GuestError, Refusal};

/// One input record: an id, JSON metadata, an optional size hint and optional files.
///
/// `Record::new` builds one by hand, which is how a hook's `process` is unit-tested natively:
///
/// ```
/// use hookhost_sdk::Record;
///
/// let record = Record::new("doc-1", r#"{"text": "hello"}"#);
/// let meta: serde_json::Value = record.metadata().unwrap();
/// assert_eq!(meta["text"], "hello");
/// assert!(record.files().unwrap().is_empty()); // no files-dir: no files
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Record(pub(crate) WitRecord);

/// A regular file of a record (see [`Record::files`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordFile {
    /// The file's name inside the record's files-dir; pass it to [`Record::read_file`].
    pub name: String,
    /// The file's size in bytes.
    pub len: u64,
}

impl Record {
    /// A record with this id and metadata (JSON text), no size hint and no files.
    pub fn new(id: impl Into<String>, metadata_json: impl Into<String>) -> Self {
        Self(WitRecord {
            id: id.into(),
            metadata: metadata_json.into(),
            size_hint_mb: None,
            files_dir: None,
        })
    }

    /// The same record with its files in `dir`.
    pub fn with_files_dir(mut self, dir: impl Into<String>) -> Self {
        self.0.files_dir = Some(dir.into());
        self
    }

    /// The same record with a size hint.
    pub fn with_size_hint_mb(mut self, mb: f64) -> Self {
        self.0.size_hint_mb = Some(mb);
        self
    }

    /// The record's id, unique within the batch.
    pub fn id(&self) -> &str {
        &self.0.id
    }

    /// The metadata parsed into `T`.
    ///
    /// A parse failure is a rejection, `metadata: <what did not fit, and where>`, so `?` in
    /// [`Hook::process`](crate::Hook::process) rejects a record whose metadata does not fit.
    pub fn metadata<T: DeserializeOwned>(&self) -> Result<T, Refusal> {
        crate::parse_json(&self.0.metadata).map_err(|e| Refusal::Rejected(format!("metadata: {e}")))
    }

    /// The metadata as JSON text, exactly as the host passed it.
    pub fn metadata_json(&self) -> &str {
        &self.0.metadata
    }

    /// The producer's estimate of the record's size in MiB, if given.
    pub fn size_hint_mb(&self) -> Option<f64> {
        self.0.size_hint_mb
    }

    /// The record's read-only files directory inside the sandbox, if the run has files.
    pub fn files_dir(&self) -> Option<&str> {
        self.0.files_dir.as_deref()
    }

    /// The regular files directly in the record's files-dir, sorted by name; empty when the
    /// record has no files-dir. Subdirectories and symlinks are left out.
    pub fn files(&self) -> Result<Vec<RecordFile>, GuestError> {
        let Some(dir) = self.files_dir() else {
            return Ok(Vec::new());
        };
        let context = |e: std::io::Error| self.file_error(format!("listing {dir}"), e);
        let mut files = Vec::new();
        for entry in fs::read_dir(dir).map_err(context)? {
            let entry = entry.map_err(context)?;
            let metadata = entry.metadata().map_err(context)?;
            if !metadata.is_file() {
                continue;
            }
            let name = entry.file_name().into_string().map_err(|name| {
                GuestError::new(format!(
                    "record {}: file name is not UTF-8: {}",
                    self.id(),
                    name.display()
                ))
            })?;
            files.push(RecordFile {
                name,
                len: metadata.len(),
            });
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(files)
    }

    /// Reads the record's file `name` (a name from [`files`](Self::files), not a path).
    pub fn read_file(&self, name: &str) -> Result<Vec<u8>, GuestError> {
        let Some(dir) = self.files_dir() else {
            return Err(GuestError::new(format!(
                "record {} has no files",
                self.id()
            )));
        };
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\']) {
            return Err(GuestError::new(format!(
                "record {}: {name:?} is not a file name",
                self.id()
            )));
        }
        fs::read(Path::new(dir).join(name))
            .map_err(|e| self.file_error(format!("reading {name}"), e))
    }

    fn file_error(&self, doing: String, error: std::io::Error) -> GuestError {
        GuestError::new(format!("record {}: {doing}: {error}", self.id()))
    }
}

impl From<WitRecord> for Record {
    fn from(record: WitRecord) -> Self {
        Self(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_mismatch_is_a_rejection_naming_the_field() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Meta {
            text: String,
        }
        let refusal = Record::new("r", r#"{"text": 5}"#)
            .metadata::<Meta>()
            .unwrap_err();
        assert_eq!(
            refusal,
            Refusal::Rejected(
                "metadata: text: invalid type: integer `5`, expected a string at line 1 column 10"
                    .into()
            )
        );
    }

    #[test]
    fn files_are_listed_sorted_and_read_by_name() {
        let dir = std::env::temp_dir().join(format!("hookhost-sdk-files-{}", std::process::id()));
        fs::create_dir_all(dir.join("sub")).unwrap();
        fs::write(dir.join("b.csv"), "1,2\n").unwrap();
        fs::write(dir.join("a.txt"), "hello").unwrap();
        let record = Record::new("r", "{}").with_files_dir(dir.to_str().unwrap());

        let files = record.files().unwrap();
        let listed: Vec<_> = files.iter().map(|f| (f.name.as_str(), f.len)).collect();
        assert_eq!(listed, [("a.txt", 5), ("b.csv", 4)]);
        assert_eq!(record.read_file("b.csv").unwrap(), b"1,2\n");
        assert!(record.read_file("../etc/passwd").is_err());
        assert!(
            record
                .read_file("missing")
                .unwrap_err()
                .message
                .contains("reading missing")
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
