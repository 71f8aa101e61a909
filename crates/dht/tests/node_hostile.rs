//! Hostile input against the real node over loopback UDP: garbage and oversized datagrams, a get_peers reply
//! with thousands of values, a crowd of ids on one address, announces with tokens that are not theirs, and a
//! flood of small queries from a source that never answers (a spoofed victim). The codec's side of the same
//! (named errors, caps) is in krpc_hostile.rs. Every wait is bounded; nothing leaves 127.0.0.0/8.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dht::krpc::{self, Body, MAX_DATAGRAM_LEN, MAX_VALUES, Message, Method, Response, TransactionId};
use dht::node::{AMPLIFICATION, RateLimits};
use dht::{Node, NodeConfig, NodeId, NodeInfo, PeerStoreLimits};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::net::UdpSocket;
use tokio::time::timeout;

const LOCALHOST: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0));
/// Rate limits out of the way, where the test is about something else.
const LIFTED: RateLimits = RateLimits { per_ip_per_sec: 1e6, per_ip_burst: 1e6, global_per_sec: 1e6 };

fn v4(addr: SocketAddr) -> SocketAddrV4 {
    match addr {
        SocketAddr::V4(addr) => addr,
        SocketAddr::V6(addr) => panic!("not IPv4: {addr}"),
    }
}

/// Receives datagrams on `socket` for at most 2 s until one decodes with transaction id `tid`; returns it and
/// the number of other datagrams that came first, queries (the node's pings) not counted.
async fn recv_reply(socket: &UdpSocket, tid: TransactionId) -> (Message, usize) {
    let mut buf = vec![0u8; 65_536];
    let mut others = 0;
    timeout(Duration::from_secs(2), async {
        loop {
            let (len, _) = socket.recv_from(&mut buf).await.expect("recv");
            match Message::decode(&buf[..len]) {
                Ok((message, _)) if message.transaction_id == tid => return (message, others),
                Ok((Message { body: Body::Query(_), .. }, _)) => {}
                _ => others += 1,
            }
        }
    })
    .await
    .expect("a reply within 2 s")
}

async fn ping(socket: &UdpSocket, to: SocketAddrV4, tid: u16) -> (Message, usize) {
    let query = Message::query(TransactionId::from(tid), NodeId([9; 20]), Method::Ping);
    socket.send_to(&query.to_bytes(), to).await.expect("send");
    recv_reply(socket, query.transaction_id).await
}

#[tokio::test]
async fn garbage_and_oversized_datagrams_get_no_reply_and_the_node_keeps_answering() {
    let node = Node::bind(LOCALHOST, NodeConfig { rate_limits: LIFTED, ..NodeConfig::default() }).await.expect("bind");
    let target = node.local_addr();
    let client = UdpSocket::bind(LOCALHOST).await.expect("bind");
    let mut rng = SmallRng::seed_from_u64(11);

    let mut garbage: Vec<Vec<u8>> = Vec::new();
    for _ in 0..200 {
        let len = rng.random_range(1..=MAX_DATAGRAM_LEN);
        garbage.push((0..len).map(|_| rng.random()).collect());
    }
    let mut bomb = b"d1:t2:aa1:y1:q1:a".to_vec();
    bomb.extend(std::iter::repeat_n(b'l', 1000));
    garbage.extend([
        b"".to_vec(),
        b"d".to_vec(),
        b"de".to_vec(),
        b"i42e".to_vec(),
        b"d1:t2:aa1:y1:r1:rde".to_vec(), // a response nobody asked for, without id
        b"d1:t2:aa1:y1:q".to_vec(),      // a query cut short: its transaction id cannot be read
        b"d1:t99999999999:".to_vec(),
        bomb,
    ]);
    // Oversized: past the 1,500 bytes decoded. Even a well-formed query is not answered once it is too long.
    let long_ping = {
        let mut bytes = Message::query(TransactionId::from(1), NodeId([1; 20]), Method::Ping).to_bytes();
        let padding = format!("1:z{}:{}", 1600, "z".repeat(1600));
        bytes.pop();
        bytes.extend_from_slice(padding.as_bytes());
        bytes.push(b'e');
        bytes
    };
    assert!(long_ping.len() > MAX_DATAGRAM_LEN);
    garbage.push(long_ping);
    garbage.push(vec![b'l'; MAX_DATAGRAM_LEN + 1]);
    garbage.push(vec![b'd'; 9000]);
    garbage.push(vec![0xff; 65_000]);

    let started = Instant::now();
    for (i, datagram) in garbage.iter().enumerate() {
        client.send_to(datagram, target).await.expect("send");
        // A ping after each: the node handles datagrams in order, so any answer to the garbage would come first.
        let (reply, before) = ping(&client, target, i as u16).await;
        assert_eq!(before, 0, "datagram {i} ({} bytes) was answered", datagram.len());
        assert!(matches!(reply.body, Body::Response(ref response) if response.id == node.id()));
    }
    let stats = node.stats();
    eprintln!("{} hostile datagrams in {:?}: {stats:?}", garbage.len(), started.elapsed());
    assert_eq!(stats.answered, garbage.len() as u64, "only the pings were answered");
    // The unsolicited response is counted as unmatched, the rest as malformed.
    assert_eq!(stats.malformed + stats.unmatched, garbage.len() as u64);
}

