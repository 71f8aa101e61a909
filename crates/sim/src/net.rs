//! The simulated network: hosts with an upload and a download capacity and an access delay, and byte streams
//! between them, all in the runtime's (virtual) time.
//!
//! Each host's uplink sends one chunk (at most [`CHUNK`] bytes) at a time, taking the streams with bytes to send
//! in turn (fair queueing, as a kernel's `fq` gives each flow its share); a chunk leaves once its bytes are
//! through at the host's upload rate. It arrives at the other host after both hosts' access delays, and its
//! downlink delivers the chunks that arrived in their order, at the host's download rate. A stream holds at most
//! [`Network::window`] bytes written and not yet read (TCP's send and receive buffers together): a writer waits
//! for its reader. Times are kept exactly (the runtime's timers fire on milliseconds, but a busy link's next chunk
//! starts where the last one ended, not when its timer fired), so rates hold to the byte.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use peer::simulated::{ByteStream, Connecting, Connector};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Most bytes an uplink sends as one unit: a block message and a little more, so that a 16 KiB block is
/// usually one chunk and the fair share is kept within a block.
pub const CHUNK: usize = 16 * 1024 + 64;

/// What a host's access link can carry.
#[derive(Debug, Clone, Copy)]
pub struct Link {
    /// Bytes per second up; `None`: no limit.
    pub up: Option<u64>,
    /// Bytes per second down; `None`: no limit.
    pub down: Option<u64>,
    /// One way, from the host to the core of the network (a path between two hosts takes both hosts' delays).
    pub delay: Duration,
}

/// What is called with each stream a host accepts, and who opened it.
pub type Listener = Arc<dyn Fn(Box<dyn ByteStream>, SocketAddr) + Send + Sync>;

/// The network: its hosts, by IP address.
#[derive(Clone)]
pub struct Network {
    inner: Arc<Inner>,
}

struct Inner {
    hosts: Mutex<HashMap<IpAddr, Arc<Host>>>,
    window: usize,
    next_port: AtomicU16,
}

/// One host and its access link.
pub struct Host {
    ip: IpAddr,
    link: Link,
    uplink: Mutex<Uplink>,
    up_wake: Notify,
    downlink: Mutex<Downlink>,
    down_wake: Notify,
    listener: Mutex<Option<(u16, Listener)>>,
    /// Bytes that left through the uplink, and that came in through the downlink.
    sent: AtomicU64,
    received: AtomicU64,
    /// Bytes that came in, by the host that sent them.
    received_from: Mutex<HashMap<IpAddr, u64>>,
}

#[derive(Default)]
struct Uplink {
    /// Streams with bytes to send, in turn.
    active: VecDeque<Arc<Pipe>>,
    /// When the chunk on the wire is through.
    busy_until: Option<Instant>,
}

#[derive(Default)]
struct Downlink {
    arrivals: BinaryHeap<Reverse<Arrival>>,
    busy_until: Option<Instant>,
    /// Orders arrivals at the same instant by when they were sent.
    sequence: u64,
}

struct Arrival {
    at: Instant,
    sequence: u64,
    pipe: Arc<Pipe>,
    /// Empty: the writer's end (FIN).
    chunk: Vec<u8>,
}

impl PartialEq for Arrival {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.sequence) == (other.at, other.sequence)
    }
}
impl Eq for Arrival {}
impl PartialOrd for Arrival {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Arrival {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.sequence).cmp(&(other.at, other.sequence))
    }
}

/// One direction of a stream, from one host to another.
struct Pipe {
    from: Arc<Host>,
    to: Arc<Host>,
    window: usize,
    state: Mutex<PipeState>,
}

#[derive(Default)]
struct PipeState {
    /// Written, not yet sent: chunks of at most [`CHUNK`] bytes; an empty one is the end.
    pending: VecDeque<Vec<u8>>,
    /// When the oldest pending chunk was written: it cannot leave before.
    pending_since: Option<Instant>,
    /// In the uplink's turn.
    queued: bool,
    /// Written and not yet read.
    in_flight: usize,
    /// Delivered, not yet read; the first one read from `read_at` on.
    readable: VecDeque<Vec<u8>>,
    read_at: usize,
    /// The writer ended (shut down or dropped), and that end has been delivered.
    ended: bool,
    delivered_end: bool,
    /// The reader is gone: writes fail.
    reader_gone: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How long `bytes` take at `rate` bytes per second.
fn transfer_time(bytes: usize, rate: Option<u64>) -> Duration {
    match rate {
        Some(rate) if rate > 0 => Duration::from_nanos((bytes as u128 * 1_000_000_000 / u128::from(rate)) as u64),
        _ => Duration::ZERO,
    }
}

impl Network {
    /// A network whose streams hold at most `window` bytes in flight each.
    #[must_use]
    pub fn new(window: usize) -> Network {
        Network {
            inner: Arc::new(Inner { hosts: Mutex::new(HashMap::new()), window, next_port: AtomicU16::new(40_000) }),
        }
    }

