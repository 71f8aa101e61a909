//! A run as a picture (`sim --picture FILE.svg`), in the demo's style: a self-contained SVG with the leechers done
//! over time against the lower bound, what the seeder and the leechers sent each second against what their
//! uplinks could carry, and for a swarm of at most [`MATRIX_MAX`] leechers who sent how much to whom.

use std::fmt::Write as _;
use std::time::Duration;

use crate::swarm::{SwarmOutcome, SwarmSetup};

/// Leechers up to which the who-sent-whom matrix is drawn (a cell each pair: past this it is a grey blur).
pub const MATRIX_MAX: usize = 100;

const WIDTH: f64 = 1000.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const PLOT: f64 = 240.0;
const INK: &str = "#1d2330";
const MUTED: &str = "#6b7386";
const SEEDER: &str = "#2f9e5b";
const LEECHERS: &str = "#3b6fd6";
const LIAR: &str = "#c23b3b";

/// The picture of `outcome`, titled `title`. The upload panel needs the timeline ([`SwarmSetup::timeline`]); the
/// matrix needs [`SwarmOutcome::pairs`].
#[must_use]
pub fn svg(title: &str, setup: &SwarmSetup, outcome: &SwarmOutcome) -> String {
    let mut done: Vec<Duration> =
        outcome.done.iter().zip(&outcome.leechers).filter(|(_, l)| !l.lies).filter_map(|(d, _)| *d).collect();
    done.sort_unstable();
    let honest = outcome.leechers.iter().filter(|leecher| !leecher.lies).count();
    let last_sample = outcome.timeline.last().map(|sample| sample.at).unwrap_or_default();
    let end = done.last().copied().unwrap_or_default().max(outcome.bound).max(last_sample).as_secs_f64() * 1.05;
    let end = end.max(1.0);
    let x = |seconds: f64| LEFT + (WIDTH - LEFT - RIGHT) * seconds / end;
    let matrix_rows = if outcome.pairs.is_empty() { 0 } else { setup.leechers + 1 };
    let cell = if matrix_rows == 0 { 0.0 } else { (400.0 / matrix_rows as f64).clamp(3.0, 24.0) };
    let matrix_top = 70.0 + 2.0 * (PLOT + 70.0);
    let height = matrix_top + if matrix_rows == 0 { 10.0 } else { 50.0 + cell * matrix_rows as f64 + 40.0 };

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}" font-family="sans-serif" font-size="13">"#
    );
    let _ = write!(svg, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let ratio = outcome.last_done().map_or_else(
        || "not every leecher finished".to_owned(),
        |last| format!("last done at {:.2}× the bound", last.as_secs_f64() / outcome.bound.as_secs_f64().max(1e-9)),
    );
    let _ = write!(
        svg,
        r##"<text x="{LEFT}" y="24" font-size="15" font-weight="bold" fill="{INK}">{}</text><text x="{LEFT}" y="42" fill="{MUTED}">{honest} leechers, {}; the seeder sent {:.2} copies</text>"##,
        escape(title),
        escape(&ratio),
        outcome.seeder_copies()
    );

    // 1: leechers done over time, and the bound.
    let top = 70.0;
    axes(&mut svg, top, end, &x, "leechers done", honest.max(1) as f64, "");
    let y = |count: f64| top + PLOT - PLOT * count / honest.max(1) as f64;
    let mut points = format!("{:.1},{:.1}", x(0.0), y(0.0));
    for (count, at) in done.iter().enumerate() {
        let at = at.as_secs_f64();
        let _ = write!(points, " {:.1},{:.1} {:.1},{:.1}", x(at), y(count as f64), x(at), y((count + 1) as f64));
    }
    let _ =
        write!(svg, r#"<polyline class="done" points="{points}" fill="none" stroke="{LEECHERS}" stroke-width="2"/>"#);
    let bound = x(outcome.bound.as_secs_f64());
    let _ = write!(
        svg,
        r#"<line class="bound" x1="{bound:.1}" x2="{bound:.1}" y1="{top}" y2="{}" stroke="{INK}" stroke-dasharray="5 4"/><text x="{:.1}" y="{}" fill="{INK}">bound {:.1} s</text>"#,
        top + PLOT,
        bound + 4.0,
        top + 14.0,
        outcome.bound.as_secs_f64()
    );

    // 2: what the seeder and the leechers sent each second, against the leechers' uplinks together.
    let top = top + PLOT + 70.0;
    let capacity: Option<u64> = setup.leecher_links.iter().map(|link| link.up).sum();
    let peak = outcome
        .timeline
        .iter()
        .map(|sample| sample.seeder_sent.max(sample.leechers_sent))
        .chain(capacity)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    axes(&mut svg, top, end, &x, "bytes sent per second", peak, "B/s");
    let y = |bytes: f64| top + PLOT - PLOT * bytes / peak;
    if let Some(capacity) = capacity {
        let level = y(capacity as f64);
        let _ = write!(
            svg,
            r#"<line class="capacity" x1="{LEFT}" x2="{:.1}" y1="{level:.1}" y2="{level:.1}" stroke="{LEECHERS}" stroke-dasharray="2 3"/><text x="{:.1}" y="{:.1}" fill="{LEECHERS}" text-anchor="end">the leechers' uplinks</text>"#,
            WIDTH - RIGHT,
            WIDTH - RIGHT,
            level - 4.0
        );
    }
    for (class, colour, pick) in [
        (
            "seeder-sent",
            SEEDER,
            (|sample: &crate::swarm::Sample| sample.seeder_sent) as fn(&crate::swarm::Sample) -> u64,
        ),
        ("leechers-sent", LEECHERS, |sample: &crate::swarm::Sample| sample.leechers_sent),
    ] {
        let points: Vec<String> = outcome
            .timeline
            .iter()
            .map(|sample| format!("{:.1},{:.1}", x(sample.at.as_secs_f64()), y(pick(sample) as f64)))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline class="{class}" points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
            points.join(" ")
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{LEFT}" y="{}" fill="{SEEDER}">seeder</text><text x="{}" y="{}" fill="{LEECHERS}">leechers together</text>"#,
        top - 8.0,
        LEFT + 70.0,
        top - 8.0
    );

    // 3: who sent how much to whom.
    if matrix_rows > 0 {
        let top = matrix_top;
        let _ = write!(
            svg,
            r#"<text x="{LEFT}" y="{top}" fill="{INK}" font-weight="bold">who sent to whom: a row is what a peer received, a column what a peer sent (0 the seeder; red, a liar); darker is more</text>"#
        );
        let most = outcome.pairs.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
        let origin = top + 20.0;
        for (row, received) in outcome.pairs.iter().enumerate() {
            for (column, &bytes) in received.iter().enumerate() {
                if bytes == 0 {
                    continue;
                }
                let shade = (bytes as f64 / most).sqrt();
                let _ = write!(
                    svg,
                    r#"<rect class="pair" x="{:.1}" y="{:.1}" width="{cell:.1}" height="{cell:.1}" fill="{INK}" fill-opacity="{shade:.3}"><title>{column} sent {bytes} bytes to {row}</title></rect>"#,
                    LEFT + cell * column as f64,
                    origin + cell * row as f64
                );
            }
        }
        for liar in &setup.liars {
            let at = cell * (liar + 1) as f64;
            let _ = write!(
                svg,
                r#"<rect class="liar" x="{:.1}" y="{origin:.1}" width="{cell:.1}" height="{:.1}" fill="none" stroke="{LIAR}"/>"#,
                LEFT + at,
                cell * matrix_rows as f64
            );
        }
        let side = cell * matrix_rows as f64;
        let _ = write!(
            svg,
            r#"<rect x="{LEFT}" y="{origin:.1}" width="{side:.1}" height="{side:.1}" fill="none" stroke="{MUTED}"/>"#
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// A plot's frame: its axes, a time tick every tenth of `end`, and the vertical scale up to `top_value`.
fn axes(svg: &mut String, top: f64, end: f64, x: &dyn Fn(f64) -> f64, label: &str, top_value: f64, unit: &str) {
    let bottom = top + PLOT;
    let _ = write!(
        svg,
        r#"<line x1="{LEFT}" x2="{:.1}" y1="{bottom}" y2="{bottom}" stroke="{MUTED}"/><line x1="{LEFT}" x2="{LEFT}" y1="{top}" y2="{bottom}" stroke="{MUTED}"/>"#,
        WIDTH - RIGHT
    );
    let _ = write!(
        svg,
        r#"<text x="{LEFT}" y="{:.1}" fill="{MUTED}" text-anchor="end" transform="rotate(-90 {LEFT} {:.1})" dy="-48">{}</text>"#,
        top + PLOT / 2.0,
        top + PLOT / 2.0,
        escape(label)
    );
    let _ = write!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" fill="{MUTED}" text-anchor="end">{}</text><text x="{:.1}" y="{bottom:.1}" fill="{MUTED}" text-anchor="end">0</text>"#,
        LEFT - 6.0,
        top + 10.0,
        escape(&human(top_value, unit)),
        LEFT - 6.0
    );
    let step = nice_step(end / 10.0);
    let mut second = 0.0;
    while second <= end {
        let tx = x(second);
        let _ = write!(
            svg,
            r#"<line x1="{tx:.1}" x2="{tx:.1}" y1="{bottom}" y2="{:.1}" stroke="{MUTED}"/><text x="{tx:.1}" y="{:.1}" text-anchor="middle" fill="{MUTED}">{second} s</text>"#,
            bottom + 5.0,
            bottom + 19.0
        );
        second += step;
    }
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let power = 10f64.powf(raw.max(1e-3).log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * power).find(|step| *step >= raw).unwrap_or(10.0 * power)
}

fn human(value: f64, unit: &str) -> String {
    if unit.is_empty() {
        return format!("{value:.0}");
    }
    let (scaled, prefix) = match value {
        v if v >= 1e9 => (v / 1e9, "G"),
        v if v >= 1e6 => (v / 1e6, "M"),
        v if v >= 1e3 => (v / 1e3, "k"),
        v => (v, ""),
    };
    format!("{scaled:.1} {prefix}{unit}")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_round_numbers() {
        assert!((nice_step(3.2) - 5.0).abs() < 1e-9);
        assert!((nice_step(0.8) - 1.0).abs() < 1e-9);
        assert!((nice_step(12.0) - 20.0).abs() < 1e-9);
        assert_eq!(human(2_500_000.0, "B/s"), "2.5 MB/s");
        assert_eq!(human(40.0, ""), "40");
    }
}
