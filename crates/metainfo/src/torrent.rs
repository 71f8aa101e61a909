//! The torrent model (BEP 3 metainfo, BEP 12 announce-list, BEP 19 url-list, BEP 5 `nodes`) and its parser.
//!
//! Parsing is three steps: [`crate::bencode::scan`] bounds the input and finds the raw `info` span;
//! serde_bencode fills plain structs, with serde_path_to_error naming the field that had the wrong type;
//! then [`validate`](Info::validate) checks what the types cannot say (piece count, safe paths).
//!
//! BitTorrent v2 (BEP 52): a torrent with `meta version` 2 also has a `file tree` and top-level `piece layers`,
//! read by [`crate::v2`] into [`Torrent::v2`]. A hybrid has both parts, and its v1 `files` (with BEP 47 pad
//! files) must list the same files as its tree, each starting on a piece boundary. [`Torrent::from_bytes`] reads
//! v1 and hybrid torrents; a v2-only torrent, which has no v1 `pieces`, only through [`Torrent::from_bytes_any`].

use std::collections::HashSet;
use std::path::PathBuf;

use serde::Deserialize;
use serde_bytes::ByteBuf;
use sha1::{Digest, Sha1};
use sha2::Sha256;

use crate::bencode;
use crate::error::MetainfoError;
use crate::infohash::{InfoHash, InfoHashV2};
use crate::nodes::RawNodes;
use crate::path;
use crate::v2::{self, V2Info};

/// Largest piece length accepted when parsing (512 MiB; libtorrent's creator stops at 128 MiB).
pub const MAX_PARSED_PIECE_LENGTH: u64 = 1 << 29;

/// A parsed, validated torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Torrent {
    /// The `announce` URL, if any (trackerless torrents have none).
    pub announce: Option<String>,
    /// BEP 12 tiers, in file order; empty when the key is absent.
    pub announce_list: Vec<Vec<String>>,
    pub comment: Option<String>,
    pub created_by: Option<String>,
    /// Seconds since the Unix epoch.
    pub creation_date: Option<i64>,
    /// BEP 19 web seeds.
    pub url_list: Vec<String>,
    /// BEP 5 DHT nodes (`nodes`: `[host, port]` pairs, the host a DNS name or an IP address), in file order, for a
    /// client to bootstrap its DHT from; empty when the key is absent. Entries that are not a string and a port in
    /// 1..=65535 are skipped, as libtorrent skips them; at most [`crate::MAX_NODES`] are kept
    /// ([`crate::nodes`] has the rules).
    pub nodes: Vec<(String, u16)>,
    pub info: Info,
    /// SHA-1 of the `info` value's bytes exactly as they stand in the file; for a v2-only torrent, the v2
    /// info-hash truncated to 20 bytes (what names its swarm where 20 bytes fit).
    pub info_hash: InfoHash,
    /// The `info` value's bytes exactly as they stand in the file: what BEP 9 serves to peers that have only the
    /// info-hash.
    pub info_bytes: std::sync::Arc<[u8]>,
    /// The v2 part (BEP 52) of a v2-only or hybrid torrent.
    pub v2: Option<V2Info>,
}

/// The SHA-1 of each piece of a v1 or hybrid torrent. A parsed torrent's table is its `info` dictionary's own
/// `pieces` string, seen in place: the hashes are not held twice (a session of ten thousand small torrents
/// would hold another 3 MiB of copies).
#[derive(Clone, Default)]
pub struct V1Hashes {
    bytes: std::sync::Arc<[u8]>,
    start: usize,
    count: usize,
}

