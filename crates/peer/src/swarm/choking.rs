//! Choking: who gets our upload slots, re-decided each tick and whenever a slot holder leaves.

use super::*;

impl Swarm {
    pub(super) fn rechoke(&self, state: &mut State, now_please: bool) {
        if state.peers.is_empty() && state.choker.is_none() {
            // Nobody ever connected: nothing to decide, and no choker to make yet.
            return;
        }
        let now = self.started.elapsed();
        let instant = Instant::now();
        let seeding = state.complete;
        let stats: Vec<PeerStats> = state
            .peers
            .iter()
            .map(|(&key, peer)| PeerStats {
                key,
                interested: peer.peer_interested && peer.idle_until.is_none_or(|until| instant >= until),
                download_rate: peer.download_rate.bytes_per_second(),
                upload_rate: peer.upload_rate.bytes_per_second(),
                connected_at: peer.connected_at,
            })
            .collect();
        let State { choker, rng, peers, .. } = state;
        let choker = choker.get_or_insert_with(|| Box::new(Choker::new(ChokerConfig::default())));
        let unchoked = if now_please {
            Some(choker.rechoke(now, seeding, &stats, rng))
        } else {
            choker.tick(now, seeding, &stats, rng)
        };
        let Some(unchoked) = unchoked else { return };
        let mut newly_unchoked = Vec::new();
        for (key, peer) in peers.iter_mut() {
            let unchoke = unchoked.contains(key);
            if unchoke && peer.am_choking {
                peer.am_choking = false;
                peer.unchoked_at = instant;
                peer.outbox.push(&Message::Unchoke);
                newly_unchoked.push(*key);
            } else if !unchoke && !peer.am_choking {
                peer.am_choking = true;
                peer.outbox.clear_uploads();
                peer.outbox.push(&Message::Choke);
            }
        }
        // A peer we now upload to is shown a whole window of pieces.
        for key in newly_unchoked {
            self.offer(state, key);
        }
    }
}
