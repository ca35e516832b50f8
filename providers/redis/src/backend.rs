//! [`RedisProvider`] and [`RedisBucket`].

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo};
use redis::{Cmd, Script, Value};
use wasikv_core::{
    BatchAtomicity, Bucket, BucketPlan, Capabilities, ChangeStream, Consistency, Endpoint, Error,
    ErrorKind, Expiry, ListPage, Location, Namespace, Options, Provider, Result, Store, Support,
    Version, Versioned, WriteCondition, WriteOutcome,
};

use crate::config::{RedisConfig, Topology};
use crate::core::{self, Connection, Expiring, Group, Layout, RedisStore, map_err};

/// The provider name in configuration.
pub const NAME: &str = "redis";

/// Most keys in one native batch (one script call or MGET).
pub const MAX_BATCH: usize = 512;

/// Redis's string limit.
pub const MAX_VALUE_BYTES: usize = 512 << 20;

/// Builds Redis stores.
#[derive(Debug, Default, Clone, Copy)]
pub struct RedisProvider;

/// The capabilities of a Redis bucket on a single server.
pub fn capabilities() -> Capabilities {
    Capabilities {
        increment: Support::Native,
        get_many: Support::Native,
        set_many: Support::Native,
        delete_many: Support::Native,
        max_value_bytes: Some(MAX_VALUE_BYTES),
        max_batch_items: Some(MAX_BATCH),
        budgeted_get_many: true,
        set_many_atomicity: BatchAtomicity::All,
        consistency: Consistency::Strong,
        durable: false,
        versioning: "random token per write + SHA-1 of the value (Lua script)",
        watch: Support::Native,
        expiry: Expiry::Native {
            how: "PX on every write",
            resolution: Duration::from_millis(1),
        },
        ..Capabilities::required()
    }
}

/// The capabilities of a Redis bucket on a Redis Cluster: a batch is one
/// script per hash-slot group (atomic within a group, not across), and
/// `get-many` is an `MGET` per slot, which cannot check a byte budget first.
pub fn cluster_capabilities() -> Capabilities {
    Capabilities {
        budgeted_get_many: false,
        set_many_atomicity: BatchAtomicity::PerGroup("hash slot"),
        versioning: "random token per write + SHA-1 of the value (Lua script, in the key's slot)",
        ..capabilities()
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

    fn capability_variants(&self) -> Vec<(&'static str, Capabilities)> {
        vec![("cluster", cluster_capabilities())]
    }

    fn plan(&self, bucket: &str, options: &Options) -> Result<BucketPlan> {
        let config: RedisConfig = options.parse(bucket, NAME)?;
        plan(bucket, options, &config).map_err(|e| e.in_bucket(bucket, NAME))
    }

    async fn connect(&self, plan: &BucketPlan) -> Result<Arc<dyn Store>> {
        let config: RedisConfig = plan.options.parse(&plan.bucket, NAME)?;
        Ok(Arc::new(RedisStore::connect(&config).await?))
    }
}

/// The plan of a bucket (no I/O): its connection, location and prefix.
fn plan(bucket: &str, options: &Options, config: &RedisConfig) -> Result<BucketPlan> {
    let prefix = config.prefix(bucket);
    if config.ca_file.is_some() && !config.tls() {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            "ca_file is set but the url is not rediss:// (TLS)",
        ));
    }
    if config.wait_replicas > 0 && config.wait_timeout_ms == 0 {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            "wait_timeout_ms = 0 would make a write wait forever for its replicas; give a bound in milliseconds",
        ));
    }
    let (connection, location) = match config.topology()? {
        Topology::Single(url) => {
            let info = connection_info(url)?;
            let endpoint = endpoint_of(&info)?;
            (
                url.to_string(),
                // One keyspace per server and database index, whatever the
                // spelling of the url, its credentials or its TLS settings.
                Location::new(endpoint, format!("db {}", info.redis_settings().db())),
            )
        }
        Topology::Cluster(nodes) => {
            let tls = nodes.iter().filter(|n| n.starts_with("rediss://")).count();
            if tls != 0 && tls != nodes.len() {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    "cluster mixes redis:// and rediss:// nodes: use one scheme",
                ));
            }
            let mut endpoints = Vec::with_capacity(nodes.len());
            for node in nodes {
                let info = connection_info(node)?;
                if info.redis_settings().db() != 0 {
                    return Err(Error::new(
                        ErrorKind::InvalidConfig,
                        "a cluster node url names a database; a Redis Cluster has only database 0",
                    ));
                }
                endpoints.push(endpoint_of(&info)?);
            }
            if prefix.contains(['{', '}']) {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    format!(
                        "the prefix {prefix:?} holds '{{' or '}}': on a Redis Cluster wasikv puts its own hash tag after the prefix to spread the bucket over the slots"
                    ),
                ));
            }
            (
                format!("cluster:{}", nodes.join(",")),
                Location {
                    endpoints,
                    scope: "cluster".to_string(),
                },
            )
        }
    };
    Ok(BucketPlan {
        bucket: bucket.to_string(),
        provider: NAME,
        connection,
        location,
        namespace: Namespace::Prefix(prefix),
        options: options.clone(),
        ttl: None,
    })
}

