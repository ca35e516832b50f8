//! Test support (not part of the stable API): buckets on the test server for
//! the behavior suite, each on the namespace the suite names.

use std::sync::Arc;

use tokio::sync::OnceCell;
use wasikv_core::provider::OpenFuture;
use wasikv_core::{Bucket, OpenRequest, Result};

use crate::DynamoConfig;
use crate::core::DynamoStore;

/// The test server: `WASIKV_TEST_DYNAMODB_ENDPOINT`, default the moto server
/// `scripts/services.sh` starts.
pub fn test_endpoint() -> String {
    std::env::var("WASIKV_TEST_DYNAMODB_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:14566".into())
}

/// The table the suites share (created when missing).
pub const TEST_TABLE: &str = "wasikv-test";

/// moto's item limit for our items: it counts binary values base64-encoded
/// against 405 000 bytes, so raw values fit up to about 300 000 bytes.
pub const MOTO_MAX_ITEM_BYTES: usize = 300_000;

/// Options of a bucket on the test server (dummy static credentials).
pub fn test_config(table: &str, prefix: &str) -> DynamoConfig {
    serde_json::from_value(serde_json::json!({
        "table": table,
        "prefix": prefix,
        "create_table": true,
        "region": "us-east-1",
        "endpoint": test_endpoint(),
        "access_key_id": "test",
        "secret_access_key": "test",
        "max_item_bytes": MOTO_MAX_ITEM_BYTES,
    }))
    .expect("valid test config")
}

/// A client of the test server.
pub async fn test_store() -> Result<DynamoStore> {
    DynamoStore::connect(&test_config(TEST_TABLE, "")).await
}

/// Opens a bucket with prefix `<namespace>/` in the shared test table
/// (whose DynamoDB TTL is turned on for a bucket with a ttl).
pub fn opener() -> impl Fn(OpenRequest) -> OpenFuture + Send + Sync + 'static {
    // The client and the shared table's stream, looked up once.
    let store: Arc<OnceCell<(DynamoStore, Option<String>)>> = Arc::new(OnceCell::new());
    move |request: OpenRequest| {
        let store = store.clone();
        Box::pin(async move {
            let (store, stream) = store
                .get_or_try_init(|| async {
                    let store = test_store().await?;
                    let stream = store.ensure_table(TEST_TABLE, "pk", true).await?;
                    Ok::<_, wasikv_core::Error>((store, stream))
                })
                .await?;
            if request.ttl.is_some() {
                store.ensure_ttl(TEST_TABLE, true).await?;
            }
            let bucket = crate::DynamoBucket::new(
                store.client.clone(),
                TEST_TABLE,
                "pk",
                &format!("{}/", request.namespace),
                MOTO_MAX_ITEM_BYTES,
            )
            .expiring(request.ttl);
            Ok(Arc::new(match stream {
                Some(arn) => bucket.with_stream(crate::watch::StreamSource {
                    client: store.streams.clone(),
                    arn: arn.clone(),
                }),
                None => bucket,
            }) as Arc<dyn Bucket>)
        })
    }
}
