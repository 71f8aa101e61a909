//! The peer crate's `Session` driven from library code, as the control API will drive it: a torrent paused
//! mid-download hangs up and tells the tracker `stopped`, keeps its pieces, and resumes without checking its
//! data; queries show its state, pieces, files, peers and trackers; a torrent added twice is refused with its
//! name; shutting the session down stops every torrent.

mod common;

use std::time::Duration;

use common::assert_same_file;
use common::library_session::{
    Tracker, eventually, from_seeder, runtime, session_config, start_seeder, start_session, torrent_of,
};
use peer::events::Event;
use peer::session::{Session, State};
use peer::torrent::{TorrentConfig, TorrentError};

#[test]
fn a_paused_torrent_hangs_up_and_resumes_from_its_pieces_without_a_check() {
    let work = tempfile::tempdir().expect("tempdir");
    let tracker = Tracker::start();
    let (data, torrent) = torrent_of(work.path(), "show.bin", 4 << 20, &tracker.announce);
    let info_hash = torrent.info_hash.0;
    let (_seeder, seeder_addr) = start_seeder(&data.with_extension("torrent"), &work.path().join("src"), "1Mi");
    let down = work.path().join("down");

    runtime().block_on(async {
        let session = start_session().await;
        let config = from_seeder(&down, seeder_addr);
        let (events, mut events_rx) = tokio::sync::mpsc::unbounded_channel();
        let run = session.add(torrent, config, events).expect("added");

        let started = eventually(Duration::from_secs(30), || {
            session.torrent(&info_hash).is_some_and(|status| status.status.have >= 4 && status.status.peers == 1)
        })
        .await;
        assert!(started, "no download under way: {:?}", session.torrent(&info_hash));
        assert!(eventually(Duration::from_secs(10), || tracker.scrape(&info_hash).1 == 1).await);

        assert!(session.pause(&info_hash));
        assert!(!session.pause(&info_hash), "paused twice");
        let paused = eventually(Duration::from_secs(2), || {
            session.torrent(&info_hash).is_some_and(|status| status.state == State::Paused && status.status.peers == 0)
        })
        .await;
        let status = session.torrent(&info_hash).expect("in the session");
        assert!(paused, "not paused within 2 s: {status:?}");
        let kept = status.status.have;
        assert!(kept >= 4 && kept < status.status.total, "{status:?}");
        assert!(status.peers.is_empty());
        assert_eq!(status.files.len(), 1);
        assert_eq!(status.files[0].done, u64::from(kept) * (1 << 16), "the file's verified bytes: {status:?}");
        assert!(
            eventually(Duration::from_secs(2), || tracker.scrape(&info_hash).1 == 0).await,
            "the tracker still counts the paused torrent: no `stopped`"
        );
        // What the torrent said up to now; after the resume it must say nothing of checking.
        let mut before = Vec::new();
        while let Ok((torrent, event)) = events_rx.try_recv() {
            assert_eq!(torrent, info_hash, "every event names its torrent");
            before.push(event);
        }
        assert_eq!(before.iter().filter(|event| matches!(event, Event::Checked { .. })).count(), 1);

        assert!(session.resume(&info_hash));
        let complete = eventually(Duration::from_secs(30), || {
            session.torrent(&info_hash).is_some_and(|status| status.state == State::Seeding)
        })
        .await;
        let status = session.torrent(&info_hash).expect("in the session");
        assert!(complete, "not seeding 30 s after the resume: {status:?}");
        assert_eq!(status.status.have, status.status.total);
        assert_eq!(status.status.left, 0);
        assert_eq!(status.files[0].done, status.files[0].length);
        assert_eq!(status.files[0].path, down.join("show.bin"));
        assert!(status.status.downloaded >= status.size - u64::from(kept) * (1 << 16));
        assert_eq!(status.trackers.len(), 1);
        assert_eq!(status.trackers[0].url, tracker.announce);
        assert!(matches!(status.trackers[0].last, Some(Ok(_))), "{:?}", status.trackers);
        assert_same_file(&data, &down.join("show.bin"));
        let mut after = Vec::new();
        while let Ok((_, event)) = events_rx.try_recv() {
            after.push(event);
        }
        assert!(
            !after.iter().any(|event| matches!(event, Event::Checking { .. } | Event::Checked { .. })),
            "the resume checked the data again"
        );
        assert!(after.contains(&Event::Complete));

        session.shutdown().await;
        let outcome = run.await.expect("the torrent's task").expect("a clean end");
        assert!(outcome.complete);
        assert_eq!(session.torrent(&info_hash).expect("still listed").state, State::Stopped);
    });
}

