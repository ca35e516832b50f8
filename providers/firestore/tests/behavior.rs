//! The behavior suite against the Cloud Firestore emulator
//! (`WASIKV_TEST_FIRESTORE_EMULATOR`, default `127.0.0.1:18686`, started by
//! `scripts/services.sh`). Each case uses a fresh collection and deletes its
//! documents. An unreachable emulator fails the suite.

fn main() -> std::process::ExitCode {
    wasikv_core::suite::run(
        "firestore",
        wasikv_core::suite::Level::Provider,
        wasikv_firestore::testing::opener(),
    )
}
