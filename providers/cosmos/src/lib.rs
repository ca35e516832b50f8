//! The Azure Cosmos DB (NoSQL API) provider: `provider = "cosmos"`, on
//! Microsoft's `azure_data_cosmos` SDK.
//!
//! A bucket is a container, or one logical partition of a container
//! (`partition`). Item ids are keys through the key codec (`/`, `\`, `?`, `#`
//! escaped; ids over 1023 bytes hashed with the original key kept in the
//! item); the value is base64 text in `v` (a JSON number written by another
//! client reads as its text). CAS versions are ETags (`If-Match`; create for
//! create-if-absent). `increment` is the host's CAS loop on them (Cosmos'
//! `incr` patch would add to non-integer numbers); listing is a query with the
//! SDK's continuation tokens; in a partition-scoped bucket, `get-many` is one
//! query and `set-many` transactional batches.
//!
//! Layout: [`config`], [`core`] (client, item shape, error mapper),
//! [`backend`] (the `Bucket` implementation and its capabilities).

pub mod backend;
pub mod config;
pub mod core;
#[doc(hidden)]
pub mod testing;

pub use backend::{CosmosBucket, CosmosProvider};
pub use config::CosmosConfig;
