//! How a swarm ends: it closes (the torrent stops or is removed), or dozes (a seeding torrent nobody needs lets
//! its swarm go, see `dozing`), and what the torrent's loop asks to decide either.

use super::*;

impl Swarm {
    /// Nothing for the once-a-second housekeeping to do until a peer comes: no peer, nothing moving (the rates of
    /// the last tick are 0), the disk not full. Thousands of idle torrents then cost no timer.
    pub fn is_quiet(&self) -> bool {
        let state = self.lock();
        state.peers.is_empty()
            && state.disk_full.is_none()
            && state.download_rate.bytes_per_second() == 0
            && state.upload_rate.bytes_per_second() == 0
    }

    /// Whether the torrent is stopping: [`Swarm::close_all`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Whether nothing but the torrent itself needs the swarm: the download is over, nobody is connected,
    /// dialled or waiting to be dialled, no piece is in memory and the disk is fine. A torrent this idle can doze
    /// off (its rates, still falling from the last peer's transfers, go with it).
    pub(crate) fn can_doze(&self) -> bool {
        if !self.candidates().is_empty() {
            return false;
        }
        let state = self.lock();
        self.is_finished()
            && state.fatal.is_none()
            && state.peers.is_empty()
            && state.addresses.len() == 0
            && state.buffers.is_empty()
            && state.hashing_bytes == 0
            && state.disk_full.is_none()
    }

    /// Closes the swarm for a doze (see [`Swarm::can_doze`]): as [`Swarm::close_all`], but the announcers hand
    /// back where they stand instead of saying goodbye.
    pub(crate) fn doze(&self) {
        self.dozing.store(true, Ordering::Release);
        self.close_all();
    }

    pub(crate) fn is_dozing(&self) -> bool {
        self.dozing.load(Ordering::Acquire)
    }

    /// Returns once [`Swarm::close_all`] has run: a connection still dialling or handshaking gives up then.
    pub(crate) async fn until_closed(&self) {
        loop {
            let closing = self.closing.notified();
            tokio::pin!(closing);
            closing.as_mut().enable();
            if self.closed.load(Ordering::Acquire) {
                return;
            }
            closing.await;
        }
    }

    /// Closes every connection, and those still dialling or handshaking (the torrent is stopping or removed).
    pub fn close_all(&self) {
        let state = self.lock();
        // Under the state's lock, as `admit` reads it: nobody is admitted after the outboxes below are closed.
        self.closed.store(true, Ordering::Release);
        for peer in state.peers.values() {
            peer.outbox.close();
        }
        drop(state);
        self.closing.notify_waiters();
    }
}
