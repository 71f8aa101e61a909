//! Interop: several torrents in one `peer` process, on one port, with libtorrent 2.0 (python3-libtorrent,
//! tests/support/lt_peer.py) through our tracker: our one process downloads three torrents at once from three
//! libtorrent seeders, and two libtorrent leechers download a torrent each from our one process.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::process::Running;
use common::{
    assert_same_file, bin, expect_libtorrent_complete, free_tcp_port, free_udp_port, have_libtorrent, json_events,
    lt_peer, make_torrent, start_libtorrent_seeder, write_pseudo_random,
};

fn start_tracker() -> (Running, String) {
    let port = free_udp_port();
    let (tracker, _) = Running::start_listening(
        Command::new(bin("tracker")).args(["--open", "--interval", "5", "--bind"]).arg(format!("127.0.0.1:{port}")),
    );
    (tracker, format!("udp://127.0.0.1:{port}/announce"))
}

/// Torrent `n` of the test: `dir/srcN/fileN.bin` and `dir/fileN.torrent`.
fn torrent(dir: &Path, announce: &str, n: usize) -> (PathBuf, PathBuf) {
    let data = dir.join(format!("src{n}")).join(format!("file{n}.bin"));
    write_pseudo_random(&data, (2 << 20) + n * 4099, 60 + n as u64);
    let (made, _) = make_torrent(&data, announce, 16);
    let torrent = dir.join(format!("file{n}.torrent"));
    std::fs::rename(made, &torrent).expect("rename");
    (data, torrent)
}

fn our_peer(torrents: &[PathBuf], dir: &Path) -> Command {
    let mut command = Command::new(bin("peer"));
    command.args(["--no-dht", "--no-lsd", "--json", "--bind", "127.0.0.1", "--tracker-timeout", "0.5", "0"]);
    command.args(torrents).arg("--dir").arg(dir);
    command
}

#[test]
fn our_one_process_downloads_three_torrents_at_once_from_libtorrent_seeders() {
    if !have_libtorrent() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let (_tracker, announce) = start_tracker();
    let made: Vec<(PathBuf, PathBuf)> = (0..3).map(|n| torrent(work.path(), &announce, n)).collect();
    let _seeders: Vec<(Running, u16)> =
        made.iter().map(|(data, torrent)| start_libtorrent_seeder(torrent, data.parent().expect("src"))).collect();
    let into = work.path().join("leech");
    let torrents: Vec<PathBuf> = made.iter().map(|(_, torrent)| torrent.clone()).collect();
    let mut leecher = Running::start(our_peer(&torrents, &into).arg("--exit-on-complete"));
    let status = leecher.wait(Duration::from_secs(60));
    let lines = leecher.rest_of_stdout(Duration::from_secs(2));
    let tail: Vec<&String> = lines.iter().filter(|line| !line.contains("piece_verified")).collect();
    assert!(status.is_some_and(|status| status.success()), "{tail:?}\n{}", leecher.stderr());
    for (data, _) in &made {
        assert_same_file(data, &into.join(data.file_name().expect("name")));
    }
    assert_eq!(json_events(&lines, "listening").len(), 1, "one port: {tail:?}");
    let complete = json_events(&lines, "stopped").iter().filter(|event| event["complete"] == true).count();
    assert_eq!(complete, 3, "{tail:?}");
}

#[test]
fn libtorrent_downloads_two_torrents_from_our_one_process() {
    if !have_libtorrent() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let (_tracker, announce) = start_tracker();
    // Both torrents' data in one download folder, as one process serves them from one DIR.
    let made: Vec<(PathBuf, PathBuf)> = (0..2)
        .map(|n| {
            let (data, torrent) = torrent(work.path(), &announce, n);
            let together = work.path().join("ours").join(data.file_name().expect("name"));
            std::fs::create_dir_all(together.parent().expect("folder")).expect("mkdir");
            std::fs::copy(&data, &together).expect("copy");
            (data, torrent)
        })
        .collect();
    let torrents: Vec<PathBuf> = made.iter().map(|(_, torrent)| torrent.clone()).collect();
    let mut seeder = Running::start(&mut our_peer(&torrents, &work.path().join("ours")));
    for _ in 0..2 {
        let seeding = seeder.wait_for_line(|line| line.contains("\"seeding\""), Duration::from_secs(30));
        assert!(seeding.is_some(), "our process is not seeding both; stderr:\n{}", seeder.stderr());
    }
    let mut leechers = Vec::new();
    for (n, (_, torrent)) in made.iter().enumerate() {
        let into = work.path().join(format!("lt{n}"));
        std::fs::create_dir_all(&into).expect("mkdir");
        let leecher = Running::start(lt_peer().arg("leech").arg(torrent).arg(&into).args([
            "--port",
            &free_tcp_port().to_string(),
            "--timeout",
            "60",
        ]));
        leechers.push((leecher, into));
    }
    for ((leecher, into), (data, _)) in leechers.iter_mut().zip(&made) {
        expect_libtorrent_complete(leecher, "libtorrent leeching from our one process", || seeder.stderr());
        assert_same_file(data, &into.join(data.file_name().expect("name")));
    }
    seeder.kill();
}
