//! The named scenarios (`just sim SCENARIO [N]`) and their one-line JSON report.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::net::Link;
use crate::swarm::{SwarmOutcome, SwarmSetup};

/// Megabits per second in bytes per second.
const fn mbit(n: u64) -> u64 {
    n * 1_000_000 / 8
}

/// The scenarios there are, and what each is.
pub const SCENARIOS: &[(&str, &str)] = &[
    ("flash-crowd", "N leechers and one seeder start together; everyone 20 Mbit/s up, 100 down"),
    (
        "loopback",
        "`just bench-swarm` on one machine: the seeder capped at 20 MB/s, the leechers unlimited, 0.1 ms away",
    ),
    ("churn", "flash-crowd where leechers leave once done, and half of them join late, evenly over the bound's time"),
    ("seeder-leaves", "flash-crowd where the seeder leaves once it has sent one copy"),
    ("liar", "flash-crowd where one leecher in 20 (at least one) sends wrong bytes in every block it uploads"),
    (
        "heterogeneous",
        "flash-crowd over a mix of links: a fifth fibre (100 up, 1000 down), half DSL (20/100), the rest mobile (2/20)",
    ),
];

/// What a scenario may be given.
#[derive(Debug, Clone)]
pub struct Options {
    pub leechers: usize,
    pub size: u64,
    pub piece_length: u32,
    pub seed: u64,
    pub max_peers: usize,
    pub window: usize,
    /// The seeder super-seeds (BEP 16), as `peer` does unless told not to.
    pub super_seed: bool,
    /// Random piece order instead of rarest first: the deliberately worse picker.
    pub random_pieces: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            leechers: 40,
            size: 200 << 20,
            piece_length: 256 << 10,
            seed: 1,
            max_peers: 50,
            window: 1 << 20,
            super_seed: true,
            random_pieces: false,
        }
    }
}

/// The setup of scenario `name`, if there is one.
#[must_use]
pub fn setup(name: &str, options: &Options) -> Option<SwarmSetup> {
    let mut rng = SmallRng::seed_from_u64(options.seed ^ 0x5eed);
    // Each host 5 to 40 ms from the core: paths of 10 to 80 ms one way.
    let mut delay = || Duration::from_millis(rng.random_range(5..=40));
    let equal = |delay: Duration| Link { up: Some(mbit(20)), down: Some(mbit(100)), delay };
    let mut seeder_limit = None;
    let (seeder, leecher_links) = match name {
        "flash-crowd" | "churn" | "seeder-leaves" | "liar" => {
            let seeder = equal(delay());
            let links: Vec<Link> = (0..options.leechers).map(|_| equal(delay())).collect();
            (seeder, links)
        }
        "loopback" => {
            let near = Duration::from_micros(50);
            // As `just bench-swarm`: the seeder's own limit, its link unlimited.
            seeder_limit = Some(20_000_000);
            let seeder = Link { up: None, down: None, delay: near };
            let links = vec![Link { up: None, down: None, delay: near }; options.leechers];
            (seeder, links)
        }
        "heterogeneous" => {
            let seeder = equal(delay());
            let links: Vec<Link> = (0..options.leechers)
                .map(|index| match index % 10 {
                    0 | 1 => Link { up: Some(mbit(100)), down: Some(mbit(1000)), delay: delay() },
                    2..=6 => equal(delay()),
                    _ => Link { up: Some(mbit(2)), down: Some(mbit(20)), delay: delay() },
                })
                .collect();
            (seeder, links)
        }
        _ => return None,
    };
    let mut setup = SwarmSetup {
        leechers: options.leechers,
        size: options.size,
        piece_length: options.piece_length,
        seeder,
        seeder_limit,
        leecher_links,
        super_seed: options.super_seed,
        max_peers: options.max_peers,
        numwant: 50,
        seed: options.seed,
        window: options.window,
        limit: Duration::ZERO,
        timeline: false,
        joins: Vec::new(),
        leave_when_done: false,
        seeder_leaves_after: None,
        random_pieces: options.random_pieces,
        liars: Vec::new(),
    };
    match name {
        "churn" => {
            // The first half from the start; the second one by one over the time the bound allows.
            let early = options.leechers.div_ceil(2);
            let late = (options.leechers - early).max(1) as u32;
            let bound = setup.bound();
            setup.joins = (0..options.leechers)
                .map(|index| if index < early { Duration::ZERO } else { bound * (index - early) as u32 / late })
                .collect();
            setup.leave_when_done = true;
        }
        "seeder-leaves" => setup.seeder_leaves_after = Some(1.0),
        "liar" => {
            let mut liars: Vec<usize> = (0..options.leechers).collect();
            liars.shuffle(&mut rng);
            liars.truncate((options.leechers / 20).max(1));
            liars.sort_unstable();
            setup.liars = liars;
        }
        _ => {}
    }
    // Ten times the bound, and at least a minute: a run that takes longer is a failure to report.
    setup.limit = (setup.bound() * 10).max(Duration::from_secs(60));
    Some(setup)
}

