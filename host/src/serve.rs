//! Serving HTTP components (`wasi:http/incoming-handler@0.2.x`, the
//! `wasi:http/proxy` world) with wasi:keyvalue: what `wasikv serve` runs, and
//! what an embedder can run in its own process.
//!
//! * [`HttpHandler`]: one prepared component; [`HttpHandler::handle`] answers
//!   one request with a fresh instance, within the limits (concurrency, body
//!   size, deadline), turning traps into 500 and overruns into 504.
//! * [`serve`]: an HTTP/1.1 server (hyper, keep-alive) over a listener, with
//!   graceful shutdown and the optional admin listener (`/healthz`,
//!   `/metrics`).
//!
//! The model, limits and metric names are in `docs/serve.md`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use wasmtime::Result;
use wasmtime::component::Component;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::Metrics;
use crate::config::ServeConfig;
use crate::runtime::{HttpPrepared, Runtime, explain_trap, within_deadline};

/// The response header carrying the id a request is logged under.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// What one [`HttpHandler`] serves and within which limits.
#[derive(Debug, Clone)]
pub struct HandlerOptions {
    /// The component name, for its allow-list (`[components.NAME]`).
    pub name: String,
    /// Environment variables every instance sees.
    pub env: Vec<(String, String)>,
    /// Requests handled at once; beyond it, 503 with `Retry-After`.
    pub max_concurrent_requests: usize,
    /// Largest request body in bytes (413 beyond it).
    pub max_request_body_bytes: u64,
}

impl HandlerOptions {
    /// The options of `serve`'s configuration for component `name`.
    pub fn new(name: impl Into<String>, serve: &ServeConfig) -> Self {
        HandlerOptions {
            name: name.into(),
            env: Vec::new(),
            max_concurrent_requests: serve.max_concurrent_requests,
            max_request_body_bytes: serve.max_request_body_bytes,
        }
    }
}

/// An HTTP component ready to answer requests: each request gets a fresh
/// instance from the pre-instantiated component, in its own store, with
/// the runtime's buckets, memory limit and deadline.
pub struct HttpHandler {
    runtime: Arc<Runtime>,
    prepared: HttpPrepared,
    options: HandlerOptions,
    permits: Arc<Semaphore>,
    metrics: Option<Arc<Metrics>>,
    id_prefix: u32,
    next_id: AtomicU64,
}

