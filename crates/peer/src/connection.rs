//! One connection to a peer: the handshake, then a reader (this task) and a writer (a second task), so a peer
//! that stops reading can never stop us from reading what it sends.
//!
//! Everything past the socket works over any byte stream that can be split into a reading and a writing half
//! ([`Transport`]): TCP today; uTP or an encrypted stream would be another implementation, with the message
//! handling untouched.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use peer_wire::{HANDSHAKE_LEN, Handshake, Message, PIECE_HEADER_LEN, ReservedBit, encode_piece_header};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};

use crate::admission::Ticket;
use crate::outbox::{Batch, Outbox};
use crate::picker::PeerKey;
use crate::swarm::{CloseReason, Direction, Refusal, Swarm};
use crate::torrents::{Route, Torrents};

/// Why a connection ended when its torrent did.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Peers send a keep-alive every two minutes at most; silence for longer means the connection is dead.
const IDLE_TIMEOUT: Duration = Duration::from_secs(150);
const KEEPALIVE_EVERY: Duration = Duration::from_secs(90);
/// Blocks read from disk and sent per write: 1 MiB, so one read-and-send covers many requests.
const UPLOAD_BATCH: usize = 64;
/// Bytes of send buffer an idle connection keeps (a few control messages; a batch of blocks is far more).
const IDLE_BUFFER: usize = 4096;
/// Receive buffer at most: many blocks per read system call from a peer that sends fast. A connection starts
/// with [`SMALLEST_READ_BUFFER`], grows to hold a longer message whole, and doubles whenever a read fills it.
const READ_BUFFER: usize = 256 * 1024;
/// Receive buffer at first, and again once a peer stops sending: room for the control messages (have, choke,
/// interested, PEX) that are all most connections carry. Most of a swarm's connections carry no blocks at any
/// moment; at 256 KiB each, a simulated flash crowd of 1,000 (50,000 connections) held 10 GB in them.
const SMALLEST_READ_BUFFER: usize = 4096;
/// Reads in a row that used under an eighth of a grown buffer before it goes back to its smallest size, once
/// empty: a peer that stopped sending (it chokes us, or we have everything) does not keep 256 KiB of ours for as
/// long as the connection lasts.
const SHRINK_AFTER_READS: u32 = 16;

/// A byte stream to a peer that splits into halves the reader and writer tasks own.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    type Reader: AsyncRead + Unpin + Send + 'static;
    type Writer: AsyncWrite + Unpin + Send + 'static;
    fn split(self) -> (Self::Reader, Self::Writer);
}

impl Transport for TcpStream {
    type Reader = OwnedReadHalf;
    type Writer = OwnedWriteHalf;

    /// TCP halves are separate handles: no lock between reader and writer.
    fn split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        self.into_split()
    }
}

impl Transport for tokio::io::DuplexStream {
    type Reader = tokio::io::ReadHalf<Self>;
    type Writer = tokio::io::WriteHalf<Self>;

    fn split(self) -> (Self::Reader, Self::Writer) {
        tokio::io::split(self)
    }
}

/// Any byte stream to a peer, boxed: what a [`Connector`] opens (a simulated network's, later uTP or an
/// encrypted stream), run by the same connection code as TCP.
pub trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    #[allow(clippy::type_complexity)]
    fn split_boxed(self: Box<Self>) -> (Box<dyn AsyncRead + Unpin + Send>, Box<dyn AsyncWrite + Unpin + Send>);
}

/// A [`ByteStream`] in a box of a concrete type, which the connection code can be generic over.
pub struct BoxedStream(pub Box<dyn ByteStream>);

impl AsyncRead for BoxedStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for BoxedStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

impl Transport for BoxedStream {
    type Reader = Box<dyn AsyncRead + Unpin + Send>;
    type Writer = Box<dyn AsyncWrite + Unpin + Send>;

    fn split(self) -> (Self::Reader, Self::Writer) {
        self.0.split_boxed()
    }
}

/// A connection being opened by a [`Connector`].
pub type Connecting = std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<Box<dyn ByteStream>>> + Send>>;

/// Opens connections to peers where TCP is not the way: a simulated network ([`SwarmConfig::connector`]).
///
/// [`SwarmConfig::connector`]: crate::swarm::SwarmConfig::connector
pub trait Connector: Send + Sync + std::fmt::Debug {
    /// Connects to `addr`; fails as a TCP connect would (refused, unreachable).
    fn connect(&self, addr: SocketAddr) -> Connecting;
}

