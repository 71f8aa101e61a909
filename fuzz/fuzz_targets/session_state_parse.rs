//! A session's torrent state file (`peer::session_state`): any bytes are read or refused with a named error, never
//! a panic, and what reads encodes back to a file that reads the same.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(state) = peer::session_state::TorrentState::decode(data) {
        let again = peer::session_state::TorrentState::decode(&state.encode()).expect("our own encoding reads back");
        assert_eq!(again, state);
    }
});
