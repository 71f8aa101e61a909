//! What a session keeps so that a restart brings its torrents back as they were ([`crate::session::Session::restore`]):
//! for each torrent, in the session's state folder, its metainfo as a .torrent file (`INFOHASH.torrent`, once
//! known) and a small bencoded file (`INFOHASH.state`):
//!
//! ```text
//! d 6:format     18:peer torrent state 1
//!   3:dir        <the download folder, the bytes of its path>
//!   6:paused     i0e or i1e
//!   10:sequential i0e or i1e
//!   10:priorities <one byte per file, in its order: 0 skip, 1 low, 2 normal, 3 high>
//!   6:magnet     <the magnet link, while the metadata is not in: then there is no .torrent>
//!   12:upload-limit   i<bytes per second>e    (absent: none of its own)
//!   14:download-limit i<bytes per second>e
//! e
//! ```
//!
//! Decoding is strict and names the bad field; a file that does not read is reported and its torrent left out,
//! never guessed at. Each file is written to a temporary name, synced and renamed, so a crash at any moment leaves
//! the old state or the new. The pieces themselves are the fast-resume state's ([`crate::resume`]), kept beside the
//! data.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use bencode::Value;

use crate::selection::Priority;

/// The `format` field of a state file.
pub const FORMAT: &str = "peer torrent state 1";
/// A state file is refused past this size (one byte per file: far below it).
pub const MAX_STATE_LEN: usize = 16 << 20;
/// A .torrent file in the state folder is refused past this size.
pub const MAX_TORRENT_LEN: u64 = 64 << 20;

/// How one torrent of the session stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorrentState {
    pub dir: PathBuf,
    pub paused: bool,
    pub sequential: bool,
    /// One per file, as the torrent lists them (pad files left out); empty while the metadata is not in.
    pub priorities: Vec<Priority>,
    /// The magnet link, while the metadata is not in.
    pub magnet: Option<String>,
    /// Its own limits, bytes per second.
    pub upload_limit: Option<u64>,
    pub download_limit: Option<u64>,
}

