//! Tests of the UDP tracker client against a fake tracker: a loopback socket driven by each test, which parses the
//! client's requests and writes its answers with the `tracker-protocol` codec.

use std::borrow::Cow;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::net::UdpSocket;
use tokio::time::Instant;
use tracker_protocol::{
    AnnounceEvent, AnnounceOptions, AnnounceRequest, AnnounceResponse, CompactPeer, ConnectResponse, ConnectionId,
    ErrorResponse, Request, ResponseParseError, ScrapeResponse, TorrentStats, TransactionId,
};

use super::{Announce, AnnounceReply, MAX_SCRAPE_HASHES, Timeouts, TrackerClient, TrackerError, parse_udp_url};

/// Every test finishes well within this, or fails instead of hanging.
const LIMIT: Duration = Duration::from_secs(10);
/// Short retries, so that the tests which drop packets run in milliseconds.
const FAST: Timeouts = Timeouts { base: Duration::from_millis(50), max_attempts: 4 };
/// For tests where nothing is dropped: a loaded machine must not cause a retry the fake does not expect, and a
/// missing answer shows as `TimedOut` rather than a hang.
const PATIENT: Timeouts = Timeouts { base: Duration::from_secs(5), max_attempts: 1 };
const INTERVAL: u32 = 1800;
const SEEDERS: u32 = 1;

async fn bounded<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(LIMIT, future).await.expect("the test did not finish within 10 s")
}

fn sample_announce() -> Announce {
    Announce {
        info_hash: [0xab; 20],
        peer_id: *b"-BT0001-abcdefghijkl",
        downloaded: 1000,
        left: 2000,
        uploaded: 3000,
        event: AnnounceEvent::Started,
        key: 0xdead_beef,
        num_want: 50,
        port: 6881,
    }
}

fn v4_peers() -> Vec<SocketAddrV4> {
    vec![SocketAddrV4::new(Ipv4Addr::new(10, 1, 2, 3), 6881), SocketAddrV4::new(Ipv4Addr::LOCALHOST, 51413)]
}

/// The reply the client should build from the fake's announce response carrying `peers`.
fn expected_reply<A: Into<SocketAddr> + Copy>(peers: &[A]) -> AnnounceReply {
    AnnounceReply {
        interval: INTERVAL,
        leechers: u32::try_from(peers.len()).expect("few peers"),
        seeders: SEEDERS,
        peers: peers.iter().map(|&peer| peer.into()).collect(),
    }
}

/// A tracker that answers only what the test tells it to.
struct FakeTracker {
    socket: UdpSocket,
    buffer: Vec<u8>,
}

impl FakeTracker {
    async fn bind(ip: IpAddr) -> std::io::Result<Self> {
        Ok(Self { socket: UdpSocket::bind((ip, 0)).await?, buffer: vec![0; 65_536] })
    }

    async fn v4() -> Self {
        Self::bind(IpAddr::V4(Ipv4Addr::LOCALHOST)).await.expect("bind the fake tracker on 127.0.0.1")
    }

    fn addr(&self) -> SocketAddr {
        self.socket.local_addr().expect("fake tracker address")
    }

    /// `udp://127.0.0.1:PORT/announce`, or `udp://[::1]:PORT/announce`.
    fn url(&self) -> String {
        format!("udp://{}/announce", self.addr())
    }

    async fn client(&self, timeouts: Timeouts) -> TrackerClient {
        TrackerClient::new(&self.url(), None, timeouts).await.expect("client for the fake tracker")
    }

    async fn recv(&mut self) -> (Vec<u8>, SocketAddr) {
        let (len, from) = self.socket.recv_from(&mut self.buffer).await.expect("fake tracker receive");
        (self.buffer[..len].to_vec(), from)
    }

    async fn expect_connect(&mut self) -> (TransactionId, SocketAddr) {
        let (packet, from) = self.recv().await;
        match Request::parse(&packet, 70) {
            Ok(Request::Connect(request)) => (request.transaction_id, from),
            other => panic!("expected a connect request, got {other:?}"),
        }
    }

