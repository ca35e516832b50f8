//! The emulation layer: the one place where wasikv builds the optional
//! operations a store lacks out of the required ones, and where batches are
//! deduplicated and chunked to a store's limits.
//!
//! * `increment` without native support: a CAS retry loop (versioned get,
//!   conditional set) with jittered exponential backoff and a bounded number of
//!   attempts; it gives up with a `conflict` error, never livelocks.
//! * `get-many`, `set-many`, `delete-many` without native support: single
//!   operations with bounded concurrency.
//! * Every batch: repeated keys in `set-many`/`delete-many` are deduplicated
//!   (the last occurrence wins) and native batches are chunked to the store's
//!   `max_batch_items` (reads) and `write_batch_limit` (writes).
//! * Values over the store's own limit: chunks behind a manifest
//!   ([`crate::chunked`]), below every other emulation here.
//! * `watch` without a native change feed: host-local notifications of the
//!   writes made through this layer (so through this host process), from a
//!   bounded queue per bucket.
//!
//! [`EmulatedBucket`] is itself a [`Bucket`] whose capabilities say which
//! operations are emulated and how, so the behavior suite runs against it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::try_join_all;
use tokio::sync::broadcast;

use crate::chunked::ChunkedBucket;
use wasikv_core::{
    Bucket, Capabilities, Change, ChangeStream, EmulationScope, Error, ErrorKind, ImmediateBucket,
    ListPage, Result, Support, Versioned, WriteCondition, WriteOutcome, counter,
};

/// How increment is emulated, as shown in the matrix.
pub const INCREMENT_HOW: &str = "CAS retry loop";
/// How get-many is emulated.
pub const GET_MANY_HOW: &str = "concurrent gets";
/// How set-many is emulated.
pub const SET_MANY_HOW: &str = "concurrent sets";
/// How delete-many is emulated.
pub const DELETE_MANY_HOW: &str = "concurrent deletes";
/// How watch is emulated.
pub const WATCH_HOW: &str = "host-local notifications";

/// Tuning of the emulation.
#[derive(Debug, Clone, Copy)]
pub struct EmulationPolicy {
    /// Concurrent single operations in an emulated batch.
    pub batch_concurrency: usize,
    /// Attempts of an emulated increment before giving up.
    pub increment_attempts: u32,
    /// First backoff after a lost race; doubles per attempt up to `max_backoff`.
    pub base_backoff: Duration,
    /// Longest backoff.
    pub max_backoff: Duration,
    /// Changes queued for a host-local watcher; a watcher further behind
    /// loses the oldest ones (logged with their count).
    pub watch_queue: usize,
    /// Largest value (`limits.max_value_bytes`): values over a store's own
    /// limit up to this one are stored in chunks.
    pub max_value_bytes: usize,
    /// The bucket's `ttl`: its keys expire, so a large value's chunks
    /// (written just before its manifest) may expire just before it.
    pub ttl: Option<Duration>,
}

impl Default for EmulationPolicy {
    fn default() -> Self {
        EmulationPolicy {
            batch_concurrency: 16,
            increment_attempts: 100,
            base_backoff: Duration::from_micros(200),
            max_backoff: Duration::from_millis(50),
            watch_queue: 1024,
            max_value_bytes: 16 << 20,
            ttl: None,
        }
    }
}

/// The capabilities a bucket has behind the emulation layer of a host whose
/// `limits.max_value_bytes` is `max_value` (values over the store's own
/// limit are chunked; `max_value_bytes` stays the store's, for the matrix).
pub fn emulated_capabilities(native: &Capabilities, max_value: usize) -> Capabilities {
    let mut caps = native.clone();
    if caps.chunked_above.is_none() {
        caps.chunked_above = native.max_value_bytes.filter(|&n| n < max_value);
    }
    let emulate = |support: Support, how: &'static str, needs: Support| match support {
        Support::Unsupported if needs.is_available() => Support::Emulated {
            how,
            scope: EmulationScope::Store,
        },
        other => other,
    };
    caps.increment = emulate(caps.increment, INCREMENT_HOW, native.cas);
    // The CAS loop checks a bound before it writes.
    caps.bounded_increment =
        native.bounded_increment || (caps.increment.is_available() && native.cas.is_available());
    caps.get_many = emulate(caps.get_many, GET_MANY_HOW, native.get);
    caps.set_many = emulate(caps.set_many, SET_MANY_HOW, native.set);
    if !native.set_many.is_native() {
        caps.set_many_atomicity = wasikv_core::BatchAtomicity::PerItem;
    }
    caps.delete_many = emulate(caps.delete_many, DELETE_MANY_HOW, native.delete);
    if caps.watch == Support::Unsupported {
        caps.watch = Support::Emulated {
            how: WATCH_HOW,
            scope: EmulationScope::ProcessLocal,
        };
    }
    caps
}

