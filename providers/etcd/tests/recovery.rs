//! A private etcd (on its own ports and data directory) is stopped while a
//! bucket uses it: operations fail with `unavailable` within a bounded time,
//! never a panic, and work again once it is back, with the data it had.

use std::path::Path;
use std::time::Duration;

use wasikv_core::suite::process::{TestServer, eventually, expect_unavailable_when_stopped};
use wasikv_core::{Bucket, WriteCondition};
use wasikv_etcd::EtcdBucket;
use wasikv_etcd::core::EtcdStore;
use wasikv_etcd::testing::{config_for, server_command};

const CLIENT_PORT: u16 = 16393;
const PEER_PORT: u16 = 16394;

fn start(data: &Path) -> TestServer {
    TestServer::spawn(
        &mut server_command(
            "recovery",
            data,
            &format!("http://127.0.0.1:{CLIENT_PORT}"),
            PEER_PORT,
        ),
        "etcd (scripts/services.sh installs etcd-server)",
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn survives_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("etcd");
    let server = start(&data);
    let config = config_for(&format!("http://127.0.0.1:{CLIENT_PORT}"), 1_000);
    let limit = Duration::from_secs(30);
    let store = eventually("connect", limit, || EtcdStore::connect(&config)).await;
    let bucket = EtcdBucket::new(store.kv.clone(), "recovery/");
    eventually("first set", limit, || {
        bucket.set("k", b"v".to_vec(), WriteCondition::Always)
    })
    .await;

    expect_unavailable_when_stopped(server, &bucket, Duration::from_secs(40)).await;

    let _server = start(&data);
    let value = eventually("get after restart", limit, || bucket.get("k")).await;
    assert_eq!(
        value,
        Some(b"v".to_vec()),
        "etcd keeps its data across the restart"
    );
}
