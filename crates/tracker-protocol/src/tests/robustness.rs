//! Hostile and unusual input: no length or content makes a parser panic, truncated packets are
//! errors, and the lenient cases (BEP 41 trailers, extra bytes) are accepted.

use std::net::{SocketAddrV4, SocketAddrV6};

use super::golden::{
    announce_request_bytes, announce_request_value, announce_response_v4_bytes, announce_response_v6_bytes,
    connect_request_bytes, connect_response_bytes, error_response_bytes, scrape_request_bytes, scrape_response_bytes,
};
use crate::{
    ANNOUNCE_REQUEST_LEN, AnnounceOptions, ConnectionId, INFO_HASH_LEN, Request, RequestError, RequestParseError,
    Response, ResponseParseError, TransactionId, announce_response_len, max_peers_within, scrape_response_len,
};

const MAX_SCRAPE: usize = 70;

/// Deterministic pseudo-random bytes (xorshift64), so failures reproduce without a seed file.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_be_bytes()[0]
        })
        .collect()
}

fn parse_everything(bytes: &[u8]) {
    let _ = Request::parse(bytes, MAX_SCRAPE);
    let _ = Request::parse(bytes, 0);
    let _ = Response::<SocketAddrV4>::parse(bytes);
    let _ = Response::<SocketAddrV6>::parse(bytes);
}

#[test]
fn no_length_from_0_to_256_of_zeros_or_noise_panics_any_parser() {
    for len in 0..=256 {
        parse_everything(&vec![0; len]);
        parse_everything(&vec![0xff; len]);
        for seed in 0..8 {
            let mut bytes = noise(len, seed * 1000 + len as u64);
            parse_everything(&bytes);
            // Steer the noise into each request and response body parser as well.
            for action in 0u32..4 {
                if let Some(field) = bytes.get_mut(8..12) {
                    field.copy_from_slice(&action.to_be_bytes());
                }
                parse_everything(&bytes);
                if let Some(field) = bytes.get_mut(0..4) {
                    field.copy_from_slice(&action.to_be_bytes());
                }
                parse_everything(&bytes);
            }
        }
    }
}

#[test]
fn every_truncation_of_a_valid_request_short_of_its_fixed_part_is_an_error() {
    let packets = [
        (connect_request_bytes(), 16),
        (announce_request_bytes(), ANNOUNCE_REQUEST_LEN),
        (scrape_request_bytes(), 16 + INFO_HASH_LEN),
    ];
    for (bytes, fixed) in packets {
        for split in 0..bytes.len() {
            let result = Request::parse(&bytes[..split], MAX_SCRAPE);
            if split < fixed {
                assert!(result.is_err(), "prefix of {split} bytes parsed: {result:?}");
            }
            if split < 16 {
                assert_eq!(
                    result,
                    Err(RequestParseError::Unsendable(RequestError::TooShort { needed: 16, got: split }))
                );
            }
        }
    }
}

#[test]
fn a_short_announce_is_a_sendable_too_short_error() {
    let bytes = announce_request_bytes();
    assert_eq!(
        Request::parse(&bytes[..97], MAX_SCRAPE),
        Err(RequestParseError::Sendable {
            connection_id: ConnectionId(0xfedc_ba98_7654_3210),
            transaction_id: TransactionId(12345),
            kind: RequestError::TooShort { needed: 98, got: 97 },
        })
    );
}

#[test]
fn every_truncation_of_a_valid_response_short_of_its_fixed_part_is_an_error() {
    let packets = [
        (connect_response_bytes(), 16),
        (announce_response_v4_bytes(), 20),
        (announce_response_v6_bytes(), 20),
        (scrape_response_bytes(), 8),
        (error_response_bytes(), 8),
    ];
    for (bytes, fixed) in packets {
        for split in 0..bytes.len() {
            let v4 = Response::<SocketAddrV4>::parse(&bytes[..split]);
            let v6 = Response::<SocketAddrV6>::parse(&bytes[..split]);
            if split < fixed {
                assert!(v4.is_err() && v6.is_err(), "prefix of {split} bytes parsed");
            }
        }
    }
}

