//! Who sent bad data, and who is banned for it: libtorrent's "smart ban", as plain data.
//!
//! A piece that fails its hash check says only that one of the peers that sent its blocks lied. So:
//!
//! - A piece sent by **one peer alone** that fails is proof: that peer is banned.
//! - A piece sent by **several** that fails is a suspicion: the digest of every block is kept with who sent it, and
//!   every sender is put **on parole** (the picker then gives it only pieces it downloads alone, so its next
//!   failure is proof). When the piece later passes, each kept block is compared with the good one: exactly the
//!   peers whose blocks differ are banned, and the others are cleared.
//! - Parole ends when the peer sends a good piece alone, or its blocks match a good copy. Nobody is banned without
//!   proof: the old rule (ban after three failed pieces, whoever else sent blocks of them) banned the honest peers
//!   that happened to share pieces with a liar.
//!
//! A ban names the peer, not the machine: its endpoint (address and port) and its peer id. Peers behind one NAT
//! share an address, and banning the address would ban the honest ones with the liar. Only when
//! [`IP_BAN_ENDPOINTS`] different endpoints of one address have been banned is the whole address banned: by then
//! the address itself is the liar (a client that reconnects from new ports with new peer ids).
//!
//! Every table is bounded: an attacker that makes us remember things pays a failed piece's worth of upload for
//! each entry, and the oldest entries go first when a cap is reached.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};

/// Banned endpoints of one IP address after which the address itself is banned.
pub const IP_BAN_ENDPOINTS: u32 = 3;
/// Entries kept in each ban list and in the parole list.
const MAX_ENTRIES: usize = 10_000;
/// Failed pieces whose blocks are kept for comparison.
const MAX_SUSPECT_PIECES: usize = 256;
/// Block records kept per failed piece (a piece may fail several times before a good copy arrives).
const MAX_RECORDS_PER_PIECE: usize = 4096;

/// A peer as a ban names it: where it is, and the id it gave in its handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sender {
    pub addr: SocketAddr,
    pub peer_id: [u8; 20],
}

/// A SHA-1 of one block's bytes.
pub type Digest = [u8; 20];

/// What to do after a piece's hash check.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Peers banned now, to be disconnected.
    pub banned: Vec<Sender>,
    /// Addresses banned as a whole now: every connection from them goes.
    pub banned_ips: Vec<IpAddr>,
    /// Peers put on parole now.
    pub paroled: Vec<Sender>,
    /// Peers whose parole ended now (they sent a good piece alone, or their blocks matched a good copy).
    pub cleared: Vec<Sender>,
}

#[derive(Debug, Clone, Copy)]
struct BlockRecord {
    block: u32,
    sender: Sender,
    digest: Digest,
}

/// A set that forgets its oldest members past [`MAX_ENTRIES`].
#[derive(Debug)]
struct BoundedSet<T> {
    members: HashSet<T>,
    order: VecDeque<T>,
}

impl<T: Copy + Eq + Hash> BoundedSet<T> {
    fn new() -> Self {
        Self { members: HashSet::new(), order: VecDeque::new() }
    }

    fn insert(&mut self, value: T) -> bool {
        if !self.members.insert(value) {
            return false;
        }
        self.order.push_back(value);
        if self.order.len() > MAX_ENTRIES
            && let Some(oldest) = self.order.pop_front()
        {
            self.members.remove(&oldest);
        }
        true
    }

    fn remove(&mut self, value: &T) {
        if self.members.remove(value) {
            self.order.retain(|member| member != value);
        }
    }

    fn contains(&self, value: &T) -> bool {
        self.members.contains(value)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.members.len()
    }
}

/// Strikes, parole and bans of one torrent.
#[derive(Debug)]
struct Records {
    banned_endpoints: BoundedSet<SocketAddr>,
    banned_ids: BoundedSet<[u8; 20]>,
    banned_ips: BoundedSet<IpAddr>,
    /// Banned endpoints per address, for the escalation to an address ban.
    endpoints_banned_per_ip: HashMap<IpAddr, u32>,
    parole: BoundedSet<Sender>,
    /// Blocks of pieces that failed while several peers sent them, by piece, oldest piece first.
    suspects: HashMap<u32, Vec<BlockRecord>>,
    suspect_order: VecDeque<u32>,
}

/// Who is banned, paroled and suspected in one torrent. Most torrents never see a bad piece: the records are made
/// at the first verdict that needs them, so an honest swarm costs one pointer.
#[derive(Debug, Default)]
pub struct Reputation {
    records: Option<Box<Records>>,
}

impl Reputation {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn records(&mut self) -> &mut Records {
        self.records.get_or_insert_with(|| Box::new(Records::new()))
    }

