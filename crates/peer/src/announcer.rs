//! Announcing to one tier of trackers (BEP 12) for the whole session: the tier's trackers are shuffled once, used
//! one at a time in that order, and the one that answers moves to the front. Every tier is announced to at once
//! (as Transmission does), so UDP and HTTP trackers mix freely within and across tiers.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use rand::seq::SliceRandom;
use tracing::Instrument;
use tracker_protocol::AnnounceEvent;

use crate::events::Event;
use crate::sources::Source;
use crate::swarm::Swarm;
use crate::tracker_client::{Announce, Timeouts};
use crate::trackers::AnnounceClient;

/// Longest wait for the trackers' first answers before a complete torrent says it is seeding.
pub(crate) const SEEDING_NOTICE_WAIT: Duration = Duration::from_secs(5);
/// Longest a torrent's goodbyes to its trackers (`completed`, `stopped`) hold up its end: a dead tracker is not
/// waited for.
pub(crate) const GOODBYE_WAIT: Duration = Duration::from_secs(5);
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

/// What the announcers of a torrent share: the [`Event::Seeding`] notice, said once, when the data is complete
/// and the trackers have heard of us; and how many of them are announcing right now (a torrent dozes only when
/// none is).
#[derive(Debug, Default)]
pub(crate) struct TierShared {
    pub(crate) first_announces_left: AtomicUsize,
    reported: AtomicBool,
    /// Announcers between the end of a wait and the start of the next.
    busy: AtomicUsize,
}

impl TierShared {
    pub(crate) fn new(tiers: usize) -> Self {
        Self {
            first_announces_left: AtomicUsize::new(tiers),
            reported: AtomicBool::new(false),
            busy: AtomicUsize::new(0),
        }
    }

    /// For a torrent waking from a doze: its first announces and its seeding notice are behind it.
    pub(crate) fn woken() -> Self {
        Self { first_announces_left: AtomicUsize::new(0), reported: AtomicBool::new(true), busy: AtomicUsize::new(0) }
    }

    pub(crate) fn report(&self, swarm: &Swarm) {
        if swarm.is_finished() && !self.reported.swap(true, Ordering::AcqRel) {
            let _ = swarm.events.send(Event::Seeding);
        }
    }

    /// Whether the seeding notice was said.
    pub(crate) fn reported(&self) -> bool {
        self.reported.load(Ordering::Acquire)
    }

    /// Whether some announcer is announcing now.
    pub(crate) fn busy(&self) -> bool {
        self.busy.load(Ordering::Acquire) > 0
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
    pub(crate) shared: Arc<TierShared>,
    /// A tracker of the tier told `started` already (while the magnet link's metadata was fetched), with the key
    /// sent: it is asked first, and the announces go on from there.
    pub(crate) started: Option<(String, u32)>,
    /// Where the tier stood when its torrent dozed off: it goes on from there.
    pub(crate) woken: Option<TierState>,
}

/// Where the announces of a tier stand, carried from one tracker of the tier to the next.
#[derive(Debug, Clone)]
struct Progress {
    key: u32,
    event: AnnounceEvent,
    completed_owed: bool,
    /// The tier's first announce is not over yet (see [`TierShared`]).
    first: bool,
    /// After a failed announce: 30 s, or the tracker's interval once it has given one.
    retry_after: Duration,
}

/// A tier's announces while its torrent dozes: its trackers in their order, the last one that answered, and when
/// the next announce is due.
#[derive(Debug, Clone)]
pub(crate) struct TierState {
    tier: Vec<String>,
    progress: Progress,
    /// The tracker announced to last, if it answered: the goodbye goes to it.
    current: Option<String>,
    index: usize,
    pub(crate) due: tokio::time::Instant,
}

/// What one announce of a dozing torrent's tier came to.
pub(crate) struct DozingAnswer {
    pub(crate) url: String,
    /// Peers, seeders, leechers; or why not.
    pub(crate) result: Result<(usize, u32, u32), String>,
    /// The peers it named, ourselves left out.
    pub(crate) peers: Vec<std::net::SocketAddr>,
}

impl TierState {
    /// A tier that has announced nothing yet (for a torrent that starts dozing): its `started` is due now.
    pub(crate) fn fresh(mut tier: Vec<String>, complete: bool) -> TierState {
        tier.shuffle(&mut rand::rng());
        TierState {
            tier,
            progress: Progress {
                key: rand::random(),
                event: AnnounceEvent::Started,
                completed_owed: !complete,
                first: true,
                retry_after: Duration::from_secs(30),
            },
            current: None,
            index: 0,
            due: tokio::time::Instant::now(),
        }
    }

