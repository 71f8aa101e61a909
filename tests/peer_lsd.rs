//! Local service discovery (BEP 14): peers on one network find each other by multicast alone, with no tracker (the
//! torrent's is dead) and no DHT. Each test builds its own network: two network namespaces joined by a veth pair
//! (10.77.0.1/24 and 10.77.0.2/24, multicast routed on the link), removed at the end even when the test fails; the
//! peers run in them through `ip netns exec`. Where namespaces cannot be made (not root, no `ip`), the tests skip
//! loudly, or fail under CI.
//!
//! In each test the side that has to hear the other starts first, and the other's first announce finds it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::process::Running;
use common::{assert_same_file, bin, free_tcp_port, have_libtorrent, in_ci, make_torrent, write_pseudo_random};

const SEEDER_SIDE: &str = "10.77.0.1";
const LEECHER_SIDE: &str = "10.77.0.2";

/// Two network namespaces joined by a veth pair; both are deleted when dropped (their veth ends go with them).
struct Network {
    /// The namespaces of 10.77.0.1 and 10.77.0.2.
    names: [String; 2],
}

static NETWORKS: AtomicU32 = AtomicU32::new(0);

impl Network {
    /// A new network, named after this process and a counter; `None` (after a loud notice) where namespaces
    /// cannot be made and CI is unset.
    fn create() -> Option<Network> {
        let tag = format!("btlsd{}-{}", std::process::id(), NETWORKS.fetch_add(1, Ordering::Relaxed));
        let names = [format!("{tag}a"), format!("{tag}b")];
        let made = ip(&["netns", "add", &names[0]]);
        if let Err(why) = made {
            assert!(!in_ci(), "cannot make a network namespace, and CI is set: {why}");
            eprintln!("\n*** SKIPPING: cannot make a network namespace (run as root with iproute2): {why} ***\n");
            return None;
        }
        // From here on, dropping the network removes what was made.
        let network = Network { names };
        let [a, b] = &network.names;
        let steps: [&[&str]; 11] = [
            &["netns", "add", b],
            &["-n", a, "link", "add", "lsd0", "type", "veth", "peer", "name", "lsd1", "netns", b],
            &["-n", a, "addr", "add", "10.77.0.1/24", "dev", "lsd0"],
            &["-n", b, "addr", "add", "10.77.0.2/24", "dev", "lsd1"],
            &["-n", a, "link", "set", "lo", "up"],
            &["-n", b, "link", "set", "lo", "up"],
            &["-n", a, "link", "set", "lsd0", "up"],
            &["-n", b, "link", "set", "lsd1", "up"],
            &["-n", a, "route", "add", "224.0.0.0/4", "dev", "lsd0"],
            &["-n", b, "route", "add", "224.0.0.0/4", "dev", "lsd1"],
            &["-n", a, "link", "show", "lsd0"],
        ];
        for step in steps {
            if let Err(why) = ip(step) {
                panic!("setting up the test network: {why}");
            }
        }
        Some(network)
    }

    /// `program` run inside the namespace of `side` (0: 10.77.0.1, 1: 10.77.0.2).
    fn command(&self, side: usize, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.names[side]]).arg(program);
        command
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

/// Runs `ip ARGS`; the error names the command and its stderr.
fn ip(args: &[&str]) -> Result<(), String> {
    match Command::new("ip").args(args).output() {
        Ok(output) if output.status.success() => Ok(()),
        Ok(output) => Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim())),
        Err(err) => Err(format!("ip {}: {err}", args.join(" "))),
    }
}

/// Some data and its torrent, announcing to a tracker nobody answers at, and its info-hash.
fn torrent(work: &Path, name: &str, seed: u64) -> (PathBuf, PathBuf, [u8; 20]) {
    let data = work.join("src").join(name);
    write_pseudo_random(&data, 3_000_000, seed);
    let (torrent, info_hash) = make_torrent(&data, "udp://127.0.0.1:1/announce", 16);
    (data, torrent, info_hash)
}

/// Our peer for `torrent` in `side`'s namespace, with no DHT, printing JSON events.
fn our_peer(network: &Network, side: usize, torrent: &Path, dir: &Path) -> Command {
    let mut command = network.command(side, bin("peer"));
    command.arg("0").arg(torrent).arg("--dir").arg(dir).args(["--no-dht", "--json", "--tracker-timeout", "0.5"]);
    command
}

/// libtorrent (tests/support/lt_peer.py) in `mode` for `torrent` in `side`'s namespace, stopping after 90 s.
fn libtorrent(network: &Network, side: usize, mode: &str, torrent: &Path, dir: &Path) -> Command {
    let mut command = network.command(side, common::SYSTEM_PYTHON);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/lt_peer.py");
    command.args([script, mode]).arg(torrent).arg(dir).args(["--timeout", "90"]);
    command
}

