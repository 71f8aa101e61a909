//! `peer PORT TORRENT|MAGNET`: download a torrent from its swarm, verify every piece, then seed until Ctrl-C.

use std::ffi::OsString;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use metainfo::{Magnet, Torrent};
use peer::events::{Event, Status};
use peer::selection::FilePattern;
use peer::session::{Session, SessionConfig};
use peer::sources::{Source, SourceCounts};
use peer::torrent::{Outcome, TorrentConfig};
use peer::trace::Trace;
use peer::tracker_client::Timeouts;

use crate::cli;

#[path = "peer_config.rs"]
mod config;
#[path = "peer_magnet.rs"]
mod magnet;
use crate::mktorrent::read_torrent_any;
use magnet::saved_torrent;

/// BitTorrent peer: downloads TORRENT's data from its swarm over TCP, checking every piece (its SHA-1, or for a
/// v2-only torrent its file's SHA-256 merkle tree), then seeds.
///
/// Existing data in DIR is checked first (or trusted from the fast-resume state, when its files are exactly as it
/// recorded: see --no-resume): a complete copy seeds at once, a partial one resumes. Peers come from
/// the torrent's udp://, http:// and https:// trackers (BEP 12 tiers), from --peer, and for public torrents from
/// peer exchange (BEP 11), the Mainline DHT (BEP 5) and local service discovery (BEP 14). A magnet link's metadata is fetched from peers first (BEP 9) and saved as DIR/NAME.torrent.
/// HTTPS trackers with a private CA are trusted through SSL_CERT_FILE or SSL_CERT_DIR. Ctrl-C announces `stopped` and exits:
/// with status 0 only if the data is complete and verified. `listening on ADDR`, `complete` and `seeding` lines go
/// to stdout (one JSON object per event with --json); progress goes to stderr, as a bar on a terminal.
#[derive(Debug, Clone, Parser)]
#[command(name = "peer", version, max_term_width = 100)]
#[command(
    after_help = "`peer --generate man|complete-bash|complete-zsh|complete-fish` prints its man page or a completion script."
)]
pub struct Args {
    /// TCP port to listen on for peers (0: any free port).
    pub port: u16,

    /// The .torrent file, or a magnet link (`magnet:?xt=urn:btih:...`, or `xt=urn:btmh:1220...` for a v2
    /// torrent, whose piece layers are then fetched too): its metadata is fetched from the peers
    /// its trackers (tr=) and peers (x.pe=, --peer) lead to, checked against the info-hash and saved as
    /// DIR/NAME.torrent, which a restart with the same link uses; the connections that fetched it go on into the
    /// download. Several torrents and magnet links are served together, on the one port under one peer id, each
    /// in DIR (a magnet link answers the peers that dial it for its info-hash while its metadata is fetched).
    #[arg(value_name = "TORRENT|MAGNET", required_unless_present_any = ["rpc", "watch"])]
    pub torrents: Vec<PathBuf>,

    /// Download folder: a single-file torrent's file, or a multi-file torrent's folder, goes inside.
    #[arg(long, short = 'd', value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,

    /// Exit (status 0) as soon as the data is complete, instead of seeding.
    #[arg(long)]
    pub exit_on_complete: bool,

    /// Connect to this peer directly (repeatable), besides the peers trackers name.
    #[arg(long = "peer", value_name = "HOST:PORT")]
    pub peers: Vec<String>,

    /// Most peers connected at once, per torrent (--max-connections caps all torrents together).
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_peers: u16,

    /// Most connections of all the torrents together (dials included), as libtorrent's connections_limit and
    /// transmission's peer-limit-global, whose default this is too.
    #[arg(long, value_name = "N", default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Most connections with one IP address, handshakes in progress included (libtorrent allows one unless told
    /// otherwise; peers behind one NAT need a few).
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_peers_per_ip: u16,

    /// Seed as a plain seeder, showing every piece at once, instead of super-seeding: a session that starts with
    /// the whole torrent shows each peer only a window of pieces, so that each piece leaves it once before any
    /// leaves it twice and the leechers pass pieces on to each other.
    #[arg(long)]
    pub no_super_seed: bool,

    /// Cap on the total upload rate, in bytes per second; k, M, G (x1000) and Ki, Mi, Gi (x1024) suffixes work.
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub upload_limit: Option<u64>,

    /// Cap on the total download rate (everything read from peers), in bytes per second, with the same suffixes.
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub download_limit: Option<u64>,

    /// Download in order, for previewing media: new pieces are started within the 16 MiB (at least 4 pieces)
    /// from the first piece missing, rarest first, then past them in order to keep peers busy, and started
    /// pieces are finished front first; a peer that has none of those is asked for others.
    #[arg(long)]
    pub sequential: bool,

    /// Download only the files PATTERN chooses (repeatable: a file any pattern chooses): a glob on the path inside
    /// the torrent, `*` and `?` within one folder level, `**` across levels, `[a-z]` and `[!a-z]` sets; a pattern
    /// without `/` looks at the file's name alone (`--only '*.mkv'`). Other files are not created; what pieces
    /// shared with a chosen file carry of them goes to DIR/.HASH.parts. A pattern that chooses no file is an error.
    #[arg(long, value_name = "PATTERN", value_parser = parse_pattern)]
    pub only: Vec<FilePattern>,

