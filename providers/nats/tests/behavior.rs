//! The behavior suite against a real NATS server with JetStream
//! (`WASIKV_TEST_NATS_URL`, default `nats://127.0.0.1:4222`, the machine's
//! server). Each case uses a fresh prefix in the test KV bucket and deletes
//! its keys. An unreachable server fails the suite.

fn main() -> std::process::ExitCode {
    wasikv_core::suite::run(
        "nats",
        wasikv_core::suite::Level::Provider,
        wasikv_nats::testing::opener(),
    )
}
