use std::collections::{BTreeMap, BTreeSet};

use peer_wire::Bitfield;
use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::*;

const BLOCK: u32 = 16 * 1024;

fn now() -> Instant {
    Instant::now()
}

/// Gives every joined peer a turn without end (nobody waits), as the older tests expect.
fn turns_for_all(offers: &mut Offers) {
    offers.take_turns(now(), usize::MAX, 4, 0, |_| 0, |_| true);
}

/// Availability as the caller's picker would count it: peers holding each piece.
fn availability(held: &BTreeMap<PeerKey, Bitfield>) -> impl Fn(u32) -> u32 + '_ {
    move |index| held.values().filter(|bits| bits.has(index)).count() as u32
}

#[test]
fn every_piece_is_shown_once_before_any_is_shown_twice() {
    let mut rng = SmallRng::seed_from_u64(1);
    let pieces = 50;
    let mut offers = Offers::new(pieces, &mut rng);
    let peers: Vec<PeerKey> = (0..4).map(PeerKey).collect();
    let mut held: BTreeMap<PeerKey, Bitfield> = peers.iter().map(|&p| (p, Bitfield::new(pieces))).collect();
    for &peer in &peers {
        offers.join(peer);
    }
    let mut shown_order = Vec::new();
    // Each round every peer asks for everything it was shown, gets it, and is topped up.
    while shown_order.len() < pieces as usize {
        for &peer in &peers {
            let mut out = Vec::new();
            let avail = availability(&held);
            turns_for_all(&mut offers);
            offers.top_up(peer, &held[&peer], 3, avail, &mut rng, &mut out);
            for &index in &out {
                shown_order.push(index);
                assert!(offers.asked(peer, index, BLOCK, now()));
            }
            for index in out {
                held.get_mut(&peer).expect("peer").set(index).expect("in range");
                offers.peer_has(peer, index);
            }
        }
    }
    let first_copy: BTreeSet<u32> = shown_order[..pieces as usize].iter().copied().collect();
    assert_eq!(first_copy.len(), pieces as usize, "a piece went out twice in the first copy: {shown_order:?}");
}

#[test]
fn a_peer_is_never_shown_a_piece_it_holds_or_was_shown() {
    let mut rng = SmallRng::seed_from_u64(2);
    let mut offers = Offers::new(8, &mut rng);
    let a = PeerKey(1);
    offers.join(a);
    let mut theirs = Bitfield::new(8);
    for index in [0, 2, 4, 6] {
        theirs.set(index).expect("in range");
    }
    let mut out = Vec::new();
    turns_for_all(&mut offers);
    offers.top_up(a, &theirs, 100, |_| 0, &mut rng, &mut out);
    let shown: BTreeSet<u32> = out.iter().copied().collect();
    assert_eq!(shown, BTreeSet::from([1, 3, 5, 7]));
    assert_eq!(out.len(), 4, "no piece twice");
    let mut again = Vec::new();
    offers.top_up(a, &theirs, 100, |_| 0, &mut rng, &mut again);
    assert!(again.is_empty());
    assert!(offers.shown(a, 3) && !offers.shown(a, 2));
}

#[test]
fn the_window_holds_only_pieces_not_asked_for() {
    let mut rng = SmallRng::seed_from_u64(3);
    let mut offers = Offers::new(20, &mut rng);
    let a = PeerKey(1);
    offers.join(a);
    let none = Bitfield::new(20);
    let mut out = Vec::new();
    turns_for_all(&mut offers);
    offers.top_up(a, &none, 1, |_| 0, &mut rng, &mut out);
    assert_eq!(out.len(), 1, "a window of one");
    offers.top_up(a, &none, 1, |_| 0, &mut rng, &mut out);
    assert_eq!(out.len(), 1, "and no more while it has not asked for it");
    assert!(offers.asked(a, out[0], BLOCK, now()));
    assert!(!offers.asked(a, out[0], BLOCK, now()), "asking twice shrinks the window once");
    offers.top_up(a, &none, 4, |_| 0, &mut rng, &mut out);
    assert_eq!(out.len(), 5, "one asked for, so four more for a window of four");
}

