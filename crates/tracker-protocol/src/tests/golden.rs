//! Golden packets written out by hand, one commented line per field, checked in both directions:
//! the bytes parse to the expected value and the value writes back to the same bytes.

use std::borrow::Cow;
use std::fmt::Debug;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use crate::{
    AnnounceEvent, AnnounceOptions, AnnounceRequest, AnnounceResponse, CompactPeer, ConnectRequest, ConnectResponse,
    ConnectionId, ErrorResponse, InfoHashes, Request, Response, ScrapeRequest, ScrapeResponse, TorrentStats,
    TransactionId,
};

/// aquatic's default; the goldens stay well under it.
const MAX_SCRAPE: usize = 70;

fn check_request(bytes: &[u8], expected: &Request<'_>) {
    let parsed = Request::parse(bytes, MAX_SCRAPE).expect("golden request parses");
    assert_eq!(&parsed, expected);
    let mut written = Vec::new();
    expected.write(&mut written);
    assert_eq!(written, bytes);
}

fn check_response<A: CompactPeer + Debug + PartialEq>(bytes: &[u8], expected: &Response<'_, A>) {
    let parsed = Response::<A>::parse(bytes).expect("golden response parses");
    assert_eq!(&parsed, expected);
    let mut written = Vec::new();
    expected.write(&mut written);
    assert_eq!(written, bytes);
}

pub(super) fn connect_request_bytes() -> Vec<u8> {
    let fields: &[&[u8]] = &[
        &[0x00, 0x00, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80], // protocol_id 0x41727101980
        &[0x00, 0x00, 0x00, 0x00],                         // action 0 = connect
        &[0x12, 0x34, 0x56, 0x78],                         // transaction_id
    ];
    fields.concat()
}

#[test]
fn connect_request_matches_its_golden_bytes() {
    let expected = Request::Connect(ConnectRequest { transaction_id: TransactionId(0x1234_5678) });
    check_request(&connect_request_bytes(), &expected);
}

pub(super) fn announce_request_bytes() -> Vec<u8> {
    let fields: &[&[u8]] = &[
        &[0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10], // connection_id
        &[0x00, 0x00, 0x00, 0x01],                         // action 1 = announce
        &[0x00, 0x00, 0x30, 0x39],                         // transaction_id 12345
        &[0xaa; 20],                                       // info_hash
        b"-XX0001-abcdefghijkl",                           // peer_id
        &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00], // downloaded 4096
        &[0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00], // left 16777216
        &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64], // uploaded 100
        &[0x00, 0x00, 0x00, 0x02],                         // event 2 = started
        &[0x00, 0x00, 0x00, 0x00],                         // ip 0 = use the sender's
        &[0xde, 0xad, 0xbe, 0xef],                         // key
        &[0xff, 0xff, 0xff, 0xff],                         // num_want -1 = default
        &[0x1a, 0xe1],                                     // port 6881
    ];
    fields.concat()
}

pub(super) fn announce_request_value(options: &[u8]) -> AnnounceRequest<'_> {
    AnnounceRequest {
        connection_id: ConnectionId(0xfedc_ba98_7654_3210),
        transaction_id: TransactionId(12345),
        info_hash: [0xaa; 20],
        peer_id: *b"-XX0001-abcdefghijkl",
        downloaded: 4096,
        left: 16_777_216,
        uploaded: 100,
        event: AnnounceEvent::Started,
        ip_address: None,
        key: 0xdead_beef,
        num_want: -1,
        port: 6881,
        options: AnnounceOptions::from_bytes(options),
    }
}

#[test]
fn announce_request_matches_its_golden_bytes() {
    let expected = Request::Announce(announce_request_value(&[]));
    check_request(&announce_request_bytes(), &expected);
}

