//! BEP 11 `ut_pex` peer exchange: every minute or so, the peers a connected peer has connected to or dropped since
//! its last message.
//!
//! ```text
//! added     str  compact IPv4 peers: 4 address bytes + 2 port bytes each, big-endian
//! added.f   str  one flag byte per `added` peer (PexFlags)
//! added6    str  compact IPv6 peers: 16 + 2 bytes each
//! added6.f  str  one flag byte per `added6` peer
//! dropped   str  compact IPv4 peers that went away
//! dropped6  str  compact IPv6 peers that went away
//! ```
//!
//! What libtorrent 2.0.8 sends (it always writes all six keys, empty or not; here two IPv4 peers, flags 0):
//!
//! ```text
//! d5:added12:<127.0.0.1:40001><127.0.0.1:40002>7:added.f2:<0><0>6:added60:8:added6.f0:7:dropped0:8:dropped60:e
//! ```
//!
//! Decoding, and why:
//! - A list whose length is not a whole number of entries is an error: the peer is broken, and guessing where
//!   its entries start would hand out made-up addresses. (libtorrent ignores the leftover bytes.)
//! - A missing flag list means flags 0 for each peer, as BEP 11 makes `.f` optional; a flag list of the wrong
//!   length is an error (libtorrent drops the whole `added` list then).
//! - Keys of the wrong type are ignored, as libtorrent does; so are unknown keys.
//! - At most [`MAX_PEX_PEERS`] entries of each list are parsed; the rest are counted and skipped rather than
//!   refused. BEP 11 asks for at most 50 added and 50 dropped per message, but libtorrent sends up to 100 added
//!   and its `dropped` list has no bound at all (every peer gone in the last minute), so refusing would cut off
//!   honest peers in large swarms. Parsing a few hundred is still cheap, and what we keep stays small.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::BitOr;

use bencode::Value;

use super::{ExtensionError, PEX, bytes, decode_exact_dict};

/// Most entries parsed from each of `added`, `added6`, `dropped`, `dropped6` in one message: four times BEP 11's
/// limit of 50, twice libtorrent's 100.
pub const MAX_PEX_PEERS: usize = 200;

const V4_LEN: usize = 6;
const V6_LEN: usize = 18;

/// The flag byte BEP 11 gives each added peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PexFlags(pub u8);

impl PexFlags {
    /// 0x01: the peer prefers encrypted connections (MSE/PE).
    pub const ENCRYPTION: Self = Self(0x01);
    /// 0x02: the peer is a seed or upload-only: no use connecting to it when we are seeding too.
    pub const SEED: Self = Self(0x02);
    /// 0x04: the peer supports uTP (only a positive hint: 0 does not mean it lacks uTP).
    pub const UTP: Self = Self(0x04);
    /// 0x08: the peer supports ut_holepunch, so the sender can act as a rendezvous for it.
    pub const HOLEPUNCH: Self = Self(0x08);
    /// 0x10: the sender reached the peer by an outgoing connection, so the peer is reachable.
    pub const REACHABLE: Self = Self(0x10);

    /// Whether every bit of `flags` is set here.
    #[must_use]
    pub const fn contains(self, flags: Self) -> bool {
        self.0 & flags.0 == flags.0
    }
}

impl BitOr for PexFlags {
    type Output = Self;

    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// A peer announced as added, with its flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PexPeer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// What the sender knows about it.
    pub flags: PexFlags,
}

/// One ut_pex message. IPv4 and IPv6 peers share each list; they go to `added`/`added6` (and `dropped`/
/// `dropped6`) by address family when encoded, and a decoded message lists the IPv4 ones first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PexMessage {
    /// Peers the sender connected to since its last message.
    pub added: Vec<PexPeer>,
    /// Peers the sender lost since its last message.
    pub dropped: Vec<SocketAddr>,
}

impl PexMessage {
    /// Decodes the payload of an extended message sent under our ut_pex id. Returns the message and how many
    /// entries were skipped past [`MAX_PEX_PEERS`] per list (0 for any message that keeps to BEP 11).
    ///
    /// # Errors
    ///
    /// [`ExtensionError::Bencode`], [`ExtensionError::NotADictionary`] or [`ExtensionError::TrailingData`] unless
    /// the payload is exactly one bencoded dictionary; [`ExtensionError::PexLength`] for an address list that is
    /// not a whole number of entries; [`ExtensionError::PexFlagCount`] for a flag list whose length differs from
    /// its address list's entry count.
    pub fn decode(payload: &[u8]) -> Result<(Self, usize), ExtensionError> {
        let dict = decode_exact_dict(payload, PEX)?;
        let mut message = Self::default();
        let skipped = decode_added(&dict, "added", "added.f", v4, &mut message.added)?
            + decode_added(&dict, "added6", "added6.f", v6, &mut message.added)?
            + decode_dropped(&dict, "dropped", v4, &mut message.dropped)?
            + decode_dropped(&dict, "dropped6", v6, &mut message.dropped)?;
        Ok((message, skipped))
    }

