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

/// The IPv4 addresses of `names` (`HOST:PORT` each), resolved at once and given at most `limit` in all; a name
/// that does not resolve in time is left out (with a debug line), as the DHT does without any one router.
pub async fn resolve(names: &[&str], limit: std::time::Duration) -> Vec<SocketAddr> {
    let mut lookups = tokio::task::JoinSet::new();
    for (order, name) in names.iter().map(|&name| name.to_owned()).enumerate() {
        lookups.spawn(async move {
            let addrs: Vec<SocketAddr> = match tokio::net::lookup_host(name.as_str()).await {
                Ok(addrs) => addrs.filter(SocketAddr::is_ipv4).take(4).collect(),
                Err(err) => {
                    tracing::debug!("DHT router {name}: {err}");
                    Vec::new()
                }
            };
            (order, addrs)
        });
    }
    let mut found = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    while let Ok(Some(Ok(resolved))) = tokio::time::timeout_at(deadline, lookups.join_next()).await {
        found.push(resolved);
    }
    // Names that did not resolve in time are dropped with the set, which aborts their tasks.
    found.sort_by_key(|(order, _)| *order);
    found.into_iter().flat_map(|(_, addrs)| addrs).collect()
}

/// Looks `info_hash` up again and again, passing each peer found to `found`, and announces `port` (if any) to the
/// nodes closest to it. Runs until dropped.
pub async fn look_up(node: Arc<dht::Node>, info_hash: [u8; 20], port: Option<u16>, found: impl Fn(SocketAddr)) {
    let schedule = std::sync::Mutex::new(LookupSchedule::default());
    look_up_on(node, info_hash, port, found, &schedule).await;
}

/// When a torrent's next DHT lookup is due and how long the one after waits if it finds nobody: kept while the
/// torrent dozes, so that waking does not mean looking up at once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LookupSchedule {
    /// `None`: now.
    pub(crate) next: Option<tokio::time::Instant>,
    wait: Duration,
    /// A lookup is under way.
    pub(crate) busy: bool,
}

impl Default for LookupSchedule {
    fn default() -> Self {
        LookupSchedule { next: None, wait: FIRST_RETRY, busy: false }
    }
}

/// [`look_up`], keeping its place in `schedule`.
pub(crate) async fn look_up_on(
    node: Arc<dht::Node>,
    info_hash: [u8; 20],
    port: Option<u16>,
    found: impl Fn(SocketAddr),
    schedule: &std::sync::Mutex<LookupSchedule>,
) {
    let lock = || schedule.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        let next = lock().next;
        if let Some(at) = next {
            tokio::time::sleep_until(at).await;
        }
        lock().busy = true;
        let mut next = *lock();
        let peers = look_up_once(&node, info_hash, port, &mut next).await;
        *lock() = next;
        for peer in peers {
            found(peer);
        }
    }
}

/// One lookup of `info_hash` (an announce of `port`, if given); `schedule` says when the next is due.
pub(crate) async fn look_up_once(
    node: &dht::Node,
    info_hash: [u8; 20],
    port: Option<u16>,
    schedule: &mut LookupSchedule,
) -> Vec<SocketAddr> {
    let peers: Vec<SocketAddrV4> = match port {
        Some(port) => {
            let announced = node.announce(info_hash, port).await;
            tracing::debug!(accepted = announced.accepted, peers = announced.lookup.peers.len(), "DHT announce");
            announced.lookup.peers
        }
        None => node.get_peers(info_hash).await,
    };
    let any = !peers.is_empty();
    schedule.busy = false;
    schedule.next = Some(tokio::time::Instant::now() + if any { SETTLED } else { schedule.wait });
    if !any {
        schedule.wait = (schedule.wait * 2).min(SETTLED);
    }
    peers.into_iter().map(SocketAddr::V4).collect()
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