    /// Whether a connection to or from `addr` is refused before any handshake: its address or endpoint is banned.
    #[must_use]
    pub fn is_banned_addr(&self, addr: SocketAddr) -> bool {
        self.records.as_ref().is_some_and(|records| records.is_banned_addr(addr))
    }

    /// Whether the address as a whole is banned.
    #[must_use]
    pub fn is_banned_ip(&self, ip: IpAddr) -> bool {
        self.records.as_ref().is_some_and(|records| records.is_banned_ip(ip))
    }

    /// Whether a peer that completed its handshake is refused: its address, endpoint or peer id is banned.
    #[must_use]
    pub fn is_banned(&self, sender: &Sender) -> bool {
        self.records.as_ref().is_some_and(|records| records.is_banned(sender))
    }

    /// Whether a peer is on parole: it must download its pieces alone.
    #[must_use]
    pub fn on_parole(&self, sender: &Sender) -> bool {
        self.records.as_ref().is_some_and(|records| records.on_parole(sender))
    }

    /// Whether a good copy of `piece` should be cut into block digests for [`Reputation::piece_passed`].
    #[must_use]
    pub fn has_suspects(&self, piece: u32) -> bool {
        self.records.as_ref().is_some_and(|records| records.has_suspects(piece))
    }

    /// A piece failed its hash check. `senders[b]` sent block `b`, whose bytes hash to `digests[b]`.
    pub fn piece_failed(&mut self, piece: u32, senders: &[Sender], digests: &[Digest]) -> Verdict {
        self.records().piece_failed(piece, senders, digests)
    }

    /// A piece passed its hash check. `senders` sent its blocks; `digests` are the good blocks' digests when
    /// [`Reputation::has_suspects`] asked for them.
    pub fn piece_passed(&mut self, piece: u32, senders: &[Sender], digests: Option<&[Digest]>) -> Verdict {
        // With no records, nobody is suspected or on parole: a good piece changes nothing.
        match &mut self.records {
            Some(records) => records.piece_passed(piece, senders, digests),
            None => Verdict::default(),
        }
    }

    /// A failed piece's block hashes, proven against its file's merkle root (BEP 52), showed which blocks were bad:
    /// their senders (`liars`) are banned, that being proof, and the senders of its good blocks only (`honest`)
    /// are cleared. The piece's kept blocks are not needed any more.
    pub fn blocks_proven(&mut self, piece: u32, liars: &[Sender], honest: &[Sender]) -> Verdict {
        if liars.is_empty() && self.records.is_none() {
            return Verdict::default();
        }
        self.records().blocks_proven(piece, liars, honest)
    }

    /// A peer sent something provably false other than a block (hashes whose proof fails): it is banned.
    pub fn proven_liar(&mut self, sender: Sender) -> Verdict {
        self.records().proven_liar(sender)
    }
}

impl Records {
    fn new() -> Self {
        Self {
            banned_endpoints: BoundedSet::new(),
            banned_ids: BoundedSet::new(),
            banned_ips: BoundedSet::new(),
            endpoints_banned_per_ip: HashMap::new(),
            parole: BoundedSet::new(),
            suspects: HashMap::new(),
            suspect_order: VecDeque::new(),
        }
    }

    /// Whether a connection to or from `addr` is refused before any handshake: its address or endpoint is banned.
    fn is_banned_addr(&self, addr: SocketAddr) -> bool {
        self.banned_ips.contains(&addr.ip()) || self.banned_endpoints.contains(&addr)
    }

    /// Whether the address as a whole is banned.
    fn is_banned_ip(&self, ip: IpAddr) -> bool {
        self.banned_ips.contains(&ip)
    }

    /// Whether a peer that completed its handshake is refused: its address, endpoint or peer id is banned.
    fn is_banned(&self, sender: &Sender) -> bool {
        self.is_banned_addr(sender.addr) || self.banned_ids.contains(&sender.peer_id)
    }

    /// Whether a peer is on parole: it must download its pieces alone.
    fn on_parole(&self, sender: &Sender) -> bool {
        self.parole.contains(sender)
    }

    /// Whether a good copy of `piece` should be cut into block digests for [`Reputation::piece_passed`].
    fn has_suspects(&self, piece: u32) -> bool {
        self.suspects.contains_key(&piece)
    }