/// A bucket with every optional operation available (native or emulated).
pub struct EmulatedBucket {
    /// The store's bucket, behind the chunking layer where it has one.
    inner: Arc<dyn Bucket>,
    /// The chunking layer, where the store declares a value limit.
    chunked: Option<Arc<ChunkedBucket>>,
    capabilities: Capabilities,
    policy: EmulationPolicy,
    /// Host-local change notifications (when the store has no feed).
    changes: broadcast::Sender<Change>,
    /// Live host-local watches: writes check this (one atomic load) rather
    /// than the channel's receiver count (a lock).
    watchers: Arc<AtomicUsize>,
    /// Held across a write and its notification while someone watches, so
    /// that notifications follow the order of the writes.
    write_order: tokio::sync::Mutex<()>,
}

impl EmulatedBucket {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Bucket>, policy: EmulationPolicy) -> Self {
        let (inner, chunked) = match ChunkedBucket::wrap(
            inner,
            policy.max_value_bytes,
            policy.batch_concurrency,
            policy.increment_attempts,
            policy.ttl.is_some(),
        ) {
            Ok(chunked) => (chunked.clone() as Arc<dyn Bucket>, Some(chunked)),
            Err(inner) => (inner, None),
        };
        let capabilities = emulated_capabilities(inner.capabilities(), policy.max_value_bytes);
        EmulatedBucket {
            inner,
            chunked,
            capabilities,
            changes: broadcast::channel(policy.watch_queue.max(1)).0,
            watchers: Arc::new(AtomicUsize::new(0)),
            write_order: tokio::sync::Mutex::new(()),
            policy,
        }
    }

    /// The chunking layer, where the store declares a value limit.
    pub fn chunked(&self) -> Option<&Arc<ChunkedBucket>> {
        self.chunked.as_ref()
    }

    /// The store's synchronous single-key calls, served as they are
    /// (reads always, writes while no host-local watcher needs telling):
    /// `None` for networked stores and behind the chunking layer.
    pub fn immediate(&self, write: bool) -> Option<&dyn ImmediateBucket> {
        if self.chunked.is_some() || (write && self.watched()) {
            return None;
        }
        self.inner.immediate()
    }

    /// Whether writes must notify host-local watchers.
    fn watched(&self) -> bool {
        self.watchers.load(Ordering::Acquire) > 0 && !self.native().watch.is_native()
    }

    fn notify(&self, change: Change) {
        // No receiver left: nobody to tell.
        let _ = self.changes.send(change);
    }

    /// Runs `write`, then (if watched) notifies `changes(result)`, in write order.
    async fn write_then_notify<T, Fut>(
        &self,
        write: Fut,
        changes: impl FnOnce(&T) -> Vec<Change>,
    ) -> Result<T>
    where
        Fut: std::future::Future<Output = Result<T>>,
    {
        if !self.watched() {
            return write.await;
        }
        let _order = self.write_order.lock().await;
        let result = write.await?;
        for change in changes(&result) {
            self.notify(change);
        }
        Ok(result)
    }

    fn native(&self) -> &Capabilities {
        self.inner.capabilities()
    }

    fn chunk_size(&self) -> usize {
        self.native().max_batch_items.unwrap_or(usize::MAX).max(1)
    }

    fn write_chunk_size(&self) -> usize {
        self.native()
            .write_batch_limit()
            .unwrap_or(usize::MAX)
            .max(1)
    }

    fn concurrency(&self) -> usize {
        self.policy.batch_concurrency.max(1)
    }

    /// `increment` as a CAS retry loop; `check` sees the new counter before
    /// it is written and can refuse it (nothing is written then).
    async fn increment_by_cas(
        &self,
        key: &str,
        delta: i64,
        check: impl Fn(i64) -> Result<()>,
    ) -> Result<i64> {
        let attempts = self.policy.increment_attempts.max(1);
        for attempt in 0..attempts {
            let current = self.inner.get_versioned(key).await?;
            let (new, condition) = match current {
                Some(Versioned { value, version }) => (
                    counter::apply(Some(&value), delta)?,
                    WriteCondition::IfVersion(version),
                ),
                None => (counter::apply(None, delta)?, WriteCondition::IfAbsent),
            };
            check(new)?;
            match self.inner.set(key, counter::format(new), condition).await? {
                WriteOutcome::Written => return Ok(new),
                WriteOutcome::ConditionFailed => {
                    if attempt + 1 < attempts {
                        tokio::time::sleep(self.backoff(attempt)).await;
                    }
                }
            }
        }
        Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "increment of {key:?} gave up after {attempts} attempts: other writers kept changing it (limits.increment_attempts)"
            ),
        ))
    }

    /// Full-jitter exponential backoff.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .policy
            .base_backoff
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.policy.max_backoff);
        exp.mul_f64(rand::random::<f64>())
    }
}

