//! The precompiled-code cache: compiled components on disk, so a digest is compiled once per
//! engine configuration instead of once per process.
//!
//! An entry lives at `<cache>/<fingerprint hex>/<digest hex>`, keyed by the component's digest
//! *and* the host's [engine fingerprint](crate::Host::engine_fingerprint) (the wasmtime version,
//! the target and every setting that changes compiled code, fuel metering and epoch
//! interruption included). Each file is a fixed [header](HEADER_BYTES) followed by the code
//! `Component::serialize` gave:
//!
//! | bytes | field |
//! |---|---|
//! | 8 | [`ENTRY_MAGIC`] |
//! | 4 | [`ENTRY_FORMAT_VERSION`], little-endian |
//! | 32 | the component's sha256 (its digest) |
//! | 32 | the engine fingerprint's sha256 |
//! | 8 | the payload's length, little-endian |
//! | 32 | the payload's sha256 |
//!
//! **Only files the host wrote are deserialized.** Precompiled code is machine code run as is,
//! so [`CodeCache::load`] reads the whole entry into memory, checks every header field against
//! the digest and fingerprint it was asked for and the payload against its length and hash,
//! and only then hands *those same bytes* to `Component::deserialize`: a file changed after
//! the check cannot reach the engine. A stale entry (another fingerprint), a truncated,
//! corrupt or foreign one is reported with a `tracing::warn!` and treated as missing; the host
//! compiles again and [`CodeCache::store`] replaces it. Entries are written under a unique
//! temporary name, fsynced and renamed into place, so a reader (or a second process storing
//! the same entry) only ever sees complete files.
//!
//! The cache is as trusted as the registry root it lives under: the header guards against
//! crashes, corruption and mix-ups, not against someone who may write the root (they could
//! replace the blobs and `registry.db` too). All access goes through one cap-std [`Dir`].

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use cap_std::fs::Dir;
use sha2::{Digest as _, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::digest::{hex_of, raw_sha256};
use crate::error::Error;

/// The cache's directory under a registry root; the CLI caches compiled code there.
pub const CODE_CACHE_DIR: &str = "cache/code";
/// The first bytes of every entry.
pub const ENTRY_MAGIC: [u8; 8] = *b"HHCODE\r\n";
/// The layout of the entry header; an entry of another version is recompiled.
pub const ENTRY_FORMAT_VERSION: u32 = 1;
/// The size of an entry's header, in bytes.
pub const HEADER_BYTES: usize = 8 + 4 + 32 + 32 + 8 + 32;
/// The largest payload read back. Compiled code is a few times its component's size, and
/// components are capped at [`DEFAULT_MAX_COMPONENT_BYTES`](crate::component::DEFAULT_MAX_COMPONENT_BYTES)
/// by default; a header announcing more than this is refused before anything is read.
pub const MAX_PAYLOAD_BYTES: u64 = 1 << 30;

/// Compiled components on disk, keyed by digest and engine fingerprint. `Send + Sync`.
#[derive(Debug)]
pub struct CodeCache {
    path: PathBuf,
    dir: Dir,
}

/// Why a cache entry was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Unusable {
    Missing,
    Invalid(String),
}

impl CodeCache {
    /// Opens (creating if needed) the cache at `path`, and removes temporary files older than
    /// [`STALE_TEMP_AGE`](crate::fsutil::STALE_TEMP_AGE) left by interrupted writes.
    pub fn open(path: &Path) -> Result<CodeCache, Error> {
        std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
        let dir = Dir::open_ambient_dir(path, cap_std::ambient_authority())
            .map_err(|e| Error::io(path, e))?;
        let cache = CodeCache {
            path: path.to_owned(),
            dir,
        };
        cache.remove_stale_temps();
        Ok(cache)
    }

    /// The cache's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the entry of `digest` compiled under `fingerprint` lives (whether or not it
    /// exists), or `None` if either is not a `sha256:<hex>` digest.
    pub fn entry_path(&self, digest: &str, fingerprint: &str) -> Option<PathBuf> {
        let (dir, file) = entry_name(digest, fingerprint)?;
        Some(self.path.join(dir).join(file))
    }

