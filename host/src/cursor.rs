//! `list-keys` cursors as guests see them: opaque, versioned and
//! authenticated strings wrapping a provider's continuation token.
//!
//! Layout: base64url (no padding) of `[FORMAT] ++ mac[12] ++ token`, where
//! `mac` is a SHA-256 over a secret random per host process, the bucket's
//! identity and the token. A cursor that was forged, altered, issued for
//! another bucket or by another host process fails the check and is an
//! `invalid-cursor` error: it never reaches the provider.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use wasikv_core::{Error, ErrorKind, Result};

const FORMAT: u8 = 1;
const MAC_LEN: usize = 12;
/// Longest cursor string accepted from a guest.
pub const MAX_CURSOR_CHARS: usize = 8192;

/// Seals and opens cursors of one bucket.
#[derive(Clone)]
pub struct CursorSealer {
    secret: [u8; 32],
    identity: Vec<u8>,
}

impl std::fmt::Debug for CursorSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorSealer(..)")
    }
}

impl CursorSealer {
    /// A sealer for the bucket with `identity`, keyed by the host's `secret`.
    pub fn new(secret: [u8; 32], identity: &[&str]) -> Self {
        let mut id = Vec::new();
        for part in identity {
            id.extend_from_slice(&(part.len() as u64).to_be_bytes());
            id.extend_from_slice(part.as_bytes());
        }
        CursorSealer {
            secret,
            identity: id,
        }
    }

    fn mac(&self, token: &[u8]) -> [u8; MAC_LEN] {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update((self.identity.len() as u64).to_be_bytes());
        h.update(&self.identity);
        h.update(token);
        let digest = h.finalize();
        digest[..MAC_LEN].try_into().expect("digest is 32 bytes")
    }

    /// The guest-facing cursor for a provider token.
    pub fn seal(&self, token: &[u8]) -> String {
        let mut raw = Vec::with_capacity(1 + MAC_LEN + token.len());
        raw.push(FORMAT);
        raw.extend_from_slice(&self.mac(token));
        raw.extend_from_slice(token);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The provider token inside a guest's cursor, if this bucket issued it.
    pub fn open(&self, cursor: &str) -> Result<Vec<u8>> {
        let invalid = |why: &str| {
            Error::new(
                ErrorKind::InvalidCursor,
                format!(
                    "list-keys cursor rejected: {why}; pass back only cursors this bucket returned"
                ),
            )
        };
        if cursor.len() > MAX_CURSOR_CHARS {
            return Err(invalid("too long"));
        }
        let raw = URL_SAFE_NO_PAD
            .decode(cursor)
            .map_err(|_| invalid("not base64url"))?;
        if raw.len() < 1 + MAC_LEN {
            return Err(invalid("too short"));
        }
        if raw[0] != FORMAT {
            return Err(invalid("unknown format version"));
        }
        let (mac, token) = raw[1..].split_at(MAC_LEN);
        // Constant-time comparison of the MAC.
        let expected = self.mac(token);
        let diff = mac
            .iter()
            .zip(expected.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return Err(invalid(
                "issued for another bucket, by another host process, or altered",
            ));
        }
        Ok(token.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_rejections() {
        let a = CursorSealer::new([7; 32], &["a", "memory"]);
        let b = CursorSealer::new([7; 32], &["b", "memory"]);
        let other_host = CursorSealer::new([8; 32], &["a", "memory"]);
        for token in [&b""[..], b"key-42", &[0u8, 255, 1]] {
            let c = a.seal(token);
            assert_eq!(a.open(&c).unwrap(), token);
            assert_eq!(b.open(&c).unwrap_err().kind(), ErrorKind::InvalidCursor);
            assert_eq!(
                other_host.open(&c).unwrap_err().kind(),
                ErrorKind::InvalidCursor
            );
        }
        for forged in [
            "",
            "garbage!",
            "AQ",
            "AAAAAAAAAAAAAAAAAAAAAAAA",
            &"A".repeat(10_000),
        ] {
            assert_eq!(
                a.open(forged).unwrap_err().kind(),
                ErrorKind::InvalidCursor,
                "{forged}"
            );
        }
        // Flipping any byte of a real cursor is caught.
        let real = URL_SAFE_NO_PAD.decode(a.seal(b"token")).unwrap();
        for i in 0..real.len() {
            let mut altered = real.clone();
            altered[i] ^= 1;
            assert!(
                a.open(&URL_SAFE_NO_PAD.encode(&altered)).is_err(),
                "byte {i}"
            );
        }
    }
}
