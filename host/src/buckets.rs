//! Bucket routing: configured identifiers to provider buckets, the
//! per-component allow-list, one store per distinct connection, and the
//! host-side checks every guest call passes (limits, timeouts, context).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, OnceCell};
use tracing::Instrument;
use wasikv_core::{
    Bucket, BucketPlan, Capabilities, Endpoint, Error, ErrorKind, ImmediateBucket, ListPage,
    Options, Provider, Result, Store, Versioned, WriteCondition, WriteOutcome,
};

use crate::config::{Config, Limits, Unlisted};
use crate::cursor::CursorSealer;
use crate::deadline;
use crate::emulate::{EmulatedBucket, EmulationPolicy};
use crate::metrics::{Metrics, OpMetrics};
use crate::registry;

/// A store connected on first use, shared by the buckets on its connection.
type StoreCell = Arc<OnceCell<Arc<dyn Store>>>;

struct Entry {
    plan: BucketPlan,
    provider: Arc<dyn Provider>,
    opened: OnceCell<Arc<OpenBucket>>,
}

/// All configured buckets of one host. Cheap to share (`Arc`) between every
/// component instance: buckets and store connections are opened once, on
/// first use, and shared.
pub struct Buckets {
    entries: BTreeMap<String, Entry>,
    /// Allow-lists by lowercased component name.
    allow: HashMap<String, HashSet<String>>,
    unlisted: Unlisted,
    limits: Limits,
    policy: EmulationPolicy,
    /// One store per `(provider, connection)`, each connected once; the map
    /// lock is held only to find the cell, never across a connect.
    stores: Mutex<HashMap<(String, String), StoreCell>>,
    cursor_secret: [u8; 32],
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for Buckets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buckets")
            .field("buckets", &self.entries.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Buckets {
    /// Validates every bucket of `config` (providers compiled in, options,
    /// no overlapping namespaces) without connecting.
    pub fn from_config(config: &Config) -> Result<Self> {
        let mut entries = BTreeMap::new();
        for (name, section) in &config.buckets {
            let provider = registry::find(&section.provider)
                .map_err(|e| Error::new(e.kind(), format!("bucket {name:?}: {}", e.message())))?;
            let options = Options(section.options.clone());
            let plan = wasikv_core::expiry::plan(provider.as_ref(), name, &options)?;
            entries.insert(
                name.clone(),
                Entry {
                    plan,
                    provider,
                    opened: OnceCell::new(),
                },
            );
        }
        check_overlaps(&entries)?;
        let allow = config
            .components
            .iter()
            .map(|(c, cfg)| {
                (
                    c.to_ascii_lowercase(),
                    cfg.buckets.iter().cloned().collect(),
                )
            })
            .collect();
        let policy = EmulationPolicy {
            batch_concurrency: config.limits.batch_concurrency,
            increment_attempts: config.limits.increment_attempts,
            watch_queue: config.limits.watch_queue,
            max_value_bytes: config.limits.max_value_bytes,
            ..EmulationPolicy::default()
        };
        Ok(Buckets {
            entries,
            allow,
            unlisted: config.unlisted_policy(),
            limits: config.limits.clone(),
            policy,
            stores: Mutex::new(HashMap::new()),
            cursor_secret: rand::random(),
            metrics: None,
        })
    }

    /// Counts every call through these buckets in `metrics` (calls, errors
    /// by kind, latency per bucket and operation). Call before any bucket is
    /// opened: buckets opened earlier are not counted.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The metrics these buckets count into, if any.
    pub fn metrics(&self) -> Option<&Arc<Metrics>> {
        self.metrics.as_ref()
    }

    /// Whether bucket `name` is configured and its store has been connected
    /// (by an `open` that succeeded).
    pub fn is_connected(&self, name: &str) -> bool {
        self.entries
            .get(name)
            .is_some_and(|e| e.opened.initialized())
    }

    /// The configured bucket identifiers.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// The plan of a configured bucket.
    pub fn plan(&self, name: &str) -> Option<&BucketPlan> {
        self.entries.get(name).map(|e| &e.plan)
    }

    /// Whether `component` may open `bucket`: its `[components.NAME]`
    /// allow-list (name matched ignoring ASCII case), or for a component
    /// without one the `access.unlisted` policy. `None` is the host itself
    /// (an operator command, a startup check), which may open every bucket.
    pub fn allowed(&self, component: Option<&str>, bucket: &str) -> bool {
        let Some(component) = component else {
            return true;
        };
        match self.allow.get(&component.to_ascii_lowercase()) {
            Some(list) => list.contains(bucket),
            None => self.unlisted == Unlisted::Allow,
        }
    }

    /// The policy for components without a `[components.NAME]` section.
    pub fn unlisted_policy(&self) -> Unlisted {
        self.unlisted
    }

    /// Whether `component` has a `[components.NAME]` section.
    pub fn is_listed(&self, component: &str) -> bool {
        self.allow.contains_key(&component.to_ascii_lowercase())
    }

    /// Opens `identifier` for `component` (`None`: the host itself; see
    /// [`Buckets::allowed`]): `no-such-store` when not configured,
    /// `access-denied` when configured but not allowed.
    pub async fn open(&self, component: Option<&str>, identifier: &str) -> Result<Arc<OpenBucket>> {
        let Some(entry) = self.entries.get(identifier) else {
            return Err(Error::new(
                ErrorKind::NoSuchStore,
                format!("no bucket {identifier:?} is configured"),
            ));
        };
        if !self.allowed(component, identifier) {
            let component = component.unwrap_or_default();
            let why = if self.is_listed(component) {
                format!("not in components.{component}.buckets")
            } else {
                format!(
                    "it has no [components.{component}] section and access.unlisted is \"deny\"; add one listing the buckets it may open"
                )
            };
            return Err(Error::new(
                ErrorKind::AccessDenied,
                format!("component {component:?} may not open bucket {identifier:?} ({why})"),
            ));
        }
        entry
            .opened
            .get_or_try_init(|| self.connect(entry))
            .await
            .cloned()
    }

    async fn connect(&self, entry: &Entry) -> Result<Arc<OpenBucket>> {
        let plan = &entry.plan;
        let ctx = |e: Error| e.in_bucket(&plan.bucket, plan.provider);
        let cell = {
            let key = (plan.provider.to_string(), plan.connection.clone());
            self.stores.lock().await.entry(key).or_default().clone()
        };
        let store = cell
            .get_or_try_init(|| {
                timed(
                    self.limits.operation_timeout_ms,
                    "connect",
                    entry.provider.connect(plan),
                )
            })
            .await
            .map_err(ctx)?
            .clone();
        let bucket = timed(
            self.limits.operation_timeout_ms,
            "open",
            store.open_bucket(plan),
        )
        .await
        .map_err(ctx)?;
        if let Some(ttl) = plan.ttl {
            // The provider's default capabilities said yes at plan time;
            // this bucket's own (its options may change them) must too.
            wasikv_core::expiry::check_supported(bucket.capabilities().expiry, ttl).map_err(ctx)?;
        }
        Ok(Arc::new(OpenBucket::new(
            plan,
            bucket,
            &self.limits,
            self.policy,
            self.cursor_secret,
            self.metrics.as_deref(),
        )))
    }
}

/// Refuses two buckets whose namespaces overlap at one location: the same
/// provider, a common endpoint (hosts compared after resolving them, see
/// [`Places`]) and the same scope. Client settings (credentials, timeouts,
/// the spelling of a URL) play no part: they do not separate keyspaces.
fn check_overlaps(entries: &BTreeMap<String, Entry>) -> Result<()> {
    let plans: Vec<&BucketPlan> = entries.values().map(|e| &e.plan).collect();
    let mut places = Places::default();
    for (i, a) in plans.iter().enumerate() {
        for b in &plans[i + 1..] {
            if a.provider == b.provider
                && a.namespace.overlaps(&b.namespace)
                && places.same_location(&a.location, &b.location)
            {
                let at = if a.location == b.location {
                    format!("at {}", a.location)
                } else {
                    format!(
                        "at {} and {}, which reach one store",
                        a.location, b.location
                    )
                };
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    format!(
                        "buckets {:?} and {:?} overlap on one {} store {at} ({} and {}): one could read and list the other's keys; give each its own namespace",
                        a.bucket, b.bucket, a.provider, a.namespace, b.namespace
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// What a server endpoint's host stands for: its addresses, with every
/// loopback and unspecified address as one ("this machine"), or the
/// lowercase name itself where it does not resolve.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Place {
    ThisMachine,
    Address(std::net::IpAddr),
    Name(String),
}

/// Resolves hosts for the overlap check, once each. Only hosts spelled
/// differently on the same port are resolved, so a configuration whose
/// buckets name their servers alike never waits for DNS.
#[derive(Default)]
struct Places {
    resolved: HashMap<(String, u16), HashSet<Place>>,
}

impl Places {
    fn same_location(&mut self, a: &wasikv_core::Location, b: &wasikv_core::Location) -> bool {
        a.scope == b.scope
            && a.endpoints
                .iter()
                .any(|x| b.endpoints.iter().any(|y| self.same_endpoint(x, y)))
    }

    fn same_endpoint(&mut self, a: &Endpoint, b: &Endpoint) -> bool {
        match (a, b) {
            (Endpoint::Server { host: h1, port: p1 }, Endpoint::Server { host: h2, port: p2 }) => {
                p1 == p2
                    && (h1 == h2 || {
                        let x = self.resolve(h1, *p1).clone();
                        !x.is_disjoint(self.resolve(h2, *p2))
                    })
            }
            _ => a == b,
        }
    }

    fn resolve(&mut self, host: &str, port: u16) -> &HashSet<Place> {
        use std::net::ToSocketAddrs as _;
        self.resolved
            .entry((host.to_string(), port))
            .or_insert_with(|| {
                let place = |ip: std::net::IpAddr| {
                    let ip = match ip {
                        std::net::IpAddr::V6(v6) => v6
                            .to_ipv4_mapped()
                            .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
                        v4 => v4,
                    };
                    if ip.is_loopback() || ip.is_unspecified() {
                        Place::ThisMachine
                    } else {
                        Place::Address(ip)
                    }
                };
                match (host, port).to_socket_addrs() {
                    Ok(addrs) => {
                        let found: HashSet<Place> = addrs.map(|a| place(a.ip())).collect();
                        if found.is_empty() {
                            HashSet::from([Place::Name(host.to_string())])
                        } else {
                            found
                        }
                    }
                    Err(_) => HashSet::from([Place::Name(host.to_string())]),
                }
            })
    }
}

async fn timed<T>(timeout_ms: u64, what: &str, fut: impl Future<Output = Result<T>>) -> Result<T> {
    if timeout_ms == 0 {
        return fut.await;
    }
    // An in-process store answers on the first poll and registers no
    // deadline; a call that waits gets one in the process's deadline slab.
    match deadline::run(Duration::from_millis(timeout_ms), fut).await {
        deadline::Outcome::Done(result) => result,
        deadline::Outcome::TimedOut => Err(Error::new(
            ErrorKind::Unavailable,
            format!("{what} timed out after {timeout_ms} ms (limits.operation_timeout_ms)"),
        )),
    }
}

/// The operations a bucket counts in [`Metrics`], as its calls name them.
const OPS: [&str; 11] = [
    "get",
    "set",
    "delete",
    "exists",
    "list-keys",
    "increment",
    "cas",
    "swap",
    "get-many",
    "set-many",
    "delete-many",
];

/// An opened bucket as guests use it: the provider's bucket behind the
/// emulation layer, with the host's limits, timeouts and error context.
pub struct OpenBucket {
    name: String,
    provider: &'static str,
    bucket: EmulatedBucket,
    limits: Limits,
    max_value_bytes: usize,
    cursors: CursorSealer,
    /// Per operation of [`OPS`], when the host counts calls.
    metrics: Option<Box<[OpMetrics]>>,
}

impl std::fmt::Debug for OpenBucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenBucket")
            .field("name", &self.name)
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

impl OpenBucket {
    fn new(
        plan: &BucketPlan,
        bucket: Arc<dyn Bucket>,
        limits: &Limits,
        policy: EmulationPolicy,
        secret: [u8; 32],
        metrics: Option<&Metrics>,
    ) -> Self {
        let policy = EmulationPolicy {
            ttl: plan.ttl,
            ..policy
        };
        let bucket = EmulatedBucket::new(bucket, policy);
        let max_value_bytes = bucket
            .capabilities()
            .max_value_bytes
            .map_or(limits.max_value_bytes, |p| p.min(limits.max_value_bytes));
        let cursors = CursorSealer::new(
            secret,
            &[
                &plan.bucket,
                plan.provider,
                &plan.connection,
                &plan.namespace.to_string(),
            ],
        );
        OpenBucket {
            name: plan.bucket.clone(),
            provider: plan.provider,
            bucket,
            limits: limits.clone(),
            max_value_bytes,
            cursors,
            metrics: metrics.map(|m| {
                OPS.iter()
                    .map(|op| m.kv().op(&plan.bucket, plan.provider, op))
                    .collect()
            }),
        }
    }

    /// The metrics of operation `what`, when the host counts calls.
    fn op_metrics(&self, what: &'static str) -> Option<&OpMetrics> {
        let ops = self.metrics.as_deref()?;
        OPS.iter().position(|op| *op == what).map(|i| &ops[i])
    }

    /// Refuses call `what` with `e` (a host check failed; the store was not
    /// asked): the error with the bucket's context, counted in the metrics.
    fn reject<T>(&self, what: &'static str, e: Error) -> Result<T> {
        if let Some(m) = self.op_metrics(what) {
            m.record(Duration::ZERO, Some(e.kind()));
        }
        Err(self.fail(e))
    }

    /// The bucket identifier.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The provider name.
    pub fn provider(&self) -> &'static str {
        self.provider
    }

    /// The host limits every call on this bucket passes.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Capabilities as served to guests (native or emulated).
    pub fn capabilities(&self) -> &Capabilities {
        self.bucket.capabilities()
    }

    /// Deletes orphaned chunks of large values older than `grace` (see
    /// [`crate::chunked::ChunkedBucket::collect_garbage`]); `None` where the bucket's store
    /// has no value limit (nothing is ever chunked there).
    pub async fn collect_garbage(
        &self,
        grace: Duration,
    ) -> Option<Result<crate::chunked::GcReport>> {
        let chunked = self.bucket.chunked()?;
        Some(
            chunked
                .collect_garbage(grace)
                .await
                .map_err(|e| self.fail(e)),
        )
    }

    /// The bucket behind the emulation layer, without the host's checks.
    pub fn layered(&self) -> &EmulatedBucket {
        &self.bucket
    }

    /// Runs one host call: the timeout, error context, and a `kv` span at
    /// debug level (target `wasikv_host::call`) recording bucket, provider,
    /// operation, outcome (`ok` or the error kind) and latency in
    /// microseconds. With the span disabled (the default) nothing is timed.
    async fn run<T>(&self, what: &'static str, fut: impl Future<Output = Result<T>>) -> Result<T> {
        let span = tracing::debug_span!(
            target: "wasikv_host::call",
            "kv",
            bucket = %self.name,
            provider = self.provider,
            op = what,
            outcome = tracing::field::Empty,
            latency_us = tracing::field::Empty,
        );
        let call = timed(self.limits.operation_timeout_ms, what, fut);
        let metrics = self.op_metrics(what);
        if span.is_disabled() && metrics.is_none() {
            return call.await.map_err(|e| self.fail(e));
        }
        let started = std::time::Instant::now();
        let result = if span.is_disabled() {
            call.await
        } else {
            // Boxed, so that the untraced path's state stays small.
            Box::pin(call.instrument(span.clone())).await
        };
        let elapsed = started.elapsed();
        if let Some(m) = metrics {
            m.record(elapsed, result.as_ref().err().map(Error::kind));
        }
        let result = result.map_err(|e| self.fail(e));
        if !span.is_disabled() {
            span.record(
                "outcome",
                result.as_ref().map_or_else(|e| e.kind().as_str(), |_| "ok"),
            );
            span.record("latency_us", elapsed.as_micros() as u64);
            span.in_scope(|| tracing::debug!(target: "wasikv_host::call", "done"));
        }
        result
    }

    /// Runs an idempotent read like [`OpenBucket::run`], retrying an
    /// `unavailable` failure up to `limits.read_retries` times with
    /// full-jitter exponential backoff.
    async fn read<T, F, Fut>(&self, what: &'static str, mut call: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempt = 0;
        loop {
            match self.run(what, call()).await {
                Err(e)
                    if e.kind() == ErrorKind::Unavailable
                        && e.is_retryable()
                        && attempt < self.limits.read_retries =>
                {
                    let cap = self
                        .limits
                        .read_retry_backoff_ms
                        .saturating_mul(1 << attempt.min(20))
                        .min(1000);
                    tokio::time::sleep(Duration::from_millis(rand::random_range(0..=cap))).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn fail(&self, e: Error) -> Error {
        e.in_bucket(&self.name, self.provider)
    }

    fn check_key(&self, what: &'static str, key: &str) -> Result<()> {
        let max = self.limits.max_key_bytes;
        if key.len() > max {
            return self.reject(
                what,
                Error::new(
                    ErrorKind::InvalidKey,
                    format!(
                        "key is {} bytes, over the limit of {max} bytes (limits.max_key_bytes)",
                        key.len()
                    ),
                ),
            );
        }
        Ok(())
    }

    fn check_value(&self, what: &'static str, len: usize) -> Result<()> {
        if len > self.max_value_bytes {
            return self.reject(what, Error::too_large("value", len, self.max_value_bytes));
        }
        Ok(())
    }

    fn check_batch(&self, op: &'static str, n: usize) -> Result<()> {
        let max = self.limits.max_batch_keys;
        if n > max {
            return self.reject(
                op,
                Error::new(
                    ErrorKind::TooLarge,
                    format!(
                        "{op} of {n} keys is over the limit of {max} keys (limits.max_batch_keys)"
                    ),
                ),
            );
        }
        Ok(())
    }

    /// The store's synchronous single-key calls ([`EmulatedBucket::immediate`]),
    /// when the call needs nothing of [`OpenBucket::run`]: no metrics are
    /// counted and no call spans are emitted. Such a call cannot wait, so it
    /// needs no timeout and no retry.
    fn immediate(&self, write: bool) -> Option<&dyn ImmediateBucket> {
        if self.metrics.is_some()
            || tracing::enabled!(target: "wasikv_host::call", tracing::Level::DEBUG)
        {
            return None;
        }
        self.bucket.immediate(write)
    }

    /// `store.bucket.get`.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.check_key("get", key)?;
        if let Some(now) = self.immediate(false) {
            return now.get(key).map_err(|e| self.fail(e));
        }
        // Boxed: the state of every call (moved into a box by wasmtime)
        // stays as small as the immediate path needs.
        Box::pin(self.read("get", || self.bucket.get(key))).await
    }

    /// `store.bucket.set`. The key is taken owned where the caller has it
    /// so (a guest's call does), so the in-process path copies it at most once.
    pub async fn set(&self, key: impl Into<String>, value: Vec<u8>) -> Result<()> {
        let key = key.into();
        self.check_key("set", &key)?;
        self.check_value("set", value.len())?;
        if let Some(now) = self.immediate(true) {
            return now.set(key, value).map_err(|e| self.fail(e));
        }
        Box::pin(self.run("set", self.bucket.set(&key, value, WriteCondition::Always))).await?;
        Ok(())
    }

    /// `store.bucket.delete`.
    pub async fn delete(&self, key: &str) -> Result<()> {
        self.check_key("delete", key)?;
        if let Some(now) = self.immediate(true) {
            return now.delete(key).map_err(|e| self.fail(e));
        }
        Box::pin(self.run("delete", self.bucket.delete(key))).await
    }

    /// The bucket's changes (the store's feed, or host-local notifications).
    pub async fn watch(&self) -> Result<wasikv_core::ChangeStream> {
        self.bucket.watch().await.map_err(|e| self.fail(e))
    }

    /// `store.bucket.exists`.
    pub async fn exists(&self, key: &str) -> Result<bool> {
        self.check_key("exists", key)?;
        if let Some(now) = self.immediate(false) {
            return now.exists(key).map_err(|e| self.fail(e));
        }
        Box::pin(self.read("exists", || self.bucket.exists(key))).await
    }

    /// `store.bucket.list-keys`: one page and the sealed cursor of the next.
    pub async fn list_keys(&self, cursor: Option<&str>) -> Result<(Vec<String>, Option<String>)> {
        let token = match cursor {
            Some(c) => match self.cursors.open(c) {
                Ok(token) => Some(token),
                Err(e) => return self.reject("list-keys", e),
            },
            None => None,
        };
        let page = self
            .read("list-keys", || {
                self.bucket
                    .list(token.as_deref(), self.limits.list_page_keys)
            })
            .await?;
        Ok((page.keys, page.next.map(|t| self.cursors.seal(&t))))
    }

    /// One page of keys from the provider's own continuation token (`None`:
    /// the first page), for the host's operator commands, which must resume
    /// a listing in another process (`wasikv kv copy --checkpoint`). The
    /// token is the provider's, not sealed: never hand it to a guest (guests
    /// get [`OpenBucket::list_keys`]'s sealed cursors).
    pub async fn list_page(&self, token: Option<&[u8]>, limit: usize) -> Result<ListPage> {
        self.read("list-keys", || self.bucket.list(token, limit.max(1)))
            .await
    }

    /// `atomics.increment`.
    pub async fn increment(&self, key: &str, delta: i64) -> Result<i64> {
        self.check_key("increment", key)?;
        if let Some(now) = self.immediate(true) {
            return now
                .increment_at_least(key, delta, i64::MIN)
                .map_err(|e| self.fail(e));
        }
        Box::pin(self.run("increment", self.bucket.increment(key, delta))).await
    }

    /// `atomics.increment` of the 0.2.0-draft interface (`u64` counters): a
    /// counter that is or would become negative is an error, value unchanged.
    pub async fn increment_unsigned(&self, key: &str, delta: u64) -> Result<u64> {
        self.check_key("increment", key)?;
        if let Some(now) = self.immediate(true) {
            let n = crate::emulate::signed_delta(delta)
                .and_then(|delta| now.increment_at_least(key, delta, 0));
            return n
                .and_then(crate::emulate::unsigned_counter)
                .map_err(|e| self.fail(e));
        }
        Box::pin(self.run("increment", self.bucket.increment_unsigned(key, delta))).await
    }

    /// Reads a key with its version for a CAS handle.
    pub async fn read_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        self.check_key("cas", key)?;
        self.read("cas", || self.bucket.get_versioned(key)).await
    }

    /// Writes if the key is still at the version a CAS handle read (`None`: absent).
    pub async fn swap(
        &self,
        key: &str,
        read: Option<&Versioned>,
        value: Vec<u8>,
    ) -> Result<WriteOutcome> {
        self.check_key("swap", key)?;
        self.check_value("swap", value.len())?;
        let condition = match read {
            Some(v) => WriteCondition::IfVersion(v.version.clone()),
            None => WriteCondition::IfAbsent,
        };
        self.run("swap", self.bucket.set(key, value, condition))
            .await
    }

    /// `batch.get-many`: one entry per requested key. The result (values
    /// and keys) may not pass `limits.max_call_bytes`, and is refused before
    /// more than that plus one value is held (see
    /// [`EmulatedBucket::get_many_within`]).
    pub async fn get_many(&self, keys: Vec<String>) -> Result<Vec<Option<(String, Vec<u8>)>>> {
        self.check_batch("get-many", keys.len())?;
        for key in &keys {
            self.check_key("get-many", key)?;
        }
        let max = self.limits.max_call_bytes;
        let too_large = || {
            Error::new(
                ErrorKind::TooLarge,
                format!(
                    "get-many result is over the limit of {max} bytes (limits.max_call_bytes); ask for fewer keys"
                ),
            )
        };
        // Keys count against the budget too (all of them: a bound, simply).
        let key_bytes: usize = keys.iter().map(String::len).sum();
        let Some(budget) = max.checked_sub(key_bytes) else {
            return self.reject("get-many", too_large());
        };
        let values = self
            .read("get-many", || {
                self.bucket
                    .get_many_within(&keys, budget, self.max_value_bytes)
            })
            .await;
        match values {
            Ok(values) => Ok(keys
                .into_iter()
                .zip(values)
                .map(|(key, value)| value.map(|v| (key, v)))
                .collect()),
            // The store's refusal, in the host's words (the budget it saw
            // was what remained, not the configured limit).
            Err(e) if e.kind() == ErrorKind::TooLarge => Err(self.fail(too_large())),
            Err(e) => Err(e),
        }
    }

    /// `batch.set-many` (repeated keys: the last occurrence wins).
    pub async fn set_many(&self, items: Vec<(String, Vec<u8>)>) -> Result<()> {
        self.check_batch("set-many", items.len())?;
        for (key, value) in &items {
            self.check_key("set-many", key)?;
            self.check_value("set-many", value.len())?;
        }
        self.run("set-many", self.bucket.set_many(items)).await
    }

    /// `batch.delete-many`.
    pub async fn delete_many(&self, keys: Vec<String>) -> Result<()> {
        self.check_batch("delete-many", keys.len())?;
        for key in &keys {
            self.check_key("delete-many", key)?;
        }
        self.run("delete-many", self.bucket.delete_many(&keys))
            .await
    }
}
