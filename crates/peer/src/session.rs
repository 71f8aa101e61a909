//! A session: one listening port, one peer id and any number of torrents, each a task with a state of its own.
//!
//! The session owns what its torrents share: the listener (an incoming handshake goes to the torrent it names, an
//! unknown info-hash is refused), the peer id, the DHT node, the upload and download rate limits, the trackers'
//! sockets and HTTP client ([`crate::trackers::TrackerEndpoints`]). A torrent's events go, tagged with its
//! info-hash ([`crate::events::EventSink`]), to the channel it was added with, which its torrents may share. Each
//! torrent is driven through its states by its own task:
//!
//! ```text
//!   fetching metadata (a magnet link) ──┐
//!                                       ▼
//!   checking ──> downloading ──> seeding
//!      │  ▲           │             │
//!      ▼  │ resume    ▼ pause       ▼
//!      paused <───────┴─────────────┘        stopped (shutdown, or done with exit_on_complete)
//!                                             errored (with the reason; resume checks again)
//!                                             removed (connections, announces, timers: all gone)
//! ```
//!
//! A magnet link's torrent starts by fetching its metadata ([`crate::fetching`]) under the session's peer id; the
//! connections that fetched it go on into the download, and its trackers hear one `started`.
//!
//! Pausing hangs up, tells the trackers `stopped` and keeps the verified pieces in memory, so resuming neither
//! reads the data nor checks it. Queries ([`Session::torrents`], [`Session::torrent`]) read a snapshot of each
//! torrent: what the control API (Transmission's RPC) answers from.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use peer_wire::Bitfield;
use rand::Rng;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::admission::Handshakes;
use crate::budget::ConnectionBudget;
use crate::connection;
use crate::events::{Event, EventSink, PeerSummary, Status, TrackerStatus};
use crate::lsd::service::LsdService;
use crate::rate::TransferLimiter;
use crate::selection::Priority;
use crate::session_state::{StateFolder, StateWriter, TorrentState};
use crate::storage::{FileProgress, SessionFiles, Storage};
use crate::swarm::Swarm;
use crate::torrent::{self, Outcome, OwnLimits, TorrentConfig, TorrentError, TorrentSlot};
use crate::torrents::Torrents;
use crate::tracker_client::Timeouts;

mod drive;
mod status;

use drive::driven;

/// What the torrents of a session share.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The address the listener is bound to, as asked: outgoing connections and tracker packets leave from its IP
    /// too, unless it is unspecified.
    pub listen: SocketAddr,
    /// Most connections with one IP address (handshakes in progress included), per torrent and at the listener.
    pub max_peers_per_ip: usize,
    /// Connections of every torrent together (dials included; handshakes in progress have their own budget).
    pub max_connections: usize,
    /// Bytes per second for all uploads of every torrent together.
    pub upload_limit: Option<u64>,
    /// Bytes per second for all downloads together (what the connections read, protocol bytes included).
    pub download_limit: Option<u64>,
    /// Threads for a start-up check.
    pub check_threads: usize,
    /// How trackers are retried (BEP 15: 15 s doubling); tests shorten it.
    pub tracker_timeouts: Timeouts,
    /// `--trace`: every wire message in and out, in words.
    pub trace: Option<Arc<crate::trace::Trace>>,
    /// A DHT node to find peers through and announce to (never used for a private torrent).
    pub dht: Option<Arc<dht::Node>>,
    /// Local service discovery (BEP 14) on the listening interface, for public torrents (never fatal).
    pub lsd: bool,
    /// Where the session keeps which torrents it holds and how they stand ([`crate::session_state`]), for
    /// [`Session::restore`] after a restart; nothing is kept when `None`.
    pub state_dir: Option<std::path::PathBuf>,
    /// Data files open at once over every torrent ([`crate::open_files`]).
    pub max_open_files: usize,
    /// Hash jobs (piece checks) of every torrent at once ([`crate::hashing`]).
    pub hashing_threads: usize,
    /// How long a seeding torrent stays idle (no peer, no candidate, no announce under way) before it dozes off:
    /// its swarm and announcers are let go until a peer comes or is named (see [`crate::torrents`]'s `Door`),
    /// and it announces by itself meanwhile. When set, a torrent complete at its start (and given no peer to
    /// dial) starts dozing. `None`: never; every torrent keeps its swarm from start to end.
    pub doze_after: Option<Duration>,
}

