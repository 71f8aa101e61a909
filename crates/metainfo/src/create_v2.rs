//! Making v2-only and hybrid torrents (BEP 52, BEP 47).
//!
//! Files are listed in file-tree order: by path components, compared as bytes, folder by folder (`foo/bar`
//! before `foo.txt`, since the folder `foo` sorts before `foo.txt`). That is the order of the `file tree`
//! dictionary, and a hybrid's v1 `files` list must follow it too (libtorrent 2.0 orders them the same way).
//!
//! A hybrid follows what libtorrent 2.0's `create_torrent` writes by default, so that both give the same
//! info-hashes: in a multi-file hybrid every file that does not end on a piece boundary is followed by a pad file
//! (`attr` `p`, path `.pad/N` for N bytes of zeros), the last file included; empty files get none; a single-file
//! hybrid has no pad file.
//!
//! Every piece then lies inside one file, so one read of the data hashes both versions: each worker takes a run
//! of pieces of one file, maps it (`mapped`: no copy out of the page cache; read in 256 KiB chunks where it cannot
//! be mapped), and hashes each 16 KiB block with SHA-256 (the merkle leaves, sixteen at a time in AVX-512 lanes
//! where that is faster) and, for a hybrid, the same 256 KiB chunk with SHA-1 (plus the pad's zeros at the end of
//! a file).

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use sha1::{Digest, Sha1};

use crate::create::{Created, Encoder, SourceTree, top_level_head, top_level_nodes, top_level_tail};
use crate::error::CreateError;
use crate::hashing::DataFile;
use crate::mapped::MappedRange;
use crate::merkle::{self, FileHashes, Hash32};
use crate::torrent::Torrent;

/// Which versions a new torrent holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MetaVersion {
    /// BEP 3 only (`pieces`).
    #[default]
    V1,
    /// BEP 52 only (`meta version` 2, `file tree`, `piece layers`).
    V2,
    /// Both in one info dictionary, with BEP 47 pad files.
    Hybrid,
}

/// Bytes hashed at a time (read into a buffer, or sliced from a map): sixteen leaves, for the AVX-512 lanes
/// (`sha256_lanes`), and few enough to be still in the cache when a hybrid's SHA-1 goes over them.
const CHUNK: u64 = 256 * 1024;
/// Files smaller than this are read, not mapped: making and dropping a map and its page tables costs about what
/// copying 200 KB does, so a tree of small files was slower mapped (0.88 s against 0.53 s for 10,000 files).
const MIN_MAPPED: u64 = 1024 * 1024;
/// Bytes of consecutive pieces of one file a worker claims at a time.
const BATCH_BYTES: u64 = 8 * 1024 * 1024;

/// Puts `tree`'s files in file-tree order.
pub(crate) fn tree_order(tree: &mut SourceTree) {
    tree.files.sort_by(|(a, _), (b, _)| a.iter().map(String::as_bytes).cmp(b.iter().map(String::as_bytes)));
}

/// The zeros a hybrid puts after each file.
fn pads(tree: &SourceTree, piece_length: u64) -> Vec<u64> {
    tree.files
        .iter()
        .map(|(_, file)| match file.length % piece_length {
            0 => 0,
            _ if tree.single_file => 0,
            rest => piece_length - rest,
        })
        .collect()
}

/// What hashing gave: per file its merkle hashes, and for a hybrid the v1 pieces.
pub(crate) struct Hashed {
    pub(crate) files: Vec<FileHashes>,
    pub(crate) v1_pieces: Vec<[u8; 20]>,
}

