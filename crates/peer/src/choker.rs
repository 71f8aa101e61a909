//! The choker: which interested peers we upload to (BEP 3 "choking", libtorrent's fixed-slots choker).
//!
//! Every rechoke (10 s by default) the `slots` best interested peers are unchoked: while leeching, the ones that
//! upload fastest *to us* (tit for tat); while seeding, the ones that take the most from us (libtorrent's and
//! transmission's seeding rank), each for a limited turn, so every interested peer gets served in rotation; a
//! slot holder that takes nothing ranks behind every peer that waits. One more interested peer gets an **optimistic unchoke**, kept for
//! 30 s and then rotated, so a peer with nothing to offer yet can prove itself; recently connected peers are
//! three times as likely to be drawn, as BEP 3 suggests, because they have had no chance to earn a regular slot.
//!
//! Pure: the caller passes the clock (`Duration` since any fixed start), each peer's rates and a random source, and
//! sends `choke`/`unchoke` for the differences between two answers.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::Rng;

use crate::picker::PeerKey;

/// What the choker needs to know about one connected peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerStats {
    /// The caller's name for the peer.
    pub key: PeerKey,
    /// Whether the peer told us it is interested in our pieces; only those are unchoked.
    pub interested: bool,
    /// Bytes per second the peer sends us (the leeching rank).
    pub download_rate: u64,
    /// Bytes per second we send the peer (the seeding rank).
    pub upload_rate: u64,
    /// When the connection was made, on the caller's clock.
    pub connected_at: Duration,
}

/// Tuning knobs; [`ChokerConfig::default`] gives the BEP 3 values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChokerConfig {
    /// Regular upload slots, filled by rank (4).
    pub slots: usize,
    /// Time between rechokes (10 s).
    pub rechoke_interval: Duration,
    /// How long an optimistic unchoke lasts before it rotates (30 s).
    pub optimistic_interval: Duration,
    /// A peer connected less than this long ago counts as new for the optimistic draw (60 s: two rotations).
    pub new_peer_age: Duration,
    /// Weight of a new peer in the optimistic draw; other peers weigh 1 (3).
    pub new_peer_weight: u32,
    /// While seeding, a peer that held a regular slot this long yields it to peers that have waited (60 s).
    pub seed_turn: Duration,
}

impl Default for ChokerConfig {
    fn default() -> Self {
        Self {
            slots: 4,
            rechoke_interval: Duration::from_secs(10),
            optimistic_interval: Duration::from_secs(30),
            new_peer_age: Duration::from_secs(60),
            new_peer_weight: 3,
            seed_turn: Duration::from_secs(60),
        }
    }
}

/// Choking state of one torrent.
#[derive(Debug, Clone)]
pub struct Choker {
    config: ChokerConfig,
    /// When `tick` next rechokes; `None` until the first rechoke.
    next_rechoke: Option<Duration>,
    /// The optimistic peer and when it was drawn.
    optimistic: Option<(PeerKey, Duration)>,
    /// Peers holding a regular slot, and since when (the seeding turn clock).
    regular_since: BTreeMap<PeerKey, Duration>,
    /// When each peer last lost a regular slot; peers that waited longest win ties.
    choked_at: BTreeMap<PeerKey, Duration>,
    unchoked: BTreeSet<PeerKey>,
}

impl Choker {
    /// A choker that has unchoked nobody yet.
    #[must_use]
    pub fn new(config: ChokerConfig) -> Self {
        Self {
            config,
            next_rechoke: None,
            optimistic: None,
            regular_since: BTreeMap::new(),
            choked_at: BTreeMap::new(),
            unchoked: BTreeSet::new(),
        }
    }

    /// The settings in use.
    #[must_use]
    pub fn config(&self) -> &ChokerConfig {
        &self.config
    }

    /// Peers unchoked by the last rechoke (regular and optimistic).
    #[must_use]
    pub fn unchoked(&self) -> &BTreeSet<PeerKey> {
        &self.unchoked
    }

    /// The current optimistic unchoke, if any.
    #[must_use]
    pub fn optimistic(&self) -> Option<PeerKey> {
        self.optimistic.map(|(key, _)| key)
    }

    /// Whether a rechoke is due at `now`.
    #[must_use]
    pub fn due(&self, now: Duration) -> bool {
        self.next_rechoke.is_none_or(|at| now >= at)
    }

    /// Rechokes if one is due at `now` and returns the new unchoked set; `None` when it is not time yet. Call it
    /// from a periodic timer (every second is plenty).
    pub fn tick(
        &mut self,
        now: Duration,
        seeding: bool,
        peers: &[PeerStats],
        rng: &mut impl Rng,
    ) -> Option<&BTreeSet<PeerKey>> {
        if self.due(now) { Some(self.rechoke(now, seeding, peers, rng)) } else { None }
    }