#[test]
fn announce_request_with_an_ip_and_libtorrent_url_data_matches_its_golden_bytes() {
    let fields: &[&[u8]] = &[
        &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07], // connection_id 7
        &[0x00, 0x00, 0x00, 0x01],                         // action 1 = announce
        &[0x00, 0x00, 0x00, 0x08],                         // transaction_id 8
        &[0x11; 20],                                       // info_hash
        &[0x22; 20],                                       // peer_id
        &[0x00; 8],                                        // downloaded 0
        &[0x00; 8],                                        // left 0 (a seeder)
        &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00], // uploaded 1024
        &[0x00, 0x00, 0x00, 0x03],                         // event 3 = stopped
        &[0xc0, 0xa8, 0x01, 0x02],                         // ip 192.168.1.2
        &[0x00, 0x00, 0x00, 0x2a],                         // key 42
        &[0x00, 0x00, 0x00, 0x32],                         // num_want 50
        &[0xc8, 0xd5],                                     // port 51413
        &[0x02, 0x09],                                     // BEP 41 URLData, 9 bytes
        b"/announce",                                      // URL path
    ];
    let bytes = fields.concat();
    let options = &bytes[98..];
    let expected = AnnounceRequest {
        connection_id: ConnectionId(7),
        transaction_id: TransactionId(8),
        info_hash: [0x11; 20],
        peer_id: [0x22; 20],
        downloaded: 0,
        left: 0,
        uploaded: 1024,
        event: AnnounceEvent::Stopped,
        ip_address: Some(Ipv4Addr::new(192, 168, 1, 2)),
        key: 42,
        num_want: 50,
        port: 51413,
        options: AnnounceOptions::from_bytes(options),
    };
    check_request(&bytes, &Request::Announce(expected));
    assert_eq!(expected.options.url_data().collect::<Vec<_>>(), [&b"/announce"[..]]);
}

pub(super) fn scrape_request_bytes() -> Vec<u8> {
    let fields: &[&[u8]] = &[
        &[0x00, 0x00, 0x00, 0x00, 0xca, 0xfe, 0xba, 0xbe], // connection_id
        &[0x00, 0x00, 0x00, 0x02],                         // action 2 = scrape
        &[0x00, 0x00, 0x00, 0x05],                         // transaction_id 5
        &[0x01; 20],                                       // info_hash #1
        &[0x02; 20],                                       // info_hash #2
    ];
    fields.concat()
}

#[test]
fn scrape_request_matches_its_golden_bytes() {
    let hashes = [[0x01; 20], [0x02; 20]];
    let expected = Request::Scrape(ScrapeRequest {
        connection_id: ConnectionId(0xcafe_babe),
        transaction_id: TransactionId(5),
        info_hashes: InfoHashes::new(&hashes),
    });
    let bytes = scrape_request_bytes();
    check_request(&bytes, &expected);
    let Request::Scrape(parsed) = Request::parse(&bytes, MAX_SCRAPE).expect("golden scrape parses") else {
        panic!("golden scrape parsed as another request");
    };
    assert_eq!(parsed.info_hashes.iter().collect::<Vec<_>>(), hashes);
    assert_eq!(parsed.info_hashes.len(), 2);
    assert_eq!(parsed.info_hashes.get(1), Some([0x02; 20]));
    assert_eq!(parsed.info_hashes.get(2), None);
}

pub(super) fn connect_response_bytes() -> Vec<u8> {
    let fields: &[&[u8]] = &[
        &[0x00, 0x00, 0x00, 0x00],                         // action 0 = connect
        &[0x12, 0x34, 0x56, 0x78],                         // transaction_id
        &[0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef], // connection_id
    ];
    fields.concat()
}

#[test]
fn connect_response_matches_its_golden_bytes() {
    let expected = Response::<SocketAddrV4>::Connect(ConnectResponse {
        transaction_id: TransactionId(0x1234_5678),
        connection_id: ConnectionId(0x0123_4567_89ab_cdef),
    });
    check_response(&connect_response_bytes(), &expected);
}

pub(super) fn announce_response_v4_bytes() -> Vec<u8> {
    let fields: &[&[u8]] = &[
        &[0x00, 0x00, 0x00, 0x01], // action 1 = announce
        &[0x00, 0x00, 0x30, 0x39], // transaction_id 12345
        &[0x00, 0x00, 0x07, 0x08], // interval 1800 s
        &[0x00, 0x00, 0x00, 0x03], // leechers 3
        &[0x00, 0x00, 0x00, 0x01], // seeders 1
        &[0x0a, 0x00, 0x00, 0x01], // peer #1 ip 10.0.0.1
        &[0x1a, 0xe1],             // peer #1 port 6881
        &[0xc0, 0xa8, 0x00, 0x02], // peer #2 ip 192.168.0.2
        &[0xc8, 0xd5],             // peer #2 port 51413
    ];
    fields.concat()
}

