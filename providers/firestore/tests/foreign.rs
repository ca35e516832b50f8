//! Documents in a bucket's collection that wasikv did not write (ids that
//! are not canonical encodings, a hash id whose stored key does not hash to
//! it) are skipped by listing, which returns every key of the bucket.

use std::collections::HashMap;

use firestore::gcloud_sdk::google::firestore::v1::{
    CommitRequest, Document, Value, Write, value::ValueType, write,
};
use wasikv_core::{Bucket, WriteCondition};
use wasikv_firestore::FirestoreBucket;
use wasikv_firestore::core::FirestoreStore;
use wasikv_firestore::testing::test_config;

#[tokio::test(flavor = "multi_thread")]
async fn foreign_documents_are_skipped_by_listing() {
    let store = FirestoreStore::connect(&test_config())
        .await
        .expect("the emulator (scripts/services.sh) is reachable");
    let collection = format!("wasikv-test-foreign-{:08x}", rand::random::<u32>());
    let bucket = FirestoreBucket::new(&store, None, &collection);
    for key in ["a", "b/c", "d"] {
        bucket
            .set(key, b"v".to_vec(), WriteCondition::Always)
            .await
            .unwrap();
    }
    let foreign = |id: &str, key: Option<&str>| {
        let mut fields = HashMap::new();
        fields.insert(
            "v".to_string(),
            Value {
                value_type: Some(ValueType::BytesValue(b"x".to_vec())),
            },
        );
        if let Some(key) = key {
            fields.insert(
                "k".to_string(),
                Value {
                    value_type: Some(ValueType::StringValue(key.to_string())),
                },
            );
        }
        Write {
            operation: Some(write::Operation::Update(Document {
                name: format!("{}/documents/{collection}/{id}", store.database),
                fields,
                ..Default::default()
            })),
            ..Default::default()
        }
    };
    let mut client = store.client.clone();
    client
        .commit(CommitRequest {
            database: store.database.clone(),
            writes: vec![
                foreign("%41", None),
                foreign("%2f", None),
                foreign("%Hdeadbeef", Some("a")),
            ],
            ..Default::default()
        })
        .await
        .expect("raw write");
    let mut keys = wasikv_core::suite::list_all(&bucket, 2)
        .await
        .expect("listing");
    keys.sort();
    assert_eq!(keys, ["a", "b/c", "d"]);
    wasikv_core::suite::cleanup(&bucket).await;
}
