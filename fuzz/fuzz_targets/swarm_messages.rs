//! The peer's message handling: a swarm fed any sequence of messages from make-believe peers (see
//! `peer::fuzzing`), its invariants checked after every step. The first byte picks a leecher or a super-seeder
//! (bit 0), and a v1 or a v2 torrent (bit 1: failed pieces then ask for block hashes, which the script answers).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((first, script)) = data.split_first() else { return };
    let seeding = first & 1 == 1;
    let mut harness =
        if first & 2 == 2 { peer::fuzzing::Harness::v2(seeding) } else { peer::fuzzing::Harness::new(seeding) };
    harness.run(script);
});
