//! The RPC's methods, carried out on the session. Where the spec leaves a choice, transmission-daemon's answers
//! are the model: ids are numbers handed out in the order torrents are first seen, kept for the session's life,
//! and a torrent's info-hash (40 hex digits) is accepted wherever an id is.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use peer::events::Event;
use peer::selection::Priority;
use peer::session::{Session, State, TorrentStatus};
use peer::torrent::TorrentConfig;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::protocol::{Call, Failure, METHOD_NOT_FOUND, argument};
use crate::torrent_fields::{Known, field};

/// `rpc-version`: the level of the spec we follow (Transmission 4.0's).
pub const RPC_VERSION: i64 = 17;
/// `version`: what clients parse for the daemon's version (a number first), then who we are.
pub const VERSION: &str = concat!("4.0.0 (bittorrent-tools ", env!("CARGO_PKG_VERSION"), ")");
/// Speeds in the RPC are kB/s of this many bytes, as transmission-daemon's default units say.
const SPEED_UNIT: u64 = 1000;
/// Most bytes of a .torrent fetched from a URL for `torrent-add`.
const MAX_TORRENT_FILE: usize = 10 << 20;

/// Where events of torrents added through the RPC go, with their info-hash.
pub type EventSender = mpsc::UnboundedSender<([u8; 20], Event)>;

/// The RPC over one session.
pub struct Rpc {
    session: Arc<Session>,
    /// How a torrent added through the RPC is set up, but for its folder.
    template: TorrentConfig,
    download_dir: Mutex<PathBuf>,
    events: EventSender,
    ids: Mutex<Ids>,
    started: Instant,
    peer_port: u16,
}

#[derive(Default)]
struct Ids {
    next: i64,
    by_hash: HashMap<[u8; 20], Known>,
    by_id: HashMap<i64, [u8; 20]>,
}

