//! End-to-end: our tracker and peers on loopback, real TCP, real files, every copy compared with the original.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::hostile_peer::HostilePeer;
use common::process::Running;
use common::udp::UdpClient;
use common::{assert_same_file, bin, free_udp_port, json_events, make_torrent, write_pseudo_random};

const PIECE_LOG2: u32 = 15;
const PIECE_LEN: usize = 1 << PIECE_LOG2;

/// Starts our tracker on a free loopback port; returns it and the announce URL.
fn start_tracker() -> (Running, String, SocketAddr) {
    let port = free_udp_port();
    let (tracker, addr) = Running::start_listening(
        Command::new(bin("tracker")).args(["--open", "--interval", "5", "--bind"]).arg(format!("127.0.0.1:{port}")),
    );
    (tracker, format!("udp://127.0.0.1:{port}/announce"), addr)
}

fn peer_command(torrent: &Path, dir: &Path) -> Command {
    let mut command = Command::new(bin("peer"));
    command.args(["--no-dht", "--no-lsd"]);
    command.arg("0").arg(torrent).arg("--dir").arg(dir).args(["--tracker-timeout", "0.5"]);
    command
}

/// Starts a peer over complete data and waits for its `seeding` line; returns it and its address.
fn start_seeder(torrent: &Path, dir: &Path, extra: &[&str]) -> (Running, SocketAddr) {
    let (mut seeder, addr) = Running::start_listening(peer_command(torrent, dir).args(extra));
    let line = seeder.wait_for_line(|line| line.starts_with("seeding"), Duration::from_secs(30));
    assert!(line.is_some(), "the seeder never reported seeding; stderr:\n{}", seeder.stderr());
    (seeder, SocketAddr::from(([127, 0, 0, 1], addr.port())))
}

/// Waits for a peer started with --exit-on-complete and asserts it succeeded; returns its remaining stdout.
fn expect_complete(peer: &mut Running, timeout: Duration) -> Vec<String> {
    let status = peer.wait(timeout);
    let rest = peer.rest_of_stdout(Duration::from_secs(2));
    assert!(
        status.is_some_and(|status| status.success()),
        "the leecher did not complete in {timeout:?} (status {status:?}); stdout tail {:?}\nstderr:\n{}",
        rest.iter().rev().take(5).collect::<Vec<_>>(),
        peer.stderr()
    );
    rest
}

/// The `stopped` JSON event a `--json` peer prints last.
fn final_report(lines: &[String]) -> serde_json::Value {
    lines
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|event| event["event"] == "stopped")
        .unwrap_or_else(|| panic!("no stopped event in {:?}", lines.iter().rev().take(5).collect::<Vec<_>>()))
}

/// Source data for a single-file torrent: `dir/src/NAME`.
fn single_file(dir: &Path, name: &str, len: usize, seed: u64) -> PathBuf {
    let path = dir.join("src").join(name);
    write_pseudo_random(&path, len, seed);
    path
}

#[test]
fn one_seeder_to_one_leecher_through_our_tracker() {
    let work = tempfile::tempdir().expect("tempdir");
    let (_tracker, announce, _) = start_tracker();
    let data = single_file(work.path(), "movie.bin", 3_000_001, 1);
    let (torrent, _) = make_torrent(&data, &announce, PIECE_LOG2);
    let (_seeder, _) = start_seeder(&torrent, &work.path().join("src"), &[]);

    let into = work.path().join("leech");
    let mut leecher = Running::start(peer_command(&torrent, &into).arg("--exit-on-complete"));
    let rest = expect_complete(&mut leecher, Duration::from_secs(60));
    assert!(rest.iter().any(|line| line.starts_with("stopped: 92 of 92 pieces")), "{rest:?}");
    assert_same_file(&data, &into.join("movie.bin"));
}

#[test]
fn one_seeder_to_one_leecher_multi_file_with_direct_peer() {
    let work = tempfile::tempdir().expect("tempdir");
    let (_tracker, announce, _) = start_tracker();
    let root = work.path().join("src").join("album");
    let files: [(&str, usize); 5] =
        [("a/one.bin", 100_000), ("a/empty", 0), ("b/c/two.bin", 300_001), ("top.txt", 5), ("z.bin", 65_536)];
    for (seed, (name, len)) in files.iter().enumerate() {
        write_pseudo_random(&root.join(name), *len, seed as u64 + 10);
    }
    let (torrent, _) = make_torrent(&root, &announce, PIECE_LOG2);
    let (_seeder, seeder_addr) = start_seeder(&torrent, &work.path().join("src"), &[]);

    // The leecher is told about the seeder directly, and announces to a tracker nobody listens on.
    let into = work.path().join("leech");
    let mut leecher = Running::start(
        peer_command(&torrent, &into).arg("--exit-on-complete").arg("--peer").arg(seeder_addr.to_string()),
    );
    expect_complete(&mut leecher, Duration::from_secs(60));
    for (name, _) in files {
        assert_same_file(&root.join(name), &into.join("album").join(name));
    }
}

