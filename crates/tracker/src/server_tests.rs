//! In-process tests of the packet handler: BEP 15 bytes in, bytes out, no socket.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use tracker_protocol::{
    AnnounceEvent, AnnounceOptions, AnnounceRequest, ConnectRequest, ConnectionId, InfoHashes, Response, ScrapeRequest,
    TransactionId,
};

use super::{Config, NamedTorrent, Tracker};

const HASH: [u8; 20] = [5; 20];

fn client(n: u8) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(127, 0, 0, n), 40_000))
}

fn connect(tracker: &mut Tracker, from: SocketAddr) -> ConnectionId {
    let mut packet = Vec::new();
    ConnectRequest { transaction_id: TransactionId(1) }.write(&mut packet);
    let reply = tracker.handle(&packet, from, 10).expect("connect answered").to_vec();
    match Response::<SocketAddrV4>::parse(&reply).expect("valid reply") {
        Response::Connect(response) => response.connection_id,
        other => panic!("expected a connect response, got {other:?}"),
    }
}

fn announce_packet(connection_id: ConnectionId, port: u16, left: u64, num_want: i32) -> Vec<u8> {
    announce_packet_for(HASH, connection_id, port, left, num_want)
}

fn announce_packet_for(
    info_hash: [u8; 20],
    connection_id: ConnectionId,
    port: u16,
    left: u64,
    num_want: i32,
) -> Vec<u8> {
    let mut packet = Vec::new();
    AnnounceRequest {
        connection_id,
        transaction_id: TransactionId(7),
        info_hash,
        peer_id: [port as u8; 20],
        downloaded: 0,
        left,
        uploaded: 0,
        event: AnnounceEvent::Started,
        ip_address: None,
        key: 0,
        num_want,
        port,
        options: AnnounceOptions::EMPTY,
    }
    .write(&mut packet);
    packet
}

fn open_tracker() -> Tracker {
    Tracker::new(Config::default(), Vec::new(), true)
}

#[test]
fn connect_then_announce_returns_the_other_peers() {
    let mut tracker = open_tracker();
    let seeder = client(1);
    let id = connect(&mut tracker, seeder);
    tracker.handle(&announce_packet(id, 6001, 0, -1), seeder, 10).expect("answered");

    let leecher = client(2);
    let id = connect(&mut tracker, leecher);
    let reply = tracker.handle(&announce_packet(id, 6002, 100, -1), leecher, 11).expect("answered").to_vec();
    match Response::<SocketAddrV4>::parse(&reply).expect("valid") {
        Response::Announce(response) => {
            assert_eq!(response.transaction_id, TransactionId(7));
            assert_eq!(response.interval, 120);
            assert_eq!((response.seeders, response.leechers), (1, 1));
            assert_eq!(response.peers, [SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 6001)]);
        }
        other => panic!("expected an announce response, got {other:?}"),
    }
}

#[test]
fn forged_expired_or_foreign_connection_ids_get_nothing() {
    let mut tracker = open_tracker();
    let id = connect(&mut tracker, client(1));
    assert!(tracker.handle(&announce_packet(ConnectionId(0x1234), 6001, 0, -1), client(1), 10).is_none());
    assert!(tracker.handle(&announce_packet(id, 6001, 0, -1), client(2), 10).is_none(), "another address");
    assert!(tracker.handle(&announce_packet(id, 6001, 0, -1), client(1), 10 + 121).is_none(), "expired");
    assert!(tracker.handle(&announce_packet(id, 6001, 0, -1), client(1), 10 + 120).is_some(), "still valid");
    assert_eq!(tracker.stats().dropped, 3);
    assert_eq!(tracker.shards().peer_count(), 1);
}

#[test]
fn garbage_gets_no_reply_and_replies_never_outgrow_unproven_requests() {
    let mut tracker = open_tracker();
    for len in 0..=200usize {
        for fill in [0u8, 0xff, 0x41] {
            let packet = vec![fill; len];
            if let Some(reply) = tracker.handle(&packet, client(3), 10) {
                // Only a connect can be answered without a valid ID, and its reply is no larger.
                assert!(reply.len() <= packet.len(), "{len} bytes of {fill:#x} drew a {}-byte reply", reply.len());
            }
        }
    }
    assert_eq!(tracker.stats().errors_sent, 0);
}

