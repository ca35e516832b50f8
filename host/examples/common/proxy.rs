//! One HTTP request, one fresh instance: the per-request path shared by the
//! `embed_http` example and the `serve_baseline` benchmark server (included
//! with `#[path]`), as `wasmtime-wasi-http`'s documentation lays it out.

use wasmtime::Store;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// Instantiates `pre` in `store` and hands it `request`; the instance runs
/// in a task of its own, so it may go on streaming the body after the
/// response headers are returned.
pub async fn respond<T: WasiHttpView + Send + 'static>(
    pre: &ProxyPre<T>,
    mut store: Store<T>,
    request: hyper::Request<hyper::body::Incoming>,
) -> wasmtime::Result<hyper::Response<HyperOutgoingBody>> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let request = store
        .data_mut()
        .http()
        .new_incoming_request(Scheme::Http, request)?;
    let out = store.data_mut().http().new_response_outparam(sender)?;
    let pre = pre.clone();
    let task = tokio::spawn(async move {
        let proxy = pre.instantiate_async(&mut store).await?;
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, request, out)
            .await
    });
    match receiver.await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(code)) => wasmtime::bail!("the component answered with an error: {code:?}"),
        Err(_) => match task.await? {
            Ok(()) => wasmtime::bail!("the component set no response"),
            Err(e) => Err(e),
        },
    }
}
