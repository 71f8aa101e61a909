//! Interop of our `peer` with real BitTorrent clients: libtorrent (python3-libtorrent, driven by
//! tests/support/lt_peer.py) and aria2, through our tracker and through Debian's opentracker. Everything runs on
//! loopback; each client is given only the torrent, so peers find each other through the tracker. Every
//! downloaded file is compared byte for byte with the original, and the transfer accounting shows which side
//! sent the bytes.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::process::Running;
use common::udp::UdpClient;
use common::{
    assert_same_file, bin, free_tcp_port, free_udp_port, have_aria2, have_libtorrent, have_opentracker, json_events,
    log_tail, lt_peer, make_torrent, start_libtorrent_seeder, start_opentracker, start_opentracker_with_http,
    write_pseudo_random,
};
use tracker_protocol::TorrentStats;

/// Longest wait for any one client to finish a download of a few MiB (they take well under a second).
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(20);

/// A multi-file layout: nested folders, an empty file, and sizes that make pieces straddle files.
const ALBUM: [(&str, usize); 5] = [
    ("disc1/track01.bin", 1_000_003),
    ("disc1/track02.bin", 700_000),
    ("disc2/deep/track03.bin", 1_500_001),
    ("empty.txt", 0),
    ("notes.txt", 5),
];

/// Our tracker on a free loopback port, re-announces every 5 s; returns it, its address and the announce URL.
fn start_tracker() -> (Running, SocketAddr, String) {
    let (tracker, address) = Running::start_listening(Command::new(bin("tracker")).args([
        "--open",
        "--interval",
        "5",
        "--bind",
        "127.0.0.1:0",
    ]));
    (tracker, address, format!("udp://{address}/announce"))
}

/// Writes `len` bytes to `dir/NAME`.
fn single_file(dir: &Path, name: &str, len: usize, seed: u64) -> PathBuf {
    let path = dir.join(name);
    write_pseudo_random(&path, len, seed);
    path
}

/// Writes [`ALBUM`] under `dir/album`.
fn album(dir: &Path) -> PathBuf {
    let root = dir.join("album");
    for (seed, (name, len)) in ALBUM.iter().enumerate() {
        write_pseudo_random(&root.join(name), *len, seed as u64 + 100);
    }
    root
}

fn album_len() -> u64 {
    ALBUM.iter().map(|(_, len)| *len as u64).sum()
}

fn assert_same_album(original: &Path, copy: &Path) {
    for (name, _) in ALBUM {
        assert_same_file(&original.join(name), &copy.join(name));
    }
}

/// Our peer on 127.0.0.1, printing JSON events; tracker retries start at 0.5 s instead of 15.
fn our_peer(torrent: &Path, dir: &Path) -> Command {
    let mut command = Command::new(bin("peer"));
    command.args(["--no-dht", "--no-lsd"]);
    command.arg("0").arg(torrent).arg("--dir").arg(dir).args(["--bind", "127.0.0.1", "--json"]);
    command.args(["--tracker-timeout", "0.5"]);
    command
}

/// Parses a `--json` peer's stdout line.
fn event(line: &str) -> Option<serde_json::Value> {
    serde_json::from_str(line).ok()
}

/// Our peer seeding: the process, its listening address and every stdout line it printed so far.
struct OurSeeder {
    process: Running,
    address: SocketAddr,
    lines: Vec<String>,
}

impl OurSeeder {
    /// Starts our peer over complete data in `dir` and waits until it has announced and says it is seeding.
    fn start(torrent: &Path, dir: &Path) -> OurSeeder {
        let mut process = Running::start(&mut our_peer(torrent, dir));
        let mut lines = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !lines.last().and_then(|line: &String| event(line)).is_some_and(|event| event["event"] == "seeding") {
            let left = deadline.saturating_duration_since(Instant::now());
            match process.wait_for_line(|_| true, left) {
                Some(line) => lines.push(line),
                None => panic!("our seeder never reported seeding; stdout {lines:?}\nstderr:\n{}", process.stderr()),
            }
        }
        let listening = json_events(&lines, "listening");
        let address = listening.first().and_then(|event| event["address"].as_str()?.parse().ok()).expect("address");
        OurSeeder { process, address, lines }
    }

