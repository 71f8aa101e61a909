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

use crate::create_v2::{self, MetaVersion};
use crate::error::CreateError;
use crate::hashing::{DataFile, Feed, OnReadError, PieceResult, hash_feed, hash_pieces};
use crate::infohash::InfoHash;
use crate::nodes::{MAX_NODES, check_node};
use crate::path::check_component;
use crate::torrent::{FileEntry, Info, Torrent};
use crate::walk::walk_folder;
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
    /// BEP 5 `nodes`: DHT nodes (host, port) to bootstrap from, written in this order. Each must pass
    /// [`check_node`](crate::check_node); at most [`MAX_NODES`](crate::MAX_NODES).
    pub nodes: Vec<(String, u16)>,
    /// Hashing threads; 0 means one per core.
    pub threads: usize,
    /// v1 (the default), v2-only or hybrid (BEP 52).
    pub meta_version: MetaVersion,
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
    let name = input_name(input)?;
    if let Some(file) = single_file(input)? {
        return Ok(SourceTree { name, single_file: true, files: vec![(Vec::new(), file)] });
    }
    let feed = Feed::listing_only();
    let components = walk_folder(input, &feed, &|_| {})?;
    feed.close(true);
    let files: Vec<_> = components.into_iter().zip(feed.into_files()).collect();
    if files.is_empty() {
        return Err(CreateError::Empty { path: input.to_owned() });
    }
    Ok(SourceTree { name, single_file: false, files })
}

/// The torrent's default name for `input`: the file's or folder's own name.
pub fn input_name(input: &Path) -> Result<String, CreateError> {
    own_name(input).map_err(|source| CreateError::Io { path: input.to_owned(), source })
}

/// `input` as the one file of a single-file torrent, `None` for a folder.
fn single_file(input: &Path) -> Result<Option<DataFile>, CreateError> {
    let metadata = std::fs::metadata(input).map_err(|source| CreateError::Io { path: input.to_owned(), source })?;
    if metadata.is_file() {
        return Ok(Some(DataFile { path: input.to_owned(), length: metadata.len() }));
    }
    if !metadata.is_dir() {
        return Err(CreateError::BadInput { path: input.to_owned(), reason: "neither a file nor a folder".into() });
    }
    Ok(None)
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

/// What [`create_from_path`] reports while it works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The walk found files holding this many more bytes.
    Found(u64),
    /// This many more bytes have been hashed.
    Hashed(u64),
}

/// Hashes `tree` and writes the torrent. `progress` gets the bytes hashed since its last call.
pub fn create(
    tree: &SourceTree,
    options: &CreateOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Created, CreateError> {
    checked_nodes(options)?;
    let total = tree.total_length();
    if total == 0 {
        let path = tree.files.first().map(|(_, file)| file.path.clone()).unwrap_or_default();
        return Err(CreateError::Empty { path });
    }
    let piece_length = checked_piece_length(options.piece_length.unwrap_or_else(|| auto_piece_length(total)))?;
    let name = checked_name(options, &tree.name)?;
    if options.meta_version != MetaVersion::V1 {
        return create_v2::create(tree, options, &name, piece_length, hashing_threads(options), progress);
    }
    let data: Vec<DataFile> = tree.files.iter().map(|(_, file)| file.clone()).collect();
    let results = hash_pieces(&data, piece_length, hashing_threads(options), OnReadError::Stop, progress);
    let hashes = all_hashed(results)?;
    build(tree, options, name, piece_length, hashes)
}

/// Makes a torrent of the file or folder `input`. For a folder with the piece length given, files
/// are hashed as the walk finds them; otherwise the walk comes first (the automatic piece length
/// depends on the total size).
pub fn create_from_path(
    input: &Path,
    options: &CreateOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Created, CreateError> {
    checked_nodes(options)?;
    let piece_length = match options.piece_length {
        // v2 lists files in tree order, not walk order: the walk comes first.
        Some(piece_length) if options.meta_version == MetaVersion::V1 && single_file(input)?.is_none() => {
            checked_piece_length(piece_length)?
        }
        _ => {
            let tree = collect_files(input)?;
            progress(Progress::Found(tree.total_length()));
            return create(&tree, options, &|bytes| progress(Progress::Hashed(bytes)));
        }
    };
    let own_name = input_name(input)?;
    let name = checked_name(options, &own_name)?;

    let feed = Feed::streaming(piece_length);
    let (walked, results) = std::thread::scope(|scope| {
        let walker = scope.spawn(|| {
            // Closes the feed even if the walk unwinds, so that no hasher waits for files forever.
            let _closer = CloseOnDrop(&feed);
            let walked = walk_folder(input, &feed, &|bytes| progress(Progress::Found(bytes)));
            feed.close(walked.is_ok());
            walked
        });
        let hashed = |bytes| progress(Progress::Hashed(bytes));
        let results = hash_feed(&feed, piece_length, hashing_threads(options), OnReadError::Stop, &hashed, &|| false);
        match walker.join() {
            Ok(walked) => (walked, results),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    });
    let components = walked?;
    if components.is_empty() {
        return Err(CreateError::Empty { path: input.to_owned() });
    }
    let hashes = all_hashed(results)?;
    let files: Vec<_> = components.into_iter().zip(feed.into_files()).collect();
    let tree = SourceTree { name: own_name, single_file: false, files };
    if tree.total_length() == 0 {
        return Err(CreateError::Empty { path: input.to_owned() });
    }
    build(&tree, options, name, piece_length, hashes)
}

struct CloseOnDrop<'a>(&'a Feed);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close(false);
    }
}

