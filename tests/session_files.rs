//! File selection through the peer crate's `Session`: a torrent added with `--only` finishes with the chosen files
//! alone; wanting the others later (at low and high priority) downloads what they lack, their share of the
//! boundary pieces moved out of the part file, and the torrent completes byte-identical.

mod common;

use std::time::Duration;

use common::library_session::{Tracker, eventually, from_seeder, runtime, start_seeder, start_session};
use common::{make_torrent, write_pseudo_random};
use peer::selection::{FilePattern, Priority};
use peer::session::State;
use peer::torrent::TorrentError;

#[test]
fn files_left_out_are_fetched_once_wanted_and_the_torrent_completes() {
    let work = tempfile::tempdir().expect("tempdir");
    let tracker = Tracker::start();
    let folder = work.path().join("src").join("set");
    let files = [("a.bin", 300_000), ("b.bin", 200_000), ("c.bin", 100_000)];
    for (seed, (name, len)) in files.iter().enumerate() {
        write_pseudo_random(&folder.join(name), *len, seed as u64 + 7);
    }
    let (torrent_path, info_hash) = make_torrent(&folder, &tracker.announce, 16);
    let torrent = metainfo::Torrent::from_bytes(&std::fs::read(&torrent_path).expect("read")).expect("valid");
    let (_seeder, seeder_addr) = start_seeder(&torrent_path, &work.path().join("src"), "16Mi");
    let down = work.path().join("down");

    runtime().block_on(async {
        let session = start_session().await;
        let mut config = from_seeder(&down, seeder_addr);
        config.only = vec![FilePattern::parse("b.bin").expect("valid")];

        let mut nothing = config.clone();
        nothing.only = vec![FilePattern::parse("*.iso").expect("valid")];
        let refused = session.add(torrent.clone(), nothing, tokio::sync::mpsc::unbounded_channel().0);
        assert!(
            matches!(&refused, Err(err @ TorrentError::NoFileMatches { .. }) if err.to_string() == "--only *.iso matches no file of set"),
            "{refused:?}"
        );

        let (events, _events_rx) = tokio::sync::mpsc::unbounded_channel();
        let _run = session.add(torrent, config, events).expect("added");
        let finished = eventually(Duration::from_secs(60), || {
            session.torrent(&info_hash).is_some_and(|status| status.state == State::Seeding)
        })
        .await;
        let status = session.torrent(&info_hash).expect("in the session");
        assert!(finished, "b.bin not done within 60 s: {status:?}");
        let priorities: Vec<Priority> = status.files.iter().map(|file| file.priority).collect();
        assert_eq!(priorities, [Priority::Skip, Priority::Normal, Priority::Skip]);
        assert_eq!(status.files[1].done, status.files[1].length);
        assert!(status.status.have < status.status.total && status.status.left > 0, "{status:?}");
        assert!(!down.join("set/a.bin").exists() && !down.join("set/c.bin").exists());

        let all = [Priority::Low, Priority::Normal, Priority::High];
        assert!(session.set_file_priorities(&info_hash, &all).await.expect("no disk trouble"));
        let one = [Priority::High];
        assert!(!session.set_file_priorities(&info_hash, &one).await.expect("no disk trouble"), "one per file");
        let complete = eventually(Duration::from_secs(60), || {
            session.torrent(&info_hash).is_some_and(|status| {
                status.state == State::Seeding && status.status.have == status.status.total
            })
        })
        .await;
        assert!(complete, "not complete within 60 s of wanting every file: {:?}", session.torrent(&info_hash));
        for (name, _) in files {
            let copy = std::fs::read(down.join("set").join(name)).expect("every file now");
            assert_eq!(copy, std::fs::read(folder.join(name)).expect("original"), "{name}");
        }
        session.shutdown().await;
    });
}
