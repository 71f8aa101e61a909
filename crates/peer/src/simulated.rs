//! One torrent's peer as a simulation runs it (the `sim` crate): the real swarm, picker, choker, super-seeder and
//! connection code, with its seams set to the simulation's. Time is the runtime's clock (virtual when the runtime's
//! clock is paused), choices come from a seeded generator, connections from a [`Connector`] and from
//! [`SimulatedPeer::accept`], and the data from a [`Storage::synthetic`]: nothing touches a disk or a socket, and
//! nothing leaves the runtime's thread.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use peer_wire::Bitfield;

pub use crate::connection::{ByteStream, Connecting, Connector};
use crate::events::{Event, EventSink};
use crate::rate::Limits;
use crate::sources::Source;
use crate::storage::Storage;
use crate::swarm::{Swarm, SwarmConfig};
use crate::torrent::{SwarmTimes, tend_swarm};

/// What a simulated peer is.
#[derive(Debug, Clone)]
pub struct SimulatedPeerConfig {
    /// The seed of the torrent's made-up bytes ([`Storage::synthetic`]): the same for every peer of a swarm.
    pub content_seed: u64,
    /// The seed of this peer's own choices.
    pub seed: u64,
    /// Starts with every piece.
    pub complete: bool,
    /// Super-seeds (with every piece).
    pub super_seed: bool,
    /// Most connections at once.
    pub max_peers: usize,
    /// Its own upload limit in bytes per second (`--upload-limit`), if any, over what its link carries.
    pub upload_limit: Option<u64>,
    /// Where it listens: told to peers, who pass it on.
    pub listen: SocketAddr,
    pub peer_id: [u8; 20],
    /// How it reaches the others.
    pub connector: Arc<dyn Connector>,
    /// Starts new pieces in random order, not rarest first: a deliberately worse picker, to check that the
    /// simulator tells them apart.
    pub random_pieces: bool,
    /// Sends other bytes than the torrent's in every block ([`Storage::synthetic_liar`]): a liar, for the others'
    /// smart ban to catch.
    pub lies: bool,
}

/// A swarm's events, each with its torrent's info-hash.
type Events = tokio::sync::mpsc::UnboundedReceiver<([u8; 20], Event)>;

/// What a peer's own checks found: pieces that failed, and peers it banned for them.
#[derive(Debug, Default)]
struct Caught {
    pieces_failed: AtomicU64,
    banned: Mutex<Vec<SocketAddr>>,
}

/// A peer of one torrent, driven by [`SimulatedPeer::run`].
pub struct SimulatedPeer {
    swarm: Arc<Swarm>,
    /// The swarm's events, read by [`SimulatedPeer::run`] for what they say of liars.
    events: Mutex<Option<Events>>,
    caught: Arc<Caught>,
}

impl SimulatedPeer {
    /// A peer of `torrent` (a v1 torrent; its piece hashes are not used).
    ///
    /// # Errors
    ///
    /// The torrent's layout or size is not one the storage or the picker can hold.
    pub fn new(torrent: &metainfo::Torrent, config: &SimulatedPeerConfig) -> Result<SimulatedPeer, String> {
        let storage = if config.lies {
            Storage::synthetic_liar(torrent, config.content_seed)
        } else {
            Storage::synthetic(torrent, config.content_seed)
        };
        let storage = storage.map_err(|err| err.to_string())?;
        let mut have = Bitfield::new(storage.num_pieces());
        if config.complete {
            for index in 0..storage.num_pieces() {
                let _ = have.set(index);
            }
        }
        let swarm_config = SwarmConfig {
            max_peers: config.max_peers,
            max_peers_per_ip: 8,
            super_seed: config.super_seed,
            upload: Limits {
                session: None,
                torrent: Arc::new(crate::rate::TransferLimiter::with_rate(config.upload_limit)),
            },
            download: Limits::default(),
            sequential: false,
            defer_verification: false,
            private: false,
            listen_port: Some(config.listen.port()),
            local_ip: Some(config.listen.ip()),
            trace: None,
            dht: None,
            hash_trees: Arc::new(crate::v2::HashTrees::of(torrent)),
            connection_budget: None,
            info_hash_v2: None,
            hashing: None,
            seed: Some(config.seed),
            connector: Some(config.connector.clone()),
            random_pieces: config.random_pieces,
        };
        let info_hash = torrent.info_hash.0;
        // What a simulation reports it reads from the swarm, but for failed pieces and bans: the events, which
        // `run` reads as they come.
        let (events, receiver) = EventSink::channel(info_hash);
        let swarm = Swarm::new(
            Arc::new(storage),
            torrent.info_bytes.clone(),
            info_hash,
            config.peer_id,
            &have,
            &swarm_config,
            events,
        )
        .map_err(|err| err.to_string())?;
        Ok(SimulatedPeer {
            swarm: Arc::new(swarm),
            events: Mutex::new(Some(receiver)),
            caught: Arc::new(Caught::default()),
        })
    }

