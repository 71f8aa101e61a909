//! `mktorrent`: make a .torrent from a file or folder (flags of Debian's mktorrent 1.1), show one
//! (`--show`), or check data on disk against one (`--verify`).

mod report;
mod show;
mod verify;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use metainfo::{CreateOptions, MAX_TORRENT_FILE_BYTES, MetaVersion, Progress, Torrent, create_from_path, input_name};

use crate::cli;

/// Announce URL used when no `-a` is given: the tracker's default on this machine.
pub const DEFAULT_ANNOUNCE: &str = "udp://127.0.0.1:6969/announce";

/// Make a BitTorrent metainfo (.torrent) file, or show or verify one.
///
/// `mktorrent PATH` hashes PATH (a file or a folder) and writes STEM.torrent in the current folder
/// (spiderman.txt -> spiderman.torrent). Folders list their files sorted by full path, hidden files
/// included, symbolic links followed, as Debian's mktorrent does, so both give the same info-hash.
#[derive(Debug, Parser)]
#[command(name = "mktorrent", version, max_term_width = 100)]
#[command(
    after_help = "Examples:\n  mktorrent spiderman.txt\n  mktorrent -a udp://tracker.example:6969/announce -l 20 -p movies/\n  \
                        mktorrent --no-announce --dht-node router.bittorrent.com:6881 movies/\n  \
                        mktorrent --show spiderman.torrent --json\n  mktorrent --verify spiderman.torrent --dir downloads\n\n\
                        `mktorrent --generate man|complete-bash|complete-zsh|complete-fish` prints its man page or a \
                        completion script."
)]
pub struct Args {
    /// File or folder to make a torrent of.
    #[arg(required_unless_present_any = ["show", "verify"], conflicts_with_all = ["show", "verify"])]
    pub path: Option<PathBuf>,

    /// Announce URL. Repeat for backup tiers (BEP 12); commas separate URLs within one tier.
    /// The first URL is written as `announce`. [default: udp://127.0.0.1:6969/announce]
    #[arg(short = 'a', long = "announce", value_name = "URL[,URL...]")]
    pub announce: Vec<String>,

    /// Write no announce URL at all: a trackerless torrent, found through the DHT (see --dht-node) or by
    /// magnet link. Cannot be used with -a.
    #[arg(long = "no-announce", conflicts_with_all = ["announce", "show", "verify"])]
    pub no_announce: bool,

    /// DHT node a client can bootstrap from (BEP 5 `nodes`), as HOST:PORT: a DNS name or an IP address,
    /// [ADDR]:PORT for IPv6. Repeatable; written in the order given.
    #[arg(long = "dht-node", value_name = "HOST:PORT", value_parser = parse_dht_node, conflicts_with_all = ["show", "verify"])]
    pub dht_nodes: Vec<(String, u16)>,

    /// Comment, stored under the top-level `comment` key.
    #[arg(short = 'c', long)]
    pub comment: Option<String>,

    /// Write no `creation date` (otherwise: now, or SOURCE_DATE_EPOCH when set).
    #[arg(short = 'd', long = "no-date")]
    pub no_date: bool,

    /// Write no `created by` key.
    #[arg(long = "no-created-by")]
    pub no_created_by: bool,

    /// Overwrite the output file if it exists.
    #[arg(short = 'f', long)]
    pub force: bool,

    /// Piece length as a power of two, 14 to 28 (18 = 256 KiB). Default: mktorrent's table, 32 KiB up
    /// to 50 MiB of data, doubling each time the size doubles (64 KiB up to 100 MiB, ... 8 MiB up to
    /// 12,800 MiB), 16 MiB above that.
    #[arg(short = 'l', long = "piece-length", value_name = "N", value_parser = clap::value_parser!(u32).range(14..=28))]
    pub piece_length_log2: Option<u32>,

    /// Name stored in the torrent (`info.name`) instead of the file's or folder's own name.
    #[arg(short = 'n', long)]
    pub name: Option<String>,

