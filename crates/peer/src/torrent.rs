//! One torrent of a session, from start to stop: check the data on disk (or trust its fast-resume state), join the
//! session's listener, announce, connect, download, seed; then hang up, tell the trackers, and keep the state.
//!
//! The session ([`crate::session`]) runs each torrent through [`run`] and owns what they share; the program's
//! layer ([`Event`]s in, bars and lines out; the events are in [`crate::events`]) stays outside.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peer_wire::Bitfield;
use tracing::Instrument;

use crate::announcer::{self, Announcer, SEEDING_NOTICE_WAIT, TierShared, TierState};
use crate::connection;
use crate::dht_peers::LookupSchedule;
pub(crate) use crate::dozing::Dozed;
use crate::magnet::Fetched;
use crate::rate::{Limits, TransferLimiter};
use crate::session::Shared;
use crate::sources::Source;
use crate::storage::Storage;
use crate::swarm::{Swarm, SwarmConfig};
use crate::torrents::Door;

use crate::events::{Event, EventSink, PeerSummary};

/// What one torrent is asked to do; what its session shares is in [`crate::session::SessionConfig`].
#[derive(Debug, Clone)]
pub struct TorrentConfig {
    /// The download folder: the torrent's file (single-file) or folder (multi-file) goes inside.
    pub dir: PathBuf,
    /// Peers to connect to directly, besides those the trackers name, with how we heard of them.
    pub peers: Vec<(SocketAddr, Source)>,
    /// Most connections of this torrent.
    pub max_peers: usize,
    /// Super-seed (show pieces one window at a time) when starting with the whole torrent.
    pub super_seed: bool,
    /// Download in order, for previewing media (rarest first within a window from the first piece we lack).
    pub sequential: bool,
    /// Return as soon as the data is complete (after announcing `completed`).
    pub exit_on_complete: bool,
    /// Fast resume ([`crate::resume`]): trust the state kept under `dir` when the files are as it says, instead of
    /// reading them; keep it up to date.
    pub resume: bool,
    /// Download only the files some pattern chooses (`--only`); every file when empty.
    pub only: Vec<crate::selection::FilePattern>,
    /// Bytes per second this torrent's connections send together, under the session's limit too; `None`: only
    /// the session's. Changed while it runs with [`crate::session::Session::set_limits`].
    pub upload_limit: Option<u64>,
    /// Bytes per second this torrent's connections read together, as `upload_limit`.
    pub download_limit: Option<u64>,
}

impl TorrentConfig {
    /// A torrent downloaded into `dir` with the defaults of the `peer` command.
    #[must_use]
    pub fn new(dir: PathBuf) -> TorrentConfig {
        TorrentConfig {
            dir,
            peers: Vec::new(),
            max_peers: 50,
            super_seed: true,
            sequential: false,
            exit_on_complete: false,
            resume: true,
            only: Vec::new(),
            upload_limit: None,
            download_limit: None,
        }
    }
}

/// A torrent of a session, what [`run`] runs: its metainfo, its files laid out in the download folder, and its
/// swarm while it runs (for the session's queries).
pub(crate) struct TorrentSlot {
    pub(crate) torrent: Arc<metainfo::Torrent>,
    pub(crate) layout: Arc<Storage>,
    pub(crate) running: Mutex<Option<Arc<Swarm>>>,
}

/// What one run of a torrent is given besides its slot and the session.
pub(crate) struct RunWith<'a> {
    pub(crate) config: &'a TorrentConfig,
    pub(crate) events: &'a EventSink,
    pub(crate) own: &'a OwnLimits,
    /// Pieces known verified (a paused torrent resuming); `None`: its fast-resume state or a check says.
    pub(crate) pieces: Option<Bitfield>,
    /// A magnet link's fetch: its connections, trackers and peers go on into the download.
    pub(crate) handover: Option<Box<Fetched>>,
    /// The torrent dozed off, and wakes: where its announces, lookups and discovery stood.
    pub(crate) woken: Option<Box<Dozed>>,
}

/// A torrent's own rate limits, kept across its runs and changed through the session.
#[derive(Debug)]
pub(crate) struct OwnLimits {
    pub(crate) upload: Arc<TransferLimiter>,
    pub(crate) download: Arc<TransferLimiter>,
}

