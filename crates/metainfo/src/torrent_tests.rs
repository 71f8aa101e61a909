//! Tests of parsing and validation; documents are written out as raw bencode so that key order,
//! unknown keys and odd integers reach the parser exactly as a hostile or sloppy creator would write them.

use proptest::prelude::*;
use sha1::{Digest, Sha1};

use super::Torrent;
use crate::error::MetainfoError;

fn pieces(count: usize) -> String {
    format!("{}:{}", count * 20, "x".repeat(count * 20))
}

/// A torrent with the given raw info dict body (without the surrounding `d`/`e`).
fn with_info(info_body: &str) -> Vec<u8> {
    let url = "udp://127.0.0.1:6969/announce";
    format!("d8:announce{}:{url}4:infod{info_body}ee", url.len()).into_bytes()
}

fn single(length: u64, piece_length: u64) -> Vec<u8> {
    let count = length.div_ceil(piece_length) as usize;
    with_info(&format!("6:lengthi{length}e4:name5:a.txt12:piece lengthi{piece_length}e6:pieces{}", pieces(count)))
}

fn field_error(bytes: &[u8]) -> (String, String) {
    match Torrent::from_bytes(bytes) {
        Err(MetainfoError::Invalid { field, reason }) => (field, reason),
        other => panic!("expected a field error, got {other:?}"),
    }
}

fn raw_info_hash(doc: &[u8], info: &str) -> [u8; 20] {
    let text = String::from_utf8_lossy(doc);
    assert!(text.contains(info), "test document must contain its info dict verbatim");
    Sha1::digest(info.as_bytes()).into()
}

#[test]
fn parses_a_single_file_torrent() {
    let bytes = single(40_000, 16_384);
    let torrent = Torrent::from_bytes(&bytes).expect("valid");
    assert_eq!(torrent.announce.as_deref(), Some("udp://127.0.0.1:6969/announce"));
    assert!(torrent.info.is_single_file());
    assert_eq!(torrent.info.name, "a.txt");
    assert_eq!(torrent.info.total_length(), 40_000);
    assert_eq!(torrent.info.piece_count(), 3);
    assert_eq!(torrent.info.piece_size(0), Some(16_384));
    assert_eq!(torrent.info.piece_size(2), Some(40_000 - 2 * 16_384));
    assert_eq!(torrent.info.piece_size(3), None);
    assert_eq!(torrent.info.relative_path(0), Some("a.txt".into()));
    assert_eq!(torrent.trackers(), ["udp://127.0.0.1:6969/announce"]);
}

#[test]
fn parses_a_multi_file_torrent_with_every_optional_key() {
    let info = format!(
        "d5:filesld6:lengthi3e4:pathl1:a5:b.txteed6:lengthi0e4:pathl5:emptyeed6:lengthi5e4:pathl1:ceee\
         4:name3:dir12:piece lengthi16384e6:pieces{}7:privatei1e6:source4:TESTe",
        pieces(1)
    );
    let doc = format!(
        "d8:announce5:udp:a13:announce-listll5:udp:a5:udp:bel5:udp:cee7:comment2:hi10:created by2:me\
         13:creation datei1700000000e4:info{info}8:url-list11:http://seede"
    );
    let torrent = Torrent::from_bytes(doc.as_bytes()).expect("valid");
    assert!(!torrent.info.is_single_file());
    assert_eq!(torrent.info.files.len(), 3);
    assert_eq!(torrent.info.files[0].path, ["a", "b.txt"]);
    assert_eq!(torrent.info.relative_path(0), Some(["dir", "a", "b.txt"].iter().collect()));
    assert_eq!(torrent.info.total_length(), 8);
    assert!(torrent.info.private);
    assert_eq!(torrent.info.source.as_deref(), Some("TEST"));
    assert_eq!(torrent.comment.as_deref(), Some("hi"));
    assert_eq!(torrent.created_by.as_deref(), Some("me"));
    assert_eq!(torrent.creation_date, Some(1_700_000_000));
    assert_eq!(torrent.url_list, ["http://seed"]);
    assert_eq!(torrent.announce_list, [vec!["udp:a", "udp:b"], vec!["udp:c"]]);
    assert_eq!(torrent.trackers(), ["udp:a", "udp:b", "udp:c"]);
    assert_eq!(torrent.info_hash.0, raw_info_hash(doc.as_bytes(), &info));
}

#[test]
fn info_hash_covers_the_raw_bytes_even_when_not_canonical() {
    // Keys out of order, an unknown key, and an integer with a leading zero: re-encoding would change
    // every one of them, so the hash must come from the bytes as written.
    let info = format!("d4:name1:a6:lengthi05e12:piece lengthi16384e9:x-unknownl1:ze6:pieces{}e", pieces(1));
    let doc = format!("d4:info{info}8:announce3:urle");
    let torrent = Torrent::from_bytes(doc.as_bytes()).expect("valid");
    assert_eq!(torrent.info.total_length(), 5);
    assert_eq!(torrent.info_hash.0, raw_info_hash(doc.as_bytes(), &info));
}