impl SessionConfig {
    /// A session on `listen` with the defaults of the `peer` command, and no DHT.
    #[must_use]
    pub fn new(listen: SocketAddr) -> SessionConfig {
        SessionConfig {
            listen,
            max_peers_per_ip: 8,
            max_connections: 200,
            upload_limit: None,
            download_limit: None,
            check_threads: std::thread::available_parallelism().map_or(1, usize::from),
            tracker_timeouts: Timeouts::default(),
            trace: None,
            dht: None,
            lsd: false,
            state_dir: None,
            max_open_files: crate::open_files::DEFAULT_MAX_OPEN_FILES,
            hashing_threads: std::thread::available_parallelism().map_or(1, usize::from),
            doze_after: Some(DOZE_AFTER),
        }
    }
}

/// Torrents starting at once (reading their fast-resume state, making their swarm; a check's wait aside), for
/// the same reason as [`DOZING_ANNOUNCES_AT_ONCE`].
pub(crate) const STARTING_AT_ONCE: usize = 16;

/// Announces of dozing torrents in flight at once: ten thousand torrents started together announce in turns, so
/// that their requests' room is not all taken at once (the allocator keeps what it was once given).
const DOZING_ANNOUNCES_AT_ONCE: usize = 16;

/// How long a seeding torrent is idle before it dozes off (see [`SessionConfig::doze_after`]).
pub const DOZE_AFTER: Duration = Duration::from_secs(30);

/// What every torrent of a session reads: the session's half of [`torrent::run`]'s arguments.
pub(crate) struct Shared {
    pub(crate) config: SessionConfig,
    pub(crate) listen_addr: SocketAddr,
    pub(crate) peer_id: [u8; 20],
    pub(crate) served: Arc<Torrents>,
    pub(crate) upload_limiter: Option<Arc<TransferLimiter>>,
    pub(crate) download_limiter: Option<Arc<TransferLimiter>>,
    /// The connections every torrent may hold together.
    pub(crate) connections: Arc<ConnectionBudget>,
    /// One UDP socket per family and one HTTP client for every tracker of every torrent.
    pub(crate) trackers: Arc<crate::trackers::TrackerEndpoints>,
    /// Keeps the torrents' state files, when the session has a state folder.
    pub(crate) state: Option<StateWriter>,
    /// Local service discovery for every public torrent, on one socket per family.
    pub(crate) lsd: Option<Arc<LsdService>>,
    /// Turns to check a torrent's data: one at a time.
    pub(crate) checks: tokio::sync::Semaphore,
    /// Turns of the dozing torrents' announces: see [`DOZING_ANNOUNCES_AT_ONCE`].
    pub(crate) dozing_announces: tokio::sync::Semaphore,
    /// Knocks on each dozing torrent's door when its next announce or lookup is due.
    pub(crate) doze_clock: Arc<crate::dozing::DozeClock>,
    /// Turns to start: see [`STARTING_AT_ONCE`].
    pub(crate) starts: Arc<tokio::sync::Semaphore>,
    /// The data files open over every torrent.
    pub(crate) open_files: Arc<SessionFiles>,
    /// Where every torrent's hashing runs.
    pub(crate) hashing: Arc<crate::hashing::HashPool>,
}

impl Shared {
    /// `torrent`'s files laid out in `dir`, counted in the session's budget of open files.
    fn layout(&self, torrent: &metainfo::Torrent, dir: &std::path::Path) -> Result<Arc<Storage>, TorrentError> {
        Ok(Arc::new(Storage::new(torrent, dir)?.with_open_files(self.open_files.clone())))
    }
}

/// Where a torrent stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// A magnet link's torrent, asking its swarm for the metadata.
    FetchingMetadata,
    /// Reading its data to see which pieces are there (or its fast-resume state).
    Checking,
    Downloading,
    Seeding,
    /// Paused by the user: no connections, no announces; its verified pieces are kept.
    Paused,
    /// Its run is over (the session shut down, or the download finished with `exit_on_complete`).
    Stopped,
    /// It stopped on an error, alone; the reason. Resuming it checks its data again.
    Errored(String),
    /// Taken out of the session: nothing of it runs.
    Removed,
}

