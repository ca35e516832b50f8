//! A benchmark guest: a timed loop of one key-value call, built against
//! `wasi:keyvalue@0.2.0-draft` so the same binary runs on wasikv and on a
//! host made from `wasmtime-wasi-keyvalue` (the baseline).
//!
//! `bench BUCKET OP N [PREFIX]` with OP one of `get`, `set`, `set-distinct`
//! (keys `distinct-PREFIX<i>`, so concurrent instances can write distinct
//! keys), `increment`, `get-many-100`; prints `ok OP N calls NANOS ns`.

wit_bindgen::generate!({
    path: "../../../wit/draft",
    world: "wasi:keyvalue/imports@0.2.0-draft",
});

use wasi::keyvalue::{atomics, batch, store};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (bucket, op, n) = match (
        args.get(1),
        args.get(2),
        args.get(3).and_then(|n| n.parse::<u64>().ok()),
    ) {
        (Some(b), Some(op), Some(n)) => (b.clone(), op.clone(), n),
        _ => {
            println!("error usage: bench BUCKET OP N");
            std::process::exit(2);
        }
    };
    let bucket = store::open(&bucket).unwrap_or_else(|_| {
        println!("error cannot open the bucket");
        std::process::exit(2)
    });
    let prefix = args.get(4).cloned().unwrap_or_default();
    let keys: Vec<String> = (0..100).map(|i| format!("bench-{i}")).collect();
    for key in &keys {
        bucket.set(key, b"value").expect("set");
    }
    let started = std::time::Instant::now();
    for i in 0..n {
        let ok = match op.as_str() {
            "get" => bucket.get("bench-0").is_ok(),
            "set" => bucket.set("bench-0", b"value").is_ok(),
            "set-distinct" => bucket
                .set(&format!("distinct-{prefix}{i}"), b"value")
                .is_ok(),
            "increment" => atomics::increment(&bucket, "counter", 1).is_ok(),
            "get-many-100" => batch::get_many(&bucket, &keys).is_ok(),
            other => {
                println!("error unknown op {other:?}");
                std::process::exit(2);
            }
        };
        if !ok {
            println!("error {op} failed at call {i}");
            std::process::exit(1);
        }
    }
    println!("ok {op} {n} calls {} ns", started.elapsed().as_nanos());
}
