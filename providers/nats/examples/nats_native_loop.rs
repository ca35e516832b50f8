//! The baseline for a guest's NATS calls: what an application would write
//! with the same `async-nats` client the provider uses, against the same
//! server and KV bucket.
//!
//! `cargo run --release -p wasikv-nats --example nats_native_loop -- [URL] [N] [OP]`
//!
//! OP: `get` (`entry`), `set` (`put`), `cas` (`entry`, then `update` with
//! its revision), `increment` (the same with the decimal plus one: NATS
//! has no counter), `get-many-100` (100 `get`s at once: NATS has no
//! multi-get). Keys live in the KV bucket `wasikv_native_loop` (created
//! when missing).

use std::time::Instant;

use async_nats::jetstream;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "nats://127.0.0.1:4222".into());
    let n: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5_000);
    let op = args.next().unwrap_or_else(|| "get".into());
    let client = async_nats::connect(url).await?;
    let js = jetstream::new(client);
    let kv = match js.get_key_value("wasikv_native_loop").await {
        Ok(kv) => kv,
        Err(_) => {
            // The KV convention's stream (see wasikv_nats::core: NATS 2.9
            // cannot take async-nats's create_key_value).
            js.create_stream(jetstream::stream::Config {
                name: "KV_wasikv_native_loop".into(),
                subjects: vec!["$KV.wasikv_native_loop.>".into()],
                max_messages_per_subject: 1,
                allow_rollup: true,
                deny_delete: true,
                allow_direct: true,
                discard: jetstream::stream::DiscardPolicy::New,
                ..Default::default()
            })
            .await?;
            js.get_key_value("wasikv_native_loop").await?
        }
    };
    let keys: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
    for k in &keys {
        kv.put(k, "value".into()).await?;
    }
    kv.put("counter", "0".into()).await?;
    let started = Instant::now();
    for _ in 0..n {
        match op.as_str() {
            "get" => {
                kv.entry("k0").await?;
            }
            "set" => {
                kv.put("k0", "value".into()).await?;
            }
            "cas" | "increment" => {
                let target = if op == "cas" { "k0" } else { "counter" };
                let entry = kv.entry(target).await?.expect("present");
                let value = match op.as_str() {
                    "cas" => entry.value.clone(),
                    _ => (std::str::from_utf8(&entry.value)?.parse::<i64>()? + 1)
                        .to_string()
                        .into(),
                };
                kv.update(target, value, entry.revision).await?;
            }
            "get-many-100" => {
                futures::future::try_join_all(keys.iter().map(|k| kv.get(k))).await?;
            }
            other => panic!("unknown op {other:?}"),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "native nats {op}: {n} calls in {:.1} ms: {:.0} calls/s",
        secs * 1e3,
        f64::from(n) / secs
    );
    Ok(())
}
