//! A seeding torrent with nobody to serve dozes off: the session lets go of its swarm and announcers (its tokio
//! tasks end) while the tracker still counts it as a seeder (no `stopped`). A leecher that dials it wakes it and
//! downloads the file byte for byte; the seeding notice is said once over all its dozes; and removing it while
//! it dozes tells the tracker `stopped` within 2 s.

mod common;

use std::time::{Duration, Instant};

use common::library_session::{Tracker, eventually, runtime, session_config, torrent_of};
use peer::events::Event;
use peer::session::{Session, State};
use peer::torrent::TorrentConfig;

async fn session_dozing_after(doze_after: Option<Duration>) -> Session {
    let mut config = session_config();
    config.doze_after = doze_after;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    Session::start(config, listener).expect("a session")
}

#[test]
fn an_idle_seeder_dozes_and_a_leecher_that_dials_it_wakes_it_and_downloads() {
    let work = tempfile::tempdir().expect("tempdir");
    let tracker = Tracker::start();
    let (data, torrent) = torrent_of(work.path(), "album.bin", 3 << 20, &tracker.announce);
    let info_hash = torrent.info_hash.0;

    runtime().block_on(async {
        let seeder = session_dozing_after(Some(Duration::from_millis(500))).await;
        let metrics = tokio::runtime::Handle::current().metrics();
        let (events, mut seeder_events) = tokio::sync::mpsc::unbounded_channel();
        let seeding = seeder.add(torrent.clone(), TorrentConfig::new(work.path().join("src")), events).expect("added");

        // It announces, says it seeds, and with nobody around dozes off.
        assert!(
            eventually(Duration::from_secs(15), || seeder.dozing() == 1).await,
            "the idle seeder never dozed: {:?}",
            seeder.torrent(&info_hash)
        );
        let status = seeder.torrent(&info_hash).expect("in the session");
        assert_eq!(status.state, State::Seeding, "a dozing torrent reads as seeding: {status:?}");
        assert!(
            status.trackers.iter().any(|tracker| matches!(tracker.last, Some(Ok(_)))),
            "the tracker's last answer is kept through the doze: {status:?}"
        );
        assert_eq!(tracker.scrape(&info_hash), (1, 0), "dozing is not stopping: the tracker counts the seeder");
        // Its swarm's tasks (one per tracker tier) are gone; its own task waits.
        let dozing_tasks = metrics.num_alive_tasks();

        // A leecher in another session, told of the seeder by the tracker alone.
        let leecher = session_dozing_after(None).await;
        let (events, _leecher_events) = tokio::sync::mpsc::unbounded_channel();
        let download = leecher.add(torrent, TorrentConfig::new(work.path().join("down")), events).expect("added");
        assert!(
            eventually(Duration::from_secs(30), || {
                leecher.torrent(&info_hash).is_some_and(|status| status.state == State::Seeding)
            })
            .await,
            "the leecher never finished: leecher {:?}, seeder {:?}",
            leecher.torrent(&info_hash),
            seeder.torrent(&info_hash)
        );
        let got = std::fs::read(work.path().join("down").join("album.bin")).expect("the downloaded file");
        assert!(got == std::fs::read(&data).expect("the original"), "the download differs from the original");
        assert!(leecher.remove(&info_hash).await);
        download.await.expect("the leecher's task").expect("a clean end");

        // Once the leecher is gone, the seeder dozes again; it said it seeds once, at its first start.
        assert!(
            eventually(Duration::from_secs(15), || seeder.dozing() == 1).await,
            "the seeder did not doze again: {:?}",
            seeder.torrent(&info_hash)
        );
        drop(leecher);
        assert!(
            eventually(Duration::from_secs(5), || metrics.num_alive_tasks() <= dozing_tasks).await,
            "the woken run left tasks behind: {} alive, {dozing_tasks} while it dozed before",
            metrics.num_alive_tasks()
        );
        let mut seeding_said = 0;
        while let Ok((_, event)) = seeder_events.try_recv() {
            seeding_said += usize::from(matches!(event, Event::Seeding));
        }
        assert_eq!(seeding_said, 1, "the seeding notice is said once, not at each waking");

        // Removed while it dozes: the tracker hears `stopped`.
        let removing = Instant::now();
        assert!(seeder.remove(&info_hash).await);
        let outcome = seeding.await.expect("the seeder's task").expect("a clean end");
        assert!(outcome.complete);
        assert!(outcome.uploaded >= 3 << 20, "the outcome counts the upload of the woken run: {outcome:?}");
        let within = Duration::from_secs(2).saturating_sub(removing.elapsed());
        assert!(
            eventually(within, || tracker.scrape(&info_hash).0 == 0).await,
            "the tracker still counts the removed seeder: no `stopped` within 2 s"
        );
    });
}
