//! The guest conformance component: exercises every function of
//! wasi:keyvalue@0.2.0-draft2 through a real host and prints one line per
//! check, then `N passed, N failed`. Exits 1 when a check failed.
//!
//! `conformance [BUCKET]` (default: `$BUCKET`, else "default"). With
//! `$DENIED_BUCKET` set, also checks that opening it is `access-denied`.
//! Keys live under a fresh prefix per run and are deleted at the end.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "wasi:keyvalue/imports@0.2.0-draft2",
});

use std::collections::HashSet;

use wasi::keyvalue::atomics::{self, Cas, CasError};
use wasi::keyvalue::batch;
use wasi::keyvalue::store::{self, Bucket, Error};

type Check = Result<(), String>;
/// A named check.
type NamedCheck = (&'static str, fn(&Ctx) -> Check);

macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => { if !$cond { return Err(format!($($arg)+)); } };
}

macro_rules! ensure_eq {
    ($left:expr, $right:expr, $($arg:tt)+) => {{
        let (l, r) = (&$left, &$right);
        if l != r { return Err(format!("{}: got {:?}, expected {:?}", format!($($arg)+), l, r)); }
    }};
}

struct Ctx {
    bucket: Bucket,
    bucket_name: String,
    prefix: String,
    /// Whether list-keys works here (memcached, for one, reports it unsupported).
    can_list: bool,
}

