//! Tests of the BEP 5 `nodes` key: parsing entries as libtorrent does (bad ones skipped, never a panic or an
//! error), the caps, and writing it in canonical key order outside `info`, so that the info-hash stays the same.

use std::fs;

use proptest::prelude::*;

use super::{MAX_NODE_HOST_LEN, MAX_NODES, check_node};
use crate::create::{CreateOptions, create, create_from_path};
use crate::create_v2::MetaVersion;
use crate::error::CreateError;
use crate::{Torrent, collect_files};

const INFO: &str =
    "d6:lengthi40000e4:name5:x.bin12:piece lengthi32768e6:pieces40:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxe";

/// A torrent whose top level holds `nodes` with the raw bencoded value given, and a `url-list` after it, so that
/// a test sees the parse go on past the value.
fn with_nodes(value: &str) -> Vec<u8> {
    format!("d4:info{INFO}5:nodes{value}8:url-list8:http://ue").into_bytes()
}

fn nodes_of(value: &str) -> Vec<(String, u16)> {
    let torrent = Torrent::from_bytes(&with_nodes(value))
        .unwrap_or_else(|err| panic!("{}: {err}", value.get(..200).unwrap_or(value)));
    assert_eq!(torrent.url_list, ["http://u"], "the keys after `nodes` must still be read");
    torrent.nodes
}

fn node(host: &str, port: u16) -> (String, u16) {
    (host.to_owned(), port)
}

fn bstr(text: &str) -> String {
    format!("{}:{text}", text.len())
}

#[test]
fn reads_the_nodes_libtorrent_writes() {
    // The layout python3-libtorrent 2.0 writes for `create_torrent.add_node("127.0.0.1", 6881)` and
    // `add_node("router.example.org", 1)` (its pieces replaced by x's): `nodes` after `info`.
    let golden =
        format!("d13:creation datei1700000000e4:info{INFO}5:nodesll9:127.0.0.1i6881eel18:router.example.orgi1eeee");
    let torrent = Torrent::from_bytes(golden.as_bytes()).expect("valid");
    assert_eq!(torrent.nodes, [node("127.0.0.1", 6881), node("router.example.org", 1)]);
    assert_eq!(torrent.announce, None);
    assert!(torrent.trackers().is_empty());
    // nodes lie outside info: the hash is that of the info span alone.
    let bare = Torrent::from_bytes(format!("d4:info{INFO}e").as_bytes()).expect("valid");
    assert_eq!(torrent.info_hash, bare.info_hash);
    assert!(bare.nodes.is_empty());
}

#[test]
fn ipv6_hosts_and_extra_items_are_kept() {
    assert_eq!(nodes_of("ll3:::1i6881eel7:2001:dbi65535ei99e3:xyzee"), [node("::1", 6881), node("2001:db", 65535)]);
}

#[test]
fn bad_entries_are_skipped_and_the_good_ones_kept() {
    let long_host = "h".repeat(MAX_NODE_HOST_LEN + 1);
    let longest_host = "h".repeat(MAX_NODE_HOST_LEN);
    let bad = [
        "l1:xe".to_owned(),                   // ["x"]: no port
        "li1ei2ee".into(),                    // [1, 2]: the host is not a string
        "l1:hi70000ee".into(),                // port past 65535
        "l1:hi-1ee".into(),                   // negative port
        "l1:hi0ee".into(),                    // port 0
        "l1:h2:80e".into(),                   // the port is a string
        "le".into(),                          // empty
        "5:hello".into(),                     // not a list
        "i6881e".into(),                      // not a list
        "d4:host1:h4:porti1ee".into(),        // a dictionary
        "ll1:heli1eee".into(),                // [["h"], [1]]
        "l0:i1ee".into(),                     // empty host
        format!("l{}i1ee", bstr(&long_host)), // host too long
        "l3:a bi1ee".into(),                  // whitespace
        "l3:a\nbi1ee".into(),                 // a control character
        "l1:hi9223372036854775807ee".into(),  // i64::MAX
    ];
    let mut value = "l".to_owned();
    for (index, entry) in bad.iter().enumerate() {
        value.push_str(entry);
        value.push_str(&format!("l{}i{}ee", bstr("good"), index + 1));
    }
    value.push_str(&format!("l{}i7ee", bstr(&longest_host)));
    value.push('e');
    let expected: Vec<_> =
        (1..=bad.len()).map(|port| node("good", port as u16)).chain([node(&longest_host, 7)]).collect();
    assert_eq!(nodes_of(&value), expected);
}

