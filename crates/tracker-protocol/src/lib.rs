//! The BEP 15 UDP tracker protocol: message types with parsing and writing in both directions; and in
//! [`http`], the HTTP(S) tracker protocol's query strings and bencoded replies (BEP 3, 7, 23, 48).
//!
//! Pure: no sockets, no async runtime, no clocks. The tracker uses [`Request::parse`] and the
//! response writers; the client uses the request writers and [`Response::parse`].
//!
//! A conversation, all integers big-endian:
//! 1. the client sends a [`ConnectRequest`] (magic [`PROTOCOL_ID`]) and gets a
//!    [`ConnectResponse`] holding a connection id;
//! 2. it then sends [`AnnounceRequest`]s and [`ScrapeRequest`]s carrying that id and gets
//!    [`AnnounceResponse`]s and [`ScrapeResponse`]s, or an [`ErrorResponse`].
//!
//! Every message echoes the client's transaction id so that it can match replies to requests.
//! Byte layouts are drawn in the [`request`] and [`response`] module docs; BEP 41 announce
//! options in [`options`].
//!
//! A tracker's receive path, without the connection-id check and the swarm:
//! ```
//! use std::borrow::Cow;
//! use std::net::{Ipv4Addr, SocketAddrV4};
//! use tracker_protocol::{
//!     AnnounceResponse, ConnectRequest, ConnectResponse, ConnectionId, ErrorResponse, Request,
//!     RequestParseError, TransactionId,
//! };
//!
//! let mut packet = Vec::new();
//! ConnectRequest { transaction_id: TransactionId(7) }.write(&mut packet);
//!
//! let mut reply = Vec::new(); // reused for every packet
//! reply.clear();
//! match Request::parse(&packet, 70) {
//!     Ok(Request::Connect(request)) => ConnectResponse {
//!         transaction_id: request.transaction_id,
//!         connection_id: ConnectionId(0x5eed),
//!     }
//!     .write(&mut reply),
//!     Ok(Request::Announce(request)) => AnnounceResponse {
//!         transaction_id: request.transaction_id,
//!         interval: 1800,
//!         leechers: 0,
//!         seeders: 1,
//!         peers: [SocketAddrV4::new(Ipv4Addr::LOCALHOST, 6881)].into_iter(),
//!     }
//!     .write(&mut reply),
//!     Ok(Request::Scrape(_)) => {}
//!     // Answer only if the connection id checks out, or we would help spoofed floods.
//!     Err(RequestParseError::Sendable { transaction_id, kind, .. }) => ErrorResponse {
//!         transaction_id,
//!         message: Cow::Borrowed(kind.reply_message()),
//!     }
//!     .write(&mut reply),
//!     Err(RequestParseError::Unsendable(_)) => {}
//! }
//! assert_eq!(reply.len(), 16);
//! ```
//!
//! No input makes a parser panic, and request parsing never allocates (it runs for every packet
//! the tracker receives). Errors on requests say whether the tracker may answer at all: see
//! [`RequestParseError`].

pub mod error;
pub mod http;
pub mod options;
pub mod request;
pub mod response;
mod wire;

#[cfg(test)]
mod tests;

pub use error::{RequestError, RequestParseError, ResponseParseError};
pub use options::{AnnounceOptions, UrlData};
pub use request::{
    ANNOUNCE_REQUEST_LEN, AnnounceEvent, AnnounceRequest, CONNECT_REQUEST_LEN, ConnectRequest, InfoHashIter,
    InfoHashes, REQUEST_HEADER_LEN, Request, SCRAPE_REQUEST_HEADER_LEN, ScrapeRequest,
};
pub use response::{
    ANNOUNCE_RESPONSE_HEADER_LEN, AnnounceResponse, CONNECT_RESPONSE_LEN, CompactPeer, ConnectResponse, ErrorResponse,
    RESPONSE_HEADER_LEN, Response, ScrapeResponse, TORRENT_STATS_LEN, TorrentStats, announce_response_len,
    max_peers_within, scrape_response_len,
};

/// The magic number that opens every connect request, so that a tracker can tell BEP 15
/// traffic from stray packets.
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;

/// Length of an info-hash (SHA-1) and of a peer id.
pub const INFO_HASH_LEN: usize = 20;

/// The action field, the same in a request and in its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// 0: obtain a connection id.
    Connect = 0,
    /// 1: report progress, get peers.
    Announce = 1,
    /// 2: get swarm counts.
    Scrape = 2,
    /// 3: error response (tracker to client only).
    Error = 3,
}

/// Connection id issued by the tracker in a connect response.
///
/// Opaque to the client. The tracker should derive it from a keyed hash of the client's address
/// and a time window, so that it cannot be forged by a spoofed source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

/// Transaction id chosen by the client and echoed by the tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionId(pub u32);