/// The parsed form of `url`, or an error that does not echo it (it may hold
/// a password).
fn connection_info(url: &str) -> Result<redis::ConnectionInfo> {
    redis::IntoConnectionInfo::into_connection_info(url).map_err(bad_url)
}

/// The server a connection info points at.
fn endpoint_of(info: &redis::ConnectionInfo) -> Result<Endpoint> {
    match info.addr() {
        redis::ConnectionAddr::Tcp(host, port)
        | redis::ConnectionAddr::TcpTls { host, port, .. } => Ok(Endpoint::server(host, *port)),
        redis::ConnectionAddr::Unix(path) => Ok(Endpoint::Path(
            std::path::absolute(path).unwrap_or_else(|_| path.clone()),
        )),
        other => Err(Error::new(
            ErrorKind::InvalidConfig,
            format!("unsupported redis address kind {other:?}"),
        )),
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

/// The TLS certificates of a `rediss://` connection: the system's roots,
/// or only `ca_file`'s.
fn tls_certificates(config: &RedisConfig) -> Result<redis::TlsCertificates> {
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
    Ok(redis::TlsCertificates {
        client_tls: None,
        root_cert,
    })
}

/// A client of one server at `url`, with `config`'s TLS settings.
fn single_client(url: &str, config: &RedisConfig) -> Result<redis::Client> {
    if url.starts_with("rediss://") {
        redis::Client::build_with_tls(url, tls_certificates(config)?).map_err(bad_url)
    } else {
        redis::Client::open(url).map_err(bad_url)
    }
}

impl RedisStore {
    /// Connects to the server or cluster of `config`.
    pub async fn connect(config: &RedisConfig) -> Result<Self> {
        let connect_timeout = Duration::from_millis(config.connect_timeout_ms);
        let response_timeout = (config.response_timeout_ms > 0)
            .then(|| Duration::from_millis(config.response_timeout_ms));
        match config.topology()? {
            Topology::Single(url) => {
                let client = single_client(url, config)?;
                let manager_config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(connect_timeout))
                    .set_response_timeout(response_timeout)
                    .set_number_of_retries(2);
                let conn = ConnectionManager::new_with_config(client.clone(), manager_config)
                    .await
                    .map_err(map_err)?;
                let mut conn = Connection::Single(conn);
                refuse_cluster_node(&mut conn).await?;
                check_eviction_policy(&mut conn).await?;
                Ok(RedisStore {
                    conn,
                    pubsub: vec![client],
                })
            }
            Topology::Cluster(nodes) => {
                let mut builder = redis::cluster::ClusterClientBuilder::new(nodes.to_vec())
                    .connection_timeout(connect_timeout)
                    .retries(3);
                if let Some(timeout) = response_timeout {
                    builder = builder.response_timeout(timeout);
                }
                if config.tls() {
                    builder = builder.certs(tls_certificates(config)?);
                }
                let client = builder.build().map_err(bad_url)?;
                let conn = client.get_async_connection().await.map_err(|e| {
                    if e.is_io_error() || e.is_connection_refusal() || e.is_timeout() {
                        map_err(e)
                    } else {
                        Error::new(
                            ErrorKind::InvalidConfig,
                            "cannot read the cluster's slots from its nodes (are they Redis Cluster nodes, with every slot assigned?)",
                        )
                        .with_source(e)
                    }
                })?;
                let mut conn = Connection::Cluster(conn);
                check_eviction_policy(&mut conn).await?;
                let pubsub = nodes
                    .iter()
                    .map(|url| single_client(url, config))
                    .collect::<Result<_>>()?;
                Ok(RedisStore { conn, pubsub })
            }
        }
    }
}

/// Refuses a single-server url that points at a Redis Cluster node: its
/// bucket would fail every multi-key write with CROSSSLOT. `INFO` may be
/// disabled (managed services): then nothing is checked.
async fn refuse_cluster_node(conn: &mut Connection) -> Result<()> {
    let info: redis::RedisResult<String> =
        redis::cmd("INFO").arg("cluster").query_async(conn).await;
    match info {
        Ok(text) if text.lines().any(|l| l.trim() == "cluster_enabled:1") => Err(Error::new(
            ErrorKind::InvalidConfig,
            "the url is a node of a Redis Cluster: configure the bucket with cluster = [\"redis://host:port\", ...] instead of url",
        )),
        Err(e) if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() => Err(map_err(e)),
        _ => Ok(()),
    }
}

/// Refuses a server whose `maxmemory-policy` may evict any key
/// (`allkeys-*`): it could evict a bucket's key index or version hash, and
/// listing would then silently miss keys and CAS lose its versions. On a
/// cluster every master is asked. Where `CONFIG GET` is not allowed
/// (managed services often rename it), the policy cannot be checked: a
/// warning says so. A policy changed after the connection was made is not
/// seen.
async fn check_eviction_policy(conn: &mut Connection) -> Result<()> {
    let mut cmd = redis::cmd("CONFIG");
    cmd.arg("GET").arg("maxmemory-policy");
    let reply: redis::RedisResult<Value> = match conn {
        Connection::Single(c) => cmd.query_async(c).await,
        Connection::Cluster(c) => {
            c.route_command(
                cmd,
                RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None)),
            )
            .await
        }
    };
    match reply {
        Ok(value) => {
            let mut texts = Vec::new();
            collect_texts(&value, &mut texts);
            match texts.iter().find(|t| t.starts_with("allkeys-")) {
                Some(policy) => Err(Error::new(
                    ErrorKind::InvalidConfig,
                    format!(
                        "the server's maxmemory-policy is {policy}, which may evict any key, including a bucket's key index and versions (listing would miss keys, CAS lose versions); set it to noeviction or a volatile-* policy"
                    ),
                )),
                None => Ok(()),
            }
        }
        Err(e) if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() => Err(map_err(e)),
        Err(e) => {
            tracing::warn!(
                "cannot read the redis server's maxmemory-policy ({e}); an allkeys-* policy would evict bucket indexes and versions: make sure it is noeviction or volatile-*"
            );
            Ok(())
        }
    }
}

