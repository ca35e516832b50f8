//! Guest components run through the real host: the conformance component on
//! every provider, the counter example across restarts, and the host's
//! routing, limits and isolation. Every guest of `examples/guests` must have
//! a test here named after it, or this file does not compile.

use std::path::Path;

mod support;

use support::{config, networked_buckets, run};
use wasikv_host::{RunOptions, RunOutcome, Runtime, Stdio};

macro_rules! assert_guest_has_test {
    ($name:ident) => {
        #[allow(unused_imports)]
        use self::$name as _;
    };
}
wasikv_artifacts::foreach_guest!(assert_guest_has_test);

fn assert_conformance(outcome: &RunOutcome, label: &str) {
    let last = outcome.stdout.lines().last().unwrap_or_default();
    assert!(
        outcome.exit_code == 0 && last.ends_with(" passed, 0 failed"),
        "conformance on {label} failed (exit {}):\n{}\n{}",
        outcome.exit_code,
        outcome.stdout,
        outcome.stderr
    );
    let passed: usize = last.split(' ').next().unwrap().parse().unwrap();
    // Buckets without list-keys (memcached) skip the three listing checks;
    // `open-denied` is skipped unless DENIED_BUCKET is set.
    let skipped = outcome
        .stdout
        .lines()
        .filter(|l| l.starts_with("skip "))
        .count();
    let listing_skipped = outcome.stdout.contains("list-keys is reported unsupported");
    assert!(
        passed + skipped == 28 && skipped <= if listing_skipped { 4 } else { 1 },
        "{passed} passed and {skipped} skipped on {label}:\n{}",
        outcome.stdout
    );
    println!("{label}: {last}");
}

const BUCKETS: &str = r#"
[limits]
list_page_keys = 7

[buckets.mem]
provider = "memory"

[buckets.required]
provider = "memory"
required_only = true

[buckets.chunked]
provider = "memory"
max_batch_items = 3

[buckets.small-items]
provider = "memory"
required_only = true
max_value_bytes = 65536

[buckets.secret]
provider = "memory"

[buckets.expiring]
provider = "memory"
required_only = true
max_value_bytes = 65536
ttl = "1h"

[buckets.expiring-embedded]
provider = "embedded"
ttl = "1h"

[components.conformance]
buckets = ["default", "mem", "required", "chunked", "small-items", "expiring", "expiring-embedded"]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn conformance() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(&config(dir.path(), BUCKETS)).unwrap();
    let buckets = [
        "default",
        "mem",
        "required",
        "chunked",
        "small-items",
        "expiring",
        "expiring-embedded",
    ];
    for bucket in buckets {
        let out = run(
            &runtime,
            wasikv_artifacts::CONFORMANCE,
            "conformance",
            &[bucket],
            &[("DENIED_BUCKET", "secret")],
        )
        .await;
        assert_conformance(&out, bucket);
        assert!(
            out.stdout.contains("ok open-denied-is-access-denied"),
            "{}",
            out.stdout
        );
    }
}

/// The conformance component against every compiled-in networked provider,
/// each on a fresh namespace of the test server (`WASIKV_TEST_<PROVIDER>_URL`).
#[tokio::test(flavor = "multi_thread")]
async fn conformance_networked() {
    let run_id = format!("{:08x}", rand::random::<u32>());
    let (networked, names) = networked_buckets(&run_id);
    let buckets = format!("[limits]\nlist_page_keys = 7\n{networked}");
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(&config(dir.path(), &buckets)).unwrap();
    for bucket in names {
        let out = run(
            &runtime,
            wasikv_artifacts::CONFORMANCE,
            "conformance",
            &[bucket],
            &[],
        )
        .await;
        assert_conformance(&out, bucket);
    }
}

