//! [`FirestoreProvider`] and [`FirestoreBucket`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use firestore::gcloud_sdk::google::firestore::v1::Write;
use firestore::gcloud_sdk::google::firestore::v1::{
    BatchGetDocumentsRequest, CommitRequest, Document, DocumentMask, GetDocumentRequest,
    ListDocumentsRequest, Precondition, Value, batch_get_documents_response, precondition,
    value::ValueType, write,
};
use firestore::gcloud_sdk::prost::Message;
use firestore::gcloud_sdk::prost_types::Timestamp;
use firestore::gcloud_sdk::tonic::Code;
use wasikv_core::{
    BatchAtomicity, Bucket, BucketPlan, Capabilities, Consistency, Endpoint, Error, ErrorKind,
    Expiry, KeyCodec, ListPage, Location, Namespace, Options, Provider, Result, Store, Support,
    Version, Versioned, WriteCondition, WriteOutcome,
};

use crate::config::FirestoreConfig;
use crate::core::{
    Client, EXPIRES, FirestoreStore, MAX_COMMIT_BYTES, MAX_COMMIT_WRITES, MAX_DOCUMENT_BYTES,
    MAX_ID_BYTES, ORIGINAL_KEY, VALUE, WRITE_TOKEN, bytes_value, expiry_ms, integer_value,
    is_expired, map_status, string_value, timestamp_value,
};
use wasikv_core::expiry::{expiry_after, has_expired, now_ms};

/// The provider name in configuration.
pub const NAME: &str = "firestore";

/// Room a document keeps beside its value for its name, fields and overhead.
pub const DOCUMENT_OVERHEAD: usize = 8192;

/// Largest value.
pub const MAX_VALUE_BYTES: usize = MAX_DOCUMENT_BYTES - DOCUMENT_OVERHEAD;

/// Expiry: a timestamp field in each document checked by every read and
/// condition; a Firestore TTL policy on the field (the guide's command)
/// deletes expired documents, typically within a day.
pub const EXPIRY: Expiry = Expiry::Filtered {
    how: "exp timestamp field checked on every read and condition; deleted by a Firestore TTL policy on exp (typically within 24 h)",
    resolution: Duration::from_millis(1),
};

/// Builds Firestore stores.
#[derive(Debug, Default, Clone, Copy)]
pub struct FirestoreProvider;

/// The capabilities of a Firestore bucket.
pub fn capabilities() -> Capabilities {
    Capabilities {
        // The `increment` field transform turns a non-number into the delta
        // and caps at the i64 bounds: it would break the counter contract, so
        // the host's CAS loop over update_time does it.
        increment: Support::Unsupported,
        get_many: Support::Native,
        set_many: Support::Native,
        // One commit per native batch (the host splits by size and count).
        set_many_atomicity: BatchAtomicity::All,
        delete_many: Support::Native,
        max_key_bytes: Some(MAX_ID_BYTES),
        max_value_bytes: Some(MAX_VALUE_BYTES),
        max_batch_items: Some(MAX_COMMIT_WRITES),
        consistency: Consistency::Strong,
        durable: true,
        versioning: "update_time",
        expiry: EXPIRY,
        ..Capabilities::required()
    }
}

/// Whether `s` is a valid collection id or document id segment.
fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_BYTES
        && !s.contains('/')
        && s != "."
        && s != ".."
        && !wasikv_core::codec::is_dunder(s)
}

