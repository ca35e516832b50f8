//! The `wasikv` command line: run, serve and watch components, show the
//! capability matrix, check a configuration, and the operator's `kv`
//! commands (`kv.rs`).

mod kv;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wasikv_host::{Buckets, Config, RunOptions, Runtime, Stdio, WatchOptions, matrix};

/// Run WebAssembly components against any key-value store through
/// wasi:keyvalue@0.2.0-draft2.
#[derive(Parser, Debug)]
#[command(name = "wasikv", version, about)]
struct Cli {
    /// Configuration file (default: ./wasikv.toml when it exists).
    #[arg(long, global = true, env = "WASIKV_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a wasi:cli/run component.
    Run {
        /// The component (.wasm).
        component: PathBuf,
        /// Component name for its allow-list (default: the file stem).
        #[arg(long)]
        name: Option<String>,
        /// An environment variable for the guest, K=V (repeatable).
        #[arg(long = "env", value_parser = parse_env)]
        env: Vec<(String, String)>,
        /// Arguments for the guest (after `--`).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Serve a watch-service component: it receives every change of the
    /// named buckets through its wasi:keyvalue/watcher export, until Ctrl-C.
    Watch {
        /// The component (.wasm), exporting wasi:keyvalue/watcher.
        component: PathBuf,
        /// Component name for its allow-list (default: the file stem).
        #[arg(long)]
        name: Option<String>,
        /// A bucket to watch (repeatable).
        #[arg(long = "bucket", required = true)]
        buckets: Vec<String>,
    },
    /// Serve an HTTP component (exporting wasi:http/incoming-handler@0.2.x):
    /// a fresh instance per request, until SIGINT/SIGTERM, then drain.
    /// Flags override the [serve] section of the configuration.
    Serve {
        /// The component (.wasm), exporting wasi:http/incoming-handler.
        component: PathBuf,
        /// Component name for its allow-list (default: the file stem).
        #[arg(long)]
        name: Option<String>,
        /// An environment variable for the guest, K=V (repeatable).
        #[arg(long = "env", value_parser = parse_env)]
        env: Vec<(String, String)>,
        #[command(flatten)]
        flags: ServeFlags,
    },
    /// Inspect and change buckets, copy them between stores, export and
    /// import them. Operator access: components' allow-lists do not apply
    /// (every configured bucket can be opened); keys, values, counters and
    /// limits are those guests see.
    Kv {
        #[command(subcommand)]
        command: kv::KvCommand,
    },
    /// Print the capability matrix of the compiled-in providers.
    Providers,
    /// Validate the configuration and connect to every bucket.
    Check,
    /// Delete orphaned chunks of large values: chunks no manifest refers to
    /// (left by a writer that crashed or timed out midway, or by two writers
    /// racing on one key), older than the grace period. Lists every key of
    /// each bucket; buckets whose store has no value limit are skipped.
    Gc {
        /// A bucket to collect (repeatable; default: every configured bucket).
        #[arg(long = "bucket")]
        buckets: Vec<String>,
        /// Only chunks older than this many seconds (default 3600: far longer
        /// than any write may take, so a write in progress keeps its chunks).
        #[arg(long, default_value_t = 3600)]
        grace_secs: u64,
    },
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected K=V, got {s:?}"))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            // WASIKV_LOG, else RUST_LOG, e.g. `wasikv_host::call=debug` for a
            // line per host call (bucket, provider, op, outcome, latency).
            tracing_subscriber::EnvFilter::try_from_env("WASIKV_LOG")
                .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal, plain text in files and pipes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    // One component instance at a time (run, watch): a current-thread runtime
    // keeps the guest, its host calls and the store clients' I/O on one
    // thread (no cross-thread wake-ups per call; measured 0.52x -> 0.86x of a
    // native Redis GET loop). Serving many requests at once: every core.
    let runtime = match &cli.command {
        Command::Serve { .. } => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    }
    .enable_all()
    .build();
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wasikv: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Providers => {
            print!("{}", matrix::markdown());
            ExitCode::SUCCESS
        }
        Command::Check => runtime.block_on(check(cli.config)),
        Command::Kv { command } => match load_buckets(cli.config) {
            Ok(buckets) => runtime.block_on(kv::run(buckets, command)),
            Err(code) => code,
        },
        Command::Gc {
            buckets,
            grace_secs,
        } => runtime.block_on(gc(
            cli.config,
            buckets,
            std::time::Duration::from_secs(grace_secs),
        )),
        Command::Run {
            component,
            name,
            env,
            args,
        } => runtime.block_on(run(cli.config, component, name, env, args)),
        Command::Watch {
            component,
            name,
            buckets,
        } => runtime.block_on(watch(cli.config, component, name, buckets)),
        Command::Serve {
            component,
            name,
            env,
            flags,
        } => runtime.block_on(serve(cli.config, component, name, env, flags)),
    }
}

