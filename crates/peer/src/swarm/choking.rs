//! Choking: who gets our upload slots, re-decided each tick and whenever a slot holder leaves.

use std::collections::BTreeSet;

use super::*;

impl Swarm {
    pub(super) fn rechoke(&self, state: &mut State, now_please: bool) {
        if state.offers.is_some() {
            // A super-seeder unchokes a peer when its turn comes and leaves it unchoked: what it may ask for is
            // what its turns showed it (see `take_turns`).
            return;
        }
        if state.peers.is_empty() && state.choker.is_none() {
            // Nobody ever connected: nothing to decide, and no choker to make yet.
            return;
        }
        let now = self.started.elapsed();
        let seeding = self.is_complete();
        let stats = self.choker_stats(state);
        let State { choker, rng, .. } = state;
        let choker = choker.get_or_insert_with(|| Box::new(Choker::new(ChokerConfig::default())));
        let unchoked = if now_please {
            Some(choker.rechoke(now, seeding, &stats, rng))
        } else {
            choker.tick(now, seeding, &stats, rng)
        };
        let Some(unchoked) = unchoked else { return };
        let unchoked = unchoked.clone();
        self.apply_unchoked(state, &unchoked);
    }

    /// `key`, which we unchoke, told us it is not interested: its slot goes to another peer now
    /// ([`Choker::free_slot`]).
    pub(super) fn free_slot(&self, state: &mut State, key: PeerKey) {
        if state.offers.is_some() {
            return;
        }
        let now = self.started.elapsed();
        let seeding = self.is_complete();
        let stats = self.choker_stats(state);
        let State { choker, rng, .. } = state;
        let Some(choker) = choker.as_mut() else { return };
        let unchoked = choker.free_slot(now, seeding, key, &stats, rng).clone();
        self.apply_unchoked(state, &unchoked);
    }

    fn choker_stats(&self, state: &State) -> Vec<PeerStats> {
        let instant = Instant::now();
        state
            .peers
            .iter()
            .map(|(&key, peer)| PeerStats {
                key,
                interested: peer.peer_interested && peer.idle_until.is_none_or(|until| instant >= until),
                download_rate: peer.download_rate.bytes_per_second(),
                upload_rate: peer.upload_rate.bytes_per_second(),
                connected_at: peer.connected_at,
            })
            .collect()
    }

    /// Chokes and unchokes peers so that `unchoked` are the ones we upload to.
    fn apply_unchoked(&self, state: &mut State, unchoked: &BTreeSet<PeerKey>) {
        let instant = Instant::now();
        for (key, peer) in &mut state.peers {
            let unchoke = unchoked.contains(key);
            if unchoke && peer.am_choking {
                peer.am_choking = false;
                peer.unchoked_at = instant;
                peer.outbox.push(&Message::Unchoke);
            } else if !unchoke && !peer.am_choking {
                peer.am_choking = true;
                peer.outbox.clear_uploads();
                peer.outbox.push(&Message::Choke);
            }
        }
    }
}
