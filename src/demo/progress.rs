//! What the demo knows about each peer (from its JSON events) and how it shows their progress: one bar per peer
//! on a terminal, a plain line a second otherwise.

use std::io::Write;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

/// A peer's final report: its `stopped` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    pub complete: bool,
    pub downloaded: u64,
    pub uploaded: u64,
}

/// One peer as its events describe it.
#[derive(Debug, Default, Clone)]
pub struct PeerState {
    pub label: String,
    pub address: Option<String>,
    pub have: u64,
    pub pieces: u64,
    pub downloaded: u64,
    pub uploaded: u64,
    pub download_rate: u64,
    pub upload_rate: u64,
    pub peers: u64,
    /// Status events seen (one a second).
    pub statuses: u64,
    /// Since the leechers started.
    pub complete_after: Option<Duration>,
    pub seeding: bool,
    pub stopped: Option<Stopped>,
    /// Its peer id (hex), as the others see it.
    pub peer_id: Option<String>,
    /// Each piece it verified: index, when (since the leechers started) and the peer ids that sent it.
    pub verified: Vec<(u32, Duration, Vec<String>)>,
    /// From its final report: what it downloaded from each peer, by peer id.
    pub received: Vec<(String, u64)>,
}

impl PeerState {
    pub fn new(label: &str) -> PeerState {
        PeerState { label: label.to_owned(), ..PeerState::default() }
    }

    /// Folds one event in; returns true if it shows download progress (a piece, or more bytes).
    pub fn apply(&mut self, event: &Value, elapsed: Duration) -> bool {
        let number = |key: &str| event[key].as_u64();
        match event["event"].as_str() {
            Some("listening") => {
                self.address = event["address"].as_str().map(str::to_owned);
                self.peer_id = event["peer_id"].as_str().map(str::to_owned);
            }
            Some("piece_verified") => {
                let from = event["from"].as_array().map_or_else(Vec::new, |from| {
                    from.iter().filter_map(|sender| sender["peer_id"].as_str().map(str::to_owned)).collect()
                });
                if let Some(piece) = number("piece").and_then(|piece| u32::try_from(piece).ok()) {
                    self.verified.push((piece, elapsed, from));
                }
                let had = self.have;
                self.have = number("have").unwrap_or(self.have);
                self.pieces = number("total").unwrap_or(self.pieces);
                return self.have > had;
            }
            Some("checked") => {
                let had = self.have;
                self.have = number("have").unwrap_or(self.have);
                self.pieces = number("total").unwrap_or(self.pieces);
                return self.have > had;
            }
            Some("status") => {
                self.statuses += 1;
                let before = self.downloaded;
                self.downloaded = number("downloaded").unwrap_or(self.downloaded);
                self.uploaded = number("uploaded").unwrap_or(self.uploaded);
                self.download_rate = number("download_rate").unwrap_or(0);
                self.upload_rate = number("upload_rate").unwrap_or(0);
                self.peers = number("peers").unwrap_or(self.peers);
                return self.downloaded > before;
            }
            Some("complete") => {
                self.have = self.pieces;
                self.complete_after.get_or_insert(elapsed);
            }
            Some("seeding") => self.seeding = true,
            Some("stopped") => {
                let stopped = Stopped {
                    complete: event["complete"].as_bool().unwrap_or(false),
                    downloaded: number("downloaded").unwrap_or(self.downloaded),
                    uploaded: number("uploaded").unwrap_or(self.uploaded),
                };
                self.downloaded = stopped.downloaded;
                self.uploaded = stopped.uploaded;
                self.stopped = Some(stopped);
                self.received = event["peers"].as_array().map_or_else(Vec::new, |peers| {
                    peers
                        .iter()
                        .filter_map(|peer| Some((peer["peer_id"].as_str()?.to_owned(), peer["downloaded"].as_u64()?)))
                        .filter(|(_, bytes)| *bytes > 0)
                        .collect()
                });
            }
            _ => {}
        }
        false
    }

    pub fn is_complete(&self) -> bool {
        self.complete_after.is_some()
    }

    /// Bytes verified so far, from the piece count (the last piece may be shorter).
    fn bytes_have(&self, total: u64, piece_length: u64) -> u64 {
        if self.pieces > 0 && self.have >= self.pieces { total } else { (self.have * piece_length).min(total) }
    }

    fn percent(&self) -> u64 {
        (self.have * 100).checked_div(self.pieces).unwrap_or(0)
    }

    /// The pieces it has, `cells` wide: each cell a group of pieces, `█` all verified, `▓` half or more, `░` some,
    /// `·` none. A peer that started complete (the seeder) is full.
    pub fn piece_map(&self, cells: usize) -> String {
        let pieces = usize::try_from(self.pieces).unwrap_or(0);
        if pieces == 0 {
            return "·".repeat(cells);
        }
        let mut have = vec![false; pieces];
        if self.verified.is_empty() && self.have >= self.pieces {
            have.fill(true);
        }
        for (piece, _, _) in &self.verified {
            if let Some(slot) = have.get_mut(*piece as usize) {
                *slot = true;
            }
        }
        let cells = cells.min(pieces).max(1);
        (0..cells)
            .map(|cell| {
                let group = &have[cell * pieces / cells..(cell + 1) * pieces / cells];
                let count = group.iter().filter(|&&has| has).count();
                match count {
                    0 => '·',
                    _ if count == group.len() => '█',
                    _ if 2 * count >= group.len() => '▓',
                    _ => '░',
                }
            })
            .collect()
    }

