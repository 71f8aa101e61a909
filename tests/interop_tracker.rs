//! Interop of the tracker with real clients: two libtorrent sessions, each given only the torrent,
//! must find each other through the tracker and complete a download. The same test runs against
//! Debian's opentracker as the reference.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::process::Running;
use common::{
    bin, free_tcp_port, free_udp_port, have_libtorrent, have_opentracker, lt_peer, make_torrent, write_pseudo_random,
};

/// Writes 3 MiB of data under `dir/seed` and its torrent announcing to `tracker`.
fn prepare(dir: &Path, tracker: SocketAddr) -> (PathBuf, PathBuf, [u8; 20]) {
    let data = dir.join("seed/payload.bin");
    write_pseudo_random(&data, 3 * 1024 * 1024 + 77, 42);
    let (torrent, info_hash) = make_torrent(&data, &format!("udp://{tracker}/announce"), 16);
    (data, torrent, info_hash)
}

/// Seeds with one libtorrent session and downloads with another; neither is told about the other.
fn libtorrent_pair_completes(dir: &Path, data: &Path, torrent: &Path) {
    let seed_dir = data.parent().expect("seed folder");
    let mut seeder = Running::start(lt_peer().arg("seed").arg(torrent).arg(seed_dir).args([
        "--port",
        &free_tcp_port().to_string(),
        "--timeout",
        "90",
    ]));
    assert!(
        seeder.wait_for_line(|line| line == "SEEDING", Duration::from_secs(30)).is_some(),
        "seeder: {}",
        seeder.stderr()
    );

    let leech_dir = dir.join("leech");
    std::fs::create_dir_all(&leech_dir).expect("mkdir");
    let mut leecher = Running::start(lt_peer().arg("leech").arg(torrent).arg(&leech_dir).args([
        "--port",
        &free_tcp_port().to_string(),
        "--timeout",
        "60",
    ]));
    let status = leecher.wait(Duration::from_secs(70)).expect("leecher finishes within its timeout");
    assert!(status.success(), "leecher did not complete ({status}):\n{}", leecher.stderr());
    assert_eq!(
        std::fs::read(leech_dir.join("payload.bin")).expect("downloaded"),
        std::fs::read(data).expect("original"),
        "downloaded bytes differ"
    );
    seeder.kill();
}

#[test]
fn two_libtorrent_sessions_find_each_other_through_our_tracker() {
    if !have_libtorrent() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (tracker, address) =
        Running::start_listening(Command::new(bin("tracker")).args(["--open", "--bind", "127.0.0.1:0"]));
    let (data, torrent, _) = prepare(dir.path(), address);
    libtorrent_pair_completes(dir.path(), &data, &torrent);
    assert!(tracker.stderr().contains("tracker started"));
}

#[test]
fn the_same_swarm_works_through_opentracker() {
    if !(have_libtorrent() && have_opentracker()) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let udp = free_udp_port();
    let address: SocketAddr = format!("127.0.0.1:{udp}").parse().expect("address");
    let (data, torrent, info_hash) = prepare(dir.path(), address);
    let _opentracker = common::start_opentracker(dir.path(), udp, &[info_hash]);
    libtorrent_pair_completes(dir.path(), &data, &torrent);
}