impl OwnLimits {
    pub(crate) fn of(config: &TorrentConfig) -> OwnLimits {
        OwnLimits {
            upload: Arc::new(TransferLimiter::with_rate(config.upload_limit)),
            download: Arc::new(TransferLimiter::with_rate(config.download_limit)),
        }
    }
}

/// How a run of a torrent ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub complete: bool,
    pub have: u32,
    pub total: u32,
    pub downloaded: u64,
    pub uploaded: u64,
    pub peers: Vec<PeerSummary>,
    /// The verified pieces: a run that follows (after a pause) starts from them without checking.
    pub pieces: Bitfield,
}

/// Why a torrent could not run.
#[derive(Debug, thiserror::Error)]
pub enum TorrentError {
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error("{0}")]
    Picker(#[from] crate::picker::PickerError),
    #[error("checking existing data failed: {0}")]
    Check(String),
    /// Disk trouble while downloading (a full disk, a folder made read-only...): the torrent stopped.
    #[error("{0}")]
    Disk(String),
    #[error(transparent)]
    AlreadyServed(#[from] crate::torrents::AlreadyServed),
    /// The session has this torrent already.
    #[error("{name} is in the session already (info-hash {info_hash})")]
    Duplicate { name: String, info_hash: String },
    /// The session is shutting down: nothing more is added.
    #[error("the session is shutting down")]
    SessionClosed,
    /// A magnet link's metadata could not be had, or made no valid torrent.
    #[error("{0}")]
    Metadata(String),
    /// A magnet link's torrent was stopped (or removed) before its metadata arrived.
    #[error("stopped before the metadata arrived")]
    StoppedBeforeMetadata,
    /// The run was asked to end (paused, stopped, removed) while it was checking the data: nothing is known of
    /// its pieces from that check.
    #[error("stopped while checking the data")]
    CheckStopped,
    /// An `--only` pattern chooses none of the torrent's files.
    #[error("--only {pattern} matches no file of {name}")]
    NoFileMatches { pattern: String, name: String },
}

/// Runs the torrent of `slot` in the session `shared` until it is complete (`exit_on_complete`), `shutdown`
/// resolves, the disk fails, or it dozes off (then with where it stood, for its waking: see [`Door`]). `pieces`, when given, are trusted as verified (a paused torrent resuming);
/// otherwise the fast-resume state or a check of the data says which are. `handover`, for a torrent whose metadata
/// was just fetched, carries the fetch's connections, trackers and peers on into the download. The slot holds the
/// swarm while it runs.
///
/// # Errors
///
/// The data cannot be checked or stored, the torrent is already served, or a disk error stopped it.
pub(crate) async fn run(
    slot: &TorrentSlot,
    shared: &Shared,
    with: Box<RunWith<'_>>,
    asked: &Asked<'_>,
) -> Result<(Outcome, Option<Box<Dozed>>), TorrentError> {
    // The start (a check, the swarm's making) and the end (the goodbyes) run in futures of their own on the heap:
    // a torrent seeding for days keeps in its task only what its loop needs (see `Running`).
    let turn = if with.woken.is_some() {
        // Woken from a doze: it starts whatever it is asked meanwhile (turns are short), so that a stop still
        // reaches its trackers and its door is closed, as the end of a run does.
        shared.starts.clone().acquire_owned().await.ok()
    } else {
        tokio::select! {
            turn = shared.starts.clone().acquire_owned() => turn.ok(),
            () = asked.until() => return Err(TorrentError::CheckStopped),
        }
    };
    let running = match Box::pin(start(slot, shared, *with, asked, turn)).await? {
        Began::Running(running) => running,
        Began::Dozing(dozed, pieces) => {
            let (have, total) = (pieces.count(), pieces.len());
            let outcome =
                Outcome { complete: true, have, total, downloaded: 0, uploaded: 0, peers: Vec::new(), pieces };
            return Ok((outcome, Some(dozed)));
        }
    };
    let doze = running.until_over(asked, shared.config.doze_after).await;
    Box::pin(running.finish(slot, shared, doze)).await
}

/// A torrent between its start and its end: what its loop needs, and the tasks that end with it.
struct Running<'a> {
    swarm: Arc<Swarm>,
    /// Its peer lookups.
    tasks: tokio::task::JoinSet<()>,
    /// Writes the fast-resume state once the download is over.
    resume_writer: Option<tokio::task::JoinHandle<()>>,
    /// One per tracker tier.
    announcers: tokio::task::JoinSet<Option<TierState>>,
    tiers: Arc<TierShared>,
    /// Its LSD registration: it ends with the torrent (a doze carries it on).
    discovery: Option<crate::lsd::service::Registration>,
    /// Where its DHT lookups stand.
    dht: Arc<Mutex<LookupSchedule>>,
    /// What a peer knocks on while it dozes.
    door: Arc<Door>,
    /// Where its fast-resume state goes, if it keeps one: made when needed, not kept all along.
    resume: Option<&'a TorrentConfig>,
    /// Every wanted piece was in at the start.
    started_finished: bool,
    exit_on_complete: bool,
    local_ip: Option<IpAddr>,
}

