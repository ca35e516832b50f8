//! The three provider levels: [`Provider`] (factory), [`Store`] (connection)
//! and [`Bucket`] (namespace), and the data types of their operations.

use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;

use crate::{Capabilities, Error, ErrorKind, Result};

/// An opaque version token given by the store with a value.
///
/// Contract: any write to a key (even of the same bytes), and any delete,
/// makes every earlier version of that key stale, and a key re-created after a
/// delete never gets a version it had before (no ABA).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version(pub Vec<u8>);

impl Version {
    /// A version from a 64-bit counter or token.
    pub fn from_u64(v: u64) -> Self {
        Version(v.to_be_bytes().to_vec())
    }

    /// The 64-bit value, if this version was made by [`Version::from_u64`].
    pub fn as_u64(&self) -> Option<u64> {
        Some(u64::from_be_bytes(self.0.as_slice().try_into().ok()?))
    }
}

/// A value and the version it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// The stored bytes.
    pub value: Vec<u8>,
    /// The version of this value.
    pub version: Version,
}

/// When a [`Bucket::set`] may write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteCondition {
    /// Always.
    Always,
    /// Only if the key does not exist (create-if-absent).
    IfAbsent,
    /// Only if the key exists with exactly this version.
    IfVersion(Version),
}

/// Result of a [`Bucket::set`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The value was written.
    Written,
    /// The condition did not hold; nothing was written.
    ConditionFailed,
}

/// A change of one key, as [`Bucket::watch`] delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The key was written (set, increment, a batch) and now holds `value`.
    Set {
        /// The original key.
        key: String,
        /// The value written.
        value: Vec<u8>,
    },
    /// The key was deleted.
    Delete {
        /// The original key.
        key: String,
    },
}

impl Change {
    /// The key changed.
    pub fn key(&self) -> &str {
        match self {
            Change::Set { key, .. } | Change::Delete { key } => key,
        }
    }
}

/// The changes of a bucket, in order per key.
pub type ChangeStream =
    std::pin::Pin<Box<dyn futures_core::Stream<Item = Result<Change>> + Send + 'static>>;

/// One page of [`Bucket::list`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    /// The original keys (decoded by the provider's key codec).
    pub keys: Vec<String>,
    /// The provider's continuation token, `None` at the end.
    pub next: Option<Vec<u8>>,
}