/// A component writes a key, waits past its bucket's `ttl` and finds it
/// gone for every read path, on every compiled-in store that expires keys
/// (each bucket given `ttl = "1s"`); without a `ttl` the key stays.
#[tokio::test(flavor = "multi_thread")]
async fn keys_expire_for_a_guest_after_the_buckets_ttl() {
    let run_id = format!("{:08x}", rand::random::<u32>());
    let (networked, _) = networked_buckets(&run_id);
    let local = "[buckets.mem]\nprovider = \"memory\"\n\
                 [buckets.mem-required]\nprovider = \"memory\"\nrequired_only = true\nmax_value_bytes = 65536\n\
                 [buckets.emb]\nprovider = \"embedded\"\n";
    let mut text = String::new();
    let (mut expiring, mut latest) = (Vec::new(), std::time::Duration::ZERO);
    let mut section = String::new();
    for line in local.lines().chain(networked.lines()) {
        // A NATS KV bucket's max_age is every bucket's ttl on it: the
        // expiring bucket gets a KV bucket of its own.
        match line.strip_prefix("kv_bucket = ") {
            Some(kv) if expiring.last() == Some(&section) => {
                text.push_str(&format!(
                    "kv_bucket = \"{}_ttl_1000\"\n",
                    kv.trim_matches('"')
                ));
            }
            _ => {
                text.push_str(line);
                text.push('\n');
            }
        }
        if let Some(name) = line
            .strip_prefix("[buckets.")
            .and_then(|l| l.strip_suffix(']'))
        {
            section = name.to_string();
        }
        let Some(provider) = line
            .strip_prefix("provider = ")
            .map(|p| p.trim_matches('"'))
        else {
            continue;
        };
        let expiry = wasikv_host::registry::find(provider)
            .unwrap()
            .capabilities()
            .expiry;
        if let Some(resolution) = expiry.resolution() {
            text.push_str("ttl = \"1s\"\n");
            expiring.push(section.clone());
            latest = latest.max(resolution);
        }
    }
    text.push_str("[buckets.kept]\nprovider = \"memory\"\n");
    assert!(
        expiring.len() >= 3,
        "memory and embedded expire keys: {expiring:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(&config(dir.path(), &text)).unwrap();
    // One second of ttl, the slowest declared resolution, and a margin.
    let wait = (std::time::Duration::from_secs(1) + latest).as_millis() + 700;
    let wait = wait.to_string();
    let runs = expiring.iter().map(|bucket| {
        let runtime = &runtime;
        let wait = &wait;
        async move {
            let args = ["expires", bucket.as_str(), "session", wait.as_str()];
            let out = run(runtime, wasikv_artifacts::PROBE, "probe", &args, &[]).await;
            (bucket, out)
        }
    });
    for (bucket, out) in futures::future::join_all(runs).await {
        assert_eq!(out.stdout.trim(), "ok expired", "{bucket}: {}", out.stderr);
    }
    let kept = run(
        &runtime,
        wasikv_artifacts::PROBE,
        "probe",
        &["expires", "kept", "session", &wait],
        &[],
    )
    .await;
    assert_eq!(
        kept.stdout.trim(),
        "ok still there for get, exists, get-many, list-keys",
        "a bucket without ttl"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn counter() {
    let dir = tempfile::tempdir().unwrap();
    for visit in 1..=3 {
        // A new runtime each time: the embedded default bucket survives restarts.
        let runtime = Runtime::new(&config(dir.path(), "")).unwrap();
        let out = run(
            &runtime,
            wasikv_artifacts::COUNTER,
            "counter",
            &["alice"],
            &[],
        )
        .await;
        assert_eq!(out.exit_code, 0, "{}{}", out.stdout, out.stderr);
        assert!(
            out.stdout
                .contains(&format!("This is visit number {visit} ")),
            "visit {visit}: {}",
            out.stdout
        );
        assert!(
            out.stdout
                .contains(&format!("Visits so far: alice={visit}")),
            "{}",
            out.stdout
        );
    }
    assert!(dir.path().join("data").join("default.redb").is_file());
}

/// A guest built for `wasi:keyvalue@0.2.0-draft` and a draft2 guest share
/// one bucket in one host: the draft guest reads what the draft2 counter wrote.
#[tokio::test(flavor = "multi_thread")]
async fn draft() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(&config(dir.path(), "[limits]\nlist_page_keys = 7\n")).unwrap();
    let counter = run(
        &runtime,
        wasikv_artifacts::COUNTER,
        "counter",
        &["alice"],
        &[],
    )
    .await;
    assert_eq!(counter.exit_code, 0, "{}", counter.stdout);
    let out = run(
        &runtime,
        wasikv_artifacts::DRAFT,
        "draft",
        &["default", "visits:alice", "1"],
        &[],
    )
    .await;
    assert!(
        out.exit_code == 0 && out.stdout.trim_end().ends_with("5 passed, 0 failed"),
        "draft guest failed (exit {}):\n{}{}",
        out.exit_code,
        out.stdout,
        out.stderr
    );
    // And the other way round: draft2 sees what the draft guest wrote.
    let read = run(
        &runtime,
        wasikv_artifacts::PROBE,
        "probe",
        &["get", "default", "draft:k"],
        &[],
    )
    .await;
    assert_eq!(read.stdout.trim(), "ok v");
}

/// The benchmark guest's loops work through the host (the measurement
/// itself is `examples/overhead.rs`).
#[tokio::test(flavor = "multi_thread")]
async fn bench() {
    let dir = tempfile::tempdir().unwrap();
    let runtime =
        Runtime::new(&config(dir.path(), "[buckets.b]\nprovider = \"memory\"\n")).unwrap();
    for op in ["get", "set", "set-distinct", "increment", "get-many-100"] {
        let out = run(
            &runtime,
            wasikv_artifacts::BENCH,
            "bench",
            &["b", op, "200"],
            &[],
        )
        .await;
        assert!(
            out.stdout.starts_with(&format!("ok {op} 200 calls ")),
            "{op}: {}",
            out.stdout
        );
    }
}

const PROBE_CONFIG: &str = r#"
[limits]
max_key_bytes = 100
max_value_bytes = 1000
max_call_bytes = 50000

[runtime]
deadline_ms = 1500
max_memory_bytes = 67108864

[buckets.mem]
provider = "memory"

[buckets.tiny]
provider = "memory"
max_value_bytes = 10

[buckets.private]
provider = "memory"

[components.probe]
buckets = ["mem", "tiny", "default"]
"#;

async fn run_probe(args: &[&str]) -> RunOutcome {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(&config(dir.path(), PROBE_CONFIG)).unwrap();
    run(&runtime, wasikv_artifacts::PROBE, "probe", args, &[]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn probe() {
    // Routing: unknown bucket, allow-list, allowed bucket.
    assert_eq!(
        run_probe(&["open", "nowhere"]).await.stdout.trim(),
        "error no-such-store"
    );
    let dir = tempfile::tempdir().unwrap();
    let open_runtime = Runtime::new(&config(dir.path(), BUCKETS)).unwrap();
    let unknown = run(
        &open_runtime,
        wasikv_artifacts::PROBE,
        "unrestricted",
        &["open", "nowhere"],
        &[],
    )
    .await;
    assert_eq!(unknown.stdout.trim(), "error no-such-store");
    assert_eq!(
        run_probe(&["open", "private"]).await.stdout.trim(),
        "error access-denied"
    );
    assert_eq!(run_probe(&["open", "mem"]).await.stdout.trim(), "ok opened");
    // Renamed, the same component has no section: once any component is
    // listed, an unlisted one opens nothing (no escape by renaming the file).
    let dir = tempfile::tempdir().unwrap();
    let listed = Runtime::new(&config(dir.path(), PROBE_CONFIG)).unwrap();
    let renamed = run(&listed, wasikv_artifacts::PROBE, "x", &["open", "mem"], &[]).await;
    assert_eq!(renamed.stdout.trim(), "error access-denied");
    // The section applies whatever the case of the name.
    let shouted = run(
        &listed,
        wasikv_artifacts::PROBE,
        "PROBE",
        &["open", "mem"],
        &[],
    )
    .await;
    assert_eq!(shouted.stdout.trim(), "ok opened");

    // Oversized key and values: clear errors naming bucket, provider and limit.
    let key = run_probe(&["set", "mem", "101", "1"]).await.stdout;
    assert!(
        key.contains("bucket \"mem\" (memory)")
            && key.contains("limit of 100 bytes (limits.max_key_bytes)"),
        "{key}"
    );
    assert_eq!(
        run_probe(&["set", "mem", "100", "1000"])
            .await
            .stdout
            .trim(),
        "ok set"
    );
    let value = run_probe(&["set", "mem", "1", "1001"]).await.stdout;
    assert!(
        value.contains("too-large") && value.contains("over the limit of 1000 bytes"),
        "{value}"
    );
    let provider_limit = run_probe(&["set", "tiny", "1", "11"]).await.stdout;
    assert!(
        provider_limit.contains("bucket \"tiny\" (memory)")
            && provider_limit.contains("limit of 10 bytes"),
        "{provider_limit}"
    );

    // A get-many whose result would exceed max_call_bytes.
    assert_eq!(
        run_probe(&["get-many", "mem", "1000", "40"])
            .await
            .stdout
            .trim(),
        "ok 40 values"
    );
    let huge = run_probe(&["get-many", "mem", "1000", "60"]).await.stdout;
    assert!(huge.contains("limits.max_call_bytes"), "{huge}");
    let too_many = run_probe(&["get-many", "mem", "1", "1001"]).await.stdout;
    assert!(too_many.contains("limits.max_batch_keys"), "{too_many}");
}

#[tokio::test(flavor = "multi_thread")]
async fn guest_limits_stop_the_guest_not_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(&config(dir.path(), PROBE_CONFIG)).unwrap();
    let component = runtime.load(Path::new(wasikv_artifacts::PROBE)).unwrap();
    let opts = |args: &[&str]| RunOptions {
        name: "probe".into(),
        args: args.iter().map(|s| s.to_string()).collect(),
        env: vec![],
        stdio: Stdio::Capture,
    };
    let started = std::time::Instant::now();
    let spin = runtime.run(&component, opts(&["spin"])).await.unwrap_err();
    assert!(
        format!("{spin:#}").contains("deadline of 1500 ms"),
        "{spin:#}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));

    let alloc = runtime.run(&component, opts(&["alloc"])).await.unwrap_err();
    assert!(
        format!("{alloc:#}").contains("memory limit of 67108864 bytes"),
        "{alloc:#}"
    );

    // Two guests at once: one spinning, one working normally beside it.
    let (spin, ok) = tokio::join!(
        runtime.run(&component, opts(&["spin"])),
        runtime.run(&component, opts(&["set", "mem", "3", "3"]))
    );
    assert!(spin.is_err());
    assert_eq!(ok.unwrap().stdout.trim(), "ok set");
}

/// The start-up error for a provider missing from the build; the wording for
/// a known provider's feature is unit-tested in `registry`.
#[test]
fn unknown_provider_fails_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let err = Runtime::new(&config(dir.path(), "[buckets.x]\nprovider = \"nosuch\"\n"))
        .err()
        .unwrap();
    let text = format!("{err:#}");
    assert!(
        text.contains("bucket \"x\"") && text.contains("unknown provider \"nosuch\""),
        "{text}"
    );
    #[cfg(not(feature = "redis"))]
    {
        let err = Runtime::new(&config(
            dir.path(),
            "[buckets.cache]\nprovider = \"redis\"\nurl = \"redis://127.0.0.1/\"\n",
        ))
        .err()
        .expect("redis is not compiled in");
        assert!(format!("{err:#}").contains("--features redis"), "{err:#}");
    }
}

#[test]
fn overlapping_namespaces_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let same_map = "[buckets.a]\nprovider = \"memory\"\nmap = \"m\"\n[buckets.b]\nprovider = \"memory\"\nmap = \"m\"\n";
    let err = Runtime::new(&config(dir.path(), same_map))
        .err()
        .expect("must fail");
    assert!(
        format!("{err:#}").contains("buckets \"a\" and \"b\" overlap"),
        "{err:#}"
    );
    let file = dir.path().join("shared.redb");
    let same_table = format!(
        "[buckets.a]\nprovider = \"embedded\"\npath = {file:?}\ntable = \"t\"\n[buckets.b]\nprovider = \"embedded\"\npath = {file:?}\ntable = \"t\"\n"
    );
    assert!(Runtime::new(&config(dir.path(), &same_table)).is_err());
    let distinct = format!(
        "[buckets.a]\nprovider = \"embedded\"\npath = {file:?}\ntable = \"t1\"\n[buckets.b]\nprovider = \"embedded\"\npath = {file:?}\ntable = \"t2\"\n"
    );
    Runtime::new(&config(dir.path(), &distinct)).expect("distinct tables on one file are fine");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_buckets_on_one_file_share_the_connection_and_stay_apart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shared.redb");
    let text = format!(
        "[buckets.a]\nprovider = \"embedded\"\npath = {file:?}\n[buckets.b]\nprovider = \"embedded\"\npath = {file:?}\n"
    );
    let runtime = Runtime::new(&config(dir.path(), &text)).unwrap();
    let a = runtime.buckets().open(None, "a").await.unwrap();
    let b = runtime.buckets().open(None, "b").await.unwrap();
    a.set("k", b"in a".to_vec()).await.unwrap();
    assert_eq!(b.get("k").await.unwrap(), None);
    assert_eq!(a.get("k").await.unwrap(), Some(b"in a".to_vec()));
}

#[test]
fn compiled_components_are_cached_per_content() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(&config(dir.path(), "")).unwrap();
    let bytes = std::fs::read(wasikv_artifacts::COUNTER).unwrap();
    let cached = runtime.cache_path(&bytes);
    assert!(!cached.exists());
    runtime.load(Path::new(wasikv_artifacts::COUNTER)).unwrap();
    assert!(cached.is_file(), "no cache entry at {}", cached.display());
    let first = std::fs::metadata(&cached).unwrap().modified().unwrap();
    runtime.load(Path::new(wasikv_artifacts::COUNTER)).unwrap();
    assert_eq!(
        std::fs::metadata(&cached).unwrap().modified().unwrap(),
        first,
        "a hit does not rewrite"
    );
    let mut changed = bytes.clone();
    changed.push(0);
    assert_ne!(runtime.cache_path(&changed), cached);
    // A corrupt entry is recompiled, not trusted.
    std::fs::write(&cached, b"garbage").unwrap();
    runtime.load(Path::new(wasikv_artifacts::COUNTER)).unwrap();
    assert_ne!(std::fs::read(&cached).unwrap(), b"garbage");
}

/// No lost updates: on every compiled-in provider, 8 component instances
/// at once each increment one counter 500 times, then 8 at once each append
/// 50 tokens to one value by CAS read-modify-write loops. The counter must
/// be exact and every token present exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn no_lost_updates_across_instances() {
    const INSTANCES: usize = 8;
    const INCREMENTS: usize = 500;
    const APPENDS: usize = 50;
    let run_id = format!("{:08x}", rand::random::<u32>());
    let (networked, mut names) = networked_buckets(&run_id);
    names.splice(0..0, ["default", "memory"]);
    let dir = tempfile::tempdir().unwrap();
    let runtime = std::sync::Arc::new(
        Runtime::new(&config(
            dir.path(),
            &format!("[buckets.memory]\nprovider = \"memory\"\n{networked}"),
        ))
        .unwrap(),
    );
    let probe = runtime
        .load(Path::new(wasikv_artifacts::PROBE))
        .expect("load probe");
    // `INSTANCES` runs of the probe at once, each with its own arguments.
    let concurrently = |args: Vec<Vec<String>>| {
        let runs = args.into_iter().map(|args| {
            let (runtime, probe) = (runtime.clone(), probe.clone());
            tokio::spawn(async move {
                let options = RunOptions {
                    name: "probe".into(),
                    args,
                    env: Vec::new(),
                    stdio: Stdio::Capture,
                };
                runtime.run(&probe, options).await.expect("the probe ran")
            })
        });
        futures::future::join_all(runs)
    };
    for bucket in names {
        let started = std::time::Instant::now();
        let args = (0..INSTANCES)
            .map(|_| {
                ["increments", bucket, "counter", &INCREMENTS.to_string()]
                    .map(String::from)
                    .to_vec()
            })
            .collect();
        for out in concurrently(args).await {
            let out = out.expect("join");
            assert!(
                out.exit_code == 0 && out.stdout.starts_with("ok last"),
                "{bucket}: {}{}",
                out.stdout,
                out.stderr
            );
        }
        let incremented = started.elapsed();
        let out = run(
            &runtime,
            wasikv_artifacts::PROBE,
            "probe",
            &["get", bucket, "counter"],
            &[],
        )
        .await;
        assert_eq!(
            out.stdout.trim(),
            format!("ok {}", INSTANCES * INCREMENTS),
            "{bucket}: counter after {INSTANCES} x {INCREMENTS} increments"
        );

        let started = std::time::Instant::now();
        let args = (0..INSTANCES)
            .map(|i| {
                [
                    "appends",
                    bucket,
                    "log",
                    &format!("t{i}"),
                    &APPENDS.to_string(),
                ]
                .map(String::from)
                .to_vec()
            })
            .collect();
        let mut lost_races = 0;
        for out in concurrently(args).await {
            let out = out.expect("join");
            let lost = out
                .stdout
                .trim()
                .strip_prefix("ok lost ")
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or_else(|| panic!("{bucket}: {}{}", out.stdout, out.stderr));
            lost_races += lost;
        }
        let appended = started.elapsed();
        let out = run(
            &runtime,
            wasikv_artifacts::PROBE,
            "probe",
            &["get", bucket, "log"],
            &[],
        )
        .await;
        let value = out
            .stdout
            .trim()
            .strip_prefix("ok ")
            .unwrap_or_default()
            .to_string();
        let mut tokens: Vec<&str> = value.split(',').filter(|t| !t.is_empty()).collect();
        tokens.sort_unstable();
        let mut expected: Vec<String> = (0..INSTANCES)
            .flat_map(|i| (0..APPENDS).map(move |j| format!("t{i}-{j}")))
            .collect();
        expected.sort_unstable();
        assert_eq!(
            tokens, expected,
            "{bucket}: every appended token exactly once"
        );
        eprintln!(
            "{bucket}: {} increments by {INSTANCES} instances in {incremented:.1?}; {} CAS appends in {appended:.1?} ({lost_races} swaps lost a race and retried)",
            INSTANCES * INCREMENTS,
            INSTANCES * APPENDS
        );
    }
}

