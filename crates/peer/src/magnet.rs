//! Starting from an info-hash alone (a magnet link): announce, dial peers and fetch the info dictionary over
//! ut_metadata (BEP 9) from several of them at once, checked against the info-hash (SHA-1 for v1, SHA-256 for a
//! v2 link's hash, both for a hybrid link). A v2 or hybrid dictionary (BEP 52) is not a whole torrent yet: the
//! piece layers of its files longer than one piece are then asked of the same connections with hash requests,
//! each answer proven up to the file's `pieces root`. The torrent's download starts once this returns, over the
//! connections that fetched the metadata (handed over as they stand, with what their peers said so far: no second
//! handshake, no redial) and with the peers found here as candidates.
//!
//! Hash requests go only over v2 connections, as libtorrent 2.0 drops a peer that sends one on a connection it
//! deems v1: for a hybrid link our handshake carries the v1 hash with the v2 "upgrade" bit, and a peer that
//! answers with the truncated v2 hash makes the connection v2; a v2 link's swarm is named by that hash, so every
//! connection is v2. A hybrid does not need its layers (its v1 pieces check every byte): when no peer proves a
//! new part of them for [`LAYER_PATIENCE`] (a swarm of v1-only clients), the fetch ends with the layers proven so
//! far and the download goes over v1; over a v1 link (`btih` only), where no connection is v2, at once. A v2-only
//! dictionary waits for all of them.
//!
//! Peers that dial the session for this info-hash are served from the first second: they are the likeliest to
//! have the metadata (a seeder that learned of us from the tracker), and their listen port (from their extended
//! handshake) is handed on with the others.
//!
//! The decisions (who is asked for which piece, who is banned, whose patience ran out, who gives way to a
//! waiting candidate) are in [`crate::metadata`]; this module is the I/O around them.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// The runtime's clock, not the wall's: a simulation runs this code in virtual time.
use tokio::time::Instant;

use peer_wire::{
    ExtendedHandshake, HANDSHAKE_LEN, Handshake, MAX_MESSAGE_LEN, Message, MetadataMessage, ReservedBit, UT_METADATA,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc, watch};
use tracker_protocol::AnnounceEvent;

use metainfo::merkle::Hash32;
use metainfo::merkle_proof::HashRange;

use crate::admission::Ticket;
use exchange::{accepted_connection, connect};

mod exchange;
use crate::events::{Event, EventSink};
use crate::metadata::{InfoCheck, LayerFetch, LayerProgress, MAX_METADATA_SIZE, MetadataFetch, PATIENCE, Received};
use crate::sources::{Candidates, Source};
use crate::swarm::Direction;
use crate::tracker_client::{Announce, Timeouts};
use crate::trackers::{AnnounceClient, TrackerEndpoints};

/// Connections fetching metadata at once, dialled and accepted together.
const MAX_CONNECTIONS: usize = 16;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a connection looks again for pieces to ask (asks of others time out, peers leave).
const ASK_AGAIN_EVERY: Duration = Duration::from_secs(1);
/// Bytes read from a socket at a time: what a metadata piece needs, so a fast sender touches little memory.
const READ_CHUNK: usize = 64 * 1024;
/// Our extended message id for ut_metadata, as we tell peers in our extended handshake.
const UT_METADATA_ID: u8 = 1;
/// `left` announced while the size is unknown: not 0, which would make us a seeder (libtorrent sends 16 KiB).
const UNKNOWN_LEFT: u64 = 16 * 1024;
/// Re-announce at least this often while fetching, whatever interval the tracker asks for.
const MAX_FETCH_INTERVAL: Duration = Duration::from_secs(60);
const DIAL_EVERY: Duration = Duration::from_millis(500);
/// A hybrid's piece layers are given up on when no peer proved a new part of them for this long (since the info
/// dictionary came in, or since the last part did).
pub const LAYER_PATIENCE: Duration = Duration::from_secs(10);
/// Longest wait, once the metadata is complete, for the connections to hand themselves over and for `started`
/// announces in flight to be answered (else the download would send a second `started`).
const HANDOVER_WAIT: Duration = Duration::from_secs(2);
/// Most bytes kept per connection of what its peer said while fetching (bitfield, haves, extended handshake): a
/// peer that says more is not handed over.
const MAX_REPLAY: usize = 512 * 1024;

