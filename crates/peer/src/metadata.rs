//! The bookkeeping of a metadata fetch (BEP 9), apart from any I/O: which peer asks for which piece of the info
//! dictionary, what to do with what each sends, and who to blame when the whole does not match the info-hash.
//!
//! Peers can disagree on the size (a liar, or a peer of another torrent under a forged hash), so each size
//! offered gets an assembler of its own, a few at most. Pieces are spread over the peers, one peer per piece until
//! every piece is asked for, then the missing ones are asked of a second peer too. The whole is checked by SHA-1
//! against a v1 info-hash, by SHA-256 against a v2 one (BEP 52), by both for a hybrid link. When it fails its
//! check, a lone sender is struck off; several senders cannot be told apart, so from then on each attempt is
//! fetched from one peer alone, which pins the next failure on its sender.
//!
//! A v2 or hybrid dictionary (BEP 52) then needs the piece layers of its files longer than one piece:
//! [`LayerFetch`] spreads their hash requests over the peers and checks each answer's proof up to the file's root.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;

use metainfo::LayersWanted;
use metainfo::merkle::Hash32;
use metainfo::merkle_proof::{HashRange, ProofError, piece_layer_requests, verify_hashes};
use peer_wire::{ExtensionError, MetadataAssembler, MetadataProgress};

/// Largest metadata we fetch: 32 MiB. The info dictionary of a torrent of millions of pieces fits; a peer that
/// claims more is refused before anything is allocated.
pub const MAX_METADATA_SIZE: u32 = 32 << 20;
/// Pieces asked of one peer at a time.
pub const REQUESTS_PER_PEER: usize = 4;
/// Different sizes fetched side by side at most; peers offering yet another are turned away.
const MAX_SIZES: usize = 4;
/// A piece is asked of at most this many peers at once.
const MAX_ASKED: u8 = 2;

/// Why a peer is dropped from the fetch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("it offers {size} bytes of metadata, more than the {MAX_METADATA_SIZE}-byte cap")]
    TooLarge { size: u64 },
    #[error("it offers 0 bytes of metadata")]
    Empty,
    #[error("it offers metadata of yet another size ({size} bytes) while {MAX_SIZES} sizes are being fetched")]
    TooManySizes { size: u32 },
    #[error("it sent metadata that does not match the info-hash")]
    Mismatch,
    #[error("bad ut_metadata data: {0}")]
    BadData(ExtensionError),
}

/// What a piece of data did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Kept (or a duplicate, or not asked for): go on.
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
    /// Peers each missing piece is asked of right now.
    asked: Vec<u8>,
    /// Who sent each piece in hand.
    senders: Vec<Option<SocketAddr>>,
    /// In single-source mode, the one peer fetching this attempt.
    owner: Option<SocketAddr>,
}

#[derive(Debug, Default)]
struct Fetcher {
    size: u32,
    asked: Vec<u32>,
}

/// One torrent's metadata fetch.
#[derive(Debug)]
pub struct MetadataFetch {
    check: InfoCheck,
    attempts: Vec<Attempt>,
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

    /// `addr`'s extended handshake said `metadata_size`: it joins the attempt of that size.
    ///
    /// # Errors
    ///
    /// A size of 0, over [`MAX_METADATA_SIZE`] (the peer is banned), or one size too many.
    pub fn join(&mut self, addr: SocketAddr, size: u64) -> Result<(), Refusal> {
        let size = match u32::try_from(size) {
            Ok(0) => return Err(Refusal::Empty),
            Ok(size) if size <= MAX_METADATA_SIZE => size,
            _ => {
                self.banned.insert(addr);
                return Err(Refusal::TooLarge { size });
            }
        };
        if !self.attempts.iter().any(|attempt| attempt.assembler.size() == size) {
            if self.attempts.len() >= MAX_SIZES {
                return Err(Refusal::TooManySizes { size });
            }
            let Ok(assembler) = MetadataAssembler::with_hashes(self.check.v1, self.check.v2, size, MAX_METADATA_SIZE)
            else {
                return Err(Refusal::TooLarge { size: size.into() });
            };
            let pieces = assembler.piece_count() as usize;
            self.attempts.push(Attempt { assembler, asked: vec![0; pieces], senders: vec![None; pieces], owner: None });
        }
        self.leave(addr);
        self.peers.insert(addr, Fetcher { size, asked: Vec::new() });
        Ok(())
    }

