//! End-to-end: fast resume. A seeder killed with SIGKILL restarts from its fast-resume state without reading its
//! data (bytes read counted in /proc/PID/io, with memory maps off so that reads are counted); a file changed while
//! it was stopped is checked again and its bad piece fetched anew; a corrupt state file is reported and the data
//! checked, never trusted.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::process::Running;
use common::{assert_same_file, bin, free_udp_port, json_events, make_torrent, write_pseudo_random};

/// `peer 0 TORRENT --dir DIR --json`, memory maps off (so every byte the check reads shows in `rchar`).
fn our_peer(torrent: &Path, dir: &Path) -> Command {
    let mut command = Command::new(bin("peer"));
    command.env("BT_MMAP", "0").args(["--no-dht", "--no-lsd", "--json", "--bind", "127.0.0.1", "0"]);
    command.arg(torrent).arg("--dir").arg(dir).args(["--tracker-timeout", "0.5"]);
    command
}

/// Bytes the process has read through system calls so far (`rchar` of /proc/PID/io).
fn bytes_read(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).expect("/proc/PID/io");
    let line = io.lines().find(|line| line.starts_with("rchar:")).expect("rchar");
    line["rchar:".len()..].trim().parse().expect("a number")
}

/// Waits for the `checked` event and returns it.
fn checked(peer: &mut Running) -> serde_json::Value {
    let line = peer.wait_for_line(|line| line.contains("\"checked\""), Duration::from_secs(30));
    let line = line.unwrap_or_else(|| panic!("no checked event; stderr:\n{}", peer.stderr()));
    serde_json::from_str(&line).expect("json")
}

/// A folder of two files (5 MiB and 3 MiB + 5) and its torrent, 256 KiB pieces.
fn album(dir: &Path) -> (PathBuf, PathBuf) {
    let root = dir.join("src").join("album");
    write_pseudo_random(&root.join("one.bin"), 5 << 20, 41);
    write_pseudo_random(&root.join("two.bin"), (3 << 20) + 5, 42);
    let (torrent, _) = make_torrent(&root, &format!("udp://127.0.0.1:{}/announce", free_udp_port()), 18);
    (root, torrent)
}

#[test]
fn a_seeder_killed_restarts_without_reading_its_data_and_a_changed_file_is_checked_again() {
    let work = tempfile::tempdir().expect("tempdir");
    let (root, torrent) = album(work.path());
    let src = root.parent().expect("src").to_path_buf();
    let size = (8 << 20) + 5;

    // The first start reads everything, then writes the state.
    let mut first = Running::start(&mut our_peer(&torrent, &src));
    let event = checked(&mut first);
    assert_eq!((event["have"].as_u64(), event["resumed"].as_bool()), (Some(33), Some(false)), "{event}");
    assert!(first.wait_for_line(|line| line.contains("\"seeding\""), Duration::from_secs(30)).is_some());
    let read_first = bytes_read(first.pid());
    assert!(read_first >= size, "the check read {read_first} bytes of {size}");
    let state = src.join(".peer-resume");
    assert!(state.is_dir(), "no fast-resume state under {}", src.display());
    first.kill();

    // Killed while seeding: the restart trusts the state, reads next to nothing, and seeds.
    let mut second = Running::start(&mut our_peer(&torrent, &src));
    let event = checked(&mut second);
    assert_eq!((event["have"].as_u64(), event["resumed"].as_bool()), (Some(33), Some(true)), "{event}");
    let read_second = bytes_read(second.pid());
    eprintln!("start-up reads: {read_first} bytes with a check, {read_second} bytes from the fast-resume state");
    assert!(read_second < size / 16, "the resumed start read {read_second} bytes");
    let lines = second.rest_of_stdout(Duration::from_millis(500));
    assert!(json_events(&lines, "checking").is_empty(), "a resumed start checked the data: {lines:?}");
    second.kill();

    // A byte of two.bin changed while stopped (its modification time moves with it): the data is checked again
    // and the bad piece is missing; a seeder of the intact album supplies it.
    let intact = work.path().join("intact");
    std::fs::create_dir_all(intact.join("album")).expect("mkdir");
    for name in ["one.bin", "two.bin"] {
        std::fs::copy(root.join(name), intact.join("album").join(name)).expect("copy");
    }
    let mut bytes = std::fs::read(root.join("two.bin")).expect("read");
    bytes[1 << 20] ^= 0xff;
    std::fs::write(root.join("two.bin"), &bytes).expect("write");
    let (mut other, other_addr) = Running::start_listening(
        Command::new(bin("peer"))
            .args(["--no-dht", "--no-lsd", "--no-resume", "0"])
            .arg(&torrent)
            .arg("--dir")
            .arg(&intact),
    );
    let mut third = Running::start(
        our_peer(&torrent, &src)
            .arg("--peer")
            .arg(format!("127.0.0.1:{}", other_addr.port()))
            .arg("--exit-on-complete"),
    );
    let event = checked(&mut third);
    assert_eq!((event["have"].as_u64(), event["resumed"].as_bool()), (Some(32), Some(false)), "{event}");
    assert!(third.stderr().contains("two.bin changed since"), "{}", third.stderr());
    let status = third.wait(Duration::from_secs(30));
    assert!(status.is_some_and(|status| status.success()), "{}", third.stderr());
    assert_same_file(&intact.join("album").join("two.bin"), &root.join("two.bin"));
    other.kill();

    // A corrupt state file: reported, and the data checked.
    for entry in std::fs::read_dir(&state).expect("list") {
        std::fs::write(entry.expect("entry").path(), b"d6:formati1ee").expect("corrupt");
    }
    let mut fourth = Running::start(&mut our_peer(&torrent, &src));
    let event = checked(&mut fourth);
    assert_eq!((event["have"].as_u64(), event["resumed"].as_bool()), (Some(33), Some(false)), "{event}");
    assert!(fourth.stderr().contains("is not used: the field `format`"), "{}", fourth.stderr());
    fourth.kill();
}