/// Where to look for the metadata.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// Our listening port, announced to the trackers.
    pub port: u16,
    /// Local IP to connect and announce from, if not any.
    pub local_ip: Option<IpAddr>,
    pub trackers: Vec<String>,
    /// Peers given with the link (`x.pe`) or on the command line.
    pub peers: Vec<(SocketAddr, Source)>,
    pub tracker_timeouts: Timeouts,
    /// A DHT node to look the info-hash up on.
    pub dht: Option<Arc<dht::Node>>,
    /// Local service discovery (BEP 14): announce the info-hash on the local network and ask the neighbours that
    /// announce it.
    pub lsd: bool,
}

/// Piece layers keyed by their file's `pieces root`, as BEP 52's `piece layers` dictionary holds them.
pub type PieceLayers = BTreeMap<Hash32, Vec<Hash32>>;

/// The verified info dictionary, the peers known so far and the connections that go on into the download.
#[derive(Debug)]
pub struct Fetched {
    pub info_bytes: Vec<u8>,
    /// For a v2 or hybrid dictionary: the verified piece layer of each file longer than one piece, keyed by its
    /// `pieces root` (BEP 52's `piece layers`); empty for a v1 one.
    pub piece_layers: PieceLayers,
    /// Every candidate found while fetching, with its source, to be dialled by the session.
    pub peers: Vec<(SocketAddr, Source)>,
    /// The connections alive when the metadata was complete, to be adopted by the download.
    pub connections: Vec<Handover>,
    /// The trackers told `started` while fetching, with the key sent: the download's announces go on from there
    /// (one `started` per torrent, as a tracker expects).
    pub announced: Vec<(String, u32)>,
}

/// A peer that dialled the session for a torrent whose metadata is being fetched: its handshake is read, and
/// holds `ticket` (its place among the handshakes in progress) until the fetch answers it.
#[derive(Debug)]
pub struct IncomingPeer {
    pub stream: TcpStream,
    pub addr: SocketAddr,
    pub handshake: Handshake,
    pub ticket: Ticket,
}

/// A connection that fetched metadata, alive when the fetch ended: the download goes on over it as it stands
/// ([`crate::connection::adopt`]).
#[derive(Debug)]
pub struct Handover {
    pub(crate) stream: TcpStream,
    pub(crate) addr: SocketAddr,
    pub(crate) direction: Direction,
    pub(crate) source: Source,
    /// Its handshake.
    pub(crate) handshake: Handshake,
    /// Whether the connection is v2 (BEP 52): named by the v2 hash, or upgraded.
    pub(crate) v2: bool,
    /// Where its peer listens, if its extended handshake said.
    pub(crate) listen_port: Option<u16>,
    /// What its peer said that the download needs (its extended handshake, bitfield, haves, choke and interest),
    /// then the bytes of a message not yet whole: wire bytes, in the order they came.
    pub(crate) replay: Vec<u8>,
}

/// Why the fetch cannot start.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "the magnet link names no tracker (tr=) and no peer (x.pe=), none was given with --peer, and the DHT and \
         local service discovery are off"
    )]
    NowhereToLook,
}

/// Which connections are v2 (BEP 52), the only ones hash requests may go over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkKind {
    /// A v1 link (`urn:btih:` alone): no connection is v2.
    V1,
    /// A hybrid link (both hashes): our v1 handshake asks to upgrade; an answer with `v2`, the truncated v2 hash,
    /// makes the connection v2 (libtorrent 2.0's way).
    Hybrid { v2: [u8; 20] },
    /// A v2 link: the swarm is named by the truncated v2 hash, and every connection is v2.
    V2,
}

impl LinkKind {
    fn of(check: InfoCheck) -> LinkKind {
        match (check.v1, check.v2) {
            (Some(_), Some(v2)) => {
                let mut truncated = [0u8; 20];
                truncated.copy_from_slice(&v2[..20]);
                LinkKind::Hybrid { v2: truncated }
            }
            (None, Some(_)) => LinkKind::V2,
            _ => LinkKind::V1,
        }
    }

