//! Host call overhead on the memory provider: the same guest loop
//! (`examples/guests/bench`, built for `wasi:keyvalue@0.2.0-draft`) on wasikv's
//! host and on a host made from `wasmtime-wasi-keyvalue` 48 (the baseline),
//! both with `Config::concurrency_support(false)`, in one run: five
//! alternating rounds per operation, the best round of each host counted.
//! Prints calls/s and the ratio per operation, and writes the figures as JSON.
//!
//! ```sh
//! cargo run --release -p wasikv-host --example overhead -- [--quick] [--json FILE] [--ops get,set]
//! ```
//! `--quick` runs a few thousand calls (a smoke test for CI, not a measurement).
//! For instruction counts under `valgrind --tool=callgrind`: `--host wasikv`
//! or `--host baseline` runs one host, one round, `--calls N` calls (run it
//! at two N and divide the difference by the difference of N: instructions
//! per call without the start-up).
//! `OVERHEAD_CONFIG` may hold a whole wasikv TOML configuration (it must
//! define the memory bucket `bench`), e.g. to measure with
//! `limits.operation_timeout_ms = 0`.

use std::path::Path;
use std::sync::Arc;

use wasikv_host::{Buckets, Config, RunOptions, Runtime, Stdio};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// Calls per round of each operation.
const OPS: [(&str, u64); 5] = [
    ("get", 1_000_000),
    ("set", 1_000_000),
    ("set-distinct", 1_000_000),
    ("increment", 1_000_000),
    ("get-many-100", 20_000),
];

/// Rounds per operation, alternating the two hosts; the best of each counts.
const ROUNDS: usize = 5;

/// Calls per second from a guest's `ok OP N calls NANOS ns` line.
fn rate(stdout: &str) -> f64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("ok "))
        .unwrap_or_else(|| panic!("bench guest said: {stdout}"));
    let parts: Vec<&str> = line.split(' ').collect();
    let n: f64 = parts[2].parse().expect("call count");
    let nanos: f64 = parts[4].parse().expect("nanoseconds");
    n / (nanos / 1e9)
}

struct Baseline {
    table: ResourceTable,
    wasi: WasiCtx,
    kv: wasmtime_wasi_keyvalue::WasiKeyValueCtx,
}

impl WasiView for Baseline {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn engine() -> Engine {
    let mut config = wasmtime::Config::new();
    config.concurrency_support(false);
    Engine::new(&config).expect("engine")
}

/// The guest on a wasmtime-wasi-keyvalue host (synchronous, its in-memory store).
fn baseline(wasm: &Path, op: &str, n: u64) -> f64 {
    let engine = engine();
    let mut linker = Linker::<Baseline>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("wasi");
    wasmtime_wasi_keyvalue::add_to_linker(&mut linker, |s: &mut Baseline| {
        wasmtime_wasi_keyvalue::WasiKeyValue::new(&s.kv, &mut s.table)
    })
    .expect("keyvalue");
    let component = Component::from_file(&engine, wasm).expect("component");
    let out = MemoryOutputPipe::new(1 << 16);
    let args = [
        "bench".to_string(),
        String::new(),
        op.to_string(),
        n.to_string(),
    ];
    let state = Baseline {
        table: ResourceTable::new(),
        wasi: WasiCtxBuilder::new()
            .stdout(out.clone())
            .args(&args)
            .build(),
        kv: wasmtime_wasi_keyvalue::WasiKeyValueCtxBuilder::new().build(),
    };
    let mut store = Store::new(&engine, state);
    let command =
        wasmtime_wasi::p2::bindings::sync::Command::instantiate(&mut store, &component, &linker)
            .expect("instantiate");
    let _ = command.wasi_cli_run().call_run(&mut store).expect("run");
    rate(&String::from_utf8_lossy(&out.contents()))
}

fn main() -> wasmtime::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut quick = false;
    let mut json = None;
    let mut only: Option<Vec<String>> = None;
    let mut host: Option<String> = None;
    let mut calls: Option<u64> = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--host" => host = args.next(),
            "--calls" => calls = args.next().and_then(|n| n.parse().ok()),
            "--json" => json = args.next(),
            "--ops" => {
                only = args
                    .next()
                    .map(|l| l.split(',').map(String::from).collect())
            }
            other => panic!("unknown argument {other:?}"),
        }
    }
    let wasm = Path::new(wasikv_artifacts::BENCH);
    let config = Config::from_toml(&std::env::var("OVERHEAD_CONFIG").unwrap_or_else(|_| {
        "[buckets.bench]\nprovider = \"memory\"\n[runtime]\ncache = false\n".into()
    }))?;
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    println!("| operation | wasikv calls/s | wasmtime-wasi-keyvalue calls/s | ratio |");
    println!("|---|---|---|---|");
    let mut rows = Vec::new();
    for (op, full) in OPS {
        if only
            .as_ref()
            .is_some_and(|ops| !ops.iter().any(|o| o == op))
        {
            continue;
        }
        let n = match (calls, quick) {
            (Some(n), _) => n,
            (None, true) => (full / 1000).max(100),
            (None, false) => full,
        };
        let options = RunOptions {
            name: "bench".into(),
            args: vec!["bench".into(), op.into(), n.to_string()],
            env: vec![],
            stdio: Stdio::Capture,
        };
        // Alternating rounds, best of each: a noisy neighbour slows one round,
        // not the comparison.
        let (mut ours, mut theirs) = (0f64, 0f64);
        let rounds = if quick || host.is_some() { 1 } else { ROUNDS };
        for _ in 0..rounds {
            if host.as_deref() != Some("baseline") {
                // A new host per round, as the baseline's: an empty map each time.
                let runtime = Runtime::with_buckets(
                    Arc::new(Buckets::from_config(&config)?),
                    config.runtime.clone(),
                )?;
                let component = runtime.load(wasm)?;
                let outcome = tokio.block_on(runtime.run(&component, options.clone()))?;
                ours = ours.max(rate(&outcome.stdout));
            }
            if host.as_deref() != Some("wasikv") {
                theirs = theirs.max(baseline(wasm, op, n));
            }
        }
        println!("| {op} | {ours:.0} | {theirs:.0} | {:.2}x |", ours / theirs);
        rows.push(format!(
            "{{\"operation\":\"{op}\",\"calls\":{n},\"wasikv_calls_per_s\":{ours:.0},\"baseline_calls_per_s\":{theirs:.0},\"ratio\":{:.3}}}",
            ours / theirs
        ));
    }
    if let Some(path) = json {
        std::fs::write(
            &path,
            format!(
                "{{\"benchmark\":\"host-overhead-memory\",\"quick\":{quick},\"results\":[{}]}}\n",
                rows.join(",")
            ),
        )?;
    }
    Ok(())
}
