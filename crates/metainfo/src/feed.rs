//! The stream's files as they are found, shared by whoever finds them and the hashers.
//!
//! A folder walk pushes files in piece order while hashers claim batches of pieces that the files
//! found so far cover. The walk may pass open handles along (at most [`HANDLE_BUDGET`]); a handle is
//! closed once a hasher has read its file's last byte.

use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::hashing::{DataFile, batch_bytes};

/// Files a walk may hold open for the hashers at once (each open saves the hasher a path lookup and
/// the walk a `stat`). Well under the usual soft limit of 1,024 descriptors.
const HANDLE_BUDGET: usize = 256;

/// The files of the stream in piece order, shared by whoever finds them (a folder walk, or a list
/// known up front) and the hashers that read them.
pub(crate) struct Feed {
    state: Mutex<FeedState>,
    /// Hashers wait here for files to cover their next batch.
    grown: Condvar,
    /// The walk waits here for hashers to free file handles.
    handles_freed: Condvar,
    /// Bytes per batch when hashers read the feed while it is filled; the walk then waits for them
    /// to free file handles rather than going on without. `None`: the feed is only a listing.
    batch_bytes: Option<u64>,
}

#[derive(Default)]
struct FeedState {
    files: Vec<FeedFile>,
    /// Sum of the lengths pushed so far.
    total: u64,
    /// No more files will come.
    closed: bool,
    /// Everyone stops: the walk failed, or a piece could not be read.
    abandoned: bool,
    /// Handles held in `files` or reserved by the walk.
    handles: usize,
    /// Stream bytes claimed by hashers so far (always a whole number of batches until the end).
    claimed: u64,
    // Who waits, so that the common case (nobody) costs no wake-up system call.
    hashers_waiting: usize,
    walk_waiting: bool,
}

struct FeedFile {
    file: DataFile,
    start: u64,
    /// Opened by the walk; dropped once a hasher has read the file's last byte.
    handle: Option<Arc<File>>,
}

/// A file of the feed, as a hasher sees it.
pub(crate) struct Located {
    pub(crate) index: usize,
    pub(crate) start: u64,
    pub(crate) length: u64,
    pub(crate) path: PathBuf,
    pub(crate) handle: Option<Arc<File>>,
}

impl Feed {
    /// A feed that hashers read while a walk fills it with `batch_bytes(piece_length)`.
    pub(crate) fn streaming(piece_length: u64) -> Feed {
        Feed {
            state: Mutex::default(),
            grown: Condvar::new(),
            handles_freed: Condvar::new(),
            batch_bytes: Some(batch_bytes(piece_length)),
        }
    }

    /// A feed that is only read once complete: it never holds file handles.
    pub(crate) fn listing_only() -> Feed {
        Feed { state: Mutex::default(), grown: Condvar::new(), handles_freed: Condvar::new(), batch_bytes: None }
    }

    fn lock(&self) -> MutexGuard<'_, FeedState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reserves a file handle for the walk to pass on with [`Feed::push`]. When the budget is spent and
    /// the hashers have work ready, waits for them to free one; `false` means open nothing, just list.
    pub(crate) fn reserve_handle(&self) -> bool {
        let Some(batch_bytes) = self.batch_bytes else { return false };
        let mut state = self.lock();
        loop {
            if state.abandoned {
                return false;
            }
            if state.handles < HANDLE_BUDGET {
                state.handles += 1;
                return true;
            }
            // Waiting is safe only while a batch is ready: a hasher will then read on and free handles.
            // Otherwise (one batch spanning more files than the budget) the walk goes on without.
            if state.total < state.claimed + batch_bytes {
                return false;
            }
            // Woken when half the budget is free, not at every handle, so the walk runs in bursts.
            state.walk_waiting = true;
            state = self.handles_freed.wait(state).unwrap_or_else(PoisonError::into_inner);
            state.walk_waiting = false;
        }
    }

    /// Gives back a handle reserved but not pushed.
    pub(crate) fn unreserve_handle(&self) {
        let mut state = self.lock();
        state.handles = state.handles.saturating_sub(1);
    }

    /// Appends the next file of the stream, with the handle reserved for it if the walk opened it.
    /// `false` when the hashers have stopped, so the walk can too.
    pub(crate) fn push(&self, file: DataFile, handle: Option<File>) -> bool {
        let mut state = self.lock();
        let start = state.total;
        state.total += file.length;
        state.files.push(FeedFile { file, start, handle: handle.map(Arc::new) });
        if state.hashers_waiting > 0 && self.batch_bytes.is_none_or(|bytes| state.total >= state.claimed + bytes) {
            self.grown.notify_all();
        }
        !state.abandoned
    }

    /// No more files: `ok` false also stops the hashers (the walk failed). Only the first call counts,
    /// so a guard may call it again when the walk unwinds.
    pub(crate) fn close(&self, ok: bool) {
        let mut state = self.lock();
        if !state.closed {
            state.closed = true;
            state.abandoned |= !ok;
            self.wake_everyone();
        }
    }

    /// Stops every hasher and the walk.
    pub(crate) fn abandon(&self) {
        let mut state = self.lock();
        state.abandoned = true;
        self.wake_everyone();
    }

    fn wake_everyone(&self) {
        self.grown.notify_all();
        self.handles_freed.notify_all();
    }

    pub(crate) fn total(&self) -> u64 {
        self.lock().total
    }

    pub(crate) fn closed_total(&self) -> Option<u64> {
        let state = self.lock();
        state.closed.then_some(state.total)
    }

    /// The next batch of stream bytes to hash, once the files found cover it; `None` at the end.
    pub(crate) fn claim(&self, batch_bytes: u64) -> Option<(u64, u64)> {
        let mut state = self.lock();
        loop {
            if state.abandoned {
                return None;
            }
            let start = state.claimed;
            let covered = state.total >= start + batch_bytes;
            if covered || state.closed {
                let end = (start + batch_bytes).min(state.total);
                if end <= start {
                    return None;
                }
                state.claimed = end;
                if state.walk_waiting {
                    // The walk may have been waiting on this batch being ready; now it may not be.
                    self.handles_freed.notify_all();
                }
                return Some((start, end));
            }
            state.hashers_waiting += 1;
            state = self.grown.wait(state).unwrap_or_else(PoisonError::into_inner);
            state.hashers_waiting -= 1;
        }
    }

    /// The non-empty file holding stream offset `offset`.
    pub(crate) fn locate(&self, offset: u64) -> Option<Located> {
        let state = self.lock();
        // The last file starting at or before `offset`; zero-length files share their start with the
        // next file, and partition_point skips past them.
        let index = state.files.partition_point(|file| file.start <= offset).checked_sub(1)?;
        let found = &state.files[index];
        (offset < found.start + found.file.length).then(|| Located {
            index,
            start: found.start,
            length: found.file.length,
            path: found.file.path.clone(),
            handle: found.handle.clone(),
        })
    }

    /// The file's last byte has been read: close the walk's handle (readers keep their own clones).
    pub(crate) fn release(&self, index: usize) {
        let mut state = self.lock();
        if let Some(file) = state.files.get_mut(index)
            && file.handle.take().is_some()
        {
            state.handles = state.handles.saturating_sub(1);
            if state.walk_waiting && state.handles <= HANDLE_BUDGET / 2 {
                self.handles_freed.notify_all();
            }
        }
    }

    /// The files pushed, in order (for a feed no longer shared).
    pub(crate) fn into_files(self) -> Vec<DataFile> {
        let state = self.state.into_inner().unwrap_or_else(PoisonError::into_inner);
        state.files.into_iter().map(|file| file.file).collect()
    }
}
