//! Hostile and malformed datagrams: each is refused with a named error (or, for advisory keys, read as absent),
//! never a panic; and the caps hold.

use bencode::{BencodeError, Value};
use dht::krpc::{
    Body, KrpcError, MAX_DATAGRAM_LEN, MAX_TRANSACTION_ID_LEN, MAX_VALUES, Message, Method, TransactionId, Want,
    query_transaction_id,
};

const ID: &[u8] = b"abcdefghij0123456789";
const LIBTORRENT: &str = include_str!("golden/libtorrent-2.0.8.txt");

fn encode(value: &Value<'_>) -> Vec<u8> {
    value.to_bytes()
}

fn dict<'a>(entries: Vec<(&'a str, Value<'a>)>) -> Value<'a> {
    Value::Dict(entries.into_iter().map(|(key, value)| (key.as_bytes(), value)).collect())
}

/// A query datagram: `t` "aa", method `q`, arguments `args`, plus `extra` top-level keys.
fn query<'a>(q: &'a str, args: Vec<(&'a str, Value<'a>)>, extra: Vec<(&'a str, Value<'a>)>) -> Vec<u8> {
    let mut top = vec![("t", Value::Bytes(b"aa")), ("y", Value::Bytes(b"q")), ("q", Value::Bytes(q.as_bytes()))];
    top.push(("a", dict(args)));
    top.extend(extra);
    encode(&dict(top))
}

/// A response datagram with `t` "aa" and the given `r`.
fn response(r: Vec<(&str, Value<'_>)>) -> Vec<u8> {
    encode(&dict(vec![("t", Value::Bytes(b"aa")), ("y", Value::Bytes(b"r")), ("r", dict(r))]))
}

fn decode(bytes: &[u8]) -> Result<Message, KrpcError> {
    Message::decode(bytes).map(|(message, _)| message)
}

fn method(bytes: &[u8]) -> Method {
    match decode(bytes).map(|message| message.body) {
        Ok(Body::Query(query)) => query.method,
        other => panic!("not a query: {other:?}"),
    }
}

fn golden_vectors() -> Vec<Vec<u8>> {
    LIBTORRENT
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| line.split_once(' '))
        .map(|(_, hex)| hex::decode(hex).expect("hex"))
        .collect()
}

#[test]
fn every_truncation_of_a_real_datagram_is_an_error() {
    for vector in golden_vectors() {
        for len in 0..vector.len() {
            assert!(Message::decode(&vector[..len]).is_err(), "{len} bytes of {}", String::from_utf8_lossy(&vector));
        }
    }
}

#[test]
fn corrupted_real_datagrams_never_panic() {
    for vector in golden_vectors() {
        for pos in 0..vector.len() {
            for byte in [0, b'0', b'9', b':', b'd', b'e', b'i', b'l', 0xff] {
                let mut bytes = vector.clone();
                bytes[pos] = byte;
                // Decoding may succeed or fail; what decodes must re-encode to something that decodes the same.
                if let Ok((message, _)) = Message::decode(&bytes) {
                    let again = message.to_bytes();
                    assert!(again.len() <= bytes.len());
                    assert_eq!(decode(&again), Ok(message));
                }
            }
        }
    }
}

#[test]
fn short_inputs_never_panic() {
    let alphabet = [b'd', b'e', b'l', b'i', b'0', b'1', b'2', b':', b't', b'y', b'q', b'-'];
    let mut input = Vec::new();
    for a in alphabet {
        for b in alphabet {
            for c in alphabet {
                for d in alphabet {
                    input.clear();
                    input.extend_from_slice(&[a, b, c, d]);
                    assert!(Message::decode(&input).is_err());
                }
            }
        }
    }
}

#[test]
fn nesting_bombs_are_refused() {
    let mut bomb = b"d1:a".to_vec();
    bomb.extend(std::iter::repeat_n(b'l', 700));
    bomb.extend(std::iter::repeat_n(b'e', 701));
    assert!(bomb.len() <= MAX_DATAGRAM_LEN);
    assert!(matches!(Message::decode(&bomb), Err(KrpcError::Bencode(BencodeError::TooDeep(_)))));
    let huge = vec![b'l'; 100_000];
    assert_eq!(Message::decode(&huge), Err(KrpcError::DatagramTooLong { len: 100_000, max: MAX_DATAGRAM_LEN }));
}

