//! DynamoDB expiry specifics, against the moto server of
//! `scripts/services.sh`: a bucket with a ttl needs the table's TTL on
//! `exp` (turned on with `create_table`, refused naming the command
//! without it, refused when it is on another attribute); items carry `exp`
//! as whole seconds at least the ttl ahead; and an item past its `exp` is
//! absent for every bucket, whoever wrote it.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::{AttributeValue, TimeToLiveSpecification};
use wasikv_core::{Bucket, ErrorKind, WriteCondition};
use wasikv_dynamodb::DynamoProvider;
use wasikv_dynamodb::core::EXPIRES;
use wasikv_dynamodb::testing::{MOTO_MAX_ITEM_BYTES, TEST_TABLE, test_endpoint, test_store};

fn options(table: &str, prefix: &str, ttl: Option<&str>, create: bool) -> serde_json::Value {
    let mut o = serde_json::json!({
        "table": table,
        "prefix": prefix,
        "create_table": create,
        "region": "us-east-1",
        "endpoint": test_endpoint(),
        "access_key_id": "test",
        "secret_access_key": "test",
        "max_item_bytes": MOTO_MAX_ITEM_BYTES,
    });
    if let Some(ttl) = ttl {
        o["ttl"] = ttl.into();
    }
    o
}

async fn open(options: serde_json::Value) -> wasikv_core::Result<Arc<dyn Bucket>> {
    wasikv_core::suite::plans::open(&DynamoProvider, "sessions", options).await
}

/// The item with partition key `id` in the test table, as stored.
async fn raw_item(
    store: &wasikv_dynamodb::core::DynamoStore,
    id: &str,
) -> std::collections::HashMap<String, AttributeValue> {
    store
        .client
        .get_item()
        .table_name(TEST_TABLE)
        .key("pk", AttributeValue::S(id.to_string()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn a_ttl_needs_the_tables_ttl_on_exp() {
    let store = test_store().await.unwrap();
    let table = format!("wasikv-ttl-{:08x}", rand::random::<u32>());
    // A table wasikv made (for a bucket without a ttl): its TTL is off.
    open(options(&table, "", None, true)).await.unwrap();
    let err = open(options(&table, "", Some("1h"), false))
        .await
        .err()
        .expect("a ttl on a table whose TTL is off");
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&table)
            && text.contains("update-time-to-live")
            && text.contains("create_table"),
        "{text}"
    );
    open(options(&table, "", Some("1h"), true)).await.unwrap();
    let described = store
        .client
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .time_to_live_description
        .unwrap();
    assert_eq!(described.attribute_name.as_deref(), Some(EXPIRES));
    // Opening again finds it on.
    open(options(&table, "", Some("1h"), false)).await.unwrap();
    store
        .client
        .delete_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();

    // A table whose TTL is on another attribute cannot serve a ttl.
    let other = format!("wasikv-ttl-other-{:08x}", rand::random::<u32>());
    open(options(&other, "", None, true)).await.unwrap();
    store
        .client
        .update_time_to_live()
        .table_name(&other)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("expires_at")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let err = open(options(&other, "", Some("1h"), true))
        .await
        .err()
        .expect("TTL on another attribute");
    store
        .client
        .delete_table()
        .table_name(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
    assert!(err.to_string().contains("\"expires_at\""), "{err}");
}

#[tokio::test]
async fn items_carry_whole_seconds_and_expire_for_every_bucket() {
    let store = test_store().await.unwrap();
    let prefix = format!("ttl-{:08x}/", rand::random::<u32>());
    let expiring = open(options(TEST_TABLE, &prefix, Some("1h"), true))
        .await
        .unwrap();
    let before = now();
    expiring
        .set("k", b"v".to_vec(), WriteCondition::Always)
        .await
        .unwrap();
    let item = raw_item(&store, &format!("{prefix}k")).await;
    let exp: u64 = item[EXPIRES].as_n().unwrap().parse().unwrap();
    assert!(
        exp >= before + 3_600 && exp <= now() + 3_601,
        "exp {exp}, written at {before}"
    );

    // A bucket without a ttl on the same keys still treats an item past
    // its exp (here written by another client) as absent, and a create
    // over it succeeds.
    let plain = open(options(TEST_TABLE, &prefix, None, true))
        .await
        .unwrap();
    store
        .client
        .put_item()
        .table_name(TEST_TABLE)
        .item("pk", AttributeValue::S(format!("{prefix}old")))
        .item("v", AttributeValue::B(b"stale".to_vec().into()))
        .item("ver", AttributeValue::S("foreign".into()))
        .item(EXPIRES, AttributeValue::N((now() - 10).to_string()))
        .send()
        .await
        .unwrap();
    wasikv_core::suite::assert_expired_key_is_absent(&*plain, "old", &["k"]).await;
    // Written without a ttl: no exp any more.
    let item = raw_item(&store, &format!("{prefix}old")).await;
    assert!(!item.contains_key(EXPIRES), "{item:?}");
    wasikv_core::suite::cleanup(&*plain).await;
}
