//! Helpers shared by the end-to-end tests: running our binaries and the reference tools.
#![allow(dead_code)] // each test binary uses its own subset

pub mod dht_node;
pub mod dos;
pub mod hostile_peer;
pub mod library_session;
pub mod process;
pub mod udp;

use std::path::Path;
use std::process::{Command, Output};

/// Path of one of this package's binaries, built by cargo for the integration tests.
pub fn bin(name: &str) -> &'static str {
    match name {
        "mktorrent" => env!("CARGO_BIN_EXE_mktorrent"),
        "tracker" => env!("CARGO_BIN_EXE_tracker"),
        "peer" => env!("CARGO_BIN_EXE_peer"),
        other => panic!("unknown binary {other}"),
    }
}

/// Runs a command to completion, capturing its output.
pub fn run(command: &mut Command) -> Output {
    command.output().unwrap_or_else(|err| panic!("could not start {command:?}: {err}"))
}

/// Runs a command that must succeed, returning its stdout.
pub fn run_ok(command: &mut Command) -> String {
    let output = run(command);
    assert!(
        output.status.success(),
        "{command:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Whether a reference tool is usable. Missing tools make the test skip loudly on a developer's machine
/// and fail under CI (CI=true), where .ci/run installs them.
pub fn have_tool(description: &str, probe: &mut Command) -> bool {
    let found = probe.output().map(|output| output.status.success()).unwrap_or(false);
    if !found {
        assert!(!in_ci(), "{description} is missing, and CI is set: .ci/run must install it");
        eprintln!("\n*** SKIPPING: {description} is not installed (CI is unset). Install it to run this test. ***\n");
    }
    found
}

/// Whether CI is set: then nothing a test needs may be missing.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !value.is_empty() && value != "false" && value != "0")
}

/// Whether this machine has an IPv6 loopback address; without one, a test needing it skips loudly, or fails under CI.
pub fn have_ipv6_loopback() -> bool {
    let found = std::net::UdpSocket::bind("[::1]:0").is_ok();
    if !found {
        assert!(!in_ci(), "this machine has no IPv6 loopback, and CI is set");
        eprintln!("\n*** SKIPPING: this machine has no IPv6 loopback (CI is unset) ***\n");
    }
    found
}

pub fn have_debian_mktorrent() -> bool {
    have_tool(
        "Debian mktorrent (apt-get install mktorrent)",
        Command::new("sh").args(["-c", "test -x /usr/bin/mktorrent"]),
    )
}

/// Debian's python3-libtorrent imports only under the Debian interpreter.
pub const SYSTEM_PYTHON: &str = "/usr/bin/python3";

pub fn have_libtorrent() -> bool {
    have_tool(
        "python3-libtorrent (apt-get install python3-libtorrent)",
        Command::new(SYSTEM_PYTHON).args(["-c", "import libtorrent"]),
    )
}

pub fn have_transmission_create() -> bool {
    have_tool(
        "transmission-create (apt-get install transmission-cli)",
        Command::new("transmission-create").arg("--help"),
    )
}

/// Writes `len` bytes of seeded pseudo-random data (xorshift), so every run tests the same content.
pub fn write_pseudo_random(path: &Path, len: usize, seed: u64) {
    let mut state = seed | 1;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create parent folder");
    }
    std::fs::write(path, bytes).expect("write test data");
}

pub fn have_opentracker() -> bool {
    have_tool("opentracker (apt-get install opentracker)", Command::new("sh").args(["-c", "command -v opentracker"]))
}

/// A TCP port that was free a moment ago (for clients that cannot take port 0 and report it).
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()).expect("free port").port()
}

/// A UDP port that was free a moment ago.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").and_then(|socket| socket.local_addr()).expect("free port").port()
}

/// Our libtorrent driver script (tests/support/lt_peer.py), run under the Debian interpreter.
pub fn lt_peer() -> Command {
    let mut command = Command::new(SYSTEM_PYTHON);
    command.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/lt_peer.py"));
    command
}

/// Makes `NAME.torrent` next to `data` with our mktorrent, announcing to `announce`; returns its path
/// and info-hash.
pub fn make_torrent(data: &Path, announce: &str, log2: u32) -> (std::path::PathBuf, [u8; 20]) {
    let out = data.with_extension("torrent");
    run_ok(
        Command::new(bin("mktorrent"))
            .args(["-q", "-f", "-d", "-a", announce, "-l", &log2.to_string(), "-o"])
            .arg(&out)
            .arg(data),
    );
    let shown = run_ok(Command::new(bin("mktorrent")).arg("--show").arg(&out).arg("--json"));
    let value: serde_json::Value = serde_json::from_str(&shown).expect("json");
    let mut hash = [0u8; 20];
    hex::decode_to_slice(value["info_hash"].as_str().expect("info_hash"), &mut hash).expect("hex");
    (out, hash)
}

pub fn have_aria2() -> bool {
    have_tool("aria2 (apt-get install aria2)", Command::new("aria2c").arg("--version"))
}

/// Whether the tests run as root (opentracker then chroots into its `-d` folder).
pub fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0").unwrap_or(false)
}

/// Starts Debian's opentracker on 127.0.0.1:`udp`. It is built in whitelist mode, so it serves only
/// `info_hashes` (read at start); its jail and whitelist live in `dir/jail`. Returns once it answers.
pub fn start_opentracker(dir: &Path, udp: u16, info_hashes: &[[u8; 20]]) -> process::Running {
    start_opentracker_with_http(dir, udp, free_tcp_port(), info_hashes)
}

