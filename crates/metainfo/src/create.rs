//! Making a torrent from a file or a folder.
//!
//! Files are listed the way Debian's mktorrent (and imdl, torf) list them, so that the same content and
//! piece length give the same info-hash in every one of these tools:
//! - ordered by the bytes of the whole `/`-joined relative path (`foo.txt` before `foo/bar`, since
//!   `.` < `/`; a per-folder name sort would put `foo/bar` first);
//! - hidden files included; symbolic links followed (to files and to folders; a loop is an error);
//! - empty files kept in `files` with length 0 (they cost no piece bytes);
//! - anything that is neither a file nor a folder (a socket, a broken link) is an error, not skipped.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::bencode;
use crate::error::CreateError;
use crate::hashing::{DataFile, OnReadError, hash_pieces};
use crate::infohash::InfoHash;
use crate::path::check_component;
use crate::torrent::{FileEntry, Info, Torrent};
use sha1::{Digest, Sha1};

/// Smallest piece length we make: one 16 KiB block.
pub const MIN_PIECE_LENGTH: u64 = 1 << 14;
/// Largest piece length we make (mktorrent's `-l 28`).
pub const MAX_PIECE_LENGTH: u64 = 1 << 28;

/// The files a torrent will describe, in piece order.
#[derive(Debug, Clone)]
pub struct SourceTree {
    /// The info `name`: the file's or folder's own name.
    pub name: String,
    pub single_file: bool,
    /// Path components below the folder (empty for a single file) and where to read the bytes.
    pub files: Vec<(Vec<String>, DataFile)>,
}

impl SourceTree {
    pub fn total_length(&self) -> u64 {
        self.files.iter().map(|(_, file)| file.length).sum()
    }
}

/// Everything about the torrent besides its content.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// BEP 12 tiers; the first URL becomes `announce`. `announce-list` is written when there is more
    /// than one URL in all, as mktorrent does.
    pub announce_tiers: Vec<Vec<String>>,
    pub comment: Option<String>,
    pub created_by: Option<String>,
    pub creation_date: Option<i64>,
    /// Replaces the file's or folder's own name as the info `name`.
    pub name: Option<String>,
    /// Bytes per piece; `None` picks one with [`auto_piece_length`].
    pub piece_length: Option<u64>,
    pub private: bool,
    pub source: Option<String>,
    /// BEP 19 `url-list`.
    pub web_seeds: Vec<String>,
    /// Hashing threads; 0 means one per core.
    pub threads: usize,
}

/// A torrent just made: its bytes (canonical bencode) and the model parsed back from them.
#[derive(Debug, Clone)]
pub struct Created {
    pub bytes: Vec<u8>,
    pub torrent: Torrent,
}

/// The piece length mktorrent (1.1 and later) picks for `total` bytes: the smallest 2^n, n from 15 to
/// 23, with total ≤ 50 MiB × 2^(n−15), else 16 MiB. That keeps torrents between about 1,600 and 3,200
/// pieces over most sizes (imdl's rule, about 16·√size, gives fewer, larger pieces on big inputs).
pub fn auto_piece_length(total: u64) -> u64 {
    const MIB: u64 = 1 << 20;
    (15..=23).find(|n| total <= (50 * MIB) << (n - 15)).map_or(1 << 24, |n| 1 << n)
}

/// Lists the files under `input` (a file or a folder) in piece order.
pub fn collect_files(input: &Path) -> Result<SourceTree, CreateError> {
    let io_error = |source| CreateError::Io { path: input.to_owned(), source };
    let metadata = std::fs::metadata(input).map_err(io_error)?;
    let name = own_name(input).map_err(io_error)?;

    if metadata.is_file() {
        let file = DataFile { path: input.to_owned(), length: metadata.len() };
        return Ok(SourceTree { name, single_file: true, files: vec![(Vec::new(), file)] });
    }
    if !metadata.is_dir() {
        return Err(CreateError::BadInput { path: input.to_owned(), reason: "neither a file nor a folder".into() });
    }

    let mut files = Vec::new();
    let root_id = dev_ino(&metadata);
    walk(input, &mut Vec::new(), &mut vec![root_id], &mut files)?;
    if files.is_empty() {
        return Err(CreateError::Empty { path: input.to_owned() });
    }
    files.sort_by_cached_key(|(components, _)| components.join("/"));
    Ok(SourceTree { name, single_file: false, files })
}

