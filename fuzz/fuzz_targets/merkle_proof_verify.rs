//! Fuzz BEP 52 hash checking: a `hashes` message's fields and hashes, all from the wire, checked against a file's
//! root must never panic, and what passes must be exactly the base hashes asked for. A tree built from arbitrary
//! piece-layer hashes must serve proofs that its own root accepts; a tree held from 64 KiB pieces, asked below them
//! with the right leaves of one piece, answers exactly as the whole tree does.

#![no_main]

use metainfo::merkle::{self, Hash32};
use metainfo::merkle_proof::{HashRange, HashTree, verify_hashes};

fn word(data: &[u8], at: usize) -> u32 {
    data.get(at..at + 4).map_or(0, |bytes| u32::from_le_bytes(bytes.try_into().unwrap_or_default()))
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if data.len() < 56 {
        return;
    }
    let root: Hash32 = data[..32].try_into().unwrap_or_default();
    // Files from 1 byte to 64 GiB; fields as any peer could send them.
    let file_length = u64::from(word(data, 32)) * 16 + u64::from(data[36]) + 1;
    let range = HashRange {
        base_layer: word(data, 37) % 40,
        index: word(data, 41),
        length: word(data, 45),
        proof_layers: word(data, 49) % 40,
    };
    let hashes = &data[53..];
    if let Ok(base) = verify_hashes(&root, file_length, &range, hashes) {
        assert!(base.len() <= range.length as usize);
    }

    // Our own tree, from the same bytes taken as a piece layer of 16 KiB pieces: every answer it gives verifies.
    let layer: Vec<Hash32> = hashes.chunks_exact(32).map(|chunk| chunk.try_into().unwrap_or_default()).collect();
    if layer.len() < 2 {
        return;
    }
    let length = (layer.len() as u64 - 1) * 16 * 1024 + 1 + u64::from(data[36]);
    let Ok(tree) = HashTree::from_piece_layer(&layer, 16 * 1024, length) else { return };
    if let Ok(served) = tree.serve(&range) {
        // A proof that stops below the root is valid to serve but cannot be checked against the root alone.
        let reaches_root = range.base_layer + range.length.trailing_zeros() + range.uncle_count() == tree.height();
        let checked = verify_hashes(&tree.root(), length, &range, &served.concat());
        assert!(!reaches_root || checked.is_ok(), "our own proof must verify: {checked:?} for {range:?}");
    }

    // The same hashes as a file's leaves: the whole tree, and the tree a seeder holds from its 64 KiB pieces.
    let Ok(whole) = HashTree::from_leaves(&layer, length) else { return };
    let pieces: Vec<Hash32> = layer.chunks(4).map(|leaves| merkle::piece_hash(leaves, 64 * 1024)).collect();
    let Ok(held) = HashTree::from_piece_layer(&pieces, 64 * 1024, length) else { return };
    let below = 2u32.saturating_sub(range.base_layer);
    let piece = if below == 0 { 0 } else { (range.index >> below) as usize };
    let leaves = layer.chunks(4).nth(piece).unwrap_or_default();
    if let Ok(served) = held.serve_below(&range, leaves) {
        assert_eq!(Ok(served), whole.serve(&range), "{range:?}");
    }
});
