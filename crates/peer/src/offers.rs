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
//! 2. When every piece has been shown once, the rarest ones: fewest peers holding them or being sent them, then
//!    fewest shown to. A piece a peer has asked us for counts as held by it: it is on its way, and a leecher does
//!    not tell us with `have` when it arrives (we are a seeder in its eyes). Without this, a swarm whose leechers
//!    are slow to pass pieces on (40 of them on 2 cores) was shown pieces still in flight, and the seeder sent 1.23
//!    to 1.6 copies.
//!
//! The first leecher to come sees every piece at once, as from a plain seeder: alone, it has nobody to pass pieces
//! to, and a window would only slow it down (measured: libtorrent downloaded at a third of its speed). What it asks
//! for is taken out of the fresh pieces, so the leechers that come later are shown others.
//!
//! A peer we choke is shown one piece (so it stays interested and can win a slot); one we unchoke a window sized to
//! what it takes from us. A peer that leaves takes its shown pieces' claims with it, and a piece nobody holds is
//! then among the rarest again, so a leecher leaving half way costs at most its pieces in flight.
//!
//! Pure: the caller says who has what and passes the randomness; this says which pieces to announce with `have`.

use std::collections::{BTreeSet, HashMap};

use peer_wire::Bitfield;
use rand::Rng;
use rand::seq::SliceRandom;

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
}

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
        }
    }

    /// A peer connected: nothing is shown to it yet.
    pub fn join(&mut self, peer: PeerKey) {
        let offers =
            PeerOffers { shown: Bitfield::new(self.num_pieces), unasked: BTreeSet::new(), waiting: BTreeSet::new() };
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

    /// `peer` told us it is not interested: it holds every piece shown to it (or wants none of them), so none of
    /// them waits for it any more, and its window is free for others. A leecher does not announce a piece it got
    /// elsewhere to a seeder it believes has it, so without this its window filled with pieces it held, nothing
    /// new was shown, and a leecher left alone with the seeder (the simulator's churn) waited for ever.
    pub fn not_interested(&mut self, peer: PeerKey) {
        let Some(offers) = self.peers.get(&peer) else { return };
        let waiting: Vec<u32> = offers.waiting.iter().copied().collect();
        for index in waiting {
            self.peer_has(peer, index);
        }
    }

    /// `peer` asked for a block of piece `index`; returns whether its window shrank (time to top it up). A peer
    /// that was not [`Offers::join`]ed sees all our pieces: what it asks for is no longer fresh for the others.
    pub fn asked(&mut self, peer: PeerKey, index: u32) -> bool {
        match self.peers.get_mut(&peer) {
            Some(offers) => {
                let first_ask = offers.unasked.remove(&index);
                if first_ask && let Some(in_flight) = self.in_flight.get_mut(index as usize) {
                    // Shown pieces are waiting until held, so this is the one count of this peer for this piece.
                    *in_flight += 1;
                }
                first_ask
            }
            None => {
                if let Some(taken) = self.taken.get_mut(index as usize) {
                    *taken = true;
                }
                false
            }
        }
    }

    /// Whether `index` was shown to `peer`.
    #[cfg(test)]
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
        while offers.unasked.len() < window {
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
            let rank = (availability(index).saturating_add(self.in_flight[slot]), self.pending[slot]);
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
