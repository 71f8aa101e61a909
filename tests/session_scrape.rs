//! Scrapes from the peer crate's `Session`, batched by tracker: the torrents that name one UDP tracker are asked
//! about in one request (BEP 15), and each gets the tracker's counts.

mod common;

use std::time::Duration;

use common::library_session::{Tracker, eventually, runtime, start_session, torrent_of};
use peer::torrent::TorrentConfig;

#[test]
fn the_torrents_naming_one_tracker_are_scraped_in_one_request() {
    let work = tempfile::tempdir().expect("tempdir");
    let tracker = Tracker::start();
    let torrents: Vec<metainfo::Torrent> =
        (0..3).map(|n| torrent_of(work.path(), &format!("part-{n}.bin"), 100_000 + n, &tracker.announce).1).collect();
    let hashes: Vec<[u8; 20]> = torrents.iter().map(|torrent| torrent.info_hash.0).collect();

    runtime().block_on(async {
        let session = start_session().await;
        let (events, _events_rx) = tokio::sync::mpsc::unbounded_channel();
        for torrent in torrents {
            // Their data is in place: each seeds, and announces itself as a seeder.
            let _run =
                session.add(torrent, TorrentConfig::new(work.path().join("src")), events.clone()).expect("added");
        }
        let announced = || {
            hashes.iter().all(|hash| {
                session.torrent(hash).is_some_and(|status| status.trackers.iter().any(|tracker| tracker.last.is_some()))
            })
        };
        assert!(eventually(Duration::from_secs(10), announced).await, "not every torrent announced");
        let before = tracker.udp_scrapes();

        let reports = session.scrape().await;

        assert_eq!(tracker.udp_scrapes() - before, 1, "three torrents, one tracker: one scrape request");
        let mut scraped: Vec<[u8; 20]> = reports.iter().map(|report| report.info_hash).collect();
        scraped.sort_unstable();
        let mut expected = hashes.clone();
        expected.sort_unstable();
        assert_eq!(scraped, expected, "one report per torrent");
        for report in &reports {
            assert_eq!(report.tracker, tracker.announce);
            let stats = report.result.as_ref().expect("the tracker answered");
            assert_eq!((stats.seeders, stats.leechers), (1, 0), "our session seeds each: {report:?}");
        }
        session.shutdown().await;
    });
}
