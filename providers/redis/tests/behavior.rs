//! The behavior suite against a real Redis (`WASIKV_TEST_REDIS_URL`, default
//! the machine's server at 127.0.0.1:6379, database 0). Each case uses a fresh
//! prefix and deletes its keys. An unreachable server fails the suite.

fn main() -> std::process::ExitCode {
    wasikv_core::suite::run(
        "redis",
        wasikv_core::suite::Level::Provider,
        wasikv_redis::testing::opener(),
    )
}