/// Events `event-000001..=total` of the watcher's log bucket, waiting up to
/// a minute for them to arrive.
async fn watch_log(log: &wasikv_host::OpenBucket, total: usize) -> Vec<String> {
    let started = std::time::Instant::now();
    loop {
        let mut events = Vec::new();
        for n in 1..=total {
            match log.get(&format!("event-{n:06}")).await.unwrap() {
                Some(v) => events.push(String::from_utf8(v).unwrap()),
                None => break,
            }
        }
        if events.len() == total || started.elapsed() > std::time::Duration::from_secs(60) {
            return events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Serves the `watcher` component on `buckets` in a task: subscribed when
/// this returns; send on the sender to stop it, then await the task.
async fn serve_watcher(
    runtime: &Runtime,
    buckets: &[&str],
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<wasmtime::Result<wasikv_host::WatchReport>>,
) {
    let component = runtime
        .load(Path::new(wasikv_artifacts::WATCHER))
        .expect("load watcher");
    let options = wasikv_host::WatchOptions {
        name: "watcher".into(),
        buckets: buckets.iter().map(|s| s.to_string()).collect(),
    };
    let watch = runtime.watch(&component, options).await.expect("subscribe");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(watch.serve(async {
        let _ = stopped.await;
    }));
    (stop, serving)
}

/// The `watcher` component (world `watch-service`) receives every change of
/// the watched buckets — set, increment, CAS swap, batches, delete, from
/// other components — in order, on every provider compiled in.
#[tokio::test(flavor = "multi_thread")]
async fn watcher() {
    let run_id = format!("{:08x}", rand::random::<u32>());
    let (networked, mut names) = networked_buckets(&run_id);
    names.insert(0, "mem");
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(&config(
        dir.path(),
        &format!(
            "[buckets.mem]\nprovider = \"memory\"\n[buckets.watch-log]\nprovider = \"memory\"\n{networked}"
        ),
    ))
    .unwrap();
    let (stop, serving) = serve_watcher(&runtime, &names).await;
    let log = runtime.buckets().open(None, "watch-log").await.unwrap();
    let started = std::time::Instant::now();
    let mut expected: Vec<String> = Vec::new();
    for bucket in &names {
        for args in [
            vec!["set", bucket, "3", "2"],
            vec!["increments", bucket, "n", "2"],
            vec!["appends", bucket, "log", "t", "1"],
            vec!["get-many", bucket, "1", "1"],
            vec!["delete", bucket, "kkk"],
        ] {
            let out = run(&runtime, wasikv_artifacts::PROBE, "probe", &args, &[]).await;
            assert!(
                out.stdout.starts_with("ok"),
                "{bucket} {args:?}: {}",
                out.stdout
            );
        }
        // probe set: key "kkk" = "vv"; increments: n = 1, 2; appends: log =
        // ",t-0"; get-many: sets "big" to one byte 7 first; delete kkk.
        let before = expected.len();
        expected.extend(
            [
                "set kkk vv",
                "set n 1",
                "set n 2",
                "set log ,t-0",
                "set big \u{7}",
                "delete kkk",
            ]
            .map(String::from),
        );
        // Buckets' changes may interleave; wait for this one's before the next.
        let events = watch_log(&log, expected.len()).await;
        assert_eq!(events.len(), expected.len(), "{bucket}: {events:?}");
        let (events, wanted) = (&events[before..], &expected[before..]);
        if bucket.ends_with("-cluster") {
            // A cluster's keys live on different nodes: changes of different
            // keys may arrive in another order (the contract is per key).
            assert_eq!(
                changes_per_key(events),
                changes_per_key(wanted),
                "{bucket}: every change, in order per key"
            );
        } else {
            assert_eq!(events, wanted, "{bucket}: every change, in order");
        }
    }
    let total = expected.len();
    let _ = stop.send(());
    let report = serving.await.unwrap().expect("the watch ran");
    assert_eq!(report.delivered, total as u64);
    eprintln!(
        "watcher: {total} changes on {} buckets delivered in {:.1?}",
        names.len(),
        started.elapsed()
    );
}

/// Logged changes (`"set KEY VALUE"`, `"delete KEY"`) grouped by key, in
/// their order.
fn changes_per_key(events: &[String]) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut per_key = std::collections::BTreeMap::<String, Vec<String>>::new();
    for event in events {
        let key = event.split(' ').nth(1).unwrap_or_default().to_string();
        per_key.entry(key).or_default().push(event.clone());
    }
    per_key
}

/// etcd's watch is native: writes made with a plain etcd client, outside
/// wasikv, reach the watcher component too.
#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread")]
async fn etcd_watch_sees_outside_writers() {
    let prefix = format!("wasikv-test/watch-{:08x}/", rand::random::<u32>());
    let endpoint = wasikv_etcd::testing::test_endpoint();
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(&config(
        dir.path(),
        &format!(
            "[buckets.e]\nprovider = \"etcd\"\nendpoints = [{endpoint:?}]\nprefix = {prefix:?}\n\
             [buckets.watch-log]\nprovider = \"memory\"\n"
        ),
    ))
    .unwrap();
    let (stop, serving) = serve_watcher(&runtime, &["e"]).await;
    let outside =
        wasikv_etcd::core::EtcdStore::connect(&wasikv_etcd::testing::config_for(&endpoint, 5_000))
            .await
            .expect("etcd reachable");
    let mut kv = outside.kv.clone();
    let started = std::time::Instant::now();
    kv.put(format!("{prefix}outside"), "v1", None)
        .await
        .unwrap();
    kv.delete(format!("{prefix}outside"), None).await.unwrap();
    let log = runtime.buckets().open(None, "watch-log").await.unwrap();
    let expected = ["set outside v1", "delete outside"];
    let events = watch_log(&log, expected.len()).await;
    let latency = started.elapsed();
    let _ = stop.send(());
    serving.await.unwrap().expect("the watch ran");
    assert_eq!(events, expected);
    eprintln!("etcd watch: 2 outside changes recorded by the watcher in {latency:.1?}");
}

/// Redis' watch is native: changes made through another host process (its
/// own connection and buckets) reach the watcher too.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread")]
async fn redis_watch_sees_other_hosts() {
    let prefix = format!("wasikv-test:watch-{:08x}:", rand::random::<u32>());
    let url = wasikv_redis::testing::test_url();
    let bucket = format!(
        "[buckets.r]\nprovider = \"redis\"\nurl = {url:?}\nprefix = {prefix:?}\n\
         [buckets.watch-log]\nprovider = \"memory\"\n"
    );
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let watching = Runtime::new(&config(dir_a.path(), &bucket)).unwrap();
    let other = Runtime::new(&config(dir_b.path(), &bucket)).unwrap();
    let (stop, serving) = serve_watcher(&watching, &["r"]).await;
    let started = std::time::Instant::now();
    for args in [["set", "r", "1", "2"], ["delete", "r", "k", ""]] {
        let args: Vec<&str> = args.into_iter().filter(|a| !a.is_empty()).collect();
        let out = run(&other, wasikv_artifacts::PROBE, "probe", &args, &[]).await;
        assert!(out.stdout.starts_with("ok"), "{args:?}: {}", out.stdout);
    }
    let log = watching.buckets().open(None, "watch-log").await.unwrap();
    let events = watch_log(&log, 2).await;
    let latency = started.elapsed();
    let _ = stop.send(());
    serving.await.unwrap().expect("the watch ran");
    assert_eq!(events, ["set k vv", "delete k"]);
    eprintln!("redis watch: 2 changes from another host recorded by the watcher in {latency:.1?}");
}

/// Answers one request through the library's [`HttpHandler`], as an
/// embedder would without a server: status and body.
async fn handle(
    handler: &wasikv_host::serve::HttpHandler,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, String) {
    use http_body_util::BodyExt;

    let request = http::Request::builder()
        .method(method)
        .uri(format!("http://localhost{path}"))
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_string(),
        )))
        .unwrap();
    let response = handler.handle(request).await;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// An HTTP handler for `wasm` over `config`, through the public API only.
