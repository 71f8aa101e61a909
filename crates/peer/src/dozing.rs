//! A seeding torrent with nobody to serve sleeps: no swarm, no connection table, no announcer tasks, only a door
//! in the session's table (see [`Door`]) and a small record of where its announces, lookups and discovery stand.
//! It keeps its announces going itself, one tracker request at a time, and its DHT lookups; it wakes into a swarm
//! only when a peer dials it, a neighbour or a tracker names one, or the user asks for something. A torrent whose
//! pieces are known complete at its start (fast resume) starts so: ten thousand seeding torrents never hold ten
//! thousand swarms at once, not even at start-up.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::announcer::{self, SEEDING_NOTICE_WAIT, TierState};
use crate::dht_peers::LookupSchedule;
use crate::events::{Event, EventSink, TrackerStatus};
use crate::session::Shared;
use crate::sources::Source;
use crate::torrent::Asked;
use crate::torrents::Door;
use crate::tracker_client::Announce;

/// A dozing torrent: what its doze goes on with, and what its waking run takes up.
pub(crate) struct Dozed {
    pub(crate) door: Arc<Door>,
    pub(crate) tiers: Vec<TierState>,
    /// The trackers' last answers.
    pub(crate) trackers: Vec<TrackerStatus>,
    pub(crate) dht: LookupSchedule,
    /// Its LSD registration, which goes on through the doze (a neighbour that names it knocks).
    pub(crate) discovery: Option<crate::lsd::service::Registration>,
    /// The seeding notice ([`Event::Seeding`]) is owed: said once the first announces are over, or at this time.
    pub(crate) notice: Option<tokio::time::Instant>,
}

/// Why a doze ended.
pub(crate) enum Woke {
    /// A peer dialled, a neighbour was named, or a tracker or the DHT named peers: a swarm is wanted.
    Wanted,
    /// The user asked for something else (pause, stop, removal).
    Asked,
}

/// What a tracker said: (peers, seeders, leechers), or why not.
pub(crate) type AnnounceResult = Result<(usize, u32, u32), String>;

/// What a doze needs of its torrent and session.
pub(crate) struct DozeWith<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) info_hash: [u8; 20],
    pub(crate) private: bool,
    pub(crate) events: &'a EventSink,
    pub(crate) asked: &'a Asked<'a>,
    /// Bytes it moved over its runs: (downloaded, uploaded), for the announces.
    pub(crate) moved: (u64, u64),
    /// Where the trackers' answers go while it dozes (the session's queries read them there).
    pub(crate) record: &'a (dyn Fn(&str, AnnounceResult) + Sync),
}

impl Dozed {
    /// A torrent complete from its start, dozing before it made a swarm: every tier's `started` due now, a
    /// lookup due now if the DHT is on, and the seeding notice owed.
    pub(crate) fn at_start(shared: &Shared, torrent: &metainfo::Torrent) -> Dozed {
        let info_hash = torrent.info_hash.0;
        let hashes: Vec<[u8; 20]> = std::iter::once(info_hash)
            .chain(torrent.info_hash_v2().map(|hash| hash.truncated().0).filter(|hash| *hash != info_hash))
            .collect();
        let door = Arc::new(Door::default());
        shared.served.add_door(&hashes, &door);
        let discovery = shared.lsd.as_ref().filter(|_| !torrent.info.private).map(|lsd| {
            let served = shared.served.clone();
            lsd.register(info_hash, move |addr| served.offer(&info_hash, addr, Source::Lsd))
        });
        let tiers: Vec<TierState> =
            announcer::tiers(torrent).into_iter().map(|tier| TierState::fresh(tier, true)).collect();
        let now = tokio::time::Instant::now();
        let mut dht = LookupSchedule::default();
        dht.next = Some(now);
        Dozed { door, tiers, trackers: Vec::new(), dht, discovery, notice: Some(now + SEEDING_NOTICE_WAIT) }
    }

