//! The registry split by info-hash into shards, each behind a lock of its own, so that workers on many cores share
//! one set of swarms and contend only when two of them touch the same shard at the same instant (opentracker's
//! locked buckets). An announce holds one shard's lock for a hash-map lookup and a sample: well under a
//! microsecond. With 256 shards and 16 workers, two workers meet on a shard in about 6 % of announces, each for
//! that short a time, so the design scales near-linearly without the message passing of aquatic's separate socket
//! and swarm workers, and the HTTP front end can use the same registry directly.

use std::sync::{Mutex, MutexGuard};

use crate::swarm::{Expired, Limits, Registry, SwarmCounts, Totals};

/// Shards: a power of two, many more than any machine has cores.
pub const SHARDS: usize = 256;

/// Every swarm the tracker knows, in [`SHARDS`] locked parts.
#[derive(Debug)]
pub struct Shards {
    shards: Box<[Mutex<Registry>]>,
}

impl Shards {
    /// Shards that accept any torrent; `limits.max_torrents` is split evenly between them.
    pub fn open(limits: Limits) -> Shards {
        let limits = per_shard(limits);
        Shards { shards: (0..SHARDS).map(|_| Mutex::new(Registry::open(limits))).collect() }
    }

    /// Shards that serve only `torrents`.
    pub fn closed(torrents: impl IntoIterator<Item = [u8; 20]>, limits: Limits) -> Shards {
        let mut by_shard: Vec<Vec<[u8; 20]>> = vec![Vec::new(); SHARDS];
        for hash in torrents {
            by_shard[index(&hash)].push(hash);
        }
        Shards { shards: by_shard.into_iter().map(|hashes| Mutex::new(Registry::closed(hashes, limits))).collect() }
    }

    /// The shard that holds `info_hash`, locked.
    pub fn lock(&self, info_hash: &[u8; 20]) -> MutexGuard<'_, Registry> {
        lock(&self.shards[index(info_hash)])
    }

    /// The scrape triple of a torrent, if it is tracked.
    pub fn scrape(&self, info_hash: &[u8; 20]) -> Option<SwarmCounts> {
        self.lock(info_hash).scrape(info_hash)
    }

    /// The counts of a hybrid torrent's two swarms (its v1 and truncated v2 info-hashes) as one: each address
    /// counted once (a client that announces both hashes is one peer), a seeder if it seeds in either; completed
    /// is the larger count, as such a client reports its finish in both. The two shards are locked one after
    /// the other, never together.
    pub fn scrape_joined(&self, first: &[u8; 20], second: &[u8; 20]) -> SwarmCounts {
        let mut completed = 0;
        let mut seen: std::collections::HashMap<std::net::SocketAddr, bool> = std::collections::HashMap::new();
        for hash in [first, second] {
            let registry = self.lock(hash);
            completed = completed.max(registry.scrape(hash).map_or(0, |counts| counts.completed));
            for (addr, seeder) in registry.endpoints(hash) {
                *seen.entry(addr).or_default() |= seeder;
            }
        }
        let seeders = seen.values().filter(|&&seeder| seeder).count();
        SwarmCounts {
            seeders: u32::try_from(seeders).unwrap_or(u32::MAX),
            leechers: u32::try_from(seen.len() - seeders).unwrap_or(u32::MAX),
            completed,
        }
    }

    /// Drops every peer last seen before `cutoff`, one shard at a time (see [`Registry::expire`]).
    pub fn expire(&self, cutoff: u32) -> Expired {
        let mut total = Expired::default();
        for shard in &self.shards {
            let expired = lock(shard).expire(cutoff);
            total.peers += expired.peers;
            total.torrents += expired.torrents;
        }
        total
    }

    /// [`Registry::forget`] on every shard, one at a time. Returns the peers dropped.
    pub fn forget(&self, refused: impl Fn(&[u8; 20]) -> bool) -> usize {
        self.shards.iter().map(|shard| lock(shard).forget(&refused)).sum()
    }

    pub fn torrent_count(&self) -> usize {
        self.shards.iter().map(|shard| lock(shard).torrent_count()).sum()
    }

    pub fn peer_count(&self) -> usize {
        self.shards.iter().map(|shard| lock(shard).peer_count()).sum()
    }

    /// Totals over every shard.
    pub fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        for shard in &self.shards {
            totals += lock(shard).totals();
        }
        totals
    }

    /// Every tracked torrent with its counts, in no particular order.
    pub fn torrents(&self) -> Vec<([u8; 20], SwarmCounts)> {
        let mut all = Vec::new();
        for shard in &self.shards {
            all.extend(lock(shard).torrents().map(|(hash, counts)| (*hash, counts)));
        }
        all
    }
}

/// Info-hashes are SHA-1 (or truncated SHA-256) digests, uniform in every byte: the first two pick the shard.
fn index(info_hash: &[u8; 20]) -> usize {
    usize::from(u16::from_le_bytes([info_hash[0], info_hash[1]])) % SHARDS
}

fn per_shard(limits: Limits) -> Limits {
    Limits { max_torrents: limits.max_torrents.div_ceil(SHARDS), ..limits }
}

/// A shard's lock; a worker that panicked while holding it left consistent data (no announce is half-applied
/// across a panic point), so the poison is ignored.
fn lock(shard: &Mutex<Registry>) -> MutexGuard<'_, Registry> {
    shard.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_spread_over_every_shard_and_closed_shards_know_only_theirs() {
        let hashes: Vec<[u8; 20]> = (0..4096u32)
            .map(|n| {
                let mut hash = [0u8; 20];
                hash[..4].copy_from_slice(&n.wrapping_mul(2_654_435_761).to_le_bytes());
                hash
            })
            .collect();
        let shards = Shards::closed(hashes.iter().copied(), Limits::default());
        assert_eq!(shards.torrent_count(), hashes.len());
        let used = shards.shards.iter().filter(|shard| lock(shard).torrent_count() > 0).count();
        assert_eq!(used, SHARDS);
        assert!(hashes.iter().all(|hash| shards.scrape(hash).is_some()));
        assert_eq!(shards.scrape(&[0xEE; 20]), None);
    }

    #[test]
    fn the_torrent_cap_is_split_between_shards() {
        let shards = Shards::open(Limits { max_torrents: 1000, ..Limits::default() });
        assert_eq!(lock(&shards.shards[0]).limits().max_torrents, 1000usize.div_ceil(SHARDS));
    }
}
