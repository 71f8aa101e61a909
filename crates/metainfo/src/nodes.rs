//! The top-level `nodes` key (BEP 5, "Torrent File Extensions"): DHT nodes a trackerless torrent's client can
//! bootstrap from, written as a list of `[host, port]` pairs, the host a DNS name or an IP address.
//!
//! Read as libtorrent reads it: a `nodes` value that is not a list is ignored, and so is each entry that is not a
//! list starting with a string and an integer (extra items after those two are ignored too). On top of that, an
//! entry is skipped when its host is empty, longer than [`MAX_NODE_HOST_LEN`] bytes, not UTF-8 or holds whitespace
//! or control characters, or when its port is outside 1..=65535 (libtorrent casts it to an `int` unchecked). At most
//! [`MAX_NODES`] entries are kept, and the rest are read past without being stored, so a hostile file costs no
//! memory beyond that.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Most `nodes` entries kept when parsing, and written when making a torrent.
pub const MAX_NODES: usize = 1_000;

/// Longest host kept or written, in bytes: the longest DNS name (RFC 1035) is 253 characters, 255 on the wire.
pub const MAX_NODE_HOST_LEN: usize = 255;

/// Why `host` and `port` cannot be a `nodes` entry, if they cannot; the same rule the parser applies.
pub fn check_node(host: &str, port: u16) -> Result<(), &'static str> {
    if host.is_empty() {
        return Err("the host is empty");
    }
    if host.len() > MAX_NODE_HOST_LEN {
        return Err("the host is longer than 255 bytes");
    }
    if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the host holds whitespace or control characters");
    }
    if port == 0 {
        return Err("port 0 is not a port a node can listen on");
    }
    Ok(())
}

/// The `nodes` entries kept from a file, in file order.
#[derive(Debug, Default)]
pub(crate) struct RawNodes(pub(crate) Vec<(String, u16)>);

impl<'de> Deserialize<'de> for RawNodes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodesVisitor)
    }
}

struct NodesVisitor;

impl<'de> Visitor<'de> for NodesVisitor {
    type Value = RawNodes;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a list of [host, port] pairs")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawNodes, A::Error> {
        let mut nodes = Vec::new();
        while nodes.len() < MAX_NODES {
            match seq.next_element::<RawNode>()? {
                Some(RawNode(Some(node))) => nodes.push(node),
                Some(RawNode(None)) => {}
                None => return Ok(RawNodes(nodes)),
            }
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(RawNodes(nodes))
    }

    // Not a list: ignored, as libtorrent does. A dictionary is read to its end, so that the parse goes on after it.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawNodes, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(RawNodes::default())
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<RawNodes, E> {
        Ok(RawNodes::default())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<RawNodes, E> {
        Ok(RawNodes::default())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<RawNodes, E> {
        Ok(RawNodes::default())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<RawNodes, E> {
        Ok(RawNodes::default())
    }
}

/// One entry: `Some` when it is a usable `[host, port]`.
struct RawNode(Option<(String, u16)>);

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = RawNode;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a [host, port] pair")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawNode, A::Error> {
        let host = seq.next_element::<Item>()?;
        let port = match host {
            Some(_) => seq.next_element::<Item>()?,
            None => None,
        };
        if port.is_some() {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
        }
        let node = match (host, port) {
            (Some(Item::Host(host)), Some(Item::Int(port))) => {
                u16::try_from(port).ok().filter(|&port| check_node(&host, port).is_ok()).map(|port| (host, port))
            }
            _ => None,
        };
        Ok(RawNode(node))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawNode, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(RawNode(None))
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<RawNode, E> {
        Ok(RawNode(None))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<RawNode, E> {
        Ok(RawNode(None))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<RawNode, E> {
        Ok(RawNode(None))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<RawNode, E> {
        Ok(RawNode(None))
    }
}

/// An item of an entry: a string short enough to be a host (copied only then), an integer, or anything else.
enum Item {
    Host(String),
    Int(i64),
    Other,
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ItemVisitor)
    }
}

struct ItemVisitor;

impl<'de> Visitor<'de> for ItemVisitor {
    type Value = Item;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a host or a port")
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Item, E> {
        if bytes.len() > MAX_NODE_HOST_LEN {
            return Ok(Item::Other);
        }
        Ok(std::str::from_utf8(bytes).map_or(Item::Other, |host| Item::Host(host.to_owned())))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Item, E> {
        self.visit_bytes(text.as_bytes())
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Item, E> {
        Ok(Item::Int(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Item, E> {
        Ok(i64::try_from(value).map_or(Item::Other, Item::Int))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Item, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Item::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Item, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Item::Other)
    }
}

#[cfg(test)]
#[path = "nodes_tests.rs"]
mod tests;
