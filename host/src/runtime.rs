//! Running `wasi:cli/run` components against the configured buckets: the
//! wasmtime engine, the compiled-component cache, and the guest limits
//! (memory, execution deadline).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::Result;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::error::Context;
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::{
    Error as HttpError, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

use wasikv_core::Change;

use crate::buckets::Buckets;
use crate::config::{Config, RuntimeConfig};
use crate::keyvalue::{GetManyShape, WasiKeyValue, WasiKeyValueCtx, add_to_linker_with};

/// How often the deadline clock ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The state of one component instance.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    kv: WasiKeyValueCtx,
    http: WasiHttpCtx,
    outgoing: OutgoingHttp,
    limits: StoreLimits,
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outgoing,
        }
    }
}

/// Whether a guest's outgoing HTTP requests are sent (`wasi:http/outgoing-handler`).
#[derive(Debug, Clone, Copy)]
struct OutgoingHttp {
    allowed: bool,
}

impl WasiHttpHooks for OutgoingHttp {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = std::result::Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = OutgoingResult> + Send> {
        if !self.allowed {
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        wasmtime_wasi_http::default_hooks().send_request(request, options, fut)
    }
}

/// What [`WasiHttpHooks::send_request`] resolves to.
type OutgoingResult = std::result::Result<
    (
        http::Response<wasmtime_wasi_http::WasiBody>,
        Box<dyn Future<Output = std::result::Result<(), HttpError>> + Send>,
    ),
    HttpError,
>;

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Where a guest's stdout and stderr go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdio {
    /// The host's own.
    Inherit,
    /// Captured into [`RunOutcome::stdout`] / [`RunOutcome::stderr`].
    Capture,
}

/// One run of a component.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The component name, for its allow-list.
    pub name: String,
    /// Arguments after the program name.
    pub args: Vec<String>,
    /// Environment variables.
    pub env: Vec<(String, String)>,
    /// Where output goes.
    pub stdio: Stdio,
}

/// How a run ended (a trap is an `Err` of [`Runtime::run`]).
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The exit code: 0 on success.
    pub exit_code: i32,
    /// Captured stdout (empty with [`Stdio::Inherit`]).
    pub stdout: String,
    /// Captured stderr (empty with [`Stdio::Inherit`]).
    pub stderr: String,
    /// Time spent instantiating the component (from a prepared command).
    pub instantiate_time: Duration,
}

/// A component checked against the host's imports once, ready to be
/// instantiated any number of times ([`Runtime::prepare`]).
#[derive(Clone)]
pub struct Prepared {
    command: CommandPre<HostState>,
}

/// An HTTP component (exporting `wasi:http/incoming-handler@0.2.x`) checked
/// against the host's imports once ([`Runtime::prepare_http`]); each request
/// gets a fresh instance of it.
#[derive(Clone)]
pub struct HttpPrepared {
    pub(crate) proxy: ProxyPre<HostState>,
}

/// A wasmtime engine with WASI (`wasi:cli`, `wasi:http`) and wasi:keyvalue,
/// over one set of buckets: the one runtime path of `run`, `watch` and
/// `serve`.
pub struct Runtime {
    engine: Engine,
    /// WASI and both `wasi:keyvalue` versions, `batch@0.2.0-draft2` in the
    /// shape of the design contract ...
    linker: Linker<HostState>,
    /// ... and in its 2024-10-17 revision (see [`GetManyShape`]), built on
    /// first use: most components never need it.
    linker_2024_10_17: std::sync::OnceLock<Linker<HostState>>,
    buckets: Arc<Buckets>,
    config: RuntimeConfig,
    outgoing: OutgoingHttp,
}

impl Runtime {
    /// An engine and linker for `config`; buckets are validated, not connected.
    pub fn new(config: &Config) -> Result<Self> {
        let buckets = Arc::new(Buckets::from_config(config)?);
        Self::with_buckets(buckets, config.runtime.clone())
    }

