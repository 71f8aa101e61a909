//! BEP 52 hash requests and their answers: which ranges of a file's merkle tree a peer may ask for, the hashes and
//! proof that answer one ([`HashTree::serve`]), and the check of an answer against the file's `pieces root`
//! ([`verify_hashes`]). Pure functions over [`crate::merkle`]'s trees; the wire messages are `peer_wire::Message`'s
//! `HashRequest`, `Hashes` and `HashReject`.
//!
//! A file of `L > 0` bytes has `blocks = ceil(L / 16 KiB)` leaves, padded to `2^H` (`H` = [`tree_height`]); layer
//! `h` (0 = leaves, `H` = the root) has `2^(H - h)` nodes, of which the first `ceil(blocks / 2^h)` cover file data
//! and the rest are padding, the root of a zero subtree ([`crate::merkle::pad_hash`]`(h)`). A request names a base
//! layer, the first node `index` and the count `length` of the hashes wanted there, and `proof_layers`. The answer
//! carries the `length` base hashes (padding included where the range runs past the file's data), then the uncle
//! hashes: with `k = log2(length)`, the siblings of the range's ancestors at heights `base + k ..= base +
//! proof_layers`, lowest first, so `proof_layers + 1 - k` of them (none if that is not positive). BEP 52 says the
//! same thing as "the first log2(length) - 1 proof layers are omitted, and still counted".
//!
//! The rules, as libtorrent 2.0 applies them (`validate_hash_request` in src/hash_picker.cpp, the hash count check
//! in `bt_peer_connection::on_hashes`) and BEP 52 states them:
//! - `length` is a power of two, at most [`MAX_HASH_COUNT`]; BEP 52 asks for at least two, but libtorrent sends 1
//!   for the last 512-piece chunk of a file of `512 n + 1` pieces and for a 16 KiB-piece block proof, so we accept
//!   it (its proof then starts with the base node's own sibling, as libtorrent's receiver expects);
//! - `index` is a multiple of `length`, and the range lies inside the (padded) layer: `index + length <= 2^(H -
//!   base)`, so `base < H` (a file of one block has no layer to ask for);
//! - `proof_layers < H - base`: the highest uncle is a child of the root, never the root itself.
//!
//! What libtorrent asks when it fetches a file's piece layer (src/hash_picker.cpp `pick_hashes`) is
//! [`piece_layer_requests`]: chunks of 512 pieces at the piece layer, each with a proof up to the root.

use crate::merkle::{BLOCK_SIZE, Hash32, pad_hash, parent, piece_height};

/// Largest `length` we serve or accept: libtorrent's cap (8192 hashes, "a piece size of 128MB" at the leaf layer).
/// BEP 52 says requests should not ask for more than 512.
pub const MAX_HASH_COUNT: u32 = 8192;

/// Pieces per request when fetching a piece layer, as libtorrent does and BEP 52 recommends.
pub const PIECE_LAYER_CHUNK: u32 = 512;

/// The four numbers of a hash request, answer or reject, without the `pieces root` that names the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HashRange {
    /// Layer of the base hashes: 0 for the 16 KiB block hashes, [`piece_height`] for the piece layer.
    pub base_layer: u32,
    /// First base-layer node.
    pub index: u32,
    /// Number of base-layer hashes.
    pub length: u32,
    /// Layers above the base that the proof covers (see the module documentation).
    pub proof_layers: u32,
}

impl HashRange {
    /// Uncle hashes an answer carries after the base hashes: `proof_layers + 1 - log2(length)`, or 0.
    ///
    /// `length` is rounded up to a power of two first, as libtorrent does; [`check_request`] refuses others.
    #[must_use]
    pub fn uncle_count(&self) -> u32 {
        let k = self.length.max(1).next_power_of_two().trailing_zeros();
        (u64::from(self.proof_layers) + 1).saturating_sub(u64::from(k)).try_into().unwrap_or(u32::MAX)
    }

    /// Hashes in the answer: `length` base hashes plus [`HashRange::uncle_count`] uncles.
    #[must_use]
    pub fn hash_count(&self) -> u64 {
        u64::from(self.length) + u64::from(self.uncle_count())
    }
}

