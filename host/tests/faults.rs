//! Faults: for each networked provider, a private server on its own test
//! port (never the machine's shared servers) is stopped while a host serves
//! guests, then started again. The host never traps; while the server is
//! down guests get `other` errors naming bucket and provider within a bound
//! set by `limits.operation_timeout_ms` and `limits.read_retries`; after the
//! server returns, guests succeed again (waited for with a generous ceiling,
//! not timed). In-memory emulators lose their tables and containers on a
//! restart: the test re-creates them, as a durable server would keep them.

#![cfg(any(
    feature = "redis",
    feature = "etcd",
    feature = "memcached",
    feature = "dynamodb",
    feature = "firestore",
    feature = "cosmos",
    feature = "postgres",
    feature = "nats"
))]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::{config, run};
use wasikv_core::suite::process::TestServer;
use wasikv_host::{RunOutcome, Runtime};

/// Per-operation timeout of the hosts under test.
const TIMEOUT_MS: u64 = 2000;
/// Read retries of the hosts under test (backoff 100 ms, so < 0.2 s in all).
const READ_RETRIES: u64 = 1;
/// Longest a failing guest call may take: every read attempt timing out,
/// the backoff, and slack for instantiating the guest on a loaded machine.
const FAIL_BOUND: Duration = Duration::from_millis((READ_RETRIES + 1) * TIMEOUT_MS + 3000);
/// Ceiling for a restarted server to serve guests again.
const RECOVERY_CEILING: Duration = Duration::from_secs(90);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

async fn probe(runtime: &Runtime, args: &[&str]) -> RunOutcome {
    run(runtime, wasikv_artifacts::PROBE, "probe", args, &[]).await
}

