//! The database file, its tables, and the native-error mapper.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use wasikv_core::{Error, ErrorKind, Result};

/// The table holding the write counter.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("wasikv:meta");
const WRITES: &str = "writes";

/// One open database file.
pub struct EmbeddedStore {
    db: Database,
    path: PathBuf,
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
        })
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

/// Takes the next version inside write transaction `txn` (persisted with it).
pub fn next_version(txn: &redb::WriteTransaction) -> std::result::Result<u64, redb::Error> {
    let mut meta = txn.open_table(META)?;
    let next = meta.get(WRITES)?.map_or(0, |v| v.value()) + 1;
    meta.insert(WRITES, next)?;
    Ok(next)
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

/// Splits a stored record into version and value.
pub fn decode_record(record: &[u8]) -> Result<(u64, &[u8])> {
    if record.len() < 8 {
        return Err(Error::new(
            ErrorKind::Other,
            "corrupt record: shorter than its version",
        ));
    }
    let (version, value) = record.split_at(8);
    Ok((
        u64::from_be_bytes(version.try_into().expect("8 bytes")),
        value,
    ))
}

/// A stored record: version then value.
pub fn encode_record(version: u64, value: &[u8]) -> Vec<u8> {
    let mut record = Vec::with_capacity(8 + value.len());
    record.extend_from_slice(&version.to_be_bytes());
    record.extend_from_slice(value);
    record
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
