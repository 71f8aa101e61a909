//! End-to-end: several torrents in one `peer` process, on one port under one peer id. Each incoming handshake
//! goes to the torrent it names, and one for a torrent not served is refused; each JSON event names its torrent;
//! a torrent given twice is refused with its name; a magnet link among them fetches its metadata while the others
//! run; one torrent that cannot be stored stops alone.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::process::Running;
use common::{assert_same_file, bin, free_tcp_port, free_udp_port, json_events, make_torrent, write_pseudo_random};

/// `count` single-file torrents of different sizes under `dir/src`, announcing to a tracker nobody runs (the
/// tests name the peers with --peer): (data, torrent, info-hash).
fn torrents(dir: &Path, count: usize) -> Vec<(PathBuf, PathBuf, [u8; 20])> {
    let announce = format!("udp://127.0.0.1:{}/announce", free_udp_port());
    (0..count)
        .map(|n| {
            let data = dir.join("src").join(format!("file{n}.bin"));
            write_pseudo_random(&data, (1 << 20) + n * 77_777, 50 + n as u64);
            let (torrent, hash) = make_torrent(&data, &announce, 16);
            let named = dir.join(format!("file{n}.torrent"));
            std::fs::rename(&torrent, &named).expect("rename");
            (data, named, hash)
        })
        .collect()
}

fn our_peer(port: u16, torrents: &[&Path], dir: &Path) -> Command {
    let mut command = Command::new(bin("peer"));
    command.args(["--no-dht", "--no-lsd", "--json", "--bind", "127.0.0.1", "--tracker-timeout", "0.5"]);
    command.arg(port.to_string()).args(torrents).arg("--dir").arg(dir);
    command
}

