//! The client, document names, values and the one mapper from gRPC statuses
//! to wasikv errors.

use std::time::Duration;

use firestore::gcloud_sdk::google::firestore::v1::firestore_client::FirestoreClient;
use firestore::gcloud_sdk::google::firestore::v1::{Document, Value, value::ValueType};
use firestore::gcloud_sdk::google_cloud_auth::credentials::{
    CacheableResource, Credentials, CredentialsProvider, EntityTag,
};
use firestore::gcloud_sdk::google_cloud_auth::errors::CredentialsError;
use firestore::gcloud_sdk::tonic::{Code, Status};
use firestore::gcloud_sdk::{GoogleAuthHeaders, GoogleAuthMiddleware};
use firestore::{FirestoreDb, FirestoreDbOptions};
use http::{Extensions, HeaderMap, HeaderValue, header::AUTHORIZATION};
use wasikv_core::{Error, ErrorKind, Result};

use crate::config::FirestoreConfig;

/// Firestore's document size limit.
pub const MAX_DOCUMENT_BYTES: usize = 1_048_576;

/// Firestore's limit on a document id, in bytes.
pub const MAX_ID_BYTES: usize = 1500;

/// Most writes in one commit.
pub const MAX_COMMIT_WRITES: usize = 500;

/// Commits are kept under this many encoded bytes: Firestore takes requests
/// up to 10 MiB, the emulator's gRPC server only up to 4 MiB.
pub const MAX_COMMIT_BYTES: usize = (4 << 20) - (64 << 10);

/// Field holding the value (bytes).
pub const VALUE: &str = "v";
/// Field holding a random number renewed by every write: Firestore keeps
/// `update_time` when a write leaves the document unchanged, and this makes
/// every write a change, so a same-bytes write still makes old versions stale.
pub const WRITE_TOKEN: &str = "w";
/// Field holding the original key when the document id is a hash of it.
pub const ORIGINAL_KEY: &str = "k";
/// Field holding the expiry of a document written by a bucket with a `ttl`
/// (a timestamp: now + ttl, the host's clock). Every read treats a
/// document at or past it as absent; a Firestore TTL policy on this field
/// deletes expired documents.
pub const EXPIRES: &str = "exp";

/// The expiry of `document` in milliseconds since the Unix epoch, if it
/// has one (a time before the epoch counts as the epoch).
pub fn expiry_ms(document: &Document) -> Option<u64> {
    match document.fields.get(EXPIRES)?.value_type.as_ref()? {
        ValueType::TimestampValue(t) => {
            let ms = t.seconds.saturating_mul(1000) + i64::from(t.nanos) / 1_000_000;
            Some(u64::try_from(ms).unwrap_or(0))
        }
        _ => None,
    }
}

/// Whether `document` is at or past its expiry at `now` (milliseconds).
pub fn is_expired(document: &Document, now: u64) -> bool {
    wasikv_core::expiry::has_expired(expiry_ms(document), now)
}

/// A timestamp value `ms` milliseconds after the Unix epoch.
pub fn timestamp_value(ms: u64) -> Value {
    Value {
        value_type: Some(ValueType::TimestampValue(
            firestore::gcloud_sdk::prost_types::Timestamp {
                seconds: i64::try_from(ms / 1000).unwrap_or(i64::MAX),
                nanos: ((ms % 1000) * 1_000_000) as i32,
            },
        )),
    }
}

/// The gRPC client type.
pub type Client = FirestoreClient<GoogleAuthMiddleware>;

/// One connection to a Firestore database, shared by its buckets.
#[derive(Clone)]
pub struct FirestoreStore {
    /// The gRPC client.
    pub client: Client,
    /// `projects/{project}/databases/{database}`.
    pub database: String,
}

impl FirestoreStore {
    /// Connects to the database of `config`: the emulator without credentials,
    /// or Google with Application Default Credentials.
    pub async fn connect(config: &FirestoreConfig) -> Result<Self> {
        // Service-account credentials sign with rustls' process-wide provider;
        // install ring's unless the process already chose one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut options = FirestoreDbOptions::new(config.project_id.clone())
            .with_database_id(config.database_id.clone())
            .with_request_timeout(Duration::from_millis(config.timeout_ms));
        let db = match &config.emulator_host {
            Some(host) => {
                options = options.with_firebase_api_url(format!("http://{host}"));
                let auth =
                    GoogleAuthHeaders::from(Credentials::from(EmulatorCredentials::default()));
                FirestoreDb::with_options_auth(options, auth).await
            }
            None => FirestoreDb::with_options(options).await,
        }
        .map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!("cannot connect to Firestore: {e}"),
            )
        })?;
        Ok(FirestoreStore {
            client: db.client().get(),
            database: format!(
                "projects/{}/databases/{}",
                config.project_id, config.database_id
            ),
        })
    }
}

/// The emulator's conventional stub token: it authenticates nothing, so no
/// Google credentials are looked up.
#[derive(Debug, Default)]
struct EmulatorCredentials {
    tag: EntityTag,
}

impl CredentialsProvider for EmulatorCredentials {
    async fn headers(
        &self,
        extensions: Extensions,
    ) -> std::result::Result<CacheableResource<HeaderMap>, CredentialsError> {
        if extensions.get::<EntityTag>() == Some(&self.tag) {
            return Ok(CacheableResource::NotModified);
        }
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer owner"));
        Ok(CacheableResource::New {
            entity_tag: self.tag.clone(),
            data: headers,
        })
    }

    async fn universe_domain(&self) -> Option<String> {
        None
    }
}

/// A bytes value.
pub fn bytes_value(bytes: Vec<u8>) -> Value {
    Value {
        value_type: Some(ValueType::BytesValue(bytes)),
    }
}

/// An integer value.
pub fn integer_value(n: i64) -> Value {
    Value {
        value_type: Some(ValueType::IntegerValue(n)),
    }
}

/// A string value.
pub fn string_value(s: String) -> Value {
    Value {
        value_type: Some(ValueType::StringValue(s)),
    }
}

/// The one mapper from gRPC statuses to wasikv errors.
pub fn map_status(status: Status) -> Error {
    let message = status.message().to_string();
    let kind = match status.code() {
        Code::ResourceExhausted if message.contains("exceeds maximum size") => ErrorKind::TooLarge,
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::Cancelled
        | Code::ResourceExhausted => ErrorKind::Unavailable,
        Code::PermissionDenied | Code::Unauthenticated => ErrorKind::AccessDenied,
        Code::InvalidArgument if message.contains("exceeds") || message.contains("too large") => {
            ErrorKind::TooLarge
        }
        // tonic reports a dead connection as `Unknown: transport error`.
        Code::Unknown if message.contains("transport error") => ErrorKind::Unavailable,
        _ => ErrorKind::Other,
    };
    Error::new(kind, format!("Firestore {:?}: {message}", status.code()))
        .set_retryable(kind == ErrorKind::Unavailable)
}
