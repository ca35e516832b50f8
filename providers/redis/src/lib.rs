//! The Redis provider: `provider = "redis"`.
//!
//! A bucket is a key prefix on one Redis database. Values are plain Redis
//! strings at `prefix + key`, so `redis-cli GET` reads them and `INCRBY`
//! works on counters. Next to the data, each bucket keeps two structures under
//! a name no UTF-8 key can have (it starts with byte `0xFF`):
//!
//! * a hash of version tokens (`0xFF wasikv 0xFF v: prefix`): every write
//!   through wasikv stores a fresh random token for its key;
//! * a sorted-set index of the bucket's keys (`0xFF wasikv 0xFF i: prefix`),
//!   paged with `ZRANGE BYLEX`, so `list-keys` returns every key exactly once
//!   (SCAN may repeat keys while Redis rehashes).
//!
//! Every write is one Lua script (atomic on the server) that updates the value,
//! its token and the index together. A CAS version is the token plus the
//! SHA-1 of the value, so a swap fails after any write through wasikv (even of
//! the same bytes, and after delete + re-create: tokens are never reused) and
//! after any write by another client that changed the bytes.
//!
//! Layout: [`config`], [`core`] (connection, scripts, native-error mapper),
//! [`backend`] (the `Bucket` implementation and its capabilities),
//! [`watch`] (the change feed).

pub mod backend;
pub mod config;
pub mod core;
#[doc(hidden)]
pub mod testing;
pub mod watch;

pub use backend::{RedisBucket, RedisProvider};
pub use config::RedisConfig;
