//! Tests of reading v2 and hybrid torrents: what is accepted, and every way a tree or layer is refused.

use crate::Torrent;
use crate::merkle;

fn bstr(bytes: &[u8]) -> Vec<u8> {
    let mut out = format!("{}:", bytes.len()).into_bytes();
    out.extend_from_slice(bytes);
    out
}

fn file_node(length: u64, root: Option<&[u8]>) -> Vec<u8> {
    let mut out = b"d0:d6:lengthi".to_vec();
    out.extend_from_slice(format!("{length}e").as_bytes());
    if let Some(root) = root {
        out.extend_from_slice(b"11:pieces root");
        out.extend(bstr(root));
    }
    out.extend_from_slice(b"ee");
    out
}

/// A v2-only torrent with `tree` as its file tree and `layers` as its piece layers (raw dictionary bodies).
fn torrent(tree: &[u8], layers: &[u8], piece_length: u64, meta_version: i64) -> Vec<u8> {
    let mut out = b"d4:infod9:file tree".to_vec();
    out.extend_from_slice(tree);
    out.extend_from_slice(
        format!("12:meta versioni{meta_version}e4:name3:top12:piece lengthi{piece_length}e").as_bytes(),
    );
    out.extend_from_slice(b"e12:piece layersd");
    out.extend_from_slice(layers);
    out.extend_from_slice(b"ee");
    out
}

fn dict(entries: &[(&[u8], Vec<u8>)]) -> Vec<u8> {
    let mut out = b"d".to_vec();
    for (key, value) in entries {
        out.extend(bstr(key));
        out.extend_from_slice(value);
    }
    out.push(b'e');
    out
}

fn refused(bytes: &[u8], needle: &str) {
    let err = Torrent::from_bytes_any(bytes).expect_err("must be refused");
    assert!(err.to_string().contains(needle), "{err} (wanted {needle:?})");
}

#[test]
fn a_valid_two_file_tree_with_a_layer_parses() {
    let data = vec![5u8; 40_000];
    let hashes = merkle::hash_bytes(&data, 16_384);
    let root = hashes.root.expect("root");
    let small = merkle::hash_bytes(b"hi", 16_384).root.expect("root");
    let tree = dict(&[
        (b"big", file_node(40_000, Some(&root))),
        (b"dir", dict(&[(b"small", file_node(2, Some(&small))), (b"zero", file_node(0, None))])),
    ]);
    let layers = [bstr(&root), bstr(&hashes.piece_layer.concat())].concat();
    let parsed = Torrent::from_bytes_any(&torrent(&tree, &layers, 16_384, 2)).expect("valid");
    let v2 = parsed.v2.as_ref().expect("v2");
    let paths: Vec<String> = v2.files.iter().map(|file| file.path.join("/")).collect();
    assert_eq!(paths, ["big", "dir/small", "dir/zero"]);
    assert_eq!(v2.files[0].piece_layer, hashes.piece_layer);
    assert_eq!(parsed.info.files.len(), 3);
    assert!(!parsed.info.is_single_file());
    assert_eq!(parsed.info.total_length(), 40_002);

    // A flipped layer byte, a missing layer, a short layer.
    let mut bad_layer = hashes.piece_layer.concat();
    bad_layer[0] ^= 1;
    refused(&torrent(&tree, &[bstr(&root), bstr(&bad_layer)].concat(), 16_384, 2), "does not hash up");
    refused(&torrent(&tree, b"", 16_384, 2), "missing");
    refused(&torrent(&tree, &[bstr(&root), bstr(&bad_layer[..64])].concat(), 16_384, 2), "need 3 hashes");
    // The same tree with a piece length that makes every file one piece needs no layer at all.
    let whole = merkle::hash_bytes(&data, 65_536).root.expect("root");
    let tree64 = dict(&[(b"big", file_node(40_000, Some(&whole)))]);
    assert!(Torrent::from_bytes_any(&torrent(&tree64, b"", 65_536, 2)).is_ok());
}

#[test]
fn bad_trees_are_refused_naming_what_is_wrong() {
    let root = [7u8; 32];
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (dict(&[(b"..", file_node(1, Some(&root)))]), "`.` or `..`"),
        (dict(&[(b"a/b", file_node(1, Some(&root)))]), "separator"),
        (dict(&[(b"a", dict(&[(b"..", file_node(1, Some(&root)))]))]), "`.` or `..`"),
        (dict(&[(b"a", file_node(1, None))]), "no `pieces root`"),
        (dict(&[(b"a", file_node(0, Some(&root)))]), "empty file with a `pieces root`"),
        (dict(&[(b"a", file_node(1, Some(&root[..31])))]), "not 32 bytes"),
        (dict(&[(b"a", b"d0:d6:lengthi-1eee".to_vec())]), "negative length"),
        (dict(&[(b"a", b"de".to_vec())]), "empty folder"),
        (dict(&[(b"a", b"i1e".to_vec())]), "not a dictionary"),
        (
            dict(&[(b"a", dict(&[(b"", file_node(1, Some(&root))), (b"x", file_node(1, Some(&root)))]))]),
            "both a file and a folder",
        ),
        (b"de".to_vec(), "is empty"),
        (dict(&[(b"z", file_node(0, None))]), "total length is 0"),
    ];
    for (tree, needle) in cases {
        refused(&torrent(&tree, b"", 16_384, 2), needle);
    }
    let tree = dict(&[(b"a", file_node(1, Some(&root)))]);
    refused(&torrent(&tree, b"", 16_384, 3), "meta version");
    refused(&torrent(&tree, b"", 8_192, 2), "below 16 KiB");
}

