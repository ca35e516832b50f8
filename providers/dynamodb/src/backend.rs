//! [`DynamoProvider`] and [`DynamoBucket`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, KeysAndAttributes, PutRequest, WriteRequest,
};
use wasikv_core::{
    Bucket, BucketPlan, Capabilities, Consistency, Endpoint, Error, ErrorKind, Expiry, KeyCodec,
    ListPage, Location, Namespace, Options, Provider, Result, Store, Support, Version, Versioned,
    WriteCondition, WriteOutcome,
};

use crate::config::DynamoConfig;
use crate::core::{
    COUNTER, DynamoStore, EXPIRES, MAX_BATCH_GET, MAX_BATCH_WRITE, MAX_ITEM_BYTES,
    MAX_PARTITION_KEY_BYTES, ORIGINAL_KEY, RESERVED_ATTRIBUTES, VALUE, VERSION, expires_after,
    is_code, is_expired, item_bytes, map_err, new_version_token, now_seconds,
};

/// The provider name in configuration.
pub const NAME: &str = "dynamodb";

/// Room an item keeps beside its value for the key, the version and names.
pub const ITEM_OVERHEAD: usize = 4096;

/// Longest bucket prefix, so that escaped keys keep room in the partition key.
pub const MAX_PREFIX_BYTES: usize = 1024;

/// Attempts of a batch call while DynamoDB leaves items unprocessed (throttling).
const BATCH_ATTEMPTS: u32 = 8;

/// Expiry: the `exp` attribute (whole seconds), checked by every read and
/// condition against the host's clock; DynamoDB's TTL on it deletes
/// expired items, typically within two days.
pub const EXPIRY: Expiry = Expiry::Filtered {
    how: "exp attribute checked on every read and condition; deleted by the table's DynamoDB TTL (typically within 48 h)",
    resolution: Duration::from_secs(1),
};

/// Builds DynamoDB stores.
#[derive(Debug, Default, Clone, Copy)]
pub struct DynamoProvider;

/// The capabilities of a DynamoDB bucket whose items may hold `max_item_bytes`.
pub fn capabilities(max_item_bytes: usize) -> Capabilities {
    // `increment` is the host's CAS loop on the version attribute: a native
    // `ADD` adds to any number, 1.5 included, and no condition expression
    // can tell an integer from a fraction to refuse it atomically.
    Capabilities {
        get_many: Support::Native,
        set_many: Support::Native,
        delete_many: Support::Native,
        max_key_bytes: Some(MAX_PARTITION_KEY_BYTES),
        max_value_bytes: Some(max_item_bytes.saturating_sub(ITEM_OVERHEAD)),
        max_batch_items: Some(MAX_BATCH_GET),
        max_write_batch_items: Some(MAX_BATCH_WRITE),
        consistency: Consistency::Strong,
        durable: true,
        versioning: "random version token attribute",
        // On tables with a NEW_AND_OLD_IMAGES stream (wasikv creates them so).
        watch: Support::Native,
        expiry: EXPIRY,
        ..Capabilities::required()
    }
}

