//! What the demo shows of the trading itself: the tracker's journal in the peers' own names, who sent how much to
//! whom (a matrix), and afterwards a picture of the run: an SVG with time across, one row per peer, one mark per
//! piece each leecher verified, coloured by the peer that sent it, and the tracker's matches on a row of their own.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use indicatif::HumanBytes;
use tracker::server::JournalEntry;

use super::progress::PeerState;

/// Colours of the peers, in order (the seeder first); a swarm of more peers reuses them.
const PALETTE: [&str; 10] =
    ["#2f9e5b", "#3b6fd6", "#d9822b", "#b43fbf", "#c23b3b", "#1f9fa8", "#8a6d1f", "#5c5fd6", "#d64b8a", "#4f8f2f"];

/// The demo's names for peers: by listening address and by peer id.
pub struct Names {
    by_address: HashMap<String, String>,
    by_peer_id: HashMap<String, String>,
}

impl Names {
    pub fn new(states: &[PeerState]) -> Names {
        let mut names = Names { by_address: HashMap::new(), by_peer_id: HashMap::new() };
        for state in states {
            if let Some(address) = &state.address {
                names.by_address.insert(address.clone(), state.label.clone());
            }
            if let Some(peer_id) = &state.peer_id {
                names.by_peer_id.insert(peer_id.clone(), state.label.clone());
            }
        }
        names
    }

    /// Whether every address `entry` mentions has a name yet.
    pub fn knows_all(&self, entry: &JournalEntry) -> bool {
        std::iter::once(&entry.peer)
            .chain(&entry.given_seeders)
            .chain(&entry.given_leechers)
            .all(|address| self.by_address.contains_key(address))
    }

    fn address(&self, address: &str) -> String {
        self.by_address.get(address).cloned().unwrap_or_else(|| address.to_owned())
    }

    fn peer(&self, peer_id: &str) -> Option<&str> {
        self.by_peer_id.get(peer_id).map(String::as_str)
    }
}

/// A journal entry of the tracker, in the peers' names: `leecher 2 joined; given seeders: seeder, leecher 1`.
pub fn journal_line(entry: &JournalEntry, names: &Names) -> String {
    let who = names.address(&entry.peer);
    let mut line = match entry.kind {
        "join" => format!("{who} joined as a {}", entry.role),
        "finish" => format!("{who} finished: now a seeder"),
        "leave" => format!("{who} left"),
        _ => format!("{who} asked for peers"),
    };
    let list = |peers: &[String]| peers.iter().map(|peer| names.address(peer)).collect::<Vec<_>>().join(", ");
    if !entry.given_seeders.is_empty() {
        let _ = write!(line, "; given seeders: {}", list(&entry.given_seeders));
    }
    if !entry.given_leechers.is_empty() {
        let _ = write!(line, "; given leechers: {}", list(&entry.given_leechers));
    }
    if entry.given_seeders.is_empty() && entry.given_leechers.is_empty() && entry.kind == "join" {
        line.push_str("; nobody else yet");
    }
    line
}

/// Who sent how much to whom: a row per leecher (what it received), a column per peer (what it sent).
pub fn matrix(states: &[PeerState], names: &Names) -> Vec<String> {
    let width = states.iter().map(|state| state.label.len()).max().unwrap_or(0).max(8);
    let mut lines = vec![format!("who sent how much to whom (a row received what each column sent):")];
    let mut header = format!("{:<width$}", "");
    for state in states {
        let _ = write!(header, "  {:>12}", state.label);
    }
    header.push_str(&format!("  {:>12}", "total"));
    lines.push(header);
    for receiver in states.iter().skip(1) {
        let mut row = format!("{:<width$}", receiver.label);
        let mut sum = 0;
        for sender in states {
            let bytes: u64 = receiver
                .received
                .iter()
                .filter(|(peer_id, _)| names.peer(peer_id) == Some(sender.label.as_str()))
                .map(|(_, bytes)| bytes)
                .sum();
            sum += bytes;
            let cell = if sender.label == receiver.label { "-".to_owned() } else { HumanBytes(bytes).to_string() };
            let _ = write!(row, "  {cell:>12}");
        }
        let _ = write!(row, "  {:>12}", HumanBytes(sum).to_string());
        lines.push(row);
    }
    lines
}

