//! Regression tests of issue 17's hardening items that are reachable through
//! the host's public API (the bucket layer guests call): each fails on the
//! code before its fix. `docs/reliability.md` lists every item and its test.

use wasikv_core::ErrorKind;
use wasikv_host::{Buckets, Config};

fn buckets(toml: &str) -> Buckets {
    Buckets::from_config(&Config::from_toml(toml).unwrap()).unwrap()
}

/// Item 10: a cursor the host issues is one it accepts. Keys of 10,000 bytes
/// make the memory provider's continuation token (the last key) longer than
/// a cursor may be; listing must still walk every key.
#[tokio::test]
async fn long_keys_give_cursors_the_host_accepts() {
    let b = buckets(
        "[limits]\nmax_key_bytes = 20000\nlist_page_keys = 1\n[buckets.m]\nprovider = \"memory\"\n",
    );
    let m = b.open(None, "m").await.unwrap();
    let keys: Vec<String> = (0..3)
        .map(|i| format!("{i}{}", "k".repeat(10_000)))
        .collect();
    for key in &keys {
        m.set(key, b"v".to_vec()).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let (page, next) = m.list_keys(cursor.as_deref()).await.unwrap();
        seen.extend(page);
        match next {
            Some(c) => {
                assert!(c.len() <= 8192, "issued a {}-character cursor", c.len());
                cursor = Some(c);
            }
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, keys);
}

/// Item 4: the 0.2.0-draft `increment` (u64) refuses before writing: a
/// counter at -10 incremented by 5 stays -10.
#[tokio::test]
async fn draft_increment_refuses_before_writing() {
    let b = buckets("[buckets.m]\nprovider = \"memory\"\n");
    let m = b.open(None, "m").await.unwrap();
    m.set("n", b"-10".to_vec()).await.unwrap();
    let e = m.increment_unsigned("n", 5).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidValue);
    assert_eq!(m.get("n").await.unwrap().as_deref(), Some(&b"-10"[..]));
    assert_eq!(m.increment_unsigned("n", 15).await.unwrap(), 5);
    assert_eq!(m.increment_unsigned("new", 7).await.unwrap(), 7);
    let e = m.increment_unsigned("n", u64::MAX).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidValue);
    assert_eq!(m.get("n").await.unwrap().as_deref(), Some(&b"5"[..]));
}
