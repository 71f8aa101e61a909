//! Super-seeding (in the spirit of BEP 16): an initial seeder shows each peer only a few of its pieces, so that
//! every piece leaves the seeder once before any piece leaves it twice, and the leechers pass pieces on to each
//! other.
//!
//! Why: with one seeder and many leechers, the swarm can finish no sooner than the seeder can upload one copy
//! (F / u_s, the lower bound of P2P distribution time). A plain seeder serves whatever it is asked, and leechers
//! that start together ask it for the same pieces: measured here, it sent 1.21 to 1.29 copies before the last
//! leecher finished, and every extra byte delayed the finish. BEP 16 fixes this by showing each peer one piece at a
//! time and waiting to see that piece at another peer; that holds each peer to one piece per round trip. Here a
//! peer is shown a *window* of pieces it has not asked for yet, topped up as soon as it asks for one, so the pipe
//! stays full:
//!
//! 1. First, pieces nobody has been shown, in random order: each goes to exactly one peer.
//! 2. When every piece has been shown once, the rarest ones: fewest peers holding them or shown them, then fewest
//!    being sent them. A piece a peer was shown counts as held by it once it asked us for it or told us it is not
//!    interested: a leecher does not tell us with `have` that it holds a piece (we are a seeder in its eyes).
//!    Without this, a swarm whose leechers are slow to pass pieces on (40 of them on 2 cores) was shown pieces
//!    still in flight, and the seeder sent 1.23 to 1.6 copies.
//!
//! **Whom**: peers take *turns*, at most five at once, the longest waiting first. A turn shows the peer up to four
//! pieces and lasts until they are sent; then the next peer's turn begins. Every leecher so gets new pieces at the
//! same pace, and each has some that the others lack, so its upload is never idle for want of something to pass
//! on. A seeder that served the same few peers for a minute at a time (the seeding choker's turns) left the
//! others only what was passed around: in the simulator's flash crowd of 40, a third of the leechers' upload went
//! unused for the first 20 s, and the last leecher finished at 1.31 × the bound (1.14 × with turns). Peers keep
//! what they were shown between turns and stay unchoked: a super-seeder never chokes, so no request crosses a
//! choke and no piece is cut off half sent.
//!
//! While nobody waits for a turn, a turn has no end. The first leecher to come, alone with us, is shown a larger
//! window (a small one would only slow it down: libtorrent downloaded at a third of its speed); when a second
//! comes, what the first was shown and did not ask for goes back to the fresh pieces.
//!
//! A peer that leaves takes its shown pieces' claims with it, and a piece nobody holds is then among the rarest
//! again, so a leecher leaving half way costs at most its pieces in flight.
//!
//! Pure: the caller says who has what and passes the randomness; this says which pieces to announce with `have`.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use peer_wire::Bitfield;
use rand::Rng;
use rand::seq::SliceRandom;
use tokio::time::Instant;

use crate::picker::PeerKey;

/// Candidates looked at when choosing a rare piece (phase 2), so a choice costs a bounded amount of work whatever
/// the number of pieces.
const MAX_SCAN: usize = 1024;
/// Positions visited in that scan, candidates or not.
const MAX_VISIT: usize = 1 << 16;

#[derive(Debug)]
struct PeerOffers {
    /// Pieces we told this peer we have.
    shown: Bitfield,
    /// Shown and not asked for yet: the window.
    unasked: BTreeSet<u32>,
    /// Shown and not held by the peer yet.
    waiting: BTreeSet<u32>,
    /// Its turn at our upload, while it has one.
    turn: Option<Turn>,
    /// When its last turn began (the count of turns begun, then); 0 if it never had one. Lowest goes first.
    last_turn: u64,
    /// Its last turn was wasted (it asked for nothing, or stopped taking what it asked for): no turn before this.
    benched_until: Option<Instant>,
    /// Turns in a row in which it asked for nothing.
    idle_turns: u32,
}