/// A `values` reply of `count` distinct loopback peers (never contacted), with a token.
fn values_reply(tid: TransactionId, id: NodeId, count: usize) -> Message {
    let mut response = Response::new(id);
    response.token = Some(b"tokn".to_vec());
    response.values = Some(
        (0..count)
            .map(|i| SocketAddr::from((Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250) as u8 + 1), 6881)))
            .collect(),
    );
    Message::response(tid, response)
}

#[tokio::test]
async fn a_get_peers_reply_with_thousands_of_values_is_bounded() {
    let fake = UdpSocket::bind(LOCALHOST).await.expect("bind");
    let fake_addr = v4(fake.local_addr().expect("addr"));
    let config = NodeConfig { bootstrap: vec![SocketAddr::V4(fake_addr)], ..NodeConfig::default() };
    let node = Node::bind(LOCALHOST, config).await.expect("bind");
    let info_hash = [0x42; 20];

    let answering = async {
        let mut buf = [0u8; 2048];
        let (len, from) =
            timeout(Duration::from_secs(2), fake.recv_from(&mut buf)).await.expect("a query").expect("recv");
        let (query, _) = Message::decode(&buf[..len]).expect("our query decodes");
        assert!(matches!(query.body, Body::Query(ref q) if matches!(q.method, Method::GetPeers { .. })));
        let id = NodeId([0x43; 20]);
        // 10,000 values (80 KB) do not fit one UDP datagram at all (65,507 bytes at most): the kernel refuses it.
        let ten_thousand = values_reply(query.transaction_id, id, 10_000).to_bytes();
        assert!(fake.send_to(&ten_thousand, from).await.is_err(), "{} bytes sent in one datagram", ten_thousand.len());
        // The most that fits, 8,000 values in 64 KB: refused unparsed, as longer than 1,500 bytes.
        let huge = values_reply(query.transaction_id, id, 8_000).to_bytes();
        eprintln!("8,000 values: {} bytes", huge.len());
        fake.send_to(&huge, from).await.expect("a 64 KB datagram on loopback");
        // As many as fit in 1,500 bytes: the first 100 are kept.
        let fitting = (100..400)
            .rev()
            .map(|count| values_reply(query.transaction_id, id, count).to_bytes())
            .find(|bytes| bytes.len() <= MAX_DATAGRAM_LEN)
            .expect("some count fits");
        fake.send_to(&fitting, from).await.expect("send");
    };
    let (lookup, ()) = tokio::join!(timeout(Duration::from_secs(5), node.get_peers_lookup(info_hash)), answering);
    let lookup = lookup.expect("the lookup ends");
    let stats = node.stats();
    eprintln!("lookup: {} peers, {:?}; node {stats:?}", lookup.peers.len(), lookup.stats);
    assert_eq!(lookup.peers.len(), MAX_VALUES);
    assert_eq!(lookup.peers[0], SocketAddrV4::new(Ipv4Addr::new(127, 1, 0, 1), 6881));
    assert_eq!(stats.malformed, 1, "the 64 KB reply is dropped");
    assert_eq!(lookup.stats.responses, 1);
}

