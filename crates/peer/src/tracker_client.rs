//! The client side of the BEP 15 UDP tracker protocol: connect, announce, retry.
//!
//! A thin tokio layer over the `tracker-protocol` codec, which writes every request and parses every reply.
//! One [`TrackerClient`] talks to one tracker through a [`UdpEndpoint`]: a UDP socket that every client of a
//! session shares (one file descriptor and one receive buffer, however many torrents), whose receiving task hands
//! each reply to the request waiting for its transaction id, and which keeps one connection id per tracker for
//! all of them:
//! 1. it sends a connect request and caches the connection id it gets back for 60 s (BEP 15: clients may reuse
//!    an id for a minute; trackers accept it for at least two);
//! 2. it sends the announce with that id and returns the swarm counts and peers.
//!
//! UDP loses packets, so each request is retried with a timeout of `base * 2^n` for attempt `n` (BEP 15:
//! `15 * 2^n` seconds, `n` up to 8); an announce that goes unanswered drops the cached id, since an expired id gets
//! no reply at all. A tracker error response ends the announce at once: retrying would get the same answer.
//!
//! Anything else that arrives is noise and is skipped without ending the wait: packets from other addresses
//! (spoofed replies), replies to other transactions (late answers to earlier attempts), and bytes the codec
//! cannot parse. A broken or hostile tracker can make an announce fail, never panic the client.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracker_protocol::{
    Action, AnnounceEvent, AnnounceOptions, AnnounceRequest, CompactPeer, ConnectRequest, ConnectionId, InfoHashes,
    Response, ResponseParseError, ScrapeRequest, TorrentStats, TransactionId,
};

/// Info-hashes asked about in one scrape request. BEP 15 fits about 74 in a packet; our tracker answers at most
/// 70, so a scrape of more goes out in several requests of at most this many.
pub const MAX_SCRAPE_HASHES: usize = 70;

/// How long a connection id is reused before the client connects again (BEP 15: one minute).
pub const CONNECTION_ID_LIFETIME: Duration = Duration::from_secs(60);

/// The longest single attempt, whatever `base` and the attempt number say, so the deadline cannot overflow the
/// clock. BEP 15's own longest wait is 3840 s (`15 * 2^8`).
const MAX_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// Receive buffer size: the largest UDP payload, so no reply is ever truncated.
const RECV_BUFFER_LEN: usize = 65_536;

/// What the client tells the tracker in one announce (the fields of a BEP 15 announce request that the caller
/// chooses; the connection and transaction ids are the client's business).
#[derive(Debug, Clone)]
pub struct Announce {
    /// SHA-1 of the torrent's info dictionary.
    pub info_hash: [u8; 20],
    /// Our 20-byte peer id.
    pub peer_id: [u8; 20],
    /// Bytes downloaded in this session.
    pub downloaded: u64,
    /// Bytes still missing; 0 makes us a seeder.
    pub left: u64,
    /// Bytes uploaded in this session.
    pub uploaded: u64,
    /// Why we announce now (started, completed, stopped or a regular announce).
    pub event: AnnounceEvent,
    /// A random value kept across announces, so the tracker recognises us if our address changes.
    pub key: u32,
    /// Peers wanted; -1 asks for the tracker's default.
    pub num_want: i32,
    /// The port our peer-wire listener accepts connections on.
    pub port: u16,
}

/// The tracker's answer to an announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceReply {
    /// Seconds to wait before the next regular announce.
    pub interval: u32,
    /// Peers still downloading.
    pub leechers: u32,
    /// Peers with the whole torrent.
    pub seeders: u32,
    /// Peers to connect to, all of the tracker address's family.
    pub peers: Vec<SocketAddr>,
}

/// Retry schedule: attempt `n` (from 0) waits `base * 2^n` for its reply.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Wait of the first attempt.
    pub base: Duration,
    /// Attempts before giving up; 0 gives up without sending anything.
    pub max_attempts: u32,
}

impl Default for Timeouts {
    /// BEP 15's schedule: 15 s doubling up to 3840 s, 9 attempts (n = 0..=8), about 2 hours in all.
    fn default() -> Self {
        Self { base: Duration::from_secs(15), max_attempts: 9 }
    }
}

