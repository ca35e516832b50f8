//! [`RedisProvider`] and [`RedisBucket`].

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::{Script, Value};
use wasikv_core::{
    Bucket, BucketPlan, Capabilities, ChangeStream, Consistency, Endpoint, Error, ErrorKind,
    ListPage, Location, Namespace, Options, Provider, Result, Store, Support, Version, Versioned,
    WriteCondition, WriteOutcome,
};

use crate::config::RedisConfig;
use crate::core::{self, RedisStore, index_key, map_err, versions_key};

/// The provider name in configuration.
pub const NAME: &str = "redis";

/// Most keys in one native batch (one script call or MGET).
pub const MAX_BATCH: usize = 512;

/// Redis's string limit.
pub const MAX_VALUE_BYTES: usize = 512 << 20;

/// Builds Redis stores.
#[derive(Debug, Default, Clone, Copy)]
pub struct RedisProvider;

/// The capabilities of a Redis bucket.
pub fn capabilities() -> Capabilities {
    Capabilities {
        increment: Support::Native,
        get_many: Support::Native,
        set_many: Support::Native,
        delete_many: Support::Native,
        max_value_bytes: Some(MAX_VALUE_BYTES),
        max_batch_items: Some(MAX_BATCH),
        budgeted_get_many: true,
        consistency: Consistency::Strong,
        durable: false,
        versioning: "random token per write + SHA-1 of the value (Lua script)",
        watch: Support::Native,
        ..Capabilities::required()
    }
}

#[async_trait]
impl Provider for RedisProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        capabilities()
    }

    fn plan(&self, bucket: &str, options: &Options) -> Result<BucketPlan> {
        let config: RedisConfig = options.parse(bucket, NAME)?;
        let info = redis::IntoConnectionInfo::into_connection_info(config.url.as_str())
            .map_err(|e| bad_url(e).in_bucket(bucket, NAME))?;
        let endpoint = match info.addr() {
            redis::ConnectionAddr::Tcp(host, port)
            | redis::ConnectionAddr::TcpTls { host, port, .. } => Endpoint::server(host, *port),
            redis::ConnectionAddr::Unix(path) => {
                Endpoint::Path(std::path::absolute(path).unwrap_or_else(|_| path.clone()))
            }
            other => {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    format!("unsupported redis address kind {other:?}"),
                )
                .in_bucket(bucket, NAME));
            }
        };
        if config.ca_file.is_some() && !config.url.starts_with("rediss://") {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "ca_file is set but the url is not rediss:// (TLS)",
            )
            .in_bucket(bucket, NAME));
        }
        Ok(BucketPlan {
            bucket: bucket.to_string(),
            provider: NAME,
            connection: config.url.clone(),
            // One keyspace per server and database index, whatever the
            // spelling of the url, its credentials or its TLS settings.
            location: Location::new(endpoint, format!("db {}", info.redis_settings().db())),
            namespace: Namespace::Prefix(config.prefix(bucket)),
            options: options.clone(),
        })
    }

    async fn connect(&self, plan: &BucketPlan) -> Result<Arc<dyn Store>> {
        let config: RedisConfig = plan.options.parse(&plan.bucket, NAME)?;
        Ok(Arc::new(RedisStore::connect(&config).await?))
    }
}

/// A URL the client refuses. The URL may hold a password: the error says
/// what is wrong without echoing it.
fn bad_url(e: redis::RedisError) -> Error {
    Error::new(
        ErrorKind::InvalidConfig,
        format!("bad redis url: {:?}", e.kind()),
    )
}

