//! Prometheus metrics of the key-value calls and of `serve`'s HTTP requests
//! (`prometheus-client`; names in `docs/serve.md`).
//!
//! Counting is off unless asked for: a [`Metrics`] given to
//! [`Buckets::with_metrics`](crate::Buckets::with_metrics) counts every call a
//! guest or an operator makes through those buckets, per bucket and
//! operation; [`Metrics::encode`] renders everything in the text format, and
//! [`Metrics::registry`] lets an embedder add its own metrics or render them
//! with its own. Without it, a host call neither reads the clock nor touches
//! a counter.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// The `Content-Type` of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A host's metrics and the registry that renders them. Cheap to share:
/// every metric is a handle onto shared counters.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    kv: KvMetrics,
    http: HttpMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric at zero, registered under the `wasikv` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("wasikv");
        let kv = KvMetrics::default();
        registry.register(
            "kv_calls",
            "Key-value calls by bucket, provider and operation (guests and `wasikv` commands)",
            kv.calls.clone(),
        );
        registry.register(
            "kv_errors",
            "Key-value calls that failed, by bucket, provider, operation and error kind",
            kv.errors.clone(),
        );
        registry.register_with_unit(
            "kv_call_duration",
            "Latency of key-value calls by bucket, provider and operation, host checks, emulation and store",
            Unit::Seconds,
            kv.latency.clone(),
        );
        let http = HttpMetrics::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by status code (503: over serve.max_concurrent_requests, 413: body over serve.max_request_body_bytes, 500: the guest trapped or failed, 504: past serve.request_timeout_ms)",
            http.requests.clone(),
        );
        registry.register_with_unit(
            "http_request_duration",
            "Time from accepting a request to its response headers",
            Unit::Seconds,
            http.latency.clone(),
        );
        registry.register(
            "http_instances_in_flight",
            "Component instances serving a request now",
            http.in_flight.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            kv,
            http,
        }
    }

    /// The key-value call metrics.
    pub fn kv(&self) -> &KvMetrics {
        &self.kv
    }

    /// The HTTP request metrics of `serve`.
    pub fn http(&self) -> &HttpMetrics {
        &self.http
    }

    /// The registry, to register an embedder's own metrics next to these.
    pub fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every metric in the OpenMetrics text format (which Prometheus scrapes;
    /// served with [`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry())
            .expect("writing to a String cannot fail");
        text
    }
}

/// The labels of one key-value operation on one bucket.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    /// The bucket identifier.
    pub bucket: String,
    /// The provider name.
    pub provider: String,
    /// The operation (`get`, `set`, `increment`, `get-many`, ...).
    pub op: String,
}

/// [`OpLabels`] and the error kind (`invalid-key`, `too-large`, `unavailable`, ...).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// The bucket identifier.
    pub bucket: String,
    /// The provider name.
    pub provider: String,
    /// The operation.
    pub op: String,
    /// The error kind, as `wasikv_core::ErrorKind::as_str` names it.
    pub kind: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn kv_latency() -> Histogram {
    // 1 us .. ~4 s, a factor of 4 per bucket.
    Histogram::new(exponential_buckets(1e-6, 4.0, 12))
}

fn http_latency() -> Histogram {
    // 50 us .. ~13 s, a factor of 4 per bucket.
    Histogram::new(exponential_buckets(50e-6, 4.0, 10))
}

/// Calls, errors by kind and latency per bucket and operation.
#[derive(Debug, Clone)]
pub struct KvMetrics {
    calls: Family<OpLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    latency: HistogramFamily<OpLabels>,
}

impl Default for KvMetrics {
    fn default() -> Self {
        KvMetrics {
            calls: Family::default(),
            errors: Family::default(),
            latency: Family::new_with_constructor(kv_latency as fn() -> Histogram),
        }
    }
}

impl KvMetrics {
    /// The handles of one bucket's operation, looked up once (at open) so
    /// that a call only bumps shared counters.
    pub(crate) fn op(&self, bucket: &str, provider: &str, op: &'static str) -> OpMetrics {
        let labels = OpLabels {
            bucket: bucket.to_string(),
            provider: provider.to_string(),
            op: op.to_string(),
        };
        OpMetrics {
            calls: self.calls.get_or_create(&labels).clone(),
            latency: self.latency.get_or_create(&labels).clone(),
            errors: self.errors.clone(),
            labels: Arc::new(labels),
        }
    }
}

/// One bucket's operation: bumped once per call.
#[derive(Debug, Clone)]
pub(crate) struct OpMetrics {
    calls: Counter,
    latency: Histogram,
    errors: Family<ErrorLabels, Counter>,
    labels: Arc<OpLabels>,
}

impl OpMetrics {
    /// Counts a call that took `elapsed` and failed with `error`, if any.
    pub(crate) fn record(&self, elapsed: Duration, error: Option<wasikv_core::ErrorKind>) {
        self.calls.inc();
        self.latency.observe(elapsed.as_secs_f64());
        if let Some(kind) = error {
            self.errors
                .get_or_create(&ErrorLabels {
                    bucket: self.labels.bucket.clone(),
                    provider: self.labels.provider.clone(),
                    op: self.labels.op.clone(),
                    kind: kind.as_str().to_string(),
                })
                .inc();
        }
    }
}

/// The status label of an HTTP response.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    /// The status code, e.g. `200`.
    pub status: u16,
}

/// `serve`'s requests by status, their latency and the instances in flight.
#[derive(Debug, Clone)]
pub struct HttpMetrics {
    requests: Family<StatusLabels, Counter>,
    latency: Histogram,
    in_flight: Gauge,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        HttpMetrics {
            requests: Family::default(),
            latency: http_latency(),
            in_flight: Gauge::default(),
        }
    }
}

impl HttpMetrics {
    /// Counts a response with `status`, `elapsed` after the request arrived.
    pub fn record(&self, status: u16, elapsed: Duration) {
        self.requests.get_or_create(&StatusLabels { status }).inc();
        self.latency.observe(elapsed.as_secs_f64());
    }

    /// Marks one instance in flight until the guard is dropped.
    pub fn instance(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }
}

/// An instance in flight, counted until dropped ([`HttpMetrics::instance`]).
#[derive(Debug)]
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}
