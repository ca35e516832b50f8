//! [`PostgresProvider`] and [`PostgresBucket`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use wasikv_core::{
    BatchAtomicity, Bucket, BucketPlan, Capabilities, Consistency, Error, ErrorKind, Expiry,
    ListPage, Location, Namespace, Options, Provider, Result, Store, Support, Version, Versioned,
    WriteCondition, WriteOutcome, counter,
};

use crate::config::{PostgresConfig, TableName};
use crate::core::{
    ExpiryColumn, MAX_STORED_KEY_BYTES, PostgresStore, Statements, Sweeper, ensure_table, map_err,
    prefix_range_end,
};

/// The provider name in configuration.
pub const NAME: &str = "postgres";

/// Largest value: PostgreSQL takes up to 1 GiB in a `bytea`, but the client
/// and the server each hold a value whole (and the server may copy it while
/// writing its WAL); 256 MiB keeps a write's memory bounded.
pub const MAX_VALUE_BYTES: usize = 256 << 20;

/// Most keys in one native batch (one statement, one array parameter each).
pub const MAX_BATCH_ITEMS: usize = 1_000;

/// Expiry: an `expires_at` column every statement checks against the
/// server's clock, so an expired row is absent at once; a background sweep
/// deletes expired rows (see [`Sweeper`]).
pub const EXPIRY: Expiry = Expiry::Filtered {
    how: "expires_at column checked by every statement (server clock); swept up to 10,000 rows/s per table",
    resolution: Duration::from_millis(1),
};

/// Builds PostgreSQL stores.
#[derive(Debug, Default, Clone, Copy)]
pub struct PostgresProvider;

/// The capabilities of a PostgreSQL bucket whose prefix is `prefix_bytes` long.
pub fn capabilities_for(prefix_bytes: usize) -> Capabilities {
    Capabilities {
        increment: Support::Native,
        get_many: Support::Native,
        budgeted_get_many: true,
        set_many: Support::Native,
        set_many_atomicity: BatchAtomicity::All,
        delete_many: Support::Native,
        max_key_bytes: Some(MAX_STORED_KEY_BYTES.saturating_sub(prefix_bytes)),
        max_value_bytes: Some(MAX_VALUE_BYTES),
        max_batch_items: Some(MAX_BATCH_ITEMS),
        consistency: Consistency::Strong,
        durable: true,
        versioning: "random token per write (version column)",
        expiry: EXPIRY,
        ..Capabilities::required()
    }
}

/// The capabilities of a bucket with the default prefix of a short bucket name.
pub fn capabilities() -> Capabilities {
    capabilities_for(0)
}

#[async_trait]
impl Provider for PostgresProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        capabilities()
    }

    fn plan(&self, bucket: &str, options: &Options) -> Result<BucketPlan> {
        let in_bucket = |e: Error| e.in_bucket(bucket, NAME);
        let config: PostgresConfig = options.parse(bucket, NAME)?;
        let table = config
            .table()
            .map_err(|m| in_bucket(Error::new(ErrorKind::InvalidConfig, m)))?;
        let endpoints = config.endpoints().map_err(in_bucket)?;
        config.tls().map_err(in_bucket)?;
        if config.pool_size == 0 {
            return Err(in_bucket(Error::new(
                ErrorKind::InvalidConfig,
                "pool_size is 0: give at least 1 connection",
            )));
        }
        let prefix = config.prefix(bucket);
        if prefix.len() >= MAX_STORED_KEY_BYTES - 1024 {
            return Err(in_bucket(Error::too_large(
                "prefix",
                prefix.len(),
                MAX_STORED_KEY_BYTES - 1024,
            )));
        }
        Ok(BucketPlan {
            bucket: bucket.to_string(),
            provider: NAME,
            connection: config.connection_identity().map_err(in_bucket)?,
            location: Location {
                endpoints,
                scope: config.database().map_err(in_bucket)?,
            },
            // One table holds many prefixes; the table's name can hold no
            // '\u{1}', so "table\u{1}prefix" overlaps exactly when the
            // tables are equal and one prefix starts the other.
            namespace: Namespace::Prefix(format!("{table}\u{1}{prefix}")),
            options: options.clone(),
            ttl: None,
        })
    }

    async fn connect(&self, plan: &BucketPlan) -> Result<Arc<dyn Store>> {
        let config: PostgresConfig = plan.options.parse(&plan.bucket, NAME)?;
        Ok(Arc::new(PostgresStore::connect(&config).await?))
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn open_bucket(&self, plan: &BucketPlan) -> Result<Arc<dyn Bucket>> {
        let config: PostgresConfig = plan.options.parse(&plan.bucket, NAME)?;
        let table = config
            .table()
            .map_err(|m| Error::new(ErrorKind::InvalidConfig, m))?;
        let bucket = PostgresBucket::open(
            self,
            &table,
            &config.prefix(&plan.bucket),
            config.create,
            plan.ttl,
        )
        .await?;
        Ok(Arc::new(bucket))
    }
}

