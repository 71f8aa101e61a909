//! Unit tests for the piece picker, and `check`, which asserts every invariant of the module docs.

use peer_wire::{BLOCK_LEN, Bitfield};
use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::{Block, PeerKey, PickLimits, Picker, Received};

const A: PeerKey = PeerKey(1);
const B: PeerKey = PeerKey(2);
const C: PeerKey = PeerKey(3);

/// Asserts the invariants listed in the module docs (see `Picker::assert_invariants`).
pub(super) fn check(p: &Picker) {
    p.assert_invariants();
}

/// A torrent of `pieces` pieces of `blocks` full blocks each.
fn picker(pieces: u32, blocks: u32) -> Picker {
    Picker::new(blocks * BLOCK_LEN, u64::from(pieces * blocks * BLOCK_LEN)).expect("valid geometry")
}

fn bits(num_pieces: u32, held: &[u32]) -> Bitfield {
    let mut bf = Bitfield::new(num_pieces);
    for &i in held {
        bf.set(i).expect("index in range");
    }
    bf
}

fn pick(p: &mut Picker, peer: PeerKey, theirs: &Bitfield, max: usize, seed: u64) -> Vec<Block> {
    let mut out = Vec::new();
    p.pick(peer, theirs, max, &mut SmallRng::seed_from_u64(seed), &mut out);
    check(p);
    out
}

fn block(piece: u32, b: u32) -> Block {
    Block { piece, offset: b * BLOCK_LEN, length: BLOCK_LEN }
}

fn new(piece_complete: bool) -> Received {
    Received::New { cancel: Vec::new(), piece_complete }
}

#[test]
fn the_last_piece_and_its_last_block_are_short() {
    let mut p = Picker::new(2 * BLOCK_LEN, u64::from(6 * BLOCK_LEN) + 1).expect("valid geometry");
    assert_eq!(p.num_pieces(), 4);
    assert_eq!((p.piece_len(2), p.piece_len(3), p.piece_len(4)), (2 * BLOCK_LEN, 1, 0));
    assert_eq!((p.block_count(0), p.block_count(3)), (2, 1));
    let seed = Bitfield::full(4);
    p.peer_joined(&seed);
    let mut got = pick(&mut p, A, &seed, 100, 7);
    got.sort();
    assert_eq!(got.len(), 7);
    assert_eq!(got.last(), Some(&Block { piece: 3, offset: 0, length: 1 }));
    assert_eq!(p.block_received(A, Block { piece: 3, offset: 0, length: BLOCK_LEN }), Received::Unexpected);
    assert_eq!(p.block_received(A, Block { piece: 3, offset: 0, length: 1 }), new(true));
    assert!(p.piece_verified(3));
    assert_eq!(p.missing_bytes(), u64::from(6 * BLOCK_LEN));
}

#[test]
fn a_piece_length_that_is_not_a_multiple_of_the_block_size_ends_each_piece_with_a_short_block() {
    let mut p = Picker::new(40_000, 100_000).expect("valid geometry");
    let seed = Bitfield::full(3);
    p.peer_joined(&seed);
    let mut got = pick(&mut p, A, &seed, 100, 1);
    got.sort();
    let lengths: Vec<u32> = got.iter().map(|b| b.length).collect();
    assert_eq!(lengths, [16_384, 16_384, 7_232, 16_384, 16_384, 7_232, 16_384, 3_616]);
    assert_eq!(Picker::new(0, 1).err(), Some(super::PickerError::ZeroPieceLength));
}

#[test]
fn new_pieces_are_started_rarest_first() {
    let mut p = picker(4, 1);
    for held in [&[0, 1, 2, 3][..], &[0, 1, 2], &[0, 1], &[0]] {
        p.peer_joined(&bits(4, held));
    }
    let seed = Bitfield::full(4);
    let order: Vec<u32> = (0..4).map(|s| pick(&mut p, A, &seed, 1, s)[0].piece).collect();
    assert_eq!(order, [3, 2, 1, 0]);
    assert!(pick(&mut p, A, &seed, 1, 9).is_empty(), "a peer is never asked twice for a block");
}

