//! `list-keys` cursors as guests see them: opaque, versioned and
//! authenticated strings wrapping a provider's continuation token.
//!
//! Layout: base64url (no padding) of `[format] ++ mac[12] ++ payload`, where
//! `mac` is a SHA-256 over a secret random per host process, the bucket's
//! identity, the format byte and the payload. A cursor that was forged,
//! altered, issued for another bucket or by another host process fails the
//! check and is an `invalid-cursor` error: it never reaches the provider.
//!
//! Formats: `1` carries the provider's token itself. `2` carries a random
//! 16-byte handle of a token the bucket keeps in memory, for tokens too long
//! for a cursor of at most [`MAX_CURSOR_CHARS`] (long keys, long provider
//! tokens): every cursor the host issues is one it accepts back. A bucket
//! keeps the last [`KEPT_TOKENS`] such tokens (at most [`KEPT_TOKEN_BYTES`]
//! bytes); an older handle is an `invalid-cursor` error saying so.

use std::collections::VecDeque;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use wasikv_core::{Error, ErrorKind, Result};

/// A cursor carrying the provider's token.
const INLINE: u8 = 1;
/// A cursor carrying the handle of a token kept by the bucket.
const KEPT: u8 = 2;
const MAC_LEN: usize = 12;
const HANDLE_LEN: usize = 16;
/// Longest cursor string accepted from a guest, and longest one issued.
pub const MAX_CURSOR_CHARS: usize = 8192;
/// Longest token carried inline: its cursor is at most [`MAX_CURSOR_CHARS`].
const MAX_INLINE_TOKEN: usize = MAX_CURSOR_CHARS / 4 * 3 - 1 - MAC_LEN;
/// Long tokens a bucket keeps for format-2 cursors; older ones are forgotten.
pub const KEPT_TOKENS: usize = 1024;
/// Bytes of long tokens a bucket keeps; older ones are forgotten.
pub const KEPT_TOKEN_BYTES: usize = 64 << 20;

/// Seals and opens cursors of one bucket.
pub struct CursorSealer {
    secret: [u8; 32],
    identity: Vec<u8>,
    kept: Mutex<KeptTokens>,
}

/// Long tokens by handle, oldest first, and their total bytes.
type KeptTokens = (VecDeque<([u8; HANDLE_LEN], Vec<u8>)>, usize);

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
            kept: Mutex::new((VecDeque::new(), 0)),
        }
    }

    fn mac(&self, format: u8, payload: &[u8]) -> [u8; MAC_LEN] {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update((self.identity.len() as u64).to_be_bytes());
        h.update(&self.identity);
        h.update([format]);
        h.update(payload);
        let digest = h.finalize();
        digest[..MAC_LEN].try_into().expect("digest is 32 bytes")
    }

    fn encode(&self, format: u8, payload: &[u8]) -> String {
        let mut raw = Vec::with_capacity(1 + MAC_LEN + payload.len());
        raw.push(format);
        raw.extend_from_slice(&self.mac(format, payload));
        raw.extend_from_slice(payload);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The guest-facing cursor for a provider token: never longer than
    /// [`MAX_CURSOR_CHARS`], so [`CursorSealer::open`] takes it back.
    pub fn seal(&self, token: &[u8]) -> String {
        if token.len() <= MAX_INLINE_TOKEN {
            return self.encode(INLINE, token);
        }
        let handle: [u8; HANDLE_LEN] = rand::random();
        {
            let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
            let (tokens, bytes) = &mut *kept;
            *bytes += token.len();
            tokens.push_back((handle, token.to_vec()));
            while tokens.len() > KEPT_TOKENS || (*bytes > KEPT_TOKEN_BYTES && tokens.len() > 1) {
                if let Some((_, old)) = tokens.pop_front() {
                    *bytes -= old.len();
                }
            }
        }
        self.encode(KEPT, &handle)
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
        let format = raw[0];
        if format != INLINE && format != KEPT {
            return Err(invalid("unknown format version"));
        }
        let (mac, payload) = raw[1..].split_at(MAC_LEN);
        // Constant-time comparison of the MAC.
        let expected = self.mac(format, payload);
        let diff = mac
            .iter()
            .zip(expected.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return Err(invalid(
                "issued for another bucket, by another host process, or altered",
            ));
        }
        if format == INLINE {
            return Ok(payload.to_vec());
        }
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.0
            .iter()
            .find(|(handle, _)| handle.as_slice() == payload)
            .map(|(_, token)| token.clone())
            .ok_or_else(|| {
                invalid(&format!(
                    "its long token is no longer kept (a bucket keeps the last {KEPT_TOKENS}); start the listing again"
                ))
            })
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
        // Long tokens (long keys, long provider tokens): the cursor stays
        // within the bound open accepts, and opens back to the token.
        for len in [
            MAX_INLINE_TOKEN - 1,
            MAX_INLINE_TOKEN,
            MAX_INLINE_TOKEN + 1,
            100_000,
        ] {
            let token: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let c = a.seal(&token);
            assert!(c.len() <= MAX_CURSOR_CHARS, "{len}: {} chars", c.len());
            assert_eq!(a.open(&c).unwrap(), token, "{len}");
            assert_eq!(b.open(&c).unwrap_err().kind(), ErrorKind::InvalidCursor);
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

    #[test]
    fn long_tokens_are_kept_boundedly() {
        let a = CursorSealer::new([7; 32], &["a", "memory"]);
        let long = vec![b'k'; MAX_INLINE_TOKEN + 1];
        let first = a.seal(&long);
        for _ in 0..KEPT_TOKENS {
            a.seal(&long);
        }
        let e = a.open(&first).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidCursor);
        assert!(e.to_string().contains("no longer kept"), "{e}");
        assert_eq!(a.kept.lock().unwrap().0.len(), KEPT_TOKENS);
    }
}
