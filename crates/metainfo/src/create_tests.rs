//! Tests of file collection, piece-length choice and the bytes written.

use std::fs;
use std::path::Path;

use sha1::{Digest, Sha1};

use super::{CreateOptions, auto_piece_length, collect_files, create};
use crate::error::CreateError;

/// Makes a torrent and checks that the model returned is exactly what parsing the bytes gives.
fn make(tree: &Path, options: &CreateOptions) -> Result<super::Created, CreateError> {
    let created = create(&collect_files(tree)?, options, &|_| {})?;
    let parsed = crate::Torrent::from_bytes(&created.bytes).expect("our own output parses");
    assert_eq!(parsed, created.torrent, "the model made must equal the model parsed");
    Ok(created)
}

fn announce(url: &str) -> CreateOptions {
    CreateOptions { announce_tiers: vec![vec![url.to_owned()]], piece_length: Some(16_384), ..Default::default() }
}

#[test]
fn a_single_file_gives_exactly_the_canonical_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("hello");
    fs::write(&file, b"hello").expect("write");
    let created = make(&file, &announce("udp://x")).expect("created");
    let mut expected = b"d8:announce7:udp://x4:infod6:lengthi5e4:name5:hello12:piece lengthi16384e6:pieces20:".to_vec();
    expected.extend_from_slice(&Sha1::digest(b"hello"));
    expected.extend_from_slice(b"ee");
    assert_eq!(created.bytes, expected);
    assert_eq!(created.torrent.info.name, "hello");
}

#[test]
fn files_are_ordered_by_their_whole_path_and_hidden_and_empty_ones_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("top");
    for (path, body) in [
        ("foo/bar", &b"1"[..]),
        ("foo.txt", b"22"),
        (".hidden", b"333"),
        ("empty", b""),
        ("Z/ünï", b"4444"),
        ("a/b/c/d.bin", b"55555"),
    ] {
        let full = root.join(path);
        fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        fs::write(full, body).expect("write");
    }
    let tree = collect_files(&root).expect("collected");
    let order: Vec<String> = tree.files.iter().map(|(path, _)| path.join("/")).collect();
    assert_eq!(order, [".hidden", "Z/ünï", "a/b/c/d.bin", "empty", "foo.txt", "foo/bar"]);
    assert_eq!(tree.name, "top");
    assert!(!tree.single_file);
    assert_eq!(tree.total_length(), 15);

    let created = make(&root, &announce("udp://x")).expect("created");
    let stream = b"333444455555221";
    assert_eq!(*created.torrent.info.pieces, [<[u8; 20]>::from(Sha1::digest(stream))]);
    assert_eq!(created.torrent.info.files[3].length, 0);
}

#[test]
fn symbolic_links_are_followed_and_loops_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outside = dir.path().join("outside.txt");
    fs::write(&outside, b"linked").expect("write");
    let root = dir.path().join("root");
    fs::create_dir(&root).expect("mkdir");
    std::os::unix::fs::symlink(&outside, root.join("link.txt")).expect("symlink");
    let tree = collect_files(&root).expect("collected");
    assert_eq!(tree.files.len(), 1);
    assert_eq!(tree.total_length(), 6);

    std::os::unix::fs::symlink(&root, root.join("loop")).expect("symlink");
    let err = collect_files(&root).expect_err("loop");
    assert!(err.to_string().contains("symbolic link loop"), "{err}");

    let broken = dir.path().join("broken");
    fs::create_dir(&broken).expect("mkdir");
    std::os::unix::fs::symlink(dir.path().join("nowhere"), broken.join("dangling")).expect("symlink");
    let err = collect_files(&broken).expect_err("broken link");
    assert!(err.to_string().contains("dangling"), "{err}");
}

#[test]
fn empty_inputs_and_bad_options_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty_dir = dir.path().join("nothing");
    fs::create_dir(&empty_dir).expect("mkdir");
    assert!(matches!(collect_files(&empty_dir), Err(CreateError::Empty { .. })));

    let zero = dir.path().join("zero");
    fs::write(&zero, b"").expect("write");
    assert!(matches!(make(&zero, &announce("u")), Err(CreateError::Empty { .. })));

    let missing = collect_files(&dir.path().join("missing")).expect_err("missing");
    assert!(missing.to_string().contains("missing"), "{missing}");

    let data = dir.path().join("data");
    fs::write(&data, b"abc").expect("write");
    for bad in [0, 1000, 8192, 1 << 29] {
        let options = CreateOptions { piece_length: Some(bad), ..announce("u") };
        assert!(matches!(make(&data, &options), Err(CreateError::BadPieceLength(_))), "{bad}");
    }
    let options = CreateOptions { name: Some("../evil".into()), ..announce("u") };
    assert!(matches!(make(&data, &options), Err(CreateError::BadName { .. })));
}

