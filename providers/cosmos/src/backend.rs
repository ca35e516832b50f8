//! [`CosmosProvider`] and [`CosmosBucket`].

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use azure_data_cosmos::clients::ContainerClient;
use azure_data_cosmos::models::{ContainerProperties, PartitionKey, TimeToLive};
use azure_data_cosmos::options::{ItemWriteOptions, MaxItemCountHint, Precondition, QueryOptions};
use azure_data_cosmos::{CosmosError, FeedScope, Query, TransactionalBatch};
use futures::TryStreamExt;
use serde::Deserialize;
use wasikv_core::{
    BatchAtomicity, Bucket, BucketPlan, Capabilities, Consistency, Endpoint, Error, ErrorKind,
    Expiry, KeyCodec, ListPage, Location, Namespace, Options, Provider, Result, Store, Support,
    Version, Versioned, WriteCondition, WriteOutcome,
};

use crate::config::CosmosConfig;
use crate::core::{
    CosmosStore, Item, MAX_BATCH_BYTES, MAX_BATCH_OPERATIONS, MAX_ID_BYTES, MAX_ITEM_BYTES,
    MAX_VALUE_BYTES, PARTITION_KEY_PATH, StoredValue, expiry_of, map_error, status_code,
    write_token,
};
use wasikv_core::expiry::{has_expired, now_ms};

/// The provider name in configuration.
pub const NAME: &str = "cosmos";

/// Expiry: an expiry time in each item (`e`, milliseconds) checked by
/// every read and condition, and Cosmos DB's per-item `ttl`, which deletes
/// the item (and hides it from reads) no earlier.
pub const EXPIRY: Expiry = Expiry::Filtered {
    how: "expiry in each item checked on every read and swap; deleted by Cosmos DB's per-item ttl",
    resolution: Duration::from_millis(1),
};

/// Builds Cosmos DB stores.
#[derive(Debug, Default, Clone, Copy)]
pub struct CosmosProvider;

/// The capabilities of a bucket: one item per partition (`partitioned =
/// false`) or every item in one logical partition (`partitioned = true`),
/// where `get-many` is one query and `set-many` transactional batches.
pub fn capabilities(partitioned: bool) -> Capabilities {
    let in_partition = |yes: bool| {
        if yes {
            Support::Native
        } else {
            Support::Unsupported
        }
    };
    // `increment` is the host's CAS loop (a read, then a conditional replace
    // on the ETag): Cosmos' server-side `incr` patch adds to any JSON number,
    // 1.5 included, and its SDK has no filter to refuse one atomically.
    Capabilities {
        get_many: in_partition(partitioned),
        set_many: in_partition(partitioned),
        // A transactional batch on Cosmos DB (the test fixture does not
        // roll back: docs/providers/cosmos.md).
        set_many_atomicity: if partitioned {
            BatchAtomicity::All
        } else {
            BatchAtomicity::PerItem
        },
        // A transactional batch fails as a whole on a missing item, but
        // delete-many must ignore missing keys: the host's concurrent deletes.
        delete_many: Support::Unsupported,
        max_key_bytes: Some(MAX_ID_BYTES),
        max_value_bytes: Some(MAX_VALUE_BYTES),
        max_batch_items: Some(MAX_BATCH_OPERATIONS),
        consistency: Consistency::Strong,
        durable: true,
        versioning: "ETag",
        expiry: EXPIRY,
        ..Capabilities::required()
    }
}

/// Whether `s` is a valid database or container id.
fn valid_resource_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 255 && !s.ends_with(' ') && !s.contains(['/', '\\', '?', '#'])
}

