//! Large values: the one place where wasikv stores a value longer than a
//! store's own item limit, in chunks under hidden keys behind a manifest at
//! the guest's key (layout: [`wasikv_core::chunks`]).
//!
//! * **Atomic replacement.** Chunks go under a fresh write id first; the
//!   manifest is then switched with one write of the store (conditional
//!   where the caller's write is). A reader sees the old manifest or the new
//!   one; chunks are never rewritten, so a reader that finds one missing
//!   (deleted because the value was replaced meanwhile) reads the manifest
//!   again. A writer that stops midway leaves the old value in place.
//! * **Versions.** A large value's version is its manifest's: every write
//!   makes a new manifest, so the store's own no-ABA versions carry over.
//! * **Garbage.** The chunks of a replaced or deleted value are deleted right
//!   after the write that replaced it. To know what it replaces, a write
//!   reads the key first, but only in a bucket whose [`MARKER_KEY`] exists
//!   (written before the first chunk ever): buckets that never held a large
//!   value pay nothing. What a crash, a timeout or a race leaves behind is
//!   collected by [`ChunkedBucket::collect_garbage`] (`wasikv gc`).
//! * **Keys.** Guests' keys starting with U+0000 get one more in front;
//!   hidden keys never list and never reach a watcher.
//!
//! The layer wraps every bucket whose store declares a value limit (so a
//! stored manifest is always read as one there); it chunks only where that
//! limit is below the host's `limits.max_value_bytes`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::emulate::{concurrent_gets, delete_keys};
use async_trait::async_trait;
use futures::StreamExt as _;
use futures::future::try_join_all;
use wasikv_core::chunks::{
    self, CHUNK_KEY_OVERHEAD, MARKER_KEY, Manifest, Stored, WriteId, chunk_key, stored_key,
};
use wasikv_core::{
    Bucket, Capabilities, Change, ChangeStream, Error, ErrorKind, ListPage, Result, Version,
    Versioned, WriteCondition, WriteOutcome,
};

/// How large values are emulated, as the matrix shows it.
pub const CHUNKED_HOW: &str = "chunks + manifest";

/// How often a process looks again for the marker of a bucket it has not
/// seen holding chunks.
const MARKER_REFRESH: Duration = Duration::from_secs(1);

/// How long the first large write of a bucket waits between creating the
/// marker and switching its manifest, so that every process writing the
/// bucket has looked for the marker again (see [`MARKER_REFRESH`]).
const MARKER_SETTLE: Duration = Duration::from_secs(2);

/// Most chunk bytes one call has in flight (being sent or received) at
/// once, besides the value itself: a wave holds fewer chunks than the
/// batch concurrency where chunks are large (etcd's 1.5 MiB: 5 at a time).
const MAX_IN_FLIGHT_BYTES: usize = 8 << 20;

/// Chunks per wave for chunks of `chunk_bytes`: at most `concurrency`, at
/// most [`MAX_IN_FLIGHT_BYTES`] in all, at least one.
fn wave_len(concurrency: usize, chunk_bytes: u32) -> u64 {
    let by_bytes = MAX_IN_FLIGHT_BYTES / (chunk_bytes as usize).max(1);
    concurrency.min(by_bytes).max(1) as u64
}

/// Default age after which `collect_garbage` treats an unreferenced chunk as
/// orphaned: far longer than any write may take (`limits.operation_timeout_ms`).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3600);

/// A bucket that stores values over its store's limit in chunks.
pub struct ChunkedBucket {
    inner: Arc<dyn Bucket>,
    capabilities: Capabilities,
    /// The store's own value limit.
    native_max: usize,
    /// Values longer than this are chunked (`None`: the store takes every
    /// value the host does).
    chunk_above: Option<usize>,
    concurrency: usize,
    attempts: u32,
    /// The bucket has a `ttl`: a chunk missing under an unchanged manifest
    /// expired (chunks are written before their manifest, so they expire
    /// first) and the value reads as absent.
    expires: bool,
    marker: Marker,
}