impl std::fmt::Debug for HttpHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpHandler")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl HttpHandler {
    /// Checks `component` against the runtime's imports once. Requests are
    /// counted in the metrics of the runtime's buckets, if they have any.
    pub fn new(
        runtime: Arc<Runtime>,
        component: &Component,
        options: HandlerOptions,
    ) -> Result<Self> {
        if options.max_concurrent_requests == 0 {
            wasmtime::bail!("serve.max_concurrent_requests must be at least 1");
        }
        let prepared = runtime.prepare_http(component)?;
        let metrics = runtime.buckets().metrics().cloned();
        Ok(HttpHandler {
            permits: Arc::new(Semaphore::new(options.max_concurrent_requests)),
            runtime,
            prepared,
            options,
            metrics,
            id_prefix: rand::random(),
            next_id: AtomicU64::new(0),
        })
    }

    /// The runtime.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// Requests being handled now (each holds an instance).
    pub fn in_flight(&self) -> usize {
        self.options.max_concurrent_requests - self.permits.available_permits()
    }

    /// Waits until no request is in flight, or `limit` has passed; true if none is.
    pub async fn drain(&self, limit: Duration) -> bool {
        let all = u32::try_from(self.options.max_concurrent_requests).unwrap_or(u32::MAX);
        tokio::time::timeout(limit, self.permits.acquire_many(all))
            .await
            .is_ok()
    }

    /// Answers one request. Never fails: a trap is a 500, a request past the
    /// deadline a 504, one over the concurrency limit a 503 with
    /// `Retry-After`, a body over the limit a 413. Every response carries
    /// the request's id in [`REQUEST_ID_HEADER`]; failures are logged under it.
    pub async fn handle<B>(&self, request: Request<B>) -> Response<HyperOutgoingBody>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let started = Instant::now();
        let id = format!(
            "{:08x}{:08x}",
            self.id_prefix,
            self.next_id.fetch_add(1, Ordering::Relaxed) as u32
        );
        let mut response = self.respond(request, &id).await;
        if let Ok(value) = HeaderValue::from_str(&id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        if let Some(m) = &self.metrics {
            m.http()
                .record(response.status().as_u16(), started.elapsed());
        }
        response
    }

    async fn respond<B>(&self, request: Request<B>, id: &str) -> Response<HyperOutgoingBody>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            let mut response = reply(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "busy: {} requests in flight (serve.max_concurrent_requests)\n",
                    self.options.max_concurrent_requests
                ),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        };
        let max_body = self.options.max_request_body_bytes;
        if let Some(length) = content_length(request.headers())
            && length > max_body
        {
            return too_large(Some(length), max_body);
        }
        let exceeded = Arc::new(AtomicBool::new(false));
        let request = request.map(|body| LimitedBody {
            inner: body,
            remaining: max_body,
            limit: max_body,
            exceeded: exceeded.clone(),
        });
        let task = match self.start(request, permit) {
            Ok(task) => task,
            Err(e) => {
                tracing::error!(request_id = id, "cannot start the request: {e:#}");
                return reply(StatusCode::INTERNAL_SERVER_ERROR, internal(id));
            }
        };
        let RequestTask { response, done } = task;
        let outcome = match self.runtime.deadline() {
            Some(d) => tokio::time::timeout(d, response).await,
            None => Ok(response.await),
        };
        let over_limit = || too_large(None, max_body);
        match outcome {
            Ok(Ok(Ok(response))) if exceeded.load(Ordering::Relaxed) => {
                drop(response);
                over_limit()
            }
            Ok(Ok(Ok(response))) => response,
            Ok(Ok(Err(code))) => {
                if exceeded.load(Ordering::Relaxed) {
                    return over_limit();
                }
                tracing::warn!(
                    request_id = id,
                    "the component answered with an error: {code:?}"
                );
                reply(StatusCode::INTERNAL_SERVER_ERROR, internal(id))
            }
            // The guest's instance ended without setting a response.
            Ok(Err(_)) => match done.await {
                _ if exceeded.load(Ordering::Relaxed) => over_limit(),
                Ok(Ok(())) => {
                    tracing::warn!(request_id = id, "the component returned no response");
                    reply(StatusCode::INTERNAL_SERVER_ERROR, internal(id))
                }
                Ok(Err(e)) if is_deadline(&e) => {
                    tracing::warn!(request_id = id, "{}", one_line(&e));
                    self.past_deadline(id)
                }
                Ok(Err(e)) => {
                    tracing::error!(request_id = id, "{}", one_line(&e));
                    tracing::debug!(request_id = id, "{e:?}");
                    reply(StatusCode::INTERNAL_SERVER_ERROR, internal(id))
                }
                Err(e) => {
                    tracing::error!(request_id = id, "the request's task failed: {e}");
                    reply(StatusCode::INTERNAL_SERVER_ERROR, internal(id))
                }
            },
            Err(_) => {
                tracing::warn!(
                    request_id = id,
                    "no response within the deadline; the instance is stopped"
                );
                self.past_deadline(id)
            }
        }
    }

    fn past_deadline(&self, id: &str) -> Response<HyperOutgoingBody> {
        let ms = self.runtime.deadline().map_or(0, |d| d.as_millis());
        reply(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "the component did not answer within {ms} ms (serve.request_timeout_ms); request id {id}\n"
            ),
        )
    }

    /// Instantiates the component for `request` and calls its handler in a
    /// task of its own (it may stream the body after the response is set).
    /// The task holds the concurrency permit until the instance is gone.
    fn start<B>(
        &self,
        request: Request<LimitedBody<B>>,
        permit: OwnedSemaphorePermit,
    ) -> Result<RequestTask>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let mut wasi = WasiCtxBuilder::new();
        wasi.inherit_stdout().inherit_stderr();
        for (k, v) in &self.options.env {
            wasi.env(k, v);
        }
        let mut store = self.runtime.new_store(wasi.build(), &self.options.name);
        let (sender, response) = oneshot::channel();
        let incoming = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        let proxy = self.prepared.proxy.clone();
        let in_flight = self.metrics.as_ref().map(|m| m.http().instance());
        let deadline = self.runtime.deadline();
        let max_memory = self.runtime.config().max_memory_bytes;
        let done = tokio::spawn(async move {
            let _permit = permit;
            let _in_flight = in_flight;
            let call = async {
                let instance = proxy.instantiate_async(&mut store).await?;
                instance
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, incoming, out)
                    .await
            };
            within_deadline(deadline, call)
                .await
                .map_err(|e| explain_trap(e, deadline, max_memory))
        });
        Ok(RequestTask { response, done })
    }
}

