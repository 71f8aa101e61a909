//! The swarm registry: who is in which torrent, and which peers each announcer is handed. Plain data:
//! no sockets, no clock (time is a `u32` count of seconds passed in), randomness passed in.
//!
//! Each swarm keeps one list per address family, keyed by the peer's address (source IP and
//! announced port; a hash index is added only past 16 peers), with the seeders kept as a prefix: `[0, seeders)` are seeders,
//! `[seeders, len)` leechers. Handing out peers is then a random window over a contiguous range,
//! O(numwant) whatever the swarm's size, and the random start spreads the load so that the same few
//! seeders are not given to everyone. Moving a peer between the classes is a swap with the boundary.
//!
//! Invariants: a peer is in exactly one family's map, once; `seeders` counts exactly the entries with
//! `left == 0`, which are exactly the first `seeders` entries.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasher, Hash};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::OnceLock;

use rand::Rng;
use tracker_protocol::AnnounceEvent;

/// Caps that bound the registry's memory whatever clients send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Torrents tracked at once in open mode; announces for new torrents past it get an error.
    pub max_torrents: usize,
    /// Peers per torrent and address family; past it, new peers are answered but not recorded.
    pub max_peers_per_torrent: usize,
}

impl Default for Limits {
    /// Room for the load tester's 1,000,000 torrents and 2,000,000 peers, with margin.
    fn default() -> Limits {
        Limits { max_torrents: 2_000_000, max_peers_per_torrent: 100_000 }
    }
}

/// What the registry keeps of one peer besides its address: only what it acts on. Whether the peer is a seeder
/// is its position in the list (seeders come first); peer id, key and transfer totals are read from each announce
/// and never needed again. So a tracked IPv4 peer costs 12 bytes of list entry, not 64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerState {
    /// Seconds (registry clock) of the last announce.
    pub last_seen: u32,
}

/// One announce, as the registry needs it (the address comes separately, typed by family).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announce {
    pub info_hash: [u8; 20],
    pub peer_id: [u8; 20],
    pub key: u32,
    pub uploaded: u64,
    pub downloaded: u64,
    pub left: u64,
    pub event: AnnounceEvent,
    /// Peers wanted, already capped by the caller.
    pub num_want: usize,
}

/// Seeders, completed downloads and leechers of one torrent (the scrape triple, in BEP 15's order).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SwarmCounts {
    pub seeders: u32,
    pub completed: u32,
    pub leechers: u32,
}

/// What an announce changed, for logging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Joined,
    Updated,
    /// A known leecher now has everything (counted in `completed`).
    Finished,
    Left,
    /// The swarm was full: answered, not recorded.
    NotRecorded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AnnounceError {
    #[error("unknown torrent")]
    UnknownTorrent,
    #[error("tracker is full")]
    TooManyTorrents,
}

impl AnnounceError {
    /// The text of the BEP 15 error reply, without allocating.
    pub fn reply_message(self) -> &'static str {
        match self {
            AnnounceError::UnknownTorrent => "unknown torrent",
            AnnounceError::TooManyTorrents => "tracker is full",
        }
    }
}

/// The address families the registry keeps apart: each announcer gets peers of its own family.
pub trait Family: Copy + Eq + Hash + 'static {
    fn list(swarm: &mut TorrentPeers) -> &mut PeerList<Self>;
    fn list_ref(swarm: &TorrentPeers) -> Option<&PeerList<Self>>;
}

impl Family for SocketAddrV4 {
    fn list(swarm: &mut TorrentPeers) -> &mut PeerList<Self> {
        &mut swarm.v4
    }
    fn list_ref(swarm: &TorrentPeers) -> Option<&PeerList<Self>> {
        Some(&swarm.v4)
    }
}

impl Family for SocketAddrV6 {
    fn list(swarm: &mut TorrentPeers) -> &mut PeerList<Self> {
        swarm.v6.get_or_insert_with(Default::default)
    }
    fn list_ref(swarm: &TorrentPeers) -> Option<&PeerList<Self>> {
        swarm.v6.as_deref()
    }
}

