//! The cases of the behavior suite. Each returns `Err(description)` on failure.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Case, CaseFuture};
use crate::codec::corpus;
use crate::{Bucket, Change, ErrorKind, Operation, Version, WriteCondition, WriteOutcome};

use Operation::*;

type Outcome = Result<(), String>;

trait Ctx<T> {
    fn ctx(self, what: &str) -> Result<T, String>;
}

impl<T> Ctx<T> for crate::Result<T> {
    fn ctx(self, what: &str) -> Result<T, String> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(format!($($arg)+));
        }
    };
}

macro_rules! ensure_eq {
    ($left:expr, $right:expr, $($arg:tt)+) => {{
        let (left, right) = (&$left, &$right);
        if left != right {
            return Err(format!("{}: got {:?}, expected {:?}", format!($($arg)+), left, right));
        }
    }};
}

macro_rules! case {
    ($name:ident, [$($op:ident),*]) => {
        Case { name: stringify!($name), needs: &[$($op),*], host_only: false, expiring: false, run: |b| -> CaseFuture { Box::pin($name(b)) } }
    };
    ($name:ident, [$($op:ident),*], host_only) => {
        Case { name: stringify!($name), needs: &[$($op),*], host_only: true, expiring: false, run: |b| -> CaseFuture { Box::pin($name(b)) } }
    };
    ($name:ident, [$($op:ident),*], host_only, expiring) => {
        Case { name: stringify!($name), needs: &[$($op),*], host_only: true, expiring: true, run: |b| -> CaseFuture { Box::pin($name(b)) } }
    };
    ($name:ident, [$($op:ident),*], expiring) => {
        Case { name: stringify!($name), needs: &[$($op),*], host_only: false, expiring: true, run: |b| -> CaseFuture { Box::pin($name(b)) } }
    };
}

pub(super) fn all() -> Vec<Case> {
    vec![
        case!(get_missing_returns_none, [Get, Exists]),
        case!(set_get_roundtrip_and_overwrite, [Get, Set]),
        case!(empty_value_is_some_empty, [Get, Set, Exists]),
        case!(all_byte_values_roundtrip, [Get, Set]),
        case!(large_value_roundtrip, [Get, Set]),
        case!(value_over_limit_is_too_large_and_unchanged, [Get, Set]),
        case!(key_corpus_roundtrip, [Get, Set, Exists, Delete]),
        case!(key_corpus_listed_unchanged, [Set, List]),
        case!(
            delete_missing_is_ok_and_delete_removes,
            [Get, Set, Delete, Exists]
        ),
        case!(list_empty_bucket, [List]),
        case!(list_pages_exactly_once, [Set, List]),
        case!(list_malformed_cursor_is_clean_error, [Set, List]),
        case!(versioned_get_matches_get, [Get, Set, Cas]),
        case!(cas_create_if_absent, [Get, Set, Cas]),
        case!(cas_if_version_succeeds_when_unchanged, [Get, Set, Cas]),
        case!(cas_stale_after_update, [Get, Set, Cas]),
        case!(cas_stale_after_same_bytes_update, [Get, Set, Cas]),
        case!(cas_stale_after_delete, [Get, Set, Delete, Cas]),
        case!(cas_stale_after_delete_and_recreate, [Get, Set, Delete, Cas]),
        case!(cas_create_if_absent_race_has_one_winner, [Get, Set, Cas]),
        case!(cas_concurrent_append_loses_nothing, [Get, Set, Cas]),
        case!(increment_missing_creates_delta, [Get, Increment]),
        case!(
            increment_decimal_value_written_by_set,
            [Get, Set, Increment]
        ),
        case!(
            increment_overflow_is_error_and_unchanged,
            [Get, Set, Increment]
        ),
        case!(
            increment_non_numeric_is_error_and_unchanged,
            [Get, Set, Increment]
        ),
        case!(increment_concurrent_is_exact, [Get, Increment]),
        case!(increment_keeps_all_64_bits, [Get, Set, Increment]),
        case!(
            increment_at_least_refuses_below_the_bound,
            [Get, Set, Increment]
        ),
        case!(
            immediate_calls_agree_with_async_calls,
            [Get, Set, Delete, Exists, Increment]
        ),
        case!(get_many_order_holes_and_repeats, [Set, GetMany]),
        case!(
            set_many_and_delete_many,
            [Get, SetMany, DeleteMany, GetMany]
        ),
        case!(watch_sees_every_change_in_order, [Set, Delete, Watch]),
        case!(
            batch_repeated_keys_last_wins,
            [Get, SetMany, DeleteMany],
            host_only
        ),
        case!(
            batch_over_store_limit_is_chunked,
            [SetMany, GetMany, DeleteMany],
            host_only
        ),
        case!(
            large_values_around_the_store_limit,
            [Get, Set, Delete, Exists, Cas],
            host_only
        ),
        case!(
            values_that_look_like_manifests_roundtrip,
            [Get, Set, Delete],
            host_only
        ),
        case!(
            large_value_cas_keeps_no_aba,
            [Get, Set, Delete, Cas],
            host_only
        ),
        case!(
            large_value_increment_is_non_numeric_and_unchanged,
            [Get, Set, Increment],
            host_only
        ),
        case!(
            large_values_in_batches,
            [Get, SetMany, GetMany, DeleteMany],
            host_only
        ),
        case!(
            large_values_list_only_guest_keys,
            [Set, List, Delete],
            host_only
        ),
        case!(large_value_readers_see_whole_values, [Get, Set], host_only),
        case!(
            large_values_reach_watchers_whole,
            [Set, Delete, Watch],
            host_only
        ),
        case!(
            expired_keys_are_absent_on_every_read_path,
            [Get, Set, Exists],
            expiring
        ),
        case!(expired_counter_restarts, [Get, Increment], expiring),
        case!(
            a_swap_against_an_expired_version_fails,
            [Get, Set, Cas],
            expiring
        ),
        case!(a_rewrite_extends_a_keys_life, [Get, Set], expiring),
        case!(
            large_values_expire_whole,
            [Get, Set, Exists],
            host_only,
            expiring
        ),
    ]
}

/// The check for an operation declared unsupported: calling it returns `Unsupported`.
pub(super) async fn expect_unsupported(bucket: &dyn Bucket, op: Operation) -> Outcome {
    let key = "unsupported-probe";
    let kind = match op {
        Get => bucket.get(key).await.err().map(|e| e.kind()),
        Set => bucket
            .set(key, b"x".to_vec(), WriteCondition::Always)
            .await
            .err()
            .map(|e| e.kind()),
        Delete => bucket.delete(key).await.err().map(|e| e.kind()),
        Exists => bucket.exists(key).await.err().map(|e| e.kind()),
        List => bucket.list(None, 10).await.err().map(|e| e.kind()),
        Cas => bucket
            .set(key, b"x".to_vec(), WriteCondition::IfAbsent)
            .await
            .err()
            .map(|e| e.kind()),
        Increment => bucket.increment(key, 1).await.err().map(|e| e.kind()),
        GetMany => bucket
            .get_many(&[key.to_string()])
            .await
            .err()
            .map(|e| e.kind()),
        SetMany => bucket
            .set_many(vec![(key.to_string(), b"x".to_vec())])
            .await
            .err()
            .map(|e| e.kind()),
        DeleteMany => bucket
            .delete_many(&[key.to_string()])
            .await
            .err()
            .map(|e| e.kind()),
        Watch => bucket.watch().await.err().map(|e| e.kind()),
    };
    ensure_eq!(
        kind,
        Some(ErrorKind::Unsupported),
        "{} is declared unsupported, so it must return the unsupported error",
        op.name()
    );
    Ok(())
}

