//! Fuzz target: parsing v1, v2 and hybrid torrents (`Torrent::from_bytes_any`) never panics; whatever parses as v2
//! keeps the SHA-256 of its raw info span, every path stays below the torrent's folder, and every file longer than
//! one piece has exactly one piece-layer hash per piece.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

fuzz_target!(|data: &[u8]| {
    let Ok(torrent) = metainfo::Torrent::from_bytes_any(data) else { return };
    let Some(v2) = &torrent.v2 else { return };
    let span = metainfo::bencode::scan(data).expect("parsed, so it scans").info_span.expect("parsed, so info exists");
    assert_eq!(v2.info_hash.0, <[u8; 32]>::from(Sha256::digest(&data[span])));
    for file in &v2.files {
        assert!(file.path.iter().all(|part| !part.is_empty() && part != ".." && part != "." && !part.contains('/')));
        assert_eq!(file.pieces_root.is_none(), file.length == 0, "{file:?}");
        if file.length > torrent.info.piece_length {
            assert_eq!(file.piece_layer.len() as u64, file.length.div_ceil(torrent.info.piece_length));
        }
    }
});
