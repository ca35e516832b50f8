//! Durability: a writer process is killed (SIGKILL on Unix, TerminateProcess
//! on Windows) in the middle of writing; every write it acknowledged must be
//! there after a reopen, and the file must open cleanly. Run with one writer
//! (one commit per write) and with eight concurrent writers (whose writes
//! share group commits).
//!
//! The writer is this same test binary, re-run with `WASIKV_CRASH_WRITER` set.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use wasikv_core::{Bucket, WriteCondition};
use wasikv_embedded::EmbeddedBucket;
use wasikv_embedded::core::EmbeddedStore;

const WRITER_ENV: &str = "WASIKV_CRASH_WRITER";
const WRITERS_ENV: &str = "WASIKV_CRASH_WRITERS";

/// In the child: `WASIKV_CRASH_WRITERS` tasks write forever, each its own
/// keys and its own counter, printing `ACK writer i counter` once both the
/// set of `w<writer>-key-<i>` and the increment that returned `counter` are
/// acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_writer() {
    let Ok(path) = std::env::var(WRITER_ENV) else {
        return; // only meaningful as the child of the tests below
    };
    let writers: usize = std::env::var(WRITERS_ENV)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let store = Arc::new(EmbeddedStore::open(std::path::Path::new(&path)).expect("open"));
    let tasks = (0..writers).map(|w| {
        let bucket = EmbeddedBucket::new(store.clone(), "crash");
        tokio::spawn(async move {
            for i in 0u64.. {
                bucket
                    .set(
                        &format!("w{w}-key-{i}"),
                        format!("value-{w}-{i}").into_bytes(),
                        WriteCondition::Always,
                    )
                    .await
                    .expect("set");
                let counter = bucket
                    .increment(&format!("w{w}-counter"), 1)
                    .await
                    .expect("increment");
                println!("ACK {w} {i} {counter}");
            }
        })
    });
    join(tasks.collect()).await;
}

async fn join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for task in tasks {
        task.await.expect("writer");
    }
}

/// Kills a writer process of `writers` tasks three times, each after a few
/// hundred acknowledgements, and checks every acknowledged write after a reopen.
async fn kill_and_check(writers: usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.redb");
    for round in 0..3u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_writer",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(WRITER_ENV, &path)
            .env(WRITERS_ENV, writers.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn writer");
        let stdout = child.stdout.take().unwrap();
        // Per writer: the last acknowledged index and counter value.
        let mut acked: HashMap<usize, (u64, i64)> = HashMap::new();
        let target = (40 + round * 17) * writers as u64;
        let mut total = 0u64;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let Some(rest) = line.strip_prefix("ACK ") else {
                continue;
            };
            let fields: Vec<i64> = rest.split(' ').map(|f| f.parse().unwrap()).collect();
            acked.insert(fields[0] as usize, (fields[1] as u64, fields[2]));
            total += 1;
            if total >= target {
                child.kill().expect("kill the writer"); // SIGKILL, mid-write
                break;
            }
        }
        child.wait().unwrap();
        assert!(total >= target, "round {round}: the writer stopped early");

        let store = Arc::new(EmbeddedStore::open(&path).expect("the file reopens after a kill"));
        let bucket = EmbeddedBucket::new(store, "crash");
        for (w, (last, counter)) in &acked {
            for i in 0..=*last {
                let value = bucket.get(&format!("w{w}-key-{i}")).await.unwrap();
                assert_eq!(
                    value,
                    Some(format!("value-{w}-{i}").into_bytes()),
                    "round {round}: acknowledged w{w}-key-{i} lost"
                );
            }
            let stored = bucket
                .get(&format!("w{w}-counter"))
                .await
                .unwrap()
                .expect("counter");
            let stored: i64 = String::from_utf8(stored).unwrap().parse().unwrap();
            assert!(
                stored >= *counter,
                "round {round}: writer {w}'s counter is {stored}, below its acknowledged {counter}"
            );
        }
        if writers > 1 {
            assert_eq!(
                acked.len(),
                writers,
                "round {round}: every writer acknowledged"
            );
        }
    }
}

#[tokio::test]
async fn acknowledged_writes_survive_kill() {
    kill_and_check(1).await;
}

#[tokio::test]
async fn acknowledged_concurrent_writes_survive_kill() {
    kill_and_check(8).await;
}