    /// Pieces to ask `addr` for now (it has joined): up to [`REQUESTS_PER_PEER`] in flight, pieces nobody was asked
    /// for first.
    pub fn next_requests(&mut self, addr: SocketAddr) -> Vec<u32> {
        let single_source = self.single_source;
        let Some(peer) = self.peers.get_mut(&addr) else { return Vec::new() };
        let Some(attempt) = self.attempts.iter_mut().find(|attempt| attempt.assembler.size() == peer.size) else {
            return Vec::new();
        };
        if self.done || (single_source && attempt.owner.is_some_and(|owner| owner != addr)) {
            return Vec::new();
        }
        if single_source {
            attempt.owner = Some(addr);
        }
        let room = REQUESTS_PER_PEER.saturating_sub(peer.asked.len());
        let mut picked = Vec::new();
        for round in 0..MAX_ASKED {
            let candidates: Vec<u32> = attempt
                .assembler
                .missing()
                .filter(|&piece| attempt.asked[piece as usize] == round && !peer.asked.contains(&piece))
                .take(room - picked.len())
                .collect();
            picked.extend(candidates);
            if picked.len() == room {
                break;
            }
        }
        for &piece in &picked {
            attempt.asked[piece as usize] += 1;
            peer.asked.push(piece);
        }
        picked
    }

    /// `addr` sent piece `piece` of `total_size` bytes.
    ///
    /// # Errors
    ///
    /// Data that does not fit the attempt (wrong total size, piece or length): the peer is to be dropped.
    pub fn data(&mut self, addr: SocketAddr, piece: u32, total_size: u32, block: &[u8]) -> Result<Received, Refusal> {
        let Some(peer) = self.peers.get_mut(&addr) else { return Ok(Received::Stored) };
        let Some(position) = peer.asked.iter().position(|&asked| asked == piece) else {
            // Not asked of this peer (or asked and already answered): not ours to store.
            return Ok(Received::Stored);
        };
        peer.asked.swap_remove(position);
        let Some(attempt) = self.attempts.iter_mut().find(|attempt| attempt.assembler.size() == peer.size) else {
            return Ok(Received::Stored);
        };
        if let Some(asked) = attempt.asked.get_mut(piece as usize) {
            *asked = asked.saturating_sub(1);
        }
        match attempt.assembler.add(piece, total_size, block) {
            Ok(MetadataProgress::Stored) => {
                attempt.senders[piece as usize] = Some(addr);
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
                attempt.senders.fill(None);
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

    /// `addr` refused piece `piece` (or will never send it): someone else is asked.
    pub fn rejected(&mut self, addr: SocketAddr, piece: u32) {
        let Some(peer) = self.peers.get_mut(&addr) else { return };
        if let Some(position) = peer.asked.iter().position(|&asked| asked == piece) {
            peer.asked.swap_remove(position);
            if let Some(attempt) = self.attempts.iter_mut().find(|attempt| attempt.assembler.size() == peer.size)
                && let Some(asked) = attempt.asked.get_mut(piece as usize)
            {
                *asked = asked.saturating_sub(1);
            }
        }
    }

    /// `addr` is gone: what it was asked for goes back to the others.
    pub fn leave(&mut self, addr: SocketAddr) {
        let Some(peer) = self.peers.remove(&addr) else { return };
        if let Some(attempt) = self.attempts.iter_mut().find(|attempt| attempt.assembler.size() == peer.size) {
            for piece in peer.asked {
                if let Some(asked) = attempt.asked.get_mut(piece as usize) {
                    *asked = asked.saturating_sub(1);
                }
            }
            if attempt.owner == Some(addr) {
                attempt.owner = None;
            }
        }
    }

    /// Whether `addr` has pieces asked and unanswered.
    #[must_use]
    pub fn is_waiting_on(&self, addr: SocketAddr) -> bool {
        self.peers.get(&addr).is_some_and(|peer| !peer.asked.is_empty())
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
