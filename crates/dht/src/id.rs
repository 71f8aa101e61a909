//! Node ids, the XOR metric (BEP 5), and BEP 42's binding of a node id to its IP address.
//!
//! BEP 42 makes it costly to place many nodes next to one info-hash (to watch or censor it): the first 21 bits of
//! an id must come from CRC32-C of the node's masked IP address and a 3-bit random number `r`, which is repeated in
//! the id's last byte. One IP address thus gets 8 possible prefixes, and a /8 block covers only a small part of the
//! id space. Addresses that are not global (loopback, private, link-local) are exempt.
//!
//! ```text
//! IPv4:  crc = crc32c(be32((ip & 0x030f3fff) | (r << 29)))
//! IPv6:  crc = crc32c(be64((first 8 bytes of ip & 0x0103070f1f3f7fff) | (r << 61)))
//! id[0] = crc >> 24,  id[1] = crc >> 16,  id[2] = (crc >> 8) & 0xf8 | random & 7,  id[3..19] random,  id[19] = r
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// A point in the 160-bit id space: a node's id, or a lookup target such as an info-hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NodeId(pub [u8; 20]);

/// The XOR distance between two ids; `Ord` compares it as a 160-bit big-endian number, so smaller is closer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Distance(pub [u8; 20]);

/// A node: its id and the UDP address it answers on. Responses carry IPv4 nodes (`nodes`) and IPv6 nodes
/// (`nodes6`) in separate lists, so the address type is a parameter; the routing table uses [`SocketAddr`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeInfo<A = SocketAddr> {
    /// The id it claims.
    pub id: NodeId,
    /// Where it listens.
    pub addr: A,
}

impl NodeId {
    /// Bytes in an id.
    pub const LEN: usize = 20;

    /// The id in `bytes`, if there are exactly 20.
    #[must_use]
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(NodeId)
    }

    /// A uniformly random id.
    pub fn random(rng: &mut impl rand::Rng) -> Self {
        NodeId(rng.random())
    }

    /// The XOR distance to `other`.
    #[must_use]
    pub fn distance(&self, other: &NodeId) -> Distance {
        Distance(std::array::from_fn(|i| self.0[i] ^ other.0[i]))
    }
}

impl Distance {
    /// Leading zero bits: how many first bits the two ids share (160 when they are equal).
    #[must_use]
    pub fn leading_zeros(&self) -> u32 {
        let mut zeros = 0;
        for &byte in &self.0 {
            zeros += byte.leading_zeros();
            if byte != 0 {
                break;
            }
        }
        zeros
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl From<[u8; 20]> for NodeId {
    fn from(bytes: [u8; 20]) -> Self {
        NodeId(bytes)
    }
}

impl<A: Into<SocketAddr>> NodeInfo<A> {
    /// The same node with a family-neutral address.
    pub fn into_any(self) -> NodeInfo {
        NodeInfo { id: self.id, addr: self.addr.into() }
    }
}

/// The BEP 42 id for a node at `ip`: `r` (its low 3 bits enter the prefix; the whole byte is the id's last byte)
/// and `random` (bytes 2 to 18 of the id, of which byte 2 keeps only its low 3 bits) are the caller's random choice.
#[must_use]
pub fn bep42_node_id(ip: IpAddr, r: u8, random: [u8; 20]) -> NodeId {
    let crc = bep42_crc(ip, r).to_be_bytes();
    let mut id = random;
    id[0] = crc[0];
    id[1] = crc[1];
    id[2] = (crc[2] & 0xf8) | (random[2] & 0x07);
    id[19] = r;
    NodeId(id)
}

/// Whether `id` is a valid BEP 42 id for a node seen at `ip`. Always true for addresses that are not global:
/// BEP 42 exempts local networks, where nodes cannot learn an external address to derive their id from.
#[must_use]
pub fn bep42_valid(id: &NodeId, ip: IpAddr) -> bool {
    if !is_global(ip) {
        return true;
    }
    let crc = bep42_crc(ip, id.0[19]).to_be_bytes();
    id.0[0] == crc[0] && id.0[1] == crc[1] && id.0[2] & 0xf8 == crc[2] & 0xf8
}

fn bep42_crc(ip: IpAddr, r: u8) -> u32 {
    let r = r & 0x07;
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let masked = (u32::from(v4) & 0x030f_3fff) | (u32::from(r) << 29);
            crc32c(&masked.to_be_bytes())
        }
        IpAddr::V6(v6) => {
            let [a, b, c, d, e, f, g, h, ..] = v6.octets();
            let high = u64::from_be_bytes([a, b, c, d, e, f, g, h]);
            let masked = (high & 0x0103_070f_1f3f_7fff) | (u64::from(r) << 61);
            crc32c(&masked.to_be_bytes())
        }
    }
}

/// CRC-32C (Castagnoli), bit by bit: it runs once per id check, over 4 or 8 bytes, so a table would not pay.
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0x82f6_3b78 } else { crc >> 1 };
        }
    }
    !crc
}

/// Whether `ip` is a global unicast address, one a node on the Internet can be reached at. Not: unspecified,
/// loopback, private (RFC 1918, ULA), shared (RFC 6598), link-local, documentation, benchmarking, multicast,
/// reserved. The routing table does not filter by it (loopback tests need local nodes); the node loop can.
#[must_use]
pub fn is_global(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => is_global_v6(v6),
    }
}

fn is_global_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0
        || a == 10
        || a == 127
        || a >= 224
        || (a == 100 && (64..128).contains(&b))
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && (c == 0 || c == 2))
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113))
}

fn is_global_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || s[0] & 0xfe00 == 0xfc00
        || s[0] & 0xffc0 == 0xfe80
        || s[0] & 0xff00 == 0xff00
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        || (s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0))
}

#[cfg(test)]
mod tests {
    use super::crc32c;

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    }
}
