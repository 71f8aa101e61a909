//! Cheap denial-of-service attackers for tests/peer_dos.rs: silent sockets, idle "interested" peers and peers
//! that leave pieces one block short. They speak the real peer wire protocol (peer_wire's codec) from loopback
//! addresses of their own: on Linux all of 127.0.0.0/8 is local, so one test can pose as many hosts. Every loop
//! stops at a deadline, after a bounded count, or when the attacker is dropped.

use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use peer_wire::{BLOCK_LEN, Bitfield, HANDSHAKE_LEN, Handshake, MAX_MESSAGE_LEN, Message};
use tokio::io::AsyncReadExt;
use tokio::net::TcpSocket;

/// How long one attacker waits for a TCP connection to be set up before it tries again.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Read timeout of the blocking attackers: how often they look at their stop flag.
const POLL: Duration = Duration::from_millis(100);

/// A blocking TCP connection to `remote` from `local` (port chosen by the kernel). std cannot bind a client
/// socket before connecting, tokio's `TcpSocket` can; the stream is handed back as a plain blocking one.
pub fn connect_from(local: Ipv4Addr, remote: SocketAddr) -> io::Result<TcpStream> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build()?;
    runtime.block_on(async {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from((local, 0)))?;
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(remote))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("connecting from {local} timed out")))??;
        let stream = stream.into_std()?;
        stream.set_nonblocking(false)?;
        Ok(stream)
    })
}

/// Polls `done` every 20 ms until it holds or `timeout` passes; whether it held.
pub fn wait_until(timeout: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

/// Counters of a [`SilentFlood`].
#[derive(Debug, Default)]
pub struct FloodStats {
    /// Connection attempts, successful or not.
    pub attempts: AtomicU64,
    /// TCP connections set up.
    pub connects: AtomicU64,
    /// Connections the target closed.
    pub dropped: AtomicU64,
    /// Connections open right now.
    pub open: AtomicU64,
    /// The most connections open at once.
    pub most_open: AtomicU64,
}

/// Connections that never say a word: each slot connects, sends nothing, waits for the target to hang up, and
/// connects again after a short pause. A peer that waits for the handshake without limit, or gives every
/// unfinished handshake a connection slot, runs out of slots for everyone else.
pub struct SilentFlood {
    pub stats: Arc<FloodStats>,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

impl SilentFlood {
    /// Starts `per_source` slots from each address of `sources` against `target`, until `until`. Each slot waits
    /// `reopen_after` after every attempt that ends (hung up on, or failed), so it makes at most
    /// `(until - now) / reopen_after + 1` attempts.
    pub fn start(
        target: SocketAddr,
        sources: &[Ipv4Addr],
        per_source: usize,
        reopen_after: Duration,
        until: Instant,
    ) -> SilentFlood {
        let stats = Arc::new(FloodStats::default());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .expect("a tokio runtime for the silent flood");
        let sources = sources.to_vec();
        let counters = stats.clone();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let mut slots = tokio::task::JoinSet::new();
                for source in sources {
                    for _ in 0..per_source {
                        let slot = Slot { target, source, reopen_after, until, stats: counters.clone() };
                        slots.spawn(slot.run(stopped.clone()));
                    }
                }
                while slots.join_next().await.is_some() {}
            });
        });
        SilentFlood { stats, stop: Some(stop), thread: Some(thread) }
    }

    pub fn connects(&self) -> u64 {
        self.stats.connects.load(Ordering::SeqCst)
    }

    pub fn dropped(&self) -> u64 {
        self.stats.dropped.load(Ordering::SeqCst)
    }

    pub fn open(&self) -> u64 {
        self.stats.open.load(Ordering::SeqCst)
    }

    pub fn most_open(&self) -> u64 {
        self.stats.most_open.load(Ordering::SeqCst)
    }

    pub fn attempts(&self) -> u64 {
        self.stats.attempts.load(Ordering::SeqCst)
    }

    /// One line for failure messages and the test's log.
    pub fn summary(&self) -> String {
        format!(
            "{} attempts, {} connections set up, {} dropped by the target, {} open now, at most {} open at once",
            self.attempts(),
            self.connects(),
            self.dropped(),
            self.open(),
            self.most_open()
        )
    }
}

