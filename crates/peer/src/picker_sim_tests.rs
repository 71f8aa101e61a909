//! Property test: a swarm of simulated peers with random bitfields, random delivery order, chokes, timeouts,
//! reconnects and hash failures always completes the download, and the picker's bookkeeping never drifts.

use std::collections::{BTreeMap, BTreeSet};

use peer_wire::{BLOCK_LEN, Bitfield};
use proptest::prelude::{ProptestConfig, prop_assert, prop_assert_eq, proptest};
use proptest::test_runner::TestCaseError;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::tests::check;
use super::{Block, PeerKey, Picker, Received};

/// The swarm: each peer's pieces, and the requests it has not answered yet (as the caller would track them).
struct SimulatedSwarm {
    picker: Picker,
    peers: Vec<Bitfield>,
    in_flight: Vec<(PeerKey, Block)>,
    /// New copies received per block since its piece last (re)started.
    copies: BTreeMap<Block, u32>,
    /// Peers that delivered New blocks of each piece since it last (re)started.
    senders: BTreeMap<u32, BTreeSet<PeerKey>>,
    /// Blocks that were asked from two peers at once: the only ones that may draw a CANCEL.
    duplicated: BTreeSet<Block>,
    failures: u32,
}

fn key(i: usize) -> PeerKey {
    PeerKey(i as u64)
}

impl SimulatedSwarm {
    fn pick(&mut self, rng: &mut SmallRng) -> Result<(), TestCaseError> {
        let i = rng.random_range(0..self.peers.len());
        let mut out = Vec::new();
        let max = rng.random_range(1..8);
        let n = self.picker.pick(key(i), &self.peers[i], max, rng, &mut out);
        prop_assert!(n == out.len() && n <= max);
        for block in out {
            prop_assert!(self.peers[i].has(block.piece), "asked a peer for a piece it lacks");
            prop_assert!(!self.picker.have(block.piece));
            prop_assert!(!self.in_flight.contains(&(key(i), block)), "asked one peer twice for {block:?}");
            if self.in_flight.iter().any(|&(_, b)| b == block) {
                prop_assert!(self.picker.in_endgame(), "duplicate request outside endgame");
                self.duplicated.insert(block);
            }
            self.in_flight.push((key(i), block));
        }
        Ok(())
    }

    fn deliver(&mut self, rng: &mut SmallRng) -> Result<(), TestCaseError> {
        if self.in_flight.is_empty() {
            return Ok(());
        }
        let (peer, block) = self.in_flight.swap_remove(rng.random_range(0..self.in_flight.len()));
        let Received::New { cancel, piece_complete } = self.picker.block_received(peer, block) else {
            // Cancelled requests are dropped below, so every delivery here answers a live request.
            return Err(TestCaseError::fail(format!("{block:?} from {peer:?} not counted as new")));
        };
        let copies = self.copies.entry(block).or_default();
        *copies += 1;
        prop_assert_eq!(*copies, 1, "block received twice");
        prop_assert!(cancel.is_empty() || self.duplicated.contains(&block));
        for q in cancel {
            let at = self.in_flight.iter().position(|&r| r == (q, block));
            prop_assert!(at.is_some(), "cancel for a request that was not outstanding");
            self.in_flight.swap_remove(at.unwrap_or_default());
        }
        self.senders.entry(block.piece).or_default().insert(peer);
        if piece_complete {
            let index = block.piece;
            let blocks = self.copies.range(piece_range(index)).count() as u32;
            prop_assert_eq!(blocks, self.picker.block_count(index), "complete before every block arrived");
            if self.failures < 4 && rng.random_ratio(1, 8) {
                self.failures += 1;
                let expected: Vec<PeerKey> = self.senders.remove(&index).unwrap_or_default().into_iter().collect();
                prop_assert_eq!(self.picker.piece_failed(index), expected);
                self.copies.retain(|b, _| b.piece != index);
                self.duplicated.retain(|b| b.piece != index);
            } else {
                prop_assert!(self.picker.piece_verified(index));
            }
        }
        Ok(())
    }

    /// Choke, time out or reconnect: the picker must hand back exactly what the caller thinks is outstanding.
    fn disrupt(&mut self, rng: &mut SmallRng) -> Result<(), TestCaseError> {
        let i = rng.random_range(0..self.peers.len());
        let mut expected: Vec<Block> = self.in_flight.iter().filter(|r| r.0 == key(i)).map(|r| r.1).collect();
        let mut returned = match rng.random_range(0..3) {
            0 => self.picker.peer_choked_us(key(i)),
            1 => {
                let returned = self.picker.peer_left(key(i), &self.peers[i]);
                self.picker.peer_joined(&self.peers[i]);
                returned
            }
            _ => {
                let Some(&block) = expected.first() else { return Ok(()) };
                prop_assert!(self.picker.request_timed_out(key(i), block));
                expected.truncate(1);
                vec![block]
            }
        };
        expected.sort();
        returned.sort();
        prop_assert_eq!(&returned, &expected);
        self.in_flight.retain(|r| r.0 != key(i) || !returned.contains(&r.1));
        Ok(())
    }
}

fn piece_range(index: u32) -> std::ops::RangeInclusive<Block> {
    Block { piece: index, offset: 0, length: 0 }..=Block { piece: index, offset: u32::MAX, length: u32::MAX }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn any_swarm_completes_with_every_block_received_once(
        pieces in 1u32..20,
        blocks_per_piece in 1u32..4,
        short_by in 0u32..BLOCK_LEN,
        num_peers in 1usize..6,
        seed in proptest::prelude::any::<u64>(),
    ) {
        let mut rng = SmallRng::seed_from_u64(seed);
        let piece_length = blocks_per_piece * BLOCK_LEN - short_by;
        let last = rng.random_range(1..=piece_length);
        let total = u64::from(pieces - 1) * u64::from(piece_length) + u64::from(last);
        let mut peers: Vec<Bitfield> = (0..num_peers).map(|_| Bitfield::new(pieces)).collect();
        for index in 0..pieces {
            // Each piece held by a random subset of peers, and by at least one.
            let holder = rng.random_range(0..num_peers);
            for (i, bf) in peers.iter_mut().enumerate() {
                if i == holder || rng.random_bool(0.4) {
                    bf.set(index).expect("index in range");
                }
            }
        }
        let mut picker = Picker::new(piece_length, total).expect("valid geometry");
        for bf in &peers {
            picker.peer_joined(bf);
        }
        let mut swarm = SimulatedSwarm {
            picker,
            peers,
            in_flight: Vec::new(),
            copies: BTreeMap::new(),
            senders: BTreeMap::new(),
            duplicated: BTreeSet::new(),
            failures: 0,
        };
        let mut steps = 0;
        while !swarm.picker.is_complete() && steps < 20_000 {
            steps += 1;
            match rng.random_range(0..100) {
                0..40 => swarm.pick(&mut rng)?,
                40..94 => swarm.deliver(&mut rng)?,
                _ => swarm.disrupt(&mut rng)?,
            }
            check(&swarm.picker);
        }
        prop_assert!(swarm.picker.is_complete(), "stuck after {} steps", steps);
        prop_assert_eq!(swarm.picker.missing_bytes(), 0);
        let blocks: u32 = (0..pieces).map(|i| swarm.picker.block_count(i)).sum();
        prop_assert_eq!(swarm.copies.len() as u32, blocks);
        prop_assert!(swarm.copies.values().all(|&n| n == 1));
        prop_assert!(swarm.in_flight.is_empty());
    }
}