/// Why a state file is not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("it is not bencoded: {0}")]
    Bencode(#[from] bencode::BencodeError),
    #[error("it is {0} bytes, more than the {MAX_STATE_LEN}-byte cap")]
    TooLarge(usize),
    #[error("the field `{field}` {problem}")]
    Field { field: &'static str, problem: String },
}

fn field(field: &'static str, problem: impl Into<String>) -> StateError {
    StateError::Field { field, problem: problem.into() }
}

impl TorrentState {
    /// The bencoded state file.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let priorities: Vec<u8> = self.priorities.iter().map(|priority| priority.level()).collect();
        let mut entries = vec![
            (&b"format"[..], Value::Bytes(FORMAT.as_bytes())),
            (b"dir", Value::Bytes(self.dir.as_os_str().as_bytes())),
            (b"paused", Value::Int(i64::from(self.paused))),
            (b"sequential", Value::Int(i64::from(self.sequential))),
            (b"priorities", Value::Bytes(&priorities)),
        ];
        if let Some(magnet) = &self.magnet {
            entries.push((b"magnet", Value::Bytes(magnet.as_bytes())));
        }
        let rate = |rate: u64| Value::Int(i64::try_from(rate).unwrap_or(i64::MAX));
        if let Some(limit) = self.upload_limit {
            entries.push((b"upload-limit", rate(limit)));
        }
        if let Some(limit) = self.download_limit {
            entries.push((b"download-limit", rate(limit)));
        }
        Value::Dict(entries).to_bytes()
    }

    /// Reads a state file.
    ///
    /// # Errors
    ///
    /// A file that is not bencoded, too large, or lacks a field or has one of the wrong type or range.
    pub fn decode(bytes: &[u8]) -> Result<TorrentState, StateError> {
        if bytes.len() > MAX_STATE_LEN {
            return Err(StateError::TooLarge(bytes.len()));
        }
        let value = bencode::decode_exact(bytes)?;
        let get = |name: &'static str| value.get(name.as_bytes()).ok_or_else(|| field(name, "is missing"));
        if get("format")?.as_bytes() != Some(FORMAT.as_bytes()) {
            return Err(field("format", format!("is not \"{FORMAT}\"")));
        }
        let dir = get("dir")?.as_bytes().filter(|dir| !dir.is_empty()).ok_or_else(|| field("dir", "is not a path"))?;
        if dir.contains(&0) {
            return Err(field("dir", "holds a NUL byte"));
        }
        let flag = |name: &'static str| match get(name)?.as_int() {
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            _ => Err(field(name, "is not 0 or 1")),
        };
        let priorities = get("priorities")?
            .as_bytes()
            .ok_or_else(|| field("priorities", "is not a byte string"))?
            .iter()
            .map(|&level| match level {
                0 => Ok(Priority::Skip),
                1 => Ok(Priority::Low),
                2 => Ok(Priority::Normal),
                3 => Ok(Priority::High),
                _ => Err(field("priorities", format!("holds {level}, not a priority from 0 to 3"))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let magnet = match value.get(b"magnet") {
            None => None,
            Some(link) => Some(link.as_str().ok_or_else(|| field("magnet", "is not text"))?.to_owned()),
        };
        let limit = |name: &'static str| match value.get(name.as_bytes()) {
            None => Ok(None),
            Some(rate) => match rate.as_int().and_then(|rate| u64::try_from(rate).ok()) {
                Some(rate) if rate > 0 => Ok(Some(rate)),
                _ => Err(field(name, "is not a rate in bytes per second")),
            },
        };
        Ok(TorrentState {
            dir: PathBuf::from(std::ffi::OsStr::from_bytes(dir)),
            paused: flag("paused")?,
            sequential: flag("sequential")?,
            priorities,
            magnet,
            upload_limit: limit("upload-limit")?,
            download_limit: limit("download-limit")?,
        })
    }
}

fn hex(bytes: &[u8; 20]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The session's state folder: one pair of files per torrent.
#[derive(Debug, Clone)]
pub struct StateFolder {
    dir: PathBuf,
}

/// One torrent found in the state folder: its info-hash, its state, and its metainfo file when the metadata is in.
pub type Saved = ([u8; 20], TorrentState, Option<Vec<u8>>);

impl StateFolder {
    #[must_use]
    pub fn new(dir: PathBuf) -> StateFolder {
        StateFolder { dir }
    }

    fn state_path(&self, info_hash: &[u8; 20]) -> PathBuf {
        self.dir.join(format!("{}.state", hex(info_hash)))
    }

    fn torrent_path(&self, info_hash: &[u8; 20]) -> PathBuf {
        self.dir.join(format!("{}.torrent", hex(info_hash)))
    }

    /// Keeps how the torrent `info_hash` stands.
    ///
    /// # Errors
    ///
    /// The file cannot be written, naming it.
    pub fn save(&self, info_hash: &[u8; 20], state: &TorrentState) -> Result<(), String> {
        crate::resume::write_atomically(&self.state_path(info_hash), &state.encode())
    }

    /// Keeps the torrent's metainfo (written once: a file already there is left as it is).
    ///
    /// # Errors
    ///
    /// The file cannot be written, naming it.
    pub fn save_torrent(&self, info_hash: &[u8; 20], file: &[u8]) -> Result<(), String> {
        let path = self.torrent_path(info_hash);
        if path.is_file() {
            return Ok(());
        }
        crate::resume::write_atomically(&path, file)
    }

    /// Forgets the torrent `info_hash` (its data stays where it is).
    pub fn forget(&self, info_hash: &[u8; 20]) {
        for path in [self.state_path(info_hash), self.torrent_path(info_hash)] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => tracing::warn!("could not remove {}: {err}", path.display()),
            }
        }
    }

    /// Every torrent kept here, in info-hash order, or why its files are not used (naming the file). A folder that
    /// does not exist holds none.
    ///
    /// # Errors
    ///
    /// The folder cannot be listed.
    pub fn load(&self) -> Result<Vec<Result<Saved, String>>, String> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(format!("reading {}: {err}", self.dir.display())),
        };
        let mut hashes: Vec<[u8; 20]> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let name = entry.file_name();
                let stem = name.to_str()?.strip_suffix(".state")?;
                parse_hex(stem)
            })
            .collect();
        hashes.sort_unstable();
        Ok(hashes.into_iter().map(|hash| self.load_one(&hash)).collect())
    }

    fn load_one(&self, info_hash: &[u8; 20]) -> Result<Saved, String> {
        let path = self.state_path(info_hash);
        let named = |err: String| format!("{}: {err}", path.display());
        let bytes = read_capped(&path, MAX_STATE_LEN as u64).map_err(named)?;
        let state = TorrentState::decode(&bytes).map_err(|err| named(err.to_string()))?;
        let torrent_path = self.torrent_path(info_hash);
        let torrent = match read_capped(&torrent_path, MAX_TORRENT_LEN) {
            Ok(bytes) => Some(bytes),
            Err(_) if state.magnet.is_some() && !torrent_path.exists() => None,
            Err(err) => return Err(format!("{}: {err}", torrent_path.display())),
        };
        Ok((*info_hash, state, torrent))
    }
}

