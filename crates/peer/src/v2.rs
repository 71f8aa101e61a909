//! BitTorrent v2 pieces (BEP 52) for a v2-only torrent, as the rest of the peer sees pieces: one byte stream.
//!
//! In v2 every file starts on a piece boundary. Laid end to end, as libtorrent lays them out, each non-empty file
//! is followed by zeros up to the next boundary (an implicit pad file, never written to disk; after the last file
//! too, so the last piece is a whole one, and libtorrent asks for its blocks as such), so the piece indices of the
//! wire protocol are the pieces of that stream and every piece holds bytes of one file only.
//! A piece is checked against its file's merkle tree instead of a SHA-1: the SHA-256 leaves of its 16 KiB blocks
//! (the file's last block hashed as it is, short), padded with zero leaves to a whole piece for a file of several
//! pieces (its `piece layers` entry) or to a power of two of its own blocks for a file of one piece (its `pieces
//! root`). A hybrid torrent has SHA-1 pieces and pad files of its own and is checked as v1.

use std::collections::HashMap;

use metainfo::merkle::{self, BLOCK_SIZE, Hash32};
use metainfo::merkle_proof::{HashRange, HashTree};
use metainfo::{FileEntry, Torrent};
use sha1::{Digest, Sha1};

/// What each piece of a torrent must hash to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PieceHashes {
    /// The SHA-1 of each piece (v1 and hybrid torrents).
    V1(metainfo::V1Hashes),
    /// A v2-only torrent's pieces, checked against their files' merkle trees.
    V2(Vec<V2Piece>),
}

impl PieceHashes {
    /// How many pieces there are.
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            PieceHashes::V1(hashes) => hashes.len(),
            PieceHashes::V2(pieces) => pieces.len(),
        }
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `data` (the whole piece) is piece `index`; false for an index out of range.
    #[must_use]
    pub fn piece_matches(&self, index: u32, data: &[u8]) -> bool {
        match self {
            PieceHashes::V1(hashes) => {
                hashes.get(index as usize).is_some_and(|expected| Sha1::digest(data).as_slice() == expected)
            }
            PieceHashes::V2(pieces) => pieces.get(index as usize).is_some_and(|piece| piece.matches(data)),
        }
    }
}

/// One piece of a v2-only torrent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V2Piece {
    /// The merkle hash its file's bytes must give.
    pub hash: Hash32,
    /// Bytes of the piece that belong to its file; the rest of the piece are the zeros before the next file.
    pub file_bytes: u32,
    /// Leaves the hash covers, a power of two: a whole piece's for a file of several pieces, else the file's own
    /// block count rounded up.
    pub leaves: u32,
}

impl V2Piece {
    /// Whether `data`, the whole piece, holds this piece's file bytes followed by zeros only.
    #[must_use]
    pub fn matches(&self, data: &[u8]) -> bool {
        let Some((file_part, padding)) = data.split_at_checked(self.file_bytes as usize) else { return false };
        if padding.iter().any(|&byte| byte != 0) {
            return false;
        }
        let mut leaves: Vec<Hash32> = Vec::with_capacity(self.leaves as usize);
        merkle::leaves_into(file_part, &mut leaves);
        leaves.len() <= self.leaves as usize && merkle::root_of_layer(&leaves, 0, self.leaves as usize) == self.hash
    }
}

/// The merkle trees of a v2 or hybrid torrent's files, from their piece layers down to nothing below: what BEP 52's
/// hash requests ask for (a peer that got the info dictionary from a magnet link has no piece layers). Files of
/// one piece have no layer to serve: their root is their only piece's hash. Below the piece layer, block hashes
/// are served from a piece read from disk ([`HashTrees::piece_for`], [`HashTrees::serve_from_piece`]), and asked
/// for when a piece fails its check ([`HashTrees::block_request`]).
#[derive(Debug, Default)]
pub struct HashTrees {
    trees: HashMap<Hash32, HashTree>,
    /// Each non-empty file's place among the pieces, in piece order; empty when the pieces do not map onto the
    /// files one to one (a v1 torrent, or a hybrid whose v1 files do not start on piece boundaries).
    spans: Vec<FileSpan>,
    piece_length: u64,
}

/// Where a non-empty file of a v2 or hybrid torrent lies among the torrent's pieces: every such file starts on a
/// piece boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileSpan {
    first_piece: u32,
    pieces: u32,
    root: Hash32,
    length: u64,
}

/// The block hashes of one piece, as we ask a peer for them (BEP 52 `hash request`, base layer 0), with a proof up
/// to the file's root so the answer is checked against the torrent alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHashRequest {
    /// The file's `pieces root`, which names the file in the request.
    pub pieces_root: Hash32,
    /// The file's length, which gives its tree's shape.
    pub file_length: u64,
    pub range: HashRange,
    /// Bytes of the piece that belong to the file; the rest are zeros (padding).
    pub file_bytes: u32,
}

