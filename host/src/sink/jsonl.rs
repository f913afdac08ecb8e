//! `features.jsonl`: one line per row, `{"id", "run_id", "features": {column: value, …}}`,
//! columns in contract order, hashed while written.

use std::path::{Path, PathBuf};

use super::{FeatureSink, Written};
use crate::contract::Contract;
use crate::error::Error;
use crate::output::{FEATURES_FILE, HashedFile, id_member};

/// The JSONL feature file of one run directory.
#[derive(Debug)]
pub struct JsonlFile {
    file: HashedFile,
    path: PathBuf,
}

impl JsonlFile {
    /// Writes into `file`, created at `path` (named in errors).
    pub(crate) fn new(file: HashedFile, path: PathBuf) -> JsonlFile {
        JsonlFile { file, path }
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
    fn write(
        &mut self,
        record_id: &str,
        run_id: &str,
        contract: &Contract,
        rows: &[Vec<serde_json::Value>],
    ) -> Result<(), Error> {
        for row in rows {
            let (head, rest) = line_parts(record_id, contract, row);
            self.file
                .write_line(&head, run_id, &rest)
                .map_err(|e| Error::io(&self.path, e))?;
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<Written, Error> {
        let file = self.file.finish().map_err(|e| Error::io(&self.path, e))?;
        Ok(Written::File {
            name: FEATURES_FILE,
            file,
        })
    }
}

/// A row's line in two parts, around where the `run_id` member goes: `{"id":<id>` and
/// `,"features":{…}}\n`.
pub(crate) fn line_parts(
    record_id: &str,
    contract: &Contract,
    row: &[serde_json::Value],
) -> (Vec<u8>, Vec<u8>) {
    let mut rest = Vec::with_capacity(128);
    rest.extend_from_slice(b",\"features\":{");
    for (index, (column, value)) in contract.columns.iter().zip(row).enumerate() {
        if index > 0 {
            rest.push(b',');
        }
        serde_json::to_writer(&mut rest, &column.name).expect("strings serialize");
        rest.push(b':');
        serde_json::to_writer(&mut rest, value).expect("JSON values serialize");
    }
    rest.extend_from_slice(b"}}\n");
    (id_member(record_id), rest)
}
