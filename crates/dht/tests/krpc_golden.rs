//! Golden vectors: BEP 5's example messages, and datagrams libtorrent 2.0.8 sent on loopback
//! (golden/libtorrent-2.0.8.txt, captured by support/capture_libtorrent_dht.py). Each decodes to the message
//! written out here and re-encodes to the same bytes.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use dht::krpc::{
    Body, ErrorMessage, GENERIC_ERROR, KrpcError, Message, Method, PROTOCOL_ERROR, Query, Response, TransactionId, Want,
};
use dht::{NodeId, NodeInfo};

const LIBTORRENT: &str = include_str!("golden/libtorrent-2.0.8.txt");

/// The vector called `name` in the libtorrent file.
fn vector(name: &str) -> Vec<u8> {
    let line = LIBTORRENT
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no vector {name}"));
    hex::decode(line.trim()).expect("vector is hex")
}

fn id(text: &[u8]) -> NodeId {
    NodeId::from_slice(text).expect("20 bytes")
}

fn hex_id(hex: &str) -> NodeId {
    id(&hex::decode(hex).expect("hex"))
}

fn t(bytes: &[u8]) -> TransactionId {
    TransactionId::new(bytes).expect("1 to 16 bytes")
}

/// Decodes, compares with `expected`, and checks that encoding gives `bytes` back.
fn check(bytes: &[u8], expected: &Message) {
    assert_eq!(Message::decode(bytes), Ok((expected.clone(), 0)), "decoding {}", String::from_utf8_lossy(bytes));
    assert_eq!(expected.to_bytes(), bytes, "encoding {expected:?}");
}

// BEP 5's examples, byte for byte as the BEP gives them.

const BEP5_ID: &[u8] = b"abcdefghij0123456789";
const BEP5_OTHER: &[u8] = b"mnopqrstuvwxyz123456";

