//! The one error type of the peer wire codec.
//!
//! Every variant means "this peer sent something malformed": the connection that received it should be closed.
//! "Not enough bytes yet" is never an error; decoders report it as `Ok(None)`.

/// A malformed handshake, message or bitfield.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The length prefix exceeds the caller's bound. Reported as soon as the 4 prefix bytes arrive, so a hostile
    /// prefix such as `0xFFFF_FFFF` never makes the caller wait for (or allocate) the payload.
    #[error("message length {len} exceeds the maximum of {max} bytes")]
    TooLong {
        /// The length prefix the peer sent (payload bytes after the prefix, id included).
        len: u32,
        /// The bound the caller passed to [`decode`](crate::decode).
        max: u32,
    },

    /// A message whose length does not fit its id, e.g. a `have` whose length is not 5.
    #[error("{} message (id {id}) has invalid length {len}, expected {}", message_name(.id), expected_len(.id))]
    BadLength {
        /// The message id.
        id: u8,
        /// The length prefix the peer sent.
        len: u32,
    },

    /// The handshake's first byte (protocol string length) is not 19.
    #[error("handshake protocol string length is {got}, expected 19")]
    BadHandshakeLength {
        /// The length byte the peer sent.
        got: u8,
    },

    /// The handshake's protocol string is not `BitTorrent protocol`.
    #[error("handshake protocol string is not \"BitTorrent protocol\"")]
    BadHandshakeProtocol,

    /// A bitfield whose byte count is not ceil(pieces / 8).
    #[error("bitfield has {got} bytes, expected {expected} for {num_pieces} pieces")]
    BitfieldSize {
        /// Bytes received.
        got: usize,
        /// Bytes a bitfield of `num_pieces` pieces takes.
        expected: usize,
        /// Pieces in the torrent.
        num_pieces: u32,
    },

    /// A bitfield with one of the spare bits after the last piece set (BEP 3 requires them cleared).
    #[error("bitfield sets spare bits after the last piece ({num_pieces} pieces)")]
    BitfieldSpareBits {
        /// Pieces in the torrent.
        num_pieces: u32,
    },

    /// A piece index at or past the piece count, e.g. from a `have` message.
    #[error("piece index {index} is out of range for {num_pieces} pieces")]
    IndexOutOfRange {
        /// The index that was asked for.
        index: u32,
        /// Pieces in the torrent.
        num_pieces: u32,
    },
}

/// Name of a message id, for error text.
fn message_name(id: &u8) -> &'static str {
    match id {
        0 => "choke",
        1 => "unchoke",
        2 => "interested",
        3 => "not interested",
        4 => "have",
        5 => "bitfield",
        6 => "request",
        7 => "piece",
        8 => "cancel",
        9 => "port",
        20 => "extended",
        21 => "hash request",
        22 => "hashes",
        23 => "hash reject",
        _ => "unknown",
    }
}

/// The length rule of a message id, for error text. Must agree with `message::check_length`.
fn expected_len(id: &u8) -> &'static str {
    match id {
        0..=3 => "1",
        4 => "5",
        6 | 8 => "13",
        7 => "at least 9",
        9 => "3",
        20 => "at least 2",
        21 | 23 => "49",
        22 => "49 plus a multiple of 32",
        _ => "at least 1",
    }
}