fn http_handler(
    dir: &Path,
    config_text: &str,
    wasm: &str,
    name: &str,
    max_concurrent_requests: usize,
) -> wasikv_host::serve::HttpHandler {
    use wasikv_host::serve::{HandlerOptions, HttpHandler};

    let config = config(dir, config_text);
    let runtime = Runtime::with_buckets(
        std::sync::Arc::new(wasikv_host::Buckets::from_config(&config).unwrap()),
        config.serve.runtime(&config.runtime).unwrap(),
    )
    .unwrap();
    let component = runtime.load(Path::new(wasm)).unwrap();
    let mut options = HandlerOptions::new(name, &config.serve);
    options.max_concurrent_requests = max_concurrent_requests;
    HttpHandler::new(std::sync::Arc::new(runtime), &component, options).unwrap()
}

/// The HTTP example through the library API (`wasikv serve`'s tests drive
/// it over real HTTP in serve.rs).
#[tokio::test(flavor = "multi_thread")]
async fn http_kv() {
    let dir = tempfile::tempdir().unwrap();
    let handler = http_handler(
        dir.path(),
        "[buckets.default]\nprovider = \"memory\"\n",
        wasikv_artifacts::HTTP_KV,
        "http-kv",
        4,
    );
    assert_eq!(handle(&handler, "PUT", "/kv/a%20b", "value").await.0, 204);
    assert_eq!(
        handle(&handler, "GET", "/kv/a%20b", "").await,
        (200, "value".into())
    );
    assert_eq!(
        handle(&handler, "GET", "/counter/x", "").await,
        (200, "{\"name\":\"x\",\"count\":1}\n".into())
    );
    assert_eq!(
        handle(&handler, "GET", "/kv", "").await,
        (200, "[\"a b\",\"counter:x\"]\n".into())
    );
    assert_eq!(handle(&handler, "GET", "/nowhere", "").await.0, 404);
    // Each instance ends shortly after its response (its task drops it).
    assert!(handler.drain(std::time::Duration::from_secs(10)).await);
    assert_eq!(handler.in_flight(), 0);
}

