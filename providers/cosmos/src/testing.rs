//! Test support (not part of the stable API): buckets on the test emulator
//! for the behavior suite, each on the namespace the suite names.

use std::sync::Arc;

use tokio::sync::OnceCell;
use wasikv_core::provider::OpenFuture;
use wasikv_core::{Bucket, OpenRequest, Result};

use crate::core::CosmosStore;
use crate::{CosmosBucket, CosmosConfig};

/// The test emulator: `WASIKV_TEST_COSMOS_ENDPOINT`, default the fixture
/// `scripts/services.sh` starts.
pub fn test_endpoint() -> String {
    std::env::var("WASIKV_TEST_COSMOS_ENDPOINT")
        .unwrap_or_else(|_| "https://127.0.0.1:18081/".into())
}

/// The key the tests use (the fixture accepts any base64 key).
pub const TEST_KEY: &str =
    "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==";

/// The database the tests use.
pub const TEST_DATABASE: &str = "wasikv-test";

/// The container partition-scoped test buckets share.
pub const SHARED_CONTAINER: &str = "shared";

/// Options of a bucket on the test emulator.
pub fn test_config(container: &str, partition: Option<&str>) -> CosmosConfig {
    CosmosConfig {
        endpoint: test_endpoint(),
        key: TEST_KEY.into(),
        database: TEST_DATABASE.into(),
        container: Some(container.into()),
        partition: partition.map(str::to_string),
        create: true,
        region: "East US".into(),
        timeout_ms: 30_000,
    }
}

/// A client of the test emulator.
pub async fn test_store() -> Result<CosmosStore> {
    CosmosStore::connect(&test_config(SHARED_CONTAINER, None)).await
}

/// Opens buckets on one shared client: with `partitioned`, the logical
/// partition `<namespace>` of one shared container; otherwise a container
/// `<namespace>` of its own.
pub fn opener(partitioned: bool) -> impl Fn(OpenRequest) -> OpenFuture + Send + Sync + 'static {
    let store: Arc<OnceCell<CosmosStore>> = Arc::new(OnceCell::new());
    move |request: OpenRequest| {
        let store = store.clone();
        Box::pin(async move {
            let store = store.get_or_try_init(test_store).await?;
            let (container, partition) = if partitioned {
                (SHARED_CONTAINER.to_string(), Some(request.namespace))
            } else {
                (request.namespace, None)
            };
            let client = store.container(TEST_DATABASE, &container, true).await?;
            if request.ttl.is_some() {
                store.ensure_item_ttl(&client, &container, true).await?;
            }
            Ok(
                Arc::new(CosmosBucket::new(client, partition).expiring(request.ttl))
                    as Arc<dyn Bucket>,
            )
        })
    }
}
