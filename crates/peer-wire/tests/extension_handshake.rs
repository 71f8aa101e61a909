//! BEP 10 extended handshake: BEP 10's and BEP 9's examples, what libtorrent sends, the reserved bit, framing as
//! message id 20, and every malformed or odd payload (refused with a named error, or ignored as libtorrent does).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::{NonZeroU8, NonZeroU16};

use bencode::BencodeError;
use peer_wire::{
    EXTENDED_HANDSHAKE_ID, ExtendedHandshake, ExtensionError, Handshake, MAX_CLIENT_NAME_LEN, MAX_EXTENSION_NAME_LEN,
    MAX_EXTENSIONS, MAX_MESSAGE_LEN, Message, ReservedBit, UT_METADATA, UT_PEX, decode,
};

/// The extended handshake libtorrent 2.0.8 sent on a connection we opened to it (captured on loopback with
/// tests/support/capture_libtorrent_extensions.py): its six default extensions, the size of a 149-byte info dict,
/// and our address. `complete_ago` is a libtorrent key we do not keep.
const LIBTORRENT: &[u8] = b"d12:complete_agoi-1e1:md11:lt_donthavei7e10:share_modei8e11:upload_onlyi3e\
12:ut_holepunchi4e11:ut_metadatai2e6:ut_pexi1ee13:metadata_sizei149e4:reqqi2000e1:v18:libtorrent/2.0.8.0\
6:yourip4:\x7f\x00\x00\x01e";

/// The reserved bytes of libtorrent 2.0.8's BEP 3 handshake in the same capture.
const LIBTORRENT_RESERVED: [u8; 8] = [0, 0, 0, 0, 0, 0x10, 0, 0x05];

fn handshake(entries: &[(&str, u8)]) -> ExtendedHandshake {
    ExtendedHandshake {
        extensions: entries.iter().map(|&(name, id)| (name.to_owned(), id)).collect(),
        ..ExtendedHandshake::default()
    }
}

fn encode(h: &ExtendedHandshake) -> Vec<u8> {
    let mut out = Vec::new();
    h.encode(&mut out);
    out
}

fn error(message: &'static str, source: BencodeError) -> ExtensionError {
    ExtensionError::Bencode { message, source }
}

#[test]
fn bep10_example_decodes_and_encodes_byte_for_byte() {
    // BEP 10: {'m': {'LT_metadata': 1, 'ut_pex': 2}, 'p': 6881, 'v': 'uTorrent 1.2'}
    let bytes = b"d1:md11:LT_metadatai1e6:ut_pexi2ee1:pi6881e1:v12:uTorrent 1.2e";
    let expected = ExtendedHandshake {
        listen_port: NonZeroU16::new(6881),
        client: Some("uTorrent 1.2".to_owned()),
        ..handshake(&[("LT_metadata", 1), ("ut_pex", 2)])
    };
    assert_eq!(ExtendedHandshake::decode(bytes), Ok(expected.clone()));
    assert_eq!(encode(&expected), bytes);
}

#[test]
fn bep9_example_carries_metadata_size() {
    // BEP 9: {'m': {'ut_metadata', 3}, 'metadata_size': 31235}
    let bytes = b"d1:md11:ut_metadatai3ee13:metadata_sizei31235ee";
    let expected = ExtendedHandshake { metadata_size: Some(31235), ..handshake(&[(UT_METADATA, 3)]) };
    assert_eq!(ExtendedHandshake::decode(bytes), Ok(expected.clone()));
    assert_eq!(encode(&expected), bytes);
}

