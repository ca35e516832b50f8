//! [`MemcachedProvider`] and [`MemcachedBucket`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use wasikv_core::codec::EncodedKey;
use wasikv_core::{
    Bucket, BucketPlan, Capabilities, Consistency, Endpoint, Error, ErrorKind, KeyCodec, ListPage,
    Location, Namespace, Options, Provider, Result, Store, Support, Version, Versioned,
    WriteCondition, WriteOutcome,
};

use crate::config::MemcachedConfig;
use crate::core::{Item, MAX_KEY_BYTES, MemcachedStore, StoreCommand, Stored};

/// The provider name in configuration.
pub const NAME: &str = "memcached";

/// Longest bucket prefix, leaving room for the encoded key.
pub const MAX_PREFIX_BYTES: usize = 200;

/// Most keys in one `gets` or pipelined batch.
pub const MAX_BATCH: usize = 100;

/// Item flag: plain value.
const PLAIN: u32 = 0;
/// Item flag: the key was hashed; the data is `u16 key length, key, value`.
const HASHED: u32 = 1;

/// Room kept in an item for memcached's own header and a hashed key.
const ITEM_OVERHEAD: usize = 1024;

/// Builds memcached stores.
#[derive(Debug, Default, Clone, Copy)]
pub struct MemcachedProvider;

/// The capabilities of a memcached bucket with `max_item_bytes`.
pub fn capabilities(max_item_bytes: usize) -> Capabilities {
    Capabilities {
        list: Support::Unsupported,
        increment: Support::Unsupported,
        get_many: Support::Native,
        set_many: Support::Native,
        delete_many: Support::Native,
        max_key_bytes: Some(MAX_KEY_BYTES),
        max_value_bytes: Some(max_item_bytes.saturating_sub(ITEM_OVERHEAD)),
        max_batch_items: Some(MAX_BATCH),
        consistency: Consistency::Strong,
        durable: false,
        versioning: "CAS unique (server-wide counter)",
        ..Capabilities::required()
    }
}

fn check_prefix(prefix: &str) -> Result<()> {
    if prefix.len() > MAX_PREFIX_BYTES {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            format!(
                "prefix is {} bytes, over the limit of {MAX_PREFIX_BYTES} bytes",
                prefix.len()
            ),
        ));
    }
    if prefix.chars().any(|c| c == ' ' || c.is_control()) {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            "prefix has a space or control character",
        ));
    }
    Ok(())
}

#[async_trait]
impl Provider for MemcachedProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        capabilities(1 << 20)
    }

    fn plan(&self, bucket: &str, options: &Options) -> Result<BucketPlan> {
        let config: MemcachedConfig = options.parse(bucket, NAME)?;
        let prefix = config.prefix(bucket);
        check_prefix(&prefix).map_err(|e| e.in_bucket(bucket, NAME))?;
        let endpoint = Endpoint::parse_server(&config.address, 11211).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidConfig,
                "address must be host:port (the port a number)",
            )
            .in_bucket(bucket, NAME)
        })?;
        Ok(BucketPlan {
            bucket: bucket.to_string(),
            provider: NAME,
            connection: config.address.clone(),
            // A memcached server has one keyspace.
            location: Location::new(endpoint, ""),
            namespace: Namespace::Prefix(prefix),
            options: options.clone(),
        })
    }

    async fn connect(&self, plan: &BucketPlan) -> Result<Arc<dyn Store>> {
        let config: MemcachedConfig = plan.options.parse(&plan.bucket, NAME)?;
        let store = MemcachedStore::connect(
            &config.address,
            config.pool_size,
            Duration::from_millis(config.timeout_ms),
        )
        .await?;
        Ok(Arc::new(SharedStore(Arc::new(store))))
    }
}

/// A [`Store`] over one shared pool.
#[derive(Debug, Clone)]
pub struct SharedStore(pub Arc<MemcachedStore>);

#[async_trait]
impl Store for SharedStore {
    async fn open_bucket(&self, plan: &BucketPlan) -> Result<Arc<dyn Bucket>> {
        let config: MemcachedConfig = plan.options.parse(&plan.bucket, NAME)?;
        Ok(Arc::new(MemcachedBucket::new(
            self.0.clone(),
            &config.prefix(&plan.bucket),
            config.max_item_bytes,
        )?))
    }
}

/// A bucket: a key prefix on one memcached server.
pub struct MemcachedBucket {
    store: Arc<MemcachedStore>,
    prefix: String,
    codec: KeyCodec,
    capabilities: Capabilities,
}

impl MemcachedBucket {
    /// The bucket at `prefix` on `store`.
    pub fn new(store: Arc<MemcachedStore>, prefix: &str, max_item_bytes: usize) -> Result<Self> {
        check_prefix(prefix)?;
        Ok(MemcachedBucket {
            store,
            prefix: prefix.to_string(),
            codec: KeyCodec {
                forbidden: &[],
                escape_space: true,
                max_id_bytes: MAX_KEY_BYTES - prefix.len(),
                reserve_dunder: false,
                escape_trailing_space: false,
            },
            capabilities: capabilities(max_item_bytes),
        })
    }

