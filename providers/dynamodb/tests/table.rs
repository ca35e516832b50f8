//! Table handling and the item layout, against the moto server of
//! `scripts/services.sh`: a missing table is `no-such-store` unless
//! `create_table` is set, a table with another key schema is refused, and
//! counters are DynamoDB numbers that other clients can read.

use std::sync::Arc;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use wasikv_core::{BucketPlan, ErrorKind, Options, Provider, WriteCondition};
use wasikv_dynamodb::DynamoProvider;
use wasikv_dynamodb::testing::{MOTO_MAX_ITEM_BYTES, test_endpoint, test_store};

fn table_name(what: &str) -> String {
    format!("wasikv-{what}-{:08x}", rand::random::<u32>())
}

fn plan(table: &str, create: bool) -> BucketPlan {
    let options = Options::from_json(serde_json::json!({
        "table": table,
        "create_table": create,
        "region": "us-east-1",
        "endpoint": test_endpoint(),
        "access_key_id": "test",
        "secret_access_key": "test",
        "max_item_bytes": MOTO_MAX_ITEM_BYTES,
    }))
    .unwrap();
    DynamoProvider.plan("things", &options).expect("valid plan")
}

async fn drop_table(table: &str) {
    let store = test_store().await.unwrap();
    store
        .client
        .delete_table()
        .table_name(table)
        .send()
        .await
        .unwrap();
}

async fn open(plan: &BucketPlan) -> wasikv_core::Result<Arc<dyn wasikv_core::Bucket>> {
    DynamoProvider.connect(plan).await?.open_bucket(plan).await
}

#[tokio::test]
async fn missing_table_is_no_such_store_naming_it() {
    let table = table_name("missing");
    let err = open(&plan(&table, false)).await.err().expect("no table");
    assert_eq!(err.kind(), ErrorKind::NoSuchStore, "{err}");
    assert!(err.to_string().contains(&table), "{err}");
    assert!(err.to_string().contains("create_table"), "{err}");
}

#[tokio::test]
async fn create_table_makes_a_table_the_bucket_owns() {
    let table = table_name("created");
    let bucket = open(&plan(&table, true)).await.expect("created");
    bucket
        .set("k", b"v".to_vec(), WriteCondition::Always)
        .await
        .unwrap();
    // Opening again finds the table (and its data) instead of creating it.
    let again = open(&plan(&table, false)).await.expect("exists now");
    assert_eq!(again.get("k").await.unwrap(), Some(b"v".to_vec()));
    let page = again.list(None, 10).await.unwrap();
    assert_eq!(page.keys, vec!["k".to_string()]);
    drop_table(&table).await;
}

#[tokio::test]
async fn a_table_with_another_key_schema_is_refused() {
    let table = table_name("schema");
    let store = test_store().await.unwrap();
    store
        .client
        .create_table()
        .table_name(&table)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    let err = open(&plan(&table, true)).await.err().expect("wrong schema");
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
    assert!(err.to_string().contains("key_attribute"), "{err}");
    drop_table(&table).await;
}