    /// Adds a host at `ip` and starts its links (tasks of the current runtime).
    ///
    /// # Panics
    ///
    /// When `ip` is already taken: a scenario's mistake.
    pub fn add_host(&self, ip: IpAddr, link: Link) -> Arc<Host> {
        let host = Arc::new(Host {
            ip,
            link,
            uplink: Mutex::new(Uplink::default()),
            up_wake: Notify::new(),
            downlink: Mutex::new(Downlink::default()),
            down_wake: Notify::new(),
            listener: Mutex::new(None),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            received_from: Mutex::new(HashMap::new()),
        });
        let previous = lock(&self.inner.hosts).insert(ip, host.clone());
        assert!(previous.is_none(), "two hosts at {ip}");
        tokio::spawn(host.clone().run_uplink());
        tokio::spawn(host.clone().run_downlink());
        host
    }

    /// Streams to `ip` go to `listener` while it listens on `port`.
    pub fn listen(&self, host: &Host, port: u16, listener: Listener) {
        *lock(&host.listener) = Some((port, listener));
    }

    /// Streams to `host` are refused from now on.
    pub fn unlisten(&self, host: &Host) {
        *lock(&host.listener) = None;
    }

    /// A connector for peers on `host`.
    #[must_use]
    pub fn connector(&self, host: &Arc<Host>) -> Arc<dyn Connector> {
        Arc::new(HostConnector { network: self.clone(), from: host.clone() })
    }

    fn host(&self, ip: IpAddr) -> Option<Arc<Host>> {
        lock(&self.inner.hosts).get(&ip).cloned()
    }

    /// Opens a stream from `from` to `to`: after a round trip, as TCP's handshake takes; refused (after the same
    /// round trip) where nobody listens.
    async fn connect(&self, from: Arc<Host>, to: SocketAddr) -> io::Result<Box<dyn ByteStream>> {
        let Some(host) = self.host(to.ip()) else {
            // Nobody there: the SYN goes unanswered.
            tokio::time::sleep(Duration::from_secs(30)).await;
            return Err(io::Error::new(io::ErrorKind::TimedOut, "no host at that address"));
        };
        let round_trip = 2 * (from.link.delay + host.link.delay);
        tokio::time::sleep(round_trip).await;
        let listener =
            lock(&host.listener).clone().filter(|(port, _)| *port == to.port()).map(|(_, listener)| listener);
        let Some(listener) = listener else {
            return Err(io::Error::new(io::ErrorKind::ConnectionRefused, "nobody listens there"));
        };
        let window = self.inner.window;
        let outgoing = Arc::new(Pipe { from: from.clone(), to: host.clone(), window, state: Mutex::default() });
        let incoming = Arc::new(Pipe { from: host.clone(), to: from.clone(), window, state: Mutex::default() });
        let port = self.inner.next_port.fetch_add(1, Ordering::Relaxed);
        listener(
            Box::new(Stream { reader: Reader(outgoing.clone()), writer: Writer(incoming.clone()) }),
            SocketAddr::new(from.ip, port.max(1024)),
        );
        Ok(Box::new(Stream { reader: Reader(incoming), writer: Writer(outgoing) }))
    }
}

impl Host {
    #[must_use]
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    #[must_use]
    pub fn link(&self) -> Link {
        self.link
    }

    /// Bytes sent and received through the access link so far.
    #[must_use]
    pub fn traffic(&self) -> (u64, u64) {
        (self.sent.load(Ordering::Relaxed), self.received.load(Ordering::Relaxed))
    }

    /// Bytes received so far from `ip`.
    #[must_use]
    pub fn received_from(&self, ip: IpAddr) -> u64 {
        lock(&self.received_from).get(&ip).copied().unwrap_or(0)
    }

    /// The next stream's next chunk, in turn, and when it was written.
    fn next_chunk(&self) -> Option<(Arc<Pipe>, Vec<u8>, Instant)> {
        let mut uplink = lock(&self.uplink);
        while let Some(pipe) = uplink.active.pop_front() {
            let mut state = lock(&pipe.state);
            let Some(chunk) = state.pending.pop_front() else {
                state.queued = false;
                continue;
            };
            let since = state.pending_since.unwrap_or_else(Instant::now);
            let more = !state.pending.is_empty();
            if !more {
                state.queued = false;
                state.pending_since = None;
            }
            drop(state);
            if more {
                uplink.active.push_back(pipe.clone());
            }
            return Some((pipe, chunk, since));
        }
        None
    }

