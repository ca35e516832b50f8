//! Request and response helpers shared by the HTTP guests (included with
//! `#[path]`; not a crate of its own, so every guest stays one component).

// Each guest uses the helpers it needs.
#![allow(dead_code)]
use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use wasip2::io::streams::StreamError;

/// The request path without the query, percent-decoded per segment by [`decode`].
pub fn path(request: &IncomingRequest) -> String {
    let full = request.path_with_query().unwrap_or_default();
    full.split('?').next().unwrap_or_default().to_string()
}

/// Percent-decodes a path segment (`%2F` -> `/`); `None` if it is not UTF-8
/// or has a bad escape.
pub fn decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Reads the whole request body; `Err` when the stream fails (for example
/// when the host refuses a body over its limit).
pub fn read_body(request: IncomingRequest) -> Result<Vec<u8>, String> {
    let body = request.consume().map_err(|()| "body already consumed")?;
    let stream = body.stream().map_err(|()| "body stream already taken")?;
    let mut data = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => data.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(format!("reading the body failed: {}", e.to_debug_string()));
            }
        }
    }
    drop(stream);
    let _ = wasip2::http::types::IncomingBody::finish(body);
    Ok(data)
}

/// Sends a complete response.
pub fn respond(out: ResponseOutparam, status: u16, content_type: &str, body: &[u8]) {
    let headers =
        Fields::from_list(&[("content-type".to_string(), content_type.as_bytes().to_vec())])
            .expect("a valid header");
    let response = OutgoingResponse::new(headers);
    response.set_status_code(status).expect("a valid status");
    let outgoing = response.body().expect("the body of a new response");
    ResponseOutparam::set(out, Ok(response));
    let stream = outgoing.write().expect("the body's stream");
    // `blocking-write-and-flush` takes at most 4096 bytes at a time.
    for chunk in body.chunks(4096) {
        if stream.blocking_write_and_flush(chunk).is_err() {
            return; // the client went away
        }
    }
    drop(stream);
    let _ = OutgoingBody::finish(outgoing, None);
}

/// Sends a plain-text response.
pub fn text(out: ResponseOutparam, status: u16, message: &str) {
    respond(out, status, "text/plain; charset=utf-8", message.as_bytes());
}

/// A JSON string literal for `s`.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
