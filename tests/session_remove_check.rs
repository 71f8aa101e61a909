//! A torrent removed while it checks its data stops reading at once: the check's threads stop within a batch, the
//! removal returns, and the process has read a small part of the data, not all of it. One torrent checks at a time:
//! one added meanwhile waits for its turn, then checks and seeds. Alone in its test binary, so that no other test's
//! reads are counted.

mod common;

use std::time::Duration;

use common::library_session::{runtime, session_config};
use peer::events::Event;
use peer::session::{Session, State};
use peer::torrent::TorrentConfig;
use sha1::{Digest, Sha1};

/// Bytes this process has read so far (`rchar` of /proc/self/io: every read, from disk or cache).
fn bytes_read() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").expect("/proc/self/io");
    let line = io.lines().find(|line| line.starts_with("rchar:")).expect("rchar");
    line["rchar:".len()..].trim().parse().expect("a count")
}

/// A torrent of `pieces` pieces of `piece_length` zeros, bencoded by hand (every piece has the same hash).
fn zeros_torrent(name: &str, piece_length: usize, pieces: usize) -> metainfo::Torrent {
    let hash: [u8; 20] = Sha1::digest(vec![0u8; piece_length]).into();
    let mut info = format!(
        "d6:lengthi{}e4:name{}:{name}12:piece lengthi{piece_length}e6:pieces{}:",
        piece_length * pieces,
        name.len(),
        pieces * 20
    )
    .into_bytes();
    for _ in 0..pieces {
        info.extend_from_slice(&hash);
    }
    info.push(b'e');
    let mut file = b"d4:info".to_vec();
    file.extend(info);
    file.push(b'e');
    metainfo::Torrent::from_bytes(&file).expect("a valid torrent")
}

#[test]
fn removing_a_torrent_mid_check_stops_the_check_at_once() {
    let work = tempfile::tempdir().expect("tempdir");
    let (piece_length, pieces) = (4 << 20, 1024);
    let total = (piece_length * pieces) as u64;
    // 4 GiB of zeros, sparse: cheap to make, and a check of it reads every byte.
    let data = std::fs::File::create(work.path().join("zeros.bin")).expect("create");
    data.set_len(total).expect("sparse length");
    let torrent = zeros_torrent("zeros.bin", piece_length, pieces);
    let info_hash = torrent.info_hash.0;

    runtime().block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let session = Session::start(session_config(), listener).expect("a session");
        let before = bytes_read();
        let (events, mut events_rx) = tokio::sync::mpsc::unbounded_channel();
        let run = session.add(torrent, TorrentConfig::new(work.path().to_path_buf()), events).expect("added");
        // The first batch is checked: the check is under way.
        let checking = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some((_, event)) = events_rx.recv().await {
                if matches!(event, Event::Checking { done, .. } if done > 0) {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(checking, Ok(true), "no check under way");
        assert_eq!(session.torrent(&info_hash).map(|status| status.state), Some(State::Checking));
        // A second torrent waits for its turn to check.
        let small = zeros_torrent("small.bin", 16 << 10, 4);
        let small_hash = small.info_hash.0;
        std::fs::File::create(work.path().join("small.bin")).expect("create").set_len(64 << 10).expect("length");
        let (small_events, mut small_rx) = tokio::sync::mpsc::unbounded_channel();
        let _small = session.add(small, TorrentConfig::new(work.path().to_path_buf()), small_events).expect("added");

        assert_eq!(session.torrent(&small_hash).map(|status| status.state), Some(State::Checking));
        while let Ok((_, event)) = small_rx.try_recv() {
            assert!(!matches!(event, Event::Checking { .. } | Event::Checked { .. }), "checked out of turn: {event:?}");
        }
        let removed = tokio::time::timeout(Duration::from_secs(10), session.remove(&info_hash)).await;
        assert_eq!(removed, Ok(true), "the removal waited for the whole check");
        let ended = tokio::time::timeout(Duration::from_secs(5), run).await.expect("its task ends").expect("joined");
        assert!(ended.is_ok(), "{ended:?}");
        // Nothing reads any more (a check would read hundreds of MB in half a second), and what was read is a
        // small part of the data.
        let after = bytes_read();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let since = bytes_read() - after;
        assert!(since < 1 << 20, "{since} bytes read in the half second after the removal");
        let read = bytes_read() - before;
        eprintln!("read {read} bytes of {total} before the removal stopped the check");
        assert!(read < total / 4, "read {read} of {total} bytes: the check went on");
        assert!(!events_rx.try_recv().is_ok_and(|(_, event)| matches!(event, Event::Checked { .. })), "it finished");
        // Its turn came with the removal: checked, all there, seeding.
        let seeding = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                match small_rx.recv().await {
                    Some((_, Event::Checked { have: 4, total: 4, .. })) => break true,
                    Some(_) => {}
                    None => break false,
                }
            }
        })
        .await;
        assert_eq!(seeding, Ok(true), "the second torrent never checked");
    });
}