#[test]
fn a_download_limit_caps_what_the_leecher_reads() {
    let work = tempfile::tempdir().expect("tempdir");
    let (_tracker, announce, _) = start_tracker();
    let len = 3 * 1024 * 1024;
    let data = single_file(work.path(), "capped.bin", len, 9);
    let (torrent, _) = make_torrent(&data, &announce, PIECE_LOG2);
    // The seeder sends as fast as loopback goes; only the leecher's own limit holds it to 1 MB/s.
    let (_seeder, seeder_addr) = start_seeder(&torrent, &work.path().join("src"), &[]);
    let into = work.path().join("leech");
    let started = std::time::Instant::now();
    let mut leecher = Running::start(peer_command(&torrent, &into).args(["--exit-on-complete", "--json"]).args([
        "--download-limit",
        "1M",
        "--peer",
        &seeder_addr.to_string(),
    ]));
    let rest = expect_complete(&mut leecher, Duration::from_secs(60));
    let took = started.elapsed();
    assert_same_file(&data, &into.join("capped.bin"));
    // 3 MiB at 1 MB/s is 3.1 s, less the quarter second of burst the bucket allows.
    eprintln!("3 MiB under --download-limit 1M took {:.2} s", took.as_secs_f64());
    assert!(took >= Duration::from_millis(2700), "3 MiB took {took:?} under a 1 MB/s limit");
    let fastest = json_events(&rest, "status").iter().filter_map(|status| status["download_rate"].as_u64()).max();
    assert!(fastest.is_some_and(|rate| rate < 1_500_000), "a status showed {fastest:?} B/s");
}

#[test]
fn a_sequential_download_verifies_pieces_in_order_within_its_window() {
    let work = tempfile::tempdir().expect("tempdir");
    let (_tracker, announce, _) = start_tracker();
    // 48 pieces of 1 MiB: the 16 MiB window is a third of the torrent.
    let len = 48 << 20;
    let data = single_file(work.path(), "film.mkv", len, 10);
    let (torrent, _) = make_torrent(&data, &announce, 20);
    // A plain seeder: a super-seeder would show its pieces a few at a time, in its own order.
    let (_seeder, seeder_addr) = start_seeder(&torrent, &work.path().join("src"), &["--no-super-seed"]);
    let into = work.path().join("leech");
    let mut leecher = Running::start(
        peer_command(&torrent, &into)
            .args(["--exit-on-complete", "--json", "--sequential", "--peer"])
            .arg(seeder_addr.to_string()),
    );
    let rest = expect_complete(&mut leecher, Duration::from_secs(60));
    assert_same_file(&data, &into.join("film.mkv"));
    let order: Vec<u64> =
        json_events(&rest, "piece_verified").iter().filter_map(|event| event["piece"].as_u64()).collect();
    assert_eq!(order.len(), 48);
    // The k-th piece verified was started when at most k were in, so within 16 pieces of the k-th.
    for (k, &piece) in order.iter().enumerate() {
        assert!(piece < k as u64 + 16, "piece {piece} verified {k}th: {order:?}");
    }
}