#[test]
fn a_host_that_is_not_utf8_is_skipped() {
    let mut doc = format!("d4:info{INFO}5:nodesll2:").into_bytes();
    doc.extend_from_slice(&[0xff, 0xfe]);
    doc.extend_from_slice(b"i1eel2:oki2eeee");
    let torrent = Torrent::from_bytes(&doc).expect("valid");
    assert_eq!(torrent.nodes, [node("ok", 2)]);
}

#[test]
fn nodes_that_are_not_a_list_are_ignored() {
    for value in ["5:nodes", "i1e", "de", "d1:ali1eee", "le"] {
        assert_eq!(nodes_of(value), [], "{value}");
    }
}

#[test]
fn at_most_max_nodes_are_kept_and_the_rest_read_past() {
    let mut value = "l".to_owned();
    for index in 0..MAX_NODES + 500 {
        value.push_str(&format!("l{}i{}ee", bstr(&format!("n{index}")), index % 65_535 + 1));
    }
    value.push_str("l1:xle1:ye");
    value.push('e');
    let nodes = nodes_of(&value);
    assert_eq!(nodes.len(), MAX_NODES);
    assert_eq!(nodes[0], node("n0", 1));
    assert_eq!(nodes[MAX_NODES - 1], node(&format!("n{}", MAX_NODES - 1), MAX_NODES as u16));
}

#[test]
fn deep_junk_inside_nodes_is_bounded_by_the_scan() {
    // Nesting within the limit is read past; past it, the scan refuses the file before serde sees it.
    let shallow = format!("l{}1:xi1e{}l1:hi1ee", "l".repeat(40), "e".repeat(40));
    assert_eq!(nodes_of(&format!("{shallow}e")), [node("h", 1)]);
    let deep = format!("l{}{}e", "l".repeat(100), "e".repeat(100));
    assert!(Torrent::from_bytes(&with_nodes(&deep)).is_err());
}

#[test]
fn check_node_says_why() {
    assert_eq!(check_node("router.example.org", 6881), Ok(()));
    assert_eq!(check_node("::1", 1), Ok(()));
    assert!(check_node("", 1).is_err());
    assert!(check_node("h", 0).is_err());
    assert!(check_node("a b", 1).is_err());
    assert!(check_node(&"h".repeat(256), 1).is_err());
}

fn options(nodes: &[(&str, u16)], version: MetaVersion) -> CreateOptions {
    CreateOptions {
        announce_tiers: vec![vec!["udp://t".to_owned()]],
        web_seeds: vec!["http://seed/".to_owned()],
        piece_length: Some(16_384),
        nodes: nodes.iter().map(|(host, port)| node(host, *port)).collect(),
        meta_version: version,
        ..Default::default()
    }
}

/// The top-level keys of `bytes`, in file order.
fn top_keys(bytes: &[u8]) -> Vec<String> {
    let value = ::bencode::decode_exact(bytes).expect("bencode");
    value.as_dict().expect("a dict").iter().map(|(key, _)| String::from_utf8_lossy(key).into_owned()).collect()
}

