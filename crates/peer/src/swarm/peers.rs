//! Who is in the swarm: the addresses to dial and those reserved, the checks an incoming connection passes
//! (bans, --max-peers, --max-peers-per-ip), admitting a peer whose handshake checked out, and removing one whose
//! connection ended.

use super::*;
use reports::summary;

impl Swarm {
    /// Whether we should open a connection to `addr` now; if so it is reserved until [`Swarm::release_address`].
    pub fn reserve_address(&self, addr: SocketAddr) -> bool {
        let mut state = self.lock();
        if state.reputation.is_banned_addr(addr) || state.fatal.is_some() || self.closed.load(Ordering::Acquire) {
            return false;
        }
        if state.addresses.len() >= self.max_peers
            || state.addresses.iter().filter(|other| other.ip() == addr.ip()).count() >= self.max_peers_per_ip
        {
            return false;
        }
        // A seeder has no use for another seeder, but it cannot know who is one before the bitfield; connect.
        state.addresses.insert(addr).is_ok()
    }

    /// Adds a peer address a source named (see `sources`); the dialer takes it from there.
    pub fn add_candidate(&self, addr: SocketAddr, source: Source) {
        self.candidates().add(addr, source, Instant::now());
        self.activity.notify_one();
    }

    /// Candidates to dial now, as many as there is room for. While complete, `--peer` addresses and known seeds
    /// wait: a seeder waits for leechers to come, and dialling a peer that is complete too would only be hung up
    /// on (every 5 s, for ever, before seeds were marked).
    pub fn due_candidates(&self) -> Vec<SocketAddr> {
        self.due_candidates_at(Instant::now())
    }

    pub(crate) fn due_candidates_at(&self, now: Instant) -> Vec<SocketAddr> {
        let (room, complete, connected) = {
            let state = self.lock();
            // Where each connected peer listens, when known: a peer that dialled us is not to be dialled back (the
            // second connection would only be refused as a duplicate, every 5 s, for as long as the first lasts).
            let connected: HashSet<SocketAddr> = state.peers.values().filter_map(Peer::listen_addr).collect();
            let room =
                if state.addresses.budget_left() { self.max_peers.saturating_sub(state.addresses.len()) } else { 0 };
            (room, self.is_finished(), connected)
        };
        let mut candidates = self.candidates();
        let due = candidates.due(now, room, complete, |addr| connected.contains(&addr));
        let mut dial = Vec::with_capacity(due.len());
        for (addr, source) in due {
            if complete && source == Source::Manual {
                candidates.ended(addr, now);
            } else {
                dial.push(addr);
            }
        }
        dial
    }

    /// A dial of `addr` failed, or its connection ended: it is tried again after a back-off.
    pub fn candidate_ended(&self, addr: SocketAddr) {
        self.candidates().ended(addr, Instant::now());
    }

    /// When `key` last sent a block (or unchoked us), as the snub check sees it.
    #[cfg(test)]
    pub(crate) fn last_block_of(&self, key: PeerKey) -> Option<Instant> {
        self.lock().peers.get(&key).map(|peer| peer.last_block)
    }

    /// Candidates known, from every source.
    #[cfg(test)]
    pub(crate) fn candidate_count(&self) -> usize {
        self.candidates().len()
    }

    pub(super) fn candidates(&self) -> MutexGuard<'_, Candidates> {
        self.candidates.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn release_address(&self, addr: SocketAddr) {
        self.lock().addresses.remove(&addr);
    }

    /// Whether a connection from `addr` is refused before its handshake: the address or this endpoint is banned.
    pub fn is_banned(&self, addr: SocketAddr) -> bool {
        self.lock().reputation.is_banned_addr(addr)
    }

    /// Connections with `ip` that passed their handshake, or are being dialled.
    pub fn connections_with(&self, ip: IpAddr) -> usize {
        self.lock().addresses.iter().filter(|addr| addr.ip() == ip).count()
    }

    /// Whether an incoming connection from `ip` fits under `--max-peers` (see [`Swarm::fits`]).
    pub fn has_room_for(&self, ip: IpAddr) -> bool {
        let state = self.lock();
        self.fits(&state, ip) && state.addresses.budget_left()
    }

