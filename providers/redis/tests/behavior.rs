//! The behavior suite against a real Redis (`WASIKV_TEST_REDIS_URL`, default
//! the machine's server at 127.0.0.1:6379, database 0). Each case uses a fresh
//! prefix and deletes its keys. An unreachable server fails the suite.

use std::process::ExitCode;
use std::sync::Arc;

use wasikv_core::Bucket;
use wasikv_core::suite::{self, Level};
use wasikv_redis::core::RedisStore;
use wasikv_redis::{RedisBucket, RedisConfig};

fn main() -> ExitCode {
    let url = std::env::var("WASIKV_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    let store: Arc<tokio::sync::OnceCell<RedisStore>> = Arc::new(tokio::sync::OnceCell::new());
    suite::run("redis", Level::Provider, move |ns| {
        let store = store.clone();
        let url = url.clone();
        async move {
            let config = RedisConfig {
                url,
                prefix: None,
                ca_file: None,
                connect_timeout_ms: 5_000,
            };
            let store = store
                .get_or_try_init(|| RedisStore::connect(&config))
                .await?;
            Ok(Arc::new(RedisBucket::new(
                store.conn.clone(),
                &format!("wasikv-test:{ns}:"),
            )) as Arc<dyn Bucket>)
        }
    })
}
