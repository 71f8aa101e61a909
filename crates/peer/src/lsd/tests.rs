use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::message::{Announce, EncodeError, MAX_ANNOUNCE_LEN, MAX_DATAGRAM_LEN, MAX_INFO_HASHES, ParseError};
use super::neighbours::{
    ANNOUNCE_INTERVAL, DATAGRAM_BURST, Ignored, MAX_NEIGHBOUR_IPS, MAX_PORTS_PER_IP, Neighbours, REPEAT_AFTER,
    REPLY_GAP,
};
use super::{GROUP_V4, Lsd};

/// A datagram libtorrent 2.0.8 (Debian's python3-libtorrent) multicast, captured byte for byte: port 6881, one
/// info-hash, its cookie (`%x` of a random number).
const LIBTORRENT_ANNOUNCE: &[u8] = b"BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 6881\r\nInfohash: \
c0d2f0cc97ed9e521128bf4616fcca184581c8ba\r\ncookie: 359c9421\r\n\r\n\r\n";
const LIBTORRENT_HASH: [u8; 20] = [
    0xc0, 0xd2, 0xf0, 0xcc, 0x97, 0xed, 0x9e, 0x52, 0x11, 0x28, 0xbf, 0x46, 0x16, 0xfc, 0xca, 0x18, 0x45, 0x81, 0xc8,
    0xba,
];

fn group() -> SocketAddr {
    GROUP_V4.into()
}

fn hash(byte: u8) -> [u8; 20] {
    [byte; 20]
}

fn hex40(byte: u8) -> String {
    format!("{byte:02x}").repeat(20)
}

