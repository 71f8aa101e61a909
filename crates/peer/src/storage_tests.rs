//! Tests of the storage layout, the start-up check and the refusal to follow symbolic links.
//!
//! Torrents are bencoded by hand so that pieces can be a few bytes long (`metainfo::create` makes 16 KiB at least),
//! which lets a test place piece boundaries exactly where it wants them.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::sync::{Arc, Mutex};

use metainfo::Torrent;
use peer_wire::Bitfield;
use sha1::{Digest, Sha1};

use super::{MAX_OPEN_FILES, Storage, StorageError};
use crate::selection::Priority::{self, High, Low, Normal, Skip};

/// The pieces a priority list from `set_priorities` wants.
fn wanted(levels: &[u8]) -> Vec<u32> {
    (0u32..).zip(levels).filter(|&(_, &level)| level > 0).map(|(index, _)| index).collect()
}

/// A file of a test torrent: path components below the torrent's folder (empty for single-file) and content.
type Part = (Vec<&'static str>, Vec<u8>);

fn bytes(text: &str) -> Vec<u8> {
    format!("{}:{text}", text.len()).into_bytes()
}

/// Bencodes a torrent with pieces of `piece_length` bytes over `parts`, parses and validates it.
fn torrent(name: &str, piece_length: usize, parts: &[Part]) -> Torrent {
    let single = parts.len() == 1 && parts[0].0.is_empty();
    let stream: Vec<u8> = parts.iter().flat_map(|(_, data)| data.iter().copied()).collect();
    let mut info = b"d".to_vec();
    if single {
        info.extend(format!("6:lengthi{}e", stream.len()).bytes());
    } else {
        info.extend(b"5:filesl");
        for (path, data) in parts {
            info.extend(format!("d6:lengthi{}e4:pathl", data.len()).bytes());
            for component in path {
                info.extend(bytes(component));
            }
            info.extend(b"ee");
        }
        info.extend(b"e");
    }
    info.extend(b"4:name");
    info.extend(bytes(name));
    info.extend(format!("12:piece lengthi{piece_length}e").bytes());
    let hashes: Vec<u8> = stream.chunks(piece_length).flat_map(|piece| <[u8; 20]>::from(Sha1::digest(piece))).collect();
    info.extend(format!("6:pieces{}:", hashes.len()).bytes());
    info.extend(hashes);
    info.extend(b"e");
    let mut file = b"d4:info".to_vec();
    file.extend(info);
    file.extend(b"e");
    Torrent::from_bytes(&file).expect("test torrent parses")
}

/// Deterministic, position-dependent bytes, so a block read from the wrong place never matches by chance.
fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 251) as u8 ^ seed).collect()
}

fn stream(parts: &[Part]) -> Vec<u8> {
    parts.iter().flat_map(|(_, data)| data.iter().copied()).collect()
}

fn write_all_pieces(storage: &Storage, stream: &[u8], order: impl Iterator<Item = u32>) {
    for index in order {
        let start = index as usize * storage.piece_length() as usize;
        let piece = &stream[start..start + storage.piece_size(index) as usize];
        assert!(storage.piece_matches(index, piece), "piece {index} matches its hash");
        storage.write_piece(index, piece).expect("write piece");
    }
}

/// Reads every piece back in blocks of `block` bytes and compares with the source.
fn assert_reads_back(storage: &Storage, stream: &[u8], block: u32) {
    let mut out = Vec::new();
    for index in 0..storage.num_pieces() {
        let size = storage.piece_size(index);
        let mut offset = 0;
        while offset < size {
            let length = block.min(size - offset);
            storage.read_block(index, offset, length, &mut out).expect("read block");
            offset += length;
        }
    }
    assert_eq!(out, stream);
}

/// Writes the source files straight to disk, as a seeder's folder would hold them.
fn put_on_disk(storage: &Storage, parts: &[Part]) {
    for (path, (_, content)) in storage.paths().iter().zip(parts) {
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, content).expect("write source file");
    }
}

fn have(bits: &Bitfield) -> Vec<u32> {
    bits.ones().collect()
}

#[test]
fn storage_is_shareable_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Storage>();
}

