//! Server states a private redis-server (its own ports, never the shared one
//! at 6379) can be put in: an eviction policy that could drop a bucket's
//! bookkeeping is refused at connect; a busy script and a read-only replica
//! give retryable `unavailable` errors, not `other`.

use std::time::Duration;

use wasikv_core::suite::process::{TestServer, eventually};
use wasikv_core::{Bucket, ErrorKind, WriteCondition};
use wasikv_redis::RedisBucket;
use wasikv_redis::core::RedisStore;
use wasikv_redis::testing::{private_config, server_command};

const WHAT: &str = "redis-server (scripts/services.sh installs it)";

async fn raw(port: u16) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/0")).unwrap();
    eventually("raw connection", Duration::from_secs(20), || async {
        client
            .get_multiplexed_async_connection()
            .await
            .map_err(wasikv_redis::core::map_err)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_allkeys_eviction_policy_is_refused_at_connect() {
    const PORT: u16 = 16396;
    let mut command = server_command(PORT);
    let _server = TestServer::spawn(
        command.args(["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"]),
        WHAT,
    );
    let mut conn = raw(PORT).await;
    let Err(e) = RedisStore::connect(&private_config(PORT)).await else {
        panic!("allkeys-lru was accepted");
    };
    assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e}");
    assert!(e.to_string().contains("allkeys-lru"), "{e}");
    // Keys with an expiry only (volatile-*) or no eviction: accepted.
    for policy in ["volatile-lru", "noeviction"] {
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory-policy")
            .arg(policy)
            .query_async(&mut conn)
            .await
            .unwrap();
        if let Err(e) = RedisStore::connect(&private_config(PORT)).await {
            panic!("{policy}: {e}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_busy_script_is_retryable_unavailable() {
    const PORT: u16 = 16397;
    let mut command = server_command(PORT);
    let _server = TestServer::spawn(command.args(["--busy-reply-threshold", "50"]), WHAT);
    let config = private_config(PORT);
    let store = eventually("connect", Duration::from_secs(20), || {
        RedisStore::connect(&config)
    })
    .await;
    let bucket = RedisBucket::new(store.conn.clone(), "busy:");
    bucket
        .set("k", b"v".to_vec(), WriteCondition::Always)
        .await
        .unwrap();
    // A script that never ends, on its own connection.
    let mut spinner = raw(PORT).await;
    let spin = tokio::spawn(async move {
        let _: redis::RedisResult<()> = redis::cmd("EVAL")
            .arg("while true do end")
            .arg(0)
            .query_async(&mut spinner)
            .await;
    });
    let mut killer = raw(PORT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let e = bucket.get("k").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable(), "{e}");
    assert!(e.to_string().contains("busy"), "{e}");
    let _: () = redis::cmd("SCRIPT")
        .arg("KILL")
        .query_async(&mut killer)
        .await
        .unwrap();
    let _ = spin.await;
    assert_eq!(bucket.get("k").await.unwrap(), Some(b"v".to_vec()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_replica_is_retryable_unavailable_for_writes() {
    const MASTER: u16 = 16398;
    const REPLICA: u16 = 16399;
    let _master = TestServer::spawn(&mut server_command(MASTER), WHAT);
    let mut command = server_command(REPLICA);
    let _replica = TestServer::spawn(
        command.args(["--replicaof", "127.0.0.1", &MASTER.to_string()]),
        WHAT,
    );
    let config = private_config(REPLICA);
    let store = eventually("connect", Duration::from_secs(20), || {
        RedisStore::connect(&config)
    })
    .await;
    let bucket = RedisBucket::new(store.conn.clone(), "replica:");
    let e = bucket
        .set("k", b"v".to_vec(), WriteCondition::Always)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable(), "{e}");
    assert!(e.to_string().contains("read-only replica"), "{e}");
    // Reads are served.
    assert_eq!(bucket.get("k").await.unwrap(), None);
}

/// `wait_replicas` on a single server with one replica: an acknowledged
/// write is on the replica; while the replica stalls (`DEBUG SLEEP`), a
/// write fails as `unavailable` (not retryable) after `wait_timeout_ms`,
/// whereas without `wait_replicas` the same write is acknowledged with the
/// replica lacking it (what a failover then loses: docs/reliability.md).
#[tokio::test(flavor = "multi_thread")]
async fn writes_wait_for_the_replica_when_asked() {
    const MASTER: u16 = 16430;
    const REPLICA: u16 = 16431;
    let _master = TestServer::spawn(&mut server_command(MASTER), WHAT);
    let mut command = server_command(REPLICA);
    let _replica = TestServer::spawn(
        command.args([
            "--replicaof",
            "127.0.0.1",
            &MASTER.to_string(),
            "--enable-debug-command",
            "yes",
        ]),
        WHAT,
    );
    let config = private_config(MASTER);
    let store = eventually("connect", Duration::from_secs(20), || {
        RedisStore::connect(&config)
    })
    .await;
    // Generous while the replica is live (a loaded machine may take a
    // while to confirm); short once it is stalled.
    let waiting = RedisBucket::new(store.conn.clone(), "wait:").with_wait(1, 5_000);
    let impatient = RedisBucket::new(store.conn.clone(), "wait:").with_wait(1, 300);
    let plain = RedisBucket::new(store.conn.clone(), "plain:");
    let mut replica = raw(REPLICA).await;
    // The replica catches up with the master first.
    eventually("replica in sync", Duration::from_secs(20), || async {
        waiting
            .set("sync", b"1".to_vec(), WriteCondition::Always)
            .await
            .map(|_| ())
    })
    .await;
    for i in 0..10 {
        let key = format!("k{i}");
        waiting
            .set(&key, b"v".to_vec(), WriteCondition::Always)
            .await
            .unwrap();
        let on_replica: Option<Vec<u8>> = redis::cmd("GET")
            .arg(format!("wait:{key}"))
            .query_async(&mut replica)
            .await
            .unwrap();
        assert_eq!(on_replica.as_deref(), Some(&b"v"[..]), "{key}");
    }

    // The replica stalls for 3 s.
    let sleeper = wasikv_redis::testing::stall(REPLICA, 3);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let e = impatient
        .increment("n", 1)
        .await
        .expect_err("the replica cannot confirm");
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(!e.is_retryable(), "{e}");
    assert!(e.to_string().contains("only 0 of 1 replicas"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // Without waiting: acknowledged at once, though the replica lacks it.
    plain
        .set("acked", b"v".to_vec(), WriteCondition::Always)
        .await
        .unwrap();
    sleeper.await.unwrap();
    // The failed call had applied on the master (as its error says it may).
    assert_eq!(waiting.get("n").await.unwrap().as_deref(), Some(&b"1"[..]));
    // Once the replica is back, waiting writes succeed again.
    eventually("replica back", Duration::from_secs(20), || async {
        waiting
            .set("after", b"1".to_vec(), WriteCondition::Always)
            .await
            .map(|_| ())
    })
    .await;
}
