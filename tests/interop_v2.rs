//! BitTorrent v2 and hybrid (BEP 52, BEP 47) interop with libtorrent 2.0: for a single file and a folder (an
//! empty file, odd sizes, `foo.txt` beside `foo/bar`, two identical files, a nested folder) at several piece
//! lengths, our `mktorrent --v2` / `--hybrid` and libtorrent's `create_torrent` (tests/support/lt_create.py:
//! `v2_only` for v2, the default flags for a hybrid) must give the same info-hashes, v1 and v2; libtorrent must
//! load ours and agree; and we must read libtorrent's. A hybrid follows libtorrent's layout: files in tree order,
//! a pad file after every file that does not end on a piece boundary (the last one too, in a folder).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::process::Running;
use common::{
    SYSTEM_PYTHON, assert_same_file, bin, expect_libtorrent_complete, free_tcp_port, free_udp_port, have_libtorrent,
    lt_peer, run_ok, start_libtorrent_seeder, write_pseudo_random,
};

/// (v1 hex or None, v2 hex or None)
type Hashes = (Option<String>, Option<String>);

fn hashes_of(value: &serde_json::Value, v1: &str, v2: &str) -> Hashes {
    (value[v1].as_str().map(str::to_owned), value[v2].as_str().map(str::to_owned))
}

fn lt_create(mode: &str, input: &Path, piece_length: u64, out: &Path) -> Hashes {
    let stdout = run_ok(
        Command::new(SYSTEM_PYTHON)
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/lt_create.py"))
            .arg(mode)
            .arg(input)
            .arg(piece_length.to_string())
            .arg(out),
    );
    hashes_of(&serde_json::from_str(stdout.trim()).expect("lt_create JSON"), "v1", "v2")
}

/// What libtorrent reads from a torrent file (it checks the piece layers against the roots as it loads).
fn lt_load(torrent: &Path) -> Hashes {
    let script = r#"
import json, sys, libtorrent as lt
h = lt.torrent_info(sys.argv[1]).info_hashes()
print(json.dumps({"v1": str(h.v1) if h.has_v1() else None, "v2": str(h.v2) if h.has_v2() else None}))
"#;
    let stdout = run_ok(Command::new(SYSTEM_PYTHON).args(["-c", script]).arg(torrent));
    hashes_of(&serde_json::from_str(stdout.trim()).expect("libtorrent JSON"), "v1", "v2")
}

fn our_show(torrent: &Path) -> (Hashes, serde_json::Value) {
    let stdout = run_ok(Command::new(bin("mktorrent")).arg("--show").arg(torrent).arg("--json"));
    let value: serde_json::Value = serde_json::from_str(stdout.trim()).expect("our JSON");
    let v1 = (value["version"] != "v2").then(|| value["info_hash"].as_str().expect("hash").to_owned());
    ((v1, value["info_hash_v2"].as_str().map(str::to_owned)), value)
}

fn make_ours(mode: &str, input: &Path, log2: u32, out: &Path) {
    run_ok(
        Command::new(bin("mktorrent"))
            .args([&format!("--{mode}"), "-q", "-d", "--no-created-by", "-l", &log2.to_string(), "-o"])
            .arg(out)
            .arg(input),
    );
}

fn folder(root: &Path) {
    let files: [(&str, usize); 8] = [
        ("a.bin", 40_000),
        ("empty", 0),
        ("foo.txt", 16_385),
        ("foo/bar", 100),
        ("same1", 70_001),
        ("sub/deep/z", 262_144),
        ("sub/y", 16_383),
        ("tail.bin", 99_999),
    ];
    for (index, (path, len)) in files.into_iter().enumerate() {
        write_pseudo_random(&root.join(path), len, index as u64 + 1);
    }
    // Same bytes as same1: the two share one piece-layer entry.
    std::fs::copy(root.join("same1"), root.join("same2")).expect("copy");
}

