//! A download into a filesystem that fills up, for real: a tmpfs the test mounts (as root) with too little room.
//! The peer must say which file and how much room it needs, keep and seed what it verified, and finish once the
//! room is there.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::process::Running;
use common::{bin, free_udp_port, make_torrent, write_pseudo_random};

const PIECE_LOG2: u32 = 15;

/// A tmpfs of `size` mounted at a folder; unmounted when dropped.
struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    /// Mounts it, or says why it cannot: mounting needs root (or a mount namespace) and a kernel that allows it.
    fn mount(path: &Path, size: &str) -> Result<SmallDisk, String> {
        std::fs::create_dir_all(path).map_err(|err| format!("mkdir {}: {err}", path.display()))?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|err| format!("running mount: {err}"))?;
        if !output.status.success() {
            return Err(format!("mount -t tmpfs failed: {}", String::from_utf8_lossy(&output.stderr).trim()));
        }
        Ok(SmallDisk { path: path.to_path_buf() })
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.path)
            .status()
            .expect("run mount");
        assert!(status.success(), "remounting {} with size {size} failed", self.path.display());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

fn json(line: &str) -> Option<serde_json::Value> {
    serde_json::from_str(line).ok()
}

fn is_event(line: &str, kind: &str) -> bool {
    json(line).is_some_and(|event| event["event"] == kind)
}

/// Waits for the next JSON event of `kind` on `peer`'s stdout, failing with its stderr after `timeout`.
fn expect_event(peer: &mut Running, kind: &str, timeout: Duration) -> serde_json::Value {
    let line = peer.wait_for_line(|line| is_event(line, kind), timeout);
    line.and_then(|line| json(&line))
        .unwrap_or_else(|| panic!("no {kind} event in {timeout:?}; stderr:\n{}", peer.stderr()))
}

fn peer(torrent: &Path, dir: &Path) -> Command {
    let mut command = Command::new(bin("peer"));
    command.args(["--no-dht", "--no-lsd"]);
    command.arg("0").arg(torrent).arg("--dir").arg(dir).args(["--bind", "127.0.0.1", "--json"]);
    command.args(["--tracker-timeout", "0.5"]);
    command
}

#[test]
fn a_full_disk_pauses_the_download_keeps_what_was_verified_seeding_and_resumes_when_there_is_room() {
    let work = tempfile::tempdir().expect("tempdir");
    let disk = match SmallDisk::mount(&work.path().join("disk"), "2m") {
        Ok(disk) => disk,
        Err(why) => {
            let ci = std::env::var("CI").is_ok_and(|value| !value.is_empty() && value != "false" && value != "0");
            assert!(!ci, "CI is set but a test filesystem cannot be mounted: {why}");
            eprintln!("\n*** SKIPPING the full-disk test: {why} (run as root to include it). ***\n");
            return;
        }
    };
    let port = free_udp_port();
    let (_tracker, _) = Running::start_listening(
        Command::new(bin("tracker")).args(["--open", "--interval", "5", "--bind"]).arg(format!("127.0.0.1:{port}")),
    );
    let len = 5 * 1024 * 1024 + 1000;
    let data = work.path().join("src").join("big.bin");
    write_pseudo_random(&data, len, 11);
    let (torrent, _) = make_torrent(&data, &format!("udp://127.0.0.1:{port}/announce"), PIECE_LOG2);

    let mut seeder = Running::start(&mut peer(&torrent, &work.path().join("src")));
    expect_event(&mut seeder, "seeding", Duration::from_secs(20));
    let mut leecher = Running::start(peer(&torrent, &disk.path).arg("--exit-on-complete"));
    let listening = expect_event(&mut leecher, "listening", Duration::from_secs(10));
    let leecher_addr = listening["address"].as_str().expect("address").to_owned();

    // 2 MiB of room for 5 MiB: the disk fills, and the peer says where and how much it needs.
    let full = expect_event(&mut leecher, "disk_full", Duration::from_secs(30));
    let path = full["path"].as_str().expect("path");
    assert_eq!(Path::new(path), disk.path.join("big.bin"), "the message names the file: {full}");
    let (free, needed) = (full["free"].as_u64().expect("free"), full["needed"].as_u64().expect("needed"));
    assert!(free < 64 * 1024, "the disk is full but {free} bytes are said to be free");
    assert!(needed >= len as u64 - 2 * 1024 * 1024 && needed < len as u64, "needed {needed} of {len}");
    assert!(leecher.wait(Duration::from_millis(500)).is_none(), "a full disk must not end the session");

    // With the only seeder gone, a newcomer can get the verified pieces from the paused leecher alone.
    drop(seeder);
    let newcomer_dir = work.path().join("newcomer");
    let mut newcomer = Running::start(peer(&torrent, &newcomer_dir).args(["--peer", &leecher_addr]));
    for _ in 0..8 {
        expect_event(&mut newcomer, "piece_verified", Duration::from_secs(20));
    }
    drop(newcomer);

    // Room again, and the seeder back: the paused download resumes and finishes, every byte right.
    disk.resize("16m");
    let mut seeder = Running::start(&mut peer(&torrent, &work.path().join("src")));
    expect_event(&mut seeder, "seeding", Duration::from_secs(20));
    expect_event(&mut leecher, "disk_room", Duration::from_secs(10));
    let status = leecher.wait(Duration::from_secs(60));
    assert!(status.is_some_and(|status| status.success()), "the leecher did not finish: {}", leecher.stderr());
    let copy = std::fs::read(disk.path.join("big.bin")).expect("the download");
    assert!(copy == std::fs::read(&data).expect("the original"), "the download differs from the original");
}
