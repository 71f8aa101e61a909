//! Our side of one torrent's swarm: who is connected, what each peer has, what we asked whom for, and how we react
//! to every message. The state sits behind one lock that is held only for bookkeeping (no I/O, no await): the
//! connection tasks do the socket work, blocking tasks do hashing and disk writes. What others read or feed without
//! the swarm's messages has locks of its own, never held with the state's: the candidates to dial, the trackers'
//! answers, and the figures of a status (`snapshot`), so that a query never waits for message handling.
//!
//! This file handles messages and the tick; by idea: `peers` (who is in: candidates, admission, removal),
//! `pieces` and `disk` (between the network and the disk), `choking`, `extensions`, `pex` and `block_hashes` (the
//! messages of each extension), `snapshot` and `reports` (what the session reads), `ending` (closing, dozing).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

// The runtime's clock, not the wall's: a simulation runs this code in virtual time.
use tokio::time::Instant;

use peer_wire::{BLOCK_LEN, Bitfield, ExtendedHandshake, METADATA_PIECE_LEN, Message, MetadataMessage, UT_METADATA};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::sync::Notify;

use crate::budget::{Addresses, ConnectionBudget, NotAdded};
use crate::choker::{Choker, ChokerConfig, PeerStats};
use crate::events::{Event, EventSink, PeerSummary, Status, TrackerStatus};
use crate::offers::Offers;
use crate::outbox::Outbox;
use crate::picker::{Block, PeerKey, PickLimits, Picker, Received};
use crate::rate::{Limits, RateMeter};
use crate::reputation::{Digest, Reputation, Sender, Verdict};
use crate::sources::{Candidates, Source};
use crate::storage::{Storage, StorageError};

/// Requests kept in flight to a peer that has not shown its speed yet.
const MIN_QUEUE: usize = 32;
/// The most requests in flight to one peer (libtorrent's default cap on what it accepts from us is 500).
const MAX_QUEUE: usize = 400;
/// Requests in flight are sized to this much of the peer's measured rate.
const QUEUE_TIME: Duration = Duration::from_millis(500);
/// A peer with requests out that sends no block for this long is "snubbing" us: its requests go to others.
const SNUB_AFTER: Duration = Duration::from_secs(30);
/// Blocks we never asked a peer for that it may send before we drop it (late answers to timed-out requests
/// land here too, so one is no offence).
const MAX_UNEXPECTED_BLOCKS: u32 = 64;
/// Departed peers remembered for the final report.
const MAX_DEPARTED: usize = 1000;
/// Complete pieces that may wait for the hasher at once (at least two pieces, whatever their size).
const MAX_HASHING_BYTES: u64 = 16 << 20;
/// Bytes of pieces being downloaded (each holds a whole piece buffer until it is hashed), unless four pieces are
/// more: past it no new piece is started, and pieces nobody is sending any more are dropped to make room.
const MAX_PARTIAL_BYTES: u64 = 64 << 20;
/// A piece in progress that nobody is asked for and that got no block for this long is dropped, buffer and all:
/// blocks from a peer that left must not pin memory for ever.
const ABANDONED_AFTER: Duration = Duration::from_secs(120);
/// Bytes of piece buffers kept for reuse.
const MAX_SPARE_BYTES: u64 = 16 << 20;
/// Peers a super-seeder serves at once, each in its turn (as many as the choker's slots, optimistic included).
const SUPER_SEED_TURNS: usize = 5;
/// Pieces a super-seeder shows a peer in one turn while others wait for theirs.
const TURN_PIECES: u32 = 4;
/// An unchoked peer that neither asks for a block nor reads one for this long loses its upload slot at once.
const UNCHOKED_IDLE: Duration = Duration::from_secs(3);
/// ... and waits this long before it can have a slot again, so idle peers cannot take turns holding the slots.
const IDLE_PENALTY: Duration = Duration::from_secs(60);
/// A connection we opened that lasted this long clears its address's failures, whatever it carried.
const USEFUL_CONNECTION: Duration = Duration::from_secs(60);
/// Our extended message id for ut_metadata (BEP 9): what peers send their metadata requests under.
const UT_METADATA_ID: u8 = 1;
/// Metadata requests one connection is answered, beyond two per metadata piece: enough for any honest peer, and
/// a bound on what a peer can make us send by asking again and again.
const METADATA_REQUESTS_SPARE: u32 = 8;
/// Hash and metadata requests one connection may make that we must reject; past it the peer is dropped. An honest
/// peer asks for what it lacks and we have, and meets a reject rarely; a flood of them costs a core (libtorrent
/// disconnects such a peer too).
const MAX_REJECTED_REQUESTS: u32 = 64;
/// `--sequential`: new pieces are started among the first this many bytes (at least 4 pieces) not yet started,
/// enough to keep several peers busy while a player reads from the front.
pub const SEQUENTIAL_WINDOW_BYTES: u64 = 16 << 20;
/// Requests go out when at least this fraction of a peer's queue is free, so they leave in batches rather than
/// one small write per block received.
const REFILL_DIVISOR: usize = 4;
/// Requests in flight to one peer in endgame, where every new one duplicates a request to another peer: enough
/// to keep a fast peer busy on the last blocks, not so many that the swarm's uplinks carry the last megabytes
/// twice (at the full queue depth, the simulator's flash crowd of 40 sent 4 % of its bytes twice).
const ENDGAME_QUEUE: usize = 8;

