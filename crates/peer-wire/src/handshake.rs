//! The BEP 3 handshake, the first 68 bytes each side sends on a new connection.
//!
//! ```text
//! pstrlen    1 byte    19
//! pstr       19 bytes  "BitTorrent protocol"
//! reserved   8 bytes   extension flags, all zero unless an extension is spoken
//! info_hash  20 bytes  SHA-1 of the torrent's info dictionary
//! peer_id    20 bytes  the sender's id
//! ```

use crate::WireError;

/// The protocol string every BEP 3 handshake carries after its length byte.
pub const PROTOCOL: &[u8; 19] = b"BitTorrent protocol";

/// Bytes in a handshake.
pub const HANDSHAKE_LEN: usize = 68;

/// Offsets of the fields inside the 68 bytes.
const RESERVED_AT: usize = 20;
const INFO_HASH_AT: usize = 28;
const PEER_ID_AT: usize = 48;

/// One flag in the handshake's 8 reserved bytes: a byte index (0..8) and a mask inside it.
///
/// Each flag says the sender speaks an extension; one is used only when both sides set it. The BEP 10 codecs are
/// in [`crate::extension`]; which flags to set is the connection's choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReservedBit {
    byte: usize,
    mask: u8,
}

impl ReservedBit {
    /// BEP 5 DHT: the sender accepts `port` messages.
    pub const DHT: Self = Self::new(7, 0x01);
    /// BEP 6 Fast extension (`have all`, `reject request`, ...).
    pub const FAST: Self = Self::new(7, 0x04);
    /// BEP 10 extension protocol (extended messages, id 20).
    pub const EXTENSION_PROTOCOL: Self = Self::new(5, 0x10);
    /// BEP 52 v2: on a connection of a hybrid torrent made with its v1 info-hash, the sender also speaks v2 (hash
    /// requests). libtorrent 2.0 sets it there and reads it so.
    pub const V2: Self = Self::new(7, 0x10);

    /// A flag at `byte` (0 is the first reserved byte) with `mask`. A byte past 7 names no bit: it reads as unset
    /// and setting it does nothing.
    #[must_use]
    pub const fn new(byte: usize, mask: u8) -> Self {
        Self { byte, mask }
    }
}

/// A decoded or to-be-sent handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Handshake {
    /// Extension flags; see [`ReservedBit`].
    pub reserved: [u8; 8],
    /// The torrent both sides must share; a connection for another torrent is closed.
    pub info_hash: [u8; 20],
    /// The sender's peer id.
    pub peer_id: [u8; 20],
}

impl Handshake {
    /// A handshake with no extension flags.
    #[must_use]
    pub const fn new(info_hash: [u8; 20], peer_id: [u8; 20]) -> Self {
        Self { reserved: [0; 8], info_hash, peer_id }
    }

    /// The 68 wire bytes.
    #[must_use]
    pub fn encode(&self) -> [u8; HANDSHAKE_LEN] {
        let mut out = [0u8; HANDSHAKE_LEN];
        let (pstrlen, rest) = out.split_at_mut(1);
        pstrlen[0] = 19;
        let (pstr, rest) = rest.split_at_mut(PROTOCOL.len());
        pstr.copy_from_slice(PROTOCOL);
        let (reserved, rest) = rest.split_at_mut(8);
        reserved.copy_from_slice(&self.reserved);
        let (info_hash, peer_id) = rest.split_at_mut(20);
        info_hash.copy_from_slice(&self.info_hash);
        peer_id.copy_from_slice(&self.peer_id);
        out
    }

    /// Decodes a handshake from the start of `buf`.
    ///
    /// Returns `Ok(None)` while fewer than 68 bytes are there, and `Ok(Some((handshake, 68)))` once they are.
    /// A wrong length byte or protocol string is an error as soon as the bytes seen so far prove it, so a peer
    /// speaking another protocol is dropped without waiting for 68 bytes that may never come.
    ///
    /// # Errors
    ///
    /// [`WireError::BadHandshakeLength`] or [`WireError::BadHandshakeProtocol`].
    pub fn decode(buf: &[u8]) -> Result<Option<(Self, usize)>, WireError> {
        let Some((&pstrlen, rest)) = buf.split_first() else {
            return Ok(None);
        };
        if usize::from(pstrlen) != PROTOCOL.len() {
            return Err(WireError::BadHandshakeLength { got: pstrlen });
        }
        // Compare whatever part of the protocol string has arrived.
        let seen = rest.len().min(PROTOCOL.len());
        if rest.get(..seen) != PROTOCOL.get(..seen) {
            return Err(WireError::BadHandshakeProtocol);
        }
        let Some(frame) = buf.first_chunk::<HANDSHAKE_LEN>() else {
            return Ok(None);
        };
        let handshake = Self {
            reserved: field(frame, RESERVED_AT),
            info_hash: field(frame, INFO_HASH_AT),
            peer_id: field(frame, PEER_ID_AT),
        };
        Ok(Some((handshake, HANDSHAKE_LEN)))
    }

    /// Whether the sender set `bit`.
    #[must_use]
    pub fn has(&self, bit: ReservedBit) -> bool {
        self.reserved.get(bit.byte).is_some_and(|byte| byte & bit.mask != 0)
    }

    /// Sets or clears `bit` in the reserved bytes.
    pub fn set(&mut self, bit: ReservedBit, on: bool) {
        if let Some(byte) = self.reserved.get_mut(bit.byte) {
            if on {
                *byte |= bit.mask;
            } else {
                *byte &= !bit.mask;
            }
        }
    }

    /// Whether the sender offers the BEP 6 Fast extension.
    #[must_use]
    pub fn supports_fast(&self) -> bool {
        self.has(ReservedBit::FAST)
    }

    /// Whether the sender offers the BEP 10 extension protocol.
    #[must_use]
    pub fn supports_extension_protocol(&self) -> bool {
        self.has(ReservedBit::EXTENSION_PROTOCOL)
    }
}

/// Copies the `N` bytes at `at` out of a whole handshake frame. The offsets are constants that fit inside 68
/// bytes, so the zero fallback is never taken; it only keeps this free of panicking paths.
fn field<const N: usize>(frame: &[u8; HANDSHAKE_LEN], at: usize) -> [u8; N] {
    frame.get(at..).and_then(<[u8]>::first_chunk::<N>).copied().unwrap_or([0; N])
}
