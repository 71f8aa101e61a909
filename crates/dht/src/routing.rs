//! The routing table (BEP 5): k-buckets over the 160-bit id space, good nodes kept, bad ones replaced.
//!
//! Layout: `buckets[i]` for `i` below the last holds the nodes whose XOR distance to our id has exactly `i`
//! leading zero bits (they share the first `i` bits with us and differ at bit `i`); the last bucket holds every
//! node closer than that, the range our own id is in. Only that last bucket is ever split (BEP 5): its nodes that
//! share one more bit with us move to a new last bucket. So the table knows many nodes near us and a few far away,
//! and has at most [`MAX_BUCKETS`] buckets.
//!
//! Invariants:
//! - a bucket holds at most [`K`] nodes and [`REPLACEMENTS`] replacements, so the table holds at most
//!   160 x (8 + 8) entries whatever arrives;
//! - every node and replacement has answered one of our queries: only [`RoutingTable::responded`] inserts.
//!   A node that merely queries us or is named in a `nodes` list may lie about its address (UDP sources can be
//!   spoofed), so the node loop pings it first ([`RoutingTable::queried_by`] says whether that is worth it);
//! - an id is in at most one place (nodes or replacements of its bucket), and with [`Config::restrict_ips`] (the
//!   default) a bucket holds at most one entry per IP address, so one host cannot fill a bucket with made-up ids.
//!
//! Node states, from the time of the last answer: good if it answered within [`GOOD_FOR`] (15 minutes), or has
//! answered before and queried us within that time; bad after [`FAILURES_BAD`] queries in a row went unanswered;
//! questionable otherwise. A full bucket takes a new node in place of a bad one; failing that the newcomer waits in
//! the replacement cache, and the caller is told which questionable node to ping: if that one then times out
//! twice, the freshest replacement takes its place.
//!
//! The table does not judge addresses (loopback and private ones are fine, so tests on 127.0.0.1 work): whether to
//! accept only [`crate::is_global`] addresses, and BEP 42 ids ([`crate::bep42_valid`]), is the caller's choice.
//! Nodes that said `ro` (BEP 43) must not be passed in.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use crate::{NodeId, NodeInfo};

/// Nodes per bucket (BEP 5's k).
pub const K: usize = 8;
/// Replacements kept per bucket.
pub const REPLACEMENTS: usize = 8;
/// One bucket per bit of the id space at most.
pub const MAX_BUCKETS: usize = 160;
/// How long an answer keeps a node good (BEP 5).
pub const GOOD_FOR: Duration = Duration::from_secs(15 * 60);
/// A bucket unchanged for this long should be refreshed by a lookup of a random id in its range (BEP 5).
pub const REFRESH_AFTER: Duration = Duration::from_secs(15 * 60);
/// Unanswered queries in a row that make a node bad. BEP 5 says "multiple"; two keeps one lost datagram from
/// costing a good node its place.
pub const FAILURES_BAD: u8 = 2;

/// What BEP 5 calls a node's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// Answered within 15 minutes, or answered once and queried us within 15 minutes.
    Good,
    /// Silent for 15 minutes: worth a ping before trusting or dropping it.
    Questionable,
    /// Failed to answer [`FAILURES_BAD`] queries in a row: the first to go.
    Bad,
}

/// What [`RoutingTable::responded`] did with a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insertion {
    /// Added to its bucket.
    Added,
    /// Already there: its answer time (and port, if that changed) updated.
    Updated,
    /// Took the place of a bad node.
    Replaced {
        /// The node dropped.
        evicted: NodeInfo,
    },
    /// Its bucket is full of good or questionable nodes: it waits in the replacement cache.
    Cached {
        /// The least recently heard questionable node of the bucket, if any: ping it, and report a timeout with
        /// [`RoutingTable::timed_out`], so that a dead node makes room.
        ping: Option<NodeInfo>,
    },
    /// Not taken.
    Refused(Refusal),
}

