//! Every malformed case gets its own error, naming what was wrong; limits hold; no prefix of a valid input
//! panics a parser.

use crate::AnnounceEvent;
use crate::http::{
    HttpAnnounceReply, HttpQueryError, HttpReplyError, HttpScrapeReply, IpParam, MAX_REPLY_LEN, MAX_REPLY_PEERS,
    MAX_TOKEN_LEN, parse_announce_query, parse_announce_reply, parse_scrape_query, parse_scrape_reply,
};

/// A valid announce query, with `{}` replaced by `extra`.
fn query_with(extra: &str) -> String {
    format!("info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=-XX0001-abcdefghijkl&port=6881&uploaded=0&downloaded=0{extra}")
}

fn announce_error(query: &str) -> HttpQueryError {
    parse_announce_query(query.as_bytes(), IpParam::Accept).expect_err(query)
}

#[test]
fn each_malformed_announce_query_names_its_fault() {
    use HttpQueryError::{
        BadEscape, BadFlag, BadIp, BadNumber, BadPort, MissingField, RepeatedField, TooLong, UnknownEvent, WrongLength,
    };
    let long_key = "k".repeat(MAX_TOKEN_LEN + 1);
    let long_escaped_id = "%41".repeat(MAX_TOKEN_LEN + 1);
    let cases: Vec<(String, HttpQueryError)> = vec![
        (query_with(""), MissingField("left")),
        ("port=1&uploaded=0&downloaded=0&left=0".into(), MissingField("info_hash")),
        (query_with("&left=0").replace("peer_id", "peer"), MissingField("peer_id")),
        (query_with("&left=0").replace("port=6881&", ""), MissingField("port")),
        (query_with("&left=0&info_hash=bbbbbbbbbbbbbbbbbbbb"), RepeatedField("info_hash")),
        (query_with("&left=0&port=6882"), RepeatedField("port")),
        (query_with("&left=0&left=1"), RepeatedField("left")),
        (query_with("&left=0&event=started&event=stopped"), RepeatedField("event")),
        (
            query_with("&left=0").replace("aaaaaaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaaaaa"),
            WrongLength { field: "info_hash", expected: 20, got: 19 },
        ),
        (
            query_with("&left=0").replace("aaaaaaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaaaa%20%20%20"),
            WrongLength { field: "info_hash", expected: 20, got: 21 },
        ),
        (query_with("&left=0").replace("abcdefghijkl", ""), WrongLength { field: "peer_id", expected: 20, got: 8 }),
        (query_with("&left=0").replace("aaaaaaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaaaaa%4"), BadEscape("info_hash")),
        (query_with("&left=0").replace("aaaaaaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaaaaa%zz"), BadEscape("info_hash")),
        (query_with("&left=0").replace("-XX0001-", "%-XX0001"), BadEscape("peer_id")),
        (query_with("&left=0").replace("port=6881", "port=0"), BadPort(0)),
        (query_with("&left=0").replace("port=6881", "port=65536"), BadPort(65536)),
        (query_with("&left=0").replace("port=6881", "port=-1"), BadNumber("port")),
        (query_with("&left=0").replace("port=6881", "port="), BadNumber("port")),
        (query_with("&left=0").replace("port=6881", "port"), BadNumber("port")),
        (query_with("&left=0").replace("port=6881", "port=%2"), BadEscape("port")),
        (query_with("&left=-1"), BadNumber("left")),
        (query_with("&left=+1"), BadNumber("left")),
        (query_with("&left=1.5"), BadNumber("left")),
        (query_with("&left=%201"), BadNumber("left")),
        (query_with("&left=18446744073709551616"), BadNumber("left")),
        (query_with("&left=0").replace("uploaded=0", "uploaded=0x10"), BadNumber("uploaded")),
        (query_with("&left=0").replace("downloaded=0", "downloaded=1e3"), BadNumber("downloaded")),
        (query_with("&left=0&numwant=-1"), BadNumber("numwant")),
        (query_with("&left=0&event=start"), UnknownEvent),
        (query_with("&left=0&event=STARTED"), UnknownEvent),
        (query_with("&left=0&event=%ZZ"), BadEscape("event")),
        (query_with("&left=0&compact=2"), BadFlag("compact")),
        (query_with("&left=0&compact=yes"), BadFlag("compact")),
        (query_with("&left=0&compact=%"), BadEscape("compact")),
        (query_with(&format!("&left=0&key={long_key}")), TooLong { field: "key", max: MAX_TOKEN_LEN }),
        (
            query_with(&format!("&left=0&trackerid={long_escaped_id}")),
            TooLong { field: "trackerid", max: MAX_TOKEN_LEN },
        ),
        (query_with("&left=0&key=%g0"), BadEscape("key")),
        (query_with("&left=0&ip=tracker.example"), BadIp),
        (query_with("&left=0&ip=1.2.3.4.5"), BadIp),
        (query_with("&left=0&ip=%FF"), BadIp),
        (query_with("&left=0&ip=1.2.3.4&ip=1.2.3.4"), RepeatedField("ip")),
    ];
    for (query, expected) in cases {
        assert_eq!(announce_error(&query), expected, "{query}");
        assert!(!expected.to_string().is_empty());
    }
}

