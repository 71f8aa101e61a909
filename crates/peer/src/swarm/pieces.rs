//! Pieces between the network and the disk: complete pieces queued for their hash check (and the back-pressure
//! that keeps the network from outrunning the hasher and the disk), piece buffers and their reuse, the cap on
//! pieces in progress, and what a passed or failed check does (writing, bans, disk trouble).

use super::*;
use crate::v2::BlockClaim;

impl Swarm {
    /// Hashes a complete piece off the async threads, writes it if it matches, then reports back. `senders`
    /// sent its blocks, in order. A failed piece, and a good copy of a piece that failed before (`suspect`), is
    /// also cut into block digests, so the liars among the senders can be told from the honest ones.
    pub(super) fn verify_and_write(self: &Arc<Self>, index: u32, data: Vec<u8>, senders: Vec<Sender>, suspect: bool) {
        let file_bytes = self.hash_trees.block_request(index).map(|request| request.file_bytes);
        let job = VerifyJob { index, data, senders, suspect, file_bytes };
        if let Some(deferred) = &self.deferred {
            deferred.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(job);
            return;
        }
        let swarm = self.clone();
        tokio::spawn(async move {
            let storage = swarm.storage.clone();
            let (index, senders) = (job.index, job.senders.clone());
            // Made-up bytes are checked by a comparison, on this thread: a simulation has only the one.
            let checked = if storage.is_synthetic() {
                Ok(check_piece(&storage, job))
            } else {
                crate::hashing::run_in(swarm.hashing.as_deref(), move || check_piece(&storage, job)).await
            };
            match checked {
                Ok(checked) => swarm.checked(index, &senders, checked),
                Err(join) => swarm.storage_failed_with(format!("hashing piece {index} failed: {join}")),
            }
        });
    }

