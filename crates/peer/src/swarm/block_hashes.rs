//! BEP 52 hash requests, both ways: answering peers that ask for our files' hashes (from the piece layers in
//! memory, or for block hashes from the piece read off disk), and asking for the block hashes of a failed v2
//! piece so its bad blocks, and their senders, are known at once (see `block_proof`).

use metainfo::merkle::Hash32;
use metainfo::merkle_proof::HashRange;

use super::*;
use crate::block_proof::Outcome;
use crate::v2::BlockClaim;

/// Block-hash requests one connection is answered from disk: each costs a piece read and its hashing, and an
/// honest peer asks only for the pieces that failed for it.
const MAX_BLOCK_HASH_ANSWERS: u32 = 256;

impl Swarm {
    /// A peer asks for hashes of one of our files: answered from the piece layers, or for hashes below them from
    /// the piece's bytes (if we have that piece), or rejected.
    ///
    /// # Errors
    ///
    /// More than `MAX_REJECTED_REQUESTS` requests rejected on this connection: it is to be closed.
    pub(super) fn on_hash_request(
        &self,
        state: &mut State,
        key: PeerKey,
        pieces_root: Hash32,
        range: HashRange,
    ) -> Result<(), CloseReason> {
        let Some(peer) = state.peers.get_mut(&key) else { return Ok(()) };
        if let Some(hashes) = self.hash_trees.serve(&pieces_root, &range) {
            peer.outbox.push(&hashes_message(pieces_root, range, &hashes.concat()));
            return Ok(());
        }
        let piece = self.hash_trees.piece_for(&pieces_root, &range).filter(|&piece| state.picker.have(piece));
        let Some(piece) = piece.filter(|_| peer.block_hashes_served < MAX_BLOCK_HASH_ANSWERS) else {
            peer.requests_rejected += 1;
            if peer.requests_rejected > MAX_REJECTED_REQUESTS {
                return Err(CloseReason::protocol(format_args!(
                    "it kept sending hash requests we cannot answer ({} requests rejected; {} block-hash answers \
                     served)",
                    peer.requests_rejected, peer.block_hashes_served
                )));
            }
            peer.outbox.push(&reject_message(pieces_root, range));
            return Ok(());
        };
        peer.block_hashes_served += 1;
        let (storage, trees, outbox) = (self.storage.clone(), self.hash_trees.clone(), peer.outbox.clone());
        let answer = move || {
            let mut data = Vec::new();
            let hashes = storage
                .read_block(piece, 0, storage.piece_size(piece), &mut data)
                .ok()
                .and_then(|()| trees.serve_from_piece(&pieces_root, &range, piece, &data));
            match hashes {
                Some(hashes) => outbox.push(&hashes_message(pieces_root, range, &hashes.concat())),
                // A piece that cannot be read, or no longer hashes to its place in the tree, is never vouched for.
                None => outbox.push(&reject_message(pieces_root, range)),
            }
        };
        if self.deferred.is_some() {
            // Driven without a runtime (fuzzing): the read is small and done here.
            answer();
        } else {
            let pool = self.hashing.clone();
            tokio::spawn(async move {
                let _ = crate::hashing::run_in(pool.as_deref(), answer).await;
            });
        }
        Ok(())
    }

    /// A piece failed: if it is a v2 file's and several peers sent its blocks, its block hashes are asked for.
    pub(super) fn wait_for_block_hashes(
        &self,
        state: &mut State,
        index: u32,
        senders: &[Sender],
        claims: Option<Vec<BlockClaim>>,
    ) {
        let Some(claims) = claims.filter(|claims| claims.len() == senders.len()) else { return };
        if senders.iter().all(|sender| *sender == senders[0]) {
            // One sender alone is already proven the liar.
            return;
        }
        let Some(request) = self.hash_trees.block_request(index) else { return };
        state.block_proofs.add(index, request, senders.iter().copied().zip(claims).collect());
        self.ask_block_hashes(state);
    }

    /// Sends the block-hash requests that wait for a peer: to one that speaks v2 and has the piece, preferably one
    /// that sent none of its blocks (a liar may stall).
    pub(super) fn ask_block_hashes(&self, state: &mut State) {
        if state.block_proofs.is_empty() {
            return;
        }
        let State { block_proofs, peers, .. } = state;
        let asks = block_proofs.to_ask(Instant::now(), |piece, tried, senders| {
            let mut fallback = None;
            for (key, peer) in peers.iter() {
                if !peer.v2 || !peer.bitfield.has(piece) || tried.contains(key) || peer.outbox.is_closed() {
                    continue;
                }
                if !senders.iter().any(|sender| sender.addr == peer.addr && sender.peer_id == peer.peer_id) {
                    return Some(*key);
                }
                fallback.get_or_insert(*key);
            }
            fallback
        });
        for ask in asks {
            if let Some(peer) = state.peers.get(&ask.peer) {
                let HashRange { base_layer, index, length, proof_layers } = ask.request.range;
                let pieces_root = ask.request.pieces_root;
                peer.outbox.push(&Message::HashRequest { pieces_root, base_layer, index, length, proof_layers });
            }
        }
    }

    /// A `hashes` answer: if it is one we asked for, it settles a failed piece (or proves its sender a liar).
    pub(super) fn on_hashes(
        &self,
        state: &mut State,
        key: PeerKey,
        pieces_root: Hash32,
        range: HashRange,
        hashes: &[u8],
    ) {
        let Some(outcome) = state.block_proofs.answered(key, &pieces_root, &range, hashes) else { return };
        let Some(by) = sender_of(state, key) else { return };
        match outcome {
            Outcome::Proven { piece, bad_blocks, liars, honest } => {
                let verdict = state.reputation.blocks_proven(piece, &liars, &honest);
                let banned = self.apply_verdict(state, &verdict);
                let liars = liars.iter().map(|sender| sender.addr).collect();
                self.emit(Event::BlocksChecked { index: piece, bad_blocks, liars, by: by.addr });
                self.emit_bans(banned, &verdict);
            }
            Outcome::BadProof { piece, error } => {
                tracing::debug!(addr = %by.addr, piece, %error, "block hashes with a false proof");
                let verdict = state.reputation.proven_liar(by);
                let banned = self.apply_verdict(state, &verdict);
                self.emit_bans(banned, &verdict);
                self.ask_block_hashes(state);
            }
        }
    }

    /// A `hash reject`: if it answers one of our requests, another peer is asked.
    pub(super) fn on_hash_reject(&self, state: &mut State, key: PeerKey, pieces_root: Hash32, range: HashRange) {
        if state.block_proofs.rejected(key, &pieces_root, &range) {
            self.ask_block_hashes(state);
        }
    }
}

fn hashes_message(pieces_root: Hash32, range: HashRange, hashes: &[u8]) -> Message<'_> {
    let HashRange { base_layer, index, length, proof_layers } = range;
    Message::Hashes { pieces_root, base_layer, index, length, proof_layers, hashes }
}

fn reject_message(pieces_root: Hash32, range: HashRange) -> Message<'static> {
    let HashRange { base_layer, index, length, proof_layers } = range;
    Message::HashReject { pieces_root, base_layer, index, length, proof_layers }
}

#[cfg(test)]
#[path = "block_hashes_tests.rs"]
pub(super) mod tests;