#[test]
fn libtorrent_handshake_decodes_to_every_field() {
    let h = ExtendedHandshake::decode(LIBTORRENT).expect("libtorrent's handshake is valid");
    let expected = ExtendedHandshake {
        client: Some("libtorrent/2.0.8.0".to_owned()),
        metadata_size: Some(149),
        request_queue: Some(2000),
        your_ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        ..handshake(&[
            ("lt_donthave", 7),
            ("share_mode", 8),
            ("upload_only", 3),
            ("ut_holepunch", 4),
            (UT_METADATA, 2),
            (UT_PEX, 1),
        ])
    };
    assert_eq!(h, expected);
    assert_eq!(h.extension_id(UT_METADATA), NonZeroU8::new(2));
    assert_eq!(h.extension_id(UT_PEX), NonZeroU8::new(1));
    assert_eq!(h.extension_id("lt_tex"), None);
    // Re-encoding keeps every byte but the key we drop.
    let without_complete_ago = [&LIBTORRENT[..1], &LIBTORRENT[20..]].concat();
    assert_eq!(encode(&h), without_complete_ago);
}

#[test]
fn libtorrent_reserved_bytes_offer_extensions_dht_and_fast() {
    let mut frame = vec![19];
    frame.extend_from_slice(b"BitTorrent protocol");
    frame.extend_from_slice(&LIBTORRENT_RESERVED);
    frame.extend_from_slice(&[0xAB; 40]);
    let (h, _) = Handshake::decode(&frame).expect("valid").expect("complete");
    assert!(h.supports_extension_protocol());
    assert!(h.has(ReservedBit::EXTENSION_PROTOCOL) && h.has(ReservedBit::DHT) && h.has(ReservedBit::FAST));
    let mut ours = Handshake::new([0; 20], [0; 20]);
    ours.set(ReservedBit::EXTENSION_PROTOCOL, true);
    assert_eq!(ours.reserved, [0, 0, 0, 0, 0, 0x10, 0, 0]);
}

#[test]
fn framed_as_message_id_20_with_extended_id_0() {
    let mut payload = Vec::new();
    handshake(&[(UT_METADATA, 3)]).encode(&mut payload);
    let mut frame = Vec::new();
    Message::Extended { id: EXTENDED_HANDSHAKE_ID, payload: &payload }.encode(&mut frame);
    let expected = [&[0, 0, 0, 26, 20, 0][..], b"d1:md11:ut_metadatai3eee"].concat();
    assert_eq!(frame, expected);
    let (message, used) = decode(&frame, MAX_MESSAGE_LEN).expect("valid").expect("complete");
    assert_eq!(used, frame.len());
    let Message::Extended { id: 0, payload } = message else { panic!("expected an extended handshake: {message:?}") };
    assert_eq!(ExtendedHandshake::decode(payload), Ok(handshake(&[(UT_METADATA, 3)])));
}

#[test]
fn every_field_encodes_in_key_order() {
    let h = ExtendedHandshake {
        extensions: [("ut_pex".to_owned(), 1), ("ut_metadata".to_owned(), 0)].into(),
        client: Some("bt/0.1".to_owned()),
        listen_port: NonZeroU16::new(6881),
        metadata_size: Some(0),
        request_queue: Some(250),
        your_ip: Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ipv4: Some(Ipv4Addr::new(10, 0, 0, 1)),
        ipv6: Some(Ipv6Addr::UNSPECIFIED),
    };
    let mut ipv6_localhost = [0u8; 16];
    ipv6_localhost[15] = 1;
    let expected = [
        &b"d4:ipv44:"[..],
        &[10, 0, 0, 1],
        b"4:ipv616:",
        &[0; 16],
        b"1:md11:ut_metadatai0e6:ut_pexi1ee13:metadata_sizei0e1:pi6881e4:reqqi250e1:v6:bt/0.16:yourip16:",
        &ipv6_localhost,
        b"e",
    ]
    .concat();
    assert_eq!(encode(&h), expected);
    assert_eq!(ExtendedHandshake::decode(&expected), Ok(h));
}

#[test]
fn empty_dictionary_and_default_handshake() {
    assert_eq!(ExtendedHandshake::decode(b"de"), Ok(ExtendedHandshake::default()));
    // `m` is always written, even empty: BEP 10 calls it the one key a handshake has.
    assert_eq!(encode(&ExtendedHandshake::default()), b"d1:mdee");
}