    async fn expect_announce(&mut self) -> (AnnounceRequest<'static>, SocketAddr) {
        let (packet, from) = self.recv().await;
        match Request::parse(&packet, 70) {
            Ok(Request::Announce(request)) => {
                assert!(request.options.is_empty(), "the client sends no BEP 41 options");
                (owned_announce(&request), from)
            }
            other => panic!("expected an announce request, got {other:?}"),
        }
    }

    async fn send(&self, packet: &[u8], to: SocketAddr) {
        self.socket.send_to(packet, to).await.expect("fake tracker send");
    }

    async fn send_connect(&self, transaction_id: TransactionId, connection_id: ConnectionId, to: SocketAddr) {
        let mut packet = Vec::new();
        ConnectResponse { transaction_id, connection_id }.write(&mut packet);
        self.send(&packet, to).await;
    }

    async fn send_announce<A: CompactPeer>(&self, transaction_id: TransactionId, peers: &[A], to: SocketAddr) {
        let mut packet = Vec::new();
        let leechers = u32::try_from(peers.len()).expect("few peers");
        AnnounceResponse {
            transaction_id,
            interval: INTERVAL,
            leechers,
            seeders: SEEDERS,
            peers: peers.iter().copied(),
        }
        .write(&mut packet);
        self.send(&packet, to).await;
    }

    async fn send_error(&self, transaction_id: TransactionId, message: &'static str, to: SocketAddr) {
        let mut packet = Vec::new();
        ErrorResponse { transaction_id, message: Cow::Borrowed(message) }.write(&mut packet);
        self.send(&packet, to).await;
    }

    /// Answers a connect with `connection_id`; returns the client's address.
    async fn serve_connect(&mut self, connection_id: ConnectionId) -> SocketAddr {
        let (transaction_id, client) = self.expect_connect().await;
        self.send_connect(transaction_id, connection_id, client).await;
        client
    }

    /// Answers an announce that must carry `connection_id` with `peers`.
    async fn serve_announce<A: CompactPeer>(&mut self, connection_id: ConnectionId, peers: &[A]) {
        let (request, client) = self.expect_announce().await;
        assert_eq!(request.connection_id, connection_id, "the announce carries the id from the connect reply");
        self.send_announce(request.transaction_id, peers, client).await;
    }

    /// Packets already queued on the fake's socket (loopback delivers a datagram before `send_to` returns).
    fn drain(&mut self) -> Vec<Vec<u8>> {
        let mut packets = Vec::new();
        while let Ok((len, _)) = self.socket.try_recv_from(&mut self.buffer) {
            packets.push(self.buffer[..len].to_vec());
        }
        packets
    }
}

