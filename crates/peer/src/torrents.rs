//! The torrents one listener serves, found by the info-hash an incoming peer's handshake names: a torrent's v1
//! info-hash, or a hybrid's truncated v2 one. One port, one peer id, any number of torrents; a handshake for an
//! info-hash nobody here serves is refused. A torrent is in the table from its start to its end, no longer.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;

use crate::magnet::IncomingPeer;
use crate::swarm::Swarm;

/// The torrents a session serves, by info-hash, and the magnet links whose metadata is being fetched.
#[derive(Default)]
pub struct Torrents {
    by_hash: Mutex<HashMap<[u8; 20], Arc<Swarm>>>,
    /// Where the peers that dial us for a magnet link's info-hash go while its metadata is fetched.
    fetching: Mutex<HashMap<[u8; 20], mpsc::Sender<IncomingPeer>>>,
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

    fn lock(&self) -> MutexGuard<'_, HashMap<[u8; 20], Arc<Swarm>>> {
        self.by_hash.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Serves `swarm` under its info-hash (and a hybrid's truncated v2 one).
    pub(crate) fn add(&self, swarm: &Arc<Swarm>) -> Result<(), AlreadyServed> {
        let mut by_hash = self.lock();
        let hashes = std::iter::once(swarm.info_hash).chain(swarm.info_hash_v2);
        if let Some(taken) = hashes.clone().find(|hash| by_hash.contains_key(hash)) {
            return Err(AlreadyServed(taken.iter().map(|byte| format!("{byte:02x}")).collect()));
        }
        for hash in hashes {
            by_hash.insert(hash, swarm.clone());
        }
        Ok(())
    }

    /// Stops serving `swarm`: new connections for it are refused.
    pub(crate) fn remove(&self, swarm: &Swarm) {
        self.lock().retain(|_, served| !std::ptr::eq(Arc::as_ptr(served), swarm));
    }

    /// The torrent a handshake for `info_hash` is for.
    pub(crate) fn find(&self, info_hash: &[u8; 20]) -> Option<Arc<Swarm>> {
        self.lock().get(info_hash).cloned()
    }

    /// Where a handshake for `info_hash` goes: a running torrent, or a magnet link's metadata fetch.
    pub(crate) fn route(&self, info_hash: &[u8; 20]) -> Option<Route> {
        if let Some(swarm) = self.find(info_hash) {
            return Some(Route::Swarm(swarm));
        }
        let fetching = self.fetching.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        fetching.get(info_hash).cloned().map(Route::Fetch)
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
        let swarms: Vec<Arc<Swarm>> = self.lock().values().cloned().collect();
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
        let mut distinct: Vec<*const Swarm> = by_hash.values().map(Arc::as_ptr).collect();
        distinct.sort_unstable();
        distinct.dedup();
        distinct.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}
