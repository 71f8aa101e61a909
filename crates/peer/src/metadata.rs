//! The bookkeeping of a metadata fetch (BEP 9), apart from any I/O: which peer asks for which piece of the info
//! dictionary, what to do with what each sends, who to blame when the whole does not match the info-hash, and
//! which peers have had their chance. Time is passed in.
//!
//! Peers can disagree on the size (a liar, or a peer of another torrent under a forged hash), so each size
//! offered gets an attempt of its own, a few at most. An attempt lives while a connected peer offers its size: it
//! dies with its last peer, and its memory is given back when it fails its check. A new size is never refused:
//! when every slot is taken, an attempt without peers (else the oldest) makes room. Memory is claimed as data
//! arrives, and all attempts together hold at most [`MAX_HELD`] bytes, smaller sizes first: a larger size is
//! asked for only while it fits beside what the smaller ones hold, so liars' sizes go one at a time and cannot
//! starve a smaller honest one, and a made-up size costs what was sent, never more than one whole fetch.
//!
//! Pieces are spread over the peers, one peer per piece until every piece is asked for, then the missing ones
//! are asked of a second peer too. An ask counts for [`PIECE_TIMEOUT`]; then the piece is asked elsewhere, and a
//! peer with nothing in flight may take any missing piece, however often it was asked. Only data that was asked
//! of a peer is stored, and only that renews the peer's [`PATIENCE`]; a peer that has delivered nothing gives way
//! after [`ROTATE_AFTER`] to a candidate waiting for a connection slot ([`MetadataFetch::to_rotate`]).
//!
//! The whole is checked by SHA-1 against a v1 info-hash, by SHA-256 against a v2 one (BEP 52), by both for a
//! hybrid link. When it fails its check, a lone sender is struck off; several senders cannot be told apart, so
//! from then on each attempt is fetched from one peer alone (handed on when it stalls for [`PIECE_TIMEOUT`]),
//! which pins the next failure on its sender.
//!
//! A v2 or hybrid dictionary (BEP 52) then needs the piece layers of its files longer than one piece:
//! [`LayerFetch`] spreads their hash requests over the peers and checks each answer's proof up to the file's root.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

// The runtime's clock, not the wall's: a simulation runs this code in virtual time.
use tokio::time::Instant;

use metainfo::LayersWanted;
use metainfo::merkle::Hash32;
use metainfo::merkle_proof::{HashRange, ProofError, piece_layer_requests, verify_hashes};
use peer_wire::{ExtensionError, MetadataAssembler, MetadataProgress};

/// Largest metadata we fetch: 32 MiB. The info dictionary of a torrent of millions of pieces fits; a peer that
/// claims more is refused before anything is allocated.
pub const MAX_METADATA_SIZE: u32 = 32 << 20;
/// Bytes all attempts together may hold: one largest dictionary and some room for the small ones beside it.
pub const MAX_HELD: usize = MAX_METADATA_SIZE as usize + (2 << 20);
/// Pieces asked of one peer at a time.
pub const REQUESTS_PER_PEER: usize = 4;
/// Different sizes fetched side by side at most.
pub const MAX_SIZES: usize = 4;
/// A piece is asked of at most this many peers at once (but see [`MetadataFetch::next_requests`] for idle peers).
const MAX_ASKED: u8 = 2;
/// An unanswered ask stops counting after this long: the piece is asked of someone else.
pub const PIECE_TIMEOUT: Duration = Duration::from_secs(5);
/// A peer that delivers nothing asked of it for this long (since it connected, or since its last delivery) is
/// dropped.
pub const PATIENCE: Duration = Duration::from_secs(20);
/// A peer that has delivered nothing this long after connecting gives way to a waiting candidate.
pub const ROTATE_AFTER: Duration = Duration::from_secs(5);