/// Every text in a reply, however nested (a cluster answers per node).
fn collect_texts(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::BulkString(b) => out.push(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => out.push(s.clone()),
        Value::Array(items) | Value::Set(items) => items.iter().for_each(|v| collect_texts(v, out)),
        Value::Map(pairs) => pairs.iter().for_each(|(k, v)| {
            collect_texts(k, out);
            collect_texts(v, out);
        }),
        _ => {}
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn open_bucket(&self, plan: &BucketPlan) -> Result<Arc<dyn Bucket>> {
        let config: RedisConfig = plan.options.parse(&plan.bucket, NAME)?;
        Ok(Arc::new(
            RedisBucket::new(self.conn.clone(), &config.prefix(&plan.bucket))
                .with_watch(self.pubsub.clone())
                .with_wait(config.wait_replicas, config.wait_timeout_ms)
                .expiring(plan.ttl),
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

impl Scripts {
    fn new(expiring: Expiring) -> Self {
        Scripts {
            set: expiring.script(core::SET),
            set_if_absent: expiring.script(core::SET_IF_ABSENT),
            set_if_version: core::set_if_version_script(expiring),
            get_versioned: core::get_versioned_script(),
            delete: Script::new(core::DELETE),
            increment: expiring.script(core::INCREMENT),
            get_many_within: Script::new(core::GET_MANY_WITHIN),
            set_many: expiring.script(core::SET_MANY),
            delete_many: Script::new(core::DELETE_MANY),
            list: Script::new(core::LIST),
        }
    }
}

/// The scripts, compiled once per process (EVALSHA by their SHA-1, EVAL when
/// the server lost them).
static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts::new(Expiring::No));

/// The scripts of buckets with a `ttl`.
static EXPIRING_SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts::new(Expiring::Yes));

/// Replicas a write waits for (`WAIT`), and for how long.
#[derive(Debug, Clone, Copy)]
struct Wait {
    replicas: u32,
    timeout_ms: u64,
}

/// A bucket: a key prefix on one Redis database, or spread over the hash
/// slots of a Redis Cluster ([`Layout`]).
pub struct RedisBucket {
    conn: Connection,
    /// For the pub/sub connection of a watch (tried in order).
    pubsub: Vec<redis::Client>,
    layout: Layout,
    wait: Option<Wait>,
    scripts: &'static Scripts,
    capabilities: Capabilities,
    /// The bucket's `ttl` in milliseconds.
    ttl_ms: Option<u64>,
}

impl RedisBucket {
    /// The bucket at `prefix` on `conn` (laid out for a cluster when `conn`
    /// is a cluster connection), without watch.
    pub fn new(conn: Connection, prefix: &str) -> Self {
        let (layout, mut capabilities) = match &conn {
            Connection::Single(_) => (Layout::single(prefix), capabilities()),
            Connection::Cluster(_) => (Layout::cluster(prefix), cluster_capabilities()),
        };
        capabilities.watch = Support::Unsupported;
        RedisBucket {
            conn,
            pubsub: Vec::new(),
            layout,
            wait: None,
            scripts: &SCRIPTS,
            capabilities,
            ttl_ms: None,
        }
    }

    /// The bucket with keys that expire `ttl` after their last write
    /// (`PX` on every write, see [`Expiring`]).
    pub fn expiring(mut self, ttl: Option<Duration>) -> Self {
        self.ttl_ms = ttl.map(|ttl| (ttl.as_millis() as u64).max(1));
        self.scripts = match self.ttl_ms {
            Some(_) => &EXPIRING_SCRIPTS,
            None => &SCRIPTS,
        };
        self
    }

    /// Adds a write script's trailing ARGV of an expiring bucket (ttl and
    /// the data-key prefix of group `g`).
    fn expiry_args(&self, cmd: &mut Cmd, g: &Group) {
        if let Some(ttl_ms) = self.ttl_ms {
            cmd.arg(ttl_ms).arg(&g.data_prefix);
        }
    }

    /// The bucket with `watch` natively: a subscription, through the first
    /// of `clients` that answers, to the changes its write scripts publish.
    pub fn with_watch(mut self, clients: Vec<redis::Client>) -> Self {
        if !clients.is_empty() {
            self.pubsub = clients;
            self.capabilities.watch = Support::Native;
        }
        self
    }

    /// The bucket acknowledging a write only once `replicas` replicas have
    /// it (`WAIT replicas timeout_ms` after it, on the same connection);
    /// `replicas = 0`: when the master has it.
    pub fn with_wait(mut self, replicas: u32, timeout_ms: u64) -> Self {
        self.wait = (replicas > 0).then_some(Wait {
            replicas,
            timeout_ms,
        });
        self
    }

    /// The bucket's key layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    fn data_key(&self, key: &str) -> String {
        self.layout.data_key(key)
    }

    /// Runs `cmd` (an `EVALSHA` of `script`, built by [`evalsha`]); when
    /// `write` and the bucket waits for replicas, `WAIT` follows it in the
    /// same pipeline, so it runs on the connection (and the master) that
    /// took the write. Errors go through the one mapper.
    async fn run<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        cmd: Cmd,
        write: bool,
    ) -> Result<T> {
        self.run_raw(script, cmd, write).await.map_err(|e| {
            if e.kind() == redis::ErrorKind::Client && e.to_string().contains(WAIT_SHORT) {
                // Not retryable: the write is on the master; doing it again
                // would apply an increment twice.
                Error::new(ErrorKind::Unavailable, e.detail().unwrap_or(WAIT_SHORT))
                    .set_retryable(false)
            } else {
                map_err(e)
            }
        })
    }

    /// [`RedisBucket::run`] with the Redis error as it came. A server that
    /// lost the script gets it loaded (on every node of a cluster) and the
    /// call is sent again.
    async fn run_raw<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        cmd: Cmd,
        write: bool,
    ) -> redis::RedisResult<T> {
        let mut conn = self.conn.clone();
        let mut loaded = false;
        loop {
            let reply = match self.wait.filter(|_| write) {
                None => cmd.query_async::<T>(&mut conn).await,
                Some(wait) => match self.run_waiting(&mut conn, &cmd, wait).await {
                    Ok(value) => T::from_redis_value(value).map_err(Into::into),
                    Err(e) => Err(e),
                },
            };
            match reply {
                Err(e)
                    if !loaded
                        && e.kind()
                            == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
                {
                    script.load_async(&mut conn).await?;
                    loaded = true;
                }
                other => return other,
            }
        }
    }

    /// `cmd` then `WAIT`: the reply of `cmd`, or an error when fewer than
    /// `wait.replicas` replicas confirmed it in time.
    async fn run_waiting(
        &self,
        conn: &mut Connection,
        cmd: &Cmd,
        wait: Wait,
    ) -> redis::RedisResult<Value> {
        let mut pipe = redis::pipe();
        pipe.add_command(cmd.clone())
            .cmd("WAIT")
            .arg(wait.replicas)
            .arg(wait.timeout_ms)
            .ignore_errors();
        let mut replies: Vec<Value> = pipe.query_async(conn).await?;
        let acked = replies.pop();
        let reply = replies.pop().unwrap_or(Value::Nil);
        if let Value::ServerError(e) = reply {
            return Err(e.into());
        }
        match acked {
            Some(Value::Int(n)) if n >= i64::from(wait.replicas) => Ok(reply),
            Some(Value::Int(n)) => Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "replicas",
                format!(
                    "{WAIT_SHORT}: the master has the write but only {n} of {} replicas confirmed it within {} ms (wait_replicas); it may be lost if the master fails now",
                    wait.replicas, wait.timeout_ms
                ),
            ))),
            Some(Value::ServerError(e)) => Err(e.into()),
            other => Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "replicas",
                format!("unexpected WAIT reply {other:?}"),
            ))),
        }
    }

    /// One script per group of `keys` (cluster) or one for all (single
    /// server), concurrently: `build(group, indices of its keys)` makes the
    /// call.
    async fn per_group(
        &self,
        keys: impl Iterator<Item = &str>,
        script: &Script,
        build: impl Fn(&Group, &[usize]) -> Cmd,
    ) -> Result<()> {
        let mut by_group: Vec<(usize, Vec<usize>)> = Vec::new();
        for (i, key) in keys.enumerate() {
            let g = self.layout.group_of(key);
            match by_group.iter_mut().find(|(group, _)| *group == g) {
                Some((_, members)) => members.push(i),
                None => by_group.push((g, vec![i])),
            }
        }
        futures::future::try_join_all(by_group.iter().map(|(g, members)| {
            let cmd = build(&self.layout.groups()[*g], members);
            async move { self.run::<i64>(script, cmd, true).await }
        }))
        .await?;
        Ok(())
    }

    /// One page of the group at `group`, from after `start` (or its first key).
    async fn list_group(
        &self,
        group: usize,
        start: Option<&[u8]>,
        limit: usize,
    ) -> Result<(Vec<Vec<u8>>, bool)> {
        let g = &self.layout.groups()[group];
        let start = match start {
            None => b"-".to_vec(),
            // After the last raw member of the page before.
            Some(last) => [b"(", last].concat(),
        };
        let mut cmd = evalsha(&self.scripts.list, 2);
        cmd.arg(&g.index)
            .arg(&g.versions)
            .arg(&g.data_prefix)
            .arg(start)
            .arg(limit.max(1));
        let (keys, more): (Vec<Vec<u8>>, i64) = self.run(&self.scripts.list, cmd, false).await?;
        Ok((keys, more == 1))
    }

    /// A page over the groups of a cluster bucket. The provider's token is
    /// the group number (2 bytes, big-endian) and the last member listed in
    /// it (empty: from the group's start). Groups are asked a window at a
    /// time, concurrently; the window doubles (up to 32) while they come
    /// back short, so a sparse bucket costs a few round trips, not 256.
    async fn list_cluster(&self, cursor: Option<&[u8]>, limit: usize) -> Result<ListPage> {
        let groups = self.layout.groups().len();
        let (mut group, mut start) = match cursor {
            None => (0, None),
            Some(token) if token.len() >= 2 => {
                let g = usize::from(u16::from_be_bytes([token[0], token[1]]));
                if g >= groups {
                    return Err(Error::new(
                        ErrorKind::InvalidCursor,
                        "cursor names a group this bucket does not have",
                    ));
                }
                (g, (token.len() > 2).then(|| token[2..].to_vec()))
            }
            Some(_) => {
                return Err(Error::new(
                    ErrorKind::InvalidCursor,
                    "cursor is too short for a cluster bucket",
                ));
            }
        };
        let limit = limit.max(1);
        let mut members: Vec<Vec<u8>> = Vec::with_capacity(limit);
        let mut window = 1usize;
        while group < groups {
            let want = limit - members.len();
            let span = window.min(groups - group);
            let pages = futures::future::try_join_all((group..group + span).map(|g| {
                let from = if g == group { start.as_deref() } else { None };
                self.list_group(g, from, want)
            }))
            .await?;
            for (offset, (page, more)) in pages.into_iter().enumerate() {
                let g = group + offset;
                let room = limit - members.len();
                let cut = page.len() > room;
                members.extend(page.into_iter().take(room));
                if members.len() == limit {
                    let next = if cut || more {
                        let last = members.last().expect("a full page");
                        Some([&(g as u16).to_be_bytes()[..], last].concat())
                    } else if g + 1 < groups {
                        Some(((g + 1) as u16).to_be_bytes().to_vec())
                    } else {
                        None
                    };
                    return Ok(ListPage {
                        keys: utf8_keys(members),
                        next,
                    });
                }
            }
            group += span;
            start = None;
            window = (window * 2).min(32);
        }
        Ok(ListPage {
            keys: utf8_keys(members),
            next: None,
        })
    }
}

