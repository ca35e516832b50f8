//! [`MemoryProvider`] and [`MemoryBucket`].

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, PoisonError, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use wasikv_core::{
    BatchAtomicity, Bucket, BucketPlan, Capabilities, Endpoint, Error, ErrorKind, Expiry,
    ImmediateBucket, ListPage, Location, Namespace, Options, Provider, Result, Store, Support,
    Version, Versioned, WriteCondition, WriteOutcome, counter,
};

use crate::config::MemoryConfig;
use crate::core::{Entry, Keyspace, Map, MemoryStore, next_version};

/// The provider name in configuration.
pub const NAME: &str = "memory";

/// Builds memory stores.
#[derive(Debug, Default, Clone, Copy)]
pub struct MemoryProvider;

/// How a memory bucket's keys expire.
pub const EXPIRY: Expiry = Expiry::Filtered {
    how: "expiry per entry; swept 2 entries per write",
    resolution: Duration::from_millis(1),
};

/// The capabilities of a memory bucket.
pub fn capabilities(config: &MemoryConfig) -> Capabilities {
    let optional = if config.required_only {
        Support::Unsupported
    } else {
        Support::Native
    };
    Capabilities {
        increment: optional,
        get_many: optional,
        set_many: optional,
        set_many_atomicity: BatchAtomicity::All,
        delete_many: optional,
        max_value_bytes: config.max_value_bytes,
        max_batch_items: config.max_batch_items,
        budgeted_get_many: !config.required_only,
        bounded_increment: !config.required_only,
        versioning: "process-wide write counter",
        expiry: EXPIRY,
        ..Capabilities::required()
    }
}

#[async_trait]
impl Provider for MemoryProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        capabilities(&MemoryConfig::default())
    }

    fn plan(&self, bucket: &str, options: &Options) -> Result<BucketPlan> {
        let config: MemoryConfig = options.parse(bucket, NAME)?;
        Ok(BucketPlan {
            bucket: bucket.to_string(),
            provider: NAME,
            connection: NAME.to_string(),
            location: Location::new(Endpoint::Process, ""),
            namespace: Namespace::Exclusive(config.map.unwrap_or_else(|| bucket.to_string())),
            options: options.clone(),
            ttl: None,
        })
    }

    async fn connect(&self, _plan: &BucketPlan) -> Result<Arc<dyn Store>> {
        Ok(Arc::new(MemoryStore::new()))
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn open_bucket(&self, plan: &BucketPlan) -> Result<Arc<dyn Bucket>> {
        let config: MemoryConfig = plan.options.parse(&plan.bucket, NAME)?;
        let map_name = config.map.clone().unwrap_or_else(|| plan.bucket.clone());
        Ok(Arc::new(
            MemoryBucket::new(self, &map_name, &config).expiring(plan.ttl),
        ))
    }
}

/// A bucket on one shared map.
#[derive(Debug)]
pub struct MemoryBucket {
    map: Arc<Map>,
    writes: Arc<AtomicU64>,
    capabilities: Capabilities,
    ttl: Option<Duration>,
}

impl MemoryBucket {
    /// A bucket on `map` of `store` with `config`.
    pub fn new(store: &MemoryStore, map: &str, config: &MemoryConfig) -> Self {
        MemoryBucket {
            map: store.map(map),
            writes: store.write_counter(),
            capabilities: capabilities(config),
            ttl: None,
        }
    }

    /// The bucket with keys that expire `ttl` after their last write.
    pub fn expiring(mut self, ttl: Option<Duration>) -> Self {
        self.ttl = ttl;
        self
    }