impl Ids {
    fn of(&mut self, hash: [u8; 20]) -> Known {
        if let Some(known) = self.by_hash.get(&hash) {
            return *known;
        }
        self.next += 1;
        let added = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let known = Known { id: self.next, added };
        self.by_hash.insert(hash, known);
        self.by_id.insert(self.next, hash);
        known
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

impl Rpc {
    /// The RPC over `session`: torrents it adds are set up as `template` says (in `template.dir` unless the
    /// request names a folder), their events sent to `events`; `peer_port` is what `session-get` reports.
    #[must_use]
    pub fn new(session: Arc<Session>, template: TorrentConfig, events: EventSender, peer_port: u16) -> Rpc {
        let download_dir = Mutex::new(template.dir.clone());
        let rpc =
            Rpc { session, template, download_dir, events, ids: Mutex::default(), started: Instant::now(), peer_port };
        // The torrents there from the start get the first ids, in their order.
        rpc.statuses();
        rpc
    }

    /// Carries out `call`.
    ///
    /// # Errors
    ///
    /// An unknown method, arguments it cannot use, or what the session said went wrong.
    pub async fn call(&self, call: &Call) -> Result<Map<String, Value>, Failure> {
        let arguments = &call.arguments;
        match call.method.as_str() {
            "session-get" => Ok(self.session_get(arguments)),
            "session-set" => self.session_set(arguments),
            "session-stats" => Ok(self.session_stats()),
            "torrent-get" => self.torrent_get(arguments),
            "torrent-add" => self.torrent_add(arguments).await,
            "torrent-start" | "torrent-start-now" | "torrent-reannounce" => {
                self.each(arguments, |hash| {
                    self.session.resume(hash);
                })?;
                Ok(Map::new())
            }
            "torrent-stop" => {
                self.each(arguments, |hash| {
                    self.session.pause(hash);
                })?;
                Ok(Map::new())
            }
            "torrent-remove" => self.torrent_remove(arguments).await,
            "torrent-set" => self.torrent_set(arguments).await,
            "free-space" => free_space(arguments),
            "port-test" => Ok(json_map(json!({ "port-is-open": true }))),
            "torrent-verify"
            | "torrent-set-location"
            | "torrent-rename-path"
            | "blocklist-update"
            | "queue-move-top"
            | "queue-move-up"
            | "queue-move-down"
            | "queue-move-bottom"
            | "group-get"
            | "group-set" => Err(Failure::method(format!("{} is not supported yet", call.method))),
            _ => Err(Failure { code: METHOD_NOT_FOUND, message: "method name not recognized".to_owned() }),
        }
    }

    /// Every torrent with its id, in the session's order.
    fn statuses(&self) -> Vec<(Known, TorrentStatus)> {
        let statuses = self.session.torrents();
        let mut ids = lock(&self.ids);
        statuses.into_iter().map(|status| (ids.of(status.info_hash), status)).collect()
    }

    /// The torrents `arguments`' `ids` name (all when absent): a number, a hash, or a list of either;
    /// `recently-active` is every torrent.
    fn selected(&self, arguments: &Map<String, Value>) -> Result<Vec<(Known, TorrentStatus)>, Failure> {
        let all = self.statuses();
        let Some(ids) = argument(arguments, "ids") else { return Ok(all) };
        let wanted: Vec<&Value> = match ids {
            Value::Array(items) => items.iter().collect(),
            Value::String(text) if text == "recently-active" => return Ok(all),
            one => vec![one],
        };
        let mut chosen = Vec::new();
        for want in wanted {
            let found = match want {
                Value::Number(number) => number.as_i64().and_then(|id| all.iter().find(|(known, _)| known.id == id)),
                Value::String(text) => all.iter().find(|(_, status)| hex(&status.info_hash).eq_ignore_ascii_case(text)),
                _ => return Err(Failure::params(format!("{want} is neither a torrent id nor an info-hash"))),
            };
            // An id of a torrent no longer there selects nothing, as transmission-daemon answers.
            if let Some(found) = found
                && !chosen.iter().any(|(known, _): &(Known, TorrentStatus)| known.id == found.0.id)
            {
                chosen.push(found.clone());
            }
        }
        Ok(chosen)
    }

    fn each(&self, arguments: &Map<String, Value>, mut act: impl FnMut(&[u8; 20])) -> Result<(), Failure> {
        for (_, status) in self.selected(arguments)? {
            act(&status.info_hash);
        }
        Ok(())
    }

    fn session_get(&self, arguments: &Map<String, Value>) -> Map<String, Value> {
        let (upload, download) = self.session.session_limits();
        let all = json_map(json!({
            "version": VERSION,
            "rpc-version": RPC_VERSION,
            "rpc-version-minimum": 14,
            "rpc-version-semver": "5.3.0",
            "session-id": "",
            "config-dir": "",
            "download-dir": lock(&self.download_dir).to_string_lossy(),
            "incomplete-dir-enabled": false,
            "peer-port": self.peer_port,
            "peer-port-random-on-start": false,
            "port-forwarding-enabled": false,
            "peer-limit-global": 200,
            "peer-limit-per-torrent": self.template.max_peers,
            "dht-enabled": true,
            "lpd-enabled": true,
            "pex-enabled": true,
            "utp-enabled": false,
            "encryption": "tolerated",
            "speed-limit-up": upload.map_or(0, |rate| rate / SPEED_UNIT),
            "speed-limit-up-enabled": upload.is_some(),
            "speed-limit-down": download.map_or(0, |rate| rate / SPEED_UNIT),
            "speed-limit-down-enabled": download.is_some(),
            "alt-speed-enabled": false,
            "alt-speed-up": 0,
            "alt-speed-down": 0,
            "alt-speed-time-enabled": false,
            "alt-speed-time-begin": 540,
            "alt-speed-time-end": 1020,
            "alt-speed-time-day": 127,
            "seedRatioLimited": false,
            "seedRatioLimit": 2.0,
            "idle-seeding-limit-enabled": false,
            "idle-seeding-limit": 30,
            "download-queue-enabled": false,
            "download-queue-size": 5,
            "seed-queue-enabled": false,
            "seed-queue-size": 10,
            "queue-stalled-enabled": false,
            "start-added-torrents": true,
            "rename-partial-files": false,
            "trash-original-torrent-files": false,
            "blocklist-enabled": false,
            "blocklist-size": 0,
            "cache-size-mb": 4,
            "units": {
                "speed-units": ["kB/s", "MB/s", "GB/s", "TB/s"],
                "speed-bytes": SPEED_UNIT,
                "size-units": ["kB", "MB", "GB", "TB"],
                "size-bytes": 1000,
                "memory-units": ["KiB", "MiB", "GiB", "TiB"],
                "memory-bytes": 1024,
            },
        }));
        match argument(arguments, "fields").and_then(Value::as_array) {
            Some(fields) => {
                let wanted: Vec<String> =
                    fields.iter().filter_map(Value::as_str).map(crate::protocol::canonical).collect();
                all.into_iter().filter(|(key, _)| wanted.contains(&crate::protocol::canonical(key))).collect()
            }
            None => all,
        }
    }

    fn session_set(&self, arguments: &Map<String, Value>) -> Result<Map<String, Value>, Failure> {
        let (mut upload, mut download) = self.session.session_limits();
        let rate = |key: &str| -> Result<Option<u64>, Failure> {
            match argument(arguments, key) {
                None => Ok(None),
                Some(value) => value
                    .as_u64()
                    .map(|kilobytes| Some(kilobytes.saturating_mul(SPEED_UNIT).max(1)))
                    .ok_or_else(|| Failure::params(format!("{key} is not a number of kB/s"))),
            }
        };
        let enabled = |key: &str| argument(arguments, key).and_then(Value::as_bool);
        // A limit applies while enabled: a new value for an enabled limit takes effect at once.
        let set = |limit: &mut Option<u64>, value: Option<u64>, on: Option<bool>| match (on, value) {
            (Some(false), _) => *limit = None,
            // Enabled with no value: the one in force, else transmission-daemon's default of 100 kB/s.
            (Some(true), value) => *limit = value.or(*limit).or(Some(100 * SPEED_UNIT)),
            (None, Some(value)) if limit.is_some() => *limit = Some(value),
            (None, _) => {}
        };
        set(&mut upload, rate("speed-limit-up")?, enabled("speed-limit-up-enabled"));
        set(&mut download, rate("speed-limit-down")?, enabled("speed-limit-down-enabled"));
        self.session.set_session_limits(upload, download);
        if let Some(dir) = argument(arguments, "download-dir") {
            let dir = dir.as_str().ok_or_else(|| Failure::params("download-dir is not a string"))?;
            if !Path::new(dir).is_absolute() {
                return Err(Failure::params(format!("download-dir {dir:?} is not an absolute path")));
            }
            *lock(&self.download_dir) = PathBuf::from(dir);
        }
        Ok(Map::new())
    }

    fn session_stats(&self) -> Map<String, Value> {
        let statuses = self.statuses();
        let paused =
            statuses.iter().filter(|(_, status)| matches!(status.state, State::Paused | State::Stopped)).count();
        let (uploaded, downloaded) = statuses
            .iter()
            .fold((0, 0), |(up, down), (_, status)| (up + status.status.uploaded, down + status.status.downloaded));
        let seconds = self.started.elapsed().as_secs();
        let totals = json!({
            "uploadedBytes": uploaded,
            "downloadedBytes": downloaded,
            "filesAdded": statuses.iter().map(|(_, status)| status.files.len()).sum::<usize>(),
            "sessionCount": 1,
            "secondsActive": seconds,
        });
        json_map(json!({
            "activeTorrentCount": statuses.len() - paused,
            "pausedTorrentCount": paused,
            "torrentCount": statuses.len(),
            "downloadSpeed": statuses.iter().map(|(_, status)| status.status.download_rate).sum::<u64>(),
            "uploadSpeed": statuses.iter().map(|(_, status)| status.status.upload_rate).sum::<u64>(),
            "cumulative-stats": totals,
            "current-stats": totals,
        }))
    }

    fn torrent_get(&self, arguments: &Map<String, Value>) -> Result<Map<String, Value>, Failure> {
        let Some(Value::Array(fields)) = argument(arguments, "fields") else {
            return Err(Failure::params("torrent-get needs `fields`, a list of field names"));
        };
        let fields: Vec<&str> = fields.iter().filter_map(Value::as_str).collect();
        let table = argument(arguments, "format").and_then(Value::as_str) == Some("table");
        let selected = self.selected(arguments)?;
        let torrents: Vec<Value> = if table {
            let header = Value::Array(fields.iter().map(|name| json!(name)).collect());
            std::iter::once(header)
                .chain(selected.iter().map(|(known, status)| {
                    Value::Array(fields.iter().map(|name| field(name, *known, status).unwrap_or(Value::Null)).collect())
                }))
                .collect()
        } else {
            selected
                .iter()
                .map(|(known, status)| {
                    Value::Object(
                        fields
                            .iter()
                            .filter_map(|name| field(name, *known, status).map(|value| ((*name).to_owned(), value)))
                            .collect(),
                    )
                })
                .collect()
        };
        Ok(json_map(json!({ "torrents": torrents })))
    }

    async fn torrent_add(&self, arguments: &Map<String, Value>) -> Result<Map<String, Value>, Failure> {
        let mut config = self.template.clone();
        config.dir = match argument(arguments, "download-dir").and_then(Value::as_str) {
            Some(dir) if Path::new(dir).is_absolute() => PathBuf::from(dir),
            Some(dir) => return Err(Failure::params(format!("download-dir {dir:?} is not an absolute path"))),
            None => lock(&self.download_dir).clone(),
        };
        let paused = argument(arguments, "paused").and_then(Value::as_bool).unwrap_or(false);
        let added = if let Some(encoded) = argument(arguments, "metainfo").and_then(Value::as_str) {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|err| Failure::params(format!("metainfo is not base64: {err}")))?;
            self.add_torrent_bytes(&bytes, config)?
        } else if let Some(filename) = argument(arguments, "filename").and_then(Value::as_str) {
            if filename.get(..7).is_some_and(|scheme| scheme.eq_ignore_ascii_case("magnet:")) {
                let magnet = metainfo::parse_magnet(filename).map_err(|err| Failure::method(format!("{err}")))?;
                let hash = magnet.info_hash.0;
                let name = magnet.name.clone().unwrap_or_else(|| hex(&hash));
                match self.session.add_magnet(magnet, config, self.events.clone()) {
                    Ok(_) => Ok((hash, name)),
                    Err(peer::torrent::TorrentError::Duplicate { .. }) => Err((hash, name)),
                    Err(err) => return Err(Failure::method(err.to_string())),
                }
            } else if filename.starts_with("http://") || filename.starts_with("https://") {
                let bytes = fetch(filename).await?;
                self.add_torrent_bytes(&bytes, config)?
            } else {
                let bytes =
                    std::fs::read(filename).map_err(|err| Failure::method(format!("reading {filename}: {err}")))?;
                self.add_torrent_bytes(&bytes, config)?
            }
        } else {
            return Err(Failure::params("torrent-add needs `filename` (a path, URL or magnet link) or `metainfo`"));
        };
        let (key, (hash, name)) = match added {
            Ok(added) => ("torrent-added", added),
            Err(duplicate) => ("torrent-duplicate", duplicate),
        };
        if paused && key == "torrent-added" {
            self.session.pause(&hash);
        }
        let known = lock(&self.ids).of(hash);
        Ok(json_map(json!({ key: { "id": known.id, "name": name, "hashString": hex(&hash) } })))
    }

    /// Adds a .torrent's bytes; `Err` inside: it is in the session already (its hash and name).
    #[allow(clippy::type_complexity)]
    fn add_torrent_bytes(
        &self,
        bytes: &[u8],
        config: TorrentConfig,
    ) -> Result<Result<([u8; 20], String), ([u8; 20], String)>, Failure> {
        let torrent = metainfo::Torrent::from_bytes_any(bytes)
            .map_err(|err| Failure::method(format!("invalid or corrupt torrent file: {err}")))?;
        let (hash, name) = (torrent.info_hash.0, torrent.info.name.clone());
        match self.session.add(torrent, config, self.events.clone()) {
            Ok(_) => Ok(Ok((hash, name))),
            Err(peer::torrent::TorrentError::Duplicate { .. }) => Ok(Err((hash, name))),
            Err(err) => Err(Failure::method(err.to_string())),
        }
    }

    async fn torrent_remove(&self, arguments: &Map<String, Value>) -> Result<Map<String, Value>, Failure> {
        let delete = argument(arguments, "delete-local-data").and_then(Value::as_bool).unwrap_or(false);
        for (_, status) in self.selected(arguments)? {
            self.session.remove(&status.info_hash).await;
            if delete {
                delete_data(&status).map_err(Failure::method)?;
            }
        }
        Ok(Map::new())
    }

    async fn torrent_set(&self, arguments: &Map<String, Value>) -> Result<Map<String, Value>, Failure> {
        let indices = |key: &str| -> Result<Option<Vec<usize>>, Failure> {
            match argument(arguments, key) {
                None => Ok(None),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|item| item.as_u64().and_then(|index| usize::try_from(index).ok()))
                    .collect::<Option<Vec<usize>>>()
                    .map(Some)
                    .ok_or_else(|| Failure::params(format!("{key} is not a list of file indices"))),
                Some(_) => Err(Failure::params(format!("{key} is not a list of file indices"))),
            }
        };
        let changes = [
            (indices("files-unwanted")?, Some(Priority::Skip)),
            (indices("files-wanted")?, None),
            (indices("priority-low")?, Some(Priority::Low)),
            (indices("priority-normal")?, Some(Priority::Normal)),
            (indices("priority-high")?, Some(Priority::High)),
        ];
        let limit = |key: &str, on: &str, current: Option<u64>| -> Option<Option<u64>> {
            let value = argument(arguments, key).and_then(Value::as_u64).map(|kb| kb.saturating_mul(SPEED_UNIT).max(1));
            match argument(arguments, on).and_then(Value::as_bool) {
                Some(false) => Some(None),
                Some(true) => Some(value.or(current).or(Some(100 * SPEED_UNIT))),
                None => value.filter(|_| current.is_some()).map(Some),
            }
        };
        for (_, status) in self.selected(arguments)? {
            let mut priorities: Vec<Priority> = status.files.iter().map(|file| file.priority).collect();
            let mut changed = false;
            for (files, priority) in &changes {
                for &index in files.iter().flatten() {
                    let Some(slot) = priorities.get_mut(index) else {
                        return Err(Failure::params(format!("{} has no file {index}", status.name)));
                    };
                    // Wanted again: back to normal unless it had a priority of its own.
                    *slot = match priority {
                        Some(priority) => *priority,
                        None if *slot == Priority::Skip => Priority::Normal,
                        None => *slot,
                    };
                    changed = true;
                }
            }
            if changed {
                let done = self.session.set_file_priorities(&status.info_hash, &priorities).await;
                done.map_err(|err| Failure::method(err.to_string()))?;
            }
            let upload = limit("uploadLimit", "uploadLimited", status.upload_limit);
            let download = limit("downloadLimit", "downloadLimited", status.download_limit);
            if upload.is_some() || download.is_some() {
                let upload = upload.unwrap_or(status.upload_limit);
                let download = download.unwrap_or(status.download_limit);
                self.session.set_limits(&status.info_hash, upload, download);
            }
        }
        Ok(Map::new())
    }
}

