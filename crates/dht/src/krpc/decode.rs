//! Decoding one datagram into a [`Message`]; the rules are in the module docs of [`crate::krpc`].

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use bencode::Value;

use super::{
    ANNOUNCE_PEER, Body, ErrorMessage, FIND_NODE, GET_PEERS, KrpcError, MAX_DATAGRAM_LEN, MAX_TOKEN_LEN, MAX_VALUES,
    Message, Method, NODE_V4_LEN, NODE_V6_LEN, PING, Query, Response, TransactionId, Want,
};
use crate::{NodeId, NodeInfo};

impl Message {
    /// Decodes one datagram. Returns the message and how many `values` peers were skipped past [`MAX_VALUES`]
    /// (0 for any reply that keeps to libtorrent's 100).
    ///
    /// # Errors
    ///
    /// A [`KrpcError`] naming what is wrong: too long, not bencode, not a dictionary, a required key missing or of
    /// the wrong type, an id that is not 20 bytes, a transaction id or token of a length we refuse, a node list
    /// that is not a whole number of entries, a peer that is not 6 or 18 bytes.
    pub fn decode(datagram: &[u8]) -> Result<(Message, usize), KrpcError> {
        if datagram.len() > MAX_DATAGRAM_LEN {
            return Err(KrpcError::DatagramTooLong { len: datagram.len(), max: MAX_DATAGRAM_LEN });
        }
        let top = bencode::decode_exact(datagram)?;
        if top.as_dict().is_none() {
            return Err(KrpcError::NotADictionary);
        }
        let t = required_bytes(&top, "t", "t")?;
        let transaction_id = TransactionId::new(t).ok_or(KrpcError::TransactionIdLength(t.len()))?;
        let version = top.get(b"v").and_then(Value::as_bytes).and_then(|v| v.try_into().ok());
        let external_addr = top.get(b"ip").and_then(Value::as_bytes).and_then(compact_peer);
        let read_only = flag(&top, "ro");
        let mut skipped = 0;
        let body = match required_bytes(&top, "y", "y")? {
            b"q" => Body::Query(decode_query(&top)?),
            b"r" => {
                let (response, values_skipped) = decode_response(required_dict(&top, "r", "r")?)?;
                skipped = values_skipped;
                Body::Response(response)
            }
            b"e" => Body::Error(decode_error(&top)?),
            _ => return Err(KrpcError::UnknownMessageType),
        };
        Ok((Message { transaction_id, version, external_addr, read_only, body }, skipped))
    }
}

/// The transaction id of a datagram that failed to decode, if it is a query that has a usable one: what a node
/// needs to answer a malformed query with error 203 ([`super::PROTOCOL_ERROR`]), as libtorrent does. `None` for
/// anything else (not bencode, not a query, no usable `t`), which gets no answer.
#[must_use]
pub fn query_transaction_id(datagram: &[u8]) -> Option<TransactionId> {
    if datagram.len() > MAX_DATAGRAM_LEN {
        return None;
    }
    let top = bencode::decode_exact(datagram).ok()?;
    if top.get(b"y").and_then(Value::as_bytes) != Some(b"q") {
        return None;
    }
    top.get(b"t").and_then(Value::as_bytes).and_then(TransactionId::new)
}