/// A line for each leecher: its index, when it was done, what came from the seeder and from other leechers,
/// what it sent, its connections at the end.
#[must_use]
pub fn leecher_lines(outcome: &SwarmOutcome) -> Vec<serde_json::Value> {
    outcome
        .leechers
        .iter()
        .enumerate()
        .map(|(index, leecher)| {
            serde_json::json!({
                "leecher": index + 1,
                "joined_s": (leecher.joined.as_secs_f64() * 1000.0).round() / 1000.0,
                "done_s": leecher.done.map(|done| (done.as_secs_f64() * 1000.0).round() / 1000.0),
                "from_seeder": leecher.from_seeder,
                "from_leechers": leecher.from_leechers,
                "uploaded": leecher.uploaded,
                "connections": leecher.connections,
                "lies": leecher.lies,
                "pieces_failed": leecher.pieces_failed,
                "banned": leecher.banned,
            })
        })
        .collect()
}

/// A line for each second of the run: when it ended, what the seeder and the leechers sent in it (bytes per
/// second), and how many leechers were done.
#[must_use]
pub fn timeline_lines(outcome: &SwarmOutcome) -> Vec<serde_json::Value> {
    outcome
        .timeline
        .iter()
        .map(|sample| {
            serde_json::json!({
                "t_s": sample.at.as_secs(),
                "seeder_bytes_per_s": sample.seeder_sent,
                "leechers_bytes_per_s": sample.leechers_sent,
                "finished": sample.finished,
                "leecher_uplink_p10_pct": sample.leecher_uplink_pct.map(|(p10, _)| p10),
                "leecher_uplink_median_pct": sample.leecher_uplink_pct.map(|(_, median)| median),
            })
        })
        .collect()
}

/// The report's one JSON line: `{"scenario", "leechers", "bound_s", "done_s", "ratio", "seeder_copies",
/// "duplicate_bytes", "seed"}` and the spread of the leechers' times; `done_s` and `ratio` are null when a
/// leecher did not finish.
#[must_use]
pub fn report(name: &str, setup: &SwarmSetup, outcome: &SwarmOutcome) -> serde_json::Value {
    let bound = outcome.bound.as_secs_f64();
    let done = outcome.last_done().map(|done| done.as_secs_f64());
    // The honest leechers' times: a liar's own download is not what the swarm is measured by.
    let honest_done = outcome.done.iter().zip(&outcome.leechers).filter(|(_, leecher)| !leecher.lies);
    let mut times: Vec<f64> = honest_done.filter_map(|(done, _)| *done).map(|done| done.as_secs_f64()).collect();
    times.sort_by(f64::total_cmp);
    let median = times.get(times.len() / 2).copied();
    let downloads: Vec<f64> = outcome
        .leechers
        .iter()
        .filter(|leecher| !leecher.lies)
        .filter_map(|leecher| leecher.done.map(|done| done.saturating_sub(leecher.joined).as_secs_f64()))
        .collect();
    let mean_download = (!downloads.is_empty()).then(|| downloads.iter().sum::<f64>() / downloads.len() as f64);
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    let mut report = serde_json::json!({
        "scenario": name,
        "leechers": setup.leechers,
        "size_bytes": setup.size,
        "bound_s": round(bound),
        "done_s": done.map(round),
        "ratio": done.map(|done| round(done / bound)),
        "median_s": median.map(round),
        "first_s": times.first().copied().map(round),
        "finished": times.len(),
        "mean_download_s": mean_download.map(round),
        "seeder_copies": round(outcome.seeder_copies()),
        "duplicate_bytes": outcome.duplicate_bytes,
        "seed": setup.seed,
    });
    if !setup.liars.is_empty() {
        let honest: Vec<(usize, &crate::swarm::LeecherOutcome)> =
            outcome.leechers.iter().enumerate().filter(|(_, leecher)| !leecher.lies).collect();
        let is_liar = |peer: usize| peer > 0 && setup.liars.contains(&(peer - 1));
        // For each liar, how many honest leechers banned it; and bans of honest peers, which must be none.
        let banned_by: Vec<usize> = setup
            .liars
            .iter()
            .map(|&liar| honest.iter().filter(|(_, leecher)| leecher.banned.contains(&(liar + 1))).count())
            .collect();
        let wrongly_banned: usize =
            honest.iter().map(|(_, leecher)| leecher.banned.iter().filter(|&&peer| !is_liar(peer)).count()).sum();
        let extra = serde_json::json!({
            "liars": setup.liars.len(),
            "pieces_failed": honest.iter().map(|(_, leecher)| leecher.pieces_failed).sum::<u64>(),
            // The seeder goes on serving the liars once everyone else has banned them; what the honest got of it:
            "seeder_copies_to_honest": round(
                honest.iter().map(|(_, leecher)| leecher.from_seeder).sum::<u64>() as f64 / setup.size as f64
            ),
            "liar_banned_by": banned_by,
            "honest_peers_banned": wrongly_banned,
        });
        if let (Some(report), serde_json::Value::Object(extra)) = (report.as_object_mut(), extra) {
            report.extend(extra);
        }
    }
    report
}
