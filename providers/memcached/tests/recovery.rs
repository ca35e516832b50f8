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
