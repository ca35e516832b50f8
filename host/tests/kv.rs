//! `wasikv kv`: the operator's commands, run as the binary against the
//! embedded default and the networked test servers (`scripts/services.sh`).

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use wasikv_host::{Buckets, Config, OpenBucket};

/// A directory holding `wasikv.toml` (the given bucket sections, the data
/// and cache directories inside it), where the commands run. `@DATA@` in
/// the sections stands for the data directory (embedded files given
/// there are the same for the commands and for this process).
struct Place {
    dir: tempfile::TempDir,
    toml: String,
}

impl Place {
    fn new(buckets: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let buckets = buckets.replace("@DATA@", data.to_str().unwrap());
        let toml = format!(
            "[runtime]\ndata_dir = {data:?}\ncache_dir = {:?}\n{buckets}",
            dir.path().join("cache")
        );
        std::fs::write(dir.path().join("wasikv.toml"), &toml).unwrap();
        Place { dir, toml }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasikv"));
        cmd.arg("kv").args(args).current_dir(self.path());
        for (key, _) in std::env::vars() {
            if key.starts_with("WASIKV_") {
                cmd.env_remove(key);
            }
        }
        cmd
    }

    /// Runs `wasikv kv ARGS` with `stdin` as its standard input.
    fn kv_with_input(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start wasikv");
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().expect("run wasikv")
    }

    fn kv(&self, args: &[&str]) -> Output {
        self.kv_with_input(args, b"")
    }

    /// Runs `wasikv kv ARGS` and expects exit code 0.
    fn ok(&self, args: &[&str]) -> Output {
        let out = self.kv(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "wasikv kv {args:?}\nstdout: {}\nstderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        );
        out
    }

    /// Runs `work` on bucket `name`, opened in this process and closed
    /// again before this returns (an embedded file has one user at a time,
    /// and a command may open it next).
    fn on<T>(&self, name: &str, work: impl AsyncFnOnce(&OpenBucket) -> T) -> T {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let config = Config::from_toml(&self.toml).unwrap();
            let buckets = Buckets::from_config(&config).unwrap();
            let bucket = buckets.open(None, name).await.unwrap();
            work(&bucket).await
        })
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run_id() -> String {
    format!("{:08x}", rand::random::<u32>())
}

/// Every key and value of `bucket`.
async fn dump(bucket: &OpenBucket) -> BTreeMap<String, Vec<u8>> {
    let mut keys = Vec::new();
    let mut cursor = None;
    loop {
        let (page, next) = bucket.list_keys(cursor.as_deref()).await.unwrap();
        keys.extend(page);
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut all = BTreeMap::new();
    for chunk in keys.chunks(100) {
        for (key, found) in chunk
            .iter()
            .zip(bucket.get_many(chunk.to_vec()).await.unwrap())
        {
            let (_, value) = found.unwrap_or_else(|| panic!("listed key {key:?} is missing"));
            assert!(
                all.insert(key.clone(), value).is_none(),
                "{key:?} listed twice"
            );
        }
    }
    all
}

/// Deletes every key of `bucket` (tests leave the shared servers clean).
async fn clear(bucket: &OpenBucket) {
    let keys: Vec<String> = dump(bucket).await.into_keys().collect();
    for chunk in keys.chunks(500) {
        bucket.delete_many(chunk.to_vec()).await.unwrap();
    }
}

/// Values of every size class, binary (not UTF-8).
fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + seed * 7) % 251) as u8 | 0x80)
        .collect()
}

