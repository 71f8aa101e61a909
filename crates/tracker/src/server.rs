//! The UDP server: one worker per core, each a blocking socket of its own on the same address (SO_REUSEPORT: the
//! kernel spreads clients over the sockets), one thread, and one reused buffer for every reply; all workers share
//! the swarms ([`Shards`]) and the connection-ID key, so an ID one worker issued is good at every other.
//!
//! [`Tracker::handle`] turns one datagram into at most one reply without touching the socket, so it
//! is tested in process; [`Tracker::serve`] is the thin loop around it, and the first worker also expires stale
//! peers in batches and writes the periodic status lines. A reply costs a parse, a SipHash, a shard lock and a
//! hash-map lookup, all without allocating.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tracker_protocol::http;
use tracker_protocol::response::max_peers_within;
use tracker_protocol::{
    AnnounceEvent, AnnounceRequest, AnnounceResponse, CompactPeer, ConnectResponse, ConnectionId, ErrorResponse,
    Request, ScrapeRequest, ScrapeResponse, TorrentStats, TransactionId,
};

use crate::access::{self, Access};
use crate::connection_id::ConnectionIds;
use crate::metrics::{Requests, Snapshot};

#[path = "server_access.rs"]
mod access_rules;
#[path = "batch.rs"]
mod batch;
#[path = "dashboard.rs"]
mod dashboard;
#[path = "server_http.rs"]
mod http_requests;
use crate::shards::Shards;
use crate::swarm::{Announce, Change, Family, Limits, SwarmCounts};
pub use access_rules::AccessChange;
use dashboard::Journal;
pub use dashboard::JournalEntry;
pub use http_requests::HttpReply;

/// UDP payload a reply may fill: fits in one packet on any path (IPv6 minimum MTU minus headers).
const MAX_REPLY_PAYLOAD: usize = 1220;
/// Largest datagram read; longer ones are cut, which only drops BEP 41 option bytes.
const RECEIVE_BUFFER: usize = 2048;

/// Tracker settings, all in seconds except where typed.
#[derive(Debug, Clone)]
pub struct Config {
    /// Re-announce interval told to clients.
    pub interval: u32,
    /// Peers silent for longer are dropped.
    pub peer_timeout: u32,
    /// Peers handed out when a client sends numwant -1.
    pub default_numwant: usize,
    /// Most peers handed out per reply (also capped to what fits in 1220 bytes: 200 IPv4, 66 IPv6).
    pub max_numwant: usize,
    /// How long a connection ID stays valid.
    pub connection_lifetime: u32,
    /// Most info-hashes in one scrape.
    pub max_scrape_hashes: usize,
    /// How often status lines are logged.
    pub status_interval: Duration,
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            interval: 120,
            peer_timeout: 180,
            default_numwant: 50,
            max_numwant: 200,
            connection_lifetime: 120,
            max_scrape_hashes: 70,
            status_interval: Duration::from_secs(10),
            limits: Limits::default(),
        }
    }
}

/// A torrent named on the command line: only these are served in closed mode.
#[derive(Debug, Clone)]
pub struct NamedTorrent {
    /// The swarm's name: SHA-1 of the info dictionary, or a v2-only torrent's SHA-256 truncated to 20 bytes.
    pub info_hash: [u8; 20],
    /// A hybrid torrent's second swarm (BEP 52): its v2 info-hash truncated to 20 bytes, which v2 clients
    /// announce. Both are served, and shown as one torrent.
    pub v2_info_hash: Option<[u8; 20]>,
    pub name: String,
    pub total_length: u64,
}

impl NamedTorrent {
    /// The info-hashes it is announced under: one, or a hybrid's two.
    pub fn info_hashes(&self) -> impl Iterator<Item = [u8; 20]> + '_ {
        std::iter::once(self.info_hash).chain(self.v2_info_hash)
    }
}

/// The named torrents keyed by each info-hash they are announced under.
fn by_info_hash(named: Vec<NamedTorrent>) -> HashMap<[u8; 20], NamedTorrent> {
    let mut map = HashMap::new();
    for torrent in named {
        if let Some(v2) = torrent.v2_info_hash {
            map.insert(v2, torrent.clone());
        }
        map.insert(torrent.info_hash, torrent);
    }
    map
}

