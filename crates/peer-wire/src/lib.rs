//! BitTorrent peer wire protocol codec (BEP 3): the handshake, the length-prefixed messages (with BEP 52's merkle
//! hash messages) and piece bitfields; and the BEP 10 extension protocol with BEP 9 `ut_metadata` and BEP 11
//! `ut_pex` ([`extension`]).
//!
//! Pure: no sockets, no async runtime, no clocks. A connection task owns a receive buffer, appends what the socket
//! gives it, and calls [`Handshake::decode`] once, then [`decode`] in a loop; both return `Ok(None)` while more
//! bytes are needed and `Ok(Some((value, consumed)))` once a whole frame is there. Decoded messages borrow from the
//! buffer, so a 16 KiB `piece` block is never copied by this crate.
//!
//! Wire layout of a message (all integers big-endian):
//!
//! ```text
//! length   4 bytes   bytes that follow (id + payload); 0 means keep-alive and nothing follows
//! id       1 byte    0 choke, 1 unchoke, 2 interested, 3 not interested, 4 have, 5 bitfield,
//!                    6 request, 7 piece, 8 cancel, 9 port (BEP 5), 20 extended (BEP 10),
//!                    21 hash request, 22 hashes, 23 hash reject (BEP 52 merkle hashes)
//! payload  length-1  depends on the id
//! ```
//!
//! Peers have attacked clients through this layer with huge length prefixes, bitfields with spare bits set and
//! `have` indices past the last piece; [`decode`] checks the prefix against a bound before anything else, and
//! [`Bitfield`] rejects both of the others.

mod bitfield;
mod error;
pub mod extension;
mod handshake;
mod message;

pub use bitfield::Bitfield;
pub use error::WireError;
pub use extension::{
    EXTENDED_HANDSHAKE_ID, ExtendedHandshake, ExtensionError, MAX_CLIENT_NAME_LEN, MAX_EXTENSION_NAME_LEN,
    MAX_EXTENSIONS, MAX_PEX_PEERS, METADATA_PIECE_LEN, MetadataAssembler, MetadataMessage, MetadataProgress, PexFlags,
    PexMessage, PexPeer, UT_METADATA, UT_PEX,
};
pub use handshake::{HANDSHAKE_LEN, Handshake, PROTOCOL, ReservedBit};
pub use message::{HASH_LEN, HASH_REQUEST_LEN, Message, PIECE_HEADER_LEN, decode, encode_piece_header};

/// Size of a block, the unit of `request` and `piece` messages. BEP 3: implementations close connections that
/// request more, and so should we.
pub const BLOCK_LEN: u32 = 16 * 1024;

/// Default bound on a message's length prefix: 1 MiB plus a `piece` header, libtorrent's limit. It admits a
/// bitfield for up to 8 Mi pieces. Callers that know the piece count can pass [`message_limit`] instead.
pub const MAX_MESSAGE_LEN: u32 = (1 << 20) + 13;

/// The tightest length bound for a torrent of `num_pieces` pieces when we speak no extensions: the larger of a
/// `bitfield` message and a `piece` message carrying one [`BLOCK_LEN`] block.
///
/// With the extension protocol on it is too tight: a ut_metadata `data` message carries a whole 16 KiB block after
/// its dictionary (libtorrent's is 16431 bytes long), and a ut_pex `dropped` list has no fixed bound (libtorrent
/// accepts up to 500 KiB); use [`MAX_MESSAGE_LEN`] then.
#[must_use]
pub fn message_limit(num_pieces: u32) -> u32 {
    let bitfield = 1 + num_pieces.div_ceil(8);
    let piece = 9 + BLOCK_LEN;
    bitfield.max(piece)
}
