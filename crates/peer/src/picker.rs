//! The piece picker: which 16 KiB blocks to request from which peer (BEP 3 "piece selection").
//!
//! Order of preference when a peer has room for more requests:
//!
//! 1. **Strict priority**: open blocks of pieces already in progress that the peer has, so started pieces finish
//!    (and can be verified and shared) before new ones start.
//! 2. **Rarest first**: new pieces the peer has, lowest availability first, ties broken at random so that peers
//!    joining together do not all start the same piece.
//! 3. **Endgame**: once every missing block is requested from someone, the peer is asked for blocks that are
//!    outstanding from *other* peers, so the last piece does not wait on one slow peer. The first copy to arrive
//!    wins; the caller sends CANCEL to the other peers [`Received::New`] names.
//!
//! Two limits come from the caller ([`PickLimits`]): how many new pieces a pick may start (each holds a buffer
//! until it is hashed), and parole: a peer on parole is asked only for pieces it owns, which it starts itself and
//! nobody else is asked for (not even in endgame), so that a failed hash check names it alone. A piece's owner
//! is forgotten when the owner chokes us or leaves, so nobody else waits on it.
//!
//! # States
//!
//! A piece is in exactly ONE of these states:
//!
//! | state         | where it lives                                        | leaves by                                 |
//! |---------------|-------------------------------------------------------|-------------------------------------------|
//! | `Missing`     | `buckets[tier][availability]`, at `pos[piece]`        | `pick` starts it; `mark_have`             |
//! | `Downloading` | `active`; also `partial` (at `pos`) iff a block is open | last block in (`Hashing`); every request returned, nothing received (`Missing`) |
//! | `Hashing`     | `active`, every block `Got`                           | `piece_verified` (`Have`), `piece_failed` (`Missing`) |
//! | `Have`        | bit set in `we_have`                                  | never                                     |
//! | `Unwanted`    | bit set in `not_needed` (no list)                     | `set_priorities` wants it (`Missing`)     |
//!
//! A block of an active piece is in exactly one slot state (kept in `picker/piece.rs`): `Open` (nobody asked),
//! `Asked(peer)` (one request outstanding), `Shared(peers)` (endgame: two or more requests, never the same peer
//! twice) or `Got(peer)` (received; the sender is kept so a failed hash can name its contributors).
//! `requests[peer]` counts, per piece, the slots naming that peer, so a choke or disconnect visits only that
//! peer's pieces. Endgame holds exactly when no piece is `Missing` and `partial` is empty. The test module's
//! `check` asserts all of this after every step of the simulation test.
//!
//! # Cost
//!
//! N pieces, P partial pieces, k blocks returned. `pick` costs O(P + k + S): P bit tests for strict priority, then
//! S positions of the availability buckets, rarest first, each one bit test. For a peer holding a fraction f of
//! the pieces, S is about (pieces needed) / f. The scan is capped at N / 8 + |theirs| positions, and a peer
//! expected to exceed that (few pieces, or only common ones) has its bitfield walked instead, 64 pieces per word
//! step, ranking what it holds by (availability, random draw): O(N / 64 + |theirs|). So no pick touches every
//! piece one by one. Measured in release at 200,000 pieces: about 0.2 µs per pick for a seeder or a peer with
//! half the pieces, 8 µs for a peer with 3 pieces. Endgame adds O(blocks of the active pieces), only near the
//! end. Availability updates are O(1); block bookkeeping O(log n) map look-ups.

use std::collections::BTreeMap;

use peer_wire::{BLOCK_LEN, Bitfield};
use rand::Rng;

use piece::{Active, Geometry, Slot, to_u32};

mod invariants;
mod piece;

/// A peer, as the caller names it (a connection counter, a slab index...). Only compared, never interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerKey(pub u64);

/// One request-sized part of a piece: what a `request`, `piece` or `cancel` message names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Block {
    /// Piece index.
    pub piece: u32,
    /// Byte offset inside the piece, a multiple of [`BLOCK_LEN`].
    pub offset: u32,
    /// [`BLOCK_LEN`], except for the last block of the last piece (or of any piece whose length is not a multiple).
    pub length: u32,
}

/// What [`Picker::block_received`] made of a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// The first copy of a block we asked this peer for: write it.
    New {
        /// Other peers that were asked for the same block (endgame): send each a CANCEL. Their requests are
        /// already forgotten here.
        cancel: Vec<PeerKey>,
        /// Every block of the piece is now in: hash it, then call [`Picker::piece_verified`] or
        /// [`Picker::piece_failed`].
        piece_complete: bool,
    },
    /// We already hold this block (another peer won the endgame race, or the cancel crossed the data on the
    /// wire). Drop the data; the peer did nothing wrong.
    Duplicate,
    /// We never asked this peer for this block (or it does not fit the piece geometry). The caller may penalize;
    /// a request that timed out and then arrived late also lands here, so count these rather than ban on one.
    Unexpected,
}

