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

/// What the announces to one tracker came to.
enum Outcome {
    /// The session is stopping; the goodbye was said.
    Stopped,
    /// This tracker failed: the next one of the tier is tried.
    Failed,
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

impl Announcer {
    /// Announces until the torrent's swarm closes, then says goodbye (bounded).
    pub(crate) async fn run(mut self) {
        let swarm = self.swarm.clone();
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
        let mut index = 0;
        loop {
            let url = self.tier[index].clone();
            // With others to fall back on, a silent tracker is left after a few attempts, not BEP 15's two hours.
            let timeouts = if self.tier.len() > 1 {
                Timeouts::bounded(self.timeouts.base, self.timeouts.base.saturating_mul(4))
            } else {
                self.timeouts
            };
            let started = match Box::pin(AnnounceClient::new(&url, &self.trackers, timeouts)).await {
                Ok(client) => Some(client),
                Err(err) => {
                    self.failed(&url, &err.to_string());
                    None
                }
            };
            let mut wait = TIER_RETRY;
            if let Some(client) = started {
                if let Outcome::Stopped = self.announce_to(&url, client, &mut progress).await {
                    break;
                }
                wait = progress.retry_after;
            }
            // It may have moved to the front when it answered: go on from where it stands now.
            index = self.tier.iter().position(|known| *known == url).unwrap_or(0);
            index = (index + 1) % self.tier.len();
            if index == 0 {
                // Every tracker of the tier failed in turn: wait before the next round.
                if progress.first {
                    progress.first = false;
                    self.first_done();
                }
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = swarm.until_closed() => break,
                }
            } else if swarm.is_closed() {
                break;
            }
        }
        if progress.first {
            self.first_done();
        }
    }

    /// Announces to `url` until it fails or the session stops (then says goodbye to it).
    async fn announce_to(&mut self, url: &str, mut client: AnnounceClient, progress: &mut Progress) -> Outcome {
        let swarm = self.swarm.clone();
        loop {
            if progress.completed_owed && self.swarm.is_complete() && progress.event == AnnounceEvent::None {
                progress.event = AnnounceEvent::Completed;
            }
            let event = progress.event;
            let announce = self.announce(event, progress.key);
            // A `completed` in flight is not cut short by the stop: the goodbye would send it a second time, and
            // the tracker would count the download twice. The session waits a few seconds at most anyway.
            let interruptible = event != AnnounceEvent::Completed;
            // The request on the heap: between announces (most of a torrent's life) the announcer holds only
            // its own few fields.
            let wait = tokio::select! {
                reply = Box::pin(client.announce(&announce)) => match reply {
                    Ok(reply) => {
                        if event == AnnounceEvent::Completed {
                            progress.completed_owed = false;
                        }
                        progress.event = AnnounceEvent::None;
                        self.answered(url);
                        // It answered: from now on a silence is a restart or an outage, to be noticed within one
                        // interval, not after BEP 15's climb to an hour per attempt.
                        let interval = Duration::from_secs(u64::from(reply.interval.clamp(5, 3600)));
                        client.set_timeouts(Timeouts::bounded(self.timeouts.base, interval.max(self.timeouts.base)));
                        progress.retry_after = interval.min(Duration::from_secs(30));
                        self.swarm.record_announce(url, Ok((reply.peers.len(), reply.seeders, reply.leechers)));
                        let _ = self.swarm.events.send(Event::Announced {
                            tracker: url.to_owned(),
                            peers: reply.peers.len(),
                            seeders: reply.seeders,
                            leechers: reply.leechers,
                        });
                        for addr in reply.peers {
                            if !(addr.port() == self.port && self.is_own_ip(addr.ip())) {
                                self.swarm.add_candidate(addr, Source::Tracker);
                            }
                        }
                        if progress.completed_owed && self.swarm.is_complete() {
                            // Finished while this announce was out: say so now, not an interval later.
                            Duration::ZERO
                        } else {
                            interval
                        }
                    }
                    Err(err) => {
                        self.failed(url, &err.to_string());
                        if self.tier.len() > 1 {
                            return Outcome::Failed;
                        }
                        progress.retry_after
                    }
                },
                () = swarm.until_closed(), if interruptible => break,
            };
            if swarm.is_closed() {
                break;
            }
            if progress.first {
                progress.first = false;
                self.first_done();
            }
            let changed = self.swarm.changed.notified();
            tokio::pin!(changed);
            // Registered before the check below, so a completion in between still wakes us.
            changed.as_mut().enable();
            let wait = if progress.completed_owed && self.swarm.is_complete() { Duration::ZERO } else { wait };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = changed, if progress.completed_owed => {}
                () = swarm.until_closed() => break,
            }
        }
        // Leaving: a short, bounded goodbye, so Ctrl-C is never held up by a dead tracker.
        client.set_timeouts(Timeouts { base: Duration::from_secs(1), max_attempts: 2 });
        if progress.completed_owed && self.swarm.is_complete() {
            let _ = Box::pin(client.announce(&self.announce(AnnounceEvent::Completed, progress.key))).await;
        }
        let _ = Box::pin(client.announce(&self.announce(AnnounceEvent::Stopped, progress.key))).await;
        Outcome::Stopped
    }

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

    fn is_own_ip(&self, ip: IpAddr) -> bool {
        match self.local_ip {
            Some(local) => local == ip,
            None => ip.is_loopback() || ip.is_unspecified(),
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
