//! What one torrent makes of the announces it hears, and when it announces: which datagrams are read at all (a
//! token bucket), which announces are ours (the cookie), for our torrent, and which peers are handed on, with a
//! cap per sender IP and in all so that a flood of made-up ports cannot fill the candidate table. When the table
//! of senders is full, the one heard from longest ago makes way for a newcomer: spoofed senders cannot lock out
//! neighbours that come later (what they hand on is capped again by the candidate table's share for LSD).
//!
//! We announce on start, once more [`REPEAT_AFTER`] later (a datagram may be lost, a neighbour may start a moment
//! after us), then every [`ANNOUNCE_INTERVAL`]. A neighbour heard for the first time gets an answer, our
//! announce, at most one a [`REPLY_GAP`], so that a newcomer (a magnet link fetching metadata, which accepts no
//! connections) learns of us without waiting for our next round.
//!
//! A sender is handed on at its IP (IPv4-mapped ones as IPv4) and the announced port, a link-local IPv6 one with
//! the scope (interface index) it came in on, without which it could not be dialled. Loopback, unspecified and
//! multicast senders, and link-local ones without a scope, are never handed on: nothing on the network sends
//! from them, and dialling one reaches this host (or nothing).
//!
//! Pure but for the random cookie: the caller passes the clock and does the I/O.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::time::{Duration, Instant};

use super::message::{Announce, ParseError};

/// Datagrams read per second, sustained; a flood beyond that stays in (and overflows) the kernel's buffer.
pub const DATAGRAMS_PER_SECOND: u32 = 100;
/// Datagrams read at once after a quiet spell.
pub const DATAGRAM_BURST: u32 = 100;
/// Distinct ports handed on per sender IP (several clients on one host are normal; hundreds are not).
pub const MAX_PORTS_PER_IP: usize = 8;
/// Distinct sender IPs remembered; past it, the one heard from longest ago is forgotten.
pub const MAX_NEIGHBOUR_IPS: usize = 256;
/// Between announces of one torrent (BEP 14: every 5 minutes, and no more than one a minute).
pub const ANNOUNCE_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// The first announce is sent again this long after the start, as libtorrent does (at 2 and 6 s).
pub const REPEAT_AFTER: Duration = Duration::from_secs(10);
/// An answer to a newcomer goes out no sooner than this after our last announce.
pub const REPLY_GAP: Duration = Duration::from_secs(60);

/// Why a datagram handed no peer on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Ignored {
    #[error("{0}")]
    Malformed(#[from] ParseError),
    #[error("our own announce")]
    Ours,
    #[error("another torrent")]
    OtherTorrent,
    #[error("too many ports announced from one IP")]
    TooManyPorts,
    #[error("the sender's address cannot be dialled (loopback, unspecified, multicast, or link-local without scope)")]
    BadSender,
}

/// A fresh random cookie, by which our announces are recognised when they come back.
#[must_use]
pub fn random_cookie() -> String {
    format!("{:x}", rand::random::<u32>())
}

/// The address to dial a peer announcing TCP `port` from `from`: `from`'s IP (IPv4-mapped ones as IPv4), with
/// its scope when it is a link-local IPv6 address; `None` when the sender cannot be dialled (see the module).
#[must_use]
pub fn peer_address(from: SocketAddr, port: u16) -> Option<SocketAddr> {
    let ip = from.ip().to_canonical();
    if ip.is_loopback() || ip.is_unspecified() || ip.is_multicast() {
        return None;
    }
    match (ip, from) {
        (IpAddr::V6(ip), SocketAddr::V6(from)) if ip.is_unicast_link_local() => {
            (from.scope_id() != 0).then(|| SocketAddr::V6(SocketAddrV6::new(ip, port, 0, from.scope_id())))
        }
        _ => Some(SocketAddr::new(ip, port)),
    }
}

/// How many datagrams are read: a token bucket of [`DATAGRAM_BURST`] refilled at [`DATAGRAMS_PER_SECOND`].
#[derive(Debug)]
pub struct ReadBudget {
    tokens: u32,
    refilled: Instant,
}

impl ReadBudget {
    #[must_use]
    pub fn new(now: Instant) -> ReadBudget {
        ReadBudget { tokens: DATAGRAM_BURST, refilled: now }
    }

    /// Takes one token to read a datagram, or says how long until there is one.
    ///
    /// # Errors
    ///
    /// The wait until the next token.
    pub fn admit(&mut self, now: Instant) -> Result<(), Duration> {
        let every = Duration::from_secs(1) / DATAGRAMS_PER_SECOND;
        let elapsed = now.saturating_duration_since(self.refilled);
        let earned = u32::try_from(elapsed.as_nanos() / every.as_nanos()).unwrap_or(u32::MAX);
        if earned > 0 {
            self.tokens = self.tokens.saturating_add(earned).min(DATAGRAM_BURST);
            self.refilled = if self.tokens == DATAGRAM_BURST { now } else { self.refilled + every * earned };
        }
        if self.tokens == 0 {
            return Err((self.refilled + every).saturating_duration_since(now));
        }
        self.tokens -= 1;
        Ok(())
    }
}

