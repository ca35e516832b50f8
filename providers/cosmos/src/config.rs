//! Options of a Cosmos DB bucket.

use serde::Deserialize;

/// `[buckets.NAME]` options for `provider = "cosmos"`.
///
/// ```toml
/// [buckets.sessions]
/// provider = "cosmos"
/// endpoint = "https://my-account.documents.azure.com:443/"
/// key = "..."                       # the account key (or WASIKV_BUCKETS__SESSIONS__KEY)
/// database = "wasikv"
/// container = "sessions"            # default: the bucket name
/// # partition = "tenant-a"          # all items in this one logical partition
/// # create = true                   # create the database and container (partition key /pk)
/// ```
///
/// Without `partition`, each item is its own logical partition (its id), so a
/// bucket scales across physical partitions and owns its container. With
/// `partition`, the bucket is one logical partition of a container that other
/// buckets may share: batches become transactional batches and listing a
/// single-partition query, within Cosmos' 20 GB per logical partition.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CosmosConfig {
    /// The account endpoint, e.g. `https://my-account.documents.azure.com:443/`.
    /// Certificate checks are relaxed only for a loopback emulator.
    pub endpoint: String,
    /// The account key (primary or secondary, base64). Never logged.
    pub key: String,
    /// The database. Default `wasikv`.
    #[serde(default = "default_database")]
    pub database: String,
    /// The container. Default: the bucket name.
    pub container: Option<String>,
    /// The partition key value shared by every item of the bucket; default:
    /// none, each item is partitioned by its own id.
    pub partition: Option<String>,
    /// Create the database and container (partition key path `/pk`) when
    /// missing. Default false: a missing container is `no-such-store`.
    #[serde(default)]
    pub create: bool,
    /// The preferred region for routing, e.g. `East US`. Default `East US`
    /// (a single-region account is served from its region whatever this says).
    #[serde(default = "default_region")]
    pub region: String,
    /// Longest time one operation may take end to end, retries included, in
    /// milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_database() -> String {
    "wasikv".into()
}

fn default_region() -> String {
    "East US".into()
}

fn default_timeout_ms() -> u64 {
    30_000
}

impl CosmosConfig {
    /// The container of `bucket`.
    pub fn container(&self, bucket: &str) -> String {
        self.container.clone().unwrap_or_else(|| bucket.to_string())
    }

    /// Identity of the connection: one client per account, key and settings.
    /// Holds the key; never printed.
    pub fn connection_identity(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.endpoint, self.key, self.region, self.timeout_ms
        )
    }

    /// Whether the endpoint is a local emulator (loopback host).
    pub fn is_emulator(&self) -> bool {
        match wasikv_core::Endpoint::parse_server(&self.endpoint, 443) {
            Some(wasikv_core::Endpoint::Server { host, .. }) => {
                host == "localhost"
                    || host
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }
            _ => false,
        }
    }
}

impl std::fmt::Debug for CosmosConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CosmosConfig")
            .field("endpoint", &self.endpoint)
            .field("key", &"<redacted>")
            .field("database", &self.database)
            .field("container", &self.container)
            .field("partition", &self.partition)
            .field("create", &self.create)
            .field("region", &self.region)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}
