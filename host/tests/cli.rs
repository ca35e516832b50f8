//! The `wasikv` binary: run, providers, check; and the generated docs.

use std::path::Path;
use std::process::{Command, Output};

fn wasikv(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasikv"));
    cmd.args(args).current_dir(dir);
    // The user's environment must not leak into these tests.
    for (key, _) in std::env::vars() {
        if key.starts_with("WASIKV_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("XDG_CACHE_HOME", dir.join("xdg-cache"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run wasikv")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn run_uses_the_embedded_default_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    for visit in 1..=2 {
        let out = wasikv(
            dir.path(),
            &["run", wasikv_artifacts::COUNTER, "--", "bob"],
            &[],
        );
        assert!(
            out.status.success(),
            "{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert!(
            text(&out.stdout).contains(&format!("visit number {visit} ")),
            "{}",
            text(&out.stdout)
        );
    }
    assert!(
        dir.path().join(".wasikv").join("default.redb").is_file(),
        "default bucket under .wasikv/"
    );
}

#[test]
fn run_passes_env_and_reports_guest_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let out = wasikv(
        dir.path(),
        &["run", "--env", "BUCKET=nope", wasikv_artifacts::COUNTER],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot open bucket \"nope\": no such store"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn run_reports_a_missing_component() {
    let dir = tempfile::tempdir().unwrap();
    let out = wasikv(dir.path(), &["run", "missing.wasm"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot read component missing.wasm"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn check_a_good_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wasikv.toml"),
        "[buckets.cache]\nprovider = \"memory\"\n\n[buckets.files]\nprovider = \"embedded\"\npath = \"data/files.redb\"\n",
    )
    .unwrap();
    let out = wasikv(
        dir.path(),
        &["check"],
        &[("WASIKV_BUCKETS__EXTRA__PROVIDER", "memory")],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    for bucket in ["cache", "default", "extra", "files"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("ok") && l.contains(bucket)),
            "{bucket}: {stdout}"
        );
    }
    assert!(stdout.contains("4 buckets: 4 ok, 0 failed"), "{stdout}");
}

#[test]
fn check_a_bad_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "[buckets.cache]\nprovider = \"memory\"\nmapp = \"typo\"\n",
    )
    .unwrap();
    let out = wasikv(
        dir.path(),
        &["check", "--config", config.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("bucket \"cache\" (memory)") && stderr.contains("mapp"),
        "{stderr}"
    );

    let out = wasikv(dir.path(), &["check", "--config", "nowhere.toml"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("config file nowhere.toml does not exist"));

    std::fs::write(&config, "[buckets.cache\n").unwrap();
    let out = wasikv(
        dir.path(),
        &["check", "--config", config.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("TOML parse error"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn check_reports_a_bucket_that_cannot_connect() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("blocker"), b"a file, not a directory").unwrap();
    std::fs::write(
        dir.path().join("wasikv.toml"),
        "[buckets.broken]\nprovider = \"embedded\"\npath = \"blocker/inside.redb\"\n",
    )
    .unwrap();
    let out = wasikv(dir.path(), &["check"], &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("FAILED") && l.contains("broken") && l.contains("embedded")),
        "{stdout}"
    );
    assert!(stdout.contains("2 buckets: 1 ok, 1 failed"), "{stdout}");
}

#[test]
fn providers_prints_the_documented_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let out = wasikv(dir.path(), &["providers"], &[]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), wasikv_host::matrix::markdown());
}

