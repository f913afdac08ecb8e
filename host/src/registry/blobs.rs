//! Component bytes, named by their digest: [`BlobStore`], the raw operations a backend gives
//! (put bytes under a digest, get the bytes of a digest); [`DirBlobStore`], the local directory
//! `blobs/sha256/<hex>` under a registry root, the first backend; and [`Blobs`], what the
//! registry uses over any of them, which hashes every blob it reads again.
//!
//! The re-hash lives in [`Blobs`], once, above every backend: a blob whose bytes no longer match
//! its name is refused ([`Error::CorruptBlob`]) wherever it is kept, and putting the right bytes
//! again repairs it.
//!
//! [`DirBlobStore`] writes a blob under a hidden temporary name, fsyncs it, renames it to its
//! digest and fsyncs the directory, so a blob name is only ever visible with all of its bytes.
//! All access goes through one cap-std [`Dir`] rooted at `blobs/sha256`, and names are checked
//! to be 64 lowercase hex digits before use.
//!
//! Bytes that arrive in parts under a digest they claim (an upload) go through a
//! [`BlobUpload`]: written to a temporary file under the root's [`UPLOADS_DIR`], hashed and
//! counted as they are written, refused past their cap or when they hash to another digest
//! (the file removed, nothing stored), and only then handed to the store.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use cap_std::fs::Dir;
use sha2::{Digest as _, Sha256};

use super::types::BlobPut;
use crate::digest::{hex, hex_of, sha256_digest};
use crate::error::Error;
use crate::fsutil::{remove_stale_temps, sync_dir};

/// The local store's directory under the registry root.
pub const BLOBS_DIR: &str = "blobs/sha256";

/// Where uploads are staged under the registry root, as `.tmp-*` files (an interrupted one is
/// removed by the next upload once it is [`STALE_TEMP_AGE`](crate::fsutil::STALE_TEMP_AGE)
/// old).
pub const UPLOADS_DIR: &str = "uploads";

/// Where component bytes are kept: raw operations, no checks of the bytes (that is
/// [`Blobs`]'s). Synchronous like [`Store`](super::store::Store), for the same reasons.
pub trait BlobStore: Send + Sync + std::fmt::Debug {
    /// Where the blob of `digest` is, or would be, for messages: a path, a URL.
    fn location(&self, digest: &str) -> String;

    /// The bytes kept under `digest` as they are, or `None` when there are none.
    /// [`Error::InvalidDigest`] when `digest` is not `sha256:<64 lowercase hex>`.
    fn get(&self, digest: &str) -> Result<Option<Vec<u8>>, Error>;

    /// Keeps `bytes` under `digest`, replacing what was there, so that a reader sees either
    /// the old bytes or all of the new ones. The caller has checked that they hash to it.
    fn put(&self, digest: &str, bytes: &[u8]) -> Result<(), Error>;

    /// Whether bytes are kept under `digest` (whatever they are). By default, a read.
    fn contains(&self, digest: &str) -> Result<bool, Error> {
        Ok(self.get(digest)?.is_some())
    }

    /// Keeps the bytes of file `name` in `staged` (written and fsynced by an upload, checked
    /// to hash to `digest`) under `digest`, as [`BlobStore::put`] does; the file may be moved
    /// away. By default, its bytes are read and put.
    fn put_staged(&self, digest: &str, staged: &Dir, name: &str) -> Result<(), Error> {
        self.put(digest, &read_staged(staged, name)?)
    }
}

/// The bytes of staged file `name`.
fn read_staged(staged: &Dir, name: &str) -> Result<Vec<u8>, Error> {
    let mut bytes = Vec::new();
    staged
        .open(name)
        .and_then(|mut file| file.read_to_end(&mut bytes))
        .map_err(|e| Error::io(name, e))?;
    Ok(bytes)
}

/// Component bytes over any [`BlobStore`], checked: every read hashes the bytes again.
#[derive(Debug)]
pub struct Blobs {
    store: Box<dyn BlobStore>,
}

impl Blobs {
    /// Checked access to `store`.
    pub fn new(store: Box<dyn BlobStore>) -> Blobs {
        Blobs { store }
    }

    /// The local directory store under registry root `root` ([`DirBlobStore::open`]).
    pub fn open_dir(root: &Path) -> Result<Blobs, Error> {
        Ok(Blobs::new(Box::new(DirBlobStore::open(root)?)))
    }

    /// Where the blob of `digest` is, or would be, for messages.
    pub fn location(&self, digest: &str) -> String {
        self.store.location(digest)
    }

