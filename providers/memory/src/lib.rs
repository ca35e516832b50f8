//! The in-memory provider: `provider = "memory"`.
//!
//! Every bucket is a sorted map shared by all opens and all component
//! instances of one host. Nothing survives the process. Versions come from one
//! process-wide write counter, so a delete followed by a re-create never
//! reuses a version.
//!
//! Layout (the same in every provider crate): [`config`] (options),
//! [`core`] (the store and its maps), [`backend`] (the [`Bucket`](wasikv_core::Bucket)
//! implementation and its capability declaration).

pub mod backend;
pub mod config;
pub mod core;

pub use backend::{MemoryBucket, MemoryProvider};
pub use config::MemoryConfig;