#[test]
fn v2_and_hybrid_torrents_have_libtorrents_info_hashes() {
    if !have_libtorrent() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let single = dir.path().join("single.bin");
    write_pseudo_random(&single, 100_003, 42);
    let exact = dir.path().join("exact.bin");
    write_pseudo_random(&exact, 65_536, 43);
    let tiny = dir.path().join("tiny.bin");
    write_pseudo_random(&tiny, 1, 44);
    let tree = dir.path().join("tree");
    folder(&tree);

    let mut results = Vec::new();
    for input in [&single, &exact, &tiny, &tree] {
        for log2 in [14u32, 15, 18] {
            for mode in ["v2", "hybrid"] {
                let case = format!("{} {mode} 2^{log2}", input.file_name().and_then(|n| n.to_str()).unwrap_or("?"));
                let ours = dir.path().join(format!("ours-{mode}-{log2}.torrent"));
                let theirs = dir.path().join(format!("lt-{mode}-{log2}.torrent"));
                let _ = std::fs::remove_file(&ours);
                make_ours(mode, input, log2, &ours);
                let expected = lt_create(mode, input, 1 << log2, &theirs);
                let (ours_shown, value) = our_show(&ours);
                let ours_in_lt = lt_load(&ours);
                let (theirs_shown, _) = our_show(&theirs);
                assert!(expected.1.is_some(), "{case}: libtorrent made no v2 hash");
                assert_eq!(expected.0.is_some(), mode == "hybrid", "{case}: libtorrent's v1 part");
                let same = ours_shown == expected && ours_in_lt == expected && theirs_shown == expected;
                eprintln!(
                    "{case:<28} ours {ours_shown:?} libtorrent {expected:?} -> {}",
                    if same { "same" } else { "DIFFERENT" }
                );
                results.push((case.clone(), same));
                assert_eq!(ours_shown, expected, "{case}: our info-hashes differ from libtorrent's");
                assert_eq!(ours_in_lt, expected, "{case}: libtorrent reads other hashes from our file");
                assert_eq!(theirs_shown, expected, "{case}: we read other hashes from libtorrent's file");
                let magnet = value["magnet"].as_str().expect("magnet");
                let v2 = expected.1.as_deref().unwrap_or_default();
                assert!(magnet.contains(&format!("xt=urn:btmh:1220{v2}")), "{magnet}");
                assert_eq!(magnet.contains("xt=urn:btih:"), mode == "hybrid", "{magnet}");
            }
        }
    }
    assert!(results.iter().all(|(_, same)| *same));
}

#[test]
fn hybrid_data_verifies_against_its_v1_pieces_with_pad_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("tree");
    folder(&tree);
    let torrent = dir.path().join("tree.torrent");
    make_ours("hybrid", &tree, 15, &torrent);
    let stdout = run_ok(Command::new(bin("mktorrent")).arg("--verify").arg(&torrent).arg("--dir").arg(dir.path()));
    assert!(stdout.contains("0 of 9 files bad"), "{stdout}");
    assert!(!stdout.contains(".pad"), "pad files are not reported: {stdout}");
}

#[test]
fn verify_checks_v2_only_data_against_each_files_tree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("tree");
    folder(&tree);
    let torrent = dir.path().join("tree.torrent");
    make_ours("v2", &tree, 15, &torrent);
    let verify =
        || common::run(Command::new(bin("mktorrent")).arg("--verify").arg(&torrent).arg("--dir").arg(dir.path()));
    let output = verify();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(stdout.contains("0 of 9 files bad"), "{stdout}");

    // One flipped byte in a file of several pieces: that file alone is bad, by one piece.
    let damaged = tree.join("sub").join("deep").join("z");
    let mut bytes = std::fs::read(&damaged).expect("read");
    bytes[100_000] ^= 1;
    std::fs::write(&damaged, &bytes).expect("write");
    std::fs::remove_file(tree.join("tail.bin")).expect("remove");
    let output = verify();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    let bad: Vec<&str> = stdout.lines().filter(|line| line.starts_with("BAD")).collect();
    assert_eq!(bad.len(), 2, "{stdout}");
    assert!(bad.iter().any(|line| line.contains("deep/z") && line.contains("corrupt: 1 of 8 pieces")), "{stdout}");
    assert!(bad.iter().any(|line| line.contains("tail.bin") && line.contains("missing")), "{stdout}");

    // libtorrent's v2 torrent of the same folder verifies the same way.
    if have_libtorrent() {
        folder(&tree);
        let theirs = dir.path().join("theirs.torrent");
        lt_create("v2", &tree, 32 * 1024, &theirs);
        let output =
            common::run(Command::new(bin("mktorrent")).arg("--verify").arg(&theirs).arg("--dir").arg(dir.path()));
        assert!(output.status.success(), "{output:?}");
    }
}

