//! The staging step every output directory shares: written into a hidden, locked directory
//! beside its target, renamed into place in one step, so a reader that sees the target sees
//! all of it and a crash leaves only the hidden staging directory behind.

use std::io::Write;
use std::path::{Path, PathBuf};

use cap_std::fs::Dir;

use crate::error::Error;
use crate::fsutil::sync_dir;

/// A new staging directory beside an output target, locked for as long as it is written,
/// and made visible at the target in one step by [`Staging::commit`].
#[derive(Debug)]
pub(crate) struct Staging {
    target: PathBuf,
    parent: Dir,
    final_name: String,
    staging_name: String,
    /// The staging directory's path, for error messages and nested outputs.
    pub path: PathBuf,
    /// The staging directory.
    pub dir: Dir,
    /// Held while the output is written: it tells a live staging directory from a dead one.
    _lock: std::fs::File,
}

impl Staging {
    /// Checks `target` (a plain UTF-8 name; must not exist, or be empty), creates its missing
    /// parents, removes killed runs' staging directories beside it, and creates and locks
    /// `.<name>.partial-<id>`.
    pub(crate) fn create(target: &Path, id: &str) -> Result<Staging, Error> {
        let final_name = target
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| *n != "..")
            .ok_or_else(|| {
                let e = std::io::Error::other("the output directory needs a plain UTF-8 name");
                Error::io(target, e)
            })?
            .to_owned();
        let parent_path = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent_path).map_err(|e| Error::io(&parent_path, e))?;
        let parent = Dir::open_ambient_dir(&parent_path, cap_std::ambient_authority())
            .map_err(|e| Error::io(&parent_path, e))?;
        let in_the_way = match parent.read_dir(&final_name) {
            Ok(mut entries) => entries.next().is_some(),
            Err(_) => parent.symlink_metadata(&final_name).is_ok(),
        };
        if in_the_way {
            return Err(Error::OutputExists {
                path: target.to_owned(),
            });
        }
        remove_dead_staging(&parent, &final_name);
        let staging_name = format!(".{final_name}.partial-{id}");
        let io = |e| Error::io(parent_path.join(&staging_name), e);
        parent.create_dir(&staging_name).map_err(io)?;
        let dir = parent.open_dir(&staging_name).map_err(io)?;
        let lock = lock_staging(&dir).map_err(io)?;
        Ok(Staging {
            target: target.to_owned(),
            path: parent_path.join(&staging_name),
            parent,
            final_name,
            staging_name,
            dir,
            _lock: lock,
        })
    }

    /// The directory this output becomes.
    pub(crate) fn target(&self) -> &Path {
        &self.target
    }

    /// Writes `last` as file `name` (the record of what the directory holds, so it goes in
    /// last), fsyncs it and the staging directory, renames the directory to its target in one
    /// step and fsyncs the parent. Returns the target.
    pub(crate) fn commit(self, name: &str, last: &[u8]) -> Result<PathBuf, Error> {
        let io = |name: &str| {
            let path = self.path.join(name);
            move |e| Error::io(path, e)
        };
        let mut file = self.dir.create(name).map_err(io(name))?;
        file.write_all(last).map_err(io(name))?;
        file.sync_all().map_err(io(name))?;
        sync_dir(&self.dir).map_err(io("."))?;
        self.parent
            .rename(&self.staging_name, &self.parent, &self.final_name)
            .map_err(|e| {
                if self.parent.read_dir(&self.final_name).is_ok() {
                    // Another run published there first. Its output stands; this one's staging
                    // is removed now rather than left for the next run into the directory.
                    if let Err(e) = self.parent.remove_dir_all(&self.staging_name) {
                        tracing::warn!(dir = %self.path.display(),
                            "could not remove the staging of an output that lost its race: {e}");
                    }
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
}

/// Locks a staging directory for as long as the returned handle lives (an advisory lock on
/// the directory itself, released by the kernel when the process dies, however it dies).
pub(crate) fn lock_staging(staging: &Dir) -> std::io::Result<std::fs::File> {
    let handle = staging.open(".")?.into_std();
    handle.try_lock().map_err(|e| match e {
        std::fs::TryLockError::Error(e) => e,
        std::fs::TryLockError::WouldBlock => std::io::Error::other("locked by another run"),
    })?;
    Ok(handle)
}

/// Removes the staging directories (`.<name>.partial-*`) that runs into `name` left behind when
/// they were killed: those whose lock nobody holds. A live run's is left alone. Best effort:
/// what cannot be removed stays, and is tried again next time.
pub(crate) fn remove_dead_staging(parent: &Dir, name: &str) {
    let prefix = format!(".{name}.partial-");
    let Ok(entries) = parent.entries() else {
        return;
    };
    for entry in entries.flatten() {
        let entry_name = entry.file_name();
        let Some(entry_name) = entry_name.to_str() else {
            continue;
        };
        if !entry_name.starts_with(&prefix) {
            continue;
        }
        let Ok(dir) = parent.open_dir(entry_name) else {
            continue;
        };
        // Holding the lock proves no live run holds it; it is dropped with the handle.
        if lock_staging(&dir).is_ok() {
            match parent.remove_dir_all(entry_name) {
                Ok(()) => tracing::info!(dir = entry_name, "removed a killed run's staging"),
                Err(e) => tracing::warn!(dir = entry_name, "could not remove: {e}"),
            }
        }
    }
}
