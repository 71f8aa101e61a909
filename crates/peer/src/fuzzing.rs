//! Drives one torrent's swarm with any sequence of peer-wire messages from up to eight make-believe peers, with no
//! socket and no runtime: for the `swarm_messages` fuzz target and this crate's tests. After every step the
//! swarm's invariants are checked ([`Swarm::assert_invariants`]), so a sequence that breaks one panics, as does
//! any panic in message handling.
//!
//! The input is a script of one-byte operations, each followed by its arguments: connect or drop a peer, hand a
//! peer's decoded message to the swarm (from raw wire bytes, or built from a few argument bytes), answer a
//! request the swarm sent with the right bytes or with garbage, run the once-a-second tick, run the pending
//! hash checks, or answer a BEP 52 hash request the swarm sent with the right hashes, forged ones or a reject.
//! What the swarm sends each peer is read back and decoded, as the peer would, so answers follow real requests.
//! The torrent is small (7 pieces of 32 KiB, the last one short) and lives in a temporary folder; it is a v1
//! torrent, or a v2-only one of the same bytes ([`Harness::v2`]), whose failed pieces ask for block hashes.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use metainfo::merkle::{self, BLOCK_SIZE, Hash32};
use metainfo::merkle_proof::{HashRange, HashTree};
use peer_wire::{Bitfield, Message};
use sha1::{Digest as _, Sha1};
use tokio::sync::mpsc;

use crate::close::CloseReason;

use crate::outbox::{Batch, Outbox};
use crate::picker::{Block, PeerKey};
use crate::storage::Storage;
use crate::swarm::{Direction, Swarm, SwarmConfig};

const PIECE_LENGTH: u32 = 32 * 1024;
const TOTAL_LENGTH: u64 = 6 * PIECE_LENGTH as u64 + 5000;
const SLOTS: usize = 8;

/// The torrent's bytes: a fixed pattern, so the harness can answer any request.
pub(crate) fn content(offset: u64) -> u8 {
    (offset.wrapping_mul(31) ^ (offset >> 8)) as u8
}

struct Connection {
    key: PeerKey,
    outbox: Arc<Outbox>,
    /// Requests the swarm sent this peer, oldest first.
    requests: VecDeque<Block>,
    /// Hash requests (BEP 52) the swarm sent this peer, oldest first: the file's root and the range.
    hash_requests: VecDeque<([u8; 32], HashRange)>,
}

/// A swarm and its make-believe peers.
pub struct Harness {
    swarm: Arc<Swarm>,
    connections: Vec<Option<Connection>>,
    connects: u64,
    dir: PathBuf,
    events: mpsc::UnboundedReceiver<([u8; 20], crate::events::Event)>,
    /// For a v2 torrent: the file's whole merkle tree, to answer hash requests from.
    tree: Option<HashTree>,
}

static HARNESSES: AtomicU64 = AtomicU64::new(0);

/// The second info-hash the harness's swarm answers to, as a hybrid torrent's truncated v2 hash.
pub const HARNESS_V2_HASH: [u8; 20] = [0x32; 20];

impl Harness {
    /// A leecher with nothing yet (`seeding`: false) or a super-seeder with everything.
    ///
    /// # Panics
    ///
    /// When the temporary folder cannot be made or written.
    #[must_use]
    pub fn new(seeding: bool) -> Self {
        Self::with_privacy(seeding, false)
    }

