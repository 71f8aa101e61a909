//! Magnet links from outside: any text is read or refused with an error, never a panic, and what is read stays
//! within the caps. A link with only a v2 hash (`btmh`) names its swarm by that hash truncated to 20 bytes; a link
//! with a v1 hash keeps it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(magnet) = metainfo::parse_magnet(text) {
        assert!(magnet.trackers.len() <= metainfo::MAX_MAGNET_ENTRIES);
        assert!(magnet.peers.len() <= metainfo::MAX_MAGNET_ENTRIES);
        match (magnet.info_hash_v1(), magnet.info_hash_v2) {
            (Some(v1), _) => assert_eq!(v1, magnet.info_hash),
            (None, Some(v2)) => assert_eq!(v2.truncated(), magnet.info_hash),
            (None, None) => panic!("a magnet link was read without any info-hash: {text:?}"),
        }
    }
});
