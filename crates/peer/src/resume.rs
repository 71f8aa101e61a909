//! Fast resume: the pieces of a torrent known to be verified on disk, kept with the size and modification time
//! of each of its files when that was so. A restart whose files still have exactly those sizes and times trusts
//! the pieces without reading the data; any difference (a file changed, grown, shrunk, missing, or touched) and
//! the whole torrent is checked from its bytes, as libtorrent does with its resume data.
//!
//! The file is bencoded (`DIR/.peer-resume/INFOHASH.resume`, beside the data it describes):
//!
//! ```text
//! d 6:format   17:peer fast resume 1
//!   9:info-hash 20:<v1 info-hash, or the v2 one truncated: the swarm's>
//!   6:pieces   i<piece count>e
//!   4:have     <bitfield: ceil(count / 8) bytes, spare bits zero>
//!   5:files    l l i<size>e i<mtime seconds>e i<mtime nanoseconds>e e ... e   (an empty list: no such file)
//! e
//! ```
//!
//! Decoding is strict (every field present, of its type and range; nothing trusted that does not describe this
//! torrent), and any error names the field: a bad file is reported and ignored, and the torrent is checked. The
//! file is written to a temporary name, synced and renamed over the old one, so that a crash at any moment
//! leaves the old state or the new, never a mix. It is written after the start-up check, on completion and at a
//! clean exit: while a download writes, the files' times move past the state's, so a crash then leads to a full
//! check, never to trusting a piece whose bytes did not reach the file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use bencode::Value;
use peer_wire::Bitfield;

/// The `format` field of the state file.
pub const FORMAT: &str = "peer fast resume 1";
/// The state file is refused past this size (a torrent of millions of pieces and files stays far below it).
pub const MAX_RESUME_LEN: usize = 64 << 20;
/// The folder below the download folder that holds the state files.
pub const RESUME_DIR: &str = ".peer-resume";

/// A file's size and modification time, as the state records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    pub size: u64,
    /// Seconds and nanoseconds since the Unix epoch.
    pub mtime: (i64, u32),
}

impl FileStamp {
    /// The stamp of `path` now; `None` when it does not exist (or is not a file).
    #[must_use]
    pub fn of(path: &Path) -> Option<FileStamp> {
        let meta = std::fs::metadata(path).ok().filter(std::fs::Metadata::is_file)?;
        let mtime = meta.modified().ok()?;
        let since = match mtime.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(after) => (i64::try_from(after.as_secs()).ok()?, after.subsec_nanos()),
            Err(before) => {
                let before = before.duration();
                let secs = i64::try_from(before.as_secs()).ok()?;
                match before.subsec_nanos() {
                    0 => (-secs, 0),
                    nanos => (-secs - 1, 1_000_000_000 - nanos),
                }
            }
        };
        Some(FileStamp { size: meta.len(), mtime: since })
    }
}

/// One torrent's resume state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeState {
    /// The info-hash the swarm goes by.
    pub info_hash: [u8; 20],
    /// The pieces verified on disk.
    pub have: Bitfield,
    /// Per file of the torrent, in its order (pad files included, as `None`): its stamp when `have` was true.
    pub files: Vec<Option<FileStamp>>,
}

