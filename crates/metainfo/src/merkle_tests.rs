use proptest::prelude::*;
use sha2::{Digest, Sha256};

use super::*;

/// BEP 52 read literally: hash every 16 KiB block, pad the leaf layer with zero hashes up to a power of two,
/// hash pairs up to the root; the piece layer is the layer `log2(piece / 16 KiB)` above the leaves, cut to the
/// file's pieces, for files longer than one piece.
fn reference(data: &[u8], piece_length: u64) -> FileHashes {
    if data.is_empty() {
        return FileHashes { root: None, piece_layer: Vec::new() };
    }
    let mut layer: Vec<[u8; 32]> = data.chunks(16384).map(|block| Sha256::digest(block).into()).collect();
    let width = layer.len().next_power_of_two();
    layer.resize(width, [0u8; 32]);
    let mut layers = vec![layer];
    while layers.last().map_or(0, Vec::len) > 1 {
        let below = layers.last().cloned().unwrap_or_default();
        let above = below
            .chunks(2)
            .map(|pair| {
                let mut hasher = Sha256::new();
                hasher.update(pair[0]);
                hasher.update(pair[1]);
                hasher.finalize().into()
            })
            .collect();
        layers.push(above);
    }
    let root = layers.last().map(|top| top[0]);
    let pieces = (data.len() as u64).div_ceil(piece_length) as usize;
    let height = (piece_length / 16384).trailing_zeros() as usize;
    let piece_layer = if data.len() as u64 > piece_length { layers[height][..pieces].to_vec() } else { Vec::new() };
    FileHashes { root, piece_layer }
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 9) as u8).collect()
}

#[test]
fn zero_pads_are_the_roots_of_zero_subtrees() {
    assert_eq!(pad_hash(0), [0u8; 32]);
    let one: [u8; 32] = Sha256::digest([0u8; 64]).into();
    assert_eq!(pad_hash(1), one);
    assert_eq!(pad_hash(2), parent(&one, &one));
}

#[test]
fn a_one_block_file_has_its_block_hash_as_root() {
    let bytes = data(100, 1);
    let got = hash_bytes(&bytes, 16384);
    assert_eq!(got.root, Some(Sha256::digest(&bytes).into()));
    assert!(got.piece_layer.is_empty());
}

#[test]
fn edge_sizes_match_the_reference() {
    const K: usize = 16384;
    let sizes = [
        0,
        1,
        K - 1,
        K,
        K + 1,
        2 * K - 1,
        2 * K,
        2 * K + 1,
        3 * K,
        4 * K,
        4 * K + 1,
        7 * K + 5,
        8 * K,
        16 * K,
        17 * K,
        64 * K + 1,
    ];
    for piece_length in [16384u64, 32768, 65536, 262_144] {
        for &size in &sizes {
            let bytes = data(size, size as u8);
            assert_eq!(
                hash_bytes(&bytes, piece_length),
                reference(&bytes, piece_length),
                "size {size}, piece {piece_length}"
            );
        }
    }
}

#[test]
fn empty_layers_pad_to_the_whole_height() {
    assert_eq!(root_of_layer(&[], 0, 4), pad_hash(2));
    assert_eq!(root_of_layer(&[], 3, 2), pad_hash(4));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_size_matches_the_reference(size in 0usize..600_000, log in 14u32..19, seed: u8) {
        let piece_length = 1u64 << log;
        let bytes = data(size, seed);
        prop_assert_eq!(hash_bytes(&bytes, piece_length), reference(&bytes, piece_length));
    }

    #[test]
    fn sizes_near_powers_of_two_match_the_reference(exp in 0u32..20, delta in -1i64..=1, log in 14u32..17) {
        let size = ((1i64 << exp) + delta).max(0) as usize;
        let piece_length = 1u64 << log;
        let bytes = data(size, 7);
        prop_assert_eq!(hash_bytes(&bytes, piece_length), reference(&bytes, piece_length));
    }

    #[test]
    fn the_root_hashes_up_from_the_piece_layer(size in 1usize..400_000, log in 14u32..17) {
        let piece_length = 1u64 << log;
        let hashes = hash_bytes(&data(size, 3), piece_length);
        if !hashes.piece_layer.is_empty() {
            prop_assert_eq!(Some(root_from_piece_layer(&hashes.piece_layer, piece_length)), hashes.root);
        }
    }
}

#[test]
fn leaves_into_matches_one_block_at_a_time_at_any_length() {
    let data: Vec<u8> = (0..1_100_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
    for len in [0, 1, 16_383, 16_384, 16_385, 262_143, 262_144, 262_145, 300_000, 524_288 + 16_384, 1_048_581] {
        let mut got = vec![[7u8; 32]];
        leaves_into(&data[..len], &mut got);
        let expected: Vec<Hash32> =
            std::iter::once([7u8; 32]).chain(data[..len].chunks(BLOCK_SIZE as usize).map(leaf)).collect();
        assert_eq!(got, expected, "{len} bytes");
    }
}
