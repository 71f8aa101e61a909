//! Local service discovery (BEP 14): peers on one network find each other by multicast alone, with no tracker (the
//! torrent's is dead) and no DHT. Each test builds its own network: two network namespaces joined by a veth pair
//! (10.77.0.1/24 and 10.77.0.2/24, multicast routed on the link; or IPv6 only, with no IPv4 address on the link, so
//! that only the IPv6 group can carry an announce), removed at the end even when the test fails; the peers run in
//! them through `ip netns exec`. Where namespaces cannot be made (not root, no `ip`), the tests skip loudly, or
//! fail under CI.
//!
//! In each test the side that has to hear the other starts first, and the other's first announce finds it.

mod common;

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::process::Running;
use common::{assert_same_file, bin, free_tcp_port, have_libtorrent, in_ci, make_torrent, write_pseudo_random};

const SEEDER_SIDE: &str = "10.77.0.1";
const LEECHER_SIDE: &str = "10.77.0.2";

/// How the two ends of the link are addressed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Addressing {
    /// 10.77.0.1/24 and 10.77.0.2/24, with 224.0.0.0/4 routed on the link (and the kernel's IPv6 link-local
    /// addresses).
    V4,
    /// fd77::1/64 and fd77::2/64 (unique local), plus the kernel's link-local addresses; no IPv4 address.
    V6UniqueLocal,
    /// fe80::1/64 and fe80::2/64 alone: no IPv4 address, no other IPv6 one.
    V6LinkLocal,
}

/// Two network namespaces joined by a veth pair; both are deleted when dropped (their veth ends go with them).
struct Network {
    /// The namespaces of side 0 (10.77.0.1, fd77::1 or fe80::1) and side 1 (10.77.0.2, fd77::2 or fe80::2).
    names: [String; 2],
}

static NETWORKS: AtomicU32 = AtomicU32::new(0);

impl Network {
    /// A new network, named after this process and a counter; `None` (after a loud notice) where namespaces
    /// cannot be made and CI is unset.
    fn create(addressing: Addressing) -> Option<Network> {
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
        let mut steps: Vec<Vec<&str>> = vec![
            vec!["netns", "add", b],
            vec!["-n", a, "link", "add", "lsd0", "type", "veth", "peer", "name", "lsd1", "netns", b],
        ];
        let addresses = match addressing {
            Addressing::V4 => ["10.77.0.1/24", "10.77.0.2/24"],
            Addressing::V6UniqueLocal => ["fd77::1/64", "fd77::2/64"],
            Addressing::V6LinkLocal => ["fe80::1/64", "fe80::2/64"],
        };
        let ends = [(a.as_str(), "lsd0", addresses[0]), (b.as_str(), "lsd1", addresses[1])];
        for (namespace, link, address) in ends {
            if addressing == Addressing::V6LinkLocal {
                // No link-local address of the kernel's making beside ours.
                steps.push(vec!["-n", namespace, "link", "set", link, "addrgenmode", "none"]);
            }
            // IPv6 addresses without duplicate detection, usable at once.
            let nodad: &[&str] = if addressing == Addressing::V4 { &[] } else { &["nodad"] };
            steps.push([&["-n", namespace, "addr", "add", address, "dev", link][..], nodad].concat());
            steps.push(vec!["-n", namespace, "link", "set", "lo", "up"]);
            steps.push(vec!["-n", namespace, "link", "set", link, "up"]);
            if addressing == Addressing::V4 {
                steps.push(vec!["-n", namespace, "route", "add", "224.0.0.0/4", "dev", link]);
            }
        }
        for step in &steps {
            if let Err(why) = ip(step) {
                panic!("setting up the test network: {why}");
            }
        }
        if addressing != Addressing::V4 {
            for (namespace, link, _) in ends {
                wait_for_ipv6_multicast(namespace, link);
            }
        }
        Some(network)
    }