#[test]
fn bep5_ping() {
    let query = Message::query(t(b"aa"), id(BEP5_ID), Method::Ping);
    check(b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe", &query);
    let reply = Message::response(t(b"aa"), Response::new(id(BEP5_OTHER)));
    check(b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re", &reply);
}

#[test]
fn bep5_error() {
    let error = Message::error(t(b"aa"), GENERIC_ERROR, "A Generic Error Ocurred");
    check(b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee", &error);
}

#[test]
fn bep5_find_node() {
    let query = Message::query(t(b"aa"), id(BEP5_ID), Method::FindNode { target: id(BEP5_OTHER), bootstrap: false });
    check(b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe", &query);
}

/// BEP 5's find_node reply shows `nodes` as the 9-byte placeholder "def456...", not a whole 26-byte entry: as
/// written it is malformed, and with one real entry in its place it decodes.
#[test]
fn bep5_find_node_reply_placeholder_is_refused_and_a_real_entry_decodes() {
    let placeholder = b"d1:rd2:id20:0123456789abcdefghij5:nodes9:def456...e1:t2:aa1:y1:re";
    assert_eq!(Message::decode(placeholder), Err(KrpcError::NodesLength { key: "r.nodes", len: 9, entry_len: 26 }));
    let bytes =
        b"d1:rd2:id20:0123456789abcdefghij5:nodes26:mnopqrstuvwxyz123456\x0a\x00\x00\x01\x1a\xe1e1:t2:aa1:y1:re";
    let node = NodeInfo { id: id(BEP5_OTHER), addr: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 6881) };
    let reply = Response { nodes: Some(vec![node]), ..Response::new(id(b"0123456789abcdefghij")) };
    check(bytes, &Message::response(t(b"aa"), reply));
}

#[test]
fn bep5_get_peers() {
    let info_hash = id(BEP5_OTHER).0;
    let query = Message::query(t(b"aa"), id(BEP5_ID), Method::GetPeers { info_hash, bootstrap: false });
    check(b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe", &query);

    // The values are the 6-byte strings "axje.u" and "idhtnm", read as compact peers.
    let values = vec![
        SocketAddr::from((Ipv4Addr::new(b'a', b'x', b'j', b'e'), u16::from_be_bytes([b'.', b'u']))),
        SocketAddr::from((Ipv4Addr::new(b'i', b'd', b'h', b't'), u16::from_be_bytes([b'n', b'm']))),
    ];
    let reply = Response { values: Some(values), token: Some(b"aoeusnth".to_vec()), ..Response::new(id(BEP5_ID)) };
    check(
        b"d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re",
        &Message::response(t(b"aa"), reply),
    );

    // The reply with nodes has the same placeholder as find_node's.
    assert_eq!(
        Message::decode(b"d1:rd2:id20:abcdefghij01234567895:nodes9:def456...5:token8:aoeusnthe1:t2:aa1:y1:re"),
        Err(KrpcError::NodesLength { key: "r.nodes", len: 9, entry_len: 26 })
    );
}

#[test]
fn bep5_announce_peer() {
    let method = Method::AnnouncePeer {
        info_hash: id(BEP5_OTHER).0,
        port: 6881,
        implied_port: true,
        token: b"aoeusnth".to_vec(),
        seed: None,
    };
    check(
        b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e\
5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
        &Message::query(t(b"aa"), id(BEP5_ID), method),
    );
    let reply = Message::response(t(b"aa"), Response::new(id(BEP5_OTHER)));
    check(b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re", &reply);
}

// libtorrent 2.0.8.

const LT_V4_ID: &str = "af447d80081cce4b7091e34d426210f140f41e38";
const LT_V6_ID: &str = "bac43d2a02da45aca5b15681ff0f9b241f4ee476";
const INFO_HASH: &str = "0123456789abcdef0123456789abcdef01234567";
/// Our node A (127.0.0.1:51945) and A6 ([::1]:42598), as libtorrent saw them.
const A: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 51945));
const A6: SocketAddr = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 42598, 0, 0));
/// Node C (and C6): what libtorrent had in its routing table.
const C_ID: &[u8] = b"capture-node-id-0003";

fn libtorrent(transaction_id: &[u8], external_addr: Option<SocketAddr>, body: Body) -> Message {
    Message { transaction_id: t(transaction_id), version: Some(*b"LT\x02\x08"), external_addr, read_only: false, body }
}

fn lt_query(transaction_id: [u8; 2], id: &str, want: Want, method: Method) -> Message {
    libtorrent(&transaction_id, None, Body::Query(Query { id: hex_id(id), want, method }))
}

/// A reply to A (or A6): libtorrent always says where it saw us (`ip`) and our port (`r.p`).
fn lt_reply(transaction_id: &[u8], to: SocketAddr, response: Response) -> Message {
    let response = Response { requester_port: Some(to.port()), ..response };
    libtorrent(transaction_id, Some(to), Body::Response(response))
}

fn node_c() -> NodeInfo<SocketAddrV4> {
    NodeInfo { id: id(C_ID), addr: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 60315) }
}

fn node_c6() -> NodeInfo<SocketAddrV6> {
    NodeInfo { id: id(C_ID), addr: SocketAddrV6::new(Ipv6Addr::LOCALHOST, 59139, 0, 0) }
}

fn info_hash() -> [u8; 20] {
    hex_id(INFO_HASH).0
}

#[test]
fn libtorrent_bootstrap_get_peers() {
    let method = Method::GetPeers { info_hash: hex_id("af447d80081cce4b7091e34da7ec5f0e8bd464ee").0, bootstrap: true };
    check(&vector("lt_query_get_peers_bootstrap"), &lt_query([0xe2, 0x14], LT_V4_ID, Want::default(), method));

    let method = Method::GetPeers { info_hash: hex_id("bac43d2a02da45aca5b15681d75a0958f10a6e5a").0, bootstrap: true };
    let want = Want { v4: false, v6: true };
    check(&vector("lt_query_get_peers_bootstrap_want"), &lt_query([0x1e, 0xd2], LT_V6_ID, want, method));
}

#[test]
fn libtorrent_get_peers() {
    let method = Method::GetPeers { info_hash: info_hash(), bootstrap: false };
    check(&vector("lt_query_get_peers"), &lt_query([0x0b, 0xa2], LT_V4_ID, Want::default(), method.clone()));
    let want = Want { v4: true, v6: false };
    check(&vector("lt_query_get_peers_want"), &lt_query([0xde, 0xc5], LT_V4_ID, want, method));
}

