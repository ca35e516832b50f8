//! Group commit: writes that arrive while a commit is in flight share the
//! next one, each still acknowledged with its own outcome.
//!
//! Deterministic: the test holds the file's write transaction itself, so the
//! committer cannot start until every write is queued behind it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasikv_core::{Bucket, ErrorKind, WriteCondition};
use wasikv_embedded::EmbeddedBucket;
use wasikv_embedded::core::EmbeddedStore;

/// Waits until `n` writes wait behind the held transaction.
async fn until_waiting(store: &EmbeddedStore, n: u64) {
    let started = Instant::now();
    while store.waiting_writes() < n {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "only {} of {n} writes waiting",
            store.waiting_writes()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_writes_share_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(&dir.path().join("group.redb")).unwrap());
    let bucket = EmbeddedBucket::new(store.clone(), "group");

    let held = store.db().begin_write().unwrap();
    let writes: Vec<_> = (0..64)
        .map(|i| {
            let bucket = bucket.clone();
            tokio::spawn(async move {
                bucket
                    .set(&format!("k{i}"), vec![i as u8], WriteCondition::Always)
                    .await
            })
        })
        .collect();
    // The committer has taken the first write (or more) and waits for the
    // file's write lock; the rest queue behind it.
    until_waiting(&store, 64).await;
    held.abort().unwrap();
    for write in writes {
        write.await.unwrap().unwrap();
    }
    assert_eq!(store.committed_writes(), 64);
    assert!(
        store.commits() <= 2,
        "64 queued writes took {} commits",
        store.commits()
    );
    for i in 0..64 {
        assert_eq!(
            bucket.get(&format!("k{i}")).await.unwrap(),
            Some(vec![i as u8])
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_write_does_not_fail_its_group() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(&dir.path().join("group.redb")).unwrap());
    let bucket = EmbeddedBucket::new(store.clone(), "group");
    bucket
        .set("text", b"not a number".to_vec(), WriteCondition::Always)
        .await
        .unwrap();
    let before = store.commits();

    let held = store.db().begin_write().unwrap();
    let mut writes = Vec::new();
    for i in 0..20 {
        let bucket = bucket.clone();
        writes.push(tokio::spawn(async move {
            if i % 2 == 0 {
                bucket.increment("text", 1).await.map(|_| ())
            } else {
                bucket
                    .set(&format!("k{i}"), b"v".to_vec(), WriteCondition::Always)
                    .await
                    .map(|_| ())
            }
        }));
    }
    until_waiting(&store, 20).await;
    held.abort().unwrap();
    for (i, write) in writes.into_iter().enumerate() {
        let outcome = write.await.unwrap();
        if i % 2 == 0 {
            assert_eq!(outcome.unwrap_err().kind(), ErrorKind::InvalidValue);
        } else {
            outcome.unwrap();
            assert_eq!(
                bucket.get(&format!("k{i}")).await.unwrap(),
                Some(b"v".to_vec())
            );
        }
    }
    assert!(
        store.commits() - before <= 2,
        "{} commits",
        store.commits() - before
    );
    assert_eq!(
        bucket.get("text").await.unwrap(),
        Some(b"not a number".to_vec())
    );
}

/// Eight writers with one write each in flight: their writes share commits
/// (one writer alone commits once per write, see the crash test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(&dir.path().join("group.redb")).unwrap());
    let tasks: Vec<_> = (0..8)
        .map(|w| {
            let bucket = EmbeddedBucket::new(store.clone(), "writers");
            tokio::spawn(async move {
                for i in 0..200 {
                    bucket
                        .set(&format!("{w}-{i}"), vec![1; 16], WriteCondition::Always)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(store.committed_writes(), 1600);
    assert!(
        store.commits() * 2 < store.committed_writes(),
        "1600 concurrent writes took {} commits",
        store.commits()
    );
}