#[async_trait]
impl Provider for CosmosProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        capabilities(false)
    }

    fn capability_variants(&self) -> Vec<(&'static str, Capabilities)> {
        vec![("partition", capabilities(true))]
    }

    fn plan(&self, bucket: &str, options: &Options) -> Result<BucketPlan> {
        let config: CosmosConfig = options.parse(bucket, NAME)?;
        let invalid = |message: String| {
            Err(Error::new(ErrorKind::InvalidConfig, message).in_bucket(bucket, NAME))
        };
        if !(config.endpoint.starts_with("https://") || config.endpoint.starts_with("http://")) {
            return invalid(format!(
                "endpoint {:?} is not an https:// account URL",
                config.endpoint
            ));
        }
        if config.key.is_empty() {
            return invalid("key is empty".into());
        }
        let container = config.container(bucket);
        for (what, id) in [("database", &config.database), ("container", &container)] {
            if !valid_resource_id(id) {
                return invalid(format!(
                    "{what} {id:?} is not a Cosmos DB id (1-255 characters, no '/', '\\', '?', '#', no trailing space)"
                ));
            }
        }
        if let Some(partition) = &config.partition
            && (partition.is_empty() || partition.len() > 2048)
        {
            return invalid(format!("partition {partition:?} must be 1 to 2048 bytes"));
        }
        // A whole-container bucket overlaps every partition of its container;
        // partitions overlap only themselves (the value is JSON-quoted, so
        // one never prefixes another).
        let mut namespace = format!("{}\n{container}\n", config.database);
        if let Some(partition) = &config.partition {
            namespace.push_str(&serde_json::to_string(partition).unwrap_or_default());
        }
        let endpoint = Endpoint::parse_server(&config.endpoint, 443).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidConfig,
                "endpoint must be a URL with host and port (the port a number)",
            )
            .in_bucket(bucket, NAME)
        })?;
        Ok(BucketPlan {
            bucket: bucket.to_string(),
            provider: NAME,
            connection: config.connection_identity(),
            // The account's endpoint, whichever key (primary, secondary)
            // or timeout a bucket uses; the namespace names the database.
            location: Location::new(endpoint, ""),
            namespace: Namespace::Prefix(namespace),
            options: options.clone(),
            ttl: None,
        })
    }

    async fn connect(&self, plan: &BucketPlan) -> Result<Arc<dyn Store>> {
        let config: CosmosConfig = plan.options.parse(&plan.bucket, NAME)?;
        Ok(Arc::new(CosmosStore::connect(&config).await?))
    }
}

#[async_trait]
impl Store for CosmosStore {
    async fn open_bucket(&self, plan: &BucketPlan) -> Result<Arc<dyn Bucket>> {
        let config: CosmosConfig = plan.options.parse(&plan.bucket, NAME)?;
        let container = config.container(&plan.bucket);
        let client = self
            .container(&config.database, &container, config.create)
            .await?;
        if plan.ttl.is_some() {
            self.ensure_item_ttl(&client, &container, config.create)
                .await?;
        }
        Ok(Arc::new(
            CosmosBucket::new(client, config.partition).expiring(plan.ttl),
        ))
    }
}

impl CosmosStore {
    /// The client of `database`/`container`, created first when `create`;
    /// a missing one is `no-such-store`, one with another partition key
    /// path `invalid-config`.
    pub async fn container(
        &self,
        database: &str,
        container: &str,
        create: bool,
    ) -> Result<ContainerClient> {
        let db = self.client.database_client(database);
        if create {
            match self.client.create_database(database, None).await {
                Ok(_) => {}
                Err(e) if e.status().is_conflict() => {}
                Err(e) => return Err(map_error(e)),
            }
            // Time to live on, without a default: items of buckets with a
            // `ttl` carry their own, the others never expire.
            let properties =
                ContainerProperties::new(container.to_string(), PARTITION_KEY_PATH.into())
                    .with_default_ttl(TimeToLive::NoDefault);
            match db.create_container(properties, None).await {
                Ok(_) => {}
                Err(e) if e.status().is_conflict() => {}
                Err(e) => return Err(map_error(e)),
            }
        }
        let missing = |e: CosmosError| {
            if e.status().is_not_found() {
                Error::new(
                    ErrorKind::NoSuchStore,
                    format!(
                        "container {container:?} of database {database:?} does not exist (set create = true to create it)"
                    ),
                )
            } else {
                map_error(e)
            }
        };
        let client = db
            .container_client(container, None)
            .await
            .map_err(missing)?;
        let properties: ContainerProperties = client
            .read(None)
            .await
            .map_err(missing)?
            .into_model()
            .map_err(map_error)?;
        let paths = properties.partition_key.paths();
        if paths.len() != 1 || paths[0] != PARTITION_KEY_PATH {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "container {container:?} has partition key {paths:?}; wasikv needs [\"{PARTITION_KEY_PATH}\"]"
                ),
            ));
        }
        Ok(client)
    }

    /// Checks that `client`'s container honours per-item time to live (its
    /// default time to live is on), turning it on without a default when it
    /// is off and `create` is set: what deletes the expired items of a
    /// bucket with a `ttl`.
    pub async fn ensure_item_ttl(
        &self,
        client: &ContainerClient,
        container: &str,
        create: bool,
    ) -> Result<()> {
        let properties: ContainerProperties = client
            .read(None)
            .await
            .map_err(map_error)?
            .into_model()
            .map_err(map_error)?;
        if !properties.default_ttl.is_forever() {
            return Ok(());
        }
        if !create {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "container {container:?} has time to live off, so Cosmos DB would never delete expired items: \
                     turn it on without a default (defaultTtl = -1, \"On (no default)\" in the portal) or set create = true"
                ),
            ));
        }
        client
            .replace(properties.with_default_ttl(TimeToLive::NoDefault), None)
            .await
            .map_err(map_error)?;
        Ok(())
    }
}