#[test]
fn sequential_starts_the_windows_pieces_rarest_first_then_the_nearest_past_it_in_order() {
    let mut p = picker(10, 1);
    p.set_sequential(Some(3));
    // Piece 1 is rarer than 0 and 2: rarest first within the window [0, 3).
    p.peer_joined(&Bitfield::full(10));
    p.peer_joined(&bits(10, &[0, 2, 5]));
    let seed = Bitfield::full(10);
    let first: Vec<u32> = pick(&mut p, A, &seed, 3, 0).iter().map(|block| block.piece).collect();
    assert_eq!(first[0], 1, "{first:?}");
    let mut sorted = first.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [0, 1, 2]);
    for piece in [1, 2] {
        assert_eq!(p.block_received(A, block(piece, 0)), new(true));
        assert!(p.piece_verified(piece));
    }
    // Piece 0 is on its way and the window [0, 3) all started: the nearest pieces past it, in order.
    let second: Vec<u32> = pick(&mut p, B, &seed, 2, 1).iter().map(|block| block.piece).collect();
    assert_eq!(second, [3, 4]);
    assert_eq!(p.block_received(A, block(0, 0)), new(true));
    assert!(p.piece_verified(0));
    // The window is now [3, 6), of which only 5 is not started: 5 first, then 6 and 7 past the window, in order.
    let third: Vec<u32> = pick(&mut p, A, &seed, 3, 2).iter().map(|block| block.piece).collect();
    assert_eq!(third, [5, 6, 7]);
    // A peer holding nothing near the front is asked for what it has, rarest first.
    let mut q = picker(20, 1);
    q.set_sequential(Some(3));
    q.peer_joined(&bits(20, &[19]));
    assert_eq!(pick(&mut q, A, &bits(20, &[19]), 3, 0), [block(19, 0)]);
}

#[test]
fn sequential_serves_started_pieces_front_first() {
    // Pieces of 4 blocks; a window of 3 pieces.
    let mut p = picker(6, 4);
    p.set_sequential(Some(3));
    let seed = Bitfield::full(6);
    p.peer_joined(&seed);
    // A is asked for the window's three pieces (started in rarest-first order), sends one block of each, and
    // chokes us: three started pieces with three open blocks each.
    let taken = pick(&mut p, A, &seed, 12, 0);
    assert_eq!(taken.len(), 12);
    for piece in [2, 0, 1] {
        assert_eq!(p.block_received(A, block(piece, 0)), new(false));
    }
    p.peer_choked_us(A);
    check(&p);
    // B gets their open blocks front first: piece 0's, then 1's, then 2's.
    let rest: Vec<u32> = pick(&mut p, B, &seed, 9, 1).iter().map(|block| block.piece).collect();
    assert_eq!(rest, [0, 0, 0, 1, 1, 1, 2, 2, 2]);
}

#[test]
fn availability_follows_haves_and_departures() {
    let mut p = picker(3, 1);
    let x = bits(3, &[0, 1]);
    p.peer_joined(&x);
    p.peer_has(1);
    p.peer_has(99);
    assert_eq!((p.availability(0), p.availability(1), p.availability(2)), (1, 2, 0));
    assert!(p.peer_left(A, &x).is_empty());
    assert_eq!((p.availability(0), p.availability(1)), (0, 1));
    check(&p);
    // Piece 1 is now the only piece anyone has.
    assert_eq!(pick(&mut p, B, &Bitfield::full(3), 3, 0), [block(1, 0)]);
}

#[test]
fn started_pieces_take_strict_priority_over_rarer_ones() {
    let mut p = picker(4, 4);
    p.peer_joined(&Bitfield::full(4));
    p.peer_joined(&bits(4, &[0, 1, 2]));
    for _ in 0..3 {
        p.peer_joined(&bits(4, &[3]));
    }
    // A holds only the common piece 3 and starts it.
    assert_eq!(pick(&mut p, A, &bits(4, &[3]), 1, 0), [block(3, 0)]);
    // B holds everything: it finishes piece 3 before starting the rarer pieces 0..3.
    let got = pick(&mut p, B, &Bitfield::full(4), 4, 0);
    assert_eq!(got[..3], [block(3, 1), block(3, 2), block(3, 3)]);
    assert!(got[3].piece < 3);
}

