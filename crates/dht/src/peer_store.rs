//! The peers announced to us (announce_peer, BEP 5), per info-hash, for the `values` of our get_peers replies.
//!
//! Bounded whatever arrives: at most [`PeerStoreLimits::max_torrents`] info-hashes (default 2,000, libtorrent's
//! `dht_max_torrents`), each with at most [`PeerStoreLimits::max_peers_per_torrent`] peers (default 100, what one
//! reply can carry), and at most [`PeerStoreLimits::max_peers_per_ip`] of those from one IP address (default 4), so
//! one host with one valid token cannot fill a swarm by announcing a hundred ports. When full, the entry announced
//! longest ago goes: the info-hash whose latest announce is oldest, the peer whose announce is oldest. Peers expire
//! [`PeerStoreLimits::peer_ttl`] (30 minutes) after their last announce; clients re-announce about every 15.
//!
//! Expired peers are never returned. They are removed when their swarm is announced to, and all at once by
//! [`PeerStore::expire`], which the node loop calls every minute or so; nothing scans the store per request.
//! One store holds one address family (BEP 32 keeps IPv4 and IPv6 peers in separate DHTs).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::seq::IndexedRandom;

/// Caps that bound the store's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerStoreLimits {
    /// Info-hashes kept.
    pub max_torrents: usize,
    /// Peers kept per info-hash.
    pub max_peers_per_torrent: usize,
    /// Peers kept per info-hash and IP address. Tests with several peers on one loopback address may raise it.
    pub max_peers_per_ip: usize,
    /// How long an announce is kept.
    pub peer_ttl: Duration,
}

impl Default for PeerStoreLimits {
    fn default() -> Self {
        PeerStoreLimits {
            max_torrents: 2000,
            max_peers_per_torrent: 100,
            max_peers_per_ip: 4,
            peer_ttl: Duration::from_secs(30 * 60),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct StoredPeer {
    addr: SocketAddr,
    announced: Instant,
}

#[derive(Debug, Clone)]
struct AnnouncedPeers {
    peers: Vec<StoredPeer>,
    /// The latest announce to this swarm: the swarm announced to longest ago is evicted first.
    announced: Instant,
}

/// Info-hash to the peers announced for it.
#[derive(Debug, Clone, Default)]
pub struct PeerStore {
    limits: PeerStoreLimits,
    swarms: HashMap<[u8; 20], AnnouncedPeers>,
}

impl PeerStore {
    /// An empty store.
    #[must_use]
    pub fn new(limits: PeerStoreLimits) -> Self {
        PeerStore { limits, swarms: HashMap::new() }
    }

    /// Records that the peer at `addr` (the datagram's source IP, with the announced or implied port) is in the
    /// swarm of `info_hash`. The caller checks the token first.
    pub fn announce(&mut self, info_hash: [u8; 20], addr: SocketAddr, now: Instant) {
        let limits = self.limits;
        if limits.max_torrents == 0 || limits.max_peers_per_torrent == 0 || limits.max_peers_per_ip == 0 {
            return;
        }
        if !self.swarms.contains_key(&info_hash) && self.swarms.len() >= limits.max_torrents {
            let oldest = self.swarms.iter().min_by_key(|(_, swarm)| swarm.announced).map(|(hash, _)| *hash);
            if let Some(oldest) = oldest {
                self.swarms.remove(&oldest);
            }
        }
        let swarm =
            self.swarms.entry(info_hash).or_insert_with(|| AnnouncedPeers { peers: Vec::new(), announced: now });
        swarm.announced = swarm.announced.max(now);
        swarm.peers.retain(|peer| now.saturating_duration_since(peer.announced) < limits.peer_ttl);
        if let Some(peer) = swarm.peers.iter_mut().find(|peer| peer.addr == addr) {
            peer.announced = now;
            return;
        }
        let same_ip = |peer: &&StoredPeer| peer.addr.ip().to_canonical() == addr.ip().to_canonical();
        let evict = if swarm.peers.iter().filter(same_ip).count() >= limits.max_peers_per_ip {
            oldest_where(&swarm.peers, |peer| same_ip(&peer))
        } else if swarm.peers.len() >= limits.max_peers_per_torrent {
            oldest_where(&swarm.peers, |_| true)
        } else {
            None
        };
        if let Some(pos) = evict {
            swarm.peers.swap_remove(pos);
        }
        swarm.peers.push(StoredPeer { addr, announced: now });
    }

    /// Up to `max` peers of `info_hash` that have not expired, a random choice when there are more.
    pub fn get(&self, info_hash: &[u8; 20], max: usize, now: Instant, rng: &mut impl rand::Rng) -> Vec<SocketAddr> {
        let Some(swarm) = self.swarms.get(info_hash) else { return Vec::new() };
        let live: Vec<SocketAddr> = swarm
            .peers
            .iter()
            .filter(|peer| now.saturating_duration_since(peer.announced) < self.limits.peer_ttl)
            .map(|peer| peer.addr)
            .collect();
        if live.len() <= max {
            return live;
        }
        live.choose_multiple(rng, max).copied().collect()
    }

    /// Drops expired peers, and info-hashes left with none.
    pub fn expire(&mut self, now: Instant) {
        let ttl = self.limits.peer_ttl;
        self.swarms.retain(|_, swarm| {
            swarm.peers.retain(|peer| now.saturating_duration_since(peer.announced) < ttl);
            !swarm.peers.is_empty()
        });
    }

    /// Info-hashes held (some may hold only expired peers until [`PeerStore::expire`] runs).
    #[must_use]
    pub fn torrent_count(&self) -> usize {
        self.swarms.len()
    }

    /// Peers held for `info_hash`, expired or not.
    #[must_use]
    pub fn peer_count(&self, info_hash: &[u8; 20]) -> usize {
        self.swarms.get(info_hash).map_or(0, |swarm| swarm.peers.len())
    }
}

fn oldest_where(peers: &[StoredPeer], keep: impl Fn(&StoredPeer) -> bool) -> Option<usize> {
    peers.iter().enumerate().filter(|(_, peer)| keep(peer)).min_by_key(|(_, peer)| peer.announced).map(|(pos, _)| pos)
}
