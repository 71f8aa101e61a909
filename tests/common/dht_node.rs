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