#[test]
fn a_single_file_torrent_lives_at_dir_slash_name_and_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let parts: Vec<Part> = vec![(vec![], data(3 * 16_384 + 1_000, 1))];
    let storage = Storage::new(&torrent("movie.bin", 16_384, &parts), dir.path()).expect("storage");
    assert_eq!(storage.paths(), [dir.path().join("movie.bin")]);
    assert_eq!((storage.num_pieces(), storage.piece_length(), storage.total_length()), (4, 16_384, 50_152));
    assert_eq!((storage.piece_size(2), storage.piece_size(3), storage.piece_size(4)), (16_384, 1_000, 0));

    let source = stream(&parts);
    write_all_pieces(&storage, &source, (0..4).rev());
    assert_reads_back(&storage, &source, 16_384);
    assert_reads_back(&storage, &source, 5_000);
    assert_eq!(fs::read(dir.path().join("movie.bin")).expect("file"), source);
}

#[test]
fn a_multi_file_torrent_lives_at_dir_slash_name_slash_path_and_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let parts: Vec<Part> = vec![
        (vec!["a.txt"], data(45, 1)),
        (vec!["empty"], vec![]),
        (vec!["sub", "deep", "b.bin"], data(100, 2)),
        (vec!["sub", "c"], data(1, 3)),
        (vec!["sub", "z-empty"], vec![]),
        (vec!["tail"], data(77, 4)),
    ];
    let storage = Storage::new(&torrent("top", 32, &parts), dir.path()).expect("storage");
    let root = dir.path().join("top");
    assert_eq!(storage.paths()[2], root.join("sub/deep/b.bin"));
    assert_eq!(storage.num_pieces(), 7);

    let source = stream(&parts);
    // Out of order, so files are created by whichever piece reaches them first.
    write_all_pieces(&storage, &source, [3, 6, 0, 5, 1, 4, 2].into_iter());
    for block in [1, 7, 32] {
        assert_reads_back(&storage, &source, block);
    }
    storage.create_empty_files().expect("empty files");
    for (path, (_, content)) in storage.paths().iter().zip(&parts) {
        assert_eq!(&fs::read(path).expect("file"), content, "{}", path.display());
    }
}

#[test]
fn a_piece_spans_three_files_across_a_zero_length_one_in_the_middle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let parts: Vec<Part> =
        vec![(vec!["a"], data(6, 1)), (vec!["mid"], vec![]), (vec!["b"], data(4, 2)), (vec!["c"], data(20, 3))];
    let storage = Storage::new(&torrent("t", 16, &parts), dir.path()).expect("storage");
    let source = stream(&parts);
    // Piece 0 = a[0..6] + b[0..4] + c[0..6].
    storage.write_piece(0, &source[..16]).expect("write piece 0");
    let mut block = Vec::new();
    storage.read_block(0, 4, 8, &mut block).expect("read across a, b and c");
    assert_eq!(block, &source[4..12]);
    assert_eq!(fs::read(dir.path().join("t/a")).expect("a"), parts[0].1);
    assert_eq!(fs::read(dir.path().join("t/b")).expect("b"), parts[2].1);
    assert_eq!(fs::metadata(dir.path().join("t/c")).expect("c").len(), 20, "created at full length");
    assert!(!dir.path().join("t/mid").exists(), "writing pieces never needs the empty file");

    storage.write_piece(1, &source[16..]).expect("write piece 1");
    storage.create_empty_files().expect("empty files");
    assert_eq!(fs::metadata(dir.path().join("t/mid")).expect("mid").len(), 0);
    assert_reads_back(&storage, &source, 3);
}

#[test]
fn check_finds_every_piece_of_complete_data_and_reports_progress() {
    let dir = tempfile::tempdir().expect("tempdir");
    let parts: Vec<Part> = vec![(vec!["x"], data(1000, 1)), (vec!["y", "z"], vec![]), (vec!["w"], data(333, 2))];
    let storage = Storage::new(&torrent("full", 64, &parts), dir.path()).expect("storage");
    put_on_disk(&storage, &parts);
    for threads in [0, 1, 3] {
        let reports = Mutex::new(Vec::new());
        let bits = storage.check(threads, |done| reports.lock().expect("reports").push(done));
        assert!(bits.is_complete(), "{threads} threads: {:?}", have(&bits));
        assert_eq!(bits.len(), 21);
        let reports = reports.into_inner().expect("reports");
        assert!(reports.is_sorted(), "rising: {reports:?}");
        assert_eq!(reports.last(), Some(&1333), "ends at the total");
    }
}

