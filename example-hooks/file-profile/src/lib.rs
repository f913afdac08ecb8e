//! `file_profile`: one row per file of a record — name, size, SHA-256 and line count.
//!
//! Shows a cardinality-`many` hook that reads the record's files through the read-only
//! files-dir the host mounts in the sandbox ([`Record::files`], [`Record::read_file`]). A record
//! without files passes with zero rows. Run it on the samples:
//!
//! ```sh
//! cargo build --release --target wasm32-wasip2 --manifest-path example-hooks/Cargo.toml --workspace
//! host run example-hooks/target/wasm32-wasip2/release/file_profile.wasm \
//!     --input example-hooks/samples/files.jsonl --files example-hooks/samples/files --out /tmp/out
//! ```

use hookhost_sdk::{Features, Hook, NoConfig, Record, Refusal, export_hook};
use sha2::{Digest, Sha256};

/// A profile of one file.
#[derive(Debug, PartialEq, Features)]
#[features(name = "file_profile", cardinality = "many")]
pub struct FileProfile {
    /// The file's name in the record's files.
    name: String,
    /// Size in bytes.
    bytes: i64,
    /// SHA-256 of the content, lowercase hex.
    sha256: String,
    /// Number of lines: newline bytes, plus one if a non-empty file does not end in a newline.
    lines: i64,
}

/// The hook: stateless, so it takes no config.
pub struct FileProfileHook;

impl Hook for FileProfileHook {
    type Row = FileProfile;
    type Config = NoConfig;

    fn new(_config: NoConfig) -> Result<Self, String> {
        Ok(FileProfileHook)
    }

    fn process(&self, record: &Record) -> Result<Vec<FileProfile>, Refusal> {
        let mut rows = Vec::new();
        // `files()` is sorted by name, so the rows are too.
        for file in record.files()? {
            let content = record.read_file(&file.name)?;
            rows.push(profile(file.name, &content));
        }
        Ok(rows)
    }
}

fn profile(name: String, content: &[u8]) -> FileProfile {
    let newlines = content.iter().filter(|&&b| b == b'\n').count();
    let unterminated = content.last().is_some_and(|&b| b != b'\n');
    FileProfile {
        name,
        bytes: content.len() as i64,
        sha256: Sha256::digest(content)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        lines: (newlines + usize::from(unterminated)) as i64,
    }
}

export_hook!(FileProfileHook);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_content() {
        let empty = profile("e".into(), b"");
        assert_eq!((empty.bytes, empty.lines), (0, 0));
        assert_eq!(
            empty.sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(profile("a".into(), b"x\ny\n").lines, 2);
        assert_eq!(profile("a".into(), b"x\ny").lines, 2);
        assert_eq!(profile("a".into(), b"\n\n").lines, 2);
    }

    #[test]
    fn a_record_without_files_has_no_rows() {
        assert_eq!(FileProfileHook.process(&Record::new("r", "{}")), Ok(vec![]));
    }
}
