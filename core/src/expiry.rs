//! Expiry: a bucket's time-to-live (`ttl = "1h"` in its config section).
//!
//! The contract, the same on every store: every write (`set`, `swap`,
//! `increment`, `set-many`) sets the key's expiry to now + ttl; a key past
//! its expiry is absent for `get`, `exists`, `get-many` and `list-keys`;
//! `increment` on it starts from the delta; a CAS handle read from it sees
//! it absent, and a swap against a version that expired meanwhile fails as
//! for a deleted key. How late after its expiry a key may still be read is
//! the provider's declared [`Expiry`] resolution.
//!
//! `ttl` is an option of every bucket, read by [`plan`] before the
//! provider sees the rest of the section; the provider gets it as
//! [`BucketPlan::ttl`](crate::BucketPlan::ttl).

use std::fmt;
use std::time::Duration;

use crate::{BucketPlan, Error, ErrorKind, Options, Provider, Result};

/// The option's name in a bucket's config section.
pub const OPTION: &str = "ttl";

/// Shortest `ttl`: every store here can expire a key a second after its
/// write (Memcached and etcd count whole seconds).
pub const MIN_TTL: Duration = Duration::from_secs(1);

/// Longest `ttl`: ten years.
pub const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// How a provider's buckets honour a `ttl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// A `ttl` is refused for this provider's buckets.
    Unsupported,
    /// The store expires keys itself.
    Native {
        /// How, in a few words (e.g. "PX on every write").
        how: &'static str,
        /// How late after its expiry a key may still be read.
        resolution: Duration,
    },
    /// The provider keeps an expiry time with every key, treats a key past
    /// it as absent on every read path, and deletes expired keys in a sweep
    /// bounded in work per interval (or leaves them to the store's own lazy
    /// deletion, named in `how`).
    Filtered {
        /// How, in a few words (e.g. "expiry attribute, DynamoDB TTL").
        how: &'static str,
        /// How late after its expiry a key may still be read.
        resolution: Duration,
    },
}

impl Expiry {
    /// Whether a `ttl` is honoured.
    pub fn is_supported(self) -> bool {
        !matches!(self, Expiry::Unsupported)
    }

    /// How late after its expiry a key may still be read; `None` when
    /// unsupported.
    pub fn resolution(self) -> Option<Duration> {
        match self {
            Expiry::Unsupported => None,
            Expiry::Native { resolution, .. } | Expiry::Filtered { resolution, .. } => {
                Some(resolution)
            }
        }
    }
}

impl fmt::Display for Expiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expiry::Unsupported => f.write_str("unsupported"),
            Expiry::Native { how, resolution } => {
                write!(f, "native ({how}), within {}", Show(*resolution))
            }
            Expiry::Filtered { how, resolution } => {
                write!(f, "filtered on read ({how}), within {}", Show(*resolution))
            }
        }
    }
}

/// A duration as the config file writes it (`1h30m`, `90s`, `250ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Show(pub Duration);

impl fmt::Display for Show {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in UNITS {
            if ms >= size {
                write!(f, "{}{unit}", ms / size)?;
                ms %= size;
            }
        }
        Ok(())
    }
}

/// Units of a duration, largest first, in milliseconds.
const UNITS: [(&str, u128); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Parses a duration written as one or more `<integer><unit>` parts, units
/// `d`, `h`, `m`, `s`, `ms`, largest first, each at most once: `"1h"`,
/// `"90s"`, `"1h30m"`, `"1500ms"`.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let expected = "a duration such as \"1h\", \"90s\", \"1h30m\" or \"1500ms\"";
    if text.is_empty() {
        return Err(format!("empty; expected {expected}"));
    }
    let mut rest = text;
    let mut total: u128 = 0;
    let mut last_unit = None;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("expected {expected}"));
        }
        let (number, tail) = rest.split_at(digits);
        let letters = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, tail) = tail.split_at(letters);
        let position = UNITS
            .iter()
            .position(|(u, _)| *u == unit)
            .ok_or_else(|| format!("unknown unit {unit:?}; expected {expected}"))?;
        if last_unit.is_some_and(|last| position <= last) {
            return Err(format!(
                "units must go from largest to smallest, each once; expected {expected}"
            ));
        }
        last_unit = Some(position);
        let number: u128 = number
            .parse()
            .map_err(|_| format!("number too large; expected {expected}"))?;
        total = number
            .checked_mul(UNITS[position].1)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(|| format!("too long; expected {expected}"))?;
        rest = tail;
    }
    u64::try_from(total)
        .map(Duration::from_millis)
        .map_err(|_| format!("too long; expected {expected}"))
}

