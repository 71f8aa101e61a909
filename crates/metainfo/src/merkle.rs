//! BitTorrent v2 merkle trees (BEP 52): SHA-256 of 16 KiB blocks, per file, padded to a power of two.
//!
//! Each file has its own tree. Its leaves are the SHA-256 of the file's 16 KiB blocks (the last block may be
//! shorter and is hashed as it is, never padded with bytes). The leaf layer is padded with zero hashes (32 zero
//! bytes) up to a power of two, so every layer above it is padded with the root of a zero subtree of that height.
//! The root of the tree is the file's `pieces root`; an empty file has none.
//!
//! The `piece layers` entry of a file is the layer whose nodes each cover one piece (`piece length / 16 KiB`
//! leaves), cut to the file's own pieces: `ceil(length / piece length)` hashes. Files no longer than one piece have
//! no entry there (their root already is their only piece's hash). For those, the tree is padded only to the next
//! power of two of their own block count, not to a whole piece: building the full tree of any file and reading
//! its root gives exactly that.

use sha2::{Digest, Sha256};

/// Bytes per leaf block.
pub const BLOCK_SIZE: u64 = 16 * 1024;

/// A SHA-256 digest: a node of a merkle tree.
pub type Hash32 = [u8; 32];

/// The hash of two children.
pub fn parent(left: &Hash32, right: &Hash32) -> Hash32 {
    let mut hasher = Sha256::new();
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The SHA-256 of one block (a leaf).
pub fn leaf(block: &[u8]) -> Hash32 {
    Sha256::digest(block).into()
}

/// Appends the leaves of `data` to `out`: the SHA-256 of each 16 KiB block, the last one as it is if shorter.
/// Sixteen whole blocks at a time go through the AVX-512 lanes where the running CPU does them faster
/// (`sha256_lanes`).
pub fn leaves_into(data: &[u8], out: &mut Vec<Hash32>) {
    let group = crate::sha256_lanes::LANES * crate::sha256_lanes::LEAF;
    let mut rest = data;
    if rest.len() >= group && crate::sha256_lanes::preferred() {
        let mut hashed = [[0u8; 32]; crate::sha256_lanes::LANES];
        while rest.len() >= group && crate::sha256_lanes::leaves16(rest, &mut hashed) {
            out.extend_from_slice(&hashed);
            rest = &rest[group..];
        }
    }
    out.extend(rest.chunks(BLOCK_SIZE as usize).map(leaf));
}

/// The root of a subtree of `2^height` zero leaves: the padding at layer `height` (0 is the leaf layer).
pub fn pad_hash(height: u32) -> Hash32 {
    let mut hash = [0u8; 32];
    for _ in 0..height {
        hash = parent(&hash, &hash);
    }
    hash
}

/// The root of the tree whose lowest layer is `nodes` (at `height` above the leaves), padded with
/// [`pad_hash`]`(height)` up to `width` nodes, a power of two no smaller than `nodes.len()`.
pub fn root_of_layer(nodes: &[Hash32], height: u32, width: usize) -> Hash32 {
    debug_assert!(width.is_power_of_two() && width >= nodes.len());
    if nodes.is_empty() {
        return pad_hash(height + width.trailing_zeros());
    }
    let mut layer: Vec<Hash32> = nodes.to_vec();
    let mut pad = pad_hash(height);
    let mut width = width;
    while width > 1 {
        if layer.len() % 2 == 1 {
            layer.push(pad);
        }
        let next: Vec<Hash32> = layer.chunks_exact(2).map(|pair| parent(&pair[0], &pair[1])).collect();
        layer = next;
        pad = parent(&pad, &pad);
        width /= 2;
    }
    layer[0]
}

/// Leaves per piece: `piece_length / 16 KiB` (a power of two for any valid v2 piece length).
pub fn blocks_per_piece(piece_length: u64) -> usize {
    usize::try_from((piece_length / BLOCK_SIZE).max(1)).unwrap_or(usize::MAX)
}

/// The height of the piece layer above the leaves.
pub fn piece_height(piece_length: u64) -> u32 {
    blocks_per_piece(piece_length).trailing_zeros()
}

/// The hash of one piece of a file with more than one piece: its leaves padded to a whole piece.
pub fn piece_hash(leaves: &[Hash32], piece_length: u64) -> Hash32 {
    root_of_layer(leaves, 0, blocks_per_piece(piece_length))
}

/// The root of a file longer than one piece, from its piece layer.
pub fn root_from_piece_layer(layer: &[Hash32], piece_length: u64) -> Hash32 {
    root_of_layer(layer, piece_height(piece_length), layer.len().next_power_of_two())
}

/// The root of a file of at most one piece, from its leaves.
pub fn root_from_leaves(leaves: &[Hash32]) -> Hash32 {
    root_of_layer(leaves, 0, leaves.len().next_power_of_two())
}

/// A file's `pieces root` and its `piece layers` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHashes {
    /// `None` for an empty file.
    pub root: Option<Hash32>,
    /// Empty for files of at most one piece.
    pub piece_layer: Vec<Hash32>,
}

/// Puts together what hashing a file's pieces gave: `pieces` holds, for a file longer than one piece, each
/// piece's [`piece_hash`]; for a file of one piece, the single [`root_from_leaves`]; for an empty file, nothing.
pub fn file_hashes(length: u64, piece_length: u64, pieces: Vec<Hash32>) -> FileHashes {
    if length == 0 {
        FileHashes { root: None, piece_layer: Vec::new() }
    } else if length <= piece_length {
        FileHashes { root: pieces.first().copied(), piece_layer: Vec::new() }
    } else {
        FileHashes { root: Some(root_from_piece_layer(&pieces, piece_length)), piece_layer: pieces }
    }
}

/// The hashes of a file held in memory.
pub fn hash_bytes(data: &[u8], piece_length: u64) -> FileHashes {
    let length = data.len() as u64;
    let piece = usize::try_from(piece_length).unwrap_or(usize::MAX);
    let pieces: Vec<Hash32> = if length == 0 {
        Vec::new()
    } else if length <= piece_length {
        let leaves: Vec<Hash32> = data.chunks(BLOCK_SIZE as usize).map(leaf).collect();
        vec![root_from_leaves(&leaves)]
    } else {
        data.chunks(piece)
            .map(|chunk| {
                let leaves: Vec<Hash32> = chunk.chunks(BLOCK_SIZE as usize).map(leaf).collect();
                piece_hash(&leaves, piece_length)
            })
            .collect()
    };
    file_hashes(length, piece_length, pieces)
}

#[cfg(test)]
#[path = "merkle_tests.rs"]
mod tests;
