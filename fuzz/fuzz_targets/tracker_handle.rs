//! Fuzz target: the tracker's whole receive path. The input is cut into datagrams from a few IPv4
//! and IPv6 sources (one an IPv4-mapped IPv6 address, one link-local with a scope) at advancing
//! times, and each goes through `Tracker::handle`, with stale peers expired between datagrams when
//! the input says so. Nothing may panic, and a small model of the swarms, kept beside the tracker,
//! says what every reply must be: none to a datagram without a connection ID issued to its address
//! within the lifetime, none bigger than one safe UDP payload, a connect reply no bigger than the
//! connect, and exact counts and peer sets in announce and scrape replies.
//!
//! Random bytes almost never carry an issued connection ID, so a datagram may have the last ID a
//! chosen source got from a connect patched into its first 8 bytes: its own (connecting first if it
//! has none), or another address's, which must be refused unless it is the same host. The key and
//! the sampling seed are fixed, so the checker knows which IDs are valid and a crash replays.
//!
//! Input: a mode byte (bit 0: open tracker, else only two named torrents), the start time (u32 LE),
//! then per datagram a control byte (bits 0-2: source; bits 3-5: whose ID to patch in, as an
//! offset from the source; bit 6: patch it; bit 7: expire stale peers first), seconds to advance
//! (u8), a length (u16 LE: low 12 bits, cut to 2048 as the server's receive buffer cuts; high 4
//! bits: how many more copies to send, each with bytes 96-97, an announce's port, counted up) and
//! that many bytes (fewer if the input ends).

#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use tracker::connection_id::ConnectionIds;
use tracker::server::{Config, NamedTorrent, Tracker};
use tracker::swarm::Limits;
use tracker_protocol::{
    AnnounceEvent, AnnounceRequest, CompactPeer, ConnectRequest, Request, Response, TransactionId, max_peers_within,
};

const KEY: [u8; 16] = *b"fuzz tracker key";
/// The tracker's reply limit: one packet on any path (IPv6 minimum MTU minus headers).
const MAX_REPLY: usize = 1220;
/// The server's receive buffer: longer datagrams arrive cut to this.
const RECEIVE_BUFFER: usize = 2048;
/// Where an announce holds the client's listening port.
const PORT_AT: usize = 96;
/// Served in closed mode; easy for the fuzzer to write.
const NAMED: [[u8; 20]; 2] = [[0; 20], [1; 20]];

const SOURCES: [SocketAddr; 8] = [
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 6881)),
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 6881)),
    // The same host as the first from another port: it shares that host's connection IDs.
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 40_000)),
    // The second host seen through a dual-stack socket: it must be treated as IPv4.
    SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0x0a00, 0x0002), 6881, 0, 0)),
    SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 6881, 0, 0)),
    SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2), 51_413, 0, 0)),
    SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1), 6881, 7, 3)),
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 7), 0)),
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let Some((start, mut rest)) = rest.split_first_chunk::<4>() else { return };
    let mut harness = Harness::new(mode & 1 == 1);
    let mut now = u32::from_le_bytes(*start);
    let mut packet = Vec::new();

    while let Some((header, after)) = rest.split_first_chunk::<4>() {
        let [control, advance, len_low, len_high] = *header;
        let len = usize::from(u16::from_le_bytes([len_low, len_high & 0x0f])).min(RECEIVE_BUFFER).min(after.len());
        let (body, after) = after.split_at(len);
        rest = after;

        // The server's clock saturates rather than wrapping.
        now = now.saturating_add(u32::from(advance));
        if control & 0x80 != 0 {
            harness.tracker.expire(now);
            harness.model.expire(now.saturating_sub(harness.config.peer_timeout));
        }
        let from = usize::from(control & 7);
        packet.clear();
        packet.extend_from_slice(body);
        if control & 0x40 != 0
            && let Some(field) = packet.get_mut(..8)
        {
            // An offset rather than a source, so that 0 keeps meaning "its own" when the fuzzer
            // changes the source; a source that has no ID yet connects first.
            let whose = (from + usize::from((control >> 3) & 7)) % SOURCES.len();
            let id = match harness.issued[whose] {
                Some(id) => id,
                None => {
                    let mut connect = Vec::new();
                    ConnectRequest { transaction_id: TransactionId(0) }.write(&mut connect);
                    harness.deliver(&connect, whose, now);
                    harness.issued[whose].expect("a connect is answered")
                }
            };
            field.copy_from_slice(&id.to_be_bytes());
        }
        harness.deliver(&packet, from, now);
        // Copies fill a swarm quickly: each copy of an announce is another peer, on the next port.
        for _ in 0..len_high >> 4 {
            if let Some(port) = packet.get_mut(PORT_AT..PORT_AT + 2) {
                let next = u16::from_be_bytes([port[0], port[1]]).wrapping_add(1);
                port.copy_from_slice(&next.to_be_bytes());
            }
            harness.deliver(&packet, from, now);
        }
    }
});

