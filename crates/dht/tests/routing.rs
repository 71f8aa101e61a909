//! The routing table: its memory bound, closest() against a brute-force sort, one node per IP address per bucket,
//! splitting of our own bucket only, node states, replacements and refreshes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use dht::routing::{Config, Contact, K, MAX_BUCKETS, REPLACEMENTS, Refusal};
use dht::{Insertion, NodeId, NodeInfo, NodeState, RoutingTable};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const MINUTE: Duration = Duration::from_secs(60);

fn rng() -> SmallRng {
    SmallRng::seed_from_u64(0x5eed)
}

fn node(id: NodeId, ip: [u8; 4], port: u16) -> NodeInfo {
    NodeInfo { id, addr: SocketAddr::from((Ipv4Addr::from(ip), port)) }
}

fn random_node(rng: &mut SmallRng) -> NodeInfo {
    node(NodeId::random(rng), rng.random(), rng.random_range(1..=u16::MAX))
}

/// A random id whose first bit differs from our all-zero id: always in bucket 0.
fn far_id(rng: &mut SmallRng) -> NodeId {
    let mut id = NodeId::random(rng);
    id.0[0] |= 0x80;
    id
}

/// A random id sharing exactly the first `bits` bits with our all-zero id.
fn id_sharing(rng: &mut SmallRng, bits: usize) -> NodeId {
    let mut id = NodeId::random(rng);
    for bit in 0..bits {
        id.0[bit / 8] &= !(0x80 >> (bit % 8));
    }
    id.0[bits / 8] |= 0x80 >> (bits % 8);
    id
}

fn shared_bits(own: NodeId, id: NodeId) -> usize {
    own.distance(&id).leading_zeros() as usize
}

/// Bucket `i` below the last holds only nodes sharing exactly `i` bits with us; the last holds the nearer rest.
fn assert_layout(table: &RoutingTable) {
    let own = table.own_id();
    let last = table.bucket_count() - 1;
    for (index, nodes) in table.buckets().enumerate() {
        assert!(nodes.len() <= K, "bucket {index} holds {}", nodes.len());
        for node in nodes {
            let shared = shared_bits(own, node.id);
            if index < last {
                assert_eq!(shared, index, "{node:?} in bucket {index}");
            } else {
                assert!(shared >= last, "{node:?} in the last bucket {index}");
            }
        }
    }
}

fn filled_table(count: usize, rng: &mut SmallRng, now: Instant) -> RoutingTable {
    let mut table = RoutingTable::new(NodeId::random(rng), now);
    for _ in 0..count {
        table.responded(random_node(rng), now);
    }
    table
}

#[test]
fn a_table_filled_by_10000_random_nodes_stays_within_its_bound() {
    let mut rng = rng();
    let now = Instant::now();
    let table = filled_table(10_000, &mut rng, now);
    assert!(table.bucket_count() <= MAX_BUCKETS);
    assert!(table.len() <= MAX_BUCKETS * K);
    assert!(table.replacement_len() <= MAX_BUCKETS * REPLACEMENTS);
    // 10,000 random ids fill about log2(10,000 / 8) buckets; each far bucket is full.
    assert!((9..=16).contains(&table.bucket_count()), "{} buckets", table.bucket_count());
    assert!(table.len() >= 8 * (table.bucket_count() - 2));
    assert_layout(&table);
}

#[test]
fn closest_agrees_with_a_brute_force_sort() {
    let mut rng = rng();
    let now = Instant::now();
    let mut table = filled_table(3_000, &mut rng, now);
    // Two timeouts make a node bad; bad nodes are never handed out.
    let bad: Vec<NodeInfo> = table.nodes().step_by(7).collect();
    for &node in &bad {
        table.timed_out(node, now);
        table.timed_out(node, now);
    }
    let live: Vec<NodeInfo> = table.nodes().filter(|node| table.state(&node.id, now) != Some(NodeState::Bad)).collect();
    assert!(live.len() < table.len());
    for _ in 0..200 {
        let target = NodeId::random(&mut rng);
        let mut sorted = live.clone();
        sorted.sort_by_key(|node| node.id.distance(&target));
        for n in [0, 1, 8, 20, live.len(), live.len() + 10] {
            let expected: Vec<NodeInfo> = sorted.iter().copied().take(n).collect();
            assert_eq!(table.closest(&target, n), expected, "n = {n}");
        }
    }
}

