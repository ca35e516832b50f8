//! list-keys cursors: any string a guest passes never panics the host; a
//! cursor one bucket opens is refused by every other bucket and by another
//! host process; what a bucket issues it opens back, whatever the token.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasikv_fuzz::cursor::{CursorSealer, MAX_CURSOR_CHARS};

fuzz_target!(|data: &[u8]| {
    let a = CursorSealer::new([7; 32], &["a", "memory", "memory", "\"a\""]);
    let b = CursorSealer::new([7; 32], &["b", "memory", "memory", "\"b\""]);
    let other_host = CursorSealer::new([8; 32], &["a", "memory", "memory", "\"a\""]);
    let text = String::from_utf8_lossy(data);
    if let Ok(token) = a.open(&text) {
        assert!(b.open(&text).is_err(), "another bucket opened {text:?}");
        assert!(
            other_host.open(&text).is_err(),
            "another host opened {text:?}"
        );
        assert_eq!(a.open(&a.seal(&token)).unwrap(), token);
    }
    // The input as a provider token: sealed within the bound, opened back
    // by its bucket only.
    let sealed = a.seal(data);
    assert!(sealed.len() <= MAX_CURSOR_CHARS);
    assert_eq!(a.open(&sealed).unwrap(), data);
    assert!(b.open(&sealed).is_err());
    assert!(other_host.open(&sealed).is_err());
});
