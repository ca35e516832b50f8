//! A test guest for the host's limits and routing. Each mode prints one
//! result line (`ok ...` or `error ...`) so the host's tests can check it.
//!
//! * `probe open BUCKET`: open and report the outcome;
//! * `probe set BUCKET KEY_BYTES VALUE_BYTES`: one set of the given sizes;
//! * `probe get-many BUCKET VALUE_BYTES COUNT`: store one value, then get-many it COUNT times;
//! * `probe spin`: loop forever (for the execution deadline);
//! * `probe alloc`: allocate without bound (for the memory limit);
//! * `probe get BUCKET KEY`: print the value as UTF-8;
//! * `probe delete BUCKET KEY`: delete the key;
//! * `probe loop OP BUCKET N`: N calls of OP (`get`, `set`, `set-distinct`,
//!   `increment`, `cas` (a CAS handle and a swap), `get-many-100`) and the
//!   calls per second the guest saw (`scripts/bench.sh` runs these per store);
//! * `probe increments BUCKET KEY N`: N increments of KEY by 1 (stops at the
//!   first error);
//! * `probe appends BUCKET KEY TOKEN N`: N read-modify-write CAS loops, each
//!   appending `,TOKEN-i` to KEY's value; prints the swaps that lost a race;
//! * `probe expires BUCKET KEY WAIT_MS`: set KEY, read it back, wait WAIT_MS
//!   milliseconds, and report whether it is still there for `get`,
//!   `exists`, `get-many` and `list-keys` (a bucket with a `ttl` shorter
//!   than the wait must say `ok expired`).

wit_bindgen::generate!({
    path: "../../../wit",
    world: "wasi:keyvalue/imports@0.2.0-draft2",
});

use wasi::keyvalue::{batch, store};

fn show(e: &store::Error) -> String {
    match e {
        store::Error::NoSuchStore => "no-such-store".into(),
        store::Error::AccessDenied => "access-denied".into(),
        store::Error::Other(m) => format!("other: {m}"),
    }
}

fn arg(n: usize) -> String {
    std::env::args().nth(n).unwrap_or_default()
}

fn num(n: usize) -> usize {
    arg(n).parse().expect("a number argument")
}

/// One CAS round: a handle on `key`, then a swap to the same value.
fn swap_unchanged(bucket: &store::Bucket, key: &str) -> Result<(), store::Error> {
    use wasi::keyvalue::atomics::{Cas, CasError, swap};
    let cas = Cas::new(bucket, key)?;
    swap(cas, b"value").map_err(|e| match e {
        CasError::StoreError(e) => e,
        CasError::CasFailed(_) => store::Error::Other("a lone swap lost a race".into()),
    })
}

/// One get-many of `keys`, every one of which must be found.
fn get_all(bucket: &store::Bucket, keys: &[String]) -> Result<(), store::Error> {
    match batch::get_many(bucket, keys)?.iter().all(Option::is_some) {
        true => Ok(()),
        false => Err(store::Error::Other("get-many missed a key".into())),
    }
}

fn open(name: &str) -> store::Bucket {
    match store::open(name) {
        Ok(b) => b,
        Err(e) => {
            println!("error {}", show(&e));
            std::process::exit(2);
        }
    }
}