fn json_map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// `free-space`: the bytes free in the folder asked about.
fn free_space(arguments: &Map<String, Value>) -> Result<Map<String, Value>, Failure> {
    let path = argument(arguments, "path")
        .and_then(Value::as_str)
        .ok_or_else(|| Failure::params("free-space needs `path`"))?;
    let stats = rustix::fs::statvfs(path).map_err(|err| Failure::method(format!("{path}: {err}")))?;
    let free = stats.f_bavail.saturating_mul(stats.f_frsize);
    let total = stats.f_blocks.saturating_mul(stats.f_frsize);
    Ok(json_map(json!({ "path": path, "size-bytes": free, "total_size": total })))
}

/// Deletes a removed torrent's files, its part file, and the folders of it left empty; never anything outside
/// its download folder.
fn delete_data(status: &TorrentStatus) -> Result<(), String> {
    let dir = &status.dir;
    // Where the folder really is: a file whose real folder lies elsewhere (a symbolic link on the way out of the
    // download folder) is not deleted.
    let real_dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
    let mut folders = Vec::new();
    for file in &status.files {
        let real_parent = file.path.parent().and_then(|parent| std::fs::canonicalize(parent).ok());
        if !file.path.starts_with(dir) || real_parent.is_some_and(|parent| !parent.starts_with(&real_dir)) {
            continue;
        }
        match std::fs::remove_file(&file.path) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(format!("deleting {}: {err}", file.path.display())),
        }
        let mut folder = file.path.parent();
        while let Some(at) = folder.filter(|at| at.starts_with(dir) && *at != dir.as_path()) {
            folders.push(at.to_path_buf());
            folder = at.parent();
        }
    }
    let _ = std::fs::remove_file(dir.join(format!(".{}.parts", hex(&status.info_hash))));
    // Deepest first, each only if empty.
    folders.sort_by_key(|folder| std::cmp::Reverse(folder.components().count()));
    folders.dedup();
    for folder in folders {
        let _ = std::fs::remove_dir(&folder);
    }
    Ok(())
}

