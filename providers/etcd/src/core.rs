//! The client, key ranges and the one mapper from etcd errors to wasikv errors.

use std::time::Duration;

use etcd_client::{
    Certificate, Client, ConnectOptions, KvClient, LeaseClient, PutOptions, TlsOptions, WatchClient,
};
use tokio::sync::Mutex;
use wasikv_core::{Error, ErrorKind, Result};

use crate::config::EtcdConfig;

/// Most operations in one transaction (etcd's default `--max-txn-ops`).
pub const MAX_TXN_OPS: usize = 128;

/// etcd's default request size limit (`--max-request-bytes`, 1.5 MiB).
pub const MAX_REQUEST_BYTES: usize = 1_572_864;

/// Room left in a request for framing and the key.
pub const REQUEST_OVERHEAD: usize = 4096;

/// Largest response the client decodes.
const MAX_DECODING_BYTES: usize = 256 << 20;

/// One connection to a cluster, shared by its buckets.
#[derive(Clone)]
pub struct EtcdStore {
    /// The key-value client.
    pub kv: KvClient,
    /// The watch client (change feeds).
    pub watch: WatchClient,
    /// The lease client (expiry).
    pub lease: LeaseClient,
}

impl EtcdStore {
    /// Connects to the cluster of `config`.
    pub async fn connect(config: &EtcdConfig) -> Result<Self> {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_millis(config.connect_timeout_ms))
            .with_timeout(Duration::from_secs(30));
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            options = options.with_user(user.clone(), password.clone());
        }
        if config.endpoints.iter().any(|e| e.starts_with("https://")) {
            let tls = match &config.ca_file {
                Some(path) => {
                    let pem = std::fs::read(path).map_err(|e| {
                        Error::new(
                            ErrorKind::InvalidConfig,
                            format!("cannot read ca_file {}", path.display()),
                        )
                        .with_source(e)
                    })?;
                    TlsOptions::new().ca_certificate(Certificate::from_pem(pem))
                }
                None => TlsOptions::new().with_native_roots(),
            };
            options = options.with_tls(tls);
        }
        let client = Client::connect(&config.endpoints, Some(options))
            .await
            .map_err(map_err)?;
        Ok(EtcdStore {
            kv: client
                .kv_client()
                .max_decoding_message_size(MAX_DECODING_BYTES),
            watch: client.watch_client(),
            lease: client.lease_client(),
        })
    }
}

/// The end of the range of keys starting with `prefix` (etcd's prefix rule):
/// the prefix with its last byte below 0xFF incremented; `\0` (every key) for
/// an empty or all-0xFF prefix.
pub fn prefix_range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// The one mapper from etcd errors to wasikv errors.
pub fn map_err(e: etcd_client::Error) -> Error {
    use etcd_client::Error as E;
    match &e {
        E::TransportError(_) | E::IoError(_) => {
            Error::new(ErrorKind::Unavailable, "etcd is unreachable").with_source(e)
        }
        E::GRpcStatus(status) => {
            // tonic's `Code`, by name (etcd-client does not re-export tonic).
            let code = format!("{:?}", status.code());
            let message = status.message();
            if message.contains("database space exceeded") {
                // The NOSPACE alarm: writes fail until an operator compacts,
                // defragments and disarms it; reads still work.
                return Error::new(
                    ErrorKind::Unavailable,
                    "etcd's database is over its quota (NOSPACE alarm): writes fail until it is compacted, defragmented and the alarm disarmed",
                )
                .set_retryable(false);
            }
            let kind = match code.as_str() {
                // A call on a connection that drops mid-flight ends `Cancelled`.
                "Unavailable" | "DeadlineExceeded" | "Aborted" | "Cancelled" => {
                    ErrorKind::Unavailable
                }
                // tonic reports a dead connection as `Unknown: transport error`.
                _ if message.contains("transport error") => ErrorKind::Unavailable,
                "PermissionDenied" | "Unauthenticated" => ErrorKind::AccessDenied,
                _ if message.contains("request is too large") => ErrorKind::TooLarge,
                _ if message.contains("too many operations in txn") => ErrorKind::TooLarge,
                _ => ErrorKind::Other,
            };
            let retryable = kind == ErrorKind::Unavailable;
            Error::new(kind, format!("etcd: {}", status.message())).set_retryable(retryable)
        }
        E::InvalidArgs(_) | E::InvalidUri(_) => {
            Error::new(ErrorKind::InvalidConfig, "etcd client configuration").with_source(e)
        }
        _ => Error::new(ErrorKind::Other, "etcd error").with_source(e),
    }
}

/// How long the writes of an expiring bucket share one lease.
pub const LEASE_WINDOW: Duration = Duration::from_secs(1);

/// The leases of a bucket with a `ttl`: the writes of one [`LEASE_WINDOW`]
/// share a lease, granted for the ttl plus the window (rounded up to whole
/// seconds, as etcd counts), so one `LeaseGrant` serves every write of a
/// window instead of one per write. A key written at t expires between t +
/// ttl and t + ttl + the window + 1 s, plus etcd's own lateness in revoking
/// an expired lease (its leader looks every 500 ms).
pub struct Leases {
    client: LeaseClient,
    /// The lease TTL granted, in seconds.
    lease_seconds: i64,
    current: Mutex<Option<(i64, std::time::Instant)>>,
}

impl Leases {
    /// Leases for keys that live `ttl` after their last write.
    pub fn new(client: LeaseClient, ttl: Duration) -> Self {
        let span = ttl + LEASE_WINDOW;
        let seconds = span.as_secs() + u64::from(span.subsec_nanos() > 0);
        Leases {
            client,
            lease_seconds: i64::try_from(seconds).unwrap_or(i64::MAX),
            current: Mutex::new(None),
        }
    }

    /// The put options of a write now: the current window's lease, granted
    /// when the window is over.
    pub async fn put_options(&self) -> Result<PutOptions> {
        let mut current = self.current.lock().await;
        let id = match *current {
            Some((id, granted)) if granted.elapsed() < LEASE_WINDOW => id,
            _ => {
                // Granted before it is timed: the window never outlives it.
                let granted = std::time::Instant::now();
                let mut client = self.client.clone();
                let lease = client
                    .grant(self.lease_seconds, None)
                    .await
                    .map_err(map_err)?;
                *current = Some((lease.id(), granted));
                lease.id()
            }
        };
        Ok(PutOptions::new().with_lease(id))
    }

    /// Drops the current lease (etcd no longer has it: revoked by another
    /// client, or the cluster was restored); the next write gets a new one.
    pub async fn forget(&self) {
        *self.current.lock().await = None;
    }
}

/// Whether `e` says the lease a write named is gone.
pub fn is_lease_not_found(e: &Error) -> bool {
    e.to_string().contains("lease not found")
}