    /// `program` run inside the namespace of `side` (0 or 1).
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

/// Waits until `link` in `namespace` routes IPv6 multicast: the kernel adds its `ff00::/8` route once the link
/// has come up with its carrier, a moment (its link watch) after `ip link set up`; until then, joining a group on
/// the routing table's choice of interface fails (ENODEV), as it would on a host whose network is not up yet.
fn wait_for_ipv6_multicast(namespace: &str, link: &str) {
    let args = ["-n", namespace, "-6", "route", "show", "table", "local", "type", "multicast", "dev", link];
    for _ in 0..100 {
        match ip_output(&args) {
            Ok(routes) if routes.contains("ff00::/8") => return,
            Ok(_) => std::thread::sleep(Duration::from_millis(50)),
            Err(why) => panic!("setting up the test network: {why}"),
        }
    }
    panic!("setting up the test network: {link} in {namespace} routes no IPv6 multicast after 5 s");
}

/// Runs `ip ARGS`; the error names the command and its stderr.
fn ip(args: &[&str]) -> Result<(), String> {
    ip_output(args).map(drop)
}

/// Runs `ip ARGS` and returns its stdout; the error names the command and its stderr.
fn ip_output(args: &[&str]) -> Result<String, String> {
    match Command::new("ip").args(args).output() {
        Ok(output) if output.status.success() => Ok(String::from_utf8_lossy(&output.stdout).into_owned()),
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

/// Waits for our leecher to finish, then checks its copy and that a peer came through local discovery; returns
/// the addresses of the peers that did.
fn assert_downloaded_through_lsd(leecher: &mut Running, data: &Path, copy: &Path, seeder_stderr: &str) -> Vec<String> {
    assert_downloaded_through(&["lsd"], leecher, data, copy, seeder_stderr)
}

/// As [`assert_downloaded_through_lsd`], a peer of one of `sources` counting.
fn assert_downloaded_through(
    sources: &[&str],
    leecher: &mut Running,
    data: &Path,
    copy: &Path,
    seeder_stderr: &str,
) -> Vec<String> {
    let status = leecher.wait(Duration::from_secs(60));
    let lines = leecher.rest_of_stdout(Duration::from_secs(2));
    assert!(
        status.is_some_and(|status| status.success()),
        "the leecher did not complete (status {status:?}); stdout {lines:?}\nstderr:\n{}\nseeder:\n{seeder_stderr}",
        leecher.stderr(),
    );
    assert_same_file(data, copy);
    let from_lsd: Vec<String> = lines
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event["event"] == "peer_connected" && sources.iter().any(|source| event["source"] == *source))
        .filter_map(|event| event["address"].as_str().map(str::to_owned))
        .collect();
    assert!(!from_lsd.is_empty(), "no peer came through local service discovery: {lines:?}");
    from_lsd
}

/// Our leecher and seeder, both on `--bind ::`, on a network where only IPv6 carries announces: the leecher
/// completes through a neighbour found by local discovery at an IPv6 address; returns that address.
fn download_over_ipv6_alone(addressing: Addressing, name: &str, seed: u64) -> Option<SocketAddr> {
    let network = Network::create(addressing)?;
    let work = tempfile::tempdir().expect("tempdir");
    let (data, torrent, _) = torrent(work.path(), name, seed);
    let into = work.path().join("leech");

    let mut leecher =
        Running::start(our_peer(&network, 1, &torrent, &into).args(["--exit-on-complete", "--bind", "::"]));
    wait_for_event(&mut leecher, "checked");
    let mut seeder = Running::start(our_peer(&network, 0, &torrent, &work.path().join("src")).args(["--bind", "::"]));
    let found = assert_downloaded_through_lsd(&mut leecher, &data, &into.join(name), &seeder.stderr());
    seeder.kill();
    let addresses: Vec<SocketAddr> = found.iter().filter_map(|address| address.parse().ok()).collect();
    let v6 = addresses.iter().copied().find(SocketAddr::is_ipv6);
    assert!(v6.is_some(), "no neighbour at an IPv6 address came through local service discovery: {found:?}");
    v6
}

#[test]
fn two_of_our_peers_find_each_other_on_the_local_network_alone() {
    let Some(network) = Network::create(Addressing::V4) else { return };
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
fn one_process_of_ours_seeds_two_torrents_to_another_through_one_discovery_socket() {
    let Some(network) = Network::create(Addressing::V4) else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let (first_data, first, _) = torrent(work.path(), "first.bin", 41);
    let (second_data, second, _) = torrent(work.path(), "second.bin", 42);
    let into = work.path().join("leech");

    // Each process announces both of its torrents from its one socket (in one datagram), and hands each
    // neighbour's announce to the torrents it names.
    let mut leecher = Running::start(our_peer(&network, 1, &first, &into).arg(&second).arg("--exit-on-complete"));
    wait_for_event(&mut leecher, "checked");
    let mut seeder = Running::start(
        our_peer(&network, 0, &first, &work.path().join("src")).arg(&second).args(["--bind", SEEDER_SIDE]),
    );
    let status = leecher.wait(Duration::from_secs(60));
    let lines = leecher.rest_of_stdout(Duration::from_secs(2));
    assert!(
        status.is_some_and(|status| status.success()),
        "the leecher did not complete both (status {status:?}); stdout {lines:?}\nstderr:\n{}\nseeder:\n{}",
        leecher.stderr(),
        seeder.stderr()
    );
    assert_same_file(&first_data, &into.join("first.bin"));
    assert_same_file(&second_data, &into.join("second.bin"));
    // Each heard of the other only through local discovery, so whichever dialled first, it dialled an address
    // discovery gave it: the leecher's connection says `lsd`, or (the seeder's torrent woke and dialled first)
    // the seeder's does.
    seeder.kill();
    let seeder_lines = seeder.rest_of_stdout(Duration::from_secs(2));
    let through_lsd: std::collections::HashSet<String> = lines
        .iter()
        .chain(&seeder_lines)
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event["event"] == "peer_connected" && event["source"] == "lsd")
        .filter_map(|event| event["torrent"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        through_lsd.len(),
        2,
        "each torrent met the seeder through local discovery: leecher {lines:?}, seeder {seeder_lines:?}"
    );
}

#[test]
fn a_magnet_link_alone_finds_its_seeder_on_the_local_network() {
    let Some(network) = Network::create(Addressing::V4) else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let (data, torrent, info_hash) = torrent(work.path(), "magnet.bin", 34);
    let into = work.path().join("leech");

    let mut seeder =
        Running::start(our_peer(&network, 0, &torrent, &work.path().join("src")).args(["--bind", SEEDER_SIDE]));
    wait_for_event(&mut seeder, "seeding");
    // No tracker, no peer, no DHT: the seeder's second announce (10 s after its first) or its answer to ours finds
    // the leecher while it fetches the metadata; or the seeder, hearing our announce, dials us (`incoming`: on
    // this network nothing else could have told it of us).
    let magnet = format!("magnet:?xt=urn:btih:{}", hex::encode(info_hash));
    let mut leecher = Running::start(our_peer(&network, 1, Path::new(&magnet), &into).arg("--exit-on-complete"));
    let sources = ["lsd", "incoming"];
    assert_downloaded_through(&sources, &mut leecher, &data, &into.join("magnet.bin"), &seeder.stderr());
    seeder.kill();
}

#[test]
fn two_of_our_peers_find_each_other_over_ipv6_alone() {
    let Some(found) = download_over_ipv6_alone(Addressing::V6UniqueLocal, "lsd6.bin", 35) else { return };
    assert_eq!(found.ip(), IpAddr::V6(Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 1)), "the seeder's address: {found}");
}

#[test]
fn a_link_local_neighbour_is_dialled_on_the_interface_it_was_heard_on() {
    let Some(found) = download_over_ipv6_alone(Addressing::V6LinkLocal, "lsd6ll.bin", 36) else { return };
    let SocketAddr::V6(found) = found else { unreachable!("an IPv6 address") };
    assert_eq!(*found.ip(), Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1), "the seeder's address: {found}");
    assert_ne!(found.scope_id(), 0, "the seeder's address has its scope: {found}");
}

#[test]
fn our_leecher_finds_a_libtorrent_seeder_on_the_local_network() {
    our_leecher_finds_a_libtorrent_seeder(Addressing::V4, "from-lt.bin", 32);
}

#[test]
fn our_leecher_finds_a_libtorrent_seeder_over_ipv6() {
    our_leecher_finds_a_libtorrent_seeder(Addressing::V6UniqueLocal, "from-lt6.bin", 37);
}

#[test]
fn a_libtorrent_leecher_finds_our_seeder_on_the_local_network() {
    a_libtorrent_leecher_finds_our_seeder(Addressing::V4, "to-lt.bin", 33);
}

#[test]
fn a_libtorrent_leecher_finds_our_seeder_over_ipv6() {
    a_libtorrent_leecher_finds_our_seeder(Addressing::V6UniqueLocal, "to-lt6.bin", 38);
}

/// The addresses of side 0 and side 1, each peer's `--bind` (a peer on the address finds its interface by it).
fn sides(addressing: Addressing) -> [&'static str; 2] {
    match addressing {
        Addressing::V4 => [SEEDER_SIDE, LEECHER_SIDE],
        Addressing::V6UniqueLocal => ["fd77::1", "fd77::2"],
        Addressing::V6LinkLocal => unreachable!("libtorrent is not bound to a link-local address here"),
    }
}

fn our_leecher_finds_a_libtorrent_seeder(addressing: Addressing, name: &str, seed: u64) {
    if !have_libtorrent() {
        return;
    }
    let Some(network) = Network::create(addressing) else { return };
    let [seeder_side, leecher_side] = sides(addressing);
    let work = tempfile::tempdir().expect("tempdir");
    let (data, torrent, _) = torrent(work.path(), name, seed);
    let into = work.path().join("leech");

    let mut leecher =
        Running::start(our_peer(&network, 1, &torrent, &into).args(["--exit-on-complete", "--bind", leecher_side]));
    wait_for_event(&mut leecher, "checked");
    let port = free_tcp_port().to_string();
    let mut seeder = Running::start(libtorrent(&network, 0, "seed", &torrent, &work.path().join("src")).args([
        "--port",
        &port,
        "--lsd",
        seeder_side,
    ]));
    let found = assert_downloaded_through_lsd(&mut leecher, &data, &into.join(name), &seeder.stderr());
    let wanted = SocketAddr::new(seeder_side.parse().expect("an IP"), port.parse().expect("a port"));
    assert!(found.contains(&wanted.to_string()), "libtorrent's listen address {wanted} was not found: {found:?}");
    seeder.kill();
}

fn a_libtorrent_leecher_finds_our_seeder(addressing: Addressing, name: &str, seed: u64) {
    if !have_libtorrent() {
        return;
    }
    let Some(network) = Network::create(addressing) else { return };
    let [seeder_side, leecher_side] = sides(addressing);
    let work = tempfile::tempdir().expect("tempdir");
    let (data, torrent, _) = torrent(work.path(), name, seed);
    let into = work.path().join("lt");

    let port = free_tcp_port().to_string();
    let mut leecher = Running::start(libtorrent(&network, 1, "leech", &torrent, &into).args([
        "--port",
        &port,
        "--lsd",
        leecher_side,
    ]));
    let listening = leecher.wait_for_line(|line| line.starts_with("LISTENING"), Duration::from_secs(20));
    assert!(listening.is_some(), "libtorrent did not start; stderr:\n{}", leecher.stderr());
    // libtorrent counts the announces it takes peers from: ours are the only others on this network.
    let mut seeder =
        Running::start(our_peer(&network, 0, &torrent, &work.path().join("src")).args(["--bind", seeder_side]));

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
    assert_same_file(&data, &into.join(name));
    seeder.kill();
}

/// The last 20 lines of `text`.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
