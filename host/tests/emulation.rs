//! The emulation layer: the retry budget (an increment that keeps losing its
//! CAS race gives up with a clear `conflict` error after
//! `increment_attempts`, never spinning forever) and the bounded queue of
//! host-local watches.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use wasikv_core::{
    Bucket, Capabilities, ErrorKind, ListPage, Result, Versioned, WriteCondition, WriteOutcome,
};
use wasikv_host::emulate::{EmulatedBucket, EmulationPolicy};
use wasikv_memory::core::MemoryStore;
use wasikv_memory::{MemoryBucket, MemoryConfig};

/// A real memory bucket with a rival writer: right before every conditional
/// write, the rival overwrites the key, so the condition always fails.
struct Rival {
    inner: MemoryBucket,
    conditional_writes: AtomicUsize,
}

#[async_trait]
impl Bucket for Rival {
    fn capabilities(&self) -> &Capabilities {
        self.inner.capabilities()
    }
    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        self.inner.get_versioned(key).await
    }
    async fn set(
        &self,
        key: &str,
        value: Vec<u8>,
        condition: WriteCondition,
    ) -> Result<WriteOutcome> {
        if condition != WriteCondition::Always {
            self.conditional_writes.fetch_add(1, Ordering::SeqCst);
            self.inner
                .set(key, b"7".to_vec(), WriteCondition::Always)
                .await?;
        }
        self.inner.set(key, value, condition).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.inner.delete(key).await
    }
    async fn exists(&self, key: &str) -> Result<bool> {
        self.inner.exists(key).await
    }
    async fn list(&self, cursor: Option<&[u8]>, limit: usize) -> Result<ListPage> {
        self.inner.list(cursor, limit).await
    }
}

#[tokio::test]
async fn exhausted_increment_budget_is_a_clear_conflict() {
    let store = MemoryStore::new();
    let config = MemoryConfig {
        required_only: true,
        ..Default::default()
    };
    let rival = Arc::new(Rival {
        inner: MemoryBucket::new(&store, "contended", &config),
        conditional_writes: AtomicUsize::new(0),
    });
    let policy = EmulationPolicy {
        increment_attempts: 12,
        ..EmulationPolicy::default()
    };
    let bucket = EmulatedBucket::new(rival.clone(), policy);
    let started = Instant::now();
    let err = bucket
        .increment("n", 1)
        .await
        .expect_err("every attempt loses its race");
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.is_retryable());
    assert!(
        err.to_string().contains("gave up after 12 attempts")
            && err.to_string().contains("limits.increment_attempts"),
        "{err}"
    );
    assert_eq!(
        rival.conditional_writes.load(Ordering::SeqCst),
        12,
        "exactly the budget"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "bounded by the backoff cap"
    );
    // The rival's value stands; the failed increment left nothing of its own.
    assert_eq!(bucket.get("n").await.unwrap(), Some(b"7".to_vec()));
}

