//! Options of a DynamoDB bucket.

use serde::Deserialize;

/// `[buckets.NAME]` options for `provider = "dynamodb"`.
///
/// ```toml
/// [buckets.sessions]
/// provider = "dynamodb"
/// table = "wasikv"                  # the bucket's table
/// prefix = "sessions/"              # optional: many buckets share one table
/// create_table = true               # create it (on-demand billing) when missing
/// region = "eu-west-1"              # default: the SDK's chain (AWS_REGION, profile)
/// endpoint = "http://127.0.0.1:4566" # default: AWS's endpoint for the region
/// # Credentials: the SDK's standard chain (env, profile, SSO, web identity,
/// # container/instance metadata) unless given here. Never logged.
/// profile = "prod"
/// access_key_id = "AKIA..."
/// secret_access_key = "..."
/// ```
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynamoConfig {
    /// The table.
    pub table: String,
    /// Key prefix within the table. Default: none (the bucket owns the table).
    #[serde(default)]
    pub prefix: String,
    /// Name of the table's partition key attribute (type `S`, no sort key).
    #[serde(default = "default_key_attribute")]
    pub key_attribute: String,
    /// Create the table (on-demand billing) at start-up when it is missing;
    /// otherwise a missing table is `no-such-store`.
    #[serde(default)]
    pub create_table: bool,
    /// AWS region. Default: the SDK's chain.
    pub region: Option<String>,
    /// Endpoint URL (a local emulator, a VPC endpoint). Default: AWS's.
    pub endpoint: Option<String>,
    /// Named profile of the shared config files.
    pub profile: Option<String>,
    /// Static access key id (with `secret_access_key`). Default: the SDK's chain.
    pub access_key_id: Option<String>,
    /// Static secret access key. Never logged.
    pub secret_access_key: Option<String>,
    /// Session token of temporary static credentials. Never logged.
    pub session_token: Option<String>,
    /// The item size limit in bytes: DynamoDB's 400 KB. Lower it for a
    /// DynamoDB-compatible store with a smaller limit (moto counts binary
    /// values base64-encoded, so about 300 000 there).
    #[serde(default = "default_max_item_bytes")]
    pub max_item_bytes: usize,
    /// Time to establish a connection, in milliseconds.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// SDK attempts for reads and idempotent writes (1 = no retry). Increments
    /// are never retried by the SDK: a lost reply could count twice.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
}

fn default_key_attribute() -> String {
    "pk".into()
}

fn default_max_item_bytes() -> usize {
    crate::core::MAX_ITEM_BYTES
}

fn default_connect_timeout_ms() -> u64 {
    5_000
}

fn default_max_attempts() -> u32 {
    3
}

impl DynamoConfig {
    /// Identity of the connection: buckets with equal ones share a client.
    /// Holds the secret (never printed), so differing credentials never share.
    pub fn connection_identity(&self) -> String {
        format!(
            "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{}|{}",
            self.region,
            self.endpoint,
            self.profile,
            self.access_key_id,
            self.secret_access_key,
            self.session_token,
            self.connect_timeout_ms,
            self.max_attempts,
        )
    }
}

impl std::fmt::Debug for DynamoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("DynamoConfig")
            .field("table", &self.table)
            .field("prefix", &self.prefix)
            .field("key_attribute", &self.key_attribute)
            .field("create_table", &self.create_table)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("profile", &self.profile)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &redacted(&self.secret_access_key))
            .field("session_token", &redacted(&self.session_token))
            .field("max_item_bytes", &self.max_item_bytes)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("max_attempts", &self.max_attempts)
            .finish()
    }
}
