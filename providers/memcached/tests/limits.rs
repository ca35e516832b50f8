//! Limits at the edges, against the test server (`scripts/services.sh`, the
//! default 1 MiB item size): the longest prefix still leaves room for a hashed
//! id, a maximum-size value fits under a 1024-byte key, keys too long for a
//! hashed item are refused (never truncated), and configs that cannot work
//! are refused.

use std::sync::Arc;
use std::time::Duration;

use wasikv_core::{Bucket, ErrorKind, Options, Provider, WriteCondition};
use wasikv_memcached::core::MemcachedStore;
use wasikv_memcached::testing::test_address;
use wasikv_memcached::{MAX_PREFIX_BYTES, MemcachedBucket, MemcachedProvider};

async fn store() -> Arc<MemcachedStore> {
    Arc::new(
        MemcachedStore::connect(&test_address(), 4, Duration::from_secs(5))
            .await
            .expect("the test memcached (scripts/services.sh) is reachable"),
    )
}

fn unique_prefix(len: usize) -> String {
    let head = format!("wasikv-test:limits-{:08x}:", rand::random::<u32>());
    format!("{head}{}", "p".repeat(len - head.len()))
}

#[tokio::test]
async fn the_longest_prefix_leaves_room_for_hashed_keys() {
    let store = store().await;
    let prefix = unique_prefix(MAX_PREFIX_BYTES);
    let bucket = MemcachedBucket::new(store.clone(), &prefix, 1 << 20).unwrap();
    let long = "k".repeat(1024);
    bucket
        .set(&long, b"v".to_vec(), WriteCondition::Always)
        .await
        .expect("a hashed key under the longest prefix");
    assert_eq!(bucket.get(&long).await.unwrap(), Some(b"v".to_vec()));
    bucket.delete(&long).await.unwrap();
    let too_long = unique_prefix(MAX_PREFIX_BYTES + 1);
    let Err(e) = MemcachedBucket::new(store, &too_long, 1 << 20) else {
        panic!("a prefix with no room for a hashed id was accepted");
    };
    assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e}");
}

#[tokio::test]
async fn a_maximum_value_fits_under_a_1024_byte_key() {
    let bucket = MemcachedBucket::new(store().await, &unique_prefix(60), 1 << 20).unwrap();
    let max = bucket.capabilities().max_value_bytes.unwrap();
    let key = "é".repeat(512); // 1024 bytes: hashed
    let value = vec![7u8; max];
    bucket
        .set(&key, value.clone(), WriteCondition::Always)
        .await
        .expect("the declared maximum value under a 1024-byte key");
    assert_eq!(bucket.get(&key).await.unwrap(), Some(value));
    bucket.delete(&key).await.unwrap();
    // One byte more: the declared limit, before the server is asked.
    let e = bucket
        .set(&key, vec![7u8; max + 1], WriteCondition::Always)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooLarge, "{e}");
}

#[tokio::test]
async fn keys_too_long_for_a_hashed_item_are_refused_not_truncated() {
    let bucket = MemcachedBucket::new(store().await, &unique_prefix(60), 1 << 20).unwrap();
    let key = "k".repeat(65_536);
    let e = bucket
        .set(&key, b"v".to_vec(), WriteCondition::Always)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidKey, "{e}");
    assert!(e.to_string().contains("65535"), "{e}");
    // A long (but storable) key takes room from the value: a precise error.
    let key = "k".repeat(60_000);
    let e = bucket
        .set(&key, vec![0u8; 1_000_000], WriteCondition::Always)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooLarge, "{e}");
    assert!(e.to_string().contains("60000-byte key"), "{e}");
    bucket
        .set(&key, vec![0u8; 900_000], WriteCondition::Always)
        .await
        .expect("a value that fits beside the key");
    bucket.delete(&key).await.unwrap();
}

#[test]
fn item_sizes_that_cannot_hold_a_value_are_refused() {
    let options = Options::from_json(serde_json::json!({
        "address": "127.0.0.1:11211",
        "max_item_bytes": 1000,
    }))
    .unwrap();
    let e = MemcachedProvider.plan("b", &options).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert!(e.to_string().contains("max_item_bytes"), "{e}");
}
