//! Failover on a private Redis Cluster (3 masters, 3 replicas on
//! 17100-17105, node timeout 1 s; never the shared test cluster): which
//! acknowledged writes survive when a master dies and its replica takes
//! over, with and without `wait_replicas`.

use std::time::{Duration, Instant};

use wasikv_core::suite::process::{TestServer, eventually};
use wasikv_core::{Bucket, ErrorKind, WriteCondition};
use wasikv_redis::core::{RedisStore, slot};
use wasikv_redis::testing::{
    cluster_node_command, cluster_nodes, create_cluster, master_of_slot, node_connection,
    replica_of, stall,
};
use wasikv_redis::{RedisBucket, RedisConfig};

const WHAT: &str = "redis-server (scripts/services.sh installs it)";
const PORTS: [u16; 6] = [17100, 17101, 17102, 17103, 17104, 17105];
const NODE_TIMEOUT_MS: u64 = 1000;

struct Cluster {
    dir: tempfile::TempDir,
    nodes: Vec<Option<TestServer>>,
}

impl Cluster {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let nodes = PORTS
            .iter()
            .map(|&port| {
                Some(TestServer::spawn(
                    &mut cluster_node_command(port, dir.path(), NODE_TIMEOUT_MS),
                    WHAT,
                ))
            })
            .collect();
        create_cluster(&PORTS).await.expect("private cluster");
        Cluster { dir, nodes }
    }

    fn index(port: u16) -> usize {
        PORTS.iter().position(|&p| p == port).unwrap()
    }

    fn kill(&mut self, port: u16) {
        self.nodes[Self::index(port)] = None;
    }

    /// Starts a killed node again from its state file: it rejoins (as a
    /// replica of whoever took over its slots).
    fn restart(&mut self, port: u16) {
        self.nodes[Self::index(port)] = Some(TestServer::spawn(
            &mut cluster_node_command(port, self.dir.path(), NODE_TIMEOUT_MS),
            WHAT,
        ));
    }
}

async fn buckets(prefix: &str) -> (RedisBucket, RedisBucket) {
    let seeds = PORTS[..3]
        .iter()
        .map(|p| format!("redis://127.0.0.1:{p}"))
        .collect();
    let config = RedisConfig {
        connect_timeout_ms: 1_000,
        response_timeout_ms: 2_000,
        ..RedisConfig::for_cluster(seeds)
    };
    let store = eventually("connect", Duration::from_secs(30), || {
        RedisStore::connect(&config)
    })
    .await;
    let plain = RedisBucket::new(store.conn.clone(), prefix);
    let waiting = RedisBucket::new(store.conn.clone(), prefix).with_wait(1, 500);
    (plain, waiting)
}

/// The bucket at `prefix` waiting up to 5 s for one replica (for writes
/// that must succeed on a loaded machine).
async fn patient(prefix: &str) -> RedisBucket {
    buckets(prefix).await.0.with_wait(1, 5_000)
}

/// Where `key` of `bucket` lives: (master port, replica port).
async fn placement(bucket: &RedisBucket, key: &str) -> (u16, u16) {
    let nodes = cluster_nodes(PORTS[0]).await.unwrap();
    let slot = slot(bucket.layout().data_key(key).as_bytes());
    let master = master_of_slot(&nodes, slot).expect("slot served");
    let replica = replica_of(&nodes, &master.id).expect("a replica");
    (master.port, replica.port)
}

/// Waits until `key`'s slot answers reads again; returns how long it took.
async fn until_served(bucket: &RedisBucket, key: &str) -> Duration {
    let started = Instant::now();
    eventually("slot served again", Duration::from_secs(60), || async {
        bucket.get(key).await.map(|_| ())
    })
    .await;
    started.elapsed()
}

/// The replica of a key's master is frozen (`DEBUG SLEEP`) and cut off
/// (the master drops its replication link), a write is acknowledged
/// without waiting and another fails waiting for the replica;
/// the master dies and the replica takes over: the acknowledged write is
/// lost, the waiting one was never acknowledged. Then, with the replica
/// live, 200 waiting increments are acknowledged, the new master dies, and
/// all 200 survive the second failover.
#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_writes_across_a_master_failover() {
    let mut cluster = Cluster::start().await;
    let (plain, waiting) = buckets("failover:").await;
    let (master, replica) = placement(&plain, "acked").await;
    // A second key in the same slot group, so on the same master.
    let group = plain.layout().group_of("acked");
    let other = (0..)
        .map(|i| format!("waited-{i}"))
        .find(|k| plain.layout().group_of(k) == group)
        .unwrap();

    let sleeper = stall(replica, 4);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The master drops its link to the frozen replica, so nothing written
    // from now on reaches the replica's socket (a frozen process still
    // receives into its kernel buffer, and would apply it on waking).
    let dropped: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("replica")
        .query_async(&mut node_connection(master).await.unwrap())
        .await
        .unwrap();
    assert_eq!(dropped, 1, "the master had one replica link");
    plain
        .set("acked", b"v".to_vec(), WriteCondition::Always)
        .await
        .expect("acknowledged by the master alone");
    let e = waiting
        .set(&other, b"v".to_vec(), WriteCondition::Always)
        .await
        .expect_err("the frozen replica cannot confirm");
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    cluster.kill(master);
    sleeper.await.unwrap();
    let took = until_served(&plain, "acked").await;
    eprintln!("failover 1 (replica frozen 4 s): slot served again after {took:?}");
    assert_eq!(
        plain.get("acked").await.unwrap(),
        None,
        "without wait_replicas an acknowledged write the replica lacked is lost"
    );

    // The old master rejoins as the new master's replica.
    cluster.restart(master);
    let (master2, replica2) = eventually("a replica again", Duration::from_secs(60), || async {
        let nodes = cluster_nodes(replica).await?;
        let slot = slot(plain.layout().data_key("acked").as_bytes());
        match master_of_slot(&nodes, slot).and_then(|m| Some((m, replica_of(&nodes, &m.id)?))) {
            Some((m, r)) => Ok((m.port, r.port)),
            None => Err(wasikv_core::Error::new(
                ErrorKind::Unavailable,
                "no replica yet",
            )),
        }
    })
    .await;
    assert_eq!((master2, replica2), (replica, master));
    let waiting = patient("failover:").await;
    for i in 1..=200 {
        let n = eventually("waiting increment", Duration::from_secs(30), || async {
            waiting.increment("counter", 0).await
        })
        .await;
        assert_eq!(n, i - 1);
        assert_eq!(waiting.increment("counter", 1).await.unwrap(), i);
    }
    cluster.kill(master2);
    let took = until_served(&plain, "counter").await;
    eprintln!("failover 2 (replica live): slot served again after {took:?}");
    assert_eq!(
        plain.get("counter").await.unwrap().as_deref(),
        Some(&b"200"[..]),
        "with wait_replicas = 1 every acknowledged increment survives"
    );
}
