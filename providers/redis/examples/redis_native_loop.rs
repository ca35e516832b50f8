//! The baseline for a guest's Redis calls: the same operation in a loop with
//! the same `redis` client the provider uses, against the same server.
//!
//! `cargo run --release -p wasikv-redis --example redis_native_loop -- [URL] [N] [OP]`
//!
//! OP: `get` (GET), `set` (SET), `increment` (INCRBY), `cas` (WATCH, GET,
//! then MULTI/SET/EXEC: Redis's own optimistic transaction), `get-many-100`
//! (one MGET of 100 keys). Two more take wasikv's unconditional `set`
//! apart, for the benchmarks' breakdown: `set-transaction` (the
//! MULTI/SET/HSET/ZADD/PUBLISH/EXEC pipeline the provider sends) and
//! `set-script` (the same write as its SET script, by EVALSHA).

use std::time::Instant;

#[tokio::main(flavor = "current_thread")]
async fn main() -> redis::RedisResult<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "redis://127.0.0.1:6379/0".into());
    let n: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let op = args.next().unwrap_or_else(|| "get".into());
    let client = redis::Client::open(url)?;
    let mut conn = redis::aio::ConnectionManager::new(client.clone()).await?;
    // WATCH belongs to a connection: the CAS loop has one of its own.
    let mut dedicated = client.get_multiplexed_async_connection().await?;
    let key = "wasikv-native-loop";
    let keys: Vec<String> = (0..100)
        .map(|i| format!("wasikv-native-loop-{i}"))
        .collect();
    redis::cmd("SET")
        .arg(key)
        .arg("value")
        .query_async::<()>(&mut conn)
        .await?;
    if op == "get-many-100" {
        let mut mset = redis::cmd("MSET");
        for k in &keys {
            mset.arg(k).arg("value");
        }
        mset.query_async::<()>(&mut conn).await?;
    }
    let set_script = redis::Script::new(wasikv_redis::core::SET);
    let started = Instant::now();
    for _ in 0..n {
        match op.as_str() {
            "get" => {
                let _: Option<Vec<u8>> = redis::cmd("GET").arg(key).query_async(&mut conn).await?;
            }
            "set" => {
                redis::cmd("SET")
                    .arg(key)
                    .arg("value")
                    .query_async::<()>(&mut conn)
                    .await?
            }
            "set-transaction" => {
                let change = [format!("s{}:{key}", key.len()).as_bytes(), b"value"].concat();
                redis::pipe()
                    .atomic()
                    .set(key, "value")
                    .ignore()
                    .hset(
                        "wasikv-native-loop-versions",
                        key,
                        "0123456789abcdef0123456789abcdef",
                    )
                    .ignore()
                    .zadd("wasikv-native-loop-index", key, 0)
                    .ignore()
                    .publish("wasikv-native-loop-versions", change)
                    .ignore()
                    .query_async::<()>(&mut conn)
                    .await?
            }
            "set-script" => {
                set_script
                    .key(key)
                    .key("wasikv-native-loop-versions")
                    .key("wasikv-native-loop-index")
                    .arg(key)
                    .arg("value")
                    .arg("0123456789abcdef0123456789abcdef")
                    .invoke_async::<i64>(&mut conn)
                    .await?;
            }
            "increment" => {
                let _: i64 = redis::cmd("INCRBY")
                    .arg("wasikv-native-loop-counter")
                    .arg(1)
                    .query_async(&mut conn)
                    .await?;
            }
            "cas" => {
                redis::cmd("WATCH")
                    .arg(key)
                    .query_async::<()>(&mut dedicated)
                    .await?;
                let current: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(key)
                    .query_async(&mut dedicated)
                    .await?;
                let swapped: Option<((),)> = redis::pipe()
                    .atomic()
                    .set(key, current.unwrap_or_default())
                    .query_async(&mut dedicated)
                    .await?;
                assert!(swapped.is_some(), "a lone swap lost a race");
            }
            "get-many-100" => {
                let values: Vec<Option<Vec<u8>>> =
                    redis::cmd("MGET").arg(&keys).query_async(&mut conn).await?;
                assert!(values.iter().all(Option::is_some));
            }
            other => panic!("unknown op {other:?}"),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    redis::cmd("DEL")
        .arg(key)
        .arg("wasikv-native-loop-counter")
        .arg("wasikv-native-loop-versions")
        .arg("wasikv-native-loop-index")
        .arg(&keys)
        .query_async::<()>(&mut conn)
        .await?;
    println!(
        "native redis {op}: {n} calls in {:.1} ms: {:.0} calls/s",
        secs * 1e3,
        f64::from(n) / secs
    );
    Ok(())
}
