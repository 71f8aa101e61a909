//! A worker's datagrams in batches: up to [`BATCH`] requests read with one `recvmmsg` (waiting only for the first)
//! and their replies sent with one `sendmmsg`, so that under load the two system calls per request, which cost
//! more than answering it, are paid once per batch. When requests trickle in, a batch is one request and the
//! worker behaves as with `recv_from` and `send_to`. Nothing is allocated after [`Incoming::new`] and
//! [`Outgoing::new`].
//!
//! Elsewhere than Linux the batch is a single datagram, read and answered with the standard library.

use std::io;
use std::net::{SocketAddr, UdpSocket};

use super::{MAX_REPLY_PAYLOAD, RECEIVE_BUFFER};

/// Requests read at most with one system call.
pub const BATCH: usize = 32;

/// The requests of one batch.
pub struct Incoming {
    requests: Box<[[u8; RECEIVE_BUFFER]; BATCH]>,
    /// Length and sender of each request read, `received` of them.
    meta: [(usize, Option<SocketAddr>); BATCH],
    received: usize,
    #[cfg(target_os = "linux")]
    headers: nix::sys::socket::MultiHeaders<nix::sys::socket::SockaddrStorage>,
}

/// The replies of one batch, one after another, with their lengths and addresses.
pub struct Outgoing {
    replies: Box<[u8; BATCH * MAX_REPLY_PAYLOAD]>,
    reply_lens: [usize; BATCH],
    reply_to: [Option<SocketAddr>; BATCH],
    replies_ready: usize,
    used: usize,
    #[cfg(target_os = "linux")]
    headers: nix::sys::socket::MultiHeaders<nix::sys::socket::SockaddrStorage>,
}

impl Incoming {
    pub fn new() -> Incoming {
        Incoming {
            requests: Box::new([[0; RECEIVE_BUFFER]; BATCH]),
            meta: [(0, None); BATCH],
            received: 0,
            #[cfg(target_os = "linux")]
            headers: nix::sys::socket::MultiHeaders::preallocate(BATCH, None),
        }
    }

    /// Reads what is waiting, at least one datagram (blocking up to the socket's read timeout) and at most
    /// [`BATCH`].
    ///
    /// # Errors
    ///
    /// Nothing arrived within the read timeout (`WouldBlock` or `TimedOut`), or the read failed.
    #[cfg(target_os = "linux")]
    pub fn receive(&mut self, socket: &UdpSocket) -> io::Result<()> {
        use nix::sys::socket::{MsgFlags, recvmmsg};
        use std::io::IoSliceMut;
        use std::os::fd::AsRawFd;

        self.received = 0;
        let mut slices = self.requests.each_mut().map(|buffer| [IoSliceMut::new(&mut buffer[..])]);
        let results =
            recvmmsg(socket.as_raw_fd(), &mut self.headers, slices.iter_mut(), MsgFlags::MSG_WAITFORONE, None)
                .map_err(io::Error::from)?;
        for (slot, message) in self.meta.iter_mut().zip(results) {
            *slot = (message.bytes, message.address.as_ref().and_then(to_std));
            self.received += 1;
        }
        Ok(())
    }

    #[cfg(not(target_os = "linux"))]
    pub fn receive(&mut self, socket: &UdpSocket) -> io::Result<()> {
        self.received = 0;
        let (len, source) = socket.recv_from(&mut self.requests[0])?;
        self.meta[0] = (len, Some(source));
        self.received = 1;
        Ok(())
    }

    /// Each request read, with its sender.
    pub fn requests(&self) -> impl Iterator<Item = (&[u8], SocketAddr)> {
        self.meta[..self.received]
            .iter()
            .zip(self.requests.iter())
            .filter_map(|(&(len, source), buffer)| Some((&buffer[..len.min(RECEIVE_BUFFER)], source?)))
    }
}

impl Outgoing {
    pub fn new() -> Outgoing {
        Outgoing {
            replies: Box::new([0; BATCH * MAX_REPLY_PAYLOAD]),
            reply_lens: [0; BATCH],
            reply_to: [None; BATCH],
            replies_ready: 0,
            used: 0,
            #[cfg(target_os = "linux")]
            headers: nix::sys::socket::MultiHeaders::preallocate(BATCH, None),
        }
    }

    /// Keeps `reply` for `to` until [`Outgoing::send`]. Replies are cut to fit one packet by their writers; one
    /// that does not (or one past [`BATCH`]) is dropped, as a lost datagram.
    pub fn push(&mut self, reply: &[u8], to: SocketAddr) {
        if reply.len() > MAX_REPLY_PAYLOAD || self.replies_ready == BATCH {
            return;
        }
        let Some(slot) = self.replies.get_mut(self.used..self.used + reply.len()) else { return };
        slot.copy_from_slice(reply);
        self.reply_lens[self.replies_ready] = reply.len();
        self.reply_to[self.replies_ready] = Some(to);
        self.replies_ready += 1;
        self.used += reply.len();
    }

    /// Sends the replies kept by [`Outgoing::push`]; one that cannot be sent is dropped, as a lost datagram.
    #[cfg(target_os = "linux")]
    pub fn send(&mut self, socket: &UdpSocket) {
        use nix::sys::socket::{MsgFlags, SockaddrStorage, sendmmsg};
        use std::io::IoSlice;
        use std::os::fd::AsRawFd;

        let mut sent = 0;
        while sent < self.replies_ready {
            let mut starts = [0usize; BATCH];
            let mut offset = 0;
            for (index, start) in starts.iter_mut().enumerate().take(self.replies_ready) {
                *start = offset;
                offset += self.reply_lens[index];
            }
            let slices: [[IoSlice<'_>; 1]; BATCH] = std::array::from_fn(|index| {
                let start = starts[index];
                let end = if index < self.replies_ready { start + self.reply_lens[index] } else { start };
                [IoSlice::new(&self.replies[start..end])]
            });
            let addresses: [Option<SockaddrStorage>; BATCH] =
                std::array::from_fn(|index| self.reply_to[index].map(SockaddrStorage::from));
            let pending = sent..self.replies_ready;
            let result = sendmmsg(
                socket.as_raw_fd(),
                &mut self.headers,
                slices[pending.clone()].iter(),
                &addresses[pending],
                [],
                MsgFlags::empty(),
            );
            match result {
                Ok(results) => match results.count() {
                    0 => break,
                    count => sent += count,
                },
                Err(nix::errno::Errno::EINTR) => {}
                Err(err) => {
                    // The first reply of what is left could not go: drop it (as a lost datagram) and go on.
                    tracing::debug!(to = ?self.reply_to[sent], "reply not sent: {err}");
                    sent += 1;
                }
            }
        }
        self.replies_ready = 0;
        self.used = 0;
    }

    #[cfg(not(target_os = "linux"))]
    pub fn send(&mut self, socket: &UdpSocket) {
        let mut offset = 0;
        for index in 0..self.replies_ready {
            let reply = &self.replies[offset..offset + self.reply_lens[index]];
            offset += self.reply_lens[index];
            if let Some(to) = self.reply_to[index]
                && let Err(err) = socket.send_to(reply, to)
            {
                tracing::debug!(%to, "reply not sent: {err}");
            }
        }
        self.replies_ready = 0;
        self.used = 0;
    }
}

#[cfg(target_os = "linux")]
fn to_std(address: &nix::sys::socket::SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    address.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}
