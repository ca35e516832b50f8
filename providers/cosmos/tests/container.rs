//! Cosmos-specific behaviour against the fixture (`scripts/services.sh`):
//! containers that are missing or shaped differently, how counters are
//! stored, batches over the request limit; and plans (no server needed).

use std::sync::Arc;

use azure_data_cosmos::models::ContainerProperties;
use wasikv_core::{Bucket, ErrorKind, Options, Provider, WriteCondition};
use wasikv_cosmos::core::MAX_VALUE_BYTES;
use wasikv_cosmos::testing::{TEST_DATABASE, test_config, test_store};
use wasikv_cosmos::{CosmosBucket, CosmosProvider};

fn unique(what: &str) -> String {
    format!("{what}-{:08x}", rand::random::<u32>())
}

async fn bucket(
    container: &str,
    partition: Option<&str>,
) -> (Arc<dyn Bucket>, azure_data_cosmos::clients::ContainerClient) {
    let store = test_store().await.expect("fixture reachable");
    let client = store
        .container(TEST_DATABASE, container, true)
        .await
        .expect("container");
    (
        Arc::new(CosmosBucket::new(
            client.clone(),
            partition.map(str::to_string),
        )),
        client,
    )
}

/// The stored `v` of `key` (an id the codec leaves as is), as JSON.
async fn raw_value(
    client: &azure_data_cosmos::clients::ContainerClient,
    key: &str,
) -> serde_json::Value {
    let item: serde_json::Value = client
        .read_item(key.to_string(), key, None)
        .await
        .expect("read raw item")
        .into_model()
        .expect("json");
    item["v"].clone()
}

#[tokio::test]
async fn missing_container_is_no_such_store_naming_it() {
    let store = test_store().await.expect("fixture reachable");
    let name = unique("missing");
    let err = store
        .container(TEST_DATABASE, &name, false)
        .await
        .err()
        .expect("a missing container must not open");
    assert_eq!(err.kind(), ErrorKind::NoSuchStore, "{err}");
    assert!(err.to_string().contains(&name), "{err}");
}

#[tokio::test]
async fn a_container_with_another_partition_key_is_refused() {
    let store = test_store().await.expect("fixture reachable");
    let name = unique("by-id");
    store
        .client
        .database_client(TEST_DATABASE)
        .create_container(ContainerProperties::new(name.clone(), "/id".into()), None)
        .await
        .expect("create container partitioned by /id");
    let err = store
        .container(TEST_DATABASE, &name, false)
        .await
        .err()
        .expect("a container partitioned by /id must be refused");
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
    assert!(err.to_string().contains("/pk"), "{err}");
}

/// Numbers other clients (or earlier wasikv versions) stored read as their
/// JSON text; Cosmos' `incr` patch is not used (it would add to 1.5 too):
/// `increment` is the host's CAS loop, which refuses `1.5` unchanged.
#[tokio::test]
async fn numbers_from_other_clients_read_as_their_text() {
    let (b, client) = bucket(&unique("numbers"), None).await;
    for (id, v, text) in [
        ("int", serde_json::json!(42), "42"),
        ("neg", serde_json::json!(-8), "-8"),
        ("float", serde_json::json!(1.5), "1.5"),
    ] {
        let item = serde_json::json!({"id": id, "pk": id, "v": v});
        client
            .upsert_item(id.to_string(), id, &item, None)
            .await
            .expect("raw write");
        assert_eq!(b.get(id).await.unwrap(), Some(text.as_bytes().to_vec()));
    }
    assert!(!b.capabilities().increment.is_available());
    assert_eq!(
        b.increment("int", 1).await.unwrap_err().kind(),
        ErrorKind::Unsupported
    );
}

