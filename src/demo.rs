//! `demo [LEECHERS] [PATH]`: a whole swarm on this machine. Makes a torrent of PATH with our mktorrent, serves it
//! with our tracker, starts one seeder and LEECHERS leechers (our `peer` program) on loopback, shows their
//! progress, checks every copy byte for byte against the original, prints who sent how much, and stops
//! everything it started.
//!
//! The peers are separate processes: the demo's own executable, started again with the hidden first argument
//! [`PEER_ROLE`], runs the very `peer` program (`crate::peer::main`). So `cargo run --bin demo` needs no other
//! binary built, an installed `demo` needs none beside it, and the peers can never be an older build than the
//! demo. mktorrent and the tracker run inside the demo (the same code the `mktorrent` and `tracker` programs call).

mod compare;
mod picture;
mod processes;
mod progress;

use std::ffi::OsString;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use indicatif::HumanBytes;
use serde_json::Value;

pub use processes::PEER_ROLE;
use processes::{Output, PeerProcess, TrackerThread};
use progress::{PeerState, Progress, print_line};

use crate::cli;
use crate::mktorrent::read_torrent;

/// Run a BitTorrent swarm on this machine: our tracker, one seeder and LEECHERS leechers on loopback.
///
/// Makes a torrent of PATH, seeds PATH as it is (read-only), downloads it into a temporary folder per leecher,
/// checks every copy byte for byte against the original and prints what each peer downloaded and uploaded.
/// The seeder's upload rate is capped so that it alone would need about 6 s, so the leechers trade pieces among
/// themselves. Exit status 0 only if every copy is identical to the original. Ctrl-C stops everything.
#[derive(Debug, Parser)]
#[command(name = "demo", version, max_term_width = 100)]
#[command(
    after_help = "`demo --generate man|complete-bash|complete-zsh|complete-fish` prints its man page or a completion script."
)]
pub struct Args {
    /// Leechers to start (1 to 50).
    #[arg(value_name = "LEECHERS", default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=50))]
    pub leechers: u16,

    /// File or folder to share. [default: the built-in sample spiderman.txt (4.2 KiB), written into the temporary
    /// folder with 2 MiB of generated data beside it, so that there are dozens of pieces to trade]
    #[arg(value_name = "PATH")]
    pub path: Option<PathBuf>,

    /// Where to write the picture of the run (SVG: one row per peer, each verified piece coloured by its sender).
    /// [default: bittorrent-demo.svg in the system's temporary folder]
    #[arg(long, value_name = "FILE")]
    pub picture: Option<PathBuf>,
}

/// Generated data added to the default sample, so the swarm has dozens of pieces to trade.
const GENERATED_BYTES: usize = 2 << 20;

/// The seeder's upload cap makes it need this long to send every leecher a copy by itself.
const SEEDER_ALONE_SECONDS: u64 = 6;
/// Give up when no leecher has made progress for this long (or the seeder is silent this long at start).
const STALL: Duration = Duration::from_secs(30);
/// How long peers get to stop cleanly before they are killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the seeder gets to exit after SIGINT, once the leechers are gone.
const SEEDER_GRACE: Duration = Duration::from_millis(1500);
const POLL: Duration = Duration::from_millis(100);