/// Why a hash request is refused, or an answer rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// An empty file has no merkle tree.
    #[error("the file is empty: it has no merkle tree")]
    EmptyFile,
    /// `length` is not a power of two from 1 to [`MAX_HASH_COUNT`].
    #[error("hash count {length} is not a power of two from 1 to {MAX_HASH_COUNT}")]
    BadLength {
        /// The requested count.
        length: u32,
    },
    /// The base layer is the root or above it: nothing there can be asked for.
    #[error("base layer {base_layer} is not below the root of a tree of height {height}")]
    BaseLayer {
        /// The requested layer.
        base_layer: u32,
        /// Layers of the file's tree above its leaves.
        height: u32,
    },
    /// `index` is not a multiple of `length`.
    #[error("index {index} is not a multiple of the hash count {length}")]
    Misaligned {
        /// The requested first node.
        index: u32,
        /// The requested count.
        length: u32,
    },
    /// The range runs past the end of the (padded) layer.
    #[error("hashes {index}..{index}+{length} run past the {width} nodes of layer {base_layer}")]
    OutOfRange {
        /// The requested layer.
        base_layer: u32,
        /// The requested first node.
        index: u32,
        /// The requested count.
        length: u32,
        /// Nodes in that layer, padding included.
        width: u64,
    },
    /// The proof would reach the root or beyond.
    #[error("{proof_layers} proof layers reach past the root: at most {max} above layer {base_layer}")]
    ProofLayers {
        /// The requested layer.
        base_layer: u32,
        /// The requested proof layers.
        proof_layers: u32,
        /// The largest valid value: `height - base_layer - 1`.
        max: u32,
    },
    /// The base layer is below the lowest layer the server holds (e.g. block hashes when it has only the piece
    /// layer).
    #[error("layer {base_layer} is below the lowest layer held, {held}")]
    Unavailable {
        /// The requested layer.
        base_layer: u32,
        /// The lowest layer the [`HashTree`] was built from.
        held: u32,
    },
    /// The layer given to [`HashTree::new`] does not fit the file.
    #[error("a layer of {got} hashes at height {height} does not fit a file of {file_length} bytes")]
    BadLayer {
        /// Hashes given.
        got: usize,
        /// Their layer.
        height: u32,
        /// The file's length.
        file_length: u64,
    },
    /// The answer carries the wrong number of bytes for its fields.
    #[error("{got} bytes of hashes, expected {expected} hashes of 32 bytes")]
    HashCount {
        /// Bytes received.
        got: usize,
        /// Hashes the fields call for.
        expected: u64,
    },
    /// The proof stops below the root, so the root cannot check it.
    #[error("the proof stops at layer {top}, below the root at layer {height}")]
    ShortProof {
        /// The highest layer the hashes reach.
        top: u32,
        /// The root's layer.
        height: u32,
    },
    /// The hashes and their proof do not lead to the `pieces root`.
    #[error("the hashes and their proof do not lead to the pieces root")]
    RootMismatch,
    /// A request below the layer held spans more than one node of that layer, so the leaves of one piece cannot
    /// answer it.
    #[error("hashes {index}..{index}+{length} of layer {base_layer} lie under more than one node of layer {held}")]
    AcrossNodes {
        /// The requested layer.
        base_layer: u32,
        /// The requested first node.
        index: u32,
        /// The requested count.
        length: u32,
        /// The lowest layer held.
        held: u32,
    },
    /// Leaves given to [`HashTree::serve_below`] do not hash to the node of the layer held they lie under: the
    /// bytes they were hashed from are not the torrent's.
    #[error("the leaves do not hash to node {node} of layer {held}")]
    LeavesMismatch {
        /// The node of the layer held.
        node: u64,
        /// The lowest layer held.
        held: u32,
    },
}

/// Leaves of a file of `file_length` bytes: one per 16 KiB block, the last maybe shorter.
fn num_blocks(file_length: u64) -> u64 {
    file_length.div_ceil(BLOCK_SIZE)
}

/// Layers of a non-empty file's tree above its leaves: log2 of its block count rounded up to a power of two. The
/// root is at this layer; a file of one block has height 0.
#[must_use]
pub fn tree_height(file_length: u64) -> u32 {
    num_blocks(file_length).max(1).next_power_of_two().trailing_zeros()
}