/// The tracker under test, and what the checker knows beside it.
struct Harness {
    tracker: Tracker,
    config: Config,
    ids: ConnectionIds,
    model: Model,
    /// The last connection ID each source got.
    issued: [Option<u64>; SOURCES.len()],
}

impl Harness {
    fn new(open: bool) -> Harness {
        let config = Config {
            // Small enough to reach "tracker is full", the unrecorded peer past the per-swarm cap,
            // and (past 16 peers) the swarm's hash index.
            limits: Limits { max_torrents: 3, max_peers_per_torrent: 20 },
            ..Config::default()
        };
        let named = NAMED
            .iter()
            .enumerate()
            .map(|(n, hash)| NamedTorrent {
                info_hash: *hash,
                v2_info_hash: None,
                name: format!("named-{n}"),
                total_length: 1 << 20,
            })
            .collect();
        Harness {
            tracker: Tracker::with_key(config.clone(), named, open, KEY, 7),
            ids: ConnectionIds::new(KEY, config.connection_lifetime),
            model: Model::new(open, config.limits),
            issued: [None; SOURCES.len()],
            config,
        }
    }

    /// Hands `packet` from source number `from` to the tracker and checks the reply.
    fn deliver(&mut self, packet: &[u8], from: usize, now: u32) {
        let source = SOURCES[from];
        let dropped = self.tracker.stats().dropped;
        let reply = self.tracker.handle(packet, source, now).map(<[u8]>::to_vec);
        if let Some(reply) = &reply {
            assert!(reply.len() <= MAX_REPLY, "{}-byte reply", reply.len());
        } else {
            assert_eq!(self.tracker.stats().dropped, dropped + 1, "an unanswered datagram is counted as dropped");
        }
        let step =
            Step { tracker: &self.tracker, config: &self.config, ids: &self.ids, source: unmap(source), now, packet };
        let connection_id = match step.source {
            SocketAddr::V4(_) => step.check::<SocketAddrV4>(reply.as_deref(), &mut self.model),
            SocketAddr::V6(_) => step.check::<SocketAddrV6>(reply.as_deref(), &mut self.model),
        };
        if let Some(id) = connection_id {
            self.issued[from] = Some(id);
        }
        self.model.check_registry(&self.tracker);
    }
}

/// An IPv4-mapped IPv6 source stands for its IPv4 address, as in the server.
fn unmap(source: SocketAddr) -> SocketAddr {
    match source {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::from((v4, v6.port())),
            None => source,
        },
        SocketAddr::V4(_) => source,
    }
}

/// A reply's peer address, as the model keys peers.
trait Peer: CompactPeer + Debug + PartialEq + Into<SocketAddr> {}
impl Peer for SocketAddrV4 {}
impl Peer for SocketAddrV6 {}

/// One datagram and what the checker needs to judge its reply.
struct Step<'a> {
    tracker: &'a Tracker,
    config: &'a Config,
    ids: &'a ConnectionIds,
    /// Unmapped.
    source: SocketAddr,
    now: u32,
    packet: &'a [u8],
}