/// A .torrent file from a URL, at most [`MAX_TORRENT_FILE`] bytes, within 30 s.
async fn fetch(url: &str) -> Result<Vec<u8>, Failure> {
    let client = peer::http_tracker::http_client(None).map_err(Failure::method)?;
    let get = async {
        let mut response = client.get(url).send().await.map_err(|err| format!("fetching {url}: {err}"))?;
        if !response.status().is_success() {
            return Err(format!("fetching {url}: HTTP status {}", response.status().as_u16()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|err| format!("fetching {url}: {err}"))? {
            if body.len() + chunk.len() > MAX_TORRENT_FILE {
                return Err(format!("{url} is over {MAX_TORRENT_FILE} bytes: no torrent file is that large"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    tokio::time::timeout(Duration::from_secs(30), get)
        .await
        .map_err(|_| Failure::method(format!("fetching {url}: no answer within 30 s")))?
        .map_err(Failure::method)
}

#[cfg(test)]
mod tests {
    use peer::events::Status;
    use peer::storage::FileProgress;

    use super::*;

    fn status_of(dir: &Path, files: &[&str]) -> TorrentStatus {
        let files = files
            .iter()
            .map(|path| FileProgress { path: dir.join(path), length: 1, done: 1, priority: Priority::Normal })
            .collect();
        TorrentStatus {
            info_hash: [7; 20],
            name: "album".to_owned(),
            state: State::Seeding,
            size: 2,
            status: Status {
                have: 1,
                total: 1,
                downloaded: 0,
                uploaded: 0,
                left: 0,
                download_rate: 0,
                upload_rate: 0,
                peers: 0,
                sources: peer::sources::SourceCounts::default(),
            },
            peers: Vec::new(),
            files,
            trackers: Vec::new(),
            upload_limit: None,
            download_limit: None,
            dir: dir.to_path_buf(),
            piece_length: 16384,
            private: false,
        }
    }

    /// `delete-local-data` deletes the torrent's files and the folders they leave empty, and nothing that a
    /// symbolic link inside the download folder leads out to.
    #[test]
    fn deleting_a_torrents_data_stays_inside_its_folder() {
        let work = tempfile::tempdir().expect("tempdir");
        let dir = work.path().join("downloads");
        let outside = work.path().join("outside");
        std::fs::create_dir_all(dir.join("album/disc 1")).expect("mkdir");
        std::fs::create_dir_all(&outside).expect("mkdir");
        std::fs::write(dir.join("album/disc 1/one.bin"), b"1").expect("write");
        std::fs::write(dir.join("album/two.bin"), b"2").expect("write");
        std::fs::write(dir.join("album/.keep-me"), b"not the torrent's").expect("write");
        std::fs::write(dir.join(format!(".{}.parts", "07".repeat(20))), b"parts").expect("write");
        std::fs::write(outside.join("victim.bin"), b"v").expect("write");
        std::os::unix::fs::symlink(&outside, dir.join("evil")).expect("symlink");

        let status = status_of(&dir, &["album/disc 1/one.bin", "album/two.bin", "evil/victim.bin"]);
        delete_data(&status).expect("deleted");
        assert!(!dir.join("album/disc 1").exists(), "an emptied folder goes");
        assert!(!dir.join("album/two.bin").exists());
        assert!(dir.join("album/.keep-me").exists(), "a file not the torrent's stays, and so its folder");
        assert!(!dir.join(format!(".{}.parts", "07".repeat(20))).exists(), "the part file goes");
        assert!(outside.join("victim.bin").exists(), "nothing through a link out of the folder");
        assert!(dir.exists());
    }
}
