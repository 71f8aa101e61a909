//! `mktorrent --show FILE.torrent`: everything a torrent says, like `transmission-show` or
//! `imdl torrent show`.

use std::io::Write;

use metainfo::{Magnet, Torrent};
use serde_json::json;

use super::report::{print_files, print_lines, print_trackers_and_nodes, summary, summary_json};

pub fn print(torrent: &Torrent, as_json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let created_on = torrent.creation_date.map(|seconds| {
        u64::try_from(seconds)
            .ok()
            .and_then(|secs| std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(secs)))
            .map_or_else(|| seconds.to_string(), |time| humantime::format_rfc3339_seconds(time).to_string())
    });
    if as_json {
        let mut value = summary_json(torrent);
        value["announce"] = json!(torrent.announce);
        value["announce_list"] = json!(torrent.announce_list);
        value["comment"] = json!(torrent.comment);
        value["created_by"] = json!(torrent.created_by);
        value["creation_date"] = json!(torrent.creation_date);
        value["source"] = json!(torrent.info.source);
        value["url_list"] = json!(torrent.url_list);
        writeln!(out, "{value}")?;
        return Ok(());
    }
    let mut lines = summary(torrent);
    let optional = [
        ("Comment", torrent.comment.clone()),
        ("Created by", torrent.created_by.clone()),
        ("Created on", created_on),
        ("Source", torrent.info.source.clone()),
    ];
    lines.extend(optional.into_iter().filter_map(|(label, value)| value.map(|value| (label, value))));
    print_lines(&mut out, &lines)?;
    let trackers: Vec<String> = if torrent.announce_list.is_empty() {
        torrent.announce.iter().cloned().collect()
    } else {
        torrent
            .announce_list
            .iter()
            .enumerate()
            .map(|(tier, urls)| format!("tier {}: {}", tier + 1, urls.join(", ")))
            .collect()
    };
    print_trackers_and_nodes(&mut out, torrent, &trackers)?;
    if !torrent.url_list.is_empty() {
        writeln!(out, "Web seeds")?;
        for url in &torrent.url_list {
            writeln!(out, "  {url}")?;
        }
    }
    writeln!(out, "File list")?;
    print_files(&mut out, torrent)?;
    Ok(())
}

/// `mktorrent --show MAGNET`: what a magnet link names (the rest comes with the metadata, from peers).
pub fn print_magnet(magnet: &Magnet, as_json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if as_json {
        let value = json!({
            "info_hash": magnet.info_hash.to_string(),
            "info_hash_v2": magnet.info_hash_v2.map(|hash| hash.to_string()),
            "name": magnet.name,
            "trackers": magnet.trackers,
            "peers": magnet.peers,
        });
        writeln!(out, "{value}")?;
        return Ok(());
    }
    let mut lines = vec![("Info hash", magnet.info_hash.to_string())];
    if let Some(v2) = magnet.info_hash_v2 {
        lines.push(("Info hash v2", v2.to_string()));
    }
    if let Some(name) = &magnet.name {
        lines.push(("Name", name.clone()));
    }
    print_lines(&mut out, &lines)?;
    for (title, list) in [("Trackers", &magnet.trackers), ("Peers", &magnet.peers)] {
        writeln!(out, "{title}")?;
        if list.is_empty() {
            writeln!(out, "  (none)")?;
        }
        for entry in list {
            writeln!(out, "  {entry}")?;
        }
    }
    Ok(())
}