    /// [`Harness::new`] for a v2-only torrent of the same bytes (BEP 52): every peer speaks v2, pieces are checked
    /// against the file's merkle tree, and a failed piece's block hashes are asked for.
    ///
    /// # Panics
    ///
    /// When the temporary folder cannot be made or written.
    #[must_use]
    pub fn v2(seeding: bool) -> Self {
        let n = HARNESSES.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("bt-swarm-harness-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let source = dir.join("source");
        std::fs::create_dir_all(&source).expect("make the harness folder");
        let data: Vec<u8> = (0..TOTAL_LENGTH).map(content).collect();
        std::fs::write(source.join("data"), &data).expect("write the harness data");
        let options = metainfo::CreateOptions {
            piece_length: Some(u64::from(PIECE_LENGTH)),
            meta_version: metainfo::MetaVersion::V2,
            ..metainfo::CreateOptions::default()
        };
        let created = metainfo::create_from_path(&source.join("data"), &options, &|_| {}).expect("v2 harness torrent");
        let torrent = metainfo::Torrent::from_bytes_any(&created.bytes).expect("the v2 harness torrent parses");
        let into = if seeding { source } else { dir.join("leech") };
        let leaves: Vec<Hash32> = data.chunks(BLOCK_SIZE as usize).map(merkle::leaf).collect();
        let tree = HashTree::from_leaves(&leaves, TOTAL_LENGTH).expect("the file's tree");
        let mut harness = Self::with_torrent(&torrent, &into, seeding, dir);
        harness.tree = Some(tree);
        harness
    }

    /// [`Harness::new`] for a private torrent (BEP 27) when `private`.
    fn with_privacy(seeding: bool, private: bool) -> Self {
        let n = HARNESSES.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("bt-swarm-harness-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("make the harness folder");
        let data: Vec<u8> = (0..TOTAL_LENGTH).map(content).collect();
        let mut pieces = Vec::new();
        for piece in data.chunks(PIECE_LENGTH as usize) {
            pieces.extend_from_slice(&Sha1::digest(piece));
        }
        let mut info =
            format!("d6:lengthi{TOTAL_LENGTH}e4:name4:data12:piece lengthi{PIECE_LENGTH}e6:pieces{}:", pieces.len())
                .into_bytes();
        info.extend_from_slice(&pieces);
        if private {
            info.extend_from_slice(b"7:privatei1e");
        }
        info.push(b'e');
        let mut bytes = b"d4:info".to_vec();
        bytes.extend_from_slice(&info);
        bytes.push(b'e');
        let torrent = metainfo::Torrent::from_bytes(&bytes).expect("the harness torrent parses");
        if seeding {
            std::fs::write(dir.join("data"), &data).expect("write the harness data");
        }
        Self::with_torrent(&torrent, &dir.clone(), seeding, dir)
    }

    /// A swarm over `torrent`, its data in `data_dir`; `dir` is removed when the harness is dropped.
    fn with_torrent(torrent: &metainfo::Torrent, data_dir: &std::path::Path, seeding: bool, dir: PathBuf) -> Self {
        let storage = Arc::new(Storage::new(torrent, data_dir).expect("harness storage"));
        let mut have = Bitfield::new(storage.num_pieces());
        if seeding {
            have = Bitfield::full(storage.num_pieces());
        }
        let config = SwarmConfig {
            max_peers: 6,
            max_peers_per_ip: 4,
            super_seed: true,
            upload: crate::rate::Limits::default(),
            download: crate::rate::Limits::default(),
            connection_budget: None,
            sequential: false,
            defer_verification: true,
            private: torrent.info.private,
            listen_port: Some(6881),
            local_ip: None,
            trace: None,
            dht: None,
            hash_trees: Arc::new(crate::v2::HashTrees::of(torrent)),
            // As if the torrent were a hybrid, so that a connection may knock with its v2 hash.
            info_hash_v2: Some(HARNESS_V2_HASH),
            hashing: None,
            seed: None,
            connector: None,
            random_pieces: false,
        };
        let (events, receiver) = crate::events::EventSink::channel(torrent.info_hash.0);
        let metadata = torrent.info_bytes.clone();
        let swarm =
            Swarm::new(storage, metadata, torrent.info_hash.0, *b"-BT0001-harness00000", &have, &config, events)
                .expect("harness swarm");
        Self {
            swarm: Arc::new(swarm),
            connections: (0..SLOTS).map(|_| None).collect(),
            connects: 0,
            dir,
            events: receiver,
            tree: None,
        }
    }

    /// Runs a script (see the module docs); every step is followed by an invariant check.
    pub fn run(&mut self, script: &[u8]) {
        let mut input = script.iter().copied();
        while let Some(op) = input.next() {
            let slot = usize::from(input.next().unwrap_or(0)) % SLOTS;
            match op % 10 {
                0 => self.connect(slot, input.next().unwrap_or(0)),
                1 => self.disconnect(slot, &CloseReason::Closed),
                2 => {
                    let len = usize::from(input.next().unwrap_or(0));
                    let bytes: Vec<u8> = input.by_ref().take(len).collect();
                    self.raw(slot, &bytes);
                }
                3 => {
                    let args: Vec<u8> = input.by_ref().take(5).collect();
                    self.message(slot, &args);
                }
                4 => self.answer(slot, true),
                5 => self.answer(slot, false),
                6 => self.swarm.tick(),
                7 => self.swarm.run_deferred(),
                _ => self.answer_hashes(slot, input.next().unwrap_or(0)),
            }
            self.settle();
        }
        self.swarm.run_deferred();
        self.settle();
    }

    /// The peers banned so far.
    pub fn banned(&mut self) -> Vec<SocketAddr> {
        let mut banned = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            if let (_, crate::events::Event::PeerBanned { addr }) = event {
                banned.push(addr);
            }
        }
        banned
    }

    /// Every event since last asked.
    #[cfg(test)]
    fn drain_events(&mut self) -> Vec<crate::events::Event> {
        std::iter::from_fn(|| self.events.try_recv().ok().map(|(_, event)| event)).collect()
    }

    /// Whether every piece is verified.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.swarm.is_complete()
    }

