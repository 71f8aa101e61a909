//! The peer store: announced peers per info-hash, expiring, bounded, handed out as random subsets.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use dht::{PeerStore, PeerStoreLimits};
use rand::SeedableRng;
use rand::rngs::SmallRng;

const MINUTE: Duration = Duration::from_secs(60);
const HASH: [u8; 20] = [1; 20];

fn peer(n: u32, port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::from(0x0a00_0000 + n), port))
}

fn rng() -> SmallRng {
    SmallRng::seed_from_u64(3)
}

#[test]
fn announced_peers_are_handed_out_until_they_expire() {
    let t0 = Instant::now();
    let mut store = PeerStore::default();
    store.announce(HASH, peer(1, 6881), t0);
    store.announce(HASH, peer(2, 6881), t0 + 10 * MINUTE);
    let mut got = store.get(&HASH, 50, t0 + 20 * MINUTE, &mut rng());
    got.sort();
    assert_eq!(got, vec![peer(1, 6881), peer(2, 6881)]);
    assert_eq!(store.get(&HASH, 50, t0 + 30 * MINUTE, &mut rng()), vec![peer(2, 6881)]);
    assert!(store.get(&[2; 20], 50, t0, &mut rng()).is_empty());
    // A re-announce keeps a peer alive.
    store.announce(HASH, peer(2, 6881), t0 + 35 * MINUTE);
    assert_eq!(store.get(&HASH, 50, t0 + 60 * MINUTE, &mut rng()), vec![peer(2, 6881)]);
    // An announce clears its swarm's expired peers; expire() clears everything expired.
    assert_eq!(store.peer_count(&HASH), 1);
    store.announce([2; 20], peer(3, 6881), t0);
    store.expire(t0 + 61 * MINUTE);
    assert_eq!((store.torrent_count(), store.peer_count(&HASH)), (1, 1));
    store.expire(t0 + 70 * MINUTE);
    assert_eq!(store.torrent_count(), 0);
}

#[test]
fn get_returns_a_random_subset() {
    let t0 = Instant::now();
    let mut store = PeerStore::default();
    for n in 0..100 {
        store.announce(HASH, peer(n, 6881), t0);
    }
    let mut rng = rng();
    let first: HashSet<SocketAddr> = store.get(&HASH, 20, t0, &mut rng).into_iter().collect();
    let second: HashSet<SocketAddr> = store.get(&HASH, 20, t0, &mut rng).into_iter().collect();
    assert_eq!((first.len(), second.len()), (20, 20));
    assert_ne!(first, second);
    assert!(first.iter().all(|addr| (0..100).any(|n| peer(n, 6881) == *addr)));
}

#[test]
fn a_full_swarm_drops_its_oldest_peer() {
    let t0 = Instant::now();
    let mut store = PeerStore::default();
    for n in 0..150u32 {
        store.announce(HASH, peer(n, 6881), t0 + Duration::from_secs(u64::from(n)));
    }
    assert_eq!(store.peer_count(&HASH), 100);
    let kept: HashSet<SocketAddr> = store.get(&HASH, 200, t0 + MINUTE * 3, &mut rng()).into_iter().collect();
    let expected: HashSet<SocketAddr> = (50..150).map(|n| peer(n, 6881)).collect();
    assert_eq!(kept, expected);
}

#[test]
fn one_address_cannot_fill_a_swarm() {
    let t0 = Instant::now();
    let mut store = PeerStore::default();
    for port in 1..=100u16 {
        store.announce(HASH, peer(1, port), t0 + Duration::from_secs(u64::from(port)));
    }
    let mut kept = store.get(&HASH, 200, t0 + MINUTE * 2, &mut rng());
    kept.sort();
    assert_eq!(kept, (97..=100).map(|port| peer(1, port)).collect::<Vec<_>>(), "the 4 latest ports");
    // Loopback tests may allow more.
    let limits = PeerStoreLimits { max_peers_per_ip: 100, ..PeerStoreLimits::default() };
    let mut store = PeerStore::new(limits);
    for port in 1..=100u16 {
        store.announce(HASH, peer(1, port), t0);
    }
    assert_eq!(store.peer_count(&HASH), 100);
}

#[test]
fn a_full_store_drops_the_torrent_announced_longest_ago() {
    let t0 = Instant::now();
    let limits = PeerStoreLimits { max_torrents: 3, ..PeerStoreLimits::default() };
    let mut store = PeerStore::new(limits);
    for n in 0..3u8 {
        store.announce([n; 20], peer(1, 6881), t0 + Duration::from_secs(u64::from(n)));
    }
    // Torrent 0 is announced to again, so torrent 1 is now the stalest.
    store.announce([0; 20], peer(2, 6881), t0 + MINUTE);
    store.announce([9; 20], peer(3, 6881), t0 + MINUTE);
    assert_eq!(store.torrent_count(), 3);
    assert_eq!(store.peer_count(&[1; 20]), 0);
    for kept in [[0; 20], [2; 20], [9; 20]] {
        assert!(store.peer_count(&kept) > 0);
    }
}

#[test]
fn the_default_bounds_hold_under_a_flood() {
    let t0 = Instant::now();
    let mut store = PeerStore::default();
    for n in 0..5_000u32 {
        let hash: [u8; 20] = std::array::from_fn(|i| (n >> (8 * (i % 4))) as u8);
        for p in 0..3 {
            store.announce(hash, peer(n * 3 + p, 6881), t0);
        }
    }
    assert_eq!(store.torrent_count(), PeerStoreLimits::default().max_torrents);
}