#[test]
fn a_peer_section_that_is_not_a_whole_number_of_peers_is_an_error() {
    let v4 = announce_response_v4_bytes();
    assert_eq!(
        Response::<SocketAddrV4>::parse(&v4[..v4.len() - 1]),
        Err(ResponseParseError::PeerListLength { len: 11, peer_len: 6 })
    );
    // 12 bytes of IPv4 peers are not a whole number of 18-byte IPv6 peers.
    assert_eq!(Response::<SocketAddrV6>::parse(&v4), Err(ResponseParseError::PeerListLength { len: 12, peer_len: 18 }));
    let scrape = scrape_response_bytes();
    assert_eq!(
        Response::<SocketAddrV4>::parse(&scrape[..scrape.len() - 4]),
        Err(ResponseParseError::ScrapeListLength { len: 20 })
    );
}

#[test]
fn trailing_bep41_bytes_after_an_announce_are_kept_and_do_not_break_parsing() {
    let mut bytes = announce_request_bytes();
    // NOP, URLData "/ann", an unknown option 0x7 with 2 bytes, URLData "ounce", EndOfOptions,
    // then junk the iterator must not read.
    let trailer: &[u8] = b"\x01\x02\x04/ann\x07\x02zz\x02\x05ounce\x00\x02\x09junk";
    bytes.extend_from_slice(trailer);
    let parsed = Request::parse(&bytes, MAX_SCRAPE).expect("announce with options parses");
    assert_eq!(parsed, Request::Announce(announce_request_value(trailer)));
    let Request::Announce(announce) = parsed else {
        panic!("announce parsed as another request");
    };
    assert_eq!(announce.options.url_data().collect::<Vec<_>>().concat(), b"/announce");
}

#[test]
fn malformed_bep41_options_are_ignored_rather_than_rejected() {
    for trailer in [&b"\x02"[..], b"\x02\xff/short", b"\x09", b"\x01\x01\x01"] {
        let mut bytes = announce_request_bytes();
        bytes.extend_from_slice(trailer);
        let parsed = Request::parse(&bytes, MAX_SCRAPE).expect("announce with bad options parses");
        let Request::Announce(announce) = parsed else {
            panic!("announce parsed as another request");
        };
        assert_eq!(announce.options.as_bytes(), trailer);
        assert_eq!(announce.options.url_data().count(), 0);
    }
}

#[test]
fn long_url_paths_are_split_into_255_byte_url_data_options() {
    let url = vec![b'a'; 600];
    let mut options = Vec::new();
    AnnounceOptions::encode_url_data(&url, &mut options);
    assert_eq!(options.len(), 600 + 3 * 2);
    assert_eq!(&options[..2], &[0x02, 0xff]);
    let chunks = AnnounceOptions::from_bytes(&options).url_data().map(<[u8]>::len).collect::<Vec<_>>();
    assert_eq!(chunks, [255, 255, 90]);
}

#[test]
fn extra_bytes_after_a_connect_or_scrape_request_are_ignored() {
    let mut connect = connect_request_bytes();
    connect.extend_from_slice(b"extra");
    assert!(matches!(Request::parse(&connect, MAX_SCRAPE), Ok(Request::Connect(_))));
    let mut scrape = scrape_request_bytes();
    scrape.extend_from_slice(&[0x03; 19]);
    let Ok(Request::Scrape(parsed)) = Request::parse(&scrape, MAX_SCRAPE) else {
        panic!("scrape with a partial trailing hash did not parse");
    };
    assert_eq!(parsed.info_hashes.len(), 2);
}

fn scrape_with(hashes: usize) -> Vec<u8> {
    let mut bytes = scrape_request_bytes()[..16].to_vec();
    bytes.extend(std::iter::repeat_n(0x5a, hashes * INFO_HASH_LEN));
    bytes
}

