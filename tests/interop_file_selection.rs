//! Issue 23: file selection. Our peer downloads only the files `--only` chooses from a libtorrent seeder: those
//! files exist afterwards, byte-identical, the others do not, and the part file holds exactly what the pieces
//! shared with a chosen file carry of the others.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::process::Running;
use common::{bin, have_libtorrent, json_events, start_libtorrent_seeder, write_pseudo_random};

/// The byte ranges (in the torrent's stream) of files left out that lie in pieces shared with a wanted file.
fn boundary_spans(torrent: &metainfo::Torrent, wanted: &[bool]) -> Vec<(u64, u64)> {
    let piece = torrent.info.piece_length;
    let mut starts = Vec::new();
    let mut at = 0;
    for file in &torrent.info.files {
        starts.push((at, at + file.length));
        at += file.length;
    }
    let wanted_piece = |index: u64| {
        let (from, to) = (index * piece, (index + 1) * piece);
        starts.iter().zip(wanted).any(|(&(start, end), &wanted)| wanted && start < to && from < end && start < end)
    };
    let mut spans = Vec::new();
    for (&(start, end), &wanted) in starts.iter().zip(wanted) {
        if wanted || start == end {
            continue;
        }
        for index in start / piece..=(end - 1) / piece {
            if wanted_piece(index) {
                spans.push((start.max(index * piece), end.min((index + 1) * piece)));
            }
        }
    }
    spans
}

#[test]
fn only_the_chosen_files_are_downloaded_from_a_libtorrent_seeder_and_the_part_file_holds_the_boundary_pieces() {
    if !have_libtorrent() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let album = work.path().join("src").join("album");
    // Sizes that put the file boundaries inside 16 KiB pieces.
    let files =
        [("01 - intro.flac", 100_000), ("02 - outro.flac", 70_000), ("cover.jpg", 50_000), ("notes.txt", 3_000)];
    for (seed, (name, len)) in files.iter().enumerate() {
        write_pseudo_random(&album.join(name), *len, seed as u64 + 40);
    }
    let (torrent_path, info_hash) = common::make_torrent(&album, "udp://127.0.0.1:1/announce", 14);
    let torrent = metainfo::Torrent::from_bytes(&std::fs::read(&torrent_path).expect("read")).expect("valid");
    let (_seeder, seeder_port) = start_libtorrent_seeder(&torrent_path, &work.path().join("src"));

    let into = work.path().join("down");
    let mut leecher = Running::start(
        Command::new(bin("peer"))
            .args(["--no-dht", "--no-lsd", "--json", "--exit-on-complete", "--bind", "127.0.0.1"])
            .args(["--only", "*.flac", "--peer", &format!("127.0.0.1:{seeder_port}"), "0"])
            .arg(&torrent_path)
            .arg("--dir")
            .arg(&into),
    );
    let status = leecher.wait(Duration::from_secs(60));
    let lines = leecher.rest_of_stdout(Duration::from_secs(5));
    assert!(
        status.is_some_and(|status| status.success()),
        "our peer did not finish the chosen files ({status:?}); stdout {lines:?}\nstderr:\n{}",
        leecher.stderr()
    );
    let stopped = &json_events(&lines, "stopped")[0];
    assert_eq!(stopped["complete"], true, "{stopped}");
    assert!(
        stopped["have"].as_u64() < stopped["total"].as_u64(),
        "pieces only of the other files were fetched: {stopped}"
    );

    let copy = into.join("album");
    let wanted: Vec<bool> =
        torrent.info.files.iter().map(|file| file.path.last().is_some_and(|name| name.ends_with(".flac"))).collect();
    for (file, &wanted) in torrent.info.files.iter().zip(&wanted) {
        let name = file.path.join("/");
        if wanted {
            assert_eq!(
                std::fs::read(copy.join(&name)).expect("a chosen file"),
                std::fs::read(album.join(&name)).expect("original"),
                "{name}"
            );
        } else {
            assert!(!copy.join(&name).exists(), "{name} was created");
        }
    }

    // The part file: the left-out files' bytes of the pieces shared with a chosen one, at their stream offsets.
    let part_path = into.join(format!(".{}.parts", hex::encode(info_hash)));
    let part = std::fs::read(&part_path).expect("the part file");
    let spans = boundary_spans(&torrent, &wanted);
    assert!(!spans.is_empty(), "the layout has a boundary piece with cover.jpg");
    let stream: Vec<u8> = torrent
        .info
        .files
        .iter()
        .flat_map(|file| std::fs::read(album.join(file.path.join("/"))).expect("original"))
        .collect();
    for &(from, to) in &spans {
        let (from, to) = (from as usize, to as usize);
        assert_eq!(part.get(from..to), Some(&stream[from..to]), "the part file's bytes {from}..{to}");
    }
    assert_eq!(part.len() as u64, spans.iter().map(|&(_, to)| to).max().unwrap_or(0), "nothing past the last span");
    let held: u64 = spans.iter().map(|&(from, to)| to - from).sum();
    let allocated = std::fs::metadata(&part_path).expect("stat").blocks() * 512;
    // Sparse: the spans take their own blocks (4 KiB each at most per span end), never the whole stream.
    assert!(allocated <= held + 8192 * spans.len() as u64, "{allocated} bytes allocated for {held} held");
    assert!(!Path::new(&copy.join("cover.jpg")).exists());
}
