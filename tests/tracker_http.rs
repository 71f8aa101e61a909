//! End-to-end tests of the tracker's HTTP front end (`tracker --http ADDR`): real clients (libtorrent, aria2,
//! Transmission) finding each other through it, its scrape agreeing with the UDP one, hostile input (an over-long
//! request line, malformed queries, slowloris, thousands of idle connections), and `--real-ip-header`.
//!
//! Everything runs on loopback. The HTTP side is spoken with a bare `TcpStream` (HTTP/1.1, `Connection: close`),
//! so that the bytes on the wire are exactly the test's. Linux only: the idle-connection test reads /proc.
#![cfg(target_os = "linux")]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::process::Running;
use common::udp::UdpClient;
use common::{
    assert_same_file, bin, free_tcp_port, have_aria2, have_libtorrent, have_tool, log_tail, lt_peer, make_torrent,
    start_libtorrent_seeder, write_pseudo_random,
};
use tracker_protocol::http::{
    HttpAnnounceReply, HttpAnnounceSuccess, HttpScrapeReply, ScrapeEntry, parse_announce_reply, parse_scrape_reply,
};
use tracker_protocol::{AnnounceEvent, TorrentStats};

const HASH: [u8; 20] = [0xab; 20];
/// Longest wait for a reference client to finish a download of a few MiB (libtorrent and aria2 take a second or
/// two; Transmission about 12 s, since it unchokes a new peer only at its next 10-second rechoke).
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(40);
/// The tracker's limits (crates/tracker/src/http_front.rs), as a client sees them.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_CONNECTIONS_PER_IP: usize = 256;

// ---------------------------------------------------------------------------------------------------------------
// The tracker and a bare HTTP/1.1 client.

/// Our tracker with its UDP and HTTP addresses.
struct Tracker {
    process: Running,
    udp: SocketAddr,
    http: SocketAddr,
}

impl Tracker {
    /// `tracker ARGS...`, waiting for its `listening on` (UDP) and `http on` (TCP) lines.
    fn start(args: &[&str]) -> Tracker {
        let mut command = Command::new(bin("tracker"));
        command.args(args);
        let (mut process, udp) = Running::start_listening(&mut command);
        let line = process
            .wait_for_line(|line| line.starts_with("http on "), Duration::from_secs(10))
            .unwrap_or_else(|| panic!("{command:?} never printed `http on`; stderr:\n{}", process.stderr()));
        let http = line["http on ".len()..].trim().parse().expect("an address after `http on`");
        Tracker { process, udp, http }
    }

