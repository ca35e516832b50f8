//! The behavior suite against a Redis Cluster (`WASIKV_TEST_REDIS_CLUSTER`,
//! default the 3 masters and 3 replicas `scripts/services.sh` starts on
//! 17000-17005, three masters given as seeds). Each case uses a fresh prefix
//! and deletes its keys. An unreachable cluster fails the suite.

fn main() -> std::process::ExitCode {
    wasikv_core::suite::run(
        "redis-cluster",
        wasikv_core::suite::Level::Provider,
        wasikv_redis::testing::cluster_opener(),
    )
}
