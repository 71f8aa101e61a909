//! Reading a file for hashing through a memory map, so its bytes are hashed where they lie in the page cache.
//!
//! Copying them out with `pread` first costs a fifth of the hashing time here (page cache to user space at about
//! 5.5 GB/s against SHA-256 at 1.37 GB/s per core: 1.07 GB/s read and hashed, 1.29 GB/s mapped), which is what kept
//! v2 creation below 90% of the cores' SHA-256 rate.
//!
//! The hazard of a map is a file that shrinks while mapped (another program truncates it): touching a page past
//! its new end raises SIGBUS, which would kill the process. So while any range is mapped, a SIGBUS handler is in
//! place: a fault inside one of our ranges gets a page of zeros mapped over the missing one (so the read goes on)
//! and marks the range, which [`MappedRange::lost_pages`] reports and the caller turns into the same error a short
//! `pread` gives. A fault anywhere else restores the default action and lets it happen again, as if no handler
//! had been installed.
//!
//! The handler does only what a signal handler may: atomic loads and stores, and one `mmap` system call. The ranges
//! are registered in a fixed table of atomics ([`SLOTS`] of them); when it is full, or a map cannot be made, the
//! caller reads with `pread` as before.
//!
//! The `unsafe` here is the `mmap`/`munmap`/`madvise` calls, the slice over the mapping, and installing the
//! handler; with `sha1_pair`, `sha1_lanes` and `sha256_lanes` these are the project's only
//! `unsafe` code.

#![allow(unsafe_code)]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Ranges mapped at once, across all threads.
const SLOTS: usize = 64;

/// One mapped range: `[start, end)` of the address space (0, 0 when free), and whether a page of it went missing.
struct Slot {
    start: AtomicUsize,
    end: AtomicUsize,
    lost: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Slot = Slot { start: AtomicUsize::new(0), end: AtomicUsize::new(0), lost: AtomicBool::new(false) };
static TABLE: [Slot; SLOTS] = [FREE; SLOTS];
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(4096);
/// The SIGBUS handling in place before ours, put back for a fault that is not in one of our ranges.
static PREVIOUS: OnceLock<Previous> = OnceLock::new();

struct Previous(libc::sigaction);
// SAFETY: a plain C struct, written once before the handler that reads it is installed, never changed after.
unsafe impl Sync for Previous {}
unsafe impl Send for Previous {}

/// Bytes of a file, mapped read-only, and released when dropped.
pub(crate) struct MappedRange {
    base: *mut libc::c_void,
    map_len: usize,
    /// Where the asked-for bytes start within the map (the map starts on a page boundary).
    skip: usize,
    len: usize,
    slot: usize,
}

// SAFETY: the map is read-only, and unmapped only when the value is dropped: any thread may read it.
unsafe impl Send for MappedRange {}
// SAFETY: as above; `&self` methods only read it or ask the kernel to fault it in.
unsafe impl Sync for MappedRange {}

impl MappedRange {
    /// Maps `len` bytes of `file` from `offset`, read-only. `None` when it cannot (an empty range, no free slot, a
    /// file that cannot be mapped): read it instead.
    pub(crate) fn new(file: &File, offset: u64, len: usize) -> Option<MappedRange> {
        if len == 0 || !enabled() || !handler_installed() {
            return None;
        }
        let page = PAGE_SIZE.load(Ordering::Relaxed);
        let skip = (offset % page as u64) as usize;
        let map_len = len.checked_add(skip)?;
        let start = libc::off_t::try_from(offset - skip as u64).ok()?;
        let slot = claim_slot()?;
        // SAFETY: a new private read-only mapping chosen by the kernel: it overlaps nothing of ours.
        let base = unsafe {
            libc::mmap(std::ptr::null_mut(), map_len, libc::PROT_READ, libc::MAP_PRIVATE, file.as_raw_fd(), start)
        };
        if base == libc::MAP_FAILED {
            TABLE[slot].start.store(0, Ordering::Release);
            return None;
        }
        let entry = &TABLE[slot];
        entry.lost.store(false, Ordering::Relaxed);
        entry.end.store(base as usize + map_len, Ordering::Relaxed);
        entry.start.store(base as usize, Ordering::Release);
        Some(MappedRange { base, map_len, skip, len, slot })
    }

    /// The bytes; a page the file no longer has reads as zeros (see [`MappedRange::lost_pages`]).
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: the map is `map_len` readable bytes from `base` for as long as `self` lives (pages that go
        // missing are replaced, never unmapped, by the handler), and nothing writes through it.
        unsafe { std::slice::from_raw_parts(self.base.cast::<u8>().add(self.skip), self.len) }
    }

    /// Fills the page tables for `len` bytes from `at` (within the range) in one call, before they are read: one
    /// system call instead of a fault every few pages, under the address space's read lock, so threads reading
    /// other parts of the map do not wait for each other (mapping and unmapping a range per batch did). Best
    /// effort: a kernel before 5.14 says no, and the pages then fault in as they are read.
    pub(crate) fn populate(&self, at: usize, len: usize) {
        let page = PAGE_SIZE.load(Ordering::Relaxed);
        let from = (self.skip + at) & !(page - 1);
        let to = (self.skip + at + len).min(self.map_len);
        if from < to {
            // SAFETY: the range lies inside our map; MADV_POPULATE_READ only faults its pages in.
            unsafe { libc::madvise(self.base.cast::<u8>().add(from).cast(), to - from, libc::MADV_POPULATE_READ) };
        }
    }

