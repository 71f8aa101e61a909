//! Golden URLs, queries and bodies, byte for byte: what we send, real clients' query shapes (libtorrent,
//! Transmission, aquatic's test vector), and real trackers' reply shapes (opentracker, libtorrent's own test
//! replies). Where our encoder would write the same bytes, both directions are checked.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use crate::http::{
    HttpAnnounce, HttpAnnounceReply, HttpAnnounceRequest, HttpAnnounceSuccess, HttpScrapeReply, IpParam, ScrapeEntry,
    announce_url, encode_announce_reply, encode_failure, encode_scrape_reply, parse_announce_query,
    parse_announce_reply, parse_scrape_query, parse_scrape_reply, scrape_url,
};
use crate::{AnnounceEvent, TorrentStats};

/// aquatic's reference info-hash: printable bytes, bytes that need escaping, and a zero.
const INFO_HASH: [u8; 20] = [
    0x04, 0x0b, b'k', b'V', 0x3f, 0x5c, b'r', 0x14, 0xa6, 0xb7, 0x98, 0xad, b'C', 0xc3, 0xc9, b'.', 0x40, 0x24, 0x00,
    0xb9,
];
/// The same, as we escape it: unreserved bytes literal, the rest `%XX` in uppercase.
const INFO_HASH_ESCAPED: &str = "%04%0BkV%3F%5Cr%14%A6%B7%98%ADC%C3%C9.%40%24%00%B9";

fn announce() -> HttpAnnounce<'static> {
    HttpAnnounce {
        info_hash: INFO_HASH,
        peer_id: *b"-XX0001-a~b.c_d-e f!",
        port: 6881,
        uploaded: 1,
        downloaded: 2,
        left: 3,
        event: AnnounceEvent::Started,
        numwant: Some(50),
        key: 0x0004_ab4b,
        tracker_id: None,
    }
}

fn query_of(url: &str) -> &[u8] {
    url.split_once('?').map(|(_, query)| query.as_bytes()).expect("the URL has a query")
}

fn success(reply: HttpAnnounceReply) -> HttpAnnounceSuccess {
    match reply {
        HttpAnnounceReply::Success(success) => success,
        HttpAnnounceReply::Failure(reason) => panic!("unexpected failure {reason:?}"),
    }
}

#[test]
fn announce_url_escapes_binary_fields_and_lists_the_fields_in_order() {
    let url = announce_url("http://tracker.example:6969/announce", &announce());
    let expected = [
        "http://tracker.example:6969/announce",
        "?info_hash=",
        INFO_HASH_ESCAPED,
        "&peer_id=-XX0001-a~b.c_d-e%20f%21",
        "&port=6881&uploaded=1&downloaded=2&left=3",
        "&compact=1",
        "&event=started",
        "&numwant=50",
        "&key=0004AB4B",
        "&no_peer_id=1",
    ];
    assert_eq!(url, expected.concat());
}

#[test]
fn announce_url_joins_an_existing_query_with_an_ampersand_and_echoes_the_tracker_id() {
    let announce = HttpAnnounce {
        event: AnnounceEvent::None,
        numwant: None,
        key: 0xdead_beef,
        tracker_id: Some(b"t/id=1"),
        ..announce()
    };
    let url = announce_url("https://t.example/a/announce.php?passkey=0123abcd", &announce);
    let expected = [
        "https://t.example/a/announce.php?passkey=0123abcd",
        "&info_hash=",
        INFO_HASH_ESCAPED,
        "&peer_id=-XX0001-a~b.c_d-e%20f%21",
        "&port=6881&uploaded=1&downloaded=2&left=3&compact=1",
        "&key=DEADBEEF",
        "&trackerid=t%2Fid%3D1",
        "&no_peer_id=1",
    ];
    assert_eq!(url, expected.concat());
}

#[test]
fn announce_url_adds_no_separator_after_a_trailing_one_and_drops_a_fragment() {
    for (base, start) in [
        ("http://t.example/announce?", "http://t.example/announce?info_hash="),
        ("http://t.example/announce?a=1&", "http://t.example/announce?a=1&info_hash="),
        ("http://t.example/announce#top", "http://t.example/announce?info_hash="),
    ] {
        let url = announce_url(base, &announce());
        assert!(url.starts_with(start), "{base} gave {url}");
        assert!(!url.contains('#'));
    }
}

#[test]
fn announce_url_event_names() {
    for (event, field) in [
        (AnnounceEvent::Started, Some("&event=started")),
        (AnnounceEvent::Completed, Some("&event=completed")),
        (AnnounceEvent::Stopped, Some("&event=stopped")),
        (AnnounceEvent::None, None),
    ] {
        let url = announce_url("http://t.example/announce", &HttpAnnounce { event, ..announce() });
        match field {
            Some(field) => assert!(url.contains(field), "{url}"),
            None => assert!(!url.contains("event="), "{url}"),
        }
    }
}

