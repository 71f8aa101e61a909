//! The DHT as a peer source: look the torrent up, hand what is found to the candidate table, and announce our
//! port, for as long as the session (or the metadata fetch) runs.

use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

/// First wait between lookups while they find nobody; doubles up to [`SETTLED`].
const FIRST_RETRY: Duration = Duration::from_secs(2);
/// Between lookups once peers were found (BEP 5 stores announces for about 30 minutes).
const SETTLED: Duration = Duration::from_secs(15 * 60);

/// Starts a DHT node for the peer on `bind` with `bootstrap` nodes. Loopback swarms (a loopback bind or only
/// loopback bootstrap nodes) allow many nodes per address, as tests and local demos need; elsewhere one node per
/// address and bucket, against one host filling the table.
///
/// # Errors
///
/// The UDP socket could not be bound.
pub async fn start(bind: SocketAddr, bootstrap: Vec<SocketAddr>) -> std::io::Result<Arc<dht::Node>> {
    let local =
        bind.ip().is_loopback() || (!bootstrap.is_empty() && bootstrap.iter().all(|addr| addr.ip().is_loopback()));
    let config = dht::NodeConfig { bootstrap, restrict_ips: !local, ..dht::NodeConfig::default() };
    let node = Arc::new(dht::Node::bind(bind, config).await?);
    let joining = node.clone();
    tokio::spawn(async move {
        let stats = joining.bootstrap().await;
        tracing::debug!(?stats, nodes = joining.nodes().len(), "DHT bootstrapped");
    });
    Ok(node)
}

/// Looks `info_hash` up again and again, passing each peer found to `found`, and announces `port` (if any) to the
/// nodes closest to it. Runs until dropped.
pub async fn look_up(node: Arc<dht::Node>, info_hash: [u8; 20], port: Option<u16>, found: impl Fn(SocketAddr)) {
    let mut wait = FIRST_RETRY;
    loop {
        let peers: Vec<SocketAddrV4> = match port {
            Some(port) => {
                let announced = node.announce(info_hash, port).await;
                tracing::debug!(accepted = announced.accepted, peers = announced.lookup.peers.len(), "DHT announce");
                announced.lookup.peers
            }
            None => node.get_peers(info_hash).await,
        };
        let any = !peers.is_empty();
        for peer in peers {
            found(SocketAddr::V4(peer));
        }
        tokio::time::sleep(if any { SETTLED } else { wait }).await;
        if !any {
            wait = (wait * 2).min(SETTLED);
        }
    }
}

/// Nodes saved at most, and read back at most.
const MAX_SAVED_NODES: usize = 200;

/// The node addresses saved by an earlier run at `path` (one `IP:PORT` a line); none if there is no such file.
/// Lines that are not addresses are skipped: the file is ours, but a person may have edited it.
#[must_use]
pub fn load_nodes(path: &std::path::Path) -> Vec<SocketAddr> {
    let Ok(text) = std::fs::read_to_string(path) else { return Vec::new() };
    text.lines().filter_map(|line| line.trim().parse().ok()).take(MAX_SAVED_NODES).collect()
}

/// Saves the addresses of `node`'s routing table at `path` (written beside it, then renamed into place), so the
/// next run rejoins the DHT without its bootstrap nodes.
///
/// # Errors
///
/// The file could not be written.
pub fn save_nodes(node: &dht::Node, path: &std::path::Path) -> std::io::Result<()> {
    let mut text = String::new();
    for info in node.nodes().into_iter().take(MAX_SAVED_NODES) {
        text.push_str(&info.addr.to_string());
        text.push('\n');
    }
    if text.is_empty() {
        return Ok(());
    }
    let partial = path.with_extension("partial");
    std::fs::write(&partial, text)?;
    std::fs::rename(&partial, path)
}
