//! A swarm in the simulated network: one seeder and N leechers of one torrent, each our real peer
//! ([`peer::simulated::SimulatedPeer`]), measured against the lower bound on the time any schedule could take.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peer::simulated::{SimulatedPeer, SimulatedPeerConfig};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::net::{Link, Network};

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The port every simulated peer listens on.
pub const PORT: u16 = 6881;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SwarmSetup {
    pub leechers: usize,
    /// The torrent's size in bytes, and its piece length.
    pub size: u64,
    pub piece_length: u32,
    pub seeder: Link,
    /// The seeder's own upload limit (`--upload-limit`) in bytes per second, if any.
    pub seeder_limit: Option<u64>,
    /// Each leecher's link, by its index.
    pub leecher_links: Vec<Link>,
    pub super_seed: bool,
    /// Each peer's most connections.
    pub max_peers: usize,
    /// Peers each leecher is told of at the start, as a tracker's reply (the seeder among the candidates).
    pub numwant: usize,
    /// Seeds everything random: the peer lists, each peer's choices.
    pub seed: u64,
    /// Bytes in flight per stream ([`Network::new`]).
    pub window: usize,
    /// Gives up (in virtual time) after this long.
    pub limit: Duration,
    /// Samples the swarm each second ([`SwarmOutcome::timeline`]).
    pub timeline: bool,
    /// When each leecher joins, by its index (empty: all at the start). It is told of `numwant` peers among
    /// those there then, as a tracker would, and listens from then on.
    pub joins: Vec<Duration>,
    /// Leechers leave once they are done (churn): they hang up and stop listening.
    pub leave_when_done: bool,
    /// The seeder leaves once it has sent this many copies.
    pub seeder_leaves_after: Option<f64>,
    /// The leechers start new pieces in random order, not rarest first (the deliberately worse picker).
    pub random_pieces: bool,
    /// Leechers that lie, by index (from 0): every block they send is wrong.
    pub liars: Vec<usize>,
}

/// The swarm over one second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// The end of the second, from the start.
    pub at: Duration,
    /// Bytes the seeder and the leechers together sent in it.
    pub seeder_sent: u64,
    pub leechers_sent: u64,
    /// Leechers done by its end.
    pub finished: usize,
    /// How much of its uplink each leecher used in it, in percent: the tenth percentile and the median over the
    /// leechers present (`None` when their uplinks have no limit). A swarm whose leechers' uploads sum to less
    /// than their capacity shows here whether all are half idle or some are idle and the rest saturated.
    pub leecher_uplink_pct: Option<(u64, u64)>,
}

impl SwarmSetup {
    /// The lower bound for this swarm ([`lower_bound`]), the seeder's limit taken as its uplink where lower.
    #[must_use]
    pub fn bound(&self) -> Duration {
        let up = match (self.seeder.up, self.seeder_limit) {
            (Some(link), Some(limit)) => Some(link.min(limit)),
            (link, limit) => link.or(limit),
        };
        lower_bound(self.size, &Link { up, ..self.seeder }, &self.leecher_links)
    }
}

/// What one leecher did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeecherOutcome {
    /// When it joined, from the start.
    pub joined: Duration,
    /// When it had every piece, from the start; `None`: not within the limit.
    pub done: Option<Duration>,
    /// Bytes that came in from the seeder and from other leechers (every message, not only blocks).
    pub from_seeder: u64,
    pub from_leechers: u64,
    /// Block bytes it sent.
    pub uploaded: u64,
    /// Its connections at the end.
    pub connections: usize,
    /// It lied: every block it sent was wrong ([`SwarmSetup::liars`]).
    pub lies: bool,
    /// Pieces that failed its check, and the peers it banned for them (by index, 0 the seeder).
    pub pieces_failed: u64,
    pub banned: Vec<usize>,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct SwarmOutcome {
    /// Each leecher, by its index (from 0; its address is [`address`] of the index plus one).
    pub leechers: Vec<LeecherOutcome>,
    /// When each leecher had every piece, from the start; `None`: not within the limit.
    pub done: Vec<Option<Duration>>,
    /// The lower bound (Kumar and Ross): max(F/u_s, F/d_min, N·F/(u_s + Σu_i)).
    pub bound: Duration,
    /// Block bytes the seeder sent, and all the peers together.
    pub seeder_uploaded: u64,
    pub uploaded: u64,
    /// Block bytes that were sent but not needed: all the uploads less N copies.
    pub duplicate_bytes: u64,
    /// The torrent's size.
    pub size: u64,
    /// Each second's sample, if asked for.
    pub timeline: Vec<Sample>,
    /// Bytes (every message) each peer received from each, `pairs[receiver][sender]`, 0 the seeder; only for a
    /// swarm of at most [`crate::picture::MATRIX_MAX`] leechers, else empty.
    pub pairs: Vec<Vec<u64>>,
}

