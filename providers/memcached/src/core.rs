//! A small async client for memcached's text protocol, a connection pool,
//! and the one mapper from protocol errors to wasikv errors.

use std::collections::HashMap;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, Semaphore};
use wasikv_core::{Error, ErrorKind, Result};

/// Longest key memcached accepts.
pub const MAX_KEY_BYTES: usize = 250;

/// One item as read by `gets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The client flags stored with the item.
    pub flags: u32,
    /// The data.
    pub data: Vec<u8>,
    /// The CAS unique.
    pub cas: u64,
    /// The server process that gave `cas` (see [`ServerInstance`]).
    pub instance: ServerInstance,
}

/// Which run of the server a connection talks to: its pid and start time
/// (`stats`: `pid`, `time - uptime`). A restarted memcached counts CAS
/// uniques from 1 again, so a unique alone could match a new item with an
/// old handle; a `cas` is sent only on a connection to the instance that
/// gave the unique. The one window left: a restart that gets the same pid
/// within the same second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServerInstance {
    /// The server's process id.
    pub pid: u32,
    /// When it started, in seconds since the epoch.
    pub started: u32,
}

/// What a storage command did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// `STORED`.
    Stored,
    /// `NOT_STORED` (add on an existing key), `EXISTS` (stale cas) or
    /// `NOT_FOUND` (cas on a missing key).
    NotStored,
}

/// A storage command.
#[derive(Debug, Clone, Copy)]
pub enum StoreCommand {
    /// `set`.
    Set,
    /// `add` (only if absent).
    Add,
    /// `cas` with the unique read by `gets` from `instance`; on another
    /// instance (the server restarted) it is not sent and is `NotStored`.
    Cas {
        /// The CAS unique.
        unique: u64,
        /// The server instance that gave it.
        instance: ServerInstance,
    },
}

/// A pooled connection and the server instance it talks to.
struct Conn {
    io: BufStream<TcpStream>,
    instance: ServerInstance,
}

/// A pool of connections to one server.
pub struct MemcachedStore {
    address: String,
    idle: Mutex<Vec<Conn>>,
    permits: Semaphore,
    timeout: Duration,
}

impl std::fmt::Debug for MemcachedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemcachedStore")
            .field("address", &self.address)
            .finish()
    }
}

fn unavailable(what: &str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::new(ErrorKind::Unavailable, format!("memcached {what}")).with_source(e)
}

fn protocol(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Other, message)
}

/// The one mapper from a memcached error line to a wasikv error.
pub fn map_error_line(line: &str) -> Error {
    let line = line.trim_end();
    if line.contains("too large") {
        Error::new(
            ErrorKind::TooLarge,
            format!("memcached refused the item: {line}"),
        )
    } else if line.starts_with("SERVER_ERROR out of memory") {
        Error::new(ErrorKind::Unavailable, format!("memcached: {line}"))
    } else if line.starts_with("CLIENT_ERROR") && line.contains("key") {
        Error::new(ErrorKind::InvalidKey, format!("memcached: {line}"))
    } else {
        protocol(format!("memcached: {line}"))
    }
}

impl MemcachedStore {
    /// Connects once to check the server answers, and keeps that connection.
    pub async fn connect(address: &str, pool_size: usize, timeout: Duration) -> Result<Self> {
        let store = MemcachedStore {
            address: address.to_string(),
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(pool_size.max(1)),
            timeout,
        };
        let conn = store.open().await?;
        store.idle.lock().await.push(conn);
        Ok(store)
    }

    async fn open(&self) -> Result<Conn> {
        let stream = tokio::time::timeout(self.timeout, TcpStream::connect(&self.address))
            .await
            .map_err(|_| {
                Error::new(
                    ErrorKind::Unavailable,
                    format!("memcached connect timed out after {:?}", self.timeout),
                )
            })?
            .map_err(|e| unavailable("is unreachable", e))?;
        stream
            .set_nodelay(true)
            .map_err(|e| unavailable("socket", e))?;
        let mut conn = Conn {
            io: BufStream::new(stream),
            instance: ServerInstance { pid: 0, started: 0 },
        };
        conn.instance = tokio::time::timeout(self.timeout, server_instance(&mut conn))
            .await
            .map_err(|_| {
                Error::new(
                    ErrorKind::Unavailable,
                    format!("memcached did not answer stats within {:?}", self.timeout),
                )
            })??;
        Ok(conn)
    }