/// One torrent of the session as a query sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorrentStatus {
    pub info_hash: [u8; 20],
    pub name: String,
    pub state: State,
    /// Total size in bytes.
    pub size: u64,
    /// Pieces, bytes and rates. Bytes moved add up over the torrent's runs in this session; rates and the peer
    /// count are those of the run going on (0 when paused).
    pub status: Status,
    /// The peers connected now.
    pub peers: Vec<PeerSummary>,
    pub files: Vec<FileProgress>,
    /// Every tracker of the torrent with its last answer in the run going on.
    pub trackers: Vec<TrackerStatus>,
    /// Its own limits in bytes per second (the session's apply too); `None`: none of its own.
    pub upload_limit: Option<u64>,
    pub download_limit: Option<u64>,
    /// Its download folder (a multi-file torrent's folder is inside).
    pub dir: std::path::PathBuf,
    /// Bytes a piece; 0 while a magnet link's metadata is not in.
    pub piece_length: u32,
    /// A private torrent (BEP 27).
    pub private: bool,
}

/// What the user asked of a torrent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    Run,
    Pause,
    Stop,
    Remove,
}

/// Where a torrent's task is; `Starting` reads as checking until the swarm is up, then downloading or seeding.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Starting,
    /// Seeding, idle: its swarm is let go until a peer or an announce wakes it (see `torrents::Door`).
    Dozing,
    Paused,
    Stopped,
    Errored(String),
    Removed,
}

impl Phase {
    /// The task is over.
    fn is_over(&self) -> bool {
        matches!(self, Phase::Stopped | Phase::Errored(_) | Phase::Removed)
    }
}

/// What the user asks of a torrent and where its task is, under one small lock with one wake-up for both (two
/// `watch` channels cost 700 bytes a torrent).
struct Control {
    now: Mutex<(Wanted, Phase)>,
    changed: tokio::sync::Notify,
}

impl Default for Control {
    fn default() -> Control {
        Control { now: Mutex::new((Wanted::Run, Phase::Starting)), changed: tokio::sync::Notify::new() }
    }
}

impl Control {
    fn wanted(&self) -> Wanted {
        lock(&self.now).0
    }

    fn phase(&self) -> Phase {
        lock(&self.now).1.clone()
    }

    fn set_wanted(&self, wanted: Wanted) {
        lock(&self.now).0 = wanted;
        self.changed.notify_waiters();
    }

    /// Asks for `to` if `from` is asked now; whether it did.
    fn change_wanted(&self, from: Wanted, to: Wanted) -> bool {
        let mut now = lock(&self.now);
        let changed = now.0 == from;
        if changed {
            now.0 = to;
            drop(now);
            self.changed.notify_waiters();
        }
        changed
    }

    fn set_phase(&self, phase: Phase) {
        lock(&self.now).1 = phase;
        self.changed.notify_waiters();
    }

    /// Returns once `done` holds of what is asked and where the task is.
    async fn until(&self, done: impl Fn(Wanted, &Phase) -> bool) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before the look: a change in between is not missed.
            changed.as_mut().enable();
            {
                let now = lock(&self.now);
                if done(now.0, &now.1) {
                    return;
                }
            }
            changed.await;
        }
    }
}

/// A torrent of the session and the handles its task and the queries share.
struct Entry {
    /// The torrent, its files (for the queries about them too), its events and its swarm while it runs; set once
    /// a magnet link's metadata is in.
    slot: std::sync::OnceLock<TorrentSlot>,
    /// The link a torrent was added by, while its metadata is not in (boxed: most torrents have none).
    magnet: Option<Box<metainfo::Magnet>>,
    /// Shared, when the torrents of a session are added alike (the `peer` command's are).
    config: Arc<TorrentConfig>,
    events: EventSink,
    /// Its own rate limits, across its runs.
    limits: OwnLimits,
    /// What the user asks of it and where its task is.
    control: Control,
    /// What the runs before the current one came to.
    past: Mutex<Past>,
}

#[derive(Default)]
struct Past {
    pieces: Option<Bitfield>,
    downloaded: u64,
    uploaded: u64,
    /// The last run's outcome (kept here, not in the torrent's task, which would keep room for it all along).
    last: Option<Box<Outcome>>,
    /// The last run ended in a doze: the next one's outcome adds to it.
    last_dozed: bool,
    /// While it dozes: its door (a change of its files knocks).
    dozing: Option<Arc<crate::torrents::Door>>,
    /// While it dozes: its trackers' last answers, for the queries.
    trackers: Vec<TrackerStatus>,
}