    /// Output file. [default: STEM.torrent in the current folder]
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Mark the torrent private (`info.private` = 1: no DHT or peer exchange).
    #[arg(short = 'p', long)]
    pub private: bool,

    /// Source tag (`info.source`); changes the info-hash, which lets one file be cross-seeded.
    #[arg(short = 's', long)]
    pub source: Option<String>,

    /// Hashing threads. [default: one per core]
    #[arg(short = 't', long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,

    /// Make a BitTorrent v2-only torrent (BEP 52: `file tree`, `piece layers`, SHA-256 merkle trees), which
    /// v1-only clients cannot read. Files are listed in file-tree order.
    #[arg(long = "v2", conflicts_with_all = ["hybrid", "show", "verify"])]
    pub v2: bool,

    /// Make a hybrid torrent: v1 and v2 in one info dictionary, readable by v1 and v2 clients, with BEP 47 pad
    /// files aligning every file to a piece, as libtorrent 2.0 makes them (same info-hashes).
    #[arg(long, conflicts_with_all = ["show", "verify"])]
    pub hybrid: bool,

    /// Web seed URL (BEP 19 `url-list`). Repeatable; commas separate URLs too.
    #[arg(short = 'w', long = "web-seed", value_name = "URL[,URL...]")]
    pub web_seeds: Vec<String>,

    /// Also list the files and trackers.
    #[arg(short = 'v', long, conflicts_with = "quiet")]
    pub verbose: bool,

    /// Print nothing but errors.
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Print the result as one JSON object on stdout.
    #[arg(long, conflicts_with = "quiet")]
    pub json: bool,

    /// Show what a .torrent file (or a magnet link) holds instead of making one.
    #[arg(long, value_name = "TORRENT", conflicts_with = "verify")]
    pub show: Option<PathBuf>,

    /// Check the data in --dir against a .torrent file, file by file.
    #[arg(long, value_name = "TORRENT")]
    pub verify: Option<PathBuf>,

    /// With --verify: the folder holding the data, as a client's download folder: a single-file torrent
    /// is checked at DIR/NAME, a multi-file one under DIR/NAME/.
    #[arg(long, value_name = "DIR", default_value = ".", requires = "verify")]
    pub dir: PathBuf,
}

/// Runs `mktorrent` with the given command line, printing errors, and returns its exit code.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let args = Args::parse_from(args);
    cli::finish("mktorrent", run(&args))
}

/// Runs `mktorrent` with parsed arguments.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    if let Some(torrent_path) = &args.show {
        if let Some(link) =
            torrent_path.to_str().filter(|text| text.get(..7).is_some_and(|s| s.eq_ignore_ascii_case("magnet:")))
        {
            let magnet = metainfo::parse_magnet(link).context("reading the magnet link")?;
            show::print_magnet(&magnet, args.json)?;
            return Ok(ExitCode::SUCCESS);
        }
        let (torrent, _) = read_torrent_any(torrent_path)?;
        show::print(&torrent, args.json)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(torrent_path) = &args.verify {
        let (torrent, _) = read_torrent_any(torrent_path)?;
        return verify::run(&torrent, &args.dir, threads(args), args);
    }
    let Some(input) = &args.path else { bail!("no file or folder given") };
    make(input, args)
}

/// Reads and parses a v1 or hybrid .torrent file, naming it in any error.
pub fn read_torrent(path: &Path) -> anyhow::Result<(Torrent, Vec<u8>)> {
    read_with(path, Torrent::from_bytes)
}

/// Reads and parses a .torrent file of any version (v2-only too), naming it in any error.
pub fn read_torrent_any(path: &Path) -> anyhow::Result<(Torrent, Vec<u8>)> {
    read_with(path, Torrent::from_bytes_any)
}

