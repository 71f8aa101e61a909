//! Connection IDs (BEP 15) that prove a client can receive at its source address, with no state
//! kept per connect.
//!
//! An ID is 8 bytes: the issue time (4 bytes, seconds on the tracker's clock) and the first 4 bytes
//! of SipHash-2-4 over (issue time, client IP) under a random 128-bit key made at start-up. SipHash
//! is a keyed pseudo-random function, so without the key an ID for another address cannot be
//! guessed better than 1 in 2^32 per try; a spoofed announce is then dropped unanswered, and the
//! tracker never sends more bytes to an unproven address than it received (no amplification). IDs
//! are accepted for `lifetime` seconds: BEP 15 clients reuse one for up to 60 s.

use std::hash::Hasher;
use std::net::IpAddr;

use siphasher::sip::SipHasher24;

/// Issues and checks connection IDs.
#[derive(Clone)]
pub struct ConnectionIds {
    key: [u8; 16],
    lifetime: u32,
}

impl std::fmt::Debug for ConnectionIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionIds").field("lifetime", &self.lifetime).finish_non_exhaustive()
    }
}

impl ConnectionIds {
    /// `key` must be secret and random; `lifetime` is how many seconds an ID stays valid.
    pub fn new(key: [u8; 16], lifetime: u32) -> ConnectionIds {
        ConnectionIds { key, lifetime }
    }

    /// A new ID for a client at `ip`, issued at `now`.
    pub fn issue(&self, ip: IpAddr, now: u32) -> u64 {
        (u64::from(now) << 32) | u64::from(self.tag(ip, now))
    }

    /// Whether `id` was issued by us to `ip` no more than `lifetime` seconds before `now`.
    pub fn is_valid(&self, id: u64, ip: IpAddr, now: u32) -> bool {
        let issued = (id >> 32) as u32;
        // An issue time ahead of our clock was never ours.
        if issued > now || now - issued > self.lifetime {
            return false;
        }
        // A 4-byte comparison is a single instruction: no early-exit timing to learn the tag from.
        self.tag(ip, issued) == id as u32
    }

    fn tag(&self, ip: IpAddr, issued: u32) -> u32 {
        let mut hasher = SipHasher24::new_with_key(&self.key);
        hasher.write(&issued.to_be_bytes());
        match ip {
            IpAddr::V4(v4) => hasher.write(&v4.octets()),
            IpAddr::V6(v6) => hasher.write(&v6.octets()),
        }
        hasher.finish() as u32
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use super::ConnectionIds;

    const HOME: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
    const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

    #[test]
    fn an_id_is_valid_for_its_address_during_its_lifetime_only() {
        let ids = ConnectionIds::new([3; 16], 120);
        let id = ids.issue(HOME, 1_000);
        assert!(ids.is_valid(id, HOME, 1_000));
        assert!(ids.is_valid(id, HOME, 1_120));
        assert!(!ids.is_valid(id, HOME, 1_121), "expired");
        assert!(!ids.is_valid(id, HOME, 999), "issued in the future");
        assert!(!ids.is_valid(id, OTHER, 1_000), "another address");
        assert!(!ids.is_valid(id, IpAddr::V6(Ipv6Addr::LOCALHOST), 1_000));
        assert!(!ids.is_valid(id ^ 1, HOME, 1_000), "tampered tag");
        assert!(!ids.is_valid(id + (1 << 32), HOME, 1_001), "tampered time");
    }

    #[test]
    fn another_key_does_not_accept_our_ids() {
        let ours = ConnectionIds::new([3; 16], 120);
        let theirs = ConnectionIds::new([4; 16], 120);
        let id = ours.issue(HOME, 50);
        assert!(!theirs.is_valid(id, HOME, 50));
        // Guessing: of 100,000 made-up tags for the right time, essentially none pass.
        let accepted = (0..100_000u64).filter(|tag| ours.is_valid((50 << 32) | tag, HOME, 50)).count();
        assert!(accepted <= 1, "{accepted} guesses accepted");
    }
}
