//! TLS: a private redis-server with a test CA's certificate on its own port.
//! A `rediss://` bucket trusting that CA works; one trusting only the system
//! roots is refused (the certificate really is verified).

use std::process::Command;
use std::time::Duration;

use wasikv_core::suite::process::{TestServer, eventually};
use wasikv_core::{Bucket, WriteCondition};
use wasikv_redis::core::RedisStore;
use wasikv_redis::{RedisBucket, RedisConfig};

const PORT: u16 = 16395;

#[tokio::test(flavor = "multi_thread")]
async fn rediss_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let certs = wasikv_core::suite::tls::server_certificates(dir.path());
    let _server = TestServer::spawn(
        Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--tls-port",
                &PORT.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--tls-auth-clients", "no", "--tls-cert-file"])
            .arg(&certs.cert)
            .arg("--tls-key-file")
            .arg(&certs.key)
            .arg("--tls-ca-cert-file")
            .arg(&certs.ca),
        "redis-server",
    );
    let config = RedisConfig {
        ca_file: Some(certs.ca.clone()),
        connect_timeout_ms: 1_000,
        ..wasikv_redis::RedisConfig::for_url(format!("rediss://127.0.0.1:{PORT}/0"))
    };
    let store = eventually("TLS connect", Duration::from_secs(20), || {
        RedisStore::connect(&config)
    })
    .await;
    let bucket = RedisBucket::new(store.conn.clone(), "tls:");
    bucket
        .set("k", b"over tls".to_vec(), WriteCondition::Always)
        .await
        .unwrap();
    assert_eq!(bucket.get("k").await.unwrap(), Some(b"over tls".to_vec()));

    let untrusted = RedisConfig {
        ca_file: None,
        ..config
    };
    let err = RedisStore::connect(&untrusted)
        .await
        .err()
        .expect("the test CA is not a system root");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
}
