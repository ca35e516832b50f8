//! Durability and recovery against a private PostgreSQL (its own data
//! directory and port, started by the test): every write acknowledged
//! before the server is killed (SIGKILL, no shutdown) is there after the
//! restart, concurrent writers included; while the server is down calls
//! fail as `unavailable`, and the same pool serves again once it is back.
#![cfg(unix)]

use std::sync::Arc;

use wasikv_core::suite::process::TestServer;
use wasikv_core::{Bucket, ErrorKind, WriteCondition};
use wasikv_postgres::PostgresProvider;
use wasikv_postgres::testing::PrivateServer;

const PORT: u16 = 16440;

async fn open(url: &str) -> Arc<dyn Bucket> {
    let options = serde_json::json!({ "url": url, "create": true, "connect_timeout_ms": 1_000 });
    wasikv_core::suite::plans::open(&PostgresProvider, "crash", options)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_kill_and_the_pool_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let server = PrivateServer::init(&dir.path().join("pg"), PORT);
    let running = TestServer::adopt(server.start());
    let bucket = open(&server.url()).await;

    // 8 concurrent writers, each its own keys and a shared counter; every
    // acknowledged write is recorded.
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let bucket = bucket.clone();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0..50 {
                    let key = format!("w{w}/{i:03}");
                    bucket
                        .set(&key, format!("v{i}").into_bytes(), WriteCondition::Always)
                        .await
                        .unwrap();
                    bucket.increment("count", 1).await.unwrap();
                    acked.push(key);
                }
                acked
            })
        })
        .collect();
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }

    drop(running); // SIGKILL
    let err = bucket.get("w0/000").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_retryable(), "{err}");

    let _running = TestServer::adopt(server.start());
    // The pool drops its dead connections and makes new ones.
    let mut value = None;
    for _ in 0..50 {
        match bucket.get("count").await {
            Ok(v) => {
                value = v;
                break;
            }
            Err(e) => assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        value.as_deref(),
        Some(&b"400"[..]),
        "the counter after the crash"
    );
    for key in &acked {
        let i: usize = key[3..].parse().unwrap();
        assert_eq!(
            bucket.get(key).await.unwrap(),
            Some(format!("v{i}").into_bytes()),
            "{key} was acknowledged before the kill"
        );
    }
    eprintln!(
        "{} acknowledged writes and the counter survived SIGKILL",
        acked.len()
    );
}