    /// A runtime over existing buckets.
    pub fn with_buckets(buckets: Arc<Buckets>, config: RuntimeConfig) -> Result<Self> {
        let mut wasm = wasmtime::Config::new();
        // Guest code is interrupted only to enforce a deadline: without one,
        // it runs without the epoch checks in its loops.
        let deadline = config.deadline_ms > 0;
        wasm.epoch_interruption(deadline);
        wasm.concurrency_support(false);
        if config.pooling_instances > 0 {
            wasm.allocation_strategy(pooling(&config));
        }
        let engine = Engine::new(&wasm)?;
        if deadline {
            spawn_epoch_ticker(&engine);
        }
        let linker = new_linker(&engine, GetManyShape::OptionalPair)?;
        Ok(Runtime {
            engine,
            linker,
            linker_2024_10_17: std::sync::OnceLock::new(),
            buckets,
            config,
            outgoing: OutgoingHttp { allowed: false },
        })
    }

    /// The linker for `component`: the one whose `batch@0.2.0-draft2` has
    /// the shape the component imports.
    fn linker_for(&self, component: &Component) -> Result<&Linker<HostState>> {
        match GetManyShape::of(component, &self.engine) {
            GetManyShape::OptionalPair => Ok(&self.linker),
            GetManyShape::KeyAndOption => {
                if let Some(linker) = self.linker_2024_10_17.get() {
                    return Ok(linker);
                }
                let built = new_linker(&self.engine, GetManyShape::KeyAndOption)?;
                Ok(self.linker_2024_10_17.get_or_init(|| built))
            }
        }
    }

    /// Lets guests send outgoing HTTP requests (refused with
    /// `HTTP-request-denied` by default).
    pub fn allow_outgoing_http(&mut self, allowed: bool) {
        self.outgoing.allowed = allowed;
    }

    /// The runtime settings.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The buckets.
    pub fn buckets(&self) -> &Arc<Buckets> {
        &self.buckets
    }

