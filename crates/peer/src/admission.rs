//! Incoming connections between accept and the end of their handshake.
//!
//! A connection that never sends its handshake costs the attacker nothing but a socket, so handshakes in progress
//! get a small budget of their own ([`HANDSHAKE_SLOTS`]), apart from the `--max-peers` slots of established peers.
//! When it is full, the oldest handshake still in progress is evicted to make room: an honest peer finishes its
//! handshake in one round trip, so however many silent sockets are open it is the newest and never the one
//! evicted. One IP address may hold at most `--max-peers-per-ip` connections, handshakes included.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// Incoming handshakes in progress at once: enough for a burst of honest peers that connect together (their
/// handshakes wait for our tasks to run), few enough that silent sockets cost us little.
pub const HANDSHAKE_SLOTS: usize = 128;

#[derive(Debug, Default)]
struct Table {
    next: u64,
    /// Handshakes in progress by age (ids only grow): their address and how to evict them.
    pending: BTreeMap<u64, (IpAddr, Arc<Notify>)>,
}

/// The handshakes in progress of one listener.
#[derive(Debug, Default)]
pub struct Handshakes {
    table: Arc<Mutex<Table>>,
}

/// One handshake's place in [`Handshakes`]; it gives the place back when dropped.
#[derive(Debug)]
pub struct Ticket {
    id: u64,
    evicted: Arc<Notify>,
    table: Arc<Mutex<Table>>,
}

impl Handshakes {
    /// Takes a place for a handshake from `ip`, evicting the oldest one if all are taken; `None` when `ip`
    /// already has `per_ip` connections, counting `established` ones that passed their handshake.
    pub fn begin(&self, ip: IpAddr, established: usize, per_ip: usize) -> Option<Ticket> {
        let mut table = lock(&self.table);
        let from_ip = table.pending.values().filter(|(other, _)| *other == ip).count();
        if from_ip + established >= per_ip {
            return None;
        }
        if table.pending.len() >= HANDSHAKE_SLOTS
            && let Some((_, (_, evict))) = table.pending.pop_first()
        {
            // notify_one keeps a permit, so the handshake sees it even if it is not waiting yet.
            evict.notify_one();
        }
        let id = table.next;
        table.next += 1;
        let evicted = Arc::new(Notify::new());
        table.pending.insert(id, (ip, evicted.clone()));
        Some(Ticket { id, evicted, table: self.table.clone() })
    }

    /// Handshakes in progress.
    #[cfg(test)]
    pub fn in_progress(&self) -> usize {
        lock(&self.table).pending.len()
    }
}

impl Ticket {
    /// Resolves when a newer connection took this handshake's place.
    pub async fn evicted(&self) {
        self.evicted.notified().await;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        lock(&self.table).pending.remove(&self.id);
    }
}

fn lock(table: &Mutex<Table>) -> std::sync::MutexGuard<'_, Table> {
    table.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
    }

    #[test]
    fn one_address_gets_at_most_its_share() {
        let handshakes = Handshakes::default();
        let tickets: Vec<Ticket> = (0..10).filter_map(|_| handshakes.begin(ip(3), 0, 8)).collect();
        assert_eq!(tickets.len(), 8);
        // Established connections count too.
        assert!(handshakes.begin(ip(4), 8, 8).is_none());
        assert!(handshakes.begin(ip(4), 7, 8).is_some());
        drop(tickets);
        assert_eq!(handshakes.in_progress(), 0, "dropped tickets give their places back");
    }

    #[tokio::test]
    async fn a_full_table_evicts_the_oldest_handshake_for_the_newest() {
        let handshakes = Handshakes::default();
        let mut tickets: Vec<Ticket> =
            (0..HANDSHAKE_SLOTS).map(|i| handshakes.begin(ip(i as u8), 0, 8).expect("room")).collect();
        let newest = handshakes.begin(ip(200), 0, 8).expect("a place, by eviction");
        assert_eq!(handshakes.in_progress(), HANDSHAKE_SLOTS);
        let oldest = tickets.remove(0);
        tokio::time::timeout(Duration::from_secs(1), oldest.evicted()).await.expect("the oldest is told to go");
        // Nobody else was evicted, and the newest can still finish.
        for ticket in &tickets {
            assert!(tokio::time::timeout(Duration::from_millis(10), ticket.evicted()).await.is_err());
        }
        drop(oldest);
        assert_eq!(handshakes.in_progress(), HANDSHAKE_SLOTS, "the evicted place was already reused");
        drop(newest);
        assert_eq!(handshakes.in_progress(), HANDSHAKE_SLOTS - 1);
    }
}