/// Whether this process knows the bucket may hold chunked values.
struct Marker {
    seen: AtomicBool,
    /// Milliseconds after `epoch` of the last look (0: never).
    checked_ms: AtomicU64,
    epoch: Instant,
}

impl Marker {
    fn new() -> Self {
        Marker {
            seen: AtomicBool::new(false),
            checked_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }
}

/// What a collection found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Stored keys listed.
    pub keys_scanned: u64,
    /// Chunk keys among them.
    pub chunks_seen: u64,
    /// Chunks younger than the grace period, left alone.
    pub chunks_too_young: u64,
    /// Orphaned chunks deleted.
    pub chunks_deleted: u64,
}

impl ChunkedBucket {
    /// Wraps `inner` when its store declares a value limit (else returns it
    /// as is): values up to `max_value` bytes are then stored, in chunks
    /// above the store's limit. `concurrency` bounds the chunk reads and
    /// writes in flight per call; `attempts` bounds the re-reads of a value
    /// that keeps being replaced while it is read; `expires`: the bucket
    /// has a `ttl`.
    pub fn wrap(
        inner: Arc<dyn Bucket>,
        max_value: usize,
        concurrency: usize,
        attempts: u32,
        expires: bool,
    ) -> std::result::Result<Arc<ChunkedBucket>, Arc<dyn Bucket>> {
        let Some(native_max) = inner.capabilities().max_value_bytes else {
            return Err(inner);
        };
        let mut capabilities = inner.capabilities().clone();
        let chunk_above = (native_max < max_value).then_some(native_max);
        if chunk_above.is_some() {
            capabilities.max_value_bytes = Some(max_value);
            capabilities.chunked_above = chunk_above;
        }
        Ok(Arc::new(ChunkedBucket {
            inner,
            capabilities,
            native_max,
            chunk_above,
            concurrency: concurrency.max(1),
            attempts: attempts.max(2),
            expires,
            marker: Marker::new(),
        }))
    }

    /// The store's bucket underneath.
    pub fn inner(&self) -> &Arc<dyn Bucket> {
        &self.inner
    }

    fn reader(&self) -> ChunkReader {
        ChunkReader {
            inner: self.inner.clone(),
            concurrency: self.concurrency,
            max_value: self.max_value(),
        }
    }

    fn max_value(&self) -> usize {
        self.capabilities.max_value_bytes.unwrap_or(usize::MAX)
    }

    /// Length of the chunks of `key`'s value: the store's limit less the
    /// chunk key's room beyond the guest's key (a store whose item limit
    /// counts the key, memcached's, then still takes every chunk).
    fn chunk_bytes(&self, key: &str) -> u32 {
        let room = CHUNK_KEY_OVERHEAD + key.len();
        let n = self
            .native_max
            .saturating_sub(room)
            .max(self.native_max / 2)
            .max(1);
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Whether a write must read the key first to find chunks it replaces:
    /// once this process has seen the bucket's marker, always; before, it
    /// looks for the marker at most once per [`MARKER_REFRESH`].
    async fn may_hold_chunks(&self) -> Result<bool> {
        if self.marker.seen.load(Ordering::Acquire) {
            return Ok(true);
        }
        let now = self.marker.now_ms();
        let last = self.marker.checked_ms.load(Ordering::Acquire);
        let due = last == 0 || now.saturating_sub(last) >= MARKER_REFRESH.as_millis() as u64;
        // One caller looks; the others go on with what was last seen.
        if !due
            || self
                .marker
                .checked_ms
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return Ok(false);
        }
        if self.inner.exists(MARKER_KEY).await? {
            self.marker.seen.store(true, Ordering::Release);
            return Ok(true);
        }
        Ok(false)
    }

    /// Creates the marker before the bucket's first chunk; returns when it
    /// was created by this call (the manifest switch then waits for
    /// [`MARKER_SETTLE`]).
    async fn ensure_marker(&self) -> Result<Option<Instant>> {
        if self.marker.seen.load(Ordering::Acquire) {
            return Ok(None);
        }
        let condition = if self.inner.capabilities().cas.is_available() {
            WriteCondition::IfAbsent
        } else {
            WriteCondition::Always
        };
        let outcome = self
            .inner
            .set(
                MARKER_KEY,
                b"wasikv: this bucket holds large values in chunks (layout 1)".to_vec(),
                condition,
            )
            .await?;
        self.marker.seen.store(true, Ordering::Release);
        Ok((outcome == WriteOutcome::Written).then(Instant::now))
    }

