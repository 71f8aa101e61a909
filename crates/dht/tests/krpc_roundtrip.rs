//! Property tests: any message we can build encodes to canonical bencode that decodes to the same message, and
//! any bytes that decode re-encode to a fixed point.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use dht::krpc::{
    Body, ErrorMessage, MAX_DATAGRAM_LEN, MAX_TOKEN_LEN, MAX_TRANSACTION_ID_LEN, Message, Method, Query, Response,
    TransactionId, Want,
};
use dht::{NodeId, NodeInfo};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

fn node_id() -> impl Strategy<Value = NodeId> {
    any::<[u8; 20]>().prop_map(NodeId)
}

fn transaction_id() -> impl Strategy<Value = TransactionId> {
    vec(any::<u8>(), 1..=MAX_TRANSACTION_ID_LEN).prop_map(|bytes| TransactionId::new(&bytes).expect("1 to 16 bytes"))
}

fn token() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 1..=MAX_TOKEN_LEN)
}

fn v4() -> impl Strategy<Value = SocketAddrV4> {
    (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddrV4::new(Ipv4Addr::from(ip), port))
}

fn v6() -> impl Strategy<Value = SocketAddrV6> {
    (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, 0))
}

fn peer() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![v4().prop_map(SocketAddr::V4), v6().prop_map(SocketAddr::V6)]
}

fn method() -> impl Strategy<Value = Method> {
    let known: [&[u8]; 4] = [b"ping", b"find_node", b"get_peers", b"announce_peer"];
    prop_oneof![
        Just(Method::Ping),
        (node_id(), any::<bool>()).prop_map(|(target, bootstrap)| Method::FindNode { target, bootstrap }),
        (any::<[u8; 20]>(), any::<bool>()).prop_map(|(info_hash, bootstrap)| Method::GetPeers { info_hash, bootstrap }),
        (any::<[u8; 20]>(), any::<u16>(), any::<bool>(), token(), option::of(any::<bool>())).prop_map(
            |(info_hash, port, implied_port, token, seed)| Method::AnnouncePeer {
                info_hash,
                port,
                implied_port,
                token,
                seed
            }
        ),
        vec(any::<u8>(), 0..24)
            .prop_filter("a known method name", move |name| !known.contains(&name.as_slice()))
            .prop_map(|method| Method::Unknown { method }),
    ]
}

fn query() -> impl Strategy<Value = Query> {
    (node_id(), any::<(bool, bool)>(), method()).prop_map(|(id, (v4, v6), method)| Query {
        id,
        want: Want { v4, v6 },
        method,
    })
}

fn response() -> impl Strategy<Value = Response> {
    let nodes = vec((node_id(), v4()).prop_map(|(id, addr)| NodeInfo { id, addr }), 0..=8);
    let nodes6 = vec((node_id(), v6()).prop_map(|(id, addr)| NodeInfo { id, addr }), 0..=8);
    (
        node_id(),
        option::of(nodes),
        option::of(nodes6),
        option::of(vec(peer(), 0..=20)),
        option::of(token()),
        option::of(any::<u16>()),
    )
        .prop_map(|(id, nodes, nodes6, values, token, requester_port)| Response {
            id,
            nodes,
            nodes6,
            values,
            token,
            requester_port,
        })
}

fn error() -> impl Strategy<Value = ErrorMessage> {
    (any::<i64>(), vec(any::<u8>(), 0..64), option::of(node_id()), option::of(any::<u16>()))
        .prop_map(|(code, message, id, requester_port)| ErrorMessage { code, message, id, requester_port })
}

fn message() -> impl Strategy<Value = Message> {
    let body =
        prop_oneof![query().prop_map(Body::Query), response().prop_map(Body::Response), error().prop_map(Body::Error),];
    (transaction_id(), option::of(any::<[u8; 4]>()), option::of(peer()), any::<bool>(), body).prop_map(
        |(transaction_id, version, external_addr, read_only, body)| Message {
            transaction_id,
            version,
            external_addr,
            read_only,
            body,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn encoding_round_trips(message in message()) {
        let bytes = message.to_bytes();
        prop_assert!(bytes.len() <= MAX_DATAGRAM_LEN, "{} bytes", bytes.len());
        prop_assert_eq!(Message::decode(&bytes), Ok((message.clone(), 0)));
        // Canonical: keys sorted, so bencode's own decoder and encoder agree byte for byte.
        let value = bencode::decode_exact(&bytes).expect("our output is bencode");
        prop_assert_eq!(value.to_bytes(), bytes);
    }

    #[test]
    fn whatever_decodes_reencodes_to_a_fixed_point(bytes in vec(any::<u8>(), 0..400)) {
        if let Ok((message, _)) = Message::decode(&bytes) {
            let again = message.to_bytes();
            prop_assert!(again.len() <= bytes.len());
            prop_assert_eq!(Message::decode(&again), Ok((message, 0)));
        }
    }

    /// Mutating a valid message's bytes: the decoder must survive, and what still decodes must round-trip.
    #[test]
    fn mutated_messages_never_panic(message in message(), pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = message.to_bytes();
        let at = pos.index(bytes.len());
        bytes[at] = byte;
        if let Ok((decoded, _)) = Message::decode(&bytes) {
            let again = decoded.to_bytes();
            prop_assert!(again.len() <= bytes.len());
            prop_assert_eq!(Message::decode(&again), Ok((decoded, 0)));
        }
    }
}
