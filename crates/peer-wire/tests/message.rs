//! Messages: golden bytes for every id, partial input, hostile lengths, and a never-panic sweep.

use peer_wire::{
    BLOCK_LEN, MAX_MESSAGE_LEN, Message, PIECE_HEADER_LEN, WireError, decode, encode_piece_header, message_limit,
};

/// Each message next to its bytes, one field per line.
fn golden() -> Vec<(Message<'static>, Vec<u8>)> {
    let cases: Vec<(Message<'static>, &[&[u8]])> = vec![
        (
            Message::KeepAlive,
            &[
                &[0, 0, 0, 0], // length 0, no id
            ],
        ),
        (
            Message::Choke,
            &[
                &[0, 0, 0, 1], // length 1
                &[0],          // id choke
            ],
        ),
        (
            Message::Unchoke,
            &[
                &[0, 0, 0, 1], // length 1
                &[1],          // id unchoke
            ],
        ),
        (
            Message::Interested,
            &[
                &[0, 0, 0, 1], // length 1
                &[2],          // id interested
            ],
        ),
        (
            Message::NotInterested,
            &[
                &[0, 0, 0, 1], // length 1
                &[3],          // id not interested
            ],
        ),
        (
            Message::Have { index: 0x0102_0304 },
            &[
                &[0, 0, 0, 5], // length 5
                &[4],          // id have
                &[1, 2, 3, 4], // index
            ],
        ),
        (
            Message::Bitfield { bits: &[0b1010_0000, 0xFF, 0x80] },
            &[
                &[0, 0, 0, 4],              // length 4
                &[5],                       // id bitfield
                &[0b1010_0000, 0xFF, 0x80], // pieces 0, 2, 8-15, 16
            ],
        ),
        (
            Message::Request { index: 7, begin: 0x4000, length: 0x4000 },
            &[
                &[0, 0, 0, 13],   // length 13
                &[6],             // id request
                &[0, 0, 0, 7],    // index 7
                &[0, 0, 0x40, 0], // begin 16384
                &[0, 0, 0x40, 0], // length 16384
            ],
        ),
        (
            Message::Piece { index: 7, begin: 0x4000, block: b"data" },
            &[
                &[0, 0, 0, 13],   // length 9 + 4
                &[7],             // id piece
                &[0, 0, 0, 7],    // index 7
                &[0, 0, 0x40, 0], // begin 16384
                b"data",          // block
            ],
        ),
        (
            Message::Cancel { index: 0xFFFF_FFFF, begin: 0, length: 1 },
            &[
                &[0, 0, 0, 13],            // length 13
                &[8],                      // id cancel
                &[0xFF, 0xFF, 0xFF, 0xFF], // index u32::MAX
                &[0, 0, 0, 0],             // begin 0
                &[0, 0, 0, 1],             // length 1
            ],
        ),
        (
            Message::Port { port: 6881 },
            &[
                &[0, 0, 0, 3], // length 3
                &[9],          // id port
                &[0x1A, 0xE1], // port 6881
            ],
        ),
        (
            Message::Extended { id: 0, payload: b"de" },
            &[
                &[0, 0, 0, 4], // length 4
                &[20],         // id 20 (BEP 10 extended)
                &[0],          // extended id 0: the extended handshake
                b"de",         // its payload, an empty dictionary
            ],
        ),
        (
            Message::Extended { id: 3, payload: &[] },
            &[
                &[0, 0, 0, 2], // length 2: the id and the extended id, nothing else
                &[20],         // id 20
                &[3],          // extended id 3
            ],
        ),
        (
            Message::Unknown { id: 13, payload: &[0, 0, 0, 1] },
            &[
                &[0, 0, 0, 5], // length 5
                &[13],         // id 13 (BEP 6 suggest piece), not spoken here
                &[0, 0, 0, 1], // payload, opaque to us
            ],
        ),
    ];
    cases.into_iter().map(|(m, parts)| (m, parts.concat())).collect()
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
        let got = decode(&bytes, MAX_MESSAGE_LEN).expect("valid");
        assert_eq!(got, Some((message, bytes.len())));
    }
}