/// What one pick may do besides filling the peer's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PickLimits {
    /// New pieces the pick may start. Every started piece holds a buffer until it is hashed, so the caller caps
    /// them to bound memory; `u32::MAX` for no cap.
    pub new_pieces: u32,
    /// The peer is on parole (it took part in a piece that failed its hash check): it is asked only for pieces
    /// it downloads alone, and owns the pieces it starts, so that its next failure names it alone. No endgame.
    pub exclusive: bool,
}

impl Default for PickLimits {
    fn default() -> Self {
        Self { new_pieces: u32::MAX, exclusive: false }
    }
}

/// Why a [`Picker`] cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickerError {
    /// A piece length of zero makes no pieces of anything.
    #[error("piece length must be positive")]
    ZeroPieceLength,
    /// The piece count does not fit the wire's u32 piece index.
    #[error("{total_length} bytes in pieces of {piece_length} bytes make more than 2^32 - 1 pieces")]
    TooManyPieces {
        /// Torrent size in bytes.
        total_length: u64,
        /// Piece length in bytes.
        piece_length: u32,
    },
}

/// The lifecycle of one piece; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Missing,
    Downloading,
    Hashing,
    Have,
    /// Not to be downloaded: only pieces of files left out (see [`Picker::set_wanted`]).
    Unwanted,
}

/// Piece priorities ([`Picker::set_priorities`]): a piece of a higher one is always started first.
pub const LOW: u8 = 1;
pub const NORMAL: u8 = 2;
pub const HIGH: u8 = 3;
/// Priorities of wanted pieces, each with its buckets.
const TIERS: usize = 3;

/// Marks a list position as "in no list" in `pos`.
const NOWHERE: u32 = u32::MAX;

/// Download state of one torrent: what we have, who has what, what is requested from whom.
#[derive(Debug)]
pub struct Picker {
    geo: Geometry,
    we_have: Bitfield,
    have_bytes: u64,
    state: Vec<State>,
    /// Connected peers holding each piece.
    availability: Vec<u32>,
    /// `Missing` pieces grouped by priority tier (low, normal, high: see [`Picker::set_priorities`]), then by
    /// availability; bucket order is arbitrary (swap-removal), randomness comes from where `pick` starts reading.
    buckets: [Vec<Vec<u32>>; TIERS],
    /// Each piece's priority: 0 not wanted, then [`LOW`], [`NORMAL`] (every piece at first) or [`HIGH`].
    priority: Vec<u8>,
    /// `Missing` pieces across all buckets.
    unstarted: u32,
    /// `Downloading` pieces with at least one `Open` slot.
    partial: Vec<u32>,
    /// Index of a piece inside its bucket (`Missing`) or inside `partial` (`Downloading` with open slots): the two
    /// lists never hold the same piece, so one array serves both.
    pos: Vec<u32>,
    active: BTreeMap<u32, Active>,
    /// Pieces in the `Hashing` state.
    hashing: u32,
    /// Per peer, per piece: slots naming that peer as a requester.
    requests: BTreeMap<PeerKey, BTreeMap<u32, u32>>,
    /// Reused by the bitfield walk of `pick`, so a pick does not allocate.
    scratch: Vec<(u32, u32, u32)>,
    /// Sequential download: new pieces come from the first this many not yet started (that the peer has, looking
    /// at most four times as far from the first piece we lack), rarest first among them, and started pieces are
    /// served front first; a peer that has none of them is asked for others, rarest first.
    sequential: Option<u32>,
    /// New pieces in random order, availability ignored ([`Picker::set_random_order`]).
    random_order: bool,
    /// Every piece before it is `Have` or `Unwanted` (set again from 0 when pieces are wanted anew), so the
    /// window's start is found from here.
    first_lacking: u32,
    /// Pieces held or not wanted: a peer is interesting when it has a piece outside this.
    not_needed: Bitfield,
    /// Pieces in the `Unwanted` state.
    unwanted: u32,
}

