use std::net::SocketAddr;

use sha1::{Digest, Sha1};

use super::*;

const PIECE: usize = peer_wire::METADATA_PIECE_LEN;

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
    fetch.join(addr(1), size.into()).expect("accepted");
    fetch.join(addr(2), size.into()).expect("accepted");
    let first = fetch.next_requests(addr(1));
    let second = fetch.next_requests(addr(2));
    assert_eq!(first, vec![0, 1, 2, 3]);
    // Nobody else asked for 4 and 5; then 2nd round: pieces asked once already.
    assert_eq!(second[..2], [4, 5]);
    assert_eq!(second.len(), REQUESTS_PER_PEER);
    for index in 0..6 {
        let from = if first.contains(&index) { addr(1) } else { addr(2) };
        let received = fetch.data(from, index, size, piece(&data, index)).expect("accepted");
        if index < 5 {
            assert_eq!(received, Received::Stored);
        } else {
            assert_eq!(received, Received::Complete(data.clone()));
        }
    }
    assert!(fetch.is_done());
    assert!(fetch.next_requests(addr(1)).is_empty());
}

#[test]
fn unasked_data_is_not_stored() {
    let (data, hash) = metadata(2 * PIECE);
    let mut fetch = MetadataFetch::new(hash);
    fetch.join(addr(1), data.len() as u64).expect("accepted");
    // Never asked: ignored, so a peer cannot push pieces at us.
    assert_eq!(fetch.data(addr(1), 1, data.len() as u32, piece(&data, 1)).expect("accepted"), Received::Stored);
    assert_eq!(fetch.next_requests(addr(1)), vec![0, 1]);
}

#[test]
fn sizes_over_the_cap_are_refused_and_banned_before_allocating() {
    let mut fetch = MetadataFetch::new([0; 20]);
    assert_eq!(fetch.join(addr(1), 4 << 30), Err(Refusal::TooLarge { size: 4 << 30 }));
    assert!(fetch.is_banned(addr(1)));
    assert_eq!(fetch.join(addr(2), 0), Err(Refusal::Empty));
    assert!(!fetch.is_banned(addr(2)));
    assert!(fetch.next_requests(addr(1)).is_empty());
}

#[test]
fn a_peer_lying_about_the_size_does_not_stop_the_others() {
    let (data, hash) = metadata(PIECE + 10);
    let mut fetch = MetadataFetch::new(hash);
    fetch.join(addr(9), 999).expect("accepted");
    fetch.join(addr(1), data.len() as u64).expect("accepted");
    assert_eq!(fetch.next_requests(addr(9)), vec![0]);
    assert_eq!(fetch.next_requests(addr(1)), vec![0, 1]);
    assert_eq!(fetch.data(addr(1), 0, data.len() as u32, piece(&data, 0)).expect("accepted"), Received::Stored);
    assert_eq!(fetch.data(addr(1), 1, data.len() as u32, piece(&data, 1)).expect("accepted"), Received::Complete(data));
    for size in 1000..1003 {
        let _ = fetch.join(addr(size as u16), size);
    }
    assert_eq!(fetch.join(addr(50), 5000), Err(Refusal::TooManySizes { size: 5000 }));
}

#[test]
fn a_lone_liar_is_banned_and_others_finish() {
    let (data, hash) = metadata(2 * PIECE);
    let size = data.len() as u32;
    let mut fetch = MetadataFetch::new(hash);
    fetch.join(addr(66), size.into()).expect("accepted");
    assert_eq!(fetch.next_requests(addr(66)), vec![0, 1]);
    let junk = vec![0xAA; PIECE];
    assert_eq!(fetch.data(addr(66), 0, size, &junk).expect("accepted"), Received::Stored);
    assert_eq!(fetch.data(addr(66), 1, size, &junk).expect("accepted"), Received::Failed { senders: vec![addr(66)] });
    assert!(fetch.is_banned(addr(66)));
    assert!(fetch.next_requests(addr(66)).is_empty());
    fetch.join(addr(1), size.into()).expect("accepted");
    assert_eq!(fetch.next_requests(addr(1)), vec![0, 1]);
    fetch.data(addr(1), 0, size, piece(&data, 0)).expect("accepted");
    assert_eq!(fetch.data(addr(1), 1, size, piece(&data, 1)).expect("accepted"), Received::Complete(data));
}

