//! Redis specifics: values stay plain strings for other clients, native
//! INCRBY works on counters, and a write by another client makes a CAS swap
//! fail.

use std::sync::Arc;

use redis::AsyncCommands;
use wasikv_core::{Bucket, WriteCondition, WriteOutcome};
use wasikv_redis::core::{Connection, RedisStore};
use wasikv_redis::{RedisBucket, RedisConfig};

async fn bucket() -> (Arc<RedisBucket>, Connection, String) {
    let config = RedisConfig::for_url(wasikv_redis::testing::test_url());
    let store = RedisStore::connect(&config)
        .await
        .expect("redis at WASIKV_TEST_REDIS_URL");
    let prefix = format!("wasikv-test:interop-{:08x}:", rand::random::<u32>());
    (
        Arc::new(RedisBucket::new(store.conn.clone(), &prefix)),
        store.conn,
        prefix,
    )
}

async fn cleanup(b: &RedisBucket) {
    wasikv_core::suite::cleanup(b).await;
}

#[tokio::test]
async fn values_are_plain_strings_and_incrby_works() {
    let (b, mut raw, prefix) = bucket().await;
    b.set("greeting", b"hello".to_vec(), WriteCondition::Always)
        .await
        .unwrap();
    let plain: Vec<u8> = raw.get(format!("{prefix}greeting")).await.unwrap();
    assert_eq!(plain, b"hello");

    assert_eq!(b.increment("n", 40).await.unwrap(), 40);
    let n: i64 = raw.incr(format!("{prefix}n"), 2).await.unwrap();
    assert_eq!(n, 42);
    assert_eq!(b.get("n").await.unwrap(), Some(b"42".to_vec()));
    assert_eq!(b.increment("n", 1).await.unwrap(), 43);
    cleanup(&b).await;
}

#[tokio::test]
async fn a_conflicting_writer_makes_the_swap_fail() {
    let (b, mut raw, prefix) = bucket().await;
    b.set("k", b"v1".to_vec(), WriteCondition::Always)
        .await
        .unwrap();
    let read = b.get_versioned("k").await.unwrap().unwrap();
    // Another client (not wasikv) writes the key.
    let _: () = raw.set(format!("{prefix}k"), "v2").await.unwrap();
    let outcome = b
        .set(
            "k",
            b"mine".to_vec(),
            WriteCondition::IfVersion(read.version),
        )
        .await
        .unwrap();
    assert_eq!(outcome, WriteOutcome::ConditionFailed);
    assert_eq!(b.get("k").await.unwrap(), Some(b"v2".to_vec()));
    // A fresh read can swap.
    let fresh = b.get_versioned("k").await.unwrap().unwrap();
    let outcome = b
        .set(
            "k",
            b"mine".to_vec(),
            WriteCondition::IfVersion(fresh.version),
        )
        .await
        .unwrap();
    assert_eq!(outcome, WriteOutcome::Written);
    cleanup(&b).await;
}

#[tokio::test]
async fn keys_deleted_by_another_client_leave_the_listing() {
    let (b, mut raw, prefix) = bucket().await;
    for k in ["a", "b", "c"] {
        b.set(k, b"v".to_vec(), WriteCondition::Always)
            .await
            .unwrap();
    }
    let _: i64 = raw.del(format!("{prefix}b")).await.unwrap();
    let page = b.list(None, 10).await.unwrap();
    assert_eq!(page.keys, vec!["a".to_string(), "c".to_string()]);
    assert!(page.next.is_none());
    cleanup(&b).await;
}

/// A key another client wrote is not in the index, and is listed once
/// wasikv writes it by any path (the scripts add the index entry when the
/// key's version token is new); overwrites keep it listed exactly once.
#[tokio::test]
async fn foreign_keys_are_listed_once_wasikv_writes_them() {
    let (b, mut raw, prefix) = bucket().await;
    for k in [
        "by-set",
        "by-big-set",
        "by-increment",
        "by-swap",
        "by-set-many",
    ] {
        let _: () = raw.set(format!("{prefix}{k}"), "7").await.unwrap();
    }
    assert!(b.list(None, 10).await.unwrap().keys.is_empty());
    b.set("by-set", b"v".to_vec(), WriteCondition::Always)
        .await
        .unwrap();
    // Over the transaction's size: the SET script.
    b.set("by-big-set", vec![b'x'; 64 << 10], WriteCondition::Always)
        .await
        .unwrap();
    assert_eq!(b.increment("by-increment", 1).await.unwrap(), 8);
    let read = b.get_versioned("by-swap").await.unwrap().unwrap();
    let swapped = b
        .set(
            "by-swap",
            b"s".to_vec(),
            WriteCondition::IfVersion(read.version),
        )
        .await
        .unwrap();
    assert_eq!(swapped, WriteOutcome::Written);
    b.set_many(vec![("by-set-many".into(), b"m".to_vec())])
        .await
        .unwrap();
    for _ in 0..2 {
        b.increment("by-increment", 1).await.unwrap();
        b.set("by-set", b"again".to_vec(), WriteCondition::Always)
            .await
            .unwrap();
    }
    let keys = wasikv_core::suite::list_all(&*b, 2).await.expect("listing");
    assert_eq!(
        keys,
        [
            "by-big-set",
            "by-increment",
            "by-set",
            "by-set-many",
            "by-swap"
        ]
    );
    cleanup(&b).await;
}

#[tokio::test]
async fn unreachable_server_is_unavailable() {
    let config = RedisConfig {
        connect_timeout_ms: 500,
        ..wasikv_redis::RedisConfig::for_url("redis://127.0.0.1:1/0")
    };
    let err = RedisStore::connect(&config)
        .await
        .err()
        .expect("nothing listens on port 1");
    assert_eq!(err.kind(), wasikv_core::ErrorKind::Unavailable, "{err}");
}

/// An index member another client added that is not UTF-8 is skipped by
/// listing, which still returns every key of the bucket.
#[tokio::test]
async fn foreign_index_members_that_are_not_utf8_are_skipped() {
    let (b, mut raw, prefix) = bucket().await;
    for key in ["a", "c", "e"] {
        b.set(key, b"v".to_vec(), WriteCondition::Always)
            .await
            .unwrap();
    }
    let index = wasikv_redis::core::index_key(&prefix);
    for member in [&b"b\xff"[..], b"d\xc3", b"z\x80"] {
        let _: i64 = raw.zadd(&index, member, 0).await.unwrap();
    }
    let keys = wasikv_core::suite::list_all(&*b, 1).await.expect("listing");
    assert_eq!(keys, ["a", "c", "e"]);
    for member in [&b"b\xff"[..], b"d\xc3", b"z\x80"] {
        let _: i64 = raw.zrem(&index, member).await.unwrap();
    }
    cleanup(&b).await;
}