/// docs/capabilities.md holds the generated matrix of a build with every
/// provider (`--all-features`, as CI runs) between markers;
/// `WASIKV_BLESS=1 cargo test --release --all-features -p wasikv-host --test cli` rewrites it.
#[cfg(all(
    feature = "redis",
    feature = "etcd",
    feature = "memcached",
    feature = "dynamodb",
    feature = "firestore",
    feature = "cosmos"
))]
#[test]
fn docs_capability_matrix_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/capabilities.md");
    let doc = std::fs::read_to_string(&path).expect("docs/capabilities.md");
    let (start, end) = ("<!-- matrix:start -->\n", "<!-- matrix:end -->");
    let (head, rest) = doc.split_once(start).expect("start marker");
    let (current, tail) = rest.split_once(end).expect("end marker");
    let generated = wasikv_host::matrix::markdown();
    if current != generated {
        if std::env::var_os("WASIKV_BLESS").is_some() {
            std::fs::write(&path, format!("{head}{start}{generated}{end}{tail}")).unwrap();
        } else {
            panic!(
                "docs/capabilities.md is stale; run `WASIKV_BLESS=1 cargo test --release --all-features -p wasikv-host --test cli`"
            );
        }
    }
}

/// Secrets in configuration never reach `wasikv check` output, valid or not.
#[cfg(all(feature = "redis", feature = "etcd"))]
#[test]
fn check_never_prints_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let configs = [
        "[buckets.r]\nprovider = \"redis\"\nurl = \"redis://user:hunter2@127.0.0.1:1/0\"\nconnect_timeout_ms = 300\n\
         [buckets.e]\nprovider = \"etcd\"\nendpoints = [\"http://127.0.0.1:1\"]\nusername = \"u\"\npassword = \"hunter2\"\nconnect_timeout_ms = 300\n",
        "[buckets.bad]\nprovider = \"redis\"\nurl = \"redis://user:hunter2@[bad\"\n",
        "[buckets.e]\nprovider = \"etcd\"\nendpoints = [\"http://127.0.0.1:1\"]\npassword = \"hunter2\"\n",
    ];
    for config in configs {
        std::fs::write(dir.path().join("wasikv.toml"), config).unwrap();
        let out = wasikv(dir.path(), &["check"], &[]);
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(!out.status.success(), "{all}");
        assert!(!all.contains("hunter2"), "a secret leaked:\n{all}");
    }
}

/// `RUST_LOG=wasikv_host::call=debug` (or `WASIKV_LOG`) logs one line per
/// host call with bucket, provider, operation, outcome and latency; by
/// default nothing is logged for calls.
#[test]
fn host_calls_are_traced_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "run",
        wasikv_artifacts::PROBE,
        "--",
        "get",
        "default",
        "nothing-here",
    ];
    let quiet = wasikv(dir.path(), &args, &[]);
    assert!(quiet.status.success(), "{}", text(&quiet.stderr));
    assert!(
        !text(&quiet.stderr).contains("kv{"),
        "{}",
        text(&quiet.stderr)
    );
    for var in ["RUST_LOG", "WASIKV_LOG"] {
        let out = wasikv(dir.path(), &args, &[(var, "wasikv_host::call=debug")]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let log = text(&out.stderr);
        let line = log
            .lines()
            .find(|l| l.contains("kv{") && l.contains("op=\"get\""))
            .unwrap_or_else(|| panic!("{var}: no span line for the get:\n{log}"));
        for field in [
            "bucket=default",
            "provider=\"embedded\"",
            "outcome=\"ok\"",
            "latency_us=",
        ] {
            assert!(line.contains(field), "{var}: {field} missing in {line}");
        }
    }
}

