//! Test support (not part of the stable API): buckets on the test server for
//! the behavior suite, each on the namespace the suite names.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OnceCell;
use wasikv_core::provider::OpenFuture;
use wasikv_core::{Bucket, OpenRequest};

use crate::MemcachedBucket;
use crate::core::MemcachedStore;

/// The test server: `WASIKV_TEST_MEMCACHED_ADDRESS`, default the one
/// `scripts/services.sh` starts.
pub fn test_address() -> String {
    std::env::var("WASIKV_TEST_MEMCACHED_ADDRESS").unwrap_or_else(|_| "127.0.0.1:12211".into())
}

/// Opens a bucket with prefix `wasikv-test:<namespace>:` (and the requested
/// `ttl`) on one shared pool.
pub fn opener() -> impl Fn(OpenRequest) -> OpenFuture + Send + Sync + 'static {
    let store: Arc<OnceCell<Arc<MemcachedStore>>> = Arc::new(OnceCell::new());
    move |request: OpenRequest| {
        let store = store.clone();
        Box::pin(async move {
            let store = store
                .get_or_try_init(|| async {
                    Ok::<_, wasikv_core::Error>(Arc::new(
                        MemcachedStore::connect(&test_address(), 16, Duration::from_secs(5))
                            .await?,
                    ))
                })
                .await?;
            let prefix = format!("wasikv-test:{}:", request.namespace);
            Ok(Arc::new(
                MemcachedBucket::new(store.clone(), &prefix, 1 << 20)?.expiring(request.ttl),
            ) as Arc<dyn Bucket>)
        })
    }
}

/// The command of a private memcached for a test, on `port` of 127.0.0.1
/// (no UDP, 16 MB; `-u` so that it also runs as root).
pub fn server_command(port: u16) -> std::process::Command {
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let mut command = std::process::Command::new("memcached");
    command.args([
        "-l",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-U",
        "0",
        "-m",
        "16",
        "-u",
        &user,
    ]);
    command
}
