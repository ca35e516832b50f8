//! The connection pool, TLS, the table's SQL and the one mapper from
//! PostgreSQL errors to wasikv errors.
//!
//! Every statement takes keys and values as parameters; the only text put
//! into SQL is the table name, which [`TableName`] restricts to identifier
//! characters and quotes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
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
    /// The running expiry sweeps, one per table (see [`Sweeper`]).
    sweepers: Arc<Mutex<HashMap<String, Weak<Sweeper>>>>,
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
        let store = PostgresStore {
            pool,
            sweepers: Arc::default(),
        };
        drop(store.client().await?);
        Ok(store)
    }

    /// A connection from the pool.
    pub async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(map_pool_err)
    }

    /// The expiry sweep of `table`, shared by this store's expiring buckets
    /// on it: started with the first (on the current tokio runtime), stopped
    /// when the last one is dropped.
    pub fn sweeper(&self, table: &TableName) -> Arc<Sweeper> {
        let mut sweepers = self.sweepers.lock().unwrap_or_else(|e| e.into_inner());
        let name = table.sql();
        if let Some(running) = sweepers.get(&name).and_then(Weak::upgrade) {
            return running;
        }
        sweepers.retain(|_, sweeper| sweeper.strong_count() > 0);
        let sweeper = Arc::new(Sweeper::start(self.pool.clone(), sweep_sql(table)));
        sweepers.insert(name, Arc::downgrade(&sweeper));
        sweeper
    }
}

/// Rows one sweep statement deletes at most.
pub const SWEEP_BATCH: i64 = 1_000;

/// Sweep statements in one round at most; each after the first runs only
/// when the one before deleted a full batch.
pub const SWEEP_STATEMENTS_PER_ROUND: usize = 10;

/// Time between the starts of two sweep rounds.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Deletes a table's expired rows in the background: every
/// [`SWEEP_INTERVAL`], up to [`SWEEP_STATEMENTS_PER_ROUND`] statements of up
/// to [`SWEEP_BATCH`] rows each (so at most 10,000 rows a second per table
/// and process), oldest expiry first, through the table's partial index on
/// `expires_at`. A round with nothing to delete costs one index probe.
/// Rows locked by a writer are skipped (`SKIP LOCKED`), so hosts sweeping
/// one table at once neither wait for each other nor for writes. Expired
/// rows are already absent for every read; the sweep only frees their space.
#[derive(Debug)]
pub struct Sweeper {
    task: tokio::task::JoinHandle<()>,
}