#[async_trait]
impl Provider for FirestoreProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        capabilities()
    }

    fn plan(&self, bucket: &str, options: &Options) -> Result<BucketPlan> {
        let config: FirestoreConfig = options.parse(bucket, NAME)?;
        let invalid = |message: String| {
            Err(Error::new(ErrorKind::InvalidConfig, message).in_bucket(bucket, NAME))
        };
        if config.project_id.is_empty() {
            return invalid("project_id is empty".into());
        }
        let collection = config.collection(bucket);
        if !valid_segment(&collection) {
            return invalid(format!(
                "collection {collection:?} is not a Firestore collection id (no '/', not . or .., not __*__, at most {MAX_ID_BYTES} bytes)"
            ));
        }
        if let Some(parent) = &config.parent {
            let segments: Vec<&str> = parent.split('/').collect();
            if !segments.len().is_multiple_of(2) || !segments.iter().all(|s| valid_segment(s)) {
                return invalid(format!(
                    "parent {parent:?} is not a document path (collection/document[/collection/document...])"
                ));
            }
        }
        let endpoint = match &config.emulator_host {
            Some(host) => Endpoint::parse_server(host, 8080).ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidConfig,
                    "emulator_host must be host:port (the port a number)",
                )
                .in_bucket(bucket, NAME)
            })?,
            None => Endpoint::server("firestore.googleapis.com", 443),
        };
        Ok(BucketPlan {
            bucket: bucket.to_string(),
            provider: NAME,
            connection: config.connection_identity(),
            // A project's database, whatever the timeout.
            location: Location::new(
                endpoint,
                format!("{}/{}", config.project_id, config.database_id),
            ),
            namespace: Namespace::Exclusive(format!(
                "{}/{collection}",
                config.parent.as_deref().unwrap_or("")
            )),
            options: options.clone(),
            ttl: None,
        })
    }

    async fn connect(&self, plan: &BucketPlan) -> Result<Arc<dyn Store>> {
        let config: FirestoreConfig = plan.options.parse(&plan.bucket, NAME)?;
        Ok(Arc::new(FirestoreStore::connect(&config).await?))
    }
}

#[async_trait]
impl Store for FirestoreStore {
    async fn open_bucket(&self, plan: &BucketPlan) -> Result<Arc<dyn Bucket>> {
        let config: FirestoreConfig = plan.options.parse(&plan.bucket, NAME)?;
        Ok(Arc::new(
            FirestoreBucket::new(
                self,
                config.parent.as_deref(),
                &config.collection(&plan.bucket),
            )
            .expiring(plan.ttl),
        ))
    }
}

/// A bucket: one collection. Documents are named by the key through the key
/// codec and hold the value in the bytes field `v`, a random write token in
/// `w`, the original key in `k` when the id is a hash of it, and the expiry
/// in the timestamp field `exp` when written by a bucket with a `ttl`.
pub struct FirestoreBucket {
    client: Client,
    database: String,
    /// `projects/../databases/../documents[/parent]`.
    parent: String,
    collection: String,
    codec: KeyCodec,
    capabilities: Capabilities,
    /// Time to live of every write.
    ttl: Option<Duration>,
}

/// The version of a document: its `update_time` (12 bytes), and its expiry
/// (8 more) when it has one, so a swap against a version that has expired
/// meanwhile fails without a request (an unchanged `update_time` means an
/// unchanged expiry).
fn version(document: &Document) -> Version {
    let Some(t) = document.update_time.as_ref() else {
        return Version(Vec::new());
    };
    let mut bytes = [t.seconds.to_be_bytes().as_slice(), &t.nanos.to_be_bytes()].concat();
    if let Some(expiry) = expiry_ms(document) {
        bytes.extend_from_slice(&expiry.to_be_bytes());
    }
    Version(bytes)
}

/// The `update_time` and expiry a version holds; `None` for bytes this
/// bucket did not issue.
fn timestamp(version: &Version) -> Option<(Timestamp, Option<u64>)> {
    let bytes = version.0.as_slice();
    let expiry = match bytes.len() {
        12 => None,
        20 => Some(u64::from_be_bytes(bytes[12..].try_into().ok()?)),
        _ => return None,
    };
    Some((
        Timestamp {
            seconds: i64::from_be_bytes(bytes[..8].try_into().ok()?),
            nanos: i32::from_be_bytes(bytes[8..12].try_into().ok()?),
        },
        expiry,
    ))
}

fn document_value(document: &Document) -> Result<Vec<u8>> {
    match document
        .fields
        .get(VALUE)
        .and_then(|v| v.value_type.as_ref())
    {
        Some(ValueType::BytesValue(bytes)) => Ok(bytes.clone()),
        Some(ValueType::StringValue(text)) => Ok(text.clone().into_bytes()),
        _ => Err(Error::new(
            ErrorKind::Other,
            format!(
                "document {} has no bytes field {VALUE:?} (not written by wasikv)",
                document.name
            ),
        )),
    }
}

