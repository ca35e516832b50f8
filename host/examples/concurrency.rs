//! Scale and contention through wasikv's host, measured in one run.
//!
//! **Scale**: the cached start of a component (loaded from the compiled
//! cache and prepared), the time to instantiate it (on-demand allocation and
//! the pooling allocator), and N = 1, 8, 64 concurrent instances of a `get`
//! loop per bucket: aggregate calls/s and the host's peak resident memory.
//!
//! **Contention**: 8 instances incrementing one counter, then 8 running
//! compare-and-swap append loops on one key, per bucket: operations/s and
//! the final value, which must be exact (a wrong value exits non-zero).
//!
//! **Concurrent writers**: 1 vs 8 instances each writing its own distinct
//! keys (`set-distinct`), per bucket: writes/s of all instances (calls over
//! the longest guest-timed loop) and the ratio 8 : 1; on the embedded store
//! this is group commit at work (one fsync shared by concurrent writes).
//!
//! ```sh
//! cargo run --release -p wasikv-host --all-features --example concurrency -- \
//!     [--quick] [--json FILE] [--config FILE] [--scale B1,B2] [--contend B1,B2] [--writers B1,B2]
//! ```
//! Without `--config`, the buckets are `memory` (memory provider) and
//! `embedded` (a file in a temporary directory); `scripts/bench.sh` passes a
//! configuration with one bucket per store. `--quick` is a smoke run for CI.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wasikv_host::{Config, Prepared, RunOptions, RunOutcome, Runtime, Stdio};

const INSTANCE_COUNTS: [usize; 3] = [1, 8, 64];
const CONTENDERS: usize = 8;

struct Args {
    quick: bool,
    json: Option<String>,
    config: Option<String>,
    scale: Vec<String>,
    contend: Vec<String>,
    writers: Vec<String>,
}

fn parse_args() -> Args {
    let mut args = Args {
        quick: false,
        json: None,
        config: None,
        scale: vec!["memory".into()],
        contend: vec!["memory".into(), "embedded".into()],
        writers: vec!["embedded".into()],
    };
    let list = |s: Option<String>| -> Vec<String> {
        s.expect("a comma-separated list")
            .split(',')
            .filter(|b| !b.is_empty())
            .map(String::from)
            .collect()
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => args.quick = true,
            "--json" => args.json = it.next(),
            "--config" => args.config = it.next(),
            "--scale" => args.scale = list(it.next()),
            "--contend" => args.contend = list(it.next()),
            "--writers" => args.writers = list(it.next()),
            other => panic!("unknown argument {other:?}"),
        }
    }
    args
}

/// The configuration: the file given, or a memory and an embedded bucket,
/// with a private compiled-component cache and `pooling_instances`.
fn config(args: &Args, dir: &Path, pooling_instances: u32) -> wasmtime::Result<Config> {
    let text = match &args.config {
        Some(path) => std::fs::read_to_string(path)?,
        None => format!(
            "[buckets.memory]\nprovider = \"memory\"\n[buckets.embedded]\nprovider = \"embedded\"\npath = {:?}\n",
            dir.join("embedded.redb")
        ),
    };
    let mut config = Config::from_toml(&text)?;
    config.runtime.cache_dir = Some(dir.join("cache"));
    config.runtime.pooling_instances = pooling_instances;
    Ok(config)
}

fn options(args: &[&str]) -> RunOptions {
    RunOptions {
        name: "bench".into(),
        args: args.iter().map(|a| a.to_string()).collect(),
        env: Vec::new(),
        stdio: Stdio::Capture,
    }
}

