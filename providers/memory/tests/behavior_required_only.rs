//! The behavior suite against the memory provider: with every native
//! operation, and restricted to the required ones (the optional operations
//! must then report `unsupported`).

use std::process::ExitCode;
use std::sync::Arc;

use wasikv_core::Bucket;
use wasikv_core::suite::{self, Level};
use wasikv_memory::core::MemoryStore;
use wasikv_memory::{MemoryBucket, MemoryConfig};

fn main() -> ExitCode {
    let store = Arc::new(MemoryStore::new());
    let required_only = true;
    let name = "memory-required-only";
    suite::run(name, Level::Provider, move |open: suite::OpenRequest| {
        let store = store.clone();
        async move {
            let config = MemoryConfig {
                required_only,
                max_value_bytes: Some(8 << 20),
                ..Default::default()
            };
            Ok(
                Arc::new(MemoryBucket::new(&store, &open.namespace, &config).expiring(open.ttl))
                    as Arc<dyn Bucket>,
            )
        }
    })
}
