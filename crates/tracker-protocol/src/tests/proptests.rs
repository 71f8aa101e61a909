//! Round-trip properties: writing any message and parsing the bytes gives the message back, and
//! anything that parses writes back to something that parses to the same value.

use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

use crate::{
    AnnounceEvent, AnnounceOptions, AnnounceRequest, AnnounceResponse, ConnectRequest, ConnectResponse, ConnectionId,
    ErrorResponse, InfoHashes, Request, Response, ScrapeRequest, ScrapeResponse, TorrentStats, TransactionId,
};

const MAX_SCRAPE: usize = 70;

fn event() -> impl Strategy<Value = AnnounceEvent> {
    prop_oneof![
        Just(AnnounceEvent::None),
        Just(AnnounceEvent::Completed),
        Just(AnnounceEvent::Started),
        Just(AnnounceEvent::Stopped),
    ]
}

/// `Some(0.0.0.0)` is left out: it is written as 0, which means "no address" and reads as `None`.
fn ip_address() -> impl Strategy<Value = Option<Ipv4Addr>> {
    prop_oneof![Just(None), (1..=u32::MAX).prop_map(|ip| Some(Ipv4Addr::from(ip)))]
}

fn v4_peer() -> impl Strategy<Value = SocketAddrV4> {
    any::<(u32, u16)>().prop_map(|(ip, port)| SocketAddrV4::new(Ipv4Addr::from(ip), port))
}

fn v6_peer() -> impl Strategy<Value = SocketAddrV6> {
    any::<(u128, u16)>().prop_map(|(ip, port)| SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, 0))
}

fn stats() -> impl Strategy<Value = TorrentStats> {
    any::<(u32, u32, u32)>().prop_map(|(seeders, completed, leechers)| TorrentStats { seeders, completed, leechers })
}

/// BEP 41 option bytes: none, a URL path as libtorrent sends it (one chunk or several), or
/// anything at all (the reader is lenient, and the bytes are kept as received).
fn announce_options() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        vec(any::<u8>(), 0..600).prop_map(|url| {
            let mut options = Vec::new();
            AnnounceOptions::encode_url_data(&url, &mut options);
            options
        }),
        vec(any::<u8>(), 1..100),
    ]
}

/// The bytes of a valid request: connect, announce with or without options, or a scrape of one
/// to [`MAX_SCRAPE`] info-hashes.
fn valid_request_bytes() -> impl Strategy<Value = Vec<u8>> {
    let connect = any::<u32>().prop_map(|transaction_id| {
        let mut bytes = Vec::new();
        ConnectRequest { transaction_id: TransactionId(transaction_id) }.write(&mut bytes);
        bytes
    });
    let announce = (
        any::<(u64, u32, [u8; 20], [u8; 20])>(),
        any::<(u64, u64, u64)>(),
        event(),
        ip_address(),
        any::<(u32, i32, u16)>(),
        announce_options(),
    )
        .prop_map(|(ids, counters, event, ip_address, tail, options)| {
            let (connection_id, transaction_id, info_hash, peer_id) = ids;
            let (downloaded, left, uploaded) = counters;
            let (key, num_want, port) = tail;
            let mut bytes = Vec::new();
            AnnounceRequest {
                connection_id: ConnectionId(connection_id),
                transaction_id: TransactionId(transaction_id),
                info_hash,
                peer_id,
                downloaded,
                left,
                uploaded,
                event,
                ip_address,
                key,
                num_want,
                port,
                options: AnnounceOptions::from_bytes(&options),
            }
            .write(&mut bytes);
            bytes
        });
    let scrape = (any::<(u64, u32)>(), vec(any::<[u8; 20]>(), 1..=MAX_SCRAPE)).prop_map(|(ids, hashes)| {
        let mut bytes = Vec::new();
        ScrapeRequest {
            connection_id: ConnectionId(ids.0),
            transaction_id: TransactionId(ids.1),
            info_hashes: InfoHashes::new(&hashes),
        }
        .write(&mut bytes);
        bytes
    });
    prop_oneof![connect, announce, scrape]
}

