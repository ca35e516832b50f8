//! The database file, its tables, and the native-error mapper.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use tokio::sync::oneshot;
use wasikv_core::{Error, ErrorKind, Result};

/// The table holding the write counter.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("wasikv:meta");
const WRITES: &str = "writes";

/// Most writes one group commit takes; later arrivals wait for the next.
pub const MAX_GROUP_WRITES: usize = 256;

/// Longest a committer waits for the writers of its last group to write
/// again before it commits what it has (see [`EmbeddedStore::write`]).
pub const MAX_GATHER: Duration = Duration::from_millis(1);

/// One open database file.
pub struct EmbeddedStore {
    db: Database,
    path: PathBuf,
    queue: Mutex<Queue>,
    /// Signalled when a write is queued, for a committer gathering a group.
    arrived: Condvar,
    commits: AtomicU64,
    committed_writes: AtomicU64,
    waiting: AtomicU64,
}

/// Writes waiting for the next commit, and whether a committer is running.
#[derive(Default)]
struct Queue {
    writes: Vec<Box<dyn PendingWrite>>,
    committing: bool,
}

/// The work of one write inside a (possibly shared) write transaction.
///
/// The closure returns `Err` for a storage failure, which aborts the whole
/// transaction, and `Ok(Err(_))` for the write's own refusal (a bad counter,
/// a value over a limit), which it must return before it changes anything:
/// the other writes of its group still commit.
pub type WriteResult<T> = std::result::Result<Result<T>, redb::Error>;

trait PendingWrite: Send {
    /// Applies the write to `txn`, keeping its outcome for [`Self::reply`].
    fn apply(
        &mut self,
        txn: &WriteTransaction,
        versions: &mut Versions,
    ) -> std::result::Result<(), redb::Error>;
    /// Sends the kept outcome, or `failure`, to the waiting caller.
    fn reply(self: Box<Self>, failure: Option<Error>);
}

struct Write<T, F> {
    work: F,
    outcome: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> PendingWrite for Write<T, F>
where
    T: Send,
    F: FnMut(&WriteTransaction, &mut Versions) -> WriteResult<T> + Send,
{
    fn apply(
        &mut self,
        txn: &WriteTransaction,
        versions: &mut Versions,
    ) -> std::result::Result<(), redb::Error> {
        self.outcome = Some((self.work)(txn, versions)?);
        Ok(())
    }

    fn reply(self: Box<Self>, failure: Option<Error>) {
        let outcome = match (failure, self.outcome) {
            (Some(e), _) => Err(e),
            (None, Some(outcome)) => outcome,
            (None, None) => Err(Error::new(
                ErrorKind::Other,
                "embedded write was not applied",
            )),
        };
        // The caller may have stopped waiting (a timeout); the write stands.
        let _ = self.reply.send(outcome);
    }
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.path)
            .finish()
    }
}