#[test]
fn equally_rare_pieces_are_drawn_differently_by_different_seeds() {
    let mut firsts = std::collections::BTreeSet::new();
    for seed in 0..16 {
        let mut p = picker(64, 1);
        let all = Bitfield::full(64);
        p.peer_joined(&all);
        firsts.insert(pick(&mut p, A, &all, 1, seed)[0].piece);
    }
    assert!(firsts.len() >= 8, "16 seeds started only {firsts:?}");
}

#[test]
fn a_peer_with_few_common_pieces_is_served_rarest_first_by_the_bitfield_walk() {
    // 4096 pieces only the seeder has; the small peer's three pieces are more common, so the bucket scan runs
    // out of budget and the bitfield walk must still honour rarest first.
    let mut p = picker(4096, 1);
    p.peer_joined(&Bitfield::full(4096));
    let small = bits(4096, &[10, 20, 30]);
    p.peer_joined(&small);
    p.peer_joined(&bits(4096, &[10, 30]));
    p.peer_joined(&bits(4096, &[10]));
    let order: Vec<u32> = (0..3).map(|s| pick(&mut p, A, &small, 1, s)[0].piece).collect();
    assert_eq!(order, [20, 30, 10]);
}

#[test]
fn a_scan_that_runs_out_of_budget_falls_back_to_the_bitfield_walk() {
    // The peer holds a quarter of the pieces, so a scan looks cheap, but all of them are more common than the
    // 3072 pieces only the seeder has: the scan overruns its budget and the walk finds the rarest of them.
    let mut p = picker(4096, 1);
    p.peer_joined(&Bitfield::full(4096));
    let quarter: Vec<u32> = (3072..4096).collect();
    let theirs = bits(4096, &quarter);
    p.peer_joined(&theirs);
    let without_3500: Vec<u32> = quarter.iter().copied().filter(|&i| i != 3500).collect();
    p.peer_joined(&bits(4096, &without_3500));
    assert_eq!(pick(&mut p, A, &theirs, 1, 0), [block(3500, 0)]);
    let next = pick(&mut p, A, &theirs, 1, 0)[0].piece;
    assert!((3072..4096).contains(&next) && next != 3500);
}

#[test]
fn endgame_duplicates_requests_and_the_first_copy_cancels_the_rest() {
    let mut p = picker(1, 2);
    let all = Bitfield::full(1);
    p.peer_joined(&all);
    p.peer_joined(&all);
    assert_eq!(pick(&mut p, A, &all, 8, 0), [block(0, 0), block(0, 1)]);
    assert!(p.in_endgame());
    assert_eq!(pick(&mut p, B, &all, 8, 0), [block(0, 0), block(0, 1)]);
    assert!(pick(&mut p, A, &all, 8, 0).is_empty(), "never twice from the same peer");
    assert_eq!(p.block_received(B, block(0, 0)), Received::New { cancel: vec![A], piece_complete: false });
    assert_eq!(p.block_received(A, block(0, 0)), Received::Duplicate);
    assert_eq!(p.block_received(A, block(0, 1)), Received::New { cancel: vec![B], piece_complete: true });
    assert_eq!(p.block_received(B, block(0, 1)), Received::Duplicate);
    assert_eq!((p.outstanding(A), p.outstanding(B)), (0, 0));
    check(&p);
    assert!(p.piece_verified(0) && p.is_complete() && p.missing_bytes() == 0);
}

#[test]
fn endgame_prefers_blocks_that_only_one_peer_was_asked_for() {
    let mut p = picker(1, 3);
    let all = Bitfield::full(1);
    p.peer_joined(&all);
    assert_eq!(pick(&mut p, A, &all, 2, 0).len(), 2);
    assert_eq!(pick(&mut p, B, &all, 2, 0), [block(0, 2), block(0, 0)], "the open block first, then endgame");
    assert_eq!(pick(&mut p, C, &all, 1, 0), [block(0, 1)], "asked from A only");
}