impl Picker {
    /// A picker for a torrent of `total_length` bytes cut into `piece_length`-byte pieces, holding nothing yet.
    ///
    /// # Errors
    ///
    /// [`PickerError::ZeroPieceLength`], or [`PickerError::TooManyPieces`] when the count exceeds a u32.
    pub fn new(piece_length: u32, total_length: u64) -> Result<Self, PickerError> {
        if piece_length == 0 {
            return Err(PickerError::ZeroPieceLength);
        }
        let num_pieces = u32::try_from(total_length.div_ceil(u64::from(piece_length)))
            .map_err(|_| PickerError::TooManyPieces { total_length, piece_length })?;
        let n = num_pieces as usize;
        Ok(Self {
            geo: Geometry { piece_length, total_length },
            we_have: Bitfield::new(num_pieces),
            have_bytes: 0,
            state: vec![State::Missing; n],
            availability: vec![0; n],
            buckets: [Vec::new(), vec![(0..num_pieces).collect()], Vec::new()],
            priority: vec![NORMAL; n],
            unstarted: num_pieces,
            partial: Vec::new(),
            pos: (0..num_pieces).collect(),
            active: BTreeMap::new(),
            hashing: 0,
            requests: BTreeMap::new(),
            scratch: Vec::new(),
            sequential: None,
            random_order: false,
            first_lacking: 0,
            not_needed: Bitfield::new(num_pieces),
            unwanted: 0,
        })
    }

    /// Downloads in order, for previewing media: new pieces are started among the first `window` not yet started
    /// (rarest first among them) and started pieces are served front first, as long as the peer has any of them;
    /// `None` for rarest first over the whole torrent.
    pub fn set_sequential(&mut self, window: Option<u32>) {
        self.sequential = window.map(|window| window.max(1));
    }

    /// Starts new pieces in random order, not rarest first: a deliberately worse picker, for the simulator's check
    /// that it can tell a good one from a bad one (never set by `peer`).
    pub fn set_random_order(&mut self, random: bool) {
        self.random_order = random;
    }

    /// Pieces in the torrent.
    #[must_use]
    pub fn num_pieces(&self) -> u32 {
        self.we_have.len()
    }

    /// Length of piece `index` in bytes: the piece length, less for the last piece, 0 past the end.
    #[must_use]
    pub fn piece_len(&self, index: u32) -> u32 {
        self.geo.piece_len(index)
    }

    /// Blocks in piece `index` (0 past the end).
    #[must_use]
    pub fn block_count(&self, index: u32) -> u32 {
        self.geo.block_count(index)
    }

    /// The slot index of `block`, if it has exactly the offset and length the geometry gives that position.
    fn slot_of(&self, block: Block) -> Option<usize> {
        let b = (block.offset / BLOCK_LEN) as usize;
        let fits = block.offset.is_multiple_of(BLOCK_LEN)
            && b < self.geo.block_count(block.piece) as usize
            && self.geo.block(block.piece, b) == block;
        fits.then_some(b)
    }

    /// Whether piece `index` is verified and stored.
    #[must_use]
    pub fn have(&self, index: u32) -> bool {
        self.we_have.has(index)
    }

    /// The verified pieces, as our `bitfield` message announces them.
    #[must_use]
    pub fn we_have(&self) -> &Bitfield {
        &self.we_have
    }

