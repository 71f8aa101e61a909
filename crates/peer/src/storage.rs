//! The on-disk data of one torrent: its pieces mapped onto its files under the download folder.
//!
//! A single-file torrent lives at `DIR/NAME`, a multi-file one at `DIR/NAME/PATH...` (libtorrent's save path and
//! aria2's `--dir` follow the same rule). Pieces run through the files in the torrent's order, across file
//! boundaries; zero-length files take no bytes of the stream. A byte range is mapped onto file ranges with a
//! binary search over the files' start offsets, so a torrent of 100,000 files costs no scan per block.
//!
//! Nothing is ever written outside `DIR`, and no symbolic link below it is followed, for reading or writing: every
//! path is `DIR` joined with components checked again here, each existing folder on the way is refused if it is a
//! link, and files are opened with `O_NOFOLLOW`. Without that, a link planted in a download folder (by another
//! program, or left by an earlier download) would let a peer overwrite any file we can write, or let us upload
//! any file we can read. The folder check is not atomic against a process racing us inside `DIR` (that would need
//! `openat` on every component); it stops the links that are already there.
//!
//! Files can be left out ([`Storage::set_priorities`]): a skipped file is not created, and the bytes of it that pieces
//! shared with a wanted file carry go to a part file, `DIR/.HASH.parts` (libtorrent's name), at their offset in the
//! torrent's byte stream (sparse: only those pieces take room). They are never passed off as the file: wanting the
//! file again moves them into it.
//!
//! Every method takes `&self` and blocks on the disk: share one `Arc<Storage>` and call it from `spawn_blocking`.
//! Open files are cached (a bounded number, so a 100,000-file torrent stays under the descriptor limit) and used
//! with positional reads and writes, so threads never share a file cursor.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::ops::Range;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use metainfo::Torrent;
use metainfo::hashing::{DataFile, OnReadError, hash_pieces_until};
use metainfo::path::check_component;
use peer_wire::Bitfield;

use crate::selection::{AtomicPriority, Priority};
use crate::v2::PieceHashes;

/// Files kept open at once. libtorrent's file pool holds a few hundred; far below the usual soft limit of 1,024
/// descriptors, which the sockets of the swarm need too.
const MAX_OPEN_FILES: usize = 128;

/// Why a storage operation failed. Every variant names the path concerned: a file, a folder, or for
/// requests that fit no file (a piece index out of range) the torrent's own path `DIR/NAME`.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The torrent cannot be laid out on disk (a bad name or path component, inconsistent sizes).
    #[error("{}: {reason}", path.display())]
    Layout { path: PathBuf, reason: String },
    #[error("{}: piece {index} does not exist (the torrent has {num_pieces} pieces)", path.display())]
    PieceOutOfRange { path: PathBuf, index: u32, num_pieces: u32 },
    #[error(
        "{}: {length} bytes at offset {offset} do not fit in piece {index} of {piece_size} bytes",
        path.display()
    )]
    BlockOutOfRange { path: PathBuf, index: u32, offset: u32, length: u32, piece_size: u32 },
    #[error("{}: piece {index} is {expected} bytes, got {got}", path.display())]
    WrongPieceLength { path: PathBuf, index: u32, expected: u32, got: usize },
    /// A folder or file of the torrent is a symbolic link: following it could leave the download folder.
    #[error("{}: is a symbolic link; refusing to follow it", path.display())]
    Symlink { path: PathBuf },
    /// Something other than a folder or regular file stands where the torrent needs one.
    #[error("{}: is not a {expected}", path.display())]
    WrongKind { path: PathBuf, expected: &'static str },
    /// The disk said no: disk full, permission denied, file missing, and so on (see `source.kind()`).
    #[error("{}: {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: io::Error,
    },
}

impl StorageError {
    /// The file a write failed on because its filesystem is full (or the user's quota is spent), if that is
    /// what this error is.
    #[must_use]
    pub fn full_disk_path(&self) -> Option<&Path> {
        match self {
            Self::Io { path, source, .. } if matches!(source.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)) => {
                Some(path)
            }
            _ => None,
        }
    }
}

/// A file of a torrent and how much of it is verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProgress {
    pub path: PathBuf,
    pub length: u64,
    /// Bytes of the file inside verified pieces.
    pub done: u64,
    /// Left out of the download, or how much it is wanted ([`Storage::set_priorities`]).
    pub priority: Priority,
}

/// One torrent, laid out under a download folder. See the module documentation.
#[derive(Debug)]
pub struct Storage {
    dir: PathBuf,
    /// `DIR/NAME`: what errors name when no single file is concerned.
    root: PathBuf,
    files: Vec<StoredFile>,
    piece_length: u32,
    num_pieces: u32,
    total_length: u64,
    hashes: PieceHashes,
    handles: Arc<Mutex<Handles>>,
    /// The session's budget of open files over every torrent, when shared.
    open_files: Option<Arc<SessionFiles>>,
    /// `DIR/.HASH.parts`: what pieces shared with wanted files carry of skipped ones.
    part_path: PathBuf,
    part: Mutex<Option<Arc<File>>>,
    /// Held for reading by every piece read and write, for writing while a file's bytes move out of the part
    /// file: no piece is then half in one place, half in the other.
    moving: std::sync::RwLock<()>,
    /// Made-up bytes instead of files ([`Storage::synthetic`]): the seed they are made from.
    synthetic: Option<u64>,
    /// A simulated liar's ([`Storage::synthetic_liar`]): the blocks it reads out to send are other bytes.
    synthetic_lies: bool,
}