impl Entry {
    fn new(
        slot: Option<TorrentSlot>,
        magnet: Option<metainfo::Magnet>,
        config: Arc<TorrentConfig>,
        events: EventSink,
    ) -> Entry {
        Entry {
            slot: slot.map(std::sync::OnceLock::from).unwrap_or_default(),
            magnet: magnet.map(Box::new),
            limits: OwnLimits::of(&config),
            config,
            events,
            control: Control::default(),
            past: Mutex::new(Past::default()),
        }
    }

    /// A torrent whose metainfo is known, laid out in `layout`.
    fn of_torrent(
        torrent: metainfo::Torrent,
        layout: Arc<Storage>,
        config: Arc<TorrentConfig>,
        events: EventSink,
    ) -> Entry {
        let slot = TorrentSlot { torrent: Arc::new(torrent), layout, running: Mutex::new(None) };
        Entry::new(Some(slot), None, config, events)
    }

    /// The info-hashes it goes by: v1, and a hybrid's truncated v2 (a magnet link's, until its metadata is in).
    fn hashes(&self) -> Vec<[u8; 20]> {
        match (self.slot.get(), &self.magnet) {
            (Some(slot), _) => {
                let torrent = &slot.torrent;
                let v2 = torrent.info_hash_v2().map(|hash| hash.truncated().0);
                std::iter::once(torrent.info_hash.0).chain(v2.filter(|hash| *hash != torrent.info_hash.0)).collect()
            }
            (None, Some(magnet)) => crate::fetching::hashes_of(magnet).collect(),
            (None, None) => Vec::new(),
        }
    }

    /// How it stands, as the session's state folder keeps it.
    fn saved_state(&self) -> TorrentState {
        TorrentState {
            dir: self.config.dir.clone(),
            paused: self.control.wanted() == Wanted::Pause,
            sequential: self.config.sequential,
            priorities: self.slot.get().map(|slot| slot.layout.file_priorities()).unwrap_or_default(),
            upload_limit: self.limits.upload.rate(),
            download_limit: self.limits.download.rate(),
            magnet: self.slot.get().is_none().then(|| self.magnet.as_ref().map(|magnet| magnet.to_link())).flatten(),
        }
    }

    /// Keeps how it stands in the session's state folder, if there is one; with its metainfo when `with_file`.
    fn persist(&self, shared: &Shared, with_file: bool) {
        let (Some(state), Some(&hash)) = (&shared.state, self.hashes().first()) else { return };
        if let (true, Some(slot)) = (with_file, self.slot.get()) {
            state.save_torrent(hash, slot.torrent.to_file());
        }
        state.save(hash, self.saved_state());
    }

    /// What the torrent is called: its name, or a magnet link's `dn` (else its info-hash) until the metadata is in.
    fn name(&self) -> String {
        match (self.slot.get(), &self.magnet) {
            (Some(slot), _) => slot.torrent.info.name.clone(),
            (None, Some(magnet)) => magnet.name.clone().unwrap_or_else(|| magnet.info_hash.to_string()),
            (None, None) => String::new(),
        }
    }

    /// Returns once the torrent's task is over (stopped, errored or removed).
    async fn until_over(&self) {
        self.control.until(|_, phase| phase.is_over()).await;
    }

    /// A dozing torrent looks at what the user asks: its door is knocked.
    fn nudge(&self) {
        if let Some(door) = &lock(&self.past).dozing {
            door.knocked.notify_one();
        }
    }

