//! The v1 info-hash: SHA-1 of the raw `info` bytes, shown as 40 lowercase hex digits.

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

#[cfg(test)]
mod tests {
    use super::InfoHash;

    #[test]
    fn hex_round_trip() {
        let hash = InfoHash([0xab; 20]);
        assert_eq!(hash.to_string(), "ab".repeat(20));
        assert_eq!(InfoHash::from_hex(&"AB".repeat(20)), Some(hash));
        assert_eq!(InfoHash::from_hex("abc"), None);
    }
}
