//! The embedded provider: `provider = "embedded"`, a durable
//! [redb](https://www.redb.org) file and no server.
//!
//! Each bucket is a table of the file; values are stored with an 8-byte
//! version taken from a write counter kept in the same file and bumped in the
//! same transaction as every write, so versions never repeat, across restarts
//! too. Every write commits with `Durability::Immediate` (fsync): a write is
//! acknowledged only once it is on disk, and survives a crash of the process.
//!
//! Layout (the same in every provider crate): [`config`], [`core`] (the
//! database file and the one native-error mapper), [`backend`] (the
//! [`Bucket`](wasikv_core::Bucket) implementation and its capability declaration).

pub mod backend;
pub mod config;
pub mod core;

pub use backend::{EmbeddedBucket, EmbeddedProvider};
pub use config::EmbeddedConfig;
