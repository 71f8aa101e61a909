//! BEP 9 `ut_metadata` messages: fetching the info dictionary from peers in 16 KiB pieces, so a download can
//! start from an info-hash alone (a magnet link).
//!
//! Each message is a bencoded dictionary; a `data` message is followed, outside the dictionary, by the piece
//! itself. BEP 9's examples (its `data` example says `total_size` 3425 in the dictionary and 34256 in the bytes; its
//! `reject` example's bytes say msg_type 1: typos, the bytes below are what clients send):
//!
//! ```text
//! request  d8:msg_typei0e5:piecei0ee
//! data     d8:msg_typei1e5:piecei0e10:total_sizei34256ee<piece bytes: 16 KiB, or the rest for the last piece>
//! reject   d8:msg_typei2e5:piecei0ee
//! ```
//!
//! libtorrent adds `total_size` to its `reject` too; extra keys are ignored. BEP 9 says a message type we do not
//! know must be ignored, so it decodes to [`MetadataMessage::Unknown`] rather than an error; like libtorrent we
//! still require its `msg_type` and `piece` to be integers.

use bencode::Value;

use super::{ExtensionError, METADATA, decode_dict, int, refuse_trailing};

/// Bytes in a metadata piece; only the last piece is shorter.
pub const METADATA_PIECE_LEN: usize = 16 * 1024;

const REQUEST: i64 = 0;
const DATA: i64 = 1;
const REJECT: i64 = 2;

/// One ut_metadata message. A `data` block borrows from the buffer it was decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetadataMessage<'a> {
    /// msg_type 0: asks for metadata piece `piece`.
    Request {
        /// Metadata piece index (16 KiB units).
        piece: u32,
    },
    /// msg_type 1: metadata piece `piece`, and the size of the whole metadata.
    Data {
        /// Metadata piece index.
        piece: u32,
        /// Bytes of the whole metadata; within the caller's cap, and at least 1.
        total_size: u32,
        /// The piece: at most [`METADATA_PIECE_LEN`] bytes. Whether it has the right length for `piece` is
        /// checked by [`crate::MetadataAssembler::add`], which knows the size it expects.
        block: &'a [u8],
    },
    /// msg_type 2: the sender will not send piece `piece` (it lacks the metadata, or is rate limiting us).
    Reject {
        /// Metadata piece index.
        piece: u32,
    },
    /// A msg_type this crate does not know; BEP 9 says to ignore it. Bytes after its dictionary are ignored too.
    Unknown {
        /// The msg_type sent (never 0, 1 or 2).
        msg_type: i64,
        /// The piece index sent.
        piece: u32,
    },
}

impl<'a> MetadataMessage<'a> {
    /// Decodes the payload of an extended message sent under our ut_metadata id (the bytes after the extended id).
    ///
    /// The dictionary is decoded first and the bytes it took mark where a `data` block starts; the block is
    /// returned as a slice of `payload`, never copied.
    ///
    /// # Errors
    ///
    /// [`ExtensionError::Bencode`] / [`ExtensionError::NotADictionary`] unless the payload starts with a bencoded
    /// dictionary; [`ExtensionError::MissingKey`] without integer `msg_type` and `piece` (and `total_size` in
    /// `data`); [`ExtensionError::OutOfRange`] for a piece outside `0..=u32::MAX`; [`ExtensionError::MetadataSize`]
    /// for a `total_size` of 0 or over `max_total_size`; [`ExtensionError::MetadataBlockTooLong`] for a block over
    /// 16 KiB; [`ExtensionError::TrailingData`] for bytes after a `request` or `reject`.
    pub fn decode(payload: &'a [u8], max_total_size: u32) -> Result<Self, ExtensionError> {
        let (dict, used) = decode_dict(payload, METADATA)?;
        let msg_type = required(&dict, "msg_type")?;
        let piece = required(&dict, "piece")?;
        let piece = u32::try_from(piece).map_err(|_| ExtensionError::OutOfRange {
            message: METADATA,
            key: "piece",
            value: piece,
            min: 0,
            max: u32::MAX.into(),
        })?;
        match msg_type {
            REQUEST => refuse_trailing(payload, used, METADATA).map(|()| Self::Request { piece }),
            REJECT => refuse_trailing(payload, used, METADATA).map(|()| Self::Reject { piece }),
            DATA => {
                let size = required(&dict, "total_size")?;
                let total_size = u32::try_from(size)
                    .ok()
                    .filter(|n| (1..=max_total_size).contains(n))
                    .ok_or(ExtensionError::MetadataSize { size, max: max_total_size })?;
                let block = payload.get(used..).unwrap_or_default();
                if block.len() > METADATA_PIECE_LEN {
                    return Err(ExtensionError::MetadataBlockTooLong { len: block.len() });
                }
                Ok(Self::Data { piece, total_size, block })
            }
            msg_type => Ok(Self::Unknown { msg_type, piece }),
        }
    }

    /// Appends the payload: the canonical dictionary, then the block of a `data` message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let (msg_type, piece, total_size, block) = match *self {
            Self::Request { piece } => (REQUEST, piece, None, &[][..]),
            Self::Data { piece, total_size, block } => (DATA, piece, Some(total_size), block),
            Self::Reject { piece } => (REJECT, piece, None, &[][..]),
            Self::Unknown { msg_type, piece } => (msg_type, piece, None, &[][..]),
        };
        let mut dict: Vec<(&[u8], Value<'_>)> =
            vec![(b"msg_type", Value::Int(msg_type)), (b"piece", Value::Int(piece.into()))];
        if let Some(total_size) = total_size {
            dict.push((b"total_size", Value::Int(total_size.into())));
        }
        Value::Dict(dict).encode(out);
        out.extend_from_slice(block);
    }
}

/// The integer under `key`, which the message must have.
fn required(dict: &Value<'_>, key: &'static str) -> Result<i64, ExtensionError> {
    int(dict, key).ok_or(ExtensionError::MissingKey { message: METADATA, key })
}