impl FirestoreBucket {
    /// The bucket on `store` in `collection` (under the document `parent`).
    pub fn new(store: &FirestoreStore, parent: Option<&str>, collection: &str) -> Self {
        let mut root = format!("{}/documents", store.database);
        if let Some(parent) = parent {
            root.push('/');
            root.push_str(parent);
        }
        FirestoreBucket {
            client: store.client.clone(),
            database: store.database.clone(),
            parent: root,
            collection: collection.to_string(),
            codec: KeyCodec {
                // '.' too, since "." and ".." are not ids; '/' separates paths.
                forbidden: &['/', '.'],
                escape_space: false,
                max_id_bytes: MAX_ID_BYTES,
                reserve_dunder: true,
                escape_trailing_space: false,
            },
            capabilities: capabilities(),
            ttl: None,
        }
    }

    /// The bucket whose writes expire `ttl` after they are made (a TTL
    /// policy on [`EXPIRES`] deletes them; the provider guide).
    pub fn expiring(mut self, ttl: Option<Duration>) -> Self {
        self.ttl = ttl;
        self
    }

    /// The document name of `key`, and the original key when the id is a hash.
    fn name(&self, key: &str) -> (String, Option<String>) {
        let encoded = self.codec.encode(key);
        (
            format!("{}/{}/{}", self.parent, self.collection, encoded.id),
            encoded.hashed.then(|| key.to_string()),
        )
    }

