//! For the tests that drive the peer crate's `Session` from library code: our tracker with HTTP (whose scrape
//! says who the swarm holds), a seeder process, a runtime, and what the process holds (threads, fds).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::process::Running;
use super::{bin, free_tcp_port, free_udp_port, make_torrent, write_pseudo_random};

/// Our tracker on loopback (UDP for the peers, HTTP for scrapes) with a 5 s interval.
pub struct Tracker {
    _process: Running,
    pub announce: String,
    http: SocketAddr,
}

impl Tracker {
    pub fn start() -> Tracker {
        let (udp, http) = (free_udp_port(), free_tcp_port());
        let (process, _) = Running::start_listening(
            Command::new(bin("tracker"))
                .args(["--open", "--interval", "5", "--bind"])
                .arg(format!("127.0.0.1:{udp}"))
                .arg("--http")
                .arg(format!("127.0.0.1:{http}")),
        );
        Tracker {
            _process: process,
            announce: format!("udp://127.0.0.1:{udp}/announce"),
            http: SocketAddr::from(([127, 0, 0, 1], http)),
        }
    }

    /// (seeders, leechers) the tracker holds for `info_hash`, by an HTTP scrape (BEP 48).
    pub fn scrape(&self, info_hash: &[u8; 20]) -> (u64, u64) {
        let escaped: String = info_hash.iter().map(|byte| format!("%{byte:02X}")).collect();
        let mut stream = TcpStream::connect(self.http).expect("connect to the tracker's HTTP port");
        stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        write!(stream, "GET /scrape?info_hash={escaped} HTTP/1.1\r\nHost: tracker\r\nConnection: close\r\n\r\n")
            .expect("send the scrape");
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).expect("read the scrape");
        let text = String::from_utf8_lossy(&reply);
        assert!(text.starts_with("HTTP/1.1 200"), "the scrape failed: {text}");
        // A torrent nobody announced yet is not listed.
        if text.ends_with("d5:filesdee") {
            return (0, 0);
        }
        let number = |key: &str| -> u64 {
            let at = text.find(key).unwrap_or_else(|| panic!("no {key} in the scrape reply: {text}"));
            let rest = &text[at + key.len()..];
            rest[..rest.find('e').expect("an integer")].parse().expect("a count")
        };
        (number("8:completei"), number("10:incompletei"))
    }

    /// The tracker's HTTP announce URL.
    pub fn http_announce(&self) -> String {
        format!("http://{}/announce", self.http)
    }

    /// UDP scrape requests the tracker has answered, from its `/metrics`.
    pub fn udp_scrapes(&self) -> u64 {
        self.scrapes("udp")
    }

    /// HTTP scrape requests the tracker has answered, from its `/metrics`.
    pub fn http_scrapes(&self) -> u64 {
        self.scrapes("http")
    }

    fn scrapes(&self, protocol: &str) -> u64 {
        let mut stream = TcpStream::connect(self.http).expect("connect to the tracker's HTTP port");
        stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        write!(stream, "GET /metrics HTTP/1.1\r\nHost: tracker\r\nConnection: close\r\n\r\n").expect("send");
        let mut reply = String::new();
        stream.read_to_string(&mut reply).expect("read the metrics");
        let line = reply
            .lines()
            .find(|line| {
                line.starts_with("tracker_responses_total{")
                    && line.contains(&format!("protocol=\"{protocol}\",kind=\"scrape\""))
            })
            .unwrap_or_else(|| panic!("no {protocol} scrape counter in the metrics: {reply}"));
        line.rsplit(' ').next().and_then(|count| count.parse().ok()).expect("a count")
    }

    /// Waits up to `timeout` for the tracker to hold `leechers` leechers of `info_hash`.
    pub fn wait_for_leechers(&self, info_hash: &[u8; 20], leechers: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.scrape(info_hash).1 == leechers {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A single-file torrent of `len` pseudo-random bytes under `dir/src`, announcing to `announce`, with 64 KiB
/// pieces: (data, parsed torrent).
pub fn torrent_of(dir: &Path, name: &str, len: usize, announce: &str) -> (PathBuf, metainfo::Torrent) {
    let data = dir.join("src").join(name);
    write_pseudo_random(&data, len, len as u64);
    let (path, _) = make_torrent(&data, announce, 16);
    let bytes = std::fs::read(&path).expect("read the torrent");
    let torrent = metainfo::Torrent::from_bytes_any(&bytes).expect("our torrent parses");
    (data, torrent)
}

/// Our `peer` seeding `torrent` from `dir` on a port of its own, uploading at most `rate` bytes a second:
/// the process (logging each peer's connection and hang-up) and its address.
pub fn start_seeder(torrent: &Path, dir: &Path, rate: &str) -> (Running, SocketAddr) {
    Running::start_listening(
        Command::new(bin("peer"))
            .env("RUST_LOG", "info,bittorrent_tools::peer=debug")
            .args(["--no-dht", "--no-lsd", "--bind", "127.0.0.1", "--tracker-timeout", "0.5", "--upload-limit", rate])
            .arg("0")
            .arg(torrent)
            .arg("--dir")
            .arg(dir),
    )
}

/// A session on loopback with the `peer` command's defaults, its trackers retried after 0.5 s.
pub fn session_config() -> peer::session::SessionConfig {
    let mut config = peer::session::SessionConfig::new("127.0.0.1:0".parse().expect("address"));
    config.tracker_timeouts.base = Duration::from_millis(500);
    config
}

/// A runtime like the `peer` command's, on two worker threads.
pub fn runtime() -> tokio::runtime::Runtime {
    // Idle blocking threads (disk work) end after half a second, not tokio's 10 s: a test that counts threads
    // before and after something sees them settle.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_keep_alive(Duration::from_millis(500))
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Threads of this process.
pub fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").expect("/proc/self/task").count()
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd").count()
}

/// Waits (async) up to `timeout` for `done`, looking every 20 ms.
pub async fn eventually(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A session on loopback with [`session_config`], inside a runtime.
pub async fn start_session() -> peer::session::Session {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    peer::session::Session::start(session_config(), listener).expect("a session")
}

/// A torrent downloaded into `dir` from the seeder at `seeder` (given as with `--peer`).
pub fn from_seeder(dir: &Path, seeder: SocketAddr) -> peer::torrent::TorrentConfig {
    let mut config = peer::torrent::TorrentConfig::new(dir.to_path_buf());
    config.peers.push((seeder, peer::sources::Source::Manual));
    config
}

/// Our peer with the RPC on a free port and no torrent: the process and the RPC's address.
pub fn start_rpc_session(dir: &Path, extra: &[&str]) -> (Running, SocketAddr) {
    let rpc = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
    let mut session = Running::start(
        Command::new(bin("peer"))
            .args(["--no-dht", "--no-lsd", "--bind", "127.0.0.1", "--tracker-timeout", "0.5", "0", "--rpc"])
            .arg(rpc.to_string())
            .args(extra)
            .arg("--dir")
            .arg(dir),
    );
    let said = session.wait_for_line(|line| line.starts_with("rpc on "), Duration::from_secs(20));
    assert!(said.is_some(), "the RPC never came up: {}", session.stderr());
    (session, rpc)
}
