//! [`EtcdProvider`] and [`EtcdBucket`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{
    Compare, CompareOp, GetOptions, KvClient, LeaseClient, PutOptions, Txn, TxnOp, TxnOpResponse,
    WatchClient,
};
use wasikv_core::{
    BatchAtomicity, Bucket, BucketPlan, Capabilities, ChangeStream, Consistency, Endpoint, Error,
    ErrorKind, Expiry, ListPage, Location, Namespace, Options, Provider, Result, Store, Support,
    Version, Versioned, WriteCondition, WriteOutcome,
};

use crate::config::EtcdConfig;
use crate::core::{
    EtcdStore, Leases, MAX_REQUEST_BYTES, MAX_TXN_OPS, REQUEST_OVERHEAD, is_lease_not_found,
    map_err, prefix_range_end,
};

/// The provider name in configuration.
pub const NAME: &str = "etcd";

/// Largest value: etcd's default request limit less room for the key and framing.
pub const MAX_VALUE_BYTES: usize = MAX_REQUEST_BYTES - REQUEST_OVERHEAD;

/// Builds etcd stores.
#[derive(Debug, Default, Clone, Copy)]
pub struct EtcdProvider;

/// The capabilities of an etcd bucket.
pub fn capabilities() -> Capabilities {
    Capabilities {
        increment: Support::Unsupported,
        get_many: Support::Native,
        set_many: Support::Native,
        set_many_atomicity: BatchAtomicity::All,
        delete_many: Support::Native,
        max_value_bytes: Some(MAX_VALUE_BYTES),
        max_batch_items: Some(MAX_TXN_OPS),
        consistency: Consistency::Strong,
        durable: true,
        versioning: "mod_revision",
        watch: Support::Native,
        expiry: Expiry::Native {
            how: "leases, one per second of writes",
            resolution: Duration::from_secs(3),
        },
        ..Capabilities::required()
    }
}

#[async_trait]
impl Provider for EtcdProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        capabilities()
    }

    fn plan(&self, bucket: &str, options: &Options) -> Result<BucketPlan> {
        let config: EtcdConfig = options.parse(bucket, NAME)?;
        if config.endpoints.is_empty() {
            return Err(
                Error::new(ErrorKind::InvalidConfig, "endpoints is empty").in_bucket(bucket, NAME)
            );
        }
        let tls = config
            .endpoints
            .iter()
            .filter(|e| e.starts_with("https://"))
            .count();
        if tls != 0 && tls != config.endpoints.len() {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "endpoints mix http:// and https://",
            )
            .in_bucket(bucket, NAME));
        }
        if config.ca_file.is_some() && tls == 0 {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "ca_file is set but no endpoint is https://",
            )
            .in_bucket(bucket, NAME));
        }
        if config.username.is_some() != config.password.is_some() {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "username and password go together",
            )
            .in_bucket(bucket, NAME));
        }
        let prefix = config.prefix(bucket);
        if prefix.is_empty() {
            // The whole cluster's keyspace: listing would walk every
            // foreign key, and the empty key would be the prefix itself.
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "prefix is empty: give the bucket its own key prefix (default: \"<bucket>/\")",
            )
            .in_bucket(bucket, NAME));
        }
        let mut endpoints = Vec::with_capacity(config.endpoints.len());
        for address in &config.endpoints {
            endpoints.push(Endpoint::parse_server(address, 2379).ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidConfig,
                    "every endpoint must be http(s)://host:port (the port a number)",
                )
                .in_bucket(bucket, NAME)
            })?);
        }
        Ok(BucketPlan {
            bucket: bucket.to_string(),
            provider: NAME,
            connection: config.connection_identity(),
            // A cluster has one keyspace, whoever logs in: users see the
            // same keys (RBAC aside).
            location: Location {
                endpoints,
                scope: String::new(),
            },
            namespace: Namespace::Prefix(prefix),
            options: options.clone(),
            ttl: None,
        })
    }

    async fn connect(&self, plan: &BucketPlan) -> Result<Arc<dyn Store>> {
        let config: EtcdConfig = plan.options.parse(&plan.bucket, NAME)?;
        Ok(Arc::new(EtcdStore::connect(&config).await?))
    }
}

