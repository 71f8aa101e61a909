//! Fuzz target: parsing a .torrent never panics, and whatever parses keeps the hash of its raw span.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sha1::{Digest, Sha1};

fuzz_target!(|data: &[u8]| {
    let Ok(torrent) = metainfo::Torrent::from_bytes(data) else { return };
    let span = metainfo::bencode::scan(data).expect("parsed, so it scans").info_span.expect("parsed, so info exists");
    assert_eq!(torrent.info_hash.0, <[u8; 20]>::from(Sha1::digest(&data[span])));
    assert_eq!(torrent.info.piece_count() as u64, torrent.info.total_length().div_ceil(torrent.info.piece_length));
    for index in 0..torrent.info.files.len() {
        let path = torrent.info.relative_path(index).expect("index in range");
        assert!(path.components().all(|part| matches!(part, std::path::Component::Normal(_))), "{path:?}");
    }
});
