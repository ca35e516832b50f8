//! A baseline for the host's overhead: sequential GETs (or PUTs) with the
//! same `etcd-client` the provider uses, against the same server.
//!
//! `cargo run --release -p wasikv-etcd --example etcd_native_loop -- [ENDPOINT] [N] [get|set]`

use std::time::Instant;

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
    kv.put(key, "value", None).await?;
    let started = Instant::now();
    for _ in 0..n {
        match op.as_str() {
            "set" => {
                kv.put(key, "value", None).await?;
            }
            _ => {
                kv.get(key, None).await?;
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    kv.delete(key, None).await?;
    println!(
        "native etcd {op}: {n} calls in {:.1} ms: {:.0} calls/s",
        secs * 1e3,
        f64::from(n) / secs
    );
    Ok(())
}
