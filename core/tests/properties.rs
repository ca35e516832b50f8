//! Property tests of the key codec and the counter rules: no input panics,
//! and the round trips hold.

use proptest::prelude::*;
use wasikv_core::codec::KeyCodec;
use wasikv_core::{ErrorKind, counter};

const CODECS: [KeyCodec; 3] = [
    // memcached-like: spaces and control characters, 250 bytes
    KeyCodec {
        forbidden: &[],
        escape_space: true,
        max_id_bytes: 250,
        reserve_dunder: false,
        escape_trailing_space: false,
    },
    // Cosmos-like
    KeyCodec {
        forbidden: &['/', '\\', '?', '#'],
        escape_space: false,
        max_id_bytes: 1023,
        reserve_dunder: false,
        escape_trailing_space: true,
    },
    // Firestore-like
    KeyCodec {
        forbidden: &['/'],
        escape_space: false,
        max_id_bytes: 1500,
        reserve_dunder: true,
        escape_trailing_space: false,
    },
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~]{0,40}",
        "(__)?[a-z%/ #?\\\\]{0,20}(__)?",
        proptest::collection::vec(any::<char>(), 0..600).prop_map(|c| c.into_iter().collect()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn codec_ids_are_valid_and_reversible(k in key()) {
        for codec in CODECS {
            let enc = codec.encode(&k);
            prop_assert!(enc.id.len() <= codec.max_id_bytes);
            prop_assert!(!enc.id.is_empty());
            prop_assert!(!enc.id.chars().any(|c| c.is_control() || codec.forbidden.contains(&c)));
            if codec.escape_space {
                prop_assert!(!enc.id.contains(' '));
            }
            if codec.reserve_dunder {
                prop_assert!(!(enc.id.len() >= 4 && enc.id.starts_with("__") && enc.id.ends_with("__")));
            }
            if enc.hashed {
                prop_assert_eq!(codec.decode(&enc.id), None);
            } else {
                prop_assert_eq!(codec.decode(&enc.id), Some(k.clone()));
            }
        }
    }

    #[test]
    fn distinct_keys_get_distinct_ids(a in key(), b in key()) {
        prop_assume!(a != b);
        for codec in CODECS {
            prop_assert_ne!(codec.encode(&a).id, codec.encode(&b).id);
        }
    }

    /// Whatever an id is, if it decodes, it is the one id of that key: a
    /// foreign id never lists as a key `get` cannot find.
    #[test]
    fn only_canonical_ids_decode(id in prop_oneof![any::<String>(), "[%0-9A-Fa-f+ a-z]{0,12}"]) {
        for codec in CODECS {
            if let Some(key) = codec.decode(&id) {
                prop_assert_eq!(codec.encode(&key).id, id.clone());
            }
            if codec.escape_trailing_space {
                prop_assert!(!codec.encode(&id).id.ends_with(' '));
            }
        }
    }

    #[test]
    fn counter_parse_matches_the_grammar(bytes in prop_oneof![
        any::<Vec<u8>>(),
        "-?[0-9]{0,25}".prop_map(String::into_bytes),
        "[-+ 0-9]{0,5}".prop_map(String::into_bytes),
    ]) {
        let text = std::str::from_utf8(&bytes).ok();
        let grammar = text.is_some_and(|t| {
            let digits = t.strip_prefix('-').unwrap_or(t);
            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
        });
        match counter::parse(&bytes) {
            Ok(n) => {
                prop_assert!(grammar);
                prop_assert_eq!(Some(n), text.and_then(|t| t.parse::<i64>().ok()));
            }
            Err(e) => {
                prop_assert_eq!(e.kind(), ErrorKind::InvalidValue);
                prop_assert!(!grammar || text.and_then(|t| t.parse::<i64>().ok()).is_none());
            }
        }
    }

    #[test]
    fn counter_apply_never_wraps(base in any::<i64>(), delta in any::<i64>()) {
        let stored = counter::format(base);
        match counter::apply(Some(&stored), delta) {
            Ok(n) => prop_assert_eq!(Some(n), base.checked_add(delta)),
            Err(e) => {
                prop_assert_eq!(e.kind(), ErrorKind::InvalidValue);
                prop_assert!(base.checked_add(delta).is_none());
            }
        }
    }
}