#[test]
fn lenient_announce_fields() {
    let parse = |extra: &str, ip_param| parse_announce_query(query_with(extra).as_bytes(), ip_param).expect(extra);
    // Regular announces, however spelled.
    for event in ["", "&event=", "&event=empty", "&event=paused"] {
        assert_eq!(parse(&format!("&left=0{event}"), IpParam::Ignore).event, AnnounceEvent::None, "{event}");
    }
    assert_eq!(parse("&left=0&event=st%61rted", IpParam::Ignore).event, AnnounceEvent::Started);
    // Defaults.
    let plain = parse("&left=7", IpParam::Ignore);
    assert_eq!((plain.left, plain.compact, plain.numwant, &plain.key, plain.ip), (7, false, None, &None, None));
    assert!(!parse("&left=0&compact=0", IpParam::Ignore).compact);
    assert_eq!(parse("&left=0&numwant=99999999999", IpParam::Ignore).numwant, Some(u32::MAX));
    assert_eq!(parse("&left=00012", IpParam::Ignore).left, 12);
    assert_eq!(parse("&left=%31%32", IpParam::Ignore).left, 12);
    assert_eq!(
        parse(&format!("&left=0&key={}", "k".repeat(MAX_TOKEN_LEN)), IpParam::Ignore).key.map(|k| k.len()),
        Some(100)
    );
    // Unknown, empty and value-less segments are skipped; repeats of skipped fields do not matter.
    let noisy = parse("&&left=0&supportcrypto=1&supportcrypto=1&no_peer_id&corrupt=x&=&ipv6=%3A%3A1&", IpParam::Ignore);
    assert_eq!(noisy.left, 0);
    // `ip` is not even decoded unless asked for.
    assert_eq!(parse("&left=0&ip=%zz&ip=junk", IpParam::Ignore).ip, None);
    assert_eq!(parse("&left=0&ip=10.1.2.3", IpParam::Accept).ip, Some("10.1.2.3".parse().expect("ip")));
    assert_eq!(parse("&left=0&ip=2001%3Adb8%3A%3A1", IpParam::Accept).ip, Some("2001:db8::1".parse().expect("ip")));
    // A literal `+` in a binary field is byte 0x2B, not a space.
    let plus = parse_announce_query(
        query_with("&left=0").replace("aaaaaaaaaaaaaaaaaaaa", "+aaaaaaaaaaaaaaaaaaa").as_bytes(),
        IpParam::Ignore,
    )
    .expect("parses");
    assert_eq!(plus.info_hash[0], b'+');
}