/// Runs `demo` with the given command line; in the peer role, runs `peer` instead.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let mut args: Vec<OsString> = args.into_iter().collect();
    if args.get(1).is_some_and(|arg| arg == PEER_ROLE) {
        args.remove(1);
        return crate::peer::main(args);
    }
    let args = Args::parse_from(args);
    cli::finish("demo", run(&args))
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let interrupted = cli::shutdown_flag()?;
    let work = tempfile::Builder::new().prefix("bittorrent-demo-").tempdir().context("making a temporary folder")?;
    let given = match &args.path {
        Some(path) => path.clone(),
        None => default_share(work.path())?,
    };
    let original = std::fs::canonicalize(&given).with_context(|| format!("reading {}", given.display()))?;
    let seed_dir = original.parent().with_context(|| format!("{} has no parent folder", original.display()))?;

    // The tracker's socket comes first: its port goes into the torrent's announce URL.
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).context("binding the tracker's UDP socket")?;
    let tracker_addr = socket.local_addr().context("reading the tracker's address")?;
    let torrent_path = work.path().join(torrent_file_name(&original));
    make_torrent(&original, &format!("udp://{tracker_addr}/announce"), &torrent_path)?;
    let (torrent, _) = read_torrent(&torrent_path)?;
    let info = &torrent.info;
    let total = info.total_length();
    print_line(&format!(
        "mktorrent: {} ({}, {}, {} {}, {} {} of {}), info-hash {}",
        torrent_path.display(),
        info.name,
        HumanBytes(total),
        info.files.len(),
        plural(info.files.len(), "file", "files"),
        info.piece_count(),
        plural(info.piece_count(), "piece", "pieces"),
        HumanBytes(info.piece_length),
        torrent.info_hash
    ));
    let tracker = TrackerThread::start(socket, &torrent, &torrent_path)?;
    print_line(&format!("tracker: listening on {tracker_addr}"));

    let leechers = usize::from(args.leechers);
    let mut swarm = DemoSwarm::new(&torrent_path);
    let upload_limit = (leechers > 1).then(|| (leechers as u64 * total).div_ceil(SEEDER_ALONE_SECONDS).max(1));
    swarm.start_seeder(seed_dir, upload_limit)?;
    match swarm.wait_until_seeding(&interrupted, &original)? {
        Waited::Ready => {}
        Waited::Interrupted => return Ok(interrupted_exit(swarm, tracker, work.path())),
    }
    let seeder = &swarm.states[0];
    print_line(&format!(
        "seeder: listening on {}, seeding {}{}",
        seeder.address.as_deref().unwrap_or("?"),
        original.display(),
        upload_limit.map_or_else(String::new, |limit| format!(
            ", upload limited to {}/s ({SEEDER_ALONE_SECONDS} s for {leechers} copies alone)",
            HumanBytes(limit)
        ))
    ));

    for number in 1..=leechers {
        let dir = work.path().join(format!("leecher-{number}"));
        swarm.start_leecher(number, &dir)?;
    }
    print_line(&format!(
        "{leechers} {} downloading into {}",
        plural(leechers, "leecher", "leechers"),
        work.path().display()
    ));
    let mut progress = Progress::new(cli::stderr_is_terminal(), &swarm.states, total);
    let finish = swarm.run_until_complete(&mut progress, &interrupted, info.piece_length, total, &tracker.view);
    let elapsed = swarm.leechers_started.elapsed();
    let stopping = swarm.stop_all();
    // The departures: each peer said `stopped` to the tracker on its way out.
    swarm.show_journal(&tracker.view, &progress);
    progress.finish(&swarm.states, total, info.piece_length);
    let tracker_stats = tracker.stop();
    match finish {
        Finish::Complete => {}
        Finish::Interrupted => {
            print_line(&format!("interrupted: stopped the tracker and every peer; removing {}", work.path().display()));
            return Ok(ExitCode::from(130));
        }
        Finish::Failed(reason) => bail!("{reason}"),
    }

    // Every copy, byte for byte.
    let mut identical = 0;
    let mut verdicts = vec!["(the original)".to_owned()];
    for number in 1..=leechers {
        let problems = compare::copy_differences(info, &original, &work.path().join(format!("leecher-{number}")));
        if problems.is_empty() {
            identical += 1;
            verdicts.push("identical".into());
        } else {
            verdicts.push("DIFFERENT".into());
            for problem in problems {
                print_line(&format!("leecher {number}: {problem}"));
            }
        }
    }
    print_summary(&swarm.states, &verdicts, &stopping, total, elapsed);
    let names = picture::Names::new(&swarm.states);
    for line in picture::matrix(&swarm.states, &names) {
        print_line(&line);
    }
    let picture_path = args.picture.clone().unwrap_or_else(|| std::env::temp_dir().join("bittorrent-demo.svg"));
    let title = format!("{}: a seeder and {leechers} {}", info.name, plural(leechers, "leecher", "leechers"));
    let drawing = picture::svg(&swarm.states, &names, &swarm.matches, &title);
    match std::fs::write(&picture_path, drawing) {
        Ok(()) => print_line(&format!("picture of the run: {}", picture_path.display())),
        Err(err) => print_line(&format!("could not write the picture {}: {err}", picture_path.display())),
    }
    let announces = tracker_stats.map_or(0, |stats| stats.announces);
    if identical == leechers {
        print_line(&format!(
            "every copy verified: {identical} of {leechers} identical to the original, byte for byte ({})",
            original.display()
        ));
    } else {
        print_line(&format!("FAILED: only {identical} of {leechers} copies are identical to the original"));
    }
    print_line(&format!(
        "done in {:.1} s ({announces} announces to the tracker); removing {}",
        started.elapsed().as_secs_f64(),
        work.path().display()
    ));
    Ok(if identical == leechers { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The default share's sample, built into the binary so that an installed `demo` runs from any folder (a path
/// into the source tree would not exist there).
const SAMPLE: &[u8] = include_bytes!("../sample-data/spiderman.txt");
const SAMPLE_NAME: &str = "spiderman.txt";

/// The default share: the sample file and generated data (the same bytes every run) in a folder of `work`.
fn default_share(work: &Path) -> anyhow::Result<PathBuf> {
    let folder = work.join("spiderman-demo");
    std::fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
    let sample = folder.join(SAMPLE_NAME);
    std::fs::write(&sample, SAMPLE).with_context(|| format!("writing {}", sample.display()))?;
    // xorshift64: deterministic, and incompressible enough to look like real data.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut data = Vec::with_capacity(GENERATED_BYTES);
    while data.len() < GENERATED_BYTES {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        data.extend_from_slice(&state.to_le_bytes());
    }
    std::fs::write(folder.join("generated.bin"), &data).context("writing the generated data")?;
    print_line(&format!(
        "sharing the built-in sample {SAMPLE_NAME} ({}) plus {} of generated data (the sample alone is one piece: \
         nothing to trade)",
        HumanBytes(SAMPLE.len() as u64),
        HumanBytes(GENERATED_BYTES as u64)
    ));
    Ok(folder)
}

/// Makes the torrent with our mktorrent (in-process, the same code as the program): no creation date, quiet.
fn make_torrent(original: &Path, announce: &str, output: &Path) -> anyhow::Result<()> {
    let argv: [OsString; 9] = [
        "mktorrent".into(),
        "-q".into(),
        "-f".into(),
        "-d".into(),
        "-a".into(),
        announce.into(),
        "-o".into(),
        output.into(),
        original.into(),
    ];
    let args = crate::mktorrent::Args::try_parse_from(argv).context("mktorrent arguments")?;
    crate::mktorrent::run(&args).with_context(|| format!("making a torrent of {}", original.display()))?;
    Ok(())
}

/// `spiderman.txt` -> `spiderman.torrent`, as mktorrent names it.
fn torrent_file_name(original: &Path) -> OsString {
    let mut name = original.file_stem().map_or_else(|| OsString::from("demo"), ToOwned::to_owned);
    name.push(".torrent");
    name
}

fn plural<'a>(count: usize, one: &'a str, many: &'a str) -> &'a str {
    if count == 1 { one } else { many }
}

fn interrupted_exit(swarm: DemoSwarm, tracker: TrackerThread, work: &Path) -> ExitCode {
    drop(swarm);
    drop(tracker);
    print_line(&format!("interrupted: stopped the tracker and every peer; removing {}", work.display()));
    ExitCode::from(130)
}

/// Who sent what: one row per peer, then what it shows about trading.
fn print_summary(states: &[PeerState], verdicts: &[String], stopping: &Stopping, total: u64, elapsed: Duration) {
    let leechers = states.len().saturating_sub(1);
    let who = if leechers == 1 { "the leecher is".to_owned() } else { format!("all {leechers} leechers are") };
    print_line(&format!("{who} complete after {:.1} s", elapsed.as_secs_f64()));
    let width = states.iter().map(|state| state.label.len()).max().unwrap_or(0);
    print_line(&format!("{:<width$}  {:>12}  {:>12}  {:>14}  copy", "", "downloaded", "uploaded", "complete after"));
    for (index, state) in states.iter().enumerate() {
        let after =
            state.complete_after.map_or_else(|| "-".to_owned(), |after| format!("{:.1} s", after.as_secs_f64()));
        let verdict = verdicts.get(index).map_or("", String::as_str);
        let exit = match stopping.statuses.get(index) {
            _ if index == 0 && stopping.seeder_killed => String::new(),
            Some(Some(status)) if status.success() => String::new(),
            Some(Some(status)) => format!(" (exited with {status})"),
            _ => " (killed)".to_owned(),
        };
        print_line(&format!(
            "{:<width$}  {:>12}  {:>12}  {:>14}  {verdict}{exit}",
            state.label,
            HumanBytes(state.downloaded).to_string(),
            HumanBytes(state.uploaded).to_string(),
            after,
        ));
    }
    if stopping.seeder_killed {
        print_line(&format!(
            "note: the seeder was still busy {:.1} s after SIGINT (uploads queued under its limit), so it was killed",
            SEEDER_GRACE.as_secs_f64()
        ));
    }
    let traded: u64 = states.iter().skip(1).map(|state| state.uploaded).sum();
    let seeder_sent = states.first().map_or(0, |state| state.uploaded);
    let received: u64 = states.iter().map(|state| state.downloaded).sum();
    let duplicates = (traded + seeder_sent).saturating_sub(received);
    let copies = if total == 0 { 0.0 } else { seeder_sent as f64 / total as f64 };
    if traded > 0 {
        print_line(&format!(
            "the leechers traded: they sent each other {}; the seeder sent {} ({copies:.1} of the {leechers} copies)",
            HumanBytes(traded),
            HumanBytes(seeder_sent)
        ));
        if duplicates > 0 {
            print_line(&format!(
                "({} of the bytes sent were duplicates: near the end a block is asked of several peers, and only its \
                 first copy counts as downloaded)",
                HumanBytes(duplicates)
            ));
        }
    } else if leechers > 1 {
        print_line(&format!(
            "the leechers did not trade: the seeder sent all {} ({copies:.1} of the {leechers} copies)",
            HumanBytes(seeder_sent)
        ));
    }
}

/// How a swarm run ended.
enum Finish {
    Complete,
    Interrupted,
    Failed(String),
}

enum Waited {
    Ready,
    Interrupted,
}

/// The peers the demo started (index 0 is the seeder) and what their events say.
struct DemoSwarm {
    torrent: PathBuf,
    processes: Vec<PeerProcess>,
    states: Vec<PeerState>,
    closed: Vec<bool>,
    sender: Sender<(usize, Output)>,
    events: Receiver<(usize, Output)>,
    leechers_started: Instant,
    /// The tracker's journal as the demo saw it, in the peers' names, with when (since the leechers started).
    matches: Vec<(Duration, String)>,
    journal_seen: u64,
    /// Since when the next journal entry has waited for a peer's name.
    journal_waiting: Option<Instant>,
}

/// What one poll of the peers' output brought.
enum Step {
    /// An event: its index, kind, and whether it showed download progress.
    Event(usize, String, bool),
    Closed(usize),
    Idle,
}

impl DemoSwarm {
    fn new(torrent: &Path) -> DemoSwarm {
        let (sender, events) = channel();
        DemoSwarm {
            torrent: torrent.to_owned(),
            processes: Vec::new(),
            states: Vec::new(),
            closed: Vec::new(),
            sender,
            events,
            leechers_started: Instant::now(),
            matches: Vec::new(),
            journal_seen: 0,
            journal_waiting: None,
        }
    }

    fn start(&mut self, label: &str, dir: &Path, upload_limit: Option<u64>) -> anyhow::Result<()> {
        let mut args: Vec<OsString> = vec![
            "0".into(),
            self.torrent.clone().into(),
            "--dir".into(),
            dir.into(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--json".into(),
            // Every peer of the demo shares 127.0.0.1.
            "--max-peers-per-ip".into(),
            "1000".into(),
        ];
        if let Some(limit) = upload_limit {
            args.extend(["--upload-limit".into(), limit.to_string().into()]);
        }
        let index = self.processes.len();
        self.processes.push(PeerProcess::spawn(index, label, &args, self.sender.clone())?);
        self.states.push(PeerState::new(label));
        self.closed.push(false);
        Ok(())
    }

    fn start_seeder(&mut self, dir: &Path, upload_limit: Option<u64>) -> anyhow::Result<()> {
        self.start("seeder", dir, upload_limit)
    }

    fn start_leecher(&mut self, number: usize, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        if number == 1 {
            self.leechers_started = Instant::now();
        }
        self.start(&format!("leecher {number}"), dir, None)
    }

    fn poll(&mut self) -> Step {
        match self.events.recv_timeout(POLL) {
            Ok((index, Output::Line(line))) => {
                let Ok(event) = serde_json::from_str::<Value>(&line) else { return Step::Idle };
                let Some(state) = self.states.get_mut(index) else { return Step::Idle };
                let progress = state.apply(&event, self.leechers_started.elapsed());
                Step::Event(index, event["event"].as_str().unwrap_or_default().to_owned(), progress)
            }
            Ok((index, Output::Closed)) => {
                if let Some(closed) = self.closed.get_mut(index) {
                    *closed = true;
                }
                Step::Closed(index)
            }
            Err(_) => Step::Idle,
        }
    }

    /// Why peer `index` stopped on its own: waits for it, then quotes its stderr.
    fn exited(&mut self, index: usize) -> String {
        let Some(process) = self.processes.get_mut(index) else { return String::new() };
        let status = process.wait_or_kill(Duration::from_secs(2));
        let status = status.map_or_else(|| "unknown status".to_owned(), |status| status.to_string());
        format!(
            "{} (pid {}) exited unexpectedly ({status}); its last lines:\n{}",
            process.label,
            process.pid(),
            process.stderr_tail()
        )
    }

    /// Waits for the seeder to check its data and report `seeding`.
    fn wait_until_seeding(&mut self, interrupted: &AtomicBool, original: &Path) -> anyhow::Result<Waited> {
        let mut last_event = Instant::now();
        loop {
            if interrupted.load(Ordering::Relaxed) {
                return Ok(Waited::Interrupted);
            }
            match self.poll() {
                Step::Event(_, kind, _) => {
                    last_event = Instant::now();
                    let seeder = &self.states[0];
                    if kind == "checked" && seeder.have < seeder.pieces {
                        bail!(
                            "the seeder found only {} of {} pieces of {} intact: did it change?",
                            seeder.have,
                            seeder.pieces,
                            original.display()
                        );
                    }
                    if kind == "seeding" {
                        return Ok(Waited::Ready);
                    }
                }
                Step::Closed(index) => bail!("{}", self.exited(index)),
                Step::Idle if last_event.elapsed() > STALL => {
                    bail!(
                        "the seeder said nothing for {} s; its last lines:\n{}",
                        STALL.as_secs(),
                        self.processes[0].stderr_tail()
                    )
                }
                Step::Idle => {}
            }
        }
    }

    /// Shows progress until every leecher is complete, a peer dies, nothing moves for a while, or Ctrl-C.
    fn run_until_complete(
        &mut self,
        progress: &mut Progress,
        interrupted: &AtomicBool,
        piece_length: u64,
        total: u64,
        tracker: &tracker::server::Tracker,
    ) -> Finish {
        let mut last_progress = Instant::now();
        let finish = loop {
            if interrupted.load(Ordering::Relaxed) {
                break Finish::Interrupted;
            }
            self.show_journal(tracker, progress);
            match self.poll() {
                Step::Event(index, kind, moved) => {
                    if moved {
                        last_progress = Instant::now();
                    }
                    let state = &self.states[index];
                    match kind.as_str() {
                        "listening" => progress.message(&format!(
                            "{}: listening on {}",
                            state.label,
                            state.address.as_deref().unwrap_or("?")
                        )),
                        "complete" if index > 0 => progress.message(&format!(
                            "{}: complete after {:.1} s, every piece verified",
                            state.label,
                            state.complete_after.unwrap_or_default().as_secs_f64()
                        )),
                        _ => {}
                    }
                }
                Step::Closed(index) => break Finish::Failed(self.exited(index)),
                Step::Idle => {}
            }
            progress.update(&self.states, total, piece_length);
            if self.states.iter().skip(1).all(PeerState::is_complete) {
                break Finish::Complete;
            }
            if last_progress.elapsed() > STALL {
                break Finish::Failed(format!("no leecher made progress for {} s", STALL.as_secs()));
            }
        };
        self.show_journal(tracker, progress);
        progress.update(&self.states, total, piece_length);
        finish
    }

    /// Prints what the tracker did since the last look, in the peers' names, and keeps it for the picture.
    fn show_journal(&mut self, tracker: &tracker::server::Tracker, progress: &Progress) {
        let entries = tracker.journal_since(self.journal_seen);
        if entries.is_empty() {
            return;
        }
        let names = picture::Names::new(&self.states);
        for entry in entries {
            // A peer's `listening` event can come a moment after the tracker heard of it: wait for its name, a
            // second at most.
            if !names.knows_all(&entry) {
                let waiting = *self.journal_waiting.get_or_insert_with(Instant::now);
                if waiting.elapsed() < Duration::from_secs(1) {
                    return;
                }
            }
            self.journal_waiting = None;
            self.journal_seen = entry.seq;
            let line = picture::journal_line(&entry, &names);
            progress.message(&format!("tracker: {line}"));
            self.matches.push((self.leechers_started.elapsed(), line));
        }
    }

    /// Stops every peer as Ctrl-C would and collects their final reports; returns their exit statuses.
    ///
    /// Leechers go first. A seeder that has not exited [`SEEDER_GRACE`] after SIGINT is killed, its totals taken
    /// from its last status (sent once a second, also while it stops): a rate-limited `peer` sleeps off the
    /// uploads it had queued before it exits, several seconds when one block is worth seconds of its limit.
    fn stop_all(&mut self) -> Stopping {
        for process in self.processes.iter_mut().skip(1) {
            process.interrupt();
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        self.poll_until(deadline, |swarm| swarm.closed.iter().skip(1).all(|closed| *closed));
        let mut seeder_killed = false;
        if let Some(seeder) = self.processes.first_mut() {
            seeder.interrupt();
            self.poll_until(Instant::now() + SEEDER_GRACE, |swarm| swarm.closed.first().is_none_or(|closed| *closed));
            seeder_killed = !self.closed.first().is_none_or(|closed| *closed);
        }
        let mut statuses = Vec::new();
        for (index, process) in self.processes.iter_mut().enumerate() {
            let wait = if index == 0 { Duration::ZERO } else { deadline.saturating_duration_since(Instant::now()) };
            statuses.push(process.wait_or_kill(wait));
        }
        // Lines still queued (a report printed just before exit).
        while let Ok((index, output)) = self.events.try_recv() {
            if let (Output::Line(line), Some(state)) = (output, self.states.get_mut(index))
                && let Ok(event) = serde_json::from_str::<Value>(&line)
            {
                state.apply(&event, self.leechers_started.elapsed());
            }
        }
        Stopping { statuses, seeder_killed }
    }

    fn poll_until(&mut self, deadline: Instant, done: impl Fn(&DemoSwarm) -> bool) {
        while !done(self) && Instant::now() < deadline {
            self.poll();
        }
    }
}

/// How the peers stopped.
struct Stopping {
    statuses: Vec<Option<std::process::ExitStatus>>,
    /// The seeder was still busy after SIGINT and was killed (its totals come from its last status).
    seeder_killed: bool,
}

#[cfg(test)]
mod tests {
    use super::torrent_file_name;
    use std::path::Path;

    #[test]
    fn torrents_are_named_after_the_data() {
        assert_eq!(torrent_file_name(Path::new("/a/spiderman.txt")), "spiderman.torrent");
        assert_eq!(torrent_file_name(Path::new("/a/movies")), "movies.torrent");
    }
}