/// Runs a connection a [`Connector`]'s network brought in from `addr`, until it ends (or the swarm closes).
pub async fn run_accepted(swarm: Arc<Swarm>, stream: Box<dyn ByteStream>, addr: SocketAddr) {
    if swarm.is_banned(addr) || !swarm.has_room_for(addr.ip()) {
        return;
    }
    let result = tokio::select! {
        result = run(&swarm, BoxedStream(stream), addr, Direction::Incoming, None) => result,
        () = swarm.until_closed() => Err(CloseReason::Stopping),
    };
    if let Err(reason) = result {
        tracing::debug!(%addr, %reason, "connection ended");
    }
}

/// Our handshake: the reserved bits say which extensions we speak (BEP 10's extension protocol; the DHT and the
/// fast extension will set theirs here once spoken).
fn our_handshake(swarm: &Swarm) -> Handshake {
    let mut ours = Handshake::new(swarm.info_hash, swarm.peer_id);
    ours.set(ReservedBit::EXTENSION_PROTOCOL, true);
    ours.set(ReservedBit::DHT, swarm.dht.is_some());
    // As libtorrent does on a hybrid torrent's v1 connections: we speak v2 too (hash requests).
    ours.set(ReservedBit::V2, swarm.info_hash_v2.is_some());
    ours
}

/// Connects to `addr` (from `local` if given) and runs the connection until it ends.
pub async fn run_outgoing(swarm: Arc<Swarm>, addr: SocketAddr, local: Option<std::net::IpAddr>) {
    let connection = async {
        if let Some(connector) = swarm.connector.clone() {
            let stream = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(addr))
                .await
                .map_err(|_| CloseReason::TimedOut("connect"))?
                .map_err(|err| CloseReason::io("connect", err))?;
            return run(&swarm, BoxedStream(stream), addr, Direction::Outgoing, None).await;
        }
        let stream = dial(addr, local).await?;
        run(&swarm, stream, addr, Direction::Outgoing, None).await
    };
    // A torrent stopped or removed takes its connections with it, at whatever step they are.
    let result = tokio::select! {
        result = connection => result,
        () = swarm.until_closed() => Err(CloseReason::Stopping),
    };
    swarm.release_address(addr);
    swarm.candidate_ended(addr);
    if let Err(reason) = result {
        tracing::debug!(%addr, %reason, "connection ended");
    }
}

/// Opens a TCP connection to `addr`, from `local` when it is given and of the same family, within
/// [`CONNECT_TIMEOUT`]; the error says which step failed.
pub(crate) async fn dial(addr: SocketAddr, local: Option<std::net::IpAddr>) -> Result<TcpStream, CloseReason> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }
        .map_err(|err| CloseReason::io("socket", err))?;
    if let Some(ip) = local.filter(|ip| ip.is_ipv4() == addr.is_ipv4() && !ip.is_unspecified()) {
        socket.bind(SocketAddr::new(ip, 0)).map_err(|err| CloseReason::io("binding", format_args!("{ip}: {err}")))?;
    }
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(addr))
        .await
        .map_err(|_| CloseReason::TimedOut("connect"))?
        .map_err(|err| CloseReason::io("connect", err))?;
    // Requests are small and latency-bound; Nagle would hold them back behind block writes.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Runs a connection the listener accepted: its handshake names the torrent, which `torrents` finds (an unknown
/// info-hash is refused). The handshake holds `ticket` until it is done, or until a newer connection evicts it.
pub async fn run_incoming(torrents: Arc<Torrents>, stream: TcpStream, addr: SocketAddr, ticket: Ticket) {
    let _ = stream.set_nodelay(true);
    let result = async {
        let mut stream = stream;
        let handshake = read_handshake(&mut stream, Some(&ticket)).await?;
        let swarm =
            match torrents.route(&handshake.info_hash).await.ok_or(CloseReason::Refused(Refusal::UnknownTorrent))? {
                Route::Swarm(swarm) => swarm,
                Route::Fetch(fetch) => {
                    // A magnet link's metadata is being fetched: the fetch answers it, or is too busy to.
                    let peer = crate::magnet::IncomingPeer { stream, addr, handshake, ticket };
                    return fetch.try_send(peer).map_err(|_| Refusal::FetchFull.into());
                }
            };
        if swarm.is_banned(addr) || !swarm.has_room_for(addr.ip()) {
            return Err(Refusal::BannedOrFull.into());
        }
        let our_handshake = our_handshake(&swarm);
        tokio::select! {
            result = go_on(&swarm, stream, addr, Direction::Incoming, Some(ticket), our_handshake, handshake) => result,
            () = swarm.until_closed() => Err(CloseReason::Stopping),
        }
    }
    .await;
    if let Err(reason) = result {
        tracing::debug!(%addr, %reason, "connection ended");
    }
}