/// Why a node was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// It has our id.
    OwnId,
    /// Port 0, or an unspecified, multicast or broadcast address: nothing to send to.
    Unreachable,
    /// Its id is in the table at another IP address, and that node is not bad: an id is not given up to whoever
    /// claims it next.
    IdConflict,
    /// Another id from the same IP address is in its bucket and not bad ([`Config::restrict_ips`]).
    IpConflict,
}

/// What [`RoutingTable::queried_by`] makes of a node that sent us a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contact {
    /// In the table at that address: its query time was recorded (it helps it stay good).
    Known,
    /// Not in the table, and its bucket would take it: ping it, and call [`RoutingTable::responded`] if it answers.
    WorthPinging,
    /// Not wanted: refused, or its bucket is full of nodes that are not bad.
    NotWanted,
}

/// Table settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// At most one entry per IP address per bucket (default on). Off, a bucket may hold several nodes of one
    /// address, as tests with many nodes on 127.0.0.1 need (libtorrent's `dht_restrict_routing_ips`).
    pub restrict_ips: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config { restrict_ips: true }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    node: NodeInfo,
    last_response: Instant,
    last_query: Option<Instant>,
    failures: u8,
}

impl Entry {
    fn new(node: NodeInfo, now: Instant) -> Self {
        Entry { node, last_response: now, last_query: None, failures: 0 }
    }

    fn state(&self, now: Instant) -> NodeState {
        let recent = |at: Instant| now.saturating_duration_since(at) < GOOD_FOR;
        if self.failures >= FAILURES_BAD {
            NodeState::Bad
        } else if recent(self.last_response) || self.last_query.is_some_and(recent) {
            NodeState::Good
        } else {
            NodeState::Questionable
        }
    }

    fn is_bad(&self) -> bool {
        self.failures >= FAILURES_BAD
    }
}

#[derive(Debug, Clone)]
struct Bucket {
    nodes: Vec<Entry>,
    replacements: Vec<Entry>,
    last_changed: Instant,
}

/// What one pass of insertion into a bucket came to.
enum Step {
    Done(Insertion),
    /// Full, and it is the last bucket, which may split.
    Split,
}

impl Bucket {
    fn new(now: Instant) -> Self {
        Bucket { nodes: Vec::with_capacity(K), replacements: Vec::new(), last_changed: now }
    }

    fn insert(&mut self, node: NodeInfo, now: Instant, restrict_ips: bool, splittable: bool) -> Step {
        let ip = node.addr.ip();
        if let Some(pos) = self.nodes.iter().position(|entry| entry.node.id == node.id) {
            let moved = self.nodes[pos].node.addr.ip() != ip;
            if moved && !self.nodes[pos].is_bad() {
                return Step::Done(Insertion::Refused(Refusal::IdConflict));
            }
            if moved && restrict_ips && self.nodes.iter().any(|entry| entry.node.addr.ip() == ip) {
                return Step::Done(Insertion::Refused(Refusal::IpConflict));
            }
            let entry = &mut self.nodes[pos];
            // Same host on a new port (a restart, a NAT rebinding), or a bad node's id answering from elsewhere.
            *entry = Entry { last_query: entry.last_query, ..Entry::new(node, now) };
            self.last_changed = now;
            return Step::Done(Insertion::Updated);
        }
        if let Some(pos) = self.replacements.iter().position(|entry| entry.node.id == node.id) {
            if self.replacements[pos].node.addr.ip() != ip {
                return Step::Done(Insertion::Refused(Refusal::IdConflict));
            }
            self.replacements.remove(pos);
        }
        let mut evicted = None;
        if restrict_ips {
            if let Some(pos) = self.nodes.iter().position(|entry| entry.node.addr.ip() == ip) {
                if !self.nodes[pos].is_bad() {
                    return Step::Done(Insertion::Refused(Refusal::IpConflict));
                }
                evicted = Some(self.nodes.remove(pos).node);
            }
            // A newer id from the same address supersedes the one waiting.
            self.replacements.retain(|entry| entry.node.addr.ip() != ip);
        }
        if self.nodes.len() < K {
            self.nodes.push(Entry::new(node, now));
            self.last_changed = now;
            return Step::Done(evicted.map_or(Insertion::Added, |evicted| Insertion::Replaced { evicted }));
        }
        if splittable {
            return Step::Split;
        }
        if let Some(pos) = worst_bad(&self.nodes) {
            let old = std::mem::replace(&mut self.nodes[pos], Entry::new(node, now));
            self.last_changed = now;
            return Step::Done(Insertion::Replaced { evicted: old.node });
        }
        if self.replacements.len() >= REPLACEMENTS
            && let Some(oldest) = oldest(&self.replacements)
        {
            self.replacements.remove(oldest);
        }
        self.replacements.push(Entry::new(node, now));
        let ping = self
            .nodes
            .iter()
            .filter(|entry| entry.state(now) == NodeState::Questionable)
            .min_by_key(|entry| entry.last_response)
            .map(|entry| entry.node);
        Step::Done(Insertion::Cached { ping })
    }