/// Runs `args` on `instances` concurrent instances; every run must exit 0.
async fn concurrently(
    runtime: &Arc<Runtime>,
    prepared: &Prepared,
    args: impl Fn(usize) -> Vec<String>,
    instances: usize,
) -> wasmtime::Result<Vec<RunOutcome>> {
    let runs = (0..instances).map(|i| {
        let (runtime, prepared, args) = (runtime.clone(), prepared.clone(), args(i));
        tokio::spawn(async move {
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            runtime.run_prepared(&prepared, options(&argv)).await
        })
    });
    let mut outcomes = Vec::new();
    for joined in futures::future::join_all(runs).await {
        let outcome = joined??;
        wasmtime::ensure!(
            outcome.exit_code == 0,
            "a guest failed (exit {}): {}{}",
            outcome.exit_code,
            outcome.stdout,
            outcome.stderr
        );
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// Peak resident memory of this process while `work` runs, in bytes, by
/// sampling every 5 ms (Linux; `None` elsewhere).
async fn peak_rss<T>(work: impl Future<Output = T>) -> (T, Option<u64>) {
    let running = Arc::new(AtomicBool::new(true));
    let peak = Arc::new(AtomicU64::new(resident_bytes().unwrap_or(0)));
    let sampler = {
        let (running, peak) = (running.clone(), peak.clone());
        std::thread::spawn(move || {
            while running.load(Ordering::Relaxed) {
                if let Some(rss) = resident_bytes() {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let out = work.await;
    running.store(false, Ordering::Relaxed);
    sampler.join().expect("the sampler thread");
    let peak = peak.load(Ordering::Relaxed);
    (out, resident_bytes().map(|_| peak))
}

/// Resident memory of this process (VmRSS), Linux only.
fn resident_bytes() -> Option<u64> {
    if cfg!(target_os = "linux") {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    } else {
        None
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Cached start and instantiation time on one allocator.
async fn startup(args: &Args, pooling_instances: u32) -> wasmtime::Result<Value> {
    let dir = tempfile::tempdir()?;
    let runtime = Runtime::new(&config(args, dir.path(), pooling_instances)?)?;
    let wasm = Path::new(wasikv_artifacts::BENCH);
    let started = Instant::now();
    runtime.prepare(&runtime.load(wasm)?)?;
    let compile = started.elapsed();
    let samples = if args.quick { 5 } else { 50 };
    let mut starts = Vec::new();
    for _ in 0..samples {
        let started = Instant::now();
        let component = runtime.load(wasm)?;
        std::hint::black_box(runtime.prepare(&component)?);
        starts.push(started.elapsed());
    }
    let prepared = runtime.prepare(&runtime.load(wasm)?)?;
    let runs = if args.quick { 20 } else { 500 };
    let mut instantiations = Vec::new();
    for _ in 0..runs {
        let outcome = runtime
            .run_prepared(&prepared, options(&["memory", "get", "1"]))
            .await?;
        wasmtime::ensure!(outcome.exit_code == 0, "{}", outcome.stdout);
        instantiations.push(outcome.instantiate_time);
    }
    let allocator = if pooling_instances > 0 {
        "pooling"
    } else {
        "on-demand"
    };
    let (start, instantiate) = (median(starts), median(instantiations));
    println!(
        "| {allocator} | {:.1} ms | {:.2} ms | {:.1} us |",
        compile.as_secs_f64() * 1e3,
        start.as_secs_f64() * 1e3,
        micros(instantiate)
    );
    Ok(json!({
        "allocator": allocator,
        "first_compile_ms": compile.as_secs_f64() * 1e3,
        "cached_start_ms": start.as_secs_f64() * 1e3,
        "instantiate_us": micros(instantiate),
        "instantiations": runs,
    }))
}

/// N concurrent `get` loops per bucket on the pooling allocator.
async fn scale(args: &Args) -> wasmtime::Result<Vec<Value>> {
    let dir = tempfile::tempdir()?;
    let pool = INSTANCE_COUNTS.iter().max().copied().unwrap_or(1) as u32 * 2;
    let runtime = Arc::new(Runtime::new(&config(args, dir.path(), pool)?)?);
    let prepared = runtime.prepare(&runtime.load(Path::new(wasikv_artifacts::BENCH))?)?;
    println!("| bucket | instances | calls | calls/s (all instances) | peak RSS |");
    println!("|---|---|---|---|---|");
    let mut rows = Vec::new();
    for bucket in &args.scale {
        let local = runtime.buckets().plan(bucket).map(|p| p.provider);
        let in_process = matches!(local, Some("memory") | Some("embedded"));
        let total: usize = match (args.quick, in_process) {
            (true, _) => 640,
            (false, true) => 1_280_000,
            (false, false) => 64_000,
        };
        for instances in INSTANCE_COUNTS {
            let per_instance = (total / instances).to_string();
            let started = Instant::now();
            let (outcomes, rss) = peak_rss(concurrently(
                &runtime,
                &prepared,
                |_| {
                    [bucket.as_str(), "get", &per_instance]
                        .map(String::from)
                        .to_vec()
                },
                instances,
            ))
            .await;
            outcomes?;
            let elapsed = started.elapsed();
            let calls = total / instances * instances;
            let rate = calls as f64 / elapsed.as_secs_f64();
            let rss_mib = rss.map(|b| b as f64 / (1 << 20) as f64);
            println!(
                "| {bucket} | {instances} | {calls} | {rate:.0} | {} |",
                rss_mib.map_or("n/a".into(), |m| format!("{m:.0} MiB"))
            );
            rows.push(json!({
                "bucket": bucket,
                "instances": instances,
                "calls": calls,
                "calls_per_s": rate,
                "peak_rss_mib": rss_mib,
            }));
        }
    }
    Ok(rows)
}

/// Reads a key host-side.
async fn read(runtime: &Runtime, bucket: &str, key: &str) -> wasmtime::Result<String> {
    let open = runtime.buckets().open(None, bucket).await?;
    let value = open.get(key).await?.unwrap_or_default();
    Ok(String::from_utf8(value)?)
}

/// 8 instances incrementing one counter, then 8 CAS-append loops on one key.
async fn contention(args: &Args) -> wasmtime::Result<Vec<Value>> {
    let dir = tempfile::tempdir()?;
    let runtime = Arc::new(Runtime::new(&config(args, dir.path(), 0)?)?);
    let prepared = runtime.prepare(&runtime.load(Path::new(wasikv_artifacts::PROBE))?)?;
    let run_id = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos()
    );
    println!(
        "| bucket | provider | increments/s | final counter | CAS appends/s | swaps retried | appends kept |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut rows = Vec::new();
    let mut wrong = Vec::new();
    for bucket in &args.contend {
        let provider = runtime.buckets().plan(bucket).map_or("?", |p| p.provider);
        // Memory answers in microseconds; every other store pays a round trip
        // or, embedded, a durable commit per write.
        let (increments, appends) = match (args.quick, provider == "memory") {
            (true, _) => (20, 5),
            (false, true) => (20_000, 500),
            (false, false) => (500, 50),
        };
        let counter = format!("contend-{run_id}-counter");
        let started = Instant::now();
        concurrently(
            &runtime,
            &prepared,
            |_| {
                ["increments", bucket, &counter, &increments.to_string()]
                    .map(String::from)
                    .to_vec()
            },
            CONTENDERS,
        )
        .await?;
        let increment_rate = (CONTENDERS * increments) as f64 / started.elapsed().as_secs_f64();
        let final_counter = read(&runtime, bucket, &counter).await?;
        let expected_counter = (CONTENDERS * increments).to_string();

        let log = format!("contend-{run_id}-log");
        let started = Instant::now();
        let outcomes = concurrently(
            &runtime,
            &prepared,
            |i| {
                [
                    "appends",
                    bucket,
                    &log,
                    &format!("t{i}"),
                    &appends.to_string(),
                ]
                .map(String::from)
                .to_vec()
            },
            CONTENDERS,
        )
        .await?;
        let append_rate = (CONTENDERS * appends) as f64 / started.elapsed().as_secs_f64();
        let retried: u64 = outcomes
            .iter()
            .filter_map(|o| {
                o.stdout
                    .trim()
                    .strip_prefix("ok lost ")?
                    .parse::<u64>()
                    .ok()
            })
            .sum();
        let value = read(&runtime, bucket, &log).await?;
        let mut tokens: Vec<&str> = value.split(',').filter(|t| !t.is_empty()).collect();
        tokens.sort_unstable();
        let mut expected: Vec<String> = (0..CONTENDERS)
            .flat_map(|i| (0..appends).map(move |j| format!("t{i}-{j}")))
            .collect();
        expected.sort_unstable();
        let exact = final_counter == expected_counter && tokens == expected;
        if !exact {
            wrong.push(bucket.clone());
        }
        println!(
            "| {bucket} | {provider} | {increment_rate:.0} | {final_counter} of {expected_counter} | {append_rate:.0} | {retried} | {} of {} |",
            tokens.len(),
            expected.len()
        );
        rows.push(json!({
            "bucket": bucket,
            "provider": provider,
            "instances": CONTENDERS,
            "increments": CONTENDERS * increments,
            "increments_per_s": increment_rate,
            "final_counter": final_counter,
            "expected_counter": expected_counter,
            "cas_appends": CONTENDERS * appends,
            "cas_appends_per_s": append_rate,
            "swaps_retried": retried,
            "appends_kept": tokens.len(),
            "exact": exact,
        }));
    }
    wasmtime::ensure!(
        wrong.is_empty(),
        "lost or duplicated updates on {wrong:?}: see the table"
    );
    Ok(rows)
}

/// Writers per row of the concurrent-writers table.
const WRITER_COUNTS: [usize; 2] = [1, 8];

/// 1 and 8 instances each writing distinct keys: all instances' writes/s.
async fn writers(args: &Args) -> wasmtime::Result<Vec<Value>> {
    let dir = tempfile::tempdir()?;
    let runtime = Arc::new(Runtime::new(&config(args, dir.path(), 0)?)?);
    let prepared = runtime.prepare(&runtime.load(Path::new(wasikv_artifacts::BENCH))?)?;
    println!(
        "| bucket | provider | instances | writes | writes/s (all instances) | vs 1 instance |"
    );
    println!("|---|---|---|---|---|---|");
    let mut rows = Vec::new();
    for bucket in &args.writers {
        let provider = runtime.buckets().plan(bucket).map_or("?", |p| p.provider);
        let per_instance = match (args.quick, provider == "memory") {
            (true, _) => 20,
            (false, true) => 200_000,
            (false, false) => 2_000,
        };
        let mut single = None;
        for instances in WRITER_COUNTS {
            let run = format!("{:x}-{instances}-", rand_suffix());
            let outcomes = concurrently(
                &runtime,
                &prepared,
                |i| {
                    [
                        bucket.as_str(),
                        "set-distinct",
                        &per_instance.to_string(),
                        &format!("{run}{i}-"),
                    ]
                    .map(String::from)
                    .to_vec()
                },
                instances,
            )
            .await?;
            // Guest-timed: the longest loop, without instantiation.
            let longest = outcomes
                .iter()
                .map(|o| guest_nanos(&o.stdout))
                .collect::<wasmtime::Result<Vec<_>>>()?
                .into_iter()
                .max()
                .unwrap_or(1);
            let writes = per_instance * instances;
            let rate = writes as f64 / (longest as f64 / 1e9);
            let single_rate = *single.get_or_insert(rate);
            println!(
                "| {bucket} | {provider} | {instances} | {writes} | {rate:.0} | {:.2}x |",
                rate / single_rate
            );
            rows.push(json!({
                "bucket": bucket,
                "provider": provider,
                "instances": instances,
                "writes": writes,
                "writes_per_s": rate,
                "vs_one_instance": rate / single_rate,
            }));
        }
    }
    Ok(rows)
}

/// The nanoseconds of a bench guest's `ok OP N calls NANOS ns` line.
fn guest_nanos(stdout: &str) -> wasmtime::Result<u64> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("ok "))
        .ok_or_else(|| wasmtime::format_err!("bench guest said: {stdout}"))?;
    Ok(line.split(' ').nth(4).unwrap_or("").parse()?)
}

/// A suffix that keeps one run's keys apart from an earlier run's.
fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn main() -> wasmtime::Result<()> {
    let args = parse_args();
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    tokio.block_on(async {
        println!("## Start-up (bench guest, median)\n");
        println!("| allocator | first compile | cached start (load + prepare) | instantiate |");
        println!("|---|---|---|---|");
        let startup = vec![startup(&args, 0).await?, startup(&args, 16).await?];
        println!("\n## Scale (pooling allocator)\n");
        let scale = scale(&args).await?;
        println!("\n## Contention ({CONTENDERS} instances on one key)\n");
        let contention = contention(&args).await?;
        println!("\n## Concurrent writers (distinct keys)\n");
        let writers = writers(&args).await?;
        if let Some(path) = &args.json {
            let report = json!({
                "benchmark": "concurrency",
                "quick": args.quick,
                "startup": startup,
                "scale": scale,
                "contention": contention,
                "writers": writers,
            });
            std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")?;
        }
        Ok(())
    })
}
