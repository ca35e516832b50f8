//! Property tests of guest- and operator-controlled input: cursors and
//! configuration text never panic, and sealed cursors round-trip.

use proptest::prelude::*;
use wasikv_core::ErrorKind;
use wasikv_host::Config;
use wasikv_host::cursor::CursorSealer;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn cursors_roundtrip_and_reject_everything_else(token in any::<Vec<u8>>(), junk in any::<String>(), flip in any::<usize>()) {
        let sealer = CursorSealer::new([3; 32], &["bucket", "memory", "conn", "ns"]);
        let other = CursorSealer::new([3; 32], &["other", "memory", "conn", "ns"]);
        let cursor = sealer.seal(&token);
        prop_assert_eq!(sealer.open(&cursor).unwrap(), token.clone());
        prop_assert_eq!(other.open(&cursor).unwrap_err().kind(), ErrorKind::InvalidCursor);
        // Arbitrary guest strings never panic; they open only if they are a real cursor.
        if let Ok(t) = sealer.open(&junk) {
            prop_assert_eq!(sealer.seal(&t), junk.clone());
        }
        // Changing one character of a real cursor is caught.
        let mut chars: Vec<char> = cursor.chars().collect();
        let i = flip % chars.len();
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        let altered: String = chars.into_iter().collect();
        if altered != cursor {
            prop_assert!(sealer.open(&altered).is_err());
        }
    }

    #[test]
    fn config_text_never_panics(text in any::<String>()) {
        if let Err(e) = Config::from_toml(&text) {
            prop_assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        }
    }

    #[test]
    fn config_values_of_any_type_are_checked(key in "[a-z_]{1,20}", value in prop_oneof![
        Just("1".to_string()), Just("-1".to_string()), Just("\"x\"".to_string()),
        Just("[1, 2]".to_string()), Just("{ a = 1 }".to_string()), Just("true".to_string()),
        Just("18446744073709551616".to_string()), Just("0".to_string()),
    ]) {
        for section in ["limits", "runtime", "buckets.b", "components.c"] {
            let text = format!("[{section}]\n{key} = {value}\n");
            if let Err(e) = Config::from_toml(&text) {
                prop_assert_eq!(e.kind(), ErrorKind::InvalidConfig);
            }
        }
    }
}
