//! Our peers find each other through the Mainline DHT alone: a DHT node of the test's own (the `dht` crate) on
//! loopback is the only bootstrap; the seeder announces there, and a leecher given only `magnet:?xt=urn:btih:HASH`
//! (no tracker, no peer) looks the hash up, fetches the metadata from the seeder and downloads.

mod common;

use std::process::Command;
use std::time::Duration;

use common::dht_node::{BootstrapNode, dht_peer, start_dht_seeder};
use common::process::Running;
use common::{bin, make_torrent, write_pseudo_random};

#[test]
fn a_magnet_link_with_no_tracker_and_no_peer_downloads_through_the_dht() {
    let work = tempfile::tempdir().expect("tempdir");
    let bootstrap = BootstrapNode::start();
    let data = work.path().join("src").join("dht.bin");
    write_pseudo_random(&data, 3_000_000, 17);
    // A tracker nobody answers at: the DHT is the only way to meet.
    let (torrent, info_hash) = make_torrent(&data, "udp://127.0.0.1:1/announce", 16);
    let via = bootstrap.address.to_string();
    let mut seeder = start_dht_seeder(&torrent, &work.path().join("src"), &via);

    let into = work.path().join("leech");
    let magnet = format!("magnet:?xt=urn:btih:{}", hex::encode(info_hash));
    let mut leecher = Running::start(dht_peer(&magnet, &into, &via).args([
        "--json",
        "--exit-on-complete",
        "--trace-file",
        work.path().join("trace.txt").to_str().expect("utf-8"),
    ]));
    let status = leecher.wait(Duration::from_secs(60));
    let lines = leecher.rest_of_stdout(Duration::from_secs(2));
    assert!(
        status.is_some_and(|status| status.success()),
        "the leecher did not complete through the DHT (status {status:?}); stdout {lines:?}\nstderr:\n{}\nseeder:\n{}",
        leecher.stderr(),
        seeder.stderr()
    );
    assert_eq!(std::fs::read(&data).expect("original"), std::fs::read(into.join("dht.bin")).expect("copy"));
    let from_dht =
        lines.iter().any(|line| line.contains(r#""event":"peer_connected""#) && line.contains(r#""source":"dht""#));
    assert!(from_dht, "no peer came from the DHT: {lines:?}");
    // The final report says where each peer came from.
    let report = lines.iter().rev().find(|line| line.contains(r#""event":"stopped""#)).expect("the final report");
    let report: serde_json::Value = serde_json::from_str(report).expect("JSON");
    assert!(report["peers"].as_array().expect("peers").iter().any(|peer| peer["source"] == "dht"), "{report}");
    // Both set the DHT bit in their handshakes, so each told the other its DHT port (BEP 5's PORT message).
    let trace = std::fs::read_to_string(work.path().join("trace.txt")).expect("the trace");
    assert!(trace.contains("dht") && trace.contains("->  port ") && trace.contains("<-  port "), "{trace}");

    // The nodes it knew are saved in the download folder; a newcomer whose only given node is dead rejoins
    // through them.
    let saved = std::fs::read_to_string(into.join(".dht-nodes")).expect("the DHT nodes saved on exit");
    assert!(saved.lines().any(|line| line == via), "{saved:?}");
    let again = work.path().join("again");
    std::fs::create_dir_all(&again).expect("mkdir");
    std::fs::write(again.join(".dht-nodes"), &saved).expect("copy the saved nodes");
    let mut newcomer = Running::start(dht_peer(&magnet, &again, "127.0.0.1:9").args(["--json", "--exit-on-complete"]));
    let status = newcomer.wait(Duration::from_secs(60));
    assert!(status.is_some_and(|status| status.success()), "{}", newcomer.stderr());
    assert_eq!(std::fs::read(&data).expect("original"), std::fs::read(again.join("dht.bin")).expect("copy"));
    seeder.interrupt(Duration::from_secs(10));
}

/// A trackerless torrent made with `mktorrent --no-announce --dht-node HOST:PORT` carries its way into the DHT:
/// the leecher's only given bootstrap node is dead, and it joins through the node the torrent names.
#[test]
fn a_trackerless_torrent_joins_the_dht_through_its_own_nodes() {
    let work = tempfile::tempdir().expect("tempdir");
    let bootstrap = BootstrapNode::start();
    let via = bootstrap.address.to_string();
    let data = work.path().join("src").join("nodes.bin");
    write_pseudo_random(&data, 1_000_000, 23);
    let torrent = work.path().join("nodes.torrent");
    let made = Command::new(bin("mktorrent"))
        .args(["-q", "--no-announce", "--dht-node", &via, "-l", "16", "-o"])
        .arg(&torrent)
        .arg(&data)
        .status()
        .expect("mktorrent");
    assert!(made.success());
    let show = Command::new(bin("mktorrent")).arg("--show").arg(&torrent).arg("--json").output().expect("show");
    let shown: serde_json::Value = serde_json::from_slice(&show.stdout).expect("JSON");
    assert_eq!(shown["trackers"], serde_json::json!([]), "{shown}");

    let mut seeder = start_dht_seeder(&torrent, &work.path().join("src"), &via);

    let into = work.path().join("leech");
    let mut leecher = Running::start(
        // Given instead of the public routers, and dead: only the torrent's node leads anywhere.
        dht_peer(&torrent, &into, "127.0.0.1:9").args(["--json", "--exit-on-complete"]),
    );
    let status = leecher.wait(Duration::from_secs(60));
    let lines = leecher.rest_of_stdout(Duration::from_secs(2));
    assert!(
        status.is_some_and(|status| status.success()),
        "the leecher did not complete through the torrent's DHT node ({status:?}); stderr:\n{}",
        leecher.stderr()
    );
    assert_eq!(std::fs::read(&data).expect("original"), std::fs::read(into.join("nodes.bin")).expect("copy"));
    assert!(lines.iter().any(|line| line.contains(r#""source":"dht""#)), "{lines:?}");
    seeder.interrupt(Duration::from_secs(10));
}
