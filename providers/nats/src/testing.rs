//! Test support (not part of the stable API): buckets on the test server for
//! the behavior suite, each on the namespace the suite names.

use std::sync::Arc;

use tokio::sync::OnceCell;
use wasikv_core::provider::OpenFuture;
use wasikv_core::{Bucket, OpenRequest};

use crate::backend::MESSAGE_OVERHEAD;
use crate::core::NatsStore;
use crate::{NatsBucket, NatsConfig};

/// The test server: `WASIKV_TEST_NATS_URL`, default the machine's NATS
/// with JetStream on 127.0.0.1:4222.
pub fn test_url() -> String {
    std::env::var("WASIKV_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// `text` as one NATS key token: characters other than `[A-Za-z0-9-]`
/// replaced by `_`.
pub fn prefix_token(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The KV bucket test buckets use (created when missing).
pub const TEST_KV_BUCKET: &str = "wasikv_test";

/// Opens a bucket with prefix `wasikv-test.<namespace>` (the namespace's
/// characters other than `[A-Za-z0-9_-]` replaced by `_`) in
/// [`TEST_KV_BUCKET`] on one shared connection to the test server; with a
/// `ttl`, in a KV bucket of that `max_age` (`wasikv_test_ttl_<ms>`).
pub fn opener() -> impl Fn(OpenRequest) -> OpenFuture + Send + Sync + 'static {
    let store: Arc<OnceCell<NatsStore>> = Arc::new(OnceCell::new());
    move |request: OpenRequest| {
        let store = store.clone();
        Box::pin(async move {
            let mut config = NatsConfig::for_url(test_url());
            config.create = true;
            let store = store
                .get_or_try_init(|| NatsStore::connect(&config))
                .await?;
            let kv_bucket = match request.ttl {
                None => TEST_KV_BUCKET.to_string(),
                Some(ttl) => format!("{TEST_KV_BUCKET}_ttl_{}", ttl.as_millis()),
            };
            let kv = store.kv(&kv_bucket, &config, request.ttl).await?;
            Ok(Arc::new(NatsBucket::new(
                kv,
                &format!("wasikv-test.{}", prefix_token(&request.namespace)),
                store.max_payload - MESSAGE_OVERHEAD,
            )) as Arc<dyn Bucket>)
        })
    }
}

/// The command of a private `nats-server` with JetStream on 127.0.0.1:`port`,
/// its store under `dir` (a server started again on the same directory
/// keeps its KV buckets).
pub fn server_command(port: u16, dir: &std::path::Path) -> std::process::Command {
    let mut command = std::process::Command::new("nats-server");
    command
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(dir);
    command
}
