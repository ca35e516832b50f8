//! The Memcached provider: `provider = "memcached"`.
//!
//! A bucket is a key prefix on one memcached server. wasikv talks the text
//! protocol itself with a small async client ([`core`]): the `memcache` crate
//! is synchronous and its `add` cannot report `NOT_STORED` in text mode (it
//! returns `Ok(())`), which create-if-absent needs, and its binary mode was
//! measured ~3x slower per get.
//!
//! * Keys go through the key codec: spaces and control characters are
//!   escaped, and a key whose id would pass 250 bytes is stored under a
//!   SHA-256-derived id with the original key kept in the item (flag 1).
//! * CAS uses `gets`/`cas` with memcached's CAS unique (a server-wide counter:
//!   never reused, no ABA); create-if-absent is `add`.
//! * `get-many` is one `gets` of all keys; `set-many` and `delete-many` are
//!   pipelined on one connection (one round trip).
//! * `increment` is emulated by the host (CAS loop): memcached's `incr` is
//!   unsigned and wraps at 2^64, which breaks the signed counter contract.
//! * `list-keys` is unsupported: memcached has no reliable way to enumerate
//!   keys, and an index item could itself be evicted.
//!
//! Layout: [`config`], [`core`] (client, pool, native-error mapper),
//! [`backend`] (the `Bucket` implementation and its capabilities).

pub mod backend;
pub mod config;
pub mod core;
#[doc(hidden)]
pub mod testing;

pub use backend::{MAX_PREFIX_BYTES, MemcachedBucket, MemcachedProvider};
pub use config::MemcachedConfig;
