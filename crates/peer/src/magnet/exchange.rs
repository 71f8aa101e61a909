//! One connection of a metadata fetch ([`super`]): the handshakes, then ut_metadata requests and answers (and a
//! v2 torrent's hash requests) until the metadata is complete or the peer is of no use; then, if the connection is
//! sound, what it keeps for the download that adopts it ([`super::Handover`]).

use super::*;

/// Dials `addr` and fetches what it will give; the candidate table hears how it went.
pub(super) async fn connect(shared: Arc<Shared>, addr: SocketAddr, source: Source) {
    let result = async {
        let mut stream = crate::connection::dial(addr, shared.local_ip).await.map_err(|reason| reason.to_string())?;
        let kept = exchange(&shared, &mut stream, addr, source, Role::Dialled).await?;
        Ok(kept.map(|kept| (stream, kept)))
    }
    .await;
    ended(&shared, addr, source, result);
}

/// Serves a peer that dialled us (its handshake read by the session): the same exchange as with a peer we
/// dialled.
pub(super) async fn accepted_connection(shared: Arc<Shared>, peer: IncomingPeer) {
    let IncomingPeer { mut stream, addr, handshake, ticket } = peer;
    let _ = stream.set_nodelay(true);
    let role = Role::Accepted(handshake, ticket);
    let result = exchange(&shared, &mut stream, addr, Source::Incoming, role).await;
    ended(&shared, addr, Source::Incoming, result.map(|kept| kept.map(|kept| (stream, kept))));
}

/// A connection ended: handed over to the download when the fetch is complete, else what it was asked goes back
/// to the others and the candidate table (for a peer we dialled) hears how it went.
fn ended(shared: &Shared, addr: SocketAddr, source: Source, result: Result<Option<(TcpStream, Kept)>, String>) {
    let (kept, failed) = match result {
        Ok(kept) => (kept, None),
        Err(reason) => (None, Some(reason)),
    };
    {
        let mut state = shared.lock();
        state.connections -= 1;
        state.kicks.remove(&addr);
        state.fetch.leave(addr);
        if let Some(layers) = state.layers.as_mut() {
            layers.leave(addr);
            shared.layers_turn.send_modify(|turn| *turn += 1);
        }
        if !state.is_banned(addr) && state.result.is_none() {
            state.candidates.ended(addr, Instant::now());
        }
        if let Some((stream, kept)) = kept
            && !shared.abandoned.load(std::sync::atomic::Ordering::Acquire)
        {
            let direction = if kept.dialled { Direction::Outgoing } else { Direction::Incoming };
            let Kept { handshake, v2, listen_port, replay, .. } = kept;
            state.handovers.push(Handover { stream, addr, direction, source, handshake, v2, listen_port, replay });
        }
    }
    shared.wake.notify_one();
    if let Some(reason) = failed {
        let _ = shared.events.send(Event::PeerDisconnected { addr, reason });
    }
}

/// What a connection that saw the fetch complete keeps for the download.
struct Kept {
    dialled: bool,
    handshake: Handshake,
    v2: bool,
    /// Where it listens, if its extended handshake said.
    listen_port: Option<u16>,
    replay: Vec<u8>,
}

/// Keeps, for the download, a message the fetch has no use for but the download does: its choke and interest,
/// its bitfield and haves, its DHT port, its extended handshake. `None` once over [`MAX_REPLAY`].
fn keep(replay: &mut Option<Vec<u8>>, message: &Message) {
    let Some(bytes) = replay else { return };
    let wanted = matches!(
        message,
        Message::Choke
            | Message::Unchoke
            | Message::Interested
            | Message::NotInterested
            | Message::Have { .. }
            | Message::Bitfield { .. }
            | Message::Port { .. }
            | Message::Extended { id: 0, .. }
    );
    if wanted {
        message.encode(bytes);
        if bytes.len() > MAX_REPLAY {
            *replay = None;
        }
    }
}

/// Which side opened a connection: the one that dials sends its handshake first. A peer that dialled us comes
/// with its handshake read by the session, and its place among the handshakes in progress.
#[derive(Debug)]
enum Role {
    Dialled,
    Accepted(Handshake, Ticket),
}

