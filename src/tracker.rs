//! `tracker [TORRENT...]`: a UDP (BEP 15) and HTTP tracker. With torrents it serves exactly those, on the port
//! of the first one's UDP announce URL; without, it is an open tracker on 0.0.0.0:6969.

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use tracker::access::Access;
use tracker::access_file::{AccessFile, AccessMode};
use tracker::http_front::{self, HttpConfig};
use tracker::server::{Config, NamedTorrent, Tracker, bind_workers};
use tracker::swarm::Limits;

use crate::cli;
use crate::mktorrent::read_torrent_any;

/// BitTorrent tracker: UDP (BEP 15) and, with --http, HTTP (BEP 3); records announces and matches leechers with
/// seeders.
///
/// `tracker movie.torrent` serves that torrent only (other info-hashes get the error "unknown torrent"),
/// listening on the port of its udp:// announce URL: on that host when it is a loopback address, else on all
/// interfaces. `tracker` alone is an open tracker on 0.0.0.0:6969. One worker thread per core shares the swarms.
/// --http adds HTTP announces and scrapes, /metrics (OpenMetrics), /stats.json and a live page at /. Every
/// setting can come from a TOML file (--config; flags win over it; --print-config shows the result). SIGHUP
/// re-reads the torrents (from the command line or the file's `torrents`) without dropping swarms. --allow or
/// --deny FILE (as opentracker's -w and -b) limits the info-hashes served, over UDP and HTTP; the list is re-read
/// on SIGHUP and whenever the file changes. A scrape answers every info-hash it names, one not served with zeros.
/// Logs go to stderr (RUST_LOG=debug shows every announce); `listening on ADDR` (and `http on ADDR`) go to stdout
/// once bound.
#[derive(Debug, Parser)]
#[command(name = "tracker", version, max_term_width = 100)]
#[command(
    after_help = "`tracker --generate man|complete-bash|complete-zsh|complete-fish` prints its man page or a completion script."
)]
pub struct Args {
    /// Torrents to serve.
    pub torrents: Vec<PathBuf>,

    /// Read settings from this TOML file (keys as the long flags, with underscores: bind, open, interval,
    /// peer_timeout, max_numwant, status_interval, max_torrents, max_peers_per_torrent, workers, http,
    /// real_ip_header, torrents, allow, deny); flags given on the command line win (--allow or --deny replaces
    /// both keys). Paths in the file are relative to it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print the settings in effect as TOML and exit.
    #[arg(long)]
    pub print_config: bool,

    /// Address to listen on, e.g. 127.0.0.1:0 (any free port) or [::]:6969 (IPv6 and IPv4).
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<SocketAddr>,

    /// Accept any info-hash (named torrents still get their names in the logs).
    #[arg(long)]
    pub open: bool,

    /// Serve only the info-hashes listed in FILE: one a line, 40 hex digits (v1) or 64 (v2, matched by its first
    /// 20 bytes, which v2 clients announce), either case; `#` comments and blank lines are skipped. Other hashes
    /// get the error "info-hash is not allowed", and zeros in a scrape. Without torrents named (or with --open)
    /// every listed hash is served; with torrents named, only those both named and listed. FILE is re-read on
    /// SIGHUP and within a second or so of changing (edited in place or replaced); a bad line is an error naming
    /// the line at start, and on a re-read is logged while the list in force stays.
    #[arg(long, value_name = "FILE", conflicts_with = "deny")]
    pub allow: Option<PathBuf>,

    /// Refuse the info-hashes listed in FILE (as for --allow) and serve the rest as without it. Refused hashes
    /// get "info-hash is not allowed", and zeros in a scrape; the swarm of a hash that becomes refused is dropped.
    #[arg(long, value_name = "FILE")]
    pub deny: Option<PathBuf>,

    /// Seconds between re-announces, told to clients. [default: 120]
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u32).range(1..))]
    pub interval: Option<u32>,

    /// Seconds after which a peer that has not re-announced is dropped. [default: 1.5 × interval]
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u32).range(1..))]
    pub peer_timeout: Option<u32>,

    /// Most peers in one reply (over UDP never more than fit in one 1220-byte packet: 200 IPv4, 66 IPv6).
    /// [default: 200]
    #[arg(long, value_name = "N")]
    pub max_numwant: Option<usize>,

    /// Seconds between status lines (one per named torrent, or one summary in open mode). [default: 10]
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub status_interval: Option<u64>,

    /// Most torrents tracked at once in open mode. [default: 2000000]
    #[arg(long, value_name = "N")]
    pub max_torrents: Option<usize>,

    /// Most peers recorded per torrent and address family. [default: 100000]
    #[arg(long, value_name = "N")]
    pub max_peers_per_torrent: Option<usize>,

    /// Also serve HTTP at this TCP address, over the same swarms: /announce and /scrape (BEP 3, BEP 23, BEP 7,
    /// BEP 48), /metrics, /stats.json and the live page at /.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,

    /// Behind a reverse proxy: take each HTTP client's IP from this header (the last address in it), e.g.
    /// X-Forwarded-For or X-Real-IP. Only with a proxy that sets it: clients could otherwise pick any address.
    #[arg(long, value_name = "NAME")]
    pub real_ip_header: Option<String>,

    /// Worker threads, each with a UDP socket of its own on the address (SO_REUSEPORT), sharing the swarms.
    /// [default: the number of cores]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub workers: Option<u16>,
}