    /// Whether a connection from `ip` fits under `--max-peers`: there is room, or we are dialling `ip` now. Then
    /// this is the other half of two peers dialling each other at once, and one of the two halves is closed as a
    /// duplicate once both handshakes are in. Refused for want of room, it can leave both halves refused, at both
    /// ends, and the two peers apart until their back-off ends: in a flash crowd's dial storm (the simulator's
    /// `loopback 40`), 29 of 40 leechers had nobody but the seeder for 5 s.
    ///
    /// Only while nobody from `ip` is connected: a host we dial gets one connection past the cap, not one per
    /// connection it opens while our dial is pending.
    fn fits(&self, state: &State, ip: IpAddr) -> bool {
        if state.addresses.len() < self.max_peers {
            return true;
        }
        let dialling = state.addresses.iter().any(|addr| addr.ip() == ip);
        dialling && !state.peers.values().any(|peer| peer.addr.ip() == ip)
    }

    /// Registers a peer whose handshake checked out, or says why it is refused.
    pub fn admit(
        &self,
        addr: SocketAddr,
        peer_id: [u8; 20],
        direction: Direction,
        extensions: bool,
        peer_dht: bool,
        v2: bool,
    ) -> Result<Admitted, CloseReason> {
        self.admit_as(addr, peer_id, direction, [extensions, peer_dht, v2], false, None)
    }

    /// As [`Swarm::admit`], for a connection that fetched the metadata and goes on into the download: messages
    /// have passed on it already, so the pieces we have go as `have` messages (a bitfield may only come first).
    pub(crate) fn admit_handed_over(
        &self,
        addr: SocketAddr,
        peer_id: [u8; 20],
        direction: Direction,
        [extensions, peer_dht, v2]: [bool; 3],
        listen_port: Option<u16>,
    ) -> Result<Admitted, CloseReason> {
        self.admit_as(addr, peer_id, direction, [extensions, peer_dht, v2], true, listen_port)
    }

    fn admit_as(
        &self,
        addr: SocketAddr,
        peer_id: [u8; 20],
        direction: Direction,
        [extensions, peer_dht, v2]: [bool; 3],
        handed_over: bool,
        listen_port: Option<u16>,
    ) -> Result<Admitted, CloseReason> {
        // Read before the state's lock: the candidates' lock is never held with it.
        let source = match direction {
            Direction::Incoming => Source::Incoming,
            Direction::Outgoing => self.candidates().source(addr).unwrap_or(Source::Tracker),
        };
        let mut state = self.lock();
        if self.closed.load(Ordering::Acquire) {
            return Err(CloseReason::Stopping);
        }
        let sender = Sender { addr, peer_id };
        if state.reputation.is_banned(&sender) {
            return Err(Refusal::Banned.into());
        }
        if peer_id == self.peer_id {
            return Err(Refusal::Ourselves.into());
        }
        if let Some((&old_key, old)) = state.peers.iter().find(|(_, peer)| peer.peer_id == peer_id) {
            // Two peers that dialled each other must keep the same connection. libtorrent's rule: the one opened
            // by the side with the greater peer id.
            let keep = if self.peer_id > peer_id { Direction::Outgoing } else { Direction::Incoming };
            if direction != keep || old.direction == keep {
                if direction == Direction::Outgoing
                    && old.direction == Direction::Incoming
                    && old.addr.ip() == addr.ip()
                    && let Some(old) = state.peers.get_mut(&old_key)
                {
                    // Now we know where it listens, so the dialer leaves it alone while this connection lasts.
                    old.listen_port.get_or_insert(addr.port());
                }
                return Err(Refusal::DuplicatePeer.into());
            }
            if let Some((old_addr, had_slot)) = drop_peer(&mut state, old_key) {
                state.addresses.remove(&old_addr);
                if had_slot {
                    self.rechoke(&mut state, true);
                }
                self.refill_all(&mut state);
                self.emit(Event::PeerDisconnected { addr: old_addr, reason: CloseReason::Replaced.to_string() });
            }
        }
        if direction == Direction::Incoming {
            if !self.fits(&state, addr.ip()) {
                return Err(Refusal::TooManyPeers.into());
            }
            if state.addresses.iter().filter(|other| other.ip() == addr.ip()).count() >= self.max_peers_per_ip {
                return Err(Refusal::TooManyFromAddress.into());
            }
            match state.addresses.insert(addr) {
                Ok(()) => {}
                Err(NotAdded::Present) => return Err(Refusal::DuplicateAddress.into()),
                Err(NotAdded::NoBudget) => return Err(Refusal::SessionLimit.into()),
            }
        }
        let key = PeerKey(state.next_key);
        state.next_key += 1;
        let outbox = Arc::new(Outbox::default());
        if extensions {
            // BEP 10: our extended handshake comes first, before the bitfield, as libtorrent sends it.
            outbox.push(&Message::Extended { id: 0, payload: &self.extended_handshake(addr) });
        }
        if let (Some(node), true) = (&self.dht, peer_dht) {
            // BEP 5: where our DHT node listens, right after the handshake (libtorrent sends it there too).
            outbox.push(&Message::Port { port: node.local_addr().port() });
        }
        if state.super_seed {
            // A super-seeder shows its pieces a few at a time, from the first top-up below.
            let State { offers, picker, rng, .. } = &mut *state;
            offers.get_or_insert_with(|| Box::new(Offers::new(picker.num_pieces(), rng))).join(key);
        } else if handed_over {
            for index in state.picker.we_have().ones() {
                outbox.push(&Message::Have { index });
            }
        } else if state.picker.we_have().count() > 0 {
            outbox.push(&state.picker.we_have().to_message());
        }
        self.activity.notify_one();
        let num_pieces = state.picker.num_pieces();
        let parole = state.reputation.on_parole(&sender);
        let now = Instant::now();
        state.peers.insert(
            key,
            Peer {
                addr,
                peer_id,
                direction,
                source,
                outbox: outbox.clone(),
                bitfield: Bitfield::new(num_pieces),
                spoke: false,
                am_choking: true,
                am_interested: false,
                peer_choking: true,
                peer_interested: false,
                downloaded: 0,
                download_rate: RateMeter::default(),
                upload_rate: RateMeter::default(),
                connected_at: self.started.elapsed(),
                last_block: now,
                snubbed: false,
                unexpected: 0,
                queue_depth: MIN_QUEUE,
                parole,
                extensions,
                v2,
                block_hashes_served: 0,
                requests_rejected: 0,
                ut_metadata: None,
                metadata_served: 0,
                dht_port_seen: false,
                ut_pex: None,
                listen_port,
                pex_sent: None,
                pex_received: None,
                pex_told: HashSet::new(),
                unchoked_at: now,
                last_request: now,
                last_progress: now,
                written_seen: 0,
                idle_until: None,
            },
        );
        self.offer(&mut state, key);
        self.publish(&state);
        drop(state);
        if !handed_over {
            // A connection from the metadata fetch was reported connected there, once.
            self.emit(Event::PeerConnected { addr, source });
        }
        Ok(Admitted { key, outbox })
    }

