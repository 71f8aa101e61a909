//! Fuzz the BEP 10 / 9 / 11 codecs: the extended handshake, ut_metadata and ut_pex decoders over arbitrary bytes
//! must never panic and must keep their caps, and whatever decodes must re-encode to bytes that decode to the same
//! value (and re-encode to the same bytes). The input is also read as a stream of wire messages, whose extended
//! messages are dispatched by id as a connection would, and ut_metadata data blocks are fed to an assembler.

#![no_main]

use peer_wire::{
    ExtendedHandshake, MAX_EXTENSIONS, MAX_MESSAGE_LEN, MAX_PEX_PEERS, METADATA_PIECE_LEN, Message, MetadataAssembler,
    MetadataMessage, PexMessage, decode,
};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The first byte picks the metadata size cap, so tight caps get exercised as well as the peer's 32 MiB.
    let Some((&knob, input)) = data.split_first() else {
        return;
    };
    let cap = match knob % 3 {
        0 => 32 << 20,
        1 => u32::from(knob) * 64,
        _ => u32::MAX,
    };

    check_handshake(input);
    check_metadata(input, cap);
    check_pex(input);

    let mut rest = input;
    while let Ok(Some((message, used))) = decode(rest, MAX_MESSAGE_LEN) {
        if let Message::Extended { id, payload } = message {
            // libtorrent's ids: 0 handshake, 1 ut_pex, 2 ut_metadata.
            match id {
                0 => check_handshake(payload),
                1 => check_pex(payload),
                2 => check_metadata(payload, cap),
                _ => {}
            }
        }
        rest = &rest[used..];
    }
});

fn check_handshake(payload: &[u8]) {
    let Ok(handshake) = ExtendedHandshake::decode(payload) else {
        return;
    };
    assert!(handshake.extensions.len() <= MAX_EXTENSIONS);
    let mut out = Vec::new();
    handshake.encode(&mut out);
    let again = ExtendedHandshake::decode(&out).expect("own encoding decodes");
    assert_eq!(again, handshake);
    let mut out2 = Vec::new();
    again.encode(&mut out2);
    assert_eq!(out2, out, "encoding is canonical");
}

fn check_metadata(payload: &[u8], cap: u32) {
    let Ok(message) = MetadataMessage::decode(payload, cap) else {
        return;
    };
    let mut out = Vec::new();
    message.encode(&mut out);
    assert_eq!(MetadataMessage::decode(&out, cap), Ok(message), "re-encoding {message:?}");
    if let MetadataMessage::Data { piece, total_size, block } = message {
        assert!(block.len() <= METADATA_PIECE_LEN);
        assert!((1..=cap).contains(&total_size));
        // The block is the tail of the payload, never a copy.
        assert!(payload.ends_with(block));
        // Keep allocations small: the assembler allocates total_size bytes.
        if total_size <= 1 << 20 {
            let mut assembler = MetadataAssembler::new([0; 20], total_size, cap).expect("size was checked");
            if assembler.add(piece, total_size, block).is_ok() {
                assert_eq!(assembler.piece_len(piece), Some(block.len()));
                assert!(assembler.missing().all(|missing| missing != piece));
            }
        }
    }
}

fn check_pex(payload: &[u8]) {
    let Ok((message, _skipped)) = PexMessage::decode(payload) else {
        return;
    };
    assert!(message.added.len() <= 2 * MAX_PEX_PEERS && message.dropped.len() <= 2 * MAX_PEX_PEERS);
    let mut out = Vec::new();
    message.encode(&mut out);
    let (again, skipped) = PexMessage::decode(&out).expect("own encoding decodes");
    assert_eq!(skipped, 0);
    assert_eq!(again, message);
    let mut out2 = Vec::new();
    again.encode(&mut out2);
    assert_eq!(out2, out, "encoding is canonical");
}