/// How a run learns that it is asked to end (paused, stopped, removed): `now` says whether it is, and `changed`
/// is woken whenever that may have changed. A check and a wake-up, not a future: the loop of a torrent that runs
/// for days keeps room only for the wait.
pub(crate) struct Asked<'a> {
    pub(crate) now: &'a (dyn Fn() -> bool + Sync),
    pub(crate) changed: &'a tokio::sync::Notify,
}

impl Asked<'_> {
    /// Returns once the run is asked to end.
    pub(crate) async fn until(&self) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before the look: a change in between is not missed.
            changed.as_mut().enable();
            if (self.now)() {
                return;
            }
            changed.await;
        }
    }
}

/// The timers of a torrent's loop.
struct LoopTimes {
    swarm: SwarmTimes,
    /// When a torrent complete from the start says it is seeding, if it has not yet.
    seeding_notice: Option<tokio::time::Instant>,
    /// Since when it has been idle enough to doze (see [`Running::may_doze`]).
    idle_since: Option<tokio::time::Instant>,
}

/// What the loop does next.
enum Step {
    /// Wait for something to happen, or until then at the latest.
    Wait(Option<tokio::time::Instant>),
    /// The run is over: a fatal error, or the download done with `exit_on_complete`.
    Over,
    /// Idle long enough: let go of everything until a peer or an announce wakes it.
    Doze,
}

/// How a start ended.
enum Began<'a> {
    Running(Running<'a>),
    /// Complete from the start, with nobody named to dial: it dozes before it makes a swarm (see
    /// [`crate::dozing`]), with these pieces.
    Dozing(Box<Dozed>, Bitfield),
}

