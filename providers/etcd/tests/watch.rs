//! The native watch resumes after the server restarts: a change made after
//! the restart arrives, and none made before it is repeated.

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use wasikv_core::suite::process::{TestServer, eventually};
use wasikv_core::{Bucket, Change, WriteCondition};
use wasikv_etcd::EtcdBucket;
use wasikv_etcd::core::EtcdStore;
use wasikv_etcd::testing::{config_for, server_command};

const CLIENT_PORT: u16 = 16410;
const PEER_PORT: u16 = 16411;

fn start(data: &Path) -> TestServer {
    TestServer::spawn(
        &mut server_command(
            "watch",
            data,
            &format!("http://127.0.0.1:{CLIENT_PORT}"),
            PEER_PORT,
        ),
        "etcd (scripts/services.sh installs etcd-server)",
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_resumes_after_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("etcd");
    let server = start(&data);
    let config = config_for(&format!("http://127.0.0.1:{CLIENT_PORT}"), 1_000);
    let limit = Duration::from_secs(30);
    let store = eventually("connect", limit, || EtcdStore::connect(&config)).await;
    let bucket = EtcdBucket::new(store.kv.clone(), "w/").with_watch(store.watch.clone());
    let mut changes = eventually("watch", limit, || bucket.watch()).await;
    let set = |key: &str, value: &str| Change::Set {
        key: key.into(),
        value: value.as_bytes().to_vec(),
    };
    let next = async |changes: &mut wasikv_core::ChangeStream| {
        tokio::time::timeout(Duration::from_secs(60), changes.next())
            .await
            .expect("a change within 60 s")
            .expect("the watch is open")
            .expect("a change")
    };
    bucket
        .set("a", b"1".to_vec(), WriteCondition::Always)
        .await
        .unwrap();
    assert_eq!(next(&mut changes).await, set("a", "1"));

    drop(server);
    let _server = start(&data);
    eventually("set after restart", limit, || {
        bucket.set("b", b"2".to_vec(), WriteCondition::Always)
    })
    .await;
    assert_eq!(
        next(&mut changes).await,
        set("b", "2"),
        "resumed, nothing repeated"
    );
    bucket.delete("b").await.unwrap();
    assert_eq!(next(&mut changes).await, Change::Delete { key: "b".into() });
}
