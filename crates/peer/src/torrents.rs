//! The torrents one listener serves, found by the info-hash an incoming peer's handshake names: a torrent's v1
//! info-hash, or a hybrid's truncated v2 one. One port, one peer id, any number of torrents; a handshake for an
//! info-hash nobody here serves is refused. A torrent is in the table from its start to its end, no longer; while
//! it dozes (see [`Door`]) the table holds its door instead of its swarm, and a peer that comes knocks.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::magnet::IncomingPeer;
use crate::sources::Source;
use crate::swarm::Swarm;

/// How long a peer that dialled a dozing torrent waits for it to wake before it is refused.
const WAKE_WAIT: Duration = Duration::from_secs(10);

/// Most peer addresses a dozing torrent keeps for its waking (LSD neighbours, mostly).
const MAX_WAITING_CANDIDATES: usize = 64;

/// The torrents a session serves, by info-hash, and the magnet links whose metadata is being fetched.
#[derive(Default)]
pub struct Torrents {
    by_hash: Mutex<HashMap<[u8; 20], Served>>,
    /// Where the peers that dial us for a magnet link's info-hash go while its metadata is fetched.
    fetching: Mutex<HashMap<[u8; 20], mpsc::Sender<IncomingPeer>>>,
}

/// A torrent the table serves: running, with its swarm, or dozing, with the door that wakes it.
#[derive(Clone)]
enum Served {
    Running(Arc<Swarm>),
    Dozing(Arc<Door>),
}

/// How a dozing torrent is woken: a seeding torrent with no peer, no candidate and no announce under way lets its
/// swarm, its connection table and its announcers go (see `torrent::Running::until_over`), and waits on its door
/// for the next announce, a peer that dials it, or a neighbour LSD names. Thousands of idle torrents then hold
/// a door each, not a swarm.
#[derive(Debug, Default)]
pub(crate) struct Door {
    /// Woken when there is something to look at: a swarm is wanted, the user asked for something, or its next
    /// announce is due (the session's [`crate::dozing::DozeClock`]).
    pub(crate) knocked: tokio::sync::Notify,
    /// A peer dialled it, a candidate came, or its files changed: a swarm is wanted.
    wanted: std::sync::atomic::AtomicBool,
    /// When the session's clock ([`crate::dozing::DozeClock`]) is to knock, as it was last asked.
    pub(crate) clock_at: Mutex<Option<tokio::time::Instant>>,
    /// Woken once the torrent serves again.
    awake: tokio::sync::Notify,
    /// Addresses named while it dozed, for its waking run to dial.
    waiting: Mutex<Vec<(SocketAddr, Source)>>,
}

impl Door {
    /// Wants the torrent awake, with a swarm.
    pub(crate) fn want(&self) {
        self.wanted.store(true, std::sync::atomic::Ordering::Release);
        self.knocked.notify_one();
    }

    /// Whether a swarm was wanted since the last look.
    pub(crate) fn take_wanted(&self) -> bool {
        self.wanted.swap(false, std::sync::atomic::Ordering::AcqRel)
    }

    /// Keeps `found` for the torrent's waking (up to [`MAX_WAITING_CANDIDATES`]).
    pub(crate) fn add_candidates(&self, found: Vec<(SocketAddr, Source)>) {
        let mut waiting = self.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (addr, source) in found {
            if waiting.len() < MAX_WAITING_CANDIDATES && !waiting.iter().any(|(known, _)| *known == addr) {
                waiting.push((addr, source));
            }
        }
    }

