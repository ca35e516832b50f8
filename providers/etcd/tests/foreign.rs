//! Keys under a bucket's prefix that wasikv did not write and that are not
//! UTF-8 are skipped by listing (which returns every key of the bucket),
//! never an error for the whole listing.

use wasikv_core::{Bucket, WriteCondition};
use wasikv_etcd::EtcdBucket;
use wasikv_etcd::core::EtcdStore;
use wasikv_etcd::testing::{config_for, test_endpoint};

#[tokio::test]
async fn foreign_keys_that_are_not_utf8_are_skipped_by_listing() {
    let store = EtcdStore::connect(&config_for(&test_endpoint(), 5_000))
        .await
        .expect("the test etcd (scripts/services.sh) is reachable");
    let prefix = format!("wasikv-test/foreign-{:08x}/", rand::random::<u32>());
    let bucket = EtcdBucket::new(store.kv.clone(), &prefix);
    for key in ["a", "c", "e"] {
        bucket
            .set(key, b"v".to_vec(), WriteCondition::Always)
            .await
            .unwrap();
    }
    let mut kv = store.kv.clone();
    for foreign in [&b"b\xff"[..], b"d\xc3", b"z\x80\x80"] {
        let key = [prefix.as_bytes(), foreign].concat();
        kv.put(key, b"x".to_vec(), None).await.unwrap();
    }
    let keys = wasikv_core::suite::list_all(&bucket, 1)
        .await
        .expect("listing");
    assert_eq!(keys, ["a", "c", "e"]);
    kv.delete(
        prefix.as_bytes().to_vec(),
        Some(etcd_client::DeleteOptions::new().with_prefix()),
    )
    .await
    .unwrap();
}