/// How many requests `peer` is to have in flight: its queue depth, or in endgame at most [`ENDGAME_QUEUE`].
fn queue_target(peer: &Peer, picker: &Picker) -> usize {
    if picker.in_endgame() { peer.queue_depth.min(ENDGAME_QUEUE) } else { peer.queue_depth }
}

mod block_hashes;
mod choking;
mod disk;
mod ending;
mod extensions;
mod invariants;
mod peers;
mod pex;
mod pieces;
mod reports;
mod snapshot;

pub use crate::close::{CloseReason, Refusal};

/// A connection's direction, for settling duplicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Incoming,
    Outgoing,
}

/// What a connection task gets back when its peer is admitted.
pub struct Admitted {
    pub key: PeerKey,
    pub outbox: Arc<Outbox>,
}

struct Peer {
    addr: SocketAddr,
    peer_id: [u8; 20],
    direction: Direction,
    /// How its address reached us.
    source: Source,
    outbox: Arc<Outbox>,
    bitfield: Bitfield,
    /// Any message after the handshake has arrived (a bitfield is allowed only first).
    spoke: bool,
    am_choking: bool,
    am_interested: bool,
    peer_choking: bool,
    peer_interested: bool,
    downloaded: u64,
    download_rate: RateMeter,
    upload_rate: RateMeter,
    connected_at: Duration,
    /// When the peer last sent a block we wanted, or when our requests to it started waiting.
    last_block: Instant,
    snubbed: bool,
    unexpected: u32,
    /// Requests to keep in flight: grows by one per block received (doubling every round trip, like TCP's slow
    /// start), and follows the measured rate once a second.
    queue_depth: usize,
    /// It took part in a piece that failed its hash check: it downloads pieces alone until it proves itself.
    parole: bool,
    /// It set the extension protocol bit (BEP 10) in its handshake.
    extensions: bool,
    /// It speaks v2 (BEP 52): the torrent is v2-only, it knocked with a hybrid's v2 hash, or it set the v2 bit.
    v2: bool,
    /// Block-hash requests answered from disk so far.
    block_hashes_served: u32,
    /// Hash and metadata requests we had to reject so far.
    requests_rejected: u32,
    /// The id it receives ut_metadata messages under, from its extended handshake.
    ut_metadata: Option<u8>,
    /// Metadata requests answered so far.
    metadata_served: u32,
    /// It told us its DHT port (only the first PORT message of a connection is acted on).
    dht_port_seen: bool,
    /// The id it receives ut_pex messages under, and the port it listens on, from its extended handshake.
    ut_pex: Option<u8>,
    listen_port: Option<u16>,
    /// Peer exchange: when we last sent it a message and last heard one, and the addresses we told it of.
    pex_sent: Option<Instant>,
    pex_received: Option<Instant>,
    pex_told: HashSet<SocketAddr>,
    /// When we last unchoked it, it last asked us for a block, and our writes to it last made progress: an
    /// unchoked peer with none of these for [`UNCHOKED_IDLE`] is idle.
    unchoked_at: Instant,
    last_request: Instant,
    last_progress: Instant,
    /// Bytes written to its socket as of the last tick.
    written_seen: u64,
    /// Until then it is not considered for an upload slot (it held one without using it).
    idle_until: Option<Instant>,
}

impl Peer {
    /// Where it accepts connections: the address we dialled, or for one that dialled us its IP and the port it
    /// told us (extended handshake) if it did.
    fn listen_addr(&self) -> Option<SocketAddr> {
        match self.direction {
            Direction::Outgoing => Some(self.addr),
            Direction::Incoming => Some(SocketAddr::new(self.addr.ip(), self.listen_port?)),
        }
    }
}

/// Why downloading is paused.
#[derive(Debug, Clone)]
struct DiskFull {
    /// The file a write failed on.
    path: std::path::PathBuf,
}

/// The data of a piece being downloaded.
struct PieceBuffer {
    data: Vec<u8>,
    /// When a block last arrived.
    touched: Instant,
}

