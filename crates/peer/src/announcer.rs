//! Announcing to one tier of trackers (BEP 12) for the whole session: the tier's trackers are shuffled once, used
//! one at a time in that order, and the one that answers moves to the front. Every tier is announced to at once
//! (as Transmission does), so UDP and HTTP trackers mix freely within and across tiers.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use rand::seq::SliceRandom;
use tracker_protocol::AnnounceEvent;

use crate::events::Event;
use crate::sources::Source;
use crate::swarm::Swarm;
use crate::tracker_client::{Announce, Timeouts};
use crate::trackers::AnnounceClient;

/// Longest wait for the trackers' first answers before a complete torrent says it is seeding.
pub(crate) const SEEDING_NOTICE_WAIT: Duration = Duration::from_secs(5);
/// Wait after every tracker of a tier failed to even start (a name that does not resolve, say).
const TIER_RETRY: Duration = Duration::from_secs(60);

/// What a tracker's answer at `url` tells the program.
pub(crate) fn announced(url: &str, reply: &crate::tracker_client::AnnounceReply) -> Event {
    Event::Announced {
        tracker: url.to_owned(),
        peers: reply.peers.len(),
        seeders: reply.seeders,
        leechers: reply.leechers,
    }
}

/// Whether a peer a tracker names is us: our port, on our local IP (or, listening on every address, a loopback or
/// unspecified one).
pub(crate) fn is_own_address(addr: std::net::SocketAddr, port: u16, local_ip: Option<IpAddr>) -> bool {
    addr.port() == port && local_ip.map_or(addr.ip().is_loopback() || addr.ip().is_unspecified(), |ip| ip == addr.ip())
}

/// The tiers of `torrent` (BEP 12: `announce-list` replaces `announce`), each tracker once, unsupported schemes
/// left out with a warning, empty tiers dropped.
pub(crate) fn tiers(torrent: &metainfo::Torrent) -> Vec<Vec<String>> {
    let listed = if torrent.announce_list.is_empty() {
        torrent.announce.iter().map(|url| vec![url.clone()]).collect()
    } else {
        torrent.announce_list.clone()
    };
    let mut seen = std::collections::HashSet::new();
    listed
        .into_iter()
        .map(|tier| {
            tier.into_iter()
                .filter(|url| {
                    if !AnnounceClient::supports(url) {
                        tracing::warn!(
                            "skipping tracker {url}: only udp://, http:// and https:// trackers are supported"
                        );
                        return false;
                    }
                    seen.insert(url.clone())
                })
                .collect::<Vec<_>>()
        })
        .filter(|tier| !tier.is_empty())
        .collect()
}

/// Reports [`Event::Seeding`] once: when the data is complete and the trackers have heard of us.
#[derive(Debug, Default)]
pub(crate) struct SeedingNotice {
    pub(crate) first_announces_left: AtomicUsize,
    reported: AtomicBool,
}

impl SeedingNotice {
    pub(crate) fn new(tiers: usize) -> Self {
        Self { first_announces_left: AtomicUsize::new(tiers), reported: AtomicBool::new(false) }
    }

    pub(crate) fn report(&self, swarm: &Swarm) {
        if swarm.is_finished() && !self.reported.swap(true, Ordering::AcqRel) {
            let _ = swarm.events.send(Event::Seeding);
        }
    }
}

/// Announces to one tier for the whole session.
pub(crate) struct Announcer {
    pub(crate) swarm: Arc<Swarm>,
    pub(crate) tier: Vec<String>,
    pub(crate) port: u16,
    pub(crate) local_ip: Option<IpAddr>,
    /// The session's tracker sockets and HTTP client.
    pub(crate) trackers: Arc<crate::trackers::TrackerEndpoints>,
    pub(crate) timeouts: Timeouts,
    pub(crate) started_complete: bool,
    pub(crate) seeding: Arc<SeedingNotice>,
    /// A tracker of the tier told `started` already (while the magnet link's metadata was fetched), with the key
    /// sent: it is asked first, and the announces go on from there.
    pub(crate) started: Option<(String, u32)>,
}

/// Where the announces of a tier stand, carried from one tracker of the tier to the next.
struct Progress {
    key: u32,
    event: AnnounceEvent,
    completed_owed: bool,
    /// The tier's first announce is not over yet (see [`SeedingNotice`]).
    first: bool,
    /// After a failed announce: 30 s, or the tracker's interval once it has given one.
    retry_after: Duration,
}

