//! The client, the item layout, table checks and the one mapper from SDK
//! errors to wasikv errors.

use std::collections::HashMap;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, StreamSpecification, StreamViewType, TableDescription, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_smithy_http_client::tls::{Provider as TlsProvider, rustls_provider::CryptoMode};
use wasikv_core::{Error, ErrorKind, Result};

use crate::config::DynamoConfig;

/// DynamoDB's item size limit (names and values of every attribute).
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// DynamoDB's limit on a partition key value.
pub const MAX_PARTITION_KEY_BYTES: usize = 2048;

/// Most keys in one `BatchGetItem`.
pub const MAX_BATCH_GET: usize = 100;

/// Most requests in one `BatchWriteItem`.
pub const MAX_BATCH_WRITE: usize = 25;

/// Attribute holding the value written by `set` (type `B`).
pub const VALUE: &str = "v";
/// Attribute holding a counter written by `increment` (type `N`), instead of [`VALUE`].
pub const COUNTER: &str = "n";
/// Attribute holding the version token, fresh and random on every write (type `S`).
pub const VERSION: &str = "ver";
/// Attribute holding the original key when the id is a hash of it (type `S`).
pub const ORIGINAL_KEY: &str = "key";
/// Attribute holding the item's expiry in whole seconds since the Unix
/// epoch (type `N`), written by buckets with a `ttl`: the attribute the
/// table's DynamoDB TTL deletes by, and the one every read checks.
pub const EXPIRES: &str = "exp";

/// Attribute names of the item layout, which the partition key must not take.
pub const RESERVED_ATTRIBUTES: [&str; 5] = [VALUE, COUNTER, VERSION, ORIGINAL_KEY, EXPIRES];

/// Seconds since the Unix epoch now, rounded down: an item whose [`EXPIRES`]
/// is at most this has expired (the host's clock; hosts sharing a table
/// need clocks that agree, as NTP keeps them).
pub fn now_seconds() -> u64 {
    wasikv_core::expiry::now_ms() / 1000
}

/// The [`EXPIRES`] of a write now with `ttl`: now + ttl rounded up to whole
/// seconds, so an item lives at least its ttl and at most a second more.
pub fn expires_after(ttl: Duration) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (now + ttl).as_nanos().div_ceil(1_000_000_000) as u64
}

/// Whether `item` carries an [`EXPIRES`] at or before `now` (from
/// [`now_seconds`]); an item without one never expires.
pub fn is_expired(item: &HashMap<String, AttributeValue>, now: u64) -> bool {
    item.get(EXPIRES)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse::<f64>().ok())
        .is_some_and(|expires| expires <= now as f64)
}

/// One DynamoDB client (region, endpoint, credentials), shared by its buckets.
#[derive(Clone)]
pub struct DynamoStore {
    /// The SDK client.
    pub client: Client,
    /// The DynamoDB Streams client (change feeds), same configuration.
    pub streams: aws_sdk_dynamodbstreams::Client,
}