impl Step<'_> {
    /// Checks the reply (`A`: the source's family) and updates the model; returns the connection ID
    /// a connect reply carried.
    fn check<A: Peer>(&self, reply: Option<&[u8]>, model: &mut Model) -> Option<u64> {
        let ip = self.source.ip();
        let request = Request::parse(self.packet, self.config.max_scrape_hashes);
        let valid = request.map_or_else(
            |err| err.reply_ids().is_some_and(|(id, _)| self.ids.is_valid(id.0, ip, self.now)),
            |request| request.connection_id().is_none_or(|id| self.ids.is_valid(id.0, ip, self.now)),
        );
        let Some(reply) = reply else {
            assert!(!valid, "no reply to {request:?} with a valid connection ID");
            return None;
        };
        assert!(valid, "reply to {request:?} without a valid connection ID");
        let response = Response::<A>::parse(reply).expect("the tracker's reply parses");
        match request {
            Ok(Request::Connect(connect)) => {
                let Response::Connect(answer) = response else { panic!("connect answered with {response:?}") };
                assert_eq!(answer.transaction_id, connect.transaction_id);
                assert!(
                    reply.len() <= self.packet.len(),
                    "amplification: {} bytes answered {}",
                    reply.len(),
                    self.packet.len()
                );
                assert!(self.ids.is_valid(answer.connection_id.0, ip, self.now), "issued an invalid ID");
                Some(answer.connection_id.0)
            }
            Ok(Request::Announce(announce)) => {
                self.check_announce::<A>(&announce, response, model);
                None
            }
            Ok(Request::Scrape(scrape)) => {
                let Response::Scrape(answer) = response else { panic!("scrape answered with {response:?}") };
                assert_eq!(answer.transaction_id, scrape.transaction_id);
                let expected: Vec<Counts> = scrape.info_hashes.iter().map(|hash| model.counts(&hash)).collect();
                let got: Vec<Counts> =
                    answer.torrents.iter().map(|stats| (stats.seeders, stats.completed, stats.leechers)).collect();
                assert_eq!(got, expected);
                None
            }
            Err(err) => {
                let Response::Error(answer) = response else { panic!("{err} answered with {response:?}") };
                assert_eq!(Some(answer.transaction_id), err.reply_ids().map(|(_, transaction_id)| transaction_id));
                assert_eq!(answer.message, err.kind().reply_message());
                None
            }
        }
    }

    fn check_announce<A: Peer>(&self, announce: &AnnounceRequest<'_>, response: Response<'_, A>, model: &mut Model) {
        let wanted = usize::try_from(announce.num_want).unwrap_or(self.config.default_numwant);
        let want = wanted.min(self.config.max_numwant).min(max_peers_within::<A>(MAX_REPLY));
        let address = match self.source {
            SocketAddr::V4(v4) => SocketAddr::from((*v4.ip(), announce.port)),
            SocketAddr::V6(v6) => SocketAddr::from((*v6.ip(), announce.port)),
        };
        let expected = model.announce(address, announce, self.now);
        let answer = match (expected, response) {
            (Ok(expected), Response::Announce(answer)) => (expected, answer),
            (Err(message), Response::Error(answer)) => {
                assert_eq!(answer.transaction_id, announce.transaction_id);
                assert_eq!(answer.message, message);
                return;
            }
            (expected, response) => panic!("{announce:?}: expected {expected:?}, got {response:?}"),
        };
        let (expected, answer) = answer;
        assert_eq!(answer.transaction_id, announce.transaction_id);
        assert_eq!(answer.interval, self.config.interval);
        assert_eq!((answer.seeders, answer.leechers), (expected.counts.0, expected.counts.2), "{announce:?}");
        let peers: Vec<SocketAddr> = answer.peers.into_iter().map(Into::into).collect();
        let distinct: BTreeSet<SocketAddr> = peers.iter().copied().collect();
        assert_eq!(distinct.len(), peers.len(), "a peer handed out twice: {peers:?}");
        assert!(!distinct.contains(&address), "the announcer handed itself");
        // Seeders first (to a leecher), then the rest, as many as wanted and available.
        let first = want.min(expected.first.len());
        assert_eq!(peers.len(), want.min(expected.first.len() + expected.rest.len()), "{announce:?}");
        let (seeders, rest) = peers.split_at(first);
        assert!(seeders.iter().all(|peer| expected.first.contains(peer)), "{peers:?} vs {expected:?}");
        assert!(rest.iter().all(|peer| expected.rest.contains(peer)), "{peers:?} vs {expected:?}");

        let registry = self.tracker.shards().lock(&announce.info_hash);
        let state = match address {
            SocketAddr::V4(v4) => registry.peer(&announce.info_hash, &v4).map(|state| state.last_seen),
            SocketAddr::V6(v6) => registry.peer(&announce.info_hash, &v6).map(|state| state.last_seen),
        };
        let modelled = model.swarms.get(&announce.info_hash).and_then(|swarm| swarm.peers.get(&address));
        assert_eq!(state, modelled.map(|peer| peer.last_seen), "{announce:?}");
    }
}