/// Why a peer is dropped from the fetch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("it offers {size} bytes of metadata, more than the {MAX_METADATA_SIZE}-byte cap")]
    TooLarge { size: u64 },
    #[error("it offers 0 bytes of metadata")]
    Empty,
    #[error("it sent metadata that does not match the info-hash")]
    Mismatch,
    #[error("bad ut_metadata data: {0}")]
    BadData(ExtensionError),
}

/// What a piece of data did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Not asked of this peer (or already answered): dropped, and it counts for nothing.
    Ignored,
    /// Asked of this peer, and kept (or another peer's copy came first): go on.
    Stored,
    /// The metadata is complete and matches the info-hash.
    Complete(Vec<u8>),
    /// The whole failed its check and starts over; these peers sent its pieces. When there is one, it is banned.
    Failed { senders: Vec<SocketAddr> },
}

/// What the assembled info dictionary must hash to: every hash given must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InfoCheck {
    /// The v1 info-hash: the SHA-1 of the info dictionary.
    pub v1: Option<[u8; 20]>,
    /// The v2 info-hash (BEP 52): its SHA-256.
    pub v2: Option<[u8; 32]>,
}

#[derive(Debug)]
struct Attempt {
    assembler: MetadataAssembler,
    /// Who sent each piece in hand.
    senders: Vec<Option<SocketAddr>>,
    /// In single-source mode, the one peer fetching this attempt, and when it last delivered (or took over).
    owner: Option<(SocketAddr, Instant)>,
    /// Order of creation: the oldest is evicted when a new size needs its slot.
    born: u64,
}

impl Attempt {
    fn restart(&mut self) {
        self.assembler.clear();
        self.senders.fill(None);
    }
}

#[derive(Debug)]
struct Fetcher {
    /// The size its extended handshake offered, once it came.
    size: Option<u32>,
    /// Pieces asked of it and not answered, with when.
    asked: Vec<(u32, Instant)>,
    /// When it connected.
    since: Instant,
    /// When it connected or last delivered a piece asked of it.
    progress: Instant,
    /// Pieces asked of it that it delivered.
    delivered: u32,
}

/// One torrent's metadata fetch.
#[derive(Debug)]
pub struct MetadataFetch {
    check: InfoCheck,
    attempts: Vec<Attempt>,
    born: u64,
    peers: HashMap<SocketAddr, Fetcher>,
    banned: HashSet<SocketAddr>,
    /// After a failure with several senders: one peer per attempt.
    single_source: bool,
    done: bool,
}

impl MetadataFetch {
    /// A fetch checked by SHA-1 against a v1 info-hash.
    #[must_use]
    pub fn new(info_hash: [u8; 20]) -> Self {
        Self::with_check(InfoCheck { v1: Some(info_hash), v2: None })
    }

    /// A fetch checked by `check` (a v2 hash, or both of a hybrid).
    #[must_use]
    pub fn with_check(check: InfoCheck) -> Self {
        Self {
            check,
            attempts: Vec::new(),
            born: 0,
            peers: HashMap::new(),
            banned: HashSet::new(),
            single_source: false,
            done: false,
        }
    }

    /// Whether `addr` sent bad metadata or offered an impossible size: it is not dialled again.
    #[must_use]
    pub fn is_banned(&self, addr: SocketAddr) -> bool {
        self.banned.contains(&addr)
    }

    #[must_use]
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Bytes of metadata held by all attempts together (at most [`MAX_HELD`] plus one piece in transit).
    #[must_use]
    pub fn held(&self) -> usize {
        self.attempts.iter().map(|attempt| attempt.assembler.held()).sum()
    }

    /// Sizes being fetched (at most [`MAX_SIZES`]).
    #[must_use]
    pub fn attempts(&self) -> usize {
        self.attempts.len()
    }

    /// `addr` is connected (its handshake is through): its patience starts now.
    pub fn connected(&mut self, addr: SocketAddr, now: Instant) {
        self.peers.entry(addr).or_insert(Fetcher {
            size: None,
            asked: Vec::new(),
            since: now,
            progress: now,
            delivered: 0,
        });
    }

