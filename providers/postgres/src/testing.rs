//! Test support (not part of the stable API): buckets on the test server for
//! the behavior suite, each on the namespace the suite names.

use std::sync::Arc;

use tokio::sync::OnceCell;
use wasikv_core::provider::OpenFuture;
use wasikv_core::{Bucket, OpenRequest};

use crate::PostgresBucket;
use crate::config::{PostgresConfig, TableName};
use crate::core::PostgresStore;

/// The test server: `WASIKV_TEST_POSTGRES_URL`, default the machine's
/// PostgreSQL on 127.0.0.1:5432, database `test`.
pub fn test_url() -> String {
    std::env::var("WASIKV_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The table test buckets use (created when missing).
pub const TEST_TABLE: &str = "wasikv_test";

/// Opens a bucket with prefix `wasikv-test/<namespace>/` in [`TEST_TABLE`]
/// (created, or given the expiry column, when needed) on one shared pool to
/// the test server.
pub fn opener() -> impl Fn(OpenRequest) -> OpenFuture + Send + Sync + 'static {
    opener_for(test_url())
}

/// Like [`opener`], on the server at `url`.
pub fn opener_for(url: String) -> impl Fn(OpenRequest) -> OpenFuture + Send + Sync + 'static {
    let store: Arc<OnceCell<PostgresStore>> = Arc::new(OnceCell::new());
    move |request: OpenRequest| {
        let store = store.clone();
        let url = url.clone();
        Box::pin(async move {
            let table = TableName::parse(TEST_TABLE).expect("valid name");
            let store = store
                .get_or_try_init(|| async {
                    PostgresStore::connect(&PostgresConfig::for_url(url)).await
                })
                .await?;
            let prefix = format!("wasikv-test/{}/", request.namespace);
            let bucket = PostgresBucket::open(store, &table, &prefix, true, request.ttl).await?;
            Ok(Arc::new(bucket) as Arc<dyn Bucket>)
        })
    }
}

/// A private PostgreSQL server of a test (restart and crash tests): its own
/// data directory and port on 127.0.0.1, trust authentication for user
/// `postgres`, database `postgres`. PostgreSQL refuses to run as root, so a
/// test running as root runs it as the `postgres` user (`setpriv`). Unix
/// only. [`PrivateServer::start`] gives the running server's process: kill
/// it (SIGKILL, a crash) to stop it, e.g. through the test suite's
/// `TestServer::adopt`, which kills it when dropped.
#[cfg(unix)]
pub struct PrivateServer {
    dir: std::path::PathBuf,
    port: u16,
}

#[cfg(unix)]
impl PrivateServer {
    /// A new cluster under `dir` (made with `initdb`; `dir` must be empty
    /// or missing), not started.
    pub fn init(dir: &std::path::Path, port: u16) -> Self {
        std::fs::create_dir_all(dir).expect("server directory");
        let data = dir.join("data");
        as_postgres_owner(dir);
        let status = run_as_postgres(&bin("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("cannot run initdb (PostgreSQL's server package): {e}"));
        assert!(status.success(), "initdb failed: {status}");
        PrivateServer {
            dir: dir.to_path_buf(),
            port,
        }
    }

    /// The url of database `postgres` on it.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server and waits until it accepts connections (after
    /// crash recovery, if it was killed). A server just killed may still
    /// have backends holding its shared memory: starting is retried until
    /// they are gone.
    pub fn start(&self) -> std::process::Child {
        self.start_with(&[])
    }

    /// [`PrivateServer::start`] with TLS on, serving `cert` and `key` (PEM;
    /// copied into the server's directory, the key readable by its owner only).
    pub fn start_tls(&self, cert: &std::path::Path, key: &std::path::Path) -> std::process::Child {
        use std::os::unix::fs::PermissionsExt;
        let (server_cert, server_key) = (self.dir.join("server.crt"), self.dir.join("server.key"));
        std::fs::copy(cert, &server_cert).expect("certificate");
        std::fs::copy(key, &server_key).expect("key");
        std::fs::set_permissions(&server_key, std::fs::Permissions::from_mode(0o600))
            .expect("key permissions");
        as_postgres_owner(&self.dir);
        self.start_with(&[
            "ssl=on".into(),
            format!("ssl_cert_file={}", server_cert.display()),
            format!("ssl_key_file={}", server_key.display()),
        ])
    }

    /// Starts the server with `settings` (`name=value`, as `-c` options).
    fn start_with(&self, settings: &[String]) -> std::process::Child {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let mut command = run_as_postgres(&bin("postgres"));
            command
                .arg("-D")
                .arg(self.dir.join("data"))
                .args(["-p", &self.port.to_string()])
                .args(["-c", "listen_addresses=127.0.0.1"])
                .args(["-c", "unix_socket_directories="]);
            for setting in settings {
                command.args(["-c", setting]);
            }
            let mut server = command
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot start postgres (PostgreSQL's server package): {e}")
                });
            let started = std::time::Instant::now();
            while started.elapsed() < std::time::Duration::from_secs(30) {
                if self.ready() {
                    return server;
                }
                if server.try_wait().is_ok_and(|status| status.is_some()) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            assert!(
                std::time::Instant::now() < deadline,
                "private PostgreSQL on port {} did not start within 60 s",
                self.port
            );
            let _ = server.kill();
            let _ = server.wait();
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
    }

    fn ready(&self) -> bool {
        std::process::Command::new(bin("pg_isready"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
            .status()
            .is_ok_and(|s| s.success())
    }
}

/// A PostgreSQL program: on `PATH`, else in the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian's layout).
#[cfg(unix)]
fn bin(name: &str) -> std::path::PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    on_path
        .or_else(|| {
            let mut versions: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
                .ok()?
                .filter_map(|e| e.ok().map(|e| e.path().join("bin").join(name)))
                .filter(|p| p.is_file())
                .collect();
            versions.sort();
            versions.pop()
        })
        .unwrap_or_else(|| name.into())
}

#[cfg(unix)]
fn running_as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// `program`, run as the `postgres` user when this process is root.
#[cfg(unix)]
fn run_as_postgres(program: &std::path::Path) -> std::process::Command {
    if running_as_root() {
        let mut command = std::process::Command::new("setpriv");
        command
            .args([
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--",
            ])
            .arg(program);
        command
    } else {
        std::process::Command::new(program)
    }
}

/// Gives `dir` to the `postgres` user when this process is root.
#[cfg(unix)]
fn as_postgres_owner(dir: &std::path::Path) {
    if running_as_root() {
        let status = std::process::Command::new("chown")
            .args(["-R", "postgres:"])
            .arg(dir)
            .status()
            .expect("chown");
        assert!(status.success(), "chown postgres {}", dir.display());
    }
}
