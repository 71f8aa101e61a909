//! BEP 9 ut_metadata messages: BEP 9's examples, what libtorrent sends, the data block as a borrowed slice, and
//! every malformed message refused with a named error.

use bencode::BencodeError;
use peer_wire::{ExtensionError, MAX_MESSAGE_LEN, METADATA_PIECE_LEN, Message, MetadataMessage, decode};
use sha1::{Digest, Sha1};

/// The cap the peer uses: 32 MiB of metadata.
const CAP: u32 = 32 << 20;

/// The 149-byte info dictionary of the torrent in libtorrent's capture: 4 pieces of 16 KiB whose hashes are
/// SHA-1("piece 0") .. SHA-1("piece 3"). Its SHA-1, the info-hash, is 924950ce....
fn small_info() -> Vec<u8> {
    let pieces: Vec<u8> = (0..4).flat_map(|i| Sha1::digest(format!("piece {i}").as_bytes())).collect();
    [&b"d6:lengthi65536e4:name10:sample.bin12:piece lengthi16384e6:pieces80:"[..], &pieces, b"e"].concat()
}

fn encode(m: &MetadataMessage<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode(&mut out);
    out
}

fn metadata_error(source: BencodeError) -> ExtensionError {
    ExtensionError::Bencode { message: "ut_metadata", source }
}

#[test]
fn bep9_examples_decode_and_encode_byte_for_byte() {
    let cases: Vec<(&[u8], MetadataMessage<'_>)> = vec![
        // {'msg_type': 0, 'piece': 0}
        (b"d8:msg_typei0e5:piecei0ee", MetadataMessage::Request { piece: 0 }),
        // {'msg_type': 1, 'piece': 0, 'total_size': 34256} followed by the block (BEP 9 writes 3425 in the dict,
        // 34256 in the bytes: the bytes are what counts)
        (
            b"d8:msg_typei1e5:piecei0e10:total_sizei34256eexxxxxxxx",
            MetadataMessage::Data { piece: 0, total_size: 34256, block: b"xxxxxxxx" },
        ),
        // {'msg_type': 2, 'piece': 0} (BEP 9's bytes say msg_type 1 here, a typo)
        (b"d8:msg_typei2e5:piecei0ee", MetadataMessage::Reject { piece: 0 }),
    ];
    for (bytes, message) in cases {
        assert_eq!(MetadataMessage::decode(bytes, CAP), Ok(message), "{bytes:?}");
        assert_eq!(encode(&message), bytes, "{message:?}");
    }
}

#[test]
fn libtorrent_data_message_decodes_to_the_info_dict() {
    // libtorrent 2.0.8's answer to our request for piece 0 of a 149-byte info dict (captured on loopback).
    let captured = [&b"d8:msg_typei1e5:piecei0e10:total_sizei149ee"[..], &small_info()].concat();
    let message = MetadataMessage::decode(&captured, CAP).expect("valid");
    let MetadataMessage::Data { piece: 0, total_size: 149, block } = message else { panic!("{message:?}") };
    assert_eq!(block, small_info());
    assert_eq!(hex(&Sha1::digest(block)), "924950ce3129ec6e453730a9ff426392a5a2f6cf");
    // The block is a slice of the payload, right after the dictionary.
    assert!(std::ptr::eq(block.as_ptr(), captured[43..].as_ptr()));
    assert_eq!(encode(&message), captured);
}

#[test]
fn libtorrent_reject_carries_total_size_which_is_ignored() {
    let captured = b"d8:msg_typei2e5:piecei99e10:total_sizei149ee";
    let message = MetadataMessage::decode(captured, CAP).expect("valid");
    assert_eq!(message, MetadataMessage::Reject { piece: 99 });
    assert_eq!(encode(&message), b"d8:msg_typei2e5:piecei99ee");
}

#[test]
fn framed_under_the_receivers_id() {
    let mut payload = Vec::new();
    MetadataMessage::Request { piece: 1 }.encode(&mut payload);
    let mut frame = Vec::new();
    Message::Extended { id: 2, payload: &payload }.encode(&mut frame);
    assert_eq!(frame, [&[0, 0, 0, 27, 20, 2][..], b"d8:msg_typei0e5:piecei1ee"].concat());
    let Ok(Some((Message::Extended { id: 2, payload }, 31))) = decode(&frame, MAX_MESSAGE_LEN) else {
        panic!("expected an extended message");
    };
    assert_eq!(MetadataMessage::decode(payload, CAP), Ok(MetadataMessage::Request { piece: 1 }));
}

#[test]
fn full_block_and_empty_block_are_accepted() {
    let full = [&b"d8:msg_typei1e5:piecei1e10:total_sizei40000ee"[..], &[7; METADATA_PIECE_LEN]].concat();
    let Ok(MetadataMessage::Data { block, .. }) = MetadataMessage::decode(&full, CAP) else { panic!("valid") };
    assert_eq!(block.len(), METADATA_PIECE_LEN);
    let empty = b"d8:msg_typei1e5:piecei0e10:total_sizei1ee";
    assert_eq!(MetadataMessage::decode(empty, CAP), Ok(MetadataMessage::Data { piece: 0, total_size: 1, block: &[] }));
}

#[test]
fn block_over_16_kib_is_refused() {
    let long = [&b"d8:msg_typei1e5:piecei0e10:total_sizei40000ee"[..], &[7; METADATA_PIECE_LEN + 1]].concat();
    assert_eq!(
        MetadataMessage::decode(&long, CAP),
        Err(ExtensionError::MetadataBlockTooLong { len: METADATA_PIECE_LEN + 1 })
    );
}

