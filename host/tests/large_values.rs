//! Large values behind the chunking layer, seen from the store: the chunks of
//! replaced and deleted values are gone, buckets that never held a large value
//! pay no read before a write, orphans are collected by age, and a writer
//! killed midway (a real process, SIGKILL) leaves the old value readable by
//! the next process, its orphans collected afterwards.
//!
//! The contracts themselves (round trips, CAS, batches, listing, readers
//! during replacements) are in the behavior suite (`tests/behavior.rs`).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use wasikv_core::chunks::{self, Stored, WriteId};
use wasikv_core::{
    Bucket, Capabilities, ListPage, Result, Versioned, WriteCondition, WriteOutcome,
};
use wasikv_host::emulate::{EmulatedBucket, EmulationPolicy};
use wasikv_memory::core::MemoryStore;
use wasikv_memory::{MemoryBucket, MemoryConfig};

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u64 * 31 + u64::from(seed) * 97) % 251) as u8)
        .collect()
}

/// Every stored key of `raw` that is a chunk key.
async fn chunk_keys(raw: &dyn Bucket) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor: Option<Vec<u8>> = None;
    loop {
        let page = raw.list(cursor.as_deref(), 500).await.unwrap();
        out.extend(
            page.keys
                .into_iter()
                .filter(|k| chunks::parse_chunk_key(k).is_some()),
        );
        match page.next {
            Some(next) => cursor = Some(next),
            None => return out,
        }
    }
}

/// The chunk count the stored manifest of `key` refers to (0 for a plain value).
async fn referenced_chunks(raw: &dyn Bucket, key: &str) -> usize {
    match raw.get(&chunks::stored_key(key)).await.unwrap() {
        Some(stored) => match chunks::decode(&stored).unwrap() {
            Stored::Chunked(m) => m.chunks() as usize,
            _ => 0,
        },
        None => 0,
    }
}

/// A memory bucket with a value limit that counts reads.
struct Counting {
    inner: MemoryBucket,
    reads: AtomicUsize,
    exists: AtomicUsize,
}

#[async_trait]
impl Bucket for Counting {
    fn capabilities(&self) -> &Capabilities {
        self.inner.capabilities()
    }
    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.get_versioned(key).await
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key).await
    }
    async fn set(&self, key: &str, value: Vec<u8>, c: WriteCondition) -> Result<WriteOutcome> {
        self.inner.set(key, value, c).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.inner.delete(key).await
    }
    async fn exists(&self, key: &str) -> Result<bool> {
        self.exists.fetch_add(1, Ordering::SeqCst);
        self.inner.exists(key).await
    }
    async fn list(&self, cursor: Option<&[u8]>, limit: usize) -> Result<ListPage> {
        self.inner.list(cursor, limit).await
    }
}

/// A memory bucket with a value limit; `required_only` for the wrappers
/// below, which forward only the required operations.
fn memory(store: &MemoryStore, name: &str, max_value: usize) -> MemoryBucket {
    let config = MemoryConfig {
        max_value_bytes: Some(max_value),
        required_only: true,
        ..Default::default()
    };
    MemoryBucket::new(store, name, &config)
}

