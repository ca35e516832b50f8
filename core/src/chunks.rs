//! The on-store layout of large values: how the host keeps a value longer
//! than a store's own item limit, and how it keeps its hidden keys apart from
//! the guests' keys. Pure functions; the host's chunking layer does the I/O.
//!
//! * **Keys.** A guest's key is stored as itself, except that a key starting
//!   with U+0000 gets one more U+0000 in front. Every stored key that starts
//!   with U+0000 followed by anything else is hidden: the host's own
//!   bookkeeping, never listed, never a guest's key.
//! * **Values.** A value is stored as itself unless it is longer than the
//!   store's limit or starts with [`MAGIC`]. Those are stored as a
//!   *manifest* at the guest's key: [`MAGIC`], then either `i` and the value
//!   itself (an *inline* manifest: a short value that happens to start with
//!   the magic bytes), or `c`, a layout version byte (1), the value's length
//!   (u64, big-endian), the chunk length (u32, big-endian) and a 16-byte write
//!   id (milliseconds since the Unix epoch and 8 random bytes, both
//!   big-endian). The value is then in `ceil(length / chunk)` chunks, chunk
//!   `i` at hidden key [`chunk_key`]`(id, i, key)`.
//! * **Chunks** are written under a fresh write id before the manifest is
//!   switched, and never rewritten: a reader that finds one missing knows the
//!   manifest changed and reads it again.
//! * **Marker.** [`MARKER_KEY`] exists once any chunked value was written in
//!   the bucket; until then writers need not read a key before replacing it.

/// The first bytes of a manifest.
pub const MAGIC: &[u8] = b"\0wasikv-large\0";

/// Layout version of a chunked manifest.
pub const LAYOUT_VERSION: u8 = 1;

/// Length of a chunked manifest in bytes.
pub const CHUNKED_MANIFEST_BYTES: usize = MAGIC.len() + 2 + 8 + 4 + 16;

/// The hidden key that exists once the bucket holds (or held) a chunked value.
pub const MARKER_KEY: &str = "\0wasikv:chunked-values";

/// The prefix of every chunk key.
pub const CHUNK_PREFIX: &str = "\0wasikv:chunk:";

/// Length in bytes of a chunk key beyond the guest's key: the prefix, the
/// write id in hex, two separators and up to ten digits of index.
pub const CHUNK_KEY_OVERHEAD: usize = CHUNK_PREFIX.len() + 32 + 2 + 10;

/// The id of one large write: when it started and 8 random bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WriteId {
    /// Milliseconds since the Unix epoch when the write began.
    pub created_ms: u64,
    /// Random bits that make the id unique.
    pub random: u64,
}

impl WriteId {
    /// A fresh id stamped with the current time.
    pub fn new(random: u64) -> Self {
        let created_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        WriteId { created_ms, random }
    }

    fn hex(&self) -> String {
        format!("{:016x}{:016x}", self.created_ms, self.random)
    }

    fn parse_hex(hex: &str) -> Option<Self> {
        if hex.len() != 32 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        Some(WriteId {
            created_ms: u64::from_str_radix(&hex[..16], 16).ok()?,
            random: u64::from_str_radix(&hex[16..], 16).ok()?,
        })
    }
}

/// A chunked value's manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Manifest {
    /// Length of the whole value in bytes.
    pub len: u64,
    /// Length of every chunk but the last (which may be shorter), at least 1.
    pub chunk_bytes: u32,
    /// The write that stored the chunks.
    pub id: WriteId,
}

impl Manifest {
    /// Number of chunks.
    pub fn chunks(&self) -> u64 {
        self.len.div_ceil(u64::from(self.chunk_bytes.max(1)))
    }

    /// Length of chunk `index`.
    pub fn chunk_len(&self, index: u64) -> usize {
        let chunk = u64::from(self.chunk_bytes.max(1));
        let start = index * chunk;
        (self.len.saturating_sub(start)).min(chunk) as usize
    }

