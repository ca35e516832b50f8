//! The PostgreSQL provider: `provider = "postgres"`.
//!
//! A bucket is the rows of one table whose keys start with the bucket's
//! prefix (default `"<bucket>/"`; `prefix = ""` gives a bucket a table of
//! its own). The table is `(key bytea primary key, value bytea, version
//! bytea)`: keys are the prefix and the key's UTF-8 bytes (byte order, no
//! collation), values are stored as they are, and every write sets a fresh
//! 16-byte random version, so CAS (`UPDATE ... WHERE version = $expected`)
//! never meets an old version again (no ABA). `increment` is one `INSERT ...
//! ON CONFLICT DO UPDATE` that applies the counter rules in SQL; batches are
//! one statement each over array parameters (atomic); listing is keyset
//! paging on the primary key, exactly once. Watch is the host's
//! (process-local).
//!
//! Layout: [`config`], [`core`] (pool, TLS, statements, native-error
//! mapper), [`backend`] (the `Bucket` implementation and its capabilities).

pub mod backend;
pub mod config;
pub mod core;
#[doc(hidden)]
pub mod testing;

pub use backend::{PostgresBucket, PostgresProvider};
pub use config::PostgresConfig;
