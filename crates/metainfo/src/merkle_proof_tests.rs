use proptest::prelude::*;
use sha2::{Digest, Sha256};

use super::*;
use crate::merkle::{blocks_per_piece, hash_bytes, leaf, piece_hash, root_from_leaves, root_from_piece_layer};

const K: u64 = 16384;

/// BEP 52 read literally, from layer `height` (its data nodes) up: pad the layer with the root of a zero subtree of
/// that height up to `2^(top - height)` nodes, hash pairs up to the root. Returns every layer, index 0 = `height`.
fn reference_layers(nodes: &[Hash32], height: u32, top: u32) -> Vec<Vec<Hash32>> {
    let mut pad = [0u8; 32];
    for _ in 0..height {
        pad = Sha256::digest([pad, pad].concat()).into();
    }
    let mut layer = nodes.to_vec();
    layer.resize(1 << (top - height), pad);
    let mut layers = vec![layer];
    while layers.last().map_or(0, Vec::len) > 1 {
        let below = layers.last().cloned().unwrap_or_default();
        layers.push(below.chunks(2).map(|pair| Sha256::digest([pair[0], pair[1]].concat()).into()).collect());
    }
    layers
}

/// Stand-ins for block or piece hashes: any values will do for the tree's arithmetic.
fn fake_hashes(n: u64, seed: u64) -> Vec<Hash32> {
    (0..n).map(|i| Sha256::digest([seed.to_le_bytes(), i.to_le_bytes()].concat()).into()).collect()
}