#[test]
fn one_ip_address_cannot_fill_a_bucket() {
    let mut rng = rng();
    let now = Instant::now();
    let mut table = RoutingTable::new(NodeId([0; 20]), now);
    let ip = [198, 51, 100, 7];
    assert_eq!(table.responded(node(far_id(&mut rng), ip, 1000), now), Insertion::Added);
    for port in 1001..1100 {
        let outcome = table.responded(node(far_id(&mut rng), ip, port), now);
        assert_eq!(outcome, Insertion::Refused(Refusal::IpConflict));
    }
    assert_eq!((table.len(), table.replacement_len()), (1, 0));
    // Other addresses still get in.
    for last in 1..K as u8 {
        assert_eq!(table.responded(node(far_id(&mut rng), [198, 51, 101, last], 1), now), Insertion::Added);
    }
    assert_eq!(table.len(), K);
}

#[test]
fn nodes_sharing_an_address_are_allowed_when_restriction_is_off() {
    let mut rng = rng();
    let now = Instant::now();
    let config = Config { restrict_ips: false };
    let mut table = RoutingTable::with_config(NodeId([0; 20]), config, now);
    for port in 0..K as u16 {
        assert_eq!(table.responded(node(far_id(&mut rng), [127, 0, 0, 1], 7000 + port), now), Insertion::Added);
    }
    assert_eq!(table.len(), K);
}

#[test]
fn only_the_bucket_holding_our_own_id_splits() {
    let mut rng = rng();
    let now = Instant::now();
    let own = NodeId([0; 20]);
    let mut table = RoutingTable::new(own, now);
    let mut ip = 0u32;
    let mut next = |id: NodeId| {
        ip += 1;
        node(id, (0x0a00_0000 + ip).to_be_bytes(), 6881)
    };
    for _ in 0..K {
        assert_eq!(table.responded(next(far_id(&mut rng)), now), Insertion::Added);
    }
    assert_eq!(table.bucket_count(), 1);
    // The ninth far node: the one bucket holds our id too, so it splits; the far half stays full.
    let ninth = table.responded(next(far_id(&mut rng)), now);
    assert!(matches!(ninth, Insertion::Cached { .. }), "{ninth:?}");
    assert_eq!(table.bucket_count(), 2);
    // More far nodes never split the far bucket again.
    for _ in 0..100 {
        assert!(matches!(table.responded(next(far_id(&mut rng)), now), Insertion::Cached { .. }));
    }
    assert_eq!((table.bucket_count(), table.len()), (2, K));
    // Nodes ever nearer to us keep splitting the last bucket, one level per 8 or so.
    for bits in 1..40 {
        for _ in 0..3 {
            table.responded(next(id_sharing(&mut rng, bits)), now);
        }
        assert_layout(&table);
    }
    assert!(table.bucket_count() >= 38, "{} buckets", table.bucket_count());
    let sizes: Vec<usize> = table.buckets().map(|nodes| nodes.len()).collect();
    assert_eq!(sizes[0], K);
    assert!(sizes[1..sizes.len() - 1].iter().all(|&size| size == 3), "{sizes:?}");
}

#[test]
fn node_states_follow_answers_queries_and_timeouts() {
    let mut rng = rng();
    let t0 = Instant::now();
    let mut table = RoutingTable::new(NodeId([0; 20]), t0);
    let peer = node(far_id(&mut rng), [192, 0, 2, 1], 6881);
    table.responded(peer, t0);
    assert_eq!(table.state(&peer.id, t0 + 14 * MINUTE), Some(NodeState::Good));
    assert_eq!(table.state(&peer.id, t0 + 15 * MINUTE), Some(NodeState::Questionable));
    // A node that has answered before stays good while it keeps querying us.
    assert_eq!(table.queried_by(peer, t0 + 20 * MINUTE), Contact::Known);
    assert_eq!(table.state(&peer.id, t0 + 30 * MINUTE), Some(NodeState::Good));
    assert_eq!(table.timed_out(peer, t0 + 31 * MINUTE), None);
    assert_eq!(table.state(&peer.id, t0 + 31 * MINUTE), Some(NodeState::Good));
    assert_eq!(table.timed_out(peer, t0 + 32 * MINUTE), None);
    assert_eq!(table.state(&peer.id, t0 + 32 * MINUTE), Some(NodeState::Bad));
    assert!(table.closest(&peer.id, 8).is_empty());
    // An answer clears the failures.
    assert_eq!(table.responded(peer, t0 + 33 * MINUTE), Insertion::Updated);
    assert_eq!(table.state(&peer.id, t0 + 33 * MINUTE), Some(NodeState::Good));
}