/// A bucket: the rows of one table whose keys start with its prefix.
pub struct PostgresBucket {
    store: PostgresStore,
    prefix: Vec<u8>,
    /// The end of the prefix's key range; `None`: the bucket is the whole table.
    end: Option<Vec<u8>>,
    sql: Statements,
    capabilities: Capabilities,
    /// The table's expiry sweep, while the bucket has a `ttl`.
    _sweeper: Option<Arc<Sweeper>>,
}

impl PostgresBucket {
    /// Opens the bucket at `prefix` in `table`, whose keys expire `ttl`
    /// after their last write when given: makes sure the table exists with
    /// the columns the bucket needs (creating the table, or adding the
    /// `expires_at` column a ttl needs, when `create`), prepares every
    /// statement, and joins the table's expiry sweep when expiring.
    pub async fn open(
        store: &PostgresStore,
        table: &TableName,
        prefix: &str,
        create: bool,
        ttl: Option<Duration>,
    ) -> Result<Self> {
        let has_column = ensure_table(store, table, create, ttl.is_some()).await?;
        let mut capabilities = capabilities_for(prefix.len());
        let expiry = if has_column {
            ExpiryColumn::Present { ttl }
        } else {
            capabilities.expiry = Expiry::Unsupported;
            ExpiryColumn::Absent
        };
        let bucket = PostgresBucket {
            store: store.clone(),
            prefix: prefix.as_bytes().to_vec(),
            end: prefix_range_end(prefix.as_bytes()),
            sql: Statements::new(table, expiry),
            capabilities,
            _sweeper: ttl.map(|_| store.sweeper(table)),
        };
        bucket.prepare().await?;
        Ok(bucket)
    }

    /// Prepares every statement on one connection: a table whose columns
    /// differ from wasikv's fails here, naming the table.
    async fn prepare(&self) -> Result<()> {
        let client = self.store.client().await?;
        for sql in self.sql.all() {
            client.prepare_cached(sql).await.map_err(|e| {
                let e = map_err(e);
                Error::new(
                    e.kind(),
                    format!(
                        "the table does not have wasikv's columns (key bytea primary key, value bytea, version bytea, and expires_at timestamptz for a ttl): {}",
                        e.message()
                    ),
                )
            })?;
        }
        Ok(())
    }

    fn key(&self, key: &str) -> Result<Vec<u8>> {
        let max = self.capabilities.max_key_bytes.unwrap_or(usize::MAX);
        if key.len() > max {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!(
                    "key is {} bytes, over PostgreSQL's limit of {max} bytes for this bucket (a B-tree index entry holds {MAX_STORED_KEY_BYTES} bytes, prefix included)",
                    key.len()
                ),
            ));
        }
        Ok([self.prefix.as_slice(), key.as_bytes()].concat())
    }

    /// Runs `sql` with `params` on a pooled connection; the rows.
    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>> {
        let client = self.store.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(map_err)?;
        client.query(&statement, params).await.map_err(map_err)
    }

    /// Runs `sql` with `params`; the number of rows it changed.
    async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64> {
        let client = self.store.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(map_err)?;
        client.execute(&statement, params).await.map_err(map_err)
    }
}

/// A fresh version: 16 random bytes, so no write ever reuses one (no ABA).
fn token() -> Vec<u8> {
    rand::random::<[u8; 16]>().to_vec()
}