/// A host-local watcher that falls more than `watch_queue` changes behind
/// loses the oldest ones (and a warning is logged), keeps the newest in
/// order, and never slows the writers; once its stream is dropped, writes
/// stop queueing notifications.
#[tokio::test]
async fn a_slow_host_local_watcher_loses_the_oldest_changes() {
    use futures::StreamExt;
    use wasikv_core::Change;
    let store = MemoryStore::new();
    let policy = EmulationPolicy {
        watch_queue: 4,
        ..EmulationPolicy::default()
    };
    let bucket = EmulatedBucket::new(
        Arc::new(MemoryBucket::new(
            &store,
            "watched",
            &MemoryConfig::default(),
        )),
        policy,
    );
    let mut changes = bucket.watch().await.expect("host-local watch");
    for i in 0..10u8 {
        bucket
            .set("k", vec![b'0' + i], WriteCondition::Always)
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    for _ in 0..4 {
        let change = tokio::time::timeout(Duration::from_secs(5), changes.next())
            .await
            .expect("a queued change")
            .expect("the stream is open")
            .expect("a change");
        seen.push(change);
    }
    let expected: Vec<Change> = (6..10u8)
        .map(|i| Change::Set {
            key: "k".into(),
            value: vec![b'0' + i],
        })
        .collect();
    assert_eq!(seen, expected, "the newest 4 of 10, in order");
    drop(changes);
    // Nobody watches: a write is not queued for anyone.
    bucket
        .set("k", b"x".to_vec(), WriteCondition::Always)
        .await
        .unwrap();
    let mut again = bucket.watch().await.unwrap();
    bucket
        .set("k", b"y".to_vec(), WriteCondition::Always)
        .await
        .unwrap();
    let next = again.next().await.unwrap().unwrap();
    assert_eq!(
        next,
        Change::Set {
            key: "k".into(),
            value: b"y".to_vec()
        }
    );
}

/// A real memory bucket that counts the value bytes it hands out and
/// serves `get-many` natively but without a byte budget (as most networked
/// stores do).
struct Counting {
    inner: MemoryBucket,
    capabilities: Capabilities,
    handed_out: AtomicUsize,
}

impl Counting {
    fn new(store: &MemoryStore, native_get_many: bool) -> Self {
        let inner = MemoryBucket::new(store, "counted", &MemoryConfig::default());
        let mut capabilities = inner.capabilities().clone();
        capabilities.budgeted_get_many = false;
        if !native_get_many {
            capabilities.get_many = wasikv_core::Support::Unsupported;
        }
        Counting {
            inner,
            capabilities,
            handed_out: AtomicUsize::new(0),
        }
    }

    fn count(&self, values: &[Option<Vec<u8>>]) {
        let n: usize = values.iter().flatten().map(Vec::len).sum();
        self.handed_out.fetch_add(n, Ordering::SeqCst);
    }
}

#[async_trait]
impl Bucket for Counting {
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }
    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        self.inner.get_versioned(key).await
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let value = self.inner.get(key).await?;
        self.count(std::slice::from_ref(&value));
        Ok(value)
    }
    async fn set(
        &self,
        key: &str,
        value: Vec<u8>,
        condition: WriteCondition,
    ) -> Result<WriteOutcome> {
        self.inner.set(key, value, condition).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.inner.delete(key).await
    }
    async fn exists(&self, key: &str) -> Result<bool> {
        self.inner.exists(key).await
    }
    async fn list(&self, cursor: Option<&[u8]>, limit: usize) -> Result<ListPage> {
        self.inner.list(cursor, limit).await
    }
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        let values = self.inner.get_many(keys).await?;
        self.count(&values);
        Ok(values)
    }
}

/// Issue 17, item 15: a `get-many` over the byte budget is refused before
/// the host holds much more than the budget, whether the store batches
/// natively without a budget (steps sized for the worst case) or not at
/// all (concurrent gets, in waves sized the same way); a store that sees
/// sizes first (the memory provider) hands out nothing.
#[tokio::test]
async fn get_many_holds_at_most_the_budget_and_one_value() {
    const VALUE: usize = 1 << 20;
    const BUDGET: usize = 8 << 20;
    let keys: Vec<String> = (0..100).map(|i| format!("big-{i}")).collect();
    for native in [true, false] {
        let store = MemoryStore::new();
        let counting = Arc::new(Counting::new(&store, native));
        for key in &keys {
            counting
                .set(key, vec![1; VALUE], WriteCondition::Always)
                .await
                .unwrap();
        }
        let bucket = EmulatedBucket::new(counting.clone(), EmulationPolicy::default());
        let e = bucket
            .get_many_within(&keys, BUDGET, VALUE)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TooLarge, "{e}");
        let held = counting.handed_out.load(Ordering::SeqCst);
        assert!(
            held <= BUDGET + VALUE,
            "native get-many {native}: {held} bytes handed out for a budget of {BUDGET}"
        );
        // Within the budget: every value, in order.
        let got = bucket
            .get_many_within(&keys[..8], BUDGET, VALUE)
            .await
            .unwrap();
        assert_eq!(got.len(), 8);
        assert!(got.iter().all(|v| v.as_ref().map(Vec::len) == Some(VALUE)));
    }
    // A store that sees sizes first refuses without handing anything out.
    let store = MemoryStore::new();
    let memory = Arc::new(MemoryBucket::new(&store, "sized", &MemoryConfig::default()));
    assert!(memory.capabilities().budgeted_get_many);
    for key in &keys {
        memory
            .set(key, vec![1; VALUE], WriteCondition::Always)
            .await
            .unwrap();
    }
    let e = memory.get_many_within(&keys, BUDGET).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooLarge, "{e}");
}
