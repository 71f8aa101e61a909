//! BEP 52 hash messages (ids 21 hash request, 22 hashes, 23 hash reject): golden bytes captured from libtorrent,
//! hostile lengths, partial input, and round trips.
//!
//! The libtorrent vectors come from libtorrent 2.0.8 (Debian's python3-libtorrent), driven by the capture
//! script tests/support/capture_libtorrent_hashes.py: it made a file of `(i * 31 + (i >> 9)) & 0xFF` for byte i,
//! a v2-only torrent of it with libtorrent's
//! `create_torrent`, and had a libtorrent session download `magnet:?xt=urn:btmh:1220<v2 info-hash>` from a fake
//! seeder on loopback (handshake with the truncated v2 info-hash, extended handshake, ut_metadata serving of the
//! info dict, full bitfield, `have`). The requests are what libtorrent sent the fake seeder next; the answers to
//! them (computed by the script) were accepted: libtorrent went on to download and verify every piece. Once
//! libtorrent seeded, a second connection sent it hash requests: its `hashes` and `hash reject` answers are below.
//! `metainfo`'s merkle_proof tests check the same hashes against the merkle trees of those files.

use peer_wire::{HASH_REQUEST_LEN, MAX_MESSAGE_LEN, Message, WireError, decode};
use proptest::prelude::*;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

fn root(s: &str) -> [u8; 32] {
    unhex(s).try_into().expect("32 bytes")
}

/// `pieces root` of the 80 KiB file (3 pieces of 32 KiB) and of the 513-piece and 600-piece files (16 KiB pieces).
const ROOT_3: &str = "024b5a5248754404ad542c76902fb41a05e6067427d3672089e3a10f48f70a3e";
const ROOT_513: &str = "ba98be192717776a53cfc7e5b1d1101cf1f280b502b593275a8beca917857836";
const ROOT_600: &str = "baae19aea3b75ffde3743026c83696b4c3f60670c6c7239d6658636eb4fa9c33";

/// The leaf and uncle hashes of libtorrent's answer to (base 0, index 4, length 2, proof layers 2) for ROOT_3.
const LT_HASHES: &str = concat!(
    "5970d41a555daa44f1eeb659d6f37f9e49950fa1b63d16adae99e4e0bafe9378", // block 4, the file's last
    "0000000000000000000000000000000000000000000000000000000000000000", // block 5: padding
    "f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a92759fb4b", // uncle at layer 1: padding, pad_hash(1)
    "513f0b2a2495782b3acde72d8daeb305f5dcedaee282f851f2de370d2fb235fa", // uncle at layer 2: the left half
);