    /// When it does something by itself: the first announce, lookup or seeding notice due.
    pub(crate) fn wake_at(&self, dht: bool) -> Option<tokio::time::Instant> {
        let lookup = self.dht.next.filter(|_| dht);
        self.tiers.iter().map(|tier| tier.due).chain(lookup).chain(self.notice).min()
    }

    /// Dozes until a swarm is wanted or the user asks for something; meanwhile announces, looks up and says
    /// the seeding notice as they come due. It waits on its door alone (the session's clock knocks when
    /// something is due, the session when the user asks): a small future, as ten thousand torrents wait so.
    pub(crate) async fn doze(&mut self, with: &DozeWith<'_>) -> Woke {
        let dht = with.shared.config.dht.clone().filter(|_| !with.private);
        let door = self.door.clone();
        loop {
            let knocked = door.knocked.notified();
            tokio::pin!(knocked);
            // Registered before anything is looked at: a knock in between is not missed.
            knocked.as_mut().enable();
            if (with.asked.now)() {
                return Woke::Asked;
            }
            if door.take_wanted() {
                return Woke::Wanted;
            }
            match self.wake_at(dht.is_some()) {
                Some(at) if at <= tokio::time::Instant::now() => {
                    // A turn of the session's first: ten thousand torrents due together do not all make room for
                    // their requests at once. Then on the heap, and only while it runs: an announce's room is
                    // not kept through the doze. A knock (the user, a peer) cuts it short and is looked at.
                    let turn = tokio::select! {
                        turn = with.shared.dozing_announces.acquire() => turn,
                        () = &mut knocked => continue,
                    };
                    let duties = Box::pin(self.duties(with, dht.as_ref()));
                    let found = tokio::select! {
                        found = duties => found,
                        () = &mut knocked => continue,
                    };
                    drop(turn);
                    if !found.is_empty() {
                        door.add_candidates(found);
                        return Woke::Wanted;
                    }
                    continue;
                }
                Some(at) => with.shared.doze_clock.knock_at(at, &door),
                None => {}
            }
            knocked.await;
        }
    }

    /// What is due now: each tier's announce, a DHT lookup, the seeding notice. Returns the peers found.
    async fn duties(&mut self, with: &DozeWith<'_>, dht: Option<&Arc<dht::Node>>) -> Vec<(SocketAddr, Source)> {
        let shared = with.shared;
        let now = tokio::time::Instant::now();
        let port = shared.listen_addr.port();
        let local_ip: Option<IpAddr> = Some(shared.config.listen.ip()).filter(|ip| !ip.is_unspecified());
        let base = Announce {
            info_hash: with.info_hash,
            peer_id: shared.peer_id,
            downloaded: with.moved.0,
            left: 0,
            uploaded: with.moved.1,
            event: tracker_protocol::AnnounceEvent::None,
            key: 0,
            num_want: 50,
            port,
        };
        let mut found = Vec::new();
        let Dozed { tiers, notice, dht: schedule, .. } = self;
        for tier in tiers.iter_mut().filter(|tier| tier.due <= now) {
            let announcing = tier.announce_dozing(&base, &shared.trackers, shared.config.tracker_timeouts, local_ip);
            let answer = said_in_time(announcing, notice, with.events).await;
            match &answer.result {
                Ok(counts) => {
                    let (peers, seeders, leechers) = *counts;
                    let _ =
                        with.events.send(Event::Announced { tracker: answer.url.clone(), peers, seeders, leechers });
                }
                Err(error) => {
                    let _ =
                        with.events.send(Event::AnnounceFailed { tracker: answer.url.clone(), error: error.clone() });
                }
            }
            (with.record)(&answer.url, answer.result);
            found.extend(answer.peers.into_iter().map(|addr| (addr, Source::Tracker)));
        }
        // Seeding once the trackers have heard of it (or gave up on them): a lookup does not hold it back.
        if tiers.iter().all(TierState::first_done) && notice.take().is_some() {
            let _ = with.events.send(Event::Seeding);
        }
        if let Some(node) = dht
            && schedule.next.is_some_and(|at| at <= now)
        {
            let looking = crate::dht_peers::look_up_once(node, with.info_hash, Some(port), schedule);
            let peers = said_in_time(looking, notice, with.events).await;
            found.extend(
                peers
                    .into_iter()
                    .filter(|addr| !(addr.port() == port && addr.ip().is_loopback()))
                    .map(|addr| (addr, Source::Dht)),
            );
        }
        if notice.is_some_and(|at| at <= tokio::time::Instant::now()) {
            *notice = None;
            let _ = with.events.send(Event::Seeding);
        }
        found
    }