#[test]
fn pieces_shown_to_a_peer_that_left_are_the_rarest_again() {
    let mut rng = SmallRng::seed_from_u64(4);
    let mut offers = Offers::new(4, &mut rng);
    let (a, b) = (PeerKey(1), PeerKey(2));
    offers.join(a);
    offers.join(b);
    let none = Bitfield::new(4);
    let mut to_a = Vec::new();
    turns_for_all(&mut offers);
    offers.top_up(a, &none, 2, |_| 0, &mut rng, &mut to_a);
    let mut to_b = Vec::new();
    offers.top_up(b, &none, 2, |_| 0, &mut rng, &mut to_b);
    // All four are shown once. A leaves without passing its two on: B is shown those next.
    offers.leave(a);
    for &index in &to_b {
        offers.asked(b, index, BLOCK, now());
    }
    let mut next = Vec::new();
    offers.top_up(b, &none, 2, |_| 0, &mut rng, &mut next);
    let next: BTreeSet<u32> = next.into_iter().collect();
    assert_eq!(next, to_a.into_iter().collect::<BTreeSet<u32>>());
}

#[test]
fn once_all_are_out_the_rarest_piece_is_shown_first() {
    let mut rng = SmallRng::seed_from_u64(5);
    let mut offers = Offers::new(3, &mut rng);
    let (a, b) = (PeerKey(1), PeerKey(2));
    offers.join(a);
    offers.join(b);
    let mut out = Vec::new();
    turns_for_all(&mut offers);
    offers.top_up(a, &Bitfield::new(3), 3, |_| 0, &mut rng, &mut out);
    // Piece 0 is held by 3 peers, 1 by one, 2 by two: B is shown 1, then 2, then 0.
    let avail = |index: u32| [3, 1, 2][index as usize];
    let mut order = Vec::new();
    for _ in 0..3 {
        let mut one = Vec::new();
        offers.top_up(b, &Bitfield::new(3), 1, avail, &mut rng, &mut one);
        offers.asked(b, one[0], BLOCK, now());
        order.extend(one);
    }
    assert_eq!(order, [1, 2, 0]);
}

#[test]
fn a_piece_on_its_way_to_one_peer_is_shown_to_another_only_after_pieces_nobody_asked_for() {
    for seed in 0..32 {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut offers = Offers::new(2, &mut rng);
        let (a, b, c) = (PeerKey(1), PeerKey(2), PeerKey(3));
        for peer in [a, b, c] {
            offers.join(peer);
        }
        let none = Bitfield::new(2);
        let (mut to_a, mut to_c, mut to_b) = (Vec::new(), Vec::new(), Vec::new());
        turns_for_all(&mut offers);
        offers.top_up(a, &none, 1, |_| 0, &mut rng, &mut to_a);
        assert!(offers.asked(a, to_a[0], BLOCK, now()), "a asks for its piece: it is on its way to a");
        offers.top_up(c, &none, 1, |_| 0, &mut rng, &mut to_c);
        assert_ne!(to_a, to_c, "the two fresh pieces go to a and c");
        // Nothing is fresh for b, nobody holds anything: the piece c was shown but has not asked for is the one
        // b should get, not the one being sent to a.
        offers.top_up(b, &none, 1, |_| 0, &mut rng, &mut to_b);
        assert_eq!(to_b, to_c, "seed {seed}");
        // Once a leaves, its piece is no longer on its way anywhere and ranks as unsent again.
        offers.leave(a);
        let mut again = Vec::new();
        offers.top_up(b, &none, 2, |_| 0, &mut rng, &mut again);
        assert_eq!(again, to_a, "seed {seed}");
    }
}

