//! The HTTP front end: `/announce` and `/scrape` over hyper (HTTP/1.1), answered by [`Tracker::handle_http`] on the
//! same swarms as UDP.
//!
//! What a hostile client can hold is bounded: a request head of at most [`MAX_HEAD_BYTES`] (a longer one gets
//! 431 from hyper before anything is parsed), [`HEAD_TIMEOUT`] to send a head (slowloris), at most
//! [`MAX_CONNECTIONS`] open connections and [`MAX_CONNECTIONS_PER_IP`] from one address (past either, new ones are
//! closed at once; the per-address cap is off behind a proxy, where every connection comes from the proxy), and
//! [`CONNECTION_LIFETIME`] per connection, however busy or idle. Request bodies are never read.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderName};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::server::Tracker;

/// Largest request head read (request line and headers): hyper's smallest buffer.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Time a client has to send a request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Open connections at once.
pub const MAX_CONNECTIONS: usize = 4096;
/// Open connections from one address, so that one host cannot take every slot.
pub const MAX_CONNECTIONS_PER_IP: usize = 256;
/// Longest a connection is kept, keep-alive included.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(120);
/// After its lifetime, time a connection gets to finish the request in flight.
const GOODBYE: Duration = Duration::from_secs(5);

/// How the HTTP front end finds the client's address.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Take the client's IP from this header (set by a reverse proxy in front of us) instead of the connection.
    pub real_ip_header: Option<HeaderName>,
}

/// Serves HTTP on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    tracker: &Tracker,
    config: HttpConfig,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let per_ip: Arc<std::sync::Mutex<std::collections::HashMap<IpAddr, usize>>> = Arc::default();
    let config = Arc::new(config);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors, usually: back off instead of spinning.
                    tracing::warn!("accepting an HTTP connection: {err}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Full: closing at once costs nothing and tells the client to come back.
            drop(stream);
            continue;
        };
        let ip = peer.ip();
        let counted = config.real_ip_header.is_none();
        if counted {
            let mut open = per_ip.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let count = open.entry(ip).or_insert(0);
            if *count >= MAX_CONNECTIONS_PER_IP {
                continue;
            }
            *count += 1;
        }
        let per_ip = per_ip.clone();
        let _ = stream.set_nodelay(true);
        let handler = Arc::new(std::sync::Mutex::new(tracker.http_handle()));
        let config = config.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let reply = answer(&handler, &config, &request, peer);
                async move { Ok::<_, Infallible>(reply) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .max_buf_size(MAX_HEAD_BYTES)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = tokio::time::sleep(CONNECTION_LIFETIME) => {
                    // Answer what was already asked, with `Connection: close`, rather than drop it unanswered.
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(GOODBYE, connection).await;
                }
            }
            if counted {
                let mut open = per_ip.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some(count) = open.get_mut(&ip) {
                    *count -= 1;
                    if *count == 0 {
                        open.remove(&ip);
                    }
                }
            }
            drop(slot);
        });
    }
}

fn answer(
    handler: &std::sync::Mutex<Tracker>,
    config: &HttpConfig,
    request: &Request<Incoming>,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    let target = request.uri().path_and_query().map_or(request.uri().path(), |target| target.as_str());
    let client = match &config.real_ip_header {
        None => Some(peer.ip()),
        // A scrape does not depend on who asks.
        Some(_) if request.uri().path() != "/announce" => Some(peer.ip()),
        Some(name) => request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            // A proxy chain appends: the last address is the one our proxy saw.
            .and_then(|value| value.rsplit(',').next())
            .and_then(|value| value.trim().parse::<IpAddr>().ok()),
    };
    let mut tracker = handler.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let reply = match client {
        Some(client) => {
            let now = tracker.now();
            tracker.handle_http(target.as_bytes(), client, now)
        }
        None => crate::server::HttpReply {
            status: 200,
            content_type: "text/plain",
            body: tracker_protocol::http::encode_failure("the proxy sent no client address"),
        },
    };
    let mut response = Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(CONTENT_TYPE, hyper::header::HeaderValue::from_static(reply.content_type));
    response
}