/// The handshakes, then ut_metadata requests and answers until the metadata is complete or the peer is of no use.
/// `Some` when the fetch completed while the connection was sound: what it keeps for the download. Works over
/// any byte stream, so other transports can carry it.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Shared,
    stream: &mut S,
    addr: SocketAddr,
    source: Source,
    role: Role,
) -> Result<Option<Kept>, String> {
    let dialled = matches!(role, Role::Dialled);
    let (handshake, v2) = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshakes(shared, stream, role))
        .await
        .map_err(|_| "handshake timed out".to_owned())??;
    if !handshake.has(ReservedBit::EXTENSION_PROTOCOL) {
        return Err("it does not speak the extension protocol (BEP 10), so it cannot send metadata".into());
    }
    let kick = Arc::new(Notify::new());
    {
        let mut state = shared.lock();
        state.fetch.connected(addr, Instant::now());
        state.kicks.insert(addr, kick.clone());
    }
    let _ = shared.events.send(Event::PeerConnected { addr, source });

    let mut out = Vec::new();
    let mut payload = Vec::new();
    ExtendedHandshake {
        extensions: [(UT_METADATA.to_owned(), UT_METADATA_ID)].into_iter().collect(),
        client: Some(concat!("bittorrent-tools ", env!("CARGO_PKG_VERSION")).to_owned()),
        listen_port: std::num::NonZeroU16::new(shared.port),
        your_ip: Some(addr.ip()),
        ..ExtendedHandshake::default()
    }
    .encode(&mut payload);
    Message::Extended { id: 0, payload: &payload }.encode(&mut out);
    stream.write_all(&out).await.map_err(|err| format!("write: {err}"))?;

    let mut their_id = None;
    // Where it listens, from its extended handshake: the download must not dial it there again.
    let mut their_port = None;
    // Zeroed pages are not touched until used, and reads come in small chunks, so the room for one largest
    // message costs little.
    let mut buf = vec![0u8; MAX_MESSAGE_LEN as usize + 4 + READ_CHUNK];
    let (mut start, mut end) = (0, 0);
    // While piece layers are fetched: a peer that proves no part of them for this long is dropped.
    let mut layers_deadline = tokio::time::Instant::now() + PATIENCE;
    let mut done = shared.done.subscribe();
    let mut layers_turn = shared.layers_turn.subscribe();
    let mut asking_layers = false;
    // What the download will need of what it says; and whether the fetch is complete (by this connection).
    let mut replay = Some(Vec::new());
    let mut complete = false;
    loop {
        out.clear();
        let mut consumed = start;
        loop {
            let (message, used) = match peer_wire::decode(&buf[consumed..end], MAX_MESSAGE_LEN) {
                Ok(Some(decoded)) => decoded,
                Ok(None) => break,
                Err(err) => return Err(err.to_string()),
            };
            consumed += used;
            if complete {
                keep(&mut replay, &message);
                continue;
            }
            let (root, range, answer) = match message {
                Message::Hashes { pieces_root, base_layer, index, length, proof_layers, hashes } => {
                    (pieces_root, HashRange { base_layer, index, length, proof_layers }, Some(hashes))
                }
                Message::HashReject { pieces_root, base_layer, index, length, proof_layers } => {
                    (pieces_root, HashRange { base_layer, index, length, proof_layers }, None)
                }
                Message::Extended { id, payload } => {
                    keep(&mut replay, &message);
                    complete = extended(shared, addr, dialled, id, payload, &mut their_id, &mut their_port)?;
                    continue;
                }
                other => {
                    keep(&mut replay, &other);
                    continue;
                }
            };
            if !v2 {
                // Never asked on a v1 connection: nothing to take from it.
                continue;
            }
            let mut state = shared.lock();
            if state.result.is_some() {
                // Given up on (a hybrid's layers): the fetch is over.
                continue;
            }
            let Some(layers) = state.layers.as_mut() else { continue };
            let Some(hashes) = answer else {
                layers.rejected(addr, &root, &range);
                let has_work = layers.has_work_for(addr);
                drop(state);
                shared.layers_turn.send_modify(|turn| *turn += 1);
                if !has_work {
                    return Err("it refused to send the piece layers (hash reject)".into());
                }
                continue;
            };
            match layers.hashes(addr, &root, &range, hashes) {
                Ok(LayerProgress::Ignored) => {}
                Ok(LayerProgress::Stored) => {
                    layers_deadline = tokio::time::Instant::now() + PATIENCE;
                    state.layers_progress = Instant::now();
                }
                Ok(LayerProgress::Complete) => {
                    let piece_layers = layers.layers().unwrap_or_default();
                    let info = state.info.take().unwrap_or_default();
                    tracing::info!("the piece layers of {} files are in and proven", piece_layers.len());
                    let hashes = piece_layers.values().map(Vec::len).sum();
                    let _ = shared.events.send(Event::PieceLayersReceived { files: piece_layers.len(), hashes });
                    state.result = Some((info, piece_layers));
                    drop(state);
                    shared.done.send_replace(true);
                    complete = true;
                }
                Err(err) => return Err(format!("banned: its hashes do not prove the file's pieces root: {err}")),
            }
        }
        if complete {
            return Ok(handed_over(dialled, handshake, v2, their_port, replay, &buf[consumed..end]));
        }
        if let Some(their_id) = their_id {
            let mut state = shared.lock();
            let requests = state.fetch.next_requests(addr, Instant::now());
            for piece in requests {
                payload.clear();
                MetadataMessage::Request { piece }.encode(&mut payload);
                Message::Extended { id: their_id, payload: &payload }.encode(&mut out);
            }
            if let Some(layers) = state.layers.as_mut().filter(|_| v2) {
                for (pieces_root, range) in layers.next_requests(addr) {
                    let HashRange { base_layer, index, length, proof_layers } = range;
                    Message::HashRequest { pieces_root, base_layer, index, length, proof_layers }.encode(&mut out);
                }
            }
        }
        if !out.is_empty() {
            stream.write_all(&out).await.map_err(|err| format!("write: {err}"))?;
        }
        start = consumed;
        if start == end {
            (start, end) = (0, 0);
        } else if buf.len() - end < MAX_MESSAGE_LEN as usize + 4 {
            buf.copy_within(start..end, 0);
            (start, end) = (0, end - start);
        }
        let (deadline, fetching_layers) = {
            let state = shared.lock();
            match state.fetch.deadline(addr) {
                Some(deadline) if state.info.is_none() => (deadline, false),
                _ => (layers_deadline, true),
            }
        };
        let look_again = tokio::time::Instant::now() + ASK_AGAIN_EVERY;
        let chunk_end = (end + READ_CHUNK).min(buf.len());
        let read = tokio::select! {
            read = tokio::time::timeout_at(deadline, stream.read(&mut buf[end..chunk_end])) => read,
            () = until_done(&mut done) => {
                // Complete by another connection (or given up on): this one goes on into the download.
                return Ok(handed_over(dialled, handshake, v2, their_port, replay, &buf[start..end]));
            }
            () = kick.notified() => {
                return Err(format!(
                    "it sent no metadata in {} s while other peers wait for a connection",
                    crate::metadata::ROTATE_AFTER.as_secs()
                ));
            }
            () = tokio::time::sleep_until(look_again), if their_id.is_some() && !fetching_layers => continue,
            Ok(()) = layers_turn.changed() => {
                if !asking_layers {
                    asking_layers = true;
                    layers_deadline = tokio::time::Instant::now() + PATIENCE;
                }
                continue;
            }
        };
        match read {
            Err(_) if fetching_layers => return Err(format!("no hashes from it for {} s", PATIENCE.as_secs())),
            Err(_) => {
                if shared.lock().fetch.is_stalled(addr, Instant::now()) {
                    return Err(format!("no metadata asked of it arrived for {} s", PATIENCE.as_secs()));
                }
                continue;
            }
            Ok(Err(err)) => return Err(format!("read: {err}")),
            Ok(Ok(0)) => return Err("it closed the connection".into()),
            Ok(Ok(n)) => end += n,
        }
    }
}