/// Nodes of layer `height` that cover file data: `ceil(blocks / 2^height)`.
fn data_nodes(file_length: u64, height: u32) -> u64 {
    num_blocks(file_length).div_ceil(1u64 << height)
}

/// Checks a request against the shape of a file of `file_length` bytes (see the module documentation for the
/// rules); returns the tree's height.
///
/// # Errors
///
/// The first rule the request breaks, in the order [`ProofError::EmptyFile`], [`ProofError::BadLength`],
/// [`ProofError::BaseLayer`], [`ProofError::Misaligned`], [`ProofError::OutOfRange`], [`ProofError::ProofLayers`].
pub fn check_request(file_length: u64, range: &HashRange) -> Result<u32, ProofError> {
    let &HashRange { base_layer, index, length, proof_layers } = range;
    if file_length == 0 {
        return Err(ProofError::EmptyFile);
    }
    if !length.is_power_of_two() || length > MAX_HASH_COUNT {
        return Err(ProofError::BadLength { length });
    }
    let height = tree_height(file_length);
    if base_layer >= height {
        return Err(ProofError::BaseLayer { base_layer, height });
    }
    if index % length != 0 {
        return Err(ProofError::Misaligned { index, length });
    }
    let width = 1u64 << (height - base_layer);
    if u64::from(index) + u64::from(length) > width {
        return Err(ProofError::OutOfRange { base_layer, index, length, width });
    }
    let max = height - base_layer - 1;
    if proof_layers > max {
        return Err(ProofError::ProofLayers { base_layer, proof_layers, max });
    }
    Ok(height)
}

/// The layers of one file's merkle tree from one layer up to the root, built once to answer hash requests.
///
/// Holds each layer's data nodes (about twice the given layer in all); padding nodes are computed on demand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashTree {
    file_length: u64,
    /// The lowest layer held.
    held: u32,
    /// `layers[i]` is layer `held + i`, cut to its data nodes; the last is the root alone.
    layers: Vec<Vec<Hash32>>,
    /// `pads[h]` = [`pad_hash`]`(h)`, for every layer.
    pads: Vec<Hash32>,
}

impl HashTree {
    /// Builds the tree of a file of `file_length` bytes from its layer `height`: the leaf hashes for 0, the
    /// `piece layers` entry for [`piece_height`]`(piece_length)`. `layer` holds that layer's data nodes, exactly
    /// `ceil(blocks / 2^height)` of them.
    ///
    /// # Errors
    ///
    /// [`ProofError::EmptyFile`] for an empty file; [`ProofError::BadLayer`] if `height` is above the root or
    /// `layer` has the wrong count (a file of at most one piece has no piece layer: build it from its leaves).
    pub fn new(layer: &[Hash32], height: u32, file_length: u64) -> Result<Self, ProofError> {
        if file_length == 0 {
            return Err(ProofError::EmptyFile);
        }
        let top = tree_height(file_length);
        if height > top || layer.len() as u64 != data_nodes(file_length, height) {
            return Err(ProofError::BadLayer { got: layer.len(), height, file_length });
        }
        let pads: Vec<Hash32> = (0..=top).map(pad_hash).collect();
        let mut layers = vec![layer.to_vec()];
        for h in height..top {
            let below = layers.last().map(Vec::as_slice).unwrap_or_default();
            let pad = pads[h as usize];
            let above = below.chunks(2).map(|pair| parent(&pair[0], pair.get(1).unwrap_or(&pad))).collect();
            layers.push(above);
        }
        Ok(HashTree { file_length, held: height, layers, pads })
    }

    /// The tree of a file from its 16 KiB block hashes.
    ///
    /// # Errors
    ///
    /// As [`HashTree::new`].
    pub fn from_leaves(leaves: &[Hash32], file_length: u64) -> Result<Self, ProofError> {
        Self::new(leaves, 0, file_length)
    }

    /// The tree of a file longer than one piece from its `piece layers` entry.
    ///
    /// # Errors
    ///
    /// As [`HashTree::new`].
    pub fn from_piece_layer(piece_layer: &[Hash32], piece_length: u64, file_length: u64) -> Result<Self, ProofError> {
        Self::new(piece_layer, piece_height(piece_length), file_length)
    }

    /// The file's `pieces root`.
    #[must_use]
    pub fn root(&self) -> Hash32 {
        self.layers.last().and_then(|top| top.first()).copied().unwrap_or_default()
    }