#[test]
fn piece_table_must_match_the_length() {
    let bad_multiple = with_info(&format!("6:lengthi5e4:name1:a12:piece lengthi16384e6:pieces19:{}", "x".repeat(19)));
    let (field, reason) = field_error(&bad_multiple);
    assert_eq!(field, "info.pieces");
    assert!(reason.contains("not a multiple of 20"), "{reason}");

    let wrong_count = with_info(&format!("6:lengthi40000e4:name1:a12:piece lengthi16384e6:pieces{}", pieces(2)));
    let (field, reason) = field_error(&wrong_count);
    assert_eq!(field, "info.pieces");
    assert!(reason.contains("holds 2 hashes") && reason.contains("need 3"), "{reason}");
}

#[test]
fn piece_length_must_be_a_positive_power_of_two() {
    for bad in ["0", "-16384", "16383", "3", "1073741824"] {
        let doc = with_info(&format!("6:lengthi5e4:name1:a12:piece lengthi{bad}e6:pieces{}", pieces(1)));
        let (field, _) = field_error(&doc);
        assert_eq!(field, "info.piece length", "piece length {bad}");
    }
}

#[test]
fn lengths_must_be_sane() {
    let negative = with_info(&format!("6:lengthi-5e4:name1:a12:piece lengthi16384e6:pieces{}", pieces(1)));
    assert_eq!(field_error(&negative).0, "info.length");
    let empty = with_info("6:lengthi0e4:name1:a12:piece lengthi16384e6:pieces0:");
    assert_eq!(field_error(&empty), ("info".into(), "total length is 0".into()));
    let both = with_info(&format!(
        "5:filesld6:lengthi1e4:pathl1:beee6:lengthi1e4:name1:a12:piece lengthi16384e6:pieces{}",
        pieces(1)
    ));
    assert!(field_error(&both).1.contains("both"));
    let neither = with_info(&format!("4:name1:a12:piece lengthi16384e6:pieces{}", pieces(1)));
    assert!(field_error(&neither).1.contains("neither"));
}

fn multi(paths: &[&str]) -> Vec<u8> {
    let files: String = paths.iter().map(|path| format!("d6:lengthi1e4:pathl{path}ee")).collect();
    with_info(&format!("5:filesl{files}e4:name3:dir12:piece lengthi16384e6:pieces{}", pieces(1)))
}

#[test]
fn paths_that_could_escape_the_download_folder_are_refused() {
    for (path, why) in [
        ("2:..", "`.` or `..`"),
        ("1:.", "`.` or `..`"),
        ("0:", "empty"),
        ("4:/etc", "separator"),
        ("3:a/b", "separator"),
        ("5:..\\..", "separator"),
        ("1:a2:..", "`.` or `..`"),
        ("3:a\0b", "control character"),
    ] {
        let (field, reason) = field_error(&multi(&[path]));
        assert_eq!(field, "info.files[0].path", "{path}");
        assert!(reason.contains(why), "{path}: {reason}");
    }
    let (field, reason) = field_error(&multi(&["1:a", "1:b", "1:a"]));
    assert_eq!(field, "info.files[2].path");
    assert!(reason.contains("duplicates"), "{reason}");
    let (_, reason) = field_error(&multi(&["1:a", "1:a1:b"]));
    assert!(reason.contains("both a file and a folder"), "{reason}");
    let no_components =
        with_info(&format!("5:filesld6:lengthi1e4:pathleee4:name3:dir12:piece lengthi16384e6:pieces{}", pieces(1)));
    assert_eq!(field_error(&no_components), ("info.files[0].path".into(), "is empty".into()));

    for name in ["2:..", "4:/etc", "0:"] {
        let doc = with_info(&format!("6:lengthi1e4:name{name}12:piece lengthi16384e6:pieces{}", pieces(1)));
        assert_eq!(field_error(&doc).0, "info.name", "{name}");
    }
}

#[test]
fn missing_keys_and_wrong_types_name_the_field() {
    let no_info = b"d8:announce3:urle";
    assert_eq!(field_error(no_info).0, "info");
    let no_name = with_info(&format!("6:lengthi1e12:piece lengthi16384e6:pieces{}", pieces(1)));
    let (field, reason) = field_error(&no_name);
    assert_eq!(field, "info");
    assert!(reason.contains("name"), "{reason}");
    let name_is_int = with_info(&format!("6:lengthi1e4:namei7e12:piece lengthi16384e6:pieces{}", pieces(1)));
    assert_eq!(field_error(&name_is_int).0, "info.name");
    let length_is_string = with_info(&format!("6:length1:14:name1:a12:piece lengthi16384e6:pieces{}", pieces(1)));
    assert_eq!(field_error(&length_is_string).0, "info.length");
    let bad_path_type =
        with_info(&format!("5:filesld6:lengthi1e4:pathli3eeee4:name1:a12:piece lengthi16384e6:pieces{}", pieces(1)));
    assert_eq!(field_error(&bad_path_type).0, "info.files[0].path[0]");
    let non_utf8_name =
        [&b"d4:infod6:lengthi1e4:name2:\xff\xfe12:piece lengthi16384e6:pieces20:"[..], &[b'x'; 20], b"ee"].concat();
    assert_eq!(field_error(&non_utf8_name), ("info.name".into(), "is not valid UTF-8".into()));
}

