//! The async node on loopback: a 50-node network that finds an announced peer, a flood from one address that is
//! answered only up to the rate limit, and announce tokens. Every wait is bounded.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use dht::krpc::{self, Body, Message, Method, TransactionId};
use dht::node::RateLimits;
use dht::{Node, NodeConfig, NodeId};
use rand::Rng;
use tokio::net::UdpSocket;
use tokio::time::timeout;

const LOCALHOST: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0));

/// Sends `query` from `socket` to `to` and waits (at most 2 s) for the reply with its transaction id.
async fn exchange(socket: &UdpSocket, to: SocketAddrV4, query: &Message) -> Message {
    socket.send_to(&query.to_bytes(), to).await.expect("send");
    recv_reply(socket, query.transaction_id).await
}

async fn recv_reply(socket: &UdpSocket, tid: TransactionId) -> Message {
    let mut buf = [0u8; 2048];
    timeout(Duration::from_secs(2), async {
        loop {
            let (len, _) = socket.recv_from(&mut buf).await.expect("recv");
            if let Ok((message, _)) = Message::decode(&buf[..len])
                && message.transaction_id == tid
            {
                return message;
            }
        }
    })
    .await
    .expect("a reply within 2 s")
}

fn error_code(message: &Message) -> Option<i64> {
    match &message.body {
        Body::Error(error) => Some(error.code),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_nodes_find_an_announced_peer() {
    // All 50 nodes share 127.0.0.1, so the per-address limits (meant for one host) are lifted.
    let rate_limits = RateLimits { per_ip_per_sec: 1e6, per_ip_burst: 1e6, global_per_sec: 1e6 };
    let first = Node::bind(LOCALHOST, NodeConfig { restrict_ips: false, rate_limits, ..NodeConfig::default() })
        .await
        .expect("bind");
    let bootstrap = vec![SocketAddr::V4(first.local_addr())];
    let mut nodes = vec![first];
    let started = Instant::now();
    let mut bootstrap_queries = 0;
    for _ in 1..50 {
        let config =
            NodeConfig { restrict_ips: false, rate_limits, bootstrap: bootstrap.clone(), ..NodeConfig::default() };
        let node = Node::bind(LOCALHOST, config).await.expect("bind");
        let stats = timeout(Duration::from_secs(5), node.bootstrap()).await.expect("bootstrap within 5 s");
        assert!(stats.responses > 0, "bootstrap reached nobody: {stats:?}");
        bootstrap_queries += stats.queries;
        nodes.push(node);
    }
    let table_sizes: Vec<usize> = nodes.iter().map(|node| node.nodes().len()).collect();
    eprintln!(
        "bootstrap of 49 nodes: {bootstrap_queries} queries, {:?}; table sizes min {} max {}",
        started.elapsed(),
        table_sizes.iter().min().unwrap_or(&0),
        table_sizes.iter().max().unwrap_or(&0),
    );

    let info_hash: [u8; 20] = rand::rng().random();
    let port = 51413;
    let announced = timeout(Duration::from_secs(5), nodes[10].announce(info_hash, port)).await.expect("announce");
    eprintln!(
        "announce from node 10: {} accepted of {} closest; lookup {:?}",
        announced.accepted,
        announced.lookup.closest.len(),
        announced.lookup.stats
    );
    assert!(announced.accepted > 0, "no node accepted the announce");

    let started = Instant::now();
    let lookup = timeout(Duration::from_secs(5), nodes[40].get_peers_lookup(info_hash)).await.expect("get_peers");
    let elapsed = started.elapsed();
    eprintln!(
        "get_peers from node 40: {} queries, {} responses, {} failures, {} hops, {:?}; peers {:?}",
        lookup.stats.queries, lookup.stats.responses, lookup.stats.failures, lookup.stats.hops, elapsed, lookup.peers
    );
    assert!(lookup.peers.contains(&SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)));
    assert!(elapsed < Duration::from_secs(5));
    // The plain form agrees.
    let peers = timeout(Duration::from_secs(5), nodes[40].get_peers(info_hash)).await.expect("get_peers");
    assert!(peers.contains(&SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flood_from_one_address_is_rate_limited() {
    let limits = RateLimits::default();
    let node = Node::bind(LOCALHOST, NodeConfig::default()).await.expect("bind");
    let target = node.local_addr();
    // The flooder and the bystander need distinct source IP addresses: 127.0.0.1 and 127.0.0.2 (all of 127/8 is
    // loopback on Linux; elsewhere fall back to skipping the bystander check's distinctness).
    let flooder = UdpSocket::bind(LOCALHOST).await.expect("bind");
    let bystander = match UdpSocket::bind((Ipv4Addr::new(127, 0, 0, 2), 0)).await {
        Ok(socket) => socket,
        Err(_) => UdpSocket::bind(LOCALHOST).await.expect("bind"),
    };

    let mut rng = rand::rng();
    let garbage_query = b"d1:t2:xx1:y1:q1:q4:pinge".to_vec(); // no `a`: a malformed query, answered 203
    let started = Instant::now();
    let counting = async {
        let mut replies = 0usize;
        let mut buf = [0u8; 2048];
        let window = Duration::from_millis(1500);
        let mut pings = 0usize;
        while let Ok(Ok((len, _))) =
            timeout(window.saturating_sub(started.elapsed()), flooder.recv_from(&mut buf)).await
        {
            match Message::decode(&buf[..len]).map(|(message, _)| message.body) {
                Ok(Body::Query(_)) => pings += 1,
                _ => replies += 1,
            }
        }
        (replies, pings)
    };
    let flooding = async {
        for i in 0..10_000u32 {
            let datagram = match i % 4 {
                0 => (0..rng.random_range(1..2000)).map(|_| rng.random()).collect(),
                1 => garbage_query.clone(),
                _ => {
                    let tid = TransactionId::from(i as u16);
                    Message::query(
                        tid,
                        NodeId(rng.random()),
                        Method::GetPeers { info_hash: rng.random(), bootstrap: false },
                    )
                    .to_bytes()
                }
            };
            // Loopback may refuse a datagram when the receiver's buffer is full; that is part of a flood.
            let _ = flooder.send_to(&datagram, target).await;
            if i % 500 == 0 {
                tokio::task::yield_now().await;
            }
        }
    };
    let ((replies, pings), ()) = tokio::join!(counting, flooding);
    let window = started.elapsed().as_secs_f64();
    let bound = limits.per_ip_burst + limits.per_ip_per_sec * window + 1.0;
    let stats = node.stats();
    eprintln!(
        "flood: {replies} replies and {pings} pings to 10,000 datagrams in {window:.2} s (bound {bound:.0}); {stats:?}"
    );
    assert!(pings <= 2, "{pings} pings to the flooder");
    assert!(replies as f64 <= bound, "{replies} replies exceed the limit {bound}");
    assert!(replies > 0, "the first queries are answered");
    assert!(stats.rate_limited > 0);

    // Another address is still answered, at once.
    let ping = Message::query(TransactionId::from(7), NodeId([7; 20]), Method::Ping);
    let started = Instant::now();
    let reply = exchange(&bystander, target, &ping).await;
    assert!(matches!(reply.body, Body::Response(ref response) if response.id == node.id()));
    eprintln!("bystander ping answered in {:?}", started.elapsed());
}

#[tokio::test]
async fn announce_with_bad_token_is_refused() {
    let node = Node::bind(LOCALHOST, NodeConfig::default()).await.expect("bind");
    let target = node.local_addr();
    let client = UdpSocket::bind(LOCALHOST).await.expect("bind");
    let info_hash = [0xab; 20];
    let querier = NodeId([1; 20]);

    let announce = |tid: u16, token: Vec<u8>| {
        let method = Method::AnnouncePeer { info_hash, port: 6881, implied_port: false, token, seed: None };
        Message::query(TransactionId::from(tid), querier, method)
    };
    let reply = exchange(&client, target, &announce(1, b"badtoken".to_vec())).await;
    assert_eq!(error_code(&reply), Some(krpc::PROTOCOL_ERROR), "{reply:?}");
    assert_eq!(node.stored_peer_count(&info_hash), 0);

    // get_peers gives no values and a token, with which the announce is accepted.
    let get_peers = Message::query(TransactionId::from(2), querier, Method::GetPeers { info_hash, bootstrap: false });
    let reply = exchange(&client, target, &get_peers).await;
    let Body::Response(response) = reply.body else { panic!("get_peers: {reply:?}") };
    assert_eq!(response.values, None);
    let token = response.token.expect("a token");
    let reply = exchange(&client, target, &announce(3, token)).await;
    assert!(matches!(reply.body, Body::Response(_)), "{reply:?}");
    assert_eq!(node.stored_peer_count(&info_hash), 1);

    // Unknown methods get 204, malformed queries 203.
    let unknown =
        Message::query(TransactionId::from(4), querier, Method::Unknown { method: b"sample_infohashes".to_vec() });
    assert_eq!(error_code(&exchange(&client, target, &unknown).await), Some(krpc::METHOD_UNKNOWN));
    client.send_to(b"d1:t2:zz1:y1:q1:q4:pinge", target).await.expect("send");
    let reply = recv_reply(&client, TransactionId::new(b"zz").expect("tid")).await;
    assert_eq!(error_code(&reply), Some(krpc::PROTOCOL_ERROR));
}

/// Polls `condition` every 20 ms until it holds or `within` has passed; whether it held.
async fn eventually(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_bucket_is_refreshed_by_a_lookup_that_finds_more_nodes() {
    let rate_limits = RateLimits { per_ip_per_sec: 1e6, per_ip_burst: 1e6, global_per_sec: 1e6 };
    let quiet = NodeConfig { restrict_ips: false, rate_limits, ..NodeConfig::default() };
    // Twelve nodes that know each other, with the default maintenance (every 60 s: never within this test).
    let first = Node::bind(LOCALHOST, quiet.clone()).await.expect("bind");
    let mut network = Vec::new();
    for _ in 1..12 {
        let config = NodeConfig { bootstrap: vec![SocketAddr::V4(first.local_addr())], ..quiet.clone() };
        let node = Node::bind(LOCALHOST, config).await.expect("bind");
        let stats = timeout(Duration::from_secs(5), node.bootstrap()).await.expect("bootstrap within 5 s");
        assert!(stats.responses > 0, "bootstrap reached nobody: {stats:?}");
        network.push(node);
    }

    // The newcomer has no bootstrap nodes and never looks anything up itself: it knows one node, from a ping.
    // Only a refresh lookup of its (single, soon stale) bucket can teach it more.
    let config = NodeConfig {
        refresh_every: Duration::from_millis(100),
        bucket_refresh_after: Duration::from_millis(300),
        ..quiet.clone()
    };
    let newcomer = Node::bind(LOCALHOST, config).await.expect("bind");
    assert_eq!(newcomer.ping(first.local_addr()).await, Some(first.id()));
    assert_eq!(newcomer.nodes().len(), 1);
    assert_eq!(newcomer.stats().refresh_lookups, 0);

    let learned = eventually(Duration::from_secs(5), || newcomer.nodes().len() >= 8).await;
    let stats = newcomer.stats();
    eprintln!("after refresh: {} nodes in the table; {stats:?}", newcomer.nodes().len());
    assert!(learned, "no refresh filled the table: {} nodes; {stats:?}", newcomer.nodes().len());
    assert!(stats.refresh_lookups >= 1);
    // Bounded: about one refresh per bucket per 300 ms, never a storm.
    assert!(stats.refresh_lookups <= 200, "{stats:?}");
    // The nodes with the default interval did not refresh.
    assert!(network.iter().chain([&first]).all(|node| node.stats().refresh_lookups == 0));
}