/// Hashes every file once: v2 piece hashes always, v1 piece hashes when `pad` is given (one entry per file).
pub(crate) fn hash_files(
    files: &[DataFile],
    piece_length: u64,
    threads: usize,
    pad: Option<&[u64]>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Hashed, CreateError> {
    // A hybrid's SHA-1 goes sixteen pieces at a time where the lanes are faster: runs of at least that many.
    let lanes = pad.is_some() && crate::sha1_lanes::preferred() && piece_length.is_multiple_of(64);
    let per_batch = (BATCH_BYTES / piece_length).max(if lanes { crate::sha1_lanes::LANES as u64 } else { 1 });
    // (file, first piece, pieces)
    let mut units = Vec::new();
    for (index, file) in files.iter().enumerate() {
        let pieces = file.length.div_ceil(piece_length);
        let mut first = 0;
        while first < pieces {
            let count = per_batch.min(pieces - first);
            units.push((index, first, count));
            first += count;
        }
    }
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    // Each file is mapped once, by the first worker to reach it, and unmapped after its last run of pieces.
    let maps: Vec<Mutex<FileMap>> = files.iter().map(|_| Mutex::new(FileMap::Untried)).collect();
    let units_left: Vec<AtomicUsize> = files.iter().map(|_| AtomicUsize::new(0)).collect();
    for &(index, _, _) in &units {
        units_left[index].fetch_add(1, Ordering::Relaxed);
    }
    let failure: Mutex<Option<CreateError>> = Mutex::new(None);
    type Done = Vec<(usize, u64, Vec<(Hash32, [u8; 20])>)>;
    let worker = || -> Done {
        let mut done = Vec::new();
        let mut buffer = vec![0u8; CHUNK.min(piece_length) as usize];
        let mut open: Option<(usize, File)> = None;
        while !stop.load(Ordering::Relaxed) {
            let Some(&(index, first, count)) = units.get(next.fetch_add(1, Ordering::Relaxed)) else { break };
            let file = &files[index];
            let handle = match open.take() {
                Some((at, handle)) if at == index => open.insert((at, handle)),
                _ => match File::open(&file.path) {
                    Ok(handle) => open.insert((index, handle)),
                    Err(source) => {
                        fail(&failure, &stop, CreateError::Io { path: file.path.clone(), source });
                        break;
                    }
                },
            };
            let pad_after = pad.map(|pads| pads[index]);
            let mut hashes = Vec::with_capacity(count as usize);
            let start = first * piece_length;
            let end = ((first + count) * piece_length).min(file.length);
            let mapped = file_map(&maps[index], &handle.1, file.length);
            let mut source = match &mapped {
                Some(map) => {
                    let (from, to) = (start as usize, end as usize);
                    map.populate(from, to - from);
                    Source::Mapped { bytes: &map.bytes()[from..to], start }
                }
                None => Source::Read { handle: &handle.1, buffer: &mut buffer },
            };
            let mut piece = first;
            while piece < first + count {
                let group = lanes.then(|| sixteen_full_pieces(&source, file, piece, first + count, piece_length));
                if let Some(Some(bytes)) = group {
                    hashes.extend(hash_sixteen(bytes, file, piece_length));
                    piece += crate::sha1_lanes::LANES as u64;
                    continue;
                }
                match hash_piece(&mut source, file, piece, piece_length, pad_after) {
                    Ok(hash) => hashes.push(hash),
                    Err(err) => {
                        fail(&failure, &stop, err);
                        return done;
                    }
                }
                piece += 1;
            }
            // A map reads a page that ends past the file's end as zeros, and a page the file no longer has (it
            // shrank while mapped) as zeros too: either way the file is shorter than listed, as a read would say.
            let shrank = || handle.1.metadata().map_or(true, |now| now.len() < end);
            if let Some(map) = &mapped {
                map.release(start as usize, (end - start) as usize);
            }
            if mapped.is_some_and(|map| map.lost_pages() || shrank()) {
                fail(&failure, &stop, CreateError::Io { path: file.path.clone(), source: changed_while_reading(file) });
                return done;
            }
            if units_left[index].fetch_sub(1, Ordering::AcqRel) == 1 {
                *maps[index].lock().unwrap_or_else(std::sync::PoisonError::into_inner) = FileMap::Done;
            }
            let start = first * piece_length;
            progress((start + count * piece_length).min(file.length) - start);
            done.push((index, first, hashes));
        }
        done
    };
    let threads = threads.clamp(1, units.len().max(1));
    let mut batches: Done = if threads == 1 {
        worker()
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads).map(|_| scope.spawn(worker)).collect();
            handles
                .into_iter()
                .flat_map(|handle| match handle.join() {
                    Ok(done) => done,
                    Err(panic) => std::panic::resume_unwind(panic),
                })
                .collect()
        })
    };
    if let Some(err) = failure.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
        return Err(err);
    }
    batches.sort_unstable_by_key(|(index, first, _)| (*index, *first));
    let mut per_file: Vec<Vec<(Hash32, [u8; 20])>> = vec![Vec::new(); files.len()];
    for (index, _, hashes) in batches {
        per_file[index].extend(hashes);
    }
    let mut v1_pieces = Vec::new();
    let hashes = per_file
        .into_iter()
        .zip(files)
        .map(|(pieces, file)| {
            if pad.is_some() {
                v1_pieces.extend(pieces.iter().map(|(_, sha1)| *sha1));
            }
            merkle::file_hashes(file.length, piece_length, pieces.into_iter().map(|(v2, _)| v2).collect())
        })
        .collect();
    Ok(Hashed { files: hashes, v1_pieces })
}

