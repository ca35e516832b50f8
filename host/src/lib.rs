//! wasikv's host: serves `wasi:keyvalue@0.2.0-draft2` to wasmtime components
//! over any configured store.
//!
//! * [`Config`]: `wasikv.toml` + `WASIKV_` environment.
//! * [`admin`]: operator work on buckets (`wasikv kv`): copy, export, import.
//! * [`Buckets`]: bucket identifiers to provider buckets, allow-lists, one
//!   connection per distinct store, host limits and timeouts.
//! * [`emulate`]: the one layer that emulates what a store lacks.
//! * [`add_to_linker`], [`WasiKeyValueCtx`], [`WasiKeyValue`]: embed the
//!   interface in your own wasmtime host.
//! * [`Runtime`]: runs `wasi:cli/run` components and prepares HTTP and
//!   watch-service components: one engine, component cache, linker and
//!   bucket wiring for `run`, `watch` and `serve`.
//! * [`serve`]: serves `wasi:http/incoming-handler` components over HTTP/1.1
//!   with limits, graceful shutdown and an admin listener.
//! * [`metrics`]: Prometheus metrics of key-value calls and HTTP requests.

pub mod admin;
pub mod buckets;
pub mod chunked;
pub mod config;
pub mod cursor;
mod deadline;
pub mod emulate;
pub mod keyvalue;
pub mod keyvalue_draft;
pub mod matrix;
pub mod metrics;
pub mod registry;
pub mod runtime;
pub mod serve;

pub use buckets::{Buckets, OpenBucket};
pub use config::{AccessConfig, Config, ServeConfig, Unlisted};
pub use keyvalue::{
    GetManyShape, WasiKeyValue, WasiKeyValueCtx, add_to_linker, add_to_linker_with,
};
pub use metrics::Metrics;
pub use runtime::{
    Prepared, RunOptions, RunOutcome, Runtime, Stdio, Watch, WatchOptions, WatchReport,
};
