use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::message::{Announce, EncodeError, MAX_ANNOUNCE_LEN, MAX_DATAGRAM_LEN, MAX_INFO_HASHES, ParseError};
use super::neighbours::{
    ANNOUNCE_INTERVAL, DATAGRAM_BURST, Ignored, MAX_NEIGHBOUR_IPS, MAX_PORTS_PER_IP, Neighbours, REPEAT_AFTER,
    REPLY_GAP, peer_address,
};
use super::{Family, GROUP_V4, GROUP_V6, Lsd, families, interfaces};

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
    let later = now + Duration::from_secs(1);
    for n in 1..MAX_NEIGHBOUR_IPS {
        let ip = Ipv4Addr::from(0x0a00_0000 + u32::try_from(n).expect("small"));
        assert!(neighbours.receive(&announce(1), SocketAddr::from((ip, 6771)), later).is_ok(), "{ip}");
    }
    assert_eq!(neighbours.neighbour_count(), MAX_NEIGHBOUR_IPS);
    // Full: a newcomer is not locked out; the sender heard from longest ago (from(2), at `now`) makes way.
    assert!(neighbours.receive(&announce(1), from(200), later).is_ok());
    assert_eq!(neighbours.neighbour_count(), MAX_NEIGHBOUR_IPS);
    for port in 1..=MAX_PORTS_PER_IP as u16 {
        assert!(neighbours.receive(&announce(port), from(2), later).is_ok(), "forgotten, so heard anew");
    }
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

#[test]
fn the_ipv6_announce_names_the_ipv6_group_as_libtorrent_does_and_reads_back() {
    // libtorrent's lsd.cpp writes `Host: [ff15::efc0:988f]:6771` over IPv6; all else is as over IPv4.
    let announce = Announce { port: 6881, info_hashes: vec![LIBTORRENT_HASH], cookie: Some("359c9421") };
    let bytes = announce.encode(GROUP_V6.into()).expect("encodes");
    let expected = String::from_utf8_lossy(LIBTORRENT_ANNOUNCE)
        .replace("Host: 239.192.152.143:6771", "Host: [ff15::efc0:988f]:6771")
        .into_bytes();
    assert_eq!(bytes, expected);
    assert_eq!(Announce::parse(&bytes), Ok(announce));
    let full: Vec<[u8; 20]> = (1..=MAX_INFO_HASHES as u8).map(hash).collect();
    let fits = Announce { port: 65535, info_hashes: full, cookie: Some("ffffffff") };
    assert!(fits.encode(GROUP_V6.into()).expect("fits").len() <= MAX_ANNOUNCE_LEN);
}

fn v6(text: &str, port: u16, scope: u32) -> SocketAddr {
    SocketAddr::V6(SocketAddrV6::new(text.parse().expect("IPv6 literal"), port, 0, scope))
}

#[test]
fn a_sender_is_handed_on_at_its_ip_with_its_scope_only_when_link_local() {
    assert_eq!(peer_address(from(2), 6881), Some(SocketAddr::from(([10, 77, 0, 2], 6881))));
    assert_eq!(peer_address(v6("fd77::2", 6771, 0), 6881), Some(v6("fd77::2", 6881, 0)));
    assert_eq!(peer_address(v6("2001:db8::2", 6771, 3), 6881), Some(v6("2001:db8::2", 6881, 0)), "no scope kept");
    assert_eq!(peer_address(v6("fe80::2", 6771, 3), 6881), Some(v6("fe80::2", 6881, 3)), "scope kept");
    assert_eq!(peer_address(v6("::ffff:10.77.0.2", 6771, 0), 1), Some(SocketAddr::from(([10, 77, 0, 2], 1))));
    for bad in [
        SocketAddr::from(([127, 0, 0, 1], 6771)),
        SocketAddr::from(([127, 1, 2, 3], 6771)),
        SocketAddr::from(([0, 0, 0, 0], 6771)),
        SocketAddr::from(([239, 192, 152, 143], 6771)),
        v6("::1", 6771, 0),
        v6("::", 6771, 0),
        v6("::ffff:127.0.0.1", 6771, 0),
        v6("ff15::efc0:988f", 6771, 0),
        v6("fe80::2", 6771, 0),
    ] {
        assert_eq!(peer_address(bad, 6881), None, "{bad}");
    }
}

#[test]
fn ipv6_neighbours_are_handed_on_with_scope_and_loopback_ones_never() {
    let now = Instant::now();
    let own = v6("fd77::1", 6881, 0);
    let mut neighbours = Neighbours::with_cookie(HASH, "ours".into(), Some(own), now);
    let theirs = Announce { port: 6881, info_hashes: vec![HASH], cookie: Some("theirs") };
    let bytes = theirs.encode(GROUP_V6.into()).expect("encodes");
    assert_eq!(neighbours.receive(&bytes, v6("fe80::2", 6771, 4), now), Ok(v6("fe80::2", 6881, 4)));
    assert_eq!(neighbours.receive(&bytes, v6("fd77::2", 6771, 0), now), Ok(v6("fd77::2", 6881, 0)));
    assert_eq!(neighbours.receive(&bytes, v6("::1", 6771, 0), now), Err(Ignored::BadSender));
    assert_eq!(neighbours.receive(&bytes, SocketAddr::from(([127, 0, 0, 1], 6771)), now), Err(Ignored::BadSender));
    assert_eq!(neighbours.receive(&bytes, v6("fe80::2", 6771, 0), now), Err(Ignored::BadSender));
    let no_cookie = Announce { port: 6881, info_hashes: vec![HASH], cookie: None }.encode(GROUP_V6.into());
    let no_cookie = no_cookie.expect("encodes");
    assert_eq!(neighbours.receive(&no_cookie, v6("fd77::1", 6771, 0), now), Err(Ignored::Ours), "our own address");
    let ours = neighbours.announce(6881, GROUP_V6.into()).expect("encodes");
    assert_eq!(neighbours.receive(&ours, v6("fd77::9", 6771, 0), now), Err(Ignored::Ours), "our cookie");
    assert_eq!(neighbours.receive(&ours, v6("::1", 6771, 0), now), Err(Ignored::Ours), "ours first");
}