async fn put(bucket: &dyn Bucket, key: &str, value: &[u8]) -> Outcome {
    let outcome = bucket
        .set(key, value.to_vec(), WriteCondition::Always)
        .await
        .ctx(&format!("set {key:?}"))?;
    ensure_eq!(
        outcome,
        WriteOutcome::Written,
        "unconditional set of {key:?}"
    );
    Ok(())
}

async fn list_all(bucket: &dyn Bucket, limit: usize) -> Result<Vec<String>, String> {
    let mut keys = Vec::new();
    let mut cursor: Option<Vec<u8>> = None;
    for _ in 0..100_000 {
        let page = bucket
            .list(cursor.as_deref(), limit)
            .await
            .ctx(&format!("list (limit {limit})"))?;
        ensure!(
            page.keys.len() <= limit,
            "a page has {} keys, over the limit of {limit}",
            page.keys.len()
        );
        keys.extend(page.keys);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(keys),
        }
    }
    Err("list never ended".into())
}

async fn get_missing_returns_none(b: Arc<dyn Bucket>) -> Outcome {
    ensure_eq!(
        b.get("missing").await.ctx("get")?,
        None,
        "get of a missing key"
    );
    ensure_eq!(
        b.get_versioned("missing").await.ctx("get_versioned")?,
        None,
        "versioned get of a missing key"
    );
    ensure_eq!(
        b.exists("missing").await.ctx("exists")?,
        false,
        "exists of a missing key"
    );
    Ok(())
}

async fn set_get_roundtrip_and_overwrite(b: Arc<dyn Bucket>) -> Outcome {
    put(&*b, "k", b"one").await?;
    ensure_eq!(
        b.get("k").await.ctx("get")?,
        Some(b"one".to_vec()),
        "read your write"
    );
    put(&*b, "k", b"two!").await?;
    ensure_eq!(
        b.get("k").await.ctx("get")?,
        Some(b"two!".to_vec()),
        "overwrite"
    );
    Ok(())
}

async fn empty_value_is_some_empty(b: Arc<dyn Bucket>) -> Outcome {
    put(&*b, "empty", b"").await?;
    ensure_eq!(
        b.get("empty").await.ctx("get")?,
        Some(vec![]),
        "an empty value is some([]), not none"
    );
    ensure_eq!(
        b.exists("empty").await.ctx("exists")?,
        true,
        "an empty value exists"
    );
    Ok(())
}

async fn all_byte_values_roundtrip(b: Arc<dyn Bucket>) -> Outcome {
    let value: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    put(&*b, "bytes", &value).await?;
    ensure_eq!(
        b.get("bytes").await.ctx("get")?,
        Some(value),
        "all byte values"
    );
    Ok(())
}

async fn large_value_roundtrip(b: Arc<dyn Bucket>) -> Outcome {
    let size = b
        .capabilities()
        .max_value_bytes
        .map_or(4 << 20, |max| max.min(4 << 20));
    let value: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
    put(&*b, "large", &value).await?;
    let got = b.get("large").await.ctx("get")?;
    ensure!(
        got.as_deref() == Some(&value[..]),
        "a {size}-byte value did not round-trip"
    );
    Ok(())
}

async fn value_over_limit_is_too_large_and_unchanged(b: Arc<dyn Bucket>) -> Outcome {
    let Some(max) = b.capabilities().max_value_bytes else {
        return Ok(()); // no declared limit: nothing to check
    };
    put(&*b, "k", b"before").await?;
    let err = b
        .set("k", vec![7u8; max + 1], WriteCondition::Always)
        .await
        .err()
        .ok_or_else(|| {
            format!(
                "a value of {} bytes was accepted over the declared limit {max}",
                max + 1
            )
        })?;
    ensure_eq!(
        err.kind(),
        ErrorKind::TooLarge,
        "error kind for an oversized value ({err})"
    );
    ensure!(
        err.to_string().contains(&max.to_string()),
        "the error names the limit: {err}"
    );
    ensure_eq!(
        b.get("k").await.ctx("get")?,
        Some(b"before".to_vec()),
        "value unchanged"
    );
    Ok(())
}

async fn key_corpus_roundtrip(b: Arc<dyn Bucket>) -> Outcome {
    for (i, key) in corpus().iter().enumerate() {
        let value = format!("value-{i}").into_bytes();
        put(&*b, key, &value).await?;
        ensure_eq!(
            b.get(key).await.ctx("get")?,
            Some(value),
            "get of corpus key {key:?}"
        );
        ensure!(
            b.exists(key).await.ctx("exists")?,
            "exists of corpus key {key:?}"
        );
    }
    // Distinct keys stay distinct: nothing overwrote anything.
    for (i, key) in corpus().iter().enumerate() {
        let value = format!("value-{i}").into_bytes();
        ensure_eq!(
            b.get(key).await.ctx("get")?,
            Some(value),
            "corpus key {key:?} after all writes"
        );
    }
    for key in corpus() {
        b.delete(&key).await.ctx("delete")?;
        ensure!(
            !b.exists(&key).await.ctx("exists")?,
            "corpus key {key:?} after delete"
        );
    }
    Ok(())
}

async fn key_corpus_listed_unchanged(b: Arc<dyn Bucket>) -> Outcome {
    let keys = corpus();
    for key in &keys {
        put(&*b, key, b"v").await?;
    }
    let mut listed = list_all(&*b, 7).await?;
    listed.sort();
    let mut expected = keys.clone();
    expected.sort();
    ensure_eq!(
        listed,
        expected,
        "list-keys returns the original corpus keys exactly once"
    );
    Ok(())
}

async fn delete_missing_is_ok_and_delete_removes(b: Arc<dyn Bucket>) -> Outcome {
    b.delete("never-there")
        .await
        .ctx("delete of a missing key")?;
    put(&*b, "k", b"v").await?;
    b.delete("k").await.ctx("delete")?;
    ensure_eq!(b.get("k").await.ctx("get")?, None, "get after delete");
    ensure!(!b.exists("k").await.ctx("exists")?, "exists after delete");
    b.delete("k").await.ctx("second delete")?;
    Ok(())
}

async fn list_empty_bucket(b: Arc<dyn Bucket>) -> Outcome {
    let page = b.list(None, 100).await.ctx("list")?;
    ensure!(
        page.keys.is_empty(),
        "an empty bucket lists {:?}",
        page.keys
    );
    ensure!(page.next.is_none(), "an empty bucket returned a cursor");
    Ok(())
}

async fn list_pages_exactly_once(b: Arc<dyn Bucket>) -> Outcome {
    let expected: Vec<String> = (0..250).map(|i| format!("key-{i:03}-{}", i % 7)).collect();
    for key in &expected {
        put(&*b, key, b"v").await?;
    }
    for limit in [1, 7, 100, 1000] {
        let listed = list_all(&*b, limit).await?;
        let distinct: HashSet<&String> = listed.iter().collect();
        ensure_eq!(
            distinct.len(),
            listed.len(),
            "no key repeated across pages (limit {limit})"
        );
        let mut sorted = listed.clone();
        sorted.sort();
        ensure_eq!(sorted, expected, "every key listed once (limit {limit})");
    }
    Ok(())
}