#[test]
fn id_zero_means_disabled() {
    let h = ExtendedHandshake::decode(b"d1:md11:ut_metadatai0e6:ut_pexi1eee").expect("valid");
    assert_eq!(h.extensions.get(UT_METADATA), Some(&0), "kept, so a repeated handshake can switch it off");
    assert_eq!(h.extension_id(UT_METADATA), None);
    assert_eq!(h.extension_id(UT_PEX), NonZeroU8::new(1));
}

#[test]
fn payload_that_is_not_bencode_is_refused() {
    let cases: &[(&[u8], BencodeError)] = &[
        (b"", BencodeError::Truncated(0)),
        (b"d1:m", BencodeError::Truncated(4)),
        (b"x", BencodeError::UnexpectedByte { byte: b'x', offset: 0 }),
        (b"d1:pi6881e1:pi6882ee", BencodeError::DuplicateKey(10)),
        (b"d1:v99:abce", BencodeError::StringTooLong { offset: 4, len: 99, left: 4 }),
        (b"di1ei2ee", BencodeError::KeyNotString(1)),
    ];
    for (payload, source) in cases {
        assert_eq!(ExtendedHandshake::decode(payload), Err(error("extended handshake", source.clone())), "{payload:?}");
    }
    let nesting_bomb = [vec![b'l'; 10_000], vec![b'e'; 10_000]].concat();
    assert!(matches!(
        ExtendedHandshake::decode(&nesting_bomb),
        Err(ExtensionError::Bencode { source: BencodeError::TooDeep(_), .. })
    ));
}

#[test]
fn payload_that_is_not_a_dictionary_is_refused() {
    for payload in [&b"le"[..], b"i1e", b"4:spam", b"l1:me"] {
        assert_eq!(
            ExtendedHandshake::decode(payload),
            Err(ExtensionError::NotADictionary { message: "extended handshake" }),
            "{payload:?}"
        );
    }
}

#[test]
fn bytes_after_the_dictionary_are_refused() {
    assert_eq!(
        ExtendedHandshake::decode(b"d1:mdeexx"),
        Err(ExtensionError::TrailingData { message: "extended handshake", len: 2 })
    );
}

#[test]
fn too_many_extensions_are_refused() {
    let many = |n: usize| {
        let mut payload = b"d1:md".to_vec();
        for i in 0..n {
            let name = format!("x_{i:03}");
            payload.extend_from_slice(format!("{}:{name}i{}e", name.len(), i % 256).as_bytes());
        }
        payload.extend_from_slice(b"ee");
        payload
    };
    let at_cap = ExtendedHandshake::decode(&many(MAX_EXTENSIONS)).expect("64 entries are fine");
    assert_eq!(at_cap.extensions.len(), MAX_EXTENSIONS);
    assert_eq!(
        ExtendedHandshake::decode(&many(MAX_EXTENSIONS + 1)),
        Err(ExtensionError::TooManyExtensions { count: MAX_EXTENSIONS + 1, max: MAX_EXTENSIONS })
    );
}

#[test]
fn unusable_m_entries_are_skipped_and_the_rest_kept() {
    let long = "n".repeat(MAX_EXTENSION_NAME_LEN + 1);
    let longest = "n".repeat(MAX_EXTENSION_NAME_LEN);
    let payload = [
        &b"d1:md"[..],
        b"3:bad1:x",          // id not an integer
        b"4:big1i256e",       // id past 255
        b"4:neg1i-1e",        // negative id
        b"3:\xff\xfe\xfdi5e", // name not UTF-8
        format!("{}:{long}i6e", long.len()).as_bytes(),
        format!("{}:{longest}i7e", longest.len()).as_bytes(),
        b"9:lt_customi200e", // unknown to us: kept
        b"ee",
    ]
    .concat();
    let h = ExtendedHandshake::decode(&payload).expect("tolerated");
    assert_eq!(h, handshake(&[("lt_custom", 200), (&longest, 7)]));
}

#[test]
fn m_of_the_wrong_type_is_ignored() {
    for payload in [&b"d1:mi5ee"[..], b"d1:m3:abce", b"d1:mli1eee"] {
        assert_eq!(ExtendedHandshake::decode(payload), Ok(ExtendedHandshake::default()), "{payload:?}");
    }
}

