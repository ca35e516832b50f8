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
        #[cfg(feature = "redis")]
        trials.extend(redis()?);
        #[cfg(feature = "etcd")]
        trials.extend(etcd()?);
        #[cfg(feature = "memcached")]
        trials.extend(memcached()?);
        Ok(trials)
    })();
    let code = suite::run_trials(all);
    drop(dir);
    code
}

/// Redis behind the emulation layer (batches over its 512-item limit get chunked).
#[cfg(feature = "redis")]
fn redis() -> Result<Vec<suite::Trial>, String> {
    use wasikv_redis::core::RedisStore;
    use wasikv_redis::{RedisBucket, RedisConfig};
    let url = std::env::var("WASIKV_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    let store: Arc<tokio::sync::OnceCell<RedisStore>> = Arc::new(tokio::sync::OnceCell::new());
    suite::trials("host-redis", Level::Host, move |ns| {
        let store = store.clone();
        let config = RedisConfig {
            url: url.clone(),
            prefix: None,
            ca_file: None,
            connect_timeout_ms: 5_000,
        };
        async move {
            let store = store
                .get_or_try_init(|| RedisStore::connect(&config))
                .await?;
            Ok(layered(Arc::new(RedisBucket::new(
                store.conn.clone(),
                &format!("wasikv-test:{ns}:"),
            ))))
        }
    })
}

/// etcd behind the emulation layer: increment by CAS loop over mod_revision,
/// batches over 128 operations chunked.
#[cfg(feature = "etcd")]
fn etcd() -> Result<Vec<suite::Trial>, String> {
    use wasikv_etcd::core::EtcdStore;
    use wasikv_etcd::{EtcdBucket, EtcdConfig};
    let endpoint = std::env::var("WASIKV_TEST_ETCD_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:12379".into());
    let store: Arc<tokio::sync::OnceCell<EtcdStore>> = Arc::new(tokio::sync::OnceCell::new());
    suite::trials("host-etcd", Level::Host, move |ns| {
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
            Ok(layered(Arc::new(EtcdBucket::new(
                store.kv.clone(),
                &format!("wasikv-test/{ns}/"),
            ))))
        }
    })
}

/// memcached behind the emulation layer: increment by CAS loop over gets/cas,
/// batches over 100 keys chunked; list-keys stays unsupported.
#[cfg(feature = "memcached")]
fn memcached() -> Result<Vec<suite::Trial>, String> {
    use wasikv_memcached::MemcachedBucket;
    use wasikv_memcached::core::MemcachedStore;
    let address =
        std::env::var("WASIKV_TEST_MEMCACHED_ADDRESS").unwrap_or_else(|_| "127.0.0.1:12211".into());
    let store: Arc<tokio::sync::OnceCell<Arc<MemcachedStore>>> =
        Arc::new(tokio::sync::OnceCell::new());
    suite::trials("host-memcached", Level::Host, move |ns| {
        let store = store.clone();
        let address = address.clone();
        async move {
            let store = store
                .get_or_try_init(|| async {
                    Ok::<_, wasikv_core::Error>(Arc::new(
                        MemcachedStore::connect(&address, 16, std::time::Duration::from_secs(5))
                            .await?,
                    ))
                })
                .await?;
            Ok(layered(Arc::new(MemcachedBucket::new(
                store.clone(),
                &format!("wasikv-test:{ns}:"),
                1 << 20,
            )?)))
        }
    })
}