async fn list_malformed_cursor_is_clean_error(b: Arc<dyn Bucket>) -> Outcome {
    put(&*b, "a", b"v").await?;
    for token in [&b"\xff\xfe\x00garbage"[..], b"", b"\x00"] {
        match b.list(Some(token), 10).await {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::InvalidCursor => {}
            Err(e) => {
                return Err(format!(
                    "a malformed cursor must be invalid-cursor, got {e}"
                ));
            }
        }
    }
    Ok(())
}

async fn versioned_get_matches_get(b: Arc<dyn Bucket>) -> Outcome {
    put(&*b, "k", b"v1").await?;
    let v = b
        .get_versioned("k")
        .await
        .ctx("get_versioned")?
        .ok_or("missing after set")?;
    ensure_eq!(v.value, b"v1".to_vec(), "versioned value");
    let again = b
        .get_versioned("k")
        .await
        .ctx("get_versioned")?
        .ok_or("missing")?;
    ensure_eq!(
        again.version,
        v.version,
        "the version is stable while nothing writes"
    );
    Ok(())
}

async fn cas_create_if_absent(b: Arc<dyn Bucket>) -> Outcome {
    let first = b
        .set("k", b"first".to_vec(), WriteCondition::IfAbsent)
        .await
        .ctx("create")?;
    ensure_eq!(
        first,
        WriteOutcome::Written,
        "create-if-absent on a missing key"
    );
    let second = b
        .set("k", b"second".to_vec(), WriteCondition::IfAbsent)
        .await
        .ctx("create")?;
    ensure_eq!(
        second,
        WriteOutcome::ConditionFailed,
        "create-if-absent on an existing key"
    );
    ensure_eq!(
        b.get("k").await.ctx("get")?,
        Some(b"first".to_vec()),
        "value unchanged"
    );
    put(&*b, "empty", b"").await?;
    let on_empty = b
        .set("empty", b"x".to_vec(), WriteCondition::IfAbsent)
        .await
        .ctx("create")?;
    ensure_eq!(
        on_empty,
        WriteOutcome::ConditionFailed,
        "an empty value is present"
    );
    Ok(())
}

async fn cas_if_version_succeeds_when_unchanged(b: Arc<dyn Bucket>) -> Outcome {
    put(&*b, "k", b"v1").await?;
    let v = b.get_versioned("k").await.ctx("get")?.ok_or("missing")?;
    let out = b
        .set(
            "k",
            b"v2".to_vec(),
            WriteCondition::IfVersion(v.version.clone()),
        )
        .await
        .ctx("swap")?;
    ensure_eq!(out, WriteOutcome::Written, "swap with a fresh version");
    ensure_eq!(
        b.get("k").await.ctx("get")?,
        Some(b"v2".to_vec()),
        "swapped value"
    );
    let again = b
        .set("k", b"v3".to_vec(), WriteCondition::IfVersion(v.version))
        .await
        .ctx("swap")?;
    ensure_eq!(
        again,
        WriteOutcome::ConditionFailed,
        "a version is used up by its swap"
    );
    Ok(())
}

async fn stale_swap_fails(b: &dyn Bucket, stale: Version, what: &str) -> Outcome {
    let before = b.get("k").await.ctx("get")?;
    let out = b
        .set(
            "k",
            b"stale-write".to_vec(),
            WriteCondition::IfVersion(stale),
        )
        .await
        .ctx("swap")?;
    ensure_eq!(
        out,
        WriteOutcome::ConditionFailed,
        "swap with a version stale {what}"
    );
    ensure_eq!(
        b.get("k").await.ctx("get")?,
        before,
        "value unchanged by the failed swap"
    );
    Ok(())
}

async fn cas_stale_after_update(b: Arc<dyn Bucket>) -> Outcome {
    put(&*b, "k", b"v1").await?;
    let v = b.get_versioned("k").await.ctx("get")?.ok_or("missing")?;
    put(&*b, "k", b"v2").await?;
    stale_swap_fails(&*b, v.version, "after an update").await
}

async fn cas_stale_after_same_bytes_update(b: Arc<dyn Bucket>) -> Outcome {
    put(&*b, "k", b"same").await?;
    let v = b.get_versioned("k").await.ctx("get")?.ok_or("missing")?;
    put(&*b, "k", b"same").await?;
    stale_swap_fails(&*b, v.version, "after a write of the same bytes (ABA)").await
}

async fn cas_stale_after_delete(b: Arc<dyn Bucket>) -> Outcome {
    put(&*b, "k", b"v1").await?;
    let v = b.get_versioned("k").await.ctx("get")?.ok_or("missing")?;
    b.delete("k").await.ctx("delete")?;
    stale_swap_fails(&*b, v.version, "after a delete").await?;
    ensure_eq!(
        b.get("k").await.ctx("get")?,
        None,
        "a failed swap does not re-create"
    );
    Ok(())
}

async fn cas_stale_after_delete_and_recreate(b: Arc<dyn Bucket>) -> Outcome {
    put(&*b, "k", b"v1").await?;
    let v = b.get_versioned("k").await.ctx("get")?.ok_or("missing")?;
    b.delete("k").await.ctx("delete")?;
    put(&*b, "k", b"v1").await?;
    stale_swap_fails(
        &*b,
        v.version,
        "after delete and re-create with the same bytes",
    )
    .await
}

async fn cas_create_if_absent_race_has_one_winner(b: Arc<dyn Bucket>) -> Outcome {
    for round in 0..5 {
        let key = format!("race-{round}");
        let mut tasks = Vec::new();
        for i in 0..8u8 {
            let b = b.clone();
            let key = key.clone();
            tasks.push(tokio::spawn(async move {
                b.set(&key, vec![i], WriteCondition::IfAbsent).await
            }));
        }
        let mut winners = Vec::new();
        for (i, t) in tasks.into_iter().enumerate() {
            if t.await.map_err(|e| e.to_string())?.ctx("create")? == WriteOutcome::Written {
                winners.push(i as u8);
            }
        }
        ensure_eq!(
            winners.len(),
            1,
            "create-if-absent winners in round {round}"
        );
        ensure_eq!(
            b.get(&key).await.ctx("get")?,
            Some(vec![winners[0]]),
            "the winner's value"
        );
    }
    Ok(())
}

async fn cas_concurrent_append_loses_nothing(b: Arc<dyn Bucket>) -> Outcome {
    const WRITERS: usize = 8;
    const APPENDS: usize = 25;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let b = b.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..APPENDS {
                let token = format!("{w}.{n};");
                let mut attempts = 0u32;
                loop {
                    attempts += 1;
                    if attempts > 10_000 {
                        return Err("a CAS loop made no progress in 10000 attempts".to_string());
                    }
                    let current = b.get_versioned("log").await.ctx("get")?;
                    let (mut value, condition) = match current {
                        Some(v) => (v.value, WriteCondition::IfVersion(v.version)),
                        None => (Vec::new(), WriteCondition::IfAbsent),
                    };
                    value.extend_from_slice(token.as_bytes());
                    if b.set("log", value, condition).await.ctx("swap")? == WriteOutcome::Written {
                        break;
                    }
                    tokio::time::sleep(Duration::from_micros(50 * u64::from(attempts.min(20))))
                        .await;
                }
            }
            Ok::<(), String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    let log = b.get("log").await.ctx("get")?.ok_or("log missing")?;
    let log = String::from_utf8(log).map_err(|e| e.to_string())?;
    let tokens: Vec<&str> = log.split_terminator(';').collect();
    let distinct: HashSet<&str> = tokens.iter().copied().collect();
    ensure_eq!(
        tokens.len(),
        WRITERS * APPENDS,
        "appended tokens (none lost)"
    );
    ensure_eq!(
        distinct.len(),
        WRITERS * APPENDS,
        "distinct tokens (none duplicated)"
    );
    Ok(())
}