#[tokio::test]
async fn chunks_of_replaced_and_deleted_values_are_removed() {
    let store = MemoryStore::new();
    let raw: Arc<dyn Bucket> = Arc::new(memory(&store, "gc", 1000));
    let b = EmulatedBucket::new(raw.clone(), EmulationPolicy::default());
    let check = |what: &'static str| {
        let raw = raw.clone();
        async move {
            let mut expected = 0;
            for key in ["a", "b", "\0c"] {
                expected += referenced_chunks(&*raw, key).await;
            }
            let found = chunk_keys(&*raw).await.len();
            assert_eq!(found, expected, "{what}: chunk keys left over");
        }
    };
    let set = |key: &'static str, value: Vec<u8>| b.set(key, value, WriteCondition::Always);
    set("a", pattern(10_000, 1)).await.unwrap();
    assert!(referenced_chunks(&*raw, "a").await >= 10);
    check("first large value").await;
    set("a", pattern(25_000, 2)).await.unwrap();
    check("large over large").await;
    set("a", b"small".to_vec()).await.unwrap();
    check("small over large").await;
    set("\0c", pattern(5_000, 3)).await.unwrap();
    b.delete("\0c").await.unwrap();
    check("deleted").await;

    // CAS: a lost swap leaves nothing; a won one removes what it replaced.
    set("b", pattern(4_000, 4)).await.unwrap();
    let read = b.get_versioned("b").await.unwrap().unwrap();
    set("b", pattern(4_000, 5)).await.unwrap();
    let lost = b
        .set(
            "b",
            pattern(9_000, 6),
            WriteCondition::IfVersion(read.version),
        )
        .await
        .unwrap();
    assert_eq!(lost, WriteOutcome::ConditionFailed);
    check("stale swap").await;
    let read = b.get_versioned("b").await.unwrap().unwrap();
    let won = b
        .set(
            "b",
            pattern(9_000, 7),
            WriteCondition::IfVersion(read.version),
        )
        .await
        .unwrap();
    assert_eq!(won, WriteOutcome::Written);
    check("swap").await;
    let refused = b
        .set("b", pattern(3_000, 8), WriteCondition::IfAbsent)
        .await
        .unwrap();
    assert_eq!(refused, WriteOutcome::ConditionFailed);
    check("create-if-absent of an existing key").await;

    // Batches.
    b.set_many(vec![
        ("a".into(), pattern(3_000, 9)),
        ("\0c".into(), pattern(2_500, 10)),
    ])
    .await
    .unwrap();
    check("set-many of large values").await;
    b.set_many(vec![("a".into(), b"x".to_vec())]).await.unwrap();
    check("set-many small over large").await;
    b.delete_many(&["a".into(), "b".into(), "\0c".into()])
        .await
        .unwrap();
    check("delete-many").await;
    assert!(chunk_keys(&*raw).await.is_empty());
}

#[tokio::test]
async fn buckets_without_large_values_read_nothing_before_writes() {
    let store = MemoryStore::new();
    let counting = Arc::new(Counting {
        inner: memory(&store, "plain", 1000),
        reads: AtomicUsize::new(0),
        exists: AtomicUsize::new(0),
    });
    let b = EmulatedBucket::new(counting.clone(), EmulationPolicy::default());
    for i in 0..200 {
        b.set(
            &format!("k{}", i % 7),
            b"v".to_vec(),
            WriteCondition::Always,
        )
        .await
        .unwrap();
        if i % 10 == 0 {
            b.delete("k3").await.unwrap();
        }
    }
    assert_eq!(
        counting.reads.load(Ordering::SeqCst),
        0,
        "small writes read nothing"
    );
    let marker_looks = counting.exists.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&marker_looks),
        "the marker is looked for about once a second, not per write: {marker_looks}"
    );
    // Once a large value exists, a write reads the key it replaces.
    b.set("big", pattern(5_000, 1), WriteCondition::Always)
        .await
        .unwrap();
    let before = counting.reads.load(Ordering::SeqCst);
    b.set("big", b"small".to_vec(), WriteCondition::Always)
        .await
        .unwrap();
    assert_eq!(counting.reads.load(Ordering::SeqCst), before + 1);
    assert!(chunk_keys(&counting.inner).await.is_empty());
}