    /// Layers above the leaves; the root's layer.
    #[must_use]
    pub fn height(&self) -> u32 {
        self.held + (self.layers.len() as u32 - 1)
    }

    /// The lowest layer held.
    #[must_use]
    pub fn lowest_layer(&self) -> u32 {
        self.held
    }

    /// Node `index` of layer `height` (at least `held`, at most the root's), padding past the file's data.
    fn node(&self, height: u32, index: u64) -> Hash32 {
        let layer = self.layers.get((height - self.held) as usize);
        let got = usize::try_from(index).ok().and_then(|i| layer?.get(i));
        got.copied().unwrap_or(self.pads[height as usize])
    }

    /// Answers a hash request: the `length` base hashes from `index` on, then the uncle hashes, lowest first;
    /// `range.hash_count()` hashes in all. Send them as a `hashes` message with the request's fields.
    ///
    /// # Errors
    ///
    /// Whatever [`check_request`] finds, or [`ProofError::Unavailable`] for a base layer below the one held.
    /// Answer the request with a `hash reject` then.
    pub fn serve(&self, range: &HashRange) -> Result<Vec<Hash32>, ProofError> {
        check_request(self.file_length, range)?;
        let &HashRange { base_layer, index, length, proof_layers } = range;
        if base_layer < self.held {
            return Err(ProofError::Unavailable { base_layer, held: self.held });
        }
        let index = u64::from(index);
        let k = length.trailing_zeros();
        let mut out = Vec::with_capacity(length as usize + proof_layers as usize + 1);
        out.extend((index..index + u64::from(length)).map(|i| self.node(base_layer, i)));
        for h in base_layer + k..=base_layer + proof_layers {
            let position = index >> (h - base_layer);
            out.push(self.node(h, position ^ 1));
        }
        Ok(out)
    }
}

impl HashTree {
    /// Answers a request below the layer held, as [`HashTree::serve`] would with the whole tree, from the leaves
    /// under the one node of the layer held that the range lies under. For a tree held from its piece layer that
    /// is one piece's 16 KiB block hashes, which the caller reads from disk and hashes: what a peer asks for to find
    /// the bad blocks of a piece that failed its check. `leaves` are that node's data leaves in order, `2^held` of
    /// them, or fewer under the file's last node; they must hash to the node, so that bytes that are not the
    /// torrent's (a disk gone bad) are never vouched for.
    ///
    /// # Errors
    ///
    /// Whatever [`check_request`] finds; [`ProofError::AcrossNodes`] for a range under more than one node;
    /// [`ProofError::BadLayer`] for the wrong number of leaves; [`ProofError::LeavesMismatch`] when they do not hash
    /// to the node. A request at or above the layer held is answered as [`HashTree::serve`] answers it.
    pub fn serve_below(&self, range: &HashRange, leaves: &[Hash32]) -> Result<Vec<Hash32>, ProofError> {
        check_request(self.file_length, range)?;
        let &HashRange { base_layer, index, length, proof_layers } = range;
        let held = self.held;
        if base_layer >= held {
            return self.serve(range);
        }
        let span = held - base_layer;
        let node = u64::from(index) >> span;
        if (u64::from(index) + u64::from(length) - 1) >> span != node {
            return Err(ProofError::AcrossNodes { base_layer, index, length, held });
        }
        let width = 1usize << held;
        let expected = num_blocks(self.file_length).saturating_sub(node << held).min(width as u64);
        if leaves.len() as u64 != expected {
            return Err(ProofError::BadLayer { got: leaves.len(), height: 0, file_length: self.file_length });
        }
        // The subtree under `node`, from the leaves (zero leaves past the file's end) up to the layer held.
        let mut below = vec![leaves.to_vec()];
        below[0].resize(width, pad_hash(0));
        for _ in 0..held {
            let layer = below.last().map(Vec::as_slice).unwrap_or_default();
            let above = layer.chunks_exact(2).map(|pair| parent(&pair[0], &pair[1])).collect();
            below.push(above);
        }
        if below[held as usize][0] != self.node(held, node) {
            return Err(ProofError::LeavesMismatch { node, held });
        }
        let first = (u64::from(index) - (node << span)) as usize;
        let mut out = Vec::with_capacity(length as usize + proof_layers as usize + 1);
        out.extend_from_slice(&below[base_layer as usize][first..first + length as usize]);
        for h in base_layer + length.trailing_zeros()..=base_layer + proof_layers {
            let sibling = (u64::from(index) >> (h - base_layer)) ^ 1;
            let hash = if h < held {
                below[h as usize][(sibling - (node << (held - h))) as usize]
            } else {
                self.node(h, sibling)
            };
            out.push(hash);
        }
        Ok(out)
    }
}