#[async_trait]
impl Provider for DynamoProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        capabilities(MAX_ITEM_BYTES)
    }

    /// A table without a `NEW_AND_OLD_IMAGES` stream (one wasikv did not
    /// create) has no change feed: watch falls back to the host.
    fn capability_variants(&self) -> Vec<(&'static str, Capabilities)> {
        let mut no_stream = capabilities(MAX_ITEM_BYTES);
        no_stream.watch = Support::Unsupported;
        vec![("table without stream", no_stream)]
    }

    fn plan(&self, bucket: &str, options: &Options) -> Result<BucketPlan> {
        let config: DynamoConfig = options.parse(bucket, NAME)?;
        let invalid = |message: String| {
            Err(Error::new(ErrorKind::InvalidConfig, message).in_bucket(bucket, NAME))
        };
        // DynamoDB's table name rule: 3-255 of [a-zA-Z0-9_.-].
        let table_ok = (3..=255).contains(&config.table.len())
            && config
                .table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !table_ok {
            return invalid(format!(
                "table {:?} is not a DynamoDB table name (3-255 of a-z, A-Z, 0-9, _ . -)",
                config.table
            ));
        }
        if config.prefix.len() > MAX_PREFIX_BYTES || config.prefix.chars().any(char::is_control) {
            return invalid(format!(
                "prefix must be at most {MAX_PREFIX_BYTES} bytes without control characters"
            ));
        }
        if config.key_attribute.is_empty()
            || RESERVED_ATTRIBUTES.contains(&config.key_attribute.as_str())
        {
            return invalid(format!(
                "key_attribute {:?} is empty or one of wasikv's attributes {RESERVED_ATTRIBUTES:?}",
                config.key_attribute
            ));
        }
        if !(ITEM_OVERHEAD * 2..=MAX_ITEM_BYTES).contains(&config.max_item_bytes) {
            return invalid(format!(
                "max_item_bytes must be between {} and DynamoDB's {MAX_ITEM_BYTES}",
                ITEM_OVERHEAD * 2
            ));
        }
        if config.access_key_id.is_some() != config.secret_access_key.is_some() {
            return invalid("access_key_id and secret_access_key go together".into());
        }
        if config.session_token.is_some() && config.access_key_id.is_none() {
            return invalid("session_token needs access_key_id and secret_access_key".into());
        }
        let endpoint = match &config.endpoint {
            Some(url) => Endpoint::parse_server(url, 443).ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidConfig,
                    "endpoint must be a URL with host and port (the port a number)",
                )
                .in_bucket(bucket, NAME)
            })?,
            None => Endpoint::server(
                &format!(
                    "dynamodb.{}.amazonaws.com",
                    config
                        .region
                        .as_deref()
                        .unwrap_or("<region from the environment>")
                ),
                443,
            ),
        };
        Ok(BucketPlan {
            bucket: bucket.to_string(),
            provider: NAME,
            connection: config.connection_identity(),
            // Tables of one region's endpoint. The account behind the
            // credentials is not known without a call, so buckets with
            // different credentials on one table name count as one table.
            location: Location::new(endpoint, ""),
            // Table names cannot hold '/', so "table/prefix" only prefixes
            // another bucket's on the same table.
            namespace: Namespace::Prefix(format!("{}/{}", config.table, config.prefix)),
            options: options.clone(),
            ttl: None,
        })
    }

    async fn connect(&self, plan: &BucketPlan) -> Result<Arc<dyn Store>> {
        let config: DynamoConfig = plan.options.parse(&plan.bucket, NAME)?;
        Ok(Arc::new(DynamoStore::connect(&config).await?))
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn open_bucket(&self, plan: &BucketPlan) -> Result<Arc<dyn Bucket>> {
        let config: DynamoConfig = plan.options.parse(&plan.bucket, NAME)?;
        let stream = self
            .ensure_table(&config.table, &config.key_attribute, config.create_table)
            .await?;
        if plan.ttl.is_some() {
            self.ensure_ttl(&config.table, config.create_table).await?;
        }
        let bucket = DynamoBucket::new(
            self.client.clone(),
            &config.table,
            &config.key_attribute,
            &config.prefix,
            config.max_item_bytes,
        )
        .expiring(plan.ttl);
        Ok(Arc::new(match stream {
            Some(arn) => bucket.with_stream(crate::watch::StreamSource {
                client: self.streams.clone(),
                arn,
            }),
            None => bucket,
        }))
    }
}