fn decode_query(top: &Value<'_>) -> Result<Query, KrpcError> {
    let name = required_bytes(top, "q", "q")?;
    let args = required_dict(top, "a", "a")?;
    let id = required_id(args, "id", "a.id")?;
    let want = decode_want(args);
    let method = match name {
        PING => Method::Ping,
        FIND_NODE => Method::FindNode { target: required_id(args, "target", "a.target")?, bootstrap: flag(args, "bs") },
        GET_PEERS => Method::GetPeers {
            info_hash: required_id(args, "info_hash", "a.info_hash")?.0,
            bootstrap: flag(args, "bs"),
        },
        ANNOUNCE_PEER => {
            let info_hash = required_id(args, "info_hash", "a.info_hash")?.0;
            // Required even with implied_port, as libtorrent requires it.
            let port = args.get(b"port").ok_or(KrpcError::MissingKey("a.port"))?;
            let port = port.as_int().ok_or(KrpcError::WrongType { key: "a.port", expected: "an integer" })?;
            let port = u16::try_from(port).map_err(|_| KrpcError::PortOutOfRange(port))?;
            let implied_port = flag(args, "implied_port");
            let token = token(required_bytes(args, "token", "a.token")?)?;
            let seed = args.get(b"seed").and_then(Value::as_int).map(|seed| seed != 0);
            Method::AnnouncePeer { info_hash, port, implied_port, token, seed }
        }
        other => Method::Unknown { method: other.to_vec() },
    };
    Ok(Query { id, want, method })
}

fn decode_response(r: &Value<'_>) -> Result<(Response, usize), KrpcError> {
    let id = required_id(r, "id", "r.id")?;
    let nodes = optional_bytes(r, "nodes", "r.nodes")?
        .map(|list| entries::<NODE_V4_LEN>(list, "r.nodes").map(|entries| entries.iter().map(node_v4).collect()))
        .transpose()?;
    let nodes6 = optional_bytes(r, "nodes6", "r.nodes6")?
        .map(|list| entries::<NODE_V6_LEN>(list, "r.nodes6").map(|entries| entries.iter().map(node_v6).collect()))
        .transpose()?;
    let mut skipped = 0;
    let values = match r.get(b"values") {
        None => None,
        Some(list) => {
            let list = list.as_list().ok_or(KrpcError::WrongType { key: "r.values", expected: "a list" })?;
            // Every entry is checked, kept or not: a reply with one bad entry is malformed as a whole.
            let mut peers = Vec::with_capacity(list.len().min(MAX_VALUES));
            for entry in list {
                let bytes = entry.as_bytes().ok_or(KrpcError::WrongType { key: "r.values", expected: "strings" })?;
                let peer = compact_peer(bytes).ok_or(KrpcError::ValueLength(bytes.len()))?;
                if peers.len() < MAX_VALUES {
                    peers.push(peer);
                }
            }
            skipped = list.len() - peers.len();
            Some(peers)
        }
    };
    let token = optional_bytes(r, "token", "r.token")?.map(token).transpose()?;
    let requester_port = port_hint(r);
    Ok((Response { id, nodes, nodes6, values, token, requester_port }, skipped))
}

fn decode_error(top: &Value<'_>) -> Result<ErrorMessage, KrpcError> {
    let list = top.get(b"e").ok_or(KrpcError::MissingKey("e"))?;
    let (code, message) = match list.as_list() {
        Some([Value::Int(code), Value::Bytes(message), ..]) => (*code, message.to_vec()),
        _ => return Err(KrpcError::BadErrorList),
    };
    // libtorrent's `r` beside `e`: advisory, so a malformed one is ignored.
    let r = top.get(b"r").filter(|r| r.as_dict().is_some());
    let id = r.and_then(|r| r.get(b"id")).and_then(Value::as_bytes).and_then(NodeId::from_slice);
    let requester_port = r.and_then(port_hint);
    Ok(ErrorMessage { code, message, id, requester_port })
}

/// BEP 32 `want`: `n4` and `n6` are read from a list of strings; anything else in it, or a `want` of another
/// type, is ignored.
fn decode_want(args: &Value<'_>) -> Want {
    let mut want = Want::default();
    for item in args.get(b"want").and_then(Value::as_list).unwrap_or_default() {
        match item.as_bytes() {
            Some(b"n4") => want.v4 = true,
            Some(b"n6") => want.v6 = true,
            _ => {}
        }
    }
    want
}

fn required_bytes<'a>(dict: &Value<'a>, key: &str, path: &'static str) -> Result<&'a [u8], KrpcError> {
    optional_bytes(dict, key, path)?.ok_or(KrpcError::MissingKey(path))
}

