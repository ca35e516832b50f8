//! The connection, the key codec (any UTF-8 key to a valid NATS key) and
//! the one mapper from NATS errors to wasikv errors.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use wasikv_core::{Error, ErrorKind, Result};

use crate::config::NatsConfig;

/// Longest stored key (prefix, `.` and encoded key) in bytes. NATS has no
/// key limit of its own, but a key is part of every message's subject,
/// which the server's `max_control_line` (4 KiB by default) bounds with
/// the rest of the protocol line. 3,200 bytes leave room for the KV
/// bucket's subject prefix and a reply subject, and hold a 1,024-byte key
/// even when every byte needs escaping (3 bytes each).
pub const MAX_STORED_KEY_BYTES: usize = 3_200;

/// Longest `prefix` accepted.
pub const MAX_PREFIX_BYTES: usize = 64;

/// One connection to a NATS server (or cluster), shared by its buckets.
#[derive(Clone, Debug)]
pub struct NatsStore {
    /// The JetStream context.
    pub jetstream: jetstream::Context,
    /// The server's largest message payload.
    pub max_payload: usize,
}

impl NatsStore {
    /// Connects with `config`'s credentials and TLS settings.
    pub async fn connect(config: &NatsConfig) -> Result<Self> {
        let mut options = async_nats::ConnectOptions::new()
            .name("wasikv")
            .connection_timeout(Duration::from_millis(config.connect_timeout_ms))
            .request_timeout(Some(Duration::from_millis(config.request_timeout_ms)))
            .require_tls(config.tls());
        if let (Some(user), Some(password)) = (&config.user, &config.password) {
            options = options.user_and_password(user.clone(), password.clone());
        }
        if let Some(token) = &config.token {
            options = options.token(token.clone());
        }
        if let Some(seed) = &config.nkey {
            options = options.nkey(seed.clone());
        }
        if let Some(path) = &config.creds_file {
            options = options.credentials_file(path).await.map_err(|e| {
                Error::new(
                    ErrorKind::InvalidConfig,
                    format!("cannot read creds_file {}: {e}", path.display()),
                )
            })?;
        }
        if let Some(ca) = &config.ca_file {
            options = options.add_root_certificates(ca.clone());
        }
        let client = options.connect(config.urls()).await.map_err(|e| {
            use async_nats::ConnectErrorKind as K;
            let kind = match e.kind() {
                K::Authentication | K::AuthorizationViolation => ErrorKind::AccessDenied,
                K::ServerParse | K::Dns => ErrorKind::InvalidConfig,
                _ => ErrorKind::Unavailable,
            };
            Error::new(kind, format!("cannot connect to NATS: {e}"))
        })?;
        let max_payload = client.server_info().max_payload;
        Ok(NatsStore {
            jetstream: jetstream::new(client),
            max_payload,
        })
    }

    /// The KV bucket `name`; created with `config`'s options (and, for a
    /// bucket with a `ttl`, that `max_age`) when missing and `config.create`.
    pub async fn kv(
        &self,
        name: &str,
        config: &NatsConfig,
        ttl: Option<Duration>,
    ) -> Result<kv::Store> {
        match self.jetstream.get_key_value(name).await {
            Ok(store) => Ok(store),
            Err(e) if e.kind() == jetstream::context::KeyValueErrorKind::GetBucket => {
                if !config.create {
                    return Err(Error::new(
                        ErrorKind::InvalidConfig,
                        format!(
                            "JetStream key-value bucket {name:?} does not exist (or JetStream is off): create it (nats kv add {name}) or set create = true"
                        ),
                    ));
                }
                self.create_kv(name, config, ttl).await?;
                self.jetstream.get_key_value(name).await.map_err(|e| {
                    Error::new(
                        ErrorKind::Unavailable,
                        format!("cannot open JetStream key-value bucket {name:?}: {e}"),
                    )
                })
            }
            Err(e) => Err(Error::new(
                ErrorKind::Unavailable,
                format!("cannot open JetStream key-value bucket {name:?}: {e}"),
            )),
        }
    }
}

impl NatsStore {
    /// Creates KV bucket `name`: its stream, as the KV convention defines it
    /// (`KV_<name>` on `$KV.<name>.>`, one message per key and history,
    /// rollups, no deletes of messages, direct gets). async-nats's own
    /// `create_key_value` first reads account information in a shape NATS
    /// 2.9 does not send; the stream is the whole of a KV bucket, so it is
    /// made directly. Another host creating it at the same moment is fine.
    async fn create_kv(
        &self,
        name: &str,
        config: &NatsConfig,
        ttl: Option<Duration>,
    ) -> Result<()> {
        use jetstream::stream::{Config, DiscardPolicy, StorageType};
        let max_message_size = config
            .max_value_bytes
            .map_or(-1, |n| i32::try_from(n).unwrap_or(i32::MAX));
        let stream = Config {
            name: format!("KV_{name}"),
            description: Some("wasikv bucket".to_string()),
            subjects: vec![format!("$KV.{name}.>")],
            max_messages_per_subject: config.history,
            max_message_size,
            storage: StorageType::File,
            allow_rollup: true,
            deny_delete: true,
            deny_purge: false,
            allow_direct: true,
            num_replicas: config.replicas,
            discard: DiscardPolicy::New,
            // A ttl is the stream's max_age: every write is a new message,
            // so a key lives ttl after its last write. JetStream wants the
            // duplicate window (2 minutes by default) within it.
            max_age: ttl.unwrap_or_default(),
            duplicate_window: ttl.map_or(Duration::ZERO, |t| t.min(Duration::from_secs(120))),
            ..Default::default()
        };
        match self.jetstream.create_stream(stream).await {
            Ok(_) => Ok(()),
            Err(e) if self.jetstream.get_key_value(name).await.is_ok() => {
                tracing::debug!("KV bucket {name:?} was created meanwhile: {e}");
                Ok(())
            }
            Err(e) => Err(Error::new(
                ErrorKind::Unavailable,
                format!("cannot create JetStream key-value bucket {name:?}: {e}"),
            )),
        }
    }
}

