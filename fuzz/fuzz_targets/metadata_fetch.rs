//! A magnet link's metadata fetch: any sequence of actions from sixteen hostile peers (sizes of their choosing,
//! garbage, unasked data, rejects, stalls, departures, time passing) beside one honest peer (see
//! `peer::metadata_harness`). Memory and attempts stay bounded after every step, and once the hostile peers fall
//! silent the honest peer completes the fetch within the timeouts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|script: &[u8]| {
    peer::metadata_harness::MetadataHarness::new().run(script);
});
