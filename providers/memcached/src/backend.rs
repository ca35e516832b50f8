//! [`MemcachedProvider`] and [`MemcachedBucket`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use wasikv_core::codec::EncodedKey;
use wasikv_core::{
    Bucket, BucketPlan, Capabilities, Consistency, Endpoint, Error, ErrorKind, Expiry, KeyCodec,
    ListPage, Location, Namespace, Options, Provider, Result, Store, Support, Version, Versioned,
    WriteCondition, WriteOutcome,
};

use crate::config::MemcachedConfig;
use crate::core::{Item, MAX_KEY_BYTES, MemcachedStore, ServerInstance, StoreCommand, Stored};

/// The provider name in configuration.
pub const NAME: &str = "memcached";

/// Longest bucket prefix: memcached's 250-byte key limit less a hashed id
/// (every key fits: escaped ids longer than the room left are hashed).
pub const MAX_PREFIX_BYTES: usize = MAX_KEY_BYTES - wasikv_core::codec::HASHED_ID_BYTES;

/// Most keys in one `gets` or pipelined batch.
pub const MAX_BATCH: usize = 100;

/// Item flag: plain value.
const PLAIN: u32 = 0;
/// Item flag: the key was hashed; the data is `u16 key length, key, value`.
const HASHED: u32 = 1;

/// Longest original key a hashed item can hold (its length is a `u16`).
pub const MAX_HASHED_KEY_BYTES: usize = u16::MAX as usize;

/// Room an item needs besides its data: memcached's item header (about 56
/// bytes with CAS), the key (at most 250 bytes and its terminator) and the
/// `flags bytes` suffix, rounded up.
const ITEM_HEADER: usize = 512;

/// Keys up to this length are within the declared value limit under any
/// key: the contracts' minimum key length, which the host's default
/// `limits.max_key_bytes` also is. A longer hashed key leaves less room,
/// checked per write.
const DECLARED_FOR_KEY_BYTES: usize = 1024;

/// The smallest `max_item_bytes` that leaves room for a value under a
/// 1024-byte hashed key.
pub const MIN_ITEM_BYTES: usize = 2048;

/// The value limit declared for items of `max_item_bytes`: what remains
/// after the header and a hashed key of up to 1024 bytes.
fn declared_max_value(max_item_bytes: usize) -> usize {
    max_item_bytes.saturating_sub(ITEM_HEADER + 2 + DECLARED_FOR_KEY_BYTES)
}

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
        max_value_bytes: Some(declared_max_value(max_item_bytes)),
        max_batch_items: Some(MAX_BATCH),
        consistency: Consistency::Strong,
        durable: false,
        versioning: "CAS unique (server-wide counter) + server pid and start time",
        expiry: Expiry::Native {
            how: "item exptime, whole seconds rounded up + 1",
            resolution: Duration::from_secs(2),
        },
        ..Capabilities::required()
    }
}

fn check_max_item_bytes(max_item_bytes: usize) -> Result<()> {
    if max_item_bytes < MIN_ITEM_BYTES {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            format!(
                "max_item_bytes is {max_item_bytes}, under the least of {MIN_ITEM_BYTES} bytes that leaves room for a value under a 1024-byte key"
            ),
        ));
    }
    Ok(())
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
        check_max_item_bytes(config.max_item_bytes).map_err(|e| e.in_bucket(bucket, NAME))?;
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
            ttl: None,
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
        Ok(Arc::new(
            MemcachedBucket::new(
                self.0.clone(),
                &config.prefix(&plan.bucket),
                config.max_item_bytes,
            )?
            .expiring(plan.ttl),
        ))
    }
}

/// A bucket: a key prefix on one memcached server.
pub struct MemcachedBucket {
    store: Arc<MemcachedStore>,
    prefix: String,
    codec: KeyCodec,
    capabilities: Capabilities,
    max_item_bytes: usize,
    /// The `exptime` of every write (0: the bucket has no `ttl`).
    exptime: u32,
}

impl MemcachedBucket {
    /// The bucket at `prefix` on `store`.
    pub fn new(store: Arc<MemcachedStore>, prefix: &str, max_item_bytes: usize) -> Result<Self> {
        check_prefix(prefix)?;
        check_max_item_bytes(max_item_bytes)?;
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
            max_item_bytes,
            exptime: 0,
        })
    }

    /// The bucket with keys that expire `ttl` after their last write (see
    /// [`crate::core::exptime`]).
    pub fn expiring(mut self, ttl: Option<Duration>) -> Self {
        self.exptime = crate::core::exptime(ttl);
        self
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
        if key.len() > MAX_HASHED_KEY_BYTES {
            return Err(Error::new(
                ErrorKind::InvalidKey,
                format!(
                    "key is {} bytes, over memcached's limit of {MAX_HASHED_KEY_BYTES} bytes for keys longer than its ids",
                    key.len()
                ),
            ));
        }
        // A hashed key longer than the declared allowance takes room from the value.
        let room = self
            .max_item_bytes
            .saturating_sub(ITEM_HEADER + 2 + key.len());
        if value.len() > room {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!(
                    "value is {} bytes, over the limit of {room} bytes for a {}-byte key (max_item_bytes {} less the item header and the key)",
                    value.len(),
                    key.len(),
                    self.max_item_bytes
                ),
            ));
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

/// A version: the server instance (pid, start time) and the CAS unique it
/// gave, 16 bytes.
fn version_of(item: &Item) -> Version {
    let mut bytes = Vec::with_capacity(16);
    bytes.extend_from_slice(&item.instance.pid.to_be_bytes());
    bytes.extend_from_slice(&item.instance.started.to_be_bytes());
    bytes.extend_from_slice(&item.cas.to_be_bytes());
    Version(bytes)
}

/// The instance and unique of a version made by [`version_of`].
fn parse_version(version: &Version) -> Option<(ServerInstance, u64)> {
    let bytes: &[u8; 16] = version.0.as_slice().try_into().ok()?;
    let pid = u32::from_be_bytes(bytes[0..4].try_into().ok()?);
    let started = u32::from_be_bytes(bytes[4..8].try_into().ok()?);
    let unique = u64::from_be_bytes(bytes[8..16].try_into().ok()?);
    Some((ServerInstance { pid, started }, unique))
}

#[async_trait]
impl Bucket for MemcachedBucket {
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        Ok(self.read(key).await?.map(|item| Versioned {
            version: version_of(&item),
            value: item.data,
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
            WriteCondition::IfVersion(v) => match parse_version(v) {
                Some((instance, unique)) => StoreCommand::Cas { unique, instance },
                None => return Ok(WriteOutcome::ConditionFailed),
            },
        };
        Ok(
            match self
                .store
                .store(command, &id, flags, &data, self.exptime)
                .await?
            {
                Stored::Stored => WriteOutcome::Written,
                Stored::NotStored => WriteOutcome::ConditionFailed,
            },
        )
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
        for reply in self.store.store_many(&commands, self.exptime).await? {
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