    /// Reads `key`: the value and, when `versioned`, its version.
    async fn load(&self, key: &str, versioned: bool) -> Result<Option<(Vec<u8>, Option<Version>)>> {
        let stored = stored_key(key);
        let mut previous: Option<WriteId> = None;
        for _ in 0..self.attempts {
            let (raw, version) = if versioned {
                match self.inner.get_versioned(&stored).await? {
                    Some(v) => (v.value, Some(v.version)),
                    None => return Ok(None),
                }
            } else {
                match self.inner.get(&stored).await? {
                    Some(v) => (v, None),
                    None => return Ok(None),
                }
            };
            match self.expand(key, raw).await? {
                Ok(value) => return Ok(Some((value, version))),
                Err(missing) => {
                    if previous == Some(missing.id) {
                        if self.expires {
                            return Ok(None);
                        }
                        return Err(missing.lost(key));
                    }
                    previous = Some(missing.id);
                }
            }
        }
        Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "reading the large value of {key:?} gave up after {} attempts: it was replaced during every read",
                self.attempts
            ),
        ))
    }

    /// The value the stored bytes `raw` of `key` stand for; `Err(missing)`
    /// when a chunk is gone (the value was replaced meanwhile).
    async fn expand(
        &self,
        key: &str,
        raw: Vec<u8>,
    ) -> Result<std::result::Result<Vec<u8>, MissingChunk>> {
        // A plain value (nearly every value) needs no reader.
        if !chunks::needs_escape(&raw) {
            return Ok(Ok(raw));
        }
        self.reader().expand(key, raw).await
    }

    /// Writes the chunks of `value` under a fresh write id.
    async fn write_chunks(&self, key: &str, value: &[u8]) -> Result<(Manifest, PendingChunks)> {
        let manifest = Manifest {
            len: value.len() as u64,
            chunk_bytes: self.chunk_bytes(key),
            id: WriteId::new(rand::random()),
        };
        let pending = PendingChunks {
            inner: self.inner.clone(),
            key: key.to_string(),
            manifest,
            armed: true,
        };
        let count = manifest.chunks();
        let chunk = manifest.chunk_bytes as usize;
        let step = wave_len(self.concurrency, manifest.chunk_bytes);
        let mut index = 0;
        while index < count {
            let wave = index..(index + step).min(count);
            try_join_all(wave.map(|i| {
                let start = i as usize * chunk;
                let part = value[start..start + manifest.chunk_len(i)].to_vec();
                let k = chunk_key(&manifest.id, i, key);
                async move { self.inner.set(&k, part, WriteCondition::Always).await }
            }))
            .await?;
            index += step;
        }
        Ok((manifest, pending))
    }

    /// Deletes the chunks of `manifest`; a failure is logged, never
    /// returned (the write that made them garbage has succeeded; the
    /// collector finds them later).
    async fn delete_chunks(&self, key: &str, manifest: &Manifest) {
        if let Err(e) = delete_chunks(&*self.inner, key, manifest, self.concurrency).await {
            tracing::warn!(
                "chunks of a replaced large value of {key:?} were left for `wasikv gc`: {e}"
            );
        }
    }

    /// The chunked manifest in stored bytes, if they are one.
    fn manifest_of(raw: &[u8]) -> Option<Manifest> {
        match chunks::decode(raw) {
            Ok(Stored::Chunked(m)) => Some(m),
            _ => None,
        }
    }

    async fn write(
        &self,
        key: &str,
        value: Vec<u8>,
        condition: WriteCondition,
    ) -> Result<WriteOutcome> {
        if value.len() > self.max_value() {
            return Err(Error::too_large("value", value.len(), self.max_value()));
        }
        let stored = stored_key(key);
        let escape = chunks::needs_escape(&value);
        let chunk = self.chunk_above.is_some_and(|above| value.len() > above)
            || (escape && chunks::inline_len(value.len()) > self.native_max);
        if !chunk {
            let bytes = if escape {
                chunks::inline(&value)
            } else {
                value
            };
            if condition == WriteCondition::IfAbsent || !self.may_hold_chunks().await? {
                return self.inner.set(&stored, bytes, condition).await;
            }
            return self.replace(&stored, bytes, condition, None).await;
        }
        let created = self.ensure_marker().await?;
        let (manifest, pending) = self.write_chunks(key, &value).await?;
        drop(value);
        if let Some(created) = created {
            tokio::time::sleep(MARKER_SETTLE.saturating_sub(created.elapsed())).await;
        }
        self.replace(&stored, manifest.encode(), condition, Some(pending))
            .await
    }

    /// Switches the stored bytes at `stored` to `bytes` under `condition`,
    /// then deletes the chunks of what it replaced; `pending` (the chunks
    /// `bytes` refers to) is kept on success and deleted on failure.
    async fn replace(
        &self,
        stored: &str,
        bytes: Vec<u8>,
        condition: WriteCondition,
        pending: Option<PendingChunks>,
    ) -> Result<WriteOutcome> {
        let key = chunks::guest_key(stored).unwrap_or(stored).to_string();
        let result = self.switch(stored, bytes, condition).await;
        match (&result, pending) {
            (Ok((WriteOutcome::Written, _)), Some(mut pending)) => pending.armed = false,
            (_, Some(pending)) => pending.delete(self.concurrency).await,
            _ => {}
        }
        let (outcome, replaced) = result?;
        if let Some(old) = replaced {
            self.delete_chunks(&key, &old).await;
        }
        Ok(outcome)
    }

    /// The write itself; returns the chunked manifest it replaced, if any.
    async fn switch(
        &self,
        stored: &str,
        bytes: Vec<u8>,
        condition: WriteCondition,
    ) -> Result<(WriteOutcome, Option<Manifest>)> {
        match condition {
            WriteCondition::IfAbsent => Ok((
                self.inner
                    .set(stored, bytes, WriteCondition::IfAbsent)
                    .await?,
                None,
            )),
            WriteCondition::IfVersion(version) => {
                let current = self.inner.get_versioned(stored).await?;
                let Some(current) = current.filter(|c| c.version == version) else {
                    return Ok((WriteOutcome::ConditionFailed, None));
                };
                let outcome = self
                    .inner
                    .set(stored, bytes, WriteCondition::IfVersion(version))
                    .await?;
                let replaced = (outcome == WriteOutcome::Written)
                    .then(|| Self::manifest_of(&current.value))
                    .flatten();
                Ok((outcome, replaced))
            }
            WriteCondition::Always => {
                if self.inner.capabilities().cas.is_available() {
                    for _ in 0..self.attempts {
                        let current = self.inner.get_versioned(stored).await?;
                        let Some((version, old)) = current
                            .and_then(|c| Self::manifest_of(&c.value).map(|m| (c.version, m)))
                        else {
                            // Nothing chunked to replace (a racing large
                            // write's chunks would be left to the collector).
                            break;
                        };
                        let outcome = self
                            .inner
                            .set(stored, bytes.clone(), WriteCondition::IfVersion(version))
                            .await?;
                        if outcome == WriteOutcome::Written {
                            return Ok((outcome, Some(old)));
                        }
                    }
                }
                Ok((
                    self.inner
                        .set(stored, bytes, WriteCondition::Always)
                        .await?,
                    None,
                ))
            }
        }
    }

    /// The stored values of `keys` (stored keys), natively where the store
    /// reads many at once.
    async fn raw_get_many(&self, stored: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        if self.inner.capabilities().get_many.is_native() {
            return self.inner.get_many(stored).await;
        }
        concurrent_gets(&*self.inner, stored, self.concurrency).await
    }

    /// Expands the stored values of a batch read, re-reading a key one at
    /// a time where a chunk went missing.
    async fn expand_many(
        &self,
        keys: &[String],
        raw: Vec<Option<Vec<u8>>>,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        let mut out = Vec::with_capacity(raw.len());
        for (key, value) in keys.iter().zip(raw) {
            out.push(match value {
                None => None,
                Some(v) => match self.expand(key, v).await? {
                    Ok(v) => Some(v),
                    Err(_) => self.load(key, false).await?.map(|(v, _)| v),
                },
            });
        }
        Ok(out)
    }

    /// The chunked manifests among the current values of `stored` keys,
    /// when the bucket may hold any.
    async fn replaced_manifests(&self, stored: &[String]) -> Result<Vec<(String, Manifest)>> {
        if !self.may_hold_chunks().await? {
            return Ok(Vec::new());
        }
        let current = self.raw_get_many(stored).await?;
        Ok(stored
            .iter()
            .zip(current)
            .filter_map(|(k, v)| {
                let m = Self::manifest_of(v.as_deref()?)?;
                Some((chunks::guest_key(k).unwrap_or(k).to_string(), m))
            })
            .collect())
    }

    /// Deletes chunks that no manifest refers to and that are older than
    /// `grace`: those of a writer that stopped midway (a crash, a timeout)
    /// and those a race between two writers of one key left behind. Lists
    /// the whole bucket; needs list-keys.
    pub async fn collect_garbage(&self, grace: Duration) -> Result<GcReport> {
        if !self.inner.capabilities().list.is_available() {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "this store cannot list keys, so orphaned chunks cannot be found; they go as the store evicts unread items",
            ));
        }
        let mut report = GcReport::default();
        let now_ms = WriteId::new(0).created_ms;
        let grace_ms = grace.as_millis() as u64;
        let mut cursor: Option<Vec<u8>> = None;
        // The current write id of recently checked keys (chunks of one write
        // list together on ordered stores).
        let mut owners: std::collections::HashMap<String, Option<WriteId>> =
            std::collections::HashMap::new();
        loop {
            let page = self.inner.list(cursor.as_deref(), 1000).await?;
            report.keys_scanned += page.keys.len() as u64;
            let mut orphans = Vec::new();
            for stored in &page.keys {
                let Some(chunk) = chunks::parse_chunk_key(stored) else {
                    continue;
                };
                report.chunks_seen += 1;
                if now_ms.saturating_sub(chunk.id.created_ms) < grace_ms {
                    report.chunks_too_young += 1;
                    continue;
                }
                if owners.len() > 10_000 {
                    owners.clear();
                }
                let current = match owners.get(chunk.key) {
                    Some(id) => *id,
                    None => {
                        let raw = self.inner.get(&stored_key(chunk.key)).await?;
                        let id = raw.as_deref().and_then(Self::manifest_of).map(|m| m.id);
                        owners.insert(chunk.key.to_string(), id);
                        id
                    }
                };
                if current != Some(chunk.id) {
                    orphans.push(stored.clone());
                }
            }
            report.chunks_deleted += orphans.len() as u64;
            delete_keys(&*self.inner, &orphans, self.concurrency).await?;
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(report),
            }
        }
    }
}