    /// The manifest's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(CHUNKED_MANIFEST_BYTES);
        out.extend_from_slice(MAGIC);
        out.push(b'c');
        out.push(LAYOUT_VERSION);
        out.extend_from_slice(&self.len.to_be_bytes());
        out.extend_from_slice(&self.chunk_bytes.to_be_bytes());
        out.extend_from_slice(&self.id.created_ms.to_be_bytes());
        out.extend_from_slice(&self.id.random.to_be_bytes());
        out
    }
}

/// What the bytes stored at a guest's key hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored<'a> {
    /// The value itself.
    Plain(&'a [u8]),
    /// An inline manifest: the value follows the header.
    Inline(&'a [u8]),
    /// A chunked manifest.
    Chunked(Manifest),
}

/// Why stored bytes that start with [`MAGIC`] are not a manifest this
/// version reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadManifest {
    /// A newer layout (its version byte).
    NewerLayout(u8),
    /// Not a manifest wasikv wrote (truncated or unknown kind).
    Malformed,
}

impl std::fmt::Display for BadManifest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadManifest::NewerLayout(v) => write!(
                f,
                "the value was stored by a newer wasikv (large-value layout {v}, this one reads {LAYOUT_VERSION})"
            ),
            BadManifest::Malformed => f.write_str(
                "the stored bytes start like a wasikv large-value manifest but are not one (written by another client?)",
            ),
        }
    }
}

/// Reads the bytes stored at a guest's key.
pub fn decode(stored: &[u8]) -> Result<Stored<'_>, BadManifest> {
    let Some(rest) = stored.strip_prefix(MAGIC) else {
        return Ok(Stored::Plain(stored));
    };
    match rest.split_first() {
        Some((b'i', value)) => Ok(Stored::Inline(value)),
        Some((b'c', rest)) => {
            let (&version, rest) = rest.split_first().ok_or(BadManifest::Malformed)?;
            if version != LAYOUT_VERSION {
                return Err(if version > LAYOUT_VERSION {
                    BadManifest::NewerLayout(version)
                } else {
                    BadManifest::Malformed
                });
            }
            if rest.len() != 8 + 4 + 16 {
                return Err(BadManifest::Malformed);
            }
            let u64_at = |i: usize| u64::from_be_bytes(rest[i..i + 8].try_into().unwrap());
            let chunk_bytes = u32::from_be_bytes(rest[8..12].try_into().unwrap());
            if chunk_bytes == 0 {
                return Err(BadManifest::Malformed);
            }
            Ok(Stored::Chunked(Manifest {
                len: u64_at(0),
                chunk_bytes,
                id: WriteId {
                    created_ms: u64_at(12),
                    random: u64_at(20),
                },
            }))
        }
        _ => Err(BadManifest::Malformed),
    }
}

/// Whether `value` must be stored as a manifest even though it fits the
/// store: it starts with [`MAGIC`], so stored as itself it would read as one.
pub fn needs_escape(value: &[u8]) -> bool {
    value.starts_with(MAGIC)
}

/// The inline manifest of `value`.
pub fn inline(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAGIC.len() + 1 + value.len());
    out.extend_from_slice(MAGIC);
    out.push(b'i');
    out.extend_from_slice(value);
    out
}

/// Length of the inline manifest of a value of `len` bytes.
pub fn inline_len(len: usize) -> usize {
    MAGIC.len() + 1 + len
}

/// The stored key of a guest's key: itself, or with one more U+0000 in front
/// when it starts with U+0000.
pub fn stored_key(key: &str) -> std::borrow::Cow<'_, str> {
    if key.starts_with('\0') {
        std::borrow::Cow::Owned(format!("\0{key}"))
    } else {
        std::borrow::Cow::Borrowed(key)
    }
}

/// The guest's key of a stored key, `None` for a hidden key.
pub fn guest_key(stored: &str) -> Option<&str> {
    match stored.strip_prefix('\0') {
        None => Some(stored),
        Some(rest) if rest.starts_with('\0') => Some(rest),
        Some(_) => None,
    }
}

