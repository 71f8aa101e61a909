//! `tracker [TORRENT...]`: a BEP 15 UDP tracker. With torrents it serves exactly those, on the port of
//! the first one's UDP announce URL; without, it is an open tracker on 0.0.0.0:6969.

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use tracker::http_front::{self, HttpConfig};
use tracker::server::{Config, NamedTorrent, Tracker, bind_workers};
use tracker::swarm::Limits;

use crate::cli;
use crate::mktorrent::read_torrent;

/// UDP BitTorrent tracker (BEP 15): records announces and matches leechers with seeders.
///
/// `tracker movie.torrent` serves that torrent only (other info-hashes get the BEP 15 error "unknown
/// torrent"), listening on the port of its udp:// announce URL: on that host when it is a loopback
/// address, else on all interfaces. `tracker` alone is an open tracker on 0.0.0.0:6969. Logs go to
/// stderr (RUST_LOG=debug shows every announce); `listening on ADDR` goes to stdout once bound.
#[derive(Debug, Parser)]
#[command(name = "tracker", version, max_term_width = 100)]
pub struct Args {
    /// Torrents to serve.
    pub torrents: Vec<PathBuf>,

    /// Address to listen on, e.g. 127.0.0.1:0 (any free port) or [::]:6969 (IPv6 and IPv4).
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<SocketAddr>,

    /// Accept any info-hash (named torrents still get their names in the logs).
    #[arg(long)]
    pub open: bool,

    /// Seconds between re-announces, told to clients.
    #[arg(long, value_name = "SECONDS", default_value_t = 120, value_parser = clap::value_parser!(u32).range(1..))]
    pub interval: u32,

    /// Seconds after which a peer that has not re-announced is dropped. [default: 1.5 × interval]
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u32).range(1..))]
    pub peer_timeout: Option<u32>,

    /// Most peers in one reply (never more than fit in one 1220-byte packet: 200 IPv4, 66 IPv6).
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub max_numwant: usize,

    /// Seconds between status lines (one per named torrent, or one summary in open mode).
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub status_interval: u64,

    /// Most torrents tracked at once in open mode.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_torrents)]
    pub max_torrents: usize,

    /// Most peers recorded per torrent and address family.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_peers_per_torrent)]
    pub max_peers_per_torrent: usize,

    /// Also serve HTTP announces and scrapes (BEP 3, BEP 23, BEP 7, BEP 48) at this TCP address, over the same
    /// swarms: /announce and /scrape.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,

    /// Behind a reverse proxy: take each HTTP client's IP from this header (the last address in it), e.g.
    /// X-Forwarded-For or X-Real-IP. Only with a proxy that sets it: clients could otherwise pick any address.
    #[arg(long, value_name = "NAME", requires = "http")]
    pub real_ip_header: Option<String>,

    /// Worker threads, each with a UDP socket of its own on the address (SO_REUSEPORT), sharing the swarms.
    /// [default: the number of cores]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub workers: Option<u16>,
}

