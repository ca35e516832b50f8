//! The behavior suite: every operation and every contract of wasikv, run
//! against any [`Bucket`].
//!
//! Each provider crate runs it from a `harness = false` test target:
//!
//! ```no_run
//! # use std::sync::Arc;
//! # async fn open(ns: String) -> wasikv_core::Result<Arc<dyn wasikv_core::Bucket>> { unimplemented!() }
//! fn main() -> std::process::ExitCode {
//!     wasikv_core::suite::run("memory", wasikv_core::suite::Level::Provider, |o| open(o.namespace))
//! }
//! ```
//!
//! `open` gets an [`OpenRequest`]: a fresh namespace name per case (unique per run)
//! and, for the expiry cases, a `ttl`; it returns a bucket on that namespace
//! whose keys expire `ttl` after each write. The suite deletes every key it
//! wrote when a case ends.
//!
//! Cases are gated by the bucket's [`Capabilities`] in both
//! directions: an operation declared native or emulated must pass its cases; an
//! operation declared unsupported must return
//! [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported), and its functional
//! cases are reported as ignored.

mod cases;
pub mod plans;
pub mod process;
pub mod tls;

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

pub use libtest_mimic::Trial;
use libtest_mimic::{Arguments, Failed};

use crate::{Bucket, Capabilities, Operation, Result};

/// Which layer the suite runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// A provider's bucket as is: optional operations may be unsupported, and
    /// batch calls get distinct keys within the declared batch limit.
    Provider,
    /// A bucket behind the host's emulation layer: every operation must work,
    /// including repeated keys in batches and batches over the store's limit.
    Host,
}

pub use crate::provider::{OpenFuture, OpenRequest};

/// Adapts an opener of namespaces to the suite, for a provider whose test
/// buckets take no `ttl` (its capabilities must then declare no expiry, or
/// the expiry cases fail: its keys would not expire).
pub fn namespace_only<F, Fut>(open: F) -> impl Fn(OpenRequest) -> Fut + Send + Sync + 'static
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
{
    move |request: OpenRequest| open(request.namespace)
}

/// The `ttl` of the expiry cases' buckets.
pub const TTL: Duration = Duration::from_secs(3);

/// Boxed future of a case.
pub type CaseFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// One behavior case.
pub struct Case {
    /// Test name.
    pub name: &'static str,
    /// Operations the case needs; it is ignored when one is unsupported.
    pub needs: &'static [Operation],
    /// Runs only at [`Level::Host`].
    pub host_only: bool,
    /// Runs on a bucket with a [`TTL`]; ignored where the capabilities
    /// declare no expiry.
    pub expiring: bool,
    /// The body.
    pub run: fn(Arc<dyn Bucket>) -> CaseFuture,
}

/// How long one case may take before it fails (a hang is a failure, not a stuck CI).
const CASE_TIMEOUT: Duration = Duration::from_secs(180);