    /// The compiled code of `digest` under `fingerprint`, if a valid entry is stored.
    ///
    /// Anything but a missing entry — another fingerprint, a truncated or corrupt file, a file
    /// the host did not write, code the engine refuses — is warned about and answered with
    /// `None`: the caller compiles and [stores](CodeCache::store) a fresh entry over it.
    pub fn load(&self, engine: &Engine, digest: &str, fingerprint: &str) -> Option<Component> {
        let path = self.entry_path(digest, fingerprint)?;
        let entry = match self.read_entry(digest, fingerprint) {
            Ok(entry) => entry,
            Err(Unusable::Missing) => return None,
            Err(Unusable::Invalid(reason)) => {
                tracing::warn!(path = %path.display(), %digest, reason, "ignoring a cache entry; recompiling");
                return None;
            }
        };
        match deserialize(engine, &entry[HEADER_BYTES..]) {
            Ok(component) => {
                tracing::debug!(path = %path.display(), %digest, "compiled code loaded from the cache");
                Some(component)
            }
            Err(error) => {
                tracing::warn!(path = %path.display(), %digest, error = %format!("{error:#}"),
                    "the engine refused a cache entry; recompiling");
                None
            }
        }
    }

    /// Stores `code` (from `Component::serialize`) as the entry of `digest` under
    /// `fingerprint`, replacing any entry there. Written aside under a unique name, fsynced,
    /// then renamed: concurrent writers of one entry each put a complete file in place.
    pub fn store(&self, digest: &str, fingerprint: &str, code: &[u8]) -> Result<(), Error> {
        let (dir_name, file_name) =
            entry_name(digest, fingerprint).ok_or_else(|| Error::InvalidDigest {
                digest: format!("{digest} / {fingerprint}"),
            })?;
        let header = Header {
            version: ENTRY_FORMAT_VERSION,
            digest: raw_sha256(digest).expect("checked by entry_name"),
            fingerprint: raw_sha256(fingerprint).expect("checked by entry_name"),
            payload_len: code.len() as u64,
            payload_sha256: Sha256::digest(code).into(),
        };
        let temp = format!(".tmp-{file_name}-{}", uuid::Uuid::now_v7().simple());
        let dir_path = self.path.join(dir_name);
        let write = |dir: &Dir| -> std::io::Result<()> {
            let mut file = dir.create(&temp)?;
            file.write_all(&header.to_bytes())?;
            file.write_all(code)?;
            file.sync_all()?;
            dir.rename(&temp, dir, file_name)?;
            crate::fsutil::sync_dir(dir)
        };
        let dir = self
            .dir
            .create_dir_all(dir_name)
            .and_then(|()| self.dir.open_dir(dir_name))
            .map_err(|e| Error::io(&dir_path, e))?;
        if let Err(e) = write(&dir) {
            let _ = dir.remove_file(&temp);
            return Err(Error::io(dir_path.join(&temp), e));
        }
        tracing::debug!(%digest, bytes = code.len(), "compiled code cached");
        Ok(())
    }

    /// Reads and checks the entry, returning its bytes (header included) only if every field
    /// matches.
    fn read_entry(&self, digest: &str, fingerprint: &str) -> Result<Vec<u8>, Unusable> {
        let (dir, file) = entry_name(digest, fingerprint).ok_or(Unusable::Missing)?;
        let invalid = |reason: String| Unusable::Invalid(reason);
        let mut file = match self.dir.open(Path::new(dir).join(file)) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Unusable::Missing),
            Err(e) => return Err(invalid(format!("cannot open it: {e}"))),
        };
        let len = file
            .metadata()
            .map_err(|e| invalid(format!("cannot stat it: {e}")))?
            .len();
        if len > HEADER_BYTES as u64 + MAX_PAYLOAD_BYTES {
            return Err(invalid(format!("it is {len} bytes, over the cap")));
        }
        let mut bytes = Vec::with_capacity(len as usize);
        file.read_to_end(&mut bytes)
            .map_err(|e| invalid(format!("cannot read it: {e}")))?;
        check_entry(&bytes, digest, fingerprint).map_err(invalid)?;
        Ok(bytes)
    }

    /// Removes temporary files older than [`STALE_TEMP_AGE`](crate::fsutil::STALE_TEMP_AGE). Best effort.
    fn remove_stale_temps(&self) {
        let Ok(dirs) = self.dir.entries() else {
            return;
        };
        for sub in dirs.flatten() {
            if let Ok(dir) = sub.open_dir() {
                crate::fsutil::remove_stale_temps(&dir, "cache entry");
            }
        }
    }
}