/// Checks the data (or trusts `pieces`, or the fast-resume state), makes the swarm, joins the session's listener
/// and starts the announcers and lookups; or, for a seeding torrent with nobody to dial yet, dozes off at once.
async fn start<'a>(
    slot: &TorrentSlot,
    shared: &Shared,
    with: RunWith<'a>,
    asked: &Asked<'_>,
    mut turn: Option<tokio::sync::OwnedSemaphorePermit>,
) -> Result<Began<'a>, TorrentError> {
    let TorrentSlot { torrent, layout, running } = slot;
    let RunWith { config, events, own, pieces, handover, woken } = with;
    let (storage, events) = (layout.clone(), events.clone());
    let listen_addr = shared.listen_addr;

    let resume_path = config.resume.then(|| crate::resume::path_for(&config.dir, &torrent.info_hash.0));
    let known = pieces.is_some();
    let trusted = match (pieces, &resume_path) {
        (Some(pieces), _) => Some(pieces),
        (None, Some(path)) => resumed(path, &storage, &torrent.info_hash.0).await,
        (None, None) => None,
    };
    let resumed = trusted.is_some();
    let have = match trusted {
        Some(have) => have,
        None => {
            // Stopped, paused or removed while checking: the check's threads stop within a batch, and the run
            // ends before it began.
            // Waiting for a check is no start: others go meanwhile.
            drop(turn.take());
            // One torrent checks at a time, on the session's check threads (libtorrent's `active_checking`
            // default): a thousand torrents started at once do not start a thousand checks.
            let _turn = tokio::select! {
                turn = shared.checks.acquire() => turn.map_err(|err| TorrentError::Check(err.to_string()))?,
                () = asked.until() => return Err(TorrentError::CheckStopped),
            };
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let checking = check(&storage, &shared.hashing, shared.config.check_threads, &events, stop.clone());
            tokio::pin!(checking);
            tokio::select! {
                have = &mut checking => have?,
                () = asked.until() => {
                    stop.store(true, Ordering::Release);
                    let _ = checking.await;
                    return Err(TorrentError::CheckStopped);
                }
            }
        }
    };
    if !known {
        let _ = events.send(Event::Checked { have: have.count(), total: have.len(), resumed });
    }
    if let Some(path) = resume_path.as_ref().filter(|_| !resumed) {
        save_resume(path.clone(), storage.clone(), torrent.info_hash.0, have.clone()).await;
    }
    let started_complete = have.is_complete();
    if started_complete && woken.is_none() {
        let storage = storage.clone();
        tokio::task::spawn_blocking(move || storage.create_empty_files())
            .await
            .map_err(|err| TorrentError::Check(err.to_string()))??;
    }

    let asleep_from_start = woken.is_none()
        && handover.is_none()
        && config.peers.is_empty()
        && !config.exit_on_complete
        && shared.config.doze_after.is_some()
        && started_complete;
    if asleep_from_start {
        return Ok(Began::Dozing(Box::new(Dozed::at_start(shared, torrent)), have));
    }

    let session = &shared.config;
    let local_ip = Some(session.listen.ip()).filter(|ip| !ip.is_unspecified());
    let dht = session.dht.clone().filter(|_| !torrent.info.private);
    let swarm_config = SwarmConfig {
        max_peers: config.max_peers,
        max_peers_per_ip: session.max_peers_per_ip,
        upload: Limits { session: shared.upload_limiter.clone(), torrent: own.upload.clone() },
        download: Limits { session: shared.download_limiter.clone(), torrent: own.download.clone() },
        connection_budget: Some(shared.connections.clone()),
        sequential: config.sequential,
        super_seed: config.super_seed,
        defer_verification: false,
        private: torrent.info.private,
        listen_port: Some(listen_addr.port()),
        local_ip,
        trace: session.trace.clone(),
        dht: dht.clone(),
        hash_trees: Arc::new(crate::v2::HashTrees::of(torrent)),
        info_hash_v2: torrent.info_hash_v2().map(|hash| hash.truncated().0).filter(|hash| *hash != torrent.info_hash.0),
        hashing: Some(shared.hashing.clone()),
        seed: None,
        connector: None,
        random_pieces: false,
    };
    let info_hash = torrent.info_hash.0;
    let metadata = torrent.info_bytes.clone();
    let swarm =
        Arc::new(Swarm::new(storage, metadata, info_hash, shared.peer_id, &have, &swarm_config, events.clone())?);
    let priorities = layout.piece_priorities();
    if priorities.iter().any(|&level| level != crate::picker::NORMAL) {
        // Files left out or preferred: only the pieces of the others are downloaded (the download is over once
        // they are in), those of preferred files first.
        swarm.set_priorities(&priorities);
    }
    let started_finished = swarm.is_finished();
    let (door, mut woken_tiers, dht_schedule, discovery, notice_owed) = match woken.map(|dozed| *dozed) {
        Some(Dozed { door, tiers, trackers, dht, discovery, notice }) => {
            swarm.restore_tracker_statuses(trackers);
            for (addr, source) in door.take_candidates() {
                swarm.add_candidate(addr, source);
            }
            (door, tiers, dht, discovery, notice.is_some())
        }
        None => (Arc::new(Door::default()), Vec::new(), LookupSchedule::default(), None, true),
    };
    let woke = !woken_tiers.is_empty() || !notice_owed;

    shared.served.add(&swarm)?;
    *running.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(swarm.clone());
    let mut tasks = tokio::task::JoinSet::new();
    let resume_writer = resume_path.clone().filter(|_| !started_finished).map(|path| {
        // The state on completion: a seeder killed later restarts without reading its data.
        let (swarm, storage) = (swarm.clone(), swarm.storage.clone());
        tokio::spawn(async move {
            loop {
                // Registered before the check: a completion in between is not missed.
                let changed = swarm.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if swarm.is_finished() {
                    break;
                }
                changed.await;
            }
            save_resume(path, storage, info_hash, swarm.have_bitfield()).await;
        })
    });
    let mut announced = Vec::new();
    if let Some(fetched) = handover.map(|fetched| *fetched) {
        // Before the first dial: the peers these connections are with must not be dialled again.
        for connection in fetched.connections {
            connection::adopt(&swarm, connection);
        }
        for (addr, source) in fetched.peers {
            swarm.add_candidate(addr, source);
        }
        announced = fetched.announced;
    }
    for &(addr, source) in &config.peers {
        swarm.add_candidate(addr, source);
    }
    let dht_schedule = Arc::new(Mutex::new(dht_schedule));
    if let Some(node) = dht {
        let (swarm, port, schedule) = (swarm.clone(), listen_addr.port(), dht_schedule.clone());
        tasks.spawn(
            async move {
                let found = |addr: SocketAddr| {
                    if !(addr.port() == port && addr.ip().is_loopback()) {
                        swarm.add_candidate(addr, Source::Dht);
                    }
                };
                crate::dht_peers::look_up_on(node, info_hash, Some(port), found, &schedule).await;
            }
            .in_current_span(),
        );
    }
    // Announced on the local network while it runs or dozes (never a private torrent); a neighbour it hears of
    // goes through the session's table, to the swarm or to the door.
    let discovery = discovery.or_else(|| {
        shared.lsd.as_ref().filter(|_| !torrent.info.private).map(|lsd| {
            let served = shared.served.clone();
            lsd.register(info_hash, move |addr| served.offer(&info_hash, addr, Source::Lsd))
        })
    });

    let tiers = announcer::tiers(torrent);
    let tier_shared = Arc::new(match (woke, notice_owed) {
        (false, _) => TierShared::new(tiers.len()),
        // Woken before its seeding notice was said: said once the tiers still owing a first answer have it.
        (true, true) => TierShared::new(woken_tiers.iter().filter(|tier| !tier.first_done()).count()),
        (true, false) => TierShared::woken(),
    });
    let mut announcers = tokio::task::JoinSet::new();
    for tier in tiers {
        let started = announced.iter().find(|(url, _)| tier.contains(url)).cloned();
        let woken = woken_tiers.iter().position(|state| state.covers(&tier)).map(|at| woken_tiers.swap_remove(at));
        let announcer = Announcer {
            started,
            swarm: swarm.clone(),
            tier,
            port: listen_addr.port(),
            local_ip,
            trackers: shared.trackers.clone(),
            timeouts: session.tracker_timeouts,
            started_complete,
            shared: tier_shared.clone(),
            woken,
        };
        announcers.spawn(Box::new(announcer).run().in_current_span());
    }
    Ok(Began::Running(Running {
        swarm,
        tasks,
        resume_writer,
        announcers,
        tiers: tier_shared,
        discovery,
        dht: dht_schedule,
        door,
        resume: config.resume.then_some(config),
        started_finished,
        exit_on_complete: config.exit_on_complete,
        local_ip,
    }))
}