#[test]
fn a_torrent_added_twice_is_refused_with_its_name_and_the_first_runs_on() {
    let work = tempfile::tempdir().expect("tempdir");
    let (_, torrent) = torrent_of(work.path(), "twice.bin", 100_000, "udp://127.0.0.1:9/announce");
    runtime().block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let session = Session::start(session_config(), listener).expect("a session");
        let (events, _events_rx) = tokio::sync::mpsc::unbounded_channel();
        let first = session.add(torrent.clone(), TorrentConfig::new(work.path().join("src")), events.clone());
        let first = first.expect("added");
        let refused = session.add(torrent.clone(), TorrentConfig::new(work.path().join("other")), events);
        let err = refused.expect_err("a second copy is refused");
        assert!(matches!(err, TorrentError::Duplicate { .. }));
        assert!(err.to_string().contains("twice.bin"), "{err}");
        assert_eq!(session.len(), 1);
        let seeding = eventually(Duration::from_secs(10), || {
            session.torrent(&torrent.info_hash.0).is_some_and(|status| status.state == State::Seeding)
        })
        .await;
        assert!(seeding, "{:?}", session.torrent(&torrent.info_hash.0));
        assert!(!work.path().join("other").exists(), "the refused copy wrote something");
        session.shutdown().await;
        assert!(first.await.expect("task").expect("clean").complete);
        let late =
            session.add(torrent, TorrentConfig::new(work.path().join("src")), tokio::sync::mpsc::unbounded_channel().0);
        assert!(matches!(late, Err(TorrentError::SessionClosed)));
    });
}

#[test]
fn the_sessions_connection_limit_holds_across_its_torrents_and_each_gets_its_turn() {
    let work = tempfile::tempdir().expect("tempdir");
    let tracker = Tracker::start();
    let (first_data, first) = torrent_of(work.path(), "first.bin", 2 << 20, &tracker.announce);
    let (second_data, second) = torrent_of(work.path(), "second.bin", 2 << 20, &tracker.announce);
    let hashes = [first.info_hash.0, second.info_hash.0];
    // Each torrent has a seeder of its own; 2 MiB at 2 MiB/s takes about a second each.
    let (_one, one_addr) = start_seeder(&first_data.with_extension("torrent"), &work.path().join("src"), "2Mi");
    let (_two, two_addr) = start_seeder(&second_data.with_extension("torrent"), &work.path().join("src"), "2Mi");
    let down = work.path().join("down");

    runtime().block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let mut config = session_config();
        config.max_connections = 1;
        let session = Session::start(config, listener).expect("a session");
        let (events, _events_rx) = tokio::sync::mpsc::unbounded_channel();
        for (torrent, seeder) in [(first, one_addr), (second, two_addr)] {
            let mut config = TorrentConfig::new(down.clone());
            config.peers.push((seeder, peer::sources::Source::Manual));
            drop(session.add(torrent, config, events.clone()).expect("added"));
        }
        let (mut most, mut samples) = (0, 0);
        let both = eventually(Duration::from_secs(60), || {
            let statuses = session.torrents();
            let connected: usize = statuses.iter().map(|status| status.status.peers).sum();
            most = most.max(connected).max(session.connections());
            samples += 1;
            statuses.iter().all(|status| status.state == State::Seeding)
        })
        .await;
        assert!(
            both,
            "not both complete: {:?}",
            session.torrents().iter().map(|s| (&s.name, &s.state, s.status.have)).collect::<Vec<_>>()
        );
        assert_eq!(most, 1, "at most one connection at a time over {samples} samples");
        for hash in &hashes {
            assert!(session.torrent(hash).is_some_and(|status| status.status.left == 0));
        }
        session.shutdown().await;
        assert_eq!(session.connections(), 0, "every connection given back");
    });
    assert_same_file(&first_data, &down.join("first.bin"));
    assert_same_file(&second_data, &down.join("second.bin"));
}
