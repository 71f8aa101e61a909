//! End-to-end tests of the `tracker` binary: started on loopback port 0, spoken to in BEP 15 bytes.

mod common;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::process::Command;
use std::time::{Duration, Instant};

use common::process::Running;
use common::udp::{AnnounceReply, UdpClient};
use common::{bin, run, run_ok, write_pseudo_random};
use tracker_protocol::{AnnounceEvent, ConnectionId};

const HASH: [u8; 20] = [0xab; 20];

fn start_open(extra: &[&str]) -> (Running, SocketAddr) {
    Running::start_listening(Command::new(bin("tracker")).args(["--open", "--bind", "127.0.0.1:0"]).args(extra))
}

fn local(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)
}

#[test]
fn leechers_see_seeders_seeders_see_leechers_and_nobody_sees_itself() {
    let (_tracker, address) = start_open(&[]);
    let mut client = UdpClient::new(address);

    let seeder = client.announce(HASH, 7001, 0, AnnounceEvent::Started, -1);
    assert_eq!(seeder.peers(), [], "the first peer gets nobody");
    let first = client.announce(HASH, 7002, 1000, AnnounceEvent::Started, -1);
    assert_eq!(first.peers(), [local(7001)], "a leecher sees the seeder");
    let second = client.announce(HASH, 7003, 500, AnnounceEvent::Started, -1);
    assert_eq!(second.peers(), [local(7001), local(7002)], "seeders first, then leechers");
    match client.announce(HASH, 7001, 0, AnnounceEvent::None, -1) {
        AnnounceReply::Peers { interval, seeders, leechers, mut peers } => {
            peers.sort();
            assert_eq!(peers, [local(7002), local(7003)], "the seeder sees only leechers, not itself");
            assert_eq!((interval, seeders, leechers), (120, 1, 2));
        }
        other => panic!("{other:?}"),
    }
    for want in [0, 1] {
        assert_eq!(client.announce(HASH, 7004, 10, AnnounceEvent::None, want).peers().len(), want as usize);
    }
}

#[test]
fn scrape_counts_seeders_completed_and_leechers() {
    let (_tracker, address) = start_open(&[]);
    let mut client = UdpClient::new(address);
    client.announce(HASH, 7001, 0, AnnounceEvent::Started, -1);
    client.announce(HASH, 7002, 100, AnnounceEvent::Started, -1);
    client.announce(HASH, 7003, 100, AnnounceEvent::Started, -1);
    client.announce(HASH, 7002, 0, AnnounceEvent::Completed, -1);
    client.announce(HASH, 7003, 100, AnnounceEvent::Stopped, -1);
    let stats = client.scrape(&[HASH, [1; 20]]);
    assert_eq!((stats[0].seeders, stats[0].completed, stats[0].leechers), (2, 1, 0));
    assert_eq!((stats[1].seeders, stats[1].completed, stats[1].leechers), (0, 0, 0));
}

#[test]
fn a_silent_peer_is_dropped_after_the_peer_timeout() {
    let (tracker, address) = start_open(&["--peer-timeout", "2", "--interval", "1"]);
    let mut client = UdpClient::new(address);
    client.announce(HASH, 7001, 0, AnnounceEvent::Started, -1);
    assert_eq!(client.announce(HASH, 7002, 100, AnnounceEvent::Started, -1).peers(), [local(7001)]);
    // The leecher keeps announcing; the seeder does not. It must vanish within timeout + cleanup.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let peers = client.announce(HASH, 7002, 100, AnnounceEvent::None, -1).peers();
        if peers.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "stale seeder still listed after 10 s");
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(tracker.wait_for_stderr("cleaned stale peers", Duration::from_secs(5)), "{}", tracker.stderr());
}

