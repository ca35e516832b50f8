//! Many hosts on one store: N = 1, 2, 4 `wasikv serve` processes of the
//! `http-kv` example, each driven by 8 concurrent request loops that
//! increment a counter of their own (every request a fresh guest instance; the keys spread over a cluster's shards), on
//! a Redis Cluster bucket, a bucket over the 3-member etcd cluster and a
//! DynamoDB (moto) bucket. Reports acknowledged increments/s per process
//! count, with 1 process as the baseline of the same run, and checks that
//! each counter is exact (a wrong counter or a failed request exits
//! non-zero).
//!
//! ```sh
//! WASIKV_BIN=target/release/wasikv \
//!   cargo run --release -p wasikv-host --all-features --example many_hosts -- [--quick] [--json FILE]
//! ```
//! The stores are the test servers `scripts/services.sh` starts;
//! `scripts/bench.sh` runs it as part 7. On a 2-core machine the hosts, the
//! load loops and the servers share the cores: the figures show what one
//! machine sustains, not how a store scales across machines.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use support::fleet::{Load, drive, start_hosts, verify};
use support::served::Served;

const PROCESS_COUNTS: [usize; 3] = [1, 2, 4];
const LOOPS_PER_HOST: usize = 8;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let json_out = args
        .iter()
        .position(|a| a == "--json")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let seconds = if quick { 1 } else { 10 };
    let run_id = format!("{:08x}", rand::random::<u32>());
    let (buckets, _) = support::networked_buckets(&run_id);
    println!(
        "| store | {} | {} processes vs 1 |",
        PROCESS_COUNTS
            .map(|n| format!("{n} x {LOOPS_PER_HOST} loops: increments/s"))
            .join(" | "),
        PROCESS_COUNTS[PROCESS_COUNTS.len() - 1]
    );
    println!("|---|{}---|", "---|".repeat(PROCESS_COUNTS.len()));
    let mut rows = Vec::new();
    for bucket in ["redis-cluster", "etcd-cluster", "dynamodb"] {
        let mut rates = Vec::new();
        for processes in PROCESS_COUNTS {
            let dir = tempfile::tempdir().unwrap();
            let hosts = start_hosts(dir.path(), processes, &buckets, bucket);
            let load = Load {
                counter: format!("bench-{run_id}-{processes}"),
                list: "bench-list".into(),
                counter_per_loop: true,
                loops_per_host: LOOPS_PER_HOST,
                steps: 0,
                append_every: 0,
            };
            let stop = Arc::new(AtomicBool::new(false));
            let refs: Vec<&Served> = hosts.iter().collect();
            let (tally, ()) = tokio::join!(drive(&refs, &load, stop.clone()), async {
                tokio::time::sleep(Duration::from_secs(seconds)).await;
                stop.store(true, Ordering::Relaxed);
            });
            let counter = verify(&hosts[0], &load, &tally).await;
            if tally.increments_failed > 0 || counter != tally.increments_ok {
                eprintln!(
                    "many_hosts: {bucket} with {processes} processes: {} failed, counter {counter} vs {} acknowledged: {:?}",
                    tally.increments_failed, tally.increments_ok, tally.samples
                );
                std::process::exit(1);
            }
            rates.push(tally.increments_per_second());
        }
        let last = rates[rates.len() - 1] / rates[0];
        println!(
            "| {bucket} | {} | {last:.2}x |",
            rates
                .iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        rows.push(json!({
            "store": bucket,
            "loops_per_process": LOOPS_PER_HOST,
            "processes": PROCESS_COUNTS,
            "increments_per_s": rates,
            "ratio_last_vs_1": last,
        }));
    }
    println!(
        "({seconds} s per point; every counter checked exact; hosts, load and servers share this machine's cores)"
    );
    if let Some(path) = json_out {
        std::fs::write(path, serde_json::to_string_pretty(&rows).unwrap()).unwrap();
    }
}
