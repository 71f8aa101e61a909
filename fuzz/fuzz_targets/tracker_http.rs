//! The tracker's HTTP front end, request-target in, reply out, with no socket: any bytes after `/announce?` or
//! `/scrape?` must give a bencoded body with status 200, `/metrics` a whole exposition, any other target 200 or
//! 404, and nothing may panic. Announces that parse are recorded, so later inputs meet a registry with peers.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use tracker::server::{Config, Tracker};

fuzz_target!(|data: &[u8]| {
    let mut tracker = Tracker::with_key(Config::default(), Vec::new(), true, [7; 16], 7);
    // Each line is one request: a selector byte (path and client family), then the query bytes.
    for (n, line) in data.split(|&byte| byte == b'\n').enumerate() {
        let Some((&selector, query)) = line.split_first() else { continue };
        let path: &[u8] = match selector % 4 {
            0 => b"/announce?",
            1 => b"/scrape?",
            2 => b"/metrics?",
            _ => b"/",
        };
        let mut target = path.to_vec();
        target.extend_from_slice(query);
        let client = if selector & 0x10 == 0 {
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, selector))
        } else {
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(selector)))
        };
        let reply = tracker.handle_http(&target, client, n as u32);
        match selector % 4 {
            0 | 1 => {
                assert_eq!(reply.status, 200);
                assert!(bencode::decode_exact(&reply.body).is_ok(), "not bencode: {:?}", reply.body);
            }
            2 => assert!(reply.body.ends_with(b"# EOF\n"), "metrics cut short"),
            _ => assert!(reply.status == 200 || reply.status == 404, "status {}", reply.status),
        }
    }
});
