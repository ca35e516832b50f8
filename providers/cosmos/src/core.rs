//! The client, the item shape and the one mapper from Cosmos DB errors to
//! wasikv errors.

use std::time::Duration;

use azure_core::credentials::Secret;
use azure_data_cosmos::options::{
    BinaryEncodingOptions, ConnectionPoolOptions, EndToEndOperationLatencyPolicy, OperationOptions,
    ReadConsistencyStrategy, Region, ServerCertificateValidation,
};
use azure_data_cosmos::{
    AccountEndpoint, AccountReference, CosmosClient, CosmosError, CosmosRuntime, RoutingStrategy,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use wasikv_core::expiry::{expiry_after, has_expired};
use wasikv_core::{Error, ErrorKind, Result};

use crate::config::CosmosConfig;

/// Cosmos DB's item size limit (the JSON document).
pub const MAX_ITEM_BYTES: usize = 2 * 1024 * 1024;

/// Room an item keeps beside its base64 value for id, partition key, the
/// original key and system properties.
pub const ITEM_OVERHEAD: usize = 4096;

/// Largest value: its base64 text fits in an item with [`ITEM_OVERHEAD`] to spare.
pub const MAX_VALUE_BYTES: usize = (MAX_ITEM_BYTES - ITEM_OVERHEAD) / 4 * 3;

/// Cosmos DB's limit on an item id, in bytes.
pub const MAX_ID_BYTES: usize = 1023;

/// Most operations in one transactional batch.
pub const MAX_BATCH_OPERATIONS: usize = 100;

/// Transactional batches are kept under this many bytes of items (Cosmos
/// takes 2 MB per batch request).
pub const MAX_BATCH_BYTES: usize = 1_900_000;

/// The partition key path of containers wasikv creates and uses.
pub const PARTITION_KEY_PATH: &str = "/pk";

/// The stored value: bytes (base64 text), as wasikv writes every value, or
/// a JSON number (counters of earlier wasikv versions, numbers written by
/// other clients), which `get` renders as its JSON text: `42`, `-8`, `1.5`.
/// Only decimal integers increment; anything else is refused unchanged by
/// the counter rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StoredValue {
    /// A JSON number.
    Number(serde_json::Number),
    /// Bytes, base64.
    Bytes(String),
}

impl StoredValue {
    /// The bytes `get` returns: a number as its JSON text.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        match self {
            StoredValue::Number(n) => Ok(n.to_string().into_bytes()),
            StoredValue::Bytes(text) => BASE64.decode(text).map_err(|e| {
                Error::new(
                    ErrorKind::Other,
                    format!("item value is not base64 (not written by wasikv?): {e}"),
                )
            }),
        }
    }

    /// The stored form of bytes.
    pub fn bytes(value: &[u8]) -> Self {
        StoredValue::Bytes(BASE64.encode(value))
    }
}

/// An item as wasikv writes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Item {
    /// The key through the key codec.
    pub id: String,
    /// The partition key value: the bucket's `partition`, or the id.
    pub pk: String,
    /// The value.
    pub v: StoredValue,
    /// The original key, when `id` is a hash of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<String>,
    /// A random token of the write that made this item: tells a conditional
    /// write whose first attempt was applied from one that lost (see
    /// `CosmosBucket::set_with_token`).
    #[serde(default)]
    pub w: String,
    /// Expiry of an item written by a bucket with a `ttl`: milliseconds
    /// since the Unix epoch (the host's clock). Every read treats an item
    /// at or past it as absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<u64>,
    /// Cosmos DB's own time to live of the item, in seconds from its last
    /// write (`_ts`, whole seconds): the ttl rounded up plus one, so Cosmos
    /// deletes it no earlier than `e`. Honoured on containers whose default
    /// time to live is on ([`CosmosStore::container`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
}

impl Item {
    /// Whether the item is at or past its expiry at `now_ms`.
    pub fn expired(&self, now_ms: u64) -> bool {
        has_expired(self.e, now_ms)
    }
}