#[test]
fn endgame_asks_a_second_peer_for_a_block_never_a_third() {
    let mut p = picker(1, 2);
    let all = Bitfield::full(1);
    for _ in 0..3 {
        p.peer_joined(&all);
    }
    assert_eq!(pick(&mut p, A, &all, 8, 0).len(), 2);
    assert_eq!(pick(&mut p, B, &all, 8, 0).len(), 2, "endgame: B is asked too");
    assert!(pick(&mut p, C, &all, 8, 0).is_empty(), "a third copy of a block would only waste an uplink");
    // A's copy of block 0 comes: C may now be asked for nothing still (block 1 is asked of two).
    assert_eq!(p.block_received(A, block(0, 0)), Received::New { cancel: vec![B], piece_complete: false });
    assert!(pick(&mut p, C, &all, 8, 0).is_empty());
    check(&p);
}

#[test]
fn blocks_nobody_asked_that_peer_for_are_unexpected() {
    let mut p = picker(2, 2);
    let all = Bitfield::full(2);
    p.peer_joined(&all);
    let asked = pick(&mut p, A, &all, 1, 0)[0];
    assert_eq!(p.block_received(B, asked), Received::Unexpected, "asked from A, not from B");
    let other = Block { piece: 1 - asked.piece, ..asked };
    assert_eq!(p.block_received(A, other), Received::Unexpected, "piece not started");
    assert_eq!(p.block_received(A, Block { length: 100, ..asked }), Received::Unexpected, "wrong length");
    assert_eq!(p.block_received(A, Block { offset: 1, ..asked }), Received::Unexpected, "unaligned");
    assert_eq!(p.block_received(A, Block { piece: 7, ..asked }), Received::Unexpected, "no such piece");
    assert_eq!(p.block_received(A, asked), new(false));
    check(&p);
}

#[test]
fn a_failed_piece_goes_back_to_missing_and_names_its_contributors() {
    let mut p = picker(1, 3);
    let all = Bitfield::full(1);
    p.peer_joined(&all);
    let from_b = pick(&mut p, B, &all, 2, 0);
    let from_a = pick(&mut p, A, &all, 1, 0);
    assert_eq!(from_a, [block(0, 2)]);
    for b in from_b {
        assert!(matches!(p.block_received(B, b), Received::New { .. }));
    }
    assert_eq!(p.block_received(A, from_a[0]), new(true));
    assert!(pick(&mut p, C, &all, 5, 0).is_empty(), "a hashing piece is not requested again");
    assert_eq!(p.piece_failed(0), [A, B]);
    check(&p);
    assert!(!p.have(0) && !p.piece_verified(0) && p.piece_failed(0).is_empty());
    assert_eq!(pick(&mut p, C, &all, 5, 0), [block(0, 0), block(0, 1), block(0, 2)]);
}

#[test]
fn a_choke_returns_every_request_and_untouched_pieces_become_missing_again() {
    let mut p = picker(2, 2);
    let all = Bitfield::full(2);
    p.peer_joined(&all);
    let asked = pick(&mut p, A, &all, 4, 0);
    assert_eq!(p.block_received(A, asked[0]), new(false));
    let mut returned = p.peer_choked_us(A);
    returned.sort();
    let mut expected = asked[1..].to_vec();
    expected.sort();
    assert_eq!(returned, expected);
    check(&p);
    assert_eq!((p.outstanding(A), p.unstarted), (0, 1), "the untouched piece is missing again");
    // B first completes the piece A started, then takes the other.
    let again = pick(&mut p, B, &all, 4, 0);
    assert_eq!(again[0], asked[1]);
    assert_eq!(again.len(), 3);
}

#[test]
fn a_timed_out_request_goes_back_to_the_pool() {
    let mut p = picker(1, 2);
    let all = Bitfield::full(1);
    p.peer_joined(&all);
    let asked = pick(&mut p, A, &all, 1, 0)[0];
    assert!(!p.request_timed_out(B, asked), "not asked from B");
    assert!(p.request_timed_out(A, asked));
    assert!(!p.request_timed_out(A, asked), "already returned");
    check(&p);
    assert_eq!(p.outstanding(A), 0);
    assert_eq!(pick(&mut p, B, &all, 1, 0), [asked]);
}