impl RedisStore {
    /// Connects to `config.url`.
    pub async fn connect(config: &RedisConfig) -> Result<Self> {
        let client = if config.url.starts_with("rediss://") {
            crate::core::install_crypto_provider();
            let root_cert = match &config.ca_file {
                Some(path) => Some(std::fs::read(path).map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidConfig,
                        format!("cannot read ca_file {}", path.display()),
                    )
                    .with_source(e)
                })?),
                None => None,
            };
            let certs = redis::TlsCertificates {
                client_tls: None,
                root_cert,
            };
            redis::Client::build_with_tls(config.url.as_str(), certs).map_err(bad_url)?
        } else {
            redis::Client::open(config.url.as_str()).map_err(bad_url)?
        };
        let manager_config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(config.connect_timeout_ms)))
            .set_response_timeout(
                (config.response_timeout_ms > 0)
                    .then(|| Duration::from_millis(config.response_timeout_ms)),
            )
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(client.clone(), manager_config)
            .await
            .map_err(map_err)?;
        check_eviction_policy(&mut conn.clone()).await?;
        Ok(RedisStore { conn, client })
    }
}

/// Refuses a server whose `maxmemory-policy` may evict any key
/// (`allkeys-*`): it could evict a bucket's key index or version hash, and
/// listing would then silently miss keys and CAS lose its versions. Where
/// `CONFIG GET` is not allowed (managed services often rename it), the
/// policy cannot be checked: a warning says so. A policy changed after
/// the connection was made is not seen.
async fn check_eviction_policy(conn: &mut ConnectionManager) -> Result<()> {
    let reply: redis::RedisResult<Vec<String>> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .query_async(conn)
        .await;
    match reply {
        Ok(pair) => match pair.get(1) {
            Some(policy) if policy.starts_with("allkeys-") => Err(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "the server's maxmemory-policy is {policy}, which may evict any key, including a bucket's key index and versions (listing would miss keys, CAS lose versions); set it to noeviction or a volatile-* policy"
                ),
            )),
            _ => Ok(()),
        },
        Err(e) if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() => Err(map_err(e)),
        Err(e) => {
            tracing::warn!(
                "cannot read the redis server's maxmemory-policy ({e}); an allkeys-* policy would evict bucket indexes and versions: make sure it is noeviction or volatile-*"
            );
            Ok(())
        }
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn open_bucket(&self, plan: &BucketPlan) -> Result<Arc<dyn Bucket>> {
        let config: RedisConfig = plan.options.parse(&plan.bucket, NAME)?;
        Ok(Arc::new(
            RedisBucket::new(self.conn.clone(), &config.prefix(&plan.bucket))
                .with_watch(self.client.clone()),
        ))
    }
}

/// The server-side scripts of a bucket's operations.
struct Scripts {
    set: Script,
    set_if_absent: Script,
    set_if_version: Script,
    get_versioned: Script,
    delete: Script,
    increment: Script,
    get_many_within: Script,
    set_many: Script,
    delete_many: Script,
    list: Script,
}

/// The scripts, compiled once per process (EVALSHA by their SHA-1, EVAL when
/// the server lost them).
static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    set: Script::new(core::SET),
    set_if_absent: Script::new(core::SET_IF_ABSENT),
    set_if_version: core::set_if_version_script(),
    get_versioned: core::get_versioned_script(),
    delete: Script::new(core::DELETE),
    increment: Script::new(core::INCREMENT),
    get_many_within: Script::new(core::GET_MANY_WITHIN),
    set_many: Script::new(core::SET_MANY),
    delete_many: Script::new(core::DELETE_MANY),
    list: Script::new(core::LIST),
});

/// A bucket: a key prefix on one Redis database.
pub struct RedisBucket {
    conn: ConnectionManager,
    /// For the pub/sub connection of a watch.
    client: Option<redis::Client>,
    prefix: String,
    versions: Vec<u8>,
    index: Vec<u8>,
    scripts: &'static Scripts,
    capabilities: Capabilities,
}

impl RedisBucket {
    /// The bucket at `prefix` on `conn`.
    pub fn new(conn: ConnectionManager, prefix: &str) -> Self {
        let mut capabilities = capabilities();
        capabilities.watch = Support::Unsupported;
        RedisBucket {
            conn,
            client: None,
            prefix: prefix.to_string(),
            versions: versions_key(prefix),
            index: index_key(prefix),
            scripts: &SCRIPTS,
            capabilities,
        }
    }