/// One peer's turn: it is shown up to `quota` pieces, and the turn lasts until they are sent.
#[derive(Debug, Clone, Copy)]
struct Turn {
    /// Pieces it may still be shown in this turn.
    quota: u32,
    /// Bytes it asked us for in this turn, less what it cancelled.
    requested: u64,
    /// Bytes we had sent it when the turn began (the caller's count).
    sent_before: u64,
    /// When the turn began: while others wait, no turn lasts longer than [`TURN_LONGEST`].
    began: Instant,
    /// When the turn began or it last asked for a block: a turn without a request for [`TURN_IDLE`] ends.
    last_activity: Instant,
    /// What we had sent it when we last saw that count grow, and when: a turn whose bytes stop going out for
    /// [`TURN_IDLE`] ends (the peer stopped reading).
    last_sent: u64,
    last_progress: Instant,
}

/// A turn in which the peer asks for no block for this long ends: it may hold what it was shown already (got from
/// others), or not want it. So does one in which what it asked for stops going out.
const TURN_IDLE: Duration = Duration::from_secs(2);
/// The longest turn while others wait for one: a peer that takes its pieces a trickle at a time (enough to count as
/// reading) must not keep a turn for ever. Long enough for an honest slow link: four 4 MiB pieces at 1 MB/s.
const TURN_LONGEST: Duration = Duration::from_secs(30);
/// A peer that stopped reading waits this long before its next turn, so that such peers cannot hold the turns
/// between them. One that asked for nothing waits twice [`TURN_IDLE`], doubled for each such turn in a row up to
/// this: an honest leecher may have got what it was shown from others, and must not lose a minute for it.
const TURN_BENCH: Duration = Duration::from_secs(60);

/// What the super-seeder has shown to whom.
#[derive(Debug)]
pub struct Offers {
    num_pieces: u32,
    /// Pieces never shown to anyone, in random order; taken from the end.
    fresh: Vec<u32>,
    /// Per piece: peers it is shown to that do not hold it yet.
    pending: Vec<u32>,
    /// Per piece: connected peers that asked us for it and have not announced it since (on its way to them).
    in_flight: Vec<u32>,
    /// Per piece: shown to someone, or asked for by a peer that sees all our pieces; no longer fresh.
    taken: Vec<bool>,
    peers: HashMap<PeerKey, PeerOffers>,
    /// Turns begun so far.
    turns_begun: u64,
}

impl Offers {
    /// Nothing shown yet, for a torrent of `num_pieces` pieces.
    pub fn new(num_pieces: u32, rng: &mut impl Rng) -> Self {
        let mut fresh: Vec<u32> = (0..num_pieces).collect();
        fresh.shuffle(rng);
        let n = num_pieces as usize;
        Self {
            num_pieces,
            fresh,
            pending: vec![0; n],
            in_flight: vec![0; n],
            taken: vec![false; n],
            peers: HashMap::new(),
            turns_begun: 0,
        }
    }

    /// A peer connected: nothing is shown to it yet.
    pub fn join(&mut self, peer: PeerKey) {
        let offers = PeerOffers {
            shown: Bitfield::new(self.num_pieces),
            unasked: BTreeSet::new(),
            waiting: BTreeSet::new(),
            turn: None,
            last_turn: 0,
            benched_until: None,
            idle_turns: 0,
        };
        self.peers.insert(peer, offers);
    }

    /// A peer left: the pieces shown to it are no longer promised to anyone.
    pub fn leave(&mut self, peer: PeerKey) {
        if let Some(offers) = self.peers.remove(&peer) {
            for index in offers.waiting {
                let slot = index as usize;
                self.pending[slot] = self.pending[slot].saturating_sub(1);
                if !offers.unasked.contains(&index) {
                    self.in_flight[slot] = self.in_flight[slot].saturating_sub(1);
                }
            }
        }
    }

    /// `peer` announced piece `index` (a `have`, or its bitfield).
    pub fn peer_has(&mut self, peer: PeerKey, index: u32) {
        let Some(offers) = self.peers.get_mut(&peer) else { return };
        let unasked = offers.unasked.remove(&index);
        if offers.waiting.remove(&index)
            && let Some(pending) = self.pending.get_mut(index as usize)
        {
            *pending = pending.saturating_sub(1);
            if !unasked {
                self.in_flight[index as usize] = self.in_flight[index as usize].saturating_sub(1);
            }
        }
    }

