//! Options of a NATS JetStream key-value bucket.

use serde::Deserialize;

/// `[buckets.NAME]` options for `provider = "nats"`.
///
/// ```toml
/// [buckets.cache]
/// provider = "nats"
/// url = "nats://127.0.0.1:4222"   # or tls://...; several: "nats://a:4222,nats://b:4222"
/// kv_bucket = "cache"             # the JetStream KV bucket; default: the bucket name
/// prefix = ""                     # default: none (the whole KV bucket); else a key prefix token
/// create = true                   # create the KV bucket when missing (with the options below)
/// replicas = 1
/// history = 1
/// max_value_bytes = 1048576       # the KV bucket's value limit when created; default: the server's payload limit
/// # credentials: one of user + password, token, nkey (a seed), creds_file
/// # TLS: tls:// urls or tls_required = true; ca_file trusts a private CA
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// Server URL(s), comma-separated.
    pub url: String,
    /// The JetStream key-value bucket. Default: the wasikv bucket's name.
    pub kv_bucket: Option<String>,
    /// A key prefix inside the KV bucket (tokens of `[A-Za-z0-9_-]`,
    /// separated by `.`); keys are stored as `PREFIX.ID`. Default: none.
    #[serde(default)]
    pub prefix: String,
    /// Create the KV bucket when it does not exist.
    #[serde(default)]
    pub create: bool,
    /// Replicas of a KV bucket wasikv creates.
    #[serde(default = "default_replicas")]
    pub replicas: usize,
    /// Values kept per key by a KV bucket wasikv creates (1..=64).
    #[serde(default = "default_history")]
    pub history: i64,
    /// Largest value of a KV bucket wasikv creates; default: the server's
    /// payload limit.
    pub max_value_bytes: Option<usize>,
    /// User, with `password`.
    pub user: Option<String>,
    /// Password. Never logged.
    pub password: Option<String>,
    /// Token. Never logged.
    pub token: Option<String>,
    /// NKey seed (`SU...`). Never logged.
    pub nkey: Option<String>,
    /// Credentials file (JWT and NKey seed, as `nsc` writes it).
    pub creds_file: Option<std::path::PathBuf>,
    /// Require TLS even for `nats://` urls.
    #[serde(default)]
    pub tls_required: bool,
    /// PEM file of the CA(s) to trust for TLS instead of the system roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// Time to establish the connection, in milliseconds.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Longest wait for a JetStream reply, in milliseconds.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
}

fn default_replicas() -> usize {
    1
}
fn default_history() -> i64 {
    1
}
fn default_connect_timeout_ms() -> u64 {
    5_000
}
fn default_request_timeout_ms() -> u64 {
    5_000
}

impl NatsConfig {
    /// A bucket on `url` with every other option at its default.
    pub fn for_url(url: impl Into<String>) -> Self {
        NatsConfig {
            url: url.into(),
            kv_bucket: None,
            prefix: String::new(),
            create: false,
            replicas: default_replicas(),
            history: default_history(),
            max_value_bytes: None,
            user: None,
            password: None,
            token: None,
            nkey: None,
            creds_file: None,
            tls_required: false,
            ca_file: None,
            connect_timeout_ms: default_connect_timeout_ms(),
            request_timeout_ms: default_request_timeout_ms(),
        }
    }

    /// The KV bucket of wasikv bucket `bucket`.
    pub fn kv_bucket(&self, bucket: &str) -> String {
        self.kv_bucket.clone().unwrap_or_else(|| bucket.to_string())
    }

    /// The server urls.
    pub fn urls(&self) -> Vec<&str> {
        self.url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect()
    }

    /// Whether the connection uses TLS.
    pub fn tls(&self) -> bool {
        self.tls_required || self.urls().iter().any(|u| u.starts_with("tls://"))
    }

    /// Identity of the connection: everything that makes one client
    /// differ from another, credentials included (buckets with other
    /// credentials get their own connection). Holds secrets: never printed.
    pub fn connection_identity(&self) -> String {
        format!(
            "{}|{:?}|{:?}|{:?}|{:?}|{:?}|{}|{:?}|{}|{}",
            self.url,
            self.user,
            self.password,
            self.token,
            self.nkey,
            self.creds_file,
            self.tls(),
            self.ca_file,
            self.connect_timeout_ms,
            self.request_timeout_ms,
        )
    }
}
