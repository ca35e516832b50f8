//! Test support (not part of the stable API): buckets on the test server for
//! the behavior suite, each on the namespace the suite names.

use std::sync::Arc;

use tokio::sync::OnceCell;
use wasikv_core::Bucket;
use wasikv_core::provider::OpenFuture;

use crate::PostgresBucket;
use crate::config::{PostgresConfig, TableName};
use crate::core::{PostgresStore, ensure_table};

/// The test server: `WASIKV_TEST_POSTGRES_URL`, default the machine's
/// PostgreSQL on 127.0.0.1:5432, database `test`.
pub fn test_url() -> String {
    std::env::var("WASIKV_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The table test buckets use (created when missing).
pub const TEST_TABLE: &str = "wasikv_test";

/// Opens a bucket with prefix `wasikv-test/<namespace>/` in [`TEST_TABLE`]
/// on one shared pool to the test server.
pub fn opener() -> impl Fn(String) -> OpenFuture + Send + Sync + 'static {
    opener_for(test_url())
}

/// Like [`opener`], on the server at `url`.
pub fn opener_for(url: String) -> impl Fn(String) -> OpenFuture + Send + Sync + 'static {
    let store: Arc<OnceCell<PostgresStore>> = Arc::new(OnceCell::new());
    move |ns| {
        let store = store.clone();
        let url = url.clone();
        Box::pin(async move {
            let table = TableName::parse(TEST_TABLE).expect("valid name");
            let store = store
                .get_or_try_init(|| async {
                    let store = PostgresStore::connect(&PostgresConfig::for_url(url)).await?;
                    ensure_table(&store, &table, true).await?;
                    Ok::<_, wasikv_core::Error>(store)
                })
                .await?;
            let bucket = PostgresBucket::new(store.clone(), &table, &format!("wasikv-test/{ns}/"));
            bucket.prepare().await?;
            Ok(Arc::new(bucket) as Arc<dyn Bucket>)
        })
    }
}
