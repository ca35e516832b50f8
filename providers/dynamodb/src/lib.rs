//! The AWS DynamoDB provider: `provider = "dynamodb"` (`aws-sdk-dynamodb`).
//!
//! A bucket is a table, or the keys under a prefix in a shared table whose
//! partition key (type `S`, no sort key) holds `prefix + id`. Reads are
//! strongly consistent. CAS compares a version attribute that every write sets
//! to a fresh random token (no ABA, also across delete and re-create);
//! create-if-absent is `attribute_not_exists`. `increment` is a native
//! `UpdateItem ADD` on a number attribute, conditioned so that the sum stays in
//! `i64`; a decimal value written by `set` is converted to a number once, by a
//! conditional write. Batches are `BatchGetItem` (100 keys) and
//! `BatchWriteItem` (25 requests), resending unprocessed items with backoff.
//! Listing is a consistent `Scan` (filtered by the prefix in a shared table).
//!
//! Layout: [`config`], [`core`] (client, item layout, table checks,
//! native-error mapper), [`backend`] (the `Bucket` implementation and its
//! capabilities).

pub mod backend;
pub mod config;
pub mod core;
#[doc(hidden)]
pub mod testing;
pub mod watch;

pub use backend::{DynamoBucket, DynamoProvider};
pub use config::DynamoConfig;