    /// `addr`'s extended handshake said `metadata_size`: it joins the attempt of that size, which is started if
    /// need be (making room, if every slot is taken, by evicting one without peers, else the oldest).
    ///
    /// # Errors
    ///
    /// A size of 0, or over [`MAX_METADATA_SIZE`] (the peer is banned).
    pub fn join(&mut self, addr: SocketAddr, size: u64, now: Instant) -> Result<(), Refusal> {
        let size = match u32::try_from(size) {
            Ok(0) => return Err(Refusal::Empty),
            Ok(size) if size <= MAX_METADATA_SIZE => size,
            _ => {
                self.banned.insert(addr);
                return Err(Refusal::TooLarge { size });
            }
        };
        self.connected(addr, now);
        self.forget_asks(addr);
        let previous = self.peers.get_mut(&addr).and_then(|peer| peer.size.replace(size));
        if let Some(previous) = previous.filter(|&previous| previous != size) {
            self.drop_if_unwanted(previous);
        }
        if !self.attempts.iter().any(|attempt| attempt.assembler.size() == size) {
            if self.attempts.len() >= MAX_SIZES {
                let evict = self
                    .attempts
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, attempt)| (self.offered(attempt.assembler.size()), attempt.born))
                    .map(|(at, _)| at);
                if let Some(at) = evict {
                    let gone = self.attempts.swap_remove(at);
                    tracing::debug!(size = gone.assembler.size(), "metadata attempt evicted for a new size");
                }
            }
            self.start_attempt(size);
        }
        Ok(())
    }

    /// Whether any connected peer offers `size`.
    fn offered(&self, size: u32) -> bool {
        self.peers.values().any(|peer| peer.size == Some(size))
    }

    /// Starts an attempt of `size` (checked against the cap already).
    fn start_attempt(&mut self, size: u32) -> bool {
        let Ok(assembler) = MetadataAssembler::with_hashes(self.check.v1, self.check.v2, size, MAX_METADATA_SIZE)
        else {
            return false;
        };
        let pieces = assembler.piece_count() as usize;
        self.born += 1;
        self.attempts.push(Attempt { assembler, senders: vec![None; pieces], owner: None, born: self.born });
        true
    }

    /// Drops the attempt of `size` if no connected peer offers it: its memory goes with it.
    fn drop_if_unwanted(&mut self, size: u32) {
        if !self.offered(size) {
            self.attempts.retain(|attempt| attempt.assembler.size() != size);
        }
    }

    /// Forgets what `addr` was asked (it is gone, or offers another size).
    fn forget_asks(&mut self, addr: SocketAddr) {
        if let Some(peer) = self.peers.get_mut(&addr) {
            peer.asked.clear();
        }
        for attempt in &mut self.attempts {
            if attempt.owner.is_some_and(|(owner, _)| owner == addr) {
                attempt.owner = None;
            }
        }
    }

    /// Pieces to ask `addr` for now (it has joined): up to [`REQUESTS_PER_PEER`] in flight, pieces nobody is
    /// asked for first, then those asked of one peer. A peer with nothing in flight takes the least asked missing
    /// piece whatever its count, so peers that never answer cannot hold every piece away from one that would.
    pub fn next_requests(&mut self, addr: SocketAddr, now: Instant) -> Vec<u32> {
        if self.done {
            return Vec::new();
        }
        let Some(size) = self.peers.get(&addr).and_then(|peer| peer.size) else { return Vec::new() };
        if !self.attempts.iter().any(|attempt| attempt.assembler.size() == size)
            && (self.attempts.len() >= MAX_SIZES || !self.start_attempt(size))
        {
            // Its attempt was evicted and every slot is busy: it waits for one to free.
            return Vec::new();
        }
        // Asks in force per piece of this size.
        let mut in_force: HashMap<u32, u8> = HashMap::new();
        for peer in self.peers.values().filter(|peer| peer.size == Some(size)) {
            for &(piece, at) in &peer.asked {
                if now.saturating_duration_since(at) < PIECE_TIMEOUT {
                    *in_force.entry(piece).or_default() += 1;
                }
            }
        }
        // Memory goes to the smaller sizes first: an attempt asks only while what the smaller ones hold and what
        // it still needs fit in the budget. The liars' sizes then go one at a time (each fails its check and gives
        // its memory back), and none of them can keep a smaller, honest size from its pieces.
        let ahead: usize = self
            .attempts
            .iter()
            .filter(|attempt| attempt.assembler.size() < size)
            .map(|attempt| attempt.assembler.held())
            .sum();
        let single_source = self.single_source;
        let (Some(peer), Some(attempt)) =
            (self.peers.get_mut(&addr), self.attempts.iter_mut().find(|attempt| attempt.assembler.size() == size))
        else {
            return Vec::new();
        };
        let needs = (size as usize).saturating_sub(attempt.assembler.held());
        if single_source {
            match attempt.owner {
                Some((owner, _)) if owner == addr => {}
                Some((_, last)) if now.saturating_duration_since(last) < PIECE_TIMEOUT => return Vec::new(),
                // No owner, or one that stalled: this peer takes over.
                _ => attempt.owner = Some((addr, now)),
            }
        }
        let room = if ahead + needs > MAX_HELD { 0 } else { REQUESTS_PER_PEER.saturating_sub(peer.asked.len()) };
        let mut picked: Vec<u32> = Vec::new();
        let not_asked_here = |piece: &u32, peer: &Fetcher| !peer.asked.iter().any(|&(asked, _)| asked == *piece);
        for round in 0..MAX_ASKED {
            if picked.len() >= room {
                break;
            }
            let candidates: Vec<u32> = attempt
                .assembler
                .missing()
                .filter(|piece| {
                    in_force.get(piece).copied().unwrap_or(0) == round
                        && not_asked_here(piece, peer)
                        && !picked.contains(piece)
                })
                .take(room - picked.len())
                .collect();
            picked.extend(candidates);
        }
        if picked.is_empty() && peer.asked.is_empty() && room > 0 {
            let least = attempt.assembler.missing().min_by_key(|piece| in_force.get(piece).copied().unwrap_or(0));
            picked.extend(least);
        }
        peer.asked.extend(picked.iter().map(|&piece| (piece, now)));
        picked
    }

    /// `addr` sent piece `piece` of `total_size` bytes.
    ///
    /// # Errors
    ///
    /// Data that does not fit the attempt (wrong total size, piece or length): the peer is to be dropped.
    pub fn data(
        &mut self,
        addr: SocketAddr,
        piece: u32,
        total_size: u32,
        block: &[u8],
        now: Instant,
    ) -> Result<Received, Refusal> {
        let Some(peer) = self.peers.get_mut(&addr) else { return Ok(Received::Ignored) };
        let Some(position) = peer.asked.iter().position(|&(asked, _)| asked == piece) else {
            // Not asked of this peer (or asked and already answered): not ours to store, and no sign of life.
            return Ok(Received::Ignored);
        };
        peer.asked.swap_remove(position);
        let Some(size) = peer.size else { return Ok(Received::Ignored) };
        let Some(at) = self.attempts.iter().position(|attempt| attempt.assembler.size() == size) else {
            return Ok(Received::Ignored);
        };
        let attempt = &mut self.attempts[at];
        let progress = attempt.assembler.add(piece, total_size, block);
        if progress.is_ok() {
            peer.progress = now;
            peer.delivered = peer.delivered.saturating_add(1);
            if let Some((owner, last)) = attempt.owner.as_mut()
                && *owner == addr
            {
                *last = now;
            }
        }
        match progress {
            Ok(MetadataProgress::Stored) => {
                attempt.senders[piece as usize] = Some(addr);
                self.keep_within_budget();
                Ok(Received::Stored)
            }
            Ok(MetadataProgress::Duplicate) => Ok(Received::Stored),
            Ok(MetadataProgress::Complete) => {
                self.done = true;
                Ok(Received::Complete(attempt.assembler.metadata().unwrap_or_default().to_vec()))
            }
            Err(ExtensionError::MetadataHashMismatch) => {
                attempt.senders[piece as usize] = Some(addr);
                let mut senders: Vec<SocketAddr> = attempt.senders.iter().flatten().copied().collect();
                senders.sort_unstable();
                senders.dedup();
                attempt.restart();
                attempt.owner = None;
                if let [liar] = senders[..] {
                    self.banned.insert(liar);
                    self.leave(liar);
                } else {
                    self.single_source = true;
                }
                Ok(Received::Failed { senders })
            }
            Err(err) => Err(Refusal::BadData(err)),
        }
    }

    /// Past [`MAX_HELD`] (pieces asked before a smaller size took the memory), the largest sizes holding any
    /// start over until the rest fits.
    fn keep_within_budget(&mut self) {
        while self.held() > MAX_HELD {
            let largest = self
                .attempts
                .iter_mut()
                .filter(|attempt| attempt.assembler.held() > 0)
                .max_by_key(|attempt| attempt.assembler.size());
            let Some(attempt) = largest else { return };
            tracing::debug!(size = attempt.assembler.size(), "metadata attempt restarted to stay within memory");
            attempt.restart();
        }
    }

    /// `addr` refused piece `piece` (or will never send it): someone else is asked.
    pub fn rejected(&mut self, addr: SocketAddr, piece: u32) {
        if let Some(peer) = self.peers.get_mut(&addr)
            && let Some(position) = peer.asked.iter().position(|&(asked, _)| asked == piece)
        {
            peer.asked.swap_remove(position);
        }
    }

    /// `addr` is gone: what it was asked for goes back to the others, and the attempt of its size dies with it if
    /// nobody else offers that size.
    pub fn leave(&mut self, addr: SocketAddr) {
        self.forget_asks(addr);
        let Some(peer) = self.peers.remove(&addr) else { return };
        if let Some(size) = peer.size {
            self.drop_if_unwanted(size);
        }
    }

    /// Whether a failed check with several senders made each attempt the business of one peer at a time.
    #[must_use]
    pub fn is_single_source(&self) -> bool {
        self.single_source
    }

    /// Whether the size `addr` offered is being fetched (its attempt was not evicted for want of a slot).
    #[must_use]
    pub fn has_attempt(&self, addr: SocketAddr) -> bool {
        let size = self.peers.get(&addr).and_then(|peer| peer.size);
        size.is_some_and(|size| self.attempts.iter().any(|attempt| attempt.assembler.size() == size))
    }

    /// Whether `addr` has pieces asked and unanswered.
    #[must_use]
    pub fn is_waiting_on(&self, addr: SocketAddr) -> bool {
        self.peers.get(&addr).is_some_and(|peer| !peer.asked.is_empty())
    }

    /// When `addr` runs out of patience unless it delivers something asked of it first.
    #[must_use]
    pub fn deadline(&self, addr: SocketAddr) -> Option<Instant> {
        self.peers.get(&addr).map(|peer| peer.progress + PATIENCE)
    }

    /// Whether `addr` has delivered nothing asked of it for [`PATIENCE`] by `now`: it is to be dropped.
    #[must_use]
    pub fn is_stalled(&self, addr: SocketAddr, now: Instant) -> bool {
        self.deadline(addr).is_some_and(|deadline| now >= deadline)
    }

    /// Up to `waiting` peers to drop so that as many waiting candidates get a connection: those that have
    /// delivered nothing though connected for [`ROTATE_AFTER`], the longest connected first.
    #[must_use]
    pub fn to_rotate(&self, now: Instant, waiting: usize) -> Vec<SocketAddr> {
        let mut idle: Vec<(Instant, SocketAddr)> = self
            .peers
            .iter()
            .filter(|(_, peer)| peer.delivered == 0 && now.saturating_duration_since(peer.since) >= ROTATE_AFTER)
            .map(|(&addr, peer)| (peer.since, addr))
            .collect();
        idle.sort_unstable();
        idle.into_iter().take(waiting).map(|(_, addr)| addr).collect()
    }
}