/// Reads the peer's handshake, within [`HANDSHAKE_TIMEOUT`] and unless `ticket` is evicted first.
async fn read_handshake<S: Transport>(stream: &mut S, ticket: Option<&Ticket>) -> Result<Handshake, CloseReason> {
    let exchange = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        let mut buf = [0u8; HANDSHAKE_LEN];
        stream.read_exact(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    });
    let evicted = async {
        match ticket {
            Some(ticket) => ticket.evicted().await,
            None => std::future::pending().await,
        }
    };
    let theirs = tokio::select! {
        theirs = exchange => theirs,
        () = evicted => return Err(Refusal::Evicted.into()),
    }
    .map_err(|_| CloseReason::TimedOut("handshake"))?
    .map_err(|err| CloseReason::io("handshake", err))?;
    match Handshake::decode(&theirs) {
        Ok(Some((handshake, _))) => Ok(handshake),
        Ok(None) => Err(CloseReason::io("handshake", "short")),
        Err(err) => Err(CloseReason::io("handshake", err)),
    }
}

/// Runs one connection over `stream`, from the handshake to its end.
pub(crate) async fn run<S: Transport>(
    swarm: &Arc<Swarm>,
    mut stream: S,
    addr: SocketAddr,
    direction: Direction,
    ticket: Option<Ticket>,
) -> Result<(), CloseReason> {
    let our_handshake = our_handshake(swarm);
    if direction == Direction::Outgoing {
        let ours = our_handshake.encode();
        let sent = tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.write_all(&ours)).await;
        sent.map_err(|_| CloseReason::TimedOut("handshake"))?.map_err(|err| CloseReason::io("handshake", err))?;
    }
    let handshake = read_handshake(&mut stream, ticket.as_ref()).await?;
    go_on(swarm, stream, addr, direction, ticket, our_handshake, handshake).await
}

/// The rest of a connection once the peer's handshake is in (and, if we dialled, ours is out): our answer to
/// an incoming one, admission, then messages until the end.
async fn go_on<S: Transport>(
    swarm: &Arc<Swarm>,
    mut stream: S,
    addr: SocketAddr,
    direction: Direction,
    ticket: Option<Ticket>,
    our_handshake: Handshake,
    handshake: Handshake,
) -> Result<(), CloseReason> {
    let ours = our_handshake.encode();
    if let Some(trace) = &swarm.trace {
        if direction == Direction::Outgoing {
            trace.handshake(addr, true, &our_handshake);
        }
        trace.handshake(addr, false, &handshake);
    }
    // A hybrid torrent's swarm speaks both: a v2 peer may knock with its v2 info-hash (truncated), and a v1
    // handshake with the v2 bit set asks to upgrade the connection to v2 (libtorrent 2.0's way, BEP 52), which the
    // side that answers grants by answering with the v2 hash. We ask when we dial, and grant when asked.
    let hybrid_v2 = swarm.info_hash_v2;
    let peer_v2 = if handshake.info_hash == swarm.info_hash {
        let upgrade = direction == Direction::Incoming && hybrid_v2.is_some() && handshake.has(ReservedBit::V2);
        upgrade || swarm.storage.is_v2_only()
    } else if hybrid_v2 == Some(handshake.info_hash) {
        true
    } else {
        return Err(Refusal::OtherTorrent.into());
    };
    let (our_handshake, ours) = match hybrid_v2 {
        Some(v2_hash) if peer_v2 && direction == Direction::Incoming => {
            let mut upgraded = our_handshake;
            upgraded.info_hash = v2_hash;
            upgraded.set(ReservedBit::V2, false);
            let bytes = upgraded.encode();
            (upgraded, bytes)
        }
        _ => (our_handshake, ours),
    };
    if direction == Direction::Incoming {
        let reply = tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.write_all(&ours));
        reply
            .await
            .map_err(|_| CloseReason::TimedOut("handshake"))?
            .map_err(|err| CloseReason::io("handshake", err))?;
        if let Some(trace) = &swarm.trace {
            trace.handshake(addr, true, &our_handshake);
        }
    }
    // The handshake is over: its place goes to the next connection.
    drop(ticket);
    let extensions = handshake.has(ReservedBit::EXTENSION_PROTOCOL);
    let peer_dht = handshake.has(ReservedBit::DHT);
    let admitted = swarm.admit(addr, handshake.peer_id, direction, extensions, peer_dht, peer_v2)?;
    serve(swarm, stream, addr, admitted, &[]).await
}

