//! BEP 3 messages after the handshake: framing, decoding from a receive buffer, encoding into a send buffer.
//!
//! Payloads by id (after the 4-byte length and the id byte; integers big-endian):
//!
//! ```text
//! 0-3 choke, unchoke, interested, not interested   nothing                       length 1
//! 4   have      index 4                                                           length 5
//! 5   bitfield  one bit per piece, high bit of byte 0 = piece 0                   length 1 + ceil(pieces/8)
//! 6   request   index 4, begin 4, length 4                                        length 13
//! 7   piece     index 4, begin 4, block (length - 9 bytes)                        length >= 9
//! 8   cancel    index 4, begin 4, length 4                                        length 13
//! 9   port      DHT port 2 (BEP 5)                                                length 3
//! 20  extended  extended id 1, payload (BEP 10; see [`crate::extension`])          length >= 2
//! 21  hash req  pieces root 32, base layer 4, index 4, length 4, proof layers 4  length 49
//! 22  hashes    the same 48 bytes, then n hashes of 32 bytes each                 length 49 + 32 n
//! 23  hash rej  the same 48 bytes as the hash request it refuses                  length 49
//! ```
//!
//! Ids 21-23 are BEP 52's merkle hash messages; their rules (which ranges are valid, how many hashes a `hashes`
//! message carries, how they prove a file's `pieces root`) live in `metainfo::merkle_proof`. This layer checks only
//! the framing: exact length for a request or reject, whole 32-byte hashes after the header of a `hashes`.

use crate::WireError;

/// Bytes before the block in a `piece` message: length prefix, id, index, begin.
pub const PIECE_HEADER_LEN: usize = 13;

const CHOKE: u8 = 0;
const UNCHOKE: u8 = 1;
const INTERESTED: u8 = 2;
const NOT_INTERESTED: u8 = 3;
const HAVE: u8 = 4;
const BITFIELD: u8 = 5;
const REQUEST: u8 = 6;
const PIECE: u8 = 7;
const CANCEL: u8 = 8;
const PORT: u8 = 9;
/// BEP 10: every extension message travels under this one id, told apart by the extended id byte after it.
pub(crate) const EXTENDED: u8 = 20;
/// BEP 52: asks for a range of one layer of a file's merkle tree, with the proof of it.
const HASH_REQUEST: u8 = 21;
/// BEP 52: answers a hash request with the hashes it asked for and their proof.
const HASHES: u8 = 22;
/// BEP 52: refuses a hash request; same payload as the request.
const HASH_REJECT: u8 = 23;

/// Bytes of a SHA-256 hash: a `pieces root`, and each hash a `hashes` message carries.
pub const HASH_LEN: usize = 32;

/// Length prefix of a `hash request` or `hash reject` (id, pieces root, four u32 fields), and the smallest of a
/// `hashes` message, which adds its hashes after these bytes.
pub const HASH_REQUEST_LEN: u32 = 1 + 32 + 4 * 4;