/// A bucket: a table, or the keys under a prefix in a shared table.
///
/// Item layout: the partition key holds `prefix + id` (the key through the key
/// codec); `v` the value (`B`) or `n` a counter (`N`); `ver` a random version
/// token renewed by every write; `key` the original key when the id is a
/// hash; `exp` the expiry (seconds since the epoch) of a bucket with a `ttl`.
/// An item past its `exp` is absent for every read and condition, whatever
/// bucket wrote it.
pub struct DynamoBucket {
    client: Client,
    table: String,
    key_attribute: String,
    prefix: String,
    max_item_bytes: usize,
    codec: KeyCodec,
    capabilities: Capabilities,
    /// The table's stream, for `watch`.
    stream: Option<crate::watch::StreamSource>,
    /// Time to live of every write.
    ttl: Option<Duration>,
}

/// The partition key of a key, and the original key when the id is a hash.
struct ItemKey {
    id: String,
    original: Option<String>,
}

impl DynamoBucket {
    /// The bucket under `prefix` in `table`, whose partition key is
    /// `key_attribute` and whose items may hold `max_item_bytes`.
    pub fn new(
        client: Client,
        table: &str,
        key_attribute: &str,
        prefix: &str,
        max_item_bytes: usize,
    ) -> Self {
        DynamoBucket {
            client,
            table: table.to_string(),
            key_attribute: key_attribute.to_string(),
            prefix: prefix.to_string(),
            max_item_bytes,
            codec: KeyCodec {
                forbidden: &[],
                escape_space: false,
                max_id_bytes: MAX_PARTITION_KEY_BYTES - prefix.len(),
                reserve_dunder: false,
                escape_trailing_space: false,
            },
            capabilities: {
                let mut caps = capabilities(max_item_bytes);
                caps.watch = Support::Unsupported;
                caps
            },
            stream: None,
            ttl: None,
        }
    }

    /// The bucket whose writes expire `ttl` after they are made (the
    /// table's DynamoDB TTL should be on [`EXPIRES`]; see
    /// [`DynamoStore::ensure_ttl`]).
    pub fn expiring(mut self, ttl: Option<Duration>) -> Self {
        self.ttl = ttl;
        self
    }

    /// The bucket with `watch` natively: the table's stream.
    pub fn with_stream(mut self, stream: crate::watch::StreamSource) -> Self {
        self.stream = Some(stream);
        self.capabilities.watch = Support::Native;
        self
    }

    fn item_key(&self, key: &str) -> ItemKey {
        let encoded = self.codec.encode(key);
        ItemKey {
            id: format!("{}{}", self.prefix, encoded.id),
            original: encoded.hashed.then(|| key.to_string()),
        }
    }

    fn key_map(&self, id: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([(
            self.key_attribute.clone(),
            AttributeValue::S(id.to_string()),
        )])
    }

    /// The full item `set` writes, size-checked against DynamoDB's limits.
    fn item(&self, key: &str, value: Vec<u8>) -> Result<HashMap<String, AttributeValue>> {
        self.item_with_version(key, value, new_version_token())
    }

