//! A full disk: downloading pauses, seeding goes on, and it resumes when the filesystem has room again.

use super::*;

impl Swarm {
    /// A good piece could not be written for lack of space: it goes back to the pool, unverified, and no new
    /// request goes out until [`Swarm::check_disk_space`] finds room. What is verified stays so and is seeded.
    pub(super) fn disk_is_full(&self, index: u32, err: &StorageError) {
        let path = err.full_disk_path().map(std::path::Path::to_path_buf).unwrap_or_default();
        let free = self.storage.free_space().unwrap_or(0);
        let mut state = self.lock();
        state.picker.piece_failed(index);
        let needed = state.picker.missing_bytes();
        let first = state.disk_full.is_none();
        state.disk_full = Some(DiskFull { path: path.clone() });
        // Blocks still on their way would only fill pieces that cannot be written: cancel them.
        let keys: Vec<PeerKey> = state.peers.keys().copied().collect();
        for key in keys {
            let returned = state.picker.peer_choked_us(key);
            if let Some(peer) = state.peers.get(&key) {
                for block in returned {
                    peer.outbox.push(&Message::Cancel {
                        index: block.piece,
                        begin: block.offset,
                        length: block.length,
                    });
                }
            }
        }
        let State { buffers, picker, .. } = &mut *state;
        buffers.retain(|&index, _| picker.in_progress(index));
        drop(state);
        if first {
            self.emit(Event::DiskFull { path, piece: index, free, needed });
        }
    }

    /// While the disk is full: resumes downloading once the download folder's filesystem has room for some
    /// pieces (or for all that is missing, if that is less). Does blocking I/O (`statvfs`): call it off the async
    /// threads.
    pub fn check_disk_space(&self) {
        let Some(full) = self.lock().disk_full.clone() else { return };
        let Ok(free) = self.storage.free_space() else { return };
        let mut state = self.lock();
        let room = (4 * u64::from(self.storage.piece_length())).max(16 << 20).min(state.picker.missing_bytes());
        if free < room || state.disk_full.is_none() {
            return;
        }
        state.disk_full = None;
        self.refill_all(&mut state);
        drop(state);
        tracing::debug!(path = %full.path.display(), "room on disk again");
        self.emit(Event::DiskRoom { free });
    }

    /// Whether downloading is paused for a full disk.
    pub fn is_disk_full(&self) -> bool {
        self.lock().disk_full.is_some()
    }
}
