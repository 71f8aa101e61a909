//! The live page at `/`: totals, the named torrents (or in open mode the busiest, by a prefix of their hash),
//! the latest matches, joins, finishes and departures in words, and announces per second over the last minutes.
//!
//! The page is one self-contained HTML file (no CDN: it works offline) that polls `/dashboard.json`. Peer
//! addresses appear only in the journal of named torrents: in open mode nothing lists the peers of a torrent
//! beyond what an announce for it already reveals. Each worker writes its own journal (an uncontended lock),
//! only for named torrents, so an open tracker under load pays nothing for the page.

use std::collections::VecDeque;
use std::fmt::Display;
use std::sync::Mutex;

use super::{Tracker, hex};
use crate::swarm::{Change, Family};

/// The page, served as it is.
pub const PAGE: &str = include_str!("dashboard.html");
/// Journal lines each worker keeps.
const JOURNAL_LEN: usize = 200;
/// Journal lines the page gets.
const PAGE_JOURNAL: usize = 60;
/// Seconds of announce rates kept.
const RATE_SECONDS: usize = 300;
/// Torrents listed in open mode.
const BUSIEST: usize = 10;

/// One line of the journal: what happened to whom, and whom the tracker handed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// Order across workers: later entries have larger numbers.
    pub seq: u64,
    /// Seconds on the tracker's clock.
    pub at: u32,
    /// `join`, `finish`, `leave` or `match` (a re-announce that was given peers).
    pub kind: &'static str,
    pub torrent: String,
    /// `seeder` or `leecher`, as it announced.
    pub role: &'static str,
    /// The announcer's address (source IP and announced port).
    pub peer: String,
    /// The peers it was given, seeders and leechers apart.
    pub given_seeders: Vec<String>,
    pub given_leechers: Vec<String>,
}

impl JournalEntry {
    /// The entry in words, as the page shows it.
    #[must_use]
    pub fn text(&self) -> String {
        let (role, peer) = (self.role, &self.peer);
        let mut text = match self.kind {
            "join" => format!("{role} {peer} joined"),
            "finish" => format!("leecher {peer} finished: now a seeder"),
            "leave" => format!("{role} {peer} left"),
            _ => format!("{role} {peer} asked"),
        };
        match (self.given_seeders.is_empty(), self.given_leechers.is_empty()) {
            (true, true) => {}
            (false, false) => text.push_str(&format!(
                "; given seeders {}, leechers {}",
                self.given_seeders.join(", "),
                self.given_leechers.join(", ")
            )),
            (false, true) => text.push_str(&format!("; given seeders {}", self.given_seeders.join(", "))),
            (true, false) => text.push_str(&format!("; given leechers {}", self.given_leechers.join(", "))),
        }
        text
    }
}

/// Each worker's journal, and the announce rate history.
#[derive(Debug, Default)]
pub(super) struct Journal {
    per_worker: Box<[Mutex<VecDeque<JournalEntry>>]>,
    rates: Mutex<VecDeque<u64>>,
    next_seq: std::sync::atomic::AtomicU64,
}

impl Journal {
    pub(super) fn new(slots: usize) -> Journal {
        Journal {
            per_worker: (0..slots).map(|_| Mutex::default()).collect(),
            rates: Mutex::default(),
            next_seq: std::sync::atomic::AtomicU64::new(1),
        }
    }

    /// Records the requests answered in the last second (called once a second by the housekeeping worker).
    pub(super) fn sample_rate(&self, answered: u64) {
        let mut rates = self.rates.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if rates.len() == RATE_SECONDS {
            rates.pop_front();
        }
        rates.push_back(answered);
    }
}