    /// The item of `set`, carrying the version token `version`.
    fn item_with_version(
        &self,
        key: &str,
        value: Vec<u8>,
        version: String,
    ) -> Result<HashMap<String, AttributeValue>> {
        self.capabilities.check_value(value.len())?;
        let ItemKey { id, original } = self.item_key(key);
        let mut item = self.key_map(&id);
        item.insert(VALUE.into(), AttributeValue::B(Blob::new(value)));
        item.insert(VERSION.into(), AttributeValue::S(version));
        if let Some(original) = original {
            item.insert(ORIGINAL_KEY.into(), AttributeValue::S(original));
        }
        if let Some(ttl) = self.ttl {
            item.insert(
                EXPIRES.into(),
                AttributeValue::N(expires_after(ttl).to_string()),
            );
        }
        let size = item_bytes(&item);
        if size > self.max_item_bytes {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!(
                    "the item for this key and value is {size} bytes, over the item limit of {} bytes (max_item_bytes)",
                    self.max_item_bytes
                ),
            ));
        }
        Ok(item)
    }

    /// The original key of a listed item; `None` for an item this bucket
    /// did not write (no string key, an id that is not a canonical
    /// encoding): listings skip it.
    fn listed_key(&self, item: &HashMap<String, AttributeValue>) -> Option<String> {
        let id = item.get(&self.key_attribute)?.as_s().ok()?;
        let encoded = id.strip_prefix(&self.prefix)?;
        let original = item.get(ORIGINAL_KEY).and_then(|v| v.as_s().ok());
        self.codec.listed_key(encoded, original.map(String::as_str))
    }

    /// A consistent read of the item `id`, if present and not expired: all
    /// of it, or only its key and expiry.
    async fn read(
        &self,
        id: &str,
        key_only: bool,
    ) -> Result<Option<HashMap<String, AttributeValue>>> {
        let mut request = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(self.key_map(id)))
            .consistent_read(true);
        if key_only {
            request = request
                .projection_expression("#pk, #exp")
                .expression_attribute_names("#pk", &self.key_attribute)
                .expression_attribute_names("#exp", EXPIRES);
        }
        let item = request.send().await.map_err(map_err)?.item;
        let now = now_seconds();
        Ok(item.filter(|item| !is_expired(item, now)))
    }

    /// [`Bucket::set`] writing the version token `write_token` (fresh and
    /// random in `set`; fixed by tests that replay a request). A conditional
    /// write refused because the item already holds `write_token` was applied
    /// by an earlier attempt of the same request, and is reported as written.
    #[doc(hidden)]
    pub async fn set_with_version(
        &self,
        key: &str,
        value: Vec<u8>,
        condition: WriteCondition,
        write_token: String,
    ) -> Result<WriteOutcome> {
        let id = self.item_key(key).id;
        let item = self.item_with_version(key, value, write_token.clone())?;
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        // An expired item is absent: a create over it succeeds, a swap
        // against it fails.
        let now = AttributeValue::N(now_seconds().to_string());
        match &condition {
            WriteCondition::Always => {}
            WriteCondition::IfAbsent => {
                request = request
                    .condition_expression("attribute_not_exists(#pk) OR #exp <= :now")
                    .expression_attribute_names("#pk", &self.key_attribute)
                    .expression_attribute_names("#exp", EXPIRES)
                    .expression_attribute_values(":now", now);
            }
            WriteCondition::IfVersion(version) => {
                let Ok(token) = std::str::from_utf8(&version.0) else {
                    return Ok(WriteOutcome::ConditionFailed); // not a version this bucket issued
                };
                if token.is_empty() {
                    return Ok(WriteOutcome::ConditionFailed);
                }
                request = request
                    .condition_expression(
                        "#ver = :seen AND (attribute_not_exists(#exp) OR #exp > :now)",
                    )
                    .expression_attribute_names("#ver", VERSION)
                    .expression_attribute_names("#exp", EXPIRES)
                    .expression_attribute_values(":seen", AttributeValue::S(token.to_string()))
                    .expression_attribute_values(":now", now);
            }
        }
        match request.send().await {
            Ok(_) => Ok(WriteOutcome::Written),
            Err(e) if is_code(&e, "ConditionalCheckFailedException") => {
                // The SDK retries a request whose reply was lost; if the first
                // attempt was applied, the retry fails its condition against
                // our own write. The version token tells.
                let current = self.read(&id, false).await?;
                if current.as_ref().map(item_version) == Some(Version(write_token.into_bytes())) {
                    Ok(WriteOutcome::Written)
                } else {
                    Ok(WriteOutcome::ConditionFailed)
                }
            }
            Err(e) => Err(map_err(e)),
        }
    }

    /// Runs one `BatchWriteItem` (at most [`MAX_BATCH_WRITE`] requests, as
    /// declared: the host chunks), resending what DynamoDB leaves
    /// unprocessed: that resend is part of DynamoDB's batch protocol, not an
    /// emulation.
    async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<()> {
        self.capabilities.check_write_batch(requests.len())?;
        {
            let mut pending = requests;
            let mut resend = Resend::default();
            loop {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(map_err)?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default();
                if resend.done(pending.len()).await? {
                    break;
                }
            }
        }
        Ok(())
    }
}