/// BEP 48's examples, and a few of ours.
#[test]
fn scrape_url_follows_bep_48() {
    let cases = [
        ("http://example.com/announce", Some("http://example.com/scrape")),
        ("http://example.com/x/announce", Some("http://example.com/x/scrape")),
        ("http://example.com/announce.php", Some("http://example.com/scrape.php")),
        ("http://example.com/a", None),
        ("http://example.com/announce?x2%0644", Some("http://example.com/scrape?x2%0644")),
        ("http://example.com/announce?x=2/4", Some("http://example.com/scrape?x=2/4")),
        ("http://example.com/x%064announce", None),
        ("http://example.com/announce/x", None),
        ("http://example.com", None),
        ("http://example.com/", None),
        ("http://example.com?p=/announce", None),
        ("https://example.com:443/announce_v2#frag", Some("https://example.com:443/scrape_v2")),
    ];
    for (announce, scrape) in cases {
        let expected = scrape.map(|scrape| {
            let separator = if scrape.contains('?') { '&' } else { '?' };
            format!("{scrape}{separator}info_hash={INFO_HASH_ESCAPED}")
        });
        assert_eq!(scrape_url(announce, &[INFO_HASH]), expected, "{announce}");
    }
}

#[test]
fn scrape_url_repeats_info_hash_per_torrent() {
    let url = scrape_url("http://t.example/announce", &[INFO_HASH, [b'a'; 20]]).expect("scrapable");
    let expected = format!("http://t.example/scrape?info_hash={INFO_HASH_ESCAPED}&info_hash=aaaaaaaaaaaaaaaaaaaa");
    assert_eq!(url, expected);
    assert_eq!(parse_scrape_query(query_of(&url), 74), Ok(vec![INFO_HASH, [b'a'; 20]]));
}

fn expected_request() -> HttpAnnounceRequest {
    HttpAnnounceRequest {
        info_hash: INFO_HASH,
        peer_id: *b"-ABC940-5ert69muw5t8",
        port: 12345,
        uploaded: 1,
        downloaded: 2,
        left: 3,
        event: AnnounceEvent::Started,
        compact: true,
        numwant: Some(0),
        key: Some(b"4ab4b877".to_vec()),
        tracker_id: None,
        ip: None,
    }
}

/// aquatic's test vector: lowercase escapes, `supportcrypto`, fields in another order.
#[test]
fn parses_aquatics_announce_query() {
    let query = b"info_hash=%04%0bkV%3f%5cr%14%a6%b7%98%adC%c3%c9.%40%24%00%b9&peer_id=-ABC940-5ert69muw5t8\
        &port=12345&uploaded=1&downloaded=2&left=3&numwant=0&key=4ab4b877&compact=1&supportcrypto=1&event=started";
    assert_eq!(parse_announce_query(query, IpParam::Ignore), Ok(expected_request()));
}

/// libtorrent 2.0 (qBittorrent 4.6) sends `corrupt`, `redundant` and `no_peer_id` too, and an 8-digit hex key.
#[test]
fn parses_a_libtorrent_announce_query() {
    let query = format!(
        "info_hash={INFO_HASH_ESCAPED}&peer_id=-qB4630-k8hj0wgej6ch&port=51413&uploaded=0&downloaded=0\
         &left=1073741824&corrupt=0&key=1A2B3C4D&event=started&numwant=200&compact=1&no_peer_id=1\
         &supportcrypto=1&redundant=0"
    );
    let expected = HttpAnnounceRequest {
        peer_id: *b"-qB4630-k8hj0wgej6ch",
        port: 51413,
        uploaded: 0,
        downloaded: 0,
        left: 1 << 30,
        numwant: Some(200),
        key: Some(b"1A2B3C4D".to_vec()),
        ..expected_request()
    };
    assert_eq!(parse_announce_query(query.as_bytes(), IpParam::Ignore), Ok(expected));
}

#[test]
fn parses_a_transmission_completed_announce() {
    let query = format!(
        "info_hash={INFO_HASH_ESCAPED}&peer_id=-TR4050-0123456789ab&port=51413&uploaded=512&downloaded=4096\
         &left=0&numwant=80&key=7dd2a9c1&compact=1&supportcrypto=1&event=completed"
    );
    let parsed = parse_announce_query(query.as_bytes(), IpParam::Ignore).expect("parses");
    assert_eq!(parsed.event, AnnounceEvent::Completed);
    assert_eq!((parsed.uploaded, parsed.downloaded, parsed.left), (512, 4096, 0));
    assert_eq!(parsed.key.as_deref(), Some(&b"7dd2a9c1"[..]));
}

