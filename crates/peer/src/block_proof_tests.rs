use std::net::SocketAddr;

use metainfo::merkle::{self, BLOCK_SIZE};
use metainfo::merkle_proof::HashTree;

use super::*;
use crate::v2::block_claims;

const PIECE: usize = 4 * BLOCK_SIZE as usize;

fn sender(n: u8) -> Sender {
    Sender { addr: SocketAddr::from(([10, 0, 0, n], 6881)), peer_id: [n; 20] }
}

/// A file of 2.5 pieces of 4 blocks, its tree, and the request for piece `piece`'s block hashes.
struct File {
    data: Vec<u8>,
    tree: HashTree,
}

impl File {
    fn new() -> File {
        let data: Vec<u8> = (0..(2 * PIECE + PIECE / 2)).map(|i| (i * 7 + i / 999) as u8).collect();
        let leaves: Vec<Hash32> = data.chunks(BLOCK_SIZE as usize).map(merkle::leaf).collect();
        let tree = HashTree::from_leaves(&leaves, data.len() as u64).expect("tree");
        File { data, tree }
    }

    fn request(&self, piece: u32) -> BlockHashRequest {
        let range = HashRange { base_layer: 0, index: piece * 4, length: 4, proof_layers: self.tree.height() - 1 };
        let file_bytes = (self.data.len() - piece as usize * PIECE).min(PIECE) as u32;
        BlockHashRequest { pieces_root: self.tree.root(), file_length: self.data.len() as u64, range, file_bytes }
    }

    /// Piece `piece` as a peer sent it (zeros after the file's end), with `flip` blocks corrupted.
    fn piece(&self, piece: u32, flip: &[usize]) -> Vec<u8> {
        let start = piece as usize * PIECE;
        let mut bytes = vec![0u8; PIECE];
        let end = self.data.len().min(start + PIECE);
        bytes[..end - start].copy_from_slice(&self.data[start..end]);
        for &block in flip {
            bytes[block * BLOCK_SIZE as usize] ^= 0xFF;
        }
        bytes
    }

    fn answer(&self, request: &BlockHashRequest) -> Vec<u8> {
        self.tree.serve(&request.range).expect("served").concat()
    }
}

fn blocks(data: &[u8], file_bytes: u32, senders: &[Sender]) -> Vec<(Sender, BlockClaim)> {
    senders.iter().copied().zip(block_claims(data, file_bytes)).collect()
}

#[test]
fn proven_hashes_name_exactly_the_senders_of_bad_blocks() {
    let file = File::new();
    let request = file.request(1);
    let (a, b) = (sender(1), sender(2));
    let mut proofs = BlockProofs::default();
    // A sent blocks 0 and 1 (good), B blocks 2 and 3, of which 3 is bad.
    proofs.add(1, request, blocks(&file.piece(1, &[3]), request.file_bytes, &[a, a, b, b]));
    let now = Instant::now();
    let asks = proofs.to_ask(now, |piece, tried, senders| {
        assert_eq!((piece, tried, senders), (1, &[][..], &[a, a, b, b][..]));
        Some(PeerKey(7))
    });
    assert_eq!(asks, vec![Ask { peer: PeerKey(7), piece: 1, request }]);
    // Asked once: nothing more to ask while it is out.
    assert!(proofs.to_ask(now, |_, _, _| Some(PeerKey(8))).is_empty());
    // An answer from a peer not asked, or for another range, settles nothing.
    let hashes = file.answer(&request);
    assert_eq!(proofs.answered(PeerKey(8), &request.pieces_root, &request.range, &hashes), None);
    let other = HashRange { index: 0, ..request.range };
    assert_eq!(proofs.answered(PeerKey(7), &request.pieces_root, &other, &hashes), None);
    let outcome = proofs.answered(PeerKey(7), &request.pieces_root, &request.range, &hashes);
    assert_eq!(outcome, Some(Outcome::Proven { piece: 1, bad_blocks: vec![3], liars: vec![b], honest: vec![a] }));
    assert!(proofs.is_empty());
}

#[test]
fn the_last_piece_is_judged_with_its_padding() {
    let file = File::new();
    let request = file.request(2);
    assert_eq!(request.file_bytes as usize, PIECE / 2);
    let (a, b, c) = (sender(1), sender(2), sender(3));
    let mut piece = file.piece(2, &[]);
    // C's block lies wholly past the file's end and is not zeros; A's and B's are the file's.
    piece[3 * BLOCK_SIZE as usize + 5] = 1;
    let mut proofs = BlockProofs::default();
    proofs.add(2, request, blocks(&piece, request.file_bytes, &[a, b, a, c]));
    proofs.to_ask(Instant::now(), |_, _, _| Some(PeerKey(1)));
    let outcome = proofs.answered(PeerKey(1), &request.pieces_root, &request.range, &file.answer(&request));
    assert_eq!(outcome, Some(Outcome::Proven { piece: 2, bad_blocks: vec![3], liars: vec![c], honest: vec![a, b] }));
}