impl V1Hashes {
    /// The hashes `raw` (20 bytes each) as they stand in `info_bytes`, if they do (under the `pieces` key);
    /// otherwise a table of their own.
    fn within(info_bytes: &std::sync::Arc<[u8]>, raw: &[u8]) -> V1Hashes {
        let key = format!("6:pieces{}:", raw.len());
        let key = key.as_bytes();
        let found = info_bytes
            .windows(key.len())
            .enumerate()
            .filter(|(_, window)| *window == key)
            .map(|(at, _)| at + key.len())
            .find(|&start| info_bytes.get(start..start + raw.len()) == Some(raw));
        match found {
            Some(start) => V1Hashes { bytes: info_bytes.clone(), start, count: raw.len() / 20 },
            None => V1Hashes { bytes: raw.into(), start: 0, count: raw.len() / 20 },
        }
    }
}

impl std::ops::Deref for V1Hashes {
    type Target = [[u8; 20]];

    fn deref(&self) -> &[[u8; 20]] {
        self.bytes[self.start..self.start + 20 * self.count].as_chunks::<20>().0
    }
}

impl From<Vec<[u8; 20]>> for V1Hashes {
    fn from(hashes: Vec<[u8; 20]>) -> V1Hashes {
        V1Hashes::from(hashes.as_slice())
    }
}

impl From<&[[u8; 20]]> for V1Hashes {
    fn from(hashes: &[[u8; 20]]) -> V1Hashes {
        V1Hashes { bytes: hashes.as_flattened().into(), start: 0, count: hashes.len() }
    }
}

impl PartialEq for V1Hashes {
    fn eq(&self, other: &V1Hashes) -> bool {
        **self == **other
    }
}

impl Eq for V1Hashes {}

impl std::fmt::Debug for V1Hashes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} piece hashes", self.count)
    }
}

/// The `info` dictionary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// File name (single-file) or top folder name (multi-file); one safe path component.
    pub name: String,
    pub piece_length: u64,
    /// The SHA-1 of each piece; shared (a download's storage checks against the same table, not a copy).
    pub pieces: V1Hashes,
    pub private: bool,
    /// `source` tag some private trackers ask for; part of the info-hash.
    pub source: Option<String>,
    /// Single-file torrents have exactly one entry with an empty `path`. A hybrid's BEP 47 pad files are listed
    /// (marked [`FileEntry::pad`]), since the pieces run through them; a v2-only torrent lists its tree's files.
    pub files: Vec<FileEntry>,
    single_file: bool,
}

/// One file of the torrent, in the order the pieces run through them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Components below the torrent's folder; empty for a single-file torrent.
    pub path: Vec<String>,
    pub length: u64,
    /// A BEP 47 pad file (`attr` holds `p`): zeros that align the next file to a piece, never stored.
    pub pad: bool,
}

impl Torrent {
    /// Parses and validates a v1 or hybrid .torrent file's bytes. A v2-only torrent is refused: it has no v1
    /// pieces, which is all a v1 client can download or check.
    pub fn from_bytes(bytes: &[u8]) -> Result<Torrent, MetainfoError> {
        let torrent = Torrent::from_bytes_any(bytes)?;
        if !torrent.has_v1() {
            return Err(MetainfoError::invalid(
                "info.pieces",
                "missing: this is a v2-only torrent (BEP 52), which only `mktorrent --show` reads so far",
            ));
        }
        Ok(torrent)
    }