/// 40 lowercase or uppercase hex digits as 20 bytes.
fn parse_hex(text: &str) -> Option<[u8; 20]> {
    let digits = text.as_bytes();
    if digits.len() != 40 {
        return None;
    }
    let value = |digit: u8| char::from(digit).to_digit(16).and_then(|value| u8::try_from(value).ok());
    let mut hash = [0u8; 20];
    for (byte, pair) in hash.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = value(pair[0])? << 4 | value(pair[1])?;
    }
    Some(hash)
}

/// What the writer is asked to do, in order.
enum Job {
    Save([u8; 20], TorrentState),
    Torrent([u8; 20], Vec<u8>),
    Forget([u8; 20]),
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Writes a session's state files on a thread of its own, in the order asked (a pause then a resume leaves the
/// resume's state), so that no control call waits on the disk. Ends with the session.
#[derive(Debug)]
pub(crate) struct StateWriter {
    jobs: std::sync::Mutex<std::sync::mpsc::Sender<Job>>,
}

impl StateWriter {
    /// Starts writing into `folder`.
    ///
    /// # Errors
    ///
    /// The thread cannot be started.
    pub(crate) fn start(folder: StateFolder) -> std::io::Result<StateWriter> {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new().name("session-state".into()).spawn(move || {
            for job in queue {
                let written = match job {
                    Job::Save(hash, state) => folder.save(&hash, &state),
                    Job::Torrent(hash, file) => folder.save_torrent(&hash, &file),
                    Job::Forget(hash) => {
                        folder.forget(&hash);
                        Ok(())
                    }
                    Job::Flush(done) => {
                        let _ = done.send(());
                        Ok(())
                    }
                };
                if let Err(err) = written {
                    tracing::warn!("the session's state: {err}; a restart may not bring this torrent back as it is");
                }
            }
        })?;
        Ok(StateWriter { jobs: std::sync::Mutex::new(jobs) })
    }

    fn send(&self, job: Job) {
        let jobs = self.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = jobs.send(job);
    }

    pub(crate) fn save(&self, info_hash: [u8; 20], state: TorrentState) {
        self.send(Job::Save(info_hash, state));
    }

    pub(crate) fn save_torrent(&self, info_hash: [u8; 20], file: Vec<u8>) {
        self.send(Job::Torrent(info_hash, file));
    }

    pub(crate) fn forget(&self, info_hash: [u8; 20]) {
        self.send(Job::Forget(info_hash));
    }

