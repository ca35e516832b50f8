//! TLS: a private PostgreSQL with `ssl=on` and a test CA's certificate. A
//! bucket with `sslmode=require` trusting that CA works; one trusting only
//! the system roots is refused (the certificate really is verified); a
//! `ca_file` without `sslmode=require` is a configuration error.
#![cfg(unix)]

use wasikv_core::suite::process::TestServer;
use wasikv_core::{ErrorKind, WriteCondition};
use wasikv_postgres::PostgresProvider;
use wasikv_postgres::testing::PrivateServer;

const PORT: u16 = 16441;

async fn open(
    options: serde_json::Value,
) -> wasikv_core::Result<std::sync::Arc<dyn wasikv_core::Bucket>> {
    wasikv_core::suite::plans::open(&PostgresProvider, "tls", options).await
}

#[tokio::test(flavor = "multi_thread")]
async fn sslmode_require_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let certs = wasikv_core::suite::tls::server_certificates(dir.path());
    let server = PrivateServer::init(&dir.path().join("pg"), PORT);
    let _running = TestServer::adopt(server.start_tls(&certs.cert, &certs.key));
    let url = format!("{}?sslmode=require", server.url());

    let bucket = open(serde_json::json!({ "url": url, "create": true, "ca_file": certs.ca }))
        .await
        .expect("TLS with the test CA");
    bucket
        .set("k", b"over tls".to_vec(), WriteCondition::Always)
        .await
        .unwrap();
    assert_eq!(bucket.get("k").await.unwrap(), Some(b"over tls".to_vec()));

    let refused = open(serde_json::json!({ "url": url, "create": true }))
        .await
        .err()
        .expect("the test CA is not a system root");
    assert_eq!(refused.kind(), ErrorKind::Unavailable, "{refused}");

    let err = open(serde_json::json!({ "url": server.url(), "ca_file": certs.ca }))
        .await
        .err()
        .expect("ca_file without TLS");
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
    assert!(err.to_string().contains("sslmode=require"), "{err}");
}