#[async_trait]
impl Store for EtcdStore {
    async fn open_bucket(&self, plan: &BucketPlan) -> Result<Arc<dyn Bucket>> {
        let config: EtcdConfig = plan.options.parse(&plan.bucket, NAME)?;
        Ok(Arc::new(
            EtcdBucket::new(self.kv.clone(), &config.prefix(&plan.bucket))
                .with_watch(self.watch.clone())
                .expiring(self.lease.clone(), plan.ttl),
        ))
    }
}

/// A bucket: a key prefix on one etcd cluster.
pub struct EtcdBucket {
    kv: KvClient,
    watch: Option<WatchClient>,
    prefix: Vec<u8>,
    capabilities: Capabilities,
    /// The leases of a bucket with a `ttl`.
    leases: Option<Leases>,
}

impl EtcdBucket {
    /// The bucket at `prefix` on `kv`.
    pub fn new(kv: KvClient, prefix: &str) -> Self {
        let mut capabilities = capabilities();
        capabilities.watch = Support::Unsupported;
        EtcdBucket {
            kv,
            watch: None,
            prefix: prefix.as_bytes().to_vec(),
            capabilities,
            leases: None,
        }
    }

    /// The bucket with keys that expire `ttl` after their last write: every
    /// put names the lease of its window ([`Leases`]).
    pub fn expiring(mut self, lease: LeaseClient, ttl: Option<Duration>) -> Self {
        self.leases = ttl.map(|ttl| Leases::new(lease, ttl));
        self
    }

    /// The options of a put now: the lease of an expiring bucket.
    async fn put_options(&self) -> Result<Option<PutOptions>> {
        match &self.leases {
            Some(leases) => leases.put_options().await.map(Some),
            None => Ok(None),
        }
    }

    /// A write's outcome; a write that named a lease etcd no longer has
    /// drops it, so that the next write (a retry) gets a new one.
    async fn written<T>(&self, outcome: Result<T>) -> Result<T> {
        if let (Err(e), Some(leases)) = (&outcome, &self.leases)
            && is_lease_not_found(e)
        {
            leases.forget().await;
        }
        outcome
    }

    /// The bucket with `watch` natively: an etcd watch on its prefix.
    pub fn with_watch(mut self, watch: WatchClient) -> Self {
        self.watch = Some(watch);
        self.capabilities.watch = Support::Native;
        self
    }

    fn key(&self, key: &str) -> Vec<u8> {
        [self.prefix.as_slice(), key.as_bytes()].concat()
    }

    async fn txn(&self, ops: Vec<TxnOp>) -> Result<Vec<TxnOpResponse>> {
        let mut kv = self.kv.clone();
        let response = kv.txn(Txn::new().and_then(ops)).await.map_err(map_err)?;
        Ok(response.op_responses())
    }
}

fn version(mod_revision: i64) -> Version {
    Version::from_u64(mod_revision as u64)
}

