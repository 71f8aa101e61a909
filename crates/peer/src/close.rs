//! Why a peer connection ends: one enum for the swarm, the connection tasks and the log, so that a caller can
//! tell a refusal from a protocol violation or a dead socket without reading words.

use std::fmt;

/// Why a connection ends. Its `Display` is the phrase logged and sent in [`crate::events::Event::PeerDisconnected`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The torrent is stopping (paused, removed, or the session shutting down).
    Stopping,
    /// We would not have it: see [`Refusal`].
    Refused(Refusal),
    /// The peer broke the protocol; what it sent, in words.
    Protocol(String),
    /// The socket failed during `during` (connect, handshake, read, write...).
    Io { during: &'static str, error: String },
    /// `what` (connect, handshake) did not finish in time.
    TimedOut(&'static str),
    /// Nothing came from the peer for too long.
    Idle,
    /// The peer stopped reading what we send.
    StoppedReading,
    /// A newer connection with the same peer took its place.
    Replaced,
    /// The swarm had already let it go.
    Removed,
    /// The peer closed the connection.
    Closed,
    /// Reading a block the peer asked for failed on our disk.
    Disk(String),
    /// A task of ours serving the connection failed (a panic, a cancelled blocking job).
    Task(String),
}

/// Why a connection is refused, before or at its admission to the swarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Banned,
    /// Banned, or the torrent has no room: said where the two are not told apart.
    BannedOrFull,
    Ourselves,
    DuplicatePeer,
    TooManyPeers,
    TooManyFromAddress,
    DuplicateAddress,
    SessionLimit,
    /// Its handshake names another torrent than the one we dialled it for.
    OtherTorrent,
    /// Its handshake names a torrent the session does not serve.
    UnknownTorrent,
    /// Its handshake was crowded out by newer ones (see `admission`).
    Evicted,
    /// A magnet link's metadata fetch has no room for another connection.
    FetchFull,
}

impl CloseReason {
    /// A protocol violation described by `what`.
    pub(crate) fn protocol(what: impl fmt::Display) -> CloseReason {
        CloseReason::Protocol(what.to_string())
    }

    /// A socket error during `during`.
    pub(crate) fn io(during: &'static str, error: impl fmt::Display) -> CloseReason {
        CloseReason::Io { during, error: error.to_string() }
    }
}

impl From<Refusal> for CloseReason {
    fn from(refusal: Refusal) -> CloseReason {
        CloseReason::Refused(refusal)
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Stopping => f.write_str("the torrent stopped"),
            CloseReason::Refused(refusal) => refusal.fmt(f),
            CloseReason::Protocol(what) => f.write_str(what),
            CloseReason::Io { during, error } => write!(f, "{during}: {error}"),
            CloseReason::TimedOut(what) => write!(f, "{what} timed out"),
            CloseReason::Idle => f.write_str("idle for too long"),
            CloseReason::StoppedReading => f.write_str("the peer stopped reading"),
            CloseReason::Replaced => f.write_str("replaced by a new connection"),
            CloseReason::Removed => f.write_str("peer was removed"),
            CloseReason::Closed => f.write_str("closed"),
            CloseReason::Disk(error) => write!(f, "reading from disk: {error}"),
            CloseReason::Task(error) => write!(f, "{error}"),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::Banned => "banned",
            Refusal::BannedOrFull => "banned, or no room for more peers",
            Refusal::Ourselves => "connected to ourselves",
            Refusal::DuplicatePeer => "already connected to this peer",
            Refusal::TooManyPeers => "too many peers",
            Refusal::TooManyFromAddress => "too many connections from this address",
            Refusal::DuplicateAddress => "already connected to this address",
            Refusal::SessionLimit => "the session's connection limit is reached",
            Refusal::OtherTorrent => "handshake for another torrent",
            Refusal::UnknownTorrent => "handshake for a torrent we do not serve",
            Refusal::Evicted => "handshake evicted by newer connections",
            Refusal::FetchFull => "the metadata fetch has no room for it",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_as_the_log_has_always_said_them() {
        assert_eq!(CloseReason::from(Refusal::Banned).to_string(), "banned");
        assert_eq!(CloseReason::io("read", "connection reset").to_string(), "read: connection reset");
        assert_eq!(CloseReason::TimedOut("handshake").to_string(), "handshake timed out");
        assert_eq!(CloseReason::protocol("have: index 9 of 4").to_string(), "have: index 9 of 4");
        assert_eq!(CloseReason::Stopping.to_string(), "the torrent stopped");
    }
}