struct State {
    picker: Picker,
    /// Made when the first peer comes: most torrents of a big session never see one.
    choker: Option<Box<Choker>>,
    rng: SmallRng,
    peers: BTreeMap<PeerKey, Peer>,
    next_key: u64,
    /// Data of pieces being downloaded, allocated at their first block and handed to the hasher at their last.
    buffers: HashMap<u32, PieceBuffer>,
    /// Piece buffers back from the hasher, reused so a download does not fault in fresh pages for every piece.
    spare_buffers: Vec<Vec<u8>>,
    /// Bytes of complete pieces waiting for their hash check and write. Past [`MAX_HASHING_BYTES`] no new
    /// requests go out: the network must not outrun the disk and the hasher, or memory would grow.
    hashing_bytes: u64,
    /// Addresses being connected to or connected, so one announce does not open a second connection.
    addresses: Addresses,
    reputation: Reputation,
    /// Failed v2 pieces waiting for their block hashes.
    block_proofs: crate::block_proof::BlockProofs,
    download_rate: RateMeter,
    upload_rate: RateMeter,
    last_tick: Instant,
    /// Set when storage failed; the session ends with it.
    fatal: Option<String>,
    /// Set while the disk is full: no new requests go out (seeding goes on) until there is room again.
    disk_full: Option<DiskFull>,
    /// What we showed to whom, when super-seeding (an initial seeder's default).
    offers: Option<Box<Offers>>,
    /// It super-seeds (it started complete, with `super_seed`): its offers are made when the first peer comes, so
    /// that a torrent nobody asks for holds no per-piece tables.
    super_seed: bool,
    scratch: Vec<Block>,
    /// What peers that already left sent and got, for the final report.
    departed: Vec<PeerSummary>,
    /// Recently departed peers, so a peer that sent bad data and hung up before the hash check is still named.
    /// Keys only grow, so the first entry is the oldest.
    departed_senders: BTreeMap<PeerKey, Sender>,
    /// Addresses peers told us of (ut_pex), to become candidates once the lock is let go.
    /// Peers a ut_pex message named, and whether it said each is a seed.
    pex_learned: Vec<(SocketAddr, bool)>,
}

/// Settings the swarm needs from the session's configuration.
#[derive(Debug, Clone)]
pub struct SwarmConfig {
    pub max_peers: usize,
    /// Most connections with one IP address, both directions and handshakes in progress together.
    pub max_peers_per_ip: usize,
    /// Super-seed when the session starts with the whole torrent (see `offers`).
    pub super_seed: bool,
    /// What the connections send, under the session's limit and the torrent's own.
    pub upload: Limits,
    /// What the connections read, under the session's limit and the torrent's own.
    pub download: Limits,
    /// Download in order (`--sequential`), new pieces among the first [`SEQUENTIAL_WINDOW_BYTES`] not started.
    pub sequential: bool,
    /// Complete pieces wait for [`Swarm::run_deferred`] instead of going to the hasher task: for driving a swarm
    /// without a runtime (fuzzing).
    pub defer_verification: bool,
    /// A private torrent (BEP 27): peers come from its trackers only, so no peer exchange.
    pub private: bool,
    /// Where we listen, told to peers (BEP 10 `p`) so they can pass our address on.
    pub listen_port: Option<u16>,
    /// The local IP we listen and connect on, if one was chosen.
    pub local_ip: Option<IpAddr>,
    /// Where `--trace` lines go, if anywhere.
    pub trace: Option<Arc<crate::trace::Trace>>,
    /// Our DHT node, if the DHT is on for this torrent: peers that set the DHT bit are told its port (PORT, BEP 5)
    /// and the nodes they tell us of are pinged into its table.
    pub dht: Option<Arc<dht::Node>>,
    /// The files' merkle trees a v2 or hybrid torrent's peers may ask for (BEP 52 hash requests).
    pub hash_trees: Arc<crate::v2::HashTrees>,
    /// The connections the session's torrents may hold together (`--max-connections`), if limited.
    pub connection_budget: Option<Arc<ConnectionBudget>>,
    /// A hybrid torrent's v2 info-hash truncated to 20 bytes: incoming handshakes with it are accepted too (and
    /// answered with it), as libtorrent's v2 peers send them.
    pub info_hash_v2: Option<[u8; 20]>,
    /// The session's hashing pool; `None`: straight on the runtime's blocking threads.
    pub hashing: Option<Arc<crate::hashing::HashPool>>,
    /// Seeds the swarm's choices (picking, choking): the same seed, the same choices, as a simulation needs;
    /// `None`: from the system's randomness.
    pub seed: Option<u64>,
    /// How to reach peers when not over TCP (a simulated network); `None`: TCP.
    pub connector: Option<Arc<dyn crate::connection::Connector>>,
    /// New pieces in random order instead of rarest first: the simulator's deliberately worse picker.
    pub random_pieces: bool,
}

/// A complete piece waiting for its hash check.
struct VerifyJob {
    index: u32,
    data: Vec<u8>,
    senders: Vec<Sender>,
    suspect: bool,
    /// For a piece of a v2 file: how many of its bytes are the file's, so a failed copy's blocks can be judged by
    /// their block hashes.
    file_bytes: Option<u32>,
}

