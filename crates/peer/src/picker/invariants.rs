//! The picker's invariants, checked by its tests after every step and by the swarm's fuzz target: one state per
//! piece, lists and counters in agreement, and a parolee's pieces touched by nobody else.

use std::collections::BTreeMap;

use super::{NOWHERE, PeerKey, Picker, Slot, State};

impl Picker {
    /// Panics naming the first broken invariant of the module docs. Costs O(pieces + blocks in flight): for
    /// tests and fuzzing, never on a hot path.
    #[doc(hidden)]
    pub fn assert_invariants(&self) {
        let p = self;
        let mut unstarted = 0;
        let mut unwanted = 0;
        let mut have_bytes = 0;
        let mut requests: BTreeMap<PeerKey, BTreeMap<u32, u32>> = BTreeMap::new();
        for i in 0..p.num_pieces() {
            let at = p.pos[i as usize];
            let tier = &p.buckets[usize::from(p.priority[i as usize].clamp(1, 3) - 1)];
            let in_bucket = tier.get(p.availability[i as usize] as usize).and_then(|b| b.get(at as usize));
            let in_partial = p.partial.get(at as usize) == Some(&i);
            assert_eq!(p.we_have.has(i), p.state[i as usize] == State::Have, "piece {i}");
            let not_needed = matches!(p.state[i as usize], State::Have | State::Unwanted);
            assert_eq!(p.not_needed.has(i), not_needed, "piece {i} is needed or not");
            match p.state[i as usize] {
                State::Missing => {
                    assert_eq!(in_bucket, Some(&i), "missing piece {i} sits in its availability bucket");
                    assert!(!p.active.contains_key(&i));
                    unstarted += 1;
                }
                State::Have => {
                    assert!(at == NOWHERE && !p.active.contains_key(&i), "held piece {i} is in no list");
                    have_bytes += u64::from(p.piece_len(i));
                }
                State::Unwanted => {
                    assert!(at == NOWHERE && !p.active.contains_key(&i), "unwanted piece {i} is in no list");
                    assert!(!p.is_wanted(i), "piece {i} is wanted, yet unwanted");
                    unwanted += 1;
                }
                State::Downloading | State::Hashing => {
                    let piece = &p.active[&i];
                    assert_eq!(piece.slots.len() as u32, p.block_count(i));
                    let open = piece.slots.iter().filter(|s| **s == Slot::Open).count() as u32;
                    let got = piece.slots.iter().filter(|s| matches!(s, Slot::Got(_))).count() as u32;
                    assert_eq!((piece.open, piece.got), (open, got), "counters of piece {i}");
                    let first = piece.slots.iter().position(|s| *s == Slot::Open).unwrap_or(piece.slots.len());
                    assert!(piece.first_open as usize <= first, "no open slot below first_open in piece {i}");
                    assert_eq!(in_partial, open > 0, "piece {i} is partial iff it has open slots");
                    if open == 0 {
                        assert_eq!(at, NOWHERE);
                    }
                    if p.state[i as usize] == State::Hashing {
                        assert_eq!(got as usize, piece.slots.len(), "hashing piece {i} has every block");
                    } else {
                        assert!(got < p.block_count(i) && got + piece.requested() > 0, "downloading piece {i}");
                    }
                    for slot in &piece.slots {
                        let asked: &[PeerKey] = match slot {
                            Slot::Asked(q) => std::slice::from_ref(q),
                            Slot::Shared(peers) => {
                                assert!(peers.len() >= 2, "a shared slot has two requesters or more");
                                peers
                            }
                            Slot::Open | Slot::Got(_) => &[],
                        };
                        for (n, q) in asked.iter().enumerate() {
                            assert!(!asked[..n].contains(q), "never asked twice from the same peer");
                            *requests.entry(*q).or_default().entry(i).or_default() += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(p.unstarted, unstarted);
        assert_eq!(p.unwanted, unwanted);
        assert_eq!(p.buckets.iter().flatten().map(Vec::len).sum::<usize>(), unstarted as usize);
        assert!(p.partial.iter().all(|&i| p.state[i as usize] == State::Downloading));
        assert_eq!(p.requests, requests, "per-peer request counts match the slots");
        assert_eq!(p.missing_bytes(), p.geo.total_length - have_bytes);
        let hashing = p.state.iter().filter(|state| **state == State::Hashing).count();
        assert_eq!(p.hashing as usize, hashing, "hashing counter");
        for (index, piece) in &p.active {
            if let Some(owner) = piece.owner {
                for slot in &piece.slots {
                    let touched = match slot {
                        Slot::Got(q) => std::slice::from_ref(q),
                        other => other.requesters(),
                    };
                    assert!(touched.iter().all(|q| *q == owner), "piece {index} owned by {owner:?} touched by others");
                }
            }
        }
    }
}
