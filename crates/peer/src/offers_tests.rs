use std::collections::{BTreeMap, BTreeSet};

use peer_wire::Bitfield;
use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::*;

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
            offers.top_up(peer, &held[&peer], 3, avail, &mut rng, &mut out);
            for &index in &out {
                shown_order.push(index);
                assert!(offers.asked(peer, index));
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
    offers.top_up(a, &none, 1, |_| 0, &mut rng, &mut out);
    assert_eq!(out.len(), 1, "a choked peer is shown one piece");
    offers.top_up(a, &none, 1, |_| 0, &mut rng, &mut out);
    assert_eq!(out.len(), 1, "and no more while it has not asked for it");
    assert!(offers.asked(a, out[0]));
    assert!(!offers.asked(a, out[0]), "asking twice shrinks the window once");
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
    offers.top_up(a, &none, 2, |_| 0, &mut rng, &mut to_a);
    let mut to_b = Vec::new();
    offers.top_up(b, &none, 2, |_| 0, &mut rng, &mut to_b);
    // All four are shown once. A leaves without passing its two on: B is shown those next.
    offers.leave(a);
    for &index in &to_b {
        offers.asked(b, index);
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
    offers.top_up(a, &Bitfield::new(3), 3, |_| 0, &mut rng, &mut out);
    // Piece 0 is held by 3 peers, 1 by one, 2 by two: B is shown 1, then 2, then 0.
    let avail = |index: u32| [3, 1, 2][index as usize];
    let mut order = Vec::new();
    for _ in 0..3 {
        let mut one = Vec::new();
        offers.top_up(b, &Bitfield::new(3), 1, avail, &mut rng, &mut one);
        offers.asked(b, one[0]);
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
        offers.top_up(a, &none, 1, |_| 0, &mut rng, &mut to_a);
        assert!(offers.asked(a, to_a[0]), "a asks for its piece: it is on its way to a");
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
    // Nobody waits for the first two any more: another peer is shown them first, as the rarest.
    assert!(first.iter().all(|&index| offers.pending[index as usize] == 0));
}