#[test]
fn oversized_datagrams_are_refused_before_parsing() {
    let peer = Value::Bytes(b"\x7f\x00\x00\x01\x1a\xe1");
    let bytes = response(vec![("id", Value::Bytes(ID)), ("values", Value::List(vec![peer; 10_000]))]);
    assert_eq!(Message::decode(&bytes), Err(KrpcError::DatagramTooLong { len: bytes.len(), max: MAX_DATAGRAM_LEN }));
    assert_eq!(query_transaction_id(&bytes), None);
}

#[test]
fn values_past_the_cap_are_counted_not_kept() {
    let peer = Value::Bytes(b"\x7f\x00\x00\x01\x1a\xe1");
    let bytes = response(vec![("id", Value::Bytes(ID)), ("values", Value::List(vec![peer; 150]))]);
    assert!(bytes.len() <= MAX_DATAGRAM_LEN);
    let (message, skipped) = Message::decode(&bytes).expect("decodes");
    assert_eq!(skipped, 50);
    let Body::Response(response) = message.body else { panic!("not a response") };
    assert_eq!(response.values.map(|values| values.len()), Some(MAX_VALUES));
}

#[test]
fn node_lists_must_be_whole_entries() {
    for len in [1, 25, 27, 51, 53] {
        let nodes = vec![7; len];
        let bytes = response(vec![("id", Value::Bytes(ID)), ("nodes", Value::Bytes(&nodes))]);
        assert_eq!(decode(&bytes), Err(KrpcError::NodesLength { key: "r.nodes", len, entry_len: 26 }));
    }
    let nodes6 = vec![7; 26];
    let bytes = response(vec![("id", Value::Bytes(ID)), ("nodes6", Value::Bytes(&nodes6))]);
    assert_eq!(decode(&bytes), Err(KrpcError::NodesLength { key: "r.nodes6", len: 26, entry_len: 38 }));
    // Empty lists are whole (libtorrent sends `nodes` empty when it knows no one).
    let bytes = response(vec![("id", Value::Bytes(ID)), ("nodes", Value::Bytes(b"")), ("nodes6", Value::Bytes(b""))]);
    assert!(decode(&bytes).is_ok());
}

#[test]
fn values_must_be_compact_peers() {
    let bytes =
        response(vec![("id", Value::Bytes(ID)), ("values", Value::List(vec![Value::Bytes(b"\x01\x02\x03\x04\x05")]))]);
    assert_eq!(decode(&bytes), Err(KrpcError::ValueLength(5)));
    let bytes = response(vec![("id", Value::Bytes(ID)), ("values", Value::List(vec![Value::Int(1)]))]);
    assert_eq!(decode(&bytes), Err(KrpcError::WrongType { key: "r.values", expected: "strings" }));
    let bytes = response(vec![("id", Value::Bytes(ID)), ("values", Value::Bytes(b"\x01\x02\x03\x04\x05\x06"))]);
    assert_eq!(decode(&bytes), Err(KrpcError::WrongType { key: "r.values", expected: "a list" }));
}

#[test]
fn transaction_ids_of_1_to_16_bytes_are_accepted_and_others_refused() {
    let with_t = |t: &[u8]| {
        let args = dict(vec![("id", Value::Bytes(ID))]);
        encode(&dict(vec![
            ("t", Value::Bytes(t)),
            ("y", Value::Bytes(b"q")),
            ("q", Value::Bytes(b"ping")),
            ("a", args),
        ]))
    };
    for len in 1..=MAX_TRANSACTION_ID_LEN {
        let t = vec![0xab; len];
        let message = decode(&with_t(&t)).expect("accepted");
        assert_eq!(message.transaction_id.as_bytes(), t);
    }
    assert_eq!(decode(&with_t(b"")), Err(KrpcError::TransactionIdLength(0)));
    assert_eq!(decode(&with_t(&[1; 17])), Err(KrpcError::TransactionIdLength(17)));
    assert_eq!(TransactionId::new(&[1; 17]), None);
    assert_eq!(TransactionId::from(0x0102).as_bytes(), [1, 2]);
}

