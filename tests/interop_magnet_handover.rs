//! Issue 23: a magnet link's metadata is the first state of its torrent. The connection that fetched the
//! metadata from a libtorrent seeder goes on to download the data (libtorrent sees one connection from us, not a
//! second one after the metadata), and the tracker hears one `started` from one peer id for the whole download.

mod common;
#[path = "common/https_tracker.rs"]
mod https_tracker;

use std::process::Command;
use std::time::Duration;

use common::process::Running;
use common::{assert_same_file, bin, free_tcp_port, have_libtorrent, json_events, lt_peer, write_pseudo_random};
use https_tracker::HttpsTracker;
use tracker_protocol::AnnounceEvent;

#[test]
fn the_connection_that_fetched_the_metadata_downloads_the_data_under_one_started_announce() {
    if !have_libtorrent() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let tracker = HttpsTracker::start(work.path());
    let source = work.path().join("src");
    let data = source.join("handed-over.bin");
    let len = 2 * 1024 * 1024 + 9;
    write_pseudo_random(&data, len, 23);
    // 16 KiB pieces: the info dictionary is a few KB, several ut_metadata pieces. libtorrent seeds it without the
    // test's tracker (the torrent names one nobody answers at; the magnet link names the test's): our peer is told
    // where it is, and libtorrent says every connection opened to it.
    let (torrent, info_hash) = common::make_torrent(&data, "udp://127.0.0.1:1/announce", 14);

    let lt_port = free_tcp_port();
    let mut seeder = Running::start(lt_peer().arg("seed").arg(&torrent).arg(&source).args([
        "--port",
        &lt_port.to_string(),
        "--timeout",
        "120",
        "--say-incoming",
    ]));
    let seeding = seeder.wait_for_line(|line| line == "SEEDING", Duration::from_secs(30));
    assert!(seeding.is_some(), "the libtorrent seeder never got ready; stderr:\n{}", seeder.stderr());

    let magnet = format!("magnet:?xt=urn:btih:{}&tr={}", hex::encode(info_hash), tracker.announce_url());
    let into = work.path().join("leech");
    let mut leecher = Running::start(
        Command::new(bin("peer"))
            .args(["--no-dht", "--no-lsd", "--json", "--exit-on-complete", "--bind", "127.0.0.1"])
            .args(["--tracker-timeout", "0.5", "--peer", &format!("127.0.0.1:{lt_port}")])
            .arg("0")
            .arg(&magnet)
            .arg("--dir")
            .arg(&into)
            .env("SSL_CERT_FILE", tracker.certificate())
            .env_remove("SSL_CERT_DIR"),
    );
    let status = leecher.wait(Duration::from_secs(90));
    let lines = leecher.rest_of_stdout(Duration::from_secs(5));
    assert!(
        status.is_some_and(|status| status.success()),
        "our peer did not complete from the magnet link ({status:?}); stdout {lines:?}\nstderr:\n{}",
        leecher.stderr()
    );
    assert_same_file(&data, &into.join("handed-over.bin"));
    assert_eq!(json_events(&lines, "metadata_received").len(), 1, "{lines:?}");

    // One connection, opened once, that brought all of the data.
    let lt_address = format!("127.0.0.1:{lt_port}");
    let connected: Vec<_> =
        json_events(&lines, "peer_connected").into_iter().filter(|event| event["address"] == lt_address).collect();
    assert_eq!(connected.len(), 1, "one connection to the libtorrent seeder: {lines:?}");
    // (It may close once both sides are complete: two seeders have nothing to say to each other.)
    let stopped = json_events(&lines, "stopped");
    let from_lt = stopped[0]["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .find(|peer| peer["address"] == lt_address)
        .map(|peer| peer["downloaded"].as_u64().unwrap_or(0));
    assert!(from_lt.is_some_and(|bytes| bytes >= len as u64), "the data came over that connection: {stopped:?}");
    // libtorrent counts the connections opened to it; once it sees ours gone, every one of them is counted.
    let settled = seeder.wait_for_line(
        |line| line.starts_with("INCOMING ") && !line.starts_with("INCOMING 0 ") && line.ends_with(" PEERS 0"),
        Duration::from_secs(20),
    );
    let settled = settled.unwrap_or_else(|| panic!("libtorrent never saw us come and go:\n{}", seeder.stderr()));
    assert_eq!(settled, "INCOMING 1 PEERS 0", "libtorrent saw more than one connection from us");

    // One peer id and one key for every announce, and one `started`: then `completed` and `stopped`.
    let peer_id = json_events(&lines, "listening")[0]["peer_id"].as_str().expect("peer id").to_owned();
    let announces: Vec<_> =
        tracker.announces().into_iter().filter(|announce| announce.info_hash == info_hash).collect();
    assert!(!announces.is_empty(), "our peer never announced");
    assert!(tracker.tls_errors().is_empty(), "{:?}", tracker.tls_errors());
    assert!(announces.iter().all(|announce| hex::encode(announce.peer_id) == peer_id), "{announces:?}");
    assert!(announces.iter().all(|announce| announce.key == announces[0].key), "{announces:?}");
    let events: Vec<AnnounceEvent> = announces.iter().map(|announce| announce.event).collect();
    assert_eq!(events.iter().filter(|event| **event == AnnounceEvent::Started).count(), 1, "{events:?}");
    assert_eq!(events.first(), Some(&AnnounceEvent::Started), "{events:?}");
    assert_eq!(events.iter().filter(|event| **event == AnnounceEvent::Completed).count(), 1, "{events:?}");
    assert_eq!(events.last(), Some(&AnnounceEvent::Stopped), "{events:?}");
}