/// Goes on with a connection that fetched the torrent's metadata ([`crate::magnet`]), in a task of its own: no
/// new handshake; what its peer said while the metadata came is read first, as if it came now. An outgoing one
/// takes its address's place at once, before the dialer can dial it again.
pub(crate) fn adopt(swarm: &Arc<Swarm>, handover: crate::magnet::Handover) {
    let crate::magnet::Handover { stream, addr, direction, source, handshake, v2, listen_port, replay } = handover;
    if direction == Direction::Outgoing {
        // Known as a candidate first, so the swarm counts it under the source that named it.
        swarm.add_candidate(addr, source);
        if !swarm.reserve_address(addr) {
            tracing::debug!(%addr, "a connection from the metadata fetch is closed: no room for it");
            return;
        }
    }
    if let Some(trace) = &swarm.trace {
        // Ours went out during the fetch; theirs says what the connection goes on with.
        trace.handshake(addr, false, &handshake);
    }
    // Admitted now, where it listens with it, not in its task: the torrent's first dial (right after) must see
    // that this peer is connected, or it dials it a second time.
    let flags = [handshake.has(ReservedBit::EXTENSION_PROTOCOL), handshake.has(ReservedBit::DHT), v2];
    let admitted = swarm.admit_handed_over(addr, handshake.peer_id, direction, flags, listen_port);
    let swarm = swarm.clone();
    tokio::spawn(async move {
        let connection = async { serve(&swarm, stream, addr, admitted?, &replay).await };
        let result = tokio::select! {
            result = connection => result,
            () = swarm.until_closed() => Err(CloseReason::Stopping),
        };
        if direction == Direction::Outgoing {
            swarm.release_address(addr);
            swarm.candidate_ended(addr);
        }
        if let Err(reason) = result {
            tracing::debug!(%addr, %reason, "connection ended");
        }
    });
}

/// An admitted connection, from its first message to its end: `received` is read before the socket.
async fn serve<S: Transport>(
    swarm: &Arc<Swarm>,
    stream: S,
    addr: SocketAddr,
    admitted: crate::swarm::Admitted,
    received: &[u8],
) -> Result<(), CloseReason> {
    let key = admitted.key;
    let outbox = admitted.outbox;
    let (reader, writer) = stream.split();
    let writer_task = {
        let (outbox, swarm) = (outbox.clone(), swarm.clone());
        tokio::spawn(async move {
            let result = write_loop(writer, &outbox, swarm, addr).await;
            // However the writer ends (a disk error, a dead socket), the reader must not carry on alone.
            outbox.close();
            result
        })
    };
    let result = read_loop(reader, key, &outbox, swarm, addr, received).await;
    outbox.close();
    let reason = match &result {
        Ok(()) => CloseReason::Closed,
        Err(reason) => reason.clone(),
    };
    swarm.remove(key, &reason);
    let written = writer_task.await.map_err(|err| CloseReason::Task(format!("writer: {err}")))?;
    result.and(written)
}

