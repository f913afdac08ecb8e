//! `features.jsonl`: one line per row, `{"id", "run_id", "features": {column: value, …}}`,
//! columns in contract order, hashed while written.

use std::path::{Path, PathBuf};

use super::{FeatureSink, Written};
use crate::contract::CheckedRows;
use crate::error::Error;
use crate::output::{FEATURES_FILE, HashedFile, id_member_into};

/// The JSONL feature file of one run directory.
#[derive(Debug)]
pub struct JsonlFile {
    file: HashedFile,
    path: PathBuf,
    /// The current record's `{"id":…`, rendered once for all its rows.
    head: Vec<u8>,
}

impl JsonlFile {
    /// Writes into `file`, created at `path` (named in errors).
    pub(crate) fn new(file: HashedFile, path: PathBuf) -> JsonlFile {
        JsonlFile {
            file,
            path,
            head: Vec::new(),
        }
    }

    /// Creates `path` (which must not exist yet) and writes the rows there, outside any run
    /// directory: for tools and benchmarks. A run's own file is created in its staging
    /// directory by the run.
    pub fn create(path: &Path) -> Result<JsonlFile, Error> {
        let file = std::fs::File::create_new(path).map_err(|e| Error::io(path, e))?;
        let file = HashedFile::new(cap_std::fs::File::from_std(file));
        Ok(JsonlFile::new(file, path.to_owned()))
    }
}

impl FeatureSink for JsonlFile {
    fn write(&mut self, record_id: &str, run_id: &str, rows: &CheckedRows) -> Result<(), Error> {
        id_member_into(record_id, &mut self.head);
        for index in 0..rows.len() {
            self.file
                .write_line(&self.head, run_id, rows.line_rest(index))
                .map_err(|e| Error::io(&self.path, e))?;
        }
        Ok(())
    }

    fn needs_values(&self) -> bool {
        false
    }

    fn finish(self: Box<Self>) -> Result<Written, Error> {
        let file = self.file.finish().map_err(|e| Error::io(&self.path, e))?;
        Ok(Written::File {
            name: FEATURES_FILE,
            file,
        })
    }
}