/// Hash requests in flight to one peer at a time, while fetching piece layers.
pub const HASH_REQUESTS_PER_PEER: usize = 8;

/// What a `hashes` message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerProgress {
    /// Not asked of this peer (or already answered): ignored.
    Ignored,
    /// Verified and kept.
    Stored,
    /// That was the last one: [`LayerFetch::layers`] has every layer.
    Complete,
}

/// One request of a file's layer and its verified answer.
#[derive(Debug)]
struct Chunk {
    root: Hash32,
    file_length: u64,
    range: HashRange,
    hashes: Option<Vec<Hash32>>,
    asked: Option<SocketAddr>,
    /// Peers that sent a `hash reject` for it: not asked again.
    refused_by: Vec<SocketAddr>,
}

/// The piece layers of a v2 info dictionary (BEP 52), fetched with hash requests once the dictionary checks out:
/// each file longer than one piece, in the requests of [`piece_layer_requests`] (proofs up to the file's root, so
/// each answer is checked alone by [`verify_hashes`]). One peer per request at a time; a peer whose proof fails is
/// banned from the fetch; one that rejects a request is not asked it again. What is asked is fixed by the verified
/// dictionary, so the whole is bounded by its files' piece counts.
#[derive(Debug)]
pub struct LayerFetch {
    chunks: Vec<Chunk>,
    missing: usize,
    in_flight: HashMap<SocketAddr, usize>,
    banned: HashSet<SocketAddr>,
}

