//! Info-hashes: v1 is the SHA-1 of the raw `info` bytes, v2 (BEP 52) their SHA-256; shown in lowercase hex.

use std::fmt;

/// A torrent's v1 info-hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InfoHash(pub [u8; 20]);

impl InfoHash {
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// Parses 40 hex digits (either case).
    pub fn from_hex(text: &str) -> Option<InfoHash> {
        let mut bytes = [0u8; 20];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(InfoHash(bytes))
    }
}

impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHash({self})")
    }
}

/// A torrent's v2 info-hash (BEP 52): the SHA-256 of the raw `info` bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InfoHashV2(pub [u8; 32]);

impl InfoHashV2 {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first 20 bytes: what names a v2 swarm where only 20 bytes fit (the peer handshake, trackers, DHT).
    pub fn truncated(&self) -> InfoHash {
        let mut short = [0u8; 20];
        short.copy_from_slice(&self.0[..20]);
        InfoHash(short)
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(text: &str) -> Option<InfoHashV2> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(InfoHashV2(bytes))
    }
}

impl fmt::Display for InfoHashV2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for InfoHashV2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHashV2({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::{InfoHash, InfoHashV2};

    #[test]
    fn v2_hex_round_trip_and_truncation() {
        let hash = InfoHashV2(std::array::from_fn(|i| i as u8));
        assert_eq!(InfoHashV2::from_hex(&hash.to_string()), Some(hash));
        assert_eq!(hash.truncated().0[..], hash.0[..20]);
        assert_eq!(InfoHashV2::from_hex(&"ab".repeat(20)), None);
    }

    #[test]
    fn hex_round_trip() {
        let hash = InfoHash([0xab; 20]);
        assert_eq!(hash.to_string(), "ab".repeat(20));
        assert_eq!(InfoHash::from_hex(&"AB".repeat(20)), Some(hash));
        assert_eq!(InfoHash::from_hex("abc"), None);
    }
}
