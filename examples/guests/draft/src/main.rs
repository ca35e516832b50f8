//! A guest built against the older `wasi:keyvalue@0.2.0-draft` (the WIT of
//! wasmtime-wasi-keyvalue and wasmCloud): u64 increment, numeric list-keys
//! cursors, no CAS. It checks those through the host and prints
//! `N passed, N failed`.
//!
//! `draft BUCKET [KEY VALUE]`: with KEY and VALUE, also checks that the
//! bucket holds VALUE at KEY (written by a draft2 guest in the same host).

wit_bindgen::generate!({
    path: "../../../wit/draft",
    world: "wasi:keyvalue/imports@0.2.0-draft",
});

use std::collections::HashSet;

use wasi::keyvalue::{atomics, batch, store};

type Check = Result<(), String>;

fn show(e: &store::Error) -> String {
    match e {
        store::Error::NoSuchStore => "no-such-store".into(),
        store::Error::AccessDenied => "access-denied".into(),
        store::Error::Other(m) => format!("other({m})"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bucket_name = args.get(1).cloned().unwrap_or_else(|| "default".into());
    let bucket = match store::open(&bucket_name) {
        Ok(b) => b,
        Err(e) => {
            println!("FAIL open: {}", show(&e));
            println!("0 passed, 1 failed");
            std::process::exit(1);
        }
    };
    let mut checks: Vec<(&str, Check)> = vec![
        ("set-get", set_get(&bucket)),
        ("increment-u64", increment(&bucket)),
        ("list-keys-numeric-cursors", list_keys(&bucket)),
        ("get-many", get_many(&bucket)),
    ];
    if let (Some(key), Some(value)) = (args.get(2), args.get(3)) {
        let shared = match bucket.get(key) {
            Ok(Some(v)) if v == value.as_bytes() => Ok(()),
            other => Err(format!(
                "{key:?}: expected {value:?}, got {:?}",
                other.map_err(|e| show(&e))
            )),
        };
        checks.push(("shared-with-draft2", shared));
    }
    let mut failed = 0;
    for (name, result) in &checks {
        match result {
            Ok(()) => println!("ok {name}"),
            Err(m) => {
                failed += 1;
                println!("FAIL {name}: {m}");
            }
        }
    }
    println!("{} passed, {failed} failed", checks.len() - failed);
    if failed > 0 {
        std::process::exit(1);
    }
}

fn set_get(b: &store::Bucket) -> Check {
    b.set("draft:k", b"v").map_err(|e| show(&e))?;
    match b.get("draft:k").map_err(|e| show(&e))? {
        Some(v) if v == b"v" => Ok(()),
        other => Err(format!("got {other:?}")),
    }
}

fn increment(b: &store::Bucket) -> Check {
    b.delete("draft:n").map_err(|e| show(&e))?;
    let n = atomics::increment(b, "draft:n", 5).map_err(|e| show(&e))?;
    if n != 5 {
        return Err(format!("5 on a missing key gave {n}"));
    }
    if atomics::increment(b, "draft:n", u64::MAX).is_ok() {
        return Err("a delta over i64::MAX was accepted".into());
    }
    // -10 + 5 = -5 cannot be returned as u64: an error, and nothing written
    // (a retry must not count twice).
    b.set("draft:neg", b"-10").map_err(|e| show(&e))?;
    if atomics::increment(b, "draft:neg", 5).is_ok() {
        return Err("a negative counter was returned as u64".into());
    }
    match b.get("draft:neg").map_err(|e| show(&e))? {
        Some(v) if v == b"-10" => {}
        other => {
            return Err(format!(
                "a refused increment changed the counter: -10 became {:?}",
                other.map(|v| String::from_utf8_lossy(&v).into_owned())
            ));
        }
    }
    // -10 + 15 = 5 is representable: allowed.
    match atomics::increment(b, "draft:neg", 15) {
        Ok(5) => Ok(()),
        other => Err(format!("-10 + 15 gave {:?}", other.map_err(|e| show(&e)))),
    }
}

fn list_keys(b: &store::Bucket) -> Check {
    let expected: HashSet<String> = (0..30).map(|i| format!("draft:page-{i:02}")).collect();
    let items: Vec<(String, Vec<u8>)> = expected
        .iter()
        .map(|k| (k.clone(), b"x".to_vec()))
        .collect();
    batch::set_many(b, &items).map_err(|e| show(&e))?;
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = b.list_keys(cursor).map_err(|e| show(&e))?;
        pages += 1;
        seen.extend(
            page.keys
                .into_iter()
                .filter(|k| k.starts_with("draft:page-")),
        );
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
        if pages > 1000 {
            return Err("list-keys never ended".into());
        }
    }
    let distinct: HashSet<String> = seen.iter().cloned().collect();
    if distinct.len() != seen.len() || distinct != expected {
        return Err(format!(
            "listed {} keys ({} distinct), expected 30",
            seen.len(),
            distinct.len()
        ));
    }
    if b.list_keys(Some(987_654_321)).is_ok() {
        return Err("an unknown numeric cursor was accepted".into());
    }
    Ok(())
}

fn get_many(b: &store::Bucket) -> Check {
    let got = batch::get_many(b, &["draft:k".to_string(), "draft:missing".to_string()])
        .map_err(|e| show(&e))?;
    if got != vec![Some(("draft:k".to_string(), b"v".to_vec())), None] {
        return Err(format!("got {got:?}"));
    }
    Ok(())
}
