//! Announce tokens (BEP 5): a get_peers reply carries a token bound to the requester's IP address, and an
//! announce_peer is stored only if it brings back a token we gave that address within the last 5 to 10 minutes.
//! This keeps a node from announcing other addresses than its own (the datagram's source must have received our
//! reply), so the peer store cannot be filled with spoofed or victim addresses.
//!
//! ```text
//! token = SHA-1(key | epoch (8 bytes, big-endian) | IP address (4 or 16 bytes))[..8]
//! epoch = seconds since the secret was made / 300
//! ```
//!
//! The secret of epoch `e` is (key, e): it changes every [`ROTATE_EVERY`] (5 minutes), and a token is accepted in
//! its own epoch and the next, as BEP 5 has it ("tokens up to ten minutes old are accepted"). Deriving each epoch's
//! secret from one random key, instead of drawing and swapping secrets, leaves nothing to rotate: the caller passes
//! the time and cannot forget a rotation, and issuing or checking needs no `&mut`. Without the key the tokens of one
//! epoch say nothing about the next. Tokens are 8 bytes (libtorrent's are 4): guessing one takes 2^64 tries.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};

/// Bytes in the tokens we issue.
pub const TOKEN_LEN: usize = 8;
/// How often the secret changes.
pub const ROTATE_EVERY: Duration = Duration::from_secs(5 * 60);

/// The secret behind our tokens.
#[derive(Clone)]
pub struct TokenSecret {
    key: [u8; 20],
    start: Instant,
}

impl TokenSecret {
    /// A secret from `key`, which must be random and kept private; epochs count from `now`.
    #[must_use]
    pub fn new(key: [u8; 20], now: Instant) -> Self {
        TokenSecret { key, start: now }
    }

    /// A secret with a key drawn from `rng` (which should be a cryptographic one, such as `rand::rng()`).
    pub fn random(rng: &mut impl rand::Rng, now: Instant) -> Self {
        TokenSecret::new(rng.random(), now)
    }

    /// The token for a get_peers reply to `ip`.
    #[must_use]
    pub fn issue(&self, ip: IpAddr, now: Instant) -> [u8; TOKEN_LEN] {
        self.token(ip, self.epoch(now))
    }

    /// Whether `token` is one we issued to `ip` in this epoch or the previous one.
    #[must_use]
    pub fn verify(&self, ip: IpAddr, token: &[u8], now: Instant) -> bool {
        let epoch = self.epoch(now);
        let current = constant_time_eq(&self.token(ip, epoch), token);
        let previous = epoch.checked_sub(1).is_some_and(|previous| constant_time_eq(&self.token(ip, previous), token));
        current | previous
    }

    fn epoch(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.start).as_secs() / ROTATE_EVERY.as_secs()
    }

    fn token(&self, ip: IpAddr, epoch: u64) -> [u8; TOKEN_LEN] {
        let mut hasher = Sha1::new();
        hasher.update(self.key);
        hasher.update(epoch.to_be_bytes());
        // IPv4-mapped IPv6 addresses are their IPv4 address, so a dual-stack socket cannot split one host in two.
        match ip.to_canonical() {
            IpAddr::V4(v4) => hasher.update(v4.octets()),
            IpAddr::V6(v6) => hasher.update(v6.octets()),
        }
        let digest = hasher.finalize();
        std::array::from_fn(|i| digest[i])
    }
}

impl std::fmt::Debug for TokenSecret {
    /// Leaves the key out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSecret").field("start", &self.start).finish_non_exhaustive()
    }
}

/// Compares without stopping at the first difference, so response timing does not reveal how much of a guessed
/// token was right.
fn constant_time_eq(ours: &[u8; TOKEN_LEN], theirs: &[u8]) -> bool {
    theirs.len() == TOKEN_LEN && ours.iter().zip(theirs).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
}