    /// What went wrong on our side, for failure messages: the seeder's disconnects so far, with their reasons.
    fn disconnects(&mut self) -> Vec<String> {
        self.lines.extend(self.process.rest_of_stdout(Duration::from_millis(200)));
        let disconnects = json_events(&self.lines, "peer_disconnected");
        disconnects
            .iter()
            .map(|event| {
                format!("{}: {}", event["address"].as_str().unwrap_or("?"), event["reason"].as_str().unwrap_or("?"))
            })
            .collect()
    }

    /// Stops the seeder with Ctrl-C (it must exit 0: its data is complete); returns the bytes it uploaded.
    fn stop(&mut self) -> u64 {
        let status = self.process.interrupt(Duration::from_secs(10));
        let stderr = self.process.stderr();
        assert!(status.is_some_and(|status| status.success()), "seeder exit {status:?}; stderr:\n{stderr}");
        self.lines.extend(self.process.rest_of_stdout(Duration::from_secs(2)));
        let report = final_report(&self.lines);
        assert_eq!(report["complete"], true);
        report["uploaded"].as_u64().expect("uploaded")
    }
}

/// The `stopped` event a `--json` peer prints last.
fn final_report(lines: &[String]) -> serde_json::Value {
    lines
        .iter()
        .filter_map(|line| event(line))
        .find(|event| event["event"] == "stopped")
        .unwrap_or_else(|| panic!("no stopped event in {:?}", lines.iter().rev().take(5).collect::<Vec<_>>()))
}

/// Runs our peer as a leecher until it completes (`--exit-on-complete`); checks that it was connected to the
/// peer listening on `source_port` (the swarm's only seeder) and downloaded at least `expected` bytes.
fn our_leecher_completes(torrent: &Path, dir: &Path, source_port: u16, expected: u64) {
    let mut leecher = Running::start(our_peer(torrent, dir).arg("--exit-on-complete"));
    let status = leecher.wait(DOWNLOAD_TIMEOUT);
    let rest = leecher.rest_of_stdout(Duration::from_secs(2));
    let tail: Vec<&String> = rest.iter().filter(|line| !line.contains("\"piece_verified\"")).collect();
    assert!(
        status.is_some_and(|status| status.success()),
        "our leecher did not complete in {DOWNLOAD_TIMEOUT:?} (status {status:?}); stdout {tail:?}\nstderr:\n{}",
        leecher.stderr()
    );
    let report = final_report(&rest);
    assert_eq!(report["complete"], true);
    assert!(report["downloaded"].as_u64() >= Some(expected), "downloaded too little: {report}");
    // The report lists only peers still connected at exit, and a seeder may hang up on a new seeder first:
    // the connect events say who we talked to.
    let source = format!("127.0.0.1:{source_port}");
    let connected = json_events(&rest, "peer_connected");
    assert!(connected.iter().any(|event| event["address"] == source.as_str()), "never connected to {source}: {tail:?}");
}

/// Polls the tracker's scrape of `info_hash` (every 100 ms, up to `timeout`) until `listed` holds for it;
/// false if it never did. A client started next is then sure to be given the listed peer.
fn wait_for_scrape(
    tracker: SocketAddr,
    info_hash: [u8; 20],
    timeout: Duration,
    listed: impl Fn(&TorrentStats) -> bool,
) -> bool {
    let mut client = UdpClient::new(tracker);
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if client.scrape(&[info_hash]).first().is_some_and(&listed) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// A libtorrent session downloads `torrent` into `dir` from our seeder, finding it through the torrent's
/// tracker only.
fn libtorrent_leecher_completes(torrent: &Path, dir: &Path, seeder: &mut OurSeeder) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let mut leecher = Running::start(lt_peer().arg("leech").arg(torrent).arg(dir).args([
        "--port",
        &free_tcp_port().to_string(),
        "--timeout",
        &DOWNLOAD_TIMEOUT.as_secs().to_string(),
    ]));
    let status = leecher.wait(DOWNLOAD_TIMEOUT + Duration::from_secs(10));
    if !status.is_some_and(|status| status.success()) {
        let stderr = leecher.stderr();
        let tail: Vec<&str> = stderr.lines().rev().take(10).collect();
        panic!(
            "the libtorrent leecher did not complete (status {status:?}); our seeder's disconnects: {:?}\n\
             libtorrent's last lines, newest first:\n{}",
            seeder.disconnects(),
            tail.join("\n")
        );
    }
}