    /// The write of `set`, size-checked.
    fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        precondition: Option<Precondition>,
    ) -> Result<Write> {
        self.capabilities.check_value(value.len())?;
        let (name, original) = self.name(key);
        // Firestore's document size: name + 16, each field name + 1 and value, + 32.
        let size = name.len()
            + 16
            + 2
            + value.len()
            + 10
            + original.as_ref().map_or(0, |k| 2 + k.len())
            + self.ttl.map_or(0, |_| EXPIRES.len() + 1 + 8)
            + 32;
        if size > MAX_DOCUMENT_BYTES {
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!(
                    "the document for this key and value is {size} bytes, over Firestore's limit of {MAX_DOCUMENT_BYTES} bytes"
                ),
            ));
        }
        let mut fields: HashMap<String, Value> = HashMap::from([
            (VALUE.to_string(), bytes_value(value)),
            (WRITE_TOKEN.to_string(), integer_value(rand::random())),
        ]);
        if let Some(original) = original {
            fields.insert(ORIGINAL_KEY.to_string(), string_value(original));
        }
        if let Some(ttl) = self.ttl {
            fields.insert(EXPIRES.to_string(), timestamp_value(expiry_after(ttl)));
        }
        Ok(Write {
            operation: Some(write::Operation::Update(Document {
                name,
                fields,
                ..Default::default()
            })),
            current_document: precondition,
            ..Default::default()
        })
    }

    fn delete_write(&self, key: &str) -> Write {
        Write {
            operation: Some(write::Operation::Delete(self.name(key).0)),
            ..Default::default()
        }
    }

    async fn commit(
        &self,
        writes: Vec<Write>,
    ) -> std::result::Result<(), firestore::gcloud_sdk::tonic::Status> {
        let mut client = self.client.clone();
        client
            .commit(CommitRequest {
                database: self.database.clone(),
                writes,
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    /// Commits `writes` in chunks of at most 500 writes and 9 MiB (each
    /// write measured by its encoded size).
    async fn commit_chunked(&self, writes: Vec<Write>) -> Result<()> {
        let mut chunk = Vec::new();
        let mut bytes = 0;
        for write in writes {
            let size = write.encoded_len();
            if !chunk.is_empty()
                && (chunk.len() == MAX_COMMIT_WRITES || bytes + size > MAX_COMMIT_BYTES)
            {
                self.commit(std::mem::take(&mut chunk))
                    .await
                    .map_err(map_status)?;
                bytes = 0;
            }
            bytes += size;
            chunk.push(write);
        }
        if !chunk.is_empty() {
            self.commit(chunk).await.map_err(map_status)?;
        }
        Ok(())
    }

    /// The document of `key`, `None` when missing or expired; with `mask`,
    /// only those fields (and the expiry).
    async fn read(&self, key: &str, mask: Option<DocumentMask>) -> Result<Option<Document>> {
        Ok(self
            .read_stored(key, mask)
            .await?
            .filter(|document| !is_expired(document, now_ms())))
    }

    /// The document of `key` as stored, expired or not.
    async fn read_stored(&self, key: &str, mask: Option<DocumentMask>) -> Result<Option<Document>> {
        let mut client = self.client.clone();
        let request = GetDocumentRequest {
            name: self.name(key).0,
            mask: mask.map(|mut mask| {
                mask.field_paths.push(EXPIRES.to_string());
                mask
            }),
            ..Default::default()
        };
        match client.get_document(request).await {
            Ok(response) => Ok(Some(response.into_inner())),
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(map_status(status)),
        }
    }

    /// Commits one conditional write: written, or the condition failed.
    async fn commit_conditional(&self, write: Write) -> Result<WriteOutcome> {
        match self.commit(vec![write]).await {
            Ok(()) => Ok(WriteOutcome::Written),
            Err(status)
                if matches!(
                    status.code(),
                    Code::FailedPrecondition | Code::AlreadyExists | Code::NotFound
                ) =>
            {
                Ok(WriteOutcome::ConditionFailed)
            }
            Err(status) => Err(map_status(status)),
        }
    }
}

#[async_trait]
impl Bucket for FirestoreBucket {
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        let Some(document) = self.read(key, None).await? else {
            return Ok(None);
        };
        Ok(Some(Versioned {
            value: document_value(&document)?,
            version: version(&document),
        }))
    }

    async fn set(
        &self,
        key: &str,
        value: Vec<u8>,
        condition: WriteCondition,
    ) -> Result<WriteOutcome> {
        let precondition = |condition| Precondition {
            condition_type: Some(condition),
        };
        match &condition {
            WriteCondition::Always => {
                self.commit(vec![self.update(key, value, None)?])
                    .await
                    .map_err(map_status)?;
                Ok(WriteOutcome::Written)
            }
            WriteCondition::IfVersion(v) => {
                let Some((time, expiry)) = timestamp(v) else {
                    return Ok(WriteOutcome::ConditionFailed); // not a version this bucket issued
                };
                if has_expired(expiry, now_ms()) {
                    return Ok(WriteOutcome::ConditionFailed);
                }
                let condition = precondition::ConditionType::UpdateTime(time);
                self.commit_conditional(self.update(key, value, Some(precondition(condition)))?)
                    .await
            }
            WriteCondition::IfAbsent => {
                let condition = precondition::ConditionType::Exists(false);
                let mut write = self.update(key, value, Some(precondition(condition)))?;
                match self.commit_conditional(write.clone()).await? {
                    WriteOutcome::Written => Ok(WriteOutcome::Written),
                    WriteOutcome::ConditionFailed => {
                        // A document that has expired (and that no TTL policy
                        // deleted yet) is absent: the same write replaces it
                        // if it is still the same document.
                        let mask = DocumentMask {
                            field_paths: vec![ORIGINAL_KEY.to_string()],
                        };
                        match self.read_stored(key, Some(mask)).await? {
                            Some(document) if is_expired(&document, now_ms()) => {
                                let Some(time) = document.update_time else {
                                    return Ok(WriteOutcome::ConditionFailed);
                                };
                                let condition = precondition::ConditionType::UpdateTime(time);
                                write.current_document = Some(precondition(condition));
                                self.commit_conditional(write).await
                            }
                            _ => Ok(WriteOutcome::ConditionFailed),
                        }
                    }
                }
            }
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.commit(vec![self.delete_write(key)])
            .await
            .map_err(map_status)
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let mask = DocumentMask {
            field_paths: vec![ORIGINAL_KEY.to_string()],
        };
        Ok(self.read(key, Some(mask)).await?.is_some())
    }

    async fn list(&self, cursor: Option<&[u8]>, limit: usize) -> Result<ListPage> {
        let mut page_token = match cursor {
            None => String::new(),
            Some(token) => std::str::from_utf8(token)
                .ok()
                .filter(|t| !t.is_empty())
                .ok_or_else(|| Error::new(ErrorKind::InvalidCursor, "malformed list cursor"))?
                .to_string(),
        };
        let mut client = self.client.clone();
        // A page without keys (expired or foreign documents only) is
        // followed within this call, so a page is empty only at the end.
        loop {
            let request = ListDocumentsRequest {
                parent: self.parent.clone(),
                collection_id: self.collection.clone(),
                page_size: i32::try_from(limit.max(1)).unwrap_or(i32::MAX),
                page_token: std::mem::take(&mut page_token),
                mask: Some(DocumentMask {
                    field_paths: vec![ORIGINAL_KEY.to_string(), EXPIRES.to_string()],
                }),
                ..Default::default()
            };
            let response = client
                .list_documents(request)
                .await
                .map_err(|status| {
                    // The emulator answers a bad page token with `Unknown`, Firestore
                    // with `InvalidArgument`.
                    let refused = status.code() == Code::InvalidArgument
                        || (status.code() == Code::Unknown
                            && !status.message().contains("transport"));
                    if cursor.is_some() && refused {
                        Error::new(
                            ErrorKind::InvalidCursor,
                            "Firestore refused the list cursor",
                        )
                    } else {
                        map_status(status)
                    }
                })?
                .into_inner();
            // Documents this bucket did not write (an id that is not a canonical
            // encoding) are skipped, never an error for the whole listing.
            let now = now_ms();
            let live: Vec<&Document> = response
                .documents
                .iter()
                .filter(|document| !is_expired(document, now))
                .collect();
            let keys: Vec<String> = live
                .iter()
                .filter_map(|document| {
                    let id = document.name.rsplit('/').next().unwrap_or_default();
                    let original = match document
                        .fields
                        .get(ORIGINAL_KEY)
                        .and_then(|v| v.value_type.as_ref())
                    {
                        Some(ValueType::StringValue(key)) => Some(key.as_str()),
                        _ => None,
                    };
                    self.codec.listed_key(id, original)
                })
                .collect();
            let foreign = live.len() - keys.len();
            if foreign > 0 {
                tracing::debug!(
                    "list skipped {foreign} documents in the collection that wasikv did not write"
                );
            }
            if keys.is_empty() && !response.next_page_token.is_empty() {
                page_token = response.next_page_token;
                continue;
            }
            let next = (!response.next_page_token.is_empty())
                .then(|| response.next_page_token.into_bytes());
            return Ok(ListPage { keys, next });
        }
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        self.capabilities.check_batch(keys.len())?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<String> = keys.iter().map(|k| self.name(k).0).collect();
        let mut distinct = names.clone();
        distinct.sort();
        distinct.dedup();
        let mut client = self.client.clone();
        let mut stream = client
            .batch_get_documents(BatchGetDocumentsRequest {
                database: self.database.clone(),
                documents: distinct,
                ..Default::default()
            })
            .await
            .map_err(map_status)?
            .into_inner();
        let mut found: HashMap<String, Vec<u8>> = HashMap::new();
        let now = now_ms();
        while let Some(message) = stream.message().await.map_err(map_status)? {
            if let Some(batch_get_documents_response::Result::Found(document)) = message.result
                && !is_expired(&document, now)
            {
                let value = document_value(&document)?;
                found.insert(document.name, value);
            }
        }
        Ok(names.iter().map(|n| found.get(n).cloned()).collect())
    }

    async fn set_many(&self, items: Vec<(String, Vec<u8>)>) -> Result<()> {
        self.capabilities.check_batch(items.len())?;
        // Check every item before committing any, so a bad one writes nothing.
        let writes = items
            .into_iter()
            .map(|(key, value)| self.update(&key, value, None))
            .collect::<Result<Vec<_>>>()?;
        self.commit_chunked(writes).await
    }

    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        self.capabilities.check_batch(keys.len())?;
        let writes = keys.iter().map(|key| self.delete_write(key)).collect();
        self.commit_chunked(writes).await
    }
}