/// What one 16 KiB block of a failed piece held, to compare with its proven block hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockClaim {
    /// The SHA-256 leaf of its file bytes (the padding after them, if any, was zeros).
    Leaf(Hash32),
    /// It lies wholly in the padding after the file, and is zeros.
    Padding,
    /// Padding that is not zeros: bad whatever the hashes say.
    BadPadding,
}

impl BlockClaim {
    /// Whether the block is the torrent's, given the proven leaf hash at its place (`None` past the file's end).
    #[must_use]
    pub fn is_good(&self, proven: Option<&Hash32>) -> bool {
        match (self, proven) {
            (BlockClaim::Leaf(leaf), Some(proven)) => leaf == proven,
            (BlockClaim::Padding, None) => true,
            _ => false,
        }
    }
}

/// What each 16 KiB block of `data` (a whole piece) holds, the first `file_bytes` of it being file bytes.
#[must_use]
pub fn block_claims(data: &[u8], file_bytes: u32) -> Vec<BlockClaim> {
    let file_bytes = (file_bytes as usize).min(data.len());
    data.chunks(BLOCK_SIZE as usize)
        .enumerate()
        .map(|(i, block)| {
            let start = i * BLOCK_SIZE as usize;
            let in_file = file_bytes.saturating_sub(start).min(block.len());
            let (file_part, padding) = block.split_at(in_file);
            if padding.iter().any(|&byte| byte != 0) {
                BlockClaim::BadPadding
            } else if in_file == 0 {
                BlockClaim::Padding
            } else {
                BlockClaim::Leaf(merkle::leaf(file_part))
            }
        })
        .collect()
}

impl HashTrees {
    /// The trees of `torrent`'s files (none for a v1 torrent).
    #[must_use]
    pub fn of(torrent: &Torrent) -> HashTrees {
        let Some(v2) = &torrent.v2 else { return HashTrees::default() };
        let piece_length = torrent.info.piece_length;
        let trees = v2
            .files
            .iter()
            .filter(|file| !file.piece_layer.is_empty())
            .filter_map(|file| {
                let root = file.pieces_root?;
                let tree = HashTree::from_piece_layer(&file.piece_layer, piece_length, file.length).ok()?;
                // A parsed torrent's layers always give their roots; a tree that does not is never served.
                (tree.root() == root).then_some((root, tree))
            })
            .collect();
        HashTrees { trees, spans: file_spans(torrent).unwrap_or_default(), piece_length }
    }

    /// The hashes and proof a `hash request` for the file with `pieces_root` asks for; `None` (answer with a `hash
    /// reject`) for a file not among ours or without a piece layer, or a request its tree cannot answer. Block
    /// hashes below the piece layer need the piece's bytes: see [`HashTrees::piece_for`].
    #[must_use]
    pub fn serve(&self, pieces_root: &Hash32, range: &HashRange) -> Option<Vec<Hash32>> {
        self.trees.get(pieces_root)?.serve(range).ok()
    }

    /// The piece whose bytes answer a request for hashes below the piece layer (block hashes, as a peer asks for
    /// them when a piece failed): the range must lie within one piece of a file of ours. `None` for a request
    /// [`HashTrees::serve`] answers from memory, or none can.
    #[must_use]
    pub fn piece_for(&self, pieces_root: &Hash32, range: &HashRange) -> Option<u32> {
        let span = self.spans.iter().find(|span| span.root == *pieces_root)?;
        metainfo::merkle_proof::check_request(span.length, range).ok()?;
        if span.pieces == 1 {
            // No layer is kept for a file of one piece: any of its hashes come from its bytes.
            return Some(span.first_piece);
        }
        let below = merkle::piece_height(self.piece_length).checked_sub(range.base_layer).filter(|&b| b > 0)?;
        let first = u64::from(range.index) >> below;
        let last = (u64::from(range.index) + u64::from(range.length) - 1) >> below;
        let first = u32::try_from(first).ok().filter(|&first| u64::from(first) == last && first < span.pieces)?;
        Some(span.first_piece + first)
    }

    /// Answers a request [`HashTrees::piece_for`] named `piece` for, from that piece's bytes (the whole piece):
    /// the hashes and proof, or `None` when the bytes are not the torrent's or the request does not fit.
    #[must_use]
    pub fn serve_from_piece(
        &self,
        pieces_root: &Hash32,
        range: &HashRange,
        piece: u32,
        data: &[u8],
    ) -> Option<Vec<Hash32>> {
        let span = self.spans.iter().find(|span| span.root == *pieces_root && span.contains(piece))?;
        let file_bytes = span.file_bytes(piece, self.piece_length)?;
        let mut leaves: Vec<Hash32> = Vec::new();
        merkle::leaves_into(data.get(..file_bytes as usize)?, &mut leaves);
        if span.pieces > 1 {
            self.trees.get(pieces_root)?.serve_below(range, &leaves).ok()
        } else {
            let tree = HashTree::from_leaves(&leaves, span.length).ok()?;
            (tree.root() == span.root).then(|| tree.serve(range).ok()).flatten()
        }
    }

