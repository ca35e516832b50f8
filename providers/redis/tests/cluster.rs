//! Redis Cluster specifics on the test cluster (`scripts/services.sh`: 3
//! masters, 3 replicas on 17000-17005): a bucket's keys spread over every
//! master, each key's bookkeeping in its slot, big batches split per slot,
//! writes that wait for a replica, and configurations that cannot work
//! refused with a clear error. The failover tests, which kill nodes, run on
//! a private cluster (`tests/failover.rs`).

use std::collections::HashMap;
use std::time::Duration;

use wasikv_core::{Bucket, ErrorKind, Options, Provider, WriteCondition};
use wasikv_redis::core::{RedisStore, slot};
use wasikv_redis::testing::{
    ClusterNode, cluster_nodes, master_of_slot, node_connection, test_cluster_nodes,
};
use wasikv_redis::{RedisBucket, RedisConfig, RedisProvider};

async fn raw(port: u16) -> redis::aio::MultiplexedConnection {
    node_connection(port)
        .await
        .expect("test cluster node reachable (scripts/services.sh)")
}

async fn nodes() -> Vec<ClusterNode> {
    let seed: u16 = test_cluster_nodes()[0]
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    cluster_nodes(seed).await.expect("test cluster reachable")
}

fn master_of(nodes: &[ClusterNode], slot: u16) -> &ClusterNode {
    master_of_slot(nodes, slot).expect("every slot is served")
}

async fn bucket(name: &str, wait: Option<(u32, u64)>) -> (RedisBucket, String) {
    let store = RedisStore::connect(&RedisConfig::for_cluster(test_cluster_nodes()))
        .await
        .expect("test cluster reachable (scripts/services.sh)");
    let prefix = format!("wasikv-test:{name}-{:08x}:", rand::random::<u32>());
    let mut bucket = RedisBucket::new(store.conn.clone(), &prefix);
    if let Some((replicas, timeout)) = wait {
        bucket = bucket.with_wait(replicas, timeout);
    }
    (bucket, prefix)
}