/// A file's map, shared by the workers hashing its runs of pieces.
enum FileMap {
    Untried,
    Mapped(std::sync::Arc<MappedRange>),
    /// It could not be mapped (it is read instead), or all of it is hashed.
    Done,
}

/// The map of a file of `length` bytes open as `handle`, made by the first caller; `None` if it cannot be mapped,
/// or is smaller than [`MIN_MAPPED`].
fn file_map(slot: &Mutex<FileMap>, handle: &File, length: u64) -> Option<std::sync::Arc<MappedRange>> {
    let mut slot = slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let FileMap::Untried = *slot {
        let map = usize::try_from(length)
            .ok()
            .filter(|&len| len as u64 >= MIN_MAPPED)
            .and_then(|len| MappedRange::new(handle, 0, len));
        *slot = map.map_or(FileMap::Done, |map| FileMap::Mapped(std::sync::Arc::new(map)));
    }
    match &*slot {
        FileMap::Mapped(map) => Some(map.clone()),
        _ => None,
    }
}

fn fail(failure: &Mutex<Option<CreateError>>, stop: &AtomicBool, err: CreateError) {
    stop.store(true, Ordering::Relaxed);
    let mut slot = failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    slot.get_or_insert(err);
}

/// Where a worker's pieces come from: a map of its run of pieces (no copy), or reads into its buffer.
enum Source<'a> {
    /// The bytes of the file from `start` on.
    Mapped {
        bytes: &'a [u8],
        start: u64,
    },
    Read {
        handle: &'a File,
        buffer: &'a mut [u8],
    },
}

impl Source<'_> {
    /// `len` bytes of the file from `offset` (at most [`CHUNK`] of them when read).
    fn chunk(&mut self, offset: u64, len: usize, file: &DataFile) -> Result<&[u8], CreateError> {
        match self {
            Source::Mapped { bytes, start } => {
                let from = usize::try_from(offset - *start).unwrap_or(usize::MAX);
                let short = || CreateError::Io { path: file.path.clone(), source: changed_while_reading(file) };
                bytes.get(from..from.saturating_add(len)).ok_or_else(short)
            }
            Source::Read { handle, buffer } => {
                let chunk = &mut buffer[..len];
                handle.read_exact_at(chunk, offset).map_err(|source| {
                    let source = if source.kind() == std::io::ErrorKind::UnexpectedEof {
                        changed_while_reading(file)
                    } else {
                        source
                    };
                    CreateError::Io { path: file.path.clone(), source }
                })?;
                Ok(chunk)
            }
        }
    }

    fn chunk_len(&self) -> u64 {
        match self {
            Source::Mapped { .. } => CHUNK,
            Source::Read { buffer, .. } => buffer.len() as u64,
        }
    }
}

/// The error for a file that is shorter than when it was listed.
fn changed_while_reading(file: &DataFile) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        format!("shorter than its listed {} bytes (changed while reading?)", file.length),
    )
}

/// The mapped bytes of sixteen pieces from `piece` on, if they are all whole pieces of the file before `end` (so
/// none has a hybrid's pad after it) and lie in a map whose offsets fit the lanes.
fn sixteen_full_pieces<'a>(
    source: &Source<'a>,
    file: &DataFile,
    piece: u64,
    end: u64,
    piece_length: u64,
) -> Option<&'a [u8]> {
    let Source::Mapped { bytes, start } = source else { return None };
    let lanes = crate::sha1_lanes::LANES as u64;
    let last = piece + lanes;
    if last > end || last * piece_length > file.length || i32::try_from(lanes * piece_length).is_err() {
        return None;
    }
    let from = usize::try_from(piece * piece_length - start).ok()?;
    bytes.get(from..from + usize::try_from(lanes * piece_length).ok()?)
}