/// The request with its fields copied, so it can outlive the packet (options dropped; the caller checked them).
fn owned_announce(request: &AnnounceRequest<'_>) -> AnnounceRequest<'static> {
    AnnounceRequest {
        connection_id: request.connection_id,
        transaction_id: request.transaction_id,
        info_hash: request.info_hash,
        peer_id: request.peer_id,
        downloaded: request.downloaded,
        left: request.left,
        uploaded: request.uploaded,
        event: request.event,
        ip_address: request.ip_address,
        key: request.key,
        num_want: request.num_want,
        port: request.port,
        options: AnnounceOptions::EMPTY,
    }
}

fn is_connect(packet: &[u8]) -> bool {
    matches!(Request::parse(packet, 70), Ok(Request::Connect(_)))
}

#[tokio::test]
async fn connect_then_announce_sends_every_field_and_returns_the_peers() {
    let mut fake = FakeTracker::v4().await;
    let mut client = fake.client(PATIENT).await;
    assert_eq!(client.tracker_addr(), fake.addr());
    let announce = sample_announce();
    let connection_id = ConnectionId(0x0123_4567_89ab_cdef);

    let (reply, ()) = bounded(async {
        tokio::join!(client.announce(&announce), async {
            fake.serve_connect(connection_id).await;
            let (request, from) = fake.expect_announce().await;
            let expected = AnnounceRequest {
                connection_id,
                transaction_id: request.transaction_id,
                info_hash: announce.info_hash,
                peer_id: announce.peer_id,
                downloaded: announce.downloaded,
                left: announce.left,
                uploaded: announce.uploaded,
                event: announce.event,
                ip_address: None,
                key: announce.key,
                num_want: announce.num_want,
                port: announce.port,
                options: AnnounceOptions::EMPTY,
            };
            assert_eq!(request, expected);
            fake.send_announce(request.transaction_id, &v4_peers(), from).await;
        })
    })
    .await;

    assert_eq!(reply.expect("announce succeeds"), expected_reply(&v4_peers()));
    assert!(fake.drain().is_empty(), "nothing was sent twice");
}

#[tokio::test]
async fn the_connection_id_is_reused_within_sixty_seconds_and_renewed_after() {
    let mut fake = FakeTracker::v4().await;
    let mut client = fake.client(PATIENT).await;
    let announce = sample_announce();
    let first = ConnectionId(1);
    let second = ConnectionId(2);

    bounded(async {
        let (reply, ()) = tokio::join!(client.announce(&announce), async {
            fake.serve_connect(first).await;
            fake.serve_announce(first, &v4_peers()).await;
        });
        assert_eq!(reply.expect("first announce"), expected_reply(&v4_peers()));

        // The fake's next packet must be the announce itself: `expect_announce` panics on a connect.
        let one_peer = &v4_peers()[..1];
        let (reply, ()) = tokio::join!(client.announce(&announce), fake.serve_announce(first, one_peer));
        assert_eq!(reply.expect("second announce"), expected_reply(one_peer));

        // Age the cached id past the 60 s BEP 15 lets a client keep it.
        let mut connection = client.endpoint.connection(client.tracker).expect("a cached connection id");
        connection.requested_at =
            Instant::now().checked_sub(Duration::from_secs(61)).expect("the clock is past 61 s since boot");
        client.endpoint.set_connection(client.tracker, Some(connection));
        let (reply, ()) = tokio::join!(client.announce(&announce), async {
            fake.serve_connect(second).await;
            fake.serve_announce(second, &v4_peers()).await;
        });
        assert_eq!(reply.expect("third announce"), expected_reply(&v4_peers()));
    })
    .await;
    assert!(fake.drain().is_empty());
}

#[tokio::test]
async fn a_dropped_connect_is_sent_again_after_the_base_timeout() {
    let mut fake = FakeTracker::v4().await;
    let mut client = fake.client(FAST).await;
    let announce = sample_announce();
    let started = std::time::Instant::now();

    let (reply, ()) = bounded(async {
        tokio::join!(client.announce(&announce), async {
            let _ignored = fake.expect_connect().await;
            fake.serve_connect(ConnectionId(7)).await;
            assert!(started.elapsed() >= FAST.base, "resent after {:?}, before the base timeout", started.elapsed());
            fake.serve_announce(ConnectionId(7), &v4_peers()).await;
        })
    })
    .await;
    assert_eq!(reply.expect("announce succeeds on the second attempt"), expected_reply(&v4_peers()));
}

#[tokio::test]
async fn a_dropped_announce_makes_the_next_attempt_connect_again() {
    let mut fake = FakeTracker::v4().await;
    let mut client = fake.client(Timeouts { base: Duration::from_millis(100), max_attempts: 3 }).await;
    let announce = sample_announce();

    let (reply, ()) = bounded(async {
        tokio::join!(client.announce(&announce), async {
            fake.serve_connect(ConnectionId(1)).await;
            let (dropped, _) = fake.expect_announce().await;
            assert_eq!(dropped.connection_id, ConnectionId(1));
            // Not answered: the client must not trust that id any more.
            fake.serve_connect(ConnectionId(2)).await;
            fake.serve_announce(ConnectionId(2), &v4_peers()).await;
        })
    })
    .await;
    assert_eq!(reply.expect("announce succeeds after reconnecting"), expected_reply(&v4_peers()));
}

#[tokio::test]
async fn when_every_attempt_is_dropped_the_client_gives_up_after_max_attempts() {
    let mut fake = FakeTracker::v4().await;
    let timeouts = Timeouts { base: Duration::from_millis(10), max_attempts: 4 };
    let mut client = fake.client(timeouts).await;
    let started = std::time::Instant::now();

    let announce = sample_announce();
    let result = bounded(client.announce(&announce)).await;

    let waited = started.elapsed();
    let all_waits = Duration::from_millis(10 + 20 + 40 + 80);
    assert!(waited >= all_waits, "gave up after {waited:?}, before the {all_waits:?} that 4 attempts wait");
    match result {
        Err(error @ TrackerError::TimedOut { tracker, attempts: 4 }) => {
            assert_eq!(tracker, fake.addr());
            assert!(error.to_string().contains(&fake.addr().to_string()), "{error}");
        }
        other => panic!("expected TimedOut after 4 attempts, got {other:?}"),
    }
    let packets = fake.drain();
    assert_eq!(packets.len(), 4, "one connect per attempt");
    assert!(packets.iter().all(|packet| is_connect(packet)));
}

#[tokio::test]
async fn zero_attempts_fail_without_sending_anything() {
    let mut fake = FakeTracker::v4().await;
    let mut client = fake.client(Timeouts { base: Duration::from_millis(10), max_attempts: 0 }).await;
    let announce = sample_announce();
    let result = bounded(client.announce(&announce)).await;
    assert!(matches!(result, Err(TrackerError::TimedOut { attempts: 0, .. })), "{result:?}");
    assert!(fake.drain().is_empty());
}

#[tokio::test]
async fn stray_replies_garbage_and_spoofed_packets_are_ignored() {
    let mut fake = FakeTracker::v4().await;
    let spoofer = FakeTracker::v4().await;
    let mut client = fake.client(PATIENT).await;
    let mut rng = SmallRng::seed_from_u64(15);
    let mut garbage: Vec<Vec<u8>> = (0..40)
        .map(|_| {
            let len = rng.random_range(0..=256);
            (0..len).map(|_| rng.random()).collect()
        })
        .collect();
    garbage.extend([vec![], vec![0], vec![0, 0, 0, 1], vec![0xff; 19]]);

    let announce = sample_announce();
    let (reply, ()) = bounded(async {
        tokio::join!(client.announce(&announce), async {
            let (transaction_id, client_addr) = fake.expect_connect().await;
            let other_id = TransactionId(transaction_id.0.wrapping_add(1));
            for packet in &garbage {
                fake.send(packet, client_addr).await;
            }
            // Well-formed but not for us: another transaction, the wrong kind, another sender.
            fake.send_connect(other_id, ConnectionId(666), client_addr).await;
            fake.send_error(other_id, "not yours", client_addr).await;
            fake.send_announce(transaction_id, &v4_peers(), client_addr).await;
            spoofer.send_connect(transaction_id, ConnectionId(666), client_addr).await;
            // A connect reply whose 8-byte id is cut short.
            let mut short = Vec::new();
            ConnectResponse { transaction_id, connection_id: ConnectionId(666) }.write(&mut short);
            short.truncate(12);
            fake.send(&short, client_addr).await;
            fake.send_connect(transaction_id, ConnectionId(42), client_addr).await;

            let (request, _) = fake.expect_announce().await;
            assert_eq!(request.connection_id, ConnectionId(42), "only the real connect reply counts");
            let transaction_id = request.transaction_id;
            let other_id = TransactionId(transaction_id.0.wrapping_add(1));
            for packet in &garbage {
                fake.send(packet, client_addr).await;
            }
            fake.send_announce(other_id, &v4_peers()[..1], client_addr).await;
            fake.send_connect(transaction_id, ConnectionId(666), client_addr).await;
            spoofer.send_error(transaction_id, "spoofed", client_addr).await;
            spoofer.send_announce(transaction_id, &v4_peers()[..1], client_addr).await;
            // IPv4 peers are 6 bytes: a 7-byte peer section is malformed.
            let mut odd = Vec::new();
            AnnounceResponse { transaction_id, interval: 1, leechers: 0, seeders: 0, peers: v4_peers() }
                .write(&mut odd);
            odd.push(0);
            fake.send(&odd, client_addr).await;
            fake.send_announce(transaction_id, &v4_peers(), client_addr).await;
        })
    })
    .await;
    assert_eq!(reply.expect("the real reply is accepted"), expected_reply(&v4_peers()));
    assert!(fake.drain().is_empty(), "the noise did not cost an attempt");
}

#[tokio::test]
async fn a_tracker_that_sends_only_malformed_replies_gives_a_malformed_error() {
    let mut fake = FakeTracker::v4().await;
    let mut client = fake.client(Timeouts { base: Duration::from_millis(20), max_attempts: 2 }).await;

    let announce = sample_announce();
    let (result, ()) = bounded(async {
        tokio::join!(client.announce(&announce), async {
            for _ in 0..2 {
                let (transaction_id, client_addr) = fake.expect_connect().await;
                let mut short = Vec::new();
                ConnectResponse { transaction_id, connection_id: ConnectionId(1) }.write(&mut short);
                short.truncate(10);
                fake.send(&short, client_addr).await;
            }
        })
    })
    .await;
    match result {
        Err(TrackerError::Malformed { tracker, attempts: 2, source: ResponseParseError::TooShort { .. } }) => {
            assert_eq!(tracker, fake.addr());
        }
        other => panic!("expected Malformed after 2 attempts, got {other:?}"),
    }
}

#[tokio::test]
async fn an_error_reply_to_connect_is_refused_at_once() {
    let mut fake = FakeTracker::v4().await;
    let mut client = fake.client(PATIENT).await;

    let announce = sample_announce();
    let (result, ()) = bounded(async {
        tokio::join!(client.announce(&announce), async {
            let (transaction_id, client_addr) = fake.expect_connect().await;
            fake.send_error(transaction_id, "go away", client_addr).await;
        })
    })
    .await;
    match result {
        Err(error @ TrackerError::Refused(_)) => assert_eq!(error.to_string(), "tracker refused: go away"),
        other => panic!("expected Refused, got {other:?}"),
    }
    assert!(fake.drain().is_empty(), "no retry after an error reply");
}

#[tokio::test]
async fn an_error_reply_to_announce_is_refused_at_once() {
    let mut fake = FakeTracker::v4().await;
    let mut client = fake.client(PATIENT).await;

    let announce = sample_announce();
    let (result, ()) = bounded(async {
        tokio::join!(client.announce(&announce), async {
            fake.serve_connect(ConnectionId(3)).await;
            let (request, client_addr) = fake.expect_announce().await;
            fake.send_error(request.transaction_id, "unknown torrent", client_addr).await;
        })
    })
    .await;
    assert!(matches!(&result, Err(TrackerError::Refused(message)) if message == "unknown torrent"), "{result:?}");
    assert!(fake.drain().is_empty(), "no retry after an error reply");
}

#[tokio::test]
async fn ipv6_trackers_are_reached_on_ipv6_and_return_ipv6_peers() {
    let Ok(mut fake) = FakeTracker::bind(IpAddr::V6(Ipv6Addr::LOCALHOST)).await else {
        eprintln!("skipping: cannot bind a UDP socket on [::1]");
        return;
    };
    let mut client = fake.client(PATIENT).await;
    assert_eq!(client.tracker_addr(), fake.addr());
    assert!(client.endpoint.local_addr().expect("client address").is_ipv6());
    let peers = [
        SocketAddrV6::new(Ipv6Addr::LOCALHOST, 6881, 0, 0),
        SocketAddrV6::new("2001:db8::1".parse().expect("IPv6 literal"), 51413, 0, 0),
    ];

    let announce = sample_announce();
    let (reply, ()) = bounded(async {
        tokio::join!(client.announce(&announce), async {
            fake.serve_connect(ConnectionId(6)).await;
            fake.serve_announce(ConnectionId(6), &peers).await;
        })
    })
    .await;
    assert_eq!(reply.expect("announce over IPv6"), expected_reply(&peers));
}

#[tokio::test]
async fn a_bind_address_picks_the_tracker_address_of_its_family() {
    let fake = FakeTracker::v4().await;
    let url = format!("udp://localhost:{}", fake.addr().port());
    let client = bounded(TrackerClient::new(&url, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), PATIENT))
        .await
        .expect("localhost resolves");
    assert_eq!(client.tracker_addr(), fake.addr());
    let local = client.endpoint.local_addr().expect("client address");
    assert_eq!(local.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_ne!(local.port(), 0);
}

#[tokio::test]
async fn bad_urls_are_refused_with_errors_that_name_them() {
    let cases: [(&str, &str); 10] = [
        ("http://x", "not a udp:// URL"),
        ("wss://tracker.example:443/announce", "not a udp:// URL"),
        ("tracker.example:6969", "expected udp://host:port"),
        ("udp://nohost", "missing port"),
        ("udp://host:/announce", "missing port"),
        ("udp://:6969/announce", "missing host"),
        ("udp://host:notaport", "port is not a number"),
        ("udp://host:70000", "port is not a number"),
        ("udp://::1:6969", "must be in brackets"),
        ("udp://[::1/announce", "unclosed '['"),
    ];
    for (url, reason) in cases {
        let error = bounded(TrackerClient::new(url, None, PATIENT)).await.expect_err(url);
        let message = error.to_string();
        assert!(matches!(error, TrackerError::BadUrl { .. } | TrackerError::NotUdp { .. }), "{url}: {error:?}");
        assert!(message.contains(url), "{url}: the message names the URL: {message}");
        assert!(message.contains(reason), "{url}: expected {reason:?} in {message:?}");
    }
}

#[test]
fn good_urls_give_host_and_port() {
    assert_eq!(parse_udp_url("udp://127.0.0.1:6969/announce").expect("IPv4"), ("127.0.0.1", 6969));
    assert_eq!(parse_udp_url("udp://[::1]:6969/announce").expect("IPv6"), ("::1", 6969));
    assert_eq!(parse_udp_url("UDP://tracker.example:80").expect("no path"), ("tracker.example", 80));
    assert_eq!(parse_udp_url("udp://tracker.example:1337?passkey=x").expect("query"), ("tracker.example", 1337));
    assert!(matches!(parse_udp_url("udp://host:0"), Err(TrackerError::BadUrl { .. })));
}

#[tokio::test]
async fn an_unresolvable_host_is_a_resolve_error() {
    // `.invalid` never resolves (RFC 6761); skip rather than fail if this machine's resolver is slow to say so.
    let lookup = TrackerClient::new("udp://no-such-tracker.invalid:6969/announce", None, PATIENT);
    match tokio::time::timeout(Duration::from_secs(5), lookup).await {
        Ok(Err(error @ TrackerError::Resolve { .. })) => {
            assert!(error.to_string().contains("no-such-tracker.invalid"), "{error}");
        }
        Ok(other) => panic!("expected a resolve error, got {other:?}"),
        Err(_) => eprintln!("skipping: the resolver did not answer within 5 s"),
    }
}

#[test]
fn default_timeouts_follow_bep_15() {
    let timeouts = Timeouts::default();
    assert_eq!(timeouts.base, Duration::from_secs(15));
    assert_eq!(timeouts.max_attempts, 9);
    assert_eq!(timeouts.attempt_timeout(0), Duration::from_secs(15));
    assert_eq!(timeouts.attempt_timeout(8), Duration::from_secs(3840));
    // A silly schedule is capped instead of overflowing the clock.
    let huge = Timeouts { base: Duration::MAX, max_attempts: u32::MAX };
    assert_eq!(huge.attempt_timeout(u32::MAX), Duration::from_secs(24 * 60 * 60));
}

#[test]
fn a_bounded_schedule_never_waits_longer_than_asked() {
    let bounded = Timeouts::bounded(Duration::from_secs(15), Duration::from_secs(120));
    assert_eq!(bounded.max_attempts, 4, "15, 30, 60 and 120 s");
    assert_eq!(bounded.attempt_timeout(bounded.max_attempts - 1), Duration::from_secs(120));
    let tight = Timeouts::bounded(Duration::from_secs(15), Duration::from_secs(5));
    assert_eq!(tight.max_attempts, 1, "one attempt at least");
    let loose = Timeouts::bounded(Duration::from_secs(15), Duration::from_secs(100_000));
    assert_eq!(loose.max_attempts, Timeouts::default().max_attempts, "never more than BEP 15's nine");
}

/// Reads a scrape request: its connection id, transaction id and the hashes it asks about.
async fn expect_scrape(fake: &mut FakeTracker) -> (ConnectionId, TransactionId, Vec<[u8; 20]>, SocketAddr) {
    let (packet, from) = fake.recv().await;
    match Request::parse(&packet, MAX_SCRAPE_HASHES) {
        Ok(Request::Scrape(request)) => {
            (request.connection_id, request.transaction_id, request.info_hashes.iter().collect(), from)
        }
        other => panic!("expected a scrape request, got {other:?}"),
    }
}

fn stats_of(hash: &[u8; 20]) -> TorrentStats {
    TorrentStats { seeders: u32::from(hash[0]), completed: u32::from(hash[1]), leechers: u32::from(hash[2]) }
}

#[tokio::test]
async fn a_scrape_asks_about_every_torrent_in_one_request_on_the_cached_connection() {
    let mut fake = FakeTracker::v4().await;
    let mut client = fake.client(PATIENT).await;
    let hashes: Vec<[u8; 20]> = (1..=MAX_SCRAPE_HASHES as u8)
        .map(|n| {
            let mut hash = [n; 20];
            (hash[1], hash[2]) = (n + 1, n + 2);
            hash
        })
        .collect();
    let connection_id = ConnectionId(0x5eed);

    let (stats, ()) = bounded(async {
        tokio::join!(client.scrape(&hashes), async {
            fake.serve_connect(connection_id).await;
            let (id, transaction_id, asked, from) = expect_scrape(&mut fake).await;
            assert_eq!(id, connection_id, "the scrape carries the id from the connect reply");
            assert_eq!(asked, hashes, "every hash in one request, in order");
            let mut packet = Vec::new();
            ScrapeResponse { transaction_id, torrents: asked.iter().map(stats_of) }.write(&mut packet);
            fake.send(&packet, from).await;
        })
    })
    .await;
    let expected: Vec<TorrentStats> = hashes.iter().map(stats_of).collect();
    assert_eq!(stats.expect("the scrape succeeds"), expected);
    assert!(fake.drain().is_empty(), "one connect and one scrape, nothing more");
}

#[tokio::test]
async fn a_scrape_of_none_or_of_too_many_sends_nothing_and_a_short_reply_is_an_error() {
    let mut fake = FakeTracker::v4().await;
    let mut client = fake.client(PATIENT).await;
    let too_many = vec![[7; 20]; MAX_SCRAPE_HASHES + 1];
    assert!(matches!(client.scrape(&[]).await, Err(TrackerError::ScrapeSize(0))));
    assert!(matches!(client.scrape(&too_many).await, Err(TrackerError::ScrapeSize(n)) if n == MAX_SCRAPE_HASHES + 1));
    assert!(fake.drain().is_empty(), "nothing was sent");

    let hashes = [[1; 20], [2; 20]];
    let (result, ()) = bounded(async {
        tokio::join!(client.scrape(&hashes), async {
            fake.serve_connect(ConnectionId(9)).await;
            let (_, transaction_id, _, from) = expect_scrape(&mut fake).await;
            // One torrent's counts for two asked about: a tracker that lost track, or a forged reply.
            let mut packet = Vec::new();
            ScrapeResponse { transaction_id, torrents: [stats_of(&hashes[0])] }.write(&mut packet);
            fake.send(&packet, from).await;
        })
    })
    .await;
    match result {
        Err(TrackerError::ScrapeMismatch { asked: 2, got: 1, .. }) => {}
        other => panic!("expected a mismatch, got {other:?}"),
    }
}
