//! BEP 15 requests (client to tracker): connect, announce and scrape.
//!
//! Parsing runs on the tracker's hot path, so it never allocates: the announce keeps its BEP 41
//! option bytes borrowed and the scrape keeps its info-hashes borrowed. Writing (the client's
//! side) appends to a caller-owned buffer.
//!
//! Layouts (byte offset, type, field; all integers big-endian):
//! ```text
//! connect    0 u64  protocol_id = 0x41727101980
//!            8 u32  action = 0
//!           12 u32  transaction_id                         16 bytes
//!
//! announce   0 u64  connection_id
//!            8 u32  action = 1
//!           12 u32  transaction_id
//!           16 [20] info_hash
//!           36 [20] peer_id
//!           56 u64  downloaded
//!           64 u64  left
//!           72 u64  uploaded
//!           80 u32  event: 0 none, 1 completed, 2 started, 3 stopped
//!           84 u32  ip: 0 = use the packet's source address
//!           88 u32  key
//!           92 i32  num_want: -1 = the tracker's default
//!           96 u16  port                                   98 bytes, then BEP 41 options
//!
//! scrape     0 u64  connection_id
//!            8 u32  action = 2
//!           12 u32  transaction_id
//!           16 [20] info_hash, N >= 1 times                16 + 20 N bytes
//! ```
//! BEP 15 says not to assume packets have a certain size, so bytes after the fixed part are
//! accepted everywhere: kept as options on an announce, ignored on connect, and on a scrape a
//! trailing piece shorter than 20 bytes is ignored.

use std::iter::FusedIterator;
use std::net::Ipv4Addr;
use std::slice::ChunksExact;

use crate::error::{RequestError, RequestParseError};
use crate::options::AnnounceOptions;
use crate::wire::{Reader, Short};
use crate::{Action, ConnectionId, INFO_HASH_LEN, PROTOCOL_ID, TransactionId};

/// Length of the header every request starts with: connection id (or protocol id), action,
/// transaction id.
pub const REQUEST_HEADER_LEN: usize = 16;
/// Length of a connect request.
pub const CONNECT_REQUEST_LEN: usize = 16;
/// Length of the fixed part of an announce request, before any BEP 41 options.
pub const ANNOUNCE_REQUEST_LEN: usize = 98;
/// Length of a scrape request's header, before its info-hashes.
pub const SCRAPE_REQUEST_HEADER_LEN: usize = 16;

/// A request from a client to the tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// Action 0: ask for a connection id.
    Connect(ConnectRequest),
    /// Action 1: report progress and ask for peers.
    Announce(AnnounceRequest<'a>),
    /// Action 2: ask for swarm counts of one or more torrents.
    Scrape(ScrapeRequest<'a>),
}

impl<'a> Request<'a> {
    /// Parses one request packet without allocating.
    ///
    /// A scrape listing more than `max_scrape_hashes` info-hashes is refused with
    /// [`RequestError::TooManyInfoHashes`] (a sendable error) rather than cut short, so that a
    /// client never mistakes a partial answer for a full one. aquatic's default limit is 70;
    /// opentracker answers up to 75.
    ///
    /// # Errors
    ///
    /// [`RequestParseError::Unsendable`] if the packet is shorter than the 16-byte header or is a
    /// connect request without the protocol id; [`RequestParseError::Sendable`] for every
    /// problem found after the header (unknown action or event, short announce, bad scrape).
    pub fn parse(bytes: &'a [u8], max_scrape_hashes: usize) -> Result<Self, RequestParseError> {
        let mut reader = Reader::new(bytes, REQUEST_HEADER_LEN);
        let (first, action, transaction_id) =
            read_header(&mut reader).map_err(|short| RequestParseError::Unsendable(short.into()))?;
        let transaction_id = TransactionId(transaction_id);

        if action == Action::Connect as u32 {
            // A connect has no connection id yet, so there is nothing to validate: answering a
            // malformed one with an error would let anyone use us as a reflector.
            return if first == PROTOCOL_ID {
                Ok(Self::Connect(ConnectRequest { transaction_id }))
            } else {
                Err(RequestParseError::Unsendable(RequestError::BadProtocolId(first)))
            };
        }

        let connection_id = ConnectionId(first);
        let body = if action == Action::Announce as u32 {
            parse_announce(connection_id, transaction_id, reader).map(Self::Announce)
        } else if action == Action::Scrape as u32 {
            parse_scrape(connection_id, transaction_id, reader, max_scrape_hashes).map(Self::Scrape)
        } else {
            Err(RequestError::UnknownAction(action))
        };
        body.map_err(|kind| RequestParseError::Sendable { connection_id, transaction_id, kind })
    }

    /// Appends the request's bytes to `out` (clear `out` first to reuse it for a new packet).
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Self::Connect(request) => request.write(out),
            Self::Announce(request) => request.write(out),
            Self::Scrape(request) => request.write(out),
        }
    }

    /// The transaction id, to be echoed in the response.
    #[must_use]
    pub fn transaction_id(&self) -> TransactionId {
        match self {
            Self::Connect(request) => request.transaction_id,
            Self::Announce(request) => request.transaction_id,
            Self::Scrape(request) => request.transaction_id,
        }
    }

    /// The connection id to validate, or `None` for a connect request, which has none yet.
    #[must_use]
    pub fn connection_id(&self) -> Option<ConnectionId> {
        match self {
            Self::Connect(_) => None,
            Self::Announce(request) => Some(request.connection_id),
            Self::Scrape(request) => Some(request.connection_id),
        }
    }
}