async fn increment_missing_creates_delta(b: Arc<dyn Bucket>) -> Outcome {
    ensure_eq!(
        b.increment("c", 5).await.ctx("increment")?,
        5,
        "increment of a missing key"
    );
    ensure_eq!(
        b.get("c").await.ctx("get")?,
        Some(b"5".to_vec()),
        "stored as decimal text"
    );
    ensure_eq!(
        b.increment("c", -14).await.ctx("increment")?,
        -9,
        "negative delta"
    );
    ensure_eq!(
        b.get("c").await.ctx("get")?,
        Some(b"-9".to_vec()),
        "negative decimal text"
    );
    ensure_eq!(
        b.increment("c", 0).await.ctx("increment")?,
        -9,
        "zero delta"
    );
    ensure_eq!(
        b.increment("z", 0).await.ctx("increment")?,
        0,
        "zero delta on a missing key"
    );
    ensure_eq!(
        b.get("z").await.ctx("get")?,
        Some(b"0".to_vec()),
        "created by a zero delta"
    );
    Ok(())
}

async fn increment_decimal_value_written_by_set(b: Arc<dyn Bucket>) -> Outcome {
    put(&*b, "c", b"41").await?;
    ensure_eq!(
        b.increment("c", 1).await.ctx("increment")?,
        42,
        "increment of a set value"
    );
    put(&*b, "n", b"-5").await?;
    ensure_eq!(
        b.increment("n", 2).await.ctx("increment")?,
        -3,
        "increment of a negative value"
    );
    put(&*b, "lead", b"007").await?;
    ensure_eq!(
        b.increment("lead", 1).await.ctx("increment")?,
        8,
        "leading zeros are decimal"
    );
    ensure_eq!(
        b.get("lead").await.ctx("get")?,
        Some(b"8".to_vec()),
        "re-rendered"
    );
    Ok(())
}

async fn increment_overflow_is_error_and_unchanged(b: Arc<dyn Bucket>) -> Outcome {
    put(&*b, "max", i64::MAX.to_string().as_bytes()).await?;
    let err = b
        .increment("max", 1)
        .await
        .err()
        .ok_or("i64::MAX + 1 succeeded")?;
    ensure_eq!(
        err.kind(),
        ErrorKind::InvalidValue,
        "overflow error kind ({err})"
    );
    ensure_eq!(
        b.get("max").await.ctx("get")?,
        Some(i64::MAX.to_string().into_bytes()),
        "unchanged after overflow"
    );
    b.increment("min", i64::MIN)
        .await
        .ctx("increment to i64::MIN")?;
    let err = b
        .increment("min", -1)
        .await
        .err()
        .ok_or("i64::MIN - 1 succeeded")?;
    ensure_eq!(
        err.kind(),
        ErrorKind::InvalidValue,
        "underflow error kind ({err})"
    );
    ensure_eq!(
        b.get("min").await.ctx("get")?,
        Some(i64::MIN.to_string().into_bytes()),
        "unchanged after underflow"
    );
    Ok(())
}

async fn increment_non_numeric_is_error_and_unchanged(b: Arc<dyn Bucket>) -> Outcome {
    let bad: [&[u8]; 9] = [
        b"abc",
        b"+1",
        b" 1",
        b"1 ",
        b"1.5",
        b"",
        b"\xff\x00\x01",
        b"9223372036854775808",
        b"-",
    ];
    for (i, value) in bad.iter().enumerate() {
        let key = format!("bad-{i}");
        put(&*b, &key, value).await?;
        let err = b
            .increment(&key, 1)
            .await
            .err()
            .ok_or_else(|| format!("increment of {value:?} succeeded"))?;
        ensure_eq!(
            err.kind(),
            ErrorKind::InvalidValue,
            "increment of {value:?} ({err})"
        );
        ensure_eq!(
            b.get(&key).await.ctx("get")?,
            Some(value.to_vec()),
            "{value:?} unchanged"
        );
    }
    Ok(())
}

/// Counters past 2^53 (where a double loses integers) come back exact, in
/// the returned value and in the stored text.
async fn increment_keeps_all_64_bits(b: Arc<dyn Bucket>) -> Outcome {
    for (start, delta, expected) in [
        (9_007_199_254_740_990i64, 5i64, 9_007_199_254_740_995i64),
        (-9_007_199_254_740_990, -5, -9_007_199_254_740_995),
        (i64::MAX - 10, 3, i64::MAX - 7),
    ] {
        put(&*b, "wide", start.to_string().as_bytes()).await?;
        ensure_eq!(
            b.increment("wide", delta).await.ctx("increment")?,
            expected,
            "{start} + {delta}"
        );
        ensure_eq!(
            b.get("wide").await.ctx("get")?,
            Some(expected.to_string().into_bytes()),
            "stored {start} + {delta}"
        );
    }
    Ok(())
}

/// A bucket's synchronous calls ([`Bucket::immediate`], in-process stores)
/// and its async calls see and make the same state, and refuse the same
/// things. Buckets without synchronous calls have nothing to agree on.
async fn immediate_calls_agree_with_async_calls(b: Arc<dyn Bucket>) -> Outcome {
    let Some(now) = b.immediate() else {
        return Ok(());
    };
    now.set("a".into(), b"1".to_vec()).ctx("immediate set")?;
    ensure_eq!(
        b.get("a").await.ctx("get")?,
        Some(b"1".to_vec()),
        "async get after immediate set"
    );
    put(&*b, "a", b"2").await?;
    ensure_eq!(
        now.get("a").ctx("immediate get")?,
        Some(b"2".to_vec()),
        "immediate get after async set"
    );
    ensure!(
        now.exists("a").ctx("immediate exists")?,
        "immediate exists of a present key"
    );
    // A set through the synchronous side is a new version.
    let before = b.get_versioned("a").await.ctx("versioned get")?;
    now.set("a".into(), b"2".to_vec())
        .ctx("immediate set, same bytes")?;
    if b.capabilities().cas.is_available() {
        let version = before.ok_or("a is missing")?.version;
        ensure_eq!(
            b.set("a", b"3".to_vec(), WriteCondition::IfVersion(version))
                .await
                .ctx("swap")?,
            WriteOutcome::ConditionFailed,
            "a swap on the version read before an immediate set of the same bytes"
        );
    }
    ensure_eq!(
        now.increment_at_least("n", 5, i64::MIN)
            .ctx("immediate increment")?,
        5,
        "new counter"
    );
    ensure_eq!(
        b.increment("n", 2).await.ctx("increment")?,
        7,
        "async increment after immediate"
    );
    let err = now
        .increment_at_least("n", -10, 0)
        .err()
        .ok_or("7 - 10 passed a bound of 0")?;
    ensure_eq!(
        err.kind(),
        ErrorKind::InvalidValue,
        "below the bound ({err})"
    );
    now.set("a".into(), b"text".to_vec()).ctx("immediate set")?;
    let err = now
        .increment_at_least("a", 1, i64::MIN)
        .err()
        .ok_or("an increment of a non-number worked")?;
    ensure_eq!(err.kind(), ErrorKind::InvalidValue, "non-number ({err})");
    ensure_eq!(
        b.get("n").await.ctx("get")?,
        Some(b"7".to_vec()),
        "unchanged after refusals"
    );
    if let Some(max) = b.capabilities().max_value_bytes {
        let err = now
            .set("big".into(), vec![0; max + 1])
            .err()
            .ok_or("an immediate set over max_value_bytes worked")?;
        ensure_eq!(err.kind(), ErrorKind::TooLarge, "over the limit ({err})");
    }
    now.delete("a").ctx("immediate delete")?;
    ensure!(
        !b.exists("a").await.ctx("exists")?,
        "a after an immediate delete"
    );
    now.delete("a").ctx("immediate delete of a missing key")?;
    Ok(())
}

