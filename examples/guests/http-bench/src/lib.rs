//! The HTTP component of the serve benchmark, built against the older
//! `wasi:keyvalue@0.2.0-draft` so that both `wasikv serve` and the baseline
//! (wasmtime-wasi-http + wasmtime-wasi-keyvalue, as `wasmtime serve -S
//! keyvalue`) can run it unchanged.
//!
//! Every request: open bucket `""` (the only one the baseline has), one
//! `get` of key `hits`, one `increment` of it, answer the new count.

wit_bindgen::generate!({
    path: "../../../wit/draft",
    world: "wasi:keyvalue/imports@0.2.0-draft",
});

#[path = "../../shared/http.rs"]
mod http;

use wasi::keyvalue::{atomics, store};
use wasip2::http::types::{IncomingRequest, ResponseOutparam};

struct Component;

wasip2::http::proxy::export!(Component);

impl wasip2::exports::http::incoming_handler::Guest for Component {
    fn handle(_request: IncomingRequest, out: ResponseOutparam) {
        let result = store::open("").and_then(|bucket| {
            bucket.get("hits")?;
            atomics::increment(&bucket, "hits", 1)
        });
        match result {
            Ok(count) => http::text(out, 200, &format!("{count}\n")),
            Err(e) => http::text(out, 500, &format!("{e:?}\n")),
        }
    }
}