/// Checks a `hashes` message of a file of `file_length` bytes against its `pieces root`: the base hashes, hashed up
/// to the top of their range and then with each uncle in turn, must give the root. Returns the verified base hashes
/// that cover file data (the padding past the file's end is cut off, so at the piece layer these are `piece layers`
/// entries), `length` of them or fewer.
///
/// `hashes` is the message's hash bytes. The fields must be the ones we asked for: compare them with the request
/// before calling this.
///
/// # Errors
///
/// Whatever [`check_request`] finds in the fields; [`ProofError::HashCount`] if `hashes` is not
/// `range.hash_count()` hashes; [`ProofError::ShortProof`] if the proof stops below the root (we asked for too few
/// proof layers to check it against the root alone); [`ProofError::RootMismatch`] if the hashes are wrong.
pub fn verify_hashes(
    pieces_root: &Hash32,
    file_length: u64,
    range: &HashRange,
    hashes: &[u8],
) -> Result<Vec<Hash32>, ProofError> {
    let height = check_request(file_length, range)?;
    let &HashRange { base_layer, index, length, .. } = range;
    let expected = range.hash_count();
    if hashes.len() as u64 != expected * 32 {
        return Err(ProofError::HashCount { got: hashes.len(), expected });
    }
    let uncles = range.uncle_count();
    let top = base_layer + length.trailing_zeros() + uncles;
    if top != height {
        return Err(ProofError::ShortProof { top, height });
    }
    let nodes: Vec<Hash32> = hashes.chunks_exact(32).filter_map(|h| h.try_into().ok()).collect();
    let (base, proof) = nodes.split_at(length as usize);
    let mut layer = base.to_vec();
    while layer.len() > 1 {
        layer = layer.chunks_exact(2).map(|pair| parent(&pair[0], &pair[1])).collect();
    }
    let mut node = layer.first().copied().unwrap_or_default();
    let mut position = u64::from(index) >> length.trailing_zeros();
    for uncle in proof {
        node = if position % 2 == 0 { parent(&node, uncle) } else { parent(uncle, &node) };
        position /= 2;
    }
    if node != *pieces_root {
        return Err(ProofError::RootMismatch);
    }
    let data = data_nodes(file_length, base_layer).saturating_sub(u64::from(index)).min(u64::from(length));
    Ok(base[..data as usize].to_vec())
}

/// The requests that fetch the piece layer of a file longer than one piece, as libtorrent 2.0 makes them when it has
/// only the root: base layer [`piece_height`], one request per [`PIECE_LAYER_CHUNK`] pieces at `index = 512 i`, each
/// `length = min(512, next power of two of the pieces left)` long (so the last may be shorter, or even 1), with a
/// proof up to the root (`proof_layers = height - base - 1`), so that [`verify_hashes`] can check each answer
/// alone. Empty for a file of at most one piece, which has no piece layer.
#[must_use]
pub fn piece_layer_requests(file_length: u64, piece_length: u64) -> Vec<HashRange> {
    if file_length <= piece_length || piece_length < BLOCK_SIZE {
        return Vec::new();
    }
    let base_layer = piece_height(piece_length);
    let height = tree_height(file_length);
    let pieces = file_length.div_ceil(piece_length);
    let chunk = u64::from(PIECE_LAYER_CHUNK);
    (0..pieces)
        .step_by(PIECE_LAYER_CHUNK as usize)
        .filter_map(|first| {
            let length = (pieces - first).next_power_of_two().min(chunk);
            Some(HashRange {
                base_layer,
                index: u32::try_from(first).ok()?,
                length: u32::try_from(length).ok()?,
                proof_layers: height - base_layer - 1,
            })
        })
        .collect()
}

#[cfg(test)]
#[path = "merkle_proof_tests.rs"]
mod tests;
