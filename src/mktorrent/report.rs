//! What `mktorrent` prints about a torrent: aligned `Label  value` lines for people, JSON for scripts.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use indicatif::HumanBytes;
use metainfo::{Torrent, magnet_link};
use serde_json::{Value, json};

use super::Args;

/// The facts shown after making a torrent and by `--show`, in display order.
pub fn summary(torrent: &Torrent) -> Vec<(&'static str, String)> {
    let info = &torrent.info;
    let total = info.total_length();
    vec![
        ("Name", info.name.clone()),
        ("Files", info.files.iter().filter(|file| !file.pad).count().to_string()),
        ("Total size", format!("{} ({total} bytes)", HumanBytes(total))),
        ("Piece length", format!("{} (2^{})", HumanBytes(info.piece_length), info.piece_length.trailing_zeros())),
        ("Pieces", pieces_text(torrent)),
        ("Private", if info.private { "yes" } else { "no" }.to_owned()),
        ("Version", version(torrent).to_owned()),
    ]
    .into_iter()
    .chain(torrent.has_v1().then(|| ("Info-hash", torrent.info_hash.to_string())))
    .chain(
        torrent
            .info_hash_v2()
            .into_iter()
            .flat_map(|v2| [("Info-hash v2", v2.to_string()), ("Info-hash v2 (20 bytes)", v2.truncated().to_string())]),
    )
    .chain([("Magnet", magnet_link(torrent))])
    .collect()
}

/// `v1`, `v2` or `hybrid`.
pub fn version(torrent: &Torrent) -> &'static str {
    match (torrent.has_v1(), torrent.v2.is_some()) {
        (true, false) => "v1",
        (false, _) => "v2",
        (true, true) => "hybrid (v1 + v2)",
    }
}

/// v1 pieces, or for a v2-only torrent the v2 pieces (each file's own, since they never span two files).
fn pieces_text(torrent: &Torrent) -> String {
    match &torrent.v2 {
        Some(v2) if !torrent.has_v1() => {
            let count: u64 = v2.files.iter().map(|file| file.length.div_ceil(torrent.info.piece_length)).sum();
            format!("{count} (v2, per file)")
        }
        _ => torrent.info.piece_count().to_string(),
    }
}

/// The same facts as a JSON object, plus the file list.
pub fn summary_json(torrent: &Torrent) -> Value {
    let info = &torrent.info;
    let files: Vec<Value> = (0..info.files.len())
        .filter(|&index| !info.files[index].pad)
        .map(|index| {
            let path = info.relative_path(index).unwrap_or_default();
            json!({ "path": path.to_string_lossy(), "length": info.files[index].length })
        })
        .collect();
    let v2 = torrent.info_hash_v2();
    json!({
        "name": info.name,
        "version": match version(torrent) { "v1" => "v1", "v2" => "v2", _ => "hybrid" },
        // For a v2-only torrent: the v2 info-hash truncated to 20 bytes, the swarm's name where 20 bytes fit.
        "info_hash": torrent.info_hash.to_string(),
        "info_hash_v2": v2.map(|hash| hash.to_string()),
        "info_hash_v2_truncated": v2.map(|hash| hash.truncated().to_string()),
        "magnet": magnet_link(torrent),
        "total_size": info.total_length(),
        "piece_length": info.piece_length,
        "pieces": info.piece_count(),
        "private": info.private,
        "single_file": info.is_single_file(),
        "files": files,
        "trackers": torrent.trackers(),
        // BEP 5 `nodes`, as the file holds them: [host, port] pairs.
        "nodes": torrent.nodes,
    })
}

/// A DHT node as `host:port`, an IPv6 address in brackets (`[::1]:6881`).
fn node_text((host, port): &(String, u16)) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// The `Trackers` section: each URL, or `(none)` for a trackerless torrent; then `DHT nodes`, when there are any.
pub fn print_trackers_and_nodes(
    out: &mut impl Write,
    torrent: &Torrent,
    tracker_lines: &[String],
) -> std::io::Result<()> {
    writeln!(out, "Trackers")?;
    if tracker_lines.is_empty() {
        writeln!(out, "  (none)")?;
    }
    for line in tracker_lines {
        writeln!(out, "  {line}")?;
    }
    if !torrent.nodes.is_empty() {
        writeln!(out, "DHT nodes")?;
        for node in &torrent.nodes {
            writeln!(out, "  {}", node_text(node))?;
        }
    }
    Ok(())
}

pub fn print_lines(out: &mut impl Write, lines: &[(&str, String)]) -> std::io::Result<()> {
    let width = lines.iter().map(|(label, _)| label.len()).max().unwrap_or(0);
    for (label, value) in lines {
        writeln!(out, "{label:<width$}  {value}")?;
    }
    Ok(())
}

/// Lists every file with its size, as `-v` and `--show` do.
pub fn print_files(out: &mut impl Write, torrent: &Torrent) -> std::io::Result<()> {
    let info = &torrent.info;
    for index in (0..info.files.len()).filter(|&index| !info.files[index].pad) {
        let path = info.relative_path(index).unwrap_or_default();
        writeln!(out, "  {:>10}  {}", HumanBytes(info.files[index].length).to_string(), path.display())?;
    }
    Ok(())
}

/// Prints the result of making a torrent.
pub fn created(torrent: &Torrent, output: &Path, elapsed: Duration, args: &Args) -> anyhow::Result<()> {
    if args.quiet {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let mut value = summary_json(torrent);
        value["output"] = json!(output.to_string_lossy());
        value["seconds"] = json!(elapsed.as_secs_f64());
        writeln!(out, "{value}")?;
        return Ok(());
    }
    let mut lines = summary(torrent);
    lines.push(("Wrote", format!("{} in {:.2} s", output.display(), elapsed.as_secs_f64())));
    print_lines(&mut out, &lines)?;
    if args.verbose {
        print_trackers_and_nodes(&mut out, torrent, &torrent.trackers())?;
        writeln!(out, "File list")?;
        print_files(&mut out, torrent)?;
    }
    Ok(())
}
