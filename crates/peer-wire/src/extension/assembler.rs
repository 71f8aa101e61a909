//! Puts the metadata (the info dictionary) together from BEP 9 pieces and checks it against the info-hash.
//!
//! Pure bookkeeping for one torrent's metadata fetch, whichever peers the pieces come from: which pieces are still
//! missing, each piece accepted once and only at its exact length (16 KiB, the last one the rest), every piece's
//! `total_size` equal to the size the fetch started with, and the whole compared with the info-hash once the last
//! piece is in. Nothing of the size a peer claimed is allocated until its first piece arrives, and then as one
//! zeroed buffer, whose pages the system commits only as pieces are written into them: a made-up size costs
//! what was actually sent, which [`MetadataAssembler::held`] counts, and [`MetadataAssembler::clear`] gives it
//! all back. (One buffer rather than a box per piece: small boxes freed on one thread and claimed on another
//! stay resident in the allocator's per-thread pools, which doubled the peak under attack.) The whole is
//! checked its SHA-1 with a v1 info-hash, its SHA-256 with a v2 one (BEP 52), both for a hybrid's link. Only
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
    /// Empty until the first piece arrives, then `size` bytes.
    data: Vec<u8>,
    received: Vec<bool>,
    missing: u32,
    held: usize,
    complete: bool,
}

impl MetadataAssembler {
    /// Starts a fetch of `metadata_size` bytes (a peer's `metadata_size`, or the first `total_size` seen) whose
    /// SHA-1 must be `info_hash`. Only a flag per piece is allocated here, after the size is checked against
    /// the caller's cap.
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
            data: Vec::new(),
            received: vec![false; pieces as usize],
            missing: pieces,
            held: 0,
            complete: false,
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
        (0u32..).zip(&self.received).filter(|&(_, &have)| !have).map(|(piece, _)| piece)
    }

    /// Whether piece `piece` is in hand.
    #[must_use]
    pub fn has_piece(&self, piece: u32) -> bool {
        self.received.get(piece as usize).is_some_and(|&have| have)
    }

    /// Drops every piece in hand: the fetch starts over, and its memory is given back.
    pub fn clear(&mut self) {
        if self.complete {
            return;
        }
        self.data = Vec::new();
        self.received.fill(false);
        self.missing = self.piece_count();
        self.held = 0;
    }

    /// Whether every piece is in and the whole matched the info-hash.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.complete
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
        let Some(have) = self.received.get_mut(piece as usize).filter(|have| !**have) else {
            return Ok(MetadataProgress::Duplicate);
        };
        *have = true;
        if self.data.is_empty() {
            self.data = vec![0; self.size as usize];
        }
        let start = piece as usize * METADATA_PIECE_LEN;
        if let Some(slot) = self.data.get_mut(start..start + expected) {
            slot.copy_from_slice(block);
        }
        self.held += expected;
        self.missing -= 1;
        if self.missing > 0 {
            return Ok(MetadataProgress::Stored);
        }
        if self.matches() {
            self.complete = true;
            Ok(MetadataProgress::Complete)
        } else {
            self.clear();
            Err(ExtensionError::MetadataHashMismatch)
        }
    }

    /// Whether the whole has every hash given.
    fn matches(&self) -> bool {
        (self.v1.is_some() || self.v2.is_some())
            && self.v1.is_none_or(|hash| Sha1::digest(&self.data)[..] == hash)
            && self.v2.is_none_or(|hash| Sha256::digest(&self.data)[..] == hash)
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