    /// The bucket with `watch` natively: a subscription to the changes its
    /// write scripts publish.
    pub fn with_watch(mut self, client: redis::Client) -> Self {
        self.client = Some(client);
        self.capabilities.watch = Support::Native;
        self
    }

    fn data_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

/// Largest value an unconditional `set` writes as a MULTI/EXEC transaction;
/// larger ones go through the SET script, which builds the change
/// notification from the value on the server instead of sending it twice.
const PIPELINED_SET_MAX_BYTES: usize = 4096;

/// A fresh random version token (128 bits, hex).
fn token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The values of an `MGET` reply, `None` where a key is missing.
fn mget_values(reply: Vec<Value>) -> Result<Vec<Option<Vec<u8>>>> {
    reply
        .into_iter()
        .map(|v| match v {
            Value::Nil => Ok(None),
            Value::BulkString(bytes) => Ok(Some(bytes)),
            other => Err(Error::new(
                ErrorKind::Other,
                format!("unexpected MGET reply {other:?}"),
            )),
        })
        .collect()
}

#[async_trait]
impl Bucket for RedisBucket {
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        let mut conn = self.conn.clone();
        let reply: Option<(Vec<u8>, Vec<u8>)> = self
            .scripts
            .get_versioned
            .key(self.data_key(key))
            .key(&self.versions)
            .arg(key)
            .invoke_async(&mut conn)
            .await
            .map_err(map_err)?;
        Ok(reply.map(|(value, version)| Versioned {
            value,
            version: Version(version),
        }))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let mut conn = self.conn.clone();
        redis::cmd("GET")
            .arg(self.data_key(key))
            .query_async(&mut conn)
            .await
            .map_err(map_err)
    }

    async fn set(
        &self,
        key: &str,
        value: Vec<u8>,
        condition: WriteCondition,
    ) -> Result<WriteOutcome> {
        self.capabilities.check_value(value.len())?;
        let mut conn = self.conn.clone();
        if matches!(condition, WriteCondition::Always) && value.len() <= PIPELINED_SET_MAX_BYTES {
            // The SET script's four commands as one MULTI/EXEC transaction,
            // sent in one write: the same atomic change without the cost of
            // running a script (measured: docs/benchmarks.md, Redis writes).
            let change = [format!("s{}:{key}", key.len()).as_bytes(), &value].concat();
            redis::pipe()
                .atomic()
                .set(self.data_key(key), value)
                .ignore()
                .hset(&self.versions, key, token())
                .ignore()
                .zadd(&self.index, key, 0)
                .ignore()
                .publish(&self.versions, change)
                .ignore()
                .query_async::<()>(&mut conn)
                .await
                .map_err(map_err)?;
            return Ok(WriteOutcome::Written);
        }
        let script = match &condition {
            WriteCondition::Always => &self.scripts.set,
            WriteCondition::IfAbsent => &self.scripts.set_if_absent,
            WriteCondition::IfVersion(_) => &self.scripts.set_if_version,
        };
        let mut invocation = script.key(self.data_key(key));
        invocation
            .key(&self.versions)
            .key(&self.index)
            .arg(key)
            .arg(value)
            .arg(token());
        if let WriteCondition::IfVersion(v) = &condition {
            invocation.arg(&v.0);
        }
        let written: i64 = invocation.invoke_async(&mut conn).await.map_err(map_err)?;
        Ok(if written == 1 {
            WriteOutcome::Written
        } else {
            WriteOutcome::ConditionFailed
        })
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let mut conn = self.conn.clone();
        let _: i64 = self
            .scripts
            .delete
            .key(self.data_key(key))
            .key(&self.versions)
            .key(&self.index)
            .arg(key)
            .invoke_async(&mut conn)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let mut conn = self.conn.clone();
        let n: i64 = redis::cmd("EXISTS")
            .arg(self.data_key(key))
            .query_async(&mut conn)
            .await
            .map_err(map_err)?;
        Ok(n == 1)
    }