impl Timeouts {
    /// The same doubling from `base`, cut off before any single wait exceeds `longest` (at least one attempt): for
    /// a tracker that answered before, whose restart must be noticed within one announce interval rather than
    /// after BEP 15's two-hour climb.
    #[must_use]
    pub fn bounded(base: Duration, longest: Duration) -> Self {
        let mut attempts = 1;
        while attempts < Self::default().max_attempts && base.saturating_mul(2_u32.pow(attempts)) <= longest {
            attempts += 1;
        }
        Self { base, max_attempts: attempts }
    }

    /// The wait of attempt `attempt` (from 0): `base * 2^attempt`, capped at one day.
    #[must_use]
    pub fn attempt_timeout(&self, attempt: u32) -> Duration {
        self.base.saturating_mul(2_u32.saturating_pow(attempt)).min(MAX_ATTEMPT_TIMEOUT)
    }
}

/// Why an announce (or setting up the client) failed.
#[derive(Debug, thiserror::Error)]
pub enum TrackerError {
    /// The URL is not of the form `udp://host:port[/path]`.
    #[error("bad tracker URL {url:?}: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The URL names another protocol (`http://`, `wss://`...): only BEP 15 UDP trackers are supported.
    #[error("tracker URL {url:?} is not a udp:// URL (only UDP trackers are supported)")]
    NotUdp {
        /// The URL as given.
        url: String,
    },
    /// The tracker's host name did not resolve to any address.
    #[error("cannot resolve tracker host {host:?}: {source}")]
    Resolve {
        /// The host part of the URL.
        host: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// A socket operation failed.
    #[error("{action}: {source}")]
    Io {
        /// What was being done, naming the addresses involved.
        action: String,
        /// The operating system's error.
        source: io::Error,
    },
    /// No reply came in any attempt.
    #[error("tracker {tracker} did not answer after {attempts} attempts")]
    TimedOut {
        /// The tracker's address.
        tracker: SocketAddr,
        /// Requests sent, each waited for in full.
        attempts: u32,
    },
    /// The tracker answered with a BEP 15 error response; its message.
    #[error("tracker refused: {0}")]
    Refused(String),
    /// A scrape must ask about 1 to [`MAX_SCRAPE_HASHES`] torrents; nothing was sent.
    #[error("a scrape asks about 1 to {MAX_SCRAPE_HASHES} torrents, not {0}")]
    ScrapeSize(usize),
    /// The scrape reply does not name as many torrents as were asked about.
    #[error("tracker {tracker} answered a scrape of {asked} torrents with {got}")]
    ScrapeMismatch {
        /// The tracker's address.
        tracker: SocketAddr,
        asked: usize,
        got: usize,
    },
    /// Every attempt timed out, but meanwhile the tracker's address sent packets the codec could not parse (e.g.
    /// another protocol on that port). Carries the last parse error.
    #[error("tracker {tracker} sent no valid reply in {attempts} attempts, only malformed ones (last: {source})")]
    Malformed {
        /// The tracker's address.
        tracker: SocketAddr,
        /// Requests sent, each waited for in full.
        attempts: u32,
        /// Why the last packet from the tracker could not be parsed.
        source: ResponseParseError,
    },
}

/// A connection id and when we asked for it (the tracker issued it no earlier).
#[derive(Debug, Clone, Copy)]
struct Connection {
    id: ConnectionId,
    requested_at: Instant,
}

/// A reply to the request we wait for, reduced to what the client acts on.
enum Reply {
    Connect(ConnectionId),
    Announce(AnnounceReply),
    Error(String),
    /// What a scrape reply says of each torrent asked about, in the order asked.
    Scrape(Vec<TorrentStats>),
}

impl Reply {
    fn action(&self) -> Action {
        match self {
            Self::Connect(_) => Action::Connect,
            Self::Announce(_) => Action::Announce,
            Self::Error(_) => Action::Error,
            Self::Scrape(_) => Action::Scrape,
        }
    }
}

/// What one request's wait ended with.
enum Outcome {
    Reply(Reply),
    TimedOut,
}

/// Packets a request may have waiting for it; more from a flooding tracker are dropped.
const WAITING_PACKETS: usize = 64;
/// Requests to one tracker waiting for their replies at once: a thousand torrents announcing together are paced,
/// not a burst whose replies overflow the socket's receive buffer (and a tracker that does not answer holds up only
/// its own requests).
const IN_FLIGHT_PER_TRACKER: usize = 64;

/// The receive buffer asked for: a burst of replies fits while the routing task catches up (the system may give
/// less).
const SOCKET_RECEIVE_BUFFER: usize = 1 << 20;

/// Room in a request's queue that unclaimed packets (garbage, late replies) never take: a flood of them cannot
/// crowd out the reply itself.
const KEPT_FOR_REPLIES: usize = 8;

/// A UDP socket shared by tracker clients: one receiving task routes each packet to the request of its sender
/// and transaction id, and the connection id of each tracker is kept once for every client. The task ends when
/// the endpoint is dropped.
#[derive(Debug)]
pub struct UdpEndpoint {
    socket: Arc<UdpSocket>,
    routes: Arc<Routes>,
    /// The connection id of each tracker, shared by every client talking to it.
    connections: Mutex<HashMap<SocketAddr, Connection>>,
    /// Held while a client connects to a tracker, so that the others wait for its id instead of connecting too.
    connecting: Mutex<HashMap<SocketAddr, Arc<tokio::sync::Mutex<()>>>>,
    /// Permits for the requests in flight to each tracker (see [`IN_FLIGHT_PER_TRACKER`]).
    in_flight: Mutex<HashMap<SocketAddr, Arc<tokio::sync::Semaphore>>>,
    receiving: tokio::task::AbortHandle,
}

/// The requests waiting for replies, by tracker address.
#[derive(Debug, Default)]
struct Routes {
    waiting: Mutex<HashMap<SocketAddr, Vec<Waiter>>>,
    next_waiter: std::sync::atomic::AtomicU64,
}

#[derive(Debug)]
struct Waiter {
    id: u64,
    transaction_id: TransactionId,
    packets: mpsc::Sender<Vec<u8>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Drop for UdpEndpoint {
    fn drop(&mut self) {
        self.receiving.abort();
    }
}

impl UdpEndpoint {
    /// Binds a UDP socket on `local` (port 0 picks a free one) and starts routing what it receives.
    ///
    /// # Errors
    ///
    /// The socket cannot be bound.
    pub async fn bind(local: SocketAddr) -> io::Result<Arc<UdpEndpoint>> {
        let socket = Arc::new(UdpSocket::bind(local).await?);
        if let Err(error) = socket2::SockRef::from(&*socket).set_recv_buffer_size(SOCKET_RECEIVE_BUFFER) {
            tracing::debug!(%error, "could not enlarge the tracker socket's receive buffer");
        }
        let routes = Arc::new(Routes::default());
        let receiving = tokio::spawn(route_replies(socket.clone(), routes.clone())).abort_handle();
        Ok(Arc::new(UdpEndpoint {
            socket,
            routes,
            connections: Mutex::new(HashMap::new()),
            connecting: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
            receiving,
        }))
    }

