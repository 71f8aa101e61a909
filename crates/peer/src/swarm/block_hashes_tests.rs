//! A v2 swarm driven message by message: a failed piece sent by two peers is settled by its block hashes from a
//! third, and a seeder answers block-hash requests from its disk.

use std::net::SocketAddr;

use metainfo::merkle::{self, BLOCK_SIZE, Hash32};
use metainfo::merkle_proof::{HashRange, HashTree};
use peer_wire::{Bitfield, Message};
use tokio::sync::mpsc;

use super::*;
use crate::events::Event;
use crate::outbox::Batch;

const PIECE: u64 = 4 * BLOCK_SIZE;
const FILE_LEN: u64 = 3 * PIECE + 8192;

fn content() -> Vec<u8> {
    (0..FILE_LEN).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

pub(in crate::swarm) struct V2Swarm {
    pub(in crate::swarm) swarm: Arc<Swarm>,
    events: mpsc::UnboundedReceiver<([u8; 20], Event)>,
    /// The whole file's tree, as an honest peer would answer from.
    tree: HashTree,
    _dir: tempfile::TempDir,
}

/// A v2-only torrent of one file of 3 pieces and 8 KiB, 4 blocks a piece; our swarm has it all (`seeding`) or
/// nothing.
pub(in crate::swarm) fn v2_swarm(seeding: bool) -> V2Swarm {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = dir.path().join("src");
    std::fs::create_dir_all(&source).expect("mkdir");
    std::fs::write(source.join("file.bin"), content()).expect("write");
    let options = metainfo::CreateOptions {
        piece_length: Some(PIECE),
        meta_version: metainfo::MetaVersion::V2,
        ..metainfo::CreateOptions::default()
    };
    let created = metainfo::create_from_path(&source.join("file.bin"), &options, &|_| {}).expect("create");
    let torrent = metainfo::Torrent::from_bytes_any(&created.bytes).expect("parse");
    let into = if seeding { source } else { dir.path().join("leech") };
    let storage = Arc::new(Storage::new(&torrent, &into).expect("storage"));
    let have = if seeding { Bitfield::full(storage.num_pieces()) } else { Bitfield::new(storage.num_pieces()) };
    let config = SwarmConfig {
        max_peers: 8,
        max_peers_per_ip: 4,
        super_seed: false,
        upload: crate::rate::Limits::default(),
        download: crate::rate::Limits::default(),
        connection_budget: None,
        sequential: false,
        defer_verification: true,
        private: false,
        listen_port: None,
        local_ip: None,
        trace: None,
        dht: None,
        hash_trees: Arc::new(crate::v2::HashTrees::of(&torrent)),
        info_hash_v2: None,
        hashing: None,
        seed: None,
        connector: None,
        random_pieces: false,
    };
    let (sender, events) = crate::events::EventSink::channel(torrent.info_hash.0);
    let swarm = Swarm::new(storage, torrent.info_bytes.clone(), torrent.info_hash.0, [9; 20], &have, &config, sender)
        .expect("swarm");
    let leaves: Vec<Hash32> = content().chunks(BLOCK_SIZE as usize).map(merkle::leaf).collect();
    let tree = HashTree::from_leaves(&leaves, FILE_LEN).expect("tree");
    V2Swarm { swarm: Arc::new(swarm), events, tree, _dir: dir }
}

pub(in crate::swarm) struct FakePeer {
    pub(in crate::swarm) key: PeerKey,
    outbox: Arc<Outbox>,
    pub(in crate::swarm) addr: SocketAddr,
}

impl V2Swarm {
    pub(in crate::swarm) fn join(&self, n: u8) -> FakePeer {
        let addr = SocketAddr::from(([10, 0, 0, n], 6881));
        let admitted = self.swarm.admit(addr, [n; 20], Direction::Incoming, false, false, true).expect("admitted");
        FakePeer { key: admitted.key, outbox: admitted.outbox, addr }
    }

    pub(in crate::swarm) fn send(&self, peer: &FakePeer, message: Message<'_>) {
        self.swarm.handle_messages(peer.key, std::iter::once(message)).expect("message accepted");
    }

    /// The bytes the swarm queued for `peer` since last asked.
    fn sent(&self, peer: &FakePeer) -> Vec<u8> {
        let mut batch = Batch::default();
        peer.outbox.take(usize::MAX, &mut batch);
        batch.bytes
    }

    pub(in crate::swarm) fn requests(&self, peer: &FakePeer) -> Vec<(u32, u32, u32)> {
        decoded(&self.sent(peer))
            .iter()
            .filter_map(|m| match m {
                Message::Request { index, begin, length } => Some((*index, *begin, *length)),
                _ => None,
            })
            .collect()
    }

    /// The block at `(index, begin, length)` of the piece stream (zeros past the file's end), flipped if `bad`.
    pub(in crate::swarm) fn block(&self, (index, begin, length): (u32, u32, u32), bad: bool) -> Vec<u8> {
        let data = content();
        let start = u64::from(index) * PIECE + u64::from(begin);
        (start..start + u64::from(length))
            .map(|at| data.get(at as usize).copied().unwrap_or(0))
            .map(|byte| if bad { !byte } else { byte })
            .collect()
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.events.try_recv().ok().map(|(_, event)| event)).collect()
    }

    /// A piece of which `honest` sent the first two blocks and `liar` the last two, flipped: it fails.
    fn mixed_failure(&mut self, honest: &FakePeer, liar: &FakePeer) -> u32 {
        self.send(honest, Bitfield::full(4).to_message());
        self.send(honest, Message::Unchoke);
        let asked = self.requests(honest);
        let piece = asked[0].0;
        for &block in asked.iter().filter(|block| block.0 == piece).take(2) {
            let data = self.block(block, false);
            self.send(honest, Message::Piece { index: block.0, begin: block.1, block: &data });
        }
        // It chokes us: the rest of that piece goes to the liar.
        self.send(honest, Message::Choke);
        self.send(liar, Bitfield::full(4).to_message());
        self.send(liar, Message::Unchoke);
        let asked = self.requests(liar);
        let rest: Vec<_> = asked.iter().copied().filter(|block| block.0 == piece).collect();
        assert_eq!(rest.len(), 2, "the liar is asked for the rest of piece {piece}: {asked:?}");
        for block in rest {
            let data = self.block(block, true);
            self.send(liar, Message::Piece { index: block.0, begin: block.1, block: &data });
        }
        self.swarm.run_deferred();
        piece
    }
}

