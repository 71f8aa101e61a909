//! The tracker's side of the query: announce and scrape parameters read from the raw query string.
//!
//! Each field is percent-decoded on its own, after the split on `&` and `=`, so that an escaped `%26` inside a
//! binary `info_hash` stays a byte of the hash. Fields the tracker does not read (`supportcrypto`, `corrupt`,
//! `redundant`, `no_peer_id`, BEP 7's `ipv4`/`ipv6`, anything new) are skipped without being decoded.

use std::net::IpAddr;

use crate::AnnounceEvent;
use crate::http::MAX_TOKEN_LEN;
use crate::http::error::HttpQueryError;
use crate::http::percent::{self, BadEscape};

/// An announce as the tracker reads it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HttpAnnounceRequest {
    /// SHA-1 of the torrent's info dictionary.
    pub info_hash: [u8; 20],
    /// The client's peer id.
    pub peer_id: [u8; 20],
    /// The client's listening port, 1..=65535; list this with the connection's source address.
    pub port: u16,
    /// Bytes uploaded so far in this session.
    pub uploaded: u64,
    /// Bytes downloaded so far in this session.
    pub downloaded: u64,
    /// Bytes still missing; 0 means a seeder.
    pub left: u64,
    /// `started`, `completed` or `stopped`; absent, empty, `empty` and BEP 21's `paused` read as a regular
    /// announce, which is how a tracker treats them.
    pub event: AnnounceEvent,
    /// `compact=1`: the client takes BEP 23 peer strings. False when absent or `0`; a tracker that only sends
    /// compact peers (as [`crate::http::encode_announce_reply`] does) may refuse it or answer compact anyway, as
    /// most trackers do.
    pub compact: bool,
    /// Peers wanted; `None` when absent. Values beyond `u32::MAX` read as `u32::MAX`; the tracker caps it.
    pub numwant: Option<u32>,
    /// The client's `key`, percent-decoded, at most [`MAX_TOKEN_LEN`] bytes. Opaque: libtorrent sends 8 hex
    /// digits, Transmission other text.
    pub key: Option<Vec<u8>>,
    /// The `trackerid` the client echoes from an earlier reply, at most [`MAX_TOKEN_LEN`] bytes.
    pub tracker_id: Option<Vec<u8>>,
    /// The `ip` field when [`IpParam::Accept`] was given; always `None` with [`IpParam::Ignore`].
    pub ip: Option<IpAddr>,
}

/// Whether to read the client-supplied `ip` field.
///
/// An open tracker should ignore it (the default): anyone could list a victim's address and have the swarm
/// connect to it. It is only safe behind a trusted proxy or on a private network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IpParam {
    /// Skip `ip` without decoding it.
    #[default]
    Ignore,
    /// Read `ip` as an IPv4 or IPv6 address; anything else is [`HttpQueryError::BadIp`].
    Accept,
}

/// Parses the raw query string of an announce: the bytes after `?` in the request target, not decoded.
///
/// `info_hash`, `peer_id`, `port`, `uploaded`, `downloaded` and `left` are required (as aquatic requires them):
/// guessing a missing `left` would list a leecher as a seeder. A field the tracker reads that appears twice is
/// refused. The request line should be bounded by the HTTP layer; nothing here allocates more than the query's
/// own length.
///
/// # Errors
///
/// The first [`HttpQueryError`] found, naming the field.
pub fn parse_announce_query(raw_query: &[u8], ip_param: IpParam) -> Result<HttpAnnounceRequest, HttpQueryError> {
    let mut fields = Fields::default();
    for (key, value) in percent::pairs(raw_query) {
        let slot = match key {
            b"info_hash" => &mut fields.info_hash,
            b"peer_id" => &mut fields.peer_id,
            b"port" => &mut fields.port,
            b"uploaded" => &mut fields.uploaded,
            b"downloaded" => &mut fields.downloaded,
            b"left" => &mut fields.left,
            b"event" => &mut fields.event,
            b"compact" => &mut fields.compact,
            b"numwant" => &mut fields.numwant,
            b"key" => &mut fields.key,
            b"trackerid" => &mut fields.tracker_id,
            b"ip" if ip_param == IpParam::Accept => &mut fields.ip,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(HttpQueryError::RepeatedField(field_name(key)));
        }
    }

    let port = number("port", required("port", fields.port)?)?;
    Ok(HttpAnnounceRequest {
        info_hash: hash("info_hash", required("info_hash", fields.info_hash)?)?,
        peer_id: hash("peer_id", required("peer_id", fields.peer_id)?)?,
        port: u16::try_from(port).ok().filter(|&port| port != 0).ok_or(HttpQueryError::BadPort(port))?,
        uploaded: number("uploaded", required("uploaded", fields.uploaded)?)?,
        downloaded: number("downloaded", required("downloaded", fields.downloaded)?)?,
        left: number("left", required("left", fields.left)?)?,
        event: fields.event.map_or(Ok(AnnounceEvent::None), event)?,
        compact: fields.compact.map_or(Ok(false), |raw| flag("compact", raw))?,
        numwant: fields
            .numwant
            .map(|raw| number("numwant", raw).map(|n| u32::try_from(n).unwrap_or(u32::MAX)))
            .transpose()?,
        key: fields.key.map(|raw| token("key", raw)).transpose()?,
        tracker_id: fields.tracker_id.map(|raw| token("trackerid", raw)).transpose()?,
        ip: fields.ip.map(ip).transpose()?,
    })
}