/// Turns checked entry bytes into a component.
///
/// The one place the host loads machine code it did not compile in this process.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, code: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `Component::deserialize` requires bytes produced by `Component::serialize` (or
    // `Engine::precompile_component`) of a compatible engine, unmodified. `code` is the payload
    // of an entry that `check_entry` verified in this very buffer — magic, format version,
    // digest, engine fingerprint, length and sha256 — and entries with that header are only
    // written by `CodeCache::store` with the output of `Component::serialize`; the buffer is
    // owned memory, so the file changing after the check cannot change what is loaded.
    // wasmtime additionally checks its own version and engine settings before loading.
    unsafe { Component::deserialize(engine, code) }
}

/// The header of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Header {
    version: u32,
    digest: [u8; 32],
    fingerprint: [u8; 32],
    payload_len: u64,
    payload_sha256: [u8; 32],
}

impl Header {
    fn to_bytes(&self) -> [u8; HEADER_BYTES] {
        let mut out = [0u8; HEADER_BYTES];
        let fields: [&[u8]; 6] = [
            &ENTRY_MAGIC,
            &self.version.to_le_bytes(),
            &self.digest,
            &self.fingerprint,
            &self.payload_len.to_le_bytes(),
            &self.payload_sha256,
        ];
        let mut at = 0;
        for field in fields {
            out[at..at + field.len()].copy_from_slice(field);
            at += field.len();
        }
        out
    }

    /// Parses a header; `None` if `bytes` is too short or the magic is wrong.
    fn parse(bytes: &[u8]) -> Option<Header> {
        let bytes = bytes.get(..HEADER_BYTES)?;
        let (magic, rest) = bytes.split_at(8);
        if magic != ENTRY_MAGIC {
            return None;
        }
        let take = |range: std::ops::Range<usize>| &rest[range];
        Some(Header {
            version: u32::from_le_bytes(take(0..4).try_into().ok()?),
            digest: take(4..36).try_into().ok()?,
            fingerprint: take(36..68).try_into().ok()?,
            payload_len: u64::from_le_bytes(take(68..76).try_into().ok()?),
            payload_sha256: take(76..108).try_into().ok()?,
        })
    }
}

/// Checks an entry's header against what was asked for and its payload against the header.
fn check_entry(bytes: &[u8], digest: &str, fingerprint: &str) -> Result<(), String> {
    let header = Header::parse(bytes).ok_or_else(|| {
        format!(
            "not a hookhost code entry ({} bytes, no valid header)",
            bytes.len()
        )
    })?;
    if header.version != ENTRY_FORMAT_VERSION {
        return Err(format!(
            "entry format {}, this host writes {ENTRY_FORMAT_VERSION}",
            header.version
        ));
    }
    if Some(header.digest) != raw_sha256(digest) {
        return Err(format!(
            "it holds the code of another component (sha256:{})",
            crate::digest::hex(&header.digest)
        ));
    }
    if Some(header.fingerprint) != raw_sha256(fingerprint) {
        return Err(format!(
            "stale: compiled by another engine configuration (sha256:{})",
            crate::digest::hex(&header.fingerprint)
        ));
    }
    let payload = &bytes[HEADER_BYTES..];
    if payload.len() as u64 != header.payload_len {
        return Err(format!(
            "truncated or extended: {} payload bytes, the header says {}",
            payload.len(),
            header.payload_len
        ));
    }
    if <[u8; 32]>::from(Sha256::digest(payload)) != header.payload_sha256 {
        return Err("corrupt: the payload does not match its sha256".into());
    }
    Ok(())
}

