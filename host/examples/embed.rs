//! Embedding wasikv in your own wasmtime host: a few lines add
//! `wasi:keyvalue` next to WASI, then any `wasi:cli/run` component runs.
//!
//! ```sh
//! cargo run --release -p wasikv-host --example embed -- path/to/component.wasm [ARGS]
//! ```

use std::sync::Arc;

use wasikv_host::{Buckets, Config, WasiKeyValue, WasiKeyValueCtx};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::bindings::Command;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// The platform's own per-instance state.
struct State {
    table: ResourceTable,
    wasi: WasiCtx,
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

#[tokio::main]
async fn main() -> wasmtime::Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: embed COMPONENT.wasm [ARGS]");
        std::process::exit(2);
    };

    // Buckets from wasikv.toml + WASIKV_ env (or the embedded default), shared by all instances.
    let buckets = Arc::new(Buckets::from_config(&Config::load(None)?)?);

    let engine = Engine::default();
    let mut linker = Linker::<State>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasikv_host::add_to_linker(&mut linker, |s: &mut State| {
        WasiKeyValue::new(&s.kv, &mut s.table)
    })?;

    let mut argv = vec![path.clone()];
    argv.extend(args);
    let state = State {
        table: ResourceTable::new(),
        wasi: WasiCtxBuilder::new().inherit_stdio().args(&argv).build(),
        kv: WasiKeyValueCtx::builder(buckets)
            .component("embedded-example")
            .build(),
    };
    let mut store = Store::new(&engine, state);
    let component = Component::from_file(&engine, &path)?;
    let command = Command::instantiate_async(&mut store, &component, &linker).await?;
    if command.wasi_cli_run().call_run(&mut store).await?.is_err() {
        std::process::exit(1);
    }
    Ok(())
}