#[tokio::test]
async fn orphans_older_than_the_grace_period_are_collected() {
    let store = MemoryStore::new();
    let raw: Arc<dyn Bucket> = Arc::new(memory(&store, "orphans", 1000));
    let b = EmulatedBucket::new(raw.clone(), EmulationPolicy::default());
    let live = pattern(7_000, 1);
    b.set("live", live.clone(), WriteCondition::Always)
        .await
        .unwrap();
    let live_chunks = chunk_keys(&*raw).await.len();
    // What a crashed writer leaves: chunks under write ids no manifest names.
    let hours_ago = WriteId::new(1).created_ms - 2 * 3600 * 1000;
    let old = |random| WriteId {
        created_ms: hours_ago,
        random,
    };
    for (id, key) in [
        (old(1), "live"),
        (old(2), "never-switched"),
        (WriteId::new(3), "young"),
    ] {
        for i in 0..3 {
            raw.set(
                &chunks::chunk_key(&id, i, key),
                vec![0; 10],
                WriteCondition::Always,
            )
            .await
            .unwrap();
        }
    }
    let chunked = b.chunked().expect("a store with a value limit is chunked");
    let report = chunked
        .collect_garbage(Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(report.chunks_deleted, 6, "{report:?}");
    assert_eq!(
        report.chunks_too_young as usize,
        live_chunks + 3,
        "{report:?}"
    );
    assert_eq!(chunk_keys(&*raw).await.len(), live_chunks + 3);
    assert_eq!(b.get("live").await.unwrap(), Some(live));
    let report = chunked.collect_garbage(Duration::ZERO).await.unwrap();
    assert_eq!(report.chunks_deleted, 3, "{report:?}");
    assert_eq!(chunk_keys(&*raw).await.len(), live_chunks);
}

/// A memory bucket whose chunk writes take a while.
struct SlowChunks(MemoryBucket);

#[async_trait]
impl Bucket for SlowChunks {
    fn capabilities(&self) -> &Capabilities {
        self.0.capabilities()
    }
    async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        self.0.get_versioned(key).await
    }
    async fn set(&self, key: &str, value: Vec<u8>, c: WriteCondition) -> Result<WriteOutcome> {
        if chunks::parse_chunk_key(key).is_some() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.0.set(key, value, c).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.0.delete(key).await
    }
    async fn exists(&self, key: &str) -> Result<bool> {
        self.0.exists(key).await
    }
    async fn list(&self, cursor: Option<&[u8]>, limit: usize) -> Result<ListPage> {
        self.0.list(cursor, limit).await
    }
}

