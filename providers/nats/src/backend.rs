//! [`NatsProvider`] and [`NatsBucket`].

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv;
use async_trait::async_trait;
use futures::TryStreamExt;
use wasikv_core::{
    Bucket, BucketPlan, Capabilities, Consistency, Endpoint, Error, ErrorKind, Expiry, ListPage,
    Location, Namespace, Options, Provider, Result, Store, Version, Versioned, WriteCondition,
    WriteOutcome, expiry::Show,
};

use crate::config::NatsConfig;
use crate::core::{
    MAX_PREFIX_BYTES, MAX_STORED_KEY_BYTES, NatsStore, decode_key, encode_key, map_err,
    valid_kv_bucket, valid_prefix,
};

/// The provider name in configuration.
pub const NAME: &str = "nats";

/// Room in a message for the subject, headers and framing: a value may be
/// at most the server's payload limit less this.
pub const MESSAGE_OVERHEAD: usize = 4096;

/// Builds NATS stores.
#[derive(Debug, Default, Clone, Copy)]
pub struct NatsProvider;

/// The capabilities of a NATS bucket whose values may be `max_value_bytes` long.
pub fn capabilities_for(max_value_bytes: usize) -> Capabilities {
    Capabilities {
        max_key_bytes: Some(MAX_STORED_KEY_BYTES / 3),
        max_value_bytes: Some(max_value_bytes),
        consistency: Consistency::Strong,
        durable: true,
        versioning: "entry revision (stream sequence)",
        expiry: EXPIRY,
        ..Capabilities::required()
    }
}

/// How a NATS bucket's keys expire: the KV bucket's `max_age` (every write
/// is a new message, so a key lives ttl after its last write). The server
/// removes aged messages on a timer; the resolution is what the behavior
/// suite allows it.
pub const EXPIRY: Expiry = Expiry::Native {
    how: "the KV bucket's max_age",
    resolution: Duration::from_secs(1),
};

/// The capabilities with the server's default payload limit (1 MiB).
pub fn capabilities() -> Capabilities {
    capabilities_for((1 << 20) - MESSAGE_OVERHEAD)
}

#[async_trait]
impl Provider for NatsProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        capabilities()
    }

    fn plan(&self, bucket: &str, options: &Options) -> Result<BucketPlan> {
        let refuse = |m: String| Error::new(ErrorKind::InvalidConfig, m).in_bucket(bucket, NAME);
        let config: NatsConfig = options.parse(bucket, NAME)?;
        let kv_bucket = config.kv_bucket(bucket);
        if !valid_kv_bucket(&kv_bucket) {
            return Err(refuse(format!(
                "kv_bucket {kv_bucket:?} is not a JetStream key-value bucket name ([A-Za-z0-9_-], at most 64 bytes){}",
                if config.kv_bucket.is_none() {
                    "; the default is the bucket's name: set kv_bucket"
                } else {
                    ""
                }
            )));
        }
        if !valid_prefix(&config.prefix) {
            return Err(refuse(format!(
                "prefix {:?} is not NATS key tokens: [A-Za-z0-9_-] separated by single dots, at most {MAX_PREFIX_BYTES} bytes",
                config.prefix
            )));
        }
        let credentials = [
            config.user.is_some() || config.password.is_some(),
            config.token.is_some(),
            config.nkey.is_some(),
            config.creds_file.is_some(),
        ];
        if credentials.iter().filter(|c| **c).count() > 1 {
            return Err(refuse(
                "give one kind of credential: user and password, token, nkey or creds_file".into(),
            ));
        }
        if config.user.is_some() != config.password.is_some() {
            return Err(refuse("user and password go together".into()));
        }
        if config.ca_file.is_some() && !config.tls() {
            return Err(refuse(
                "ca_file is set but the connection is not TLS (tls:// urls or tls_required = true)"
                    .into(),
            ));
        }
        if !(1..=64).contains(&config.history) {
            return Err(refuse(format!(
                "history is {}: it must be 1 to 64",
                config.history
            )));
        }
        if config.replicas == 0 || config.replicas > 5 {
            return Err(refuse(format!(
                "replicas is {}: it must be 1 to 5",
                config.replicas
            )));
        }
        let mut endpoints = Vec::new();
        for url in config.urls() {
            endpoints.push(Endpoint::parse_server(url, 4222).ok_or_else(|| {
                refuse(format!(
                    "url {:?} is not nats://host:port (the port a number)",
                    url.rsplit_once('@').map_or(url, |(_, host)| host)
                ))
            })?);
        }
        if endpoints.is_empty() {
            return Err(refuse("url names no server".into()));
        }
        Ok(BucketPlan {
            bucket: bucket.to_string(),
            provider: NAME,
            connection: config.connection_identity(),
            location: Location {
                endpoints,
                scope: String::new(),
            },
            // KV bucket names hold no '\u{1}': "kv\u{1}prefix." overlaps
            // exactly when the KV buckets are equal and one prefix's
            // tokens start the other's.
            namespace: Namespace::Prefix(format!("{kv_bucket}\u{1}{}", key_prefix(&config.prefix))),
            options: options.clone(),
            ttl: None,
        })
    }

    async fn connect(&self, plan: &BucketPlan) -> Result<Arc<dyn Store>> {
        let config: NatsConfig = plan.options.parse(&plan.bucket, NAME)?;
        Ok(Arc::new(NatsStore::connect(&config).await?))
    }
}

