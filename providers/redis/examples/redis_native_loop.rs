//! A baseline for the host's overhead: sequential GETs (or SETs) with the
//! same `redis` client the provider uses, against the same server.
//!
//! `cargo run --release -p wasikv-redis --example redis_native_loop -- [URL] [N] [get|set]`

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
    let mut conn = redis::aio::ConnectionManager::new(client).await?;
    let key = "wasikv-native-loop";
    redis::cmd("SET")
        .arg(key)
        .arg("value")
        .query_async::<()>(&mut conn)
        .await?;
    let started = Instant::now();
    for _ in 0..n {
        match op.as_str() {
            "set" => {
                redis::cmd("SET")
                    .arg(key)
                    .arg("value")
                    .query_async::<()>(&mut conn)
                    .await?
            }
            _ => {
                let _: Option<Vec<u8>> = redis::cmd("GET").arg(key).query_async(&mut conn).await?;
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    redis::cmd("DEL")
        .arg(key)
        .query_async::<()>(&mut conn)
        .await?;
    println!(
        "native redis {op}: {n} calls in {:.1} ms: {:.0} calls/s",
        secs * 1e3,
        f64::from(n) / secs
    );
    Ok(())
}
