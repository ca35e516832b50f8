//! Options of a memcached bucket.

use serde::Deserialize;

/// `[buckets.NAME]` options for `provider = "memcached"`.
///
/// ```toml
/// [buckets.sessions]
/// provider = "memcached"
/// address = "127.0.0.1:11211"
/// prefix = "app1:sessions:"      # default: "<bucket>:"
/// max_item_bytes = 1048576       # the server's -I item size limit
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemcachedConfig {
    /// `host:port` of the server.
    pub address: String,
    /// Key prefix of the bucket (no spaces or control characters, at most
    /// 200 bytes). Default: the bucket name and `:`.
    pub prefix: Option<String>,
    /// The server's item size limit (`memcached -I`), in bytes.
    #[serde(default = "default_max_item_bytes")]
    pub max_item_bytes: usize,
    /// Most connections to the server.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// Time to connect and to wait for a reply, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_max_item_bytes() -> usize {
    1 << 20
}

fn default_pool_size() -> usize {
    16
}

fn default_timeout_ms() -> u64 {
    5_000
}

impl MemcachedConfig {
    /// The prefix of `bucket`.
    pub fn prefix(&self, bucket: &str) -> String {
        self.prefix.clone().unwrap_or_else(|| format!("{bucket}:"))
    }
}
