//! The NATS JetStream key-value provider: `provider = "nats"`.
//!
//! A bucket is a JetStream KV bucket (`kv_bucket`, created when asked), or
//! the keys under a prefix token in one. Keys are encoded into valid NATS
//! keys ([`core::encode_key`]: letters, digits, `-`, `/`, `=` and inner
//! dots as they are, other bytes `_XX`, the empty key `_`) and listed as
//! the original keys. CAS versions are entry revisions (stream sequences:
//! never reused, no ABA): `create` for create-if-absent, `update` with the
//! expected revision for a swap. Increment and the batches are the host's
//! emulation (NATS has neither); listing is exact, paged by the host's
//! cursor over a sorted pass of the bucket's keys. Watch is the host's
//! (process-local): a KV watcher reads messages still in the stream, so a
//! watcher behind by more than the bucket's `history` writes to a key
//! misses the values in between (seen in CI with history 1), against
//! "every change, in order".
//!
//! Layout: [`config`], [`core`] (connection, key codec, native-error
//! mapper), [`backend`] (the `Bucket` implementation and its
//! capabilities).

pub mod backend;
pub mod config;
pub mod core;
#[doc(hidden)]
pub mod testing;

pub use backend::{NatsBucket, NatsProvider};
pub use config::NatsConfig;
