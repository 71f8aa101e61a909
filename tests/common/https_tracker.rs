//! An HTTPS tracker of the test's own, inside the test process: rustls with a self-signed certificate made at
//! start (for `127.0.0.1` and `localhost`), answering `GET /announce` with the tracker side of
//! `tracker_protocol::http`. It keeps one swarm per info-hash in memory and records every announce it served,
//! so a test can tell that the clients really came over TLS. Loopback only; one thread per connection, each
//! bounded by socket timeouts, so a silent client cannot hold a test.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tracker_protocol::AnnounceEvent;
use tracker_protocol::http::{
    HttpAnnounceRequest, HttpAnnounceSuccess, IpParam, encode_announce_reply, encode_failure, parse_announce_query,
};

/// Short, so that a peer which lost a race with its seeder asks again soon (our peer waits at least 5 s).
const INTERVAL: u32 = 5;
/// A request head larger than this is not an announce from our peer.
const MAX_HEAD: usize = 16 * 1024;
/// Every read and write of a connection, the TLS handshake included.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// The running tracker; dropping it stops the accept loop.
pub struct HttpsTracker {
    address: SocketAddr,
    certificate: PathBuf,
    state: Arc<State>,
    accept: Option<JoinHandle<()>>,
}

/// Peer id → (address to hand out, bytes left).
type Swarm = HashMap<[u8; 20], (SocketAddr, u64)>;

#[derive(Default)]
struct State {
    stop: AtomicBool,
    /// By info-hash.
    swarms: Mutex<HashMap<[u8; 20], Swarm>>,
    announces: Mutex<Vec<HttpAnnounceRequest>>,
    tls_errors: Mutex<Vec<String>>,
}

impl HttpsTracker {
    /// Makes a key and a self-signed certificate, writes the certificate (PEM) to `dir/tracker-cert.pem` for
    /// clients to trust, and starts serving on a free loopback port.
    pub fn start(dir: &Path) -> HttpsTracker {
        let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(names).expect("a self-signed certificate");
        let certificate = dir.join("tracker-cert.pem");
        std::fs::write(&certificate, cert.pem()).expect("write the certificate");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(signing_key.serialize_der()));
        let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
        // Explicit provider: the process-wide default is ambiguous if another crate ever enables aws-lc-rs.
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("the certificate and its key");
        let config = Arc::new(config);

        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the HTTPS tracker");
        let address = listener.local_addr().expect("its address");
        let state = Arc::new(State::default());
        let accept_state = state.clone();
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_state.stop.load(Ordering::Acquire) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (config, state) = (config.clone(), accept_state.clone());
                std::thread::spawn(move || serve(stream, config, &state));
            }
        });
        HttpsTracker { address, certificate, state, accept: Some(accept) }
    }

    /// `https://127.0.0.1:PORT/announce`.
    pub fn announce_url(&self) -> String {
        format!("https://{}/announce", self.address)
    }

    /// The PEM file of the certificate it serves, the one clients must trust.
    pub fn certificate(&self) -> &Path {
        &self.certificate
    }

    /// Every announce served so far, in order (each came over a completed TLS handshake).
    pub fn announces(&self) -> Vec<HttpAnnounceRequest> {
        lock(&self.state.announces).clone()
    }

    /// The connections that ended in a TLS or I/O error before a request was read, as rustls describes them.
    pub fn tls_errors(&self) -> Vec<String> {
        lock(&self.state.tls_errors).clone()
    }
}

impl Drop for HttpsTracker {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Release);
        // `incoming()` blocks in accept: one connection of our own wakes it to see the flag.
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One connection: TLS handshake, one request, one reply, close.
fn serve(tcp: TcpStream, config: Arc<rustls::ServerConfig>, state: &State) {
    if state.stop.load(Ordering::Acquire) {
        return;
    }
    let Ok(from) = tcp.peer_addr() else { return };
    if tcp.set_read_timeout(Some(IO_TIMEOUT)).is_err() || tcp.set_write_timeout(Some(IO_TIMEOUT)).is_err() {
        return;
    }
    let Ok(connection) = rustls::ServerConnection::new(config) else { return };
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    let head = match read_head(&mut tls) {
        Ok(head) => head,
        Err(err) => {
            lock(&state.tls_errors).push(err.to_string());
            return;
        }
    };
    let reply = respond(&head, from, state);
    if tls.write_all(&reply).is_ok() {
        tls.conn.send_close_notify();
        let _ = tls.flush();
    }
}

/// Reads up to the blank line that ends the request head; the handshake happens in the first read.
fn read_head(tls: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        if head.len() > MAX_HEAD {
            return Err(std::io::Error::other("request head too large"));
        }
        match tls.read(&mut buf)? {
            0 => return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed before a request")),
            n => head.extend_from_slice(&buf[..n]),
        }
    }
    Ok(head)
}

fn respond(head: &[u8], from: SocketAddr, state: &State) -> Vec<u8> {
    let line = head.split(|&byte| byte == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&byte| byte == b' ');
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    if method != b"GET" {
        return http(405, "Method Not Allowed", b"");
    }
    let (path, query) = match target.iter().position(|&byte| byte == b'?') {
        Some(at) => (&target[..at], &target[at + 1..]),
        None => (target, &b""[..]),
    };
    if path != b"/announce" {
        return http(404, "Not Found", b"");
    }
    let request = match parse_announce_query(query, IpParam::Ignore) {
        Ok(request) => request,
        Err(err) => return http(200, "OK", &encode_failure(&err.to_string())),
    };
    let body = encode_announce_reply(&announce(&request, from, state));
    lock(&state.announces).push(request);
    http(200, "OK", &body)
}

/// Lists (or, on `stopped`, removes) the announcing peer under the address it connected from, and answers with
/// everyone else in the swarm.
fn announce(request: &HttpAnnounceRequest, from: SocketAddr, state: &State) -> HttpAnnounceSuccess {
    let mut swarms = lock(&state.swarms);
    let swarm = swarms.entry(request.info_hash).or_default();
    if request.event == AnnounceEvent::Stopped {
        swarm.remove(&request.peer_id);
    } else {
        swarm.insert(request.peer_id, (SocketAddr::new(from.ip(), request.port), request.left));
    }
    let mut reply = HttpAnnounceSuccess { interval: Some(INTERVAL), ..HttpAnnounceSuccess::default() };
    let seeders = swarm.values().filter(|(_, left)| *left == 0).count();
    reply.complete = u32::try_from(seeders).ok();
    reply.incomplete = u32::try_from(swarm.len() - seeders).ok();
    let wanted = request.numwant.unwrap_or(50) as usize;
    for (_, (address, _)) in swarm.iter().filter(|(id, _)| **id != request.peer_id).take(wanted) {
        match address {
            SocketAddr::V4(v4) => reply.peers.push(*v4),
            SocketAddr::V6(v6) => reply.peers6.push(*v6),
        }
    }
    reply
}

fn http(status: u16, reason: &str, body: &[u8]) -> Vec<u8> {
    let mut reply = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    reply.extend_from_slice(body);
    reply
}