impl DynamoStore {
    /// Builds the client of `config`: one hyper client with rustls + ring,
    /// credentials from the config or the SDK's standard chain. Makes no request.
    pub async fn connect(config: &DynamoConfig) -> Result<Self> {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(TlsProvider::Rustls(CryptoMode::Ring))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .retry_config(RetryConfig::standard().with_max_attempts(config.max_attempts.max(1)))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
                    .build(),
            );
        if let Some(region) = &config.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &config.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        if let Some(profile) = &config.profile {
            loader = loader.profile_name(profile);
        }
        if let (Some(id), Some(secret)) = (&config.access_key_id, &config.secret_access_key) {
            loader = loader.credentials_provider(Credentials::new(
                id,
                secret,
                config.session_token.clone(),
                None,
                "wasikv-config",
            ));
        }
        let sdk = loader.load().await;
        if sdk.region().is_none() {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "no AWS region: set `region` or AWS_REGION",
            ));
        }
        Ok(DynamoStore {
            client: Client::new(&sdk),
            streams: aws_sdk_dynamodbstreams::Client::new(&sdk),
        })
    }

    /// Checks that `table` exists with a string partition key named
    /// `key_attribute` and no sort key, creating it (on-demand billing, with
    /// a stream) when missing and `create` is set. Returns the table's stream
    /// for `watch`, if it has one with both images (tables wasikv creates do).
    pub async fn ensure_table(
        &self,
        table: &str,
        key_attribute: &str,
        create: bool,
    ) -> Result<Option<String>> {
        let described = self.client.describe_table().table_name(table).send().await;
        let description = match described {
            Ok(out) => out.table,
            Err(e) if is_code(&e, "ResourceNotFoundException") => {
                if !create {
                    return Err(Error::new(
                        ErrorKind::NoSuchStore,
                        format!(
                            "DynamoDB table {table:?} does not exist (set create_table = true to create it)"
                        ),
                    ));
                }
                return self.create_table(table, key_attribute).await;
            }
            Err(e) => return Err(map_err(e)),
        };
        let Some(description) = description else {
            return Err(Error::new(
                ErrorKind::Other,
                format!("DynamoDB described table {table:?} without a description"),
            ));
        };
        let schema = description.key_schema();
        let hash = schema.iter().find(|k| k.key_type() == &KeyType::Hash);
        let typed_string = description.attribute_definitions().iter().any(|d| {
            d.attribute_name() == key_attribute && d.attribute_type() == &ScalarAttributeType::S
        });
        if schema.len() != 1
            || hash.map(|k| k.attribute_name()) != Some(key_attribute)
            || !typed_string
        {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "DynamoDB table {table:?} must have exactly one key, a partition key {key_attribute:?} of type S (key_attribute)"
                ),
            ));
        }
        Ok(watch_stream(description))
    }

    /// The attribute `table`'s DynamoDB TTL deletes by, if it is on (or
    /// being turned on).
    async fn ttl_attribute(&self, table: &str) -> Result<Option<String>> {
        let described = self
            .client
            .describe_time_to_live()
            .table_name(table)
            .send()
            .await
            .map_err(map_err)?;
        Ok(described.time_to_live_description.and_then(|s| {
            let on = matches!(
                s.time_to_live_status,
                Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
            );
            s.attribute_name.filter(|_| on)
        }))
    }

    /// Checks that `table`'s DynamoDB TTL deletes items by [`EXPIRES`]
    /// (what keeps expired items of a bucket with a `ttl` from piling up),
    /// enabling it when it is off and `create` is set.
    pub async fn ensure_ttl(&self, table: &str, create: bool) -> Result<()> {
        match self.ttl_attribute(table).await? {
            Some(name) if name == EXPIRES => return Ok(()),
            Some(name) => {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    format!(
                        "DynamoDB table {table:?} has its TTL on attribute {name:?}; a table has one TTL attribute, and a bucket with a ttl needs it on {EXPIRES:?}"
                    ),
                ));
            }
            None => {}
        }
        if !create {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "DynamoDB table {table:?} does not delete expired items: enable its TTL on attribute {EXPIRES:?} \
                     (aws dynamodb update-time-to-live --table-name {table} --time-to-live-specification Enabled=true,AttributeName={EXPIRES}) \
                     or set create_table = true"
                ),
            ));
        }
        let spec = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(EXPIRES)
            .build()
            .map_err(|e| Error::new(ErrorKind::InvalidConfig, e.to_string()))?;
        match self
            .client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(spec)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // Another host turned it on meanwhile ("TimeToLive is already enabled").
            Err(e)
                if is_code(&e, "ValidationException")
                    && self.ttl_attribute(table).await?.as_deref() == Some(EXPIRES) =>
            {
                Ok(())
            }
            Err(e) => Err(map_err(e)),
        }
    }

    /// Creates `table` and waits until it is ACTIVE; returns its stream.
    async fn create_table(&self, table: &str, key_attribute: &str) -> Result<Option<String>> {
        let key = KeySchemaElement::builder()
            .attribute_name(key_attribute)
            .key_type(KeyType::Hash)
            .build()
            .map_err(|e| Error::new(ErrorKind::InvalidConfig, e.to_string()))?;
        let definition = AttributeDefinition::builder()
            .attribute_name(key_attribute)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| Error::new(ErrorKind::InvalidConfig, e.to_string()))?;
        let created = self
            .client
            .create_table()
            .table_name(table)
            .key_schema(key)
            .attribute_definitions(definition)
            .billing_mode(BillingMode::PayPerRequest)
            // The change feed of `watch`.
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build()
                    .map_err(|e| Error::new(ErrorKind::InvalidConfig, e.to_string()))?,
            )
            .send()
            .await;
        match created {
            Ok(_) => {}
            // Another host created it meanwhile.
            Err(e) if is_code(&e, "ResourceInUseException") => {}
            Err(e) => return Err(map_err(e)),
        }
        // A new table is CREATING for a while on AWS; wait until it is ACTIVE.
        for _ in 0..120 {
            let out = self
                .client
                .describe_table()
                .table_name(table)
                .send()
                .await
                .map_err(map_err)?;
            if let Some(description) = out.table
                && description.table_status == Some(TableStatus::Active)
            {
                return Ok(watch_stream(description));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(Error::new(
            ErrorKind::Unavailable,
            format!("DynamoDB table {table:?} was created but did not become ACTIVE within 60 s"),
        ))
    }
}

