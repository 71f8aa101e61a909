//! Property tests for the extension codecs: every value encodes to bytes that decode back to it, and whatever
//! arbitrary bytes decode to re-encodes to bytes that decode to the same thing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU16;

use peer_wire::{
    ExtendedHandshake, MAX_CLIENT_NAME_LEN, MAX_EXTENSIONS, MAX_PEX_PEERS, METADATA_PIECE_LEN, MetadataMessage,
    PexFlags, PexMessage, PexPeer,
};
use proptest::prelude::*;

const CAP: u32 = 32 << 20;

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![any::<[u8; 4]>().prop_map(IpAddr::from), any::<[u8; 16]>().prop_map(IpAddr::from)]
}

fn handshake() -> impl Strategy<Value = ExtendedHandshake> {
    (
        proptest::collection::btree_map("[a-zA-Z0-9_]{0,64}", any::<u8>(), 0..=MAX_EXTENSIONS),
        proptest::option::of(
            proptest::string::string_regex(&format!("[ -~]{{0,{MAX_CLIENT_NAME_LEN}}}")).expect("regex"),
        ),
        proptest::option::of(any::<u16>().prop_filter_map("nonzero", NonZeroU16::new)),
        proptest::option::of(0..=i64::MAX as u64),
        proptest::option::of(any::<u32>()),
        proptest::option::of(ip()),
        proptest::option::of(any::<[u8; 4]>().prop_map(Ipv4Addr::from)),
        proptest::option::of(any::<[u8; 16]>().prop_map(Ipv6Addr::from)),
    )
        .prop_map(|(extensions, client, listen_port, metadata_size, request_queue, your_ip, ipv4, ipv6)| {
            ExtendedHandshake { extensions, client, listen_port, metadata_size, request_queue, your_ip, ipv4, ipv6 }
        })
}

/// The owned parts of a ut_metadata message (messages borrow their block).
fn metadata_parts() -> impl Strategy<Value = (u8, i64, u32, u32, Vec<u8>)> {
    (
        0u8..4,
        any::<i64>().prop_filter("unknown", |t| !(0..=2).contains(t)),
        any::<u32>(),
        1..=CAP,
        proptest::collection::vec(any::<u8>(), 0..=METADATA_PIECE_LEN),
    )
}

fn metadata((kind, msg_type, piece, total_size, block): &(u8, i64, u32, u32, Vec<u8>)) -> MetadataMessage<'_> {
    match kind {
        0 => MetadataMessage::Request { piece: *piece },
        1 => MetadataMessage::Data { piece: *piece, total_size: *total_size, block },
        2 => MetadataMessage::Reject { piece: *piece },
        _ => MetadataMessage::Unknown { msg_type: *msg_type, piece: *piece },
    }
}

fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    (ip(), any::<u16>()).prop_map(SocketAddr::from)
}

/// A message within the cap: at most MAX_PEX_PEERS per family in each list.
fn pex() -> impl Strategy<Value = PexMessage> {
    let peer = (socket_addr(), any::<u8>()).prop_map(|(addr, flags)| PexPeer { addr, flags: PexFlags(flags) });
    (proptest::collection::vec(peer, 0..=MAX_PEX_PEERS), proptest::collection::vec(socket_addr(), 0..=MAX_PEX_PEERS))
        .prop_map(|(added, dropped)| PexMessage { added, dropped })
}

/// What decoding an encoding gives back: each list with its IPv4 entries first, order otherwise kept.
fn families_in_order<T: Copy>(items: &[T], is_v4: impl Fn(&T) -> bool) -> Vec<T> {
    items.iter().filter(|i| is_v4(i)).chain(items.iter().filter(|i| !is_v4(i))).copied().collect()
}

