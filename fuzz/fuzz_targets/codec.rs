//! The key codec: every key encodes to an id the store accepts, decodes back
//! (or is hashed, with the key kept in the item), two keys never share an
//! id, and any id decodes only if it is the canonical id of its key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasikv_core::codec::KeyCodec;

const CODECS: [KeyCodec; 4] = [
    // memcached-like
    KeyCodec {
        forbidden: &[],
        escape_space: true,
        max_id_bytes: 250 - 60,
        reserve_dunder: false,
        escape_trailing_space: false,
    },
    // Cosmos-like
    KeyCodec {
        forbidden: &['/', '\\', '?', '#', '.'],
        escape_space: false,
        max_id_bytes: 1023,
        reserve_dunder: false,
        escape_trailing_space: true,
    },
    // Firestore-like
    KeyCodec {
        forbidden: &['/', '.'],
        escape_space: false,
        max_id_bytes: 1500,
        reserve_dunder: true,
        escape_trailing_space: false,
    },
    // DynamoDB-like
    KeyCodec {
        forbidden: &[],
        escape_space: false,
        max_id_bytes: 2048 - 20,
        reserve_dunder: false,
        escape_trailing_space: false,
    },
];

fuzz_target!(|data: &[u8]| {
    // Two keys from one input: split at the first 0xFF (never in UTF-8).
    let (a, b) = match data.iter().position(|&x| x == 0xFF) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let (Ok(a), Ok(b)) = (std::str::from_utf8(a), std::str::from_utf8(b)) else {
        // Not keys, but still ids a store could hold: decoding never panics
        // and only canonical ids decode.
        let id = String::from_utf8_lossy(data);
        for codec in CODECS {
            if let Some(key) = codec.decode(&id) {
                assert_eq!(codec.encode(&key).id, id);
            }
        }
        return;
    };
    for codec in CODECS {
        let ea = codec.encode(a);
        assert!(!ea.id.is_empty());
        assert!(
            ea.id.len() <= codec.max_id_bytes.max(66),
            "{a:?}: {:?}",
            ea.id
        );
        assert!(
            !ea.id
                .chars()
                .any(|c| c.is_control() || codec.forbidden.contains(&c))
        );
        if codec.escape_space {
            assert!(!ea.id.contains(' '));
        }
        if codec.escape_trailing_space {
            assert!(!ea.id.ends_with(' '));
        }
        if ea.hashed {
            assert_eq!(codec.decode(&ea.id), None);
            assert_eq!(codec.listed_key(&ea.id, Some(a)).as_deref(), Some(a));
        } else {
            assert_eq!(codec.decode(&ea.id).as_deref(), Some(a));
        }
        if a != b {
            assert_ne!(ea.id, codec.encode(b).id, "{a:?} and {b:?} share an id");
        }
        // `b` as an id: only the canonical id of its key decodes.
        if let Some(key) = codec.decode(b) {
            assert_eq!(codec.encode(&key).id, b);
        }
    }
});
