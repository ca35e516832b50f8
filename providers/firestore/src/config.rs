//! Options of a Firestore bucket.

use serde::Deserialize;

/// `[buckets.NAME]` options for `provider = "firestore"`.
///
/// ```toml
/// [buckets.profiles]
/// provider = "firestore"
/// project_id = "my-project"
/// database_id = "(default)"
/// collection = "profiles"           # default: the bucket name
/// parent = "tenants/acme"           # optional: a subcollection of this document
/// # emulator_host = "127.0.0.1:8080" # the Cloud Firestore emulator (no credentials)
/// ```
///
/// Credentials for a real project come from Google's Application Default
/// Credentials chain (`GOOGLE_APPLICATION_CREDENTIALS`, gcloud's user
/// credentials, the metadata server); none are configured here.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirestoreConfig {
    /// The Google Cloud project.
    pub project_id: String,
    /// The database. Default `(default)`.
    #[serde(default = "default_database_id")]
    pub database_id: String,
    /// The collection of the bucket. Default: the bucket name.
    pub collection: Option<String>,
    /// Path of the document whose subcollection the bucket is (`col/doc[/col/doc...]`).
    pub parent: Option<String>,
    /// `host:port` of a Cloud Firestore emulator: plain HTTP, no credentials.
    pub emulator_host: Option<String>,
    /// Longest wait for one request, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_database_id() -> String {
    "(default)".into()
}

fn default_timeout_ms() -> u64 {
    30_000
}

impl FirestoreConfig {
    /// The collection of `bucket`.
    pub fn collection(&self, bucket: &str) -> String {
        self.collection
            .clone()
            .unwrap_or_else(|| bucket.to_string())
    }

    /// Identity of the connection: project, database and endpoint.
    pub fn connection_identity(&self) -> String {
        format!(
            "{}|{}|{:?}|{}",
            self.project_id, self.database_id, self.emulator_host, self.timeout_ms
        )
    }
}