    /// The connection to `key` ended: its requests go back to the pool and to other peers.
    pub fn remove(&self, key: PeerKey, reason: &CloseReason) {
        let mut state = self.lock();
        // A connection we opened that carried pieces, or lasted, clears its address's failures; one the other side
        // ended at once without a block either way (it is full, already has us, or will not have us) counts as a
        // failure, so that the dialer backs off instead of knocking every 5 s.
        let useful_dial = state.peers.get(&key).is_some_and(|peer| {
            peer.direction == Direction::Outgoing
                && (peer.downloaded > 0
                    || peer.outbox.uploaded.load(Ordering::Relaxed) > 0
                    || self.started.elapsed().saturating_sub(peer.connected_at) >= USEFUL_CONNECTION)
        });
        let Some((addr, had_slot)) = drop_peer(&mut state, key) else { return };
        self.publish(&state);
        state.addresses.remove(&addr);
        if had_slot {
            self.rechoke(&mut state, true);
        }
        self.take_turns(&mut state);
        self.refill_all(&mut state);
        state.block_proofs.peer_left(key);
        self.ask_block_hashes(&mut state);
        drop(state);
        if useful_dial {
            self.candidates().connected(addr);
        }
        self.emit(Event::PeerDisconnected { addr, reason: reason.to_string() });
    }
}

/// Removes a peer from the state and the picker; returns its address and whether it held an upload slot.
pub(super) fn drop_peer(state: &mut State, key: PeerKey) -> Option<(SocketAddr, bool)> {
    let peer = state.peers.remove(&key)?;
    if let Some(offers) = &mut state.offers {
        offers.leave(key);
    }
    state.picker.peer_left(key, &peer.bitfield);
    peer.outbox.close();
    if state.departed.len() < MAX_DEPARTED {
        state.departed.push(summary(&peer));
    }
    state.departed_senders.insert(key, Sender { addr: peer.addr, peer_id: peer.peer_id });
    if state.departed_senders.len() > MAX_DEPARTED {
        state.departed_senders.pop_first();
    }
    Some((peer.addr, !peer.am_choking))
}
