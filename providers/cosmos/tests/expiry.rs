//! Cosmos DB expiry specifics against the fixture (`scripts/services.sh`):
//! a bucket with a ttl needs the container's time to live on (turned on
//! with `create`, refused naming the setting without it); items carry
//! their expiry and a Cosmos `ttl` no shorter than the bucket's; an item
//! past its expiry is absent for every bucket and a create replaces it.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use azure_data_cosmos::models::{ContainerProperties, TimeToLive};
use wasikv_core::{Bucket, ErrorKind, WriteCondition};
use wasikv_cosmos::CosmosProvider;
use wasikv_cosmos::testing::{TEST_DATABASE, TEST_KEY, test_endpoint, test_store};

fn options(container: &str, ttl: Option<&str>, create: bool) -> serde_json::Value {
    let mut o = serde_json::json!({
        "endpoint": test_endpoint(),
        "key": TEST_KEY,
        "database": TEST_DATABASE,
        "container": container,
        "create": create,
        "region": "East US",
    });
    if let Some(ttl) = ttl {
        o["ttl"] = ttl.into();
    }
    o
}

async fn open(options: serde_json::Value) -> wasikv_core::Result<Arc<dyn Bucket>> {
    wasikv_core::suite::plans::open(&CosmosProvider, "sessions", options).await
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn a_ttl_needs_the_containers_time_to_live_on() {
    let store = test_store().await.expect("fixture reachable");
    let name = format!("ttl-{:08x}", rand::random::<u32>());
    // A container made by someone else, time to live off.
    let database = store.client.database_client(TEST_DATABASE);
    store
        .container(TEST_DATABASE, "shared", true)
        .await
        .expect("the test database");
    database
        .create_container(ContainerProperties::new(name.clone(), "/pk".into()), None)
        .await
        .expect("create container");
    let err = open(options(&name, Some("1h"), false))
        .await
        .err()
        .expect("a ttl on a container with time to live off");
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
    assert!(
        err.to_string().contains(&name) && err.to_string().contains("create = true"),
        "{err}"
    );
    open(options(&name, Some("1h"), true)).await.unwrap();
    let client = database.container_client(&name, None).await.unwrap();
    let properties: ContainerProperties = client.read(None).await.unwrap().into_model().unwrap();
    assert_eq!(properties.default_ttl, TimeToLive::NoDefault);
    open(options(&name, Some("1h"), false)).await.unwrap();
    client.delete(None).await.unwrap();
}

#[tokio::test]
async fn items_carry_their_expiry_and_expired_ones_are_absent_for_every_bucket() {
    let name = format!("ttl-items-{:08x}", rand::random::<u32>());
    let expiring = open(options(&name, Some("90s"), true)).await.unwrap();
    let before = now_ms();
    expiring
        .set("k", b"v".to_vec(), WriteCondition::Always)
        .await
        .unwrap();
    let store = test_store().await.unwrap();
    let client = store.container(TEST_DATABASE, &name, false).await.unwrap();
    let raw: serde_json::Value = client
        .read_item("k".to_string(), "k", None)
        .await
        .unwrap()
        .into_model()
        .unwrap();
    let e = raw["e"].as_u64().unwrap();
    assert!(e >= before + 90_000 && e <= now_ms() + 90_000, "{raw}");
    // Cosmos DB counts whole seconds from its own write time: rounded up, plus one.
    assert_eq!(raw["ttl"], 91, "{raw}");

    // An item past its expiry that Cosmos DB has not deleted (here written
    // by another client) is absent for a bucket without a ttl too, and a
    // create replaces it.
    let plain = open(options(&name, None, false)).await.unwrap();
    let stale = serde_json::json!({
        "id": "old", "pk": "old", "v": "c3RhbGU=", "w": "foreign", "e": now_ms() - 1_000,
    });
    client
        .upsert_item("old".to_string(), "old", &stale, None)
        .await
        .unwrap();
    wasikv_core::suite::assert_expired_key_is_absent(&*plain, "old", &["k"]).await;
    client.delete(None).await.unwrap();
}