/// Waits for `peer`'s JSON event `name`, failing with its stderr.
fn wait_for_event(peer: &mut Running, name: &str) {
    let wanted = format!(r#""event":"{name}""#);
    let seen = peer.wait_for_line(|line| line.contains(&wanted), Duration::from_secs(30));
    assert!(seen.is_some(), "no {name} event; stderr:\n{}", peer.stderr());
}

/// Waits for our leecher to finish, then checks its copy and that a peer came through local discovery.
fn assert_downloaded_through_lsd(leecher: &mut Running, data: &Path, copy: &Path, seeder_stderr: &str) {
    let status = leecher.wait(Duration::from_secs(60));
    let lines = leecher.rest_of_stdout(Duration::from_secs(2));
    assert!(
        status.is_some_and(|status| status.success()),
        "the leecher did not complete (status {status:?}); stdout {lines:?}\nstderr:\n{}\nseeder:\n{seeder_stderr}",
        leecher.stderr(),
    );
    assert_same_file(data, copy);
    let from_lsd =
        lines.iter().any(|line| line.contains(r#""event":"peer_connected""#) && line.contains(r#""source":"lsd""#));
    assert!(from_lsd, "no peer came through local service discovery: {lines:?}");
}

#[test]
fn two_of_our_peers_find_each_other_on_the_local_network_alone() {
    let Some(network) = Network::create() else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let (data, torrent, _) = torrent(work.path(), "lsd.bin", 31);
    let into = work.path().join("leech");

    // The leecher on the default bind (any address: the routing table picks the interface)...
    let mut leecher = Running::start(our_peer(&network, 1, &torrent, &into).arg("--exit-on-complete"));
    wait_for_event(&mut leecher, "checked");
    // ...hears the seeder, bound to its LAN address, announce itself once its data is checked.
    let mut seeder =
        Running::start(our_peer(&network, 0, &torrent, &work.path().join("src")).args(["--bind", SEEDER_SIDE]));
    assert_downloaded_through_lsd(&mut leecher, &data, &into.join("lsd.bin"), &seeder.stderr());
    seeder.kill();
}

#[test]
fn a_magnet_link_alone_finds_its_seeder_on_the_local_network() {
    let Some(network) = Network::create() else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let (data, torrent, info_hash) = torrent(work.path(), "magnet.bin", 34);
    let into = work.path().join("leech");

    let mut seeder =
        Running::start(our_peer(&network, 0, &torrent, &work.path().join("src")).args(["--bind", SEEDER_SIDE]));
    wait_for_event(&mut seeder, "seeding");
    // No tracker, no peer, no DHT: the seeder's second announce (10 s after its first) or its answer to ours finds
    // the leecher while it fetches the metadata.
    let magnet = format!("magnet:?xt=urn:btih:{}", hex::encode(info_hash));
    let mut leecher = Running::start(our_peer(&network, 1, Path::new(&magnet), &into).arg("--exit-on-complete"));
    assert_downloaded_through_lsd(&mut leecher, &data, &into.join("magnet.bin"), &seeder.stderr());
    seeder.kill();
}

#[test]
fn our_leecher_finds_a_libtorrent_seeder_on_the_local_network() {
    if !have_libtorrent() {
        return;
    }
    let Some(network) = Network::create() else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let (data, torrent, _) = torrent(work.path(), "from-lt.bin", 32);
    let into = work.path().join("leech");

    let mut leecher =
        Running::start(our_peer(&network, 1, &torrent, &into).args(["--exit-on-complete", "--bind", LEECHER_SIDE]));
    wait_for_event(&mut leecher, "checked");
    let port = free_tcp_port().to_string();
    let mut seeder = Running::start(libtorrent(&network, 0, "seed", &torrent, &work.path().join("src")).args([
        "--port",
        &port,
        "--lsd",
        SEEDER_SIDE,
    ]));
    assert_downloaded_through_lsd(&mut leecher, &data, &into.join("from-lt.bin"), &seeder.stderr());
    seeder.kill();
}

#[test]
fn a_libtorrent_leecher_finds_our_seeder_on_the_local_network() {
    if !have_libtorrent() {
        return;
    }
    let Some(network) = Network::create() else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let (data, torrent, _) = torrent(work.path(), "to-lt.bin", 33);
    let into = work.path().join("lt");

    let port = free_tcp_port().to_string();
    let mut leecher = Running::start(libtorrent(&network, 1, "leech", &torrent, &into).args([
        "--port",
        &port,
        "--lsd",
        LEECHER_SIDE,
    ]));
    let listening = leecher.wait_for_line(|line| line.starts_with("LISTENING"), Duration::from_secs(20));
    assert!(listening.is_some(), "libtorrent did not start; stderr:\n{}", leecher.stderr());
    // libtorrent counts the announces it takes peers from: ours are the only others on this network.
    let mut seeder =
        Running::start(our_peer(&network, 0, &torrent, &work.path().join("src")).args(["--bind", SEEDER_SIDE]));

    let status = leecher.wait(Duration::from_secs(60));
    let lines = leecher.rest_of_stdout(Duration::from_secs(2));
    assert!(
        status.is_some_and(|status| status.success()) && lines.iter().any(|line| line == "COMPLETE"),
        "libtorrent did not complete (status {status:?}); stdout {lines:?}\nstderr tail:\n{}\nour seeder:\n{}",
        tail(&leecher.stderr()),
        seeder.stderr()
    );
    let heard = lines.iter().find_map(|line| line.strip_prefix("LSD HEARD ")).and_then(|n| n.parse::<i64>().ok());
    assert!(heard.is_some_and(|n| n >= 1), "libtorrent took no peer from our announces: {lines:?}");
    assert_same_file(&data, &into.join("to-lt.bin"));
    seeder.kill();
}

/// The last 20 lines of `text`.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
