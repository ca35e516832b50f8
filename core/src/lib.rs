//! Core of wasikv: the provider traits every key-value store implements, the
//! capability matrix, the error type, the key codec and the behavior suite.
//!
//! A provider has three levels, as in OpenDAL and Spin's key-value factor:
//!
//! * a [`Provider`] (one per store type) validates a bucket's configuration
//!   into a [`BucketPlan`] and connects [`Store`]s;
//! * a [`Store`] holds one connection (client, pool, file) shared by every
//!   bucket configured on it;
//! * a [`Bucket`] is a namespace on the store (prefix, table, container,
//!   collection) on which every operation runs.
//!
//! The required [`Bucket`] surface is small: versioned `get`, conditional
//! `set`, `delete`, `exists` and paged `list`. Increment and the batch
//! operations are optional: a provider overrides them only where its store does
//! them natively and declares so in its [`Capabilities`]. The host emulates the
//! rest once, for every store.

pub mod capability;
pub mod chunks;
pub mod codec;
pub mod counter;
pub mod error;
pub mod expiry;
pub mod provider;
#[cfg(feature = "suite")]
pub mod suite;

pub use capability::{
    BatchAtomicity, Capabilities, Consistency, EmulationScope, Operation, Support,
};
pub use codec::KeyCodec;
pub use error::{Error, ErrorKind, Result};
pub use expiry::Expiry;
pub use provider::{
    Bucket, BucketPlan, Change, ChangeStream, Endpoint, ImmediateBucket, ListPage, Location,
    Namespace, OpenRequest, Options, Provider, Store, Version, Versioned, WriteCondition,
    WriteOutcome, get_many_too_large,
};