impl Tracker {
    /// Notes an announce of a named torrent in this worker's journal, with whom it was given.
    pub(super) fn journal_announce<A: Family + Display>(
        &self,
        info_hash: &[u8; 20],
        peer: A,
        seeder: bool,
        change: Change,
        handed: &[A],
        now: u32,
    ) {
        let Some(torrent) = self.named.get(info_hash) else { return };
        let kind = match change {
            Change::Joined => "join",
            Change::Finished => "finish",
            Change::Left => "leave",
            Change::Updated | Change::NotRecorded if handed.is_empty() => return,
            Change::Updated | Change::NotRecorded => "match",
        };
        let (mut given_seeders, mut given_leechers) = (Vec::new(), Vec::new());
        if !handed.is_empty() {
            let registry = self.shared.shards.lock(info_hash);
            for other in handed {
                if registry.is_seeder(info_hash, other) == Some(true) {
                    given_seeders.push(other.to_string());
                } else {
                    given_leechers.push(other.to_string());
                }
            }
        }
        let entry = JournalEntry {
            seq: self.shared.journal.next_seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            at: now,
            kind,
            torrent: torrent.name.clone(),
            role: if seeder { "seeder" } else { "leecher" },
            peer: peer.to_string(),
            given_seeders,
            given_leechers,
        };
        let mut journal =
            self.shared.journal.per_worker[self.worker].lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if journal.len() == JOURNAL_LEN {
            journal.pop_front();
        }
        journal.push_back(entry);
    }

    /// The journal entries after `seq` (0: all that are kept), oldest first: joins, finishes, departures and
    /// matches of the named torrents.
    #[must_use]
    pub fn journal_since(&self, seq: u64) -> Vec<JournalEntry> {
        let mut entries: Vec<JournalEntry> = Vec::new();
        for journal in &self.shared.journal.per_worker {
            let journal = journal.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            entries.extend(journal.iter().filter(|entry| entry.seq > seq).cloned());
        }
        entries.sort_by_key(|entry| entry.seq);
        entries
    }

    /// What the page shows, as JSON.
    pub(super) fn dashboard_json(&self) -> String {
        let snapshot = self.snapshot();
        let mut torrents: Vec<serde_json::Value> = Vec::new();
        if self.named.is_empty() {
            let mut all = self.shared.shards.torrents();
            all.sort_by_key(|(_, counts)| std::cmp::Reverse(u64::from(counts.seeders) + u64::from(counts.leechers)));
            for (hash, counts) in all.into_iter().take(BUSIEST) {
                torrents.push(serde_json::json!({
                    "name": format!("{}…", &hex(&hash)[..8]),
                    "seeders": counts.seeders, "leechers": counts.leechers, "completed": counts.completed,
                }));
            }
        } else {
            for torrent in super::each_named(&self.named) {
                let counts = self.named_counts(torrent);
                torrents.push(serde_json::json!({
                    "name": torrent.name, "info_hash": hex(&torrent.info_hash),
                    "v2_info_hash": torrent.v2_info_hash.map(|hash| hex(&hash)),
                    "seeders": counts.seeders, "leechers": counts.leechers, "completed": counts.completed,
                }));
            }
        }
        let entries = self.journal_since(0);
        let start = entries.len().saturating_sub(PAGE_JOURNAL);
        let journal: Vec<serde_json::Value> = entries[start..]
            .iter()
            .map(|entry| {
                serde_json::json!({"at": entry.at, "kind": entry.kind, "torrent": entry.torrent, "text": entry.text()})
            })
            .collect();
        let rates: Vec<u64> = self
            .shared
            .journal
            .rates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .copied()
            .collect();
        serde_json::json!({
            "mode": if self.named.is_empty() { "open" } else { "named" },
            "uptime_seconds": snapshot.uptime_seconds,
            "torrents_tracked": snapshot.totals.torrents,
            "seeders": snapshot.totals.seeders,
            "leechers": snapshot.totals.leechers,
            "completed": snapshot.totals.completed,
            "peers": snapshot.totals.peers_v4 + snapshot.totals.peers_v6,
            "torrents": torrents,
            "journal": journal,
            "rates": rates,
        })
        .to_string()
    }
}
