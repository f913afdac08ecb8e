//! Outputs: the directory of a run (`host run`'s files) and of a batch, each made visible only
//! when complete.
//!
//! - [`OutputDir`] — one run's `rejections.jsonl`, `errors.jsonl`, `logs.txt` and
//!   `run.json`, every file hashed while it is written, and the file its feature sink writes
//!   (`features.jsonl` or `features.parquet`, see [`sink`](crate::sink)).
//! - [`BatchDir`] — a batch's directory: one run directory per hook, `passed.jsonl` and
//!   `batch.json`.
//! - `staging` — the step both share: a locked hidden directory beside the target, renamed
//!   into place in one step.
//!
//! Everything is written into a hidden staging directory beside the target
//! (`.<name>.partial-<run_id>`), through cap-std handles rooted at the target's parent: each
//! file is flushed and fsynced, `run.json` is written last, the staging directory is fsynced
//! and renamed to the target in one step, and the parent is fsynced. A reader that sees the
//! target sees all of it; a crash leaves only the hidden staging directory behind.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use cap_std::fs::File;
use sha2::{Digest as _, Sha256};

mod batch_dir;
mod staging;

pub use self::batch_dir::{BATCH_FILE, BatchDir, PASSED_FILE};
pub(crate) use self::staging::Staging;
use crate::digest::hex;
use crate::error::{Error, RecordError};
use crate::provenance::{OutputFile, RunRecord};

/// The feature rows file.
pub const FEATURES_FILE: &str = "features.jsonl";
/// The feature rows as Parquet, when the run asked for it ([`Features::Parquet`]).
///
/// [`Features::Parquet`]: crate::sink::Features::Parquet
pub const PARQUET_FILE: &str = "features.parquet";
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
    staging: Staging,
    rejections: HashedFile,
    errors: HashedFile,
    logs: HashedFile,
}

impl OutputDir {
    /// Starts writing the output of run `run_id` for directory `target`, which must not exist
    /// or be empty. Missing parent directories are created.
    pub fn create(target: &Path, run_id: &str) -> Result<OutputDir, Error> {
        let staging = Staging::create(target, run_id)?;
        let open = |name: &str| -> Result<HashedFile, Error> {
            let file = staging
                .dir
                .create(name)
                .map_err(|e| Error::io(staging.path.join(name), e))?;
            Ok(HashedFile::new(file))
        };
        Ok(OutputDir {
            rejections: open(REJECTIONS_FILE)?,
            errors: open(ERRORS_FILE)?,
            logs: open(LOGS_FILE)?,
            staging,
        })
    }

    /// Creates file `name` in the staging directory, written through a hash (for a feature
    /// sink's JSONL file). Returns it and its path, for messages.
    pub(crate) fn create_file(&self, name: &str) -> Result<(HashedFile, PathBuf), Error> {
        let (file, path) = self.create_raw(name)?;
        Ok((HashedFile::new(file), path))
    }

    /// Creates file `name` in the staging directory, unbuffered and unhashed (for a feature
    /// sink that writes its own format). Returns it and its path, for messages. The sink
    /// flushes and syncs it before the directory is made visible.
    pub(crate) fn create_raw(&self, name: &str) -> Result<(File, PathBuf), Error> {
        let path = self.staging.path.join(name);
        let file = self
            .staging
            .dir
            .create(name)
            .map_err(|e| Error::io(&path, e))?;
        Ok((file, path))
    }

    /// Writes a rejection: `{"id", "run_id", "reason"}`.
    pub fn write_rejection(&mut self, id: &str, run_id: &str, reason: &str) -> Result<(), Error> {
        let mut rest = b",\"reason\":".to_vec();
        serde_json::to_writer(&mut rest, reason).expect("strings serialize");
        rest.extend_from_slice(b"}\n");
        self.rejections
            .write_line(&id_member(id), run_id, &rest)
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
        let mut head = b"{\"id\":".to_vec();
        serde_json::to_writer(&mut head, &id).expect("strings serialize");
        head.extend_from_slice(format!(",\"line\":{line}").as_bytes());
        let mut rest = b",\"kind\":".to_vec();
        serde_json::to_writer(&mut rest, error.kind()).expect("strings serialize");
        rest.extend_from_slice(b",\"error\":");
        serde_json::to_writer(&mut rest, &error.to_string()).expect("strings serialize");
        rest.extend_from_slice(format!(",\"retryable\":{}}}\n", error.retryable()).as_bytes());
        self.errors
            .write_line(&head, run_id, &rest)
            .map_err(|e| self.io_error(ERRORS_FILE, e))
    }

    /// Appends captured guest output.
    pub fn write_logs(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.logs
            .write_raw(bytes)
            .map_err(|e| self.io_error(LOGS_FILE, e))
    }