/// Our id 0, 8 far nodes and 1 near one: bucket 0 (the far half) is full and can no longer split.
fn full_far_bucket(rng: &mut SmallRng, now: Instant) -> (RoutingTable, Vec<NodeInfo>) {
    let mut table = RoutingTable::new(NodeId([0; 20]), now);
    let far: Vec<NodeInfo> = (1..=K as u8).map(|i| node(far_id(rng), [203, 0, 113, i], 6881)).collect();
    for &node in &far {
        table.responded(node, now);
    }
    table.responded(node(id_sharing(rng, 1), [203, 0, 113, 100], 6881), now);
    assert_eq!(table.bucket_count(), 2);
    (table, far)
}

#[test]
fn a_dead_node_in_a_full_bucket_gives_way_to_a_replacement() {
    let mut rng = rng();
    let t0 = Instant::now();
    let (mut table, far) = full_far_bucket(&mut rng, t0);
    let newcomer = node(far_id(&mut rng), [203, 0, 113, 50], 6881);
    // While the bucket is good, the newcomer waits and nobody needs a ping.
    assert_eq!(table.responded(newcomer, t0 + MINUTE), Insertion::Cached { ping: None });
    assert_eq!(table.replacement_len(), 1);
    // Fifteen minutes on, the bucket is questionable: the caller is told whom to ping.
    let Insertion::Cached { ping: Some(pinged) } = table.responded(newcomer, t0 + 20 * MINUTE) else {
        panic!("no ping suggested")
    };
    assert!(far.contains(&pinged));
    assert_eq!(table.timed_out(pinged, t0 + 21 * MINUTE), None);
    assert_eq!(table.timed_out(pinged, t0 + 22 * MINUTE), Some(newcomer));
    assert_eq!(table.state(&pinged.id, t0 + 22 * MINUTE), None);
    assert_eq!(table.state(&newcomer.id, t0 + 22 * MINUTE), Some(NodeState::Good));
    assert_eq!((table.len(), table.replacement_len()), (K + 1, 0));
}

#[test]
fn a_bad_node_is_replaced_by_the_next_node_that_answers() {
    let mut rng = rng();
    let t0 = Instant::now();
    let (mut table, far) = full_far_bucket(&mut rng, t0);
    table.timed_out(far[3], t0);
    table.timed_out(far[3], t0);
    let newcomer = node(far_id(&mut rng), [203, 0, 113, 60], 6881);
    assert_eq!(table.responded(newcomer, t0), Insertion::Replaced { evicted: far[3] });
    assert_eq!(table.state(&newcomer.id, t0), Some(NodeState::Good));
}

#[test]
fn refusals() {
    let mut rng = rng();
    let now = Instant::now();
    let own = NodeId::random(&mut rng);
    let mut table = RoutingTable::new(own, now);
    assert_eq!(table.responded(node(own, [192, 0, 2, 1], 1), now), Insertion::Refused(Refusal::OwnId));
    let id = NodeId::random(&mut rng);
    for unreachable in [node(id, [192, 0, 2, 1], 0), node(id, [0, 0, 0, 0], 1), node(id, [224, 0, 0, 1], 1)] {
        assert_eq!(table.responded(unreachable, now), Insertion::Refused(Refusal::Unreachable));
    }
    assert_eq!(table.responded(node(id, [192, 0, 2, 1], 1), now), Insertion::Added);
    // The same id from another host is not taken while the first is alive; from the same host on a new port, it is.
    assert_eq!(table.responded(node(id, [192, 0, 2, 2], 1), now), Insertion::Refused(Refusal::IdConflict));
    assert_eq!(table.responded(node(id, [192, 0, 2, 1], 2), now), Insertion::Updated);
    assert_eq!(table.nodes().collect::<Vec<_>>(), vec![node(id, [192, 0, 2, 1], 2)]);
}