#[test]
fn a_scrape_over_the_limit_is_refused_with_a_sendable_error() {
    assert!(Request::parse(&scrape_with(70), 70).is_ok());
    let error = Request::parse(&scrape_with(71), 70).expect_err("71 hashes over a limit of 70");
    assert_eq!(
        error,
        RequestParseError::Sendable {
            connection_id: ConnectionId(0xcafe_babe),
            transaction_id: TransactionId(5),
            kind: RequestError::TooManyInfoHashes { max: 70, got: 71 },
        }
    );
    assert_eq!(error.reply_ids(), Some((ConnectionId(0xcafe_babe), TransactionId(5))));
    assert_eq!(error.kind().reply_message(), "too many info-hashes in scrape");
}

#[test]
fn a_scrape_without_a_whole_info_hash_is_refused() {
    let mut bytes = scrape_with(0);
    bytes.extend_from_slice(&[0x01; 19]);
    assert_eq!(Request::parse(&bytes, MAX_SCRAPE).map_err(|error| error.kind()), Err(RequestError::NoInfoHashes));
}

#[test]
fn unknown_actions_are_sendable_errors_but_a_bad_protocol_id_is_not() {
    let mut bytes = announce_request_bytes();
    for action in [3u32, 4, 0xffff_ffff] {
        bytes[8..12].copy_from_slice(&action.to_be_bytes());
        let error = Request::parse(&bytes, MAX_SCRAPE).expect_err("unknown action");
        assert_eq!(error.kind(), RequestError::UnknownAction(action));
        assert!(error.reply_ids().is_some());
    }
    let mut connect = connect_request_bytes();
    connect[7] ^= 1;
    let error = Request::parse(&connect, MAX_SCRAPE).expect_err("bad protocol id");
    assert_eq!(error, RequestParseError::Unsendable(RequestError::BadProtocolId(0x0417_2710_1981)));
    assert_eq!(error.reply_ids(), None);
}

#[test]
fn unknown_announce_events_are_sendable_errors() {
    let mut bytes = announce_request_bytes();
    bytes[80..84].copy_from_slice(&4u32.to_be_bytes());
    let error = Request::parse(&bytes, MAX_SCRAPE).expect_err("event 4");
    assert_eq!(error.kind(), RequestError::UnknownEvent(4));
    assert!(error.reply_ids().is_some());
}

#[test]
fn unknown_response_actions_are_errors() {
    let mut bytes = error_response_bytes();
    bytes[3] = 4;
    assert_eq!(Response::<SocketAddrV4>::parse(&bytes), Err(ResponseParseError::UnknownAction(4)));
}

#[test]
fn size_helpers_match_opentrackers_caps() {
    assert_eq!(max_peers_within::<SocketAddrV4>(1220), 200);
    assert_eq!(max_peers_within::<SocketAddrV6>(1220), 66);
    assert_eq!(max_peers_within::<SocketAddrV4>(10), 0);
    assert_eq!(announce_response_len::<SocketAddrV4>(2), 32);
    assert_eq!(announce_response_len::<SocketAddrV6>(1), 38);
    assert_eq!(scrape_response_len(2), 32);
    assert_eq!(announce_response_len::<SocketAddrV4>(2), announce_response_v4_bytes().len());
}

#[test]
fn num_want_of_minus_one_means_the_default() {
    let mut request = announce_request_value(&[]);
    assert_eq!(request.num_want_or(50), 50);
    request.num_want = 10;
    assert_eq!(request.num_want_or(50), 10);
}

#[test]
fn error_messages_name_the_problem() {
    let error = RequestParseError::Sendable {
        connection_id: ConnectionId(0x10),
        transaction_id: TransactionId(7),
        kind: RequestError::UnknownEvent(9),
    };
    assert_eq!(error.to_string(), "unknown announce event 9 (connection id 0x10, transaction id 7)");
    let error = RequestParseError::Unsendable(RequestError::TooShort { needed: 16, got: 3 });
    assert_eq!(error.to_string(), "request too short: needs 16 bytes, got 3");
}
