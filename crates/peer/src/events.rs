//! What a running torrent reports, in order: the events the program's layer turns into lines, bars and JSON, the
//! once-a-second status, and a summary per peer. Apart from the session so that the layers below it (the swarm,
//! the announcers, the magnet fetch) can report without importing the module that runs them.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use tokio::sync::mpsc;

use crate::sources::{Source, SourceCounts};

/// Transfer totals and rates, once a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub have: u32,
    pub total: u32,
    pub downloaded: u64,
    pub uploaded: u64,
    pub left: u64,
    pub download_rate: u64,
    pub upload_rate: u64,
    pub peers: usize,
    /// The connected peers by how their address reached us.
    pub sources: SourceCounts,
}

/// What one peer sent us and got from us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerSummary {
    pub addr: SocketAddr,
    pub peer_id: [u8; 20],
    /// How its address reached us.
    pub source: Source,
    pub downloaded: u64,
    pub uploaded: u64,
}

/// Where a torrent's events go: onto a channel that the torrents of a session may share, each event with the
/// info-hash of its torrent, so that one reader serves them all (one channel, not one per torrent).
#[derive(Debug, Clone)]
pub struct EventSink {
    torrent: [u8; 20],
    sender: mpsc::UnboundedSender<([u8; 20], Event)>,
}

impl EventSink {
    /// Events of the torrent `torrent` (its v1 info-hash, or a v2-only torrent's truncated one) onto `sender`.
    #[must_use]
    pub fn new(torrent: [u8; 20], sender: mpsc::UnboundedSender<([u8; 20], Event)>) -> EventSink {
        EventSink { torrent, sender }
    }

    /// A channel of one torrent's own, and its reading end.
    #[must_use]
    pub fn channel(torrent: [u8; 20]) -> (EventSink, mpsc::UnboundedReceiver<([u8; 20], Event)>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (EventSink::new(torrent, sender), receiver)
    }

    /// Sends `event`; false when nobody reads any more (the program is shutting down), which is not an error.
    pub fn send(&self, event: Event) -> bool {
        self.sender.send((self.torrent, event)).is_ok()
    }
}

/// A tracker and its last answer: `Ok((peers, seeders, leechers))` or why it failed; `None` before the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerStatus {
    pub url: String,
    pub last: Option<Result<(usize, u32, u32), String>>,
}

/// Everything the session reports, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Listening {
        addr: SocketAddr,
        /// Our peer id in this session, as other peers see it.
        peer_id: [u8; 20],
    },
    Checking {
        done: u64,
        total: u64,
    },
    /// The start-up check is over: by reading the data, or (`resumed`) by trusting the fast-resume state, whose
    /// files were exactly as it recorded.
    Checked {
        have: u32,
        total: u32,
        resumed: bool,
    },
    Announced {
        tracker: String,
        peers: usize,
        seeders: u32,
        leechers: u32,
    },
    AnnounceFailed {
        tracker: String,
        error: String,
    },
    PeerConnected {
        addr: SocketAddr,
        /// How its address reached us.
        source: Source,
    },
    PeerDisconnected {
        addr: SocketAddr,
        reason: String,
    },
    PieceVerified {
        index: u32,
        /// Who sent its blocks (address and peer id), each once.
        from: Vec<(SocketAddr, [u8; 20])>,
        have: u32,
        total: u32,
    },
    PieceFailed {
        index: u32,
        senders: Vec<SocketAddr>,
    },
    PeerBanned {
        addr: SocketAddr,
    },
    /// A failed piece of a v2 file was settled by its block hashes (BEP 52), which `by` sent and which proved out
    /// against the file's root: `bad_blocks` (indices within the piece) did not match, and `liars` sent them.
    BlocksChecked {
        index: u32,
        bad_blocks: Vec<u32>,
        liars: Vec<SocketAddr>,
        by: SocketAddr,
    },
    /// Several peers at this address were banned: the address itself is, from now on.
    AddressBanned {
        ip: IpAddr,
    },
    /// A verified piece could not be written: the filesystem of `path` is full. Downloading pauses (seeding goes
    /// on) until there is room; `free` bytes are left there and `needed` are still to download.
    DiskFull {
        path: PathBuf,
        piece: u32,
        free: u64,
        needed: u64,
    },
    /// There is room on disk again: downloading resumes.
    DiskRoom {
        free: u64,
    },
    /// Starting from a magnet link: the info dictionary (`size` bytes) arrived and matches the info-hash.
    MetadataReceived {
        size: usize,
    },
    /// Starting from a magnet link: the metadata (and a v2 torrent's piece layers) is complete and makes this
    /// torrent, saved as the .torrent file at `saved` (`None` when it could not be written). Its download starts.
    MetadataReady {
        torrent: std::sync::Arc<metainfo::Torrent>,
        saved: Option<PathBuf>,
    },
    /// Starting from a v2 or hybrid magnet link: the piece layers of `files` files (`hashes` hashes in all) arrived
    /// from peers and were proven against their pieces roots (BEP 52).
    PieceLayersReceived {
        files: usize,
        hashes: usize,
    },
    /// Starting from a magnet link: the assembled info dictionary did not match the info-hash; these peers sent
    /// it (one alone is banned) and the fetch starts over.
    MetadataFailed {
        senders: Vec<SocketAddr>,
    },
    /// Every piece is verified and on disk.
    Complete,
    /// Complete, and the trackers were told (or there are none): ready to serve.
    Seeding,
    Status(Status),
}
