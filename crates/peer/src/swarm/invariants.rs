//! The swarm's invariants, checked by the fuzzing harness after every step.

use super::*;

impl Swarm {
    /// Panics naming the first broken invariant: the picker's own, and the bounds this module promises (buffers
    /// only for pieces in progress, the partial-piece budget, queue depths, a parolee's pieces its own). For tests
    /// and fuzzing.
    #[doc(hidden)]
    pub fn assert_invariants(&self) {
        let state = self.lock();
        state.picker.assert_invariants();
        for index in state.buffers.keys() {
            assert!(state.picker.in_progress(*index), "buffer for piece {index}, which is not in progress");
        }
        assert!(
            state.picker.downloading() <= self.max_partial_pieces(),
            "{} pieces in progress, past the budget of {}",
            state.picker.downloading(),
            self.max_partial_pieces()
        );
        for (key, peer) in &state.peers {
            assert!(state.picker.outstanding(*key) <= MAX_QUEUE, "{key:?} has more than {MAX_QUEUE} requests out");
            let sender = Sender { addr: peer.addr, peer_id: peer.peer_id };
            assert!(!state.reputation.is_banned(&sender) || peer.outbox.is_closed(), "banned {key:?} still open");
        }
        if self.is_complete() {
            assert!(state.buffers.is_empty() && state.picker.is_complete(), "complete, with pieces in progress");
        }
    }
}