    /// `peer` told us it is not interested: it holds every piece shown to it (or wants none of them), so its
    /// window is free for more. A leecher does not announce a piece it got elsewhere to a seeder it believes has
    /// it, so without this its window filled with pieces it held, nothing new was shown, and a leecher left alone
    /// with the seeder (the simulator's churn) waited for ever. The pieces count as held by it from now on, as the
    /// ones it asked us for do: forgetting them made them the rarest in our eyes, and the super-seeder sent them
    /// out again (in the simulator's flash crowd of 40, a fifth of its upload went to pieces sent before).
    pub fn not_interested(&mut self, peer: PeerKey) {
        let Some(offers) = self.peers.get_mut(&peer) else { return };
        for index in std::mem::take(&mut offers.unasked) {
            self.in_flight[index as usize] += 1;
        }
    }

    /// `peer` asked for `length` bytes of piece `index`, and we will send them; returns whether its window shrank
    /// (time to top it up). A peer that was not [`Offers::join`]ed sees all our pieces: what it asks for is no
    /// longer fresh for the others.
    pub fn asked(&mut self, peer: PeerKey, index: u32, length: u32, now: Instant) -> bool {
        let slot = index as usize;
        if slot >= self.taken.len() {
            return false;
        }
        match self.peers.get_mut(&peer) {
            Some(offers) => {
                let first_ask = offers.unasked.remove(&index);
                if first_ask {
                    // Shown pieces are waiting until held, so this is the one count of this peer for this piece.
                    self.in_flight[slot] += 1;
                } else if offers.shown.has(index) && offers.waiting.insert(index) {
                    // A piece it was shown and we took back (its window shrank): it is on its way after all, and
                    // no longer fresh for the others.
                    self.pending[slot] += 1;
                    self.in_flight[slot] += 1;
                    self.taken[slot] = true;
                }
                if let Some(turn) = &mut offers.turn {
                    turn.requested = turn.requested.saturating_add(u64::from(length));
                    turn.last_activity = now;
                }
                first_ask
            }
            None => {
                self.taken[slot] = true;
                false
            }
        }
    }

    /// `peer` cancelled `length` bytes of piece `index` before we sent them.
    pub fn cancelled(&mut self, peer: PeerKey, length: u32) {
        if let Some(turn) = self.peers.get_mut(&peer).and_then(|offers| offers.turn.as_mut()) {
            turn.requested = turn.requested.saturating_sub(u64::from(length));
        }
    }

