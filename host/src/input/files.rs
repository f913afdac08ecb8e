//! Records' files: the regular files of record `<id>` under `<files root>/<id>/`, found and
//! checked through the root's capability handle, so no id can reach outside it.

use std::io;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// Where records' files live: the regular files of record `<id>` are under `<root>/<id>/`.
#[derive(Debug)]
pub struct FilesRoot {
    path: PathBuf,
    dir: cap_std::fs::Dir,
}

impl FilesRoot {
    /// Opens the files directory.
    pub fn open(path: &Path) -> Result<FilesRoot, Error> {
        let dir = cap_std::fs::Dir::open_ambient_dir(path, cap_std::ambient_authority())
            .map_err(|e| Error::io(path, e))?;
        Ok(FilesRoot {
            path: path.to_owned(),
            dir,
        })
    }

    /// The host directory of record `id`'s files, if it has a real directory (not a symlink)
    /// under the root. Looked up through the root's capability handle, so no id can reach
    /// outside it. A directory holding anything but regular files, directories and symlinks
    /// (a FIFO, a socket, a device: opening one could block the host outside any deadline),
    /// or more than [`MAX_FILES_PER_RECORD`] entries, is refused with the reason.
    pub(crate) fn record_dir(&self, id: &str) -> Result<Option<PathBuf>, String> {
        let Ok(meta) = self.dir.symlink_metadata(id) else {
            return Ok(None);
        };
        if !meta.is_dir() {
            return Ok(None);
        }
        let unreadable = |e: io::Error| format!("the files of record `{id}` cannot be read: {e}");
        let dir = self.dir.open_dir(id).map_err(unreadable)?;
        let mut entries = 0;
        check_files(&dir, id, &mut entries).map_err(|e| match e {
            FilesProblem::Io(e) => unreadable(e),
            FilesProblem::Refused(reason) => reason,
        })?;
        Ok(Some(self.path.join(id)))
    }
}

/// The most entries (files and directories, at any depth) one record's files directory may
/// hold.
pub const MAX_FILES_PER_RECORD: usize = 100_000;

enum FilesProblem {
    Io(io::Error),
    Refused(String),
}

impl From<io::Error> for FilesProblem {
    fn from(e: io::Error) -> Self {
        FilesProblem::Io(e)
    }
}

/// Walks a record's files directory (symlinks are not followed), refusing what the guest
/// must not be able to open.
fn check_files(
    dir: &cap_std::fs::Dir,
    path: &str,
    entries: &mut usize,
) -> Result<(), FilesProblem> {
    for entry in dir.entries()? {
        let entry = entry?;
        *entries += 1;
        if *entries > MAX_FILES_PER_RECORD {
            return Err(FilesProblem::Refused(format!(
                "the files directory `{path}` holds more than {MAX_FILES_PER_RECORD} entries"
            )));
        }
        let name = entry.file_name();
        let inner = format!("{path}/{}", name.to_string_lossy());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            check_files(&entry.open_dir()?, &inner, entries)?;
        } else if !(kind.is_file() || kind.is_symlink()) {
            return Err(FilesProblem::Refused(format!(
                "`{inner}` among the record's files is not a regular file or directory \
                 (a FIFO, socket or device could block the host)"
            )));
        }
    }
    Ok(())
}