/// A bucket: a namespace on a store on which every operation runs.
///
/// Required methods are what every store does natively. The optional methods
/// default to [`ErrorKind::Unsupported`]; a provider overrides one only where
/// its store does it natively, and declares so in [`Bucket::capabilities`]
/// (the behavior suite checks the declaration both ways). The host's emulation
/// layer fills in the rest.
///
/// Keys are any UTF-8 string the host accepts; a provider whose store restricts
/// ids encodes them with a [`KeyCodec`](crate::KeyCodec).
#[async_trait]
pub trait Bucket: Send + Sync + 'static {
    /// What this bucket does natively, and its limits.
    fn capabilities(&self) -> &Capabilities;

    /// The value and its version, `None` if the key is missing.
    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>>;

    /// The value, `None` if the key is missing. Override when a plain read is
    /// cheaper than a versioned one.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.get_versioned(key).await?.map(|v| v.value))
    }

    /// Writes `value` if `condition` holds. Conditions other than
    /// [`WriteCondition::Always`] return `Unsupported` when the store has no CAS.
    async fn set(
        &self,
        key: &str,
        value: Vec<u8>,
        condition: WriteCondition,
    ) -> Result<WriteOutcome>;

    /// Deletes the key; a missing key is not an error.
    async fn delete(&self, key: &str) -> Result<()>;

    /// Whether the key exists.
    async fn exists(&self, key: &str) -> Result<bool>;

    /// One page of at most `limit` keys, continuing after `cursor` (a token
    /// from an earlier page of this bucket). Together the pages return every
    /// key exactly once when nothing changes meanwhile. Items in the
    /// bucket's namespace that it did not write (ids that are not a canonical
    /// encoding, keys that are not UTF-8) are skipped, never an error; a page
    /// may then hold fewer keys, even none, with a token to go on. A token
    /// this bucket could not have issued is `InvalidCursor`, never a panic.
    async fn list(&self, cursor: Option<&[u8]>, limit: usize) -> Result<ListPage>;

    /// Adds `delta` to the decimal counter at `key` (created as `delta` when
    /// missing) and returns the new value; see [`crate::counter`] for the rules.
    async fn increment(&self, key: &str, delta: i64) -> Result<i64> {
        let _ = (key, delta);
        Err(Error::unsupported("increment"))
    }

    /// [`Bucket::increment`] that refuses a new counter below `min` with
    /// `InvalidValue`, leaving the value unchanged, in the same atomic step
    /// (the 0.2.0-draft interface's `u64` counters use `min = 0`). Override
    /// where the store checks and adds in one step, and declare
    /// [`Capabilities::bounded_increment`]; the host's CAS loop serves the
    /// others.
    async fn increment_at_least(&self, key: &str, delta: i64, min: i64) -> Result<i64> {
        let _ = (key, delta, min);
        Err(Error::unsupported("increment with a lower bound"))
    }

    /// The values of `keys`, one entry per position (repeats too), `None` where missing.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        let _ = keys;
        Err(Error::unsupported("get-many"))
    }

    /// [`Bucket::get_many`] that refuses, with `TooLarge`, a result whose
    /// values total more than `max_bytes`, before holding it. Override (and
    /// declare [`Capabilities::budgeted_get_many`]) only where the store
    /// tells sizes before sending values; the host bounds other stores by
    /// asking for fewer keys at a time.
    async fn get_many_within(
        &self,
        keys: &[String],
        max_bytes: usize,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        let _ = (keys, max_bytes);
        Err(Error::unsupported("get-many within a byte budget"))
    }

    /// Writes every item; the host passes distinct keys, at most
    /// [`Capabilities::max_batch_items`] of them.
    async fn set_many(&self, items: Vec<(String, Vec<u8>)>) -> Result<()> {
        let _ = items;
        Err(Error::unsupported("set-many"))
    }

    /// Deletes every key; the host passes distinct keys, at most
    /// [`Capabilities::max_batch_items`] of them.
    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        let _ = keys;
        Err(Error::unsupported("delete-many"))
    }

    /// The changes made to this bucket from now on, by any client of the
    /// store, each key's changes in order, at least once. The stream ends
    /// only with an error.
    async fn watch(&self) -> Result<ChangeStream> {
        Err(Error::unsupported("watch"))
    }

    /// The synchronous side of an in-process bucket whose single-key calls
    /// never wait (no I/O, no lock held across an await), if it has one:
    /// the host then serves those calls with no future per call. `None` (the
    /// default) for every networked store.
    fn immediate(&self) -> Option<&dyn ImmediateBucket> {
        None
    }
}

/// Single-key calls of an in-process bucket, answered without waiting
/// ([`Bucket::immediate`]). Each keeps the contract of the [`Bucket`] method
/// of the same name, and must give the same results as that method: the
/// bucket's async methods should call these.
pub trait ImmediateBucket: Send + Sync {
    /// [`Bucket::get`].
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// [`Bucket::exists`].
    fn exists(&self, key: &str) -> Result<bool>;
    /// [`Bucket::set`] with [`WriteCondition::Always`]; the key is owned so
    /// that a new key is stored without a copy.
    fn set(&self, key: String, value: Vec<u8>) -> Result<()>;
    /// [`Bucket::delete`].
    fn delete(&self, key: &str) -> Result<()>;
    /// [`Bucket::increment_at_least`] (`i64::MIN`: no bound). Only on
    /// buckets that declare native [`Capabilities::increment`] and
    /// [`Capabilities::bounded_increment`].
    fn increment_at_least(&self, key: &str, delta: i64, min: i64) -> Result<i64>;
}

