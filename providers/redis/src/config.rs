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