    /// Stores `bytes` and returns their digest. Storing bytes that are already there is a
    /// no-op, unless the stored copy no longer matches its name: then it is replaced.
    pub fn put(&self, bytes: &[u8]) -> Result<String, Error> {
        let digest = sha256_digest(bytes);
        match self.get(&digest) {
            Ok(_) => return Ok(digest),
            Err(Error::CorruptBlob { .. }) => {
                tracing::warn!(%digest, "replacing a stored blob that no longer matched its name");
            }
            Err(Error::BlobNotFound { .. }) => {}
            Err(other) => return Err(other),
        }
        self.store.put(&digest, bytes)?;
        tracing::debug!(%digest, bytes = bytes.len(), "blob stored");
        Ok(digest)
    }

    /// Whether the store has a blob under `digest` (its bytes are not read or checked:
    /// [`Blobs::get`] does that). [`Error::InvalidDigest`] when `digest` is not one.
    pub fn contains(&self, digest: &str) -> Result<bool, Error> {
        if hex_of(digest).is_none() {
            return Err(Error::InvalidDigest {
                digest: digest.to_owned(),
            });
        }
        self.store.contains(digest)
    }

    /// Reads the blob of `digest`, checking that its bytes still hash to it.
    pub fn get(&self, digest: &str) -> Result<Vec<u8>, Error> {
        if hex_of(digest).is_none() {
            return Err(Error::InvalidDigest {
                digest: digest.to_owned(),
            });
        }
        let Some(bytes) = self.store.get(digest)? else {
            return Err(Error::BlobNotFound {
                digest: digest.to_owned(),
                location: self.store.location(digest),
            });
        };
        let actual = sha256_digest(&bytes);
        if actual != digest {
            return Err(Error::CorruptBlob {
                location: self.store.location(digest),
                expected: digest.to_owned(),
                actual,
            });
        }
        Ok(bytes)
    }
}

/// Blobs as files `blobs/sha256/<hex>` under a registry root.
#[derive(Debug)]
pub struct DirBlobStore {
    path: PathBuf,
    dir: Dir,
}

impl DirBlobStore {
    /// Opens (creating if needed) the store under registry root `root`, removing temporary
    /// files older than [`STALE_TEMP_AGE`](crate::fsutil::STALE_TEMP_AGE) that interrupted
    /// writes left.
    pub fn open(root: &Path) -> Result<DirBlobStore, Error> {
        let path = root.join(BLOBS_DIR);
        std::fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        let dir = Dir::open_ambient_dir(&path, cap_std::ambient_authority())
            .map_err(|e| Error::io(&path, e))?;
        remove_stale_temps(&dir, "blob");
        Ok(DirBlobStore { path, dir })
    }

    /// The file name of `digest`'s blob: its 64 hex digits, checked, so no digest names a path
    /// outside the directory.
    fn name_of(digest: &str) -> Result<&str, Error> {
        hex_of(digest).ok_or_else(|| Error::InvalidDigest {
            digest: digest.to_owned(),
        })
    }

    /// Where the blob of `digest` lives (whether or not it exists).
    pub fn path_of(&self, digest: &str) -> PathBuf {
        match hex_of(digest) {
            Some(hex) => self.path.join(hex),
            None => self.path.join(digest),
        }
    }
}

impl BlobStore for DirBlobStore {
    fn location(&self, digest: &str) -> String {
        self.path_of(digest).display().to_string()
    }

    fn contains(&self, digest: &str) -> Result<bool, Error> {
        let hex = DirBlobStore::name_of(digest)?;
        match self.dir.metadata(hex) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(self.path.join(hex), e)),
        }
    }

    fn put_staged(&self, digest: &str, staged: &Dir, name: &str) -> Result<(), Error> {
        let hex = DirBlobStore::name_of(digest)?;
        // The staged file is complete and fsynced: renaming it into place is the whole put.
        // Another file system (a root whose uploads are mounted elsewhere) copies instead.
        match staged.rename(name, &self.dir, hex) {
            Ok(()) => sync_dir(&self.dir).map_err(|e| Error::io(&self.path, e)),
            Err(_) => self.put(digest, &read_staged(staged, name)?),
        }
    }

    fn get(&self, digest: &str) -> Result<Option<Vec<u8>>, Error> {
        let hex = DirBlobStore::name_of(digest)?;
        let path = self.path.join(hex);
        let mut file = match self.dir.open(hex) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| Error::io(&path, e))?;
        Ok(Some(bytes))
    }

    fn put(&self, digest: &str, bytes: &[u8]) -> Result<(), Error> {
        let hex = DirBlobStore::name_of(digest)?;
        let temp = format!(".tmp-{hex}-{}", uuid::Uuid::now_v7().simple());
        let write = || -> std::io::Result<()> {
            let mut file = self.dir.create(&temp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            self.dir.rename(&temp, &self.dir, hex)?;
            sync_dir(&self.dir)
        };
        if let Err(e) = write() {
            let _ = self.dir.remove_file(&temp);
            return Err(Error::io(self.path.join(&temp), e));
        }
        Ok(())
    }
}