#[test]
fn check_progress_rises_to_the_total_over_many_batches_and_threads() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The hasher hands out 8 MiB batches: three of them, so several threads report.
    let parts: Vec<Part> = vec![(vec![], data(17 << 20, 5))];
    let storage = Storage::new(&torrent("big", 1 << 16, &parts), dir.path()).expect("storage");
    put_on_disk(&storage, &parts);
    let reports = Mutex::new(Vec::new());
    assert!(storage.check(3, |done| reports.lock().expect("reports").push(done)).is_complete());
    let reports = reports.into_inner().expect("reports");
    assert_eq!(reports.len(), 3);
    assert!(reports.is_sorted(), "rising: {reports:?}");
    assert_eq!(reports.last(), Some(&storage.total_length()));
}

#[test]
fn check_on_partial_data_finds_exactly_the_intact_pieces() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Pieces of 16: 0-1 in a, 2 across a and b, 3 in b, 4 in d, 5 across d and e, 6 in e.
    let parts: Vec<Part> = vec![
        (vec!["a"], data(40, 1)),
        (vec!["b"], data(24, 2)),
        (vec!["c"], vec![]),
        (vec!["d"], data(30, 3)),
        (vec!["e"], data(18, 4)),
    ];
    let storage = Storage::new(&torrent("part", 16, &parts), dir.path()).expect("storage");
    put_on_disk(&storage, &parts);
    let paths = storage.paths();
    let mut a = parts[0].1.clone();
    a[20] ^= 0xFF; // corrupts piece 1
    fs::write(&paths[0], a).expect("corrupt a");
    fs::remove_file(&paths[1]).expect("remove b"); // pieces 2 and 3
    fs::remove_file(&paths[2]).expect("remove the empty c"); // no piece
    fs::write(&paths[4], &parts[4].1[..10]).expect("truncate e"); // piece 6; piece 5 needs only e[..2]

    let bits = storage.check(2, |_| {});
    assert_eq!(have(&bits), [0, 4, 5]);
    assert_eq!(bits.len(), 7);
}

#[test]
fn check_on_a_missing_folder_finds_nothing_and_creates_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("not-yet");
    let parts: Vec<Part> = vec![(vec!["f"], data(100, 1))];
    let storage = Storage::new(&torrent("t", 16, &parts), &missing).expect("storage");
    let bits = storage.check(2, |_| {});
    assert_eq!((bits.len(), bits.count()), (7, 0));
    assert!(!missing.exists());
}

#[test]
fn writing_refuses_a_folder_that_is_a_link_out_of_dir() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (dir, outside) = (tmp.path().join("dir"), tmp.path().join("outside"));
    fs::create_dir_all(dir.join("top")).expect("mkdir");
    fs::create_dir(&outside).expect("mkdir");
    symlink(&outside, dir.join("top/sub")).expect("symlink");
    let parts: Vec<Part> = vec![(vec!["sub", "f"], data(10, 1))];
    let storage = Storage::new(&torrent("top", 16, &parts), &dir).expect("storage");

    let err = storage.write_piece(0, &parts[0].1).expect_err("refused");
    assert!(matches!(&err, StorageError::Symlink { path } if *path == dir.join("top/sub")), "{err}");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert_eq!(fs::read_dir(&outside).expect("outside").count(), 0, "nothing written outside dir");
    let mut out = Vec::new();
    assert!(matches!(storage.read_block(0, 0, 10, &mut out), Err(StorageError::Symlink { .. })));
    assert!(matches!(storage.create_empty_files(), Ok(())), "no empty file to create");

    // The torrent's own folder as a link is refused the same way.
    fs::remove_dir_all(dir.join("top")).expect("rm");
    symlink(&outside, dir.join("top")).expect("symlink");
    let err = storage.write_piece(0, &parts[0].1).expect_err("refused");
    assert!(matches!(&err, StorageError::Symlink { path } if *path == dir.join("top")), "{err}");
    assert_eq!(fs::read_dir(&outside).expect("outside").count(), 0);
}