#[async_trait]
impl Store for NatsStore {
    async fn open_bucket(&self, plan: &BucketPlan) -> Result<Arc<dyn Bucket>> {
        let config: NatsConfig = plan.options.parse(&plan.bucket, NAME)?;
        let name = config.kv_bucket(&plan.bucket);
        let kv = self.kv(&name, &config, plan.ttl).await?;
        let mut max_value = self.max_payload.saturating_sub(MESSAGE_OVERHEAD);
        let mut replicated_reads = false;
        if let Ok(status) = kv.status().await {
            let stream = &status.info.config;
            check_max_age(&name, stream.max_age, plan.ttl)
                .map_err(|e| e.in_bucket(&plan.bucket, NAME))?;
            if stream.max_message_size > 0 {
                max_value = max_value.min(stream.max_message_size as usize);
            }
            // Direct gets of a replicated stream may be answered by any
            // replica, one that has not applied the last write yet.
            replicated_reads = stream.allow_direct && stream.num_replicas > 1;
        }
        let mut bucket = NatsBucket::new(kv, &config.prefix, max_value);
        if replicated_reads {
            bucket.capabilities.consistency = Consistency::Eventual;
        }
        Ok(Arc::new(bucket))
    }
}

/// A bucket's `ttl` must be its KV bucket's `max_age` (all buckets on one KV
/// bucket share it): keys that expire without a `ttl`, or live longer or
/// shorter than it says, would break the expiry contract.
fn check_max_age(kv_bucket: &str, max_age: Duration, ttl: Option<Duration>) -> Result<()> {
    let max_age = (!max_age.is_zero()).then_some(max_age);
    if max_age == ttl {
        return Ok(());
    }
    let show = |d: Option<Duration>| d.map_or("none".to_string(), |d| Show(d).to_string());
    Err(Error::new(
        ErrorKind::InvalidConfig,
        format!(
            "the JetStream key-value bucket {kv_bucket:?} keeps messages for max_age = {} but the bucket's ttl is {}: they must agree (set ttl to match, or use a KV bucket made with this ttl)",
            show(max_age),
            show(ttl)
        ),
    ))
}

/// A bucket: a JetStream key-value bucket, or the keys under a prefix in one.
pub struct NatsBucket {
    kv: kv::Store,
    /// `PREFIX.`, or empty.
    prefix: String,
    capabilities: Capabilities,
}

impl NatsBucket {
    /// The bucket of `prefix` (tokens, or empty) in `kv`, its values up to `max_value_bytes`.
    pub fn new(kv: kv::Store, prefix: &str, max_value_bytes: usize) -> Self {
        NatsBucket {
            kv,
            prefix: key_prefix(prefix),
            capabilities: capabilities_for(max_value_bytes),
        }
    }

    /// The stored key of `key`, or `too-large` when its encoding is too long.
    fn key(&self, key: &str) -> Result<String> {
        let stored = format!("{}{}", self.prefix, encode_key(key));
        if stored.len() > MAX_STORED_KEY_BYTES {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!(
                    "key is {} bytes and {} bytes as a NATS key, over the limit of {MAX_STORED_KEY_BYTES} (a key is part of every message's subject; bytes other than letters, digits, '-', '/', '=' and '.' take 3)",
                    key.len(),
                    stored.len()
                ),
            ));
        }
        Ok(stored)
    }

    /// The key of a stored key of this bucket, if it is one wasikv wrote.
    fn original(&self, stored: &str) -> Option<String> {
        decode_key(stored.strip_prefix(self.prefix.as_str())?)
    }

    async fn entry(&self, key: &str) -> Result<Option<kv::Entry>> {
        let entry = self.kv.entry(self.key(key)?).await.map_err(|e| {
            let invalid = e.kind() == kv::EntryErrorKind::InvalidKey;
            map_err("get", invalid, e)
        })?;
        Ok(entry.filter(|e| e.operation == kv::Operation::Put))
    }
}

/// What the keys of a bucket with `prefix` (tokens, or empty) start with:
/// `PREFIX.`, or nothing.
fn key_prefix(prefix: &str) -> String {
    if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}.")
    }
}

