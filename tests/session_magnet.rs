//! A magnet link in the peer crate's `Session`: fetching its metadata is the torrent's first state, seen by the
//! queries, paused, resumed and removed like any other; the peers that dial the session for its info-hash are
//! answered by the fetch, and refused once it is removed; once the metadata is in, the torrent downloads and
//! seeds under the same entry, its .torrent saved in its folder.

mod common;

use std::time::Duration;

use common::assert_same_file;
use common::library_session::{
    Tracker, eventually, from_seeder, open_fds, runtime, session_config, start_seeder, start_session, torrent_of,
};
use peer::events::Event;
use peer::session::{Session, State};
use peer::torrent::{TorrentConfig, TorrentError};
use peer_wire::{HANDSHAKE_LEN, Handshake, ReservedBit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Dials the session for `info_hash`: the handshake it answers with, or `None` when it hangs up instead.
async fn knock(session: &Session, info_hash: [u8; 20]) -> Option<Handshake> {
    let mut stream = tokio::net::TcpStream::connect(session.listen_addr()).await.expect("connect to the session");
    let mut hello = Handshake::new(info_hash, *b"-XX0001-knocking0000");
    hello.set(ReservedBit::EXTENSION_PROTOCOL, true);
    stream.write_all(&hello.encode()).await.expect("send a handshake");
    let mut reply = [0u8; HANDSHAKE_LEN];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut reply)).await;
    match read.expect("an answer or a hang-up within 5 s") {
        Ok(_) => Handshake::decode(&reply).ok().flatten().map(|(handshake, _)| handshake),
        Err(_) => None,
    }
}

#[test]
fn a_magnet_link_waits_in_the_fetching_state_answers_its_peers_and_goes_when_removed() {
    let work = tempfile::tempdir().expect("tempdir");
    let tracker = Tracker::start();
    let info_hash = [0x5a; 20];
    let link = format!("magnet:?xt=urn:btih:{}&dn=nobody-seeds-this&tr={}", hex::encode(info_hash), tracker.announce);
    let magnet = metainfo::parse_magnet(&link).expect("a valid link");

    runtime().block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let session = Session::start(session_config(), listener).expect("a session");
        let fds_before = open_fds();
        let (events, _events_rx) = tokio::sync::mpsc::unbounded_channel();
        let run =
            session.add_magnet(magnet.clone(), TorrentConfig::new(work.path().join("down")), events).expect("added");
        let again = session.add_magnet(
            magnet,
            TorrentConfig::new(work.path().join("other")),
            tokio::sync::mpsc::unbounded_channel().0,
        );
        assert!(
            matches!(again, Err(TorrentError::Duplicate { ref name, .. }) if name == "nobody-seeds-this"),
            "{again:?}"
        );

        let status = session.torrent(&info_hash).expect("in the session");
        assert_eq!(status.state, State::FetchingMetadata);
        assert_eq!((status.name.as_str(), status.size, status.files.len()), ("nobody-seeds-this", 0, 0));
        assert_eq!(status.trackers.len(), 1);
        assert!(
            eventually(Duration::from_secs(10), || tracker.scrape(&info_hash).1 == 1).await,
            "the fetch never announced itself as a leecher"
        );
        // A peer that dials the session for the link's info-hash is answered by the fetch, under the session's id.
        let answer = knock(&session, info_hash).await.expect("the fetch answers");
        assert_eq!((answer.info_hash, answer.peer_id), (info_hash, session.peer_id()));
        assert!(knock(&session, [0x77; 20]).await.is_none(), "an unknown info-hash is refused");

        assert!(session.pause(&info_hash));
        let paused = eventually(Duration::from_secs(2), || {
            session.torrent(&info_hash).is_some_and(|status| status.state == State::Paused)
        })
        .await;
        assert!(paused, "{:?}", session.torrent(&info_hash));
        assert!(session.resume(&info_hash));
        let fetching = eventually(Duration::from_secs(2), || {
            session.torrent(&info_hash).is_some_and(|status| status.state == State::FetchingMetadata)
        })
        .await;
        assert!(fetching, "{:?}", session.torrent(&info_hash));

        assert!(session.remove(&info_hash).await);
        assert!(session.is_empty());
        let ended = tokio::time::timeout(Duration::from_secs(5), run).await.expect("its task ends").expect("joined");
        assert!(matches!(ended, Err(TorrentError::StoppedBeforeMetadata)), "{ended:?}");
        assert!(knock(&session, info_hash).await.is_none(), "a removed link's peers are refused");
        assert!(
            eventually(Duration::from_secs(5), || tracker.scrape(&info_hash).1 == 0).await,
            "the tracker was not told `stopped` when the link was removed"
        );
        // Its connections, sockets and timers are gone with it (the tracker's socket is the session's).
        let released = eventually(Duration::from_secs(5), || open_fds() <= fds_before + 2).await;
        assert!(released, "{} fds open, {fds_before} before the link was added", open_fds());
        assert!(!work.path().join("down").exists(), "nothing was written for a torrent never fetched");
    });
}

#[test]
fn a_magnet_links_torrent_downloads_and_seeds_under_the_same_entry_once_its_metadata_is_in() {
    let work = tempfile::tempdir().expect("tempdir");
    let tracker = Tracker::start();
    let (data, torrent) = torrent_of(work.path(), "from-a-link.bin", 3 << 20, &tracker.announce);
    let info_hash = torrent.info_hash.0;
    let (mut seeder, seeder_addr) = start_seeder(&data.with_extension("torrent"), &work.path().join("src"), "4Mi");
    let link = format!("magnet:?xt=urn:btih:{}&tr={}", hex::encode(info_hash), tracker.announce);
    let down = work.path().join("down");

    runtime().block_on(async {
        let session = start_session().await;
        let config = from_seeder(&down, seeder_addr);
        let (events, mut events_rx) = tokio::sync::mpsc::unbounded_channel();
        let magnet = metainfo::parse_magnet(&link).expect("a valid link");
        let _run = session.add_magnet(magnet, config, events).expect("added");

        let seeding = eventually(Duration::from_secs(60), || {
            session.torrent(&info_hash).is_some_and(|status| status.state == State::Seeding)
        })
        .await;
        let status = session.torrent(&info_hash).expect("in the session");
        assert!(seeding, "not seeding within 60 s: {status:?}");
        assert_eq!((status.name.as_str(), status.size), ("from-a-link.bin", 3 << 20));
        assert_eq!(status.files.len(), 1);
        assert_eq!(status.files[0].done, 3 << 20);
        assert_same_file(&data, &down.join("from-a-link.bin"));
        let saved = std::fs::read(down.join("from-a-link.bin.torrent")).expect("the .torrent saved in its folder");
        assert_eq!(metainfo::Torrent::from_bytes_any(&saved).expect("valid").info_hash.0, info_hash);

        let mut ready = Vec::new();
        while let Ok((torrent, event)) = events_rx.try_recv() {
            assert_eq!(torrent, info_hash, "every event names its torrent");
            if let Event::MetadataReady { torrent, saved } = event {
                ready.push((torrent.info.name.clone(), saved));
            }
        }
        assert_eq!(ready, vec![("from-a-link.bin".to_owned(), Some(down.join("from-a-link.bin.torrent")))]);
        session.shutdown().await;
    });
    // The seeder saw one connection from us: the one that fetched the metadata brought the data too.
    seeder.interrupt(Duration::from_secs(10));
    let connections = seeder.stderr().matches("peer connected").count();
    assert_eq!(connections, 1, "the seeder's log:\n{}", seeder.stderr());
}