#[test]
fn writing_and_reading_refuse_a_file_that_is_a_link() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (dir, victim) = (tmp.path().join("dir"), tmp.path().join("victim"));
    fs::create_dir(&dir).expect("mkdir");
    fs::write(&victim, b"precious").expect("victim");
    symlink(&victim, dir.join("name")).expect("symlink");
    let parts: Vec<Part> = vec![(vec![], data(20, 1))];
    let storage = Storage::new(&torrent("name", 16, &parts), &dir).expect("storage");

    let err = storage.write_piece(0, &parts[0].1[..16]).expect_err("refused");
    assert!(matches!(&err, StorageError::Symlink { path } if *path == dir.join("name")), "{err}");
    let mut out = b"kept".to_vec();
    let err = storage.read_block(0, 0, 8, &mut out).expect_err("refused");
    assert!(matches!(err, StorageError::Symlink { .. }), "{err}");
    assert_eq!(out, b"kept", "a failed read leaves the buffer as it was");
    assert_eq!(fs::read(&victim).expect("victim"), b"precious");
    assert_eq!(fs::metadata(&victim).expect("victim").len(), 8, "not extended either");
}

#[test]
fn check_does_not_claim_pieces_behind_a_link() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (dir, elsewhere) = (tmp.path().join("dir"), tmp.path().join("elsewhere"));
    let parts: Vec<Part> = vec![(vec!["real"], data(32, 1)), (vec!["linked"], data(32, 2))];
    let storage = Storage::new(&torrent("t", 16, &parts), &dir).expect("storage");
    put_on_disk(&storage, &parts);
    fs::write(&elsewhere, &parts[1].1).expect("write");
    let linked = &storage.paths()[1];
    fs::remove_file(linked).expect("rm");
    symlink(&elsewhere, linked).expect("symlink");
    assert_eq!(have(&storage.check(1, |_| {})), [0, 1], "uploads would refuse pieces 2 and 3");
}

#[test]
fn out_of_range_requests_are_errors_not_panics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let parts: Vec<Part> = vec![(vec![], data(40, 1))];
    let storage = Storage::new(&torrent("f", 16, &parts), dir.path()).expect("storage");
    let source = stream(&parts);
    write_all_pieces(&storage, &source, 0..3);
    let mut out = Vec::new();

    let err = storage.read_block(3, 0, 1, &mut out).expect_err("no piece 3");
    assert!(matches!(err, StorageError::PieceOutOfRange { index: 3, num_pieces: 3, .. }), "{err}");
    assert!(matches!(storage.read_block(u32::MAX, 0, 1, &mut out), Err(StorageError::PieceOutOfRange { .. })));
    let err = storage.read_block(2, 0, 9, &mut out).expect_err("last piece is 8 bytes");
    assert!(matches!(err, StorageError::BlockOutOfRange { piece_size: 8, .. }), "{err}");
    assert!(err.to_string().contains("do not fit in piece 2"), "{err}");
    for (offset, length) in [(u32::MAX, u32::MAX), (u32::MAX, 1), (1, u32::MAX), (17, 0)] {
        let result = storage.read_block(0, offset, length, &mut out);
        assert!(matches!(result, Err(StorageError::BlockOutOfRange { .. })), "{offset} {length}");
    }
    assert!(out.is_empty());
    storage.read_block(2, 8, 0, &mut out).expect("an empty block at the very end is in range");

    let err = storage.write_piece(3, &source[..8]).expect_err("no piece 3");
    assert!(matches!(err, StorageError::PieceOutOfRange { .. }), "{err}");
    let err = storage.write_piece(2, &source[..16]).expect_err("last piece is 8 bytes");
    assert!(matches!(err, StorageError::WrongPieceLength { expected: 8, got: 16, .. }), "{err}");
    assert!(!storage.piece_matches(3, &source[32..]));
    assert!(!storage.piece_matches(2, &source[24..]), "right bytes plus extra");
    assert!(!storage.piece_matches(0, &source[1..17]));
    assert!(storage.piece_matches(2, &source[32..]));
}