/// [`start_opentracker`], serving HTTP announces on TCP port `tcp` too.
pub fn start_opentracker_with_http(dir: &Path, udp: u16, tcp: u16, info_hashes: &[[u8; 20]]) -> process::Running {
    let jail = dir.join("jail");
    std::fs::create_dir_all(&jail).expect("mkdir jail");
    let list: String = info_hashes.iter().map(|hash| format!("{}\n", hex::encode(hash))).collect();
    std::fs::write(jail.join("whitelist.txt"), list).expect("whitelist");
    let mut command = Command::new("opentracker");
    command.args(["-i", "127.0.0.1", "-P", &udp.to_string(), "-p", &tcp.to_string()]);
    // As root it chroots into -d and opens the -w path inside it.
    if running_as_root() {
        command.arg("-d").arg(&jail).args(["-w", "/whitelist.txt"]);
    } else {
        command.arg("-w").arg(jail.join("whitelist.txt"));
    }
    let opentracker = process::Running::start(&mut command);
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], udp));
    let client = udp::UdpClient::new(address);
    let mut packet = Vec::new();
    tracker_protocol::ConnectRequest { transaction_id: tracker_protocol::TransactionId(1) }.write(&mut packet);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if client.exchange(&packet).is_some() {
            return opentracker;
        }
    }
    panic!("opentracker on {address} never answered; stderr:\n{}", opentracker.stderr());
}

/// Asserts that `copy` holds exactly the bytes of `original`, naming both and their sizes when not.
pub fn assert_same_file(original: &Path, copy: &Path) {
    let a = std::fs::read(original).unwrap_or_else(|err| panic!("{}: {err}", original.display()));
    let b = std::fs::read(copy).unwrap_or_else(|err| panic!("{} was not downloaded: {err}", copy.display()));
    assert!(a == b, "{} differs from {} ({} vs {} bytes)", copy.display(), original.display(), b.len(), a.len());
}

/// A libtorrent session seeding `torrent` from `dir` (tests/support/lt_peer.py), once it says it is seeding;
/// returns it and its port. It stops by itself after 120 s, or when dropped.
pub fn start_libtorrent_seeder(torrent: &Path, dir: &Path) -> (process::Running, u16) {
    let port = free_tcp_port();
    let mut seeder = process::Running::start(lt_peer().arg("seed").arg(torrent).arg(dir).args([
        "--port",
        &port.to_string(),
        "--timeout",
        "120",
    ]));
    let seeding = seeder.wait_for_line(|line| line == "SEEDING", std::time::Duration::from_secs(30));
    assert!(seeding.is_some(), "the libtorrent seeder never got ready; stderr:\n{}", seeder.stderr());
    (seeder, port)
}

/// The lines among `lines` (a `--json` peer's stdout) that are JSON events of `kind`.
pub fn json_events(lines: &[String], kind: &str) -> Vec<serde_json::Value> {
    lines
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event["event"] == kind)
        .collect()
}

/// Waits up to 60 s for a `lt_peer.py leech` to print `COMPLETE`; a failure names `what` and shows libtorrent's
/// stderr and `logs()` (the other side's).
pub fn expect_libtorrent_complete(lt: &mut process::Running, what: &str, logs: impl FnOnce() -> String) {
    let complete = lt.wait_for_line(|line| line == "COMPLETE", std::time::Duration::from_secs(60));
    assert!(complete.is_some(), "{what}: libtorrent did not complete; its stderr:\n{}\n{}", lt.stderr(), logs());
}

/// The last 40 lines of an aria2 log, without its DHT chatter, for failure messages.
pub fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|line| !line.contains("DHT")).collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// A hybrid (v1 + v2) torrent of `input` at `out`, `2^log2`-byte pieces, announcing to our HTTP tracker on
/// 127.0.0.1:`http_port`.
pub fn make_hybrid_torrent(input: &Path, log2: u32, http_port: u16, out: &Path) {
    let announce = format!("http://127.0.0.1:{http_port}/announce");
    run_ok(
        Command::new(bin("mktorrent"))
            .args(["--hybrid", "-q", "-l", &log2.to_string(), "-a", &announce, "-o"])
            .arg(out)
            .arg(input),
    );
}

/// Our tracker serving `torrent` only, over UDP on a free port and HTTP on 127.0.0.1:`http_port`, with `extra`
/// flags; returned once its HTTP side listens.
pub fn start_http_tracker(torrent: &Path, http_port: u16, extra: &[&str]) -> process::Running {
    let mut command = Command::new(bin("tracker"));
    command.arg(torrent).args(["--bind", "127.0.0.1:0", "--http", &format!("127.0.0.1:{http_port}")]).args(extra);
    command.env("RUST_LOG", "debug");
    let (mut tracker, _) = process::Running::start_listening(&mut command);
    let listening = tracker.wait_for_line(|line| line.starts_with("http on "), std::time::Duration::from_secs(10));
    assert!(listening.is_some(), "our tracker's HTTP side did not start; stderr:\n{}", tracker.stderr());
    tracker
}

/// The id a peer's extended handshake (its payload) gives ut_metadata, if any: what a test double answers
/// metadata requests under.
pub fn ut_metadata_id(extended_handshake: &[u8]) -> Option<u8> {
    peer_wire::ExtendedHandshake::decode(extended_handshake)
        .ok()
        .and_then(|handshake| handshake.extension_id("ut_metadata"))
        .map(std::num::NonZeroU8::get)
}