/// One edit of a packet, at a position scaled to its length when applied.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(Index, u8),
    Set(Index, u8),
    Insert(Index, u8),
    Delete(Index),
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit(at, bit)),
        any::<(Index, u8)>().prop_map(|(at, byte)| Mutation::Set(at, byte)),
        any::<(Index, u8)>().prop_map(|(at, byte)| Mutation::Insert(at, byte)),
        any::<Index>().prop_map(Mutation::Delete),
        any::<Index>().prop_map(Mutation::Truncate),
    ]
}

impl Mutation {
    fn apply(&self, bytes: &mut Vec<u8>) {
        let len = bytes.len();
        match *self {
            Mutation::Insert(at, byte) => bytes.insert(at.index(len + 1), byte),
            _ if len == 0 => {}
            Mutation::FlipBit(at, bit) => bytes[at.index(len)] ^= 1 << bit,
            Mutation::Set(at, byte) => bytes[at.index(len)] = byte,
            Mutation::Delete(at) => {
                bytes.remove(at.index(len));
            }
            Mutation::Truncate(at) => bytes.truncate(at.index(len)),
        }
    }
}

fn request_round_trip(request: &Request<'_>) -> Result<(), TestCaseError> {
    let mut bytes = Vec::new();
    request.write(&mut bytes);
    let parsed = Request::parse(&bytes, MAX_SCRAPE);
    prop_assert_eq!(parsed, Ok(*request));
    Ok(())
}