#[test]
fn caps_count_ipv6_senders_like_ipv4_ones() {
    let now = Instant::now();
    let mut neighbours = Neighbours::with_cookie(HASH, "ours".into(), None, now);
    let announce =
        |port: u16| Announce { port, info_hashes: vec![HASH], cookie: None }.encode(GROUP_V6.into()).expect("ok");
    for port in 1..=MAX_PORTS_PER_IP as u16 {
        assert!(neighbours.receive(&announce(port), v6("fe80::2", 6771, 1), now).is_ok());
    }
    // The same link-local address on another interface is the same sender IP.
    assert_eq!(neighbours.receive(&announce(1000), v6("fe80::2", 6771, 2), now), Err(Ignored::TooManyPorts));
    for n in 1..MAX_NEIGHBOUR_IPS {
        let ip = Ipv6Addr::from(0xfd77_u128 << 112 | u128::try_from(n).expect("small"));
        let sender = SocketAddr::V6(SocketAddrV6::new(ip, 6771, 0, 0));
        assert!(neighbours.receive(&announce(1), sender, now).is_ok(), "{ip}");
    }
    assert!(neighbours.receive(&announce(1), v6("fd77:1::1", 6771, 0), now).is_ok(), "a newcomer is not locked out");
    assert_eq!(neighbours.neighbour_count(), MAX_NEIGHBOUR_IPS);
}

#[test]
fn families_follow_the_listen_address() {
    let cases: [(&str, &[Family]); 12] = [
        ("0.0.0.0", &[Family::V4(None)]),
        ("10.77.0.1", &[Family::V4(Some(Ipv4Addr::new(10, 77, 0, 1)))]),
        ("::ffff:10.77.0.1", &[Family::V4(Some(Ipv4Addr::new(10, 77, 0, 1)))]),
        ("::", &[Family::V4(None), Family::V6(None)]),
        ("fd77::1", &[Family::V6(Some("fd77::1".parse().expect("ip")))]),
        ("2001:db8::1", &[Family::V6(Some("2001:db8::1".parse().expect("ip")))]),
        ("127.0.0.1", &[]),
        ("127.0.0.2", &[]),
        ("::1", &[]),
        ("::ffff:127.0.0.1", &[]),
        ("fe80::1", &[]),
        ("ff15::efc0:988f", &[]),
    ];
    for (listen, expected) in cases {
        assert_eq!(families(listen.parse().expect("ip")), expected, "{listen}");
    }
}

#[tokio::test]
async fn discovery_does_not_apply_on_loopback_or_a_link_local_address() {
    for ip in ["127.0.0.1", "::1", "fe80::1"] {
        let ip: IpAddr = ip.parse().expect("ip");
        assert!(Lsd::start(ip).expect("nothing bound").is_none(), "{ip}");
    }
}

#[test]
fn an_interface_is_found_by_its_address_in_the_kernels_table() {
    let table = "\
fd000000000000000000000000000002 04 40 00 82     eth0
00000000000000000000000000000001 01 80 10 80       lo
fe8000000000000000fc00fffe000001 04 40 20 80     eth0
fd770000000000000000000000000001 1a 40 00 80     lsd0
short 02 40 00 80 bad0
fd770000000000000000000000000009 zz 40 00 80 bad1
fd77000000000000000000000000000a 00 40 00 80 bad2
";
    let ip = |text: &str| text.parse::<Ipv6Addr>().expect("ip");
    assert_eq!(interfaces::index_in(table, ip("fd00::2")), Some(4));
    assert_eq!(interfaces::index_in(table, ip("::1")), Some(1));
    assert_eq!(interfaces::index_in(table, ip("fe80::fc:ff:fe00:1")), Some(4));
    assert_eq!(interfaces::index_in(table, ip("fd77::1")), Some(26));
    for absent in ["fd77::2", "fd77::9", "fd77::a", "::"] {
        assert_eq!(interfaces::index_in(table, ip(absent)), None, "{absent}");
    }
    assert_eq!(interfaces::index_in("", ip("::1")), None);
    assert_eq!(interfaces::index_in("\u{0}\u{ff}garbage\n\n", ip("::1")), None);
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
    fn reading_any_interface_table_never_panics(text in "[0-9a-fA-F :\n]{0,200}|\\PC{0,200}", bits in any::<u128>()) {
        let _ = interfaces::index_in(&text, Ipv6Addr::from(bits));
    }

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
