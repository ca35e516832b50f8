//! A guest built against the 2024-10-17 revision of
//! `wasi:keyvalue/batch@0.2.0-draft2` (`get-many` returns
//! `list<tuple<string, option<list<u8>>>>`, as Spin's SDK does), to check
//! that the host serves it next to the contract's shape.
//!
//! `batch-2024 BUCKET`: prints `ok` or `FAIL: why`.

wit_bindgen::generate!({
    path: "../../../wit/draft2-2024-10-17",
    world: "wasi:keyvalue/guest-2024-10-17@0.2.0-draft2",
});

use wasi::keyvalue::{batch, store};

fn main() {
    let name = std::env::args().nth(1).unwrap_or_else(|| "default".into());
    match check(&name) {
        Ok(()) => println!("ok"),
        Err(e) => {
            println!("FAIL: {e}");
            std::process::exit(1);
        }
    }
}

fn check(name: &str) -> Result<(), String> {
    let bucket = store::open(name).map_err(|e| format!("open: {e:?}"))?;
    batch::set_many(
        &bucket,
        &[
            ("a".to_string(), b"1".to_vec()),
            ("b".to_string(), Vec::new()),
        ],
    )
    .map_err(|e| format!("set-many: {e:?}"))?;
    let keys = ["a", "missing", "b", "a"].map(String::from);
    let got = batch::get_many(&bucket, &keys).map_err(|e| format!("get-many: {e:?}"))?;
    let expected = vec![
        ("a".to_string(), Some(b"1".to_vec())),
        ("missing".to_string(), None),
        ("b".to_string(), Some(Vec::new())),
        ("a".to_string(), Some(b"1".to_vec())),
    ];
    if got != expected {
        return Err(format!("get-many answered {got:?}"));
    }
    batch::delete_many(&bucket, &["a".to_string(), "b".to_string()])
        .map_err(|e| format!("delete-many: {e:?}"))?;
    if bucket.exists("a").map_err(|e| format!("exists: {e:?}"))? {
        return Err("a still exists after delete-many".into());
    }
    Ok(())
}