#[tokio::test]
async fn set_many_splits_transactional_batches_by_size() {
    let partition = unique("batch");
    let (b, _) = bucket(wasikv_cosmos::testing::SHARED_CONTAINER, Some(&partition)).await;
    // 10 values of 400 KB (533 KB as base64) and one at the limit: several
    // batch requests of up to 2 MB, and the largest item on its own.
    let mut items: Vec<(String, Vec<u8>)> = (0..10u8)
        .map(|i| (format!("big-{i}"), vec![i; 400_000]))
        .collect();
    items.push(("max".into(), vec![7; MAX_VALUE_BYTES]));
    b.set_many(items.clone()).await.expect("set-many");
    let keys: Vec<String> = items.iter().map(|(k, _)| k.clone()).collect();
    let values = b.get_many(&keys).await.expect("get-many");
    for ((key, value), got) in items.iter().zip(values) {
        assert_eq!(got.as_deref(), Some(value.as_slice()), "{key}");
    }
    // An item over the limit fails the whole call before anything is written.
    let err = b
        .set_many(vec![
            ("ok".into(), b"x".to_vec()),
            ("huge".into(), vec![0; MAX_VALUE_BYTES + 1]),
        ])
        .await
        .expect_err("too large");
    assert_eq!(err.kind(), ErrorKind::TooLarge, "{err}");
    assert_eq!(b.get("ok").await.unwrap(), None);
}

fn plan(bucket: &str, options: serde_json::Value) -> wasikv_core::Result<wasikv_core::BucketPlan> {
    CosmosProvider.plan(bucket, &Options::from_json(options).unwrap())
}

fn account() -> serde_json::Value {
    serde_json::json!({"endpoint": "https://acct.documents.azure.com:443/", "key": "a2V5"})
}

fn with(extra: serde_json::Value) -> serde_json::Value {
    let mut options = account();
    for (k, v) in extra.as_object().unwrap() {
        options[k] = v.clone();
    }
    options
}

#[test]
fn plans_refuse_bad_options_naming_the_bucket() {
    let bad = [
        (
            with(serde_json::json!({"endpoint": "acct.documents.azure.com"})),
            "endpoint",
        ),
        (with(serde_json::json!({"key": ""})), "key"),
        (with(serde_json::json!({"container": "a/b"})), "container"),
        (with(serde_json::json!({"container": "a#b"})), "container"),
        (with(serde_json::json!({"database": ""})), "database"),
        (with(serde_json::json!({"partition": ""})), "partition"),
        (with(serde_json::json!({"partiton": "x"})), "partiton"),
        (serde_json::json!({"endpoint": "https://x/"}), "key"),
    ];
    wasikv_core::suite::plans::assert_plans_refused(&CosmosProvider, &bad);
}

#[test]
fn a_whole_container_overlaps_its_partitions_and_partitions_only_themselves() {
    let ns = |bucket: &str, extra: serde_json::Value| plan(bucket, with(extra)).unwrap().namespace;
    let whole = ns("c", serde_json::json!({}));
    let a = ns("x", serde_json::json!({"container": "c", "partition": "a"}));
    let ab = ns(
        "y",
        serde_json::json!({"container": "c", "partition": "ab"}),
    );
    assert!(whole.overlaps(&a));
    assert!(!a.overlaps(&ab));
    assert!(a.overlaps(&ns(
        "z",
        serde_json::json!({"container": "c", "partition": "a"})
    )));
    assert!(!whole.overlaps(&ns("d", serde_json::json!({}))));
    assert!(!whole.overlaps(&ns("c", serde_json::json!({"database": "other"}))));
}

#[test]
fn the_key_stays_out_of_debug_output() {
    let mut config = test_config("c", None);
    config.key = "s3cr3t-account-key".into();
    let text = format!("{config:?}");
    assert!(!text.contains("s3cr3t"), "{text}");
    assert!(text.contains("<redacted>"), "{text}");
}