type GuestResponse = std::result::Result<Response<HyperOutgoingBody>, ErrorCode>;

/// A request handed to its instance: the response the guest sets, and the
/// task that runs the instance to its end.
struct RequestTask {
    response: oneshot::Receiver<GuestResponse>,
    done: tokio::task::JoinHandle<Result<()>>,
}

/// What went wrong in one line: wasikv's explanation and the root cause
/// (the trap), without the guest's backtrace (logged at debug level).
fn one_line(e: &wasmtime::Error) -> String {
    let root = e.root_cause().to_string();
    let root = root.lines().next().unwrap_or_default();
    if root == e.to_string() {
        root.to_string()
    } else {
        format!("{e}: {root}")
    }
}

fn is_deadline(e: &wasmtime::Error) -> bool {
    matches!(
        e.downcast_ref::<wasmtime::Trap>(),
        Some(wasmtime::Trap::Interrupt)
    )
}

fn internal(id: &str) -> String {
    format!("internal error: the component failed; request id {id}\n")
}

/// 413 for a body of `length` bytes (by its `Content-Length`), or of
/// unknown length that grew past the limit as it streamed.
fn too_large(length: Option<u64>, max: u64) -> Response<HyperOutgoingBody> {
    let size = length.map_or(String::new(), |n| format!(" of {n} bytes"));
    reply(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "request body{size} is over the limit of {max} bytes (serve.max_request_body_bytes)\n"
        ),
    )
}

/// A plain-text response from the host itself.
fn reply(status: StatusCode, text: String) -> Response<HyperOutgoingBody> {
    let mut response = Response::new(
        Full::new(Bytes::from(text))
            .map_err(|never: Infallible| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// A request body that fails once it grows past the limit, and says so.
struct LimitedBody<B> {
    inner: B,
    remaining: u64,
    limit: u64,
    exceeded: Arc<AtomicBool>,
}

impl<B> Body for LimitedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<wasmtime_wasi_http::Error>,
{
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > this.remaining {
                        this.exceeded.store(true, Ordering::Relaxed);
                        return Poll::Ready(Some(Err(
                            wasmtime_wasi_http::Error::HttpRequestBodySize(Some(this.limit)),
                        )));
                    }
                    this.remaining -= len;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            other => other.map(|_| None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// How [`serve`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeReport {
    /// Connections accepted.
    pub connections: u64,
    /// Whether every in-flight request finished within the drain timeout.
    pub drained: bool,
}

/// The listeners of [`serve`].
#[derive(Debug)]
pub struct Listeners {
    /// Where requests for the component arrive.
    pub http: TcpListener,
    /// `/healthz` and `/metrics`, if wanted.
    pub admin: Option<TcpListener>,
}

impl Listeners {
    /// Binds `serve.listen` and `serve.admin`, with errors naming them.
    pub async fn bind(config: &ServeConfig) -> Result<Self> {
        let http = bind(config.listen, "serve.listen").await?;
        let admin = match config.admin {
            Some(addr) => Some(bind(addr, "serve.admin").await?),
            None => None,
        };
        Ok(Listeners { http, admin })
    }
}

async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| wasmtime::format_err!("cannot listen on {addr} ({what}): {e}"))
}

/// Serves `handler` on `listeners` until `shutdown` completes, then stops
/// accepting, lets in-flight requests finish for up to `drain` (idle
/// keep-alive connections are closed at once), and returns.
///
/// Meanwhile it connects every configured bucket (retrying each second
/// until all are up), so that `/healthz` on the admin listener says 200
/// once they are; during the drain `/healthz` says 503.
pub async fn serve(
    handler: Arc<HttpHandler>,
    listeners: Listeners,
    drain: Duration,
    shutdown: impl Future<Output = ()>,
) -> Result<ServeReport> {
    let draining = Arc::new(AtomicBool::new(false));
    let connector = tokio::spawn(connect_buckets(handler.clone()));
    let admin = listeners
        .admin
        .map(|listener| tokio::spawn(serve_admin(listener, handler.clone(), draining.clone())));

    let graceful = GracefulShutdown::new();
    let mut connections = 0;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listeners.http.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait, then go on.
                tracing::warn!("cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        connections += 1;
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let handler = handler.clone();
            async move { Ok::<_, Infallible>(handler.handle(request).await) }
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .timer(TokioTimer::new())
            // A client must send its headers within this time (slow-loris guard).
            .header_read_timeout(Duration::from_secs(30))
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("connection from {peer}: {e}");
            }
        });
    }
    // Stop accepting: new connections are refused from here on.
    drop(listeners.http);
    draining.store(true, Ordering::Relaxed);
    connector.abort();
    let started = Instant::now();
    let closed = tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_ok();
    let drained = closed && handler.drain(drain.saturating_sub(started.elapsed())).await;
    if !drained {
        tracing::warn!(
            "{} requests were still in flight after the drain timeout of {} ms",
            handler.in_flight(),
            drain.as_millis()
        );
    }
    if let Some(admin) = admin {
        admin.abort();
    }
    Ok(ServeReport {
        connections,
        drained,
    })
}

