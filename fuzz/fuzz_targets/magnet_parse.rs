//! Magnet links from outside: any text is read or refused with an error, never a panic, and what is read stays
//! within the caps.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(magnet) = metainfo::parse_magnet(text) {
        assert!(magnet.trackers.len() <= metainfo::MAX_MAGNET_ENTRIES);
        assert!(magnet.peers.len() <= metainfo::MAX_MAGNET_ENTRIES);
    }
});
