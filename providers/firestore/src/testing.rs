//! Test support (not part of the stable API): buckets on the test emulator for
//! the behavior suite, each on the namespace the suite names.

use std::sync::Arc;

use tokio::sync::OnceCell;
use wasikv_core::provider::OpenFuture;
use wasikv_core::{Bucket, OpenRequest};

use crate::core::FirestoreStore;
use crate::{FirestoreBucket, FirestoreConfig};

/// The test emulator: `WASIKV_TEST_FIRESTORE_EMULATOR`, default the one
/// `scripts/services.sh` starts.
pub fn test_emulator_host() -> String {
    std::env::var("WASIKV_TEST_FIRESTORE_EMULATOR").unwrap_or_else(|_| "127.0.0.1:18686".into())
}

/// The project id the tests use on the emulator (any id works there).
pub const TEST_PROJECT: &str = "demo-wasikv";

/// Options of a bucket on the test emulator.
pub fn test_config() -> FirestoreConfig {
    FirestoreConfig {
        project_id: TEST_PROJECT.into(),
        database_id: "(default)".into(),
        collection: None,
        parent: None,
        emulator_host: Some(test_emulator_host()),
        timeout_ms: 30_000,
    }
}

/// Opens the collection `wasikv-test-<namespace>` on one shared connection.
pub fn opener() -> impl Fn(OpenRequest) -> OpenFuture + Send + Sync + 'static {
    let store: Arc<OnceCell<FirestoreStore>> = Arc::new(OnceCell::new());
    move |request: OpenRequest| {
        let store = store.clone();
        Box::pin(async move {
            let store = store
                .get_or_try_init(|| async { FirestoreStore::connect(&test_config()).await })
                .await?;
            Ok(Arc::new(
                FirestoreBucket::new(store, None, &format!("wasikv-test-{}", request.namespace))
                    .expiring(request.ttl),
            ) as Arc<dyn Bucket>)
        })
    }
}
