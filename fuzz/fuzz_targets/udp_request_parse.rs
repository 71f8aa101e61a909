//! Fuzz target: BEP 15 request parsing (the tracker's hot path) must never panic, and whatever
//! parses must write back to bytes that parse to the same request.

#![no_main]

use tracker_protocol::{Request, RequestParseError};

/// aquatic's default scrape limit; a second parse with 0 exercises the refusal path.
const MAX_SCRAPE: usize = 70;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = Request::parse(data, 0);
    match Request::parse(data, MAX_SCRAPE) {
        Ok(request) => {
            let mut bytes = Vec::new();
            request.write(&mut bytes);
            let again = Request::parse(&bytes, MAX_SCRAPE).expect("a written request parses");
            assert_eq!(again, request);
            if let Request::Announce(announce) = request {
                // The BEP 41 reader is lenient by design; it must also never panic.
                let _ = announce.options.url_data().count();
            }
        }
        Err(error) => {
            // Exercise the accessors and formatting the server uses on errors.
            let _ = error.kind().reply_message();
            let _ = error.to_string();
            if let RequestParseError::Unsendable(_) = error {
                assert!(error.reply_ids().is_none());
            }
        }
    }
});