#[async_trait]
impl Bucket for PostgresBucket {
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        let rows = self
            .query(&self.sql.get_versioned, &[&self.key(key)?])
            .await?;
        Ok(rows.first().map(|row| Versioned {
            value: row.get(0),
            version: Version(row.get(1)),
        }))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let rows = self.query(&self.sql.get, &[&self.key(key)?]).await?;
        Ok(rows.first().map(|row| row.get(0)))
    }

    async fn set(
        &self,
        key: &str,
        value: Vec<u8>,
        condition: WriteCondition,
    ) -> Result<WriteOutcome> {
        self.capabilities.check_value(value.len())?;
        let full = self.key(key)?;
        let version = token();
        let written = match &condition {
            WriteCondition::Always => {
                self.execute(&self.sql.upsert, &[&full, &value, &version])
                    .await?
            }
            WriteCondition::IfAbsent => {
                self.execute(&self.sql.insert_if_absent, &[&full, &value, &version])
                    .await?
            }
            WriteCondition::IfVersion(expected) => {
                self.execute(
                    &self.sql.update_if_version,
                    &[&full, &value, &version, &expected.0],
                )
                .await?
            }
        };
        Ok(if written == 1 {
            WriteOutcome::Written
        } else {
            WriteOutcome::ConditionFailed
        })
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.execute(&self.sql.delete, &[&self.key(key)?]).await?;
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        Ok(!self
            .query(&self.sql.exists, &[&self.key(key)?])
            .await?
            .is_empty())
    }

    async fn list(&self, cursor: Option<&[u8]>, limit: usize) -> Result<ListPage> {
        let start = match cursor {
            None => self.prefix.clone(),
            // The smallest key after `last` (the last raw key of the page
            // before; a foreign key that is not UTF-8 may end a page).
            Some(last) => [self.prefix.as_slice(), last, b"\0"].concat(),
        };
        let limit = limit.max(1);
        // One row more than asked says whether another page follows.
        let ask = i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1;
        let rows = match &self.end {
            Some(end) => {
                self.query(&self.sql.list_bounded, &[&start, end, &ask])
                    .await?
            }
            None => self.query(&self.sql.list_to_end, &[&start, &ask]).await?,
        };
        let more = rows.len() > limit;
        let raw: Vec<Vec<u8>> = rows
            .iter()
            .take(limit)
            .filter_map(|row| {
                row.get::<_, Vec<u8>>(0)
                    .strip_prefix(self.prefix.as_slice())
                    .map(<[u8]>::to_vec)
            })
            .collect();
        let next = match (more, raw.last()) {
            (true, Some(last)) => Some(last.clone()),
            _ => None,
        };
        // A key that is not UTF-8 was not written by wasikv: skipped.
        let keys: Vec<String> = raw
            .into_iter()
            .filter_map(|key| String::from_utf8(key).ok())
            .collect();
        Ok(ListPage { keys, next })
    }

    async fn increment(&self, key: &str, delta: i64) -> Result<i64> {
        let full = self.key(key)?;
        // The statement applies the counter rules itself; when it refuses,
        // the rules applied to the value as it is now say why, in the same
        // words as every other store. A value that changed meanwhile into
        // one the delta fits is tried again, a few times.
        for _ in 0..8 {
            let refused = match self
                .query(&self.sql.increment, &[&full, &delta, &token()])
                .await
            {
                Ok(rows) => match rows.first() {
                    Some(row) => return counter::parse(&row.get::<_, Vec<u8>>(0)),
                    None => None, // the stored value is not `-?[0-9]+`
                },
                Err(e) if e.kind() == ErrorKind::InvalidValue => Some(e),
                Err(e) => return Err(e),
            };
            let current = self.get(key).await?;
            counter::apply(current.as_deref(), delta)?;
            tracing::debug!(
                ?refused,
                "increment refused, then the value changed: trying again"
            );
        }
        Err(Error::new(
            ErrorKind::Conflict,
            "increment: the value kept changing between the write and the check",
        ))
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        self.capabilities.check_batch(keys.len())?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let full: Vec<Vec<u8>> = keys.iter().map(|k| self.key(k)).collect::<Result<_>>()?;
        let rows = self.query(&self.sql.get_many, &[&full]).await?;
        let found: HashMap<Vec<u8>, Vec<u8>> = rows
            .into_iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        Ok(full.iter().map(|k| found.get(k).cloned()).collect())
    }

    /// One statement: the server sums the sizes of the values found and
    /// sends them only when they fit `max_bytes`.
    async fn get_many_within(
        &self,
        keys: &[String],
        max_bytes: usize,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        self.capabilities.check_batch(keys.len())?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let full: Vec<Vec<u8>> = keys.iter().map(|k| self.key(k)).collect::<Result<_>>()?;
        let budget = i64::try_from(max_bytes).unwrap_or(i64::MAX);
        let rows = self
            .query(&self.sql.get_many_within, &[&full, &budget])
            .await?;
        let mut values = vec![None; keys.len()];
        for row in rows {
            let total: i64 = row.get(2);
            if total > budget {
                return Err(wasikv_core::get_many_too_large(
                    usize::try_from(total).unwrap_or(usize::MAX),
                    max_bytes,
                ));
            }
            let position: i64 = row.get(0);
            let slot = usize::try_from(position - 1)
                .ok()
                .and_then(|i| values.get_mut(i))
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::Other,
                        "postgres returned a position outside the batch",
                    )
                })?;
            *slot = row.get::<_, Option<Vec<u8>>>(1);
        }
        Ok(values)
    }

    async fn set_many(&self, items: Vec<(String, Vec<u8>)>) -> Result<()> {
        self.capabilities.check_batch(items.len())?;
        if items.is_empty() {
            return Ok(());
        }
        let mut keys = Vec::with_capacity(items.len());
        let mut values = Vec::with_capacity(items.len());
        for (key, value) in items {
            self.capabilities.check_value(value.len())?;
            keys.push(self.key(&key)?);
            values.push(value);
        }
        let versions: Vec<Vec<u8>> = keys.iter().map(|_| token()).collect();
        self.execute(&self.sql.set_many, &[&keys, &values, &versions])
            .await?;
        Ok(())
    }

    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        self.capabilities.check_batch(keys.len())?;
        if keys.is_empty() {
            return Ok(());
        }
        let full: Vec<Vec<u8>> = keys.iter().map(|k| self.key(k)).collect::<Result<_>>()?;
        self.execute(&self.sql.delete_many, &[&full]).await?;
        Ok(())
    }
}