impl LayerFetch {
    #[must_use]
    pub fn new(wanted: &LayersWanted) -> Self {
        let chunks: Vec<Chunk> = wanted
            .files
            .iter()
            .flat_map(|&(root, file_length)| {
                piece_layer_requests(file_length, wanted.piece_length).into_iter().map(move |range| Chunk {
                    root,
                    file_length,
                    range,
                    hashes: None,
                    asked: None,
                    refused_by: Vec::new(),
                })
            })
            .collect();
        Self { missing: chunks.len(), chunks, in_flight: HashMap::new(), banned: HashSet::new() }
    }

    #[must_use]
    pub fn is_done(&self) -> bool {
        self.missing == 0
    }

    /// Whether `addr` sent a bad proof: it is not asked for hashes again.
    #[must_use]
    pub fn is_banned(&self, addr: SocketAddr) -> bool {
        self.banned.contains(&addr)
    }

    /// Requests to send `addr` now: up to [`HASH_REQUESTS_PER_PEER`] in flight, each asked of one peer at a time.
    pub fn next_requests(&mut self, addr: SocketAddr) -> Vec<(Hash32, HashRange)> {
        if self.banned.contains(&addr) {
            return Vec::new();
        }
        let in_flight = self.in_flight.entry(addr).or_default();
        let mut picked = Vec::new();
        for chunk in &mut self.chunks {
            if *in_flight >= HASH_REQUESTS_PER_PEER {
                break;
            }
            if chunk.hashes.is_none() && chunk.asked.is_none() && !chunk.refused_by.contains(&addr) {
                chunk.asked = Some(addr);
                *in_flight += 1;
                picked.push((chunk.root, chunk.range));
            }
        }
        picked
    }

