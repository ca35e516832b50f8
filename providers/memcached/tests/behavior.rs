//! The behavior suite against a real memcached (`WASIKV_TEST_MEMCACHED_ADDRESS`,
//! default `127.0.0.1:12211`, started by `scripts/services.sh`). Each case uses a
//! fresh prefix. memcached cannot list keys, so the listing cases must report
//! `unsupported`, and the suite cannot delete what a case wrote: the test
//! server is private to the tests.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use wasikv_core::Bucket;
use wasikv_core::suite::{self, Level};
use wasikv_memcached::MemcachedBucket;
use wasikv_memcached::core::MemcachedStore;

fn main() -> ExitCode {
    let address =
        std::env::var("WASIKV_TEST_MEMCACHED_ADDRESS").unwrap_or_else(|_| "127.0.0.1:12211".into());
    let store: Arc<tokio::sync::OnceCell<Arc<MemcachedStore>>> =
        Arc::new(tokio::sync::OnceCell::new());
    suite::run("memcached", Level::Provider, move |ns| {
        let store = store.clone();
        let address = address.clone();
        async move {
            let store = store
                .get_or_try_init(|| async {
                    Ok::<_, wasikv_core::Error>(Arc::new(
                        MemcachedStore::connect(&address, 16, Duration::from_secs(5)).await?,
                    ))
                })
                .await?;
            Ok(Arc::new(MemcachedBucket::new(
                store.clone(),
                &format!("wasikv-test:{ns}:"),
                1 << 20,
            )?) as Arc<dyn Bucket>)
        }
    })
}