fn read_with(
    path: &Path,
    parse: fn(&[u8]) -> Result<Torrent, metainfo::MetainfoError>,
) -> anyhow::Result<(Torrent, Vec<u8>)> {
    let size = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?.len();
    if size > MAX_TORRENT_FILE_BYTES {
        bail!("{}: {size} bytes is larger than any real torrent (limit {MAX_TORRENT_FILE_BYTES})", path.display());
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let torrent = parse(&bytes).with_context(|| format!("{} is not a valid torrent", path.display()))?;
    Ok((torrent, bytes))
}

fn threads(args: &Args) -> usize {
    args.threads.map_or(0, usize::from)
}

fn make(input: &Path, args: &Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let name = match &args.name {
        Some(name) => name.clone(),
        None => input_name(input)?,
    };
    let output = args.output.clone().unwrap_or_else(|| default_output(&name));
    // Fail before hashing, not after minutes of it; the final write re-checks without a race.
    if !args.force && output.exists() {
        bail!("{} already exists (use -f to overwrite)", output.display());
    }

    let options = CreateOptions {
        announce_tiers: if args.no_announce {
            Vec::new()
        } else {
            split_urls(&args.announce).unwrap_or_else(|| vec![vec![DEFAULT_ANNOUNCE.to_owned()]])
        },
        comment: args.comment.clone(),
        created_by: (!args.no_created_by)
            .then(|| format!("mktorrent (bittorrent-tools {})", env!("CARGO_PKG_VERSION"))),
        creation_date: if args.no_date { None } else { Some(creation_date()?) },
        name: args.name.clone(),
        piece_length: args.piece_length_log2.map(|n| 1u64 << n),
        private: args.private,
        source: args.source.clone(),
        web_seeds: split_urls(&args.web_seeds).unwrap_or_default().concat(),
        nodes: args.dht_nodes.clone(),
        threads: threads(args),
        meta_version: match (args.v2, args.hybrid) {
            (true, _) => MetaVersion::V2,
            (false, true) => MetaVersion::Hybrid,
            (false, false) => MetaVersion::V1,
        },
    };

    let bar = progress_bar(args);
    let created = create_from_path(input, &options, &|progress| match progress {
        Progress::Found(bytes) => bar.inc_length(bytes),
        Progress::Hashed(bytes) => bar.inc(bytes),
    })?;
    bar.finish_and_clear();
    write_output(&output, &created.bytes, args.force)?;
    report::created(&created.torrent, &output, started.elapsed(), args)?;
    Ok(ExitCode::SUCCESS)
}

/// `STEM.torrent` in the current folder: spiderman.txt -> spiderman.torrent, movies/ -> movies.torrent.
fn default_output(name: &str) -> PathBuf {
    let stem = Path::new(name).file_stem().map_or_else(|| name.into(), |stem| stem.to_os_string());
    let mut file = stem;
    file.push(".torrent");
    PathBuf::from(file)
}

/// Each argument is one tier; commas separate URLs within it. `None` when no URL at all was given.
fn split_urls(arguments: &[String]) -> Option<Vec<Vec<String>>> {
    let tiers: Vec<Vec<String>> = arguments
        .iter()
        .map(|argument| argument.split(',').map(str::trim).filter(|url| !url.is_empty()).map(str::to_owned).collect())
        .filter(|tier: &Vec<String>| !tier.is_empty())
        .collect();
    (!tiers.is_empty()).then_some(tiers)
}

/// `--dht-node HOST:PORT`: `router.example.org:6881`, `192.0.2.1:6881` or `[2001:db8::1]:6881` (the brackets are
/// not stored: `nodes` holds the bare address, as libtorrent writes it).
fn parse_dht_node(text: &str) -> Result<(String, u16), String> {
    let (host, port) = match text.strip_prefix('[') {
        Some(rest) => rest.split_once("]:").ok_or("expected [ADDR]:PORT for an IPv6 address")?,
        None => {
            let (host, port) = text.rsplit_once(':').ok_or("expected HOST:PORT")?;
            if host.contains(':') {
                return Err("an IPv6 address goes in brackets: [ADDR]:PORT".into());
            }
            (host, port)
        }
    };
    let port: u16 = port.parse().map_err(|_| format!("port {port:?} is not a number from 1 to 65535"))?;
    metainfo::check_node(host, port)?;
    Ok((host.to_owned(), port))
}

/// Now, or SOURCE_DATE_EPOCH when set (reproducible builds: the same input gives the same bytes).
fn creation_date() -> anyhow::Result<i64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) if !text.trim().is_empty() => {
            text.trim().parse().with_context(|| format!("SOURCE_DATE_EPOCH={text:?} is not a number"))
        }
        _ => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or(Duration::ZERO);
            Ok(i64::try_from(now.as_secs()).unwrap_or(i64::MAX))
        }
    }
}