/// Each named torrent once (a hybrid is keyed twice), by name.
fn each_named(named: &HashMap<[u8; 20], NamedTorrent>) -> Vec<&NamedTorrent> {
    let mut torrents: Vec<&NamedTorrent> =
        named.iter().filter(|(hash, torrent)| **hash == torrent.info_hash).map(|(_, torrent)| torrent).collect();
    torrents.sort_by(|a, b| a.name.cmp(&b.name));
    torrents
}

/// Counters since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub connects: u64,
    pub announces: u64,
    pub scrapes: u64,
    pub errors_sent: u64,
    /// Datagrams dropped unanswered: unparseable, or with a connection ID we did not issue.
    pub dropped: u64,
}

/// One worker's counters: written by that worker only, each on a cache line of its own, summed when read.
#[derive(Debug, Default)]
#[repr(align(128))]
struct WorkerStats {
    connects: AtomicU64,
    announces: AtomicU64,
    scrapes: AtomicU64,
    errors_sent: AtomicU64,
    dropped: AtomicU64,
}

impl WorkerStats {
    fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What every worker shares: the swarms, the connection-ID key, the settings and the counters.
struct Shared {
    shards: Shards,
    /// The tracker's clock: every worker and the HTTP front count seconds from here.
    started: Instant,
    ids: ConnectionIds,
    config: Config,
    /// The named torrents and the access list, each replaced as a whole on reload; workers keep a copy of both
    /// and look at `epoch` (a cache line nobody writes in between) to know when to take new ones.
    named: Mutex<Arc<HashMap<[u8; 20], NamedTorrent>>>,
    access: Mutex<Arc<Access>>,
    epoch: AtomicU64,
    open: bool,
    stats: Box<[WorkerStats]>,
    expiry_passes: AtomicU64,
    expired_peers: AtomicU64,
    journal: Journal,
}

/// One worker of the tracker: the shared state and this worker's scratch buffers.
pub struct Tracker {
    shared: Arc<Shared>,
    worker: usize,
    /// This worker's copies of the named torrents and the access list, as of `epoch`.
    named: Arc<HashMap<[u8; 20], NamedTorrent>>,
    access: Arc<Access>,
    epoch: u64,
    rng: SmallRng,
    reply: Vec<u8>,
    peers_v4: Vec<SocketAddrV4>,
    peers_v6: Vec<SocketAddrV6>,
    scrape_stats: Vec<TorrentStats>,
}

impl Tracker {
    /// A tracker serving `named` torrents only, or any torrent when `open` (named ones then only
    /// get their names in the logs), as one worker.
    pub fn new(config: Config, named: Vec<NamedTorrent>, open: bool) -> Tracker {
        Tracker::workers(config, named, open, 1).remove(0)
    }

    /// `count` (at least 1) workers of one tracker, sharing its swarms and connection-ID key.
    pub fn workers(config: Config, named: Vec<NamedTorrent>, open: bool, count: usize) -> Vec<Tracker> {
        let shared = Arc::new(Shared::new(config, named, open, rand::random(), count.max(1)));
        (0..count.max(1)).map(|worker| Tracker::worker(&shared, worker, SmallRng::from_rng(&mut rand::rng()))).collect()
    }

    /// [`Tracker::new`] with a given connection-ID key and peer-sampling seed, so that a fuzz run
    /// replays exactly and its checker can tell which connection IDs are valid. Never for a real
    /// server: whoever knows the key can forge connection IDs for any address.
    #[doc(hidden)]
    pub fn with_key(config: Config, named: Vec<NamedTorrent>, open: bool, key: [u8; 16], seed: u64) -> Tracker {
        let shared = Arc::new(Shared::new(config, named, open, key, 1));
        Tracker::worker(&shared, 0, SmallRng::seed_from_u64(seed))
    }

    fn worker(shared: &Arc<Shared>, worker: usize, rng: SmallRng) -> Tracker {
        // The epoch before the copies: a reload in between then shows as a newer epoch at the next refresh,
        // instead of leaving this worker with old copies under the new epoch.
        let epoch = shared.epoch.load(Ordering::Acquire);
        Tracker {
            named: shared.named.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone(),
            access: shared.access.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone(),
            epoch,
            shared: shared.clone(),
            worker,
            rng,
            reply: Vec::with_capacity(MAX_REPLY_PAYLOAD),
            peers_v4: Vec::new(),
            peers_v6: Vec::new(),
            scrape_stats: Vec::new(),
        }
    }