    /// Moves the freshest replacements into free node slots.
    fn promote(&mut self, now: Instant) {
        while self.nodes.len() < K {
            let Some(pos) = freshest(&self.replacements) else { break };
            self.nodes.push(self.replacements.swap_remove(pos));
            self.last_changed = now;
        }
    }
}

fn worst_bad(entries: &[Entry]) -> Option<usize> {
    let bad = entries.iter().enumerate().filter(|(_, entry)| entry.is_bad());
    bad.max_by_key(|(_, entry)| (entry.failures, std::cmp::Reverse(entry.last_response))).map(|(pos, _)| pos)
}

fn oldest(entries: &[Entry]) -> Option<usize> {
    entries.iter().enumerate().min_by_key(|(_, entry)| entry.last_response).map(|(pos, _)| pos)
}

fn freshest(entries: &[Entry]) -> Option<usize> {
    entries.iter().enumerate().max_by_key(|(_, entry)| entry.last_response).map(|(pos, _)| pos)
}

/// The routing table of one node, for one address family.
#[derive(Debug, Clone)]
pub struct RoutingTable {
    own_id: NodeId,
    config: Config,
    buckets: Vec<Bucket>,
}

impl RoutingTable {
    /// An empty table for a node with id `own_id`, with the default [`Config`].
    #[must_use]
    pub fn new(own_id: NodeId, now: Instant) -> Self {
        RoutingTable::with_config(own_id, Config::default(), now)
    }

    /// An empty table with the given settings.
    #[must_use]
    pub fn with_config(own_id: NodeId, config: Config, now: Instant) -> Self {
        RoutingTable { own_id, config, buckets: vec![Bucket::new(now)] }
    }

    /// Our id.
    #[must_use]
    pub fn own_id(&self) -> NodeId {
        self.own_id
    }

    /// Nodes in the buckets (replacements not counted).
    #[must_use]
    pub fn len(&self) -> usize {
        self.buckets.iter().map(|bucket| bucket.nodes.len()).sum()
    }

    /// Whether no node is in the buckets.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Nodes waiting in replacement caches.
    #[must_use]
    pub fn replacement_len(&self) -> usize {
        self.buckets.iter().map(|bucket| bucket.replacements.len()).sum()
    }

