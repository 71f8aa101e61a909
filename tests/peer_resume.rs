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

/// Waits (up to 60 s) for `count` `checked` events and returns them.
fn all_checked(peer: &mut Running, count: usize) -> Vec<serde_json::Value> {
    let mut events = Vec::new();
    while events.len() < count {
        let line = peer.wait_for_line(|line| line.contains("\"checked\""), Duration::from_secs(60));
        let line =
            line.unwrap_or_else(|| panic!("{} checked events of {count}; stderr:\n{}", events.len(), peer.stderr()));
        events.push(serde_json::from_str(&line).expect("json"));
    }
    events
}

#[test]
fn two_hundred_seeding_torrents_killed_restart_from_their_state_and_only_a_changed_one_is_checked() {
    const TORRENTS: usize = 200;
    const SIZE: usize = 40_000;
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("src");
    let announce = format!("udp://127.0.0.1:{}/announce", free_udp_port());
    let torrents: Vec<(PathBuf, PathBuf)> = (0..TORRENTS)
        .map(|n| {
            let data = src.join(format!("f{n:03}.bin"));
            write_pseudo_random(&data, SIZE, 1000 + n as u64);
            let (torrent, _) = make_torrent(&data, &announce, 14);
            let moved = work.path().join(format!("f{n:03}.torrent"));
            std::fs::rename(&torrent, &moved).expect("move the torrent");
            (data, moved)
        })
        .collect();
    let all = |command: &mut Command| {
        for (_, torrent) in &torrents {
            command.arg(torrent);
        }
    };
    let start = |extra: &[String]| {
        let mut command = Command::new(bin("peer"));
        command.env("BT_MMAP", "0").args(["--no-dht", "--no-lsd", "--json", "--bind", "127.0.0.1", "0"]);
        all(&mut command);
        command.arg("--dir").arg(&src).args(["--tracker-timeout", "0.5"]).args(extra);
        Running::start(&mut command)
    };

    // The first start checks everything and writes a state per torrent.
    let mut first = start(&[]);
    let events = all_checked(&mut first, TORRENTS);
    assert!(events.iter().all(|event| event["resumed"] == false && event["have"] == event["total"]));
    let state = src.join(".peer-resume");
    // Whole states only: a save in progress is a temporary file beside them.
    let saved = || {
        std::fs::read_dir(&state).map_or(0, |entries| {
            entries
                .filter_map(Result::ok)
                .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "resume"))
                .count()
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while saved() < TORRENTS && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(saved(), TORRENTS, "fast-resume states written");
    first.kill();

    // One file changed while nobody ran (same size; its modification time moves).
    let changed = &torrents[7].0;
    let intact = work.path().join("intact");
    std::fs::create_dir_all(&intact).expect("mkdir");
    std::fs::copy(changed, intact.join("f007.bin")).expect("copy");
    let mut bytes = std::fs::read(changed).expect("read");
    bytes[SIZE / 2] ^= 0xff;
    std::fs::write(changed, &bytes).expect("write");
    let (mut other, other_addr) = Running::start_listening(
        Command::new(bin("peer"))
            .args(["--no-dht", "--no-lsd", "--no-resume", "0"])
            .arg(&torrents[7].1)
            .arg("--dir")
            .arg(&intact),
    );

    // The restart trusts 199 states without reading their data, checks the changed file alone, and fetches its
    // bad piece from the seeder of the intact copy.
    let mut second = start(&["--peer".to_owned(), format!("127.0.0.1:{}", other_addr.port())]);
    let events = all_checked(&mut second, TORRENTS);
    let read = bytes_read(second.pid());
    let resumed = events.iter().filter(|event| event["resumed"] == true && event["have"] == event["total"]).count();
    let checked: Vec<&serde_json::Value> = events.iter().filter(|event| event["resumed"] == false).collect();
    eprintln!("restart of {TORRENTS} torrents: {read} bytes read, {resumed} resumed, {} checked", checked.len());
    let reasons: Vec<String> =
        second.stderr().lines().filter(|line| line.contains("is not used")).map(str::to_owned).collect();
    assert_eq!(resumed, TORRENTS - 1, "checked: {checked:?}; why: {reasons:?}");
    assert_eq!(checked.len(), 1, "{checked:?}");
    assert_eq!(checked[0]["have"].as_u64(), checked[0]["total"].as_u64().map(|total| total - 1), "{checked:?}");
    // The data is 8 MB; the states, the torrents and the one changed file are what a restart may read.
    assert!(read < (TORRENTS * SIZE / 8) as u64, "the restart read {read} bytes");
    let completed = second.wait_for_line(|line| line.contains("\"complete\""), Duration::from_secs(30));
    assert!(completed.is_some(), "the changed file's piece was not fetched again; stderr:\n{}", second.stderr());
    let restored = std::time::Instant::now() + Duration::from_secs(5);
    while std::fs::read(changed).ok() != std::fs::read(intact.join("f007.bin")).ok()
        && std::time::Instant::now() < restored
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_same_file(&intact.join("f007.bin"), changed);
    second.kill();
    other.kill();
}