#[test]
fn queries_from_unknown_nodes_suggest_a_ping_only_where_there_is_room() {
    let mut rng = rng();
    let t0 = Instant::now();
    let (mut table, far) = full_far_bucket(&mut rng, t0);
    assert_eq!(table.queried_by(far[0], t0), Contact::Known);
    // The same id from another address is not the node we know.
    let impostor = NodeInfo { addr: SocketAddr::from((IpAddr::from([203, 0, 113, 99]), 1)), ..far[0] };
    assert_eq!(table.queried_by(impostor, t0), Contact::NotWanted);
    assert_eq!(table.queried_by(node(far_id(&mut rng), [192, 0, 2, 1], 1), t0), Contact::NotWanted);
    // The near bucket is the last one: it has room, and could split.
    assert_eq!(table.queried_by(node(id_sharing(&mut rng, 3), [192, 0, 2, 1], 1), t0), Contact::WorthPinging);
    // Queries add nobody.
    assert_eq!(table.len(), K + 1);
}

#[test]
fn stale_buckets_are_refreshed_with_a_target_in_their_range() {
    let mut rng = rng();
    let t0 = Instant::now();
    let mut table = filled_table(2_000, &mut rng, t0);
    assert!(table.refresh_targets(t0 + 14 * MINUTE, &mut rng).is_empty());
    let targets = table.refresh_targets(t0 + 16 * MINUTE, &mut rng);
    assert_eq!(targets.len(), table.bucket_count());
    let last = table.bucket_count() - 1;
    for (index, target) in targets.iter().enumerate() {
        let shared = shared_bits(table.own_id(), *target);
        if index < last {
            assert_eq!(shared, index);
        } else {
            assert!(shared >= last);
        }
    }
    // Asked again at once, nothing is stale.
    assert!(table.refresh_targets(t0 + 16 * MINUTE, &mut rng).is_empty());
}

#[test]
fn a_shorter_staleness_gives_refresh_targets_sooner() {
    let mut rng = rng();
    let t0 = Instant::now();
    let mut table = filled_table(500, &mut rng, t0);
    assert!(table.refresh_targets_after(t0 + 4 * MINUTE, 5 * MINUTE, &mut rng).is_empty());
    assert_eq!(table.refresh_targets_after(t0 + 5 * MINUTE, 5 * MINUTE, &mut rng).len(), table.bucket_count());
    assert!(table.refresh_targets_after(t0 + 5 * MINUTE, 5 * MINUTE, &mut rng).is_empty());
}

#[test]
fn questionable_nodes_are_listed_longest_silent_first_and_bounded() {
    let mut rng = rng();
    let t0 = Instant::now();
    let (mut table, far) = full_far_bucket(&mut rng, t0);
    assert!(table.questionable(t0 + MINUTE, 100).is_empty());
    // far[0] answers again later than the rest: it is the last to be listed.
    table.responded(far[0], t0 + 5 * MINUTE);
    let at = t0 + 16 * MINUTE;
    let all = table.questionable(at, 100);
    assert_eq!(all.len(), K, "the far bucket's other 7 and the near node: {all:?}");
    assert!(!all.contains(&far[0]));
    assert_eq!(table.questionable(at, 3).len(), 3);
    assert_eq!(table.questionable(t0 + 21 * MINUTE, 100).last(), Some(&far[0]));
    // A node that timed out twice is bad, not questionable; one that answers is good again.
    table.timed_out(far[1], at);
    table.timed_out(far[1], at);
    table.responded(far[2], at);
    let now_listed = table.questionable(at, 100);
    assert!(!now_listed.contains(&far[1]) && !now_listed.contains(&far[2]));
    assert_eq!(now_listed.len(), K - 2);
}