#[test]
fn options_land_in_the_right_dictionaries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data.bin");
    fs::write(&data, vec![7u8; 40_000]).expect("write");
    let options = CreateOptions {
        announce_tiers: vec![vec!["udp://a".into(), "udp://b".into()], vec!["udp://c".into()]],
        comment: Some("a comment".into()),
        created_by: Some("tester".into()),
        creation_date: Some(1_234),
        name: Some("renamed.bin".into()),
        piece_length: Some(1 << 15),
        private: true,
        source: Some("SRC".into()),
        web_seeds: vec!["http://w1/".into(), "http://w2/".into()],
        nodes: vec![("127.0.0.1".into(), 6881)],
        threads: 2,
        meta_version: crate::MetaVersion::V1,
    };
    let created = make(&data, &options).expect("created");
    let torrent = &created.torrent;
    assert_eq!(torrent.announce.as_deref(), Some("udp://a"));
    assert_eq!(torrent.announce_list, [vec!["udp://a", "udp://b"], vec!["udp://c"]]);
    assert_eq!(torrent.comment.as_deref(), Some("a comment"));
    assert_eq!(torrent.created_by.as_deref(), Some("tester"));
    assert_eq!(torrent.creation_date, Some(1_234));
    assert_eq!(torrent.url_list, ["http://w1/", "http://w2/"]);
    assert_eq!(torrent.nodes, [("127.0.0.1".to_owned(), 6881)]);
    assert_eq!(torrent.info.name, "renamed.bin");
    assert!(torrent.info.private);
    assert_eq!(torrent.info.source.as_deref(), Some("SRC"));
    assert_eq!(torrent.info.piece_count(), 2);

    let one_url = make(&data, &announce("udp://only")).expect("created");
    assert!(one_url.torrent.announce_list.is_empty(), "one URL writes no announce-list");
    assert!(!String::from_utf8_lossy(&one_url.bytes).contains("announce-list"));
}

#[test]
fn auto_piece_length_follows_mktorrents_table() {
    const MIB: u64 = 1 << 20;
    assert_eq!(auto_piece_length(1), 1 << 15);
    assert_eq!(auto_piece_length(50 * MIB), 1 << 15);
    assert_eq!(auto_piece_length(50 * MIB + 1), 1 << 16);
    assert_eq!(auto_piece_length(2048 * MIB), 1 << 21);
    assert_eq!(auto_piece_length(12_800 * MIB), 1 << 23);
    assert_eq!(auto_piece_length(12_800 * MIB + 1), 1 << 24);
    assert_eq!(auto_piece_length(u64::MAX), 1 << 24);
}

/// Writes `count` files of `size(i)` bytes under `root`, spread over nested folders.
fn write_tree(root: &Path, count: usize, size: impl Fn(usize) -> usize) {
    for i in 0..count {
        let folder = root.join(format!("d{}", i % 7)).join(format!("s{}", i % 3));
        fs::create_dir_all(&folder).expect("mkdir");
        let body: Vec<u8> = (0..size(i)).map(|b| (b * 31 + i) as u8).collect();
        fs::write(folder.join(format!("f{i:04}")), body).expect("write");
    }
}

/// More files than the walk may hold open (256), many of them inside one batch, some empty: hashing
/// during the walk must give the bytes of listing first and hashing after.
#[test]
fn hashing_during_the_walk_gives_the_same_torrent_as_listing_first() {
    use std::sync::atomic::{AtomicU64, Ordering};

    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("many");
    write_tree(&root, 900, |i| if i % 50 == 0 { 0 } else { (i * 977) % 70_000 });
    std::os::unix::fs::symlink(root.join("d1/s1/f0001"), root.join("link")).expect("symlink");
    for piece_length in [16_384, 1 << 20] {
        let options = CreateOptions { piece_length: Some(piece_length), threads: 2, ..announce("udp://x") };
        let listed_first = make(&root, &options).expect("created");
        let (found, hashed) = (AtomicU64::new(0), AtomicU64::new(0));
        let streamed = super::create_from_path(&root, &options, &|progress| {
            let (counter, bytes) = match progress {
                super::Progress::Found(bytes) => (&found, bytes),
                super::Progress::Hashed(bytes) => (&hashed, bytes),
            };
            counter.fetch_add(bytes, Ordering::Relaxed);
        })
        .expect("created while walking");
        assert_eq!(streamed.bytes, listed_first.bytes, "piece length {piece_length}");
        let total = listed_first.torrent.info.total_length();
        assert_eq!((found.into_inner(), hashed.into_inner()), (total, total));
    }
}

#[test]
fn a_walk_that_fails_while_hashers_run_reports_the_failure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("broken");
    write_tree(&root, 300, |i| 40_000 + i);
    // Sorted last, after about 12 MB the hashers are already working on.
    std::os::unix::fs::symlink(dir.path().join("nowhere"), root.join("zz-dangling")).expect("symlink");
    let options = CreateOptions { piece_length: Some(16_384), threads: 2, ..announce("udp://x") };
    let err = super::create_from_path(&root, &options, &|_| {}).expect_err("broken link");
    assert!(err.to_string().contains("zz-dangling") && err.to_string().contains("broken symbolic link"), "{err}");

    let empty = dir.path().join("only-empty-files");
    write_tree(&empty, 5, |_| 0);
    let err = super::create_from_path(&empty, &options, &|_| {}).expect_err("nothing to share");
    assert!(matches!(err, CreateError::Empty { .. }), "{err}");
}