/// `(fingerprint hex, digest hex)`: the entry's directory and file names.
fn entry_name<'a>(digest: &'a str, fingerprint: &'a str) -> Option<(&'a str, &'a str)> {
    Some((hex_of(fingerprint)?, hex_of(digest)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::sha256_digest;
    use crate::fsutil::STALE_TEMP_AGE;

    fn engine() -> Engine {
        Engine::default()
    }

    fn fingerprint(engine: &Engine) -> String {
        crate::engine::fingerprint_of(engine)
    }

    /// A small component, compiled and serialized.
    fn compiled(engine: &Engine) -> (String, Vec<u8>) {
        let wasm = wat::parse_str("(component (core module))").unwrap();
        let component = Component::new(engine, &wasm).unwrap();
        (sha256_digest(&wasm), component.serialize().unwrap())
    }

    #[test]
    fn headers_round_trip_and_fit_the_declared_size() {
        let header = Header {
            version: 7,
            digest: [1; 32],
            fingerprint: [2; 32],
            payload_len: 0x0102_0304,
            payload_sha256: [3; 32],
        };
        let bytes = header.to_bytes();
        assert_eq!(bytes.len(), HEADER_BYTES);
        assert_eq!(Header::parse(&bytes), Some(header));
        assert_eq!(Header::parse(&bytes[..HEADER_BYTES - 1]), None);
        let mut foreign = bytes;
        foreign[0] ^= 1;
        assert_eq!(Header::parse(&foreign), None);
    }

    #[test]
    fn a_stored_entry_loads_and_leaves_no_temporary_file() {
        let root = tempfile::tempdir().unwrap();
        let cache = CodeCache::open(root.path()).unwrap();
        let engine = engine();
        let fp = fingerprint(&engine);
        let (digest, code) = compiled(&engine);
        assert!(cache.load(&engine, &digest, &fp).is_none(), "empty cache");
        cache.store(&digest, &fp, &code).unwrap();
        assert!(cache.load(&engine, &digest, &fp).is_some());
        let path = cache.entry_path(&digest, &fp).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            (HEADER_BYTES + code.len()) as u64
        );
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [path.file_name().unwrap()]);
    }

    #[test]
    fn every_damaged_or_foreign_entry_is_refused_with_its_reason() {
        let root = tempfile::tempdir().unwrap();
        let cache = CodeCache::open(root.path()).unwrap();
        let engine = engine();
        let fp = fingerprint(&engine);
        let (digest, code) = compiled(&engine);
        cache.store(&digest, &fp, &code).unwrap();
        let path = cache.entry_path(&digest, &fp).unwrap();
        let good = std::fs::read(&path).unwrap();
        let refused = |bytes: &[u8]| {
            std::fs::write(&path, bytes).unwrap();
            match cache.read_entry(&digest, &fp) {
                Err(Unusable::Invalid(reason)) => reason,
                other => panic!("expected a refusal, got {:?}", other.map(|b| b.len())),
            }
        };
        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 0x40;
        assert!(refused(&flipped).contains("corrupt"));
        assert!(refused(&good[..good.len() - 1]).contains("truncated"));
        assert!(refused(&good[..HEADER_BYTES / 2]).contains("no valid header"));
        let mut other_digest = good.clone();
        other_digest[12] ^= 1;
        assert!(refused(&other_digest).contains("another component"));
        let mut other_fp = good.clone();
        other_fp[44] ^= 1;
        assert!(refused(&other_fp).contains("stale"));
        let mut version = good.clone();
        version[8] = 2;
        assert!(refused(&version).contains("entry format 2"));
        assert!(refused(b"\0asm\x0d\0\x01\0 random bytes").contains("no valid header"));
        // None of these reach the engine, and the caller recompiles.
        assert!(cache.load(&engine, &digest, &fp).is_none());
        // The good bytes are still good.
        std::fs::write(&path, &good).unwrap();
        assert!(cache.load(&engine, &digest, &fp).is_some());
    }

    #[test]
    fn entries_are_named_only_by_well_formed_digests() {
        let root = tempfile::tempdir().unwrap();
        let cache = CodeCache::open(root.path()).unwrap();
        let good = sha256_digest(b"x");
        assert!(cache.entry_path("sha256:../../etc/passwd", &good).is_none());
        assert!(cache.entry_path(&good, "md5:abc").is_none());
        assert!(cache.store("sha256:..", &good, b"code").is_err());
        assert_eq!(
            raw_sha256(&good).map(|raw| crate::digest::hex(&raw)),
            hex_of(&good).map(str::to_owned)
        );
    }

    #[test]
    fn stale_temporary_entries_are_removed_and_fresh_ones_kept() {
        let root = tempfile::tempdir().unwrap();
        let sub = root.path().join("ab");
        std::fs::create_dir_all(&sub).unwrap();
        let stale = sub.join(".tmp-crashed");
        let fresh = sub.join(".tmp-in-progress");
        std::fs::write(&stale, b"half").unwrap();
        std::fs::write(&fresh, b"half").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(std::time::SystemTime::now() - STALE_TEMP_AGE * 2)
            .unwrap();
        CodeCache::open(root.path()).unwrap();
        assert!(!stale.exists());
        assert!(fresh.exists());
    }
}
