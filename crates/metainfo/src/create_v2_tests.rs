//! Tests of v2-only and hybrid creation: tree order, pad files, roots and layers against the in-memory merkle
//! code, v1 pieces of a hybrid against a plain SHA-1 of the padded stream.

use std::fs;
use std::path::Path;

use sha1::{Digest, Sha1};

use super::MetaVersion;
use crate::create::{CreateOptions, Created, collect_files, create, create_from_path};
use crate::merkle;

fn options(version: MetaVersion, piece_length: u64, threads: usize) -> CreateOptions {
    CreateOptions { piece_length: Some(piece_length), threads, meta_version: version, ..Default::default() }
}

fn body(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed) ^ (i >> 11) as u8).collect()
}

/// A folder with an empty file, a file and a folder that sort differently by whole path and by tree
/// (`foo.txt` / `foo/bar`), two identical files, and sizes around block and piece boundaries.
fn folder(root: &Path) -> Vec<(&'static str, Vec<u8>)> {
    let files = vec![
        ("a.bin", body(40_000, 1)),
        ("empty", Vec::new()),
        ("foo.txt", body(16_385, 2)),
        ("foo/bar", body(100, 3)),
        ("same1", body(70_000, 4)),
        ("same2", body(70_000, 4)),
        ("sub/deep/z", body(131_072, 5)),
    ];
    for (path, bytes) in &files {
        let path = root.join(path);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, bytes).expect("write");
    }
    files
}

fn make(input: &Path, options: &CreateOptions) -> Created {
    let created = create(&collect_files(input).expect("listed"), options, &|_| {}).expect("created");
    let parsed = crate::Torrent::from_bytes_any(&created.bytes).expect("our own output parses");
    assert_eq!(parsed, created.torrent);
    created
}

#[test]
fn a_v2_folder_lists_files_in_tree_order_with_roots_and_layers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("top");
    let files = folder(&root);
    for piece_length in [16_384u64, 32_768, 65_536] {
        let created = make(&root, &options(MetaVersion::V2, piece_length, 2));
        let torrent = &created.torrent;
        assert!(!torrent.has_v1());
        let v2 = torrent.v2.as_ref().expect("v2");
        let paths: Vec<String> = v2.files.iter().map(|file| file.path.join("/")).collect();
        assert_eq!(paths, ["a.bin", "empty", "foo/bar", "foo.txt", "same1", "same2", "sub/deep/z"]);
        assert_eq!(torrent.info_hash, v2.info_hash.truncated());
        for file in &v2.files {
            let (_, bytes) = files.iter().find(|(path, _)| *path == file.path.join("/")).expect("known");
            let expected = merkle::hash_bytes(bytes, piece_length);
            assert_eq!(file.pieces_root, expected.root, "{:?}", file.path);
            assert_eq!(file.piece_layer, expected.piece_layer, "{:?}", file.path);
        }
        let text = String::from_utf8_lossy(&created.bytes);
        assert!(text.contains("12:meta versioni2e") && text.contains("12:piece layersd"));
        assert!(!text.contains("6:pieces"), "a v2-only torrent has no v1 pieces");
        assert!(crate::Torrent::from_bytes(&created.bytes).is_err(), "v1 readers refuse v2-only torrents");
    }
}

#[test]
fn a_hybrid_pads_every_file_to_a_piece_and_its_v1_pieces_cover_the_padded_stream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("top");
    let files = folder(&root);
    for piece_length in [16_384u64, 65_536] {
        for threads in [1, 3] {
            let created = make(&root, &options(MetaVersion::Hybrid, piece_length, threads));
            let info = &created.torrent.info;
            let mut stream = Vec::new();
            let order = ["a.bin", "empty", "foo/bar", "foo.txt", "same1", "same2", "sub/deep/z"];
            let mut expected_files = Vec::new();
            for name in order {
                let (_, bytes) = files.iter().find(|(path, _)| *path == name).expect("known");
                stream.extend_from_slice(bytes);
                expected_files.push((name.to_owned(), bytes.len() as u64, false));
                let rest = bytes.len() as u64 % piece_length;
                if rest != 0 {
                    let pad = piece_length - rest;
                    stream.resize(stream.len() + pad as usize, 0);
                    expected_files.push((format!(".pad/{pad}"), pad, true));
                }
            }
            let got: Vec<(String, u64, bool)> =
                info.files.iter().map(|file| (file.path.join("/"), file.length, file.pad)).collect();
            assert_eq!(got, expected_files);
            let pieces: Vec<[u8; 20]> =
                stream.chunks(piece_length as usize).map(|piece| Sha1::digest(piece).into()).collect();
            assert_eq!(*info.pieces, *pieces, "piece {piece_length}, {threads} threads");
            assert!(created.torrent.v2.is_some() && created.torrent.has_v1());
        }
    }
}