#[test]
fn reading_a_missing_or_short_file_names_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let parts: Vec<Part> = vec![(vec!["one"], data(16, 1)), (vec!["two"], data(16, 2))];
    let storage = Storage::new(&torrent("t", 16, &parts), dir.path()).expect("storage");
    let paths = storage.paths();
    let mut out = Vec::new();
    let err = storage.read_block(1, 0, 16, &mut out).expect_err("nothing on disk");
    assert!(
        matches!(&err, StorageError::Io { path, source, .. } if *path == paths[1] && source.kind() == ErrorKind::NotFound),
        "{err}"
    );
    assert!(err.to_string().contains(&*paths[1].to_string_lossy()), "{err}");

    put_on_disk(&storage, &parts);
    fs::write(&paths[1], b"short").expect("truncate");
    let err = storage.read_block(1, 0, 16, &mut out).expect_err("short");
    assert!(err.to_string().contains("shorter than the torrent's 16 bytes"), "{err}");
    assert!(out.is_empty());
}

#[test]
fn a_read_only_folder_can_be_seeded_and_refuses_writes_with_the_path() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("ro");
    let parts: Vec<Part> = vec![(vec!["f"], data(20, 1)), (vec!["e"], vec![])];
    let storage = Storage::new(&torrent("t", 16, &parts), &dir).expect("storage");
    put_on_disk(&storage, &parts);
    let top = dir.join("t");
    for path in storage.paths() {
        fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).expect("chmod file");
    }
    fs::set_permissions(&top, fs::Permissions::from_mode(0o555)).expect("chmod folder");

    assert!(storage.check(1, |_| {}).is_complete());
    assert_reads_back(&storage, &stream(&parts), 16);
    storage.create_empty_files().expect("the empty file exists already: nothing to write");

    // root ignores permission bits; the refusal is only observable for other users.
    let privileged = fs::write(top.join("probe"), b"").is_ok();
    if !privileged {
        let err = storage.write_piece(0, &stream(&parts)[..16]).expect_err("read-only");
        assert!(
            matches!(&err, StorageError::Io { path, source, .. }
                if *path == storage.paths()[0] && source.kind() == ErrorKind::PermissionDenied),
            "{err}"
        );
    }
    fs::set_permissions(&top, fs::Permissions::from_mode(0o755)).expect("restore for cleanup");
}

#[test]
fn a_file_opened_for_reading_is_reopened_for_writing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let parts: Vec<Part> = vec![(vec![], data(32, 1))];
    let storage = Storage::new(&torrent("f", 16, &parts), dir.path()).expect("storage");
    let source = stream(&parts);
    storage.write_piece(0, &source[..16]).expect("write");
    let reopened = Storage::new(&torrent("f", 16, &parts), dir.path()).expect("storage");
    let mut out = Vec::new();
    reopened.read_block(0, 0, 16, &mut out).expect("read opens read-only");
    reopened.write_piece(1, &source[16..]).expect("write upgrades the handle");
    out.clear();
    reopened.read_block(1, 0, 16, &mut out).expect("read through the writable handle");
    assert_eq!(out, &source[16..]);
}

#[test]
fn a_longer_file_is_cut_to_the_torrents_length_when_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let parts: Vec<Part> = vec![(vec![], data(20, 1))];
    let storage = Storage::new(&torrent("f", 16, &parts), dir.path()).expect("storage");
    fs::write(dir.path().join("f"), data(50, 9)).expect("old content");
    assert_eq!(storage.check(1, |_| {}).count(), 0);
    write_all_pieces(&storage, &stream(&parts), 0..2);
    assert_eq!(fs::read(dir.path().join("f")).expect("f"), parts[0].1);
}

#[test]
fn create_empty_files_makes_nested_ones_and_leaves_existing_files_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let parts: Vec<Part> = vec![
        (vec!["data"], data(5, 1)),
        (vec!["x", "y", "empty1"], vec![]),
        (vec!["empty2"], vec![]),
        (vec!["empty3"], vec![]),
    ];
    let storage = Storage::new(&torrent("t", 16, &parts), dir.path()).expect("storage");
    let paths = storage.paths();
    fs::create_dir_all(dir.path().join("t")).expect("mkdir");
    fs::write(&paths[2], b"user's bytes").expect("existing");
    storage.create_empty_files().expect("created");
    assert_eq!(fs::metadata(&paths[1]).expect("empty1").len(), 0);
    assert_eq!(fs::read(&paths[2]).expect("empty2"), b"user's bytes", "a seeder never rewrites");
    assert_eq!(fs::metadata(&paths[3]).expect("empty3").len(), 0);
    assert!(!paths[0].exists(), "only the empty files");
    storage.create_empty_files().expect("twice is fine");

    let outside = tempfile::tempdir().expect("tempdir");
    fs::remove_file(&paths[3]).expect("rm");
    symlink(outside.path().join("planted"), &paths[3]).expect("dangling symlink");
    let err = storage.create_empty_files().expect_err("link");
    assert!(matches!(&err, StorageError::Symlink { path } if *path == paths[3]), "{err}");
    assert!(!outside.path().join("planted").exists());
}