/// The `e` and `ttl` of an item written now by a bucket with `ttl`.
pub fn expiry_of(ttl: Duration) -> (u64, u32) {
    let e = expiry_after(ttl);
    let seconds = ttl.as_nanos().div_ceil(1_000_000_000) + 1;
    (e, u32::try_from(seconds).unwrap_or(u32::MAX))
}

/// A fresh write token.
pub fn write_token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// One client per account, shared by its buckets.
#[derive(Clone)]
pub struct CosmosStore {
    /// The SDK client.
    pub client: CosmosClient,
}

impl std::fmt::Debug for CosmosStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CosmosStore")
            .field("endpoint", &self.client.endpoint().as_str())
            .finish()
    }
}

impl CosmosStore {
    /// Builds the client for the account of `config` (key authentication).
    pub async fn connect(config: &CosmosConfig) -> Result<Self> {
        // reqwest's rustls has no bundled provider here: use ring's unless
        // the process already chose one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let invalid = |what: &str, e: &dyn std::fmt::Display| {
            Error::new(ErrorKind::InvalidConfig, format!("{what}: {e}"))
        };
        // Certificate checks are skipped only for loopback emulator hosts.
        let mut pool = ConnectionPoolOptions::builder().with_server_certificate_validation(
            ServerCertificateValidation::RequiredUnlessEmulator,
        );
        if config.is_emulator() {
            // The local fixture speaks HTTP/1.1 only.
            pool = pool.with_is_http2_allowed(false);
        }
        let pool = pool
            .build()
            .map_err(|e| invalid("connection pool options", &e))?;
        let mut operation = OperationOptions::default();
        // Quorum reads (the latest committed version in the region), so reads
        // see every acknowledged write whatever the account's default
        // consistency (Session by default); see the provider guide for
        // multi-region accounts.
        operation.read_consistency_strategy = Some(ReadConsistencyStrategy::LatestCommitted);
        operation.end_to_end_latency_policy = Some(EndToEndOperationLatencyPolicy::new(
            Duration::from_millis(config.timeout_ms.max(1)),
        ));
        let runtime = CosmosRuntime::builder()
            .with_connection_pool(pool)
            .build()
            .await
            .map_err(map_error)?;
        let endpoint: AccountEndpoint = config
            .endpoint
            .parse()
            .map_err(|e| invalid(&format!("endpoint {:?}", config.endpoint), &e))?;
        let account =
            AccountReference::with_authentication_key(endpoint, Secret::from(config.key.clone()));
        let client = CosmosClient::builder()
            .with_runtime(runtime)
            .with_default_operation_options(operation)
            // JSON on the wire (the emulator has no binary encoding).
            .with_binary_encoding_options(BinaryEncodingOptions::new().with_enabled(false))
            .build(
                account,
                RoutingStrategy::ProximityTo(Region::from(config.region.clone())),
            )
            .await
            .map_err(map_error)?;
        Ok(CosmosStore { client })
    }
}

/// The HTTP status of an error.
pub fn status_code(error: &CosmosError) -> u16 {
    u16::from(error.status().status_code())
}

/// The one mapper from Cosmos DB errors to wasikv errors.
pub fn map_error(error: CosmosError) -> Error {
    let status = error.status();
    let code = u16::from(status.status_code());
    let kind = if status.is_transient() || status.is_gone() {
        // 408, 429, 449, 503 (also the SDK's own 503 when no answer came:
        // connection refused, reset, timed out) and 410.
        ErrorKind::Unavailable
    } else if status.is_unauthorized() || status.is_forbidden() {
        ErrorKind::AccessDenied
    } else if code == 413 {
        ErrorKind::TooLarge
    } else if code == 404 {
        // Item operations handle a missing item themselves: here the
        // container or database is gone.
        ErrorKind::NoSuchStore
    } else {
        ErrorKind::Other
    };
    Error::new(kind, format!("Cosmos DB {code}: {error}"))
        .set_retryable(kind == ErrorKind::Unavailable)
}