#[test]
fn hostile_bencode_is_an_error_not_a_crash() {
    let mut bomb = b"d4:info".to_vec();
    bomb.extend(std::iter::repeat_n(b'l', 200_000));
    assert!(matches!(Torrent::from_bytes(&bomb), Err(MetainfoError::Bencode(_))));
    assert!(matches!(Torrent::from_bytes(b"d4:info99999999999:e"), Err(MetainfoError::Bencode(_))));
    assert!(matches!(Torrent::from_bytes(b"garbage"), Err(MetainfoError::Bencode(_))));
    let valid = single(100, 16_384);
    for cut in 0..valid.len() {
        assert!(Torrent::from_bytes(&valid[..cut]).is_err(), "truncated at {cut}");
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Torrent::from_bytes(&bytes);
    }

    #[test]
    fn mutated_torrents_never_panic(position in 0usize..200, byte in any::<u8>()) {
        let mut doc = single(50_000, 16_384);
        let at = position % doc.len();
        doc[at] = byte;
        let _ = Torrent::from_bytes(&doc);
    }
}

#[test]
fn a_torrent_written_back_as_a_file_reads_as_the_same_torrent() {
    let info = format!(
        "d5:filesld6:lengthi3e4:pathl1:a5:b.txteed6:lengthi5e4:pathl1:ceee4:name3:dir12:piece lengthi16384e\
         6:pieces{}7:privatei1e6:source4:TESTe",
        pieces(1)
    );
    let doc = format!(
        "d8:announce5:udp:a13:announce-listll5:udp:a5:udp:bel5:udp:cee7:comment2:hi10:created by2:me\
         13:creation datei1700000000e4:info{info}5:nodesll9:127.0.0.1i6881eee8:url-listl11:http://seedee"
    );
    let torrent = Torrent::from_bytes(doc.as_bytes()).expect("valid");
    let file = torrent.to_file();
    assert_eq!(file, doc.as_bytes(), "a canonical file is written back byte for byte");
    // Keys out of order and one we do not keep: the same torrent all the same, the info bytes untouched.
    let sloppy = format!("d4:info{info}7:x-other1:z8:announce5:udp:ae");
    let torrent = Torrent::from_bytes(sloppy.as_bytes()).expect("valid");
    let again = Torrent::from_bytes(&torrent.to_file()).expect("reads back");
    assert_eq!(again, torrent);
    assert_eq!(again.info_hash.0, raw_info_hash(sloppy.as_bytes(), &info));
}

#[test]
fn a_v2_torrent_written_back_keeps_its_piece_layers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("layers.bin");
    std::fs::write(&data, (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>()).expect("write");
    for version in [crate::MetaVersion::V2, crate::MetaVersion::Hybrid] {
        let options = crate::CreateOptions {
            piece_length: Some(16_384),
            meta_version: version,
            ..crate::CreateOptions::default()
        };
        let created = crate::create_from_path(&data, &options, &|_| {}).expect("create");
        let torrent = Torrent::from_bytes_any(&created.bytes).expect("parse");
        assert!(torrent.v2.as_ref().is_some_and(|v2| !v2.files[0].piece_layer.is_empty()), "a layer to keep");
        let again = Torrent::from_bytes_any(&torrent.to_file()).expect("reads back");
        assert_eq!(again, torrent, "{version:?}");
    }
}

#[test]
fn the_piece_hashes_are_read_in_place_in_the_info_bytes_not_copied() {
    // A file name that reads like the `pieces` key comes first in the bytes, and is passed over.
    let count = 3;
    let hashes: String = (0..count * 20).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    let body = format!(
        "5:filesld6:lengthi40000e4:pathl11:6:pieces60:eed6:lengthi2000e4:pathl1:beee4:name3:dir12:piece lengthi16384e6:pieces60:{hashes}"
    );
    let torrent = Torrent::from_bytes(&with_info(&body)).expect("a valid torrent");
    let table = &torrent.info.pieces;
    assert_eq!(table.len(), count);
    assert_eq!(table.as_flattened(), hashes.as_bytes());
    let info = torrent.info_bytes.as_ptr_range();
    assert!(info.contains(&table.as_flattened().as_ptr()), "the hashes are a copy, not the info bytes' own");
    // Made from a list, the table is its own.
    let made = super::V1Hashes::from(vec![[7u8; 20], [9u8; 20]]);
    assert_eq!(&*made, &[[7u8; 20], [9u8; 20]]);
}