#[test]
fn deep_trees_are_refused_without_recursion_trouble() {
    let mut tree = file_node(1, Some(&[1u8; 32]));
    for _ in 0..70 {
        tree = dict(&[(b"d", tree)]);
    }
    // The bencode scan stops at 64 levels of any kind, before the tree walk's own limit.
    assert!(Torrent::from_bytes_any(&torrent(&tree, b"", 16_384, 2)).is_err());
}

// Room for real torrents (the largest have some 100,000 files), bounded for hostile ones.
const _: () = assert!(super::MAX_TREE_NODES >= 100_000 && super::MAX_TREE_DEPTH == 64);

#[test]
fn a_single_file_tree_named_as_the_torrent_is_a_single_file_torrent() {
    let root = merkle::hash_bytes(b"abc", 16_384).root.expect("root");
    let tree = dict(&[(b"top", file_node(3, Some(&root)))]);
    let parsed = Torrent::from_bytes_any(&torrent(&tree, b"", 16_384, 2)).expect("valid");
    assert!(parsed.info.is_single_file());
    assert_eq!(parsed.info.relative_path(0), Some("top".into()));
    assert!(Torrent::from_bytes(&torrent(&tree, b"", 16_384, 2)).is_err(), "v2-only is refused by the v1 reader");
}

#[test]
fn a_hybrid_whose_parts_disagree_is_refused() {
    let data = b"abc";
    let root = merkle::hash_bytes(data, 16_384).root.expect("root");
    let tree = dict(&[(b"a", file_node(3, Some(&root))), (b"b", file_node(3, Some(&root)))]);
    let piece = |extra: &[u8]| {
        let mut stream = data.to_vec();
        stream.resize(16_384, 0);
        stream.extend_from_slice(extra);
        stream
            .chunks(16_384)
            .flat_map(|piece| <[u8; 20]>::from(<sha1::Sha1 as sha1::Digest>::digest(piece)))
            .collect::<Vec<u8>>()
    };
    let make = |files: &[u8], pieces: &[u8]| {
        let mut out = b"d4:infod9:file tree".to_vec();
        out.extend_from_slice(&tree);
        out.extend_from_slice(b"5:files");
        out.extend_from_slice(files);
        out.extend_from_slice(b"12:meta versioni2e4:name3:top12:piece lengthi16384e6:pieces");
        out.extend(bstr(pieces));
        out.extend_from_slice(b"e12:piece layersdee");
        out
    };
    let padded = b"ld6:lengthi3e4:pathl1:aeed4:attr1:p6:lengthi16381e4:pathl4:.pad5:16381eed6:lengthi3e4:pathl1:beee";
    let parsed = Torrent::from_bytes(&make(padded, &piece(data))).expect("a valid hybrid");
    assert!(parsed.has_v1() && parsed.v2.is_some());
    assert_eq!(parsed.info.files.iter().filter(|file| file.pad).count(), 1);
    // No pad: b starts inside the first piece.
    let unpadded = b"ld6:lengthi3e4:pathl1:aeed6:lengthi3e4:pathl1:beee";
    refused(&make(unpadded, &piece(b"")[..20]), "piece boundary");
    // A different file in v1.
    let renamed = b"ld6:lengthi3e4:pathl1:aeed4:attr1:p6:lengthi16381e4:pathl4:.pad5:16381eed6:lengthi3e4:pathl1:ceee";
    refused(&make(renamed, &piece(data)), "disagree");
}

/// A folder torrent of `version` at 16 KiB pieces: two files of several pieces (so two piece layers) and a small one.
fn made(version: crate::MetaVersion) -> (tempfile::TempDir, crate::Torrent) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("top");
    for (name, len, seed) in [("a.bin", 70_000usize, 1u8), ("b.bin", 50_000, 2), ("c.txt", 10, 3)] {
        let bytes: Vec<u8> = (0..len).map(|i| ((i * 31) ^ (i >> 10)) as u8 ^ seed).collect();
        std::fs::create_dir_all(&root).expect("mkdir");
        std::fs::write(root.join(name), bytes).expect("write");
    }
    let options =
        crate::CreateOptions { piece_length: Some(16_384), threads: 1, meta_version: version, ..Default::default() };
    let created = crate::create(&crate::collect_files(&root).expect("listed"), &options, &|_| {}).expect("created");
    (dir, created.torrent)
}