fn decoded(bytes: &[u8]) -> Vec<Message<'_>> {
    let mut at = 0;
    let mut messages = Vec::new();
    while let Ok(Some((message, used))) = peer_wire::decode(&bytes[at..], peer_wire::MAX_MESSAGE_LEN) {
        at += used;
        messages.push(message);
    }
    messages
}

/// The hash request among the bytes sent to a peer, if any.
fn hash_request(bytes: &[u8]) -> Option<(Hash32, HashRange)> {
    decoded(bytes).iter().find_map(|m| match m {
        Message::HashRequest { pieces_root, base_layer, index, length, proof_layers } => {
            let range =
                HashRange { base_layer: *base_layer, index: *index, length: *length, proof_layers: *proof_layers };
            Some((*pieces_root, range))
        }
        _ => None,
    })
}

fn encoded(message: &Message<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    message.encode(&mut out);
    out
}

fn hashes_message<'a>(root: Hash32, range: HashRange, hashes: &'a [u8]) -> Message<'a> {
    let HashRange { base_layer, index, length, proof_layers } = range;
    Message::Hashes { pieces_root: root, base_layer, index, length, proof_layers, hashes }
}

#[test]
fn a_failed_piece_of_two_senders_is_settled_by_block_hashes_from_a_third_peer() {
    let mut v2 = v2_swarm(false);
    let (honest, liar, witness) = (v2.join(1), v2.join(2), v2.join(3));
    // The witness has every piece but chokes us: it sends no block, only hashes.
    v2.send(&witness, Bitfield::full(4).to_message());
    v2.sent(&witness);
    let piece = v2.mixed_failure(&honest, &liar);
    let events = v2.events();
    assert!(events.iter().any(|e| matches!(e, Event::PieceFailed { index, .. } if *index == piece)), "{events:?}");
    assert!(!events.iter().any(|e| matches!(e, Event::PeerBanned { .. })), "no proof yet: {events:?}");

    // The block hashes are asked of the witness, who sent none of the piece: base layer 0, the piece's four
    // blocks, a proof up to the root.
    let (root, range) = hash_request(&v2.sent(&witness)).expect("a hash request to the witness");
    assert_eq!(root, v2.tree.root());
    assert_eq!(range, HashRange { base_layer: 0, index: piece * 4, length: 4, proof_layers: v2.tree.height() - 1 });
    assert!(hash_request(&v2.sent(&honest)).is_none() && hash_request(&v2.sent(&liar)).is_none());

    let hashes = v2.tree.serve(&range).expect("served").concat();
    v2.send(&witness, hashes_message(root, range, &hashes));
    let events = v2.events();
    let checked = events.iter().find_map(|e| match e {
        Event::BlocksChecked { index, bad_blocks, liars, by } => Some((*index, bad_blocks.clone(), liars.clone(), *by)),
        _ => None,
    });
    assert_eq!(checked, Some((piece, vec![2, 3], vec![liar.addr], witness.addr)), "{events:?}");
    let banned: Vec<SocketAddr> =
        events.iter().filter_map(|e| if let Event::PeerBanned { addr } = e { Some(*addr) } else { None }).collect();
    assert_eq!(banned, vec![liar.addr]);
    assert!(liar.outbox.is_closed() && !honest.outbox.is_closed() && !witness.outbox.is_closed());
    // The honest sender is off parole at once: it may share pieces again.
    assert!(!v2.swarm.lock().peers[&honest.key].parole);
}