    /// Parses and validates a v1, hybrid or v2-only .torrent file's bytes.
    pub fn from_bytes_any(bytes: &[u8]) -> Result<Torrent, MetainfoError> {
        let scanned = bencode::scan(bytes)?;
        let info_span = scanned.info_span.ok_or_else(|| MetainfoError::invalid("info", "missing"))?;
        let raw_info = &bytes[info_span.clone()];
        let v1_hash = InfoHash(Sha1::digest(raw_info).into());

        let mut deserializer = serde_bencode::Deserializer::new(bytes);
        let raw: RawTorrent = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
            let field = err.path().to_string();
            MetainfoError::Invalid { field, reason: err.into_inner().to_string() }
        })?;

        let v2 = match raw.info.meta_version {
            None | Some(1) => None,
            Some(2) => {
                let name = utf8("info.name", raw.info.name.clone())?;
                let piece_length = checked_piece_length(raw.info.piece_length)?;
                let top = ::bencode::decode_exact(bytes)?;
                let v2_hash = InfoHashV2(Sha256::digest(raw_info).into());
                Some(v2::parse(raw_info, v2_hash, &name, piece_length, top.get(b"piece layers"))?)
            }
            Some(other) => {
                return Err(MetainfoError::invalid("info.meta version", format!("{other} is not 1 or 2")));
            }
        };
        let info_bytes: std::sync::Arc<[u8]> = raw_info.into();
        let info = Info::from_raw(raw.info, v2.as_ref(), &info_bytes)?;
        let info_hash = match &v2 {
            Some(v2) if info.pieces.is_empty() => v2.info_hash.truncated(),
            _ => v1_hash,
        };
        Ok(Torrent {
            announce: raw.announce.map(lossy),
            announce_list: raw
                .announce_list
                .unwrap_or_default()
                .into_iter()
                .map(|tier| tier.into_iter().map(lossy).collect::<Vec<_>>())
                .filter(|tier| !tier.is_empty())
                .collect(),
            comment: raw.comment.map(lossy),
            created_by: raw.created_by.map(lossy),
            creation_date: raw.creation_date,
            url_list: match raw.url_list {
                None => Vec::new(),
                Some(UrlList::One(url)) if url.is_empty() => Vec::new(),
                Some(UrlList::One(url)) => vec![lossy(url)],
                Some(UrlList::Many(urls)) => urls.into_iter().map(lossy).collect(),
            },
            nodes: raw.nodes.0,
            info,
            info_hash,
            info_bytes,
            v2,
        })
    }

    /// The torrent as a .torrent file again: its keys (announce and its tiers, comment, creator, date, DHT
    /// nodes, web seeds), the `info` dictionary byte for byte (so the info-hash is the same), and for a v2 or
    /// hybrid torrent the piece layers it holds. Keys the parser does not keep are not written; what the file
    /// reads back as is this torrent.
    #[must_use]
    pub fn to_file(&self) -> Vec<u8> {
        use ::bencode::encode_bytes;
        let mut out = Vec::with_capacity(self.info_bytes.len() + 256);
        let text = |key: &[u8], value: &str, out: &mut Vec<u8>| {
            encode_bytes(key, out);
            encode_bytes(value.as_bytes(), out);
        };
        out.push(b'd');
        // Keys in byte order, as bencode wants them.
        if let Some(announce) = &self.announce {
            text(b"announce", announce, &mut out);
        }
        if !self.announce_list.is_empty() {
            encode_bytes(b"announce-list", &mut out);
            out.push(b'l');
            for tier in &self.announce_list {
                out.push(b'l');
                for url in tier {
                    encode_bytes(url.as_bytes(), &mut out);
                }
                out.push(b'e');
            }
            out.push(b'e');
        }
        if let Some(comment) = &self.comment {
            text(b"comment", comment, &mut out);
        }
        if let Some(created_by) = &self.created_by {
            text(b"created by", created_by, &mut out);
        }
        if let Some(date) = self.creation_date {
            encode_bytes(b"creation date", &mut out);
            out.extend_from_slice(format!("i{date}e").as_bytes());
        }
        encode_bytes(b"info", &mut out);
        out.extend_from_slice(&self.info_bytes);
        if !self.nodes.is_empty() {
            encode_bytes(b"nodes", &mut out);
            out.push(b'l');
            for (host, port) in &self.nodes {
                out.push(b'l');
                encode_bytes(host.as_bytes(), &mut out);
                out.extend_from_slice(format!("i{port}e").as_bytes());
                out.push(b'e');
            }
            out.push(b'e');
        }
        let mut layers: Vec<(&[u8; 32], Vec<u8>)> = self
            .v2
            .iter()
            .flat_map(|v2| &v2.files)
            .filter(|file| !file.piece_layer.is_empty())
            .filter_map(|file| file.pieces_root.as_ref().map(|root| (root, file.piece_layer.concat())))
            .collect();
        if !layers.is_empty() {
            layers.sort_by(|a, b| a.0.cmp(b.0));
            layers.dedup_by(|a, b| a.0 == b.0);
            encode_bytes(b"piece layers", &mut out);
            out.push(b'd');
            for (root, layer) in layers {
                encode_bytes(root, &mut out);
                encode_bytes(&layer, &mut out);
            }
            out.push(b'e');
        }
        if !self.url_list.is_empty() {
            encode_bytes(b"url-list", &mut out);
            out.push(b'l');
            for url in &self.url_list {
                encode_bytes(url.as_bytes(), &mut out);
            }
            out.push(b'e');
        }
        out.push(b'e');
        out
    }

    /// Whether the torrent has v1 pieces (a v1 or hybrid torrent).
    pub fn has_v1(&self) -> bool {
        !self.info.pieces.is_empty()
    }

    /// The v2 info-hash, for a v2-only or hybrid torrent.
    pub fn info_hash_v2(&self) -> Option<InfoHashV2> {
        self.v2.as_ref().map(|v2| v2.info_hash)
    }

    /// Every tracker URL, announce-list tiers first (BEP 12 says they replace `announce`), without repeats.
    pub fn trackers(&self) -> Vec<String> {
        let mut seen = HashSet::new();
        self.announce_list
            .iter()
            .flatten()
            .chain(self.announce.iter())
            .filter(|url| seen.insert(url.as_str()))
            .cloned()
            .collect()
    }
}