    /// Who sent its latest pieces, in the peers' names (`peers` gives the names), most recent first.
    fn sending_to_it(&self, peers: &[PeerState]) -> String {
        let mut names: Vec<&str> = Vec::new();
        for (_, _, from) in self.verified.iter().rev().take(8) {
            for peer_id in from {
                let name = peers.iter().find(|peer| peer.peer_id.as_deref() == Some(peer_id.as_str()));
                if let Some(name) = name.map(|peer| peer.label.as_str())
                    && !names.contains(&name)
                {
                    names.push(name);
                }
            }
        }
        names.join(", ")
    }
}

/// Cells in a piece map.
const MAP_CELLS: usize = 32;

/// Progress bars on a terminal, plain lines otherwise.
pub enum Progress {
    Bars { multi: MultiProgress, seeder: ProgressBar, leechers: Vec<ProgressBar> },
    Lines { next_line: Instant, started: Instant },
}

impl Progress {
    /// `peers[0]` is the seeder, the rest are leechers.
    pub fn new(terminal: bool, peers: &[PeerState], total: u64) -> Progress {
        if !terminal {
            let now = Instant::now();
            return Progress::Lines { next_line: now + Duration::from_secs(1), started: now };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let width = peers.iter().map(|peer| peer.label.len()).max().unwrap_or(0);
        let seeder_style =
            ProgressStyle::with_template("{prefix} {wide_msg}").unwrap_or_else(|_| ProgressStyle::default_spinner());
        let leecher_style =
            ProgressStyle::with_template("{prefix} {wide_msg}").unwrap_or_else(|_| ProgressStyle::default_bar());
        let prefix = |peer: &PeerState| format!("{:<width$}", peer.label);
        let seeder = multi.add(ProgressBar::new(total).with_style(seeder_style));
        if let Some(first) = peers.first() {
            seeder.set_prefix(prefix(first));
        }
        let leechers = peers
            .iter()
            .skip(1)
            .map(|peer| {
                let bar = multi.add(ProgressBar::new(total).with_style(leecher_style.clone()));
                bar.set_prefix(prefix(peer));
                bar
            })
            .collect();
        Progress::Bars { multi, seeder, leechers }
    }

    /// Shows the peers' current state (bars at once; a plain line at most once a second).
    pub fn update(&mut self, peers: &[PeerState], total: u64, piece_length: u64) {
        self.render(peers, total, piece_length, false);
    }

    fn render(&mut self, peers: &[PeerState], total: u64, piece_length: u64, stopped: bool) {
        match self {
            Progress::Bars { seeder, leechers, .. } => {
                if let Some(first) = peers.first() {
                    seeder.set_message(if stopped {
                        format!("sent {}", HumanBytes(first.uploaded))
                    } else {
                        format!(
                            "sent {} at {}/s, {} peers",
                            HumanBytes(first.uploaded),
                            HumanBytes(first.upload_rate),
                            first.peers
                        )
                    });
                }
                for (bar, peer) in leechers.iter().zip(peers.iter().skip(1)) {
                    bar.set_position(peer.bytes_have(total, piece_length));
                    let map = peer.piece_map(MAP_CELLS);
                    bar.set_message(match peer.complete_after {
                        Some(after) => {
                            format!("[{map}] done in {:.1} s, sent {}", after.as_secs_f64(), HumanBytes(peer.uploaded))
                        }
                        None => format!(
                            "[{map}] {:>3}% \u{2193} {}/s \u{2191} {}/s, from {}",
                            peer.percent(),
                            HumanBytes(peer.download_rate),
                            HumanBytes(peer.upload_rate),
                            peer.sending_to_it(peers)
                        ),
                    });
                }
            }
            Progress::Lines { next_line, started } => {
                if Instant::now() < *next_line {
                    return;
                }
                *next_line += Duration::from_secs(1);
                let mut line = format!("{:>5.1} s", started.elapsed().as_secs_f64());
                for peer in peers.iter().skip(1) {
                    line.push_str(&format!(" | {} {}%", peer.label, peer.percent()));
                }
                if let Some(first) = peers.first() {
                    line.push_str(&format!(" | {} uploaded {}", first.label, HumanBytes(first.uploaded)));
                }
                print_line(&line);
                let width = peers.iter().map(|peer| peer.label.len()).max().unwrap_or(0);
                for peer in peers.iter().skip(1) {
                    let from = peer.sending_to_it(peers);
                    let from = if from.is_empty() { String::new() } else { format!("  from {from}") };
                    print_line(&format!("        {:<width$} [{}]{from}", peer.label, peer.piece_map(MAP_CELLS)));
                }
            }
        }
    }

    /// Prints a message without breaking the bars.
    pub fn message(&self, text: &str) {
        match self {
            Progress::Bars { multi, .. } => {
                if multi.println(text).is_err() {
                    eprintln!("{text}");
                }
            }
            Progress::Lines { .. } => print_line(text),
        }
    }

    /// Leaves the bars at the peers' final state, before the summary.
    pub fn finish(&mut self, peers: &[PeerState], total: u64, piece_length: u64) {
        if let Progress::Bars { .. } = self {
            self.render(peers, total, piece_length, true);
        }
        if let Progress::Bars { seeder, leechers, .. } = self {
            for bar in std::iter::once(seeder).chain(leechers) {
                bar.finish();
            }
        }
    }
}

/// Prints a line on stdout at once (a pipe would otherwise hold it back).
pub fn print_line(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}");
    let _ = stdout.flush();
}