/// What a connection keeps for the download once the fetch is complete: `None` when its peer said too much to
/// replay (it closes, and may be dialled again).
fn handed_over(
    dialled: bool,
    handshake: Handshake,
    v2: bool,
    listen_port: Option<u16>,
    replay: Option<Vec<u8>>,
    tail: &[u8],
) -> Option<Kept> {
    let mut replay = replay?;
    replay.extend_from_slice(tail);
    Some(Kept { dialled, handshake, v2, listen_port, replay })
}

/// Both handshakes, ours first when we dialled, theirs first when they did: theirs, and whether the connection
/// is v2 (for the piece layers' hash requests).
async fn handshakes<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Shared,
    stream: &mut S,
    role: Role,
) -> Result<(Handshake, bool), String> {
    let mut ours = Handshake::new(shared.info_hash, shared.peer_id);
    ours.set(ReservedBit::EXTENSION_PROTOCOL, true);
    // As the download's handshake would: the connection goes on into it.
    ours.set(ReservedBit::DHT, shared.dht);
    match role {
        Role::Dialled => {
            ours.set(ReservedBit::V2, shared.kind.asks_upgrade(&shared.info_hash));
            stream.write_all(&ours.encode()).await.map_err(|err| format!("handshake: {err}"))?;
            let theirs = read_handshake(stream).await?;
            let v2 = shared.kind.is_v2(&shared.info_hash, &theirs.info_hash)?;
            Ok((theirs, v2))
        }
        Role::Accepted(theirs, ticket) => {
            // They name the swarm: ours, or for a hybrid or v2 link its truncated v2 hash; we answer in kind.
            let v2 = shared.kind.is_v2(&shared.info_hash, &theirs.info_hash)?;
            ours.info_hash = theirs.info_hash;
            stream.write_all(&ours.encode()).await.map_err(|err| format!("handshake: {err}"))?;
            // The handshake is over: its place goes to the next connection.
            drop(ticket);
            Ok((theirs, v2))
        }
    }
}

