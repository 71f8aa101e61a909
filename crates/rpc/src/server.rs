//! The RPC on hyper (HTTP/1.1): `POST /transmission/rpc` (and `/rpc`, as transmission-daemon also answers),
//! through the [`Gate`], then [`protocol`] and [`Rpc::call`].
//!
//! What a client can hold is bounded: a request head of at most 8 KiB (hyper's smallest buffer), 10 s to send it,
//! a body of at most [`MAX_BODY`] read within 30 s, [`MAX_CONNECTIONS`] connections at once.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::gate::{Gate, Head, MAX_BODY, Refusal, SESSION_ID_HEADER, too_large};
use crate::methods::Rpc;
use crate::protocol;

/// Connections served at once; past it, new ones wait in the listen queue.
pub const MAX_CONNECTIONS: usize = 256;
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Who may use the RPC.
#[derive(Debug, Clone, Default)]
pub struct RpcConfig {
    /// HTTP Basic credentials every request must carry; `None`: none asked.
    pub credentials: Option<crate::gate::Credentials>,
    /// Host names accepted in the Host header besides IP addresses and `localhost`.
    pub allowed_hosts: Vec<String>,
}

/// Serves the RPC on `listener` until the task is dropped or aborted.
pub async fn serve(listener: TcpListener, rpc: Arc<Rpc>, config: RpcConfig) {
    let gate = Arc::new(Gate::new(config.credentials, &config.allowed_hosts));
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors, usually: back off instead of spinning.
                tracing::warn!("rpc: accepting a connection: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (gate, rpc) = (gate.clone(), rpc.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let (gate, rpc) = (gate.clone(), rpc.clone());
                async move { Ok::<_, Infallible>(answer(request, &gate, &rpc).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .max_buf_size(8192)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(slot);
        });
    }
}

async fn answer(request: Request<Incoming>, gate: &Gate, rpc: &Rpc) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    if path != "/transmission/rpc" && path != "/rpc" && path != "/transmission/rpc/" {
        return text(StatusCode::NOT_FOUND, Vec::new(), "404: Not Found: the RPC is at /transmission/rpc\n");
    }
    let header = |name: &str| request.headers().get(name).and_then(|value| value.to_str().ok());
    let head = Head {
        host: header("host"),
        session_id: header(SESSION_ID_HEADER),
        authorization: header("authorization"),
        content_length: header("content-length").and_then(|length| length.parse().ok()),
    };
    if let Err(refusal) = gate.check(&head) {
        return refused(refusal);
    }
    if request.method() != Method::POST {
        return text(StatusCode::METHOD_NOT_ALLOWED, Vec::new(), "405: the RPC takes POST requests\n");
    }
    // The declared length was checked; a body sent without one (chunked) is cut off at the same size.
    let limited = Limited::new(request.into_body(), usize::try_from(MAX_BODY).unwrap_or(usize::MAX));
    let body = match tokio::time::timeout(BODY_TIMEOUT, limited.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(err)) if err.downcast_ref::<http_body_util::LengthLimitError>().is_some() => return refused(too_large()),
        Ok(Err(_)) | Err(_) => {
            return text(StatusCode::BAD_REQUEST, Vec::new(), "400: the body did not arrive whole\n");
        }
    };
    let answer = match protocol::parse(&body) {
        Ok(call) => {
            let result = rpc.call(&call).await;
            if let Err(failure) = &result {
                tracing::debug!(method = %call.method, "rpc: {}", failure.message);
            }
            protocol::answer(&call.dialect, result)
        }
        Err((dialect, failure)) => protocol::answer(&dialect, Err(failure)),
    };
    match answer {
        Some(json) => {
            let mut response = Response::new(Full::new(Bytes::from(json.to_string())));
            response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json; charset=UTF-8"));
            response
        }
        // A JSON-RPC notification: nothing to say.
        None => {
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = StatusCode::NO_CONTENT;
            response
        }
    }
}

fn refused(refusal: Refusal) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::BAD_REQUEST);
    text(status, refusal.headers, &refusal.body)
}

fn text(status: StatusCode, headers: Vec<(&'static str, String)>, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=UTF-8"));
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}
