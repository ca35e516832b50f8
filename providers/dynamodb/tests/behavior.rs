//! The behavior suite against DynamoDB (`WASIKV_TEST_DYNAMODB_ENDPOINT`,
//! default the moto server `scripts/services.sh` starts at
//! `http://127.0.0.1:14566`). Each case uses a fresh prefix in one shared table
//! and deletes its keys. An unreachable server fails the suite.

fn main() -> std::process::ExitCode {
    wasikv_core::suite::run(
        "dynamodb",
        wasikv_core::suite::Level::Provider,
        wasikv_dynamodb::testing::opener(),
    )
}
