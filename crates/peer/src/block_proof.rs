//! Which blocks of a failed v2 piece were bad, proven at once (BEP 52).
//!
//! A v1 piece that fails says only that one of its senders lied; the smart ban ([`crate::reputation`]) waits for a
//! good copy to compare block by block. A v2 file's merkle tree goes down to its 16 KiB blocks, so a failed piece
//! of a v2 or hybrid torrent can be settled as soon as a peer tells us the piece's block hashes: we ask one peer
//! that speaks v2 and has the piece for them (a `hash request` at base layer 0, with a proof up to the file's
//! root), check the answer against the root we already trust, and compare each block we got with its hash. The
//! senders of the bad blocks are banned (that is proof), the senders of the good ones cleared.
//!
//! This is the bookkeeping alone, with no I/O: which failed pieces wait for their hashes, whom each was asked,
//! and what an answer proves. An answer whose proof fails is itself a lie, and names its sender; a peer that
//! rejects the request, leaves or stays silent for [`ANSWER_TIMEOUT`] is replaced by another, up to
//! [`MAX_ASKED`] peers per piece. If nobody can answer, the smart ban still settles the piece when a good copy
//! arrives.

use std::collections::VecDeque;
use std::time::Duration;

// The runtime's clock, not the wall's: a simulation runs this code in virtual time.
use tokio::time::Instant;

use metainfo::merkle::Hash32;
use metainfo::merkle_proof::{HashRange, ProofError, verify_hashes};

use crate::picker::PeerKey;
use crate::reputation::Sender;
use crate::v2::{BlockClaim, BlockHashRequest};

/// Failed pieces waiting for their block hashes at once; the oldest is given up past it.
pub const MAX_PENDING: usize = 32;
/// How long a peer asked for block hashes has to answer before another is asked.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// Peers asked for one piece's block hashes before it is left to the smart ban.
pub const MAX_ASKED: usize = 4;

/// A failed piece waiting for its block hashes.
#[derive(Debug)]
struct Pending {
    piece: u32,
    request: BlockHashRequest,
    /// Who sent each block, and what it held.
    blocks: Vec<(Sender, BlockClaim)>,
    /// The peer asked now, and since when.
    asked: Option<(PeerKey, Instant)>,
    /// Every peer asked so far.
    tried: Vec<PeerKey>,
}

/// What an answer settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The hashes were proven: `bad_blocks` of the piece did not match them.
    Proven {
        piece: u32,
        /// Indices of the bad blocks within the piece.
        bad_blocks: Vec<u32>,
        /// Senders of bad blocks, each once.
        liars: Vec<Sender>,
        /// Senders of good blocks only, each once.
        honest: Vec<Sender>,
    },
    /// The answer did not prove out against the file's root: its sender lied. The piece waits for another peer.
    BadProof { piece: u32, error: ProofError },
}

/// A request to send: ask `peer` for `request`'s hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ask {
    pub peer: PeerKey,
    pub piece: u32,
    pub request: BlockHashRequest,
}

/// Failed pieces waiting for their block hashes, oldest first.
#[derive(Debug, Default)]
pub struct BlockProofs {
    pending: VecDeque<Pending>,
}