    /// An open tracker on loopback port 0 for both UDP and HTTP, with `extra` options.
    fn open(extra: &[&str]) -> Tracker {
        let mut args = vec!["--open", "--bind", "127.0.0.1:0", "--http", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        Tracker::start(&args)
    }

    /// Polls stderr (up to `timeout`) for a line holding every one of `parts`.
    fn wait_for_log_line(&self, parts: &[&str], timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.process.stderr().lines().any(|line| parts.iter().all(|part| line.contains(part))) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// One HTTP reply: status, head (status line and headers) and body.
struct Reply {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body = String::from_utf8_lossy(&self.body);
        let shown: String = body.chars().take(300).collect();
        write!(f, "{:?} with a {}-byte body {shown:?}", self.head, self.body.len())
    }
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// Splits raw reply bytes into a [`Reply`], checking `content-length` against the body.
fn parse_reply(raw: &[u8]) -> Reply {
    let end = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in the reply {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP/1.1 status line: {head:?}"));
    let reply = Reply { status, head, body: raw[end + 4..].to_vec() };
    if let Some(length) = reply.header("content-length") {
        assert_eq!(length.parse::<usize>().ok(), Some(reply.body.len()), "content-length of {reply:?}");
    }
    reply
}

fn connect(http: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&http, Duration::from_secs(5))
        .unwrap_or_else(|err| panic!("connecting to the tracker's HTTP port {http}: {err}"));
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("read timeout");
    stream
}

/// `GET target` with `Connection: close` and the extra `headers`; the whole reply.
fn get(http: SocketAddr, target: &str, headers: &[(&str, &str)]) -> Reply {
    let mut stream = connect(http);
    let mut request = format!("GET {target} HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).expect("send the request");
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .unwrap_or_else(|err| panic!("reading the reply to GET {target} (got {raw:?} so far): {err}"));
    parse_reply(&raw)
}

/// Every byte percent-encoded, as clients send binary info-hashes and peer ids.
fn pct(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("%{byte:02X}")).collect()
}

/// The request target of a compact announce from a peer listening on `port`.
fn announce_target(info_hash: [u8; 20], port: u16, left: u64, event: Option<&str>) -> String {
    let peer_id: [u8; 20] = std::array::from_fn(|index| if index < 2 { port.to_be_bytes()[index] } else { b'-' });
    let mut target = format!(
        "/announce?info_hash={}&peer_id={}&port={port}&uploaded=0&downloaded=0&left={left}&compact=1&numwant=50",
        pct(&info_hash),
        pct(&peer_id)
    );
    if let Some(event) = event {
        target.push_str("&event=");
        target.push_str(event);
    }
    target
}

/// Announces over HTTP; the reply must be a success.
fn announce(http: SocketAddr, target: &str, headers: &[(&str, &str)]) -> HttpAnnounceSuccess {
    let reply = get(http, target, headers);
    assert_eq!(reply.status, 200, "{reply:?}");
    match parse_announce_reply(&reply.body) {
        Ok(HttpAnnounceReply::Success(success)) => success,
        other => panic!("GET {target} was not a successful announce: {other:?} from {reply:?}"),
    }
}

/// Asserts that `target` is refused with exactly `reason`: status 200, a bencoded `failure reason`, nothing else.
fn assert_refused(http: SocketAddr, target: &str, headers: &[(&str, &str)], reason: &str) {
    let reply = get(http, target, headers);
    assert_eq!(reply.status, 200, "a refusal is sent with status 200: {reply:?}");
    assert_eq!(reply.header("content-type"), Some("text/plain"), "{reply:?}");
    let expected = format!("d14:failure reason{}:{reason}e", reason.len());
    assert_eq!(
        String::from_utf8_lossy(&reply.body),
        expected,
        "the answer to GET {}",
        &target[..target.len().min(200)]
    );
    assert_eq!(parse_announce_reply(&reply.body), Ok(HttpAnnounceReply::Failure(reason.to_owned())));
}

/// BEP 48 scrape over HTTP: the entries in the reply.
fn http_scrape(http: SocketAddr, hashes: &[[u8; 20]]) -> Vec<ScrapeEntry> {
    http_scrape_with(http, hashes, &[])
}

/// [`http_scrape`] with extra request headers.
fn http_scrape_with(http: SocketAddr, hashes: &[[u8; 20]], headers: &[(&str, &str)]) -> Vec<ScrapeEntry> {
    let query: Vec<String> = hashes.iter().map(|hash| format!("info_hash={}", pct(hash))).collect();
    let reply = get(http, &format!("/scrape?{}", query.join("&")), headers);
    assert_eq!(reply.status, 200, "{reply:?}");
    match parse_scrape_reply(&reply.body) {
        Ok(HttpScrapeReply::Files(entries)) => entries,
        other => panic!("not a scrape reply: {other:?} from {reply:?}"),
    }
}

/// The HTTP scrape's counts for `info_hash` (zeros when the tracker omits it).
fn http_stats(http: SocketAddr, info_hash: [u8; 20]) -> TorrentStats {
    http_scrape(http, &[info_hash])
        .into_iter()
        .find(|entry| entry.info_hash == info_hash)
        .map_or(TorrentStats { seeders: 0, completed: 0, leechers: 0 }, |entry| entry.stats)
}

/// Polls the HTTP scrape until `listed` holds or `timeout` passes.
fn wait_for_http_scrape(
    http: SocketAddr,
    info_hash: [u8; 20],
    timeout: Duration,
    listed: impl Fn(&TorrentStats) -> bool,
) -> Option<TorrentStats> {
    let deadline = Instant::now() + timeout;
    loop {
        let stats = http_stats(http, info_hash);
        if listed(&stats) {
            return Some(stats);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn counts(stats: &TorrentStats) -> (u32, u32, u32) {
    (stats.seeders, stats.completed, stats.leechers)
}

fn local(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)
}

fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items
}

// ---------------------------------------------------------------------------------------------------------------
// Reference clients.

/// A libtorrent session downloading `torrent` into `dir`; it exits 0 once complete.
fn libtorrent_leecher(torrent: &Path, dir: &Path) -> Running {
    std::fs::create_dir_all(dir).expect("mkdir leech");
    Running::start(lt_peer().arg("leech").arg(torrent).arg(dir).args([
        "--port",
        &free_tcp_port().to_string(),
        "--timeout",
        &DOWNLOAD_TIMEOUT.as_secs().to_string(),
    ]))
}

fn assert_libtorrent_completes(mut leecher: Running) {
    let status = leecher.wait(DOWNLOAD_TIMEOUT + Duration::from_secs(10)).expect("the leecher stops by its timeout");
    assert!(status.success(), "the libtorrent leecher did not complete ({status}):\n{}", leecher.stderr());
}

/// aria2c on loopback, with the HTTP tracker as its only source of peers: no DHT, LPD or PEX. Its log
/// (`work/NAME.log`) says what went wrong.
fn aria2(work: &Path, name: &str, download_dir: &Path, torrent: &Path) -> (Command, std::path::PathBuf, u16) {
    let log = work.join(format!("{name}.log"));
    let port = free_tcp_port();
    let mut command = Command::new("aria2c");
    command
        .args(["--no-conf", "--enable-dht=false", "--enable-dht6=false", "--disable-ipv6=true"])
        .arg(format!("--listen-port={port}"))
        .args(["--interface=127.0.0.1", "--bt-enable-lpd=false", "--enable-peer-exchange=false"])
        .args(["--check-integrity=true", "--allow-overwrite=true", "--file-allocation=none"])
        .args(["--bt-tracker-connect-timeout=5", "--bt-tracker-timeout=5"])
        .args(["--summary-interval=0", "--console-log-level=warn", "--log-level=info"])
        .arg(format!("--log={}", log.display()))
        .arg(format!("--stop-with-process={}", std::process::id()))
        .arg("-d")
        .arg(download_dir)
        .arg(torrent);
    (command, log, port)
}

fn have_transmission_cli() -> bool {
    have_tool("transmission-cli (apt-get install transmission-cli)", Command::new("transmission-cli").arg("--version"))
}

/// transmission-cli (3.00) on loopback with a private config folder: no DHT, LPD, PEX, uTP or port mapping, so
/// the tracker is its only source of peers. When the torrent is complete it runs a script that creates
/// `work/NAME.done`, returned with the command. It never exits on its own: dropping its [`Running`] kills it.
fn transmission(work: &Path, name: &str, download_dir: &Path, torrent: &Path) -> (Command, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let config = work.join(format!("{name}-config"));
    std::fs::create_dir_all(&config).expect("mkdir transmission config");
    let port = free_tcp_port();
    let settings = serde_json::json!({
        "dht-enabled": false, "lpd-enabled": false, "pex-enabled": false, "utp-enabled": false,
        "port-forwarding-enabled": false, "bind-address-ipv4": "127.0.0.1", "peer-port": port,
        "ratio-limit-enabled": false, "speed-limit-up-enabled": false, "speed-limit-down-enabled": false,
        "message-level": 2,
    });
    std::fs::write(config.join("settings.json"), settings.to_string()).expect("write settings.json");
    let done = work.join(format!("{name}.done"));
    let script = work.join(format!("{name}-done.sh"));
    std::fs::write(&script, format!("#!/bin/sh\ntouch '{}'\n", done.display())).expect("write the done script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod the done script");
    let mut command = Command::new("transmission-cli");
    command.arg("-g").arg(&config).arg("-w").arg(download_dir).args(["-p", &port.to_string()]);
    command.arg("-f").arg(&script).arg(torrent);
    (command, done)
}

/// Writes `len` pseudo-random bytes to `dir/src/NAME` and a torrent for them announcing only to `announce`.
fn payload(
    dir: &Path,
    name: &str,
    len: usize,
    seed: u64,
    announce: &str,
) -> (std::path::PathBuf, std::path::PathBuf, [u8; 20]) {
    let data = dir.join("src").join(name);
    write_pseudo_random(&data, len, seed);
    let (torrent, info_hash) = make_torrent(&data, announce, 16);
    (data, torrent, info_hash)
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Interop.

/// A libtorrent seeder and an aria2 leecher, each given only a torrent whose one tracker is our HTTP tracker (in
/// closed mode, serving just that torrent), find each other and the download completes, byte for byte. The
/// tracker's log shows both announcing over HTTP.
#[test]
fn a_libtorrent_seeder_and_an_aria2_leecher_find_each_other_through_our_http_tracker() {
    if !(have_libtorrent() && have_aria2()) {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let http_port = free_tcp_port();
    let announce_url = format!("http://127.0.0.1:{http_port}/announce");
    let (data, torrent, info_hash) = payload(work.path(), "payload.bin", 3 * 1024 * 1024 + 77, 42, &announce_url);
    let http_bind = format!("127.0.0.1:{http_port}");
    let torrent_arg = torrent.to_str().expect("a UTF-8 path");
    let tracker = Tracker::start(&[torrent_arg, "--bind", "127.0.0.1:0", "--http", &http_bind]);
    assert_eq!(tracker.http.port(), http_port);

    let (_seeder, lt_port) = start_libtorrent_seeder(&torrent, &work.path().join("src"));
    let listed = wait_for_http_scrape(tracker.http, info_hash, Duration::from_secs(15), |stats| stats.seeders == 1);
    assert!(listed.is_some(), "libtorrent never announced itself as a seeder; tracker:\n{}", tracker.process.stderr());

    let into = work.path().join("leech");
    let (mut command, log, aria2_port) = aria2(work.path(), "aria2-leech", &into, &torrent);
    // Exit as soon as the download is complete; give up after 15 s without progress.
    command.args(["--seed-time=0", "--bt-stop-timeout=15"]);
    let mut leecher = Running::start(&mut command);
    let status = leecher.wait(DOWNLOAD_TIMEOUT);
    assert!(
        status.is_some_and(|status| status.success()),
        "aria2 did not complete (status {status:?}); its log:\n{}\ntracker:\n{}",
        log_tail(&log),
        tracker.process.stderr()
    );
    assert_same_file(&data, &into.join("payload.bin"));
    for port in [lt_port, aria2_port] {
        let peer = format!("peer=127.0.0.1:{port}");
        assert!(
            tracker
                .wait_for_log_line(&["peer announced over HTTP", "torrent=payload.bin", &peer], Duration::from_secs(5)),
            "no HTTP announce from {peer} in the tracker's log:\n{}",
            tracker.process.stderr()
        );
    }
}

/// Transmission seeds, libtorrent downloads: Transmission announces to our HTTP tracker as a seeder, libtorrent
/// gets its address from the tracker and dials it.
#[test]
fn libtorrent_downloads_from_a_transmission_seeder_found_through_our_http_tracker() {
    if !(have_libtorrent() && have_transmission_cli()) {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let tracker = Tracker::open(&[]);
    let announce_url = format!("http://{}/announce", tracker.http);
    let (data, torrent, info_hash) = payload(work.path(), "movie.bin", 3 * 1024 * 1024 + 5, 7, &announce_url);
    // Transmission checks the data it finds in its download folder, then seeds it.
    let (mut command, _) = transmission(work.path(), "transmission-seed", &work.path().join("src"), &torrent);
    let seeder = Running::start(&mut command);
    let listed = wait_for_http_scrape(tracker.http, info_hash, Duration::from_secs(20), |stats| stats.seeders == 1);
    assert!(listed.is_some(), "Transmission never announced itself as a seeder:\n{}", seeder.stderr());

    let into = work.path().join("leech");
    assert_libtorrent_completes(libtorrent_leecher(&torrent, &into));
    assert_same_file(&data, &into.join("movie.bin"));
}

/// Transmission downloads from a libtorrent seeder. Transmission 3.00 gets the seeder's address from our tracker
/// but never dials a 127.0.0.0/8 peer (it counts loopback among the "martian" addresses), so the test lets
/// Transmission announce first: the seeder, announcing after it, is handed the leecher and dials it.
#[test]
fn transmission_downloads_from_a_libtorrent_seeder_found_through_our_http_tracker() {
    if !(have_libtorrent() && have_transmission_cli()) {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let tracker = Tracker::open(&[]);
    let announce_url = format!("http://{}/announce", tracker.http);
    let (data, torrent, info_hash) = payload(work.path(), "show.bin", 2 * 1024 * 1024 + 999, 8, &announce_url);

    let into = work.path().join("leech");
    std::fs::create_dir_all(&into).expect("mkdir leech");
    let (mut command, done) = transmission(work.path(), "transmission-leech", &into, &torrent);
    let leecher = Running::start(&mut command);
    let listed = wait_for_http_scrape(tracker.http, info_hash, Duration::from_secs(20), |stats| stats.leechers == 1);
    assert!(listed.is_some(), "Transmission never announced itself as a leecher:\n{}", leecher.stderr());

    let (_seeder, _) = start_libtorrent_seeder(&torrent, &work.path().join("src"));
    let deadline = Instant::now() + DOWNLOAD_TIMEOUT;
    while !done.exists() {
        assert!(
            Instant::now() < deadline,
            "Transmission did not complete in {DOWNLOAD_TIMEOUT:?}:\n{}",
            leecher.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_same_file(&data, &into.join("show.bin"));
}

// ---------------------------------------------------------------------------------------------------------------
// 2. HTTP scrape and UDP scrape.

/// A swarm built from announces over both fronts: the HTTP scrape (BEP 48) and the UDP scrape (BEP 15) give the
/// same counts, zeros for an unknown torrent included.
#[test]
fn http_scrape_agrees_with_udp_scrape_for_the_same_swarm() {
    let tracker = Tracker::open(&[]);
    let other: [u8; 20] = [0x26; 20]; // 0x26 is '&': percent-encoded it must stay a byte of the hash
    let unknown: [u8; 20] = [0x3d; 20]; // '='
    let mut udp = UdpClient::new(tracker.udp);

    // UDP: a seeder and two leechers, one of which then completes and one of which stops.
    udp.announce(HASH, 7001, 0, AnnounceEvent::Started, -1);
    udp.announce(HASH, 7002, 1000, AnnounceEvent::Started, -1);
    udp.announce(HASH, 7003, 1000, AnnounceEvent::Started, -1);
    udp.announce(HASH, 7002, 0, AnnounceEvent::Completed, -1);
    udp.announce(HASH, 7003, 1000, AnnounceEvent::Stopped, -1);
    // HTTP: a seeder, two leechers, one of which completes; and one peer of another torrent.
    announce(tracker.http, &announce_target(HASH, 7004, 0, Some("started")), &[]);
    let leecher = announce(tracker.http, &announce_target(HASH, 7005, 500, Some("started")), &[]);
    assert_eq!(sorted(leecher.peers.clone()), [local(7001), local(7002), local(7004)], "every seeder, over HTTP");
    announce(tracker.http, &announce_target(HASH, 7006, 500, Some("started")), &[]);
    let finished = announce(tracker.http, &announce_target(HASH, 7005, 0, Some("completed")), &[]);
    assert_eq!(
        (finished.complete, finished.downloaded, finished.incomplete, finished.interval),
        (Some(4), Some(2), Some(1), Some(120)),
        "the announce reply's counts"
    );
    announce(tracker.http, &announce_target(other, 7007, 100, Some("started")), &[]);

    let over_udp = udp.scrape(&[HASH, other, unknown]);
    let over_http = http_scrape(tracker.http, &[HASH, other, unknown]);
    assert_eq!(over_udp.iter().map(counts).collect::<Vec<_>>(), [(4, 2, 1), (0, 0, 1), (0, 0, 0)]);
    let http_counts: Vec<([u8; 20], (u32, u32, u32))> =
        over_http.iter().map(|entry| (entry.info_hash, counts(&entry.stats))).collect();
    assert_eq!(
        sorted(http_counts),
        sorted(vec![(HASH, counts(&over_udp[0])), (other, counts(&over_udp[1])), (unknown, counts(&over_udp[2]))]),
        "HTTP scrape differs from UDP scrape"
    );
    // A repeated info_hash is answered once.
    let repeated = http_scrape(tracker.http, &[HASH, HASH]);
    assert_eq!(repeated.len(), 1);
    assert_eq!(counts(&repeated[0].stats), (4, 2, 1));
}

/// In closed mode the HTTP front serves the named torrent only, as the UDP one does.
#[test]
fn a_closed_tracker_serves_only_its_torrent_over_http() {
    let work = tempfile::tempdir().expect("tempdir");
    let (_, torrent, info_hash) = payload(work.path(), "named.bin", 100_000, 3, "http://127.0.0.1:1/announce");
    let torrent_arg = torrent.to_str().expect("a UTF-8 path");
    let tracker = Tracker::start(&[torrent_arg, "--bind", "127.0.0.1:0", "--http", "127.0.0.1:0"]);
    assert_refused(tracker.http, &announce_target(HASH, 7001, 0, None), &[], "unknown torrent");
    let seeder = announce(tracker.http, &announce_target(info_hash, 7001, 0, Some("started")), &[]);
    assert_eq!((seeder.complete, seeder.incomplete, seeder.peers.len()), (Some(1), Some(0), 0));
    let leecher = announce(tracker.http, &announce_target(info_hash, 7002, 50_000, Some("started")), &[]);
    assert_eq!(leecher.peers, [local(7001)]);
    let zero = TorrentStats { seeders: 0, completed: 0, leechers: 0 };
    let unserved = http_scrape(tracker.http, &[HASH]);
    assert_eq!(unserved, [ScrapeEntry { info_hash: HASH, stats: zero }], "an unserved torrent is scraped as zeros");
    assert!(
        tracker.wait_for_log_line(
            &["peer announced over HTTP", "torrent=named.bin", "peer=127.0.0.1:7002"],
            Duration::from_secs(5)
        ),
        "{}",
        tracker.process.stderr()
    );
}

// ---------------------------------------------------------------------------------------------------------------
// 3. Hostile input.

/// Sends `request` from a thread (the tracker may stop reading and reset the connection mid-way) while this
/// thread reads the reply to its end; returns what was read.
fn send_and_read_all(http: SocketAddr, request: Vec<u8>) -> Vec<u8> {
    let mut stream = connect(http);
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
    let mut writer = stream.try_clone().expect("clone the stream");
    let sender = std::thread::spawn(move || writer.write_all(&request));
    let mut raw = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buffer[..n]),
            // A reset after the reply: the tracker closed with our request unread.
            Err(err) if err.kind() == ErrorKind::ConnectionReset => break,
            Err(err) => panic!("reading the reply (got {} bytes so far): {err}", raw.len()),
        }
    }
    // Unblocks the writer if the tracker kept the socket open.
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = sender.join().expect("the writer thread");
    raw
}

/// The request head is capped at 8 KiB: a longer request line (1 MB, or just 9 KB) is refused by hyper with `431
/// Request Header Fields Too Large` and `connection: close` before the tracker sees it; a 7 KB one still reaches
/// the tracker. The tracker keeps serving.
#[test]
fn an_over_long_request_line_gets_431_and_the_tracker_keeps_serving() {
    let tracker = Tracker::open(&[]);
    for len in [1_000_000, 9_000] {
        let request = format!("GET /announce?{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(len)).into_bytes();
        let started = Instant::now();
        let raw = send_and_read_all(tracker.http, request);
        let reply = parse_reply(&raw);
        assert_eq!(reply.status, 431, "a {len}-byte query: {reply:?}");
        assert!(reply.head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "{reply:?}");
        assert_eq!(reply.header("connection"), Some("close"), "{reply:?}");
        assert_eq!(reply.body, b"", "{reply:?}");
        assert!(started.elapsed() < Duration::from_secs(3), "the refusal took {:?}", started.elapsed());
    }
    // Under the cap the query reaches the tracker, which refuses it for what it is.
    assert_refused(tracker.http, &format!("/announce?{}", "a".repeat(7_000)), &[], "missing port");
    let seeder = announce(tracker.http, &announce_target(HASH, 7001, 0, Some("started")), &[]);
    assert_eq!(seeder.complete, Some(1));
}

/// Malformed announces get a `failure reason` naming the problem, with status 200; an unknown path gets 404.
/// None of them changes the swarm.
#[test]
fn malformed_requests_get_exact_failure_reasons_and_unknown_paths_404() {
    let tracker = Tracker::open(&[]);
    let hash = pct(&HASH);
    let peer_id = pct(&[b'p'; 20]);
    let rest = "&uploaded=0&downloaded=0&left=0";
    let cases = [
        (format!("/announce?peer_id={peer_id}&port=6881{rest}"), "missing info_hash".to_owned()),
        (
            format!("/announce?info_hash={}&peer_id={peer_id}&port=6881{rest}", pct(&[0xab; 19])),
            "info_hash is 19 bytes long, not 20".to_owned(),
        ),
        (
            format!("/announce?info_hash={hash}&peer_id={peer_id}&port=6881{rest}&numwant=-5"),
            "numwant is not a non-negative decimal number".to_owned(),
        ),
        (format!("/announce?info_hash={hash}&peer_id={peer_id}&port=0{rest}"), "port 0 is out of range".to_owned()),
        (
            format!("/announce?info_hash={hash}&peer_id={peer_id}&port=65536{rest}"),
            "port 65536 is out of range".to_owned(),
        ),
        (
            format!("/announce?info_hash=%zz{}&peer_id={peer_id}&port=6881{rest}", pct(&[0; 19])),
            "bad percent-encoding in info_hash".to_owned(),
        ),
        (
            format!("/announce?info_hash={hash}&info_hash={hash}&peer_id={peer_id}&port=6881{rest}"),
            "info_hash given more than once".to_owned(),
        ),
        (
            format!("/announce?info_hash={hash}&peer_id={peer_id}&port=6881{rest}&event=bogus"),
            "unknown event".to_owned(),
        ),
        ("/announce".to_owned(), "missing port".to_owned()),
        ("/scrape".to_owned(), "a scrape must name its info_hash".to_owned()),
        (format!("/scrape?info_hash={}", pct(&[1; 21])), "info_hash is 21 bytes long, not 20".to_owned()),
    ];
    for (target, reason) in &cases {
        assert_refused(tracker.http, target, &[], reason);
    }
    for path in ["/nothing", "/announce/extra", "/ANNOUNCE", "/scrape.php"] {
        let reply = get(tracker.http, path, &[]);
        assert_eq!((reply.status, reply.body.as_slice()), (404, &b"not found\n"[..]), "GET {path}: {reply:?}");
    }
    assert_eq!(counts(&http_stats(tracker.http, HASH)), (0, 0, 0), "a refused announce recorded a peer");
    let first = announce(tracker.http, &announce_target(HASH, 6881, 0, Some("started")), &[]);
    assert_eq!((first.complete, first.incomplete, first.peers.len()), (Some(1), Some(0), 0));
}

/// Whether the tracker has closed `stream` (EOF or reset), reading what it sent first into `received`; false while
/// it is open (a read would block or times out).
fn closed(stream: &mut TcpStream, received: &mut Vec<u8>) -> bool {
    let mut buffer = [0u8; 512];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return false,
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}

/// Slowloris: a connection that sends half a request line and then nothing, and one that drips a request a byte
/// every 250 ms, are both closed (without a reply) about 10 s (the head timeout) after they connected, while a
/// normal announce on another connection is answered at once meanwhile.
#[test]
fn slowloris_connections_are_closed_by_the_head_timeout_while_others_are_served() {
    let tracker = Tracker::open(&[]);
    let http = tracker.http;

    let half_started = Instant::now();
    let mut half = connect(http);
    half.write_all(format!("GET /announce?info_hash={}", pct(&HASH[..10])).as_bytes()).expect("half a line");

    let drip = std::thread::spawn(move || {
        let started = Instant::now();
        let mut stream = connect(http);
        stream.set_read_timeout(Some(Duration::from_millis(250))).expect("read timeout");
        let request = format!("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", announce_target(HASH, 7002, 100, None));
        let mut received = Vec::new();
        for (sent, byte) in request.bytes().enumerate() {
            // The read's timeout paces the drip, and sees the close as soon as it comes.
            if stream.write_all(&[byte]).is_err() || closed(&mut stream, &mut received) {
                return (started.elapsed(), sent, received);
            }
        }
        panic!("the whole request went through a byte every 250 ms: the head timeout never fired");
    });

    // Meanwhile an ordinary client is served at once.
    let asked = Instant::now();
    let seeder = announce(http, &announce_target(HASH, 7001, 0, Some("started")), &[]);
    assert_eq!(seeder.complete, Some(1));
    assert!(asked.elapsed() < Duration::from_secs(2), "a normal announce took {:?}", asked.elapsed());
    half.set_nonblocking(true).expect("nonblocking");
    let mut received = Vec::new();
    assert!(!closed(&mut half, &mut received), "the half request was dropped before its time");
    half.set_nonblocking(false).expect("blocking");

    half.set_read_timeout(Some(HEAD_TIMEOUT + Duration::from_secs(5))).expect("read timeout");
    let mut buffer = [0u8; 512];
    let outcome = half.read(&mut buffer);
    let waited = half_started.elapsed();
    assert!(
        matches!(outcome, Ok(0)) || outcome.as_ref().is_err_and(|err| err.kind() == ErrorKind::ConnectionReset),
        "the half request was not closed within {waited:?}: {outcome:?}"
    );
    assert!(
        waited >= HEAD_TIMEOUT - Duration::from_millis(500) && waited <= HEAD_TIMEOUT + Duration::from_millis(2500),
        "the half request was closed after {waited:?}, not about {HEAD_TIMEOUT:?}"
    );

    let (dripped_for, sent, received) = drip.join().expect("the drip thread");
    assert_eq!(received, b"", "the tracker answered a dripping request: {:?}", String::from_utf8_lossy(&received));
    assert!(sent >= 30, "only {sent} bytes dripped before the close after {dripped_for:?}");
    assert!(
        dripped_for >= HEAD_TIMEOUT - Duration::from_millis(500)
            && dripped_for <= HEAD_TIMEOUT + Duration::from_millis(2500),
        "the dripping request was closed after {dripped_for:?} ({sent} bytes), not about {HEAD_TIMEOUT:?}"
    );
}

/// Entries in this process's open-file table that the test may use, after raising the soft limit as far as
/// the hard one allows (children started later inherit it).
fn raise_fd_limit(wanted: u64) -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let current = limit.current.unwrap_or(u64::MAX);
    if current >= wanted {
        return current;
    }
    let raised = limit.maximum.map_or(wanted, |maximum| maximum.min(wanted));
    match setrlimit(Resource::Nofile, Rlimit { current: Some(raised), maximum: limit.maximum }) {
        Ok(()) => raised,
        Err(err) => {
            eprintln!("could not raise the open-file limit from {current} to {raised}: {err}");
            current
        }
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the tracker's /proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// Connections waiting in the accept queue of the listening socket at `address` (the `rx_queue` of its LISTEN
/// line in /proc/net/tcp), or `None` when it cannot be read. Listening sockets come first in that table, so the
/// read stops long before the thousands of established connections.
fn accept_queue(address: SocketAddr) -> Option<u64> {
    use std::io::BufRead;
    let SocketAddr::V4(v4) = address else { return None };
    let local = format!("{:08X}:{:04X}", u32::from_le_bytes(v4.ip().octets()), v4.port());
    let table = std::io::BufReader::new(std::fs::File::open("/proc/net/tcp").ok()?);
    for line in table.lines().skip(1) {
        let line = line.ok()?;
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1) == Some(&local.as_str()) && fields.get(3) == Some(&"0A") {
            return u64::from_str_radix(fields.get(4)?.split(':').nth(1)?, 16).ok();
        }
    }
    None
}

/// 5,000 connections from one address that send nothing: the tracker keeps 256 (its per-address cap) and closes
/// the rest at once; another address is still served over HTTP, and UDP announces are answered; memory stays
/// bounded; the 256 are closed by the head timeout, and then the address is served again.
#[test]
fn thousands_of_idle_connections_are_capped_timed_out_and_bounded_in_memory() {
    const WANTED: usize = 5_000;
    const SPARE_FDS: usize = 256;
    let limit = raise_fd_limit((WANTED + SPARE_FDS) as u64);
    let count = WANTED.min(usize::try_from(limit).unwrap_or(usize::MAX).saturating_sub(SPARE_FDS));
    if count <= MAX_CONNECTIONS_PER_IP {
        eprintln!(
            "\n*** the open-file limit ({limit}) allows only {count} connections: the per-address cap is not \
             reached, only the head timeout is tested ***\n"
        );
    }
    let tracker = Tracker::open(&[]);
    let pid = tracker.process.pid();
    let rss_before = rss_kib(pid);

    // Open them all, a batch at a time, letting the tracker's accept queue drain between batches, so that each is
    // accepted (and counted) in the order it was opened.
    let opening = Instant::now();
    let mut connections: Vec<(TcpStream, Instant)> = Vec::with_capacity(count);
    for index in 0..count {
        let stream = TcpStream::connect(tracker.http).unwrap_or_else(|err| panic!("connection {index}: {err}"));
        stream.set_nonblocking(true).expect("nonblocking");
        connections.push((stream, Instant::now()));
        if index % 64 == 63 || index + 1 == count {
            let deadline = Instant::now() + Duration::from_secs(5);
            while accept_queue(tracker.http).is_some_and(|queued| queued > 0) {
                assert!(Instant::now() < deadline, "the tracker stopped accepting after {index} connections");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
    let opened_in = opening.elapsed();
    assert!(opened_in < Duration::from_secs(5), "opening {count} connections took {opened_in:?}");

    // While this address is at its cap: its new connections are closed without an answer, while another address
    // is served, over HTTP and UDP.
    let full = count > MAX_CONNECTIONS_PER_IP;
    if full {
        let mut probe = connect(tracker.http);
        let request = format!("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", announce_target(HASH, 7001, 0, None));
        let _ = probe.write_all(request.as_bytes());
        let mut received = Vec::new();
        assert!(closed(&mut probe, &mut received), "a connection past the cap was kept open");
        assert_eq!(received, b"", "a connection past the cap was answered");
        let mut other = common::dos::connect_from(Ipv4Addr::new(127, 0, 0, 2), tracker.http).expect("from 127.0.0.2");
        other.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            announce_target(HASH, 7003, 0, Some("started"))
        );
        other.write_all(request.as_bytes()).expect("send");
        let mut reply = Vec::new();
        let _ = other.read_to_end(&mut reply);
        assert!(reply.starts_with(b"HTTP/1.1 200"), "another address was not served: {reply:?}");
    }
    let mut udp = UdpClient::new(tracker.udp);
    // A seeder over UDP is served too: with no leecher about, it is handed the other address's seeder, if any.
    let expected: Vec<SocketAddrV4> =
        if full { vec![SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 2), 7003)] } else { Vec::new() };
    assert_eq!(udp.announce(HASH, 7001, 0, AnnounceEvent::Started, -1).peers(), expected);

    // Watch every connection until the tracker closes it.
    let mut lifetimes: Vec<Option<Duration>> = vec![None; count];
    let mut peak_rss = rss_kib(pid);
    let deadline = Instant::now() + HEAD_TIMEOUT + Duration::from_secs(5);
    loop {
        let mut open = 0;
        for ((stream, at), lifetime) in connections.iter_mut().zip(&mut lifetimes) {
            if lifetime.is_some() {
                continue;
            }
            let mut received = Vec::new();
            if closed(stream, &mut received) {
                assert_eq!(received, b"", "an idle connection was sent something");
                *lifetime = Some(at.elapsed());
            } else {
                open += 1;
            }
        }
        peak_rss = peak_rss.max(rss_kib(pid));
        if open == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{open} idle connections still open {:?} after opening", opening.elapsed());
        std::thread::sleep(Duration::from_millis(25));
    }
    let lifetimes: Vec<Duration> = lifetimes.into_iter().flatten().collect();
    let at_once = lifetimes.iter().filter(|lifetime| **lifetime < Duration::from_secs(7)).count();
    let timed_out = lifetimes
        .iter()
        .filter(|lifetime| {
            **lifetime >= HEAD_TIMEOUT - Duration::from_millis(500)
                && **lifetime <= HEAD_TIMEOUT + Duration::from_secs(3)
        })
        .count();
    let held = count.min(MAX_CONNECTIONS_PER_IP);
    assert_eq!(
        (at_once, timed_out),
        (count - held, held),
        "of {count} idle connections, expected {} closed at once and {held} by the head timeout; lifetimes from \
         {:?} to {:?}",
        count - held,
        lifetimes.iter().min(),
        lifetimes.iter().max()
    );
    eprintln!(
        "{count} idle connections opened in {opened_in:?}: {at_once} closed at once, {timed_out} by the head \
         timeout; tracker RSS {rss_before} KiB before, {peak_rss} KiB at most"
    );
    assert!(peak_rss < 200 * 1024, "the tracker's RSS reached {peak_rss} KiB holding {held} idle connections");

    // The slots are free again.
    let seeder = announce(tracker.http, &announce_target(HASH, 7002, 0, Some("started")), &[]);
    assert_eq!(seeder.complete, Some(2 + usize::from(full) as u32), "the UDP seeder, 127.0.0.2's and this one");
}

// ---------------------------------------------------------------------------------------------------------------
// 4. Behind a reverse proxy.

/// With `--real-ip-header X-Forwarded-For` the client's address is the header's last entry: peers are listed
/// (and handed out) under it, IPv6 ones in `peers6` (BEP 7); a request without a usable header is refused.
#[test]
fn real_ip_header_addresses_are_recorded_and_handed_out() {
    let tracker = Tracker::open(&["--real-ip-header", "X-Forwarded-For"]);
    let http = tracker.http;
    let xff = |value: &'static str| [("X-Forwarded-For", value)];

    let seeder = announce(http, &announce_target(HASH, 6881, 0, Some("started")), &xff("10.1.2.3"));
    assert_eq!((seeder.complete, seeder.incomplete, seeder.peers.len()), (Some(1), Some(0), 0));
    let leecher = announce(http, &announce_target(HASH, 6882, 100, Some("started")), &xff("10.9.8.7"));
    assert_eq!(leecher.peers, [SocketAddrV4::new(Ipv4Addr::new(10, 1, 2, 3), 6881)]);
    assert_eq!(leecher.peers6, []);
    // A proxy chain: the last address is the one our proxy saw; the first is the client's claim.
    let chained = announce(http, &announce_target(HASH, 6883, 100, Some("started")), &xff("203.0.113.9, 10.4.4.4"));
    assert_eq!(
        sorted(chained.peers),
        [SocketAddrV4::new(Ipv4Addr::new(10, 1, 2, 3), 6881), SocketAddrV4::new(Ipv4Addr::new(10, 9, 8, 7), 6882)]
    );
    let seeder_again = announce(http, &announce_target(HASH, 6881, 0, None), &xff("10.1.2.3"));
    assert_eq!(
        sorted(seeder_again.peers),
        [SocketAddrV4::new(Ipv4Addr::new(10, 4, 4, 4), 6883), SocketAddrV4::new(Ipv4Addr::new(10, 9, 8, 7), 6882)],
        "recorded under the header's addresses, not the connection's 127.0.0.1"
    );
    // An IPv4-mapped IPv6 address is the IPv4 peer it maps.
    let mapped = announce(http, &announce_target(HASH, 6881, 0, None), &xff("::ffff:10.1.2.3"));
    assert_eq!((mapped.complete, mapped.incomplete), (Some(1), Some(2)), "the mapped address is the same peer");

    // IPv6 clients get IPv6 peers, compact in peers6.
    let v6_seeder = announce(http, &announce_target(HASH, 7001, 0, Some("started")), &xff("2001:db8::1"));
    assert_eq!((v6_seeder.peers.len(), v6_seeder.peers6.len()), (0, 0), "{v6_seeder:?}");
    let v6_leecher = announce(http, &announce_target(HASH, 7002, 10, Some("started")), &xff("2001:db8::2"));
    assert_eq!(v6_leecher.peers6, [SocketAddrV6::new(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 7001, 0, 0)]);
    assert_eq!(v6_leecher.peers, [], "IPv4 peers are not handed to an IPv6 client");

    for headers in [&[][..], &xff("not-an-address"), &xff(""), &xff("10.1.2.3, ")] {
        assert_refused(http, &announce_target(HASH, 6890, 0, None), headers, "the proxy sent no client address");
    }
    // A scrape does not depend on who asks: with the header or without, the same counts.
    for headers in [&xff("10.1.2.3")[..], &[]] {
        let scraped = http_scrape_with(http, &[HASH], headers);
        assert_eq!(
            scraped.iter().map(|entry| counts(&entry.stats)).collect::<Vec<_>>(),
            [(2, 0, 3)],
            "refused ones recorded nobody"
        );
    }
}

/// On a dual-stack socket (`--http [::]:0`) an IPv6 client is listed and answered in `peers6` (BEP 7), and an IPv4
/// client arriving as `::ffff:127.0.0.1` stays IPv4 (BEP 23 `peers`): the families never mix.
#[test]
fn ipv6_http_clients_get_peers6_and_mapped_ipv4_clients_stay_ipv4() {
    if !common::have_ipv6_loopback() {
        return;
    }
    let tracker = Tracker::start(&["--open", "--bind", "[::]:0", "--http", "[::]:0"]);
    let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, tracker.http.port()));
    let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, tracker.http.port()));

    let v4_seeder = announce(v4, &announce_target(HASH, 7001, 0, Some("started")), &[]);
    assert_eq!((v4_seeder.peers.len(), v4_seeder.peers6.len()), (0, 0));
    let v6_seeder = announce(v6, &announce_target(HASH, 8001, 0, Some("started")), &[]);
    assert_eq!((v6_seeder.peers.len(), v6_seeder.peers6.len()), (0, 0), "the IPv4 seeder is not handed to IPv6 peers");
    let v6_leecher = announce(v6, &announce_target(HASH, 8002, 100, Some("started")), &[]);
    assert_eq!(v6_leecher.peers6, [SocketAddrV6::new(Ipv6Addr::LOCALHOST, 8001, 0, 0)]);
    assert_eq!(v6_leecher.peers, []);
    assert_eq!((v6_leecher.complete, v6_leecher.incomplete), (Some(2), Some(1)), "counts cover both families");
    let v4_leecher = announce(v4, &announce_target(HASH, 7002, 100, Some("started")), &[]);
    assert_eq!(v4_leecher.peers, [local(7001)]);
    assert_eq!(v4_leecher.peers6, []);
    // The wire form: an empty `peers` and two 18-byte entries in `peers6`.
    let raw = get(v6, &announce_target(HASH, 8003, 100, None), &[]).body;
    let key = b"5:peers0:6:peers636:";
    let at = raw.windows(key.len()).position(|window| window == key).map(|at| at + key.len());
    let entries = at.and_then(|at| raw.get(at..at + 36)).unwrap_or_else(|| panic!("no 36-byte peers6 in {raw:?}"));
    let entry = |port: u16| [&Ipv6Addr::LOCALHOST.octets()[..], &port.to_be_bytes()].concat();
    assert_eq!(sorted(entries.chunks(18).map(<[u8]>::to_vec).collect()), [entry(8001), entry(8002)]);
}

/// Without `--real-ip-header` the header is only a header: a client cannot pick the address it is listed under.
#[test]
fn without_real_ip_header_a_forwarded_for_header_is_ignored() {
    let tracker = Tracker::open(&[]);
    announce(tracker.http, &announce_target(HASH, 6881, 0, Some("started")), &[("X-Forwarded-For", "10.1.2.3")]);
    let leecher = announce(tracker.http, &announce_target(HASH, 6882, 100, Some("started")), &[]);
    assert_eq!(leecher.peers, [local(6881)]);
}
