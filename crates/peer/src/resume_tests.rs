use super::*;

fn state() -> ResumeState {
    let mut have = Bitfield::new(10);
    for piece in [0, 3, 9] {
        have.set(piece).expect("in range");
    }
    ResumeState {
        info_hash: [0xab; 20],
        have,
        files: vec![Some(FileStamp { size: 1000, mtime: (1_700_000_000, 123_456_789) }), None],
    }
}

#[test]
fn the_state_file_is_this_exact_bencode_and_reads_back() {
    let golden: &[u8] = b"d5:fileslli1000ei1700000000ei123456789eelee6:format18:peer fast resume 14:have2:\x90\x40\
9:info-hash20:\xab\xab\xab\xab\xab\xab\xab\xab\xab\xab\xab\xab\xab\xab\xab\xab\xab\xab\xab\xab6:piecesi10ee";
    assert_eq!(state().encode(), golden);
    assert_eq!(ResumeState::decode(golden), Ok(state()));
}

/// `bytes` with the first `from` replaced by `to`.
fn replaced(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let at = bytes.windows(from.len()).position(|window| window == from.as_bytes()).expect("present");
    [&bytes[..at], to.as_bytes(), &bytes[at + from.len()..]].concat()
}

#[test]
fn every_bad_field_is_named() {
    let good = state().encode();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"not bencode".to_vec(), "not bencoded"),
        (replaced(&good, "6:format18:peer fast resume 1", "6:format4:ours"), "`format`"),
        (good[..good.len() - 1].to_vec(), "not bencoded"),
        (replaced(&good, "6:piecesi10e", "6:piecesi-1e"), "`pieces`"),
        (replaced(&good, "6:piecesi10e", "6:piecesi17e"), "`have`"),
        (replaced(&good, "6:piecesi10e", "6:piecesi9e"), "`have`"),
        (replaced(&good, "i123456789e", "i1000000000e"), "`files`"),
        (replaced(&good, "i1000e", "i-5e"), "`files`"),
        (replaced(&good, "lee", "li1eee"), "`files`"),
        (replaced(&good, "9:info-hash20:", "9:info-hash2:ab18:"), "not bencoded"),
    ];
    for (bytes, named) in cases {
        let err = ResumeState::decode(&bytes).expect_err("refused");
        assert!(err.to_string().contains(named), "{err} should name {named}");
    }
    // A field missing altogether.
    let missing = bencode::Value::Dict(vec![(b"format", bencode::Value::Bytes(FORMAT.as_bytes()))]).to_bytes();
    assert_eq!(ResumeState::decode(&missing), Err(field("info-hash", "is missing")));
}

#[test]
fn pieces_are_trusted_only_while_every_file_is_as_it_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("a.bin"), dir.path().join("b.bin"));
    std::fs::write(&a, [1u8; 100]).expect("write");
    std::fs::write(&b, [2u8; 50]).expect("write");
    let paths = vec![Some(a.clone()), None, Some(b.clone())];
    let mut have = Bitfield::new(3);
    have.set(1).expect("in range");
    let saved = ResumeState { info_hash: [7; 20], have: have.clone(), files: stamps(&paths) };
    let file = path_for(dir.path(), &[7; 20]);
    save(&file, &saved).expect("saved");
    let loaded = load(&file).expect("read").expect("there");
    assert_eq!(loaded.trusted(&[7; 20], 3, &paths), Ok(have));
    assert!(matches!(loaded.trusted(&[8; 20], 3, &paths), Err(ResumeError::OtherTorrent(_))));
    assert!(matches!(loaded.trusted(&[7; 20], 4, &paths), Err(ResumeError::PieceCount { got: 3, expected: 4 })));
    assert!(matches!(loaded.trusted(&[7; 20], 3, &paths[..2]), Err(ResumeError::FileCount { .. })));
    // Touched: same bytes, a new time.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options().write(true).open(&b).expect("open").set_modified(later).expect("touch");
    let changed = loaded.trusted(&[7; 20], 3, &paths).expect_err("b.bin changed");
    assert!(changed.to_string().contains("b.bin changed"), "{changed}");
    // Gone.
    std::fs::remove_file(&a).expect("remove");
    let gone = loaded.trusted(&[7; 20], 3, &paths).expect_err("a.bin gone");
    assert!(gone.to_string().contains("100 → missing"), "{gone}");
    // No state file: nothing to trust, no error.
    assert_eq!(load(&path_for(dir.path(), &[9; 20])), Ok(None));
}

#[test]
fn saving_replaces_the_old_state_whole_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = path_for(dir.path(), &[1; 20]);
    let mut first = state();
    first.info_hash = [1; 20];
    save(&file, &first).expect("saved");
    let mut second = first.clone();
    second.have = Bitfield::full(10);
    save(&file, &second).expect("saved");
    assert_eq!(load(&file), Ok(Some(second)));
    let names: Vec<_> = std::fs::read_dir(file.parent().expect("folder"))
        .expect("list")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

proptest::proptest! {
    #[test]
    fn any_bytes_are_read_or_refused_without_panicking(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
        let _ = ResumeState::decode(&bytes);
    }

    #[test]
    fn any_state_reads_back_as_it_was(
        hash in proptest::prelude::any::<[u8; 20]>(),
        bits in proptest::collection::vec(proptest::prelude::any::<bool>(), 0..70),
        files in proptest::collection::vec(proptest::option::of((0u64..1 << 50, -1i64 << 40..1i64 << 40, 0u32..1_000_000_000)), 0..8),
    ) {
        let mut have = Bitfield::new(bits.len() as u32);
        for (piece, _) in bits.iter().enumerate().filter(|(_, bit)| **bit) {
            have.set(piece as u32).expect("in range");
        }
        let files = files.into_iter().map(|stamp| stamp.map(|(size, secs, nanos)| FileStamp { size, mtime: (secs, nanos) })).collect();
        let state = ResumeState { info_hash: hash, have, files };
        proptest::prop_assert_eq!(ResumeState::decode(&state.encode()), Ok(state));
    }
}