/// Runs the suite as a libtest-compatible test binary (filters, `--list`,
/// `--test-threads` work) and returns its exit code.
pub fn run<F, Fut>(suite: &str, level: Level, open: F) -> ExitCode
where
    F: Fn(OpenRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Arc<dyn Bucket>>> + Send + 'static,
{
    run_trials(trials(suite, level, open))
}

/// Runs trials from one or more [`trials`] calls as one test binary.
pub fn run_trials(trials: std::result::Result<Vec<Trial>, String>) -> ExitCode {
    let args = Arguments::from_args();
    match trials {
        Ok(trials) => libtest_mimic::run(&args, trials).exit_code(),
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// The trials of the suite for buckets made by `open`, named `suite::case`.
/// Fails when no bucket can be opened (a missing server is a failure, not a skip).
pub fn trials<F, Fut>(suite: &str, level: Level, open: F) -> std::result::Result<Vec<Trial>, String>
where
    F: Fn(OpenRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Arc<dyn Bucket>>> + Send + 'static,
{
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?,
    );
    let open = Arc::new(open);
    let run_id = format!("{:08x}", rand::random::<u32>());

    // Probe the capabilities once to gate the cases.
    let probe_ns = format!("wasikv-suite-{run_id}-probe");
    let probe = OpenRequest {
        namespace: probe_ns,
        ttl: None,
    };
    let caps: Capabilities = match runtime.block_on(open(probe)) {
        Ok(bucket) => bucket.capabilities().clone(),
        Err(e) => {
            return Err(format!(
                "{suite}: cannot open a bucket for the behavior suite: {e}"
            ));
        }
    };

    let mut trials = Vec::new();
    for (index, case) in cases::all().into_iter().enumerate() {
        if case.host_only && level == Level::Provider {
            continue;
        }
        let unavailable = case
            .needs
            .iter()
            .find(|op| !caps.support(**op).is_available())
            .map(|op| format!("needs {}", op.name()))
            .or_else(|| {
                (case.expiring && !caps.expiry.is_supported()).then(|| "needs expiry".to_string())
            });
        let name = format!("{suite}::{}", case.name);
        let runtime = runtime.clone();
        let open = open.clone();
        let request = OpenRequest {
            namespace: format!("wasikv-suite-{run_id}-{index}"),
            ttl: case.expiring.then_some(TTL),
        };
        let body = case.run;
        let trial = Trial::test(name, move || {
            runtime.block_on(run_case(request, open, body))
        });
        trials.push(match unavailable {
            Some(why) => trial.with_ignored_flag(true).with_kind(why),
            None => trial,
        });
    }
    for op in Operation::ALL {
        if caps.support(op).is_available() {
            continue;
        }
        let name = format!(
            "{suite}::unsupported_{}_returns_unsupported",
            op.name().replace(['-', '/'], "_")
        );
        let runtime = runtime.clone();
        let open = open.clone();
        let namespace = format!(
            "wasikv-suite-{run_id}-unsupported-{}",
            op.name().replace('/', "-")
        );
        trials.push(Trial::test(name, move || {
            runtime.block_on(async move {
                let bucket = open(OpenRequest {
                    namespace,
                    ttl: None,
                })
                .await
                .map_err(|e| Failed::from(e.to_string()))?;
                let outcome =
                    tokio::time::timeout(CASE_TIMEOUT, cases::expect_unsupported(&*bucket, op))
                        .await;
                cleanup(&*bucket).await;
                outcome
                    .map_err(|_| Failed::from("timed out"))?
                    .map_err(Failed::from)
            })
        }));
    }
    Ok(trials)
}

async fn run_case<F, Fut>(
    request: OpenRequest,
    open: Arc<F>,
    body: fn(Arc<dyn Bucket>) -> CaseFuture,
) -> Result<(), Failed>
where
    F: Fn(OpenRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Arc<dyn Bucket>>> + Send + 'static,
{
    let bucket = open(request)
        .await
        .map_err(|e| Failed::from(format!("open: {e}")))?;
    let outcome = tokio::time::timeout(CASE_TIMEOUT, body(bucket.clone())).await;
    cleanup(&*bucket).await;
    match outcome {
        Ok(result) => result.map_err(Failed::from),
        Err(_) => Err(Failed::from(format!(
            "timed out after {}s",
            CASE_TIMEOUT.as_secs()
        ))),
    }
}

/// Checks, for a provider's own tests, that `key`, stored past its expiry
/// (written by another client, or a bucket with a ttl, and not yet deleted
/// by the store), is absent for every read path of `bucket` (get, exists,
/// get-many where native, listing: exactly `listed` remain), and that a
/// create-if-absent replaces it while a second one finds the new value.
/// Panics naming the first check that fails.
pub async fn assert_expired_key_is_absent(bucket: &dyn Bucket, key: &str, listed: &[&str]) {
    use crate::{WriteCondition, WriteOutcome};
    assert_eq!(
        bucket.get(key).await.unwrap(),
        None,
        "get of an expired key"
    );
    assert!(
        !bucket.exists(key).await.unwrap(),
        "exists of an expired key"
    );
    if bucket.capabilities().get_many.is_available() {
        assert_eq!(
            bucket.get_many(&[key.to_string()]).await.unwrap(),
            [None],
            "get-many of an expired key"
        );
    }
    let mut keys = list_all(bucket, 1000).await.unwrap();
    keys.sort();
    assert_eq!(keys, listed, "listing with an expired key");
    let create = |value: &'static [u8]| bucket.set(key, value.to_vec(), WriteCondition::IfAbsent);
    assert_eq!(
        create(b"new").await.unwrap(),
        WriteOutcome::Written,
        "create over an expired key"
    );
    assert_eq!(bucket.get(key).await.unwrap(), Some(b"new".to_vec()));
    assert_eq!(
        create(b"again").await.unwrap(),
        WriteOutcome::ConditionFailed,
        "a second create"
    );
}

/// Every key of `bucket`, walking all pages of `page` keys (for tests).
pub async fn list_all(bucket: &dyn Bucket, page: usize) -> crate::Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut cursor: Option<Vec<u8>> = None;
    loop {
        let listed = bucket.list(cursor.as_deref(), page).await?;
        keys.extend(listed.keys);
        match listed.next {
            Some(next) => cursor = Some(next),
            None => return Ok(keys),
        }
    }
}

/// Deletes every key of the bucket (best effort), so shared servers stay clean.
pub async fn cleanup(bucket: &dyn Bucket) {
    if !bucket.capabilities().list.is_available() {
        return;
    }
    let mut keys = Vec::new();
    let mut cursor: Option<Vec<u8>> = None;
    for _ in 0..10_000 {
        let Ok(page) = bucket.list(cursor.as_deref(), 1000).await else {
            break;
        };
        keys.extend(page.keys);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    for key in keys {
        let _ = bucket.delete(&key).await;
    }
}