    /// Whether every piece is verified.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.we_have.is_complete()
    }

    /// Whether every wanted piece is verified (every piece, unless [`Picker::set_wanted`] left some out): the
    /// download is over, though not every piece is held.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.unstarted == 0 && self.active.keys().all(|&index| !self.is_wanted(index))
    }

    /// Whether piece `index` is to be downloaded.
    #[must_use]
    pub fn is_wanted(&self, index: u32) -> bool {
        self.priority.get(index as usize).is_some_and(|&priority| priority > 0)
    }

    /// Whether `theirs` holds a piece we neither have nor left out.
    #[must_use]
    pub fn is_interesting(&self, theirs: &Bitfield) -> bool {
        self.not_needed.interesting(theirs)
    }

    /// Downloads only the pieces set in `wanted` (those of the files chosen; every piece when all are set), at
    /// normal priority. See [`Picker::set_priorities`].
    pub fn set_wanted(&mut self, wanted: &Bitfield) {
        if wanted.len() == self.num_pieces() {
            let priorities: Vec<u8> =
                (0..wanted.len()).map(|index| if wanted.has(index) { NORMAL } else { 0 }).collect();
            self.set_priorities(&priorities);
        }
    }

    /// Sets each piece's priority (one per piece; another length changes nothing): 0 leaves it out, else
    /// [`LOW`], [`NORMAL`] or [`HIGH`] (higher values count as high). Rarest first, a piece of a higher
    /// priority is always started before one of a lower; a sequential download keeps its order and only leaves
    /// out the pieces at 0. A piece left out while being downloaded is finished; pieces held stay held.
    /// Sequential order starts again from the first piece.
    pub fn set_priorities(&mut self, priorities: &[u8]) {
        if priorities.len() != self.num_pieces() as usize {
            return;
        }
        for (index, &new) in (0u32..).zip(priorities) {
            let new = new.min(HIGH);
            let old = self.priority[index as usize];
            if new == old {
                continue;
            }
            match self.state[index as usize] {
                State::Missing => {
                    self.unbucket(index, self.availability[index as usize]);
                    self.unstarted -= 1;
                    self.priority[index as usize] = new;
                    self.make_missing(index);
                }
                State::Unwanted => {
                    self.unwanted -= 1;
                    let _ = self.not_needed.clear(index);
                    self.priority[index as usize] = new;
                    self.make_missing(index);
                }
                _ => self.priority[index as usize] = new,
            }
        }
        self.first_lacking = 0;
    }

    fn make_unwanted(&mut self, index: u32) {
        self.state[index as usize] = State::Unwanted;
        self.unwanted += 1;
        let _ = self.not_needed.set(index);
    }

    /// Bytes not yet verified: the tracker's `left`.
    #[must_use]
    pub fn missing_bytes(&self) -> u64 {
        self.geo.total_length - self.have_bytes
    }

    /// Connected peers known to hold piece `index`.
    #[must_use]
    pub fn availability(&self, index: u32) -> u32 {
        self.availability.get(index as usize).copied().unwrap_or(0)
    }

    /// Whether piece `index` is being downloaded or hashed: its blocks are requested or received.
    #[must_use]
    pub fn in_progress(&self, index: u32) -> bool {
        self.active.contains_key(&index)
    }

    /// Pieces being downloaded: started, not yet complete. Each holds a piece buffer in the caller.
    #[must_use]
    pub fn downloading(&self) -> u32 {
        to_u32(self.active.len()) - self.hashing
    }

    /// Whether piece `index` is being downloaded but nobody is asked for any of its blocks: the peers that sent
    /// its blocks so far left or choked us, and nobody connected has it (or has room to take it yet).
    #[must_use]
    pub fn is_abandoned(&self, index: u32) -> bool {
        self.state.get(index as usize) == Some(&State::Downloading)
            && self.active.get(&index).is_some_and(|piece| piece.requested() == 0)
    }

    /// Sends an abandoned piece (see [`Picker::is_abandoned`]) back to `Missing`, forgetting the blocks received,
    /// so its buffer can be freed. Returns false (and changes nothing) for any other piece.
    pub fn abandon(&mut self, index: u32) -> bool {
        if !self.is_abandoned(index) {
            return false;
        }
        self.active.remove(&index);
        self.remove_partial(index);
        self.make_missing(index);
        true
    }

    /// The sender of each block of a piece waiting for its hash check, in block order; `None` for any other
    /// piece. Kept so that a failed piece can be compared block by block with a good copy later.
    #[must_use]
    pub fn block_senders(&self, index: u32) -> Option<Vec<PeerKey>> {
        if self.state.get(index as usize) != Some(&State::Hashing) {
            return None;
        }
        let piece = self.active.get(&index)?;
        piece.slots.iter().map(|slot| if let Slot::Got(q) = slot { Some(*q) } else { None }).collect()
    }

    /// Whether every missing block is already requested from someone, so picks now duplicate requests.
    #[must_use]
    pub fn in_endgame(&self) -> bool {
        self.unstarted == 0 && self.partial.is_empty() && !self.is_complete()
    }

    /// Requests outstanding from `peer`.
    #[must_use]
    pub fn outstanding(&self, peer: PeerKey) -> usize {
        self.requests.get(&peer).map_or(0, |pieces| pieces.values().map(|&n| n as usize).sum())
    }

    // ---- availability ----

    /// A peer connected and sent its bitfield. Call before the first [`Picker::pick`] for it: pieces are found
    /// through availability, and a piece nobody is known to hold is never picked from the buckets.
    pub fn peer_joined(&mut self, theirs: &Bitfield) {
        for index in theirs.ones() {
            self.peer_has(index);
        }
    }

    /// A peer announced piece `index` (a `have` message). Indices past the end are ignored.
    pub fn peer_has(&mut self, index: u32) {
        if let Some(count) = self.availability.get_mut(index as usize) {
            let old = *count;
            *count = old.saturating_add(1);
            self.rebucket(index, old);
        }
    }

    /// A peer disconnected: its pieces no longer count, and its outstanding requests go back to the pool.
    /// Returns those requests.
    pub fn peer_left(&mut self, peer: PeerKey, theirs: &Bitfield) -> Vec<Block> {
        let returned = self.peer_choked_us(peer);
        for index in theirs.ones() {
            if let Some(count) = self.availability.get_mut(index as usize) {
                let old = *count;
                *count = old.saturating_sub(1);
                self.rebucket(index, old);
            }
        }
        returned
    }

    /// Moves a `Missing` piece whose availability was `old` to the bucket of its current availability.
    fn rebucket(&mut self, index: u32, old: u32) {
        let new = self.availability[index as usize];
        if self.state[index as usize] == State::Missing && new != old {
            self.unbucket(index, old);
            self.bucket(index);
        }
    }

    /// The buckets of piece `index`'s priority (a wanted piece's: 1 to 3).
    fn tier(&self, index: u32) -> usize {
        usize::from(self.priority[index as usize].clamp(LOW, HIGH) - LOW)
    }

    fn bucket(&mut self, index: u32) {
        let a = self.availability[index as usize] as usize;
        let buckets = &mut self.buckets[self.tier(index)];
        if buckets.len() <= a {
            buckets.resize_with(a + 1, Vec::new);
        }
        self.pos[index as usize] = to_u32(buckets[a].len());
        buckets[a].push(index);
    }

    fn unbucket(&mut self, index: u32, availability: u32) {
        let at = self.pos[index as usize] as usize;
        let tier = self.tier(index);
        let bucket = &mut self.buckets[tier][availability as usize];
        bucket.swap_remove(at);
        if let Some(&moved) = bucket.get(at) {
            self.pos[moved as usize] = to_u32(at);
        }
        self.pos[index as usize] = NOWHERE;
    }

    fn add_partial(&mut self, index: u32) {
        if self.pos[index as usize] == NOWHERE {
            self.pos[index as usize] = to_u32(self.partial.len());
            self.partial.push(index);
        }
    }

    fn remove_partial(&mut self, index: u32) {
        let at = self.pos[index as usize];
        if at == NOWHERE {
            return;
        }
        self.partial.swap_remove(at as usize);
        if let Some(&moved) = self.partial.get(at as usize) {
            self.pos[moved as usize] = at;
        }
        self.pos[index as usize] = NOWHERE;
    }

    // ---- picking ----

    /// Appends up to `max_blocks` blocks to request from `peer` (who holds `theirs` and is not choking us) to
    /// `out`, marks them requested from it, and returns how many were added. See the module docs for the order.
    pub fn pick(
        &mut self,
        peer: PeerKey,
        theirs: &Bitfield,
        max_blocks: usize,
        rng: &mut impl Rng,
        out: &mut Vec<Block>,
    ) -> usize {
        self.pick_limited(peer, theirs, max_blocks, PickLimits::default(), rng, out)
    }

    /// [`Picker::pick`] within `limits`: a cap on new pieces, and parole.
    pub fn pick_limited(
        &mut self,
        peer: PeerKey,
        theirs: &Bitfield,
        max_blocks: usize,
        limits: PickLimits,
        rng: &mut impl Rng,
        out: &mut Vec<Block>,
    ) -> usize {
        let start = out.len();
        self.pick_partial(peer, theirs, start + max_blocks, limits.exclusive, out);
        if out.len() - start < max_blocks && self.unstarted > 0 && limits.new_pieces > 0 {
            self.pick_new(peer, theirs, start + max_blocks, limits, rng, out);
        }
        if out.len() - start < max_blocks && !limits.exclusive && self.unstarted == 0 && self.partial.is_empty() {
            self.pick_endgame(peer, theirs, start + max_blocks, out);
        }
        let entry = self.requests.entry(peer).or_default();
        for block in &out[start..] {
            *entry.entry(block.piece).or_default() += 1;
        }
        if entry.is_empty() {
            self.requests.remove(&peer);
        }
        out.len() - start
    }

    /// Strict priority: open blocks of started pieces the peer has, until `out` holds `limit` blocks. With
    /// `exclusive`, only the pieces the peer owns.
    fn pick_partial(&mut self, peer: PeerKey, theirs: &Bitfield, limit: usize, exclusive: bool, out: &mut Vec<Block>) {
        if self.sequential.is_some() {
            // In order: the started piece nearest the front first (a few, so sorting them costs little).
            let mut started: Vec<u32> = self.partial.clone();
            started.sort_unstable();
            for index in started {
                if out.len() >= limit {
                    break;
                }
                self.take_open_if_fits(index, peer, theirs, limit, exclusive, out);
            }
            return;
        }
        let mut i = 0;
        while i < self.partial.len() && out.len() < limit {
            let index = self.partial[i];
            self.take_open_if_fits(index, peer, theirs, limit, exclusive, out);
            // take_open swap-removes a piece whose last open slot it took; the piece now at `i` is unvisited.
            if self.partial.get(i) == Some(&index) {
                i += 1;
            }
        }
    }

    /// [`Picker::take_open`] on started piece `index` if `peer` has it and may be asked (with `exclusive`, only
    /// a piece it owns).
    fn take_open_if_fits(
        &mut self,
        index: u32,
        peer: PeerKey,
        theirs: &Bitfield,
        limit: usize,
        exclusive: bool,
        out: &mut Vec<Block>,
    ) {
        let fits = self
            .active
            .get(&index)
            .is_some_and(|piece| if exclusive { piece.owner == Some(peer) } else { piece.open_to(peer) });
        if fits && theirs.has(index) {
            self.take_open(index, peer, limit, out);
        }
    }

    /// Asks `peer` for open slots of a `Downloading` piece until `out` holds `limit` blocks.
    fn take_open(&mut self, index: u32, peer: PeerKey, limit: usize, out: &mut Vec<Block>) {
        let Some(piece) = self.active.get_mut(&index) else { return };
        piece.ask_open(self.geo, index, peer, limit, out);
        if piece.open == 0 {
            self.remove_partial(index);
        }
    }

    /// Starts new pieces the peer has until `out` holds `limit` blocks: rarest first, within the sequential window
    /// when there is one.
    fn pick_new(
        &mut self,
        peer: PeerKey,
        theirs: &Bitfield,
        limit: usize,
        limits: PickLimits,
        rng: &mut impl Rng,
        out: &mut Vec<Block>,
    ) {
        let mut chosen = std::mem::take(&mut self.scratch);
        chosen.clear();
        if let Some(window) = self.sequential {
            let n = self.num_pieces();
            while self.first_lacking < n && self.not_needed.has(self.first_lacking) {
                self.first_lacking += 1;
            }
            // Rarest first among the pieces of the window from the first piece we lack, not started yet, that the
            // peer has; then, to fill the peer's queue, the nearest pieces past the window in order, up to four
            // windows ahead. The peer's queue never runs dry while it has something we lack (nothing else would
            // ask again once the pieces in flight are in), and the started pieces are served front first.
            let unstarted = |from: u32, to: u32| {
                (from..to.min(n)).filter(|&i| self.state[i as usize] == State::Missing && theirs.has(i))
            };
            let window_end = self.first_lacking.saturating_add(window);
            chosen.extend(
                unstarted(self.first_lacking, window_end).map(|i| (self.availability[i as usize], rng.random(), i)),
            );
            chosen.sort_unstable();
            let ahead = self.first_lacking.saturating_add(window.saturating_mul(4));
            let room = (window as usize).saturating_sub(chosen.len());
            // Past the window in order: (0, 0, index) sorts nothing here, being appended after the sort.
            chosen.extend(unstarted(window_end, ahead).take(room).map(|i| (0, 0, i)));
        }
        if chosen.is_empty() && self.random_order {
            let missing = (0..self.num_pieces()).filter(|&i| self.state[i as usize] == State::Missing && theirs.has(i));
            chosen.extend(missing.map(|i| (0, rng.random(), i)));
            chosen.sort_unstable();
        }
        if chosen.is_empty() {
            self.rarest_new(theirs, limit - out.len(), rng, &mut chosen);
        }
        for (started, &(_, _, index)) in (0u32..).zip(&chosen) {
            if out.len() >= limit || started >= limits.new_pieces {
                break;
            }
            self.start(index);
            if limits.exclusive
                && let Some(piece) = self.active.get_mut(&index)
            {
                piece.owner = Some(peer);
            }
            self.take_open(index, peer, limit, out);
        }
        self.scratch = chosen;
    }

    /// Rarest first over the whole torrent: the `Missing` pieces `theirs` holds that cover `need` blocks, as
    /// (availability, random draw, index) in the order to start them.
    fn rarest_new(&self, theirs: &Bitfield, need: usize, rng: &mut impl Rng, chosen: &mut Vec<(u32, u32, u32)>) {
        // Walking the peer's bitfield costs about N / 8 byte steps plus one per piece it holds: that bounds the scan.
        let held = (theirs.count() as usize).max(1);
        let budget = theirs.len() as usize / 8 + held;
        // A scanned piece is the peer's with odds of about held / N, so a peer holding few pieces would exhaust
        // the budget anyway: send it straight to the walk.
        let need_pieces = need.div_ceil((self.geo.block_count(0) as usize).max(1));
        let mut over_budget = need_pieces.saturating_mul(theirs.len() as usize) / held > budget;
        let (mut blocks, mut scanned) = (0, 0);
        // Highest priority first. Bucket 0 holds pieces nobody is known to have; a peer that joined properly is
        // never served from it.
        let tiers = self.buckets.iter().rev().filter(|_| !over_budget);
        let buckets = tiers.flat_map(|tier| tier.get(1..).unwrap_or_default());
        'scan: for bucket in buckets.filter(|bucket| !bucket.is_empty()) {
            let from = rng.random_range(0..bucket.len());
            for &index in bucket[from..].iter().chain(&bucket[..from]) {
                if theirs.has(index) {
                    chosen.push((0, 0, index));
                    blocks += self.geo.block_count(index) as usize;
                    if blocks >= need {
                        break 'scan;
                    }
                }
                scanned += 1;
                if scanned > budget {
                    over_budget = true;
                    break 'scan;
                }
            }
        }
        if over_budget {
            // Cheaper to walk the peer's bitfield once: rank its missing pieces by (priority, availability, random
            // draw), the priority in the top bits of the first key.
            chosen.clear();
            let candidates = wanted(&self.we_have, theirs).filter(|&i| self.state[i as usize] == State::Missing);
            let rank = |i: u32| {
                let lower = u32::from(HIGH - self.priority[i as usize].min(HIGH));
                (lower << 30) | self.availability[i as usize].min((1 << 30) - 1)
            };
            chosen.extend(candidates.map(|i| (rank(i), rng.random(), i)));
            // Every piece has at least one block, so `need` pieces always cover `need` blocks.
            if chosen.len() > need {
                chosen.select_nth_unstable(need);
                chosen.truncate(need);
            }
            chosen.sort_unstable();
        }
    }

    /// Moves a `Missing` piece to `Downloading`, with every slot open.
    fn start(&mut self, index: u32) {
        self.unbucket(index, self.availability[index as usize]);
        self.unstarted -= 1;
        self.state[index as usize] = State::Downloading;
        self.active.insert(index, Active::new(self.geo.block_count(index)));
        self.add_partial(index);
    }

    /// Endgame: duplicates requests outstanding from one other peer, never a block already asked of two (a
    /// third copy wastes an uplink: in the simulator's flash crowd of 40, the third and later copies were 2 % of
    /// every byte sent).
    fn pick_endgame(&mut self, peer: PeerKey, theirs: &Bitfield, limit: usize, out: &mut Vec<Block>) {
        for (&index, piece) in &mut self.active {
            if self.state[index as usize] == State::Downloading && piece.open_to(peer) && theirs.has(index) {
                piece.ask_again(self.geo, index, peer, false, limit, out);
            }
        }
    }

    // ---- deliveries and returns ----

    /// Records a `piece` message from `peer`. See [`Received`] for what the caller does next.
    pub fn block_received(&mut self, peer: PeerKey, block: Block) -> Received {
        let Some(b) = self.slot_of(block) else { return Received::Unexpected };
        let index = block.piece;
        match self.state[index as usize] {
            State::Have | State::Hashing => return Received::Duplicate,
            State::Missing | State::Unwanted => return Received::Unexpected,
            State::Downloading => {}
        }
        let Some(piece) = self.active.get_mut(&index) else { return Received::Unexpected };
        if matches!(piece.slots[b], Slot::Got(_)) {
            return Received::Duplicate;
        }
        let Some(cancel) = piece.receive(b, peer) else { return Received::Unexpected };
        let piece_complete = piece.is_full();
        for &q in std::iter::once(&peer).chain(&cancel) {
            self.forget(q, index);
        }
        if piece_complete {
            self.state[index as usize] = State::Hashing;
            self.hashing += 1;
        }
        Received::New { cancel, piece_complete }
    }

    /// Lowers `peer`'s request count for piece `index` by one.
    fn forget(&mut self, peer: PeerKey, index: u32) {
        let Some(pieces) = self.requests.get_mut(&peer) else { return };
        if let Some(count) = pieces.get_mut(&index) {
            *count -= 1;
            if *count == 0 {
                pieces.remove(&index);
            }
        }
        if pieces.is_empty() {
            self.requests.remove(&peer);
        }
    }

    /// `peer` choked us: BEP 3 says it discards our requests, so they all go back to the pool. Returns them.
    pub fn peer_choked_us(&mut self, peer: PeerKey) -> Vec<Block> {
        // Pieces it owned on parole are open to everyone again: nobody else could finish them otherwise.
        for piece in self.active.values_mut() {
            if piece.owner == Some(peer) {
                piece.owner = None;
            }
        }
        let mut returned = Vec::new();
        let pieces = self.requests.remove(&peer).unwrap_or_default();
        for &index in pieces.keys() {
            let Some(piece) = self.active.get_mut(&index) else { continue };
            for b in 0..piece.slots.len() {
                if piece.release(b, peer) {
                    returned.push(self.geo.block(index, b));
                }
            }
            self.settle(index);
        }
        returned
    }

    /// A request to `peer` went unanswered too long: the block goes back to the pool (and may be picked for any
    /// peer, this one included). Returns whether the request was outstanding.
    pub fn request_timed_out(&mut self, peer: PeerKey, block: Block) -> bool {
        let Some(b) = self.slot_of(block) else { return false };
        let Some(piece) = self.active.get_mut(&block.piece) else { return false };
        if !piece.release(b, peer) {
            return false;
        }
        self.forget(peer, block.piece);
        self.settle(block.piece);
        true
    }

    /// After requests to a `Downloading` piece were returned: list it as partial if it has open slots, or send it
    /// back to `Missing` (and to rarest-first ordering) if nothing of it is requested or received any more.
    fn settle(&mut self, index: u32) {
        let Some(piece) = self.active.get(&index) else { return };
        if piece.open == 0 {
            return;
        }
        if piece.got == 0 && piece.requested() == 0 {
            self.active.remove(&index);
            self.remove_partial(index);
            self.make_missing(index);
        } else {
            self.add_partial(index);
        }
    }

    fn make_missing(&mut self, index: u32) {
        if !self.is_wanted(index) {
            self.make_unwanted(index);
            return;
        }
        self.state[index as usize] = State::Missing;
        self.unstarted += 1;
        self.bucket(index);
    }

    // ---- verification ----

    /// The hash of a complete piece matched: it is ours. Returns false (and changes nothing) unless the piece was
    /// waiting for its hash.
    pub fn piece_verified(&mut self, index: u32) -> bool {
        if self.state.get(index as usize) != Some(&State::Hashing) {
            return false;
        }
        self.active.remove(&index);
        self.hashing -= 1;
        self.set_have(index);
        true
    }

    /// The hash of a complete piece did not match: every block goes back to the pool. Returns the peers that sent
    /// its blocks, ascending and without repeats, for the caller's ban accounting; empty unless the piece was
    /// waiting for its hash.
    pub fn piece_failed(&mut self, index: u32) -> Vec<PeerKey> {
        if self.state.get(index as usize) != Some(&State::Hashing) {
            return Vec::new();
        }
        let contributors = self.active.remove(&index).map(|piece| piece.contributors()).unwrap_or_default();
        self.hashing -= 1;
        self.make_missing(index);
        contributors
    }

    /// Piece `index` was found valid on disk (resume). Meant for start-up: requests still outstanding for it are
    /// forgotten without a CANCEL. Returns whether it was not held before.
    pub fn mark_have(&mut self, index: u32) -> bool {
        match self.state.get(index as usize) {
            None | Some(State::Have) => return false,
            Some(State::Unwanted) => self.unwanted -= 1,
            Some(State::Missing) => {
                self.unbucket(index, self.availability[index as usize]);
                self.unstarted -= 1;
            }
            Some(state @ (State::Downloading | State::Hashing)) => {
                if *state == State::Hashing {
                    self.hashing -= 1;
                }
                self.remove_partial(index);
                let slots = self.active.remove(&index).map(|piece| piece.slots).unwrap_or_default();
                for q in slots.iter().flat_map(Slot::requesters) {
                    self.forget(*q, index);
                }
            }
        }
        self.set_have(index);
        true
    }

    fn set_have(&mut self, index: u32) {
        self.state[index as usize] = State::Have;
        // The index is in range: every caller checked `state` first.
        let _newly_set = self.we_have.set(index);
        let _ = self.not_needed.set(index);
        self.have_bytes += u64::from(self.geo.piece_len(index));
    }
}

