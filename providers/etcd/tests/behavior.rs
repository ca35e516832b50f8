//! The behavior suite against a real etcd (`WASIKV_TEST_ETCD_ENDPOINT`,
//! default `http://127.0.0.1:12379`, started by `scripts/services.sh`). Each
//! case uses a fresh prefix and deletes its keys. An unreachable server fails
//! the suite.

fn main() -> std::process::ExitCode {
    wasikv_core::suite::run(
        "etcd",
        wasikv_core::suite::Level::Provider,
        wasikv_etcd::testing::opener(),
    )
}
