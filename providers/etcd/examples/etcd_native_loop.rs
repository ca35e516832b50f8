//! The baseline for a guest's etcd calls: the same operation in a loop with
//! the same `etcd-client` the provider uses, against the same server.
//!
//! `cargo run --release -p wasikv-etcd --example etcd_native_loop -- [ENDPOINT] [N] [OP]`
//!
//! OP: `get` (Range), `set` (Put), `cas` (Range, then a Txn comparing the
//! mod revision and putting), `increment` (the same with the decimal plus
//! one: etcd has no counter), `get-many-100` (one Txn of 100 Ranges).

use std::time::Instant;

use etcd_client::{Compare, CompareOp, Txn, TxnOp};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), etcd_client::Error> {
    let mut args = std::env::args().skip(1);
    let endpoint = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:12379".into());
    let n: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5_000);
    let op = args.next().unwrap_or_else(|| "get".into());
    let client = etcd_client::Client::connect([endpoint], None).await?;
    let mut kv = client.kv_client();
    let key = "wasikv-native-loop";
    let counter = "wasikv-native-loop-counter";
    let keys: Vec<String> = (0..100)
        .map(|i| format!("wasikv-native-loop-{i}"))
        .collect();
    kv.put(key, "value", None).await?;
    kv.put(counter, "0", None).await?;
    if op == "get-many-100" {
        for k in &keys {
            kv.put(k.as_str(), "value", None).await?;
        }
    }
    let started = Instant::now();
    for _ in 0..n {
        match op.as_str() {
            "get" => {
                kv.get(key, None).await?;
            }
            "set" => {
                kv.put(key, "value", None).await?;
            }
            "cas" | "increment" => {
                let target = if op == "cas" { key } else { counter };
                let current = kv.get(target, None).await?;
                let item = &current.kvs()[0];
                let value = match op.as_str() {
                    "cas" => item.value().to_vec(),
                    _ => (std::str::from_utf8(item.value())
                        .ok()
                        .and_then(|s| s.parse::<i64>().ok())
                        .expect("a decimal counter")
                        + 1)
                    .to_string()
                    .into_bytes(),
                };
                let txn = Txn::new()
                    .when([Compare::mod_revision(
                        target,
                        CompareOp::Equal,
                        item.mod_revision(),
                    )])
                    .and_then([TxnOp::put(target, value, None)]);
                assert!(kv.txn(txn).await?.succeeded(), "a lone swap lost a race");
            }
            "get-many-100" => {
                let ops: Vec<TxnOp> = keys.iter().map(|k| TxnOp::get(k.as_str(), None)).collect();
                kv.txn(Txn::new().and_then(ops)).await?;
            }
            other => panic!("unknown op {other:?}"),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    kv.delete(key, None).await?;
    kv.delete(counter, None).await?;
    for k in &keys {
        kv.delete(k.as_str(), None).await?;
    }
    println!(
        "native etcd {op}: {n} calls in {:.1} ms: {:.0} calls/s",
        secs * 1e3,
        f64::from(n) / secs
    );
    Ok(())
}