/// Secrets in configuration never reach the output of a run, even with every
/// crate's debug logging on: a Redis password, a DynamoDB secret key and a
/// Cosmos DB account key, each used against the test servers.
#[cfg(all(feature = "redis", feature = "dynamodb", feature = "cosmos"))]
#[test]
fn runs_never_log_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let cosmos_key = "aHVudGVyMi1jb3Ntb3Mta2V5"; // base64 of hunter2-cosmos-key
    let config = format!(
        "[buckets.r]\nprovider = \"redis\"\nurl = \"redis://user:hunter2-redis@127.0.0.1:6379/0\"\n\
         [buckets.d]\nprovider = \"dynamodb\"\ntable = \"wasikv-test\"\nprefix = \"secrets/\"\nregion = \"us-east-1\"\n\
         endpoint = {:?}\naccess_key_id = \"test\"\nsecret_access_key = \"hunter2-dynamo\"\n\
         [buckets.c]\nprovider = \"cosmos\"\nendpoint = {:?}\nkey = {cosmos_key:?}\n\
         database = \"wasikv-test\"\ncontainer = \"shared\"\npartition = \"secrets\"\ncreate = true\n",
        wasikv_dynamodb::testing::test_endpoint(),
        wasikv_cosmos::testing::test_endpoint(),
    );
    std::fs::write(dir.path().join("wasikv.toml"), config).unwrap();
    for bucket in ["r", "d", "c"] {
        let out = wasikv(
            dir.path(),
            &["run", wasikv_artifacts::PROBE, "--", "get", bucket, "k"],
            &[("RUST_LOG", "debug")],
        );
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(all.contains("DEBUG"), "debug logging is on:\n{all}");
        if bucket == "r" {
            // A wrong Redis password is access-denied, not a generic error.
            assert!(text(&out.stdout).contains("error access-denied"), "{all}");
        }
        for secret in ["hunter2", cosmos_key] {
            assert!(
                !all.contains(secret),
                "bucket {bucket}: a secret leaked:\n{all}"
            );
        }
    }
}

/// `wasikv gc` deletes orphaned chunks older than the grace period, keeps a
/// live large value's chunks, and skips buckets that never chunk.
#[tokio::test]
async fn gc_deletes_old_orphaned_chunks() {
    use std::sync::Arc;
    use wasikv_core::chunks::{self, WriteId};
    use wasikv_core::{Bucket, WriteCondition};

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let file = dir.path().join("data/files.redb");
    std::fs::write(
        dir.path().join("wasikv.toml"),
        "[buckets.files]\nprovider = \"embedded\"\npath = \"data/files.redb\"\nmax_value_bytes = 4096\n\n[buckets.cache]\nprovider = \"memory\"\n",
    )
    .unwrap();
    let open = || {
        let store = Arc::new(wasikv_embedded::core::EmbeddedStore::open(&file).unwrap());
        let raw: Arc<dyn Bucket> = Arc::new(
            wasikv_embedded::EmbeddedBucket::new(store, "files").with_max_value_bytes(Some(4096)),
        );
        let layered = wasikv_host::emulate::EmulatedBucket::new(
            raw.clone(),
            wasikv_host::emulate::EmulationPolicy::default(),
        );
        (raw, layered)
    };
    let live: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    let count_chunks = |raw: Arc<dyn Bucket>| async move {
        wasikv_core::suite::list_all(&*raw, 100)
            .await
            .unwrap()
            .iter()
            .filter(|k| chunks::parse_chunk_key(k).is_some())
            .count()
    };
    let live_chunks = {
        let (raw, b) = open();
        b.set("live", live.clone(), WriteCondition::Always)
            .await
            .unwrap();
        let live_chunks = count_chunks(raw.clone()).await;
        let old = WriteId {
            created_ms: WriteId::new(0).created_ms - 7_200_000,
            random: 9,
        };
        for i in 0..3 {
            raw.set(
                &chunks::chunk_key(&old, i, "crashed"),
                vec![1; 100],
                WriteCondition::Always,
            )
            .await
            .unwrap();
        }
        live_chunks
    };
    let out = wasikv(dir.path(), &["gc", "--grace-secs", "60"], &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.lines().any(|l| l.starts_with("ok")
            && l.contains("files")
            && l.contains("3 orphaned chunks deleted")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("skip") && l.contains("cache")),
        "{stdout}"
    );
    let (raw, b) = open();
    assert_eq!(count_chunks(raw).await, live_chunks);
    assert_eq!(b.get("live").await.unwrap(), Some(live));
}