/// Parses the raw query string of a scrape into its info-hashes, in order, each once.
///
/// No `info_hash` at all gives an empty list: BEP 48's "full scrape" of every torrent, which the tracker may
/// refuse. More than `max_hashes` `info_hash` fields (repeats included) is refused as a whole; pass the same
/// limit as the UDP front end so that both accept the same scrapes (16 + 20 × 74 bytes fill one 1500-byte
/// packet). Repeats are dropped rather than refused, so that the reply never holds one key twice.
///
/// # Errors
///
/// [`HttpQueryError::TooManyInfoHashes`], or an `info_hash` that is badly escaped or not 20 bytes.
pub fn parse_scrape_query(raw_query: &[u8], max_hashes: usize) -> Result<Vec<[u8; 20]>, HttpQueryError> {
    let mut hashes: Vec<[u8; 20]> = Vec::new();
    let mut seen = 0;
    for (key, value) in percent::pairs(raw_query) {
        if key != b"info_hash" {
            continue;
        }
        seen += 1;
        if seen > max_hashes {
            return Err(HttpQueryError::TooManyInfoHashes { max: max_hashes });
        }
        let info_hash = hash("info_hash", value)?;
        // At most `max_hashes` entries, so a linear search stays cheap.
        if !hashes.contains(&info_hash) {
            hashes.push(info_hash);
        }
    }
    Ok(hashes)
}

/// The raw values of the fields an announce reads, before decoding.
#[derive(Default)]
struct Fields<'a> {
    info_hash: Option<&'a [u8]>,
    peer_id: Option<&'a [u8]>,
    port: Option<&'a [u8]>,
    uploaded: Option<&'a [u8]>,
    downloaded: Option<&'a [u8]>,
    left: Option<&'a [u8]>,
    event: Option<&'a [u8]>,
    compact: Option<&'a [u8]>,
    numwant: Option<&'a [u8]>,
    key: Option<&'a [u8]>,
    tracker_id: Option<&'a [u8]>,
    ip: Option<&'a [u8]>,
}

/// The static name of a key matched in [`parse_announce_query`], for its error.
fn field_name(key: &[u8]) -> &'static str {
    const NAMES: [&str; 12] = [
        "info_hash",
        "peer_id",
        "port",
        "uploaded",
        "downloaded",
        "left",
        "event",
        "compact",
        "numwant",
        "key",
        "trackerid",
        "ip",
    ];
    NAMES.into_iter().find(|name| name.as_bytes() == key).unwrap_or("a field")
}

fn required<'a>(field: &'static str, raw: Option<&'a [u8]>) -> Result<&'a [u8], HttpQueryError> {
    raw.ok_or(HttpQueryError::MissingField(field))
}

fn hash(field: &'static str, raw: &[u8]) -> Result<[u8; 20], HttpQueryError> {
    percent::decode_array(raw).map_err(|error| match error {
        Ok(got) => HttpQueryError::WrongLength { field, expected: 20, got },
        Err(BadEscape) => HttpQueryError::BadEscape(field),
    })
}

/// A decimal `u64`: digits only (after percent-decoding), at least one, no overflow.
fn number(field: &'static str, raw: &[u8]) -> Result<u64, HttpQueryError> {
    let mut value: Option<u64> = Some(0);
    let mut digits = 0_usize;
    percent::decode_each(raw, |byte| {
        digits += 1;
        value = match (value, char::from(byte).to_digit(10)) {
            (Some(value), Some(digit)) => value.checked_mul(10).and_then(|value| value.checked_add(u64::from(digit))),
            _ => None,
        };
    })
    .map_err(|BadEscape| HttpQueryError::BadEscape(field))?;
    value.filter(|_| digits > 0).ok_or(HttpQueryError::BadNumber(field))
}

fn event(raw: &[u8]) -> Result<AnnounceEvent, HttpQueryError> {
    let name = percent::decode(raw).map_err(|BadEscape| HttpQueryError::BadEscape("event"))?;
    match name.as_slice() {
        b"started" => Ok(AnnounceEvent::Started),
        b"completed" => Ok(AnnounceEvent::Completed),
        b"stopped" => Ok(AnnounceEvent::Stopped),
        b"" | b"empty" | b"paused" => Ok(AnnounceEvent::None),
        _ => Err(HttpQueryError::UnknownEvent),
    }
}

fn flag(field: &'static str, raw: &[u8]) -> Result<bool, HttpQueryError> {
    match number(field, raw) {
        Ok(0) => Ok(false),
        Ok(1) => Ok(true),
        Ok(_) | Err(HttpQueryError::BadNumber(_)) => Err(HttpQueryError::BadFlag(field)),
        Err(other) => Err(other),
    }
}

fn token(field: &'static str, raw: &[u8]) -> Result<Vec<u8>, HttpQueryError> {
    // Every decoded byte takes at least one raw byte, at most three: anything over 3 × the limit is too long
    // without decoding it.
    if raw.len() > 3 * MAX_TOKEN_LEN {
        return Err(HttpQueryError::TooLong { field, max: MAX_TOKEN_LEN });
    }
    let token = percent::decode(raw).map_err(|BadEscape| HttpQueryError::BadEscape(field))?;
    if token.len() > MAX_TOKEN_LEN {
        return Err(HttpQueryError::TooLong { field, max: MAX_TOKEN_LEN });
    }
    Ok(token)
}

fn ip(raw: &[u8]) -> Result<IpAddr, HttpQueryError> {
    let text = percent::decode(raw).map_err(|BadEscape| HttpQueryError::BadEscape("ip"))?;
    std::str::from_utf8(&text).ok().and_then(|text| text.parse().ok()).ok_or(HttpQueryError::BadIp)
}
