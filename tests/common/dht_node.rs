//! A DHT node of the test's own (our `dht` crate) on 127.0.0.1, in a runtime of its own: the only bootstrap of a
//! loopback DHT. Stopped when dropped.

use std::net::SocketAddr;

pub struct BootstrapNode {
    pub address: SocketAddr,
    _runtime: tokio::runtime::Runtime,
    _node: dht::Node,
}

impl BootstrapNode {
    pub fn start() -> BootstrapNode {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        // Every node of a loopback DHT shares 127.0.0.1: lift the one-node-per-address rule.
        let config = dht::NodeConfig { restrict_ips: false, ..dht::NodeConfig::default() };
        let node = runtime.block_on(dht::Node::bind("127.0.0.1:0".parse().expect("address"), config)).expect("bind");
        BootstrapNode { address: SocketAddr::V4(node.local_addr()), _runtime: runtime, _node: node }
    }
}

/// Our `peer` on 127.0.0.1 for `what` (a .torrent or a magnet link) in `dir`, joining the DHT only through
/// `bootstrap` (so never the public routers), with a 0.5 s first tracker timeout; the caller adds the rest.
pub fn dht_peer(what: impl AsRef<std::ffi::OsStr>, dir: &std::path::Path, bootstrap: &str) -> std::process::Command {
    let mut command = std::process::Command::new(super::bin("peer"));
    command.arg("0").arg(what).arg("--dir").arg(dir);
    command.args(["--bind", "127.0.0.1", "--tracker-timeout", "0.5", "--dht-bootstrap", bootstrap]);
    command
}

/// [`dht_peer`] over complete data, once it says it is seeding.
pub fn start_dht_seeder(torrent: &std::path::Path, dir: &std::path::Path, bootstrap: &str) -> super::process::Running {
    let (mut seeder, _) = super::process::Running::start_listening(&mut dht_peer(torrent, dir, bootstrap));
    let seeding = seeder.wait_for_line(|line| line.starts_with("seeding"), std::time::Duration::from_secs(30));
    assert!(seeding.is_some(), "the DHT seeder never said it was seeding; stderr:\n{}", seeder.stderr());
    seeder
}
