//! KRPC (BEP 5): one bencoded dictionary per UDP datagram, a query, a response or an error.
//!
//! ```text
//! t   str   transaction id, chosen by the querier and echoed back (libtorrent uses 2 bytes, others 4)
//! y   str   "q" query, "r" response, "e" error
//! v   str   client version: 2 letters (BEP 20) + 2 version bytes, e.g. "LT\x02\x08" (optional)
//! ip  str   the receiver's address as the sender saw it, 6 or 18 bytes compact (BEP 42; in replies)
//! ro  int   1: the sender is read-only, do not add it to routing tables or query it (BEP 43; in queries)
//! q   str   method: ping, find_node, get_peers, announce_peer            (queries)
//! a   dict  arguments: id, and target / info_hash / port, token, implied_port, seed; want, bs
//! r   dict  return values: id, nodes (26-byte entries), nodes6 (38-byte entries, BEP 32), values (list of 6- or
//!           18-byte peers), token; libtorrent adds p, the querier's port as it saw it   (responses)
//! e   list  [code, message]: 201 generic, 202 server, 203 protocol, 204 method unknown   (errors)
//! ```
//!
//! Decoding, and why:
//! - A datagram longer than [`MAX_DATAGRAM_LEN`] (1500 bytes, the Ethernet MTU: nothing that arrives unfragmented
//!   is longer) is refused before any parsing.
//!   Honest messages fit: libtorrent's largest IPv4 reply (8 nodes and 100 peers) is about 1.1 KB. Anything
//!   larger arrived as IP fragments, which honest nodes avoid (IPv6 guarantees only 1280 bytes per link) and
//!   attacks favour. The cap also bounds the work one datagram costs.
//! - The bencode decoder refuses nesting deeper than [`bencode::MAX_DEPTH`], string lengths past the end, and
//!   a key given twice, so a nesting bomb or a huge length prefix is an error, never a crash or an allocation.
//! - Keys the meaning depends on must be well-formed when present: `t` (1 to [`MAX_TRANSACTION_ID_LEN`] bytes),
//!   `y`, `q`, `a`/`r`/`e`, every id, target and info-hash (exactly 20 bytes), `port`, `token` (1 to
//!   [`MAX_TOKEN_LEN`] bytes), `nodes` and `nodes6` (whole multiples of 26 and 38 bytes), each `values` entry (6
//!   or 18 bytes). Anything else is a [`KrpcError`] naming the key.
//! - Advisory keys (`v`, `ip`, `ro`, `want`, `bs`, `implied_port`, `seed`, `p`, and the `r` that libtorrent adds
//!   to errors) are read when well-formed and otherwise treated as absent, as libtorrent does: a node with an odd
//!   version string still answers usefully. Unknown keys are ignored.
//! - At most [`MAX_VALUES`] peers of `values` are kept; the rest are counted and skipped, not refused (libtorrent
//!   sends up to 100, and an honest large reply should still give us its first 100 peers).
//! - An unknown method decodes as [`Method::Unknown`], so a node can answer with error 204.
//!
//! Encoding writes canonical bencode (keys sorted) and writes every field given: keeping a reply under
//! [`MAX_DATAGRAM_LEN`] (8 nodes, at most 100 values) is the caller's part. Every key in the table above is kept
//! and the encoding is canonical, so a canonical datagram with no other keys re-encodes to the same bytes, which
//! the golden tests check against libtorrent's. Any other datagram that decodes re-encodes to one no longer than
//! itself (unknown or malformed advisory keys and surplus values dropped, numbers and lengths written without
//! leading zeros), so the re-encoding still fits the cap.

mod decode;
mod encode;
mod error;

use std::fmt;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};

pub use decode::query_transaction_id;
pub use error::KrpcError;

use crate::{NodeId, NodeInfo};

/// Longest datagram decoded: the Ethernet MTU. See the module docs.
pub const MAX_DATAGRAM_LEN: usize = 1500;
/// Longest transaction id accepted. BEP 5 leaves the length open; clients use 2 (libtorrent) to 4 bytes.
pub const MAX_TRANSACTION_ID_LEN: usize = 16;
/// Longest token accepted. libtorrent's are 4 bytes and ours 8; a whole SHA-1 would be 20.
pub const MAX_TOKEN_LEN: usize = 64;
/// Most `values` peers kept from one response.
pub const MAX_VALUES: usize = 100;

