//! BEP 11 ut_pex: what libtorrent sends, IPv4 and IPv6 peers with flags, the per-list cap, and every malformed
//! message refused with a named error.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use bencode::BencodeError;
use peer_wire::{ExtensionError, MAX_PEX_PEERS, PexFlags, PexMessage, PexPeer};

/// The ut_pex message libtorrent 2.0.8 sent us (captured on loopback): the two raw peers we had connected, which
/// had given listen ports 40001 and 40002 in their extended handshakes, flags 0, and the four other keys empty.
const LIBTORRENT: &[u8] = b"d5:added12:\x7f\x00\x00\x01\x9c\x41\x7f\x00\x00\x01\x9c\x427:added.f2:\x00\x00\
6:added60:8:added6.f0:7:dropped0:8:dropped60:e";

fn v4(a: u8, b: u8, c: u8, d: u8, port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(a, b, c, d), port))
}

fn v6(last: u16, port: u16) -> SocketAddr {
    SocketAddr::from((Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last), port))
}

fn peer(addr: SocketAddr, flags: u8) -> PexPeer {
    PexPeer { addr, flags: PexFlags(flags) }
}

fn encode(m: &PexMessage) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode(&mut out);
    out
}

/// A bencoded dictionary of byte strings, keys in the order given.
fn dict(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = b"d".to_vec();
    for (key, value) in entries {
        out.extend_from_slice(format!("{}:{key}{}:", key.len(), value.len()).as_bytes());
        out.extend_from_slice(value);
    }
    out.push(b'e');
    out
}

#[test]
fn libtorrent_message_decodes_and_encodes_byte_for_byte() {
    let expected =
        PexMessage { added: vec![peer(v4(127, 0, 0, 1, 40001), 0), peer(v4(127, 0, 0, 1, 40002), 0)], dropped: vec![] };
    assert_eq!(PexMessage::decode(LIBTORRENT), Ok((expected.clone(), 0)));
    assert_eq!(encode(&expected), LIBTORRENT);
}

#[test]
fn both_families_flags_and_drops() {
    let six = |last: u16, port: u16| [&v6_octets(last)[..], &port.to_be_bytes()].concat();
    let bytes = dict(&[
        ("added", &[10, 0, 0, 1, 0x1A, 0xE1]),
        ("added.f", &[0x12]),
        ("added6", &[six(1, 6881), six(2, 6882)].concat()),
        ("added6.f", &[0x01, 0x1F]),
        ("dropped", &[192, 168, 1, 9, 0, 80, 192, 168, 1, 10, 0, 81]),
        ("dropped6", &six(3, 443)),
    ]);
    let expected = PexMessage {
        added: vec![peer(v4(10, 0, 0, 1, 6881), 0x12), peer(v6(1, 6881), 0x01), peer(v6(2, 6882), 0x1F)],
        dropped: vec![v4(192, 168, 1, 9, 80), v4(192, 168, 1, 10, 81), v6(3, 443)],
    };
    assert_eq!(PexMessage::decode(&bytes), Ok((expected.clone(), 0)));
    assert_eq!(encode(&expected), bytes);
    let flags = expected.added[0].flags;
    assert!(flags.contains(PexFlags::SEED) && flags.contains(PexFlags::REACHABLE));
    assert!(!flags.contains(PexFlags::ENCRYPTION));
    assert_eq!(PexFlags::SEED | PexFlags::REACHABLE, PexFlags(0x12));
    let all = PexFlags::ENCRYPTION | PexFlags::SEED | PexFlags::UTP | PexFlags::HOLEPUNCH | PexFlags::REACHABLE;
    assert_eq!(all, PexFlags(0x1F));
}

#[test]
fn encoding_sorts_peers_into_lists_by_family() {
    let message = PexMessage {
        added: vec![peer(v6(1, 1), 4), peer(v4(1, 2, 3, 4, 5), 2), peer(v6(2, 2), 8)],
        dropped: vec![v6(9, 9), v4(9, 9, 9, 9, 9)],
    };
    let (decoded, skipped) = PexMessage::decode(&encode(&message)).expect("own encoding is valid");
    assert_eq!(skipped, 0);
    // IPv4 first, each family in the order given.
    assert_eq!(decoded.added, [message.added[1], message.added[0], message.added[2]]);
    assert_eq!(decoded.dropped, [message.dropped[1], message.dropped[0]]);
}

#[test]
fn empty_message_and_empty_dictionary() {
    assert_eq!(encode(&PexMessage::default()), b"d5:added0:7:added.f0:6:added60:8:added6.f0:7:dropped0:8:dropped60:e");
    assert_eq!(PexMessage::decode(b"de"), Ok((PexMessage::default(), 0)));
}

#[test]
fn missing_flags_mean_no_flags() {
    let bytes =
        dict(&[("added", &[1, 2, 3, 4, 0, 5, 5, 6, 7, 8, 0, 9]), ("added6", &[[0; 16], [0; 16]].concat()[..18])]);
    let (message, _) = PexMessage::decode(&bytes).expect("flags are optional");
    assert_eq!(
        message.added,
        [peer(v4(1, 2, 3, 4, 5), 0), peer(v4(5, 6, 7, 8, 9), 0), peer(SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)), 0)]
    );
}