#[test]
fn ids_must_be_20_bytes() {
    let short = &ID[..19];
    assert_eq!(
        decode(&query("ping", vec![("id", Value::Bytes(short))], vec![])),
        Err(KrpcError::IdLength { key: "a.id", len: 19 })
    );
    let args = vec![("id", Value::Bytes(ID)), ("target", Value::Bytes(short))];
    assert_eq!(decode(&query("find_node", args, vec![])), Err(KrpcError::IdLength { key: "a.target", len: 19 }));
    let long = [7; 21];
    let args = vec![("id", Value::Bytes(ID)), ("info_hash", Value::Bytes(&long))];
    assert_eq!(decode(&query("get_peers", args, vec![])), Err(KrpcError::IdLength { key: "a.info_hash", len: 21 }));
    assert_eq!(decode(&response(vec![("id", Value::Bytes(short))])), Err(KrpcError::IdLength { key: "r.id", len: 19 }));
}

#[test]
fn required_keys_are_named_when_missing_or_mistyped() {
    let ping_args = || dict(vec![("id", Value::Bytes(ID))]);
    let cases: Vec<(Value<'_>, KrpcError)> = vec![
        (dict(vec![("y", Value::Bytes(b"q"))]), KrpcError::MissingKey("t")),
        (
            dict(vec![("t", Value::Int(1)), ("y", Value::Bytes(b"q"))]),
            KrpcError::WrongType { key: "t", expected: "a string" },
        ),
        (dict(vec![("t", Value::Bytes(b"aa"))]), KrpcError::MissingKey("y")),
        (dict(vec![("t", Value::Bytes(b"aa")), ("y", Value::Bytes(b"x"))]), KrpcError::UnknownMessageType),
        (
            dict(vec![("t", Value::Bytes(b"aa")), ("y", Value::Bytes(b"q")), ("a", ping_args())]),
            KrpcError::MissingKey("q"),
        ),
        (
            dict(vec![("t", Value::Bytes(b"aa")), ("y", Value::Bytes(b"q")), ("q", Value::Bytes(b"ping"))]),
            KrpcError::MissingKey("a"),
        ),
        (
            dict(vec![
                ("t", Value::Bytes(b"aa")),
                ("y", Value::Bytes(b"q")),
                ("q", Value::Bytes(b"ping")),
                ("a", Value::List(vec![])),
            ]),
            KrpcError::WrongType { key: "a", expected: "a dictionary" },
        ),
        (dict(vec![("t", Value::Bytes(b"aa")), ("y", Value::Bytes(b"r"))]), KrpcError::MissingKey("r")),
        (dict(vec![("t", Value::Bytes(b"aa")), ("y", Value::Bytes(b"e"))]), KrpcError::MissingKey("e")),
    ];
    for (value, error) in cases {
        assert_eq!(decode(&encode(&value)), Err(error));
    }
    assert_eq!(decode(&query("ping", vec![], vec![])), Err(KrpcError::MissingKey("a.id")));
    assert_eq!(
        decode(&query("find_node", vec![("id", Value::Bytes(ID))], vec![])),
        Err(KrpcError::MissingKey("a.target"))
    );
    assert_eq!(decode(b"i1e"), Err(KrpcError::NotADictionary));
    assert_eq!(decode(b"le"), Err(KrpcError::NotADictionary));
}

#[test]
fn announce_peer_arguments_are_checked() {
    let announce = |extra: Vec<(&'static str, Value<'static>)>| {
        let mut args = vec![("id", Value::Bytes(ID)), ("info_hash", Value::Bytes(ID))];
        args.extend(extra);
        query("announce_peer", args, vec![])
    };
    let token = ("token", Value::Bytes(b"tok"));
    assert_eq!(decode(&announce(vec![token.clone()])), Err(KrpcError::MissingKey("a.port")));
    assert_eq!(decode(&announce(vec![("port", Value::Int(6881))])), Err(KrpcError::MissingKey("a.token")));
    assert_eq!(
        decode(&announce(vec![("port", Value::Int(70_000)), token.clone()])),
        Err(KrpcError::PortOutOfRange(70_000))
    );
    assert_eq!(decode(&announce(vec![("port", Value::Int(-1)), token.clone()])), Err(KrpcError::PortOutOfRange(-1)));
    assert_eq!(
        decode(&announce(vec![("port", Value::Bytes(b"6881")), token.clone()])),
        Err(KrpcError::WrongType { key: "a.port", expected: "an integer" })
    );
    assert_eq!(
        decode(&announce(vec![("port", Value::Int(1)), ("token", Value::Bytes(b""))])),
        Err(KrpcError::TokenLength(0))
    );
    assert_eq!(
        decode(&announce(vec![("port", Value::Int(1)), ("token", Value::Bytes(&[b'x'; 65]))])),
        Err(KrpcError::TokenLength(65))
    );
    // `port` is required even where implied_port makes the source port count, as libtorrent has it.
    assert_eq!(
        decode(&announce(vec![("implied_port", Value::Int(1)), token.clone()])),
        Err(KrpcError::MissingKey("a.port"))
    );
    let implied = method(&announce(vec![("port", Value::Int(0)), ("implied_port", Value::Int(1)), token]));
    assert!(matches!(implied, Method::AnnouncePeer { port: 0, implied_port: true, .. }));
}

