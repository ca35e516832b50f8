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

/// Opens a bucket with prefix `wasikv-test:<namespace>:` on one shared connection.
pub fn opener() -> impl Fn(String) -> OpenFuture + Send + Sync + 'static {
    let store: Arc<OnceCell<RedisStore>> = Arc::new(OnceCell::new());
    move |ns| {
        let store = store.clone();
        Box::pin(async move {
            let config = RedisConfig {
                url: test_url(),
                prefix: None,
                ca_file: None,
                connect_timeout_ms: 5_000,
                response_timeout_ms: 10_000,
            };
            let store = store
                .get_or_try_init(|| RedisStore::connect(&config))
                .await?;
            Ok(Arc::new(
                RedisBucket::new(store.conn.clone(), &format!("wasikv-test:{ns}:"))
                    .with_watch(store.client.clone()),
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
        url: format!("redis://127.0.0.1:{port}/0"),
        prefix: None,
        ca_file: None,
        connect_timeout_ms: 1_000,
        response_timeout_ms: 10_000,
    }
}