/// A leecher that got its shown pieces elsewhere does not announce them to us (we have them, in its eyes); its
/// `not interested` says so, and frees its window for new pieces.
#[test]
fn a_peer_that_is_no_longer_interested_holds_what_it_was_shown_and_is_shown_more() {
    let mut rng = SmallRng::seed_from_u64(3);
    let mut offers = Offers::new(8, &mut rng);
    let a = PeerKey(1);
    offers.join(a);
    let none = Bitfield::new(8);
    let mut first = Vec::new();
    turns_for_all(&mut offers);
    offers.top_up(a, &none, 2, |_| 0, &mut rng, &mut first);
    assert_eq!(first.len(), 2);
    // It asks for neither: it got both from other leechers. Its window is full, so nothing new is shown.
    let mut nothing = Vec::new();
    offers.top_up(a, &none, 2, |_| 0, &mut rng, &mut nothing);
    assert!(nothing.is_empty());
    offers.not_interested(a);
    let mut more = Vec::new();
    offers.top_up(a, &none, 2, |_| 0, &mut rng, &mut more);
    assert_eq!(more.len(), 2, "a window of new pieces");
    assert!(more.iter().all(|index| !first.contains(index)), "{first:?} shown again: {more:?}");
    // The first two count as held by it: another peer is shown them only after the pieces nobody holds.
    let b = PeerKey(2);
    offers.join(b);
    turns_for_all(&mut offers);
    let mut to_b = Vec::new();
    offers.top_up(b, &none, 8, |_| 0, &mut rng, &mut to_b);
    assert_eq!(to_b.len(), 8);
    assert!(to_b[6..].iter().all(|index| first.contains(index)), "{first:?} shown before the rest: {to_b:?}");
}

/// What a turn's pieces cost, asked for block by block.
fn ask_whole(offers: &mut Offers, peer: PeerKey, pieces: &[u32], piece_len: u32) {
    for &index in pieces {
        for _ in 0..piece_len / BLOCK {
            offers.asked(peer, index, BLOCK, now());
        }
    }
}

#[test]
fn turns_go_to_the_peer_that_waited_longest_and_end_once_their_pieces_are_sent() {
    let mut rng = SmallRng::seed_from_u64(6);
    let mut offers = Offers::new(40, &mut rng);
    let (a, b, c) = (PeerKey(1), PeerKey(2), PeerKey(3));
    for peer in [a, b, c] {
        offers.join(peer);
    }
    let piece_len = 4 * BLOCK;
    let none = Bitfield::new(40);
    let mut sent: BTreeMap<PeerKey, u64> = BTreeMap::new();
    let mut order = Vec::new();
    for _ in 0..6 {
        let counts = sent.clone();
        let begun = offers.take_turns(now(), 1, 2, 0, |peer| counts.get(&peer).copied().unwrap_or(0), |_| true);
        assert_eq!(begun.len(), 1, "one slot, always someone waiting");
        let peer = begun[0];
        order.push(peer);
        assert!([a, b, c].iter().all(|&other| offers.has_turn(other) == (other == peer)));
        let mut shown = Vec::new();
        offers.top_up(peer, &none, 16, |_| 0, &mut rng, &mut shown);
        assert_eq!(shown.len(), 2, "a turn shows its quota, whatever the window");
        ask_whole(&mut offers, peer, &shown, piece_len);
        // Asked for, not yet sent: the turn goes on and nobody else gets one.
        let counts = sent.clone();
        assert!(offers.turn_closing());
        let none_begun = offers.take_turns(now(), 1, 2, 0, |p| counts.get(&p).copied().unwrap_or(0), |_| true);
        assert!(none_begun.is_empty());
        *sent.entry(peer).or_default() += u64::from(2 * piece_len);
    }
    assert_eq!(order, [a, b, c, a, b, c]);
}