    /// Local IP address to listen on and to connect and announce from.
    #[arg(long, value_name = "IP", default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
    pub bind: IpAddr,

    /// Print events as JSON lines on stdout.
    #[arg(long)]
    pub json: bool,

    /// Write one line per wire message, in and out, to stderr: time, peer, direction (-> sent, <- received)
    /// and the message with its fields (handshake, bitfield 12/153, have 17, request 17 +16384 16384, piece ...).
    #[arg(long)]
    pub trace: bool,

    /// Join the Mainline DHT (BEP 5) through this node (repeatable) instead of the public routers
    /// (router.bittorrent.com, router.utorrent.com, dht.transmissionbt.com, dht.libtorrent.org).
    #[arg(long = "dht-bootstrap", value_name = "HOST:PORT", conflicts_with = "no_dht")]
    pub dht_bootstrap: Vec<String>,

    /// Stay out of the Mainline DHT. Without it, public torrents and magnet links look peers up in the DHT and
    /// announce us there (never private torrents, BEP 27); the nodes known at exit are kept in DIR/.dht-nodes.
    #[arg(long)]
    pub no_dht: bool,

    /// Stay silent on the local network. Without it, public torrents and magnet links are announced by
    /// multicast to 239.192.152.143:6771 (IPv4) and [ff15::efc0:988f]:6771 (IPv6) on the --bind interface
    /// (local service discovery, BEP 14; not on loopback, never for private torrents), and the neighbours that
    /// announce the same torrent are dialled.
    #[arg(long)]
    pub no_lsd: bool,

    /// Always check the data at start, and keep no fast-resume state. Without it, the verified pieces are kept
    /// with each file's size and modification time in DIR/.peer-resume/INFOHASH.resume (written after the
    /// start-up check, on completion and at exit, atomically), and a start whose files are exactly as recorded
    /// trusts them without reading the data; any difference and the data is checked.
    #[arg(long)]
    pub no_resume: bool,

    /// UDP port of our DHT node. [default: the peer's TCP port; 0: any free port]
    #[arg(long, value_name = "PORT")]
    pub dht_port: Option<u16>,

    /// Write the --trace lines to FILE instead of stderr (implies --trace).
    #[arg(long, value_name = "FILE")]
    pub trace_file: Option<PathBuf>,

    /// First tracker retry timeout in seconds; BEP 15 doubles it on each of 8 retries.
    #[arg(long, value_name = "SECONDS", default_value_t = 15.0, hide = true)]
    pub tracker_timeout: f64,

    /// Serve Transmission's RPC at this address (`127.0.0.1:9091`), at /transmission/rpc: transmission-remote,
    /// Sonarr, Flood and the transmission-rpc library can then add, list, stop, start and remove torrents. With
    /// it no torrent need be named, and the session keeps its torrents across restarts in DIR/.peer-session.
    /// An address other than loopback needs --rpc-auth.
    #[arg(long, value_name = "ADDR")]
    pub rpc: Option<SocketAddr>,

    /// The RPC's user and password: FILE holds one line `user:password` (a file, so that `ps` does not show it).
    #[arg(long, value_name = "FILE", requires = "rpc")]
    pub rpc_auth: Option<PathBuf>,

    /// A host name the RPC answers to besides IP addresses and localhost (repeatable): requests naming any other
    /// Host get 421, so that a web page cannot reach the RPC through a name it controls (DNS rebinding).
    #[arg(long, value_name = "NAME", requires = "rpc")]
    pub rpc_host: Vec<String>,

    /// Watch this folder: a .torrent file that appears there is added (in DIR) and renamed NAME.torrent.added;
    /// one that does not parse is renamed NAME.torrent.invalid, the reason logged. As with --rpc, no torrent need
    /// be named and the session keeps its torrents across restarts.
    #[arg(long, value_name = "FOLDER")]
    pub watch: Option<PathBuf>,

    /// Read settings from this TOML file: each long flag is a key, with underscores (`max_peers = 80`,
    /// `no_dht = true`, `only = ["*.mkv"]`, `peer = ["10.0.0.2:6881"]`), and so are `port` and `torrents`;
    /// relative paths in it are relative to the file. Flags on the command line win; an unknown key is an error.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print the settings in effect (the command line's, over the file's, over the defaults) as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
}

/// Parses `20M`, `512Ki`, `1000`...
fn parse_rate(text: &str) -> Result<u64, String> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, suffix) = text.split_at(split);
    let number: u64 = digits.parse().map_err(|_| format!("{text:?} is not a rate like 500000, 20M or 512Ki"))?;
    let unit: u64 = match suffix {
        "" => 1,
        "k" | "K" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        _ => return Err(format!("unknown unit {suffix:?} in {text:?} (use k, M, G, Ki, Mi or Gi)")),
    };
    match number.checked_mul(unit) {
        Some(0) | None => Err(format!("{text:?} is not a usable rate")),
        Some(rate) => Ok(rate),
    }
}

/// Runs `peer` with the given command line and returns its exit code.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let argv: Vec<OsString> = args.into_iter().collect();
    if config::asks_to_print(&argv) {
        return cli::finish(
            "peer",
            config::print_config(argv).map(|text| {
                print!("{text}");
                ExitCode::SUCCESS
            }),
        );
    }
    let args = match config::parse_with_config(argv) {
        Ok(args) => args,
        Err(err) => return cli::finish("peer", Err(err)),
    };
    cli::init_logging();
    cli::finish("peer", run(&args))
}