/// One peer wire message. Variable-size payloads borrow from the buffer they were decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Message<'a> {
    /// Length 0, no id: sent to keep an idle connection open.
    KeepAlive,
    /// The sender will not answer our requests.
    Choke,
    /// The sender will answer our requests.
    Unchoke,
    /// The sender wants pieces we have.
    Interested,
    /// The sender wants nothing we have.
    NotInterested,
    /// The sender now has piece `index`. The index is unchecked here: see [`crate::Bitfield::set`].
    Have {
        /// Piece index.
        index: u32,
    },
    /// The sender's pieces, raw; validate with [`crate::Bitfield::from_bytes`].
    Bitfield {
        /// One bit per piece, high bit of the first byte = piece 0.
        bits: &'a [u8],
    },
    /// Asks for `length` bytes at offset `begin` of piece `index`.
    Request {
        /// Piece index.
        index: u32,
        /// Byte offset inside the piece.
        begin: u32,
        /// Bytes asked for; more than [`crate::BLOCK_LEN`] is a reason to close the connection.
        length: u32,
    },
    /// A block of piece data.
    Piece {
        /// Piece index.
        index: u32,
        /// Byte offset inside the piece.
        begin: u32,
        /// The data, borrowed from the receive buffer.
        block: &'a [u8],
    },
    /// Withdraws an earlier `request` with the same fields.
    Cancel {
        /// Piece index.
        index: u32,
        /// Byte offset inside the piece.
        begin: u32,
        /// Bytes that were asked for.
        length: u32,
    },
    /// The sender's DHT port (BEP 5). Parsed so it is not an error; we run no DHT.
    Port {
        /// UDP port.
        port: u16,
    },
    /// A BEP 10 extension message: the extended id byte, then a payload whose meaning that id has.
    ///
    /// Extended id 0 is the extended handshake ([`crate::ExtendedHandshake`]); any other id is one the receiver
    /// itself assigned to an extension in the `m` dictionary of its own extended handshake (so `ut_metadata`
    /// arrives under whatever id we announced for it, not under the sender's). Only sent to peers that set
    /// [`crate::ReservedBit::EXTENSION_PROTOCOL`] in their handshake.
    Extended {
        /// Extended message id: 0 for the handshake, else the id the receiver announced.
        id: u8,
        /// Everything after the extended id, usually bencode (see [`crate::MetadataMessage`],
        /// [`crate::PexMessage`]).
        payload: &'a [u8],
    },
    /// BEP 52 `hash request` (id 21): asks for `length` hashes of layer `base_layer` (0 = the 16 KiB block hashes)
    /// of the merkle tree whose root is `pieces_root`, starting at node `index` of that layer, plus the uncle
    /// hashes that prove them up to `proof_layers` layers above the base. Must be answered with
    /// [`Message::Hashes`] or [`Message::HashReject`] carrying the same five fields.
    HashRequest {
        /// The `pieces root` of the file whose tree is meant.
        pieces_root: [u8; 32],
        /// Layer of the requested hashes, counted from the leaves (0); the piece layer is
        /// log2(piece length / 16 KiB).
        base_layer: u32,
        /// First requested node of the base layer; BEP 52: a multiple of `length`.
        index: u32,
        /// Number of base-layer hashes; BEP 52: a power of two.
        length: u32,
        /// Layers above the base layer the proof covers, counting the log2(`length`) - 1 that the base hashes
        /// themselves already prove.
        proof_layers: u32,
    },
    /// BEP 52 `hashes` (id 22): the answer to a [`Message::HashRequest`] with the same fields.
    Hashes {
        /// The `pieces root` of the file.
        pieces_root: [u8; 32],
        /// Layer of the base hashes.
        base_layer: u32,
        /// First base-layer node carried.
        index: u32,
        /// Number of base-layer hashes carried.
        length: u32,
        /// Proof layers asked for.
        proof_layers: u32,
        /// The hashes, 32 bytes each (checked by [`decode`]; the count is not): first the `length` base-layer
        /// hashes from `index` on, then the uncle hashes of the proof, lowest layer first. Borrowed from the
        /// receive buffer; check them with `metainfo::merkle_proof::verify_hashes`.
        hashes: &'a [u8],
    },
    /// BEP 52 `hash reject` (id 23): the sender will not answer the [`Message::HashRequest`] with these fields.
    HashReject {
        /// The `pieces root` of the file.
        pieces_root: [u8; 32],
        /// Layer of the refused hashes.
        base_layer: u32,
        /// First refused base-layer node.
        index: u32,
        /// Number of refused base-layer hashes.
        length: u32,
        /// Proof layers asked for.
        proof_layers: u32,
    },
    /// A message id we do not speak (e.g. BEP 6 ids), kept so the connection can ignore it.
    ///
    /// Holds ids 10 and up, except 20 ([`Message::Extended`]) and 21-23 (BEP 52 hash messages), when produced by
    /// [`decode`]. Encoding one with a known id (0-9, 20-23) writes bytes that decode as that known message, or
    /// fail to.
    Unknown {
        /// Message id.
        id: u8,
        /// Everything after the id.
        payload: &'a [u8],
    },
}

