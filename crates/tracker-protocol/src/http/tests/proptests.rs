//! Round trips between the two sides: what the client writes, the tracker reads back unchanged, and what the
//! tracker writes, the client reads back unchanged. Arbitrary bytes never panic a parser.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use crate::http::percent;
use crate::http::{
    HttpAnnounce, HttpAnnounceReply, HttpAnnounceSuccess, HttpScrapeReply, IpParam, MAX_TOKEN_LEN, ScrapeEntry,
    announce_url, encode_announce_reply, encode_failure, encode_scrape_reply, parse_announce_query,
    parse_announce_reply, parse_scrape_query, parse_scrape_reply, scrape_url,
};
use crate::{AnnounceEvent, TorrentStats};

fn event() -> impl Strategy<Value = AnnounceEvent> {
    prop_oneof![
        Just(AnnounceEvent::None),
        Just(AnnounceEvent::Completed),
        Just(AnnounceEvent::Started),
        Just(AnnounceEvent::Stopped),
    ]
}

/// Tracker URLs as torrents carry them: plain, with a passkey in the path or the query, with a fragment.
fn base_url() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("http://t.example/announce".to_owned()),
        Just("https://t.example:443/0123abcd/announce.php".to_owned()),
        Just("http://t.example/announce?passkey=0123abcd".to_owned()),
        Just("http://t.example/announce?".to_owned()),
        Just("http://t.example/announce#x".to_owned()),
    ]
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

fn success() -> impl Strategy<Value = HttpAnnounceSuccess> {
    (
        option::of(any::<u32>()),
        option::of(any::<u32>()),
        option::of(any::<u32>()),
        option::of(any::<u32>()),
        option::of(any::<u32>()),
        option::of(vec(any::<u8>(), 0..30)),
        option::of(any::<String>()),
        vec(v4_peer(), 0..60),
        vec(v6_peer(), 0..20),
    )
        .prop_map(
            |(interval, min_interval, complete, incomplete, downloaded, tracker_id, warning, peers, peers6)| {
                HttpAnnounceSuccess {
                    interval,
                    min_interval,
                    complete,
                    incomplete,
                    downloaded,
                    tracker_id,
                    warning,
                    peers,
                    peers6,
                }
            },
        )
}