/// A datagram of the given header lines, CRLF-ended, after the request line, with the closing empty line.
fn datagram(headers: &[&str]) -> Vec<u8> {
    let mut text = String::from("BT-SEARCH * HTTP/1.1\r\n");
    for header in headers {
        text.push_str(header);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    text.into_bytes()
}

#[test]
fn libtorrents_announce_is_read() {
    let announce = Announce::parse(LIBTORRENT_ANNOUNCE).expect("libtorrent's announce");
    assert_eq!(announce, Announce { port: 6881, info_hashes: vec![LIBTORRENT_HASH], cookie: Some("359c9421") });
}

#[test]
fn ours_is_written_byte_for_byte_as_libtorrent_writes_it() {
    let announce = Announce { port: 6881, info_hashes: vec![LIBTORRENT_HASH], cookie: Some("359c9421") };
    assert_eq!(announce.encode(group()).expect("encodes"), LIBTORRENT_ANNOUNCE);
}

#[test]
fn an_announce_without_cookie_with_upper_case_names_and_hex_and_lf_line_ends_is_read() {
    let text =
        format!("bt-search * HTTP/1.1\nHOST: 239.192.152.143:6771\nPORT:  51413 \nINFOHASH: {}\n\n", hex40(0xAB));
    let announce = Announce::parse(text.as_bytes()).expect("lenient");
    assert_eq!(announce, Announce { port: 51413, info_hashes: vec![hash(0xAB)], cookie: None });
    let upper = datagram(&["Port: 1", &format!("Infohash: {}", hex40(0xAB).to_uppercase())]);
    assert_eq!(Announce::parse(&upper).expect("upper-case hex").info_hashes, [hash(0xAB)]);
}

#[test]
fn unknown_headers_are_ignored_and_what_follows_the_empty_line_too() {
    let mut bytes = datagram(&["X-Whatever: 1", "Port: 80", &format!("Infohash: {}", hex40(1)), "Host: anything"]);
    bytes.extend_from_slice(b"\r\ngarbage without colon\xff");
    assert_eq!(Announce::parse(&bytes).expect("reads").port, 80);
}

#[test]
fn several_info_hashes_are_kept_in_order_without_repeats_bad_ones_or_more_than_the_cap() {
    let mut headers = vec!["Port: 6881".to_string()];
    headers.push(format!("Infohash: {}", hex40(2)));
    headers.push(format!("Infohash: {}", hex40(1)));
    headers.push(format!("Infohash: {}", hex40(2)));
    headers.push("Infohash: 1234".to_string());
    headers.push(format!("Infohash: {}", "zz".repeat(20)));
    headers.push(format!("Infohash: {}", hex40(0)));
    headers.push(format!("Infohash: {}0", hex40(3)));
    let lines: Vec<&str> = headers.iter().map(String::as_str).collect();
    assert_eq!(Announce::parse(&datagram(&lines)).expect("reads").info_hashes, [hash(2), hash(1)]);

    let many: Vec<String> = (1..=28u8).map(|byte| format!("Infohash: {}", hex40(byte))).collect();
    let mut lines = vec!["Port: 1"];
    lines.extend(many.iter().map(String::as_str));
    let kept = Announce::parse(&datagram(&lines)).expect("reads").info_hashes;
    assert_eq!(kept, (1..=MAX_INFO_HASHES as u8).map(hash).collect::<Vec<_>>());
}

#[test]
fn bad_announces_are_refused_with_their_reason() {
    let good_hash = format!("Infohash: {}", hex40(1));
    let cases: Vec<(Vec<u8>, ParseError)> = vec![
        (vec![b'a'; MAX_DATAGRAM_LEN + 1], ParseError::TooLong),
        (b"BT-SEARCH * HTTP/1.1\r\nPort: \xff\r\n\r\n".to_vec(), ParseError::NotText),
        (b"M-SEARCH * HTTP/1.1\r\nPort: 1\r\n\r\n".to_vec(), ParseError::NotBtSearch),
        (Vec::new(), ParseError::NotBtSearch),
        (b"\r\nBT-SEARCH * HTTP/1.1\r\n\r\n".to_vec(), ParseError::NotBtSearch),
        (b"BT-SEARCH * HTTP/1.1\r\nPort: 1\r\n\r".to_vec(), ParseError::BadHeaderLine),
        (b"BT-SEARCH * HTTP/1.1\r\nPort: 1\r\n\n\r\n".to_vec(), ParseError::NoInfoHash),
        (datagram(&["Port 1"]), ParseError::BadHeaderLine),
        (b"BT-SEARCH * HTTP/1.1\r\nPort: 1\r\n".to_vec(), ParseError::Unterminated),
        (datagram(&[&good_hash]), ParseError::MissingPort),
        (datagram(&["Port: 1", "port: 2", &good_hash]), ParseError::DuplicatePort),
        (datagram(&["Port: 1"]), ParseError::NoInfoHash),
        (datagram(&["Port: 1", "Infohash: 12"]), ParseError::NoInfoHash),
    ];
    for port in ["0", "65536", "-1", "+80", "80x", "0x50", "", "000080", "99999999999999999999"] {
        let header = format!("Port: {port}");
        assert_eq!(Announce::parse(&datagram(&[&header, &good_hash])), Err(ParseError::BadPort), "{port:?}");
    }
    for (bytes, error) in cases {
        assert_eq!(Announce::parse(&bytes), Err(error), "{:?}", String::from_utf8_lossy(&bytes));
    }
    let edge = datagram(&["Port: 65535", &good_hash]);
    assert_eq!(Announce::parse(&edge).expect("65535 is a port").port, 65535);
}

#[test]
fn writing_refuses_what_could_not_be_read_back() {
    let cases = [
        (Announce { port: 0, info_hashes: vec![hash(1)], cookie: None }, EncodeError::ZeroPort),
        (Announce { port: 1, info_hashes: vec![], cookie: None }, EncodeError::InfoHashCount),
        (
            Announce { port: 1, info_hashes: vec![hash(1); MAX_INFO_HASHES + 1], cookie: None },
            EncodeError::InfoHashCount,
        ),
        (Announce { port: 1, info_hashes: vec![hash(1)], cookie: Some("") }, EncodeError::BadCookie),
        (Announce { port: 1, info_hashes: vec![hash(1)], cookie: Some(" x") }, EncodeError::BadCookie),
        (Announce { port: 1, info_hashes: vec![hash(1)], cookie: Some("a\r\nPort: 2") }, EncodeError::BadCookie),
    ];
    for (announce, error) in cases {
        assert_eq!(announce.encode(group()), Err(error), "{announce:?}");
    }
    let long = "c".repeat(MAX_ANNOUNCE_LEN);
    let announce = Announce { port: 1, info_hashes: vec![hash(1)], cookie: Some(&long) };
    assert_eq!(announce.encode(group()), Err(EncodeError::TooLong));
    let full: Vec<[u8; 20]> = (1..=MAX_INFO_HASHES as u8).map(hash).collect();
    let fits = Announce { port: 65535, info_hashes: full, cookie: Some("ffffffff") }.encode(group()).expect("fits");
    assert!(fits.len() <= MAX_ANNOUNCE_LEN, "{}", fits.len());
}

const HASH: [u8; 20] = [7; 20];

fn from(last: u8) -> SocketAddr {
    SocketAddr::from(([10, 77, 0, last], super::LSD_PORT))
}

#[test]
fn a_neighbour_announcing_our_torrent_is_handed_on_at_its_ip_and_announced_port() {
    let now = Instant::now();
    let mut neighbours = Neighbours::with_cookie(HASH, "ours".into(), None, now);
    let theirs = Announce { port: 6881, info_hashes: vec![hash(1), HASH], cookie: Some("theirs") };
    let bytes = theirs.encode(group()).expect("encodes");
    assert_eq!(neighbours.receive(&bytes, from(2), now), Ok(SocketAddr::from(([10, 77, 0, 2], 6881))));
    assert_eq!(neighbours.receive(&bytes, from(2), now), Ok(SocketAddr::from(([10, 77, 0, 2], 6881))), "again");
    let mapped = SocketAddr::new(IpAddr::from(Ipv4Addr::new(10, 77, 0, 3).to_ipv6_mapped()), 6771);
    assert_eq!(neighbours.receive(&bytes, mapped, now), Ok(SocketAddr::from(([10, 77, 0, 3], 6881))));
    assert_eq!(neighbours.receive(LIBTORRENT_ANNOUNCE, from(2), now), Err(Ignored::OtherTorrent));
    assert_eq!(neighbours.receive(b"hello", from(2), now), Err(Ignored::Malformed(ParseError::NotBtSearch)));
}

#[test]
fn our_own_announces_are_recognised_by_cookie_and_by_address() {
    let now = Instant::now();
    let own = SocketAddr::from(([10, 77, 0, 1], 6881));
    let mut neighbours = Neighbours::new(HASH, Some(own), now);
    let ours = neighbours.announce(6881, group()).expect("encodes");
    assert!(String::from_utf8_lossy(&ours).contains(&format!("cookie: {}\r\n", neighbours.cookie())));
    assert_eq!(neighbours.receive(&ours, from(1), now), Err(Ignored::Ours));
    assert_eq!(neighbours.receive(&ours, from(9), now), Err(Ignored::Ours), "whatever the sender, the cookie is ours");
    let no_cookie = Announce { port: 6881, info_hashes: vec![HASH], cookie: None }.encode(group()).expect("encodes");
    assert_eq!(neighbours.receive(&no_cookie, from(1), now), Err(Ignored::Ours), "our own address");
    assert!(neighbours.receive(&no_cookie, from(9), now).is_ok());
    assert_ne!(Neighbours::new(HASH, None, now).cookie(), neighbours.cookie(), "random cookies");
}

#[test]
fn ports_per_ip_and_ips_are_capped() {
    let now = Instant::now();
    let mut neighbours = Neighbours::with_cookie(HASH, "ours".into(), None, now);
    let announce = |port: u16| Announce { port, info_hashes: vec![HASH], cookie: None }.encode(group()).expect("ok");
    for port in 1..=MAX_PORTS_PER_IP as u16 {
        assert!(neighbours.receive(&announce(port), from(2), now).is_ok());
    }
    assert_eq!(neighbours.receive(&announce(1000), from(2), now), Err(Ignored::TooManyPorts));
    assert!(neighbours.receive(&announce(1), from(2), now).is_ok(), "a port heard before is still handed on");
    for n in 1..MAX_NEIGHBOUR_IPS {
        let ip = Ipv4Addr::from(0x0a00_0000 + u32::try_from(n).expect("small"));
        assert!(neighbours.receive(&announce(1), SocketAddr::from((ip, 6771)), now).is_ok(), "{ip}");
    }
    assert_eq!(neighbours.receive(&announce(1), from(200), now), Err(Ignored::TooManyNeighbours));
    assert!(neighbours.receive(&announce(2), from(2), now).is_ok(), "known IPs go on");
}

#[test]
fn we_announce_on_start_again_soon_after_then_every_five_minutes_and_answer_newcomers_at_most_once_a_minute() {
    let start = Instant::now();
    let mut neighbours = Neighbours::with_cookie(HASH, "ours".into(), None, start);
    assert_eq!(neighbours.next_announce(), start, "at once");
    neighbours.announced(start);
    assert_eq!(neighbours.next_announce(), start + REPEAT_AFTER);
    let second = start + REPEAT_AFTER;
    neighbours.announced(second);
    assert_eq!(neighbours.next_announce(), second + ANNOUNCE_INTERVAL);

    let announce = |port: u16| Announce { port, info_hashes: vec![HASH], cookie: None }.encode(group()).expect("ok");
    // A newcomer 20 s after our last announce: answered 60 s after it.
    let heard = second + Duration::from_secs(20);
    assert!(neighbours.receive(&announce(1), from(2), heard).is_ok());
    assert_eq!(neighbours.next_announce(), second + REPLY_GAP);
    // Another newcomer before then: the same answer serves both.
    assert!(neighbours.receive(&announce(2), from(2), heard).is_ok());
    assert_eq!(neighbours.next_announce(), second + REPLY_GAP);
    neighbours.announced(second + REPLY_GAP);
    assert_eq!(neighbours.next_announce(), second + ANNOUNCE_INTERVAL, "the round is unchanged");
    // A neighbour heard again is no newcomer; one heard long after our last announce is answered at once.
    assert!(neighbours.receive(&announce(1), from(2), second + Duration::from_secs(200)).is_ok());
    assert_eq!(neighbours.next_announce(), second + ANNOUNCE_INTERVAL);
    let late = second + Duration::from_secs(250);
    assert!(neighbours.receive(&announce(1), from(3), late).is_ok());
    assert_eq!(neighbours.next_announce(), late);
    // Nor do ignored announces call for an answer.
    neighbours.announced(late);
    assert_eq!(neighbours.receive(&announce(1000), from(2), late), Ok(SocketAddr::from(([10, 77, 0, 2], 1000))));
    let answer = neighbours.next_announce();
    for port in 2000..2100 {
        let _ = neighbours.receive(&announce(port), from(2), late);
    }
    assert_eq!(neighbours.next_announce(), answer);
    assert!(neighbours.receive(LIBTORRENT_ANNOUNCE, from(9), late).is_err());
}

#[test]
fn reads_are_rate_limited_by_a_token_bucket() {
    let start = Instant::now();
    let mut neighbours = Neighbours::with_cookie(HASH, "ours".into(), None, start);
    for _ in 0..DATAGRAM_BURST {
        assert_eq!(neighbours.admit(start), Ok(()));
    }
    let wait = neighbours.admit(start).expect_err("the burst is spent");
    assert_eq!(wait, Duration::from_millis(10));
    assert_eq!(neighbours.admit(start + Duration::from_millis(5)), Err(Duration::from_millis(5)));
    assert_eq!(neighbours.admit(start + Duration::from_millis(10)), Ok(()));
    // One second: 100 reads, no more.
    let later = start + Duration::from_millis(1010);
    let admitted = (0..1000).filter(|_| neighbours.admit(later).is_ok()).count();
    assert_eq!(admitted, 100);
    // A long quiet spell refills the burst only.
    let much_later = later + Duration::from_secs(3600);
    let admitted = (0..1000).filter(|_| neighbours.admit(much_later).is_ok()).count();
    assert_eq!(admitted, DATAGRAM_BURST as usize);
}

#[tokio::test]
async fn discovery_does_not_apply_on_loopback_or_to_an_ipv6_address() {
    for ip in ["127.0.0.1", "::1", "fe80::1", "2001:db8::1"] {
        let ip: IpAddr = ip.parse().expect("ip");
        assert!(Lsd::start(ip).expect("nothing bound").is_none(), "{ip}");
    }
}

fn announce_strategy() -> impl Strategy<Value = (u16, Vec<[u8; 20]>, Option<String>)> {
    (
        1u16..,
        prop::collection::vec(any::<[u8; 20]>().prop_filter("non-zero", |hash| *hash != [0; 20]), 1..=MAX_INFO_HASHES),
        prop::option::of("[!-~]([ -~]{0,30}[!-~])?"),
    )
}

proptest! {
    #[test]
    fn parsing_any_bytes_never_panics_and_keeps_the_caps(bytes in prop::collection::vec(any::<u8>(), 0..1600)) {
        if let Ok(announce) = Announce::parse(&bytes) {
            prop_assert!(announce.port != 0);
            prop_assert!(!announce.info_hashes.is_empty() && announce.info_hashes.len() <= MAX_INFO_HASHES);
        }
    }

    #[test]
    fn what_is_written_reads_back_the_same((port, mut hashes, cookie) in announce_strategy()) {
        hashes.dedup();
        let mut distinct = Vec::new();
        for hash in hashes {
            if !distinct.contains(&hash) {
                distinct.push(hash);
            }
        }
        let announce = Announce { port, info_hashes: distinct, cookie: cookie.as_deref() };
        let bytes = announce.encode(group()).expect("encodes");
        prop_assert_eq!(Announce::parse(&bytes), Ok(announce));
    }

    #[test]
    fn headers_in_any_case_with_lf_or_crlf_read_the_same(
        port in 1u16..,
        byte in 1u8..,
        crlf in any::<bool>(),
        upper in any::<bool>(),
    ) {
        let end = if crlf { "\r\n" } else { "\n" };
        let names = if upper { ["PORT", "INFOHASH", "COOKIE"] } else { ["port", "infohash", "cookie"] };
        let text = format!(
            "BT-SEARCH * HTTP/1.1{end}{}: {port}{end}{}: {}{end}{}: c{end}{end}",
            names[0], names[1], hex40(byte), names[2]
        );
        prop_assert_eq!(
            Announce::parse(text.as_bytes()),
            Ok(Announce { port, info_hashes: vec![hash(byte)], cookie: Some("c") })
        );
    }
}
