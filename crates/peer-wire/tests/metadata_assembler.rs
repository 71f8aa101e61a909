//! Assembling metadata from BEP 9 pieces: libtorrent's two-piece answer end to end, missing pieces, duplicates,
//! wrong sizes and lengths, and a hash mismatch that starts the fetch over.

use peer_wire::{ExtensionError, METADATA_PIECE_LEN, MetadataAssembler, MetadataMessage, MetadataProgress};
use proptest::prelude::*;
use sha1::{Digest, Sha1};

const CAP: u32 = 32 << 20;

/// The info dictionary of the 1000-piece torrent in libtorrent's capture (20075 bytes: two metadata pieces).
fn libtorrent_info() -> Vec<u8> {
    let pieces: Vec<u8> = (0..1000).flat_map(|i| Sha1::digest(format!("piece {i}").as_bytes())).collect();
    let head = format!("d6:lengthi{}e4:name10:sample.bin12:piece lengthi16384e6:pieces{}:", 1000 * 16384, pieces.len());
    [head.as_bytes(), &pieces, b"e"].concat()
}

fn sha1(bytes: &[u8]) -> [u8; 20] {
    Sha1::digest(bytes).into()
}

fn unhex(s: &str) -> [u8; 20] {
    let mut out = [0; 20];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex");
    }
    out
}

#[test]
fn libtorrent_pieces_assemble_to_its_info_hash() {
    let info = libtorrent_info();
    assert_eq!(info.len(), 20075);
    let info_hash = unhex("23262a14aa0553a9665a0faa4fa91f54bc0dde31"); // libtorrent's info-hash for this torrent
    assert_eq!(sha1(&info), info_hash);
    // The two data messages libtorrent sent: the dictionaries as captured, each followed by its piece.
    let messages = [
        [&b"d8:msg_typei1e5:piecei0e10:total_sizei20075ee"[..], &info[..16384]].concat(),
        [&b"d8:msg_typei1e5:piecei1e10:total_sizei20075ee"[..], &info[16384..]].concat(),
    ];
    let mut assembler = MetadataAssembler::new(info_hash, 20075, CAP).expect("size within the cap");
    assert_eq!(assembler.piece_count(), 2);
    assert_eq!(assembler.missing().collect::<Vec<_>>(), [0, 1]);
    // Out of order, as pieces from several peers arrive.
    for (message, expected) in messages.iter().rev().zip([MetadataProgress::Stored, MetadataProgress::Complete]) {
        let Ok(MetadataMessage::Data { piece, total_size, block }) = MetadataMessage::decode(message, CAP) else {
            panic!("libtorrent's data message decodes");
        };
        assert_eq!(assembler.add(piece, total_size, block), Ok(expected));
    }
    assert!(assembler.is_complete());
    assert_eq!(assembler.missing().count(), 0);
    assert_eq!(assembler.metadata(), Some(&info[..]));
    assert_eq!(assembler.into_metadata(), Some(info));
}

#[test]
fn piece_lengths_follow_the_size() {
    let a = MetadataAssembler::new([0; 20], 16384, CAP).expect("valid");
    assert_eq!((a.piece_count(), a.piece_len(0), a.piece_len(1)), (1, Some(16384), None));
    let b = MetadataAssembler::new([0; 20], 16385, CAP).expect("valid");
    assert_eq!((b.piece_count(), b.piece_len(0), b.piece_len(1), b.piece_len(2)), (2, Some(16384), Some(1), None));
    let c = MetadataAssembler::new([0; 20], 1, CAP).expect("valid");
    assert_eq!((c.size(), c.piece_count(), c.piece_len(0)), (1, 1, Some(1)));
    assert_eq!(c.piece_len(u32::MAX), None);
}

#[test]
fn size_zero_or_over_the_cap_is_refused() {
    assert_eq!(MetadataAssembler::new([0; 20], 0, CAP).err(), Some(ExtensionError::MetadataSize { size: 0, max: CAP }));
    assert_eq!(
        MetadataAssembler::new([0; 20], CAP + 1, CAP).err(),
        Some(ExtensionError::MetadataSize { size: i64::from(CAP) + 1, max: CAP })
    );
}

