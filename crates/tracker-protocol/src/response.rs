//! BEP 15 responses (tracker to client): connect, announce, scrape and error.
//!
//! Writing is the tracker's hot path: every writer appends to a caller-owned `Vec<u8>` (cleared
//! and reused per packet) and takes peers and scrape entries as any iterator, so the server can
//! stream them out of its swarm without collecting. Parsing is the client's side and returns
//! owned lists.
//!
//! Layouts (byte offset, type, field; all integers big-endian):
//! ```text
//! connect    0 u32  action = 0
//!            4 u32  transaction_id
//!            8 u64  connection_id                          16 bytes
//!
//! announce   0 u32  action = 1
//!            4 u32  transaction_id
//!            8 u32  interval (seconds until the next regular announce)
//!           12 u32  leechers
//!           16 u32  seeders
//!           20      peers to the end of the packet, each
//!                     IPv4: [4] address, u16 port          6 bytes
//!                     IPv6: [16] address, u16 port        18 bytes
//!
//! scrape     0 u32  action = 2
//!            4 u32  transaction_id
//!            8      per info-hash of the request, in order:
//!                     u32 seeders, u32 completed, u32 leechers   12 bytes
//!
//! error      0 u32  action = 3
//!            4 u32  transaction_id
//!            8      message to the end of the packet
//! ```
//! The packet does not say whether its peers are IPv4 or IPv6: that follows the address family
//! the request was sent over, so the client names it as the type parameter of
//! [`Response::parse`]. BEP 15 types the counts as signed 32-bit; they are never negative, so
//! they are `u32` here.

use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use crate::error::ResponseParseError;
use crate::wire::{Reader, Short};
use crate::{Action, ConnectionId, TransactionId};

/// Length of the header every response starts with: action and transaction id.
pub const RESPONSE_HEADER_LEN: usize = 8;
/// Length of a connect response.
pub const CONNECT_RESPONSE_LEN: usize = 16;
/// Length of an announce response before its peers.
pub const ANNOUNCE_RESPONSE_HEADER_LEN: usize = 20;
/// Length of one scrape response entry (seeders, completed, leechers).
pub const TORRENT_STATS_LEN: usize = 12;

/// A peer address in BEP 15 compact form: the address bytes, then the port.
///
/// Implemented for [`SocketAddrV4`] (6 bytes) and [`SocketAddrV6`] (18 bytes).
pub trait CompactPeer: Copy {
    /// Bytes per peer on the wire.
    const LEN: usize;

    /// Appends the compact form to `out`.
    fn write_compact(self, out: &mut Vec<u8>);

    /// Reads the compact form from the start of `bytes`, or `None` if it is shorter than `LEN`.
    fn read_compact(bytes: &[u8]) -> Option<Self>;
}

impl CompactPeer for SocketAddrV4 {
    const LEN: usize = 6;

    fn write_compact(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.ip().octets());
        out.extend_from_slice(&self.port().to_be_bytes());
    }

    fn read_compact(bytes: &[u8]) -> Option<Self> {
        let (ip, rest) = bytes.split_first_chunk::<4>()?;
        let port = rest.first_chunk::<2>()?;
        Some(Self::new(Ipv4Addr::from(*ip), u16::from_be_bytes(*port)))
    }
}

impl CompactPeer for SocketAddrV6 {
    const LEN: usize = 18;

    fn write_compact(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.ip().octets());
        out.extend_from_slice(&self.port().to_be_bytes());
    }

    fn read_compact(bytes: &[u8]) -> Option<Self> {
        let (ip, rest) = bytes.split_first_chunk::<16>()?;
        let port = rest.first_chunk::<2>()?;
        // Flow info and scope id are not on the wire.
        Some(Self::new(Ipv6Addr::from(*ip), u16::from_be_bytes(*port), 0, 0))
    }
}

/// Size of an announce response carrying `peers` peers of type `A`.
#[must_use]
pub const fn announce_response_len<A: CompactPeer>(peers: usize) -> usize {
    ANNOUNCE_RESPONSE_HEADER_LEN + peers * A::LEN
}

/// The most peers of type `A` an announce response can carry within `payload` bytes.
///
/// For the tracker's numwant cap. With opentracker's budget of about 1220 bytes (1200 bytes of
/// peers) this gives 200 IPv4 or 66 IPv6 peers, which stays under common path MTUs.
#[must_use]
pub const fn max_peers_within<A: CompactPeer>(payload: usize) -> usize {
    payload.saturating_sub(ANNOUNCE_RESPONSE_HEADER_LEN) / A::LEN
}