/// The body of `GET target` from our tracker's HTTP side.
fn http_get(http: SocketAddr, target: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect(http).expect("connect to the tracker's HTTP side");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(stream, "GET {target} HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\n\r\n").expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the reply");
    let body = raw.windows(4).position(|window| window == b"\r\n\r\n").expect("a header end") + 4;
    raw[body..].to_vec()
}

/// Seeders, completed and leechers of `info_hash` in an HTTP scrape (BEP 48).
fn scrape(http: SocketAddr, info_hash: [u8; 20]) -> (u32, u32, u32) {
    let target: String = info_hash.iter().map(|byte| format!("%{byte:02X}")).collect();
    let body = http_get(http, &format!("/scrape?info_hash={target}"));
    match tracker_protocol::http::parse_scrape_reply(&body) {
        Ok(tracker_protocol::http::HttpScrapeReply::Files(entries)) => {
            let entry = entries.iter().find(|entry| entry.info_hash == info_hash).expect("the torrent's entry");
            (entry.stats.seeders, entry.stats.completed, entry.stats.leechers)
        }
        other => panic!("not a scrape reply: {other:?}"),
    }
}

fn hash20(hex_text: &str) -> [u8; 20] {
    let bytes = hex::decode(hex_text).expect("hex");
    bytes[..20].try_into().expect("20 bytes")
}