    /// Ends the turns that are over and begins turns for the peers that waited longest, until `slots` are open;
    /// returns the peers whose turn began (show them pieces now). A turn is over once its `quota` of pieces was
    /// shown and asked for and at most `slack` bytes of them wait to be sent (`sent` says what we sent each peer
    /// so far), after [`TURN_IDLE`] without a request or without a byte going out (the peer then sits out
    /// [`TURN_BENCH`]), after [`TURN_LONGEST`] while others wait, or when the peer lacks nothing (`lacks`). Only
    /// peers that lack pieces wait for a turn; while nobody waits, a turn has no quota. See the module's notes for
    /// why.
    pub fn take_turns(
        &mut self,
        now: Instant,
        slots: usize,
        quota: u32,
        slack: u64,
        sent: impl Fn(PeerKey) -> u64,
        lacks: impl Fn(PeerKey) -> bool,
    ) -> Vec<PeerKey> {
        let benched = |offers: &PeerOffers| offers.benched_until.is_some_and(|until| now < until);
        let anyone_waits =
            self.peers.iter().any(|(&key, offers)| offers.turn.is_none() && !benched(offers) && lacks(key));
        for (&key, offers) in &mut self.peers {
            let Some(turn) = &mut offers.turn else { continue };
            let sent_now = sent(key);
            if sent_now != turn.last_sent {
                turn.last_sent = sent_now;
                turn.last_progress = now;
            }
            let outstanding = turn.requested.saturating_sub(sent_now.saturating_sub(turn.sent_before));
            let delivered = turn.quota == 0 && offers.unasked.is_empty() && outstanding <= slack;
            // What it was shown and has not asked for stays its own: our `have` may still be on its way, queued
            // behind the blocks we sent it (seconds, on a busy link).
            let idle = now.saturating_duration_since(turn.last_activity) >= TURN_IDLE && outstanding == 0;
            let stalled = outstanding > slack && now.saturating_duration_since(turn.last_progress) >= TURN_IDLE;
            if stalled {
                offers.benched_until = Some(now + TURN_BENCH);
            } else if idle {
                offers.idle_turns = offers.idle_turns.saturating_add(1);
                let bench = (2 * TURN_IDLE).saturating_mul(1 << offers.idle_turns.min(8).saturating_sub(1));
                offers.benched_until = Some(now + bench.min(TURN_BENCH));
            } else if delivered {
                offers.idle_turns = 0;
            }
            let overlong = anyone_waits && now.saturating_duration_since(turn.began) >= TURN_LONGEST;
            if delivered || idle || stalled || overlong || !lacks(key) {
                offers.turn = None;
            }
        }
        let mut waiting: Vec<(u64, PeerKey)> = self
            .peers
            .iter()
            .filter(|&(&key, offers)| offers.turn.is_none() && !benched(offers) && lacks(key))
            .map(|(&key, offers)| (offers.last_turn, key))
            .collect();
        let open = self.peers.values().filter(|offers| offers.turn.is_some()).count();
        let free = slots.saturating_sub(open);
        // Nobody left waiting once the free slots are given: the open turns need no end; else they end soon.
        let someone_waits = waiting.len() > free;
        let quota = if someone_waits { quota } else { u32::MAX };
        for turn in self.peers.values_mut().filter_map(|offers| offers.turn.as_mut()) {
            turn.quota = if someone_waits { turn.quota.min(quota) } else { u32::MAX };
        }
        waiting.sort_unstable();
        let mut begun = Vec::with_capacity(free.min(waiting.len()));
        for (_, key) in waiting.into_iter().take(free) {
            let Some(offers) = self.peers.get_mut(&key) else { continue };
            self.turns_begun += 1;
            offers.last_turn = self.turns_begun;
            let sent_before = sent(key);
            offers.turn = Some(Turn {
                quota,
                requested: 0,
                sent_before,
                began: now,
                last_activity: now,
                last_sent: sent_before,
                last_progress: now,
            });
            begun.push(key);
        }
        begun
    }

    /// Whether some turn waits only for its last bytes to be sent: nothing tells the caller when they are, so it
    /// should call [`Offers::take_turns`] again soon.
    #[must_use]
    pub fn turn_closing(&self) -> bool {
        self.peers.values().any(|offers| offers.turn.is_some_and(|turn| turn.quota == 0) && offers.unasked.is_empty())
    }

    /// Whether `peer` has a turn now.
    #[cfg(test)]
    #[must_use]
    pub fn has_turn(&self, peer: PeerKey) -> bool {
        self.peers.get(&peer).is_some_and(|offers| offers.turn.is_some())
    }

    /// Keeps at most `window` pieces in `peer`'s window and gives the rest back: one that nobody else holds, is
    /// being sent or was shown is fresh again. The window of a peer that was alone with us is far larger than one
    /// the others should wait behind. The peer still believes we have them and may ask all the same; that counts
    /// as a new showing.
    pub fn shrink(&mut self, peer: PeerKey, window: usize, availability: impl Fn(u32) -> u32) {
        let Some(offers) = self.peers.get_mut(&peer) else { return };
        let mut excess = Vec::new();
        while offers.unasked.len() > window {
            let Some(index) = offers.unasked.pop_last() else { break };
            offers.waiting.remove(&index);
            excess.push(index);
        }
        for index in excess {
            self.give_back(index, false, &availability);
        }
    }

