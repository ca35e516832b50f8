//! The host modules the fuzz targets exercise, compiled from the host's own
//! source files: neither needs wasmtime, and building the host crate itself
//! with coverage flags would compile wasmtime a second time.

#![allow(dead_code)]

/// `host/src/cursor.rs`: list-keys cursors.
#[path = "../../host/src/cursor.rs"]
pub mod cursor;

/// `host/src/config.rs`: the configuration.
#[path = "../../host/src/config.rs"]
pub mod config;