/// The resend policy for what a batch call leaves unprocessed (throttling):
/// full-jitter exponential backoff between calls, at most [`BATCH_ATTEMPTS`]
/// calls, then a retryable `unavailable` error.
#[derive(Default)]
struct Resend {
    attempts: u32,
}

impl Resend {
    /// After a call that left `unprocessed` items: `true` when none are left;
    /// otherwise waits out the backoff and returns `false` to call again.
    async fn done(&mut self, unprocessed: usize) -> Result<bool> {
        if unprocessed == 0 {
            return Ok(true);
        }
        self.attempts += 1;
        if self.attempts >= BATCH_ATTEMPTS {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "DynamoDB left {unprocessed} batch items unprocessed after {BATCH_ATTEMPTS} attempts (throttled)"
                ),
            )
            .set_retryable(true));
        }
        // Up to 25 ms * 2^attempt, at most 1 s.
        let cap = (25u64 << (self.attempts - 1).min(6)).min(1_000);
        tokio::time::sleep(Duration::from_millis(rand::random_range(0..=cap))).await;
        Ok(false)
    }
}

/// The value of an item as `get` returns it: the bytes, or a number in the
/// counter attribute (counters of earlier wasikv versions, or written by
/// other clients) as its decimal text, as DynamoDB holds it (`42`, `1.5`):
/// only a decimal integer then increments.
fn item_value(item: &HashMap<String, AttributeValue>) -> Result<Vec<u8>> {
    if let Some(n) = item.get(COUNTER) {
        let n = n
            .as_n()
            .map_err(|_| Error::new(ErrorKind::Other, "counter attribute is not a number"))?;
        return Ok(n.clone().into_bytes());
    }
    match item.get(VALUE) {
        Some(AttributeValue::B(blob)) => Ok(blob.clone().into_inner()),
        _ => Err(Error::new(
            ErrorKind::Other,
            "item has neither a binary value nor a counter (not written by wasikv)",
        )),
    }
}

fn item_version(item: &HashMap<String, AttributeValue>) -> Version {
    match item.get(VERSION).and_then(|v| v.as_s().ok()) {
        Some(token) => Version(token.as_bytes().to_vec()),
        // Written by another client: a version that no swap can match.
        None => Version(Vec::new()),
    }
}