    async fn run_uplink(self: Arc<Self>) {
        loop {
            let Some((pipe, chunk, written_at)) = self.next_chunk() else {
                self.up_wake.notified().await;
                continue;
            };
            let start = {
                let uplink = lock(&self.uplink);
                uplink.busy_until.map_or(written_at, |busy| busy.max(written_at))
            };
            let done = start + transfer_time(chunk.len(), self.link.up);
            lock(&self.uplink).busy_until = Some(done);
            if done > Instant::now() {
                tokio::time::sleep_until(done).await;
            }
            self.sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            let to = pipe.to.clone();
            let at = done + self.link.delay + to.link.delay;
            {
                let mut downlink = lock(&to.downlink);
                downlink.sequence += 1;
                let sequence = downlink.sequence;
                downlink.arrivals.push(Reverse(Arrival { at, sequence, pipe, chunk }));
            }
            to.down_wake.notify_one();
        }
    }

    async fn run_downlink(self: Arc<Self>) {
        loop {
            let next_at = lock(&self.downlink).arrivals.peek().map(|Reverse(arrival)| arrival.at);
            let Some(at) = next_at else {
                self.down_wake.notified().await;
                continue;
            };
            if at > Instant::now() {
                // An earlier arrival may be announced meanwhile.
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = self.down_wake.notified() => {}
                }
                continue;
            }
            let (arrival, done) = {
                let mut downlink = lock(&self.downlink);
                let Some(Reverse(arrival)) = downlink.arrivals.pop() else { continue };
                let start = downlink.busy_until.map_or(arrival.at, |busy| busy.max(arrival.at));
                let done = start + transfer_time(arrival.chunk.len(), self.link.down);
                downlink.busy_until = Some(done);
                (arrival, done)
            };
            if done > Instant::now() {
                tokio::time::sleep_until(done).await;
            }
            self.received.fetch_add(arrival.chunk.len() as u64, Ordering::Relaxed);
            *lock(&self.received_from).entry(arrival.pipe.from.ip).or_default() += arrival.chunk.len() as u64;
            let mut state = lock(&arrival.pipe.state);
            if arrival.chunk.is_empty() {
                state.delivered_end = true;
            } else if state.reader_gone {
                state.in_flight = state.in_flight.saturating_sub(arrival.chunk.len());
            } else {
                state.readable.push_back(arrival.chunk);
            }
            if let Some(waker) = state.reader.take() {
                waker.wake();
            }
        }
    }
}

impl Pipe {
    /// Puts the pipe in its host's turn, if it is not.
    fn activate(self: &Arc<Self>, state: &mut PipeState) {
        if !state.queued {
            state.queued = true;
            lock(&self.from.uplink).active.push_back(self.clone());
            self.from.up_wake.notify_one();
        }
    }

    /// The writer's end: an empty chunk after the rest.
    fn end(self: &Arc<Self>) {
        let mut state = lock(&self.state);
        if state.ended {
            return;
        }
        state.ended = true;
        if state.pending.is_empty() {
            state.pending_since = Some(Instant::now());
        }
        state.pending.push_back(Vec::new());
        self.activate(&mut state);
    }
}

struct Reader(Arc<Pipe>);
struct Writer(Arc<Pipe>);

impl Drop for Reader {
    fn drop(&mut self) {
        let mut state = lock(&self.0.state);
        state.reader_gone = true;
        state.readable.clear();
        if let Some(waker) = state.writer.take() {
            waker.wake();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.0.end();
    }
}

impl AsyncRead for Reader {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let mut state = lock(&self.0.state);
        let mut read = 0;
        while buf.remaining() > 0 {
            let at = state.read_at;
            let Some(front) = state.readable.front() else { break };
            let n = (front.len() - at).min(buf.remaining());
            buf.put_slice(&front[at..at + n]);
            read += n;
            if at + n == front.len() {
                state.readable.pop_front();
                state.read_at = 0;
            } else {
                state.read_at = at + n;
            }
        }
        if read > 0 {
            state.in_flight -= read;
            if let Some(waker) = state.writer.take() {
                waker.wake();
            }
            return Poll::Ready(Ok(()));
        }
        if state.delivered_end {
            return Poll::Ready(Ok(()));
        }
        state.reader = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl AsyncWrite for Writer {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let pipe = &self.0;
        let mut state = lock(&pipe.state);
        if state.reader_gone {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "the other end closed")));
        }
        if state.ended {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "shut down")));
        }
        let room = pipe.window.saturating_sub(state.in_flight);
        if room == 0 {
            state.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = room.min(buf.len());
        if state.pending.is_empty() {
            state.pending_since = Some(Instant::now());
        }
        for chunk in buf[..n].chunks(CHUNK) {
            state.pending.push_back(chunk.to_vec());
        }
        state.in_flight += n;
        pipe.activate(&mut state);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.end();
        Poll::Ready(Ok(()))
    }
}