    /// Runs `f` on a pooled connection. A connection that saw an error is
    /// dropped (its stream may hold half a reply), a good one goes back.
    async fn with_conn<T>(&self, f: impl AsyncFnOnce(&mut Conn) -> Result<T>) -> Result<T> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| unavailable("pool closed", e))?;
        let pooled = self.idle.lock().await.pop();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => self.open().await?,
        };
        match tokio::time::timeout(self.timeout, f(&mut conn)).await {
            Ok(Ok(value)) => {
                self.idle.lock().await.push(conn);
                Ok(value)
            }
            Ok(Err(e)) => {
                // Server-side refusals leave the stream in sync; keep those.
                if matches!(e.kind(), ErrorKind::TooLarge | ErrorKind::InvalidKey) {
                    self.idle.lock().await.push(conn);
                }
                Err(e)
            }
            Err(_) => Err(Error::new(
                ErrorKind::Unavailable,
                format!("memcached did not answer within {:?}", self.timeout),
            )),
        }
    }

    /// `gets` of `keys` (one round trip): the items found, by key.
    pub async fn gets(&self, keys: &[String]) -> Result<HashMap<String, Item>> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        self.with_conn(async |c| {
            let mut line = Vec::with_capacity(8 + keys.iter().map(|k| k.len() + 1).sum::<usize>());
            line.extend_from_slice(b"gets");
            for key in keys {
                line.push(b' ');
                line.extend_from_slice(key.as_bytes());
            }
            line.extend_from_slice(b"\r\n");
            write_all(c, &line).await?;
            let mut items = HashMap::new();
            loop {
                let header = read_line(c).await?;
                if header == "END" {
                    return Ok(items);
                }
                let mut parts = header.split(' ');
                let (Some("VALUE"), Some(key), Some(flags), Some(len), Some(cas)) = (
                    parts.next(),
                    parts.next(),
                    parts.next(),
                    parts.next(),
                    parts.next(),
                ) else {
                    return Err(map_error_line(&header));
                };
                let flags: u32 = flags.parse().map_err(|_| protocol("bad flags in VALUE"))?;
                let len: usize = len.parse().map_err(|_| protocol("bad length in VALUE"))?;
                let cas: u64 = cas.parse().map_err(|_| protocol("bad cas in VALUE"))?;
                let mut data = vec![0u8; len + 2];
                c.io.read_exact(&mut data)
                    .await
                    .map_err(|e| unavailable("read", e))?;
                if !data.ends_with(b"\r\n") {
                    return Err(protocol("memcached: value not followed by CRLF"));
                }
                data.truncate(len);
                items.insert(
                    key.to_string(),
                    Item {
                        flags,
                        data,
                        cas,
                        instance: c.instance,
                    },
                );
            }
        })
        .await
    }

    /// Whether `key` exists (meta get without flags: `HD` or `EN`).
    pub async fn exists(&self, key: &str) -> Result<bool> {
        self.with_conn(async |c| {
            write_all(c, format!("mg {key}\r\n").as_bytes()).await?;
            let reply = read_line(c).await?;
            match reply.as_str() {
                "HD" => Ok(true),
                "EN" => Ok(false),
                other => Err(map_error_line(other)),
            }
        })
        .await
    }

    /// One storage command; `exptime` as memcached takes it (0: never).
    pub async fn store(
        &self,
        command: StoreCommand,
        key: &str,
        flags: u32,
        data: &[u8],
        exptime: u32,
    ) -> Result<Stored> {
        let mut replies = self
            .store_many(&[(command, key, flags, data)], exptime)
            .await?;
        replies
            .pop()
            .ok_or_else(|| protocol("memcached: no reply"))?
    }

    /// Storage commands pipelined on one connection (one round trip), each
    /// with `exptime`; one outcome per command, in order.
    pub async fn store_many(
        &self,
        commands: &[(StoreCommand, &str, u32, &[u8])],
        exptime: u32,
    ) -> Result<Vec<Result<Stored>>> {
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        self.with_conn(async |c| {
            let mut out = Vec::new();
            // Commands not sent: a `cas` with a unique from another server
            // instance, which cannot be current.
            let mut stale = vec![false; commands.len()];
            for (i, (command, key, flags, data)) in commands.iter().enumerate() {
                let head = match command {
                    StoreCommand::Set => {
                        format!("set {key} {flags} {exptime} {}\r\n", data.len())
                    }
                    StoreCommand::Add => {
                        format!("add {key} {flags} {exptime} {}\r\n", data.len())
                    }
                    StoreCommand::Cas { unique, instance } if *instance == c.instance => {
                        format!("cas {key} {flags} {exptime} {} {unique}\r\n", data.len())
                    }
                    StoreCommand::Cas { .. } => {
                        stale[i] = true;
                        continue;
                    }
                };
                out.extend_from_slice(head.as_bytes());
                out.extend_from_slice(data);
                out.extend_from_slice(b"\r\n");
            }
            if !out.is_empty() {
                write_all(c, &out).await?;
            }
            let mut replies = Vec::with_capacity(commands.len());
            for stale in stale {
                if stale {
                    replies.push(Ok(Stored::NotStored));
                    continue;
                }
                let reply = read_line(c).await?;
                replies.push(match reply.as_str() {
                    "STORED" => Ok(Stored::Stored),
                    "NOT_STORED" | "EXISTS" | "NOT_FOUND" => Ok(Stored::NotStored),
                    other => Err(map_error_line(other)),
                });
            }
            // An unexpected reply (not a refusal of one item) may leave the
            // stream out of sync: fail the call so the connection is dropped.
            let unexpected = replies
                .iter()
                .position(|r| r.as_ref().is_err_and(|e| e.kind() == ErrorKind::Other));
            if let Some(i) = unexpected {
                return Err(replies.swap_remove(i).expect_err("an error reply"));
            }
            Ok(replies)
        })
        .await
    }

    /// Deletes `keys`, pipelined on one connection.
    pub async fn delete_many(&self, keys: &[String]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        self.with_conn(async |c| {
            let mut out = Vec::new();
            for key in keys {
                out.extend_from_slice(format!("delete {key}\r\n").as_bytes());
            }
            write_all(c, &out).await?;
            for _ in keys {
                let reply = read_line(c).await?;
                if reply != "DELETED" && reply != "NOT_FOUND" {
                    return Err(map_error_line(&reply));
                }
            }
            Ok(())
        })
        .await
    }
}