/// What a tier's announcer does after one step.
enum Next {
    /// Wait this long (and no longer than the torrent's completion, when `completed` is owed), then step again.
    Wait { wait: Duration, until_complete: bool },
    /// Step again now: the next tracker of the tier.
    Again,
    /// The torrent is closing.
    Closed,
}

/// A tier's announcer between two steps, on the heap: its task keeps only a pointer and its wait.
struct TierRun {
    announcer: Announcer,
    progress: Progress,
    /// The tracker of the tier being announced to, and its client, while it answers.
    current: Option<(String, AnnounceClient)>,
    /// The tracker to try next when there is no current one.
    index: usize,
}

impl Announcer {
    /// Announces until the torrent's swarm closes, then says goodbye (bounded). Each step (a client made, an
    /// announce and its answer) runs in a future of its own on the heap: between announces, most of a
    /// torrent's life, its task holds only its wait.
    pub(crate) async fn run(mut self: Box<Self>) {
        self.tier.shuffle(&mut rand::rng());
        let mut progress = Progress {
            key: rand::random(),
            event: AnnounceEvent::Started,
            completed_owed: !self.started_complete,
            first: true,
            retry_after: Duration::from_secs(30),
        };
        if let Some((url, key)) = self.started.take() {
            self.answered(&url);
            progress.key = key;
            progress.event = AnnounceEvent::None;
        }
        let mut run = Box::new(TierRun { announcer: *self, progress, current: None, index: 0 });
        loop {
            match Box::pin(run.step()).await {
                Next::Wait { wait, until_complete } => {
                    let swarm = &run.announcer.swarm;
                    let changed = swarm.changed.notified();
                    tokio::pin!(changed);
                    // Registered before the check below, so a completion in between still wakes us.
                    changed.as_mut().enable();
                    let wait = if until_complete && swarm.is_complete() { Duration::ZERO } else { wait };
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = changed, if until_complete => {}
                        () = swarm.until_closed() => break,
                    }
                }
                Next::Again => {}
                Next::Closed => break,
            }
        }
        Box::pin(run.goodbye()).await;
    }
}

impl TierRun {
    /// One step: a client for the tracker whose turn it is, if there is none, then one announce to it.
    async fn step(&mut self) -> Next {
        let swarm = self.announcer.swarm.clone();
        let (url, mut client) = match self.current.take() {
            Some(current) => current,
            None => {
                let url = self.announcer.tier[self.index].clone();
                let base = self.announcer.timeouts;
                // With others to fall back on, a silent tracker is left after a few attempts, not BEP 15's two
                // hours.
                let timeouts = if self.announcer.tier.len() > 1 {
                    Timeouts::bounded(base.base, base.base.saturating_mul(4))
                } else {
                    base
                };
                match AnnounceClient::new(&url, &self.announcer.trackers, timeouts).await {
                    Ok(client) => (url, client),
                    Err(err) => {
                        self.announcer.failed(&url, &err.to_string());
                        return self.next_tracker(&url, TIER_RETRY);
                    }
                }
            }
        };
        let progress = &mut self.progress;
        if progress.completed_owed && swarm.is_complete() && progress.event == AnnounceEvent::None {
            progress.event = AnnounceEvent::Completed;
        }
        let event = progress.event;
        let announce = self.announcer.announce(event, progress.key);
        // A `completed` in flight is not cut short by the stop: the goodbye would send it a second time, and
        // the tracker would count the download twice. The session waits a few seconds at most anyway.
        let interruptible = event != AnnounceEvent::Completed;
        let reply = tokio::select! {
            reply = client.announce(&announce) => reply,
            () = swarm.until_closed(), if interruptible => {
                self.current = Some((url, client));
                return Next::Closed;
            }
        };
        let wait = match reply {
            Ok(reply) => {
                let progress = &mut self.progress;
                if event == AnnounceEvent::Completed {
                    progress.completed_owed = false;
                }
                progress.event = AnnounceEvent::None;
                self.announcer.answered(&url);
                // It answered: from now on a silence is a restart or an outage, to be noticed within one
                // interval, not after BEP 15's climb to an hour per attempt.
                let interval = Duration::from_secs(u64::from(reply.interval.clamp(5, 3600)));
                let base = self.announcer.timeouts.base;
                client.set_timeouts(Timeouts::bounded(base, interval.max(base)));
                progress.retry_after = interval.min(Duration::from_secs(30));
                swarm.record_announce(&url, Ok((reply.peers.len(), reply.seeders, reply.leechers)));
                let _ = swarm.events.send(announced(&url, &reply));
                for addr in reply.peers {
                    if !is_own_address(addr, self.announcer.port, self.announcer.local_ip) {
                        swarm.add_candidate(addr, Source::Tracker);
                    }
                }
                if self.progress.completed_owed && swarm.is_complete() {
                    // Finished while this announce was out: say so now, not an interval later.
                    Duration::ZERO
                } else {
                    interval
                }
            }
            Err(err) => {
                self.announcer.failed(&url, &err.to_string());
                if self.announcer.tier.len() > 1 {
                    let retry_after = self.progress.retry_after;
                    return self.next_tracker(&url, retry_after);
                }
                self.progress.retry_after
            }
        };
        self.current = Some((url, client));
        if swarm.is_closed() {
            return Next::Closed;
        }
        if self.progress.first {
            self.progress.first = false;
            self.announcer.first_done();
        }
        Next::Wait { wait, until_complete: self.progress.completed_owed }
    }