    /// The swarms, shared by every worker.
    pub fn shards(&self) -> &Shards {
        &self.shared.shards
    }

    /// The counters of every worker, summed.
    pub fn stats(&self) -> Stats {
        let mut total = Stats::default();
        for worker in &self.shared.stats {
            total.connects += worker.connects.load(Ordering::Relaxed);
            total.announces += worker.announces.load(Ordering::Relaxed);
            total.scrapes += worker.scrapes.load(Ordering::Relaxed);
            total.errors_sent += worker.errors_sent.load(Ordering::Relaxed);
            total.dropped += worker.dropped.load(Ordering::Relaxed);
        }
        total
    }

    /// Announces each UDP worker answered, in worker order: how evenly the kernel spreads clients.
    pub fn announces_per_worker(&self) -> Vec<u64> {
        let udp = &self.shared.stats[..self.shared.stats.len() - 1];
        udp.iter().map(|worker| worker.announces.load(Ordering::Relaxed)).collect()
    }

    /// A handle for the HTTP front end: the same swarms and settings, counted apart from the UDP workers.
    #[must_use]
    pub fn http_handle(&self) -> Tracker {
        Tracker::worker(&self.shared, self.shared.stats.len() - 1, SmallRng::from_rng(&mut rand::rng()))
    }

    /// The figures `/metrics` and `/stats.json` show, now.
    #[must_use]
    pub fn snapshot(&self) -> Snapshot {
        let requests = |worker: &WorkerStats| Requests {
            connects: worker.connects.load(Ordering::Relaxed),
            announces: worker.announces.load(Ordering::Relaxed),
            scrapes: worker.scrapes.load(Ordering::Relaxed),
            errors_sent: worker.errors_sent.load(Ordering::Relaxed),
            dropped: worker.dropped.load(Ordering::Relaxed),
        };
        let (http, udp) = self.shared.stats.split_last().map_or((Requests::default(), Vec::new()), |(http, udp)| {
            (requests(http), udp.iter().map(requests).collect())
        });
        Snapshot {
            udp_workers: udp,
            http,
            totals: self.shared.shards.totals(),
            expiry_passes: self.shared.expiry_passes.load(Ordering::Relaxed),
            expired_peers: self.shared.expired_peers.load(Ordering::Relaxed),
            uptime_seconds: self.shared.started.elapsed().as_secs(),
        }
    }

    /// Takes new copies of the named torrents and the access list if either was replaced since the last look.
    fn refresh(&mut self) {
        let epoch = self.shared.epoch.load(Ordering::Acquire);
        if epoch != self.epoch {
            self.named = self.shared.named.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
            self.access = self.shared.access.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
            self.epoch = epoch;
        }
    }

    /// Replaces the named torrents (a reload): new ones are served from now on, and in closed mode the swarms of
    /// those no longer named are dropped; every other swarm stays as it is. Returns (added, removed).
    pub fn set_named(&self, named: Vec<NamedTorrent>) -> (usize, usize) {
        let new = by_info_hash(named);
        let mut current = self.shared.named.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let added: Vec<[u8; 20]> = new.keys().filter(|hash| !current.contains_key(*hash)).copied().collect();
        let removed: Vec<[u8; 20]> = current.keys().filter(|hash| !new.contains_key(*hash)).copied().collect();
        // Torrents, not hashes, are counted: a hybrid's two hashes come and go together.
        let torrents_among = |hashes: &[[u8; 20]], named: &HashMap<[u8; 20], NamedTorrent>| {
            hashes.iter().filter(|hash| named.get(*hash).is_some_and(|torrent| torrent.info_hash == **hash)).count()
        };
        let counts = (torrents_among(&added, &new), torrents_among(&removed, &current));
        if !self.shared.open {
            for hash in &added {
                self.shared.shards.lock(hash).allow(*hash);
            }
            for hash in &removed {
                self.shared.shards.lock(hash).disallow(hash);
            }
        }
        *current = Arc::new(new);
        self.shared.epoch.fetch_add(1, Ordering::Release);
        counts
    }

