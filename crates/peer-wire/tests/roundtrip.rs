//! Property tests: every message encodes to bytes that decode back to itself, using exactly those bytes.

use peer_wire::{MAX_MESSAGE_LEN, Message, decode};
use proptest::prelude::*;

/// The owned parts a message is built from; messages borrow, so the strategy yields these instead.
#[derive(Debug, Clone)]
struct Parts {
    kind: u8,
    a: u32,
    b: u32,
    c: u32,
    port: u16,
    unknown_id: u8,
    bytes: Vec<u8>,
}

fn parts() -> impl Strategy<Value = Parts> {
    (
        0u8..13,
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<u16>(),
        // Id 20 is `Extended` and 21-23 the BEP 52 hash messages, not `Unknown` (see hash_messages.rs).
        (10u8..=255).prop_filter("known id", |&id| !(20..=23).contains(&id)),
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(kind, a, b, c, port, unknown_id, bytes)| Parts { kind, a, b, c, port, unknown_id, bytes })
}

fn build(p: &Parts) -> Message<'_> {
    match p.kind {
        0 => Message::KeepAlive,
        1 => Message::Choke,
        2 => Message::Unchoke,
        3 => Message::Interested,
        4 => Message::NotInterested,
        5 => Message::Have { index: p.a },
        6 => Message::Bitfield { bits: &p.bytes },
        7 => Message::Request { index: p.a, begin: p.b, length: p.c },
        8 => Message::Piece { index: p.a, begin: p.b, block: &p.bytes },
        9 => Message::Cancel { index: p.a, begin: p.b, length: p.c },
        10 => Message::Port { port: p.port },
        11 => Message::Extended { id: p.a.to_le_bytes()[0], payload: &p.bytes },
        _ => Message::Unknown { id: p.unknown_id, payload: &p.bytes },
    }
}

proptest! {
    #[test]
    fn encode_then_decode_is_identity(p in parts(), trailing in proptest::collection::vec(any::<u8>(), 0..8)) {
        let message = build(&p);
        let mut buf = Vec::new();
        message.encode(&mut buf);
        prop_assert_eq!(buf.len(), message.encoded_len());
        let encoded_len = buf.len();
        // Bytes of the next message must not change the result.
        buf.extend_from_slice(&trailing);
        let got = decode(&buf, MAX_MESSAGE_LEN).expect("own encoding is valid");
        prop_assert_eq!(got, Some((message, encoded_len)));
    }

    #[test]
    fn decoded_messages_re_encode_to_the_same_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut rest = &bytes[..];
        while let Ok(Some((message, used))) = decode(rest, 64) {
            let mut out = Vec::new();
            message.encode(&mut out);
            prop_assert_eq!(&out[..], &rest[..used]);
            rest = &rest[used..];
        }
    }

    #[test]
    fn a_stream_of_messages_decodes_in_order(ps in proptest::collection::vec(parts(), 0..10)) {
        let messages: Vec<Message<'_>> = ps.iter().map(build).collect();
        let mut stream = Vec::new();
        for m in &messages {
            m.encode(&mut stream);
        }
        let mut rest = &stream[..];
        let mut got = Vec::new();
        while let Some((m, used)) = decode(rest, MAX_MESSAGE_LEN).expect("valid") {
            got.push(m);
            rest = &rest[used..];
        }
        prop_assert!(rest.is_empty());
        prop_assert_eq!(got, messages);
    }
}
