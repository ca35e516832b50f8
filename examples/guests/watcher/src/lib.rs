//! An example `watch-service` component: it records every change it is told
//! about in the bucket `watch-log`, as `event-000001 = "set KEY VALUE"` or
//! `"delete KEY"`, numbered by an increment of `watch-log`'s `seq` (so the
//! log shows the order of delivery). Values are written as UTF-8 (lossy).
//!
//! Run it with `wasikv watch watcher.wasm --bucket NAME`.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "wasi:keyvalue/watch-service@0.2.0-draft2",
});

use exports::wasi::keyvalue::watcher::Guest;
use wasi::keyvalue::{atomics, store};

struct Watcher;

fn record(line: String) {
    let log = store::open("watch-log").expect("open the watch-log bucket");
    let n = atomics::increment(&log, "seq", 1).expect("number the event");
    log.set(&format!("event-{n:06}"), line.as_bytes())
        .expect("record the event");
}

impl Guest for Watcher {
    fn on_set(_bucket: store::Bucket, key: String, value: Vec<u8>) {
        record(format!("set {key} {}", String::from_utf8_lossy(&value)));
    }

    fn on_delete(_bucket: store::Bucket, key: String) {
        record(format!("delete {key}"));
    }
}

export!(Watcher);