/// The SDK re-sends a write whose reply was lost. A conditional write whose
/// first attempt was applied then fails its condition against its own
/// write: replaying the identical request (same write token) must report it
/// written, while another writer with the same stale condition fails.
#[tokio::test]
async fn a_replayed_conditional_write_that_was_applied_reports_written() {
    use wasikv_core::WriteOutcome::{ConditionFailed, Written};
    let store = test_store().await.expect("fixture reachable");
    let client = store
        .container(TEST_DATABASE, &unique("replay"), true)
        .await
        .expect("container");
    let bucket = CosmosBucket::new(client, None);
    let write = |value: &str, condition: WriteCondition, token: &str| {
        bucket.set_with_token("k", value.as_bytes().to_vec(), condition, token.to_string())
    };
    assert_eq!(
        write("a", WriteCondition::IfAbsent, "t1").await.unwrap(),
        Written
    );
    assert_eq!(
        write("a", WriteCondition::IfAbsent, "t1").await.unwrap(),
        Written
    );
    assert_eq!(
        write("x", WriteCondition::IfAbsent, "t9").await.unwrap(),
        ConditionFailed
    );
    let seen = WriteCondition::IfVersion(bucket.get_versioned("k").await.unwrap().unwrap().version);
    assert_eq!(write("b", seen.clone(), "t2").await.unwrap(), Written);
    assert_eq!(write("b", seen.clone(), "t2").await.unwrap(), Written);
    assert_eq!(write("c", seen, "t3").await.unwrap(), ConditionFailed);
    assert_eq!(bucket.get("k").await.unwrap(), Some(b"b".to_vec()));
}

/// Items in a bucket's container that wasikv did not write (ids that are not
/// canonical encodings, a hash id whose stored key does not hash to it, an
/// id ending in a space) are skipped by listing, which returns every key of
/// the bucket; a key ending in a space is stored under an escaped id.
#[tokio::test]
async fn foreign_items_are_skipped_by_listing() {
    let container = unique("foreign");
    let (b, client) = bucket(&container, None).await;
    for key in ["a", "b/c", "trailing "] {
        b.set(key, b"v".to_vec(), WriteCondition::Always)
            .await
            .unwrap();
    }
    // The key that ends in a space has an id that does not.
    raw_value(&client, "trailing%20").await;
    for (id, k) in [
        ("%41", None),
        ("%2f", None),
        ("%Hdeadbeef", Some("a")),
        ("foreign ", None),
    ] {
        let mut item = serde_json::json!({"id": id, "pk": id, "v": "dg=="});
        if let Some(k) = k {
            item["k"] = serde_json::json!(k);
        }
        client
            .upsert_item(id.to_string(), id, &item, None)
            .await
            .expect("raw write");
    }
    let mut keys = wasikv_core::suite::list_all(&*b, 2).await.expect("listing");
    keys.sort();
    assert_eq!(keys, ["a", "b/c", "trailing "]);
}

/// A conditional write that meets a 404 because the container is gone is
/// `no-such-store`, not a lost race (which would make a CAS swap fail with
/// `cas-failed` forever and an increment give up with `conflict`).
#[tokio::test]
async fn a_deleted_container_is_no_such_store_not_a_lost_race() {
    let (b, client) = bucket(&unique("deleted"), None).await;
    b.set("k", b"v".to_vec(), WriteCondition::Always)
        .await
        .unwrap();
    let version = b
        .get_versioned("k")
        .await
        .unwrap()
        .expect("written")
        .version;
    // While the container exists, a missing item is a lost race.
    assert_eq!(
        b.set(
            "gone",
            b"v".to_vec(),
            WriteCondition::IfVersion(version.clone())
        )
        .await
        .unwrap(),
        wasikv_core::WriteOutcome::ConditionFailed
    );
    client.delete(None).await.expect("delete the container");
    for condition in [WriteCondition::IfVersion(version), WriteCondition::IfAbsent] {
        let e = b
            .set("k", b"w".to_vec(), condition.clone())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NoSuchStore, "{condition:?}: {e}");
    }
}
