//! Puts the metadata (the info dictionary) together from BEP 9 pieces and checks it against the info-hash.
//!
//! Pure bookkeeping for one torrent's metadata fetch, whichever peers the pieces come from: which pieces are still
//! missing, each piece accepted once and only at its exact length (16 KiB, the last one the rest), every piece's
//! `total_size` equal to the size the fetch started with, and the whole compared with the info-hash once the last
//! piece is in. Memory is claimed piece by piece as pieces arrive, never for the whole size a peer claimed, so
//! a made-up size costs only what was actually sent; [`MetadataAssembler::held`] says how much that is. The
//! whole is checked its SHA-1 with a v1 info-hash, its SHA-256 with a v2 one (BEP 52), both for a hybrid's link. Only
//! metadata that matched is ever handed out, so a peer cannot slip us a different torrent under a known info-hash.

use sha1::{Digest, Sha1};
use sha2::Sha256;

use super::{ExtensionError, METADATA_PIECE_LEN};

/// What [`MetadataAssembler::add`] did with a piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetadataProgress {
    /// Stored; other pieces are still missing.
    Stored,
    /// We already had this piece (another peer answered the same request); nothing changed.
    Duplicate,
    /// That was the last piece and the metadata matches the info-hash: [`MetadataAssembler::metadata`] has it.
    Complete,
}

/// The metadata of one torrent, piece by piece.
#[derive(Debug, Clone)]
pub struct MetadataAssembler {
    /// The SHA-1 the whole must have, if any.
    v1: Option<[u8; 20]>,
    /// The SHA-256 the whole must have, if any.
    v2: Option<[u8; 32]>,
    size: u32,
    count: u32,
    /// The pieces in hand; each is allocated when it arrives.
    pieces: Vec<Option<Box<[u8]>>>,
    /// The verified whole, once complete (the pieces are then dropped).
    data: Vec<u8>,
    missing: u32,
    held: usize,
}

impl MetadataAssembler {
    /// Starts a fetch of `metadata_size` bytes (a peer's `metadata_size`, or the first `total_size` seen) whose
    /// SHA-1 must be `info_hash`. Only the table of pieces (a word each) is allocated here, after the size is
    /// checked against the caller's cap.
    ///
    /// # Errors
    ///
    /// [`ExtensionError::MetadataSize`] when `metadata_size` is 0 or over `max_size`.
    pub fn new(info_hash: [u8; 20], metadata_size: u32, max_size: u32) -> Result<Self, ExtensionError> {
        Self::with_hashes(Some(info_hash), None, metadata_size, max_size)
    }

    /// As [`MetadataAssembler::new`], for metadata whose SHA-1 must be `v1` and whose SHA-256 must be `v2` (each
    /// checked when given). With neither, nothing ever matches.
    ///
    /// # Errors
    ///
    /// [`ExtensionError::MetadataSize`] when `metadata_size` is 0 or over `max_size`.
    pub fn with_hashes(
        v1: Option<[u8; 20]>,
        v2: Option<[u8; 32]>,
        metadata_size: u32,
        max_size: u32,
    ) -> Result<Self, ExtensionError> {
        if metadata_size == 0 || metadata_size > max_size {
            return Err(ExtensionError::MetadataSize { size: metadata_size.into(), max: max_size });
        }
        let pieces = metadata_size.div_ceil(METADATA_PIECE_LEN as u32);
        // u32 -> usize is lossless on the 32- and 64-bit targets we build for.
        Ok(Self {
            v1,
            v2,
            size: metadata_size,
            count: pieces,
            pieces: vec![None; pieces as usize],
            data: Vec::new(),
            missing: pieces,
            held: 0,
        })
    }

    /// Bytes of the metadata.
    #[must_use]
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Number of pieces: ceil(size / 16 KiB).
    #[must_use]
    pub fn piece_count(&self) -> u32 {
        self.count
    }

    /// Bytes held for the pieces in hand (or the whole, once complete): what this fetch costs in memory.
    #[must_use]
    pub fn held(&self) -> usize {
        self.held
    }

