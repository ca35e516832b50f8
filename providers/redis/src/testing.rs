//! Test support (not part of the stable API): buckets on the test server for
//! the behavior suite, each on the namespace the suite names.

use std::sync::Arc;

use tokio::sync::OnceCell;
use wasikv_core::provider::OpenFuture;
use wasikv_core::{Bucket, OpenRequest};

use crate::core::RedisStore;
use crate::{RedisBucket, RedisConfig};

/// The test server: `WASIKV_TEST_REDIS_URL`, default the machine's Redis.
pub fn test_url() -> String {
    std::env::var("WASIKV_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// The seed nodes of the test cluster: `WASIKV_TEST_REDIS_CLUSTER`
/// (comma-separated urls), default the cluster `scripts/services.sh`
/// starts on 17000-17005.
pub fn test_cluster_nodes() -> Vec<String> {
    match std::env::var("WASIKV_TEST_REDIS_CLUSTER") {
        Ok(list) => list.split(',').map(|s| s.trim().to_string()).collect(),
        Err(_) => (17000..17003)
            .map(|port| format!("redis://127.0.0.1:{port}"))
            .collect(),
    }
}

/// Opens a bucket with prefix `wasikv-test:<namespace>:` (and the requested
/// `ttl`) on one shared connection to the test server.
pub fn opener() -> impl Fn(OpenRequest) -> OpenFuture + Send + Sync + 'static {
    opener_on(None)
}

/// [`opener`] on the test cluster ([`test_cluster_nodes`]).
pub fn cluster_opener() -> impl Fn(OpenRequest) -> OpenFuture + Send + Sync + 'static {
    opener_on(Some(test_cluster_nodes()))
}

fn opener_on(
    cluster: Option<Vec<String>>,
) -> impl Fn(OpenRequest) -> OpenFuture + Send + Sync + 'static {
    let store: Arc<OnceCell<RedisStore>> = Arc::new(OnceCell::new());
    move |request: OpenRequest| {
        let store = store.clone();
        let cluster = cluster.clone();
        Box::pin(async move {
            let config = match &cluster {
                Some(nodes) => RedisConfig::for_cluster(nodes.clone()),
                None => RedisConfig::for_url(test_url()),
            };
            let store = store
                .get_or_try_init(|| RedisStore::connect(&config))
                .await?;
            let prefix = format!("wasikv-test:{}:", request.namespace);
            Ok(Arc::new(
                RedisBucket::new(store.conn.clone(), &prefix)
                    .with_watch(store.pubsub.clone())
                    .expiring(request.ttl),
            ) as Arc<dyn Bucket>)
        })
    }
}

/// The command of a private redis-server for a test, on `port` of
/// 127.0.0.1, without persistence (add flags with `.args`). Its working
/// directory is a fresh one under the system's temporary directory: a
/// replica writes the master's snapshot there (`dump.rdb`), and a server
/// started later in the same place would load it.
pub fn server_command(port: u16) -> std::process::Command {
    let dir = std::env::temp_dir().join(format!("wasikv-redis-test-{port}"));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::create_dir_all(&dir);
    let mut command = std::process::Command::new("redis-server");
    command.arg("--dir").arg(&dir);
    command.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]);
    command
}

/// Options of a bucket on a private test server on `port`.
pub fn private_config(port: u16) -> RedisConfig {
    RedisConfig {
        connect_timeout_ms: 1_000,
        ..RedisConfig::for_url(format!("redis://127.0.0.1:{port}/0"))
    }
}

/// The command of one node of a private Redis Cluster on `port` of
/// 127.0.0.1 (cluster bus on `port + 10000`), its state file under `dir`,
/// without persistence. A master is taken as failed after
/// `node_timeout_ms`; its replica takes over about a second later, however
/// long it was out of touch.
pub fn cluster_node_command(
    port: u16,
    dir: &std::path::Path,
    node_timeout_ms: u64,
) -> std::process::Command {
    let mut command = server_command(port);
    command
        .args(["--cluster-enabled", "yes", "--cluster-config-file"])
        .arg(dir.join(format!("nodes-{port}.conf")))
        .args(["--cluster-node-timeout", &node_timeout_ms.to_string()])
        .args(["--enable-debug-command", "yes"])
        // A replica frozen by a test (`DEBUG SLEEP`) must still take over:
        // Redis would otherwise judge its data too old to fail over.
        .args(["--cluster-replica-validity-factor", "0"]);
    command
}

/// A node of a Redis Cluster, as `CLUSTER NODES` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    /// Node id.
    pub id: String,
    /// Client port on 127.0.0.1.
    pub port: u16,
    /// The id of its master, for a replica.
    pub master_of: Option<String>,
    /// Slot ranges it serves, for a master.
    pub slots: Vec<(u16, u16)>,
    /// Flagged `fail` (or `fail?`) by the node asked.
    pub failing: bool,
}

/// A connection to one node (not cluster-aware).
pub async fn node_connection(port: u16) -> wasikv_core::Result<redis::aio::MultiplexedConnection> {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .map_err(crate::core::map_err)?
        .get_multiplexed_async_connection()
        .await
        .map_err(crate::core::map_err)
}

