//! The behavior suite against the embedded provider, on a temporary file.

use std::process::ExitCode;
use std::sync::Arc;

use wasikv_core::Bucket;
use wasikv_core::suite::{self, Level};
use wasikv_embedded::EmbeddedBucket;
use wasikv_embedded::core::EmbeddedStore;

fn main() -> ExitCode {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(EmbeddedStore::open(&dir.path().join("suite.redb")).expect("open store"));
    let code = suite::run(
        "embedded",
        Level::Provider,
        move |open: suite::OpenRequest| {
            let store = store.clone();
            async move {
                let bucket = EmbeddedBucket::new(store, &open.namespace).expiring(open.ttl);
                Ok(Arc::new(bucket) as Arc<dyn Bucket>)
            }
        },
    );
    drop(dir);
    code
}
