//! What the session answers about its torrents: each one's state, progress, rates, peers, files and trackers,
//! whether it runs, dozes or waits for its metadata. The library's query API, and what the RPC reads.

use super::*;

impl Session {
    /// Every torrent of the session, in the order they were added.
    #[must_use]
    pub fn torrents(&self) -> Vec<TorrentStatus> {
        let entries: Vec<Arc<Entry>> = lock(&self.entries).list.clone();
        entries.iter().map(|entry| status_of(entry)).collect()
    }

    /// Torrents dozing now: seeding, idle, holding no swarm until a peer or an announce wakes them.
    #[must_use]
    pub fn dozing(&self) -> usize {
        let entries: Vec<Arc<Entry>> = lock(&self.entries).list.clone();
        entries.iter().filter(|entry| lock(&entry.past).dozing.is_some()).count()
    }

    /// The torrent with this info-hash (v1, or a hybrid's truncated v2).
    #[must_use]
    pub fn torrent(&self, info_hash: &[u8; 20]) -> Option<TorrentStatus> {
        self.find(info_hash).map(|entry| status_of(&entry))
    }
}

fn status_of(entry: &Entry) -> TorrentStatus {
    let phase = entry.control.phase();
    let Some(slot) = entry.slot.get() else { return fetching_status(entry, phase) };
    let torrent = &slot.torrent;
    let swarm = entry.swarm();
    let state = match (phase, &swarm) {
        (Phase::Starting, None) => State::Checking,
        (Phase::Dozing, None) => State::Seeding,
        (Phase::Starting | Phase::Dozing, Some(swarm)) if swarm.is_finished() => State::Seeding,
        (Phase::Starting | Phase::Dozing, Some(_)) => State::Downloading,
        (Phase::Paused, _) => State::Paused,
        (Phase::Stopped, _) => State::Stopped,
        (Phase::Errored(reason), _) => State::Errored(reason),
        (Phase::Removed, _) => State::Removed,
    };
    let past = lock(&entry.past);
    let num_pieces = slot.layout.num_pieces();
    let (mut status, pieces, peers, answers) = match &swarm {
        Some(swarm) => (swarm.status(), swarm.have_bitfield(), swarm.connected_peers(), swarm.tracker_statuses()),
        None => {
            let pieces = past.pieces.clone().unwrap_or_else(|| Bitfield::new(num_pieces));
            let answers = past.trackers.clone();
            (idle_status(pieces.count(), num_pieces), pieces, Vec::new(), answers)
        }
    };
    status.downloaded += past.downloaded;
    status.uploaded += past.uploaded;
    drop(past);
    let files = slot.layout.file_progress(&pieces);
    let size = slot.layout.total_length();
    if swarm.is_none() {
        status.left = size - files.iter().map(|file| file.done).sum::<u64>().min(size);
    }
    let trackers = crate::announcer::tiers(torrent)
        .into_iter()
        .flatten()
        .map(|url| {
            let last = answers.iter().find(|answer| answer.url == url).and_then(|answer| answer.last.clone());
            TrackerStatus { url, last }
        })
        .collect();
    TorrentStatus {
        info_hash: torrent.info_hash.0,
        name: torrent.info.name.clone(),
        state,
        size,
        status,
        peers,
        files,
        trackers,
        upload_limit: entry.limits.upload.rate(),
        download_limit: entry.limits.download.rate(),
        dir: entry.config.dir.clone(),
        piece_length: slot.layout.piece_length(),
        private: torrent.info.private,
    }
}

/// A magnet link's torrent before its metadata: no size, no files, no pieces yet.
fn fetching_status(entry: &Entry, phase: Phase) -> TorrentStatus {
    let state = match phase {
        Phase::Starting | Phase::Dozing => State::FetchingMetadata,
        Phase::Paused => State::Paused,
        Phase::Stopped => State::Stopped,
        Phase::Errored(reason) => State::Errored(reason),
        Phase::Removed => State::Removed,
    };
    let trackers = entry.magnet.iter().flat_map(|magnet| magnet.trackers.iter());
    TorrentStatus {
        info_hash: entry.hashes().first().copied().unwrap_or_default(),
        name: entry.name(),
        state,
        size: 0,
        status: idle_status(0, 0),
        peers: Vec::new(),
        files: Vec::new(),
        trackers: trackers.map(|url| TrackerStatus { url: url.clone(), last: None }).collect(),
        upload_limit: entry.limits.upload.rate(),
        download_limit: entry.limits.download.rate(),
        dir: entry.config.dir.clone(),
        piece_length: 0,
        private: false,
    }
}

/// The status of a torrent that does not run: `have` of `total` pieces, nothing moving.
fn idle_status(have: u32, total: u32) -> Status {
    Status {
        have,
        total,
        downloaded: 0,
        uploaded: 0,
        left: 0,
        download_rate: 0,
        upload_rate: 0,
        peers: 0,
        sources: crate::sources::SourceCounts::default(),
    }
}
