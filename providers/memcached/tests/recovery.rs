//! A private memcached (on its own port) is stopped while a bucket uses it:
//! operations fail with `unavailable` within a bounded time, never a panic,
//! and work again once the server is back (the pool opens new connections).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasikv_core::{Bucket, ErrorKind, WriteCondition};
use wasikv_memcached::MemcachedBucket;
use wasikv_memcached::core::MemcachedStore;

/// A server process of this test, killed when dropped (also when the test panics).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const PORT: u16 = 16392;

fn start() -> Server {
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    Server(
        Command::new("memcached")
            .args([
                "-l",
                "127.0.0.1",
                "-p",
                &PORT.to_string(),
                "-U",
                "0",
                "-m",
                "16",
                "-u",
                &user,
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("memcached on PATH (scripts/services.sh installs it)"),
    )
}

async fn eventually<T>(what: &str, mut f: impl AsyncFnMut() -> wasikv_core::Result<T>) -> T {
    let started = Instant::now();
    loop {
        match f().await {
            Ok(v) => return v,
            Err(_) if started.elapsed() < Duration::from_secs(20) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("{what} did not succeed within 20 s: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn survives_a_server_restart() {
    let server = start();
    let address = format!("127.0.0.1:{PORT}");
    let store = eventually("connect", async || {
        MemcachedStore::connect(&address, 4, Duration::from_secs(2)).await
    })
    .await;
    let bucket = MemcachedBucket::new(Arc::new(store), "recovery:", 1 << 20).unwrap();
    bucket
        .set("k", b"v".to_vec(), WriteCondition::Always)
        .await
        .unwrap();

    drop(server);
    let err = tokio::time::timeout(Duration::from_secs(10), bucket.get("k"))
        .await
        .expect("an answer within 10 s while the server is down")
        .expect_err("the server is down");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");

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