/// A bucket: a container, or one logical partition of it. Items hold the key
/// through the key codec as `id`, the partition key in `pk`, the value in
/// `v` and the original key in `k` when the id is a hash of it.
pub struct CosmosBucket {
    container: ContainerClient,
    /// The partition of every item; `None`: each item's id.
    partition: Option<String>,
    codec: KeyCodec,
    capabilities: Capabilities,
    /// Time to live of every write.
    ttl: Option<Duration>,
}

/// A row of the listing query.
#[derive(Deserialize)]
struct ListedId {
    id: String,
    #[serde(default)]
    k: Option<String>,
    #[serde(default)]
    e: Option<u64>,
}

/// Whether `e` is a write's condition failing (a changed ETag, an existing
/// or a missing item), not an error.
fn lost_condition(e: &CosmosError) -> bool {
    e.status().is_precondition_failed() || e.status().is_conflict() || e.status().is_not_found()
}

/// The version of an item: its ETag, and after a newline its expiry when
/// it has one, so a swap against a version that has expired meanwhile
/// fails without a request (the ETag still matching means the item, and
/// so its expiry, is unchanged).
fn version_of(etag: String, item: &Item) -> Version {
    match item.e {
        Some(e) => Version(format!("{etag}\n{e}").into_bytes()),
        None => Version(etag.into_bytes()),
    }
}

/// The ETag and expiry a version holds; `None` for bytes this bucket did
/// not issue.
fn parse_version(version: &Version) -> Option<(&str, Option<u64>)> {
    let text = std::str::from_utf8(&version.0).ok()?;
    match text.split_once('\n') {
        Some((etag, e)) => Some((etag, Some(e.parse().ok()?))),
        None => Some((text, None)),
    }
}

impl CosmosBucket {
    /// The bucket on `container`, in logical partition `partition` or, with
    /// `None`, one partition per item.
    pub fn new(container: ContainerClient, partition: Option<String>) -> Self {
        let partitioned = partition.is_some();
        CosmosBucket {
            container,
            partition,
            codec: KeyCodec {
                // '.' too: the ids "." and ".." would be path segments in item URLs.
                forbidden: &['/', '\\', '?', '#', '.'],
                escape_space: false,
                max_id_bytes: MAX_ID_BYTES,
                reserve_dunder: false,

                // The service is reported to mishandle ids that end in a space.
                escape_trailing_space: true,
            },
            capabilities: capabilities(partitioned),
            ttl: None,
        }
    }

    /// The bucket whose writes expire `ttl` after they are made (the
    /// container should have time to live on: see
    /// [`CosmosStore::ensure_item_ttl`]).
    pub fn expiring(mut self, ttl: Option<Duration>) -> Self {
        self.ttl = ttl;
        self
    }

    /// The id of `key`, and the original key when the id is a hash.
    fn id(&self, key: &str) -> (String, Option<String>) {
        let encoded = self.codec.encode(key);
        let original = encoded.hashed.then(|| key.to_string());
        (encoded.id, original)
    }

    fn partition_of(&self, id: &str) -> String {
        self.partition.clone().unwrap_or_else(|| id.to_string())
    }

    fn pk(&self, id: &str) -> PartitionKey {
        PartitionKey::from(self.partition_of(id))
    }