    /// The addresses named while the torrent dozed.
    pub(crate) fn take_candidates(&self) -> Vec<(SocketAddr, Source)> {
        std::mem::take(&mut *self.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

/// Where an incoming handshake goes.
pub(crate) enum Route {
    Swarm(Arc<Swarm>),
    Fetch(mpsc::Sender<IncomingPeer>),
}

impl std::fmt::Debug for Torrents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Torrents").field("served", &self.len()).finish()
    }
}

/// A torrent given twice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the torrent {0} is already served")]
pub struct AlreadyServed(pub String);

impl Torrents {
    #[must_use]
    pub fn new() -> Arc<Torrents> {
        Arc::new(Torrents::default())
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<[u8; 20], Served>> {
        self.by_hash.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Serves `swarm` under its info-hash (and a hybrid's truncated v2 one), in place of its door if it dozed.
    pub(crate) fn add(&self, swarm: &Arc<Swarm>) -> Result<(), AlreadyServed> {
        let mut by_hash = self.lock();
        let hashes = std::iter::once(swarm.info_hash).chain(swarm.info_hash_v2);
        if let Some(taken) = hashes.clone().find(|hash| matches!(by_hash.get(hash), Some(Served::Running(_)))) {
            return Err(AlreadyServed(taken.iter().map(|byte| format!("{byte:02x}")).collect()));
        }
        let mut door = None;
        for hash in hashes {
            if let Some(Served::Dozing(dozing)) = by_hash.insert(hash, Served::Running(swarm.clone())) {
                door = Some(dozing);
            }
        }
        drop(by_hash);
        if let Some(door) = door {
            door.awake.notify_waiters();
        }
        Ok(())
    }

    /// Stops serving `swarm`: new connections for it are refused.
    pub(crate) fn remove(&self, swarm: &Swarm) {
        self.lock().retain(
            |_, served| !matches!(served, Served::Running(running) if std::ptr::eq(Arc::as_ptr(running), swarm)),
        );
    }

    /// Puts `door` in the place of `swarm`, which is letting go: a peer that dials it now knocks instead.
    pub(crate) fn doze(&self, swarm: &Swarm, door: &Arc<Door>) {
        for served in self.lock().values_mut() {
            if matches!(served, Served::Running(running) if std::ptr::eq(Arc::as_ptr(running), swarm)) {
                *served = Served::Dozing(door.clone());
            }
        }
    }

    /// Serves a torrent that starts dozing under `hashes`: a peer that dials it knocks on `door`.
    pub(crate) fn add_door(&self, hashes: &[[u8; 20]], door: &Arc<Door>) {
        let mut by_hash = self.lock();
        for hash in hashes {
            by_hash.entry(*hash).or_insert_with(|| Served::Dozing(door.clone()));
        }
    }

    /// Stops serving whatever dozing torrent goes by `hashes` (one that ended on an error before its door was
    /// handed back).
    pub(crate) fn close_doors_of(&self, hashes: &[[u8; 20]]) {
        let mut by_hash = self.lock();
        for hash in hashes {
            if matches!(by_hash.get(hash), Some(Served::Dozing(_))) {
                by_hash.remove(hash);
            }
        }
    }

    /// Stops serving the dozing torrent behind `door`.
    pub(crate) fn close_door(&self, door: &Arc<Door>) {
        self.lock().retain(|_, served| !matches!(served, Served::Dozing(dozing) if Arc::ptr_eq(dozing, door)));
    }

    /// Where a handshake for `info_hash` goes: a running torrent (a dozing one is woken, within [`WAKE_WAIT`]),
    /// or a magnet link's metadata fetch.
    pub(crate) async fn route(&self, info_hash: &[u8; 20]) -> Option<Route> {
        let served = self.lock().get(info_hash).cloned();
        match served {
            Some(Served::Running(swarm)) => return Some(Route::Swarm(swarm)),
            Some(Served::Dozing(door)) => return self.wake(info_hash, &door).await.map(Route::Swarm),
            None => {}
        }
        let fetching = self.fetching.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        fetching.get(info_hash).cloned().map(Route::Fetch)
    }

    /// Wakes the torrent behind `door` and waits (a while) until it serves again.
    async fn wake(&self, info_hash: &[u8; 20], door: &Door) -> Option<Arc<Swarm>> {
        let waking = async {
            loop {
                let awake = door.awake.notified();
                tokio::pin!(awake);
                // Registered before the look: a waking in between is not missed.
                awake.as_mut().enable();
                match self.lock().get(info_hash) {
                    Some(Served::Running(swarm)) => return Some(swarm.clone()),
                    Some(Served::Dozing(_)) => door.want(),
                    None => return None,
                }
                awake.await;
            }
        };
        tokio::time::timeout(WAKE_WAIT, waking).await.ok().flatten()
    }

    /// A peer for the torrent `info_hash` from `source` (LSD): a candidate of its swarm if it runs; kept for its
    /// waking, which it asks for, if it dozes.
    pub(crate) fn offer(&self, info_hash: &[u8; 20], addr: SocketAddr, source: Source) {
        let served = self.lock().get(info_hash).cloned();
        match served {
            Some(Served::Running(swarm)) => swarm.add_candidate(addr, source),
            Some(Served::Dozing(door)) => {
                door.add_candidates(vec![(addr, source)]);
                door.want();
            }
            None => {}
        }
    }

    /// Sends the peers that dial us for any of `hashes` to a metadata fetch, until [`Torrents::stop_fetching`].
    pub(crate) fn start_fetching(&self, hashes: &[[u8; 20]], to: &mpsc::Sender<IncomingPeer>) {
        let mut fetching = self.fetching.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for hash in hashes {
            fetching.insert(*hash, to.clone());
        }
    }

    pub(crate) fn stop_fetching(&self, hashes: &[[u8; 20]]) {
        let mut fetching = self.fetching.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for hash in hashes {
            fetching.remove(hash);
        }
    }

    /// Established connections with `ip`, over every torrent.
    pub(crate) fn connections_with(&self, ip: IpAddr) -> usize {
        let swarms: Vec<Arc<Swarm>> = self
            .lock()
            .values()
            .filter_map(|served| match served {
                Served::Running(swarm) => Some(swarm.clone()),
                Served::Dozing(_) => None,
            })
            .collect();
        let mut seen = Vec::new();
        let mut total = 0;
        for swarm in swarms {
            // A hybrid is listed under two hashes: count it once.
            if !seen.iter().any(|counted| Arc::ptr_eq(counted, &swarm)) {
                total += swarm.connections_with(ip);
                seen.push(swarm);
            }
        }
        total
    }

    /// Torrents served.
    #[must_use]
    pub fn len(&self) -> usize {
        let by_hash = self.lock();
        let mut distinct: Vec<*const ()> = by_hash
            .values()
            .map(|served| match served {
                Served::Running(swarm) => Arc::as_ptr(swarm).cast::<()>(),
                Served::Dozing(door) => Arc::as_ptr(door).cast::<()>(),
            })
            .collect();
        distinct.sort_unstable();
        distinct.dedup();
        distinct.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}