impl Drop for SilentFlood {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One silent connection, reopened until the flood stops.
struct Slot {
    target: SocketAddr,
    source: Ipv4Addr,
    reopen_after: Duration,
    until: Instant,
    stats: Arc<FloodStats>,
}

impl Slot {
    async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut sink = [0u8; 1024];
        let until = tokio::time::Instant::from_std(self.until);
        while !*stop.borrow() && tokio::time::Instant::now() < until {
            self.stats.attempts.fetch_add(1, Ordering::SeqCst);
            let Ok(socket) = TcpSocket::new_v4() else { return };
            if socket.bind(SocketAddr::from((self.source, 0))).is_err() {
                return;
            }
            let connected = tokio::select! {
                connected = tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(self.target)) => connected,
                _ = stop.changed() => return,
            };
            if let Ok(Ok(mut stream)) = connected {
                self.stats.connects.fetch_add(1, Ordering::SeqCst);
                let open = self.stats.open.fetch_add(1, Ordering::SeqCst) + 1;
                self.stats.most_open.fetch_max(open, Ordering::SeqCst);
                // Say nothing; whatever the target sends is read and ignored, until it hangs up.
                let hung_up = loop {
                    tokio::select! {
                        read = stream.read(&mut sink) => match read {
                            Ok(0) | Err(_) => break true,
                            Ok(_) => {}
                        },
                        () = tokio::time::sleep_until(until) => break false,
                        _ = stop.changed() => break false,
                    }
                };
                self.stats.open.fetch_sub(1, Ordering::SeqCst);
                if !hung_up {
                    return;
                }
                self.stats.dropped.fetch_add(1, Ordering::SeqCst);
            }
            tokio::select! {
                () = tokio::time::sleep(self.reopen_after) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// What the torrent under attack looks like, for peers that speak the protocol.
#[derive(Debug, Clone, Copy)]
pub struct TorrentShape {
    pub info_hash: [u8; 20],
    pub total_length: u64,
    pub piece_length: u32,
}

impl TorrentShape {
    pub fn num_pieces(&self) -> u32 {
        u32::try_from(self.total_length.div_ceil(u64::from(self.piece_length))).expect("piece count fits u32")
    }

    pub fn piece_len(&self, index: u32) -> u32 {
        let start = u64::from(index) * u64::from(self.piece_length);
        u32::try_from((self.total_length - start).min(u64::from(self.piece_length))).expect("piece length")
    }

    /// Every block of the torrent as (piece, offset, length), in order.
    pub fn blocks(&self) -> Vec<(u32, u32, u32)> {
        let mut blocks = Vec::new();
        for piece in 0..self.num_pieces() {
            let len = self.piece_len(piece);
            blocks.extend((0..len).step_by(BLOCK_LEN as usize).map(|begin| (piece, begin, BLOCK_LEN.min(len - begin))));
        }
        blocks
    }
}

/// A peer id that is ours, distinct per `n`, and easy to spot in a log.
fn hostile_peer_id(n: usize) -> [u8; 20] {
    let mut id = *b"-XX0001-dos-00000000";
    let digits = format!("{:08}", n % 100_000_000);
    id[12..].copy_from_slice(digits.as_bytes());
    id
}

/// How an [`IdlePeer`] wastes the slot it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idleness {
    /// Says `interested`, reads everything, never requests.
    ReadsButNeverRequests,
    /// Says `interested`; once unchoked, queues this many valid requests and never reads its socket again.
    RequestsThenStopsReading(usize),
}

/// Counters shared by a group of [`IdlePeer`]s.
#[derive(Debug, Default)]
pub struct IdleStats {
    /// Handshakes the target answered.
    pub handshakes: AtomicUsize,
    /// Peers that were unchoked at least once.
    pub unchoked: AtomicUsize,
    /// Requests sent.
    pub requests: AtomicUsize,
    /// Bytes of `piece` messages read (the peers that never request should get none).
    pub block_bytes: AtomicU64,
    /// Connections the target closed.
    pub dropped: AtomicUsize,
}

/// Peers that take an upload slot and use it for nothing: each connects from an address of its own, completes
/// the handshake, says `interested` and then idles as [`Idleness`] says, until the group is dropped.
pub struct IdlePeers {
    pub stats: Arc<IdleStats>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl IdlePeers {
    /// One peer per address of `sources`, against the peer at `target` serving `torrent`.
    pub fn start(target: SocketAddr, sources: &[Ipv4Addr], torrent: TorrentShape, idleness: Idleness) -> IdlePeers {
        let stats = Arc::new(IdleStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let threads = sources
            .iter()
            .enumerate()
            .map(|(n, &source)| {
                let (stats, stop) = (stats.clone(), stop.clone());
                std::thread::spawn(move || {
                    let Ok(stream) = connect_from(source, target) else { return };
                    if idle(stream, n, torrent, idleness, &stats, &stop) {
                        stats.dropped.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        IdlePeers { stats, stop, threads }
    }

    pub fn handshakes(&self) -> usize {
        self.stats.handshakes.load(Ordering::SeqCst)
    }

    pub fn unchoked(&self) -> usize {
        self.stats.unchoked.load(Ordering::SeqCst)
    }

    /// One line for failure messages and the test's log.
    pub fn summary(&self) -> String {
        format!(
            "{} handshakes, {} unchoked, {} requests sent, {} block bytes read, {} closed by the target",
            self.handshakes(),
            self.unchoked(),
            self.stats.requests.load(Ordering::SeqCst),
            self.stats.block_bytes.load(Ordering::SeqCst),
            self.stats.dropped.load(Ordering::SeqCst)
        )
    }
}

impl Drop for IdlePeers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Runs one idle peer until `stop`; true if the target closed the connection first.
fn idle(
    mut stream: TcpStream,
    n: usize,
    torrent: TorrentShape,
    idleness: Idleness,
    stats: &IdleStats,
    stop: &AtomicBool,
) -> bool {
    if stream.set_read_timeout(Some(POLL)).is_err() {
        return false;
    }
    let mut hello = Handshake::new(torrent.info_hash, hostile_peer_id(n)).encode().to_vec();
    Message::Interested.encode(&mut hello);
    if stream.write_all(&hello).is_err() {
        return true;
    }
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut shook = false;
    let mut unchoked = false;
    while !stop.load(Ordering::SeqCst) {
        let read = match stream.read(&mut chunk) {
            Ok(0) => return true,
            Ok(read) => read,
            Err(err) if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => continue,
            Err(_) => return true,
        };
        buf.extend_from_slice(&chunk[..read]);
        if !shook {
            if buf.len() < HANDSHAKE_LEN {
                continue;
            }
            match Handshake::decode(&buf[..HANDSHAKE_LEN]) {
                Ok(Some((handshake, _))) if handshake.info_hash == torrent.info_hash => {}
                _ => return false,
            }
            buf.drain(..HANDSHAKE_LEN);
            shook = true;
            stats.handshakes.fetch_add(1, Ordering::SeqCst);
        }
        let mut used = 0;
        while let Ok(Some((message, len))) = peer_wire::decode(&buf[used..], MAX_MESSAGE_LEN) {
            used += len;
            match message {
                Message::Piece { block, .. } => {
                    stats.block_bytes.fetch_add(block.len() as u64, Ordering::SeqCst);
                }
                Message::Unchoke if !unchoked => {
                    unchoked = true;
                    stats.unchoked.fetch_add(1, Ordering::SeqCst);
                    if let Idleness::RequestsThenStopsReading(count) = idleness {
                        let mut requests = Vec::new();
                        for &(index, begin, length) in torrent.blocks().iter().cycle().take(count) {
                            Message::Request { index, begin, length }.encode(&mut requests);
                        }
                        if stream.write_all(&requests).is_err() {
                            return true;
                        }
                        stats.requests.fetch_add(count, Ordering::SeqCst);
                        // From now on the socket is never read: the target's answers pile up until its writes
                        // block. The connection stays open until the test is over.
                        while !stop.load(Ordering::SeqCst) {
                            std::thread::sleep(POLL);
                        }
                        return false;
                    }
                }
                _ => {}
            }
        }
        buf.drain(..used);
    }
    false
}

/// Counters of a [`PartialPieceFeeder`].
#[derive(Debug, Default)]
pub struct FeederStats {
    /// Connections the target accepted and answered with a handshake.
    pub handshakes: AtomicUsize,
    /// Pieces left one block short: every other block was sent and read by the target.
    pub pinned: AtomicUsize,
    /// Block bytes sent.
    pub block_bytes: AtomicU64,
    /// Connections that ended some other way (a refusal, a timeout), with the last reason.
    pub failures: AtomicUsize,
    pub last_failure: std::sync::Mutex<String>,
}

/// Peers that each offer one piece, send every block of it but the last, and leave: a downloader that keeps
/// abandoned partial pieces in memory grows by a piece per connection. Connects to the target (which must accept
/// incoming peers), each connection from its own address 127.0.1.N (N = 1 + piece % 250).
pub struct PartialPieceFeeder {
    pub stats: Arc<FeederStats>,
    next_piece: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl PartialPieceFeeder {
    /// `workers` connections at a time, pieces 0, 1, 2... up to `max_pieces` pieces, until `until`.
    pub fn start(
        target: SocketAddr,
        torrent: TorrentShape,
        workers: usize,
        max_pieces: u32,
        until: Instant,
    ) -> PartialPieceFeeder {
        let stats = Arc::new(FeederStats::default());
        let next_piece = Arc::new(AtomicU32::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..workers)
            .map(|_| {
                let (stats, next_piece, stop) = (stats.clone(), next_piece.clone(), stop.clone());
                std::thread::spawn(move || {
                    let junk = vec![0xA5u8; BLOCK_LEN as usize];
                    while !stop.load(Ordering::SeqCst) && Instant::now() < until {
                        let piece = next_piece.fetch_add(1, Ordering::SeqCst);
                        if piece >= max_pieces.min(torrent.num_pieces()) {
                            return;
                        }
                        let source = Ipv4Addr::new(127, 0, 1, 1 + (piece % 250) as u8);
                        let result = connect_from(source, target)
                            .map_err(|err| format!("connect: {err}"))
                            .and_then(|stream| feed(stream, torrent, piece, &junk, &stats, until));
                        if let Err(reason) = result {
                            stats.failures.fetch_add(1, Ordering::SeqCst);
                            *stats.last_failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                                format!("piece {piece}: {reason}");
                        }
                    }
                })
            })
            .collect();
        PartialPieceFeeder { stats, next_piece, stop, threads }
    }

    /// Waits for every worker to finish (they stop at their deadline or after the last piece).
    pub fn join(mut self) -> Arc<FeederStats> {
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        self.stats.clone()
    }

    pub fn pieces_started(&self) -> u32 {
        self.next_piece.load(Ordering::SeqCst)
    }
}

impl Drop for PartialPieceFeeder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl FeederStats {
    /// One line for failure messages and the test's log.
    pub fn summary(&self) -> String {
        format!(
            "{} handshakes, {} pieces left one block short, {} MiB of blocks sent, {} failed connections{}",
            self.handshakes.load(Ordering::SeqCst),
            self.pinned.load(Ordering::SeqCst),
            self.block_bytes.load(Ordering::SeqCst) >> 20,
            self.failures.load(Ordering::SeqCst),
            match self.last_failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_str() {
                "" => String::new(),
                last => format!(" (last: {last})"),
            }
        )
    }
}

/// One connection of the feeder: offers `piece` alone, unchokes, answers requests for every block of it but the
/// last, then says goodbye cleanly (FIN, then waits for the target's) so the target has read every block.
fn feed(
    mut stream: TcpStream,
    torrent: TorrentShape,
    piece: u32,
    junk: &[u8],
    stats: &FeederStats,
    until: Instant,
) -> Result<(), String> {
    // A connection that makes no progress for this long is given up.
    let deadline = (Instant::now() + Duration::from_secs(10)).min(until + Duration::from_secs(5));
    stream.set_read_timeout(Some(POLL)).map_err(|err| err.to_string())?;
    let _ = stream.set_nodelay(true);
    let mut bitfield = Bitfield::new(torrent.num_pieces());
    bitfield.set(piece).map_err(|err| err.to_string())?;
    let mut out = Handshake::new(torrent.info_hash, hostile_peer_id(piece as usize)).encode().to_vec();
    bitfield.to_message().encode(&mut out);
    Message::Unchoke.encode(&mut out);
    stream.write_all(&out).map_err(|err| format!("handshake: {err}"))?;

    let piece_len = torrent.piece_len(piece);
    let withheld = (piece_len - 1) / BLOCK_LEN * BLOCK_LEN;
    let wanted = piece_len.div_ceil(BLOCK_LEN) as usize - 1;
    let mut sent = BTreeSet::new();
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut shook = false;
    while sent.len() < wanted {
        if Instant::now() >= deadline {
            return Err(format!("timed out with {} of {wanted} blocks sent", sent.len()));
        }
        let read = match stream.read(&mut chunk) {
            Ok(0) => return Err(format!("closed by the target after {} blocks", sent.len())),
            Ok(read) => read,
            Err(err) if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => continue,
            Err(err) => return Err(format!("read: {err}")),
        };
        buf.extend_from_slice(&chunk[..read]);
        if !shook {
            if buf.len() < HANDSHAKE_LEN {
                continue;
            }
            match Handshake::decode(&buf[..HANDSHAKE_LEN]) {
                Ok(Some((handshake, _))) if handshake.info_hash == torrent.info_hash => {}
                other => return Err(format!("bad handshake: {other:?}")),
            }
            buf.drain(..HANDSHAKE_LEN);
            shook = true;
            stats.handshakes.fetch_add(1, Ordering::SeqCst);
        }
        let mut answers = Vec::new();
        let mut used = 0;
        while let Ok(Some((message, len))) = peer_wire::decode(&buf[used..], MAX_MESSAGE_LEN) {
            used += len;
            if let Message::Request { index, begin, length } = message
                && index == piece
                && begin != withheld
                && length as usize <= junk.len()
                && sent.insert(begin)
            {
                Message::Piece { index, begin, block: &junk[..length as usize] }.encode(&mut answers);
                stats.block_bytes.fetch_add(u64::from(length), Ordering::SeqCst);
            }
        }
        buf.drain(..used);
        stream.write_all(&answers).map_err(|err| format!("write: {err}"))?;
    }
    // Our FIN goes after the last block; the target's FIN back means it read them all.
    stream.shutdown(Shutdown::Write).map_err(|err| format!("shutdown: {err}"))?;
    while Instant::now() < deadline {
        match stream.read(&mut chunk) {
            Ok(0) => {
                stats.pinned.fetch_add(1, Ordering::SeqCst);
                return Ok(());
            }
            Ok(_) => {}
            Err(err) if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(err) => return Err(format!("after the last block: {err}")),
        }
    }
    Err("the target did not hang up after the last block".into())
}