/// aria2c with everything a loopback test needs. aria2 sends `udp://` announces through its DHT socket, so DHT
/// stays on, with a private routing table file and no entry point; LPD and PEX are off so the tracker is the
/// only way to find peers, and `--interface` keeps its sockets on 127.0.0.1. Its log (`work/NAME.log`) is the place to look when something fails.
fn aria2(
    work: &Path,
    name: &str,
    download_dir: &Path,
    torrent: impl AsRef<std::ffi::OsStr>,
) -> (Command, PathBuf, u16) {
    let log = work.join(format!("{name}.log"));
    let port = free_tcp_port();
    let mut command = Command::new("aria2c");
    command
        .args(["--no-conf", "--enable-dht=true", "--enable-dht6=false", "--disable-ipv6=true"])
        .arg(format!("--dht-file-path={}", work.join(format!("{name}-dht.dat")).display()))
        .arg(format!("--dht-listen-port={}", free_udp_port()))
        .arg(format!("--listen-port={port}"))
        .args(["--interface=127.0.0.1", "--bt-enable-lpd=false", "--enable-peer-exchange=false"])
        .args(["--check-integrity=true", "--allow-overwrite=true", "--file-allocation=none"])
        .args(["--bt-tracker-connect-timeout=5", "--bt-tracker-timeout=5"])
        .args(["--summary-interval=0", "--console-log-level=warn", "--log-level=info"])
        .arg(format!("--log={}", log.display()))
        // If the test process dies, aria2 goes too.
        .arg(format!("--stop-with-process={}", std::process::id()))
        .arg("-d")
        .arg(download_dir)
        .arg(torrent);
    (command, log, port)
}

#[test]
fn our_peer_downloads_a_multi_file_torrent_from_a_libtorrent_seeder_through_our_tracker() {
    if !have_libtorrent() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let (_tracker, tracker_addr, announce) = start_tracker();
    let root = album(&work.path().join("src"));
    let (torrent, info_hash) = make_torrent(&root, &announce, 15);
    let (_seeder, lt_port) = start_libtorrent_seeder(&torrent, &work.path().join("src"));
    let listed = wait_for_scrape(tracker_addr, info_hash, Duration::from_secs(10), |s| s.seeders + s.leechers > 0);
    assert!(listed, "the libtorrent seeder never announced");

    let into = work.path().join("leech");
    our_leecher_completes(&torrent, &into, lt_port, album_len());
    assert_same_album(&root, &into.join("album"));
}

#[test]
fn libtorrent_downloads_from_our_seeder_through_our_tracker() {
    if !have_libtorrent() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let (_tracker, _, announce) = start_tracker();
    let len = 4 * 1024 * 1024 + 13;
    let data = single_file(&work.path().join("src"), "video.bin", len, 7);
    let (torrent, _) = make_torrent(&data, &announce, 18);
    let mut seeder = OurSeeder::start(&torrent, &work.path().join("src"));

    let into = work.path().join("leech");
    libtorrent_leecher_completes(&torrent, &into, &mut seeder);
    assert_same_file(&data, &into.join("video.bin"));
    let uploaded = seeder.stop();
    assert!(uploaded >= len as u64, "our seeder uploaded only {uploaded} of {len} bytes");
}