#[test]
fn error_lists_must_start_with_code_and_message() {
    let error =
        |e: Value<'static>| encode(&dict(vec![("t", Value::Bytes(b"aa")), ("y", Value::Bytes(b"e")), ("e", e)]));
    assert_eq!(decode(&error(Value::List(vec![]))), Err(KrpcError::BadErrorList));
    assert_eq!(decode(&error(Value::List(vec![Value::Int(201)]))), Err(KrpcError::BadErrorList));
    assert_eq!(decode(&error(Value::List(vec![Value::Bytes(b"x"), Value::Int(201)]))), Err(KrpcError::BadErrorList));
    assert_eq!(decode(&error(Value::Bytes(b"201"))), Err(KrpcError::BadErrorList));
}

#[test]
fn bencode_errors_come_through() {
    let mut trailing = query("ping", vec![("id", Value::Bytes(ID))], vec![]);
    trailing.push(b'x');
    assert_eq!(decode(&trailing), Err(KrpcError::Bencode(BencodeError::TrailingData(1))));
    let twice = b"d1:t2:aa1:t2:bb1:y1:re";
    assert!(matches!(decode(twice), Err(KrpcError::Bencode(BencodeError::DuplicateKey(_)))));
    assert!(matches!(decode(b"d1:t99999999999:"), Err(KrpcError::Bencode(BencodeError::StringTooLong { .. }))));
}

#[test]
fn unknown_methods_decode_so_they_can_be_answered() {
    let bytes = query("sample_infohashes", vec![("id", Value::Bytes(ID)), ("target", Value::Bytes(ID))], vec![]);
    assert_eq!(method(&bytes), Method::Unknown { method: b"sample_infohashes".to_vec() });
}

#[test]
fn malformed_advisory_keys_read_as_absent() {
    let extra =
        vec![("v", Value::Bytes(b"LT\x01")), ("ip", Value::Bytes(b"\x7f\x00\x00\x01\x1a")), ("ro", Value::Bytes(b"1"))];
    let args = vec![
        ("id", Value::Bytes(ID)),
        ("info_hash", Value::Bytes(ID)),
        ("want", Value::Bytes(b"n4")),
        ("bs", Value::Bytes(b"yes")),
    ];
    let message = decode(&query("get_peers", args, extra)).expect("decodes");
    assert_eq!((message.version, message.external_addr, message.read_only), (None, None, false));
    let Body::Query(query) = message.body else { panic!("not a query") };
    assert_eq!(query.want, Want::default());
    assert_eq!(query.method, Method::GetPeers { info_hash: *b"abcdefghij0123456789", bootstrap: false });
}

#[test]
fn read_only_and_want_are_read() {
    let args = vec![
        ("id", Value::Bytes(ID)),
        ("target", Value::Bytes(ID)),
        ("want", Value::List(vec![Value::Bytes(b"n6"), Value::Bytes(b"x9"), Value::Bytes(b"n4")])),
    ];
    let message = decode(&query("find_node", args, vec![("ro", Value::Int(1))])).expect("decodes");
    assert!(message.read_only);
    let Body::Query(query) = &message.body else { panic!("not a query") };
    assert_eq!(query.want, Want { v4: true, v6: true });
    // Re-encoded canonically: unknown `want` entries dropped, n4 before n6.
    assert!(message.to_bytes().windows(16).any(|w| w == b"4:wantl2:n42:n6e"));
}

#[test]
fn a_malformed_query_still_yields_its_transaction_id() {
    let bad = query("find_node", vec![("id", Value::Bytes(ID))], vec![]);
    assert!(decode(&bad).is_err());
    assert_eq!(query_transaction_id(&bad), TransactionId::new(b"aa"));
    assert_eq!(query_transaction_id(&response(vec![("id", Value::Bytes(b"short"))])), None);
    assert_eq!(query_transaction_id(b"garbage"), None);
}