    /// Loads a component, from the compiled-component cache when possible.
    pub fn load(&self, path: &Path) -> Result<Component> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read component {}", path.display()))?;
        if !self.config.cache {
            return Component::new(&self.engine, &bytes)
                .with_context(|| format!("cannot compile {}", path.display()));
        }
        let cached = self.cache_path(&bytes);
        if cached.is_file() {
            // SAFETY: the file was written by `Component::serialize` of an engine
            // with the same compatibility hash (part of its name), in the cache
            // directory this host owns; see docs/architecture.md on trusting it.
            #[allow(unsafe_code)]
            match unsafe { Component::deserialize_file(&self.engine, &cached) } {
                Ok(component) => return Ok(component),
                Err(e) => {
                    tracing::warn!("ignoring unusable cache entry {}: {e:#}", cached.display())
                }
            }
        }
        let component = Component::new(&self.engine, &bytes)
            .with_context(|| format!("cannot compile {}", path.display()))?;
        if let Err(e) = write_atomically(&cached, &component.serialize()?) {
            tracing::warn!(
                "cannot cache the compiled component at {}: {e:#}",
                cached.display()
            );
        }
        Ok(component)
    }

    /// The cache file of a component: named by the SHA-256 of its bytes and
    /// the engine's compatibility hash, so a changed file or wasmtime misses.
    pub fn cache_path(&self, bytes: &[u8]) -> PathBuf {
        let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut engine_hash);
        env!("CARGO_PKG_VERSION").hash(&mut engine_hash);
        let digest = Sha256::digest(bytes);
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        self.config
            .cache_dir()
            .join(format!("{hex}-{:016x}.cwasm", engine_hash.finish()))
    }

    /// A wasmtime store for one instance of component `name`, with its
    /// key-value context, memory limit and deadline.
    pub(crate) fn new_store(&self, wasi: WasiCtx, name: &str) -> Store<HostState> {
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            kv: WasiKeyValueCtx::builder(self.buckets.clone())
                .component(name)
                .build(),
            http: WasiHttpCtx::new(),
            outgoing: self.outgoing,
            limits: StoreLimitsBuilder::new()
                .memory_size(self.config.max_memory_bytes)
                .trap_on_grow_failure(true)
                .build(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        if let Some(ticks) = deadline_ticks(self.deadline()) {
            store.set_epoch_deadline(ticks);
            store.epoch_deadline_trap();
        }
        store
    }

    /// The guest execution deadline (`runtime.deadline_ms`), if any.
    pub fn deadline(&self) -> Option<Duration> {
        (self.config.deadline_ms > 0).then(|| Duration::from_millis(self.config.deadline_ms))
    }

    /// Checks a `wasi:cli/run` component against the host's imports once, so
    /// that each of its runs ([`Runtime::run_prepared`]) only instantiates.
    pub fn prepare(&self, component: &Component) -> Result<Prepared> {
        let command = CommandPre::new(self.linker_for(component)?.instantiate_pre(component)?)
            .context("the component is not a wasi:cli/run command")?;
        Ok(Prepared { command })
    }

    /// Checks an HTTP component (exporting
    /// `wasi:http/incoming-handler@0.2.x`) against the host's imports once,
    /// for [`crate::serve`].
    pub fn prepare_http(&self, component: &Component) -> Result<HttpPrepared> {
        let proxy = ProxyPre::new(self.linker_for(component)?.instantiate_pre(component)?)
            .context("the component does not export wasi:http/incoming-handler@0.2.x")?;
        Ok(HttpPrepared { proxy })
    }

    /// Runs a `wasi:cli/run` component to completion.
    pub async fn run(&self, component: &Component, options: RunOptions) -> Result<RunOutcome> {
        self.run_prepared(&self.prepare(component)?, options).await
    }

    /// Runs a prepared component to completion: a new instance, in a new
    /// store, with its own WASI context and bucket handles.
    pub async fn run_prepared(
        &self,
        prepared: &Prepared,
        options: RunOptions,
    ) -> Result<RunOutcome> {
        let pre = &prepared.command;
        let mut wasi = WasiCtxBuilder::new();
        wasi.inherit_stdin();
        let mut args = vec![options.name.clone()];
        args.extend(options.args.iter().cloned());
        wasi.args(&args);
        for (k, v) in &options.env {
            wasi.env(k, v);
        }
        let (stdout, stderr) = match options.stdio {
            Stdio::Inherit => {
                wasi.inherit_stdout().inherit_stderr();
                (None, None)
            }
            Stdio::Capture => {
                let out = MemoryOutputPipe::new(16 << 20);
                let err = MemoryOutputPipe::new(16 << 20);
                wasi.stdout(out.clone()).stderr(err.clone());
                (Some(out), Some(err))
            }
        };
        let mut store = self.new_store(wasi.build(), &options.name);
        let deadline = self.deadline();

        let mut instantiate_time = Duration::ZERO;
        let run = async {
            let started = std::time::Instant::now();
            let command = pre.instantiate_async(&mut store).await?;
            instantiate_time = started.elapsed();
            command.wasi_cli_run().call_run(&mut store).await
        };
        let result = within_deadline(deadline, run).await;
        let exit_code = match result {
            Ok(Ok(())) => 0,
            Ok(Err(())) => 1,
            Err(e) => match e.downcast_ref::<I32Exit>() {
                Some(I32Exit(code)) => *code,
                None => return Err(explain_trap(e, deadline, self.config.max_memory_bytes)),
            },
        };
        let text = |pipe: Option<MemoryOutputPipe>| {
            pipe.map(|p| String::from_utf8_lossy(&p.contents()).into_owned())
                .unwrap_or_default()
        };
        Ok(RunOutcome {
            exit_code,
            stdout: text(stdout),
            stderr: text(stderr),
            instantiate_time,
        })
    }
}

/// What [`Runtime::watch`] serves.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// The component name, for its allow-list.
    pub name: String,
    /// The buckets whose changes the component receives.
    pub buckets: Vec<String>,
}