/// [`guest_key`] for an owned key, without copying a guest's key that needs no change.
pub fn into_guest_key(mut stored: String) -> Option<String> {
    if !stored.starts_with('\0') {
        return Some(stored);
    }
    if stored.as_bytes().get(1) == Some(&0) {
        stored.remove(0);
        return Some(stored);
    }
    None
}

/// The hidden key of chunk `index` of write `id` of the guest's key `key`.
pub fn chunk_key(id: &WriteId, index: u64, key: &str) -> String {
    format!("{CHUNK_PREFIX}{}:{index}:{key}", id.hex())
}

/// A chunk key taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkKey<'a> {
    /// The write that stored it.
    pub id: WriteId,
    /// Its index.
    pub index: u64,
    /// The guest's key it belongs to.
    pub key: &'a str,
}

/// Takes a stored key apart if it is a chunk key.
pub fn parse_chunk_key(stored: &str) -> Option<ChunkKey<'_>> {
    let rest = stored.strip_prefix(CHUNK_PREFIX)?;
    let (id, rest) = (rest.get(..32)?, rest.get(32..)?);
    let rest = rest.strip_prefix(':')?;
    let (index, key) = rest.split_once(':')?;
    // Canonical decimal only: one key per chunk.
    if index.is_empty()
        || index.len() > 20
        || (index.len() > 1 && index.starts_with('0'))
        || !index.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    Some(ChunkKey {
        id: WriteId::parse_hex(id)?,
        index: index.parse().ok()?,
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_roundtrip_and_plain_values_stay_plain() {
        let m = Manifest {
            len: 3_000_001,
            chunk_bytes: 400_000,
            id: WriteId {
                created_ms: 1_764_000_000_000,
                random: 0xdead_beef_0123_4567,
            },
        };
        let bytes = m.encode();
        assert_eq!(bytes.len(), CHUNKED_MANIFEST_BYTES);
        assert_eq!(decode(&bytes), Ok(Stored::Chunked(m)));
        assert_eq!(m.chunks(), 8);
        assert_eq!(m.chunk_len(0), 400_000);
        assert_eq!(m.chunk_len(7), 200_001);
        assert_eq!(decode(b"plain"), Ok(Stored::Plain(b"plain")));
        assert_eq!(decode(b""), Ok(Stored::Plain(b"")));
        let tricky = [MAGIC, b"x"].concat();
        assert!(needs_escape(&tricky));
        assert_eq!(decode(&inline(&tricky)), Ok(Stored::Inline(&tricky[..])));
        assert_eq!(decode(&tricky), Err(BadManifest::Malformed));
        let mut newer = bytes.clone();
        newer[MAGIC.len() + 1] = 9;
        assert_eq!(decode(&newer), Err(BadManifest::NewerLayout(9)));
        assert_eq!(
            decode(&bytes[..bytes.len() - 1]),
            Err(BadManifest::Malformed)
        );
    }

    #[test]
    fn keys_starting_with_nul_are_escaped_and_hidden_keys_never_decode() {
        for key in ["", "a", "\0", "\0\0x", "\0wasikv:chunk:x", "é\0"] {
            let stored = stored_key(key);
            assert_eq!(guest_key(&stored), Some(key), "{key:?}");
            assert_eq!(into_guest_key(stored.into_owned()).as_deref(), Some(key));
        }
        assert_eq!(guest_key(MARKER_KEY), None);
        let id = WriteId {
            created_ms: 5,
            random: u64::MAX,
        };
        let chunk = chunk_key(&id, 12, "\0user:key:with:colons");
        assert_eq!(guest_key(&chunk), None);
        assert_eq!(into_guest_key(chunk.clone()), None);
        assert_eq!(
            parse_chunk_key(&chunk),
            Some(ChunkKey {
                id,
                index: 12,
                key: "\0user:key:with:colons"
            })
        );
        assert!(chunk.len() <= CHUNK_KEY_OVERHEAD + "\0user:key:with:colons".len());
        assert_eq!(parse_chunk_key(MARKER_KEY), None);
        assert_eq!(parse_chunk_key("\0wasikv:chunk:zz"), None);
    }
}