proptest! {
    #[test]
    fn percent_encoding_round_trips_and_escapes_all_but_unreserved(bytes in vec(any::<u8>(), 0..100)) {
        let mut encoded = String::new();
        percent::encode_into(&bytes, &mut encoded);
        prop_assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
        let escapes_are_uppercase = encoded.split('%').skip(1).all(|after| {
            after.len() >= 2 && after.bytes().take(2).all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
        });
        prop_assert!(escapes_are_uppercase, "{}", encoded);
        prop_assert_eq!(percent::decode(encoded.as_bytes()), Ok(bytes));
    }

    #[test]
    fn the_tracker_reads_back_what_the_client_announces(
        base in base_url(),
        info_hash in any::<[u8; 20]>(),
        peer_id in any::<[u8; 20]>(),
        port in 1..=u16::MAX,
        (uploaded, downloaded, left) in any::<(u64, u64, u64)>(),
        event in event(),
        numwant in option::of(any::<u32>()),
        key in any::<u32>(),
        tracker_id in option::of(vec(any::<u8>(), 0..=MAX_TOKEN_LEN)),
    ) {
        let announce = HttpAnnounce {
            info_hash, peer_id, port, uploaded, downloaded, left, event, numwant, key,
            tracker_id: tracker_id.as_deref(),
        };
        let url = announce_url(&base, &announce);
        let (_, query) = url.split_once('?').expect("the URL has a query");
        let parsed = parse_announce_query(query.as_bytes(), IpParam::Accept).expect("our own query parses");
        prop_assert_eq!(parsed.info_hash, info_hash);
        prop_assert_eq!(parsed.peer_id, peer_id);
        prop_assert_eq!(parsed.port, port);
        prop_assert_eq!((parsed.uploaded, parsed.downloaded, parsed.left), (uploaded, downloaded, left));
        prop_assert_eq!(parsed.event, event);
        prop_assert!(parsed.compact);
        prop_assert_eq!(parsed.numwant, numwant);
        prop_assert_eq!(parsed.key, Some(format!("{key:08X}").into_bytes()));
        prop_assert_eq!(parsed.tracker_id, tracker_id);
        prop_assert_eq!(parsed.ip, None);
    }

    #[test]
    fn the_tracker_reads_back_what_the_client_scrapes(
        base in base_url(),
        info_hashes in vec(any::<[u8; 20]>(), 0..80),
    ) {
        let url = scrape_url(&base, &info_hashes).expect("every base URL ends in announce");
        let (_, query) = url.split_once('?').expect("the URL has a query");
        let parsed = parse_scrape_query(query.as_bytes(), 80).expect("our own query parses");
        let mut expected = info_hashes.clone();
        let mut seen = Vec::new();
        expected.retain(|hash| if seen.contains(hash) { false } else { seen.push(*hash); true });
        prop_assert_eq!(parsed, expected);
        if info_hashes.len() > 74 {
            prop_assert!(parse_scrape_query(query.as_bytes(), 74).is_err());
        }
    }

    #[test]
    fn the_client_reads_back_what_the_tracker_answers(reply in success()) {
        let body = encode_announce_reply(&reply);
        prop_assert_eq!(bencode::decode_exact(&body).expect("bencode").to_bytes(), body.clone(), "canonical");
        prop_assert_eq!(parse_announce_reply(&body), Ok(HttpAnnounceReply::Success(reply)));
    }

    #[test]
    fn the_client_reads_back_a_refusal(reason in any::<String>()) {
        let body = encode_failure(&reason);
        prop_assert_eq!(parse_announce_reply(&body), Ok(HttpAnnounceReply::Failure(reason.clone())));
        prop_assert_eq!(parse_scrape_reply(&body), Ok(HttpScrapeReply::Failure(reason)));
    }

    #[test]
    fn the_client_reads_back_scrape_counts_sorted_and_unique(
        entries in vec((any::<[u8; 20]>(), stats()), 0..30),
        repeat in any::<bool>(),
    ) {
        let mut entries: Vec<ScrapeEntry> =
            entries.into_iter().map(|(info_hash, stats)| ScrapeEntry { info_hash, stats }).collect();
        if repeat && let Some(&first) = entries.first() {
            entries.push(ScrapeEntry { stats: TorrentStats::default(), ..first });
        }
        let body = encode_scrape_reply(&entries);
        let mut expected: Vec<ScrapeEntry> = Vec::new();
        for entry in &entries {
            if !expected.iter().any(|kept| kept.info_hash == entry.info_hash) {
                expected.push(*entry);
            }
        }
        expected.sort_by_key(|entry| entry.info_hash);
        prop_assert_eq!(parse_scrape_reply(&body), Ok(HttpScrapeReply::Files(expected)));
    }

    #[test]
    fn arbitrary_bytes_never_panic_a_parser(bytes in vec(any::<u8>(), 0..300)) {
        let _ = parse_announce_reply(&bytes);
        let _ = parse_scrape_reply(&bytes);
        let _ = parse_announce_query(&bytes, IpParam::Accept);
        let _ = parse_scrape_query(&bytes, 74);
    }

    /// Query-shaped noise: the characters that matter to the splitter and the decoder, and field names.
    #[test]
    fn query_shaped_noise_never_panics(parts in vec(prop_oneof![
        Just("&".to_owned()), Just("=".to_owned()), Just("%".to_owned()), Just("%4".to_owned()),
        Just("info_hash=".to_owned()), Just("port=".to_owned()), Just("left=".to_owned()), Just("ip=".to_owned()),
        Just("event=".to_owned()), Just("key=".to_owned()), "[0-9a-fA-F%+]{0,25}",
    ], 0..40)) {
        let query = parts.concat();
        let _ = parse_announce_query(query.as_bytes(), IpParam::Accept);
        let _ = parse_scrape_query(query.as_bytes(), 74);
    }
}