    /// Stopped while it dozed: tells each tier's tracker `stopped` (bounded), and stops serving it.
    pub(crate) async fn goodbye(self, announce: Announce, shared: &Shared) {
        shared.served.close_door(&self.door);
        drop(self.discovery);
        let goodbyes = announcer::goodbye_from(self.tiers, announce, &shared.trackers);
        let _ = tokio::time::timeout(announcer::GOODBYE_WAIT, goodbyes).await;
    }
}

/// Awaits `work`; if the seeding notice falls due meanwhile, it is said then, not after the work.
async fn said_in_time<T>(
    work: impl std::future::Future<Output = T>,
    notice: &mut Option<tokio::time::Instant>,
    events: &EventSink,
) -> T {
    let Some(at) = *notice else { return work.await };
    tokio::pin!(work);
    tokio::select! {
        done = &mut work => done,
        () = tokio::time::sleep_until(at) => {
            *notice = None;
            let _ = events.send(Event::Seeding);
            work.await
        }
    }
}

/// The session's one timer for its dozing torrents: each asks to be knocked at its next announce or lookup, and
/// one task sleeps until the first of them, instead of a timer in every dozing torrent.
#[derive(Debug, Default)]
pub(crate) struct DozeClock {
    due: std::sync::Mutex<std::collections::BTreeMap<(tokio::time::Instant, u64), std::sync::Weak<Door>>>,
    next_id: std::sync::atomic::AtomicU64,
    /// Woken when a deadline earlier than every other is set.
    earlier: tokio::sync::Notify,
}

impl DozeClock {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<(tokio::time::Instant, u64), std::sync::Weak<Door>>> {
        self.due.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Knocks on `door` at `at` (once for each time asked; asking again for the same time adds nothing).
    pub(crate) fn knock_at(&self, at: tokio::time::Instant, door: &Arc<Door>) {
        {
            let mut clock_at = door.clock_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if *clock_at == Some(at) {
                return;
            }
            *clock_at = Some(at);
        }
        let id = self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut due = self.lock();
        let first = due.first_key_value().is_none_or(|(&(first, _), _)| at < first);
        due.insert((at, id), Arc::downgrade(door));
        drop(due);
        if first {
            self.earlier.notify_one();
        }
    }

    /// Knocks on each door as its time comes, for as long as it runs (abort it to stop).
    pub(crate) async fn run(self: Arc<Self>) {
        loop {
            let earlier = self.earlier.notified();
            tokio::pin!(earlier);
            earlier.as_mut().enable();
            let now = tokio::time::Instant::now();
            let mut ripe = Vec::new();
            let next = {
                let mut due = self.lock();
                while let Some(entry) = due.first_entry() {
                    if entry.key().0 > now {
                        break;
                    }
                    ripe.push(entry.remove());
                }
                due.first_key_value().map(|(&(at, _), _)| at)
            };
            for door in ripe.iter().filter_map(std::sync::Weak::upgrade) {
                door.knocked.notify_one();
            }
            match next {
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = earlier => {}
                    }
                }
                None => earlier.await,
            }
        }
    }
}