/// libtorrent seeds a v2-only and a hybrid torrent through our tracker, which names only that torrent, and a
/// libtorrent leecher finds the seeder there alone (no --peer). The v2 swarm is announced under the SHA-256
/// truncated to 20 bytes; a hybrid is served under both hashes and shown as one torrent on the dashboard.
#[test]
fn libtorrent_v2_and_hybrid_swarms_meet_through_our_tracker() {
    if !have_libtorrent() {
        return;
    }
    for mode in ["v2", "hybrid"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("seed").join(format!("{mode}.bin"));
        write_pseudo_random(&data, 1_500_000 + 3, 7);
        let udp = free_udp_port();
        let torrent = dir.path().join(format!("{mode}.torrent"));
        run_ok(
            Command::new(bin("mktorrent"))
                .args([&format!("--{mode}"), "-q", "-l", "15", "-a", &format!("udp://127.0.0.1:{udp}/announce"), "-o"])
                .arg(&torrent)
                .arg(&data),
        );
        let (hashes, _) = our_show(&torrent);
        let mut command = Command::new(bin("tracker"));
        command.arg(&torrent).args(["--bind", &format!("127.0.0.1:{udp}"), "--http", "127.0.0.1:0", "--interval", "2"]);
        let (mut tracker, _) = Running::start_listening(&mut command);
        let line =
            tracker.wait_for_line(|line| line.starts_with("http on "), Duration::from_secs(10)).expect("http on");
        let http: SocketAddr = line["http on ".len()..].trim().parse().expect("an address");

        let (seeder, _) = start_libtorrent_seeder(&torrent, &dir.path().join("seed"));
        let into = dir.path().join("leech");
        let mut leecher = Running::start(lt_peer().arg("leech").arg(&torrent).arg(&into).args([
            "--port",
            &free_tcp_port().to_string(),
            "--timeout",
            "60",
        ]));
        expect_libtorrent_complete(&mut leecher, &format!("{mode} through our tracker"), || {
            format!("seeder:\n{}\ntracker:\n{}", seeder.stderr(), tracker.stderr())
        });
        assert_same_file(&data, &into.join(format!("{mode}.bin")));

        let v2 = hash20(hashes.1.as_deref().expect("a v2 hash"));
        let (seeders, _, _) = scrape(http, v2);
        assert!(seeders >= 1, "{mode}: no seeder announced under the truncated v2 hash");
        let page: serde_json::Value =
            serde_json::from_slice(&http_get(http, "/dashboard.json")).expect("the dashboard's JSON");
        let rows = page["torrents"].as_array().expect("torrents");
        assert_eq!(rows.len(), 1, "{mode}: one torrent on the page: {page}");
        if mode == "hybrid" {
            let v1 = hash20(hashes.0.as_deref().expect("a v1 hash"));
            assert_eq!(rows[0]["info_hash"], hex::encode(v1), "{page}");
            assert_eq!(rows[0]["v2_info_hash"], hex::encode(v2), "{page}");
            // The tracker answers the v1 hash too (libtorrent announces each hash of a hybrid on its own).
            let (v1_seeders, _, _) = scrape(http, v1);
            assert!(v1_seeders >= 1, "no seeder announced under the hybrid's SHA-1");
        } else {
            assert_eq!(rows[0]["info_hash"], hex::encode(v2), "{page}");
        }
        // Counted once however many hashes it announced: the seeder and the leecher (now a seeder too).
        assert!(rows[0]["seeders"].as_u64().is_some_and(|seeders| (1..=2).contains(&seeders)), "{page}");
        assert!(tracker.interrupt(Duration::from_secs(10)).is_some());
    }
}

/// Every file under `original` has an identical copy under `copy`, and `copy` holds no pad files.
fn assert_same_tree(original: &Path, copy: &Path) {
    assert_same_files(original, copy);
    assert!(!copy.join(".pad").exists(), "pad files were written to {}", copy.display());
}

/// Every file under `original` has an identical copy under `copy`.
fn assert_same_files(original: &Path, copy: &Path) {
    let mut stack = vec![original.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).expect("read a folder") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                assert_same_file(&path, &copy.join(path.strip_prefix(original).expect("below the original")));
            }
        }
    }
}

/// Our `peer` over a torrent, with no tracker to find (the test names the other side with --peer).
fn our_peer(torrent: &Path, dir: &Path) -> Command {
    let mut command = Command::new(bin("peer"));
    command.args(["--no-dht", "--no-lsd", "0"]).arg(torrent).arg("--dir").arg(dir).args(["--tracker-timeout", "0.5"]);
    command
}

