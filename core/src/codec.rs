//! The key codec: maps any UTF-8 key to an id a store accepts, reversibly.
//!
//! * Bytes the store forbids, control characters and the escape character `%`
//!   itself become `%XX` (uppercase hex of each UTF-8 byte).
//! * The empty key becomes `%` alone (no escape produces it).
//! * An id matching a reserved pattern (Firestore's `__.*__`) gets its first
//!   byte escaped.
//! * A trailing space is escaped where the store mishandles ids ending in one
//!   (Cosmos DB).
//! * An id longer than the store's limit becomes `%H` + the SHA-256 of the key
//!   in hex; `%H` cannot come from escaping, and [`KeyCodec::decode`] returns
//!   `None` for it: the provider keeps the original key in the item.
//!
//! Every key has exactly one id: decoding accepts only the canonical
//! encoding (uppercase hex, only the bytes that must be escaped), so a
//! foreign id such as `%41` or `%2f` never lists as a key that `get` could
//! not find. [`KeyCodec::listed_key`] is what listings use.

use sha2::{Digest, Sha256};

/// A store's id rules.
#[derive(Debug, Clone, Copy)]
pub struct KeyCodec {
    /// Characters the store forbids in ids (besides control characters).
    pub forbidden: &'static [char],
    /// Whether spaces must be escaped (Memcached).
    pub escape_space: bool,
    /// Longest id in bytes.
    pub max_id_bytes: usize,
    /// Whether ids of the form `__.*__` are reserved (Firestore).
    pub reserve_dunder: bool,
    /// Whether a trailing space must be escaped (Cosmos DB).
    pub escape_trailing_space: bool,
}

/// An encoded id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedKey {
    /// The id to store under.
    pub id: String,
    /// Whether the id is a hash: the original key must be stored in the item.
    pub hashed: bool,
}

const HASH_PREFIX: &str = "%H";

/// Length in bytes of a hashed id (`%H` and 64 hex digits): a store's id
/// limit less its prefix must leave room for it.
pub const HASHED_ID_BYTES: usize = HASH_PREFIX.len() + 64;

impl KeyCodec {
    /// Encodes `key` into an id the store accepts.
    pub fn encode(&self, key: &str) -> EncodedKey {
        if key.is_empty() {
            return EncodedKey {
                id: "%".to_string(),
                hashed: false,
            };
        }
        let mut id = String::with_capacity(key.len());
        for (i, c) in key.char_indices() {
            let escape = c == '%'
                || c.is_control()
                || (self.escape_space && c == ' ')
                || self.forbidden.contains(&c)
                || (i == 0 && self.reserve_dunder && is_dunder(key))
                || (self.escape_trailing_space && c == ' ' && i + 1 == key.len());
            if escape {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    id.push_str(&format!("%{b:02X}"));
                }
            } else {
                id.push(c);
            }
        }
        if id.len() > self.max_id_bytes {
            let digest = Sha256::digest(key.as_bytes());
            let mut hashed = String::from(HASH_PREFIX);
            for b in digest {
                hashed.push_str(&format!("{b:02x}"));
            }
            return EncodedKey {
                id: hashed,
                hashed: true,
            };
        }
        EncodedKey { id, hashed: false }
    }

    /// Decodes an id made by [`KeyCodec::encode`]; `None` for a hashed id (read
    /// the original key from the item) or an id that encode cannot produce
    /// (not canonical: `encode(decode(id)) == id` always holds).
    pub fn decode(&self, id: &str) -> Option<String> {
        let key = self.decode_escapes(id)?;
        let canonical = self.encode(&key);
        (!canonical.hashed && canonical.id == id).then_some(key)
    }

    /// The key of a listed item with id `id` and, for a hashed id, the
    /// original key stored in the item: `None` for an item this codec did
    /// not write (skip it: it is not the bucket's).
    pub fn listed_key(&self, id: &str, original: Option<&str>) -> Option<String> {
        if let Some(key) = self.decode(id) {
            return Some(key);
        }
        let key = original?;
        let canonical = self.encode(key);
        (canonical.hashed && canonical.id == id).then(|| key.to_string())
    }

    fn decode_escapes(&self, id: &str) -> Option<String> {
        if id == "%" {
            return Some(String::new());
        }
        if id.starts_with(HASH_PREFIX) {
            return None;
        }
        let bytes = id.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).ok()
    }
}

/// Whether `id` matches `__.*__`, the ids Firestore reserves (at least four
/// bytes, so `__` and `___` are not).
pub fn is_dunder(id: &str) -> bool {
    id.len() >= 4 && id.starts_with("__") && id.ends_with("__")
}

