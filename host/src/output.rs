//! The output directory of `host run`, made visible only when complete.
//!
//! Everything is written into a hidden staging directory beside the target
//! (`.<name>.partial-<run_id>`), through cap-std handles rooted at the target's parent: each
//! file is flushed and fsynced, `run.json` is written last, the staging directory is fsynced
//! and renamed to the target in one step, and the parent is fsynced. A reader that sees the
//! target sees all of it; a crash leaves only the hidden staging directory behind.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use cap_std::fs::{Dir, File};
use sha2::{Digest as _, Sha256};

use crate::contract::{Contract, hex};
use crate::error::{Error, RecordError};
use crate::provenance::{OutputFile, RunRecord};

/// The feature rows file.
pub const FEATURES_FILE: &str = "features.jsonl";
/// The rejections file.
pub const REJECTIONS_FILE: &str = "rejections.jsonl";
/// The errors file.
pub const ERRORS_FILE: &str = "errors.jsonl";
/// The captured guest output.
pub const LOGS_FILE: &str = "logs.txt";
/// The provenance record, written last.
pub const RUN_FILE: &str = "run.json";

/// An output directory being written.
#[derive(Debug)]
pub struct OutputDir {
    target: PathBuf,
    parent: Dir,
    final_name: String,
    staging_name: String,
    staging: Dir,
    features: HashedFile,
    rejections: HashedFile,
    errors: HashedFile,
    logs: HashedFile,
}