#[test]
fn leechers_trade_pieces_among_themselves() {
    let work = tempfile::tempdir().expect("tempdir");
    let (_tracker, announce, _) = start_tracker();
    let len = 3 * 1024 * 1024;
    let data = single_file(work.path(), "shared.bin", len, 2);
    let (torrent, _) = make_torrent(&data, &announce, PIECE_LOG2);
    // The seeder alone could serve three copies in about 9 s; it must not be the only source.
    let (mut seeder, _) = start_seeder(&torrent, &work.path().join("src"), &["--upload-limit", "1M"]);

    let mut leechers: Vec<(Running, PathBuf)> = (0..3)
        .map(|i| {
            let into = work.path().join(format!("leech{i}"));
            let leecher = Running::start(peer_command(&torrent, &into).args(["--exit-on-complete", "--json"]));
            (leecher, into)
        })
        .collect();
    let mut uploaded_by_leechers = 0;
    let mut met_through_the_tracker = false;
    for (leecher, into) in &mut leechers {
        let rest = expect_complete(leecher, Duration::from_secs(90));
        let report = final_report(&rest);
        assert_eq!(report["complete"], true);
        // Status lines count the connected peers by how each reached us; here the tracker or a dial from them.
        for status in json_events(&rest, "status") {
            let sources = status["sources"].as_object().expect("status sources");
            let counted: u64 = sources.values().map(|count| count.as_u64().expect("a count")).sum();
            assert_eq!(Some(counted), status["peers"].as_u64(), "{status}");
            assert_eq!(sources["dht"], 0, "{status}");
            met_through_the_tracker |= sources["tracker"].as_u64() > Some(0);
        }
        let sources: Vec<&str> =
            report["peers"].as_array().expect("peers").iter().filter_map(|peer| peer["source"].as_str()).collect();
        assert!(sources.iter().all(|source| ["tracker", "incoming"].contains(source)), "{report}");
        uploaded_by_leechers += report["uploaded"].as_u64().expect("uploaded");
        assert_same_file(&data, &into.join("shared.bin"));
    }
    assert!(seeder.interrupt(Duration::from_secs(10)).is_some_and(|status| status.success()));
    let seeder_out = seeder.rest_of_stdout(Duration::from_secs(2));
    let seeder_uploaded: u64 = seeder_out
        .iter()
        .find_map(|line| line.split("uploaded ").nth(1)?.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no upload total in {seeder_out:?}"));
    assert!(met_through_the_tracker, "no status line counted a peer the tracker named");
    assert!(uploaded_by_leechers > 0, "no leecher uploaded anything");
    assert!(
        seeder_uploaded < 3 * len as u64,
        "the seeder sent {seeder_uploaded} bytes: three full copies, so the leechers did not trade"
    );
    assert!(seeder_uploaded + uploaded_by_leechers >= 3 * len as u64, "bytes went missing");
}

#[test]
fn a_leecher_killed_half_way_resumes_without_downloading_verified_pieces_again() {
    let work = tempfile::tempdir().expect("tempdir");
    let (_tracker, announce, _) = start_tracker();
    let len = 4 * 1024 * 1024;
    let data = single_file(work.path(), "big.bin", len, 3);
    let (torrent, _) = make_torrent(&data, &announce, PIECE_LOG2);
    let (_seeder, _) = start_seeder(&torrent, &work.path().join("src"), &["--upload-limit", "500k"]);

    let into = work.path().join("leech");
    let mut first = Running::start(peer_command(&torrent, &into).args(["--exit-on-complete", "--json"]));
    let quarter = first.wait_for_line(
        |line| {
            serde_json::from_str::<serde_json::Value>(line)
                .is_ok_and(|event| event["event"] == "piece_verified" && event["have"].as_u64() >= Some(32))
        },
        Duration::from_secs(60),
    );
    assert!(quarter.is_some(), "no progress; stderr:\n{}", first.stderr());
    first.kill();

    let mut second = Running::start(peer_command(&torrent, &into).args(["--exit-on-complete", "--json"]));
    let rest = expect_complete(&mut second, Duration::from_secs(60));
    let checked = json_events(&rest, "checked");
    let have = checked.first().and_then(|event| event["have"].as_u64()).expect("a checked event");
    assert!(have >= 32, "only {have} pieces survived the kill");
    let downloaded = final_report(&rest)["downloaded"].as_u64().expect("downloaded");
    let missing = len as u64 - (have - 1) * PIECE_LEN as u64;
    assert!(downloaded <= missing, "downloaded {downloaded} bytes, but only {missing} were missing");
    assert_same_file(&data, &into.join("big.bin"));
}

#[test]
fn a_peer_sending_bad_data_cannot_corrupt_the_download_and_is_banned() {
    let work = tempfile::tempdir().expect("tempdir");
    let (_tracker, announce, _) = start_tracker();
    let len = 2 * 1024 * 1024;
    let data = single_file(work.path(), "target.bin", len, 4);
    let (torrent, info_hash) = make_torrent(&data, &announce, PIECE_LOG2);
    let bytes = std::fs::read(&data).expect("data");
    // Every third piece it serves is garbage; the honest seeder is slow, so the liar gets asked first and often.
    let hostile = HostilePeer::start("127.0.0.2", bytes, PIECE_LEN, info_hash, |piece| piece % 3 == 0);
    let (_seeder, _) = start_seeder(&torrent, &work.path().join("src"), &["--upload-limit", "400k"]);

    let into = work.path().join("leech");
    let mut leecher = Running::start(
        peer_command(&torrent, &into).args(["--exit-on-complete", "--json", "--peer"]).arg(hostile.addr.to_string()),
    );
    let rest = expect_complete(&mut leecher, Duration::from_secs(90));
    assert_same_file(&data, &into.join("target.bin"));
    assert!(hostile.bad_blocks() > 0, "the hostile peer was never asked for a bad piece");
    let failed = json_events(&rest, "piece_failed");
    assert!(!failed.is_empty(), "no piece failed its hash check");
    let banned = json_events(&rest, "peer_banned");
    assert!(
        banned.iter().any(|event| event["address"] == hostile.addr.to_string()),
        "the hostile peer {} was not banned: {banned:?}",
        hostile.addr
    );
    // --peer is retried every 5 s; a banned address is never dialled again.
    assert_eq!(hostile.connections(), 1, "the banned peer was connected to again");
}

#[test]
fn a_liar_behind_the_honest_seeders_address_is_banned_alone_and_the_download_completes() {
    let work = tempfile::tempdir().expect("tempdir");
    let (_tracker, announce, _) = start_tracker();
    let len = 4 * 1024 * 1024;
    let data = single_file(work.path(), "shared.bin", len, 6);
    let (torrent, info_hash) = make_torrent(&data, &announce, PIECE_LOG2);
    let bytes = std::fs::read(&data).expect("data");
    // Both on 127.0.0.1, as two peers behind one NAT: the liar claims every piece and corrupts every block; the
    // honest seeder is slower, so the two share pieces and the first failures cannot tell them apart.
    let liar = HostilePeer::start("127.0.0.1", bytes, PIECE_LEN, info_hash, |_| true);
    let (_seeder, seeder_addr) = start_seeder(&torrent, &work.path().join("src"), &["--upload-limit", "2M"]);

    let into = work.path().join("leech");
    let started = std::time::Instant::now();
    let mut leecher = Running::start(
        peer_command(&torrent, &into).args(["--exit-on-complete", "--json", "--peer"]).arg(liar.addr.to_string()),
    );
    let rest = expect_complete(&mut leecher, Duration::from_secs(60));
    let took = started.elapsed();
    assert_same_file(&data, &into.join("shared.bin"));
    assert!(liar.bad_blocks() > 0, "the liar was never asked for a block");
    let banned: Vec<String> = json_events(&rest, "peer_banned")
        .iter()
        .filter_map(|event| Some(event["address"].as_str()?.to_owned()))
        .collect();
    assert!(banned.contains(&liar.addr.to_string()), "the liar {} was not banned: {banned:?}", liar.addr);
    assert!(!banned.contains(&seeder_addr.to_string()), "the honest seeder {seeder_addr} was banned: {banned:?}");
    assert!(json_events(&rest, "address_banned").is_empty(), "one liar is no reason to ban the whole address");
    // Each connection says how its address reached us.
    let source_of = |addr: &str| {
        json_events(&rest, "peer_connected")
            .iter()
            .find(|event| event["address"] == addr)
            .map(|event| event["source"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(source_of(&liar.addr.to_string()).as_deref(), Some("manual"), "the liar came from --peer");
    assert_eq!(source_of(&seeder_addr.to_string()).as_deref(), Some("tracker"), "the seeder came from the tracker");
    let from_seeder = final_report(&rest)["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .filter(|peer| peer["address"] == seeder_addr.to_string())
        .filter_map(|peer| peer["downloaded"].as_u64())
        .sum::<u64>();
    assert!(from_seeder >= len as u64 / 2, "only {from_seeder} bytes came from the honest seeder");
    // --peer is retried every 5 s, but a banned endpoint is not dialled again.
    assert!(liar.connections() <= 2, "the liar was dialled {} times", liar.connections());
    eprintln!(
        "liar test: complete in {took:.1?}, {} bad blocks sent, {} pieces failed, liar dialled {} times",
        liar.bad_blocks(),
        json_events(&rest, "piece_failed").len(),
        liar.connections()
    );
}

#[test]
fn each_finished_download_is_announced_completed_exactly_once() {
    let work = tempfile::tempdir().expect("tempdir");
    let (_tracker, announce, tracker_addr) = start_tracker();
    let data = single_file(work.path(), "once.bin", 600_000, 8);
    let (torrent, info_hash) = make_torrent(&data, &announce, PIECE_LOG2);
    let (_seeder, _) = start_seeder(&torrent, &work.path().join("src"), &[]);
    for round in 1..=2u32 {
        let into = work.path().join(format!("leech{round}"));
        let mut leecher = Running::start(peer_command(&torrent, &into).arg("--exit-on-complete"));
        expect_complete(&mut leecher, Duration::from_secs(30));
        assert_same_file(&data, &into.join("once.bin"));
        let stats = UdpClient::new(tracker_addr).scrape(&[info_hash]);
        let completed = stats.first().map(|stats| stats.completed);
        assert_eq!(completed, Some(round), "after {round} finished downloads the tracker counts {completed:?}");
    }
}

#[test]
fn a_tracker_restarted_mid_download_is_announced_to_again_within_an_interval() {
    let work = tempfile::tempdir().expect("tempdir");
    let port = free_udp_port();
    let tracker_command = || {
        let mut command = Command::new(bin("tracker"));
        command.args(["--open", "--interval", "5", "--bind"]).arg(format!("127.0.0.1:{port}"));
        command
    };
    let (tracker, _) = Running::start_listening(&mut tracker_command());
    let announce = format!("udp://127.0.0.1:{port}/announce");
    let len = 4 * 1024 * 1024;
    let data = single_file(work.path(), "outage.bin", len, 10);
    let (torrent, _) = make_torrent(&data, &announce, PIECE_LOG2);
    // A slow seeder, so the first leecher is still downloading when the tracker goes away.
    let (_seeder, _) = start_seeder(&torrent, &work.path().join("src"), &["--upload-limit", "200k"]);
    let first_dir = work.path().join("first");
    let mut first = Running::start(peer_command(&torrent, &first_dir).args(["--exit-on-complete", "--json"]));
    let piece = |line: &str| line.contains("\"piece_verified\"");
    assert!(first.wait_for_line(piece, Duration::from_secs(20)).is_some(), "the first leecher got no piece");
    drop(tracker);

    // With the tracker gone, the leecher keeps downloading from the seeder it knows, until its announces give up
    // (0.5, 1, 2 and 4 s: bounded by the 5 s interval).
    let (mut pieces, mut gave_up) = (0, false);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !gave_up && std::time::Instant::now() < deadline {
        let Some(line) = first.wait_for_line(|_| true, Duration::from_secs(10)) else { break };
        pieces += usize::from(piece(&line));
        gave_up |= line.contains("\"announce_failed\"");
    }
    assert!(gave_up, "the first leecher's announce never failed with the tracker gone");
    assert!(pieces >= 3, "the first leecher got only {pieces} pieces while the tracker was gone");
    let (_tracker, _) = Running::start_listening(&mut tracker_command());
    let restarted = std::time::Instant::now();

    // A newcomer knows nobody but the tracker: it must be told about the seeder once the seeder re-announces.
    let late_dir = work.path().join("late");
    let mut late = Running::start(peer_command(&torrent, &late_dir).args(["--exit-on-complete", "--json"]));
    let found = late.wait_for_line(
        |line| {
            serde_json::from_str::<serde_json::Value>(line)
                .is_ok_and(|event| event["event"] == "announced" && event["peers"].as_u64() > Some(0))
        },
        Duration::from_secs(30),
    );
    let took = restarted.elapsed();
    assert!(found.is_some(), "the late leecher was never given a peer; stderr:\n{}", late.stderr());
    // The seeders re-announce within one interval (5 s) plus a lost attempt; the late leecher's own next announce
    // comes an interval later.
    assert!(took < Duration::from_secs(15), "the late leecher waited {took:?} for a peer after the restart");
    expect_complete(&mut first, Duration::from_secs(60));
    expect_complete(&mut late, Duration::from_secs(60));
    assert_same_file(&data, &first_dir.join("outage.bin"));
    assert_same_file(&data, &late_dir.join("outage.bin"));
    eprintln!("tracker restart: the late leecher was given a peer {took:.1?} after the restart");
}

#[test]
fn ctrl_c_announces_stopped_and_exits_zero_when_complete() {
    let work = tempfile::tempdir().expect("tempdir");
    let (_tracker, announce, tracker_addr) = start_tracker();
    let data = single_file(work.path(), "small.bin", 100_000, 5);
    let (torrent, info_hash) = make_torrent(&data, &announce, PIECE_LOG2);
    let (mut seeder, _) = start_seeder(&torrent, &work.path().join("src"), &[]);
    let mut client = UdpClient::new(tracker_addr);
    assert_eq!(client.scrape(&[info_hash])[0].seeders, 1, "the seeder did not announce");
    let status = seeder.interrupt(Duration::from_secs(10));
    assert!(status.is_some_and(|status| status.success()), "{status:?}\n{}", seeder.stderr());
    assert_eq!(client.scrape(&[info_hash])[0].seeders, 0, "the seeder did not announce stopped");
}

#[test]
fn an_interrupted_download_exits_non_zero() {
    let work = tempfile::tempdir().expect("tempdir");
    let data = single_file(work.path(), "never.bin", 100_000, 6);
    let (torrent, _) = make_torrent(&data, "udp://127.0.0.1:9/announce", PIECE_LOG2);
    let into = work.path().join("leech");
    let (mut leecher, _) = Running::start_listening(&mut peer_command(&torrent, &into));
    let status = leecher.interrupt(Duration::from_secs(10)).expect("the leecher exits on Ctrl-C");
    assert_eq!(status.code(), Some(1));
    assert!(leecher.stderr().contains("stopped before the download finished: 0 of 4 pieces"), "{}", leecher.stderr());
}

/// A hand-made torrent whose file list climbs out of the download folder.
fn traversal_torrent(path: &Path) {
    let pieces = [0u8; 20];
    let mut info = Vec::new();
    info.extend_from_slice(b"d5:filesld6:lengthi10e4:pathl2:..4:evileee4:name4:good12:piece lengthi16384e6:pieces20:");
    info.extend_from_slice(&pieces);
    info.push(b'e');
    let mut torrent = b"d8:announce29:udp://127.0.0.1:6969/announce4:info".to_vec();
    torrent.extend_from_slice(&info);
    torrent.push(b'e');
    std::fs::write(path, torrent).expect("write torrent");
}

#[test]
fn hostile_or_missing_torrents_are_refused_before_anything_is_written() {
    let work = tempfile::tempdir().expect("tempdir");
    let into = work.path().join("leech");
    std::fs::create_dir(&into).expect("leech dir");
    let traversal = work.path().join("traversal.torrent");
    traversal_torrent(&traversal);
    let bomb = work.path().join("bomb.torrent");
    std::fs::write(&bomb, format!("d4:info{}", "l".repeat(100_000))).expect("write bomb");
    let bad_length = work.path().join("bad-length.torrent");
    std::fs::write(
        &bad_length,
        b"d4:infod6:lengthi-5e4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee".as_slice(),
    )
    .expect("write torrent");
    let cases: [(&Path, &str); 4] = [
        (&traversal, "path"),
        (&bomb, "nesting deeper"),
        (&bad_length, "length"),
        (&work.path().join("missing.torrent"), "missing.torrent"),
    ];
    for (torrent, expected) in cases {
        let output = common::run(&mut peer_command(torrent, &into));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{}: {stderr}", torrent.display());
        assert!(stderr.contains(expected), "{}: error should mention {expected:?}: {stderr}", torrent.display());
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert_eq!(std::fs::read_dir(&into).expect("read leech dir").count(), 0, "something was written");
    assert!(!work.path().join("evil").exists());
}

/// Starts a `--json` peer and returns it with its listening port.
fn start_json_peer(command: &mut Command) -> (Running, u16) {
    let mut peer = Running::start(command.arg("--json"));
    let line = peer.wait_for_line(|line| line.contains(r#""event":"listening""#), Duration::from_secs(20));
    let line = line.unwrap_or_else(|| panic!("no listening event; stderr:\n{}", peer.stderr()));
    let event: serde_json::Value = serde_json::from_str(&line).expect("json");
    let addr: SocketAddr = event["address"].as_str().and_then(|addr| addr.parse().ok()).expect("an address");
    (peer, addr.port())
}

#[test]
fn peers_learn_each_other_from_our_ut_pex_messages() {
    let work = tempfile::tempdir().expect("tempdir");
    let data = single_file(work.path(), "pex.bin", 4_000_003, 8);
    // Nobody answers at this tracker: addresses travel by --peer and peer exchange only.
    let (torrent, _) = make_torrent(&data, "udp://127.0.0.1:1/announce", PIECE_LOG2);
    // A slow seeder, so that the go-between is still downloading from it when the newcomer arrives.
    let (mut seeder, seeder_port) = start_json_peer(peer_command(&torrent, &work.path().join("src")).args([
        "--upload-limit",
        "200k",
        "--no-super-seed",
    ]));
    let seeder_addr = format!("127.0.0.1:{seeder_port}");
    let (_middle, middle_port) =
        start_json_peer(peer_command(&torrent, &work.path().join("middle")).args(["--peer", &seeder_addr]));
    let (mut newcomer, newcomer_port) = start_json_peer(peer_command(&torrent, &work.path().join("leech")).args([
        "--exit-on-complete",
        "--peer",
        &format!("127.0.0.1:{middle_port}"),
    ]));
    // The go-between tells each of them about the other within its first ut_pex message (10 s after connecting);
    // whichever dials first, the connection comes from peer exchange.
    let newcomer_lines = expect_complete(&mut newcomer, Duration::from_secs(90));
    assert_same_file(&data, &work.path().join("leech").join("pex.bin"));
    let seeder_lines = seeder.rest_of_stdout(Duration::from_secs(1));
    let dialled_seeder = json_events(&newcomer_lines, "peer_connected")
        .iter()
        .any(|event| event["address"] == seeder_addr.as_str() && event["source"] == "pex");
    let dialled_newcomer = json_events(&seeder_lines, "peer_connected").iter().any(|event| {
        event["source"] == "pex" && event["address"].as_str().is_some_and(|a| a.ends_with(&format!(":{newcomer_port}")))
    });
    assert!(
        dialled_seeder || dialled_newcomer,
        "no connection by peer exchange; newcomer {:?}\nseeder {:?}",
        json_events(&newcomer_lines, "peer_connected"),
        json_events(&seeder_lines, "peer_connected")
    );
}

#[test]
fn a_tier_of_dead_udp_and_http_trackers_falls_through_to_the_live_one() {
    let work = tempfile::tempdir().expect("tempdir");
    let (_tracker, live, _) = start_tracker();
    let closed_tcp = common::free_tcp_port();
    // One BEP 12 tier, shuffled by each peer: a silent UDP tracker, an HTTP one that refuses, and ours.
    let tier = format!("udp://127.0.0.1:1/announce,http://127.0.0.1:{closed_tcp}/announce,{live}");
    let data = single_file(work.path(), "tiers.bin", 1_000_003, 12);
    let (torrent, _) = make_torrent(&data, &tier, PIECE_LOG2);
    let metainfo = metainfo::Torrent::from_bytes(&std::fs::read(&torrent).expect("torrent")).expect("valid");
    assert_eq!(metainfo.announce_list.len(), 1, "one tier of three");
    assert_eq!(metainfo.announce_list[0].len(), 3);
    let (_seeder, _) = start_seeder(&torrent, &work.path().join("src"), &[]);

    let into = work.path().join("leech");
    let mut leecher = Running::start(peer_command(&torrent, &into).args(["--exit-on-complete", "--json"]));
    let lines = expect_complete(&mut leecher, Duration::from_secs(60));
    assert_same_file(&data, &into.join("tiers.bin"));
    let announced = json_events(&lines, "announced");
    assert!(announced.iter().all(|event| event["tracker"] == live.as_str()), "{announced:?}");
    assert!(!announced.is_empty());
}

#[test]
fn trace_shows_each_wire_message_of_a_scripted_exchange_in_order() {
    use std::io::{Read, Write};
    let work = tempfile::tempdir().expect("tempdir");
    let data = single_file(work.path(), "traced.bin", 100_000, 5);
    let (torrent, info_hash) = make_torrent(&data, "udp://127.0.0.1:1/announce", PIECE_LOG2);
    let trace = work.path().join("trace.txt");
    let (_seeder, addr) = start_seeder(
        &torrent,
        &work.path().join("src"),
        &["--no-super-seed", "--trace-file", trace.to_str().expect("utf-8")],
    );

    // A peer of our own script: handshake, interested, one request, its piece.
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    stream.write_all(&peer_wire::Handshake::new(info_hash, *b"-XX0001-scripted0000").encode()).expect("handshake");
    let mut theirs = [0u8; peer_wire::HANDSHAKE_LEN];
    stream.read_exact(&mut theirs).expect("their handshake");
    let mut buf = Vec::new();
    let mut next = |stream: &mut std::net::TcpStream| -> Vec<u8> {
        let mut len = [0u8; 4];
        stream.read_exact(&mut len).expect("a message");
        buf.resize(u32::from_be_bytes(len) as usize, 0);
        stream.read_exact(&mut buf).expect("its body");
        buf.clone()
    };
    assert_eq!(next(&mut stream)[0], 5, "a bitfield first");
    let mut out = Vec::new();
    peer_wire::Message::Interested.encode(&mut out);
    stream.write_all(&out).expect("interested");
    while next(&mut stream) != [1] {}
    out.clear();
    peer_wire::Message::Request { index: 0, begin: 0, length: 16384 }.encode(&mut out);
    stream.write_all(&out).expect("request");
    while next(&mut stream)[0] != 7 {}

    let expected = [
        "<-  handshake  info-hash",
        "->  handshake  info-hash",
        "->  bitfield 4/4",
        "<-  interested",
        "->  unchoke",
        "<-  request 0 +0 16384",
        "->  piece 0 +0 16384",
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&trace).unwrap_or_default();
        let mut at = 0;
        let found = expected.iter().all(|wanted| match text[at..].find(wanted) {
            Some(position) => {
                at += position + wanted.len();
                true
            }
            None => false,
        });
        if found {
            assert!(text.contains("peer id -XX0001-scripted0000"), "{text}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "trace lines missing or out of order:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_hybrid_torrent_downloads_over_v1_without_writing_its_pad_files() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path().join("src").join("hybrid");
    let files: [(&str, usize); 3] = [("a.bin", 100_001), ("b/c.bin", 50_000), ("d.txt", 3)];
    for (seed, (name, len)) in files.iter().enumerate() {
        write_pseudo_random(&root.join(name), *len, seed as u64 + 40);
    }
    let torrent = work.path().join("hybrid.torrent");
    common::run_ok(
        Command::new(bin("mktorrent"))
            .args(["-q", "-d", "--hybrid", "-l", "15", "-a", "udp://127.0.0.1:1/announce", "-o"])
            .arg(&torrent)
            .arg(&root),
    );
    let shown = common::run_ok(Command::new(bin("mktorrent")).arg("--show").arg(&torrent).arg("--json"));
    assert!(shown.contains("info_hash_v2"), "not a hybrid: {shown}");
    let (_seeder, seeder_addr) = start_seeder(&torrent, &work.path().join("src"), &[]);

    let into = work.path().join("leech");
    let mut leecher = Running::start(
        peer_command(&torrent, &into).arg("--exit-on-complete").arg("--peer").arg(seeder_addr.to_string()),
    );
    expect_complete(&mut leecher, Duration::from_secs(60));
    for (name, _) in files {
        assert_same_file(&root.join(name), &into.join("hybrid").join(name));
    }
    // The pad files that align each file to a piece are zeros in the piece stream, never files on disk.
    assert!(!into.join("hybrid").join(".pad").exists(), "pad files were written");
    assert!(!work.path().join("src").join("hybrid").join(".pad").exists());
}

/// A v2 liar behind the honest seeder's address sends the first half of each piece, corrupted, then chokes, so the
/// seeder sends the second half: every piece the liar touches fails with two senders. Its block hashes (BEP 52),
/// which the seeder reads off its disk and proves up to the file's root, name the liar at the first such failure,
/// with no good copy needed; the seeder is never banned, and the download completes.
#[test]
fn a_v2_liar_sharing_pieces_with_the_seeder_is_named_by_the_pieces_block_hashes() {
    let work = tempfile::tempdir().expect("tempdir");
    let (_tracker, announce, _) = start_tracker();
    let len = 2 * 1024 * 1024 + 5000;
    let data = single_file(work.path(), "v2.bin", len, 12);
    let torrent = work.path().join("v2.torrent");
    common::run_ok(
        Command::new(bin("mktorrent")).args(["--v2", "-q", "-l", "16", "-a", &announce, "-o"]).arg(&torrent).arg(&data),
    );
    let shown = common::run_ok(Command::new(bin("mktorrent")).arg("--show").arg(&torrent).arg("--json"));
    let shown: serde_json::Value = serde_json::from_str(shown.trim()).expect("JSON");
    let v2_hash = shown["info_hash_v2"].as_str().expect("a v2 info-hash");
    let info_hash: [u8; 20] =
        hex::decode(&v2_hash[..40]).expect("hex").try_into().expect("the truncated v2 hash names the swarm");
    // The liar serves the v2 piece stream: the file, then zeros to the end of its last piece.
    let piece_len = 1 << 16;
    let mut bytes = std::fs::read(&data).expect("data");
    bytes.resize(len.div_ceil(piece_len) * piece_len, 0);
    let liar = HostilePeer::start_with("127.0.0.1", bytes, piece_len, info_hash, |_| true, true);
    let (_seeder, seeder_addr) = start_seeder(&torrent, &work.path().join("src"), &["--upload-limit", "4M"]);

    let into = work.path().join("leech");
    let mut leecher = Running::start(
        peer_command(&torrent, &into).args(["--exit-on-complete", "--json", "--peer"]).arg(liar.addr.to_string()),
    );
    let rest = expect_complete(&mut leecher, Duration::from_secs(60));
    assert_same_file(&data, &into.join("v2.bin"));
    assert!(liar.bad_blocks() > 0, "the liar was never asked for a block");
    let checked = json_events(&rest, "piece_blocks_checked");
    assert!(
        !checked.is_empty(),
        "no failed piece was settled by block hashes: {:?}",
        json_events(&rest, "piece_failed")
    );
    for event in &checked {
        assert_eq!(event["liars"], serde_json::json!([liar.addr.to_string()]), "{event}");
        assert_eq!(event["hashes_from"], seeder_addr.to_string(), "only the seeder can prove hashes: {event}");
        // The liar only ever sends the first two of a piece's four blocks.
        let bad = event["bad_blocks"].as_array().expect("bad blocks");
        assert!(!bad.is_empty() && bad.iter().all(|block| block.as_u64() < Some(2)), "{event}");
    }
    let banned: Vec<String> = json_events(&rest, "peer_banned")
        .iter()
        .filter_map(|event| Some(event["address"].as_str()?.to_owned()))
        .collect();
    assert_eq!(banned, vec![liar.addr.to_string()], "exactly the liar is banned");
    assert!(json_events(&rest, "address_banned").is_empty(), "one liar is no reason to ban the whole address");
    // The ban came from the block hashes, not from a good copy compared later: it follows the first settlement.
    let position = |kind: &str| {
        rest.iter()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .position(|event| event["event"] == kind)
    };
    let (first_checked, ban) = (position("piece_blocks_checked"), position("peer_banned"));
    assert!(first_checked < ban, "the liar was banned before any block hashes came");
    let failed = json_events(&rest, "piece_failed");
    eprintln!(
        "v2 liar: {} bad blocks sent, {} pieces failed, {} settled by block hashes",
        liar.bad_blocks(),
        failed.len(),
        checked.len()
    );
}
