//! Unit tests for the choker: rank, optimistic rotation, interest, new-peer weighting, seeding turns.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::{Choker, ChokerConfig, PeerStats};
use crate::picker::PeerKey;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// An interested peer that sends us `down` and receives `up` bytes per second, connected at time 0.
fn peer(key: u64, down: u64, up: u64) -> PeerStats {
    PeerStats { key: PeerKey(key), interested: true, download_rate: down, upload_rate: up, connected_at: secs(0) }
}

fn keys(list: &[u64]) -> BTreeSet<PeerKey> {
    list.iter().map(|&k| PeerKey(k)).collect()
}

fn regular(choker: &Choker) -> BTreeSet<PeerKey> {
    let mut set = choker.unchoked().clone();
    if let Some(opt) = choker.optimistic() {
        set.remove(&opt);
    }
    set
}

#[test]
fn a_leecher_unchokes_the_four_peers_that_upload_to_it_fastest_plus_one_optimistic() {
    // Upload rates run the other way round, so ranking by the wrong one would show.
    let peers: Vec<PeerStats> = (1..=8).map(|k| peer(k, k * 100, 1000 - k * 100)).collect();
    let mut choker = Choker::new(ChokerConfig::default());
    let set = choker.rechoke(secs(0), false, &peers, &mut SmallRng::seed_from_u64(1)).clone();
    assert_eq!(set.len(), 5);
    assert_eq!(regular(&choker), keys(&[5, 6, 7, 8]));
    let opt = choker.optimistic().expect("three candidates left");
    assert!(keys(&[1, 2, 3, 4]).contains(&opt));
}

#[test]
fn a_seeder_ranks_by_what_it_uploads() {
    let peers: Vec<PeerStats> = (1..=8).map(|k| peer(k, k * 100, 1000 - k * 100)).collect();
    let mut choker = Choker::new(ChokerConfig::default());
    choker.rechoke(secs(0), true, &peers, &mut SmallRng::seed_from_u64(1));
    assert_eq!(regular(&choker), keys(&[1, 2, 3, 4]));
}

#[test]
fn uninterested_peers_are_never_unchoked() {
    let mut peers: Vec<PeerStats> = (1..=6).map(|k| peer(k, 1_000_000 * k, 0)).collect();
    for p in &mut peers[2..] {
        p.interested = false;
    }
    let mut choker = Choker::new(ChokerConfig::default());
    let set = choker.rechoke(secs(0), false, &peers, &mut SmallRng::seed_from_u64(3));
    assert_eq!(*set, keys(&[1, 2]));
    assert_eq!(choker.optimistic(), None, "everyone interested already has a regular slot");
}

#[test]
fn slots_are_configurable() {
    let peers: Vec<PeerStats> = (1..=8).map(|k| peer(k, k, 0)).collect();
    let mut choker = Choker::new(ChokerConfig { slots: 2, ..ChokerConfig::default() });
    choker.rechoke(secs(0), false, &peers, &mut SmallRng::seed_from_u64(3));
    assert_eq!(regular(&choker), keys(&[7, 8]));
    assert_eq!(choker.unchoked().len(), 3);
}

#[test]
fn rechokes_run_every_ten_seconds_and_the_optimistic_slot_rotates_every_thirty() {
    let peers: Vec<PeerStats> = (1..=10).map(|k| peer(k, k, 0)).collect();
    let mut choker = Choker::new(ChokerConfig::default());
    let mut rng = SmallRng::seed_from_u64(5);
    let mut seen = Vec::new();
    for t in 0..=95 {
        let due = choker.due(secs(t));
        assert_eq!(choker.tick(secs(t), false, &peers, &mut rng).is_some(), due);
        assert_eq!(due, t % 10 == 0, "at {t} s");
        if due {
            seen.push(choker.optimistic().expect("six candidates"));
            assert_eq!(regular(&choker), keys(&[7, 8, 9, 10]));
        }
    }
    // Rechokes at 0..=90 s: the optimistic peer holds for three rechokes, then changes.
    for (round, window) in seen.chunks(3).enumerate() {
        assert!(window.iter().all(|&k| k == window[0]), "round {round}: {window:?}");
    }
    for pair in seen.chunks(3).collect::<Vec<_>>().windows(2) {
        assert_ne!(pair[0][0], pair[1][0], "rotation picks someone else");
    }
}

#[test]
fn an_optimistic_peer_that_leaves_or_loses_interest_is_replaced_at_once() {
    let mut peers: Vec<PeerStats> = (1..=6).map(|k| peer(k, k, 0)).collect();
    let mut choker = Choker::new(ChokerConfig::default());
    let mut rng = SmallRng::seed_from_u64(9);
    choker.rechoke(secs(0), false, &peers, &mut rng);
    let first = choker.optimistic().expect("two candidates");
    peers.iter_mut().filter(|p| p.key == first).for_each(|p| p.interested = false);
    choker.rechoke(secs(10), false, &peers, &mut rng);
    let second = choker.optimistic().expect("one candidate left");
    assert_ne!(first, second);
    peers.retain(|p| p.key != second);
    choker.rechoke(secs(20), false, &peers, &mut rng);
    assert_eq!(choker.optimistic(), None);
    assert!(!choker.unchoked().contains(&first) && !choker.unchoked().contains(&second));
}