/// A trap is a 500 for its request only; the concurrency limit is a 503.
#[tokio::test(flavor = "multi_thread")]
async fn http_probe() {
    let dir = tempfile::tempdir().unwrap();
    let handler = std::sync::Arc::new(http_handler(
        dir.path(),
        "",
        wasikv_artifacts::HTTP_PROBE,
        "http-probe",
        1,
    ));
    let (status, body) = handle(&handler, "GET", "/trap", "").await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(handle(&handler, "GET", "/", "").await, (200, "ok\n".into()));
    // The one permit comes back once that instance has ended.
    assert!(handler.drain(std::time::Duration::from_secs(10)).await);
    let slow = {
        let handler = handler.clone();
        tokio::spawn(async move { handle(&handler, "GET", "/sleep/1000", "").await })
    };
    while handler.in_flight() == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(handle(&handler, "GET", "/", "").await.0, 503);
    assert_eq!(slow.await.unwrap(), (200, "slept 1000 ms\n".into()));
    assert!(handler.drain(std::time::Duration::from_secs(5)).await);
}

/// The serve benchmark's draft-WIT component runs under wasikv (its baseline
/// run is in examples/serve_baseline.rs).
#[tokio::test(flavor = "multi_thread")]
async fn http_bench() {
    let dir = tempfile::tempdir().unwrap();
    let handler = http_handler(
        dir.path(),
        "[buckets.\"\"]\nprovider = \"memory\"\n",
        wasikv_artifacts::HTTP_BENCH,
        "http-bench",
        4,
    );
    for count in 1..=3 {
        assert_eq!(
            handle(&handler, "GET", "/", "").await,
            (200, format!("{count}\n"))
        );
    }
}

