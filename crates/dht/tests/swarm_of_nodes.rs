//! A larger DHT in one process: 50 nodes on distinct 127.0.0.1 ports, bootstrapped in a star from the first. One
//! node announces an info-hash with a port; the node farthest from it by XOR distance looks the info-hash up and
//! must find exactly that peer, within a bound on round trips. The figures are printed (`--nocapture` shows them).
//! Every wait is bounded.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use dht::node::RateLimits;
use dht::{Node, NodeConfig, NodeId};
use rand::Rng;
use tokio::time::timeout;

const NODES: usize = 50;
const LOCALHOST: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0));
/// Referral chains of a lookup among 50 nodes: log2(50 / 8) is under 3. In 300 runs: 1 to 4 (4 in 1%).
const MAX_HOPS: usize = 5;
/// Queries of one lookup: the 8 closest must answer, with α = 3 in flight and a few farther nodes on the way.
/// In 300 runs: 8 to 14.
const MAX_QUERIES: usize = 24;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_farthest_of_50_nodes_finds_exactly_the_announced_peer_in_few_round_trips() {
    let started = Instant::now();
    // All nodes share 127.0.0.1: the one-node-per-address rule and the per-address rate limits are for hosts.
    let rate_limits = RateLimits { per_ip_per_sec: 1e6, per_ip_burst: 1e6, global_per_sec: 1e6 };
    let base = NodeConfig { restrict_ips: false, rate_limits, ..NodeConfig::default() };
    let first = Node::bind(LOCALHOST, base.clone()).await.expect("bind");
    let star = vec![SocketAddr::V4(first.local_addr())];
    let mut nodes = vec![first];
    let mut bootstrap_queries = 0;
    for _ in 1..NODES {
        let node = Node::bind(LOCALHOST, NodeConfig { bootstrap: star.clone(), ..base.clone() }).await.expect("bind");
        let stats = timeout(Duration::from_secs(5), node.bootstrap()).await.expect("bootstrap within 5 s");
        assert!(stats.responses > 0, "bootstrap reached nobody: {stats:?}");
        bootstrap_queries += stats.queries;
        nodes.push(node);
    }
    let mut ports: Vec<u16> = nodes.iter().map(|node| node.local_addr().port()).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), NODES, "distinct ports");
    let sizes: Vec<usize> = nodes.iter().map(|node| node.nodes().len()).collect();
    println!(
        "{NODES} nodes bootstrapped in {:?} with {bootstrap_queries} queries; table sizes {}..={}",
        started.elapsed(),
        sizes.iter().min().unwrap_or(&0),
        sizes.iter().max().unwrap_or(&0)
    );

    let info_hash: [u8; 20] = rand::rng().random();
    let port = 6881;
    let announcer = &nodes[NODES / 2];
    let announced = timeout(Duration::from_secs(5), announcer.announce(info_hash, port)).await.expect("announce");
    println!(
        "announce: accepted by {} of the {} closest; its lookup: {} hops, {} queries, {} responses, {:?}",
        announced.accepted,
        announced.lookup.closest.len(),
        announced.lookup.stats.hops,
        announced.lookup.stats.queries,
        announced.lookup.stats.responses,
        announced.lookup.stats.elapsed
    );
    assert!(announced.accepted > 0, "no node accepted the announce");
    assert!(announced.lookup.peers.is_empty(), "nobody had announced before: {:?}", announced.lookup.peers);

    let searcher = nodes.iter().max_by_key(|node| node.id().distance(&announcer.id())).expect("nodes");
    let shared_bits = searcher.id().distance(&announcer.id()).leading_zeros();
    let lookup = timeout(Duration::from_secs(5), searcher.get_peers_lookup(info_hash)).await.expect("get_peers");
    let stats = lookup.stats;
    println!(
        "get_peers from the farthest node ({shared_bits} leading bits shared with the announcer): \
         hops {}, queries {}, responses {}, failures {}, elapsed {:?}; peers {:?}",
        stats.hops, stats.queries, stats.responses, stats.failures, stats.elapsed, lookup.peers
    );
    // Where the nodes each lookup ended at stand among the other 49 by distance to the info-hash (0: the closest).
    let ranks = |me: NodeId, closest: &[(dht::NodeInfo<SocketAddrV4>, Option<Vec<u8>>)]| -> Vec<usize> {
        let mut ranked: Vec<NodeId> = nodes.iter().map(Node::id).filter(|id| *id != me).collect();
        ranked.sort_by_key(|id| id.distance(&NodeId(info_hash)));
        closest.iter().filter_map(|(node, _)| ranked.iter().position(|id| *id == node.id)).collect()
    };
    let announce_ranks = ranks(announcer.id(), &announced.lookup.closest);
    let search_ranks = ranks(searcher.id(), &lookup.closest);
    println!("closest nodes reached, by rank: announce {announce_ranks:?}, get_peers {search_ranks:?}");
    assert_eq!(lookup.peers, vec![SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)]);
    // Both lookups end at the true 8 closest nodes (in 200 runs, always).
    assert_eq!(search_ranks, (0..8).collect::<Vec<_>>(), "the lookup missed some of the closest nodes");
    assert_eq!(announce_ranks, (0..8).collect::<Vec<_>>(), "the announce missed some of the closest nodes");
    assert!(stats.hops >= 1 && stats.hops <= MAX_HOPS, "{stats:?}");
    assert!(stats.queries <= MAX_QUERIES, "{stats:?}");
    assert_eq!(stats.failures, 0, "{stats:?}");
    assert!(stats.elapsed < Duration::from_secs(2), "{stats:?}");
    println!("whole test {:?}", started.elapsed());
}