/// `n` keys: the key codec's corpus, counters (made by `increment`),
/// values of mixed sizes (empty to 9 KB, and three of 400 KB, over the
/// DynamoDB emulator's item limit), filled into `bucket`.
async fn fill(bucket: &OpenBucket, n: usize) -> BTreeMap<String, Vec<u8>> {
    let mut data = BTreeMap::new();
    for (i, key) in wasikv_core::codec::corpus().into_iter().enumerate() {
        data.insert(key, pattern(i % 50, i));
    }
    for i in 0..3 {
        data.insert(format!("large/{i}"), pattern(400_000, i));
    }
    let counters = 100;
    let sizes = [0, 1, 17, 300, 2000, 9000];
    let mut i = 0;
    while data.len() < n - counters {
        data.insert(format!("k/{i:05}"), pattern(sizes[i % sizes.len()], i));
        i += 1;
    }
    let items: Vec<(String, Vec<u8>)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for chunk in items.chunks(200) {
        bucket.set_many(chunk.to_vec()).await.unwrap();
    }
    for c in 0..counters {
        let key = format!("counter/{c}");
        let n = bucket.increment(&key, c as i64 - 50).await.unwrap();
        data.insert(key, n.to_string().into_bytes());
    }
    assert_eq!(data.len(), n);
    data
}

/// Every single-key command and `list`, against `bucket`.
fn round_trips(place: &Place, bucket: &str) {
    let file = place.path().join("value.bin");
    let binary = pattern(3000, 1);
    std::fs::write(&file, &binary).unwrap();

    place.ok(&["set", bucket, "t/text", "hello"]);
    assert_eq!(text(&place.ok(&["get", bucket, "t/text"]).stdout), "hello");
    place.ok(&["set", bucket, "t/file", "--file", file.to_str().unwrap()]);
    assert_eq!(place.ok(&["get", bucket, "t/file"]).stdout, binary);
    let out = place.kv_with_input(&["set", bucket, "t/stdin", "-"], b"from stdin\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        place.ok(&["get", bucket, "t/stdin"]).stdout,
        b"from stdin\n"
    );
    place.ok(&["set", bucket, "t/empty", ""]);
    assert_eq!(place.ok(&["get", bucket, "t/empty"]).stdout, b"");

    // --json: one object that parses, the value in base64.
    let json: serde_json::Value =
        serde_json::from_slice(&place.ok(&["get", bucket, "t/file", "--json"]).stdout).unwrap();
    let value = base64::engine::general_purpose::STANDARD
        .decode(json["value"].as_str().unwrap())
        .unwrap();
    assert_eq!(value, binary);
    assert_eq!(json["bytes"], 3000);
    assert!(json["utf8"].is_null());
    let json: serde_json::Value =
        serde_json::from_slice(&place.ok(&["get", bucket, "t/text", "--json"]).stdout).unwrap();
    assert_eq!(json["utf8"], "hello");
    assert_eq!(json["key"], "t/text");

    // exists and get of a missing key: exit code 1.
    assert_eq!(
        text(&place.ok(&["exists", bucket, "t/text"]).stdout),
        "true\n"
    );
    let out = place.kv(&["exists", bucket, "t/none"]);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(1), "false\n".into())
    );
    let out = place.kv(&["get", bucket, "t/none"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("has no key \"t/none\""),
        "{}",
        text(&out.stderr)
    );

    // Counters: created at the delta, negative deltas, decimal text.
    assert_eq!(text(&place.ok(&["incr", bucket, "t/count"]).stdout), "1\n");
    assert_eq!(
        text(&place.ok(&["incr", bucket, "t/count", "41"]).stdout),
        "42\n"
    );
    assert_eq!(
        text(&place.ok(&["incr", bucket, "t/count", "-50"]).stdout),
        "-8\n"
    );
    assert_eq!(text(&place.ok(&["get", bucket, "t/count"]).stdout), "-8");
    place.ok(&["set", bucket, "t/neg", "-5"]); // a value starting with '-'
    assert_eq!(text(&place.ok(&["incr", bucket, "t/neg"]).stdout), "-4\n");
    place.ok(&["delete", bucket, "t/neg"]);
    let out = place.kv(&["incr", bucket, "t/text"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(bucket), "{}", text(&out.stderr));

    // list: every page (the config pages by 2), --prefix, --limit, --json.
    place.ok(&["set", bucket, "u/1", "x"]);
    let listed = text(&place.ok(&["list", bucket]).stdout);
    let mut keys: Vec<&str> = listed.lines().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["t/count", "t/empty", "t/file", "t/stdin", "t/text", "u/1"]
    );
    let listed = text(&place.ok(&["list", bucket, "--prefix", "u/"]).stdout);
    assert_eq!(listed, "u/1\n");
    let listed = text(&place.ok(&["list", bucket, "--limit", "3"]).stdout);
    assert_eq!(listed.lines().count(), 3, "{listed}");
    let json: Vec<String> = serde_json::from_slice(
        &place
            .ok(&["list", bucket, "--prefix", "t/", "--json"])
            .stdout,
    )
    .unwrap();
    assert_eq!(json.len(), 5, "{json:?}");

    // delete: several keys at once, absent ones too.
    place.ok(&["delete", bucket, "t/text", "t/file", "t/never"]);
    place.ok(&["delete", bucket, "u/1"]);
    let listed = text(&place.ok(&["list", bucket]).stdout);
    let mut keys: Vec<&str> = listed.lines().collect();
    keys.sort();
    assert_eq!(keys, ["t/count", "t/empty", "t/stdin"]);
    place.ok(&["delete", bucket, "t/count", "t/empty", "t/stdin"]);
}