impl BlockProofs {
    /// Piece `piece` failed; `blocks[b]` is who sent block `b` and what it held. Waits for its hashes (again, if it
    /// failed before and still waits, with the new blocks).
    pub fn add(&mut self, piece: u32, request: BlockHashRequest, blocks: Vec<(Sender, BlockClaim)>) {
        self.pending.retain(|pending| pending.piece != piece);
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
        }
        self.pending.push_back(Pending { piece, request, blocks, asked: None, tried: Vec::new() });
    }

    /// Whether any piece waits.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Asks for each waiting piece nobody is asked for now: `pick(piece, tried, senders)` chooses the peer (one
    /// that speaks v2, has the piece, and is not in `tried`), or none for now. Returns the requests to send.
    pub fn to_ask(
        &mut self,
        now: Instant,
        mut pick: impl FnMut(u32, &[PeerKey], &[Sender]) -> Option<PeerKey>,
    ) -> Vec<Ask> {
        let mut asks = Vec::new();
        for pending in self.pending.iter_mut().filter(|p| p.asked.is_none() && p.tried.len() < MAX_ASKED) {
            let senders: Vec<Sender> = pending.blocks.iter().map(|(sender, _)| *sender).collect();
            if let Some(peer) = pick(pending.piece, &pending.tried, &senders) {
                pending.asked = Some((peer, now));
                pending.tried.push(peer);
                asks.push(Ask { peer, piece: pending.piece, request: pending.request });
            }
        }
        asks
    }

    /// Peers that did not answer within [`ANSWER_TIMEOUT`] are not waited for any more; a piece whose
    /// [`MAX_ASKED`] peers all failed it is given up.
    pub fn expire(&mut self, now: Instant) {
        for pending in &mut self.pending {
            if pending.asked.is_some_and(|(_, since)| now.duration_since(since) >= ANSWER_TIMEOUT) {
                pending.asked = None;
            }
        }
        self.pending.retain(|pending| pending.asked.is_some() || pending.tried.len() < MAX_ASKED);
    }

    /// `from` answered with `hashes` for the file `pieces_root` and `range`. `None` if we did not ask it that.
    pub fn answered(
        &mut self,
        from: PeerKey,
        pieces_root: &Hash32,
        range: &HashRange,
        hashes: &[u8],
    ) -> Option<Outcome> {
        let at = self.position(from, pieces_root, range)?;
        let pending = &self.pending[at];
        let request = pending.request;
        match verify_hashes(&request.pieces_root, request.file_length, &request.range, hashes) {
            Ok(proven) => {
                let pending = self.pending.remove(at)?;
                Some(judge(&pending, &proven))
            }
            Err(error) => {
                let piece = pending.piece;
                self.pending[at].asked = None;
                Some(Outcome::BadProof { piece, error })
            }
        }
    }

    /// `from` rejected the request: another peer will be asked. False if we did not ask it that.
    pub fn rejected(&mut self, from: PeerKey, pieces_root: &Hash32, range: &HashRange) -> bool {
        let Some(at) = self.position(from, pieces_root, range) else { return false };
        self.pending[at].asked = None;
        true
    }

    /// `key` left: what it was asked goes to another peer.
    pub fn peer_left(&mut self, key: PeerKey) {
        for pending in &mut self.pending {
            if pending.asked.is_some_and(|(peer, _)| peer == key) {
                pending.asked = None;
            }
        }
    }

    /// A good copy of `piece` arrived: the smart ban compares the blocks now; its hashes are not needed.
    pub fn piece_verified(&mut self, piece: u32) {
        self.pending.retain(|pending| pending.piece != piece);
    }

    fn position(&self, from: PeerKey, pieces_root: &Hash32, range: &HashRange) -> Option<usize> {
        self.pending.iter().position(|pending| {
            pending.asked.is_some_and(|(peer, _)| peer == from)
                && pending.request.pieces_root == *pieces_root
                && pending.request.range == *range
        })
    }
}

/// Compares each block of a failed piece with its proven hash (the file's leaves from the piece's first block on;
/// fewer than the piece's blocks past the file's end).
fn judge(pending: &Pending, proven: &[Hash32]) -> Outcome {
    let mut bad_blocks = Vec::new();
    let mut liars: Vec<Sender> = Vec::new();
    for (block, (sender, claim)) in (0u32..).zip(&pending.blocks) {
        if !claim.is_good(proven.get(block as usize)) {
            bad_blocks.push(block);
            if !liars.contains(sender) {
                liars.push(*sender);
            }
        }
    }
    let mut honest: Vec<Sender> = Vec::new();
    for (sender, _) in &pending.blocks {
        if !liars.contains(sender) && !honest.contains(sender) {
            honest.push(*sender);
        }
    }
    Outcome::Proven { piece: pending.piece, bad_blocks, liars, honest }
}

#[cfg(test)]
#[path = "block_proof_tests.rs"]
mod tests;