/// A chunk that was not there.
struct MissingChunk {
    id: WriteId,
    index: u64,
}

impl MissingChunk {
    fn lost(&self, key: &str) -> Error {
        Error::new(
            ErrorKind::Other,
            format!(
                "chunk {} of the large value of {key:?} is missing while its manifest is unchanged: deleted by another client or evicted by the store",
                self.index
            ),
        )
    }
}

/// Chunks written for a manifest not (yet) switched in: deleted if the
/// write fails, or in the background if the write is dropped midway.
struct PendingChunks {
    inner: Arc<dyn Bucket>,
    key: String,
    manifest: Manifest,
    armed: bool,
}

impl PendingChunks {
    async fn delete(mut self, concurrency: usize) {
        self.armed = false;
        if let Err(e) = delete_chunks(&*self.inner, &self.key, &self.manifest, concurrency).await {
            tracing::warn!(
                "chunks of a large write of {:?} that did not happen were left for `wasikv gc`: {e}",
                self.key
            );
        }
    }
}

impl Drop for PendingChunks {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // Dropped midway (a timeout, the guest gone): clean up in the background.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let inner = self.inner.clone();
            let key = std::mem::take(&mut self.key);
            let manifest = self.manifest;
            runtime.spawn(async move {
                let _ = delete_chunks(&*inner, &key, &manifest, 4).await;
            });
        }
    }
}