/// Runs the probe with `args` until it succeeds, within the ceiling.
async fn until_ok(runtime: &Runtime, args: &[&str], what: &str) {
    let started = Instant::now();
    loop {
        let out = probe(runtime, args).await;
        if out.exit_code == 0 && out.stdout.starts_with("ok") {
            return;
        }
        assert!(
            started.elapsed() < RECOVERY_CEILING,
            "{what}: no success within {RECOVERY_CEILING:?}: {}",
            out.stdout
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The whole fault sequence for one bucket (`bucket_toml` configures
/// `[buckets.<bucket>]` against the private server that `start` starts;
/// `restore` re-creates what an in-memory server lost).
async fn survives_a_restart(
    bucket: &str,
    provider: &str,
    bucket_toml: &str,
    start: impl Fn() -> TestServer,
    restore: impl AsyncFn(),
) {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(&config(
        dir.path(),
        &format!(
            "[limits]\noperation_timeout_ms = {TIMEOUT_MS}\nread_retries = {READ_RETRIES}\n\
             read_retry_backoff_ms = 100\n{bucket_toml}"
        ),
    ))
    .unwrap();
    let server = start();
    restore().await;
    until_ok(&runtime, &["increments", bucket, "k", "1"], "first write").await;

    drop(server);
    for args in [["get", bucket, "k", ""], ["increments", bucket, "k", "1"]] {
        let args: Vec<&str> = args.into_iter().filter(|a| !a.is_empty()).collect();
        let started = Instant::now();
        // `run` fails the test on a trap: an unreachable store is an error
        // value for the guest, never a trap.
        let out = probe(&runtime, &args).await;
        let elapsed = started.elapsed();
        let line = out.stdout.trim();
        assert!(
            line.starts_with("error other: ")
                && line.contains(&format!("bucket \"{bucket}\" ({provider})")),
            "{bucket} down, {args:?}: {line}"
        );
        assert!(
            elapsed < FAIL_BOUND,
            "{bucket} down, {args:?}: answered after {elapsed:?} (bound {FAIL_BOUND:?})"
        );
        eprintln!(
            "{bucket} down: {} answered in {elapsed:.1?}: {line}",
            args[0]
        );
    }

    let _server = start();
    restore().await;
    let started = Instant::now();
    until_ok(
        &runtime,
        &["increments", bucket, "k", "1"],
        "write after restart",
    )
    .await;
    until_ok(&runtime, &["get", bucket, "k"], "read after restart").await;
    eprintln!(
        "{bucket}: serving again {:.1?} after the restart",
        started.elapsed()
    );
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread")]
async fn redis_restart() {
    const PORT: u16 = 16401;
    let start = || {
        TestServer::spawn(
            &mut wasikv_redis::testing::server_command(PORT),
            "redis-server (scripts/services.sh installs it)",
        )
    };
    let toml = format!("[buckets.r]\nprovider = \"redis\"\nurl = \"redis://127.0.0.1:{PORT}/0\"\n");
    survives_a_restart("r", "redis", &toml, start, async || {}).await;
}

#[cfg(feature = "memcached")]
#[tokio::test(flavor = "multi_thread")]
async fn memcached_restart() {
    const PORT: u16 = 16402;
    let start = || {
        TestServer::spawn(
            &mut wasikv_memcached::testing::server_command(PORT),
            "memcached (scripts/services.sh installs it)",
        )
    };
    let toml = format!("[buckets.m]\nprovider = \"memcached\"\naddress = \"127.0.0.1:{PORT}\"\n");
    survives_a_restart("m", "memcached", &toml, start, async || {}).await;
}

#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread")]
async fn etcd_restart() {
    const PORT: u16 = 16403;
    let data = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{PORT}");
    let start = || {
        TestServer::spawn(
            &mut wasikv_etcd::testing::server_command("wasikv-fault", data.path(), &url, 16404),
            "etcd (scripts/services.sh installs it)",
        )
    };
    let toml = format!("[buckets.e]\nprovider = \"etcd\"\nendpoints = [{url:?}]\n");
    survives_a_restart("e", "etcd", &toml, start, async || {}).await;
}

/// PostgreSQL: a private cluster (initdb) on its own port, killed (SIGKILL)
/// and started again; the table is durable, so nothing is restored.
#[cfg(all(feature = "postgres", unix))]
#[tokio::test(flavor = "multi_thread")]
async fn postgres_restart() {
    const PORT: u16 = 16446;
    let dir = tempfile::tempdir().unwrap();
    let server = wasikv_postgres::testing::PrivateServer::init(&dir.path().join("pg"), PORT);
    let toml = format!(
        "[buckets.p]\nprovider = \"postgres\"\nurl = {:?}\ncreate = true\nconnect_timeout_ms = 1000\n",
        server.url()
    );
    let start = || TestServer::adopt(server.start());
    survives_a_restart("p", "postgres", &toml, start, async || {}).await;
}

/// NATS: a private `nats-server` with JetStream storing under its own
/// directory, killed and started again on the same directory; the KV bucket
/// is file-backed, so nothing is restored.
#[cfg(feature = "nats")]
#[tokio::test(flavor = "multi_thread")]
async fn nats_restart() {
    const PORT: u16 = 16447;
    let dir = tempfile::tempdir().unwrap();
    let start = || {
        TestServer::spawn(
            &mut wasikv_nats::testing::server_command(PORT, dir.path()),
            "nats-server (the machine's package)",
        )
    };
    let toml = format!(
        "[buckets.n]\nprovider = \"nats\"\nurl = \"nats://127.0.0.1:{PORT}\"\nkv_bucket = \"faults\"\n\
         create = true\nconnect_timeout_ms = 1000\nrequest_timeout_ms = 1000\n"
    );
    survives_a_restart("n", "nats", &toml, start, async || {}).await;
}

#[cfg(feature = "dynamodb")]
#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_restart() {
    const PORT: u16 = 16405;
    let python = workspace().join(".services/moto-venv/bin/python");
    let server = workspace().join("scripts/moto_serial.py");
    let start = || {
        TestServer::spawn(
            Command::new(&python)
                .arg(&server)
                .args(["127.0.0.1", &PORT.to_string()]),
            "moto (scripts/services.sh installs it under .services/moto-venv)",
        )
    };
    let endpoint = format!("http://127.0.0.1:{PORT}");
    let toml = format!(
        "[buckets.d]\nprovider = \"dynamodb\"\ntable = \"faults\"\nregion = \"us-east-1\"\n\
         endpoint = {endpoint:?}\naccess_key_id = \"test\"\nsecret_access_key = \"test\"\n"
    );
    let restore = async || {
        let mut config = wasikv_dynamodb::testing::test_config("faults", "");
        config.endpoint = Some(endpoint.clone());
        let store = wasikv_dynamodb::core::DynamoStore::connect(&config)
            .await
            .unwrap();
        wasikv_core::suite::process::eventually("create the table", RECOVERY_CEILING, || {
            store.ensure_table("faults", "pk", true)
        })
        .await;
    };
    survives_a_restart("d", "dynamodb", &toml, start, restore).await;
}

#[cfg(feature = "firestore")]
#[tokio::test(flavor = "multi_thread")]
async fn firestore_restart() {
    const PORT: u16 = 16406;
    // The emulator's jar, started with java directly (its launcher script
    // would leave java running when killed).
    let listing = Command::new("dpkg")
        .args(["-L", "google-cloud-cli-firestore-emulator"])
        .output()
        .expect("dpkg");
    let jar = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .find(|l| l.ends_with("cloud-firestore-emulator.jar"))
        .map(PathBuf::from)
        .expect("the Cloud Firestore emulator is installed (see scripts/services.sh)");
    let start = || {
        TestServer::spawn(
            Command::new("java")
                .arg("-Duser.language=en")
                .arg("-cp")
                .arg(&jar)
                .args([
                    "com.google.cloud.datastore.emulator.firestore.CloudFirestore",
                    "start",
                    "--host=127.0.0.1",
                    &format!("--port={PORT}"),
                ]),
            "java and the Cloud Firestore emulator",
        )
    };
    let toml = format!(
        "[buckets.f]\nprovider = \"firestore\"\nproject_id = \"demo-faults\"\n\
         emulator_host = \"127.0.0.1:{PORT}\"\n"
    );
    survives_a_restart("f", "firestore", &toml, start, async || {}).await;
}

#[cfg(feature = "cosmos")]
#[tokio::test(flavor = "multi_thread")]
async fn cosmos_restart() {
    const PORT: u16 = 16407;
    let cli =
        workspace().join(".services/cosmos-npm/node_modules/@vercel/cosmosdb-server/lib/cli.js");
    let start = || {
        TestServer::spawn(
            Command::new("node")
                .arg(&cli)
                .args(["-p", &PORT.to_string(), "--host", "127.0.0.1"]),
            "node and the Cosmos DB fixture (scripts/services.sh installs it)",
        )
    };
    let endpoint = format!("https://127.0.0.1:{PORT}/");
    let key = wasikv_cosmos::testing::TEST_KEY;
    let toml = format!(
        "[buckets.c]\nprovider = \"cosmos\"\nendpoint = {endpoint:?}\nkey = {key:?}\n\
         database = \"faults\"\ncontainer = \"c\"\n"
    );
    let restore = async || {
        let mut config = wasikv_cosmos::testing::test_config("c", None);
        config.endpoint = endpoint.clone();
        wasikv_core::suite::process::eventually(
            "create the container",
            RECOVERY_CEILING,
            || async {
                let store = wasikv_cosmos::core::CosmosStore::connect(&config).await?;
                store.container("faults", "c", true).await.map(|_| ())
            },
        )
        .await;
    };
    survives_a_restart("c", "cosmos", &toml, start, restore).await;
}

/// A read issued while the store is down is retried (`limits.read_retries`)
/// and succeeds once the server is back; a write is not retried.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread")]
async fn reads_are_retried_until_the_server_returns() {
    const PORT: u16 = 16408;
    let start = || {
        TestServer::spawn(
            &mut wasikv_redis::testing::server_command(PORT),
            "redis-server (scripts/services.sh installs it)",
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(&config(
        dir.path(),
        &format!(
            "[limits]\noperation_timeout_ms = {TIMEOUT_MS}\nread_retries = 60\nread_retry_backoff_ms = 100\n\
             [buckets.r]\nprovider = \"redis\"\nurl = \"redis://127.0.0.1:{PORT}/0\"\n"
        ),
    ))
    .unwrap();
    let server = start();
    until_ok(&runtime, &["increments", "r", "k", "1"], "first write").await;
    drop(server);
    // A write while down fails at once: no blind retry.
    let out = probe(&runtime, &["increments", "r", "k", "1"]).await;
    assert!(out.stdout.starts_with("error other: "), "{}", out.stdout);
    // A read while down waits out the outage through its retries.
    let (read, _server) = tokio::join!(probe(&runtime, &["get", "r", "x"]), async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        start()
    });
    assert_eq!(
        read.stdout.trim(),
        "ok none",
        "{}{}",
        read.stdout,
        read.stderr
    );
}