fn parse_pattern(text: &str) -> Result<FilePattern, String> {
    FilePattern::parse(text)
}

/// The runtime's blocking pool: see where the runtime is built.
const DISK_THREADS: usize = 16;

/// Whether `arg` is a magnet link rather than a file.
fn is_magnet(arg: &Path) -> bool {
    arg.to_str().is_some_and(|text| text.get(..7).is_some_and(|scheme| scheme.eq_ignore_ascii_case("magnet:")))
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let mut peers = Vec::new();
    for text in &args.peers {
        peers.push((resolve_peer(text).with_context(|| format!("--peer {text}"))?, Source::Manual));
    }
    if !(args.tracker_timeout > 0.0 && args.tracker_timeout < 3600.0) {
        bail!("--tracker-timeout must be between 0 and 3600 seconds");
    }
    let trace = match (&args.trace_file, args.trace) {
        (Some(path), _) => {
            let file = std::fs::File::create(path).with_context(|| format!("--trace-file {}", path.display()))?;
            Some(std::sync::Arc::new(Trace::new(Box::new(std::io::BufWriter::new(file)))))
        }
        (None, true) => Some(std::sync::Arc::new(Trace::new(Box::new(std::io::stderr())))),
        (None, false) => None,
    };
    let listen = SocketAddr::new(args.bind, args.port);
    let tracker_timeouts = Timeouts { base: Duration::from_secs_f64(args.tracker_timeout), ..Timeouts::default() };
    // Disk work (piece reads for uploads, hash checks, resume files) goes to a pool of a few threads, as
    // libtorrent's disk threads: a thousand torrents starting at once queue their resume reads instead of
    // starting a thread each (tokio's default allows 512, whose stacks and malloc arenas stay behind in RSS).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(DISK_THREADS)
        .enable_all()
        .build()
        .context("starting tokio")?;
    let listener =
        runtime.block_on(tokio::net::TcpListener::bind(listen)).with_context(|| format!("listening on {listen}"))?;
    let mut torrents = Vec::new();
    let mut hashes: Vec<(metainfo::InfoHash, String)> = Vec::new();
    for path in &args.torrents {
        let item = if is_magnet(path) {
            let text = path.to_string_lossy();
            let magnet = metainfo::parse_magnet(&text).with_context(|| format!("reading the magnet link {text}"))?;
            // Saved by an earlier run: no peer is needed to start.
            match saved_torrent(&args.dir, &magnet)? {
                Some(torrent) => Item::Ready(Box::new(torrent)),
                None => Item::Magnet(Box::new(magnet)),
            }
        } else {
            Item::Ready(Box::new(read_torrent_any(path)?.0))
        };
        let hash = item.info_hash();
        if let Some((_, other)) = hashes.iter().find(|(other, _)| *other == hash) {
            bail!("{} is given twice (info-hash {hash}, named {other})", path.display());
        }
        hashes.push((hash, item.name()));
        torrents.push(item);
    }
    let tcp_port = listener.local_addr().context("reading the listening address")?.port();
    // The DHT serves the public torrents and magnet links (a private torrent never uses it), with every torrent's
    // own nodes.
    let all_private = torrents.iter().all(|item| matches!(item, Item::Ready(torrent) if torrent.info.private));
    let dht = if args.no_dht || all_private {
        None
    } else {
        let torrent_nodes: Vec<(String, u16)> = torrents
            .iter()
            .filter_map(|item| match item {
                Item::Ready(torrent) => Some(torrent.nodes.iter().cloned()),
                Item::Magnet(_) => None,
            })
            .flatten()
            .collect();
        start_dht(args, &runtime, tcp_port, &torrent_nodes)?
    };
    let session_config = SessionConfig {
        listen,
        max_peers_per_ip: usize::from(args.max_peers_per_ip),
        max_connections: args.max_connections as usize,
        upload_limit: args.upload_limit,
        download_limit: args.download_limit,
        check_threads: std::thread::available_parallelism().map_or(1, usize::from),
        tracker_timeouts,
        trace,
        dht: dht.clone(),
        lsd: !args.no_lsd,
        // With the RPC, torrents come and go while it runs: the session keeps which it holds for the next start.
        // Otherwise the command line names them: nothing is kept but each one's fast-resume state.
        state_dir: serving(args).then(|| args.dir.join(SESSION_STATE_DIR)),
        max_open_files: peer::open_files::DEFAULT_MAX_OPEN_FILES,
        hashing_threads: std::thread::available_parallelism().map_or(1, usize::from),
        doze_after: Some(peer::session::DOZE_AFTER),
    };
    let config = TorrentConfig {
        dir: args.dir.clone(),
        peers,
        max_peers: usize::from(args.max_peers),
        super_seed: !args.no_super_seed,
        sequential: args.sequential,
        exit_on_complete: args.exit_on_complete,
        resume: !args.no_resume,
        only: args.only.clone(),
        // --upload-limit and --download-limit are the session's, over every torrent together.
        upload_limit: None,
        download_limit: None,
    };
    let dht_node = dht.clone();
    let many = torrents.len() > 1 || serving(args);
    let rpc_config = rpc_config(args)?;
    let rpc_listener = match args.rpc {
        Some(addr) => {
            Some(runtime.block_on(tokio::net::TcpListener::bind(addr)).with_context(|| format!("--rpc {addr}"))?)
        }
        None => None,
    };
    let results = runtime.block_on(async {
        let shutdown = shutdown_signal()?;
        let session =
            std::sync::Arc::new(Session::start(session_config, listener).context("reading the listening address")?);
        // One Ctrl-C stops every torrent.
        let stopping = {
            let session = session.clone();
            tokio::spawn(async move {
                shutdown.await;
                session.shutdown().await;
            })
        };
        let mut runs = futures_util::stream::FuturesUnordered::new();
        let mut names = Vec::with_capacity(torrents.len());
        // One channel and one printer for every torrent: each event names its torrent, whose view shows it.
        let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
        let (flush_tx, flush_rx) = tokio::sync::mpsc::unbounded_channel();
        let views: Views = std::sync::Arc::default();
        let printer = tokio::spawn(print_events(events_rx, flush_rx, views.clone(), args.json));
        if serving(args) {
            // What the session kept from its last run comes back first, as it stood.
            for restored in session.restore(&config, &events_tx) {
                match restored {
                    Ok((hash, _)) => tracing::info!("restored {}", hex(&hash)),
                    Err(err) => tracing::warn!("not restored: {err}"),
                }
            }
            // Said here once, for the session: the torrents' views keep quiet about it.
            cli::announce_listening(session.listen_addr());
        }
        let watch_task = args.watch.clone().map(|folder| {
            let config = std::sync::Arc::new(config.clone());
            tokio::spawn(peer::watch::watch(session.clone(), folder, config, events_tx.clone()))
        });
        let rpc_task = match rpc_listener {
            Some(listener) => {
                let address = listener.local_addr().context("reading the RPC's address")?;
                let rpc = rpc::Rpc::new(session.clone(), config.clone(), events_tx.clone(), tcp_port);
                println!("rpc on http://{address}/transmission/rpc");
                Some(tokio::spawn(rpc::serve(listener, std::sync::Arc::new(rpc), rpc_config)))
            }
            None => None,
        };
        // One for every torrent file: ten thousand torrents keep one copy of their settings.
        let shared_config = std::sync::Arc::new(config.clone());
        for (index, item) in torrents.into_iter().enumerate() {
            let (name, hash) = (item.name(), item.info_hash().0);
            if serving(args) && session.torrent(&hash).is_some() {
                // Named again on the command line, and kept by the session since its last run.
                continue;
            }
            let added = match item {
                Item::Ready(torrent) => {
                    let quiet = index > 0 || serving(args);
                    lock_views(&views).insert(hash, View::new(args.json, &torrent, !many, quiet));
                    session.add(*torrent, shared_config.clone(), events_tx.clone())
                }
                Item::Magnet(magnet) => {
                    let mut config = config.clone();
                    for text in &magnet.peers {
                        let addr = resolve_peer(text).with_context(|| format!("the magnet link's peer {text}"))?;
                        config.peers.push((addr, Source::Manual));
                    }
                    let quiet = index > 0 || serving(args);
                    lock_views(&views).insert(hash, View::fetching(args.json, &name, hash, many, quiet));
                    session.add_magnet(*magnet, config, events_tx.clone())
                }
            };
            names.push(name);
            // Awaited together below in one future: a task each would cost every torrent a task's room. Each
            // holds its handle and its place, no more: ten thousand of them are waiting all along.
            let added = added.map_err(anyhow::Error::from);
            runs.push(async move {
                let result = match added {
                    Ok(run) => match run.await {
                        Ok(result) => result.map_err(anyhow::Error::from),
                        Err(err) => Err(anyhow::Error::from(err)),
                    },
                    Err(err) => Err(err),
                };
                (index, hash, result)
            });
        }
        drop(events_tx);
        let mut results = Vec::new();
        while let Some((index, hash, result)) = futures_util::StreamExt::next(&mut runs).await {
            let name = std::mem::take(&mut names[index]);
            // The torrent's last events are shown before its view is taken for the closing lines.
            let (shown_tx, shown_rx) = tokio::sync::oneshot::channel();
            if flush_tx.send(shown_tx).is_ok() {
                let _ = shown_rx.await;
            }
            let view = lock_views(&views).remove(&hash);
            // A magnet link's view is named by its torrent once the metadata is in.
            let name = view.as_ref().map_or(name, |view| view.name.clone());
            let result = result.with_context(|| name.clone());
            if let (true, Err(err), Some(view)) = (many, &result, &view) {
                // One torrent failing stops it alone: said now, while the others go on.
                view.errored(err);
            }
            results.push((index, name, result, view));
        }
        if serving(args) {
            // Torrents come and go through the RPC or the watched folder: the session runs until Ctrl-C.
            let _ = stopping.await;
            for task in rpc_task.into_iter().chain(watch_task) {
                task.abort();
            }
        } else {
            stopping.abort();
        }
        drop(flush_tx);
        printer.abort();
        results.sort_by_key(|(index, _, _, _)| *index);
        Ok::<_, anyhow::Error>(results)
    })?;
    if let Some(node) = &dht_node {
        let path = args.dir.join(DHT_NODES_FILE);
        if let Err(err) = peer::dht_peers::save_nodes(node, &path) {
            tracing::warn!("could not save the DHT nodes to {}: {err}", path.display());
        }
    }
    let mut all_complete = true;
    for (_, name, result, view) in results {
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(err) if !many => return Err(err),
            Err(_) => {
                all_complete = false;
                continue;
            }
        };
        if let Some(mut view) = view {
            view.finish(&outcome);
        }
        if !outcome.complete {
            all_complete = false;
            let name = if many { format!("{name}: ") } else { String::new() };
            eprintln!(
                "peer: {name}stopped before the download finished: {} of {} pieces verified",
                outcome.have, outcome.total
            );
        }
    }
    Ok(if all_complete { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The view of each running torrent, by info-hash.
type Views = std::sync::Arc<std::sync::Mutex<std::collections::HashMap<[u8; 20], View>>>;

fn lock_views(views: &Views) -> std::sync::MutexGuard<'_, std::collections::HashMap<[u8; 20], View>> {
    views.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Shows every torrent's events in its view. A flush request is answered once every event sent before it is
/// shown: a torrent that ended then takes its view for the closing lines.
async fn print_events(
    mut events: tokio::sync::mpsc::UnboundedReceiver<([u8; 20], Event)>,
    mut flushes: tokio::sync::mpsc::UnboundedReceiver<tokio::sync::oneshot::Sender<()>>,
    views: Views,
    json: bool,
) {
    let show = |hash: [u8; 20], event: &Event| {
        // A torrent added through the RPC, or restored, gets its view with its first event.
        let mut views = lock_views(&views);
        let view = views.entry(hash).or_insert_with(|| View::fetching(json, &hex(&hash), hash, true, true));
        view.show(event);
    };
    loop {
        tokio::select! {
            biased;
            Some((hash, event)) = events.recv() => show(hash, &event),
            Some(shown) = flushes.recv() => {
                while let Ok((hash, event)) = events.try_recv() {
                    show(hash, &event);
                }
                let _ = shown.send(());
            }
            else => break,
        }
    }
}

/// What the command line names: a torrent, or a magnet link whose metadata is fetched first.
enum Item {
    Ready(Box<Torrent>),
    Magnet(Box<Magnet>),
}

impl Item {
    fn name(&self) -> String {
        match self {
            Item::Ready(torrent) => torrent.info.name.clone(),
            Item::Magnet(magnet) => magnet.name.clone().unwrap_or_else(|| magnet.info_hash.to_string()),
        }
    }

    /// The info-hash its swarm and its events go by.
    fn info_hash(&self) -> metainfo::InfoHash {
        match self {
            Item::Ready(torrent) => torrent.info_hash,
            Item::Magnet(magnet) => magnet.info_hash,
        }
    }
}

/// Where the DHT's known nodes are kept between runs, in the download folder.
const DHT_NODES_FILE: &str = ".dht-nodes";
/// Whether torrents come and go while the session runs (through the RPC or a watched folder): it then runs
/// until Ctrl-C, and keeps its torrents for the next start.
fn serving(args: &Args) -> bool {
    args.rpc.is_some() || args.watch.is_some()
}

/// Where a session with the RPC keeps its torrents for the next start, inside DIR.
const SESSION_STATE_DIR: &str = ".peer-session";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Who may use the RPC: `--rpc-auth`'s credentials and `--rpc-host`'s names. An address others can reach is
/// refused without credentials: whoever reaches the RPC can add torrents and delete their data.
fn rpc_config(args: &Args) -> anyhow::Result<rpc::RpcConfig> {
    let credentials = match &args.rpc_auth {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("--rpc-auth {}", path.display()))?;
            Some(
                rpc::gate::Credentials::parse(&text)
                    .map_err(|err| anyhow::anyhow!("--rpc-auth {}: {err}", path.display()))?,
            )
        }
        None => None,
    };
    if let Some(addr) = args.rpc
        && !addr.ip().is_loopback()
        && credentials.is_none()
    {
        bail!("--rpc {addr} is reachable from other hosts: give it --rpc-auth FILE (a line `user:password`)");
    }
    Ok(rpc::RpcConfig { credentials, allowed_hosts: args.rpc_host.clone() })
}