    /// Seconds on the tracker's clock.
    pub fn now(&self) -> u32 {
        u32::try_from(self.shared.started.elapsed().as_secs()).unwrap_or(u32::MAX)
    }

    fn my_stats(&self) -> &WorkerStats {
        &self.shared.stats[self.worker]
    }

    /// Answers one datagram from `source` at time `now` (seconds on the tracker's clock). Returns the
    /// reply, or `None` when the datagram gets no answer.
    pub fn handle(&mut self, packet: &[u8], source: SocketAddr, now: u32) -> Option<&[u8]> {
        self.refresh();
        let source = unmap(source);
        self.reply.clear();
        match Request::parse(packet, self.shared.config.max_scrape_hashes) {
            Ok(Request::Connect(connect)) => {
                WorkerStats::count(&self.my_stats().connects);
                let connection_id = ConnectionId(self.shared.ids.issue(source.ip(), now));
                ConnectResponse { transaction_id: connect.transaction_id, connection_id }.write(&mut self.reply);
            }
            Ok(Request::Announce(announce)) => {
                if !self.shared.ids.is_valid(announce.connection_id.0, source.ip(), now) {
                    WorkerStats::count(&self.my_stats().dropped);
                    return None;
                }
                WorkerStats::count(&self.my_stats().announces);
                if !self.access.permits(&announce.info_hash) {
                    tracing::debug!(%source, info_hash = %hex(&announce.info_hash), "refused announce: not allowed");
                    self.error(announce.transaction_id, access::NOT_ALLOWED);
                    return Some(&self.reply);
                }
                match source {
                    SocketAddr::V4(v4) => {
                        let peer = SocketAddrV4::new(*v4.ip(), announce.port);
                        let mut peers = std::mem::take(&mut self.peers_v4);
                        self.announce(peer, &announce, now, &mut peers);
                        self.peers_v4 = peers;
                    }
                    SocketAddr::V6(v6) => {
                        let peer = SocketAddrV6::new(*v6.ip(), announce.port, 0, 0);
                        let mut peers = std::mem::take(&mut self.peers_v6);
                        self.announce(peer, &announce, now, &mut peers);
                        self.peers_v6 = peers;
                    }
                }
            }
            Ok(Request::Scrape(scrape)) => {
                if !self.shared.ids.is_valid(scrape.connection_id.0, source.ip(), now) {
                    WorkerStats::count(&self.my_stats().dropped);
                    return None;
                }
                WorkerStats::count(&self.my_stats().scrapes);
                self.scrape(&scrape);
            }
            Err(err) => match err.reply_ids() {
                Some((connection_id, transaction_id))
                    if self.shared.ids.is_valid(connection_id.0, source.ip(), now) =>
                {
                    self.error(transaction_id, err.kind().reply_message());
                }
                _ => {
                    WorkerStats::count(&self.my_stats().dropped);
                    return None;
                }
            },
        }
        Some(&self.reply)
    }

    fn announce<A: Family + CompactPeer + std::fmt::Display>(
        &mut self,
        peer: A,
        request: &AnnounceRequest<'_>,
        now: u32,
        peers: &mut Vec<A>,
    ) {
        let wanted = usize::try_from(request.num_want).unwrap_or(self.shared.config.default_numwant);
        let num_want = wanted.min(self.shared.config.max_numwant).min(max_peers_within::<A>(MAX_REPLY_PAYLOAD));
        let announce = Announce {
            info_hash: request.info_hash,
            peer_id: request.peer_id,
            key: request.key,
            uploaded: request.uploaded,
            downloaded: request.downloaded,
            left: request.left,
            event: request.event,
            num_want,
        };
        peers.clear();
        let result = self.shared.shards.lock(&request.info_hash).announce(peer, &announce, now, &mut self.rng, peers);
        match result {
            Ok((counts, change)) => {
                self.log_announce(&peer, request, change, peers.len());
                self.journal_announce(&request.info_hash, peer, request.left == 0, change, peers, now);
                AnnounceResponse {
                    transaction_id: request.transaction_id,
                    interval: self.shared.config.interval,
                    leechers: counts.leechers,
                    seeders: counts.seeders,
                    peers: peers.iter().copied(),
                }
                .write(&mut self.reply);
            }
            Err(err) => {
                tracing::debug!(%peer, info_hash = %hex(&request.info_hash), "refused announce: {err}");
                self.error(request.transaction_id, err.reply_message());
            }
        }
    }