fn checked_piece_length(piece_length: u64) -> Result<u64, CreateError> {
    if piece_length.is_power_of_two() && (MIN_PIECE_LENGTH..=MAX_PIECE_LENGTH).contains(&piece_length) {
        Ok(piece_length)
    } else {
        Err(CreateError::BadPieceLength(piece_length))
    }
}

fn checked_name(options: &CreateOptions, own_name: &str) -> Result<String, CreateError> {
    let name = options.name.clone().unwrap_or_else(|| own_name.to_owned());
    check_component(&name).map_err(|reason| CreateError::BadName { name: name.clone(), reason })?;
    Ok(name)
}

/// The DHT nodes are checked before any hashing, not after minutes of it.
fn checked_nodes(options: &CreateOptions) -> Result<(), CreateError> {
    if options.nodes.len() > MAX_NODES {
        return Err(CreateError::BadNode {
            node: format!("list ({} entries)", options.nodes.len()),
            reason: "more than 1000 nodes",
        });
    }
    for (host, port) in &options.nodes {
        check_node(host, *port).map_err(|reason| CreateError::BadNode { node: format!("{host:?}:{port}"), reason })?;
    }
    Ok(())
}

fn hashing_threads(options: &CreateOptions) -> usize {
    match options.threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    }
}

fn all_hashed(results: Vec<PieceResult>) -> Result<Vec<[u8; 20]>, CreateError> {
    results
        .into_iter()
        .map(|result| result.map_err(|err| CreateError::Io { path: err.path, source: err.source }))
        .collect()
}

/// Encodes the torrent of `tree` with its piece hashes.
fn build(
    tree: &SourceTree,
    options: &CreateOptions,
    name: String,
    piece_length: u64,
    hashes: Vec<[u8; 20]>,
) -> Result<Created, CreateError> {
    let total = tree.total_length();
    let pieces = hashes.concat();

    let all_urls: Vec<&String> = options.announce_tiers.iter().flatten().collect();
    let tiers: Vec<&Vec<String>> = options.announce_tiers.iter().filter(|tier| !tier.is_empty()).collect();

    // Keys in byte order at every level (BEP 3's canonical form); the `info` span is recorded as it
    // is written, since the info-hash covers exactly those bytes.
    let mut out = Encoder(Vec::with_capacity(pieces.len() + tree.files.len() * 64 + 1024));
    top_level_head(&mut out, options);
    out.key("info");
    let info_start = out.0.len();
    out.raw(b"d");
    if tree.single_file {
        out.key("length");
        out.uint(total);
    } else {
        out.key("files");
        out.raw(b"l");
        for (path, file) in &tree.files {
            out.raw(b"d");
            out.key("length");
            out.uint(file.length);
            out.key("path");
            out.str_list(path.iter().map(String::as_str));
            out.raw(b"e");
        }
        out.raw(b"e");
    }
    out.key_str("name", &name);
    out.key("piece length");
    out.uint(piece_length);
    out.key("pieces");
    out.bytes(&pieces);
    if options.private {
        out.key("private");
        out.int(1);
    }
    if let Some(source) = &options.source {
        out.key_str("source", source);
    }
    out.raw(b"e");
    let info_span = info_start..out.0.len();
    top_level_nodes(&mut out, options);
    top_level_tail(&mut out, options);
    let bytes = out.0;
    let info_hash = InfoHash(Sha1::digest(&bytes[info_span.clone()]).into());
    let info_bytes = bytes[info_span].into();
    let files = tree
        .files
        .iter()
        .map(|(path, file)| FileEntry { path: path.clone(), length: file.length, pad: false })
        .collect();
    let info =
        Info::from_parts(name, piece_length, hashes, options.private, options.source.clone(), files, tree.single_file);
    let torrent = Torrent {
        announce: all_urls.first().map(|url| (*url).clone()),
        announce_list: if all_urls.len() > 1 { tiers.into_iter().cloned().collect() } else { Vec::new() },
        comment: options.comment.clone(),
        created_by: options.created_by.clone(),
        creation_date: options.creation_date,
        url_list: options.web_seeds.clone(),
        nodes: options.nodes.clone(),
        info,
        info_hash,
        info_bytes,
        v2: None,
    };
    Ok(Created { bytes, torrent })
}

