//! What we tell peers beyond BEP 3: our BEP 10 extended handshake, the metadata we serve over ut_metadata (BEP 9),
//! and the windows of pieces a super-seeder shows (see `offers`).

use super::*;

impl Swarm {
    /// Our BEP 10 handshake: we serve ut_metadata, and say how big the metadata is.
    pub(super) fn extended_handshake(&self, addr: SocketAddr) -> Vec<u8> {
        let mut extensions: BTreeMap<String, u8> = [(UT_METADATA.to_owned(), UT_METADATA_ID)].into_iter().collect();
        if !self.private {
            extensions.insert(peer_wire::UT_PEX.to_owned(), pex::UT_PEX_ID);
        }
        let handshake = ExtendedHandshake {
            extensions,
            listen_port: self.listen_port.and_then(std::num::NonZeroU16::new),
            client: Some(concat!("bittorrent-tools ", env!("CARGO_PKG_VERSION")).to_owned()),
            metadata_size: u64::try_from(self.metadata.len()).ok(),
            request_queue: u32::try_from(crate::outbox::MAX_QUEUED_UPLOADS).ok(),
            your_ip: Some(addr.ip()),
            ..ExtendedHandshake::default()
        };
        let mut payload = Vec::new();
        handshake.encode(&mut payload);
        payload
    }

    /// An extended message (BEP 10): the peer's extended handshake, or a ut_metadata request we answer from the
    /// torrent's info dictionary. Malformed ones are ignored, as libtorrent does; anything else is not ours.
    pub(super) fn on_extended(
        &self,
        state: &mut State,
        key: PeerKey,
        id: u8,
        payload: &[u8],
    ) -> Result<(), CloseReason> {
        let Some(peer) = state.peers.get_mut(&key) else { return Ok(()) };
        if !peer.extensions {
            return Ok(());
        }
        if id == 0 {
            if let Ok(handshake) = ExtendedHandshake::decode(payload) {
                peer.ut_metadata = handshake.extension_id(UT_METADATA).map(std::num::NonZeroU8::get);
                peer.ut_pex = handshake.extension_id(peer_wire::UT_PEX).map(std::num::NonZeroU8::get);
                peer.listen_port = handshake.listen_port.map(std::num::NonZeroU16::get).or(peer.listen_port);
            }
            return Ok(());
        }
        if id == pex::UT_PEX_ID {
            return self.on_pex(state, key, payload);
        }
        if id != UT_METADATA_ID {
            return Ok(());
        }
        let Some(their_id) = peer.ut_metadata else { return Ok(()) };
        let Ok(MetadataMessage::Request { piece }) = MetadataMessage::decode(payload, 0) else { return Ok(()) };
        let pieces = self.metadata.len().div_ceil(METADATA_PIECE_LEN);
        let start = piece as usize * METADATA_PIECE_LEN;
        let total_size = u32::try_from(self.metadata.len()).unwrap_or(u32::MAX);
        let allowed = peer.metadata_served < 2 * u32::try_from(pieces).unwrap_or(u32::MAX) + METADATA_REQUESTS_SPARE;
        let reply = match self.metadata.get(start..(start + METADATA_PIECE_LEN).min(self.metadata.len())) {
            Some(block) if allowed && !block.is_empty() => {
                peer.metadata_served += 1;
                MetadataMessage::Data { piece, total_size, block }
            }
            _ => {
                peer.requests_rejected += 1;
                if peer.requests_rejected > MAX_REJECTED_REQUESTS {
                    return Err(CloseReason::protocol(format_args!(
                        "it kept sending metadata requests we cannot answer ({} requests rejected; {} metadata \
                         pieces served)",
                        peer.requests_rejected, peer.metadata_served
                    )));
                }
                MetadataMessage::Reject { piece }
            }
        };
        let mut out = Vec::new();
        reply.encode(&mut out);
        peer.outbox.push(&Message::Extended { id: their_id, payload: &out });
        Ok(())
    }

    /// Super-seeding: what `key` was shown or holds changed (it asked, announced a piece, lost interest, came):
    /// tops up its window and passes on the turns that are over.
    pub(super) fn offer(&self, state: &mut State, key: PeerKey) {
        self.show_window(state, key);
        self.take_turns(state);
    }

    /// Passes on the super-seeder's turns that are over ([`Offers::take_turns`]); a peer whose turn begins is
    /// unchoked (if it was not yet) and shown its window.
    pub(super) fn take_turns(&self, state: &mut State) {
        let State { offers, peers, .. } = state;
        let Some(offers) = offers.as_mut() else { return };
        let begun = offers.take_turns(
            Instant::now(),
            SUPER_SEED_TURNS,
            TURN_PIECES,
            u64::from(BLOCK_LEN),
            |key| peers.get(&key).map_or(0, |peer| peer.outbox.uploaded.load(Ordering::Relaxed)),
            |key| peers.get(&key).is_some_and(|peer| !peer.bitfield.is_complete()),
        );
        for key in begun {
            if let Some(peer) = state.peers.get_mut(&key)
                && peer.am_choking
            {
                peer.am_choking = false;
                peer.unchoked_at = Instant::now();
                peer.outbox.push(&Message::Unchoke);
            }
            self.show_window(state, key);
        }
    }

    /// Whether a super-seeder's turn waits for its last bytes to go out: the torrent's loop looks again soon.
    pub(crate) fn turn_closing(&self) -> bool {
        self.lock().offers.as_ref().is_some_and(|offers| offers.turn_closing())
    }

    /// [`Swarm::take_turns`], from the torrent's loop.
    pub(crate) fn pass_turns(&self) {
        let mut state = self.lock();
        self.take_turns(&mut state);
    }

    /// Shows `key` more pieces (with `have`), as far as its turn allows, until its window of pieces it has not
    /// asked for is full: about half a second of what it takes from us, 4 to 64 pieces; none before its first
    /// turn.
    fn show_window(&self, state: &mut State, key: PeerKey) {
        let State { offers, peers, picker, rng, .. } = state;
        let (Some(offers), Some(peer)) = (offers.as_mut(), peers.get(&key)) else { return };
        let per_piece = u64::from(self.storage.piece_length()).max(1);
        let by_rate = |seconds: u64| {
            usize::try_from(peer.upload_rate.bytes_per_second().saturating_mul(seconds) / 2 / per_piece)
                .unwrap_or(usize::MAX)
        };
        let window = if peers.len() == 1 {
            // Alone, it has nobody to pass pieces to: a window only slows it down (libtorrent fell to half its
            // speed with 1,024 pieces shown; 200 MiB took it 2.9 s with 16 pieces shown, 1.9 s with 256, as
            // from a plain seeder), so it grows to four seconds of what it takes, at least 256 pieces. A second
            // peer shrinks it back (below).
            by_rate(8).max(256)
        } else if peer.am_choking {
            0
        } else {
            by_rate(1).clamp(4, 64)
        };
        offers.shrink(key, window, |index| picker.availability(index));
        let mut shown = Vec::new();
        offers.top_up(key, &peer.bitfield, window, |index| picker.availability(index), rng, &mut shown);
        for index in shown {
            peer.outbox.push(&Message::Have { index });
        }
    }
}
