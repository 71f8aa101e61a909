//! A watched folder (`peer --watch DIR`), as transmission-daemon's `watch-dir`: a `.torrent` file that appears
//! there is added to the session and renamed `NAME.torrent.added`; one that does not parse is renamed
//! `NAME.torrent.invalid`, with the reason logged; one already in the session is renamed `.added` too (it is
//! there). A file is read only once its size and modification time held still over one look, so that a file
//! still being copied in is not taken half-written.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

use crate::events::Event;
use crate::session::Session;
use crate::torrent::{TorrentConfig, TorrentError};

/// How often the folder is looked at.
pub const LOOK_EVERY: Duration = Duration::from_secs(1);
/// Entries of the folder looked at per look: a folder of a million files costs one look's worth at a time.
const MAX_ENTRIES: usize = 10_000;
/// The largest .torrent read; anything larger is refused as invalid.
const MAX_TORRENT_FILE: u64 = 64 << 20;

/// What became of a file the watch took up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// Added, under this info-hash (renamed `.added`).
    Added([u8; 20]),
    /// In the session already (renamed `.added`).
    Duplicate([u8; 20]),
    /// Not a torrent: why (renamed `.invalid`).
    Invalid(String),
}

/// Watches `folder` for as long as the task runs: each new .torrent is added to `session` as `config` says, its
/// events sent to `events`.
pub async fn watch(
    session: Arc<Session>,
    folder: PathBuf,
    config: Arc<TorrentConfig>,
    events: mpsc::UnboundedSender<([u8; 20], Event)>,
) {
    let mut watch = Watch::default();
    loop {
        for (path, taken) in watch.look(&folder, &session, &config, &events) {
            match taken {
                Taken::Added(hash) => tracing::info!(file = %path.display(), "watch folder: added {}", hex(&hash)),
                Taken::Duplicate(_) => tracing::info!(file = %path.display(), "watch folder: already in the session"),
                Taken::Invalid(reason) => {
                    tracing::warn!(file = %path.display(), "watch folder: not a torrent: {reason}")
                }
            }
        }
        tokio::time::sleep(LOOK_EVERY).await;
    }
}

/// What the last look saw of each candidate: its size and modification time.
#[derive(Debug, Default)]
pub struct Watch {
    seen: HashMap<PathBuf, (u64, Option<SystemTime>)>,
}

impl Watch {
    /// One look at `folder`: every `.torrent` file that held still since the last look is taken up.
    pub fn look(
        &mut self,
        folder: &Path,
        session: &Session,
        config: &Arc<TorrentConfig>,
        events: &mpsc::UnboundedSender<([u8; 20], Event)>,
    ) -> Vec<(PathBuf, Taken)> {
        let Ok(entries) = std::fs::read_dir(folder) else { return Vec::new() };
        let mut now = HashMap::new();
        let mut taken = Vec::new();
        for entry in entries.take(MAX_ENTRIES).filter_map(Result::ok) {
            let path = entry.path();
            let is_torrent = path.extension().is_some_and(|extension| extension.eq_ignore_ascii_case("torrent"));
            let Ok(metadata) = entry.metadata() else { continue };
            if !is_torrent || !metadata.is_file() {
                continue;
            }
            let stamp = (metadata.len(), metadata.modified().ok());
            if self.seen.get(&path) != Some(&stamp) {
                // New, or still changing: looked at again next time.
                now.insert(path, stamp);
                continue;
            }
            let result = take(&path, stamp.0, session, config, events);
            let suffix = if matches!(result, Taken::Invalid(_)) { "invalid" } else { "added" };
            let mut renamed = path.clone().into_os_string();
            renamed.push(format!(".{suffix}"));
            if let Err(err) = std::fs::rename(&path, &renamed) {
                // Not renamed, it would be taken again next time: leave it be.
                tracing::warn!(file = %path.display(), "watch folder: could not rename it: {err}");
                now.insert(path.clone(), stamp);
            }
            taken.push((path, result));
        }
        self.seen = now;
        taken
    }
}

fn take(
    path: &Path,
    size: u64,
    session: &Session,
    config: &Arc<TorrentConfig>,
    events: &mpsc::UnboundedSender<([u8; 20], Event)>,
) -> Taken {
    if size > MAX_TORRENT_FILE {
        return Taken::Invalid(format!("{size} bytes: no torrent file is that large"));
    }
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) => return Taken::Invalid(format!("reading it: {err}")),
    };
    let torrent = match metainfo::Torrent::from_bytes_any(&bytes) {
        Ok(torrent) => torrent,
        Err(err) => return Taken::Invalid(err.to_string()),
    };
    let hash = torrent.info_hash.0;
    match session.add(torrent, config.clone(), events.clone()) {
        Ok(_) => Taken::Added(hash),
        Err(TorrentError::Duplicate { .. }) => Taken::Duplicate(hash),
        Err(err) => Taken::Invalid(err.to_string()),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
