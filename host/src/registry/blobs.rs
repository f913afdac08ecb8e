//! The blob store: component bytes under `blobs/sha256/<hex>`, named by their digest.
//!
//! A blob is written under a hidden temporary name, fsynced, renamed to its digest and the
//! directory fsynced, so a blob name is only ever visible with all of its bytes. Every read
//! hashes the bytes again: a blob that no longer matches its name is refused, never run.
//! All access goes through one cap-std [`Dir`] rooted at `blobs/sha256`, and names are
//! checked to be 64 lowercase hex digits before use.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use cap_std::fs::Dir;

use crate::digest::{hex_of, sha256_digest};
use crate::error::Error;
use crate::fsutil::{remove_stale_temps, sync_dir};

/// The store's directory under the registry root.
pub const BLOBS_DIR: &str = "blobs/sha256";

/// Content-addressed component bytes.
#[derive(Debug)]
pub struct BlobStore {
    path: PathBuf,
    dir: Dir,
}

impl BlobStore {
    /// Opens (creating if needed) the store under `root`.
    pub fn open(root: &Path) -> Result<BlobStore, Error> {
        let path = root.join(BLOBS_DIR);
        std::fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        let dir = Dir::open_ambient_dir(&path, cap_std::ambient_authority())
            .map_err(|e| Error::io(&path, e))?;
        let store = BlobStore { path, dir };
        store.remove_stale_temps();
        Ok(store)
    }

    /// Removes temporary files older than [`STALE_TEMP_AGE`], left by interrupted writes.
    fn remove_stale_temps(&self) {
        remove_stale_temps(&self.dir, "blob");
    }

    /// Where the blob of `digest` lives (whether or not it exists).
    pub fn path_of(&self, digest: &str) -> PathBuf {
        match hex_of(digest) {
            Some(hex) => self.path.join(hex),
            None => self.path.join(digest),
        }
    }

    /// Stores `bytes` and returns their digest. Storing bytes that are already there is a
    /// no-op, unless the stored copy no longer matches its name: then it is replaced.
    pub fn put(&self, bytes: &[u8]) -> Result<String, Error> {
        let digest = sha256_digest(bytes);
        let hex = hex_of(&digest).expect("sha256_digest gives sha256:<hex>");
        match self.get(&digest) {
            Ok(_) => return Ok(digest),
            Err(Error::CorruptBlob { .. }) => {
                tracing::warn!(%digest, "replacing a stored blob that no longer matched its name");
            }
            Err(Error::BlobNotFound { .. }) => {}
            Err(other) => return Err(other),
        }
        let temp = format!(".tmp-{hex}-{}", uuid::Uuid::now_v7().simple());
        let io = |e| Error::io(self.path.join(&temp), e);
        let write = || -> std::io::Result<()> {
            let mut file = self.dir.create(&temp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            self.dir.rename(&temp, &self.dir, hex)?;
            sync_dir(&self.dir)
        };
        if let Err(e) = write() {
            let _ = self.dir.remove_file(&temp);
            return Err(io(e));
        }
        tracing::debug!(%digest, bytes = bytes.len(), "blob stored");
        Ok(digest)
    }

    /// Reads the blob of `digest`, checking that its bytes still hash to it.
    pub fn get(&self, digest: &str) -> Result<Vec<u8>, Error> {
        let hex = hex_of(digest).ok_or_else(|| Error::InvalidDigest {
            digest: digest.to_owned(),
        })?;
        let path = self.path.join(hex);
        let mut file = match self.dir.open(hex) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::BlobNotFound {
                    digest: digest.to_owned(),
                    path,
                });
            }
            Err(e) => return Err(Error::io(path, e)),
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| Error::io(&path, e))?;
        let actual = sha256_digest(&bytes);
        if actual != digest {
            return Err(Error::CorruptBlob {
                path,
                expected: digest.to_owned(),
                actual,
            });
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::STALE_TEMP_AGE;

    #[test]
    fn put_then_get_round_trips_and_is_idempotent() {
        let root = tempfile::tempdir().unwrap();
        let store = BlobStore::open(root.path()).unwrap();
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
    fn a_tampered_blob_is_refused_naming_its_path() {
        let root = tempfile::tempdir().unwrap();
        let store = BlobStore::open(root.path()).unwrap();
        let digest = store.put(b"original").unwrap();
        let path = store.path_of(&digest);
        std::fs::write(&path, b"tampered").unwrap();
        let error = store.get(&digest).unwrap_err();
        assert!(
            matches!(&error, Error::CorruptBlob { path: p, expected, actual }
                if *p == path && *expected == digest && *actual == sha256_digest(b"tampered")),
            "{error:?}"
        );
        assert!(error.to_string().contains(&path.display().to_string()));
        // Publishing the right bytes again repairs it.
        store.put(b"original").unwrap();
        assert_eq!(store.get(&digest).unwrap(), b"original");
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
        BlobStore::open(root.path()).unwrap();
        assert!(!stale.exists());
        assert!(fresh.exists(), "a write in progress is left alone");
    }

    #[test]
    fn missing_and_malformed_digests_are_told_apart() {
        let root = tempfile::tempdir().unwrap();
        let store = BlobStore::open(root.path()).unwrap();
        let missing = sha256_digest(b"never stored");
        assert!(matches!(
            store.get(&missing),
            Err(Error::BlobNotFound { .. })
        ));
        for bad in ["sha256:../../etc/passwd", "md5:abc", "sha256:ABCDEF", ""] {
            assert!(
                matches!(store.get(bad), Err(Error::InvalidDigest { .. })),
                "{bad}"
            );
        }
    }
}
