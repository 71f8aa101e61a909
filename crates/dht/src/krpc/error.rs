//! Why a datagram is not a KRPC message we accept.
//!
//! Every variant means "the sender sent something malformed". A node drops such datagrams; for a query whose
//! transaction id is still readable ([`super::query_transaction_id`]) it may answer error 203, as libtorrent does.

use bencode::BencodeError;

/// A malformed KRPC datagram. Keys are named by path: `a.id` is `id` inside the arguments of a query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KrpcError {
    /// Longer than [`super::MAX_DATAGRAM_LEN`]; refused before parsing.
    #[error("datagram of {len} bytes is longer than the {max} accepted")]
    DatagramTooLong {
        /// Its length.
        len: usize,
        /// [`super::MAX_DATAGRAM_LEN`].
        max: usize,
    },

    /// Not one bencoded value we accept (truncated, nested too deep, a key twice, bytes after the value, ...).
    #[error("not valid bencode: {0}")]
    Bencode(#[from] BencodeError),

    /// Bencode, but not a dictionary.
    #[error("the message is not a bencoded dictionary")]
    NotADictionary,

    /// A required key is absent.
    #[error("required key `{0}` is missing")]
    MissingKey(&'static str),

    /// A key holds the wrong kind of value, e.g. an integer `t`.
    #[error("`{key}` is not {expected}")]
    WrongType {
        /// The key.
        key: &'static str,
        /// What it should hold: "a string", "an integer", "a list", "a dictionary", "strings".
        expected: &'static str,
    },

    /// `y` is none of `q`, `r`, `e`.
    #[error("message type `y` is not q, r or e")]
    UnknownMessageType,

    /// A transaction id of 0 or more than [`super::MAX_TRANSACTION_ID_LEN`] bytes.
    #[error("transaction id of {0} bytes, expected 1 to 16")]
    TransactionIdLength(usize),

    /// A node id, target or info-hash that is not 20 bytes.
    #[error("`{key}` is {len} bytes, expected 20")]
    IdLength {
        /// The key.
        key: &'static str,
        /// Its length.
        len: usize,
    },

    /// A `nodes` or `nodes6` string that is not a whole number of entries.
    #[error("`{key}` is {len} bytes, not a multiple of {entry_len}")]
    NodesLength {
        /// `r.nodes` or `r.nodes6`.
        key: &'static str,
        /// Its length.
        len: usize,
        /// 26 or 38.
        entry_len: usize,
    },

    /// A `values` entry that is neither a compact IPv4 peer (6 bytes) nor an IPv6 one (18 bytes).
    #[error("a `values` entry is {0} bytes, expected 6 or 18")]
    ValueLength(usize),

    /// A token of 0 or more than [`super::MAX_TOKEN_LEN`] bytes.
    #[error("token of {0} bytes, expected 1 to 64")]
    TokenLength(usize),

    /// An announce_peer `port` outside 0..=65535.
    #[error("port {0} is outside 0..=65535")]
    PortOutOfRange(i64),

    /// An error message whose `e` is not a list starting with an integer code and a string.
    #[error("`e` is not a list [code, message]")]
    BadErrorList,
}