    /// A new entry holding `value`, as one write of this bucket makes it.
    fn entry(&self, value: Vec<u8>) -> Entry {
        Entry {
            value,
            version: next_version(&self.writes),
            expires: self.ttl.map(|ttl| Instant::now() + ttl),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Keyspace> {
        self.map.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Keyspace> {
        self.map.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn optional(&self, supported: Support, op: &str) -> Result<()> {
        if supported.is_native() {
            Ok(())
        } else {
            Err(Error::unsupported(op))
        }
    }
}

#[async_trait]
impl Bucket for MemoryBucket {
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        Ok(self.read().get(key).map(|e| Versioned {
            value: e.value.clone(),
            version: Version::from_u64(e.version),
        }))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        ImmediateBucket::get(self, key)
    }

    async fn set(
        &self,
        key: &str,
        value: Vec<u8>,
        condition: WriteCondition,
    ) -> Result<WriteOutcome> {
        self.capabilities.check_value(value.len())?;
        let mut map = self.write();
        let current = map.get(key).map(|e| e.version);
        let allowed = match &condition {
            WriteCondition::Always => true,
            WriteCondition::IfAbsent => current.is_none(),
            WriteCondition::IfVersion(v) => current.is_some() && current == v.as_u64(),
        };
        if !allowed {
            return Ok(WriteOutcome::ConditionFailed);
        }
        let entry = self.entry(value);
        map.insert(key, entry);
        Ok(WriteOutcome::Written)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        ImmediateBucket::delete(self, key)
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        ImmediateBucket::exists(self, key)
    }

    async fn list(&self, cursor: Option<&[u8]>, limit: usize) -> Result<ListPage> {
        let limit = limit.max(1);
        let after = match cursor {
            None => None,
            Some(token) => Some(
                std::str::from_utf8(token)
                    .map_err(|_| Error::new(ErrorKind::InvalidCursor, "malformed list cursor"))?,
            ),
        };
        let map = self.read();
        let mut range = map.keys_after(after);
        let keys: Vec<String> = range.by_ref().take(limit).map(str::to_string).collect();
        let more = range.next().is_some();
        let next = match (more, keys.last()) {
            (true, Some(last)) => Some(last.as_bytes().to_vec()),
            _ => None,
        };
        Ok(ListPage { keys, next })
    }

    async fn increment(&self, key: &str, delta: i64) -> Result<i64> {
        self.optional(self.capabilities.increment, "increment")?;
        ImmediateBucket::increment_at_least(self, key, delta, i64::MIN)
    }

    async fn increment_at_least(&self, key: &str, delta: i64, min: i64) -> Result<i64> {
        self.optional(self.capabilities.increment, "increment")?;
        ImmediateBucket::increment_at_least(self, key, delta, min)
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        self.optional(self.capabilities.get_many, "get-many")?;
        self.capabilities.check_batch(keys.len())?;
        let map = self.read();
        Ok(keys
            .iter()
            .map(|k| map.get(k).map(|e| e.value.clone()))
            .collect())
    }

    async fn get_many_within(
        &self,
        keys: &[String],
        max_bytes: usize,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        self.optional(self.capabilities.get_many, "get-many")?;
        self.capabilities.check_batch(keys.len())?;
        let map = self.read();
        // Sizes first: nothing is copied for a result over the budget.
        let total: usize = keys
            .iter()
            .filter_map(|k| map.get(k).map(|e| e.value.len()))
            .sum();
        if total > max_bytes {
            return Err(wasikv_core::get_many_too_large(total, max_bytes));
        }
        Ok(keys
            .iter()
            .map(|k| map.get(k).map(|e| e.value.clone()))
            .collect())
    }

    async fn set_many(&self, items: Vec<(String, Vec<u8>)>) -> Result<()> {
        self.optional(self.capabilities.set_many, "set-many")?;
        self.capabilities.check_batch(items.len())?;
        for (_, value) in &items {
            self.capabilities.check_value(value.len())?;
        }
        let mut map = self.write();
        for (key, value) in items {
            let entry = self.entry(value);
            map.insert(key, entry);
        }
        Ok(())
    }

    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        self.optional(self.capabilities.delete_many, "delete-many")?;
        self.capabilities.check_batch(keys.len())?;
        let mut map = self.write();
        for key in keys {
            map.remove(key);
        }
        Ok(())
    }

    fn immediate(&self) -> Option<&dyn ImmediateBucket> {
        // A required-only bucket has no native increment to serve.
        self.capabilities
            .increment
            .is_native()
            .then_some(self as &dyn ImmediateBucket)
    }
}

impl ImmediateBucket for MemoryBucket {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.read().get(key).map(|e| e.value.clone()))
    }

    fn exists(&self, key: &str) -> Result<bool> {
        Ok(self.read().contains_key(key))
    }

    fn set(&self, key: String, value: Vec<u8>) -> Result<()> {
        self.capabilities.check_value(value.len())?;
        let mut map = self.write();
        let entry = self.entry(value);
        map.insert(key, entry);
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.write().remove(key);
        Ok(())
    }

    /// Unchecked for `required_only` (see [`Bucket::immediate`]'s `None`).
    fn increment_at_least(&self, key: &str, delta: i64, min: i64) -> Result<i64> {
        let mut map = self.write();
        // A counter is usually incremented again: update it in place (one
        // lookup, no key allocation); only its first increment inserts.
        if let Some(entry) = map.get_mut(key) {
            let new = counter::apply_at_least(Some(entry.value.as_slice()), delta, min)?;
            *entry = self.entry(counter::format(new));
            return Ok(new);
        }
        let new = counter::apply_at_least(None, delta, min)?;
        map.insert(key, self.entry(counter::format(new)));
        Ok(new)
    }
}
