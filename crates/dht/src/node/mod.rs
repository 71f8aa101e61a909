//! The DHT node: one tokio UDP socket (IPv4), a background task that answers queries and matches replies, and
//! iterative lookups (bootstrap, get_peers, announce) run by the caller's task.
//!
//! The background task owns the receiving side. Queries are answered from the routing table, the peer store and
//! the token secret, after two token buckets ([`RateLimits`]: one per source IP address, one for all sources).
//! Replies to a sender not in our table are kept within [`AMPLIFICATION`] times the size of its query (nodes are
//! dropped first, then get_peers values), so a spoofed query cannot turn us into an amplifier. Replies to our own queries
//! are matched by transaction id *and* source address in a map of outstanding queries, capped at
//! [`NodeConfig::max_outstanding`]; entries older than [`NodeConfig::query_timeout`] are swept every
//! [`SWEEP_EVERY`] and reported to the routing table as timeouts. A node that answers one of our queries enters
//! the table ([`RoutingTable::responded`]); one that queries us and would fit is pinged first
//! ([`RoutingTable::queried_by`]). Nothing here unwraps or indexes into data from the network.
//!
//! Table maintenance (BEP 5) runs every [`NodeConfig::refresh_every`] in the same task: each bucket unchanged for
//! [`NodeConfig::bucket_refresh_after`] gets a find_node lookup of a random id in its range (at most
//! [`MAX_REFRESH_LOOKUPS`] at once, the rest queued), and the longest silent questionable nodes (at most
//! [`MAX_MAINTENANCE_PINGS`] a pass) are pinged, so that dead ones turn bad and give way to replacements.
//!
//! Dropping the [`Node`] aborts the background task and closes the socket.

mod lookup;
mod rate_limit;

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

pub use lookup::{Announced, LookupStats, PeerLookup};
pub use rate_limit::RateLimits;

use crate::krpc::{self, Body, MAX_DATAGRAM_LEN, Message, Method, Query, Response, TransactionId};
use crate::routing::{self, Contact, Insertion};
use crate::{NodeId, NodeInfo, PeerStore, PeerStoreLimits, RoutingTable, TokenSecret};

/// A reply to a sender that is not in our routing table is at most this many times as long as its query.
pub const AMPLIFICATION: usize = 5;
/// How often outstanding queries are checked for timeouts.
pub const SWEEP_EVERY: Duration = Duration::from_millis(100);
/// How often expired peers are dropped from the peer store.
const EXPIRE_EVERY: Duration = Duration::from_secs(60);
/// Peers in one get_peers reply at most (what fits in a datagram with room to spare, as libtorrent).
const MAX_REPLY_VALUES: usize = 100;
/// Bucket refresh lookups run at once at most; further stale buckets wait their turn.
pub const MAX_REFRESH_LOOKUPS: usize = 3;
/// Questionable nodes pinged per maintenance pass at most.
pub const MAX_MAINTENANCE_PINGS: usize = 8;
/// The shortest [`NodeConfig::refresh_every`] honoured.
const MIN_REFRESH_EVERY: Duration = Duration::from_millis(10);

/// How a [`Node`] runs.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Our node id; a random one if `None`.
    pub id: Option<NodeId>,
    /// Nodes to ask first when the table is (nearly) empty: routers such as router.bittorrent.com:6881, resolved.
    pub bootstrap: Vec<SocketAddr>,
    /// At most one node per IP address per bucket (on by default); off for tests with many nodes on 127.0.0.1.
    pub restrict_ips: bool,
    /// Limits on the queries we answer.
    pub rate_limits: RateLimits,
    /// How long a query of ours waits for its reply.
    pub query_timeout: Duration,
    /// Queries of ours awaiting a reply at most; past it, new ones are not sent.
    pub max_outstanding: usize,
    /// How long one lookup may take in all.
    pub lookup_timeout: Duration,
    /// Queries one lookup may send at most.
    pub lookup_max_queries: usize,
    /// Caps of the store of peers announced to us.
    pub peer_store: PeerStoreLimits,
    /// How often the table is maintained: stale buckets refreshed, questionable nodes pinged (default 60 s;
    /// at least 10 ms).
    pub refresh_every: Duration,
    /// A bucket unchanged for this long is refreshed by a lookup of a random id in its range (BEP 5: 15 minutes,
    /// [`routing::REFRESH_AFTER`]).
    pub bucket_refresh_after: Duration,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            id: None,
            bootstrap: Vec::new(),
            restrict_ips: true,
            rate_limits: RateLimits::default(),
            query_timeout: Duration::from_secs(2),
            max_outstanding: 256,
            lookup_timeout: Duration::from_secs(10),
            lookup_max_queries: 128,
            peer_store: PeerStoreLimits::default(),
            refresh_every: Duration::from_secs(60),
            bucket_refresh_after: routing::REFRESH_AFTER,
        }
    }
}