/// Runs `tracker` with the given command line and returns its exit code.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let args = Args::parse_from(args);
    cli::init_logging();
    cli::finish("tracker", run(&args))
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let mut named = Vec::new();
    let mut announce_urls = Vec::new();
    for path in &args.torrents {
        let (torrent, _) = read_torrent(path)?;
        announce_urls.push(torrent.trackers().into_iter().find(|url| url.starts_with("udp://")));
        named.push(NamedTorrent {
            info_hash: torrent.info_hash.0,
            name: torrent.info.name.clone(),
            total_length: torrent.info.total_length(),
        });
    }
    let bind = match (args.bind, announce_urls.first()) {
        (Some(bind), _) => bind,
        (None, Some(Some(url))) => bind_address_for(url).with_context(|| format!("announce URL {url}"))?,
        (None, Some(None)) => bail!("{} has no udp:// announce URL: give --bind", args.torrents[0].display()),
        (None, None) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 6969)),
    };

    let config = Config {
        interval: args.interval,
        peer_timeout: args.peer_timeout.unwrap_or(args.interval.saturating_mul(3) / 2),
        max_numwant: args.max_numwant,
        status_interval: Duration::from_secs(args.status_interval),
        limits: Limits { max_torrents: args.max_torrents, max_peers_per_torrent: args.max_peers_per_torrent },
        ..Config::default()
    };
    let open = args.open || named.is_empty();
    for torrent in &named {
        tracing::info!(torrent = %torrent.name, info_hash = %hex::encode(torrent.info_hash), "serving");
    }
    let workers = args.workers.map_or_else(|| std::thread::available_parallelism().map_or(1, usize::from), usize::from);
    let sockets = bind_workers(bind, workers).with_context(|| format!("binding UDP socket on {bind}"))?;
    let local = sockets[0].local_addr().context("reading the bound address")?;
    let shutdown = cli::shutdown_flag()?;
    let http_listener = match args.http {
        Some(address) => {
            let listener =
                std::net::TcpListener::bind(address).with_context(|| format!("binding HTTP on {address}"))?;
            listener.set_nonblocking(true).context("making the HTTP socket non-blocking")?;
            Some(listener)
        }
        None => None,
    };
    let real_ip_header = match &args.real_ip_header {
        Some(name) => Some(
            hyper::header::HeaderName::from_bytes(name.as_bytes())
                .with_context(|| format!("--real-ip-header {name:?} is not a header name"))?,
        ),
        None => None,
    };
    let trackers = Tracker::workers(config, named, open, workers);
    let mode = if open { "open" } else { "named torrents only" };
    tracing::info!(address = %local, mode, workers, "tracker started");
    cli::announce_listening(local);
    let http_thread = match http_listener {
        Some(listener) => {
            let address = listener.local_addr().context("reading the HTTP address")?;
            let handle = trackers[0].http_handle();
            let shutdown = shutdown.clone();
            let config = HttpConfig { real_ip_header };
            let thread = std::thread::Builder::new()
                .name("tracker-http".into())
                .spawn(move || serve_http(listener, &handle, config, &shutdown))
                .context("starting the HTTP thread")?;
            tracing::info!(%address, "serving HTTP announces");
            println_flush(&format!("http on {address}"));
            Some(thread)
        }
        None => None,
    };
    let first = std::thread::scope(|scope| -> anyhow::Result<Tracker> {
        let mut threads = Vec::new();
        let mut trackers = trackers.into_iter();
        let mut first = trackers.next().context("no worker")?;
        for (index, (mut tracker, socket)) in trackers.zip(sockets.iter().skip(1)).enumerate() {
            let shutdown = &shutdown;
            let thread = std::thread::Builder::new()
                .name(format!("tracker-{}", index + 1))
                .spawn_scoped(scope, move || tracker.serve(socket, shutdown))
                .context("starting a worker thread")?;
            threads.push(thread);
        }
        let served = first.serve(&sockets[0], &shutdown);
        // One worker failing stops them all.
        shutdown.store(true, std::sync::atomic::Ordering::Relaxed);
        served.context("serving")?;
        for thread in threads {
            thread.join().map_err(|_| anyhow::anyhow!("a worker thread panicked"))?.context("serving")?;
        }
        Ok(first)
    })?;
    if let Some(thread) = http_thread {
        thread.join().map_err(|_| anyhow::anyhow!("the HTTP thread panicked"))??;
    }
    first.log_status();
    let stats = first.stats();
    tracing::info!(
        connects = stats.connects,
        announces = stats.announces,
        scrapes = stats.scrapes,
        dropped = stats.dropped,
        per_worker = ?first.announces_per_worker(),
        "tracker stopped"
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs the HTTP front end on a small runtime of its own until `shutdown` is set.
fn serve_http(
    listener: std::net::TcpListener,
    tracker: &Tracker,
    config: HttpConfig,
    shutdown: &AtomicBool,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("tracker-http")
        .enable_all()
        .build()
        .context("starting the HTTP runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener).context("registering the HTTP socket")?;
        let stopped = async {
            while !shutdown.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        http_front::serve(listener, tracker, config, stopped).await;
        Ok(())
    })
}

fn println_flush(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}");
    let _ = stdout.flush();
}

/// Where to listen for a torrent announcing to `url` (udp://HOST:PORT/...): on HOST if it is a
/// loopback address (`localhost` included), else on all interfaces, at PORT.
fn bind_address_for(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url.strip_prefix("udp://").context("not a udp:// URL")?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let (host, port) = authority.rsplit_once(':').context("no port")?;
    let port: u16 = port.parse().with_context(|| format!("bad port {port:?}"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip = match host.parse::<IpAddr>() {
        Ok(ip) if ip.is_loopback() => ip,
        Ok(IpAddr::V6(_)) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        _ if host.eq_ignore_ascii_case("localhost") => IpAddr::V4(Ipv4Addr::LOCALHOST),
        _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    };
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::bind_address_for;

    #[test]
    fn binds_the_announce_port_on_loopback_hosts_only() {
        let bind = |url: &str| bind_address_for(url).map(|addr| addr.to_string()).map_err(|err| err.to_string());
        assert_eq!(bind("udp://127.0.0.1:6969/announce"), Ok("127.0.0.1:6969".into()));
        assert_eq!(bind("udp://127.0.0.5:7000"), Ok("127.0.0.5:7000".into()));
        assert_eq!(bind("udp://localhost:1337/announce"), Ok("127.0.0.1:1337".into()));
        assert_eq!(bind("udp://tracker.example.org:80/announce"), Ok("0.0.0.0:80".into()));
        assert_eq!(bind("udp://[::1]:6969/announce"), Ok("[::1]:6969".into()));
        assert_eq!(bind("udp://[2001:db8::1]:6969"), Ok("[::]:6969".into()));
        assert!(bind("udp://host/announce").is_err());
        assert!(bind("udp://host:99999/announce").is_err());
    }
}