#[test]
fn a_departing_peer_returns_its_requests_and_its_availability() {
    let mut p = picker(2, 1);
    let theirs = bits(2, &[1]);
    p.peer_joined(&theirs);
    let asked = pick(&mut p, A, &theirs, 4, 0);
    assert_eq!(p.peer_left(A, &theirs), asked);
    check(&p);
    assert_eq!(p.availability(1), 0);
}

#[test]
fn resumed_pieces_are_never_requested() {
    let mut p = Picker::new(BLOCK_LEN, u64::from(3 * BLOCK_LEN) - 10).expect("valid geometry");
    let all = Bitfield::full(3);
    p.peer_joined(&all);
    assert_eq!(pick(&mut p, A, &bits(3, &[0]), 1, 0), [block(0, 0)]);
    assert!(p.mark_have(0) && p.mark_have(2) && !p.mark_have(2) && !p.mark_have(3));
    check(&p);
    assert_eq!(p.missing_bytes(), u64::from(BLOCK_LEN));
    assert_eq!(p.outstanding(A), 0, "requests for a resumed piece are forgotten");
    assert_eq!(pick(&mut p, A, &all, 5, 0), [block(1, 0)]);
    assert!(p.mark_have(1) && p.is_complete() && !p.in_endgame());
    assert!(p.we_have().is_complete() && p.missing_bytes() == 0);
}

#[test]
fn an_empty_torrent_is_complete_from_the_start() {
    let mut p = Picker::new(BLOCK_LEN, 0).expect("valid geometry");
    assert!(p.is_complete() && p.num_pieces() == 0);
    assert!(pick(&mut p, A, &Bitfield::new(0), 4, 0).is_empty());
}

proptest::proptest! {
    #[test]
    fn the_word_walk_agrees_with_the_bitfield_walk(
        ours in proptest::collection::vec(proptest::bool::ANY, 0..200),
        theirs_seed in proptest::prelude::any::<u64>(),
    ) {
        let n = ours.len() as u32;
        let held: Vec<u32> = (0..n).filter(|&i| ours[i as usize]).collect();
        let ours = bits(n, &held);
        let theirs_held: Vec<u32> = (0..n).filter(|i| (theirs_seed.rotate_left(*i) ^ u64::from(*i)) & 3 != 0).collect();
        let theirs = bits(n, &theirs_held);
        let fast: Vec<u32> = super::wanted(&ours, &theirs).collect();
        let slow: Vec<u32> = ours.wanted_from(&theirs).collect();
        proptest::prop_assert_eq!(fast, slow);
    }
}

fn pick_with(p: &mut Picker, peer: PeerKey, theirs: &Bitfield, max: usize, limits: PickLimits) -> Vec<Block> {
    let mut out = Vec::new();
    p.pick_limited(peer, theirs, max, limits, &mut SmallRng::seed_from_u64(9), &mut out);
    check(p);
    out
}

const PAROLE: PickLimits = PickLimits { new_pieces: u32::MAX, exclusive: true };

#[test]
fn a_peer_on_parole_downloads_whole_pieces_alone_and_nobody_joins_them() {
    let mut p = picker(4, 4);
    let seed = Bitfield::full(4);
    p.peer_joined(&seed);
    p.peer_joined(&seed);
    // A parolee with room for 2 blocks starts a piece it owns.
    let mine = pick_with(&mut p, A, &seed, 2, PAROLE);
    assert_eq!(mine.len(), 2);
    let owned = mine[0].piece;
    assert!(mine.iter().all(|b| b.piece == owned));
    // Another peer never gets the owned piece's open blocks, even through strict priority.
    let theirs = pick(&mut p, B, &seed, 100, 1);
    assert!(theirs.iter().all(|b| b.piece != owned), "B was asked for blocks of A's piece: {theirs:?}");
    // Nor does endgame duplicate the parolee's requests.
    let more = pick(&mut p, C, &seed, 100, 2);
    assert!(more.iter().all(|b| b.piece != owned), "C was asked in endgame for A's piece: {more:?}");
    // The parolee finishes its own piece, and it is sent by A alone.
    let rest = pick_with(&mut p, A, &seed, 100, PAROLE);
    assert!(rest.iter().all(|b| b.piece == owned), "a parolee gets only its own piece here: {rest:?}");
    for b in mine.iter().chain(&rest) {
        assert!(matches!(p.block_received(A, *b), Received::New { .. }));
    }
    check(&p);
    assert_eq!(p.block_senders(owned), Some(vec![A; 4]));
}