#[test]
fn many_files_round_trip_through_a_bounded_handle_cache() {
    let dir = tempfile::tempdir().expect("tempdir");
    let names: Vec<&'static str> =
        (0..MAX_OPEN_FILES * 2 + 7).map(|i| &*Box::leak(format!("f{i:04}").into_boxed_str())).collect();
    let parts: Vec<Part> = names.iter().enumerate().map(|(i, name)| (vec![*name], data(i % 5 + 1, i as u8))).collect();
    let storage = Storage::new(&torrent("many", 16, &parts), dir.path()).expect("storage");
    let source = stream(&parts);
    write_all_pieces(&storage, &source, 0..storage.num_pieces());
    assert_reads_back(&storage, &source, 16);
    let open = storage.lock().slots.iter().filter(|slot| slot.is_some()).count();
    assert!(open <= MAX_OPEN_FILES, "{open} files open");
    assert!(storage.check(2, |_| {}).is_complete());
}

#[test]
fn threads_writing_pieces_of_shared_files_at_once_give_the_right_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let parts: Vec<Part> = vec![(vec!["a"], data(1000, 1)), (vec!["b"], data(1, 2)), (vec!["c"], data(999, 3))];
    let storage = Arc::new(Storage::new(&torrent("t", 16, &parts), dir.path()).expect("storage"));
    let source = Arc::new(stream(&parts));
    let threads = 4;
    std::thread::scope(|scope| {
        for first in 0..threads {
            let (storage, source) = (Arc::clone(&storage), Arc::clone(&source));
            scope.spawn(move || {
                let order = (first..storage.num_pieces()).step_by(threads as usize);
                write_all_pieces(&storage, &source, order);
            });
        }
    });
    assert_reads_back(&storage, &source, 13);
    assert!(storage.check(2, |_| {}).is_complete());
}

#[test]
fn hand_built_torrents_that_would_leave_dir_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = torrent("t", 16, &[(vec!["f"], data(20, 1))]);
    for bad_name in ["..", "/etc", "a/b", ""] {
        let mut bad = good.clone();
        bad.info.name = bad_name.into();
        let err = Storage::new(&bad, dir.path()).expect_err("bad name");
        assert!(matches!(err, StorageError::Layout { .. }), "{bad_name:?}: {err}");
    }
    for bad_component in ["..", "/etc/passwd", "x\\y"] {
        let mut bad = good.clone();
        bad.info.files[0].path = vec!["ok".into(), bad_component.into()];
        assert!(matches!(Storage::new(&bad, dir.path()), Err(StorageError::Layout { .. })), "{bad_component:?}");
    }
    let mut bad = good.clone();
    bad.info.pieces = bad.info.pieces[..bad.info.pieces.len() - 1].into();
    assert!(matches!(Storage::new(&bad, dir.path()), Err(StorageError::Layout { .. })), "hash count");
    let mut bad = good;
    bad.info.files[0].length = u64::MAX;
    bad.info.files.push(bad.info.files[0].clone());
    assert!(matches!(Storage::new(&bad, dir.path()), Err(StorageError::Layout { .. })), "overflow");
    assert_eq!(fs::read_dir(dir.path()).expect("dir").count(), 0, "new touches nothing on disk");
}

#[test]
fn errors_name_the_path_in_their_message() {
    let err = StorageError::Io {
        path: Path::new("/d/t/f").to_path_buf(),
        action: "could not write",
        source: std::io::Error::from_raw_os_error(libc::ENOSPC),
    };
    let text = err.to_string();
    assert!(text.starts_with("/d/t/f: could not write: No space left on device"), "{text}");
}