    /// The item for `key` holding `value`, size-checked.
    fn item(&self, key: &str, value: StoredValue) -> Result<(Item, usize)> {
        let (id, k) = self.id(key);
        let (e, ttl) = self.ttl.map(expiry_of).unzip();
        let item = Item {
            pk: self.partition_of(&id),
            id,
            v: value,
            k,
            w: write_token(),
            e,
            ttl,
        };
        let size = serde_json::to_vec(&item).map_or(usize::MAX, |json| json.len());
        if size > MAX_ITEM_BYTES - 512 {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!(
                    "the item for this key and value is {size} bytes of JSON, over Cosmos DB's item limit of {MAX_ITEM_BYTES} bytes less 512 for system properties"
                ),
            ));
        }
        Ok((item, size))
    }

    /// The item of `key` and its version, `None` when missing or expired.
    async fn read(&self, key: &str) -> Result<Option<(Item, Version)>> {
        let (id, _) = self.id(key);
        Ok(self
            .read_stored(&id)
            .await?
            .filter(|(item, _)| !item.expired(now_ms()))
            .map(|(item, etag)| {
                let version = version_of(etag, &item);
                (item, version)
            }))
    }

    /// The item `id` and its ETag as stored, expired or not; `None` when missing.
    async fn read_stored(&self, id: &str) -> Result<Option<(Item, String)>> {
        match self.container.read_item(self.pk(id), id, None).await {
            Ok(response) => {
                let etag = response.headers().etag().map(|e| e.to_string());
                let item: Item = response.into_model().map_err(map_error)?;
                let etag = etag.ok_or_else(|| {
                    Error::new(
                        ErrorKind::Other,
                        "Cosmos DB returned an item without an ETag",
                    )
                })?;
                Ok(Some((item, etag)))
            }
            Err(e) if e.status().is_not_found() => Ok(None),
            Err(e) => Err(map_error(e)),
        }
    }

    /// Writes `item` under `condition`. The SDK re-sends a write whose reply
    /// was lost; when the first attempt was applied, the retry fails its
    /// condition against our own write, which the item's write token tells:
    /// that is reported as written. An expired item is absent: a swap
    /// against its version fails, and a create replaces it if it is still
    /// the same item (Cosmos DB may not have deleted it yet).
    async fn write(&self, item: Item, condition: &WriteCondition) -> Result<WriteOutcome> {
        let pk = PartitionKey::from(item.pk.clone());
        let id = item.id.clone();
        let token = item.w.clone();
        let result = match condition {
            WriteCondition::Always => self.container.upsert_item(pk, &id, &item, None).await,
            WriteCondition::IfAbsent => self.container.create_item(pk, &id, &item, None).await,
            WriteCondition::IfVersion(version) => {
                let Some((etag, expires)) = parse_version(version) else {
                    return Ok(WriteOutcome::ConditionFailed); // not a version this bucket issued
                };
                if has_expired(expires, now_ms()) {
                    return Ok(WriteOutcome::ConditionFailed);
                }
                let options = ItemWriteOptions::default()
                    .with_precondition(Precondition::if_match(etag.to_string()));
                self.container
                    .replace_item(pk, &id, &item, Some(options))
                    .await
            }
        };
        match result {
            Ok(_) => Ok(WriteOutcome::Written),
            Err(e) if !matches!(condition, WriteCondition::Always) && lost_condition(&e) => {
                let stored = self.read_stored(&id).await?;
                match stored {
                    Some((current, etag))
                        if matches!(condition, WriteCondition::IfAbsent)
                            && current.w != token
                            && current.expired(now_ms()) =>
                    {
                        let options = ItemWriteOptions::default()
                            .with_precondition(Precondition::if_match(etag));
                        let pk = PartitionKey::from(item.pk.clone());
                        match self
                            .container
                            .replace_item(pk, &id, &item, Some(options))
                            .await
                        {
                            Ok(_) => Ok(WriteOutcome::Written),
                            Err(e) if lost_condition(&e) => {
                                let stored = self.read_stored(&id).await?;
                                self.outcome_by_token(stored, &token).await
                            }
                            Err(e) => Err(map_error(e)),
                        }
                    }
                    stored => self.outcome_by_token(stored, &token).await,
                }
            }
            Err(e) => Err(map_error(e)),
        }
    }

    /// After a conditional write failed its condition, given the item as
    /// stored now: written when it holds this write's token (an earlier
    /// attempt was applied), else a failed condition; an item that is
    /// missing, or whose whole container is, asks which.
    async fn outcome_by_token(
        &self,
        stored: Option<(Item, String)>,
        token: &str,
    ) -> Result<WriteOutcome> {
        Ok(match stored {
            Some((current, _)) if current.w == token => WriteOutcome::Written,
            Some(_) => WriteOutcome::ConditionFailed,
            None => {
                // The item is missing, or the whole container is: only the
                // first is a lost race.
                self.check_container().await?;
                WriteOutcome::ConditionFailed
            }
        })
    }

    /// `no-such-store` when the bucket's container (or its database) no
    /// longer exists: a 404 of an item operation cannot tell a missing item
    /// from a missing container, so a conditional write that met one asks.
    async fn check_container(&self) -> Result<()> {
        match self.container.read(None).await {
            Ok(_) => Ok(()),
            Err(e) if e.status().is_not_found() => Err(Error::new(
                ErrorKind::NoSuchStore,
                "the bucket's Cosmos DB container (or its database) no longer exists",
            )),
            Err(e) => Err(map_error(e)),
        }
    }

    /// [`Bucket::set`] with the write token `token` (random in `set`; fixed
    /// by tests that replay a request).
    #[doc(hidden)]
    pub async fn set_with_token(
        &self,
        key: &str,
        value: Vec<u8>,
        condition: WriteCondition,
        token: String,
    ) -> Result<WriteOutcome> {
        self.capabilities.check_value(value.len())?;
        let (mut item, _) = self.item(key, StoredValue::bytes(&value))?;
        item.w = token;
        self.write(item, &condition).await
    }

    /// Writes `items` in one partition by transactional batches of at most
    /// 100 operations and [`MAX_BATCH_BYTES`].
    async fn upsert_batches(&self, partition: &str, items: Vec<(Item, usize)>) -> Result<()> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        for (item, size) in items {
            if !batch.is_empty()
                && (batch.len() == MAX_BATCH_OPERATIONS || bytes + size > MAX_BATCH_BYTES)
            {
                self.upsert_batch(partition, std::mem::take(&mut batch))
                    .await?;
                bytes = 0;
            }
            bytes += size;
            batch.push(item);
        }
        if !batch.is_empty() {
            self.upsert_batch(partition, batch).await?;
        }
        Ok(())
    }

    async fn upsert_batch(&self, partition: &str, items: Vec<Item>) -> Result<()> {
        if let [item] = items.as_slice() {
            // A single item may be larger than a batch request may be.
            return self
                .write(item.clone(), &WriteCondition::Always)
                .await
                .map(|_| ());
        }
        let mut batch = TransactionalBatch::new(partition.to_string());
        for item in items {
            batch = batch.upsert_item(item, None).map_err(map_error)?;
        }
        let response = self
            .container
            .execute_transactional_batch(batch, None)
            .await
            .map_err(map_error)?
            .into_model()
            .map_err(map_error)?;
        if let Some(failed) = response
            .results()
            .iter()
            .find(|r| !r.is_success() && r.status_code() != 424)
        {
            let code = failed.status_code();
            let kind = match code {
                413 => ErrorKind::TooLarge,
                408 | 429 | 449 | 503 => ErrorKind::Unavailable,
                _ => ErrorKind::Other,
            };
            return Err(Error::new(
                kind,
                format!("Cosmos DB transactional batch failed: an upsert answered {code}"),
            )
            .set_retryable(kind == ErrorKind::Unavailable));
        }
        Ok(())
    }

    fn scope(&self) -> FeedScope {
        match &self.partition {
            Some(partition) => FeedScope::partition(partition.clone()),
            None => FeedScope::full_container(),
        }
    }

    /// The key of a listed item; `None` for one this bucket did not write
    /// (an id that is not the canonical encoding of its key): skipped.
    fn decode(&self, row: &ListedId) -> Option<String> {
        self.codec.listed_key(&row.id, row.k.as_deref())
    }
}

