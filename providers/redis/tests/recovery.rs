//! A private redis-server (on its own port, never the shared one at 6379) is
//! stopped while a bucket uses it: operations fail with `unavailable` within a
//! bounded time, never a panic, and work again once the server is back.

use std::time::Duration;

use wasikv_core::suite::process::{TestServer, eventually, expect_unavailable_when_stopped};
use wasikv_core::{Bucket, WriteCondition};
use wasikv_redis::RedisBucket;
use wasikv_redis::core::RedisStore;

const PORT: u16 = 16391;

fn start() -> TestServer {
    TestServer::spawn(
        &mut wasikv_redis::testing::server_command(PORT),
        "redis-server (scripts/services.sh installs it)",
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn survives_a_server_restart() {
    let server = start();
    let config = wasikv_redis::testing::private_config(PORT);
    let store = eventually("connect", Duration::from_secs(20), || {
        RedisStore::connect(&config)
    })
    .await;
    let bucket = RedisBucket::new(store.conn.clone(), "recovery:");
    bucket
        .set("k", b"v".to_vec(), WriteCondition::Always)
        .await
        .unwrap();

    expect_unavailable_when_stopped(server, &bucket, Duration::from_secs(15)).await;

    let _server = start();
    eventually("set after restart", Duration::from_secs(20), || {
        bucket.set("k", b"again".to_vec(), WriteCondition::Always)
    })
    .await;
    assert_eq!(bucket.get("k").await.unwrap(), Some(b"again".to_vec()));
}
