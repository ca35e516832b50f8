//! [`EmbeddedProvider`] and [`EmbeddedBucket`].

use std::ops::Bound;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use redb::{ReadableTable, TableDefinition};
use wasikv_core::expiry::now_ms;
use wasikv_core::{
    BatchAtomicity, Bucket, BucketPlan, Capabilities, Consistency, Endpoint, Error, ErrorKind,
    Expiry, ListPage, Location, Namespace, Options, Provider, Result, Store, Support, Version,
    Versioned, WriteCondition, WriteOutcome, counter,
};

use crate::config::EmbeddedConfig;
use crate::core::{
    EmbeddedStore, Record, Versions, WriteResult, blocking, is_missing_table, read_txn,
};

/// The provider name in configuration.
pub const NAME: &str = "embedded";

/// Builds embedded stores.
#[derive(Debug, Default, Clone, Copy)]
pub struct EmbeddedProvider;

/// How an embedded bucket's keys expire.
pub const EXPIRY: Expiry = Expiry::Filtered {
    how: "expiry time per record; swept 2 records per write",
    resolution: Duration::from_millis(1),
};

/// Records a write of a bucket with a `ttl` looks at for expired ones to
/// delete (in the same transaction), going on where the last write stopped:
/// a full pass takes one write per this many records and each write adds
/// at most one, so expired records stay within a constant factor of the
/// live ones.
pub const SWEEP_PER_WRITE: usize = 2;

/// The capabilities of an embedded bucket.
pub fn capabilities() -> Capabilities {
    Capabilities {
        increment: Support::Native,
        get_many: Support::Native,
        set_many: Support::Native,
        set_many_atomicity: BatchAtomicity::All,
        delete_many: Support::Native,
        budgeted_get_many: true,
        bounded_increment: true,
        consistency: Consistency::Strong,
        durable: true,
        versioning: "persistent write counter",
        expiry: EXPIRY,
        ..Capabilities::required()
    }
}

/// Identity of a database file: absolute, with its directory resolved
/// (symbolic links, `..`) where it exists, so `./a.redb`, `a.redb` and
/// `x/../a.redb` are one file: one open, one overlap check.
fn file_identity(file: std::path::PathBuf) -> std::path::PathBuf {
    let absolute = std::path::absolute(&file).unwrap_or(file);
    match (absolute.parent(), absolute.file_name()) {
        (Some(dir), Some(name)) => match std::fs::canonicalize(dir) {
            Ok(dir) => dir.join(name),
            Err(_) => absolute,
        },
        _ => absolute,
    }
}

#[async_trait]
impl Provider for EmbeddedProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        capabilities()
    }

    fn plan(&self, bucket: &str, options: &Options) -> Result<BucketPlan> {
        let config: EmbeddedConfig = options.parse(bucket, NAME)?;
        let file = config.file(bucket);
        let absolute = file_identity(file);
        Ok(BucketPlan {
            bucket: bucket.to_string(),
            provider: NAME,
            connection: absolute.to_string_lossy().into_owned(),
            location: Location::new(Endpoint::Path(absolute.clone()), ""),
            namespace: Namespace::Exclusive(config.table(bucket)),
            options: options.clone(),
            ttl: None,
        })
    }

    async fn connect(&self, plan: &BucketPlan) -> Result<Arc<dyn Store>> {
        let path = std::path::PathBuf::from(&plan.connection);
        let store = blocking(move || EmbeddedStore::open(&path)).await?;
        Ok(Arc::new(SharedStore(Arc::new(store))))
    }
}

/// A [`Store`] over one shared file.
#[derive(Debug, Clone)]
pub struct SharedStore(pub Arc<EmbeddedStore>);

#[async_trait]
impl Store for SharedStore {
    async fn open_bucket(&self, plan: &BucketPlan) -> Result<Arc<dyn Bucket>> {
        let config: EmbeddedConfig = plan.options.parse(&plan.bucket, NAME)?;
        Ok(Arc::new(
            EmbeddedBucket::new(self.0.clone(), &config.table(&plan.bucket))
                .with_max_value_bytes(config.max_value_bytes)
                .expiring(plan.ttl),
        ))
    }
}

/// A bucket: one table of the file.
#[derive(Debug, Clone)]
pub struct EmbeddedBucket {
    store: Arc<EmbeddedStore>,
    table: Arc<str>,
    capabilities: Capabilities,
    ttl: Option<Duration>,
    /// The last key the expiry sweep looked at.
    swept_to: Arc<Mutex<Option<String>>>,
}

impl EmbeddedBucket {
    /// The bucket on `table` of `store`.
    pub fn new(store: Arc<EmbeddedStore>, table: &str) -> Self {
        EmbeddedBucket {
            store,
            table: format!("bucket:{table}").into(),
            capabilities: capabilities(),
            ttl: None,
            swept_to: Arc::default(),
        }
    }

    /// The bucket with keys that expire `ttl` after their last write.
    pub fn expiring(mut self, ttl: Option<Duration>) -> Self {
        self.ttl = ttl;
        self
    }

