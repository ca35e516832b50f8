//! The connection pool, TLS, the table's SQL and the one mapper from
//! PostgreSQL errors to wasikv errors.
//!
//! Every statement takes keys and values as parameters; the only text put
//! into SQL is the table name, which [`TableName`] restricts to identifier
//! characters and quotes.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use wasikv_core::{Error, ErrorKind, Result};

use crate::config::{PostgresConfig, TableName};

/// Longest stored key (bucket prefix + key) in bytes: a B-tree index entry
/// holds at most 2,704 bytes on 8 KiB pages, less the tuple's own header.
pub const MAX_STORED_KEY_BYTES: usize = 2_640;

/// One pool of connections to a server, shared by the buckets on it.
#[derive(Clone)]
pub struct PostgresStore {
    /// The pool.
    pub pool: Pool,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("pool", &self.pool.status())
            .finish()
    }
}

impl PostgresStore {
    /// A pool for `config` (connections are made when first needed; one is
    /// made now, so a wrong url or password fails here).
    pub async fn connect(config: &PostgresConfig) -> Result<Self> {
        let client_config = config.client_config()?;
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = if config.tls()? {
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(config)?);
            Manager::from_config(client_config, tls, manager_config)
        } else {
            Manager::from_config(client_config, tokio_postgres::NoTls, manager_config)
        };
        let wait = Duration::from_millis(config.connect_timeout_ms);
        let pool = Pool::builder(manager)
            .max_size(config.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(wait))
            .create_timeout(Some(wait))
            .build()
            .map_err(|e| {
                Error::new(ErrorKind::InvalidConfig, "cannot build the connection pool")
                    .with_source(e)
            })?;
        let store = PostgresStore { pool };
        drop(store.client().await?);
        Ok(store)
    }

    /// A connection from the pool.
    pub async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(map_pool_err)
    }
}