#[test]
fn written_nodes_round_trip_in_key_order_and_leave_the_info_hash_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("data.bin");
    fs::write(&file, vec![7u8; 50_000]).expect("write");
    let tree = collect_files(&file).expect("tree");
    let nodes = [("127.0.0.1", 6881), ("router.example.org", 1), ("::1", 65535)];
    for version in [MetaVersion::V1, MetaVersion::V2, MetaVersion::Hybrid] {
        let with = create(&tree, &options(&nodes, version), &|_| {}).expect("created");
        let without = create(&tree, &options(&[], version), &|_| {}).expect("created");
        let parsed = Torrent::from_bytes_any(&with.bytes).expect("parses back");
        assert_eq!(parsed, with.torrent, "{version:?}: the model made must equal the model parsed");
        assert_eq!(parsed.nodes, [node("127.0.0.1", 6881), node("router.example.org", 1), node("::1", 65535)]);
        assert_eq!(with.torrent.info_hash, without.torrent.info_hash, "{version:?}");
        assert_eq!(with.torrent.info_bytes, without.torrent.info_bytes, "{version:?}");
        assert!(without.torrent.nodes.is_empty());
        assert!(!String::from_utf8_lossy(&without.bytes).contains("5:nodes"));

        let keys = top_keys(&with.bytes);
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "{version:?}: keys must be in byte order");
        assert!(keys.contains(&"nodes".to_owned()), "{version:?}: {keys:?}");
        let text = String::from_utf8_lossy(&with.bytes);
        assert!(text.contains("5:nodesll9:127.0.0.1i6881eel18:router.example.orgi1eel3:::1i65535eee"), "{text}");
    }
    // v2 and hybrid torrents have `piece layers`, which sorts after `nodes`.
    let hybrid = create(&tree, &options(&nodes, MetaVersion::Hybrid), &|_| {}).expect("created");
    assert_eq!(top_keys(&hybrid.bytes), ["announce", "info", "nodes", "piece layers", "url-list"]);
}

#[test]
fn bad_nodes_are_refused_before_hashing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("data.bin");
    fs::write(&file, b"data").expect("write");
    let too_many: Vec<(String, u16)> = (0..=MAX_NODES).map(|index| (format!("n{index}"), 1)).collect();
    for nodes in [vec![node("h", 0)], vec![node("", 1)], vec![node("a b", 1)], too_many] {
        let options = CreateOptions { nodes: nodes.clone(), ..Default::default() };
        for result in [
            create_from_path(&file, &options, &|_| {}),
            create(&collect_files(&file).expect("tree"), &options, &|_| {}),
        ] {
            let err = result.expect_err("refused");
            assert!(matches!(err, CreateError::BadNode { .. }), "{err}");
            assert!(err.to_string().starts_with("DHT node "), "{err}");
        }
    }
}

/// An entry and whether it is a usable node.
fn entry() -> impl Strategy<Value = (String, Option<(String, u16)>)> {
    prop_oneof![
        ("[a-z0-9.:-]{1,30}", 1..=65_535u16)
            .prop_map(|(host, port)| (format!("l{}i{port}ee", bstr(&host)), Some((host, port)))),
        ("[a-z]{0,3}", any::<i64>()).prop_map(|(host, port)| {
            let usable = !host.is_empty() && (1..=65_535).contains(&port);
            let kept = usable.then(|| (host.clone(), port as u16));
            (format!("l{}i{port}ee", bstr(&host)), kept)
        }),
        "[a-z]{0,5}".prop_map(|text| (bstr(&text), None)),
        any::<i64>().prop_map(|n| (format!("i{n}e"), None)),
        "[a-z]{1,5}".prop_map(|text| (format!("ll{}ee", bstr(&text)), None)),
        "[a-z]{1,5}".prop_map(|text| (format!("d{}i1ee", bstr(&text)), None)),
        (any::<i64>(), "[a-z]{1,5}").prop_map(|(n, text)| (format!("li{n}e{}e", bstr(&text)), None)),
    ]
}

proptest! {
    #[test]
    fn any_mix_of_entries_parses_to_the_usable_ones(entries in prop::collection::vec(entry(), 0..40)) {
        let value = format!("l{}e", entries.iter().map(|(text, _)| text.as_str()).collect::<String>());
        let expected: Vec<_> = entries.into_iter().filter_map(|(_, kept)| kept).collect();
        prop_assert_eq!(nodes_of(&value), expected);
    }
}
