//! HTTP(S) trackers (BEP 3, with BEP 23 compact peers, BEP 7 IPv6 peers and BEP 48 scrape): query strings
//! and bencoded reply bodies in both directions, and nothing else.
//!
//! No HTTP library and no sockets: the caller owns the connection, the TLS and the request line. This module
//! turns values into a URL or a body and bytes back into values, so the same code serves our peer (issue 10:
//! [`announce_url`], [`scrape_url`], [`parse_announce_reply`], [`parse_scrape_reply`]) and our tracker (issue
//! 12: [`parse_announce_query`], [`parse_scrape_query`], [`encode_announce_reply`], [`encode_failure`],
//! [`encode_scrape_reply`]).
//!
//! A conversation:
//! 1. the client sends `GET <announce URL>?info_hash=…&peer_id=…&port=…&…&compact=1` and gets a bencoded
//!    dictionary with `interval` and `peers` (a string of 6-byte IPv4 entries), perhaps `peers6` (18-byte
//!    entries), or a dictionary holding only `failure reason`, sent with HTTP status 200;
//! 2. it may send `GET <scrape URL>?info_hash=…&info_hash=…` (the announce URL with its last path component's
//!    leading `announce` replaced by `scrape`) and gets `files`: info-hash → counts.
//!
//! The binary fields (`info_hash`, `peer_id`) are percent-encoded byte by byte, so the tracker must read the
//! *raw* query string: web frameworks' query extractors decode to UTF-8 text and mangle them (aquatic writes its
//! own parser for the same reason). A client that leaves a `+` unescaped means byte 0x2B, not a space: `+` for
//! space is an HTML form rule, not a URL one.
//!
//! The client side, with a made-up reply:
//! ```
//! use tracker_protocol::AnnounceEvent;
//! use tracker_protocol::http::{HttpAnnounce, HttpAnnounceReply, announce_url, parse_announce_reply};
//!
//! let announce = HttpAnnounce {
//!     info_hash: [0xab; 20],
//!     peer_id: *b"-BT0001-abcdefghijkl",
//!     port: 6881,
//!     uploaded: 0,
//!     downloaded: 0,
//!     left: 1000,
//!     event: AnnounceEvent::Started,
//!     numwant: Some(50),
//!     key: 0x1234_abcd,
//!     tracker_id: None,
//! };
//! let url = announce_url("http://tracker.example/announce", &announce);
//! assert!(url.starts_with("http://tracker.example/announce?info_hash=%AB%AB"));
//!
//! let body = b"d8:intervali1800e5:peers6:\x7f\x00\x00\x01\x1a\xe1e";
//! let HttpAnnounceReply::Success(reply) = parse_announce_reply(body)? else { panic!("not a failure") };
//! assert_eq!(reply.interval, Some(1800));
//! assert_eq!(reply.peers, ["127.0.0.1:6881".parse()?]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! No input makes a parser panic. Reply bodies over [`MAX_REPLY_LEN`] are refused before any parsing.

mod encode;
pub mod error;
mod percent;
mod query;
mod reply;
mod url;

#[cfg(test)]
mod tests;

pub use encode::{encode_announce_reply, encode_failure, encode_scrape_reply};
pub use error::{HttpQueryError, HttpReplyError};
pub use query::{HttpAnnounceRequest, IpParam, parse_announce_query, parse_scrape_query};
pub use reply::{
    HttpAnnounceReply, HttpAnnounceSuccess, HttpScrapeReply, ScrapeEntry, parse_announce_reply, parse_scrape_reply,
};
pub use url::{HttpAnnounce, announce_url, scrape_url};

/// Largest reply body accepted, checked before parsing. 2 MiB holds about 350,000 compact peers, far more than
/// any tracker sends (opentracker caps a reply at 200); the HTTP layer should stop reading at this size too.
pub const MAX_REPLY_LEN: usize = 2 << 20;

/// Most peers kept per address family from one announce reply; the rest are dropped. A tracker that sends more
/// is broken or hostile, and a client cannot use thousands of peers from one reply anyway.
pub const MAX_REPLY_PEERS: usize = 2000;

/// Longest `key` or `trackerid` a tracker accepts in a query, after percent-decoding (aquatic's limit for `key`).
/// Both are opaque tokens of a few bytes; a tracker stores them per peer, so their size must be bounded.
pub const MAX_TOKEN_LEN: usize = 100;