/// `wasikv serve` flags that override the `[serve]` section.
#[derive(clap::Args, Debug)]
struct ServeFlags {
    /// Address to listen on [config: serve.listen; default 127.0.0.1:8080].
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Admin address for /healthz and /metrics [config: serve.admin; default off].
    #[arg(long)]
    admin: Option<std::net::SocketAddr>,
    /// Requests handled at once; more get 503 [config: serve.max_concurrent_requests].
    #[arg(long)]
    max_concurrent_requests: Option<usize>,
    /// Per-request deadline in ms; later gets 504 [config: serve.request_timeout_ms].
    #[arg(long)]
    request_timeout_ms: Option<u64>,
    /// Largest request body in bytes; larger gets 413 [config: serve.max_request_body_bytes].
    #[arg(long)]
    max_request_body_bytes: Option<u64>,
    /// How long in-flight requests may finish after SIGINT/SIGTERM, in ms
    /// [config: serve.drain_timeout_ms].
    #[arg(long)]
    drain_timeout_ms: Option<u64>,
    /// Let the component send outgoing HTTP requests [config: serve.outgoing_http].
    #[arg(long)]
    allow_outgoing_http: bool,
}

impl ServeFlags {
    fn apply(self, serve: &mut wasikv_host::ServeConfig) {
        if let Some(v) = self.listen {
            serve.listen = v;
        }
        if let Some(v) = self.admin {
            serve.admin = Some(v);
        }
        if let Some(v) = self.max_concurrent_requests {
            serve.max_concurrent_requests = v;
        }
        if let Some(v) = self.request_timeout_ms {
            serve.request_timeout_ms = v;
        }
        if let Some(v) = self.max_request_body_bytes {
            serve.max_request_body_bytes = v;
        }
        if let Some(v) = self.drain_timeout_ms {
            serve.drain_timeout_ms = v;
        }
        serve.outgoing_http |= self.allow_outgoing_http;
    }
}