/// Three files over 16-byte pieces: pieces 0 and 1 hold only `a` (bytes 0..40), 2 is shared by `a` and `b`
/// (40..88), 3 and 4 hold only `b`, 5 is shared by `b` and `c` (88..128), 6 and 7 hold only `c`.
fn three_files() -> Vec<Part> {
    vec![(vec!["a.bin"], data(40, 1)), (vec!["b.bin"], data(48, 2)), (vec!["c.bin"], data(40, 3))]
}

#[test]
fn a_skipped_file_is_never_created_and_its_share_of_boundary_pieces_goes_to_the_part_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let parts = three_files();
    let torrent = torrent("album", 16, &parts);
    let stream = stream(&parts);
    let storage = Storage::new(&torrent, dir.path()).expect("layout");
    let levels = storage.set_priorities(&[Normal, Skip, High]).expect("skip b");
    assert_eq!(levels, [2, 2, 2, 0, 0, 3, 3, 3], "b's own pieces are not wanted; a piece takes its highest file's");
    let wanted_pieces = wanted(&levels);
    write_all_pieces(&storage, &stream, wanted_pieces.iter().copied());
    let root = dir.path().join("album");
    assert!(!root.join("b.bin").exists(), "the skipped file was created");
    // Fast resume stamps where b's bytes are: the part file.
    let stamped = storage.stamped_paths();
    assert_eq!(stamped[1].as_deref(), Some(storage.part_path()));
    assert_eq!(stamped[0].as_deref(), Some(root.join("a.bin").as_path()));
    assert_eq!(fs::read(root.join("a.bin")).expect("a"), parts[0].1);
    assert_eq!(fs::read(root.join("c.bin")).expect("c"), parts[2].1);
    // The part file holds b's bytes of pieces 2 and 5, at their stream offsets, and nothing else of b.
    let part = fs::read(storage.part_path()).expect("the part file");
    assert_eq!(part.len(), 88, "up to the end of piece 5's share of b");
    assert_eq!(part[40..48], stream[40..48], "b's share of piece 2");
    assert_eq!(part[80..88], stream[80..88], "b's share of piece 5");
    assert!(part[..40].iter().chain(&part[48..80]).all(|&byte| byte == 0), "nothing else was written there");
    // Pieces shared with b read back whole, from both places.
    let mut out = Vec::new();
    for index in [2, 5] {
        out.clear();
        storage.read_block(index, 0, 16, &mut out).expect("read a boundary piece");
        assert_eq!(out, stream[index as usize * 16..index as usize * 16 + 16]);
    }
    // A fresh start with the same choice checks the wanted pieces, reading b's share from the part file.
    let again = Storage::new(&torrent, dir.path()).expect("layout");
    assert_eq!(again.set_priorities(&[Normal, Skip, High]).expect("skip b"), levels);
    let have = again.check(1, |_| {});
    assert_eq!(have.ones().collect::<Vec<_>>(), wanted_pieces);
    let priorities: Vec<Priority> = again.file_progress(&have).iter().map(|file| file.priority).collect();
    assert_eq!(priorities, [Normal, Skip, High]);

    // Wanted again: its bytes move out of the part file into it, and every piece of it is wanted.
    let all = again.set_priorities(&[Normal, Low, Normal]).expect("want b");
    assert_eq!(all, [2, 2, 2, 1, 1, 2, 2, 2]);
    let b = fs::read(root.join("b.bin")).expect("b exists now");
    assert_eq!(b.len(), 48);
    assert_eq!((b[..8].to_vec(), b[40..].to_vec()), (stream[40..48].to_vec(), stream[80..88].to_vec()));
    write_all_pieces(&again, &stream, [3, 4].into_iter());
    assert_eq!(fs::read(root.join("b.bin")).expect("b"), parts[1].1);
    assert_eq!(again.check(1, |_| {}).count(), 8, "every piece reads back from the files alone");
    assert_eq!(again.stamped_paths()[1].as_deref(), Some(root.join("b.bin").as_path()), "b is read from b now");
}

