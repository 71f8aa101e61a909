//! `torrent-get`'s fields, from a [`TorrentStatus`]: the names and meanings of Transmission's rpc-spec, the
//! values of our session. A field we do not know is left out of the answer, as transmission-daemon does.

use std::path::Path;

use peer::selection::Priority;
use peer::session::{State, TorrentStatus};
use serde_json::{Value, json};

/// Transmission's torrent states.
const STOPPED: i64 = 0;
const CHECKING: i64 = 2;
const DOWNLOADING: i64 = 4;
const SEEDING: i64 = 6;
/// Transmission's `error`: a local error (the disk, the data), with its text in `errorString`.
const LOCAL_ERROR: i64 = 3;
/// `eta` when it cannot be told (nothing is coming in), and `uploadRatio` when nothing came in yet.
const UNKNOWN: i64 = -1;

/// What the RPC knows of a torrent beyond its status: its id and when it was added (seconds since 1970).
#[derive(Debug, Clone, Copy)]
pub struct Known {
    pub id: i64,
    pub added: u64,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn status_code(state: &State) -> i64 {
    match state {
        State::FetchingMetadata | State::Downloading => DOWNLOADING,
        State::Checking => CHECKING,
        State::Seeding => SEEDING,
        State::Paused | State::Stopped | State::Errored(_) | State::Removed => STOPPED,
    }
}

/// Bytes of the wanted files, and of those still missing.
fn wanted_bytes(status: &TorrentStatus) -> (u64, u64) {
    let wanted = status.files.iter().filter(|file| file.priority != Priority::Skip);
    wanted.fold((0, 0), |(size, left), file| (size + file.length, left + file.length.saturating_sub(file.done)))
}

fn priority_number(priority: Priority) -> i64 {
    match priority {
        Priority::Low => -1,
        Priority::High => 1,
        Priority::Skip | Priority::Normal => 0,
    }
}

/// A file's name as Transmission gives it: its path inside the download folder, `/`-separated.
fn inside(dir: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(dir).unwrap_or(path);
    relative.components().map(|part| part.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

/// The magnet link of a torrent: its info-hash, name and trackers.
fn magnet_link(status: &TorrentStatus) -> String {
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|byte| match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (byte as char).to_string(),
                other => format!("%{other:02X}"),
            })
            .collect()
    };
    let mut link = format!("magnet:?xt=urn:btih:{}&dn={}", hex(&status.info_hash), encode(&status.name));
    for tracker in &status.trackers {
        link.push_str("&tr=");
        link.push_str(&encode(&tracker.url));
    }
    link
}