/// Pieces `theirs` holds and `ours` lacks, ascending, 64 at a time: a peer holding few pieces costs about N / 64
/// word steps. Bitfields keep piece 0 in the high bit of byte 0, so a big-endian word keeps piece order.
fn wanted<'a>(ours: &'a Bitfield, theirs: &'a Bitfield) -> impl Iterator<Item = u32> + 'a {
    let words = |bytes: &'a [u8]| {
        let exact = bytes.chunks_exact(8);
        let tail = exact.remainder();
        let last = (!tail.is_empty()).then(|| {
            let mut word = [0; 8];
            word[..tail.len()].copy_from_slice(tail);
            u64::from_be_bytes(word)
        });
        exact.map(|chunk| u64::from_be_bytes(chunk.try_into().unwrap_or_default())).chain(last)
    };
    let pairs = words(ours.as_bytes()).zip(words(theirs.as_bytes()));
    (0u32..).zip(pairs).map(|(w, (o, t))| (w, t & !o)).filter(|&(_, left)| left != 0).flat_map(|(w, mut left)| {
        std::iter::from_fn(move || {
            let bit = (left != 0).then(|| left.leading_zeros())?;
            left &= !(1 << (63 - bit));
            Some(w * 64 + bit)
        })
    })
}

#[cfg(test)]
#[path = "picker_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "picker_sim_tests.rs"]
mod sim_tests;