impl Info {
    fn from_raw(raw: RawInfo, v2: Option<&V2Info>, info_bytes: &std::sync::Arc<[u8]>) -> Result<Info, MetainfoError> {
        let name = utf8("info.name", raw.name)?;
        path::check_component(&name).map_err(|reason| MetainfoError::invalid("info.name", reason))?;
        let piece_length = checked_piece_length(raw.piece_length)?;

        let Some(raw_pieces) = raw.pieces else {
            let Some(v2) = v2 else { return Err(MetainfoError::invalid("info.pieces", "missing")) };
            return Info::v2_only(name, piece_length, raw.private, raw.source, v2);
        };

        let (files, single_file) = match (raw.length, raw.files) {
            (Some(_), Some(_)) => {
                return Err(MetainfoError::invalid("info", "has both `length` and `files`"));
            }
            (None, None) => return Err(MetainfoError::invalid("info", "has neither `length` nor `files`")),
            (Some(length), None) => {
                (vec![FileEntry { path: Vec::new(), length: length_of("info.length", length)?, pad: false }], true)
            }
            (None, Some(raw_files)) => (multi_file_entries(raw_files)?, false),
        };

        let total = files
            .iter()
            .try_fold(0u64, |sum, file| sum.checked_add(file.length))
            .ok_or_else(|| MetainfoError::invalid("info.files", "total length overflows 64 bits"))?;
        if total == 0 {
            return Err(MetainfoError::invalid("info", "total length is 0"));
        }

        if !raw_pieces.len().is_multiple_of(20) {
            return Err(MetainfoError::invalid(
                "info.pieces",
                format!("length {} is not a multiple of 20", raw_pieces.len()),
            ));
        }
        let expected = total.div_ceil(piece_length);
        let got = (raw_pieces.len() / 20) as u64;
        if got != expected {
            return Err(MetainfoError::invalid(
                "info.pieces",
                format!("holds {got} hashes but {total} bytes in pieces of {piece_length} need {expected}"),
            ));
        }
        if let Some(v2) = v2 {
            check_hybrid(&files, single_file, piece_length, v2)?;
        }
        let pieces = V1Hashes::within(info_bytes, &raw_pieces);

        Ok(Info {
            name,
            piece_length,
            pieces,
            private: raw.private == Some(1),
            source: raw.source.map(lossy),
            files,
            single_file,
        })
    }