impl Running<'_> {
    /// The torrent's loop: ticks its swarm each second while it has peers (see [`Swarm::is_quiet`]), dials the
    /// candidates its sources name as they come due, and reports it seeding; until `shutdown`, a fatal error, or
    /// the end of the download with `exit_on_complete`; or until it has been idle for `doze_after`, when it
    /// returns `true` (see [`Door`]). One loop, not a task each, so that an idle torrent costs one small task.
    async fn until_over(&self, asked: &Asked<'_>, doze_after: Option<Duration>) -> bool {
        // A torrent complete from the start says it is seeding once the trackers have heard of it, or after a
        // while without them: a tracker that does not answer is retried for minutes, and peers that know our
        // address can come anyway.
        let seeding_notice = self.started_finished.then(|| {
            let wait = self.tiers.first_announces_left.load(Ordering::Acquire) > 0;
            tokio::time::Instant::now() + if wait { SEEDING_NOTICE_WAIT } else { Duration::ZERO }
        });
        let mut times = LoopTimes { swarm: SwarmTimes::default(), seeding_notice, idle_since: None };
        let mut disk_check: Option<tokio::task::JoinHandle<()>> = None;
        let swarm = &self.swarm;
        loop {
            // Registered before the looks below: what happens in between is not missed.
            let changed = swarm.changed.notified();
            let activity = swarm.activity.notified();
            let ask = asked.changed.notified();
            tokio::pin!(changed, activity, ask);
            changed.as_mut().enable();
            activity.as_mut().enable();
            ask.as_mut().enable();
            if (asked.now)() {
                return false;
            }
            let wake = match self.housekeeping(&mut times, &mut disk_check, doze_after) {
                Step::Wait(wake) => wake,
                Step::Over => return false,
                Step::Doze => return true,
            };
            tokio::select! {
                () = ask => {}
                () = changed => {}
                () = activity => {
                    // A peer came (or candidates did): a quiet torrent ticks again.
                    times.swarm.woken(swarm);
                }
                () = tokio::time::sleep_until(wake.unwrap_or_else(tokio::time::Instant::now)), if wake.is_some() => {}
            }
        }
    }

    /// What is due now: the seeding notice, a tick, the candidates to dial, a doze; then what the loop does.
    fn housekeeping(
        &self,
        times: &mut LoopTimes,
        disk_check: &mut Option<tokio::task::JoinHandle<()>>,
        doze_after: Option<Duration>,
    ) -> Step {
        let swarm = &self.swarm;
        let now = tokio::time::Instant::now();
        if times.seeding_notice.is_some_and(|at| at <= now) {
            times.seeding_notice = None;
            self.tiers.report(swarm);
        }
        if !self.started_finished && swarm.is_finished() && !self.exit_on_complete {
            self.tiers.report(swarm);
        }
        if swarm.fatal().is_some() || (self.exit_on_complete && swarm.is_finished()) {
            return Step::Over;
        }
        let swarm_wake = tend_swarm(swarm, &mut times.swarm, disk_check, self.local_ip, now);
        let doze_at = doze_after.and_then(|after| {
            if !self.may_doze() {
                times.idle_since = None;
                // Idle but for an announce or a lookup under way, which wakes nothing when it ends: look again.
                return swarm.can_doze().then(|| now + DOZE_RECHECK.min(after));
            }
            Some(*times.idle_since.get_or_insert(now) + after)
        });
        if doze_at.is_some_and(|at| at <= now) && times.idle_since.is_some() {
            return Step::Doze;
        }
        Step::Wait([swarm_wake, times.seeding_notice, doze_at].into_iter().flatten().min())
    }

    /// Whether the torrent is idle enough to doze: seeding (and said so), nobody connected or to dial, no
    /// announce or lookup under way, its fast-resume state written, and not about to end by itself.
    fn may_doze(&self) -> bool {
        !self.exit_on_complete
            && self.tiers.reported()
            && !self.tiers.busy()
            && self.resume_writer.as_ref().is_none_or(tokio::task::JoinHandle::is_finished)
            && !self.dht.lock().unwrap_or_else(std::sync::PoisonError::into_inner).busy
            && self.swarm.can_doze()
    }

    /// Hangs up on everyone and stops serving (new connections for the torrent are refused) while the trackers
    /// are told (`completed` first if it is still owed, then `stopped`); keeps the fast-resume state. When it
    /// `doze`s instead, its door takes the swarm's place, the trackers are told nothing, and where its announces,
    /// lookups and discovery stand comes back for its waking.
    async fn finish(
        self,
        slot: &TorrentSlot,
        shared: &Shared,
        doze: bool,
    ) -> Result<(Outcome, Option<Box<Dozed>>), TorrentError> {
        let Running { swarm, mut tasks, resume_writer, mut announcers, resume, discovery, dht, door, .. } = self;
        let peers = swarm.peers();
        if doze {
            // The door first: a peer that dials now knocks, and is not refused.
            shared.served.doze(&swarm, &door);
            swarm.doze();
        } else {
            shared.served.remove(&swarm);
            swarm.close_all();
        }
        tasks.abort_all();
        let mut tiers = Vec::new();
        let _ = tokio::time::timeout(announcer::GOODBYE_WAIT, async {
            while let Some(ended) = announcers.join_next().await {
                tiers.extend(ended.ok().flatten());
            }
        })
        .await;
        announcers.abort_all();
        while tasks.join_next().await.is_some() {}
        while announcers.join_next().await.is_some() {}
        if let Some(writer) = resume_writer {
            writer.abort();
            let _ = writer.await;
        }
        *slot.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        swarm.storage.close_files();
        if let Some(message) = swarm.fatal() {
            shared.served.close_door(&door);
            return Err(TorrentError::Disk(message));
        }
        let (downloaded, uploaded, _) = swarm.progress();
        let complete = swarm.is_finished();
        let (have, total) = swarm.have_count();
        let pieces = swarm.have_bitfield();
        let outcome = Outcome { complete, have, total, downloaded, uploaded, peers, pieces };
        if doze {
            let dht = *dht.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let trackers = swarm.take_tracker_statuses();
            tracing::debug!("dozing off");
            return Ok((outcome, Some(Box::new(Dozed { door, tiers, trackers, dht, discovery, notice: None }))));
        }
        if let Some(config) = resume {
            let path = crate::resume::path_for(&config.dir, &swarm.info_hash);
            // Every verified piece was written before it was counted (see `pieces::write_and_verify`).
            save_resume(path, swarm.storage.clone(), swarm.info_hash, outcome.pieces.clone()).await;
        }
        Ok((outcome, None))
    }
}