/// `increment_at_least` as declared: with `bounded_increment`, a new counter
/// below the bound is `invalid-value` and the value is unchanged (the
/// 0.2.0-draft `u64` case); without it, `unsupported`.
async fn increment_at_least_refuses_below_the_bound(b: Arc<dyn Bucket>) -> Outcome {
    put(&*b, "n", b"-10").await?;
    if !b.capabilities().bounded_increment {
        let err = b
            .increment_at_least("n", 5, 0)
            .await
            .err()
            .ok_or("increment_at_least worked but bounded_increment is not declared")?;
        ensure_eq!(err.kind(), ErrorKind::Unsupported, "undeclared ({err})");
        return Ok(());
    }
    let err = b
        .increment_at_least("n", 5, 0)
        .await
        .err()
        .ok_or("-10 + 5 passed a bound of 0")?;
    ensure_eq!(
        err.kind(),
        ErrorKind::InvalidValue,
        "below the bound ({err})"
    );
    ensure_eq!(
        b.get("n").await.ctx("get")?,
        Some(b"-10".to_vec()),
        "unchanged below the bound"
    );
    ensure_eq!(
        b.increment_at_least("n", 15, 0).await.ctx("-10 + 15")?,
        5,
        "within the bound"
    );
    ensure_eq!(
        b.increment_at_least("fresh", 7, 0)
            .await
            .ctx("missing + 7")?,
        7,
        "a missing key"
    );
    let err = b
        .increment_at_least("fresh-neg", -1, 0)
        .await
        .err()
        .ok_or("a missing key + -1 passed a bound of 0")?;
    ensure_eq!(err.kind(), ErrorKind::InvalidValue, "missing below ({err})");
    ensure_eq!(
        b.get("fresh-neg").await.ctx("get")?,
        None,
        "nothing created below the bound"
    );
    Ok(())
}

async fn increment_concurrent_is_exact(b: Arc<dyn Bucket>) -> Outcome {
    const TASKS: i64 = 8;
    const EACH: i64 = 50;
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let b = b.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..EACH {
                b.increment("hits", 1).await?;
            }
            crate::Result::Ok(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())?.ctx("increment")?;
    }
    ensure_eq!(
        b.get("hits").await.ctx("get")?,
        Some((TASKS * EACH).to_string().into_bytes()),
        "final counter"
    );
    Ok(())
}

async fn get_many_order_holes_and_repeats(b: Arc<dyn Bucket>) -> Outcome {
    put(&*b, "a", b"1").await?;
    put(&*b, "b", b"").await?;
    put(&*b, "c", b"3").await?;
    let keys: Vec<String> = ["c", "missing", "a", "b", "a", "missing"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let got = b.get_many(&keys).await.ctx("get_many")?;
    let expected = vec![
        Some(b"3".to_vec()),
        None,
        Some(b"1".to_vec()),
        Some(vec![]),
        Some(b"1".to_vec()),
        None,
    ];
    ensure_eq!(got, expected, "one entry per requested position");
    ensure_eq!(
        b.get_many(&[]).await.ctx("get_many of nothing")?,
        Vec::<Option<Vec<u8>>>::new(),
        "empty request"
    );
    Ok(())
}

async fn set_many_and_delete_many(b: Arc<dyn Bucket>) -> Outcome {
    let limit = b.capabilities().write_batch_limit().unwrap_or(50).min(50);
    let items: Vec<(String, Vec<u8>)> = (0..limit)
        .map(|i| (format!("m{i}"), format!("v{i}").into_bytes()))
        .collect();
    b.set_many(items.clone()).await.ctx("set_many")?;
    let keys: Vec<String> = items.iter().map(|(k, _)| k.clone()).collect();
    let got = b.get_many(&keys).await.ctx("get_many")?;
    let expected: Vec<Option<Vec<u8>>> = items.iter().map(|(_, v)| Some(v.clone())).collect();
    ensure_eq!(got, expected, "values after set_many");
    let (gone, kept) = keys.split_at(keys.len() / 2);
    let mut to_delete = gone.to_vec();
    to_delete.push("never-there".into());
    b.delete_many(&to_delete).await.ctx("delete_many")?;
    for key in gone {
        ensure_eq!(
            b.get(key).await.ctx("get")?,
            None,
            "{key} after delete_many"
        );
    }
    for key in kept {
        ensure!(
            b.get(key).await.ctx("get")?.is_some(),
            "{key} must survive delete_many of others"
        );
    }
    b.set_many(Vec::new()).await.ctx("set_many of nothing")?;
    b.delete_many(&[]).await.ctx("delete_many of nothing")?;
    Ok(())
}

async fn batch_repeated_keys_last_wins(b: Arc<dyn Bucket>) -> Outcome {
    let items = vec![
        ("a".to_string(), b"1".to_vec()),
        ("b".to_string(), b"x".to_vec()),
        ("a".to_string(), b"2".to_vec()),
        ("a".to_string(), b"3".to_vec()),
    ];
    b.set_many(items)
        .await
        .ctx("set_many with a repeated key")?;
    ensure_eq!(
        b.get("a").await.ctx("get")?,
        Some(b"3".to_vec()),
        "the last occurrence wins"
    );
    ensure_eq!(
        b.get("b").await.ctx("get")?,
        Some(b"x".to_vec()),
        "other keys written"
    );
    b.delete_many(&["a".into(), "a".into(), "b".into()])
        .await
        .ctx("delete_many with a repeated key")?;
    ensure_eq!(b.get("a").await.ctx("get")?, None, "deleted");
    Ok(())
}

async fn batch_over_store_limit_is_chunked(b: Arc<dyn Bucket>) -> Outcome {
    let n = b.capabilities().max_batch_items.unwrap_or(100).min(1000) * 2 + 3;
    let items: BTreeMap<String, Vec<u8>> = (0..n)
        .map(|i| (format!("bulk-{i:05}"), i.to_string().into_bytes()))
        .collect();
    b.set_many(items.clone().into_iter().collect())
        .await
        .ctx(&format!("set_many of {n}"))?;
    let keys: Vec<String> = items.keys().cloned().collect();
    let got = b.get_many(&keys).await.ctx(&format!("get_many of {n}"))?;
    let expected: Vec<Option<Vec<u8>>> = items.values().cloned().map(Some).collect();
    ensure!(
        got == expected,
        "get_many of {n} keys returned other values"
    );
    b.delete_many(&keys)
        .await
        .ctx(&format!("delete_many of {n}"))?;
    let after = b.get_many(&keys).await.ctx("get_many")?;
    ensure!(after.iter().all(Option::is_none), "every key deleted");
    Ok(())
}

/// A watch started before the writes sees each of them, in order per key.
async fn watch_sees_every_change_in_order(b: Arc<dyn Bucket>) -> Outcome {
    use futures::StreamExt;
    let mut changes = b.watch().await.ctx("watch")?;
    put(&*b, "a", b"1").await?;
    put(&*b, "b", b"x").await?;
    put(&*b, "a", b"2").await?;
    b.delete("a").await.ctx("delete")?;
    let expected = vec![
        Change::Set {
            key: "a".into(),
            value: b"1".to_vec(),
        },
        Change::Set {
            key: "a".into(),
            value: b"2".to_vec(),
        },
        Change::Delete { key: "a".into() },
        Change::Set {
            key: "b".into(),
            value: b"x".to_vec(),
        },
    ];
    let mut seen: Vec<Change> = Vec::new();
    while seen.len() < expected.len() {
        let next = tokio::time::timeout(std::time::Duration::from_secs(20), changes.next())
            .await
            .map_err(|_| format!("only {} of 4 changes arrived: {seen:?}", seen.len()))?;
        match next {
            Some(change) => seen.push(change.ctx("change stream")?),
            None => return Err(format!("the change stream ended after {seen:?}")),
        }
    }
    // In order per key; the two keys may interleave.
    seen.sort_by(|x, y| x.key().cmp(y.key()));
    ensure_eq!(seen, expected, "changes per key");
    Ok(())
}

/// Deterministic bytes of `len` whose every position depends on `seed`, so
/// that a chunk of one value in another is seen.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            ((i as u64)
                .wrapping_mul(31)
                .wrapping_add(u64::from(seed) * 97)
                % 251) as u8
        })
        .collect()
}

