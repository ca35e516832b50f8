//! The native watch against a private Redis with keyspace notifications on:
//! wasikv's own writes arrive exactly once (not twice, though Redis also
//! reports them as keyspace events), and writes by a plain Redis client
//! under the bucket's prefix arrive too, with their values.

use std::time::Duration;

use futures::StreamExt;
use wasikv_core::suite::process::{TestServer, eventually};
use wasikv_core::{Bucket, Change, WriteCondition};
use wasikv_redis::RedisBucket;
use wasikv_redis::core::RedisStore;

const PORT: u16 = 16409;

#[tokio::test(flavor = "multi_thread")]
async fn watch_sees_wasikv_writes_once_and_other_clients_writes() {
    let _server = TestServer::spawn(
        wasikv_redis::testing::server_command(PORT).args(["--notify-keyspace-events", "K$gx"]),
        "redis-server (scripts/services.sh installs it)",
    );
    let config = wasikv_redis::testing::private_config(PORT);
    let url = config.url.clone().expect("a single server");
    let store = eventually("connect", Duration::from_secs(20), || {
        RedisStore::connect(&config)
    })
    .await;
    let bucket = RedisBucket::new(store.conn.clone(), "w:").with_watch(store.pubsub.clone());
    let mut changes = bucket.watch().await.expect("watch");
    let next = async |changes: &mut wasikv_core::ChangeStream| {
        tokio::time::timeout(Duration::from_secs(10), changes.next())
            .await
            .expect("a change within 10 s")
            .expect("the watch is open")
            .expect("a change")
    };
    let set = |key: &str, value: &str| Change::Set {
        key: key.into(),
        value: value.as_bytes().to_vec(),
    };

    // Through wasikv: each change once.
    bucket
        .set("a", b"1".to_vec(), WriteCondition::Always)
        .await
        .unwrap();
    bucket.increment("n", 2).await.unwrap();
    bucket.delete("a").await.unwrap();
    assert_eq!(next(&mut changes).await, set("a", "1"));
    assert_eq!(next(&mut changes).await, set("n", "2"));
    assert_eq!(next(&mut changes).await, Change::Delete { key: "a".into() });

    // Another client, under the prefix (and one key outside it).
    let mut other = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("elsewhere")
        .arg("x")
        .query_async(&mut other)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("w:b")
        .arg("from redis-cli")
        .query_async(&mut other)
        .await
        .unwrap();
    assert_eq!(next(&mut changes).await, set("b", "from redis-cli"));
    let _: () = redis::cmd("DEL")
        .arg("w:b")
        .query_async(&mut other)
        .await
        .unwrap();
    assert_eq!(next(&mut changes).await, Change::Delete { key: "b".into() });

    // And wasikv again: still exactly once, in order.
    bucket
        .set("c", b"3".to_vec(), WriteCondition::Always)
        .await
        .unwrap();
    assert_eq!(next(&mut changes).await, set("c", "3"));
    assert!(
        tokio::time::timeout(Duration::from_millis(300), changes.next())
            .await
            .is_err(),
        "no duplicate or stray change"
    );
}

/// A watcher that does not keep up loses the oldest changes beyond the
/// queue and still gets the newest, in order; the host's memory stays bounded.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_watcher_loses_the_oldest_changes() {
    let url = wasikv_redis::testing::test_url();
    let config = wasikv_redis::RedisConfig {
        connect_timeout_ms: 1_000,
        ..wasikv_redis::RedisConfig::for_url(url.clone())
    };
    let store = RedisStore::connect(&config).await.expect("redis reachable");
    let prefix = format!("wasikv-test:slow-{:08x}:", rand::random::<u32>());
    let bucket = RedisBucket::new(store.conn.clone(), &prefix).with_watch(store.pubsub.clone());
    let mut changes = bucket.watch().await.expect("watch");
    let total = wasikv_redis::watch::QUEUE * 3;
    for i in 0..total {
        bucket
            .set("k", i.to_string().into_bytes(), WriteCondition::Always)
            .await
            .unwrap();
    }
    // Give the draining task time to receive everything, unread.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut values = Vec::new();
    while let Ok(Some(change)) =
        tokio::time::timeout(Duration::from_millis(300), changes.next()).await
    {
        match change.expect("a change") {
            Change::Set { value, .. } => values.push(String::from_utf8(value).unwrap()),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        values.len() <= wasikv_redis::watch::QUEUE,
        "{} queued",
        values.len()
    );
    assert_eq!(
        values.last().map(String::as_str),
        Some((total - 1).to_string().as_str())
    );
    let numbers: Vec<usize> = values.iter().map(|v| v.parse().unwrap()).collect();
    assert!(
        numbers.windows(2).all(|w| w[0] + 1 == w[1]),
        "the newest, in order"
    );
    bucket.delete("k").await.unwrap();
}