async fn read_loop(
    mut reader: impl AsyncRead + Unpin,
    key: PeerKey,
    outbox: &Outbox,
    swarm: &Arc<Swarm>,
    addr: SocketAddr,
    received: &[u8],
) -> Result<(), CloseReason> {
    let limit = swarm.message_limit;
    let num_pieces = swarm.storage.num_pieces();
    let smallest = SMALLEST_READ_BUFFER.max(received.len() + 1);
    let mut buf = vec![0u8; smallest];
    buf[..received.len()].copy_from_slice(received);
    let (mut start, mut end) = (0, received.len());
    let mut small_reads = 0;
    loop {
        // Everything complete in the buffer is handled under one lock.
        let mut failure = None;
        let mut consumed = start;
        let messages = std::iter::from_fn(|| match peer_wire::decode(&buf[consumed..end], limit) {
            Ok(Some((message, used))) => {
                consumed += used;
                if let Some(trace) = &swarm.trace {
                    trace.line(addr, false, &crate::trace::describe(&message, num_pieces));
                }
                Some(message)
            }
            Ok(None) => None,
            Err(err) => {
                failure = Some(CloseReason::protocol(err));
                None
            }
        });
        swarm.handle_messages(key, messages)?;
        if let Some(reason) = failure {
            return Err(reason);
        }
        start = consumed;
        if start == end {
            (start, end) = (0, 0);
            if small_reads >= SHRINK_AFTER_READS {
                buf.truncate(smallest);
                buf.shrink_to_fit();
                small_reads = 0;
            }
        } else {
            // Room for the rest of the message begun at `start`: its length prefix says how much, once it is in
            // (at most `limit`, or decoding would have failed).
            let needed = match buf[start..end].get(..4) {
                Some(&[a, b, c, d]) => 4 + u32::from_be_bytes([a, b, c, d]) as usize,
                _ => 4,
            };
            if buf.len() - start < needed {
                buf.copy_within(start..end, 0);
                (start, end) = (0, end - start);
                if buf.len() < needed {
                    buf.resize(needed, 0);
                }
            }
        }
        // Under a download limit, reads come in slices of about a quarter second's worth (at least one block
        // message), and each waits for its share: the kernel's buffer fills and TCP slows the sender.
        let read_end = match swarm.download.rate() {
            Some(rate) => {
                let slice = (rate / 4).max(u64::from(peer_wire::BLOCK_LEN) + 13);
                buf.len().min(end + usize::try_from(slice).unwrap_or(usize::MAX))
            }
            None => buf.len(),
        };
        let read = tokio::select! {
            read = tokio::time::timeout(IDLE_TIMEOUT, reader.read(&mut buf[end..read_end])) => read,
            () = outbox.closed() => return Ok(()),
        };
        let read = match read {
            Err(_) => return Err(CloseReason::Idle),
            Ok(Err(err)) => return Err(CloseReason::io("read", err)),
            Ok(Ok(0)) => return Ok(()),
            Ok(Ok(n)) => n,
        };
        let room = buf.len() - end;
        if read == room && 2 * room >= buf.len() && buf.len() < READ_BUFFER {
            // It filled all the room there was, half the buffer or more: the peer has more to send than we take
            // at a time.
            buf.resize((2 * buf.len()).min(READ_BUFFER), 0);
            small_reads = 0;
        } else if buf.len() > smallest && read < buf.len() / 8 {
            small_reads += 1;
        } else {
            small_reads = 0;
        }
        end += read;
        {
            let wait = swarm.download.reserve(read as u64);
            if !wait.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = outbox.closed() => return Ok(()),
                }
            }
        }
    }
}