/// A `u64` delta of the 0.2.0-draft interface as the signed delta counters
/// use: over `i64::MAX` is refused before anything is written.
pub fn signed_delta(delta: u64) -> Result<i64> {
    i64::try_from(delta).map_err(|_| {
        Error::new(
            ErrorKind::InvalidValue,
            format!("increment delta {delta} is over the signed 64-bit range counters use"),
        )
    })
}

/// A counter as the 0.2.0-draft interface's `u64`. The increment is bounded
/// below by 0 before its write; a concurrent writer may still have made it
/// negative on the read-then-increment path.
pub fn unsigned_counter(n: i64) -> Result<u64> {
    u64::try_from(n).map_err(|_| {
        Error::new(
            ErrorKind::InvalidValue,
            format!("the counter is now {n}, which the 0.2.0-draft interface (u64) cannot return"),
        )
    })
}

/// Counts a live host-local watch while it exists.
struct WatcherGuard(Arc<AtomicUsize>);

impl WatcherGuard {
    fn new(count: Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        WatcherGuard(count)
    }
}

impl Drop for WatcherGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Keeps the last occurrence of each key, in order of last occurrence.
pub fn dedup_last_wins(items: Vec<(String, Vec<u8>)>) -> Vec<(String, Vec<u8>)> {
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(items.len());
    for (i, (key, _)) in items.iter().enumerate() {
        last.insert(key.as_str(), i);
    }
    if last.len() == items.len() {
        return items;
    }
    let keep: Vec<bool> = {
        let mut keep = vec![false; items.len()];
        for &i in last.values() {
            keep[i] = true;
        }
        keep
    };
    items
        .into_iter()
        .zip(keep)
        .filter_map(|(item, k)| k.then_some(item))
        .collect()
}

/// `items` in owned chunks of at most `size` (no copies of the values).
fn owned_chunks<T>(items: Vec<T>, size: usize) -> impl Iterator<Item = Vec<T>> {
    let mut items = items.into_iter().peekable();
    std::iter::from_fn(move || {
        items.peek()?;
        Some(items.by_ref().take(size.max(1)).collect())
    })
}

/// Distinct keys, first occurrence order.
pub fn dedup_keys(keys: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::with_capacity(keys.len());
    keys.iter()
        .filter(|k| seen.insert(k.as_str()))
        .cloned()
        .collect()
}