/// A NATS error as a wasikv error: `timed_out` and unreachable servers are
/// retryable `unavailable`; a key NATS refuses is `invalid-key` (the codec
/// should make that impossible).
pub fn map_err(what: &str, invalid_key: bool, e: impl std::fmt::Display) -> Error {
    if invalid_key {
        return Error::new(ErrorKind::InvalidKey, format!("nats {what}: {e}"));
    }
    Error::new(ErrorKind::Unavailable, format!("nats {what}: {e}"))
}

/// The bytes kept as they are in an encoded key; every other byte is
/// escaped as `_XX` (uppercase hex).
fn plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'/' || b == b'='
}

/// Encodes `key` into a valid NATS key, reversibly: ASCII letters, digits,
/// `-`, `/` and `=` as they are; `.` as it is between two other characters
/// (NATS's token separator: no empty token, not first or last); every other
/// byte, `_` included, as `_XX`; the empty key as `_` alone (which no
/// escape produces). Each key has exactly one encoding.
pub fn encode_key(key: &str) -> String {
    if key.is_empty() {
        return "_".to_string();
    }
    let bytes = key.as_bytes();
    let mut id = String::with_capacity(key.len());
    for (i, &b) in bytes.iter().enumerate() {
        let dot_ok = b == b'.' && i > 0 && i + 1 < bytes.len() && bytes[i - 1] != b'.';
        if plain(b) || dot_ok {
            id.push(b as char);
        } else {
            id.push_str(&format!("_{b:02X}"));
        }
    }
    id
}

/// The key of an encoded id; `None` for an id that is not the canonical
/// encoding of a UTF-8 key (another client's key).
pub fn decode_key(id: &str) -> Option<String> {
    if id == "_" {
        return Some(String::new());
    }
    let raw = id.as_bytes();
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'_' {
            let hex = std::str::from_utf8(raw.get(i + 1..i + 3)?).ok()?;
            if hex.bytes().any(|h| h.is_ascii_lowercase()) {
                return None;
            }
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            bytes.push(raw[i]);
            i += 1;
        }
    }
    let key = String::from_utf8(bytes).ok()?;
    (encode_key(&key) == id).then_some(key)
}

/// Whether `prefix` is usable as a key prefix: empty, or tokens of
/// `[A-Za-z0-9_-]` separated by single dots.
pub fn valid_prefix(prefix: &str) -> bool {
    prefix.is_empty()
        || (prefix.len() <= MAX_PREFIX_BYTES
            && prefix.split('.').all(|token| {
                !token.is_empty()
                    && token
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            }))
}

/// Whether `name` is a valid JetStream KV bucket name.
pub fn valid_kv_bucket(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key validity rule of async-nats (`is_valid_key`).
    fn valid_nats_key(k: &str) -> bool {
        !k.is_empty()
            && !k.starts_with('.')
            && !k.ends_with('.')
            && !k.contains("..")
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-/_=.".contains(&b))
    }

    #[test]
    fn every_key_encodes_to_a_valid_nats_key_and_back() {
        let corpus = [
            "", ".", "..", "...", "a.b", "a..b", ".a", "a.", "_", "__", "_41", "a b", "*", ">",
            "a.*.>", "ключ", "🔑", "\0", "%41", "=", "x/y-z", "user.123", "a.b.c.d",
        ];
        for key in corpus {
            let id = encode_key(key);
            assert!(valid_nats_key(&id), "{key:?} -> {id:?}");
            assert_eq!(decode_key(&id).as_deref(), Some(key), "{key:?} -> {id:?}");
        }
        assert_eq!(encode_key("user.123"), "user.123");
        assert_eq!(encode_key("a..b"), "a._2Eb");
        assert_eq!(encode_key("a b"), "a_20b");
        assert_eq!(encode_key(""), "_");
        let long = "é".repeat(512);
        assert!(encode_key(&long).len() <= 3 * long.len());
    }

    #[test]
    fn only_canonical_ids_decode() {
        for foreign in ["_41", "_2e", "a_", "a_4", "a..b", "_FF", "a_2Eb", "x."] {
            assert_eq!(decode_key(foreign), None, "{foreign:?}");
        }
    }

    #[test]
    fn prefixes_and_bucket_names() {
        assert!(valid_prefix("") && valid_prefix("app1.cache") && valid_prefix("a_b-c"));
        assert!(
            !valid_prefix("a..b")
                && !valid_prefix(".a")
                && !valid_prefix("a*")
                && !valid_prefix("a b")
        );
        assert!(
            valid_kv_bucket("wasikv_test-1") && !valid_kv_bucket("a.b") && !valid_kv_bucket("")
        );
    }
}