/// The largest value the cases write: the bucket's limit, at most 16 MiB.
fn largest(b: &dyn Bucket) -> usize {
    b.capabilities()
        .max_value_bytes
        .unwrap_or(16 << 20)
        .min(16 << 20)
}

/// Sizes around the store's own limit (where values start to be chunked),
/// 3 MB and the largest value, each at most [`largest`].
fn large_sizes(b: &dyn Bucket) -> Vec<usize> {
    let max = largest(b);
    let mut sizes = match b.capabilities().chunked_above {
        Some(n) => vec![n - 1, n, n + 1, 2 * n + 7],
        None => vec![1 << 20],
    };
    sizes.extend([3_000_000, max]);
    sizes.retain(|&s| s <= max);
    sizes.dedup();
    sizes
}

/// A size that is chunked where the bucket chunks (else 3 MB or the limit).
fn one_large_size(b: &dyn Bucket) -> usize {
    let above = b.capabilities().chunked_above.unwrap_or(3_000_000);
    (2 * above + 7).min(largest(b))
}

fn same(got: &Option<Vec<u8>>, want: &[u8]) -> bool {
    got.as_deref() == Some(want)
}

async fn large_values_around_the_store_limit(b: Arc<dyn Bucket>) -> Outcome {
    let sizes = large_sizes(&*b);
    for (i, &size) in sizes.iter().enumerate() {
        let key = format!("large-{i}");
        let value = pattern(size, i as u8);
        put(&*b, &key, &value).await?;
        ensure!(
            same(&b.get(&key).await.ctx("get")?, &value),
            "a {size}-byte value did not read back byte for byte"
        );
        let versioned = b.get_versioned(&key).await.ctx("get_versioned")?;
        ensure!(
            versioned.as_ref().map(|v| &v.value[..]) == Some(&value[..]),
            "a {size}-byte value did not read back through a versioned read"
        );
        ensure!(
            b.exists(&key).await.ctx("exists")?,
            "{size}-byte value exists"
        );
    }
    // Large over small, small over large, large over large.
    let big = pattern(one_large_size(&*b), 200);
    put(&*b, "large-0", &big).await?;
    ensure!(
        same(&b.get("large-0").await.ctx("get")?, &big),
        "large over small"
    );
    put(&*b, "large-0", b"small").await?;
    ensure_eq!(
        b.get("large-0").await.ctx("get")?,
        Some(b"small".to_vec()),
        "small over large"
    );
    put(&*b, "large-1", &big).await?;
    ensure!(
        same(&b.get("large-1").await.ctx("get")?, &big),
        "large over large"
    );
    for i in 0..sizes.len() {
        let key = format!("large-{i}");
        b.delete(&key).await.ctx("delete")?;
        ensure_eq!(b.get(&key).await.ctx("get")?, None, "{key} after delete");
        ensure!(
            !b.exists(&key).await.ctx("exists")?,
            "{key} exists after delete"
        );
    }
    // Over the bucket's limit: refused, value unchanged.
    if let Some(max) = b.capabilities().max_value_bytes.filter(|&m| m <= 16 << 20) {
        put(&*b, "k", b"before").await?;
        let err = b.set("k", vec![1; max + 1], WriteCondition::Always).await;
        ensure!(
            err.as_ref().is_err_and(|e| e.kind() == ErrorKind::TooLarge),
            "a value over the bucket's limit of {max}: {err:?}"
        );
        ensure_eq!(
            b.get("k").await.ctx("get")?,
            Some(b"before".to_vec()),
            "unchanged"
        );
    }
    Ok(())
}

async fn values_that_look_like_manifests_roundtrip(b: Arc<dyn Bucket>) -> Outcome {
    let magic = crate::chunks::MAGIC;
    let large = one_large_size(&*b);
    let values = [
        magic.to_vec(),
        [magic, b"i"].concat(),
        [magic, b"c\x01garbage"].concat(),
        [magic, &pattern(large - magic.len(), 3)].concat(),
    ];
    for (i, value) in values.iter().enumerate() {
        for key in [format!("\0magic-{i}"), format!("magic-{i}")] {
            put(&*b, &key, value).await?;
            ensure!(
                same(&b.get(&key).await.ctx("get")?, value),
                "a {}-byte value starting like a manifest under {key:?}",
                value.len()
            );
        }
    }
    for i in 0..values.len() {
        b.delete(&format!("\0magic-{i}")).await.ctx("delete")?;
        b.delete(&format!("magic-{i}")).await.ctx("delete")?;
    }
    Ok(())
}