    /// What to ask for to learn piece `index`'s block hashes: its 16 KiB blocks' leaves with a proof up to its
    /// file's root. `None` for a torrent without v2 files, and for a piece of one block (its piece hash already is
    /// its block hash).
    #[must_use]
    pub fn block_request(&self, index: u32) -> Option<BlockHashRequest> {
        let at = self.spans.partition_point(|span| span.first_piece + span.pieces <= index);
        let span = self.spans.get(at).filter(|span| span.contains(index))?;
        let height = metainfo::merkle_proof::tree_height(span.length);
        if height == 0 {
            return None;
        }
        let per_piece = u32::try_from(self.piece_length / BLOCK_SIZE).ok()?;
        let (first, length) = if span.pieces > 1 {
            ((index - span.first_piece).checked_mul(per_piece)?, per_piece)
        } else {
            (0, 1 << height)
        };
        if length < 2 {
            return None;
        }
        let range = HashRange { base_layer: 0, index: first, length, proof_layers: height - 1 };
        let file_bytes = span.file_bytes(index, self.piece_length)?;
        Some(BlockHashRequest { pieces_root: span.root, file_length: span.length, range, file_bytes })
    }

    /// Whether there is any tree to serve.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.trees.is_empty()
    }
}

impl FileSpan {
    fn contains(&self, piece: u32) -> bool {
        piece >= self.first_piece && piece - self.first_piece < self.pieces
    }

    /// Bytes of `piece` (one of this file's) that are the file's.
    fn file_bytes(&self, piece: u32, piece_length: u64) -> Option<u32> {
        let start = u64::from(piece - self.first_piece) * piece_length;
        u32::try_from(self.length.checked_sub(start)?.min(piece_length)).ok()
    }
}

/// Where each non-empty v2 file lies among the pieces: one after another, each from a piece boundary. For a
/// hybrid, checked against its v1 file list: the same files in the same order, each starting on a piece boundary
/// (BEP 47 pad files between them), so both views name the same pieces; `None` if they do not.
fn file_spans(torrent: &Torrent) -> Option<Vec<FileSpan>> {
    let v2 = torrent.v2.as_ref()?;
    let piece_length = torrent.info.piece_length;
    if piece_length < BLOCK_SIZE || !piece_length.is_power_of_two() {
        return None;
    }
    let mut spans = Vec::new();
    let mut next = 0u32;
    for file in v2.files.iter().filter(|file| file.length > 0) {
        let pieces = u32::try_from(file.length.div_ceil(piece_length)).ok()?;
        spans.push(FileSpan { first_piece: next, pieces, root: file.pieces_root?, length: file.length });
        next = next.checked_add(pieces)?;
    }
    if torrent.has_v1() {
        let mut offset = 0u64;
        let mut v1_files = Vec::new();
        for file in &torrent.info.files {
            if !file.pad && file.length > 0 {
                v1_files.push((offset, file.length));
            }
            offset += file.length;
        }
        let matches = v1_files.len() == spans.len()
            && v1_files.iter().zip(&spans).all(|(&(offset, length), span)| {
                offset == u64::from(span.first_piece) * piece_length && length == span.length
            });
        if !matches || torrent.info.pieces.len() != next as usize {
            return None;
        }
    }
    Some(spans)
}