/// Lists up to this many peers are searched linearly; longer ones get a hash index. Most swarms are
/// tiny, and a hash table per tiny swarm would cost more than its peers.
const INDEX_FROM: usize = 16;

/// A hasher with one random seed per process, so that every swarm's index does not carry its own
/// 32-byte seed while keys (which clients choose) still cannot be aimed at colliding buckets.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessSeed;

impl BuildHasher for ProcessSeed {
    type Hasher = ahash::AHasher;

    fn build_hasher(&self) -> ahash::AHasher {
        static SEED: OnceLock<ahash::RandomState> = OnceLock::new();
        SEED.get_or_init(ahash::RandomState::new).build_hasher()
    }
}

/// The peers of one family in one torrent: seeders first, then leechers.
#[derive(Debug)]
pub struct PeerList<A> {
    entries: Vec<(A, PeerState)>,
    /// Position of each address in `entries`, kept only past [`INDEX_FROM`] peers. Boxed so that the
    /// usual `None` costs 8 bytes in every tiny swarm instead of a 32-byte empty table.
    #[allow(clippy::box_collection)]
    index: Option<Box<HashMap<A, u32, ProcessSeed>>>,
    seeders: usize,
}

impl<A> Default for PeerList<A> {
    fn default() -> PeerList<A> {
        PeerList { entries: Vec::new(), index: None, seeders: 0 }
    }
}

impl<A: Family> PeerList<A> {
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn leechers(&self) -> usize {
        self.entries.len() - self.seeders
    }

    fn position(&self, address: &A) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(address).map(|&at| at as usize),
            None => self.entries.iter().position(|(known, _)| known == address),
        }
    }

    fn swap(&mut self, a: usize, b: usize) {
        if a == b {
            return;
        }
        self.entries.swap(a, b);
        if let Some(index) = &mut self.index {
            index.insert(self.entries[a].0, a as u32);
            index.insert(self.entries[b].0, b as u32);
        }
    }

    fn push(&mut self, address: A, state: PeerState) -> usize {
        if self.entries.len() < INDEX_FROM {
            // Grow one at a time while small: a lone peer should not pay for four.
            self.entries.reserve_exact(1);
        }
        self.entries.push((address, state));
        let at = self.entries.len() - 1;
        match &mut self.index {
            Some(index) => {
                index.insert(address, at as u32);
            }
            None if self.entries.len() > INDEX_FROM => {
                let index = self.entries.iter().enumerate().map(|(at, (known, _))| (*known, at as u32)).collect();
                self.index = Some(Box::new(index));
            }
            None => {}
        }
        at
    }

    fn swap_remove(&mut self, at: usize) {
        let (gone, _) = self.entries.swap_remove(at);
        if let Some(index) = &mut self.index {
            index.remove(&gone);
            if let Some((moved, _)) = self.entries.get(at) {
                index.insert(*moved, at as u32);
            }
            if self.entries.len() < INDEX_FROM / 2 {
                self.index = None;
                self.entries.shrink_to_fit();
            }
        }
    }

    fn insert(&mut self, address: A, state: PeerState, seeder: bool) -> usize {
        let at = self.push(address, state);
        if seeder {
            self.swap(at, self.seeders);
            self.seeders += 1;
            return self.seeders - 1;
        }
        at
    }

    fn remove(&mut self, at: usize) {
        if at < self.seeders {
            // Move the seeder to the end of the seeder range; the last entry (a leecher, if any) then
            // fills its place, which after the decrement is the first leecher slot.
            self.swap(at, self.seeders - 1);
            self.swap_remove(self.seeders - 1);
            self.seeders -= 1;
        } else {
            self.swap_remove(at);
        }
    }

    /// Updates the entry at `at`, moving it across the boundary when it became a seeder or leecher.
    fn update(&mut self, at: usize, state: PeerState, seeder: bool) -> usize {
        let was_seeder = at < self.seeders;
        let mut at = at;
        if seeder && !was_seeder {
            self.swap(at, self.seeders);
            at = self.seeders;
            self.seeders += 1;
        } else if !seeder && was_seeder {
            self.swap(at, self.seeders - 1);
            at = self.seeders - 1;
            self.seeders -= 1;
        }
        if let Some((_, slot)) = self.entries.get_mut(at) {
            *slot = state;
        }
        at
    }

    /// Appends up to `want` addresses from `range`, starting at a random offset and wrapping, skipping
    /// `skip` (the announcer's own index).
    fn sample(
        &self,
        range: std::ops::Range<usize>,
        want: usize,
        skip: Option<usize>,
        rng: &mut impl Rng,
        out: &mut Vec<A>,
    ) {
        let len = range.len();
        if len == 0 || want == 0 {
            return;
        }
        let start = rng.random_range(0..len);
        let mut taken = 0;
        for step in 0..len {
            let index = range.start + (start + step) % len;
            if Some(index) == skip {
                continue;
            }
            if let Some((address, _)) = self.entries.get(index) {
                out.push(*address);
                taken += 1;
                if taken == want {
                    break;
                }
            }
        }
    }

    /// Drops peers not seen since `cutoff`; returns how many.
    fn expire(&mut self, cutoff: u32) -> usize {
        let mut removed = 0;
        let mut index = 0;
        while index < self.entries.len() {
            let stale = self.entries.get(index).is_some_and(|(_, peer)| peer.last_seen < cutoff);
            if stale {
                // `remove` fills `index` with another entry, which is examined next.
                self.remove(index);
                removed += 1;
            } else {
                index += 1;
            }
        }
        if removed > 0 && self.entries.capacity() > 2 * self.entries.len() + INDEX_FROM {
            self.entries.shrink_to_fit();
        }
        removed
    }
}

