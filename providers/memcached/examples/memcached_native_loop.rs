//! The baseline for a guest's memcached calls: the same operation in a loop
//! with the provider's own memcached client, against the same server.
//!
//! `cargo run --release -p wasikv-memcached --example memcached_native_loop -- [ADDRESS] [N] [OP]`
//!
//! OP: `get` (gets), `set`, `cas` (gets, then cas with its unique),
//! `increment` (gets, add one to the decimal, cas: memcached's `incr` has
//! other semantics, so the provider counts this way too), `get-many-100`
//! (one gets of 100 keys).

use std::time::{Duration, Instant};

use wasikv_memcached::core::{MemcachedStore, StoreCommand, Stored};

#[tokio::main(flavor = "current_thread")]
async fn main() -> wasikv_core::Result<()> {
    let mut args = std::env::args().skip(1);
    let address = args.next().unwrap_or_else(|| "127.0.0.1:12211".into());
    let n: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let op = args.next().unwrap_or_else(|| "get".into());
    let store = MemcachedStore::connect(&address, 1, Duration::from_secs(5)).await?;
    let key = vec!["wasikv-native-loop".to_string()];
    let counter = "wasikv-native-loop-counter";
    let keys: Vec<String> = (0..100)
        .map(|i| format!("wasikv-native-loop-{i}"))
        .collect();
    store
        .store(StoreCommand::Set, &key[0], 0, b"value", 0)
        .await?;
    store.store(StoreCommand::Set, counter, 0, b"0", 0).await?;
    if op == "get-many-100" {
        for k in &keys {
            store.store(StoreCommand::Set, k, 0, b"value", 0).await?;
        }
    }
    let started = Instant::now();
    for _ in 0..n {
        match op.as_str() {
            "get" => {
                store.gets(&key).await?;
            }
            "set" => {
                store
                    .store(StoreCommand::Set, &key[0], 0, b"value", 0)
                    .await?;
            }
            "cas" => {
                let items = store.gets(&key).await?;
                let item = &items[&key[0]];
                let stored = store
                    .store(
                        StoreCommand::Cas {
                            unique: item.cas,
                            instance: item.instance,
                        },
                        &key[0],
                        0,
                        &item.data,
                        0,
                    )
                    .await?;
                assert!(matches!(stored, Stored::Stored), "a lone swap lost a race");
            }
            "increment" => {
                let items = store.gets(&[counter.to_string()]).await?;
                let item = &items[counter];
                let next = std::str::from_utf8(&item.data)
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok())
                    .expect("a decimal counter")
                    + 1;
                let stored = store
                    .store(
                        StoreCommand::Cas {
                            unique: item.cas,
                            instance: item.instance,
                        },
                        counter,
                        0,
                        next.to_string().as_bytes(),
                        0,
                    )
                    .await?;
                assert!(matches!(stored, Stored::Stored), "a lone swap lost a race");
            }
            "get-many-100" => {
                assert_eq!(store.gets(&keys).await?.len(), keys.len());
            }
            other => panic!("unknown op {other:?}"),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    store.delete_many(&key).await?;
    store.delete_many(&[counter.to_string()]).await?;
    store.delete_many(&keys).await?;
    println!(
        "native memcached {op}: {n} calls in {:.1} ms: {:.0} calls/s",
        secs * 1e3,
        f64::from(n) / secs
    );
    Ok(())
}
