//! The behavior suite against a real memcached (`WASIKV_TEST_MEMCACHED_ADDRESS`,
//! default `127.0.0.1:12211`, started by `scripts/services.sh`). Each case uses a
//! fresh prefix. memcached cannot list keys, so the listing cases must report
//! `unsupported`, and the suite cannot delete what a case wrote: the test
//! server is private to the tests.

fn main() -> std::process::ExitCode {
    wasikv_core::suite::run(
        "memcached",
        wasikv_core::suite::Level::Provider,
        wasikv_memcached::testing::opener(),
    )
}
