//! Reply bodies: the types both sides share, and the client's parsers.
//!
//! Parsing is lenient where trackers in the wild differ and strict where a reply would otherwise be misread:
//! keys may come in any order, optional keys may be absent, unknown keys are ignored, and a peer dictionary the
//! client cannot use (a host name instead of an address, a port out of range) is skipped; but a known key
//! holding the wrong kind of value, a negative count, or a compact peer string cut mid-entry is an error.

use std::net::{IpAddr, SocketAddrV4, SocketAddrV6};

use bencode::Value;

use crate::http::error::HttpReplyError;
use crate::http::{MAX_REPLY_LEN, MAX_REPLY_PEERS};
use crate::{CompactPeer, TorrentStats};

/// What a tracker answered to an announce.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HttpAnnounceReply {
    /// Peers and timing.
    Success(HttpAnnounceSuccess),
    /// The tracker refused the announce (`failure reason`, decoded as UTF-8 with replacement characters); BEP 3
    /// says nothing else in such a reply counts.
    Failure(String),
}

/// A successful announce reply. Every field but the peer lists is optional because real trackers leave them
/// out (libtorrent accepts a bare `d5:peers0:e`); [`crate::http::encode_announce_reply`] writes only the fields
/// that are set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct HttpAnnounceSuccess {
    /// `interval`: seconds the client should wait before its next regular announce.
    pub interval: Option<u32>,
    /// `min interval`: seconds the client must wait before any announce.
    pub min_interval: Option<u32>,
    /// `complete`: seeders in the swarm.
    pub complete: Option<u32>,
    /// `incomplete`: leechers in the swarm.
    pub incomplete: Option<u32>,
    /// `downloaded`: completed downloads the tracker has seen (opentracker sends it in announce replies too).
    pub downloaded: Option<u32>,
    /// `tracker id`: to be sent back as `trackerid` in later announces.
    pub tracker_id: Option<Vec<u8>>,
    /// `warning message`: the announce worked, but the tracker wants the user to read this.
    pub warning: Option<String>,
    /// IPv4 peers: BEP 23's compact `peers` string, or the IPv4 entries of a list of dictionaries. At most
    /// [`MAX_REPLY_PEERS`].
    pub peers: Vec<SocketAddrV4>,
    /// IPv6 peers: BEP 7's compact `peers6` string, and the IPv6 entries of a `peers` list of dictionaries. At
    /// most [`MAX_REPLY_PEERS`].
    pub peers6: Vec<SocketAddrV6>,
}

/// What a tracker answered to a scrape.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HttpScrapeReply {
    /// Counts per torrent, in the reply's order. A torrent the tracker does not know is usually just absent.
    Files(Vec<ScrapeEntry>),
    /// The tracker refused the scrape (`failure reason`).
    Failure(String),
}

/// One torrent's counts in a scrape reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScrapeEntry {
    /// The torrent.
    pub info_hash: [u8; 20],
    /// `complete` → seeders, `downloaded` → completed, `incomplete` → leechers; an absent count reads as 0.
    pub stats: TorrentStats,
}

/// Parses the body of an announce reply.
///
/// # Errors
///
/// A body over [`MAX_REPLY_LEN`], anything that is not one bencoded dictionary (trailing whitespace is
/// tolerated), and a known key holding something unusable; see [`HttpReplyError`].
pub fn parse_announce_reply(body: &[u8]) -> Result<HttpAnnounceReply, HttpReplyError> {
    let reply = top_level(body)?;
    if let Some(reason) = failure_reason(&reply)? {
        return Ok(HttpAnnounceReply::Failure(reason));
    }
    let mut success = HttpAnnounceSuccess {
        interval: count(&reply, "interval")?,
        min_interval: count(&reply, "min interval")?,
        complete: count(&reply, "complete")?,
        incomplete: count(&reply, "incomplete")?,
        downloaded: count(&reply, "downloaded")?,
        tracker_id: bytes(&reply, "tracker id")?.map(<[u8]>::to_vec),
        warning: bytes(&reply, "warning message")?.map(|text| String::from_utf8_lossy(text).into_owned()),
        peers: Vec::new(),
        peers6: Vec::new(),
    };
    match reply.get(b"peers") {
        None => {}
        Some(Value::Bytes(compact)) => success.peers = compact_peers("peers", compact)?,
        Some(Value::List(entries)) => peer_dicts(entries, &mut success),
        Some(_) => return Err(HttpReplyError::WrongType { key: "peers", expected: "a string or a list" }),
    }
    if let Some(compact) = bytes(&reply, "peers6")? {
        let mut peers6 = compact_peers("peers6", compact)?;
        peers6.truncate(MAX_REPLY_PEERS.saturating_sub(success.peers6.len()));
        success.peers6.append(&mut peers6);
    }
    Ok(HttpAnnounceReply::Success(success))
}

