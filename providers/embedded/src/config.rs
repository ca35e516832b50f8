//! Options of an embedded bucket.

use std::path::PathBuf;

use serde::Deserialize;

/// `[buckets.NAME]` options for `provider = "embedded"`.
///
/// ```toml
/// [buckets.default]
/// provider = "embedded"
/// path = ".wasikv/default.redb"   # default: .wasikv/<bucket>.redb under the working directory
/// table = "default"               # default: the bucket name
/// max_value_bytes = 1048576        # default: none; larger values are chunked by the host
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedConfig {
    /// The database file; relative paths are relative to the working directory.
    /// Buckets on one file share it (one open per host).
    pub path: Option<PathBuf>,
    /// The table inside the file. Default: the bucket name.
    pub table: Option<String>,
    /// Largest value kept in one record. Default: no limit of its own. The
    /// host stores longer values in chunks (up to `limits.max_value_bytes`),
    /// so no record is longer than this: keeps each write's pages bounded.
    pub max_value_bytes: Option<usize>,
}

impl EmbeddedConfig {
    /// The file of `bucket`: the configured path or `.wasikv/<bucket>.redb`.
    pub fn file(&self, bucket: &str) -> PathBuf {
        self.path.clone().unwrap_or_else(|| {
            PathBuf::from(".wasikv").join(format!("{}.redb", sanitize_file_stem(bucket)))
        })
    }

    /// The table of `bucket`.
    pub fn table(&self, bucket: &str) -> String {
        self.table.clone().unwrap_or_else(|| bucket.to_string())
    }
}

/// A file name stem from a bucket name: characters other than ASCII
/// alphanumerics, `-`, `_` and `.` become `_`.
fn sanitize_file_stem(bucket: &str) -> String {
    let stem: String = bucket
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if stem.is_empty() || stem.starts_with('.') {
        format!("_{stem}")
    } else {
        stem
    }
}