    /// Rechokes now (e.g. when an unchoked peer leaves or loses interest) and restarts the rechoke timer.
    /// `seeding` chooses the rank: our upload rate to each peer instead of its upload rate to us.
    pub fn rechoke(
        &mut self,
        now: Duration,
        seeding: bool,
        peers: &[PeerStats],
        rng: &mut impl Rng,
    ) -> &BTreeSet<PeerKey> {
        self.next_rechoke = Some(now + self.config.rechoke_interval);
        let mut ranked: Vec<&PeerStats> = peers.iter().filter(|p| p.interested).collect();
        ranked.sort_by_key(|p| self.rank(now, seeding, p));
        let regular: Vec<PeerKey> = ranked.iter().take(self.config.slots).map(|p| p.key).collect();

        let mut regular_since = BTreeMap::new();
        for &key in &regular {
            regular_since.insert(key, self.regular_since.get(&key).copied().unwrap_or(now));
            self.choked_at.remove(&key);
        }
        for key in self.regular_since.keys().filter(|key| !regular_since.contains_key(key)) {
            self.choked_at.insert(*key, now);
        }
        self.regular_since = regular_since;
        // Forget peers that disconnected, so the maps stay as small as the peer list.
        let present: BTreeSet<PeerKey> = peers.iter().map(|p| p.key).collect();
        self.choked_at.retain(|key, _| present.contains(key));

        let others: Vec<&PeerStats> = ranked.iter().skip(self.config.slots).copied().collect();
        self.optimistic = self.next_optimistic(now, &others, rng);

        self.unchoked = regular.into_iter().chain(self.optimistic()).collect();
        &self.unchoked
    }

    /// Where `p` stands for a regular slot: lowest first.
    fn rank(&self, now: Duration, seeding: bool, p: &PeerStats) -> (bool, Reverse<u64>, bool, Duration, PeerKey) {
        let since = self.regular_since.get(&p.key).copied();
        let turn_over = seeding && since.is_some_and(|at| now.saturating_sub(at) >= self.config.seed_turn);
        let rate = if seeding { p.upload_rate } else { p.download_rate };
        // Ties go to the peer already unchoked (fewer choke/unchoke messages), then to the one that has waited
        // longest; the key keeps the order total. While seeding, a slot holder that takes nothing has no claim on
        // its slot: peers that wait go first.
        let holds = since.is_some();
        let behind = if seeding && rate == 0 { holds } else { !holds };
        let waiting_since = self.choked_at.get(&p.key).copied().unwrap_or(p.connected_at);
        (turn_over, Reverse(rate), behind, waiting_since, p.key)
    }

    /// `key`, unchoked, is no longer interested: its slot goes at once to the best-ranked interested peer that has
    /// none (a drawn one, if it held the optimistic slot), and every other slot stays as it is (the next rechoke
    /// is not moved). Returns the new unchoked set.
    ///
    /// Why at once: a peer that holds everything we have keeps a slot it cannot use until the next rechoke, up to
    /// 10 s of one of only five uploads. Why not a full rechoke: rates change all the time, so it would also swap
    /// peers that are mid-piece, and their dropped requests come back as duplicate blocks.
    pub fn free_slot(
        &mut self,
        now: Duration,
        seeding: bool,
        key: PeerKey,
        peers: &[PeerStats],
        rng: &mut impl Rng,
    ) -> &BTreeSet<PeerKey> {
        let waiting: Vec<&PeerStats> =
            peers.iter().filter(|p| p.interested && p.key != key && !self.unchoked.contains(&p.key)).collect();
        // With nobody waiting it keeps the slot: choked and soon unchoked again (it becomes interested at our
        // next piece), its requests sent in between would cross our choke, and come back as duplicate blocks.
        if waiting.is_empty() || !self.unchoked.remove(&key) {
            return &self.unchoked;
        }
        if self.optimistic() == Some(key) {
            // The optimistic slot is drawn, not ranked: draw again, for a fresh 30 s.
            self.optimistic = None;
            self.optimistic = self.next_optimistic(now, &waiting, rng);
            self.unchoked.extend(self.optimistic());
            return &self.unchoked;
        }
        if self.regular_since.remove(&key).is_some() {
            self.choked_at.insert(key, now);
        }
        if let Some(best) = waiting.iter().min_by_key(|p| self.rank(now, seeding, p)).map(|p| p.key) {
            self.regular_since.insert(best, now);
            self.choked_at.remove(&best);
            self.unchoked.insert(best);
        }
        &self.unchoked
    }

    /// Keeps the optimistic peer while its 30 s last and it is still a candidate; otherwise draws another among
    /// `candidates` (interested peers without a regular slot), never the outgoing one if anyone else is there.
    fn next_optimistic(
        &self,
        now: Duration,
        candidates: &[&PeerStats],
        rng: &mut impl Rng,
    ) -> Option<(PeerKey, Duration)> {
        let current = self.optimistic.filter(|(key, _)| candidates.iter().any(|p| p.key == *key));
        let fresh = current.is_some_and(|(_, since)| now.saturating_sub(since) < self.config.optimistic_interval);
        if fresh {
            return current;
        }
        let outgoing = current.map(|(key, _)| key);
        let pool: Vec<&PeerStats> = if candidates.len() > 1 {
            candidates.iter().copied().filter(|p| Some(p.key) != outgoing).collect()
        } else {
            candidates.to_vec()
        };
        let weight = |p: &PeerStats| {
            let new = now.saturating_sub(p.connected_at) < self.config.new_peer_age;
            if new { u64::from(self.config.new_peer_weight.max(1)) } else { 1 }
        };
        let total: u64 = pool.iter().map(|p| weight(p)).sum();
        if total == 0 {
            return None;
        }
        let mut draw = rng.random_range(0..total);
        for p in pool {
            if draw < weight(p) {
                return Some((p.key, now));
            }
            draw -= weight(p);
        }
        None
    }
}

#[cfg(test)]
#[path = "choker_tests.rs"]
mod tests;