/// Each message next to its bytes, as libtorrent sent (or accepted) them.
fn golden() -> Vec<(Message<'static>, Vec<u8>)> {
    let lt_hashes: &'static [u8] = unhex(LT_HASHES).leak();
    let ours_lone: &'static [u8] = unhex(concat!(
        "c02940c6bf8c6ff405506ac2aa574bc45ff700cef1e70a809c86989c7ffdb504",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a92759fb4b",
        "db56114e00fdd4c1f85c892bf35ac9a89289aaecb1ebd0a96cde606a748b5d71",
        "c78009fdf07fc56a11f122370658a353aaa542ed63e44c4bc15ff4cd105ab33c",
        "536d98837f2dd165a55d5eeae91485954472d56f246df256bf3cae19352a123c",
        "9efde052aa15429fae05bad4d0b1d7c64da64d03d7a1854a588c2cb8430c0d30",
        "d88ddfeed400a8755596b21942c1497e114c302e6118290f91e6772976041fa1",
        "87eb0ddba57e35f6d286673802a4af5975e22506c7cf4c64bb6be5ee11527f2c",
        "26846476fd5fc54a5d43385167c95144f2643f533cc85bb9d16b782f8d7db193",
        "719f2979c8518024e7eba6102d6d031ddf2b6ffded970909f94839e88a4f7762",
    ))
    .leak();
    vec![
        // libtorrent asking for the piece layer of the 3-piece file: layer 1, nodes 0-3 (the last is padding),
        // proof layers 1 (= log2(4) - 1: the range proves itself up to the root, so no uncle).
        (
            Message::HashRequest { pieces_root: root(ROOT_3), base_layer: 1, index: 0, length: 4, proof_layers: 1 },
            unhex(concat!(
                "00000031",                                                         // length 49
                "15",                                                               // id 21 hash request
                "024b5a5248754404ad542c76902fb41a05e6067427d3672089e3a10f48f70a3e", // pieces root
                "00000001", // base layer 1: the piece layer of 32 KiB pieces
                "00000000", // index 0
                "00000004", // length 4
                "00000001", // proof layers 1
            )),
        ),
        // libtorrent's first and second requests for the 600-piece file: 512 leaves, then the last 88 padded to
        // 128, both with proof layers 9 (1 and 3 uncles).
        (
            Message::HashRequest { pieces_root: root(ROOT_600), base_layer: 0, index: 0, length: 512, proof_layers: 9 },
            unhex(&format!("0000003115{ROOT_600}00000000000000000000020000000009")),
        ),
        (
            Message::HashRequest {
                pieces_root: root(ROOT_600),
                base_layer: 0,
                index: 512,
                length: 128,
                proof_layers: 9,
            },
            unhex(&format!("0000003115{ROOT_600}00000000000002000000008000000009")),
        ),
        // libtorrent's second request for the 513-piece file: the lone last piece, length 1.
        (
            Message::HashRequest { pieces_root: root(ROOT_513), base_layer: 0, index: 512, length: 1, proof_layers: 9 },
            unhex(&format!("0000003115{ROOT_513}00000000000002000000000100000009")),
        ),
        // Our answer to it, which libtorrent accepted: piece 512, then 10 uncles (layers 0 to 9).
        (
            Message::Hashes {
                pieces_root: root(ROOT_513),
                base_layer: 0,
                index: 512,
                length: 1,
                proof_layers: 9,
                hashes: ours_lone,
            },
            [unhex(&format!("0000019116{ROOT_513}00000000000002000000000100000009")), ours_lone.to_vec()].concat(),
        ),
        // libtorrent serving the 3-piece file: blocks 4 and 5 with two uncles.
        (
            Message::Hashes {
                pieces_root: root(ROOT_3),
                base_layer: 0,
                index: 4,
                length: 2,
                proof_layers: 2,
                hashes: lt_hashes,
            },
            unhex(&format!(
                "{}{}{}{}{}{}{}{LT_HASHES}",
                "000000b1", // length 177: 49 + 4 hashes
                "16",       // id 22 hashes
                ROOT_3,
                "00000000", // base layer 0: the blocks
                "00000004", // index 4
                "00000002", // length 2
                "00000002", // proof layers 2
            )),
        ),
        // libtorrent refusing index 8 of a layer of 8 nodes.
        (
            Message::HashReject { pieces_root: root(ROOT_3), base_layer: 0, index: 8, length: 2, proof_layers: 0 },
            unhex(&format!("0000003117{ROOT_3}00000000000000080000000200000000")),
        ),
        // Built by hand from BEP 52's field order, every field distinct.
        (
            Message::HashReject {
                pieces_root: [0xAB; 32],
                base_layer: 0x0102_0304,
                index: 0x0506_0708,
                length: 0x090A_0B0C,
                proof_layers: 0x0D0E_0F10,
            },
            [&[0, 0, 0, 49, 23][..], &[0xAB; 32], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]].concat(),
        ),
        // A `hashes` message with no hashes is well framed (what it proves is the receiver's business).
        (
            Message::Hashes { pieces_root: [0; 32], base_layer: 0, index: 0, length: 0, proof_layers: 0, hashes: &[] },
            [&[0, 0, 0, 49, 22][..], &[0; 48]].concat(),
        ),
    ]
}

#[test]
fn encode_matches_golden_bytes() {
    for (message, bytes) in golden() {
        let mut out = Vec::new();
        message.encode(&mut out);
        assert_eq!(out, bytes, "{message:?}");
        assert_eq!(message.encoded_len(), bytes.len(), "{message:?}");
    }
}

#[test]
fn decode_golden_bytes() {
    for (message, bytes) in golden() {
        assert_eq!(decode(&bytes, MAX_MESSAGE_LEN), Ok(Some((message, bytes.len()))));
        // Bytes of the next message do not change the result.
        let more = [&bytes[..], &[0, 0, 0, 1, 2]].concat();
        assert_eq!(decode(&more, MAX_MESSAGE_LEN), Ok(Some((message, bytes.len()))));
    }
}

#[test]
fn golden_ids() {
    let ids: Vec<Option<u8>> = golden().iter().map(|(m, _)| m.id()).collect();
    assert_eq!(ids, [21, 21, 21, 21, 22, 22, 23, 23, 22].map(Some));
}

#[test]
fn each_golden_message_is_none_until_complete() {
    for (message, bytes) in golden() {
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut], MAX_MESSAGE_LEN), Ok(None), "{message:?} cut at {cut}");
        }
    }
}