async fn write_loop(
    mut writer: impl AsyncWrite + Unpin,
    outbox: &Outbox,
    swarm: Arc<Swarm>,
    addr: SocketAddr,
) -> Result<(), CloseReason> {
    let mut batch = Batch::default();
    let mut out = Vec::new();
    loop {
        if outbox.is_closed() {
            let _ = writer.shutdown().await;
            return Ok(());
        }
        // Under a limit, send in slices of about a quarter second so the rate stays smooth (the limit may change
        // between batches).
        let max_uploads = match swarm.upload.rate() {
            Some(rate) => (rate / 4 / u64::from(peer_wire::BLOCK_LEN)).clamp(1, 64) as usize,
            None => UPLOAD_BATCH,
        };
        outbox.take(max_uploads, &mut batch);
        if batch.bytes.is_empty() && batch.uploads.is_empty() {
            // Nothing to send: a batch's worth of buffer (up to a MiB) is not kept for a connection that may not
            // upload again for minutes. Kept, the connections of a leecher whose upload slots move around held a
            // MiB each (a simulated swarm of 40 went from 0.25 to 3 GB).
            if out.capacity() > IDLE_BUFFER {
                out = Vec::new();
            }
            if batch.bytes.capacity() > IDLE_BUFFER {
                batch.bytes = Vec::new();
            }
            tokio::select! {
                () = outbox.wait() => {}
                () = tokio::time::sleep(KEEPALIVE_EVERY) => outbox.push(&Message::KeepAlive),
            }
            continue;
        }
        out.clear();
        std::mem::swap(&mut out, &mut batch.bytes);
        // Where each block ends in `out`, so each is counted as uploaded once the socket took all of it.
        let mut block_ends: Vec<(usize, u64)> = Vec::new();
        if !batch.uploads.is_empty() {
            let bytes: u64 = batch.uploads.iter().map(|block| u64::from(block.length)).sum();
            let wait = swarm.upload.reserve(bytes);
            if !wait.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = outbox.closed() => return Ok(()),
                }
            }
            let uploads = std::mem::take(&mut batch.uploads);
            let control_len = out.len();
            let storage = swarm.storage.clone();
            let read = move || {
                let mut buffer = out;
                buffer.reserve(uploads.len() * (PIECE_HEADER_LEN + peer_wire::BLOCK_LEN as usize));
                for block in &uploads {
                    encode_piece_header(block.piece, block.offset, block.length, &mut buffer);
                    if let Err(err) = storage.read_block(block.piece, block.offset, block.length, &mut buffer) {
                        return (buffer, uploads, Err(CloseReason::Disk(err.to_string())));
                    }
                }
                (buffer, uploads, Ok(()))
            };
            // Reading from disk blocks; it runs on the blocking pool, a whole batch at a time. Made-up bytes cost
            // a copy, and a simulation must not leave its one thread.
            let (buffer, uploads, result) = if swarm.storage.is_synthetic() {
                read()
            } else {
                tokio::task::spawn_blocking(read)
                    .await
                    .map_err(|err| CloseReason::Task(format!("disk read task: {err}")))?
            };
            let mut end = control_len;
            for block in &uploads {
                end += PIECE_HEADER_LEN + block.length as usize;
                block_ends.push((end, u64::from(block.length)));
            }
            out = buffer;
            batch.uploads = uploads;
            result?;
        }
        if let Some(trace) = &swarm.trace {
            trace_sent(trace, addr, &out, swarm.storage.num_pieces());
        }
        // A peer that stops reading must not hold this task (and its socket) for ever: the write gives up when
        // the connection is closed or makes no progress for as long as an idle connection is allowed. Progress is
        // counted per write, so the choker can tell a slow reader from one that stopped.
        let mut sent = 0;
        while sent < out.len() {
            tokio::select! {
                written = tokio::time::timeout(IDLE_TIMEOUT, writer.write(&out[sent..])) => match written {
                    Ok(Ok(0)) => return Err(CloseReason::io("write", "the connection closed")),
                    Ok(Ok(n)) => {
                        sent += n;
                        outbox.written.fetch_add(n as u64, Ordering::Relaxed);
                        let done = block_ends.partition_point(|&(end, _)| end <= sent);
                        let bytes: u64 = block_ends.drain(..done).map(|(_, length)| length).sum();
                        outbox.uploaded.fetch_add(bytes, Ordering::Relaxed);
                        swarm.uploaded.fetch_add(bytes, Ordering::Relaxed);
                    }
                    Ok(Err(err)) => return Err(CloseReason::io("write", err)),
                    Err(_) => return Err(CloseReason::StoppedReading),
                },
                () = outbox.closed() => return Ok(()),
            }
        }
    }
}

/// Traces each message in `out`, the bytes about to be written.
fn trace_sent(trace: &crate::trace::Trace, addr: SocketAddr, out: &[u8], num_pieces: u32) {
    let mut at = 0;
    while let Ok(Some((message, used))) = peer_wire::decode(&out[at..], peer_wire::MAX_MESSAGE_LEN) {
        trace.line(addr, true, &crate::trace::describe(&message, num_pieces));
        at += used;
    }
}

#[cfg(test)]
mod tests {
    use peer_wire::{ExtendedHandshake, MetadataMessage};
    use tokio::io::DuplexStream;

    use super::*;

    /// Reads one length-prefixed message from `stream` into `buf`; returns its bytes (id first).
    async fn next_message(stream: &mut DuplexStream, buf: &mut Vec<u8>) -> Vec<u8> {
        let mut len = [0u8; 4];
        stream.read_exact(&mut len).await.expect("length");
        buf.resize(u32::from_be_bytes(len) as usize, 0);
        stream.read_exact(buf).await.expect("message");
        buf.clone()
    }

