//! Helpers for the access list tests (tests/tracker_access.rs): our tracker on loopback with UDP and HTTP, a bare
//! HTTP/1.1 GET, the two ways an editor writes a file, and waiting on a condition with a deadline.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tracker_protocol::AnnounceEvent;
use tracker_protocol::http::{
    HttpAnnounceReply, HttpScrapeReply, ScrapeEntry, parse_announce_reply, parse_scrape_reply,
};

use crate::common::bin;
use crate::common::process::Running;
use crate::common::udp::{AnnounceReply, UdpClient};

/// Our tracker, with its UDP and HTTP addresses.
pub struct AccessTracker {
    pub process: Running,
    pub udp: SocketAddr,
    pub http: SocketAddr,
}

impl AccessTracker {
    /// `tracker --bind 127.0.0.1:0 --http 127.0.0.1:0 ARGS...`, once both sides listen.
    pub fn start(args: &[&std::ffi::OsStr]) -> AccessTracker {
        let mut command = Command::new(bin("tracker"));
        command.args(["--bind", "127.0.0.1:0", "--http", "127.0.0.1:0"]).args(args);
        let (mut process, udp) = Running::start_listening(&mut command);
        let line = process
            .wait_for_line(|line| line.starts_with("http on "), Duration::from_secs(10))
            .unwrap_or_else(|| panic!("{command:?} never printed `http on`; stderr:\n{}", process.stderr()));
        let http = line["http on ".len()..].trim().parse().expect("an address after `http on`");
        AccessTracker { process, udp, http }
    }

    /// The answer to a UDP announce of `info_hash` (as a seeder on `port`): Ok(seeders) or the error's text.
    pub fn udp_announce(&self, info_hash: [u8; 20], port: u16) -> Result<u32, String> {
        match UdpClient::new(self.udp).announce(info_hash, port, 0, AnnounceEvent::Started, 10) {
            AnnounceReply::Peers { seeders, .. } => Ok(seeders),
            AnnounceReply::Error(message) => Err(message),
        }
    }

    /// The answer to an HTTP announce of `info_hash` (as a seeder on `port`): Ok(complete) or the failure reason.
    pub fn http_announce(&self, info_hash: [u8; 20], port: u16) -> Result<u32, String> {
        let target = format!(
            "/announce?info_hash={}&peer_id={}&port={port}&uploaded=0&downloaded=0&left=0&event=started&compact=1",
            percent(&info_hash),
            percent(&[b'-'; 20])
        );
        let body = http_get(self.http, &target);
        match parse_announce_reply(&body) {
            Ok(HttpAnnounceReply::Success(reply)) => Ok(reply.complete.unwrap_or(0)),
            Ok(HttpAnnounceReply::Failure(reason)) => Err(reason),
            Err(err) => panic!("not an announce reply ({err}): {:?}", String::from_utf8_lossy(&body)),
        }
    }

    /// Whether announces of `info_hash` are refused as not allowed: `Some(true)` when over both UDP and HTTP,
    /// `Some(false)` when both are served, `None` when they differ (the list changed between the two). Any other
    /// error fails the test.
    pub fn refused(&self, info_hash: [u8; 20], port: u16) -> Option<bool> {
        let refused = |answer: Result<u32, String>| match answer {
            Ok(_) => false,
            Err(reason) if reason == NOT_ALLOWED => true,
            Err(reason) => panic!("announcing {}: {reason}", hex::encode(info_hash)),
        };
        let udp = refused(self.udp_announce(info_hash, port));
        let http = refused(self.http_announce(info_hash, port));
        (udp == http).then_some(udp)
    }

    /// The raw body of an HTTP scrape of `hashes`.
    pub fn http_scrape_body(&self, hashes: &[[u8; 20]]) -> Vec<u8> {
        let query: Vec<String> = hashes.iter().map(|hash| format!("info_hash={}", percent(hash))).collect();
        http_get(self.http, &format!("/scrape?{}", query.join("&")))
    }

    /// The entries of an HTTP scrape of `hashes`.
    pub fn http_scrape(&self, hashes: &[[u8; 20]]) -> Vec<ScrapeEntry> {
        let body = self.http_scrape_body(hashes);
        match parse_scrape_reply(&body) {
            Ok(HttpScrapeReply::Files(entries)) => entries,
            other => panic!("not a scrape reply: {other:?} from {:?}", String::from_utf8_lossy(&body)),
        }
    }

    /// Sends SIGHUP, as `kill -HUP` does.
    pub fn hang_up(&self) {
        let status = Command::new("kill").args(["-HUP", &self.process.pid().to_string()]).status().expect("run kill");
        assert!(status.success(), "kill -HUP failed");
    }

    /// The stderr lines holding every one of `parts`.
    pub fn log_lines(&self, parts: &[&str]) -> Vec<String> {
        let stderr = self.process.stderr();
        stderr.lines().filter(|line| parts.iter().all(|part| line.contains(part))).map(str::to_owned).collect()
    }
}

/// The text of the refusal, over UDP and HTTP.
pub const NOT_ALLOWED: &str = "info-hash is not allowed";

/// Every byte percent-encoded, as some clients send info-hashes.
pub fn percent(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("%{byte:02X}")).collect()
}

/// `GET target` with `Connection: close`; the body of a 200 reply.
pub fn http_get(http: SocketAddr, target: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect_timeout(&http, Duration::from_secs(5))
        .unwrap_or_else(|err| panic!("connecting to the tracker's HTTP port {http}: {err}"));
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("read timeout");
    let request = format!("GET {target} HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send the request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the reply");
    let end = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {:?}", String::from_utf8_lossy(&raw)));
    assert!(raw.starts_with(b"HTTP/1.1 200 "), "GET {target}: {:?}", String::from_utf8_lossy(&raw));
    raw[end + 4..].to_vec()
}

/// Writes `text` to a temporary file beside `path` and renames it over `path`, as most editors and config
/// managers do: readers see the old file or the new one, never half of one.
pub fn write_atomically(path: &Path, text: &str) {
    let temporary = path.with_extension("new");
    std::fs::write(&temporary, text).expect("write the temporary file");
    std::fs::rename(&temporary, path).expect("rename it over the list");
}

/// Rewrites `path` in place (truncate, then write), as `echo ... > FILE` does.
pub fn write_in_place(path: &Path, text: &str) {
    let mut file = std::fs::OpenOptions::new().write(true).truncate(true).open(path).expect("open the list");
    file.write_all(text.as_bytes()).expect("write the list");
}

/// Polls `condition` every 50 ms until it holds (true) or `timeout` passes (false).
pub fn eventually(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The hex form of an info-hash, as a list file holds it.
pub fn hex_line(hash: &[u8; 20]) -> String {
    format!("{}\n", hex::encode(hash))
}
