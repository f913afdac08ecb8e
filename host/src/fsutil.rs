//! File-system helpers shared by every layer that writes files aside and renames them into
//! place (blobs, compiled code, output directories): absolute paths for records, the sweep of
//! stale temporary files, and directory fsyncs. The ground floor: it imports nothing of the
//! crate.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cap_std::fs::Dir;

/// How old a `.tmp-*` file must be before a sweep removes it. A writer that crashed mid-write
/// leaves one behind; one still being written is far younger.
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

/// `path` made absolute against the working directory (as given if that fails), for paths
/// that are recorded and read back later by another process.
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// Removes the `.tmp-*` files in `dir` older than [`STALE_TEMP_AGE`]: what interrupted
/// write-aside-and-rename steps left (blobs, compiled code). Best effort: a file that cannot
/// be read or removed is left for next time. `what` names them in the log.
pub fn remove_stale_temps(dir: &Dir, what: &str) {
    let Ok(entries) = dir.entries() else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str().filter(|n| n.starts_with(".tmp-")) else {
            continue;
        };
        let age = entry
            .metadata()
            .and_then(|m| m.modified())
            .map(|t| t.into_std().elapsed().unwrap_or_default());
        if age.is_ok_and(|age| age >= STALE_TEMP_AGE) && dir.remove_file(name).is_ok() {
            tracing::info!(file = name, "removed a stale temporary {what}");
        }
    }
}

/// Fsyncs a directory, so the names in it (a renamed file, a new entry) survive a crash.
/// cap-std's own handle may not allow `fsync`, so the directory is opened again for reading.
pub fn sync_dir(dir: &Dir) -> std::io::Result<()> {
    dir.open(".")?.sync_all()
}
