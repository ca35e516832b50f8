//! The behavior suite against a real etcd (`WASIKV_TEST_ETCD_ENDPOINT`,
//! default `http://127.0.0.1:12379`, started by `scripts/services.sh`). Each
//! case uses a fresh prefix and deletes its keys. An unreachable server fails
//! the suite.

use std::process::ExitCode;
use std::sync::Arc;

use wasikv_core::Bucket;
use wasikv_core::suite::{self, Level};
use wasikv_etcd::core::EtcdStore;
use wasikv_etcd::{EtcdBucket, EtcdConfig};

fn main() -> ExitCode {
    let endpoint = std::env::var("WASIKV_TEST_ETCD_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:12379".into());
    let store: Arc<tokio::sync::OnceCell<EtcdStore>> = Arc::new(tokio::sync::OnceCell::new());
    suite::run("etcd", Level::Provider, move |ns| {
        let store = store.clone();
        let config = EtcdConfig {
            endpoints: vec![endpoint.clone()],
            prefix: None,
            username: None,
            password: None,
            ca_file: None,
            connect_timeout_ms: 5_000,
        };
        async move {
            let store = store
                .get_or_try_init(|| EtcdStore::connect(&config))
                .await?;
            Ok(Arc::new(EtcdBucket::new(
                store.kv.clone(),
                &format!("wasikv-test/{ns}/"),
            )) as Arc<dyn Bucket>)
        }
    })
}