    /// The info of a v2-only torrent: its tree's files, no v1 pieces.
    fn v2_only(
        name: String,
        piece_length: u64,
        private: Option<i64>,
        source: Option<ByteBuf>,
        v2: &V2Info,
    ) -> Result<Info, MetainfoError> {
        let files: Vec<FileEntry> = v2
            .files
            .iter()
            .map(|file| FileEntry { path: file.path.clone(), length: file.length, pad: false })
            .collect();
        let total = files.iter().try_fold(0u64, |sum, file| sum.checked_add(file.length));
        match total {
            None => return Err(MetainfoError::invalid("info.file tree", "total length overflows 64 bits")),
            Some(0) => return Err(MetainfoError::invalid("info", "total length is 0")),
            Some(_) => {}
        }
        Ok(Info {
            name,
            piece_length,
            pieces: V1Hashes::default(),
            private: private == Some(1),
            source: source.map(lossy),
            files,
            single_file: v2.is_single_file(),
        })
    }

    /// An info dictionary made by [`crate::create`] from files it has already checked.
    pub(crate) fn from_parts(
        name: String,
        piece_length: u64,
        pieces: Vec<[u8; 20]>,
        private: bool,
        source: Option<String>,
        files: Vec<FileEntry>,
        single_file: bool,
    ) -> Info {
        Info { name, piece_length, pieces: pieces.into(), private, source, files, single_file }
    }

    pub fn is_single_file(&self) -> bool {
        self.single_file
    }

    /// Sum of all file lengths.
    pub fn total_length(&self) -> u64 {
        self.files.iter().map(|file| file.length).sum()
    }

    pub fn piece_count(&self) -> usize {
        self.pieces.len()
    }

    /// Length of piece `index`: `piece_length`, except the last piece, which holds what is left.
    pub fn piece_size(&self, index: usize) -> Option<u64> {
        let start = (index as u64).checked_mul(self.piece_length)?;
        let total = self.total_length();
        (index < self.pieces.len()).then(|| (total - start).min(self.piece_length))
    }

    /// Where file `index` lives below a download folder (`--dir`): `NAME` for a single-file torrent,
    /// `NAME/PATH...` for a multi-file one. Every component was checked to be a plain name.
    pub fn relative_path(&self, index: usize) -> Option<PathBuf> {
        let file = self.files.get(index)?;
        let mut path = PathBuf::from(&self.name);
        path.extend(&file.path);
        Some(path)
    }
}

fn multi_file_entries(raw_files: Vec<RawFile>) -> Result<Vec<FileEntry>, MetainfoError> {
    if raw_files.is_empty() {
        return Err(MetainfoError::invalid("info.files", "is empty"));
    }
    let mut files = Vec::with_capacity(raw_files.len());
    let mut seen_files: HashSet<Vec<String>> = HashSet::new();
    for (index, raw) in raw_files.into_iter().enumerate() {
        let field = format!("info.files[{index}].path");
        let pad = raw.attr.as_ref().is_some_and(|attr| attr.contains(&b'p'));
        if raw.path.is_empty() {
            return Err(MetainfoError::invalid(field, "is empty"));
        }
        let mut components = Vec::with_capacity(raw.path.len());
        for component in raw.path {
            let component = utf8(&field, component)?;
            path::check_component(&component)
                .map_err(|reason| MetainfoError::invalid(&field, format!("{reason}: {component:?}")))?;
            components.push(component);
        }
        // Pad files of the same size share their name (`.pad/N`); they are never stored, so they may.
        if !pad && !seen_files.insert(components.clone()) {
            return Err(MetainfoError::invalid(field, format!("duplicates an earlier file: {}", components.join("/"))));
        }
        let length = length_of(&format!("info.files[{index}].length"), raw.length)?;
        files.push(FileEntry { path: components, length, pad });
    }
    // A file may not also be a folder of another file ("a" and "a/b"): one of them could not be created.
    for file in files.iter().filter(|file| !file.pad) {
        for cut in 1..file.path.len() {
            if seen_files.contains(&file.path[..cut]) {
                return Err(MetainfoError::invalid(
                    "info.files",
                    format!("{} is both a file and a folder", file.path[..cut].join("/")),
                ));
            }
        }
    }
    Ok(files)
}