impl Message<'_> {
    /// The id byte, or `None` for keep-alive, which has none.
    #[must_use]
    pub fn id(&self) -> Option<u8> {
        Some(match self {
            Message::KeepAlive => return None,
            Message::Choke => CHOKE,
            Message::Unchoke => UNCHOKE,
            Message::Interested => INTERESTED,
            Message::NotInterested => NOT_INTERESTED,
            Message::Have { .. } => HAVE,
            Message::Bitfield { .. } => BITFIELD,
            Message::Request { .. } => REQUEST,
            Message::Piece { .. } => PIECE,
            Message::Cancel { .. } => CANCEL,
            Message::Port { .. } => PORT,
            Message::Extended { .. } => EXTENDED,
            Message::HashRequest { .. } => HASH_REQUEST,
            Message::Hashes { .. } => HASHES,
            Message::HashReject { .. } => HASH_REJECT,
            Message::Unknown { id, .. } => *id,
        })
    }

    /// Bytes after the id.
    fn payload_len(&self) -> usize {
        match self {
            Message::KeepAlive | Message::Choke | Message::Unchoke | Message::Interested | Message::NotInterested => 0,
            Message::Have { .. } => 4,
            Message::Bitfield { bits } => bits.len(),
            Message::Request { .. } | Message::Cancel { .. } => 12,
            Message::Piece { block, .. } => 8 + block.len(),
            Message::Port { .. } => 2,
            Message::Extended { payload, .. } => 1 + payload.len(),
            Message::HashRequest { .. } | Message::HashReject { .. } => HASH_HEADER_LEN,
            Message::Hashes { hashes, .. } => HASH_HEADER_LEN + hashes.len(),
            Message::Unknown { payload, .. } => payload.len(),
        }
    }

    /// Bytes [`Message::encode`] writes, length prefix included.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        match self {
            Message::KeepAlive => 4,
            _ => 5 + self.payload_len(),
        }
    }

    /// Appends the wire bytes of this message to `out`.
    ///
    /// To send a `piece` without copying its block, use [`encode_piece_header`] and write the block after it.
    ///
    /// # Panics
    ///
    /// If the payload is longer than a length prefix can state (about 4 GiB); no decoded message is.
    ///
    /// A [`Message::Hashes`] whose `hashes` are not whole 32-byte hashes encodes to bytes that fail to decode.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        let Some(id) = self.id() else {
            out.extend_from_slice(&0u32.to_be_bytes());
            return;
        };
        let len = u32::try_from(1 + self.payload_len()).expect("message payload exceeds u32::MAX bytes");
        out.extend_from_slice(&len.to_be_bytes());
        out.push(id);
        match self {
            Message::KeepAlive | Message::Choke | Message::Unchoke | Message::Interested | Message::NotInterested => {}
            Message::Have { index } => out.extend_from_slice(&index.to_be_bytes()),
            Message::Bitfield { bits } => out.extend_from_slice(bits),
            Message::Request { index, begin, length } | Message::Cancel { index, begin, length } => {
                out.extend_from_slice(&index.to_be_bytes());
                out.extend_from_slice(&begin.to_be_bytes());
                out.extend_from_slice(&length.to_be_bytes());
            }
            Message::Piece { index, begin, block } => {
                out.extend_from_slice(&index.to_be_bytes());
                out.extend_from_slice(&begin.to_be_bytes());
                out.extend_from_slice(block);
            }
            Message::Port { port } => out.extend_from_slice(&port.to_be_bytes()),
            Message::Extended { id, payload } => {
                out.push(*id);
                out.extend_from_slice(payload);
            }
            Message::HashRequest { pieces_root, base_layer, index, length, proof_layers }
            | Message::HashReject { pieces_root, base_layer, index, length, proof_layers } => {
                encode_hash_header(pieces_root, [*base_layer, *index, *length, *proof_layers], out);
            }
            Message::Hashes { pieces_root, base_layer, index, length, proof_layers, hashes } => {
                encode_hash_header(pieces_root, [*base_layer, *index, *length, *proof_layers], out);
                out.extend_from_slice(hashes);
            }
            Message::Unknown { payload, .. } => out.extend_from_slice(payload),
        }
    }
}

/// Payload bytes shared by the three BEP 52 messages: pieces root, base layer, index, length, proof layers.
const HASH_HEADER_LEN: usize = HASH_LEN + 4 * 4;

fn encode_hash_header(pieces_root: &[u8; 32], fields: [u32; 4], out: &mut Vec<u8>) {
    out.extend_from_slice(pieces_root);
    for field in fields {
        out.extend_from_slice(&field.to_be_bytes());
    }
}

/// Appends the 13-byte header of a `piece` message carrying `block_len` bytes; the caller writes the block
/// itself right after, straight from its storage buffer.
///
/// # Panics
///
/// If `block_len` is over `u32::MAX - 9`, which no length prefix can state.
pub fn encode_piece_header(index: u32, begin: u32, block_len: u32, out: &mut Vec<u8>) {
    let len = block_len.checked_add(9).expect("piece block too long for a length prefix");
    out.reserve(PIECE_HEADER_LEN);
    out.extend_from_slice(&len.to_be_bytes());
    out.push(PIECE);
    out.extend_from_slice(&index.to_be_bytes());
    out.extend_from_slice(&begin.to_be_bytes());
}