    /// Whether our handshake, for the swarm `ours`, asks to upgrade to v2 (reserved bit [`ReservedBit::V2`]).
    fn asks_upgrade(self, ours: &[u8; 20]) -> bool {
        matches!(self, LinkKind::Hybrid { v2 } if v2 != *ours)
    }

    /// Whether a connection we opened for `ours` and answered with `theirs` is v2; an error when `theirs` names
    /// another torrent.
    fn is_v2(self, ours: &[u8; 20], theirs: &[u8; 20]) -> Result<bool, String> {
        let v2 = match self {
            LinkKind::V1 => None,
            LinkKind::Hybrid { v2 } => Some(v2),
            LinkKind::V2 => Some(*ours),
        };
        if v2.as_ref() == Some(theirs) {
            Ok(true)
        } else if theirs == ours {
            Ok(false)
        } else {
            Err("handshake for another torrent".into())
        }
    }
}

struct Shared {
    info_hash: [u8; 20],
    kind: LinkKind,
    peer_id: [u8; 20],
    port: u16,
    local_ip: Option<IpAddr>,
    /// Whether we run a DHT node: our handshake says so, and the peer's DHT port goes on to the download.
    dht: bool,
    /// The session's tracker sockets and HTTP client.
    trackers: Arc<TrackerEndpoints>,
    events: EventSink,
    state: Mutex<State>,
    /// Set when the fetch is over (or dropped): connections that end later close instead of being handed over.
    abandoned: std::sync::atomic::AtomicBool,
    /// The candidates changed, or a connection ended.
    wake: Notify,
    /// Set once, when the metadata is complete: every connection ends.
    done: watch::Sender<bool>,
    /// Bumped when a v2 dictionary is in and its piece layers are to be fetched, and whenever a hash request goes
    /// back to the others (rejected, or its peer gone): connections look for requests to send.
    layers_turn: watch::Sender<u64>,
}

struct State {
    fetch: MetadataFetch,
    candidates: Candidates,
    known: Vec<(SocketAddr, Source)>,
    seen: HashSet<SocketAddr>,
    connections: usize,
    /// How to end each live connection early (to make room for a waiting candidate).
    kicks: std::collections::HashMap<SocketAddr, Arc<Notify>>,
    /// A verified v2 info dictionary whose piece layers are being fetched.
    info: Option<Vec<u8>>,
    layers: Option<LayerFetch>,
    /// Whether the dictionary is a hybrid's, which can do without its layers.
    layers_optional: bool,
    /// When the layer fetch began, or last proved a part of a layer.
    layers_progress: Instant,
    result: Option<(Vec<u8>, PieceLayers)>,
    /// Connections handed over once the fetch is complete.
    handovers: Vec<Handover>,
    /// Trackers told `started`, with the key.
    announced: Vec<(String, u32)>,
    /// `started` announces sent and not answered yet.
    started_in_flight: usize,
    /// Trackers sent a `started` (answered or not), with the key: told `stopped` if the fetch is dropped.
    told: Vec<(String, u32)>,
}

impl State {
    /// Keeps `addr` to hand on to the download, up to as many as its candidate table holds.
    fn remember(&mut self, addr: SocketAddr, source: Source) {
        if self.known.len() < crate::sources::MAX_CANDIDATES && self.seen.insert(addr) {
            self.known.push((addr, source));
        }
    }

    /// Whether `addr` is not to be dialled again: bad metadata, or a bad proof of a piece layer.
    fn is_banned(&self, addr: SocketAddr) -> bool {
        self.fetch.is_banned(addr) || self.layers.as_ref().is_some_and(|layers| layers.is_banned(addr))
    }

