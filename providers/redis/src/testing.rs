//! Test support (not part of the stable API): buckets on the test server for
//! the behavior suite, each on the namespace the suite names.

use std::sync::Arc;

use tokio::sync::OnceCell;
use wasikv_core::Bucket;
use wasikv_core::provider::OpenFuture;

use crate::core::RedisStore;
use crate::{RedisBucket, RedisConfig};

/// The test server: `WASIKV_TEST_REDIS_URL`, default the machine's Redis.
pub fn test_url() -> String {
    std::env::var("WASIKV_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// The seed nodes of the test cluster: `WASIKV_TEST_REDIS_CLUSTER`
/// (comma-separated urls), default the cluster `scripts/services.sh`
/// starts on 17000-17005.
pub fn test_cluster_nodes() -> Vec<String> {
    match std::env::var("WASIKV_TEST_REDIS_CLUSTER") {
        Ok(list) => list.split(',').map(|s| s.trim().to_string()).collect(),
        Err(_) => (17000..17003)
            .map(|port| format!("redis://127.0.0.1:{port}"))
            .collect(),
    }
}

/// Opens a bucket with prefix `wasikv-test:<namespace>:` on one shared
/// connection to the test server.
pub fn opener() -> impl Fn(String) -> OpenFuture + Send + Sync + 'static {
    opener_on(None)
}

/// [`opener`] on the test cluster ([`test_cluster_nodes`]).
pub fn cluster_opener() -> impl Fn(String) -> OpenFuture + Send + Sync + 'static {
    opener_on(Some(test_cluster_nodes()))
}

fn opener_on(
    cluster: Option<Vec<String>>,
) -> impl Fn(String) -> OpenFuture + Send + Sync + 'static {
    let store: Arc<OnceCell<RedisStore>> = Arc::new(OnceCell::new());
    move |ns| {
        let store = store.clone();
        let cluster = cluster.clone();
        Box::pin(async move {
            let config = match &cluster {
                Some(nodes) => RedisConfig::for_cluster(nodes.clone()),
                None => RedisConfig::for_url(test_url()),
            };
            let store = store
                .get_or_try_init(|| RedisStore::connect(&config))
                .await?;
            Ok(Arc::new(
                RedisBucket::new(store.conn.clone(), &format!("wasikv-test:{ns}:"))
                    .with_watch(store.pubsub.clone()),
            ) as Arc<dyn Bucket>)
        })
    }
}

/// The command of a private redis-server for a test, on `port` of
/// 127.0.0.1, without persistence (add flags with `.args`).
pub fn server_command(port: u16) -> std::process::Command {
    let mut command = std::process::Command::new("redis-server");
    command.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]);
    command
}

/// Options of a bucket on a private test server on `port`.
pub fn private_config(port: u16) -> RedisConfig {
    RedisConfig {
        connect_timeout_ms: 1_000,
        ..RedisConfig::for_url(format!("redis://127.0.0.1:{port}/0"))
    }
}