/// Error code 201: generic error.
pub const GENERIC_ERROR: i64 = 201;
/// Error code 202: server error.
pub const SERVER_ERROR: i64 = 202;
/// Error code 203: protocol error (malformed packet, invalid arguments, bad token). libtorrent also answers
/// unknown methods with it.
pub const PROTOCOL_ERROR: i64 = 203;
/// Error code 204: method unknown.
pub const METHOD_UNKNOWN: i64 = 204;

/// A transaction id of 1 to [`MAX_TRANSACTION_ID_LEN`] bytes, kept inline: it is copied into every reply and
/// used as a key for outstanding queries, so it should cost no allocation.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransactionId {
    len: u8,
    bytes: [u8; MAX_TRANSACTION_ID_LEN],
}

impl TransactionId {
    /// The id in `bytes`, if it has 1 to [`MAX_TRANSACTION_ID_LEN`] bytes.
    #[must_use]
    pub fn new(bytes: &[u8]) -> Option<Self> {
        if bytes.is_empty() || bytes.len() > MAX_TRANSACTION_ID_LEN {
            return None;
        }
        let mut inline = [0; MAX_TRANSACTION_ID_LEN];
        inline[..bytes.len()].copy_from_slice(bytes);
        Some(TransactionId { len: bytes.len() as u8, bytes: inline })
    }

    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// Two bytes, big-endian, as libtorrent writes its ids.
impl From<u16> for TransactionId {
    fn from(n: u16) -> Self {
        let mut bytes = [0; MAX_TRANSACTION_ID_LEN];
        bytes[..2].copy_from_slice(&n.to_be_bytes());
        TransactionId { len: 2, bytes }
    }
}

impl fmt::Debug for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TransactionId(")?;
        self.as_bytes().iter().try_for_each(|byte| write!(f, "{byte:02x}"))?;
        f.write_str(")")
    }
}

/// One KRPC message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `t`.
    pub transaction_id: TransactionId,
    /// `v`: the sender's client and version. Only 4-byte values are kept (BEP 5's form).
    pub version: Option<[u8; 4]>,
    /// `ip`: our address as the sender saw it (BEP 42), sent in replies; how a node learns its external address.
    pub external_addr: Option<SocketAddr>,
    /// `ro`: the sender is read-only (BEP 43) and must not enter routing tables.
    pub read_only: bool,
    /// What the message says.
    pub body: Body,
}

/// A message's kind and contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// `y` = `q`.
    Query(Query),
    /// `y` = `r`. It does not say which query it answers: the caller matches the transaction id.
    Response(Response),
    /// `y` = `e`.
    Error(ErrorMessage),
}

/// A query: the `a` dictionary and the method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// `a.id`: the querier's id.
    pub id: NodeId,
    /// `a.want` (BEP 32): the node families wanted in the reply. libtorrent sends it with find_node, get_peers
    /// and announce_peer when it runs both DHTs.
    pub want: Want,
    /// `q` and its own arguments.
    pub method: Method,
}

/// The method of a query and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// `ping`.
    Ping,
    /// `find_node`: the nodes closest to `target`.
    FindNode {
        /// `a.target`.
        target: NodeId,
        /// `a.bs` (libtorrent): sent to bootstrap routers during a bootstrap.
        bootstrap: bool,
    },
    /// `get_peers`: peers of `info_hash`, else the nodes closest to it, and a token for announcing.
    GetPeers {
        /// `a.info_hash`.
        info_hash: [u8; 20],
        /// `a.bs` (libtorrent): sent to bootstrap routers during a bootstrap.
        bootstrap: bool,
    },
    /// `announce_peer`: the querier is in the swarm of `info_hash`.
    AnnouncePeer {
        /// `a.info_hash`.
        info_hash: [u8; 20],
        /// `a.port`: the peer's port, unless `implied_port` is set (required either way, as libtorrent has it).
        port: u16,
        /// `a.implied_port`: use the datagram's source port instead of `port` (the peer is behind a NAT and
        /// uses its DHT socket's port for uTP).
        implied_port: bool,
        /// `a.token`, from an earlier get_peers reply of ours.
        token: Vec<u8>,
        /// `a.seed` (libtorrent, BEP 33): whether the peer is a seed; absent means unknown.
        seed: Option<bool>,
    },
    /// Any other method (BEP 44 get/put, BEP 51 sample_infohashes, ...): answered with error 204 by nodes that
    /// do not speak it. Never one of the four names above.
    Unknown {
        /// `q`.
        method: Vec<u8>,
    },
}