#[test]
fn a_large_hybrid_hashes_runs_of_sixteen_pieces_as_one_at_a_time_would() {
    // Files large enough to be mapped, with runs of sixteen whole pieces (the SHA-1 lanes, where the CPU takes
    // them) and a last piece cut short and padded: the v1 pieces are the SHA-1 of the padded stream and the v2
    // layers those of each file alone.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("big");
    let parts = [("a.bin", body(40 * 32_768 + 1000, 3)), ("b.bin", body(17 * 32_768, 4))];
    for (name, bytes) in &parts {
        fs::create_dir_all(&root).expect("mkdir");
        fs::write(root.join(name), bytes).expect("write");
    }
    for (piece_length, threads) in [(32_768u64, 1), (32_768, 2), (65_536, 2)] {
        let created = make(&root, &options(MetaVersion::Hybrid, piece_length, threads));
        let mut stream = Vec::new();
        for (_, bytes) in &parts {
            stream.extend_from_slice(bytes);
            let rest = bytes.len() as u64 % piece_length;
            if rest != 0 {
                stream.resize(stream.len() + (piece_length - rest) as usize, 0);
            }
        }
        let pieces: Vec<[u8; 20]> =
            stream.chunks(piece_length as usize).map(|piece| Sha1::digest(piece).into()).collect();
        assert_eq!(*created.torrent.info.pieces, *pieces, "piece {piece_length}, {threads} threads");
        let v2 = created.torrent.v2.as_ref().expect("v2");
        for ((_, bytes), file) in parts.iter().zip(&v2.files) {
            let reference = merkle::hash_bytes(bytes, piece_length);
            assert_eq!((file.pieces_root, &file.piece_layer), (reference.root, &reference.piece_layer));
        }
    }
}

#[test]
fn identical_files_share_one_piece_layer_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("top");
    folder(&root);
    let created = make(&root, &options(MetaVersion::V2, 16_384, 2));
    let layers = ::bencode::decode_exact(&created.bytes).expect("bencode");
    let entries = layers.get(b"piece layers").and_then(|value| value.as_dict()).expect("piece layers");
    // a.bin, same1 = same2, sub/deep/z: longer than one piece; foo.txt (16,385 bytes) too.
    assert_eq!(entries.len(), 4);
}

#[test]
fn a_single_file_hybrid_has_no_pad_and_the_same_hashes_either_way_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("one.bin");
    fs::write(&file, body(50_000, 9)).expect("write");
    let by_tree = make(&file, &options(MetaVersion::Hybrid, 16_384, 2));
    let by_path = create_from_path(&file, &options(MetaVersion::Hybrid, 16_384, 2), &|_| {}).expect("created");
    assert_eq!(by_tree.bytes, by_path.bytes);
    let torrent = &by_tree.torrent;
    assert!(torrent.info.is_single_file());
    assert_eq!(torrent.info.files.len(), 1);
    assert_eq!(torrent.info.pieces.len(), 4);
    let v2 = torrent.v2.as_ref().expect("v2");
    assert!(v2.files[0].path.is_empty());
    let text = String::from_utf8_lossy(&by_tree.bytes);
    assert!(text.contains("9:file treed7:one.bind0:d6:lengthi50000e11:pieces root32:"), "{text}");
}

#[test]
fn a_folder_made_from_its_path_matches_the_listing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("top");
    folder(&root);
    for version in [MetaVersion::V2, MetaVersion::Hybrid] {
        let listed = make(&root, &options(version, 32_768, 2));
        let walked = create_from_path(&root, &options(version, 32_768, 2), &|_| {}).expect("created");
        assert_eq!(listed.bytes, walked.bytes);
    }
}

#[test]
fn a_file_that_shrinks_while_hashing_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("f");
    fs::write(&file, body(40_000, 1)).expect("write");
    let mut tree = collect_files(&file).expect("listed");
    tree.files[0].1.length = 50_000;
    let err = create(&tree, &options(MetaVersion::V2, 16_384, 2), &|_| {}).expect_err("short");
    assert!(err.to_string().contains("shorter than its listed 50000 bytes"), "{err}");
    // Short by less than a page: the bytes past its end read as zeros through a map, so the size is checked too.
    tree.files[0].1.length = 40_500;
    for version in [MetaVersion::V2, MetaVersion::Hybrid] {
        let err = create(&tree, &options(version, 16_384, 2), &|_| {}).expect_err("short");
        assert!(err.to_string().contains("shorter than its listed 40500 bytes"), "{err}");
    }
}
