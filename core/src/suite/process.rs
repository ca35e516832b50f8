//! Helpers for provider tests that run a private server process (restart and
//! TLS tests): the process is killed when the guard drops, also on a panic.

use std::future::Future;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process of a test, killed and reaped when dropped.
#[derive(Debug)]
pub struct TestServer(Child);

impl TestServer {
    /// Starts `command` with its output discarded; `what` names the binary
    /// and how to get it, for the panic when it is missing.
    pub fn spawn(command: &mut Command, what: &str) -> Self {
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        TestServer(child)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Retries `f` every 100 ms until it succeeds, panicking with its last error
/// after `limit` (for waiting on a server that is starting or coming back).
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = crate::Result<T>>,
{
    let started = Instant::now();
    loop {
        match f().await {
            Ok(value) => return value,
            Err(e) if started.elapsed() >= limit => {
                panic!("{what} did not succeed within {limit:?}: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Stops `server` and asserts that a read of `bucket` then fails with
/// `unavailable` within `limit` (never hangs, never another kind).
pub async fn expect_unavailable_when_stopped(
    server: TestServer,
    bucket: &dyn crate::Bucket,
    limit: Duration,
) {
    drop(server);
    let err = tokio::time::timeout(limit, bucket.get("k"))
        .await
        .unwrap_or_else(|_| panic!("no answer within {limit:?} while the server is down"))
        .expect_err("the server is down");
    assert_eq!(err.kind(), crate::ErrorKind::Unavailable, "{err}");
}
