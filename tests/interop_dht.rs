//! Interop through the Mainline DHT with libtorrent 2.0.8, on loopback: a DHT node of the test's own (our `dht`
//! crate) is the only bootstrap for everyone; no tracker answers. A libtorrent seeder announces itself on the DHT
//! and our peer, given only `magnet:?xt=urn:btih:HASH`, finds it there; and the reverse, libtorrent given only the
//! magnet finds our seeder. Every copy is compared byte for byte.

mod common;

use std::time::Duration;

use common::dht_node::{BootstrapNode, dht_peer, start_dht_seeder};
use common::process::Running;
use common::{free_tcp_port, have_libtorrent, lt_peer, make_torrent, write_pseudo_random};

/// How long a peer may take to find the other through the DHT and download 2 MB.
const TIMEOUT: Duration = Duration::from_secs(90);

#[test]
fn our_peer_finds_a_libtorrent_seeder_through_the_dht_from_a_bare_magnet_link() {
    if !have_libtorrent() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let bootstrap = BootstrapNode::start();
    let data = work.path().join("src").join("lt-dht.bin");
    write_pseudo_random(&data, 2_000_000, 51);
    let (torrent, info_hash) = make_torrent(&data, "udp://127.0.0.1:1/announce", 15);
    let port = free_tcp_port();
    let mut seeder = Running::start(lt_peer().arg("seed").arg(&torrent).arg(work.path().join("src")).args([
        "--port",
        &port.to_string(),
        "--timeout",
        "120",
        "--dht-bootstrap",
        &bootstrap.address.to_string(),
    ]));
    assert!(seeder.wait_for_line(|line| line == "SEEDING", Duration::from_secs(20)).is_some(), "{}", seeder.stderr());

    let into = work.path().join("leech");
    let magnet = format!("magnet:?xt=urn:btih:{}", hex::encode(info_hash));
    let mut leecher =
        Running::start(dht_peer(&magnet, &into, &bootstrap.address.to_string()).args(["--json", "--exit-on-complete"]));
    let status = leecher.wait(TIMEOUT);
    let lines = leecher.rest_of_stdout(Duration::from_secs(2));
    assert!(
        status.is_some_and(|status| status.success()),
        "our peer did not find the libtorrent seeder through the DHT (status {status:?}); {lines:?}\n{}",
        leecher.stderr()
    );
    assert_eq!(std::fs::read(&data).expect("original"), std::fs::read(into.join("lt-dht.bin")).expect("copy"));
    let seeder_addr = format!("127.0.0.1:{port}");
    assert!(
        lines.iter().any(|line| line.contains(&seeder_addr) && line.contains(r#""source":"dht""#)),
        "the seeder's address did not come from the DHT: {lines:?}"
    );
}

#[test]
fn libtorrent_finds_our_seeder_through_the_dht_from_a_bare_magnet_link() {
    if !have_libtorrent() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let bootstrap = BootstrapNode::start();
    let data = work.path().join("src").join("ours-dht.bin");
    write_pseudo_random(&data, 2_000_000, 52);
    let (torrent, info_hash) = make_torrent(&data, "udp://127.0.0.1:1/announce", 15);
    let mut seeder = start_dht_seeder(&torrent, &work.path().join("src"), &bootstrap.address.to_string());

    let into = work.path().join("leech");
    std::fs::create_dir_all(&into).expect("mkdir");
    let magnet = format!("magnet:?xt=urn:btih:{}", hex::encode(info_hash));
    let mut leecher = Running::start(lt_peer().arg("leech").arg(&magnet).arg(&into).args([
        "--port",
        &free_tcp_port().to_string(),
        "--timeout",
        &TIMEOUT.as_secs().to_string(),
        "--dht-bootstrap",
        &bootstrap.address.to_string(),
    ]));
    let status = leecher.wait(TIMEOUT + Duration::from_secs(10));
    assert!(
        status.is_some_and(|status| status.success()),
        "libtorrent did not find our seeder through the DHT (status {status:?}):\n{}",
        leecher.stderr().lines().rev().take(10).collect::<Vec<_>>().join("\n")
    );
    assert_eq!(std::fs::read(&data).expect("original"), std::fs::read(into.join("ours-dht.bin")).expect("copy"));
    seeder.interrupt(Duration::from_secs(10));
}