/// A v2-only torrent of a folder (an empty file, files ending mid-block, mid-piece and on a piece boundary, two
/// identical files) goes from libtorrent to our peer, which checks each piece against its file's merkle tree; a
/// byte flipped on disk afterwards is found by the start-up check (the trees again) and fetched anew; and our
/// peer seeds it back to libtorrent. No pad file is ever written.
#[test]
fn v2_only_torrents_travel_between_our_peer_and_libtorrent_both_ways() {
    if !have_libtorrent() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("seed").join("tree");
    folder(&tree);
    let torrent = dir.path().join("tree.torrent");
    make_ours("v2", &tree, 15, &torrent);

    let (seeder, port) = start_libtorrent_seeder(&torrent, &dir.path().join("seed"));
    let into = dir.path().join("ours");
    let lt_address = format!("127.0.0.1:{port}");
    let mut leecher =
        Running::start(our_peer(&torrent, &into).args(["--json", "--exit-on-complete", "--peer", &lt_address]));
    let status = leecher.wait(Duration::from_secs(60));
    assert!(
        status.is_some_and(|status| status.success()),
        "our peer did not download the v2 torrent from libtorrent ({status:?}); stderr:\n{}\nlibtorrent:\n{}",
        leecher.stderr(),
        seeder.stderr()
    );
    assert_same_tree(&tree, &into.join("tree"));

    // Resume: one flipped byte in the middle of a file of several pieces costs exactly that piece.
    let damaged = into.join("tree").join("a.bin");
    let mut bytes = std::fs::read(&damaged).expect("read");
    bytes[35_000] ^= 0xff;
    std::fs::write(&damaged, &bytes).expect("write");
    let mut again =
        Running::start(our_peer(&torrent, &into).args(["--json", "--exit-on-complete", "--peer", &lt_address]));
    let status = again.wait(Duration::from_secs(60));
    let lines = again.rest_of_stdout(Duration::from_secs(2));
    assert!(status.is_some_and(|status| status.success()), "the resumed download failed; stderr:\n{}", again.stderr());
    let checked: serde_json::Value = lines
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|event| event["event"] == "checked")
        .expect("a checked event");
    let total = checked["total"].as_u64().expect("total");
    assert_eq!(checked["have"].as_u64(), Some(total - 1), "{checked}");
    assert_same_tree(&tree, &into.join("tree"));
    drop(seeder);

    // And back: our peer seeds (after checking every piece against the trees) and libtorrent downloads.
    let (mut ours, our_address) =
        Running::start_listening(our_peer(&torrent, &dir.path().join("seed")).arg("--bind").arg("127.0.0.1"));
    assert!(
        ours.wait_for_line(|line| line.starts_with("seeding"), Duration::from_secs(30)).is_some(),
        "our peer did not find its v2 data complete; stderr:\n{}",
        ours.stderr()
    );
    let lt_into = dir.path().join("libtorrent");
    let mut lt = libtorrent_leech_from_us(torrent.as_os_str(), &lt_into, our_address.port());
    expect_libtorrent_complete(&mut lt, "a v2 folder from our peer", || format!("ours:\n{}", ours.stderr()));
    assert_same_tree(&tree, &lt_into.join("tree"));
    assert!(ours.interrupt(Duration::from_secs(10)).is_some());
}

/// A single-file v2 torrent whose last piece holds one byte: libtorrent asks for that piece's blocks as if the piece
/// were whole (v2 pads every file to a piece boundary), and our peer serves them; and the other way round.
#[test]
fn a_single_file_v2_torrent_goes_both_ways_with_its_padded_last_piece() {
    if !have_libtorrent() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("seed").join("one.bin");
    write_pseudo_random(&data, 3 * 32 * 1024 + 1, 11);
    let torrent = dir.path().join("one.torrent");
    make_ours("v2", &data, 15, &torrent);

    let (mut ours, our_address) =
        Running::start_listening(our_peer(&torrent, &dir.path().join("seed")).arg("--bind").arg("127.0.0.1"));
    assert!(ours.wait_for_line(|line| line.starts_with("seeding"), Duration::from_secs(30)).is_some());
    let lt_into = dir.path().join("libtorrent");
    let mut lt = libtorrent_leech_from_us(torrent.as_os_str(), &lt_into, our_address.port());
    expect_libtorrent_complete(&mut lt, "a single v2 file from our peer", || format!("ours:\n{}", ours.stderr()));
    assert_same_file(&data, &lt_into.join("one.bin"));
    assert!(ours.interrupt(Duration::from_secs(10)).is_some());

    let (seeder, port) = start_libtorrent_seeder(&torrent, &dir.path().join("seed"));
    let into = dir.path().join("ours");
    let mut leecher =
        Running::start(our_peer(&torrent, &into).args(["--exit-on-complete", "--peer", &format!("127.0.0.1:{port}")]));
    let status = leecher.wait(Duration::from_secs(60));
    assert!(
        status.is_some_and(|status| status.success()),
        "our peer did not download ({status:?}); stderr:\n{}\nlibtorrent:\n{}",
        leecher.stderr(),
        seeder.stderr()
    );
    assert_same_file(&data, &into.join("one.bin"));
    let names: Vec<_> = std::fs::read_dir(&into)
        .expect("list")
        .map(|entry| entry.expect("entry").file_name())
        .filter(|name| name != peer::resume::RESUME_DIR)
        .collect();
    assert_eq!(names, ["one.bin"], "nothing but the file (and the fast-resume state) is written");
}