#[derive(Debug)]
struct StoredFile {
    path: PathBuf,
    /// Components of `path` below `dir`; all but the last are folders we may have to create.
    depth: usize,
    /// Offset of the file's first byte in the torrent's byte stream.
    start: u64,
    length: u64,
    /// A BEP 47 pad file (a hybrid torrent's zeros that align the next file to a piece): never on disk, read as
    /// zeros, its bytes of a verified piece dropped on write.
    pad: bool,
    /// Left out of the download ([`Priority::Skip`]), or how much it is wanted.
    priority: AtomicPriority,
    /// Its bytes live in the part file: skipped while it did not exist. Cleared (its bytes moved into it) when
    /// it is wanted again; never set for a file on disk, whose bytes stay where they are.
    in_part: AtomicBool,
}

/// Cached open files. The mutex guards only this bookkeeping, never a read or a write: callers clone the `Arc`
/// and do their I/O unlocked, so an evicted file stays open until its last user is done.
#[derive(Debug)]
pub struct Handles {
    slots: Vec<Option<Handle>>,
    /// Indices of the occupied slots, oldest first, for eviction.
    order: VecDeque<usize>,
    /// Openings so far: each handle's number, by which the session's budget knows it.
    openings: u64,
}

#[derive(Debug, Clone)]
struct Handle {
    file: Arc<File>,
    writable: bool,
    generation: u64,
}

/// The session's budget of open files, shared by its torrents' storages.
pub type SessionFiles = crate::open_files::OpenFiles<Mutex<Handles>>;

/// Closes file `index` of the storage whose handles `owner` are, if it is still the `generation`-th opening.
fn close_opened(opened: crate::open_files::Opened<Mutex<Handles>>) {
    let Some(owner) = opened.owner.upgrade() else { return };
    let mut handles = owner.lock().unwrap_or_else(PoisonError::into_inner);
    let Handles { slots, order, .. } = &mut *handles;
    if let Some(slot) = slots.get_mut(opened.index)
        && slot.as_ref().is_some_and(|handle| handle.generation == opened.generation)
    {
        *slot = None;
        order.retain(|&index| index != opened.index);
    }
}

impl Storage {
    /// Lays out `torrent`'s files under `dir`; touches nothing on disk.
    ///
    /// # Errors
    ///
    /// [`StorageError::Layout`] if a name or path component could leave `dir`, or the sizes disagree
    /// (a parsed torrent was validated already; this guards hand-built ones).
    pub fn new(torrent: &Torrent, dir: &Path) -> Result<Storage, StorageError> {
        let info = &torrent.info;
        let layout = |path: &Path, reason: String| StorageError::Layout { path: path.to_path_buf(), reason };
        check_component(&info.name).map_err(|reason| layout(dir, format!("torrent name {:?}: {reason}", info.name)))?;
        let root = dir.join(&info.name);
        // A v2-only torrent has no SHA-1 pieces: its files get the pad files v2 implies, its pieces merkle hashes.
        let (entries, hashes) = match (torrent.has_v1(), &torrent.v2) {
            (false, Some(_)) => {
                let (entries, pieces) = crate::v2::layout(torrent)
                    .ok_or_else(|| layout(&root, "the v2 file tree and piece layers do not add up".into()))?;
                (std::borrow::Cow::Owned(entries), PieceHashes::V2(pieces))
            }
            _ => (std::borrow::Cow::Borrowed(&info.files), PieceHashes::V1(info.pieces.clone())),
        };

        let mut files = Vec::with_capacity(entries.len());
        let mut start = 0u64;
        for entry in entries.iter() {
            // A pad file is never opened: the implicit one after a single v2 file has a path of its own.
            if !entry.pad && entry.path.is_empty() != info.is_single_file() {
                return Err(layout(&root, "a file has no path below the torrent's folder".into()));
            }
            let mut path = root.clone();
            for component in &entry.path {
                check_component(component).map_err(|reason| layout(&path, format!("{component:?}: {reason}")))?;
                path.push(component);
            }
            files.push(StoredFile {
                path,
                depth: 1 + entry.path.len(),
                start,
                length: entry.length,
                pad: entry.pad,
                priority: AtomicPriority::new(Priority::Normal),
                in_part: AtomicBool::new(false),
            });
            start = start.checked_add(entry.length).ok_or_else(|| layout(&root, "total length overflows".into()))?;
        }
        let total_length = start;

        let piece_length = u32::try_from(info.piece_length)
            .ok()
            .filter(|&length| length > 0)
            .ok_or_else(|| layout(&root, format!("piece length {} is not between 1 and 2^32", info.piece_length)))?;
        let expected = total_length.div_ceil(u64::from(piece_length));
        if expected != hashes.len() as u64 {
            return Err(layout(&root, format!("{} piece hashes for {expected} pieces", hashes.len())));
        }
        let num_pieces =
            u32::try_from(expected).map_err(|_| layout(&root, format!("{expected} pieces do not fit in 32 bits")))?;

        let handles = Handles { slots: vec![None; files.len()], order: VecDeque::new(), openings: 0 };
        Ok(Storage {
            dir: dir.to_path_buf(),
            root,
            files,
            piece_length,
            num_pieces,
            total_length,
            hashes,
            handles: Arc::new(Mutex::new(handles)),
            open_files: None,
            part_path: dir.join(format!(".{}.parts", torrent.info_hash)),
            part: Mutex::new(None),
            moving: std::sync::RwLock::new(()),
            synthetic: None,
            synthetic_lies: false,
        })
    }

