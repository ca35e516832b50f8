//! A baseline for the host's overhead: sequential `GetItem`s (consistent) or
//! `PutItem`s with the same SDK client the provider builds, against the same
//! server (default: the moto server of `scripts/services.sh`).
//!
//! `cargo run --release -p wasikv-dynamodb --example dynamodb_native_loop -- [ENDPOINT] [N] [get|set]`

use std::time::Instant;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use wasikv_dynamodb::testing::{TEST_TABLE, test_config};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut config = test_config(TEST_TABLE, "");
    if let Some(endpoint) = args.next() {
        config.endpoint = Some(endpoint);
    }
    let n: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1_000);
    let op = args.next().unwrap_or_else(|| "get".into());
    let store = wasikv_dynamodb::core::DynamoStore::connect(&config).await?;
    store.ensure_table(TEST_TABLE, "pk", true).await?;
    let client = &store.client;
    let key = AttributeValue::S("wasikv-native-loop".into());
    let put = || {
        client
            .put_item()
            .table_name(TEST_TABLE)
            .item("pk", key.clone())
            .item("v", AttributeValue::B(Blob::new(&b"value"[..])))
            .item(
                "ver",
                AttributeValue::S(format!("{:016x}", rand::random::<u64>())),
            )
            .send()
    };
    put().await?;
    let started = Instant::now();
    for _ in 0..n {
        match op.as_str() {
            "set" => {
                put().await?;
            }
            _ => {
                client
                    .get_item()
                    .table_name(TEST_TABLE)
                    .key("pk", key.clone())
                    .consistent_read(true)
                    .send()
                    .await?;
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    client
        .delete_item()
        .table_name(TEST_TABLE)
        .key("pk", key)
        .send()
        .await?;
    println!(
        "native dynamodb {op}: {n} calls in {:.1} ms: {:.0} calls/s",
        secs * 1e3,
        f64::from(n) / secs
    );
    Ok(())
}