/// Parses the body of a scrape reply (BEP 48).
///
/// # Errors
///
/// As [`parse_announce_reply`], and no `files`, a key of `files` that is not 20 bytes, or an entry that is not a
/// dictionary.
pub fn parse_scrape_reply(body: &[u8]) -> Result<HttpScrapeReply, HttpReplyError> {
    let reply = top_level(body)?;
    if let Some(reason) = failure_reason(&reply)? {
        return Ok(HttpScrapeReply::Failure(reason));
    }
    let files = reply
        .get(b"files")
        .ok_or(HttpReplyError::MissingFiles)?
        .as_dict()
        .ok_or(HttpReplyError::WrongType { key: "files", expected: "a dictionary" })?;
    let mut entries = Vec::with_capacity(files.len());
    for (key, counts) in files {
        let info_hash = <[u8; 20]>::try_from(*key).map_err(|_| HttpReplyError::BadInfoHash(key.len()))?;
        if counts.as_dict().is_none() {
            return Err(HttpReplyError::WrongType { key: "files entry", expected: "a dictionary" });
        }
        let stats = TorrentStats {
            seeders: count(counts, "complete")?.unwrap_or(0),
            completed: count(counts, "downloaded")?.unwrap_or(0),
            leechers: count(counts, "incomplete")?.unwrap_or(0),
        };
        entries.push(ScrapeEntry { info_hash, stats });
    }
    Ok(HttpScrapeReply::Files(entries))
}

/// The body's one bencoded dictionary, after the size check.
fn top_level(body: &[u8]) -> Result<Value<'_>, HttpReplyError> {
    if body.len() > MAX_REPLY_LEN {
        return Err(HttpReplyError::TooLarge { len: body.len(), max: MAX_REPLY_LEN });
    }
    let (value, used) = bencode::decode(body)?;
    // Some trackers (PHP scripts, mostly) end the body with a newline.
    let trailing = body.get(used..).unwrap_or_default();
    if !trailing.iter().all(u8::is_ascii_whitespace) {
        return Err(HttpReplyError::TrailingData(trailing.len()));
    }
    if value.as_dict().is_none() {
        return Err(HttpReplyError::NotADictionary);
    }
    Ok(value)
}

fn failure_reason(reply: &Value<'_>) -> Result<Option<String>, HttpReplyError> {
    Ok(bytes(reply, "failure reason")?.map(|text| String::from_utf8_lossy(text).into_owned()))
}

/// The string under `key`, if present.
fn bytes<'a>(dict: &Value<'a>, key: &'static str) -> Result<Option<&'a [u8]>, HttpReplyError> {
    dict.get(key.as_bytes())
        .map(|value| value.as_bytes().ok_or(HttpReplyError::WrongType { key, expected: "a string" }))
        .transpose()
}

/// The integer under `key`, if present; it must fit a `u32` (seconds or peer counts).
fn count(dict: &Value<'_>, key: &'static str) -> Result<Option<u32>, HttpReplyError> {
    dict.get(key.as_bytes())
        .map(|value| {
            let value = value.as_int().ok_or(HttpReplyError::WrongType { key, expected: "an integer" })?;
            u32::try_from(value).map_err(|_| HttpReplyError::BadInteger { key, value })
        })
        .transpose()
}

/// Splits a compact peer string, keeping at most [`MAX_REPLY_PEERS`] entries.
fn compact_peers<A: CompactPeer>(key: &'static str, compact: &[u8]) -> Result<Vec<A>, HttpReplyError> {
    if !compact.len().is_multiple_of(A::LEN) {
        return Err(HttpReplyError::PeersLength { key, len: compact.len(), entry_len: A::LEN });
    }
    Ok(compact.chunks_exact(A::LEN).take(MAX_REPLY_PEERS).filter_map(A::read_compact).collect())
}

/// Reads BEP 3's original peer list, `[{"peer id": …, "ip": …, "port": …}, …]`, skipping entries without a
/// literal IP address and a port in 0..=65535 (host names are skipped: resolving them is I/O, and no tracker
/// we know of sends them to the public).
fn peer_dicts(entries: &[Value<'_>], success: &mut HttpAnnounceSuccess) {
    for entry in entries {
        if success.peers.len() >= MAX_REPLY_PEERS && success.peers6.len() >= MAX_REPLY_PEERS {
            break;
        }
        let ip = entry.get(b"ip").and_then(Value::as_str).and_then(|text| text.parse::<IpAddr>().ok());
        let port = entry.get(b"port").and_then(Value::as_int).and_then(|port| u16::try_from(port).ok());
        match (ip, port) {
            (Some(IpAddr::V4(ip)), Some(port)) if success.peers.len() < MAX_REPLY_PEERS => {
                success.peers.push(SocketAddrV4::new(ip, port));
            }
            (Some(IpAddr::V6(ip)), Some(port)) if success.peers6.len() < MAX_REPLY_PEERS => {
                success.peers6.push(SocketAddrV6::new(ip, port, 0, 0));
            }
            _ => {}
        }
    }
}