    /// The swarm, for tests that drive it through real connection tasks.
    #[cfg(test)]
    pub(crate) fn swarm(&self) -> Arc<Swarm> {
        self.swarm.clone()
    }

    fn connect(&mut self, slot: usize, arg: u8) {
        if self.connections[slot].is_some() {
            return;
        }
        self.connects += 1;
        // Two addresses for eight slots, so the per-address cap and address bans are reached; the low bits pick
        // the peer id, so a peer can come back as itself.
        let addr = SocketAddr::from(([10, 0, 0, 1 + (slot % 2) as u8], 6881 + slot as u16));
        let mut peer_id = *b"-XX0001-000000000000";
        peer_id[19] = b'a' + (arg % 16);
        peer_id[18] = b'a' + slot as u8;
        let direction = if arg & 0x80 == 0 { Direction::Incoming } else { Direction::Outgoing };
        let v2 = arg & 0x10 != 0 || self.tree.is_some();
        if let Ok(admitted) = self.swarm.admit(addr, peer_id, direction, arg & 0x40 != 0, arg & 0x20 != 0, v2) {
            self.connections[slot] = Some(Connection {
                key: admitted.key,
                outbox: admitted.outbox,
                requests: VecDeque::new(),
                hash_requests: VecDeque::new(),
            });
        }
    }

    fn disconnect(&mut self, slot: usize, reason: &CloseReason) {
        if let Some(connection) = self.connections[slot].take() {
            self.swarm.remove(connection.key, reason);
        }
    }

    fn deliver(&mut self, slot: usize, message: Message<'_>) {
        let Some(connection) = &self.connections[slot] else { return };
        if let Err(reason) = self.swarm.handle_messages(connection.key, std::iter::once(message)) {
            self.disconnect(slot, &reason);
        }
    }

    fn raw(&mut self, slot: usize, bytes: &[u8]) {
        match peer_wire::decode(bytes, self.swarm.message_limit) {
            Ok(Some((message, _))) => self.deliver(slot, message),
            Ok(None) => {}
            Err(_) => self.disconnect(slot, &CloseReason::protocol("undecodable")),
        }
    }