#[test]
fn libtorrent_downloads_a_multi_file_torrent_from_our_seeder_through_opentracker() {
    if !(have_libtorrent() && have_opentracker()) {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let udp = free_udp_port();
    let root = album(&work.path().join("src"));
    let (torrent, info_hash) = make_torrent(&root, &format!("udp://127.0.0.1:{udp}/announce"), 16);
    let _opentracker = start_opentracker(work.path(), udp, &[info_hash]);
    let mut seeder = OurSeeder::start(&torrent, &work.path().join("src"));

    let into = work.path().join("leech");
    libtorrent_leecher_completes(&torrent, &into, &mut seeder);
    assert_same_album(&root, &into.join("album"));
    let uploaded = seeder.stop();
    assert!(uploaded >= album_len(), "our seeder uploaded only {uploaded} of {} bytes", album_len());
    // opentracker lists the announcing peer in its own reply: our seeder was given its own address first...
    let first = json_events(&seeder.lines, "announced").into_iter().next().expect("an announce");
    assert!(first["peers"].as_u64() >= Some(1), "opentracker did not list our seeder to itself: {first}");
    // ...and must not have dialled it.
    let own = seeder.address.to_string();
    let dialled_self =
        json_events(&seeder.lines, "peer_connected").into_iter().any(|event| event["address"] == own.as_str());
    assert!(!dialled_self, "our seeder connected to itself at {own}");
}

/// aria2 1.36 tells peers about new pieces with a whole BITFIELD message whenever that is no longer than the
/// HAVE messages it replaces (for this torrent's 4-byte bitfield, after every single piece), and on a new
/// connection it sends its bitfield twice: our seeder must take a later bitfield as a batch of HAVEs.
#[test]
fn aria2_downloads_from_our_seeder_through_our_tracker() {
    if !have_aria2() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let (_tracker, _, announce) = start_tracker();
    let len = 3 * 1024 * 1024 + 1;
    let data = single_file(&work.path().join("src"), "archive.bin", len, 8);
    let (torrent, _) = make_torrent(&data, &announce, 17);
    let mut seeder = OurSeeder::start(&torrent, &work.path().join("src"));

    let into = work.path().join("leech");
    let (mut command, log, _) = aria2(work.path(), "aria2-leech", &into, &torrent);
    // Exit as soon as the download is complete; give up after 10 s without progress.
    command.args(["--seed-time=0", "--bt-stop-timeout=10"]);
    let mut leecher = Running::start(&mut command);
    let status = leecher.wait(DOWNLOAD_TIMEOUT);
    if !status.is_some_and(|status| status.success()) {
        panic!(
            "aria2 did not complete (status {status:?}); our seeder's disconnects: {:?}\naria2's log:\n{}",
            seeder.disconnects(),
            log_tail(&log)
        );
    }
    assert_same_file(&data, &into.join("archive.bin"));
    let uploaded = seeder.stop();
    assert!(uploaded >= len as u64, "our seeder uploaded only {uploaded} of {len} bytes");
}

#[test]
fn our_peer_downloads_from_an_aria2_seeder_through_our_tracker() {
    if !have_aria2() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let (_tracker, tracker_addr, announce) = start_tracker();
    let len = 3 * 1024 * 1024 + 5;
    let data = single_file(&work.path().join("src"), "backup.bin", len, 9);
    let (torrent, info_hash) = make_torrent(&data, &announce, 16);
    // aria2 checks the data (-V), then seeds until it is stopped (share ratio 0: no ratio target).
    let (mut command, log, aria2_port) = aria2(work.path(), "aria2-seed", &work.path().join("src"), &torrent);
    command.arg("--seed-ratio=0.0");
    let mut seeder = Running::start(&mut command);
    let listed = wait_for_scrape(tracker_addr, info_hash, Duration::from_secs(15), |stats| stats.seeders > 0);
    assert!(listed, "aria2 never announced itself as a seeder; its log:\n{}", log_tail(&log));

    let into = work.path().join("leech");
    our_leecher_completes(&torrent, &into, aria2_port, len as u64);
    assert_same_file(&data, &into.join("backup.bin"));
    assert!(seeder.wait(Duration::ZERO).is_none(), "aria2 stopped seeding; its log:\n{}", log_tail(&log));
}

#[test]
fn a_liar_on_the_same_address_as_a_libtorrent_seeder_does_not_stall_our_download() {
    if !have_libtorrent() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let (_tracker, tracker_addr, announce) = start_tracker();
    let len = 10 * 1024 * 1024 + 77;
    let data = single_file(&work.path().join("src"), "film.bin", len, 9);
    let (torrent, info_hash) = make_torrent(&data, &announce, 18);
    let (_seeder, lt_port) = start_libtorrent_seeder(&torrent, &work.path().join("src"));
    let listed = wait_for_scrape(tracker_addr, info_hash, Duration::from_secs(10), |s| s.seeders > 0);
    assert!(listed, "the libtorrent seeder never announced");
    // The liar shares 127.0.0.1 with the seeder, claims every piece and sends garbage for every block.
    let bytes = std::fs::read(&data).expect("data");
    let liar = common::hostile_peer::HostilePeer::start("127.0.0.1", bytes, 1 << 18, info_hash, |_| true);

    let into = work.path().join("leech");
    let started = Instant::now();
    let mut leecher =
        Running::start(our_peer(&torrent, &into).args(["--exit-on-complete", "--peer"]).arg(liar.addr.to_string()));
    let status = leecher.wait(Duration::from_secs(60));
    let rest = leecher.rest_of_stdout(Duration::from_secs(2));
    let took = started.elapsed();
    assert!(
        status.is_some_and(|status| status.success()),
        "our leecher stalled with the liar (status {status:?}); stderr:\n{}",
        leecher.stderr()
    );
    assert_same_file(&data, &into.join("film.bin"));
    let banned: Vec<String> = json_events(&rest, "peer_banned")
        .iter()
        .filter_map(|event| Some(event["address"].as_str()?.to_owned()))
        .collect();
    assert!(banned.contains(&liar.addr.to_string()), "the liar {} was not banned: {banned:?}", liar.addr);
    let seeder = format!("127.0.0.1:{lt_port}");
    assert!(!banned.contains(&seeder), "the honest libtorrent seeder {seeder} was banned: {banned:?}");
    assert!(liar.connections() <= 2, "the liar was dialled {} times", liar.connections());
    eprintln!(
        "liar with libtorrent: complete in {took:.1?}, {} bad blocks, {} pieces failed, liar dialled {} times",
        liar.bad_blocks(),
        json_events(&rest, "piece_failed").len(),
        liar.connections()
    );
}

#[test]
fn our_peer_announces_over_http_to_opentracker_and_downloads_from_a_start_libtorrent_seeder() {
    if !(have_libtorrent() && have_opentracker()) {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let (udp, tcp) = (free_udp_port(), free_tcp_port());
    let len = 3 * 1024 * 1024 + 11;
    let data = single_file(&work.path().join("src"), "over-http.bin", len, 12);
    let (torrent, info_hash) = make_torrent(&data, &format!("http://127.0.0.1:{tcp}/announce"), 16);
    let _opentracker = start_opentracker_with_http(work.path(), udp, tcp, &[info_hash]);
    // libtorrent announces over HTTP too; opentracker's UDP scrape says when it is listed.
    let (_seeder, lt_port) = start_libtorrent_seeder(&torrent, &work.path().join("src"));
    let tracker_udp = SocketAddr::from(([127, 0, 0, 1], udp));
    assert!(
        wait_for_scrape(tracker_udp, info_hash, Duration::from_secs(15), |s| s.seeders > 0),
        "the libtorrent seeder never announced to opentracker over HTTP"
    );

    let into = work.path().join("leech");
    let mut leecher = Running::start(our_peer(&torrent, &into).arg("--exit-on-complete"));
    let status = leecher.wait(DOWNLOAD_TIMEOUT);
    let rest = leecher.rest_of_stdout(Duration::from_secs(2));
    assert!(
        status.is_some_and(|status| status.success()),
        "our leecher did not complete over an HTTP tracker (status {status:?}); stderr:\n{}",
        leecher.stderr()
    );
    assert_same_file(&data, &into.join("over-http.bin"));
    let announced = json_events(&rest, "announced");
    let first = announced.first().expect("an announced event");
    assert!(first["tracker"].as_str().is_some_and(|url| url.starts_with("http://")), "{first}");
    let source = format!("127.0.0.1:{lt_port}");
    let connected = json_events(&rest, "peer_connected");
    assert!(
        connected.iter().any(|event| event["address"] == source.as_str() && event["source"] == "tracker"),
        "the libtorrent seeder did not come from the HTTP tracker: {connected:?}"
    );
}

#[test]
fn libtorrent_given_only_a_magnet_link_gets_the_metadata_from_our_seeder_and_downloads() {
    if !have_libtorrent() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let (_tracker, _, announce) = start_tracker();
    let len = 2 * 1024 * 1024 + 5;
    let data = single_file(&work.path().join("src"), "from-magnet.bin", len, 13);
    let (torrent, info_hash) = make_torrent(&data, &announce, 16);
    let mut seeder = OurSeeder::start(&torrent, &work.path().join("src"));

    // Nothing but the info-hash and our tracker: libtorrent must fetch the info dictionary from our seeder.
    let magnet = format!("magnet:?xt=urn:btih:{}&dn=from-magnet.bin&tr={announce}", hex::encode(info_hash));
    let into = work.path().join("leech");
    std::fs::create_dir_all(&into).expect("mkdir");
    let mut leecher = Running::start(lt_peer().arg("leech").arg(&magnet).arg(&into).args([
        "--port",
        &free_tcp_port().to_string(),
        "--timeout",
        &DOWNLOAD_TIMEOUT.as_secs().to_string(),
    ]));
    let status = leecher.wait(DOWNLOAD_TIMEOUT + Duration::from_secs(10));
    assert!(
        status.is_some_and(|status| status.success()),
        "libtorrent did not complete from a magnet link (status {status:?}); our seeder's disconnects: {:?}\n{}",
        seeder.disconnects(),
        leecher.stderr().lines().rev().take(10).collect::<Vec<_>>().join("\n")
    );
    assert_same_file(&data, &into.join("from-magnet.bin"));
    let uploaded = seeder.stop();
    assert!(uploaded >= len as u64, "our seeder uploaded only {uploaded} of {len} bytes");
}

#[test]
fn our_peer_given_only_a_magnet_link_gets_the_metadata_from_a_libtorrent_seeder_and_downloads() {
    if !have_libtorrent() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let (_tracker, tracker_addr, announce) = start_tracker();
    let len = 3 * 1024 * 1024 + 7;
    let data = single_file(&work.path().join("src"), "lt-magnet.bin", len, 21);
    // 16 KiB pieces: a 3.8 KB info dictionary.
    let (torrent, info_hash) = make_torrent(&data, &announce, 14);
    let (_seeder, seeder_port) = start_libtorrent_seeder(&torrent, &work.path().join("src"));
    let listed = wait_for_scrape(tracker_addr, info_hash, Duration::from_secs(15), |stats| stats.seeders > 0);
    assert!(listed, "the libtorrent seeder never announced itself");

    let magnet = format!("magnet:?xt=urn:btih:{}&tr={announce}", hex::encode(info_hash));
    let into = work.path().join("leech");
    our_leecher_completes(Path::new(&magnet), &into, seeder_port, len as u64);
    assert_same_file(&data, &into.join("lt-magnet.bin"));
    let saved = std::fs::read(into.join("lt-magnet.bin.torrent")).expect("the metadata saved as NAME.torrent");
    let original = std::fs::read(&torrent).expect("torrent");
    let (saved, original) =
        (metainfo::Torrent::from_bytes(&saved).expect("valid"), metainfo::Torrent::from_bytes(&original));
    assert_eq!(Some(saved.info_bytes), original.ok().map(|torrent| torrent.info_bytes));
}

#[test]
fn our_peer_given_a_magnet_link_with_only_a_peer_address_downloads_from_an_aria2_seeder() {
    if !have_aria2() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let (_tracker, tracker_addr, announce) = start_tracker();
    let len = 2 * 1024 * 1024 + 3;
    let data = single_file(&work.path().join("src"), "aria2-magnet.bin", len, 23);
    let (torrent, info_hash) = make_torrent(&data, &announce, 15);
    let (mut command, log, aria2_port) = aria2(work.path(), "aria2-seed", &work.path().join("src"), &torrent);
    command.arg("--seed-ratio=0.0");
    let mut seeder = Running::start(&mut command);
    // Listed as a seeder means aria2 has checked its data and listens.
    let listed = wait_for_scrape(tracker_addr, info_hash, Duration::from_secs(15), |stats| stats.seeders > 0);
    assert!(listed, "aria2 never announced itself as a seeder; its log:\n{}", log_tail(&log));

    // No tracker in the link: aria2's address (x.pe) is the only lead.
    let magnet =
        format!("magnet:?xt=urn:btih:{}&dn=aria2-magnet.bin&x.pe=127.0.0.1:{aria2_port}", hex::encode(info_hash));
    let into = work.path().join("leech");
    our_leecher_completes(Path::new(&magnet), &into, aria2_port, len as u64);
    assert_same_file(&data, &into.join("aria2-magnet.bin"));
    assert!(into.join("aria2-magnet.bin.torrent").is_file());
    assert!(seeder.wait(Duration::ZERO).is_none(), "aria2 stopped seeding; its log:\n{}", log_tail(&log));
}

#[test]
fn our_peer_learns_a_seeder_from_a_libtorrent_peers_ut_pex_alone_and_downloads_from_it() {
    if !have_libtorrent() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let len = 6 * 1024 * 1024 + 11;
    let data = single_file(&work.path().join("src"), "pex.bin", len, 31);
    // A tracker nobody answers at: peers can only come from --peer and from peer exchange.
    let (torrent, _) = make_torrent(&data, "udp://127.0.0.1:1/announce", 15);
    // The seeder: no peer exchange of its own, so it can neither learn of us nor be the one that tells.
    let seeder_port = free_tcp_port();
    let mut seeder = Running::start(lt_peer().arg("seed").arg(&torrent).arg(work.path().join("src")).args([
        "--port",
        &seeder_port.to_string(),
        "--timeout",
        "90",
        "--no-pex",
    ]));
    assert!(seeder.wait_for_line(|line| line == "SEEDING", Duration::from_secs(20)).is_some(), "{}", seeder.stderr());
    // The go-between: a slow libtorrent leecher connected to the seeder, so it is still downloading (and still
    // connected to the seeder) when we come.
    let middle_dir = work.path().join("middle");
    std::fs::create_dir_all(&middle_dir).expect("mkdir");
    let middle_port = free_tcp_port();
    let seeder_addr = format!("127.0.0.1:{seeder_port}");
    let middle = Running::start(lt_peer().arg("seed").arg(&torrent).arg(&middle_dir).args([
        "--port",
        &middle_port.to_string(),
        "--peer",
        &seeder_addr,
        "--download-limit",
        "100000",
        "--timeout",
        "90",
    ]));
    assert!(middle.wait_for_stderr("peers=1", Duration::from_secs(20)), "the go-between never connected to the seeder");

    // Ours knows only the go-between.
    let into = work.path().join("leech");
    let mut leecher = Running::start(our_peer(&torrent, &into).args([
        "--exit-on-complete",
        "--peer",
        &format!("127.0.0.1:{middle_port}"),
    ]));
    let status = leecher.wait(Duration::from_secs(90));
    let lines = leecher.rest_of_stdout(Duration::from_secs(2));
    let connected = json_events(&lines, "peer_connected");
    assert!(
        status.is_some_and(|status| status.success()),
        "our leecher did not complete (status {status:?}); connections {connected:?}\nstderr:\n{}",
        leecher.stderr()
    );
    assert_same_file(&data, &into.join("pex.bin"));
    let from_pex: Vec<&serde_json::Value> =
        connected.iter().filter(|event| event["address"] == seeder_addr.as_str()).collect();
    assert_eq!(from_pex.len(), 1, "never connected to the seeder, or more than once: {connected:?}");
    assert_eq!(from_pex[0]["source"], "pex", "the seeder's address came from elsewhere: {connected:?}");
    let report = final_report(&lines);
    let from_seeder = report["peers"]
        .as_array()
        .and_then(|peers| peers.iter().find(|peer| peer["address"] == seeder_addr.as_str()))
        .and_then(|peer| peer["downloaded"].as_u64());
    assert!(from_seeder > Some(0), "nothing downloaded from the seeder learned by PEX: {report}");
}

#[test]
fn aria2_given_only_a_magnet_link_gets_the_metadata_from_our_seeder_and_downloads() {
    if !have_aria2() || !have_opentracker() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let len = 2 * 1024 * 1024 + 9;
    let data = single_file(&work.path().join("src"), "aria2-from-magnet.bin", len, 33);
    let udp = free_udp_port();
    let announce = format!("udp://127.0.0.1:{udp}/announce");
    let (torrent, info_hash) = make_torrent(&data, &announce, 15);
    let _opentracker = start_opentracker(work.path(), udp, &[info_hash]);
    let mut seeder = OurSeeder::start(&torrent, &work.path().join("src"));

    let magnet = format!("magnet:?xt=urn:btih:{}&tr={announce}", hex::encode(info_hash));
    let into = work.path().join("leech");
    let (mut command, log, _) = aria2(work.path(), "aria2-magnet", &into, &magnet);
    command.args(["--seed-time=0", "--bt-stop-timeout=10"]);
    let mut leecher = Running::start(&mut command);
    let status = leecher.wait(DOWNLOAD_TIMEOUT);
    if !status.is_some_and(|status| status.success()) {
        panic!(
            "aria2 did not complete from a magnet link (status {status:?}); our seeder's disconnects: {:?}\n\
             aria2's log:\n{}",
            seeder.disconnects(),
            log_tail(&log)
        );
    }
    assert_same_file(&data, &into.join("aria2-from-magnet.bin"));
    let uploaded = seeder.stop();
    assert!(uploaded >= len as u64, "our seeder uploaded only {uploaded} of {len} bytes");
}

/// aria2 announces `left=0` while it fetches a magnet link's metadata, so a tracker takes it for a seeder; ours
/// fills a seeder's reply with seeders when there are too few leechers, so aria2 is told of the libtorrent
/// seeder (with leechers only, it was told of nobody and waited for ever).
#[test]
fn aria2_given_only_a_magnet_link_to_our_tracker_downloads_from_a_libtorrent_seeder() {
    if !have_aria2() || !have_libtorrent() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let (_tracker, tracker_addr, announce) = start_tracker();
    let len = 2 * 1024 * 1024 + 17;
    let data = single_file(&work.path().join("src"), "aria2-lt-magnet.bin", len, 37);
    let (torrent, info_hash) = make_torrent(&data, &announce, 15);
    let (_seeder, _) = start_libtorrent_seeder(&torrent, &work.path().join("src"));
    let listed = wait_for_scrape(tracker_addr, info_hash, Duration::from_secs(15), |stats| stats.seeders > 0);
    assert!(listed, "the libtorrent seeder never announced");

    let magnet = format!("magnet:?xt=urn:btih:{}&tr={announce}", hex::encode(info_hash));
    let into = work.path().join("leech");
    let (mut command, log, _) = aria2(work.path(), "aria2-lt-magnet", &into, &magnet);
    command.args(["--seed-time=0", "--bt-stop-timeout=10"]);
    let mut leecher = Running::start(&mut command);
    let status = leecher.wait(DOWNLOAD_TIMEOUT);
    assert!(
        status.is_some_and(|status| status.success()),
        "aria2 did not complete from a magnet link through our tracker (status {status:?}); aria2's log:\n{}",
        log_tail(&log)
    );
    assert_same_file(&data, &into.join("aria2-lt-magnet.bin"));
}