/// The `TooLarge` error of a `get-many` whose values total `total` bytes,
/// over `max_bytes`.
pub fn get_many_too_large(total: usize, max_bytes: usize) -> Error {
    Error::new(
        ErrorKind::TooLarge,
        format!(
            "get-many result is over the limit of {max_bytes} bytes ({total} bytes or more; limits.max_call_bytes); ask for fewer keys"
        ),
    )
}

/// A boxed future opening a bucket (the return of providers' test openers).
pub type OpenFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Arc<dyn Bucket>>> + Send>>;

/// A connection to a store (client, pool, file), shared by all buckets on it.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Opens the bucket of `plan` (which has this store's `connection`).
    async fn open_bucket(&self, plan: &BucketPlan) -> Result<Arc<dyn Bucket>>;
}

/// A store type: builds stores from configuration.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The name used in configuration (`provider = "..."`).
    fn name(&self) -> &'static str;

    /// The capabilities of this provider's buckets with default options, for
    /// the capability matrix.
    fn capabilities(&self) -> Capabilities;

    /// Bucket shapes, selected by an option, whose capabilities differ from
    /// [`Provider::capabilities`]: `(label, capabilities)`, e.g. `("partition",
    /// ..)`, shown as extra columns of the capability matrix.
    fn capability_variants(&self) -> Vec<(&'static str, Capabilities)> {
        Vec::new()
    }

    /// Validates a bucket's options (no I/O) into a plan: which connection it
    /// uses and which namespace on it.
    fn plan(&self, bucket: &str, options: &Options) -> Result<BucketPlan>;

    /// Connects the store for `plan.connection`. The host calls it once per
    /// distinct connection and opens every bucket on that connection through it.
    async fn connect(&self, plan: &BucketPlan) -> Result<Arc<dyn Store>>;
}

/// Where a bucket lives on its store, for the host's overlap check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Namespace {
    /// A key prefix: overlaps another prefix on the same connection when either
    /// is a prefix of the other.
    Prefix(String),
    /// A separate container (table, collection, map): overlaps only an equal one.
    Exclusive(String),
}

impl Namespace {
    /// Whether two namespaces on the same connection could see each other's keys.
    pub fn overlaps(&self, other: &Namespace) -> bool {
        match (self, other) {
            (Namespace::Prefix(a), Namespace::Prefix(b)) => a.starts_with(b) || b.starts_with(a),
            (Namespace::Exclusive(a), Namespace::Exclusive(b)) => a == b,
            _ => false,
        }
    }
}

impl std::fmt::Display for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Namespace::Prefix(p) => write!(f, "prefix {p:?}"),
            Namespace::Exclusive(n) => write!(f, "{n:?}"),
        }
    }
}

/// One place a store's data is served from or kept in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A server: host name or IP literal (lowercase, no brackets) and port
    /// (the store's default filled in). The host compares two hosts after
    /// resolving them where it can, so `localhost` and `127.0.0.1` match.
    Server {
        /// Host name or IP address.
        host: String,
        /// Port.
        port: u16,
    },
    /// A file or socket path, absolute.
    Path(std::path::PathBuf),
    /// This host process's memory.
    Process,
}

impl Endpoint {
    /// A server endpoint from `host` and `port`, normalised (lowercase,
    /// brackets of an IPv6 literal removed).
    pub fn server(host: &str, port: u16) -> Self {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Endpoint::Server {
            host: host.to_ascii_lowercase(),
            port,
        }
    }

    /// A server endpoint from `host:port` (or `[v6]:port`, or a bare host
    /// with `default_port`), after an optional `scheme://` and before any
    /// `/path`; `None` if the port is not a number.
    pub fn parse_server(address: &str, default_port: u16) -> Option<Self> {
        let rest = address.split_once("://").map_or(address, |(_, r)| r);
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        // Credentials before '@' are not part of the place.
        let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (host, after) = v6.split_once(']')?;
                match after.strip_prefix(':') {
                    Some(port) => (host, port.parse().ok()?),
                    None => (host, default_port),
                }
            }
            None => match authority.rsplit_once(':') {
                Some((host, port)) => (host, port.parse().ok()?),
                None => (authority, default_port),
            },
        };
        Some(Endpoint::server(host, port))
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Server { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Endpoint::Server { host, port } => write!(f, "{host}:{port}"),
            Endpoint::Path(path) => write!(f, "{}", path.display()),
            Endpoint::Process => f.write_str("this process"),
        }
    }
}

