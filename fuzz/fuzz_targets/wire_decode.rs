//! Fuzz the peer wire codec: `decode` over arbitrary bytes must never panic, must always make progress, and every
//! message it returns must re-encode to exactly the bytes it came from. Also feeds the same input to
//! `Handshake::decode` and `Bitfield::from_bytes`.

#![no_main]

use peer_wire::{Bitfield, Handshake, Message, decode};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The first byte picks the length bound, so both the default and tight per-torrent bounds get exercised.
    let Some((&knob, input)) = data.split_first() else {
        return;
    };
    let max_len = match knob % 4 {
        0 => peer_wire::MAX_MESSAGE_LEN,
        1 => peer_wire::message_limit(u32::from(knob)),
        2 => u32::from(knob),
        _ => u32::MAX,
    };

    let mut rest = input;
    while let Ok(Some((message, used))) = decode(rest, max_len) {
        assert!(used > 0 && used <= rest.len(), "no progress or overrun: {used} of {}", rest.len());
        assert_eq!(used, message.encoded_len());
        let mut out = Vec::with_capacity(used);
        message.encode(&mut out);
        assert_eq!(out, rest[..used], "re-encoding {message:?} changed the bytes");
        if let Message::Bitfield { bits } = message {
            // Whatever piece count the bytes claim to cover, validation must not panic; a valid one round trips.
            let pieces = u32::try_from(bits.len() * 8).unwrap_or(u32::MAX).saturating_sub(u32::from(knob % 8));
            if let Ok(bf) = Bitfield::from_bytes(bits, pieces) {
                assert_eq!(bf.as_bytes(), bits);
                assert_eq!(bf.ones().count(), bf.count() as usize);
            }
        }
        rest = &rest[used..];
    }

    if let Ok(Some((handshake, used))) = Handshake::decode(input) {
        assert_eq!(used, peer_wire::HANDSHAKE_LEN);
        assert_eq!(handshake.encode()[..], input[..used]);
    }

    for pieces in [0, 1, 7, 8, 9, u32::from(knob), u32::MAX] {
        if let Ok(bf) = Bitfield::from_bytes(input, pieces) {
            assert_eq!(bf.as_bytes(), input);
            assert!(bf.count() <= bf.len());
        }
    }
});
