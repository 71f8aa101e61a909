//! Piece bitmaps: which pieces a peer (or we) have, in the BEP 3 `bitfield` layout.
//!
//! ```text
//! byte 0: pieces 0..8, piece 0 in the high bit (0x80)     byte 1: pieces 8..16     ...
//! last byte: spare low bits after the last piece, always zero
//! ```
//!
//! Invariant: the byte vector is exactly ceil(pieces / 8) long and its spare bits are zero. Whole-byte operations
//! (comparison, `interesting`, counting) rely on it, and [`Bitfield::as_bytes`] can go on the wire unchanged.

use crate::{Message, WireError};

/// A set of piece indices below a fixed piece count.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bitfield {
    bytes: Vec<u8>,
    num_pieces: u32,
    /// Set bits, kept up to date so `count` and `is_complete` cost nothing per received `have`.
    ones: u32,
}

/// Bytes a bitfield of `num_pieces` pieces takes.
fn byte_len(num_pieces: u32) -> usize {
    // u32 -> usize is lossless on the 32- and 64-bit targets we build for.
    num_pieces.div_ceil(8) as usize
}

/// Mask of the spare bits in the last byte (zero when the pieces fill it).
fn spare_mask(num_pieces: u32) -> u8 {
    match num_pieces % 8 {
        0 => 0,
        used => 0xFF >> used,
    }
}

/// The byte holding piece `index` and the bit inside it.
fn locate(index: u32) -> (usize, u8) {
    ((index / 8) as usize, 0x80 >> (index % 8))
}

impl Bitfield {
    /// An empty set (no piece held) for `num_pieces` pieces.
    #[must_use]
    pub fn new(num_pieces: u32) -> Self {
        Self { bytes: vec![0; byte_len(num_pieces)], num_pieces, ones: 0 }
    }

    /// A full set (every piece held), as a seeder announces.
    #[must_use]
    pub fn full(num_pieces: u32) -> Self {
        let mut bytes = vec![0xFF; byte_len(num_pieces)];
        if let Some(last) = bytes.last_mut() {
            *last &= !spare_mask(num_pieces);
        }
        Self { bytes, num_pieces, ones: num_pieces }
    }

    /// Validates a received `bitfield` payload for a torrent of `num_pieces` pieces.
    ///
    /// # Errors
    ///
    /// [`WireError::BitfieldSize`] unless `bytes` is exactly `ceil(num_pieces / 8)` long;
    /// [`WireError::BitfieldSpareBits`] if any bit after the last piece is set.
    pub fn from_bytes(bytes: &[u8], num_pieces: u32) -> Result<Self, WireError> {
        let expected = byte_len(num_pieces);
        if bytes.len() != expected {
            return Err(WireError::BitfieldSize { got: bytes.len(), expected, num_pieces });
        }
        if bytes.last().is_some_and(|last| last & spare_mask(num_pieces) != 0) {
            return Err(WireError::BitfieldSpareBits { num_pieces });
        }
        // Cannot exceed num_pieces (a u32) once the spare bits are known to be clear.
        let ones = bytes.iter().map(|b| b.count_ones()).sum();
        Ok(Self { bytes: bytes.to_vec(), num_pieces, ones })
    }

    /// Pieces in the torrent (not pieces held: see [`Bitfield::count`]).
    #[must_use]
    pub fn len(&self) -> u32 {
        self.num_pieces
    }