#[async_trait]
impl Bucket for CosmosBucket {
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        let Some((item, version)) = self.read(key).await? else {
            return Ok(None);
        };
        Ok(Some(Versioned {
            value: item.v.to_bytes()?,
            version,
        }))
    }

    async fn set(
        &self,
        key: &str,
        value: Vec<u8>,
        condition: WriteCondition,
    ) -> Result<WriteOutcome> {
        self.capabilities.check_value(value.len())?;
        let (item, _) = self.item(key, StoredValue::bytes(&value))?;
        self.write(item, &condition).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let (id, _) = self.id(key);
        match self.container.delete_item(self.pk(&id), &id, None).await {
            Ok(_) => Ok(()),
            Err(e) if e.status().is_not_found() => Ok(()),
            Err(e) => Err(map_error(e)),
        }
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        Ok(self.read(key).await?.is_some())
    }

    async fn list(&self, cursor: Option<&[u8]>, limit: usize) -> Result<ListPage> {
        let mut text = String::from("SELECT c.id, c.k, c.e FROM c");
        let mut query_params = Vec::new();
        if let Some(partition) = &self.partition {
            text.push_str(" WHERE c.pk = @pk");
            query_params.push(partition.clone());
        }
        let mut query = Query::from(text);
        for p in query_params {
            query = query.with_parameter("@pk", p).map_err(map_error)?;
        }
        let limit =
            NonZeroU32::new(u32::try_from(limit).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN);
        let mut options =
            QueryOptions::default().with_max_item_count(MaxItemCountHint::Limit(limit));
        if let Some(token) = cursor {
            // SDK tokens are printable ASCII (they travel in a header).
            let token = std::str::from_utf8(token)
                .ok()
                .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
                .ok_or_else(|| Error::new(ErrorKind::InvalidCursor, "malformed list cursor"))?;
            options = options.with_continuation_token(
                azure_data_cosmos::feed::ContinuationToken::from_string(token.to_string()),
            );
        }
        let refused = |e: CosmosError| {
            if cursor.is_some() && status_code(&e) == 400 {
                Error::new(
                    ErrorKind::InvalidCursor,
                    format!("Cosmos DB refused the list cursor: {e}"),
                )
            } else {
                map_error(e)
            }
        };
        let mut pages = self
            .container
            .query_items::<ListedId>(query, self.scope(), Some(options))
            .await
            .map_err(refused)?
            .into_pages();
        // Skip empty pages (e.g. of empty partition ranges): a page is empty
        // only at the end.
        loop {
            let Some(page) = pages.try_next().await.map_err(refused)? else {
                return Ok(ListPage::default());
            };
            let done = self.partition.is_some() && page.headers().continuation().is_none();
            let now = now_ms();
            let rows: Vec<ListedId> = page
                .into_items()
                .into_iter()
                .filter(|row| !has_expired(row.e, now))
                .collect();
            let keys: Vec<String> = rows.iter().filter_map(|row| self.decode(row)).collect();
            if rows.len() > keys.len() {
                tracing::debug!(
                    "list skipped {} items that wasikv did not write",
                    rows.len() - keys.len()
                );
            }
            if keys.is_empty() && !done {
                continue;
            }
            let next = if done {
                None
            } else {
                Some(
                    pages
                        .to_continuation_token()
                        .map_err(map_error)?
                        .as_str()
                        .as_bytes()
                        .to_vec(),
                )
            };
            return Ok(ListPage { keys, next });
        }
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        self.capabilities.check_batch(keys.len())?;
        let Some(partition) = &self.partition else {
            return Err(Error::unsupported("get-many"));
        };
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = keys.iter().map(|k| self.id(k).0).collect();
        let mut distinct = ids.clone();
        distinct.sort();
        distinct.dedup();
        let query = Query::from("SELECT * FROM c WHERE c.pk = @pk AND ARRAY_CONTAINS(@ids, c.id)")
            .with_parameter("@pk", partition.clone())
            .and_then(|q| q.with_parameter("@ids", &distinct))
            .map_err(map_error)?;
        let mut rows = self
            .container
            .query_items::<Item>(query, FeedScope::partition(partition.clone()), None)
            .await
            .map_err(map_error)?;
        let mut found: HashMap<String, Vec<u8>> = HashMap::new();
        let now = now_ms();
        while let Some(item) = rows.try_next().await.map_err(map_error)? {
            if !item.expired(now) {
                found.insert(item.id, item.v.to_bytes()?);
            }
        }
        Ok(ids.iter().map(|id| found.get(id).cloned()).collect())
    }

    async fn set_many(&self, items: Vec<(String, Vec<u8>)>) -> Result<()> {
        self.capabilities.check_batch(items.len())?;
        let Some(partition) = &self.partition else {
            return Err(Error::unsupported("set-many"));
        };
        // Check every item before writing any, so a bad one writes nothing.
        let items = items
            .into_iter()
            .map(|(key, value)| {
                self.capabilities.check_value(value.len())?;
                self.item(&key, StoredValue::bytes(&value))
            })
            .collect::<Result<Vec<_>>>()?;
        self.upsert_batches(partition, items).await
    }
}