/// Why a state file is not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResumeError {
    #[error("it is not bencoded: {0}")]
    Bencode(#[from] bencode::BencodeError),
    #[error("it is {0} bytes, more than the {MAX_RESUME_LEN}-byte cap")]
    TooLarge(usize),
    #[error("the field `{field}` {problem}")]
    Field { field: &'static str, problem: String },
    #[error("it is for another torrent ({0})")]
    OtherTorrent(String),
    #[error("it describes {got} pieces, the torrent has {expected}")]
    PieceCount { got: u32, expected: u32 },
    #[error("it describes {got} files, the torrent has {expected}")]
    FileCount { got: usize, expected: usize },
    #[error("{path} changed since (size {was} → {now}, or its modification time)")]
    Changed { path: String, was: String, now: String },
}

fn field(field: &'static str, problem: impl Into<String>) -> ResumeError {
    ResumeError::Field { field, problem: problem.into() }
}

impl ResumeState {
    /// The bencoded state file.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let files = self
            .files
            .iter()
            .map(|stamp| match stamp {
                None => Value::List(Vec::new()),
                Some(FileStamp { size, mtime: (secs, nanos) }) => Value::List(vec![
                    Value::Int(i64::try_from(*size).unwrap_or(i64::MAX)),
                    Value::Int(*secs),
                    Value::Int(i64::from(*nanos)),
                ]),
            })
            .collect();
        Value::Dict(vec![
            (b"format", Value::Bytes(FORMAT.as_bytes())),
            (b"info-hash", Value::Bytes(&self.info_hash)),
            (b"pieces", Value::Int(i64::from(self.have.len()))),
            (b"have", Value::Bytes(self.have.as_bytes())),
            (b"files", Value::List(files)),
        ])
        .to_bytes()
    }

    /// Reads a state file, whatever torrent it describes.
    ///
    /// # Errors
    ///
    /// A file that is not bencoded, too large, or lacks a field or has one of the wrong type or range.
    pub fn decode(bytes: &[u8]) -> Result<ResumeState, ResumeError> {
        if bytes.len() > MAX_RESUME_LEN {
            return Err(ResumeError::TooLarge(bytes.len()));
        }
        let value = bencode::decode_exact(bytes)?;
        let get = |name: &'static str| value.get(name.as_bytes()).ok_or_else(|| field(name, "is missing"));
        if get("format")?.as_bytes() != Some(FORMAT.as_bytes()) {
            return Err(field("format", format!("is not \"{FORMAT}\"")));
        }
        let info_hash: [u8; 20] = get("info-hash")?
            .as_bytes()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| field("info-hash", "is not 20 bytes"))?;
        let pieces = get("pieces")?
            .as_int()
            .and_then(|count| u32::try_from(count).ok())
            .ok_or_else(|| field("pieces", "is not a piece count"))?;
        let have_bytes = get("have")?.as_bytes().ok_or_else(|| field("have", "is not a byte string"))?;
        let have = Bitfield::from_bytes(have_bytes, pieces).map_err(|err| field("have", err.to_string()))?;
        let listed = get("files")?.as_list().ok_or_else(|| field("files", "is not a list"))?;
        let mut files = Vec::with_capacity(listed.len());
        for entry in listed {
            let entry = entry.as_list().ok_or_else(|| field("files", "holds something other than lists"))?;
            let stamp = match entry {
                [] => None,
                [size, secs, nanos] => {
                    let size = size.as_int().and_then(|size| u64::try_from(size).ok());
                    let secs = secs.as_int();
                    let nanos =
                        nanos.as_int().and_then(|nanos| u32::try_from(nanos).ok()).filter(|&n| n < 1_000_000_000);
                    match (size, secs, nanos) {
                        (Some(size), Some(secs), Some(nanos)) => Some(FileStamp { size, mtime: (secs, nanos) }),
                        _ => return Err(field("files", "holds a stamp out of range")),
                    }
                }
                _ => return Err(field("files", "holds a stamp that is not [size, seconds, nanoseconds]")),
            };
            files.push(stamp);
        }
        Ok(ResumeState { info_hash, have, files })
    }

    /// The pieces to trust for the torrent `info_hash` of `pieces` pieces whose files (in order) are `paths`, as
    /// they stand now.
    ///
    /// # Errors
    ///
    /// The state is another torrent's, of another shape, or a file's stamp changed: the torrent is to be checked.
    pub fn trusted(
        &self,
        info_hash: &[u8; 20],
        pieces: u32,
        paths: &[Option<PathBuf>],
    ) -> Result<Bitfield, ResumeError> {
        if self.info_hash != *info_hash {
            return Err(ResumeError::OtherTorrent(hex(&self.info_hash)));
        }
        if self.have.len() != pieces {
            return Err(ResumeError::PieceCount { got: self.have.len(), expected: pieces });
        }
        if self.files.len() != paths.len() {
            return Err(ResumeError::FileCount { got: self.files.len(), expected: paths.len() });
        }
        for (was, path) in self.files.iter().zip(paths) {
            let Some(path) = path else { continue };
            let now = FileStamp::of(path);
            if now != *was {
                let size =
                    |stamp: &Option<FileStamp>| stamp.map_or("missing".to_owned(), |stamp| stamp.size.to_string());
                return Err(ResumeError::Changed { path: path.display().to_string(), was: size(was), now: size(&now) });
            }
        }
        Ok(self.have.clone())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Where the state of `info_hash` is kept for a download folder `dir`.
#[must_use]
pub fn path_for(dir: &Path, info_hash: &[u8; 20]) -> PathBuf {
    dir.join(RESUME_DIR).join(format!("{}.resume", hex(info_hash)))
}

/// Reads the state file at `path`: `Ok(None)` when there is none.
///
/// # Errors
///
/// A file that cannot be read or decoded.
pub fn load(path: &Path) -> Result<Option<ResumeState>, String> {
    match std::fs::metadata(path) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err.to_string()),
        Ok(meta) if meta.len() > MAX_RESUME_LEN as u64 => {
            return Err(ResumeError::TooLarge(usize::try_from(meta.len()).unwrap_or(usize::MAX)).to_string());
        }
        Ok(_) => {}
    }
    let bytes = std::fs::read(path).map_err(|err| err.to_string())?;
    ResumeState::decode(&bytes).map(Some).map_err(|err| err.to_string())
}

/// Writes `state` to `path` atomically: a temporary file beside it, synced, renamed over it, and the folder
/// synced, so that a crash leaves either the old state or the new.
///
/// # Errors
///
/// Any I/O error, naming the file.
pub fn save(path: &Path, state: &ResumeState) -> Result<(), String> {
    write_atomically(path, &state.encode())
}

/// Writes `bytes` to `path` atomically: a temporary file of its own beside it (two writers of one path at once
/// never write into each other's), synced, renamed over it, and the folder synced, so that a crash at any moment
/// leaves either the old file or the new.
///
/// # Errors
///
/// Any I/O error, naming the file.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let folder = path.parent().ok_or_else(|| format!("{} has no folder", path.display()))?;
    std::fs::create_dir_all(folder).map_err(|err| format!("creating {}: {err}", folder.display()))?;
    static SAVES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let save = SAVES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let extension = path.extension().map_or(String::new(), |ext| format!("{}.", ext.to_string_lossy()));
    let temporary = path.with_extension(format!("{extension}{}.{save}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        std::fs::File::open(folder)?.sync_all()
    };
    write().map_err(|err| {
        let _ = std::fs::remove_file(&temporary);
        format!("writing {}: {err}", path.display())
    })
}

/// The stamps of `paths` now (`None` for a pad file or a missing one).
#[must_use]
pub fn stamps(paths: &[Option<PathBuf>]) -> Vec<Option<FileStamp>> {
    paths.iter().map(|path| path.as_deref().and_then(FileStamp::of)).collect()
}

#[cfg(test)]
#[path = "resume_tests.rs"]
mod tests;