#[test]
fn a_closed_tracker_refuses_other_torrents_with_a_bep15_error() {
    let named = NamedTorrent { info_hash: [9; 20], v2_info_hash: None, name: "other".into(), total_length: 10 };
    let mut tracker = Tracker::new(Config::default(), vec![named], false);
    let id = connect(&mut tracker, client(1));
    let reply = tracker.handle(&announce_packet(id, 6001, 0, -1), client(1), 10).expect("answered").to_vec();
    match Response::<SocketAddrV4>::parse(&reply).expect("valid") {
        Response::Error(error) => {
            assert_eq!(error.transaction_id, TransactionId(7));
            assert_eq!(error.message, "unknown torrent");
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn numwant_is_capped_to_fit_one_packet() {
    let mut tracker = open_tracker();
    for n in 0..250u16 {
        let from = SocketAddr::from((Ipv4Addr::new(127, 0, (n / 200) as u8, (n % 200) as u8 + 1), 1));
        let id = connect(&mut tracker, from);
        tracker.handle(&announce_packet(id, 7000 + n, 0, 0), from, 10).expect("answered");
    }
    let id = connect(&mut tracker, client(250));
    let reply = tracker.handle(&announce_packet(id, 9000, 1, 5_000), client(250), 10).expect("answered");
    assert_eq!(reply.len(), 20 + 200 * 6, "200 IPv4 peers at most");
}

#[test]
fn ipv4_mapped_clients_on_a_dual_stack_socket_are_ipv4_peers() {
    let mut tracker = open_tracker();
    let mapped = SocketAddr::V6(SocketAddrV6::new(Ipv4Addr::new(127, 0, 0, 8).to_ipv6_mapped(), 5000, 0, 0));
    let id = connect(&mut tracker, mapped);
    tracker.handle(&announce_packet(id, 6008, 0, -1), mapped, 10).expect("answered");
    let v6 = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 5001, 0, 0));
    let id6 = connect(&mut tracker, v6);
    let reply = tracker.handle(&announce_packet(id6, 6009, 5, -1), v6, 10).expect("answered").to_vec();
    match Response::<SocketAddrV6>::parse(&reply).expect("valid") {
        Response::Announce(response) => assert!(response.peers.is_empty(), "the IPv4 seeder is not given to IPv6"),
        other => panic!("{other:?}"),
    }
    let id4 = connect(&mut tracker, client(9));
    let reply = tracker.handle(&announce_packet(id4, 6010, 5, -1), client(9), 10).expect("answered").to_vec();
    match Response::<SocketAddrV4>::parse(&reply).expect("valid") {
        Response::Announce(response) => {
            assert_eq!(response.peers, [SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 8), 6008)]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn scrape_reports_counts_per_hash_in_order() {
    let mut tracker = open_tracker();
    let id = connect(&mut tracker, client(1));
    tracker.handle(&announce_packet(id, 6001, 0, -1), client(1), 10).expect("answered");
    let mut packet = Vec::new();
    let hashes = [HASH, [1; 20]];
    ScrapeRequest { connection_id: id, transaction_id: TransactionId(3), info_hashes: InfoHashes::new(&hashes) }
        .write(&mut packet);
    let reply = tracker.handle(&packet, client(1), 10).expect("answered").to_vec();
    match Response::<SocketAddrV4>::parse(&reply).expect("valid") {
        Response::Scrape(response) => {
            let triples: Vec<_> = response.torrents.iter().map(|t| (t.seeders, t.completed, t.leechers)).collect();
            assert_eq!(triples, [(1, 0, 0), (0, 0, 0)]);
        }
        other => panic!("{other:?}"),
    }
}

/// Whether `tracker` answers an announce for HASH from `from` with peers (true) or an error (false).
fn accepted(tracker: &mut Tracker, from: SocketAddr, port: u16) -> bool {
    let id = connect(tracker, from);
    let reply = tracker.handle(&announce_packet(id, port, 0, -1), from, 10).expect("answered").to_vec();
    matches!(Response::<SocketAddrV4>::parse(&reply).expect("valid"), Response::Announce(_))
}

#[test]
fn a_reload_serves_new_torrents_keeps_known_swarms_and_drops_removed_ones() {
    let other = NamedTorrent { info_hash: [9; 20], v2_info_hash: None, name: "other".into(), total_length: 10 };
    let ours = NamedTorrent { info_hash: HASH, v2_info_hash: None, name: "ours".into(), total_length: 10 };
    let mut workers = Tracker::workers(Config::default(), vec![other.clone()], false, 2);
    let mut second = workers.pop().expect("two workers");
    let mut first = workers.pop().expect("two workers");
    assert!(!accepted(&mut first, client(1), 6001));
    assert_eq!(first.set_named(vec![other.clone(), ours.clone()]), (1, 0));
    // The other worker sees the reload at its next request.
    assert!(accepted(&mut second, client(1), 6001));
    assert!(accepted(&mut first, client(2), 6002));
    assert_eq!(first.shards().scrape(&HASH).map(|counts| counts.seeders), Some(2));
    // Reloading the same list again keeps the swarm and its peers.
    assert_eq!(first.set_named(vec![ours.clone(), other.clone()]), (0, 0));
    assert_eq!(first.shards().scrape(&HASH).map(|counts| counts.seeders), Some(2));
    assert_eq!(first.set_named(vec![other]), (0, 1));
    assert!(!accepted(&mut second, client(3), 6003));
    assert_eq!(first.shards().scrape(&HASH), None);
}

/// Whether `tracker` answers an announce for `info_hash` with peers (true) or an error (false).
fn accepted_for(tracker: &mut Tracker, info_hash: [u8; 20], from: SocketAddr, port: u16, left: u64) -> bool {
    let id = connect(tracker, from);
    let reply =
        tracker.handle(&announce_packet_for(info_hash, id, port, left, -1), from, 10).expect("answered").to_vec();
    matches!(Response::<SocketAddrV4>::parse(&reply).expect("valid"), Response::Announce(_))
}

#[test]
fn a_hybrid_torrent_serves_both_hashes_and_counts_a_peer_in_both_swarms_once() {
    const V2: [u8; 20] = [6; 20];
    let hybrid = NamedTorrent { info_hash: HASH, v2_info_hash: Some(V2), name: "hybrid".into(), total_length: 10 };
    let mut tracker = Tracker::new(Config::default(), vec![hybrid.clone()], false);
    // A v2-capable seeder announces both hashes from one endpoint; a v1-only leecher the SHA-1 alone; a v2 leecher
    // the truncated SHA-256 alone.
    assert!(accepted_for(&mut tracker, HASH, client(1), 6001, 0));
    assert!(accepted_for(&mut tracker, V2, client(1), 6001, 0));
    assert!(accepted_for(&mut tracker, HASH, client(2), 6002, 10));
    assert!(accepted_for(&mut tracker, V2, client(3), 6003, 10));
    assert!(!accepted_for(&mut tracker, [7; 20], client(4), 6004, 10), "an unnamed hash is refused");
    // Each swarm on its own: a v1-only client must never be handed a v2-only peer.
    assert_eq!(tracker.shards().scrape(&HASH).map(|counts| (counts.seeders, counts.leechers)), Some((1, 1)));
    assert_eq!(tracker.shards().scrape(&V2).map(|counts| (counts.seeders, counts.leechers)), Some((1, 1)));
    // Shown as one torrent: three peers, the seeder once.
    let counts = tracker.named_counts(&hybrid);
    assert_eq!((counts.seeders, counts.leechers), (1, 2));
    let page: serde_json::Value = serde_json::from_str(&tracker.dashboard_json()).expect("JSON");
    let rows = page["torrents"].as_array().expect("torrents");
    assert_eq!(rows.len(), 1, "{page}");
    assert_eq!(rows[0]["v2_info_hash"], super::hex(&V2));
    assert_eq!((rows[0]["seeders"].as_u64(), rows[0]["leechers"].as_u64()), (Some(1), Some(2)));
    // A reload counts torrents, not hashes; dropping the hybrid drops both swarms.
    assert_eq!(tracker.set_named(vec![hybrid]), (0, 0));
    assert_eq!(tracker.set_named(Vec::new()), (0, 1));
    assert_eq!(tracker.shards().scrape(&V2), None);
    assert_eq!(tracker.shards().scrape(&HASH), None);
}