    /// `torrent`'s layout over made-up bytes, for a simulated swarm: nothing is read from or written to disk, the
    /// content is a function of `seed` and the offset ([`synthetic_content`]), and a piece matches when its bytes
    /// are exactly that content (the torrent's SHA-1s are not used, so a simulated torrent may carry any). A block
    /// is as cheap to make and to check as a copy, and a peer that sends other bytes still fails the check.
    ///
    /// # Errors
    ///
    /// As [`Storage::new`].
    pub fn synthetic(torrent: &Torrent, seed: u64) -> Result<Storage, StorageError> {
        let mut storage = Storage::new(torrent, Path::new("synthetic"))?;
        storage.synthetic = Some(seed);
        Ok(storage)
    }

    /// [`Storage::synthetic`] for a simulated liar: its own pieces check out as anyone's, but every block it
    /// reads to send is other bytes, which fail the check of whoever takes them.
    ///
    /// # Errors
    ///
    /// As [`Storage::new`].
    pub fn synthetic_liar(torrent: &Torrent, seed: u64) -> Result<Storage, StorageError> {
        let mut storage = Storage::synthetic(torrent, seed)?;
        storage.synthetic_lies = true;
        Ok(storage)
    }

    /// Whether the bytes are made up ([`Storage::synthetic`]): reading and checking them costs no more than a
    /// copy, so they need no thread of their own.
    #[must_use]
    pub fn is_synthetic(&self) -> bool {
        self.synthetic.is_some()
    }

    /// Sets each file's priority, one per file as [`Storage::file_progress`] lists them (pad files left out; a
    /// list of another length changes nothing). A file left out is not created; a file wanted again whose bytes
    /// are in the part file gets them moved into it, while no piece is read or written. Returns each piece's
    /// priority for the picker ([`Storage::piece_priorities`]).
    ///
    /// # Errors
    ///
    /// Moving bytes out of the part file failed (the disk, a link in the way), naming the file; that file and
    /// those after it keep their priority.
    pub fn set_priorities(&self, priorities: &[Priority]) -> Result<Vec<u8>, StorageError> {
        let _moving = self.moving.write().unwrap_or_else(PoisonError::into_inner);
        let files: Vec<(usize, &StoredFile)> = self.files.iter().enumerate().filter(|(_, file)| !file.pad).collect();
        if priorities.len() == files.len() {
            for ((index, file), &priority) in files.into_iter().zip(priorities) {
                if priority == Priority::Skip {
                    // A file on disk keeps its bytes; one not there yet takes none (it is not created).
                    let absent =
                        matches!(fs::symlink_metadata(&file.path), Err(err) if err.kind() == io::ErrorKind::NotFound);
                    if absent && file.priority.get() != Priority::Skip {
                        file.in_part.store(true, Ordering::Release);
                    }
                } else if file.in_part.load(Ordering::Acquire) {
                    self.export_from_part(index)?;
                    file.in_part.store(false, Ordering::Release);
                }
                file.priority.set(priority);
            }
        }
        Ok(self.piece_priorities())
    }

    /// Each file's priority, as [`Storage::file_progress`] lists them.
    #[must_use]
    pub fn file_priorities(&self) -> Vec<Priority> {
        self.files.iter().filter(|file| !file.pad).map(|file| file.priority.get()).collect()
    }

    /// Each piece's priority for the picker: the highest [`Priority::level`] of the files it holds bytes of (0
    /// when all of them are left out).
    #[must_use]
    pub fn piece_priorities(&self) -> Vec<u8> {
        let mut levels = vec![0u8; self.num_pieces as usize];
        let piece_length = u64::from(self.piece_length);
        for file in self.files.iter().filter(|file| file.length > 0 && !file.pad) {
            let level = file.priority.get().level();
            let (first, last) = (file.start / piece_length, (file.start + file.length - 1) / piece_length);
            for piece in first..=last {
                if let Some(slot) = usize::try_from(piece).ok().and_then(|piece| levels.get_mut(piece)) {
                    *slot = (*slot).max(level);
                }
            }
        }
        levels
    }

    /// Counts its open files in the session's budget `open_files` (shared by every torrent), from now on.
    #[must_use]
    pub fn with_open_files(mut self, open_files: Arc<SessionFiles>) -> Storage {
        self.open_files = Some(open_files);
        self
    }