/// The pieces the fast-resume state at `path` vouches for, if it is there, reads, describes this torrent and
/// every file is exactly as it recorded; why not is logged.
async fn resumed(path: &std::path::Path, storage: &Arc<Storage>, info_hash: &[u8; 20]) -> Option<Bitfield> {
    let (path, storage, info_hash) = (path.to_path_buf(), storage.clone(), *info_hash);
    tokio::task::spawn_blocking(move || {
        let state = match crate::resume::load(&path) {
            Ok(Some(state)) => state,
            Ok(None) => return None,
            Err(err) => {
                tracing::warn!("the fast-resume state {} is not used: {err}; checking the data", path.display());
                return None;
            }
        };
        match state.trusted(&info_hash, storage.num_pieces(), &storage.stamped_paths()) {
            Ok(have) => {
                tracing::info!("fast resume: {} pieces trusted from {}", have.count(), path.display());
                Some(have)
            }
            Err(err) => {
                tracing::info!("the fast-resume state is not used: {err}; checking the data");
                None
            }
        }
    })
    .await
    .ok()
    .flatten()
}

/// Writes the fast-resume state: `have` with the files' stamps now. A failure (a read-only download folder) is
/// a warning: the next start checks the data.
async fn save_resume(path: PathBuf, storage: Arc<Storage>, info_hash: [u8; 20], have: Bitfield) {
    let saved = tokio::task::spawn_blocking(move || {
        let files = crate::resume::stamps(&storage.stamped_paths());
        crate::resume::save(&path, &crate::resume::ResumeState { info_hash, have, files })
    })
    .await;
    match saved {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!("fast resume: {err}; the next start checks the data"),
        Err(err) => tracing::warn!("fast resume: {err}"),
    }
}

