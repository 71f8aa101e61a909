//! Block-level bookkeeping of one piece the picker is downloading or hashing: the torrent's piece and block
//! geometry, and for each block of the piece who was asked for it and who sent it.

use peer_wire::BLOCK_LEN;

use super::{Block, PeerKey};

/// Narrows a count that is bounded by a u32 quantity (blocks per piece, piece indices).
pub(super) fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// How the torrent's bytes split into pieces and blocks. `Copy`, so it can be read while other `Picker` fields
/// are mutably borrowed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Geometry {
    pub(super) piece_length: u32,
    pub(super) total_length: u64,
}

impl Geometry {
    /// Bytes in piece `index`: `piece_length`, less for the last piece, 0 past the end.
    pub(super) fn piece_len(self, index: u32) -> u32 {
        let start = u64::from(index) * u64::from(self.piece_length);
        let left = self.total_length.saturating_sub(start);
        // The min with a u32 always fits a u32.
        u32::try_from(left.min(u64::from(self.piece_length))).unwrap_or(self.piece_length)
    }

    pub(super) fn block_count(self, index: u32) -> u32 {
        self.piece_len(index).div_ceil(BLOCK_LEN)
    }

    /// Block `b` of piece `index`; `b` is below `block_count(index)`.
    pub(super) fn block(self, index: u32, b: usize) -> Block {
        let offset = to_u32(b) * BLOCK_LEN;
        Block { piece: index, offset, length: (self.piece_len(index) - offset).min(BLOCK_LEN) }
    }
}

/// The lifecycle of one block of an active piece; see the picker's module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Slot {
    Open,
    Asked(PeerKey),
    Shared(Vec<PeerKey>),
    Got(PeerKey),
}

impl Slot {
    /// The peers a request for this block is outstanding from.
    pub(super) fn requesters(&self) -> &[PeerKey] {
        match self {
            Slot::Asked(q) => std::slice::from_ref(q),
            Slot::Shared(peers) => peers,
            Slot::Open | Slot::Got(_) => &[],
        }
    }
}

/// Per-block state of a `Downloading` or `Hashing` piece, with counters so no query walks the slots.
#[derive(Debug)]
pub(super) struct Active {
    pub(super) slots: Vec<Slot>,
    /// Slots that are `Open`.
    pub(super) open: u32,
    /// Slots that are `Got`.
    pub(super) got: u32,
    /// No `Open` slot sits below this index: strict-priority picks resume here instead of rescanning.
    pub(super) first_open: u32,
    /// A peer on parole downloads pieces alone, so that a failed hash check names it and nobody else: no other
    /// peer is asked for blocks of a piece it owns.
    pub(super) owner: Option<PeerKey>,
}

impl Active {
    pub(super) fn new(blocks: u32) -> Self {
        Self { slots: vec![Slot::Open; blocks as usize], open: blocks, got: 0, first_open: 0, owner: None }
    }

    /// Slots with at least one request outstanding.
    pub(super) fn requested(&self) -> u32 {
        to_u32(self.slots.len()) - self.open - self.got
    }

    /// Whether every block is in.
    pub(super) fn is_full(&self) -> bool {
        self.got as usize == self.slots.len()
    }

    /// Asks `peer` for open slots, lowest offset first, until `out` holds `limit` blocks.
    pub(super) fn ask_open(&mut self, geo: Geometry, index: u32, peer: PeerKey, limit: usize, out: &mut Vec<Block>) {
        let mut b = self.first_open as usize;
        while self.open > 0 && out.len() < limit && b < self.slots.len() {
            if self.slots[b] == Slot::Open {
                self.slots[b] = Slot::Asked(peer);
                self.open -= 1;
                out.push(geo.block(index, b));
            }
            b += 1;
        }
        self.first_open = to_u32(b);
    }

    /// Endgame: asks `peer` too for blocks already asked from others, either those with one requester
    /// (`shared: false`) or those with several, until `out` holds `limit` blocks.
    pub(super) fn ask_again(
        &mut self,
        geo: Geometry,
        index: u32,
        peer: PeerKey,
        shared: bool,
        limit: usize,
        out: &mut Vec<Block>,
    ) {
        for (b, slot) in self.slots.iter_mut().enumerate() {
            if out.len() >= limit {
                return;
            }
            match slot {
                Slot::Asked(other) if !shared && *other != peer => *slot = Slot::Shared(vec![*other, peer]),
                Slot::Shared(peers) if shared && !peers.contains(&peer) => peers.push(peer),
                _ => continue,
            }
            out.push(geo.block(index, b));
        }
    }

    /// Records slot `b` as sent by `peer`. Returns the other peers that were asked for it (to be cancelled), or
    /// `None`, changing nothing, if `peer` was not asked for it.
    pub(super) fn receive(&mut self, b: usize, peer: PeerKey) -> Option<Vec<PeerKey>> {
        let slot = self.slots.get_mut(b)?;
        if !slot.requesters().contains(&peer) {
            return None;
        }
        let others = slot.requesters().iter().copied().filter(|&q| q != peer).collect();
        *slot = Slot::Got(peer);
        self.got += 1;
        Some(others)
    }

    /// Withdraws `peer`'s request for slot `b`: an `Asked` slot opens, a `Shared` one keeps its other requesters.
    /// Returns whether `peer` was a requester.
    pub(super) fn release(&mut self, b: usize, peer: PeerKey) -> bool {
        let Some(slot) = self.slots.get_mut(b) else { return false };
        if !slot.requesters().contains(&peer) {
            return false;
        }
        match slot {
            Slot::Shared(peers) if peers.len() > 2 => peers.retain(|&q| q != peer),
            Slot::Shared(peers) => {
                let other = peers.iter().copied().find(|&q| q != peer).unwrap_or(peer);
                *slot = Slot::Asked(other);
            }
            _ => {
                *slot = Slot::Open;
                self.open += 1;
                self.first_open = self.first_open.min(to_u32(b));
            }
        }
        true
    }

    /// Whether `peer` may be asked for blocks of this piece: nobody owns it, or `peer` does.
    pub(super) fn open_to(&self, peer: PeerKey) -> bool {
        self.owner.is_none_or(|owner| owner == peer)
    }

    /// The peers that sent blocks of this piece, ascending, without repeats.
    pub(super) fn contributors(&self) -> Vec<PeerKey> {
        let mut peers: Vec<PeerKey> =
            self.slots.iter().filter_map(|slot| if let Slot::Got(q) = slot { Some(*q) } else { None }).collect();
        peers.sort_unstable();
        peers.dedup();
        peers
    }
}