/// Numbers in the counter attribute (counters of earlier wasikv versions,
/// or written by other clients) read as DynamoDB's decimal text, 1.5
/// included; `increment` is the host's CAS loop (a native ADD would add to
/// 1.5 too), so the provider declares it unsupported.
#[tokio::test]
async fn numbers_from_other_clients_read_as_their_text() {
    let table = table_name("numbers");
    let bucket = open(&plan(&table, true)).await.unwrap();
    let store = test_store().await.unwrap();
    for (id, n) in [("int", "42"), ("neg", "-8"), ("float", "1.5")] {
        store
            .client
            .put_item()
            .table_name(&table)
            .item("pk", AttributeValue::S(id.into()))
            .item("n", AttributeValue::N(n.into()))
            .send()
            .await
            .unwrap();
        assert_eq!(bucket.get(id).await.unwrap(), Some(n.as_bytes().to_vec()));
    }
    assert!(!bucket.capabilities().increment.is_available());
    assert_eq!(
        bucket.increment("int", 1).await.unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    drop_table(&table).await;
}

/// Writes are batched by 25 (BatchWriteItem's limit), reads by 100, as
/// declared: the host chunks, the provider refuses more.
#[tokio::test]
async fn write_batches_are_declared_at_dynamodbs_limit() {
    let table = table_name("batches");
    let bucket = open(&plan(&table, true)).await.unwrap();
    let caps = bucket.capabilities();
    assert_eq!(caps.max_batch_items, Some(100));
    assert_eq!(caps.write_batch_limit(), Some(25));
    let items: Vec<(String, Vec<u8>)> = (0..26).map(|i| (format!("k{i}"), b"v".to_vec())).collect();
    let e = bucket.set_many(items.clone()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooLarge, "{e}");
    bucket.set_many(items[..25].to_vec()).await.unwrap();
    let keys: Vec<String> = items.iter().map(|(k, _)| k.clone()).collect();
    let got = bucket.get_many(&keys[..25]).await.unwrap();
    assert!(got.iter().all(Option::is_some));
    drop_table(&table).await;
}

#[test]
fn plans_refuse_bad_options_naming_the_bucket() {
    let bad = [
        (
            serde_json::json!({"table": "a"}),
            "not a DynamoDB table name",
        ),
        (
            serde_json::json!({"table": "tbl", "key_attribute": "v"}),
            "wasikv's attributes",
        ),
        (
            serde_json::json!({"table": "tbl", "access_key_id": "x"}),
            "go together",
        ),
        (
            serde_json::json!({"table": "tbl", "max_item_bytes": 500000}),
            "max_item_bytes",
        ),
        (serde_json::json!({"table": "tbl", "tabel": "x"}), "tabel"),
    ];
    wasikv_core::suite::plans::assert_plans_refused(&DynamoProvider, &bad);
}

#[test]
fn buckets_sharing_a_table_overlap_only_by_prefix() {
    let plan = |table: &str, prefix: &str| {
        DynamoProvider
            .plan(
                "b",
                &Options::from_json(serde_json::json!({"table": table, "prefix": prefix})).unwrap(),
            )
            .unwrap()
            .namespace
    };
    assert!(plan("tbl", "").overlaps(&plan("tbl", "x/")));
    assert!(!plan("tbl", "a/").overlaps(&plan("tbl", "b/")));
    assert!(!plan("tbl", "").overlaps(&plan("tbl2", "")));
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let config: wasikv_dynamodb::DynamoConfig = serde_json::from_value(serde_json::json!({
        "table": "tbl", "access_key_id": "AKIDEXAMPLE",
        "secret_access_key": "wJalrXUtnFEMI", "session_token": "FwoGZXIvYXdz",
    }))
    .unwrap();
    let shown = format!("{config:?}");
    assert!(
        !shown.contains("wJalrXUtnFEMI") && !shown.contains("FwoGZXIvYXdz"),
        "{shown}"
    );
}

/// The SDK re-sends a request whose reply was lost. A conditional write
/// whose first attempt was applied then fails its condition against its own
/// write: replaying the identical request (same version token) must report
/// it written, while a different writer with the same stale condition fails.
#[tokio::test]
async fn a_replayed_conditional_write_that_was_applied_reports_written() {
    use wasikv_core::{Bucket, Version, WriteOutcome};
    let store = test_store().await.expect("moto reachable");
    store
        .ensure_table(wasikv_dynamodb::testing::TEST_TABLE, "pk", true)
        .await
        .unwrap();
    let bucket = wasikv_dynamodb::DynamoBucket::new(
        store.client.clone(),
        wasikv_dynamodb::testing::TEST_TABLE,
        "pk",
        &format!("{}/", table_name("replay")),
        MOTO_MAX_ITEM_BYTES,
    );
    let write = |value: &str, condition: WriteCondition, token: &str| {
        bucket.set_with_version("k", value.as_bytes().to_vec(), condition, token.to_string())
    };
    // Create-if-absent, replayed.
    assert_eq!(
        write("a", WriteCondition::IfAbsent, "t1").await.unwrap(),
        WriteOutcome::Written
    );
    assert_eq!(
        write("a", WriteCondition::IfAbsent, "t1").await.unwrap(),
        WriteOutcome::Written
    );
    assert_eq!(
        write("x", WriteCondition::IfAbsent, "t9").await.unwrap(),
        WriteOutcome::ConditionFailed
    );
    // Swap at version t1, replayed; another swap at the stale t1 fails.
    let seen = WriteCondition::IfVersion(Version(b"t1".to_vec()));
    assert_eq!(
        write("b", seen.clone(), "t2").await.unwrap(),
        WriteOutcome::Written
    );
    assert_eq!(
        write("b", seen.clone(), "t2").await.unwrap(),
        WriteOutcome::Written
    );
    assert_eq!(
        write("c", seen, "t3").await.unwrap(),
        WriteOutcome::ConditionFailed
    );
    assert_eq!(bucket.get("k").await.unwrap(), Some(b"b".to_vec()));
    bucket.delete("k").await.unwrap();
}

/// The watch is the table's stream: an item put and deleted by another
/// client (the plain SDK) under the bucket's prefix arrives, with its value.
#[tokio::test]
async fn watch_sees_other_clients_writes() {
    use futures::StreamExt;
    use wasikv_core::{Bucket, Change};
    let store = test_store().await.expect("moto reachable");
    let arn = store
        .ensure_table(wasikv_dynamodb::testing::TEST_TABLE, "pk", true)
        .await
        .unwrap()
        .expect("tables wasikv creates have a stream");
    let prefix = format!("{}/", table_name("watch"));
    let bucket = wasikv_dynamodb::DynamoBucket::new(
        store.client.clone(),
        wasikv_dynamodb::testing::TEST_TABLE,
        "pk",
        &prefix,
        MOTO_MAX_ITEM_BYTES,
    )
    .with_stream(wasikv_dynamodb::watch::StreamSource {
        client: store.streams.clone(),
        arn,
    });
    let mut changes = bucket.watch().await.expect("watch");
    let id = AttributeValue::S(format!("{prefix}outside"));
    store
        .client
        .put_item()
        .table_name(wasikv_dynamodb::testing::TEST_TABLE)
        .item("pk", id.clone())
        .item(
            "v",
            AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(&b"sdk"[..])),
        )
        .send()
        .await
        .unwrap();
    store
        .client
        .delete_item()
        .table_name(wasikv_dynamodb::testing::TEST_TABLE)
        .key("pk", id)
        .send()
        .await
        .unwrap();
    let mut next = async || {
        tokio::time::timeout(std::time::Duration::from_secs(20), changes.next())
            .await
            .expect("a change within 20 s")
            .expect("the watch is open")
            .expect("a change")
    };
    assert_eq!(
        next().await,
        Change::Set {
            key: "outside".into(),
            value: b"sdk".to_vec()
        }
    );
    assert_eq!(
        next().await,
        Change::Delete {
            key: "outside".into()
        }
    );
}