#[test]
fn forged_ids_and_garbage_get_no_reply_and_the_tracker_keeps_serving() {
    let (tracker, address) = start_open(&["--status-interval", "1"]);
    let mut client = UdpClient::new(address);
    let forged = client.announce_packet(ConnectionId(0x0123_4567_89ab_cdef), HASH, 7001, 0, AnnounceEvent::Started, -1);
    assert_eq!(client.exchange(&forged), None, "a forged connection ID is not answered");
    for garbage in [&b""[..], b"x", &[0xff; 16], &[0; 98], &[0x41; 1500]] {
        assert_eq!(client.exchange(garbage), None, "garbage of {} bytes answered", garbage.len());
    }
    // An ID issued to another address is forged too.
    let mut other = UdpClient::on(address, "127.0.0.2");
    let stolen = other.connect();
    let packet = client.announce_packet(stolen, HASH, 7001, 0, AnnounceEvent::Started, -1);
    assert_eq!(client.exchange(&packet), None, "another address's connection ID is not accepted");
    assert_eq!(client.announce(HASH, 7001, 0, AnnounceEvent::Started, -1).peers(), []);
    assert!(tracker.wait_for_stderr("dropped=7", Duration::from_secs(5)), "{}", tracker.stderr());
}

#[test]
fn named_torrents_are_served_and_others_get_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_pseudo_random(&dir.path().join("movie.bin"), 100_000, 1);
    run_ok(Command::new(bin("mktorrent")).current_dir(dir.path()).args(["-q", "movie.bin"]));
    let shown =
        run_ok(Command::new(bin("mktorrent")).current_dir(dir.path()).args(["--show", "movie.torrent", "--json"]));
    let info_hash_hex = serde_json::from_str::<serde_json::Value>(&shown).expect("json")["info_hash"]
        .as_str()
        .expect("hash")
        .to_owned();
    let mut info_hash = [0u8; 20];
    hex::decode_to_slice(&info_hash_hex, &mut info_hash).expect("hex");

    let (tracker, address) = Running::start_listening(Command::new(bin("tracker")).current_dir(dir.path()).args([
        "movie.torrent",
        "--bind",
        "127.0.0.1:0",
    ]));
    let mut client = UdpClient::new(address);
    assert_eq!(
        client.announce(HASH, 7001, 0, AnnounceEvent::Started, -1),
        AnnounceReply::Error("unknown torrent".into())
    );
    client.announce(info_hash, 7001, 0, AnnounceEvent::Started, -1);
    assert_eq!(client.announce(info_hash, 7002, 50_000, AnnounceEvent::Started, -1).peers(), [local(7001)]);
    // Both announces are logged; wait for the second line rather than the first.
    assert!(tracker.wait_for_stderr("progress=50.0%", Duration::from_secs(5)), "{}", tracker.stderr());
    assert!(tracker.stderr().contains("torrent=movie.bin"), "{}", tracker.stderr());
}

