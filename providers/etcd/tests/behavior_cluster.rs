//! The behavior suite against a 3-member etcd cluster
//! (`WASIKV_TEST_ETCD_CLUSTER`, default the members `scripts/services.sh`
//! starts on 22379, 22479 and 22579), the client given all three endpoints.
//! Each case uses a fresh prefix and deletes its keys. An unreachable
//! cluster fails the suite.

fn main() -> std::process::ExitCode {
    wasikv_core::suite::run(
        "etcd-cluster",
        wasikv_core::suite::Level::Provider,
        wasikv_etcd::testing::opener_for(wasikv_etcd::testing::test_cluster_endpoints()),
    )
}