/// The value of `field` (in the legacy spelling, e.g. `percentDone`) for `status`; `None` for a field we do not
/// know.
#[allow(clippy::too_many_lines)] // one arm per field of the spec, each a line or two
pub fn field(name: &str, known: Known, status: &TorrentStatus) -> Option<Value> {
    let s = &status.status;
    let (size_when_done, left) = wanted_bytes(status);
    let have_valid: u64 = status.files.iter().map(|file| file.done).sum();
    let fetching = status.state == State::FetchingMetadata;
    let value = match crate::protocol::canonical(name).as_str() {
        "id" => json!(known.id),
        "hashstring" => json!(hex(&status.info_hash)),
        "name" => json!(status.name),
        "status" => json!(status_code(&status.state)),
        "error" => json!(if matches!(status.state, State::Errored(_)) { LOCAL_ERROR } else { 0 }),
        "errorstring" => json!(if let State::Errored(reason) = &status.state { reason.as_str() } else { "" }),
        "totalsize" => json!(status.size),
        "sizewhendone" => json!(size_when_done),
        "leftuntildone" => json!(left),
        "havevalid" => json!(have_valid),
        "haveunchecked" | "corruptever" | "desiredavailable" => json!(0),
        "percentdone" => json!(if size_when_done == 0 { 0.0 } else { 1.0 - left as f64 / size_when_done as f64 }),
        "percentcomplete" => json!(if status.size == 0 { 0.0 } else { have_valid as f64 / status.size as f64 }),
        "metadatapercentcomplete" => json!(if fetching { 0.0 } else { 1.0 }),
        "recheckprogress" => json!(if status.state == State::Checking { 0.0 } else { 1.0 }),
        "isfinished" => json!(false),
        "isstalled" => json!(false),
        "isprivate" => json!(status.private),
        "rateupload" => json!(s.upload_rate),
        "ratedownload" => json!(s.download_rate),
        "eta" => {
            let seconds = left.checked_div(s.download_rate);
            let seconds = seconds.map_or(UNKNOWN, |eta| i64::try_from(eta).unwrap_or(i64::MAX));
            json!(if left == 0 { 0 } else { seconds })
        }
        "uploadedever" => json!(s.uploaded),
        "downloadedever" => json!(s.downloaded),
        "uploadratio" => {
            json!(if s.downloaded == 0 { UNKNOWN as f64 } else { s.uploaded as f64 / s.downloaded as f64 })
        }
        "downloaddir" => json!(status.dir.to_string_lossy()),
        "piececount" => json!(s.total),
        "piecesize" => json!(status.piece_length),
        "peersconnected" => json!(status.peers.len()),
        "peersgettingfromus" => json!(status.peers.iter().filter(|peer| peer.uploaded > 0).count()),
        "peerssendingtous" => json!(status.peers.iter().filter(|peer| peer.downloaded > 0).count()),
        "webseedssendingtous" => json!(0),
        "webseeds" => json!([]),
        "labels" => json!([]),
        "magnetlink" => json!(magnet_link(status)),
        "addeddate" => json!(known.added),
        "activitydate" | "startdate" | "donedate" | "datecreated" | "secondsdownloading" | "secondsseeding" => json!(0),
        "comment" | "creator" => json!(""),
        "bandwidthpriority" => json!(0),
        "honorssessionlimits" => json!(true),
        "peerlimit" => json!(50),
        "seedratiomode" => json!(0),
        "seedratiolimit" => json!(2.0),
        "uploadlimit" => json!(status.upload_limit.map_or(0, |rate| rate / 1000)),
        "uploadlimited" => json!(status.upload_limit.is_some()),
        "downloadlimit" => json!(status.download_limit.map_or(0, |rate| rate / 1000)),
        "downloadlimited" => json!(status.download_limit.is_some()),
        "files" => Value::Array(
            status
                .files
                .iter()
                .map(|file| {
                    let name = inside(&status.dir, &file.path);
                    json!({ "name": name, "length": file.length, "bytesCompleted": file.done })
                })
                .collect(),
        ),
        "filestats" => Value::Array(
            status
                .files
                .iter()
                .map(|file| {
                    json!({
                        "bytesCompleted": file.done,
                        "wanted": file.priority != Priority::Skip,
                        "priority": priority_number(file.priority),
                    })
                })
                .collect(),
        ),
        "wanted" => {
            Value::Array(status.files.iter().map(|file| json!(i64::from(file.priority != Priority::Skip))).collect())
        }
        "priorities" => Value::Array(status.files.iter().map(|file| json!(priority_number(file.priority))).collect()),
        "peers" => Value::Array(
            status
                .peers
                .iter()
                .map(|peer| {
                    json!({
                        "address": peer.addr.ip().to_string(),
                        "port": peer.addr.port(),
                        "clientName": client_name(&peer.peer_id),
                        "flagStr": "",
                        "isEncrypted": false,
                        "isUTP": false,
                        "isDownloadingFrom": peer.downloaded > 0,
                        "isUploadingTo": peer.uploaded > 0,
                        "rateToClient": 0,
                        "rateToPeer": 0,
                        "progress": 0.0,
                        "peerIdHex": hex(&peer.peer_id),
                        "source": peer.source.name(),
                    })
                })
                .collect(),
        ),
        "trackerstats" => Value::Array(
            status
                .trackers
                .iter()
                .enumerate()
                .map(|(index, tracker)| {
                    let (succeeded, result, seeders, leechers) = match &tracker.last {
                        Some(Ok((_, seeders, leechers))) => {
                            (true, "Success".to_owned(), i64::from(*seeders), i64::from(*leechers))
                        }
                        Some(Err(reason)) => (false, reason.clone(), UNKNOWN, UNKNOWN),
                        None => (false, String::new(), UNKNOWN, UNKNOWN),
                    };
                    json!({
                        "id": index,
                        "tier": index,
                        "announce": tracker.url,
                        "host": tracker_host(&tracker.url),
                        "hasAnnounced": tracker.last.is_some(),
                        "lastAnnounceSucceeded": succeeded,
                        "lastAnnounceResult": result,
                        "seederCount": seeders,
                        "leecherCount": leechers,
                        "downloadCount": UNKNOWN,
                        "hasScraped": false,
                        "isBackup": false,
                    })
                })
                .collect(),
        ),
        "trackers" => Value::Array(
            status
                .trackers
                .iter()
                .enumerate()
                .map(|(index, tracker)| json!({ "id": index, "tier": index, "announce": tracker.url, "scrape": "" }))
                .collect(),
        ),
        _ => return None,
    };
    Some(value)
}

/// A client's name from its peer id's Azureus-style prefix (`-TR3000-` → `TR 3000`), or its first bytes.
fn client_name(peer_id: &[u8; 20]) -> String {
    if peer_id[0] == b'-' && peer_id[7] == b'-' && peer_id[1..7].iter().all(u8::is_ascii_alphanumeric) {
        return format!("{} {}", String::from_utf8_lossy(&peer_id[1..3]), String::from_utf8_lossy(&peer_id[3..7]));
    }
    peer_id.iter().take(8).filter(|byte| byte.is_ascii_graphic()).map(|&byte| byte as char).collect()
}

/// `udp://tracker.example:6969/announce` → `udp://tracker.example:6969`.
fn tracker_host(url: &str) -> String {
    match url.find("://") {
        Some(scheme) => url[scheme + 3..].find('/').map_or(url.to_owned(), |path| url[..scheme + 3 + path].to_owned()),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_and_hosts_read_as_transmission_shows_them() {
        assert_eq!(client_name(b"-TR3000-abcdefghijkl"), "TR 3000");
        assert_eq!(client_name(b"M7-2-2--abcdefghijkl"), "M7-2-2--");
        assert_eq!(tracker_host("udp://t.example:6969/announce"), "udp://t.example:6969");
        assert_eq!(tracker_host("http://t.example/a/announce?k=1"), "http://t.example");
    }
}