/// BEP 32 `want`: which node families the querier wants (`n4` for `nodes`, `n6` for `nodes6`). Neither means
/// "the family of this socket".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Want {
    /// `n4`.
    pub v4: bool,
    /// `n6`.
    pub v6: bool,
}

/// The `r` dictionary of a response. Which keys are present depends on the query answered (ping and
/// announce_peer: only `id`; find_node: nodes; get_peers: a token and values or nodes). Lists are `None` when the
/// key is absent and `Some(empty)` when it is present but empty (libtorrent writes `nodes` empty when it has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// `id`: the responder's id.
    pub id: NodeId,
    /// `nodes`: IPv4 nodes, 26 bytes each (id, address, port).
    pub nodes: Option<Vec<NodeInfo<SocketAddrV4>>>,
    /// `nodes6` (BEP 32): IPv6 nodes, 38 bytes each.
    pub nodes6: Option<Vec<NodeInfo<SocketAddrV6>>>,
    /// `values`: peers of the info-hash, 6 bytes (IPv4) or 18 bytes (IPv6) each. At most [`MAX_VALUES`] kept.
    pub values: Option<Vec<SocketAddr>>,
    /// `token`: what an announce_peer to this node must carry.
    pub token: Option<Vec<u8>>,
    /// `p` (libtorrent): the port the responder saw our query come from.
    pub requester_port: Option<u16>,
}

impl Response {
    /// A response carrying only the responder's id (a ping or announce_peer reply).
    #[must_use]
    pub fn new(id: NodeId) -> Self {
        Response { id, nodes: None, nodes6: None, values: None, token: None, requester_port: None }
    }
}

/// An error reply: `e` = [code, message].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorMessage {
    /// The code: [`GENERIC_ERROR`], [`SERVER_ERROR`], [`PROTOCOL_ERROR`], [`METHOD_UNKNOWN`], or another
    /// (BEP 44 adds 205-207, 301, 302).
    pub code: i64,
    /// The text, as sent (not necessarily UTF-8).
    pub message: Vec<u8>,
    /// `r.id`: libtorrent puts its id in an `r` dictionary beside `e`.
    pub id: Option<NodeId>,
    /// `r.p`: and our port as it saw it.
    pub requester_port: Option<u16>,
}

impl Message {
    /// A query with no `v`, `ip` or `ro`.
    #[must_use]
    pub fn query(transaction_id: TransactionId, id: NodeId, method: Method) -> Self {
        Message::plain(transaction_id, Body::Query(Query { id, want: Want::default(), method }))
    }

    /// A response with no `v` or `ip`.
    #[must_use]
    pub fn response(transaction_id: TransactionId, response: Response) -> Self {
        Message::plain(transaction_id, Body::Response(response))
    }

    /// An error reply with no `v`, `ip` or `r`.
    #[must_use]
    pub fn error(transaction_id: TransactionId, code: i64, message: &str) -> Self {
        let error = ErrorMessage { code, message: message.as_bytes().to_vec(), id: None, requester_port: None };
        Message::plain(transaction_id, Body::Error(error))
    }

    fn plain(transaction_id: TransactionId, body: Body) -> Self {
        Message { transaction_id, version: None, external_addr: None, read_only: false, body }
    }

    /// The sender's node id: `a.id` or `r.id` (absent from most errors).
    #[must_use]
    pub fn sender_id(&self) -> Option<NodeId> {
        match &self.body {
            Body::Query(query) => Some(query.id),
            Body::Response(response) => Some(response.id),
            Body::Error(error) => error.id,
        }
    }
}

/// Method names, as `q` carries them.
const PING: &[u8] = b"ping";
const FIND_NODE: &[u8] = b"find_node";
const GET_PEERS: &[u8] = b"get_peers";
const ANNOUNCE_PEER: &[u8] = b"announce_peer";

/// Bytes per `nodes` entry: id, IPv4 address, port.
const NODE_V4_LEN: usize = 26;
/// Bytes per `nodes6` entry: id, IPv6 address, port.
const NODE_V6_LEN: usize = 38;