/// A guest built against the 2024-10-17 revision of `batch@0.2.0-draft2`
/// (the `get-many` shape Spin's SDK uses) runs unchanged: the host links the
/// shape the component imports.
#[tokio::test(flavor = "multi_thread")]
async fn batch_2024() {
    let dir = tempfile::tempdir().unwrap();
    let runtime =
        Runtime::new(&config(dir.path(), "[buckets.b]\nprovider = \"memory\"\n")).unwrap();
    let component = runtime
        .load(Path::new(wasikv_artifacts::BATCH_2024))
        .unwrap();
    assert_eq!(
        wasikv_host::GetManyShape::of(&component, runtime.engine()),
        wasikv_host::GetManyShape::KeyAndOption
    );
    let conformance = runtime
        .load(Path::new(wasikv_artifacts::CONFORMANCE))
        .unwrap();
    assert_eq!(
        wasikv_host::GetManyShape::of(&conformance, runtime.engine()),
        wasikv_host::GetManyShape::OptionalPair
    );
    let out = run(
        &runtime,
        wasikv_artifacts::BATCH_2024,
        "batch-2024",
        &["b"],
        &[],
    )
    .await;
    assert_eq!(
        (out.exit_code, out.stdout.as_str()),
        (0, "ok\n"),
        "{}",
        out.stderr
    );
}