    /// The address the socket is bound to.
    ///
    /// # Errors
    ///
    /// The operating system cannot tell.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Waits for packets from `tracker` for `transaction_id` (and, so that a client can tell them from silence,
    /// those from `tracker` that no request claims) until the registration is dropped.
    fn register(&self, tracker: SocketAddr, transaction_id: TransactionId) -> Registration<'_> {
        let (sender, packets) = mpsc::channel(WAITING_PACKETS);
        let id = self.routes.next_waiter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        lock(&self.routes.waiting).entry(tracker).or_default().push(Waiter { id, transaction_id, packets: sender });
        Registration { routes: &self.routes, tracker, id, packets }
    }

    fn connection(&self, tracker: SocketAddr) -> Option<Connection> {
        lock(&self.connections).get(&tracker).copied()
    }

    fn set_connection(&self, tracker: SocketAddr, connection: Option<Connection>) {
        let mut connections = lock(&self.connections);
        match connection {
            Some(connection) => connections.insert(tracker, connection),
            None => connections.remove(&tracker),
        };
    }

    /// The permits of requests in flight to `tracker`.
    fn in_flight(&self, tracker: SocketAddr) -> Arc<tokio::sync::Semaphore> {
        let mut in_flight = lock(&self.in_flight);
        // Trackers nobody is asking are forgotten as others are added.
        in_flight.retain(|_, permits| Arc::strong_count(permits) > 1);
        in_flight.entry(tracker).or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT_PER_TRACKER))).clone()
    }

    fn connect_lock(&self, tracker: SocketAddr) -> Arc<tokio::sync::Mutex<()>> {
        let mut connecting = lock(&self.connecting);
        // Locks nobody holds or waits for are dropped as others are made: the map stays as small as the trackers.
        connecting.retain(|_, lock| Arc::strong_count(lock) > 1);
        connecting.entry(tracker).or_default().clone()
    }
}