    /// Runs a connection that `from` opened to this peer, in a task of its own.
    pub fn accept(&self, stream: Box<dyn ByteStream>, from: SocketAddr) {
        tokio::spawn(crate::connection::run_accepted(self.swarm.clone(), stream, from));
    }

    /// Hears of a peer at `addr`, as from a tracker.
    pub fn add_peer(&self, addr: SocketAddr) {
        self.swarm.add_candidate(addr, Source::Tracker);
    }

    /// The torrent's loop ([`tend_swarm`], as a torrent's own): ticks, dials; until [`SimulatedPeer::close`].
    pub async fn run(&self) {
        let swarm = &self.swarm;
        let events = self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(mut events) = events {
            let caught = self.caught.clone();
            // Read as they come, so that a long run's events do not pile up.
            tokio::spawn(async move {
                while let Some((_, event)) = events.recv().await {
                    match event {
                        Event::PieceFailed { .. } => {
                            caught.pieces_failed.fetch_add(1, Ordering::Relaxed);
                        }
                        Event::PeerBanned { addr } => {
                            caught.banned.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(addr);
                        }
                        _ => {}
                    }
                }
            });
        }
        let mut times = SwarmTimes::default();
        let mut disk_check = None;
        loop {
            let activity = swarm.activity.notified();
            let closed = swarm.until_closed();
            tokio::pin!(activity, closed);
            activity.as_mut().enable();
            if swarm.is_closed() {
                return;
            }
            let wake = tend_swarm(swarm, &mut times, &mut disk_check, None, tokio::time::Instant::now());
            tokio::select! {
                () = activity => times.woken(swarm),
                () = closed => return,
                () = tokio::time::sleep_until(wake.unwrap_or_else(tokio::time::Instant::now)), if wake.is_some() => {}
            }
        }
    }

    /// Returns once every piece is in (at once if it is).
    pub async fn until_finished(&self) {
        loop {
            let changed = self.swarm.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.swarm.is_finished() || self.swarm.is_closed() {
                return;
            }
            changed.await;
        }
    }

    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.swarm.is_finished()
    }

    /// Bytes of new blocks received, and of blocks sent.
    #[must_use]
    pub fn transferred(&self) -> (u64, u64) {
        let (downloaded, uploaded, _) = self.swarm.progress();
        (downloaded, uploaded)
    }

    /// Pieces that failed its check, and the peers it banned for sending bad data.
    #[must_use]
    pub fn caught(&self) -> (u64, Vec<SocketAddr>) {
        let banned = self.caught.banned.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        (self.caught.pieces_failed.load(Ordering::Relaxed), banned)
    }

    /// Peers connected now.
    #[must_use]
    pub fn connections(&self) -> usize {
        self.swarm.status().peers
    }

    /// Hangs up on everyone; [`SimulatedPeer::run`] returns.
    pub fn close(&self) {
        self.swarm.close_all();
    }
}
