//! A torrent removed from a running session mid-download leaves nothing behind: within 2 s its connections are
//! closed (the seeder sees the hang-up) and the tracker has its `stopped` announce (a scrape no longer counts
//! it), and the process's tokio tasks, open files and threads come back to what they were before it was added.
//! Alone in its test binary, so that no other test's threads or files are counted.

mod common;

use std::time::{Duration, Instant};

use common::library_session::{
    Tracker, eventually, open_fds, runtime, session_config, start_seeder, threads, torrent_of,
};
use peer::session::{Session, State};
use peer::torrent::TorrentConfig;

#[test]
fn removing_a_torrent_mid_download_closes_its_connections_announces_stopped_and_frees_all_it_held() {
    let work = tempfile::tempdir().expect("tempdir");
    let tracker = Tracker::start();
    let (data, torrent) = torrent_of(work.path(), "film.bin", 8 << 20, &tracker.announce);
    let info_hash = torrent.info_hash.0;
    let (_, warm_up) = torrent_of(work.path(), "first.bin", 100_000, &tracker.announce);
    let warm_up_hash = warm_up.info_hash.0;
    // 512 KiB/s: 16 s for the whole file, so the removal comes mid-download.
    let (mut seeder, seeder_addr) = start_seeder(&data.with_extension("torrent"), &work.path().join("src"), "512Ki");
    assert!(tracker.wait_for_leechers(&info_hash, 0, Duration::from_secs(10)));

    let runtime = runtime();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let session = Session::start(session_config(), listener).expect("a session");
        // What the session shares comes with its first torrents and stays (the UDP socket for trackers, its
        // routing task): a torrent that came and went first makes them, so that what is counted below is the
        // removed torrent's alone.
        let (events, _events_rx) = tokio::sync::mpsc::unbounded_channel();
        let first = session.add(warm_up, TorrentConfig::new(work.path().join("src")), events).expect("added");
        let announced = eventually(Duration::from_secs(10), || {
            session.torrent(&warm_up_hash).is_some_and(|status| status.trackers.iter().any(|t| t.last.is_some()))
        })
        .await;
        assert!(announced, "the first torrent never announced: {:?}", session.torrent(&warm_up_hash));
        assert!(session.remove(&warm_up_hash).await);
        first.await.expect("the first torrent's task").expect("a clean end");
        // Let the runtime settle (its workers started, the accept task parked, the first torrent's disk threads
        // gone after their keep-alive) before counting.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let metrics = tokio::runtime::Handle::current().metrics();
        let (tasks_before, fds_before, threads_before) = (metrics.num_alive_tasks(), open_fds(), threads());

        let mut torrent_config = TorrentConfig::new(work.path().join("down"));
        torrent_config.peers.push((seeder_addr, peer::sources::Source::Manual));
        let (events, _events_rx) = tokio::sync::mpsc::unbounded_channel();
        let run = session.add(torrent, torrent_config, events).expect("added");
        let downloading = eventually(Duration::from_secs(30), || {
            session.torrent(&info_hash).is_some_and(|status| status.status.have >= 4 && status.status.peers == 1)
        })
        .await;
        let status = session.torrent(&info_hash).expect("in the session");
        assert!(downloading, "no download under way: {status:?}");
        assert_eq!(status.state, State::Downloading);
        assert!(status.status.have < status.status.total, "finished before the removal: {status:?}");
        assert!(
            eventually(Duration::from_secs(10), || tracker.scrape(&info_hash).1 == 1).await,
            "the tracker never counted the leecher"
        );
        assert!(metrics.num_alive_tasks() > tasks_before, "the torrent runs no task of its own?");

        let removing = Instant::now();
        assert!(session.remove(&info_hash).await, "the torrent was in the session");
        let removed_after = removing.elapsed();
        let outcome = run.await.expect("the torrent's task").expect("a clean end");
        assert!(!outcome.complete);
        assert!(session.torrent(&info_hash).is_none() && session.is_empty());

        let within = Duration::from_secs(2).saturating_sub(removing.elapsed());
        assert!(
            eventually(within, || tracker.scrape(&info_hash).1 == 0).await,
            "the tracker still counts the removed torrent's leecher: no `stopped` within 2 s"
        );
        let within = Duration::from_secs(2).saturating_sub(removing.elapsed());
        let freed = eventually(within, || metrics.num_alive_tasks() == tasks_before && open_fds() == fds_before).await;
        assert!(
            freed,
            "2 s after the removal: {} tasks (before: {tasks_before}), {} fds (before: {fds_before})",
            metrics.num_alive_tasks(),
            open_fds()
        );
        eprintln!(
            "removed in {:?}: {tasks_before} tasks, {fds_before} fds again ({:?} after the removal began)",
            removed_after,
            removing.elapsed()
        );
        // Idle threads of tokio's blocking pool (the check, disk writes) end after their keep-alive (see `runtime`).
        let threads_back = eventually(Duration::from_secs(15), || threads() == threads_before).await;
        assert!(threads_back, "{} threads 15 s after the removal (before: {threads_before})", threads());
        drop(session);
    });

    // The seeder saw every connection of ours end, and goes on seeding.
    let counts = || {
        let log = seeder.stderr();
        (log.matches("peer connected").count(), log.matches("peer disconnected").count())
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    while counts().1 < counts().0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let (connected, disconnected) = counts();
    assert!(
        connected >= 1 && disconnected == connected,
        "the seeder's connections did not all end:\n{}",
        seeder.stderr()
    );
    assert!(seeder.wait(Duration::from_millis(100)).is_none(), "the seeder stopped");
}