    fn encode(&self, key: &str) -> (String, EncodedKey) {
        let encoded = self.codec.encode(key);
        (format!("{}{}", self.prefix, encoded.id), encoded)
    }

    /// The item's flags and data for `value` under `key`.
    fn pack(&self, key: &str, encoded: &EncodedKey, value: &[u8]) -> Result<(u32, Vec<u8>)> {
        let max = self.capabilities.max_value_bytes.unwrap_or(usize::MAX);
        if value.len() > max {
            return Err(Error::too_large("value", value.len(), max));
        }
        if !encoded.hashed {
            return Ok((PLAIN, value.to_vec()));
        }
        let mut data = Vec::with_capacity(2 + key.len() + value.len());
        data.extend_from_slice(&(key.len() as u16).to_be_bytes());
        data.extend_from_slice(key.as_bytes());
        data.extend_from_slice(value);
        Ok((HASHED, data))
    }

    /// The value of an item read for `key` (`None` if it belongs to another key).
    fn unpack(key: &str, item: Item) -> Result<Option<Item>> {
        match item.flags {
            PLAIN => Ok(Some(item)),
            HASHED => {
                let corrupt = || Error::new(ErrorKind::Other, "memcached: corrupt hashed-key item");
                let len = u16::from_be_bytes(
                    item.data
                        .get(..2)
                        .ok_or_else(corrupt)?
                        .try_into()
                        .expect("2 bytes"),
                );
                let stored = item.data.get(2..2 + len as usize).ok_or_else(corrupt)?;
                if stored != key.as_bytes() {
                    return Ok(None); // a SHA-256 collision: not this key
                }
                Ok(Some(Item {
                    data: item.data[2 + len as usize..].to_vec(),
                    ..item
                }))
            }
            other => Err(Error::new(
                ErrorKind::Other,
                format!("memcached: item with unknown flags {other} (written by another client?)"),
            )),
        }
    }

    async fn read(&self, key: &str) -> Result<Option<Item>> {
        let (id, _) = self.encode(key);
        match self
            .store
            .gets(std::slice::from_ref(&id))
            .await?
            .remove(&id)
        {
            Some(item) => Self::unpack(key, item),
            None => Ok(None),
        }
    }
}

#[async_trait]
impl Bucket for MemcachedBucket {
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        Ok(self.read(key).await?.map(|item| Versioned {
            value: item.data,
            version: Version::from_u64(item.cas),
        }))
    }

    async fn set(
        &self,
        key: &str,
        value: Vec<u8>,
        condition: WriteCondition,
    ) -> Result<WriteOutcome> {
        let (id, encoded) = self.encode(key);
        let (flags, data) = self.pack(key, &encoded, &value)?;
        let command = match &condition {
            WriteCondition::Always => StoreCommand::Set,
            WriteCondition::IfAbsent => StoreCommand::Add,
            WriteCondition::IfVersion(v) => match v.as_u64() {
                Some(unique) => StoreCommand::Cas(unique),
                None => return Ok(WriteOutcome::ConditionFailed),
            },
        };
        Ok(match self.store.store(command, &id, flags, &data).await? {
            Stored::Stored => WriteOutcome::Written,
            Stored::NotStored => WriteOutcome::ConditionFailed,
        })
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let (id, _) = self.encode(key);
        self.store.delete_many(&[id]).await
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let (id, encoded) = self.encode(key);
        if encoded.hashed {
            return Ok(self.read(key).await?.is_some());
        }
        self.store.exists(&id).await
    }

    async fn list(&self, _cursor: Option<&[u8]>, _limit: usize) -> Result<ListPage> {
        Err(Error::new(
            ErrorKind::Unsupported,
            "list-keys is not supported by memcached: it cannot enumerate keys reliably",
        ))
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        self.capabilities.check_batch(keys.len())?;
        let ids: Vec<String> = keys.iter().map(|k| self.encode(k).0).collect();
        let mut unique: Vec<String> = ids.clone();
        unique.sort();
        unique.dedup();
        let items = self.store.gets(&unique).await?;
        keys.iter()
            .zip(&ids)
            .map(|(key, id)| match items.get(id) {
                Some(item) => Ok(Self::unpack(key, item.clone())?.map(|i| i.data)),
                None => Ok(None),
            })
            .collect()
    }

    async fn set_many(&self, items: Vec<(String, Vec<u8>)>) -> Result<()> {
        self.capabilities.check_batch(items.len())?;
        let mut packed = Vec::with_capacity(items.len());
        for (key, value) in &items {
            let (id, encoded) = self.encode(key);
            let (flags, data) = self.pack(key, &encoded, value)?;
            packed.push((id, flags, data));
        }
        let commands: Vec<(StoreCommand, &str, u32, &[u8])> = packed
            .iter()
            .map(|(id, flags, data)| (StoreCommand::Set, id.as_str(), *flags, data.as_slice()))
            .collect();
        for reply in self.store.store_many(&commands).await? {
            reply?;
        }
        Ok(())
    }

    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        self.capabilities.check_batch(keys.len())?;
        let ids: Vec<String> = keys.iter().map(|k| self.encode(k).0).collect();
        self.store.delete_many(&ids).await
    }
}
