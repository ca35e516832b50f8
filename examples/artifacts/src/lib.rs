//! Paths of the guest components in `examples/guests`, built for
//! `wasm32-wasip2` by this crate's build script.
//!
//! `foreach_guest!(mac)` calls `mac!(name)` for every guest; the host's tests
//! use it to fail the build when a guest has no test.

include!(concat!(env!("OUT_DIR"), "/guests.rs"));