    /// Appends the payload: canonical bencode with all six keys, as libtorrent writes it. Every peer given is
    /// written; keeping to BEP 11's 50 added and 50 dropped per message is the caller's part.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut lists: [Vec<u8>; 6] = Default::default();
        let [added, added_f, added6, added6_f, dropped, dropped6] = &mut lists;
        for peer in &self.added {
            let (list, flags) =
                if peer.addr.is_ipv4() { (&mut *added, &mut *added_f) } else { (&mut *added6, &mut *added6_f) };
            push_compact(list, peer.addr);
            flags.push(peer.flags.0);
        }
        for &addr in &self.dropped {
            push_compact(if addr.is_ipv4() { &mut *dropped } else { &mut *dropped6 }, addr);
        }
        let keys: [&[u8]; 6] = [b"added", b"added.f", b"added6", b"added6.f", b"dropped", b"dropped6"];
        Value::Dict(keys.into_iter().zip(&lists).map(|(key, list)| (key, Value::Bytes(list))).collect()).encode(out);
    }
}

/// Appends the peers of address list `key` with the flags of `flags_key` to `out`; returns how many it skipped.
fn decode_added<const N: usize>(
    dict: &Value<'_>,
    key: &'static str,
    flags_key: &'static str,
    to_addr: fn(&[u8; N]) -> SocketAddr,
    out: &mut Vec<PexPeer>,
) -> Result<usize, ExtensionError> {
    let entries = compact_list::<N>(dict, key)?;
    let flags = bytes(dict, flags_key);
    if let Some(flags) = flags.filter(|flags| flags.len() != entries.len()) {
        return Err(ExtensionError::PexFlagCount { key: flags_key, flags: flags.len(), peers: entries.len() });
    }
    // A missing flag list: flags 0 for each peer.
    let flags = flags.unwrap_or_default().iter().map(|&f| PexFlags(f)).chain(std::iter::repeat(PexFlags(0)));
    let peers = entries.iter().zip(flags).map(|(entry, flags)| PexPeer { addr: to_addr(entry), flags });
    out.extend(peers.take(MAX_PEX_PEERS));
    Ok(entries.len().saturating_sub(MAX_PEX_PEERS))
}

/// Appends the addresses of list `key` to `out`; returns how many it skipped.
fn decode_dropped<const N: usize>(
    dict: &Value<'_>,
    key: &'static str,
    to_addr: fn(&[u8; N]) -> SocketAddr,
    out: &mut Vec<SocketAddr>,
) -> Result<usize, ExtensionError> {
    let entries = compact_list::<N>(dict, key)?;
    out.extend(entries.iter().take(MAX_PEX_PEERS).map(to_addr));
    Ok(entries.len().saturating_sub(MAX_PEX_PEERS))
}

/// The `N`-byte entries of compact list `key`: none if the key is absent or not a string, an error if its length
/// is not a whole number of entries.
fn compact_list<'a, const N: usize>(dict: &Value<'a>, key: &'static str) -> Result<&'a [[u8; N]], ExtensionError> {
    let list = bytes(dict, key).unwrap_or_default();
    match list.as_chunks::<N>() {
        (entries, []) => Ok(entries),
        _ => Err(ExtensionError::PexLength { key, len: list.len(), entry_len: N }),
    }
}

/// A compact IPv4 peer: 4 address bytes, 2 port bytes, big-endian.
fn v4(entry: &[u8; V4_LEN]) -> SocketAddr {
    let [ip @ .., p0, p1] = *entry;
    SocketAddr::from((Ipv4Addr::from(ip), u16::from_be_bytes([p0, p1])))
}

/// A compact IPv6 peer: 16 address bytes, 2 port bytes, big-endian.
fn v6(entry: &[u8; V6_LEN]) -> SocketAddr {
    let [ip @ .., p0, p1] = *entry;
    SocketAddr::from((Ipv6Addr::from(ip), u16::from_be_bytes([p0, p1])))
}

/// Appends `addr` in compact form.
fn push_compact(out: &mut Vec<u8>, addr: SocketAddr) {
    match addr {
        SocketAddr::V4(v4) => out.extend_from_slice(&v4.ip().octets()),
        SocketAddr::V6(v6) => out.extend_from_slice(&v6.ip().octets()),
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}