    /// A piece failed its hash check. `senders[b]` sent block `b`, whose bytes hash to `digests[b]`.
    fn piece_failed(&mut self, piece: u32, senders: &[Sender], digests: &[Digest]) -> Verdict {
        let mut verdict = Verdict::default();
        let mut distinct: Vec<Sender> = senders.to_vec();
        distinct.sort_unstable_by_key(|sender| (sender.addr, sender.peer_id));
        distinct.dedup();
        if let [liar] = distinct[..] {
            self.ban(liar, &mut verdict);
            return verdict;
        }
        let records = self.suspect_records(piece);
        for (block, (&sender, &digest)) in (0u32..).zip(senders.iter().zip(digests)) {
            if records.len() < MAX_RECORDS_PER_PIECE {
                records.push(BlockRecord { block, sender, digest });
            }
        }
        for sender in distinct {
            if !self.is_banned(&sender) && self.parole.insert(sender) {
                verdict.paroled.push(sender);
            }
        }
        verdict
    }

    /// A piece passed its hash check. `senders` sent its blocks; `digests` are the good blocks' digests when
    /// [`Reputation::has_suspects`] asked for them.
    fn piece_passed(&mut self, piece: u32, senders: &[Sender], digests: Option<&[Digest]>) -> Verdict {
        let mut verdict = Verdict::default();
        if let Some(good) = digests
            && let Some(records) = self.suspects.remove(&piece)
        {
            self.suspect_order.retain(|&index| index != piece);
            let mut liars = Vec::new();
            let mut honest = Vec::new();
            for record in &records {
                match good.get(record.block as usize) {
                    Some(digest) if *digest == record.digest => honest.push(record.sender),
                    Some(_) => liars.push(record.sender),
                    None => {}
                }
            }
            liars.sort_unstable_by_key(|sender| (sender.addr, sender.peer_id));
            liars.dedup();
            for liar in &liars {
                self.ban(*liar, &mut verdict);
            }
            for sender in honest {
                if !liars.contains(&sender) {
                    self.clear(sender, &mut verdict);
                }
            }
        }
        // A paroled peer that sent a whole good piece alone has shown it sends good data.
        if let [first, rest @ ..] = senders
            && rest.iter().all(|sender| sender == first)
        {
            self.clear(*first, &mut verdict);
        }
        verdict
    }

    /// A failed piece's block hashes, proven against its file's merkle root (BEP 52), showed which blocks were bad:
    /// their senders (`liars`) are banned, that being proof, and the senders of its good blocks only (`honest`)
    /// are cleared. The piece's kept blocks are not needed any more.
    fn blocks_proven(&mut self, piece: u32, liars: &[Sender], honest: &[Sender]) -> Verdict {
        let mut verdict = Verdict::default();
        if self.suspects.remove(&piece).is_some() {
            self.suspect_order.retain(|&index| index != piece);
        }
        for liar in liars {
            self.ban(*liar, &mut verdict);
        }
        for sender in honest {
            if !liars.contains(sender) {
                self.clear(*sender, &mut verdict);
            }
        }
        verdict
    }

    /// A peer sent something provably false other than a block (hashes whose proof fails): it is banned.
    fn proven_liar(&mut self, sender: Sender) -> Verdict {
        let mut verdict = Verdict::default();
        self.ban(sender, &mut verdict);
        verdict
    }

    fn clear(&mut self, sender: Sender, verdict: &mut Verdict) {
        if self.parole.contains(&sender) {
            self.parole.remove(&sender);
            if !verdict.cleared.contains(&sender) {
                verdict.cleared.push(sender);
            }
        }
    }

    fn ban(&mut self, sender: Sender, verdict: &mut Verdict) {
        self.parole.remove(&sender);
        let new_endpoint = self.banned_endpoints.insert(sender.addr);
        let new_id = self.banned_ids.insert(sender.peer_id);
        if !(new_endpoint || new_id) {
            return;
        }
        verdict.banned.push(sender);
        if new_endpoint {
            let ip = sender.addr.ip();
            let count = self.endpoints_banned_per_ip.entry(ip).or_default();
            *count += 1;
            if *count >= IP_BAN_ENDPOINTS && self.banned_ips.insert(ip) {
                verdict.banned_ips.push(ip);
            }
            if self.endpoints_banned_per_ip.len() > MAX_ENTRIES {
                self.endpoints_banned_per_ip.retain(|_, count| *count > 1);
            }
        }
    }

    fn suspect_records(&mut self, piece: u32) -> &mut Vec<BlockRecord> {
        if !self.suspects.contains_key(&piece) {
            if self.suspect_order.len() >= MAX_SUSPECT_PIECES
                && let Some(oldest) = self.suspect_order.pop_front()
            {
                self.suspects.remove(&oldest);
            }
            self.suspect_order.push_back(piece);
        }
        self.suspects.entry(piece).or_default()
    }
}

#[cfg(test)]
#[path = "reputation_tests.rs"]
mod tests;