    /// Finishes every file, lists them in `record.outputs` (beside what the feature sink
    /// listed there), writes `run.json`, and makes the directory visible at its target.
    /// Returns the target path.
    pub fn finish(self, record: &mut RunRecord) -> Result<PathBuf, Error> {
        for (name, file) in [
            (REJECTIONS_FILE, self.rejections),
            (ERRORS_FILE, self.errors),
            (LOGS_FILE, self.logs),
        ] {
            let summary = file
                .finish()
                .map_err(|e| Error::io(self.staging.path.join(name), e))?;
            record.outputs.insert(name.to_owned(), summary);
        }
        let mut json = serde_json::to_vec_pretty(record).expect("a run record serializes");
        json.push(b'\n');
        self.staging.commit(RUN_FILE, &json)
    }

    fn io_error(&self, name: &str, e: std::io::Error) -> Error {
        Error::io(self.staging.path.join(name), e)
    }
}

/// `{"id":<id>`: how every output line starts.
pub(crate) fn id_member(id: &str) -> Vec<u8> {
    let mut head = Vec::new();
    id_member_into(id, &mut head);
    head
}

/// [`id_member`] into `head`, which is cleared first.
pub(crate) fn id_member_into(id: &str, head: &mut Vec<u8>) {
    head.clear();
    head.extend_from_slice(b"{\"id\":");
    serde_json::to_writer(&mut *head, id).expect("strings serialize");
}

/// A file written through a buffer while its hash, content hash, size and line count are
/// kept. The content hash leaves out each line's `run_id` member (see
/// [`OutputFile::content_sha256`]).
#[derive(Debug)]
pub(crate) struct HashedFile {
    file: FileBytes,
    content: Sha256,
    rows: u64,
    /// `,"run_id":<run id>` as last rendered, and the run id it renders: a file's lines all
    /// name the same run, so it is rendered once.
    run_member: (String, Vec<u8>),
}

impl HashedFile {
    pub(crate) fn new(file: File) -> Self {
        HashedFile {
            file: FileBytes {
                writer: BufWriter::with_capacity(256 * 1024, file),
                hasher: Sha256::new(),
                bytes: 0,
            },
            content: Sha256::new(),
            rows: 0,
            run_member: (String::new(), Vec::new()),
        }
    }

    /// Writes bytes that belong to the content (no run id in them), counting their lines.
    fn write_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.write_content(bytes)?;
        self.rows += bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        Ok(())
    }

    /// Writes bytes that belong to the content.
    fn write_content(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.file.write(bytes)?;
        self.content.update(bytes);
        Ok(())
    }

    /// Writes one JSON line: `head`, then `,"run_id":<run_id>`, then `rest` (which closes the
    /// object and ends the line; rendered JSON holds no other newline).
    pub(crate) fn write_line(
        &mut self,
        head: &[u8],
        run_id: &str,
        rest: &[u8],
    ) -> std::io::Result<()> {
        if self.run_member.0 != run_id {
            let mut member = b",\"run_id\":".to_vec();
            serde_json::to_writer(&mut member, run_id).expect("strings serialize");
            self.run_member = (run_id.to_owned(), member);
        }
        self.write_content(head)?;
        // The run's part: in the file and its hash, not in the content hash.
        self.file.write(&self.run_member.1)?;
        self.write_content(rest)?;
        self.rows += 1;
        Ok(())
    }

    pub(crate) fn finish(self) -> std::io::Result<OutputFile> {
        let file = self.file.writer.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(OutputFile {
            sha256: hex(&self.file.hasher.finalize()),
            content_sha256: hex(&self.content.finalize()),
            bytes: self.file.bytes,
            rows: self.rows,
        })
    }
}

/// A file's bytes as written: through its buffer, into its hash and its size.
#[derive(Debug)]
struct FileBytes {
    writer: BufWriter<File>,
    hasher: Sha256,
    bytes: u64,
}

