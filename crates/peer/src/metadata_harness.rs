//! Drives one magnet link's metadata fetch ([`MetadataFetch`]) with any sequence of actions from up to sixteen
//! hostile make-believe peers and one honest one, in virtual time, with no socket: for the `metadata_fetch` fuzz
//! target and this crate's tests.
//!
//! The script is a run of three-byte steps: an action, the hostile peer it is for, an argument. A hostile peer
//! connects, offers a size (the true one, one off, a small or a near-cap wrong one, zero, over the cap), is asked
//! for pieces, answers them rightly or with garbage, sends data nobody asked for, rejects, leaves; the clock
//! moves on; or the honest peer takes a step (it joins, is asked, and answers everything rightly). What the
//! connection layer does is done here the same way: a peer whose data is refused, or who is banned, or whose
//! patience ran out, is dropped.
//!
//! After every step: the memory held stays within [`MAX_HELD`], the attempts within [`MAX_SIZES`], the honest
//! peer is never banned, and completion hands out the true metadata only. After the script the hostile peers
//! fall silent (but stay connected until their patience runs out), and the honest peer, asked once a second,
//! must complete the fetch within [`ASKED_BOUND`] of virtual time when its size is being fetched, within
//! [`SINGLE_SOURCE_BOUND`] when a silent owner holds the attempt, or within [`HONEST_BOUND`] when its attempt was
//! evicted for want of a slot (the slot frees when the peers holding the others run out of patience), whatever
//! state the script left.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use peer_wire::METADATA_PIECE_LEN;
use sha1::{Digest as _, Sha1};

use crate::metadata::{MAX_HELD, MAX_METADATA_SIZE, MAX_SIZES, MetadataFetch, PATIENCE, PIECE_TIMEOUT, Received};

/// The honest peer, asked for its size, completes the fetch within this much virtual time once the hostile ones
/// fall silent: a round of asks per piece (an idle peer always gets one) and one more.
pub const ASKED_BOUND: Duration = Duration::from_secs(PIECES + 1);
/// In single-source mode (after a failed check with several senders), a silent owner keeps the attempt for one
/// piece timeout before it is handed on.
pub const SINGLE_SOURCE_BOUND: Duration = Duration::from_secs(PIECE_TIMEOUT.as_secs() + PIECES + 1);
/// When the honest peer's size has no attempt (four others with live peers took the slots), the slots free as
/// the silent peers run out of patience.
pub const HONEST_BOUND: Duration = Duration::from_secs(PATIENCE.as_secs() + SINGLE_SOURCE_BOUND.as_secs());
/// Pieces of the true metadata.
const PIECES: u64 = 3;
const HOSTILE_PEERS: usize = 16;

/// The true info dictionary: two pieces and a bit ([`PIECES`]), so it takes several asks.
fn true_metadata() -> Vec<u8> {
    (0..2 * METADATA_PIECE_LEN + 1234).map(|at| (at * 13 % 251) as u8).collect()
}

#[derive(Debug, Default)]
struct Hostile {
    connected: bool,
    /// The size it offered, once it joined.
    size: Option<u32>,
    /// Pieces the fetch asked of it, not answered yet.
    asked: Vec<u32>,
}

/// One fetch, its peers and its clock.
pub struct MetadataHarness {
    fetch: MetadataFetch,
    metadata: Vec<u8>,
    now: Instant,
    hostiles: Vec<Hostile>,
    honest_connected: bool,
    completed: bool,
}

impl Default for MetadataHarness {
    fn default() -> Self {
        Self::new()
    }
}

impl MetadataHarness {
    #[must_use]
    pub fn new() -> Self {
        let metadata = true_metadata();
        let hash: [u8; 20] = Sha1::digest(&metadata).into();
        MetadataHarness {
            fetch: MetadataFetch::new(hash),
            metadata,
            now: Instant::now(),
            hostiles: (0..HOSTILE_PEERS).map(|_| Hostile::default()).collect(),
            honest_connected: false,
            completed: false,
        }
    }