/// Counters since the node started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Datagrams received.
    pub received: u64,
    /// Queries answered (with a response or an error).
    pub answered: u64,
    /// Queries dropped by the rate limits.
    pub rate_limited: u64,
    /// Datagrams that were not KRPC and not a query we could answer with error 203.
    pub malformed: u64,
    /// Responses and errors that matched none of our outstanding queries (late, spoofed or unsolicited).
    pub unmatched: u64,
    /// Queries we sent.
    pub sent: u64,
    /// Queries of ours that timed out.
    pub timeouts: u64,
    /// Queries not sent because [`NodeConfig::max_outstanding`] were awaiting replies.
    pub outstanding_full: u64,
    /// Bucket refresh lookups started.
    pub refresh_lookups: u64,
    /// Pings sent to questionable nodes by table maintenance.
    pub maintenance_pings: u64,
}

/// What became of one query of ours.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    Response(Response),
    Error,
    Timeout,
}

/// One query of ours awaiting its reply.
#[derive(Debug)]
struct Outstanding {
    addr: SocketAddrV4,
    /// The id we expect, when we know it (a node from the table or a `nodes` list): reported to the table on timeout.
    id: Option<NodeId>,
    sent: Instant,
    reply_to: Option<mpsc::UnboundedSender<(SocketAddrV4, Outcome)>>,
}

struct State {
    table: RoutingTable,
    peers: PeerStore,
    tokens: TokenSecret,
    limiter: rate_limit::RateLimiter,
    outstanding: HashMap<TransactionId, Outstanding>,
    stats: NodeStats,
    last_expire: Instant,
}

struct Shared {
    id: NodeId,
    config: NodeConfig,
    socket: UdpSocket,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a query to `addr` and sends it. `false` if it could not be sent (too many outstanding, or a
    /// socket error): the caller treats that as a failure of the node.
    async fn send_query(
        &self,
        addr: SocketAddrV4,
        id: Option<NodeId>,
        method: Method,
        reply_to: Option<mpsc::UnboundedSender<(SocketAddrV4, Outcome)>>,
    ) -> bool {
        let datagram = {
            let mut state = self.lock();
            if state.outstanding.len() >= self.config.max_outstanding {
                state.stats.outstanding_full += 1;
                return false;
            }
            let mut rng = rand::rng();
            let tid = loop {
                let tid = TransactionId::new(&rng.random::<[u8; 4]>()).unwrap_or(TransactionId::from(0));
                if !state.outstanding.contains_key(&tid) {
                    break tid;
                }
            };
            state.outstanding.insert(tid, Outstanding { addr, id, sent: Instant::now(), reply_to });
            state.stats.sent += 1;
            (tid, Message::query(tid, self.id, method).to_bytes())
        };
        let (tid, bytes) = datagram;
        if let Err(error) = self.socket.send_to(&bytes, addr).await {
            tracing::debug!(%addr, %error, "dht: send failed");
            self.lock().outstanding.remove(&tid);
            return false;
        }
        true
    }

    async fn send_reply(&self, addr: SocketAddrV4, bytes: &[u8]) {
        if let Err(error) = self.socket.send_to(bytes, addr).await {
            tracing::debug!(%addr, %error, "dht: reply failed");
        }
    }
}

/// A Mainline DHT node on one UDP socket. See the module docs.
pub struct Node {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
    local_addr: SocketAddrV4,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("id", &self.shared.id).field("local_addr", &self.local_addr).finish()
    }
}