#[test]
fn a_false_proof_bans_its_sender_and_the_hashes_are_asked_of_another_peer() {
    let mut v2 = v2_swarm(false);
    let (honest, liar, forger, witness) = (v2.join(1), v2.join(2), v2.join(3), v2.join(4));
    for peer in [&forger, &witness] {
        v2.send(peer, Bitfield::full(4).to_message());
        v2.sent(peer);
    }
    let piece = v2.mixed_failure(&honest, &liar);
    let (asked, other) = match (hash_request(&v2.sent(&forger)), hash_request(&v2.sent(&witness))) {
        (Some(request), None) => ((&forger, request), &witness),
        (None, Some(request)) => ((&witness, request), &forger),
        both => panic!("exactly one peer is asked at a time: {both:?}"),
    };
    let ((first, (root, range)), second) = (asked, other);
    let mut forged = v2.tree.serve(&range).expect("served").concat();
    forged[40] ^= 1;
    v2.send(first, hashes_message(root, range, &forged));
    let events = v2.events();
    assert!(events.iter().any(|e| matches!(e, Event::PeerBanned { addr } if *addr == first.addr)), "{events:?}");
    assert!(!events.iter().any(|e| matches!(e, Event::BlocksChecked { .. })), "{events:?}");
    assert_eq!(hash_request(&v2.sent(second)), Some((root, range)), "the next peer is asked");
    let hashes = v2.tree.serve(&range).expect("served").concat();
    v2.send(second, hashes_message(root, range, &hashes));
    let events = v2.events();
    assert!(
        events.iter().any(
            |e| matches!(e, Event::BlocksChecked { index, liars, .. } if *index == piece && liars == &[liar.addr])
        ),
        "{events:?}"
    );
}

#[test]
fn a_rejection_sends_the_request_to_the_next_peer_and_unasked_answers_are_ignored() {
    let mut v2 = v2_swarm(false);
    let (honest, liar, a, b) = (v2.join(1), v2.join(2), v2.join(3), v2.join(4));
    for peer in [&a, &b] {
        v2.send(peer, Bitfield::full(4).to_message());
        v2.sent(peer);
    }
    let piece = v2.mixed_failure(&honest, &liar);
    let (first, second) = if hash_request(&v2.sent(&a)).is_some() { (&a, &b) } else { (&b, &a) };
    let root = v2.tree.root();
    let range = HashRange { base_layer: 0, index: piece * 4, length: 4, proof_layers: v2.tree.height() - 1 };
    let hashes = v2.tree.serve(&range).expect("served").concat();
    // The second peer was not asked: its answer settles nothing.
    v2.send(second, hashes_message(root, range, &hashes));
    assert!(!v2.events().iter().any(|e| matches!(e, Event::BlocksChecked { .. })));
    let HashRange { base_layer, index, length, proof_layers } = range;
    v2.send(first, Message::HashReject { pieces_root: root, base_layer, index, length, proof_layers });
    assert_eq!(hash_request(&v2.sent(second)), Some((root, range)), "the next peer is asked after a reject");
    // The first peer's late answer is not waited for any more; the second's is.
    v2.send(first, hashes_message(root, range, &hashes));
    assert!(!v2.events().iter().any(|e| matches!(e, Event::BlocksChecked { .. })));
    v2.send(second, hashes_message(root, range, &hashes));
    assert!(v2.events().iter().any(|e| matches!(e, Event::BlocksChecked { liars, .. } if liars == &[liar.addr])));
}

#[test]
fn a_seeder_answers_block_hash_requests_from_its_disk_and_rejects_what_it_cannot_prove() {
    let v2 = v2_swarm(true);
    let peer = v2.join(1);
    v2.sent(&peer);
    let root = v2.tree.root();
    let height = v2.tree.height();
    let cases = [
        // A whole piece's blocks with a proof to the root, as we ask; two blocks with no proof; the last piece,
        // which runs past the file's end; and the piece layer, from memory.
        (HashRange { base_layer: 0, index: 4, length: 4, proof_layers: height - 1 }, true),
        (HashRange { base_layer: 0, index: 6, length: 2, proof_layers: 0 }, true),
        (HashRange { base_layer: 0, index: 12, length: 4, proof_layers: height - 1 }, true),
        (HashRange { base_layer: 2, index: 0, length: 4, proof_layers: 1 }, true),
        // Blocks of two pieces at once, and a range past the tree: rejected.
        (HashRange { base_layer: 0, index: 0, length: 8, proof_layers: height - 1 }, false),
        (HashRange { base_layer: 0, index: 16, length: 4, proof_layers: 0 }, false),
    ];
    for (range, served) in cases {
        let HashRange { base_layer, index, length, proof_layers } = range;
        v2.send(&peer, Message::HashRequest { pieces_root: root, base_layer, index, length, proof_layers });
        let sent = v2.sent(&peer);
        let expected = if served {
            let hashes = v2.tree.serve(&range).expect("served").concat();
            encoded(&hashes_message(root, range, &hashes))
        } else {
            encoded(&Message::HashReject { pieces_root: root, base_layer, index, length, proof_layers })
        };
        assert_eq!(sent, expected, "{range:?}");
    }
}