/// Size of a scrape response with `torrents` entries.
#[must_use]
pub const fn scrape_response_len(torrents: usize) -> usize {
    RESPONSE_HEADER_LEN + torrents * TORRENT_STATS_LEN
}

fn write_header(action: Action, transaction_id: TransactionId, out: &mut Vec<u8>) {
    out.extend_from_slice(&(action as u32).to_be_bytes());
    out.extend_from_slice(&transaction_id.0.to_be_bytes());
}

/// A response from the tracker, as parsed by the client; `A` is the peer address family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response<'a, A> {
    /// Action 0: the connection id to use in the next requests.
    Connect(ConnectResponse),
    /// Action 1: swarm counts and peers.
    Announce(AnnounceResponse<Vec<A>>),
    /// Action 2: one entry per info-hash asked about.
    Scrape(ScrapeResponse<Vec<TorrentStats>>),
    /// Action 3: the tracker refused the request.
    Error(ErrorResponse<'a>),
}

impl<'a, A: CompactPeer> Response<'a, A> {
    /// Parses one response packet whose peers, if any, are of type `A`
    /// ([`SocketAddrV4`] or [`SocketAddrV6`], per the socket the request went out on).
    ///
    /// Bytes after a connect response are ignored; everything after the headers of the other
    /// responses is their body.
    ///
    /// # Errors
    ///
    /// [`ResponseParseError`] if the packet is shorter than its message's fixed part, has an
    /// unknown action, or has a peer or scrape section that is not a whole number of entries.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ResponseParseError> {
        let mut reader = Reader::new(bytes, RESPONSE_HEADER_LEN);
        let (action, transaction_id) = read_header(&mut reader)?;
        let transaction_id = TransactionId(transaction_id);
        match action {
            0 => {
                reader.require(CONNECT_RESPONSE_LEN);
                let connection_id = ConnectionId(reader.u64()?);
                Ok(Self::Connect(ConnectResponse { transaction_id, connection_id }))
            }
            1 => {
                reader.require(ANNOUNCE_RESPONSE_HEADER_LEN);
                let interval = reader.u32()?;
                let leechers = reader.u32()?;
                let seeders = reader.u32()?;
                let body = reader.rest();
                if !body.len().is_multiple_of(A::LEN) {
                    return Err(ResponseParseError::PeerListLength { len: body.len(), peer_len: A::LEN });
                }
                let peers = body
                    .chunks_exact(A::LEN)
                    .map(A::read_compact)
                    .collect::<Option<Vec<A>>>()
                    .ok_or(ResponseParseError::PeerListLength { len: body.len(), peer_len: A::LEN })?;
                Ok(Self::Announce(AnnounceResponse { transaction_id, interval, leechers, seeders, peers }))
            }
            2 => {
                let body = reader.rest();
                if !body.len().is_multiple_of(TORRENT_STATS_LEN) {
                    return Err(ResponseParseError::ScrapeListLength { len: body.len() });
                }
                let torrents =
                    body.chunks_exact(TORRENT_STATS_LEN).map(TorrentStats::read).collect::<Result<Vec<_>, Short>>()?;
                Ok(Self::Scrape(ScrapeResponse { transaction_id, torrents }))
            }
            3 => Ok(Self::Error(ErrorResponse {
                transaction_id,
                // Trackers send ASCII in practice; anything else is shown, not rejected.
                message: String::from_utf8_lossy(reader.rest()),
            })),
            other => Err(ResponseParseError::UnknownAction(other)),
        }
    }

    /// Appends the response's bytes to `out` (clear `out` first to reuse it for a new packet).
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Self::Connect(response) => response.write(out),
            Self::Announce(response) => {
                let by_value = AnnounceResponse {
                    transaction_id: response.transaction_id,
                    interval: response.interval,
                    leechers: response.leechers,
                    seeders: response.seeders,
                    peers: response.peers.iter().copied(),
                };
                by_value.write(out);
            }
            Self::Scrape(response) => {
                let by_value = ScrapeResponse {
                    transaction_id: response.transaction_id,
                    torrents: response.torrents.iter().copied(),
                };
                by_value.write(out);
            }
            Self::Error(response) => response.write(out),
        }
    }

    /// Detaches an error message from the packet buffer, so the response can outlive it.
    #[must_use]
    pub fn into_owned(self) -> Response<'static, A> {
        match self {
            Self::Connect(response) => Response::Connect(response),
            Self::Announce(response) => Response::Announce(response),
            Self::Scrape(response) => Response::Scrape(response),
            Self::Error(response) => Response::Error(response.into_owned()),
        }
    }

    /// The transaction id, to match against the request's.
    #[must_use]
    pub fn transaction_id(&self) -> TransactionId {
        match self {
            Self::Connect(response) => response.transaction_id,
            Self::Announce(response) => response.transaction_id,
            Self::Scrape(response) => response.transaction_id,
            Self::Error(response) => response.transaction_id,
        }
    }
}

