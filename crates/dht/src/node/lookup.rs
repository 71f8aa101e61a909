//! Iterative lookups (BEP 5, Kademlia): ask the α closest nodes not yet asked for nodes closer to the target,
//! until the k closest nodes known have all answered, or the query or time budget is spent.

use std::collections::HashSet;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::{MAX_REFRESH_LOOKUPS, Node, Outcome, SWEEP_EVERY, Shared};
use crate::krpc::Method;
use crate::routing::K;
use crate::{Distance, NodeId, NodeInfo};

/// Queries in flight at once per lookup (Kademlia's α).
pub const ALPHA: usize = 3;
/// Candidates kept per lookup beyond those already asked: the closest ones.
const MAX_CANDIDATES: usize = 4 * K;

/// Figures of one lookup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LookupStats {
    /// Queries sent.
    pub queries: usize,
    /// Responses received.
    pub responses: usize,
    /// Queries that timed out, were answered with an error, or could not be sent.
    pub failures: usize,
    /// The longest chain of referrals to a node that answered: 1 for a node we knew, 2 for one it named, ...
    pub hops: usize,
    /// Wall-clock time taken.
    pub elapsed: Duration,
}

/// The result of a get_peers lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerLookup {
    /// The peers found, without duplicates.
    pub peers: Vec<SocketAddrV4>,
    /// The closest nodes (at most 8) that answered, closest first, with the token each gave (for announce_peer).
    pub closest: Vec<(NodeInfo<SocketAddrV4>, Option<Vec<u8>>)>,
    /// How the lookup went.
    pub stats: LookupStats,
}

/// The result of an announce.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Announced {
    /// Nodes that accepted our announce_peer.
    pub accepted: usize,
    /// The get_peers lookup it started with (it also yields the swarm's peers).
    pub lookup: PeerLookup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    New,
    InFlight,
    Answered,
    Failed,
}

#[derive(Debug)]
struct Candidate {
    /// `None` for a bootstrap address, until it answers.
    id: Option<NodeId>,
    addr: SocketAddrV4,
    status: Status,
    token: Option<Vec<u8>>,
    depth: usize,
}

impl Candidate {
    fn distance(&self, target: &NodeId) -> Distance {
        self.id.map_or(Distance([0xff; 20]), |id| id.distance(target))
    }
}

#[derive(Clone, Copy)]
pub(super) enum Kind {
    FindNode,
    GetPeers,
}

impl Node {
    /// Joins the DHT (Kademlia's join): a lookup of our own id through the table and the bootstrap nodes, then a
    /// lookup of a random id in the range of each bucket farther than our own (at most [`MAX_REFRESH_LOOKUPS`] at
    /// once), so that the table knows every part of the id space and not only our neighbourhood. Returns the
    /// figures of all these lookups together (hops: the most of any; elapsed: the whole); [`Node::nodes`] then
    /// gives the table.
    pub async fn bootstrap(&self) -> LookupStats {
        let start = Instant::now();
        let mut stats = run(&self.shared, self.shared.id, Kind::FindNode).await.stats;
        let mut targets = {
            let state = self.shared.lock();
            let mut targets = state.table.bucket_targets(&mut rand::rng());
            // The last bucket is our own range: the lookup of our id just covered it.
            targets.pop();
            targets.into_iter()
        };
        let mut running = JoinSet::new();
        loop {
            while running.len() < MAX_REFRESH_LOOKUPS
                && let Some(target) = targets.next()
            {
                let shared = Arc::clone(&self.shared);
                running.spawn(async move { run(&shared, target, Kind::FindNode).await.stats });
            }
            match running.join_next().await {
                Some(Ok(refresh)) => {
                    stats.queries += refresh.queries;
                    stats.responses += refresh.responses;
                    stats.failures += refresh.failures;
                    stats.hops = stats.hops.max(refresh.hops);
                }
                Some(Err(_)) => {}
                None => break,
            }
        }
        stats.elapsed = start.elapsed();
        stats
    }

    /// The peers of `info_hash` that the DHT knows.
    pub async fn get_peers(&self, info_hash: [u8; 20]) -> Vec<SocketAddrV4> {
        self.get_peers_lookup(info_hash).await.peers
    }

    /// A get_peers lookup of `info_hash`, with the closest nodes reached and their tokens.
    pub async fn get_peers_lookup(&self, info_hash: [u8; 20]) -> PeerLookup {
        run(&self.shared, NodeId(info_hash), Kind::GetPeers).await
    }

    /// Announces that we are in the swarm of `info_hash` on TCP/uTP `port`: a get_peers lookup, then an
    /// announce_peer with its token to each of the (at most 8) closest nodes that answered it.
    pub async fn announce(&self, info_hash: [u8; 20], port: u16) -> Announced {
        let lookup = self.get_peers_lookup(info_hash).await;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut pending = 0;
        for (node, token) in &lookup.closest {
            let Some(token) = token.clone() else { continue };
            let method = Method::AnnouncePeer { info_hash, port, implied_port: false, token, seed: None };
            if self.shared.send_query(node.addr, Some(node.id), method, Some(tx.clone())).await {
                pending += 1;
            }
        }
        let deadline = tokio::time::Instant::now() + self.shared.config.query_timeout + SWEEP_EVERY * 2;
        let mut accepted = 0;
        while pending > 0 {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some((_, outcome))) => {
                    pending -= 1;
                    accepted += usize::from(matches!(outcome, Outcome::Response(_)));
                }
                Ok(None) | Err(_) => break,
            }
        }
        Announced { accepted, lookup }
    }
}

