//! Where peers come from, and when to dial them: one table of candidate addresses fed by every source (trackers,
//! `--peer`, and later peer exchange, the DHT and local discovery), so that de-duplication, back-off after failed
//! connections and the table's size are decided in one place. The swarm keeps the connection cap and the bans.
//!
//! Pure: the caller passes the clock and dials what [`Candidates::due`] returns.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

// The runtime's clock, not the wall's: a simulation runs this code in virtual time.
use tokio::time::Instant;

/// How a peer's address reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// A tracker's announce reply.
    Tracker,
    /// `--peer` on the command line.
    Manual,
    /// It connected to us.
    Incoming,
    /// A peer told us of it (BEP 11 peer exchange).
    Pex,
    /// A DHT lookup found it (BEP 5).
    Dht,
    /// It announced itself on the local network (BEP 14 local service discovery).
    Lsd,
}

impl Source {
    /// Every source, in the order status lines list them.
    pub const ALL: [Source; 6] =
        [Source::Tracker, Source::Dht, Source::Pex, Source::Lsd, Source::Manual, Source::Incoming];

    /// The name used in `--json` events.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Source::Tracker => "tracker",
            Source::Manual => "manual",
            Source::Incoming => "incoming",
            Source::Pex => "pex",
            Source::Dht => "dht",
            Source::Lsd => "lsd",
        }
    }
}

/// Peers counted by how their address reached us.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceCounts([usize; Source::ALL.len()]);

impl SourceCounts {
    /// How many came from `source`.
    #[must_use]
    pub fn get(&self, source: Source) -> usize {
        self.0[source as usize]
    }

    /// Each source with its count, in [`Source::ALL`]'s order, zeros included.
    pub fn iter(&self) -> impl Iterator<Item = (Source, usize)> + '_ {
        Source::ALL.into_iter().map(|source| (source, self.get(source)))
    }
}

impl FromIterator<Source> for SourceCounts {
    fn from_iter<I: IntoIterator<Item = Source>>(sources: I) -> Self {
        let mut counts = SourceCounts::default();
        for source in sources {
            counts.0[source as usize] += 1;
        }
        counts
    }
}

/// Candidates kept at most; past it, new addresses from unlimited sources are ignored until some are forgotten.
pub const MAX_CANDIDATES: usize = 2000;
/// Of which at most this many from peer exchange, so that peers cannot crowd out what the trackers name.
pub const MAX_PEX_CANDIDATES: usize = 500;
/// And at most this many from the DHT: one lookup may bring thousands of values from nodes of anyone's choosing.
pub const MAX_DHT_CANDIDATES: usize = 500;
/// And at most this many from local service discovery, which anyone on the network can send.
pub const MAX_LSD_CANDIDATES: usize = 500;
/// First wait after a failed or ended connection; doubles per failure in a row.
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
/// Longest wait between tries.
const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// Failures in a row after which an address from an unlimited source is forgotten (a tracker may name it again).
const MAX_FAILURES: u32 = 6;

#[derive(Debug, Clone)]
struct Candidate {
    source: Source,
    /// Failed or ended connections in a row.
    failures: u32,
    /// Not dialled before this.
    next_try: Instant,
    /// Being dialled or connected.
    busy: bool,
    /// Known to have the whole torrent (it said so in its bitfield, or peer exchange said so): a seeder has
    /// nothing to trade with it, so it is not dialled while we are complete.
    seed: bool,
}

/// The candidate table of one torrent.
#[derive(Debug, Default)]
pub struct Candidates {
    known: HashMap<SocketAddr, Candidate>,
    /// How many of `known` came from each source.
    by_source: SourceCounts,
}

impl Candidates {
    /// Adds `addr` from `source`, to be dialled at once. An address already known keeps its back-off; a `--peer`
    /// address is always kept, others only while the table has room.
    pub fn add(&mut self, addr: SocketAddr, source: Source, now: Instant) {
        if let Some(known) = self.known.get_mut(&addr) {
            if source == Source::Manual && known.source != Source::Manual {
                self.by_source.0[known.source as usize] -= 1;
                self.by_source.0[Source::Manual as usize] += 1;
                known.source = Source::Manual;
            }
            return;
        }
        if source != Source::Manual && self.known.len() >= MAX_CANDIDATES {
            return;
        }
        let cap = match source {
            Source::Pex => MAX_PEX_CANDIDATES,
            Source::Dht => MAX_DHT_CANDIDATES,
            Source::Lsd => MAX_LSD_CANDIDATES,
            Source::Tracker | Source::Manual | Source::Incoming => MAX_CANDIDATES,
        };
        if self.by_source.get(source) >= cap {
            return;
        }
        self.by_source.0[source as usize] += 1;
        self.known.insert(addr, Candidate { source, failures: 0, next_try: now, busy: false, seed: false });
    }

