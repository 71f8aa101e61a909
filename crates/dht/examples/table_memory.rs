//! Memory of one of our DHT nodes with a full routing table, and of a peer store at its caps.
//!
//! ```text
//! cargo run --release -p dht --example table_memory
//! ```
//!
//! The table: a real [`Node`] on 127.0.0.1 pings one loopback responder again and again, which answers each
//! ping with the next of a synthetic set of ids chosen bucket by bucket (16 per bucket: 8 nodes and 8
//! replacements, as far down as the id space allows), so that every bucket the table can have (160) fills. The
//! peer store: [`PeerStore`] filled to its default caps (2,000 info-hashes x 100 peers). Each is reported as the
//! growth of this process's resident set (VmRSS, Linux) and as bytes per entry. Loopback only.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use dht::krpc::{Body, Message, Response};
use dht::{Node, NodeConfig, NodeId, PeerStore, PeerStoreLimits};
use rand::Rng;
use tokio::net::UdpSocket;

/// VmRSS of this process in KiB (0 where /proc is missing).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A random id sharing exactly the first `bits` bits with `own` (differing at bit `bits`), for `bits` < 160.
fn id_sharing(own: NodeId, bits: usize, rng: &mut impl Rng) -> NodeId {
    let mut id = NodeId(rng.random());
    for bit in 0..=bits {
        let (byte, mask) = (bit / 8, 0x80u8 >> (bit % 8));
        let want = if bit < bits { own.0[byte] & mask } else { !own.0[byte] & mask };
        id.0[byte] = (id.0[byte] & !mask) | want;
    }
    id
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut rng = rand::rng();
    let own = NodeId(rng.random());
    // Bucket by bucket, nearest last, so that each split of the last bucket finds the next range waiting.
    let mut ids = Vec::new();
    let mut seen = HashSet::new();
    for bits in 0..160 {
        for _ in 0..64 {
            if ids.iter().filter(|(b, _)| *b == bits).count() == 16 {
                break;
            }
            let id = id_sharing(own, bits, &mut rng);
            if seen.insert(id) {
                ids.push((bits, id));
            }
        }
    }

    let localhost = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0));
    let responder = UdpSocket::bind(localhost).await.expect("bind the responder");
    let responder_addr = match responder.local_addr().expect("address") {
        SocketAddr::V4(addr) => addr,
        SocketAddr::V6(_) => unreachable!("bound to 127.0.0.1"),
    };
    let to_answer: Vec<NodeId> = ids.iter().map(|(_, id)| *id).collect();
    let answering = tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        for id in to_answer {
            loop {
                let Ok(Ok((len, from))) =
                    tokio::time::timeout(Duration::from_secs(5), responder.recv_from(&mut buf)).await
                else {
                    return;
                };
                if let Ok((Message { transaction_id, body: Body::Query(_), .. }, _)) = Message::decode(&buf[..len]) {
                    let reply = Message::response(transaction_id, Response::new(id)).to_bytes();
                    let _ = responder.send_to(&reply, from).await;
                    break;
                }
            }
        }
    });

    let before = rss_kib();
    let config = NodeConfig { id: Some(own), restrict_ips: false, ..NodeConfig::default() };
    let node = Node::bind(localhost, config).await.expect("bind the node");
    let bound = rss_kib();
    let started = Instant::now();
    let mut answered = 0;
    for _ in 0..ids.len() {
        answered += usize::from(node.ping(responder_addr).await.is_some());
    }
    let _ = answering.await;
    let filled = rss_kib();
    let table = node.nodes();
    let nodes = table.len();
    let buckets: HashSet<u32> = table.iter().map(|info| own.distance(&info.id).leading_zeros().min(159)).collect();
    let replacements = answered.saturating_sub(nodes);
    let table_kib = filled.saturating_sub(bound);
    println!(
        "routing table: {nodes} nodes in {} buckets (+ about {replacements} replacements) from {answered} answers \
         in {:.2} s",
        buckets.len(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "  RSS: {before} KiB before the node, {bound} KiB bound, {filled} KiB with the table full: +{table_kib} KiB \
         for the table (~{} B per entry)",
        (table_kib * 1024) / (answered.max(1) as u64)
    );

    // An entry is a NodeInfo, the times of its last answer and last query, and a failure count.
    let entry_bytes = std::mem::size_of::<dht::NodeInfo>() + 2 * std::mem::size_of::<Instant>() + 8;
    println!(
        "  estimate from type sizes: {answered} entries x ~{entry_bytes} B = {} KiB",
        answered * entry_bytes / 1024
    );

    let limits = PeerStoreLimits { max_peers_per_ip: 100, ..PeerStoreLimits::default() };
    let before_store = rss_kib();
    let mut store = PeerStore::new(limits);
    let now = Instant::now();
    for torrent in 0..limits.max_torrents {
        let info_hash: [u8; 20] = rng.random();
        for peer in 0..limits.max_peers_per_torrent {
            let ip = IpAddr::V4(Ipv4Addr::from(((torrent as u32) << 8) | peer as u32));
            store.announce(info_hash, SocketAddr::new(ip, 6881), now);
        }
    }
    let after_store = rss_kib();
    let peers = limits.max_torrents * limits.max_peers_per_torrent;
    let store_kib = after_store.saturating_sub(before_store);
    println!(
        "peer store at its caps: {} info-hashes x {} peers = {peers}: +{store_kib} KiB (~{} B per peer)",
        limits.max_torrents,
        limits.max_peers_per_torrent,
        (store_kib * 1024) / peers as u64
    );
    println!("process RSS now {after_store} KiB");
    drop(store);
    drop(node);
}