impl Sweeper {
    fn start(pool: Pool, sql: String) -> Self {
        let task = tokio::spawn(async move {
            let mut rounds = tokio::time::interval(SWEEP_INTERVAL);
            rounds.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                rounds.tick().await;
                for _ in 0..SWEEP_STATEMENTS_PER_ROUND {
                    match sweep_once(&pool, &sql).await {
                        Ok(deleted) if deleted >= SWEEP_BATCH as u64 => continue,
                        Ok(_) => break,
                        Err(e) => {
                            tracing::debug!(error = %e, "postgres expiry sweep failed; the next round tries again");
                            break;
                        }
                    }
                }
            }
        });
        Sweeper { task }
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One sweep statement; the rows it deleted.
pub async fn sweep_once(pool: &Pool, sql: &str) -> Result<u64> {
    let client = pool.get().await.map_err(map_pool_err)?;
    let statement = client.prepare_cached(sql).await.map_err(map_err)?;
    client
        .execute(&statement, &[&SWEEP_BATCH])
        .await
        .map_err(map_err)
}

/// The sweep statement of `table`: `$1` most rows. The inner select
/// locks the rows it picks (checked again against their newest version, so
/// a row rewritten meanwhile with a new expiry is not picked, and skipping
/// rows others hold locked); the outer delete finds them by their physical
/// address, which a locked row keeps. (Measured: 1,000 expired rows in
/// 2.3-2.7 ms of server time; a round with none, 0.11 ms.)
pub fn sweep_sql(table: &TableName) -> String {
    let t = table.sql();
    format!(
        "DELETE FROM {t} WHERE ctid = ANY(ARRAY(\
         SELECT ctid FROM {t} WHERE expires_at <= now() ORDER BY expires_at LIMIT $1 \
         FOR UPDATE SKIP LOCKED))"
    )
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

/// What a bucket's statements do with the table's `expires_at` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryColumn {
    /// The table has none (it was made before wasikv kept expiry): rows
    /// never expire, and a bucket with a `ttl` cannot open on it.
    Absent,
    /// The table has it: reads skip rows past it; writes set it to now +
    /// `ttl` (the server's clock), or to NULL (never) without one.
    Present {
        /// The bucket's time to live.
        ttl: Option<Duration>,
    },
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
    /// The statements on `table`, with `expiry` as the table and the bucket
    /// have it. A row is present when its key matches and, where the table
    /// has `expires_at`, that is NULL or later than the statement's `now()`;
    /// a write over a row that is not present is a write to an absent key.
    pub fn new(table: &TableName, expiry: ExpiryColumn) -> Self {
        let t = table.sql();
        // Pieces for the expiry column, empty without it: `present` and
        // `present_t` (after AND): the row (`t`) has not expired; `expired`:
        // the conflicting row has (NULL: never); `column` and `expires` add
        // the column and its new value to an insert, `keep` to its conflict
        // update, `set_expiry` to an update.
        let (present, present_t, expired, column, expires, keep, set_expiry) = match expiry {
            ExpiryColumn::Absent => Default::default(),
            ExpiryColumn::Present { ttl } => {
                let value = match ttl {
                    // Whole milliseconds: a number wasikv made, not input.
                    Some(ttl) => format!("now() + interval '{} milliseconds'", ttl.as_millis()),
                    None => "NULL".into(),
                };
                (
                    " AND (expires_at IS NULL OR expires_at > now())".to_string(),
                    " AND (t.expires_at IS NULL OR t.expires_at > now())".to_string(),
                    "row.expires_at <= now()".to_string(),
                    ", expires_at",
                    format!(", {value}"),
                    ", expires_at = EXCLUDED.expires_at",
                    format!(", expires_at = {value}"),
                )
            }
        };
        let insert_if_absent = match expiry {
            ExpiryColumn::Absent => format!(
                "INSERT INTO {t} (key, value, version) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING"
            ),
            // An expired row is replaced as if absent.
            ExpiryColumn::Present { .. } => format!(
                "INSERT INTO {t} AS row (key, value, version{column}) VALUES ($1, $2, $3{expires}) \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, version = EXCLUDED.version{keep} \
                 WHERE {expired}"
            ),
        };
        // The counter restarts from the delta over an expired row.
        let counted = match expiry {
            ExpiryColumn::Absent => {
                "convert_to((encode(row.value, 'escape')::int8 + $2::int8)::text, 'UTF8')"
                    .to_string()
            }
            ExpiryColumn::Present { .. } => format!(
                "CASE WHEN {expired} THEN EXCLUDED.value \
                 ELSE convert_to((encode(row.value, 'escape')::int8 + $2::int8)::text, 'UTF8') END"
            ),
        };
        let counts = match expiry {
            ExpiryColumn::Absent => String::new(),
            ExpiryColumn::Present { .. } => format!("{expired} OR "),
        };
        Statements {
            get: format!("SELECT value FROM {t} WHERE key = $1{present}"),
            get_versioned: format!("SELECT value, version FROM {t} WHERE key = $1{present}"),
            exists: format!("SELECT 1 FROM {t} WHERE key = $1{present}"),
            upsert: format!(
                "INSERT INTO {t} (key, value, version{column}) VALUES ($1, $2, $3{expires}) \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, version = EXCLUDED.version{keep}"
            ),
            insert_if_absent,
            update_if_version: format!(
                "UPDATE {t} SET value = $2, version = $3{set_expiry} WHERE key = $1 AND version = $4{present}"
            ),
            delete: format!("DELETE FROM {t} WHERE key = $1"),
            // The counter rules in one statement: a missing key becomes the
            // delta; a stored value counts only if its bytes are `-?[0-9]+`
            // (`encode(.., 'escape')` keeps ASCII digits and '-' and escapes
            // every other byte, so no other value matches); int8 parsing and
            // addition raise 22003 when out of range, which aborts the
            // statement with nothing written.
            increment: format!(
                "INSERT INTO {t} AS row (key, value, version{column}) \
                 VALUES ($1, convert_to(($2::int8)::text, 'UTF8'), $3{expires}) \
                 ON CONFLICT (key) DO UPDATE \
                 SET value = {counted}, version = EXCLUDED.version{keep} \
                 WHERE {counts}encode(row.value, 'escape') ~ '^-?[0-9]+$' \
                 RETURNING value"
            ),
            get_many: format!("SELECT key, value FROM {t} WHERE key = ANY($1){present}"),
            // `octet_length` of a stored value reads its size, not the
            // value; repeated keys count once per position, as returned.
            get_many_within: format!(
                "WITH wanted AS (SELECT k, i FROM unnest($1::bytea[]) WITH ORDINALITY AS w(k, i)), \
                 found AS (SELECT wanted.i, t.value FROM wanted JOIN {t} t ON t.key = wanted.k{present_t}), \
                 total AS (SELECT coalesce(sum(octet_length(value)), 0)::int8 AS n FROM found) \
                 SELECT found.i, CASE WHEN total.n <= $2 THEN found.value END, total.n \
                 FROM found, total"
            ),
            set_many: format!(
                "INSERT INTO {t} (key, value, version{column}) \
                 SELECT u.k, u.v, u.ver{expires} FROM unnest($1::bytea[], $2::bytea[], $3::bytea[]) AS u(k, v, ver) \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, version = EXCLUDED.version{keep}"
            ),
            delete_many: format!("DELETE FROM {t} WHERE key = ANY($1)"),
            list_bounded: format!(
                "SELECT key FROM {t} WHERE key >= $1 AND key < $2{present} ORDER BY key LIMIT $3"
            ),
            list_to_end: format!(
                "SELECT key FROM {t} WHERE key >= $1{present} ORDER BY key LIMIT $2"
            ),
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
    let index = expiry_index_sql(table);
    // Hosts creating the table at once take turns (the lock ends with the
    // transaction); the name is an identifier, safe in a string literal.
    format!(
        "BEGIN;\n\
         SELECT pg_advisory_xact_lock(hashtext('wasikv create {table}'));\n\
         CREATE TABLE IF NOT EXISTS {t} (\n    \
         key        bytea PRIMARY KEY,  -- bucket prefix || UTF-8 key\n    \
         value      bytea NOT NULL,\n    \
         version    bytea NOT NULL DEFAULT uuid_send(gen_random_uuid()),  -- new on every write\n    \
         expires_at timestamptz  -- NULL: never; once past, the row is absent\n\
         );\n\
         {index}\n\
         CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$\n\
         BEGIN NEW.version := uuid_send(gen_random_uuid()); RETURN NEW; END $$;\n\
         CREATE OR REPLACE TRIGGER {trigger} BEFORE UPDATE ON {t} FOR EACH ROW\n    \
         WHEN (NEW.version = OLD.version) EXECUTE FUNCTION {function}();\n\
         COMMIT;"
    )
}

/// The partial index the expiry sweep finds expired rows by (rows that
/// never expire are not in it).
fn expiry_index_sql(table: &TableName) -> String {
    format!(
        "CREATE INDEX IF NOT EXISTS \"{}_expires_at\" ON {} (expires_at) WHERE expires_at IS NOT NULL;",
        table.name,
        table.sql()
    )
}

/// Adds the `expires_at` column and its index to a table made before
/// wasikv kept expiry (`create = true` runs it when a bucket with a `ttl`
/// opens on such a table; docs show it). Adding a nullable column without a
/// default changes only the catalog, not the rows.
pub fn add_expiry_column_sql(table: &TableName) -> String {
    let t = table.sql();
    format!(
        "BEGIN;\n\
         SELECT pg_advisory_xact_lock(hashtext('wasikv create {table}'));\n\
         ALTER TABLE {t} ADD COLUMN IF NOT EXISTS expires_at timestamptz;\n\
         {}\n\
         COMMIT;",
        expiry_index_sql(table)
    )
}

/// Makes sure `table` exists, creating it (and its schema) when `create`,
/// else failing with what to do; and that it has the `expires_at` column
/// when `expiring` (adding it when `create`). Whether the table has the
/// column.
pub async fn ensure_table(
    store: &PostgresStore,
    table: &TableName,
    create: bool,
    expiring: bool,
) -> Result<bool> {
    let client = store.client().await?;
    if !table_exists(&client, table).await? {
        create_table(&client, table, create).await?;
    }
    if has_expiry_column(&client, table).await? {
        return Ok(true);
    }
    if !expiring {
        return Ok(false);
    }
    if !create {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            format!(
                "table {table} has no expires_at column, which a ttl needs: add it (docs/providers/postgres.md has the statement) or set create = true"
            ),
        ));
    }
    if let Err(e) = client.batch_execute(&add_expiry_column_sql(table)).await {
        let _ = client.batch_execute("ROLLBACK").await;
        return Err(map_err(e));
    }
    Ok(true)
}

/// Whether `table` exists.
async fn table_exists(client: &deadpool_postgres::Object, table: &TableName) -> Result<bool> {
    let row = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table.sql()])
        .await
        .map_err(map_err)?;
    Ok(row.get(0))
}

/// Whether `table` has the `expires_at` column.
async fn has_expiry_column(client: &deadpool_postgres::Object, table: &TableName) -> Result<bool> {
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) \
             AND attname = 'expires_at' AND NOT attisdropped)",
            &[&table.sql()],
        )
        .await
        .map_err(map_err)?;
    Ok(row.get(0))
}

/// Creates `table` (and its schema) when `create`, else fails naming what
/// to do; a host that loses a race to create it finds it made.
async fn create_table(
    client: &deadpool_postgres::Object,
    table: &TableName,
    create: bool,
) -> Result<()> {
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
            if e.code() == Some(&SqlState::UNIQUE_VIOLATION) && table_exists(client, table).await? {
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