    fn log_announce(&self, peer: &dyn std::fmt::Display, request: &AnnounceRequest<'_>, change: Change, handed: usize) {
        let role = if request.left == 0 { "seeder" } else { "leecher" };
        let Some(torrent) = self.named.get(&request.info_hash) else {
            tracing::debug!(%peer, info_hash = %hex(&request.info_hash), role, left = request.left, handed, ?change, "announce");
            return;
        };
        let progress = if torrent.total_length == 0 {
            100.0
        } else {
            100.0 * (torrent.total_length.saturating_sub(request.left)) as f64 / torrent.total_length as f64
        };
        let progress = format!("{progress:.1}%");
        let notable = request.event != AnnounceEvent::None || matches!(change, Change::Joined | Change::Finished);
        if notable {
            tracing::info!(torrent = %torrent.name, %peer, role = %role, progress = %progress, event = ?request.event, handed, "peer announced");
        } else {
            tracing::debug!(torrent = %torrent.name, %peer, role = %role, progress = %progress, handed, "peer re-announced");
        }
    }

    fn scrape(&mut self, scrape: &ScrapeRequest<'_>) {
        self.scrape_stats.clear();
        for info_hash in scrape.info_hashes.iter() {
            // BEP 15 answers every hash, in order: one not served, or refused, gets zeros.
            let counts = self.scrape_counts(&info_hash);
            self.scrape_stats.push(TorrentStats {
                seeders: counts.seeders,
                completed: counts.completed,
                leechers: counts.leechers,
            });
        }
        ScrapeResponse { transaction_id: scrape.transaction_id, torrents: self.scrape_stats.iter().copied() }
            .write(&mut self.reply);
    }

    /// The scrape triple of `info_hash`, over UDP and HTTP alike: zeros for a hash not served, and for one the
    /// access list refuses (whatever swarm it had is not shown).
    fn scrape_counts(&self, info_hash: &[u8; 20]) -> SwarmCounts {
        if !self.access.permits(info_hash) {
            return SwarmCounts::default();
        }
        self.shared.shards.scrape(info_hash).unwrap_or_default()
    }

    fn error(&mut self, transaction_id: TransactionId, message: &'static str) {
        WorkerStats::count(&self.my_stats().errors_sent);
        self.reply.clear();
        ErrorResponse { transaction_id, message: Cow::Borrowed(message) }.write(&mut self.reply);
    }

    /// Drops peers silent for longer than the peer timeout.
    pub fn expire(&self, now: u32) {
        let cutoff = now.saturating_sub(self.shared.config.peer_timeout);
        let expired = self.shared.shards.expire(cutoff);
        self.shared.expiry_passes.fetch_add(1, Ordering::Relaxed);
        self.shared.expired_peers.fetch_add(expired.peers as u64, Ordering::Relaxed);
        if expired.peers > 0 || expired.torrents > 0 {
            tracing::info!(peers = expired.peers, torrents = expired.torrents, "cleaned stale peers");
        }
    }

    /// A named torrent's counts; a hybrid's two swarms as one (see [`Shards::scrape_joined`]).
    pub(crate) fn named_counts(&self, torrent: &NamedTorrent) -> SwarmCounts {
        match torrent.v2_info_hash {
            Some(v2) => self.shared.shards.scrape_joined(&torrent.info_hash, &v2),
            None => self.shared.shards.scrape(&torrent.info_hash).unwrap_or_default(),
        }
    }

    /// Logs one status line per named torrent, or one summary line in open mode.
    pub fn log_status(&self) {
        if self.named.is_empty() {
            let stats = self.stats();
            tracing::info!(
                torrents = self.shared.shards.torrent_count(),
                peers = self.shared.shards.peer_count(),
                announces = stats.announces,
                scrapes = stats.scrapes,
                dropped = stats.dropped,
                "status"
            );
            return;
        }
        for torrent in each_named(&self.named) {
            let counts = self.named_counts(torrent);
            tracing::info!(
                torrent = %torrent.name,
                seeders = counts.seeders,
                leechers = counts.leechers,
                completed = counts.completed,
                "status"
            );
        }
    }