/// The picture of the run, a self-contained SVG. `matches` are the tracker's journal entries with when the demo
/// saw them (since the leechers started).
pub fn svg(states: &[PeerState], names: &Names, matches: &[(Duration, String)], title: &str) -> String {
    const WIDTH: f64 = 1000.0;
    const LEFT: f64 = 120.0;
    const RIGHT: f64 = 30.0;
    const TOP: f64 = 50.0;
    const ROW: f64 = 34.0;
    let end = states
        .iter()
        .flat_map(|state| state.verified.iter().map(|(_, at, _)| *at))
        .chain(matches.iter().map(|(at, _)| *at))
        .max()
        .unwrap_or_default()
        .max(Duration::from_millis(100))
        .as_secs_f64();
    let x = |at: Duration| LEFT + (WIDTH - LEFT - RIGHT) * at.as_secs_f64() / end;
    let colour = |label: &str| {
        states.iter().position(|state| state.label == label).map_or("#9aa0ad", |index| PALETTE[index % PALETTE.len()])
    };
    let rows = states.len() + 1;
    let legend_top = TOP + ROW * rows as f64 + 40.0;
    let height = legend_top + 20.0 + 22.0 * states.len().div_ceil(4) as f64 + 10.0;

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="13">"#
    );
    let _ = write!(svg, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = write!(
        svg,
        r##"<text x="{LEFT}" y="24" font-size="15" font-weight="bold">{}</text><text x="{LEFT}" y="40" fill="#6b7386">each mark is a piece verified, coloured by the peer that sent it; time since the leechers started</text>"##,
        escape(title)
    );
    // The tracker's row: one tick per journal entry, its words in a tooltip.
    let top = TOP;
    let _ = write!(svg, r##"<g class="row tracker"><text x="10" y="{}">tracker</text>"##, top + 20.0);
    for (at, text) in matches {
        let _ = write!(
            svg,
            r##"<path class="match" d="M{x:.1} {y0:.1} l-5 -10 h10 z" fill="#1d2330"><title>{}</title></path>"##,
            escape(text),
            x = x(*at),
            y0 = top + 24.0
        );
    }
    svg.push_str("</g>");
    for (index, state) in states.iter().enumerate() {
        let y = TOP + ROW * (index + 1) as f64;
        let _ = write!(
            svg,
            r##"<g class="row" data-peer="{label}"><line x1="{LEFT}" x2="{x2}" y1="{mid}" y2="{mid}" stroke="#e3e6ee"/><text x="10" y="{text}">{label}</text>"##,
            label = escape(&state.label),
            x2 = WIDTH - RIGHT,
            mid = y + 14.0,
            text = y + 18.0
        );
        if index == 0 && state.verified.is_empty() {
            let _ = write!(
                svg,
                r##"<rect x="{LEFT}" y="{y0}" width="{w}" height="8" fill="{c}" opacity="0.35"/><text x="{tx}" y="{ty}" fill="#6b7386" font-size="11">had every piece from the start</text>"##,
                y0 = y + 10.0,
                w = WIDTH - LEFT - RIGHT,
                c = colour(&state.label),
                tx = LEFT + 6.0,
                ty = y + 8.0
            );
        }
        for (piece, at, from) in &state.verified {
            let sender = from.first().and_then(|peer_id| names.peer(peer_id)).unwrap_or("another peer");
            let _ = write!(
                svg,
                r#"<rect class="piece" x="{:.1}" y="{:.1}" width="3" height="20" fill="{}"><title>piece {piece} from {}</title></rect>"#,
                x(*at) - 1.5,
                y + 4.0,
                colour(sender),
                escape(sender)
            );
        }
        svg.push_str("</g>");
    }
    // Time axis: a tick a second (or fewer for long runs).
    let axis = TOP + ROW * rows as f64 + 6.0;
    let step = (end / 10.0).ceil().max(1.0);
    let _ = write!(svg, r##"<line x1="{LEFT}" x2="{}" y1="{axis}" y2="{axis}" stroke="#6b7386"/>"##, WIDTH - RIGHT);
    let mut second = 0.0;
    while second <= end + 1e-9 {
        let tx = x(Duration::from_secs_f64(second));
        let _ = write!(
            svg,
            r##"<line x1="{tx:.1}" x2="{tx:.1}" y1="{axis}" y2="{}" stroke="#6b7386"/><text x="{tx:.1}" y="{}" text-anchor="middle" fill="#6b7386">{second} s</text>"##,
            axis + 5.0,
            axis + 19.0
        );
        second += step;
    }
    // Legend.
    for (index, state) in states.iter().enumerate() {
        let lx = LEFT + 200.0 * (index % 4) as f64;
        let ly = legend_top + 22.0 * (index / 4) as f64;
        let _ = write!(
            svg,
            r#"<g class="legend"><rect x="{lx}" y="{ly}" width="14" height="14" fill="{}"/><text x="{}" y="{}">sent by {}</text></g>"#,
            colour(&state.label),
            lx + 20.0,
            ly + 12.0,
            escape(&state.label)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
