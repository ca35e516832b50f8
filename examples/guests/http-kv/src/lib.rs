//! An HTTP component that keeps its state in wasi:keyvalue: the example of
//! `wasikv serve` (README, docs/serve.md).
//!
//! Routes, on the bucket named by the `BUCKET` environment variable
//! (default: `default`):
//!
//! * `GET /counter/NAME`: adds one to counter NAME (key `counter:NAME`) and
//!   answers `{"name":"NAME","count":N}`;
//! * `PUT /kv/KEY` stores the request body at KEY (204), `GET /kv/KEY`
//!   answers it (404 when absent), `DELETE /kv/KEY` deletes it (204);
//! * `GET /kv` lists every key of the bucket as a JSON array (all pages);
//! * `POST /append/KEY` appends the request body (a token without commas) to
//!   the comma-separated list at KEY with a CAS loop (read, add, swap; a lost
//!   race reads again), answering `appended` (200), or `present` (200) when
//!   the token is already in the list, so a client that retries a failed
//!   append never adds its token twice; `lost N` tells how many swaps lost
//!   a race.
//!
//! KEY and NAME are percent-decoded path segments. A key-value error is a
//! 500 with the error's text; a bucket the component may not open is a 403.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "wasi:keyvalue/imports@0.2.0-draft2",
});

#[path = "../../shared/http.rs"]
mod http;

use wasi::keyvalue::{atomics, store};
use wasip2::http::types::{IncomingRequest, Method, ResponseOutparam};

struct Component;

wasip2::http::proxy::export!(Component);

impl wasip2::exports::http::incoming_handler::Guest for Component {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let bucket_name = std::env::var("BUCKET").unwrap_or_else(|_| "default".to_string());
        let bucket = match store::open(&bucket_name) {
            Ok(b) => b,
            Err(e) => {
                let status = match e {
                    store::Error::AccessDenied => 403,
                    _ => 500,
                };
                return http::text(
                    out,
                    status,
                    &format!("cannot open bucket {bucket_name:?}: {}\n", describe(&e)),
                );
            }
        };
        let path = http::path(&request);
        let method = request.method();
        let segments: Vec<&str> = path.trim_start_matches('/').splitn(2, '/').collect();
        match (&method, segments.as_slice()) {
            (Method::Get, ["counter", name]) => counter(&bucket, name, out),
            (Method::Get, ["kv"]) => list(&bucket, out),
            (Method::Post, ["append", key]) => match http::decode(key) {
                Some(key) => append(&bucket, &key, request, out),
                None => http::text(
                    out,
                    400,
                    "the key is not a valid percent-encoded UTF-8 string\n",
                ),
            },
            (_, ["kv", key]) => match http::decode(key) {
                Some(key) => item(&bucket, method, &key, request, out),
                None => http::text(
                    out,
                    400,
                    "the key is not a valid percent-encoded UTF-8 string\n",
                ),
            },
            _ => http::text(
                out,
                404,
                "routes: GET /counter/NAME, GET /kv, GET|PUT|DELETE /kv/KEY, POST /append/KEY\n",
            ),
        }
    }
}

fn counter(bucket: &store::Bucket, name: &str, out: ResponseOutparam) {
    let Some(name) = http::decode(name) else {
        return http::text(
            out,
            400,
            "the name is not a valid percent-encoded UTF-8 string\n",
        );
    };
    match atomics::increment(bucket, &format!("counter:{name}"), 1) {
        Ok(count) => http::respond(
            out,
            200,
            "application/json",
            format!(
                "{{\"name\":{},\"count\":{count}}}\n",
                http::json_string(&name)
            )
            .as_bytes(),
        ),
        Err(e) => http::text(out, 500, &format!("increment failed: {}\n", describe(&e))),
    }
}

/// Most swaps one append may lose before it gives up (409).
const MAX_LOST_RACES: u32 = 1000;

fn append(bucket: &store::Bucket, key: &str, request: IncomingRequest, out: ResponseOutparam) {
    let token = match http::read_body(request) {
        Ok(body) if !body.is_empty() && !body.contains(&b',') => body,
        Ok(_) => return http::text(out, 400, "the body must be a token without commas\n"),
        Err(e) => return http::text(out, 400, &format!("{e}\n")),
    };
    let mut lost = 0;
    while lost < MAX_LOST_RACES {
        let result = atomics::Cas::new(bucket, key).and_then(|cas| {
            let list = cas.current()?.unwrap_or_default();
            Ok((cas, list))
        });
        let (cas, mut list) = match result {
            Ok(read) => read,
            Err(e) => return http::text(out, 500, &format!("append failed: {}\n", describe(&e))),
        };
        if list.split(|&b| b == b',').any(|t| t == token.as_slice()) {
            return http::text(out, 200, &format!("present lost {lost}\n"));
        }
        if !list.is_empty() {
            list.push(b',');
        }
        list.extend_from_slice(&token);
        match atomics::swap(cas, &list) {
            Ok(()) => return http::text(out, 200, &format!("appended lost {lost}\n")),
            Err(atomics::CasError::CasFailed(_)) => lost += 1,
            Err(atomics::CasError::StoreError(e)) => {
                return http::text(out, 500, &format!("append failed: {}\n", describe(&e)));
            }
        }
    }
    http::text(out, 409, &format!("gave up after {lost} lost races\n"))
}

fn item(
    bucket: &store::Bucket,
    method: Method,
    key: &str,
    request: IncomingRequest,
    out: ResponseOutparam,
) {
    let result = match method {
        Method::Get => match bucket.get(key) {
            Ok(Some(value)) => return http::respond(out, 200, "application/octet-stream", &value),
            Ok(None) => return http::text(out, 404, &format!("no key {key:?}\n")),
            Err(e) => Err(e),
        },
        Method::Put => match http::read_body(request) {
            Ok(body) => bucket.set(key, &body),
            Err(e) => return http::text(out, 400, &format!("{e}\n")),
        },
        Method::Delete => bucket.delete(key),
        _ => return http::text(out, 405, "GET, PUT or DELETE\n"),
    };
    match result {
        Ok(()) => http::respond(out, 204, "text/plain", b""),
        Err(e) => http::text(out, 500, &format!("{}\n", describe(&e))),
    }
}

fn list(bucket: &store::Bucket, out: ResponseOutparam) {
    let mut keys = Vec::new();
    let mut cursor = None;
    loop {
        match bucket.list_keys(cursor.as_deref()) {
            Ok(page) => {
                keys.extend(page.keys.iter().map(|k| http::json_string(k)));
                cursor = page.cursor;
                if cursor.is_none() {
                    break;
                }
            }
            Err(e) => {
                return http::text(out, 500, &format!("list-keys failed: {}\n", describe(&e)));
            }
        }
    }
    http::respond(
        out,
        200,
        "application/json",
        format!("[{}]\n", keys.join(",")).as_bytes(),
    );
}

fn describe(e: &store::Error) -> String {
    match e {
        store::Error::NoSuchStore => "no such store".into(),
        store::Error::AccessDenied => "access denied".into(),
        store::Error::Other(m) => m.clone(),
    }
}