/// Seeders, completed, leechers: the scrape triple.
type Counts = (u32, u32, u32);

#[derive(Debug, Clone, Copy)]
struct ModelPeer {
    last_seen: u32,
    seeder: bool,
}

#[derive(Debug, Default)]
struct ModelSwarm {
    peers: BTreeMap<SocketAddr, ModelPeer>,
    completed: u32,
}

/// What an announce should be answered with.
#[derive(Debug)]
struct Expected {
    counts: Counts,
    /// Handed out first: the seeders, to a leecher.
    first: BTreeSet<SocketAddr>,
    /// Then these: the leechers.
    rest: BTreeSet<SocketAddr>,
}

/// The registry's documented behaviour, written the plain way: a sorted map per swarm.
struct Model {
    swarms: BTreeMap<[u8; 20], ModelSwarm>,
    open: bool,
    limits: Limits,
}

impl Model {
    fn new(open: bool, limits: Limits) -> Model {
        let swarms =
            if open { BTreeMap::new() } else { NAMED.iter().map(|hash| (*hash, ModelSwarm::default())).collect() };
        Model { swarms, open, limits }
    }

    fn counts(&self, hash: &[u8; 20]) -> Counts {
        let Some(swarm) = self.swarms.get(hash) else { return (0, 0, 0) };
        let seeders = swarm.peers.values().filter(|peer| peer.seeder).count();
        let leechers = swarm.peers.len() - seeders;
        (seeders as u32, swarm.completed, leechers as u32)
    }

    fn announce(
        &mut self,
        address: SocketAddr,
        announce: &AnnounceRequest<'_>,
        now: u32,
    ) -> Result<Expected, &'static str> {
        let hash = announce.info_hash;
        let stopped = announce.event == AnnounceEvent::Stopped;
        if !self.swarms.contains_key(&hash) {
            if !self.open {
                return Err("unknown torrent");
            }
            if stopped {
                return Ok(Expected { counts: (0, 0, 0), first: BTreeSet::new(), rest: BTreeSet::new() });
            }
            if self.swarms.len() >= self.limits.max_torrents {
                return Err("tracker is full");
            }
        }
        let swarm = self.swarms.entry(hash).or_default();
        let seeder = announce.left == 0;
        let family = swarm.peers.keys().filter(|known| known.is_ipv4() == address.is_ipv4()).count();
        match swarm.peers.get_mut(&address) {
            Some(_) if stopped => {
                swarm.peers.remove(&address);
            }
            Some(peer) => {
                if seeder && !peer.seeder {
                    swarm.completed = swarm.completed.saturating_add(1);
                }
                *peer = ModelPeer { last_seen: now, seeder };
            }
            None if stopped || family >= self.limits.max_peers_per_torrent => {}
            None => {
                swarm.peers.insert(address, ModelPeer { last_seen: now, seeder });
            }
        }
        let mut first = BTreeSet::new();
        let mut rest = BTreeSet::new();
        if !stopped {
            let others =
                swarm.peers.iter().filter(|(known, _)| known.is_ipv4() == address.is_ipv4() && **known != address);
            for (known, peer) in others {
                match (seeder, peer.seeder) {
                    (false, true) => first.insert(*known),
                    (_, false) => rest.insert(*known),
                    (true, true) => false,
                };
            }
        }
        Ok(Expected { counts: self.counts(&hash), first, rest })
    }

    fn expire(&mut self, cutoff: u32) {
        for swarm in self.swarms.values_mut() {
            swarm.peers.retain(|_, peer| peer.last_seen >= cutoff);
        }
        if self.open {
            self.swarms.retain(|_, swarm| !swarm.peers.is_empty());
        }
    }

    /// The registry agrees with the model on every swarm's counts.
    fn check_registry(&self, tracker: &Tracker) {
        let shards = tracker.shards();
        assert_eq!(shards.torrent_count(), self.swarms.len());
        assert_eq!(shards.peer_count(), self.swarms.values().map(|swarm| swarm.peers.len()).sum::<usize>());
        for (hash, counts) in shards.torrents() {
            assert_eq!((counts.seeders, counts.completed, counts.leechers), self.counts(&hash), "torrent {hash:?}");
        }
    }
}