#[test]
fn a_turn_without_requests_ends_and_its_pieces_stay_shown() {
    let mut rng = SmallRng::seed_from_u64(7);
    let mut offers = Offers::new(10, &mut rng);
    let (a, b) = (PeerKey(1), PeerKey(2));
    offers.join(a);
    offers.join(b);
    let start = now();
    assert_eq!(offers.take_turns(start, 1, 2, 0, |_| 0, |_| true), [a]);
    let mut shown = Vec::new();
    offers.top_up(a, &Bitfield::new(10), 4, |_| 0, &mut rng, &mut shown);
    assert_eq!(shown.len(), 2);
    assert!(offers.take_turns(start + TURN_IDLE / 2, 1, 2, 0, |_| 0, |_| true).is_empty());
    assert_eq!(offers.take_turns(start + TURN_IDLE, 1, 2, 0, |_| 0, |_| true), [b], "a asked nothing in time");
    // Our `have` may just be late: a may still ask for them, so b is shown others.
    let mut to_b = Vec::new();
    offers.top_up(b, &Bitfield::new(10), 4, |_| 0, &mut rng, &mut to_b);
    assert!(to_b.iter().all(|index| !shown.contains(index)), "{shown:?} shown to b: {to_b:?}");
}

#[test]
fn while_nobody_waits_a_turn_has_no_end_and_peers_that_lack_nothing_get_none() {
    let mut rng = SmallRng::seed_from_u64(8);
    let mut offers = Offers::new(64, &mut rng);
    let (a, b, seed) = (PeerKey(1), PeerKey(2), PeerKey(3));
    for peer in [a, b, seed] {
        offers.join(peer);
    }
    let lacks = |peer: PeerKey| peer != seed;
    let begun = offers.take_turns(now(), 5, 2, 0, |_| 0, lacks);
    assert_eq!(begun, [a, b]);
    let mut shown = Vec::new();
    offers.top_up(a, &Bitfield::new(64), 10, |_| 0, &mut rng, &mut shown);
    assert_eq!(shown.len(), 10, "no quota while nobody waits");
    ask_whole(&mut offers, a, &shown, BLOCK);
    assert!(!offers.turn_closing());
    assert!(offers.take_turns(now(), 5, 2, 0, |_| u64::MAX, lacks).is_empty(), "a's turn goes on");
    // A newcomer waits while both slots are taken: the open turns get a quota, and end once it is used.
    let c = PeerKey(4);
    offers.join(c);
    assert!(offers.take_turns(now(), 2, 2, 0, |_| 0, lacks).is_empty());
    let mut more = Vec::new();
    offers.top_up(a, &Bitfield::new(64), 20, |_| 0, &mut rng, &mut more);
    assert_eq!(more.len(), 2, "the quota, no more");
    ask_whole(&mut offers, a, &more, BLOCK);
    assert_eq!(offers.take_turns(now(), 2, 2, 0, |_| u64::MAX, lacks), [c]);
}

#[test]
fn a_lone_peers_large_window_goes_back_to_the_fresh_pieces_when_it_shrinks() {
    let mut rng = SmallRng::seed_from_u64(9);
    let mut offers = Offers::new(20, &mut rng);
    let (a, b) = (PeerKey(1), PeerKey(2));
    offers.join(a);
    turns_for_all(&mut offers);
    let mut to_a = Vec::new();
    offers.top_up(a, &Bitfield::new(20), 16, |_| 0, &mut rng, &mut to_a);
    offers.asked(a, to_a[0], BLOCK, now());
    offers.join(b);
    turns_for_all(&mut offers);
    offers.shrink(a, 4, |_| 0);
    let mut to_b = Vec::new();
    offers.top_up(b, &Bitfield::new(20), 5, |_| 0, &mut rng, &mut to_b);
    // It keeps the piece it asked for and four of its window (the lowest); the other eleven go back.
    let mut window: Vec<u32> = to_a[1..].to_vec();
    window.sort_unstable();
    let given_back: BTreeSet<u32> = window[4..].iter().copied().collect();
    let b_got: BTreeSet<u32> = to_b.iter().copied().collect();
    assert!(b_got.is_subset(&given_back), "b is shown what a gave back first: {given_back:?}, b got {b_got:?}");
    assert_eq!(b_got.len(), 5);
    let still_fresh = fresh_left(&offers);
    assert_eq!(still_fresh.len(), 6 + 4, "six given back and four never shown");
    // A asks for one it gave back all the same: that piece is no longer fresh.
    let late = *given_back.difference(&b_got).next().expect("six left");
    assert!(still_fresh.contains(&late));
    offers.asked(a, late, BLOCK, now());
    assert!(!fresh_left(&offers).contains(&late));
}