impl SwarmOutcome {
    /// When the last honest leecher was done, if all were (a liar's own download is not the swarm's).
    #[must_use]
    pub fn last_done(&self) -> Option<Duration> {
        let honest = self.done.iter().zip(&self.leechers).filter(|(_, leecher)| !leecher.lies);
        honest.map(|(done, _)| *done).collect::<Option<Vec<_>>>().and_then(|done| done.into_iter().max())
    }

    /// Copies of the torrent the seeder sent.
    #[must_use]
    pub fn seeder_copies(&self) -> f64 {
        self.seeder_uploaded as f64 / self.size as f64
    }
}

/// The lower bound on the time for `leechers` leechers to get `size` bytes from one seeder (Kumar and Ross,
/// "Peer-assisted file distribution: the minimum distribution time", 2006): the seeder must send every byte
/// once, the slowest downloader must take them all in, and all the bytes must go through the uplinks together.
#[must_use]
pub fn lower_bound(size: u64, seeder: &Link, leechers: &[Link]) -> Duration {
    let f = size as f64;
    let mut bound: f64 = 0.0;
    if let Some(up) = seeder.up {
        bound = bound.max(f / up as f64);
    }
    if let Some(down) = leechers.iter().filter_map(|link| link.down).min() {
        bound = bound.max(f / down as f64);
    }
    let ups: Option<u64> = std::iter::once(seeder.up).chain(leechers.iter().map(|link| link.up)).sum::<Option<u64>>();
    if let Some(total) = ups.filter(|&total| total > 0) {
        bound = bound.max(leechers.len() as f64 * f / total as f64);
    }
    Duration::from_secs_f64(bound)
}

/// A v1 torrent of `size` bytes in pieces of `piece_length`, whose piece hashes are zeros (a simulated
/// torrent's pieces are checked against its made-up content, not hashes).
///
/// # Errors
///
/// The sizes make no valid torrent.
pub fn torrent(size: u64, piece_length: u32) -> anyhow::Result<metainfo::Torrent> {
    let pieces = size.div_ceil(u64::from(piece_length.max(1)));
    // Each peer keeps per-piece state, a thousand peers at once: a million pieces is already far past real torrents.
    anyhow::ensure!(
        pieces <= 1 << 20,
        "{pieces} pieces of {piece_length} bytes: at most 1,048,576 (use longer pieces)"
    );
    let hashes = usize::try_from(pieces)? * 20;
    let mut info = format!("d6:lengthi{size}e4:name3:sim12:piece lengthi{piece_length}e6:pieces{hashes}:").into_bytes();
    info.resize(info.len() + hashes, 0);
    info.push(b'e');
    let mut bytes = b"d4:info".to_vec();
    bytes.extend_from_slice(&info);
    bytes.push(b'e');
    Ok(metainfo::Torrent::from_bytes(&bytes)?)
}

/// The address of peer `index` (0 the seeder).
#[must_use]
pub fn address(index: usize) -> SocketAddr {
    let index = u32::try_from(index).unwrap_or(u32::MAX);
    let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 1)) + index);
    SocketAddr::new(IpAddr::V4(ip), PORT)
}

/// The index of the peer at `addr` ([`address`]'s inverse).
fn index_of(addr: SocketAddr) -> Option<usize> {
    let IpAddr::V4(ip) = addr.ip() else { return None };
    let index = u32::from(ip).checked_sub(u32::from(Ipv4Addr::new(10, 0, 0, 1)))?;
    usize::try_from(index).ok()
}

/// Runs `setup` on a fresh single-threaded runtime whose clock is virtual.
///
/// # Errors
///
/// The runtime or the torrent cannot be made.
pub fn run(setup: &SwarmSetup) -> anyhow::Result<SwarmOutcome> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build()?;
    runtime.block_on(run_in_runtime(setup))
}

