//! Options of a Redis bucket.

use serde::Deserialize;

/// `[buckets.NAME]` options for `provider = "redis"`.
///
/// ```toml
/// [buckets.cache]
/// provider = "redis"
/// url = "redis://127.0.0.1:6379/0"   # database number in the path; user:password@ for AUTH
/// prefix = "app1:cache:"             # default: "<bucket>:"
/// # TLS: a rediss:// url; the system's roots are trusted, or only ca_file when given
/// ca_file = "/etc/wasikv/redis-ca.pem"
/// connect_timeout_ms = 5000
/// response_timeout_ms = 10000       # per command; 0: only the host's operation timeout
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port/db`. Holds secrets: never logged.
    pub url: String,
    /// Key prefix of the bucket. Default: the bucket name and `:`.
    pub prefix: Option<String>,
    /// PEM file of the CA(s) to trust for `rediss://` instead of the system roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// Time to establish a connection, in milliseconds.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Time one command may wait for its reply, in milliseconds (0: no
    /// limit of its own; the host's `limits.operation_timeout_ms` bounds
    /// every call anyway). The redis crate's default, 500 ms, failed writes
    /// of 16 MiB values on a busy machine.
    #[serde(default = "default_response_timeout_ms")]
    pub response_timeout_ms: u64,
}

fn default_connect_timeout_ms() -> u64 {
    5_000
}

fn default_response_timeout_ms() -> u64 {
    10_000
}

impl RedisConfig {
    /// The prefix of `bucket`.
    pub fn prefix(&self, bucket: &str) -> String {
        self.prefix.clone().unwrap_or_else(|| format!("{bucket}:"))
    }
}
