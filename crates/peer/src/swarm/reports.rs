//! What a swarm tells the session beyond its status (see `snapshot`): its peers, connected and gone, the
//! candidates it knows, and what each tracker last answered.

use super::*;

impl Swarm {
    /// Whether any peer address is known to dial, now or after its back-off.
    pub fn has_candidates(&self) -> bool {
        !self.candidates().is_empty()
    }

    /// Records what `tracker` answered (peers, seeders, leechers) or why it failed.
    pub(crate) fn record_announce(&self, tracker: &str, result: Result<(usize, u32, u32), String>) {
        let mut trackers = self.trackers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let status = TrackerStatus { url: tracker.to_owned(), last: Some(result) };
        match trackers.iter_mut().find(|known| known.url == tracker) {
            Some(known) => *known = status,
            None => {
                // Most torrents name one or two trackers: room for four each would be most of this list's cost.
                trackers.reserve_exact(1);
                trackers.push(status);
            }
        }
    }

    /// The last answer of each tracker announced to so far.
    pub fn tracker_statuses(&self) -> Vec<TrackerStatus> {
        self.trackers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// What the trackers last said, to carry across a doze.
    pub(crate) fn take_tracker_statuses(&self) -> Vec<TrackerStatus> {
        std::mem::take(&mut *self.trackers.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Takes up the trackers' last answers from before a doze.
    pub(crate) fn restore_tracker_statuses(&self, statuses: Vec<TrackerStatus>) {
        *self.trackers.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = statuses;
    }

    /// Every peer of the session, connected or gone (up to [`MAX_DEPARTED`] of those), for the final report.
    pub fn peers(&self) -> Vec<PeerSummary> {
        let state = self.lock();
        state.departed.iter().copied().chain(state.peers.values().map(summary)).collect()
    }
}

pub(super) fn summary(peer: &Peer) -> PeerSummary {
    PeerSummary {
        addr: peer.addr,
        peer_id: peer.peer_id,
        source: peer.source,
        downloaded: peer.downloaded,
        uploaded: peer.outbox.uploaded.load(Ordering::Relaxed),
    }
}
