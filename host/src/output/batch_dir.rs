//! A batch's output directory: one run directory per hook, `passed.jsonl` and `batch.json`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::Staging;
use crate::error::Error;

/// The ids that passed every hook of a batch, one `{"id": …}` per line, in input order.
pub const PASSED_FILE: &str = "passed.jsonl";
/// The batch's own record, written last into a batch's output directory.
pub const BATCH_FILE: &str = "batch.json";

/// A batch's output directory being written: staged beside its target as
/// `.<name>.partial-<batch_id>` (each hook's run directory inside it is staged in turn), and
/// renamed into place with `batch.json` in it, so it is visible only when complete.
#[derive(Debug)]
pub struct BatchDir {
    staging: Staging,
    passed: std::io::BufWriter<cap_std::fs::File>,
}

impl BatchDir {
    /// Starts writing batch `batch_id`'s directory `target`, which must not exist or be empty.
    pub fn create(target: &Path, batch_id: &str) -> Result<BatchDir, Error> {
        let staging = Staging::create(target, batch_id)?;
        let passed = staging
            .dir
            .create(PASSED_FILE)
            .map_err(|e| Error::io(staging.path.join(PASSED_FILE), e))?;
        Ok(BatchDir {
            staging,
            passed: std::io::BufWriter::with_capacity(64 * 1024, passed),
        })
    }

    /// Where hook `name`'s run directory goes while the batch is staged.
    pub fn staged(&self, name: &str) -> PathBuf {
        self.staging.path.join(name)
    }

    /// The directory this batch becomes.
    pub fn target(&self) -> &Path {
        self.staging.target()
    }

    /// Appends ids that passed every hook to `passed.jsonl`.
    pub fn write_passed(&mut self, ids: &[String]) -> Result<(), Error> {
        for id in ids {
            let mut line = b"{\"id\":".to_vec();
            serde_json::to_writer(&mut line, id).expect("strings serialize");
            line.extend_from_slice(b"}\n");
            self.passed
                .write_all(&line)
                .map_err(|e| Error::io(self.staging.path.join(PASSED_FILE), e))?;
        }
        Ok(())
    }

    /// Writes `batch_json` as `batch.json` and makes the directory visible at its target.
    pub fn finish(self, batch_json: &[u8]) -> Result<PathBuf, Error> {
        self.passed
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|file| file.sync_all())
            .map_err(|e| Error::io(self.staging.path.join(PASSED_FILE), e))?;
        self.staging.commit(BATCH_FILE, batch_json)
    }
}
