//! A torrent's task, from start to end: a magnet link's metadata first, then runs, dozes, pauses and resumes as
//! asked, and the goodbye to its trackers when it ends.

use super::*;

/// A torrent's task: fetches a magnet link's metadata first, then runs it, pauses and resumes it as asked, and
/// ends when it is stopped, removed, done (`exit_on_complete`) or errored. The phase it leaves behind says which.
async fn drive(shared: Arc<Shared>, entry: Arc<Entry>) -> Result<Outcome, TorrentError> {
    let control = &entry.control;
    let _ = entry.events.send(Event::Listening { addr: shared.listen_addr, peer_id: shared.peer_id });
    let asked = torrent::Asked { now: &|| control.wanted() != Wanted::Run, changed: &control.changed };
    // Where the torrent stands while it dozes, between its runs.
    let mut dozed: Option<Box<torrent::Dozed>> = None;
    loop {
        match control.wanted() {
            Wanted::Run => {}
            Wanted::Pause | Wanted::Stop | Wanted::Remove => {
                if let Some(asleep) = dozed.take() {
                    // Asked to stop while it dozed: the trackers hear `stopped` as from a running torrent.
                    let goodbye = goodbye_announce(&shared, &entry);
                    {
                        let mut past = lock(&entry.past);
                        past.dozing = None;
                        past.trackers = Vec::new();
                    }
                    Box::pin(asleep.goodbye(goodbye, &shared)).await;
                }
                if control.wanted() != Wanted::Pause {
                    break;
                }
                control.set_phase(Phase::Paused);
                control.until(|wanted, _| wanted != Wanted::Pause).await;
                continue;
            }
        }
        match (dozed.as_mut(), entry.slot.get()) {
            (Some(asleep), Some(slot)) => {
                control.set_phase(Phase::Dozing);
                let moved = {
                    let past = lock(&entry.past);
                    (past.downloaded, past.uploaded)
                };
                let record = |url: &str, result: crate::dozing::AnnounceResult| {
                    let mut past = lock(&entry.past);
                    let status = TrackerStatus { url: url.to_owned(), last: Some(result) };
                    match past.trackers.iter_mut().find(|known| known.url == url) {
                        Some(known) => *known = status,
                        None => {
                            // Most torrents name one or two trackers: room for four each would cost more than
                            // the rest of a dozing torrent's answers.
                            past.trackers.reserve_exact(1);
                            past.trackers.push(status);
                        }
                    }
                };
                let with = crate::dozing::DozeWith {
                    shared: &shared,
                    info_hash: slot.torrent.info_hash.0,
                    private: slot.torrent.info.private,
                    events: &entry.events,
                    asked: &asked,
                    moved,
                    record: &record,
                };
                match asleep.doze(&with).await {
                    crate::dozing::Woke::Asked => continue,
                    crate::dozing::Woke::Wanted => {
                        let mut past = lock(&entry.past);
                        past.dozing = None;
                        asleep.trackers = std::mem::take(&mut past.trackers);
                    }
                }
            }
            _ => control.set_phase(Phase::Starting),
        }
        // What a magnet link's fetch hands on to the first run (its connections, trackers and peers).
        let (slot, handover) = match (entry.slot.get(), &entry.magnet) {
            (Some(slot), _) => (slot, None),
            (None, Some(magnet)) => {
                // On the heap: once the metadata is in, the torrent's task does not keep the fetch's room.
                let fetching = Box::pin(crate::fetching::fetch_torrent(&shared, magnet, &entry.config, &entry.events));
                let fetched = tokio::select! {
                    fetched = fetching => fetched,
                    // Paused, stopped or removed while fetching: the fetch ends with its future.
                    () = until_asked(control) => continue,
                };
                let made = fetched.and_then(|(torrent, fetched)| {
                    let layout = shared.layout(&torrent, &entry.config.dir)?;
                    torrent::choose_files(&layout, &entry.config.only, &torrent.info.name)?;
                    let slot = TorrentSlot { torrent: Arc::new(torrent), layout, running: Mutex::new(None) };
                    Ok((slot, fetched))
                });
                match made {
                    Ok((slot, fetched)) => {
                        let slot = entry.slot.get_or_init(|| slot);
                        // Its metainfo is known now: the state folder keeps it instead of the link.
                        entry.persist(&shared, true);
                        (slot, Some(Box::new(fetched)))
                    }
                    Err(err) => return errored(&entry, err),
                }
            }
            (None, None) => return Err(TorrentError::StoppedBeforeMetadata),
        };
        let pieces = lock(&entry.past).pieces.clone();
        let with = Box::new(torrent::RunWith {
            config: &entry.config,
            events: &entry.events,
            own: &entry.limits,
            pieces,
            handover,
            woken: dozed.take(),
        });
        // On the heap: while the torrent dozes, its task keeps room only for the wait below.
        let result = Box::pin(torrent::run(slot, &shared, with, &asked)).await;
        match result {
            Ok((mut ended, asleep)) => {
                let dozing = {
                    let mut past = lock(&entry.past);
                    past.pieces = Some(ended.pieces.clone());
                    past.downloaded += ended.downloaded;
                    past.uploaded += ended.uploaded;
                    // A run that dozed off having done nothing (as one that starts dozing) leaves no outcome: the
                    // pieces above say all there is, and thousands of dozing torrents keep no copy of them.
                    let idle = ended.downloaded == 0 && ended.uploaded == 0 && ended.peers.is_empty();
                    if asleep.is_none() || !idle {
                        if let Some(before) = past.last.take().filter(|_| past.last_dozed) {
                            // One run to the user: what it did before the doze counts too.
                            ended.downloaded += before.downloaded;
                            ended.uploaded += before.uploaded;
                            ended.peers.splice(0..0, before.peers);
                        }
                        past.last = Some(Box::new(ended));
                        past.last_dozed = asleep.is_some();
                    }
                    asleep.map(|mut asleep| {
                        past.dozing = Some(asleep.door.clone());
                        past.trackers = std::mem::take(&mut asleep.trackers);
                        asleep
                    })
                };
                if let Some(asleep) = dozing {
                    dozed = Some(asleep);
                    continue;
                }
                if control.wanted() == Wanted::Run {
                    // It ended by itself: complete, with `exit_on_complete`.
                    break;
                }
            }
            // Asked to pause, stop or leave mid-check: no run happened, and what it had before stands.
            Err(TorrentError::CheckStopped) => {}
            Err(err) => {
                shared.served.close_doors_of(&entry.hashes());
                return errored(&entry, err);
            }
        }
    }
    let removed = control.wanted() == Wanted::Remove;
    control.set_phase(if removed { Phase::Removed } else { Phase::Stopped });
    let Some(slot) = entry.slot.get() else { return Err(TorrentError::StoppedBeforeMetadata) };
    let mut past = lock(&entry.past);
    Ok(past.last.take().map_or_else(
        || {
            // Never ran (paused from the start, then stopped): what it had before.
            let pieces = past.pieces.clone().unwrap_or_else(|| Bitfield::new(slot.layout.num_pieces()));
            Outcome {
                complete: pieces.is_complete(),
                have: pieces.count(),
                total: pieces.len(),
                downloaded: 0,
                uploaded: 0,
                peers: Vec::new(),
                pieces,
            }
        },
        |outcome| *outcome,
    ))
}