/// Appends the files below `dir` to `files`. One `stat` per file at most: the entry's type comes from
/// the directory listing, and only links and folders need more. `ancestors` holds the (device, inode)
/// of every folder above, to catch a link back up the tree.
fn walk(
    dir: &Path,
    prefix: &mut Vec<String>,
    ancestors: &mut Vec<(u64, u64)>,
    files: &mut Vec<(Vec<String>, DataFile)>,
) -> Result<(), CreateError> {
    let io_error = |path: &Path| {
        let path = path.to_owned();
        move |err: std::io::Error| CreateError::BadInput { path, reason: err.to_string() }
    };
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let path = entry.path();
        let file_name = entry.file_name();
        let name = file_name.to_str().ok_or_else(|| CreateError::BadInput {
            path: path.clone(),
            reason: "file name is not valid UTF-8".into(),
        })?;
        check_component(name).map_err(|reason| CreateError::BadInput { path: path.clone(), reason: reason.into() })?;

        let mut file_type = entry.file_type().map_err(io_error(&path))?;
        let mut metadata = None;
        if file_type.is_symlink() {
            let target = std::fs::metadata(&path).map_err(|err| CreateError::BadInput {
                path: path.clone(),
                reason: format!("broken symbolic link ({err})"),
            })?;
            file_type = target.file_type();
            metadata = Some(target);
        }
        if file_type.is_dir() {
            let metadata = match metadata {
                Some(metadata) => metadata,
                None => entry.metadata().map_err(io_error(&path))?,
            };
            let id = dev_ino(&metadata);
            if ancestors.contains(&id) {
                return Err(CreateError::BadInput { path, reason: "symbolic link loop".into() });
            }
            ancestors.push(id);
            prefix.push(name.to_owned());
            walk(&path, prefix, ancestors, files)?;
            prefix.pop();
            ancestors.pop();
        } else if file_type.is_file() {
            let length = match metadata {
                Some(metadata) => metadata.len(),
                None => entry.metadata().map_err(io_error(&path))?.len(),
            };
            let mut components = prefix.clone();
            components.push(name.to_owned());
            files.push((components, DataFile { path, length }));
        } else {
            return Err(CreateError::BadInput { path, reason: "not a regular file (socket, device or fifo)".into() });
        }
    }
    Ok(())
}

fn dev_ino(metadata: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (metadata.dev(), metadata.ino())
}

/// The last component of `input`, resolving `.`, `..` and trailing slashes through the real path.
fn own_name(input: &Path) -> std::io::Result<String> {
    let named = match input.file_name() {
        Some(name) => PathBuf::from(name),
        None => PathBuf::from(std::fs::canonicalize(input)?.file_name().unwrap_or_default()),
    };
    named
        .to_str()
        .map(str::to_owned)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "name is not valid UTF-8"))
}