/// The DHT's public routers, asked first when no `--dht-bootstrap` is given (the ones libtorrent and
/// Transmission ship with).
const PUBLIC_DHT_ROUTERS: [&str; 4] = [
    "router.bittorrent.com:6881",
    "router.utorrent.com:6881",
    "dht.transmissionbt.com:6881",
    "dht.libtorrent.org:25401",
];

/// Starts our DHT node on `--dht-port` (default: the TCP port), bootstrapped from `--dht-bootstrap` or the public
/// routers, and the torrent's own `nodes`, then the nodes saved by the last run. A node that cannot start (the UDP port is taken, an IPv6
/// `--bind`) leaves the DHT off with a warning: trackers and peers still work without it.
fn start_dht(
    args: &Args,
    runtime: &tokio::runtime::Runtime,
    tcp_port: u16,
    torrent_nodes: &[(String, u16)],
) -> anyhow::Result<Option<std::sync::Arc<dht::Node>>> {
    let mut bootstrap = Vec::new();
    for text in &args.dht_bootstrap {
        bootstrap.push(resolve_peer(text).with_context(|| format!("--dht-bootstrap {text}"))?);
    }
    // A name that does not resolve (offline, no DNS) is skipped: other nodes may still work.
    let mut names: Vec<String> = torrent_nodes
        .iter()
        .map(|(host, port)| if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") })
        .collect();
    if args.dht_bootstrap.is_empty() {
        names.extend(PUBLIC_DHT_ROUTERS.iter().map(|&router| router.to_owned()));
    }
    if !names.is_empty() {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        bootstrap.extend(runtime.block_on(peer::dht_peers::resolve(&names, ROUTER_LOOKUP_LIMIT)));
    }
    // Nodes known from the last run come after the ones given: a restart rejoins even if those are gone.
    bootstrap.extend(peer::dht_peers::load_nodes(&args.dir.join(DHT_NODES_FILE)));
    let address = SocketAddr::new(args.bind, args.dht_port.unwrap_or(tcp_port));
    match runtime.block_on(peer::dht_peers::start(address, bootstrap)) {
        Ok(node) => {
            tracing::info!(address = %node.local_addr(), "DHT node started");
            Ok(Some(node))
        }
        Err(err) => {
            tracing::warn!("the DHT is off: could not start its node on UDP {address}: {err}");
            Ok(None)
        }
    }
}

/// How long the public routers' names may take to resolve, all together.
const ROUTER_LOOKUP_LIMIT: Duration = Duration::from_secs(3);

fn resolve_peer(text: &str) -> anyhow::Result<SocketAddr> {
    text.to_socket_addrs().context("not a reachable HOST:PORT")?.next().context("no address")
}

/// Registers for Ctrl-C and SIGTERM now (before `listening on` is printed, so a script's early signal is not
/// fatal) and returns a future that completes on the first of them.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut terminate = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// Shows events: JSON lines, a progress bar on a terminal, or plain lines.
struct View {
    json: bool,
    name: String,
    total: u64,
    /// The info-hash the swarm goes by: every JSON event names its torrent (in hex).
    info_hash: Option<[u8; 20]>,
    /// One of several torrents: plain lines start with its name, and only the first says where we listen.
    one_of_many: bool,
    quiet_listening: bool,
    bar: Option<ProgressBar>,
    last_line: Option<Instant>,
    complete: bool,
}

impl View {
    /// A view of `torrent`: with a progress bar on a terminal when `bar` is allowed (one torrent, not `json`);
    /// `quiet_listening` leaves the `listening on` line to another torrent's view.
    fn new(json: bool, torrent: &Torrent, bar: bool, quiet_listening: bool) -> Self {
        let (name, total) = (torrent.info.name.as_str(), torrent.info.total_length());
        let mut view = Self::bare(json, name, if bar { total } else { 0 });
        view.total = total;
        view.info_hash = Some(torrent.info_hash.0);
        view.one_of_many = !bar;
        view.quiet_listening = quiet_listening;
        view
    }

    /// The view of a magnet link's torrent while its metadata is fetched: named by the link, no bar until the
    /// metadata is in ([`View::metadata_ready`]).
    fn fetching(json: bool, name: &str, info_hash: [u8; 20], one_of_many: bool, quiet_listening: bool) -> Self {
        let mut view = Self::bare(json, name, 0);
        view.info_hash = Some(info_hash);
        view.one_of_many = one_of_many;
        view.quiet_listening = quiet_listening;
        view
    }

    /// The metadata is in: the view becomes that of its torrent (with a bar, if it is the only one).
    fn metadata_ready(&mut self, torrent: &Torrent) {
        let view = View::new(self.json, torrent, !self.one_of_many, self.quiet_listening);
        *self = view;
    }

    /// A view with a progress bar on a terminal (unless `json`); `total` bytes, 0 while unknown (no bar then).
    fn bare(json: bool, name: &str, total: u64) -> Self {
        let bar = (!json && total > 0 && cli::stderr_is_terminal()).then(|| {
            let bar = ProgressBar::new(total);
            let style = ProgressStyle::with_template("{prefix} [{bar:30}] {bytes}/{total_bytes} {msg} ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(name.to_owned());
            // Log lines go above the bar, which stays on one line and is redrawn in place.
            cli::show_bar(&bar);
            bar
        });
        Self {
            json,
            name: name.to_owned(),
            total,
            info_hash: None,
            one_of_many: false,
            quiet_listening: false,
            bar,
            last_line: None,
            complete: false,
        }
    }

    /// A JSON event, naming its torrent when it is known.
    fn print_json(&self, mut value: serde_json::Value) {
        if let (Some(object), Some(hash)) = (value.as_object_mut(), self.info_hash) {
            object.insert("torrent".to_owned(), serde_json::Value::String(hex::encode(hash)));
        }
        print_json(&value);
    }

    /// A line on stdout, above the bar if there is one (stdout and stderr are often the same terminal).
    fn say(&self, text: &str) {
        match &self.bar {
            Some(bar) if !bar.is_finished() => bar.suspend(|| println_flush(text)),
            _ => println_flush(text),
        }
    }

    fn show(&mut self, event: &Event) {
        if let Event::MetadataReady { torrent, .. } = event {
            self.metadata_ready(torrent);
        }
        if self.json {
            if !(self.quiet_listening && matches!(event, Event::Listening { .. })) {
                self.print_json(event_json(event));
            }
            return;
        }
        match event {
            Event::Listening { .. } if self.quiet_listening => {}
            Event::Listening { addr, .. } => match &self.bar {
                Some(bar) => bar.suspend(|| cli::announce_listening(*addr)),
                None => cli::announce_listening(*addr),
            },
            Event::Checking { done, total } => {
                if let Some(bar) = &self.bar {
                    bar.set_message("checking");
                    bar.set_length(*total);
                    bar.set_position(*done);
                }
            }
            Event::Checked { have, total, resumed: false } => {
                self.line(&format!("checked existing data: {have} of {total} pieces present"));
            }
            Event::Checked { have, total, resumed: true } => {
                self.line(&format!("resumed: {have} of {total} pieces present, as the fast-resume state says"));
            }
            Event::Announced { tracker, peers, seeders, leechers } => {
                tracing::info!("{tracker}: {peers} peers ({seeders} seeders, {leechers} leechers)");
            }
            Event::AnnounceFailed { tracker, error } => tracing::warn!("{tracker}: {error}"),
            Event::PeerConnected { addr, source } => tracing::debug!(%addr, source = source.name(), "peer connected"),
            Event::PeerDisconnected { addr, reason } => tracing::debug!(%addr, %reason, "peer disconnected"),
            Event::PieceVerified { .. } => {}
            Event::PieceFailed { index, senders } => {
                tracing::warn!(piece = index, from = ?senders, "piece failed its hash check; fetching it again");
            }
            Event::PeerBanned { addr } => tracing::warn!(%addr, "peer banned for sending bad data"),
            Event::BlocksChecked { index, bad_blocks, liars, by } => tracing::warn!(
                piece = index,
                bad_blocks = ?bad_blocks,
                from = ?liars,
                hashes_from = %by,
                "the failed piece's block hashes name the senders of its bad blocks"
            ),
            Event::AddressBanned { ip } => {
                tracing::warn!(%ip, "address banned: several of its peers sent bad data");
            }
            Event::DiskFull { path, piece, free, needed } => tracing::error!(
                "disk full: could not write piece {piece} to {}: {} free there, {} still to download; \
                 downloading is paused (verified pieces are kept and seeded) and resumes when there is room",
                path.display(),
                indicatif::HumanBytes(*free),
                indicatif::HumanBytes(*needed),
            ),
            Event::DiskRoom { free } => {
                tracing::warn!("{} free on disk again: downloading resumes", indicatif::HumanBytes(*free));
            }
            Event::MetadataReceived { size } => self.line(&format!("metadata received: {size} bytes")),
            // Said by the session's log line, where it was saved.
            Event::MetadataReady { .. } => {}
            Event::PieceLayersReceived { files, hashes } => {
                self.line(&format!("piece layers received: {files} files, {hashes} hashes, proven"));
            }
            Event::MetadataFailed { senders } => {
                tracing::warn!(from = ?senders, "the metadata did not match the info-hash; fetching it again");
            }
            Event::Complete => {
                self.complete = true;
                self.say(&format!("complete: {} verified", self.name));
                if let Some(bar) = &self.bar {
                    // The bar becomes the seeding line.
                    let style = ProgressStyle::with_template("{prefix} seeding: {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar());
                    bar.set_style(style);
                    bar.set_message("uploaded 0 B");
                }
            }
            Event::Seeding => self.say(&format!("seeding {}", self.name)),
            Event::Status(status) => self.status(status),
        }
    }

    fn status(&mut self, status: &Status) {
        let text = format!(
            "{}/{} pieces, down {}/s, up {}/s, {} peers{}",
            status.have,
            status.total,
            indicatif::HumanBytes(status.download_rate),
            indicatif::HumanBytes(status.upload_rate),
            status.peers,
            sources_text(&status.sources),
        );
        if let Some(bar) = &self.bar {
            if self.complete {
                let ratio = if self.total == 0 { 0.0 } else { status.uploaded as f64 / self.total as f64 };
                bar.set_message(format!(
                    "uploaded {}, ratio {ratio:.2}, {} peers{}, up {}/s",
                    indicatif::HumanBytes(status.uploaded),
                    status.peers,
                    sources_text(&status.sources),
                    indicatif::HumanBytes(status.upload_rate)
                ));
            } else {
                bar.set_position(bar.length().unwrap_or(0).saturating_sub(status.left));
                bar.set_message(text);
            }
            return;
        }
        // Plain output: a line every 5 seconds is enough for a log.
        let due = self.last_line.is_none_or(|at| at.elapsed() >= Duration::from_secs(5));
        if due && (status.left > 0 || status.upload_rate > 0) {
            self.last_line = Some(Instant::now());
            self.line(&text);
        }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None if self.one_of_many => tracing::info!("{}: {text}", self.name),
            None => tracing::info!("{text}"),
        }
    }

    /// The torrent stopped on an error (its data cannot be stored, say); the others go on.
    fn errored(&self, err: &anyhow::Error) {
        if self.json {
            self.print_json(serde_json::json!({"event": "errored", "error": format!("{err:#}")}));
        }
        eprintln!("peer: error: {err:#}");
    }

    fn finish(&mut self, outcome: &Outcome) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            cli::hide_bar();
        }
        if self.json {
            let peers: Vec<serde_json::Value> = outcome
                .peers
                .iter()
                .map(|peer| {
                    serde_json::json!({
                        "address": peer.addr.to_string(),
                        "peer_id": hex::encode(peer.peer_id),
                        "source": peer.source.name(),
                        "downloaded": peer.downloaded,
                        "uploaded": peer.uploaded,
                    })
                })
                .collect();
            self.print_json(serde_json::json!({
                "event": "stopped",
                "complete": outcome.complete,
                "have": outcome.have,
                "total": outcome.total,
                "downloaded": outcome.downloaded,
                "uploaded": outcome.uploaded,
                "peers": peers,
            }));
        } else {
            let name = if self.one_of_many { format!(" {}", self.name) } else { String::new() };
            println_flush(&format!(
                "stopped{name}: {} of {} pieces, downloaded {} bytes, uploaded {} bytes",
                outcome.have, outcome.total, outcome.downloaded, outcome.uploaded
            ));
        }
    }
}