    fn message(&mut self, slot: usize, args: &[u8]) {
        let arg = |i: usize| u32::from(args.get(i).copied().unwrap_or(0));
        let pieces = self.swarm.storage.num_pieces();
        let index = arg(1) % (pieces + 1);
        let block = Block { piece: index, offset: arg(2) % 3 * peer_wire::BLOCK_LEN, length: peer_wire::BLOCK_LEN };
        let bits = {
            let mut bits = Bitfield::new(pieces);
            for i in (0..pieces).filter(|i| arg(3) & (1 << i) != 0) {
                let _ = bits.set(i);
            }
            bits
        };
        let bitfield = bits.to_message();
        let message = match arg(0) % 9 {
            0 => Message::Choke,
            1 => Message::Unchoke,
            2 => Message::Interested,
            3 => Message::NotInterested,
            4 => Message::Have { index },
            5 => bitfield,
            6 => Message::Request { index: block.piece, begin: block.offset, length: block.length },
            7 => Message::Cancel { index: block.piece, begin: block.offset, length: block.length },
            _ => Message::KeepAlive,
        };
        self.deliver(slot, message);
    }

    /// Answers the peer's oldest request the swarm sent it, with the torrent's bytes or with flipped ones (a v2
    /// torrent's piece stream has zeros after the file, up to the end of its last piece).
    fn answer(&mut self, slot: usize, good: bool) {
        let Some(block) = self.connections[slot].as_mut().and_then(|c| c.requests.pop_front()) else { return };
        let start = u64::from(block.piece) * u64::from(PIECE_LENGTH) + u64::from(block.offset);
        let byte = |at: u64| if at < TOTAL_LENGTH { content(at) } else { 0 };
        let data: Vec<u8> =
            (start..start + u64::from(block.length)).map(|at| if good { byte(at) } else { !byte(at) }).collect();
        self.deliver(slot, Message::Piece { index: block.piece, begin: block.offset, block: &data });
    }

    /// Answers the peer's oldest hash request: `how` picks the right hashes (0 to 3, and for a v1 torrent, which has
    /// no tree, hashes of zeros), a forged hash (4), a wrong count (5), or a reject (6 and up).
    fn answer_hashes(&mut self, slot: usize, how: u8) {
        let Some((root, range)) = self.connections[slot].as_mut().and_then(|c| c.hash_requests.pop_front()) else {
            return;
        };
        let HashRange { base_layer, index, length, proof_layers } = range;
        let served = self.tree.as_ref().and_then(|tree| tree.serve(&range).ok());
        let mut hashes = served.map_or_else(|| vec![0u8; range.hash_count() as usize * 32], |hashes| hashes.concat());
        match how % 8 {
            0..=3 => {}
            4 => {
                if let Some(byte) = hashes.first_mut() {
                    *byte ^= 1;
                }
            }
            5 => hashes.truncate(hashes.len().saturating_sub(32)),
            _ => {
                let reject = Message::HashReject { pieces_root: root, base_layer, index, length, proof_layers };
                return self.deliver(slot, reject);
            }
        }
        self.deliver(
            slot,
            Message::Hashes { pieces_root: root, base_layer, index, length, proof_layers, hashes: &hashes },
        );
    }