/// Where a bucket's data lives, apart from how the host reaches it
/// (credentials, timeouts, retries, TLS settings): the host's overlap
/// check compares [`Namespace`]s of buckets at one location, so two
/// spellings of one server cannot give two components one keyspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The servers (a cluster's members) or file holding the data; two
    /// locations with a common endpoint and equal scopes are one store.
    pub endpoints: Vec<Endpoint>,
    /// The keyspace within those endpoints that namespaces are in: a Redis
    /// database index, a Firestore project and database; empty where the
    /// endpoints hold one keyspace (the namespace then names everything).
    pub scope: String,
}

impl Location {
    /// One endpoint, one scope.
    pub fn new(endpoint: Endpoint, scope: impl Into<String>) -> Self {
        Location {
            endpoints: vec![endpoint],
            scope: scope.into(),
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.endpoints.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{e}")?;
        }
        if !self.scope.is_empty() {
            write!(f, " ({})", self.scope)?;
        }
        Ok(())
    }
}

/// What a test's opener of buckets is asked for (the behavior suite's
/// cases, a provider's `testing::opener`).
#[derive(Debug, Clone)]
pub struct OpenRequest {
    /// A namespace no other case uses.
    pub namespace: String,
    /// The bucket's `ttl`, for the expiry cases.
    pub ttl: Option<std::time::Duration>,
}

/// A validated bucket configuration.
#[derive(Debug, Clone)]
pub struct BucketPlan {
    /// The bucket identifier guests open.
    pub bucket: String,
    /// The provider name.
    pub provider: &'static str,
    /// Identity of the connection: buckets with equal identities share one
    /// [`Store`]. May hold secrets: never print it.
    pub connection: String,
    /// Where the data lives, whatever the client settings: the overlap
    /// check compares namespaces of buckets at one location.
    pub location: Location,
    /// Where the bucket lives at that location.
    pub namespace: Namespace,
    /// The provider's options, as configured (less the bucket-wide ones,
    /// such as `ttl`, which [`crate::expiry::plan`] takes out).
    pub options: Options,
    /// The bucket's time-to-live: every write sets its key's expiry to
    /// now plus this (see [`crate::expiry`]). Set by [`crate::expiry::plan`],
    /// never by a provider's own `plan`.
    pub ttl: Option<std::time::Duration>,
}

/// A bucket's provider-specific options (its config section less `provider`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options(pub serde_json::Map<String, serde_json::Value>);

impl Options {
    /// Options from a JSON object.
    pub fn from_json(value: serde_json::Value) -> Result<Self> {
        match value {
            serde_json::Value::Object(map) => Ok(Options(map)),
            other => Err(Error::new(
                ErrorKind::InvalidConfig,
                format!("bucket options must be a table, not {other}"),
            )),
        }
    }

    /// Deserializes into the provider's config type (which should
    /// `deny_unknown_fields`), with an error naming the bucket, provider and
    /// option. The error never contains an option's value (a password set
    /// as `WASIKV_BUCKETS__X__PASSWORD=123456` arrives as a number): it says
    /// which option is wrong and what was expected.
    pub fn parse<T: DeserializeOwned>(&self, bucket: &str, provider: &str) -> Result<T> {
        let value = serde_json::Value::Object(self.0.clone());
        serde_path_to_error::deserialize(value).map_err(|e| {
            let option = e.path().to_string();
            Error::new(
                ErrorKind::InvalidConfig,
                format!("bad options: {}", redact(&option, &e.into_inner())),
            )
            .in_bucket(bucket, provider)
        })
    }
}