fn hex(hash: &[u8; 20]) -> String {
    hash.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// One of our processes seeding two torrents from `work/src` on a port of its own (not waited for: leechers
/// retry a `--peer` address).
struct TwoSeeded {
    work: tempfile::TempDir,
    made: Vec<(PathBuf, PathBuf, [u8; 20])>,
    seeder: Running,
    port: u16,
}

fn two_seeded() -> TwoSeeded {
    let work = tempfile::tempdir().expect("tempdir");
    let made = torrents(work.path(), 2);
    let port = free_tcp_port();
    let paths: Vec<&Path> = made.iter().map(|(_, torrent, _)| torrent.as_path()).collect();
    let seeder = Running::start(&mut our_peer(port, &paths, &work.path().join("src")));
    TwoSeeded { work, made, seeder, port }
}

/// Our leecher of `torrents` into `into`, with `--peer` naming the seeder, run until it exits (up to 60 s):
/// its exit status and stdout.
fn leech(
    torrents: &[&Path],
    into: &Path,
    seeder_port: u16,
) -> (Running, Option<std::process::ExitStatus>, Vec<String>) {
    let mut leecher = Running::start(
        our_peer(0, torrents, into).arg("--exit-on-complete").arg("--peer").arg(format!("127.0.0.1:{seeder_port}")),
    );
    let status = leecher.wait(Duration::from_secs(60));
    let lines = leecher.rest_of_stdout(Duration::from_secs(2));
    (leecher, status, lines)
}

#[test]
fn one_process_seeds_two_torrents_on_one_port_and_another_downloads_both() {
    let work = tempfile::tempdir().expect("tempdir");
    let made = torrents(work.path(), 2);
    let src = work.path().join("src");
    let port = free_tcp_port();
    let paths: Vec<&Path> = made.iter().map(|(_, torrent, _)| torrent.as_path()).collect();
    let mut seeder = Running::start(&mut our_peer(port, &paths, &src));
    for _ in 0..2 {
        let seeding = seeder.wait_for_line(|line| line.contains("\"seeding\""), Duration::from_secs(30));
        assert!(seeding.is_some(), "not seeding both; stderr:\n{}", seeder.stderr());
    }

    // A peer knocking for a torrent the process does not serve gets no handshake back.
    let mut stranger = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stranger.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let knock = peer_wire::Handshake::new([0x42; 20], *b"-XX0001-stranger0000");
    stranger.write_all(&knock.encode()).expect("send");
    let mut reply = Vec::new();
    let _ = stranger.read_to_end(&mut reply);
    assert!(reply.is_empty(), "a handshake for an unknown torrent was answered: {reply:?}");

    // One leecher process downloads both from the one port.
    let into = work.path().join("leech");
    let mut leecher = Running::start(
        our_peer(0, &paths, &into).arg("--exit-on-complete").arg("--peer").arg(format!("127.0.0.1:{port}")),
    );
    let status = leecher.wait(Duration::from_secs(60));
    let lines = leecher.rest_of_stdout(Duration::from_secs(2));
    assert!(status.is_some_and(|status| status.success()), "{lines:?}\n{}", leecher.stderr());
    for (data, _, _) in &made {
        assert_same_file(data, &into.join(data.file_name().expect("name")));
    }
    // Every event names its torrent; one `listening`, one `complete` and one `stopped` per torrent.
    assert_eq!(json_events(&lines, "listening").len(), 1, "{lines:?}");
    for (_, _, hash) in &made {
        let named =
            |kind: &str| json_events(&lines, kind).into_iter().filter(|event| event["torrent"] == hex(hash)).count();
        assert_eq!((named("complete"), named("stopped")), (1, 1), "{}: {lines:?}", hex(hash));
    }
    let unnamed: Vec<&String> = lines
        .iter()
        .filter(|line| serde_json::from_str::<serde_json::Value>(line).is_ok_and(|event| event["torrent"].is_null()))
        .collect();
    assert!(unnamed.is_empty(), "events without their torrent: {unnamed:?}");
    // Both were served by the one seeder, under one peer id.
    let stopped = json_events(&lines, "stopped");
    let seeders: std::collections::BTreeSet<(String, String)> = stopped
        .iter()
        .flat_map(|event| event["peers"].as_array().cloned().unwrap_or_default())
        .filter(|peer| peer["downloaded"].as_u64() > Some(0))
        .map(|peer| {
            (peer["address"].as_str().unwrap_or("").to_owned(), peer["peer_id"].as_str().unwrap_or("").to_owned())
        })
        .collect();
    let ids: std::collections::BTreeSet<&String> = seeders.iter().map(|(_, id)| id).collect();
    assert_eq!(ids.len(), 1, "{seeders:?}");
    assert!(seeders.iter().all(|(address, _)| address == &format!("127.0.0.1:{port}")), "{seeders:?}");
    seeder.kill();
}

#[test]
fn a_torrent_given_twice_is_refused_with_its_name() {
    let work = tempfile::tempdir().expect("tempdir");
    let made = torrents(work.path(), 1);
    let torrent = made[0].1.as_path();
    let out = common::run(&mut our_peer(0, &[torrent, torrent], &work.path().join("src")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is given twice") && stderr.contains("file0.bin"), "{stderr}");
    // The same torrent as a file and as a magnet link is the same torrent.
    let link = format!("magnet:?xt=urn:btih:{}", hex(&made[0].2));
    let out = common::run(&mut our_peer(0, &[torrent, Path::new(&link)], &work.path().join("src")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is given twice"), "{stderr}");
}

#[test]
fn a_magnet_link_beside_a_torrent_file_fetches_its_metadata_while_the_other_downloads() {
    let TwoSeeded { work, made, mut seeder, port } = two_seeded();
    let into = work.path().join("leech");
    let link = format!("magnet:?xt=urn:btih:{}&dn=file1.bin&x.pe=127.0.0.1:{port}", hex(&made[1].2));
    let (leecher, status, lines) = leech(&[made[0].1.as_path(), Path::new(&link)], &into, port);
    assert!(status.is_some_and(|status| status.success()), "{lines:?}\n{}", leecher.stderr());
    for (data, _, _) in &made {
        assert_same_file(data, &into.join(data.file_name().expect("name")));
    }
    let received = json_events(&lines, "metadata_received");
    assert_eq!(received.len(), 1, "{lines:?}");
    assert_eq!(received[0]["torrent"], hex(&made[1].2), "the fetch's events name their torrent too");
    assert!(into.join("file1.bin.torrent").is_file(), "the fetched metadata is saved");
    let complete = json_events(&lines, "stopped").iter().filter(|event| event["complete"] == true).count();
    assert_eq!(complete, 2, "{lines:?}");
    seeder.kill();
}

#[test]
fn a_torrent_whose_data_cannot_be_stored_stops_alone_and_the_others_go_on() {
    let TwoSeeded { work, made, mut seeder, port } = two_seeded();
    // The download folder holds a folder where the second torrent's file should go: it cannot be stored.
    let into = work.path().join("leech");
    std::fs::create_dir_all(into.join("file1.bin").join("in the way")).expect("mkdir");
    let paths: Vec<&Path> = made.iter().map(|(_, torrent, _)| torrent.as_path()).collect();
    let (leecher, status, lines) = leech(&paths, &into, port);
    assert_eq!(status.and_then(|status| status.code()), Some(1), "{lines:?}\n{}", leecher.stderr());
    assert_same_file(&made[0].0, &into.join("file0.bin"));
    let errored = json_events(&lines, "errored");
    assert_eq!(errored.len(), 1, "{lines:?}");
    assert_eq!(errored[0]["torrent"], hex(&made[1].2), "{errored:?}");
    assert!(errored[0]["error"].as_str().is_some_and(|error| error.contains("file1.bin")), "{errored:?}");
    assert!(leecher.stderr().contains("peer: error: file1.bin"), "{}", leecher.stderr());
    let complete = json_events(&lines, "stopped").iter().filter(|event| event["complete"] == true).count();
    assert_eq!(complete, 1, "{lines:?}");
    assert_eq!(std::fs::read_dir(into.join("file1.bin")).expect("still a folder").count(), 1, "touched");
    seeder.kill();
}