#[test]
fn optional_keys_of_the_wrong_type_or_range_are_ignored() {
    let cases: &[&[u8]] = &[
        b"d1:pi0ee",
        b"d1:pi65536ee",
        b"d1:pi-1ee",
        b"d1:p4:6881e",
        b"d13:metadata_sizei-1ee",
        b"d13:metadata_size3:123e",
        b"d4:reqqi-5ee",
        b"d4:reqqlee",
        b"d1:vi1ee",
        b"d6:yourip5:abcdee",
        b"d6:youripi1ee",
        b"d6:yourip0:e",
        b"d4:ipv416:aaaaaaaaaaaaaaaae",
        b"d4:ipv64:aaaae",
        b"d4:ipv4i1ee",
    ];
    for payload in cases {
        assert_eq!(ExtendedHandshake::decode(payload), Ok(ExtendedHandshake::default()), "{payload:?}");
    }
}

#[test]
fn unknown_keys_are_ignored() {
    let payload = b"d1:ei1e12:complete_agoi-1e1:md6:ut_pexi1ee11:upload_onlyi1e3:zzzld1:ai1eeee";
    assert_eq!(ExtendedHandshake::decode(payload), Ok(handshake(&[(UT_PEX, 1)])));
}

#[test]
fn field_edges_are_kept() {
    let h = ExtendedHandshake::decode(b"d13:metadata_sizei4294967295e1:pi65535e4:reqqi0ee").expect("valid");
    assert_eq!(h.metadata_size, Some(u64::from(u32::MAX)));
    assert_eq!(h.listen_port, NonZeroU16::new(65535));
    assert_eq!(h.request_queue, Some(0));
    // Sizes past u32 are kept so the caller can name the absurd size when it refuses it.
    let big = ExtendedHandshake::decode(b"d13:metadata_sizei4294967296ee").expect("valid");
    assert_eq!(big.metadata_size, Some(1 << 32));
}

#[test]
fn yourip_of_16_bytes_is_ipv6() {
    let mut payload = b"d6:yourip16:".to_vec();
    payload.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7).octets());
    payload.push(b'e');
    let h = ExtendedHandshake::decode(&payload).expect("valid");
    assert_eq!(h.your_ip, Some(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7))));
}

#[test]
fn client_name_is_capped_and_made_utf8() {
    let at_cap = "v".repeat(MAX_CLIENT_NAME_LEN);
    let payload = format!("d1:v{}:{at_cap}e", at_cap.len());
    assert_eq!(ExtendedHandshake::decode(payload.as_bytes()).expect("valid").client, Some(at_cap.clone()));
    let over = format!("d1:v{}:{at_cap}ve", at_cap.len() + 1);
    assert_eq!(ExtendedHandshake::decode(over.as_bytes()).expect("valid").client, None);
    let latin1 = ExtendedHandshake::decode(b"d1:v12:\xb5Torrent 1.2e").expect("valid");
    assert_eq!(latin1.client.as_deref(), Some("\u{FFFD}Torrent 1.2"));
}

#[test]
fn error_messages_name_the_problem() {
    assert_eq!(
        ExtensionError::TooManyExtensions { count: 65, max: 64 }.to_string(),
        "extended handshake `m` has 65 entries, more than the 64 accepted"
    );
    assert_eq!(
        ExtensionError::NotADictionary { message: "extended handshake" }.to_string(),
        "extended handshake payload is not a bencoded dictionary"
    );
    assert_eq!(
        error("extended handshake", BencodeError::Truncated(4)).to_string(),
        "extended handshake payload is not valid bencode: the data ends in the middle of a value (at byte 4)"
    );
}

#[test]
fn decode_never_panics_on_prefixes_of_valid_payloads() {
    for cut in 0..LIBTORRENT.len() {
        assert!(ExtendedHandshake::decode(&LIBTORRENT[..cut]).is_err(), "cut at {cut}");
    }
}