#[tokio::test]
async fn a_write_dropped_midway_leaves_the_old_value_and_no_chunks() {
    let store = MemoryStore::new();
    let raw = Arc::new(SlowChunks(memory(&store, "dropped", 1000)));
    let policy = EmulationPolicy {
        batch_concurrency: 2,
        ..EmulationPolicy::default()
    };
    let b = EmulatedBucket::new(raw.clone(), policy);
    let old = pattern(3_000, 1);
    b.set("k", old.clone(), WriteCondition::Always)
        .await
        .unwrap();
    // 100 chunks, two at a time: far from done after 100 ms.
    let write = b.set("k", pattern(100_000, 2), WriteCondition::Always);
    assert!(
        tokio::time::timeout(Duration::from_millis(100), write)
            .await
            .is_err()
    );
    assert_eq!(b.get("k").await.unwrap(), Some(old.clone()));
    // The dropped write's chunks are deleted in the background.
    let referenced = referenced_chunks(&raw.0, "k").await;
    for _ in 0..100 {
        if chunk_keys(&raw.0).await.len() == referenced {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(chunk_keys(&raw.0).await.len(), referenced);
    assert_eq!(b.get("k").await.unwrap(), Some(old));
}

const WRITER_ENV: &str = "WASIKV_LARGE_WRITER";

/// Size of the values the killed writer writes.
const CRASH_VALUE_BYTES: usize = 3_000_000;

/// The killed writer cycles through this many values.
const CRASH_SEEDS: u8 = 4;

/// Opens the bucket the crash test's writer and reader share: `spec` is
/// `embedded:<file>` or `etcd:<namespace>`.
async fn crash_bucket(spec: &str) -> (Arc<dyn Bucket>, EmulatedBucket) {
    let raw: Arc<dyn Bucket> = match spec.split_once(':').unwrap() {
        ("embedded", file) => {
            let store = Arc::new(
                wasikv_embedded::core::EmbeddedStore::open(std::path::Path::new(file)).unwrap(),
            );
            Arc::new(
                wasikv_embedded::EmbeddedBucket::new(store, "large")
                    .with_max_value_bytes(Some(256 << 10)),
            )
        }
        #[cfg(feature = "etcd")]
        ("etcd", namespace) => (wasikv_etcd::testing::opener())(wasikv_core::OpenRequest {
            namespace: namespace.to_string(),
            ttl: None,
        })
        .await
        .unwrap(),
        (other, _) => panic!("no crash bucket {other}"),
    };
    let layered = EmulatedBucket::new(raw.clone(), EmulationPolicy::default());
    (raw, layered)
}

/// In the child: replace one large value forever, printing each write's
/// number once it is acknowledged.
#[tokio::test]
async fn large_writer() {
    let Ok(spec) = std::env::var(WRITER_ENV) else {
        return; // only meaningful as the child of `killed_writers_leave_the_old_value`
    };
    let (_, b) = crash_bucket(&spec).await;
    // Made up front, so that the writer spends its time writing.
    let values: Vec<Vec<u8>> = (0..CRASH_SEEDS)
        .map(|seed| pattern(CRASH_VALUE_BYTES, seed))
        .collect();
    for i in 0u32.. {
        let value = values[(i % u32::from(CRASH_SEEDS)) as usize].clone();
        b.set("value", value, WriteCondition::Always)
            .await
            .expect("set");
        println!("ACK {i}");
    }
}

/// Kills a writer process midway through large writes, five times; the next
/// process reads the last acknowledged value (or the one in flight), whole,
/// and `collect_garbage` then leaves exactly the current value's chunks.
async fn killed_writers_leave_the_old_value(spec: &str) {
    let mut orphans_seen = 0;
    for round in 0..5u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "large_writer",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(WRITER_ENV, spec)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn writer");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut acked = None;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(n) = line.strip_prefix("ACK ") {
                let n: u32 = n.parse().unwrap();
                acked = Some(n);
                if n >= 2 + round as u32 {
                    break;
                }
            }
        }
        // Somewhere inside the next write.
        std::thread::sleep(Duration::from_millis(3 + round * 7));
        child.kill().expect("kill the writer");
        child.wait().unwrap();
        // Acknowledgements printed before the kill, still in the pipe.
        for line in lines {
            if let Some(n) = line.unwrap().strip_prefix("ACK ") {
                acked = Some(n.parse().unwrap());
            }
        }
        let acked = acked.expect("the writer acknowledged writes");

        let (raw, b) = crash_bucket(spec).await;
        let got = b.get("value").await.unwrap().expect("the value survives");
        let candidates = [acked, acked + 1]
            .map(|n| pattern(CRASH_VALUE_BYTES, (n % u32::from(CRASH_SEEDS)) as u8));
        assert!(
            candidates.contains(&got),
            "round {round}: the value read after the kill is neither write {acked} nor {}",
            acked + 1
        );
        let referenced = referenced_chunks(&*raw, "value").await;
        orphans_seen += chunk_keys(&*raw).await.len() - referenced;
        let report = b
            .chunked()
            .unwrap()
            .collect_garbage(Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(
            chunk_keys(&*raw).await.len(),
            referenced,
            "round {round}: orphans left after collection ({report:?})"
        );
        assert_eq!(b.get("value").await.unwrap(), Some(got));
    }
    println!("{spec}: {orphans_seen} orphaned chunks collected over 5 kills");
    // Writes are nearly all chunk writes and deletes: a kill that never
    // landed inside one would not have tested anything.
    assert!(orphans_seen > 0, "no kill landed inside a large write");
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_embedded_writer_leaves_the_old_value() {
    let dir = tempfile::tempdir().unwrap();
    let spec = format!("embedded:{}", dir.path().join("large.redb").display());
    killed_writers_leave_the_old_value(&spec).await;
}

#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread")]
async fn killed_etcd_writer_leaves_the_old_value() {
    let namespace = format!("wasikv-large-crash-{:08x}", rand::random::<u32>());
    killed_writers_leave_the_old_value(&format!("etcd:{namespace}")).await;
    let (_, b) = crash_bucket(&format!("etcd:{namespace}")).await;
    b.delete("value").await.unwrap();
}