async fn count_on(port: u16, prefix: &str) -> usize {
    let mut conn = raw(port).await;
    let mut cursor = 0u64;
    let mut count = 0;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .unwrap();
        count += keys.len();
        if next == 0 {
            return count;
        }
        cursor = next;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_buckets_keys_spread_over_every_master_and_list_once() {
    let (b, prefix) = bucket("spread", None).await;
    let keys: Vec<String> = (0..600).map(|i| format!("k{i:04}")).collect();
    for chunk in keys.chunks(200) {
        b.set_many(
            chunk
                .iter()
                .map(|k| (k.clone(), k.as_bytes().to_vec()))
                .collect(),
        )
        .await
        .unwrap();
    }
    let nodes = nodes().await;
    let masters: Vec<&ClusterNode> = nodes.iter().filter(|n| n.master_of.is_none()).collect();
    assert_eq!(masters.len(), 3, "{nodes:?}");
    let mut per_master = HashMap::new();
    for m in &masters {
        per_master.insert(m.port, count_on(m.port, &prefix).await);
    }
    // 600 keys over 256 groups over 3 masters: about 200 each.
    assert_eq!(per_master.values().sum::<usize>(), 600, "{per_master:?}");
    for (port, n) in &per_master {
        assert!(
            *n >= 120,
            "master {port} holds only {n} of 600 keys: {per_master:?}"
        );
    }
    // Each data key on the master of its slot.
    for key in keys.iter().take(50) {
        let data = b.layout().data_key(key);
        let owner = master_of(&nodes, slot(data.as_bytes()));
        let value: Option<Vec<u8>> = redis::cmd("GET")
            .arg(&data)
            .query_async(&mut raw(owner.port).await)
            .await
            .unwrap();
        assert_eq!(value.as_deref(), Some(key.as_bytes()));
    }
    // Every key exactly once, at page sizes that end inside and at group ends.
    for limit in [1, 7, 100, 1000] {
        let mut listed = Vec::new();
        let mut cursor = None;
        let mut pages = 0;
        loop {
            let page = b.list(cursor.as_deref(), limit).await.unwrap();
            assert!(page.keys.len() <= limit);
            listed.extend(page.keys);
            pages += 1;
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        listed.sort();
        assert_eq!(listed, keys, "limit {limit}");
        assert!(pages <= 600 / limit + 2, "limit {limit}: {pages} pages");
    }
    wasikv_core::suite::cleanup(&b).await;
    assert_eq!(b.list(None, 10).await.unwrap().keys.len(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn batches_over_many_slots_apply_and_read_back_in_order() {
    let (b, _) = bucket("batch", None).await;
    let items: Vec<(String, Vec<u8>)> = (0..510)
        .map(|i| (format!("item-{i}"), vec![(i % 251) as u8; i % 17]))
        .collect();
    b.set_many(items.clone()).await.unwrap();
    let mut keys: Vec<String> = items.iter().map(|(k, _)| k.clone()).collect();
    keys.push("missing".into());
    keys.push("item-3".into());
    let values = b.get_many(&keys).await.unwrap();
    for (i, (_, value)) in items.iter().enumerate() {
        assert_eq!(values[i].as_ref(), Some(value), "item-{i}");
    }
    assert_eq!(values[510], None);
    assert_eq!(values[511].as_ref(), Some(&items[3].1));
    let doomed: Vec<String> = keys[..300].to_vec();
    b.delete_many(&doomed).await.unwrap();
    let after = b.get_many(&keys[..510]).await.unwrap();
    assert!(after[..300].iter().all(Option::is_none));
    assert!(after[300..].iter().all(Option::is_some));
    wasikv_core::suite::cleanup(&b).await;
}

/// `wait_replicas = 1`: once a write is acknowledged, the replica of its
/// master has it. More replicas than the cluster has: the write fails as
/// `unavailable` after the timeout, and says it may have applied (the
/// master has it).
#[tokio::test(flavor = "multi_thread")]
async fn writes_wait_for_replicas_when_asked() {
    let (b, _) = bucket("wait", Some((1, 5_000))).await;
    let nodes = nodes().await;
    for i in 0..20 {
        let key = format!("w{i}");
        b.set(&key, b"v".to_vec(), WriteCondition::Always)
            .await
            .unwrap();
        assert_eq!(b.increment(&format!("n{i}"), 5).await.unwrap(), 5);
        let data = b.layout().data_key(&key);
        let master = master_of(&nodes, slot(data.as_bytes()));
        let replica = nodes
            .iter()
            .find(|n| n.master_of.as_deref() == Some(master.id.as_str()))
            .expect("every master has a replica");
        let mut conn = raw(replica.port).await;
        let _: () = redis::cmd("READONLY").query_async(&mut conn).await.unwrap();
        let value: Option<Vec<u8>> = redis::cmd("GET")
            .arg(&data)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            value.as_deref(),
            Some(&b"v"[..]),
            "replica {} lacks {key}",
            replica.port
        );
    }
    b.set_many(vec![
        ("x".into(), b"1".to_vec()),
        ("y".into(), b"2".to_vec()),
    ])
    .await
    .unwrap();
    b.delete_many(&["x".into(), "y".into()]).await.unwrap();
    wasikv_core::suite::cleanup(&b).await;

    let (strict, _) = bucket("wait2", Some((2, 200))).await;
    let started = std::time::Instant::now();
    let e = strict
        .set("k", b"v".to_vec(), WriteCondition::Always)
        .await
        .expect_err("only one replica per master");
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(!e.is_retryable(), "{e}");
    assert!(e.to_string().contains("only 1 of 2 replicas"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // The master took it: the failed call applied (as its error says it may).
    assert_eq!(strict.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    wasikv_core::suite::cleanup(&strict).await;
}

fn plan(options: serde_json::Value) -> wasikv_core::Result<wasikv_core::BucketPlan> {
    RedisProvider.plan("b", &Options::from_json(options).unwrap())
}

#[test]
fn cluster_options_are_checked_before_connecting() {
    let ok = plan(serde_json::json!({
        "cluster": ["redis://127.0.0.1:17000", "redis://127.0.0.1:17001"]
    }))
    .unwrap();
    assert_eq!(ok.location.endpoints.len(), 2);
    for (options, says) in [
        (
            serde_json::json!({"url": "redis://127.0.0.1:6379", "cluster": ["redis://127.0.0.1:17000"]}),
            "both url and cluster",
        ),
        (serde_json::json!({"cluster": []}), "lists no nodes"),
        (serde_json::json!({}), "missing url"),
        (
            serde_json::json!({"cluster": ["redis://127.0.0.1:17000/2"]}),
            "only database 0",
        ),
        (
            serde_json::json!({"cluster": ["redis://127.0.0.1:17000", "rediss://127.0.0.1:17001"]}),
            "mixes",
        ),
        (
            serde_json::json!({"cluster": ["redis://127.0.0.1:17000"], "prefix": "{app}:"}),
            "hash tag",
        ),
        (
            serde_json::json!({"url": "redis://127.0.0.1:6379", "wait_replicas": 1, "wait_timeout_ms": 0}),
            "wait forever",
        ),
    ] {
        let e = plan(options.clone()).expect_err(&options.to_string());
        assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e}");
        assert!(e.to_string().contains(says), "{options}: {e}");
        assert!(e.to_string().contains("\"b\""), "names the bucket: {e}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_node_as_url_and_a_plain_server_as_cluster_are_refused() {
    let e = RedisStore::connect(&RedisConfig::for_url(&test_cluster_nodes()[0]))
        .await
        .err()
        .expect("a cluster node is not a single server");
    assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e}");
    assert!(e.to_string().contains("cluster = ["), "{e}");
    let e = RedisStore::connect(&RedisConfig::for_cluster(vec![
        wasikv_redis::testing::test_url(),
    ]))
    .await
    .err()
    .expect("a plain server is not a cluster");
    assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e}");
    assert!(e.to_string().contains("Redis Cluster"), "{e}");
}
