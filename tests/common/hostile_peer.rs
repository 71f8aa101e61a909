//! A test double that lies: it speaks the real peer wire protocol and serves a torrent's bytes, but the blocks of
//! chosen pieces carry wrong data. It claims every piece, unchokes at once and answers every request.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use peer_wire::{Bitfield, Handshake, Message};

pub struct HostilePeer {
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    bad_blocks: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

struct Torrent {
    data: Vec<u8>,
    piece_length: usize,
    info_hash: [u8; 20],
    corrupt: Box<dyn Fn(u32) -> bool + Send + Sync>,
    half_then_choke: bool,
}

impl HostilePeer {
    /// Listens on `ip`:0 for peers of the torrent `info_hash` whose whole byte stream is `data`; blocks of the
    /// pieces `corrupt` picks are sent with every byte flipped.
    pub fn start(
        ip: &str,
        data: Vec<u8>,
        piece_length: usize,
        info_hash: [u8; 20],
        corrupt: impl Fn(u32) -> bool + Send + Sync + 'static,
    ) -> HostilePeer {
        Self::start_with(ip, data, piece_length, info_hash, corrupt, false)
    }

    /// As [`HostilePeer::start`]; with `half_then_choke`, only the blocks in the first half of each piece are
    /// answered: a request for the second half is met with a choke and an unchoke at once, so the downloader
    /// asks someone else for it and the piece ends up sent by two peers. Hash requests (BEP 52) are rejected.
    pub fn start_with(
        ip: &str,
        data: Vec<u8>,
        piece_length: usize,
        info_hash: [u8; 20],
        corrupt: impl Fn(u32) -> bool + Send + Sync + 'static,
        half_then_choke: bool,
    ) -> HostilePeer {
        let listener = TcpListener::bind((ip, 0)).expect("bind the hostile peer");
        listener.set_nonblocking(true).expect("nonblocking listener");
        let addr = listener.local_addr().expect("local address");
        let torrent = Arc::new(Torrent { data, piece_length, info_hash, corrupt: Box::new(corrupt), half_then_choke });
        let (connections, bad_blocks, stop) = Default::default();
        let (c, b, s): (Arc<AtomicUsize>, Arc<AtomicUsize>, Arc<AtomicBool>) =
            (Arc::clone(&connections), Arc::clone(&bad_blocks), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (torrent, c, b, s) = (torrent.clone(), c.clone(), b.clone(), s.clone());
                        std::thread::spawn(move || serve(stream, &torrent, &c, &b, &s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        HostilePeer { addr, connections, bad_blocks, stop, thread: Some(thread) }
    }

    /// Connections that completed the handshake.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Corrupted blocks sent so far.
    pub fn bad_blocks(&self) -> usize {
        self.bad_blocks.load(Ordering::SeqCst)
    }
}

impl Drop for HostilePeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(mut stream: TcpStream, torrent: &Torrent, connections: &AtomicUsize, bad: &AtomicUsize, stop: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut theirs = [0u8; 68];
    if stream.read_exact(&mut theirs).is_err() {
        return;
    }
    match Handshake::decode(&theirs) {
        Ok(Some((handshake, _))) if handshake.info_hash == torrent.info_hash => {}
        _ => return,
    }
    connections.fetch_add(1, Ordering::SeqCst);
    let pieces = torrent.data.len().div_ceil(torrent.piece_length) as u32;
    let mut out = Handshake::new(torrent.info_hash, *b"-XX0001-hostile-peer").encode().to_vec();
    Bitfield::full(pieces).to_message().encode(&mut out);
    Message::Unchoke.encode(&mut out);
    if stream.write_all(&out).is_err() {
        return;
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        let n = match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => n,
            Err(err) if matches!(err.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(_) => return,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut out = Vec::new();
        let mut used = 0;
        let mut skipped = false;
        while let Ok(Some((message, len))) = peer_wire::decode(&buf[used..], peer_wire::MAX_MESSAGE_LEN) {
            used += len;
            match message {
                Message::Request { begin, .. }
                    if torrent.half_then_choke && begin as usize >= torrent.piece_length / 2 =>
                {
                    skipped = true;
                }
                Message::Request { index, begin, length } => {
                    let start = index as usize * torrent.piece_length + begin as usize;
                    let Some(bytes) = torrent.data.get(start..start + length as usize) else { return };
                    let mut block = bytes.to_vec();
                    if (torrent.corrupt)(index) {
                        block.iter_mut().for_each(|byte| *byte = !*byte);
                        bad.fetch_add(1, Ordering::SeqCst);
                    }
                    Message::Piece { index, begin, block: &block }.encode(&mut out);
                }
                Message::HashRequest { pieces_root, base_layer, index, length, proof_layers } => {
                    Message::HashReject { pieces_root, base_layer, index, length, proof_layers }.encode(&mut out);
                }
                _ => {}
            }
        }
        if skipped {
            Message::Choke.encode(&mut out);
            Message::Unchoke.encode(&mut out);
        }
        buf.drain(..used);
        if stream.write_all(&out).is_err() {
            return;
        }
    }
}