#[test]
fn our_announce_url_parses_back_on_the_tracker_side() {
    let announce = HttpAnnounce { tracker_id: Some(b"\x00tid&=%"), ..announce() };
    let url = announce_url("http://t.example/announce?passkey=x", &announce);
    let parsed = parse_announce_query(query_of(&url), IpParam::Ignore).expect("parses");
    let expected = HttpAnnounceRequest {
        info_hash: announce.info_hash,
        peer_id: announce.peer_id,
        port: 6881,
        uploaded: 1,
        downloaded: 2,
        left: 3,
        event: AnnounceEvent::Started,
        compact: true,
        numwant: Some(50),
        key: Some(b"0004AB4B".to_vec()),
        tracker_id: Some(b"\x00tid&=%".to_vec()),
        ip: None,
    };
    assert_eq!(parsed, expected);
}

/// opentracker's IPv4 reply layout (trackerlogic.c `return_peers_for_torrent`): its keys happen to be sorted,
/// so our encoder writes the same bytes.
#[test]
fn opentracker_ipv4_announce_reply_both_ways() {
    let body: &[u8] = b"d8:completei2e10:downloadedi5e10:incompletei1e8:intervali1727e12:min intervali863e\
        5:peers12:\x0a\x00\x00\x01\x1a\xe1\xc0\xa8\x01\x02\xc8\xd5e";
    let expected = HttpAnnounceSuccess {
        interval: Some(1727),
        min_interval: Some(863),
        complete: Some(2),
        incomplete: Some(1),
        downloaded: Some(5),
        peers: vec![
            SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 6881),
            SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, 2), 51413),
        ],
        ..HttpAnnounceSuccess::default()
    };
    assert_eq!(parse_announce_reply(body), Ok(HttpAnnounceReply::Success(expected.clone())));
    assert_eq!(encode_announce_reply(&expected), body);
}

/// opentracker's IPv6 build answers with `peers6` only.
#[test]
fn opentracker_ipv6_announce_reply() {
    let body: &[u8] = b"d8:completei0e10:downloadedi0e10:incompletei1e8:intervali1800e12:min intervali900e\
        6:peers618:\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x1a\xe1e";
    let reply = success(parse_announce_reply(body).expect("parses"));
    assert!(reply.peers.is_empty());
    assert_eq!(reply.peers6, [SocketAddrV6::new(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 6881, 0, 0)]);
    // We always write `peers`, so our bytes differ from opentracker's by `5:peers0:`.
    let ours = encode_announce_reply(&reply);
    assert_eq!(ours.len(), body.len() + b"5:peers0:".len());
    assert_eq!(parse_announce_reply(&ours), Ok(HttpAnnounceReply::Success(reply)));
}

/// Replies from libtorrent's test_tracker.cpp and its test web server, which our encoder writes identically.
#[test]
fn libtorrent_test_replies_both_ways() {
    let peers4 = HttpAnnounceSuccess {
        peers: vec!["1.2.3.4:12304".parse().expect("addr"), "9.8.7.6:8208".parse().expect("addr")],
        ..HttpAnnounceSuccess::default()
    };
    let interval = HttpAnnounceSuccess { interval: Some(1042), min_interval: Some(10), ..Default::default() };
    let warning = HttpAnnounceSuccess { warning: Some("test message".into()), ..Default::default() };
    let web_server = HttpAnnounceSuccess {
        interval: Some(1800),
        peers: vec!["65.65.65.65:16962".parse().expect("addr"), "67.67.67.67:17476".parse().expect("addr")],
        peers6: vec!["[4545:4545:4545:4545:4545:4545:4545:4545]:17990".parse().expect("addr")],
        ..Default::default()
    };
    let cases: [(&[u8], HttpAnnounceSuccess); 4] = [
        (b"d5:peers12:\x01\x02\x03\x04\x30\x10\x09\x08\x07\x06\x20\x10e", peers4),
        (b"d8:intervali1042e12:min intervali10e5:peers0:e", interval),
        (b"d5:peers0:15:warning message12:test messagee", warning),
        (b"d8:intervali1800e5:peers12:AAAABBCCCCDD6:peers618:EEEEEEEEEEEEEEEEFFe", web_server),
    ];
    for (body, expected) in cases {
        assert_eq!(parse_announce_reply(body), Ok(HttpAnnounceReply::Success(expected.clone())));
        assert_eq!(encode_announce_reply(&expected), body);
    }
}

#[test]
fn failure_reason_wins_over_everything_else() {
    let body = b"d5:peers0:14:failure reason12:test messagee";
    assert_eq!(parse_announce_reply(body), Ok(HttpAnnounceReply::Failure("test message".into())));
    assert_eq!(parse_scrape_reply(body), Ok(HttpScrapeReply::Failure("test message".into())));
    // Debian's opentracker in whitelist mode.
    let closed = b"d14:failure reason43:This torrent is not served by this tracker.e";
    assert_eq!(encode_failure("This torrent is not served by this tracker."), closed);
    assert_eq!(
        parse_announce_reply(closed),
        Ok(HttpAnnounceReply::Failure("This torrent is not served by this tracker.".into()))
    );
}