/// Every long file's layer of `torrent`, keyed by root, less the one of the file named `without`.
fn layers_without(
    torrent: &crate::Torrent,
    without: &str,
) -> std::collections::BTreeMap<merkle::Hash32, Vec<merkle::Hash32>> {
    let v2 = torrent.v2.as_ref().expect("v2");
    v2.files
        .iter()
        .filter(|file| !file.piece_layer.is_empty() && file.path.join("/") != without)
        .map(|file| (file.pieces_root.expect("root"), file.piece_layer.clone()))
        .collect()
}

fn with_layers(
    torrent: &crate::Torrent,
    layers: &std::collections::BTreeMap<merkle::Hash32, Vec<merkle::Hash32>>,
) -> Vec<u8> {
    crate::torrent_file_with_layers(&torrent.info_bytes, &["udp://127.0.0.1:9/announce".to_owned()], layers)
}

#[test]
fn a_hybrid_without_a_files_layer_parses_with_that_layer_empty_and_the_same_hashes() {
    let (_dir, whole) = made(crate::MetaVersion::Hybrid);
    let full = layers_without(&whole, "");
    assert_eq!(full.len(), 2, "two files of several pieces");
    for removed in [vec!["a.bin"], vec!["a.bin", "b.bin"]] {
        let mut layers = full.clone();
        let v2 = whole.v2.as_ref().expect("v2");
        for name in &removed {
            let file = v2.files.iter().find(|file| file.path.join("/") == *name).expect("the file");
            layers.remove(&file.pieces_root.expect("root"));
        }
        let parsed = Torrent::from_bytes_any(&with_layers(&whole, &layers)).expect("a hybrid needs no layer");
        assert_eq!(parsed.info_hash, whole.info_hash, "the v1 info-hash is the info dictionary's");
        assert_eq!(parsed.info_hash_v2(), whole.info_hash_v2());
        assert!(parsed.has_v1());
        assert_eq!(parsed.info.pieces, whole.info.pieces);
        let files = &parsed.v2.as_ref().expect("v2").files;
        for (file, original) in files.iter().zip(&v2.files) {
            let name = file.path.join("/");
            if removed.contains(&name.as_str()) {
                assert!(file.piece_layer.is_empty(), "{name}: no layer");
            } else {
                assert_eq!(file.piece_layer, original.piece_layer, "{name}: the layer that is there is kept");
            }
            assert_eq!(file.pieces_root, original.pieces_root);
        }
        // The v1 reader takes it too.
        assert!(Torrent::from_bytes(&with_layers(&whole, &layers)).is_ok());
    }
}

#[test]
fn a_v2_only_torrent_without_a_files_layer_is_still_refused() {
    let (_dir, whole) = made(crate::MetaVersion::V2);
    assert!(Torrent::from_bytes_any(&with_layers(&whole, &layers_without(&whole, ""))).is_ok());
    let bytes = with_layers(&whole, &layers_without(&whole, "b.bin"));
    let err = Torrent::from_bytes_any(&bytes).expect_err("a v2-only torrent needs every layer");
    let text = err.to_string();
    assert!(text.contains("piece layers") && text.contains("b.bin") && text.contains("missing"), "{text}");
    refused(&with_layers(&whole, &Default::default()), "piece layers");
}

#[test]
fn a_hybrids_layer_that_is_there_is_still_checked() {
    let (_dir, whole) = made(crate::MetaVersion::Hybrid);
    let full = layers_without(&whole, "");
    let a_root = whole.v2.as_ref().expect("v2").files[0].pieces_root.expect("root");
    // One hash too few, one too many, one flipped bit: each refused, naming the layer.
    let mut short = full.clone();
    short.get_mut(&a_root).expect("a's layer").pop();
    refused(&with_layers(&whole, &short), "need 5 hashes");
    let mut long = full.clone();
    long.get_mut(&a_root).expect("a's layer").push([0; 32]);
    refused(&with_layers(&whole, &long), "need 5 hashes");
    let mut flipped = full.clone();
    flipped.get_mut(&a_root).expect("a's layer")[2][7] ^= 1;
    let err = Torrent::from_bytes_any(&with_layers(&whole, &flipped)).expect_err("a wrong layer");
    let text = err.to_string();
    assert!(text.contains("piece layers of a.bin") && text.contains("does not hash up"), "{text}");
    // The other file's layer alone, wrong: refused even though a's is missing (and would be allowed to be).
    let mut only_b = full.clone();
    only_b.remove(&a_root);
    for layer in only_b.values_mut() {
        layer.swap(0, 1);
    }
    refused(&with_layers(&whole, &only_b), "does not hash up");
}