/// [`drive`] inside the torrent's `tracing` span: every line logged by its tasks names it (by info-hash, and by
/// name once known).
pub(super) fn driven(
    shared: Arc<Shared>,
    entry: Arc<Entry>,
) -> impl std::future::Future<Output = Result<Outcome, TorrentError>> {
    use tracing::Instrument;
    let hash = entry.hashes().first().map(hex).unwrap_or_default();
    let span = tracing::info_span!("torrent", info_hash = %hash, name = %entry.name());
    drive(shared, entry).instrument(span)
}

/// The `stopped` announce of a torrent stopped while it dozed: what it moved over its runs, and what it lacks.
fn goodbye_announce(shared: &Shared, entry: &Entry) -> crate::tracker_client::Announce {
    let past = lock(&entry.past);
    let left = entry.slot.get().map_or(0, |slot| {
        let pieces = past.pieces.clone().unwrap_or_else(|| Bitfield::new(slot.layout.num_pieces()));
        let size = slot.layout.total_length();
        size - slot.layout.file_progress(&pieces).iter().map(|file| file.done).sum::<u64>().min(size)
    });
    crate::tracker_client::Announce {
        info_hash: entry.hashes().first().copied().unwrap_or_default(),
        peer_id: shared.peer_id,
        downloaded: past.downloaded,
        left,
        uploaded: past.uploaded,
        event: tracker_protocol::AnnounceEvent::Stopped,
        key: 0,
        num_want: 0,
        port: shared.listen_addr.port(),
    }
}

/// Returns once the user asks for something other than running.
async fn until_asked(control: &Control) {
    control.until(|wanted, _| wanted != Wanted::Run).await;
}

/// The torrent stopped on `err`, alone.
fn errored(entry: &Entry, err: TorrentError) -> Result<Outcome, TorrentError> {
    tracing::warn!(torrent = %entry.name(), "stopped on an error: {err}");
    entry.control.set_phase(Phase::Errored(err.to_string()));
    Err(err)
}