/// Both directions of a connection, as one end sees them.
struct Stream {
    reader: Reader,
    writer: Writer,
}

impl AsyncRead for Stream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.reader).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.writer).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writer).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writer).poll_shutdown(cx)
    }
}

impl ByteStream for Stream {
    fn split_boxed(self: Box<Self>) -> (Box<dyn AsyncRead + Unpin + Send>, Box<dyn AsyncWrite + Unpin + Send>) {
        let Stream { reader, writer } = *self;
        (Box::new(reader), Box::new(writer))
    }
}

/// Dials from one host.
struct HostConnector {
    network: Network,
    from: Arc<Host>,
}

impl std::fmt::Debug for HostConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the simulated network, from {}", self.from.ip)
    }
}

impl Connector for HostConnector {
    fn connect(&self, addr: SocketAddr) -> Connecting {
        let (network, from) = (self.network.clone(), self.from.clone());
        Box::pin(async move { network.connect(from, addr).await })
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().expect("runtime")
    }

    /// 10 MB over a 1 MB/s uplink and a 20 ms path take 10 s and a little, in virtual time, to the millisecond.
    #[test]
    fn a_stream_runs_at_the_slower_links_rate_after_the_delay() {
        runtime().block_on(async {
            let network = Network::new(1 << 20);
            let ms = Duration::from_millis;
            let a = network.add_host([10, 0, 0, 1].into(), Link { up: Some(1_000_000), down: None, delay: ms(5) });
            let b = network.add_host([10, 0, 0, 2].into(), Link { up: None, down: Some(2_000_000), delay: ms(15) });
            let (accepted_tx, mut accepted) = tokio::sync::mpsc::unbounded_channel();
            network.listen(&b, 6881, Arc::new(move |stream, from| drop(accepted_tx.send((stream, from)))));
            let start = Instant::now();
            let mut ours = network.connector(&a).connect(SocketAddr::new(b.ip(), 6881)).await.expect("connects");
            assert_eq!(start.elapsed(), ms(40), "one round trip");
            let (mut theirs, from) = accepted.recv().await.expect("accepted");
            assert_eq!(from.ip(), a.ip());
            let sender = tokio::spawn(async move {
                ours.write_all(&vec![7u8; 10_000_000]).await.expect("written");
                ours.shutdown().await.expect("shut down");
            });
            let mut got = Vec::new();
            theirs.read_to_end(&mut got).await.expect("read to the end");
            sender.await.expect("the sender");
            assert_eq!(got.len(), 10_000_000);
            assert!(got.iter().all(|&byte| byte == 7));
            let took = start.elapsed() - ms(40);
            // 10 s through the uplink, 20 ms of delay, then the last chunk through the downlink (at most 8.3 ms at
            // 2 MB/s, store and forward); the last timer fires on a millisecond.
            assert!(took >= ms(10_020) && took <= ms(10_030), "took {took:?}");
            assert_eq!(a.traffic().0, 10_000_000);
            assert_eq!(b.traffic().1, 10_000_000);
        });
    }

    /// Two streams out of one host share its uplink evenly.
    #[test]
    fn streams_share_an_uplink_evenly() {
        runtime().block_on(async {
            let network = Network::new(256 * 1024);
            let link = Link { up: Some(1_000_000), down: None, delay: Duration::from_millis(10) };
            let seeder = network.add_host([10, 0, 0, 1].into(), link);
            let unlimited = Link { up: None, down: None, delay: Duration::from_millis(10) };
            let mut pairs = Vec::new();
            for n in 2..4u8 {
                let host = network.add_host([10, 0, 0, n].into(), unlimited);
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                network.listen(&host, 6881, Arc::new(move |stream, _| drop(tx.send(stream))));
                let out = network.connector(&seeder).connect(SocketAddr::new(host.ip(), 6881)).await.expect("up");
                pairs.push((out, rx.recv().await.expect("accepted")));
            }
            let mut finished = Vec::new();
            for (mut out, mut inbound) in pairs {
                tokio::spawn(async move {
                    out.write_all(&vec![1u8; 2_000_000]).await.expect("written");
                    out.shutdown().await.expect("shut down");
                });
                finished.push(tokio::spawn(async move {
                    let mut got = Vec::new();
                    inbound.read_to_end(&mut got).await.expect("read");
                    (got.len(), Instant::now())
                }));
            }
            let mut ends = Vec::new();
            for task in finished {
                let (len, at) = task.await.expect("reader");
                assert_eq!(len, 2_000_000);
                ends.push(at);
            }
            let gap = if ends[0] > ends[1] { ends[0] - ends[1] } else { ends[1] - ends[0] };
            // 4 MB at 1 MB/s: both end near 4 s, within a few chunks of each other.
            assert!(gap < Duration::from_millis(100), "the streams ended {gap:?} apart");
        });
    }
}