    /// `url` failed: the next tracker of the tier is tried now, or, when every one failed in turn, after `wait`.
    fn next_tracker(&mut self, url: &str, wait: Duration) -> Next {
        let tier = &self.announcer.tier;
        // It may have moved to the front when it answered: go on from where it stands now.
        let index = tier.iter().position(|known| known == url).unwrap_or(0);
        self.index = (index + 1) % tier.len();
        if self.index == 0 {
            // Every tracker of the tier failed in turn: wait before the next round.
            if self.progress.first {
                self.progress.first = false;
                self.announcer.first_done();
            }
            Next::Wait { wait, until_complete: false }
        } else if self.announcer.swarm.is_closed() {
            Next::Closed
        } else {
            Next::Again
        }
    }

    /// Leaving: a short, bounded goodbye to the tracker announced to last (`completed` first if still owed,
    /// then `stopped`), so Ctrl-C is never held up by a dead tracker.
    async fn goodbye(&mut self) {
        if let Some((_, mut client)) = self.current.take() {
            let progress = &self.progress;
            client.set_timeouts(Timeouts { base: Duration::from_secs(1), max_attempts: 2 });
            if progress.completed_owed && self.announcer.swarm.is_complete() {
                let _ = client.announce(&self.announcer.announce(AnnounceEvent::Completed, progress.key)).await;
            }
            let _ = client.announce(&self.announcer.announce(AnnounceEvent::Stopped, progress.key)).await;
        }
        if self.progress.first {
            self.announcer.first_done();
        }
    }
}

impl Announcer {
    /// `url` answered: it goes to the front of its tier (BEP 12).
    fn answered(&mut self, url: &str) {
        if let Some(position) = self.tier.iter().position(|known| known == url)
            && position > 0
        {
            let url = self.tier.remove(position);
            self.tier.insert(0, url);
        }
    }

    fn announce(&self, event: AnnounceEvent, key: u32) -> Announce {
        let (downloaded, uploaded, left) = self.swarm.progress();
        Announce {
            info_hash: self.swarm.info_hash,
            peer_id: self.swarm.peer_id,
            downloaded,
            left,
            uploaded,
            event,
            key,
            num_want: if event == AnnounceEvent::Stopped { 0 } else { 50 },
            port: self.port,
        }
    }

    fn failed(&self, url: &str, error: &str) {
        self.swarm.record_announce(url, Err(error.to_owned()));
        let _ = self.swarm.events.send(Event::AnnounceFailed { tracker: url.to_owned(), error: error.to_owned() });
    }

    /// The first announce of this tier is over; once all are, a complete torrent is ready to serve.
    fn first_done(&self) {
        if self.seeding.first_announces_left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.seeding.report(&self.swarm);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tracker_naming_us_is_not_taken_for_a_peer() {
        let at = |text: &str| text.parse::<std::net::SocketAddr>().expect("an address");
        // Listening on every address: our port on loopback is us, on another host it is a peer.
        assert!(is_own_address(at("127.0.0.1:6881"), 6881, None));
        assert!(!is_own_address(at("127.0.0.1:6882"), 6881, None));
        assert!(!is_own_address(at("10.0.0.5:6881"), 6881, None));
        // Bound to one address: only that one is us.
        let local = Some("10.0.0.5".parse().expect("an IP"));
        assert!(is_own_address(at("10.0.0.5:6881"), 6881, local));
        assert!(!is_own_address(at("127.0.0.1:6881"), 6881, local));
    }
}