    /// Reads what the swarm queued for each peer, as the peer would; drops peers the swarm hung up on; checks.
    fn settle(&mut self) {
        for slot in 0..SLOTS {
            let Some(connection) = self.connections[slot].as_mut() else { continue };
            let mut batch = Batch::default();
            connection.outbox.take(usize::MAX, &mut batch);
            let mut at = 0;
            while let Ok(Some((message, used))) = peer_wire::decode(&batch.bytes[at..], peer_wire::MAX_MESSAGE_LEN) {
                at += used;
                match message {
                    Message::Request { index, begin, length } => {
                        connection.requests.push_back(Block { piece: index, offset: begin, length });
                    }
                    Message::Cancel { index, begin, length } => {
                        let cancelled = Block { piece: index, offset: begin, length };
                        connection.requests.retain(|block| *block != cancelled);
                    }
                    Message::HashRequest { pieces_root, base_layer, index, length, proof_layers } => {
                        let range = HashRange { base_layer, index, length, proof_layers };
                        connection.hash_requests.push_back((pieces_root, range));
                    }
                    _ => {}
                }
            }
            if connection.outbox.is_closed() {
                self.disconnect(slot, &CloseReason::Removed);
            }
        }
        self.swarm.assert_invariants();
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;
    use crate::sources::Source;

    #[test]
    fn honest_answers_complete_the_download_and_a_liar_is_banned_without_harm() {
        let mut harness = Harness::new(false);
        // Slot 0 is a liar, slot 2 an honest seeder (another address); both have every piece and unchoke us.
        let mut script = vec![0, 0, 0, 0, 2, 0];
        for slot in [0, 2] {
            script.extend([3, slot, 5, 0, 0, 0x7f, 0, 3, slot, 1, 0, 0, 0, 0]);
        }
        script.extend([5, 0, 5, 0, 5, 0, 7, 0]);
        for _ in 0..200 {
            script.extend([4, 2, 4, 2, 5, 0, 7, 0]);
        }
        harness.run(&script);
        assert!(harness.is_complete(), "the honest peer's answers did not complete the download");
        // Both at 10.0.0.1: the liar on port 6881 (slot 0), the honest peer on 6883 (slot 2).
        assert_eq!(harness.banned(), [SocketAddr::from(([10, 0, 0, 1], 6881))], "exactly the liar is banned");
        assert!(harness.connections[0].is_none(), "the liar is still connected");
        let data = std::fs::read(harness.dir.join("data")).expect("the download");
        assert!(data.iter().enumerate().all(|(at, byte)| *byte == content(at as u64)), "the download is wrong");
    }

    /// A ut_pex message from slot `slot` naming `count` public peers starting at 1.2.`first`.0.
    fn pex_flood(first: u8, count: u16) -> Vec<u8> {
        let added = (0..count)
            .map(|i| peer_wire::PexPeer {
                addr: SocketAddr::from(([1, 2, first.wrapping_add((i >> 8) as u8), i as u8], 6881)),
                flags: peer_wire::PexFlags(0),
            })
            .collect();
        let mut payload = Vec::new();
        peer_wire::PexMessage { added, dropped: Vec::new() }.encode(&mut payload);
        payload
    }

    #[test]
    fn peer_exchange_floods_add_few_candidates_and_malformed_messages_end_the_connection() {
        let mut harness = Harness::new(false);
        for slot in 0..3 {
            // Incoming, with the extension protocol; each says it takes ut_pex under id 1.
            harness.connect(slot, 0x40);
            harness.deliver(slot, Message::Extended { id: 0, payload: b"d1:md6:ut_pexi1eee" });
        }
        // 2,000 peers (BEP 11 allows 50): the decoder keeps 200 and the swarm takes 50.
        harness.deliver(0, Message::Extended { id: 2, payload: &pex_flood(0, 2000) });
        assert_eq!(harness.swarm.candidate_count(), 50);
        // The same peer again at once: ignored, it must wait its turn.
        harness.deliver(0, Message::Extended { id: 2, payload: &pex_flood(100, 50) });
        assert_eq!(harness.swarm.candidate_count(), 50);
        assert!(harness.connections[0].is_some());
        // 10,000 peers do not fit in a message of this torrent (60 KB over its 16 KiB limit): the peer is dropped.
        let mut wire = Vec::new();
        Message::Extended { id: 2, payload: &pex_flood(200, 10_000) }.encode(&mut wire);
        harness.raw(1, &wire);
        assert!(harness.connections[1].is_none(), "a 10,000-peer message was taken");
        // A list that is not whole 6-byte entries is malformed: the connection ends, nothing is added.
        harness.deliver(2, Message::Extended { id: 2, payload: b"d5:added5:abcdee" });
        assert!(harness.connections[2].is_none());
        assert_eq!(harness.swarm.candidate_count(), 50);
    }

    /// Two peers that dial each other at once with full tables: the connection from the peer we are dialling is
    /// let in over `--max-peers` (one of the two halves is closed as a duplicate once both are in), a stranger's
    /// is not.
    #[test]
    fn a_full_swarm_takes_the_connection_of_a_peer_it_is_dialling_and_refuses_a_strangers() {
        let harness = Harness::new(false);
        let swarm = harness.swarm();
        // The harness's swarm takes 6 peers: six dials fill it.
        for n in 0..6 {
            assert!(swarm.reserve_address(SocketAddr::from(([10, 1, 0, n], 6881))));
        }
        let stranger = SocketAddr::from(([10, 1, 0, 9], 40_001));
        assert!(!swarm.reserve_address(SocketAddr::new(stranger.ip(), 6881)), "full");
        assert!(!swarm.has_room_for(stranger.ip()));
        let refused = swarm.admit(stranger, *b"-XX0001-stranger0000", Direction::Incoming, false, false, false);
        assert!(refused.is_err_and(|reason| reason.to_string().contains("too many")), "a stranger is refused");
        let dialled = SocketAddr::from(([10, 1, 0, 3], 40_000));
        assert!(swarm.has_room_for(dialled.ip()), "we are dialling it");
        let peer_id = *b"-XX0001-dialled00000";
        assert!(swarm.admit(dialled, peer_id, Direction::Incoming, false, false, false).is_ok());
        // A second connection from that host, under another peer id, is refused: one past the cap, not more.
        assert!(!swarm.has_room_for(dialled.ip()));
        let again = SocketAddr::from(([10, 1, 0, 3], 40_002));
        let refused = swarm.admit(again, *b"-XX0001-dialled11111", Direction::Incoming, false, false, false);
        assert!(refused.is_err_and(|reason| reason.to_string().contains("too many")));
        // Our dial is answered too: one of the two connections stays.
        let _ = swarm.admit(SocketAddr::from(([10, 1, 0, 3], 6881)), peer_id, Direction::Outgoing, false, false, false);
        assert_eq!(swarm.peers().len(), 1);
    }

    #[test]
    fn a_seeder_does_not_dial_peers_it_knows_are_seeds() {
        let mut harness = Harness::new(true);
        harness.connect(0, 0x40);
        harness.deliver(0, Message::Extended { id: 0, payload: b"d1:md6:ut_pexi1eee" });
        let (seed, leecher) = (SocketAddr::from(([1, 2, 3, 4], 6881)), SocketAddr::from(([1, 2, 3, 5], 6881)));
        let added = vec![
            peer_wire::PexPeer { addr: seed, flags: peer_wire::PexFlags::SEED },
            peer_wire::PexPeer { addr: leecher, flags: peer_wire::PexFlags(0) },
        ];
        let mut payload = Vec::new();
        peer_wire::PexMessage { added, dropped: Vec::new() }.encode(&mut payload);
        harness.deliver(0, Message::Extended { id: 2, payload: &payload });
        assert_eq!(harness.swarm.candidate_count(), 2);
        assert_eq!(harness.swarm.due_candidates(), [leecher], "peer exchange said the other one is a seed");

        // A peer we dialled (slot 1 is 10.0.0.2:6882) turns out to have everything: we hang up, and do not dial it
        // again 5 s later.
        let dialled = SocketAddr::from(([10, 0, 0, 2], 6882));
        harness.swarm.add_candidate(dialled, Source::Tracker);
        harness.connect(1, 0x80);
        let everything = Bitfield::full(harness.swarm.storage.num_pieces());
        harness.deliver(1, everything.to_message());
        harness.disconnect(1, &CloseReason::Closed);
        harness.swarm.candidate_ended(dialled);
        let later = harness.swarm.due_candidates_at(Instant::now() + Duration::from_secs(3600));
        assert!(!later.contains(&dialled) && !later.contains(&seed), "a seed was dialled: {later:?}");
    }

    #[test]
    fn a_peer_that_dialled_us_is_not_dialled_back_while_connected() {
        let mut harness = Harness::new(false);
        // Slot 0 dials us from 10.0.0.1:6881 and says it listens on port 7000.
        harness.connect(0, 0x40);
        harness.deliver(0, Message::Extended { id: 0, payload: b"d1:md6:ut_pexi1ee1:pi7000ee" });
        let listening = SocketAddr::from(([10, 0, 0, 1], 7000));
        let other = SocketAddr::from(([10, 0, 0, 9], 7000));
        harness.swarm.add_candidate(listening, Source::Tracker);
        harness.swarm.add_candidate(other, Source::Tracker);
        assert_eq!(harness.swarm.due_candidates(), [other]);
        harness.disconnect(0, &CloseReason::Closed);
        assert_eq!(harness.swarm.due_candidates(), [listening], "dialled once that connection is gone");
    }

    #[test]
    fn a_dial_refused_as_a_duplicate_teaches_where_the_peer_listens() {
        let mut harness = Harness::new(false);
        // Slot 0 dials us from 10.0.0.1:6881 with no extended handshake (so no listen port), peer id ...aa.
        harness.connect(0, 0);
        let listening = SocketAddr::from(([10, 0, 0, 1], 7000));
        harness.swarm.add_candidate(listening, Source::Tracker);
        assert_eq!(harness.swarm.due_candidates(), [listening]);
        // Our dial reaches the same peer; its peer id is greater than ours, so its connection is the one kept.
        let refused =
            harness.swarm.admit(listening, *b"-XX0001-0000000000aa", Direction::Outgoing, false, false, false);
        assert!(refused.is_err_and(|reason| reason == CloseReason::Refused(crate::close::Refusal::DuplicatePeer)));
        harness.swarm.candidate_ended(listening);
        let later = harness.swarm.due_candidates_at(Instant::now() + Duration::from_secs(3600));
        assert!(later.is_empty(), "dialled again while connected: {later:?}");
    }

    #[test]
    fn a_peer_that_hangs_up_at_once_is_dialled_less_and_less_often_and_one_that_sent_pieces_soon() {
        let mut harness = Harness::new(false);
        // Slot 1 is 10.0.0.2:6882; 0x80 makes it a connection we opened.
        let addr = SocketAddr::from(([10, 0, 0, 2], 6882));
        harness.swarm.add_candidate(addr, Source::Tracker);
        assert_eq!(harness.swarm.due_candidates(), [addr]);
        // Each time it hangs up right after the handshake, the wait before the next dial doubles: 5, 10, 20 s.
        for backoff in [5, 10, 20] {
            harness.connect(1, 0x80);
            harness.disconnect(1, &CloseReason::Closed);
            let ended = Instant::now();
            harness.swarm.candidate_ended(addr);
            let at = |seconds: u64| harness.swarm.due_candidates_at(ended + Duration::from_secs(seconds));
            assert!(at(backoff - 1).is_empty(), "dialled again before {backoff} s");
            assert_eq!(at(backoff + 1), [addr], "not dialled again after {backoff} s");
        }

        // A connection that carried a block clears the failures: the next try comes after the first back-off.
        harness.connect(1, 0x80);
        let everything = Bitfield::full(harness.swarm.storage.num_pieces());
        harness.deliver(1, everything.to_message());
        harness.deliver(1, Message::Unchoke);
        harness.settle();
        harness.answer(1, true);
        harness.disconnect(1, &CloseReason::Closed);
        let ended = Instant::now();
        harness.swarm.candidate_ended(addr);
        assert!(harness.swarm.due_candidates_at(ended + Duration::from_secs(4)).is_empty());
        assert_eq!(harness.swarm.due_candidates_at(ended + Duration::from_secs(6)), [addr]);
    }

    #[test]
    fn a_private_torrent_takes_no_peers_from_peer_exchange() {
        let mut harness = Harness::with_privacy(false, true);
        harness.connect(0, 0x40);
        harness.deliver(0, Message::Extended { id: 0, payload: b"d1:md6:ut_pexi1eee" });
        harness.deliver(0, Message::Extended { id: 2, payload: &pex_flood(0, 20) });
        assert_eq!(harness.swarm.candidate_count(), 0);
        assert!(harness.connections[0].is_some());
    }

    /// A v2 liar and an honest peer share a piece; a third peer, asked for its block hashes, names the liar.
    #[test]
    fn a_v2_harness_settles_a_shared_failure_with_block_hashes() {
        let mut harness = Harness::v2(false);
        // Slots 0 (liar), 2 (honest) and 4 (a witness that has every piece but never unchokes us).
        let mut script = Vec::new();
        for slot in [0, 2, 4] {
            script.extend([0, slot, 0, 3, slot, 5, 0, 0, 0x7f, 0]);
        }
        // The liar is unchoked and sends one bad block of a two-block piece, then chokes us; the honest peer is
        // unchoked and sends the rest, the other block of that piece first.
        script.extend([3, 0, 1, 0, 0, 0, 0, 5, 0, 3, 0, 0, 0, 0, 0, 0]);
        script.extend([3, 2, 1, 0, 0, 0, 0]);
        for _ in 0..8 {
            script.extend([4, 2]);
        }
        script.extend([7, 0]);
        harness.run(&script);
        let events = harness.drain_events();
        let failed_shared = events
            .iter()
            .any(|event| matches!(event, crate::events::Event::PieceFailed { senders, .. } if senders.len() == 2));
        assert!(failed_shared, "no piece failed with two senders: {events:?}");
        // The witness answers the block-hash request with the right hashes.
        harness.run(&[8, 4, 0]);
        let events = harness.drain_events();
        let checked = events.iter().find_map(|event| match event {
            crate::events::Event::BlocksChecked { liars, by, .. } => Some((liars.clone(), *by)),
            _ => None,
        });
        let (liar, witness) = (SocketAddr::from(([10, 0, 0, 1], 6881)), SocketAddr::from(([10, 0, 0, 1], 6885)));
        assert_eq!(checked, Some((vec![liar], witness)), "{events:?}");
        assert!(harness.connections[0].is_none(), "the liar is still connected");
        assert!(harness.connections[2].is_some(), "the honest peer was dropped");
    }

    #[test]
    fn a_super_seeder_survives_its_peers() {
        let mut harness = Harness::new(true);
        harness.run(&[0, 1, 0, 0, 3, 1, 2, 0, 0, 0, 0, 0, 3, 0, 6, 2, 1, 0, 0, 6, 0, 1, 1, 0, 3, 0, 4, 1]);
        assert!(harness.is_complete());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Any script keeps every invariant (the harness checks after each step) and never panics.
        #[test]
        fn any_script_keeps_the_swarm_consistent(script in proptest::collection::vec(any::<u8>(), 0..600), seeding in any::<bool>()) {
            Harness::new(seeding).run(&script);
        }

        /// The same for a v2 torrent, whose failed pieces ask for block hashes that the script answers.
        #[test]
        fn any_script_keeps_a_v2_swarm_consistent(script in proptest::collection::vec(any::<u8>(), 0..600), seeding in any::<bool>()) {
            Harness::v2(seeding).run(&script);
        }
    }
}