fn checked_piece_length(raw: i64) -> Result<u64, MetainfoError> {
    let piece_length = u64::try_from(raw).unwrap_or(0);
    if piece_length == 0 || !piece_length.is_power_of_two() || piece_length > MAX_PARSED_PIECE_LENGTH {
        return Err(MetainfoError::invalid(
            "info.piece length",
            format!("{raw} is not a power of two between 1 and {MAX_PARSED_PIECE_LENGTH}"),
        ));
    }
    Ok(piece_length)
}

/// A hybrid's v1 files, pad files left out, must be its tree's files in the same order, each starting on a piece
/// boundary of the v1 stream (so that v1 and v2 pieces cover the same bytes).
fn check_hybrid(files: &[FileEntry], single_file: bool, piece_length: u64, v2: &V2Info) -> Result<(), MetainfoError> {
    let disagree = |reason: String| MetainfoError::invalid("info.files", format!("v1 and v2 parts disagree: {reason}"));
    if single_file != v2.is_single_file() {
        return Err(disagree("one is a single-file torrent and the other is not".into()));
    }
    let mut tree = v2.files.iter();
    let mut offset = 0u64;
    for file in files {
        if !file.pad {
            let Some(v2_file) = tree.next() else {
                return Err(disagree(format!("{} is not in the file tree", file.path.join("/"))));
            };
            if v2_file.path != file.path || v2_file.length != file.length {
                return Err(disagree(format!(
                    "{} ({} bytes) where the tree has {} ({} bytes)",
                    file.path.join("/"),
                    file.length,
                    v2_file.path.join("/"),
                    v2_file.length
                )));
            }
            if file.length > 0 && !offset.is_multiple_of(piece_length) {
                return Err(disagree(format!("{} does not start on a piece boundary", file.path.join("/"))));
            }
        }
        offset += file.length;
    }
    if let Some(extra) = tree.next() {
        return Err(disagree(format!("{} is not in the v1 files", extra.path.join("/"))));
    }
    Ok(())
}

fn length_of(field: &str, value: i64) -> Result<u64, MetainfoError> {
    u64::try_from(value).map_err(|_| MetainfoError::invalid(field, format!("is negative ({value})")))
}

fn utf8(field: &str, bytes: ByteBuf) -> Result<String, MetainfoError> {
    String::from_utf8(bytes.into_vec()).map_err(|_| MetainfoError::invalid(field, "is not valid UTF-8"))
}

/// Free-text fields (comment, URLs) are shown, not used as paths: replace bad UTF-8 instead of failing.
fn lossy(bytes: ByteBuf) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
}

#[derive(Deserialize)]
struct RawTorrent {
    announce: Option<ByteBuf>,
    #[serde(rename = "announce-list")]
    announce_list: Option<Vec<Vec<ByteBuf>>>,
    comment: Option<ByteBuf>,
    #[serde(rename = "created by")]
    created_by: Option<ByteBuf>,
    #[serde(rename = "creation date")]
    creation_date: Option<i64>,
    #[serde(rename = "url-list")]
    url_list: Option<UrlList>,
    #[serde(default)]
    nodes: RawNodes,
    info: RawInfo,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum UrlList {
    One(ByteBuf),
    Many(Vec<ByteBuf>),
}

#[derive(Deserialize)]
struct RawInfo {
    name: ByteBuf,
    #[serde(rename = "piece length")]
    piece_length: i64,
    pieces: Option<ByteBuf>,
    #[serde(rename = "meta version")]
    meta_version: Option<i64>,
    length: Option<i64>,
    files: Option<Vec<RawFile>>,
    private: Option<i64>,
    source: Option<ByteBuf>,
}

#[derive(Deserialize)]
struct RawFile {
    attr: Option<ByteBuf>,
    length: i64,
    path: Vec<ByteBuf>,
}

#[cfg(test)]
#[path = "torrent_tests.rs"]
mod tests;