/// The shared core of a session; connection tasks and timers hold it in an `Arc`.
pub struct Swarm {
    pub storage: Arc<Storage>,
    pub info_hash: [u8; 20],
    pub peer_id: [u8; 20],
    pub message_limit: u32,
    /// `--trace`: every message in and out, in words.
    pub trace: Option<Arc<crate::trace::Trace>>,
    /// See [`SwarmConfig::dht`].
    pub dht: Option<Arc<dht::Node>>,
    /// See [`SwarmConfig::hash_trees`].
    hash_trees: Arc<crate::v2::HashTrees>,
    /// See [`SwarmConfig::info_hash_v2`].
    pub info_hash_v2: Option<[u8; 20]>,
    /// See [`SwarmConfig::hashing`].
    hashing: Option<Arc<crate::hashing::HashPool>>,
    /// See [`SwarmConfig::connector`].
    pub(crate) connector: Option<Arc<dyn crate::connection::Connector>>,
    /// What the connections send, under the session's limit (`--upload-limit`) and the torrent's own.
    pub upload: Limits,
    /// What the connections read, under the session's limit (`--download-limit`) and the torrent's own.
    pub download: Limits,
    pub uploaded: AtomicU64,
    /// Bytes of blocks we asked for and got; counted under the state's lock, read without it.
    downloaded: AtomicU64,
    /// Every piece is verified. Set under the state's lock, read without it.
    complete: AtomicBool,
    /// Every wanted piece is verified (all of them, unless files were left out): the download is over. Set under
    /// the state's lock, read without it.
    finished: AtomicBool,
    /// The rest of [`Status`], copied out of the state whenever it changes: see `snapshot`.
    snapshot: Mutex<snapshot::Snapshot>,
    pub events: EventSink,
    /// Notified when the last piece is verified, and when a fatal error stops the session.
    pub changed: Notify,
    /// Notified (one permit, for the torrent's loop) when a source adds candidates, so they are dialled without
    /// waiting for the next round, and when a peer is admitted, so a quiet torrent ticks again (see
    /// [`Swarm::is_quiet`]).
    pub activity: Notify,
    /// Peers to dial, from every source; a lock of its own, never held with the state's.
    candidates: Mutex<Candidates>,
    started: Instant,
    max_peers: usize,
    max_peers_per_ip: usize,
    /// The torrent's info dictionary as it stands in the .torrent file, served to peers that ask (BEP 9).
    metadata: Arc<[u8]>,
    private: bool,
    listen_port: Option<u16>,
    local_ip: Option<IpAddr>,
    deferred: Option<Mutex<Vec<VerifyJob>>>,
    /// The last answer of each tracker announced to, for the session's queries; a lock of its own.
    trackers: Mutex<Vec<TrackerStatus>>,
    /// Set (under the state's lock) by [`Swarm::close_all`]: the torrent is ending and admits nobody more.
    closed: AtomicBool,
    /// Woken by [`Swarm::close_all`], for connection tasks still dialling or handshaking.
    closing: Notify,
    /// Set by [`Swarm::doze`]: the torrent closes to doze, not to stop (its announcers keep their place).
    dozing: AtomicBool,
    state: Mutex<State>,
}

