//! The error type of the extension codecs and the metadata assembler.
//!
//! Apart from [`ExtensionError::MetadataHashMismatch`], every variant means "this peer sent something malformed".
//! BEP 10 leaves the reaction to the receiver: libtorrent drops a peer for a malformed ut_metadata or ut_pex
//! message but only logs a malformed extended handshake, so the caller decides; this type only says what was wrong.

use bencode::BencodeError;

/// A malformed extension message, or metadata that cannot be assembled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtensionError {
    /// The payload is not bencode we accept (truncated, nested too deep, a key twice, ...).
    #[error("{message} payload is not valid bencode: {source}")]
    Bencode {
        /// Which message: "extended handshake", "ut_metadata" or "ut_pex".
        message: &'static str,
        /// What the bencode decoder refused.
        source: BencodeError,
    },

    /// The payload is bencode but not a dictionary, which every BEP 10, 9 and 11 message is.
    #[error("{message} payload is not a bencoded dictionary")]
    NotADictionary {
        /// Which message.
        message: &'static str,
    },

    /// Bytes after the dictionary in a message that has none (all but ut_metadata `data`).
    #[error("{message} payload has {len} bytes after its dictionary")]
    TrailingData {
        /// Which message.
        message: &'static str,
        /// Bytes left over.
        len: usize,
    },

    /// An extended handshake whose `m` dictionary has more entries than we keep.
    #[error("extended handshake `m` has {count} entries, more than the {max} accepted")]
    TooManyExtensions {
        /// Entries in `m`.
        count: usize,
        /// [`crate::MAX_EXTENSIONS`].
        max: usize,
    },

    /// A required key is absent or not an integer, e.g. a ut_metadata message without `piece`.
    #[error("{message} has no integer `{key}`")]
    MissingKey {
        /// Which message.
        message: &'static str,
        /// The key.
        key: &'static str,
    },

    /// A required integer outside the range its field allows, e.g. a negative `piece`.
    #[error("{message} `{key}` is {value}, outside {min}..={max}")]
    OutOfRange {
        /// Which message.
        message: &'static str,
        /// The key.
        key: &'static str,
        /// What the peer sent.
        value: i64,
        /// Smallest value allowed.
        min: i64,
        /// Largest value allowed.
        max: i64,
    },

    /// A metadata size (ut_metadata `total_size`, or the size given to [`crate::MetadataAssembler::new`]) that is
    /// zero or over the caller's cap. A huge claimed size would otherwise make us allocate it.
    #[error("metadata size {size} is outside 1..={max} bytes")]
    MetadataSize {
        /// The size claimed.
        size: i64,
        /// The caller's cap.
        max: u32,
    },

    /// A ut_metadata `data` block longer than a metadata piece (16 KiB).
    #[error("ut_metadata data block of {len} bytes is longer than 16384")]
    MetadataBlockTooLong {
        /// Bytes after the dictionary.
        len: usize,
    },

    /// A ut_pex address list whose length is not a whole number of entries (6 bytes for IPv4, 18 for IPv6).
    #[error("ut_pex `{key}` is {len} bytes, not a multiple of {entry_len}")]
    PexLength {
        /// The key: `added`, `added6`, `dropped` or `dropped6`.
        key: &'static str,
        /// Its length in bytes.
        len: usize,
        /// Bytes per entry.
        entry_len: usize,
    },

    /// A ut_pex flag list (`added.f`, `added6.f`) whose length differs from the number of peers it describes.
    #[error("ut_pex `{key}` has {flags} flag bytes for {peers} peers")]
    PexFlagCount {
        /// The key: `added.f` or `added6.f`.
        key: &'static str,
        /// Flag bytes sent.
        flags: usize,
        /// Peers in the matching address list.
        peers: usize,
    },

    /// A ut_metadata `data` message whose `total_size` disagrees with the size the assembler was made for.
    #[error("ut_metadata total_size {got} disagrees with the expected metadata size {expected}")]
    TotalSizeMismatch {
        /// `total_size` in the message.
        got: u32,
        /// The size the assembler expects.
        expected: u32,
    },

    /// A metadata piece index at or past the number of pieces.
    #[error("metadata piece {piece} is out of range for {count} pieces")]
    MetadataPieceOutOfRange {
        /// The index received.
        piece: u32,
        /// Pieces in the metadata.
        count: u32,
    },

    /// A metadata piece of the wrong length: all but the last are 16 KiB, the last holds the rest.
    #[error("metadata piece {piece} has {got} bytes, expected {expected}")]
    MetadataPieceLength {
        /// The index received.
        piece: u32,
        /// Bytes received.
        got: usize,
        /// Bytes that piece has.
        expected: usize,
    },

    /// Every piece arrived but the SHA-1 of the whole is not the info-hash. Some peer sent wrong data; which one
    /// cannot be told from the hash, so every piece is dropped and must be fetched again.
    #[error("assembled metadata does not match the info-hash")]
    MetadataHashMismatch,
}