/// Its length grows as the walk finds files (hashing starts before the walk ends).
fn progress_bar(args: &Args) -> ProgressBar {
    if args.quiet || args.json || !cli::stderr_is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    let style = ProgressStyle::with_template(
        "hashing {bar:40} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// Writes through a temporary file in the same folder, so a failure never leaves a partial torrent,
/// and without `force` never replaces a file that appeared meanwhile.
fn write_output(output: &Path, bytes: &[u8], force: bool) -> anyhow::Result<()> {
    use std::io::Write;
    let folder = match output.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".mktorrent-")
        .suffix(".torrent.tmp")
        .tempfile_in(folder)
        .with_context(|| format!("creating a file in {}", folder.display()))?;
    temp.write_all(bytes).with_context(|| format!("writing {}", output.display()))?;
    if force {
        temp.persist(output).with_context(|| format!("writing {}", output.display()))?;
    } else {
        temp.persist_noclobber(output).map_err(|err| {
            if err.error.kind() == std::io::ErrorKind::AlreadyExists {
                anyhow::anyhow!("{} already exists (use -f to overwrite)", output.display())
            } else {
                anyhow::Error::new(err.error).context(format!("writing {}", output.display()))
            }
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{default_output, parse_dht_node, split_urls};

    #[test]
    fn output_is_named_after_the_stem() {
        assert_eq!(default_output("spiderman.txt"), std::path::Path::new("spiderman.torrent"));
        assert_eq!(default_output("movies"), std::path::Path::new("movies.torrent"));
        assert_eq!(default_output("a.tar.gz"), std::path::Path::new("a.tar.torrent"));
        assert_eq!(default_output(".hidden"), std::path::Path::new(".hidden.torrent"));
    }

    #[test]
    fn announce_arguments_become_tiers() {
        let args = ["udp://a, udp://b".to_owned(), "udp://c".to_owned(), ",".to_owned()];
        assert_eq!(split_urls(&args), Some(vec![vec!["udp://a".into(), "udp://b".into()], vec!["udp://c".into()]]));
        assert_eq!(split_urls(&[]), None);
    }

    #[test]
    fn dht_nodes_are_host_colon_port() {
        let node = |host: &str, port| Ok((host.to_owned(), port));
        assert_eq!(parse_dht_node("router.example.org:6881"), node("router.example.org", 6881));
        assert_eq!(parse_dht_node("192.0.2.1:1"), node("192.0.2.1", 1));
        assert_eq!(parse_dht_node("[2001:db8::1]:65535"), node("2001:db8::1", 65535));
        for (bad, why) in [
            ("router.example.org", "HOST:PORT"),
            ("::1:6881", "brackets"),
            ("[::1]6881", "[ADDR]:PORT"),
            ("host:0", "port 0"),
            ("host:65536", "1 to 65535"),
            ("host:-1", "1 to 65535"),
            ("host:", "1 to 65535"),
            (":6881", "empty"),
            ("[]:6881", "empty"),
            ("a b:1", "whitespace"),
        ] {
            let err = parse_dht_node(bad).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
