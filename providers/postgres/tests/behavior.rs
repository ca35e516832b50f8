//! The behavior suite against a real PostgreSQL (`WASIKV_TEST_POSTGRES_URL`,
//! default `postgres://postgres@127.0.0.1:5432/test`, the machine's server).
//! Each case uses a fresh prefix in the test table and deletes its keys. An
//! unreachable server fails the suite.

fn main() -> std::process::ExitCode {
    wasikv_core::suite::run(
        "postgres",
        wasikv_core::suite::Level::Provider,
        wasikv_postgres::testing::opener(),
    )
}