/// One torrent's view of the local network.
#[derive(Debug)]
pub struct Neighbours {
    info_hash: [u8; 20],
    cookie: String,
    /// Our own TCP address when known (bound to one IP), never handed on even without a cookie.
    own: Option<SocketAddr>,
    budget: ReadBudget,
    /// Ports heard per sender IP, and when it was last heard.
    heard: HashMap<IpAddr, (Vec<u16>, Instant)>,
    /// The next round: on start, [`REPEAT_AFTER`] later, then every [`ANNOUNCE_INTERVAL`].
    next_round: Instant,
    rounds: u32,
    /// When an answer to a newcomer is due.
    reply_due: Option<Instant>,
    last_sent: Option<Instant>,
}

impl Neighbours {
    /// A fresh view for `info_hash`, with a random cookie.
    #[must_use]
    pub fn new(info_hash: [u8; 20], own: Option<SocketAddr>, now: Instant) -> Neighbours {
        Neighbours::with_cookie(info_hash, random_cookie(), own, now)
    }

    /// As [`Neighbours::new`], with a given cookie (tests).
    #[must_use]
    pub fn with_cookie(info_hash: [u8; 20], cookie: String, own: Option<SocketAddr>, now: Instant) -> Neighbours {
        Neighbours {
            info_hash,
            cookie,
            own,
            budget: ReadBudget::new(now),
            heard: HashMap::new(),
            next_round: now,
            rounds: 0,
            reply_due: None,
            last_sent: None,
        }
    }

    /// Sender IPs remembered (at most [`MAX_NEIGHBOUR_IPS`]).
    #[must_use]
    pub fn neighbour_count(&self) -> usize {
        self.heard.len()
    }

    /// Our cookie, sent in our announces.
    #[must_use]
    pub fn cookie(&self) -> &str {
        &self.cookie
    }

    /// Our announce for TCP `port`, addressed to `group`.
    ///
    /// # Errors
    ///
    /// Port 0.
    pub fn announce(&self, port: u16, group: SocketAddr) -> Result<Vec<u8>, super::message::EncodeError> {
        Announce { port, info_hashes: vec![self.info_hash], cookie: Some(&self.cookie) }.encode(group)
    }

    /// When our announce is to go out next.
    #[must_use]
    pub fn next_announce(&self) -> Instant {
        self.reply_due.map_or(self.next_round, |due| due.min(self.next_round))
    }

    /// Our announce went out (or was tried) at `now`: the round it was due for is done, and so is any answer.
    pub fn announced(&mut self, now: Instant) {
        if now >= self.next_round {
            self.rounds = self.rounds.saturating_add(1);
            self.next_round = now + if self.rounds == 1 { REPEAT_AFTER } else { ANNOUNCE_INTERVAL };
        }
        self.reply_due = None;
        self.last_sent = Some(now);
    }

    /// Takes one token to read a datagram, or says how long until there is one.
    ///
    /// # Errors
    ///
    /// The wait until the next token.
    pub fn admit(&mut self, now: Instant) -> Result<(), Duration> {
        self.budget.admit(now)
    }

    /// The torrent it is the view of.
    #[must_use]
    pub fn info_hash(&self) -> [u8; 20] {
        self.info_hash
    }

    /// Reads a datagram that came from `from` at `now`: the peer to hand on (see [`peer_address`]), if it
    /// announces our torrent and is not us. A peer heard for the first time is answered (see
    /// [`Neighbours::next_announce`]).
    ///
    /// # Errors
    ///
    /// Why the datagram hands no peer on.
    pub fn receive(&mut self, datagram: &[u8], from: SocketAddr, now: Instant) -> Result<SocketAddr, Ignored> {
        let announce = Announce::parse(datagram)?;
        if announce.cookie == Some(self.cookie.as_str()) {
            return Err(Ignored::Ours);
        }
        if !announce.info_hashes.contains(&self.info_hash) {
            return Err(Ignored::OtherTorrent);
        }
        let peer = peer_address(from, announce.port).ok_or(Ignored::BadSender)?;
        if Some(peer) == self.own {
            return Err(Ignored::Ours);
        }
        if !self.heard.contains_key(&peer.ip()) && self.heard.len() >= MAX_NEIGHBOUR_IPS {
            let oldest = self.heard.iter().min_by_key(|(_, (_, heard))| *heard).map(|(ip, _)| *ip);
            if let Some(oldest) = oldest {
                self.heard.remove(&oldest);
            }
        }
        let (ports, heard) = self.heard.entry(peer.ip()).or_insert_with(|| (Vec::new(), now));
        *heard = now;
        if !ports.contains(&peer.port()) {
            if ports.len() >= MAX_PORTS_PER_IP {
                return Err(Ignored::TooManyPorts);
            }
            ports.push(peer.port());
            if self.reply_due.is_none() {
                self.reply_due = Some(self.last_sent.map_or(now, |sent| (sent + REPLY_GAP).max(now)));
            }
        }
        Ok(peer)
    }
}
