//! Embedding wasikv in your own HTTP server: your wasmtime engine, your
//! store state and your hyper loop; wasikv adds `wasi:keyvalue` (both WIT
//! versions, every configured bucket) next to `wasmtime-wasi-http`, and
//! counts every key-value call in metrics you can serve yourself.
//!
//! ```sh
//! cargo run --release -p wasikv-host --example embed_http -- path/to/http-component.wasm [ADDR]
//! curl http://127.0.0.1:8080/counter/alice
//! curl http://127.0.0.1:8080/_metrics   # this example's own metrics route
//! ```
//!
//! `wasikv serve` does the same through `wasikv_host::serve` (limits,
//! graceful shutdown, admin listener); this is the minimum without it. The
//! per-request instance (`common/proxy.rs`) is wasmtime-wasi-http's own
//! pattern, shared with the `serve_baseline` benchmark server.

use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use tokio::net::TcpListener;
#[path = "common/proxy.rs"]
mod proxy;

use wasikv_host::{Buckets, Config, Metrics, WasiKeyValue, WasiKeyValueCtx};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// The platform's own per-request state.
struct State {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    kv: WasiKeyValueCtx,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: Default::default(),
        }
    }
}

struct Server {
    pre: ProxyPre<State>,
    buckets: Arc<Buckets>,
    metrics: Arc<Metrics>,
}

#[tokio::main]
async fn main() -> wasmtime::Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: embed_http COMPONENT.wasm [ADDR]");
        std::process::exit(2);
    };
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8080".into());

    // Buckets from wasikv.toml + WASIKV_ env (or the embedded default),
    // shared by every request, counting their calls in `metrics`.
    let metrics = Arc::new(Metrics::new());
    let buckets =
        Arc::new(Buckets::from_config(&Config::load(None)?)?.with_metrics(metrics.clone()));

    let engine = Engine::default();
    let mut linker = Linker::<State>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    wasikv_host::add_to_linker(&mut linker, |s: &mut State| {
        WasiKeyValue::new(&s.kv, &mut s.table)
    })?;
    let component = Component::from_file(&engine, &path)?;
    let pre = ProxyPre::new(linker.instantiate_pre(&component)?)?;
    let server = Arc::new(Server {
        pre,
        buckets,
        metrics,
    });

    let listener = TcpListener::bind(&addr).await?;
    println!("serving {path} on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let server = server.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let server = server.clone();
                async move { server.handle(request).await }
            });
            let io = wasmtime_wasi_http::io::TokioIo::new(stream);
            if let Err(e) = http1::Builder::new().serve_connection(io, service).await {
                eprintln!("connection error: {e}");
            }
        });
    }
}

impl Server {
    async fn handle(
        &self,
        request: hyper::Request<hyper::body::Incoming>,
    ) -> wasmtime::Result<hyper::Response<HyperOutgoingBody>> {
        if request.uri().path() == "/_metrics" {
            let text = Full::new(self.metrics.encode().into())
                .map_err(|never| match never {})
                .boxed_unsync();
            return Ok(hyper::Response::new(text));
        }
        // A fresh instance per request, with its own key-value context.
        let state = State {
            table: ResourceTable::new(),
            wasi: WasiCtx::builder().inherit_stdio().build(),
            http: WasiHttpCtx::new(),
            kv: WasiKeyValueCtx::builder(self.buckets.clone())
                .component("embed-http-example")
                .build(),
        };
        proxy::respond(&self.pre, Store::new(self.pre.engine(), state), request).await
    }
}
