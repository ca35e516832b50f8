//! A visit counter that persists between runs.
//!
//! `counter [NAME]` adds one visit for NAME (default: "world") to the bucket
//! named by the `BUCKET` environment variable (default: "default"), then
//! prints every counter in the bucket. Run it twice: the numbers go up.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "wasi:keyvalue/imports@0.2.0-draft2",
});

use wasi::keyvalue::{atomics, batch, store};

const PREFIX: &str = "visits:";

fn main() {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "world".to_string());
    let bucket_name = std::env::var("BUCKET").unwrap_or_else(|_| "default".to_string());
    if let Err(message) = run(&bucket_name, &name) {
        eprintln!("counter: {message}");
        std::process::exit(1);
    }
}

fn run(bucket_name: &str, name: &str) -> Result<(), String> {
    let bucket = store::open(bucket_name)
        .map_err(|e| format!("cannot open bucket {bucket_name:?}: {}", describe(&e)))?;
    let key = format!("{PREFIX}{name}");
    let visits = atomics::increment(&bucket, &key, 1)
        .map_err(|e| format!("increment {key:?}: {}", describe(&e)))?;
    println!("Hello, {name}! This is visit number {visits} (bucket {bucket_name:?}, key {key:?}).");

    // Every counter in the bucket, read page by page and fetched in one batch per page.
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let page = bucket
            .list_keys(cursor.as_deref())
            .map_err(|e| format!("list-keys: {}", describe(&e)))?;
        let keys: Vec<String> = page
            .keys
            .into_iter()
            .filter(|k| k.starts_with(PREFIX))
            .collect();
        if !keys.is_empty() {
            let values = batch::get_many(&bucket, &keys)
                .map_err(|e| format!("get-many: {}", describe(&e)))?;
            for (key, value) in values.into_iter().flatten() {
                all.push((
                    key[PREFIX.len()..].to_string(),
                    String::from_utf8_lossy(&value).into_owned(),
                ));
            }
        }
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    all.sort();
    let summary: Vec<String> = all.iter().map(|(who, n)| format!("{who}={n}")).collect();
    println!("Visits so far: {}", summary.join(", "));
    Ok(())
}

fn describe(e: &store::Error) -> String {
    match e {
        store::Error::NoSuchStore => "no such store".to_string(),
        store::Error::AccessDenied => "access denied".to_string(),
        store::Error::Other(msg) => msg.clone(),
    }
}