fn response_round_trip<A>(response: &Response<'_, A>) -> Result<(), TestCaseError>
where
    A: crate::CompactPeer + std::fmt::Debug + PartialEq,
{
    let mut bytes = Vec::new();
    response.write(&mut bytes);
    let parsed = Response::<A>::parse(&bytes);
    prop_assert_eq!(parsed.as_ref(), Ok(response));
    Ok(())
}

proptest! {
    #[test]
    fn any_connect_request_round_trips(transaction_id: u32) {
        request_round_trip(&Request::Connect(ConnectRequest {
            transaction_id: TransactionId(transaction_id),
        }))?;
    }

    #[test]
    fn any_announce_request_round_trips(
        ids in any::<(u64, u32)>(),
        info_hash: [u8; 20],
        peer_id: [u8; 20],
        counters in any::<(u64, u64, u64)>(),
        event in event(),
        ip_address in ip_address(),
        tail in any::<(u32, i32, u16)>(),
        options in vec(any::<u8>(), 0..300),
    ) {
        let (connection_id, transaction_id) = ids;
        let (downloaded, left, uploaded) = counters;
        let (key, num_want, port) = tail;
        request_round_trip(&Request::Announce(AnnounceRequest {
            connection_id: ConnectionId(connection_id),
            transaction_id: TransactionId(transaction_id),
            info_hash,
            peer_id,
            downloaded,
            left,
            uploaded,
            event,
            ip_address,
            key,
            num_want,
            port,
            options: AnnounceOptions::from_bytes(&options),
        }))?;
    }

    #[test]
    fn any_scrape_request_round_trips(
        ids in any::<(u64, u32)>(),
        hashes in vec(any::<[u8; 20]>(), 1..=MAX_SCRAPE),
    ) {
        request_round_trip(&Request::Scrape(ScrapeRequest {
            connection_id: ConnectionId(ids.0),
            transaction_id: TransactionId(ids.1),
            info_hashes: InfoHashes::new(&hashes),
        }))?;
    }

    #[test]
    fn any_url_path_survives_bep41_encoding(url in vec(any::<u8>(), 0..1000)) {
        let mut options = Vec::new();
        AnnounceOptions::encode_url_data(&url, &mut options);
        let decoded = AnnounceOptions::from_bytes(&options).url_data().collect::<Vec<_>>().concat();
        prop_assert_eq!(decoded, url);
    }

    #[test]
    fn any_connect_response_round_trips(ids in any::<(u32, u64)>()) {
        response_round_trip(&Response::<SocketAddrV4>::Connect(ConnectResponse {
            transaction_id: TransactionId(ids.0),
            connection_id: ConnectionId(ids.1),
        }))?;
    }

    #[test]
    fn any_ipv4_announce_response_round_trips(
        head in any::<(u32, u32, u32, u32)>(),
        peers in vec(v4_peer(), 0..250),
    ) {
        response_round_trip(&Response::Announce(AnnounceResponse {
            transaction_id: TransactionId(head.0),
            interval: head.1,
            leechers: head.2,
            seeders: head.3,
            peers,
        }))?;
    }

    #[test]
    fn any_ipv6_announce_response_round_trips(
        head in any::<(u32, u32, u32, u32)>(),
        peers in vec(v6_peer(), 0..80),
    ) {
        response_round_trip(&Response::Announce(AnnounceResponse {
            transaction_id: TransactionId(head.0),
            interval: head.1,
            leechers: head.2,
            seeders: head.3,
            peers,
        }))?;
    }

    #[test]
    fn any_scrape_response_round_trips(
        transaction_id: u32,
        torrents in vec(stats(), 0..=MAX_SCRAPE),
    ) {
        response_round_trip(&Response::<SocketAddrV6>::Scrape(ScrapeResponse {
            transaction_id: TransactionId(transaction_id),
            torrents,
        }))?;
    }

    #[test]
    fn any_error_response_round_trips(transaction_id: u32, message in ".{0,100}") {
        response_round_trip(&Response::<SocketAddrV4>::Error(ErrorResponse {
            transaction_id: TransactionId(transaction_id),
            message: Cow::Owned(message),
        }))?;
    }

    #[test]
    fn any_bytes_that_parse_as_a_request_write_back_to_the_same_request(
        bytes in vec(any::<u8>(), 0..200),
        action in 0u32..4,
    ) {
        // Force a known action half the time so that random bytes reach the body parsers.
        let mut bytes = bytes;
        if let Some(field) = bytes.get_mut(8..12)
            && action < 3 {
                field.copy_from_slice(&action.to_be_bytes());
            }
        if let Ok(request) = Request::parse(&bytes, MAX_SCRAPE) {
            request_round_trip(&request)?;
        }
    }

    #[test]
    fn any_edit_of_a_valid_request_that_parses_writes_back_to_the_bytes_it_was_read_from(
        bytes in valid_request_bytes(),
        mutations in vec(mutation(), 0..4),
    ) {
        // Random bytes almost never make a connect or an announce: start from valid ones, so the
        // edits land in every field of every body parser.
        let mut bytes = bytes;
        for mutation in &mutations {
            mutation.apply(&mut bytes);
        }
        if let Ok(request) = Request::parse(&bytes, MAX_SCRAPE) {
            request_round_trip(&request)?;
            // Nothing read is lost: only what a parser ignores (bytes after a connect, a partial
            // info-hash after a scrape's last one) is missing from the written bytes.
            let mut written = Vec::new();
            request.write(&mut written);
            prop_assert!(bytes.starts_with(&written), "{:?} wrote {:02x?} from {:02x?}", request, written, bytes);
            if let Request::Announce(_) = request {
                prop_assert_eq!(written, bytes);
            }
        }
    }

    #[test]
    fn any_bytes_that_parse_as_a_response_write_back_to_the_same_response(
        bytes in vec(any::<u8>(), 0..200),
        action in 0u32..5,
    ) {
        let mut bytes = bytes;
        if let Some(field) = bytes.get_mut(0..4)
            && action < 4 {
                field.copy_from_slice(&action.to_be_bytes());
            }
        if let Ok(response) = Response::<SocketAddrV4>::parse(&bytes) {
            response_round_trip(&response)?;
        }
        if let Ok(response) = Response::<SocketAddrV6>::parse(&bytes) {
            response_round_trip(&response)?;
        }
    }
}