    /// Whether `addr` has requests unanswered, or some it could still be asked.
    #[must_use]
    pub fn has_work_for(&self, addr: SocketAddr) -> bool {
        !self.banned.contains(&addr)
            && self.chunks.iter().any(|chunk| {
                chunk.asked == Some(addr)
                    || (chunk.hashes.is_none() && chunk.asked.is_none() && !chunk.refused_by.contains(&addr))
            })
    }

    /// `addr` sent `hashes` for `range` of the file whose root is `root`.
    ///
    /// # Errors
    ///
    /// The proof does not check out against the root (or the count is wrong): `addr` is banned and what it was
    /// asked goes back to the others.
    pub fn hashes(
        &mut self,
        addr: SocketAddr,
        root: &Hash32,
        range: &HashRange,
        hashes: &[u8],
    ) -> Result<LayerProgress, ProofError> {
        let Some(chunk) = self.chunks.iter_mut().find(|chunk| {
            chunk.asked == Some(addr) && chunk.root == *root && chunk.range == *range && chunk.hashes.is_none()
        }) else {
            return Ok(LayerProgress::Ignored);
        };
        match verify_hashes(root, chunk.file_length, range, hashes) {
            Ok(verified) => {
                chunk.hashes = Some(verified);
                chunk.asked = None;
                if let Some(in_flight) = self.in_flight.get_mut(&addr) {
                    *in_flight = in_flight.saturating_sub(1);
                }
                self.missing -= 1;
                Ok(if self.missing == 0 { LayerProgress::Complete } else { LayerProgress::Stored })
            }
            Err(err) => {
                self.banned.insert(addr);
                self.leave(addr);
                Err(err)
            }
        }
    }