fn optional_bytes<'a>(dict: &Value<'a>, key: &str, path: &'static str) -> Result<Option<&'a [u8]>, KrpcError> {
    dict.get(key.as_bytes())
        .map(|value| value.as_bytes().ok_or(KrpcError::WrongType { key: path, expected: "a string" }))
        .transpose()
}

fn required_dict<'v, 'a>(dict: &'v Value<'a>, key: &str, path: &'static str) -> Result<&'v Value<'a>, KrpcError> {
    let value = dict.get(key.as_bytes()).ok_or(KrpcError::MissingKey(path))?;
    match value {
        Value::Dict(_) => Ok(value),
        _ => Err(KrpcError::WrongType { key: path, expected: "a dictionary" }),
    }
}

fn required_id(dict: &Value<'_>, key: &str, path: &'static str) -> Result<NodeId, KrpcError> {
    let bytes = required_bytes(dict, key, path)?;
    NodeId::from_slice(bytes).ok_or(KrpcError::IdLength { key: path, len: bytes.len() })
}

fn token(bytes: &[u8]) -> Result<Vec<u8>, KrpcError> {
    if bytes.is_empty() || bytes.len() > MAX_TOKEN_LEN {
        return Err(KrpcError::TokenLength(bytes.len()));
    }
    Ok(bytes.to_vec())
}

/// An advisory integer flag: set when it is a nonzero integer.
fn flag(dict: &Value<'_>, key: &str) -> bool {
    dict.get(key.as_bytes()).and_then(Value::as_int).is_some_and(|n| n != 0)
}

/// libtorrent's `p`, when it is a valid port.
fn port_hint(dict: &Value<'_>) -> Option<u16> {
    dict.get(b"p").and_then(Value::as_int).and_then(|p| u16::try_from(p).ok())
}

/// The `N`-byte entries of a compact list, or an error if its length is not a whole number of entries.
fn entries<'a, const N: usize>(list: &'a [u8], key: &'static str) -> Result<&'a [[u8; N]], KrpcError> {
    match list.as_chunks::<N>() {
        (entries, []) => Ok(entries),
        _ => Err(KrpcError::NodesLength { key, len: list.len(), entry_len: N }),
    }
}

fn node_v4(entry: &[u8; NODE_V4_LEN]) -> NodeInfo<SocketAddrV4> {
    let (id, [a, b, c, d, p0, p1]) = split_id(entry);
    NodeInfo { id, addr: SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), u16::from_be_bytes([p0, p1])) }
}

fn node_v6(entry: &[u8; NODE_V6_LEN]) -> NodeInfo<SocketAddrV6> {
    let (id, addr): (NodeId, [u8; 18]) = split_id(entry);
    NodeInfo { id, addr: v6_peer(&addr) }
}

/// The 20-byte id at the front of a node entry, and the compact address after it.
fn split_id<const N: usize, const A: usize>(entry: &[u8; N]) -> (NodeId, [u8; A]) {
    let id = NodeId(std::array::from_fn(|i| entry[i]));
    (id, std::array::from_fn(|i| entry[NodeId::LEN + i]))
}

/// A compact peer: 4 or 16 address bytes and 2 port bytes, big-endian. `None` for any other length.
pub(super) fn compact_peer(bytes: &[u8]) -> Option<SocketAddr> {
    if let Ok([a, b, c, d, p0, p1]) = <[u8; 6]>::try_from(bytes) {
        return Some(SocketAddr::from((Ipv4Addr::new(a, b, c, d), u16::from_be_bytes([p0, p1]))));
    }
    <&[u8; 18]>::try_from(bytes).ok().map(|bytes| SocketAddr::V6(v6_peer(bytes)))
}

fn v6_peer(bytes: &[u8; 18]) -> SocketAddrV6 {
    let [ip @ .., p0, p1] = *bytes;
    SocketAddrV6::new(Ipv6Addr::from(ip), u16::from_be_bytes([p0, p1]), 0, 0)
}
