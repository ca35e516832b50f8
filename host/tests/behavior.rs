//! The behavior suite at the host level: provider buckets behind the
//! emulation layer, with every operation required to work. Memory restricted
//! to the required operations makes every emulation path run.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use wasikv_core::Bucket;
use wasikv_core::suite::{self, Level};
use wasikv_embedded::EmbeddedBucket;
use wasikv_embedded::core::EmbeddedStore;
use wasikv_host::emulate::{EmulatedBucket, EmulationPolicy};
use wasikv_memory::core::MemoryStore;
use wasikv_memory::{MemoryBucket, MemoryConfig};

/// `inner` behind the emulation layer, as the host opens a bucket with `ttl`.
fn layered(inner: Arc<dyn Bucket>, ttl: Option<Duration>) -> Arc<dyn Bucket> {
    let policy = EmulationPolicy {
        ttl,
        ..EmulationPolicy::default()
    };
    Arc::new(EmulatedBucket::new(inner, policy))
}

fn memory(name: &'static str, config: MemoryConfig) -> Result<Vec<suite::Trial>, String> {
    let store = Arc::new(MemoryStore::new());
    suite::trials(name, Level::Host, move |open: suite::OpenRequest| {
        let store = store.clone();
        let config = config.clone();
        async move {
            let bucket = MemoryBucket::new(&store, &open.namespace, &config).expiring(open.ttl);
            Ok(layered(Arc::new(bucket), open.ttl))
        }
    })
}

/// Embedded buckets on `file` (values over `max_value_bytes` chunked by the
/// host) behind the emulation layer.
fn embedded(
    name: &'static str,
    file: Arc<EmbeddedStore>,
    max_value_bytes: Option<usize>,
) -> Result<Vec<suite::Trial>, String> {
    suite::trials(name, Level::Host, move |open: suite::OpenRequest| {
        let file = file.clone();
        async move {
            let bucket = EmbeddedBucket::new(file, &open.namespace)
                .with_max_value_bytes(max_value_bytes)
                .expiring(open.ttl);
            Ok(layered(Arc::new(bucket), open.ttl))
        }
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
        // Values over a small store limit: chunked (with every other
        // emulation underneath too in the required-only variant).
        trials.extend(memory(
            "host-memory-chunked-4096",
            MemoryConfig {
                max_value_bytes: Some(4096),
                ..Default::default()
            },
        )?);
        trials.extend(memory(
            "host-memory-required-only-chunked-65536",
            MemoryConfig {
                required_only: true,
                max_value_bytes: Some(65536),
                max_batch_items: Some(7),
                ..Default::default()
            },
        )?);
        trials.extend(embedded(
            "host-embedded-chunked-262144",
            file.clone(),
            Some(262144),
        )?);
        trials.extend(embedded("host-embedded", file, None)?);
        #[cfg(feature = "redis")]
        trials.extend(redis()?);
        #[cfg(feature = "etcd")]
        trials.extend(etcd()?);
        #[cfg(feature = "memcached")]
        trials.extend(memcached()?);
        #[cfg(feature = "dynamodb")]
        trials.extend(networked(
            "host-dynamodb",
            wasikv_dynamodb::testing::opener(),
        )?);
        #[cfg(feature = "firestore")]
        trials.extend(networked(
            "host-firestore",
            wasikv_firestore::testing::opener(),
        )?);
        #[cfg(feature = "cosmos")]
        trials.extend(networked(
            "host-cosmos",
            wasikv_cosmos::testing::opener(false),
        )?);
        #[cfg(feature = "cosmos")]
        trials.extend(networked(
            "host-cosmos-partition",
            wasikv_cosmos::testing::opener(true),
        )?);
        #[cfg(feature = "postgres")]
        trials.extend(networked(
            "host-postgres",
            wasikv_postgres::testing::opener(),
        )?);
        #[cfg(feature = "nats")]
        trials.extend(networked("host-nats", wasikv_nats::testing::opener())?);
        Ok(trials)
    })();
    let code = suite::run_trials(all);
    drop(dir);
    code
}

/// A networked provider's test buckets behind the emulation layer.
#[cfg(any(
    feature = "redis",
    feature = "etcd",
    feature = "memcached",
    feature = "dynamodb",
    feature = "firestore",
    feature = "cosmos",
    feature = "postgres",
    feature = "nats"
))]
fn networked<F, Fut>(name: &str, open: F) -> Result<Vec<suite::Trial>, String>
where
    F: Fn(suite::OpenRequest) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = wasikv_core::Result<Arc<dyn Bucket>>> + Send + 'static,
{
    let open = Arc::new(open);
    suite::trials(name, Level::Host, move |request: suite::OpenRequest| {
        let open = open.clone();
        let ttl = request.ttl;
        async move { Ok(layered(open(request).await?, ttl)) }
    })
}

/// Redis behind the emulation layer (batches over its 512-item limit get chunked).
#[cfg(feature = "redis")]
fn redis() -> Result<Vec<suite::Trial>, String> {
    networked("host-redis", wasikv_redis::testing::opener())
}

/// etcd behind the emulation layer: increment by CAS loop over mod_revision,
/// batches over 128 operations chunked.
#[cfg(feature = "etcd")]
fn etcd() -> Result<Vec<suite::Trial>, String> {
    networked("host-etcd", wasikv_etcd::testing::opener())
}

/// memcached behind the emulation layer: increment by CAS loop over gets/cas,
/// batches over 100 keys chunked; list-keys stays unsupported.
#[cfg(feature = "memcached")]
fn memcached() -> Result<Vec<suite::Trial>, String> {
    networked("host-memcached", wasikv_memcached::testing::opener())
}
