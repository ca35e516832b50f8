//! Durability: a writer process is killed (SIGKILL on Unix, TerminateProcess
//! on Windows) in the middle of writing; every write it acknowledged must be
//! there after a reopen, and the file must open cleanly.
//!
//! The writer is this same test binary, re-run with `WASIKV_CRASH_WRITER` set.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use wasikv_core::{Bucket, WriteCondition};
use wasikv_embedded::EmbeddedBucket;
use wasikv_embedded::core::EmbeddedStore;

const WRITER_ENV: &str = "WASIKV_CRASH_WRITER";

/// In the child: write keys forever, printing each one after its write is acknowledged.
#[tokio::test]
async fn crash_writer() {
    let Ok(path) = std::env::var(WRITER_ENV) else {
        return; // only meaningful as the child of `acknowledged_writes_survive_kill`
    };
    let store = Arc::new(EmbeddedStore::open(std::path::Path::new(&path)).expect("open"));
    let bucket = EmbeddedBucket::new(store, "crash");
    for i in 0u64.. {
        let key = format!("key-{i}");
        bucket
            .set(
                &key,
                format!("value-{i}").into_bytes(),
                WriteCondition::Always,
            )
            .await
            .expect("set");
        if i % 3 == 0 {
            bucket.increment("counter", 1).await.expect("increment");
        }
        println!("ACK {i}");
    }
}

#[tokio::test]
async fn acknowledged_writes_survive_kill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.redb");
    for round in 0..3 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_writer",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(WRITER_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn writer");
        let stdout = child.stdout.take().unwrap();
        let mut acked = None;
        let target = 40 + round * 17;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(n) = line.strip_prefix("ACK ") {
                let n: u64 = n.parse().unwrap();
                acked = Some(n);
                if n >= target {
                    child.kill().expect("kill the writer"); // SIGKILL, mid-write
                    break;
                }
            }
        }
        child.wait().unwrap();
        let acked = acked.expect("the writer acknowledged writes");

        let store = Arc::new(EmbeddedStore::open(&path).expect("the file reopens after a kill"));
        let bucket = EmbeddedBucket::new(store, "crash");
        for i in 0..=acked {
            let value = bucket.get(&format!("key-{i}")).await.unwrap();
            assert_eq!(
                value,
                Some(format!("value-{i}").into_bytes()),
                "round {round}: acknowledged key-{i} lost"
            );
        }
        let counter = bucket.get("counter").await.unwrap().expect("counter");
        let counter: u64 = String::from_utf8(counter).unwrap().parse().unwrap();
        assert!(
            counter > acked / 3,
            "round {round}: counter {counter} lost acknowledged increments (acked {acked})"
        );
    }
}