/// Bytes arriving in parts under the digest they claim: staged in a temporary file, hashed
/// and counted as written, and stored by [`BlobUpload::finish`] only if they hash to it.
/// Dropped before `finish` (or when a part fails), the file is removed and nothing stored.
/// Made by [`Registry::begin_upload`](super::Registry::begin_upload).
#[derive(Debug)]
pub struct BlobUpload<'a> {
    blobs: &'a Blobs,
    staging: Dir,
    staging_path: PathBuf,
    name: String,
    file: Option<cap_std::fs::File>,
    hasher: Sha256,
    size: u64,
    digest: String,
    max_bytes: u64,
}

impl<'a> BlobUpload<'a> {
    /// Stages an upload of the bytes of `digest`, at most `max_bytes`, in directory `staging`
    /// (created if needed; stale temporary files there are removed).
    pub(crate) fn begin(
        blobs: &'a Blobs,
        staging: &Path,
        digest: &str,
        max_bytes: u64,
    ) -> Result<BlobUpload<'a>, Error> {
        let Some(hex_digits) = hex_of(digest) else {
            return Err(Error::InvalidDigest {
                digest: digest.to_owned(),
            });
        };
        std::fs::create_dir_all(staging).map_err(|e| Error::io(staging, e))?;
        let dir = Dir::open_ambient_dir(staging, cap_std::ambient_authority())
            .map_err(|e| Error::io(staging, e))?;
        remove_stale_temps(&dir, "upload");
        let name = format!(".tmp-{hex_digits}-{}", uuid::Uuid::now_v7().simple());
        let file = dir
            .create(&name)
            .map_err(|e| Error::io(staging.join(&name), e))?;
        Ok(BlobUpload {
            blobs,
            staging: dir,
            staging_path: staging.to_owned(),
            name,
            file: Some(file),
            hasher: Sha256::new(),
            size: 0,
            digest: digest.to_owned(),
            max_bytes,
        })
    }

    /// Writes the next part. Past the cap, [`Error::TooLarge`] (and the upload is over: drop
    /// it).
    pub fn write(&mut self, part: &[u8]) -> Result<(), Error> {
        let size = self.size.saturating_add(part.len() as u64);
        if size > self.max_bytes {
            return Err(Error::TooLarge {
                what: format!(
                    "the upload of {} (more than {} bytes)",
                    self.digest, self.size
                ),
                limit: self.max_bytes,
            });
        }
        let file = self.file.as_mut().expect("open until finished");
        file.write_all(part)
            .map_err(|e| Error::io(self.staging_path.join(&self.name), e))?;
        self.hasher.update(part);
        self.size = size;
        Ok(())
    }

    /// The bytes received so far.
    pub fn received(&self) -> u64 {
        self.size
    }

    /// [`Error::UploadFailed`] for a stream of parts that broke off for `reason`.
    pub fn failed(&self, reason: impl Into<String>) -> Error {
        Error::UploadFailed {
            digest: self.digest.clone(),
            received: self.size,
            reason: reason.into(),
        }
    }

    /// Checks the bytes against the digest and stores them: [`Error::DigestMismatch`] when
    /// they hash to another. Bytes the store already has (checked) are not stored again.
    pub fn finish(mut self) -> Result<BlobPut, Error> {
        let actual = format!(
            "sha256:{}",
            hex(&std::mem::take(&mut self.hasher).finalize())
        );
        if actual != self.digest {
            return Err(Error::DigestMismatch {
                expected: self.digest.clone(),
                actual,
            });
        }
        let file = self.file.take().expect("open until finished");
        file.sync_all()
            .map_err(|e| Error::io(self.staging_path.join(&self.name), e))?;
        drop(file);
        let created = match self.blobs.get(&self.digest) {
            Ok(_) => false,
            Err(Error::BlobNotFound { .. }) => true,
            Err(Error::CorruptBlob { .. }) => {
                tracing::warn!(digest = %self.digest,
                    "replacing a stored blob that no longer matched its name");
                true
            }
            Err(other) => return Err(other),
        };
        if created {
            self.blobs
                .store
                .put_staged(&self.digest, &self.staging, &self.name)?;
            tracing::debug!(digest = %self.digest, bytes = self.size, "uploaded blob stored");
        }
        Ok(BlobPut {
            digest: self.digest.clone(),
            size: self.size,
            created,
        })
    }
}