/// rustls settings: the system's roots, or only `ca_file`'s.
fn tls_config(config: &PostgresConfig) -> Result<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match &config.ca_file {
        Some(path) => {
            let unreadable = |e: &dyn std::fmt::Display| {
                Error::new(
                    ErrorKind::InvalidConfig,
                    format!("cannot read ca_file {}: {e}", path.display()),
                )
            };
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| unreadable(&e))? {
                roots
                    .add(cert.map_err(|e| unreadable(&e))?)
                    .map_err(|e| unreadable(&e))?;
            }
            if roots.is_empty() {
                return Err(unreadable(&"no certificate in it"));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // A system root rustls cannot parse is skipped, as browsers do.
                let _ = roots.add(cert);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new(ErrorKind::InvalidConfig, format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The statements of one table, made once per bucket (prepared once per
/// connection by the pool's statement cache).
#[derive(Debug, Clone)]
pub struct Statements {
    /// `$1` key -> value.
    pub get: String,
    /// `$1` key -> value, version.
    pub get_versioned: String,
    /// `$1` key -> one row if present.
    pub exists: String,
    /// `$1` key, `$2` value, `$3` version: insert or replace.
    pub upsert: String,
    /// `$1` key, `$2` value, `$3` version: insert if absent (1 row written).
    pub insert_if_absent: String,
    /// `$1` key, `$2` value, `$3` version, `$4` expected version (1 row written).
    pub update_if_version: String,
    /// `$1` key.
    pub delete: String,
    /// `$1` key, `$2` delta, `$3` version -> the new value, or no row when
    /// the stored value is not `-?[0-9]+` (nothing written).
    pub increment: String,
    /// `$1` keys -> (key, value) of those present.
    pub get_many: String,
    /// `$1` keys, `$2` byte budget -> (position from 1, value, total bytes)
    /// of each requested position present; the values are left out (NULL)
    /// when their total is over the budget, which the server sums first.
    pub get_many_within: String,
    /// `$1` keys, `$2` values, `$3` versions.
    pub set_many: String,
    /// `$1` keys.
    pub delete_many: String,
    /// `$1` first key (inclusive), `$2` end (exclusive), `$3` limit -> keys in order.
    pub list_bounded: String,
    /// `$1` first key (inclusive), `$2` limit -> keys in order (a bucket that is the whole table).
    pub list_to_end: String,
}

impl Statements {
    /// The statements on `table`.
    pub fn new(table: &TableName) -> Self {
        let t = table.sql();
        Statements {
            get: format!("SELECT value FROM {t} WHERE key = $1"),
            get_versioned: format!("SELECT value, version FROM {t} WHERE key = $1"),
            exists: format!("SELECT 1 FROM {t} WHERE key = $1"),
            upsert: format!(
                "INSERT INTO {t} (key, value, version) VALUES ($1, $2, $3) \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, version = EXCLUDED.version"
            ),
            insert_if_absent: format!(
                "INSERT INTO {t} (key, value, version) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING"
            ),
            update_if_version: format!(
                "UPDATE {t} SET value = $2, version = $3 WHERE key = $1 AND version = $4"
            ),
            delete: format!("DELETE FROM {t} WHERE key = $1"),
            // The counter rules in one statement: a missing key becomes the
            // delta; a stored value counts only if its bytes are `-?[0-9]+`
            // (`encode(.., 'escape')` keeps ASCII digits and '-' and escapes
            // every other byte, so no other value matches); int8 parsing and
            // addition raise 22003 when out of range, which aborts the
            // statement with nothing written.
            increment: format!(
                "INSERT INTO {t} AS row (key, value, version) \
                 VALUES ($1, convert_to(($2::int8)::text, 'UTF8'), $3) \
                 ON CONFLICT (key) DO UPDATE \
                 SET value = convert_to((encode(row.value, 'escape')::int8 + $2::int8)::text, 'UTF8'), \
                     version = EXCLUDED.version \
                 WHERE encode(row.value, 'escape') ~ '^-?[0-9]+$' \
                 RETURNING value"
            ),
            get_many: format!("SELECT key, value FROM {t} WHERE key = ANY($1)"),
            // `octet_length` of a stored value reads its size, not the
            // value; repeated keys count once per position, as returned.
            get_many_within: format!(
                "WITH wanted AS (SELECT k, i FROM unnest($1::bytea[]) WITH ORDINALITY AS w(k, i)), \
                 found AS (SELECT wanted.i, t.value FROM wanted JOIN {t} t ON t.key = wanted.k), \
                 total AS (SELECT coalesce(sum(octet_length(value)), 0)::int8 AS n FROM found) \
                 SELECT found.i, CASE WHEN total.n <= $2 THEN found.value END, total.n \
                 FROM found, total"
            ),
            set_many: format!(
                "INSERT INTO {t} (key, value, version) \
                 SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bytea[]) \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, version = EXCLUDED.version"
            ),
            delete_many: format!("DELETE FROM {t} WHERE key = ANY($1)"),
            list_bounded: format!(
                "SELECT key FROM {t} WHERE key >= $1 AND key < $2 ORDER BY key LIMIT $3"
            ),
            list_to_end: format!("SELECT key FROM {t} WHERE key >= $1 ORDER BY key LIMIT $2"),
        }
    }

    /// Every statement, to prepare when a bucket opens (a table whose
    /// columns differ fails there, not on a guest's first call).
    pub fn all(&self) -> [&str; 14] {
        [
            &self.get,
            &self.get_versioned,
            &self.exists,
            &self.upsert,
            &self.insert_if_absent,
            &self.update_if_version,
            &self.delete,
            &self.increment,
            &self.get_many,
            &self.get_many_within,
            &self.set_many,
            &self.delete_many,
            &self.list_bounded,
            &self.list_to_end,
        ]
    }
}

/// The table's definition (`create = true` runs it, in one transaction;
/// docs show it). Other clients may write the table too: an insert without
/// a version gets a fresh one (the default), and an update that leaves the
/// version as it was gets a fresh one from the trigger, so a pending CAS
/// sees every write, whoever made it. wasikv's own writes always set a new
/// version, so the trigger's `WHEN` is false for them and no function runs.
pub fn create_table_sql(table: &TableName) -> String {
    let t = table.sql();
    let function = match &table.schema {
        Some(schema) => format!("\"{schema}\".\"{}_new_version\"", table.name),
        None => format!("\"{}_new_version\"", table.name),
    };
    let trigger = format!("\"{}_new_version\"", table.name);
    // Hosts creating the table at once take turns (the lock ends with the
    // transaction); the name is an identifier, safe in a string literal.
    format!(
        "BEGIN;\n\
         SELECT pg_advisory_xact_lock(hashtext('wasikv create {table}'));\n\
         CREATE TABLE IF NOT EXISTS {t} (\n    \
         key     bytea PRIMARY KEY,  -- bucket prefix || UTF-8 key\n    \
         value   bytea NOT NULL,\n    \
         version bytea NOT NULL DEFAULT uuid_send(gen_random_uuid())  -- new on every write\n\
         );\n\
         CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$\n\
         BEGIN NEW.version := uuid_send(gen_random_uuid()); RETURN NEW; END $$;\n\
         CREATE OR REPLACE TRIGGER {trigger} BEFORE UPDATE ON {t} FOR EACH ROW\n    \
         WHEN (NEW.version = OLD.version) EXECUTE FUNCTION {function}();\n\
         COMMIT;"
    )
}

/// Makes sure `table` exists: creates it (and its schema) when `create`,
/// else fails naming what to do.
pub async fn ensure_table(store: &PostgresStore, table: &TableName, create: bool) -> Result<()> {
    let client = store.client().await?;
    let name = table.sql();
    let exists = async |client: &deadpool_postgres::Object| -> Result<bool> {
        let row = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
            .await
            .map_err(map_err)?;
        Ok(row.get(0))
    };
    if exists(&client).await? {
        return Ok(());
    }
    if !create {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            format!(
                "table {table} does not exist: create it (docs/providers/postgres.md has the schema) or set create = true"
            ),
        ));
    }
    if let Some(schema) = &table.schema {
        let sql = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
        if let Err(e) = client.batch_execute(&sql).await {
            // Two hosts creating it at once: one wins, the other sees a
            // unique violation; either way it exists now.
            if e.code() != Some(&SqlState::UNIQUE_VIOLATION) {
                return Err(map_err(e));
            }
        }
    }
    match client.batch_execute(&create_table_sql(table)).await {
        Ok(()) => Ok(()),
        Err(e) => {
            // The failed transaction is still open on this connection.
            let _ = client.batch_execute("ROLLBACK").await;
            if e.code() == Some(&SqlState::UNIQUE_VIOLATION) && exists(&client).await? {
                Ok(())
            } else {
                Err(map_err(e))
            }
        }
    }
}

/// The one mapper from PostgreSQL errors to wasikv errors.
pub fn map_err(e: tokio_postgres::Error) -> Error {
    let Some(db) = e.as_db_error() else {
        // No server error: the connection failed or closed, or a timeout.
        // tokio-postgres's message leaves out its cause ("error connecting
        // to server"): the chain says what happened ("Connection refused").
        let mut text = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            text.push_str(": ");
            text.push_str(&c.to_string());
            cause = c.source();
        }
        let what = if e.is_closed() {
            "the connection to PostgreSQL closed"
        } else {
            "cannot reach PostgreSQL"
        };
        return Error::new(ErrorKind::Unavailable, format!("{what}: {text}"));
    };
    let code = db.code().code();
    let message = format!("postgres: {} (SQLSTATE {code})", db.message());
    let (kind, retryable) = match code {
        // Statement timeout, serialization or deadlock, server shutting
        // down or starting, too many connections, connection exceptions.
        "57014" | "40001" | "40P01" | "57P01" | "57P02" | "57P03" | "53300" => {
            (ErrorKind::Unavailable, true)
        }
        c if c.starts_with("08") => (ErrorKind::Unavailable, true),
        // A read-only server (a standby, or default_transaction_read_only).
        "25006" => (ErrorKind::Unavailable, false),
        c if c.starts_with("28") || c == "42501" => (ErrorKind::AccessDenied, false),
        // A counter or its sum outside int8.
        "22003" => (ErrorKind::InvalidValue, false),
        // Index row or field too large; out of memory or disk.
        "54000" | "54001" => (ErrorKind::TooLarge, false),
        "53100" | "53200" => (ErrorKind::Unavailable, false),
        "42P01" | "42703" => (ErrorKind::InvalidConfig, false),
        _ => (ErrorKind::Other, false),
    };
    Error::new(kind, message)
        .set_retryable(retryable)
        .with_source(e)
}

/// A pool error as a wasikv error (a backend error through [`map_err`]).
pub fn map_pool_err(e: PoolError) -> Error {
    match e {
        PoolError::Backend(e) => map_err(e),
        PoolError::Timeout(kind) => Error::new(
            ErrorKind::Unavailable,
            format!("no PostgreSQL connection within the connect timeout ({kind:?})"),
        )
        .set_retryable(true),
        other => {
            Error::new(ErrorKind::Unavailable, "PostgreSQL connection pool").with_source(other)
        }
    }
}

/// The end of the range of keys starting with `prefix`: the prefix with its
/// last byte below 0xFF incremented; `None` for an empty prefix (the whole
/// table). UTF-8 never holds 0xFF, so a bucket prefix always has an end.
pub fn prefix_range_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}