    /// Each file's path inside the torrent, `/`-separated, as [`Storage::file_progress`] lists them: the name of
    /// a single-file torrent, the path below the torrent's folder for a multi-file one.
    #[must_use]
    pub fn paths_inside(&self) -> Vec<String> {
        self.files
            .iter()
            .filter(|file| !file.pad)
            .map(|file| match file.path.strip_prefix(&self.root) {
                Ok(inside) if !inside.as_os_str().is_empty() => inside
                    .components()
                    .map(|component| component.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/"),
                _ => file.path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default(),
            })
            .collect()
    }

    /// Copies the bytes of file `index` from the part file into the file: those of its first and last pieces, the
    /// only ones it can share with another file, so the only ones of it ever downloaded while it was skipped.
    fn export_from_part(&self, index: usize) -> Result<(), StorageError> {
        let file = &self.files[index];
        if file.length == 0 || !self.part_path.exists() {
            return Ok(());
        }
        let piece_length = u64::from(self.piece_length);
        let end = file.start + file.length;
        let first = (file.start, ((file.start / piece_length + 1) * piece_length).min(end));
        let last = ((end - 1) / piece_length * piece_length).max(file.start);
        let ranges = if last < first.1 { vec![(file.start, end)] } else { vec![first, (last, end)] };
        let part = self.part_handle(false)?;
        let mut buffer = Vec::new();
        for (from, to) in ranges {
            buffer.resize(usize::try_from(to - from).unwrap_or(0), 0);
            match part.read_exact_at(&mut buffer, from) {
                Ok(()) => {}
                // Past the end of the part file: nothing of this range was ever written there.
                Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => continue,
                Err(source) => return Err(io_error(&self.part_path, "could not read", source)),
            }
            self.handle(index, true)?
                .write_all_at(&buffer, from - file.start)
                .map_err(|source| self.io_error(index, "could not write", source))?;
        }
        Ok(())
    }

    /// The part file, opened (created when `write`) without following a link.
    fn part_handle(&self, write: bool) -> Result<Arc<File>, StorageError> {
        let mut part = self.part.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(file) = part.as_ref() {
            return Ok(file.clone());
        }
        if write && !self.dir.is_dir() {
            fs::create_dir_all(&self.dir)
                .map_err(|source| io_error(&self.dir, "could not create the download folder", source))?;
        }
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(write).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
        let file = options.open(&self.part_path).map_err(|source| match source.raw_os_error() {
            Some(libc::ELOOP) => StorageError::Symlink { path: self.part_path.clone() },
            _ => io_error(&self.part_path, "could not open", source),
        })?;
        let meta = file.metadata().map_err(|source| io_error(&self.part_path, "could not inspect", source))?;
        if !meta.is_file() {
            return Err(StorageError::WrongKind { path: self.part_path.clone(), expected: "regular file" });
        }
        let file = Arc::new(file);
        *part = Some(file.clone());
        Ok(file)
    }

    /// The part file's path (it exists only once a piece shared with a skipped file was written).
    #[must_use]
    pub fn part_path(&self) -> &Path {
        &self.part_path
    }

    /// What the fast-resume state stamps for each file ([`Storage::file_paths`]): the part file for a file whose
    /// bytes are there. A restart that reads a file from elsewhere (wanted now, or left out now and not before)
    /// then finds a stamp changed, and checks.
    #[must_use]
    pub fn stamped_paths(&self) -> Vec<Option<PathBuf>> {
        self.files
            .iter()
            .map(|file| match (file.pad, file.in_part.load(Ordering::Acquire)) {
                (true, _) => None,
                (false, true) => Some(self.part_path.clone()),
                (false, false) => Some(file.path.clone()),
            })
            .collect()
    }

    /// Each file's path, in the torrent's order; `None` for a pad file (never on disk).
    #[must_use]
    pub fn file_paths(&self) -> Vec<Option<PathBuf>> {
        self.files.iter().map(|file| (!file.pad).then(|| file.path.clone())).collect()
    }

    pub fn num_pieces(&self) -> u32 {
        self.num_pieces
    }

    /// The nominal piece length (every piece but the last).
    pub fn piece_length(&self) -> u32 {
        self.piece_length
    }

    /// Length of piece `index`: the nominal length, except the last piece, which holds what is left; 0 past the end.
    pub fn piece_size(&self, index: u32) -> u32 {
        if index >= self.num_pieces {
            return 0;
        }
        let start = u64::from(index) * u64::from(self.piece_length);
        // Below piece_length, so it fits.
        (self.total_length - start).min(u64::from(self.piece_length)) as u32
    }

    pub fn total_length(&self) -> u64 {
        self.total_length
    }

    /// Start-up check: hashes whatever exists on `threads` threads (0 = one per core) and returns the pieces whose
    /// SHA-1 matches. Missing or short files mean those pieces are missing, not an error; so do files reached through
    /// a symbolic link, since [`Storage::read_block`] would refuse to upload them. `progress` gets the bytes hashed so
    /// far, rising, up to [`Storage::total_length`]. A folder that does not exist gives an empty bitfield, and
    /// nothing is created.
    pub fn check(&self, threads: usize, progress: impl Fn(u64) + Sync) -> Bitfield {
        self.check_until(threads, progress, &std::sync::atomic::AtomicBool::new(false))
    }

    /// As [`Storage::check`], stopping soon after `stop` is set (within a batch of pieces per thread); the pieces
    /// not read then are not in the result.
    pub fn check_until(
        &self,
        threads: usize,
        progress: impl Fn(u64) + Sync,
        stop: &std::sync::atomic::AtomicBool,
    ) -> Bitfield {
        let mut have = Bitfield::new(self.num_pieces);
        if !self.dir.is_dir() || self.synthetic.is_some() {
            return have;
        }
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let in_part = self.files.iter().any(|file| file.in_part.load(Ordering::Acquire));
        let hashes = match &self.hashes {
            PieceHashes::V1(hashes) if !in_part => hashes,
            // Bytes in the part file sit at their stream offset there, which only the piece-by-piece reader maps.
            _ => {
                self.check_each_piece(threads, &mut have, progress, stop);
                self.forget_linked_files(&mut have);
                return have;
            }
        };
        // Pad files are zeros by definition: the hasher reads them from /dev/zero.
        let data: Vec<DataFile> = self
            .files
            .iter()
            .map(|file| DataFile {
                path: if file.pad { PathBuf::from("/dev/zero") } else { file.path.clone() },
                length: file.length,
            })
            .collect();
        // The hasher reports each batch's bytes from its worker threads; the lock keeps the running total rising.
        let done = Mutex::new(0u64);
        let report = |bytes: u64| {
            let mut done = done.lock().unwrap_or_else(PoisonError::into_inner);
            *done += bytes;
            progress(*done);
        };
        let stopped = || stop.load(Ordering::Acquire);
        let results =
            hash_pieces_until(&data, u64::from(self.piece_length), threads, OnReadError::Continue, &report, &stopped);
        for (index, (result, expected)) in (0u32..).zip(results.iter().zip(hashes.iter())) {
            if matches!(result, Ok(hash) if hash == expected) {
                // In range: one result per piece.
                let _ = have.set(index);
            }
        }
        self.forget_linked_files(&mut have);
        have
    }

    /// The start-up check of a v2-only torrent: each piece read whole (pad bytes as zeros) and checked against its
    /// file's tree, `threads` pieces at a time. A piece that cannot be read is missing.
    fn check_each_piece(
        &self,
        threads: usize,
        have: &mut Bitfield,
        progress: impl Fn(u64) + Sync,
        stop: &std::sync::atomic::AtomicBool,
    ) {
        let next = std::sync::atomic::AtomicU32::new(0);
        let done = Mutex::new(0u64);
        let found = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..threads.clamp(1, 64) {
                scope.spawn(|| {
                    let mut buffer = Vec::with_capacity(self.piece_length as usize);
                    let mut matched = Vec::new();
                    loop {
                        let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if index >= self.num_pieces || stop.load(Ordering::Acquire) {
                            break;
                        }
                        buffer.clear();
                        let size = self.piece_size(index);
                        if self.read_block(index, 0, size, &mut buffer).is_ok() && self.piece_matches(index, &buffer) {
                            matched.push(index);
                        }
                        let mut done = done.lock().unwrap_or_else(PoisonError::into_inner);
                        *done += u64::from(size);
                        progress(*done);
                    }
                    found.lock().unwrap_or_else(PoisonError::into_inner).extend(matched);
                });
            }
        });
        for index in found.into_inner().unwrap_or_else(PoisonError::into_inner) {
            // In range: only indices below num_pieces were checked.
            let _ = have.set(index);
        }
    }

    /// Whether the torrent is v2-only: its pieces are checked against its files' merkle trees.
    #[must_use]
    pub fn is_v2_only(&self) -> bool {
        matches!(self.hashes, PieceHashes::V2(_))
    }

    /// `data` is piece `index`: its SHA-1, or for a v2-only torrent its merkle hash, is the torrent's (false if
    /// `data` is not exactly that piece's size).
    pub fn piece_matches(&self, index: u32, data: &[u8]) -> bool {
        if data.len() != self.piece_size(index) as usize {
            return false;
        }
        match self.synthetic {
            Some(seed) => synthetic_matches(seed, u64::from(index) * u64::from(self.piece_length), data),
            None => self.hashes.piece_matches(index, data),
        }
    }

    /// Writes a whole, already verified piece with positional writes, creating folders and files as needed (each
    /// file at its full length, sparse, so later pieces can land anywhere in it).
    ///
    /// # Errors
    ///
    /// Out-of-range index or wrong length; a symbolic link on the way; any I/O error (disk full, permission
    /// denied), naming the file or folder.
    pub fn write_piece(&self, index: u32, data: &[u8]) -> Result<(), StorageError> {
        let expected = self.piece_size(index);
        if index >= self.num_pieces {
            return Err(self.piece_out_of_range(index));
        }
        if data.len() != expected as usize {
            return Err(StorageError::WrongPieceLength { path: self.root.clone(), index, expected, got: data.len() });
        }
        if self.synthetic.is_some() {
            return Ok(());
        }
        let start = u64::from(index) * u64::from(self.piece_length);
        let _moving = self.moving.read().unwrap_or_else(PoisonError::into_inner);
        self.for_each_span(start, data.len(), |file, at, range| {
            if self.files[file].pad {
                return Ok(());
            }
            if self.files[file].in_part.load(Ordering::Acquire) {
                let offset = self.files[file].start + at;
                return self
                    .part_handle(true)?
                    .write_all_at(&data[range], offset)
                    .map_err(|source| io_error(&self.part_path, "could not write", source));
            }
            self.handle(file, true)?
                .write_all_at(&data[range], at)
                .map_err(|source| self.io_error(file, "could not write", source))
        })
    }

    /// Appends `length` bytes starting `offset` bytes into piece `index` to `out`, with positional reads. Used to
    /// upload blocks of pieces we have. On error `out` is left as it was.
    ///
    /// # Errors
    ///
    /// A block outside the piece, or a file that cannot be read (missing, shorter than the torrent says, behind a
    /// symbolic link), naming it.
    pub fn read_block(&self, index: u32, offset: u32, length: u32, out: &mut Vec<u8>) -> Result<(), StorageError> {
        let piece_size = self.piece_size(index);
        if index >= self.num_pieces {
            return Err(self.piece_out_of_range(index));
        }
        if u64::from(offset) + u64::from(length) > u64::from(piece_size) {
            return Err(StorageError::BlockOutOfRange { path: self.root.clone(), index, offset, length, piece_size });
        }
        let start = u64::from(index) * u64::from(self.piece_length) + u64::from(offset);
        let before = out.len();
        out.resize(before + length as usize, 0);
        let buffer = &mut out[before..];
        if let Some(seed) = self.synthetic {
            // A liar's blocks are another torrent's bytes: as cheap, and wrong at every byte but by chance.
            synthetic_content(if self.synthetic_lies { !seed } else { seed }, start, buffer);
            return Ok(());
        }
        let _moving = self.moving.read().unwrap_or_else(PoisonError::into_inner);
        let result = self.for_each_span(start, buffer.len(), |file, at, range| {
            if self.files[file].pad {
                // Already zeros: the buffer was zero-filled above.
                return Ok(());
            }
            let length = self.files[file].length;
            if self.files[file].in_part.load(Ordering::Acquire) {
                let offset = self.files[file].start + at;
                return self
                    .part_handle(false)?
                    .read_exact_at(&mut buffer[range], offset)
                    .map_err(|source| io_error(&self.part_path, "could not read", source));
            }
            self.handle(file, false)?.read_exact_at(&mut buffer[range], at).map_err(|source| {
                let source = if source.kind() == io::ErrorKind::UnexpectedEof {
                    io::Error::new(source.kind(), format!("shorter than the torrent's {length} bytes"))
                } else {
                    source
                };
                self.io_error(file, "could not read", source)
            })
        });
        if result.is_err() {
            out.truncate(before);
        }
        result
    }

    /// Creates every zero-length file of the torrent, so a complete download has all its files; call once when
    /// complete. Files already there are left alone: a seeder never rewrites its data.
    ///
    /// # Errors
    ///
    /// A symbolic link or a non-file in the way, or an I/O error, naming the path.
    pub fn create_empty_files(&self) -> Result<(), StorageError> {
        for file in self.files.iter().filter(|file| file.length == 0 && file.priority.get() != Priority::Skip) {
            self.check_folders(file, true)?;
            // create_new is O_EXCL, which never follows a link, even a dangling one.
            let created =
                OpenOptions::new().write(true).create_new(true).custom_flags(libc::O_NOFOLLOW).open(&file.path);
            match created {
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                    let meta = fs::symlink_metadata(&file.path)
                        .map_err(|source| io_error(&file.path, "could not inspect", source))?;
                    if meta.file_type().is_symlink() {
                        return Err(StorageError::Symlink { path: file.path.clone() });
                    }
                    if !meta.is_file() {
                        return Err(StorageError::WrongKind { path: file.path.clone(), expected: "regular file" });
                    }
                }
                Err(source) => return Err(io_error(&file.path, "could not create", source)),
            }
        }
        Ok(())
    }

    /// Each file (pad files left out) with its length and how many of its bytes lie in the pieces of `have`.
    #[must_use]
    pub fn file_progress(&self, have: &Bitfield) -> Vec<FileProgress> {
        let piece_length = u64::from(self.piece_length);
        self.files
            .iter()
            .filter(|file| !file.pad)
            .map(|file| {
                let end = file.start + file.length;
                let mut done = 0;
                if file.length > 0 && piece_length > 0 {
                    let (first, last) = (file.start / piece_length, (end - 1) / piece_length);
                    for index in first..=last {
                        if u32::try_from(index).is_ok_and(|index| have.has(index)) {
                            let piece_start = index * piece_length;
                            let piece_end = (piece_start + piece_length).min(self.total_length);
                            done += piece_end.min(end) - piece_start.max(file.start);
                        }
                    }
                }
                FileProgress { path: file.path.clone(), length: file.length, done, priority: file.priority.get() }
            })
            .collect()
    }

    /// Closes the cached open files (a paused or stopped torrent holds no descriptor); the next read or write
    /// opens its file again.
    pub fn close_files(&self) {
        let mut handles = self.lock();
        let Handles { slots, order, .. } = &mut *handles;
        slots.iter_mut().for_each(|slot| *slot = None);
        order.clear();
        drop(handles);
        *self.part.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// The files' paths, in torrent order.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.files.iter().filter(|file| !file.pad).map(|file| file.path.clone()).collect()
    }

    /// Calls `f(file, offset in the file, range of the buffer)` for each file the `len` bytes from stream offset
    /// `start` touch, in order. The caller has checked that the range lies inside the torrent.
    fn for_each_span(
        &self,
        start: u64,
        len: usize,
        mut f: impl FnMut(usize, u64, Range<usize>) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        // The last file starting at or before `start`: zero-length files share their start with the next file,
        // and partition_point steps past them. The first file starts at 0, so this never underflows.
        let mut index = self.files.partition_point(|file| file.start <= start).saturating_sub(1);
        let mut done = 0usize;
        while done < len {
            let Some(file) = self.files.get(index) else {
                return Err(StorageError::Layout {
                    path: self.root.clone(),
                    reason: "range past the last file".into(),
                });
            };
            let offset = start + done as u64;
            let within = offset.saturating_sub(file.start);
            if within < file.length {
                let n = (len - done).min(usize::try_from(file.length - within).unwrap_or(usize::MAX));
                f(index, within, done..done + n)?;
                done += n;
            }
            index += 1;
        }
        Ok(())
    }

    /// An open handle to file `index`, read-write if `write`, from the cache or freshly opened.
    fn handle(&self, index: usize, write: bool) -> Result<Arc<File>, StorageError> {
        if let Some(Some(handle)) = self.lock().slots.get(index)
            && (handle.writable || !write)
        {
            return Ok(Arc::clone(&handle.file));
        }
        // Opened without the lock held: opening touches the disk, and other files' blocks need not wait.
        let file = Arc::new(self.open(index, write)?);
        let mut handles = self.lock();
        handles.openings += 1;
        let generation = handles.openings;
        let Handles { slots, order, .. } = &mut *handles;
        let Some(slot) = slots.get_mut(index) else {
            return Ok(file);
        };
        match slot {
            // Another thread opened it meanwhile, for writing: that handle serves reads as well.
            Some(existing) if existing.writable => return Ok(Arc::clone(&existing.file)),
            Some(existing) => *existing = Handle { file: Arc::clone(&file), writable: write, generation },
            None => {
                *slot = Some(Handle { file: Arc::clone(&file), writable: write, generation });
                order.push_back(index);
                if order.len() > MAX_OPEN_FILES
                    && let Some(oldest) = order.pop_front()
                    && let Some(evicted) = slots.get_mut(oldest)
                {
                    *evicted = None;
                }
            }
        }
        drop(handles);
        if let Some(open_files) = &self.open_files {
            // Closed without this storage's lock held: the oldest may be another torrent's, or this one's.
            for oldest in open_files.opened(&self.handles, index, generation) {
                close_opened(oldest);
            }
        }
        Ok(file)
    }

    /// Opens file `index` without following links: read-only for uploads (seeding from a read-only folder must
    /// work), read-write once something has to be written, then at the torrent's length.
    fn open(&self, index: usize, write: bool) -> Result<File, StorageError> {
        let file = self.files.get(index).ok_or_else(|| StorageError::Layout {
            path: self.root.clone(),
            reason: format!("no file number {index}"),
        })?;
        self.check_folders(file, write)?;
        let mut options = OpenOptions::new();
        // O_NONBLOCK: a FIFO put where a file belongs must not hang the thread in open(); regular files ignore it.
        options.read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
        if write {
            options.write(true).create(true);
        }
        let action = if write { "could not open for writing" } else { "could not open for reading" };
        let handle = options.open(&file.path).map_err(|source| match source.raw_os_error() {
            Some(libc::ELOOP) => StorageError::Symlink { path: file.path.clone() },
            _ => io_error(&file.path, action, source),
        })?;
        let meta = handle.metadata().map_err(|source| io_error(&file.path, "could not inspect", source))?;
        if !meta.is_file() {
            return Err(StorageError::WrongKind { path: file.path.clone(), expected: "regular file" });
        }
        // Sparse at full length, so pieces land anywhere; a longer file is cut back, or the finished download
        // would differ from the torrent's content. Reads never change the length: a seeder does not rewrite.
        if write && meta.len() != file.length {
            tracing::debug!(path = %file.path.display(), from = meta.len(), to = file.length, "setting file length");
            handle.set_len(file.length).map_err(|source| io_error(&file.path, "could not set the length", source))?;
        }
        Ok(handle)
    }

    /// Refuses a symbolic link or a non-folder among the folders between `dir` and `file`; creates missing ones
    /// when `create` (for reads a missing folder is left for the open to report, naming the file).
    fn check_folders(&self, file: &StoredFile, create: bool) -> Result<(), StorageError> {
        if create && !self.dir.is_dir() {
            fs::create_dir_all(&self.dir)
                .map_err(|source| io_error(&self.dir, "could not create the download folder", source))?;
        }
        let folders: Vec<&Path> = file.path.ancestors().skip(1).take(file.depth - 1).collect();
        for folder in folders.into_iter().rev() {
            match folder_state(folder)? {
                FolderState::Present => {}
                FolderState::Missing if !create => return Ok(()),
                FolderState::Missing => match fs::create_dir(folder) {
                    Ok(()) => {}
                    // Another thread made it first; look again, it must still be a plain folder.
                    Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                        if folder_state(folder)? != FolderState::Present {
                            return Err(io_error(folder, "could not create folder", err));
                        }
                    }
                    Err(source) => return Err(io_error(folder, "could not create folder", source)),
                },
            }
        }
        Ok(())
    }

    /// Clears the pieces of files that are symbolic links or sit below one: the hasher follows links, but uploads
    /// do not, and claiming a piece we then refuse to read would stall the peers asking for it.
    fn forget_linked_files(&self, have: &mut Bitfield) {
        let piece_length = u64::from(self.piece_length);
        let mut folders: HashMap<&Path, bool> = HashMap::new();
        // A file whose bytes are in the part file is not on disk: the part file itself is opened without following
        // links.
        let on_disk = |file: &&StoredFile| file.length > 0 && !file.pad && !file.in_part.load(Ordering::Acquire);
        for file in self.files.iter().filter(on_disk) {
            let first = file.start / piece_length;
            let last = (file.start + file.length - 1) / piece_length;
            let pieces = || (first..=last).filter_map(|piece| u32::try_from(piece).ok());
            if !pieces().any(|piece| have.has(piece)) {
                continue;
            }
            let file_ok = fs::symlink_metadata(&file.path).is_ok_and(|meta| meta.is_file());
            let folders_ok = file.path.ancestors().skip(1).take(file.depth - 1).all(|folder| {
                *folders.entry(folder).or_insert_with(|| matches!(folder_state(folder), Ok(FolderState::Present)))
            });
            if !(file_ok && folders_ok) {
                tracing::warn!(path = %file.path.display(), "not offering data behind a symbolic link");
                for piece in pieces() {
                    let _ = have.clear(piece);
                }
            }
        }
    }

    fn piece_out_of_range(&self, index: u32) -> StorageError {
        StorageError::PieceOutOfRange { path: self.root.clone(), index, num_pieces: self.num_pieces }
    }

    /// Bytes an unprivileged writer may still use on the filesystem of the download folder (or of its nearest
    /// existing parent, before the first write makes it).
    ///
    /// # Errors
    ///
    /// `statvfs` failed on every folder up to the root.
    pub fn free_space(&self) -> io::Result<u64> {
        let mut folder = self.dir.as_path();
        loop {
            match rustix::fs::statvfs(folder) {
                Ok(stats) => return Ok(stats.f_bavail.saturating_mul(stats.f_frsize)),
                Err(err) => match folder.parent() {
                    Some(parent) if err == rustix::io::Errno::NOENT && folder != Path::new(".") => {
                        folder = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
                    }
                    _ => return Err(err.into()),
                },
            }
        }
    }

    fn io_error(&self, file: usize, action: &'static str, source: io::Error) -> StorageError {
        let path = self.files.get(file).map_or_else(|| self.root.clone(), |file| file.path.clone());
        StorageError::Io { path, action, source }
    }

    fn lock(&self) -> MutexGuard<'_, Handles> {
        // The cache stays consistent even if a holder panicked: every update is a single assignment.
        self.handles.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug, PartialEq, Eq)]