fn version(revision: u64) -> Version {
    Version::from_u64(revision)
}

#[async_trait]
impl Bucket for NatsBucket {
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        Ok(self.entry(key).await?.map(|e| Versioned {
            value: e.value.to_vec(),
            version: version(e.revision),
        }))
    }

    async fn set(
        &self,
        key: &str,
        value: Vec<u8>,
        condition: WriteCondition,
    ) -> Result<WriteOutcome> {
        self.capabilities.check_value(value.len())?;
        let stored = self.key(key)?;
        match condition {
            WriteCondition::Always => {
                self.kv.put(stored, value.into()).await.map_err(|e| {
                    let invalid = e.kind() == kv::PutErrorKind::InvalidKey;
                    map_err("put", invalid, e)
                })?;
                Ok(WriteOutcome::Written)
            }
            WriteCondition::IfAbsent => match self.kv.create(stored, value.into()).await {
                Ok(_) => Ok(WriteOutcome::Written),
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                    Ok(WriteOutcome::ConditionFailed)
                }
                Err(e) => {
                    let invalid = e.kind() == kv::CreateErrorKind::InvalidKey;
                    Err(map_err("create", invalid, e))
                }
            },
            WriteCondition::IfVersion(expected) => {
                let Some(revision) = expected.as_u64().filter(|r| *r > 0) else {
                    return Ok(WriteOutcome::ConditionFailed); // not a version this bucket issued
                };
                match self.kv.update(stored, value.into(), revision).await {
                    Ok(_) => Ok(WriteOutcome::Written),
                    Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                        Ok(WriteOutcome::ConditionFailed)
                    }
                    Err(e) => {
                        let invalid = e.kind() == kv::UpdateErrorKind::InvalidKey;
                        Err(map_err("update", invalid, e))
                    }
                }
            }
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let stored = self.key(key)?;
        // A delete marker for a key that never existed would still be a
        // message (and a change for watchers): only present keys get one.
        if self.entry(key).await?.is_none() {
            return Ok(());
        }
        self.kv.delete(stored).await.map_err(|e| {
            let invalid = e.kind() == kv::DeleteErrorKind::InvalidKey;
            map_err("delete", invalid, e)
        })
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        Ok(self.entry(key).await?.is_some())
    }

    /// NATS lists a KV bucket's keys in no order and cannot resume a
    /// listing: each page reads the bucket's live keys (headers only, the
    /// last message per key), sorts this bucket's, and returns those after
    /// the token (the last key of the page before), so pages together hold
    /// every key exactly once when nothing changes meanwhile. A page costs
    /// a pass over the KV bucket's keys.
    async fn list(&self, cursor: Option<&[u8]>, limit: usize) -> Result<ListPage> {
        let after = match cursor {
            None => None,
            Some(token) => Some(std::str::from_utf8(token).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidCursor,
                    "cursor is not one this bucket issued",
                )
            })?),
        };
        let stored: Vec<String> = self
            .kv
            .keys()
            .await
            .map_err(|e| map_err("list", false, e))?
            .try_collect()
            .await
            .map_err(|e| map_err("list", false, e))?;
        let mut keys: Vec<String> = stored.iter().filter_map(|k| self.original(k)).collect();
        // The key listing is an ordered consumer: when it is recreated
        // mid-pass (a missed heartbeat under load) it delivers some keys
        // again (seen in a full test run).
        keys.sort_unstable();
        keys.dedup();
        let start = match after {
            Some(last) => keys.partition_point(|k| k.as_str() <= last),
            None => 0,
        };
        let limit = limit.max(1);
        let page: Vec<String> = keys[start..].iter().take(limit).cloned().collect();
        let next = (start + page.len() < keys.len())
            .then(|| page.last().map(|k| k.clone().into_bytes()))
            .flatten();
        Ok(ListPage { keys: page, next })
    }
}

#[cfg(test)]
mod expiry_tests {
    use super::*;

    #[test]
    fn a_buckets_ttl_must_be_its_kv_buckets_max_age() {
        let hour = Duration::from_secs(3600);
        assert!(check_max_age("kv", Duration::ZERO, None).is_ok());
        assert!(check_max_age("kv", hour, Some(hour)).is_ok());
        for (max_age, ttl, named) in [
            (hour, None, "max_age = 1h but the bucket's ttl is none"),
            (
                Duration::ZERO,
                Some(hour),
                "max_age = none but the bucket's ttl is 1h",
            ),
            (
                hour,
                Some(hour * 2),
                "max_age = 1h but the bucket's ttl is 2h",
            ),
        ] {
            let err = check_max_age("kv", max_age, ttl).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidConfig);
            assert!(err.to_string().contains(named), "{err}");
        }
    }
}
