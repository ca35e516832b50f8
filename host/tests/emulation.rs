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