#[test]
fn a_peer_that_keeps_asking_for_hashes_we_must_reject_is_dropped() {
    let v2 = v2_swarm(true);
    let peer = v2.join(1);
    v2.sent(&peer);
    let root = v2.tree.root();
    // Past the tree: never answerable.
    let (base_layer, index, length, proof_layers) = (0, 16, 4, 0);
    for _ in 0..MAX_REJECTED_REQUESTS {
        v2.send(&peer, Message::HashRequest { pieces_root: root, base_layer, index, length, proof_layers });
    }
    let rejects = decoded_count(&v2.sent(&peer));
    assert_eq!(rejects, MAX_REJECTED_REQUESTS as usize, "each is rejected while under the cap");
    let flood = std::iter::once(Message::HashRequest { pieces_root: root, base_layer, index, length, proof_layers });
    let closed = v2.swarm.handle_messages(peer.key, flood).expect_err("one more closes the connection");
    assert!(
        matches!(&closed, CloseReason::Protocol(what) if what.contains("hash requests we cannot answer")),
        "{closed}"
    );
}

/// Messages in `bytes`.
fn decoded_count(bytes: &[u8]) -> usize {
    let mut at = 0;
    let mut count = 0;
    while let Ok(Some((_, used))) = peer_wire::decode(&bytes[at..], peer_wire::MAX_MESSAGE_LEN) {
        at += used;
        count += 1;
    }
    count
}

#[test]
fn a_repeated_unchoke_does_not_restart_the_snub_clock() {
    let v2 = v2_swarm(false);
    let peer = v2.join(1);
    v2.send(&peer, Bitfield::full(4).to_message());
    v2.send(&peer, Message::Unchoke);
    let unchoked = v2.swarm.last_block_of(peer.key).expect("a peer");
    std::thread::sleep(std::time::Duration::from_millis(20));
    v2.send(&peer, Message::Unchoke);
    assert_eq!(v2.swarm.last_block_of(peer.key), Some(unchoked), "an unchoke while unchoked is no sign of life");
    v2.send(&peer, Message::Choke);
    v2.send(&peer, Message::Unchoke);
    assert!(v2.swarm.last_block_of(peer.key) > Some(unchoked), "a real unchoke starts the clock afresh");
}

#[test]
fn a_peer_that_keeps_asking_for_metadata_we_must_reject_is_dropped() {
    let v2 = v2_swarm(true);
    let admitted =
        v2.swarm.admit(SocketAddr::from(([10, 0, 0, 1], 6881)), [1; 20], Direction::Incoming, true, false, true);
    let admitted = admitted.expect("admitted");
    let peer = FakePeer { key: admitted.key, outbox: admitted.outbox, addr: SocketAddr::from(([10, 0, 0, 1], 6881)) };
    let mut handshake = Vec::new();
    peer_wire::ExtendedHandshake {
        extensions: [(peer_wire::UT_METADATA.to_owned(), 3)].into_iter().collect(),
        ..peer_wire::ExtendedHandshake::default()
    }
    .encode(&mut handshake);
    v2.send(&peer, Message::Extended { id: 0, payload: &handshake });
    v2.sent(&peer);
    // A piece past the dictionary's end: never answerable.
    let mut request = Vec::new();
    peer_wire::MetadataMessage::Request { piece: 999 }.encode(&mut request);
    for _ in 0..MAX_REJECTED_REQUESTS {
        v2.send(&peer, Message::Extended { id: UT_METADATA_ID, payload: &request });
    }
    assert_eq!(decoded_count(&v2.sent(&peer)), MAX_REJECTED_REQUESTS as usize, "each rejected under the cap");
    let flood = std::iter::once(Message::Extended { id: UT_METADATA_ID, payload: &request });
    let closed = v2.swarm.handle_messages(peer.key, flood).expect_err("one more closes the connection");
    assert!(
        matches!(&closed, CloseReason::Protocol(what) if what.contains("metadata requests we cannot answer")),
        "{closed}"
    );
}