fn main() {
    match arg(1).as_str() {
        "open" => {
            open(&arg(2));
            println!("ok opened");
        }
        "set" => {
            let bucket = open(&arg(2));
            let key = "k".repeat(num(3));
            match bucket.set(&key, &vec![b'v'; num(4)]) {
                Ok(()) => println!("ok set"),
                Err(e) => println!("error {}", show(&e)),
            }
        }
        "get" => {
            let bucket = open(&arg(2));
            match bucket.get(&arg(3)) {
                Ok(Some(v)) => println!("ok {}", String::from_utf8_lossy(&v)),
                Ok(None) => println!("ok none"),
                Err(e) => println!("error {}", show(&e)),
            }
        }
        "delete" => {
            let bucket = open(&arg(2));
            match bucket.delete(&arg(3)) {
                Ok(()) => println!("ok deleted"),
                Err(e) => println!("error {}", show(&e)),
            }
        }
        "get-many" => {
            let bucket = open(&arg(2));
            bucket.set("big", &vec![7u8; num(3)]).expect("set");
            let keys = vec!["big".to_string(); num(4)];
            match batch::get_many(&bucket, &keys) {
                Ok(values) => println!("ok {} values", values.len()),
                Err(e) => println!("error {}", show(&e)),
            }
        }
        "loop" => {
            let op = arg(2);
            let bucket = open(&arg(3));
            let n = num(4);
            bucket.set("loop", b"value").expect("set");
            let keys: Vec<String> = match op.as_str() {
                "get-many-100" => (0..100).map(|i| format!("loop-many-{i}")).collect(),
                _ => Vec::new(),
            };
            for key in &keys {
                bucket.set(key, b"value").expect("set");
            }
            // Large values: `set-1mib`, `get-8mib`, ... (the value is written once first).
            let large: Vec<u8> = match op.split_once('-').map(|(_, size)| size) {
                Some("1mib") => vec![b'L'; 1 << 20],
                Some("8mib") => vec![b'L'; 8 << 20],
                _ => Vec::new(),
            };
            if !large.is_empty() {
                bucket.set("loop-large", &large).expect("set large");
            }
            let started = std::time::Instant::now();
            for i in 0..n {
                let result = match op.as_str() {
                    "get" => bucket.get("loop").map(|_| ()),
                    "set" => bucket.set("loop", b"value"),
                    "set-distinct" => bucket.set(&format!("loop-{i}"), b"value"),
                    "increment" => {
                        wasi::keyvalue::atomics::increment(&bucket, "counter", 1).map(|_| ())
                    }
                    "cas" => swap_unchanged(&bucket, "loop"),
                    "get-many-100" => get_all(&bucket, &keys),
                    "set-1mib" | "set-8mib" => bucket.set("loop-large", &large),
                    "get-1mib" | "get-8mib" => match bucket.get("loop-large") {
                        Ok(Some(v)) if v.len() == large.len() => Ok(()),
                        Ok(other) => {
                            println!(
                                "error large value read back as {:?} bytes",
                                other.map(|v| v.len())
                            );
                            std::process::exit(1);
                        }
                        Err(e) => Err(e),
                    },
                    other => {
                        println!("error unknown op {other:?}");
                        std::process::exit(2);
                    }
                };
                if let Err(e) = result {
                    println!("error {}", show(&e));
                    std::process::exit(1);
                }
            }
            let secs = started.elapsed().as_secs_f64();
            println!(
                "ok {n} {op} calls in {:.1} ms: {:.0} calls/s",
                secs * 1e3,
                n as f64 / secs
            );
        }
        "increments" => {
            let bucket = open(&arg(2));
            let key = arg(3);
            let mut last = 0;
            for _ in 0..num(4) {
                match wasi::keyvalue::atomics::increment(&bucket, &key, 1) {
                    Ok(n) => last = n,
                    Err(e) => {
                        println!("error {}", show(&e));
                        std::process::exit(1);
                    }
                }
            }
            println!("ok last {last}");
        }
        "appends" => {
            use wasi::keyvalue::atomics::{Cas, CasError, swap};
            let bucket = open(&arg(2));
            let (key, token) = (arg(3), arg(4));
            let mut lost = 0;
            for i in 0..num(5) {
                let mut cas = Cas::new(&bucket, &key).unwrap_or_else(|e| {
                    println!("error {}", show(&e));
                    std::process::exit(1)
                });
                loop {
                    let mut value = match cas.current() {
                        Ok(v) => v.unwrap_or_default(),
                        Err(e) => {
                            println!("error {}", show(&e));
                            std::process::exit(1);
                        }
                    };
                    value.extend_from_slice(format!(",{token}-{i}").as_bytes());
                    match swap(cas, &value) {
                        Ok(()) => break,
                        Err(CasError::CasFailed(refreshed)) => {
                            lost += 1;
                            cas = refreshed;
                        }
                        Err(CasError::StoreError(e)) => {
                            println!("error {}", show(&e));
                            std::process::exit(1);
                        }
                    }
                }
            }
            println!("ok lost {lost}");
        }
        "expires" => {
            let bucket = open(&arg(2));
            let key = arg(3);
            let fail = |e: store::Error| -> ! {
                println!("error {}", show(&e));
                std::process::exit(1)
            };
            bucket.set(&key, b"soon gone").unwrap_or_else(|e| fail(e));
            if bucket.get(&key).unwrap_or_else(|e| fail(e)).is_none() {
                println!("error gone right after its write");
                std::process::exit(1);
            }
            std::thread::sleep(std::time::Duration::from_millis(num(4) as u64));
            let mut seen = Vec::new();
            if bucket.get(&key).unwrap_or_else(|e| fail(e)).is_some() {
                seen.push("get");
            }
            if bucket.exists(&key).unwrap_or_else(|e| fail(e)) {
                seen.push("exists");
            }
            let many =
                batch::get_many(&bucket, std::slice::from_ref(&key)).unwrap_or_else(|e| fail(e));
            if many.iter().any(Option::is_some) {
                seen.push("get-many");
            }
            // A store without listing (memcached) says so; any other error fails.
            match bucket.list_keys(None) {
                Ok(listed) if listed.keys.contains(&key) => seen.push("list-keys"),
                Ok(_) => {}
                Err(e) if show(&e).contains("not supported") => {}
                Err(e) => fail(e),
            }
            match seen.is_empty() {
                true => println!("ok expired"),
                false => println!("ok still there for {}", seen.join(", ")),
            }
        }
        "spin" => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        "alloc" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 16 << 20]);
                println!("holding {} MiB", hoard.len() * 16);
            }
        }
        other => {
            println!("error unknown mode {other:?}");
            std::process::exit(2);
        }
    }
}