impl Node {
    /// Binds the socket (IPv4 only for now) and starts answering queries. Must be called within a tokio runtime.
    ///
    /// # Errors
    ///
    /// The socket's bind error, or `Unsupported` for an IPv6 address.
    pub async fn bind(addr: SocketAddr, config: NodeConfig) -> io::Result<Node> {
        if addr.is_ipv6() {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "the DHT node speaks IPv4 only for now"));
        }
        let socket = UdpSocket::bind(addr).await?;
        let SocketAddr::V4(local_addr) = socket.local_addr()? else {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "bound to an IPv6 address"));
        };
        let now = Instant::now();
        let mut rng = rand::rng();
        let id = config.id.unwrap_or_else(|| NodeId::random(&mut rng));
        let table_config = routing::Config { restrict_ips: config.restrict_ips };
        let state = State {
            table: RoutingTable::with_config(id, table_config, now),
            peers: PeerStore::new(config.peer_store),
            tokens: TokenSecret::random(&mut rng, now),
            limiter: rate_limit::RateLimiter::new(config.rate_limits, now),
            outstanding: HashMap::new(),
            stats: NodeStats::default(),
            last_expire: now,
        };
        let shared = Arc::new(Shared { id, config, socket, state: Mutex::new(state) });
        let task = tokio::spawn(run(Arc::clone(&shared)));
        Ok(Node { shared, task, local_addr })
    }

    /// Our node id.
    #[must_use]
    pub fn id(&self) -> NodeId {
        self.shared.id
    }

    /// The address the socket is bound to.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddrV4 {
        self.local_addr
    }

    /// The nodes of the routing table, to save for the next start.
    #[must_use]
    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.shared.lock().table.nodes().collect()
    }

    /// Counters since the start.
    #[must_use]
    pub fn stats(&self) -> NodeStats {
        self.shared.lock().stats
    }

    /// Peers others announced to us for `info_hash` (expired ones included until the next expiry pass).
    #[must_use]
    pub fn stored_peer_count(&self, info_hash: &[u8; 20]) -> usize {
        self.shared.lock().peers.peer_count(info_hash)
    }

    /// Pings `addr`; its id if it answered in time (it then enters the routing table, if there is room). This is
    /// how saved nodes are brought back.
    pub async fn ping(&self, addr: SocketAddrV4) -> Option<NodeId> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        if !self.shared.send_query(addr, None, Method::Ping, Some(tx)).await {
            return None;
        }
        let wait = self.shared.config.query_timeout + SWEEP_EVERY * 2;
        match tokio::time::timeout(wait, rx.recv()).await {
            Ok(Some((_, Outcome::Response(response)))) => Some(response.id),
            _ => None,
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The background task: receives datagrams, sweeps timeouts and maintains the table until aborted. Refresh
/// lookups run as tasks of a [`JoinSet`] owned here, so that aborting this task ends them too.
async fn run(shared: Arc<Shared>) {
    let mut buf = vec![0u8; MAX_DATAGRAM_LEN + 1];
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let every = shared.config.refresh_every.max(MIN_REFRESH_EVERY);
    let mut maintenance = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    maintenance.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut refreshes: JoinSet<()> = JoinSet::new();
    let mut pending: VecDeque<NodeId> = VecDeque::new();
    loop {
        tokio::select! {
            received = shared.socket.recv_from(&mut buf) => match received {
                Ok((len, SocketAddr::V4(src))) => {
                    let datagram = buf.get(..len).unwrap_or_default();
                    handle_datagram(&shared, datagram, src).await;
                }
                Ok((_, SocketAddr::V6(_))) => {}
                Err(error) => {
                    // E.g. an ICMP error reported on the socket (Windows): not fatal; avoid spinning on it.
                    tracing::debug!(%error, "dht: recv failed");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            },
            _ = sweep.tick() => sweep_timeouts(&shared),
            _ = maintenance.tick() => {
                for node in maintain(&shared, &mut pending) {
                    shared.send_query(node.addr, Some(node.id), Method::Ping, None).await;
                }
                start_refreshes(&shared, &mut refreshes, &mut pending);
            }
            Some(_) = refreshes.join_next(), if !refreshes.is_empty() => {
                start_refreshes(&shared, &mut refreshes, &mut pending);
            }
        }
    }
}

/// One maintenance pass: queues a refresh target for each stale bucket, and returns the questionable nodes to
/// ping (those not already awaiting a reply of ours).
fn maintain(shared: &Shared, pending: &mut VecDeque<NodeId>) -> Vec<NodeInfo<SocketAddrV4>> {
    let now = Instant::now();
    let mut state = shared.lock();
    let targets = state.table.refresh_targets_after(now, shared.config.bucket_refresh_after, &mut rand::rng());
    for target in targets {
        // At most one target per bucket is ever queued.
        if pending.len() < routing::MAX_BUCKETS {
            pending.push_back(target);
        }
    }
    let busy: HashSet<SocketAddrV4> = state.outstanding.values().map(|outstanding| outstanding.addr).collect();
    let pings: Vec<NodeInfo<SocketAddrV4>> = state
        .table
        .questionable(now, MAX_MAINTENANCE_PINGS)
        .into_iter()
        .filter_map(|node| match node.addr {
            SocketAddr::V4(addr) if !busy.contains(&addr) => Some(NodeInfo { id: node.id, addr }),
            _ => None,
        })
        .collect();
    state.stats.maintenance_pings += pings.len() as u64;
    pings
}

/// Starts queued refresh lookups while fewer than [`MAX_REFRESH_LOOKUPS`] run.
fn start_refreshes(shared: &Arc<Shared>, running: &mut JoinSet<()>, pending: &mut VecDeque<NodeId>) {
    while running.len() < MAX_REFRESH_LOOKUPS
        && let Some(target) = pending.pop_front()
    {
        shared.lock().stats.refresh_lookups += 1;
        let shared = Arc::clone(shared);
        running.spawn(async move {
            let lookup = lookup::run(&shared, target, lookup::Kind::FindNode).await;
            tracing::debug!(stats = ?lookup.stats, "dht: bucket refreshed");
        });
    }
}

fn sweep_timeouts(shared: &Shared) {
    let now = Instant::now();
    let timeout = shared.config.query_timeout;
    let mut state = shared.lock();
    let expired: Vec<TransactionId> = state
        .outstanding
        .iter()
        .filter(|(_, query)| now.saturating_duration_since(query.sent) >= timeout)
        .map(|(tid, _)| *tid)
        .collect();
    for tid in expired {
        let Some(query) = state.outstanding.remove(&tid) else { continue };
        state.stats.timeouts += 1;
        if let Some(id) = query.id {
            state.table.timed_out(NodeInfo { id, addr: query.addr.into() }, now);
        }
        if let Some(reply_to) = query.reply_to {
            // The lookup may have finished and dropped its receiver: nothing to do then.
            let _ = reply_to.send((query.addr, Outcome::Timeout));
        }
    }
    if now.saturating_duration_since(state.last_expire) >= EXPIRE_EVERY {
        state.last_expire = now;
        state.peers.expire(now);
    }
}

async fn handle_datagram(shared: &Shared, datagram: &[u8], src: SocketAddrV4) {
    let now = Instant::now();
    let mut pings = Vec::new();
    let reply = {
        let mut state = shared.lock();
        state.stats.received += 1;
        match Message::decode(datagram) {
            Ok((message, _)) => match message.body {
                Body::Query(query) => {
                    if state.limiter.allow(IpAddr::V4(*src.ip()), now) {
                        state.stats.answered += 1;
                        let reply =
                            answer(shared, &mut state, src, message.transaction_id, query.clone(), datagram.len(), now);
                        // One ping at a time per address: a flood of made-up ids from one source must not
                        // turn into a flood of pings to it. And these pings never take more than half of the
                        // outstanding queries, so sources on many ports (or spoofed ones) that never answer
                        // cannot starve our lookups.
                        if !message.read_only
                            && state.outstanding.len() < shared.config.max_outstanding / 2
                            && state.table.queried_by(NodeInfo { id: query.id, addr: src.into() }, now)
                                == Contact::WorthPinging
                            && !state.outstanding.values().any(|outstanding| outstanding.addr == src)
                        {
                            pings.push(src);
                        }
                        Some(reply)
                    } else {
                        state.stats.rate_limited += 1;
                        None
                    }
                }
                Body::Response(response) => {
                    let tid = message.transaction_id;
                    if let Some(query) = take_outstanding(&mut state, tid, src) {
                        if !message.read_only {
                            let node = NodeInfo { id: response.id, addr: src.into() };
                            if let Insertion::Cached { ping: Some(questionable) } = state.table.responded(node, now)
                                && let SocketAddr::V4(addr) = questionable.addr
                            {
                                pings.push(addr);
                            }
                        }
                        if let Some(reply_to) = query.reply_to {
                            let _ = reply_to.send((src, Outcome::Response(response)));
                        }
                    }
                    None
                }
                Body::Error(_) => {
                    if let Some(query) = take_outstanding(&mut state, message.transaction_id, src)
                        && let Some(reply_to) = query.reply_to
                    {
                        let _ = reply_to.send((src, Outcome::Error));
                    }
                    None
                }
            },
            Err(error) => match krpc::query_transaction_id(datagram) {
                Some(tid) if state.limiter.allow(IpAddr::V4(*src.ip()), now) => {
                    state.stats.answered += 1;
                    let reply = Message::error(tid, krpc::PROTOCOL_ERROR, &error.to_string()).to_bytes();
                    // The error's text names the fault; a tiny query gets a terse one, within the amplification
                    // bound like every reply.
                    if reply.len() <= datagram.len() * AMPLIFICATION {
                        Some(reply)
                    } else {
                        Some(Message::error(tid, krpc::PROTOCOL_ERROR, "malformed").to_bytes())
                    }
                }
                Some(_) => {
                    state.stats.rate_limited += 1;
                    None
                }
                None => {
                    state.stats.malformed += 1;
                    None
                }
            },
        }
    };
    if let Some(reply) = reply {
        shared.send_reply(src, &reply).await;
    }
    for addr in pings {
        shared.send_query(addr, None, Method::Ping, None).await;
    }
}

/// Removes and returns the outstanding query `tid` if the reply came from the address it was sent to.
fn take_outstanding(state: &mut State, tid: TransactionId, src: SocketAddrV4) -> Option<Outstanding> {
    match state.outstanding.get(&tid) {
        Some(query) if query.addr == src => state.outstanding.remove(&tid),
        _ => {
            state.stats.unmatched += 1;
            None
        }
    }
}

/// Our reply to a query that passed the rate limits, encoded and within the amplification bound.
fn answer(
    shared: &Shared,
    state: &mut State,
    src: SocketAddrV4,
    tid: TransactionId,
    query: Query,
    query_len: usize,
    now: Instant,
) -> Vec<u8> {
    let mut response = Response::new(shared.id);
    match query.method {
        Method::Ping => {}
        Method::FindNode { target, .. } => response.nodes = Some(closest_v4(&state.table, &target)),
        Method::GetPeers { info_hash, .. } => {
            response.token = Some(state.tokens.issue(IpAddr::V4(*src.ip()), now).to_vec());
            let values: Vec<SocketAddr> = state
                .peers
                .get(&info_hash, MAX_REPLY_VALUES, now, &mut rand::rng())
                .into_iter()
                .filter(SocketAddr::is_ipv4)
                .collect();
            // Nodes even beside values, as libtorrent: they let the querier's lookup go on to the closest nodes,
            // which are the ones an announce reached.
            response.nodes = Some(closest_v4(&state.table, &NodeId(info_hash)));
            if !values.is_empty() {
                response.values = Some(values);
            }
        }
        Method::AnnouncePeer { info_hash, port, implied_port, token, .. } => {
            if !state.tokens.verify(IpAddr::V4(*src.ip()), &token, now) {
                return Message::error(tid, krpc::PROTOCOL_ERROR, "bad token").to_bytes();
            }
            let port = if implied_port { src.port() } else { port };
            if port == 0 {
                return Message::error(tid, krpc::PROTOCOL_ERROR, "port 0").to_bytes();
            }
            state.peers.announce(info_hash, SocketAddr::from((*src.ip(), port)), now);
        }
        Method::Unknown { .. } => return Message::error(tid, krpc::METHOD_UNKNOWN, "method unknown").to_bytes(),
    }
    let known = state.table.nodes().any(|node| node.addr == SocketAddr::V4(src));
    let budget = if known { MAX_DATAGRAM_LEN } else { (query_len * AMPLIFICATION).min(MAX_DATAGRAM_LEN) };
    let mut message = Message::response(tid, response);
    message.external_addr = Some(src.into());
    fit(message, budget)
}

/// Encodes `message`, dropping entries until it fits in `budget` bytes: nodes first (beside values, the peers are
/// what a get_peers asks for), then values.
fn fit(mut message: Message, budget: usize) -> Vec<u8> {
    loop {
        let bytes = message.to_bytes();
        let Body::Response(response) = &mut message.body else { return bytes };
        if bytes.len() <= budget {
            return bytes;
        }
        let excess = bytes.len() - budget;
        let values = response.values.as_mut().filter(|values| !values.is_empty());
        let nodes = response.nodes.as_mut().filter(|nodes| !nodes.is_empty());
        match (values, nodes) {
            // Each node is 26 bytes of one string.
            (_, Some(nodes)) => {
                nodes.truncate(nodes.len().saturating_sub(excess.div_ceil(26)));
            }
            // Each IPv4 value is "6:" and 6 bytes.
            (Some(values), None) => values.truncate(values.len().saturating_sub(excess.div_ceil(8))),
            (None, None) => return bytes,
        }
    }
}

/// The 8 closest IPv4 nodes of the table to `target`.
fn closest_v4(table: &RoutingTable, target: &NodeId) -> Vec<NodeInfo<SocketAddrV4>> {
    table
        .closest(target, routing::K)
        .into_iter()
        .filter_map(|node| match node.addr {
            SocketAddr::V4(addr) => Some(NodeInfo { id: node.id, addr }),
            SocketAddr::V6(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn replies_fit_the_amplification_budget() {
        let query = Message::query(
            TransactionId::from(1),
            NodeId([1; 20]),
            Method::GetPeers { info_hash: [2; 20], bootstrap: false },
        );
        let budget = query.to_bytes().len() * AMPLIFICATION;
        let mut response = Response::new(NodeId([3; 20]));
        response.token = Some(vec![0; 8]);
        response.values = Some((0..100).map(|i| SocketAddr::from((Ipv4Addr::new(10, 0, 0, i), 6881))).collect());
        let mut message = Message::response(TransactionId::from(1), response);
        message.external_addr = Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 6881)));
        let bytes = fit(message, budget);
        assert!(bytes.len() <= budget, "{} > {budget}", bytes.len());
        let Ok((Message { body: Body::Response(response), .. }, _)) = Message::decode(&bytes) else {
            panic!("the trimmed reply decodes")
        };
        let values = response.values.map_or(0, |values| values.len());
        assert!(values > 20, "only {values} values kept");
        assert!(fit(Message::response(TransactionId::from(1), Response::new(NodeId([3; 20]))), 10).len() > 10);
    }

    #[test]
    fn nodes_go_before_values() {
        let mut response = Response::new(NodeId([3; 20]));
        response.token = Some(vec![0; 8]);
        response.values = Some((0..30).map(|i| SocketAddr::from((Ipv4Addr::new(10, 0, 0, i), 6881))).collect());
        let node = |i: u8| NodeInfo { id: NodeId([i; 20]), addr: SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, i), 1) };
        response.nodes = Some((0..8).map(node).collect());
        let message = Message::response(TransactionId::from(1), response);
        let full = message.to_bytes().len();
        let bytes = fit(message, full - 100);
        assert!(bytes.len() <= full - 100);
        let Ok((Message { body: Body::Response(response), .. }, _)) = Message::decode(&bytes) else {
            panic!("the trimmed reply decodes")
        };
        assert_eq!(response.values.map(|values| values.len()), Some(30));
        assert_eq!(response.nodes.map(|nodes| nodes.len()), Some(4));
    }
}