/// How a watch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchReport {
    /// Changes delivered to the component.
    pub delivered: u64,
}

impl Runtime {
    /// Prepares a `watch-service` component: subscribes to the changes of
    /// `options.buckets` (every change made after this returns is seen) and
    /// instantiates the component once. [`Watch::serve`] then delivers them.
    pub async fn watch(&self, component: &Component, options: WatchOptions) -> Result<Watch> {
        use futures::StreamExt;

        use crate::keyvalue::watch_service::WatchService;

        let mut feeds = Vec::new();
        for name in &options.buckets {
            let bucket = self
                .buckets
                .open(Some(&options.name), name)
                .await
                .map_err(|e| wasmtime::Error::msg(e.to_string()))?;
            let changes = bucket
                .watch()
                .await
                .map_err(|e| wasmtime::Error::msg(e.to_string()))?;
            feeds.push(changes.map(move |change| (bucket.clone(), change)));
        }
        let changes = futures::stream::select_all(feeds);

        let mut wasi = WasiCtxBuilder::new();
        wasi.inherit_stdout().inherit_stderr();
        let mut store = self.new_store(wasi.build(), &options.name);
        let deadline = self.deadline();
        let ticks = deadline_ticks(deadline);
        let service =
            WatchService::instantiate_async(&mut store, component, self.linker_for(component)?)
                .await
                .context("the component does not export wasi:keyvalue/watcher@0.2.0-draft2")?;
        Ok(Watch {
            store,
            service,
            changes: Box::pin(changes),
            ticks,
            deadline,
            max_memory: self.config.max_memory_bytes,
        })
    }
}

/// The merged changes of the watched buckets, each with its bucket.
type BucketChanges = std::pin::Pin<
    Box<
        dyn futures::Stream<Item = (Arc<crate::buckets::OpenBucket>, wasikv_core::Result<Change>)>
            + Send,
    >,
>;

/// A `watch-service` component subscribed to its buckets' changes, made by
/// [`Runtime::watch`].
pub struct Watch {
    store: Store<HostState>,
    service: crate::keyvalue::watch_service::WatchService,
    changes: BucketChanges,
    ticks: Option<u64>,
    deadline: Option<Duration>,
    max_memory: usize,
}

impl Watch {
    /// Delivers every change through the component's `watcher` export
    /// (`on-set`, `on-delete`; one call at a time, each key's changes in
    /// order) until `stop` completes. `runtime.deadline_ms` bounds each
    /// handler call; a trap or a failing change feed ends the watch with an
    /// error.
    pub async fn serve(
        mut self,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<WatchReport> {
        use futures::StreamExt;

        use crate::keyvalue::BucketResource;

        let (ticks, deadline, max_memory) = (self.ticks, self.deadline, self.max_memory);
        let store = &mut self.store;
        let changes = &mut self.changes;
        let watcher = self.service.wasi_keyvalue_watcher();
        let mut stop = std::pin::pin!(stop);
        let mut delivered = 0;
        loop {
            let next = tokio::select! {
                () = &mut stop => break,
                next = changes.next() => next,
            };
            let Some((bucket, change)) = next else { break };
            let change = change.map_err(|e| wasmtime::Error::msg(e.to_string()))?;
            let resource = store.data_mut().table.push(BucketResource { bucket })?;
            if let Some(ticks) = ticks {
                store.set_epoch_deadline(ticks);
            }
            let call = async {
                match &change {
                    Change::Set { key, value } => {
                        watcher.call_on_set(&mut *store, resource, key, value).await
                    }
                    Change::Delete { key } => {
                        watcher.call_on_delete(&mut *store, resource, key).await
                    }
                }
            };
            call.await
                .map_err(|e| explain_trap(e, deadline, max_memory))?;
            delivered += 1;
        }
        Ok(WatchReport { delivered })
    }
}

/// How long past the deadline a guest blocked in a host call (a store call,
/// a sleep, a body read) may take before it is stopped.
const HOST_CALL_SLACK: Duration = Duration::from_millis(500);

/// Runs an instance's `call` within `deadline`: guest code is stopped by the
/// epoch deadline, and a call still running [`HOST_CALL_SLACK`] later (blocked
/// in a host call) is dropped and ends as `Trap::Interrupt`, which
/// [`explain_trap`] turns into the deadline error.
pub(crate) async fn within_deadline<T>(
    deadline: Option<Duration>,
    call: impl Future<Output = Result<T>>,
) -> Result<T> {
    match deadline {
        Some(d) => tokio::time::timeout(d + HOST_CALL_SLACK, call)
            .await
            .unwrap_or_else(|_| Err(wasmtime::Error::new(wasmtime::Trap::Interrupt))),
        None => call.await,
    }
}

/// Adds what a trap means in wasikv's terms.
pub(crate) fn explain_trap(
    e: wasmtime::Error,
    deadline: Option<Duration>,
    max_memory: usize,
) -> wasmtime::Error {
    match e.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => match deadline {
            Some(d) => e.context(format!(
                "the component exceeded its deadline of {} ms (runtime.deadline_ms)",
                d.as_millis()
            )),
            None => e.context("the component was interrupted"),
        },
        _ if format!("{e:?}").contains("forcing trap when growing memory") => e.context(format!(
            "the component exceeded its memory limit of {max_memory} bytes (runtime.max_memory_bytes)"
        )),
        _ => e.context("the component trapped"),
    }
}