#[test]
fn flag_list_of_the_wrong_length_is_refused() {
    let cases: Vec<(Vec<u8>, &str, usize, usize)> = vec![
        (dict(&[("added", &[1, 2, 3, 4, 0, 5]), ("added.f", &[])]), "added.f", 0, 1),
        (dict(&[("added", &[1, 2, 3, 4, 0, 5]), ("added.f", &[0, 0])]), "added.f", 2, 1),
        (dict(&[("added.f", &[0])]), "added.f", 1, 0),
        (dict(&[("added6", &[0; 36]), ("added6.f", &[0])]), "added6.f", 1, 2),
    ];
    for (bytes, key, flags, peers) in cases {
        assert_eq!(PexMessage::decode(&bytes), Err(ExtensionError::PexFlagCount { key, flags, peers }), "{bytes:?}");
    }
}

#[test]
fn lists_that_are_not_whole_entries_are_refused() {
    let cases: Vec<(Vec<u8>, &str, usize, usize)> = vec![
        (dict(&[("added", &[0; 7])]), "added", 7, 6),
        (dict(&[("added", &[0; 5])]), "added", 5, 6),
        (dict(&[("added6", &[0; 17])]), "added6", 17, 18),
        (dict(&[("added6", &[0; 6])]), "added6", 6, 18),
        (dict(&[("dropped", &[0; 13])]), "dropped", 13, 6),
        (dict(&[("dropped6", &[0; 19])]), "dropped6", 19, 18),
    ];
    for (bytes, key, len, entry_len) in cases {
        assert_eq!(PexMessage::decode(&bytes), Err(ExtensionError::PexLength { key, len, entry_len }), "{bytes:?}");
    }
}

#[test]
fn keys_of_the_wrong_type_and_unknown_keys_are_ignored() {
    let bytes = b"d5:addedi1e7:added.fle6:added6de7:dropped1:x\
                  8:dropped6i0e5:otherli1ee3:zzz6:abcdefe";
    // `dropped` is a string, so it is read, and its length is refused.
    assert_eq!(PexMessage::decode(bytes), Err(ExtensionError::PexLength { key: "dropped", len: 1, entry_len: 6 }));
    let bytes = b"d5:addedi1e7:added.fle6:added6de8:dropped6i0e5:otherli1ee3:zzz6:abcdefe";
    assert_eq!(PexMessage::decode(bytes), Ok((PexMessage::default(), 0)));
}

#[test]
fn lists_past_the_cap_are_cut_and_counted() {
    let many = |n: usize, entry: &[u8]| entry.repeat(n);
    let bytes = dict(&[
        ("added", &many(MAX_PEX_PEERS + 50, &[1, 1, 1, 1, 0, 1])),
        ("added.f", &vec![2; MAX_PEX_PEERS + 50]),
        ("added6", &many(MAX_PEX_PEERS, &[3; 18])),
        ("dropped", &many(MAX_PEX_PEERS + 1, &[4, 4, 4, 4, 0, 4])),
        ("dropped6", &many(3, &[5; 18])),
    ]);
    let (message, skipped) = PexMessage::decode(&bytes).expect("valid, if long");
    assert_eq!(skipped, 51);
    assert_eq!(message.added.len(), 2 * MAX_PEX_PEERS);
    assert!(message.added[..MAX_PEX_PEERS].iter().all(|p| *p == peer(v4(1, 1, 1, 1, 1), 2)));
    assert!(message.added[MAX_PEX_PEERS..].iter().all(|p| p.addr.is_ipv6() && p.flags == PexFlags(0)));
    assert_eq!(message.dropped.len(), MAX_PEX_PEERS + 3);
}

#[test]
fn payload_that_is_not_one_bencoded_dictionary_is_refused() {
    let pex_error = |source| ExtensionError::Bencode { message: "ut_pex", source };
    assert_eq!(PexMessage::decode(b""), Err(pex_error(BencodeError::Truncated(0))));
    assert_eq!(PexMessage::decode(b"d5:added"), Err(pex_error(BencodeError::Truncated(8))));
    assert_eq!(PexMessage::decode(b"d5:added0:5:added0:e"), Err(pex_error(BencodeError::DuplicateKey(10))));
    assert_eq!(PexMessage::decode(b"le"), Err(ExtensionError::NotADictionary { message: "ut_pex" }));
    assert_eq!(PexMessage::decode(b"dee"), Err(ExtensionError::TrailingData { message: "ut_pex", len: 1 }));
}

#[test]
fn error_messages_name_the_problem() {
    assert_eq!(
        ExtensionError::PexLength { key: "added", len: 7, entry_len: 6 }.to_string(),
        "ut_pex `added` is 7 bytes, not a multiple of 6"
    );
    assert_eq!(
        ExtensionError::PexFlagCount { key: "added.f", flags: 2, peers: 1 }.to_string(),
        "ut_pex `added.f` has 2 flag bytes for 1 peers"
    );
}

#[test]
fn decode_never_panics_on_prefixes() {
    for cut in 0..LIBTORRENT.len() {
        assert!(PexMessage::decode(&LIBTORRENT[..cut]).is_err(), "cut at {cut}");
    }
}

fn v6_octets(last: u16) -> [u8; 16] {
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last).octets()
}