#[test]
fn libtorrent_announce_peer() {
    let method = Method::AnnouncePeer {
        info_hash: info_hash(),
        port: 57633,
        implied_port: true,
        token: b"tokn".to_vec(),
        seed: Some(false),
    };
    check(&vector("lt_query_announce_peer"), &lt_query([0x20, 0xfa], LT_V4_ID, Want::default(), method.clone()));
    let want = Want { v4: true, v6: false };
    check(&vector("lt_query_announce_peer_want"), &lt_query([0x00, 0x7c], LT_V4_ID, want, method));
}

#[test]
fn libtorrent_replies_over_ipv4() {
    let lt = hex_id(LT_V4_ID);
    check(&vector("lt_reply_ping"), &lt_reply(b"pi", A, Response::new(lt)));
    check(&vector("lt_reply_announce_peer"), &lt_reply(b"ap", A, Response::new(lt)));

    let find_node = Response { nodes: Some(vec![node_c()]), ..Response::new(lt) };
    check(&vector("lt_reply_find_node"), &lt_reply(&[0, 0, 0, 1], A, find_node));

    let token = Some(vec![0x7e, 0x6a, 0x8d, 0x1f]);
    let get_peers = Response { nodes: Some(vec![node_c()]), token: token.clone(), ..Response::new(lt) };
    check(&vector("lt_reply_get_peers_nodes"), &lt_reply(b"gp", A, get_peers.clone()));
    // After our announce with implied_port, the peer is our source address, not the port we gave (6881).
    let with_values = Response { values: Some(vec![A]), ..get_peers };
    check(&vector("lt_reply_get_peers_values"), &lt_reply(b"g2", A, with_values));
}

#[test]
fn libtorrent_errors_carry_its_id() {
    let error = |message: &str| ErrorMessage {
        code: PROTOCOL_ERROR,
        message: message.as_bytes().to_vec(),
        id: Some(hex_id(LT_V4_ID)),
        requester_port: Some(A.port()),
    };
    let unknown = libtorrent(b"un", Some(A), Body::Error(error("unknown message")));
    check(&vector("lt_error_unknown_method"), &unknown);
    let missing = libtorrent(b"bd", Some(A), Body::Error(error("missing 'target' key")));
    check(&vector("lt_error_missing_target"), &missing);
    assert_eq!(missing.sender_id(), Some(hex_id(LT_V4_ID)));
}

#[test]
fn libtorrent_replies_over_ipv6() {
    let lt = hex_id(LT_V6_ID);
    let find_node = Response { nodes: Some(vec![node_c()]), nodes6: Some(vec![node_c6()]), ..Response::new(lt) };
    check(&vector("lt_reply_find_node_v6"), &lt_reply(b"f6", A6, find_node));

    let token = Some(vec![0xd5, 0x15, 0xeb, 0x84]);
    let get_peers = Response { nodes6: Some(vec![node_c6()]), token, values: Some(vec![]), ..Response::new(lt) };
    check(&vector("lt_reply_get_peers_v6"), &lt_reply(b"p6", A6, get_peers.clone()));
    check(&vector("lt_reply_announce_peer_v6"), &lt_reply(b"a6", A6, Response::new(lt)));
    let peer = SocketAddr::from((Ipv6Addr::LOCALHOST, 6881));
    let with_values = Response { values: Some(vec![peer]), ..get_peers };
    check(&vector("lt_reply_get_peers_v6_values"), &lt_reply(b"q6", A6, with_values));
}

#[test]
fn every_libtorrent_vector_is_covered_and_reencodes() {
    let mut count = 0;
    for line in LIBTORRENT.lines().filter(|line| !line.starts_with('#') && !line.trim().is_empty()) {
        let (name, hex) = line.split_once(' ').expect("NAME HEX");
        let bytes = hex::decode(hex).expect("hex");
        let (message, skipped) = Message::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(skipped, 0);
        assert_eq!(message.to_bytes(), bytes, "{name}");
        count += 1;
    }
    assert_eq!(count, 17);
}
