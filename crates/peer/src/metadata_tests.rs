use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use sha1::{Digest, Sha1};

use super::*;
use metainfo::merkle::Hash32;

const PIECE: usize = peer_wire::METADATA_PIECE_LEN;

/// `secs` seconds into the test's time.
fn at(secs: u64) -> Instant {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *START.get_or_init(Instant::now) + Duration::from_secs(secs)
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Metadata of `len` bytes and its info-hash.
fn metadata(len: usize) -> (Vec<u8>, [u8; 20]) {
    let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    let hash = Sha1::digest(&data).into();
    (data, hash)
}

fn piece(data: &[u8], index: u32) -> &[u8] {
    let start = index as usize * PIECE;
    &data[start..(start + PIECE).min(data.len())]
}

#[test]
fn pieces_are_spread_over_peers_and_the_whole_is_checked() {
    let (data, hash) = metadata(5 * PIECE + 100);
    let size = data.len() as u32;
    let mut fetch = MetadataFetch::new(hash);
    fetch.join(addr(1), size.into(), at(0)).expect("accepted");
    fetch.join(addr(2), size.into(), at(0)).expect("accepted");
    let first = fetch.next_requests(addr(1), at(0));
    let second = fetch.next_requests(addr(2), at(0));
    assert_eq!(first, vec![0, 1, 2, 3]);
    // Nobody else asked for 4 and 5; then 2nd round: pieces asked once already.
    assert_eq!(second[..2], [4, 5]);
    assert_eq!(second.len(), REQUESTS_PER_PEER);
    for index in 0..6 {
        let from = if first.contains(&index) { addr(1) } else { addr(2) };
        let received = fetch.data(from, index, size, piece(&data, index), at(0)).expect("accepted");
        if index < 5 {
            assert_eq!(received, Received::Stored);
        } else {
            assert_eq!(received, Received::Complete(data.clone()));
        }
    }
    assert!(fetch.is_done());
    assert!(fetch.next_requests(addr(1), at(0)).is_empty());
}

#[test]
fn unasked_data_is_not_stored() {
    let (data, hash) = metadata(2 * PIECE);
    let mut fetch = MetadataFetch::new(hash);
    fetch.join(addr(1), data.len() as u64, at(0)).expect("accepted");
    // Never asked: ignored, so a peer cannot push pieces at us.
    assert_eq!(fetch.data(addr(1), 1, data.len() as u32, piece(&data, 1), at(0)).expect("accepted"), Received::Ignored);
    assert_eq!(fetch.next_requests(addr(1), at(0)), vec![0, 1]);
}

#[test]
fn sizes_over_the_cap_are_refused_and_banned_before_allocating() {
    let mut fetch = MetadataFetch::new([0; 20]);
    assert_eq!(fetch.join(addr(1), 4 << 30, at(0)), Err(Refusal::TooLarge { size: 4 << 30 }));
    assert!(fetch.is_banned(addr(1)));
    assert_eq!(fetch.join(addr(2), 0, at(0)), Err(Refusal::Empty));
    assert!(!fetch.is_banned(addr(2)));
    assert!(fetch.next_requests(addr(1), at(0)).is_empty());
}

#[test]
fn a_peer_lying_about_the_size_does_not_stop_the_others() {
    let (data, hash) = metadata(PIECE + 10);
    let mut fetch = MetadataFetch::new(hash);
    fetch.join(addr(9), 999, at(0)).expect("accepted");
    fetch.join(addr(1), data.len() as u64, at(0)).expect("accepted");
    assert_eq!(fetch.next_requests(addr(9), at(0)), vec![0]);
    assert_eq!(fetch.next_requests(addr(1), at(0)), vec![0, 1]);
    assert_eq!(fetch.data(addr(1), 0, data.len() as u32, piece(&data, 0), at(0)).expect("accepted"), Received::Stored);
    assert_eq!(
        fetch.data(addr(1), 1, data.len() as u32, piece(&data, 1), at(0)).expect("accepted"),
        Received::Complete(data)
    );
}

#[test]
fn a_new_size_is_never_refused_and_evicts_an_attempt_without_peers_first_else_the_oldest() {
    let (data, hash) = metadata(PIECE + 10);
    let size = data.len() as u64;
    let mut fetch = MetadataFetch::new(hash);
    for (port, liar_size) in [(1, 1000), (2, 2000), (3, 3000), (4, 4000)] {
        fetch.join(addr(port), liar_size, at(0)).expect("accepted");
    }
    assert_eq!(fetch.attempts(), MAX_SIZES);
    // Every slot busy, every attempt with a peer: the oldest (1000 bytes) makes room; the honest size is not refused.
    fetch.join(addr(9), size, at(1)).expect("a new size is accepted");
    assert_eq!(fetch.attempts(), MAX_SIZES);
    assert!(fetch.next_requests(addr(1), at(1)).is_empty(), "its attempt is gone and no slot is free");
    // A size whose last peer leaves dies with it, and its slot goes to the next newcomer before any other.
    fetch.leave(addr(3));
    assert_eq!(fetch.attempts(), MAX_SIZES - 1);
    fetch.join(addr(5), 5000, at(2)).expect("accepted");
    fetch.join(addr(6), 6000, at(2)).expect("accepted");
    assert_eq!(fetch.attempts(), MAX_SIZES);
    // The honest attempt lives on through both, and completes.
    assert_eq!(fetch.next_requests(addr(9), at(2)), vec![0, 1]);
    fetch.data(addr(9), 0, size as u32, piece(&data, 0), at(2)).expect("accepted");
    assert_eq!(
        fetch.data(addr(9), 1, size as u32, piece(&data, 1), at(2)).expect("accepted"),
        Received::Complete(data)
    );
}

#[test]
fn the_same_liars_hanging_up_leave_no_attempt_behind() {
    let mut fetch = MetadataFetch::new([0; 20]);
    for round in 0..24u16 {
        let liar = addr(100 + round);
        fetch.join(liar, 1000 + u64::from(round), at(u64::from(round))).expect("accepted");
        fetch.leave(liar);
    }
    assert_eq!((fetch.attempts(), fetch.held()), (0, 0));
}

#[test]
fn unasked_data_is_ignored_and_does_not_renew_patience() {
    let (data, hash) = metadata(2 * PIECE);
    let size = data.len() as u32;
    let mut fetch = MetadataFetch::new(hash);
    fetch.join(addr(1), size.into(), at(0)).expect("accepted");
    assert_eq!(fetch.next_requests(addr(1), at(0)), vec![0, 1]);
    // Piece 999 and a duplicate of a piece never asked of it are sent every 5 s: nothing is kept, nothing renewed.
    for secs in [5, 10, 15] {
        assert_eq!(fetch.data(addr(1), 999, size, &[0; 10], at(secs)).expect("not asked"), Received::Ignored);
    }
    assert!(!fetch.is_stalled(addr(1), at(19)));
    assert!(fetch.is_stalled(addr(1), at(20)), "20 s after it connected, with nothing asked delivered");
    assert_eq!(fetch.held(), 0);
}

#[test]
fn an_ask_times_out_and_an_idle_peer_takes_a_piece_held_by_stallers() {
    let (data, hash) = metadata(PIECE);
    let size = data.len() as u32;
    let mut fetch = MetadataFetch::new(hash);
    fetch.join(addr(1), size.into(), at(0)).expect("accepted");
    fetch.join(addr(2), size.into(), at(0)).expect("accepted");
    assert_eq!(fetch.next_requests(addr(1), at(0)), vec![0]);
    assert_eq!(fetch.next_requests(addr(2), at(0)), vec![0]);
    // Both stallers hold the one piece, asked twice; an idle newcomer takes it all the same, at once.
    fetch.join(addr(3), size.into(), at(1)).expect("accepted");
    assert_eq!(fetch.next_requests(addr(3), at(1)), vec![0]);
    assert_eq!(fetch.data(addr(3), 0, size, &data, at(1)).expect("accepted"), Received::Complete(data));
}

#[test]
fn a_timed_out_ask_goes_to_a_peer_with_room() {
    let (data, hash) = metadata(2 * PIECE);
    let size = data.len() as u32;
    let mut fetch = MetadataFetch::new(hash);
    for staller in [addr(1), addr(3)] {
        fetch.join(staller, size.into(), at(0)).expect("accepted");
        assert_eq!(fetch.next_requests(staller, at(0)), vec![0, 1]);
    }
    fetch.join(addr(2), size.into(), at(1)).expect("accepted");
    assert_eq!(fetch.next_requests(addr(2), at(1)), vec![0], "idle: the least asked piece, asked twice already");
    // Piece 1 is asked of both stallers until their asks time out; then it goes to the peer with room.
    assert!(fetch.next_requests(addr(2), at(4)).is_empty());
    assert_eq!(fetch.next_requests(addr(2), at(PIECE_TIMEOUT.as_secs())), vec![1]);
    assert!(fetch.next_requests(addr(1), at(10)).is_empty(), "a staller's room stays full");
    fetch.data(addr(2), 0, size, piece(&data, 0), at(6)).expect("accepted");
    assert_eq!(fetch.data(addr(2), 1, size, piece(&data, 1), at(6)).expect("accepted"), Received::Complete(data));
}

#[test]
fn peers_that_delivered_nothing_are_rotated_out_oldest_first() {
    let (data, hash) = metadata(2 * PIECE);
    let size = data.len() as u32;
    let mut fetch = MetadataFetch::new(hash);
    fetch.connected(addr(1), at(0));
    fetch.join(addr(2), size.into(), at(1)).expect("accepted");
    fetch.join(addr(3), size.into(), at(2)).expect("accepted");
    fetch.next_requests(addr(3), at(2));
    fetch.data(addr(3), 0, size, piece(&data, 0), at(3)).expect("accepted");
    assert!(fetch.to_rotate(at(4), 5).is_empty(), "nobody has had its chance yet");
    assert_eq!(fetch.to_rotate(at(6), 5), vec![addr(1), addr(2)], "the one that delivered stays");
    assert_eq!(fetch.to_rotate(at(6), 1), vec![addr(1)], "no more than wait");
}

#[test]
fn memory_stays_within_the_budget_whatever_the_sizes_offered() {
    let (data, hash) = metadata(PIECE + 10);
    let mut fetch = MetadataFetch::new(hash);
    let junk = vec![0x55; PIECE];
    let liars: Vec<(SocketAddr, u32)> = (0..3).map(|n| (addr(100 + n), MAX_METADATA_SIZE - u32::from(n))).collect();
    for &(liar, size) in &liars {
        fetch.join(liar, size.into(), at(0)).expect("accepted");
    }
    fetch.join(addr(1), data.len() as u64, at(0)).expect("accepted");
    // The liars answer everything asked of them, at full speed.
    let (mut most_held, mut failed) = (0, Vec::new());
    for _ in 0..(4 * MAX_METADATA_SIZE as usize / PIECE) {
        for &(liar, size) in &liars {
            for piece in fetch.next_requests(liar, at(0)) {
                let len = (size as usize - piece as usize * PIECE).min(PIECE);
                if let Received::Failed { senders } = fetch.data(liar, piece, size, &junk[..len], at(0)).expect("fits")
                {
                    failed.extend(senders);
                }
                most_held = most_held.max(fetch.held());
                assert!(fetch.held() <= MAX_HELD, "{} bytes held", fetch.held());
            }
        }
    }
    assert!(most_held > MAX_HELD / 2, "they did fill it");
    // One at a time went on to the end, failed its check and gave its memory back.
    failed.sort_unstable();
    assert_eq!(failed, liars.iter().map(|&(liar, _)| liar).collect::<Vec<_>>());
    assert!(liars.iter().all(|&(liar, _)| fetch.is_banned(liar)));
    assert_eq!(fetch.held(), 0);
    assert_eq!(fetch.next_requests(addr(1), at(0)), vec![0, 1]);
    fetch.data(addr(1), 0, data.len() as u32, piece(&data, 0), at(0)).expect("accepted");
    let last = fetch.data(addr(1), 1, data.len() as u32, piece(&data, 1), at(0)).expect("accepted");
    assert_eq!(last, Received::Complete(data));
}

#[test]
fn a_lone_liar_is_banned_and_others_finish() {
    let (data, hash) = metadata(2 * PIECE);
    let size = data.len() as u32;
    let mut fetch = MetadataFetch::new(hash);
    fetch.join(addr(66), size.into(), at(0)).expect("accepted");
    assert_eq!(fetch.next_requests(addr(66), at(0)), vec![0, 1]);
    let junk = vec![0xAA; PIECE];
    assert_eq!(fetch.data(addr(66), 0, size, &junk, at(0)).expect("accepted"), Received::Stored);
    assert_eq!(
        fetch.data(addr(66), 1, size, &junk, at(0)).expect("accepted"),
        Received::Failed { senders: vec![addr(66)] }
    );
    assert!(fetch.is_banned(addr(66)));
    assert!(fetch.next_requests(addr(66), at(0)).is_empty());
    fetch.join(addr(1), size.into(), at(0)).expect("accepted");
    assert_eq!(fetch.next_requests(addr(1), at(0)), vec![0, 1]);
    fetch.data(addr(1), 0, size, piece(&data, 0), at(0)).expect("accepted");
    assert_eq!(fetch.data(addr(1), 1, size, piece(&data, 1), at(0)).expect("accepted"), Received::Complete(data));
}

#[test]
fn after_a_shared_failure_one_peer_fetches_alone_and_the_liar_is_found() {
    let (data, hash) = metadata(2 * PIECE);
    let size = data.len() as u32;
    let junk = vec![0xAA; PIECE];
    let mut fetch = MetadataFetch::new(hash);
    for port in [1, 66] {
        fetch.join(addr(port), size.into(), at(0)).expect("accepted");
    }
    assert_eq!(fetch.next_requests(addr(1), at(0)), vec![0, 1]);
    assert_eq!(fetch.next_requests(addr(66), at(0)), vec![0, 1]);
    fetch.data(addr(1), 0, size, piece(&data, 0), at(0)).expect("accepted");
    let failed = fetch.data(addr(66), 1, size, &junk, at(0)).expect("accepted");
    assert_eq!(failed, Received::Failed { senders: vec![addr(1), addr(66)] });
    assert!(!fetch.is_banned(addr(1)) && !fetch.is_banned(addr(66)));
    // Drain what is still in flight, as peers would answer it.
    fetch.leave(addr(1));
    fetch.leave(addr(66));
    fetch.join(addr(66), size.into(), at(0)).expect("accepted");
    fetch.join(addr(1), size.into(), at(0)).expect("accepted");
    assert_eq!(fetch.next_requests(addr(66), at(0)), vec![0, 1]);
    assert!(fetch.next_requests(addr(1), at(0)).is_empty(), "single source: the attempt belongs to one peer");
    fetch.data(addr(66), 0, size, &junk, at(0)).expect("accepted");
    assert_eq!(
        fetch.data(addr(66), 1, size, &junk, at(0)).expect("accepted"),
        Received::Failed { senders: vec![addr(66)] }
    );
    assert!(fetch.is_banned(addr(66)));
    assert_eq!(fetch.next_requests(addr(1), at(0)), vec![0, 1]);
    fetch.data(addr(1), 0, size, piece(&data, 0), at(0)).expect("accepted");
    assert_eq!(fetch.data(addr(1), 1, size, piece(&data, 1), at(0)).expect("accepted"), Received::Complete(data));
}

#[test]
fn a_rejected_or_abandoned_piece_is_asked_of_someone_else() {
    let (data, hash) = metadata(8 * PIECE);
    let size = data.len() as u32;
    let mut fetch = MetadataFetch::new(hash);
    fetch.join(addr(1), size.into(), at(0)).expect("accepted");
    fetch.join(addr(2), size.into(), at(0)).expect("accepted");
    assert_eq!(fetch.next_requests(addr(1), at(0)), vec![0, 1, 2, 3]);
    assert_eq!(fetch.next_requests(addr(2), at(0)), vec![4, 5, 6, 7]);
    fetch.rejected(addr(1), 0);
    fetch.leave(addr(2));
    fetch.join(addr(3), size.into(), at(0)).expect("accepted");
    assert_eq!(fetch.next_requests(addr(3), at(0)), vec![0, 4, 5, 6]);
    assert!(fetch.is_waiting_on(addr(3)));
    assert!(!fetch.is_waiting_on(addr(2)));
}

#[test]
fn wrong_lengths_drop_the_peer() {
    let (data, hash) = metadata(2 * PIECE);
    let size = data.len() as u32;
    let mut fetch = MetadataFetch::new(hash);
    fetch.join(addr(1), size.into(), at(0)).expect("accepted");
    fetch.next_requests(addr(1), at(0));
    assert!(matches!(fetch.data(addr(1), 0, size, &data[..10], at(0)), Err(Refusal::BadData(_))));
    assert!(matches!(fetch.data(addr(1), 1, size + 1, piece(&data, 1), at(0)), Err(Refusal::BadData(_))));
}

/// Fetches `data` from one peer under `check`: what the last piece gave.
fn fetch_all(check: InfoCheck, data: &[u8]) -> Received {
    let mut fetch = MetadataFetch::with_check(check);
    let size = data.len() as u32;
    fetch.join(addr(1), size.into(), at(0)).expect("accepted");
    let mut last = Received::Stored;
    for index in fetch.next_requests(addr(1), at(0)) {
        last = fetch.data(addr(1), index, size, piece(data, index), at(0)).expect("accepted");
    }
    last
}

#[test]
fn a_v2_link_checks_the_sha256_and_a_hybrid_link_both_hashes() {
    let (data, sha1) = metadata(2 * PIECE + 5);
    let sha256 = metainfo::merkle::leaf(&data);
    let complete = Received::Complete(data.clone());
    assert_eq!(fetch_all(InfoCheck { v1: None, v2: Some(sha256) }, &data), complete);
    assert_eq!(fetch_all(InfoCheck { v1: Some(sha1), v2: Some(sha256) }, &data), complete);
    let mut other = sha256;
    other[31] ^= 1;
    let failed = Received::Failed { senders: vec![addr(1)] };
    assert_eq!(fetch_all(InfoCheck { v1: None, v2: Some(other) }, &data), failed);
    // A hybrid link whose two hashes name different torrents: one match is not enough.
    assert_eq!(fetch_all(InfoCheck { v1: Some(sha1), v2: Some(other) }, &data), failed);
    let mut wrong_v1 = sha1;
    wrong_v1[0] ^= 1;
    assert_eq!(fetch_all(InfoCheck { v1: Some(wrong_v1), v2: Some(sha256) }, &data), failed);
    let nothing = fetch_all(InfoCheck { v1: None, v2: None }, &data);
    assert_eq!(nothing, failed, "no hash: nothing matches");
}

/// A file of `pieces` pieces of 16 KiB with a made-up piece layer: its tree (to answer requests) and what to ask.
fn layer_file(pieces: u32) -> (metainfo::merkle_proof::HashTree, Vec<Hash32>, LayersWanted) {
    let length = u64::from(pieces) * 16_384 - 100;
    let layer: Vec<Hash32> = (0..pieces).map(|i| metainfo::merkle::leaf(&i.to_le_bytes())).collect();
    let tree = metainfo::merkle_proof::HashTree::from_piece_layer(&layer, 16_384, length).expect("a tree");
    let wanted = LayersWanted { piece_length: 16_384, files: vec![(tree.root(), length)], hybrid: false };
    (tree, layer, wanted)
}

fn answer(tree: &metainfo::merkle_proof::HashTree, range: &HashRange) -> Vec<u8> {
    tree.serve(range).expect("served").concat()
}

#[test]
fn a_layer_of_more_than_512_pieces_takes_two_verified_requests() {
    let (tree, layer, wanted) = layer_file(600);
    let mut fetch = LayerFetch::new(&wanted);
    assert!(!fetch.is_done());
    let asked = fetch.next_requests(addr(1));
    assert_eq!(asked.len(), 2);
    assert!(fetch.next_requests(addr(2)).is_empty(), "each request is asked of one peer at a time");
    // Unasked: ignored, whatever it holds.
    assert_eq!(
        fetch.hashes(addr(2), &asked[0].0, &asked[0].1, &answer(&tree, &asked[0].1)),
        Ok(LayerProgress::Ignored)
    );
    assert_eq!(fetch.hashes(addr(1), &asked[1].0, &asked[1].1, &answer(&tree, &asked[1].1)), Ok(LayerProgress::Stored));
    assert_eq!(fetch.layers(), None);
    assert_eq!(
        fetch.hashes(addr(1), &asked[0].0, &asked[0].1, &answer(&tree, &asked[0].1)),
        Ok(LayerProgress::Complete)
    );
    assert_eq!(fetch.layers(), Some(BTreeMap::from([(tree.root(), layer)])));
}

#[test]
fn a_bad_proof_bans_its_sender_and_a_reject_goes_to_another_peer() {
    let (tree, layer, wanted) = layer_file(600);
    let mut fetch = LayerFetch::new(&wanted);
    let asked = fetch.next_requests(addr(1));
    let mut forged = answer(&tree, &asked[0].1);
    forged[5] ^= 1;
    assert!(fetch.hashes(addr(1), &asked[0].0, &asked[0].1, &forged).is_err());
    assert!(fetch.is_banned(addr(1)));
    assert!(fetch.next_requests(addr(1)).is_empty(), "not asked for hashes again");
    assert!(!fetch.has_work_for(addr(1)));
    // Its requests went back: peer 2 gets both, rejects one, which goes to peer 3.
    let second = fetch.next_requests(addr(2));
    assert_eq!(second, asked);
    fetch.rejected(addr(2), &second[0].0, &second[0].1);
    assert!(fetch.next_requests(addr(2)).is_empty(), "a refused request is not asked again of the same peer");
    assert_eq!(fetch.next_requests(addr(3)), vec![second[0]]);
    // A short answer is a bad proof too.
    assert!(fetch.hashes(addr(3), &second[0].0, &second[0].1, &answer(&tree, &second[0].1)[32..]).is_err());
    fetch.leave(addr(2));
    let fourth = fetch.next_requests(addr(4));
    assert_eq!(fourth.len(), 2);
    for (root, range) in &fourth {
        fetch.hashes(addr(4), root, range, &answer(&tree, range)).expect("verified");
    }
    assert_eq!(fetch.layers(), Some(BTreeMap::from([(tree.root(), layer)])));
}

/// What a hybrid falls back on: the layers of files whose every request is answered, none of a file half in.
#[test]
fn proven_layers_hold_only_whole_files_and_files_missing_counts_the_rest() {
    let (big, big_layer, big_wanted) = layer_file(600);
    let (small, small_layer, small_wanted) = layer_file(3);
    let files = [big_wanted.files, small_wanted.files].concat();
    let wanted = LayersWanted { piece_length: 16_384, files, hybrid: true };
    let mut fetch = LayerFetch::new(&wanted);
    assert_eq!(fetch.files_missing(), 2);
    assert!(fetch.proven_layers().is_empty());
    let asked = fetch.next_requests(addr(1));
    assert_eq!(asked.len(), 3, "two requests for the big file, one for the small one");
    let tree_of = |root: &Hash32| if *root == big.root() { &big } else { &small };
    // The small file and half of the big one.
    for (root, range) in asked.iter().filter(|(root, _)| *root == small.root()).chain(&asked[..1]) {
        assert_eq!(fetch.hashes(addr(1), root, range, &answer(tree_of(root), range)), Ok(LayerProgress::Stored));
    }
    assert_eq!(fetch.files_missing(), 1);
    assert_eq!(fetch.proven_layers(), BTreeMap::from([(small.root(), small_layer.clone())]));
    assert_eq!(fetch.layers(), None, "not all in");
    let (root, range) =
        asked.iter().find(|(root, range)| *root == big.root() && *range != asked[0].1).expect("the rest");
    assert_eq!(fetch.hashes(addr(1), root, range, &answer(&big, range)), Ok(LayerProgress::Complete));
    assert_eq!(fetch.files_missing(), 0);
    let all = BTreeMap::from([(small.root(), small_layer), (big.root(), big_layer)]);
    assert_eq!(fetch.proven_layers(), all);
    assert_eq!(fetch.layers(), Some(all));
}