#[test]
fn wrong_lengths_are_errors_as_soon_as_the_id_arrives() {
    for id in [21u8, 23] {
        for len in [1u32, 2, 17, 48, 50, 81, 49 + 32] {
            let mut head = len.to_be_bytes().to_vec();
            head.push(id);
            assert_eq!(decode(&head, MAX_MESSAGE_LEN), Err(WireError::BadLength { id, len }), "id {id} len {len}");
        }
    }
    for len in [1u32, 48, 50, 49 + 31, 49 + 33, 49 + 32 * 7 + 1] {
        let head = [&len.to_be_bytes()[..], &[22]].concat();
        assert_eq!(decode(&head, MAX_MESSAGE_LEN), Err(WireError::BadLength { id: 22, len }), "len {len}");
    }
    // Right lengths wait for their payload.
    assert_eq!(decode(&[0, 0, 0, 49, 21], MAX_MESSAGE_LEN), Ok(None));
    assert_eq!(decode(&[0, 0, 0, 49 + 64, 22], MAX_MESSAGE_LEN), Ok(None));
    assert_eq!(decode(&[0, 0, 0, 49, 23], MAX_MESSAGE_LEN), Ok(None));
}

#[test]
fn errors_name_the_message_and_its_rule() {
    let text = |bytes: &[u8]| decode(bytes, MAX_MESSAGE_LEN).expect_err("bad length").to_string();
    assert_eq!(text(&[0, 0, 0, 48, 21]), "hash request message (id 21) has invalid length 48, expected 49");
    assert_eq!(
        text(&[0, 0, 0, 50, 22]),
        "hashes message (id 22) has invalid length 50, expected 49 plus a multiple of 32"
    );
    assert_eq!(text(&[0, 0, 0, 1, 23]), "hash reject message (id 23) has invalid length 1, expected 49");
}

#[test]
fn the_length_bound_still_applies_first() {
    // 8192 hashes, libtorrent's largest answer, fits the default bound; a tight bound stops it at the prefix.
    let len = HASH_REQUEST_LEN + 32 * (8192 + 20);
    assert!(len <= MAX_MESSAGE_LEN);
    assert_eq!(decode(&[&len.to_be_bytes()[..], &[22]].concat(), MAX_MESSAGE_LEN), Ok(None));
    assert_eq!(decode(&len.to_be_bytes(), 16 * 1024 + 9), Err(WireError::TooLong { len, max: 16 * 1024 + 9 }));
}

/// The owned parts a hash message is built from.
#[derive(Debug, Clone)]
struct Parts {
    kind: u8,
    root: [u8; 32],
    fields: [u32; 4],
    hashes: Vec<u8>,
}

fn parts() -> impl Strategy<Value = Parts> {
    (0u8..3, any::<[u8; 32]>(), any::<[u32; 4]>(), proptest::collection::vec(any::<[u8; 32]>(), 0..40))
        .prop_map(|(kind, root, fields, hashes)| Parts { kind, root, fields, hashes: hashes.concat() })
}

fn build(p: &Parts) -> Message<'_> {
    let [base_layer, index, length, proof_layers] = p.fields;
    let pieces_root = p.root;
    match p.kind {
        0 => Message::HashRequest { pieces_root, base_layer, index, length, proof_layers },
        1 => Message::Hashes { pieces_root, base_layer, index, length, proof_layers, hashes: &p.hashes },
        _ => Message::HashReject { pieces_root, base_layer, index, length, proof_layers },
    }
}

proptest! {
    #[test]
    fn encode_then_decode_is_identity(p in parts(), trailing in proptest::collection::vec(any::<u8>(), 0..8)) {
        let message = build(&p);
        let mut buf = Vec::new();
        message.encode(&mut buf);
        prop_assert_eq!(buf.len(), message.encoded_len());
        let used = buf.len();
        buf.extend_from_slice(&trailing);
        prop_assert_eq!(decode(&buf, MAX_MESSAGE_LEN), Ok(Some((message, used))));
    }

    /// Any payload under ids 21-23: an error or a message that re-encodes to the same bytes, never a panic.
    #[test]
    fn arbitrary_payloads_never_panic(id in 21u8..=23, payload in proptest::collection::vec(any::<u8>(), 0..200)) {
        let len = u32::try_from(payload.len() + 1).expect("small");
        let bytes = [&len.to_be_bytes()[..], &[id], &payload].concat();
        match decode(&bytes, MAX_MESSAGE_LEN) {
            Ok(Some((message, used))) => {
                prop_assert_eq!(used, bytes.len());
                prop_assert_eq!(message.id(), Some(id));
                let mut out = Vec::new();
                message.encode(&mut out);
                prop_assert_eq!(out, bytes);
                let whole = payload.len() == 48 || (id == 22 && payload.len() >= 48 && (payload.len() - 48) % 32 == 0);
                prop_assert!(whole);
            }
            Ok(None) => prop_assert!(false, "a whole frame must decode or fail"),
            Err(e) => prop_assert_eq!(e, WireError::BadLength { id, len }),
        }
    }
}