    fn swarm(&self) -> Option<Arc<Swarm>> {
        self.slot.get().and_then(|slot| lock(&slot.running).clone())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The session's torrents in the order they were added, and by info-hash (so that adding the ten-thousandth
/// looks up one hash, not ten thousand entries).
#[derive(Default)]
struct Entries {
    list: Vec<Arc<Entry>>,
    by_hash: std::collections::HashMap<[u8; 20], Arc<Entry>>,
}

impl Entries {
    /// The entry going by `info_hash`: from the index, else (a hash a magnet link's metadata brought) by looking.
    fn find(&self, info_hash: &[u8; 20]) -> Option<Arc<Entry>> {
        self.by_hash
            .get(info_hash)
            .cloned()
            .or_else(|| self.list.iter().find(|entry| entry.hashes().contains(info_hash)).cloned())
    }

    fn remove(&mut self, entry: &Arc<Entry>) {
        self.list.retain(|other| !Arc::ptr_eq(other, entry));
        self.by_hash.retain(|_, other| !Arc::ptr_eq(other, entry));
    }
}

/// A session and its torrents. Dropping it stops accepting connections; [`Session::shutdown`] stops every torrent
/// first, with its `stopped` announces.
pub struct Session {
    shared: Arc<Shared>,
    accepting: JoinHandle<()>,
    /// The dozing torrents' one timer.
    clock: JoinHandle<()>,
    entries: Mutex<Entries>,
    /// Set by [`Session::shutdown`] under the lock of `entries`: nothing more is added.
    closing: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("listen", &self.shared.listen_addr).field("torrents", &self.len()).finish()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.accepting.abort();
        self.clock.abort();
    }
}

/// A torrent brought back by [`Session::restore`]: its info-hash and its task, as [`Session::add`] gives it.
pub type Restored = ([u8; 20], JoinHandle<Result<Outcome, TorrentError>>);

/// The session's local service discovery on the listening interface, if it applies there and starts; a failure is
/// a warning, and the session goes on without it.
fn start_lsd(listen: SocketAddr) -> Option<Arc<LsdService>> {
    match LsdService::start(listen.ip(), listen.port()) {
        Ok(service) => service.map(Arc::new),
        Err(err) => {
            tracing::warn!("local service discovery is off: {err}");
            None
        }
    }
}

/// A random peer id in the Azureus style: client code "BT", version 0001.
pub fn new_peer_id() -> [u8; 20] {
    let mut id = *b"-BT0001-000000000000";
    let mut rng = rand::rng();
    for byte in &mut id[8..] {
        *byte = rng.sample(rand::distr::Alphanumeric);
    }
    id
}

impl Session {
    /// Starts a session that accepts peers on `listener` (bound already, so its port is known before any torrent
    /// is added). Call it inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// The listener's address cannot be read.
    pub fn start(config: SessionConfig, listener: TcpListener) -> std::io::Result<Session> {
        let listen_addr = listener.local_addr()?;
        let served = Torrents::new();
        let accepting = tokio::spawn(accept_loop(served.clone(), listener, config.max_peers_per_ip));
        let doze_clock = Arc::new(crate::dozing::DozeClock::default());
        let clock = tokio::spawn(doze_clock.clone().run());
        let shared = Arc::new(Shared {
            doze_clock,
            listen_addr,
            peer_id: new_peer_id(),
            served,
            // Always there, unlimited unless set, so that the limits can be set while the session runs.
            upload_limiter: Some(Arc::new(TransferLimiter::with_rate(config.upload_limit))),
            download_limiter: Some(Arc::new(TransferLimiter::with_rate(config.download_limit))),
            trackers: Arc::new(crate::trackers::TrackerEndpoints::new(Some(config.listen.ip()))),
            connections: ConnectionBudget::new(config.max_connections),
            lsd: if config.lsd { start_lsd(listen_addr) } else { None },
            checks: tokio::sync::Semaphore::new(1),
            dozing_announces: tokio::sync::Semaphore::new(DOZING_ANNOUNCES_AT_ONCE),
            starts: Arc::new(tokio::sync::Semaphore::new(STARTING_AT_ONCE)),
            open_files: SessionFiles::new(config.max_open_files),
            hashing: crate::hashing::HashPool::new(config.hashing_threads),
            state: match &config.state_dir {
                Some(dir) => Some(StateWriter::start(StateFolder::new(dir.clone()))?),
                None => None,
            },
            config,
        });
        Ok(Session { shared, accepting, clock, entries: Mutex::new(Entries::default()), closing: false.into() })
    }

    /// Where peers reach us.
    #[must_use]
    pub fn listen_addr(&self) -> SocketAddr {
        self.shared.listen_addr
    }

    /// Connections every torrent of the session holds now, together.
    #[must_use]
    pub fn connections(&self) -> usize {
        self.shared.connections.used()
    }

    /// Our peer id, the same for every torrent.
    #[must_use]
    pub fn peer_id(&self) -> [u8; 20] {
        self.shared.peer_id
    }