#[test]
fn scrape_query_limits_and_repeats() {
    let hash = |byte: u8| format!("info_hash={}", char::from(byte).to_string().repeat(20));
    let query = [hash(b'a'), hash(b'b'), hash(b'a'), "other=1".into()].join("&");
    assert_eq!(parse_scrape_query(query.as_bytes(), 3), Ok(vec![[b'a'; 20], [b'b'; 20]]));
    assert_eq!(parse_scrape_query(query.as_bytes(), 2), Err(HttpQueryError::TooManyInfoHashes { max: 2 }));
    assert_eq!(parse_scrape_query(b"", 74), Ok(vec![]));
    assert_eq!(parse_scrape_query(b"passkey=1", 74), Ok(vec![]));
    assert_eq!(
        parse_scrape_query(b"info_hash=short", 74),
        Err(HttpQueryError::WrongLength { field: "info_hash", expected: 20, got: 5 })
    );
    assert_eq!(parse_scrape_query(b"info_hash=%", 74), Err(HttpQueryError::BadEscape("info_hash")));
    // The limit is checked before the bad hash past it is decoded.
    let many = [hash(b'a'), hash(b'b'), "info_hash=%".into()].join("&");
    assert_eq!(parse_scrape_query(many.as_bytes(), 2), Err(HttpQueryError::TooManyInfoHashes { max: 2 }));
}

#[test]
fn each_malformed_reply_names_its_fault() {
    use HttpReplyError::{BadInteger, NotADictionary, PeersLength, TrailingData, WrongType};
    let cases: [(&[u8], HttpReplyError); 14] = [
        (b"d5:peers7:abcdefge", PeersLength { key: "peers", len: 7, entry_len: 6 }),
        (b"d5:peers0:6:peers617:aaaaaaaaaaaaaaaaae", PeersLength { key: "peers6", len: 17, entry_len: 18 }),
        (b"d8:intervali-1e5:peers0:e", BadInteger { key: "interval", value: -1 }),
        (b"d8:completei4294967296e5:peers0:e", BadInteger { key: "complete", value: 1 << 32 }),
        (b"d12:min intervali-5ee", BadInteger { key: "min interval", value: -5 }),
        (b"d8:interval4:1800e", WrongType { key: "interval", expected: "an integer" }),
        (b"d10:incompletelee", WrongType { key: "incomplete", expected: "an integer" }),
        (b"d5:peersi0ee", WrongType { key: "peers", expected: "a string or a list" }),
        (b"d5:peers0:6:peers6lee", WrongType { key: "peers6", expected: "a string" }),
        (b"d14:failure reasoni1ee", WrongType { key: "failure reason", expected: "a string" }),
        (b"d10:tracker idi1ee", WrongType { key: "tracker id", expected: "a string" }),
        (b"d15:warning messagedee", WrongType { key: "warning message", expected: "a string" }),
        (b"l5:peers0:e", NotADictionary),
        (b"d5:peers0:exyz", TrailingData(3)),
    ];
    for (body, expected) in cases {
        assert_eq!(parse_announce_reply(body), Err(expected.clone()), "{}", String::from_utf8_lossy(body));
        assert!(!expected.to_string().is_empty());
    }
    for body in [&b""[..], b"<html>502 Bad Gateway</html>", b"d5:peers", b"d5:peers0:5:peers0:e", b"i1e\n"] {
        let error = parse_announce_reply(body).expect_err("malformed");
        assert!(matches!(error, HttpReplyError::Bencode(_) | HttpReplyError::NotADictionary), "{error:?} for {body:?}");
    }
}