    /// When a key written now expires, in milliseconds since the epoch.
    fn expires_ms(&self) -> Option<u64> {
        self.ttl.map(wasikv_core::expiry::expiry_after)
    }

    /// Refuses values over `max` bytes (`None`: no limit of its own).
    pub fn with_max_value_bytes(mut self, max: Option<usize>) -> Self {
        self.capabilities.max_value_bytes = max;
        self
    }

    fn def(&self) -> TableDefinition<'_, &'static str, &'static [u8]> {
        definition(&self.table)
    }

    /// Runs `f` on the bucket's table inside a write transaction, committed
    /// durably before returning; concurrent writes share commits
    /// ([`EmbeddedStore::write`]: `f` may run more than once, and refuses
    /// only before it changes anything).
    async fn write<T: Send + 'static>(
        &self,
        mut f: impl FnMut(&mut Versions, &mut Table<'_>) -> WriteResult<T> + Send + 'static,
    ) -> Result<T> {
        let table = self.table.clone();
        let sweep = self.ttl.map(|_| self.swept_to.clone());
        self.store
            .write(move |txn, versions| {
                let mut open = txn.open_table(definition(&table))?;
                let outcome = f(versions, &mut open)?;
                if let Some(swept_to) = &sweep {
                    sweep_expired(&mut open, swept_to, SWEEP_PER_WRITE)?;
                }
                Ok(outcome)
            })
            .await
    }

    /// Runs `f` on the bucket's table in a read transaction; `None` when the
    /// table does not exist yet.
    fn read<T>(
        &self,
        f: impl FnOnce(&redb::ReadOnlyTable<&'static str, &'static [u8]>) -> Result<T>,
    ) -> Result<Option<T>> {
        let txn = read_txn(&self.store)?;
        match txn.open_table(self.def()) {
            Ok(table) => f(&table).map(Some),
            Err(e) if is_missing_table(&e) => Ok(None),
            Err(e) => Err(self.store.err(e)),
        }
    }
}

/// A bucket's table in a write transaction.
type Table<'t> = redb::Table<'t, &'static str, &'static [u8]>;

fn definition(table: &str) -> TableDefinition<'_, &'static str, &'static [u8]> {
    TableDefinition::new(table)
}

fn version_of(v: u64) -> Version {
    Version::from_u64(v)
}

/// The live record stored as `stored` at `now_ms`; `None` when expired.
fn live(stored: &[u8], now_ms: u64) -> Result<Option<Record<'_>>> {
    Record::decode(stored).map(|r| r.is_live(now_ms).then_some(r))
}

/// Looks at up to `budget` records after `swept_to` (wrapping around) and
/// deletes the expired ones.
fn sweep_expired(
    table: &mut Table<'_>,
    swept_to: &Mutex<Option<String>>,
    budget: usize,
) -> std::result::Result<(), redb::Error> {
    let mut swept_to = swept_to.lock().unwrap_or_else(PoisonError::into_inner);
    let now = now_ms();
    let start = swept_to
        .as_deref()
        .map_or(Bound::Unbounded, Bound::Excluded);
    let (mut looked, mut expired) = (Vec::new(), Vec::new());
    for item in table.range::<&str>((start, Bound::Unbounded))?.take(budget) {
        let (key, stored) = item?;
        let key = key.value().to_string();
        if Record::decode(stored.value()).is_ok_and(|r| !r.is_live(now)) {
            expired.push(key.clone());
        }
        looked.push(key);
    }
    *swept_to = if looked.len() < budget {
        None
    } else {
        looked.pop()
    };
    for key in expired {
        table.remove(key.as_str())?;
    }
    Ok(())
}

