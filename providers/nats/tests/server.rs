//! Against private `nats-server`s started by the tests (their own ports and
//! store directories): acknowledged writes survive a kill and the bucket
//! serves again after the restart; TLS with a private CA; user and
//! password; and interop with a plain NATS client: its keys and writes are
//! seen, listed and detected by CAS.

use std::sync::Arc;
use std::time::Duration;

use wasikv_core::suite::process::{TestServer, eventually};
use wasikv_core::{Bucket, ErrorKind, WriteCondition, WriteOutcome};
use wasikv_nats::NatsProvider;
use wasikv_nats::testing::{TEST_KV_BUCKET, server_command, test_url};

async fn open(options: serde_json::Value) -> wasikv_core::Result<Arc<dyn Bucket>> {
    wasikv_core::suite::plans::open(&NatsProvider, "b", options).await
}

/// Opens `options`, retrying while a just-started server is not ready.
async fn open_eventually(options: serde_json::Value) -> Arc<dyn Bucket> {
    eventually("open the bucket", Duration::from_secs(30), || {
        open(options.clone())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_kill_and_the_bucket_serves_again() {
    const PORT: u16 = 16442;
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::spawn(&mut server_command(PORT, dir.path()), "nats-server");
    let options = serde_json::json!({
        "url": format!("nats://127.0.0.1:{PORT}"), "kv_bucket": "crash", "create": true,
        "connect_timeout_ms": 1000, "request_timeout_ms": 1000,
    });
    let bucket = open_eventually(options.clone()).await;
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let bucket = bucket.clone();
            tokio::spawn(async move {
                for i in 0..25 {
                    let key = format!("w{w}/{i:02}");
                    bucket
                        .set(&key, key.clone().into_bytes(), WriteCondition::Always)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    drop(server); // SIGKILL
    let err = bucket.get("w0/00").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");

    let _server = TestServer::spawn(&mut server_command(PORT, dir.path()), "nats-server");
    // The client reconnects by itself; the same bucket serves again.
    eventually("read after the restart", Duration::from_secs(30), || {
        bucket.get("w0/00")
    })
    .await;
    let keys = wasikv_core::suite::list_all(&*bucket, 50).await.unwrap();
    assert_eq!(keys.len(), 200, "every acknowledged write is there");
    for key in &keys {
        assert_eq!(
            bucket.get(key).await.unwrap(),
            Some(key.clone().into_bytes())
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_with_a_private_ca_and_user_password() {
    const PORT: u16 = 16443;
    let dir = tempfile::tempdir().unwrap();
    let certs = wasikv_core::suite::tls::server_certificates(dir.path());
    let _server = TestServer::spawn(
        server_command(PORT, &dir.path().join("js"))
            .arg("--tls")
            .arg("--tlscert")
            .arg(&certs.cert)
            .arg("--tlskey")
            .arg(&certs.key)
            .args(["--user", "app", "--pass", "s3cret"]),
        "nats-server",
    );
    let url = format!("tls://127.0.0.1:{PORT}");
    let bucket = open_eventually(serde_json::json!({
        "url": url, "kv_bucket": "tls", "create": true, "ca_file": certs.ca,
        "user": "app", "password": "s3cret",
    }))
    .await;
    bucket
        .set("k", b"over tls".to_vec(), WriteCondition::Always)
        .await
        .unwrap();
    assert_eq!(bucket.get("k").await.unwrap(), Some(b"over tls".to_vec()));

    let untrusted = open(serde_json::json!({
        "url": url, "kv_bucket": "tls", "user": "app", "password": "s3cret", "connect_timeout_ms": 1000,
    }))
    .await
    .err()
    .expect("the test CA is not a system root");
    assert_eq!(untrusted.kind(), ErrorKind::Unavailable, "{untrusted}");

    let denied = open(serde_json::json!({
        "url": url, "kv_bucket": "tls", "ca_file": certs.ca, "user": "app", "password": "wrong",
        "connect_timeout_ms": 1000,
    }))
    .await
    .err()
    .expect("a wrong password");
    assert_eq!(denied.kind(), ErrorKind::AccessDenied, "{denied}");
    assert!(!denied.to_string().contains("wrong"), "{denied}");
}

/// A plain NATS client on the same KV bucket: its canonical keys are
/// wasikv's keys, others are skipped by listing; its writes (even of the
/// same bytes) make a pending swap fail, and its deletes are seen.
#[tokio::test(flavor = "multi_thread")]
async fn a_plain_nats_client_is_seen() {
    let prefix = format!("wasikv-test.interop-{:08x}", rand::random::<u32>());
    let bucket = open(serde_json::json!({
        "url": test_url(), "kv_bucket": TEST_KV_BUCKET, "prefix": prefix, "create": true,
    }))
    .await
    .expect("nats at WASIKV_TEST_NATS_URL");
    let client = async_nats::connect(test_url()).await.unwrap();
    let kv = async_nats::jetstream::new(client)
        .get_key_value(TEST_KV_BUCKET)
        .await
        .unwrap();

    kv.put(format!("{prefix}.user.1"), "ada".into())
        .await
        .unwrap();
    // `a_b` is not the encoding of any key (`_` is always escaped): foreign.
    kv.put(format!("{prefix}.a_b"), "x".into()).await.unwrap();
    assert_eq!(bucket.get("user.1").await.unwrap(), Some(b"ada".to_vec()));
    assert_eq!(
        wasikv_core::suite::list_all(&*bucket, 10).await.unwrap(),
        ["user.1"]
    );

    let read = bucket.get_versioned("user.1").await.unwrap().unwrap();
    kv.put(format!("{prefix}.user.1"), "ada".into())
        .await
        .unwrap(); // same bytes
    let outcome = bucket
        .set(
            "user.1",
            b"mine".to_vec(),
            WriteCondition::IfVersion(read.version),
        )
        .await
        .unwrap();
    assert_eq!(outcome, WriteOutcome::ConditionFailed);

    kv.delete(format!("{prefix}.user.1")).await.unwrap();
    assert_eq!(bucket.get("user.1").await.unwrap(), None);
    assert!(!bucket.exists("user.1").await.unwrap());
    kv.purge(format!("{prefix}.a_b")).await.unwrap();
    wasikv_core::suite::cleanup(&*bucket).await;
}
