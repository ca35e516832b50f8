//! etcd expiry specifics: the writes of one window share one lease, granted
//! for at least the ttl, and the keys are gone once it expires.

use std::time::Duration;

use wasikv_core::{Bucket, WriteCondition};
use wasikv_etcd::EtcdBucket;
use wasikv_etcd::core::EtcdStore;
use wasikv_etcd::testing::{config_for, test_endpoint};

#[tokio::test]
async fn writes_of_a_window_share_a_lease_that_outlives_the_ttl() {
    let ttl = Duration::from_secs(2);
    let store = EtcdStore::connect(&config_for(&test_endpoint(), 5_000))
        .await
        .expect("etcd at WASIKV_TEST_ETCD_URL");
    let prefix = format!("wasikv-test/expiry-{:08x}/", rand::random::<u32>());
    let bucket =
        EtcdBucket::new(store.kv.clone(), &prefix).expiring(store.lease.clone(), Some(ttl));
    let started = std::time::Instant::now();
    for i in 0..20 {
        bucket
            .set(&format!("k{i}"), b"v".to_vec(), WriteCondition::Always)
            .await
            .unwrap();
    }
    let window = started.elapsed();
    let mut kv = store.kv.clone();
    let listed = kv
        .get(
            prefix.as_bytes(),
            Some(etcd_client::GetOptions::new().with_prefix()),
        )
        .await
        .unwrap();
    let mut leases: Vec<i64> = listed.kvs().iter().map(|kv| kv.lease()).collect();
    leases.sort();
    leases.dedup();
    assert!(leases.iter().all(|l| *l != 0), "a write without a lease");
    // Twenty writes within about a second: one lease, two if the window
    // turned over meanwhile.
    let most = 1 + window.as_secs() as usize + 1;
    assert!(
        leases.len() <= most,
        "{} leases for 20 writes in {window:?}",
        leases.len()
    );
    let mut lease = store.lease.clone();
    let granted = lease
        .time_to_live(leases[0], None)
        .await
        .unwrap()
        .granted_ttl();
    assert!(
        granted > ttl.as_secs() as i64,
        "lease granted for {granted} s"
    );
    // Gone after the ttl, the window and etcd's lateness.
    tokio::time::sleep(ttl + Duration::from_secs(3)).await;
    assert_eq!(bucket.get("k0").await.unwrap(), None);
    let left = kv
        .get(
            prefix.as_bytes(),
            Some(
                etcd_client::GetOptions::new()
                    .with_prefix()
                    .with_count_only(),
            ),
        )
        .await
        .unwrap()
        .count();
    assert_eq!(left, 0, "keys left after their lease expired");
}