#[test]
fn a_parolee_that_chokes_us_releases_its_pieces_to_everyone() {
    let mut p = picker(2, 4);
    let seed = Bitfield::full(2);
    p.peer_joined(&seed);
    let mine = pick_with(&mut p, A, &seed, 2, PAROLE);
    let owned = mine[0].piece;
    assert!(matches!(p.block_received(A, mine[0]), Received::New { .. }));
    p.peer_choked_us(A);
    check(&p);
    let theirs = pick(&mut p, B, &seed, 100, 3);
    assert!(theirs.iter().any(|b| b.piece == owned), "the piece stayed locked to A: {theirs:?}");
}

#[test]
fn a_cap_on_new_pieces_holds_and_partial_pieces_still_get_picked() {
    let mut p = picker(10, 4);
    let seed = Bitfield::full(10);
    p.peer_joined(&seed);
    let first = pick_with(&mut p, A, &seed, 100, PickLimits { new_pieces: 2, exclusive: false });
    assert_eq!(first.len(), 8, "two pieces of four blocks");
    assert_eq!(p.downloading(), 2);
    p.peer_choked_us(A);
    check(&p);
    let none_new = pick_with(&mut p, B, &seed, 100, PickLimits { new_pieces: 0, exclusive: false });
    assert!(none_new.is_empty(), "requests returned with nothing received send pieces back to missing");
    let again = pick_with(&mut p, B, &seed, 3, PickLimits { new_pieces: 1, exclusive: false });
    assert_eq!(again.len(), 3);
    p.peer_choked_us(B);
    assert_eq!(p.downloading(), 0);
}

#[test]
fn an_abandoned_piece_can_be_dropped_and_a_worked_one_cannot() {
    let mut p = picker(2, 4);
    let seed = Bitfield::full(2);
    p.peer_joined(&seed);
    let asked = pick(&mut p, A, &seed, 8, 4);
    // A sends three blocks of one piece and leaves; its other requests go back.
    let piece = asked[0].piece;
    for b in asked.iter().filter(|b| b.piece == piece).take(3) {
        assert!(matches!(p.block_received(A, *b), Received::New { .. }));
    }
    let other = asked.iter().find(|b| b.piece != piece).expect("a second piece").piece;
    assert!(!p.is_abandoned(piece), "A still has a request out");
    p.peer_left(A, &seed);
    check(&p);
    assert!(p.is_abandoned(piece));
    assert!(!p.in_progress(other), "the piece with nothing received went back to missing");
    // Someone else is asked for the last block: no longer abandoned.
    p.peer_joined(&seed);
    let last = pick(&mut p, B, &seed, 1, 5);
    assert_eq!(last.len(), 1);
    assert!(!p.abandon(last[0].piece), "a piece with a request out is not dropped");
    p.peer_left(B, &seed);
    assert!(p.abandon(piece));
    check(&p);
    assert!(!p.in_progress(piece) && p.downloading() == 0);
    assert_eq!(pick(&mut p, C, &seed, 100, 6).len(), 8, "the dropped piece is fetched again whole");
}