/// Hashes `tree` and writes the torrent. `progress` gets the bytes hashed since its last call.
pub fn create(
    tree: &SourceTree,
    options: &CreateOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Created, CreateError> {
    let total = tree.total_length();
    if total == 0 {
        let path = tree.files.first().map(|(_, file)| file.path.clone()).unwrap_or_default();
        return Err(CreateError::Empty { path });
    }
    let piece_length = options.piece_length.unwrap_or_else(|| auto_piece_length(total));
    if !piece_length.is_power_of_two() || !(MIN_PIECE_LENGTH..=MAX_PIECE_LENGTH).contains(&piece_length) {
        return Err(CreateError::BadPieceLength(piece_length));
    }
    let name = options.name.clone().unwrap_or_else(|| tree.name.clone());
    check_component(&name).map_err(|reason| CreateError::BadName { name: name.clone(), reason })?;

    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let data: Vec<DataFile> = tree.files.iter().map(|(_, file)| file.clone()).collect();
    let mut hashes = Vec::with_capacity(total.div_ceil(piece_length) as usize);
    for result in hash_pieces(&data, piece_length, threads, OnReadError::Stop, progress) {
        hashes.push(result.map_err(|err| CreateError::Io { path: err.path, source: err.source })?);
    }
    let pieces = hashes.concat();

    let info = OutInfo {
        files: (!tree.single_file)
            .then(|| tree.files.iter().map(|(path, file)| OutFile { length: file.length, path }).collect()),
        length: tree.single_file.then_some(total),
        name: &name,
        piece_length,
        pieces: serde_bytes::Bytes::new(&pieces),
        private: options.private.then_some(1),
        source: options.source.as_deref(),
    };
    let all_urls: Vec<&String> = options.announce_tiers.iter().flatten().collect();
    let announce_list =
        (all_urls.len() > 1).then(|| options.announce_tiers.iter().filter(|tier| !tier.is_empty()).collect::<Vec<_>>());
    let url_list = match options.web_seeds.as_slice() {
        [] => None,
        [one] => Some(UrlList::One(one)),
        many => Some(UrlList::Many(many)),
    };
    let out = OutTorrent {
        announce: all_urls.first().map(|url| url.as_str()),
        announce_list,
        comment: options.comment.as_deref(),
        created_by: options.created_by.as_deref(),
        creation_date: options.creation_date,
        info,
        url_list,
    };
    let bytes = serde_bencode::to_bytes(&out).map_err(|err| CreateError::BadInput {
        path: PathBuf::from(&name),
        reason: format!("could not encode the torrent: {err}"),
    })?;
    // The info-hash covers the info bytes exactly as written; the scanner finds them without parsing.
    let info_span = bencode::scan(&bytes).ok().and_then(|scanned| scanned.info_span).ok_or_else(|| {
        CreateError::BadInput { path: PathBuf::from(&name), reason: "the encoded torrent has no info span".into() }
    })?;
    let info_hash = InfoHash(Sha1::digest(&bytes[info_span]).into());
    let files = tree.files.iter().map(|(path, file)| FileEntry { path: path.clone(), length: file.length }).collect();
    let info =
        Info::from_parts(name, piece_length, hashes, options.private, options.source.clone(), files, tree.single_file);
    let torrent = Torrent {
        announce: all_urls.first().map(|url| (*url).clone()),
        announce_list: if all_urls.len() > 1 {
            options.announce_tiers.iter().filter(|tier| !tier.is_empty()).cloned().collect()
        } else {
            Vec::new()
        },
        comment: options.comment.clone(),
        created_by: options.created_by.clone(),
        creation_date: options.creation_date,
        url_list: options.web_seeds.clone(),
        info,
        info_hash,
    };
    Ok(Created { bytes, torrent })
}

// serde_bencode writes struct fields as a dictionary sorted by key bytes: canonical bencode.
#[derive(Serialize)]
struct OutTorrent<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    announce: Option<&'a str>,
    #[serde(rename = "announce-list", skip_serializing_if = "Option::is_none")]
    announce_list: Option<Vec<&'a Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<&'a str>,
    #[serde(rename = "created by", skip_serializing_if = "Option::is_none")]
    created_by: Option<&'a str>,
    #[serde(rename = "creation date", skip_serializing_if = "Option::is_none")]
    creation_date: Option<i64>,
    info: OutInfo<'a>,
    #[serde(rename = "url-list", skip_serializing_if = "Option::is_none")]
    url_list: Option<UrlList<'a>>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum UrlList<'a> {
    One(&'a String),
    Many(&'a [String]),
}

#[derive(Serialize)]
struct OutInfo<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<Vec<OutFile<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    length: Option<u64>,
    name: &'a str,
    #[serde(rename = "piece length")]
    piece_length: u64,
    pieces: &'a serde_bytes::Bytes,
    #[serde(skip_serializing_if = "Option::is_none")]
    private: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
}

#[derive(Serialize)]
struct OutFile<'a> {
    length: u64,
    path: &'a Vec<String>,
}

#[cfg(test)]
#[path = "create_tests.rs"]
mod tests;
