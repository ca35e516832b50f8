//! The baseline of the serve benchmark (`scripts/bench.sh`, part 5): an HTTP
//! server made of the crates `wasmtime serve -S keyvalue` uses,
//! `wasmtime-wasi-http` and `wasmtime-wasi-keyvalue` 48, so that wasmtime is
//! compiled once for both sides of the comparison. Like `wasmtime serve`
//! 48 for a `wasi:http@0.2` component, it gives every request a fresh
//! instance in a fresh store (pooling allocator, HTTP/1.1 keep-alive) with a
//! `wasmtime-wasi-keyvalue` context of its own; it has no request limits.
//! It differs from the `wasmtime` binary in what this build of wasmtime
//! has: no `component-model-async` (`Config::concurrency_support(false)`,
//! as wasikv) and no per-instance stdout prefixes.
//!
//! ```sh
//! cargo run --release -p wasikv-host --example serve_baseline -- COMPONENT.wasm [ADDR]
//! ```

use std::sync::Arc;

use hyper::server::conn::http1;
use tokio::net::TcpListener;
#[path = "common/proxy.rs"]
mod proxy;

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};
use wasmtime_wasi_keyvalue::{WasiKeyValue, WasiKeyValueCtx, WasiKeyValueCtxBuilder};

/// Instances the pooling allocator keeps (as many concurrent requests).
const POOL: u32 = 1000;

struct Host {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    kv: WasiKeyValueCtx,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for Host {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: Default::default(),
        }
    }
}

fn main() -> wasmtime::Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: serve_baseline COMPONENT.wasm [ADDR]");
        std::process::exit(2);
    };
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8080".into());

    let mut pool = wasmtime::PoolingAllocationConfig::new();
    pool.total_component_instances(POOL)
        .total_core_instances(POOL * 8)
        .total_memories(POOL * 2)
        .total_tables(POOL * 8)
        .total_stacks(POOL);
    let mut config = wasmtime::Config::new();
    config
        .concurrency_support(false)
        .allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    let engine = Engine::new(&config)?;
    let mut linker = Linker::<Host>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    wasmtime_wasi_keyvalue::add_to_linker(&mut linker, |h: &mut Host| {
        WasiKeyValue::new(&h.kv, &mut h.table)
    })?;
    let component = Component::from_file(&engine, &path)?;
    let pre = Arc::new(ProxyPre::new(linker.instantiate_pre(&component)?)?);

    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = TcpListener::bind(&addr).await?;
            eprintln!("serving {path} on http://{}", listener.local_addr()?);
            loop {
                let (stream, _) = listener.accept().await?;
                stream.set_nodelay(true)?;
                let pre = pre.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let pre = pre.clone();
                        async move { handle(&pre, request).await }
                    });
                    let io = wasmtime_wasi_http::io::TokioIo::new(stream);
                    let _ = http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(io, service)
                        .await;
                });
            }
        })
}

async fn handle(
    pre: &ProxyPre<Host>,
    request: hyper::Request<hyper::body::Incoming>,
) -> wasmtime::Result<hyper::Response<HyperOutgoingBody>> {
    let host = Host {
        table: ResourceTable::new(),
        wasi: WasiCtx::builder().inherit_stdio().build(),
        http: WasiHttpCtx::new(),
        kv: WasiKeyValueCtxBuilder::new().build(),
    };
    proxy::respond(pre, Store::new(pre.engine(), host), request).await
}