/// `count` fake DHT nodes on 127.0.0.1, each with an id of its own, answering any query with its id and 8
/// of the others as `nodes` (a crowd of ids on one host). They stop after 5 s without a datagram.
async fn fake_crowd(count: usize) -> Vec<NodeInfo<SocketAddrV4>> {
    let mut sockets = Vec::new();
    let mut crowd = Vec::new();
    for _ in 0..count {
        let socket = UdpSocket::bind(LOCALHOST).await.expect("bind");
        crowd.push(NodeInfo { id: NodeId(rand::rng().random()), addr: v4(socket.local_addr().expect("addr")) });
        sockets.push(socket);
    }
    let shared = Arc::new(crowd.clone());
    for (me, socket) in sockets.into_iter().enumerate() {
        let crowd = Arc::clone(&shared);
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            let mut rng = SmallRng::seed_from_u64(me as u64);
            while let Ok(Ok((len, from))) = timeout(Duration::from_secs(5), socket.recv_from(&mut buf)).await {
                let Ok((Message { transaction_id, body: Body::Query(_), .. }, _)) = Message::decode(&buf[..len]) else {
                    continue;
                };
                let mut response = Response::new(crowd[me].id);
                response.nodes = Some((0..8).map(|_| crowd[rng.random_range(0..crowd.len())]).collect());
                let _ = socket.send_to(&Message::response(transaction_id, response).to_bytes(), from).await;
            }
        });
    }
    crowd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_of_ids_on_one_address_takes_one_slot_per_bucket() {
    let crowd = fake_crowd(64).await;
    let bootstrap = vec![SocketAddr::V4(crowd[0].addr)];
    let on_localhost = |node: &Node| node.nodes().iter().filter(|info| info.addr.ip() == Ipv4Addr::LOCALHOST).count();

    // restrict_ips (the default): the bootstrap lookup crawls the crowd, all of whom answer, and a flood of
    // queries with 500 made-up ids comes from one more port of the same address.
    let config = NodeConfig { bootstrap: bootstrap.clone(), rate_limits: LIFTED, ..NodeConfig::default() };
    let node = Node::bind(LOCALHOST, config).await.expect("bind");
    let stats = timeout(Duration::from_secs(10), node.bootstrap()).await.expect("bootstrap ends");
    assert!(stats.responses >= 8, "the crowd answered: {stats:?}");
    let flooder = UdpSocket::bind(LOCALHOST).await.expect("bind");
    for i in 0..500u16 {
        let query = Message::query(TransactionId::from(i), NodeId(rand::rng().random()), Method::Ping);
        flooder.send_to(&query.to_bytes(), node.local_addr()).await.expect("send");
        if i % 50 == 49 {
            recv_reply(&flooder, query.transaction_id).await;
        }
    }
    let held = on_localhost(&node);
    eprintln!(
        "restrict_ips: {held} of 65 ids on 127.0.0.1 held after {} responses; {:?}",
        stats.responses,
        node.stats()
    );
    // One bucket (nothing from elsewhere made it split), so one entry for the address.
    assert_eq!(held, 1, "{:?}", node.nodes());

    // The control: without the rule, the same crowd fills the table.
    let config = NodeConfig { bootstrap, rate_limits: LIFTED, restrict_ips: false, ..NodeConfig::default() };
    let open = Node::bind(LOCALHOST, config).await.expect("bind");
    timeout(Duration::from_secs(10), open.bootstrap()).await.expect("bootstrap ends");
    let held = on_localhost(&open);
    eprintln!("restrict_ips off: {held} of 64 ids held");
    assert!(held >= 8, "{held}");
}