#[test]
fn decode_every_split_point_of_a_stream() {
    let stream: Vec<u8> = golden().into_iter().flat_map(|(_, b)| b).collect();
    let expected: Vec<Message<'_>> = golden().into_iter().map(|(m, _)| m).collect();
    // Feed the stream as a socket would: bytes 0..cut arrive first, the rest later.
    for cut in 0..=stream.len() {
        let mut got = Vec::new();
        let mut start = 0;
        let mut available = cut;
        loop {
            match decode(&stream[start..available], MAX_MESSAGE_LEN).expect("valid stream") {
                Some((message, used)) => {
                    assert!(used > 0);
                    got.push(message);
                    start += used;
                }
                None if available < stream.len() => available = stream.len(),
                None => break,
            }
        }
        assert_eq!(start, stream.len(), "cut at {cut}");
        assert_eq!(got, expected, "cut at {cut}");
    }
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
fn huge_length_prefix_is_rejected_with_only_the_prefix() {
    assert_eq!(
        decode(&[0xFF, 0xFF, 0xFF, 0xFF], MAX_MESSAGE_LEN),
        Err(WireError::TooLong { len: u32::MAX, max: MAX_MESSAGE_LEN })
    );
    let just_over = (MAX_MESSAGE_LEN + 1).to_be_bytes();
    assert!(matches!(decode(&just_over, MAX_MESSAGE_LEN), Err(WireError::TooLong { .. })));
    // At the bound itself we simply wait for the payload.
    assert_eq!(decode(&MAX_MESSAGE_LEN.to_be_bytes(), MAX_MESSAGE_LEN), Ok(None));
}

#[test]
fn caller_bound_applies() {
    let bitfield_of_9_bytes = [0, 0, 0, 10, 5];
    assert_eq!(decode(&bitfield_of_9_bytes, 9), Err(WireError::TooLong { len: 10, max: 9 }));
    assert_eq!(decode(&bitfield_of_9_bytes, 10), Ok(None));
}

#[test]
fn message_limit_covers_a_block_and_the_bitfield() {
    assert_eq!(message_limit(1), 9 + BLOCK_LEN);
    assert_eq!(message_limit(8 * 1024 * 1024), 1 + 1024 * 1024);
    assert!(message_limit(u32::MAX) > MAX_MESSAGE_LEN / 2);
}

#[test]
fn fixed_size_messages_with_wrong_length_are_rejected_at_the_id() {
    let bad: &[(u8, u32)] = &[
        (0, 2),           // choke with a payload byte
        (3, 5),           // not interested
        (4, 1),           // have without index
        (4, 4),           // have, index cut short
        (4, 6),           // have, one extra byte
        (4, 0x0010_0000), // have claiming 1 MiB: rejected before waiting for it
        (6, 12),          // request one byte short
        (6, 14),          // request one byte long
        (8, 9),           // cancel too short
        (7, 8),           // piece without a whole header
        (7, 1),           // piece with nothing
        (9, 2),           // port one byte short
        (9, 5),           // port too long
        (20, 1),          // extended without its extended id
    ];
    for &(id, len) in bad {
        let mut frame = len.to_be_bytes().to_vec();
        frame.push(id);
        // Only the prefix and id are present: the error must not wait for the payload.
        assert_eq!(decode(&frame, MAX_MESSAGE_LEN), Err(WireError::BadLength { id, len }), "id {id} len {len}");
    }
}

#[test]
fn empty_piece_and_bitfield_payloads_are_allowed() {
    let empty_block = [0, 0, 0, 9, 7, 0, 0, 0, 1, 0, 0, 0, 2];
    let piece = Message::Piece { index: 1, begin: 2, block: &[] };
    assert_eq!(decode(&empty_block, MAX_MESSAGE_LEN), Ok(Some((piece, 13))));
    let empty_bitfield = [0, 0, 0, 1, 5];
    assert_eq!(decode(&empty_bitfield, MAX_MESSAGE_LEN), Ok(Some((Message::Bitfield { bits: &[] }, 5))));
}

#[test]
fn piece_header_matches_full_encoding() {
    let block = vec![0x5A; BLOCK_LEN as usize];
    let mut full = Vec::new();
    Message::Piece { index: 3, begin: 32768, block: &block }.encode(&mut full);
    let mut header = Vec::new();
    encode_piece_header(3, 32768, BLOCK_LEN, &mut header);
    assert_eq!(header.len(), PIECE_HEADER_LEN);
    assert_eq!(header[..], full[..PIECE_HEADER_LEN]);
    header.extend_from_slice(&block);
    assert_eq!(header, full);
}

#[test]
fn decoded_piece_borrows_the_buffer() {
    let mut buf = Vec::new();
    encode_piece_header(0, 0, 4, &mut buf);
    buf.extend_from_slice(b"abcd");
    let Ok(Some((Message::Piece { block, .. }, _))) = decode(&buf, MAX_MESSAGE_LEN) else {
        panic!("expected a piece");
    };
    assert!(std::ptr::eq(block.as_ptr(), buf[PIECE_HEADER_LEN..].as_ptr()));
}

#[test]
fn error_messages_name_the_problem() {
    let e = WireError::BadLength { id: 4, len: 6 };
    assert_eq!(e.to_string(), "have message (id 4) has invalid length 6, expected 5");
    let e = WireError::BadLength { id: 20, len: 1 };
    assert_eq!(e.to_string(), "extended message (id 20) has invalid length 1, expected at least 2");
    let e = WireError::TooLong { len: u32::MAX, max: MAX_MESSAGE_LEN };
    assert_eq!(e.to_string(), "message length 4294967295 exceeds the maximum of 1048589 bytes");
}

#[test]
fn decode_never_panics_on_any_short_input() {
    // Every length 0..=256 with several fills, plus each prefix of a frame with a plausible header.
    for len in 0..=256usize {
        for fill in [0u8, 1, 4, 7, 9, 0x7F, 0xFF] {
            let buf = vec![fill; len];
            check_progress(&buf, MAX_MESSAGE_LEN);
            check_progress(&buf, 0);
        }
        for id in (0..=10u8).chain([20]) {
            let claimed = u32::try_from(len).expect("small");
            let mut buf = claimed.to_be_bytes().to_vec();
            buf.push(id);
            buf.extend((0..len).map(|i| (i * 31) as u8));
            for cut in 0..=buf.len() {
                check_progress(&buf[..cut], MAX_MESSAGE_LEN);
            }
        }
    }
}

/// Decodes `buf` to the end or the first error; asserts every message consumed bytes that exist.
fn check_progress(mut buf: &[u8], max_len: u32) {
    while let Ok(Some((_, used))) = decode(buf, max_len) {
        assert!(used > 0 && used <= buf.len());
        buf = &buf[used..];
    }
}