impl FileBytes {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes)?;
        self.hasher.update(bytes);
        self.bytes += bytes.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provenance::sample_record;
    use crate::sink::jsonl::JsonlFile;
    use crate::sink::{FeatureSink, Written};
    use cap_std::fs::Dir;

    fn write(run_id: &str, dir: &Path) -> RunRecord {
        use crate::contract::{Cardinality, Column, ColumnType, Contract};
        let contract = Contract {
            feature: "f".into(),
            cardinality: Cardinality::One,
            columns: vec![Column {
                name: "n".into(),
                ty: ColumnType::Integer,
                nullable: false,
                description: None,
            }],
        };
        let mut out = OutputDir::create(dir, run_id).unwrap();
        let (file, path) = out.create_file(FEATURES_FILE).unwrap();
        let mut features: Box<dyn FeatureSink> = Box::new(JsonlFile::new(file, path));
        features
            .write(
                "a",
                run_id,
                &crate::contract::CheckedRows::from_values(
                    &contract,
                    vec![vec![serde_json::json!(3)]],
                ),
            )
            .unwrap();
        out.write_rejection("b", run_id, "too \"short\"").unwrap();
        let error = RecordError::Guest {
            message: "no".into(),
            retryable: true,
        };
        out.write_error(Some("c"), 3, run_id, &error).unwrap();
        out.write_error(None, 4, run_id, &RecordError::InvalidInput("bad".into()))
            .unwrap();
        let mut record = sample_record(run_id);
        let Written::File { name, file } = features.finish().unwrap() else {
            unreachable!("a JSONL sink writes a file")
        };
        record.outputs.insert(name.to_owned(), file);
        out.finish(&mut record).unwrap();
        record
    }

    #[test]
    fn a_killed_runs_staging_is_removed_and_a_live_runs_is_not() {
        let root = tempfile::tempdir().unwrap();
        let parent = Dir::open_ambient_dir(root.path(), cap_std::ambient_authority()).unwrap();
        // A run killed while writing: its staging directory, with nobody holding its lock.
        parent.create_dir(".out.partial-dead").unwrap();
        parent
            .write(".out.partial-dead/features.jsonl", b"{}")
            .unwrap();
        parent.create_dir(".other.partial-dead").unwrap();
        let live = OutputDir::create(&root.path().join("out"), "live").unwrap();
        let second = OutputDir::create(&root.path().join("out"), "second").unwrap();
        let names = |prefix: &str| {
            let mut names: Vec<String> = std::fs::read_dir(root.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n.starts_with(prefix))
                .collect();
            names.sort();
            names
        };
        assert_eq!(
            names(".out."),
            [".out.partial-live", ".out.partial-second"],
            "the dead one is gone, the live ones stay"
        );
        assert_eq!(
            names(".other."),
            [".other.partial-dead"],
            "other targets are not touched"
        );
        let mut record = sample_record("live");
        live.finish(&mut record).unwrap();
        drop(second);
        // The second run died (dropped without finishing): the next run into a new target
        // beside it leaves it, the next run into `out`'s name removes it.
        OutputDir::create(&root.path().join("out2"), "x").unwrap();
        assert_eq!(names(".out."), [".out.partial-second"]);
        parent.remove_dir_all("out").unwrap();
        drop(OutputDir::create(&root.path().join("out"), "third").unwrap());
        assert!(!names(".out.").contains(&".out.partial-second".to_owned()));
    }

    /// Issue 11 (mend): a run that loses the race for its output directory removes its own
    /// staging on the way out instead of leaving it for the next run into that directory.
    #[test]
    fn a_run_that_loses_the_race_for_its_directory_removes_its_staging() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("out");
        let first = OutputDir::create(&target, "first").unwrap();
        let second = OutputDir::create(&target, "second").unwrap();
        let mut record = sample_record("first");
        first.finish(&mut record).unwrap();
        let mut record = sample_record("second");
        let lost = second.finish(&mut record).unwrap_err();
        assert!(
            matches!(&lost, Error::OutputExists { path } if *path == target),
            "{lost:?}"
        );
        let left: Vec<String> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, ["out"], "only the winner's directory is left");
        let run: serde_json::Value =
            serde_json::from_slice(&std::fs::read(target.join(RUN_FILE)).unwrap()).unwrap();
        assert_eq!(run["run_id"], "first");
    }

    #[test]
    fn lines_are_json_with_run_id_and_content_digests_leave_it_out() {
        let root = tempfile::tempdir().unwrap();
        let first = write("run-1", &root.path().join("one"));
        let second = write("run-2", &root.path().join("two"));
        let read = |dir: &str, file: &str| {
            std::fs::read_to_string(root.path().join(dir).join(file)).unwrap()
        };
        assert_eq!(
            read("one", FEATURES_FILE),
            "{\"id\":\"a\",\"run_id\":\"run-1\",\"features\":{\"n\":3}}\n"
        );
        assert_eq!(
            read("one", REJECTIONS_FILE),
            "{\"id\":\"b\",\"run_id\":\"run-1\",\"reason\":\"too \\\"short\\\"\"}\n"
        );
        let errors: Vec<serde_json::Value> = read("one", ERRORS_FILE)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            errors[0],
            serde_json::json!({"id": "c", "line": 3, "run_id": "run-1", "kind": "guest_error",
                "error": "no", "retryable": true})
        );
        assert_eq!(errors[1]["id"], serde_json::Value::Null);
        for name in [FEATURES_FILE, REJECTIONS_FILE, ERRORS_FILE] {
            let (a, b) = (&first.outputs[name], &second.outputs[name]);
            assert_ne!(a.sha256, b.sha256, "{name}: the files name their runs");
            assert_eq!(a.content_sha256, b.content_sha256, "{name}");
            // The content digest is the digest of the file with the run_id members removed.
            let stripped = read("one", name).replace(",\"run_id\":\"run-1\"", "");
            assert_eq!(
                a.content_sha256,
                crate::digest::hex(&Sha256::digest(stripped))
            );
        }
    }
}