#[tokio::test]
async fn announce_peer_with_a_token_that_is_not_its_own_is_refused() {
    let node = Node::bind(LOCALHOST, NodeConfig::default()).await.expect("bind");
    let target = node.local_addr();
    let client = UdpSocket::bind(LOCALHOST).await.expect("bind");
    let info_hash = [0xcd; 20];
    let querier = NodeId([2; 20]);
    let announce = |tid: u16, token: Vec<u8>| {
        let method = Method::AnnouncePeer { info_hash, port: 6881, implied_port: false, token, seed: None };
        Message::query(TransactionId::from(tid), querier, method)
    };
    let error_code = |message: &Message| match &message.body {
        Body::Error(error) => Some(error.code),
        _ => None,
    };
    let send = |message: Message| {
        let client = &client;
        async move {
            client.send_to(&message.to_bytes(), target).await.expect("send");
            recv_reply(client, message.transaction_id).await.0
        }
    };

    let get_peers = Message::query(TransactionId::from(1), querier, Method::GetPeers { info_hash, bootstrap: false });
    let Body::Response(response) = send(get_peers).await.body else { panic!("no get_peers response") };
    let token = response.token.expect("a token");
    // Made up, of every length a token may have, and the real one altered.
    for (i, bad) in [vec![0u8], vec![0; 8], vec![0xff; 64], {
        let mut altered = token.clone();
        altered[0] ^= 1;
        altered
    }]
    .into_iter()
    .enumerate()
    {
        let reply = send(announce(10 + i as u16, bad)).await;
        assert_eq!(error_code(&reply), Some(krpc::PROTOCOL_ERROR), "{reply:?}");
    }
    // The real token, from another address (127.0.0.2; all of 127/8 is loopback on Linux).
    match UdpSocket::bind((Ipv4Addr::new(127, 0, 0, 2), 0)).await {
        Ok(other) => {
            let message = announce(20, token.clone());
            other.send_to(&message.to_bytes(), target).await.expect("send");
            let reply = recv_reply(&other, message.transaction_id).await.0;
            assert_eq!(error_code(&reply), Some(krpc::PROTOCOL_ERROR), "another address's token: {reply:?}");
        }
        Err(error) => eprintln!("127.0.0.2 unavailable ({error}): the other-address case is skipped"),
    }
    assert_eq!(node.stored_peer_count(&info_hash), 0, "nothing stored");
    // The token from its own address is accepted.
    assert!(matches!(send(announce(30, token)).await.body, Body::Response(_)));
    assert_eq!(node.stored_peer_count(&info_hash), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoofed_flood_gets_at_most_one_small_reply_per_query() {
    // A node worth amplifying through: a full bucket of nodes for find_node, and 100 peers of one swarm.
    let store = PeerStoreLimits { max_peers_per_ip: 1000, ..PeerStoreLimits::default() };
    let config = NodeConfig { restrict_ips: false, peer_store: store, ..NodeConfig::default() };
    let node = Node::bind(LOCALHOST, config).await.expect("bind");
    let target = node.local_addr();
    let mut others = Vec::new();
    for _ in 0..10 {
        let other =
            Node::bind(LOCALHOST, NodeConfig { restrict_ips: false, ..NodeConfig::default() }).await.expect("bind");
        assert_eq!(node.ping(other.local_addr()).await, Some(other.id()));
        others.push(other);
    }
    // 100 peers, announced from 127.0.0.10 to .14 (20 each, within the per-address burst of the rate limits);
    // where those addresses cannot be bound, 25 from 127.0.0.1.
    let info_hash = [0x5a; 20];
    let mut announcers = Vec::new();
    for last in 10..15u8 {
        match UdpSocket::bind((Ipv4Addr::new(127, 0, 0, last), 0)).await {
            Ok(socket) => announcers.push((socket, 20u16)),
            Err(error) => {
                eprintln!("127.0.0.{last} unavailable ({error}): fewer peers stored");
                announcers = vec![(UdpSocket::bind(LOCALHOST).await.expect("bind"), 25)];
                break;
            }
        }
    }
    let mut stored = 0;
    for (n, (announcer, count)) in announcers.iter().enumerate() {
        let querier = NodeId([n as u8 + 1; 20]);
        let get_peers =
            Message::query(TransactionId::from(1), querier, Method::GetPeers { info_hash, bootstrap: false });
        announcer.send_to(&get_peers.to_bytes(), target).await.expect("send");
        let Body::Response(response) = recv_reply(announcer, get_peers.transaction_id).await.0.body else {
            panic!("no get_peers response")
        };
        let token = response.token.expect("token");
        for i in 0..*count {
            let port = 1000 + n as u16 * 100 + i;
            let method =
                Method::AnnouncePeer { info_hash, port, implied_port: false, token: token.clone(), seed: None };
            let message = Message::query(TransactionId::from(port), querier, method);
            announcer.send_to(&message.to_bytes(), target).await.expect("send");
            recv_reply(announcer, message.transaction_id).await;
        }
        stored += usize::from(*count);
    }
    assert_eq!(node.stored_peer_count(&info_hash), stored);

    // The victim: a socket that never answers (as an address whose queries were spoofed would not). Small
    // queries of each kind, 1-byte transaction ids where the kind allows: the largest amplification on offer.
    let victim = UdpSocket::bind(LOCALHOST).await.expect("bind");
    let mut rng = SmallRng::seed_from_u64(5);
    let mut sent: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut queries = Vec::new();
    for i in 0..600u32 {
        let tid = TransactionId::new(&(i as u16).to_be_bytes()).expect("tid");
        let id = NodeId(rng.random());
        let bytes = match i % 4 {
            0 => Message::query(tid, id, Method::GetPeers { info_hash, bootstrap: false }).to_bytes(),
            1 => {
                Message::query(tid, id, Method::FindNode { target: NodeId(rng.random()), bootstrap: false }).to_bytes()
            }
            2 => Message::query(tid, id, Method::Ping).to_bytes(),
            // Malformed, answered with error 203: the smallest query that gets any answer.
            _ => format!(
                "d1:t2:{}1:y1:qe",
                String::from_utf8_lossy(&[b'a' + (i % 26) as u8, b'a' + (i / 26 % 26) as u8])
            )
            .into_bytes(),
        };
        let tid = krpc::query_transaction_id(&bytes).expect("a query's tid");
        sent.insert(tid.as_bytes().to_vec(), bytes.len());
        queries.push(bytes);
    }
    let started = Instant::now();
    let flooding = async {
        for bytes in &queries {
            let _ = victim.send_to(bytes, target).await;
        }
    };
    let counting = async {
        let mut buf = vec![0u8; 65_536];
        let (mut replies, mut pings, mut reply_bytes, mut biggest_ratio) = (0usize, 0usize, 0usize, 0f64);
        let mut answered: HashMap<Vec<u8>, usize> = HashMap::new();
        while let Ok(Ok((len, _))) = timeout(Duration::from_millis(700), victim.recv_from(&mut buf)).await {
            let (message, _) = Message::decode(&buf[..len]).expect("the node sends KRPC");
            if matches!(message.body, Body::Query(_)) {
                pings += 1;
                reply_bytes += len;
                continue;
            }
            let tid = message.transaction_id.as_bytes().to_vec();
            let query_len = *sent.get(&tid).expect("a reply to a query of ours");
            *answered.entry(tid).or_default() += 1;
            assert!(len <= query_len * AMPLIFICATION, "{len}-byte reply to a {query_len}-byte query: {message:?}");
            biggest_ratio = biggest_ratio.max(len as f64 / query_len as f64);
            replies += 1;
            reply_bytes += len;
        }
        (replies, pings, reply_bytes, biggest_ratio, answered)
    };
    let ((replies, pings, reply_bytes, biggest_ratio, answered), ()) = tokio::join!(counting, flooding);
    let window = started.elapsed().as_secs_f64();
    let limits = RateLimits::default();
    let bound = limits.per_ip_burst + limits.per_ip_per_sec * window + 1.0;
    let query_bytes: usize = queries.iter().map(Vec::len).sum();
    eprintln!(
        "spoofed flood: {} queries ({query_bytes} B) drew {replies} replies and {pings} pings ({reply_bytes} B) in \
         {window:.2} s; largest reply/query {biggest_ratio:.2}; rate bound {bound:.0}; {:?}",
        queries.len(),
        node.stats()
    );
    assert!(answered.values().all(|&count| count == 1), "a query answered twice");
    assert!(replies as f64 <= bound, "{replies} replies past the rate limit {bound}");
    assert!(replies > 0 && pings <= 2);
    assert!(reply_bytes <= query_bytes, "more bytes out ({reply_bytes}) than in ({query_bytes})");
}

#[tokio::test]
async fn queries_from_many_ports_never_take_more_than_half_the_outstanding_queries_with_pings() {
    // Each query from a node with room in its bucket makes the node ping it back, to see whether it answers. One
    // IP on many ports (or spoofed sources that never answer) must not fill the node's outstanding queries with
    // those pings, which would leave none for its own lookups.
    let config = NodeConfig { restrict_ips: false, rate_limits: LIFTED, max_outstanding: 32, ..NodeConfig::default() };
    let node = Node::bind(LOCALHOST, config).await.expect("bind");
    let target = node.local_addr();
    let mut sockets = Vec::new();
    let mut rng = SmallRng::seed_from_u64(9);
    for n in 0..64u16 {
        let socket = UdpSocket::bind(LOCALHOST).await.expect("bind");
        let query = Message::query(TransactionId::from(n), NodeId(rng.random()), Method::Ping);
        socket.send_to(&query.to_bytes(), target).await.expect("send");
        recv_reply(&socket, query.transaction_id).await;
        sockets.push(socket);
    }
    // Well within the 2 s a ping stays outstanding: count the pings that came to any of the ports.
    let mut pings = 0;
    let mut buf = vec![0u8; 65_536];
    for socket in &sockets {
        while let Ok(Ok((len, _))) = timeout(Duration::from_millis(5), socket.recv_from(&mut buf)).await {
            if matches!(Message::decode(&buf[..len]), Ok((Message { body: Body::Query(_), .. }, _))) {
                pings += 1;
            }
        }
    }
    eprintln!("64 queries from 64 ports of 127.0.0.1 drew {pings} pings; {:?}", node.stats());
    assert!(pings > 0, "nobody was pinged back");
    assert!(pings <= 16, "{pings} pings outstanding, more than half of the 32 allowed");
    assert_eq!(node.stats().outstanding_full, 0, "the table of outstanding queries filled up");
}