/// A hybrid's hashes of sixteen whole pieces lying in `bytes`: the SHA-1 of all sixteen side by side in the
/// AVX-512 lanes, the merkle hash of each from its leaves.
fn hash_sixteen(bytes: &[u8], file: &DataFile, piece_length: u64) -> Vec<(Hash32, [u8; 20])> {
    let length = piece_length as usize;
    let v1: Vec<[u8; 20]> = match crate::sha1_lanes::LaneHasher::new() {
        Some(mut lanes) => {
            lanes.update_strided(bytes, length, length);
            lanes.finish().to_vec()
        }
        None => bytes.chunks(length).map(|piece| Sha1::digest(piece).into()).collect(),
    };
    let mut leaves = Vec::with_capacity(merkle::blocks_per_piece(piece_length));
    bytes
        .chunks(length)
        .zip(v1)
        .map(|(piece, v1)| {
            leaves.clear();
            merkle::leaves_into(piece, &mut leaves);
            // Sixteen whole pieces of one file: it is longer than a piece, so each has a piece-layer hash.
            debug_assert!(file.length > piece_length);
            (merkle::piece_hash(&leaves, piece_length), v1)
        })
        .collect()
}

/// Hashes piece `piece` of `file`: its v2 hash (the piece's subtree root, or the whole file's root for a file of
/// one piece) and, when `pad_after` is given, its v1 SHA-1 with the pad's zeros after the file's last byte.
fn hash_piece(
    source: &mut Source<'_>,
    file: &DataFile,
    piece: u64,
    piece_length: u64,
    pad_after: Option<u64>,
) -> Result<(Hash32, [u8; 20]), CreateError> {
    let start = piece * piece_length;
    let end = (start + piece_length).min(file.length);
    let mut sha1 = pad_after.map(|_| Sha1::new());
    let mut leaves = Vec::with_capacity(merkle::blocks_per_piece(piece_length));
    let mut offset = start;
    // A chunk at a time, so both hashes of a hybrid run over bytes still in the cache.
    let step = source.chunk_len();
    while offset < end {
        let len = (end - offset).min(step) as usize;
        let chunk = source.chunk(offset, len, file)?;
        merkle::leaves_into(chunk, &mut leaves);
        if let Some(sha1) = &mut sha1 {
            sha1.update(chunk);
        }
        offset += len as u64;
    }
    let v2 = if file.length <= piece_length {
        merkle::root_from_leaves(&leaves)
    } else {
        merkle::piece_hash(&leaves, piece_length)
    };
    let v1 = match (sha1, pad_after) {
        (Some(mut sha1), Some(pad)) => {
            if end == file.length && pad > 0 {
                let zeros = [0u8; 4096];
                let mut left = pad;
                while left > 0 {
                    let now = left.min(zeros.len() as u64) as usize;
                    sha1.update(&zeros[..now]);
                    left -= now as u64;
                }
            }
            sha1.finalize().into()
        }
        _ => [0u8; 20],
    };
    Ok((v2, v1))
}

/// A folder of the file tree being written.
#[derive(Default)]
struct Folder<'a> {
    entries: BTreeMap<&'a [u8], Node<'a>>,
}

enum Node<'a> {
    Folder(Folder<'a>),
    File(usize),
}