enum FolderState {
    Present,
    Missing,
}

/// Whether `folder` is a real folder (not a link to one), missing, or something we must not go through.
fn folder_state(folder: &Path) -> Result<FolderState, StorageError> {
    match fs::symlink_metadata(folder) {
        Ok(meta) if meta.file_type().is_symlink() => Err(StorageError::Symlink { path: folder.to_path_buf() }),
        Ok(meta) if meta.is_dir() => Ok(FolderState::Present),
        Ok(_) => Err(StorageError::WrongKind { path: folder.to_path_buf(), expected: "folder" }),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(FolderState::Missing),
        Err(source) => Err(io_error(folder, "could not inspect", source)),
    }
}

/// The 8-byte word at word index `word` of a synthetic torrent's content: its place, scrambled, and the seed.
fn synthetic_word(seed: u64, word: u64) -> [u8; 8] {
    (word.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ seed).to_le_bytes()
}

/// Fills `out` with a synthetic torrent's bytes from byte `offset` on ([`Storage::synthetic`]).
pub fn synthetic_content(seed: u64, offset: u64, out: &mut [u8]) {
    let mut at = offset;
    let mut rest = out;
    // A partial first word, then whole ones (blocks start on 8-byte boundaries, so usually none).
    while !at.is_multiple_of(8) && !rest.is_empty() {
        rest[0] = synthetic_word(seed, at / 8)[(at % 8) as usize];
        rest = &mut rest[1..];
        at += 1;
    }
    let mut chunks = rest.chunks_exact_mut(8);
    for chunk in &mut chunks {
        chunk.copy_from_slice(&synthetic_word(seed, at / 8));
        at += 8;
    }
    let tail = chunks.into_remainder();
    let word = synthetic_word(seed, at / 8);
    let len = tail.len();
    tail.copy_from_slice(&word[..len]);
}

/// Whether `data` is a synthetic torrent's content from byte `offset` on.
fn synthetic_matches(seed: u64, offset: u64, data: &[u8]) -> bool {
    let mut expected = [0u8; 4096];
    data.chunks(expected.len()).enumerate().all(|(n, chunk)| {
        let expected = &mut expected[..chunk.len()];
        synthetic_content(seed, offset + (n * 4096) as u64, expected);
        expected == chunk
    })
}

fn io_error(path: &Path, action: &'static str, source: io::Error) -> StorageError {
    StorageError::Io { path: path.to_path_buf(), action, source }
}

#[cfg(test)]
#[path = "storage_tests.rs"]
mod tests;
