//! Interop of the tracker with real clients: two libtorrent sessions, each given only the torrent,
//! must find each other through the tracker and complete a download. The same test runs against
//! Debian's opentracker as the reference.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::process::Running;
use common::udp::UdpClient;
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
    let (udp, tcp) = (free_udp_port(), free_tcp_port());
    let address: SocketAddr = format!("127.0.0.1:{udp}").parse().expect("address");
    let (data, torrent, info_hash) = prepare(dir.path(), address);

    // Debian's opentracker serves only whitelisted hashes, read at start; as root it chroots into -d
    // and opens the -w path inside it.
    let jail = dir.path().join("jail");
    std::fs::create_dir(&jail).expect("mkdir");
    std::fs::write(jail.join("whitelist.txt"), format!("{}\n", hex::encode(info_hash))).expect("whitelist");
    let mut command = Command::new("opentracker");
    command.args(["-i", "127.0.0.1", "-P", &udp.to_string(), "-p", &tcp.to_string()]);
    if running_as_root() {
        command.arg("-d").arg(&jail).args(["-w", "/whitelist.txt"]);
    } else {
        command.arg("-w").arg(jail.join("whitelist.txt"));
    }
    let _opentracker = Running::start(&mut command);
    wait_until_answering(address);
    libtorrent_pair_completes(dir.path(), &data, &torrent);
}

/// Whether the test runs as root (opentracker then chroots).
fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0").unwrap_or(false)
}
/// Polls with BEP 15 connects until the tracker answers (up to 10 s).
fn wait_until_answering(address: SocketAddr) {
    let client = UdpClient::new(address);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut packet = Vec::new();
    tracker_protocol::ConnectRequest { transaction_id: tracker_protocol::TransactionId(1) }.write(&mut packet);
    while Instant::now() < deadline {
        if client.exchange(&packet).is_some() {
            return;
        }
    }
    panic!("the tracker at {address} never answered");
}