/// One iterative lookup of `target` through `shared`'s table and bootstrap nodes.
pub(super) async fn run(shared: &Shared, target: NodeId, kind: Kind) -> PeerLookup {
    let start = Instant::now();
    let config = &shared.config;
    let deadline = tokio::time::Instant::now() + config.lookup_timeout;
    let mut candidates: Vec<Candidate> = Vec::new();
    let seeds = shared.lock().table.closest(&target, K);
    for node in seeds {
        if let SocketAddr::V4(addr) = node.addr {
            candidates.push(Candidate { id: Some(node.id), addr, status: Status::New, token: None, depth: 1 });
        }
    }
    if candidates.len() < K {
        for addr in &config.bootstrap {
            if let SocketAddr::V4(addr) = *addr
                && !candidates.iter().any(|candidate| candidate.addr == addr)
            {
                candidates.push(Candidate { id: None, addr, status: Status::New, token: None, depth: 1 });
            }
        }
    }
    let mut seen: HashSet<SocketAddrV4> = candidates.iter().map(|candidate| candidate.addr).collect();
    let mut peers: Vec<SocketAddrV4> = Vec::new();
    let mut stats = LookupStats::default();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut in_flight = 0;
    loop {
        candidates.sort_by_key(|candidate| candidate.distance(&target));
        prune(&mut candidates);
        let top: Vec<usize> =
            (0..candidates.len()).filter(|&i| candidates[i].status != Status::Failed).take(K).collect();
        if !top.is_empty() && top.iter().all(|&i| candidates[i].status == Status::Answered) {
            break;
        }
        for &i in &top {
            if in_flight >= ALPHA || stats.queries >= config.lookup_max_queries {
                break;
            }
            if candidates[i].status != Status::New {
                continue;
            }
            let candidate = &mut candidates[i];
            let method = match kind {
                Kind::FindNode => Method::FindNode { target, bootstrap: false },
                Kind::GetPeers => Method::GetPeers { info_hash: target.0, bootstrap: false },
            };
            stats.queries += 1;
            if shared.send_query(candidate.addr, candidate.id, method, Some(tx.clone())).await {
                candidate.status = Status::InFlight;
                in_flight += 1;
            } else {
                candidate.status = Status::Failed;
                stats.failures += 1;
            }
        }
        if in_flight == 0 {
            if top.iter().any(|&i| candidates[i].status == Status::New) && stats.queries < config.lookup_max_queries {
                continue;
            }
            break;
        }
        let (addr, outcome) = match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(reply)) => reply,
            Ok(None) | Err(_) => break,
        };
        let Some(candidate) =
            candidates.iter_mut().find(|candidate| candidate.addr == addr && candidate.status == Status::InFlight)
        else {
            continue;
        };
        in_flight -= 1;
        let Outcome::Response(response) = outcome else {
            candidate.status = Status::Failed;
            stats.failures += 1;
            continue;
        };
        stats.responses += 1;
        stats.hops = stats.hops.max(candidate.depth);
        candidate.status = Status::Answered;
        candidate.id = Some(response.id);
        candidate.token = response.token;
        let depth = candidate.depth + 1;
        for peer in response.values.unwrap_or_default() {
            if let SocketAddr::V4(peer) = peer
                && peer.port() != 0
                && !peers.contains(&peer)
            {
                peers.push(peer);
            }
        }
        for node in response.nodes.unwrap_or_default() {
            let usable = node.id != shared.id && node.addr.port() != 0 && !node.addr.ip().is_unspecified();
            if usable && seen.insert(node.addr) {
                candidates.push(Candidate {
                    id: Some(node.id),
                    addr: node.addr,
                    status: Status::New,
                    token: None,
                    depth,
                });
            }
        }
    }
    candidates.sort_by_key(|candidate| candidate.distance(&target));
    let closest = candidates
        .into_iter()
        .filter(|candidate| candidate.status == Status::Answered)
        .filter_map(|candidate| Some((NodeInfo { id: candidate.id?, addr: candidate.addr }, candidate.token)))
        .take(K)
        .collect();
    stats.elapsed = start.elapsed();
    PeerLookup { peers, closest, stats }
}

/// Drops the farthest candidates not yet asked past [`MAX_CANDIDATES`] (`candidates` is sorted closest first).
fn prune(candidates: &mut Vec<Candidate>) {
    let mut kept_new = 0;
    candidates.retain(|candidate| {
        if candidate.status != Status::New {
            return true;
        }
        kept_new += 1;
        kept_new <= MAX_CANDIDATES
    });
}
