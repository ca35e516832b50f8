//! Helpers shared by the host's integration tests that run guests.

#![allow(dead_code)] // each test binary uses a subset

pub mod fleet;
pub mod served;

use std::path::Path;

use wasikv_host::{Config, RunOptions, RunOutcome, Runtime, Stdio};

/// A config over a temporary directory: the default bucket and the cache live there.
pub fn config(dir: &Path, extra: &str) -> Config {
    let places = format!(
        "[runtime]\ndata_dir = {:?}\ncache_dir = {:?}\n",
        dir.join("data"),
        dir.join("cache")
    );
    let text = if extra.contains("[runtime]\n") {
        extra.replace("[runtime]\n", &places)
    } else {
        format!("{places}{extra}")
    };
    Config::from_toml(&text).unwrap_or_else(|e| panic!("bad test config: {e}\n{text}"))
}

/// Runs `wasm` as component `name` to completion; a trap fails the test.
pub async fn run(
    runtime: &Runtime,
    wasm: &str,
    name: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> RunOutcome {
    let component = runtime.load(Path::new(wasm)).expect("load component");
    runtime
        .run(
            &component,
            RunOptions {
                name: name.to_string(),
                args: args.iter().map(|s| s.to_string()).collect(),
                env: env
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                stdio: Stdio::Capture,
            },
        )
        .await
        .expect("the component ran")
}

/// Config of a bucket on every compiled-in networked provider, each on a
/// fresh namespace (`run_id`) of the test server, and the bucket names.
#[cfg_attr(
    not(any(
        feature = "redis",
        feature = "etcd",
        feature = "memcached",
        feature = "dynamodb",
        feature = "firestore",
        feature = "cosmos",
        feature = "postgres",
        feature = "nats"
    )),
    allow(unused_mut, unused_variables)
)]
pub fn networked_buckets(run_id: &str) -> (String, Vec<&'static str>) {
    let mut buckets = String::new();
    let mut names: Vec<&'static str> = Vec::new();
    #[cfg(feature = "redis")]
    {
        let url = wasikv_redis::testing::test_url();
        buckets.push_str(&format!(
            "[buckets.redis]\nprovider = \"redis\"\nurl = {url:?}\nprefix = \"wasikv-test:guest-{run_id}:\"\n"
        ));
        names.push("redis");
        let nodes = wasikv_redis::testing::test_cluster_nodes();
        buckets.push_str(&format!(
            "[buckets.redis-cluster]\nprovider = \"redis\"\ncluster = {nodes:?}\nprefix = \"wasikv-test:guest-{run_id}:\"\n"
        ));
        names.push("redis-cluster");
    }
    #[cfg(feature = "etcd")]
    {
        let endpoint = wasikv_etcd::testing::test_endpoint();
        buckets.push_str(&format!(
            "[buckets.etcd]\nprovider = \"etcd\"\nendpoints = [{endpoint:?}]\nprefix = \"wasikv-test/guest-{run_id}/\"\n"
        ));
        names.push("etcd");
        let endpoints = wasikv_etcd::testing::test_cluster_endpoints();
        buckets.push_str(&format!(
            "[buckets.etcd-cluster]\nprovider = \"etcd\"\nendpoints = {endpoints:?}\nprefix = \"wasikv-test/guest-{run_id}/\"\n"
        ));
        names.push("etcd-cluster");
    }
    #[cfg(feature = "memcached")]
    {
        let address = wasikv_memcached::testing::test_address();
        buckets.push_str(&format!(
            "[buckets.memcached]\nprovider = \"memcached\"\naddress = {address:?}\nprefix = \"wasikv-test:guest-{run_id}:\"\n"
        ));
        names.push("memcached");
    }
    #[cfg(feature = "dynamodb")]
    {
        use wasikv_dynamodb::testing::{MOTO_MAX_ITEM_BYTES, TEST_TABLE, test_endpoint};
        buckets.push_str(&format!(
            "[buckets.dynamodb]\nprovider = \"dynamodb\"\ntable = {TEST_TABLE:?}\nprefix = \"guest-{run_id}/\"\n\
             create_table = true\nregion = \"us-east-1\"\nendpoint = {:?}\n\
             access_key_id = \"test\"\nsecret_access_key = \"test\"\nmax_item_bytes = {MOTO_MAX_ITEM_BYTES}\n",
            test_endpoint()
        ));
        names.push("dynamodb");
    }
    #[cfg(feature = "firestore")]
    {
        use wasikv_firestore::testing::{TEST_PROJECT, test_emulator_host};
        buckets.push_str(&format!(
            "[buckets.firestore]\nprovider = \"firestore\"\nproject_id = {TEST_PROJECT:?}\n\
             collection = \"guest-{run_id}\"\nemulator_host = {:?}\n",
            test_emulator_host()
        ));
        names.push("firestore");
    }
    #[cfg(feature = "cosmos")]
    {
        use wasikv_cosmos::testing::{SHARED_CONTAINER, TEST_DATABASE, TEST_KEY, test_endpoint};
        let account = format!(
            "provider = \"cosmos\"\nendpoint = {:?}\nkey = {TEST_KEY:?}\ndatabase = {TEST_DATABASE:?}\ncreate = true\n",
            test_endpoint()
        );
        buckets.push_str(&format!(
            "[buckets.cosmos]\n{account}container = \"guest-{run_id}\"\n\
             [buckets.cosmos-partition]\n{account}container = {SHARED_CONTAINER:?}\npartition = \"guest-{run_id}\"\n"
        ));
        names.push("cosmos");
        names.push("cosmos-partition");
    }
    #[cfg(feature = "postgres")]
    {
        use wasikv_postgres::testing::{TEST_TABLE, test_url};
        buckets.push_str(&format!(
            "[buckets.postgres]\nprovider = \"postgres\"\nurl = {:?}\ntable = {TEST_TABLE:?}\n\
             prefix = \"wasikv-test/guest-{run_id}/\"\ncreate = true\n",
            test_url()
        ));
        names.push("postgres");
    }
    #[cfg(feature = "nats")]
    {
        use wasikv_nats::testing::{TEST_KV_BUCKET, prefix_token, test_url};
        let token = prefix_token(run_id);
        buckets.push_str(&format!(
            "[buckets.nats]\nprovider = \"nats\"\nurl = {:?}\nkv_bucket = {TEST_KV_BUCKET:?}\n\
             prefix = \"wasikv-test.guest-{token}\"\ncreate = true\n",
            test_url()
        ));
        names.push("nats");
    }
    (buckets, names)
}