async fn write_all(c: &mut Conn, bytes: &[u8]) -> Result<()> {
    c.io.write_all(bytes)
        .await
        .map_err(|e| unavailable("write", e))?;
    c.io.flush().await.map_err(|e| unavailable("write", e))
}

/// The server instance behind a new connection, from `stats`.
async fn server_instance(c: &mut Conn) -> Result<ServerInstance> {
    write_all(c, b"stats\r\n").await?;
    let (mut pid, mut time, mut uptime) = (None, None, None);
    loop {
        let line = read_line(c).await?;
        if line == "END" {
            break;
        }
        let mut parts = line.split(' ');
        let (Some("STAT"), Some(name), Some(value)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(map_error_line(&line));
        };
        let value = value.parse::<u64>().ok();
        match name {
            "pid" => pid = value,
            "time" => time = value,
            "uptime" => uptime = value,
            _ => {}
        }
    }
    match (pid, time, uptime) {
        (Some(pid), Some(time), Some(uptime)) => Ok(ServerInstance {
            pid: pid as u32,
            started: time.saturating_sub(uptime) as u32,
        }),
        _ => Err(protocol(
            "memcached: stats did not give pid, time and uptime",
        )),
    }
}

/// One reply line without its CRLF.
async fn read_line(c: &mut Conn) -> Result<String> {
    let mut line = Vec::new();
    let n =
        c.io.read_until(b'\n', &mut line)
            .await
            .map_err(|e| unavailable("read", e))?;
    if n == 0 {
        return Err(Error::new(
            ErrorKind::Unavailable,
            "memcached closed the connection",
        ));
    }
    if line.ends_with(b"\r\n") {
        line.truncate(line.len() - 2);
    }
    String::from_utf8(line).map_err(|_| protocol("memcached: a reply line is not UTF-8"))
}

/// Longest relative `exptime` memcached takes; longer ones are Unix times.
const MAX_RELATIVE_EXPTIME: u64 = 30 * 24 * 3600;

/// The `exptime` of a write that must live `ttl` (0: no ttl, never expires).
/// Memcached counts whole seconds on a clock that ticks once a second, so an
/// item stored with `exptime = n` can expire up to a second before n seconds
/// have passed: the ttl is rounded up and one second added, so a key never
/// expires early and at most ~2 s late.
pub fn exptime(ttl: Option<Duration>) -> u32 {
    let Some(ttl) = ttl else { return 0 };
    let seconds = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0) + 1;
    let exptime = if seconds <= MAX_RELATIVE_EXPTIME {
        seconds
    } else {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        now + seconds
    };
    u32::try_from(exptime).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod expiry_tests {
    use super::*;

    #[test]
    fn exptime_never_lets_a_key_expire_early() {
        assert_eq!(exptime(None), 0);
        assert_eq!(exptime(Some(Duration::from_secs(1))), 2);
        assert_eq!(exptime(Some(Duration::from_millis(1500))), 3);
        assert_eq!(exptime(Some(Duration::from_secs(3600))), 3601);
        // Past 30 days memcached reads a Unix time.
        let month = exptime(Some(Duration::from_secs(31 * 24 * 3600)));
        assert!(u64::from(month) > 1_700_000_000, "{month}");
    }
}