    /// Its first announce is over (answered or failed through the whole tier).
    pub(crate) fn first_done(&self) -> bool {
        !self.progress.first
    }

    /// One announce of a dozing torrent (no swarm: `base` carries its numbers): to the tracker that answered
    /// last, or the next of the tier; then when the next is due, as a running tier would.
    pub(crate) async fn announce_dozing(
        &mut self,
        base: &Announce,
        trackers: &crate::trackers::TrackerEndpoints,
        timeouts: Timeouts,
        local_ip: Option<IpAddr>,
    ) -> DozingAnswer {
        // Looked at, not taken: an announce cut short (the doze ended) leaves the tier as it was.
        let url = self.current.clone().unwrap_or_else(|| self.tier[self.index % self.tier.len()].clone());
        // A dozing torrent announces one tracker at a time: a silent one is left within minutes (BEP 15's climb
        // to an hour would hold its other duties up), and tried again a retry later.
        let timeouts = Timeouts::bounded(timeouts.base, timeouts.base.saturating_mul(4));
        let mut announce = base.clone();
        announce.event = self.progress.event;
        announce.key = self.progress.key;
        let reply = match AnnounceClient::new(&url, trackers, timeouts).await {
            Ok(mut client) => client.announce(&announce).await.map_err(|err| err.to_string()),
            Err(err) => Err(err.to_string()),
        };
        let now = tokio::time::Instant::now();
        match reply {
            Ok(reply) => {
                self.progress.event = AnnounceEvent::None;
                self.progress.first = false;
                let interval = Duration::from_secs(u64::from(reply.interval.clamp(5, 3600)));
                self.progress.retry_after = interval.min(Duration::from_secs(30));
                if let Some(position) = self.tier.iter().position(|known| *known == url) {
                    // It answered: to the front of its tier (BEP 12).
                    let answered = self.tier.remove(position);
                    self.tier.insert(0, answered);
                }
                self.index = 0;
                self.current = Some(url.clone());
                self.due = now + interval;
                let peers =
                    reply.peers.iter().copied().filter(|addr| !is_own_address(*addr, base.port, local_ip)).collect();
                DozingAnswer { url, result: Ok((reply.peers.len(), reply.seeders, reply.leechers)), peers }
            }
            Err(error) => {
                self.current = None;
                let position = self.tier.iter().position(|known| *known == url).unwrap_or(0);
                self.index = (position + 1) % self.tier.len();
                // The next tracker of the tier now; after a whole round of failures, a wait.
                self.due = if self.index == 0 || self.tier.len() == 1 {
                    self.progress.first = false;
                    now + self.progress.retry_after
                } else {
                    now
                };
                DozingAnswer { url, result: Err(error), peers: Vec::new() }
            }
        }
    }