    /// A hybrid's v2 peer knocks with the truncated v2 info-hash and is answered with it; any other hash is refused.
    #[tokio::test]
    async fn a_hybrids_v2_hash_is_answered_with_itself_and_a_stranger_refused() {
        let harness = crate::fuzzing::Harness::new(true);
        let swarm = harness.swarm();
        let addr = SocketAddr::from(([10, 9, 8, 7], 6881));
        for (hash, accepted) in [(crate::fuzzing::HARNESS_V2_HASH, true), ([0x77; 20], false)] {
            let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
            let task = {
                let swarm = swarm.clone();
                tokio::spawn(async move { run(&swarm, ours, addr, Direction::Incoming, None).await })
            };
            theirs.write_all(&Handshake::new(hash, *b"-XX0001-hybrid000000").encode()).await.expect("write");
            let mut reply = [0u8; HANDSHAKE_LEN];
            let read = theirs.read_exact(&mut reply).await;
            if accepted {
                read.expect("a reply");
                let (handshake, _) = Handshake::decode(&reply).expect("valid").expect("whole");
                assert_eq!(handshake.info_hash, hash, "answered with the hash it was asked for");
                drop(theirs);
                assert!(task.await.expect("the connection task").is_ok());
            } else {
                assert!(read.is_err(), "a stranger's hash gets no handshake");
                let ended = task.await.expect("the connection task");
                assert!(ended.is_err_and(|reason| reason.to_string().contains("another torrent")));
            }
        }
    }

    /// libtorrent's upgrade (BEP 52): a v1 handshake with the v2 bit is answered with the v2 hash, which makes the
    /// connection v2; without the bit it stays v1. Our own handshake asks for the upgrade, as libtorrent's does.
    #[tokio::test]
    async fn a_hybrids_v1_handshake_with_the_v2_bit_is_upgraded_to_v2() {
        let harness = crate::fuzzing::Harness::new(true);
        let swarm = harness.swarm();
        assert!(our_handshake(&swarm).has(ReservedBit::V2), "we ask to upgrade when we dial");
        for (upgrade, expected) in [(true, crate::fuzzing::HARNESS_V2_HASH), (false, swarm.info_hash)] {
            let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
            let addr = SocketAddr::from(([10, 9, 8, 7], 6881));
            let task = {
                let swarm = swarm.clone();
                tokio::spawn(async move { run(&swarm, ours, addr, Direction::Incoming, None).await })
            };
            let mut hello = Handshake::new(swarm.info_hash, *b"-XX0001-upgrade00000");
            hello.set(ReservedBit::V2, upgrade);
            theirs.write_all(&hello.encode()).await.expect("write");
            let mut reply = [0u8; HANDSHAKE_LEN];
            theirs.read_exact(&mut reply).await.expect("a reply");
            let (handshake, _) = Handshake::decode(&reply).expect("valid").expect("whole");
            assert_eq!(handshake.info_hash, expected, "upgrade asked: {upgrade}");
            drop(theirs);
            assert!(task.await.expect("the connection task").is_ok());
        }
    }