#[test]
fn a_false_proof_names_its_sender_and_the_piece_goes_to_another_peer() {
    let file = File::new();
    let request = file.request(0);
    let mut proofs = BlockProofs::default();
    proofs.add(
        0,
        request,
        blocks(&file.piece(0, &[0]), request.file_bytes, &[sender(1), sender(2), sender(2), sender(2)]),
    );
    let now = Instant::now();
    proofs.to_ask(now, |_, _, _| Some(PeerKey(5)));
    let mut forged = file.answer(&request);
    forged[0] ^= 1;
    let outcome = proofs.answered(PeerKey(5), &request.pieces_root, &request.range, &forged);
    assert!(matches!(outcome, Some(Outcome::BadProof { piece: 0, error: ProofError::RootMismatch })), "{outcome:?}");
    let short = proofs.answered(PeerKey(5), &request.pieces_root, &request.range, &forged[..64]);
    assert_eq!(short, None, "a second answer from the liar is not waited for");
    let asks = proofs.to_ask(now, |_, tried, _| {
        assert_eq!(tried, &[PeerKey(5)]);
        Some(PeerKey(6))
    });
    assert_eq!(asks.len(), 1);
    let outcome = proofs.answered(PeerKey(6), &request.pieces_root, &request.range, &file.answer(&request));
    assert!(matches!(outcome, Some(Outcome::Proven { ref liars, .. }) if liars == &[sender(1)]), "{outcome:?}");
}

#[test]
fn rejections_departures_and_silence_pass_the_piece_on_until_max_asked_peers_failed() {
    let file = File::new();
    let request = file.request(0);
    let mut proofs = BlockProofs::default();
    proofs.add(
        0,
        request,
        blocks(&file.piece(0, &[1]), request.file_bytes, &[sender(1), sender(1), sender(2), sender(2)]),
    );
    let start = Instant::now();
    let mut next = 0u64;
    let mut ask = |proofs: &mut BlockProofs, now: Instant| {
        let asks = proofs.to_ask(now, |_, tried, _| {
            next += 1;
            assert!(!tried.contains(&PeerKey(next)));
            Some(PeerKey(next))
        });
        asks.first().map(|ask| ask.peer)
    };
    // Nobody to ask: it waits.
    assert!(proofs.to_ask(start, |_, _, _| None).is_empty());
    assert_eq!(ask(&mut proofs, start), Some(PeerKey(1)));
    assert!(proofs.rejected(PeerKey(1), &request.pieces_root, &request.range));
    assert!(!proofs.rejected(PeerKey(1), &request.pieces_root, &request.range), "rejected once only");
    assert_eq!(ask(&mut proofs, start), Some(PeerKey(2)));
    proofs.peer_left(PeerKey(2));
    assert_eq!(ask(&mut proofs, start), Some(PeerKey(3)));
    proofs.expire(start + ANSWER_TIMEOUT / 2);
    assert_eq!(ask(&mut proofs, start), None, "still waiting for peer 3");
    proofs.expire(start + ANSWER_TIMEOUT);
    assert_eq!(ask(&mut proofs, start + ANSWER_TIMEOUT), Some(PeerKey(4)));
    assert!(!proofs.is_empty());
    proofs.expire(start + 2 * ANSWER_TIMEOUT);
    assert!(proofs.is_empty(), "{MAX_ASKED} peers failed it: left to the smart ban");
}

#[test]
fn pending_pieces_are_bounded_and_a_good_copy_ends_the_wait() {
    let file = File::new();
    let request = file.request(0);
    let mut proofs = BlockProofs::default();
    for piece in 0..(MAX_PENDING as u32 + 5) {
        proofs.add(piece, request, Vec::new());
    }
    // A piece that fails again waits once, with its newest blocks.
    proofs.add(MAX_PENDING as u32 + 4, request, Vec::new());
    let mut asked = Vec::new();
    proofs.to_ask(Instant::now(), |piece, _, _| {
        asked.push(piece);
        None
    });
    assert_eq!(asked, (5..MAX_PENDING as u32 + 5).collect::<Vec<_>>());
    for piece in 5..MAX_PENDING as u32 + 5 {
        proofs.piece_verified(piece);
    }
    assert!(proofs.is_empty());
}