    /// The info dictionary `metadata` checked out: done, unless it is a v2 one with layers to fetch. `true` when
    /// the fetch is complete. Over a v1 link (`kind`) no connection is v2, so a hybrid's layers cannot be asked
    /// for: it is done at once, with none.
    fn metadata_complete(&mut self, metadata: Vec<u8>, kind: LinkKind) -> bool {
        match metainfo::piece_layers_wanted(&metadata) {
            Ok(Some(wanted)) if wanted.hybrid && !wanted.files.is_empty() && kind == LinkKind::V1 => {
                tracing::info!(
                    "the torrent is a hybrid, and a v1 link (btih only) cannot ask for its piece layers; \
                     downloading over v1 (SHA-1)"
                );
                self.result = Some((metadata, BTreeMap::new()));
                true
            }
            Ok(Some(wanted)) if !wanted.files.is_empty() => {
                tracing::info!(
                    "fetching the piece layers of {} files ({} hashes) with hash requests",
                    wanted.files.len(),
                    wanted.hash_count()
                );
                self.layers = Some(LayerFetch::new(&wanted));
                self.layers_optional = wanted.hybrid;
                self.layers_progress = Instant::now();
                self.info = Some(metadata);
                false
            }
            Ok(_) => {
                self.result = Some((metadata, BTreeMap::new()));
                true
            }
            Err(err) => {
                // Checked by its hash, so no peer is to blame: the caller reports it when it reads the torrent.
                tracing::warn!("the fetched info dictionary is not a usable v2 one: {err}");
                self.result = Some((metadata, BTreeMap::new()));
                true
            }
        }
    }

