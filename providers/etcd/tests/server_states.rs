//! A private etcd (its own ports and data directory) over its space quota:
//! writes fail with `unavailable` naming the NOSPACE alarm (not `other`),
//! reads keep working.

use std::time::Duration;

use wasikv_core::suite::process::{TestServer, eventually};
use wasikv_core::{Bucket, ErrorKind, WriteCondition};
use wasikv_etcd::EtcdBucket;
use wasikv_etcd::core::EtcdStore;
use wasikv_etcd::testing::{config_for, server_command};

const CLIENT_PORT: u16 = 16421;
const PEER_PORT: u16 = 16422;

#[tokio::test(flavor = "multi_thread")]
async fn a_full_database_is_unavailable_not_other() {
    let dir = tempfile::tempdir().unwrap();
    let client_url = format!("http://127.0.0.1:{CLIENT_PORT}");
    let mut command = server_command("quota", &dir.path().join("etcd"), &client_url, PEER_PORT);
    let _server = TestServer::spawn(
        command.args(["--quota-backend-bytes", "2097152"]),
        "etcd (scripts/services.sh installs etcd-server)",
    );
    let config = config_for(&client_url, 1_000);
    let limit = Duration::from_secs(30);
    let store = eventually("connect", limit, || EtcdStore::connect(&config)).await;
    let bucket = EtcdBucket::new(store.kv.clone(), "quota/");
    eventually("first set", limit, || {
        bucket.set("small", b"v".to_vec(), WriteCondition::Always)
    })
    .await;
    let value = vec![b'x'; 512 << 10];
    let mut full = None;
    for i in 0..64 {
        match bucket
            .set(&format!("big-{i}"), value.clone(), WriteCondition::Always)
            .await
        {
            Ok(_) => continue,
            Err(e) => {
                full = Some(e);
                break;
            }
        }
    }
    let e = full.expect("a 2 MiB quota fills up within 32 MiB of writes");
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(!e.is_retryable(), "{e}");
    assert!(e.to_string().contains("NOSPACE"), "{e}");
    assert_eq!(bucket.get("small").await.unwrap(), Some(b"v".to_vec()));
}