/// A request waiting for its replies; dropping it (the request is over, or cancelled) stops the routing.
struct Registration<'a> {
    routes: &'a Routes,
    tracker: SocketAddr,
    id: u64,
    packets: mpsc::Receiver<Vec<u8>>,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut waiting = lock(&self.routes.waiting);
        if let Some(waiters) = waiting.get_mut(&self.tracker) {
            waiters.retain(|waiter| waiter.id != self.id);
            if waiters.is_empty() {
                waiting.remove(&self.tracker);
            }
        }
    }
}

/// The endpoint's receiving task: each packet goes to the request of its sender waiting for its transaction id;
/// one no request of the sender claims (a late reply, garbage) goes to all of them, which skip it or note it as
/// malformed; one from an address nobody waits for is dropped.
async fn route_replies(socket: Arc<UdpSocket>, routes: Arc<Routes>) {
    let mut buffer = vec![0u8; RECV_BUFFER_LEN];
    loop {
        let (len, from) = match socket.recv_from(&mut buffer).await {
            Ok(received) => received,
            // An ICMP error for an earlier datagram: the tracker may still come up, as after any lost packet.
            Err(error) if is_transient(&error) => continue,
            Err(error) => {
                tracing::warn!(%error, "receiving from UDP trackers");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let bytes = buffer.get(..len).unwrap_or_default();
        let transaction_id = bytes.get(4..8).and_then(|id| id.try_into().ok()).map(u32::from_be_bytes);
        let waiting = lock(&routes.waiting);
        let Some(waiters) = waiting.get(&from) else {
            tracing::trace!(%from, len, "ignoring a packet nobody waits for");
            continue;
        };
        match waiters.iter().find(|waiter| Some(waiter.transaction_id.0) == transaction_id) {
            Some(waiter) => {
                let _ = waiter.packets.try_send(bytes.to_vec());
            }
            None => {
                for waiter in waiters.iter().filter(|waiter| waiter.packets.capacity() > KEPT_FOR_REPLIES) {
                    let _ = waiter.packets.try_send(bytes.to_vec());
                }
            }
        }
    }
}

/// A BEP 15 client for one tracker. `announce` takes `&mut self`: one request in flight at a time per client;
/// clients sharing an endpoint run side by side.
#[derive(Debug)]
pub struct TrackerClient {
    endpoint: Arc<UdpEndpoint>,
    tracker: SocketAddr,
    timeouts: Timeouts,
    /// The last unparsable packet from the tracker during the current announce, for [`TrackerError::Malformed`].
    last_malformed: Option<ResponseParseError>,
}

impl TrackerClient {
    /// Parses `udp://host:port[/path]`, resolves the host and binds a UDP socket for talking to it.
    ///
    /// The host may be a name, an IPv4 address or a bracketed IPv6 address (`udp://[::1]:6969`); the path, if
    /// any, is not sent. Of the resolved addresses the first one of `bind`'s family is used, or the first one if
    /// there is none (or no `bind`). The socket binds to `bind` with port 0, or to the unspecified address of the
    /// tracker's family.
    ///
    /// # Errors
    ///
    /// [`TrackerError::NotUdp`] or [`TrackerError::BadUrl`] for a URL of the wrong form,
    /// [`TrackerError::Resolve`] if the host has no address, [`TrackerError::Io`] if the socket cannot be bound.
    pub async fn new(url: &str, bind: Option<IpAddr>, timeouts: Timeouts) -> Result<Self, TrackerError> {
        let tracker = resolve(url, bind).await?;
        let local_ip = bind.unwrap_or(match tracker {
            SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        });
        let local = SocketAddr::new(local_ip, 0);
        let endpoint = UdpEndpoint::bind(local).await.map_err(|source| TrackerError::Io {
            action: format!("binding a UDP socket on {local} for tracker {tracker}"),
            source,
        })?;
        tracing::debug!(%url, %tracker, local = ?endpoint.local_addr().ok(), "UDP tracker client ready");
        Ok(Self { endpoint, tracker, timeouts, last_malformed: None })
    }

    /// A client for the tracker at `tracker` (see [`resolve`]) that talks through `endpoint`, shared with other
    /// clients (the session's: see [`crate::trackers::TrackerEndpoints`]).
    #[must_use]
    pub fn on_endpoint(endpoint: Arc<UdpEndpoint>, tracker: SocketAddr, timeouts: Timeouts) -> Self {
        Self { endpoint, tracker, timeouts, last_malformed: None }
    }

    /// The same client with another retry schedule, e.g. a short one for the last `stopped` announce on exit.
    #[must_use]
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Changes the retry schedule of the next announces.
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        self.timeouts = timeouts;
    }

    /// The address the client sends to.
    #[must_use]
    pub fn tracker_addr(&self) -> SocketAddr {
        self.tracker
    }

    /// Announces to the tracker, connecting first unless a connection id younger than 60 s is cached.
    ///
    /// Attempt `n` (from 0 to `max_attempts - 1`) waits `base * 2^n` for each reply. A connect that times out
    /// is sent again in the next attempt; an announce that times out drops the cached id, so the next attempt
    /// connects again. Peers are read in the tracker address's family.
    ///
    /// Cancel-safe: dropping the future mid-way leaves the client usable; a reply that arrives later carries a
    /// stale transaction id and is ignored.
    ///
    /// # Errors
    ///
    /// [`TrackerError::Refused`] at once if the tracker answers with an error response;
    /// [`TrackerError::TimedOut`] (or [`TrackerError::Malformed`] if only unparsable packets came) once every
    /// attempt timed out; [`TrackerError::Io`] if sending or receiving fails.
    pub async fn announce(&mut self, announce: &Announce) -> Result<AnnounceReply, TrackerError> {
        let write = |connection_id, transaction_id, packet: &mut Vec<u8>| {
            AnnounceRequest {
                connection_id,
                transaction_id,
                info_hash: announce.info_hash,
                peer_id: announce.peer_id,
                downloaded: announce.downloaded,
                left: announce.left,
                uploaded: announce.uploaded,
                event: announce.event,
                ip_address: None,
                key: announce.key,
                num_want: announce.num_want,
                port: announce.port,
                options: AnnounceOptions::EMPTY,
            }
            .write(packet);
        };
        match self.request(Action::Announce, write).await? {
            Reply::Announce(reply) => Ok(reply),
            other => Err(self.unexpected(&other)),
        }
    }

    /// Asks the tracker about up to [`MAX_SCRAPE_HASHES`] torrents in one request (BEP 15 scrape): their seeders,
    /// completed downloads and leechers, in the order asked. Connects, retries and times out as
    /// [`TrackerClient::announce`] does, on the same cached connection id.
    ///
    /// # Errors
    ///
    /// [`TrackerError::ScrapeSize`] for none or more than [`MAX_SCRAPE_HASHES`] (nothing is sent);
    /// [`TrackerError::ScrapeMismatch`] when the reply names another number of torrents; else as
    /// [`TrackerClient::announce`].
    pub async fn scrape(&mut self, info_hashes: &[[u8; 20]]) -> Result<Vec<TorrentStats>, TrackerError> {
        if info_hashes.is_empty() || info_hashes.len() > MAX_SCRAPE_HASHES {
            return Err(TrackerError::ScrapeSize(info_hashes.len()));
        }
        let write = |connection_id, transaction_id, packet: &mut Vec<u8>| {
            ScrapeRequest { connection_id, transaction_id, info_hashes: InfoHashes::new(info_hashes) }.write(packet);
        };
        match self.request(Action::Scrape, write).await? {
            Reply::Scrape(stats) if stats.len() == info_hashes.len() => Ok(stats),
            Reply::Scrape(stats) => {
                let (tracker, asked, got) = (self.tracker, info_hashes.len(), stats.len());
                Err(TrackerError::ScrapeMismatch { tracker, asked, got })
            }
            other => Err(self.unexpected(&other)),
        }
    }

    /// Sends a request of kind `action`, written by `write` with the connection and transaction ids, until its
    /// reply comes: connecting first unless a connection id younger than 60 s is cached, attempt `n` waiting
    /// `base * 2^n`. A connect that times out is sent again in the next attempt; a request that times out drops
    /// the cached id, so the next attempt connects again. Returns the reply of that kind.
    async fn request(
        &mut self,
        action: Action,
        write: impl Fn(ConnectionId, TransactionId, &mut Vec<u8>),
    ) -> Result<Reply, TrackerError> {
        self.last_malformed = None;
        let mut packet = Vec::with_capacity(tracker_protocol::ANNOUNCE_REQUEST_LEN);
        for attempt in 0..self.timeouts.max_attempts {
            let timeout = self.timeouts.attempt_timeout(attempt);
            let connection_id = match self.fresh_connection_id() {
                Some(id) => id,
                None => match self.connect(timeout).await? {
                    Some(id) => id,
                    None => {
                        tracing::debug!(tracker = %self.tracker, attempt, ?timeout, "connect timed out");
                        continue;
                    }
                },
            };
            let transaction_id = random_transaction_id();
            packet.clear();
            write(connection_id, transaction_id, &mut packet);
            match self.exchange(&packet, action, transaction_id, timeout).await? {
                Outcome::Reply(Reply::Error(message)) => {
                    // The id may be what the tracker objects to; a later request starts afresh.
                    self.endpoint.set_connection(self.tracker, None);
                    return Err(TrackerError::Refused(message));
                }
                Outcome::Reply(reply) => return Ok(reply),
                Outcome::TimedOut => {}
            }
            tracing::debug!(tracker = %self.tracker, attempt, ?timeout, ?action, "request timed out; will reconnect");
            self.endpoint.set_connection(self.tracker, None);
        }
        let (tracker, attempts) = (self.tracker, self.timeouts.max_attempts);
        Err(match self.last_malformed.take() {
            Some(source) => TrackerError::Malformed { tracker, attempts, source },
            None => TrackerError::TimedOut { tracker, attempts },
        })
    }

    /// A reply of another kind than asked for; `exchange` returns only the one asked for or an error, so this
    /// does not happen, and says so if it does.
    fn unexpected(&self, reply: &Reply) -> TrackerError {
        TrackerError::Refused(format!("tracker {} answered with a {:?} reply", self.tracker, reply.action()))
    }

    /// The cached connection id, if it is younger than [`CONNECTION_ID_LIFETIME`].
    fn fresh_connection_id(&self) -> Option<ConnectionId> {
        let connection = self.endpoint.connection(self.tracker)?;
        (connection.requested_at.elapsed() < CONNECTION_ID_LIFETIME).then_some(connection.id)
    }

    /// A connection id from one connect request, waiting up to `timeout` for its reply, cached for every client of
    /// the endpoint. While another client connects to the same tracker, this one waits for that id instead.
    async fn connect(&mut self, timeout: Duration) -> Result<Option<ConnectionId>, TrackerError> {
        let connect_lock = self.endpoint.connect_lock(self.tracker);
        let _connecting = connect_lock.lock().await;
        if let Some(id) = self.fresh_connection_id() {
            return Ok(Some(id));
        }
        let transaction_id = random_transaction_id();
        let mut packet = Vec::with_capacity(tracker_protocol::CONNECT_REQUEST_LEN);
        ConnectRequest { transaction_id }.write(&mut packet);
        let requested_at = Instant::now();
        match self.exchange(&packet, Action::Connect, transaction_id, timeout).await? {
            Outcome::Reply(Reply::Connect(id)) => {
                self.endpoint.set_connection(self.tracker, Some(Connection { id, requested_at }));
                Ok(Some(id))
            }
            Outcome::Reply(Reply::Error(message)) => Err(TrackerError::Refused(message)),
            // `exchange` returns only connect and error replies here.
            Outcome::Reply(Reply::Announce(_) | Reply::Scrape(_)) | Outcome::TimedOut => Ok(None),
        }
    }

    /// Sends `packet` and returns the first reply from the tracker that carries `transaction_id` and is either an
    /// `expected` reply or an error, or `TimedOut` after `timeout`. Everything else received meanwhile is skipped.
    async fn exchange(
        &mut self,
        packet: &[u8],
        expected: Action,
        transaction_id: TransactionId,
        timeout: Duration,
    ) -> Result<Outcome, TrackerError> {
        let endpoint = self.endpoint.clone();
        let permits = endpoint.in_flight(self.tracker);
        // The semaphore is never closed; the wait for a permit is not part of the attempt's time.
        let _permit = permits.acquire().await;
        let deadline = Instant::now() + timeout;
        // Registered before sending: a quick reply is not missed.
        let mut registration = endpoint.register(self.tracker, transaction_id);
        endpoint
            .socket
            .send_to(packet, self.tracker)
            .await
            .map_err(|source| TrackerError::Io { action: format!("sending to tracker {}", self.tracker), source })?;
        loop {
            let bytes = match tokio::time::timeout_at(deadline, registration.packets.recv()).await {
                Err(_) | Ok(None) => return Ok(Outcome::TimedOut),
                Ok(Some(bytes)) => bytes,
            };
            let len = bytes.len();
            let parsed = match self.tracker {
                SocketAddr::V4(_) => parse_reply::<SocketAddrV4>(&bytes),
                SocketAddr::V6(_) => parse_reply::<SocketAddrV6>(&bytes),
            };
            match parsed {
                Ok((id, reply)) if id == transaction_id => {
                    if reply.action() == expected || reply.action() == Action::Error {
                        return Ok(Outcome::Reply(reply));
                    }
                    tracing::debug!(tracker = %self.tracker, action = ?reply.action(), "ignoring a reply of the wrong kind");
                }
                Ok((id, _)) => tracing::trace!(tracker = %self.tracker, ?id, "ignoring a reply to another transaction"),
                Err(error) => {
                    tracing::debug!(tracker = %self.tracker, %error, len, "ignoring a malformed reply");
                    self.last_malformed = Some(error);
                }
            }
        }
    }
}

/// The address of the tracker at `udp://host:port[/path]`: the first of `family`'s family when one is given and
/// there is one, else the first.
///
/// # Errors
///
/// A URL of the wrong form, or a host without an address.
pub async fn resolve(url: &str, family: Option<IpAddr>) -> Result<SocketAddr, TrackerError> {
    let (host, port) = parse_udp_url(url)?;
    let resolve_error = |source| TrackerError::Resolve { host: host.to_owned(), source };
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await.map_err(resolve_error)?.collect();
    let preferred = family.and_then(|family| addresses.iter().find(|addr| addr.is_ipv4() == family.is_ipv4()));
    preferred
        .or_else(|| addresses.first())
        .copied()
        .ok_or_else(|| resolve_error(io::Error::new(io::ErrorKind::NotFound, "no addresses found")))
}

/// Splits `udp://host:port[/path]` into host and port; the host of `udp://[::1]:6969` is `::1`.
fn parse_udp_url(url: &str) -> Result<(&str, u16), TrackerError> {
    let bad = |reason| TrackerError::BadUrl { url: url.to_owned(), reason };
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad("expected udp://host:port"));
    };
    if !scheme.eq_ignore_ascii_case("udp") {
        return Err(TrackerError::NotUdp { url: url.to_owned() });
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or_else(|| bad("unclosed '[' in IPv6 address"))?;
        if after.is_empty() {
            return Err(bad("missing port"));
        }
        let port = after.strip_prefix(':').ok_or_else(|| bad("expected ':port' after ']'"))?;
        (host, port)
    } else {
        let (host, port) = authority.rsplit_once(':').ok_or_else(|| bad("missing port"))?;
        if host.contains(':') {
            return Err(bad("an IPv6 address must be in brackets, as in udp://[::1]:6969"));
        }
        (host, port)
    };
    if host.is_empty() {
        return Err(bad("missing host"));
    }
    if port.is_empty() {
        return Err(bad("missing port"));
    }
    match port.parse::<u16>() {
        Ok(0) => Err(bad("port 0 is not a tracker port")),
        Ok(port) => Ok((host, port)),
        Err(_) => Err(bad("port is not a number from 1 to 65535")),
    }
}

/// Parses a reply whose peers are of type `A`.
fn parse_reply<A>(bytes: &[u8]) -> Result<(TransactionId, Reply), ResponseParseError>
where
    A: CompactPeer + Into<SocketAddr>,
{
    let response = Response::<A>::parse(bytes)?;
    let transaction_id = response.transaction_id();
    let reply = match response {
        Response::Connect(connect) => Reply::Connect(connect.connection_id),
        Response::Announce(announce) => Reply::Announce(AnnounceReply {
            interval: announce.interval,
            leechers: announce.leechers,
            seeders: announce.seeders,
            peers: announce.peers.into_iter().map(Into::into).collect(),
        }),
        Response::Error(error) => Reply::Error(error.message.into_owned()),
        Response::Scrape(scrape) => Reply::Scrape(scrape.torrents),
    };
    Ok((transaction_id, reply))
}

/// Receive errors that report an ICMP message about an earlier datagram rather than a broken socket.
fn is_transient(error: &io::Error) -> bool {
    matches!(error.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset)
}

fn random_transaction_id() -> TransactionId {
    TransactionId(rand::random())
}

#[cfg(test)]
#[path = "tracker_client_tests.rs"]
mod tests;