#[test]
fn each_piece_is_accepted_once() {
    let data = vec![5u8; 40_000];
    let mut a = MetadataAssembler::new(sha1(&data), 40_000, CAP).expect("valid");
    assert_eq!(a.add(1, 40_000, &data[16384..32768]), Ok(MetadataProgress::Stored));
    assert_eq!(a.add(1, 40_000, &data[16384..32768]), Ok(MetadataProgress::Duplicate));
    assert_eq!(a.missing().collect::<Vec<_>>(), [0, 2]);
    assert_eq!(a.metadata(), None);
    assert_eq!(a.add(0, 40_000, &data[..16384]), Ok(MetadataProgress::Stored));
    assert_eq!(a.add(2, 40_000, &data[32768..]), Ok(MetadataProgress::Complete));
    assert_eq!(a.add(2, 40_000, &data[32768..]), Ok(MetadataProgress::Duplicate), "after completion too");
    assert_eq!(a.metadata(), Some(&data[..]));
}

#[test]
fn wrong_total_size_is_refused() {
    let mut a = MetadataAssembler::new([0; 20], 20_000, CAP).expect("valid");
    assert_eq!(a.add(0, 20_001, &[0; 16384]), Err(ExtensionError::TotalSizeMismatch { got: 20_001, expected: 20_000 }));
    assert_eq!(a.missing().count(), 2, "nothing stored");
}

#[test]
fn piece_past_the_end_is_refused() {
    let mut a = MetadataAssembler::new([0; 20], 20_000, CAP).expect("valid");
    for piece in [2, 3, u32::MAX] {
        assert_eq!(a.add(piece, 20_000, &[0; 100]), Err(ExtensionError::MetadataPieceOutOfRange { piece, count: 2 }));
    }
}

#[test]
fn piece_of_the_wrong_length_is_refused() {
    let mut a = MetadataAssembler::new([0; 20], 20_000, CAP).expect("valid");
    let cases: &[(u32, usize, usize)] = &[
        (0, 16383, 16384), // a piece that is not the last must be a full 16 KiB
        (0, 0, 16384),
        (1, 3617, 3616), // the last piece holds exactly the rest
        (1, 16384, 3616),
        (1, 3615, 3616),
    ];
    for &(piece, got, expected) in cases {
        assert_eq!(
            a.add(piece, 20_000, &vec![0; got]),
            Err(ExtensionError::MetadataPieceLength { piece, got, expected })
        );
    }
    assert_eq!(a.missing().count(), 2, "nothing stored");
}

#[test]
fn hash_mismatch_drops_every_piece_and_starts_over() {
    let data: Vec<u8> = (0..30_000u32).map(|i| (i % 251) as u8).collect();
    let mut a = MetadataAssembler::new(sha1(&data), 30_000, CAP).expect("valid");
    let mut forged = data.clone();
    forged[20_000] ^= 1;
    assert_eq!(a.add(0, 30_000, &data[..16384]), Ok(MetadataProgress::Stored));
    assert_eq!(a.add(1, 30_000, &forged[16384..]), Err(ExtensionError::MetadataHashMismatch));
    assert!(!a.is_complete());
    assert_eq!(a.metadata(), None);
    assert_eq!(a.missing().collect::<Vec<_>>(), [0, 1], "both pieces are fetched again");
    assert_eq!(a.add(1, 30_000, &data[16384..]), Ok(MetadataProgress::Stored));
    assert_eq!(a.add(0, 30_000, &data[..16384]), Ok(MetadataProgress::Complete));
    assert_eq!(a.metadata(), Some(&data[..]));
}

