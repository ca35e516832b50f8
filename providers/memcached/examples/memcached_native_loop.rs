//! A baseline for the host's overhead: sequential gets (or sets) with the
//! provider's own memcached client, against the same server.
//!
//! `cargo run --release -p wasikv-memcached --example memcached_native_loop -- [ADDRESS] [N] [get|set]`

use std::time::{Duration, Instant};

use wasikv_memcached::core::{MemcachedStore, StoreCommand};

#[tokio::main(flavor = "current_thread")]
async fn main() -> wasikv_core::Result<()> {
    let mut args = std::env::args().skip(1);
    let address = args.next().unwrap_or_else(|| "127.0.0.1:12211".into());
    let n: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let op = args.next().unwrap_or_else(|| "get".into());
    let store = MemcachedStore::connect(&address, 1, Duration::from_secs(5)).await?;
    let key = vec!["wasikv-native-loop".to_string()];
    store.store(StoreCommand::Set, &key[0], 0, b"value").await?;
    let started = Instant::now();
    for _ in 0..n {
        match op.as_str() {
            "set" => {
                store.store(StoreCommand::Set, &key[0], 0, b"value").await?;
            }
            _ => {
                store.gets(&key).await?;
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    store.delete_many(&key).await?;
    println!(
        "native memcached {op}: {n} calls in {:.1} ms: {:.0} calls/s",
        secs * 1e3,
        f64::from(n) / secs
    );
    Ok(())
}
