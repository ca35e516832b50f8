//! A private memcached (on its own port) is stopped while a bucket uses it:
//! operations fail with `unavailable` within a bounded time, never a panic,
//! and work again once the server is back (the pool opens new connections).

use std::sync::Arc;
use std::time::Duration;

use wasikv_core::suite::process::{TestServer, eventually, expect_unavailable_when_stopped};
use wasikv_core::{Bucket, WriteCondition};
use wasikv_memcached::MemcachedBucket;
use wasikv_memcached::core::MemcachedStore;

const PORT: u16 = 16392;

fn start() -> TestServer {
    TestServer::spawn(
        &mut wasikv_memcached::testing::server_command(PORT),
        "memcached (scripts/services.sh installs it)",
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn survives_a_server_restart() {
    let server = start();
    let address = format!("127.0.0.1:{PORT}");
    let store = eventually("connect", Duration::from_secs(20), || {
        MemcachedStore::connect(&address, 4, Duration::from_secs(2))
    })
    .await;
    let bucket = MemcachedBucket::new(Arc::new(store), "recovery:", 1 << 20).unwrap();
    bucket
        .set("k", b"v".to_vec(), WriteCondition::Always)
        .await
        .unwrap();

    expect_unavailable_when_stopped(server, &bucket, Duration::from_secs(10)).await;

    let _server = start();
    eventually("set after restart", Duration::from_secs(20), || {
        bucket.set("k", b"again".to_vec(), WriteCondition::Always)
    })
    .await;
    assert_eq!(bucket.get("k").await.unwrap(), Some(b"again".to_vec()));
}

/// A restarted memcached counts CAS uniques from 1 again: a handle read
/// before the restart must not match the new item that happens to get the
/// same unique (no ABA across restarts). The version carries the server's
/// pid and start time; a `cas` is only sent to the instance that gave it.
#[tokio::test(flavor = "multi_thread")]
async fn a_cas_handle_from_before_a_restart_never_matches() {
    const PORT: u16 = 16423;
    let start = || {
        TestServer::spawn(
            &mut wasikv_memcached::testing::server_command(PORT),
            "memcached (scripts/services.sh installs it)",
        )
    };
    let server = start();
    let address = format!("127.0.0.1:{PORT}");
    let store = Arc::new(
        eventually("connect", Duration::from_secs(20), || {
            MemcachedStore::connect(&address, 4, Duration::from_secs(2))
        })
        .await,
    );
    let bucket = MemcachedBucket::new(store.clone(), "restart:", 1 << 20).unwrap();
    bucket
        .set("k", b"old".to_vec(), WriteCondition::Always)
        .await
        .unwrap();
    let before = bucket.get_versioned("k").await.unwrap().expect("written");
    let unique = store.gets(&["restart:k".to_string()]).await.unwrap()["restart:k"].cas;
    drop(server);
    // A new server process: pid and start time differ (it may start in the
    // same second; the pid is new).
    let _server = start();
    eventually("set after restart", Duration::from_secs(20), || {
        bucket.set("k", b"new".to_vec(), WriteCondition::Always)
    })
    .await;
    // Rewrite until the new item carries the old unique.
    let mut same = false;
    for _ in 0..1000 {
        let now = store.gets(&["restart:k".to_string()]).await.unwrap()["restart:k"].cas;
        if now == unique {
            same = true;
            break;
        }
        assert!(now < unique, "the new server's uniques passed the old one");
        bucket
            .set("k", b"new".to_vec(), WriteCondition::Always)
            .await
            .unwrap();
    }
    assert!(same, "the new item never got unique {unique}");
    let outcome = bucket
        .set(
            "k",
            b"swapped".to_vec(),
            WriteCondition::IfVersion(before.version),
        )
        .await
        .unwrap();
    assert_eq!(outcome, wasikv_core::WriteOutcome::ConditionFailed);
    assert_eq!(bucket.get("k").await.unwrap(), Some(b"new".to_vec()));
}