#[test]
fn single_key_commands_and_list_on_embedded_and_networked_stores() {
    let (networked, names) = support::networked_buckets(&run_id());
    let place = Place::new(&format!("[limits]\nlist_page_keys = 2\n{networked}"));
    round_trips(&place, "default");
    #[cfg(feature = "redis")]
    round_trips(&place, "redis");
    // The other networked stores: a set and a get each.
    for name in names.iter().filter(|n| **n != "redis") {
        place.ok(&["set", name, "k", "v"]);
        assert_eq!(text(&place.ok(&["get", name, "k"]).stdout), "v", "{name}");
        place.ok(&["delete", name, "k"]);
    }
}

#[test]
fn errors_name_the_bucket_and_exit_with_documented_codes() {
    let place = Place::new("[buckets.other]\nprovider = \"memory\"\n");
    // A bucket that is not configured: exit 2, naming the configured ones.
    let out = place.kv(&["get", "nope", "k"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("no bucket \"nope\" is configured") && err.contains("default, other"),
        "{err}"
    );
    // Usage errors (clap): exit 2.
    assert_eq!(place.kv(&["set", "default"]).status.code(), Some(2));
    assert_eq!(place.kv(&["copy", "default"]).status.code(), Some(2));
    // A key over the limit: exit 3, naming bucket, provider and limit.
    let long = "k".repeat(5000);
    let out = place.kv(&["set", "default", &long, "v"]);
    assert_eq!(out.status.code(), Some(3));
    let err = text(&out.stderr);
    assert!(
        err.contains("default") && err.contains("embedded") && err.contains("max_key_bytes"),
        "{err}"
    );
    // A copy of a bucket onto itself.
    let out = place.kv(&["copy", "default", "default"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    // A file that does not exist.
    let out = place.kv(&["set", "default", "k", "--file", "missing.bin"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("missing.bin"));
}

/// Copies between two embedded buckets in each mode: what happens to keys
/// the destination already has, and the exit code when some fail.
#[test]
fn copy_modes_decide_what_happens_to_existing_keys() {
    let place = Place::new("[buckets.dst]\nprovider = \"embedded\"\npath = \"@DATA@/dst.redb\"\n");
    for (key, value) in [("a", "1"), ("b", "2"), ("c", "3")] {
        place.ok(&["set", "default", key, value]);
    }
    place.ok(&["set", "dst", "b", "2"]); // same value: unchanged
    place.ok(&["set", "dst", "c", "other"]); // another value: refused

    let out = place.kv(&["copy", "default", "dst"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("3 keys: 1 written, 1 unchanged, 0 skipped, 0 vanished, 1 failed"),
        "{err}"
    );
    assert!(err.contains("failed: key \"c\""), "{err}");
    assert_eq!(text(&place.ok(&["get", "dst", "c"]).stdout), "other");

    let out = place.ok(&["copy", "default", "dst", "--skip-existing"]);
    assert!(
        text(&out.stderr).contains("3 keys: 0 written, 0 unchanged, 3 skipped"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(text(&place.ok(&["get", "dst", "c"]).stdout), "other");

    let out = place.ok(&["copy", "default", "dst", "--overwrite", "--prefix", "c"]);
    assert!(
        text(&out.stderr).contains("1 keys: 1 written"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(text(&place.ok(&["get", "dst", "c"]).stdout), "3");
    // Not a terminal: no bar, and for a run this short no progress line.
    assert!(!text(&out.stderr).contains('\r'));
}

/// The `expected` keys (filled into `src`) are in `dst` after a copy, key
/// by key, and a counter still increments on `dst`.
#[cfg(any(all(feature = "redis", feature = "dynamodb"), feature = "etcd"))]
fn check_copy(place: &Place, src: &str, dst: &str, expected: &BTreeMap<String, Vec<u8>>) {
    let copied = place.on(dst, async |b| dump(b).await);
    assert_eq!(
        copied.len(),
        expected.len(),
        "keys in {dst} after the copy from {src}"
    );
    for (key, value) in expected {
        assert!(
            copied.get(key) == Some(value),
            "{dst}: key {key:?} differs after the copy"
        );
    }
    let before: i64 = text(&expected["counter/7"]).parse().unwrap();
    let after = text(&place.ok(&["incr", dst, "counter/7", "10"]).stdout);
    assert_eq!(after.trim(), (before + 10).to_string());
}

/// 10,000 keys from Redis to DynamoDB (batches on both sides), progress
/// lines on a pipe, and the summary.
#[cfg(all(feature = "redis", feature = "dynamodb"))]
#[test]
fn copy_of_10000_keys_from_redis_to_dynamodb() {
    let (networked, _) = support::networked_buckets(&run_id());
    let place = Place::new(&networked);
    let expected = place.on("redis", async |b| fill(b, 10_000).await);
    let started = Instant::now();
    let out = place.ok(&[
        "copy",
        "redis",
        "dynamodb",
        "--overwrite",
        "--progress-every",
        "1",
    ]);
    let err = text(&out.stderr);
    eprintln!("{err}");
    assert!(
        err.contains("copy redis -> dynamodb: 10000 keys: 10000 written, 0 unchanged, 0 skipped, 0 vanished, 0 failed"),
        "{err}"
    );
    // Plain progress lines when standard error is a pipe (one a second).
    if started.elapsed() > Duration::from_secs(3) {
        assert!(err.contains(" keys/s"), "{err}");
    }
    check_copy(&place, "redis", "dynamodb", &expected);
    for name in ["redis", "dynamodb"] {
        place.on(name, async |b| clear(b).await);
    }
}

/// 10,000 keys from etcd to the embedded store, killed after its first
/// checkpoint and run again: the second run goes on from the checkpoint
/// and the buckets end equal.
#[cfg(feature = "etcd")]
#[test]
fn interrupted_copy_from_etcd_to_embedded_resumes_from_its_checkpoint() {
    let (networked, _) = support::networked_buckets(&run_id());
    let place = Place::new(&format!(
        "[limits]\nlist_page_keys = 200\n{networked}\n[buckets.local]\nprovider = \"embedded\"\npath = \"@DATA@/local.redb\"\n"
    ));
    let expected = place.on("etcd", async |b| fill(b, 10_000).await);
    let checkpoint = place.path().join("copy.checkpoint");
    let args = [
        "copy",
        "etcd",
        "local",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
        "--concurrency",
        "2",
        "--quiet",
    ];
    let mut child = place
        .command(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !checkpoint.exists() {
        assert!(Instant::now() < deadline, "no checkpoint after 60 s");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the copy ended before its first checkpoint"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&checkpoint).unwrap()).unwrap();
    assert_eq!(state["finished"], false, "killed before the end: {state}");
    let done_before = state["tally"]["written"].as_u64().unwrap();
    assert!(done_before < 10_000, "{state}");

    let out = place.ok(&args);
    let err = text(&out.stderr);
    assert!(err.contains("copy etcd -> local: 10000 keys:"), "{err}");
    assert!(err.contains(" 0 failed"), "{err}");
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&checkpoint).unwrap()).unwrap();
    assert_eq!(state["finished"], true, "{state}");
    check_copy(&place, "etcd", "local", &expected);

    // The finished checkpoint: a third run does nothing.
    let out = place.ok(&args);
    assert!(
        text(&out.stderr).contains("nothing to do"),
        "{}",
        text(&out.stderr)
    );
    // A checkpoint of another copy is refused.
    let out = place.kv(&[
        "copy",
        "local",
        "etcd",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("records a copy of \"etcd\" to \"local\""));

    place.on("etcd", async |b| clear(b).await);
}

/// The store export and import go through: Redis when built in, else a
/// second embedded bucket.
fn other_store() -> (&'static str, String) {
    #[cfg(feature = "redis")]
    {
        let (networked, _) = support::networked_buckets(&run_id());
        return ("redis", networked);
    }
    #[allow(unreachable_code)]
    (
        "copy",
        "[buckets.copy]\nprovider = \"embedded\"\npath = \"@DATA@/copy.redb\"\n".into(),
    )
}

/// An export of the embedded default, imported into an empty bucket of
/// another provider, gives an equal bucket; imports of damaged exports
/// fail clearly.
#[test]
fn export_then_import_into_another_provider_gives_an_equal_bucket() {
    let (other, buckets_toml) = other_store();
    let place = Place::new(&format!("[limits]\nlist_page_keys = 50\n{buckets_toml}"));
    let expected = place.on("default", async |b| fill(b, 1000).await);
    let export = place.path().join("default.jsonl");
    place.ok(&["export", "default", "--output", export.to_str().unwrap()]);
    let lines: Vec<String> = std::fs::read_to_string(&export)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 1002, "header, 1000 keys, end");
    let header: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(header["format"], "wasikv-export");
    assert_eq!(header["provider"], "embedded");
    let end: serde_json::Value = serde_json::from_str(&lines[1001]).unwrap();
    assert_eq!(end["keys"], 1000);
    // To standard output, the same bytes.
    let out = place.ok(&["export", "default"]);
    assert_eq!(text(&out.stdout), lines.join("\n") + "\n");

    let out = place.ok(&["import", other, "--input", export.to_str().unwrap()]);
    assert!(
        text(&out.stderr).contains("1000 keys: 1000 written"),
        "{}",
        text(&out.stderr)
    );
    let imported = place.on(other, async |b| dump(b).await);
    assert!(
        imported == expected,
        "{other} differs from the export's source"
    );
    // Again, from standard input: every key is already there.
    let out = place.kv_with_input(&["import", other], &std::fs::read(&export).unwrap());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("1000 keys: 0 written, 1000 unchanged"));

    // Cut off before its end line: the keys it has are written, exit 4.
    let truncated = lines[..500].join("\n") + "\n";
    let out = place.kv_with_input(&["import", other, "--overwrite"], truncated.as_bytes());
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("truncated"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("499 keys: 499 written"),
        "{}",
        text(&out.stderr)
    );
    // A malformed line: exit 3, naming the line.
    let damaged = format!("{}\n{}\nnot json\n{}\n", lines[0], lines[1], lines[1001]);
    let out = place.kv_with_input(&["import", other], damaged.as_bytes());
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("export line 3"),
        "{}",
        text(&out.stderr)
    );
    // Not an export at all.
    let out = place.kv_with_input(&["import", other], b"{\"hello\":1}\n");
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("export line 1"),
        "{}",
        text(&out.stderr)
    );

    place.on(other, async |b| clear(b).await);
}