#[test]
fn newly_connected_peers_are_three_times_as_likely_to_be_drawn() {
    let now = secs(1000);
    let mut peers: Vec<PeerStats> = (1..=4).map(|k| peer(k, 1000 + k, 0)).collect();
    // Nine old candidates and one that connected five seconds ago.
    peers.extend((10..19).map(|k| peer(k, 0, 0)));
    peers.push(PeerStats { connected_at: now - secs(5), ..peer(99, 0, 0) });
    let rounds = 4000;
    let mut wins: BTreeMap<PeerKey, u32> = BTreeMap::new();
    for seed in 0..rounds {
        let mut choker = Choker::new(ChokerConfig::default());
        choker.rechoke(now, false, &peers, &mut SmallRng::seed_from_u64(seed));
        *wins.entry(choker.optimistic().expect("ten candidates")).or_default() += 1;
    }
    // Weights 3 for the new peer, 1 for each of nine old ones: 3/12 = 25 %.
    let new = f64::from(wins[&PeerKey(99)]) / rounds as f64;
    assert!((0.21..0.29).contains(&new), "new peer drawn {new:.3} of the time");
    let old_mean = f64::from(wins.iter().filter(|(k, _)| k.0 != 99).map(|(_, n)| n).sum::<u32>()) / 9.0;
    let ratio = f64::from(wins[&PeerKey(99)]) / old_mean;
    assert!((2.4..3.6).contains(&ratio), "ratio {ratio:.2}");
}

#[test]
fn a_seeder_gives_every_interested_peer_a_regular_turn() {
    let mut peers: Vec<PeerStats> = (1..=10).map(|k| peer(k, 0, 0)).collect();
    let mut choker = Choker::new(ChokerConfig::default());
    let mut rng = SmallRng::seed_from_u64(2);
    let mut served = BTreeSet::new();
    for t in (0..=300).step_by(10) {
        choker.rechoke(secs(t), true, &peers, &mut rng);
        let slots = regular(&choker);
        assert_eq!(slots.len(), 4);
        served.extend(slots.iter().copied());
        // Unchoked peers download from us; the rest get nothing, as on a real seeder.
        for p in &mut peers {
            p.upload_rate = if slots.contains(&p.key) { 50_000 + p.key.0 } else { 0 };
        }
    }
    assert_eq!(served.len(), 10, "only {served:?} had a regular slot in five minutes");
}

#[test]
fn a_leecher_keeps_its_fast_peers_between_rechokes() {
    let peers: Vec<PeerStats> = (1..=6).map(|k| peer(k, 0, 0)).collect();
    let mut choker = Choker::new(ChokerConfig::default());
    let mut rng = SmallRng::seed_from_u64(4);
    choker.rechoke(secs(0), false, &peers, &mut rng);
    let first = regular(&choker);
    choker.rechoke(secs(10), false, &peers, &mut rng);
    assert_eq!(regular(&choker), first, "equal rates: the unchoked peers keep their slots");
}

#[test]
fn a_slot_holder_that_loses_interest_hands_its_slot_to_the_best_waiting_peer_and_nobody_else_moves() {
    let mut peers: Vec<PeerStats> = (1..=8).map(|k| peer(k, k * 100, 0)).collect();
    let mut choker = Choker::new(ChokerConfig::default());
    let mut rng = SmallRng::seed_from_u64(5);
    choker.rechoke(secs(0), false, &peers, &mut rng);
    assert_eq!(regular(&choker), keys(&[5, 6, 7, 8]));
    let optimistic = choker.optimistic().expect("four candidates left");
    // 7 holds everything we have now; rates changed too, which a full rechoke would act on.
    peers[6].interested = false;
    peers[0].download_rate = 10_000;
    let set = choker.free_slot(secs(3), false, PeerKey(7), &peers, &mut rng).clone();
    assert!(!set.contains(&PeerKey(7)));
    let best_waiting = if optimistic == PeerKey(1) { 4 } else { 1 };
    assert_eq!(regular(&choker), keys(&[5, 6, 8, best_waiting]));
    assert_eq!(choker.optimistic(), Some(optimistic), "the optimistic slot is not redrawn");
    assert!(!choker.due(secs(9)), "the next rechoke stays where it was");
}

#[test]
fn a_slot_holder_that_loses_interest_keeps_its_slot_while_nobody_waits() {
    let mut peers: Vec<PeerStats> = (1..=3).map(|k| peer(k, k * 100, 0)).collect();
    let mut choker = Choker::new(ChokerConfig::default());
    let mut rng = SmallRng::seed_from_u64(6);
    let before = choker.rechoke(secs(0), false, &peers, &mut rng).clone();
    peers[1].interested = false;
    // Choked now and unchoked at our next piece, its requests sent in between would cross our choke.
    assert_eq!(choker.free_slot(secs(1), false, PeerKey(2), &peers, &mut rng), &before);
}

#[test]
fn an_optimistic_peer_that_loses_interest_is_replaced_by_a_draw() {
    let mut peers: Vec<PeerStats> = (1..=6).map(|k| peer(k, k * 100, 0)).collect();
    let mut choker = Choker::new(ChokerConfig::default());
    let mut rng = SmallRng::seed_from_u64(7);
    choker.rechoke(secs(0), false, &peers, &mut rng);
    let optimistic = choker.optimistic().expect("two candidates");
    let other = if optimistic == PeerKey(1) { PeerKey(2) } else { PeerKey(1) };
    peers[optimistic.0 as usize - 1].interested = false;
    let set = choker.free_slot(secs(2), false, optimistic, &peers, &mut rng).clone();
    assert_eq!(choker.optimistic(), Some(other));
    assert_eq!(set.len(), 5);
}