#[async_trait]
impl Bucket for EmulatedBucket {
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        self.inner.get_versioned(key).await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.inner.get(key).await
    }

    async fn set(
        &self,
        key: &str,
        value: Vec<u8>,
        condition: WriteCondition,
    ) -> Result<WriteOutcome> {
        if !self.watched() {
            return self.inner.set(key, value, condition).await;
        }
        let change = Change::Set {
            key: key.to_string(),
            value: value.clone(),
        };
        self.write_then_notify(
            self.inner.set(key, value, condition),
            |outcome| match outcome {
                WriteOutcome::Written => vec![change],
                WriteOutcome::ConditionFailed => Vec::new(),
            },
        )
        .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.write_then_notify(self.inner.delete(key), |_| {
            vec![Change::Delete {
                key: key.to_string(),
            }]
        })
        .await
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        self.inner.exists(key).await
    }

    async fn list(&self, cursor: Option<&[u8]>, limit: usize) -> Result<ListPage> {
        self.inner.list(cursor, limit).await
    }

    async fn increment(&self, key: &str, delta: i64) -> Result<i64> {
        self.increment_at_least(key, delta, i64::MIN).await
    }

    /// Natively where the store checks and adds in one step (or when
    /// `min` is `i64::MIN`: no bound), else by the CAS loop (the bound
    /// checked before the write); a store with native increment but no CAS
    /// is checked by a read first, which a concurrent write can slip past
    /// (no such provider exists).
    async fn increment_at_least(&self, key: &str, delta: i64, min: i64) -> Result<i64> {
        let native = self.native().increment.is_native();
        let increment = async {
            if native && min == i64::MIN {
                self.inner.increment(key, delta).await
            } else if native && self.native().bounded_increment {
                self.inner.increment_at_least(key, delta, min).await
            } else if self.native().cas.is_available() {
                self.increment_by_cas(key, delta, |n| counter::check_at_least(n, min))
                    .await
            } else if native {
                let current = self.inner.get(key).await?;
                counter::apply_at_least(current.as_deref(), delta, min)?;
                self.inner.increment(key, delta).await
            } else {
                Err(Error::unsupported("increment"))
            }
        };
        self.write_then_notify(increment, |n| {
            vec![Change::Set {
                key: key.to_string(),
                value: counter::format(*n),
            }]
        })
        .await
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        if self.native().get_many.is_native() {
            let mut out = Vec::with_capacity(keys.len());
            for chunk in keys.chunks(self.chunk_size()) {
                let values = self.inner.get_many(chunk).await?;
                if values.len() != chunk.len() {
                    return Err(Error::new(
                        ErrorKind::Other,
                        format!(
                            "get-many returned {} values for {} keys",
                            values.len(),
                            chunk.len()
                        ),
                    ));
                }
                out.extend(values);
            }
            return Ok(out);
        }
        concurrent_gets(&*self.inner, keys, self.concurrency()).await
    }

    async fn set_many(&self, items: Vec<(String, Vec<u8>)>) -> Result<()> {
        let items = dedup_last_wins(items);
        if self.watched() {
            let changes: Vec<Change> = items
                .iter()
                .map(|(key, value)| Change::Set {
                    key: key.clone(),
                    value: value.clone(),
                })
                .collect();
            return self
                .write_then_notify(self.set_many_deduped(items), |_| changes)
                .await;
        }
        self.set_many_deduped(items).await
    }

    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        let keys = dedup_keys(keys);
        self.write_then_notify(self.delete_many_distinct(&keys), |_| {
            keys.iter()
                .map(|key| Change::Delete { key: key.clone() })
                .collect()
        })
        .await
    }

    async fn watch(&self) -> Result<ChangeStream> {
        if self.native().watch.is_native() {
            return self.inner.watch().await;
        }
        let receiver = self.changes.subscribe();
        let watching = WatcherGuard::new(self.watchers.clone());
        Ok(Box::pin(futures::stream::unfold(
            (receiver, watching),
            |(mut receiver, watching)| async move {
                loop {
                    match receiver.recv().await {
                        Ok(change) => return Some((Ok(change), (receiver, watching))),
                        Err(broadcast::error::RecvError::Lagged(lost)) => tracing::warn!(
                            "a host-local watcher fell behind: {lost} changes dropped (limits.watch_queue)"
                        ),
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            },
        )))
    }
}

impl EmulatedBucket {
    /// `get-many` that holds at most `max_bytes` of values plus one step:
    /// `TooLarge` as soon as the values total more than `max_bytes`. Keys
    /// that could not pass the remaining budget even if every value were
    /// `max_value` bytes go in one plain batch; otherwise a store that sees
    /// sizes first ([`Capabilities::budgeted_get_many`]) gets whole chunks and
    /// the remaining budget, and any other is asked for only as many keys at
    /// a time as fit that bound (at least one), so what is held never passes
    /// `max_bytes + max_value`.
    pub async fn get_many_within(
        &self,
        keys: &[String],
        max_bytes: usize,
        max_value: usize,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        let native = self.native();
        let mut out = Vec::with_capacity(keys.len());
        let mut total = 0usize;
        let mut rest = keys;
        while !rest.is_empty() {
            let remaining = max_bytes.saturating_sub(total);
            let worst_case_fits = (remaining / max_value.max(1)).max(1);
            let (n, values) = if native.get_many.is_native()
                && native.budgeted_get_many
                && rest.len().min(self.chunk_size()) > worst_case_fits
            {
                // Could pass the budget: the store checks sizes first.
                let n = rest.len().min(self.chunk_size());
                (n, self.inner.get_many_within(&rest[..n], remaining).await?)
            } else if native.get_many.is_native() {
                // Cannot pass the budget even at the value limit: a plain batch.
                let n = rest.len().min(self.chunk_size()).min(worst_case_fits);
                (n, self.inner.get_many(&rest[..n]).await?)
            } else {
                let n = rest.len().min(self.concurrency()).min(worst_case_fits);
                let wave = try_join_all(rest[..n].iter().map(|key| self.inner.get(key))).await?;
                (n, wave)
            };
            if values.len() != n {
                return Err(Error::new(
                    ErrorKind::Other,
                    format!("get-many returned {} values for {n} keys", values.len()),
                ));
            }
            total += values.iter().flatten().map(Vec::len).sum::<usize>();
            if total > max_bytes {
                return Err(wasikv_core::get_many_too_large(total, max_bytes));
            }
            out.extend(values);
            rest = &rest[n..];
        }
        Ok(out)
    }

    /// `increment` for the 0.2.0-draft interface, whose counters are `u64`:
    /// [`Bucket::increment_at_least`] with a bound of 0, so a counter that
    /// is (or would become) negative is an `InvalidValue` error and is left
    /// unchanged.
    pub async fn increment_unsigned(&self, key: &str, delta: u64) -> Result<u64> {
        let n = self
            .increment_at_least(key, signed_delta(delta)?, 0)
            .await?;
        unsigned_counter(n)
    }

    async fn set_many_deduped(&self, items: Vec<(String, Vec<u8>)>) -> Result<()> {
        if self.native().set_many.is_native() {
            for chunk in owned_chunks(items, self.write_chunk_size()) {
                self.inner.set_many(chunk).await?;
            }
            return Ok(());
        }
        for wave in owned_chunks(items, self.concurrency()) {
            try_join_all(wave.into_iter().map(|(key, value)| async move {
                self.inner.set(&key, value, WriteCondition::Always).await
            }))
            .await?;
        }
        Ok(())
    }

    async fn delete_many_distinct(&self, keys: &[String]) -> Result<()> {
        delete_keys(&*self.inner, keys, self.concurrency()).await
    }
}

/// The values of `keys` by single gets, `concurrency` at a time.
pub(crate) async fn concurrent_gets(
    bucket: &dyn Bucket,
    keys: &[String],
    concurrency: usize,
) -> Result<Vec<Option<Vec<u8>>>> {
    let mut out = Vec::with_capacity(keys.len());
    for wave in keys.chunks(concurrency.max(1)) {
        out.extend(try_join_all(wave.iter().map(|key| bucket.get(key))).await?);
    }
    Ok(out)
}

/// Deletes distinct `keys`: in native batches of the store's write batch
/// limit where it has them, else by single deletes `concurrency` at a time.
pub(crate) async fn delete_keys(
    bucket: &dyn Bucket,
    keys: &[String],
    concurrency: usize,
) -> Result<()> {
    let caps = bucket.capabilities();
    if caps.delete_many.is_native() {
        let size = caps.write_batch_limit().unwrap_or(usize::MAX).max(1);
        for batch in keys.chunks(size) {
            bucket.delete_many(batch).await?;
        }
        return Ok(());
    }
    for wave in keys.chunks(concurrency.max(1)) {
        try_join_all(wave.iter().map(|key| bucket.delete(key))).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_keeps_last_occurrence() {
        let items = vec![
            ("a".to_string(), b"1".to_vec()),
            ("b".to_string(), b"x".to_vec()),
            ("a".to_string(), b"2".to_vec()),
        ];
        let out = dedup_last_wins(items);
        assert_eq!(
            out,
            vec![
                ("b".to_string(), b"x".to_vec()),
                ("a".to_string(), b"2".to_vec())
            ]
        );
        assert_eq!(
            dedup_keys(&["a".into(), "b".into(), "a".into()]),
            vec!["a".to_string(), "b".to_string()]
        );
    }

    #[test]
    fn emulated_capabilities_label_the_fallbacks() {
        let caps = emulated_capabilities(&Capabilities::required(), 16 << 20);
        assert_eq!(caps.increment.to_string(), "emulated (CAS retry loop)");
        assert_eq!(caps.get_many.to_string(), "emulated (concurrent gets)");
        let mut no_cas = Capabilities::required();
        no_cas.cas = Support::Unsupported;
        assert_eq!(
            emulated_capabilities(&no_cas, 16 << 20).increment,
            Support::Unsupported
        );
    }
}