    /// Torrents in the session, whatever their state.
    #[must_use]
    pub fn len(&self) -> usize {
        lock(&self.entries).list.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds `torrent` and starts it: its events go to `events` with its info-hash (the session's torrents may
    /// share one channel). The handle gives what its run came to once it is
    /// over for good: stopped (by [`Session::shutdown`], or complete with `exit_on_complete`), removed, or errored.
    ///
    /// # Errors
    ///
    /// The torrent is in the session already (by either info-hash of a hybrid), or its files cannot be laid out
    /// in `config.dir`.
    pub fn add(
        &self,
        torrent: metainfo::Torrent,
        config: impl Into<Arc<TorrentConfig>>,
        events: mpsc::UnboundedSender<([u8; 20], Event)>,
    ) -> Result<JoinHandle<Result<Outcome, TorrentError>>, TorrentError> {
        let config = config.into();
        let layout = self.shared.layout(&torrent, &config.dir)?;
        torrent::choose_files(&layout, &config.only, &torrent.info.name)?;
        let events = EventSink::new(torrent.info_hash.0, events);
        self.insert(Entry::of_torrent(torrent, layout, config, events), true)
    }

    /// Adds a magnet link's torrent and starts it: it fetches its metadata from the swarm (the link's trackers,
    /// `config.peers`, which should hold the link's `x.pe` peers, the DHT, local service discovery and the peers
    /// that dial us for it), saves it in `config.dir` as `NAME.torrent`, then goes on as [`Session::add`] does,
    /// over the connections that fetched it. Its events are tagged with the link's info-hash.
    ///
    /// # Errors
    ///
    /// The torrent is in the session already (by either info-hash of a hybrid link).
    pub fn add_magnet(
        &self,
        magnet: metainfo::Magnet,
        config: impl Into<Arc<TorrentConfig>>,
        events: mpsc::UnboundedSender<([u8; 20], Event)>,
    ) -> Result<JoinHandle<Result<Outcome, TorrentError>>, TorrentError> {
        let events = EventSink::new(magnet.info_hash.0, events);
        self.insert(Entry::new(None, Some(magnet), config.into(), events), true)
    }

    /// Brings back the torrents the session's state folder holds ([`SessionConfig::state_dir`]) as they stood:
    /// each in its folder, paused or not, its files' priorities, a magnet link still fetching its metadata. The
    /// other settings come from `template`. One result per torrent kept: its info-hash and task, or why it is not
    /// back (a state file that does not read, a .torrent that does not parse, naming the file).
    pub fn restore(
        &self,
        template: &TorrentConfig,
        events: &mpsc::UnboundedSender<([u8; 20], Event)>,
    ) -> Vec<Result<Restored, String>> {
        let Some(dir) = &self.shared.config.state_dir else { return Vec::new() };
        let saved = match StateFolder::new(dir.clone()).load() {
            Ok(saved) => saved,
            Err(err) => return vec![Err(err)],
        };
        saved.into_iter().map(|saved| saved.and_then(|saved| self.restore_one(template, events, saved))).collect()
    }

    fn restore_one(
        &self,
        template: &TorrentConfig,
        events: &mpsc::UnboundedSender<([u8; 20], Event)>,
        (hash, state, file): crate::session_state::Saved,
    ) -> Result<Restored, String> {
        let name = hex(&hash);
        let mut config = template.clone();
        config.dir.clone_from(&state.dir);
        config.sequential = state.sequential;
        config.only.clear();
        config.upload_limit = state.upload_limit;
        config.download_limit = state.download_limit;
        let entry = match (file, &state.magnet) {
            (Some(file), _) => {
                let torrent = metainfo::Torrent::from_bytes_any(&file)
                    .map_err(|err| format!("the saved torrent {name}.torrent does not parse: {err}"))?;
                if torrent.info_hash.0 != hash {
                    return Err(format!("the saved torrent {name}.torrent is another torrent ({})", torrent.info_hash));
                }
                let layout = self.shared.layout(&torrent, &config.dir).map_err(|err| err.to_string())?;
                if !state.priorities.is_empty() {
                    layout.set_priorities(&state.priorities).map_err(|err| err.to_string())?;
                }
                Entry::of_torrent(torrent, layout, Arc::new(config), EventSink::new(hash, events.clone()))
            }
            (None, Some(link)) => {
                let magnet = metainfo::parse_magnet(link).map_err(|err| format!("the saved link of {name}: {err}"))?;
                let events = EventSink::new(magnet.info_hash.0, events.clone());
                Entry::new(None, Some(magnet), Arc::new(config), events)
            }
            (None, None) => return Err(format!("{name}.state names neither a torrent nor a magnet link")),
        };
        if state.paused {
            // Before its task starts: it never checks or connects until resumed.
            entry.control.set_wanted(Wanted::Pause);
        }
        self.insert(entry, false).map(|run| (hash, run)).map_err(|err| err.to_string())
    }

    /// Adds `entry` and starts its task; `persist` keeps it in the state folder (not for one restored from it).
    fn insert(&self, entry: Entry, persist: bool) -> Result<JoinHandle<Result<Outcome, TorrentError>>, TorrentError> {
        let entry = Arc::new(entry);
        {
            let mut entries = lock(&self.entries);
            if self.closing.load(std::sync::atomic::Ordering::Acquire) {
                return Err(TorrentError::SessionClosed);
            }
            let hashes = entry.hashes();
            // The index alone: a hash a magnet link's metadata brought later is caught when the torrent is served.
            if let Some(other) = hashes.iter().find_map(|hash| entries.by_hash.get(hash).cloned()) {
                let info_hash = other.hashes().first().map(hex).unwrap_or_default();
                return Err(TorrentError::Duplicate { name: other.name(), info_hash });
            }
            entries.list.push(entry.clone());
            for hash in hashes {
                entries.by_hash.insert(hash, entry.clone());
            }
        }
        if persist {
            entry.persist(&self.shared, true);
        }
        Ok(tokio::spawn(driven(self.shared.clone(), entry)))
    }

    fn find(&self, info_hash: &[u8; 20]) -> Option<Arc<Entry>> {
        lock(&self.entries).find(info_hash)
    }

    /// Pauses a torrent: its connections close and its trackers are told `stopped`. False if there is no such
    /// torrent or it is not running.
    pub fn pause(&self, info_hash: &[u8; 20]) -> bool {
        let Some(entry) = self.find(info_hash) else { return false };
        let paused = entry.control.change_wanted(Wanted::Run, Wanted::Pause);
        entry.nudge();
        if paused {
            entry.persist(&self.shared, false);
        }
        paused
    }

    /// Resumes a paused torrent from the pieces it had, or restarts a stopped or errored one (checking its data,
    /// or trusting its fast-resume state). False if there is no such torrent or it is running already.
    pub fn resume(&self, info_hash: &[u8; 20]) -> bool {
        let Some(entry) = self.find(info_hash) else { return false };
        let phase = entry.control.phase();
        let resumed = match phase {
            Phase::Paused | Phase::Starting | Phase::Dozing => entry.control.change_wanted(Wanted::Pause, Wanted::Run),
            Phase::Stopped | Phase::Errored(_) => {
                entry.control.set_wanted(Wanted::Run);
                entry.control.set_phase(Phase::Starting);
                // Nobody awaits a restarted run but the queries.
                drop(tokio::spawn(driven(self.shared.clone(), entry.clone())));
                true
            }
            Phase::Removed => false,
        };
        if resumed {
            entry.persist(&self.shared, false);
        }
        resumed
    }

    /// Removes a torrent and returns once nothing of it runs: its connections are closed, its trackers told
    /// `stopped`, its tasks and timers ended. Its data stays on disk. False if there is no such torrent.
    pub async fn remove(&self, info_hash: &[u8; 20]) -> bool {
        let Some(entry) = self.find(info_hash) else { return false };
        entry.control.set_wanted(Wanted::Remove);
        entry.nudge();
        entry.until_over().await;
        lock(&self.entries).remove(&entry);
        if let (Some(state), Some(&hash)) = (&self.shared.state, entry.hashes().first()) {
            state.forget(hash);
        }
        true
    }

    /// Stops every torrent (each tells its trackers `stopped`) and returns once all are over; nothing can be added
    /// afterwards.
    pub async fn shutdown(&self) {
        let entries: Vec<Arc<Entry>> = {
            let entries = lock(&self.entries);
            self.closing.store(true, std::sync::atomic::Ordering::Release);
            entries.list.clone()
        };
        for entry in &entries {
            if !entry.control.change_wanted(Wanted::Run, Wanted::Stop) {
                entry.control.change_wanted(Wanted::Pause, Wanted::Stop);
            }
            entry.nudge();
        }
        for entry in entries {
            entry.until_over().await;
        }
        if let Some(state) = &self.shared.state {
            state.flush().await;
        }
    }

    /// Sets how much each of a torrent's files is wanted: one [`Priority`] per file, as [`TorrentStatus::files`]
    /// lists them. A file at [`Priority::Skip`] is not created (what pieces shared with a wanted file carry of it
    /// goes to the part file); one wanted again gets its bytes out of the part file, and the torrent downloads
    /// what it now lacks, the pieces of higher priority first. False if there is no such torrent, its metadata is
    /// not in yet, or `priorities` does not have one per file.
    ///
    /// # Errors
    ///
    /// Moving a file's bytes out of the part file failed (the disk), naming the file.
    pub async fn set_file_priorities(
        &self,
        info_hash: &[u8; 20],
        priorities: &[Priority],
    ) -> Result<bool, TorrentError> {
        let Some(entry) = self.find(info_hash) else { return Ok(false) };
        let Some(layout) = entry.slot.get().map(|slot| slot.layout.clone()) else { return Ok(false) };
        if priorities.len() != layout.paths_inside().len() {
            return Ok(false);
        }
        let priorities = priorities.to_vec();
        let pieces = tokio::task::spawn_blocking(move || layout.set_priorities(&priorities))
            .await
            .map_err(|err| TorrentError::Disk(err.to_string()))??;
        if let Some(swarm) = entry.swarm() {
            swarm.set_priorities(&pieces);
        }
        // A dozing torrent wakes to download what it now lacks.
        if let Some(door) = &lock(&entry.past).dozing {
            door.want();
        }
        entry.persist(&self.shared, false);
        Ok(true)
    }

    /// The session's limits over every torrent together, in bytes per second (upload, download); `None`: none.
    #[must_use]
    pub fn session_limits(&self) -> (Option<u64>, Option<u64>) {
        let rate = |limiter: &Option<Arc<TransferLimiter>>| limiter.as_ref().and_then(|limiter| limiter.rate());
        (rate(&self.shared.upload_limiter), rate(&self.shared.download_limiter))
    }

    /// Sets the session's limits over every torrent together, in bytes per second (`None`: none), at once, even
    /// mid-transfer; each torrent's own limits apply too.
    pub fn set_session_limits(&self, upload: Option<u64>, download: Option<u64>) {
        for (limiter, rate) in [(&self.shared.upload_limiter, upload), (&self.shared.download_limiter, download)] {
            if let Some(limiter) = limiter {
                limiter.set_rate(rate);
            }
        }
    }

    /// Sets a torrent's own limits, in bytes per second (`None`: only the session's), at once, even mid-transfer.
    /// False if there is no such torrent.
    pub fn set_limits(&self, info_hash: &[u8; 20], upload: Option<u64>, download: Option<u64>) -> bool {
        let Some(entry) = self.find(info_hash) else { return false };
        entry.limits.upload.set_rate(upload);
        entry.limits.download.set_rate(download);
        entry.persist(&self.shared, false);
        true
    }

    /// Asks every UDP and HTTP(S) tracker of the session's torrents about them (BEP 15 and BEP 48 scrapes), in
    /// batches: one request per tracker for up to 70 torrents that name it (64 over HTTP), over the session's
    /// socket or HTTP client. One report per torrent and tracker, ordered by tracker; magnet links whose metadata
    /// is not in are left out.
    pub async fn scrape(&self) -> Vec<crate::scrape::ScrapeReport> {
        let entries: Vec<Arc<Entry>> = lock(&self.entries).list.clone();
        let torrents = entries.iter().filter_map(|entry| {
            let torrent = &entry.slot.get()?.torrent;
            let listed = torrent.announce_list.iter().flatten().chain(&torrent.announce);
            Some((torrent.info_hash.0, listed.cloned().collect()))
        });
        let torrents: Vec<_> = torrents.collect();
        crate::scrape::scrape_all(&self.shared.trackers, self.shared.config.tracker_timeouts, torrents).await
    }
}

fn hex(hash: &[u8; 20]) -> String {
    hash.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Accepts the connections of every torrent in `torrents`, for as long as it runs (abort it to stop): each
/// incoming handshake goes to the torrent it names.
async fn accept_loop(torrents: Arc<Torrents>, listener: TcpListener, max_peers_per_ip: usize) {
    // Handshakes in progress have a budget of their own, so silent sockets cannot hold the slots of established
    // peers (see `admission`); established peers are capped by the swarm at `--max-peers`.
    let handshakes = Handshakes::default();
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                // Which torrent it is for, and so whether it is banned there or finds room, is known once its
                // handshake is read (`connection::run_incoming`).
                let established = torrents.connections_with(addr.ip());
                let Some(ticket) = handshakes.begin(addr.ip(), established, max_peers_per_ip) else { continue };
                tokio::spawn(connection::run_incoming(torrents.clone(), stream, addr, ticket));
            }
            Err(err) => {
                // Out of file descriptors, usually: back off instead of spinning.
                tracing::warn!("accepting a connection: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
