//! Test support (not part of the stable API): buckets on the test server for
//! the behavior suite, each on the namespace the suite names.

use std::sync::Arc;

use tokio::sync::OnceCell;
use wasikv_core::provider::OpenFuture;
use wasikv_core::{Bucket, OpenRequest};

use crate::core::EtcdStore;
use crate::{EtcdBucket, EtcdConfig};

/// The test server: `WASIKV_TEST_ETCD_ENDPOINT`, default the one
/// `scripts/services.sh` starts.
pub fn test_endpoint() -> String {
    std::env::var("WASIKV_TEST_ETCD_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:12379".into())
}

/// The test cluster's client endpoints: `WASIKV_TEST_ETCD_CLUSTER`
/// (comma-separated), default the three members `scripts/services.sh` starts.
pub fn test_cluster_endpoints() -> Vec<String> {
    std::env::var("WASIKV_TEST_ETCD_CLUSTER")
        .unwrap_or_else(|_| {
            "http://127.0.0.1:22379,http://127.0.0.1:22479,http://127.0.0.1:22579".into()
        })
        .split(',')
        .map(str::to_string)
        .collect()
}

/// Opens a bucket with prefix `wasikv-test/<namespace>/` on one shared
/// connection to the test server.
pub fn opener() -> impl Fn(OpenRequest) -> OpenFuture + Send + Sync + 'static {
    opener_for(vec![test_endpoint()])
}

/// Like [`opener`], on one shared connection to `endpoints` (the members of
/// one cluster).
pub fn opener_for(
    endpoints: Vec<String>,
) -> impl Fn(OpenRequest) -> OpenFuture + Send + Sync + 'static {
    let store: Arc<OnceCell<EtcdStore>> = Arc::new(OnceCell::new());
    move |request: OpenRequest| {
        let store = store.clone();
        let endpoints = endpoints.clone();
        Box::pin(async move {
            let mut config = config_for(&endpoints[0], 5_000);
            config.endpoints = endpoints;
            let store = store
                .get_or_try_init(|| EtcdStore::connect(&config))
                .await?;
            let prefix = format!("wasikv-test/{}/", request.namespace);
            Ok(Arc::new(
                EtcdBucket::new(store.kv.clone(), &prefix)
                    .with_watch(store.watch.clone())
                    .expiring(store.lease.clone(), request.ttl),
            ) as Arc<dyn Bucket>)
        })
    }
}

/// The command of a private single-node etcd for a test: `name`, data under
/// `data`, clients at `client_url` (http:// or https://, then add the
/// certificate flags), peers on 127.0.0.1:`peer_port`.
pub fn server_command(
    name: &str,
    data: &std::path::Path,
    client_url: &str,
    peer_port: u16,
) -> std::process::Command {
    let peer = format!("http://127.0.0.1:{peer_port}");
    let mut command = std::process::Command::new("etcd");
    command
        .args(["--name", name, "--data-dir"])
        .arg(data)
        .args(["--listen-client-urls", client_url])
        .args(["--advertise-client-urls", client_url])
        .args(["--listen-peer-urls", &peer])
        .args(["--initial-advertise-peer-urls", &peer])
        .args(["--initial-cluster", &format!("{name}={peer}")]);
    command
}

/// Options of a bucket on the server at `endpoint` (no prefix, no
/// credentials, no TLS).
pub fn config_for(endpoint: &str, connect_timeout_ms: u64) -> EtcdConfig {
    EtcdConfig {
        endpoints: vec![endpoint.to_string()],
        prefix: None,
        username: None,
        password: None,
        ca_file: None,
        connect_timeout_ms,
    }
}

/// The command of member `index` of a private 3-member etcd cluster whose
/// members' client ports are `client_ports` (peers on the next port of
/// each), its data under `dir`. A killed member started again with the
/// same command rejoins from its data.
pub fn cluster_member_command(
    index: usize,
    client_ports: &[u16],
    dir: &std::path::Path,
) -> std::process::Command {
    let members: Vec<String> = client_ports
        .iter()
        .enumerate()
        .map(|(i, port)| format!("m{i}=http://127.0.0.1:{}", port + 1))
        .collect();
    let name = format!("m{index}");
    let client = format!("http://127.0.0.1:{}", client_ports[index]);
    let peer = format!("http://127.0.0.1:{}", client_ports[index] + 1);
    let mut command = std::process::Command::new("etcd");
    command
        .args(["--name", &name, "--data-dir"])
        .arg(dir.join(&name))
        .args(["--listen-client-urls", &client])
        .args(["--advertise-client-urls", &client])
        .args(["--listen-peer-urls", &peer])
        .args(["--initial-advertise-peer-urls", &peer])
        .args(["--initial-cluster", &members.join(",")])
        .args(["--initial-cluster-state", "new"])
        .args(["--initial-cluster-token", "wasikv-private"])
        // Quick elections for fault tests: heartbeats every 50 ms, a
        // leader taken as gone after 500 ms.
        .args(["--heartbeat-interval", "50", "--election-timeout", "500"]);
    command
}

/// The index in `endpoints` of the member that is the cluster's leader,
/// asked of every member that answers within a second; `None` while
/// there is no leader they agree on.
pub async fn leader(endpoints: &[String]) -> Option<usize> {
    let mut found = None;
    for (i, endpoint) in endpoints.iter().enumerate() {
        let options = etcd_client::ConnectOptions::new()
            .with_connect_timeout(std::time::Duration::from_secs(1))
            .with_timeout(std::time::Duration::from_secs(1));
        let Ok(mut client) = etcd_client::Client::connect([endpoint], Some(options)).await else {
            continue;
        };
        let Ok(status) = client.status().await else {
            continue;
        };
        let me = status.header().map(|h| h.member_id());
        if me == Some(status.leader()) {
            found = Some(i);
        }
    }
    found
}