    /// Buckets so far: 1 when empty, at most [`MAX_BUCKETS`].
    #[must_use]
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    /// The nodes of each bucket, nearest bucket last (for persistence and diagnostics).
    pub fn buckets(&self) -> impl Iterator<Item = Vec<NodeInfo>> + '_ {
        self.buckets.iter().map(|bucket| bucket.nodes.iter().map(|entry| entry.node).collect())
    }

    /// Every node in the buckets.
    pub fn nodes(&self) -> impl Iterator<Item = NodeInfo> + '_ {
        self.buckets.iter().flat_map(|bucket| bucket.nodes.iter().map(|entry| entry.node))
    }

    /// The state of the node with id `id`, if it is in the buckets.
    #[must_use]
    pub fn state(&self, id: &NodeId, now: Instant) -> Option<NodeState> {
        let bucket = &self.buckets[self.bucket_index(id)];
        bucket.nodes.iter().find(|entry| entry.node.id == *id).map(|entry| entry.state(now))
    }

    /// Records that `node` answered one of our queries, and inserts it if there is room (see [`Insertion`]).
    pub fn responded(&mut self, node: NodeInfo, now: Instant) -> Insertion {
        if let Some(refusal) = self.unusable(&node) {
            return Insertion::Refused(refusal);
        }
        loop {
            let index = self.bucket_index(&node.id);
            let splittable = index + 1 == self.buckets.len() && self.buckets.len() < MAX_BUCKETS;
            match self.buckets[index].insert(node, now, self.config.restrict_ips, splittable) {
                Step::Done(insertion) => return insertion,
                Step::Split => self.split_last(now),
            }
        }
    }

    /// Records that `node` sent us a query; says whether it is worth pinging to get it into the table.
    pub fn queried_by(&mut self, node: NodeInfo, now: Instant) -> Contact {
        if self.unusable(&node).is_some() {
            return Contact::NotWanted;
        }
        let index = self.bucket_index(&node.id);
        let splittable = index + 1 == self.buckets.len() && self.buckets.len() < MAX_BUCKETS;
        let restrict_ips = self.config.restrict_ips;
        let bucket = &mut self.buckets[index];
        let mut entries = bucket.nodes.iter_mut().chain(bucket.replacements.iter_mut());
        if let Some(entry) = entries.find(|entry| entry.node.id == node.id) {
            if entry.node.addr != node.addr {
                return Contact::NotWanted;
            }
            entry.last_query = Some(now);
            return Contact::Known;
        }
        let ip = node.addr.ip();
        if restrict_ips && bucket.nodes.iter().any(|entry| entry.node.addr.ip() == ip && !entry.is_bad()) {
            return Contact::NotWanted;
        }
        if bucket.nodes.len() < K || splittable || bucket.nodes.iter().any(Entry::is_bad) {
            Contact::WorthPinging
        } else {
            Contact::NotWanted
        }
    }

    /// Records that a query to `node` went unanswered. Once it is bad, the freshest replacement of its bucket
    /// takes its place and is returned (a bad node with no replacement stays until a newcomer takes its slot).
    pub fn timed_out(&mut self, node: NodeInfo, now: Instant) -> Option<NodeInfo> {
        let index = self.bucket_index(&node.id);
        let bucket = &mut self.buckets[index];
        let Some(pos) = bucket.nodes.iter().position(|entry| entry.node == node) else {
            // A replacement that does not answer is no use as one.
            bucket.replacements.retain(|entry| entry.node != node);
            return None;
        };
        let entry = &mut bucket.nodes[pos];
        entry.failures = entry.failures.saturating_add(1);
        if !entry.is_bad() {
            return None;
        }
        let fresh = freshest(&bucket.replacements)?;
        bucket.nodes[pos] = bucket.replacements.swap_remove(fresh);
        bucket.last_changed = now;
        Some(bucket.nodes[pos].node)
    }

    /// The `n` nodes closest to `target` by XOR distance, closest first; bad nodes left out. This is what a
    /// find_node or get_peers reply carries (n = 8), and where a lookup starts.
    #[must_use]
    pub fn closest(&self, target: &NodeId, n: usize) -> Vec<NodeInfo> {
        let mut all: Vec<NodeInfo> = self
            .buckets
            .iter()
            .flat_map(|bucket| bucket.nodes.iter().filter(|entry| !entry.is_bad()).map(|entry| entry.node))
            .collect();
        // O(table) selection, then a sort of the n kept: this runs for every find_node and get_peers we answer.
        if n < all.len() {
            all.select_nth_unstable_by_key(n, |node| node.id.distance(target));
            all.truncate(n);
        }
        all.sort_unstable_by_key(|node| node.id.distance(target));
        all
    }

    /// Random lookup targets for the buckets unchanged for [`REFRESH_AFTER`], one id inside each one's range
    /// (BEP 5). Those buckets count as changed now, so that a refresh whose lookup finds nobody is not asked for
    /// again at once.
    pub fn refresh_targets(&mut self, now: Instant, rng: &mut impl rand::Rng) -> Vec<NodeId> {
        self.refresh_targets_after(now, REFRESH_AFTER, rng)
    }

    /// [`RoutingTable::refresh_targets`] for the buckets unchanged for `stale_after` instead of [`REFRESH_AFTER`]
    /// (tests use a short one).
    pub fn refresh_targets_after(
        &mut self,
        now: Instant,
        stale_after: Duration,
        rng: &mut impl rand::Rng,
    ) -> Vec<NodeId> {
        let last = self.buckets.len() - 1;
        let own = self.own_id;
        let mut targets = Vec::new();
        for (index, bucket) in self.buckets.iter_mut().enumerate() {
            if now.saturating_duration_since(bucket.last_changed) >= stale_after {
                bucket.last_changed = now;
                targets.push(random_id_in_bucket(own, index, index < last, rng));
            }
        }
        targets
    }

    /// One random id in the range of each bucket, farthest bucket first (the last is our own range): the
    /// targets of the lookups that follow a bootstrap, so that every bucket gets filled.
    pub fn bucket_targets(&self, rng: &mut impl rand::Rng) -> Vec<NodeId> {
        let last = self.buckets.len() - 1;
        (0..=last).map(|index| random_id_in_bucket(self.own_id, index, index < last, rng)).collect()
    }

    /// At most `n` questionable nodes (silent for [`GOOD_FOR`], not bad), the longest silent first. BEP 5 has
    /// them pinged now and then: an answer makes one good again ([`RoutingTable::responded`]), and
    /// [`FAILURES_BAD`] timeouts in a row ([`RoutingTable::timed_out`]) make it bad, to be replaced.
    #[must_use]
    pub fn questionable(&self, now: Instant, n: usize) -> Vec<NodeInfo> {
        let mut found: Vec<&Entry> = self
            .buckets
            .iter()
            .flat_map(|bucket| bucket.nodes.iter())
            .filter(|entry| entry.state(now) == NodeState::Questionable)
            .collect();
        found.sort_unstable_by_key(|entry| entry.last_response);
        found.into_iter().take(n).map(|entry| entry.node).collect()
    }

    fn bucket_index(&self, id: &NodeId) -> usize {
        let shared = self.own_id.distance(id).leading_zeros() as usize;
        shared.min(self.buckets.len() - 1)
    }

    fn unusable(&self, node: &NodeInfo) -> Option<Refusal> {
        if node.id == self.own_id {
            return Some(Refusal::OwnId);
        }
        let ip = node.addr.ip().to_canonical();
        let broadcast = ip == IpAddr::V4(Ipv4Addr::BROADCAST);
        (node.addr.port() == 0 || ip.is_unspecified() || ip.is_multicast() || broadcast).then_some(Refusal::Unreachable)
    }

    /// Splits the last bucket: its nodes that share one more bit with our id move to a new last bucket. Both
    /// halves then fill free slots from their replacements.
    fn split_last(&mut self, now: Instant) {
        let depth = self.buckets.len();
        let own = self.own_id;
        let nearer = |entry: &Entry| own.distance(&entry.node.id).leading_zeros() as usize >= depth;
        let Some(old) = self.buckets.last_mut() else { return };
        let mut new = Bucket::new(old.last_changed);
        (new.nodes, old.nodes) = std::mem::take(&mut old.nodes).into_iter().partition(nearer);
        (new.replacements, old.replacements) = std::mem::take(&mut old.replacements).into_iter().partition(nearer);
        old.promote(now);
        new.promote(now);
        self.buckets.push(new);
    }
}

/// A random id in bucket `index`'s range: it shares the first `index` bits with `own`, then (for any bucket but
/// the last) differs at bit `index`; the rest is random.
fn random_id_in_bucket(own: NodeId, index: usize, flip: bool, rng: &mut impl rand::Rng) -> NodeId {
    let mut id = NodeId::random(rng);
    for bit in 0..=index.min(159) {
        let (byte, mask) = (bit / 8, 0x80u8 >> (bit % 8));
        let want = if bit < index {
            own.0[byte] & mask
        } else if flip {
            !own.0[byte] & mask
        } else {
            id.0[byte] & mask
        };
        id.0[byte] = (id.0[byte] & !mask) | want;
    }
    id
}