/// One torrent's peers (IPv6 allocated only once an IPv6 peer shows up) and its completed count.
#[derive(Debug, Default)]
pub struct TorrentPeers {
    v4: PeerList<SocketAddrV4>,
    v6: Option<Box<PeerList<SocketAddrV6>>>,
    completed: u32,
}

impl TorrentPeers {
    pub fn counts(&self) -> SwarmCounts {
        let v6 = self.v6.as_deref();
        let seeders = self.v4.seeders + v6.map_or(0, |list| list.seeders);
        let leechers = self.v4.leechers() + v6.map_or(0, PeerList::leechers);
        SwarmCounts {
            seeders: u32::try_from(seeders).unwrap_or(u32::MAX),
            completed: self.completed,
            leechers: u32::try_from(leechers).unwrap_or(u32::MAX),
        }
    }

    fn is_empty(&self) -> bool {
        self.v4.len() == 0 && self.v6.as_deref().is_none_or(|list| list.len() == 0)
    }

    fn peer_count(&self) -> usize {
        self.v4.len() + self.v6.as_deref().map_or(0, PeerList::len)
    }
}

/// What [`Registry::totals`] adds up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub torrents: u64,
    pub peers_v4: u64,
    pub peers_v6: u64,
    pub seeders: u64,
    pub leechers: u64,
    pub completed: u64,
}

impl std::ops::AddAssign for Totals {
    fn add_assign(&mut self, other: Totals) {
        self.torrents += other.torrents;
        self.peers_v4 += other.peers_v4;
        self.peers_v6 += other.peers_v6;
        self.seeders += other.seeders;
        self.leechers += other.leechers;
        self.completed += other.completed;
    }
}

/// Result of [`Registry::expire`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expired {
    pub peers: usize,
    pub torrents: usize,
}

/// All swarms. In closed mode only the torrents given at creation are served, and they stay even
/// when empty; in open mode any info-hash is accepted up to [`Limits::max_torrents`], and empty
/// swarms are dropped at expiry.
#[derive(Debug)]
pub struct Registry {
    /// Boxed: the table is sized in powers of two and often half empty, so its slots stay small.
    swarms: HashMap<[u8; 20], Box<TorrentPeers>, ProcessSeed>,
    open: bool,
    limits: Limits,
}