#[test]
fn pieces_left_out_are_never_picked_and_the_download_finishes_without_them() {
    let mut p = picker(8, 1);
    let seed = Bitfield::full(8);
    p.peer_joined(&seed);
    p.set_sequential(Some(1));
    // A piece being downloaded when it is left out is finished all the same.
    let first = pick(&mut p, A, &seed, 1, 1);
    assert_eq!(first, vec![block(0, 0)], "sequential: the first piece");
    p.set_sequential(None);
    p.set_wanted(&bits(8, &[2, 5, 6]));
    check(&p);
    assert!(!p.is_finished());
    // Piece 0, left out while on its way, is still of interest until it is in.
    assert!(p.is_interesting(&seed) && !p.is_interesting(&bits(8, &[1, 3, 4, 7])));
    // (B lacks piece 0, which A brings: otherwise the endgame would ask B for it too.)
    let all_but_first = bits(8, &[1, 2, 3, 4, 5, 6, 7]);
    p.peer_joined(&all_but_first);
    let mut picked = pick(&mut p, B, &all_but_first, 100, 2);
    picked.sort();
    assert_eq!(picked, vec![block(2, 0), block(5, 0), block(6, 0)], "only the wanted pieces");
    for (peer, b) in [(A, block(0, 0)), (B, block(2, 0)), (B, block(5, 0)), (B, block(6, 0))] {
        assert_eq!(p.block_received(peer, b), new(true));
        assert!(p.piece_verified(b.piece));
        check(&p);
    }
    assert!(p.is_finished() && !p.is_complete());
    assert_eq!(pick(&mut p, C, &seed, 100, 3), vec![], "nothing left to ask for");
    assert_eq!(p.missing_bytes(), u64::from(4 * BLOCK_LEN), "the tracker still hears what is missing");

    // Wanted again: back in the pool, rarest first among them.
    p.set_wanted(&Bitfield::full(8));
    check(&p);
    assert!(!p.is_finished());
    let mut rest = pick(&mut p, C, &seed, 100, 4);
    rest.sort();
    assert_eq!(rest, [1, 3, 4, 7].map(|piece| block(piece, 0)).to_vec());
    // A piece that fails while left out goes back to being left out, not to the pool.
    p.set_wanted(&bits(8, &[0, 2, 5, 6]));
    assert_eq!(p.block_received(C, block(1, 0)), new(true));
    assert!(!p.piece_failed(1).is_empty());
    check(&p);
    assert!(p.is_finished(), "3, 4 and 7 are on their way, but no longer wanted");
    for piece in [3, 4, 7] {
        assert_eq!(p.block_received(C, block(piece, 0)), new(true));
        assert!(p.piece_verified(piece), "what comes in all the same is kept");
    }
    check(&p);
    assert_eq!(pick(&mut p, A, &seed, 100, 5), vec![], "the failed piece is not asked for again");
}

#[test]
fn higher_priority_pieces_are_started_first_whichever_way_the_peer_is_read() {
    use super::{HIGH, LOW, NORMAL};
    let mut p = picker(8, 1);
    let seed = Bitfield::full(8);
    p.peer_joined(&seed);
    p.set_priorities(&[LOW, NORMAL, HIGH, NORMAL, LOW, HIGH, NORMAL, 0]);
    check(&p);
    // A seeder: read from the buckets, highest tier first.
    let order: Vec<u32> = pick(&mut p, A, &seed, 100, 1).iter().map(|block| block.piece).collect();
    assert_eq!(order.len(), 7, "every wanted piece: {order:?}");
    let rank = |piece: u32| [1, 2, 3, 2, 1, 3, 2, 0][piece as usize];
    assert!(order.windows(2).all(|pair| rank(pair[0]) >= rank(pair[1])), "started by priority: {order:?}");

    // A peer with few pieces: its bitfield is walked, ranked by priority first too.
    let mut p = picker(64, 1);
    let few = bits(64, &[3, 10, 40]);
    p.peer_joined(&few);
    p.peer_joined(&bits(64, &[40]));
    let mut priorities = vec![NORMAL; 64];
    priorities[3] = LOW;
    priorities[10] = HIGH;
    p.set_priorities(&priorities);
    let order: Vec<u32> = pick(&mut p, B, &few, 100, 2).iter().map(|block| block.piece).collect();
    assert_eq!(order, vec![10, 40, 3], "high, then normal (rarer first), then low");
}

#[test]
fn random_order_ignores_rarity_and_rarest_first_does_not() {
    let all = Bitfield::full(8);
    let common = bits(8, &[0, 1, 2, 3, 4, 5, 6]);
    let first_pick = |random: bool, seed: u64| {
        let mut p = picker(8, 1);
        p.set_random_order(random);
        p.peer_joined(&all);
        p.peer_joined(&common);
        pick(&mut p, A, &all, 1, seed)[0].piece
    };
    // Piece 7 is the rarest: rarest first always starts it; random order starts others too.
    assert!((0..20).all(|seed| first_pick(false, seed) == 7));
    assert!((0..20).any(|seed| first_pick(true, seed) != 7));
}