    /// Serves `socket` until `shutdown` is set, checking it at least every 200 ms. The first worker also expires
    /// stale peers and logs the status lines, for all.
    pub fn serve(&mut self, socket: &UdpSocket, shutdown: &AtomicBool) -> io::Result<()> {
        let housekeeping = self.worker == 0;
        socket.set_read_timeout(Some(Duration::from_millis(200)))?;
        let mut next_sample = Duration::from_secs(1);
        let mut answered_before = 0;
        let cleanup_every = (self.shared.config.peer_timeout / 2).clamp(1, 30);
        let mut next_cleanup = cleanup_every;
        let mut next_status = self.shared.config.status_interval;
        let (mut incoming, mut outgoing) = (batch::Incoming::new(), batch::Outgoing::new());
        while !shutdown.load(Ordering::Relaxed) {
            let received = incoming.receive(socket);
            let elapsed = self.shared.started.elapsed();
            let now = u32::try_from(elapsed.as_secs()).unwrap_or(u32::MAX);
            match received {
                Ok(()) => {
                    for (packet, source) in incoming.requests() {
                        if let Some(reply) = self.handle(packet, source, now) {
                            outgoing.push(reply, source);
                        }
                    }
                    outgoing.send(socket);
                }
                Err(err) if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => tracing::debug!("receive failed: {err}"),
            }
            if !housekeeping {
                continue;
            }
            if elapsed >= next_sample {
                let stats = self.stats();
                let answered = stats.connects + stats.announces + stats.scrapes + stats.errors_sent;
                self.shared.journal.sample_rate(answered - answered_before);
                answered_before = answered;
                next_sample += Duration::from_secs(1);
            }
            if now >= next_cleanup {
                self.expire(now);
                next_cleanup = now + cleanup_every;
            }
            if elapsed >= next_status {
                self.refresh();
                self.log_status();
                next_status = elapsed + self.shared.config.status_interval;
            }
        }
        Ok(())
    }
}

impl Shared {
    fn new(config: Config, named: Vec<NamedTorrent>, open: bool, key: [u8; 16], workers: usize) -> Shared {
        let shards = if open {
            Shards::open(config.limits)
        } else {
            Shards::closed(named.iter().flat_map(NamedTorrent::info_hashes), config.limits)
        };
        Shared {
            shards,
            started: Instant::now(),
            ids: ConnectionIds::new(key, config.connection_lifetime),
            named: Mutex::new(Arc::new(by_info_hash(named))),
            access: Mutex::new(Arc::new(Access::Everyone)),
            epoch: AtomicU64::new(0),
            open,
            // One more for the HTTP front end, whose connections share it.
            stats: (0..=workers).map(|_| WorkerStats::default()).collect(),
            expiry_passes: AtomicU64::new(0),
            expired_peers: AtomicU64::new(0),
            journal: Journal::new(workers + 1),
            config,
        }
    }
}

/// Binds `count` UDP sockets to `address`, all with SO_REUSEPORT so the kernel spreads clients over them (each
/// client's datagrams always reach the same one). With port 0 the first socket picks the port and the others
/// join it.
pub fn bind_workers(address: SocketAddr, count: usize) -> io::Result<Vec<UdpSocket>> {
    use socket2::{Domain, Protocol, Socket, Type};
    let mut sockets: Vec<UdpSocket> = Vec::with_capacity(count.max(1));
    let mut address = address;
    for _ in 0..count.max(1) {
        let socket = Socket::new(Domain::for_address(address), Type::DGRAM, Some(Protocol::UDP))?;
        if count > 1 {
            socket.set_reuse_port(true)?;
        }
        socket.bind(&address.into())?;
        let socket: UdpSocket = socket.into();
        if address.port() == 0 {
            address.set_port(socket.local_addr()?.port());
        }
        sockets.push(socket);
    }
    Ok(sockets)
}

/// An IPv4 client reaching a dual-stack `[::]` socket shows up as `::ffff:a.b.c.d`: treat it as IPv4,
/// so it gets IPv4 peers and its connection ID is bound to its IPv4 address.
fn unmap(source: SocketAddr) -> SocketAddr {
    match source {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => source,
        },
        SocketAddr::V4(_) => source,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