#[test]
fn total_size_outside_the_callers_cap_is_refused() {
    let over = format!("d8:msg_typei1e5:piecei0e10:total_sizei{}ee", CAP + 1);
    assert_eq!(
        MetadataMessage::decode(over.as_bytes(), CAP),
        Err(ExtensionError::MetadataSize { size: i64::from(CAP) + 1, max: CAP })
    );
    let at = format!("d8:msg_typei1e5:piecei0e10:total_sizei{CAP}ee");
    assert!(MetadataMessage::decode(at.as_bytes(), CAP).is_ok());
    let cases: &[(&[u8], i64)] = &[
        (b"d8:msg_typei1e5:piecei0e10:total_sizei0ee", 0),
        (b"d8:msg_typei1e5:piecei0e10:total_sizei-5ee", -5),
        (b"d8:msg_typei1e5:piecei0e10:total_sizei9223372036854775807ee", i64::MAX),
    ];
    for &(bytes, size) in cases {
        assert_eq!(MetadataMessage::decode(bytes, CAP), Err(ExtensionError::MetadataSize { size, max: CAP }));
    }
    // The cap is the caller's.
    assert_eq!(
        MetadataMessage::decode(b"d8:msg_typei1e5:piecei0e10:total_sizei101ee", 100),
        Err(ExtensionError::MetadataSize { size: 101, max: 100 })
    );
}

#[test]
fn missing_or_mistyped_required_keys_are_refused() {
    let cases: &[(&[u8], &str)] = &[
        (b"d5:piecei0ee", "msg_type"),
        (b"d8:msg_type1:05:piecei0ee", "msg_type"),
        (b"d8:msg_typei0ee", "piece"),
        (b"d8:msg_typei2e5:piece1:0e", "piece"),
        (b"d8:msg_typei1e5:piecei0ee", "total_size"),
        (b"d8:msg_typei1e5:piecei0e10:total_size3:149e", "total_size"),
        (b"d8:msg_typei9ee", "piece"),
    ];
    for &(bytes, key) in cases {
        assert_eq!(
            MetadataMessage::decode(bytes, CAP),
            Err(ExtensionError::MissingKey { message: "ut_metadata", key }),
            "{bytes:?}"
        );
    }
}

#[test]
fn piece_outside_u32_is_refused() {
    for (bytes, value) in [(&b"d8:msg_typei0e5:piecei-1ee"[..], -1), (b"d8:msg_typei0e5:piecei4294967296ee", 1 << 32)] {
        assert_eq!(
            MetadataMessage::decode(bytes, CAP),
            Err(ExtensionError::OutOfRange {
                message: "ut_metadata",
                key: "piece",
                value,
                min: 0,
                max: u32::MAX.into()
            })
        );
    }
}

#[test]
fn bytes_after_a_request_or_reject_are_refused() {
    for bytes in [&b"d8:msg_typei0e5:piecei0eexx"[..], b"d8:msg_typei2e5:piecei0eexx"] {
        assert_eq!(
            MetadataMessage::decode(bytes, CAP),
            Err(ExtensionError::TrailingData { message: "ut_metadata", len: 2 })
        );
    }
}

#[test]
fn unknown_message_types_are_returned_to_be_ignored() {
    assert_eq!(
        MetadataMessage::decode(b"d8:msg_typei3e5:piecei7e5:extrai1eeanything", CAP),
        Ok(MetadataMessage::Unknown { msg_type: 3, piece: 7 })
    );
    let negative = MetadataMessage::Unknown { msg_type: -1, piece: 0 };
    assert_eq!(MetadataMessage::decode(b"d8:msg_typei-1e5:piecei0ee", CAP), Ok(negative));
    assert_eq!(encode(&negative), b"d8:msg_typei-1e5:piecei0ee");
}

#[test]
fn payload_that_is_not_a_bencoded_dictionary_is_refused() {
    assert_eq!(MetadataMessage::decode(b"", CAP), Err(metadata_error(BencodeError::Truncated(0))));
    assert_eq!(MetadataMessage::decode(b"d8:msg_typei0e", CAP), Err(metadata_error(BencodeError::Truncated(14))));
    assert_eq!(
        MetadataMessage::decode(b"d8:msg_typei0e8:msg_typei1ee", CAP),
        Err(metadata_error(BencodeError::DuplicateKey(14)))
    );
    for bytes in [&b"le"[..], b"i0e", b"0:"] {
        assert_eq!(
            MetadataMessage::decode(bytes, CAP),
            Err(ExtensionError::NotADictionary { message: "ut_metadata" }),
            "{bytes:?}"
        );
    }
}

#[test]
fn error_messages_name_the_problem() {
    assert_eq!(
        ExtensionError::MissingKey { message: "ut_metadata", key: "piece" }.to_string(),
        "ut_metadata has no integer `piece`"
    );
    assert_eq!(
        ExtensionError::MetadataSize { size: 33_554_433, max: CAP }.to_string(),
        "metadata size 33554433 is outside 1..=33554432 bytes"
    );
    assert_eq!(
        ExtensionError::MetadataBlockTooLong { len: 16385 }.to_string(),
        "ut_metadata data block of 16385 bytes is longer than 16384"
    );
}

#[test]
fn decode_never_panics_on_prefixes() {
    let captured = [&b"d8:msg_typei1e5:piecei0e10:total_sizei149ee"[..], &small_info()].concat();
    for cut in 0..captured.len() {
        let _ = MetadataMessage::decode(&captured[..cut], CAP);
        let _ = MetadataMessage::decode(&captured[cut..], CAP);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