/// Opens the top-level dictionary and writes the keys that sort before `info`.
pub(crate) fn top_level_head(out: &mut Encoder, options: &CreateOptions) {
    let all_urls: Vec<&String> = options.announce_tiers.iter().flatten().collect();
    out.raw(b"d");
    if let Some(url) = all_urls.first() {
        out.key_str("announce", url);
    }
    if all_urls.len() > 1 {
        out.key("announce-list");
        out.raw(b"l");
        for tier in options.announce_tiers.iter().filter(|tier| !tier.is_empty()) {
            out.str_list(tier.iter().map(String::as_str));
        }
        out.raw(b"e");
    }
    if let Some(comment) = &options.comment {
        out.key_str("comment", comment);
    }
    if let Some(created_by) = &options.created_by {
        out.key_str("created by", created_by);
    }
    if let Some(date) = options.creation_date {
        out.key("creation date");
        out.int(date);
    }
}

/// Writes `nodes` (BEP 5), which sorts after `info` and before `piece layers`, when there are any.
pub(crate) fn top_level_nodes(out: &mut Encoder, options: &CreateOptions) {
    if options.nodes.is_empty() {
        return;
    }
    out.key("nodes");
    out.raw(b"l");
    for (host, port) in &options.nodes {
        out.raw(b"l");
        out.bytes(host.as_bytes());
        out.uint(u64::from(*port));
        out.raw(b"e");
    }
    out.raw(b"e");
}

/// Writes the keys that sort after `info` (and `nodes` and `piece layers`) and closes the top-level dictionary.
pub(crate) fn top_level_tail(out: &mut Encoder, options: &CreateOptions) {
    match options.web_seeds.as_slice() {
        [] => {}
        [one] => out.key_str("url-list", one),
        many => {
            out.key("url-list");
            out.str_list(many.iter().map(String::as_str));
        }
    }
    out.raw(b"e");
}

/// Writes bencode values into a buffer.
pub(crate) struct Encoder(pub(crate) Vec<u8>);

impl Encoder {
    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        self.uint_digits(bytes.len() as u64);
        self.0.push(b':');
        self.0.extend_from_slice(bytes);
    }

    pub(crate) fn key(&mut self, key: &str) {
        self.bytes(key.as_bytes());
    }

    pub(crate) fn key_str(&mut self, key: &str, value: &str) {
        self.key(key);
        self.bytes(value.as_bytes());
    }

    pub(crate) fn str_list<'s>(&mut self, items: impl Iterator<Item = &'s str>) {
        self.0.push(b'l');
        for item in items {
            self.bytes(item.as_bytes());
        }
        self.0.push(b'e');
    }

    pub(crate) fn uint(&mut self, value: u64) {
        self.0.push(b'i');
        self.uint_digits(value);
        self.0.push(b'e');
    }

    pub(crate) fn int(&mut self, value: i64) {
        self.0.push(b'i');
        if value < 0 {
            self.0.push(b'-');
        }
        self.uint_digits(value.unsigned_abs());
        self.0.push(b'e');
    }

    fn uint_digits(&mut self, mut value: u64) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        self.0.extend_from_slice(&digits[at..]);
    }
}

#[cfg(test)]
#[path = "create_tests.rs"]
mod tests;