fn read_header(reader: &mut Reader<'_>) -> Result<(u64, u32, u32), Short> {
    Ok((reader.u64()?, reader.u32()?, reader.u32()?))
}

/// A connect request: the only request sent without a connection id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectRequest {
    /// Chosen by the client; echoed in the response.
    pub transaction_id: TransactionId,
}

impl ConnectRequest {
    /// Appends the 16-byte request to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&PROTOCOL_ID.to_be_bytes());
        out.extend_from_slice(&(Action::Connect as u32).to_be_bytes());
        out.extend_from_slice(&self.transaction_id.0.to_be_bytes());
    }
}

/// The announce event field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AnnounceEvent {
    /// 0: a regular interval announce.
    #[default]
    None = 0,
    /// 1: the download just finished.
    Completed = 1,
    /// 2: the download just started.
    Started = 2,
    /// 3: the client is leaving the swarm.
    Stopped = 3,
}

impl AnnounceEvent {
    /// The event with wire value `value`, if it is one of 0..=3.
    #[must_use]
    pub fn from_u32(value: u32) -> Option<Self> {
        match value {
            0 => Some(Self::None),
            1 => Some(Self::Completed),
            2 => Some(Self::Started),
            3 => Some(Self::Stopped),
            _ => None,
        }
    }
}

/// An announce request: the client's progress in one torrent, and a request for peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AnnounceRequest<'a> {
    /// From an earlier connect response; the tracker must check it before trusting anything else.
    pub connection_id: ConnectionId,
    /// Chosen by the client; echoed in the response.
    pub transaction_id: TransactionId,
    /// SHA-1 of the torrent's bencoded info dictionary.
    pub info_hash: [u8; 20],
    /// The client's 20-byte peer id.
    pub peer_id: [u8; 20],
    /// Bytes downloaded so far in this session.
    pub downloaded: u64,
    /// Bytes still missing; 0 means the client is a seeder.
    pub left: u64,
    /// Bytes uploaded so far in this session.
    pub uploaded: u64,
    /// Why the client announces now.
    pub event: AnnounceEvent,
    /// The IPv4 address the client asks to be listed under; `None` (wire value 0) means "use the
    /// packet's source address". Writing `Some(0.0.0.0)` also sends 0, which parses as `None`.
    pub ip_address: Option<Ipv4Addr>,
    /// A random value the client keeps across announces, to recognise it if its address changes.
    pub key: u32,
    /// Peers wanted; negative (normally -1) asks for the tracker's default.
    pub num_want: i32,
    /// The client's listening port; the tracker lists this, never the UDP source port.
    pub port: u16,
    /// BEP 41 option bytes after the fixed 98 bytes, kept as received.
    pub options: AnnounceOptions<'a>,
}

impl AnnounceRequest<'_> {
    /// `num_want` as a count, or `default` when the client asked for the tracker's default.
    ///
    /// The tracker should still cap the result so that the response fits one UDP payload; see
    /// [`crate::max_peers_within`].
    #[must_use]
    pub fn num_want_or(&self, default: u32) -> u32 {
        u32::try_from(self.num_want).unwrap_or(default)
    }

    /// Appends the 98-byte fixed part and then the option bytes to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        let ip = self.ip_address.map_or(0, u32::from);
        out.extend_from_slice(&self.connection_id.0.to_be_bytes());
        out.extend_from_slice(&(Action::Announce as u32).to_be_bytes());
        out.extend_from_slice(&self.transaction_id.0.to_be_bytes());
        out.extend_from_slice(&self.info_hash);
        out.extend_from_slice(&self.peer_id);
        out.extend_from_slice(&self.downloaded.to_be_bytes());
        out.extend_from_slice(&self.left.to_be_bytes());
        out.extend_from_slice(&self.uploaded.to_be_bytes());
        out.extend_from_slice(&(self.event as u32).to_be_bytes());
        out.extend_from_slice(&ip.to_be_bytes());
        out.extend_from_slice(&self.key.to_be_bytes());
        out.extend_from_slice(&self.num_want.to_be_bytes());
        out.extend_from_slice(&self.port.to_be_bytes());
        out.extend_from_slice(self.options.as_bytes());
    }
}