    /// Whether this is where `tier` (the torrent's tier, in its own order) stood.
    pub(crate) fn covers(&self, tier: &[String]) -> bool {
        self.tier.len() == tier.len() && tier.iter().all(|url| self.tier.contains(url))
    }
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
    /// The tracker that answered before a doze, until a client for it is made again: the goodbye goes to it.
    answered: Option<String>,
}

impl Announcer {
    /// Announces until the torrent's swarm closes, then says goodbye (bounded); or, when the torrent dozes off
    /// instead, returns where the tier stands. Each step (a client made, an announce and its answer) runs in a
    /// future of its own on the heap: between announces, most of a torrent's life, its task holds only its wait.
    pub(crate) async fn run(mut self: Box<Self>) -> Option<TierState> {
        let mut progress = Progress {
            key: rand::random(),
            event: AnnounceEvent::Started,
            completed_owed: !self.started_complete,
            first: true,
            retry_after: Duration::from_secs(30),
        };
        let (mut index, mut due, mut answered) = (0, None, None);
        match self.woken.take() {
            Some(woken) => {
                self.tier = woken.tier;
                progress = woken.progress;
                index = woken
                    .current
                    .as_ref()
                    .and_then(|url| self.tier.iter().position(|known| known == url))
                    .unwrap_or(woken.index);
                due = Some(woken.due);
                answered = woken.current;
            }
            None => self.tier.shuffle(&mut rand::rng()),
        }
        if let Some((url, key)) = self.started.take() {
            self.answered(&url);
            progress.key = key;
            progress.event = AnnounceEvent::None;
        }
        let mut run = Box::new(TierRun { announcer: *self, progress, current: None, index, answered });
        loop {
            if let Some(at) = due.take() {
                let swarm = &run.announcer.swarm;
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = swarm.until_closed() => {
                        if swarm.is_dozing() {
                            return Some(run.state(at));
                        }
                        break;
                    }
                }
            }
            let shared = run.announcer.shared.clone();
            shared.busy.fetch_add(1, Ordering::AcqRel);
            let next = Box::pin(run.step()).await;
            shared.busy.fetch_sub(1, Ordering::AcqRel);
            match next {
                Next::Wait { wait, until_complete } => {
                    let swarm = &run.announcer.swarm;
                    let changed = swarm.changed.notified();
                    tokio::pin!(changed);
                    // Registered before the check below, so a completion in between still wakes us.
                    changed.as_mut().enable();
                    let wait = if until_complete && swarm.is_complete() { Duration::ZERO } else { wait };
                    let at = tokio::time::Instant::now() + wait;
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = changed, if until_complete => {}
                        () = swarm.until_closed() => {
                            if swarm.is_dozing() {
                                return Some(run.state(at));
                            }
                            break;
                        }
                    }
                }
                Next::Again => {}
                Next::Closed if run.announcer.swarm.is_dozing() => {
                    // Cut short by the doze (rare: a torrent dozes while no announce is under way): announce on
                    // waking.
                    return Some(run.state(tokio::time::Instant::now()));
                }
                Next::Closed => break,
            }
        }
        Box::pin(run.goodbye()).await;
        None
    }
}

/// Says goodbye (`stopped`) to the tracker each of `tiers` announced to last, for a torrent stopped while it
/// dozed; bounded as [`TierRun::goodbye`] is.
pub(crate) async fn goodbye_from(
    tiers: Vec<TierState>,
    announce: Announce,
    trackers: &Arc<crate::trackers::TrackerEndpoints>,
) {
    let mut goodbyes = tokio::task::JoinSet::new();
    for tier in tiers {
        let Some(url) = tier.current else { continue };
        let (trackers, mut announce) = (trackers.clone(), announce.clone());
        announce.key = tier.progress.key;
        goodbyes.spawn(
            async move {
                let timeouts = Timeouts { base: Duration::from_secs(1), max_attempts: 2 };
                if let Ok(mut client) = AnnounceClient::new(&url, &trackers, timeouts).await {
                    let _ = client.announce(&announce).await;
                }
            }
            .in_current_span(),
        );
    }
    while goodbyes.join_next().await.is_some() {}
}

impl TierRun {
    /// Where the tier stands, its next announce due `at`.
    fn state(&self, due: tokio::time::Instant) -> TierState {
        TierState {
            tier: self.announcer.tier.clone(),
            progress: self.progress.clone(),
            current: self.current.as_ref().map(|(url, _)| url.clone()).or_else(|| self.answered.clone()),
            index: self.index,
            due,
        }
    }

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
        let goodbye_timeouts = Timeouts { base: Duration::from_secs(1), max_attempts: 2 };
        if self.current.is_none()
            && let Some(url) = self.answered.take()
            && let Ok(client) = AnnounceClient::new(&url, &self.announcer.trackers, goodbye_timeouts).await
        {
            // Woken from a doze and stopped before its next announce: the tracker it told last hears it.
            self.current = Some((url, client));
        }
        if let Some((_, mut client)) = self.current.take() {
            let progress = &self.progress;
            client.set_timeouts(goodbye_timeouts);
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
        // A tier woken from a doze may still owe its first answer; the count is 0 then, and stays so.
        let left = self
            .shared
            .first_announces_left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| left.checked_sub(1));
        if left == Ok(1) {
            self.shared.report(&self.swarm);
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
