//! `sim SCENARIO [N]`: runs a swarm of our real peers in virtual time and prints one JSON line.

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "sim",
    about = "Runs our real peer code over a simulated network in virtual time and reports against the lower bound",
    after_help = "Scenarios:\n  flash-crowd    N leechers and one seeder start together; everyone 20 Mbit/s up, 100 down\n  \
                  loopback       `just bench-swarm` on one machine: the seeder at 20 MB/s, leechers unlimited\n  \
                  churn          flash-crowd; leechers leave once done, half of them join late\n  \
                  seeder-leaves  flash-crowd; the seeder leaves once it has sent one copy\n  \
                  heterogeneous  a mix of fibre (100/1000), DSL (20/100) and mobile (2/20) leechers\n\n\
                  The last line is JSON: {\"scenario\", \"leechers\", \"bound_s\", \"done_s\", \"ratio\", \
                  \"seeder_copies\", \"duplicate_bytes\", \"seed\", ...}"
)]
struct Args {
    /// Which scenario.
    scenario: String,
    /// How many leechers.
    #[arg(default_value_t = 40, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    leechers: u32,
    /// The torrent's size in MiB.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    size_mib: u64,
    /// Its piece length in KiB: 16 (one block) to 65,536.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(16..=65_536))]
    piece_kib: u32,
    /// Seeds everything random; the same seed, the same run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Each peer's most connections.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    max_peers: u32,
    /// Bytes in flight per stream, in KiB.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1 << 20))]
    window_kib: u32,
    /// The seeder does not super-seed (`peer --no-super-seed`).
    #[arg(long)]
    no_super_seed: bool,
    /// Leechers start new pieces in random order instead of rarest first: a deliberately worse picker, to check
    /// that the simulator tells it apart.
    #[arg(long)]
    random_picker: bool,
    /// Also a JSON line for each leecher, before the report: when it was done, what it got from whom, what it sent.
    #[arg(long)]
    leechers_detail: bool,
    /// Also a JSON line for each second, before the report: what the seeder and the leechers sent, how many were
    /// done, and how much of their uplinks the leechers used (tenth percentile and median, in percent).
    #[arg(long)]
    timeline: bool,
    /// Also draw the run as an SVG: leechers done over time against the bound, what the seeder and the leechers
    /// sent each second, and (up to 100 leechers) who sent how much to whom.
    #[arg(long, value_name = "FILE")]
    picture: Option<std::path::PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let options = sim::scenario::Options {
        leechers: args.leechers as usize,
        size: args.size_mib << 20,
        piece_length: args.piece_kib << 10,
        seed: args.seed,
        max_peers: args.max_peers as usize,
        window: (args.window_kib as usize) << 10,
        super_seed: !args.no_super_seed,
        random_pieces: args.random_picker,
    };
    let Some(mut setup) = sim::scenario::setup(&args.scenario, &options) else {
        let names: Vec<&str> = sim::scenario::SCENARIOS.iter().map(|(name, _)| *name).collect();
        eprintln!("sim: no scenario {:?}; there are: {}", args.scenario, names.join(", "));
        return ExitCode::from(2);
    };
    setup.timeline = args.timeline || args.picture.is_some();
    let started = std::time::Instant::now();
    let outcome = match sim::swarm::run(&setup) {
        Ok(outcome) => outcome,
        Err(err) => {
            eprintln!("sim: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("sim: {} simulated in {:.1} s of wall time", args.scenario, started.elapsed().as_secs_f64());
    if args.timeline {
        for line in sim::scenario::timeline_lines(&outcome) {
            println!("{line}");
        }
    }
    if let Some(path) = &args.picture {
        let title = format!("sim {} {} (seed {})", args.scenario, args.leechers, args.seed);
        if let Err(err) = std::fs::write(path, sim::picture::svg(&title, &setup, &outcome)) {
            eprintln!("sim: writing {}: {err}", path.display());
            return ExitCode::FAILURE;
        }
        eprintln!("sim: picture of the run: {}", path.display());
    }
    if args.leechers_detail {
        for line in sim::scenario::leecher_lines(&outcome) {
            println!("{line}");
        }
    }
    println!("{}", sim::scenario::report(&args.scenario, &setup, &outcome));
    if outcome.last_done().is_none() { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