impl EmbeddedStore {
    /// Opens (creating if needed) the file at `path`, creating parent directories.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                Error::new(
                    ErrorKind::Unavailable,
                    format!("cannot create directory {}", parent.display()),
                )
                .with_source(e)
            })?;
        }
        let db = Database::create(path).map_err(|e| map_err(path, e))?;
        Ok(EmbeddedStore {
            db,
            path: path.to_path_buf(),
            queue: Mutex::default(),
            arrived: Condvar::new(),
            commits: AtomicU64::new(0),
            committed_writes: AtomicU64::new(0),
            waiting: AtomicU64::new(0),
        })
    }

    /// Runs `work` in a durable write transaction and returns its outcome
    /// once that transaction is on disk.
    ///
    /// **Group commit**: writes that arrive while a commit is in flight wait
    /// and then share the next transaction (at most [`MAX_GROUP_WRITES`]),
    /// applied one after another in arrival order, so N concurrent writers
    /// pay about one fsync per round instead of N. When fewer writes are
    /// queued than the last group held, the committer first waits up to a
    /// quarter of the last commit's duration (at most [`MAX_GATHER`]) for
    /// the last group's writers to write again: without it, writers that
    /// were acknowledged together come back a few microseconds apart and
    /// split into alternating small groups. Each is acknowledged only
    /// after the commit that holds it succeeded. If a group fails (a storage
    /// error in one write, or the commit), nothing of it was written and each
    /// of its writes is retried in a transaction of its own, so one bad write
    /// does not fail its neighbours. `work` may therefore run more than once,
    /// always against a fresh transaction.
    pub async fn write<T, F>(self: &Arc<Self>, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&WriteTransaction, &mut Versions) -> WriteResult<T> + Send + 'static,
    {
        let (reply, outcome) = oneshot::channel();
        let lead = {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.writes.push(Box::new(Write {
                work,
                outcome: None,
                reply,
            }));
            self.waiting.fetch_add(1, Ordering::Relaxed);
            !std::mem::replace(&mut queue.committing, true)
        };
        self.arrived.notify_one();
        if lead {
            let store = self.clone();
            tokio::task::spawn_blocking(move || Self::commit_queued(store));
        }
        let outcome = outcome.await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        outcome.map_err(|_| {
            Error::new(
                ErrorKind::Other,
                format!(
                    "the commit of a write to {} stopped before it finished (it may or may not have been written)",
                    self.path.display()
                ),
            )
        })?
    }

    /// Durable commits made so far by [`Self::write`] (a group counts once).
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Writes acknowledged so far by [`Self::write`].
    pub fn committed_writes(&self) -> u64 {
        self.committed_writes.load(Ordering::Relaxed)
    }

    /// Writes submitted to [`Self::write`] and not yet answered: queued or
    /// in the commit in flight.
    pub fn waiting_writes(&self) -> u64 {
        self.waiting.load(Ordering::Relaxed)
    }

    /// The committer, on a blocking thread: commits queued groups until the
    /// queue is empty. It lets go of the store before it answers its last
    /// group, so that a caller who drops the store once its write is
    /// answered closes the file (another process can open it right away).
    fn commit_queued(store: Arc<Self>) {
        /// Hands the committer's role back if a write's work panics, so
        /// later writes start a new committer instead of waiting forever
        /// (the panicking group's callers get an error: their replies drop).
        struct Release(Weak<EmbeddedStore>);
        impl Drop for Release {
            fn drop(&mut self) {
                if let (true, Some(store)) = (std::thread::panicking(), self.0.upgrade()) {
                    store
                        .queue
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .committing = false;
                }
            }
        }
        let _release = Release(Arc::downgrade(&store));
        let (mut last_group, mut last_commit) = (0, Duration::ZERO);
        while let Some(group) = store.next_group(last_group, last_commit) {
            last_group = group.len();
            let started = Instant::now();
            let answers = store.commit_group(group);
            last_commit = started.elapsed();
            let last = {
                let mut queue = store.queue.lock().unwrap_or_else(PoisonError::into_inner);
                let empty = queue.writes.is_empty();
                if empty {
                    queue.committing = false;
                }
                empty
            };
            if last {
                drop(store);
                for (write, failure) in answers {
                    write.reply(failure);
                }
                return;
            }
            for (write, failure) in answers {
                write.reply(failure);
            }
        }
    }

    /// The next group, `None` (and the committer's role given back) when
    /// nothing is queued. When fewer writes are queued than `last_group`,
    /// waits up to a quarter of `last_commit` (at most [`MAX_GATHER`]) for
    /// the last group's writers to write again.
    fn next_group(
        &self,
        last_group: usize,
        last_commit: Duration,
    ) -> Option<Vec<Box<dyn PendingWrite>>> {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if queue.writes.is_empty() {
            queue.committing = false;
            return None;
        }
        let deadline = Instant::now() + (last_commit / 4).min(MAX_GATHER);
        while queue.writes.len() < last_group {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            queue = self
                .arrived
                .wait_timeout(queue, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        let n = queue.writes.len().min(MAX_GROUP_WRITES);
        Some(queue.writes.drain(..n).collect())
    }

    /// Commits `group`; each write with its failure, if any.
    fn commit_group(
        &self,
        mut group: Vec<Box<dyn PendingWrite>>,
    ) -> Vec<(Box<dyn PendingWrite>, Option<Error>)> {
        match self.commit(&mut group) {
            Ok(()) => group.into_iter().map(|write| (write, None)).collect(),
            Err(e) if group.len() == 1 => {
                let write = group.pop().expect("one write");
                vec![(write, Some(self.err(e)))]
            }
            Err(_) => group
                .into_iter()
                .map(|write| {
                    let mut alone = vec![write];
                    let failure = self.commit(&mut alone).err().map(|e| self.err(e));
                    (alone.pop().expect("one write"), failure)
                })
                .collect(),
        }
    }

    /// Applies `group` in one transaction and commits it durably.
    fn commit(&self, group: &mut [Box<dyn PendingWrite>]) -> std::result::Result<(), redb::Error> {
        let txn = self.db.begin_write()?;
        let mut versions = Versions::read(&txn)?;
        for write in group.iter_mut() {
            write.apply(&txn, &mut versions)?;
        }
        versions.store(&txn)?;
        txn.commit()?;
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.committed_writes
            .fetch_add(group.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// The database.
    pub fn db(&self) -> &Database {
        &self.db
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Maps a redb error on this file.
    pub fn err(&self, e: impl Into<redb::Error>) -> Error {
        map_err(&self.path, e)
    }
}

/// The write counter inside one write transaction: read once, bumped by
/// each write of the group, stored once before the commit (so a version is
/// never reused: the counter commits with the writes that used it).
#[derive(Debug)]
pub struct Versions {
    read: u64,
    next: u64,
}

impl Versions {
    fn read(txn: &WriteTransaction) -> std::result::Result<Self, redb::Error> {
        let meta = txn.open_table(META)?;
        let current = meta.get(WRITES)?.map_or(0, |v| v.value());
        Ok(Versions {
            read: current,
            next: current,
        })
    }

    /// Takes the next version.
    pub fn take(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    fn store(&self, txn: &WriteTransaction) -> std::result::Result<(), redb::Error> {
        if self.next != self.read {
            txn.open_table(META)?.insert(WRITES, self.next)?;
        }
        Ok(())
    }
}

/// Whether a read found the table missing (an empty bucket).
pub fn is_missing_table(e: &redb::TableError) -> bool {
    matches!(e, redb::TableError::TableDoesNotExist(_))
}

/// Opens a read transaction.
pub fn read_txn(store: &EmbeddedStore) -> Result<redb::ReadTransaction> {
    store.db.begin_read().map_err(|e| store.err(e))
}

/// The one mapper from redb errors to wasikv errors.
pub fn map_err(path: &Path, e: impl Into<redb::Error>) -> Error {
    let e: redb::Error = e.into();
    let file = path.display();
    match e {
        redb::Error::DatabaseAlreadyOpen => Error::new(
            ErrorKind::Unavailable,
            format!("the embedded store file {file} is open in another process"),
        ),
        redb::Error::Io(io) => {
            Error::new(ErrorKind::Unavailable, format!("I/O error on {file}")).with_source(io)
        }
        redb::Error::ValueTooLarge(size) => Error::new(
            ErrorKind::TooLarge,
            format!("value of {size} bytes is over redb's limit in {file}"),
        ),
        other => Error::new(ErrorKind::Other, format!("embedded store {file}")).with_source(other),
    }
}

/// Bit 63 of a stored version: an expiry time follows it. The write counter
/// never reaches it.
const EXPIRES_FLAG: u64 = 1 << 63;

/// A stored record: its version, its expiry (a bucket with a `ttl`) and its
/// value. Stored as the version (8 bytes, big-endian; bit 63 set when an
/// expiry follows), the expiry in milliseconds since the Unix epoch (8
/// bytes, only with the flag) and the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// The write's version.
    pub version: u64,
    /// When the record expires, in milliseconds since the Unix epoch.
    pub expires_ms: Option<u64>,
    /// The bytes.
    pub value: &'a [u8],
}

impl<'a> Record<'a> {
    /// Splits stored bytes into a record.
    pub fn decode(stored: &'a [u8]) -> Result<Self> {
        let corrupt = || Error::new(ErrorKind::Other, "corrupt record: shorter than its header");
        let (version, rest) = stored.split_first_chunk::<8>().ok_or_else(corrupt)?;
        let version = u64::from_be_bytes(*version);
        if version & EXPIRES_FLAG == 0 {
            return Ok(Record {
                version,
                expires_ms: None,
                value: rest,
            });
        }
        let (expires, value) = rest.split_first_chunk::<8>().ok_or_else(corrupt)?;
        Ok(Record {
            version: version & !EXPIRES_FLAG,
            expires_ms: Some(u64::from_be_bytes(*expires)),
            value,
        })
    }

    /// The stored bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut stored = Vec::with_capacity(16 + self.value.len());
        match self.expires_ms {
            None => stored.extend_from_slice(&self.version.to_be_bytes()),
            Some(at) => {
                stored.extend_from_slice(&(self.version | EXPIRES_FLAG).to_be_bytes());
                stored.extend_from_slice(&at.to_be_bytes());
            }
        }
        stored.extend_from_slice(self.value);
        stored
    }

    /// Whether the record has not expired at `now_ms`.
    pub fn is_live(&self, now_ms: u64) -> bool {
        !wasikv_core::expiry::has_expired(self.expires_ms, now_ms)
    }
}

/// Runs a blocking closure off the async executor.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::new(ErrorKind::Other, format!("embedded store task failed: {e}")))?
}

#[allow(unused_imports)]
use ReadableTable as _;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_roundtrip_with_and_without_expiry() {
        for record in [
            Record {
                version: 7,
                expires_ms: None,
                value: b"",
            },
            Record {
                version: (1 << 62) + 3,
                expires_ms: None,
                value: b"abc",
            },
            Record {
                version: 9,
                expires_ms: Some(1_700_000_000_000),
                value: b"xyz",
            },
            Record {
                version: 1,
                expires_ms: Some(0),
                value: &[0xff; 20],
            },
        ] {
            assert_eq!(Record::decode(&record.encode()).unwrap(), record);
        }
        // Records written before expiry existed decode unchanged.
        let mut old = 5u64.to_be_bytes().to_vec();
        old.extend_from_slice(b"value");
        assert_eq!(
            Record::decode(&old).unwrap(),
            Record {
                version: 5,
                expires_ms: None,
                value: b"value"
            }
        );
        assert!(Record::decode(&[0; 7]).is_err());
        assert!(
            Record::decode(&(1u64 << 63).to_be_bytes()).is_err(),
            "flag without expiry"
        );
        let expiring = Record {
            version: 1,
            expires_ms: Some(1000),
            value: b"",
        };
        assert!(expiring.is_live(999) && !expiring.is_live(1000));
    }
}