/// Items under a bucket's prefix that wasikv did not write (an id that is
/// not a canonical encoding, a hash id whose stored key does not hash to it,
/// no string key at all) are skipped by listing, which still returns every
/// key of the bucket.
#[tokio::test]
async fn foreign_items_are_skipped_by_listing() {
    use wasikv_core::Bucket;
    let store = test_store().await.expect("moto reachable");
    store
        .ensure_table(wasikv_dynamodb::testing::TEST_TABLE, "pk", true)
        .await
        .unwrap();
    let prefix = format!("{}/", table_name("foreign"));
    let bucket = wasikv_dynamodb::DynamoBucket::new(
        store.client.clone(),
        wasikv_dynamodb::testing::TEST_TABLE,
        "pk",
        &prefix,
        MOTO_MAX_ITEM_BYTES,
    );
    for key in ["a", "b/c", "d"] {
        bucket
            .set(key, b"v".to_vec(), WriteCondition::Always)
            .await
            .unwrap();
    }
    for id in ["%41", "%2f", "%ZZ", "%Hdeadbeef", "%+F"] {
        store
            .client
            .put_item()
            .table_name(wasikv_dynamodb::testing::TEST_TABLE)
            .item("pk", AttributeValue::S(format!("{prefix}{id}")))
            .item(
                wasikv_dynamodb::core::ORIGINAL_KEY,
                AttributeValue::S("a".into()),
            )
            .send()
            .await
            .unwrap();
    }
    let mut keys = wasikv_core::suite::list_all(&bucket, 2)
        .await
        .expect("listing");
    keys.sort();
    assert_eq!(keys, ["a", "b/c", "d"]);
}