#[async_trait]
impl Bucket for DynamoBucket {
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        let Some(item) = self.read(&self.item_key(key).id, false).await? else {
            return Ok(None);
        };
        Ok(Some(Versioned {
            value: item_value(&item)?,
            version: item_version(&item),
        }))
    }

    async fn set(
        &self,
        key: &str,
        value: Vec<u8>,
        condition: WriteCondition,
    ) -> Result<WriteOutcome> {
        self.set_with_version(key, value, condition, new_version_token())
            .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(self.key_map(&self.item_key(key).id)))
            .send()
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        Ok(self.read(&self.item_key(key).id, true).await?.is_some())
    }

    async fn list(&self, cursor: Option<&[u8]>, limit: usize) -> Result<ListPage> {
        let mut start = match cursor {
            None => None,
            Some(token) => {
                let id = std::str::from_utf8(token)
                    .ok()
                    .filter(|id| !id.is_empty() && id.len() <= MAX_PARTITION_KEY_BYTES)
                    .ok_or_else(|| Error::new(ErrorKind::InvalidCursor, "malformed list cursor"))?;
                Some(id.to_string())
            }
        };
        let limit = i32::try_from(limit.max(1)).unwrap_or(i32::MAX);
        loop {
            let mut request = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .limit(limit)
                .projection_expression("#pk, #key, #exp")
                .expression_attribute_names("#pk", &self.key_attribute)
                .expression_attribute_names("#key", ORIGINAL_KEY)
                .expression_attribute_names("#exp", EXPIRES);
            if !self.prefix.is_empty() {
                request = request
                    .filter_expression("begins_with(#pk, :prefix)")
                    .expression_attribute_values(":prefix", AttributeValue::S(self.prefix.clone()));
            }
            if let Some(id) = start.take() {
                request = request.exclusive_start_key(&self.key_attribute, AttributeValue::S(id));
            }
            let out = request.send().await.map_err(|e| {
                if cursor.is_some() && is_code(&e, "ValidationException") {
                    Error::new(ErrorKind::InvalidCursor, "DynamoDB refused the list cursor")
                } else {
                    map_err(e)
                }
            })?;
            let now = now_seconds();
            let live: Vec<_> = out
                .items()
                .iter()
                .filter(|item| !is_expired(item, now))
                .collect();
            let keys: Vec<String> = live
                .iter()
                .filter_map(|item| self.listed_key(item))
                .collect();
            let foreign = live.len() - keys.len();
            if foreign > 0 {
                tracing::debug!(
                    table = %self.table,
                    "list skipped {foreign} items under the bucket's prefix that wasikv did not write"
                );
            }
            let next = out
                .last_evaluated_key
                .and_then(|mut k| k.remove(&self.key_attribute))
                .and_then(|v| v.as_s().ok().cloned());
            // A filtered scan page may hold none of this bucket's keys: go on
            // until one does, so a page is empty only at the end.
            if !keys.is_empty() || next.is_none() {
                return Ok(ListPage {
                    keys,
                    next: next.map(String::into_bytes),
                });
            }
            start = next;
        }
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        self.capabilities.check_batch(keys.len())?;
        let ids: Vec<String> = keys.iter().map(|k| self.item_key(k).id).collect();
        // BatchGetItem refuses repeated keys: ask for each id once.
        let mut distinct: Vec<&String> = ids.iter().collect();
        distinct.sort();
        distinct.dedup();
        let mut found: HashMap<String, Vec<u8>> = HashMap::with_capacity(distinct.len());
        for chunk in distinct.chunks(MAX_BATCH_GET) {
            let mut pending: Vec<HashMap<String, AttributeValue>> =
                chunk.iter().map(|id| self.key_map(id)).collect();
            let mut resend = Resend::default();
            loop {
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| Error::new(ErrorKind::Other, e.to_string()))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(map_err)?;
                let now = now_seconds();
                for item in out
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|item| !is_expired(item, now))
                {
                    let id = item
                        .get(&self.key_attribute)
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .ok_or_else(|| {
                            Error::new(ErrorKind::Other, "a returned item has no partition key")
                        })?;
                    found.insert(id, item_value(&item)?);
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut m| m.remove(&self.table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
                if resend.done(pending.len()).await? {
                    break;
                }
            }
        }
        Ok(ids.iter().map(|id| found.get(id).cloned()).collect())
    }

    async fn set_many(&self, items: Vec<(String, Vec<u8>)>) -> Result<()> {
        self.capabilities.check_write_batch(items.len())?;
        // Check every item before writing any, so a bad one writes nothing.
        let requests = items
            .into_iter()
            .map(|(key, value)| {
                let item = self.item(&key, value)?;
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(|e| Error::new(ErrorKind::Other, e.to_string()))?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>>>()?;
        self.batch_write(requests).await
    }

    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        self.capabilities.check_write_batch(keys.len())?;
        let requests = keys
            .iter()
            .map(|key| {
                let delete = DeleteRequest::builder()
                    .set_key(Some(self.key_map(&self.item_key(key).id)))
                    .build()
                    .map_err(|e| Error::new(ErrorKind::Other, e.to_string()))?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<Vec<_>>>()?;
        self.batch_write(requests).await
    }

    async fn watch(&self) -> Result<wasikv_core::ChangeStream> {
        let Some(source) = &self.stream else {
            return Err(Error::unsupported("watch"));
        };
        let keys = crate::watch::Keys {
            key_attribute: self.key_attribute.clone(),
            prefix: self.prefix.clone(),
            codec: self.codec,
        };
        crate::watch::watch(source.clone(), keys).await
    }
}
