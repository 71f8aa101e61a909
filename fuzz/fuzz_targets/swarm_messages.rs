//! The peer's message handling: a swarm fed any sequence of messages from make-believe peers (see
//! `peer::fuzzing`), its invariants checked after every step. The first byte picks a leecher or a super-seeder.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((first, script)) = data.split_first() else { return };
    peer::fuzzing::Harness::new(first & 1 == 1).run(script);
});