/// libtorrent's test of host-name peers: both are skipped (we would have to resolve them), and the reply
/// still parses.
#[test]
fn a_peer_list_of_dictionaries_keeps_literal_addresses_only() {
    let hostnames = b"d5:peersld7:peer id20:aaaaaaaaaaaaaaaaaaaa2:ip13:test_hostname4:porti1000eed7:peer id20:\
        bbbbabaababababababa2:ip12:another_host4:porti1001eeee";
    assert_eq!(success(parse_announce_reply(hostnames).expect("parses")), HttpAnnounceSuccess::default());

    let mixed = b"d8:intervali900e5:peersl\
        d2:ip7:1.2.3.47:peer id20:aaaaaaaaaaaaaaaaaaaa4:porti6881ee\
        d2:ip3:::14:porti6882ee\
        d2:ip7:1.2.3.44:porti70000ee\
        d2:ip7:1.2.3.44:porti-1ee\
        d4:porti1ee\
        i5e\
        d2:ip8:10.0.0.14:port4:6881e\
        e10:tracker id3:\x00ide";
    let expected = HttpAnnounceSuccess {
        interval: Some(900),
        tracker_id: Some(b"\x00id".to_vec()),
        peers: vec!["1.2.3.4:6881".parse().expect("addr")],
        peers6: vec!["[::1]:6882".parse().expect("addr")],
        ..Default::default()
    };
    assert_eq!(parse_announce_reply(mixed), Ok(HttpAnnounceReply::Success(expected)));
}

#[test]
fn trailing_whitespace_is_tolerated() {
    let reply = success(parse_announce_reply(b"d8:intervali60e5:peers0:e\r\n").expect("parses"));
    assert_eq!(reply.interval, Some(60));
}

/// opentracker's scrape layout, both ways.
#[test]
fn opentracker_scrape_reply_both_ways() {
    let body = [&b"d5:filesd20:"[..], &INFO_HASH, b"d8:completei3e10:downloadedi7e10:incompletei2eeee"].concat();
    let entry = ScrapeEntry { info_hash: INFO_HASH, stats: TorrentStats { seeders: 3, completed: 7, leechers: 2 } };
    assert_eq!(parse_scrape_reply(&body), Ok(HttpScrapeReply::Files(vec![entry])));
    assert_eq!(encode_scrape_reply(&[entry]), body);
}

/// libtorrent's test replies: keys out of order, an extra `downloaders`, a zero byte in the hash.
#[test]
fn libtorrent_scrape_replies() {
    let body = b"d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei1e10:incompletei2e10:downloadedi3e11:downloadersi6eeee";
    let stats = TorrentStats { seeders: 1, completed: 3, leechers: 2 };
    assert_eq!(
        parse_scrape_reply(body),
        Ok(HttpScrapeReply::Files(vec![ScrapeEntry { info_hash: [b'a'; 20], stats }]))
    );

    let body = b"d5:filesd20:aaa\0aaaaaaaaaaaaaaaad8:completei4e10:incompletei5e10:downloadedi6eeee";
    let mut info_hash = [b'a'; 20];
    info_hash[3] = 0;
    let stats = TorrentStats { seeders: 4, completed: 6, leechers: 5 };
    assert_eq!(parse_scrape_reply(body), Ok(HttpScrapeReply::Files(vec![ScrapeEntry { info_hash, stats }])));
}

#[test]
fn scrape_reply_is_sorted_by_info_hash_with_each_hash_once() {
    let stats = |n| TorrentStats { seeders: n, completed: n, leechers: n };
    let entries = [
        ScrapeEntry { info_hash: [b'b'; 20], stats: stats(1) },
        ScrapeEntry { info_hash: [b'a'; 20], stats: stats(2) },
        ScrapeEntry { info_hash: [b'b'; 20], stats: stats(3) },
    ];
    let expected = b"d5:filesd\
        20:aaaaaaaaaaaaaaaaaaaad8:completei2e10:downloadedi2e10:incompletei2ee\
        20:bbbbbbbbbbbbbbbbbbbbd8:completei1e10:downloadedi1e10:incompletei1ee\
        ee";
    assert_eq!(encode_scrape_reply(&entries), expected);
    assert_eq!(encode_scrape_reply(&[]), b"d5:filesdee");
}

#[test]
fn an_empty_reply_still_has_peers() {
    assert_eq!(encode_announce_reply(&HttpAnnounceSuccess::default()), b"d5:peers0:e");
}