/// A v2-only torrent's files with the implicit pad files between them, and what each piece must hash to; `None`
/// for a torrent with v1 pieces (v1 or hybrid), or a v2 part that does not add up (a parsed torrent always does).
#[must_use]
pub fn layout(torrent: &Torrent) -> Option<(Vec<FileEntry>, Vec<V2Piece>)> {
    let v2 = torrent.v2.as_ref().filter(|_| !torrent.has_v1())?;
    let piece_length = torrent.info.piece_length;
    if piece_length < BLOCK_SIZE || !piece_length.is_power_of_two() {
        return None;
    }
    let mut files = Vec::with_capacity(v2.files.len() * 2);
    let mut pieces = Vec::new();
    for file in &v2.files {
        files.push(FileEntry { path: file.path.clone(), length: file.length, pad: false });
        if file.length == 0 {
            continue;
        }
        let root = file.pieces_root?;
        let count = file.length.div_ceil(piece_length);
        for piece in 0..count {
            let file_bytes = u32::try_from((file.length - piece * piece_length).min(piece_length)).ok()?;
            let (hash, leaves) = if count == 1 {
                (root, file.length.div_ceil(BLOCK_SIZE).next_power_of_two())
            } else {
                let hash = *file.piece_layer.get(usize::try_from(piece).ok()?)?;
                (hash, piece_length / BLOCK_SIZE)
            };
            pieces.push(V2Piece { hash, file_bytes, leaves: u32::try_from(leaves).ok()? });
        }
        let tail = file.length % piece_length;
        if tail != 0 {
            // Never on disk; named like a hybrid's pad files so the layout checks treat it as one.
            let path = vec![".pad".to_owned(), (piece_length - tail).to_string()];
            files.push(FileEntry { path, length: piece_length - tail, pad: true });
        }
    }
    Some((files, pieces))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_random(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).wrapping_add(u32::from(seed)).to_le_bytes()[2])
            .collect()
    }

    /// A v2-only torrent made by our creator from `input`, parsed.
    fn v2_torrent(input: &std::path::Path, piece_length: u64) -> Torrent {
        let options = metainfo::CreateOptions {
            piece_length: Some(piece_length),
            meta_version: metainfo::MetaVersion::V2,
            ..metainfo::CreateOptions::default()
        };
        let created = metainfo::create_from_path(input, &options, &|_| {}).expect("create");
        Torrent::from_bytes_any(&created.bytes).expect("parse")
    }

    #[test]
    fn pieces_of_each_file_check_against_its_tree_with_zeros_after_each_file_of_a_folder() {
        let piece = 32 * 1024;
        // A file of several pieces ending mid-block, one of a single short piece, one ending a byte past a piece
        // boundary, and an empty one.
        let files = [
            ("a", pseudo_random(2 * piece + 16_385, 1)),
            ("b", pseudo_random(1000, 2)),
            ("c", pseudo_random(piece + 1, 3)),
            ("e", Vec::new()),
        ];
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, data) in &files {
            std::fs::create_dir_all(dir.path().join("t")).expect("mkdir");
            std::fs::write(dir.path().join("t").join(name), data).expect("write");
        }
        let torrent = v2_torrent(&dir.path().join("t"), piece as u64);
        let (entries, pieces) = layout(&torrent).expect("a v2-only layout");

        // The stream: each file then zeros to the next piece boundary, the last file's too.
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for (_, data) in &files {
            stream.extend_from_slice(data);
            expected.push((data.len() as u64, false));
            let tail = data.len() % piece;
            if tail != 0 {
                stream.resize(stream.len() + piece - tail, 0);
                expected.push(((piece - tail) as u64, true));
            }
        }
        let lengths: Vec<(u64, bool)> = entries.iter().map(|file| (file.length, file.pad)).collect();
        assert_eq!(lengths, expected);
        assert_eq!(pieces.len(), 3 + 1 + 2);
        assert_eq!(stream.len(), 6 * piece);

        let copy = pieces.clone();
        let hashes = PieceHashes::V2(pieces);
        for (index, data) in (0u32..).zip(stream.chunks(piece)) {
            assert!(hashes.piece_matches(index, data), "piece {index}");
            let file_bytes = copy[index as usize].file_bytes as usize;
            let mut bad = data.to_vec();
            bad[file_bytes - 1] ^= 1;
            assert!(!hashes.piece_matches(index, &bad), "piece {index} with its file's last byte flipped");
            if file_bytes < data.len() {
                let mut bad = data.to_vec();
                bad[file_bytes] = 1;
                assert!(!hashes.piece_matches(index, &bad), "piece {index} with a byte in its padding");
            }
            assert!(!hashes.piece_matches(index, &data[..file_bytes - 1]), "piece {index} cut short");
        }
        assert!(!hashes.piece_matches(6, &stream[..piece]), "no piece 6");
    }

    #[test]
    fn a_single_file_is_padded_too_and_a_v1_torrent_has_no_v2_layout() {
        let piece = 16 * 1024;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("only");
        let data = pseudo_random(3 * piece + 1, 4);
        std::fs::write(&path, &data).expect("write");
        let torrent = v2_torrent(&path, piece as u64);
        assert!(torrent.info.is_single_file());
        let (entries, pieces) = layout(&torrent).expect("v2 layout");
        let lengths: Vec<(u64, bool)> = entries.iter().map(|file| (file.length, file.pad)).collect();
        assert_eq!(lengths, [(data.len() as u64, false), ((piece - 1) as u64, true)]);
        let mut stream = data.clone();
        stream.resize(4 * piece, 0);
        let hashes = PieceHashes::V2(pieces);
        for (index, chunk) in (0u32..).zip(stream.chunks(piece)) {
            assert!(hashes.piece_matches(index, chunk), "piece {index}");
        }
        let v1 = metainfo::create_from_path(&path, &metainfo::CreateOptions::default(), &|_| {}).expect("create v1");
        assert!(layout(&v1.torrent).is_none());
    }
}