#[test]
fn each_malformed_scrape_reply_names_its_fault() {
    use HttpReplyError::{BadInfoHash, BadInteger, MissingFiles, WrongType};
    let cases: [(&[u8], HttpReplyError); 6] = [
        (b"de", MissingFiles),
        (b"d5:fileslee", WrongType { key: "files", expected: "a dictionary" }),
        (b"d5:filesd19:aaaaaaaaaaaaaaaaaaadeee", BadInfoHash(19)),
        (b"d5:filesd40:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaadeee", BadInfoHash(40)),
        (b"d5:filesd20:aaaaaaaaaaaaaaaaaaaai1eee", WrongType { key: "files entry", expected: "a dictionary" }),
        (b"d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei-1eeee", BadInteger { key: "complete", value: -1 }),
    ];
    for (body, expected) in cases {
        assert_eq!(parse_scrape_reply(body), Err(expected), "{}", String::from_utf8_lossy(body));
    }
    // Absent counts read as zero; an empty `files` is a valid answer.
    let HttpScrapeReply::Files(entries) = parse_scrape_reply(b"d5:filesd20:aaaaaaaaaaaaaaaaaaaadeee").expect("parses")
    else {
        panic!("not a failure");
    };
    assert_eq!(entries[0].stats, crate::TorrentStats::default());
    assert_eq!(parse_scrape_reply(b"d5:filesdee"), Ok(HttpScrapeReply::Files(vec![])));
}

#[test]
fn oversized_bodies_are_refused_before_parsing() {
    // Not even bencode: the size check comes first.
    let body = vec![b'x'; MAX_REPLY_LEN + 1];
    let too_large = HttpReplyError::TooLarge { len: MAX_REPLY_LEN + 1, max: MAX_REPLY_LEN };
    assert_eq!(parse_announce_reply(&body), Err(too_large.clone()));
    assert_eq!(parse_scrape_reply(&body), Err(too_large));
}

#[test]
fn peer_lists_are_capped() {
    let count = MAX_REPLY_PEERS + 500;
    let mut compact = format!("d5:peers{}:", count * 6).into_bytes();
    compact.extend(std::iter::repeat_n(*b"\x01\x02\x03\x04\x00\x50", count).flatten());
    compact.extend_from_slice(format!("6:peers6{}:", count * 18).as_bytes());
    compact.extend(std::iter::repeat_n([7; 18], count).flatten());
    compact.push(b'e');
    let mut dicts = b"d5:peersl".to_vec();
    for _ in 0..count {
        dicts.extend_from_slice(b"d2:ip7:1.2.3.44:porti80eed2:ip3:::14:porti80ee");
    }
    dicts.extend_from_slice(b"e6:peers618:");
    dicts.extend_from_slice(&[7; 18]);
    dicts.push(b'e');
    for body in [compact, dicts] {
        let Ok(HttpAnnounceReply::Success(reply)) = parse_announce_reply(&body) else { panic!("parses") };
        assert_eq!((reply.peers.len(), reply.peers6.len()), (MAX_REPLY_PEERS, MAX_REPLY_PEERS));
    }
}

#[test]
fn no_prefix_or_single_byte_change_panics_a_parser() {
    let announce_reply: &[u8] = b"d8:completei2e10:downloadedi5e10:incompletei1e8:intervali1727e12:min intervali863e\
        5:peersld2:ip7:1.2.3.44:porti1ee6:peers618:\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\
        \x1a\xe1e";
    let scrape_reply: &[u8] = b"d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei1e10:downloadedi3e10:incompletei2eeee";
    let announce_query = query_with("&left=0&event=started&compact=1&numwant=5&key=%41&trackerid=x&ip=1.2.3.4");
    let scrape_query = "info_hash=%61aaaaaaaaaaaaaaaaaaa&info_hash=bbbbbbbbbbbbbbbbbbbb";
    for input in [announce_reply, scrape_reply, announce_query.as_bytes(), scrape_query.as_bytes()] {
        for end in 0..=input.len() {
            parse_all(&input[..end]);
        }
        for at in 0..input.len() {
            for byte in [0, b'%', b'&', b'=', b'e', b'd', b'l', b'i', b'0', b'9', b':', b'-', 0xff] {
                let mut changed = input.to_vec();
                changed[at] = byte;
                parse_all(&changed);
            }
        }
    }
}

fn parse_all(input: &[u8]) {
    let _ = parse_announce_reply(input);
    let _ = parse_scrape_reply(input);
    let _ = parse_announce_query(input, IpParam::Accept);
    let _ = parse_announce_query(input, IpParam::Ignore);
    let _ = parse_scrape_query(input, 74);
}
