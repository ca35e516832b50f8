//! The etcd provider: `provider = "etcd"` (etcd v3 API over gRPC).
//!
//! A bucket is a key prefix. CAS versions are etcd's own `mod_revision`
//! (global, monotonic, never reused: no ABA); create-if-absent compares
//! `create_revision == 0`. Batches are transactions of up to 128 operations
//! (etcd's default `--max-txn-ops`), split further so a request stays under
//! etcd's request size limit. Listing is a range read in key order with a
//! limit, continued after the last key: exactly once. `increment` is not native
//! (etcd has no arithmetic): the host emulates it with a CAS loop.
//!
//! Layout: [`config`], [`core`] (client, key ranges, native-error mapper),
//! [`backend`] (the `Bucket` implementation and its capabilities),
//! [`watch`] (the change feed).

pub mod backend;
pub mod config;
pub mod core;
#[doc(hidden)]
pub mod testing;
pub mod watch;

pub use backend::{EtcdBucket, EtcdProvider};
pub use config::EtcdConfig;