/// Every setting, as a TOML file holds it; absent keys take the defaults.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub torrents: Vec<PathBuf>,
    pub bind: Option<SocketAddr>,
    #[serde(default)]
    pub open: bool,
    pub interval: Option<u32>,
    pub peer_timeout: Option<u32>,
    pub max_numwant: Option<usize>,
    pub status_interval: Option<u64>,
    pub max_torrents: Option<usize>,
    pub max_peers_per_torrent: Option<usize>,
    pub workers: Option<u16>,
    pub http: Option<SocketAddr>,
    pub real_ip_header: Option<String>,
    /// The access list file: only these info-hashes are served.
    pub allow: Option<PathBuf>,
    /// The access list file: these info-hashes are refused.
    pub deny: Option<PathBuf>,
}

impl Settings {
    /// The file's settings (if any) with the command line's on top.
    fn from_args(args: &Args) -> anyhow::Result<Settings> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                let mut settings: Settings = toml::from_str(&text)
                    .with_context(|| format!("{} is not a valid tracker config", path.display()))?;
                // Relative torrent and access list paths in the file are relative to the file.
                let base = path.parent().unwrap_or(std::path::Path::new("."));
                settings.torrents = settings.torrents.iter().map(|torrent| base.join(torrent)).collect();
                settings.allow = settings.allow.map(|list| base.join(list));
                settings.deny = settings.deny.map(|list| base.join(list));
                settings
            }
            None => Settings::default(),
        };
        // An access list on the command line replaces the file's, whichever kind each is.
        let (allow, deny) = if args.allow.is_some() || args.deny.is_some() {
            (args.allow.clone(), args.deny.clone())
        } else {
            (file.allow, file.deny)
        };
        let settings = Settings {
            torrents: if args.torrents.is_empty() { file.torrents } else { args.torrents.clone() },
            bind: args.bind.or(file.bind),
            open: args.open || file.open,
            interval: args.interval.or(file.interval),
            peer_timeout: args.peer_timeout.or(file.peer_timeout),
            max_numwant: args.max_numwant.or(file.max_numwant),
            status_interval: args.status_interval.or(file.status_interval),
            max_torrents: args.max_torrents.or(file.max_torrents),
            max_peers_per_torrent: args.max_peers_per_torrent.or(file.max_peers_per_torrent),
            workers: args.workers.or(file.workers),
            http: args.http.or(file.http),
            real_ip_header: args.real_ip_header.clone().or(file.real_ip_header),
            allow,
            deny,
        };
        if settings.allow.is_some() && settings.deny.is_some() {
            bail!(
                "allow and deny cannot both be set: a list names either the only info-hashes served or those refused"
            );
        }
        if settings.interval == Some(0) || settings.peer_timeout == Some(0) || settings.status_interval == Some(0) {
            bail!("interval, peer_timeout and status_interval must be at least 1 second");
        }
        if settings.workers == Some(0) {
            bail!("workers must be at least 1");
        }
        if settings.real_ip_header.is_some() && settings.http.is_none() {
            bail!("real_ip_header needs http: it applies to HTTP announces only");
        }
        Ok(settings)
    }

    /// Every default filled in, for --print-config.
    fn resolved(&self) -> Settings {
        let interval = self.interval.unwrap_or(120);
        Settings {
            torrents: self.torrents.iter().map(|path| absolute(path)).collect(),
            interval: Some(interval),
            peer_timeout: Some(self.peer_timeout.unwrap_or(interval.saturating_mul(3) / 2)),
            max_numwant: Some(self.max_numwant.unwrap_or(200)),
            status_interval: Some(self.status_interval.unwrap_or(10)),
            max_torrents: Some(self.max_torrents.unwrap_or(Limits::default().max_torrents)),
            max_peers_per_torrent: Some(self.max_peers_per_torrent.unwrap_or(Limits::default().max_peers_per_torrent)),
            workers: Some(self.workers.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, |n| u16::try_from(n.get()).unwrap_or(1024))
            })),
            allow: self.allow.as_deref().map(absolute),
            deny: self.deny.as_deref().map(absolute),
            ..self.clone()
        }
    }

    /// The access list file to watch, if any.
    fn access_file(&self) -> Option<AccessFile> {
        match (&self.allow, &self.deny) {
            (Some(path), _) => Some(AccessFile::new(path.clone(), AccessMode::Allow)),
            (None, Some(path)) => Some(AccessFile::new(path.clone(), AccessMode::Deny)),
            (None, None) => None,
        }
    }
}