async fn read_handshake<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Handshake, String> {
    let mut buf = [0u8; HANDSHAKE_LEN];
    stream.read_exact(&mut buf).await.map_err(|err| format!("handshake: {err}"))?;
    match Handshake::decode(&buf) {
        Ok(Some((handshake, _))) => Ok(handshake),
        Ok(None) => Err("handshake: short".to_owned()),
        Err(err) => Err(format!("handshake: {err}")),
    }
}

/// An extended message: the extended handshake (which says whether and how much metadata `addr` has) or a
/// ut_metadata one. `Ok(true)` when the fetch is complete.
fn extended(
    shared: &Shared,
    addr: SocketAddr,
    dialled: bool,
    id: u8,
    payload: &[u8],
    their_id: &mut Option<u8>,
    their_port: &mut Option<u16>,
) -> Result<bool, String> {
    let mut state = shared.lock();
    let now = Instant::now();
    if id == 0 {
        let handshake = ExtendedHandshake::decode(payload).map_err(|err| format!("extended handshake: {err}"))?;
        *their_port = handshake.listen_port.map(std::num::NonZeroU16::get);
        if !dialled && let Some(port) = handshake.listen_port {
            // Where it listens: handed on to the download, which dials it.
            state.remember(SocketAddr::new(addr.ip(), port.get()), Source::Incoming);
        }
        *their_id = handshake.extension_id(UT_METADATA).map(std::num::NonZeroU8::get);
        if their_id.is_none() {
            return Err("it does not serve metadata (no ut_metadata in its extended handshake)".into());
        }
        let size = handshake.metadata_size.ok_or("it has no metadata to share (no metadata_size)")?;
        state.fetch.join(addr, size, now).map_err(|refusal| refusal.to_string())?;
    } else if id == UT_METADATA_ID {
        match MetadataMessage::decode(payload, MAX_METADATA_SIZE) {
            Ok(MetadataMessage::Data { piece, total_size, block }) => {
                match state.fetch.data(addr, piece, total_size, block, now).map_err(|err| err.to_string())? {
                    Received::Ignored => {}
                    // It did what was asked: worth dialling again without a growing wait.
                    Received::Stored => state.candidates.connected(addr),
                    Received::Complete(metadata) => {
                        let size = metadata.len();
                        let complete = state.metadata_complete(metadata, shared.kind);
                        drop(state);
                        let _ = shared.events.send(Event::MetadataReceived { size });
                        if complete {
                            shared.done.send_replace(true);
                            return Ok(true);
                        }
                        shared.layers_turn.send_modify(|turn| *turn += 1);
                        return Ok(false);
                    }
                    Received::Failed { senders } => {
                        let _ = shared.events.send(Event::MetadataFailed { senders });
                    }
                }
            }
            Ok(MetadataMessage::Reject { piece }) => {
                state.fetch.rejected(addr, piece);
                if !state.fetch.is_waiting_on(addr) && state.layers.is_none() {
                    return Err("it refused to send the metadata".into());
                }
            }
            Ok(_) => {}
            Err(err) => return Err(format!("ut_metadata: {err}")),
        }
    }
    if state.fetch.is_banned(addr) {
        return Err(refusal_of_banned());
    }
    Ok(state.result.is_some())
}

fn refusal_of_banned() -> String {
    "banned: it sent metadata that does not match the info-hash".into()
}
