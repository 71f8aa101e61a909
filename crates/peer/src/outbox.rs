//! What one connection has yet to send: encoded control messages and the blocks the peer asked for.
//!
//! The session fills it while it holds the torrent's state lock (no await, no I/O); the connection's writer task
//! drains it. Keeping the peer's requests here rather than in a channel lets a `cancel` or our `choke` take them
//! back before they are read from disk.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use peer_wire::Message;
use tokio::sync::Notify;

use crate::picker::Block;

/// Requests a peer may have queued with us; libtorrent allows 2,000 and asks for at most 500.
pub const MAX_QUEUED_UPLOADS: usize = 2000;
/// Control bytes (requests, haves...) waiting for a peer that does not read; far more than any honest backlog.
const MAX_PENDING_BYTES: usize = 1 << 20;

#[derive(Debug, Default)]
pub struct Outbox {
    inner: Mutex<Pending>,
    /// Wakes the writer; `notify_one` keeps a permit, so a push between its check and its wait is not lost.
    wake: Notify,
    /// Set once: the connection is over (closed by us, by the peer, or banned). Both tasks watch it.
    closed: AtomicBool,
    /// Closing also wakes the reader, which waits on the socket and on this.
    closing: Notify,
    /// Block bytes sent to this peer, counted by the writer.
    pub uploaded: AtomicU64,
    /// Bytes of any kind the socket took so far, counted as each write returns: shows whether the peer reads.
    pub written: AtomicU64,
}

#[derive(Debug, Default)]
struct Pending {
    bytes: Vec<u8>,
    uploads: VecDeque<Block>,
}

/// One batch for the writer.
#[derive(Debug, Default)]
pub struct Batch {
    pub bytes: Vec<u8>,
    pub uploads: Vec<Block>,
}

impl Outbox {
    /// Queues a control message. A peer that makes us queue more than [`MAX_PENDING_BYTES`] without reading them
    /// (say, by choking and unchoking us in a loop) gets its connection closed instead.
    pub fn push(&self, message: &Message<'_>) {
        let mut pending = self.lock();
        if pending.bytes.len() > MAX_PENDING_BYTES {
            drop(pending);
            self.close();
            return;
        }
        message.encode(&mut pending.bytes);
        drop(pending);
        self.wake.notify_one();
    }

    /// Queues a block the peer asked for; false when its queue is already full (the peer is flooding us).
    pub fn push_upload(&self, block: Block) -> bool {
        let mut pending = self.lock();
        if pending.uploads.len() >= MAX_QUEUED_UPLOADS {
            return false;
        }
        pending.uploads.push_back(block);
        drop(pending);
        self.wake.notify_one();
        true
    }

    /// Drops a queued request the peer cancelled; a block already being sent goes out anyway, which BEP 3 allows.
    /// Returns whether it was still queued.
    pub fn cancel_upload(&self, block: Block) -> bool {
        let mut pending = self.lock();
        let at = pending.uploads.iter().position(|&queued| queued == block);
        at.and_then(|at| pending.uploads.remove(at)).is_some()
    }

    /// We choked the peer: BEP 3 says its outstanding requests are discarded.
    pub fn clear_uploads(&self) {
        self.lock().uploads.clear();
    }

    /// Takes the control bytes and up to `max_uploads` queued blocks, reusing `batch`'s buffers.
    pub fn take(&self, max_uploads: usize, batch: &mut Batch) {
        batch.bytes.clear();
        batch.uploads.clear();
        let mut pending = self.lock();
        std::mem::swap(&mut pending.bytes, &mut batch.bytes);
        let n = pending.uploads.len().min(max_uploads);
        batch.uploads.extend(pending.uploads.drain(..n));
    }

    pub async fn wait(&self) {
        self.wake.notified().await;
    }

    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake.notify_one();
        self.closing.notify_waiters();
        self.closing.notify_one();
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Completes once [`Outbox::close`] was called (at once if it already was).
    pub async fn closed(&self) {
        while !self.is_closed() {
            self.closing.notified().await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