async fn delete_chunks(
    bucket: &dyn Bucket,
    key: &str,
    manifest: &Manifest,
    concurrency: usize,
) -> Result<()> {
    let keys: Vec<String> = (0..manifest.chunks())
        .map(|i| chunk_key(&manifest.id, i, key))
        .collect();
    delete_keys(bucket, &keys, concurrency).await
}

#[async_trait]
impl Bucket for ChunkedBucket {
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        Ok(self
            .load(key, true)
            .await?
            .map(|(value, version)| Versioned {
                value,
                version: version.expect("a versioned read has a version"),
            }))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.load(key, false).await?.map(|(value, _)| value))
    }

    async fn set(
        &self,
        key: &str,
        value: Vec<u8>,
        condition: WriteCondition,
    ) -> Result<WriteOutcome> {
        self.write(key, value, condition).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let stored = stored_key(key);
        if !self.may_hold_chunks().await? {
            return self.inner.delete(&stored).await;
        }
        let current = self.inner.get(&stored).await?;
        self.inner.delete(&stored).await?;
        if let Some(old) = current.as_deref().and_then(Self::manifest_of) {
            self.delete_chunks(key, &old).await;
        }
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        self.inner.exists(&stored_key(key)).await
    }

    async fn list(&self, cursor: Option<&[u8]>, limit: usize) -> Result<ListPage> {
        let page = self.inner.list(cursor, limit).await?;
        Ok(ListPage {
            keys: page
                .keys
                .into_iter()
                .filter_map(chunks::into_guest_key)
                .collect(),
            next: page.next,
        })
    }

    async fn increment(&self, key: &str, delta: i64) -> Result<i64> {
        self.inner.increment(&stored_key(key), delta).await
    }

    async fn increment_at_least(&self, key: &str, delta: i64, min: i64) -> Result<i64> {
        self.inner
            .increment_at_least(&stored_key(key), delta, min)
            .await
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        let stored: Vec<String> = keys.iter().map(|k| stored_key(k).into_owned()).collect();
        let raw = self.inner.get_many(&stored).await?;
        self.expand_many(keys, raw).await
    }

    /// The budget counts a large value at its full length, known from its
    /// manifest before any chunk is read.
    async fn get_many_within(
        &self,
        keys: &[String],
        max_bytes: usize,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        let stored: Vec<String> = keys.iter().map(|k| stored_key(k).into_owned()).collect();
        let raw = self.inner.get_many_within(&stored, max_bytes).await?;
        let total: usize = raw
            .iter()
            .flatten()
            .map(|v| Self::manifest_of(v).map_or(v.len(), |m| m.len as usize))
            .sum();
        if total > max_bytes {
            return Err(wasikv_core::get_many_too_large(total, max_bytes));
        }
        self.expand_many(keys, raw).await
    }

    async fn set_many(&self, items: Vec<(String, Vec<u8>)>) -> Result<()> {
        let (large, small): (Vec<_>, Vec<_>) = items.into_iter().partition(|(_, v)| {
            chunks::needs_escape(v) || self.chunk_above.is_some_and(|above| v.len() > above)
        });
        for (key, value) in large {
            self.write(&key, value, WriteCondition::Always).await?;
        }
        if small.is_empty() {
            return Ok(());
        }
        let stored: Vec<(String, Vec<u8>)> = small
            .into_iter()
            .map(|(k, v)| (stored_key(&k).into_owned(), v))
            .collect();
        let keys: Vec<String> = stored.iter().map(|(k, _)| k.clone()).collect();
        let replaced = self.replaced_manifests(&keys).await?;
        self.inner.set_many(stored).await?;
        for (key, old) in replaced {
            self.delete_chunks(&key, &old).await;
        }
        Ok(())
    }

    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        let stored: Vec<String> = keys.iter().map(|k| stored_key(k).into_owned()).collect();
        let replaced = self.replaced_manifests(&stored).await?;
        self.inner.delete_many(&stored).await?;
        for (key, old) in replaced {
            self.delete_chunks(&key, &old).await;
        }
        Ok(())
    }

    /// The store's feed without hidden keys, large values joined (a change
    /// whose chunks are gone was replaced meanwhile: a later change follows).
    async fn watch(&self) -> Result<ChangeStream> {
        let feed = self.inner.watch().await?;
        let this = self.reader();
        Ok(Box::pin(feed.filter_map(move |change| {
            let this = this.clone();
            async move {
                match change {
                    Err(e) => Some(Err(e)),
                    Ok(Change::Delete { key }) => {
                        chunks::into_guest_key(key).map(|key| Ok(Change::Delete { key }))
                    }
                    Ok(Change::Set { key, value }) => {
                        let key = chunks::into_guest_key(key)?;
                        match this.expand(&key, value).await {
                            Ok(Ok(value)) => Some(Ok(Change::Set { key, value })),
                            Ok(Err(_missing)) => None,
                            Err(e) => Some(Err(e)),
                        }
                    }
                }
            }
        })))
    }
}