/// The latest stream of a table, if it has both images (what a watch needs).
fn watch_stream(table: TableDescription) -> Option<String> {
    let both_images = table.stream_specification().is_some_and(|s| {
        s.stream_enabled() && s.stream_view_type() == Some(&StreamViewType::NewAndOldImages)
    });
    if both_images {
        table.latest_stream_arn
    } else {
        None
    }
}

/// Bytes an item counts against [`MAX_ITEM_BYTES`] (attribute names plus
/// values; a number counts at most 21 bytes).
pub fn item_bytes(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter()
        .map(|(name, value)| {
            name.len()
                + match value {
                    AttributeValue::S(s) => s.len(),
                    AttributeValue::B(b) => b.as_ref().len(),
                    AttributeValue::N(n) => n.len().min(21),
                    _ => 1,
                }
        })
        .sum()
}

/// A fresh random version token: every write gets a new one, so a key deleted
/// and written again never shows an old version (no ABA).
pub fn new_version_token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Whether `e` is a service error with this error code.
pub fn is_code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>, code: &str) -> bool {
    e.as_service_error().and_then(ProvideErrorMetadata::code) == Some(code)
}

/// The one mapper from SDK errors to wasikv errors.
pub fn map_err<E, R>(e: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let detail = DisplayErrorContext(&e).to_string();
    match &e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => Error::new(
            ErrorKind::Unavailable,
            format!("DynamoDB is unreachable: {detail}"),
        )
        .set_retryable(true),
        SdkError::ServiceError(service) => {
            let err = service.err();
            let code = err.code().unwrap_or("Unknown");
            let message = err.message().unwrap_or_default();
            let kind = match code {
                "ResourceNotFoundException" => ErrorKind::NoSuchStore,
                "AccessDeniedException"
                | "UnrecognizedClientException"
                | "InvalidSignatureException"
                | "MissingAuthenticationTokenException"
                | "ExpiredTokenException" => ErrorKind::AccessDenied,
                "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded"
                | "InternalServerError"
                | "ServiceUnavailable"
                | "TransactionConflictException" => ErrorKind::Unavailable,
                "ItemCollectionSizeLimitExceededException" => ErrorKind::TooLarge,
                "ValidationException" if message.contains("size") => ErrorKind::TooLarge,
                _ => ErrorKind::Other,
            };
            Error::new(kind, format!("DynamoDB {code}: {message}"))
                .set_retryable(kind == ErrorKind::Unavailable)
        }
        _ => Error::new(
            ErrorKind::Other,
            format!("DynamoDB request failed: {detail}"),
        ),
    }
}
