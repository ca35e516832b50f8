//! An HTTP component for the host's serve tests: misbehaviour on request.
//!
//! * `GET /trap`: panics (a trap); `GET /loop`: loops forever;
//! * `GET /sleep/MS`: answers after MS milliseconds (a slow request);
//! * `GET /open/BUCKET`: opens BUCKET and answers `opened`, or the error
//!   (`access-denied` 403, `no-such-store` 404, other 500);
//! * `POST /echo`: reads the body and answers its length;
//! * anything else: `ok`.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "wasi:keyvalue/imports@0.2.0-draft2",
});

#[path = "../../shared/http.rs"]
mod http;

use wasi::keyvalue::store;
use wasip2::http::types::{IncomingRequest, ResponseOutparam};

struct Component;

wasip2::http::proxy::export!(Component);

impl wasip2::exports::http::incoming_handler::Guest for Component {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = http::path(&request);
        let segments: Vec<&str> = path.trim_start_matches('/').splitn(2, '/').collect();
        match segments.as_slice() {
            ["trap"] => panic!("the probe traps on purpose"),
            ["loop"] => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            ["sleep", ms] => {
                let ms: u64 = ms.parse().unwrap_or(0);
                wasip2::clocks::monotonic_clock::subscribe_duration(ms * 1_000_000).block();
                http::text(out, 200, &format!("slept {ms} ms\n"));
            }
            ["open", name] => match store::open(name) {
                Ok(_) => http::text(out, 200, "opened\n"),
                Err(store::Error::AccessDenied) => http::text(out, 403, "access-denied\n"),
                Err(store::Error::NoSuchStore) => http::text(out, 404, "no-such-store\n"),
                Err(store::Error::Other(m)) => http::text(out, 500, &format!("other: {m}\n")),
            },
            ["echo"] => match http::read_body(request) {
                Ok(body) => http::text(out, 200, &format!("{} bytes\n", body.len())),
                Err(e) => http::text(out, 400, &format!("{e}\n")),
            },
            _ => http::text(out, 200, "ok\n"),
        }
    }
}