/// ` (tracker 3, dht 1)`: where the connected peers came from, the sources with none left out.
fn sources_text(sources: &SourceCounts) -> String {
    let parts: Vec<String> = sources
        .iter()
        .filter(|&(_, count)| count > 0)
        .map(|(source, count)| format!("{} {count}", source.name()))
        .collect();
    if parts.is_empty() { String::new() } else { format!(" ({})", parts.join(", ")) }
}

fn event_json(event: &Event) -> serde_json::Value {
    use serde_json::json;
    match event {
        Event::Listening { addr, peer_id } => {
            json!({"event": "listening", "address": addr.to_string(), "peer_id": hex::encode(peer_id)})
        }
        Event::Checking { done, total } => json!({"event": "checking", "done": done, "total": total}),
        Event::Checked { have, total, resumed } => {
            json!({"event": "checked", "have": have, "total": total, "resumed": resumed})
        }
        Event::Announced { tracker, peers, seeders, leechers } => {
            json!({"event": "announced", "tracker": tracker, "peers": peers, "seeders": seeders, "leechers": leechers})
        }
        Event::AnnounceFailed { tracker, error } => {
            json!({"event": "announce_failed", "tracker": tracker, "error": error})
        }
        Event::PeerConnected { addr, source } => {
            json!({"event": "peer_connected", "address": addr.to_string(), "source": source.name()})
        }
        Event::PeerDisconnected { addr, reason } => {
            json!({"event": "peer_disconnected", "address": addr.to_string(), "reason": reason})
        }
        Event::PieceVerified { index, from, have, total } => {
            let from: Vec<serde_json::Value> = from
                .iter()
                .map(|(addr, peer_id)| json!({"address": addr.to_string(), "peer_id": hex::encode(peer_id)}))
                .collect();
            json!({"event": "piece_verified", "piece": index, "from": from, "have": have, "total": total})
        }
        Event::PieceFailed { index, senders } => {
            let senders: Vec<String> = senders.iter().map(ToString::to_string).collect();
            json!({"event": "piece_failed", "piece": index, "senders": senders})
        }
        Event::PeerBanned { addr } => json!({"event": "peer_banned", "address": addr.to_string()}),
        Event::BlocksChecked { index, bad_blocks, liars, by } => {
            let liars: Vec<String> = liars.iter().map(ToString::to_string).collect();
            json!({
                "event": "piece_blocks_checked",
                "piece": index,
                "bad_blocks": bad_blocks,
                "liars": liars,
                "hashes_from": by.to_string(),
            })
        }
        Event::AddressBanned { ip } => json!({"event": "address_banned", "ip": ip.to_string()}),
        Event::DiskFull { path, piece, free, needed } => json!({
            "event": "disk_full",
            "path": path.display().to_string(),
            "piece": piece,
            "free": free,
            "needed": needed,
        }),
        Event::DiskRoom { free } => json!({"event": "disk_room", "free": free}),
        Event::MetadataReceived { size } => json!({"event": "metadata_received", "size": size}),
        Event::MetadataReady { torrent, saved: Some(path) } => {
            json!({"event": "torrent_saved", "path": path.display().to_string(), "name": torrent.info.name})
        }
        Event::MetadataReady { torrent, saved: None } => {
            json!({"event": "metadata_ready", "name": torrent.info.name})
        }
        Event::PieceLayersReceived { files, hashes } => {
            json!({"event": "piece_layers_received", "files": files, "hashes": hashes})
        }
        Event::MetadataFailed { senders } => {
            let senders: Vec<String> = senders.iter().map(ToString::to_string).collect();
            json!({"event": "metadata_failed", "senders": senders})
        }
        Event::Complete => json!({"event": "complete"}),
        Event::Seeding => json!({"event": "seeding"}),
        Event::Status(status) => json!({
            "event": "status",
            "have": status.have,
            "total": status.total,
            "downloaded": status.downloaded,
            "uploaded": status.uploaded,
            "left": status.left,
            "download_rate": status.download_rate,
            "upload_rate": status.upload_rate,
            "peers": status.peers,
            "sources": status.sources.iter().map(|(source, count)| (source.name().to_owned(), json!(count)))
                .collect::<serde_json::Map<_, _>>(),
        }),
    }
}

fn print_json(value: &serde_json::Value) {
    println_flush(&value.to_string());
}

fn println_flush(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}");
    let _ = stdout.flush();
}

#[cfg(test)]
mod tests {
    use super::parse_rate;

    #[test]
    fn rates_take_decimal_and_binary_suffixes() {
        assert_eq!(parse_rate("1000"), Ok(1000));
        assert_eq!(parse_rate("20M"), Ok(20_000_000));
        assert_eq!(parse_rate("512Ki"), Ok(512 * 1024));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("5X").is_err());
        assert!(parse_rate("").is_err());
        assert!(parse_rate("99999999999999999999G").is_err());
    }
}
