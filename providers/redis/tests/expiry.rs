//! Redis expiry specifics: every write path sets the value's expiry (`PX`,
//! `PEXPIRE`), a failed increment keeps it, and the write scripts' sweep
//! drops the index entries and version tokens of expired keys.

use std::time::Duration;

use redis::AsyncCommands;
use wasikv_core::{Bucket, WriteCondition, WriteOutcome};
use wasikv_redis::RedisBucket;
use wasikv_redis::core::{Connection, RedisStore};

const TTL: Duration = Duration::from_secs(1);

async fn bucket() -> (RedisBucket, Connection, String) {
    let config = wasikv_redis::RedisConfig::for_url(wasikv_redis::testing::test_url());
    let store = RedisStore::connect(&config)
        .await
        .expect("redis at WASIKV_TEST_REDIS_URL");
    let prefix = format!("wasikv-test:expiry-{:08x}:", rand::random::<u32>());
    let bucket = RedisBucket::new(store.conn.clone(), &prefix).expiring(Some(TTL));
    (bucket, store.conn, prefix)
}

/// Milliseconds left for `key` (`-1`: no expiry, `-2`: no key).
async fn pttl(raw: &mut Connection, key: &str) -> i64 {
    raw.pttl(key).await.unwrap()
}

#[tokio::test]
async fn every_write_path_sets_the_expiry_and_a_failed_increment_keeps_it() {
    let (b, mut raw, prefix) = bucket().await;
    let ttl_ms = TTL.as_millis() as i64;
    let live = |left: i64| left > 0 && left <= ttl_ms;

    b.set("set", b"v".to_vec(), WriteCondition::Always)
        .await
        .unwrap();
    // A value over the transaction's size takes the SET script too.
    b.set("big", vec![7; 8192], WriteCondition::Always)
        .await
        .unwrap();
    assert_eq!(
        b.set("created", b"v".to_vec(), WriteCondition::IfAbsent)
            .await
            .unwrap(),
        WriteOutcome::Written
    );
    let version = b.get_versioned("set").await.unwrap().unwrap().version;
    assert_eq!(
        b.set("set", b"w".to_vec(), WriteCondition::IfVersion(version))
            .await
            .unwrap(),
        WriteOutcome::Written
    );
    b.increment("n", 3).await.unwrap();
    b.set_many(vec![
        ("m1".into(), b"a".to_vec()),
        ("m2".into(), b"b".to_vec()),
    ])
    .await
    .unwrap();
    for key in ["set", "big", "created", "n", "m1", "m2"] {
        let left = pttl(&mut raw, &format!("{prefix}{key}")).await;
        assert!(live(left), "{key}: pttl {left}");
    }

    // A counter with leading zeros whose increment overflows: normalised,
    // refused, restored, and still expiring.
    let _: () = raw
        .set(format!("{prefix}z"), "09223372036854775807")
        .await
        .unwrap();
    let _: bool = raw.pexpire(format!("{prefix}z"), 60_000).await.unwrap();
    assert!(b.increment("z", 1).await.is_err());
    let kept: String = raw.get(format!("{prefix}z")).await.unwrap();
    assert_eq!(kept, "09223372036854775807");
    let left = pttl(&mut raw, &format!("{prefix}z")).await;
    assert!(
        left > 50_000,
        "a failed increment dropped or reset the expiry: {left}"
    );
    let _: () = raw.del(format!("{prefix}z")).await.unwrap();
    wasikv_core::suite::cleanup(&b).await;
}

#[tokio::test]
async fn writes_sweep_the_index_entries_of_expired_keys() {
    let (b, mut raw, _) = bucket().await;
    for i in 0..50 {
        b.set(
            &format!("gone-{i:02}"),
            b"v".to_vec(),
            WriteCondition::Always,
        )
        .await
        .unwrap();
    }
    let group = &b.layout().groups()[0];
    let (index, versions) = (group.index.clone(), group.versions.clone());
    let indexed: usize = raw.zcard(&index).await.unwrap();
    assert_eq!(indexed, 50);
    tokio::time::sleep(TTL + Duration::from_millis(300)).await;
    // The values are gone; their index entries and tokens stay until a
    // write samples them (no listing here, which would drop them all).
    assert_eq!(b.get("gone-00").await.unwrap(), None);
    let still: usize = raw.zcard(&index).await.unwrap();
    assert_eq!(still, 50, "something other than the writes swept the index");
    // Each write samples 2 members: 400 writes leave a given stale member
    // unsampled with probability below (1 - 2/51)^400 < 1e-6.
    for _ in 0..400 {
        b.set("live", b"v".to_vec(), WriteCondition::Always)
            .await
            .unwrap();
    }
    let left: usize = raw.zcard(&index).await.unwrap();
    let tokens: usize = raw.hlen(&versions).await.unwrap();
    assert_eq!(
        (left, tokens),
        (1, 1),
        "index entries and tokens left after the sweep"
    );
    assert_eq!(
        wasikv_core::suite::list_all(&b, 10).await.unwrap(),
        vec!["live".to_string()]
    );
    wasikv_core::suite::cleanup(&b).await;
}