impl Ctx {
    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

fn show(e: &Error) -> String {
    match e {
        Error::NoSuchStore => "no-such-store".into(),
        Error::AccessDenied => "access-denied".into(),
        Error::Other(m) => format!("other({m})"),
    }
}

trait Ctxt<T> {
    fn ctx(self, what: &str) -> Result<T, String>;
}

impl<T> Ctxt<T> for Result<T, Error> {
    fn ctx(self, what: &str) -> Result<T, String> {
        self.map_err(|e| format!("{what}: {}", show(&e)))
    }
}

fn main() {
    let bucket_name = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("BUCKET").ok())
        .unwrap_or_else(|| "default".into());
    let bucket = match store::open(&bucket_name) {
        Ok(b) => b,
        Err(e) => {
            println!("FAIL open {bucket_name:?}: {}", show(&e));
            println!("0 passed, 1 failed");
            std::process::exit(1);
        }
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let can_list = match bucket.list_keys(None) {
        Ok(_) => true,
        Err(Error::Other(m)) if m.contains("unsupported") => false,
        Err(e) => {
            println!("FAIL list-keys probe: {}", show(&e));
            println!("0 passed, 1 failed");
            std::process::exit(1);
        }
    };
    if !can_list {
        println!(
            "note: list-keys is reported unsupported by this bucket; listing checks are skipped"
        );
    }
    let ctx = Ctx {
        bucket,
        bucket_name,
        prefix: format!("conformance-{nanos:x}/"),
        can_list,
    };

    let checks: Vec<NamedCheck> = vec![
        (
            "open-unknown-is-no-such-store",
            open_unknown_is_no_such_store,
        ),
        ("open-denied-is-access-denied", open_denied_is_access_denied),
        ("get-missing-is-none", get_missing_is_none),
        ("set-get-overwrite", set_get_overwrite),
        ("empty-value-is-some-empty", empty_value_is_some_empty),
        ("all-byte-values", all_byte_values),
        ("delete-and-exists", delete_and_exists),
        ("key-corpus", key_corpus),
        ("handles-share-data", handles_share_data),
        ("list-keys-pages-exactly-once", list_keys_pages_exactly_once),
        (
            "list-keys-forged-cursor-is-error",
            list_keys_forged_cursor_is_error,
        ),
        (
            "increment-creates-and-renders-decimal",
            increment_creates_and_renders_decimal,
        ),
        (
            "increment-non-numeric-is-error",
            increment_non_numeric_is_error,
        ),
        ("increment-overflow-is-error", increment_overflow_is_error),
        ("cas-create-if-absent", cas_create_if_absent),
        ("cas-swap-unchanged-succeeds", cas_swap_unchanged_succeeds),
        (
            "cas-stale-after-set-fails-with-fresh-handle",
            cas_stale_after_set,
        ),
        (
            "cas-stale-after-same-bytes-write",
            cas_stale_after_same_bytes,
        ),
        ("cas-stale-after-delete", cas_stale_after_delete),
        (
            "cas-stale-after-delete-and-recreate",
            cas_stale_after_delete_and_recreate,
        ),
        (
            "cas-create-race-on-existing-key",
            cas_create_race_on_existing_key,
        ),
        ("get-many-order-holes-repeats", get_many_order_holes_repeats),
        ("set-many-last-wins", set_many_last_wins),
        ("delete-many", delete_many),
        ("large-values-3mb", large_values_3mb),
        ("large-value-cas-3mb", large_value_cas_3mb),
        ("large-values-in-batches-3mb", large_values_in_batches_3mb),
        ("large-values-listed-once-3mb", large_values_listed_once_3mb),
    ];
    let (mut passed, mut failed) = (0, 0);
    for (name, check) in checks {
        match check(&ctx) {
            Ok(()) => {
                passed += 1;
                println!("ok {name}");
            }
            Err(msg) if msg == SKIP => println!("skip {name}"),
            Err(msg) => {
                failed += 1;
                println!("FAIL {name}: {msg}");
            }
        }
    }
    cleanup(&ctx);
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}

const SKIP: &str = "\0skip";

fn cleanup(ctx: &Ctx) {
    if !ctx.can_list {
        return;
    }
    let mut cursor = None;
    let mut mine = Vec::new();
    for _ in 0..10_000 {
        let Ok(page) = ctx.bucket.list_keys(cursor.as_deref()) else {
            break;
        };
        mine.extend(page.keys.into_iter().filter(|k| k.starts_with(&ctx.prefix)));
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let _ = batch::delete_many(&ctx.bucket, &mine);
}

fn open_unknown_is_no_such_store(_: &Ctx) -> Check {
    match store::open("wasikv-conformance-no-such-bucket") {
        Err(Error::NoSuchStore) => Ok(()),
        Err(e) => Err(format!("expected no-such-store, got {}", show(&e))),
        Ok(_) => Err("an unconfigured bucket opened".into()),
    }
}

fn open_denied_is_access_denied(_: &Ctx) -> Check {
    let Ok(denied) = std::env::var("DENIED_BUCKET") else {
        return Err(SKIP.into());
    };
    match store::open(&denied) {
        Err(Error::AccessDenied) => Ok(()),
        Err(e) => Err(format!("expected access-denied, got {}", show(&e))),
        Ok(_) => Err(format!("bucket {denied:?} opened although not allowed")),
    }
}

fn get_missing_is_none(c: &Ctx) -> Check {
    ensure_eq!(
        c.bucket.get(&c.key("missing")).ctx("get")?,
        None,
        "get of a missing key"
    );
    ensure_eq!(
        c.bucket.exists(&c.key("missing")).ctx("exists")?,
        false,
        "exists of a missing key"
    );
    Ok(())
}

fn set_get_overwrite(c: &Ctx) -> Check {
    let k = c.key("k");
    c.bucket.set(&k, b"one").ctx("set")?;
    ensure_eq!(
        c.bucket.get(&k).ctx("get")?,
        Some(b"one".to_vec()),
        "read your write"
    );
    c.bucket.set(&k, b"two").ctx("set")?;
    ensure_eq!(
        c.bucket.get(&k).ctx("get")?,
        Some(b"two".to_vec()),
        "overwrite"
    );
    Ok(())
}

fn empty_value_is_some_empty(c: &Ctx) -> Check {
    let k = c.key("empty");
    c.bucket.set(&k, b"").ctx("set")?;
    ensure_eq!(c.bucket.get(&k).ctx("get")?, Some(vec![]), "empty value");
    ensure!(c.bucket.exists(&k).ctx("exists")?, "an empty value exists");
    Ok(())
}

fn all_byte_values(c: &Ctx) -> Check {
    let k = c.key("bytes");
    let value: Vec<u8> = (0..=255).collect();
    c.bucket.set(&k, &value).ctx("set")?;
    ensure_eq!(c.bucket.get(&k).ctx("get")?, Some(value), "all byte values");
    Ok(())
}

fn delete_and_exists(c: &Ctx) -> Check {
    let k = c.key("del");
    c.bucket.delete(&k).ctx("delete of a missing key")?;
    c.bucket.set(&k, b"v").ctx("set")?;
    ensure!(c.bucket.exists(&k).ctx("exists")?, "exists after set");
    c.bucket.delete(&k).ctx("delete")?;
    ensure!(!c.bucket.exists(&k).ctx("exists")?, "exists after delete");
    ensure_eq!(c.bucket.get(&k).ctx("get")?, None, "get after delete");
    Ok(())
}

fn corpus(c: &Ctx) -> Vec<String> {
    [
        "",
        " ",
        "a/b",
        "#?",
        "\\",
        "\"q\"",
        "\t\n",
        "%41",
        "__x__",
        "ключ🔑",
    ]
    .iter()
    .map(|s| c.key(s))
    .chain(std::iter::once(c.key(&"k".repeat(1024 - c.prefix.len()))))
    .collect()
}

fn key_corpus(c: &Ctx) -> Check {
    let keys = corpus(c);
    for (i, k) in keys.iter().enumerate() {
        c.bucket
            .set(k, format!("{i}").as_bytes())
            .ctx(&format!("set {k:?}"))?;
    }
    for (i, k) in keys.iter().enumerate() {
        ensure_eq!(
            c.bucket.get(k).ctx("get")?,
            Some(format!("{i}").into_bytes()),
            "value of {k:?}"
        );
    }
    if c.can_list {
        let listed: HashSet<String> = list_mine(c)?.into_iter().collect();
        for k in &keys {
            ensure!(
                listed.contains(k),
                "list-keys did not return {k:?} unchanged"
            );
        }
    }
    batch::delete_many(&c.bucket, &keys).ctx("delete-many")?;
    Ok(())
}

fn handles_share_data(c: &Ctx) -> Check {
    let other = store::open(&c.bucket_name).ctx("second open")?;
    let k = c.key("shared");
    c.bucket.set(&k, b"via first").ctx("set")?;
    ensure_eq!(
        other.get(&k).ctx("get")?,
        Some(b"via first".to_vec()),
        "read through a second handle"
    );
    Ok(())
}

fn list_mine(c: &Ctx) -> Result<Vec<String>, String> {
    let mut keys = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100_000 {
        let page = c.bucket.list_keys(cursor.as_deref()).ctx("list-keys")?;
        keys.extend(page.keys.into_iter().filter(|k| k.starts_with(&c.prefix)));
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(keys),
        }
    }
    Err("list-keys never ended".into())
}

fn list_keys_pages_exactly_once(c: &Ctx) -> Check {
    if !c.can_list {
        return Err(SKIP.into());
    }
    let expected: Vec<String> = (0..250).map(|i| c.key(&format!("page-{i:03}"))).collect();
    let items: Vec<(String, Vec<u8>)> = expected
        .iter()
        .map(|k| (k.clone(), b"v".to_vec()))
        .collect();
    batch::set_many(&c.bucket, &items).ctx("set-many")?;
    let listed: Vec<String> = list_mine(c)?
        .into_iter()
        .filter(|k| k.contains("/page-"))
        .collect();
    let distinct: HashSet<&String> = listed.iter().collect();
    ensure_eq!(distinct.len(), listed.len(), "keys repeated across pages");
    let mut sorted = listed.clone();
    sorted.sort();
    ensure_eq!(sorted, expected, "every key exactly once");
    batch::delete_many(&c.bucket, &expected).ctx("delete-many")?;
    Ok(())
}

fn list_keys_forged_cursor_is_error(c: &Ctx) -> Check {
    if !c.can_list {
        return Err(SKIP.into());
    }
    for forged in ["garbage", "", "AQ", "AAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
        match c.bucket.list_keys(Some(forged)) {
            Err(Error::Other(_)) => {}
            Err(e) => {
                return Err(format!(
                    "forged cursor {forged:?}: expected other(..), got {}",
                    show(&e)
                ));
            }
            Ok(_) => return Err(format!("forged cursor {forged:?} was accepted")),
        }
    }
    Ok(())
}

fn increment_creates_and_renders_decimal(c: &Ctx) -> Check {
    let k = c.key("counter");
    ensure_eq!(
        atomics::increment(&c.bucket, &k, 5).ctx("increment")?,
        5,
        "increment of a missing key"
    );
    ensure_eq!(
        atomics::increment(&c.bucket, &k, -14).ctx("increment")?,
        -9,
        "negative delta"
    );
    ensure_eq!(
        c.bucket.get(&k).ctx("get")?,
        Some(b"-9".to_vec()),
        "decimal text"
    );
    c.bucket.set(&k, b"41").ctx("set")?;
    ensure_eq!(
        atomics::increment(&c.bucket, &k, 1).ctx("increment")?,
        42,
        "increment of a set value"
    );
    Ok(())
}

fn increment_non_numeric_is_error(c: &Ctx) -> Check {
    let k = c.key("text");
    for value in [&b"abc"[..], b"+1", b" 1", b"", b"\xff\x00"] {
        c.bucket.set(&k, value).ctx("set")?;
        ensure!(
            atomics::increment(&c.bucket, &k, 1).is_err(),
            "increment of {value:?} succeeded"
        );
        ensure_eq!(
            c.bucket.get(&k).ctx("get")?,
            Some(value.to_vec()),
            "value unchanged"
        );
    }
    Ok(())
}

fn increment_overflow_is_error(c: &Ctx) -> Check {
    let k = c.key("max");
    c.bucket
        .set(&k, i64::MAX.to_string().as_bytes())
        .ctx("set")?;
    ensure!(
        atomics::increment(&c.bucket, &k, 1).is_err(),
        "i64::MAX + 1 succeeded"
    );
    ensure_eq!(
        c.bucket.get(&k).ctx("get")?,
        Some(i64::MAX.to_string().into_bytes()),
        "unchanged"
    );
    Ok(())
}

fn cas_failed(result: Result<(), CasError>, what: &str) -> Result<Cas, String> {
    match result {
        Err(CasError::CasFailed(fresh)) => Ok(fresh),
        Err(CasError::StoreError(e)) => Err(format!(
            "{what}: expected cas-failed, got store-error {}",
            show(&e)
        )),
        Ok(()) => Err(format!("{what}: a stale swap succeeded")),
    }
}

fn swap(cas: Cas, value: &[u8], what: &str) -> Check {
    match atomics::swap(cas, value) {
        Ok(()) => Ok(()),
        Err(CasError::CasFailed(_)) => Err(format!("{what}: cas-failed")),
        Err(CasError::StoreError(e)) => Err(format!("{what}: {}", show(&e))),
    }
}

fn cas_create_if_absent(c: &Ctx) -> Check {
    let k = c.key("cas-new");
    let cas = Cas::new(&c.bucket, &k).ctx("cas new")?;
    ensure_eq!(
        cas.current().ctx("current")?,
        None,
        "current of a missing key"
    );
    swap(cas, b"created", "swap on a missing key")?;
    ensure_eq!(
        c.bucket.get(&k).ctx("get")?,
        Some(b"created".to_vec()),
        "created by swap"
    );
    Ok(())
}

fn cas_swap_unchanged_succeeds(c: &Ctx) -> Check {
    let k = c.key("cas-ok");
    c.bucket.set(&k, b"v1").ctx("set")?;
    let cas = Cas::new(&c.bucket, &k).ctx("cas new")?;
    ensure_eq!(
        cas.current().ctx("current")?,
        Some(b"v1".to_vec()),
        "current"
    );
    swap(cas, b"v2", "swap")?;
    ensure_eq!(
        c.bucket.get(&k).ctx("get")?,
        Some(b"v2".to_vec()),
        "swapped"
    );
    Ok(())
}

fn cas_stale_after_set(c: &Ctx) -> Check {
    let k = c.key("cas-stale");
    c.bucket.set(&k, b"v1").ctx("set")?;
    let cas = Cas::new(&c.bucket, &k).ctx("cas new")?;
    c.bucket.set(&k, b"v2").ctx("set")?;
    let fresh = cas_failed(atomics::swap(cas, b"lost"), "swap after a write")?;
    ensure_eq!(
        fresh.current().ctx("current")?,
        Some(b"v2".to_vec()),
        "the refreshed handle sees the latest value"
    );
    swap(fresh, b"v3", "swap with the refreshed handle")?;
    ensure_eq!(
        c.bucket.get(&k).ctx("get")?,
        Some(b"v3".to_vec()),
        "after retry"
    );
    Ok(())
}

fn cas_stale_after_same_bytes(c: &Ctx) -> Check {
    let k = c.key("cas-aba");
    c.bucket.set(&k, b"same").ctx("set")?;
    let cas = Cas::new(&c.bucket, &k).ctx("cas new")?;
    c.bucket.set(&k, b"same").ctx("set")?;
    cas_failed(atomics::swap(cas, b"lost"), "swap after a same-bytes write")?;
    ensure_eq!(
        c.bucket.get(&k).ctx("get")?,
        Some(b"same".to_vec()),
        "unchanged"
    );
    Ok(())
}

fn cas_stale_after_delete(c: &Ctx) -> Check {
    let k = c.key("cas-del");
    c.bucket.set(&k, b"v1").ctx("set")?;
    let cas = Cas::new(&c.bucket, &k).ctx("cas new")?;
    c.bucket.delete(&k).ctx("delete")?;
    let fresh = cas_failed(atomics::swap(cas, b"lost"), "swap after a delete")?;
    ensure_eq!(
        fresh.current().ctx("current")?,
        None,
        "the refreshed handle sees the delete"
    );
    ensure_eq!(c.bucket.get(&k).ctx("get")?, None, "not re-created");
    Ok(())
}

fn cas_stale_after_delete_and_recreate(c: &Ctx) -> Check {
    let k = c.key("cas-recreate");
    c.bucket.set(&k, b"v1").ctx("set")?;
    let cas = Cas::new(&c.bucket, &k).ctx("cas new")?;
    c.bucket.delete(&k).ctx("delete")?;
    c.bucket.set(&k, b"v1").ctx("set")?;
    cas_failed(atomics::swap(cas, b"lost"), "swap after delete + re-create")?;
    ensure_eq!(
        c.bucket.get(&k).ctx("get")?,
        Some(b"v1".to_vec()),
        "unchanged"
    );
    Ok(())
}

fn cas_create_race_on_existing_key(c: &Ctx) -> Check {
    let k = c.key("cas-race");
    let cas = Cas::new(&c.bucket, &k).ctx("cas new")?;
    c.bucket.set(&k, b"other writer").ctx("set")?;
    let fresh = cas_failed(
        atomics::swap(cas, b"lost"),
        "create-if-absent after another create",
    )?;
    ensure_eq!(
        fresh.current().ctx("current")?,
        Some(b"other writer".to_vec()),
        "refreshed"
    );
    Ok(())
}

fn get_many_order_holes_repeats(c: &Ctx) -> Check {
    let (a, b, m) = (c.key("gm-a"), c.key("gm-b"), c.key("gm-missing"));
    c.bucket.set(&a, b"1").ctx("set")?;
    c.bucket.set(&b, b"").ctx("set")?;
    let got = batch::get_many(&c.bucket, &[b.clone(), m.clone(), a.clone(), a.clone()])
        .ctx("get-many")?;
    let expected = vec![
        Some((b, vec![])),
        None,
        Some((a.clone(), b"1".to_vec())),
        Some((a, b"1".to_vec())),
    ];
    ensure_eq!(got, expected, "one entry per requested key");
    ensure_eq!(
        batch::get_many(&c.bucket, &[]).ctx("get-many of nothing")?,
        vec![],
        "empty"
    );
    Ok(())
}

fn set_many_last_wins(c: &Ctx) -> Check {
    let (a, b) = (c.key("sm-a"), c.key("sm-b"));
    let items = vec![
        (a.clone(), b"1".to_vec()),
        (b.clone(), b"x".to_vec()),
        (a.clone(), b"2".to_vec()),
    ];
    batch::set_many(&c.bucket, &items).ctx("set-many")?;
    ensure_eq!(
        c.bucket.get(&a).ctx("get")?,
        Some(b"2".to_vec()),
        "the last occurrence wins"
    );
    ensure_eq!(
        c.bucket.get(&b).ctx("get")?,
        Some(b"x".to_vec()),
        "other keys written"
    );
    Ok(())
}

fn delete_many(c: &Ctx) -> Check {
    let keys: Vec<String> = (0..5).map(|i| c.key(&format!("dm-{i}"))).collect();
    let items: Vec<(String, Vec<u8>)> = keys.iter().map(|k| (k.clone(), b"v".to_vec())).collect();
    batch::set_many(&c.bucket, &items).ctx("set-many")?;
    let mut doomed = keys[..3].to_vec();
    doomed.push(c.key("dm-never"));
    doomed.push(keys[0].clone());
    batch::delete_many(&c.bucket, &doomed).ctx("delete-many")?;
    for k in &keys[..3] {
        ensure!(!c.bucket.exists(k).ctx("exists")?, "{k:?} deleted");
    }
    for k in &keys[3..] {
        ensure!(c.bucket.exists(k).ctx("exists")?, "{k:?} kept");
    }
    Ok(())
}

/// Size of the large values: over the item limit of DynamoDB, Firestore,
/// Memcached, etcd and Cosmos DB, so the host stores them in chunks there.
const LARGE: usize = 3_000_000;

/// Deterministic bytes in which every position depends on `seed`.
fn large(seed: u8) -> Vec<u8> {
    (0..LARGE)
        .map(|i| ((i as u64 * 31 + u64::from(seed) * 97) % 251) as u8)
        .collect()
}

fn large_values_3mb(c: &Ctx) -> Check {
    let k = c.key("large");
    let (v1, v2) = (large(1), large(2));
    c.bucket.set(&k, &v1).ctx("set 3 MB")?;
    ensure!(
        c.bucket.get(&k).ctx("get")? == Some(v1),
        "3 MB value read back"
    );
    c.bucket.set(&k, &v2).ctx("overwrite 3 MB")?;
    ensure!(
        c.bucket.get(&k).ctx("get")? == Some(v2),
        "3 MB overwrite read back"
    );
    ensure!(c.bucket.exists(&k).ctx("exists")?, "3 MB value exists");
    c.bucket.set(&k, b"small").ctx("small over large")?;
    ensure_eq!(
        c.bucket.get(&k).ctx("get")?,
        Some(b"small".to_vec()),
        "small over large"
    );
    c.bucket.delete(&k).ctx("delete")?;
    ensure_eq!(c.bucket.get(&k).ctx("get")?, None, "deleted");
    Ok(())
}

fn large_value_cas_3mb(c: &Ctx) -> Check {
    let k = c.key("large-cas");
    let (v1, v2, v3) = (large(3), large(4), large(5));
    let cas = Cas::new(&c.bucket, &k).ctx("cas new")?;
    swap(cas, &v1, "create-if-absent of 3 MB")?;
    let cas = Cas::new(&c.bucket, &k).ctx("cas new")?;
    ensure!(
        cas.current().ctx("current")? == Some(v1),
        "current of a 3 MB value"
    );
    let stale = Cas::new(&c.bucket, &k).ctx("cas new")?;
    swap(cas, &v2, "swap 3 MB")?;
    let fresh = cas_failed(atomics::swap(stale, &v3), "stale swap of 3 MB")?;
    ensure!(
        fresh.current().ctx("current")? == Some(v2.clone()),
        "refreshed handle"
    );
    ensure!(
        c.bucket.get(&k).ctx("get")? == Some(v2),
        "unchanged by a stale swap"
    );
    match atomics::increment(&c.bucket, &k, 1) {
        Err(_) => {}
        Ok(n) => return Err(format!("increment of a 3 MB value returned {n}")),
    }
    swap(fresh, &v3, "swap with the refreshed handle")?;
    ensure!(c.bucket.get(&k).ctx("get")? == Some(v3), "after retry");
    c.bucket.delete(&k).ctx("delete")?;
    Ok(())
}

fn large_values_in_batches_3mb(c: &Ctx) -> Check {
    let (a, b, s) = (c.key("lb-a"), c.key("lb-b"), c.key("lb-small"));
    let (va, vb) = (large(6), large(7));
    let items = vec![
        (a.clone(), vb.clone()),
        (s.clone(), b"small".to_vec()),
        (b.clone(), vb.clone()),
        (a.clone(), va.clone()),
    ];
    batch::set_many(&c.bucket, &items).ctx("set-many")?;
    let keys = vec![a.clone(), c.key("lb-missing"), s.clone(), b.clone()];
    let got = batch::get_many(&c.bucket, &keys).ctx("get-many")?;
    ensure_eq!(got.len(), 4, "one entry per key");
    ensure!(
        got[0] == Some((a.clone(), va)),
        "first 3 MB value in get-many"
    );
    ensure!(got[1].is_none(), "missing key in get-many");
    ensure_eq!(
        got[2],
        Some((s.clone(), b"small".to_vec())),
        "small value in get-many"
    );
    ensure!(
        got[3] == Some((b.clone(), vb)),
        "second 3 MB value in get-many"
    );
    batch::delete_many(&c.bucket, &keys).ctx("delete-many")?;
    for k in &keys {
        ensure!(!c.bucket.exists(k).ctx("exists")?, "{k:?} deleted");
    }
    Ok(())
}

fn large_values_listed_once_3mb(c: &Ctx) -> Check {
    if !c.can_list {
        return Err(SKIP.into());
    }
    let keys: Vec<String> = (0..3).map(|i| c.key(&format!("ll-{i}"))).collect();
    for (i, k) in keys.iter().enumerate() {
        c.bucket.set(k, &large(10 + i as u8)).ctx("set 3 MB")?;
    }
    let listed = list_mine(c)?;
    let mut mine: Vec<String> = listed
        .iter()
        .filter(|k| k.contains("/ll-"))
        .cloned()
        .collect();
    mine.sort();
    ensure_eq!(mine, keys, "each large value's key listed once");
    // The host's chunk keys never list, whatever their prefix.
    let mut cursor: Option<String> = None;
    loop {
        let page = c.bucket.list_keys(cursor.as_deref()).ctx("list-keys")?;
        if let Some(hidden) = page.keys.iter().find(|k| k.contains("wasikv:chunk")) {
            return Err(format!("a chunk key was listed: {hidden:?}"));
        }
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    batch::delete_many(&c.bucket, &keys).ctx("delete-many")?;
    Ok(())
}