fn read_header(reader: &mut Reader<'_>) -> Result<(u32, u32), Short> {
    Ok((reader.u32()?, reader.u32()?))
}

/// The answer to a connect request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectResponse {
    /// Echoed from the request.
    pub transaction_id: TransactionId,
    /// The id the client must put in its next announce and scrape requests.
    pub connection_id: ConnectionId,
}

impl ConnectResponse {
    /// Appends the 16-byte response to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        write_header(Action::Connect, self.transaction_id, out);
        out.extend_from_slice(&self.connection_id.0.to_be_bytes());
    }
}

/// The answer to an announce request.
///
/// `P` is the peer list: any `IntoIterator` of [`CompactPeer`]s when writing (e.g.
/// `slice.iter().copied()`), a `Vec` when parsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AnnounceResponse<P> {
    /// Echoed from the request.
    pub transaction_id: TransactionId,
    /// Seconds the client should wait before its next regular announce.
    pub interval: u32,
    /// Peers still downloading.
    pub leechers: u32,
    /// Peers with the whole torrent.
    pub seeders: u32,
    /// Peers for the client to contact, all of one address family.
    pub peers: P,
}

impl<P> AnnounceResponse<P>
where
    P: IntoIterator,
    P::Item: CompactPeer,
{
    /// Appends the 20-byte header and every peer to `out`.
    ///
    /// Writes however many peers `peers` yields; capping them to fit a UDP payload is the
    /// caller's job (see [`max_peers_within`]).
    pub fn write(self, out: &mut Vec<u8>) {
        write_header(Action::Announce, self.transaction_id, out);
        out.extend_from_slice(&self.interval.to_be_bytes());
        out.extend_from_slice(&self.leechers.to_be_bytes());
        out.extend_from_slice(&self.seeders.to_be_bytes());
        for peer in self.peers {
            peer.write_compact(out);
        }
    }
}

/// Swarm counts for one torrent, as in a scrape response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TorrentStats {
    /// Peers with the whole torrent.
    pub seeders: u32,
    /// Times the tracker has seen a download complete.
    pub completed: u32,
    /// Peers still downloading.
    pub leechers: u32,
}

impl TorrentStats {
    fn write(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.seeders.to_be_bytes());
        out.extend_from_slice(&self.completed.to_be_bytes());
        out.extend_from_slice(&self.leechers.to_be_bytes());
    }

    fn read(bytes: &[u8]) -> Result<Self, Short> {
        let mut reader = Reader::new(bytes, TORRENT_STATS_LEN);
        Ok(Self { seeders: reader.u32()?, completed: reader.u32()?, leechers: reader.u32()? })
    }
}

/// The answer to a scrape request: one entry per requested info-hash, in request order.
///
/// `S` is any `IntoIterator` of [`TorrentStats`] when writing, a `Vec` when parsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScrapeResponse<S> {
    /// Echoed from the request.
    pub transaction_id: TransactionId,
    /// Counts for each info-hash of the request; unknown torrents get all zeros.
    pub torrents: S,
}

impl<S> ScrapeResponse<S>
where
    S: IntoIterator<Item = TorrentStats>,
{
    /// Appends the 8-byte header and 12 bytes per torrent to `out`.
    pub fn write(self, out: &mut Vec<u8>) {
        write_header(Action::Scrape, self.transaction_id, out);
        for stats in self.torrents {
            stats.write(out);
        }
    }
}

/// An error response: the tracker explains why it will not serve a request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ErrorResponse<'a> {
    /// Echoed from the request.
    pub transaction_id: TransactionId,
    /// Human-readable reason. Borrowed when writing a fixed text (see
    /// [`crate::RequestError::reply_message`]) so the tracker need not allocate.
    pub message: Cow<'a, str>,
}

impl ErrorResponse<'_> {
    /// Appends the 8-byte header and the message to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        write_header(Action::Error, self.transaction_id, out);
        out.extend_from_slice(self.message.as_bytes());
    }

    /// Detaches the message from the packet buffer.
    #[must_use]
    pub fn into_owned(self) -> ErrorResponse<'static> {
        ErrorResponse { transaction_id: self.transaction_id, message: Cow::Owned(self.message.into_owned()) }
    }
}