/// The bytes of the files libtorrent hashed for the golden vectors below (see `capture` there).
fn capture_data(len: u64) -> Vec<u8> {
    (0..len).map(|i| ((i * 31 + (i >> 9)) & 0xFF) as u8).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

fn hash(s: &str) -> Hash32 {
    unhex(s).try_into().expect("32 bytes")
}

fn range(base_layer: u32, index: u32, length: u32, proof_layers: u32) -> HashRange {
    HashRange { base_layer, index, length, proof_layers }
}

fn flat(hashes: &[Hash32]) -> Vec<u8> {
    hashes.concat()
}

#[test]
fn hash_counts_follow_bep_52_and_libtorrent() {
    // libtorrent's requests for a 513-piece and a 600-piece file of 16 KiB pieces, and for 3 pieces of 32 KiB.
    assert_eq!(range(0, 0, 512, 9).hash_count(), 513); // the range proves 9 layers itself, 1 uncle
    assert_eq!(range(0, 512, 128, 9).hash_count(), 131); // 7 layers, 3 uncles
    assert_eq!(range(0, 512, 1, 9).hash_count(), 11); // a lone node: its own sibling and 9 more
    assert_eq!(range(1, 0, 4, 1).hash_count(), 4); // the whole layer: no uncle
    assert_eq!(range(1, 0, 4, 0).uncle_count(), 0);
    assert_eq!(range(0, 0, 2, u32::MAX).uncle_count(), u32::MAX);
}

#[test]
fn tree_heights() {
    assert_eq!(tree_height(1), 0);
    assert_eq!(tree_height(K), 0);
    assert_eq!(tree_height(K + 1), 1);
    assert_eq!(tree_height(5 * K), 3);
    assert_eq!(tree_height(u64::MAX), 50);
}

/// Golden vectors from libtorrent 2.0.8 (Debian's python3-libtorrent), captured by a script that made
/// `capture_data(len)` into a file, a v2-only torrent of it with libtorrent's `create_torrent`, and had a libtorrent
/// session download its magnet link (`magnet:?xt=urn:btmh:1220<v2 info-hash>`) from a fake seeder speaking the
/// peer wire: the hash requests are the ones libtorrent sent it, and the answers are the `hashes` messages it then
/// accepted (it went on to download and verify every piece against them). The roots are libtorrent's `pieces root`.
#[test]
fn libtorrent_three_pieces_of_32_kib() {
    let len = 5 * K; // pieces of 2, 2 and 1 blocks
    let data = capture_data(len);
    let root = hash("024b5a5248754404ad542c76902fb41a05e6067427d3672089e3a10f48f70a3e");
    let hashes = hash_bytes(&data, 2 * K);
    assert_eq!(hashes.root, Some(root));
    // libtorrent's request: the whole padded piece layer (4 nodes at layer 1), proof layers 1, so no uncle.
    assert_eq!(piece_layer_requests(len, 2 * K), vec![range(1, 0, 4, 1)]);
    // Its answer as libtorrent accepted it: the piece layer, then the padding node, pad_hash(1).
    let accepted = unhex(concat!(
        "e36ae1ddd334b6608c5636dc31657bb1cab23086142546a2cdd1c632b976b493",
        "53372dfae0b45ef16002c17c09fe03c8bd1a2576111f28ba681914e3add81469",
        "44d91aece84e97c0f8acc1c7d3bc0bd89d63a4415339b371310b245bb0dc9cca",
        "f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a92759fb4b",
    ));
    let tree = HashTree::from_piece_layer(&hashes.piece_layer, 2 * K, len).expect("tree");
    assert_eq!(tree.root(), root);
    assert_eq!(flat(&tree.serve(&range(1, 0, 4, 1)).expect("served")), accepted);
    let leaves: Vec<Hash32> = data.chunks(K as usize).map(leaf).collect();
    let from_leaves = HashTree::from_leaves(&leaves, len).expect("tree");
    assert_eq!(flat(&from_leaves.serve(&range(1, 0, 4, 1)).expect("served")), accepted);
    assert_eq!(verify_hashes(&root, len, &range(1, 0, 4, 1), &accepted), Ok(hashes.piece_layer.clone()));
    // libtorrent serves block hashes too; we can from the leaves but not from the piece layer alone.
    assert_eq!(tree.serve(&range(0, 0, 2, 2)), Err(ProofError::Unavailable { base_layer: 0, held: 1 }));
    let blocks = from_leaves.serve(&range(0, 4, 2, 2)).expect("served");
    assert_eq!(verify_hashes(&root, len, &range(0, 4, 2, 2), &flat(&blocks)), Ok(leaves[4..].to_vec()));
}

/// libtorrent 2.0.8 serving the same 3-piece file once it had downloaded it: the `hashes` messages it sent a second
/// connection of the capture script that asked these requests (only the hashes are kept here).
#[test]
fn libtorrent_serves_what_we_serve() {
    let len = 5 * K;
    let data = capture_data(len);
    let leaves: Vec<Hash32> = data.chunks(K as usize).map(leaf).collect();
    let tree = HashTree::from_leaves(&leaves, len).expect("tree");
    let leaf4 = "5970d41a555daa44f1eeb659d6f37f9e49950fa1b63d16adae99e4e0bafe9378";
    let zero = "0000000000000000000000000000000000000000000000000000000000000000";
    let pad1 = "f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a92759fb4b";
    let left_half = "513f0b2a2495782b3acde72d8daeb305f5dcedaee282f851f2de370d2fb235fa";
    let piece2 = "44d91aece84e97c0f8acc1c7d3bc0bd89d63a4415339b371310b245bb0dc9cca";
    let cases: [(HashRange, Vec<&str>); 4] = [
        // Blocks 4 and 5 (padding), then the uncles at layers 1 and 2.
        (range(0, 4, 2, 2), vec![leaf4, zero, pad1, left_half]),
        // The whole padded leaf layer: the range proves every layer itself.
        (
            range(0, 0, 8, 2),
            vec![
                "c02940c6bf8c6ff405506ac2aa574bc45ff700cef1e70a809c86989c7ffdb504",
                "bc07bf340e9dadd69e7e8d8507be59e1a6d7e45c532cd35ca241d5fe0c4a5e5d",
                "c885d2f080993cc869dba5c76059a3ef77635e88358fd61953a3731574dfc407",
                "a451705937c4ab9c3d09acdefdb8462382aa1ba83e256676cc432c9f9f77580b",
                leaf4,
                zero,
                zero,
                zero,
            ],
        ),
        // The piece layer (layer 1 of this tree), then half of it with one uncle.
        (
            range(1, 0, 4, 1),
            vec![
                "e36ae1ddd334b6608c5636dc31657bb1cab23086142546a2cdd1c632b976b493",
                "53372dfae0b45ef16002c17c09fe03c8bd1a2576111f28ba681914e3add81469",
                piece2,
                pad1,
            ],
        ),
        (range(1, 2, 2, 1), vec![piece2, pad1, left_half]),
    ];
    for (request, hashes) in cases {
        let libtorrent: Vec<u8> = hashes.iter().flat_map(|h| unhex(h)).collect();
        assert_eq!(flat(&tree.serve(&request).expect("served")), libtorrent, "{request:?}");
        assert!(verify_hashes(&tree.root(), len, &request, &libtorrent).is_ok(), "{request:?}");
    }
    // For a lone node libtorrent 2.0.8 leaves out the node's own sibling (merkle_tree::get_hashes), although its
    // receiver (on_hashes) counts it: we send it, and refuse libtorrent's short answer.
    let lone = range(0, 4, 1, 2);
    let libtorrent: Vec<u8> = [leaf4, pad1, left_half].iter().flat_map(|h| unhex(h)).collect();
    let ours: Vec<u8> = [leaf4, zero, pad1, left_half].iter().flat_map(|h| unhex(h)).collect();
    assert_eq!(flat(&tree.serve(&lone).expect("served")), ours);
    assert_eq!(verify_hashes(&tree.root(), len, &lone, &ours), Ok(vec![leaves[4]]));
    assert_eq!(
        verify_hashes(&tree.root(), len, &lone, &libtorrent),
        Err(ProofError::HashCount { got: 96, expected: 4 })
    );
    // libtorrent rejected these two with a `hash reject`; so do we.
    assert_eq!(
        tree.serve(&range(0, 8, 2, 0)),
        Err(ProofError::OutOfRange { base_layer: 0, index: 8, length: 2, width: 8 })
    );
    assert_eq!(tree.serve(&range(0, 0, 2, 3)), Err(ProofError::ProofLayers { base_layer: 0, proof_layers: 3, max: 2 }));
    // libtorrent answers a misaligned range, with a proof that proves nothing; BEP 52 forbids it, and we refuse it.
    assert_eq!(tree.serve(&range(0, 2, 4, 2)), Err(ProofError::Misaligned { index: 2, length: 4 }));
}

#[test]
fn libtorrent_513_and_600_pieces_of_16_kib() {
    let data = capture_data(600 * K);
    let leaves: Vec<Hash32> = data.chunks(K as usize).map(leaf).collect();
    // (pieces, pieces root, libtorrent's second request's length, SHA-256 of each accepted answer's hashes)
    let cases = [
        (
            513,
            "ba98be192717776a53cfc7e5b1d1101cf1f280b502b593275a8beca917857836",
            1,
            ["41b9c7e11533b8217cbe831cd9753a438d0fb62f4842a0f84a953abc1782a100", ""],
        ),
        (
            600,
            "baae19aea3b75ffde3743026c83696b4c3f60670c6c7239d6658636eb4fa9c33",
            128,
            [
                "cc88ccb43c4fc7257a8e70fbaa9394fa969c1c68c85e811a4d1bafa57e501314",
                "b7726b845d2fe657afcd5b99d44a5d0969ba3ce743d15ffa1ff342760ab9e052",
            ],
        ),
    ];
    // The 513-piece file's second answer in full: piece 512, its padding sibling, then pad_hash(1) ... the
    // 1024-leaf tree's left half.
    let lone = unhex(concat!(
        "c02940c6bf8c6ff405506ac2aa574bc45ff700cef1e70a809c86989c7ffdb504",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a92759fb4b",
        "db56114e00fdd4c1f85c892bf35ac9a89289aaecb1ebd0a96cde606a748b5d71",
        "c78009fdf07fc56a11f122370658a353aaa542ed63e44c4bc15ff4cd105ab33c",
        "536d98837f2dd165a55d5eeae91485954472d56f246df256bf3cae19352a123c",
        "9efde052aa15429fae05bad4d0b1d7c64da64d03d7a1854a588c2cb8430c0d30",
        "d88ddfeed400a8755596b21942c1497e114c302e6118290f91e6772976041fa1",
        "87eb0ddba57e35f6d286673802a4af5975e22506c7cf4c64bb6be5ee11527f2c",
        "26846476fd5fc54a5d43385167c95144f2643f533cc85bb9d16b782f8d7db193",
        "719f2979c8518024e7eba6102d6d031ddf2b6ffded970909f94839e88a4f7762",
    ));
    for (pieces, root, second_length, digests) in cases {
        let len = pieces * K;
        let leaves = &leaves[..pieces as usize];
        let root = hash(root);
        assert_eq!(root_from_leaves(leaves), root);
        let requests = piece_layer_requests(len, K);
        assert_eq!(requests, vec![range(0, 0, 512, 9), range(0, 512, second_length, 9)]);
        let tree = HashTree::from_leaves(leaves, len).expect("tree");
        for (request, digest) in requests.iter().zip(digests) {
            let answer = flat(&tree.serve(request).expect("served"));
            if digest.is_empty() {
                assert_eq!(answer, lone);
            } else {
                assert_eq!(Sha256::digest(&answer)[..], unhex(digest)[..], "{request:?}");
            }
            let first = request.index as usize;
            let got = verify_hashes(&root, len, request, &answer).expect("libtorrent's answer verifies");
            assert_eq!(got, leaves[first..(first + request.length as usize).min(leaves.len())]);
        }
    }
}

#[test]
fn refusals() {
    let len = 5 * K; // 8 leaves, height 3
    let leaves = fake_hashes(5, 1);
    let tree = HashTree::from_leaves(&leaves, len).expect("tree");
    let cases = [
        (range(0, 0, 0, 0), ProofError::BadLength { length: 0 }),
        (range(0, 0, 3, 0), ProofError::BadLength { length: 3 }),
        (range(0, 0, 16384, 0), ProofError::BadLength { length: 16384 }),
        (range(3, 0, 1, 0), ProofError::BaseLayer { base_layer: 3, height: 3 }),
        (range(u32::MAX, 0, 2, 0), ProofError::BaseLayer { base_layer: u32::MAX, height: 3 }),
        (range(0, 2, 4, 0), ProofError::Misaligned { index: 2, length: 4 }),
        (range(0, 8, 2, 0), ProofError::OutOfRange { base_layer: 0, index: 8, length: 2, width: 8 }),
        (range(1, 0, 8, 0), ProofError::OutOfRange { base_layer: 1, index: 0, length: 8, width: 4 }),
        (
            range(0, u32::MAX - 1, 2, 0),
            ProofError::OutOfRange { base_layer: 0, index: u32::MAX - 1, length: 2, width: 8 },
        ),
        (range(0, 0, 2, 3), ProofError::ProofLayers { base_layer: 0, proof_layers: 3, max: 2 }),
        (range(2, 0, 2, 1), ProofError::ProofLayers { base_layer: 2, proof_layers: 1, max: 0 }),
    ];
    for (request, error) in cases {
        assert_eq!(tree.serve(&request), Err(error), "{request:?}");
        assert_eq!(check_request(len, &request), Err(error), "{request:?}");
        assert_eq!(verify_hashes(&tree.root(), len, &request, &[]), Err(error), "{request:?}");
    }
    // A range wholly in the padding is fine: its hashes are the zero-subtree roots.
    assert_eq!(tree.serve(&range(0, 6, 2, 0)), Ok(vec![[0; 32], [0; 32]]));
    let one_block = HashTree::from_leaves(&fake_hashes(1, 2), 100).expect("tree");
    assert_eq!(one_block.root(), fake_hashes(1, 2)[0]);
    assert_eq!(one_block.serve(&range(0, 0, 1, 0)), Err(ProofError::BaseLayer { base_layer: 0, height: 0 }));
    assert_eq!(check_request(0, &range(0, 0, 2, 0)), Err(ProofError::EmptyFile));
    assert_eq!(HashTree::from_leaves(&[], 0), Err(ProofError::EmptyFile));
    assert_eq!(
        HashTree::from_leaves(&leaves[..4], len),
        Err(ProofError::BadLayer { got: 4, height: 0, file_length: len })
    );
    // A file of one piece has no piece layer.
    assert_eq!(
        HashTree::from_piece_layer(&[], 4 * K, 3 * K),
        Err(ProofError::BadLayer { got: 0, height: 2, file_length: 3 * K })
    );
    assert!(piece_layer_requests(3 * K, 4 * K).is_empty());
    assert!(piece_layer_requests(0, K).is_empty());
}

#[test]
fn malformed_answers_are_rejected() {
    let len = 5 * K;
    let leaves = fake_hashes(5, 3);
    let tree = HashTree::from_leaves(&leaves, len).expect("tree");
    let root = tree.root();
    let full = range(0, 4, 2, 2); // 2 leaves, their 2 uncles: up to the root
    let answer = flat(&tree.serve(&full).expect("served"));
    assert_eq!(answer.len(), 4 * 32);
    assert_eq!(verify_hashes(&root, len, &full, &answer), Ok(vec![leaves[4]]));
    assert_eq!(
        verify_hashes(&root, len, &full, &answer[..answer.len() - 1]),
        Err(ProofError::HashCount { got: 127, expected: 4 })
    );
    assert_eq!(
        verify_hashes(&root, len, &full, &[answer.clone(), vec![0; 32]].concat()).err(),
        Some(ProofError::HashCount { got: 160, expected: 4 })
    );
    // A proof that stops below the root is fine to serve, but the root alone cannot check it.
    let short = range(0, 4, 2, 1);
    let answer_short = flat(&tree.serve(&short).expect("served"));
    assert_eq!(verify_hashes(&root, len, &short, &answer_short), Err(ProofError::ShortProof { top: 2, height: 3 }));
    // The right hashes under another file's root, or at the wrong index, do not verify.
    assert_eq!(verify_hashes(&[7; 32], len, &full, &answer), Err(ProofError::RootMismatch));
    assert_eq!(verify_hashes(&root, len, &range(0, 2, 2, 2), &answer), Err(ProofError::RootMismatch));
}

#[test]
fn roots_agree_with_merkle_rs() {
    for &(len, piece_length) in &[(1, K), (K, K), (K + 1, K), (7 * K + 5, 2 * K), (17 * K, 4 * K), (64 * K + 1, 16 * K)]
    {
        let data = capture_data(len);
        let leaves: Vec<Hash32> = data.chunks(K as usize).map(leaf).collect();
        let expected = hash_bytes(&data, piece_length);
        let from_leaves = HashTree::from_leaves(&leaves, len).expect("tree");
        assert_eq!(Some(from_leaves.root()), expected.root, "{len} {piece_length}");
        assert_eq!(from_leaves.height(), tree_height(len));
        if len > piece_length {
            let tree = HashTree::from_piece_layer(&expected.piece_layer, piece_length, len).expect("tree");
            assert_eq!(Some(tree.root()), expected.root);
            assert_eq!(tree.lowest_layer(), piece_height(piece_length));
            // Serving the piece layer in full gives back the torrent's `piece layers` entry.
            for request in piece_layer_requests(len, piece_length) {
                let answer = flat(&from_leaves.serve(&request).expect("served"));
                let got = verify_hashes(&from_leaves.root(), len, &request, &answer).expect("verifies");
                let first = request.index as usize;
                assert_eq!(got, expected.piece_layer[first..(first + got.len())]);
            }
        }
    }
}

/// A file for the property tests: its length, piece length, the layer the server holds and that layer's height.
#[derive(Debug, Clone)]
struct File {
    length: u64,
    piece_length: u64,
    held: u32,
    layer: Vec<Hash32>,
}

fn file() -> impl Strategy<Value = File> {
    (0u32..=8, any::<bool>(), any::<u64>(), any::<u64>()).prop_map(|(piece_exp, from_pieces, raw, seed)| {
        let piece_length = K << piece_exp;
        if from_pieces {
            // Up to 4096 pieces of up to 4 MiB: files up to 16 GiB, trees up to 20 layers.
            let length = piece_length + 1 + raw % (4095 * piece_length);
            let pieces = length.div_ceil(piece_length);
            File { length, piece_length, held: piece_height(piece_length), layer: fake_hashes(pieces, seed) }
        } else {
            // Up to 4096 blocks, small files weighted up.
            let max = if raw % 2 == 0 { 8 * K } else { 4096 * K };
            let length = 1 + (raw >> 1) % max;
            File { length, piece_length, held: 0, layer: fake_hashes(length.div_ceil(K), seed) }
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn serve_then_verify_round_trips(f in file(), picks in any::<[u32; 5]>()) {
        let tree = HashTree::new(&f.layer, f.held, f.length).expect("tree");
        let top = tree_height(f.length);
        prop_assert_eq!(tree.height(), top);
        let reference = reference_layers(&f.layer, f.held, top);
        prop_assert_eq!(tree.root(), reference[reference.len() - 1][0]);
        if f.held == 0 {
            prop_assert_eq!(tree.root(), root_from_leaves(&f.layer));
        } else {
            prop_assert_eq!(tree.root(), root_from_piece_layer(&f.layer, f.piece_length));
        }
        if top == 0 {
            let refused = tree.serve(&range(0, 0, 1, 0));
            prop_assert!(matches!(refused, Err(ProofError::BaseLayer { .. })), "{:?}", refused);
            return Ok(());
        }
        // A random valid request, above the layer held.
        let base = f.held + picks[0] % (top - f.held);
        let k = picks[1] % ((top - base).min(13) + 1);
        let length = 1u32 << k;
        let width = 1u64 << (top - base);
        let index = u32::try_from((u64::from(picks[2]) % (width >> k)) << k).expect("small");
        let proof_layers = picks[3] % (top - base);
        let request = range(base, index, length, proof_layers);
        let served = tree.serve(&request).expect("valid request");
        prop_assert_eq!(served.len() as u64, request.hash_count());
        // Against the literal tree: the base range, then the siblings of its ancestors, lowest first.
        let layer = &reference[(base - f.held) as usize];
        let (bases, uncles) = served.split_at(length as usize);
        prop_assert_eq!(bases, &layer[index as usize..(index + length) as usize]);
        for (i, uncle) in uncles.iter().enumerate() {
            let h = base + k + i as u32;
            let sibling = ((index as usize) >> (h - base)) ^ 1;
            prop_assert_eq!(uncle, &reference[(h - f.held) as usize][sibling]);
        }
        let data = data_nodes(f.length, base);
        let expected: Vec<Hash32> =
            bases[..(data.saturating_sub(u64::from(index)).min(u64::from(length))) as usize].to_vec();
        let got = verify_hashes(&tree.root(), f.length, &request, &flat(&served));
        if proof_layers + 1 >= top - base || k == top - base {
            prop_assert_eq!(got, Ok(expected.clone()));
        } else {
            prop_assert!(matches!(got, Err(ProofError::ShortProof { .. })), "{:?}", got);
        }

        // With the proof up to the root, the answer verifies, and any flipped bit breaks it.
        let full = range(base, index, length, top - base - 1);
        let mut answer = flat(&tree.serve(&full).expect("valid request"));
        prop_assert_eq!(verify_hashes(&tree.root(), f.length, &full, &answer), Ok(expected));
        let byte = picks[4] as usize % answer.len();
        answer[byte] ^= 1 << (picks[4] % 8);
        prop_assert_eq!(verify_hashes(&tree.root(), f.length, &full, &answer), Err(ProofError::RootMismatch));
    }

    #[test]
    fn a_tree_held_from_its_pieces_serves_block_hashes_from_one_pieces_leaves(
        piece_exp in 1u32..=6,
        raw in any::<u64>(),
        seed in any::<u64>(),
        picks in any::<[u32; 5]>(),
    ) {
        // A file of several pieces (2 to 64 blocks each), its leaves, and the two trees: the whole one, and the
        // one a seeder holds from the torrent's piece layer.
        let piece_length = K << piece_exp;
        let length = piece_length + 1 + raw % (40 * piece_length);
        let leaves = fake_hashes(length.div_ceil(K), seed);
        let per_piece = blocks_per_piece(piece_length);
        let layer: Vec<Hash32> = leaves.chunks(per_piece).map(|c| piece_hash(c, piece_length)).collect();
        let whole = HashTree::from_leaves(&leaves, length).expect("tree from leaves");
        let held = HashTree::from_piece_layer(&layer, piece_length, length).expect("tree from pieces");
        prop_assert_eq!(whole.root(), held.root());
        let top = tree_height(length);
        let pieces = layer.len() as u64;
        // A random request below the piece layer that lies under one piece.
        let piece = u64::from(picks[0]) % pieces;
        let base = picks[1] % piece_exp;
        let k = picks[2] % (piece_exp - base + 1);
        let within = (u64::from(picks[3]) % (1 << (piece_exp - base - k))) << k;
        let index = u32::try_from((piece << (piece_exp - base)) + within).expect("small");
        let request = range(base, index, 1 << k, picks[4] % (top - base));
        let piece_leaves = &leaves[(piece as usize * per_piece)..((piece as usize + 1) * per_piece).min(leaves.len())];
        prop_assert_eq!(held.serve_below(&request, piece_leaves), whole.serve(&request));
        // The proof up to the root verifies; other leaves, too few leaves or a range across pieces do not serve.
        let full = HashRange { proof_layers: top - base - 1, ..request };
        let answer = flat(&held.serve_below(&full, piece_leaves).expect("served"));
        prop_assert!(verify_hashes(&held.root(), length, &full, &answer).is_ok());
        let mut wrong = piece_leaves.to_vec();
        let flipped = picks[4] as usize % wrong.len();
        wrong[flipped][0] ^= 1;
        prop_assert_eq!(
            held.serve_below(&full, &wrong),
            Err(ProofError::LeavesMismatch { node: piece, held: piece_exp })
        );
        let short = held.serve_below(&full, &piece_leaves[1..]);
        prop_assert!(matches!(short, Err(ProofError::BadLayer { .. })), "{:?}", short);
        if pieces > 1 {
            let both = range(0, 0, (2 * per_piece) as u32, top - 1);
            let refused = held.serve_below(&both, &leaves[..per_piece]);
            prop_assert!(matches!(refused, Err(ProofError::AcrossNodes { .. })), "{:?}", refused);
        }
    }

    #[test]
    fn piece_layer_requests_fetch_the_whole_layer(f in file()) {
        let requests = piece_layer_requests(f.length, f.piece_length);
        let pieces = f.length.div_ceil(f.piece_length);
        if f.length <= f.piece_length {
            prop_assert!(requests.is_empty());
            return Ok(());
        }
        // Contiguous 512-piece chunks covering every piece, each valid and with a proof up to the root.
        let mut next = 0u64;
        for request in &requests {
            prop_assert_eq!(u64::from(request.index), next);
            prop_assert!(request.length <= PIECE_LAYER_CHUNK);
            prop_assert_eq!(check_request(f.length, request), Ok(tree_height(f.length)));
            prop_assert_eq!(request.base_layer + request.length.trailing_zeros() + request.uncle_count(), tree_height(f.length));
            next += u64::from(request.length).min(pieces - next);
        }
        prop_assert_eq!(next, pieces);
        // Served from the pieces, each answer verifies and gives back those pieces.
        let layer = if f.held == 0 {
            f.layer.chunks(blocks_per_piece(f.piece_length)).map(|c| piece_hash(c, f.piece_length)).collect()
        } else {
            f.layer.clone()
        };
        let tree = HashTree::from_piece_layer(&layer, f.piece_length, f.length).expect("tree");
        let mut got = Vec::new();
        for request in &requests {
            let answer = flat(&tree.serve(request).expect("served"));
            got.extend(verify_hashes(&tree.root(), f.length, request, &answer).expect("verifies"));
        }
        prop_assert_eq!(got, layer);
    }
}

proptest! {
    /// The fields and hashes of a `hashes` message come from a peer: any of them, for any file, is an answer or an
    /// error, never a panic; and the same holds for serving any request.
    #[test]
    fn hostile_fields_never_panic(
        length_pick in prop_oneof![Just(0u64), Just(u64::MAX), 1u64..=(64 * K), any::<u64>()],
        fields in any::<[u32; 4]>(),
        small in any::<[u8; 4]>(),
        count in 0usize..40,
    ) {
        let [base_layer, index, length, proof_layers] = fields;
        // Half the time, fields near the valid range.
        let request = if small[0] % 2 == 0 {
            range(u32::from(small[1] % 8), u32::from(small[2]), 1 << (small[3] % 16), proof_layers % 8)
        } else {
            range(base_layer, index, length, proof_layers)
        };
        let hashes = vec![0x5A; count * 32 + usize::from(small[3] % 2)];
        let _ = verify_hashes(&[0; 32], length_pick, &request, &hashes);
        let _ = check_request(length_pick, &request);
        if (1..=64 * K).contains(&length_pick) {
            let tree = HashTree::from_leaves(&fake_hashes(length_pick.div_ceil(K), 9), length_pick).expect("tree");
            if let Ok(answer) = tree.serve(&request) {
                prop_assert_eq!(answer.len() as u64, request.hash_count());
            }
            // A seeder's tree held from 64 KiB pieces, asked below them with any leaves.
            let layer = fake_hashes(length_pick.div_ceil(4 * K), 3);
            if let Ok(held) = HashTree::from_piece_layer(&layer, 4 * K, length_pick)
                && let Ok(answer) = held.serve_below(&request, &fake_hashes(count as u64 % 5, 4))
            {
                prop_assert_eq!(answer.len() as u64, request.hash_count());
            }
        }
    }
}