/// What a watch needs to join a large value (owned: the feed outlives calls).
#[derive(Clone)]
struct ChunkReader {
    inner: Arc<dyn Bucket>,
    concurrency: usize,
    max_value: usize,
}

impl ChunkReader {
    /// The value the stored bytes `raw` of `key` stand for; `Err(missing)`
    /// when a chunk is gone (the value was replaced meanwhile).
    async fn expand(
        &self,
        key: &str,
        raw: Vec<u8>,
    ) -> Result<std::result::Result<Vec<u8>, MissingChunk>> {
        match chunks::decode(&raw) {
            Ok(Stored::Plain(_)) => Ok(Ok(raw)),
            Ok(Stored::Inline(value)) => {
                let header = raw.len() - value.len();
                let mut raw = raw;
                raw.drain(..header);
                Ok(Ok(raw))
            }
            Ok(Stored::Chunked(manifest)) => self.fetch(key, &manifest).await,
            Err(bad) => Err(Error::new(
                ErrorKind::InvalidValue,
                format!("the stored value of {key:?} cannot be read: {bad}"),
            )),
        }
    }

    /// Reads and joins the chunks of `manifest`, `concurrency` at a time.
    async fn fetch(
        &self,
        key: &str,
        manifest: &Manifest,
    ) -> Result<std::result::Result<Vec<u8>, MissingChunk>> {
        let len = usize::try_from(manifest.len).unwrap_or(usize::MAX);
        if len > self.max_value {
            return Err(Error::too_large("stored value", len, self.max_value));
        }
        let mut value = Vec::with_capacity(len);
        let count = manifest.chunks();
        let step = wave_len(self.concurrency, manifest.chunk_bytes);
        let mut index = 0;
        while index < count {
            let wave = index..(index + step).min(count);
            let keys: Vec<String> = wave
                .clone()
                .map(|i| chunk_key(&manifest.id, i, key))
                .collect();
            let parts = try_join_all(keys.iter().map(|k| self.inner.get(k))).await?;
            for (i, part) in wave.zip(parts) {
                let Some(part) = part else {
                    return Ok(Err(MissingChunk {
                        id: manifest.id,
                        index: i,
                    }));
                };
                if part.len() != manifest.chunk_len(i) {
                    return Err(Error::new(
                        ErrorKind::InvalidValue,
                        format!(
                            "chunk {i} of the large value of {key:?} is {} bytes, not {} (changed by another client?)",
                            part.len(),
                            manifest.chunk_len(i)
                        ),
                    ));
                }
                value.extend_from_slice(&part);
            }
            index += step;
        }
        Ok(Ok(value))
    }
}