    /// One peer no longer waits for `index` (it was on its way to it if `was_asked`).
    fn give_back(&mut self, index: u32, was_asked: bool, availability: &impl Fn(u32) -> u32) {
        let slot = index as usize;
        self.pending[slot] = self.pending[slot].saturating_sub(1);
        if was_asked {
            self.in_flight[slot] = self.in_flight[slot].saturating_sub(1);
        }
        if self.pending[slot] == 0 && self.in_flight[slot] == 0 && availability(index) == 0 && self.taken[slot] {
            self.taken[slot] = false;
            self.fresh.push(index);
        }
    }

    /// Whether `index` was shown to `peer`: an honest peer asks us for nothing else.
    #[must_use]
    pub fn shown(&self, peer: PeerKey, index: u32) -> bool {
        self.peers.get(&peer).is_some_and(|offers| offers.shown.has(index))
    }

    /// Shows `peer` (who holds `theirs`) new pieces until `window` of them are unasked; appends them to `out`.
    /// `availability` says how many connected peers hold a piece.
    pub fn top_up(
        &mut self,
        peer: PeerKey,
        theirs: &Bitfield,
        window: usize,
        availability: impl Fn(u32) -> u32,
        rng: &mut impl Rng,
        out: &mut Vec<u32>,
    ) {
        let Some(mut offers) = self.peers.remove(&peer) else { return };
        while offers.unasked.len() < window && offers.turn.is_some_and(|turn| turn.quota > 0) {
            let Some(index) = self
                .next_fresh(&offers, theirs, &availability)
                .or_else(|| self.rarest(&offers, theirs, &availability, rng))
            else {
                break;
            };
            // The index came from 0..num_pieces.
            let _ = offers.shown.set(index);
            offers.unasked.insert(index);
            offers.waiting.insert(index);
            self.pending[index as usize] += 1;
            self.taken[index as usize] = true;
            if let Some(turn) = &mut offers.turn {
                turn.quota = turn.quota.saturating_sub(1);
            }
            out.push(index);
        }
        self.peers.insert(peer, offers);
    }

    /// Phase 1: a piece nobody was shown and nobody holds.
    fn next_fresh(
        &mut self,
        offers: &PeerOffers,
        theirs: &Bitfield,
        availability: &impl Fn(u32) -> u32,
    ) -> Option<u32> {
        while let Some(index) = self.fresh.pop() {
            // A piece some peer holds already went out (or came from elsewhere): it is no longer fresh.
            if availability(index) == 0 && !self.taken[index as usize] && !theirs.has(index) && !offers.shown.has(index)
            {
                return Some(index);
            }
        }
        None
    }

    /// Phase 2: among pieces the peer lacks and was not shown, the one fewest peers hold or are being sent, then
    /// the one shown to the fewest; a bounded scan from a random place.
    fn rarest(
        &self,
        offers: &PeerOffers,
        theirs: &Bitfield,
        availability: &impl Fn(u32) -> u32,
        rng: &mut impl Rng,
    ) -> Option<u32> {
        if self.num_pieces == 0 {
            return None;
        }
        let start = rng.random_range(0..self.num_pieces);
        let mut best: Option<((u32, u32), u32)> = None;
        let mut seen = 0;
        for (visited, index) in (start..self.num_pieces).chain(0..start).enumerate() {
            if visited >= MAX_VISIT {
                break;
            }
            if theirs.has(index) || offers.shown.has(index) {
                continue;
            }
            let slot = index as usize;
            let rank = (availability(index).saturating_add(self.pending[slot]), self.in_flight[slot]);
            if best.is_none_or(|(best_rank, _)| rank < best_rank) {
                best = Some((rank, index));
                if rank == (0, 0) {
                    break;
                }
            }
            seen += 1;
            if seen >= MAX_SCAN {
                break;
            }
        }
        best.map(|(_, index)| index)
    }
}

#[cfg(test)]
#[path = "offers_tests.rs"]
mod tests;
