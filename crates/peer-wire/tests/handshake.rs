//! Handshake: golden bytes, decoding from every split point, early rejection of other protocols, reserved bits.

use peer_wire::{HANDSHAKE_LEN, Handshake, ReservedBit, WireError};

const INFO_HASH: [u8; 20] = [0xAA; 20];
const PEER_ID: [u8; 20] = *b"-BT0001-123456789012";

/// A handshake with the DHT and Fast bits set, written out field by field.
fn golden() -> Vec<u8> {
    let mut v = Vec::new();
    v.push(19); // pstrlen
    v.extend_from_slice(b"BitTorrent protocol"); // pstr
    v.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0x05]); // reserved: DHT 0x01 and Fast 0x04 in byte 7
    v.extend_from_slice(&[0xAA; 20]); // info_hash
    v.extend_from_slice(b"-BT0001-123456789012"); // peer_id
    v
}

fn sample() -> Handshake {
    let mut h = Handshake::new(INFO_HASH, PEER_ID);
    h.set(ReservedBit::DHT, true);
    h.set(ReservedBit::FAST, true);
    h
}

#[test]
fn encode_matches_golden_bytes() {
    assert_eq!(sample().encode().as_slice(), golden().as_slice());
}

#[test]
fn decode_golden_bytes() {
    let got = Handshake::decode(&golden()).expect("valid handshake");
    assert_eq!(got, Some((sample(), HANDSHAKE_LEN)));
}

#[test]
fn decode_leaves_following_bytes_alone() {
    let mut buf = golden();
    buf.extend_from_slice(&[0, 0, 0, 0]); // a keep-alive right behind it
    let (h, used) = Handshake::decode(&buf).expect("valid").expect("complete");
    assert_eq!((h, used), (sample(), 68));
}

#[test]
fn decode_returns_none_at_every_split_point() {
    let bytes = golden();
    for cut in 0..bytes.len() {
        assert_eq!(Handshake::decode(&bytes[..cut]), Ok(None), "cut at {cut}");
    }
}

#[test]
fn wrong_pstrlen_is_rejected_from_the_first_byte() {
    assert_eq!(Handshake::decode(&[18]), Err(WireError::BadHandshakeLength { got: 18 }));
    // A TLS ClientHello or HTTP request must not keep the connection waiting for 68 bytes.
    assert_eq!(Handshake::decode(b"GET /"), Err(WireError::BadHandshakeLength { got: b'G' }));
}

#[test]
fn wrong_pstr_is_rejected_as_soon_as_it_differs() {
    let mut bytes = golden();
    bytes[5] = b'X'; // "BitTXrrent protocol"
    assert_eq!(Handshake::decode(&bytes[..5]), Ok(None), "the prefix seen so far is fine");
    assert_eq!(Handshake::decode(&bytes[..6]), Err(WireError::BadHandshakeProtocol));
    assert_eq!(Handshake::decode(&bytes), Err(WireError::BadHandshakeProtocol));
}

#[test]
fn reserved_bits_read_and_write() {
    let mut h = Handshake::new(INFO_HASH, PEER_ID);
    assert!(!h.supports_fast() && !h.supports_extension_protocol());
    h.set(ReservedBit::EXTENSION_PROTOCOL, true);
    assert_eq!(h.reserved, [0, 0, 0, 0, 0, 0x10, 0, 0]);
    assert!(h.supports_extension_protocol());
    h.set(ReservedBit::FAST, true);
    assert_eq!(h.reserved[7], 0x04);
    assert!(h.supports_fast());
    h.set(ReservedBit::EXTENSION_PROTOCOL, false);
    assert_eq!(h.reserved, [0, 0, 0, 0, 0, 0, 0, 0x04]);
}

#[test]
fn reserved_bit_past_byte_7_is_inert() {
    let mut h = Handshake::new(INFO_HASH, PEER_ID);
    let bogus = ReservedBit::new(8, 0xFF);
    h.set(bogus, true);
    assert!(!h.has(bogus));
    assert_eq!(h.reserved, [0; 8]);
}

#[test]
fn decode_never_panics_on_short_garbage() {
    for len in 0..=256usize {
        for fill in [0u8, 19, 0xFF] {
            let mut buf = vec![fill; len];
            let _ = Handshake::decode(&buf);
            if let Some(first) = buf.first_mut() {
                *first = 19;
            }
            let _ = Handshake::decode(&buf);
        }
    }
}