/// `path` made absolute, as --print-config shows paths; as given if that fails.
fn absolute(path: &std::path::Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Runs `tracker` with the given command line and returns its exit code.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let args = Args::parse_from(args);
    cli::init_logging();
    cli::finish("tracker", run(&args))
}

/// The named torrents of `paths`, and the udp:// announce URL of each (if any).
fn named_torrents(paths: &[PathBuf]) -> anyhow::Result<(Vec<NamedTorrent>, Vec<Option<String>>)> {
    let mut named = Vec::new();
    let mut announce_urls = Vec::new();
    for path in paths {
        let (torrent, _) = read_torrent_any(path)?;
        announce_urls.push(torrent.trackers().into_iter().find(|url| url.starts_with("udp://")));
        // A hybrid's v2 clients announce the truncated SHA-256; a v2-only torrent's info_hash already is that.
        let v2_info_hash =
            torrent.info_hash_v2().map(|hash| hash.truncated().0).filter(|v2| *v2 != torrent.info_hash.0);
        named.push(NamedTorrent {
            info_hash: torrent.info_hash.0,
            v2_info_hash,
            name: torrent.info.name.clone(),
            total_length: torrent.info.total_length(),
        });
    }
    Ok((named, announce_urls))
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let settings = Settings::from_args(args)?.resolved();
    if args.print_config {
        print!("{}", toml::to_string(&settings).context("writing the settings as TOML")?);
        return Ok(ExitCode::SUCCESS);
    }
    let (named, announce_urls) = named_torrents(&settings.torrents)?;
    let bind = match (settings.bind, announce_urls.first()) {
        (Some(bind), _) => bind,
        (None, Some(Some(url))) => bind_address_for(url).with_context(|| format!("announce URL {url}"))?,
        (None, Some(None)) => bail!("{} has no udp:// announce URL: give --bind", settings.torrents[0].display()),
        (None, None) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 6969)),
    };
    let interval = settings.interval.unwrap_or(120);
    let config = Config {
        interval,
        peer_timeout: settings.peer_timeout.unwrap_or(interval.saturating_mul(3) / 2),
        max_numwant: settings.max_numwant.unwrap_or(200),
        status_interval: Duration::from_secs(settings.status_interval.unwrap_or(10)),
        limits: Limits {
            max_torrents: settings.max_torrents.unwrap_or(Limits::default().max_torrents),
            max_peers_per_torrent: settings.max_peers_per_torrent.unwrap_or(Limits::default().max_peers_per_torrent),
        },
        ..Config::default()
    };
    let open = settings.open || named.is_empty();
    // Read before binding, so that a bad list stops the tracker before it answers anyone.
    let mut access_file = settings.access_file();
    let access = match &mut access_file {
        Some(file) => file.load()?,
        None => Access::Everyone,
    };
    for torrent in &named {
        match torrent.v2_info_hash {
            Some(v2) => tracing::info!(
                torrent = %torrent.name,
                info_hash = %hex::encode(torrent.info_hash),
                v2_info_hash = %hex::encode(v2),
                "serving (hybrid: both swarms, shown as one)"
            ),
            None => tracing::info!(torrent = %torrent.name, info_hash = %hex::encode(torrent.info_hash), "serving"),
        }
    }
    let workers = usize::from(settings.workers.unwrap_or(1));
    let sockets = bind_workers(bind, workers).with_context(|| format!("binding UDP socket on {bind}"))?;
    let local = sockets[0].local_addr().context("reading the bound address")?;
    let shutdown = cli::shutdown_flag()?;
    let reload = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, reload.clone())
        .context("installing the SIGHUP handler")?;
    let http_listener = match settings.http {
        Some(address) => {
            let listener = bind_http(address).with_context(|| format!("binding HTTP on {address}"))?;
            Some(listener)
        }
        None => None,
    };
    let real_ip_header = match &settings.real_ip_header {
        Some(name) => Some(
            hyper::header::HeaderName::from_bytes(name.as_bytes())
                .with_context(|| format!("real_ip_header {name:?} is not a header name"))?,
        ),
        None => None,
    };
    let trackers = Tracker::workers(config, named, open, workers);
    if let Some(file) = &access_file {
        log_access_change(&trackers[0], file, access, "start");
    }
    let mode = if open { "open" } else { "named torrents only" };
    let access_mode = access_file.as_ref().map_or("none", |file| file.mode().name());
    tracing::info!(address = %local, mode, access_list = access_mode, workers, "tracker started");
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
    let reloader = {
        let (handle, shutdown) = (trackers[0].http_handle(), shutdown.clone());
        // The torrents to serve after a SIGHUP: the command line's, or the config file's list as it is then.
        let (given, config_file) = (args.torrents.clone(), args.config.clone());
        let torrents = move || -> anyhow::Result<Vec<PathBuf>> {
            match config_file {
                Some(_) if given.is_empty() => {
                    Ok(Settings::from_args(&Args::parse_from(config_args(&config_file)))?.torrents)
                }
                _ => Ok(given.clone()),
            }
        };
        std::thread::Builder::new()
            .name("tracker-reload".into())
            .spawn(move || reload_on_sighup(&handle, &torrents, access_file, &reload, &shutdown))
            .context("starting the reload thread")?
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
        shutdown.store(true, Ordering::Relaxed);
        served.context("serving")?;
        for thread in threads {
            thread.join().map_err(|_| anyhow::anyhow!("a worker thread panicked"))?.context("serving")?;
        }
        Ok(first)
    })?;
    if let Some(thread) = http_thread {
        thread.join().map_err(|_| anyhow::anyhow!("the HTTP thread panicked"))??;
    }
    let _ = reloader.join();
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

