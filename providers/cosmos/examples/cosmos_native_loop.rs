//! A baseline for the host's overhead: sequential point reads or upserts
//! with the same SDK client the provider builds, against the same server
//! (default: the fixture of `scripts/services.sh`).
//!
//! `cargo run --release -p wasikv-cosmos --example cosmos_native_loop -- [ENDPOINT] [N] [get|set]`

use std::time::Instant;

use wasikv_cosmos::core::{CosmosStore, Item, StoredValue, write_token};
use wasikv_cosmos::testing::{SHARED_CONTAINER, TEST_DATABASE, test_config};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut config = test_config(SHARED_CONTAINER, None);
    if let Some(endpoint) = args.next() {
        config.endpoint = endpoint;
    }
    let n: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1_000);
    let op = args.next().unwrap_or_else(|| "get".into());
    let store = CosmosStore::connect(&config).await?;
    let container = store
        .container(TEST_DATABASE, SHARED_CONTAINER, true)
        .await?;
    let id = "wasikv-native-loop";
    let item = Item {
        id: id.into(),
        pk: id.into(),
        v: StoredValue::bytes(b"value"),
        k: None,
        w: write_token(),
        e: None,
        ttl: None,
    };
    container
        .upsert_item(id.to_string(), id, &item, None)
        .await?;
    let started = Instant::now();
    for _ in 0..n {
        match op.as_str() {
            "set" => {
                container
                    .upsert_item(id.to_string(), id, &item, None)
                    .await?;
            }
            _ => {
                let _: Item = container
                    .read_item(id.to_string(), id, None)
                    .await?
                    .into_model()?;
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    container.delete_item(id.to_string(), id, None).await?;
    println!(
        "native cosmos {op}: {n} calls in {:.1} ms: {:.0} calls/s",
        secs * 1e3,
        f64::from(n) / secs
    );
    Ok(())
}
