//! Tests of the registry: matchmaking rules, events, expiry, caps and load spreading.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tracker_protocol::AnnounceEvent;

use super::{Announce, AnnounceError, Change, Limits, PeerList, Registry, SwarmCounts};

const HASH: [u8; 20] = [7; 20];

fn v4(n: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 10_000 + n)
}

fn announce(left: u64, event: AnnounceEvent, num_want: usize) -> Announce {
    Announce { info_hash: HASH, peer_id: [1; 20], key: 0, uploaded: 0, downloaded: 0, left, event, num_want }
}

struct Harness {
    registry: Registry,
    rng: SmallRng,
    now: u32,
}

impl Harness {
    fn open() -> Harness {
        Harness { registry: Registry::open(Limits::default()), rng: SmallRng::seed_from_u64(1), now: 100 }
    }

    fn send(
        &mut self,
        peer: u16,
        left: u64,
        event: AnnounceEvent,
        num_want: usize,
    ) -> (Vec<SocketAddrV4>, SwarmCounts) {
        let mut out = Vec::new();
        let (counts, _) = self
            .registry
            .announce(v4(peer), &announce(left, event, num_want), self.now, &mut self.rng, &mut out)
            .expect("announce accepted");
        (out, counts)
    }
}

#[test]
fn a_leecher_gets_seeders_first_then_leechers_and_never_itself() {
    let mut h = Harness::open();
    h.send(1, 0, AnnounceEvent::Started, 50); // seeder
    h.send(2, 500, AnnounceEvent::Started, 50); // leecher
    h.send(3, 0, AnnounceEvent::Started, 50); // seeder
    let (peers, counts) = h.send(4, 900, AnnounceEvent::Started, 50);
    assert_eq!(counts, SwarmCounts { seeders: 2, completed: 0, leechers: 2 });
    assert_eq!(peers.len(), 3);
    let mut seeders_first: Vec<_> = peers[..2].to_vec();
    seeders_first.sort();
    assert_eq!(seeders_first, [v4(1), v4(3)]);
    assert_eq!(peers[2], v4(2));
    assert!(!peers.contains(&v4(4)));
}

#[test]
fn a_seeder_gets_leechers_first_and_seeders_only_to_fill_its_numwant() {
    let mut h = Harness::open();
    h.send(1, 0, AnnounceEvent::Started, 50);
    h.send(2, 10, AnnounceEvent::Started, 50);
    h.send(3, 20, AnnounceEvent::Started, 50);
    h.send(5, 0, AnnounceEvent::Started, 50);
    // Asked for two with two leechers waiting: leechers only, seeders are not handed to each other.
    let (mut peers, _) = h.send(4, 0, AnnounceEvent::Started, 2);
    peers.sort();
    assert_eq!(peers, [v4(2), v4(3)]);
    // Asked for more: every leecher first, then other seeders, never itself.
    let (peers, _) = h.send(4, 0, AnnounceEvent::None, 50);
    let (mut leechers, mut seeders) = (peers[..2].to_vec(), peers[2..].to_vec());
    leechers.sort();
    seeders.sort();
    assert_eq!(leechers, [v4(2), v4(3)]);
    assert_eq!(seeders, [v4(1), v4(5)]);
}

#[test]
fn a_magnet_fetcher_announcing_left_zero_gets_the_seeders() {
    // aria2, rqbit and WebTorrent announce left = 0 while they fetch a magnet link's metadata.
    let mut h = Harness::open();
    h.send(1, 0, AnnounceEvent::Started, 50);
    let (peers, counts) = h.send(2, 0, AnnounceEvent::Started, 50);
    assert_eq!(peers, [v4(1)], "the only other peer is a seeder, and it is handed out");
    assert_eq!(counts.seeders, 2);
}

#[test]
fn num_want_is_respected() {
    let mut h = Harness::open();
    for peer in 0..30 {
        h.send(peer, 0, AnnounceEvent::Started, 0);
    }
    for want in [0, 1, 7, 29, 100] {
        let (peers, _) = h.send(100, 5, AnnounceEvent::None, want);
        assert_eq!(peers.len(), want.min(30), "numwant {want}");
        let unique: std::collections::HashSet<_> = peers.iter().collect();
        assert_eq!(unique.len(), peers.len(), "no duplicates");
    }
}

