//! The counter grammar: a stored value is a number only if it matches
//! `-?[0-9]+` and fits in i64; anything else is an `invalid-value` error;
//! an add that overflows is an error, never a wrap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasikv_core::{ErrorKind, counter};

fuzz_target!(|data: &[u8]| {
    let (value, delta) = match data.split_last_chunk::<8>() {
        Some((value, delta)) => (value, i64::from_le_bytes(*delta)),
        None => (data, 1),
    };
    let digits = value.strip_prefix(b"-").unwrap_or(value);
    let grammar = !digits.is_empty() && digits.iter().all(u8::is_ascii_digit);
    let reference = grammar
        .then(|| std::str::from_utf8(value).ok()?.parse::<i64>().ok())
        .flatten();
    match counter::parse(value) {
        Ok(n) => {
            assert_eq!(Some(n), reference, "{value:?}");
            assert_eq!(counter::parse(&counter::format(n)).unwrap(), n);
        }
        Err(e) => {
            assert_eq!(reference, None, "{value:?} parses as {reference:?}");
            assert_eq!(e.kind(), ErrorKind::InvalidValue);
        }
    }
    match counter::apply(Some(value), delta) {
        Ok(n) => assert_eq!(Some(n), reference.and_then(|r| r.checked_add(delta))),
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidValue);
            assert_eq!(reference.and_then(|r| r.checked_add(delta)), None);
        }
    }
});