    /// `addr` sent a `hash reject` for `range` of `root`: another peer is asked.
    pub fn rejected(&mut self, addr: SocketAddr, root: &Hash32, range: &HashRange) {
        if let Some(chunk) = self
            .chunks
            .iter_mut()
            .find(|chunk| chunk.asked == Some(addr) && chunk.root == *root && chunk.range == *range)
        {
            chunk.asked = None;
            chunk.refused_by.push(addr);
            if let Some(in_flight) = self.in_flight.get_mut(&addr) {
                *in_flight = in_flight.saturating_sub(1);
            }
        }
    }

    /// `addr` is gone: what it was asked goes back to the others.
    pub fn leave(&mut self, addr: SocketAddr) {
        for chunk in self.chunks.iter_mut().filter(|chunk| chunk.asked == Some(addr)) {
            chunk.asked = None;
        }
        self.in_flight.remove(&addr);
    }

    /// Every file's piece layer keyed by its root, once all are in.
    #[must_use]
    pub fn layers(&self) -> Option<BTreeMap<Hash32, Vec<Hash32>>> {
        self.is_done().then(|| self.proven_layers())
    }

    /// The piece layers proven so far, keyed by root: those of the files whose every request is answered (a part
    /// of a layer is no layer). What a hybrid falls back on when peers will not send the rest.
    #[must_use]
    pub fn proven_layers(&self) -> BTreeMap<Hash32, Vec<Hash32>> {
        let mut layers: BTreeMap<Hash32, Vec<Hash32>> = BTreeMap::new();
        let mut partial = HashSet::new();
        for chunk in &self.chunks {
            match &chunk.hashes {
                Some(hashes) => layers.entry(chunk.root).or_default().extend(hashes),
                None => {
                    partial.insert(chunk.root);
                }
            }
        }
        layers.retain(|root, _| !partial.contains(root));
        layers
    }

    /// Files (roots) whose layer is not wholly proven yet.
    #[must_use]
    pub fn files_missing(&self) -> usize {
        self.chunks.iter().filter(|chunk| chunk.hashes.is_none()).map(|chunk| chunk.root).collect::<HashSet<_>>().len()
    }
}

#[cfg(test)]
#[path = "metadata_tests.rs"]
mod tests;
