//! Scrapes from the peer crate's `Session`, batched by tracker: the torrents that name one tracker are asked
//! about in one request, over UDP (BEP 15) or HTTP (BEP 48), and each gets the tracker's counts; from our tracker
//! and from Debian's opentracker.

mod common;

use std::time::Duration;

use common::library_session::{Tracker, eventually, runtime, start_session, torrent_of};
use common::{free_tcp_port, free_udp_port, have_opentracker, start_opentracker, start_opentracker_with_http};
use peer::session::Session;
use peer::torrent::TorrentConfig;

/// Adds `torrents` (their data in `dir`) to `session` and waits until each has announced.
async fn add_seeding(session: &Session, torrents: Vec<metainfo::Torrent>, dir: &std::path::Path) {
    let hashes: Vec<[u8; 20]> = torrents.iter().map(|torrent| torrent.info_hash.0).collect();
    let (events, _events_rx) = tokio::sync::mpsc::unbounded_channel();
    for torrent in torrents {
        let _run = session.add(torrent, TorrentConfig::new(dir.to_path_buf()), events.clone()).expect("added");
    }
    let announced = || {
        hashes.iter().all(|hash| {
            session.torrent(hash).is_some_and(|status| status.trackers.iter().any(|tracker| tracker.last.is_some()))
        })
    };
    assert!(eventually(Duration::from_secs(10), announced).await, "not every torrent announced");
}

#[test]
fn the_torrents_naming_one_tracker_are_scraped_in_one_request() {
    let work = tempfile::tempdir().expect("tempdir");
    let tracker = Tracker::start();
    let torrents: Vec<metainfo::Torrent> =
        (0..3).map(|n| torrent_of(work.path(), &format!("part-{n}.bin"), 100_000 + n, &tracker.announce).1).collect();
    let hashes: Vec<[u8; 20]> = torrents.iter().map(|torrent| torrent.info_hash.0).collect();

    runtime().block_on(async {
        let session = start_session().await;
        // Their data is in place: each seeds, and announces itself as a seeder.
        add_seeding(&session, torrents, &work.path().join("src")).await;
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

#[test]
fn opentracker_answers_a_batched_scrape_with_each_torrents_counts() {
    if !have_opentracker() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let udp = free_udp_port();
    let announce = format!("udp://127.0.0.1:{udp}/announce");
    let torrents: Vec<metainfo::Torrent> =
        (0..3).map(|n| torrent_of(work.path(), &format!("ot-{n}.bin"), 90_000 + n, &announce).1).collect();
    let hashes: Vec<[u8; 20]> = torrents.iter().map(|torrent| torrent.info_hash.0).collect();
    let _opentracker = start_opentracker(work.path(), udp, &hashes);

    runtime().block_on(async {
        let session = start_session().await;
        add_seeding(&session, torrents, &work.path().join("src")).await;
        let reports = session.scrape().await;
        assert_eq!(reports.len(), 3, "one report per torrent: {reports:?}");
        for report in &reports {
            assert!(hashes.contains(&report.info_hash));
            let stats = report.result.as_ref().expect("opentracker answered");
            assert_eq!((stats.seeders, stats.leechers), (1, 0), "our session seeds each: {report:?}");
        }
        session.shutdown().await;
    });
}

#[test]
fn the_torrents_naming_one_http_tracker_are_scraped_in_one_request() {
    let work = tempfile::tempdir().expect("tempdir");
    let tracker = Tracker::start();
    let announce = tracker.http_announce();
    let torrents: Vec<metainfo::Torrent> =
        (0..3).map(|n| torrent_of(work.path(), &format!("web-{n}.bin"), 110_000 + n, &announce).1).collect();
    let mut expected: Vec<[u8; 20]> = torrents.iter().map(|torrent| torrent.info_hash.0).collect();
    expected.sort_unstable();

    runtime().block_on(async {
        let session = start_session().await;
        add_seeding(&session, torrents, &work.path().join("src")).await;
        let before = tracker.http_scrapes();

        let reports = session.scrape().await;

        assert_eq!(tracker.http_scrapes() - before, 1, "three torrents, one HTTP tracker: one scrape request");
        let mut scraped: Vec<[u8; 20]> = reports.iter().map(|report| report.info_hash).collect();
        scraped.sort_unstable();
        assert_eq!(scraped, expected, "one report per torrent");
        for report in &reports {
            assert_eq!(report.tracker, announce);
            let stats = report.result.as_ref().expect("the tracker answered");
            assert_eq!((stats.seeders, stats.leechers), (1, 0), "our session seeds each: {report:?}");
        }
        session.shutdown().await;
    });
}

#[test]
fn opentracker_answers_a_batched_http_scrape_with_each_torrents_counts() {
    if !have_opentracker() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let (udp, tcp) = (free_udp_port(), free_tcp_port());
    let announce = format!("http://127.0.0.1:{tcp}/announce");
    let torrents: Vec<metainfo::Torrent> =
        (0..3).map(|n| torrent_of(work.path(), &format!("ot-web-{n}.bin"), 95_000 + n, &announce).1).collect();
    let hashes: Vec<[u8; 20]> = torrents.iter().map(|torrent| torrent.info_hash.0).collect();
    let _opentracker = start_opentracker_with_http(work.path(), udp, tcp, &hashes);

    runtime().block_on(async {
        let session = start_session().await;
        add_seeding(&session, torrents, &work.path().join("src")).await;
        let reports = session.scrape().await;
        assert_eq!(reports.len(), 3, "one report per torrent: {reports:?}");
        for report in &reports {
            assert!(hashes.contains(&report.info_hash));
            assert_eq!(report.tracker, announce);
            let stats = report.result.as_ref().expect("opentracker answered");
            assert_eq!((stats.seeders, stats.leechers), (1, 0), "our session seeds each: {report:?}");
        }
        session.shutdown().await;
    });
}