#[test]
fn after_a_shared_failure_one_peer_fetches_alone_and_the_liar_is_found() {
    let (data, hash) = metadata(2 * PIECE);
    let size = data.len() as u32;
    let junk = vec![0xAA; PIECE];
    let mut fetch = MetadataFetch::new(hash);
    for port in [1, 66] {
        fetch.join(addr(port), size.into()).expect("accepted");
    }
    assert_eq!(fetch.next_requests(addr(1)), vec![0, 1]);
    assert_eq!(fetch.next_requests(addr(66)), vec![0, 1]);
    fetch.data(addr(1), 0, size, piece(&data, 0)).expect("accepted");
    let failed = fetch.data(addr(66), 1, size, &junk).expect("accepted");
    assert_eq!(failed, Received::Failed { senders: vec![addr(1), addr(66)] });
    assert!(!fetch.is_banned(addr(1)) && !fetch.is_banned(addr(66)));
    // Drain what is still in flight, as peers would answer it.
    fetch.leave(addr(1));
    fetch.leave(addr(66));
    fetch.join(addr(66), size.into()).expect("accepted");
    fetch.join(addr(1), size.into()).expect("accepted");
    assert_eq!(fetch.next_requests(addr(66)), vec![0, 1]);
    assert!(fetch.next_requests(addr(1)).is_empty(), "single source: the attempt belongs to one peer");
    fetch.data(addr(66), 0, size, &junk).expect("accepted");
    assert_eq!(fetch.data(addr(66), 1, size, &junk).expect("accepted"), Received::Failed { senders: vec![addr(66)] });
    assert!(fetch.is_banned(addr(66)));
    assert_eq!(fetch.next_requests(addr(1)), vec![0, 1]);
    fetch.data(addr(1), 0, size, piece(&data, 0)).expect("accepted");
    assert_eq!(fetch.data(addr(1), 1, size, piece(&data, 1)).expect("accepted"), Received::Complete(data));
}

#[test]
fn a_rejected_or_abandoned_piece_is_asked_of_someone_else() {
    let (data, hash) = metadata(8 * PIECE);
    let size = data.len() as u32;
    let mut fetch = MetadataFetch::new(hash);
    fetch.join(addr(1), size.into()).expect("accepted");
    fetch.join(addr(2), size.into()).expect("accepted");
    assert_eq!(fetch.next_requests(addr(1)), vec![0, 1, 2, 3]);
    assert_eq!(fetch.next_requests(addr(2)), vec![4, 5, 6, 7]);
    fetch.rejected(addr(1), 0);
    fetch.leave(addr(2));
    fetch.join(addr(3), size.into()).expect("accepted");
    assert_eq!(fetch.next_requests(addr(3)), vec![0, 4, 5, 6]);
    assert!(fetch.is_waiting_on(addr(3)));
    assert!(!fetch.is_waiting_on(addr(2)));
}

#[test]
fn wrong_lengths_drop_the_peer() {
    let (data, hash) = metadata(2 * PIECE);
    let size = data.len() as u32;
    let mut fetch = MetadataFetch::new(hash);
    fetch.join(addr(1), size.into()).expect("accepted");
    fetch.next_requests(addr(1));
    assert!(matches!(fetch.data(addr(1), 0, size, &data[..10]), Err(Refusal::BadData(_))));
    assert!(matches!(fetch.data(addr(1), 1, size + 1, piece(&data, 1)), Err(Refusal::BadData(_))));
}