/// Opens every configured bucket (connecting its store), retrying the ones
/// that fail each second until all are up.
async fn connect_buckets(handler: Arc<HttpHandler>) {
    let buckets = handler.runtime().buckets().clone();
    let names: Vec<String> = buckets.names().map(str::to_string).collect();
    loop {
        let mut down = 0;
        for name in &names {
            if buckets.is_connected(name) {
                continue;
            }
            if let Err(e) = buckets.open(None, name).await {
                down += 1;
                tracing::warn!("bucket {name:?} is not connected yet: {e}");
            }
        }
        if down == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The admin listener: `/healthz` and `/metrics`.
async fn serve_admin(listener: TcpListener, handler: Arc<HttpHandler>, draining: Arc<AtomicBool>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let handler = handler.clone();
        let draining = draining.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let response = admin_response(&handler, &draining, request.uri().path());
            async move { Ok::<_, Infallible>(response) }
        });
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn admin_response(
    handler: &HttpHandler,
    draining: &AtomicBool,
    path: &str,
) -> Response<HyperOutgoingBody> {
    match path {
        "/healthz" => {
            let buckets = handler.runtime().buckets();
            let down: Vec<&str> = buckets
                .names()
                .filter(|name| !buckets.is_connected(name))
                .collect();
            if draining.load(Ordering::Relaxed) {
                reply(StatusCode::SERVICE_UNAVAILABLE, "draining\n".into())
            } else if down.is_empty() {
                reply(StatusCode::OK, "ok\n".into())
            } else {
                reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("buckets not connected: {}\n", down.join(", ")),
                )
            }
        }
        "/metrics" => match handler.runtime().buckets().metrics() {
            Some(metrics) => {
                let mut response = reply(StatusCode::OK, metrics.encode());
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
                );
                response
            }
            None => reply(
                StatusCode::NOT_FOUND,
                "metrics are not counted by this host (Buckets::with_metrics)\n".into(),
            ),
        },
        _ => reply(
            StatusCode::NOT_FOUND,
            "not found: try /healthz or /metrics\n".into(),
        ),
    }
}

/// Completes on SIGINT or SIGTERM (Ctrl-C or Ctrl-Break on Windows).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!("cannot watch for SIGTERM: {e}");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(windows)]
    {
        match tokio::signal::windows::ctrl_break() {
            Ok(mut ctrl_break) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = ctrl_break.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!("cannot watch for Ctrl-Break: {e}");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