impl Drop for BlobUpload<'_> {
    fn drop(&mut self) {
        self.file = None;
        // Gone already when the store moved it into place.
        match self.staging.remove_file(&self.name) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::warn!(%error, file = %self.staging_path.join(&self.name).display(),
                "an upload's temporary file could not be removed; a later upload removes it")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::STALE_TEMP_AGE;

    /// The blob backend under test, raw, at `root`; [`Blobs`] over it is what the registry
    /// uses. Another backend's tests open theirs here.
    fn open_raw(root: &Path) -> DirBlobStore {
        DirBlobStore::open(root).unwrap()
    }

    fn open(root: &Path) -> Blobs {
        Blobs::new(Box::new(open_raw(root)))
    }

    #[test]
    fn put_then_get_round_trips_and_is_idempotent() {
        let root = tempfile::tempdir().unwrap();
        let store = open(root.path());
        let digest = store.put(b"component bytes").unwrap();
        assert_eq!(digest, sha256_digest(b"component bytes"));
        assert_eq!(store.put(b"component bytes").unwrap(), digest);
        assert_eq!(store.get(&digest).unwrap(), b"component bytes");
        let names: Vec<String> = std::fs::read_dir(root.path().join(BLOBS_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            names,
            [hex_of(&digest).unwrap()],
            "no temporary file is left"
        );
    }

    #[test]
    fn a_tampered_blob_is_refused_naming_where_it_is() {
        let root = tempfile::tempdir().unwrap();
        let store = open(root.path());
        let digest = store.put(b"original").unwrap();
        // Alter the bytes under the checks, through the raw backend.
        open_raw(root.path()).put(&digest, b"tampered").unwrap();
        let error = store.get(&digest).unwrap_err();
        let location = store.location(&digest);
        assert!(
            matches!(&error, Error::CorruptBlob { location: l, expected, actual }
                if *l == location && *expected == digest && *actual == sha256_digest(b"tampered")),
            "{error:?}"
        );
        assert!(error.to_string().contains(&location));
        // Publishing the right bytes again repairs it.
        store.put(b"original").unwrap();
        assert_eq!(store.get(&digest).unwrap(), b"original");
    }

    #[test]
    fn a_blob_altered_on_disk_is_refused_naming_its_path() {
        let root = tempfile::tempdir().unwrap();
        let store = open(root.path());
        let digest = store.put(b"original").unwrap();
        let path = open_raw(root.path()).path_of(&digest);
        assert_eq!(
            path,
            root.path().join(BLOBS_DIR).join(hex_of(&digest).unwrap())
        );
        std::fs::write(&path, b"tampered").unwrap();
        let error = store.get(&digest).unwrap_err();
        assert!(
            matches!(&error, Error::CorruptBlob { location, .. }
                if *location == path.display().to_string()),
            "{error:?}"
        );
        assert!(error.to_string().contains(&path.display().to_string()));
    }

    #[test]
    fn stale_temporary_files_are_removed_and_fresh_ones_kept() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(BLOBS_DIR);
        std::fs::create_dir_all(&dir).unwrap();
        let stale = dir.join(".tmp-crashed");
        let fresh = dir.join(".tmp-in-progress");
        std::fs::write(&stale, b"half").unwrap();
        std::fs::write(&fresh, b"half").unwrap();
        let long_ago = std::time::SystemTime::now() - STALE_TEMP_AGE * 2;
        std::fs::File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        open(root.path());
        assert!(!stale.exists());
        assert!(fresh.exists(), "a write in progress is left alone");
    }

    #[test]
    fn missing_and_malformed_digests_are_told_apart() {
        let root = tempfile::tempdir().unwrap();
        let store = open(root.path());
        let missing = sha256_digest(b"never stored");
        assert!(matches!(
            store.get(&missing),
            Err(Error::BlobNotFound { location, .. }) if location == store.location(&missing)
        ));
        for bad in ["sha256:../../etc/passwd", "md5:abc", "sha256:ABCDEF", ""] {
            assert!(
                matches!(store.get(bad), Err(Error::InvalidDigest { .. })),
                "{bad}"
            );
            // The raw backend checks names too, whoever calls it.
            let raw = open_raw(root.path());
            assert!(
                matches!(raw.get(bad), Err(Error::InvalidDigest { .. })),
                "{bad}"
            );
            assert!(
                matches!(raw.put(bad, b"x"), Err(Error::InvalidDigest { .. })),
                "{bad}"
            );
        }
    }
}
