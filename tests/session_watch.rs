//! Issue 24: a watched folder, as transmission-daemon's: a .torrent that appears is added to the session and
//! renamed `.added`; one that does not parse is renamed `.invalid`; one still being written is left until it holds
//! still; other files are left alone.

mod common;

use std::sync::Arc;

use common::library_session::{Tracker, runtime, start_session, torrent_of};
use peer::torrent::TorrentConfig;
use peer::watch::{Taken, Watch};

#[test]
fn a_torrent_dropped_in_the_folder_is_added_and_a_bad_one_marked_invalid() {
    let work = tempfile::tempdir().expect("tempdir");
    let tracker = Tracker::start();
    let (data, torrent) = torrent_of(work.path(), "dropped.bin", 300_000, &tracker.announce);
    let torrent_file = data.with_extension("torrent");
    let folder = work.path().join("watch");
    std::fs::create_dir_all(&folder).expect("mkdir");

    runtime().block_on(async {
        let session = start_session().await;
        let (events, _events_rx) = tokio::sync::mpsc::unbounded_channel();
        let config = Arc::new(TorrentConfig::new(work.path().join("src")));
        let mut watch = Watch::default();
        let mut look = || watch.look(&folder, &session, &config, &events);

        std::fs::copy(&torrent_file, folder.join("dropped.torrent")).expect("drop the torrent");
        std::fs::write(folder.join("junk.torrent"), b"d4:infoi3ee").expect("drop junk");
        std::fs::write(folder.join("notes.txt"), b"not a torrent").expect("a note");
        // Half a torrent: still being copied in.
        let bytes = std::fs::read(&torrent_file).expect("read");
        std::fs::write(folder.join("slow.torrent"), &bytes[..bytes.len() / 2]).expect("half");

        assert!(look().is_empty(), "nothing is taken at first sight");
        std::fs::write(folder.join("slow.torrent"), &bytes[..bytes.len() * 3 / 4]).expect("more");
        let mut taken = look();
        taken.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(taken.len(), 2, "the two that held still: {taken:?}");
        assert_eq!(taken[0].0, folder.join("dropped.torrent"));
        assert_eq!(taken[0].1, Taken::Added(torrent.info_hash.0));
        assert!(matches!(&taken[1].1, Taken::Invalid(reason) if !reason.is_empty()), "{taken:?}");
        assert!(folder.join("dropped.torrent.added").exists() && !folder.join("dropped.torrent").exists());
        assert!(folder.join("junk.torrent.invalid").exists());
        assert!(folder.join("notes.txt").exists(), "other files are left alone");
        assert!(session.torrent(&torrent.info_hash.0).is_some(), "the torrent is in the session");

        // The slow one, now whole: taken once it holds still; it is the same torrent, so a duplicate.
        std::fs::write(folder.join("slow.torrent"), &bytes).expect("whole");
        assert!(look().is_empty(), "it changed since the last look");
        let taken = look();
        assert_eq!(taken, vec![(folder.join("slow.torrent"), Taken::Duplicate(torrent.info_hash.0))]);
        assert!(folder.join("slow.torrent.added").exists());
        assert!(look().is_empty(), "nothing twice");
        session.shutdown().await;
    });
}

/// `peer --watch FOLDER` with no torrent named: it runs, and a torrent dropped in the folder is added, seeded from
/// the data already in DIR (the fast check finds it complete), and renamed `.added`.
#[test]
fn peer_watch_adds_what_is_dropped_in_the_folder() {
    use std::process::Command;
    use std::time::{Duration, Instant};

    let work = tempfile::tempdir().expect("tempdir");
    let tracker = Tracker::start();
    let (data, _) = torrent_of(work.path(), "watched.bin", 200_000, &tracker.announce);
    let folder = work.path().join("watch");
    std::fs::create_dir_all(&folder).expect("mkdir");
    let (mut peer, _) = common::process::Running::start_listening(
        Command::new(common::bin("peer"))
            .args(["--no-dht", "--no-lsd", "--bind", "127.0.0.1", "--json", "0", "--watch"])
            .arg(&folder)
            .arg("--dir")
            .arg(work.path().join("src")),
    );
    std::fs::copy(data.with_extension("torrent"), folder.join("watched.torrent")).expect("drop it");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !folder.join("watched.torrent.added").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(folder.join("watched.torrent.added").exists(), "not taken up: {}", peer.stderr());
    let seeding = peer.wait_for_line(|line| line.contains("\"event\":\"seeding\""), Duration::from_secs(20));
    assert!(seeding.is_some(), "the dropped torrent did not seed: {}", peer.stderr());
}