async fn large_value_cas_keeps_no_aba(b: Arc<dyn Bucket>) -> Outcome {
    let size = one_large_size(&*b);
    let (v1, v2, v3) = (pattern(size, 1), pattern(size, 2), pattern(size + 1, 3));
    // Create-if-absent of a large value: once.
    let created = b
        .set("cas", v1.clone(), WriteCondition::IfAbsent)
        .await
        .ctx("create large")?;
    ensure_eq!(
        created,
        WriteOutcome::Written,
        "create-if-absent of a large value"
    );
    let again = b
        .set("cas", v2.clone(), WriteCondition::IfAbsent)
        .await
        .ctx("create again")?;
    ensure_eq!(
        again,
        WriteOutcome::ConditionFailed,
        "second create-if-absent"
    );
    ensure!(
        same(&b.get("cas").await.ctx("get")?, &v1),
        "value after a failed create"
    );
    // A swap at the read version wins; the same handle is then stale.
    let read = b
        .get_versioned("cas")
        .await
        .ctx("read")?
        .ok_or("large value missing")?;
    ensure!(read.value == v1, "versioned read of a large value");
    let swapped = b
        .set(
            "cas",
            v2.clone(),
            WriteCondition::IfVersion(read.version.clone()),
        )
        .await
        .ctx("swap")?;
    ensure_eq!(swapped, WriteOutcome::Written, "swap at the read version");
    let stale = b
        .set(
            "cas",
            v3.clone(),
            WriteCondition::IfVersion(read.version.clone()),
        )
        .await
        .ctx("stale swap")?;
    ensure_eq!(
        stale,
        WriteOutcome::ConditionFailed,
        "a stale swap of a large value"
    );
    ensure!(
        same(&b.get("cas").await.ctx("get")?, &v2),
        "value after a stale swap"
    );
    // Same bytes rewritten: still a new version (no ABA).
    let read = b.get_versioned("cas").await.ctx("read")?.ok_or("missing")?;
    put(&*b, "cas", &v2).await?;
    let aba = b
        .set(
            "cas",
            v3.clone(),
            WriteCondition::IfVersion(read.version.clone()),
        )
        .await
        .ctx("swap after same-bytes write")?;
    ensure_eq!(
        aba,
        WriteOutcome::ConditionFailed,
        "swap after the same large bytes were written"
    );
    // Delete and re-create: the old version stays stale.
    let read = b.get_versioned("cas").await.ctx("read")?.ok_or("missing")?;
    b.delete("cas").await.ctx("delete")?;
    put(&*b, "cas", &v2).await?;
    let recreated = b
        .set("cas", v3.clone(), WriteCondition::IfVersion(read.version))
        .await
        .ctx("swap after delete and re-create")?;
    ensure_eq!(
        recreated,
        WriteOutcome::ConditionFailed,
        "swap after delete + re-create"
    );
    // Large to small and back by CAS.
    let read = b.get_versioned("cas").await.ctx("read")?.ok_or("missing")?;
    let small = b
        .set(
            "cas",
            b"small".to_vec(),
            WriteCondition::IfVersion(read.version),
        )
        .await
        .ctx("swap to small")?;
    ensure_eq!(
        small,
        WriteOutcome::Written,
        "swap of a large value to a small one"
    );
    let read = b.get_versioned("cas").await.ctx("read")?.ok_or("missing")?;
    let large = b
        .set("cas", v3.clone(), WriteCondition::IfVersion(read.version))
        .await
        .ctx("swap to large")?;
    ensure_eq!(
        large,
        WriteOutcome::Written,
        "swap of a small value to a large one"
    );
    ensure!(
        same(&b.get("cas").await.ctx("get")?, &v3),
        "final large value"
    );
    b.delete("cas").await.ctx("delete")?;
    Ok(())
}

async fn large_value_increment_is_non_numeric_and_unchanged(b: Arc<dyn Bucket>) -> Outcome {
    let value = pattern(one_large_size(&*b), 5);
    put(&*b, "n", &value).await?;
    let err = b.increment("n", 1).await;
    ensure!(
        err.as_ref()
            .is_err_and(|e| e.kind() == ErrorKind::InvalidValue),
        "increment of a large value: {err:?}"
    );
    ensure!(
        same(&b.get("n").await.ctx("get")?, &value),
        "large value unchanged by increment"
    );
    b.delete("n").await.ctx("delete")?;
    Ok(())
}

async fn large_values_in_batches(b: Arc<dyn Bucket>) -> Outcome {
    let size = one_large_size(&*b);
    let (l1, l2) = (pattern(size, 11), pattern(size - 1, 12));
    let items = vec![
        ("s1".to_string(), b"one".to_vec()),
        ("l1".to_string(), l2.clone()),
        ("l2".to_string(), l2.clone()),
        ("s2".to_string(), b"two".to_vec()),
        ("l1".to_string(), l1.clone()), // repeated: the last wins
    ];
    b.set_many(items).await.ctx("set-many with large values")?;
    let keys: Vec<String> = ["l1", "s1", "missing", "l2", "s2", "l1"]
        .map(String::from)
        .to_vec();
    let got = b.get_many(&keys).await.ctx("get-many with large values")?;
    ensure_eq!(got.len(), keys.len(), "one entry per requested key");
    ensure!(
        same(&got[0], &l1) && same(&got[5], &l1),
        "large value in get-many (repeated)"
    );
    ensure!(same(&got[3], &l2), "second large value in get-many");
    ensure_eq!(got[1], Some(b"one".to_vec()), "small value in get-many");
    ensure_eq!(got[2], None, "missing key in get-many");
    // Replace a large value by a small one in a batch, then delete all.
    b.set_many(vec![("l2".to_string(), b"now small".to_vec())])
        .await
        .ctx("set-many small over large")?;
    ensure_eq!(
        b.get("l2").await.ctx("get")?,
        Some(b"now small".to_vec()),
        "small over large"
    );
    b.delete_many(&keys).await.ctx("delete-many")?;
    let after = b.get_many(&keys).await.ctx("get-many after delete")?;
    ensure!(after.iter().all(Option::is_none), "every key deleted");
    Ok(())
}

async fn large_values_list_only_guest_keys(b: Arc<dyn Bucket>) -> Outcome {
    let size = one_large_size(&*b);
    let keys = ["a-large", "\0nul-large", "b-small", "\0", "c-large"];
    for (i, key) in keys.iter().enumerate() {
        let value = if key.contains("large") {
            pattern(size, i as u8)
        } else {
            b"x".to_vec()
        };
        put(&*b, key, &value).await?;
    }
    let mut listed = list_all(&*b, 3).await?;
    listed.sort();
    let mut expected: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    expected.sort();
    ensure_eq!(
        listed,
        expected,
        "list-keys returns the guests' keys only, each once"
    );
    for key in keys {
        b.delete(key).await.ctx("delete")?;
    }
    ensure_eq!(
        list_all(&*b, 3).await?,
        Vec::<String>::new(),
        "nothing listed after deletes"
    );
    Ok(())
}