/// Takes the `ttl` option out of a bucket's options: `None` when absent.
/// An error (naming the bucket, the provider and the option, never the
/// value) when it is not a duration string between [`MIN_TTL`] and
/// [`MAX_TTL`].
pub fn take_ttl(options: &mut Options, bucket: &str, provider: &str) -> Result<Option<Duration>> {
    let Some(value) = options.0.remove(OPTION) else {
        return Ok(None);
    };
    let invalid = |why: String| {
        Err(Error::new(
            ErrorKind::InvalidConfig,
            format!("bad options: {OPTION}: {why}"),
        )
        .in_bucket(bucket, provider))
    };
    let Some(text) = value.as_str() else {
        return invalid("expected a duration string such as \"1h\" or \"90s\"".into());
    };
    let ttl = match parse_duration(text) {
        Ok(ttl) => ttl,
        Err(why) => return invalid(why),
    };
    if ttl < MIN_TTL || ttl > MAX_TTL {
        return invalid(format!(
            "{} is outside {}..={}",
            Show(ttl),
            Show(MIN_TTL),
            Show(MAX_TTL)
        ));
    }
    Ok(Some(ttl))
}

/// Milliseconds since the Unix epoch: the wall clock, since expiry times
/// stored with keys outlive the process and are shared by hosts.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The expiry (milliseconds since the Unix epoch) of a key written now
/// with `ttl`.
pub fn expiry_after(ttl: Duration) -> u64 {
    now_ms().saturating_add(ttl.as_millis() as u64)
}

/// Whether the expiry `expires_ms` (`None`: never) has passed at `now_ms`:
/// a key is absent from its expiry on.
pub fn has_expired(expires_ms: Option<u64>, now_ms: u64) -> bool {
    expires_ms.is_some_and(|at| at <= now_ms)
}

/// Plans bucket `bucket` of `provider` from its config section as the host
/// does: the bucket-wide options (`ttl`) first, the provider's own
/// [`Provider::plan`] with the rest. A `ttl` on a provider that cannot
/// honour it is refused here, naming both.
pub fn plan(provider: &dyn Provider, bucket: &str, options: &Options) -> Result<BucketPlan> {
    let mut options = options.clone();
    let ttl = take_ttl(&mut options, bucket, provider.name())?;
    let mut plan = provider.plan(bucket, &options)?;
    if let Some(ttl) = ttl {
        check_supported(provider.capabilities().expiry, ttl)
            .map_err(|e| e.in_bucket(bucket, provider.name()))?;
        plan.ttl = Some(ttl);
    }
    Ok(plan)
}