/// How often the access list file is looked at for a change.
const ACCESS_POLL: Duration = Duration::from_secs(1);

/// On each SIGHUP, reads `torrents` again and serves what they name now, then re-reads the access list; and
/// re-reads the access list whenever its file changes. A torrent that does not read keeps the old torrents in
/// force, and a list that does not read or parse keeps the old list, with the reason logged.
fn reload_on_sighup(
    tracker: &Tracker,
    torrents: &dyn Fn() -> anyhow::Result<Vec<PathBuf>>,
    mut access_file: Option<AccessFile>,
    reload: &AtomicBool,
    shutdown: &AtomicBool,
) {
    let mut next_poll = std::time::Instant::now() + ACCESS_POLL;
    while !shutdown.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(200));
        let sighup = reload.swap(false, Ordering::Relaxed);
        if sighup {
            match torrents().and_then(|paths| named_torrents(&paths)) {
                Ok((named, _)) => {
                    let count = named.len();
                    let (added, removed) = tracker.set_named(named);
                    tracing::info!(added, removed, torrents = count, "reloaded the torrents");
                }
                Err(err) => tracing::error!("reload failed, the torrents served are unchanged: {err:#}"),
            }
        }
        let Some(file) = &mut access_file else { continue };
        let trigger = if sighup {
            "SIGHUP"
        } else if std::time::Instant::now() >= next_poll {
            next_poll = std::time::Instant::now() + ACCESS_POLL;
            if !file.changed() {
                continue;
            }
            "file changed"
        } else {
            continue;
        };
        match file.load() {
            Ok(access) => log_access_change(tracker, file, access, trigger),
            Err(err) => tracing::error!(trigger, "{err}; the access list in force is unchanged"),
        }
    }
}

/// Puts `access` (just read from `file`) in force and says so, warning of named torrents it refuses.
fn log_access_change(tracker: &Tracker, file: &AccessFile, access: Access, trigger: &str) {
    let hashes = access.listed().unwrap_or(0);
    let change = tracker.set_access(access);
    tracing::info!(
        list = %file.path().display(),
        mode = file.mode().name(),
        hashes,
        peers_dropped = change.peers_dropped,
        trigger,
        "access list read"
    );
    for torrent in &change.named_refused {
        tracing::warn!(%torrent, list = %file.path().display(), "named, but the access list refuses it: not served");
    }
}

/// A command line that reads only `config` (to re-read the file's settings on reload).
fn config_args(config: &Option<PathBuf>) -> Vec<OsString> {
    let mut args = vec![OsString::from("tracker")];
    if let Some(path) = config {
        args.push("--config".into());
        args.push(path.into());
    }
    args
}

/// The HTTP listening socket, non-blocking, with a backlog deep enough for a burst of clients (std's is 128).
fn bind_http(address: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    socket.listen(4096)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
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