    /// `addr` has the whole torrent.
    pub fn mark_seed(&mut self, addr: SocketAddr) {
        if let Some(candidate) = self.known.get_mut(&addr) {
            candidate.seed = true;
        }
    }

    /// Addresses to dial now, at most `room`, oldest due first, leaving out known seeds when `complete` (ours is
    /// too) and those `connected` says we already have a connection with (one they opened); each is marked busy
    /// until [`Candidates::ended`].
    pub fn due(
        &mut self,
        now: Instant,
        room: usize,
        complete: bool,
        connected: impl Fn(SocketAddr) -> bool,
    ) -> Vec<(SocketAddr, Source)> {
        let mut ready: Vec<(Instant, SocketAddr)> = self
            .known
            .iter()
            .filter(|(addr, candidate)| {
                let seed_for_a_seed = complete && candidate.seed;
                !candidate.busy && candidate.next_try <= now && !seed_for_a_seed && !connected(**addr)
            })
            .map(|(addr, candidate)| (candidate.next_try, *addr))
            .collect();
        ready.sort_unstable();
        ready.truncate(room);
        ready
            .into_iter()
            .filter_map(|(_, addr)| {
                let candidate = self.known.get_mut(&addr)?;
                candidate.busy = true;
                Some((addr, candidate.source))
            })
            .collect()
    }

    /// How many candidates could be dialled at `now` (not busy, their wait over): those a full connection table
    /// keeps waiting.
    #[must_use]
    pub fn waiting(&self, now: Instant) -> usize {
        self.known.values().filter(|candidate| !candidate.busy && candidate.next_try <= now).count()
    }

    /// A connection to `addr` was worth having (it carried pieces, or lasted): its failures are forgotten. One that
    /// merely got through the handshake is not enough, or a peer that hangs up on us at once would be dialled every
    /// 5 s for ever.
    pub fn connected(&mut self, addr: SocketAddr) {
        if let Some(candidate) = self.known.get_mut(&addr) {
            candidate.failures = 0;
        }
    }

    /// A dial of `addr` failed or its connection ended. It is tried again after a back-off that doubles with each
    /// failure in a row, 5 s for `--peer` addresses; an address from elsewhere that keeps failing is forgotten.
    pub fn ended(&mut self, addr: SocketAddr, now: Instant) {
        let Some(candidate) = self.known.get_mut(&addr) else { return };
        candidate.busy = false;
        candidate.failures = candidate.failures.saturating_add(1);
        if candidate.source != Source::Manual && candidate.failures >= MAX_FAILURES {
            if let Some(gone) = self.known.remove(&addr) {
                self.by_source.0[gone.source as usize] -= 1;
            }
            return;
        }
        let backoff = if candidate.source == Source::Manual {
            FIRST_BACKOFF
        } else {
            FIRST_BACKOFF.saturating_mul(1 << (candidate.failures - 1).min(16)).min(MAX_BACKOFF)
        };
        candidate.next_try = now + backoff;
    }

    /// How `addr` reached us, if it is a candidate.
    #[must_use]
    pub fn source(&self, addr: SocketAddr) -> Option<Source> {
        self.known.get(&addr).map(|candidate| candidate.source)
    }