async fn run_in_runtime(setup: &SwarmSetup) -> anyhow::Result<SwarmOutcome> {
    let torrent = torrent(setup.size, setup.piece_length)?;
    let network = Network::new(setup.window);
    let mut rng = SmallRng::seed_from_u64(setup.seed);
    let content_seed = rng.random();
    let mut peers = Vec::with_capacity(setup.leechers + 1);
    let mut hosts = Vec::with_capacity(setup.leechers + 1);
    for index in 0..=setup.leechers {
        let addr = address(index);
        let link = if index == 0 { setup.seeder } else { setup.leecher_links[index - 1] };
        let host = network.add_host(addr.ip(), link);
        let mut peer_id = *b"-SM0001-000000000000";
        peer_id[8..].copy_from_slice(format!("{index:012}").as_bytes());
        let config = SimulatedPeerConfig {
            content_seed,
            seed: rng.random(),
            complete: index == 0,
            super_seed: index == 0 && setup.super_seed,
            max_peers: setup.max_peers,
            upload_limit: if index == 0 { setup.seeder_limit } else { None },
            listen: addr,
            peer_id,
            connector: network.connector(&host),
            random_pieces: setup.random_pieces,
            lies: index > 0 && setup.liars.contains(&(index - 1)),
        };
        peers.push(Arc::new(SimulatedPeer::new(&torrent, &config).map_err(anyhow::Error::msg)?));
        hosts.push(host);
    }

    // Those there from the start announced at once: each leecher hears of `numwant` others among them, the seeder
    // among the candidates. One who joins later hears of `numwant` among those there when it comes.
    let at_start = |index: usize| index == 0 || setup.joins.get(index - 1).is_none_or(Duration::is_zero);
    let mut told: Vec<Option<Vec<usize>>> = vec![None; setup.leechers + 1];
    let first: Vec<usize> = (0..=setup.leechers).filter(|&index| at_start(index)).collect();
    for index in first.iter().copied().skip(1) {
        let mut others: Vec<usize> = first.iter().copied().filter(|&other| other != index).collect();
        others.shuffle(&mut rng);
        others.truncate(setup.numwant);
        told[index] = Some(others);
    }

    let start = Instant::now();
    // Who is there now, as the tracker sees it: joined and not gone.
    let present = Arc::new(Mutex::new(vec![false; setup.leechers + 1]));
    let rng = Arc::new(Mutex::new(rng));
    let done = Arc::new(Mutex::new(vec![None; setup.leechers]));
    let mut finishing = tokio::task::JoinSet::new();
    for (index, peer) in peers.iter().enumerate() {
        let join = setup.joins.get(index.wrapping_sub(1)).copied().filter(|_| index > 0).unwrap_or_default();
        let (peer, host, network) = (peer.clone(), hosts[index].clone(), network.clone());
        let (present, rng, done) = (present.clone(), rng.clone(), done.clone());
        let (numwant, leave) = (setup.numwant, setup.leave_when_done && index > 0);
        let told = told[index].take();
        finishing.spawn(async move {
            tokio::time::sleep_until(start + join).await;
            let accepting = Arc::downgrade(&peer);
            network.listen(
                &host,
                PORT,
                Arc::new(move |stream, from| {
                    if let Some(peer) = accepting.upgrade() {
                        peer.accept(stream, from);
                    }
                }),
            );
            let others: Vec<usize> = {
                let mut present = lock(&present);
                present[index] = true;
                told.unwrap_or_else(|| {
                    let mut others: Vec<usize> =
                        (0..present.len()).filter(|&other| present[other] && other != index).collect();
                    others.shuffle(&mut *lock(&rng));
                    others.truncate(numwant);
                    others
                })
            };
            // The seeder waits for leechers to come.
            if index > 0 {
                for other in others {
                    peer.add_peer(address(other));
                }
            }
            let running = tokio::spawn({
                let peer = peer.clone();
                async move { peer.run().await }
            });
            if index == 0 {
                return;
            }
            peer.until_finished().await;
            lock(&done)[index - 1] = Some(start.elapsed());
            if leave {
                lock(&present)[index] = false;
                network.unlisten(&host);
                peer.close();
                let _ = running.await;
            }
        });
    }
    if let Some(copies) = setup.seeder_leaves_after {
        let (seeder, host, network, present) = (peers[0].clone(), hosts[0].clone(), network.clone(), present.clone());
        let enough = (copies * setup.size as f64) as u64;
        tokio::spawn(async move {
            while seeder.transferred().1 < enough {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            lock(&present)[0] = false;
            network.unlisten(&host);
            seeder.close();
        });
    }
    let timeline = Arc::new(Mutex::new(Vec::new()));
    if setup.timeline {
        let (hosts, peers, timeline, present) = (hosts.clone(), peers.clone(), timeline.clone(), present.clone());
        tokio::spawn(async move {
            let mut last: Vec<u64> = hosts.iter().map(|host| host.traffic().0).collect();
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let sent: Vec<u64> = hosts.iter().map(|host| host.traffic().0).collect();
                let seeder_sent = sent[0] - last[0];
                let leechers_sent = sent.iter().zip(&last).skip(1).map(|(now, before)| now - before).sum();
                let mut uses: Vec<u64> = hosts
                    .iter()
                    .zip(sent.iter().zip(&last))
                    .enumerate()
                    .skip(1)
                    .filter(|(index, _)| lock(&present)[*index])
                    .filter_map(|(_, (host, (now, before)))| Some((now - before) * 100 / host.link().up?.max(1)))
                    .collect();
                uses.sort_unstable();
                let leecher_uplink_pct =
                    (!uses.is_empty()).then(|| (uses[uses.len() / 10].min(100), uses[uses.len() / 2].min(100)));
                last = sent;
                let finished = peers.iter().skip(1).filter(|peer| peer.is_finished()).count();
                let sample = Sample { at: start.elapsed(), seeder_sent, leechers_sent, finished, leecher_uplink_pct };
                timeline.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(sample);
            }
        });
    }
    let _ = tokio::time::timeout(setup.limit, async { while finishing.join_next().await.is_some() {} }).await;
    let transferred: Vec<(u64, u64)> = peers.iter().map(|peer| peer.transferred()).collect();
    let done = done.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let seeder_ip = hosts[0].ip();
    let leechers = (1..=setup.leechers)
        .map(|index| {
            let from_seeder = hosts[index].received_from(seeder_ip);
            let (pieces_failed, banned) = peers[index].caught();
            LeecherOutcome {
                joined: setup.joins.get(index - 1).copied().unwrap_or_default(),
                done: done[index - 1],
                from_seeder,
                from_leechers: hosts[index].traffic().1 - from_seeder,
                uploaded: transferred[index].1,
                connections: peers[index].connections(),
                lies: setup.liars.contains(&(index - 1)),
                pieces_failed,
                banned: banned.iter().filter_map(|addr| index_of(*addr)).collect(),
            }
        })
        .collect();
    let pairs = if setup.leechers <= crate::picture::MATRIX_MAX {
        hosts.iter().map(|receiver| hosts.iter().map(|sender| receiver.received_from(sender.ip())).collect()).collect()
    } else {
        Vec::new()
    };
    for peer in &peers {
        peer.close();
    }
    let uploaded: u64 = transferred.iter().map(|&(_, up)| up).sum();
    let needed = setup.size * setup.leechers as u64;
    Ok(SwarmOutcome {
        leechers,
        done,
        bound: setup.bound(),
        seeder_uploaded: transferred[0].1,
        uploaded,
        duplicate_bytes: uploaded.saturating_sub(needed),
        size: setup.size,
        timeline: timeline.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone(),
        pairs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_flash_crowd(seed: u64) -> SwarmSetup {
        let options = crate::scenario::Options {
            leechers: 4,
            size: 6 << 20,
            piece_length: 256 << 10,
            seed,
            ..crate::scenario::Options::default()
        };
        crate::scenario::setup("flash-crowd", &options).expect("a scenario")
    }

    /// Four leechers of our real peer get every byte, checked, from a seeder and from each other; no schedule
    /// beats the bound; the same seed gives the same run to the nanosecond.
    #[test]
    fn a_small_flash_crowd_finishes_no_faster_than_the_bound_and_the_same_each_time() {
        let setup = small_flash_crowd(7);
        let outcome = run(&setup).expect("the run");
        let done = outcome.last_done().expect("every leecher finished");
        assert!(done >= outcome.bound, "finished in {done:?}, under the bound {:?}", outcome.bound);
        assert!(outcome.seeder_uploaded >= setup.size, "the seeder sent every byte at least once");
        // Leechers traded among themselves: the seeder alone did not send all 4 copies.
        assert!(outcome.uploaded - outcome.seeder_uploaded > setup.size, "{outcome:?}");
        assert!(outcome.seeder_uploaded < 4 * setup.size, "{outcome:?}");
        let again = run(&setup).expect("the second run");
        assert_eq!(again.done, outcome.done);
        assert_eq!((again.seeder_uploaded, again.uploaded), (outcome.seeder_uploaded, outcome.uploaded));
    }

    /// The timeline's uplink use: a leecher can use at most all of its uplink, somebody uses some of it while the
    /// pieces spread, and a swarm without limits has nothing to measure against.
    #[test]
    fn the_timeline_says_how_much_of_their_uplinks_the_leechers_used() {
        let mut setup = small_flash_crowd(3);
        setup.timeline = true;
        let outcome = run(&setup).expect("the run");
        let uses: Vec<(u64, u64)> = outcome.timeline.iter().filter_map(|sample| sample.leecher_uplink_pct).collect();
        assert_eq!(uses.len(), outcome.timeline.len(), "every leecher's uplink has a limit");
        assert!(uses.iter().all(|&(p10, median)| p10 <= median && median <= 100), "{uses:?}");
        assert!(uses.iter().any(|&(_, median)| median > 0), "{uses:?}");
        let options = crate::scenario::Options { leechers: 2, size: 40 << 20, ..crate::scenario::Options::default() };
        let mut unlimited = crate::scenario::setup("loopback", &options).expect("a scenario");
        unlimited.timeline = true;
        let outcome = run(&unlimited).expect("the run");
        assert!(!outcome.timeline.is_empty());
        assert!(outcome.timeline.iter().all(|sample| sample.leecher_uplink_pct.is_none()));
    }

    /// Leechers that leave once done, and late ones that find only the seeder and a few others: every one
    /// finishes, each after it joined.
    #[test]
    fn with_churn_every_leecher_finishes() {
        let options = crate::scenario::Options {
            leechers: 8,
            size: 8 << 20,
            piece_length: 256 << 10,
            seed: 3,
            ..crate::scenario::Options::default()
        };
        let setup = crate::scenario::setup("churn", &options).expect("a scenario");
        assert!(setup.joins.iter().any(|join| !join.is_zero()), "some join late");
        let outcome = run(&setup).expect("the run");
        for leecher in &outcome.leechers {
            let done = leecher.done.unwrap_or_else(|| panic!("a leecher never finished: {:?}", outcome.leechers));
            assert!(done > leecher.joined);
        }
    }

    /// A liar among eight leechers: every honest leecher finishes with every piece checked, bans the liar after
    /// the pieces it spoiled, and bans nobody honest; the run is the same each time.
    #[test]
    fn a_liar_is_banned_by_those_it_lied_to_and_the_others_finish() {
        let options = crate::scenario::Options {
            leechers: 8,
            size: 8 << 20,
            piece_length: 256 << 10,
            seed: 5,
            ..crate::scenario::Options::default()
        };
        let setup = crate::scenario::setup("liar", &options).expect("a scenario");
        assert_eq!(setup.liars.len(), 1);
        let liar = setup.liars[0];
        let outcome = run(&setup).expect("the run");
        assert!(outcome.last_done().is_some(), "every honest leecher finished: {:?}", outcome.leechers);
        let honest: Vec<&LeecherOutcome> = outcome.leechers.iter().filter(|leecher| !leecher.lies).collect();
        assert_eq!(honest.len(), 7);
        assert!(outcome.leechers[liar].lies);
        let failed: u64 = honest.iter().map(|leecher| leecher.pieces_failed).sum();
        assert!(failed > 0, "the liar's blocks were taken and caught: {honest:?}");
        for leecher in &honest {
            assert!(leecher.banned.iter().all(|&peer| peer == liar + 1), "an honest peer was banned: {leecher:?}");
            if leecher.pieces_failed > 0 {
                assert_eq!(leecher.banned, [liar + 1], "a failed piece ends with the liar banned: {leecher:?}");
            }
        }
        let again = run(&setup).expect("the second run");
        assert_eq!(again.done, outcome.done);
    }

    #[test]
    fn the_bound_is_the_slowest_of_seeder_downloader_and_all_uplinks() {
        let link = |up: u64, down: u64| Link { up: Some(up), down: Some(down), delay: Duration::ZERO };
        // The seeder's uplink: 100 s.
        assert_eq!(lower_bound(1000, &link(10, 1000), &[link(1000, 1000)]), Duration::from_secs(100));
        // The slowest downloader: 50 s.
        assert_eq!(lower_bound(1000, &link(100, 1000), &[link(1000, 20), link(1000, 1000)]), Duration::from_secs(50));
        // Every byte through the uplinks together: 3 × 1000 / (10 + 3 × 5) = 120 s.
        let leechers = [link(5, 1000), link(5, 1000), link(5, 1000)];
        assert_eq!(lower_bound(1000, &link(10, 1000), &leechers), Duration::from_secs(120));
    }

    #[test]
    fn a_simulated_torrent_parses_and_has_the_pieces_asked_for() {
        let torrent = torrent(5 << 20, 1 << 20).expect("a torrent");
        assert_eq!(torrent.info.pieces.len(), 5);
        assert_eq!(torrent.info.total_length(), 5 << 20);
    }
}
