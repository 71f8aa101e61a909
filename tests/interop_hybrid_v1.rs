//! A v1-only client in a hybrid (BEP 52 v1 + v2, BEP 47 pad files) swarm: rtorrent 0.9.8 (libtorrent 0.13.8,
//! "rakshasa"), from Debian, reads a hybrid torrent's v1 side right, as aria2 1.37 (it re-encodes the info
//! dictionary and gets another info-hash) and Transmission 3.00 (it refuses the file) do not: it hashes the info
//! dictionary as written, ignores `file tree` and `piece layers`, and treats the pad files as ordinary files, writing
//! them to disk as zeros under `NAME/.pad/`. It meets our peer and libtorrent 2.0 (v2-capable: it announces both
//! hashes) through our HTTP tracker alone: it downloads from our seeder, seeds to our peer, then seeds to our peer
//! and libtorrent together; every copy is compared byte for byte.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::process::Running;
use common::{
    assert_same_file, bin, expect_libtorrent_complete, free_tcp_port, have_libtorrent, have_tool, json_events, lt_peer,
    make_hybrid_torrent, run_ok, start_http_tracker, write_pseudo_random,
};

fn have_rtorrent() -> bool {
    have_tool("rtorrent (apt-get install rtorrent)", Command::new("sh").args(["-c", "command -v rtorrent"]))
}

/// Files ending mid-piece (each followed by a pad file in the hybrid, the last one too), a 5-byte one, and one
/// that ends on a piece boundary (no pad file after it), at 64 KiB pieces.
fn folder(root: &Path) {
    let files: [(&str, usize); 4] =
        [("a.bin", 300_000), ("b.bin", 700_000), ("c.txt", 5), ("sub/exact.bin", 2 * 65_536)];
    for (index, (path, len)) in files.into_iter().enumerate() {
        write_pseudo_random(&root.join(path), len, index as u64 + 21);
    }
}

/// Every file under `original` (the data files: it has no pad files) has an identical copy under `copy`.
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

/// rtorrent in daemon mode (no terminal needed), set up by an rc file: listening on 127.0.0.1:`port`, no DHT, no
/// peer exchange, saving into `dir`, logging to `state/log`, touching `state/HASHED` when its check of the data
/// on disk at start is done, and `state/COMPLETE` when a download finishes (its own check of every piece done).
/// It loads and starts `torrent` at once.
struct Rtorrent {
    running: Running,
    state: PathBuf,
}

impl Rtorrent {
    fn start(torrent: &Path, dir: &Path, state: &Path, port: u16) -> Rtorrent {
        let session = state.join("session");
        std::fs::create_dir_all(&session).expect("rtorrent's session folder");
        std::fs::create_dir_all(dir).expect("rtorrent's download folder");
        let quoted = |path: &Path| format!("\"{}\"", path.display());
        let rc = format!(
            "directory.default.set = {dir}\n\
             session.path.set = {session}\n\
             network.bind_address.set = 127.0.0.1\n\
             network.port_range.set = {port}-{port}\n\
             network.port_random.set = no\n\
             dht.mode.set = disable\n\
             protocol.pex.set = no\n\
             system.daemon.set = true\n\
             log.open_file = \"log\", {log}\n\
             log.add_output = \"info\", \"log\"\n\
             method.set_key = event.download.hash_done, test_hashed, \"execute.nothrow = touch, {hashed}\"\n\
             method.set_key = event.download.finished, test_complete, \"execute.nothrow = touch, {complete}\"\n\
             load.start_verbose = {torrent}\n",
            dir = quoted(dir),
            session = quoted(&session),
            log = quoted(&state.join("log")),
            hashed = state.join("HASHED").display(),
            complete = state.join("COMPLETE").display(),
            torrent = quoted(torrent),
        );
        let rc_path = state.join("rtorrent.rc");
        std::fs::write(&rc_path, rc).expect("write rtorrent.rc");
        let mut command = Command::new("rtorrent");
        // -n: not ~/.rtorrent.rc. It announces through curl: keep any proxy off the loopback tracker.
        command.arg("-n").arg("-o").arg(format!("import={}", rc_path.display()));
        for name in ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"] {
            command.env_remove(name);
        }
        command.env("no_proxy", "*").env("NO_PROXY", "*");
        Rtorrent { running: Running::start(&mut command), state: state.to_path_buf() }
    }

    /// Waits up to `timeout` for rtorrent to finish its download (its `event.download.finished`).
    fn wait_complete(&mut self, timeout: Duration) -> bool {
        self.wait_for_file("COMPLETE", timeout)
    }

    /// Waits up to `timeout` for rtorrent to have checked the data it was given (its `event.download.hash_done`).
    fn wait_hashed(&mut self, timeout: Duration) -> bool {
        self.wait_for_file("HASHED", timeout)
    }

    fn wait_for_file(&mut self, name: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.state.join(name).exists() {
                return true;
            }
            if self.running.wait(Duration::ZERO).is_some() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.state.join(name).exists()
    }

    /// Its log and its output, for failure messages.
    fn report(&self) -> String {
        let log = std::fs::read_to_string(self.state.join("log")).unwrap_or_default();
        format!("rtorrent log:\n{log}\nrtorrent stderr:\n{}", self.running.stderr())
    }
}