    /// Runs the hash checks held back by `defer_verification`, on this thread.
    #[doc(hidden)]
    pub fn run_deferred(self: &Arc<Self>) {
        let Some(deferred) = &self.deferred else { return };
        let jobs = std::mem::take(&mut *deferred.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        for job in jobs {
            let (index, senders) = (job.index, job.senders.clone());
            let checked = check_piece(&self.storage, job);
            self.checked(index, &senders, checked);
        }
    }

    /// What a hash check found: the piece is ours, fetched again, or the disk is in trouble.
    pub(super) fn checked(self: &Arc<Self>, index: u32, senders: &[Sender], checked: CheckedPiece) {
        let CheckedPiece { result, digests, claims, data } = checked;
        self.hashed(data);
        match result {
            Ok(true) => self.piece_verified(index, senders, digests.as_deref()),
            Ok(false) => self.piece_failed(index, senders, &digests.unwrap_or_default(), claims),
            Err(err) if is_transient(&err) => self.piece_not_written(index, &err),
            Err(err) if err.full_disk_path().is_some() => self.disk_is_full(index, &err),
            Err(err) => self.storage_failed(index, &err),
        }
    }

    /// A piece left the hasher: its buffer can be reused, and requests held back for it can go out.
    pub(super) fn hashed(&self, buffer: Vec<u8>) {
        let mut state = self.lock();
        let was_full = state.hashing_bytes >= self.max_hashing_bytes();
        state.hashing_bytes = state.hashing_bytes.saturating_sub(buffer.len() as u64);
        self.keep_spare(&mut state, buffer);
        if was_full {
            self.refill_all(&mut state);
        }
    }

    /// Keeps a piece buffer for the next piece, up to [`MAX_SPARE_BYTES`] (at least one buffer).
    pub(super) fn keep_spare(&self, state: &mut State, buffer: Vec<u8>) {
        let max = (MAX_SPARE_BYTES / u64::from(self.storage.piece_length()).max(1)).max(1) as usize;
        if state.spare_buffers.len() < max && !self.is_complete() {
            state.spare_buffers.push(buffer);
        }
    }

    pub(super) fn max_hashing_bytes(&self) -> u64 {
        MAX_HASHING_BYTES.max(2 * u64::from(self.storage.piece_length()))
    }

    /// Pieces that may be in progress at once: [`MAX_PARTIAL_BYTES`] worth, and never fewer than four.
    pub(super) fn max_partial_pieces(&self) -> u32 {
        let pieces = MAX_PARTIAL_BYTES / u64::from(self.storage.piece_length()).max(1);
        u32::try_from(pieces).unwrap_or(u32::MAX).max(4)
    }

    /// New pieces the next pick may start under the budget.
    pub(super) fn new_piece_allowance(&self, state: &State) -> u32 {
        self.max_partial_pieces().saturating_sub(state.picker.downloading())
    }

    /// With the budget spent, drops the piece that has waited longest with nobody sending it, to make room for
    /// one more; false if every piece in progress is still being sent.
    pub(super) fn make_room(&self, state: &mut State) -> bool {
        let State { picker, buffers, .. } = state;
        let oldest = buffers
            .iter()
            .filter(|(index, _)| picker.is_abandoned(**index))
            .min_by_key(|(_, buffer)| buffer.touched)
            .map(|(index, _)| *index);
        oldest.is_some_and(|index| self.drop_piece(state, index))
    }

    /// Forgets an abandoned piece in progress and frees its buffer.
    pub(super) fn drop_piece(&self, state: &mut State, index: u32) -> bool {
        if !state.picker.abandon(index) {
            return false;
        }
        if let Some(buffer) = state.buffers.remove(&index) {
            tracing::debug!(index, "dropping a partial piece nobody is sending");
            self.keep_spare(state, buffer.data);
        }
        true
    }

    pub(super) fn piece_verified(self: &Arc<Self>, index: u32, senders: &[Sender], digests: Option<&[Digest]>) {
        let mut state = self.lock();
        if !state.picker.piece_verified(index) {
            return;
        }
        state.block_proofs.piece_verified(index);
        let verdict = state.reputation.piece_passed(index, senders, digests);
        let banned = self.apply_verdict(&mut state, &verdict);
        let have = Message::Have { index };
        for peer in state.peers.values() {
            if !peer.bitfield.has(index) {
                peer.outbox.push(&have);
            }
        }
        let keys: Vec<PeerKey> = state.peers.keys().copied().collect();
        for key in keys {
            self.update_interest(&mut state, key);
        }
        let (have_count, total) = (state.picker.we_have().count(), state.picker.num_pieces());
        // The counts first, so that whoever sees the flags below without the lock sees the counts that go with them.
        self.publish_piece(index);
        self.publish(&state);
        if state.picker.is_complete() {
            self.complete.store(true, Ordering::Release);
        }
        // Finished now: every wanted piece is in (all of them, unless files were left out).
        let now_finished = !self.is_finished() && state.picker.is_finished();
        if now_finished {
            self.finished.store(true, Ordering::Release);
            state.buffers = HashMap::new();
            state.spare_buffers = Vec::new();
        }
        drop(state);
        let mut from: Vec<(SocketAddr, [u8; 20])> = Vec::with_capacity(1);
        for sender in senders {
            if !from.contains(&(sender.addr, sender.peer_id)) {
                from.push((sender.addr, sender.peer_id));
            }
        }
        self.emit(Event::PieceVerified { index, from, have: have_count, total });
        self.emit_bans(banned, &verdict);
        if now_finished {
            if let Err(err) = self.storage.create_empty_files() {
                self.storage_failed_with(err.to_string());
                return;
            }
            self.emit(Event::Complete);
            self.changed.notify_waiters();
        }
    }

    pub(super) fn piece_failed(
        self: &Arc<Self>,
        index: u32,
        senders: &[Sender],
        digests: &[Digest],
        claims: Option<Vec<BlockClaim>>,
    ) {
        let mut state = self.lock();
        state.picker.piece_failed(index);
        let verdict = state.reputation.piece_failed(index, senders, digests);
        let banned = self.apply_verdict(&mut state, &verdict);
        self.refill_all(&mut state);
        self.wait_for_block_hashes(&mut state, index, senders, claims);
        drop(state);
        let mut addrs: Vec<SocketAddr> = senders.iter().map(|sender| sender.addr).collect();
        addrs.sort_unstable();
        addrs.dedup();
        self.emit(Event::PieceFailed { index, senders: addrs });
        self.emit_bans(banned, &verdict);
    }

    /// Disconnects the peers a verdict bans and marks the ones it paroles or clears; returns the addresses of
    /// the banned peers (connected or not).
    pub(super) fn apply_verdict(&self, state: &mut State, verdict: &Verdict) -> Vec<SocketAddr> {
        let mut banned: Vec<SocketAddr> = verdict.banned.iter().map(|sender| sender.addr).collect();
        for peer in state.peers.values_mut() {
            let sender = Sender { addr: peer.addr, peer_id: peer.peer_id };
            if state.reputation.is_banned(&sender) {
                // Peers banned by an earlier verdict may still be here until their connection task removes them:
                // they are closed again, not reported again.
                let newly = verdict.banned.iter().any(|b| b.addr == peer.addr || b.peer_id == peer.peer_id)
                    || verdict.banned_ips.contains(&peer.addr.ip());
                if newly && !banned.contains(&peer.addr) {
                    banned.push(peer.addr);
                }
                peer.outbox.close();
            } else {
                peer.parole = state.reputation.on_parole(&sender);
            }
        }
        banned
    }

    pub(super) fn emit_bans(&self, banned: Vec<SocketAddr>, verdict: &Verdict) {
        for addr in banned {
            self.emit(Event::PeerBanned { addr });
        }
        for &ip in &verdict.banned_ips {
            self.emit(Event::AddressBanned { ip });
        }
    }

    /// The piece was good but could not be written for now (no file descriptor free): fetch it again later.
    pub(super) fn piece_not_written(&self, index: u32, err: &StorageError) {
        tracing::warn!("piece {index} will be fetched again: {err}");
        let mut state = self.lock();
        state.picker.piece_failed(index);
        self.refill_all(&mut state);
    }

    pub(super) fn storage_failed(&self, index: u32, err: &StorageError) {
        self.storage_failed_with(format!("writing piece {index}: {err}"));
    }

    pub(super) fn storage_failed_with(&self, message: String) {
        let mut state = self.lock();
        if state.fatal.is_none() {
            state.fatal = Some(message);
        }
        for peer in state.peers.values() {
            peer.outbox.close();
        }
        drop(state);
        self.changed.notify_waiters();
    }

    /// Drops pieces in progress that nobody has sent a block of for [`ABANDONED_AFTER`] and nobody is asked for.
    pub(super) fn drop_abandoned_pieces(&self, state: &mut State, now: Instant) {
        let stale: Vec<u32> = state
            .buffers
            .iter()
            .filter(|(index, buffer)| {
                now.duration_since(buffer.touched) > ABANDONED_AFTER && state.picker.is_abandoned(**index)
            })
            .map(|(index, _)| *index)
            .collect();
        for index in stale {
            self.drop_piece(state, index);
        }
    }
}

/// What the hash check of a piece found, and its buffer back.
pub(super) struct CheckedPiece {
    /// Whether it matched and was written, or why it could not be written.
    result: Result<bool, StorageError>,
    /// SHA-1 of each block, of a failed piece and of a good copy of one that failed before.
    digests: Option<Vec<Digest>>,
    /// What each block of a failed v2 piece held, for its block hashes to judge.
    claims: Option<Vec<BlockClaim>>,
    data: Vec<u8>,
}

/// Hashes a complete piece and writes it if it matches (blocking I/O). A failed piece, and a good copy of a piece
/// that failed before, is also cut into block digests; a failed piece of a v2 file into block leaves too.
pub(super) fn check_piece(storage: &Storage, job: VerifyJob) -> CheckedPiece {
    let matches = storage.piece_matches(job.index, &job.data);
    let digests = (!matches || job.suspect).then(|| block_digests(&job.data));
    let claims = job.file_bytes.filter(|_| !matches).map(|file_bytes| crate::v2::block_claims(&job.data, file_bytes));
    let result = if matches { storage.write_piece(job.index, &job.data).map(|()| true) } else { Ok(false) };
    CheckedPiece { result, digests, claims, data: job.data }
}

/// SHA-1 of each 16 KiB block of a piece, for comparing copies block by block.
pub(super) fn block_digests(data: &[u8]) -> Vec<Digest> {
    use sha1::Digest as _;
    data.chunks(BLOCK_LEN as usize).map(|block| sha1::Sha1::digest(block).into()).collect()
}

/// Errors that go away by themselves: too many open files, in this process or system-wide.
pub(super) fn is_transient(err: &StorageError) -> bool {
    matches!(err, StorageError::Io { source, .. } if matches!(source.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)))
}