/// Decodes one message from the start of `buf`.
///
/// Returns `Ok(None)` while more bytes are needed and `Ok(Some((message, consumed)))` once a whole frame is there;
/// the caller drops `consumed` bytes from its buffer. Checks run as soon as the bytes they need arrive, before the
/// payload: the length prefix against `max_len` once its 4 bytes are there (pass [`crate::MAX_MESSAGE_LEN`] or
/// [`crate::message_limit`]), then the length against the id's rule once the id byte is there.
///
/// # Errors
///
/// [`WireError::TooLong`] for a length prefix over `max_len`, [`WireError::BadLength`] for a length that does not
/// fit the id (fixed-size messages must have exactly their size; `piece` needs at least 9, `extended` at least 2;
/// `hash request` and `hash reject` exactly 49, `hashes` 49 plus a multiple of 32).
pub fn decode(buf: &[u8], max_len: u32) -> Result<Option<(Message<'_>, usize)>, WireError> {
    let Some((prefix, rest)) = buf.split_first_chunk::<4>() else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(*prefix);
    if len > max_len {
        return Err(WireError::TooLong { len, max: max_len });
    }
    if len == 0 {
        return Ok(Some((Message::KeepAlive, 4)));
    }
    let Some(&id) = rest.first() else {
        return Ok(None);
    };
    check_length(id, len)?;
    // `len` fits in usize on every target we build for; if it did not, the frame could never be complete anyway.
    let Ok(body_len) = usize::try_from(len) else {
        return Ok(None);
    };
    let Some(body) = rest.get(..body_len) else {
        return Ok(None);
    };
    let message = parse_body(body).ok_or(WireError::BadLength { id, len })?;
    Ok(Some((message, 4 + body_len)))
}

/// Rejects a length prefix that cannot belong to message `id`, before its payload arrives.
fn check_length(id: u8, len: u32) -> Result<(), WireError> {
    let ok = match id {
        CHOKE..=NOT_INTERESTED => len == 1,
        HAVE => len == 5,
        REQUEST | CANCEL => len == 13,
        PIECE => len >= 9,
        PORT => len == 3,
        // The id byte and the extended id; libtorrent drops a peer that sends less.
        EXTENDED => len >= 2,
        // libtorrent drops a peer whose hash request or reject is not exactly this long.
        HASH_REQUEST | HASH_REJECT => len == HASH_REQUEST_LEN,
        HASHES => len >= HASH_REQUEST_LEN && (len - HASH_REQUEST_LEN).is_multiple_of(32),
        // Bitfield sizes depend on the torrent (checked by `Bitfield::from_bytes`); unknown ids are opaque.
        _ => true,
    };
    if ok { Ok(()) } else { Err(WireError::BadLength { id, len }) }
}

/// Parses a frame's id and payload whose length `check_length` accepted. Returns `None` only if the two disagree,
/// which `decode` turns into an error rather than a panic.
fn parse_body(body: &[u8]) -> Option<Message<'_>> {
    let (&id, payload) = body.split_first()?;
    let mut r = Reader(payload);
    let message = match id {
        CHOKE => Message::Choke,
        UNCHOKE => Message::Unchoke,
        INTERESTED => Message::Interested,
        NOT_INTERESTED => Message::NotInterested,
        HAVE => Message::Have { index: r.u32()? },
        BITFIELD => Message::Bitfield { bits: r.rest() },
        REQUEST => Message::Request { index: r.u32()?, begin: r.u32()?, length: r.u32()? },
        PIECE => Message::Piece { index: r.u32()?, begin: r.u32()?, block: r.rest() },
        CANCEL => Message::Cancel { index: r.u32()?, begin: r.u32()?, length: r.u32()? },
        PORT => Message::Port { port: u16::from_be_bytes(*r.take::<2>()?) },
        EXTENDED => Message::Extended { id: u8::from_be_bytes(*r.take::<1>()?), payload: r.rest() },
        HASH_REQUEST => Message::HashRequest {
            pieces_root: *r.take::<32>()?,
            base_layer: r.u32()?,
            index: r.u32()?,
            length: r.u32()?,
            proof_layers: r.u32()?,
        },
        HASH_REJECT => Message::HashReject {
            pieces_root: *r.take::<32>()?,
            base_layer: r.u32()?,
            index: r.u32()?,
            length: r.u32()?,
            proof_layers: r.u32()?,
        },
        HASHES => Message::Hashes {
            pieces_root: *r.take::<32>()?,
            base_layer: r.u32()?,
            index: r.u32()?,
            length: r.u32()?,
            proof_layers: r.u32()?,
            hashes: r.hashes()?,
        },
        _ => Message::Unknown { id, payload: r.rest() },
    };
    // Fixed-size payloads must be used up exactly.
    r.0.is_empty().then_some(message)
}

/// Reads big-endian fields off the front of a payload without indexing.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Option<&'a [u8; N]> {
        let (head, tail) = self.0.split_first_chunk::<N>()?;
        self.0 = tail;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take::<4>().map(|b| u32::from_be_bytes(*b))
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }

    /// The rest, if it is whole 32-byte hashes.
    fn hashes(&mut self) -> Option<&'a [u8]> {
        self.0.len().is_multiple_of(HASH_LEN).then(|| self.rest())
    }
}