    fn hostile_addr(index: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 2], 1000 + index as u16))
    }

    fn honest_addr() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 6881))
    }

    fn true_size(&self) -> u32 {
        self.metadata.len() as u32
    }

    /// Runs `script`, then the honest peer alone; panics when an invariant breaks or the honest peer cannot
    /// complete the fetch in time.
    pub fn run(&mut self, script: &[u8]) {
        for step in script.chunks_exact(3) {
            self.step(step[0], usize::from(step[1]) % HOSTILE_PEERS, step[2]);
            self.check();
        }
        self.honest_alone();
    }

    /// Whether the fetch completed with the true metadata.
    #[must_use]
    pub fn completed(&self) -> bool {
        self.completed
    }

    fn step(&mut self, action: u8, index: usize, arg: u8) {
        let addr = Self::hostile_addr(index);
        if self.fetch.is_done() {
            return;
        }
        match action % 10 {
            0 if !self.hostiles[index].connected && !self.fetch.is_banned(addr) => {
                self.hostiles[index].connected = true;
                self.fetch.connected(addr, self.now);
            }
            1 if self.hostiles[index].connected => {
                let size = match arg % 6 {
                    0 => u64::from(self.true_size()),
                    1 => u64::from(self.true_size()) + 1,
                    2 => u64::from(arg) * 100 + 1,
                    3 => u64::from(MAX_METADATA_SIZE - u32::from(arg)),
                    4 => 0,
                    _ => u64::from(MAX_METADATA_SIZE) + u64::from(arg),
                };
                match self.fetch.join(addr, size, self.now) {
                    Ok(()) => {
                        let hostile = &mut self.hostiles[index];
                        hostile.size = u32::try_from(size).ok();
                        hostile.asked.clear();
                    }
                    Err(_) => self.drop_hostile(index),
                }
            }
            2 if self.hostiles[index].size.is_some() => {
                let asked = self.fetch.next_requests(addr, self.now);
                self.hostiles[index].asked.extend(asked);
            }
            3 | 4 => self.hostile_answers(index, action % 10 == 3, arg),
            5 if self.hostiles[index].connected => {
                // Data nobody asked of it: a piece number of its choosing, of the size it claims.
                let size = self.hostiles[index].size.unwrap_or(self.true_size());
                let block = vec![arg; METADATA_PIECE_LEN.min(size as usize)];
                let piece = u32::from(arg) % 8;
                let received = self.fetch.data(addr, piece, size, &block, self.now);
                self.took(received.map_err(|_| ()), Some(index));
            }
            6 => {
                if let Some(piece) = self.hostiles[index].asked.pop() {
                    self.fetch.rejected(addr, piece);
                }
            }
            7 if self.hostiles[index].connected => self.drop_hostile(index),
            8 => {
                self.now += Duration::from_secs(u64::from(arg % 31));
                self.drop_stalled();
            }
            9 => self.honest_step(),
            _ => {}
        }
    }

    /// Hostile peer `index` answers one piece asked of it: rightly, or with garbage of the right length.
    fn hostile_answers(&mut self, index: usize, rightly: bool, arg: u8) {
        let addr = Self::hostile_addr(index);
        let hostile = &mut self.hostiles[index];
        let (Some(size), false) = (hostile.size, hostile.asked.is_empty()) else { return };
        let piece = hostile.asked.remove(usize::from(arg) % hostile.asked.len());
        let start = piece as usize * METADATA_PIECE_LEN;
        let len = (size as usize).saturating_sub(start).min(METADATA_PIECE_LEN);
        let block = if rightly && size == self.true_size() {
            self.metadata[start..start + len].to_vec()
        } else {
            vec![arg ^ 0x5a; len]
        };
        let received = self.fetch.data(addr, piece, size, &block, self.now);
        self.took(received.map_err(|_| ()), Some(index));
    }

    /// The honest peer connects and joins if it has not, is asked, and answers everything asked of it.
    fn honest_step(&mut self) {
        let addr = Self::honest_addr();
        if self.fetch.is_done() {
            return;
        }
        if !self.honest_connected {
            self.honest_connected = true;
            self.fetch.connected(addr, self.now);
            if let Err(refusal) = self.fetch.join(addr, u64::from(self.true_size()), self.now) {
                panic!("the honest peer was refused: {refusal}");
            }
        }
        for piece in self.fetch.next_requests(addr, self.now) {
            let start = piece as usize * METADATA_PIECE_LEN;
            let end = (start + METADATA_PIECE_LEN).min(self.metadata.len());
            let block = self.metadata[start..end].to_vec();
            let received = self.fetch.data(addr, piece, self.true_size(), &block, self.now);
            self.took(received.map_err(|_| ()), None);
            if self.fetch.is_done() {
                return;
            }
        }
    }

    /// What a piece of data did, as the connection layer acts on it: `index` is the hostile sender, `None` the
    /// honest one.
    fn took(&mut self, received: Result<Received, ()>, index: Option<usize>) {
        match received {
            Ok(Received::Complete(metadata)) => {
                assert!(metadata == self.metadata, "completed with metadata that is not the true one");
                self.completed = true;
            }
            Ok(Received::Failed { senders }) => {
                assert!(
                    !senders.contains(&Self::honest_addr()) || senders.len() > 1,
                    "the honest peer alone was blamed for a failed check"
                );
            }
            Ok(Received::Stored | Received::Ignored) => {}
            Err(()) => match index {
                Some(index) => self.drop_hostile(index),
                None => panic!("the honest peer's data was refused"),
            },
        }
        if let Some(index) = index
            && self.fetch.is_banned(Self::hostile_addr(index))
        {
            self.drop_hostile(index);
        }
        assert!(!self.fetch.is_banned(Self::honest_addr()), "the honest peer was banned");
    }

    fn drop_hostile(&mut self, index: usize) {
        self.fetch.leave(Self::hostile_addr(index));
        self.hostiles[index] = Hostile::default();
    }

    /// Peers whose patience ran out are dropped, as their connections would be.
    fn drop_stalled(&mut self) {
        for index in 0..HOSTILE_PEERS {
            if self.hostiles[index].connected && self.fetch.is_stalled(Self::hostile_addr(index), self.now) {
                self.drop_hostile(index);
            }
        }
        let honest = Self::honest_addr();
        if self.honest_connected && self.fetch.is_stalled(honest, self.now) {
            // Dropped, and dialled again at its next step.
            self.fetch.leave(honest);
            self.honest_connected = false;
        }
    }

    fn check(&self) {
        assert!(self.fetch.held() <= MAX_HELD, "{} bytes of metadata held", self.fetch.held());
        assert!(self.fetch.attempts() <= MAX_SIZES, "{} attempts", self.fetch.attempts());
        assert_eq!(self.fetch.is_done(), self.completed, "done without the true metadata, or the other way round");
    }

    /// The hostile peers fall silent; the honest peer, asked and answering once a second, must complete.
    fn honest_alone(&mut self) {
        let start = self.now;
        self.honest_step();
        self.check();
        let mut bound = if !self.fetch.has_attempt(Self::honest_addr()) {
            HONEST_BOUND
        } else if self.fetch.is_single_source() {
            SINGLE_SOURCE_BOUND
        } else {
            ASKED_BOUND
        };
        let mut single_source = self.fetch.is_single_source();
        while !self.fetch.is_done() {
            if self.fetch.is_single_source() && !single_source {
                // The honest peer's own answer completed a set a liar had sent into: it fails, once.
                single_source = true;
                bound = bound.max(self.now.saturating_duration_since(start) + SINGLE_SOURCE_BOUND);
            }
            assert!(
                self.now.saturating_duration_since(start) <= bound,
                "the honest peer did not complete the fetch within {bound:?} of the hostile peers falling \
                 silent ({} attempts, {} bytes held)",
                self.fetch.attempts(),
                self.fetch.held()
            );
            self.honest_step();
            self.check();
            self.now += Duration::from_secs(1);
            self.drop_stalled();
        }
        assert!(self.completed);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A script of (action, hostile peer, argument) steps.
    fn script(steps: &[(u8, u8, u8)]) -> Vec<u8> {
        steps.iter().flat_map(|&(action, peer, arg)| [action, peer, arg]).collect()
    }

    #[test]
    fn four_sizes_that_reject_everything_and_two_stallers_pushing_unasked_data() {
        let mut steps = Vec::new();
        for peer in 0..4 {
            // Connect, offer a small wrong size, be asked, reject.
            steps.extend([(0, peer, 0), (1, peer, 2 + 6 * (peer + 1)), (2, peer, 0), (6, peer, 0)]);
        }
        for peer in 4..6 {
            // Stallers: the true size, asked, never answering, pushing piece 999 every 5 s.
            steps.extend([(0, peer, 0), (1, peer, 0), (2, peer, 0)]);
        }
        for _ in 0..6 {
            steps.extend([(5, 4, 7), (5, 5, 7), (8, 0, 5)]);
        }
        let mut harness = MetadataHarness::new();
        harness.run(&script(&steps));
        assert!(harness.completed());
    }

    #[test]
    fn sixteen_stallers_holding_every_piece() {
        let mut steps = Vec::new();
        for peer in 0..16 {
            steps.extend([(0, peer, 0), (1, peer, 0), (2, peer, 0)]);
        }
        // The honest peer comes while every piece is asked of two stallers.
        steps.push((9, 0, 0));
        let mut harness = MetadataHarness::new();
        harness.run(&script(&steps));
        assert!(harness.completed());
    }

    #[test]
    fn a_shared_failure_then_a_stalling_owner() {
        let steps = [
            // A liar and the honest peer share the attempt; the liar's garbage fails the whole.
            (0, 1, 0),
            (1, 1, 0),
            (2, 1, 0),
            (4, 1, 0),
            (9, 0, 0),
            // Single-source mode: the liar takes the attempt and stalls.
            (2, 1, 0),
            (8, 0, 3),
        ];
        let mut harness = MetadataHarness::new();
        harness.run(&script(&steps));
        assert!(harness.completed());
    }

    #[test]
    fn near_cap_sizes_answered_with_garbage() {
        let mut steps = Vec::new();
        for peer in 0..4 {
            steps.extend([(0, peer, 0), (1, peer, 3 + 6 * peer)]);
        }
        for round in 0..300u16 {
            let peer = (round % 4) as u8;
            steps.extend([(2, peer, 0), (4, peer, 0), (4, peer, 1), (4, peer, 2), (4, peer, 3)]);
        }
        let mut harness = MetadataHarness::new();
        harness.run(&script(&steps));
        assert!(harness.completed());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
        #[test]
        fn any_script_leaves_the_honest_peer_able_to_complete(steps in proptest::collection::vec(any::<(u8, u8, u8)>(), 0..200)) {
            let mut harness = MetadataHarness::new();
            harness.run(&script(&steps));
            prop_assert!(harness.completed());
        }
    }
}