#[test]
fn events_change_membership_and_completed_counts_only_real_finishes() {
    let mut h = Harness::open();
    h.send(1, 0, AnnounceEvent::Started, 10); // started complete: not a finish
    h.send(2, 100, AnnounceEvent::Started, 10);
    assert_eq!(h.registry.scrape(&HASH), Some(SwarmCounts { seeders: 1, completed: 0, leechers: 1 }));
    let (_, counts) = h.send(2, 0, AnnounceEvent::Completed, 10);
    assert_eq!(counts, SwarmCounts { seeders: 2, completed: 1, leechers: 0 });
    // A repeated `completed` from a seeder does not count again.
    let (_, counts) = h.send(2, 0, AnnounceEvent::Completed, 10);
    assert_eq!(counts.completed, 1);
    let mut out = Vec::new();
    let (counts, change) =
        h.registry.announce(v4(1), &announce(0, AnnounceEvent::Stopped, 10), h.now, &mut h.rng, &mut out).expect("ok");
    assert_eq!(change, Change::Left);
    assert!(out.is_empty(), "a stopped peer is handed nobody");
    assert_eq!(counts, SwarmCounts { seeders: 1, completed: 1, leechers: 0 });
    assert!(h.registry.peer(&HASH, &v4(1)).is_none());
    assert_eq!(h.registry.is_seeder(&HASH, &v4(2)), Some(true));
}

#[test]
fn stale_peers_expire_in_a_batch_and_empty_open_swarms_go() {
    let mut h = Harness::open();
    h.send(1, 0, AnnounceEvent::Started, 10);
    h.now = 200;
    h.send(2, 5, AnnounceEvent::Started, 10);
    let expired = h.registry.expire(150);
    assert_eq!((expired.peers, expired.torrents), (1, 0));
    let (peers, counts) = h.send(3, 5, AnnounceEvent::Started, 10);
    assert_eq!(peers, [v4(2)], "the stale seeder is gone");
    assert_eq!(counts.seeders, 0);
    let expired = h.registry.expire(1_000);
    assert_eq!((expired.peers, expired.torrents), (2, 1));
    assert_eq!(h.registry.torrent_count(), 0);
}

#[test]
fn closed_registries_serve_only_their_torrents_and_keep_them() {
    let mut registry = Registry::closed([HASH], Limits::default());
    let mut rng = SmallRng::seed_from_u64(2);
    let mut out = Vec::new();
    let unknown = Announce { info_hash: [9; 20], ..announce(1, AnnounceEvent::Started, 5) };
    assert_eq!(registry.announce(v4(1), &unknown, 1, &mut rng, &mut out), Err(AnnounceError::UnknownTorrent));
    registry.announce(v4(1), &announce(1, AnnounceEvent::Started, 5), 1, &mut rng, &mut out).expect("known");
    assert_eq!(registry.expire(10).peers, 1);
    assert_eq!(registry.torrent_count(), 1);
    assert_eq!(registry.scrape(&HASH), Some(SwarmCounts::default()));
}

#[test]
fn forgetting_refused_swarms_removes_them_when_open_and_empties_them_when_closed() {
    let other = [9; 20];
    let mut rng = SmallRng::seed_from_u64(3);
    let mut out = Vec::new();
    let registries =
        [(true, Registry::open(Limits::default())), (false, Registry::closed([HASH, other], Limits::default()))];
    for (open, mut registry) in registries {
        for (hash, port) in [(HASH, 1), (HASH, 2), (other, 3)] {
            let started = Announce { info_hash: hash, ..announce(0, AnnounceEvent::Started, 5) };
            registry.announce(v4(port), &started, 1, &mut rng, &mut out).expect("served");
        }
        assert_eq!(registry.forget(|hash| *hash == HASH), 2, "the two peers of the refused swarm");
        assert_eq!(registry.scrape(&other).map(|counts| counts.seeders), Some(1), "the other swarm is untouched");
        let forgotten = registry.scrape(&HASH);
        assert_eq!(registry.forget(|hash| *hash == HASH), 0, "nothing left to drop");
        if open {
            assert_eq!((forgotten, registry.torrent_count()), (None, 1), "open: the refused swarm is gone");
        } else {
            assert_eq!(forgotten, Some(SwarmCounts::default()), "closed: still named, empty");
            assert_eq!(registry.torrent_count(), 2);
        }
    }
}