/// A deserialization error of option `option` without the value: serde's
/// messages quote the value in "invalid type: integer `123456`, expected a
/// string" and "unknown variant `x`"; only the part naming a field or what
/// was expected is kept.
fn redact(option: &str, error: &serde_json::Error) -> String {
    let message = error.to_string();
    // serde_json appends " at line L column C"; values are not positioned text here.
    let message = message
        .rsplit_once(" at line ")
        .map_or(message.as_str(), |(m, _)| m);
    // Field names are the provider's option names, not values: safe to show.
    for safe in ["unknown field", "missing field", "duplicate field"] {
        if message.starts_with(safe) {
            return message.to_string();
        }
    }
    let expected = message
        .split_once(", expected ")
        .map(|(_, expected)| format!(": expected {expected}"))
        .unwrap_or_default();
    if option.is_empty() || option == "." {
        format!("the options are not valid{expected}")
    } else {
        format!("option `{option}` has a value that is not valid{expected}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_namespaces_overlap_when_one_prefixes_the_other() {
        let a = Namespace::Prefix("app:".into());
        assert!(a.overlaps(&Namespace::Prefix("app:cache:".into())));
        assert!(Namespace::Prefix("".into()).overlaps(&a));
        assert!(!a.overlaps(&Namespace::Prefix("apq:".into())));
        assert!(!Namespace::Exclusive("a".into()).overlaps(&Namespace::Exclusive("ab".into())));
        assert!(Namespace::Exclusive("a".into()).overlaps(&Namespace::Exclusive("a".into())));
    }

    #[test]
    fn options_parse_reports_bucket_and_provider() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Cfg {
            path: String,
        }
        let opts = Options::from_json(serde_json::json!({"pth": "x"})).unwrap();
        let err = opts.parse::<Cfg>("default", "embedded").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        let text = err.to_string();
        assert!(text.contains("\"default\" (embedded)"), "{text}");
        assert!(text.contains("pth"), "{text}");
    }

    /// No value of any type reaches the message; the option's name does.
    #[test]
    fn options_errors_name_the_option_never_its_value() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Cfg {
            password: Option<String>,
            mode: Option<Mode>,
            port: Option<u16>,
        }
        #[derive(serde::Deserialize, Debug)]
        #[serde(rename_all = "lowercase")]
        enum Mode {
            Fast,
        }
        for (value, option) in [
            (serde_json::json!({"password": 987654321}), "password"),
            (serde_json::json!({"password": true}), "password"),
            (serde_json::json!({"password": 3.25}), "password"),
            (serde_json::json!({"password": ["s3cr3t"]}), "password"),
            (serde_json::json!({"mode": "s3cr3t"}), "mode"),
            (serde_json::json!({"port": 987654321}), "port"),
        ] {
            let text = Options::from_json(value.clone())
                .unwrap()
                .parse::<Cfg>("b", "p")
                .unwrap_err()
                .to_string();
            assert!(text.contains(&format!("option `{option}`")), "{text}");
            for secret in ["987654321", "true", "3.25", "s3cr3t"] {
                assert!(!text.contains(secret), "{value} leaked: {text}");
            }
        }
    }

    #[test]
    fn server_endpoints_are_normalised() {
        let e = |a, p| Endpoint::parse_server(a, p).unwrap();
        assert_eq!(
            e("redis://LocalHost:6379/0", 6379),
            Endpoint::server("localhost", 6379)
        );
        assert_eq!(
            e("redis://:pw@127.0.0.1/3", 6379),
            Endpoint::server("127.0.0.1", 6379)
        );
        assert_eq!(e("http://[::1]:2379", 2379), Endpoint::server("::1", 2379));
        assert_eq!(e("[::1]", 11211), Endpoint::server("::1", 11211));
        assert_eq!(
            e("memcache://h:1?timeout=3", 11211),
            Endpoint::server("h", 1)
        );
        assert!(Endpoint::parse_server("h:port", 1).is_none());
        assert_eq!(Endpoint::server("::1", 1).to_string(), "[::1]:1");
    }

    #[test]
    fn version_u64_roundtrip() {
        assert_eq!(Version::from_u64(42).as_u64(), Some(42));
        assert_eq!(Version(vec![1, 2]).as_u64(), None);
    }
}