/// `InvalidConfig` when a bucket with `ttl` is on a store whose expiry is
/// `expiry`.
pub fn check_supported(expiry: Expiry, ttl: Duration) -> Result<()> {
    if expiry.is_supported() {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::InvalidConfig,
        format!(
            "{OPTION} = \"{}\": this provider does not expire keys (see the capability matrix)",
            Show(ttl)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A provider that keeps no expiry (as a third-party one may).
    struct Forever;

    #[async_trait::async_trait]
    impl Provider for Forever {
        fn name(&self) -> &'static str {
            "forever"
        }
        fn capabilities(&self) -> crate::Capabilities {
            crate::Capabilities::required()
        }
        fn plan(&self, bucket: &str, options: &Options) -> Result<BucketPlan> {
            Ok(BucketPlan {
                bucket: bucket.into(),
                provider: "forever",
                connection: String::new(),
                location: crate::Location {
                    endpoints: Vec::new(),
                    scope: String::new(),
                },
                namespace: crate::Namespace::Exclusive(bucket.into()),
                options: options.clone(),
                ttl: None,
            })
        }
        async fn connect(&self, _: &BucketPlan) -> Result<std::sync::Arc<dyn crate::Store>> {
            Err(Error::new(ErrorKind::Unavailable, "not a store"))
        }
    }

    #[test]
    fn a_ttl_is_refused_where_the_provider_keeps_no_expiry() {
        let options = |o| Options::from_json(o).unwrap();
        let planned = plan(&Forever, "b", &options(serde_json::json!({"x": 1}))).unwrap();
        assert_eq!(planned.ttl, None);
        assert!(!planned.options.0.contains_key("ttl"));
        let err = plan(&Forever, "b", &options(serde_json::json!({"ttl": "1h"}))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        let text = err.to_string();
        assert!(
            text.contains("\"b\" (forever)") && text.contains("does not expire keys"),
            "{text}"
        );
    }

    #[test]
    fn durations_parse_in_every_unit_and_combination() {
        let cases = [
            ("1h", 3_600_000),
            ("90s", 90_000),
            ("1h30m", 5_400_000),
            ("1500ms", 1_500),
            ("2d", 172_800_000),
            ("1d2h3m4s5ms", 93_784_005),
            ("0s", 0),
        ];
        for (text, ms) in cases {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(ms)),
                "{text}"
            );
            assert_eq!(
                parse_duration(&Show(Duration::from_millis(ms)).to_string()),
                Ok(Duration::from_millis(ms))
            );
        }
        for bad in [
            "",
            "1",
            "h",
            "1x",
            "1 h",
            "-1s",
            "1s1h",
            "1s1s",
            "1.5h",
            "s1",
            "99999999999999999999999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn ttl_option_is_taken_and_checked_without_printing_it() {
        let mut options = Options::from_json(serde_json::json!({"ttl": "1h", "map": "m"})).unwrap();
        assert_eq!(
            take_ttl(&mut options, "b", "memory").unwrap(),
            Some(Duration::from_secs(3600))
        );
        assert!(
            !options.0.contains_key("ttl"),
            "the provider never sees ttl"
        );
        assert!(options.0.contains_key("map"));
        for (bad, needle) in [
            (serde_json::json!({"ttl": 3600}), "duration string"),
            (serde_json::json!({"ttl": "500ms"}), "outside 1s..="),
            (serde_json::json!({"ttl": "3651d"}), "outside"),
            (serde_json::json!({"ttl": "soon"}), "expected a duration"),
        ] {
            let mut options = Options::from_json(bad.clone()).unwrap();
            let err = take_ttl(&mut options, "b", "memory").unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidConfig);
            let text = err.to_string();
            assert!(
                text.contains(needle) && text.contains("ttl") && text.contains("\"b\" (memory)"),
                "{bad}: {text}"
            );
            assert!(!text.contains("3600 ") && !text.contains("soon"), "{text}");
        }
    }

    #[test]
    fn expiry_renders_for_the_matrix() {
        let native = Expiry::Native {
            how: "PX on every write",
            resolution: Duration::from_millis(1),
        };
        assert_eq!(native.to_string(), "native (PX on every write), within 1ms");
        let filtered = Expiry::Filtered {
            how: "expiry attribute",
            resolution: Duration::from_secs(1),
        };
        assert_eq!(
            filtered.to_string(),
            "filtered on read (expiry attribute), within 1s"
        );
        assert_eq!(Expiry::Unsupported.to_string(), "unsupported");
    }
}