async fn serve(
    config: Option<PathBuf>,
    component: PathBuf,
    name: Option<String>,
    env: Vec<(String, String)>,
    flags: ServeFlags,
) -> ExitCode {
    use std::sync::Arc;

    use wasikv_host::serve::{HandlerOptions, HttpHandler, Listeners};

    let mut config = match load_config(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    flags.apply(&mut config.serve);
    // A server answers whoever can reach it: components without an
    // allow-list open nothing unless the configuration says otherwise.
    config
        .access
        .unlisted
        .get_or_insert(wasikv_host::Unlisted::Deny);
    let settings = config.serve.clone();
    let bad_config = |e: &dyn std::fmt::Display| {
        eprintln!("wasikv: bad configuration: {e}");
        ExitCode::from(2)
    };
    let runtime_config = match settings.runtime(&config.runtime) {
        Ok(r) => r,
        Err(e) => return bad_config(&e),
    };
    let mut buckets = match Buckets::from_config(&config) {
        Ok(b) => b,
        Err(e) => return bad_config(&e),
    };
    // Counted only where they can be read: on the admin listener.
    if settings.admin.is_some() {
        buckets = buckets.with_metrics(Arc::new(wasikv_host::Metrics::new()));
    }
    let mut runtime = match Runtime::with_buckets(Arc::new(buckets), runtime_config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("wasikv: {e:#}");
            return ExitCode::from(2);
        }
    };
    runtime.allow_outgoing_http(settings.outgoing_http);
    let loaded = match runtime.load(&component) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wasikv: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let name = component_name(&component, name);
    if !runtime.buckets().is_listed(&name)
        && runtime.buckets().unlisted_policy() == wasikv_host::Unlisted::Deny
    {
        eprintln!(
            "wasikv: warning: component {name:?} has no [components.{name}] section and access.unlisted is \"deny\" (serve's default): every store.open it makes gets access-denied. List the buckets it may open in [components.{name}], or set access.unlisted = \"allow\"."
        );
    }
    let mut options = HandlerOptions::new(name, &settings);
    options.env = env;
    let handler = match HttpHandler::new(Arc::new(runtime), &loaded, options) {
        Ok(h) => Arc::new(h),
        Err(e) => {
            eprintln!("wasikv: {}: {e:#}", component.display());
            return ExitCode::FAILURE;
        }
    };
    let listeners = match Listeners::bind(&settings).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("wasikv: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let address = |l: &tokio::net::TcpListener| {
        l.local_addr()
            .map_or_else(|_| "?".to_string(), |a| a.to_string())
    };
    match &listeners.admin {
        Some(admin) => eprintln!(
            "wasikv: serving {} on http://{} (admin on http://{})",
            component.display(),
            address(&listeners.http),
            address(admin)
        ),
        None => eprintln!(
            "wasikv: serving {} on http://{}",
            component.display(),
            address(&listeners.http)
        ),
    }
    let drain = std::time::Duration::from_millis(settings.drain_timeout_ms);
    let stop = async {
        wasikv_host::serve::shutdown_signal().await;
        eprintln!(
            "wasikv: stopping: no new connections; draining in-flight requests (up to {} ms)",
            settings.drain_timeout_ms
        );
    };
    match wasikv_host::serve::serve(handler, listeners, drain, stop).await {
        Ok(report) => {
            eprintln!(
                "wasikv: stopped after {} connections{}",
                report.connections,
                if report.drained {
                    ""
                } else {
                    "; some requests did not finish within serve.drain_timeout_ms"
                }
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wasikv: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The runtime of the configuration and the compiled component, or the
/// exit code after saying what failed.
fn prepare(
    config: Option<PathBuf>,
    component: &Path,
) -> Result<(Runtime, wasmtime::component::Component), ExitCode> {
    let config = load_config(config)?;
    let runtime = Runtime::new(&config).map_err(|e| {
        eprintln!("wasikv: {e:#}");
        ExitCode::from(2)
    })?;
    let loaded = runtime.load(component).map_err(|e| {
        eprintln!("wasikv: {e:#}");
        ExitCode::FAILURE
    })?;
    Ok((runtime, loaded))
}

/// The component name: `--name`, else the file stem.
fn component_name(component: &Path, name: Option<String>) -> String {
    name.unwrap_or_else(|| {
        component
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "component".into())
    })
}

async fn watch(
    config: Option<PathBuf>,
    component: PathBuf,
    name: Option<String>,
    buckets: Vec<String>,
) -> ExitCode {
    let (runtime, loaded) = match prepare(config, &component) {
        Ok(prepared) => prepared,
        Err(code) => return code,
    };
    let options = WatchOptions {
        name: component_name(&component, name),
        buckets,
    };
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let watch = match runtime.watch(&loaded, options).await {
        Ok(w) => w,
        Err(e) => {
            eprintln!("wasikv: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    match watch.serve(stop).await {
        Ok(report) => {
            eprintln!("wasikv: stopped after {} changes", report.delivered);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wasikv: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(path: Option<PathBuf>) -> Result<Config, ExitCode> {
    Config::load(path.as_deref()).map_err(|e| {
        eprintln!("wasikv: bad configuration: {e}");
        ExitCode::from(2)
    })
}

async fn run(
    config: Option<PathBuf>,
    component: PathBuf,
    name: Option<String>,
    env: Vec<(String, String)>,
    args: Vec<String>,
) -> ExitCode {
    let (runtime, loaded) = match prepare(config, &component) {
        Ok(prepared) => prepared,
        Err(code) => return code,
    };
    let options = RunOptions {
        name: component_name(&component, name),
        args,
        env,
        stdio: Stdio::Inherit,
    };
    match runtime.run(&loaded, options).await {
        Ok(outcome) => ExitCode::from(u8::try_from(outcome.exit_code).unwrap_or(1)),
        Err(e) => {
            eprintln!("wasikv: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The configured buckets (validated, not connected), or exit code 2.
fn load_buckets(config: Option<PathBuf>) -> Result<Buckets, ExitCode> {
    let config = load_config(config)?;
    Buckets::from_config(&config).map_err(|e| {
        eprintln!("wasikv: bad configuration: {e}");
        ExitCode::from(2)
    })
}

async fn check(config: Option<PathBuf>) -> ExitCode {
    let buckets = match load_buckets(config) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let mut failed = 0;
    let names: Vec<String> = buckets.names().map(str::to_string).collect();
    for name in &names {
        let plan = buckets.plan(name).expect("configured");
        let provider = plan.provider;
        let namespace = plan.namespace.to_string();
        let probe = async {
            let bucket = buckets.open(None, name).await?;
            bucket.exists("wasikv-check-probe").await?;
            Ok::<_, wasikv_core::Error>(())
        };
        match probe.await {
            Ok(()) => println!("ok      {name:<20} {provider:<10} {namespace}"),
            Err(e) => {
                failed += 1;
                println!("FAILED  {name:<20} {provider:<10} {e}");
            }
        }
    }
    println!(
        "{} buckets: {} ok, {failed} failed",
        names.len(),
        names.len() - failed
    );
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

async fn gc(config: Option<PathBuf>, only: Vec<String>, grace: std::time::Duration) -> ExitCode {
    let buckets = match load_buckets(config) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let names: Vec<String> = if only.is_empty() {
        buckets.names().map(str::to_string).collect()
    } else {
        only
    };
    let mut failed = 0;
    for name in &names {
        let bucket = match buckets.open(None, name).await {
            Ok(b) => b,
            Err(e) => {
                failed += 1;
                println!("FAILED  {name:<20} {e}");
                continue;
            }
        };
        match bucket.collect_garbage(grace).await {
            None => println!(
                "skip    {name:<20} {:<10} no value limit: nothing is chunked",
                bucket.provider()
            ),
            Some(Ok(r)) => println!(
                "ok      {name:<20} {:<10} {} keys scanned, {} chunks, {} orphaned chunks deleted, {} younger than {} s kept",
                bucket.provider(),
                r.keys_scanned,
                r.chunks_seen,
                r.chunks_deleted,
                r.chunks_too_young,
                grace.as_secs()
            ),
            Some(Err(e)) if e.kind() == wasikv_core::ErrorKind::Unsupported => {
                println!("skip    {name:<20} {:<10} {e}", bucket.provider())
            }
            Some(Err(e)) => {
                failed += 1;
                println!("FAILED  {name:<20} {:<10} {e}", bucket.provider());
            }
        }
    }
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
