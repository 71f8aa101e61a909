//! Fuzz target: BEP 15 response parsing (the client side) must never panic for either peer
//! address family, and whatever parses must write back to bytes that parse to the same response.

#![no_main]

use std::fmt::Debug;
use std::net::{SocketAddrV4, SocketAddrV6};

use tracker_protocol::{CompactPeer, Response};

fn check<A: CompactPeer + Debug + PartialEq>(data: &[u8]) {
    match Response::<A>::parse(data) {
        Ok(response) => {
            let mut bytes = Vec::new();
            response.write(&mut bytes);
            let again = Response::<A>::parse(&bytes).expect("a written response parses");
            assert_eq!(again, response);
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check::<SocketAddrV4>(data);
    check::<SocketAddrV6>(data);
});
