//! The session keeps which torrents it holds and how they stand (`SessionConfig::state_dir`), and a new session
//! brings them back with `Session::restore`: a seeding torrent seeds again without a check, a paused one stays
//! paused, a magnet link still fetching its metadata fetches again, a file's priority is kept; a removed torrent
//! is gone for good, and a state file that does not read is named and left out while the others come back.

mod common;

use std::time::Duration;

use common::library_session::{Tracker, eventually, runtime, session_config, torrent_of};
use peer::events::Event;
use peer::selection::Priority;
use peer::session::{Session, State};
use peer::torrent::TorrentConfig;

#[test]
fn a_restarted_session_brings_back_its_torrents_as_they_stood() {
    let work = tempfile::tempdir().expect("tempdir");
    let tracker = Tracker::start();
    let (_, seeding) = torrent_of(work.path(), "seeding.bin", 1 << 20, &tracker.announce);
    let (_, paused) = torrent_of(work.path(), "paused.bin", 1 << 20, &tracker.announce);
    let (seeding_hash, paused_hash) = (seeding.info_hash.0, paused.info_hash.0);
    let link_hash = [0x6c; 20];
    let link = format!("magnet:?xt=urn:btih:{}&dn=nobody-has-it&tr={}", hex::encode(link_hash), tracker.announce);
    let state_dir = work.path().join("state");
    let config = || {
        let mut config = session_config();
        config.state_dir = Some(state_dir.clone());
        config
    };
    let template = TorrentConfig::new(work.path().join("unused"));

    // The first session: one seeding, one paused, one magnet link.
    runtime().block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let session = Session::start(config(), listener).expect("a session");
        let (events, _events_rx) = tokio::sync::mpsc::unbounded_channel();
        let data = work.path().join("src");
        session.add(seeding, TorrentConfig::new(data.clone()), events.clone()).expect("added");
        session.add(paused, TorrentConfig::new(data.clone()), events.clone()).expect("added");
        let magnet = metainfo::parse_magnet(&link).expect("a valid link");
        session.add_magnet(magnet, TorrentConfig::new(work.path().join("links")), events).expect("added");
        assert!(session.pause(&paused_hash));
        let high = [Priority::High];
        assert!(session.set_file_priorities(&seeding_hash, &high).await.expect("no disk trouble"));
        let settled = eventually(Duration::from_secs(20), || {
            session.torrent(&seeding_hash).is_some_and(|status| status.state == State::Seeding)
                && session.torrent(&paused_hash).is_some_and(|status| status.state == State::Paused)
        })
        .await;
        assert!(settled, "{:?}", session.torrents());
        session.shutdown().await;
    });
    // A file that does not read: named, and left out.
    std::fs::write(state_dir.join(format!("{}.state", "ab".repeat(20))), b"d6:format3:bade").expect("write");

    // The second session brings them back.
    runtime().block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let session = Session::start(config(), listener).expect("a session");
        let (events, mut events_rx) = tokio::sync::mpsc::unbounded_channel();
        let restored = session.restore(&template, &events);
        let (back, bad): (Vec<_>, Vec<_>) = restored.into_iter().partition(Result::is_ok);
        let mut back: Vec<[u8; 20]> = back.into_iter().map(|result| result.expect("back").0).collect();
        back.sort_unstable();
        let mut expected = vec![seeding_hash, paused_hash, link_hash];
        expected.sort_unstable();
        assert_eq!(back, expected);
        let bad: Vec<String> = bad.into_iter().map(|result| result.expect_err("bad")).collect();
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert!(bad[0].contains(&"ab".repeat(20)) && bad[0].contains("format"), "{bad:?}");

        let seeding_again = eventually(Duration::from_secs(20), || {
            session.torrent(&seeding_hash).is_some_and(|status| status.state == State::Seeding)
        })
        .await;
        assert!(seeding_again, "{:?}", session.torrent(&seeding_hash));
        let status = |hash| session.torrent(hash).expect("in the session");
        assert_eq!(status(&seeding_hash).files[0].priority, Priority::High);
        assert_eq!(status(&paused_hash).state, State::Paused);
        assert_eq!(status(&paused_hash).files[0].path, work.path().join("src").join("paused.bin"));
        assert_eq!(
            (status(&link_hash).state, status(&link_hash).name),
            (State::FetchingMetadata, "nobody-has-it".into())
        );
        // Seeding again from the fast-resume state, not from a check of the data.
        let mut checked = Vec::new();
        while let Ok((hash, event)) = events_rx.try_recv() {
            if let Event::Checked { resumed, .. } = event {
                checked.push((hash, resumed));
            }
        }
        assert_eq!(checked, vec![(seeding_hash, true)], "only the seeding torrent ran, and trusted its state");

        // Removed: its state files go with it.
        assert!(session.remove(&paused_hash).await);
        session.shutdown().await;
    });
    let left: Vec<String> = std::fs::read_dir(&state_dir)
        .expect("the state folder")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(&hex::encode(paused_hash)))
        .collect();
    assert!(left.is_empty(), "the removed torrent's state is still there: {left:?}");
}
