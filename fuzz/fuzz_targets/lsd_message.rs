//! Local service discovery announces (BEP 14) from the local network: any datagram is read or refused, never a
//! panic; what is read keeps the caps, and whatever can be written back reads back the same. The same bytes go
//! through a torrent's filter, as the discovery task hands them over.
#![no_main]

use std::net::SocketAddr;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use peer::lsd::GROUP_V4;
use peer::lsd::message::{Announce, MAX_ANNOUNCE_LEN, MAX_DATAGRAM_LEN, MAX_INFO_HASHES};
use peer::lsd::neighbours::Neighbours;

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let mut neighbours = Neighbours::with_cookie([1; 20], "1".into(), None, now);
    let from = SocketAddr::from(([10, 0, 0, 2], 6771));
    if let Ok(peer) = neighbours.receive(data, from, now) {
        assert_eq!(peer.ip(), from.ip());
    }
    let Ok(announce) = Announce::parse(data) else { return };
    assert!(data.len() <= MAX_DATAGRAM_LEN);
    assert!(announce.port != 0);
    assert!((1..=MAX_INFO_HASHES).contains(&announce.info_hashes.len()));
    if let Ok(bytes) = announce.encode(GROUP_V4.into()) {
        assert!(bytes.len() <= MAX_ANNOUNCE_LEN);
        assert_eq!(Announce::parse(&bytes), Ok(announce), "written back, read again");
    }
});
