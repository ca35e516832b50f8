//! Firestore expiry specifics against the emulator (`scripts/services.sh`):
//! documents of a bucket with a ttl carry `exp`, a timestamp at least the
//! ttl ahead (the field a TTL policy deletes by); a document past its
//! `exp` is absent for every bucket on the collection, and a create
//! replaces it.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use firestore::gcloud_sdk::google::firestore::v1::{
    CommitRequest, Document, GetDocumentRequest, Write, write,
};
use wasikv_core::{Bucket, WriteCondition};
use wasikv_firestore::FirestoreBucket;
use wasikv_firestore::core::{EXPIRES, FirestoreStore, bytes_value, expiry_ms, timestamp_value};
use wasikv_firestore::testing::test_config;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test(flavor = "multi_thread")]
async fn documents_carry_exp_and_expired_ones_are_absent_for_every_bucket() {
    let store = FirestoreStore::connect(&test_config())
        .await
        .expect("the emulator (scripts/services.sh) is reachable");
    let collection = format!("wasikv-test-expiry-{:08x}", rand::random::<u32>());
    let name = |id: &str| format!("{}/documents/{collection}/{id}", store.database);
    let expiring =
        FirestoreBucket::new(&store, None, &collection).expiring(Some(Duration::from_secs(90)));
    let before = now_ms();
    expiring
        .set("k", b"v".to_vec(), WriteCondition::Always)
        .await
        .unwrap();
    let mut client = store.client.clone();
    let document = client
        .get_document(GetDocumentRequest {
            name: name("k"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let exp = expiry_ms(&document).expect("an exp timestamp");
    assert!(
        exp >= before + 90_000 && exp <= now_ms() + 90_000,
        "exp {exp}, written at {before}"
    );

    // A document past its exp (written here by another client: the
    // emulator has no TTL policy) is absent for a bucket without a ttl,
    // and a create replaces it.
    let plain = FirestoreBucket::new(&store, None, &collection);
    let fields = HashMap::from([
        ("v".to_string(), bytes_value(b"stale".to_vec())),
        (EXPIRES.to_string(), timestamp_value(now_ms() - 1_000)),
    ]);
    client
        .commit(CommitRequest {
            database: store.database.clone(),
            writes: vec![Write {
                operation: Some(write::Operation::Update(Document {
                    name: name("old"),
                    fields,
                    ..Default::default()
                })),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .expect("raw write");
    wasikv_core::suite::assert_expired_key_is_absent(&plain, "old", &["k"]).await;
    wasikv_core::suite::cleanup(&plain).await;
}
