//! Options of an etcd bucket.

use serde::Deserialize;

/// `[buckets.NAME]` options for `provider = "etcd"`.
///
/// ```toml
/// [buckets.config]
/// provider = "etcd"
/// endpoints = ["http://127.0.0.1:2379"]
/// prefix = "app1/config/"          # default: "<bucket>/"
/// username = "app"                 # optional, with password
/// password = "secret"
/// # TLS: https:// endpoints; the system's roots are trusted, or only ca_file when given
/// ca_file = "/etc/wasikv/etcd-ca.pem"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EtcdConfig {
    /// Client URLs of the cluster.
    pub endpoints: Vec<String>,
    /// Key prefix of the bucket. Default: the bucket name and `/`.
    pub prefix: Option<String>,
    /// User for etcd authentication.
    pub username: Option<String>,
    /// Password for etcd authentication. Never logged.
    pub password: Option<String>,
    /// PEM file of the CA(s) to trust for `https://` endpoints instead of the system roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// Time to establish a connection, in milliseconds.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
}

fn default_connect_timeout_ms() -> u64 {
    5_000
}

impl EtcdConfig {
    /// The prefix of `bucket`.
    pub fn prefix(&self, bucket: &str) -> String {
        self.prefix.clone().unwrap_or_else(|| format!("{bucket}/"))
    }

    /// Identity of the connection: endpoints and user (not the password).
    pub fn connection_identity(&self) -> String {
        format!(
            "{}|{}",
            self.endpoints.join(","),
            self.username.as_deref().unwrap_or("")
        )
    }
}
