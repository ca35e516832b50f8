//! A private redis-server (on its own port, never the shared one at 6379) is
//! stopped while a bucket uses it: operations fail with `unavailable` within a
//! bounded time, never a panic, and work again once the server is back.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use wasikv_core::{Bucket, ErrorKind, WriteCondition};
use wasikv_redis::core::RedisStore;
use wasikv_redis::{RedisBucket, RedisConfig};

/// A server process of this test, killed when dropped (also when the test panics).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const PORT: u16 = 16391;

fn start() -> Server {
    Server(
        Command::new("redis-server")
            .args([
                "--port",
                &PORT.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (scripts/services.sh installs it)"),
    )
}

async fn eventually<T>(what: &str, mut f: impl AsyncFnMut() -> wasikv_core::Result<T>) -> T {
    let started = Instant::now();
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if started.elapsed() < Duration::from_secs(20) => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{what} did not succeed within 20 s: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn survives_a_server_restart() {
    let server = start();
    let config = RedisConfig {
        url: format!("redis://127.0.0.1:{PORT}/0"),
        prefix: None,
        ca_file: None,
        connect_timeout_ms: 1_000,
    };
    let store = eventually("connect", async || RedisStore::connect(&config).await).await;
    let bucket = RedisBucket::new(store.conn.clone(), "recovery:");
    bucket
        .set("k", b"v".to_vec(), WriteCondition::Always)
        .await
        .unwrap();

    drop(server);
    let started = Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(15), bucket.get("k"))
        .await
        .expect("an answer within 15 s while the server is down")
        .expect_err("the server is down");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(started.elapsed() < Duration::from_secs(15));

    let server = start();
    eventually("set after restart", async || {
        bucket
            .set("k", b"again".to_vec(), WriteCondition::Always)
            .await
    })
    .await;
    assert_eq!(bucket.get("k").await.unwrap(), Some(b"again".to_vec()));
    drop(server);
}