    /// Blocks that arrive a byte, a few bytes or many kilobytes at a time, length prefixes split included, all
    /// come through: the receive buffer starts small, grows to hold each message whole, and the pieces verify.
    #[tokio::test]
    async fn messages_split_anywhere_come_through_a_buffer_that_starts_small() {
        let harness = crate::fuzzing::Harness::new(false);
        let swarm = harness.swarm();
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let addr = SocketAddr::from(([10, 9, 8, 6], 6881));
        let task = {
            let swarm = swarm.clone();
            tokio::spawn(async move { run(&swarm, ours, addr, Direction::Incoming, None).await })
        };
        let (mut from_us, mut to_us) = tokio::io::split(theirs);
        to_us.write_all(&Handshake::new(swarm.info_hash, *b"-XX0001-splitting000").encode()).await.expect("write");
        let mut reply = [0u8; HANDSHAKE_LEN];
        from_us.read_exact(&mut reply).await.expect("a handshake back");
        // Our requests, as the seeder we play reads them.
        let (requests, mut asked) = tokio::sync::mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            let mut len = [0u8; 4];
            while from_us.read_exact(&mut len).await.is_ok() {
                let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
                if from_us.read_exact(&mut body).await.is_err() {
                    break;
                }
                if let Ok(Some((Message::Request { index, begin, length }, _))) =
                    peer_wire::decode(&[&len[..], &body].concat(), 1 << 20)
                {
                    let _ = requests.send((index, begin, length));
                }
            }
        });
        let mut hello = Vec::new();
        peer_wire::Bitfield::full(swarm.storage.num_pieces()).to_message().encode(&mut hello);
        Message::Unchoke.encode(&mut hello);
        to_us.write_all(&hello).await.expect("bitfield and unchoke");
        let cuts = [1, 2, 3, 4096, 7, 20_000, 16_397, 100, 1];
        let mut cut = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !swarm.is_complete() {
            assert!(tokio::time::Instant::now() < deadline, "the download did not complete");
            let Ok(Some((index, begin, length))) = tokio::time::timeout(Duration::from_millis(50), asked.recv()).await
            else {
                swarm.run_deferred();
                continue;
            };
            let offset = u64::from(index) * u64::from(swarm.storage.piece_length()) + u64::from(begin);
            let block: Vec<u8> = (offset..offset + u64::from(length)).map(crate::fuzzing::content).collect();
            let mut piece = Vec::new();
            Message::Piece { index, begin, block: &block }.encode(&mut piece);
            for chunk in piece.chunks(cuts[cut % cuts.len()]) {
                to_us.write_all(chunk).await.expect("write a slice");
                to_us.flush().await.expect("flush");
                tokio::task::yield_now().await;
            }
            cut += 1;
        }
        drop(to_us);
        task.abort();
        reader.abort();
        assert!(cut >= swarm.storage.num_pieces() as usize, "every piece came over this one connection");
    }

    #[tokio::test]
    async fn a_connection_runs_over_any_byte_stream() {
        let harness = crate::fuzzing::Harness::new(true);
        let swarm = harness.swarm();
        let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
        let addr = SocketAddr::from(([10, 9, 8, 7], 6881));
        let task = {
            let swarm = swarm.clone();
            tokio::spawn(async move { run(&swarm, ours, addr, Direction::Incoming, None).await })
        };
        let mut hello = Handshake::new(swarm.info_hash, *b"-XX0001-duplex000000");
        hello.set(ReservedBit::EXTENSION_PROTOCOL, true);
        theirs.write_all(&hello.encode()).await.expect("write handshake");
        let mut reply = [0u8; HANDSHAKE_LEN];
        theirs.read_exact(&mut reply).await.expect("read handshake");
        let (handshake, _) = Handshake::decode(&reply).expect("valid").expect("whole");
        assert_eq!(handshake.info_hash, swarm.info_hash);
        assert!(handshake.has(ReservedBit::EXTENSION_PROTOCOL));

        // Our extended handshake comes first; ask for the metadata it offers and check what comes back.
        let mut buf = Vec::new();
        let first = next_message(&mut theirs, &mut buf).await;
        assert_eq!(first[..2], [20, 0]);
        let offered = ExtendedHandshake::decode(&first[2..]).expect("extended handshake");
        let their_id = offered.extension_id(peer_wire::UT_METADATA).expect("ut_metadata offered").get();
        let mut out = Vec::new();
        Message::Extended { id: 0, payload: b"d1:md11:ut_metadatai3eee" }.encode(&mut out);
        let mut request = Vec::new();
        MetadataMessage::Request { piece: 0 }.encode(&mut request);
        Message::Extended { id: their_id, payload: &request }.encode(&mut out);
        theirs.write_all(&out).await.expect("write requests");
        let data = loop {
            let message = next_message(&mut theirs, &mut buf).await;
            if message.starts_with(&[20, 3]) {
                break message;
            }
        };
        let Ok(MetadataMessage::Data { piece: 0, total_size, block }) = MetadataMessage::decode(&data[2..], 1 << 20)
        else {
            panic!("not a metadata piece: {data:?}");
        };
        assert_eq!(u64::from(total_size), offered.metadata_size.expect("metadata_size"));
        assert_eq!(block.len(), total_size as usize);

        drop(theirs);
        assert!(task.await.expect("the connection task").is_ok(), "a clean close is not an error");
    }
}