    /// A hybrid's layers made no progress for [`LAYER_PATIENCE`] by `now`: the fetch ends with those proven so far
    /// (the v1 pieces check the rest). `true` when it did.
    fn give_up_layers(&mut self, now: Instant) -> bool {
        let Some(layers) = self.layers.as_ref() else { return false };
        if self.result.is_some()
            || !self.layers_optional
            || now.saturating_duration_since(self.layers_progress) < LAYER_PATIENCE
        {
            return false;
        }
        let proven = layers.proven_layers();
        let files = |n: usize| if n == 1 { "1 file".to_owned() } else { format!("{n} files") };
        tracing::warn!(
            "no peer sent the piece layers of {} within {} s; downloading over v1 (SHA-1) only{}",
            files(layers.files_missing()),
            LAYER_PATIENCE.as_secs(),
            if proven.is_empty() { String::new() } else { format!(" (the layers of {} are in)", files(proven.len())) }
        );
        self.result = Some((self.info.take().unwrap_or_default(), proven));
        true
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn add_candidate(&self, addr: SocketAddr, source: Source) {
        let mut state = self.lock();
        state.remember(addr, source);
        state.candidates.add(addr, source, Instant::now());
        drop(state);
        self.wake.notify_one();
    }
}

/// Where a fetch runs: the session's peer id, tracker sockets and events, and the peers that dial the session
/// for this info-hash.
#[derive(Debug)]
pub struct FetchContext {
    pub peer_id: [u8; 20],
    pub trackers: Arc<TrackerEndpoints>,
    pub events: EventSink,
    /// The peers that dial the session for this torrent, their handshakes read.
    pub incoming: Option<mpsc::Receiver<IncomingPeer>>,
    /// The session's local service discovery, used when [`FetchConfig::lsd`] is set.
    pub lsd: Option<Arc<crate::lsd::service::LsdService>>,
}

/// Sets the fetch's end however it ends (complete, or dropped when its torrent is paused or removed): every
/// connection task sees it and ends, and none is handed over any more.
struct Abandon(Arc<Shared>);

impl Drop for Abandon {
    fn drop(&mut self) {
        let shared = &self.0;
        shared.abandoned.store(true, std::sync::atomic::Ordering::Release);
        shared.done.send_replace(true);
        // Dropped before the metadata came (its torrent paused or removed): the trackers sent a `started`, answered
        // or still in flight, are told `stopped`, briefly, by a task of its own (a drop cannot wait). A complete
        // fetch hands them on instead.
        let told = std::mem::take(&mut shared.lock().told);
        if let (false, Ok(runtime)) = (told.is_empty(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(say_stopped(shared.clone(), told));
        }
    }
}

/// Tells each of `told` (tracker and key) that we stopped, within a few seconds at most.
async fn say_stopped(shared: Arc<Shared>, told: Vec<(String, u32)>) {
    let mut goodbyes = tokio::task::JoinSet::new();
    for (url, key) in told {
        let shared = shared.clone();
        goodbyes.spawn(async move {
            let quick = Timeouts { base: Duration::from_secs(1), max_attempts: 2 };
            let Ok(mut client) = AnnounceClient::new(&url, &shared.trackers, quick).await else { return };
            let mut announce = fetch_announce(&shared, AnnounceEvent::Stopped, key);
            announce.num_want = 0;
            let _ = client.announce(&announce).await;
        });
    }
    // Whatever is not said by then is not said (the set aborts the rest when dropped).
    let _ = tokio::time::timeout(Duration::from_secs(5), goodbyes.join_all()).await;
}

/// Fetches the info dictionary of the swarm `info_hash`, checked by `check` (the SHA-1 of a v1 link's hash, the
/// SHA-256 of a v2 link's hash, whose first 20 bytes name the swarm, or both hashes of a hybrid link), for as
/// long as it takes (the caller bounds it: dropping the future ends every task of the fetch).
///
/// # Errors
///
/// [`FetchError::NowhereToLook`] when there is neither a tracker nor a peer to ask.
pub async fn fetch_checked(
    info_hash: [u8; 20],
    check: InfoCheck,
    config: FetchConfig,
    context: FetchContext,
) -> Result<Fetched, FetchError> {
    let FetchContext { peer_id, trackers: endpoints, events, mut incoming, lsd } = context;
    let trackers: Vec<String> = config.trackers.iter().filter(|url| AnnounceClient::supports(url)).cloned().collect();
    for url in config.trackers.iter().filter(|url| !AnnounceClient::supports(url)) {
        tracing::warn!("skipping tracker {url}: only udp://, http:// and https:// trackers are supported");
    }
    let lsd = lsd.filter(|_| config.lsd);
    // The listener alone is no place to look: nobody would know to dial it.
    if trackers.is_empty() && config.peers.is_empty() && config.dht.is_none() && lsd.is_none() {
        return Err(FetchError::NowhereToLook);
    }
    let shared = Arc::new(Shared {
        info_hash,
        kind: LinkKind::of(check),
        peer_id,
        port: config.port,
        local_ip: config.local_ip,
        dht: config.dht.is_some(),
        trackers: endpoints,
        events,
        state: Mutex::new(State {
            fetch: MetadataFetch::with_check(check),
            candidates: Candidates::default(),
            known: Vec::new(),
            seen: HashSet::new(),
            connections: 0,
            kicks: std::collections::HashMap::new(),
            info: None,
            layers: None,
            layers_optional: false,
            layers_progress: Instant::now(),
            result: None,
            handovers: Vec::new(),
            announced: Vec::new(),
            started_in_flight: 0,
            told: Vec::new(),
        }),
        abandoned: false.into(),
        wake: Notify::new(),
        done: watch::Sender::new(false),
        layers_turn: watch::Sender::new(0),
    });
    let _abandon = Abandon(shared.clone());
    for &(addr, source) in &config.peers {
        shared.add_candidate(addr, source);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for url in trackers {
        tasks.spawn(announce_while_fetching(shared.clone(), url, config.tracker_timeouts));
    }
    if let Some(node) = config.dht.clone() {
        let shared = shared.clone();
        tasks.spawn(async move {
            let found = |addr: SocketAddr| {
                if !(addr.port() == shared.port && addr.ip().is_loopback()) {
                    shared.add_candidate(addr, Source::Dht);
                }
            };
            // No announce yet: we have nothing to serve until the metadata is here.
            crate::dht_peers::look_up(node, info_hash, None, found).await;
        });
    }
    // Announced with our port all the same: neighbours that have the torrent answer with their own announce. The
    // registration ends with the fetch.
    let _discovery = lsd.map(|lsd| {
        let shared = shared.clone();
        lsd.register(info_hash, move |addr| shared.add_candidate(addr, Source::Lsd))
    });
    let mut done = shared.done.subscribe();
    loop {
        {
            let mut state = shared.lock();
            if state.give_up_layers(Instant::now()) {
                shared.done.send_replace(true);
            }
            if state.result.is_some() {
                break;
            }
        }
        let wake = shared.wake.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        let due = {
            let mut state = shared.lock();
            let now = Instant::now();
            let room = MAX_CONNECTIONS.saturating_sub(state.connections);
            if room == 0 && state.result.is_none() && state.info.is_none() {
                // Every slot is taken: peers that have given nothing make way for candidates waiting to be tried.
                let waiting = state.candidates.waiting(now);
                for addr in state.fetch.to_rotate(now, waiting) {
                    if let Some(kick) = state.kicks.remove(&addr) {
                        kick.notify_one();
                    }
                }
            }
            let due = state.candidates.due(now, room, false, |_| false);
            state.connections += due.len();
            due
        };
        for (addr, source) in due {
            tokio::spawn(connect(shared.clone(), addr, source));
        }
        let accept = async {
            match incoming.as_mut() {
                Some(incoming) => incoming.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = until_done(&mut done) => break,
            () = wake => {}
            () = tokio::time::sleep(DIAL_EVERY) => {}
            accepted = accept => match accepted {
                Some(peer) => {
                    let mut state = shared.lock();
                    if state.connections < MAX_CONNECTIONS && !state.is_banned(peer.addr) {
                        state.connections += 1;
                        drop(state);
                        tokio::spawn(accepted_connection(shared.clone(), peer));
                    } else {
                        // Full: it is turned away (closing the stream), and may come back.
                        drop(state);
                        tracing::debug!(addr = %peer.addr, "incoming connection refused: every metadata slot is taken");
                    }
                }
                // The session is going away: what is under way goes on until the caller ends it.
                None => incoming = None,
            },
        }
    }
    // Every connection past its handshake sees `done` and hands itself over (one still dialling or in its
    // handshake is not waited for), and a `started` in flight is answered, or given up on.
    let deadline = tokio::time::Instant::now() + HANDOVER_WAIT;
    loop {
        let wake = shared.wake.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        {
            let state = shared.lock();
            if state.kicks.is_empty() && state.started_in_flight == 0 {
                break;
            }
        }
        tokio::select! {
            () = wake => {}
            () = tokio::time::sleep_until(deadline) => break,
        }
    }
    tasks.abort_all();
    shared.abandoned.store(true, std::sync::atomic::Ordering::Release);
    let mut state = shared.lock();
    let (info_bytes, piece_layers) = state.result.take().unwrap_or_default();
    let peers = state.known.iter().copied().filter(|&(addr, _)| !state.is_banned(addr)).collect();
    let connections = std::mem::take(&mut state.handovers);
    let announced = std::mem::take(&mut state.announced);
    // Complete: the download goes on with the trackers; none is told `stopped`.
    state.told.clear();
    Ok(Fetched { info_bytes, piece_layers, peers, connections, announced })
}

/// Returns once `done` is set. (`wait_for` in a `select!` would keep its guard in the select's output, which
/// would make the fetch a future that cannot move between threads.)
async fn until_done(done: &mut watch::Receiver<bool>) {
    let _ = done.wait_for(|done| *done).await;
}

/// An announce while the size is unknown: nothing moved yet, and some left.
fn fetch_announce(shared: &Shared, event: AnnounceEvent, key: u32) -> Announce {
    Announce {
        info_hash: shared.info_hash,
        peer_id: shared.peer_id,
        downloaded: 0,
        left: UNKNOWN_LEFT,
        uploaded: 0,
        event,
        key,
        num_want: 50,
        port: shared.port,
    }
}

async fn announce_while_fetching(shared: Arc<Shared>, url: String, timeouts: Timeouts) {
    let failed = |error: String| {
        let _ = shared.events.send(Event::AnnounceFailed { tracker: url.clone(), error });
    };
    let mut client = loop {
        match AnnounceClient::new(&url, &shared.trackers, timeouts).await {
            Ok(client) => break client,
            Err(err) => {
                failed(err.to_string());
                tokio::time::sleep(MAX_FETCH_INTERVAL).await;
            }
        }
    };
    let key = rand::random();
    let mut event = AnnounceEvent::Started;
    loop {
        let announce = fetch_announce(&shared, event, key);
        if event == AnnounceEvent::Started {
            let mut state = shared.lock();
            state.started_in_flight += 1;
            if !state.told.iter().any(|(told, _)| *told == url) {
                state.told.push((url.clone(), key));
            }
        }
        let reply = client.announce(&announce).await;
        if event == AnnounceEvent::Started {
            let mut state = shared.lock();
            state.started_in_flight -= 1;
            if reply.is_ok() {
                state.announced.push((url.clone(), key));
            }
            drop(state);
            shared.wake.notify_one();
        }
        let wait = match reply {
            Ok(reply) => {
                event = AnnounceEvent::None;
                let interval = Duration::from_secs(u64::from(reply.interval.max(5)));
                client.set_timeouts(Timeouts::bounded(timeouts.base, interval.max(timeouts.base)));
                let _ = shared.events.send(crate::announcer::announced(&url, &reply));
                for addr in reply.peers {
                    if !crate::announcer::is_own_address(addr, shared.port, shared.local_ip) {
                        shared.add_candidate(addr, Source::Tracker);
                    }
                }
                interval.min(MAX_FETCH_INTERVAL)
            }
            Err(err) => {
                failed(err.to_string());
                Duration::from_secs(10)
            }
        };
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hybrid_link_asks_to_upgrade_and_a_v2_answer_makes_the_connection_v2() {
        let (v1, v2) = ([1u8; 20], [2u8; 32]);
        let truncated = [2u8; 20];
        let other = [9u8; 20];
        let hybrid = LinkKind::of(InfoCheck { v1: Some(v1), v2: Some(v2) });
        assert_eq!(hybrid, LinkKind::Hybrid { v2: truncated });
        assert!(hybrid.asks_upgrade(&v1));
        assert_eq!(hybrid.is_v2(&v1, &v1), Ok(false), "answered with the v1 hash: a v1 connection");
        assert_eq!(hybrid.is_v2(&v1, &truncated), Ok(true), "answered with the v2 hash: upgraded");
        assert!(hybrid.is_v2(&v1, &other).is_err());
        // A v2 link: the swarm is the truncated hash, every connection is v2, nothing to upgrade.
        let v2_only = LinkKind::of(InfoCheck { v1: None, v2: Some(v2) });
        assert_eq!(v2_only, LinkKind::V2);
        assert!(!v2_only.asks_upgrade(&truncated));
        assert_eq!(v2_only.is_v2(&truncated, &truncated), Ok(true));
        assert!(v2_only.is_v2(&truncated, &v1).is_err());
        // A v1 link: nothing is v2, whatever the answer.
        let v1_only = LinkKind::of(InfoCheck { v1: Some(v1), v2: None });
        assert_eq!(v1_only, LinkKind::V1);
        assert!(!v1_only.asks_upgrade(&v1));
        assert_eq!(v1_only.is_v2(&v1, &v1), Ok(false));
        assert!(v1_only.is_v2(&v1, &truncated).is_err());
    }

    fn state_fetching_layers(hybrid: bool, since: Instant) -> State {
        let wanted = metainfo::LayersWanted { piece_length: 16_384, files: vec![([1; 32], 100_000)], hybrid };
        State {
            fetch: MetadataFetch::new([0; 20]),
            candidates: Candidates::default(),
            known: Vec::new(),
            seen: HashSet::new(),
            connections: 0,
            kicks: std::collections::HashMap::new(),
            info: Some(b"the info dictionary".to_vec()),
            layers: Some(LayerFetch::new(&wanted)),
            layers_optional: hybrid,
            layers_progress: since,
            result: None,
            handovers: Vec::new(),
            announced: Vec::new(),
            started_in_flight: 0,
            told: Vec::new(),
        }
    }

    #[test]
    fn a_hybrid_gives_up_its_layers_after_the_patience_and_a_v2_only_one_never() {
        let start = Instant::now();
        let mut hybrid = state_fetching_layers(true, start);
        assert!(!hybrid.give_up_layers(start + LAYER_PATIENCE - Duration::from_millis(1)));
        assert!(hybrid.result.is_none());
        assert!(hybrid.give_up_layers(start + LAYER_PATIENCE));
        let (info, layers) = hybrid.result.clone().expect("done");
        assert_eq!((info.as_slice(), layers.len()), (&b"the info dictionary"[..], 0));
        assert!(!hybrid.give_up_layers(start + 2 * LAYER_PATIENCE), "once");

        let mut v2_only = state_fetching_layers(false, start);
        assert!(!v2_only.give_up_layers(start + 100 * LAYER_PATIENCE));
        assert!(v2_only.result.is_none());
    }
}