    /// Whether the torrent has zero pieces (not whether none is held: see [`Bitfield::count`]).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.num_pieces == 0
    }

    /// Pieces held.
    #[must_use]
    pub fn count(&self) -> u32 {
        self.ones
    }

    /// Whether every piece is held.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.ones == self.num_pieces
    }

    /// Whether piece `index` is held; `false` for an index past the end.
    #[must_use]
    pub fn has(&self, index: u32) -> bool {
        if index >= self.num_pieces {
            return false;
        }
        let (byte, bit) = locate(index);
        self.bytes.get(byte).is_some_and(|b| b & bit != 0)
    }

    /// Marks piece `index` held. Returns whether it was newly set, so a repeated `have` does not count twice.
    ///
    /// # Errors
    ///
    /// [`WireError::IndexOutOfRange`] for an index past the end (a hostile or confused `have`).
    pub fn set(&mut self, index: u32) -> Result<bool, WireError> {
        let (byte, bit) = self.slot(index)?;
        let changed = *byte & bit == 0;
        *byte |= bit;
        if changed {
            self.ones += 1;
        }
        Ok(changed)
    }

    /// Marks piece `index` not held. Returns whether it was set before.
    ///
    /// # Errors
    ///
    /// [`WireError::IndexOutOfRange`] for an index past the end.
    pub fn clear(&mut self, index: u32) -> Result<bool, WireError> {
        let (byte, bit) = self.slot(index)?;
        let changed = *byte & bit != 0;
        *byte &= !bit;
        if changed {
            self.ones -= 1;
        }
        Ok(changed)
    }

    /// The byte holding `index` and its mask, or the out-of-range error.
    fn slot(&mut self, index: u32) -> Result<(&mut u8, u8), WireError> {
        let out_of_range = WireError::IndexOutOfRange { index, num_pieces: self.num_pieces };
        if index >= self.num_pieces {
            return Err(out_of_range);
        }
        let (byte, bit) = locate(index);
        self.bytes.get_mut(byte).map(|b| (b, bit)).ok_or(out_of_range)
    }

    /// The wire bytes (spare bits zero), ready for a `bitfield` message.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The `bitfield` message announcing this set.
    #[must_use]
    pub fn to_message(&self) -> Message<'_> {
        Message::Bitfield { bits: &self.bytes }
    }

    /// Indices of the pieces held, ascending. Skips empty bytes whole.
    pub fn ones(&self) -> impl Iterator<Item = u32> + '_ {
        set_bits(self.bytes.iter().copied())
    }

    /// Whether `theirs` holds a piece we lack: the test for sending `interested`. Compares 8 bytes at a time.
    ///
    /// Bitfields of different piece counts (a caller bug) are compared over their common bytes.
    #[must_use]
    pub fn interesting(&self, theirs: &Bitfield) -> bool {
        let ours = self.bytes.chunks_exact(8);
        let their = theirs.bytes.chunks_exact(8);
        let (ours_tail, their_tail) = (ours.remainder(), their.remainder());
        let words = ours.zip(their).any(|(o, t)| word(t) & !word(o) != 0);
        // When the lengths agree both remainders line up; otherwise only whole words are compared.
        words || ours_tail.iter().zip(their_tail).any(|(o, t)| t & !o != 0)
    }

    /// Indices of the pieces `theirs` holds and we lack, ascending: the candidates to request from that peer.
    pub fn wanted_from<'b>(&'b self, theirs: &'b Bitfield) -> impl Iterator<Item = u32> + 'b {
        set_bits(self.bytes.iter().zip(&theirs.bytes).map(|(o, t)| t & !o))
    }
}

/// Reads an 8-byte chunk as one word; byte order does not matter for "any bit set". Chunks come from
/// `chunks_exact(8)`, so the zero fallback is never taken.
fn word(chunk: &[u8]) -> u64 {
    chunk.first_chunk::<8>().map_or(0, |w| u64::from_ne_bytes(*w))
}

/// Indices of the set bits in a sequence of bitfield bytes, high bit first.
fn set_bits(bytes: impl Iterator<Item = u8>) -> impl Iterator<Item = u32> {
    (0u32..)
        .zip(bytes)
        .filter(|&(_, b)| b != 0)
        .flat_map(|(i, b)| (0..8u32).filter(move |bit| b & (0x80 >> bit) != 0).map(move |bit| i * 8 + bit))
}