/// Encodes a v2-only or hybrid torrent of `tree` (already in tree order) with its hashes, and parses it back.
pub(crate) fn build(
    tree: &SourceTree,
    options: &crate::create::CreateOptions,
    name: &str,
    piece_length: u64,
    hashed: &Hashed,
    hybrid: bool,
) -> Result<Created, CreateError> {
    let mut out = Encoder(Vec::with_capacity(hashed.v1_pieces.len() * 20 + tree.files.len() * 128 + 1024));
    top_level_head(&mut out, options);
    out.key("info");
    out.raw(b"d");
    out.key("file tree");
    write_tree(&mut out, tree, name, hashed);
    if hybrid {
        if tree.single_file {
            out.key("length");
            out.uint(tree.total_length());
        } else {
            out.key("files");
            out.raw(b"l");
            for ((path, file), pad) in tree.files.iter().zip(pads(tree, piece_length)) {
                out.raw(b"d");
                out.key("length");
                out.uint(file.length);
                out.key("path");
                out.str_list(path.iter().map(String::as_str));
                out.raw(b"e");
                if pad > 0 {
                    out.raw(b"d");
                    out.key_str("attr", "p");
                    out.key("length");
                    out.uint(pad);
                    out.key("path");
                    out.str_list([".pad", &pad.to_string()].into_iter());
                    out.raw(b"e");
                }
            }
            out.raw(b"e");
        }
    }
    out.key("meta version");
    out.uint(2);
    out.key_str("name", name);
    out.key("piece length");
    out.uint(piece_length);
    if hybrid {
        out.key("pieces");
        out.bytes(&hashed.v1_pieces.concat());
    }
    if options.private {
        out.key("private");
        out.int(1);
    }
    if let Some(source) = &options.source {
        out.key_str("source", source);
    }
    out.raw(b"e");
    top_level_nodes(&mut out, options);
    // Keyed by root, so that files with the same content share one entry (a key may appear only once).
    let layers: BTreeMap<Hash32, &[Hash32]> = hashed
        .files
        .iter()
        .filter_map(|file| Some((file.root?, file.piece_layer.as_slice())))
        .filter(|(_, layer)| !layer.is_empty())
        .collect();
    out.key("piece layers");
    out.raw(b"d");
    for (root, layer) in layers {
        out.bytes(&root);
        out.bytes(&layer.concat());
    }
    out.raw(b"e");
    top_level_tail(&mut out, options);
    let bytes = out.0;
    let torrent = Torrent::from_bytes_any(&bytes).map_err(|err| CreateError::BadInput {
        path: tree.files.first().map(|(_, file)| file.path.clone()).unwrap_or_default(),
        reason: format!("the torrent made does not parse back: {err}"),
    })?;
    Ok(Created { bytes, torrent })
}

fn write_tree(out: &mut Encoder, tree: &SourceTree, name: &str, hashed: &Hashed) {
    let mut root = Folder::default();
    for (index, (path, _)) in tree.files.iter().enumerate() {
        let components: Vec<&[u8]> =
            if tree.single_file { vec![name.as_bytes()] } else { path.iter().map(String::as_bytes).collect() };
        let mut folder = &mut root;
        for (depth, component) in components.iter().enumerate() {
            if depth + 1 == components.len() {
                folder.entries.insert(*component, Node::File(index));
            } else {
                let node = folder.entries.entry(*component).or_insert_with(|| Node::Folder(Folder::default()));
                folder = match node {
                    Node::Folder(folder) => folder,
                    // A file and a folder of the same name cannot both come from a walk of a real folder.
                    Node::File(_) => break,
                };
            }
        }
    }
    write_folder(out, &root, tree, hashed);
}

fn write_folder(out: &mut Encoder, folder: &Folder<'_>, tree: &SourceTree, hashed: &Hashed) {
    out.raw(b"d");
    for (key, node) in &folder.entries {
        out.bytes(key);
        match node {
            Node::Folder(inner) => write_folder(out, inner, tree, hashed),
            Node::File(index) => {
                out.raw(b"d");
                out.bytes(b"");
                out.raw(b"d");
                out.key("length");
                out.uint(tree.files[*index].1.length);
                if let Some(root) = hashed.files[*index].root {
                    out.key("pieces root");
                    out.bytes(&root);
                }
                out.raw(b"e");
                out.raw(b"e");
            }
        }
    }
    out.raw(b"e");
}

/// Hashes and encodes a v2-only or hybrid torrent of `tree`.
pub(crate) fn create(
    tree: &SourceTree,
    options: &crate::create::CreateOptions,
    name: &str,
    piece_length: u64,
    threads: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Created, CreateError> {
    let mut tree = tree.clone();
    tree_order(&mut tree);
    let hybrid = options.meta_version == MetaVersion::Hybrid;
    let pads = pads(&tree, piece_length);
    let data: Vec<DataFile> = tree.files.iter().map(|(_, file)| file.clone()).collect();
    let hashed = hash_files(&data, piece_length, threads, hybrid.then_some(pads.as_slice()), progress)?;
    build(&tree, options, name, piece_length, &hashed, hybrid)
}

#[cfg(test)]
#[path = "create_v2_tests.rs"]
mod tests;