#[test]
fn a_file_on_disk_that_is_skipped_keeps_its_bytes_where_they_are() {
    let dir = tempfile::tempdir().expect("tempdir");
    let parts = three_files();
    let torrent = torrent("album", 16, &parts);
    let stream = stream(&parts);
    let storage = Storage::new(&torrent, dir.path()).expect("layout");
    write_all_pieces(&storage, &stream, 0..8);
    assert!(storage.set_priorities(&[Normal, Skip, Normal]).is_ok());
    // Nothing moved: b is read where it is, and no part file is made.
    assert_eq!(storage.check(1, |_| {}).count(), 8);
    assert!(!storage.part_path().exists());
    assert_eq!(fs::read(dir.path().join("album/b.bin")).expect("b"), parts[1].1);
    assert!(storage.set_priorities(&[Skip]).is_ok(), "a list of another length changes nothing");
    assert_eq!(storage.file_progress(&Bitfield::new(8))[0].priority, Normal);
}

#[test]
fn the_sessions_budget_of_open_files_holds_across_torrents_oldest_closed_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let budget = super::SessionFiles::new(2);
    let storages: Vec<Storage> = (0..3u8)
        .map(|n| {
            let parts: Vec<Part> = vec![(vec![], data(32, n))];
            let torrent = torrent(&format!("t{n}.bin"), 16, &parts);
            let storage = Storage::new(&torrent, dir.path()).expect("layout").with_open_files(budget.clone());
            write_all_pieces(&storage, &stream(&parts), 0..2);
            storage
        })
        .collect();
    let open = |storage: &Storage| storage.lock().slots.iter().filter(|slot| slot.is_some()).count();
    assert_eq!(storages.iter().map(open).collect::<Vec<_>>(), [0, 1, 1], "the first torrent's file was closed");
    // Read again, it opens again, and the oldest other one makes way; the data is whole either way.
    let mut out = Vec::new();
    storages[0].read_block(0, 0, 16, &mut out).expect("read");
    assert_eq!(out, data(32, 0)[..16]);
    assert_eq!(storages.iter().map(open).collect::<Vec<_>>(), [1, 0, 1]);
}

/// A simulated torrent's bytes: made from the seed and the offset, read as such, and a piece matches only when it
/// is exactly them; nothing is written anywhere, and the start-up check finds nothing.
#[test]
fn synthetic_bytes_are_read_as_made_and_only_they_match() {
    let torrent = torrent("made-up", 32 * 1024, &[(vec![], data(100_000, 3))]);
    let storage = Storage::synthetic(&torrent, 42).expect("a synthetic layout");
    assert!(storage.is_synthetic());
    let mut piece = Vec::new();
    for offset in (0..32 * 1024).step_by(16 * 1024) {
        storage.read_block(1, offset, 16 * 1024, &mut piece).expect("made-up bytes are read");
    }
    let mut expected = vec![0u8; 32 * 1024];
    super::synthetic_content(42, 32 * 1024, &mut expected);
    assert_eq!(piece, expected);
    assert!(storage.piece_matches(1, &piece));
    assert!(!storage.piece_matches(0, &piece), "piece 1's bytes are not piece 0's");
    let mut liar = piece.clone();
    liar[20_000] ^= 1;
    assert!(!storage.piece_matches(1, &liar), "one flipped bit is caught");
    let other = Storage::synthetic(&torrent, 43).expect("a synthetic layout");
    assert!(!other.piece_matches(1, &piece), "another seed, other bytes");
    // The short last piece, from an offset that is no multiple of 8 within a block.
    let mut last = Vec::new();
    storage.read_block(3, 3, 100_000 - 3 * 32 * 1024 - 3, &mut last).expect("the rest of the last piece");
    let mut tail = vec![0u8; last.len()];
    super::synthetic_content(42, 3 * 32 * 1024 + 3, &mut tail);
    assert_eq!(last, tail);
    storage.write_piece(1, &piece).expect("a write of made-up bytes goes nowhere");
    assert!(!Path::new("synthetic").exists(), "nothing is written");
    assert_eq!(storage.check(1, |_| {}).count(), 0);

    // A liar checks pieces as anyone does, and sends other bytes, every one of them wrong.
    let lying = Storage::synthetic_liar(&torrent, 42).expect("a liar's layout");
    assert!(lying.piece_matches(1, &piece), "what it takes in checks out");
    let mut sent = Vec::new();
    for offset in (0..32 * 1024).step_by(16 * 1024) {
        lying.read_block(1, offset, 16 * 1024, &mut sent).expect("its made-up bytes are read");
    }
    assert!(!storage.piece_matches(1, &sent), "what it sends does not");
    assert!(sent.iter().zip(&piece).all(|(sent, right)| sent != right), "not one byte right");
}
