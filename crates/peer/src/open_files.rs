//! The session's budget of open data files, over every torrent: a torrent's storage keeps the files it reads and
//! writes open (see [`crate::storage`]), and a session of a thousand torrents would otherwise keep up to a thousand
//! times its cache, past the process's descriptor limit, which the sockets need too. Each file opened joins one
//! list, oldest first; past the budget, the oldest is closed, whichever torrent it belongs to (libtorrent's file
//! pool and transmission's open-file cache do the same).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError, Weak};

/// Data files open at once over a session, by default: well under the usual soft limit of 1,024 descriptors.
pub const DEFAULT_MAX_OPEN_FILES: usize = 256;

/// One file a storage opened: whose, which, and which opening (a slot closed and opened again is another).
pub(crate) struct Opened<T> {
    pub(crate) owner: Weak<T>,
    pub(crate) index: usize,
    pub(crate) generation: u64,
}

/// The files open over a session, oldest first.
pub struct OpenFiles<T> {
    max: usize,
    order: Mutex<VecDeque<Opened<T>>>,
}

impl<T> std::fmt::Debug for OpenFiles<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let open = self.order.lock().unwrap_or_else(PoisonError::into_inner).len();
        f.debug_struct("OpenFiles").field("max", &self.max).field("open", &open).finish()
    }
}

impl<T> OpenFiles<T> {
    /// A budget of `max` files (at least 1).
    #[must_use]
    pub fn new(max: usize) -> Arc<OpenFiles<T>> {
        Arc::new(OpenFiles { max: max.max(1), order: Mutex::new(VecDeque::new()) })
    }

    /// File `index` of `owner` was opened (its `generation`-th opening): the files to close now, oldest first,
    /// so that the budget holds. The caller closes them without holding its own lock.
    pub(crate) fn opened(&self, owner: &Arc<T>, index: usize, generation: u64) -> Vec<Opened<T>> {
        let mut order = self.order.lock().unwrap_or_else(PoisonError::into_inner);
        order.push_back(Opened { owner: Arc::downgrade(owner), index, generation });
        let excess = order.len().saturating_sub(self.max);
        order.drain(..excess).collect()
    }
}
