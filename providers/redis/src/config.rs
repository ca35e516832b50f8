//! Options of a Redis bucket.

use serde::Deserialize;
use wasikv_core::{Error, ErrorKind, Result};

/// `[buckets.NAME]` options for `provider = "redis"`: a single server
/// (`url`) or a Redis Cluster (`cluster`), exactly one of them.
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
/// wait_replicas = 1                  # acknowledge a write once 1 replica has it (WAIT)
/// wait_timeout_ms = 1000
///
/// [buckets.sessions]
/// provider = "redis"
/// # seed nodes of a Redis Cluster (the rest are discovered); database 0 only
/// cluster = ["redis://127.0.0.1:17000", "redis://127.0.0.1:17001", "redis://127.0.0.1:17002"]
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port/db` of a single server. Holds
    /// secrets: never logged.
    pub url: Option<String>,
    /// Seed nodes of a Redis Cluster, `redis://[user:password@]host:port`
    /// each (all `redis://` or all `rediss://`, no database number). Holds
    /// secrets: never logged.
    pub cluster: Option<Vec<String>>,
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
    /// Replicas that must have a write before it is acknowledged (Redis
    /// `WAIT` after each write, on the master that took it). 0 (default):
    /// acknowledged when the master has it, so a master that fails before
    /// replicating loses it. See docs/reliability.md.
    #[serde(default)]
    pub wait_replicas: u32,
    /// How long a write waits for `wait_replicas`, in milliseconds; fewer
    /// replicas by then make the call fail as `unavailable` (the master has
    /// the write; it may or may not survive a failover).
    #[serde(default = "default_wait_timeout_ms")]
    pub wait_timeout_ms: u64,
}

fn default_connect_timeout_ms() -> u64 {
    5_000
}

fn default_response_timeout_ms() -> u64 {
    10_000
}

fn default_wait_timeout_ms() -> u64 {
    1_000
}

/// Where a bucket's store is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology<'a> {
    /// One server (and its database) at this url.
    Single(&'a str),
    /// A Redis Cluster, from these seed nodes.
    Cluster(&'a [String]),
}

impl RedisConfig {
    /// The options of a bucket on the single server at `url`, every other
    /// option at its default.
    pub fn for_url(url: impl Into<String>) -> Self {
        RedisConfig {
            url: Some(url.into()),
            ..Self::defaults()
        }
    }

    /// The options of a bucket on the Redis Cluster with these seed nodes,
    /// every other option at its default.
    pub fn for_cluster(nodes: Vec<String>) -> Self {
        RedisConfig {
            cluster: Some(nodes),
            ..Self::defaults()
        }
    }

    fn defaults() -> Self {
        RedisConfig {
            url: None,
            cluster: None,
            prefix: None,
            ca_file: None,
            connect_timeout_ms: default_connect_timeout_ms(),
            response_timeout_ms: default_response_timeout_ms(),
            wait_replicas: 0,
            wait_timeout_ms: default_wait_timeout_ms(),
        }
    }

    /// The prefix of `bucket`.
    pub fn prefix(&self, bucket: &str) -> String {
        self.prefix.clone().unwrap_or_else(|| format!("{bucket}:"))
    }

    /// The single server or the cluster: exactly one of `url` and `cluster`.
    pub fn topology(&self) -> Result<Topology<'_>> {
        match (&self.url, &self.cluster) {
            (Some(url), None) => Ok(Topology::Single(url)),
            (None, Some(nodes)) if !nodes.is_empty() => Ok(Topology::Cluster(nodes)),
            (None, Some(_)) => Err(Error::new(
                ErrorKind::InvalidConfig,
                "cluster lists no nodes: give at least one redis:// address of the cluster",
            )),
            (Some(_), Some(_)) => Err(Error::new(
                ErrorKind::InvalidConfig,
                "both url and cluster are set: url is one server, cluster the seed nodes of a Redis Cluster; keep one",
            )),
            (None, None) => Err(Error::new(
                ErrorKind::InvalidConfig,
                "missing url (one server) or cluster (seed nodes of a Redis Cluster)",
            )),
        }
    }

    /// The urls this config connects to (the one server, or the seeds).
    pub fn urls(&self) -> Vec<&str> {
        match self.topology() {
            Ok(Topology::Single(url)) => vec![url],
            Ok(Topology::Cluster(nodes)) => nodes.iter().map(String::as_str).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Whether the urls use TLS (`rediss://`).
    pub fn tls(&self) -> bool {
        self.urls().iter().any(|u| u.starts_with("rediss://"))
    }
}