impl Registry {
    /// A registry that accepts any torrent.
    pub fn open(limits: Limits) -> Registry {
        Registry { swarms: HashMap::with_hasher(ProcessSeed), open: true, limits }
    }

    /// A registry that serves only `torrents`.
    pub fn closed(torrents: impl IntoIterator<Item = [u8; 20]>, limits: Limits) -> Registry {
        let swarms = torrents.into_iter().map(|hash| (hash, Box::default())).collect();
        Registry { swarms, open: false, limits }
    }

    /// Records an announce from `address` and appends the peers to hand back to `out`: for a leecher,
    /// seeders first, then other leechers; for a seeder, leechers first, then other seeders when there are
    /// fewer leechers than it asked for; never the announcer itself, never more than `num_want`. A `stopped`
    /// announce removes the peer and gets no peers.
    ///
    /// A seeder is filled up with seeders because `left = 0` does not always mean complete: aria2, rqbit and
    /// WebTorrent announce it while they fetch a magnet link's metadata, and with leechers alone they would get
    /// nobody to fetch it from. Seeders still get every leecher there is room for first.
    pub fn announce<A: Family>(
        &mut self,
        address: A,
        announce: &Announce,
        now: u32,
        rng: &mut impl Rng,
        out: &mut Vec<A>,
    ) -> Result<(SwarmCounts, Change), AnnounceError> {
        let tracked = self.swarms.len();
        let swarm = match self.swarms.entry(announce.info_hash) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(_) if !self.open => return Err(AnnounceError::UnknownTorrent),
            Entry::Vacant(_) if announce.event == AnnounceEvent::Stopped => {
                return Ok((SwarmCounts::default(), Change::Left));
            }
            Entry::Vacant(_) if tracked >= self.limits.max_torrents => return Err(AnnounceError::TooManyTorrents),
            Entry::Vacant(entry) => entry.insert(Box::default()),
        };
        let state = PeerState { last_seen: now };
        let seeder = announce.left == 0;
        let mut finished = false;
        let list = A::list(swarm);
        let (own_index, change) = match list.position(&address) {
            Some(index) if announce.event == AnnounceEvent::Stopped => {
                list.remove(index);
                (None, Change::Left)
            }
            Some(index) => {
                finished = index >= list.seeders && seeder;
                let index = list.update(index, state, seeder);
                (Some(index), if finished { Change::Finished } else { Change::Updated })
            }
            None if announce.event == AnnounceEvent::Stopped => (None, Change::Left),
            None if list.len() >= self.limits.max_peers_per_torrent => (None, Change::NotRecorded),
            None => (Some(list.insert(address, state, seeder)), Change::Joined),
        };