#[test]
fn ipv4_announce_response_matches_its_golden_bytes() {
    let expected = Response::Announce(AnnounceResponse {
        transaction_id: TransactionId(12345),
        interval: 1800,
        leechers: 3,
        seeders: 1,
        peers: vec![
            SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 6881),
            SocketAddrV4::new(Ipv4Addr::new(192, 168, 0, 2), 51413),
        ],
    });
    check_response(&announce_response_v4_bytes(), &expected);
}

#[test]
fn ipv4_announce_response_written_from_a_peer_iterator_matches_its_golden_bytes() {
    let peers =
        [SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 6881), SocketAddrV4::new(Ipv4Addr::new(192, 168, 0, 2), 51413)];
    let mut out = vec![0xff; 3];
    out.clear();
    AnnounceResponse {
        transaction_id: TransactionId(12345),
        interval: 1800,
        leechers: 3,
        seeders: 1,
        peers: peers.iter().copied(),
    }
    .write(&mut out);
    assert_eq!(out, announce_response_v4_bytes());
}

pub(super) fn announce_response_v6_bytes() -> Vec<u8> {
    let fields: &[&[u8]] = &[
        &[0x00, 0x00, 0x00, 0x01], // action 1 = announce
        &[0x00, 0x00, 0x00, 0x09], // transaction_id 9
        &[0x00, 0x00, 0x03, 0x84], // interval 900 s
        &[0x00, 0x00, 0x00, 0x00], // leechers 0
        &[0x00, 0x00, 0x00, 0x02], // seeders 2
        &[
            0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, // peer #1 ip 2001:db8::1 (high half)
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, // peer #1 ip (low half)
        ],
        &[0x1a, 0xe1], // peer #1 port 6881
    ];
    fields.concat()
}

#[test]
fn ipv6_announce_response_matches_its_golden_bytes() {
    let peer = SocketAddrV6::new(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 6881, 0, 0);
    let expected = Response::Announce(AnnounceResponse {
        transaction_id: TransactionId(9),
        interval: 900,
        leechers: 0,
        seeders: 2,
        peers: vec![peer],
    });
    check_response(&announce_response_v6_bytes(), &expected);
}

pub(super) fn scrape_response_bytes() -> Vec<u8> {
    let fields: &[&[u8]] = &[
        &[0x00, 0x00, 0x00, 0x02], // action 2 = scrape
        &[0x00, 0x00, 0x00, 0x05], // transaction_id 5
        &[0x00, 0x00, 0x00, 0x0a], // torrent #1 seeders 10
        &[0x00, 0x00, 0x01, 0x00], // torrent #1 completed 256
        &[0x00, 0x00, 0x00, 0x04], // torrent #1 leechers 4
        &[0x00, 0x00, 0x00, 0x00], // torrent #2 seeders 0 (unknown torrent)
        &[0x00, 0x00, 0x00, 0x00], // torrent #2 completed 0
        &[0x00, 0x00, 0x00, 0x00], // torrent #2 leechers 0
    ];
    fields.concat()
}

#[test]
fn scrape_response_matches_its_golden_bytes() {
    let expected = Response::<SocketAddrV4>::Scrape(ScrapeResponse {
        transaction_id: TransactionId(5),
        torrents: vec![TorrentStats { seeders: 10, completed: 256, leechers: 4 }, TorrentStats::default()],
    });
    check_response(&scrape_response_bytes(), &expected);
}

pub(super) fn error_response_bytes() -> Vec<u8> {
    let fields: &[&[u8]] = &[
        &[0x00, 0x00, 0x00, 0x03], // action 3 = error
        &[0x00, 0x00, 0x00, 0x05], // transaction_id 5
        b"unknown action",         // message, to the end of the packet
    ];
    fields.concat()
}

#[test]
fn error_response_matches_its_golden_bytes() {
    let expected = Response::<SocketAddrV6>::Error(ErrorResponse {
        transaction_id: TransactionId(5),
        message: Cow::Borrowed("unknown action"),
    });
    check_response(&error_response_bytes(), &expected);
}