proptest! {
    #[test]
    fn handshake_round_trips(h in handshake()) {
        let mut bytes = Vec::new();
        h.encode(&mut bytes);
        prop_assert_eq!(ExtendedHandshake::decode(&bytes), Ok(h));
    }

    #[test]
    fn metadata_message_round_trips(parts in metadata_parts(), trailing in proptest::collection::vec(any::<u8>(), 0..4)) {
        let message = metadata(&parts);
        let mut bytes = Vec::new();
        message.encode(&mut bytes);
        prop_assert_eq!(MetadataMessage::decode(&bytes, CAP), Ok(message));
        if let MetadataMessage::Unknown { .. } = message {
            // Whatever follows an unknown message's dictionary is ignored.
            bytes.extend_from_slice(&trailing);
            prop_assert_eq!(MetadataMessage::decode(&bytes, CAP), Ok(message));
        }
    }

    #[test]
    fn pex_round_trips_with_families_apart(message in pex()) {
        let mut bytes = Vec::new();
        message.encode(&mut bytes);
        let expected = PexMessage {
            added: families_in_order(&message.added, |p| p.addr.is_ipv4()),
            dropped: families_in_order(&message.dropped, SocketAddr::is_ipv4),
        };
        prop_assert_eq!(PexMessage::decode(&bytes), Ok((expected, 0)));
    }

    /// Arbitrary bytes never panic a decoder, and what decodes re-encodes to a fixed point.
    #[test]
    fn decoded_values_re_encode_stably(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(h) = ExtendedHandshake::decode(&bytes) {
            let mut out = Vec::new();
            h.encode(&mut out);
            prop_assert_eq!(ExtendedHandshake::decode(&out), Ok(h));
        }
        if let Ok(m) = MetadataMessage::decode(&bytes, 1000) {
            let mut out = Vec::new();
            m.encode(&mut out);
            prop_assert_eq!(MetadataMessage::decode(&out, 1000), Ok(m));
        }
        if let Ok((p, _)) = PexMessage::decode(&bytes) {
            let mut out = Vec::new();
            p.encode(&mut out);
            prop_assert_eq!(PexMessage::decode(&out), Ok((p, 0)));
        }
    }

    /// Structured garbage: dictionaries built from the keys the decoders look for, with random values.
    #[test]
    fn dictionaries_of_known_keys_never_panic(
        entries in proptest::collection::btree_map(
            prop::sample::select(vec![
                "m", "v", "p", "metadata_size", "reqq", "yourip", "ipv4", "ipv6", "msg_type", "piece", "total_size",
                "added", "added.f", "added6", "added6.f", "dropped", "dropped6",
            ]),
            prop_oneof![
                any::<i64>().prop_map(|n| format!("i{n}e").into_bytes()),
                (-3i64..300).prop_map(|n| format!("i{n}e").into_bytes()),
                proptest::collection::vec(any::<u8>(), 0..40).prop_map(|b| [format!("{}:", b.len()).into_bytes(), b].concat()),
                Just(b"d11:ut_metadatai3e6:ut_pexi0ee".to_vec()),
                Just(b"le".to_vec()),
            ],
            0..8,
        ),
        tail in proptest::collection::vec(any::<u8>(), 0..20),
    ) {
        let mut bytes = b"d".to_vec();
        for (key, value) in &entries {
            bytes.extend_from_slice(format!("{}:{key}", key.len()).as_bytes());
            bytes.extend_from_slice(value);
        }
        bytes.push(b'e');
        bytes.extend_from_slice(&tail);
        for cut in [bytes.len() - tail.len(), bytes.len()] {
            let payload = &bytes[..cut];
            if let Ok(h) = ExtendedHandshake::decode(payload) {
                let mut out = Vec::new();
                h.encode(&mut out);
                prop_assert_eq!(ExtendedHandshake::decode(&out), Ok(h));
            }
            if let Ok(m) = MetadataMessage::decode(payload, CAP) {
                let mut out = Vec::new();
                m.encode(&mut out);
                prop_assert_eq!(MetadataMessage::decode(&out, CAP), Ok(m));
            }
            if let Ok((p, skipped)) = PexMessage::decode(payload) {
                prop_assert_eq!(skipped, 0);
                let mut out = Vec::new();
                p.encode(&mut out);
                prop_assert_eq!(PexMessage::decode(&out), Ok((p, 0)));
            }
        }
    }
}
