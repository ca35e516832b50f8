//! The baseline for a guest's PostgreSQL calls: what an application would
//! write with the same `tokio-postgres` client the provider uses (one
//! connection, prepared statements), against the same server.
//!
//! `cargo run --release -p wasikv-postgres --example postgres_native_loop -- [URL] [N] [OP]`
//!
//! OP: `get` (SELECT), `set` (INSERT ... ON CONFLICT DO UPDATE), `increment`
//! (the same on an int8 column, RETURNING it), `cas` (SELECT the version,
//! then UPDATE ... WHERE version matches), `get-many-100` (`key = ANY($1)`).
//! Its table, `wasikv_native_loop`, has a text key and no wasikv
//! bookkeeping; it is dropped at the end.

use std::time::Instant;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), tokio_postgres::Error> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into());
    let n: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5_000);
    let op = args.next().unwrap_or_else(|| "get".into());
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    client
        .batch_execute(
            "DROP TABLE IF EXISTS wasikv_native_loop; \
             CREATE TABLE wasikv_native_loop (k text PRIMARY KEY, v bytea, n int8, ver int8)",
        )
        .await?;
    let keys: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
    for k in &keys {
        client
            .execute(
                "INSERT INTO wasikv_native_loop VALUES ($1, 'value', 0, 0)",
                &[k],
            )
            .await?;
    }
    let get = client
        .prepare("SELECT v FROM wasikv_native_loop WHERE k = $1")
        .await?;
    let set = client
        .prepare(
            "INSERT INTO wasikv_native_loop (k, v) VALUES ($1, $2) \
             ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
        )
        .await?;
    let increment = client
        .prepare(
            "INSERT INTO wasikv_native_loop AS t (k, n) VALUES ($1, 1) \
             ON CONFLICT (k) DO UPDATE SET n = t.n + 1 RETURNING n",
        )
        .await?;
    let read_version = client
        .prepare("SELECT v, ver FROM wasikv_native_loop WHERE k = $1")
        .await?;
    let swap = client
        .prepare("UPDATE wasikv_native_loop SET v = $2, ver = ver + 1 WHERE k = $1 AND ver = $3")
        .await?;
    let get_many = client
        .prepare("SELECT k, v FROM wasikv_native_loop WHERE k = ANY($1)")
        .await?;
    let key = &keys[0];
    let value: &[u8] = b"value";
    let started = Instant::now();
    for _ in 0..n {
        match op.as_str() {
            "get" => {
                client.query_opt(&get, &[key]).await?;
            }
            "set" => {
                client.execute(&set, &[key, &value]).await?;
            }
            "increment" => {
                client.query_one(&increment, &[key]).await?;
            }
            "cas" => {
                let row = client.query_one(&read_version, &[key]).await?;
                let (current, version): (Vec<u8>, i64) = (row.get(0), row.get(1));
                let written = client.execute(&swap, &[key, &current, &version]).await?;
                assert_eq!(written, 1, "a lone swap lost a race");
            }
            "get-many-100" => {
                client.query(&get_many, &[&keys]).await?;
            }
            other => panic!("unknown op {other:?}"),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    client
        .batch_execute("DROP TABLE wasikv_native_loop")
        .await?;
    println!(
        "native postgres {op}: {n} calls in {:.1} ms: {:.0} calls/s",
        secs * 1e3,
        f64::from(n) / secs
    );
    Ok(())
}