#[test]
fn caps_bound_torrents_and_peers() {
    let limits = Limits { max_torrents: 2, max_peers_per_torrent: 3 };
    let mut registry = Registry::open(limits);
    let mut rng = SmallRng::seed_from_u64(3);
    let mut out = Vec::new();
    for (i, hash) in [[1u8; 20], [2; 20]].into_iter().enumerate() {
        let request = Announce { info_hash: hash, ..announce(1, AnnounceEvent::Started, 5) };
        registry.announce(v4(i as u16), &request, 1, &mut rng, &mut out).expect("room");
    }
    let third = Announce { info_hash: [3; 20], ..announce(1, AnnounceEvent::Started, 5) };
    assert_eq!(registry.announce(v4(9), &third, 1, &mut rng, &mut out), Err(AnnounceError::TooManyTorrents));

    let full = Announce { info_hash: [1; 20], ..announce(1, AnnounceEvent::Started, 5) };
    for peer in 10..12 {
        registry.announce(v4(peer), &full, 1, &mut rng, &mut out).expect("room");
    }
    out.clear();
    let (counts, change) = registry.announce(v4(20), &full, 1, &mut rng, &mut out).expect("answered");
    assert_eq!(change, Change::NotRecorded);
    assert_eq!(counts.leechers, 3);
    assert_eq!(out.len(), 3, "a peer over the cap still gets peers");
}

#[test]
fn address_families_are_kept_apart() {
    let mut h = Harness::open();
    h.send(1, 0, AnnounceEvent::Started, 10);
    let six = SocketAddrV6::new(Ipv6Addr::LOCALHOST, 7000, 0, 0);
    let mut out6 = Vec::new();
    let (counts, _) =
        h.registry.announce(six, &announce(5, AnnounceEvent::Started, 10), h.now, &mut h.rng, &mut out6).expect("ok");
    assert!(out6.is_empty(), "an IPv6 leecher gets no IPv4 peers");
    assert_eq!(counts, SwarmCounts { seeders: 1, completed: 0, leechers: 1 }, "counts cover both families");
    let (peers, _) = h.send(2, 5, AnnounceEvent::Started, 10);
    assert_eq!(peers, [v4(1)]);
}

#[test]
fn load_is_spread_over_all_seeders() {
    let mut h = Harness::open();
    for seeder in 0..100 {
        h.send(seeder, 0, AnnounceEvent::Started, 0);
    }
    let mut handed: HashMap<SocketAddrV4, u32> = HashMap::new();
    for leecher in 0..2_000u16 {
        let (peers, _) = h.send(1_000 + leecher, 5, AnnounceEvent::Started, 5);
        for peer in &peers[..5] {
            *handed.entry(*peer).or_default() += 1;
        }
    }
    // 2,000 × 5 hand-outs over 100 seeders: 100 each on average.
    assert_eq!(handed.len(), 100, "every seeder was handed out");
    let (min, max) = (handed.values().min().copied(), handed.values().max().copied());
    assert!(min >= Some(60) && max <= Some(140), "uneven spread: min {min:?}, max {max:?}");
}

fn check_index(list: &PeerList<SocketAddrV4>) {
    for (index, (address, _)) in list.entries.iter().enumerate() {
        assert_eq!(list.position(address), Some(index), "index out of step at {index}");
    }
}

proptest! {
    #[test]
    fn seeders_stay_a_prefix_through_any_sequence(ops in proptest::collection::vec((0u16..40, 0u64..3, 0u8..4), 1..400)) {
        let mut h = Harness::open();
        // What each tracked peer last said it had left: the model the list's seeder prefix must agree with.
        let mut model: HashMap<u16, u64> = HashMap::new();
        for (peer, left, event) in ops {
            let event = [AnnounceEvent::None, AnnounceEvent::Completed, AnnounceEvent::Started, AnnounceEvent::Stopped][event as usize];
            let mut out = Vec::new();
            h.registry.announce(v4(peer), &announce(left, event, 5), h.now, &mut h.rng, &mut out).expect("open");
            prop_assert!(!out.contains(&v4(peer)));
            if event == AnnounceEvent::Stopped { model.remove(&peer); } else { model.insert(peer, left); }
            if let Some(swarm) = h.registry.swarms.get(&HASH) {
                check_index(&swarm.v4);
            }
            for (&known, &left) in &model {
                prop_assert_eq!(h.registry.is_seeder(&HASH, &v4(known)), Some(left == 0), "peer {}", known);
            }
        }
        h.registry.expire(u32::MAX);
        prop_assert_eq!(h.registry.peer_count(), 0);
    }
}

#[test]
fn peers_are_appended_after_what_the_caller_already_holds() {
    let mut h = Harness::open();
    h.send(1, 0, AnnounceEvent::Started, 0);
    for peer in 2..6 {
        h.send(peer, 5, AnnounceEvent::Started, 0);
    }
    let mut out = vec![v4(999)];
    h.registry.announce(v4(50), &announce(5, AnnounceEvent::None, 3), h.now, &mut h.rng, &mut out).expect("ok");
    assert_eq!(out.len(), 4, "three peers appended to the one already there");
    assert_eq!(out[1], v4(1), "the seeder comes first among the appended");
}
