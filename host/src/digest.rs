//! Digests: `sha256:<64 lowercase hex>` names for component bytes, configs and contracts, and
//! the hex helpers every layer uses. The ground floor: it imports nothing of the crate.

use sha2::{Digest as _, Sha256};

/// `sha256:<64 lowercase hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The 64 lowercase hex digits of a `sha256:<hex>` digest, or `None` if it is not one.
pub fn hex_of(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then_some(hex)
}

/// The 32 bytes of a `sha256:<hex>` digest, or `None` if it is not one.
pub fn raw_sha256(digest: &str) -> Option<[u8; 32]> {
    let hex = hex_of(digest)?;
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_round_trip_through_their_hex() {
        let digest = sha256_digest(b"abc");
        assert_eq!(
            digest,
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let raw = raw_sha256(&digest).unwrap();
        assert_eq!(format!("sha256:{}", hex(&raw)), digest);
        for bad in ["sha256:ABC", "md5:00", "sha256:../x", ""] {
            assert!(hex_of(bad).is_none(), "{bad}");
        }
    }
}