async fn check(
    storage: &Arc<Storage>,
    pool: &crate::hashing::HashPool,
    threads: usize,
    events: &EventSink,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Result<Bitfield, TorrentError> {
    let storage = storage.clone();
    let events = events.clone();
    let total = storage.total_length();
    // Its threads are the pool's: a check and the downloads' piece checks share the cores.
    let threads = threads.clamp(1, pool.threads());
    pool.run(threads, move || {
        let progress = |done| {
            let _ = events.send(Event::Checking { done, total });
        };
        storage.check_until(threads, progress, &stop)
    })
    .await
    .map_err(|err| TorrentError::Check(err.to_string()))
}

/// When a swarm is next ticked ([`tend_swarm`]).
#[derive(Debug)]
pub(crate) struct SwarmTimes {
    /// The next tick; `None` while the torrent is quiet.
    next_tick: Option<tokio::time::Instant>,
    ticks: u64,
    /// When a super-seeder next looks whether a turn is over; `None` while no turn waits for its last bytes.
    next_turns: Option<tokio::time::Instant>,
}

impl Default for SwarmTimes {
    /// A tick at once.
    fn default() -> Self {
        SwarmTimes { next_tick: Some(tokio::time::Instant::now()), ticks: 0, next_turns: None }
    }
}

impl SwarmTimes {
    /// The swarm's activity was notified: a peer came (or candidates did), so a quiet swarm ticks again.
    pub(crate) fn woken(&mut self, swarm: &Swarm) {
        if self.next_tick.is_none() && !swarm.is_quiet() {
            self.next_tick = Some(tokio::time::Instant::now() + TICK);
        }
    }
}

/// The swarm's share of a torrent's loop, also a simulated peer's: the tick each second while it has peers
/// (choking, rates, timeouts: see [`Swarm::tick`]), a look at the free space while the disk is full, and the
/// candidates that are due dialled. Returns when it is next due.
pub(crate) fn tend_swarm(
    swarm: &Arc<Swarm>,
    times: &mut SwarmTimes,
    disk_check: &mut Option<tokio::task::JoinHandle<()>>,
    local_ip: Option<IpAddr>,
    now: tokio::time::Instant,
) -> Option<tokio::time::Instant> {
    if times.next_tick.is_some_and(|at| at <= now) {
        swarm.tick();
        times.ticks += 1;
        let checking = disk_check.as_ref().is_some_and(|check| !check.is_finished());
        if times.ticks.is_multiple_of(DISK_CHECK_TICKS) && swarm.is_disk_full() && !checking {
            let swarm = swarm.clone();
            *disk_check = Some(tokio::task::spawn_blocking(move || swarm.check_disk_space()));
        }
        // Nobody connected: no ticks until somebody is.
        times.next_tick = (!swarm.is_quiet()).then(|| now + TICK);
    }
    for addr in swarm.due_candidates() {
        if swarm.reserve_address(addr) {
            tokio::spawn(connection::run_outgoing(swarm.clone(), addr, local_ip).in_current_span());
        } else {
            swarm.candidate_ended(addr);
        }
    }
    let next_dial = swarm.has_candidates().then(|| now + DIAL_EVERY);
    // A super-seeder learns that a turn's last bytes went out only by looking.
    let next_turns = if swarm.turn_closing() {
        match times.next_turns {
            Some(at) if at > now => Some(at),
            Some(_) => {
                swarm.pass_turns();
                Some(*times.next_turns.insert(now + TURN_CHECK))
            }
            None => Some(*times.next_turns.insert(now + TURN_CHECK)),
        }
    } else {
        times.next_turns = None;
        None
    };
    [times.next_tick, next_dial, next_turns].into_iter().flatten().min()
}

/// How often a torrent with peers is ticked (choking, rates, timeouts: see [`Swarm::tick`]).
const TICK: Duration = Duration::from_secs(1);

/// How often a super-seeder looks whether a turn's last bytes went out.
const TURN_CHECK: Duration = Duration::from_millis(100);

/// Ticks between looks at the free space while the disk is full.
const DISK_CHECK_TICKS: u64 = 2;

/// How often an idle torrent looks again whether it may doze while an announce or a lookup is under way.
const DOZE_RECHECK: Duration = Duration::from_secs(5);

/// How often a torrent with candidates looks for those whose back-off has run out.
const DIAL_EVERY: Duration = Duration::from_millis(500);

/// Leaves out the files of `layout` that no pattern of `only` chooses (nothing when `only` is empty).
///
/// # Errors
///
/// A pattern chooses no file of the torrent `name`.
pub(crate) fn choose_files(
    layout: &Storage,
    only: &[crate::selection::FilePattern],
    name: &str,
) -> Result<(), TorrentError> {
    if only.is_empty() {
        return Ok(());
    }
    let priorities = crate::selection::priorities_by(only, &layout.paths_inside())
        .map_err(|pattern| TorrentError::NoFileMatches { pattern: pattern.to_string(), name: name.to_owned() })?;
    layout.set_priorities(&priorities)?;
    Ok(())
}
