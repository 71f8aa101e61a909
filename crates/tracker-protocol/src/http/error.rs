//! What can be wrong with a query string (tracker side) or a reply body (client side).
//!
//! Every variant names the field or key at fault, so that a tracker can send the message back as a
//! `failure reason` (the texts hold nothing but field names and numbers) and a client can log which part of a
//! tracker's reply it could not use.

use bencode::BencodeError;

/// A query string the tracker cannot use. The `Display` text is fit to send back through
/// [`crate::http::encode_failure`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpQueryError {
    /// A field BEP 3 requires is absent.
    #[error("missing {0}")]
    MissingField(&'static str),
    /// A field the tracker reads appears twice: which copy counts would be a guess, and two info-hashes in one
    /// announce is a confused or hostile client.
    #[error("{0} given more than once")]
    RepeatedField(&'static str),
    /// A `%` not followed by two hexadecimal digits.
    #[error("bad percent-encoding in {0}")]
    BadEscape(&'static str),
    /// `info_hash` or `peer_id` does not decode to exactly 20 bytes.
    #[error("{field} is {got} bytes long, not {expected}")]
    WrongLength {
        /// `info_hash` or `peer_id`.
        field: &'static str,
        /// Always 20.
        expected: usize,
        /// Bytes after percent-decoding.
        got: usize,
    },
    /// A numeric field that is not a plain decimal number fitting 64 bits (no sign, no spaces).
    #[error("{0} is not a non-negative decimal number")]
    BadNumber(&'static str),
    /// `port` outside 1..=65535.
    #[error("port {0} is out of range")]
    BadPort(u64),
    /// `event` other than `started`, `completed`, `stopped`, `paused`, `empty` or empty.
    #[error("unknown event")]
    UnknownEvent,
    /// `compact` other than `0` or `1`.
    #[error("{0} must be 0 or 1")]
    BadFlag(&'static str),
    /// An `ip` that is not an IPv4 or IPv6 address, when the tracker accepts the field at all.
    #[error("ip is not an IP address")]
    BadIp,
    /// `key` or `trackerid` longer than [`crate::http::MAX_TOKEN_LEN`] bytes after decoding.
    #[error("{field} is longer than {max} bytes")]
    TooLong {
        /// `key` or `trackerid`.
        field: &'static str,
        /// The limit.
        max: usize,
    },
    /// A scrape naming more info-hashes than the tracker answers at once. Refused rather than cut short, so
    /// that a client never takes a partial answer for a full one (as the UDP codec does).
    #[error("scrape names more than {max} info-hashes")]
    TooManyInfoHashes {
        /// The `max_hashes` limit given to [`crate::http::parse_scrape_query`].
        max: usize,
    },
}

/// A reply body the client cannot use. A tracker's refusal is not an error: it parses to a `Failure` outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpReplyError {
    /// The body is longer than the limit; refused before parsing.
    #[error("reply of {len} bytes is longer than the limit of {max}")]
    TooLarge {
        /// Bytes received.
        len: usize,
        /// [`crate::http::MAX_REPLY_LEN`].
        max: usize,
    },
    /// The body is not bencode (an HTML error page, a truncated transfer, a nesting bomb…).
    #[error("reply is not bencode: {0}")]
    Bencode(#[from] BencodeError),
    /// Something other than whitespace follows the bencoded value.
    #[error("{0} bytes of trailing data after the reply")]
    TrailingData(usize),
    /// The body is bencode but not a dictionary.
    #[error("reply is not a dictionary")]
    NotADictionary,
    /// A key holds the wrong kind of value.
    #[error("{key} is not {expected}")]
    WrongType {
        /// The key, or `files entry` for a value inside a scrape's `files`.
        key: &'static str,
        /// What it should have been: `an integer`, `a string`, `a dictionary`, or `a string or a list`.
        expected: &'static str,
    },
    /// An integer that is negative or does not fit 32 bits (intervals and swarm counts).
    #[error("{key} is out of range: {value}")]
    BadInteger {
        /// The key.
        key: &'static str,
        /// The value received.
        value: i64,
    },
    /// A compact peer string whose length is not a whole number of entries.
    #[error("{key} is {len} bytes long, not a multiple of {entry_len}")]
    PeersLength {
        /// `peers` or `peers6`.
        key: &'static str,
        /// Length of the string.
        len: usize,
        /// 6 for `peers`, 18 for `peers6`.
        entry_len: usize,
    },
    /// A scrape reply with neither `files` nor `failure reason`.
    #[error("scrape reply has no files")]
    MissingFiles,
    /// A key of a scrape's `files` dictionary that is not a 20-byte info-hash (some trackers send hex; BEP 48
    /// says raw bytes).
    #[error("scrape reply names an info-hash of {0} bytes")]
    BadInfoHash(usize),
}
