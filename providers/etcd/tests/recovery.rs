//! A private etcd (on its own ports and data directory) is stopped while a
//! bucket uses it: operations fail with `unavailable` within a bounded time,
//! never a panic, and work again once it is back, with the data it had.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use wasikv_core::{Bucket, ErrorKind, WriteCondition};
use wasikv_etcd::core::EtcdStore;
use wasikv_etcd::{EtcdBucket, EtcdConfig};

/// A server process of this test, killed when dropped (also when the test panics).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const CLIENT_PORT: u16 = 16393;
const PEER_PORT: u16 = 16394;

fn start(data: &std::path::Path) -> Server {
    let client = format!("http://127.0.0.1:{CLIENT_PORT}");
    let peer = format!("http://127.0.0.1:{PEER_PORT}");
    Server(
        Command::new("etcd")
            .args(["--name", "recovery", "--data-dir"])
            .arg(data)
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &format!("recovery={peer}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcd on PATH (scripts/services.sh installs etcd-server)"),
    )
}

async fn eventually<T>(what: &str, mut f: impl AsyncFnMut() -> wasikv_core::Result<T>) -> T {
    let started = Instant::now();
    loop {
        match f().await {
            Ok(v) => return v,
            Err(_) if started.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => panic!("{what} did not succeed within 30 s: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn survives_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("etcd");
    let server = start(&data);
    let config = EtcdConfig {
        endpoints: vec![format!("http://127.0.0.1:{CLIENT_PORT}")],
        prefix: None,
        username: None,
        password: None,
        ca_file: None,
        connect_timeout_ms: 1_000,
    };
    let store = eventually("connect", async || EtcdStore::connect(&config).await).await;
    let bucket = EtcdBucket::new(store.kv.clone(), "recovery/");
    eventually("first set", async || {
        bucket.set("k", b"v".to_vec(), WriteCondition::Always).await
    })
    .await;

    drop(server);
    let err = tokio::time::timeout(Duration::from_secs(40), bucket.get("k"))
        .await
        .expect("an answer while the server is down")
        .expect_err("the server is down");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");

    let server = start(&data);
    let value = eventually("get after restart", async || bucket.get("k").await).await;
    assert_eq!(
        value,
        Some(b"v".to_vec()),
        "etcd keeps its data across the restart"
    );
    drop(server);
}