        if change != Change::Left {
            let want = announce.num_want;
            let before = out.len();
            let (first, then) = if seeder {
                (list.seeders..list.len(), 0..list.seeders)
            } else {
                (0..list.seeders, list.seeders..list.len())
            };
            list.sample(first, want, own_index, rng, out);
            let still = want - (out.len() - before);
            list.sample(then, still, own_index, rng, out);
        }
        if finished {
            swarm.completed = swarm.completed.saturating_add(1);
        }
        Ok((swarm.counts(), change))
    }

    /// Serves `info_hash` from now on (closed mode: a torrent added on reload).
    pub fn allow(&mut self, info_hash: [u8; 20]) {
        self.swarms.entry(info_hash).or_default();
    }

    /// Stops serving `info_hash` and drops its swarm (closed mode: a torrent removed on reload).
    pub fn disallow(&mut self, info_hash: &[u8; 20]) {
        self.swarms.remove(info_hash);
    }

    /// Drops the peers and counts of every swarm whose hash `refused` names (an access list changed): in open mode
    /// the swarm goes; in closed mode it stays, empty, as named torrents do. Returns the peers dropped.
    pub fn forget(&mut self, refused: impl Fn(&[u8; 20]) -> bool) -> usize {
        let mut dropped = 0;
        if self.open {
            self.swarms.retain(|hash, swarm| {
                let keep = !refused(hash);
                if !keep {
                    dropped += swarm.peer_count();
                }
                keep
            });
        } else {
            for (hash, swarm) in &mut self.swarms {
                if refused(hash) && (swarm.completed > 0 || !swarm.is_empty()) {
                    dropped += swarm.peer_count();
                    **swarm = TorrentPeers::default();
                }
            }
        }
        dropped
    }

    /// The scrape triple of a torrent, if it is tracked.
    pub fn scrape(&self, info_hash: &[u8; 20]) -> Option<SwarmCounts> {
        self.swarms.get(info_hash).map(|swarm| swarm.counts())
    }

    /// What the registry knows of one peer, if anything.
    pub fn peer<A: Family>(&self, info_hash: &[u8; 20], address: &A) -> Option<&PeerState> {
        let list = A::list_ref(self.swarms.get(info_hash)?)?;
        list.position(address).and_then(|at| list.entries.get(at)).map(|(_, state)| state)
    }

    /// Every peer of a torrent with whether it seeds (none if it is not tracked): what a hybrid torrent's two
    /// swarms are joined by.
    pub fn endpoints(&self, info_hash: &[u8; 20]) -> Vec<(SocketAddr, bool)> {
        let Some(swarm) = self.swarms.get(info_hash) else { return Vec::new() };
        let v4 =
            swarm.v4.entries.iter().enumerate().map(|(at, (addr, _))| (SocketAddr::V4(*addr), at < swarm.v4.seeders));
        let v6 = swarm.v6.as_deref().into_iter().flat_map(|list| {
            list.entries.iter().enumerate().map(|(at, (addr, _))| (SocketAddr::V6(*addr), at < list.seeders))
        });
        v4.chain(v6).collect()
    }

    /// Whether a tracked peer is a seeder; `None` if it is not tracked.
    pub fn is_seeder<A: Family>(&self, info_hash: &[u8; 20], address: &A) -> Option<bool> {
        let list = A::list_ref(self.swarms.get(info_hash)?)?;
        list.position(address).map(|at| at < list.seeders)
    }

    /// Drops every peer last seen before `cutoff`, and in open mode the swarms left empty. One pass
    /// over everything: call it every so often (a batch), not per request.
    pub fn expire(&mut self, cutoff: u32) -> Expired {
        let mut expired = Expired::default();
        for swarm in self.swarms.values_mut() {
            expired.peers += swarm.v4.expire(cutoff);
            if let Some(v6) = swarm.v6.as_deref_mut() {
                expired.peers += v6.expire(cutoff);
                if v6.len() == 0 {
                    swarm.v6 = None;
                }
            }
        }
        if self.open {
            let before = self.swarms.len();
            self.swarms.retain(|_, swarm| !swarm.is_empty());
            expired.torrents = before - self.swarms.len();
        }
        expired
    }

    pub fn torrent_count(&self) -> usize {
        self.swarms.len()
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn peer_count(&self) -> usize {
        self.swarms.values().map(|swarm| swarm.peer_count()).sum()
    }

    /// Totals over every swarm: (IPv4 peers, IPv6 peers, seeders, leechers, completed downloads).
    pub fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        for swarm in self.swarms.values() {
            totals.peers_v4 += swarm.v4.len() as u64;
            totals.peers_v6 += swarm.v6.as_deref().map_or(0, PeerList::len) as u64;
            let counts = swarm.counts();
            totals.seeders += u64::from(counts.seeders);
            totals.leechers += u64::from(counts.leechers);
            totals.completed += u64::from(counts.completed);
        }
        totals.torrents = self.swarms.len() as u64;
        totals
    }

    /// Every tracked torrent with its counts, in no particular order.
    pub fn torrents(&self) -> impl Iterator<Item = (&[u8; 20], SwarmCounts)> {
        self.swarms.iter().map(|(hash, swarm)| (hash, swarm.counts()))
    }
}

#[cfg(test)]
#[path = "swarm_tests.rs"]
mod tests;
