//! Parse errors for both directions.
//!
//! Request errors follow aquatic's split between errors the tracker may answer and errors it
//! must drop: a BEP 15 error packet (action 3) needs the transaction id, and should only go to a
//! sender whose connection id checks out, or the tracker becomes an amplifier for spoofed
//! sources. [`RequestParseError::Sendable`] therefore carries both ids; the server validates the
//! connection id and only then replies. [`RequestParseError::Unsendable`] means the header itself
//! was unusable and the packet is dropped.

use crate::wire::Short;
use crate::{ConnectionId, TransactionId};

/// What was wrong with a request packet, independent of whether the tracker may answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The packet ends before the fixed part of its message does.
    #[error("request too short: needs {needed} bytes, got {got}")]
    TooShort {
        /// Minimum length of the message the action field announced (16 if the action is unknown).
        needed: usize,
        /// Length of the packet received.
        got: usize,
    },
    /// A connect request (action 0) whose first 8 bytes are not [`crate::PROTOCOL_ID`].
    #[error("connect request with protocol id {0:#x} instead of 0x41727101980")]
    BadProtocolId(u64),
    /// The action field holds something other than connect, announce or scrape.
    #[error("unknown action {0}")]
    UnknownAction(u32),
    /// The announce event field holds something other than 0..=3.
    #[error("unknown announce event {0}")]
    UnknownEvent(u32),
    /// A scrape request with no complete 20-byte info-hash after its header.
    #[error("scrape request lists no info-hash")]
    NoInfoHashes,
    /// A scrape request with more info-hashes than the tracker accepts in one packet.
    #[error("scrape request lists {got} info-hashes, more than the limit of {max}")]
    TooManyInfoHashes {
        /// The `max_scrape_hashes` limit given to [`crate::Request::parse`].
        max: usize,
        /// How many complete info-hashes the packet holds.
        got: usize,
    },
}

impl RequestError {
    /// A short, fixed text for the message field of a BEP 15 error response.
    ///
    /// Static so that the tracker can answer without formatting (and allocating) per packet.
    #[must_use]
    pub fn reply_message(&self) -> &'static str {
        match self {
            Self::TooShort { .. } => "packet too short",
            Self::BadProtocolId(_) => "bad protocol id",
            Self::UnknownAction(_) => "unknown action",
            Self::UnknownEvent(_) => "unknown event",
            Self::NoInfoHashes => "no info-hash in scrape",
            Self::TooManyInfoHashes { .. } => "too many info-hashes in scrape",
        }
    }
}

impl From<Short> for RequestError {
    fn from(short: Short) -> Self {
        Self::TooShort { needed: short.needed, got: short.got }
    }
}

/// A request that could not be parsed, split by whether the tracker may answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestParseError {
    /// The 16-byte header was read: the tracker may send a BEP 15 error response to
    /// `transaction_id`, but only after checking that `connection_id` is one it issued.
    #[error("{kind} (connection id {:#x}, transaction id {})", connection_id.0, transaction_id.0)]
    Sendable {
        /// The connection id from bytes 0..8; check it before replying.
        connection_id: ConnectionId,
        /// The transaction id from bytes 12..16, to echo in the error response.
        transaction_id: TransactionId,
        /// What was wrong.
        kind: RequestError,
    },
    /// Nothing trustworthy is known about the sender's request: drop the packet silently.
    #[error(transparent)]
    Unsendable(RequestError),
}

impl RequestParseError {
    /// What was wrong, whichever side of the split it fell on.
    #[must_use]
    pub fn kind(&self) -> RequestError {
        match self {
            Self::Sendable { kind, .. } | Self::Unsendable(kind) => *kind,
        }
    }

    /// The ids an error response would need, if the header was read.
    #[must_use]
    pub fn reply_ids(&self) -> Option<(ConnectionId, TransactionId)> {
        match self {
            Self::Sendable { connection_id, transaction_id, .. } => Some((*connection_id, *transaction_id)),
            Self::Unsendable(_) => None,
        }
    }
}

/// A response packet (tracker to client) that could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResponseParseError {
    /// The packet ends before the fixed part of its message does.
    #[error("response too short: needs {needed} bytes, got {got}")]
    TooShort {
        /// Minimum length of the message the action field announced (8 if unknown).
        needed: usize,
        /// Length of the packet received.
        got: usize,
    },
    /// The action field holds something other than 0..=3.
    #[error("unknown action {0}")]
    UnknownAction(u32),
    /// The peer section of an announce response is not a whole number of compact peers.
    #[error("announce response peer section of {len} bytes is not a multiple of {peer_len}")]
    PeerListLength {
        /// Bytes after the 20-byte header.
        len: usize,
        /// 6 for IPv4 peers, 18 for IPv6 peers.
        peer_len: usize,
    },
    /// The body of a scrape response is not a whole number of 12-byte entries.
    #[error("scrape response body of {len} bytes is not a multiple of 12")]
    ScrapeListLength {
        /// Bytes after the 8-byte header.
        len: usize,
    },
}

impl From<Short> for ResponseParseError {
    fn from(short: Short) -> Self {
        Self::TooShort { needed: short.needed, got: short.got }
    }
}