/// A linker with WASI (`cli`, `http`) and wasi:keyvalue, `batch@0.2.0-draft2` in `shape`.
fn new_linker(engine: &Engine, shape: GetManyShape) -> Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    add_to_linker_with(
        &mut linker,
        |s: &mut HostState| WasiKeyValue::new(&s.kv, &mut s.table),
        shape,
    )?;
    Ok(linker)
}

/// Bytes of each pooled linear memory kept resident (reset by memset) when
/// its instance ends.
const KEEP_RESIDENT_BYTES: usize = 1 << 20;
/// Bytes of each pooled table kept resident when its instance ends.
const KEEP_RESIDENT_TABLE_BYTES: usize = 64 << 10;
/// Released pool slots decommitted together.
const DECOMMIT_BATCH: usize = 16;

/// The pooling allocator for `runtime.pooling_instances` concurrent
/// instances: memories, tables and stacks are reserved once and reused, so an
/// instantiation maps no new memory. An instance beyond the pool fails to
/// instantiate with wasmtime's limit error.
fn pooling(config: &RuntimeConfig) -> wasmtime::InstanceAllocationStrategy {
    let instances = config.pooling_instances;
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    // A wasip2 command is a few core instances (the program, the WASI adapter
    // and its shims), each with at most one memory and a few tables.
    pool.total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(8))
        .total_memories(instances.saturating_mul(2))
        .total_tables(instances.saturating_mul(8))
        .total_stacks(instances)
        .max_memory_size(config.max_memory_bytes)
        // A released slot is reset for reuse: the first pages of its memory
        // and tables with memset instead of madvise (no page faults when the
        // next instance touches them again), the rest by madvise in batches
        // (one TLB shoot-down per batch, not per instance). Measured with
        // `wasikv serve` (docs/benchmarks.md, part 5).
        .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
        .table_keep_resident(KEEP_RESIDENT_TABLE_BYTES)
        .decommit_batch_size(DECOMMIT_BATCH.min(instances as usize).max(1))
        .pagemap_scan(wasmtime::Enabled::Auto);
    wasmtime::InstanceAllocationStrategy::Pooling(pool)
}

/// The epoch ticks of a deadline (the engine interrupts guests only with one).
fn deadline_ticks(deadline: Option<Duration>) -> Option<u64> {
    deadline.map(|d| (d.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64)
}

/// Ticks the engine's epoch from a background thread while the engine lives.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("wasikv-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawn the epoch thread");
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