#[async_trait]
impl Bucket for EmbeddedBucket {
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        let store = &self.store;
        Ok(self
            .read(|t| {
                let Some(stored) = t.get(key).map_err(|e| store.err(e))? else {
                    return Ok(None);
                };
                Ok(live(stored.value(), now_ms())?.map(|r| Versioned {
                    value: r.value.to_vec(),
                    version: version_of(r.version),
                }))
            })?
            .flatten())
    }

    async fn set(
        &self,
        key: &str,
        value: Vec<u8>,
        condition: WriteCondition,
    ) -> Result<WriteOutcome> {
        self.capabilities.check_value(value.len())?;
        let key = key.to_string();
        let expires_ms = self.expires_ms();
        self.write(move |versions, table| {
            let current = match table.get(key.as_str())? {
                Some(stored) => match live(stored.value(), now_ms()) {
                    Ok(record) => record.map(|r| r.version),
                    Err(e) => return Ok(Err(e)),
                },
                None => None,
            };
            let allowed = match &condition {
                WriteCondition::Always => true,
                WriteCondition::IfAbsent => current.is_none(),
                WriteCondition::IfVersion(v) => current.is_some() && current == v.as_u64(),
            };
            if !allowed {
                return Ok(Ok(WriteOutcome::ConditionFailed));
            }
            let record = Record {
                version: versions.take(),
                expires_ms,
                value: &value,
            };
            table.insert(key.as_str(), record.encode().as_slice())?;
            Ok(Ok(WriteOutcome::Written))
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let key = key.to_string();
        self.write(move |_, table| {
            table.remove(key.as_str())?;
            Ok(Ok(()))
        })
        .await
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let store = &self.store;
        Ok(self
            .read(|t| match t.get(key).map_err(|e| store.err(e))? {
                Some(stored) => Ok(live(stored.value(), now_ms())?.is_some()),
                None => Ok(false),
            })?
            .unwrap_or(false))
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
        let store = &self.store;
        let page = self.read(|t| {
            let start = after.map_or(Bound::Unbounded, Bound::Excluded);
            let mut range = t
                .range::<&str>((start, Bound::Unbounded))
                .map_err(|e| store.err(e))?;
            let now = now_ms();
            let mut keys = Vec::new();
            let mut more = false;
            for item in range.by_ref() {
                let (k, stored) = item.map_err(|e| store.err(e))?;
                if live(stored.value(), now)?.is_none() {
                    continue;
                }
                if keys.len() == limit {
                    more = true;
                    break;
                }
                keys.push(k.value().to_string());
            }
            let next = match (more, keys.last()) {
                (true, Some(last)) => Some(last.as_bytes().to_vec()),
                _ => None,
            };
            Ok(ListPage { keys, next })
        })?;
        Ok(page.unwrap_or_default())
    }

    async fn increment(&self, key: &str, delta: i64) -> Result<i64> {
        self.increment_at_least(key, delta, i64::MIN).await
    }

    async fn increment_at_least(&self, key: &str, delta: i64, min: i64) -> Result<i64> {
        let key = key.to_string();
        let expires_ms = self.expires_ms();
        self.write(move |versions, table| {
            let applied = {
                let current = table.get(key.as_str())?;
                match current
                    .as_ref()
                    .map(|stored| live(stored.value(), now_ms()))
                {
                    Some(Err(e)) => Err(e),
                    Some(Ok(Some(record))) => {
                        counter::apply_at_least(Some(record.value), delta, min)
                    }
                    Some(Ok(None)) | None => counter::apply_at_least(None, delta, min),
                }
            };
            let new = match applied {
                Ok(new) => new,
                Err(e) => return Ok(Err(e)),
            };
            let value = counter::format(new);
            let record = Record {
                version: versions.take(),
                expires_ms,
                value: &value,
            };
            table.insert(key.as_str(), record.encode().as_slice())?;
            Ok(Ok(new))
        })
        .await
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        let store = &self.store;
        let now = now_ms();
        let found = self.read(|t| {
            keys.iter()
                .map(|key| match t.get(key.as_str()).map_err(|e| store.err(e))? {
                    Some(stored) => Ok(live(stored.value(), now)?.map(|r| r.value.to_vec())),
                    None => Ok(None),
                })
                .collect::<Result<Vec<_>>>()
        })?;
        Ok(found.unwrap_or_else(|| vec![None; keys.len()]))
    }

    async fn get_many_within(
        &self,
        keys: &[String],
        max_bytes: usize,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        let store = &self.store;
        let now = now_ms();
        let found = self.read(|t| {
            // Sizes first, in the same read transaction: nothing is copied
            // for a result over the budget.
            let mut records = Vec::with_capacity(keys.len());
            let mut total = 0usize;
            for key in keys {
                let stored = t.get(key.as_str()).map_err(|e| store.err(e))?;
                let len = match &stored {
                    Some(s) => live(s.value(), now)?.map(|r| r.value.len()),
                    None => None,
                };
                if let Some(len) = len {
                    total += len;
                    if total > max_bytes {
                        return Err(wasikv_core::get_many_too_large(total, max_bytes));
                    }
                }
                records.push(stored.filter(|_| len.is_some()));
            }
            records
                .into_iter()
                .map(|stored| match stored {
                    Some(stored) => Ok(Some(Record::decode(stored.value())?.value.to_vec())),
                    None => Ok(None),
                })
                .collect::<Result<Vec<_>>>()
        })?;
        Ok(found.unwrap_or_else(|| vec![None; keys.len()]))
    }

    async fn set_many(&self, items: Vec<(String, Vec<u8>)>) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        for (_, value) in &items {
            self.capabilities.check_value(value.len())?;
        }
        let expires_ms = self.expires_ms();
        self.write(move |versions, table| {
            for (key, value) in &items {
                let record = Record {
                    version: versions.take(),
                    expires_ms,
                    value,
                };
                table.insert(key.as_str(), record.encode().as_slice())?;
            }
            Ok(Ok(()))
        })
        .await
    }

    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let keys = keys.to_vec();
        self.write(move |_, table| {
            for key in &keys {
                table.remove(key.as_str())?;
            }
            Ok(Ok(()))
        })
        .await
    }
}