impl Swarm {
    pub fn new(
        storage: Arc<Storage>,
        metadata: Arc<[u8]>,
        info_hash: [u8; 20],
        peer_id: [u8; 20],
        have: &Bitfield,
        config: &SwarmConfig,
        events: EventSink,
    ) -> Result<Self, crate::picker::PickerError> {
        let mut picker = Picker::new(storage.piece_length(), storage.total_length())?;
        if config.sequential {
            let window = (SEQUENTIAL_WINDOW_BYTES / u64::from(storage.piece_length().max(1))).max(4);
            picker.set_sequential(Some(u32::try_from(window).unwrap_or(u32::MAX)));
        }
        picker.set_random_order(config.random_pieces);
        for index in have.ones() {
            picker.mark_have(index);
        }
        let complete = picker.is_complete();
        let now = Instant::now();
        let rng = config.seed.map_or_else(SmallRng::from_os_rng, SmallRng::seed_from_u64);
        let super_seed = complete && config.super_seed;
        Ok(Self {
            message_limit: peer_wire::message_limit(storage.num_pieces()),
            trace: config.trace.clone(),
            dht: config.dht.clone(),
            hash_trees: config.hash_trees.clone(),
            info_hash_v2: config.info_hash_v2,
            hashing: config.hashing.clone(),
            connector: config.connector.clone(),
            storage,
            info_hash,
            peer_id,
            upload: config.upload.clone(),
            download: config.download.clone(),
            uploaded: AtomicU64::new(0),
            downloaded: AtomicU64::new(0),
            complete: AtomicBool::new(complete),
            finished: AtomicBool::new(complete),
            snapshot: Mutex::new(snapshot::Snapshot::of_new(&picker)),
            events,
            changed: Notify::new(),
            activity: Notify::new(),
            candidates: Mutex::new(Candidates::default()),
            started: now,
            max_peers: config.max_peers,
            max_peers_per_ip: config.max_peers_per_ip,
            metadata,
            private: config.private,
            listen_port: config.listen_port,
            local_ip: config.local_ip,
            deferred: config.defer_verification.then(|| Mutex::new(Vec::new())),
            trackers: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            closing: Notify::new(),
            dozing: AtomicBool::new(false),
            state: Mutex::new(State {
                picker,
                choker: None,
                rng,
                peers: BTreeMap::new(),
                next_key: 0,
                buffers: HashMap::new(),
                spare_buffers: Vec::new(),
                hashing_bytes: 0,
                addresses: Addresses::new(config.connection_budget.clone()),
                reputation: Reputation::new(),
                block_proofs: crate::block_proof::BlockProofs::default(),
                download_rate: RateMeter::default(),
                upload_rate: RateMeter::default(),
                last_tick: now,
                fatal: None,
                disk_full: None,
                offers: None,
                super_seed,
                scratch: Vec::new(),
                departed: Vec::new(),
                departed_senders: BTreeMap::new(),
                pex_learned: Vec::new(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn emit(&self, event: Event) {
        // The receiver is gone only while the program shuts down; nothing is left to tell.
        let _ = self.events.send(event);
    }

    /// Whether every piece is verified. Never waits for the state's lock.
    pub fn is_complete(&self) -> bool {
        self.complete.load(Ordering::Acquire)
    }

    /// Whether every wanted piece is verified: the download is over (every piece, unless files were left out).
    /// Never waits for the state's lock.
    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    /// Sets each piece's priority (see [`Picker::set_priorities`]; 0 leaves it out): interest in each peer
    /// follows, and the download is over once every wanted piece is verified ([`Event::Complete`] is said then,
    /// or again after more pieces were wanted).
    pub fn set_priorities(&self, priorities: &[u8]) {
        let mut state = self.lock();
        state.picker.set_priorities(priorities);
        let was = self.is_finished();
        self.finished.store(state.picker.is_finished(), Ordering::Release);
        let keys: Vec<PeerKey> = state.peers.keys().copied().collect();
        for &key in &keys {
            self.update_interest(&mut state, key);
        }
        for &key in &keys {
            self.refill(&mut state, key);
        }
        let now = self.is_finished();
        self.publish(&state);
        drop(state);
        if now && !was {
            self.emit(Event::Complete);
        }
        self.changed.notify_waiters();
    }

    pub fn fatal(&self) -> Option<String> {
        self.lock().fatal.clone()
    }

    /// Handles every message of one read from `key`'s socket, under one lock.
    pub fn handle_messages<'a>(
        self: &Arc<Self>,
        key: PeerKey,
        messages: impl Iterator<Item = Message<'a>>,
    ) -> Result<(), CloseReason> {
        let mut state = self.lock();
        let mut result = Ok(());
        for message in messages {
            result = self.handle(&mut state, key, message);
            if result.is_err() {
                break;
            }
        }
        let learned = std::mem::take(&mut state.pex_learned);
        drop(state);
        for (addr, seed) in learned {
            self.add_candidate(addr, Source::Pex);
            if seed {
                self.candidates().mark_seed(addr);
            }
        }
        result
    }

    fn handle(self: &Arc<Self>, state: &mut State, key: PeerKey, message: Message<'_>) -> Result<(), CloseReason> {
        let Some(peer) = state.peers.get_mut(&key) else { return Err(CloseReason::Removed) };
        let first = !peer.spoke;
        peer.spoke = true;
        match message {
            Message::KeepAlive | Message::Unknown { .. } => {}
            Message::HashRequest { pieces_root, base_layer, index, length, proof_layers } => {
                let range = metainfo::merkle_proof::HashRange { base_layer, index, length, proof_layers };
                self.on_hash_request(state, key, pieces_root, range)?;
            }
            Message::Hashes { pieces_root, base_layer, index, length, proof_layers, hashes } => {
                let range = metainfo::merkle_proof::HashRange { base_layer, index, length, proof_layers };
                self.on_hashes(state, key, pieces_root, range, hashes);
            }
            Message::HashReject { pieces_root, base_layer, index, length, proof_layers } => {
                let range = metainfo::merkle_proof::HashRange { base_layer, index, length, proof_layers };
                self.on_hash_reject(state, key, pieces_root, range);
            }
            Message::Port { port } => {
                if let (Some(node), false, IpAddr::V4(ip)) = (&self.dht, peer.dht_port_seen, peer.addr.ip()) {
                    peer.dht_port_seen = true;
                    // A ping is how a node enters the table: only nodes that answer do.
                    let node = node.clone();
                    tokio::spawn(async move {
                        let _ = node.ping(std::net::SocketAddrV4::new(ip, port)).await;
                    });
                }
            }
            Message::Extended { id, payload } => self.on_extended(state, key, id, payload)?,
            Message::Choke => {
                peer.peer_choking = true;
                state.picker.peer_choked_us(key);
                self.refill_all(state);
            }
            Message::Unchoke => {
                // Only a real change starts the snub clock afresh: an unchoke repeated while unchoked would let a
                // peer that sends no block keep its requests (and their pieces) for ever.
                if peer.peer_choking {
                    peer.peer_choking = false;
                    peer.last_block = Instant::now();
                }
                self.refill(state, key);
            }
            Message::Interested => {
                peer.peer_interested = true;
                // A free upload slot should not wait for the next 10 s rechoke.
                let (unchoked, slots) = state.choker.as_ref().map_or((0, ChokerConfig::default().slots), |choker| {
                    (choker.unchoked().len(), choker.config().slots)
                });
                if peer.am_choking && unchoked <= slots {
                    self.rechoke(state, true);
                }
            }
            Message::NotInterested => {
                peer.peer_interested = false;
                // A super-seeder's window for it is stale: what was shown is held; show it more.
                if let Some(offers) = &mut state.offers {
                    offers.not_interested(key);
                    self.offer(state, key);
                } else if !peer.am_choking {
                    self.free_slot(state, key);
                }
            }
            Message::Have { index } => {
                let newly =
                    peer.bitfield.set(index).map_err(|err| CloseReason::protocol(format_args!("have: {err}")))?;
                if newly {
                    state.picker.peer_has(index);
                    if let Some(offers) = &mut state.offers {
                        offers.peer_has(key, index);
                        self.offer(state, key);
                    }
                    let Some(peer) = state.peers.get_mut(&key) else { return Ok(()) };
                    // A piece we lack makes us interested: O(1), where a full update walks the whole bitfield.
                    if state.picker.is_wanted(index) && !state.picker.have(index) {
                        if !peer.am_interested {
                            peer.am_interested = true;
                            peer.last_block = Instant::now();
                            peer.outbox.push(&Message::Interested);
                        }
                    } else if peer.bitfield.is_complete() {
                        self.update_interest(state, key);
                    }
                    self.refill(state, key);
                }
            }
            Message::Bitfield { bits } => {
                let bitfield = Bitfield::from_bytes(bits, state.picker.num_pieces())
                    .map_err(|err| CloseReason::protocol(format_args!("bitfield: {err}")))?;
                if first {
                    state.picker.peer_joined(&bitfield);
                    peer.bitfield = bitfield;
                } else {
                    // aria2 sends a whole bitfield instead of HAVEs whenever that is shorter, and sends its first
                    // one twice: a later bitfield only adds pieces.
                    for index in bitfield.ones() {
                        if peer
                            .bitfield
                            .set(index)
                            .map_err(|err| CloseReason::protocol(format_args!("bitfield: {err}")))?
                        {
                            state.picker.peer_has(index);
                        }
                    }
                }
                if let Some(offers) = &mut state.offers {
                    for index in peer.bitfield.ones() {
                        offers.peer_has(key, index);
                    }
                    self.offer(state, key);
                }
                self.update_interest(state, key);
                self.refill(state, key);
            }
            Message::Request { index, begin, length } => {
                let block = Block { piece: index, offset: begin, length };
                check_request(&state.picker, block)?;
                peer.last_request = Instant::now();
                // A request that crossed our choke is not served, so it shows nothing about what is on its way.
                if !peer.am_choking
                    && let Some(offers) = &mut state.offers
                {
                    if !offers.shown(key, index) {
                        // A super-seeder serves only what it showed: a peer that asks for the rest (it cannot
                        // know we have it) would take the upload meant for spreading pieces once each.
                        return Ok(());
                    }
                    offers.asked(key, index, length, Instant::now());
                    self.offer(state, key);
                }
                let Some(peer) = state.peers.get_mut(&key) else { return Ok(()) };
                // Requests that crossed our choke on the wire are dropped, as BEP 3 has it.
                if !peer.am_choking && !peer.outbox.push_upload(block) {
                    return Err(CloseReason::protocol(format_args!(
                        "more than {} requests queued",
                        crate::outbox::MAX_QUEUED_UPLOADS
                    )));
                }
            }
            Message::Cancel { index, begin, length } => {
                if peer.outbox.cancel_upload(Block { piece: index, offset: begin, length })
                    && let Some(offers) = &mut state.offers
                {
                    offers.cancelled(key, length);
                }
            }
            Message::Piece { index, begin, block } => self.on_block(state, key, index, begin, block)?,
        }
        Ok(())
    }

    fn on_block(
        self: &Arc<Self>,
        state: &mut State,
        key: PeerKey,
        index: u32,
        begin: u32,
        data: &[u8],
    ) -> Result<(), CloseReason> {
        let length = u32::try_from(data.len()).map_err(|_| CloseReason::protocol("block too long"))?;
        let block = Block { piece: index, offset: begin, length };
        match state.picker.block_received(key, block) {
            Received::New { cancel, piece_complete } => {
                let piece_size = state.picker.piece_len(index) as usize;
                let now = Instant::now();
                let State { buffers, spare_buffers, .. } = &mut *state;
                let buffer = buffers.entry(index).or_insert_with(|| {
                    let data = match spare_buffers.pop() {
                        Some(mut spare) => {
                            spare.resize(piece_size, 0);
                            spare
                        }
                        None => vec![0; piece_size],
                    };
                    PieceBuffer { data, touched: now }
                });
                buffer.touched = now;
                // The picker accepted the block, so it lies inside the piece.
                if let Some(slot) = buffer.data.get_mut(begin as usize..begin as usize + data.len()) {
                    slot.copy_from_slice(data);
                }
                self.downloaded.fetch_add(u64::from(length), Ordering::Relaxed);
                if let Some(peer) = state.peers.get_mut(&key) {
                    peer.downloaded += u64::from(length);
                    peer.last_block = Instant::now();
                    peer.snubbed = false;
                    peer.queue_depth = (peer.queue_depth + 1).min(MAX_QUEUE);
                }
                for other in cancel {
                    if let Some(peer) = state.peers.get(&other) {
                        peer.outbox.push(&Message::Cancel { index, begin, length });
                    }
                }
                if piece_complete && let Some(buffer) = state.buffers.remove(&index) {
                    state.hashing_bytes += buffer.data.len() as u64;
                    let senders = state.picker.block_senders(index).unwrap_or_default();
                    let senders: Vec<Sender> = senders.iter().filter_map(|key| sender_of(state, *key)).collect();
                    let suspect = state.reputation.has_suspects(index);
                    self.verify_and_write(index, buffer.data, senders, suspect);
                }
            }
            Received::Duplicate => {}
            Received::Unexpected => {
                if let Some(peer) = state.peers.get_mut(&key) {
                    peer.unexpected += 1;
                    if peer.unexpected > MAX_UNEXPECTED_BLOCKS {
                        return Err(CloseReason::protocol(format_args!(
                            "sent more than {MAX_UNEXPECTED_BLOCKS} blocks we did not ask for"
                        )));
                    }
                }
            }
        }
        self.refill(state, key);
        Ok(())
    }

    /// Sends `interested` / `not interested` when our interest in `key`'s pieces changed.
    fn update_interest(&self, state: &mut State, key: PeerKey) {
        let we_have = state.picker.we_have();
        let Some(peer) = state.peers.get_mut(&key) else { return };
        if we_have.is_complete() && peer.bitfield.is_complete() {
            // Two seeders have nothing to say to each other; the connection task ends and removes it, and the
            // dialer leaves this address alone from now on.
            peer.outbox.close();
            if let Some(addr) = peer.listen_addr() {
                self.candidates().mark_seed(addr);
            }
            return;
        }
        let wanted = state.picker.is_interesting(&peer.bitfield);
        if wanted != peer.am_interested {
            peer.am_interested = wanted;
            peer.outbox.push(if wanted { &Message::Interested } else { &Message::NotInterested });
            if wanted {
                peer.last_block = Instant::now();
            }
        }
    }

    /// Tops up `key`'s requests in flight to what its rate calls for.
    fn refill(&self, state: &mut State, key: PeerKey) {
        if state.hashing_bytes >= self.max_hashing_bytes() || state.disk_full.is_some() {
            return;
        }
        {
            let Some(peer) = state.peers.get(&key) else { return };
            if peer.peer_choking || !peer.am_interested || peer.snubbed || state.picker.is_finished() {
                return;
            }
            let target = queue_target(peer, &state.picker);
            if state.picker.outstanding(key) + (target / REFILL_DIVISOR).max(1) > target {
                return;
            }
        }
        let new_pieces = self.new_piece_allowance(state);
        let wanted = self.pick_for(state, key, new_pieces);
        if wanted > 0 && new_pieces == 0 && self.make_room(state) {
            self.pick_for(state, key, 1);
        }
    }

    /// Asks `key` for blocks up to its queue depth, starting at most `new_pieces` pieces; returns how many more
    /// it could have taken.
    fn pick_for(&self, state: &mut State, key: PeerKey, new_pieces: u32) -> usize {
        let State { picker, peers, rng, scratch, .. } = state;
        let Some(peer) = peers.get_mut(&key) else { return 0 };
        let target = queue_target(peer, picker);
        let outstanding = picker.outstanding(key);
        if outstanding == 0 {
            peer.last_block = Instant::now();
        }
        scratch.clear();
        let limits = PickLimits { new_pieces, exclusive: peer.parole };
        let room = target.saturating_sub(outstanding);
        let picked = picker.pick_limited(key, &peer.bitfield, room, limits, rng, scratch);
        for block in scratch.iter() {
            peer.outbox.push(&Message::Request { index: block.piece, begin: block.offset, length: block.length });
        }
        room - picked
    }

    fn refill_all(&self, state: &mut State) {
        let keys: Vec<PeerKey> = state.peers.keys().copied().collect();
        for key in keys {
            self.refill(state, key);
        }
        // Pieces whose requests all came back with nothing received hold no data worth keeping.
        let State { buffers, picker, .. } = state;
        buffers.retain(|&index, _| picker.in_progress(index));
    }

    /// The once-a-second housekeeping: rates, the choker, snubbed peers, and a status event.
    pub fn tick(&self) {
        let mut state = self.lock();
        let now = Instant::now();
        let elapsed = now.duration_since(state.last_tick);
        state.last_tick = now;
        let mut refill = false;
        let mut idle_found = false;
        // A super-seeder's peers stay unchoked between their turns, and ask for nothing then.
        let super_seeding = state.offers.is_some();
        let State { peers, picker, .. } = &mut *state;
        for (&key, peer) in peers.iter_mut() {
            let written = peer.outbox.written.load(Ordering::Relaxed);
            if written != peer.written_seen {
                peer.written_seen = written;
                peer.last_progress = now;
            }
            let busy_at = peer.unchoked_at.max(peer.last_request).max(peer.last_progress);
            if !peer.am_choking && !super_seeding && now.duration_since(busy_at) > UNCHOKED_IDLE {
                // It holds a slot it does not use (it never asks, or it stopped reading what it asked for).
                peer.idle_until = Some(now + IDLE_PENALTY);
                idle_found = true;
            }
            peer.download_rate.tick(peer.downloaded, elapsed);
            let rate = peer.download_rate.bytes_per_second();
            let by_rate = (rate as f64 * QUEUE_TIME.as_secs_f64() / f64::from(BLOCK_LEN)) as usize;
            peer.queue_depth = by_rate.max(peer.queue_depth / 2).clamp(MIN_QUEUE, MAX_QUEUE);
            peer.upload_rate.tick(peer.outbox.uploaded.load(Ordering::Relaxed), elapsed);
            if !peer.snubbed && picker.outstanding(key) > 0 && now.duration_since(peer.last_block) > SNUB_AFTER {
                peer.snubbed = true;
                // Its requests go to other peers; cancel them here so a late answer is not wasted bandwidth.
                for block in picker.peer_choked_us(key) {
                    peer.outbox.push(&Message::Cancel {
                        index: block.piece,
                        begin: block.offset,
                        length: block.length,
                    });
                }
                refill = true;
            } else if peer.snubbed && now.duration_since(peer.last_block) > 2 * SNUB_AFTER {
                // A second chance: it may have been busy rather than broken.
                peer.snubbed = false;
                peer.last_block = now;
                refill = true;
            }
        }
        state.download_rate.tick(self.downloaded.load(Ordering::Relaxed), elapsed);
        state.upload_rate.tick(self.uploaded.load(Ordering::Relaxed), elapsed);
        self.drop_abandoned_pieces(&mut state, now);
        self.send_pex(&mut state, now);
        state.block_proofs.expire(now);
        self.ask_block_hashes(&mut state);
        if refill {
            self.refill_all(&mut state);
        }
        self.rechoke(&mut state, idle_found);
        self.take_turns(&mut state);
        self.publish(&state);
        drop(state);
        self.emit(Event::Status(self.status()));
    }
}

/// Who `key` is (or was, if it left recently).
fn sender_of(state: &State, key: PeerKey) -> Option<Sender> {
    match state.peers.get(&key) {
        Some(peer) => Some(Sender { addr: peer.addr, peer_id: peer.peer_id }),
        None => state.departed_senders.get(&key).copied(),
    }
}

/// A request must name a piece we have, lie inside it, and ask for at most one block.
fn check_request(picker: &Picker, block: Block) -> Result<(), CloseReason> {
    if block.length == 0 || block.length > BLOCK_LEN {
        return Err(CloseReason::protocol(format_args!(
            "request of {} bytes (the limit is {BLOCK_LEN})",
            block.length
        )));
    }
    if block.piece >= picker.num_pieces() {
        return Err(CloseReason::protocol(format_args!(
            "request for piece {} of {}",
            block.piece,
            picker.num_pieces()
        )));
    }
    if u64::from(block.offset) + u64::from(block.length) > u64::from(picker.piece_len(block.piece)) {
        return Err(CloseReason::protocol(format_args!("request past the end of piece {}", block.piece)));
    }
    if !picker.have(block.piece) {
        return Err(CloseReason::protocol(format_args!("request for piece {} which we do not have", block.piece)));
    }
    Ok(())
}