/// The cluster's nodes as the node on `port` sees them.
pub async fn cluster_nodes(port: u16) -> wasikv_core::Result<Vec<ClusterNode>> {
    let text: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut node_connection(port).await?)
        .await
        .map_err(crate::core::map_err)?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let port = f
                .get(1)?
                .split('@')
                .next()?
                .rsplit(':')
                .next()?
                .parse()
                .ok()?;
            let slots = f
                .get(8..)
                .unwrap_or_default()
                .iter()
                .filter(|s| !s.starts_with('['))
                .filter_map(|s| match s.split_once('-') {
                    Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                    None => Some((s.parse().ok()?, s.parse().ok()?)),
                })
                .collect();
            Some(ClusterNode {
                id: f[0].to_string(),
                port,
                master_of: (*f.get(3)? != "-").then(|| f[3].to_string()),
                slots,
                failing: f.get(2)?.contains("fail"),
            })
        })
        .collect())
}

/// The live master serving `slot`, among `nodes`.
pub fn master_of_slot(nodes: &[ClusterNode], slot: u16) -> Option<&ClusterNode> {
    nodes.iter().find(|n| {
        !n.failing && n.master_of.is_none() && n.slots.iter().any(|&(a, b)| (a..=b).contains(&slot))
    })
}

/// A replica of the master with id `master`.
pub fn replica_of<'a>(nodes: &'a [ClusterNode], master: &str) -> Option<&'a ClusterNode> {
    nodes
        .iter()
        .find(|n| !n.failing && n.master_of.as_deref() == Some(master))
}

/// The text the node on `port` answers to `cmd` (an `INFO`-like command),
/// `None` when it cannot be asked.
async fn node_text(port: u16, cmd: &redis::Cmd) -> Option<String> {
    let mut conn = node_connection(port).await.ok()?;
    cmd.query_async(&mut conn).await.ok()
}

/// Whether the node on `port` reports `cluster_state:ok`.
pub async fn cluster_ok(port: u16) -> bool {
    node_text(port, redis::cmd("CLUSTER").arg("INFO"))
        .await
        .is_some_and(|text| text.lines().any(|l| l.trim() == "cluster_state:ok"))
}

/// Whether the master on `port` has a replica in sync (`state=online`).
pub async fn replica_online(port: u16) -> bool {
    node_text(port, redis::cmd("INFO").arg("replication"))
        .await
        .is_some_and(|text| {
            text.lines()
                .any(|l| l.starts_with("slave0:") && l.contains("state=online"))
        })
}

/// Freezes the server on `port` for `seconds` (`DEBUG SLEEP`; it must run
/// with `--enable-debug-command yes`): it holds its sockets and answers
/// nothing. The task ends when the server wakes.
pub fn stall(port: u16, seconds: u64) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut conn = node_connection(port).await.expect("the server to stall");
        let _: redis::RedisResult<()> = redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg(seconds)
            .query_async(&mut conn)
            .await;
    })
}

/// Makes a cluster of the running, empty nodes on `ports` (one replica per
/// master: 6 ports give 3 masters and 3 replicas) with `redis-cli --cluster
/// create`, and waits until every node reports it ok and every master's
/// replica is in sync.
pub async fn create_cluster(ports: &[u16]) -> wasikv_core::Result<()> {
    let started = std::time::Instant::now();
    for &port in ports {
        while node_connection(port).await.is_err() {
            if started.elapsed() > std::time::Duration::from_secs(30) {
                return Err(wasikv_core::Error::new(
                    wasikv_core::ErrorKind::Unavailable,
                    format!("redis cluster node on {port} did not start"),
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    let out = std::process::Command::new("redis-cli")
        .arg("--cluster")
        .arg("create")
        .args(ports.iter().map(|p| format!("127.0.0.1:{p}")))
        .args(["--cluster-replicas", "1", "--cluster-yes"])
        .output()
        .map_err(|e| {
            wasikv_core::Error::new(
                wasikv_core::ErrorKind::Unavailable,
                format!("cannot run redis-cli (scripts/services.sh installs it): {e}"),
            )
        })?;
    if !out.status.success() {
        return Err(wasikv_core::Error::new(
            wasikv_core::ErrorKind::Unavailable,
            format!(
                "redis-cli --cluster create failed: {}",
                String::from_utf8_lossy(&out.stdout)
            ),
        ));
    }
    loop {
        let mut all = true;
        for &port in ports {
            all &= cluster_ok(port).await;
        }
        // And every master's replica has its first copy (else a write that
        // waits for a replica fails for the first seconds).
        if all && let Ok(nodes) = cluster_nodes(ports[0]).await {
            for master in nodes.iter().filter(|n| n.master_of.is_none()) {
                all &= replica_online(master.port).await;
            }
            if all {
                return Ok(());
            }
        }
        if started.elapsed() > std::time::Duration::from_secs(60) {
            return Err(wasikv_core::Error::new(
                wasikv_core::ErrorKind::Unavailable,
                "the private redis cluster did not become ok within 60 s",
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