#[test]
fn bad_torrents_are_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("bad.torrent"), b"d4:infod4:name2:..ee").expect("write");
    for (file, expected) in [("bad.torrent", "bad.torrent"), ("missing.torrent", "missing.torrent")] {
        let output = run(Command::new(bin("tracker")).current_dir(dir.path()).args([file, "--bind", "127.0.0.1:0"]));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{file} accepted");
        assert!(stderr.contains(expected) && !stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn ctrl_c_stops_the_tracker_cleanly() {
    let (mut tracker, address) = start_open(&[]);
    UdpClient::new(address).announce(HASH, 7001, 0, AnnounceEvent::Started, -1);
    let status = tracker.interrupt(Duration::from_secs(5)).expect("exits after SIGINT");
    assert!(status.success(), "{status}");
    assert!(tracker.wait_for_stderr("tracker stopped", Duration::from_secs(2)), "{}", tracker.stderr());
}

#[test]
fn ipv6_peers_get_ipv6_peers_and_mapped_ipv4_clients_stay_ipv4() {
    use std::net::{Ipv6Addr, SocketAddrV6, UdpSocket};
    use tracker_protocol::{AnnounceOptions, AnnounceRequest, ConnectRequest, Response, TransactionId};

    if !common::have_ipv6_loopback() {
        return;
    }
    let (_tracker, address) =
        Running::start_listening(Command::new(bin("tracker")).args(["--open", "--bind", "[::]:0"]));
    let port = address.port();

    // An IPv6 client on ::1, speaking raw BEP 15.
    let socket = UdpSocket::bind("[::1]:0").expect("bind v6");
    socket.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
    let tracker_v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
    let exchange = |packet: &[u8]| -> Vec<u8> {
        for _ in 0..5 {
            socket.send_to(packet, tracker_v6).expect("send");
            let mut buffer = [0u8; 2048];
            if let Ok((len, _)) = socket.recv_from(&mut buffer) {
                return buffer[..len].to_vec();
            }
        }
        panic!("no reply over IPv6");
    };
    let mut packet = Vec::new();
    ConnectRequest { transaction_id: TransactionId(1) }.write(&mut packet);
    let connection_id = match Response::<SocketAddrV6>::parse(&exchange(&packet)).expect("reply") {
        Response::Connect(reply) => reply.connection_id,
        other => panic!("{other:?}"),
    };
    let announce_v6 = |port: u16, left: u64| {
        let mut packet = Vec::new();
        AnnounceRequest {
            connection_id,
            transaction_id: TransactionId(2),
            info_hash: HASH,
            peer_id: [port as u8; 20],
            downloaded: 0,
            left,
            uploaded: 0,
            event: AnnounceEvent::Started,
            ip_address: None,
            key: 0,
            num_want: -1,
            port,
            options: AnnounceOptions::EMPTY,
        }
        .write(&mut packet);
        match Response::<SocketAddrV6>::parse(&exchange(&packet)).expect("reply") {
            Response::Announce(reply) => reply.peers,
            other => panic!("{other:?}"),
        }
    };

    // An IPv4 seeder through the same dual-stack socket.
    let mut v4 = UdpClient::new(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    v4.announce(HASH, 7001, 0, AnnounceEvent::Started, -1);
    assert_eq!(announce_v6(8001, 0), [], "the IPv4 seeder is not handed to IPv6 peers");
    assert_eq!(announce_v6(8002, 100), [SocketAddrV6::new(Ipv6Addr::LOCALHOST, 8001, 0, 0)]);
    assert_eq!(v4.announce(HASH, 7002, 100, AnnounceEvent::Started, -1).peers(), [local(7001)]);
}

#[test]
fn workers_share_one_swarm_and_honour_each_others_connection_ids() {
    let (mut tracker, address) = start_open(&["--workers", "4"]);
    // 64 clients, each its own socket (own source port): the kernel spreads them over the 4 workers' sockets.
    let mut clients: Vec<UdpClient> = (0..64).map(|_| UdpClient::new(address)).collect();
    for (n, client) in clients.iter_mut().enumerate() {
        let reply = client.announce(HASH, 9000 + n as u16, 1000, AnnounceEvent::Started, 200);
        // Every earlier leecher is in the one shared swarm, whichever worker recorded it.
        assert_eq!(reply.peers().len(), n, "client {n} saw {:?}", reply.peers());
    }
    // A connection ID is bound to the address, not the socket: one issued through one worker's socket is good
    // at whichever worker the next socket lands on.
    let id = clients[0].connect();
    for client in &mut clients[1..] {
        let packet = client.announce_packet(id, HASH, 9000, 1000, AnnounceEvent::None, 10);
        let reply = client.exchange(&packet).expect("an announce with another socket's connection ID is answered");
        assert_eq!(reply[..4], [0, 0, 0, 1], "not an announce reply: {reply:?}");
    }
    assert_eq!(clients[0].scrape(&[HASH])[0].leechers, 64);
    let status = tracker.interrupt(Duration::from_secs(10));
    assert!(status.is_some_and(|status| status.success()));
    // The goodbye line counts each worker's announces: more than one worker took part.
    let stderr = tracker.stderr();
    let line = stderr.lines().find(|line| line.contains("tracker stopped")).expect("a stopped line");
    let counts: Vec<u64> = line
        .split("per_worker=[")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .map(|list| list.split(", ").filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_default();
    assert_eq!(counts.len(), 4, "{line}");
    assert_eq!(counts.iter().sum::<u64>(), 64 + 63);
    assert!(counts.iter().filter(|&&count| count > 0).count() > 1, "one worker took every client: {line}");
}

/// A GET over HTTP/1.1 to `address`; returns the status code and the body.
fn http_get(address: SocketAddr, target: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("connect to the HTTP front end");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(stream, "GET {target} HTTP/1.1\r\nHost: tracker\r\nConnection: close\r\n\r\n").expect("send");
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).expect("read the reply");
    let reply = String::from_utf8_lossy(&reply).into_owned();
    let (head, body) = reply.split_once("\r\n\r\n").expect("a head and a body");
    let status = head.split(' ').nth(1).and_then(|code| code.parse().ok()).expect("a status code");
    (status, body.to_owned())
}

/// `text` parsed by the Python prometheus_client's OpenMetrics parser: every sample as `name{labels} value`.
fn parse_openmetrics(text: &str) -> Vec<String> {
    use std::io::Write;
    let script = "import sys\nfrom prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
                  for family in text_string_to_metric_families(sys.stdin.read()):\n    for s in family.samples:\n        \
                  labels = ','.join('%s=%s' % kv for kv in sorted(s.labels.items()))\n        \
                  print('%s{%s} %d' % (s.name, labels, s.value))\n";
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start python3");
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write the metrics");
    let output = child.wait_with_output().expect("the parser");
    assert!(output.status.success(), "not valid OpenMetrics:\n{}\n{text}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).lines().map(str::to_owned).collect()
}

#[test]
fn metrics_parse_as_openmetrics_and_move_as_announces_arrive() {
    if !common::have_tool(
        "python3-prometheus-client (the OpenMetrics parser)",
        Command::new("/usr/bin/python3").args(["-c", "import prometheus_client.openmetrics.parser"]),
    ) {
        return;
    }
    let (mut tracker, address) = start_open(&["--http", "127.0.0.1:0", "--workers", "2"]);
    let line = tracker.wait_for_line(|line| line.starts_with("http on "), Duration::from_secs(10)).expect("http on");
    let http: SocketAddr = line["http on ".len()..].parse().expect("an address");

    let before = parse_openmetrics(&http_get(http, "/metrics").1);
    assert!(before.contains(&"tracker_responses_total{kind=announce,protocol=udp} 0".to_owned()), "{before:?}");
    assert!(before.contains(&"tracker_torrents{} 0".to_owned()), "{before:?}");

    let mut client = UdpClient::new(address);
    client.announce(HASH, 7001, 0, AnnounceEvent::Started, -1);
    client.announce(HASH, 7002, 100, AnnounceEvent::Started, -1);
    let hash: String = HASH.iter().map(|byte| format!("%{byte:02x}")).collect();
    let (status, body) = http_get(
        http,
        &format!("/announce?info_hash={hash}&peer_id=-XX0001-000000000001&port=7003&uploaded=0&downloaded=0&left=5"),
    );
    assert_eq!(status, 200);
    assert!(body.starts_with("d8:completei1e"), "{body}");

    let after = parse_openmetrics(&http_get(http, "/metrics").1);
    for expected in [
        "tracker_responses_total{kind=announce,protocol=udp} 2",
        "tracker_responses_total{kind=connect,protocol=udp} 2",
        "tracker_responses_total{kind=announce,protocol=http} 1",
        "tracker_torrents{} 1",
        "tracker_seeders{} 1",
        "tracker_leechers{} 2",
        "tracker_peers{family=ipv4} 3",
    ] {
        assert!(after.contains(&expected.to_owned()), "{expected} not in {after:?}");
    }
    let workers: u64 = after
        .iter()
        .filter(|sample| sample.starts_with("tracker_worker_responses_total"))
        .filter_map(|sample| sample.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(workers, 4, "the workers' loads add up to the UDP requests: {after:?}");

    let (status, json) = http_get(http, "/stats.json");
    assert_eq!(status, 200);
    let stats: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!((stats["seeders"].as_u64(), stats["leechers"].as_u64()), (Some(1), Some(2)));
    assert_eq!(stats["http"]["announces"], 1);
    assert_eq!(stats["udp"]["announces"], 2);
}

#[test]
fn a_config_file_sets_the_tracker_up_and_sighup_reloads_its_torrents_without_dropping_swarms() {
    let work = tempfile::tempdir().expect("tempdir");
    let mut hashes = Vec::new();
    for name in ["first.bin", "second.bin"] {
        let data = work.path().join(name);
        write_pseudo_random(&data, 100_000, name.len() as u64);
        hashes.push(common::make_torrent(&data, "udp://127.0.0.1:1/announce", 15).1);
    }
    let config = work.path().join("tracker.toml");
    let write_config = |torrents: &str| {
        let text = format!("torrents = [{torrents}]\nbind = \"127.0.0.1:0\"\ninterval = 30\nworkers = 2\n");
        std::fs::write(&config, text).expect("write the config");
    };
    write_config("\"first.torrent\"");
    let printed =
        run_ok(Command::new(bin("tracker")).arg("--config").arg(&config).args(["--print-config", "--interval", "45"]));
    assert!(printed.contains("interval = 45") && printed.contains("peer_timeout = 67"), "{printed}");
    assert!(printed.contains("first.torrent") && printed.contains("workers = 2"), "{printed}");

    let (tracker, address) = Running::start_listening(Command::new(bin("tracker")).arg("--config").arg(&config));
    let mut client = UdpClient::new(address);
    assert!(matches!(client.announce(hashes[0], 7001, 0, AnnounceEvent::Started, -1), AnnounceReply::Peers { .. }));
    match client.announce(hashes[1], 7002, 0, AnnounceEvent::Started, -1) {
        AnnounceReply::Error(message) => assert_eq!(message, "unknown torrent"),
        other => panic!("the second torrent is not served yet: {other:?}"),
    }
    write_config("\"first.torrent\", \"second.torrent\"");
    let hup = Command::new("kill").args(["-HUP", &tracker.pid().to_string()]).status().expect("kill -HUP");
    assert!(hup.success());
    assert!(tracker.wait_for_stderr("reloaded the torrents", Duration::from_secs(10)), "{}", tracker.stderr());
    assert!(matches!(client.announce(hashes[1], 7002, 0, AnnounceEvent::Started, -1), AnnounceReply::Peers { .. }));
    // The first torrent's swarm went through the reload untouched.
    assert_eq!(client.scrape(&[hashes[0]])[0].seeders, 1);
    let bad = run(Command::new(bin("tracker")).arg("--config").arg(work.path().join("missing.toml")));
    assert!(!bad.status.success());
    std::fs::write(&config, "intervall = 5\n").expect("write");
    let bad = run(Command::new(bin("tracker")).arg("--config").arg(&config));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown field `intervall`"));
}

/// A burst of requests from several sockets, sent without waiting, arrives at a worker in batches (one
/// `recvmmsg`, one `sendmmsg`): every valid request is answered exactly once, at the address it came from, with its
/// own transaction ID, and the garbage mixed in is not answered.
#[test]
fn a_burst_of_requests_is_answered_once_each_at_its_own_address() {
    use tracker_protocol::{ConnectRequest, Response, TransactionId};
    let (_tracker, address) = start_open(&["--workers", "1"]);
    let sockets: Vec<std::net::UdpSocket> = (0..4)
        .map(|_| {
            let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
            socket.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
            socket
        })
        .collect();
    // 4 x 40 requests and 16 pieces of garbage fit the tracker socket's default receive buffer (about 270 small
    // datagrams in 208 KiB); a larger burst is dropped by the kernel before any tracker sees it.
    const PER_SOCKET: u32 = 40;
    for n in 0..PER_SOCKET {
        for (index, socket) in sockets.iter().enumerate() {
            let mut packet = Vec::new();
            let transaction = u32::try_from(index).expect("small") << 16 | n;
            ConnectRequest { transaction_id: TransactionId(transaction) }.write(&mut packet);
            socket.send_to(&packet, address).expect("send");
            if n % 10 == 0 {
                socket.send_to(b"garbage that is no request", address).expect("send");
            }
        }
    }
    for (index, socket) in sockets.iter().enumerate() {
        let mut seen = std::collections::BTreeSet::new();
        let mut buffer = [0u8; 2048];
        while let Ok(len) = socket.recv(&mut buffer) {
            let Ok(Response::<SocketAddrV4>::Connect(reply)) = Response::parse(&buffer[..len]) else {
                panic!("not a connect reply: {:?}", &buffer[..len]);
            };
            let transaction = reply.transaction_id.0;
            assert_eq!(transaction >> 16, u32::try_from(index).expect("small"), "a reply reached the wrong socket");
            assert!(seen.insert(transaction & 0xffff), "transaction {transaction} answered twice");
        }
        assert_eq!(seen.len(), PER_SOCKET as usize, "socket {index}: {} of {PER_SOCKET} answered", seen.len());
    }
}
