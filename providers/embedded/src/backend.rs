//! [`EmbeddedProvider`] and [`EmbeddedBucket`].

use std::ops::Bound;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{ReadableTable, TableDefinition};
use wasikv_core::{
    BatchAtomicity, Bucket, BucketPlan, Capabilities, Consistency, Endpoint, Error, ErrorKind,
    ListPage, Location, Namespace, Options, Provider, Result, Store, Support, Version, Versioned,
    WriteCondition, WriteOutcome, counter,
};

use crate::config::EmbeddedConfig;
use crate::core::{
    EmbeddedStore, Versions, WriteResult, blocking, decode_record, encode_record, is_missing_table,
    read_txn,
};

/// The provider name in configuration.
pub const NAME: &str = "embedded";

/// Builds embedded stores.
#[derive(Debug, Default, Clone, Copy)]
pub struct EmbeddedProvider;

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
                .with_max_value_bytes(config.max_value_bytes),
        ))
    }
}

/// A bucket: one table of the file.
#[derive(Debug, Clone)]
pub struct EmbeddedBucket {
    store: Arc<EmbeddedStore>,
    table: Arc<str>,
    capabilities: Capabilities,
}

impl EmbeddedBucket {
    /// The bucket on `table` of `store`.
    pub fn new(store: Arc<EmbeddedStore>, table: &str) -> Self {
        EmbeddedBucket {
            store,
            table: format!("bucket:{table}").into(),
            capabilities: capabilities(),
        }
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
        self.store
            .write(move |txn, versions| {
                let mut open = txn.open_table(definition(&table))?;
                f(versions, &mut open)
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

#[async_trait]
impl Bucket for EmbeddedBucket {
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        let store = &self.store;
        Ok(self
            .read(|t| {
                let Some(record) = t.get(key).map_err(|e| store.err(e))? else {
                    return Ok(None);
                };
                let (version, value) = decode_record(record.value())?;
                Ok(Some(Versioned {
                    value: value.to_vec(),
                    version: version_of(version),
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
        self.write(move |versions, table| {
            let current = match table.get(key.as_str())? {
                Some(record) => match decode_record(record.value()) {
                    Ok((version, _)) => Some(version),
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
            let version = versions.take();
            table.insert(key.as_str(), encode_record(version, &value).as_slice())?;
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
            .read(|t| Ok(t.get(key).map_err(|e| store.err(e))?.is_some()))?
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
            let mut keys = Vec::new();
            for item in range.by_ref().take(limit) {
                let (k, _) = item.map_err(|e| store.err(e))?;
                keys.push(k.value().to_string());
            }
            let more = range.next().is_some();
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
        self.write(move |versions, table| {
            let applied = {
                let current = table.get(key.as_str())?;
                match current.as_ref().map(|record| decode_record(record.value())) {
                    Some(Err(e)) => Err(e),
                    Some(Ok((_, value))) => counter::apply_at_least(Some(value), delta, min),
                    None => counter::apply_at_least(None, delta, min),
                }
            };
            let new = match applied {
                Ok(new) => new,
                Err(e) => return Ok(Err(e)),
            };
            let version = versions.take();
            table.insert(
                key.as_str(),
                encode_record(version, &counter::format(new)).as_slice(),
            )?;
            Ok(Ok(new))
        })
        .await
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        let store = &self.store;
        let found = self.read(|t| {
            keys.iter()
                .map(|key| match t.get(key.as_str()).map_err(|e| store.err(e))? {
                    Some(record) => Ok(Some(decode_record(record.value())?.1.to_vec())),
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
        let found = self.read(|t| {
            // Sizes first, in the same read transaction: nothing is copied
            // for a result over the budget.
            let mut records = Vec::with_capacity(keys.len());
            let mut total = 0usize;
            for key in keys {
                let record = t.get(key.as_str()).map_err(|e| store.err(e))?;
                if let Some(record) = &record {
                    total += decode_record(record.value())?.1.len();
                    if total > max_bytes {
                        return Err(wasikv_core::get_many_too_large(total, max_bytes));
                    }
                }
                records.push(record);
            }
            records
                .into_iter()
                .map(|record| match record {
                    Some(record) => Ok(Some(decode_record(record.value())?.1.to_vec())),
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
        self.write(move |versions, table| {
            for (key, value) in &items {
                let version = versions.take();
                table.insert(key.as_str(), encode_record(version, value).as_slice())?;
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