/// An `EVALSHA` of `script` with `keys` keys; the keys, then the arguments,
/// are added by the caller.
fn evalsha(script: &Script, keys: usize) -> Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(script.get_hash()).arg(keys);
    cmd
}

/// Marks the error of a write whose replicas did not confirm it in time.
const WAIT_SHORT: &str = "too few replicas";

/// Largest value an unconditional `set` writes as a MULTI/EXEC transaction;
/// larger ones go through the SET script, which builds the change
/// notification from the value on the server instead of sending it twice.
const PIPELINED_SET_MAX_BYTES: usize = 4096;

/// A fresh random version token (128 bits, hex).
fn token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Listed index members as keys. Only wasikv writes the index; a member
/// that is not UTF-8 was put there by another client: skipped, never an
/// error for the listing.
fn utf8_keys(members: Vec<Vec<u8>>) -> Vec<String> {
    let total = members.len();
    let keys: Vec<String> = members
        .into_iter()
        .filter_map(|k| String::from_utf8(k).ok())
        .collect();
    if total > keys.len() {
        tracing::debug!(
            "list skipped {} index members that are not UTF-8 (not wasikv's)",
            total - keys.len()
        );
    }
    keys
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
        let g = self.layout.group(key);
        let mut cmd = evalsha(&self.scripts.get_versioned, 2);
        cmd.arg(g.data_key(key)).arg(&g.versions).arg(key);
        let reply: Option<(Vec<u8>, Vec<u8>)> =
            self.run(&self.scripts.get_versioned, cmd, false).await?;
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
        let g = self.layout.group(key);
        if matches!(condition, WriteCondition::Always)
            && value.len() <= PIPELINED_SET_MAX_BYTES
            && self.wait.is_none()
            && self.ttl_ms.is_none()
        {
            // The SET script's four commands as one MULTI/EXEC transaction,
            // sent in one write: the same atomic change without the cost of
            // running a script (measured: docs/benchmarks.md, Redis writes).
            let mut conn = self.conn.clone();
            let change = [format!("s{}:{key}", key.len()).as_bytes(), &value].concat();
            redis::pipe()
                .atomic()
                .set(g.data_key(key), value)
                .ignore()
                .hset(&g.versions, key, token())
                .ignore()
                .zadd(&g.index, key, 0)
                .ignore()
                .publish(&g.versions, change)
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
        let mut cmd = evalsha(script, 3);
        cmd.arg(g.data_key(key))
            .arg(&g.versions)
            .arg(&g.index)
            .arg(key)
            .arg(value)
            .arg(token());
        if let WriteCondition::IfVersion(v) = &condition {
            cmd.arg(&v.0);
        }
        self.expiry_args(&mut cmd, g);
        let written: i64 = self.run(script, cmd, true).await?;
        Ok(if written == 1 {
            WriteOutcome::Written
        } else {
            WriteOutcome::ConditionFailed
        })
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let g = self.layout.group(key);
        let mut cmd = evalsha(&self.scripts.delete, 3);
        cmd.arg(g.data_key(key))
            .arg(&g.versions)
            .arg(&g.index)
            .arg(key);
        let _: i64 = self.run(&self.scripts.delete, cmd, true).await?;
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
        if self.layout.is_cluster() {
            return self.list_cluster(cursor, limit).await;
        }
        let (members, more) = self.list_group(0, cursor, limit).await?;
        let next = match (more, members.last()) {
            (true, Some(last)) => Some(last.clone()),
            _ => None,
        };
        Ok(ListPage {
            keys: utf8_keys(members),
            next,
        })
    }

    async fn increment(&self, key: &str, delta: i64) -> Result<i64> {
        let g = self.layout.group(key);
        let mut cmd = evalsha(&self.scripts.increment, 3);
        cmd.arg(g.data_key(key))
            .arg(&g.versions)
            .arg(&g.index)
            .arg(key)
            .arg(delta)
            .arg(token());
        self.expiry_args(&mut cmd, g);
        let text: String = self.run(&self.scripts.increment, cmd, true).await?;
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
        // On a cluster the connection splits the MGET per slot and sends
        // each part to its master, concurrently.
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
        if !self.capabilities.budgeted_get_many {
            return Err(Error::unsupported("get-many within a byte budget"));
        }
        self.capabilities.check_batch(keys.len())?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = evalsha(&self.scripts.get_many_within, keys.len());
        for key in keys {
            cmd.arg(self.data_key(key));
        }
        cmd.arg(max_bytes);
        let values: Vec<Value> = self
            .run_raw(&self.scripts.get_many_within, cmd, false)
            .await
            .map_err(|e| {
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
        self.per_group(
            items.iter().map(|(k, _)| k.as_str()),
            &self.scripts.set_many,
            |g, members| {
                let mut cmd = evalsha(&self.scripts.set_many, members.len() + 2);
                cmd.arg(&g.versions).arg(&g.index);
                for &i in members {
                    cmd.arg(g.data_key(&items[i].0));
                }
                for &i in members {
                    cmd.arg(&items[i].0).arg(&items[i].1);
                }
                for _ in members {
                    cmd.arg(token());
                }
                self.expiry_args(&mut cmd, g);
                cmd
            },
        )
        .await
    }

    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        self.capabilities.check_batch(keys.len())?;
        if keys.is_empty() {
            return Ok(());
        }
        self.per_group(
            keys.iter().map(String::as_str),
            &self.scripts.delete_many,
            |g, members| {
                let mut cmd = evalsha(&self.scripts.delete_many, members.len() + 2);
                cmd.arg(&g.versions).arg(&g.index);
                for &i in members {
                    cmd.arg(g.data_key(&keys[i]));
                }
                for &i in members {
                    cmd.arg(&keys[i]);
                }
                cmd
            },
        )
        .await
    }

    async fn watch(&self) -> Result<ChangeStream> {
        if self.pubsub.is_empty() {
            return Err(Error::unsupported("watch"));
        }
        crate::watch::watch(&self.pubsub, self.conn.clone(), &self.layout).await
    }
}
