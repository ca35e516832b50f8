//! Options of a Redis bucket.

use serde::Deserialize;

/// `[buckets.NAME]` options for `provider = "redis"`.
///
/// ```toml
/// [buckets.cache]
/// provider = "redis"
/// url = "redis://127.0.0.1:6379/0"   # database number in the path; user:password@ for AUTH
/// prefix = "app1:cache:"             # default: "<bucket>:"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port/db`. Holds secrets: never logged.
    pub url: String,
    /// Key prefix of the bucket. Default: the bucket name and `:`.
    pub prefix: Option<String>,
    /// Time to establish a connection, in milliseconds.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
}

fn default_connect_timeout_ms() -> u64 {
    5_000
}

impl RedisConfig {
    /// The prefix of `bucket`.
    pub fn prefix(&self, bucket: &str) -> String {
        self.prefix.clone().unwrap_or_else(|| format!("{bucket}:"))
    }
}