/// Our peer, finding its peers through the torrent's tracker only.
fn our_peer(torrent: &Path, dir: &Path) -> Command {
    let mut command = Command::new(bin("peer"));
    command.args(["--no-dht", "--no-lsd", "--bind", "127.0.0.1", "0"]).arg(torrent).arg("--dir").arg(dir);
    command
}

/// Our peer downloading `torrent` into `dir` through the tracker; waits for it to exit having verified the data.
fn our_leecher(torrent: &Path, dir: &Path) -> Running {
    Running::start(our_peer(torrent, dir).args(["--json", "--exit-on-complete"]))
}

fn assert_our_leecher_completes(leecher: &mut Running, what: &str, rtorrent: &Rtorrent, tracker: &Running) {
    let status = leecher.wait(Duration::from_secs(60));
    assert!(
        status.is_some_and(|status| status.success()),
        "{what}: our peer did not complete ({status:?}); stderr:\n{}\n{}\ntracker:\n{}",
        leecher.stderr(),
        rtorrent.report(),
        tracker.stderr()
    );
}

#[test]
fn rtorrent_a_v1_only_client_trades_a_hybrid_with_our_peer_and_libtorrent() {
    if !have_rtorrent() || !have_libtorrent() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("seed").join("tree");
    folder(&tree);
    let http_port = free_tcp_port();
    let torrent = dir.path().join("tree.torrent");
    make_hybrid_torrent(&tree, 16, http_port, &torrent);
    let shown = run_ok(Command::new(bin("mktorrent")).arg("--show").arg(&torrent).arg("--json"));
    let shown: serde_json::Value = serde_json::from_str(shown.trim()).expect("our JSON");
    assert_eq!(shown["version"], "hybrid", "{shown}");

    // rtorrent does not re-announce every 2 s as told: keep peers that re-announce seldom in the swarm.
    let mut tracker = start_http_tracker(&torrent, http_port, &["--interval", "2", "--peer-timeout", "600"]);

    // 1. Our seeder alone (super-seeding, the default) and rtorrent, which finds it through the tracker and
    // announces the torrent's SHA-1 info-hash, the one the tracker serves it under.
    let (mut seeder, _) = Running::start_listening(&mut our_peer(&torrent, &dir.path().join("seed")));
    assert!(
        seeder.wait_for_line(|line| line.starts_with("seeding"), Duration::from_secs(30)).is_some(),
        "our seeder did not find its data complete; stderr:\n{}",
        seeder.stderr()
    );
    assert!(seeder.wait_for_stderr("/announce: ", Duration::from_secs(10)), "no announce: {}", seeder.stderr());
    let rt_into = dir.path().join("rtorrent");
    let rt_port = free_tcp_port();
    let mut rtorrent = Rtorrent::start(&torrent, &rt_into, &dir.path().join("rtorrent-state"), rt_port);
    assert!(
        rtorrent.wait_complete(Duration::from_secs(60)),
        "rtorrent did not download the hybrid from our seeder;\n{}\nour seeder:\n{}\ntracker:\n{}",
        rtorrent.report(),
        seeder.stderr(),
        tracker.stderr()
    );
    assert_same_files(&tree, &rt_into.join("tree"));
    // A v1-only client knows no pad files: it writes them, as files of zeros.
    let pads: Vec<PathBuf> = std::fs::read_dir(rt_into.join("tree").join(".pad"))
        .expect("rtorrent writes the pad files to tree/.pad")
        .map(|entry| entry.expect("an entry").path())
        .collect();
    assert_eq!(pads.len(), 3, "a pad file after a.bin, b.bin and c.txt: {pads:?}");
    for pad in &pads {
        assert!(std::fs::read(pad).expect("read a pad file").iter().all(|&byte| byte == 0), "{}", pad.display());
    }
    assert!(seeder.interrupt(Duration::from_secs(10)).is_some(), "our seeder did not stop");

    // 2. rtorrent, now the only seeder, to our peer alone.
    let ours_into = dir.path().join("ours");
    let mut ours = our_leecher(&torrent, &ours_into);
    assert_our_leecher_completes(&mut ours, "from rtorrent", &rtorrent, &tracker);
    let lines = ours.rest_of_stdout(Duration::from_secs(2));
    let rt_address = format!("127.0.0.1:{rt_port}");
    assert!(
        lines.iter().any(|line| line.contains(r#""event":"peer_connected""#) && line.contains(&rt_address)),
        "our peer never met rtorrent at {rt_address}: {lines:?}"
    );
    assert_same_files(&tree, &ours_into.join("tree"));
    assert!(!ours_into.join("tree").join(".pad").exists(), "our peer wrote pad files");

    // 3. A swarm: rtorrent seeding, libtorrent and our peer leeching at once, all through the tracker.
    let lt_into = dir.path().join("libtorrent");
    let mut lt = Running::start(lt_peer().arg("leech").arg(&torrent).arg(&lt_into).args([
        "--port",
        &free_tcp_port().to_string(),
        "--timeout",
        "60",
    ]));
    let again_into = dir.path().join("ours-again");
    let mut again = our_leecher(&torrent, &again_into);
    expect_libtorrent_complete(&mut lt, "beside rtorrent", || {
        format!("{}\ntracker:\n{}", rtorrent.report(), tracker.stderr())
    });
    assert_our_leecher_completes(&mut again, "in the swarm", &rtorrent, &tracker);
    assert_same_files(&tree, &lt_into.join("tree"));
    assert_same_files(&tree, &again_into.join("tree"));
    assert!(!lt_into.join("tree").join(".pad").exists(), "libtorrent wrote pad files");
    assert!(!again_into.join("tree").join(".pad").exists(), "our peer wrote pad files");

    // rtorrent announced the torrent under its v1 info-hash: the tracker, which serves this torrent only, named it.
    let announced = format!("peer=127.0.0.1:{rt_port}");
    let log = tracker.stderr();
    assert!(log.lines().any(|line| line.contains("torrent=tree") && line.contains(&announced)), "{log}");
    rtorrent.running.interrupt(Duration::from_secs(10));
    assert!(tracker.interrupt(Duration::from_secs(10)).is_some());
}

/// A hybrid magnet link (both hashes) whose only peer is rtorrent, a v1-only client: it serves the info dictionary
/// (ut_metadata) but knows nothing of BEP 52 hash requests, so the piece layers never come. Our peer asks nothing
/// of it over its v1 connection (rtorrent answers our upgrade bit with the v1 hash), gives the layers up after
/// peer::magnet::LAYER_PATIENCE (10 s), saves the torrent without them and downloads over v1, checking every piece
/// by SHA-1; a restart with the same link and no peer at all starts from the saved torrent and finds the data whole.
#[test]
fn a_hybrid_magnet_link_with_only_rtorrent_to_ask_downloads_over_v1_without_the_piece_layers() {
    if !have_rtorrent() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("original").join("tree");
    folder(&tree);
    let http_port = free_tcp_port();
    let torrent = dir.path().join("tree.torrent");
    make_hybrid_torrent(&tree, 16, http_port, &torrent);
    let parsed = metainfo::Torrent::from_bytes(&std::fs::read(&torrent).expect("the torrent")).expect("a hybrid");
    let long_files = parsed.v2.as_ref().expect("v2").files.iter().filter(|file| !file.piece_layer.is_empty()).count();
    assert_eq!(long_files, 3, "a.bin, b.bin and sub/exact.bin have piece layers");
    let shown = run_ok(Command::new(bin("mktorrent")).arg("--show").arg(&torrent).arg("--json"));
    let shown: serde_json::Value = serde_json::from_str(shown.trim()).expect("our JSON");
    let magnet = shown["magnet"].as_str().expect("a magnet link").to_owned();
    assert!(
        magnet.contains("xt=urn:btih:") && magnet.contains("xt=urn:btmh:1220") && magnet.contains("&tr="),
        "{magnet}"
    );

    // rtorrent seeds from a copy that has the pad files, as it wrote them itself in the test above.
    let rt_seed = dir.path().join("rtorrent");
    folder(&rt_seed.join("tree"));
    for pad in parsed.info.files.iter().filter(|file| file.pad) {
        let path = pad.path.iter().fold(rt_seed.join("tree"), |path, part| path.join(part));
        std::fs::create_dir_all(path.parent().expect("a folder")).expect("the pad folder");
        std::fs::write(&path, vec![0u8; usize::try_from(pad.length).expect("small")]).expect("a pad file");
    }
    let mut tracker = start_http_tracker(&torrent, http_port, &["--interval", "2", "--peer-timeout", "600"]);
    let rt_port = free_tcp_port();
    let mut rtorrent = Rtorrent::start(&torrent, &rt_seed, &dir.path().join("rtorrent-state"), rt_port);
    assert!(rtorrent.wait_hashed(Duration::from_secs(30)), "rtorrent did not check its data;\n{}", rtorrent.report());
    let rt_address = format!("127.0.0.1:{rt_port}");
    assert!(
        tracker.wait_for_stderr(&format!("peer={rt_address}"), Duration::from_secs(30)),
        "rtorrent never announced;\n{}\ntracker:\n{}",
        rtorrent.report(),
        tracker.stderr()
    );

    let into = dir.path().join("ours");
    let mut ours = our_leecher(Path::new(&magnet), &into);
    assert_our_leecher_completes(&mut ours, "a hybrid magnet link from rtorrent", &rtorrent, &tracker);
    let lines = ours.rest_of_stdout(Duration::from_secs(2));
    let stderr = ours.stderr();
    assert_eq!(json_events(&lines, "metadata_received").len(), 1, "{lines:?}");
    assert!(json_events(&lines, "piece_layers_received").is_empty(), "no peer sent layers: {lines:?}");
    assert!(
        stderr.contains("no peer sent the piece layers of 3 files within 10 s; downloading over v1 (SHA-1) only"),
        "{stderr}"
    );
    // The metadata connection to rtorrent lasted the whole fetch: no hash request made it hang up.
    let saved_at = lines.iter().position(|line| line.contains(r#""event":"torrent_saved""#)).expect("torrent_saved");
    let met_before =
        lines[..saved_at].iter().any(|line| line.contains(r#""event":"peer_connected""#) && line.contains(&rt_address));
    let dropped_before = lines[..saved_at]
        .iter()
        .any(|line| line.contains(r#""event":"peer_disconnected""#) && line.contains(&rt_address));
    assert!(met_before && !dropped_before, "{lines:?}\n{stderr}");
    assert_same_files(&tree, &into.join("tree"));
    assert!(!into.join("tree").join(".pad").exists(), "our peer wrote pad files");
    // The saved torrent has both hashes and no piece layers: the v1 pieces check the data.
    let saved = metainfo::Torrent::from_bytes_any(&std::fs::read(into.join("tree.torrent")).expect("saved"))
        .expect("a hybrid saved without its layers reads");
    assert_eq!((saved.info_hash, saved.info_hash_v2()), (parsed.info_hash, parsed.info_hash_v2()));
    assert!(saved.v2.iter().flat_map(|v2| &v2.files).all(|file| file.piece_layer.is_empty()));

    // No tracker, no rtorrent: the same link starts from the saved torrent, and the data checks out whole.
    rtorrent.running.interrupt(Duration::from_secs(10));
    assert!(tracker.interrupt(Duration::from_secs(10)).is_some());
    let mut again = our_leecher(Path::new(&magnet), &into);
    let status = again.wait(Duration::from_secs(30));
    let lines = again.rest_of_stdout(Duration::from_secs(2));
    assert!(
        status.is_some_and(|status| status.success()),
        "a restart did not start from the saved torrent ({status:?}); stderr:\n{}",
        again.stderr()
    );
    assert!(again.stderr().contains("using the metadata saved in"), "{}", again.stderr());
    let checked = json_events(&lines, "checked");
    assert_eq!(checked.first().map(|event| event["have"] == event["total"]), Some(true), "{lines:?}");
}