    /// Candidates known.
    #[must_use]
    pub fn len(&self) -> usize {
        self.known.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_counts_count_each_source_and_list_them_in_order() {
        let counts: SourceCounts =
            [Source::Dht, Source::Tracker, Source::Dht, Source::Lsd, Source::Incoming].into_iter().collect();
        assert_eq!(counts.get(Source::Dht), 2);
        assert_eq!(counts.get(Source::Pex), 0);
        let listed: Vec<(&str, usize)> = counts.iter().map(|(source, count)| (source.name(), count)).collect();
        assert_eq!(listed, [("tracker", 1), ("dht", 2), ("pex", 0), ("lsd", 1), ("manual", 0), ("incoming", 1)],);
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    #[test]
    fn the_dht_and_lsd_cannot_crowd_out_what_the_trackers_name() {
        let now = Instant::now();
        let mut candidates = Candidates::default();
        let at = |n: u32| SocketAddr::from((std::net::Ipv4Addr::from(0x0a00_0000 + n), 6881));
        for n in 0..5000 {
            candidates.add(at(n), Source::Dht, now);
            candidates.add(at(100_000 + n), Source::Lsd, now);
            candidates.add(at(200_000 + n), Source::Pex, now);
        }
        assert_eq!(candidates.len(), MAX_DHT_CANDIDATES + MAX_LSD_CANDIDATES + MAX_PEX_CANDIDATES);
        for n in 0..200 {
            candidates.add(at(300_000 + n), Source::Tracker, now);
        }
        assert_eq!(candidates.len(), MAX_DHT_CANDIDATES + MAX_LSD_CANDIDATES + MAX_PEX_CANDIDATES + 200);
        // A forgotten DHT address makes room for another from the DHT.
        for _ in 0..MAX_FAILURES {
            candidates.ended(at(0), now);
        }
        assert_eq!(candidates.source(at(0)), None);
        candidates.add(at(9999), Source::Dht, now);
        assert_eq!(candidates.source(at(9999)), Some(Source::Dht));
    }

    #[test]
    fn an_address_from_two_sources_is_dialled_once() {
        let now = Instant::now();
        let mut candidates = Candidates::default();
        candidates.add(addr(1), Source::Tracker, now);
        candidates.add(addr(1), Source::Tracker, now);
        candidates.add(addr(1), Source::Manual, now);
        assert_eq!(candidates.due(now, 10, false, |_| false), [(addr(1), Source::Manual)]);
        assert!(candidates.due(now, 10, false, |_| false).is_empty(), "busy until it ends");
    }

    #[test]
    fn failures_back_off_exponentially_and_persistent_ones_are_forgotten() {
        let start = Instant::now();
        let mut candidates = Candidates::default();
        candidates.add(addr(1), Source::Tracker, start);
        let mut now = start;
        let mut waits = Vec::new();
        for _ in 0..MAX_FAILURES {
            assert_eq!(candidates.due(now, 1, false, |_| false).len(), 1);
            candidates.ended(addr(1), now);
            let Some(next) = candidates.known.get(&addr(1)).map(|c| c.next_try) else { break };
            waits.push(next - now);
            assert!(candidates.due(now, 1, false, |_| false).is_empty(), "not before its back-off");
            now = next;
        }
        assert_eq!(waits[..3], [Duration::from_secs(5), Duration::from_secs(10), Duration::from_secs(20)]);
        assert!(candidates.is_empty(), "forgotten after {MAX_FAILURES} failures in a row");
    }

    #[test]
    fn a_manual_peer_is_retried_every_five_seconds_for_ever() {
        let start = Instant::now();
        let mut candidates = Candidates::default();
        candidates.add(addr(1), Source::Manual, start);
        let mut now = start;
        for _ in 0..20 {
            assert_eq!(candidates.due(now, 1, false, |_| false).len(), 1);
            candidates.ended(addr(1), now);
            now += FIRST_BACKOFF;
        }
        assert_eq!(candidates.len(), 1);
    }

    #[test]
    fn a_peer_already_connected_is_not_dialled_until_that_connection_ends() {
        let now = Instant::now();
        let mut candidates = Candidates::default();
        candidates.add(addr(1), Source::Tracker, now);
        candidates.add(addr(2), Source::Tracker, now);
        assert_eq!(candidates.due(now, 10, false, |dialled| dialled == addr(1)), [(addr(2), Source::Tracker)]);
        assert_eq!(candidates.due(now, 10, false, |_| false), [(addr(1), Source::Tracker)], "dialled once it left");
    }

    #[test]
    fn a_known_seed_is_not_dialled_while_we_are_complete() {
        let now = Instant::now();
        let mut candidates = Candidates::default();
        candidates.add(addr(1), Source::Pex, now);
        candidates.add(addr(2), Source::Tracker, now);
        candidates.mark_seed(addr(1));
        candidates.mark_seed(addr(3));
        assert_eq!(candidates.due(now, 10, true, |_| false), [(addr(2), Source::Tracker)]);
        candidates.ended(addr(2), now);
        assert!(candidates.due(now + MAX_BACKOFF, 10, true, |_| false).iter().all(|(dialled, _)| *dialled != addr(1)));
        assert!(
            candidates.due(now + MAX_BACKOFF, 10, false, |_| false).contains(&(addr(1), Source::Pex)),
            "a leecher dials it"
        );
        assert_eq!(candidates.len(), 2, "marking an unknown address adds nothing");
    }

    #[test]
    fn a_connection_clears_the_failures() {
        let now = Instant::now();
        let mut candidates = Candidates::default();
        candidates.add(addr(1), Source::Tracker, now);
        candidates.due(now, 1, false, |_| false);
        candidates.ended(addr(1), now);
        candidates.due(now + MAX_BACKOFF, 1, false, |_| false);
        candidates.connected(addr(1));
        candidates.ended(addr(1), now);
        assert_eq!(candidates.known[&addr(1)].next_try, now + FIRST_BACKOFF);
    }

    #[test]
    fn the_table_is_bounded_except_for_manual_peers() {
        let now = Instant::now();
        let mut candidates = Candidates::default();
        for port in 0..(MAX_CANDIDATES as u16 + 100) {
            candidates.add(addr(port), Source::Tracker, now);
        }
        assert_eq!(candidates.len(), MAX_CANDIDATES);
        candidates.add(addr(60_000), Source::Manual, now);
        assert_eq!(candidates.len(), MAX_CANDIDATES + 1);
        assert_eq!(candidates.due(now, 7, false, |_| false).len(), 7, "at most the room asked for");
    }
}