    /// Returns once everything asked before is written.
    pub(crate) async fn flush(&self) {
        let (done, written) = tokio::sync::oneshot::channel();
        self.send(Job::Flush(done));
        let _ = written.await;
    }
}

/// The bytes of `path`, if it is a file of at most `cap` bytes.
fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|err| err.to_string())?;
    if meta.len() > cap {
        return Err(format!("{} bytes, more than the {cap}-byte cap", meta.len()));
    }
    std::fs::read(path).map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> TorrentState {
        TorrentState {
            dir: PathBuf::from("/srv/down loads"),
            paused: true,
            sequential: false,
            priorities: vec![Priority::Skip, Priority::Low, Priority::Normal, Priority::High],
            magnet: None,
            upload_limit: None,
            download_limit: Some(1_000_000),
        }
    }

    #[test]
    fn golden_encoding_reads_back() {
        let bytes = state().encode();
        assert_eq!(
            bytes,
            b"d3:dir15:/srv/down loads14:download-limiti1000000e6:format20:peer torrent state 16:pausedi1e\
              10:priorities4:\x00\x01\x02\x0310:sequentiali0ee"
                .to_vec()
        );
        assert_eq!(TorrentState::decode(&bytes), Ok(state()));
        let magnet = TorrentState { magnet: Some("magnet:?xt=urn:btih:ab".into()), priorities: Vec::new(), ..state() };
        assert_eq!(TorrentState::decode(&magnet.encode()), Ok(magnet));
    }

    #[test]
    fn bad_fields_are_named() {
        let cases: &[(&[u8], &str)] = &[
            (b"d6:format20:peer torrent state 2e", "format"),
            (b"d3:dir0:6:format20:peer torrent state 16:pausedi0e10:priorities0:10:sequentiali0ee", "dir"),
            (b"d3:dir1:/6:format20:peer torrent state 16:pausedi2e10:priorities0:10:sequentiali0ee", "paused"),
            (b"d3:dir1:/6:format20:peer torrent state 16:pausedi0e10:prioritiesi1e10:sequentiali0ee", "priorities"),
            (b"d3:dir1:/6:format20:peer torrent state 16:pausedi0e10:priorities1:\x0910:sequentiali0ee", "priorities"),
            (b"d3:dir1:/6:format20:peer torrent state 16:pausedi0e10:priorities0:e", "sequential"),
        ];
        for (bytes, named) in cases {
            match TorrentState::decode(bytes) {
                Err(StateError::Field { field, .. }) => assert_eq!(field, *named, "{}", String::from_utf8_lossy(bytes)),
                other => panic!("{}: {other:?}", String::from_utf8_lossy(bytes)),
            }
        }
        assert!(matches!(TorrentState::decode(b"d3:dir"), Err(StateError::Bencode(_))));
    }

    #[test]
    fn a_folder_keeps_each_torrent_and_names_a_bad_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let folder = StateFolder::new(dir.path().join("state"));
        assert_eq!(folder.load(), Ok(Vec::new()), "no folder: no torrent");
        let (one, two, three) = ([1u8; 20], [2u8; 20], [3u8; 20]);
        folder.save(&one, &state()).expect("save");
        folder.save_torrent(&one, b"d4:infod...ee").expect("save the torrent");
        let link = TorrentState { magnet: Some("magnet:?xt=urn:btih:02".into()), priorities: Vec::new(), ..state() };
        folder.save(&two, &link).expect("save");
        std::fs::write(dir.path().join("state").join(format!("{}.state", hex(&three))), b"garbage").expect("write");
        let loaded = folder.load().expect("listed");
        assert_eq!(loaded.len(), 3);
        assert_eq!(loaded[0], Ok((one, state(), Some(b"d4:infod...ee".to_vec()))));
        assert_eq!(loaded[1], Ok((two, link, None)));
        let bad = loaded[2].clone().expect_err("garbage");
        assert!(bad.contains(&hex(&three)) && bad.contains("bencoded"), "{bad}");
        folder.forget(&one);
        assert_eq!(folder.load().expect("listed").len(), 2);
    }
}