/// A hybrid swarm: our tracker names the torrent, a libtorrent seeder (v2-capable: it announces both info-hashes)
/// and two leechers find each other through the tracker alone: libtorrent, and our peer, which checks the v1 pieces
/// with SHA-1 (its connections to libtorrent are upgraded to v2, as libtorrent's own are). A real v1-only client
/// in a hybrid swarm is rtorrent, in tests/interop_hybrid_v1.rs: aria2 1.37 computes a wrong v1 info-hash for any
/// hybrid (it re-encodes the info dictionary) and Transmission 3.00 refuses the file.
#[test]
fn a_hybrid_swarm_mixes_a_v1_path_peer_and_v2_clients() {
    if !have_libtorrent() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("seed").join("tree");
    folder(&tree);
    let http_port = free_tcp_port();
    let torrent = dir.path().join("tree.torrent");
    common::make_hybrid_torrent(&tree, 15, http_port, &torrent);
    let mut tracker = common::start_http_tracker(&torrent, http_port, &["--interval", "2"]);
    let (seeder, _) = start_libtorrent_seeder(&torrent, &dir.path().join("seed"));

    let lt_into = dir.path().join("libtorrent");
    let mut lt = Running::start(lt_peer().arg("leech").arg(&torrent).arg(&lt_into).args([
        "--port",
        &free_tcp_port().to_string(),
        "--timeout",
        "60",
    ]));
    let ours_into = dir.path().join("ours");
    let mut ours =
        Running::start(our_peer(&torrent, &ours_into).args(["--bind", "127.0.0.1", "--json", "--exit-on-complete"]));
    expect_libtorrent_complete(&mut lt, "a hybrid swarm", || format!("seeder:\n{}", seeder.stderr()));
    let status = ours.wait(Duration::from_secs(60));
    assert!(status.is_some_and(|status| status.success()), "our peer did not complete; stderr:\n{}", ours.stderr());
    let lines = ours.rest_of_stdout(Duration::from_secs(2));
    assert!(lines.iter().any(|line| line.contains(r#""source":"tracker""#)), "{lines:?}");
    assert_same_tree(&tree, &lt_into.join("tree"));
    assert_same_tree(&tree, &ours_into.join("tree"));
    // The tracker shows one torrent, its peers counted once across both swarms.
    let page = http_get(format!("127.0.0.1:{http_port}").parse().expect("address"), "/dashboard.json");
    let page: serde_json::Value = serde_json::from_slice(&page).expect("JSON");
    assert_eq!(page["torrents"].as_array().map(Vec::len), Some(1), "{page}");
    assert!(tracker.interrupt(Duration::from_secs(10)).is_some());
}

/// A libtorrent leecher of `what` (a .torrent or a magnet link) told to connect to our peer on `port` only.
fn libtorrent_leech_from_us(what: &std::ffi::OsStr, into: &Path, port: u16) -> Running {
    Running::start(lt_peer().arg("leech").arg(what).arg(into).args([
        "--port",
        &free_tcp_port().to_string(),
        "--peer",
        &format!("127.0.0.1:{port}"),
        "--timeout",
        "60",
    ]))
}

/// Our seeder of a `mode` (v2 or hybrid) folder torrent, with a file of more than 512 pieces of 16 KiB (its layer
/// takes two hash requests), and libtorrent downloading it from us alone, given `what`: the .torrent, or only a
/// magnet link with no tracker, when it fetches the info dictionary from us (BEP 9) and then every file's piece
/// layer with BEP 52 hash requests, which we answer from the torrent's layers with their proofs. Returns our
/// `--trace` lines.
fn libtorrent_downloads_from_our_seeder(mode: &str, what: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("seed").join("tree");
    folder(&tree);
    write_pseudo_random(&tree.join("big.bin"), 600 * 16 * 1024 + 5, 9);
    let torrent = dir.path().join("tree.torrent");
    make_ours(mode, &tree, 14, &torrent);
    let (hashes, _) = our_show(&torrent);
    let v2 = hashes.1.expect("a v2 hash");
    let link = match (what, hashes.0) {
        ("torrent", _) => torrent.clone().into_os_string(),
        (_, Some(v1)) => format!("magnet:?xt=urn:btih:{v1}&xt=urn:btmh:1220{v2}&dn=tree").into(),
        (_, None) => format!("magnet:?xt=urn:btmh:1220{v2}&dn=tree").into(),
    };
    let (mut ours, our_address) = Running::start_listening(
        our_peer(&torrent, &dir.path().join("seed"))
            .args(["--bind", "127.0.0.1", "--trace-file"])
            .arg(dir.path().join("trace")),
    );
    assert!(ours.wait_for_line(|line| line.starts_with("seeding"), Duration::from_secs(30)).is_some());
    let lt_into = dir.path().join("libtorrent");
    let mut lt = libtorrent_leech_from_us(&link, &lt_into, our_address.port());
    expect_libtorrent_complete(&mut lt, &format!("{mode} {what}"), || format!("ours:\n{}", ours.stderr()));
    assert_same_tree(&tree, &lt_into.join("tree"));
    assert!(ours.interrupt(Duration::from_secs(10)).is_some());
    std::fs::read_to_string(dir.path().join("trace")).expect("the trace")
}

#[test]
fn libtorrent_downloads_a_v2_magnet_link_from_our_seeder_asking_us_for_the_piece_layers() {
    if !have_libtorrent() {
        return;
    }
    let trace = libtorrent_downloads_from_our_seeder("v2", "magnet");
    let requests = trace.lines().filter(|line| line.contains("<-  hash request")).count();
    let answers = trace.lines().filter(|line| line.contains("->  hashes")).count();
    assert!(requests >= 2 && answers == requests, "{requests} hash requests, {answers} answered:\n{trace}");
}

/// A hybrid (pad files after every file) from our seeder: libtorrent given the .torrent, and given only the
/// magnet link with both hashes.
#[test]
fn libtorrent_downloads_a_hybrid_from_our_seeder_by_torrent_and_by_magnet_link() {
    if !have_libtorrent() {
        return;
    }
    libtorrent_downloads_from_our_seeder("hybrid", "torrent");
    libtorrent_downloads_from_our_seeder("hybrid", "magnet");
}

/// Our `peer`, given only the v2 magnet link (`xt=urn:btmh:`) of a v2-only folder torrent with a file of more than
/// 512 pieces of 16 KiB (its layer takes two hash requests) and `--peer` a seeder, fetches the info dictionary
/// (checked by SHA-256), then every long file's piece layer with BEP 52 hash requests (each proven up to the
/// file's root), downloads an identical tree and saves DIR/tree.torrent with the same v2 hash; a restart with the
/// same link and no peer at all starts from that saved torrent.
fn our_peer_downloads_a_v2_magnet_link(from_libtorrent: bool, mode: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("seed").join("tree");
    folder(&tree);
    write_pseudo_random(&tree.join("big.bin"), 600 * 16 * 1024 + 5, 9);
    let torrent = dir.path().join("tree.torrent");
    make_ours(mode, &tree, 14, &torrent);
    let (hashes, _) = our_show(&torrent);
    let v2 = hashes.1.clone().expect("a v2 hash");
    // A hybrid's link carries both hashes, as libtorrent writes it; both must match the info dictionary.
    let v1 = hashes.0.as_ref().map_or(String::new(), |v1| format!("xt=urn:btih:{v1}&"));
    let magnet = format!("magnet:?{v1}xt=urn:btmh:1220{v2}&dn=tree");

    let (mut seeder, address) = if from_libtorrent {
        let (seeder, port) = start_libtorrent_seeder(&torrent, &dir.path().join("seed"));
        (seeder, format!("127.0.0.1:{port}"))
    } else {
        let (mut ours, address) =
            Running::start_listening(our_peer(&torrent, &dir.path().join("seed")).args(["--bind", "127.0.0.1"]));
        assert!(ours.wait_for_line(|line| line.starts_with("seeding"), Duration::from_secs(30)).is_some());
        (ours, address.to_string())
    };
    let into = dir.path().join("ours");
    let mut leecher =
        Running::start(our_peer(Path::new(&magnet), &into).args(["--json", "--exit-on-complete", "--peer", &address]));
    let status = leecher.wait(Duration::from_secs(90));
    assert!(
        status.is_some_and(|status| status.success()),
        "our peer did not download the v2 magnet link ({status:?}); stderr:\n{}\nseeder:\n{}",
        leecher.stderr(),
        seeder.stderr()
    );
    assert_same_tree(&tree, &into.join("tree"));
    // Seven long files with six roots (same1 and same2 share one); big.bin's layer takes two requests.
    let stderr = leecher.stderr();
    assert!(stderr.contains("the piece layers of 6 files are in and proven"), "{stderr}");
    let lines = leecher.rest_of_stdout(Duration::from_secs(2));
    let layers = lines
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|event| event["event"] == "piece_layers_received")
        .unwrap_or_else(|| panic!("no piece_layers_received event: {lines:?}"));
    assert_eq!(layers["files"], 6, "{layers}");
    assert!(layers["hashes"].as_u64().is_some_and(|hashes| hashes > 600), "{layers}");
    let (saved, shown) = our_show(&into.join("tree.torrent"));
    assert_eq!(saved, hashes, "{shown}");
    seeder.interrupt(Duration::from_secs(10));

    let mut again = Running::start(our_peer(Path::new(&magnet), &into).args(["--json", "--exit-on-complete"]));
    let status = again.wait(Duration::from_secs(60));
    assert!(
        status.is_some_and(|status| status.success()),
        "a restart did not start from the saved torrent ({status:?}); stderr:\n{}",
        again.stderr()
    );
    assert!(again.stderr().contains("using the metadata saved in"), "{}", again.stderr());
}

#[test]
fn our_peer_downloads_a_v2_magnet_link_from_libtorrent_asking_it_for_the_piece_layers() {
    if have_libtorrent() {
        our_peer_downloads_a_v2_magnet_link(true, "v2");
    }
}

#[test]
fn our_peer_downloads_a_v2_magnet_link_from_our_own_seeder() {
    our_peer_downloads_a_v2_magnet_link(false, "v2");
}

/// A hybrid's link (`xt=urn:btih:` and `xt=urn:btmh:`): both hashes checked, the layers fetched too (the saved
/// torrent is whole, so our seeder can answer v2 peers' hash requests).
#[test]
fn our_peer_downloads_a_hybrid_magnet_link_with_both_hashes_from_our_own_seeder() {
    our_peer_downloads_a_v2_magnet_link(false, "hybrid");
}

/// A hybrid's link with a libtorrent 2.0 seeder: libtorrent drops a peer that sends a hash request on a connection
/// it deems v1, so our metadata connection asks to upgrade (the v2 bit beside the v1 hash), libtorrent answers with
/// the truncated v2 hash, and the piece layers come over that v2 connection (the piece_layers_received event).
#[test]
fn our_peer_gets_a_hybrid_magnet_links_piece_layers_from_libtorrent_over_an_upgraded_connection() {
    if have_libtorrent() {
        our_peer_downloads_a_v2_magnet_link(true, "hybrid");
    }
}
