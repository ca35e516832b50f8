//! Options of a PostgreSQL bucket.

use std::str::FromStr;

use serde::Deserialize;
use tokio_postgres::config::{Host, SslMode};
use wasikv_core::{Endpoint, Error, ErrorKind, Result};

/// `[buckets.NAME]` options for `provider = "postgres"`.
///
/// ```toml
/// [buckets.sessions]
/// provider = "postgres"
/// url = "postgres://app@db.internal:5432/app?sslmode=require"  # or key=value form
/// table = "wasikv"            # default; schema-qualified names ("kv.store") too
/// prefix = "sessions/"        # default: "<bucket>/"; "" gives the bucket the whole table
/// create = true               # create the table (and schema) if missing; default false
/// pool_size = 16              # connections, default 16
/// statement_timeout_ms = 10000
/// ca_file = "/etc/wasikv/pg-ca.pem"   # TLS (sslmode=require): trust only these roots
/// ```
///
/// The password goes in the url or in `password`, never in logs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// libpq-style connection string: a `postgres://` URL or `key=value` pairs.
    pub url: String,
    /// Password, if not in the url. Never logged.
    pub password: Option<String>,
    /// The table holding the bucket's rows: `name` or `schema.name`, each
    /// part `[A-Za-z_][A-Za-z0-9_]*` (at most 63 bytes). Default `wasikv`.
    #[serde(default = "default_table")]
    pub table: String,
    /// Key prefix of the bucket in the table. Default: the bucket name and `/`.
    pub prefix: Option<String>,
    /// Create the table (and its schema) when missing.
    #[serde(default)]
    pub create: bool,
    /// Most connections of the pool shared by the buckets on this server.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// Server-side limit of one statement (`statement_timeout`), in milliseconds; 0: none.
    #[serde(default = "default_statement_timeout_ms")]
    pub statement_timeout_ms: u64,
    /// Time to establish a connection, in milliseconds.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// PEM file of the CA(s) to trust for TLS (`sslmode=require`) instead of the system roots.
    pub ca_file: Option<std::path::PathBuf>,
}

fn default_table() -> String {
    "wasikv".into()
}
fn default_pool_size() -> usize {
    16
}
fn default_statement_timeout_ms() -> u64 {
    10_000
}
fn default_connect_timeout_ms() -> u64 {
    5_000
}

/// A checked table name: one or two identifiers, quoted for SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    /// The schema, if given.
    pub schema: Option<String>,
    /// The table.
    pub name: String,
}

impl TableName {
    /// Parses `name` or `schema.name`; every part an unquoted-style
    /// identifier, so the quoted form needs no escaping.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let valid = |part: &str| {
            !part.is_empty()
                && part.len() <= 63
                && part
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        };
        let (schema, name) = match text.split_once('.') {
            Some((schema, name)) => (Some(schema), name),
            None => (None, text),
        };
        if !valid(name) || schema.is_some_and(|s| !valid(s)) {
            return Err(format!(
                "table {text:?} is not a name PostgreSQL takes unquoted: use `name` or `schema.name`, each [A-Za-z_][A-Za-z0-9_]* of at most 63 bytes"
            ));
        }
        Ok(TableName {
            schema: schema.map(str::to_string),
            name: name.to_string(),
        })
    }

    /// The name as SQL, each part double-quoted (case kept).
    pub fn sql(&self) -> String {
        match &self.schema {
            Some(schema) => format!("\"{schema}\".\"{}\"", self.name),
            None => format!("\"{}\"", self.name),
        }
    }
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

impl PostgresConfig {
    /// A bucket on `url` with every other option at its default.
    pub fn for_url(url: impl Into<String>) -> Self {
        PostgresConfig {
            url: url.into(),
            password: None,
            table: default_table(),
            prefix: None,
            create: false,
            pool_size: default_pool_size(),
            statement_timeout_ms: default_statement_timeout_ms(),
            connect_timeout_ms: default_connect_timeout_ms(),
            ca_file: None,
        }
    }

    /// The prefix of `bucket`.
    pub fn prefix(&self, bucket: &str) -> String {
        self.prefix.clone().unwrap_or_else(|| format!("{bucket}/"))
    }

    /// The table.
    pub fn table(&self) -> std::result::Result<TableName, String> {
        TableName::parse(&self.table)
    }

    /// The client configuration the url describes, with this config's
    /// password, timeouts and statement timeout applied. The error never
    /// repeats the url (it may hold a password).
    pub fn client_config(&self) -> Result<tokio_postgres::Config> {
        let mut config = tokio_postgres::Config::from_str(&self.url).map_err(|e| {
            // tokio-postgres's parse errors name the offending key, not the password.
            Error::new(
                ErrorKind::InvalidConfig,
                format!("url is not a PostgreSQL connection string ({e})"),
            )
        })?;
        if let Some(password) = &self.password {
            config.password(password);
        }
        config.connect_timeout(std::time::Duration::from_millis(self.connect_timeout_ms));
        if config.get_application_name().is_none() {
            config.application_name("wasikv");
        }
        if self.statement_timeout_ms > 0 {
            // Sent with the start-up message: no extra round trip per connection.
            let options = config.get_options().unwrap_or_default().to_string();
            config.options(format!(
                "{options} -c statement_timeout={}",
                self.statement_timeout_ms
            ));
        }
        Ok(config)
    }

    /// Whether connections use TLS (`sslmode=require` in the url); a
    /// `ca_file` without it is a configuration error.
    pub fn tls(&self) -> Result<bool> {
        let tls = self.client_config()?.get_ssl_mode() == SslMode::Require;
        if self.ca_file.is_some() && !tls {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "ca_file is set but the url does not ask for TLS (add sslmode=require)",
            ));
        }
        Ok(tls)
    }

    /// The servers of the url (TCP only; a Unix socket directory is refused).
    pub fn endpoints(&self) -> Result<Vec<Endpoint>> {
        let config = self.client_config()?;
        let ports = config.get_ports();
        let mut endpoints = Vec::new();
        for (i, host) in config.get_hosts().iter().enumerate() {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match host {
                Host::Tcp(name) => endpoints.push(Endpoint::server(name, port)),
                #[allow(unreachable_patterns)]
                _ => {
                    return Err(Error::new(
                        ErrorKind::InvalidConfig,
                        "url names a Unix socket: give a TCP host (host=127.0.0.1)",
                    ));
                }
            }
        }
        if endpoints.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "url names no host: give one (postgres://HOST:PORT/DATABASE)",
            ));
        }
        Ok(endpoints)
    }

    /// The database (the url's, else the user's name, as libpq does).
    pub fn database(&self) -> Result<String> {
        let config = self.client_config()?;
        Ok(config
            .get_dbname()
            .or(config.get_user())
            .unwrap_or("postgres")
            .to_string())
    }

    /// Identity of the connection: the url less its password, the TLS
    /// roots and the pool and timeout settings (buckets that differ in
    /// them get their own pool).
    pub fn connection_identity(&self) -> Result<String> {
        let config = self.client_config()?;
        Ok(format!(
            "{:?}|{:?}|{:?}|{:?}|{}|{}|{}|{:?}",
            config.get_hosts(),
            config.get_ports(),
            config.get_user(),
            config.get_dbname(),
            self.pool_size,
            self.statement_timeout_ms,
            self.connect_timeout_ms,
            (config.get_ssl_mode() == SslMode::Require, &self.ca_file),
        ))
    }
}