async fn large_value_readers_see_whole_values(b: Arc<dyn Bucket>) -> Outcome {
    let size = one_large_size(&*b);
    let values: Arc<Vec<Vec<u8>>> = Arc::new(vec![
        pattern(size, 21),
        pattern(size + 3, 22),
        b"small".to_vec(),
        pattern(size / 2 + 1, 23),
    ]);
    put(&*b, "hot", &values[0]).await?;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..3 {
        let (b, values, done) = (b.clone(), values.clone(), done.clone());
        readers.push(tokio::spawn(async move {
            let mut reads = 0u32;
            loop {
                let stop = done.load(std::sync::atomic::Ordering::Acquire);
                let got = b.get("hot").await.ctx("concurrent get")?;
                let got = got.ok_or("the key vanished during replacements")?;
                ensure!(
                    values.contains(&got),
                    "a read of {} bytes equals none of the written values",
                    got.len()
                );
                reads += 1;
                if stop {
                    return Ok::<u32, String>(reads);
                }
                // An in-process store never returns pending: let the writers run.
                tokio::task::yield_now().await;
            }
        }));
    }
    let mut writers = Vec::new();
    for w in 0..2usize {
        let (b, values) = (b.clone(), values.clone());
        writers.push(tokio::spawn(async move {
            for i in 0..12usize {
                let value = values[(i + w) % values.len()].clone();
                b.set("hot", value, WriteCondition::Always)
                    .await
                    .ctx("concurrent set")?;
            }
            Ok::<(), String>(())
        }));
    }
    for w in writers {
        w.await.map_err(|e| e.to_string())??;
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    for r in readers {
        let reads = r.await.map_err(|e| e.to_string())??;
        ensure!(reads > 0, "a reader read nothing");
    }
    b.delete("hot").await.ctx("delete")?;
    Ok(())
}

async fn large_values_reach_watchers_whole(b: Arc<dyn Bucket>) -> Outcome {
    use futures::StreamExt;
    let mut changes = b.watch().await.ctx("watch")?;
    let large = pattern(one_large_size(&*b), 31);
    let steps: [(&str, Option<&[u8]>); 3] = [
        ("set large", Some(&large)),
        ("set small over large", Some(b"small")),
        ("delete", None),
    ];
    // One write at a time: a feed may skip a large value replaced before
    // the watcher read its chunks (a later change follows), never mix it.
    for (what, value) in steps {
        match value {
            Some(v) => put(&*b, "w", v).await?,
            None => b.delete("w").await.ctx("delete")?,
        }
        let expected = match value {
            Some(v) => Change::Set {
                key: "w".into(),
                value: v.to_vec(),
            },
            None => Change::Delete { key: "w".into() },
        };
        let next = tokio::time::timeout(Duration::from_secs(20), changes.next())
            .await
            .map_err(|_| format!("{what}: no change arrived"))?
            .ok_or_else(|| format!("{what}: the change stream ended"))?
            .ctx("change stream")?;
        ensure!(
            next == expected,
            "{what}: the watcher got a change of {:?} ({} bytes), not the one written",
            next.key(),
            match &next {
                Change::Set { value, .. } => value.len(),
                Change::Delete { .. } => 0,
            }
        );
    }
    Ok(())
}

/// The latest time a key written (acknowledged) at `written` may still be
/// read: `written` + the suite's `ttl` + the bucket's declared expiry
/// resolution, plus a margin for a store whose clock is not this one's.
fn latest_expiry(b: &dyn Bucket, written: Instant) -> Instant {
    let resolution = b.capabilities().expiry.resolution().unwrap_or_default();
    written + super::TTL + resolution + Duration::from_millis(250)
}

async fn sleep_until(at: Instant) {
    tokio::time::sleep(at.saturating_duration_since(Instant::now())).await;
}

/// Every read path finds nothing at `key`.
async fn absent_everywhere(b: &dyn Bucket, keys: &[&str]) -> Outcome {
    for key in keys {
        ensure_eq!(b.get(key).await.ctx("get")?, None, "get of expired {key:?}");
        ensure!(
            b.get_versioned(key).await.ctx("get_versioned")?.is_none(),
            "versioned get of expired {key:?} found it"
        );
        ensure!(
            !b.exists(key).await.ctx("exists")?,
            "expired {key:?} exists"
        );
    }
    if b.capabilities().get_many.is_available() {
        let wanted: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        let got = b.get_many(&wanted).await.ctx("get-many")?;
        ensure!(
            got.iter().all(Option::is_none),
            "get-many of expired keys {keys:?} found {got:?}"
        );
    }
    if b.capabilities().list.is_available() {
        let listed = list_all(b, 1000).await?;
        ensure!(
            keys.iter().all(|k| !listed.iter().any(|l| l == k)),
            "expired keys {keys:?} listed: {listed:?}"
        );
    }
    Ok(())
}

async fn expired_keys_are_absent_on_every_read_path(b: Arc<dyn Bucket>) -> Outcome {
    put(&*b, "a", b"one").await?;
    put(&*b, "b", b"").await?;
    let written = Instant::now();
    // Not expired at once.
    ensure_eq!(
        b.get("a").await.ctx("get")?,
        Some(b"one".to_vec()),
        "get before expiry"
    );
    ensure!(b.exists("b").await.ctx("exists")?, "b absent before expiry");
    let listing = b.capabilities().list.is_available();
    if listing {
        // Large pages: a listing of a shared table page by page could
        // outlast the ttl.
        let mut listed = list_all(&*b, 1000).await?;
        listed.sort();
        ensure_eq!(
            listed,
            vec!["a".to_string(), "b".to_string()],
            "listed before expiry"
        );
    }
    sleep_until(latest_expiry(&*b, written)).await;
    absent_everywhere(&*b, &["a", "b"]).await?;
    // The key is free for a new value, which lives again.
    put(&*b, "a", b"two").await?;
    ensure_eq!(
        b.get("a").await.ctx("get")?,
        Some(b"two".to_vec()),
        "a written after expiry"
    );
    if listing {
        ensure_eq!(
            list_all(&*b, 1000).await?,
            vec!["a".to_string()],
            "listed after rewrite"
        );
    }
    Ok(())
}

async fn expired_counter_restarts(b: Arc<dyn Bucket>) -> Outcome {
    ensure_eq!(
        b.increment("n", 5).await.ctx("increment")?,
        5,
        "first increment"
    );
    let written = Instant::now();
    sleep_until(latest_expiry(&*b, written)).await;
    ensure_eq!(
        b.increment("n", 2).await.ctx("increment after expiry")?,
        2,
        "increment of an expired counter starts from the delta"
    );
    ensure_eq!(
        b.get("n").await.ctx("get")?,
        Some(b"2".to_vec()),
        "counter after restart"
    );
    Ok(())
}

async fn a_swap_against_an_expired_version_fails(b: Arc<dyn Bucket>) -> Outcome {
    put(&*b, "v", b"x").await?;
    let handle = b
        .get_versioned("v")
        .await
        .ctx("get_versioned")?
        .ok_or("v absent right after its write")?;
    let written = Instant::now();
    sleep_until(latest_expiry(&*b, written)).await;
    let swapped = b
        .set(
            "v",
            b"y".to_vec(),
            WriteCondition::IfVersion(handle.version),
        )
        .await
        .ctx("swap against an expired version")?;
    ensure_eq!(
        swapped,
        WriteOutcome::ConditionFailed,
        "swap against a version that expired"
    );
    ensure_eq!(
        b.get("v").await.ctx("get")?,
        None,
        "v after the failed swap"
    );
    // A handle read now sees absence, and creating the key succeeds.
    ensure!(
        b.get_versioned("v").await.ctx("get_versioned")?.is_none(),
        "a handle read after expiry sees a value"
    );
    let created = b
        .set("v", b"z".to_vec(), WriteCondition::IfAbsent)
        .await
        .ctx("create after expiry")?;
    ensure_eq!(
        created,
        WriteOutcome::Written,
        "create-if-absent of an expired key"
    );
    ensure_eq!(
        b.get("v").await.ctx("get")?,
        Some(b"z".to_vec()),
        "v created after expiry"
    );
    Ok(())
}

async fn a_rewrite_extends_a_keys_life(b: Arc<dyn Bucket>) -> Outcome {
    put(&*b, "k", b"first").await?;
    let first = Instant::now();
    sleep_until(first + super::TTL / 2).await;
    let rewriting = Instant::now();
    put(&*b, "k", b"second").await?;
    let second = Instant::now();
    sleep_until(latest_expiry(&*b, first)).await;
    let got = b.get("k").await.ctx("get")?;
    // The second write cannot have expired before `rewriting + TTL`; a
    // machine that stalled past it cannot tell, so only then is the check
    // left out (the absence below is checked in every run).
    if Instant::now() < rewriting + super::TTL {
        ensure_eq!(
            got,
            Some(b"second".to_vec()),
            "a key rewritten {:?} after its first write, read after the first write's expiry",
            rewriting - first
        );
    }
    sleep_until(latest_expiry(&*b, second)).await;
    absent_everywhere(&*b, &["k"]).await
}

async fn large_values_expire_whole(b: Arc<dyn Bucket>) -> Outcome {
    let len = one_large_size(&*b);
    put(&*b, "big", &pattern(len, 3)).await?;
    let written = Instant::now();
    ensure!(
        same(&b.get("big").await.ctx("get")?, &pattern(len, 3)),
        "large value before expiry"
    );
    sleep_until(latest_expiry(&*b, written)).await;
    // Absent, not an error about missing chunks; hidden keys never listed.
    absent_everywhere(&*b, &["big"]).await?;
    if b.capabilities().list.is_available() {
        ensure_eq!(
            list_all(&*b, 100).await?,
            Vec::<String>::new(),
            "keys left after expiry"
        );
    }
    Ok(())
}