fn parse_announce(
    connection_id: ConnectionId,
    transaction_id: TransactionId,
    mut reader: Reader<'_>,
) -> Result<AnnounceRequest<'_>, RequestError> {
    reader.require(ANNOUNCE_REQUEST_LEN);
    let info_hash = reader.array()?;
    let peer_id = reader.array()?;
    let downloaded = reader.u64()?;
    let left = reader.u64()?;
    let uploaded = reader.u64()?;
    let event = reader.u32()?;
    let ip = reader.u32()?;
    let key = reader.u32()?;
    let num_want = reader.i32()?;
    let port = reader.u16()?;
    // Checked after the whole fixed part is read so that a short packet reports `TooShort`
    // whatever its event bytes happen to hold.
    let event = AnnounceEvent::from_u32(event).ok_or(RequestError::UnknownEvent(event))?;
    Ok(AnnounceRequest {
        connection_id,
        transaction_id,
        info_hash,
        peer_id,
        downloaded,
        left,
        uploaded,
        event,
        ip_address: (ip != 0).then(|| Ipv4Addr::from(ip)),
        key,
        num_want,
        port,
        options: AnnounceOptions::from_bytes(reader.rest()),
    })
}

/// A scrape request: swarm counts for one or more torrents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScrapeRequest<'a> {
    /// From an earlier connect response; the tracker must check it before answering.
    pub connection_id: ConnectionId,
    /// Chosen by the client; echoed in the response.
    pub transaction_id: TransactionId,
    /// The torrents asked about, in the order the response must follow.
    pub info_hashes: InfoHashes<'a>,
}

impl ScrapeRequest<'_> {
    /// Appends the 16-byte header and the info-hashes to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.connection_id.0.to_be_bytes());
        out.extend_from_slice(&(Action::Scrape as u32).to_be_bytes());
        out.extend_from_slice(&self.transaction_id.0.to_be_bytes());
        out.extend_from_slice(self.info_hashes.as_bytes());
    }
}

fn parse_scrape(
    connection_id: ConnectionId,
    transaction_id: TransactionId,
    reader: Reader<'_>,
    max_scrape_hashes: usize,
) -> Result<ScrapeRequest<'_>, RequestError> {
    let body = reader.rest();
    let count = body.len() / INFO_HASH_LEN;
    if count == 0 {
        return Err(RequestError::NoInfoHashes);
    }
    if count > max_scrape_hashes {
        return Err(RequestError::TooManyInfoHashes { max: max_scrape_hashes, got: count });
    }
    // Drop a trailing partial hash: BEP 15 asks us not to insist on exact sizes.
    let (hashes, _partial) = body.split_at(count * INFO_HASH_LEN);
    Ok(ScrapeRequest { connection_id, transaction_id, info_hashes: InfoHashes { bytes: hashes } })
}

/// A borrowed list of 20-byte info-hashes (the body of a scrape request).
///
/// Holds the packet's bytes rather than a `Vec<[u8; 20]>` so that parsing a scrape allocates
/// nothing; iterate to get each hash by value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct InfoHashes<'a> {
    /// Invariant: the length is a multiple of 20.
    bytes: &'a [u8],
}

impl<'a> InfoHashes<'a> {
    /// Borrows a list of hashes, e.g. for a client writing a scrape request.
    #[must_use]
    pub fn new(hashes: &'a [[u8; 20]]) -> Self {
        Self { bytes: hashes.as_flattened() }
    }

    /// The number of hashes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.bytes.len() / INFO_HASH_LEN
    }

    /// Whether the list is empty (never true for a parsed request).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The hashes back to back, as on the wire.
    #[must_use]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The `index`th hash, if there is one.
    #[must_use]
    pub fn get(&self, index: usize) -> Option<[u8; 20]> {
        self.iter().nth(index)
    }

    /// Iterates over the hashes in order.
    #[must_use]
    pub fn iter(&self) -> InfoHashIter<'a> {
        InfoHashIter { chunks: self.bytes.chunks_exact(INFO_HASH_LEN) }
    }
}

impl<'a> IntoIterator for &InfoHashes<'a> {
    type Item = [u8; 20];
    type IntoIter = InfoHashIter<'a>;

    fn into_iter(self) -> InfoHashIter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for InfoHashes<'a> {
    type Item = [u8; 20];
    type IntoIter = InfoHashIter<'a>;

    fn into_iter(self) -> InfoHashIter<'a> {
        self.iter()
    }
}

/// Iterator over [`InfoHashes`], yielding each hash by value.
#[derive(Debug, Clone)]
pub struct InfoHashIter<'a> {
    chunks: ChunksExact<'a, u8>,
}

impl Iterator for InfoHashIter<'_> {
    type Item = [u8; 20];

    fn next(&mut self) -> Option<[u8; 20]> {
        // `chunks_exact(20)` only yields 20-byte chunks, so the `first_chunk` always succeeds.
        self.chunks.next()?.first_chunk().copied()
    }

    fn nth(&mut self, n: usize) -> Option<[u8; 20]> {
        self.chunks.nth(n)?.first_chunk().copied()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.chunks.size_hint()
    }
}

impl ExactSizeIterator for InfoHashIter<'_> {}

impl FusedIterator for InfoHashIter<'_> {}
