//! A torrent's own rate limit in the peer crate's `Session`: it holds the torrent's download to its rate (whatever
//! the seeder could send), shows in the torrent's status, and lifting it mid-download lets the rest come at once.

mod common;

use std::time::{Duration, Instant};

use common::assert_same_file;
use common::library_session::{Tracker, eventually, from_seeder, runtime, start_seeder, start_session, torrent_of};
use peer::session::State;

#[test]
fn a_torrents_own_download_limit_holds_and_can_be_lifted_while_it_runs() {
    let work = tempfile::tempdir().expect("tempdir");
    let tracker = Tracker::start();
    let (data, torrent) = torrent_of(work.path(), "limited.bin", 4 << 20, &tracker.announce);
    let info_hash = torrent.info_hash.0;
    // The seeder sends as fast as loopback goes: only the torrent's own limit holds it.
    let (_seeder, seeder_addr) = start_seeder(&data.with_extension("torrent"), &work.path().join("src"), "64Mi");
    let down = work.path().join("down");
    const LIMIT: u64 = 512 * 1024;

    runtime().block_on(async {
        let session = start_session().await;
        let mut config = from_seeder(&down, seeder_addr);
        config.download_limit = Some(LIMIT);
        let (events, _events_rx) = tokio::sync::mpsc::unbounded_channel();
        let _run = session.add(torrent, config, events).expect("added");
        let downloaded = || session.torrent(&info_hash).map_or(0, |status| status.status.downloaded);

        assert!(eventually(Duration::from_secs(20), || downloaded() > 0).await, "nothing came");
        let (from, at) = (downloaded(), Instant::now());
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (moved, took) = (downloaded() - from, at.elapsed());
        let status = session.torrent(&info_hash).expect("in the session");
        assert_eq!((status.download_limit, status.upload_limit), (Some(LIMIT), None));
        // The rate over the time, a quarter second's burst and one read slice of slack.
        let most = LIMIT as f64 * took.as_secs_f64() + LIMIT as f64 / 2.0;
        eprintln!("{moved} bytes in {:.2} s under a {LIMIT} B/s limit", took.as_secs_f64());
        assert!((moved as f64) <= most, "{moved} bytes in {took:?} under {LIMIT} B/s");
        assert!(status.state == State::Downloading, "{status:?}");

        assert!(session.set_limits(&info_hash, None, None));
        assert!(!session.set_limits(&[0; 20], None, None), "no such torrent");
        let done = eventually(Duration::from_secs(20), || {
            session.torrent(&info_hash).is_some_and(|status| status.state == State::Seeding)
        })
        .await;
        assert!(done, "not complete 20 s after the limit was lifted: {:?}", session.torrent(&info_hash));
        assert_eq!(session.torrent(&info_hash).expect("in the session").download_limit, None);
        assert_same_file(&data, &down.join("limited.bin"));
        session.shutdown().await;
    });
}
