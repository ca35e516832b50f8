//! The behavior suite at the host level: provider buckets behind the
//! emulation layer, with every operation required to work. Memory restricted
//! to the required operations makes every emulation path run.

use std::process::ExitCode;
use std::sync::Arc;

use wasikv_core::Bucket;
use wasikv_core::suite::{self, Level};
use wasikv_embedded::EmbeddedBucket;
use wasikv_embedded::core::EmbeddedStore;
use wasikv_host::emulate::{EmulatedBucket, EmulationPolicy};
use wasikv_memory::core::MemoryStore;
use wasikv_memory::{MemoryBucket, MemoryConfig};

fn layered(inner: Arc<dyn Bucket>) -> Arc<dyn Bucket> {
    Arc::new(EmulatedBucket::new(inner, EmulationPolicy::default()))
}

fn memory(name: &'static str, config: MemoryConfig) -> Result<Vec<suite::Trial>, String> {
    let store = Arc::new(MemoryStore::new());
    suite::trials(name, Level::Host, move |ns| {
        let store = store.clone();
        let config = config.clone();
        async move { Ok(layered(Arc::new(MemoryBucket::new(&store, &ns, &config)))) }
    })
}

fn main() -> ExitCode {
    let dir = tempfile::tempdir().expect("temp dir");
    let file =
        Arc::new(EmbeddedStore::open(&dir.path().join("host-suite.redb")).expect("open store"));
    let all = (|| {
        let mut trials = memory("host-memory", MemoryConfig::default())?;
        trials.extend(memory(
            "host-memory-required-only",
            MemoryConfig {
                required_only: true,
                ..Default::default()
            },
        )?);
        // Native batches chunked to a small declared limit.
        trials.extend(memory(
            "host-memory-batch-limit-7",
            MemoryConfig {
                max_batch_items: Some(7),
                ..Default::default()
            },
        )?);
        trials.extend(suite::trials("host-embedded", Level::Host, move |ns| {
            let file = file.clone();
            async move { Ok(layered(Arc::new(EmbeddedBucket::new(file, &ns)))) }
        })?);
        Ok(trials)
    })();
    let code = suite::run_trials(all);
    drop(dir);
    code
}