/// Keys every provider must store and list back unchanged (the behavior suite's corpus).
pub fn corpus() -> Vec<String> {
    let mut keys: Vec<String> = [
        "plain",
        "",
        " ",
        "with space",
        "slash/inside/",
        "/leading",
        "back\\slash",
        "hash#tag",
        "question?mark",
        "percent%41",
        "%",
        "%H0000",
        "quote\"s and 'single'",
        "tab\tnew\nline\r",
        "nul\0byte",
        "\u{7f}del",
        "__reserved__",
        "__",
        "..",
        ".",
        "unicode-ключ-キー-🔑",
        "*?[glob]{x}",
        "\0leading-nul",
        "\0\0two-nuls",
        "\0",
        "\0wasikv:chunked-values",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    keys.push("k".repeat(1024));
    keys.push("é".repeat(512)); // 1024 bytes of 2-byte characters
    keys.push(format!("{}/", "/".repeat(300)));
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: KeyCodec = KeyCodec {
        forbidden: &['/', '\\', '?', '#'],
        escape_space: true,
        max_id_bytes: 250,
        reserve_dunder: true,
        escape_trailing_space: false,
    };

    const COSMOS_LIKE: KeyCodec = KeyCodec {
        forbidden: &['/', '\\', '?', '#'],
        escape_space: false,
        max_id_bytes: 1023,
        reserve_dunder: false,
        escape_trailing_space: true,
    };

    #[test]
    fn corpus_roundtrips_or_hashes() {
        for key in corpus() {
            let enc = STRICT.encode(&key);
            assert!(enc.id.len() <= STRICT.max_id_bytes, "{key:?}");
            assert!(!enc.id.contains(['/', '\\', '?', '#', ' ']), "{:?}", enc.id);
            assert!(!enc.id.chars().any(char::is_control), "{:?}", enc.id);
            assert!(!is_dunder(&enc.id), "{:?}", enc.id);
            if enc.hashed {
                assert_eq!(STRICT.decode(&enc.id), None);
                assert!(key.len() > 80, "{key:?}");
            } else {
                assert_eq!(STRICT.decode(&enc.id).as_deref(), Some(key.as_str()));
            }
        }
    }

    #[test]
    fn distinct_keys_get_distinct_ids() {
        let keys = corpus();
        let ids: std::collections::HashSet<_> = keys.iter().map(|k| STRICT.encode(k).id).collect();
        assert_eq!(ids.len(), keys.len());
    }

    #[test]
    fn escape_char_and_hash_prefix_cannot_collide() {
        assert_eq!(STRICT.encode("%").id, "%25");
        assert_eq!(STRICT.encode("%H00").id, "%25H00");
        assert_eq!(STRICT.encode("").id, "%");
        assert_eq!(STRICT.encode("a b/c").id, "a%20b%2Fc");
        assert_eq!(STRICT.encode("__x__").id, "%5F_x__");
    }

    #[test]
    fn decode_rejects_malformed_ids() {
        assert_eq!(STRICT.decode("%Z1"), None);
        assert_eq!(STRICT.decode("abc%4"), None);
        assert_eq!(STRICT.decode("%FF"), None);
        // `%+F` parses as hex in from_str_radix; not an encoding.
        assert_eq!(STRICT.decode("%+F"), None);
    }

    /// Only the canonical id decodes: lowercase hex, needless escapes and
    /// a hash id with a stored key that does not hash to it are foreign.
    #[test]
    fn only_canonical_ids_decode() {
        assert_eq!(STRICT.decode("a%2Fb").as_deref(), Some("a/b"));
        assert_eq!(STRICT.decode("a%2fb"), None, "lowercase hex");
        assert_eq!(STRICT.decode("%41"), None, "A needs no escape");
        assert_eq!(STRICT.decode("__x__"), None, "a reserved id unescaped");
        let long = "k".repeat(300);
        let hashed = STRICT.encode(&long);
        assert!(hashed.hashed);
        assert_eq!(
            STRICT.listed_key(&hashed.id, Some(&long)),
            Some(long.clone())
        );
        assert_eq!(STRICT.listed_key(&hashed.id, Some("other")), None);
        assert_eq!(STRICT.listed_key("%Hdeadbeef", Some(&long)), None);
        assert_eq!(STRICT.listed_key("plain", None).as_deref(), Some("plain"));
        assert_eq!(STRICT.listed_key("%2f", Some("/")), None);
    }

    #[test]
    fn trailing_spaces_are_escaped_where_the_store_needs_it() {
        assert_eq!(COSMOS_LIKE.encode("a b ").id, "a b%20");
        assert_eq!(COSMOS_LIKE.encode(" ").id, "%20");
        assert_eq!(COSMOS_LIKE.encode("  ").id, " %20");
        assert_eq!(COSMOS_LIKE.decode("a b%20").as_deref(), Some("a b "));
        assert_eq!(
            COSMOS_LIKE.decode("a b "),
            None,
            "an unescaped trailing space is foreign"
        );
        for key in corpus() {
            let enc = COSMOS_LIKE.encode(&key);
            assert!(!enc.id.ends_with(' '), "{key:?}");
            if !enc.hashed {
                assert_eq!(COSMOS_LIKE.decode(&enc.id).as_deref(), Some(key.as_str()));
            }
        }
    }
}