fn fresh_left(offers: &Offers) -> BTreeSet<u32> {
    offers.fresh.iter().copied().filter(|&index| !offers.taken[index as usize]).collect()
}

#[test]
fn a_peer_that_stops_reading_sits_out_a_minute_and_one_that_asks_nothing_a_little_longer_each_time() {
    let mut rng = SmallRng::seed_from_u64(10);
    let mut offers = Offers::new(50, &mut rng);
    let (reader, idler, honest) = (PeerKey(1), PeerKey(2), PeerKey(3));
    for peer in [reader, idler, honest] {
        offers.join(peer);
    }
    let mut at = now();
    // Two slots: the reader and the idler get the first turns; the reader asks, and then takes nothing.
    assert_eq!(offers.take_turns(at, 2, 2, 0, |_| 0, |_| true), [reader, idler]);
    let mut shown = Vec::new();
    offers.top_up(reader, &Bitfield::new(50), 2, |_| 0, &mut rng, &mut shown);
    ask_whole(&mut offers, reader, &shown, BLOCK);
    at += TURN_IDLE;
    assert_eq!(offers.take_turns(at, 2, 2, 0, |_| 0, |_| true), [honest], "both wasted their turn");
    let mut idle_benches = Vec::new();
    let mut reader_back = None;
    // The honest peer keeps taking what it asks for; watch when the other two come back.
    for step in 1..=150u32 {
        let t = at + Duration::from_secs(u64::from(step));
        let begun = offers.take_turns(t, 2, 2, 0, |_| 0, |peer| peer != honest);
        if begun.contains(&idler) {
            idle_benches.push(step);
        }
        if begun.contains(&reader) && reader_back.is_none() {
            reader_back = Some(step);
        }
    }
    assert_eq!(reader_back, Some(60), "the reader sits out a minute");
    // The idler asks for nothing each time: back after 4 s, then 2 s of turn and 8 s, 2 s and 16 s...
    assert_eq!(&idle_benches[..3], &[4, 14, 32], "{idle_benches:?}");
}

/// A hostile peer that reads a trickle at a time is never idle nor stalled; while others wait it still gives up
/// its turn after [`TURN_LONGEST`], and the honest peer gets one.
#[test]
fn a_trickling_peer_keeps_its_turn_no_longer_than_the_longest_while_others_wait() {
    let mut rng = SmallRng::seed_from_u64(11);
    let mut offers = Offers::new(20, &mut rng);
    let (slow, honest) = (PeerKey(1), PeerKey(2));
    offers.join(slow);
    let start = now();
    assert_eq!(offers.take_turns(start, 1, 2, 0, |_| 0, |_| true), [slow]);
    let mut shown = Vec::new();
    offers.top_up(slow, &Bitfield::new(20), 4, |_| 0, &mut rng, &mut shown);
    ask_whole(&mut offers, slow, &shown, 4 * BLOCK);
    // One byte more each second: progress, so never stalled; nobody waits, so the turn goes on.
    let mut t = start;
    for sent in 1..=40u64 {
        t += Duration::from_secs(1);
        assert!(offers.take_turns(t, 1, 2, 0, |_| sent, |_| true).is_empty());
    }
    assert!(offers.has_turn(slow), "alone, it keeps its turn");
    offers.join(honest);
    t += Duration::from_secs(1);
    assert_eq!(offers.take_turns(t, 1, 2, 0, |_| 41, |_| true), [honest], "its turn began 41 s ago");
    assert!(!offers.has_turn(slow));
}