#[async_trait]
impl Bucket for EtcdBucket {
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        let mut kv = self.kv.clone();
        let response = kv.get(self.key(key), None).await.map_err(map_err)?;
        Ok(response.kvs().first().map(|kv| Versioned {
            value: kv.value().to_vec(),
            version: version(kv.mod_revision()),
        }))
    }

    async fn set(
        &self,
        key: &str,
        value: Vec<u8>,
        condition: WriteCondition,
    ) -> Result<WriteOutcome> {
        self.capabilities.check_value(value.len())?;
        let full = self.key(key);
        let mut kv = self.kv.clone();
        let options = self.put_options().await?;
        let compare = match &condition {
            WriteCondition::Always => {
                let put = kv.put(full, value, options).await.map_err(map_err);
                self.written(put).await?;
                return Ok(WriteOutcome::Written);
            }
            WriteCondition::IfAbsent => Compare::create_revision(full.clone(), CompareOp::Equal, 0),
            WriteCondition::IfVersion(v) => {
                let Some(rev) = v
                    .as_u64()
                    .and_then(|r| i64::try_from(r).ok())
                    .filter(|r| *r > 0)
                else {
                    return Ok(WriteOutcome::ConditionFailed); // not a version this bucket issued
                };
                Compare::mod_revision(full.clone(), CompareOp::Equal, rev)
            }
        };
        let txn = Txn::new()
            .when([compare])
            .and_then([TxnOp::put(full, value, options)]);
        let response = self.written(kv.txn(txn).await.map_err(map_err)).await?;
        Ok(if response.succeeded() {
            WriteOutcome::Written
        } else {
            WriteOutcome::ConditionFailed
        })
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let mut kv = self.kv.clone();
        kv.delete(self.key(key), None).await.map_err(map_err)?;
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let mut kv = self.kv.clone();
        let response = kv
            .get(self.key(key), Some(GetOptions::new().with_count_only()))
            .await
            .map_err(map_err)?;
        Ok(response.count() > 0)
    }

    async fn list(&self, cursor: Option<&[u8]>, limit: usize) -> Result<ListPage> {
        let start = match cursor {
            None => self.prefix.clone(),
            // The smallest key after `last` within the bucket (the last
            // raw key of the page before: a foreign key that is not UTF-8
            // may end a page).
            Some(last) => [self.prefix.as_slice(), last, b"\0"].concat(),
        };
        let limit = limit.max(1);
        let mut kv = self.kv.clone();
        let options = GetOptions::new()
            .with_range(prefix_range_end(&self.prefix))
            .with_limit(limit as i64)
            .with_keys_only();
        let response = kv.get(start, Some(options)).await.map_err(map_err)?;
        let raw: Vec<&[u8]> = response
            .kvs()
            .iter()
            .filter_map(|kv| kv.key().strip_prefix(self.prefix.as_slice()))
            .collect();
        // A key that is not UTF-8 was not written by wasikv: skipped, never
        // an error for the whole listing.
        let keys: Vec<String> = raw
            .iter()
            .filter_map(|key| String::from_utf8(key.to_vec()).ok())
            .collect();
        if raw.len() > keys.len() {
            tracing::debug!(
                "list skipped {} keys under the bucket prefix that are not UTF-8 (not wasikv's)",
                raw.len() - keys.len()
            );
        }
        let next = match (response.more(), raw.last()) {
            (true, Some(last)) => Some(last.to_vec()),
            _ => None,
        };
        Ok(ListPage { keys, next })
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        self.capabilities.check_batch(keys.len())?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let ops = keys.iter().map(|k| TxnOp::get(self.key(k), None)).collect();
        self.txn(ops)
            .await?
            .into_iter()
            .map(|r| match r {
                TxnOpResponse::Get(g) => Ok(g.kvs().first().map(|kv| kv.value().to_vec())),
                _ => Err(Error::new(
                    ErrorKind::Other,
                    "etcd answered a get with another operation",
                )),
            })
            .collect()
    }

    async fn set_many(&self, items: Vec<(String, Vec<u8>)>) -> Result<()> {
        self.capabilities.check_batch(items.len())?;
        let mut ops = Vec::new();
        let mut bytes = 0;
        let options = self.put_options().await?;
        for (key, value) in items {
            self.capabilities.check_value(value.len())?;
            let size = key.len() + self.prefix.len() + value.len() + 64;
            // Keep each transaction under etcd's request size limit.
            if !ops.is_empty() && bytes + size > MAX_REQUEST_BYTES - REQUEST_OVERHEAD {
                let done = self.txn(std::mem::take(&mut ops)).await;
                self.written(done).await?;
                bytes = 0;
            }
            bytes += size;
            ops.push(TxnOp::put(self.key(&key), value, options.clone()));
        }
        if !ops.is_empty() {
            let done = self.txn(ops).await;
            self.written(done).await?;
        }
        Ok(())
    }

    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        self.capabilities.check_batch(keys.len())?;
        if keys.is_empty() {
            return Ok(());
        }
        self.txn(
            keys.iter()
                .map(|k| TxnOp::delete(self.key(k), None))
                .collect(),
        )
        .await?;
        Ok(())
    }

    async fn watch(&self) -> Result<ChangeStream> {
        let Some(client) = &self.watch else {
            return Err(Error::unsupported("watch"));
        };
        crate::watch::watch(client.clone(), self.prefix.clone()).await
    }
}
