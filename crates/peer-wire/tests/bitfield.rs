//! Bitfield: BEP 3 bit order, validation of received bytes, index bounds, set queries.

use peer_wire::{Bitfield, Message, WireError};
use proptest::prelude::*;

#[test]
fn piece_zero_is_the_high_bit_of_byte_zero() {
    let mut bf = Bitfield::new(10);
    assert_eq!(bf.set(0), Ok(true));
    assert_eq!(bf.set(9), Ok(true));
    assert_eq!(
        bf.as_bytes(),
        &[
            0b1000_0000, // pieces 0-7: piece 0
            0b0100_0000, // pieces 8-9: piece 9, then 6 spare bits
        ]
    );
}

#[test]
fn full_clears_spare_bits() {
    let bf = Bitfield::full(10);
    assert_eq!(bf.as_bytes(), &[0xFF, 0b1100_0000]);
    assert_eq!(bf.count(), 10);
    assert!(bf.is_complete());
    assert_eq!(Bitfield::full(16).as_bytes(), &[0xFF, 0xFF]);
    assert!(Bitfield::full(0).as_bytes().is_empty());
}

#[test]
fn from_bytes_accepts_exact_size_with_clear_spare_bits() {
    let bf = Bitfield::from_bytes(&[0b1010_0000, 0b0100_0000], 10).expect("valid");
    assert_eq!(bf.ones().collect::<Vec<_>>(), vec![0, 2, 9]);
    assert_eq!(bf.count(), 3);
    assert_eq!(bf.len(), 10);
    assert!(!bf.is_complete());
}

#[test]
fn from_bytes_rejects_spare_bits() {
    // 10 pieces: the low 6 bits of byte 1 are spare; one of them is set.
    assert_eq!(Bitfield::from_bytes(&[0xFF, 0b1100_0001], 10), Err(WireError::BitfieldSpareBits { num_pieces: 10 }));
    assert_eq!(Bitfield::from_bytes(&[0b0010_0000], 2), Err(WireError::BitfieldSpareBits { num_pieces: 2 }));
}

#[test]
fn from_bytes_rejects_wrong_size() {
    let short = Bitfield::from_bytes(&[0xFF], 10);
    assert_eq!(short, Err(WireError::BitfieldSize { got: 1, expected: 2, num_pieces: 10 }));
    let long = Bitfield::from_bytes(&[0xFF, 0xC0, 0x00], 10);
    assert_eq!(long, Err(WireError::BitfieldSize { got: 3, expected: 2, num_pieces: 10 }));
    let empty = Bitfield::from_bytes(&[], 1);
    assert_eq!(empty, Err(WireError::BitfieldSize { got: 0, expected: 1, num_pieces: 1 }));
    assert!(Bitfield::from_bytes(&[], 0).is_ok());
}

#[test]
fn out_of_range_indices_never_panic() {
    let mut bf = Bitfield::new(10);
    assert!(!bf.has(10));
    assert!(!bf.has(u32::MAX));
    let err = WireError::IndexOutOfRange { index: 10, num_pieces: 10 };
    assert_eq!(bf.set(10), Err(err));
    assert_eq!(bf.clear(10), Err(err));
    // Index 15 lies inside the last byte's spare bits: still out of range, and the bytes stay clean.
    assert!(bf.set(15).is_err());
    assert_eq!(bf.as_bytes(), &[0, 0]);
    assert!(Bitfield::new(0).set(0).is_err());
}

#[test]
fn set_and_clear_report_changes_and_keep_the_count() {
    let mut bf = Bitfield::new(3);
    assert_eq!(bf.set(1), Ok(true));
    assert_eq!(bf.set(1), Ok(false), "a repeated have changes nothing");
    assert_eq!(bf.count(), 1);
    assert!(bf.has(1) && !bf.has(0));
    assert_eq!(bf.clear(1), Ok(true));
    assert_eq!(bf.clear(1), Ok(false));
    assert_eq!(bf.count(), 0);
    for i in 0..3 {
        bf.set(i).expect("in range");
    }
    assert!(bf.is_complete());
    assert_eq!(bf, Bitfield::full(3));
}

#[test]
fn interesting_and_wanted_from() {
    let mut ours = Bitfield::new(100);
    let mut theirs = Bitfield::new(100);
    assert!(!ours.interesting(&theirs));
    theirs.set(70).expect("in range"); // inside the 8-byte words
    theirs.set(99).expect("in range"); // in the tail byte
    assert!(ours.interesting(&theirs));
    assert_eq!(ours.wanted_from(&theirs).collect::<Vec<_>>(), vec![70, 99]);
    ours.set(70).expect("in range");
    assert!(ours.interesting(&theirs), "still lacking 99");
    ours.set(99).expect("in range");
    assert!(!ours.interesting(&theirs));
    assert!(!Bitfield::full(100).interesting(&Bitfield::full(100)));
    assert!(!theirs.interesting(&ours), "equal sets interest neither side");
}

#[test]
fn to_message_carries_the_bytes() {
    let bf = Bitfield::full(9);
    assert_eq!(bf.to_message(), Message::Bitfield { bits: &[0xFF, 0x80] });
}

proptest! {
    #[test]
    fn set_bits_round_trip_through_bytes(n in 0u32..300, picks in proptest::collection::vec(any::<u32>(), 0..50)) {
        let mut bf = Bitfield::new(n);
        let mut want = std::collections::BTreeSet::new();
        for p in picks {
            if n > 0 {
                let i = p % n;
                bf.set(i).expect("in range");
                want.insert(i);
            } else {
                prop_assert!(bf.set(p).is_err());
            }
        }
        prop_assert_eq!(bf.ones().collect::<Vec<_>>(), want.iter().copied().collect::<Vec<_>>());
        prop_assert_eq!(bf.count() as usize, want.len());
        let back = Bitfield::from_bytes(bf.as_bytes(), n).expect("own bytes are valid");
        prop_assert_eq!(back, bf);
    }

    #[test]
    fn interesting_agrees_with_bit_by_bit(n in 0u32..200, a in proptest::collection::vec(any::<u8>(), 25), b in proptest::collection::vec(any::<u8>(), 25)) {
        let len = n.div_ceil(8) as usize;
        let mask = |mut v: Vec<u8>| {
            v.truncate(len);
            if let (Some(last), r @ 1..) = (v.last_mut(), n % 8) {
                *last &= !(0xFF >> r);
            }
            v
        };
        let ours = Bitfield::from_bytes(&mask(a), n).expect("masked");
        let theirs = Bitfield::from_bytes(&mask(b), n).expect("masked");
        let slow: Vec<u32> = (0..n).filter(|&i| theirs.has(i) && !ours.has(i)).collect();
        prop_assert_eq!(ours.interesting(&theirs), !slow.is_empty());
        prop_assert_eq!(ours.wanted_from(&theirs).collect::<Vec<_>>(), slow);
    }

    #[test]
    fn from_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40), n in any::<u32>()) {
        let _ = Bitfield::from_bytes(&bytes, n % 400);
        let _ = Bitfield::from_bytes(&bytes, n);
    }
}
