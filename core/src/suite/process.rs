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

    /// Takes charge of a process started elsewhere (a helper that waits for
    /// its server to be ready): it is killed and reaped when dropped.
    pub fn adopt(child: Child) -> Self {
        TestServer(child)
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// Freezes the process (SIGSTOP): it holds its sockets but answers
    /// nothing, as a partitioned or hung server. Unix only: elsewhere an
    /// error says so.
    pub fn pause(&self) -> std::io::Result<()> {
        self.signal("STOP")
    }

    /// Thaws a process [`TestServer::pause`] froze (SIGCONT).
    pub fn resume(&self) -> std::io::Result<()> {
        self.signal("CONT")
    }

    #[cfg(unix)]
    fn signal(&self, name: &str) -> std::io::Result<()> {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.0.id().to_string())
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "kill -{name} failed: {status}"
            )))
        }
    }

    #[cfg(not(unix))]
    fn signal(&self, name: &str) -> std::io::Result<()> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            format!("SIG{name} needs Unix signals; pause/resume tests run on Linux"),
        ))
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
