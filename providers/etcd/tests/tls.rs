//! TLS: a private etcd serving clients over https with a test CA's
//! certificate. A bucket trusting that CA works; one trusting only the system
//! roots is refused (the certificate really is verified).

use std::time::Duration;

use wasikv_core::suite::process::{TestServer, eventually};
use wasikv_core::{Bucket, ErrorKind, WriteCondition};
use wasikv_etcd::core::EtcdStore;
use wasikv_etcd::testing::server_command;
use wasikv_etcd::{EtcdBucket, EtcdConfig};

const CLIENT_PORT: u16 = 16397;
const PEER_PORT: u16 = 16398;

#[tokio::test(flavor = "multi_thread")]
async fn https_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let certs = wasikv_core::suite::tls::server_certificates(dir.path());
    let client = format!("https://127.0.0.1:{CLIENT_PORT}");
    let _server = TestServer::spawn(
        server_command("tls", &dir.path().join("data"), &client, PEER_PORT)
            .arg("--cert-file")
            .arg(&certs.cert)
            .arg("--key-file")
            .arg(&certs.key),
        "etcd",
    );
    let config = EtcdConfig {
        endpoints: vec![client.clone()],
        prefix: None,
        username: None,
        password: None,
        ca_file: Some(certs.ca.clone()),
        connect_timeout_ms: 1_000,
    };
    let store = EtcdStore::connect(&config).await.expect("TLS client");
    let bucket = EtcdBucket::new(store.kv.clone(), "tls/");
    eventually("TLS set", Duration::from_secs(30), || {
        bucket.set("k", b"over tls".to_vec(), WriteCondition::Always)
    })
    .await;
    assert_eq!(bucket.get("k").await.unwrap(), Some(b"over tls".to_vec()));

    let untrusted = EtcdConfig {
        ca_file: None,
        ..config
    };
    let refused = match EtcdStore::connect(&untrusted).await {
        Err(e) => e,
        Ok(store) => EtcdBucket::new(store.kv.clone(), "tls/")
            .get("k")
            .await
            .expect_err("the test CA is not a system root"),
    };
    assert_eq!(refused.kind(), ErrorKind::Unavailable, "{refused}");
}