    /// Drops the page tables of `len` bytes from `at` once they are hashed (the pages stay in the page cache), so
    /// that the process's resident size does not grow with the file.
    pub(crate) fn release(&self, at: usize, len: usize) {
        let page = PAGE_SIZE.load(Ordering::Relaxed);
        let from = (self.skip + at) & !(page - 1);
        let to = (self.skip + at + len).min(self.map_len);
        if from < to {
            // SAFETY: the range lies inside our read-only private map, never written: dropping its page tables
            // loses nothing, and a later read faults the same file bytes back in.
            unsafe { libc::madvise(self.base.cast::<u8>().add(from).cast(), to - from, libc::MADV_DONTNEED) };
        }
    }

    /// Whether the file shrank under the map while its bytes were read: they are not the file's then.
    pub(crate) fn lost_pages(&self) -> bool {
        TABLE[self.slot].lost.load(Ordering::Acquire)
    }
}

impl Drop for MappedRange {
    fn drop(&mut self) {
        let entry = &TABLE[self.slot];
        entry.end.store(0, Ordering::Relaxed);
        // SAFETY: `base` and `map_len` are the map made in `new`; no slice of it outlives `self`.
        unsafe { libc::munmap(self.base, self.map_len) };
        entry.start.store(0, Ordering::Release);
    }
}

/// Whether maps are used: `BT_MMAP=0` turns them off (to compare with reads, in benchmarks).
fn enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var("BT_MMAP").as_deref() != Ok("0"))
}

/// A free slot of the table, claimed for a map about to be made.
fn claim_slot() -> Option<usize> {
    // A claimed slot holds a start of 1 until its map is made: no real address, and no fault can match it.
    TABLE.iter().position(|slot| slot.start.compare_exchange(0, 1, Ordering::AcqRel, Ordering::Relaxed).is_ok())
}

/// Installs the SIGBUS handler once per process; false if that failed (then nothing is mapped).
fn handler_installed() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if let Ok(page) = usize::try_from(page)
            && page.is_power_of_two()
        {
            PAGE_SIZE.store(page, Ordering::Relaxed);
        }
        // SAFETY: a zeroed sigaction is a valid starting point; the handler is an `extern "C"` function of the
        // signature SA_SIGINFO calls for. The handler in place before (Rust's runtime has one) is kept, for the
        // faults that are not ours.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigbus as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut action.sa_mask);
            let mut previous: libc::sigaction = std::mem::zeroed();
            let installed = libc::sigaction(libc::SIGBUS, &action, &mut previous) == 0;
            if installed {
                let _ = PREVIOUS.set(Previous(previous));
            }
            installed
        }
    })
}

/// SIGBUS: a page of one of our maps is gone (the file shrank): map zeros over it and mark the range. Any other
/// SIGBUS gets the handling that was there before ours back (the default if none), and happens again on return.
extern "C" fn on_sigbus(_signal: libc::c_int, info: *mut libc::siginfo_t, _context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler; si_addr is the faulting address.
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = PAGE_SIZE.load(Ordering::Relaxed);
    for slot in &TABLE {
        let start = slot.start.load(Ordering::Acquire);
        if start > 1 && addr >= start && addr < slot.end.load(Ordering::Relaxed) {
            let at = (addr & !(page - 1)) as *mut libc::c_void;
            // SAFETY: the page lies inside a read-only map we own; replacing it with zeros changes nothing else.
            let replaced = unsafe {
                libc::mmap(at, page, libc::PROT_READ, libc::MAP_PRIVATE | libc::MAP_FIXED | libc::MAP_ANONYMOUS, -1, 0)
            };
            if replaced != libc::MAP_FAILED {
                slot.lost.store(true, Ordering::Release);
                return;
            }
            break;
        }
    }
    // SAFETY: putting back the earlier disposition (or the default) is always allowed; the fault then repeats
    // and goes where it would have gone without us.
    unsafe {
        match PREVIOUS.get() {
            Some(Previous(previous)) => {
                libc::sigaction(libc::SIGBUS, previous, std::ptr::null_mut());
            }
            None => {
                libc::signal(libc::SIGBUS, libc::SIG_DFL);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_range_reads_as_the_file_does_from_any_offset() {
        let mut file = tempfile::tempfile().expect("tempfile");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 4099) as u8).collect();
        file.write_all(&data).expect("write");
        for (offset, len) in [(0usize, data.len()), (1, 5000), (4095, 4098), (200_000, 100_000)] {
            let map = MappedRange::new(&file, offset as u64, len).expect("mapped");
            assert_eq!(map.bytes(), &data[offset..offset + len]);
            assert!(!map.lost_pages());
        }
        assert!(MappedRange::new(&file, 0, 0).is_none(), "nothing to map");
    }

    #[test]
    fn a_file_that_shrinks_under_the_map_reads_as_zeros_and_says_so() {
        let mut file = tempfile::tempfile().expect("tempfile");
        file.write_all(&vec![0xA5u8; 64 * 1024]).expect("write");
        let map = MappedRange::new(&file, 0, 64 * 1024).expect("mapped");
        file.set_len(4096).expect("truncate");
        let bytes = map.bytes();
        // The first page is still the file's; the rest went, and reads as zeros instead of killing the process.
        assert!(bytes[..4096].iter().all(|&byte| byte == 0xA5));
        assert!(bytes[8192..].iter().all(|&byte| byte == 0));
        assert!(map.lost_pages());
        drop(map);
        let again = MappedRange::new(&file, 0, 4096).expect("mapped");
        assert!(!again.lost_pages(), "a freed slot starts clean");
    }
}