    async fn list(&self, cursor: Option<&[u8]>, limit: usize) -> Result<ListPage> {
        let start = match cursor {
            None => b"-".to_vec(),
            // After the last raw member of the page before.
            Some(last) => [b"(", last].concat(),
        };
        let mut conn = self.conn.clone();
        let (keys, more): (Vec<Vec<u8>>, i64) = self
            .scripts
            .list
            .key(&self.index)
            .key(&self.versions)
            .arg(&self.prefix)
            .arg(start)
            .arg(limit.max(1))
            .invoke_async(&mut conn)
            .await
            .map_err(map_err)?;
        let next = match (more, keys.last()) {
            (1, Some(last)) => Some(last.clone()),
            _ => None,
        };
        // Only wasikv writes the index; a member that is not UTF-8 was put
        // there by another client: skipped, never an error for the listing.
        let members = keys.len();
        let keys: Vec<String> = keys
            .into_iter()
            .filter_map(|k| String::from_utf8(k).ok())
            .collect();
        if members > keys.len() {
            tracing::debug!(
                "list skipped {} index members that are not UTF-8 (not wasikv's)",
                members - keys.len()
            );
        }
        Ok(ListPage { keys, next })
    }

    async fn increment(&self, key: &str, delta: i64) -> Result<i64> {
        let mut conn = self.conn.clone();
        let text: String = self
            .scripts
            .increment
            .key(self.data_key(key))
            .key(&self.versions)
            .key(&self.index)
            .arg(key)
            .arg(delta)
            .arg(token())
            .invoke_async(&mut conn)
            .await
            .map_err(map_err)?;
        text.parse().map_err(|_| {
            Error::new(
                ErrorKind::Other,
                format!("redis returned a non-integer counter {text:?}"),
            )
        })
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        self.capabilities.check_batch(keys.len())?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("MGET");
        for key in keys {
            cmd.arg(self.data_key(key));
        }
        let values: Vec<Value> = cmd.query_async(&mut conn).await.map_err(map_err)?;
        mget_values(values)
    }

    async fn get_many_within(
        &self,
        keys: &[String],
        max_bytes: usize,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        self.capabilities.check_batch(keys.len())?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let mut invocation = self.scripts.get_many_within.arg(max_bytes);
        for key in keys {
            invocation.key(self.data_key(key));
        }
        let values: Vec<Value> = invocation.invoke_async(&mut conn).await.map_err(|e| {
            if e.code() == Some("WASIKV_TOO_LARGE") {
                let total = e.detail().and_then(|d| d.trim().parse().ok());
                wasikv_core::get_many_too_large(total.unwrap_or(max_bytes + 1), max_bytes)
            } else {
                map_err(e)
            }
        })?;
        mget_values(values)
    }

    async fn set_many(&self, items: Vec<(String, Vec<u8>)>) -> Result<()> {
        self.capabilities.check_batch(items.len())?;
        if items.is_empty() {
            return Ok(());
        }
        for (_, value) in &items {
            self.capabilities.check_value(value.len())?;
        }
        let mut conn = self.conn.clone();
        let mut invocation = self.scripts.set_many.key(&self.versions);
        invocation.key(&self.index);
        for (key, _) in &items {
            invocation.key(self.data_key(key));
        }
        for (key, value) in &items {
            invocation.arg(key).arg(value);
        }
        for _ in &items {
            invocation.arg(token());
        }
        let _: i64 = invocation.invoke_async(&mut conn).await.map_err(map_err)?;
        Ok(())
    }

    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        self.capabilities.check_batch(keys.len())?;
        if keys.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        let mut invocation = self.scripts.delete_many.key(&self.versions);
        invocation.key(&self.index);
        for key in keys {
            invocation.key(self.data_key(key));
        }
        for key in keys {
            invocation.arg(key);
        }
        let _: i64 = invocation.invoke_async(&mut conn).await.map_err(map_err)?;
        Ok(())
    }

    async fn watch(&self) -> Result<ChangeStream> {
        let Some(client) = &self.client else {
            return Err(Error::unsupported("watch"));
        };
        crate::watch::watch(client, self.conn.clone(), &self.prefix, &self.versions).await
    }
}