    /// Bytes in piece `piece` (16 KiB but for the last), or `None` past the last piece.
    #[must_use]
    pub fn piece_len(&self, piece: u32) -> Option<usize> {
        let start = (piece as usize).checked_mul(METADATA_PIECE_LEN)?;
        let left = (self.size as usize).checked_sub(start).filter(|&left| left > 0)?;
        Some(left.min(METADATA_PIECE_LEN))
    }

    /// Pieces not received yet, in order: what to request next.
    pub fn missing(&self) -> impl Iterator<Item = u32> + '_ {
        (0u32..).zip(&self.pieces).filter(|(_, have)| have.is_none()).map(|(piece, _)| piece)
    }

    /// Whether piece `piece` is in hand.
    #[must_use]
    pub fn has_piece(&self, piece: u32) -> bool {
        self.is_complete() || self.pieces.get(piece as usize).is_some_and(Option::is_some)
    }

    /// Drops every piece in hand: the fetch starts over, and its memory is given back.
    pub fn clear(&mut self) {
        if self.is_complete() {
            return;
        }
        self.pieces.iter_mut().for_each(|piece| *piece = None);
        self.missing = self.piece_count();
        self.held = 0;
    }

    /// Whether every piece is in and the whole matched the info-hash.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        // The size is at least 1, so the verified whole is never empty.
        !self.data.is_empty()
    }

    /// Takes piece `piece` of a ut_metadata `data` message that said `total_size`.
    ///
    /// When this completes the set, the SHA-1 of the whole is compared with the info-hash: on a match the result
    /// is [`MetadataProgress::Complete`]; on a mismatch every piece is dropped (the bad one cannot be told apart),
    /// the fetch starts over and the error says so. After completion further pieces are
    /// [`MetadataProgress::Duplicate`].
    ///
    /// # Errors
    ///
    /// [`ExtensionError::TotalSizeMismatch`], [`ExtensionError::MetadataPieceOutOfRange`],
    /// [`ExtensionError::MetadataPieceLength`] (nothing is stored then), or [`ExtensionError::MetadataHashMismatch`].
    pub fn add(&mut self, piece: u32, total_size: u32, block: &[u8]) -> Result<MetadataProgress, ExtensionError> {
        if total_size != self.size() {
            return Err(ExtensionError::TotalSizeMismatch { got: total_size, expected: self.size() });
        }
        let count = self.piece_count();
        let Some(expected) = self.piece_len(piece) else {
            return Err(ExtensionError::MetadataPieceOutOfRange { piece, count });
        };
        if block.len() != expected {
            return Err(ExtensionError::MetadataPieceLength { piece, got: block.len(), expected });
        }
        // Complete: the pieces were joined into `data` and their table emptied.
        let Some(slot) = self.pieces.get_mut(piece as usize).filter(|slot| slot.is_none()) else {
            return Ok(MetadataProgress::Duplicate);
        };
        *slot = Some(block.into());
        self.held += expected;
        self.missing -= 1;
        if self.missing > 0 {
            return Ok(MetadataProgress::Stored);
        }
        if self.matches() {
            let mut data = Vec::with_capacity(self.size as usize);
            for piece in self.pieces.drain(..).flatten() {
                data.extend_from_slice(&piece);
            }
            self.held = data.len();
            self.data = data;
            Ok(MetadataProgress::Complete)
        } else {
            self.clear();
            Err(ExtensionError::MetadataHashMismatch)
        }
    }

    /// Whether the pieces, in order, have every hash given.
    fn matches(&self) -> bool {
        let (mut sha1, mut sha256) = (Sha1::new(), Sha256::new());
        for piece in self.pieces.iter().flatten() {
            if self.v1.is_some() {
                sha1.update(piece);
            }
            if self.v2.is_some() {
                sha256.update(piece);
            }
        }
        (self.v1.is_some() || self.v2.is_some())
            && self.v1.is_none_or(|hash| sha1.finalize()[..] == hash)
            && self.v2.is_none_or(|hash| sha256.finalize()[..] == hash)
    }

    /// The verified metadata (the bencoded info dictionary), once complete.
    #[must_use]
    pub fn metadata(&self) -> Option<&[u8]> {
        self.is_complete().then_some(&self.data[..])
    }

    /// The verified metadata by value, once complete.
    #[must_use]
    pub fn into_metadata(self) -> Option<Vec<u8>> {
        self.is_complete().then_some(self.data)
    }
}