impl OutputDir {
    /// Starts writing the output of run `run_id` for directory `target`, which must not exist
    /// or be empty. Missing parent directories are created.
    pub fn create(target: &Path, run_id: &str) -> Result<OutputDir, Error> {
        let final_name = target
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| *n != "..")
            .ok_or_else(|| {
                Error::io(
                    target,
                    std::io::Error::other("the output directory needs a plain UTF-8 name"),
                )
            })?
            .to_owned();
        let parent_path = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent_path).map_err(|e| Error::io(&parent_path, e))?;
        let parent = Dir::open_ambient_dir(&parent_path, cap_std::ambient_authority())
            .map_err(|e| Error::io(&parent_path, e))?;
        if let Ok(mut entries) = parent.read_dir(&final_name) {
            if entries.next().is_some() {
                return Err(Error::OutputExists {
                    path: target.to_owned(),
                });
            }
        } else if parent.symlink_metadata(&final_name).is_ok() {
            return Err(Error::OutputExists {
                path: target.to_owned(),
            });
        }
        let staging_name = format!(".{final_name}.partial-{run_id}");
        let io = |e| Error::io(parent_path.join(&staging_name), e);
        parent.create_dir(&staging_name).map_err(io)?;
        let staging = parent.open_dir(&staging_name).map_err(io)?;
        let open = |name: &str| -> Result<HashedFile, Error> {
            let file = staging
                .create(name)
                .map_err(|e| Error::io(parent_path.join(&staging_name).join(name), e))?;
            Ok(HashedFile::new(file))
        };
        Ok(OutputDir {
            features: open(FEATURES_FILE)?,
            rejections: open(REJECTIONS_FILE)?,
            errors: open(ERRORS_FILE)?,
            logs: open(LOGS_FILE)?,
            target: target.to_owned(),
            parent,
            final_name,
            staging_name,
            staging,
        })
    }

    /// Writes a passed record's rows: `{"id", "run_id", "features": {column: value, …}}`,
    /// columns in contract order.
    pub fn write_features(
        &mut self,
        id: &str,
        run_id: &str,
        contract: &Contract,
        rows: &[Vec<serde_json::Value>],
    ) -> Result<(), Error> {
        for row in rows {
            let mut line = Vec::with_capacity(128);
            line.extend_from_slice(b"{\"id\":");
            serde_json::to_writer(&mut line, id).expect("strings serialize");
            line.extend_from_slice(b",\"run_id\":");
            serde_json::to_writer(&mut line, run_id).expect("strings serialize");
            line.extend_from_slice(b",\"features\":{");
            for (index, (column, value)) in contract.columns.iter().zip(row).enumerate() {
                if index > 0 {
                    line.push(b',');
                }
                serde_json::to_writer(&mut line, &column.name).expect("strings serialize");
                line.push(b':');
                serde_json::to_writer(&mut line, value).expect("JSON values serialize");
            }
            line.extend_from_slice(b"}}\n");
            self.features
                .write_raw(&line)
                .map_err(|e| self.io_error(FEATURES_FILE, e))?;
        }
        Ok(())
    }

    /// Writes a rejection: `{"id", "run_id", "reason"}`.
    pub fn write_rejection(&mut self, id: &str, run_id: &str, reason: &str) -> Result<(), Error> {
        #[derive(serde::Serialize)]
        struct Rejection<'a> {
            id: &'a str,
            run_id: &'a str,
            reason: &'a str,
        }
        self.rejections
            .write_json_line(&Rejection { id, run_id, reason })
            .map_err(|e| self.io_error(REJECTIONS_FILE, e))
    }

    /// Writes an error: `{"id", "line", "run_id", "kind", "error", "retryable"}`.
    pub fn write_error(
        &mut self,
        id: Option<&str>,
        line: u64,
        run_id: &str,
        error: &RecordError,
    ) -> Result<(), Error> {
        #[derive(serde::Serialize)]
        struct ErrorLine<'a> {
            id: Option<&'a str>,
            line: u64,
            run_id: &'a str,
            kind: &'static str,
            error: String,
            retryable: bool,
        }
        let json = ErrorLine {
            id,
            line,
            run_id,
            kind: error.kind(),
            error: error.to_string(),
            retryable: error.retryable(),
        };
        self.errors
            .write_json_line(&json)
            .map_err(|e| self.io_error(ERRORS_FILE, e))
    }

    /// Appends captured guest output.
    pub fn write_logs(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.logs
            .write_raw(bytes)
            .map_err(|e| self.io_error(LOGS_FILE, e))
    }

    /// Finishes every file, lists them in `record.outputs`, writes `run.json`, and makes the
    /// directory visible at its target. Returns the target path.
    pub fn finish(self, record: &mut RunRecord) -> Result<PathBuf, Error> {
        for (name, file) in [
            (FEATURES_FILE, self.features),
            (REJECTIONS_FILE, self.rejections),
            (ERRORS_FILE, self.errors),
            (LOGS_FILE, self.logs),
        ] {
            let summary = file.finish().map_err(|e| {
                Error::io(self.target.with_file_name(&self.staging_name).join(name), e)
            })?;
            record.outputs.insert(name.to_owned(), summary);
        }
        let staging_path = self.target.with_file_name(&self.staging_name);
        let io = |name: &str| {
            let path = staging_path.join(name);
            move |e| Error::io(path, e)
        };
        let mut json = serde_json::to_vec_pretty(record).expect("a run record serializes");
        json.push(b'\n');
        let mut run_file = self.staging.create(RUN_FILE).map_err(io(RUN_FILE))?;
        run_file.write_all(&json).map_err(io(RUN_FILE))?;
        run_file.sync_all().map_err(io(RUN_FILE))?;
        sync_dir(&self.staging).map_err(io("."))?;
        self.parent
            .rename(&self.staging_name, &self.parent, &self.final_name)
            .map_err(|e| {
                if self.parent.read_dir(&self.final_name).is_ok() {
                    Error::OutputExists {
                        path: self.target.clone(),
                    }
                } else {
                    Error::io(&self.target, e)
                }
            })?;
        sync_dir(&self.parent).map_err(|e| Error::io(&self.target, e))?;
        Ok(self.target)
    }

    fn io_error(&self, name: &str, e: std::io::Error) -> Error {
        Error::io(self.target.with_file_name(&self.staging_name).join(name), e)
    }
}

/// Fsyncs a directory, so the names in it (a renamed file, a new entry) survive a crash.
/// cap-std's own handle may not allow `fsync`, so the directory is opened again for reading.
fn sync_dir(dir: &Dir) -> std::io::Result<()> {
    dir.open(".")?.sync_all()
}

/// A file written through a buffer while its hash, size and line count are kept.
#[derive(Debug)]
struct HashedFile {
    writer: BufWriter<File>,
    hasher: Sha256,
    bytes: u64,
    rows: u64,
}

impl HashedFile {
    fn new(file: File) -> Self {
        HashedFile {
            writer: BufWriter::with_capacity(256 * 1024, file),
            hasher: Sha256::new(),
            bytes: 0,
            rows: 0,
        }
    }

    fn write_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes)?;
        self.hasher.update(bytes);
        self.bytes += bytes.len() as u64;
        self.rows += bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        Ok(())
    }

    fn write_json_line(&mut self, value: &impl serde::Serialize) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(value).expect("JSON values serialize");
        line.push(b'\n');
        self.write_raw(&line)
    }

    fn finish(self) -> std::io::Result<OutputFile> {
        let file = self.writer.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(OutputFile {
            sha256: hex(&self.hasher.finalize()),
            bytes: self.bytes,
            rows: self.rows,
        })
    }
}
