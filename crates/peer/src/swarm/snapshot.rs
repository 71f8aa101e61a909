//! The swarm's figures that the session's queries read, under a lock of their own.
//!
//! A query (the session's `torrent`, the program's status line, an RPC client asking about every torrent each
//! second) must not wait behind message handling, which holds the state's lock for a whole read of a socket. So
//! what the queries report is kept apart from the state: the byte counters and the `complete` and `finished` flags
//! are atomics on [`Swarm`]; the rest (the pieces we have, rates, the connected peers) is this snapshot, copied out
//! of the state under the state's lock at each change: a verified piece, a peer admitted or gone, new priorities,
//! the once-a-second tick. Reading it takes only its own lock, held for a copy. What each connected peer sent and
//! got is as of the last of those (rates are as of the last tick anyway).

use super::*;
use crate::sources::SourceCounts;

/// What the queries read; see the module's docs.
#[derive(Debug, Clone)]
pub(super) struct Snapshot {
    /// The pieces we have: verified and written. A bit is set when its piece passes, under the state's lock.
    pieces: Bitfield,
    left: u64,
    download_rate: u64,
    upload_rate: u64,
    peers: Vec<PeerSummary>,
    sources: SourceCounts,
}

impl Snapshot {
    /// A new swarm's: its pieces, no rates, no peers.
    pub(super) fn of_new(picker: &Picker) -> Self {
        Self {
            pieces: picker.we_have().clone(),
            left: picker.missing_bytes(),
            download_rate: 0,
            upload_rate: 0,
            peers: Vec::new(),
            sources: SourceCounts::default(),
        }
    }
}

impl Swarm {
    fn snapshot(&self) -> MutexGuard<'_, Snapshot> {
        self.snapshot.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Copies the state's figures into the snapshot; called under the state's lock at every change to them.
    pub(super) fn publish(&self, state: &State) {
        let peers = state.peers.values().map(reports::summary).collect();
        let sources = state.peers.values().map(|peer| peer.source).collect();
        let mut snapshot = self.snapshot();
        snapshot.left = state.picker.missing_bytes();
        snapshot.download_rate = state.download_rate.bytes_per_second();
        snapshot.upload_rate = state.upload_rate.bytes_per_second();
        snapshot.peers = peers;
        snapshot.sources = sources;
    }

    /// Marks piece `index` had, as the picker now does; called under the state's lock, before [`Swarm::publish`].
    pub(super) fn publish_piece(&self, index: u32) {
        // The picker has just verified `index`, so it is in range: there is no error to pass on.
        let _ = self.snapshot().pieces.set(index);
    }

    /// Totals and rates now (the rates as of the last tick). Never waits for the state's lock.
    pub fn status(&self) -> Status {
        let snapshot = self.snapshot();
        Status {
            have: snapshot.pieces.count(),
            total: snapshot.pieces.len(),
            downloaded: self.downloaded.load(Ordering::Relaxed),
            uploaded: self.uploaded.load(Ordering::Relaxed),
            left: snapshot.left,
            download_rate: snapshot.download_rate,
            upload_rate: snapshot.upload_rate,
            peers: snapshot.peers.len(),
            sources: snapshot.sources,
        }
    }

    /// The pieces we have: verified and written. Never waits for the state's lock.
    pub fn have_bitfield(&self) -> Bitfield {
        self.snapshot().pieces.clone()
    }

    /// (pieces we have, pieces in the torrent). Never waits for the state's lock.
    pub fn have_count(&self) -> (u32, u32) {
        let snapshot = self.snapshot();
        (snapshot.pieces.count(), snapshot.pieces.len())
    }

    /// (downloaded, uploaded, left) for the tracker. Never waits for the state's lock.
    pub fn progress(&self) -> (u64, u64, u64) {
        let left = self.snapshot().left;
        (self.downloaded.load(Ordering::Relaxed), self.uploaded.load(Ordering::Relaxed), left)
    }

    /// The peers connected now, with what each sent and got as of the last tick, piece or peer change. Never
    /// waits for the state's lock.
    pub fn connected_peers(&self) -> Vec<PeerSummary> {
        self.snapshot().peers.clone()
    }
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
