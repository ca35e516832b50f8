//! The counter contract of `increment`.
//!
//! A counter is stored as decimal ASCII text (`-9`, `42`). An existing value is
//! a number only if it matches `-?[0-9]+` and fits in `i64` (no `+`, no spaces,
//! no other bytes); anything else is an `InvalidValue` error and the value is
//! left unchanged. An `i64` overflow is an `InvalidValue` error and the value is
//! left unchanged: never a wrap, never a cap. A missing key counts as 0.

use crate::{Error, ErrorKind, Result};

/// Parses a stored counter.
pub fn parse(value: &[u8]) -> Result<i64> {
    let digits = value.strip_prefix(b"-").unwrap_or(value);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(Error::new(
            ErrorKind::InvalidValue,
            format!(
                "cannot increment: the stored value {} is not a decimal integer (-?[0-9]+)",
                preview(value)
            ),
        ));
    }
    // Only ASCII digits and an optional '-' remain, so this is valid UTF-8.
    let text = std::str::from_utf8(value).expect("ASCII");
    text.parse::<i64>().map_err(|_| {
        Error::new(
            ErrorKind::InvalidValue,
            format!(
                "cannot increment: the stored value {text} does not fit in a signed 64-bit integer"
            ),
        )
    })
}

/// Renders a counter as stored.
pub fn format(value: i64) -> Vec<u8> {
    value.to_string().into_bytes()
}

/// The new counter after adding `delta` to `current` (`None`: missing).
pub fn apply(current: Option<&[u8]>, delta: i64) -> Result<i64> {
    let base = match current {
        Some(bytes) => parse(bytes)?,
        None => 0,
    };
    base.checked_add(delta).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidValue,
            format!("cannot increment: {base} + {delta} overflows a signed 64-bit integer"),
        )
    })
}

/// [`apply`], refusing a new counter below `min` (an interface whose
/// counters cannot go below it, e.g. 0 for `u64`): an `InvalidValue` error,
/// checked before anything is written.
pub fn apply_at_least(current: Option<&[u8]>, delta: i64, min: i64) -> Result<i64> {
    let new = apply(current, delta)?;
    check_at_least(new, min)?;
    Ok(new)
}

/// `InvalidValue` when the new counter `new` is below `min`.
pub fn check_at_least(new: i64, min: i64) -> Result<()> {
    if new < min {
        return Err(Error::new(
            ErrorKind::InvalidValue,
            format!(
                "cannot increment: the counter would be {new}, below {min}; the value is unchanged"
            ),
        ));
    }
    Ok(())
}

fn preview(value: &[u8]) -> String {
    const MAX: usize = 32;
    let shown = &value[..value.len().min(MAX)];
    let mut s = match std::str::from_utf8(shown) {
        Ok(text) => format!("{text:?}"),
        Err(_) => format!("(binary, {} bytes)", value.len()),
    };
    if value.len() > MAX && !s.starts_with("(binary") {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_the_decimal_grammar() {
        assert_eq!(parse(b"0").unwrap(), 0);
        assert_eq!(parse(b"-9").unwrap(), -9);
        assert_eq!(parse(b"007").unwrap(), 7);
        assert_eq!(parse(b"9223372036854775807").unwrap(), i64::MAX);
        assert_eq!(parse(b"-9223372036854775808").unwrap(), i64::MIN);
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b" 1",
            b"1 ",
            b"1.0",
            b"0x10",
            b"--1",
            b"\xff\x00",
            b"9223372036854775808",
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidValue, "{bad:?}");
        }
    }

    #[test]
    fn apply_at_least_refuses_below_the_bound() {
        assert_eq!(apply_at_least(Some(b"-10"), 15, 0).unwrap(), 5);
        assert_eq!(apply_at_least(None, 0, 0).unwrap(), 0);
        let err = apply_at_least(Some(b"-10"), 5, 0).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidValue);
        assert!(err.to_string().contains("below 0"), "{err}");
        assert_eq!(
            apply_at_least(Some(b"x"), 1, 0).unwrap_err().kind(),
            ErrorKind::InvalidValue
        );
        assert_eq!(apply_at_least(Some(b"-5"), -1, i64::MIN).unwrap(), -6);
    }

    #[test]
    fn apply_never_wraps() {
        assert_eq!(apply(None, -3).unwrap(), -3);
        assert_eq!(apply(Some(b"40"), 2).unwrap(), 42);
        assert_eq!(
            apply(Some(b"9223372036854775807"), 1).unwrap_err().kind(),
            ErrorKind::InvalidValue
        );
        assert_eq!(
            apply(Some(b"-9223372036854775808"), -1).unwrap_err().kind(),
            ErrorKind::InvalidValue
        );
        assert_eq!(format(-9), b"-9");
    }
}
