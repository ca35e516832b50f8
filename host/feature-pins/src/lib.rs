//! No code: this crate only depends on crates that wasikv's providers share,
//! with the features the all-features build gives them (a "workspace hack",
//! as `cargo hakari` makes).
//!
//! Cargo compiles a dependency once per feature set. Without the pins, a
//! build with one provider feature (`--features redis`, what an operator
//! picks for one cloud) gives shared crates such as `tokio` or `syn` fewer
//! features than the all-features build, and everything above them, wasmtime
//! included, compiles again: 7 minutes per provider on 2 cores. With the
//! pins every build reuses the same compiled dependencies, so CI builds the
//! CLI for each provider alone in about a minute each, and the binary an
//! operator builds for one cloud is built from the same dependency features
//! the tests ran with.