#[test]
fn error_messages_name_the_problem() {
    assert_eq!(
        ExtensionError::MetadataPieceLength { piece: 0, got: 5, expected: 16384 }.to_string(),
        "metadata piece 0 has 5 bytes, expected 16384"
    );
    assert_eq!(ExtensionError::MetadataHashMismatch.to_string(), "assembled metadata does not match the info-hash");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Pieces in any order, each possibly twice, complete the metadata exactly when the last distinct one is in.
    #[test]
    fn any_order_with_repeats_completes_once(
        size in 1usize..70_000,
        seed in any::<u64>(),
        order in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let data: Vec<u8> = (0..size).map(|i| (i as u64).wrapping_mul(seed | 1).to_le_bytes()[3]).collect();
        let size32 = u32::try_from(size).expect("small");
        let mut a = MetadataAssembler::new(sha1(&data), size32, CAP).expect("valid");
        let count = a.piece_count() as usize;
        prop_assert_eq!(count, size.div_ceil(METADATA_PIECE_LEN));
        // Some random pieces first (repeats allowed), then every piece in order to finish.
        let picks = order.iter().map(|i| i.index(count)).chain(0..count);
        let mut seen = vec![false; count];
        for piece in picks {
            let start = piece * METADATA_PIECE_LEN;
            let block = &data[start..(start + METADATA_PIECE_LEN).min(size)];
            let got = a.add(u32::try_from(piece).expect("small"), size32, block).expect("valid piece");
            let expected = if seen[piece] {
                MetadataProgress::Duplicate
            } else {
                seen[piece] = true;
                if seen.iter().all(|&s| s) { MetadataProgress::Complete } else { MetadataProgress::Stored }
            };
            prop_assert_eq!(got, expected);
            prop_assert_eq!(a.missing().count(), seen.iter().filter(|&&s| !s).count());
        }
        prop_assert_eq!(a.metadata(), Some(&data[..]));
    }
}

#[test]
fn a_v2_or_hybrid_fetch_checks_the_sha256_and_every_hash_given() {
    use sha2::Digest as _;
    let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    let sha256: [u8; 32] = sha2::Sha256::digest(&data).into();
    let fill = |mut assembler: MetadataAssembler| {
        let mut last = None;
        for piece in 0..assembler.piece_count() {
            let start = piece as usize * METADATA_PIECE_LEN;
            let end = (start + METADATA_PIECE_LEN).min(data.len());
            last = Some(assembler.add(piece, 20_000, &data[start..end]));
        }
        last.expect("two pieces")
    };
    let v2 = MetadataAssembler::with_hashes(None, Some(sha256), 20_000, CAP).expect("valid");
    assert_eq!(fill(v2), Ok(MetadataProgress::Complete));
    let both = MetadataAssembler::with_hashes(Some(sha1(&data)), Some(sha256), 20_000, CAP).expect("valid");
    assert_eq!(fill(both), Ok(MetadataProgress::Complete));
    let mut other = sha256;
    other[0] ^= 1;
    let half = MetadataAssembler::with_hashes(Some(sha1(&data)), Some(other), 20_000, CAP).expect("valid");
    assert_eq!(fill(half), Err(ExtensionError::MetadataHashMismatch), "one hash of two matching is not enough");
    let none = MetadataAssembler::with_hashes(None, None, 20_000, CAP).expect("valid");
    assert_eq!(fill(none), Err(ExtensionError::MetadataHashMismatch), "with no hash nothing matches");
}

#[test]
fn memory_is_claimed_piece_by_piece_and_given_back_on_a_mismatch() {
    // A peer can claim the cap; only what it actually sends is held.
    let mut a = MetadataAssembler::new([0; 20], CAP, CAP).expect("valid");
    assert_eq!(a.held(), 0);
    let block = vec![7u8; METADATA_PIECE_LEN];
    assert_eq!(a.add(3, CAP, &block), Ok(MetadataProgress::Stored));
    assert_eq!(a.held(), METADATA_PIECE_LEN);
    assert!(a.has_piece(3) && !a.has_piece(2));
    a.clear();
    assert_eq!((a.held(), a.missing().count()), (0, a.piece_count() as usize));

    let data = vec![5u8; 2 * METADATA_PIECE_LEN];
    let mut b = MetadataAssembler::new([1; 20], data.len() as u32, CAP).expect("valid");
    b.add(0, data.len() as u32, &data[..METADATA_PIECE_LEN]).expect("stored");
    assert_eq!(b.add(1, data.len() as u32, &data[METADATA_PIECE_LEN..]), Err(ExtensionError::MetadataHashMismatch));
    assert_eq!(b.held(), 0, "a failed whole gives its memory back");
}
